//! The lifecycle state machine, pure: no threads, no I/O, no clock of its
//! own. Every method takes `now` (a [`Mono`] instant), so tests drive it
//! with a fake clock and a property test with random host behaviour.
//!
//! ```text
//!            attempt            grant
//!  Booting ─────────► Attesting ─────► Ready ◄───────────────┐
//!                        │ final         │ renewal due        │ grant
//!                        ▼               ▼                    │
//!                    (boot fails)     Renewing ───────────────┤
//!                                        │ final failure,     │
//!                                        │ deadline, drift    │
//!                                        ▼                    │
//!                                    Withdrawn ──► ReAttesting┘
//!                                                attempt
//! ```
//!
//! Secrets are readable only in `Ready` and `Renewing`, and only strictly
//! before the trust deadline of the last grant: [`Machine::readable`] is
//! the one rule, checked at every read, whether or not anyone has noticed
//! that the deadline passed. Only [`Machine::granted`] (a successful
//! attestation and provisioning) makes secrets readable; every other event
//! can only keep or end that.

use super::clock::Mono;

/// Where the enclave stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the first attestation attempt.
    Booting,
    /// The first attestation and provisioning are under way.
    Attesting,
    /// Attested; secrets held until the trust deadline.
    Ready,
    /// A renewal is under way; the current secrets stay readable until
    /// their deadline.
    Renewing,
    /// Secrets wiped; the reason is kept.
    Withdrawn,
    /// Attesting again after a withdrawal.
    ReAttesting,
}

impl Phase {
    /// The name in health, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Booting => "booting",
            Phase::Attesting => "attesting",
            Phase::Ready => "ready",
            Phase::Renewing => "renewing",
            Phase::Withdrawn => "withdrawn",
            Phase::ReAttesting => "re-attesting",
        }
    }

    /// Every phase, in the order of the diagram (metrics list them all).
    pub const ALL: [Phase; 6] = [
        Phase::Booting,
        Phase::Attesting,
        Phase::Ready,
        Phase::Renewing,
        Phase::Withdrawn,
        Phase::ReAttesting,
    ];
}

/// What ended trust, as a fixed label (for metrics) plus the detail (for
/// health and the console; never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    /// `deadline`, `denied`, `clock`, `refused`, `shutdown`.
    pub kind: &'static str,
    /// Why, in words.
    pub reason: String,
    /// When.
    pub at: Mono,
}

/// What the caller must do with the secret store after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "the store must follow the machine: install on Install, wipe on Wipe"]
pub enum Effect {
    /// Nothing changes for the store.
    None,
    /// Swap the freshly provisioned store in.
    Install,
    /// Zeroize the store now.
    Wipe,
}

/// A transition that the current phase does not allow (a caller bug, or a
/// grant that arrived already expired).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The event does not apply in this phase.
    #[error("{event} is not allowed in phase {phase}")]
    Phase {
        /// The event.
        event: &'static str,
        /// The phase.
        phase: &'static str,
    },
    /// The grant's deadline is not in the future.
    #[error("the grant's trust deadline had already passed when it arrived")]
    Expired,
}

/// The state machine.
#[derive(Debug, Clone)]
pub struct Machine {
    phase: Phase,
    /// The trust deadline of the secrets held (`Some` exactly while they
    /// are held).
    deadline: Option<Mono>,
    withdrawal: Option<Withdrawal>,
    renewals: u64,
    withdrawals: u64,
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new()
    }
}

impl Machine {
    /// A machine in `Booting`.
    pub fn new() -> Machine {
        Machine {
            phase: Phase::Booting,
            deadline: None,
            withdrawal: None,
            renewals: 0,
            withdrawals: 0,
        }
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The trust deadline of the secrets held.
    pub fn deadline(&self) -> Option<Mono> {
        self.deadline
    }

    /// The last withdrawal, while withdrawn (cleared by a grant).
    pub fn withdrawal(&self) -> Option<&Withdrawal> {
        self.withdrawal.as_ref()
    }

    /// Successful renewals (grants after the first).
    pub fn renewals(&self) -> u64 {
        self.renewals
    }

    /// Withdrawals so far: an epoch that changes whenever secrets are
    /// taken away (connections and buffers of an older epoch are dropped).
    pub fn withdrawals(&self) -> u64 {
        self.withdrawals
    }

    /// Whether secrets may be read at `now`: held, in a serving phase, and
    /// strictly before their deadline.
    pub fn readable(&self, now: Mono) -> bool {
        matches!(self.phase, Phase::Ready | Phase::Renewing)
            && self.deadline.is_some_and(|d| now < d)
    }

    /// An attestation attempt starts (boot, renewal, or after a withdrawal).
    /// Several attempts in a row (retries) keep the phase.
    pub fn attempt(&mut self) -> Phase {
        self.phase = match self.phase {
            Phase::Booting | Phase::Attesting => Phase::Attesting,
            Phase::Ready | Phase::Renewing => Phase::Renewing,
            Phase::Withdrawn | Phase::ReAttesting => Phase::ReAttesting,
        };
        self.phase
    }

    /// An attempt succeeded: fresh secrets, trusted until `deadline`.
    /// Refused outside an attempt, and when the deadline is not after
    /// `now` (then nothing changes: the old secrets keep their own
    /// deadline).
    pub fn granted(&mut self, now: Mono, deadline: Mono) -> Result<Effect, Refused> {
        if !matches!(
            self.phase,
            Phase::Attesting | Phase::Renewing | Phase::ReAttesting
        ) {
            return Err(Refused::Phase {
                event: "grant",
                phase: self.phase.as_str(),
            });
        }
        if deadline <= now {
            return Err(Refused::Expired);
        }
        if matches!(self.phase, Phase::Renewing | Phase::ReAttesting) {
            self.renewals += 1;
        }
        self.phase = Phase::Ready;
        self.deadline = Some(deadline);
        self.withdrawal = None;
        Ok(Effect::Install)
    }

    /// Trust ends now for `reason` (a final failure, drift, the deadline,
    /// shutdown): the store is wiped whatever the phase; during the first
    /// attestation the machine stays `Attesting` (boot decides), otherwise
    /// it is `Withdrawn`.
    pub fn withdraw(&mut self, now: Mono, kind: &'static str, reason: String) -> Effect {
        let held = self.deadline.take().is_some();
        if held {
            self.withdrawals += 1;
        }
        self.phase = match self.phase {
            Phase::Booting | Phase::Attesting => self.phase,
            _ => Phase::Withdrawn,
        };
        self.withdrawal = Some(Withdrawal {
            kind,
            reason,
            at: now,
        });
        Effect::Wipe
    }

    /// The watchdog's (and every reader's) check: at or after the deadline
    /// the secrets go.
    pub fn tick(&mut self, now: Mono) -> Effect {
        match self.deadline {
            Some(d) if now >= d => self.withdraw(now, "deadline", "the trust deadline passed (attestation, token or Vault lease expired) before a renewal succeeded".to_owned()),
            _ => Effect::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Mono {
        Mono::from_millis(ms)
    }

    #[test]
    fn boot_attests_then_serves_until_the_deadline() {
        let mut m = Machine::new();
        assert_eq!(m.phase(), Phase::Booting);
        assert!(!m.readable(t(0)));
        assert_eq!(m.attempt(), Phase::Attesting);
        assert_eq!(m.attempt(), Phase::Attesting, "a retry keeps the phase");
        assert!(!m.readable(t(1)));
        assert_eq!(m.granted(t(10), t(1_000)), Ok(Effect::Install));
        assert_eq!(m.phase(), Phase::Ready);
        assert!(m.readable(t(999)));
        assert!(!m.readable(t(1_000)), "the deadline itself is too late");
        assert_eq!(m.renewals(), 0);
        assert_eq!(m.tick(t(999)), Effect::None);
        assert_eq!(m.tick(t(1_000)), Effect::Wipe);
        assert_eq!(m.phase(), Phase::Withdrawn);
        assert_eq!(m.withdrawal().map(|w| w.kind), Some("deadline"));
        assert_eq!(m.withdrawals(), 1);
        assert_eq!(m.tick(t(2_000)), Effect::None, "nothing left to wipe");
    }

    #[test]
    fn a_renewal_keeps_secrets_readable_until_the_old_deadline_then_extends_it() {
        let mut m = Machine::new();
        m.attempt();
        let _ = m.granted(t(0), t(1_000)).unwrap();
        assert_eq!(m.attempt(), Phase::Renewing);
        assert!(m.readable(t(900)), "still readable while renewing");
        assert_eq!(m.granted(t(950), t(2_000)), Ok(Effect::Install));
        assert_eq!((m.phase(), m.renewals()), (Phase::Ready, 1));
        assert!(m.readable(t(1_500)));
    }

    #[test]
    fn a_renewal_that_misses_the_deadline_withdraws_then_re_attests() {
        let mut m = Machine::new();
        m.attempt();
        let _ = m.granted(t(0), t(1_000)).unwrap();
        m.attempt();
        assert!(
            !m.readable(t(1_000)),
            "the read rule holds before anyone ticks"
        );
        assert_eq!(m.tick(t(1_001)), Effect::Wipe);
        assert_eq!(m.phase(), Phase::Withdrawn);
        assert_eq!(m.attempt(), Phase::ReAttesting);
        assert!(!m.readable(t(1_002)));
        assert_eq!(m.granted(t(1_500), t(3_000)), Ok(Effect::Install));
        assert_eq!((m.phase(), m.renewals()), (Phase::Ready, 1));
        assert!(m.withdrawal().is_none(), "a grant clears the withdrawal");
    }

    #[test]
    fn a_final_failure_during_renewal_withdraws_at_once() {
        let mut m = Machine::new();
        m.attempt();
        let _ = m.granted(t(0), t(10_000)).unwrap();
        m.attempt();
        assert_eq!(
            m.withdraw(t(100), "denied", "snp.measurement".into()),
            Effect::Wipe
        );
        assert_eq!(m.phase(), Phase::Withdrawn);
        assert!(!m.readable(t(101)), "long before the deadline");
        assert_eq!(m.withdrawals(), 1);
    }

    #[test]
    fn a_boot_failure_stays_attesting() {
        let mut m = Machine::new();
        m.attempt();
        assert_eq!(m.withdraw(t(5), "denied", "x".into()), Effect::Wipe);
        assert_eq!(m.phase(), Phase::Attesting);
        assert_eq!(m.withdrawals(), 0, "nothing was held");
    }

    #[test]
    fn grants_outside_an_attempt_or_already_expired_are_refused() {
        let mut m = Machine::new();
        assert_eq!(
            m.granted(t(0), t(10)),
            Err(Refused::Phase {
                event: "grant",
                phase: "booting"
            })
        );
        m.attempt();
        assert_eq!(m.granted(t(10), t(10)), Err(Refused::Expired));
        assert_eq!(m.granted(t(10), t(5)), Err(Refused::Expired));
        assert!(!m.readable(t(0)));
        let _ = m.granted(t(10), t(100)).unwrap();
        assert_eq!(
            m.granted(t(11), t(200)),
            Err(Refused::Phase {
                event: "grant",
                phase: "ready"
            }),
            "a grant needs an attempt"
        );
        // An expired grant during renewal leaves the old secrets to their own deadline.
        m.attempt();
        assert_eq!(m.granted(t(50), t(40)), Err(Refused::Expired));
        assert!(m.readable(t(99)));
        assert!(!m.readable(t(100)));
    }

    #[test]
    fn every_phase_has_a_name() {
        let names: Vec<_> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "booting",
                "attesting",
                "ready",
                "renewing",
                "withdrawn",
                "re-attesting"
            ]
        );
    }

    /// Random host behaviour against the machine: time jumps (forward
    /// only: the monotonic clock), attempts, grants with deadlines in the
    /// past or future, withdrawals, ticks. After every step the one
    /// invariant: secrets are readable exactly when a grant is in force
    /// (granted, not since withdrawn or wiped, and before its deadline).
    mod random_hosts {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Event {
            Advance(u64),
            Attempt,
            Grant(i64),
            Withdraw,
            Tick,
            Status,
        }

        fn event() -> impl Strategy<Value = Event> {
            prop_oneof![
                (0u64..20_000).prop_map(Event::Advance),
                Just(Event::Attempt),
                (-5_000i64..60_000).prop_map(Event::Grant),
                Just(Event::Withdraw),
                Just(Event::Tick),
                Just(Event::Status),
            ]
        }

        proptest! {
            #[test]
            fn no_secret_is_readable_at_or_after_its_deadline_and_only_a_grant_restores_them(events in proptest::collection::vec(event(), 1..200)) {
                let mut m = Machine::new();
                let mut now = 0u64;
                let mut in_force: Option<u64> = None;
                for e in events {
                    let before = m.readable(t(now));
                    let mut granted = false;
                    match e {
                        Event::Advance(ms) => now += ms,
                        Event::Attempt => { m.attempt(); }
                        Event::Grant(offset) => {
                            let deadline = now.saturating_add_signed(offset);
                            if m.granted(t(now), t(deadline)).is_ok() {
                                in_force = Some(deadline);
                                granted = true;
                            }
                        }
                        Event::Withdraw => {
                            let _ = m.withdraw(t(now), "denied", "refused".into());
                            in_force = None;
                        }
                        Event::Tick => {
                            if m.tick(t(now)) == Effect::Wipe {
                                in_force = None;
                            }
                        }
                        // The control channel reads; it must change nothing.
                        Event::Status => { let _ = (m.phase(), m.deadline(), m.withdrawal()); }
                    }
                    let readable = m.readable(t(now));
                    prop_assert_eq!(readable, in_force.is_some_and(|d| now < d), "phase {:?} deadline {:?} at {}", m.phase(), m.deadline(), now);
                    if readable {
                        prop_assert!(m.deadline().is_some_and(|d| t(now) < d));
                    }
                    if !before && readable {
                        prop_assert!(granted, "secrets became readable without a grant");
                    }
                }
            }
        }
    }
}
