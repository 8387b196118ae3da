//! The TDX quote, versions 4 and 5, with ECDSA-256 (P-256) attestation keys.
//!
//! Source: Intel `QuoteGeneration/quote_wrapper/common/inc/sgx_quote_4.h` and
//! `sgx_quote_5.h` (intel/SGXDataCenterAttestationPrimitives), go-tdx-guest
//! `abi/abi.go`, dcap-qvl 0.7.1 `src/quote.rs` (`shared/docs/tee-formats.md`
//! §3.2). Layout (offsets absolute):
//!
//! ```text
//! 0     header (48)                      QuoteHeader
//! v4: 48 body (584)                      TdQuoteBody10
//! v5: 48 u16 body_type, 50 u32 body_size, 54 body (584 | 648 | 885 for type 2 | 3 | 4)
//! then  u32 signature_data_len, and that many bytes:
//!         signature[64]        ECDSA P-256 r‖s over header..end of body
//!         attestation_key[64]  P-256 x‖y
//!         u16 type = 6, u32 size, QE report certification data:
//!           qe_report[384]  qe_report_signature[64]  u16 len, qe_auth_data
//!           u16 type (5 = PCK chain PEM), u32 size, data
//! then  trailing bytes (padding)
//! ```
//!
//! Every declared length must fit in its enclosing region
//! ([`FormatError::LengthOutOfBounds`]) and every region must be consumed
//! exactly by its contents ([`FormatError::TrailingBytes`]).
//!
//! Trailing padding: quotes from the QGS often carry zero padding after the
//! signature data (e.g. 5006-byte files whose signature data ends at 4936).
//! It is ignored, whatever it contains: only its length is kept
//! ([`Quote::trailing_len`]). [`Quote::to_bytes`] encodes the meaningful bytes
//! (header to the end of the signature data), so for every accepted input
//! `to_bytes(parse(b)) == b[..b.len() - trailing_len]`; [`ReceivedQuote`]
//! keeps the whole input.

use crate::bytes::{ArrayWriter, Reader};
use crate::json::json_struct;
use crate::FormatError;

use super::body::{TdQuoteBody10, TdQuoteBody15, TdQuoteBody15Ex};
use super::body::{TD_QUOTE_BODY10_SIZE, TD_QUOTE_BODY15_EX_SIZE, TD_QUOTE_BODY15_SIZE};

/// Size of the quote header.
pub const QUOTE_HEADER_SIZE: usize = 48;
/// Size of the v5 body descriptor (`u16 body_type`, `u32 body_size`).
pub const BODY_DESCRIPTOR_SIZE: usize = 6;
/// `tee_type` of a TDX quote.
pub const TEE_TYPE_TDX: u32 = 0x81;
/// `att_key_type` for ECDSA-256-with-P-256.
pub const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
/// v5 body type of a TD 1.0 body.
pub const BODY_TYPE_TD10: u16 = 2;
/// v5 body type of a TD 1.5 body.
pub const BODY_TYPE_TD15: u16 = 3;
/// v5 body type of a TD 1.5 "ex" body.
pub const BODY_TYPE_TD15_EX: u16 = 4;
/// Certification data type: QE report certification data.
pub const CERT_DATA_TYPE_QE_REPORT: u16 = 6;
/// Certification data type: PCK certificate chain (PEM, NUL-terminated).
pub const CERT_DATA_TYPE_PCK_CHAIN: u16 = 5;
/// Size of an SGX report body (the QE report).
pub const QE_REPORT_SIZE: usize = 384;
/// Size of the ECDSA P-256 quote signature and of the QE report signature.
pub const ECDSA_P256_SIGNATURE_SIZE: usize = 64;
/// Size of the ECDSA P-256 attestation public key.
pub const ECDSA_P256_KEY_SIZE: usize = 64;

const _: () = assert!(2 + 2 + 4 + 4 + 16 + 20 == QUOTE_HEADER_SIZE);
const _: () = assert!(
    16 + 4 + 12 + 16 + 16 + 32 + 32 + 32 + 32 + 64 + 2 + 2 + 2 + 42 + 16 + 64 == QE_REPORT_SIZE
);

const WHAT_HEADER: &str = "quote header";
const WHAT_QE_REPORT: &str = "QE report";

/// The quote header (48 bytes, `sgx_quote4_header_t`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuoteHeader {
    /// 0: version (4 or 5).
    pub version: u16,
    /// 2: attestation key type (2 = ECDSA-256-with-P-256).
    pub att_key_type: u16,
    /// 4: TEE type (0x81 = TDX).
    pub tee_type: u32,
    // 8: 4 reserved bytes (QE_SVN/PCE_SVN in SGX v3 headers), MBZ.
    /// 12: QE vendor ID (Intel: `939a7233f79c4ca9940a0db3957f0607`).
    pub qe_vendor_id: [u8; 16],
    /// 28: user data (the first 16 bytes are the QE ID).
    pub user_data: [u8; 20],
}

/// The quote body: a TD report in one of its three layouts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuoteBody {
    /// TDX 1.0 body: every v4 quote, and v5 body type 2.
    Td10(TdQuoteBody10),
    /// TDX 1.5 body: v5 body type 3.
    Td15(TdQuoteBody15),
    /// TDX 1.5 "ex" body: v5 body type 4 (boxed: it is the largest).
    Td15Ex(Box<TdQuoteBody15Ex>),
}

/// The quote signature data (`sgx_quote4_sig_data_t`... with ECDSA P-256):
/// what follows `u32 signature_data_len`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuoteSignatureData {
    /// ECDSA P-256 signature (r‖s, big-endian) by the attestation key over
    /// the header and body ([`ReceivedQuote::signed_bytes`]).
    pub signature: [u8; 64],
    /// The attestation public key (x‖y, big-endian).
    pub attestation_key: [u8; 64],
    /// The certification data, type 6 (QE report certification data).
    pub qe_report_certification_data: QeReportCertificationData,
}

/// Certification data type 6: the Quoting Enclave's report, its signature by
/// the PCK key, the QE authentication data and the nested certification data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QeReportCertificationData {
    /// The QE's SGX report body (384 bytes). Its REPORTDATA binds the
    /// attestation key: `SHA-256(attestation_key ‖ qe_auth_data) ‖ 0^32`.
    pub qe_report: EnclaveReportBody,
    /// ECDSA P-256 signature (r‖s) by the PCK key over the 384 QE report bytes.
    pub qe_report_signature: [u8; 64],
    /// QE authentication data (`u16` length-prefixed; 32 bytes in practice).
    pub qe_auth_data: Vec<u8>,
    /// Nested certification data (type 5: the PCK certificate chain).
    pub certification_data: CertificationData,
}

/// Nested certification data: `u16 type, u32 size, data`. Types 1 (PPID in
/// clear), 2/3 (encrypted PPID, RSA-2048/3072), 4 (PCK leaf certificate) and
/// 5 (PCK certificate chain, PEM) are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertificationData {
    /// The certification data type.
    pub cert_data_type: u16,
    /// The data.
    pub data: Vec<u8>,
}

impl CertificationData {
    /// For type 5, the PEM certificate chain (leaf, intermediate CA, Intel SGX
    /// Root CA) without its terminating NUL byte.
    pub fn pck_cert_chain_pem(&self) -> Option<&[u8]> {
        if self.cert_data_type != CERT_DATA_TYPE_PCK_CHAIN {
            return None;
        }
        Some(self.data.strip_suffix(&[0]).unwrap_or(&self.data))
    }
}

/// An SGX report body (`sgx_report_body_t`, 384 bytes), here the QE report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnclaveReportBody {
    /// 0: CPUSVN.
    pub cpu_svn: [u8; 16],
    /// 16: MISCSELECT.
    pub misc_select: u32,
    // 20: 12 reserved bytes, MBZ.
    /// 32: ISVEXTPRODID.
    pub isv_ext_prod_id: [u8; 16],
    /// 48: ATTRIBUTES.
    pub attributes: [u8; 16],
    /// 64: MRENCLAVE.
    pub mr_enclave: [u8; 32],
    // 96: 32 reserved bytes, MBZ.
    /// 128: MRSIGNER.
    pub mr_signer: [u8; 32],
    // 160: 32 reserved bytes, MBZ.
    /// 192: CONFIGID.
    pub config_id: [u8; 64],
    /// 256: ISVPRODID.
    pub isv_prod_id: u16,
    /// 258: ISVSVN.
    pub isv_svn: u16,
    /// 260: CONFIGSVN.
    pub config_svn: u16,
    // 262: 42 reserved bytes, MBZ.
    /// 304: ISVFAMILYID.
    pub isv_family_id: [u8; 16],
    /// 320: REPORTDATA.
    pub report_data: [u8; 64],
}

/// A TDX quote, version 4 or 5.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Quote {
    /// The header.
    pub header: QuoteHeader,
    /// The TD report body.
    pub body: QuoteBody,
    /// The signature data.
    pub signature_data: QuoteSignatureData,
    /// Bytes after the signature data, ignored (padding).
    pub trailing_len: usize,
}

json_struct!(QuoteHeader {
    version: val,
    att_key_type: val,
    tee_type: val,
    qe_vendor_id: hex,
    user_data: hex,
});
json_struct!(QuoteSignatureData {
    signature: hex,
    attestation_key: hex,
    qe_report_certification_data: val,
});
json_struct!(QeReportCertificationData {
    qe_report: val,
    qe_report_signature: hex,
    qe_auth_data: hex,
    certification_data: val,
});
json_struct!(EnclaveReportBody {
    cpu_svn: hex,
    misc_select: val,
    isv_ext_prod_id: hex,
    attributes: hex,
    mr_enclave: hex,
    mr_signer: hex,
    config_id: hex,
    isv_prod_id: val,
    isv_svn: val,
    config_svn: val,
    isv_family_id: hex,
    report_data: hex,
});
json_struct!(Quote {
    header: val,
    body: val,
    signature_data: val,
    trailing_len: val,
});

/// `{"cert_data_type": 5, "data": "<hex>"}`; a type 5 chain is also given as
/// text (`pem`).
#[cfg(feature = "serde")]
impl serde::Serialize for CertificationData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let Self {
            cert_data_type,
            data,
        } = self;
        let pem = self
            .pck_cert_chain_pem()
            .and_then(|p| std::str::from_utf8(p).ok());
        let mut s = serializer.serialize_struct("CertificationData", 3)?;
        s.serialize_field("cert_data_type", cert_data_type)?;
        s.serialize_field("data", &crate::json::hex(data))?;
        s.serialize_field("pem", &pem)?;
        s.end()
    }
}

/// `{"body_type": 3, "body": {…}}`.
#[cfg(feature = "serde")]
impl serde::Serialize for QuoteBody {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("QuoteBody", 2)?;
        s.serialize_field("body_type", &self.body_type())?;
        match self {
            Self::Td10(b) => s.serialize_field("body", b)?,
            Self::Td15(b) => s.serialize_field("body", b)?,
            Self::Td15Ex(b) => s.serialize_field("body", b)?,
        }
        s.end()
    }
}

impl QuoteHeader {
    fn read(r: &mut Reader<'_>) -> Result<Self, FormatError> {
        let version = r.u16("quote version")?;
        if !matches!(version, 4 | 5) {
            return Err(FormatError::UnsupportedVersion {
                what: "TDX quote",
                version: version.into(),
            });
        }
        let offset = r.offset();
        let att_key_type = r.u16("att_key_type")?;
        if att_key_type != ATT_KEY_TYPE_ECDSA_P256 {
            return Err(FormatError::UnsupportedValue {
                field: "att_key_type",
                offset,
                value: att_key_type.into(),
            });
        }
        let offset = r.offset();
        let tee_type = r.u32("tee_type")?;
        if tee_type != TEE_TYPE_TDX {
            return Err(FormatError::UnsupportedValue {
                field: "tee_type",
                offset,
                value: tee_type.into(),
            });
        }
        r.reserved(4, WHAT_HEADER)?;
        Ok(Self {
            version,
            att_key_type,
            tee_type,
            qe_vendor_id: r.array("qe_vendor_id")?,
            user_data: r.array("user_data")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.att_key_type.to_le_bytes());
        out.extend_from_slice(&self.tee_type.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.qe_vendor_id);
        out.extend_from_slice(&self.user_data);
    }
}

impl QuoteBody {
    /// The v5 body type (2, 3 or 4).
    pub const fn body_type(&self) -> u16 {
        match self {
            Self::Td10(_) => BODY_TYPE_TD10,
            Self::Td15(_) => BODY_TYPE_TD15,
            Self::Td15Ex(_) => BODY_TYPE_TD15_EX,
        }
    }

    /// The body's size in bytes (584, 648 or 885).
    pub const fn size(&self) -> usize {
        match self {
            Self::Td10(_) => TD_QUOTE_BODY10_SIZE,
            Self::Td15(_) => TD_QUOTE_BODY15_SIZE,
            Self::Td15Ex(_) => TD_QUOTE_BODY15_EX_SIZE,
        }
    }

    /// The TDX 1.0 fields, common to every body type.
    pub const fn td10(&self) -> &TdQuoteBody10 {
        match self {
            Self::Td10(b) => b,
            Self::Td15(b) => &b.td10,
            Self::Td15Ex(b) => &b.td15.td10,
        }
    }

    /// The TDX 1.5 fields, for body types 3 and 4.
    pub const fn td15(&self) -> Option<&TdQuoteBody15> {
        match self {
            Self::Td10(_) => None,
            Self::Td15(b) => Some(b),
            Self::Td15Ex(b) => Some(&b.td15),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Td10(b) => b.write(out),
            Self::Td15(b) => b.write(out),
            Self::Td15Ex(b) => b.write(out),
        }
    }
}

impl EnclaveReportBody {
    fn read(r: &mut Reader<'_>) -> Result<Self, FormatError> {
        let cpu_svn = r.array("QE report CPUSVN")?;
        let misc_select = r.u32("QE report MISCSELECT")?;
        r.reserved(12, WHAT_QE_REPORT)?;
        let isv_ext_prod_id = r.array("QE report ISVEXTPRODID")?;
        let attributes = r.array("QE report ATTRIBUTES")?;
        let mr_enclave = r.array("QE report MRENCLAVE")?;
        r.reserved(32, WHAT_QE_REPORT)?;
        let mr_signer = r.array("QE report MRSIGNER")?;
        r.reserved(32, WHAT_QE_REPORT)?;
        let config_id = r.array("QE report CONFIGID")?;
        let isv_prod_id = r.u16("QE report ISVPRODID")?;
        let isv_svn = r.u16("QE report ISVSVN")?;
        let config_svn = r.u16("QE report CONFIGSVN")?;
        r.reserved(42, WHAT_QE_REPORT)?;
        Ok(Self {
            cpu_svn,
            misc_select,
            isv_ext_prod_id,
            attributes,
            mr_enclave,
            mr_signer,
            config_id,
            isv_prod_id,
            isv_svn,
            config_svn,
            isv_family_id: r.array("QE report ISVFAMILYID")?,
            report_data: r.array("QE report REPORTDATA")?,
        })
    }

    /// Encodes the 384-byte report body (reserved ranges zero).
    pub fn to_bytes(&self) -> [u8; QE_REPORT_SIZE] {
        let mut out = [0u8; QE_REPORT_SIZE];
        let mut w = ArrayWriter::new(&mut out);
        w.put(&self.cpu_svn);
        w.put(&self.misc_select.to_le_bytes());
        w.skip(12);
        w.put(&self.isv_ext_prod_id);
        w.put(&self.attributes);
        w.put(&self.mr_enclave);
        w.skip(32);
        w.put(&self.mr_signer);
        w.skip(32);
        w.put(&self.config_id);
        w.put(&self.isv_prod_id.to_le_bytes());
        w.put(&self.isv_svn.to_le_bytes());
        w.put(&self.config_svn.to_le_bytes());
        w.skip(42);
        w.put(&self.isv_family_id);
        w.put(&self.report_data);
        w.finish();
        out
    }
}

impl Quote {
    /// Parses a quote; bytes after the signature data are ignored (their
    /// count is kept in [`Quote::trailing_len`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes);
        let header = QuoteHeader::read(&mut r)?;
        let body = if header.version == 4 {
            QuoteBody::Td10(TdQuoteBody10::read(&mut r)?)
        } else {
            read_v5_body(&mut r)?
        };

        let len_offset = r.offset();
        let sig_len = r.u32("signature_data_len")?;
        let mut s = r.sub(sig_len.into(), "signature_data_len", len_offset)?;
        let signature = s.array("quote signature")?;
        let attestation_key = s.array("attestation key")?;

        let type_offset = s.offset();
        let cert_type = s.u16("certification data type")?;
        if cert_type != CERT_DATA_TYPE_QE_REPORT {
            return Err(FormatError::UnsupportedValue {
                field: "certification data type",
                offset: type_offset,
                value: cert_type.into(),
            });
        }
        let size_offset = s.offset();
        let cert_size = s.u32("certification data size")?;
        let mut c = s.sub(cert_size.into(), "certification data size", size_offset)?;
        let qe_report_certification_data = read_qe_report_certification_data(&mut c)?;
        c.finish("QE report certification data")?;
        s.finish("signature data")?;

        Ok(Self {
            header,
            body,
            signature_data: QuoteSignatureData {
                signature,
                attestation_key,
                qe_report_certification_data,
            },
            trailing_len: r.remaining(),
        })
    }

    /// Length of the signed part: header, v5 body descriptor, body.
    pub fn signed_len(&self) -> usize {
        let descriptor = if self.header.version == 4 {
            0
        } else {
            BODY_DESCRIPTOR_SIZE
        };
        QUOTE_HEADER_SIZE + descriptor + self.body.size()
    }

    /// Offset of the QE report in the encoded quote.
    pub fn qe_report_offset(&self) -> usize {
        // signature_data_len, signature, attestation key, u16 type, u32 size.
        self.signed_len() + 4 + ECDSA_P256_SIGNATURE_SIZE + ECDSA_P256_KEY_SIZE + 6
    }

    /// Encodes the quote up to the end of the signature data (no trailing
    /// padding). Fails if the structure cannot be encoded: an unsupported
    /// version, a non-1.0 body in a v4 quote, or data too long for its length
    /// field.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::new();
        self.header.write(&mut out);
        match (self.header.version, &self.body) {
            (4, QuoteBody::Td10(_)) => {}
            (4, other) => {
                return Err(FormatError::UnsupportedValue {
                    field: "body type (a v4 quote carries a TD 1.0 body)",
                    offset: QUOTE_HEADER_SIZE,
                    value: other.body_type().into(),
                })
            }
            (5, body) => {
                out.extend_from_slice(&body.body_type().to_le_bytes());
                out.extend_from_slice(&u32_len(body.size(), "body_size")?.to_le_bytes());
            }
            (version, _) => {
                return Err(FormatError::UnsupportedVersion {
                    what: "TDX quote",
                    version: version.into(),
                })
            }
        }
        self.body.write(&mut out);

        let sd = &self.signature_data;
        let q = &sd.qe_report_certification_data;
        let mut cert = Vec::new();
        cert.extend_from_slice(&q.qe_report.to_bytes());
        cert.extend_from_slice(&q.qe_report_signature);
        cert.extend_from_slice(&u16_len(q.qe_auth_data.len(), "qe_auth_data_len")?.to_le_bytes());
        cert.extend_from_slice(&q.qe_auth_data);
        cert.extend_from_slice(&q.certification_data.cert_data_type.to_le_bytes());
        let inner_len = u32_len(
            q.certification_data.data.len(),
            "QE certification data size",
        )?;
        cert.extend_from_slice(&inner_len.to_le_bytes());
        cert.extend_from_slice(&q.certification_data.data);

        let mut sig = Vec::new();
        sig.extend_from_slice(&sd.signature);
        sig.extend_from_slice(&sd.attestation_key);
        sig.extend_from_slice(&CERT_DATA_TYPE_QE_REPORT.to_le_bytes());
        sig.extend_from_slice(&u32_len(cert.len(), "certification data size")?.to_le_bytes());
        sig.extend_from_slice(&cert);

        out.extend_from_slice(&u32_len(sig.len(), "signature_data_len")?.to_le_bytes());
        out.extend_from_slice(&sig);
        Ok(out)
    }
}

fn read_v5_body(r: &mut Reader<'_>) -> Result<QuoteBody, FormatError> {
    let type_offset = r.offset();
    let body_type = r.u16("body_type")?;
    let expected = match body_type {
        BODY_TYPE_TD10 => TD_QUOTE_BODY10_SIZE,
        BODY_TYPE_TD15 => TD_QUOTE_BODY15_SIZE,
        BODY_TYPE_TD15_EX => TD_QUOTE_BODY15_EX_SIZE,
        other => {
            return Err(FormatError::UnsupportedValue {
                field: "body_type",
                offset: type_offset,
                value: other.into(),
            })
        }
    };
    let size_offset = r.offset();
    let body_size = r.u32("body_size")?;
    if u64::from(body_size) != expected as u64 {
        return Err(FormatError::BadLength {
            field: "body_size",
            offset: size_offset,
            got: body_size.into(),
            expected: expected as u64,
        });
    }
    Ok(match body_type {
        BODY_TYPE_TD10 => QuoteBody::Td10(TdQuoteBody10::read(r)?),
        BODY_TYPE_TD15 => QuoteBody::Td15(TdQuoteBody15::read(r)?),
        _ => QuoteBody::Td15Ex(Box::new(TdQuoteBody15Ex::read(r)?)),
    })
}

fn read_qe_report_certification_data(
    c: &mut Reader<'_>,
) -> Result<QeReportCertificationData, FormatError> {
    let qe_report = EnclaveReportBody::read(c)?;
    let qe_report_signature = c.array("QE report signature")?;
    let auth_offset = c.offset();
    let auth_len = c.u16("qe_auth_data_len")?;
    let qe_auth_data = c
        .sub(auth_len.into(), "qe_auth_data_len", auth_offset)?
        .rest()
        .to_vec();
    let type_offset = c.offset();
    let cert_data_type = c.u16("QE certification data type")?;
    if !(1..=5).contains(&cert_data_type) {
        return Err(FormatError::UnsupportedValue {
            field: "QE certification data type",
            offset: type_offset,
            value: cert_data_type.into(),
        });
    }
    let size_offset = c.offset();
    let size = c.u32("QE certification data size")?;
    let data = c
        .sub(size.into(), "QE certification data size", size_offset)?
        .rest()
        .to_vec();
    Ok(QeReportCertificationData {
        qe_report,
        qe_report_signature,
        qe_auth_data,
        certification_data: CertificationData {
            cert_data_type,
            data,
        },
    })
}

fn u16_len(len: usize, field: &'static str) -> Result<u16, FormatError> {
    u16::try_from(len).map_err(|_| FormatError::TooLarge { field, len })
}

fn u32_len(len: usize, field: &'static str) -> Result<u32, FormatError> {
    u32::try_from(len).map_err(|_| FormatError::TooLarge { field, len })
}

/// A quote together with the exact bytes it was parsed from (padding included).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceivedQuote {
    bytes: Vec<u8>,
    quote: Quote,
}

impl ReceivedQuote {
    /// Parses a quote and keeps its bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        Ok(Self {
            quote: Quote::parse(bytes)?,
            bytes: bytes.to_vec(),
        })
    }

    /// The parsed quote.
    pub const fn quote(&self) -> &Quote {
        &self.quote
    }

    /// Every byte as received, trailing padding included.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes the quote signature covers, as received: header and body
    /// (`[0, 632)` for v4, `[0, 54 + body_size)` for v5).
    pub fn signed_bytes(&self) -> &[u8] {
        self.bytes
            .get(..self.quote.signed_len())
            .unwrap_or_default()
    }

    /// The 384 QE report bytes the QE report signature covers, as received.
    pub fn qe_report_bytes(&self) -> &[u8] {
        let start = self.quote.qe_report_offset();
        self.bytes
            .get(start..start.saturating_add(QE_REPORT_SIZE))
            .unwrap_or_default()
    }

    /// The meaningful bytes as received (without trailing padding).
    pub fn meaningful_bytes(&self) -> &[u8] {
        let end = self.bytes.len().saturating_sub(self.quote.trailing_len);
        self.bytes.get(..end).unwrap_or_default()
    }
}

/// Serialised as the parsed quote.
#[cfg(feature = "serde")]
impl serde::Serialize for ReceivedQuote {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.quote.serialize(serializer)
    }
}
