//! Lowercase hex (the record format's only byte encoding: the format
//! crate's own, so the collector and the records agree by construction)
//! and SHA-256.

pub use audit_record::hex::{decode, encode};

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256(bytes: &[u8]) -> String {
    encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}
