//! The verifier's API (`POST /v1/challenge`, `POST /v1/attest`) and its
//! structured denial.

use serde::{Deserialize, Serialize};

use crate::{Bytes, EvidenceBundle};

/// Length of a verifier nonce.
pub const NONCE_LEN: usize = 32;

/// `POST /v1/challenge` response: a single-use nonce and the verifier's
/// clock (the guest's clock is host-controlled, so the guest takes time from
/// here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    /// The nonce, [`NONCE_LEN`] bytes.
    pub nonce: Bytes,
    /// The verifier's time, Unix seconds.
    pub verifier_time: u64,
    /// When the nonce stops being accepted, Unix seconds.
    pub expires_at: u64,
    /// The verifier's time, Unix milliseconds (the guest anchors its
    /// deadlines on it; older verifiers send only `verifier_time`, which
    /// the guest then rounds up, erring towards earlier deadlines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier_time_ms: Option<u64>,
}

impl Challenge {
    /// The verifier's time in milliseconds: `verifier_time_ms`, or the
    /// latest instant `verifier_time` (whole seconds) can stand for. A
    /// later estimate of the verifier's time makes every deadline derived
    /// from it earlier, never later.
    pub fn time_ms(&self) -> u64 {
        match self.verifier_time_ms {
            Some(ms) if ms / 1000 == self.verifier_time => ms,
            _ => self.verifier_time.saturating_mul(1000).saturating_add(999),
        }
    }
}

/// `POST /v1/attest` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestRequest {
    /// The nonce from the challenge.
    pub nonce: Bytes,
    /// DER SubjectPublicKeyInfo of the enclave key the token is bound to.
    pub enclave_key_spki: Bytes,
    /// The evidence.
    pub bundle: EvidenceBundle,
    /// Ask for a client certificate for the enclave key besides the token
    /// (proof-of-possession login to OpenBao's `cert` auth). Sent only when
    /// true, so that a guest in JWT mode speaks to older verifiers as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_certificate: bool,
}

/// `POST /v1/attest` success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestResponse {
    /// The attestation token (a JWT).
    pub token: String,
    /// Its expiry, Unix seconds.
    pub expires_at: u64,
    /// When the request asked for it and the verifier has a client CA: an
    /// X.509 client certificate (PEM) for the enclave key, signed by the
    /// verifier's client CA, valid until `expires_at`, carrying the claims
    /// an OpenBao `cert` role checks (measurement URI SAN, tee as OU).
    /// Absent otherwise, so older guests never see the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
}

/// A structured denial: which check failed first, what it saw, what it
/// wanted, and a hint for the operator. Never carries secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Denial {
    /// The check's stable name, e.g. `snp.measurement`.
    pub check: String,
    /// What the evidence had.
    pub got: String,
    /// What the policy wants.
    pub want: String,
    /// What to do about it.
    pub hint: String,
}

/// The TLS exporter label binding evidence to the verifier connection
/// (RFC 8446 §7.5): 32 bytes, no context. Guest and verifier use this one
/// constant.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-enclave-init-attestation";
