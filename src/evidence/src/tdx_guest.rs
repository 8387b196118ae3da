//! `/dev/tdx_guest`: the TDREPORT (`TDX_CMD_GET_REPORT0`).
//!
//! A TDREPORT is MACed with a key only this CPU knows, so it proves nothing
//! to a remote verifier: the quote (the TDREPORT signed by the quoting
//! enclave) comes through configfs-tsm. This source therefore gets both: the
//! quote from configfs-tsm, and a local TDREPORT for the same REPORT_DATA,
//! and refuses a quote whose TD measurements differ from the local report
//! (a host-side quote service answering for another TD).

use std::path::Path;

use tee_formats::tdx::quote::{Quote, QuoteBody};
use tee_formats::tdx::tdreport::TdReport;
use wire::EvidenceBundle;

use crate::configfs_tsm::{ConfigfsTsm, TsmFs};
use crate::{EvidenceError, EvidenceSource, SourceKind, REPORT_DATA_LEN};

/// The ioctl interface (tests use a fake).
pub trait TdxGuestDevice: Send {
    /// `TDX_CMD_GET_REPORT0`: the 1024-byte TDREPORT for `report_data`.
    fn get_report0(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<Vec<u8>, crate::sys::IoctlError>;
}

/// The real device.
pub struct RealDevice(pub std::path::PathBuf);

impl TdxGuestDevice for RealDevice {
    fn get_report0(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<Vec<u8>, crate::sys::IoctlError> {
        crate::sys::tdx_get_report0(&self.0, report_data)
    }
}

/// A TDREPORT for `report_data`, checked to parse and to carry it.
pub fn tdreport(
    dev: &mut dyn TdxGuestDevice,
    report_data: &[u8; REPORT_DATA_LEN],
) -> Result<TdReport, EvidenceError> {
    let bytes = dev
        .get_report0(report_data)
        .map_err(|e| EvidenceError::Firmware {
            errno: e.errno,
            fw_error: 0,
            vmm_error: 0,
        })?;
    let report = TdReport::parse(&bytes).map_err(EvidenceError::Malformed)?;
    if &report.report_mac_struct.report_data != report_data {
        return Err(EvidenceError::ReportDataMismatch);
    }
    Ok(report)
}

/// The TD report body of a quote: (MRTD, RTMRs, REPORTDATA).
fn body_fields(quote: &Quote) -> (&[u8; 48], &[[u8; 48]; 4], &[u8; 64]) {
    let b = match &quote.body {
        QuoteBody::Td10(b) => b,
        QuoteBody::Td15(b) => &b.td10,
        QuoteBody::Td15Ex(b) => &b.td15.td10,
    };
    (&b.mr_td, &b.rtmr, &b.report_data)
}

/// Checks a quote: parses, and carries `report_data`.
pub(crate) fn check_quote(
    bytes: &[u8],
    report_data: &[u8; REPORT_DATA_LEN],
) -> Result<Quote, EvidenceError> {
    let quote = Quote::parse(bytes).map_err(EvidenceError::Malformed)?;
    if body_fields(&quote).2 != report_data {
        return Err(EvidenceError::ReportDataMismatch);
    }
    Ok(quote)
}

/// The TDX source: quote from configfs-tsm, cross-checked with a local TDREPORT.
pub struct TdxGuest<D: TdxGuestDevice, F: TsmFs> {
    device: D,
    tsm: ConfigfsTsm<F>,
}

impl<D: TdxGuestDevice, F: TsmFs> TdxGuest<D, F> {
    /// Combines the device and configfs-tsm.
    pub fn new(device: D, tsm: ConfigfsTsm<F>) -> Self {
        TdxGuest {
            device,
            tsm: tsm.require_provider("tdx_guest"),
        }
    }
}

impl TdxGuest<RealDevice, crate::configfs_tsm::RealFs> {
    /// The real interfaces (the bundle carries the CC event log, see
    /// [`ConfigfsTsm::new`]).
    pub fn open(device: &Path, tsm_root: &Path) -> Self {
        TdxGuest::new(RealDevice(device.to_owned()), ConfigfsTsm::new(tsm_root))
    }
}

impl<D: TdxGuestDevice, F: TsmFs> EvidenceSource for TdxGuest<D, F> {
    fn kind(&self) -> SourceKind {
        SourceKind::TdxGuest
    }

    fn collect(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<EvidenceBundle, EvidenceError> {
        let local = tdreport(&mut self.device, report_data)?;
        let mut bundle = self.tsm.collect(report_data)?;
        let quote = check_quote(&bundle.evidence, report_data)?;
        let (mr_td, rtmr, _) = body_fields(&quote);
        if mr_td != &local.td_info.mr_td || rtmr != &local.td_info.rtmr {
            return Err(EvidenceError::Unsupported(
                "the quote's MRTD/RTMRs differ from this TD's own TDREPORT: the quote was made for another TD",
            ));
        }
        bundle.provider = SourceKind::TdxGuest.as_str().to_owned();
        Ok(bundle)
    }
}
