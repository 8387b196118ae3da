//! TPM 2.0 structures of a vTPM quote, and the few commands a guest needs to
//! get one (Azure confidential VMs: `super::azure`).
//!
//! Source: TCG "Trusted Platform Module Library" Family 2.0, Level 00,
//! Revision 01.59: Part 2 (Structures) §10.12.8 TPMS_ATTEST, §10.12.6
//! TPMS_QUOTE_INFO, §10.11 TPMS_CLOCK_INFO, §10.6.2 TPML_PCR_SELECTION,
//! §11.3.4 TPMT_SIGNATURE; Part 3 (Commands) for [`command`]. Everything is
//! big-endian. Sizes are bounded by the largest digest a TPM can implement
//! (SHA-512): a `TPM2B` longer than its type allows is refused before anything
//! is copied.
//!
//! - [`Attest`]: a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE (what the AK signs).
//! - [`PcrSelection`]: a TPML_PCR_SELECTION.
//! - [`Signature`]: TPMT_SIGNATURE (RSASSA, RSAPSS, ECDSA).
//! - [`command`]: command marshalling and response parsing for NV_ReadPublic,
//!   NV_Read, NV_Write, NV_DefineSpace, Quote, PCR_Read, ReadPublic,
//!   GetCapability.

pub mod command;

use crate::bytes::Reader;
use crate::FormatError;

/// TPM_GENERATED_VALUE, the magic of every TPMS_ATTEST.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// TPM_ST_ATTEST_QUOTE.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
/// TPM_ALG_RSA.
pub const ALG_RSA: u16 = 0x0001;
/// TPM_ALG_SHA1.
pub const ALG_SHA1: u16 = 0x0004;
/// TPM_ALG_SHA256.
pub const ALG_SHA256: u16 = 0x000B;
/// TPM_ALG_SHA384.
pub const ALG_SHA384: u16 = 0x000C;
/// TPM_ALG_SHA512.
pub const ALG_SHA512: u16 = 0x000D;
/// TPM_ALG_NULL.
pub const ALG_NULL: u16 = 0x0010;
/// TPM_ALG_RSASSA (PKCS#1 v1.5).
pub const ALG_RSASSA: u16 = 0x0014;
/// TPM_ALG_RSAPSS.
pub const ALG_RSAPSS: u16 = 0x0016;
/// TPM_ALG_ECDSA.
pub const ALG_ECDSA: u16 = 0x0018;

/// Largest digest (SHA-512): bounds TPM2B_DIGEST.
pub const MAX_DIGEST: usize = 64;
/// sizeof(TPMT_HA) with SHA-512: bounds TPM2B_DATA and TPM2B_NAME.
pub const MAX_HA: usize = 2 + MAX_DIGEST;
/// Largest RSA key (4096 bits): bounds TPM2B_PUBLIC_KEY_RSA.
pub const MAX_RSA_BYTES: usize = 512;
/// Largest ECC parameter (P-521): bounds TPM2B_ECC_PARAMETER.
pub const MAX_ECC_BYTES: usize = 66;
/// HASH_COUNT bound on selections in a TPML_PCR_SELECTION.
pub const MAX_PCR_SELECTIONS: usize = 16;
/// PCR_SELECT_MAX bound on sizeofSelect (32 PCRs).
pub const MAX_SIZEOF_SELECT: usize = 4;
/// PCRs of a PC-client TPM (one SHA-256 bank, PCR0..PCR23).
pub const PCR_COUNT: usize = 24;

/// Digest length of a TPM hash algorithm, if this crate knows it.
pub const fn digest_len(alg: u16) -> Option<usize> {
    match alg {
        ALG_SHA1 => Some(20),
        ALG_SHA256 => Some(32),
        ALG_SHA384 => Some(48),
        ALG_SHA512 => Some(64),
        _ => None,
    }
}

/// Reads a TPM2B (u16 size, then the bytes) of at most `max` bytes.
pub(crate) fn tpm2b<'a>(
    r: &mut Reader<'a>,
    max: usize,
    field: &'static str,
) -> Result<&'a [u8], FormatError> {
    let offset = r.offset();
    let size = r.u16_be(field)?;
    if usize::from(size) > max {
        return Err(FormatError::BadLength {
            field,
            offset,
            got: size.into(),
            expected: max as u64,
        });
    }
    let mut sub = r.sub(size.into(), field, offset)?;
    Ok(sub.rest())
}

/// Appends a TPM2B.
pub(crate) fn put_tpm2b(
    out: &mut Vec<u8>,
    bytes: &[u8],
    field: &'static str,
) -> Result<(), FormatError> {
    let len = u16::try_from(bytes.len()).map_err(|_| FormatError::TooLarge {
        field,
        len: bytes.len(),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// One TPMS_PCR_SELECTION: a hash bank and a bitmap of PCRs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PcrBankSelection {
    /// The bank's hash algorithm.
    pub hash: u16,
    /// The bitmap, PCR `i` is bit `i % 8` of byte `i / 8` (1..=4 bytes).
    pub select: Vec<u8>,
}

impl PcrBankSelection {
    /// The selected PCR indices, ascending.
    pub fn indices(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for (byte_index, byte) in self.select.iter().enumerate() {
            // A bitmap past u32::MAX / 8 bytes names no PCR; stop there.
            let Some(base) = u32::try_from(byte_index)
                .ok()
                .and_then(|i| i.checked_mul(8))
            else {
                break;
            };
            for bit in 0..8u32 {
                if byte >> bit & 1 == 1 {
                    out.push(base + bit);
                }
            }
        }
        out
    }
}

/// TPML_PCR_SELECTION.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PcrSelection(pub Vec<PcrBankSelection>);

impl PcrSelection {
    /// The SHA-256 bank, PCR0..PCR23: what the Azure quote covers.
    pub fn sha256_all() -> Self {
        PcrSelection(vec![PcrBankSelection {
            hash: ALG_SHA256,
            select: vec![0xff; PCR_COUNT / 8],
        }])
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, FormatError> {
        let offset = r.offset();
        let count = r.u32_be("TPML_PCR_SELECTION.count")?;
        if count as usize > MAX_PCR_SELECTIONS {
            return Err(FormatError::BadLength {
                field: "TPML_PCR_SELECTION.count",
                offset,
                got: count.into(),
                expected: MAX_PCR_SELECTIONS as u64,
            });
        }
        let mut banks = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let hash = r.u16_be("TPMS_PCR_SELECTION.hash")?;
            let size_offset = r.offset();
            let size = r.u8("TPMS_PCR_SELECTION.sizeofSelect")?;
            if size == 0 || usize::from(size) > MAX_SIZEOF_SELECT {
                return Err(FormatError::BadLength {
                    field: "TPMS_PCR_SELECTION.sizeofSelect",
                    offset: size_offset,
                    got: size.into(),
                    expected: MAX_SIZEOF_SELECT as u64,
                });
            }
            let select = r
                .take(size.into(), "TPMS_PCR_SELECTION.pcrSelect")?
                .to_vec();
            banks.push(PcrBankSelection { hash, select });
        }
        Ok(PcrSelection(banks))
    }

    /// Parses exactly one TPML_PCR_SELECTION.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes);
        let s = Self::read(&mut r)?;
        r.finish("TPML_PCR_SELECTION")?;
        Ok(s)
    }

    /// Appends the encoding.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let count = u32::try_from(self.0.len()).map_err(|_| FormatError::TooLarge {
            field: "TPML_PCR_SELECTION.count",
            len: self.0.len(),
        })?;
        out.extend_from_slice(&count.to_be_bytes());
        for bank in &self.0 {
            let size = u8::try_from(bank.select.len()).map_err(|_| FormatError::TooLarge {
                field: "TPMS_PCR_SELECTION.sizeofSelect",
                len: bank.select.len(),
            })?;
            out.extend_from_slice(&bank.hash.to_be_bytes());
            out.push(size);
            out.extend_from_slice(&bank.select);
        }
        Ok(())
    }

    /// Whether no PCR is selected in any bank.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|b| b.select.iter().all(|&s| s == 0))
    }
}

/// TPMS_CLOCK_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since it was last cleared.
    pub clock: u64,
    /// TPM resets since the last clear.
    pub reset_count: u32,
    /// TPM restarts (resumes) since the last reset.
    pub restart_count: u32,
    /// Whether `clock` can never have been reported lower before.
    pub safe: bool,
}

/// A TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE: what a quoting key signs.
///
/// The signature is checked over the bytes as received ([`Attest::parse`]
/// keeps nothing else: the caller holds them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attest {
    /// qualifiedSigner: the TPM name of the signing key (TPM2B_NAME).
    pub qualified_signer: Vec<u8>,
    /// extraData: the caller's qualifying data (the nonce) (TPM2B_DATA).
    pub extra_data: Vec<u8>,
    /// clockInfo.
    pub clock_info: ClockInfo,
    /// firmwareVersion (vendor-specific).
    pub firmware_version: u64,
    /// attested.quote.pcrSelect.
    pub pcr_select: PcrSelection,
    /// attested.quote.pcrDigest: the hash (the key's scheme hash) of the
    /// selected PCR values, concatenated in selection order.
    pub pcr_digest: Vec<u8>,
}

impl Attest {
    /// Parses exactly one TPMS_ATTEST of type quote.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes);
        let magic = r.u32_be("TPMS_ATTEST.magic")?;
        if magic != TPM_GENERATED_VALUE {
            return Err(FormatError::UnsupportedValue {
                field: "TPMS_ATTEST.magic",
                offset: 0,
                value: magic.into(),
            });
        }
        let st = r.u16_be("TPMS_ATTEST.type")?;
        if st != TPM_ST_ATTEST_QUOTE {
            return Err(FormatError::UnsupportedValue {
                field: "TPMS_ATTEST.type",
                offset: 4,
                value: st.into(),
            });
        }
        let qualified_signer = tpm2b(&mut r, MAX_HA, "TPMS_ATTEST.qualifiedSigner")?.to_vec();
        let extra_data = tpm2b(&mut r, MAX_HA, "TPMS_ATTEST.extraData")?.to_vec();
        let clock = r.u64_be("TPMS_CLOCK_INFO.clock")?;
        let reset_count = r.u32_be("TPMS_CLOCK_INFO.resetCount")?;
        let restart_count = r.u32_be("TPMS_CLOCK_INFO.restartCount")?;
        let safe_offset = r.offset();
        let safe = match r.u8("TPMS_CLOCK_INFO.safe")? {
            0 => false,
            1 => true,
            other => {
                return Err(FormatError::UnsupportedValue {
                    field: "TPMS_CLOCK_INFO.safe",
                    offset: safe_offset,
                    value: other.into(),
                })
            }
        };
        let firmware_version = r.u64_be("TPMS_ATTEST.firmwareVersion")?;
        let pcr_select = PcrSelection::read(&mut r)?;
        let pcr_digest = tpm2b(&mut r, MAX_DIGEST, "TPMS_QUOTE_INFO.pcrDigest")?.to_vec();
        r.finish("TPMS_ATTEST")?;
        Ok(Attest {
            qualified_signer,
            extra_data,
            clock_info: ClockInfo {
                clock,
                reset_count,
                restart_count,
                safe,
            },
            firmware_version,
            pcr_select,
            pcr_digest,
        })
    }

    /// Encodes the structure (`parse(b)?.to_bytes()? == b`).
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&TPM_GENERATED_VALUE.to_be_bytes());
        out.extend_from_slice(&TPM_ST_ATTEST_QUOTE.to_be_bytes());
        put_tpm2b(
            &mut out,
            &self.qualified_signer,
            "TPMS_ATTEST.qualifiedSigner",
        )?;
        put_tpm2b(&mut out, &self.extra_data, "TPMS_ATTEST.extraData")?;
        out.extend_from_slice(&self.clock_info.clock.to_be_bytes());
        out.extend_from_slice(&self.clock_info.reset_count.to_be_bytes());
        out.extend_from_slice(&self.clock_info.restart_count.to_be_bytes());
        out.push(u8::from(self.clock_info.safe));
        out.extend_from_slice(&self.firmware_version.to_be_bytes());
        self.pcr_select.write(&mut out)?;
        put_tpm2b(&mut out, &self.pcr_digest, "TPMS_QUOTE_INFO.pcrDigest")?;
        Ok(out)
    }
}

/// TPMT_SIGNATURE, for the schemes a quoting key uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Signature {
    /// TPM_ALG_RSASSA: PKCS#1 v1.5 over `hash`.
    RsaSsa {
        /// The hash algorithm.
        hash: u16,
        /// The signature, big-endian, the key's modulus length.
        sig: Vec<u8>,
    },
    /// TPM_ALG_RSAPSS.
    RsaPss {
        /// The hash algorithm.
        hash: u16,
        /// The signature.
        sig: Vec<u8>,
    },
    /// TPM_ALG_ECDSA.
    Ecdsa {
        /// The hash algorithm.
        hash: u16,
        /// r.
        r: Vec<u8>,
        /// s.
        s: Vec<u8>,
    },
}

impl Signature {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, FormatError> {
        let alg_offset = r.offset();
        let alg = r.u16_be("TPMT_SIGNATURE.sigAlg")?;
        match alg {
            ALG_RSASSA | ALG_RSAPSS => {
                let hash = r.u16_be("TPMS_SIGNATURE_RSA.hash")?;
                let sig = tpm2b(r, MAX_RSA_BYTES, "TPMS_SIGNATURE_RSA.sig")?.to_vec();
                Ok(if alg == ALG_RSASSA {
                    Signature::RsaSsa { hash, sig }
                } else {
                    Signature::RsaPss { hash, sig }
                })
            }
            ALG_ECDSA => {
                let hash = r.u16_be("TPMS_SIGNATURE_ECC.hash")?;
                let sr = tpm2b(r, MAX_ECC_BYTES, "TPMS_SIGNATURE_ECC.signatureR")?.to_vec();
                let ss = tpm2b(r, MAX_ECC_BYTES, "TPMS_SIGNATURE_ECC.signatureS")?.to_vec();
                Ok(Signature::Ecdsa { hash, r: sr, s: ss })
            }
            other => Err(FormatError::UnsupportedValue {
                field: "TPMT_SIGNATURE.sigAlg",
                offset: alg_offset,
                value: other.into(),
            }),
        }
    }

    /// Parses exactly one TPMT_SIGNATURE.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes);
        let s = Self::read(&mut r)?;
        r.finish("TPMT_SIGNATURE")?;
        Ok(s)
    }

    /// Encodes the structure.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::new();
        match self {
            Signature::RsaSsa { hash, sig } | Signature::RsaPss { hash, sig } => {
                let alg = if matches!(self, Signature::RsaSsa { .. }) {
                    ALG_RSASSA
                } else {
                    ALG_RSAPSS
                };
                out.extend_from_slice(&alg.to_be_bytes());
                out.extend_from_slice(&hash.to_be_bytes());
                put_tpm2b(&mut out, sig, "TPMS_SIGNATURE_RSA.sig")?;
            }
            Signature::Ecdsa { hash, r, s } => {
                out.extend_from_slice(&ALG_ECDSA.to_be_bytes());
                out.extend_from_slice(&hash.to_be_bytes());
                put_tpm2b(&mut out, r, "TPMS_SIGNATURE_ECC.signatureR")?;
                put_tpm2b(&mut out, s, "TPMS_SIGNATURE_ECC.signatureS")?;
            }
        }
        Ok(out)
    }

    /// The scheme's name, for messages.
    pub fn scheme(&self) -> &'static str {
        match self {
            Signature::RsaSsa { .. } => "RSASSA",
            Signature::RsaPss { .. } => "RSAPSS",
            Signature::Ecdsa { .. } => "ECDSA",
        }
    }

    /// The hash algorithm.
    pub fn hash(&self) -> u16 {
        match self {
            Signature::RsaSsa { hash, .. }
            | Signature::RsaPss { hash, .. }
            | Signature::Ecdsa { hash, .. } => *hash,
        }
    }
}

/// The name of a TPM hash algorithm, for messages.
pub fn alg_name(alg: u16) -> String {
    match alg {
        ALG_SHA1 => "SHA-1".to_owned(),
        ALG_SHA256 => "SHA-256".to_owned(),
        ALG_SHA384 => "SHA-384".to_owned(),
        ALG_SHA512 => "SHA-512".to_owned(),
        ALG_NULL => "NULL".to_owned(),
        other => format!("algorithm {other:#06x}"),
    }
}

#[cfg(feature = "serde")]
mod ser {
    use serde::ser::{Serialize, SerializeStruct, Serializer};

    use super::*;

    impl Serialize for PcrBankSelection {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut st = s.serialize_struct("PcrBankSelection", 2)?;
            st.serialize_field("hash", &alg_name(self.hash))?;
            st.serialize_field("pcrs", &self.indices())?;
            st.end()
        }
    }

    impl Serialize for PcrSelection {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.0.serialize(s)
        }
    }

    impl Serialize for ClockInfo {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let ClockInfo {
                clock,
                reset_count,
                restart_count,
                safe,
            } = self;
            let mut st = s.serialize_struct("ClockInfo", 4)?;
            st.serialize_field("clock", clock)?;
            st.serialize_field("reset_count", reset_count)?;
            st.serialize_field("restart_count", restart_count)?;
            st.serialize_field("safe", safe)?;
            st.end()
        }
    }

    impl Serialize for Attest {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let Attest {
                qualified_signer,
                extra_data,
                clock_info,
                firmware_version,
                pcr_select,
                pcr_digest,
            } = self;
            let mut st = s.serialize_struct("Attest", 6)?;
            st.serialize_field("qualified_signer", &crate::json::hex(qualified_signer))?;
            st.serialize_field("extra_data", &crate::json::hex(extra_data))?;
            st.serialize_field("clock_info", clock_info)?;
            st.serialize_field("firmware_version", &format!("{firmware_version:#018x}"))?;
            st.serialize_field("pcr_select", pcr_select)?;
            st.serialize_field("pcr_digest", &crate::json::hex(pcr_digest))?;
            st.end()
        }
    }

    impl Serialize for Signature {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut st = s.serialize_struct("Signature", 3)?;
            st.serialize_field("scheme", self.scheme())?;
            st.serialize_field("hash", &alg_name(self.hash()))?;
            match self {
                Signature::RsaSsa { sig, .. } | Signature::RsaPss { sig, .. } => {
                    st.serialize_field("sig", &crate::json::hex(sig))?
                }
                Signature::Ecdsa { r, s: sv, .. } => {
                    let mut both = r.clone();
                    both.extend_from_slice(sv);
                    st.serialize_field("sig", &crate::json::hex(&both))?
                }
            }
            st.end()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_all_selects_pcr0_to_23() {
        let s = PcrSelection::sha256_all();
        assert_eq!(s.0[0].indices(), (0..24).collect::<Vec<u32>>());
        let mut b = Vec::new();
        s.write(&mut b).unwrap();
        assert_eq!(b, [0, 0, 0, 1, 0x00, 0x0b, 3, 0xff, 0xff, 0xff]);
        assert_eq!(PcrSelection::parse(&b).unwrap(), s);
    }

    #[test]
    fn oversized_tpm2b_is_refused_before_reading() {
        // extraData declares 0x0100 bytes: more than TPM2B_DATA can hold.
        let mut b = Vec::new();
        b.extend_from_slice(&TPM_GENERATED_VALUE.to_be_bytes());
        b.extend_from_slice(&TPM_ST_ATTEST_QUOTE.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&[1, 0]);
        assert_eq!(
            Attest::parse(&b),
            Err(FormatError::BadLength {
                field: "TPMS_ATTEST.extraData",
                offset: 8,
                got: 256,
                expected: 66
            })
        );
    }

    #[test]
    fn unknown_signature_scheme_is_named() {
        assert_eq!(
            Signature::parse(&[0x00, 0x1b, 0, 0]),
            Err(FormatError::UnsupportedValue {
                field: "TPMT_SIGNATURE.sigAlg",
                offset: 0,
                value: 0x1b
            })
        );
    }
}
