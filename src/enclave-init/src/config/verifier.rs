//! `[verifier]`: how to reach the attestation verifier, and whom to trust
//! there.

use std::time::Duration;

use transport::Addr;

use super::fields::{Field, Fields, Kind};
use super::values::{optional_addr, pinned_ca, server_name};
use super::ConfigError;

pub(super) const FIELDS: &[Field] = &[
    ("verifier.addr", Kind::Str, Some("")),
    (
        "verifier.server_name",
        Kind::Str,
        Some("verifier.enclave.local"),
    ),
    ("verifier.ca", Kind::Str, Some("")),
    ("verifier.timeout_ms", Kind::Int, Some("10000")),
    ("verifier.max_token_ttl_s", Kind::Int, Some("300")),
];

/// How to reach the verifier, and whom to trust there.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifierConfig {
    /// `None`: no attestation (development images only; nothing secret is
    /// provisioned without it).
    pub addr: Option<Addr>,
    /// The name its TLS certificate must carry.
    pub server_name: String,
    /// The one CA trusted for it (PEM, measured with this file).
    pub ca_pem: String,
    /// Bound on connecting and on each read and write.
    pub timeout: Duration,
    /// The longest token lifetime the guest accepts (the verifier's policy
    /// caps it too; this is the guest's own bound).
    pub max_token_ttl: Duration,
}

pub(super) fn parse(fields: &Fields) -> Result<VerifierConfig, ConfigError> {
    let addr = optional_addr(fields, "verifier.addr")?;
    let used = addr.is_some();
    Ok(VerifierConfig {
        addr,
        server_name: server_name(fields, "verifier.server_name")?,
        ca_pem: pinned_ca(fields, "verifier.ca", used)?,
        timeout: fields.millis("verifier.timeout_ms", 1..=600_000)?,
        max_token_ttl: Duration::from_secs(
            fields
                .integer("verifier.max_token_ttl_s", 1..=86_400)?
                .unsigned_abs(),
        ),
    })
}
