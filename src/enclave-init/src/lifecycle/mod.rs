//! The lifecycle: the only owner of secret lifetime.
//!
//! - [`machine`]: the pure state machine (booting → attesting → ready →
//!   renewing → withdrawn → re-attesting) and its one read rule.
//! - [`clock`]: monotonic deadlines and the verifier-anchored clock, with
//!   drift measurement.
//! - [`exchange`]: one attempt: attest, log in to Vault, read the secrets
//!   into a fresh store, revoke the Vault token; and the grant it yields.
//! - [`supervisor`]: the thread that renews (at a random instant in a
//!   window of the lifetime), retries transient failures inside the trust
//!   deadline, withdraws on final ones and re-attests after a withdrawal.
//! - [`watchdog`]: the thread that wipes the store at the trust deadline.
//!
//! [`Lifecycle`] joins them: the machine and the secret store behind one
//! mutex, which is never held across I/O (every holder copies or swaps
//! and lets go), so the watchdog can always take it. Readers (the call
//! service) get a secret only through [`Lifecycle::secret`], which checks
//! the deadline itself: a read at or after the deadline fails even if the
//! watchdog has not run yet, and wipes the store on the spot. The control
//! channel only reads [`Lifecycle::snapshot`]: it can neither delay nor
//! trigger a withdrawal.

pub mod clock;
pub mod exchange;
pub mod machine;
pub mod supervisor;
pub mod watchdog;

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::metrics::Metrics;
use crate::secrets::SecretStore;
use clock::{Mono, VerifierClock};
use machine::{Effect, Machine, Phase, Refused};

/// The lifecycle, shared by the supervisor, the watchdog, the call service
/// and the control channel.
pub struct Lifecycle {
    inner: Mutex<Inner>,
    /// Signalled on every transition (the watchdog waits on it).
    changed: Condvar,
    /// Time as the verifier sees it (certificate checks, expiries, webhook
    /// windows).
    pub time: Arc<VerifierClock>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// `sim`, `snp`, `tdx`… (what the verifier attested), or `none`.
    tee: Mutex<&'static str>,
    /// The kernel's clocksource when the enclave booted.
    pub clocksource: String,
    /// The largest disagreement with an authenticated clock accepted (ms).
    max_drift_ms: std::sync::atomic::AtomicU64,
    /// The audit trail, once the enclave key exists (set once at boot).
    audit: OnceLock<Arc<crate::audit::Audit>>,
}

/// A secret as the audit trail names it: its Vault path and version.
pub type Held = (String, u64);

struct Inner {
    machine: Machine,
    store: SecretStore,
    /// The last renewal attempt's transient cause (for health; no secret).
    last_transient: Option<String>,
    /// Renewal attempts made and failed, since boot.
    attempts: u64,
    failures: u64,
    /// Set once at shutdown: no grant may install secrets after the final wipe.
    shut_down: bool,
    /// The secrets in `store` by path and version (for the audit trail's
    /// release and withdrawal records; never values).
    held: Vec<Held>,
}

/// The enclave's state as health, metrics and the control channel show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The phase.
    pub phase: Phase,
    /// Whether secrets are readable now.
    pub trusted: bool,
    /// Time left until the trust deadline (zero when none).
    pub expires_in: Duration,
    /// The trust deadline in verifier time (Unix seconds), if any secrets are held.
    pub expires_at: Option<u64>,
    /// Why trust ended, while withdrawn.
    pub withdrawn: Option<(&'static str, String)>,
    /// Successful renewals.
    pub renewals: u64,
    /// Withdrawals so far.
    pub withdrawals: u64,
    /// Attestation attempts, and the failed ones.
    pub attempts: u64,
    /// Failed attempts.
    pub failures: u64,
    /// The last transient failure, if the last attempt failed transiently.
    pub last_transient: Option<String>,
    /// Secrets held.
    pub secrets: usize,
    /// The last measured drift between guest and verifier time (ms).
    pub drift_ms: Option<i64>,
}

impl Lifecycle {
    /// A lifecycle in `Booting`, with an empty store.
    pub fn new(store: SecretStore, time: Arc<VerifierClock>, tee: &'static str) -> Arc<Lifecycle> {
        Arc::new(Lifecycle {
            inner: Mutex::new(Inner {
                machine: Machine::new(),
                store,
                last_transient: None,
                attempts: 0,
                failures: 0,
                shut_down: false,
                held: Vec::new(),
            }),
            changed: Condvar::new(),
            time,
            metrics: Metrics::default(),
            tee: Mutex::new(tee),
            clocksource: clock::clocksource(),
            max_drift_ms: std::sync::atomic::AtomicU64::new(2000),
            audit: OnceLock::new(),
        })
    }

    /// Attaches the audit trail (once; later calls are ignored).
    pub fn set_audit(&self, audit: Arc<crate::audit::Audit>) {
        let _ = self.audit.set(audit);
    }

    /// The audit trail, if there is one.
    pub fn audit(&self) -> Option<&Arc<crate::audit::Audit>> {
        self.audit.get()
    }

    /// Audit records of a transition, emitted after the lock is let go:
    /// the phase change, then each secret withdrawn, then each released.
    fn audited(&self, from: Phase, to: Phase, withdrawn: Vec<Held>, released: &[Held]) {
        use audit_record::{Body, LifecycleBody, SecretBody};
        let Some(audit) = self.audit.get() else {
            return;
        };
        if from != to {
            audit.emit(Body::Lifecycle(LifecycleBody {
                from: from.as_str().to_owned(),
                to: to.as_str().to_owned(),
            }));
        }
        for (path, version) in withdrawn {
            audit.emit(Body::SecretWithdrawal(SecretBody { path, version }));
        }
        for (path, version) in released {
            audit.emit(Body::SecretRelease(SecretBody {
                path: path.clone(),
                version: *version,
            }));
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock cannot happen (panic = abort); take the data anyway.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a transition's effect to the store, under the same lock;
    /// returns the secrets that left it (path and version, for the trail).
    fn apply(
        inner: &mut Inner,
        effect: Effect,
        fresh: Option<(&mut SecretStore, &[Held])>,
    ) -> Vec<Held> {
        match (effect, fresh) {
            (Effect::Install, Some((fresh, released))) => {
                // The old values are wiped when `fresh` (now holding them)
                // is cleared by the caller.
                std::mem::swap(&mut inner.store, fresh);
                fresh.clear();
                std::mem::replace(&mut inner.held, released.to_vec())
            }
            (Effect::Wipe, _) => {
                inner.store.clear();
                std::mem::take(&mut inner.held)
            }
            _ => Vec::new(),
        }
    }

    /// A copy of one secret for the duration of a request, or `None` when
    /// it is not held or trust has ended. The deadline is checked here, on
    /// every read: at or after it the store is wiped now.
    pub fn secret(&self, name: &str) -> Option<Zeroizing<Vec<u8>>> {
        let now = Mono::now();
        let mut inner = self.lock();
        if !inner.machine.readable(now) {
            let from = inner.machine.phase();
            let effect = inner.machine.tick(now);
            if effect == Effect::Wipe {
                let gone = Self::apply(&mut inner, effect, None);
                let to = inner.machine.phase();
                drop(inner);
                self.changed.notify_all();
                self.on_withdrawn();
                self.audited(from, to, gone, &[]);
            }
            return None;
        }
        inner.store.get(name).map(|v| Zeroizing::new(v.to_vec()))
    }

    /// Whether calls may be served now; otherwise why not.
    pub fn serving(&self) -> Result<(), String> {
        let now = Mono::now();
        let inner = self.lock();
        if inner.machine.readable(now) {
            return Ok(());
        }
        Err(match inner.machine.withdrawal() {
            Some(w) => w.reason.clone(),
            None if inner.machine.deadline().is_some() => "the trust deadline passed".to_owned(),
            None => format!("not attested ({})", inner.machine.phase().as_str()),
        })
    }

    /// The withdrawal epoch: it changes whenever secrets are taken away.
    /// Whatever carried secret-derived or call data under an older epoch
    /// (pooled upstream connections, buffers) is dropped, not reused.
    pub fn epoch(&self) -> u64 {
        self.lock().machine.withdrawals()
    }

    /// The state as health and the control channel show it.
    pub fn snapshot(&self) -> Snapshot {
        let now = Mono::now();
        let inner = self.lock();
        let m = &inner.machine;
        let expires_at = m.deadline().map(|d| self.time.millis_at(d) / 1000);
        Snapshot {
            phase: m.phase(),
            trusted: m.readable(now),
            expires_in: m.deadline().map_or(Duration::ZERO, |d| d.since(now)),
            expires_at,
            withdrawn: m.withdrawal().map(|w| (w.kind, w.reason.clone())),
            renewals: m.renewals(),
            withdrawals: m.withdrawals(),
            attempts: inner.attempts,
            failures: inner.failures,
            last_transient: inner.last_transient.clone(),
            secrets: if m.readable(now) {
                inner.store.len()
            } else {
                0
            },
            drift_ms: self.time.last_drift_ms(),
        }
    }

    /// An attempt starts; the phase it runs in.
    pub fn attempt(&self) -> Phase {
        self.metrics.attestation_attempt();
        let mut inner = self.lock();
        inner.attempts += 1;
        let from = inner.machine.phase();
        let p = inner.machine.attempt();
        drop(inner);
        self.changed.notify_all();
        self.audited(from, p, Vec::new(), &[]);
        p
    }

    /// An attempt failed. `transient`: it will be retried and the secrets
    /// held (if any) keep their deadline; otherwise trust ends now.
    pub fn failed(&self, class: &'static str, reason: &str, transient: bool) {
        self.metrics.attestation_failure(class);
        let mut inner = self.lock();
        inner.failures += 1;
        if transient {
            inner.last_transient = Some(reason.to_owned());
            return;
        }
        let from = inner.machine.phase();
        let effect = inner
            .machine
            .withdraw(Mono::now(), class_kind(class), reason.to_owned());
        let held = inner.store.len() > 0;
        let gone = Self::apply(&mut inner, effect, None);
        let to = inner.machine.phase();
        drop(inner);
        self.changed.notify_all();
        if held {
            self.on_withdrawn();
        }
        self.audited(from, to, gone, &[]);
    }

    /// Trust ends now (drift): wipe, then say so.
    pub fn withdraw(&self, kind: &'static str, reason: &str) {
        self.end_trust(kind, reason, false);
    }

    /// The enclave is shutting down: the store is wiped here, explicitly,
    /// because the call workers, the supervisor and the watchdog still hold
    /// the lifecycle, so the store's own `Drop` never runs before the
    /// process ends; and it stays empty: a renewal that completes during
    /// the last flush of the console is refused. Then one line says so,
    /// whether or not anything was held. Returns how many secrets were wiped.
    pub fn shut_down(&self) -> usize {
        let wiped = self.end_trust("shutdown", "the enclave is shutting down", true);
        crate::info_always!(secrets = wiped; "secret store wiped at shutdown");
        wiped
    }

    /// Withdraws (and, when `last`, closes the store for good): wipe, then
    /// say so. How many secrets were wiped.
    fn end_trust(&self, kind: &'static str, reason: &str, last: bool) -> usize {
        let mut inner = self.lock();
        inner.shut_down |= last;
        let held = inner.machine.deadline().is_some();
        let wiped = inner.store.len();
        let from = inner.machine.phase();
        let effect = inner.machine.withdraw(Mono::now(), kind, reason.to_owned());
        let gone = Self::apply(&mut inner, effect, None);
        let to = inner.machine.phase();
        drop(inner);
        self.changed.notify_all();
        if held {
            self.on_withdrawn();
        }
        self.audited(from, to, gone, &[]);
        wiped
    }

    /// An attempt succeeded: `fresh` holds the new secrets, trusted until
    /// `deadline`. On success `fresh` is left empty (the old values wiped).
    #[cfg(test)]
    pub fn grant(&self, fresh: &mut SecretStore, deadline: Mono) -> Result<Phase, Refused> {
        self.grant_released(fresh, deadline, &[])
    }

    /// [`Lifecycle::grant`] of the secrets `released` (path and version;
    /// the trail records each: the old ones withdrawn, these released).
    pub fn grant_released(
        &self,
        fresh: &mut SecretStore,
        deadline: Mono,
        released: &[Held],
    ) -> Result<Phase, Refused> {
        let mut inner = self.lock();
        if inner.shut_down {
            return Err(Refused::Phase {
                event: "grant",
                phase: "shutdown",
            });
        }
        let from = inner.machine.phase();
        let effect = inner.machine.granted(Mono::now(), deadline)?;
        let gone = Self::apply(&mut inner, effect, Some((fresh, released)));
        inner.last_transient = None;
        let phase = inner.machine.phase();
        drop(inner);
        self.changed.notify_all();
        self.audited(from, phase, gone, released);
        Ok(phase)
    }

    /// The watchdog's check: wipes if the deadline has passed; the next
    /// deadline to wait for.
    pub(crate) fn tick(&self) -> Option<Mono> {
        let now = Mono::now();
        let mut inner = self.lock();
        let from = inner.machine.phase();
        let effect = inner.machine.tick(now);
        let gone = Self::apply(&mut inner, effect, None);
        let to = inner.machine.phase();
        let next = inner.machine.deadline();
        drop(inner);
        if effect == Effect::Wipe {
            self.changed.notify_all();
            self.on_withdrawn();
        }
        self.audited(from, to, gone, &[]);
        next
    }

    /// Blocks until a transition or `until`, whichever comes first.
    pub(crate) fn wait_change(&self, until: Option<Mono>) {
        let inner = self.lock();
        let timeout = match until {
            Some(d) => d.since(Mono::now()),
            None => Duration::from_secs(3600),
        };
        if !timeout.is_zero() {
            let _ = self.changed.wait_timeout(inner, timeout);
        }
    }

    /// Logged after the wipe, never before it (the console may be stalled;
    /// the logger never blocks, but the wipe does not even wait for it).
    fn on_withdrawn(&self) {
        let s = self.snapshot();
        let (kind, reason) = s.withdrawn.unwrap_or(("unknown", String::new()));
        crate::error_always!(kind = kind, reason = reason.as_str(); "secrets withdrawn");
    }

    /// Sets the largest disagreement with an authenticated clock accepted.
    pub fn set_max_drift(&self, d: Duration) {
        self.max_drift_ms.store(
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// An authenticated peer (over pinned TLS) says its time was at least
    /// `peer_unix_secs` (an HTTP `Date`, one-second resolution). If that is
    /// ahead of the guest's verifier-anchored estimate by more than the
    /// drift bound, the guest's clock was stopped or slowed by the host
    /// (e.g. the VM paused across the trust deadline): trust ends now.
    /// Only this direction is acted on: a peer cannot extend trust, at
    /// worst end it early (a peer whose clock is far ahead is a denial of
    /// service it could cause anyway by refusing to answer). Returns
    /// whether trust was withdrawn.
    pub fn witness(&self, peer_unix_secs: u64, peer: &str) -> bool {
        if self.time.current_anchor().is_none() {
            return false;
        }
        let estimate = self.time.now_millis();
        let floor = peer_unix_secs.saturating_mul(1000);
        let bound = self.max_drift_ms.load(std::sync::atomic::Ordering::Relaxed);
        if floor <= estimate.saturating_add(bound) {
            return false;
        }
        let reason = format!("{peer}'s authenticated time is {} ms ahead of the guest's clock: the guest's clock was stopped or slowed", floor - estimate);
        let held = self.deadline().is_some();
        self.withdraw("clock", &reason);
        held
    }

    /// The TEE the verifier attested (`none` before).
    pub fn tee(&self) -> &'static str {
        *self.tee.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the TEE the verifier attested.
    pub fn set_tee(&self, claimed: &str) {
        *self.tee.lock().unwrap_or_else(|e| e.into_inner()) = tee_name(claimed);
    }

    /// The trust deadline of the secrets held.
    pub fn deadline(&self) -> Option<Mono> {
        self.lock().machine.deadline()
    }

    /// How the secret store's memory is backed.
    pub fn backing(&self) -> crate::secrets::Backing {
        self.lock().store.backing()
    }

    /// HMAC-SHA256 of a secret under `key` (the test-only `secret-hash`
    /// query); `None` unless readable.
    #[cfg(feature = "test-hooks")]
    pub fn keyed_hash(&self, name: &str, key: &[u8]) -> Option<[u8; 32]> {
        let v = self.secret(name)?;
        let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), &v);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Some(out)
    }
}

/// The lifecycle as JSON, for the control channel's `status`, the health
/// document and the readiness report: phase, deadline, counters, the last
/// transient cause, the withdrawal, and the clock (its source and drift).
/// Nothing secret, nothing personal.
pub fn snapshot_json(s: &Snapshot) -> serde_json::Value {
    serde_json::json!({
        "phase": s.phase.as_str(),
        "trusted": s.trusted,
        "expires_at": s.expires_at,
        "expires_in_ms": u64::try_from(s.expires_in.as_millis()).unwrap_or(u64::MAX),
        "renewals": s.renewals,
        "withdrawals": s.withdrawals,
        "attempts": s.attempts,
        "failed_attempts": s.failures,
        "last_transient_cause": s.last_transient,
        "withdrawn": s.withdrawn.as_ref().map(|(kind, reason)| serde_json::json!({"kind": kind, "reason": reason})),
    })
}

/// The TEE names the claims use.
pub fn tee_name(claimed: &str) -> &'static str {
    match claimed {
        "snp" => "snp",
        "tdx" => "tdx",
        "sim" => "sim",
        "nitro" => "nitro",
        "azure-snp" => "azure-snp",
        "azure-tdx" => "azure-tdx",
        _ => "none",
    }
}

/// The withdrawal kind for a failure class.
fn class_kind(class: &'static str) -> &'static str {
    match class {
        "denied" => "denied",
        "clock" => "clock",
        _ => "refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifecycle() -> Arc<Lifecycle> {
        Lifecycle::new(
            SecretStore::new().unwrap(),
            Arc::new(VerifierClock::new(0)),
            "sim",
        )
    }

    fn fresh(value: &[u8]) -> SecretStore {
        let mut s = SecretStore::new().unwrap();
        s.insert("k", value).unwrap();
        s
    }

    #[test]
    fn secrets_are_readable_only_between_grant_and_deadline() {
        let l = lifecycle();
        assert!(l.secret("k").is_none());
        l.attempt();
        let mut f = fresh(b"v1");
        l.grant(&mut f, Mono::now().after(Duration::from_millis(300)))
            .unwrap();
        assert_eq!(f.len(), 0, "the fresh store was swapped in");
        assert_eq!(
            l.secret("k").as_deref().map(Vec::as_slice),
            Some(&b"v1"[..])
        );
        assert!(l.serving().is_ok());
        std::thread::sleep(Duration::from_millis(350));
        assert!(
            l.secret("k").is_none(),
            "the read itself enforces the deadline"
        );
        let s = l.snapshot();
        assert_eq!(
            (s.phase, s.trusted, s.secrets),
            (Phase::Withdrawn, false, 0)
        );
        assert_eq!(s.withdrawn.map(|w| w.0), Some("deadline"));
        assert!(l.serving().unwrap_err().contains("trust deadline passed"));
    }

    #[test]
    fn shutdown_wipes_and_no_later_grant_refills_the_store() {
        let l = lifecycle();
        l.attempt();
        l.grant(&mut fresh(b"v"), Mono::now().after(Duration::from_secs(60)))
            .unwrap();
        assert_eq!(l.shut_down(), 1);
        assert!(l.secret("k").is_none());
        assert_eq!(
            l.snapshot().withdrawn,
            Some(("shutdown", "the enclave is shutting down".to_owned()))
        );
        // A renewal that was under way when the shutdown came.
        l.attempt();
        let mut late = fresh(b"v2");
        assert_eq!(
            l.grant(&mut late, Mono::now().after(Duration::from_secs(60))),
            Err(Refused::Phase {
                event: "grant",
                phase: "shutdown"
            })
        );
        assert!(l.secret("k").is_none());
        assert_eq!(l.snapshot().secrets, 0);
        assert_eq!(l.shut_down(), 0, "nothing left to wipe");
    }

    #[test]
    fn a_final_failure_wipes_at_once_and_a_transient_one_does_not() {
        let l = lifecycle();
        l.attempt();
        l.grant(&mut fresh(b"v"), Mono::now().after(Duration::from_secs(60)))
            .unwrap();
        l.attempt();
        l.failed("unreachable", "verifier reset the connection", true);
        assert!(
            l.secret("k").is_some(),
            "transient: the secrets keep their deadline"
        );
        assert_eq!(
            l.snapshot().last_transient.as_deref(),
            Some("verifier reset the connection")
        );
        l.failed("denied", "snp.measurement", false);
        assert!(l.secret("k").is_none());
        assert_eq!(
            l.snapshot().withdrawn,
            Some(("denied", "snp.measurement".to_owned()))
        );
        assert_eq!(l.epoch(), 1);
    }

    #[test]
    fn an_authenticated_time_ahead_of_ours_withdraws_and_one_behind_does_not() {
        let l = lifecycle();
        let now_ms = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        assert!(
            !l.witness(now_ms / 1000 + 3600, "peer"),
            "before any anchor there is nothing to compare"
        );
        l.time.anchor(now_ms, Mono::now());
        l.attempt();
        l.grant(&mut fresh(b"v"), Mono::now().after(Duration::from_secs(60)))
            .unwrap();
        assert!(!l.witness(now_ms / 1000, "peer"), "the same time");
        assert!(
            !l.witness(now_ms / 1000 - 3600, "peer"),
            "a peer behind us cannot end (or extend) trust"
        );
        assert!(
            !l.witness(now_ms / 1000 + 1, "peer"),
            "within the drift bound (2 s)"
        );
        assert!(l.secret("k").is_some());
        // The host paused the guest for a minute: the peer's time is ahead.
        assert!(l.witness(now_ms / 1000 + 60, "the transcription service"));
        assert!(l.secret("k").is_none());
        let w = l.snapshot().withdrawn.unwrap();
        assert_eq!(w.0, "clock");
        assert!(
            w.1.contains("the transcription service's authenticated time is"),
            "{}",
            w.1
        );
    }

    #[test]
    fn transitions_releases_and_withdrawals_are_audited_in_order() {
        let l = lifecycle();
        let key = crate::keys::EnclaveKey::generate().unwrap();
        let audit = crate::audit::Audit::new(
            crate::config::AuditConfig {
                collector: None,
                required: false,
                queue: 64,
                deadline: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
            },
            Box::new(key.audit_signer()),
            Arc::clone(&l.time),
        );
        l.set_audit(Arc::clone(&audit));
        l.attempt();
        let v1 = [("kv/pii/pepper".to_owned(), 3)];
        l.grant_released(
            &mut fresh(b"v1"),
            Mono::now().after(Duration::from_secs(60)),
            &v1,
        )
        .unwrap();
        l.attempt();
        let v2 = [("kv/pii/pepper".to_owned(), 4)];
        l.grant_released(
            &mut fresh(b"v2"),
            Mono::now().after(Duration::from_secs(60)),
            &v2,
        )
        .unwrap();
        l.withdraw("clock", "drift");
        let got: Vec<String> = audit
            .next_batch(0, 100, Duration::ZERO)
            .into_iter()
            .map(|(_, line)| {
                let r = audit_record::Record::parse(&line).unwrap();
                r.verify_sig(key.spki()).unwrap();
                let b = serde_json::to_value(&r.body).unwrap();
                format!("{} {}", r.kind().as_str(), b)
            })
            .collect();
        let want = [
            r#"lifecycle {"from":"booting","to":"attesting"}"#,
            r#"lifecycle {"from":"attesting","to":"ready"}"#,
            r#"secret_release {"path":"kv/pii/pepper","version":3}"#,
            r#"lifecycle {"from":"ready","to":"renewing"}"#,
            r#"lifecycle {"from":"renewing","to":"ready"}"#,
            r#"secret_withdrawal {"path":"kv/pii/pepper","version":3}"#,
            r#"secret_release {"path":"kv/pii/pepper","version":4}"#,
            r#"lifecycle {"from":"ready","to":"withdrawn"}"#,
            r#"secret_withdrawal {"path":"kv/pii/pepper","version":4}"#,
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_re_attestation_restores_service() {
        let l = lifecycle();
        l.attempt();
        l.grant(
            &mut fresh(b"v1"),
            Mono::now().after(Duration::from_secs(60)),
        )
        .unwrap();
        l.withdraw("clock", "drift");
        assert_eq!(l.attempt(), Phase::ReAttesting);
        l.grant(
            &mut fresh(b"v2"),
            Mono::now().after(Duration::from_secs(60)),
        )
        .unwrap();
        assert_eq!(
            l.secret("k").as_deref().map(Vec::as_slice),
            Some(&b"v2"[..])
        );
        assert_eq!(l.snapshot().renewals, 1);
    }
}
