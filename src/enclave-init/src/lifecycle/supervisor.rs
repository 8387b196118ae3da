//! The supervisor: the one thread that renews trust. It owns no lock
//! anyone else waits on, and nothing waits on it: the control channel only
//! reads the lifecycle's snapshot, and the watchdog enforces the deadline
//! without it. If the host stalls every exchange, the supervisor is stuck
//! in a bounded wait and trust still ends on time.
//!
//! Schedule:
//! 1. **Boot** ([`first`]): the first exchange, transient failures retried
//!    with backoff and full jitter until the boot deadline; a final failure
//!    (a denial, a refusal, a pin mismatch) ends the boot at once.
//! 2. **Renewal**: at an instant drawn at random in a window of the
//!    lifetime (by default between 50 % and 75 %), per guest and per
//!    renewal, so guests booted together spread out instead of renewing in
//!    lockstep. Transient failures are retried until the trust deadline
//!    minus a margin, never past it; a final one withdraws at once.
//! 3. **Re-attestation**: after a withdrawal, rounds of attempts with
//!    growing (jittered, capped) pauses between them, until one succeeds.
//!
//! Every attempt is a fresh exchange ([`super::exchange::Exchange::run`])
//! under its own deadline (`lifecycle.attempt_timeout_ms`, and never past
//! the phase's deadline).

use std::sync::Arc;
use std::time::Duration;

use super::clock::{Mono, SystemClock};
use super::exchange::{Exchange, ExchangeError, Grant};
use super::Lifecycle;
use crate::config::LifecycleConfig;
use crate::logger::chain;
use crate::retry::{self, Backoff, Class, GaveUp, Jitter, SystemJitter};
use crate::service::tls::ServingCert;

/// Runs the first exchange at boot: transient failures retried until
/// `cfg.boot_deadline` has passed since `started`; the grant installed.
pub fn first(
    lifecycle: &Lifecycle,
    exchange: &Exchange,
    cfg: &LifecycleConfig,
    started: Mono,
) -> Result<Grant, ExchangeError> {
    let deadline = started.after(cfg.boot_deadline);
    let mut grant = attempts(
        lifecycle,
        exchange,
        cfg,
        deadline,
        deadline,
        &mut SystemJitter,
    )
    .map_err(|g| g.last)?;
    install(lifecycle, &mut grant)
        .map_err(|why| ExchangeError::Attest(crate::attest::AttestError::Token(why)))?;
    Ok(grant)
}

/// Attempts under retry: none starts after `start_by`, none runs past
/// `end_by` (nor longer than the attempt timeout); each failure recorded.
fn attempts(
    lifecycle: &Lifecycle,
    exchange: &Exchange,
    cfg: &LifecycleConfig,
    start_by: Mono,
    end_by: Mono,
    jitter: &mut dyn Jitter,
) -> Result<Grant, GaveUp<ExchangeError>> {
    let mut observe = |attempt: u32, e: &ExchangeError, class: Class, wait: Option<Duration>| {
        if let Some(wait) = wait {
            let cause = chain(e);
            lifecycle.failed(e.label(), &cause, true);
            crate::warn!(attempt = attempt, class = e.label(), retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), cause = cause.as_str();
                "attestation attempt failed; retrying");
        } else if class.is_transient() {
            crate::warn!(attempt = attempt, class = e.label(), cause = chain(e).as_str(); "attestation attempt failed; no time left for another");
        }
    };
    retry::run(
        start_by,
        Backoff::DEFAULT,
        &SystemClock,
        jitter,
        &mut observe,
        |_| {
            lifecycle.attempt();
            exchange.run(end_by.min(Mono::now().after(cfg.attempt_timeout)))
        },
    )
}

/// Swaps the grant's store in; `Err` when its deadline had already passed.
fn install(lifecycle: &Lifecycle, grant: &mut Grant) -> Result<(), String> {
    // The attestation's record first: the releases that follow rest on it.
    if let Some(audit) = lifecycle.audit() {
        audit.emit(audit_record::Body::Attestation(
            grant.attestation.audit.clone(),
        ));
    }
    lifecycle
        .grant_released(&mut grant.store, grant.deadline, &grant.released)
        .map(|_| ())
        .map_err(|e| e.to_string())?;
    lifecycle.set_tee(&grant.attestation.tee);
    Ok(())
}

/// The renewal thread's state.
pub struct Supervisor {
    lifecycle: Arc<Lifecycle>,
    exchange: Exchange,
    cfg: LifecycleConfig,
    serving: Option<Arc<ServingCert>>,
}

impl Supervisor {
    /// The supervisor of an enclave that has just been granted trust.
    pub fn new(
        lifecycle: Arc<Lifecycle>,
        exchange: Exchange,
        cfg: LifecycleConfig,
        serving: Option<Arc<ServingCert>>,
    ) -> Supervisor {
        Supervisor {
            lifecycle,
            exchange,
            cfg,
            serving,
        }
    }

    /// Starts the thread.
    pub fn spawn(self) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("supervisor".into())
            .spawn(move || self.run(&mut SystemJitter))?;
        Ok(())
    }

    fn run(&self, jitter: &mut dyn Jitter) {
        let mut next = self.renewal_instant(jitter);
        let mut final_failures = 0u32;
        loop {
            std::thread::sleep(next.since(Mono::now()));
            let snap = self.lifecycle.snapshot();
            // Renewing: retry until the deadline less the margin. After a
            // withdrawal: one round of attempts under the attempt timeout.
            let now = Mono::now();
            // Renewing: attempts start until the trust deadline less the
            // margin, and may run until the deadline itself (one that ends
            // in time replaces the secrets without a gap). Re-attesting: a
            // round of three attempt timeouts.
            let (start_by, end_by) = match (snap.trusted, self.lifecycle.deadline()) {
                (true, Some(d)) => {
                    let margin = Mono::from_millis(d.as_millis().saturating_sub(
                        u64::try_from(self.cfg.renew_margin.as_millis()).unwrap_or(u64::MAX),
                    ));
                    // Too close for the margin: use what is left.
                    (if margin > now { margin } else { d }, d)
                }
                _ => {
                    let round = now.after(self.cfg.attempt_timeout.saturating_mul(3));
                    (round, round)
                }
            };
            match attempts(
                &self.lifecycle,
                &self.exchange,
                &self.cfg,
                start_by,
                end_by,
                jitter,
            ) {
                Ok(mut grant) => {
                    if let Err(why) = install(&self.lifecycle, &mut grant) {
                        self.lifecycle.failed("token", &why, true);
                        next = Mono::now().after(Backoff::DEFAULT.wait(
                            0,
                            None,
                            Duration::from_secs(5),
                            jitter,
                        ));
                        continue;
                    }
                    final_failures = 0;
                    self.rotate_certificate(&grant);
                    let s = self.lifecycle.snapshot();
                    crate::info_always!(renewals = s.renewals, secrets = grant.count, bound_by = grant.bound_by, expires_in_ms = u64::try_from(s.expires_in.as_millis()).unwrap_or(u64::MAX);
                        "re-attested and secrets renewed");
                    next = self.renewal_instant(jitter);
                }
                Err(gave_up) if gave_up.final_failure => {
                    // Trust ends now; then re-attest, pausing longer after
                    // each refusal (a drift re-attests at once: the
                    // verifier's fresh time has re-anchored the clock).
                    let cause = chain(&gave_up.last);
                    self.lifecycle.failed(gave_up.last.label(), &cause, false);
                    let pause = if gave_up.last.label() == "clock" {
                        Duration::ZERO
                    } else {
                        final_failures = final_failures.saturating_add(1);
                        let b = Backoff {
                            base: Duration::from_secs(1),
                            cap: self.cfg.reattest_cap,
                            max_retry_after: self.cfg.reattest_cap,
                        };
                        b.wait(final_failures, None, self.cfg.reattest_cap, jitter)
                    };
                    next = Mono::now().after(pause);
                }
                Err(gave_up) => {
                    // Out of time for this round; the secrets (if any) stay
                    // until their deadline, when the watchdog wipes them.
                    crate::warn_always!(attempts = gave_up.attempts, cause = chain(&gave_up.last).as_str(); "renewal round ended without success");
                    next = match self.lifecycle.deadline() {
                        Some(d) if self.lifecycle.snapshot().trusted => d,
                        _ => Mono::now().after(Backoff::DEFAULT.wait(
                            3,
                            None,
                            Duration::from_secs(5),
                            jitter,
                        )),
                    };
                }
            }
        }
    }

    /// A random instant in the renewal window of the current lifetime.
    fn renewal_instant(&self, jitter: &mut dyn Jitter) -> Mono {
        let now = Mono::now();
        let Some(deadline) = self.lifecycle.deadline() else {
            return now;
        };
        let lifetime = deadline.since(now).as_millis();
        let (from, to) = (
            u128::from(self.cfg.renew_from_pct),
            u128::from(self.cfg.renew_to_pct),
        );
        let span = u64::try_from((to - from.min(to)) * lifetime / 100).unwrap_or(0);
        let at = u64::try_from(from * lifetime / 100)
            .unwrap_or(0)
            .saturating_add(jitter.below(span.saturating_add(1)));
        let when = now.after(Duration::from_millis(at));
        crate::info_always!(in_ms = at, lifetime_ms = u64::try_from(lifetime).unwrap_or(u64::MAX); "next re-attestation scheduled");
        when
    }

    /// Swaps the renewed serving certificate in.
    fn rotate_certificate(&self, grant: &Grant) {
        if let (Some(cert), Some(chain)) = (&self.serving, &grant.serving_chain) {
            if let Err(why) = cert.replace(chain) {
                crate::error_always!(reason = why.as_str(); "the renewed serving certificate was refused; keeping the current one");
            }
        }
    }
}
