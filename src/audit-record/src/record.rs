//! One record: its canonical bytes, its line, its hash, and the strict
//! parser of a line.

use serde::{Deserialize, Serialize};

use crate::body::{Body, FieldError, Kind};
use crate::sig::{self, Alg, VerifyError};
use crate::{hex, GENESIS_PREV};

/// Longest line [`Record::parse`] reads (without the newline). A record's
/// fields are bounded far below this; the bound is for the parser.
pub const MAX_LINE: usize = 8192;

/// One audit record (see the crate documentation for each field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The emitting key's stream id, 32 lowercase hex digits.
    pub stream: String,
    /// Number in the stream, from 0.
    pub seq: u64,
    /// The previous record's hash (zeros for seq 0).
    pub prev: [u8; 32],
    /// Unix milliseconds on the emitter's clock.
    pub time: u64,
    /// The body; its variant is `kind`.
    pub body: Body,
    /// The signature algorithm.
    pub alg: Alg,
    /// The signature over [`Record::canonical_bytes`].
    pub sig: Vec<u8>,
}

/// The record as serialized: field order is the format's.
#[derive(Serialize)]
struct Out<'a> {
    v: u8,
    stream: &'a str,
    seq: u64,
    prev: String,
    time: u64,
    kind: Kind,
    body: &'a Body,
    alg: Alg,
    #[serde(skip_serializing_if = "Option::is_none")]
    sig: Option<String>,
}

/// The record as parsed, before its body is typed by `kind`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct In {
    v: u8,
    stream: String,
    seq: u64,
    prev: String,
    time: u64,
    kind: Kind,
    body: serde_json::Value,
    alg: Alg,
    sig: String,
}

/// Why a line is not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Longer than [`MAX_LINE`].
    TooLong,
    /// Not JSON of the record's shape (missing, unknown or mistyped field).
    Shape(String),
    /// `v` is not 1.
    Version(u8),
    /// `stream` is not 32 lowercase hex digits.
    Stream,
    /// `prev` is not 64 lowercase hex digits.
    Prev,
    /// `sig` is not lowercase hex, or is empty or too long.
    Sig,
    /// The body does not match its kind's shape.
    Body(String),
    /// A body field breaks its rule.
    Field(FieldError),
    /// The line is not its own canonical serialization (whitespace, field
    /// order, escapes, a missing `null`…).
    NotCanonical,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::TooLong => write!(f, "audit record longer than {MAX_LINE} bytes"),
            ParseError::Shape(e) => write!(f, "audit record: {e}"),
            ParseError::Version(v) => write!(f, "audit record: unsupported version {v}"),
            ParseError::Stream => {
                f.write_str("audit record: stream is not 32 lowercase hex digits")
            }
            ParseError::Prev => f.write_str("audit record: prev is not 64 lowercase hex digits"),
            ParseError::Sig => f.write_str("audit record: sig is not a lowercase hex signature"),
            ParseError::Body(e) => write!(f, "audit record: body: {e}"),
            ParseError::Field(e) => write!(f, "audit record: {e}"),
            ParseError::NotCanonical => {
                f.write_str("audit record: not in canonical form (order, spacing or escapes)")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Longest signature: ES256's DER is at most 72 bytes, ES384's fixed 96.
const MAX_SIG: usize = 128;

impl Record {
    /// The record's kind.
    pub fn kind(&self) -> Kind {
        self.body.kind()
    }

    fn out(&self, with_sig: bool) -> Out<'_> {
        Out {
            v: 1,
            stream: &self.stream,
            seq: self.seq,
            prev: hex::encode(&self.prev),
            time: self.time,
            kind: self.body.kind(),
            body: &self.body,
            alg: self.alg,
            sig: with_sig.then(|| hex::encode(&self.sig)),
        }
    }

    /// The signed bytes: the record without `sig`, compact, in the
    /// format's field order.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serializing structs of strings and integers into a Vec cannot
        // fail; an empty result would fail every signature check.
        serde_json::to_vec(&self.out(false)).unwrap_or_default()
    }

    /// The record's line: canonical bytes with `sig`, no newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(&self.out(true)).unwrap_or_default()
    }

    /// SHA-256 of [`Record::to_line`]: the next record's `prev`.
    pub fn hash(&self) -> [u8; 32] {
        let d = ring::digest::digest(&ring::digest::SHA256, self.to_line().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// Checks that `spki` is this record's key (its stream id) and that the
    /// signature verifies over the canonical bytes.
    pub fn verify_sig(&self, spki: &[u8]) -> Result<(), VerifyError> {
        if sig::stream_id(spki) != self.stream {
            return Err(VerifyError::WrongStream);
        }
        sig::verify(self.alg, spki, &self.canonical_bytes(), &self.sig)
    }

    /// Whether this is a stream's first record (seq 0, zero `prev`).
    pub fn is_genesis(&self) -> bool {
        self.seq == 0 && self.prev == GENESIS_PREV
    }

    /// Parses one line (without its newline), strictly: see the crate
    /// documentation. The signature is not checked here (it needs the
    /// stream's key): [`Record::verify_sig`].
    pub fn parse(line: &str) -> Result<Record, ParseError> {
        if line.len() > MAX_LINE {
            return Err(ParseError::TooLong);
        }
        let raw: In = serde_json::from_str(line).map_err(|e| ParseError::Shape(e.to_string()))?;
        if raw.v != 1 {
            return Err(ParseError::Version(raw.v));
        }
        if !hex::is_hex_of(&raw.stream, 16) {
            return Err(ParseError::Stream);
        }
        let prev: [u8; 32] = hex::decode(&raw.prev)
            .and_then(|p| p.try_into().ok())
            .ok_or(ParseError::Prev)?;
        let sig = hex::decode(&raw.sig)
            .filter(|s| !s.is_empty() && s.len() <= MAX_SIG)
            .ok_or(ParseError::Sig)?;
        let body =
            Body::from_value(raw.kind, raw.body).map_err(|e| ParseError::Body(e.to_string()))?;
        body.validate().map_err(ParseError::Field)?;
        let record = Record {
            stream: raw.stream,
            seq: raw.seq,
            prev,
            time: raw.time,
            body,
            alg: raw.alg,
            sig,
        };
        if record.to_line() != line {
            return Err(ParseError::NotCanonical);
        }
        Ok(record)
    }
}
