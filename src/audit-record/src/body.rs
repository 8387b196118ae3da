//! The kind-specific bodies. Each is a struct with a fixed field order
//! (the canonical bytes depend on it) and integers only; each string field
//! has one of three rules:
//!
//! - **digest**: 64 lowercase hex digits (a SHA-256);
//! - **name**: 1 to 128 of `A-Z a-z 0-9 . _ : / + = @ -` (TEE types, state
//!   names, request ids, check names);
//! - **text**: 1 to 256 printable ASCII characters other than `"` and `\`
//!   (secret paths, TCB descriptions, policy ids).
//!
//! `measurement` is 1 to 128 bytes of lowercase hex. No rule admits a
//! character that JSON escapes, so canonical bytes never contain an escape.

use serde::{Deserialize, Serialize};

use crate::hex;

/// What a record is about; `kind` in the record, naming its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The verifier accepted this instance's evidence.
    Attestation,
    /// A secret was released to the instance.
    SecretRelease,
    /// A released secret was withdrawn (wiped).
    SecretWithdrawal,
    /// A call was processed (or refused).
    Call,
    /// The instance's lifecycle changed state.
    Lifecycle,
    /// The verifier decided on an appraisal.
    Decision,
    /// The collector's retention job deleted old records.
    Retention,
}

impl Kind {
    /// The name as it appears in `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Attestation => "attestation",
            Kind::SecretRelease => "secret_release",
            Kind::SecretWithdrawal => "secret_withdrawal",
            Kind::Call => "call",
            Kind::Lifecycle => "lifecycle",
            Kind::Decision => "decision",
            Kind::Retention => "retention",
        }
    }

    /// Every kind, in the order of the format's documentation.
    pub const ALL: [Kind; 7] = [
        Kind::Attestation,
        Kind::SecretRelease,
        Kind::SecretWithdrawal,
        Kind::Call,
        Kind::Lifecycle,
        Kind::Decision,
        Kind::Retention,
    ];
}

/// `attestation`: the verifier accepted the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationBody {
    /// Digest: SHA-256 of the `/v1/attest` request body, byte for byte as
    /// the guest sent it and the verifier received it (evidence bundle,
    /// nonce and key together); the verifier's `decision` record carries
    /// the same digest of the same bytes.
    pub evidence_sha256: String,
    /// Name: the TEE type as the bundle names it (`sim`, `snp`, `tdx`, …).
    pub tee: String,
    /// The verifier's measurement claim, lowercase hex.
    pub measurement: String,
    /// Text: the verifier's TCB claim, rendered by the emitter.
    pub tcb: String,
    /// Name: the verifier's `request_id` of the exchange (`x-request-id`).
    pub decision_id: String,
    /// Digest: SHA-256 of the enclave key's SPKI (the attested key).
    pub enclave_spki_sha256: String,
}

/// `secret_release` and `secret_withdrawal`: which secret, never its
/// content or length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretBody {
    /// Text: the secret's path in Vault (`kv/data/app/pepper`).
    pub path: String,
    /// The secret's version in Vault.
    pub version: u64,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Processed; the result went back to the caller.
    Ok,
    /// Refused for its input (4xx).
    Rejected,
    /// Refused because the enclave was not serving (503: secrets withdrawn,
    /// audit backlog, nothing provisioned).
    Unavailable,
    /// The transcription upstream failed or timed out (502, 504).
    UpstreamError,
    /// Any other failure (500).
    Failed,
}

impl CallOutcome {
    /// The outcome of an HTTP status a call was answered with.
    pub fn of_status(status: u16) -> CallOutcome {
        match status {
            200..=299 => CallOutcome::Ok,
            503 => CallOutcome::Unavailable,
            502 | 504 => CallOutcome::UpstreamError,
            400..=499 => CallOutcome::Rejected,
            _ => CallOutcome::Failed,
        }
    }
}

/// `call`: a processed call, by keyed pseudonym only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallBody {
    /// Digest: [`crate::CallRefKey::call_ref`] of the call id; null when the
    /// call was refused before its id was read (or no key was provisioned).
    pub call_ref: Option<String>,
    /// Unix milliseconds when the request arrived.
    pub start_ms: u64,
    /// Milliseconds from arrival to the answer.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: CallOutcome,
}

/// `lifecycle`: a state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleBody {
    /// Name: the state left.
    pub from: String,
    /// Name: the state entered.
    pub to: String,
}

/// The verifier's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The evidence was accepted and a token issued.
    Accepted,
    /// The evidence was refused.
    Denied,
}

/// `decision`: the verifier's record of one appraisal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Name: the decision's `request_id` (the guest's `decision_id`).
    pub request_id: String,
    /// Accepted or denied.
    pub verdict: Verdict,
    /// Name: the TEE type the bundle claimed.
    pub tee: String,
    /// The measurement, lowercase hex, when known (a denial may have none).
    pub measurement: Option<String>,
    /// Digest: SHA-256 of the enclave key's SPKI, when known.
    pub enclave_spki_sha256: Option<String>,
    /// Digest: SHA-256 of the `/v1/attest` request body as received (the
    /// guest's `attestation` record has the same digest).
    pub evidence_sha256: String,
    /// Text: the policy file's `id`.
    pub policy_id: String,
    /// The policy file's `version`.
    pub policy_version: u64,
    /// Name: the check that failed (denials only).
    pub denied_check: Option<String>,
}

/// `retention`: the collector deleted old records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionBody {
    /// The stream whose prefix was deleted (its id).
    pub stream: String,
    /// Every record of that stream with seq ≤ this was deleted.
    pub through_seq: u64,
    /// Digest: the hash of the last deleted record (seq `through_seq`), so
    /// the first kept record's `prev` links to this statement.
    pub last_hash: String,
    /// Records with `time` before this (Unix ms) were deleted.
    pub before_time: u64,
    /// How many.
    pub deleted_count: u64,
}

/// A record's body; the variant is the record's [`Kind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Body {
    /// `attestation`.
    Attestation(AttestationBody),
    /// `secret_release`.
    SecretRelease(SecretBody),
    /// `secret_withdrawal`.
    SecretWithdrawal(SecretBody),
    /// `call`.
    Call(CallBody),
    /// `lifecycle`.
    Lifecycle(LifecycleBody),
    /// `decision`.
    Decision(DecisionBody),
    /// `retention`.
    Retention(RetentionBody),
}

/// A body field that breaks its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name.
    pub field: &'static str,
    /// Its rule (`digest`, `name`, `text`, `measurement`).
    pub rule: &'static str,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "body.{} is not a valid {}", self.field, self.rule)
    }
}

impl std::error::Error for FieldError {}

impl Body {
    /// The kind naming this body.
    pub fn kind(&self) -> Kind {
        match self {
            Body::Attestation(_) => Kind::Attestation,
            Body::SecretRelease(_) => Kind::SecretRelease,
            Body::SecretWithdrawal(_) => Kind::SecretWithdrawal,
            Body::Call(_) => Kind::Call,
            Body::Lifecycle(_) => Kind::Lifecycle,
            Body::Decision(_) => Kind::Decision,
            Body::Retention(_) => Kind::Retention,
        }
    }

    /// The body of `kind` from its JSON value (unknown fields refused).
    pub(crate) fn from_value(kind: Kind, v: serde_json::Value) -> Result<Body, serde_json::Error> {
        use serde_json::from_value as from;
        Ok(match kind {
            Kind::Attestation => Body::Attestation(from(v)?),
            Kind::SecretRelease => Body::SecretRelease(from(v)?),
            Kind::SecretWithdrawal => Body::SecretWithdrawal(from(v)?),
            Kind::Call => Body::Call(from(v)?),
            Kind::Lifecycle => Body::Lifecycle(from(v)?),
            Kind::Decision => Body::Decision(from(v)?),
            Kind::Retention => Body::Retention(from(v)?),
        })
    }

    /// Checks every string field against its rule.
    pub fn validate(&self) -> Result<(), FieldError> {
        match self {
            Body::Attestation(b) => {
                digest("evidence_sha256", &b.evidence_sha256)?;
                name("tee", &b.tee)?;
                measurement("measurement", &b.measurement)?;
                text("tcb", &b.tcb)?;
                name("decision_id", &b.decision_id)?;
                digest("enclave_spki_sha256", &b.enclave_spki_sha256)
            }
            Body::SecretRelease(b) | Body::SecretWithdrawal(b) => text("path", &b.path),
            Body::Call(b) => match &b.call_ref {
                Some(r) => digest("call_ref", r),
                None => Ok(()),
            },
            Body::Lifecycle(b) => {
                name("from", &b.from)?;
                name("to", &b.to)
            }
            Body::Decision(b) => {
                name("request_id", &b.request_id)?;
                name("tee", &b.tee)?;
                if let Some(m) = &b.measurement {
                    measurement("measurement", m)?;
                }
                if let Some(s) = &b.enclave_spki_sha256 {
                    digest("enclave_spki_sha256", s)?;
                }
                digest("evidence_sha256", &b.evidence_sha256)?;
                text("policy_id", &b.policy_id)?;
                match &b.denied_check {
                    Some(c) => name("denied_check", c),
                    None => Ok(()),
                }
            }
            Body::Retention(b) => {
                if !hex::is_hex_of(&b.stream, 16) {
                    return Err(FieldError {
                        field: "stream",
                        rule: "stream",
                    });
                }
                digest("last_hash", &b.last_hash)
            }
        }
    }
}

fn digest(field: &'static str, s: &str) -> Result<(), FieldError> {
    if hex::is_hex_of(s, 32) {
        Ok(())
    } else {
        Err(FieldError {
            field,
            rule: "digest",
        })
    }
}

fn measurement(field: &'static str, s: &str) -> Result<(), FieldError> {
    if !s.is_empty() && s.len() <= 256 && hex::decode(s).is_some() {
        Ok(())
    } else {
        Err(FieldError {
            field,
            rule: "measurement",
        })
    }
}

/// Whether `s` is a valid **name** (see the module documentation).
pub fn is_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._:/+=@-".contains(&c))
}

/// Whether `s` is a valid **text** (see the module documentation).
pub fn is_text(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
}

fn name(field: &'static str, s: &str) -> Result<(), FieldError> {
    if is_name(s) {
        Ok(())
    } else {
        Err(FieldError {
            field,
            rule: "name",
        })
    }
}

fn text(field: &'static str, s: &str) -> Result<(), FieldError> {
    if is_text(s) {
        Ok(())
    } else {
        Err(FieldError {
            field,
            rule: "text",
        })
    }
}
