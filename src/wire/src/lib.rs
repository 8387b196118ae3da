//! Messages that cross a trust boundary between the guest, the verifier and
//! the host: the evidence bundle, the verifier's challenge and attest
//! exchange, the structured denial, and how timestamps are written.
//!
//! Every message is JSON with byte fields in standard base64, and every
//! parser refuses what it does not know (`deny_unknown_fields`, explicit
//! format names and versions): a peer's bytes get a precise error, never a
//! guess.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod time;
pub mod verifier;

pub use bundle::{CertKind, Certificate, EvidenceBundle, Tee, TpmEvidence};

/// Bytes carried as standard base64 in JSON.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl serde::Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> serde::Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let s: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Bytes)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// Why a message was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum WireError {
    /// Not valid JSON, or not this message's shape; says where.
    Json(String),
    /// The `format` field names another kind of message.
    Format {
        /// What it said.
        got: String,
        /// What was expected.
        want: &'static str,
    },
    /// A version this code does not read.
    Version {
        /// What it said.
        got: u32,
        /// What this code reads.
        want: u32,
    },
    /// A field has the wrong length.
    Length {
        /// The field.
        field: &'static str,
        /// Its length.
        got: usize,
        /// The required length.
        want: usize,
    },
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Json(e) => write!(f, "malformed message: {e}"),
            WireError::Format { got, want } => write!(f, "format {got:?} is not {want:?}"),
            WireError::Version { got, want } => {
                write!(f, "version {got} is not supported (want {want})")
            }
            WireError::Length { field, got, want } => {
                write!(f, "{field} is {got} bytes, want {want}")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// Parses JSON into `T`, mapping serde's error to [`WireError::Json`].
pub fn from_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, WireError> {
    serde_json::from_slice(bytes).map_err(|e| WireError::Json(e.to_string()))
}
