//! The attestation verifier service.
//!
//! Module map:
//! - [`service`]: the HTTPS server (rustls, TLS 1.3 only) and its routes:
//!   `POST /v1/challenge`, `POST /v1/attest`,
//!   `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json`,
//!   `GET /healthz`, `GET /metrics`, `GET /v1/platforms`.
//! - [`deadline`]: a socket that cuts a whole phase (handshake, idle,
//!   request) at its deadline, and crawlers while others wait.
//! - [`admission`]: the workers' bounded queue and the per-source cap.
//! - [`nonce`]: stateless, connection-bound, single-use nonces.
//! - [`token`]: the ES384 JWT, JWKS, the `cnf` key thumbprint.
//! - [`client_cert`]: the short-lived client certificate for the enclave
//!   key (proof-of-possession login to OpenBao's `cert` auth).
//! - [`decision`]: the decision record, one JSON log line per appraisal.
//! - [`audit`]: the same decision as a signed audit record, shipped to the
//!   audit collector through a bounded queue (`--audit`).
//! - [`metrics`]: Prometheus counters.
//! - [`platforms`]: the TCB each platform seen has, against what the
//!   collateral now calls current (`GET /v1/platforms`, `/metrics`).
//!
//! The appraisal itself (every check on the evidence) is not here: the
//! service calls an [`Appraiser`], the one appraisal library shared with the
//! offline `enclavectl verify`. [`PolicyAppraiser`] first resolves the
//! collateral the evidence needs itself (crate `collateral`: AMD KDS, Intel
//! PCS, its cache or an offline directory), so that host-supplied
//! collateral is only a hint.
//!
//! Replicas: every replica is configured with the same token signing key,
//! nonce key and policy file, and keeps no state another replica needs.
//! Nonces are verified by HMAC and bound to the TLS connection that asked
//! for them; a TCP load balancer sends a connection to one replica, so the
//! per-replica used-nonce set is enough to make each nonce single-use.

#![forbid(unsafe_code)]

pub mod admission;
pub mod audit;
pub mod client_cert;
pub mod deadline;
pub mod decision;
pub mod metrics;
pub mod nonce;
pub mod platforms;
pub mod service;
pub mod token;

use serde_json::{Map, Value};
use wire::verifier::Denial;
use wire::EvidenceBundle;

/// The label of the TLS exporter that binds evidence to its connection
/// (RFC 8446 §7.5; 32 bytes, no context). The guest uses the same.
pub const EXPORTER_LABEL: &[u8] = wire::verifier::EXPORTER_LABEL;

/// The check names the service itself puts in a denial, besides the
/// appraisal's ([`appraisal::Check::ALL`]): the nonce's
/// ([`nonce::NonceError::check`]), the enclave key's and a verifier bug's.
/// The unit test `service_checks_are_the_ones_produced` keeps this list
/// equal to the names the sources produce.
pub const SERVICE_CHECKS: &[&str] = &[
    "nonce.length",
    "nonce.binding",
    "nonce.expired",
    "nonce.replayed",
    "nonce.capacity",
    "enclave_key",
    "internal",
];

/// Every check name the verifier can put in a denial: the appraisal's, then
/// the service's.
pub fn all_check_names() -> Vec<&'static str> {
    appraisal::Check::ALL
        .iter()
        .map(|c| c.as_str())
        .chain(SERVICE_CHECKS.iter().copied())
        .collect()
}

/// An appraisal's outcome (claims or the first failed check) and, when the
/// appraiser traces, the checks it made in order.
pub type Traced = (
    Result<Map<String, Value>, Denial>,
    Option<Vec<decision::CheckResult>>,
);

/// Decides whether evidence is acceptable.
pub trait Appraiser: Send + Sync {
    /// Appraises `bundle`, whose REPORT_DATA must equal `expected_report_data`,
    /// at the verifier's time `now` (Unix seconds). Returns the claims for
    /// the token, or the first failed check.
    fn appraise(
        &self,
        bundle: &EvidenceBundle,
        expected_report_data: &[u8; 64],
        now: i64,
    ) -> Result<Map<String, Value>, Denial>;

    /// [`Appraiser::appraise`] with the checks it actually made, in order
    /// (the decision record's `checks`). `None` by default: an appraiser
    /// that does not trace its checks leaves the record with the failed
    /// check alone (denied) or no list (accepted), never a guessed one.
    fn appraise_traced(
        &self,
        bundle: &EvidenceBundle,
        expected_report_data: &[u8; 64],
        now: i64,
    ) -> Traced {
        (self.appraise(bundle, expected_report_data, now), None)
    }

    /// The policy appraisals run against (the decision record's `policy`);
    /// unnamed by default.
    fn policy_ref(&self) -> decision::PolicyRef {
        decision::PolicyRef::default()
    }

    /// Seconds since the oldest changing collateral document (CRL, TCB
    /// info, QE identity) `bundle`'s appraisal used was issued, at `now`
    /// (the decision record's `collateral.age_secs`); unknown by default.
    fn collateral_age(&self, _bundle: &EvidenceBundle, _now: i64) -> Option<u64> {
        None
    }

    /// Extra Prometheus lines (collateral, platforms); none by default.
    fn metrics(&self) -> String {
        String::new()
    }

    /// The platforms seen and their TCB (`GET /v1/platforms`); none by default.
    fn platforms(&self) -> Value {
        Value::Array(Vec::new())
    }
}

/// The production [`Appraiser`]: the appraisal library with one policy,
/// the verifier's own collateral, and the record of platforms seen.
pub struct PolicyAppraiser {
    inner: appraisal::Appraiser,
    policy: appraisal::Policy,
    resolver: Option<std::sync::Arc<collateral::Resolver>>,
    store: Option<collateral::store::Store>,
    platforms: platforms::Platforms,
}

impl PolicyAppraiser {
    /// Pins the compiled-in roots and takes the policy; collateral comes
    /// from the bundle only until [`PolicyAppraiser::with_collateral`].
    pub fn new(policy: appraisal::Policy) -> Result<PolicyAppraiser, appraisal::RootPinError> {
        Ok(PolicyAppraiser {
            inner: appraisal::Appraiser::new()?,
            policy,
            resolver: None,
            store: None,
            platforms: platforms::Platforms::default(),
        })
    }

    /// Resolves collateral with `resolver` before each appraisal, and keeps
    /// the last accepted evidence per platform in `store`.
    pub fn with_collateral(
        mut self,
        resolver: std::sync::Arc<collateral::Resolver>,
        store: Option<collateral::store::Store>,
    ) -> Self {
        self.resolver = Some(resolver);
        self.store = store;
        self
    }
}

impl Appraiser for PolicyAppraiser {
    fn appraise(
        &self,
        bundle: &EvidenceBundle,
        expected_report_data: &[u8; 64],
        now: i64,
    ) -> Result<Map<String, Value>, Denial> {
        self.appraise_traced(bundle, expected_report_data, now).0
    }

    fn appraise_traced(
        &self,
        bundle: &EvidenceBundle,
        expected_report_data: &[u8; 64],
        now: i64,
    ) -> Traced {
        let collateral = match &self.resolver {
            Some(r) => r.resolve(bundle, now),
            None => appraisal::Collateral::none(),
        };
        let (result, trace) = self.inner.appraise_traced(
            bundle,
            &self.policy,
            now,
            Some(expected_report_data),
            &collateral,
        );
        let checks = Some(decision::checks_of(&trace));
        let claims = match result {
            Ok(c) => c,
            Err(d) => return (Err(Denial::from(d)), checks),
        };
        let result = match serde_json::to_value(claims) {
            Ok(Value::Object(m)) => {
                self.platforms.seen(bundle, &m, now);
                if let Some(store) = &self.store {
                    if let Err(e) = store.record(bundle, &collateral, &m, now) {
                        log::warn!("evidence record not kept: {e}");
                    }
                }
                Ok(m)
            }
            _ => Err(Denial {
                check: "internal".into(),
                got: "claims not serializable".into(),
                want: "a claims object".into(),
                hint: "a verifier bug; report it".into(),
            }),
        };
        (result, checks)
    }

    fn policy_ref(&self) -> decision::PolicyRef {
        decision::PolicyRef {
            id: self.policy.id.clone(),
            version: self.policy.version,
            digest: self
                .policy
                .digest()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }

    fn collateral_age(&self, bundle: &EvidenceBundle, now: i64) -> Option<u64> {
        let issued = self.resolver.as_ref()?.oldest_issued(bundle)?;
        u64::try_from(now.saturating_sub(issued)).ok()
    }

    fn metrics(&self) -> String {
        let mut out = self.platforms.render();
        if let Some(r) = &self.resolver {
            out.push_str(&platforms::render_cache(r.cache().stats()));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            out.push_str(&platforms::render_collateral_age(&r.cache().entries(), now));
        }
        out
    }

    fn platforms(&self) -> Value {
        self.platforms.to_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The names the service's sources produce: the string literal of every
    /// `check` field of a `Denial` built here, and every `NonceError::check`.
    /// Together they are exactly [`SERVICE_CHECKS`], and none is also an
    /// appraisal check name.
    #[test]
    fn service_checks_are_the_ones_produced() {
        let sources = [
            include_str!("lib.rs"),
            include_str!("service.rs"),
            include_str!("nonce.rs"),
            include_str!("client_cert.rs"),
            include_str!("metrics.rs"),
            include_str!("platforms.rs"),
            include_str!("token.rs"),
            include_str!("decision.rs"),
        ];
        let marker = ["check:", " \""].concat();
        let mut produced: BTreeSet<&str> = sources
            .iter()
            .flat_map(|s| s.split(marker.as_str()).skip(1))
            .filter_map(|rest| rest.split_once('"').map(|(name, _)| name))
            .collect();
        use nonce::NonceError::*;
        produced.extend([Length, Forged, Expired, Replayed, Capacity].map(|e| e.check()));
        let listed: BTreeSet<&str> = SERVICE_CHECKS.iter().copied().collect();
        assert_eq!(produced, listed);
        let all = all_check_names();
        let unique: BTreeSet<&str> = all.iter().copied().collect();
        assert_eq!(
            unique.len(),
            all.len(),
            "a service name is also an appraisal name"
        );
    }
}
