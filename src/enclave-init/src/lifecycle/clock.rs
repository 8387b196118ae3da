//! Time, as far as the guest can trust it.
//!
//! The guest's clocks belong to the host: without SEV-SNP SecureTSC or the
//! TDX TSC (which the host cannot offset or scale once the guest runs), the
//! host sets the wall clock at will and can slow, stop (pause the VM) or
//! speed up the monotonic one. So:
//!
//! - **Deadlines are monotonic** ([`Mono`], `CLOCK_BOOTTIME`: it keeps
//!   counting across suspend, and a host changing the wall clock does not
//!   move it). The wall clock is never used for a security decision.
//! - **Absolute time is the verifier's** ([`VerifierClock`]): each challenge
//!   carries the verifier's time; the guest anchors it to the monotonic
//!   instant the challenge was *sent* (the verifier read its clock after
//!   that, so the guest's estimate errs early, never late) and derives
//!   certificate times and expiries from it.
//! - **Drift is measured at every anchoring**: the verifier's new time
//!   against what the last anchor plus elapsed monotonic time predicted. A
//!   host that paused the VM or slowed its clock shows up as the verifier
//!   being ahead; one that sped it up, behind. Beyond the configured bound
//!   the guest withdraws its secrets (see `lifecycle`).
//!
//! What is assumed without SecureTSC/TDX TSC: between two anchorings the
//! monotonic clock runs at the real rate. A host that freezes the guest
//! for longer than the trust lifetime gains at most the lifetime still left
//! at the freeze (the guest resumes believing less time has passed); the
//! next authenticated time the guest sees (a renewal's challenge) exposes
//! it. Short lifetimes bound the gain; hardware-protected TSCs remove it.

use std::sync::Mutex;
use std::time::Duration;

/// A monotonic instant: milliseconds of `CLOCK_BOOTTIME`. A plain number
/// so the state machine can be driven by a fake clock in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mono(u64);

impl Mono {
    /// From milliseconds.
    pub const fn from_millis(ms: u64) -> Mono {
        Mono(ms)
    }

    /// Milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The instant `d` later (saturating).
    pub fn after(self, d: Duration) -> Mono {
        Mono(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// The time from `earlier` to this instant (zero if `earlier` is later).
    pub fn since(self, earlier: Mono) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// The monotonic clock now.
    pub fn now() -> Mono {
        match nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME) {
            Ok(ts) => {
                let ms = i128::from(ts.tv_sec()) * 1000 + i128::from(ts.tv_nsec()) / 1_000_000;
                Mono(u64::try_from(ms).unwrap_or(0))
            }
            // CLOCK_BOOTTIME exists since Linux 2.6.39; should it fail, an
            // instant of 0 makes every deadline already passed (fail closed
            // for readers) rather than never.
            Err(_) => Mono(0),
        }
    }
}

/// The real monotonic clock, for [`crate::retry::run`].
pub struct SystemClock;

impl crate::retry::Clock for SystemClock {
    fn now(&self) -> Mono {
        Mono::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// The kernel's clocksource (`tsc`, `kvm-clock`, `hpet`…), for health: an
/// operator reading it knows whether the guest's time rests on a TSC the
/// host cannot move (SecureTSC / TDX) or on a paravirtual clock it owns.
pub fn clocksource() -> String {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .map(|s| {
            s.trim()
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(32)
                .collect()
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// One anchoring of verifier time to the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// The verifier's time, Unix milliseconds.
    pub verifier_ms: u64,
    /// The monotonic instant the request that returned it was sent.
    pub sent: Mono,
}

/// Why an anchoring was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The verifier's time is earlier than an earlier answer of it.
    #[error("the verifier's time went backwards: {now_ms} ms after {before_ms} ms")]
    Backwards {
        /// The earlier time.
        before_ms: u64,
        /// The new one.
        now_ms: u64,
    },
    /// The verifier's time differs from the guest's estimate by more than
    /// the bound: the guest's clock was stopped, slowed or sped up.
    #[error("guest clock drift {drift_ms} ms exceeds the bound of {bound_ms} ms")]
    Drift {
        /// Verifier time minus the guest's estimate (positive: the guest is behind).
        drift_ms: i64,
        /// The configured bound.
        bound_ms: u64,
    },
}

/// The verifier-anchored clock: Unix time as the verifier sees it, carried
/// forward on the monotonic clock; before the first anchoring, the later of
/// the guest's wall clock and the image's build time (a host cannot roll
/// the guest back before its own build).
#[derive(Debug)]
pub struct VerifierClock {
    floor_secs: u64,
    state: Mutex<ClockState>,
}

#[derive(Debug, Default)]
struct ClockState {
    anchor: Option<Anchor>,
    /// The last measured drift, milliseconds (verifier minus estimate).
    last_drift_ms: Option<i64>,
}

impl VerifierClock {
    /// A clock whose floor is the build's `SOURCE_DATE_EPOCH`.
    pub fn new(floor_secs: u64) -> VerifierClock {
        VerifierClock {
            floor_secs,
            state: Mutex::new(ClockState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The drift a new answer shows against the current anchor:
    /// `verifier_ms` arrived for a request sent at `sent` and answered at
    /// `received`. The verifier read its clock somewhere in between, so the
    /// estimate is taken at the midpoint and half the round trip is
    /// tolerated on top of `bound_ms`. `Ok(None)` before any anchor.
    pub fn check(
        &self,
        verifier_ms: u64,
        sent: Mono,
        received: Mono,
        bound_ms: u64,
    ) -> Result<Option<i64>, ClockError> {
        let Some(a) = self.state().anchor else {
            return Ok(None);
        };
        if verifier_ms < a.verifier_ms {
            return Err(ClockError::Backwards {
                before_ms: a.verifier_ms,
                now_ms: verifier_ms,
            });
        }
        let half_rtt = received.as_millis().saturating_sub(sent.as_millis()) / 2;
        let mid = sent.as_millis().saturating_add(half_rtt);
        let estimate = a
            .verifier_ms
            .saturating_add(mid.saturating_sub(a.sent.as_millis()));
        let drift =
            i64::try_from(i128::from(verifier_ms) - i128::from(estimate)).unwrap_or(i64::MAX);
        self.state().last_drift_ms = Some(drift);
        if drift.unsigned_abs() > bound_ms.saturating_add(half_rtt) {
            return Err(ClockError::Drift {
                drift_ms: drift,
                bound_ms,
            });
        }
        Ok(Some(drift))
    }

    /// Adopts the verifier's time `verifier_ms` for a request sent at `sent`.
    pub fn anchor(&self, verifier_ms: u64, sent: Mono) {
        self.state().anchor = Some(Anchor { verifier_ms, sent });
    }

    /// The current anchor, if the verifier has answered.
    pub fn current_anchor(&self) -> Option<Anchor> {
        self.state().anchor
    }

    /// The last measured drift (ms), if any.
    pub fn last_drift_ms(&self) -> Option<i64> {
        self.state().last_drift_ms
    }

    /// The monotonic instant at which verifier time reaches `unix_ms`
    /// (under the current anchor; `None` before anchoring).
    #[cfg(test)]
    pub fn mono_at(&self, unix_ms: u64) -> Option<Mono> {
        let a = self.state().anchor?;
        Some(
            a.sent
                .after(Duration::from_millis(unix_ms.saturating_sub(a.verifier_ms))),
        )
    }

    /// Now, Unix milliseconds, at monotonic instant `at`.
    pub fn millis_at(&self, at: Mono) -> u64 {
        match self.state().anchor {
            Some(a) => a
                .verifier_ms
                .saturating_add(at.as_millis().saturating_sub(a.sent.as_millis())),
            None => {
                let guest = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                u64::try_from(guest)
                    .unwrap_or(u64::MAX)
                    .max(self.floor_secs.saturating_mul(1000))
            }
        }
    }

    /// Now, Unix milliseconds (webhook timestamps are in milliseconds).
    pub fn now_millis(&self) -> u64 {
        self.millis_at(Mono::now())
    }

    /// Now, Unix seconds.
    pub fn now_secs(&self) -> u64 {
        self.now_millis() / 1000
    }
}

impl rustls::time_provider::TimeProvider for VerifierClock {
    fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
        Some(rustls::pki_types::UnixTime::since_unix_epoch(
            Duration::from_millis(self.now_millis()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_anchoring_the_build_time_is_a_floor() {
        let c = VerifierClock::new(4_000_000_000);
        assert!(
            c.now_secs() >= 4_000_000_000,
            "a rolled-back guest clock cannot go below the build"
        );
        assert_eq!(c.mono_at(1), None);
    }

    #[test]
    fn anchored_time_follows_the_monotonic_clock_from_the_send_instant() {
        let c = VerifierClock::new(0);
        c.anchor(1_000_000, Mono::from_millis(500));
        assert_eq!(c.millis_at(Mono::from_millis(500)), 1_000_000);
        assert_eq!(c.millis_at(Mono::from_millis(2_500)), 1_002_000);
        assert_eq!(c.mono_at(1_010_000), Some(Mono::from_millis(10_500)));
        assert_eq!(
            c.mono_at(999_000),
            Some(Mono::from_millis(500)),
            "a past instant maps to the anchor, not before it"
        );
    }

    #[test]
    fn drift_is_measured_against_the_estimate() {
        let c = VerifierClock::new(0);
        assert_eq!(
            c.check(5, Mono::from_millis(0), Mono::from_millis(0), 100),
            Ok(None),
            "nothing to compare before an anchor"
        );
        c.anchor(1_000_000, Mono::from_millis(0));
        // 60 s later by the guest's clock, the verifier also says 60 s later.
        assert_eq!(
            c.check(
                1_060_000,
                Mono::from_millis(60_000),
                Mono::from_millis(60_000),
                2_000
            ),
            Ok(Some(0))
        );
        // A 40 ms round trip: the midpoint estimate.
        assert_eq!(
            c.check(
                1_060_020,
                Mono::from_millis(60_000),
                Mono::from_millis(60_040),
                2_000
            ),
            Ok(Some(0))
        );
        // The host froze the guest for 30 s: the verifier is ahead.
        assert_eq!(
            c.check(
                1_090_000,
                Mono::from_millis(60_000),
                Mono::from_millis(60_000),
                2_000
            ),
            Err(ClockError::Drift {
                drift_ms: 30_000,
                bound_ms: 2_000
            })
        );
        assert_eq!(c.last_drift_ms(), Some(30_000));
        // The host sped the guest up: the verifier is behind.
        assert_eq!(
            c.check(
                1_050_000,
                Mono::from_millis(60_000),
                Mono::from_millis(60_000),
                2_000
            ),
            Err(ClockError::Drift {
                drift_ms: -10_000,
                bound_ms: 2_000
            })
        );
        // Time going backwards is its own refusal.
        assert_eq!(
            c.check(999_999, Mono::from_millis(1), Mono::from_millis(1), 2_000),
            Err(ClockError::Backwards {
                before_ms: 1_000_000,
                now_ms: 999_999
            })
        );
    }

    #[test]
    fn a_long_round_trip_widens_the_tolerance_by_half_of_it() {
        let c = VerifierClock::new(0);
        c.anchor(0, Mono::from_millis(0));
        // Sent at 10 s, answered at 16 s; the verifier read 14.9 s: 1.9 s
        // after the midpoint, within 1 s + 3 s.
        assert!(c
            .check(
                14_900,
                Mono::from_millis(10_000),
                Mono::from_millis(16_000),
                1_000
            )
            .is_ok());
        assert!(c
            .check(
                17_100,
                Mono::from_millis(10_000),
                Mono::from_millis(16_000),
                1_000
            )
            .is_err());
    }
}
