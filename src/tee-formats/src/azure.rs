//! The Azure confidential VM attestation report ("HCL report"): what the
//! paravisor (OpenHCL, "HCL") stores in vTPM NV index `0x01400001`.
//!
//! Sources: microsoft/openvmm `openhcl/openhcl_attestation_protocol`
//! (`IgvmAttestRequestHeader`, `IgvmAttestRequestData`, the user-facing
//! report of `petri/guest-bins/tpm_guest_tests/src/report.rs`);
//! kinvolk/azure-cvm-tooling `az-cvm-vtpm/src/hcl/mod.rs`; the captures in
//! `shared/fixtures/cloud/azure` (`SOURCES.md` §2). All little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | signature `"HCLA"` |
//! | 4 | 4 | version (1 and 2 seen; 2 current) |
//! | 8 | 4 | report_size = 1236 + variable_data_size |
//! | 12 | 4 | request_type (2 = AK certificate request) |
//! | 16 | 4 | status (0) |
//! | 20 | 12 | reserved, zero |
//! | 32 | 1184 | hardware report: an SNP ATTESTATION_REPORT, or a 1024-byte TDREPORT then 160 zero bytes |
//! | 1216 | 4 | data_size = 20 + variable_data_size |
//! | 1220 | 4 | request data version (1) |
//! | 1224 | 4 | report_type: 2 = SNP, 4 = TDX |
//! | 1228 | 4 | report_data_hash_type: 1 = SHA-256 (the only one implemented here) |
//! | 1232 | 4 | variable_data_size |
//! | 1236 | … | variable data: UTF-8 JSON "runtime claims" (`keys` with the `HCLAkPub` JWK, `vm-configuration`, `user-data`) |
//!
//! The NV index is larger than the report (2600 bytes on Azure): the bytes
//! after `report_size` must be zero padding ([`HclReport::padding_len`]).
//!
//! The binding this report exists for: the hardware report's REPORT_DATA is
//! SHA-256(variable data, the raw bytes as stored) followed by 32 zero bytes
//! ([`HclReport::expected_report_data`]). The JSON is not parsed here (no JSON
//! in this crate); the appraisal reads the AK from it.

use sha2::{Digest, Sha256};

use crate::bytes::Reader;
use crate::snp::ReceivedReport;
use crate::tdx::TdReport;
use crate::FormatError;

/// vTPM NV index holding the HCL report.
pub const NV_INDEX_REPORT: u32 = 0x0140_0001;
/// vTPM NV index the guest writes its 64 bytes of user data to; the paravisor
/// then refreshes the report with them as `user-data`.
pub const NV_INDEX_USER_DATA: u32 = 0x0140_0002;
/// Persistent handle of the vTPM attestation key (the `HCLAkPub` JWK).
pub const AK_HANDLE: u32 = 0x8100_0003;
/// Length of the user data written to [`NV_INDEX_USER_DATA`].
pub const USER_DATA_LEN: usize = 64;

/// `"HCLA"` as stored (the little-endian u32 0x414C4348).
pub const SIGNATURE: [u8; 4] = *b"HCLA";
/// Size of the header.
pub const HEADER_SIZE: usize = 32;
/// Size of the hardware report area (the largest report, an SNP one).
pub const HW_REPORT_AREA: usize = 1184;
/// Offset of the IGVM request data.
pub const REQUEST_DATA_OFFSET: usize = HEADER_SIZE + HW_REPORT_AREA;
/// Size of the IGVM request data without the variable data.
pub const REQUEST_DATA_SIZE: usize = 20;
/// Offset of the variable data.
pub const VAR_DATA_OFFSET: usize = REQUEST_DATA_OFFSET + REQUEST_DATA_SIZE;
/// `request_type` of the report in NV (AK certificate request).
pub const REQUEST_TYPE_AK_CERT: u32 = 2;
/// The IGVM request data version this parser reads.
pub const REQUEST_DATA_VERSION: u32 = 1;
/// `report_data_hash_type` SHA-256.
pub const HASH_TYPE_SHA256: u32 = 1;

const WHAT: &str = "HCL report";

const _: () = assert!(VAR_DATA_OFFSET == 1236);

/// Which hardware report the HCL report carries (`report_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HclReportType {
    /// 2: an SEV-SNP ATTESTATION_REPORT.
    Snp,
    /// 4: a TDX TDREPORT (the TD quote of it comes from the platform).
    Tdx,
}

impl HclReportType {
    /// The `report_type` value.
    pub const fn value(self) -> u32 {
        match self {
            HclReportType::Snp => 2,
            HclReportType::Tdx => 4,
        }
    }

    /// `"snp"` or `"tdx"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            HclReportType::Snp => "snp",
            HclReportType::Tdx => "tdx",
        }
    }
}

/// The hardware report inside the HCL report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(clippy::large_enum_variant)]
pub enum HardwareReport {
    /// The SNP report, with its bytes as received (the signature is checked
    /// over them).
    Snp(ReceivedReport),
    /// The TDREPORT (MAC-protected, verifiable only through a TD quote).
    Tdx(TdReport),
}

impl HardwareReport {
    /// REPORT_DATA (SNP) or REPORTDATA (TDX).
    pub fn report_data(&self) -> &[u8; 64] {
        match self {
            HardwareReport::Snp(r) => &r.report().report_data,
            HardwareReport::Tdx(r) => &r.report_mac_struct.report_data,
        }
    }

    /// Its type.
    pub fn report_type(&self) -> HclReportType {
        match self {
            HardwareReport::Snp(_) => HclReportType::Snp,
            HardwareReport::Tdx(_) => HclReportType::Tdx,
        }
    }
}

/// The header (offsets 0..32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HclHeader {
    /// 4: version (1 or 2).
    pub version: u32,
    /// 8: report_size, the meaningful length of the whole report.
    pub report_size: u32,
    /// 12: request_type (2).
    pub request_type: u32,
    /// 16: status (0).
    pub status: u32,
}

/// The IGVM request data (offsets 1216..1236).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IgvmRequestData {
    /// 1216: data_size = 20 + variable_data_size.
    pub data_size: u32,
    /// 1220: version (1).
    pub version: u32,
    /// 1224: report_type.
    pub report_type: HclReportType,
    /// 1228: report_data_hash_type (1 = SHA-256).
    pub report_data_hash_type: u32,
    /// 1232: variable_data_size.
    pub variable_data_size: u32,
}

/// A parsed HCL report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HclReport {
    /// The header.
    pub header: HclHeader,
    /// The hardware report.
    pub hardware_report: HardwareReport,
    /// The IGVM request data.
    pub request_data: IgvmRequestData,
    /// The variable data, the raw bytes as stored (hashed as they are).
    pub variable_data: Vec<u8>,
    /// Zero bytes after `report_size` (the NV index's slack).
    pub padding_len: usize,
}

impl HclReport {
    /// Parses an HCL report as read from NV: the report, then only zero
    /// bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.len() < VAR_DATA_OFFSET {
            return Err(FormatError::Truncated {
                what: WHAT,
                needed: VAR_DATA_OFFSET,
                got: bytes.len(),
            });
        }
        let mut r = Reader::new(bytes);
        let signature: [u8; 4] = r.array("HCL signature")?;
        if signature != SIGNATURE {
            return Err(FormatError::UnsupportedValue {
                field: "HCL signature",
                offset: 0,
                value: u32::from_le_bytes(signature).into(),
            });
        }
        let version = r.u32("HCL version")?;
        if !(1..=2).contains(&version) {
            return Err(FormatError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let report_size = r.u32("HCL report_size")?;
        let request_type = r.u32("HCL request_type")?;
        if request_type != REQUEST_TYPE_AK_CERT {
            return Err(FormatError::UnsupportedValue {
                field: "HCL request_type",
                offset: 12,
                value: request_type.into(),
            });
        }
        let status = r.u32("HCL status")?;
        if status != 0 {
            return Err(FormatError::UnsupportedValue {
                field: "HCL status",
                offset: 16,
                value: status.into(),
            });
        }
        r.reserved(12, "HCL header")?;
        let area = r.take(HW_REPORT_AREA, "HCL hardware report")?;

        // The request data says what the area holds: read it first.
        let data_size = r.u32("IGVM data_size")?;
        let req_version = r.u32("IGVM request data version")?;
        if req_version != REQUEST_DATA_VERSION {
            return Err(FormatError::UnsupportedVersion {
                what: "IGVM request data",
                version: req_version,
            });
        }
        let report_type = match r.u32("IGVM report_type")? {
            2 => HclReportType::Snp,
            4 => HclReportType::Tdx,
            other => {
                return Err(FormatError::UnsupportedValue {
                    field: "IGVM report_type",
                    offset: REQUEST_DATA_OFFSET + 8,
                    value: other.into(),
                })
            }
        };
        let hash_type = r.u32("IGVM report_data_hash_type")?;
        if hash_type != HASH_TYPE_SHA256 {
            return Err(FormatError::UnsupportedValue {
                field: "IGVM report_data_hash_type",
                offset: REQUEST_DATA_OFFSET + 12,
                value: hash_type.into(),
            });
        }
        let var_size = r.u32("IGVM variable_data_size")?;
        let want_data_size = u64::from(var_size) + REQUEST_DATA_SIZE as u64;
        if u64::from(data_size) != want_data_size {
            return Err(FormatError::BadLength {
                field: "IGVM data_size",
                offset: REQUEST_DATA_OFFSET,
                got: data_size.into(),
                expected: want_data_size,
            });
        }
        let want_report_size = u64::from(var_size) + VAR_DATA_OFFSET as u64;
        if u64::from(report_size) != want_report_size {
            return Err(FormatError::BadLength {
                field: "HCL report_size",
                offset: 8,
                got: report_size.into(),
                expected: want_report_size,
            });
        }
        let mut var = r.sub(
            var_size.into(),
            "IGVM variable_data_size",
            REQUEST_DATA_OFFSET + 16,
        )?;
        let variable_data = var.rest().to_vec();
        let padding_offset = r.offset();
        let padding = r.rest();
        if let Some(i) = padding.iter().position(|&b| b != 0) {
            return Err(FormatError::TrailingBytes {
                what: "HCL report padding",
                offset: padding_offset + i,
                len: padding.len() - i,
            });
        }

        let hardware_report = match report_type {
            HclReportType::Snp => {
                HardwareReport::Snp(ReceivedReport::parse(area).map_err(|e| shift(e, HEADER_SIZE))?)
            }
            HclReportType::Tdx => {
                let (td, rest) = area.split_at_checked(crate::tdx::TDREPORT_SIZE).ok_or(
                    FormatError::Truncated {
                        what: WHAT,
                        needed: HEADER_SIZE + crate::tdx::TDREPORT_SIZE,
                        got: HEADER_SIZE + area.len(),
                    },
                )?;
                if rest.iter().any(|&b| b != 0) {
                    return Err(FormatError::ReservedNotZero {
                        what: "HCL hardware report after the TDREPORT",
                        offset: HEADER_SIZE + crate::tdx::TDREPORT_SIZE,
                        len: rest.len(),
                    });
                }
                HardwareReport::Tdx(TdReport::parse(td).map_err(|e| shift(e, HEADER_SIZE))?)
            }
        };
        Ok(HclReport {
            header: HclHeader {
                version,
                report_size,
                request_type,
                status,
            },
            hardware_report,
            request_data: IgvmRequestData {
                data_size,
                version: req_version,
                report_type,
                report_data_hash_type: hash_type,
                variable_data_size: var_size,
            },
            variable_data,
            padding_len: padding.len(),
        })
    }

    /// The report type.
    pub fn report_type(&self) -> HclReportType {
        self.request_data.report_type
    }

    /// SHA-256 of the variable data as stored.
    pub fn variable_data_sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.variable_data).into()
    }

    /// The REPORT_DATA the hardware report must carry: SHA-256(variable
    /// data) followed by 32 zero bytes.
    pub fn expected_report_data(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.variable_data_sha256());
        out
    }

    /// Encodes a report the way the paravisor lays it out: header `version`,
    /// the hardware report (1184 SNP bytes, or a 1024-byte TDREPORT padded
    /// with zeros), the request data, `variable_data`, then zeros up to
    /// `nv_size` (at least the report's own size). For the simulated
    /// paravisor and tests.
    pub fn encode(
        version: u32,
        report_type: HclReportType,
        hardware_report: &[u8],
        variable_data: &[u8],
        nv_size: usize,
    ) -> Result<Vec<u8>, FormatError> {
        let too_large = |field, len| FormatError::TooLarge { field, len };
        if hardware_report.len() > HW_REPORT_AREA {
            return Err(too_large("HCL hardware report", hardware_report.len()));
        }
        let var_size = u32::try_from(variable_data.len())
            .map_err(|_| too_large("IGVM variable_data_size", variable_data.len()))?;
        #[expect(clippy::cast_possible_truncation, reason = "REQUEST_DATA_SIZE is 20")]
        let data_size = var_size
            .checked_add(REQUEST_DATA_SIZE as u32)
            .ok_or_else(|| too_large("IGVM data_size", variable_data.len()))?;
        let report_size = VAR_DATA_OFFSET + variable_data.len();
        let report_size_u32 =
            u32::try_from(report_size).map_err(|_| too_large("HCL report_size", report_size))?;
        let mut out = Vec::with_capacity(nv_size.max(report_size));
        out.extend_from_slice(&SIGNATURE);
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&report_size_u32.to_le_bytes());
        out.extend_from_slice(&REQUEST_TYPE_AK_CERT.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&[0u8; 12]);
        out.extend_from_slice(hardware_report);
        out.resize(REQUEST_DATA_OFFSET, 0);
        out.extend_from_slice(&data_size.to_le_bytes());
        out.extend_from_slice(&REQUEST_DATA_VERSION.to_le_bytes());
        out.extend_from_slice(&report_type.value().to_le_bytes());
        out.extend_from_slice(&HASH_TYPE_SHA256.to_le_bytes());
        out.extend_from_slice(&var_size.to_le_bytes());
        out.extend_from_slice(variable_data);
        if nv_size > out.len() {
            out.resize(nv_size, 0);
        }
        Ok(out)
    }
}

/// Makes a nested parser's offsets absolute.
fn shift(e: FormatError, by: usize) -> FormatError {
    match e {
        FormatError::Truncated { what, needed, got } => FormatError::Truncated {
            what,
            needed: needed + by,
            got: got + by,
        },
        FormatError::BadLength {
            field,
            offset,
            got,
            expected,
        } => FormatError::BadLength {
            field,
            offset: offset + by,
            got,
            expected,
        },
        FormatError::UnsupportedValue {
            field,
            offset,
            value,
        } => FormatError::UnsupportedValue {
            field,
            offset: offset + by,
            value,
        },
        FormatError::ReservedNotZero { what, offset, len } => FormatError::ReservedNotZero {
            what,
            offset: offset + by,
            len,
        },
        FormatError::TrailingBytes { what, offset, len } => FormatError::TrailingBytes {
            what,
            offset: offset + by,
            len,
        },
        other => other,
    }
}

#[cfg(feature = "serde")]
mod ser {
    use serde::ser::{Serialize, SerializeStruct, Serializer};

    use super::*;

    impl Serialize for HclReportType {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(self.as_str())
        }
    }

    impl Serialize for HardwareReport {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                HardwareReport::Snp(r) => r.serialize(s),
                HardwareReport::Tdx(r) => r.serialize(s),
            }
        }
    }

    impl Serialize for HclHeader {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let HclHeader {
                version,
                report_size,
                request_type,
                status,
            } = self;
            let mut st = s.serialize_struct("HclHeader", 4)?;
            st.serialize_field("version", version)?;
            st.serialize_field("report_size", report_size)?;
            st.serialize_field("request_type", request_type)?;
            st.serialize_field("status", status)?;
            st.end()
        }
    }

    impl Serialize for IgvmRequestData {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let IgvmRequestData {
                data_size,
                version,
                report_type,
                report_data_hash_type,
                variable_data_size,
            } = self;
            let mut st = s.serialize_struct("IgvmRequestData", 5)?;
            st.serialize_field("data_size", data_size)?;
            st.serialize_field("version", version)?;
            st.serialize_field("report_type", report_type)?;
            st.serialize_field("report_data_hash_type", report_data_hash_type)?;
            st.serialize_field("variable_data_size", variable_data_size)?;
            st.end()
        }
    }

    /// Every field; the variable data as lowercase hex (it is JSON, but a
    /// viewer must show the bytes that were hashed), plus its SHA-256.
    impl Serialize for HclReport {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let HclReport {
                header,
                hardware_report,
                request_data,
                variable_data,
                padding_len,
            } = self;
            let mut st = s.serialize_struct("HclReport", 6)?;
            st.serialize_field("header", header)?;
            st.serialize_field("hardware_report", hardware_report)?;
            st.serialize_field("request_data", request_data)?;
            st.serialize_field("variable_data", &crate::json::hex(variable_data))?;
            st.serialize_field(
                "variable_data_sha256",
                &crate::json::hex(&self.variable_data_sha256()),
            )?;
            st.serialize_field("padding_len", padding_len)?;
            st.end()
        }
    }
}
