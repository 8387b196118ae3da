//! `/dev/sev-guest`: `SNP_GET_EXT_REPORT` (report and the host's certificate
//! table), falling back to `SNP_GET_REPORT` (report only) where the host or
//! kernel does not do extended requests. VMPL 0 is always asked for
//! explicitly: a report for a higher VMPL could be requested by a less
//! privileged layer (an SVSM's guest) and must not pass for ours.
//!
//! The ioctls are reached through [`SevGuestDevice`] so that tests can run the
//! same logic against a fake device (throttling, short buffers, firmware
//! errors).

use std::path::{Path, PathBuf};
use std::time::Duration;

use wire::{EvidenceBundle, Tee};

use crate::sys::IoctlError;
use crate::{EvidenceError, EvidenceSource, SourceKind, REPORT_DATA_LEN};

/// `struct snp_report_resp` size.
pub const RESP_LEN: usize = 4000;
/// Offset of the report inside the response (after `status`, `report_size`
/// and 24 reserved bytes).
pub const REPORT_OFFSET: usize = 0x20;
/// `SNP_GUEST_VMM_ERR_INVALID_LEN`: the certificate buffer was too small.
pub const VMM_ERR_INVALID_LEN: u32 = 1;
/// `SNP_GUEST_VMM_ERR_BUSY`: the host throttled the request.
pub const VMM_ERR_BUSY: u32 = 2;
/// The initial certificate buffer: 4 pages (the kernel's SEV_FW_BLOB_MAX_SIZE).
pub const CERTS_LEN: usize = 4 * 4096;
/// The largest certificate buffer we accept to allocate on the host's word.
pub const CERTS_MAX: usize = 64 * 1024;
/// Attempts while the host says busy.
const BUSY_RETRIES: u32 = 6;

/// `struct snp_report_req`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportReq {
    /// REPORT_DATA.
    pub user_data: [u8; 64],
    /// The VMPL to report for.
    pub vmpl: u32,
}

/// The ioctl interface.
pub trait SevGuestDevice: Send {
    /// `SNP_GET_REPORT`.
    fn get_report(&mut self, req: &ReportReq, resp: &mut [u8; RESP_LEN]) -> Result<(), IoctlError>;
    /// `SNP_GET_EXT_REPORT`; on `VMM_ERR_INVALID_LEN` the kernel writes the
    /// needed size into `certs_len`.
    fn get_ext_report(
        &mut self,
        req: &ReportReq,
        resp: &mut [u8; RESP_LEN],
        certs: &mut [u8],
        certs_len: &mut u32,
    ) -> Result<(), IoctlError>;
}

impl<T: SevGuestDevice + ?Sized> SevGuestDevice for &mut T {
    fn get_report(&mut self, req: &ReportReq, resp: &mut [u8; RESP_LEN]) -> Result<(), IoctlError> {
        (**self).get_report(req, resp)
    }
    fn get_ext_report(
        &mut self,
        req: &ReportReq,
        resp: &mut [u8; RESP_LEN],
        certs: &mut [u8],
        certs_len: &mut u32,
    ) -> Result<(), IoctlError> {
        (**self).get_ext_report(req, resp, certs, certs_len)
    }
}

/// The real device.
pub struct RealDevice(pub PathBuf);

impl SevGuestDevice for RealDevice {
    fn get_report(&mut self, req: &ReportReq, resp: &mut [u8; RESP_LEN]) -> Result<(), IoctlError> {
        crate::sys::snp_get_report(&self.0, req, resp)
    }
    fn get_ext_report(
        &mut self,
        req: &ReportReq,
        resp: &mut [u8; RESP_LEN],
        certs: &mut [u8],
        certs_len: &mut u32,
    ) -> Result<(), IoctlError> {
        crate::sys::snp_get_ext_report(&self.0, req, resp, certs, certs_len)
    }
}

/// The sev-guest source.
pub struct SevGuest<D: SevGuestDevice> {
    device: D,
}

impl SevGuest<RealDevice> {
    /// The real device at `path`.
    pub fn open(path: &Path) -> Self {
        SevGuest {
            device: RealDevice(path.to_owned()),
        }
    }
}

impl<D: SevGuestDevice> SevGuest<D> {
    /// Over any device (tests use a fake).
    pub fn with_device(device: D) -> Self {
        SevGuest { device }
    }

    /// The extended request, resizing the certificate buffer once if the
    /// host asks and retrying while it is busy. `Ok(None)` means "use the
    /// plain request".
    fn ext_report(
        &mut self,
        req: &ReportReq,
        resp: &mut [u8; RESP_LEN],
    ) -> Result<Option<Vec<u8>>, EvidenceError> {
        let mut certs = vec![0u8; CERTS_LEN];
        let mut resized = false;
        let mut backoff = Duration::from_millis(20);
        for _ in 0..BUSY_RETRIES {
            let mut certs_len = u32::try_from(certs.len()).unwrap_or(u32::MAX);
            match self
                .device
                .get_ext_report(req, resp, &mut certs, &mut certs_len)
            {
                Ok(()) => return Ok(Some(certs)),
                Err(e) if e.vmm_error() == VMM_ERR_INVALID_LEN && !resized => {
                    let needed = certs_len as usize;
                    if needed <= certs.len() || needed > CERTS_MAX {
                        return Err(EvidenceError::Firmware {
                            errno: e.errno,
                            fw_error: e.fw_error(),
                            vmm_error: e.vmm_error(),
                        });
                    }
                    certs = vec![0u8; needed];
                    resized = true;
                }
                Err(e)
                    if e.vmm_error() == VMM_ERR_BUSY
                        || e.errno == libc::EAGAIN
                        || e.errno == libc::EBUSY =>
                {
                    log::info!(backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX); "sev-guest busy (throttled); retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    log::info!(errno = e.errno, vmm_error = e.vmm_error(), fw_error = e.fw_error(); "SNP_GET_EXT_REPORT failed; falling back to SNP_GET_REPORT");
                    return Ok(None);
                }
            }
        }
        Err(EvidenceError::Busy {
            attempts: BUSY_RETRIES,
        })
    }

    fn plain_report(
        &mut self,
        req: &ReportReq,
        resp: &mut [u8; RESP_LEN],
    ) -> Result<(), EvidenceError> {
        let mut backoff = Duration::from_millis(20);
        for _ in 0..BUSY_RETRIES {
            match self.device.get_report(req, resp) {
                Ok(()) => return Ok(()),
                Err(e)
                    if e.vmm_error() == VMM_ERR_BUSY
                        || e.errno == libc::EAGAIN
                        || e.errno == libc::EBUSY =>
                {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    return Err(EvidenceError::Firmware {
                        errno: e.errno,
                        fw_error: e.fw_error(),
                        vmm_error: e.vmm_error(),
                    })
                }
            }
        }
        Err(EvidenceError::Busy {
            attempts: BUSY_RETRIES,
        })
    }
}

/// The report inside a `snp_report_resp`, after checking its status and size.
pub fn report_from_response(resp: &[u8; RESP_LEN]) -> Result<Vec<u8>, EvidenceError> {
    let word = |o: usize| u32::from_le_bytes([resp[o], resp[o + 1], resp[o + 2], resp[o + 3]]);
    let (status, size) = (word(0), word(4) as usize);
    if status != 0 {
        return Err(EvidenceError::Firmware {
            errno: 0,
            fw_error: status,
            vmm_error: 0,
        });
    }
    let min = tee_formats::snp::report::REPORT_SIZE;
    if size < min || REPORT_OFFSET + size > RESP_LEN {
        return Err(EvidenceError::ShortEvidence { got: size, min });
    }
    Ok(resp[REPORT_OFFSET..REPORT_OFFSET + size].to_vec())
}

impl<D: SevGuestDevice> EvidenceSource for SevGuest<D> {
    fn kind(&self) -> SourceKind {
        SourceKind::SevGuest
    }

    fn collect(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<EvidenceBundle, EvidenceError> {
        let req = ReportReq {
            user_data: *report_data,
            vmpl: 0,
        };
        let mut resp = [0u8; RESP_LEN];
        let certs = match self.ext_report(&req, &mut resp)? {
            Some(c) => Some(c),
            None => {
                resp = [0u8; RESP_LEN];
                self.plain_report(&req, &mut resp)?;
                None
            }
        };
        let report = report_from_response(&resp)?;
        crate::check_snp_report(&report, report_data)?;
        let mut bundle = EvidenceBundle::new(Tee::Snp, SourceKind::SevGuest.as_str(), report);
        if let Some(table) = certs {
            crate::snp_certificates(&mut bundle, &table)?;
        }
        Ok(bundle)
    }
}
