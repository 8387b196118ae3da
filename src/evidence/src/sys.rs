//! The guest-device ioctls (uapi `linux/sev-guest.h`, `linux/tdx-guest.h`).
//!
//! UNSAFETY: ioctls pass raw pointers to the kernel; this module is the only
//! place in the crate that does, each call with its `SAFETY:` reasoning.
#![expect(unsafe_code)]

use std::os::fd::AsRawFd;
use std::path::Path;

use crate::sev_guest::{ReportReq, RESP_LEN};

/// A failed ioctl: errno, and the SNP `exitinfo2` (firmware status in bits
/// 31:0, VMM status in bits 63:32; 0 for other devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoctlError {
    /// errno.
    pub errno: i32,
    /// `exitinfo2`.
    pub exitinfo2: u64,
}

impl IoctlError {
    /// Firmware status.
    pub fn fw_error(&self) -> u32 {
        (self.exitinfo2 & 0xffff_ffff) as u32
    }
    /// VMM status.
    pub fn vmm_error(&self) -> u32 {
        (self.exitinfo2 >> 32) as u32
    }
    fn io(e: std::io::Error) -> IoctlError {
        IoctlError {
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            exitinfo2: 0,
        }
    }
}

/// `struct snp_report_req`.
#[repr(C)]
struct SnpReportReq {
    user_data: [u8; 64],
    vmpl: u32,
    rsvd: [u8; 28],
}

/// `struct snp_ext_report_req`.
#[repr(C)]
struct SnpExtReportReq {
    data: SnpReportReq,
    certs_address: u64,
    certs_len: u32,
}

/// `struct snp_guest_request_ioctl` (the compiler pads after `msg_version`
/// exactly as the C struct is padded: 32 bytes).
#[repr(C)]
struct SnpGuestRequestIoctl {
    msg_version: u8,
    req_data: u64,
    resp_data: u64,
    exitinfo2: u64,
}

const _: () = assert!(std::mem::size_of::<SnpReportReq>() == 96);
const _: () = assert!(std::mem::size_of::<SnpExtReportReq>() == 112);
const _: () = assert!(std::mem::size_of::<SnpGuestRequestIoctl>() == 32);

nix::ioctl_readwrite!(snp_get_report_ioctl, b'S', 0x0, SnpGuestRequestIoctl);
nix::ioctl_readwrite!(snp_get_ext_report_ioctl, b'S', 0x2, SnpGuestRequestIoctl);

fn open(path: &Path) -> Result<std::fs::File, IoctlError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(IoctlError::io)
}

/// `SNP_GET_REPORT`.
pub fn snp_get_report(
    path: &Path,
    req: &ReportReq,
    resp: &mut [u8; RESP_LEN],
) -> Result<(), IoctlError> {
    let dev = open(path)?;
    let mut raw_req = SnpReportReq {
        user_data: req.user_data,
        vmpl: req.vmpl,
        rsvd: [0; 28],
    };
    let mut ioctl = SnpGuestRequestIoctl {
        msg_version: 1,
        req_data: std::ptr::addr_of_mut!(raw_req) as u64,
        resp_data: resp.as_mut_ptr() as u64,
        exitinfo2: 0,
    };
    // SAFETY: `dev` is open for the whole call; `ioctl` points at a valid
    // snp_guest_request_ioctl whose req_data/resp_data point at a live
    // snp_report_req (96 bytes) and a live, writable 4000-byte response
    // buffer, exactly the sizes the kernel copies.
    let r = unsafe { snp_get_report_ioctl(dev.as_raw_fd(), &mut ioctl) };
    r.map(drop).map_err(|e| IoctlError {
        errno: e as i32,
        exitinfo2: ioctl.exitinfo2,
    })
}

/// `SNP_GET_EXT_REPORT`.
pub fn snp_get_ext_report(
    path: &Path,
    req: &ReportReq,
    resp: &mut [u8; RESP_LEN],
    certs: &mut [u8],
    certs_len: &mut u32,
) -> Result<(), IoctlError> {
    let dev = open(path)?;
    let len = u32::try_from(certs.len())
        .unwrap_or(u32::MAX)
        .min(*certs_len);
    let mut raw_req = SnpExtReportReq {
        data: SnpReportReq {
            user_data: req.user_data,
            vmpl: req.vmpl,
            rsvd: [0; 28],
        },
        certs_address: certs.as_mut_ptr() as u64,
        certs_len: len,
    };
    let mut ioctl = SnpGuestRequestIoctl {
        msg_version: 1,
        req_data: std::ptr::addr_of_mut!(raw_req) as u64,
        resp_data: resp.as_mut_ptr() as u64,
        exitinfo2: 0,
    };
    // SAFETY: as for SNP_GET_REPORT, plus: certs_address points at `certs`,
    // live and writable for `len` <= certs.len() bytes, which is the most the
    // kernel writes; on INVALID_LEN the kernel writes only raw_req.certs_len.
    let r = unsafe { snp_get_ext_report_ioctl(dev.as_raw_fd(), &mut ioctl) };
    *certs_len = raw_req.certs_len;
    r.map(drop).map_err(|e| IoctlError {
        errno: e as i32,
        exitinfo2: ioctl.exitinfo2,
    })
}

/// `struct tdx_report_req`.
#[repr(C)]
struct TdxReportReq {
    reportdata: [u8; 64],
    tdreport: [u8; 1024],
}

nix::ioctl_readwrite!(tdx_cmd_get_report0, b'T', 1, TdxReportReq);

/// `TDX_CMD_GET_REPORT0`.
pub fn tdx_get_report0(path: &Path, report_data: &[u8; 64]) -> Result<Vec<u8>, IoctlError> {
    let dev = open(path)?;
    let mut req = TdxReportReq {
        reportdata: *report_data,
        tdreport: [0; 1024],
    };
    // SAFETY: `dev` is open; `req` is a live tdx_report_req (1088 bytes), the
    // exact size encoded in the request number, read and written in place.
    let r = unsafe { tdx_cmd_get_report0(dev.as_raw_fd(), &mut req) };
    r.map_err(|e| IoctlError {
        errno: e as i32,
        exitinfo2: 0,
    })?;
    Ok(req.tdreport.to_vec())
}

/// `struct nsm_iovec` (uapi `linux/nsm.h`; the AWS out-of-tree driver and
/// the NSM API's `NsmMessage` use two `struct iovec`s, the same 32 bytes on
/// 64-bit Linux).
#[repr(C)]
struct NsmIovec {
    addr: u64,
    len: u64,
}

/// `struct nsm_raw`: the CBOR request and the buffer for the response; the
/// driver sets `response.len` to the response's length.
#[repr(C)]
struct NsmRaw {
    request: NsmIovec,
    response: NsmIovec,
}

const _: () = assert!(std::mem::size_of::<NsmRaw>() == 32);

// NSM_IOCTL_RAW = _IOWR(0x0A, 0, struct nsm_raw) (uapi linux/nsm.h; the
// NSM API's request_code_readwrite!(0x0A, 0, size_of::<NsmMessage>())).
nix::ioctl_readwrite!(nsm_ioctl_raw, 0x0A, 0, NsmRaw);

/// One NSM request through `/dev/nsm`: writes the response into `response`
/// and returns its length (never more than `response.len()`).
pub fn nsm_request(path: &Path, request: &[u8], response: &mut [u8]) -> Result<usize, IoctlError> {
    let dev = open(path)?;
    let mut raw = NsmRaw {
        request: NsmIovec {
            addr: request.as_ptr() as u64,
            len: request.len() as u64,
        },
        response: NsmIovec {
            addr: response.as_mut_ptr() as u64,
            len: response.len() as u64,
        },
    };
    // SAFETY: `dev` is open for the whole call; `raw` is a live nsm_raw (32
    // bytes, the size encoded in the request number) whose request iovec
    // points at `request` (live, read-only to the driver, `len` bytes) and
    // whose response iovec points at `response` (live and writable for its
    // whole length, the most the driver copies back).
    let r = unsafe { nsm_ioctl_raw(dev.as_raw_fd(), &mut raw) };
    r.map_err(|e| IoctlError {
        errno: e as i32,
        exitinfo2: 0,
    })?;
    // The driver never reports more than the buffer it was given; clamp
    // anyway so a misbehaving driver cannot make us slice out of bounds.
    Ok(usize::try_from(raw.response.len)
        .unwrap_or(usize::MAX)
        .min(response.len()))
}
