//! The audit trail's record format (issue 19): one signed, hash-chained JSON
//! object per line, written by the guest (signed by the attested enclave
//! key) and by the verifier (signed by its token key), stored by the
//! collector (`enclavectl audit serve`) and checked by `enclavectl audit
//! verify`. The JSON Schema is `src/audit-record/schema.json`.
//!
//! # A record
//!
//! ```text
//! {"v":1,"stream":"…","seq":0,"prev":"00…00","time":1796000000000,
//!  "kind":"lifecycle","body":{"from":"booting","to":"attesting"},
//!  "alg":"ES256","sig":"3045…"}
//! ```
//!
//! Fields, in this order (the order is part of the format):
//!
//! - `v`: format version, always `1`.
//! - `stream`: the emitting instance: the first 16 bytes of SHA-256 of the
//!   signing key's DER SubjectPublicKeyInfo, 32 lowercase hex digits
//!   ([`stream_id`]). A stream is bound to one key, and the guest's key is
//!   the attested one (its SPKI's digest is in the stream's attestation
//!   record and in the verifier's decision), so a stream cannot be carried
//!   over to another instance.
//! - `seq`: the record's number in its stream, from 0, without gaps.
//! - `prev`: the previous record's hash ([`Record::hash`]), 64 lowercase hex
//!   digits; 64 zeros for `seq` 0.
//! - `time`: Unix milliseconds on the emitter's clock (the guest's is
//!   anchored to the verifier's time, not the host's).
//! - `kind`: one of `attestation`, `secret_release`, `secret_withdrawal`,
//!   `call`, `lifecycle`, `decision`, `retention`; it names `body`'s shape.
//! - `body`: an object with exactly the fields of its kind ([`Body`]).
//! - `alg`: the signature algorithm ([`Alg`]): `ES256` (the enclave key,
//!   ECDSA P-256 SHA-256, ASN.1 DER signature) or `ES384` (the verifier's
//!   token key, ECDSA P-384 SHA-384, fixed 96-byte `r‖s`).
//! - `sig`: the signature over the canonical bytes, lowercase hex.
//!
//! Bodies (every string is bounded; see [`body`] for each rule):
//!
//! - `attestation` {`evidence_sha256`, `tee`, `measurement`, `tcb`,
//!   `decision_id`, `enclave_spki_sha256`}: after the verifier accepted the
//!   guest's evidence. `decision_id` is the verifier's `request_id` (its
//!   `x-request-id`), which names the verifier's `decision` record.
//! - `secret_release` / `secret_withdrawal` {`path`, `version`}: never the
//!   content, never its length.
//! - `call` {`call_ref`, `start_ms`, `duration_ms`, `outcome`}: `call_ref`
//!   is a keyed pseudonym of the call id ([`CallRefKey`]) or null when the
//!   request was refused before a call id was read; no other call data.
//! - `lifecycle` {`from`, `to`}: state names.
//! - `decision` {`request_id`, `verdict`, `tee`, `measurement`,
//!   `enclave_spki_sha256`, `evidence_sha256`, `policy_id`,
//!   `policy_version`, `denied_check`}: the verifier's, one per appraisal.
//! - `retention` {`stream`, `through_seq`, `last_hash`, `before_time`,
//!   `deleted_count`}: the retention job deleted `deleted_count` records
//!   of `stream` older than `before_time`, seq 0 through `through_seq`,
//!   the last of which hashed to `last_hash` (signed by the retention
//!   job's own key, its own stream).
//!
//! # Canonical bytes, signature, hash
//!
//! The **canonical bytes** ([`Record::canonical_bytes`]) are the record
//! without its `sig` field, as serde_json writes it compactly from this
//! crate's structs: the field order above, no whitespace, integers only (no
//! floats anywhere), `null` for an absent optional field. Every string
//! field is restricted to printable ASCII without `"` and `\`, so no string
//! ever needs an escape and the bytes are the same from any serializer that
//! keeps the order. The signature is over the canonical bytes.
//!
//! The **line** ([`Record::to_line`]) is the canonical serialization with
//! `sig` (the last field), without a newline; a stream is these lines, each
//! followed by `\n`. The **hash** ([`Record::hash`]) is SHA-256 of the line:
//! it covers canonical bytes and signature, so the next record's `prev`
//! commits to this exact signed record.
//!
//! [`Record::parse`] is strict: at most [`MAX_LINE`] bytes, unknown or
//! missing fields refused, every field validated, and the line must equal
//! its own re-serialization (so a record has exactly one encoding, and what
//! the collector stores is what was signed).
//!
//! # Shipping
//!
//! How an emitter hands lines to the collector (hello with the signing
//! key, records, acks of what is committed): [`ship`].
#![forbid(unsafe_code)]

pub mod body;
mod chain;
pub mod hex;
mod record;
pub mod ship;
mod sig;

pub use body::{
    AttestationBody, Body, CallBody, CallOutcome, DecisionBody, Kind, LifecycleBody, RetentionBody,
    SecretBody, Verdict,
};
pub use chain::{Chain, LinkError};
pub use record::{ParseError, Record, MAX_LINE};
pub use sig::{stream_id, Alg, CallRefKey, KeyPairSigner, Sign, SignError, VerifyError};

/// The `prev` of a stream's first record.
pub const GENESIS_PREV: [u8; 32] = [0; 32];

#[cfg(test)]
mod tests;
