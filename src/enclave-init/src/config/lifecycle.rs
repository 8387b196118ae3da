//! `[lifecycle]`: the boot deadline, the renewal schedule and the bounds
//! that withdraw secrets.

use std::time::Duration;

use super::fields::{Field, Fields, Kind};
use super::ConfigError;

pub(super) const FIELDS: &[Field] = &[
    ("lifecycle.boot_deadline_ms", Kind::Int, Some("120000")),
    ("lifecycle.attempt_timeout_ms", Kind::Int, Some("20000")),
    ("lifecycle.renew_from_pct", Kind::Int, Some("50")),
    ("lifecycle.renew_to_pct", Kind::Int, Some("75")),
    ("lifecycle.renew_margin_ms", Kind::Int, Some("1000")),
    ("lifecycle.max_clock_drift_ms", Kind::Int, Some("2000")),
    ("lifecycle.reattest_cap_ms", Kind::Int, Some("30000")),
];

/// The lifecycle's schedule and bounds (`[lifecycle]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleConfig {
    /// The first attestation and provisioning, retried on transient
    /// failures, must succeed within this much of the boot, or boot fails.
    pub boot_deadline: Duration,
    /// Bound on one whole attempt (verifier and Vault, connect, TLS and
    /// every read and write together).
    pub attempt_timeout: Duration,
    /// Renewal happens at a random instant between these percentages of
    /// the trust lifetime (per guest and per renewal: fleets spread out).
    pub renew_from_pct: u8,
    /// See `renew_from_pct`.
    pub renew_to_pct: u8,
    /// A renewal's retries end this long before the trust deadline.
    pub renew_margin: Duration,
    /// Guest and verifier time may disagree by this much at a renewal;
    /// beyond it the secrets are withdrawn (the host moved the guest's clock).
    pub max_clock_drift: Duration,
    /// The longest pause between re-attestation rounds after a withdrawal.
    pub reattest_cap: Duration,
}

pub(super) fn parse(fields: &Fields) -> Result<LifecycleConfig, ConfigError> {
    let pct = |name| {
        fields
            .integer(name, 1..=95)
            .map(|n| u8::try_from(n).unwrap_or(50))
    };
    let (from, to) = (
        pct("lifecycle.renew_from_pct")?,
        pct("lifecycle.renew_to_pct")?,
    );
    if to < from {
        return Err(ConfigError::Field {
            field: "lifecycle.renew_to_pct".to_owned(),
            origin: fields.get("lifecycle.renew_to_pct")?.1,
            reason: format!("{to} is below lifecycle.renew_from_pct ({from})"),
        });
    }
    Ok(LifecycleConfig {
        boot_deadline: fields.millis("lifecycle.boot_deadline_ms", 1000..=3_600_000)?,
        attempt_timeout: fields.millis("lifecycle.attempt_timeout_ms", 100..=600_000)?,
        renew_from_pct: from,
        renew_to_pct: to,
        renew_margin: fields.millis("lifecycle.renew_margin_ms", 0..=600_000)?,
        max_clock_drift: fields.millis("lifecycle.max_clock_drift_ms", 1..=3_600_000)?,
        reattest_cap: fields.millis("lifecycle.reattest_cap_ms", 1000..=3_600_000)?,
    })
}
