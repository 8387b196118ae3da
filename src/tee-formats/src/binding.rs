//! The REPORT_DATA binding: the single construction the guest uses to request
//! evidence and the verifier uses to recompute it.
//!
//! ```text
//! REPORT_DATA = SHA-512( DOMAIN_TAG ‖ nonce ‖ SHA-256(SPKI DER) ‖ exporter )     (64 bytes)
//! ```
//!
//! - `DOMAIN_TAG` = `b"enclave-init/report-data/v1\0"` (28 bytes, NUL included):
//!   separates this use of SHA-512 from any other and versions the
//!   construction; a change to the inputs gets a new tag (`…/v2\0`).
//! - `nonce`: the verifier's 32-byte challenge (freshness).
//! - `SHA-256(SPKI DER)`: the DER SubjectPublicKeyInfo of the enclave's public
//!   key (the key the evidence vouches for).
//! - `exporter`: 32 bytes of TLS keying material exported from the connection
//!   that carries the evidence (RFC 5705 / RFC 8446 §7.5; rustls
//!   `export_keying_material`), which binds the evidence to that one TLS
//!   session so it cannot be relayed through a second TLS hop.
//!
//! Every input has a fixed length (the SPKI enters as a fixed-length digest),
//! so the concatenation is unambiguous.
//!
//! SEV-SNP REPORT_DATA and TDX REPORTDATA are both 64 bytes: the digest is
//! used as is.

use sha2::{Digest, Sha256, Sha512};

use crate::FormatError;

/// Domain-separation tag, the first input to the hash (NUL-terminated).
pub const DOMAIN_TAG: &[u8; 28] = b"enclave-init/report-data/v1\0";
/// Length of the verifier's nonce.
pub const NONCE_LEN: usize = 32;
/// Length of the TLS exporter value.
pub const EXPORTER_LEN: usize = 32;
/// Length of SHA-256(SPKI DER).
pub const SPKI_DIGEST_LEN: usize = 32;
/// Length of REPORT_DATA (SEV-SNP and TDX alike).
pub const REPORT_DATA_LEN: usize = 64;

/// SHA-256 of the DER SubjectPublicKeyInfo.
pub fn spki_digest(spki_der: &[u8]) -> [u8; SPKI_DIGEST_LEN] {
    Sha256::digest(spki_der).into()
}

/// REPORT_DATA for `nonce`, the enclave key's `spki_der` and the TLS
/// `exporter` value.
pub fn report_data(
    nonce: &[u8; NONCE_LEN],
    spki_der: &[u8],
    exporter: &[u8; EXPORTER_LEN],
) -> [u8; REPORT_DATA_LEN] {
    let mut h = Sha512::new();
    h.update(DOMAIN_TAG);
    h.update(nonce);
    h.update(spki_digest(spki_der));
    h.update(exporter);
    h.finalize().into()
}

/// [`report_data`] from slices, for inputs that arrive off the wire: a nonce
/// or exporter of the wrong length, or an empty SPKI, is an error.
pub fn report_data_from_slices(
    nonce: &[u8],
    spki_der: &[u8],
    exporter: &[u8],
) -> Result<[u8; REPORT_DATA_LEN], FormatError> {
    let nonce = fixed::<NONCE_LEN>(nonce, "nonce")?;
    let exporter = fixed::<EXPORTER_LEN>(exporter, "TLS exporter")?;
    if spki_der.is_empty() {
        return Err(FormatError::BadLength {
            field: "SPKI DER",
            offset: 0,
            got: 0,
            expected: 1,
        });
    }
    Ok(report_data(&nonce, spki_der, &exporter))
}

/// Whether `got` (the REPORT_DATA in the evidence) equals the binding of
/// `nonce`, `spki_der` and `exporter`. The comparison does not stop at the
/// first differing byte.
pub fn matches(
    got: &[u8; REPORT_DATA_LEN],
    nonce: &[u8; NONCE_LEN],
    spki_der: &[u8],
    exporter: &[u8; EXPORTER_LEN],
) -> bool {
    let want = report_data(nonce, spki_der, exporter);
    got.iter()
        .zip(want.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

fn fixed<const N: usize>(bytes: &[u8], field: &'static str) -> Result<[u8; N], FormatError> {
    <[u8; N]>::try_from(bytes).map_err(|_| FormatError::BadLength {
        field,
        offset: 0,
        got: bytes.len() as u64,
        expected: N as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_tag_is_the_documented_string() {
        assert_eq!(DOMAIN_TAG.len(), 28);
        assert_eq!(DOMAIN_TAG.last(), Some(&0));
        assert_eq!(&DOMAIN_TAG[..27], b"enclave-init/report-data/v1");
    }

    #[test]
    fn slices_of_wrong_length_are_rejected() {
        let ok = [7u8; 32];
        assert!(report_data_from_slices(&ok, b"spki", &ok).is_ok());
        assert_eq!(
            report_data_from_slices(&ok[..31], b"spki", &ok),
            Err(FormatError::BadLength {
                field: "nonce",
                offset: 0,
                got: 31,
                expected: 32
            })
        );
        assert_eq!(
            report_data_from_slices(&ok, b"spki", &[0u8; 33]),
            Err(FormatError::BadLength {
                field: "TLS exporter",
                offset: 0,
                got: 33,
                expected: 32
            })
        );
        assert!(matches!(
            report_data_from_slices(&ok, b"", &ok),
            Err(FormatError::BadLength {
                field: "SPKI DER",
                ..
            })
        ));
    }

    #[test]
    fn every_input_changes_the_output() {
        let base = report_data(&[1; 32], b"spki", &[2; 32]);
        assert_ne!(base, report_data(&[3; 32], b"spki", &[2; 32]));
        assert_ne!(base, report_data(&[1; 32], b"spkj", &[2; 32]));
        assert_ne!(base, report_data(&[1; 32], b"spki", &[3; 32]));
        assert!(matches(&base, &[1; 32], b"spki", &[2; 32]));
        assert!(!matches(&base, &[1; 32], b"spki", &[3; 32]));
    }
}
