//! Signing and verifying records, stream ids, and the call pseudonym key.

use ring::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::hex;

/// A record's signature algorithm (`alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    /// ECDSA P-256 SHA-256, ASN.1 DER signature: the guest's enclave key
    /// (`keys.rs`, `EnclaveKey::sign`).
    ES256,
    /// ECDSA P-384 SHA-384, fixed-length `r‖s` (96 bytes): the verifier's
    /// token key (ring's `ECDSA_P384_SHA384_FIXED_SIGNING`, as in its JWTs).
    ES384,
}

/// DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point.
const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// DER prefix of a P-384 SubjectPublicKeyInfo with an uncompressed point.
const SPKI_P384_PREFIX: [u8; 23] = [
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];

impl Alg {
    fn spki_prefix(self) -> &'static [u8] {
        match self {
            Alg::ES256 => &SPKI_P256_PREFIX,
            Alg::ES384 => &SPKI_P384_PREFIX,
        }
    }

    fn point_len(self) -> usize {
        match self {
            Alg::ES256 => 65,
            Alg::ES384 => 97,
        }
    }

    /// The DER SubjectPublicKeyInfo of an uncompressed public point
    /// (`04‖x‖y`, as ring's `public_key()` gives it).
    pub fn spki_of_point(self, point: &[u8]) -> Vec<u8> {
        let mut spki = self.spki_prefix().to_vec();
        spki.extend_from_slice(point);
        spki
    }

    /// The uncompressed point of a SubjectPublicKeyInfo of this algorithm's
    /// curve; `None` for any other key.
    fn point_of_spki(self, spki: &[u8]) -> Option<&[u8]> {
        let point = spki.strip_prefix(self.spki_prefix())?;
        (point.len() == self.point_len()).then_some(point)
    }
}

/// The stream id of a signing key: the first 16 bytes of SHA-256 of its
/// DER SubjectPublicKeyInfo, lowercase hex.
pub fn stream_id(spki: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, spki);
    hex::encode(d.as_ref().get(..16).unwrap_or_default())
}

/// What signs records: the enclave key in the guest, the token key in the
/// verifier.
pub trait Sign {
    /// The algorithm of [`Sign::sign`]'s signatures.
    fn alg(&self) -> Alg;
    /// The DER SubjectPublicKeyInfo of the public key (the stream id's
    /// source).
    fn spki(&self) -> Vec<u8>;
    /// Signs `msg`; `None` when the key or the random generator failed.
    fn sign(&self, msg: &[u8]) -> Option<Vec<u8>>;
}

/// A ring ECDSA key pair as a [`Sign`]: `alg` must be the algorithm the
/// pair was made for (`ES256` for `ECDSA_P256_SHA256_ASN1_SIGNING`, `ES384`
/// for `ECDSA_P384_SHA384_FIXED_SIGNING`); ring cannot tell.
pub struct KeyPairSigner<'a> {
    /// The key pair.
    pub pair: &'a EcdsaKeyPair,
    /// Its algorithm.
    pub alg: Alg,
}

impl Sign for KeyPairSigner<'_> {
    fn alg(&self) -> Alg {
        self.alg
    }

    fn spki(&self) -> Vec<u8> {
        self.alg.spki_of_point(self.pair.public_key().as_ref())
    }

    fn sign(&self, msg: &[u8]) -> Option<Vec<u8>> {
        self.pair
            .sign(&ring::rand::SystemRandom::new(), msg)
            .ok()
            .map(|s| s.as_ref().to_vec())
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The key is not a SubjectPublicKeyInfo of the record's `alg`.
    KeyNotForAlg,
    /// The record's `stream` is not this key's stream id.
    WrongStream,
    /// The signature does not verify over the canonical bytes.
    BadSignature,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VerifyError::KeyNotForAlg => "the key is not a public key of the record's alg",
            VerifyError::WrongStream => "the record's stream is not this key's stream id",
            VerifyError::BadSignature => "the signature does not verify",
        })
    }
}

impl std::error::Error for VerifyError {}

/// Signing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignError {
    /// A body field breaks its rule.
    Field(crate::body::FieldError),
    /// The signer's key is not the chain's (another stream id).
    WrongKey,
    /// The signer failed.
    Signer,
    /// The stream has reached `u64::MAX` records.
    Exhausted,
}

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignError::Field(e) => write!(f, "audit record: {e}"),
            SignError::WrongKey => f.write_str("audit record: the signer is not the chain's key"),
            SignError::Signer => f.write_str("audit record: the signer failed"),
            SignError::Exhausted => f.write_str("audit record: the stream's sequence is exhausted"),
        }
    }
}

impl std::error::Error for SignError {}

/// Verifies `sig` over `msg` with `spki` under `alg`.
pub(crate) fn verify(alg: Alg, spki: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    let point = alg.point_of_spki(spki).ok_or(VerifyError::KeyNotForAlg)?;
    let algorithm: &dyn signature::VerificationAlgorithm = match alg {
        Alg::ES256 => &signature::ECDSA_P256_SHA256_ASN1,
        Alg::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
    };
    UnparsedPublicKey::new(algorithm, point)
        .verify(msg, sig)
        .map_err(|_| VerifyError::BadSignature)
}

/// The key of the call pseudonym (`call_ref`).
///
/// The key must be one the host never learns, or the host could compute
/// the pseudonym of any call id it guesses. The guest derives it from the
/// Vault secret it already holds for caller pseudonyms (the phone-number
/// pepper, `service.pepper_secret`), with its own domain string, so a
/// call reference can never be matched against a caller hash or a log
/// pseudonym.
///
/// Consequence for a data-subject request: the controller, who can read
/// the pepper in Vault, computes [`CallRefKey::call_ref`] of the subject's
/// call id and finds exactly that call's records (right of access); the
/// host and an auditor without the pepper cannot link a record to a call.
/// Rotating the pepper away (destroying old versions) makes the old
/// references unlinkable for everyone (erasure by key destruction) while
/// the trail's signatures and chain still verify.
pub struct CallRefKey(ring::hmac::Key);

impl std::fmt::Debug for CallRefKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallRefKey(..)")
    }
}

/// Domain separation of `call_ref` from every other HMAC of the same key.
const CALL_REF_DOMAIN: &[u8] = b"enclave-audit-call-ref-v1\0";

impl CallRefKey {
    /// The key from the secret's bytes (ring copies them into its own key
    /// schedule; the caller zeroizes its copy).
    pub fn new(secret: &[u8]) -> CallRefKey {
        CallRefKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    /// HMAC-SHA256(key, `enclave-audit-call-ref-v1 \0 call_id`), lowercase
    /// hex (64 digits).
    pub fn call_ref(&self, call_id: &str) -> String {
        let mut ctx = ring::hmac::Context::with_key(&self.0);
        ctx.update(CALL_REF_DOMAIN);
        ctx.update(call_id.as_bytes());
        hex::encode(ctx.sign().as_ref())
    }
}
