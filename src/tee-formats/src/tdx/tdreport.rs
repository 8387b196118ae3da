//! The TDX TDREPORT_STRUCT (1024 bytes), output of TDG.MR.REPORT and of the
//! Linux `TDX_CMD_GET_REPORT0` ioctl.
//!
//! Source: Intel TDX Module ABI specification, "TDREPORT_STRUCT",
//! "REPORTMACSTRUCT", "TEE_TCB_INFO", "TDINFO_STRUCT" tables; Intel
//! `sgx_quote_4.h`/`sgx_quote_5.h`; microsoft/openvmm `x86defs/src/tdx.rs`
//! (`shared/docs/tee-formats.md` §3.1). The structs use the TDX 1.5 layout,
//! a superset of 1.0: TEE_TCB_SVN2 and SERVTD_HASH, reserved in 1.0, are zero
//! there.
//!
//! Reserved ranges (checked to be zero): 0x003 (REPORTTYPE byte 3),
//! 0x004..0x010, 0x0C0..0x0E0, 0x190..0x200 (end of TEE_TCB_INFO and the
//! reserved 17 bytes after it), 0x3C0..0x400. REPORTTYPE.TYPE must be 0x81
//! (TDX). The MAC is not checked (only TDG.MR.VERIFYREPORT on the same
//! platform can).

use crate::bytes::{ArrayWriter, Reader};
use crate::json::json_struct;
use crate::FormatError;

/// Size of TDREPORT_STRUCT.
pub const TDREPORT_SIZE: usize = 1024;
/// Size of TEE_TCB_INFO (hashed into TEE_TCB_INFO_HASH).
pub const TEE_TCB_INFO_SIZE: usize = 239;
/// Size of TDINFO_STRUCT (hashed into TEE_INFO_HASH).
pub const TD_INFO_SIZE: usize = 512;
/// Size of REPORTMACSTRUCT.
pub const REPORT_MAC_STRUCT_SIZE: usize = 256;
/// REPORTTYPE.TYPE of a TDX report.
pub const REPORT_TYPE_TDX: u8 = 0x81;

const WHAT: &str = "TDREPORT";

// REPORTMACSTRUCT (256) + TEE_TCB_INFO + 17 reserved + TDINFO = 1024.
const _: () = assert!(4 + 12 + 16 + 48 + 48 + 64 + 32 + 32 == REPORT_MAC_STRUCT_SIZE);
const _: () = assert!(8 + 16 + 48 + 48 + 8 + 16 + 95 == TEE_TCB_INFO_SIZE);
const _: () = assert!(8 + 8 + 4 * 48 + 4 * 48 + 48 + 64 == TD_INFO_SIZE);
const _: () =
    assert!(REPORT_MAC_STRUCT_SIZE + TEE_TCB_INFO_SIZE + 17 + TD_INFO_SIZE == TDREPORT_SIZE);

/// TDREPORT_STRUCT: REPORTMACSTRUCT at 0x000, TEE_TCB_INFO at 0x100, TDINFO
/// at 0x200.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TdReport {
    /// 0x000: REPORTMACSTRUCT (256 bytes).
    pub report_mac_struct: ReportMacStruct,
    /// 0x100: TEE_TCB_INFO (239 bytes; 0x1EF..0x200 reserved).
    pub tee_tcb_info: TeeTcbInfo,
    /// 0x200: TDINFO_STRUCT (512 bytes).
    pub td_info: TdInfo,
}

/// REPORTTYPE (4 bytes at 0x000; byte 3 reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReportType {
    /// 0x000: TYPE, 0x81 for TDX.
    pub tee_type: u8,
    /// 0x001: SUBTYPE.
    pub subtype: u8,
    /// 0x002: VERSION (0 = TDX 1.0; 1 = SERVTD_HASH populated).
    pub version: u8,
}

/// REPORTMACSTRUCT (offsets relative to the TDREPORT).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportMacStruct {
    /// 0x000: REPORTTYPE.
    pub report_type: ReportType,
    // 0x004: 12 reserved bytes.
    /// 0x010: CPUSVN.
    pub cpu_svn: [u8; 16],
    /// 0x020: TEE_TCB_INFO_HASH = SHA-384(TEE_TCB_INFO).
    pub tee_tcb_info_hash: [u8; 48],
    /// 0x050: TEE_INFO_HASH = SHA-384(TDINFO).
    pub tee_info_hash: [u8; 48],
    /// 0x080: REPORTDATA.
    pub report_data: [u8; 64],
    // 0x0C0: 32 reserved bytes.
    /// 0x0E0: MAC over REPORTMACSTRUCT.
    pub mac: [u8; 32],
}

/// TEE_TCB_INFO (offsets relative to the TDREPORT).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TeeTcbInfo {
    /// 0x100: VALID, which of the following fields are valid.
    pub valid: [u8; 8],
    /// 0x108: TEE_TCB_SVN.
    pub tee_tcb_svn: [u8; 16],
    /// 0x118: MRSEAM.
    pub mr_seam: [u8; 48],
    /// 0x148: MRSIGNERSEAM.
    pub mr_signer_seam: [u8; 48],
    /// 0x178: ATTRIBUTES (of the TDX module).
    pub attributes: [u8; 8],
    /// 0x180: TEE_TCB_SVN2 (TDX 1.5; zero in 1.0).
    pub tee_tcb_svn2: [u8; 16],
    // 0x190: 95 reserved bytes (to 0x1EF), then 17 reserved bytes of TDREPORT.
}

/// TDINFO_STRUCT (offsets relative to the TDREPORT).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TdInfo {
    /// 0x200: ATTRIBUTES (TD attributes, see [`super::TdAttributes`]).
    pub attributes: [u8; 8],
    /// 0x208: XFAM.
    pub xfam: [u8; 8],
    /// 0x210: MRTD, the build-time measurement.
    pub mr_td: [u8; 48],
    /// 0x240: MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// 0x270: MROWNER.
    pub mr_owner: [u8; 48],
    /// 0x2A0: MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// 0x2D0, 0x300, 0x330, 0x360: RTMR0..RTMR3.
    pub rtmr: [[u8; 48]; 4],
    /// 0x390: SERVTD_HASH (TDX 1.5; zero in 1.0).
    pub servtd_hash: [u8; 48],
    // 0x3C0: 64 reserved bytes.
}

json_struct!(TdReport {
    report_mac_struct: val,
    tee_tcb_info: val,
    td_info: val
});
json_struct!(ReportType {
    tee_type: val,
    subtype: val,
    version: val
});
json_struct!(ReportMacStruct {
    report_type: val,
    cpu_svn: hex,
    tee_tcb_info_hash: hex,
    tee_info_hash: hex,
    report_data: hex,
    mac: hex,
});
json_struct!(TeeTcbInfo {
    valid: hex,
    tee_tcb_svn: hex,
    mr_seam: hex,
    mr_signer_seam: hex,
    attributes: hex,
    tee_tcb_svn2: hex,
});
json_struct!(TdInfo {
    attributes: hex,
    xfam: hex,
    mr_td: hex,
    mr_config_id: hex,
    mr_owner: hex,
    mr_owner_config: hex,
    rtmr: hex_list,
    servtd_hash: hex,
});

impl TdReport {
    /// Parses exactly [`TDREPORT_SIZE`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.len() < TDREPORT_SIZE {
            return Err(FormatError::Truncated {
                what: WHAT,
                needed: TDREPORT_SIZE,
                got: bytes.len(),
            });
        }
        if bytes.len() > TDREPORT_SIZE {
            return Err(FormatError::BadLength {
                field: WHAT,
                offset: 0,
                got: bytes.len() as u64,
                expected: TDREPORT_SIZE as u64,
            });
        }
        let mut r = Reader::new(bytes);
        let tee_type = r.u8("REPORTTYPE.TYPE")?;
        if tee_type != REPORT_TYPE_TDX {
            return Err(FormatError::UnsupportedValue {
                field: "REPORTTYPE.TYPE",
                offset: 0,
                value: tee_type.into(),
            });
        }
        let report_type = ReportType {
            tee_type,
            subtype: r.u8("REPORTTYPE.SUBTYPE")?,
            version: r.u8("REPORTTYPE.VERSION")?,
        };
        r.reserved(1, WHAT)?;
        r.reserved(12, WHAT)?;
        let cpu_svn = r.array("CPUSVN")?;
        let tee_tcb_info_hash = r.array("TEE_TCB_INFO_HASH")?;
        let tee_info_hash = r.array("TEE_INFO_HASH")?;
        let report_data = r.array("REPORTDATA")?;
        r.reserved(32, WHAT)?;
        let mac = r.array("MAC")?;
        let report_mac_struct = ReportMacStruct {
            report_type,
            cpu_svn,
            tee_tcb_info_hash,
            tee_info_hash,
            report_data,
            mac,
        };
        let tee_tcb_info = TeeTcbInfo {
            valid: r.array("TEE_TCB_INFO.VALID")?,
            tee_tcb_svn: r.array("TEE_TCB_SVN")?,
            mr_seam: r.array("MRSEAM")?,
            mr_signer_seam: r.array("MRSIGNERSEAM")?,
            attributes: r.array("TEE_TCB_INFO.ATTRIBUTES")?,
            tee_tcb_svn2: r.array("TEE_TCB_SVN2")?,
        };
        r.reserved(0x200 - 0x190, WHAT)?;
        let td_info = TdInfo {
            attributes: r.array("TDINFO.ATTRIBUTES")?,
            xfam: r.array("XFAM")?,
            mr_td: r.array("MRTD")?,
            mr_config_id: r.array("MRCONFIGID")?,
            mr_owner: r.array("MROWNER")?,
            mr_owner_config: r.array("MROWNERCONFIG")?,
            rtmr: [
                r.array("RTMR0")?,
                r.array("RTMR1")?,
                r.array("RTMR2")?,
                r.array("RTMR3")?,
            ],
            servtd_hash: r.array("SERVTD_HASH")?,
        };
        r.reserved(0x400 - 0x3C0, WHAT)?;
        r.finish(WHAT)?;
        Ok(Self {
            report_mac_struct,
            tee_tcb_info,
            td_info,
        })
    }

    /// Encodes the TDREPORT (reserved ranges zero); `parse(b)?.to_bytes() == b`.
    pub fn to_bytes(&self) -> [u8; TDREPORT_SIZE] {
        let mut out = [0u8; TDREPORT_SIZE];
        let mut w = ArrayWriter::new(&mut out);
        let m = &self.report_mac_struct;
        w.put(&[
            m.report_type.tee_type,
            m.report_type.subtype,
            m.report_type.version,
        ]);
        w.skip(1 + 12);
        w.put(&m.cpu_svn);
        w.put(&m.tee_tcb_info_hash);
        w.put(&m.tee_info_hash);
        w.put(&m.report_data);
        w.skip(32);
        w.put(&m.mac);
        let t = &self.tee_tcb_info;
        w.put(&t.valid);
        w.put(&t.tee_tcb_svn);
        w.put(&t.mr_seam);
        w.put(&t.mr_signer_seam);
        w.put(&t.attributes);
        w.put(&t.tee_tcb_svn2);
        w.skip(0x200 - 0x190);
        let d = &self.td_info;
        w.put(&d.attributes);
        w.put(&d.xfam);
        w.put(&d.mr_td);
        w.put(&d.mr_config_id);
        w.put(&d.mr_owner);
        w.put(&d.mr_owner_config);
        for rtmr in &d.rtmr {
            w.put(rtmr);
        }
        w.put(&d.servtd_hash);
        w.skip(0x400 - 0x3C0);
        w.finish();
        out
    }
}
