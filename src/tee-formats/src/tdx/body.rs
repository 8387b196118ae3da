//! TD quote bodies (`sgx_report2_body_t` and its TDX 1.5 extensions) and the
//! TD attributes bitfield.
//!
//! Source: Intel `sgx_quote_4.h` / `sgx_quote_5.h`
//! (intel/SGXDataCenterAttestationPrimitives), dcap-qvl 0.7.1 `src/quote.rs`
//! (`TDReport10`, `TDReport15`, `TDReport15Ex`); `shared/docs/tee-formats.md`
//! §3.2. Offsets are relative to the start of the body (absolute = +48 in a
//! v4 quote, +54 in a v5 quote). Bodies have no reserved bytes.

use crate::bytes::{ArrayWriter, Reader};
use crate::json::json_struct;
use crate::FormatError;

/// Size of a TD 1.0 body (v4, or v5 body type 2).
pub const TD_QUOTE_BODY10_SIZE: usize = 584;
/// Size of a TD 1.5 body (v5 body type 3).
pub const TD_QUOTE_BODY15_SIZE: usize = 648;
/// Size of a TD 1.5 "ex" body (v5 body type 4).
pub const TD_QUOTE_BODY15_EX_SIZE: usize = 885;

const _: () = assert!(16 + 48 + 48 + 8 + 8 + 8 + 4 * 48 + 4 * 48 + 64 == TD_QUOTE_BODY10_SIZE);
const _: () = assert!(TD_QUOTE_BODY10_SIZE + 16 + 48 == TD_QUOTE_BODY15_SIZE);
const _: () = assert!(
    TD_QUOTE_BODY15_SIZE + 1 + 32 + 48 + 48 + 8 + 16 + 16 + 12 + 48 + 8 == TD_QUOTE_BODY15_EX_SIZE
);

/// TD quote body, TDX 1.0 (`sgx_report2_body_t`, 584 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TdQuoteBody10 {
    /// 0: TEE_TCB_SVN (byte 0 module minor/ISVSVN, byte 1 module major, then other SVNs).
    pub tee_tcb_svn: [u8; 16],
    /// 16: MRSEAM, measurement of the TDX module.
    pub mr_seam: [u8; 48],
    /// 64: MRSIGNERSEAM (zero for Intel modules).
    pub mr_signer_seam: [u8; 48],
    /// 112: SEAMATTRIBUTES (zero in TDX 1.0).
    pub seam_attributes: [u8; 8],
    /// 120: TDATTRIBUTES (see [`TdAttributes`]).
    pub td_attributes: [u8; 8],
    /// 128: XFAM.
    pub xfam: [u8; 8],
    /// 136: MRTD, the build-time measurement of the TD.
    pub mr_td: [u8; 48],
    /// 184: MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// 232: MROWNER.
    pub mr_owner: [u8; 48],
    /// 280: MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// 328, 376, 424, 472: RTMR0..RTMR3.
    pub rtmr: [[u8; 48]; 4],
    /// 520: REPORTDATA.
    pub report_data: [u8; 64],
}

/// TD quote body, TDX 1.5 (`sgx_report2_body_v1_5_t`, 648 bytes): the 1.0
/// body followed by two fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TdQuoteBody15 {
    /// 0..584: the TDX 1.0 fields.
    pub td10: TdQuoteBody10,
    /// 584: TEE_TCB_SVN2.
    pub tee_tcb_svn2: [u8; 16],
    /// 600: MRSERVICETD.
    pub mr_servicetd: [u8; 48],
}

/// TD quote body, TDX 1.5 "ex" (`sgx_report2_body_v1_5_ex_t`, 885 bytes):
/// the 1.5 body followed by TD partitioning and service-TD fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TdQuoteBody15Ex {
    /// 0..648: the TDX 1.5 fields.
    pub td15: TdQuoteBody15,
    /// 648: VMID (0 for an unpartitioned TD or the L1 VMM).
    pub vmid: u8,
    /// 649: TD_ID, statistically unique per TD instance.
    pub td_id: [u8; 32],
    /// 681: DEV_INFO, hash of the device information.
    pub dev_info: [u8; 48],
    /// 729: INIT_SERVICE_TD_HASH.
    pub init_service_td_hash: [u8; 48],
    /// 777: INIT_SERVICE_TD_ATTRIBUTES.
    pub init_service_td_attributes: [u8; 8],
    /// 785: INIT_CPU_SVN.
    pub init_cpu_svn: [u8; 16],
    /// 801: INIT_TEE_TCB_SVN.
    pub init_tee_tcb_svn: [u8; 16],
    /// 817: INIT_TEE_FMSPC.
    pub init_tee_fmspc: [u8; 12],
    /// 829: CUR_SERVICE_TD_HASH.
    pub cur_service_td_hash: [u8; 48],
    /// 877: CUR_SERVICE_TD_ATTRIBUTES.
    pub cur_service_td_attributes: [u8; 8],
}

json_struct!(TdQuoteBody10 {
    tee_tcb_svn: hex,
    mr_seam: hex,
    mr_signer_seam: hex,
    seam_attributes: hex,
    td_attributes: hex,
    xfam: hex,
    mr_td: hex,
    mr_config_id: hex,
    mr_owner: hex,
    mr_owner_config: hex,
    rtmr: hex_list,
    report_data: hex,
});
json_struct!(TdQuoteBody15 {
    td10: val,
    tee_tcb_svn2: hex,
    mr_servicetd: hex
});
json_struct!(TdQuoteBody15Ex {
    td15: val,
    vmid: val,
    td_id: hex,
    dev_info: hex,
    init_service_td_hash: hex,
    init_service_td_attributes: hex,
    init_cpu_svn: hex,
    init_tee_tcb_svn: hex,
    init_tee_fmspc: hex,
    cur_service_td_hash: hex,
    cur_service_td_attributes: hex,
});

impl TdQuoteBody10 {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, FormatError> {
        Ok(Self {
            tee_tcb_svn: r.array("TEE_TCB_SVN")?,
            mr_seam: r.array("MRSEAM")?,
            mr_signer_seam: r.array("MRSIGNERSEAM")?,
            seam_attributes: r.array("SEAMATTRIBUTES")?,
            td_attributes: r.array("TDATTRIBUTES")?,
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
            report_data: r.array("REPORTDATA")?,
        })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; TD_QUOTE_BODY10_SIZE];
        let mut w = ArrayWriter::new(&mut b);
        w.put(&self.tee_tcb_svn);
        w.put(&self.mr_seam);
        w.put(&self.mr_signer_seam);
        w.put(&self.seam_attributes);
        w.put(&self.td_attributes);
        w.put(&self.xfam);
        w.put(&self.mr_td);
        w.put(&self.mr_config_id);
        w.put(&self.mr_owner);
        w.put(&self.mr_owner_config);
        for rtmr in &self.rtmr {
            w.put(rtmr);
        }
        w.put(&self.report_data);
        w.finish();
        out.extend_from_slice(&b);
    }

    /// TDATTRIBUTES as a bitfield.
    pub fn td_attributes(&self) -> TdAttributes {
        TdAttributes(u64::from_le_bytes(self.td_attributes))
    }
}

impl TdQuoteBody15 {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, FormatError> {
        Ok(Self {
            td10: TdQuoteBody10::read(r)?,
            tee_tcb_svn2: r.array("TEE_TCB_SVN2")?,
            mr_servicetd: r.array("MRSERVICETD")?,
        })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        self.td10.write(out);
        out.extend_from_slice(&self.tee_tcb_svn2);
        out.extend_from_slice(&self.mr_servicetd);
    }
}

impl TdQuoteBody15Ex {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, FormatError> {
        Ok(Self {
            td15: TdQuoteBody15::read(r)?,
            vmid: r.u8("VMID")?,
            td_id: r.array("TD_ID")?,
            dev_info: r.array("DEV_INFO")?,
            init_service_td_hash: r.array("INIT_SERVICE_TD_HASH")?,
            init_service_td_attributes: r.array("INIT_SERVICE_TD_ATTRIBUTES")?,
            init_cpu_svn: r.array("INIT_CPU_SVN")?,
            init_tee_tcb_svn: r.array("INIT_TEE_TCB_SVN")?,
            init_tee_fmspc: r.array("INIT_TEE_FMSPC")?,
            cur_service_td_hash: r.array("CUR_SERVICE_TD_HASH")?,
            cur_service_td_attributes: r.array("CUR_SERVICE_TD_ATTRIBUTES")?,
        })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        self.td15.write(out);
        out.push(self.vmid);
        out.extend_from_slice(&self.td_id);
        out.extend_from_slice(&self.dev_info);
        out.extend_from_slice(&self.init_service_td_hash);
        out.extend_from_slice(&self.init_service_td_attributes);
        out.extend_from_slice(&self.init_cpu_svn);
        out.extend_from_slice(&self.init_tee_tcb_svn);
        out.extend_from_slice(&self.init_tee_fmspc);
        out.extend_from_slice(&self.cur_service_td_hash);
        out.extend_from_slice(&self.cur_service_td_attributes);
    }
}

/// TDATTRIBUTES (8 bytes little-endian), after the TDX module ABI spec
/// (348551-008US, Table 3.23) as decoded by dcap-qvl `TDAttributes::parse`.
///
/// | bits | field |
/// |---|---|
/// | 0 | DEBUG (bits 7:0 together form the TUD group: any set = TD under debug) |
/// | 1-3, 7-15 | reserved |
/// | 16 | ICSSD |
/// | 17 | SERVTD_EXT |
/// | 23-26 | reserved |
/// | 27 | LASS |
/// | 28 | SEPT_VE_DISABLE |
/// | 29 | MIGRATABLE |
/// | 30 | PKS |
/// | 31 | KL |
/// | 32-61 | reserved |
/// | 62 | TPA |
/// | 63 | PERFMON |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TdAttributes(pub u64);

impl TdAttributes {
    /// Reserved bits (MBZ): 1-3, 7-15, 23-26, 32-61.
    pub const RESERVED_MASK: u64 = 0x0E | 0xFF80 | (0xF << 23) | (((1u64 << 30) - 1) << 32);

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// Bit 0, DEBUG.
    pub const fn debug(self) -> bool {
        self.0 & 1 == 1
    }
    /// Any of bits 7:0 (the "TD under debug" group) set: the TD is not trustworthy.
    pub const fn under_debug(self) -> bool {
        self.0 & 0xFF != 0
    }
    /// Bit 17, SERVTD_EXT.
    pub const fn servtd_ext(self) -> bool {
        (self.0 >> 17) & 1 == 1
    }
    /// Bit 28, SEPT_VE_DISABLE.
    pub const fn sept_ve_disable(self) -> bool {
        (self.0 >> 28) & 1 == 1
    }
    /// Bit 29, MIGRATABLE.
    pub const fn migratable(self) -> bool {
        (self.0 >> 29) & 1 == 1
    }
    /// Bit 30, PKS.
    pub const fn pks(self) -> bool {
        (self.0 >> 30) & 1 == 1
    }
    /// Bit 31, KL.
    pub const fn kl(self) -> bool {
        (self.0 >> 31) & 1 == 1
    }
    /// Bit 63, PERFMON.
    pub const fn perfmon(self) -> bool {
        (self.0 >> 63) & 1 == 1
    }
    /// Reserved bits that are set.
    pub const fn reserved_bits(self) -> u64 {
        self.0 & Self::RESERVED_MASK
    }
}
