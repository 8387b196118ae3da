//! /dev/sev-guest and /dev/tdx_guest logic against fake devices that answer
//! like the kernel and the firmware (status codes, buffer sizes, throttling).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

mod fakes;

use std::path::Path;

use evidence::configfs_tsm::ConfigfsTsm;
use evidence::sev_guest::{
    ReportReq, SevGuest, SevGuestDevice, RESP_LEN, VMM_ERR_BUSY, VMM_ERR_INVALID_LEN,
};
use evidence::tdx_guest::{TdxGuest, TdxGuestDevice};
use evidence::{EvidenceError, EvidenceSource};
use fakes::{fixture, snp_report_for, tdx_quote_for, FakeTsm};
use tee_formats::snp::cert_table::{CertTable, Guid};
use wire::CertKind;

const RD: [u8; 64] = [0xa7; 64];

#[derive(Default)]
struct FakeSev {
    certs: Vec<u8>,
    ext_unsupported: bool,
    busy: u32,
    fw_status: u32,
    vmpls: Vec<u32>,
    ext_calls: u32,
    plain_calls: u32,
}

type IoctlError = evidence::sev_guest_ioctl_error::IoctlError;

impl FakeSev {
    fn fill(&self, req: &ReportReq, resp: &mut [u8; RESP_LEN]) {
        resp[0..4].copy_from_slice(&self.fw_status.to_le_bytes());
        resp[4..8].copy_from_slice(&1184u32.to_le_bytes());
        resp[0x20..0x20 + 1184].copy_from_slice(&snp_report_for(&req.user_data));
    }
    fn busy(&mut self) -> Option<IoctlError> {
        (self.busy > 0).then(|| {
            self.busy -= 1;
            IoctlError {
                errno: libc::EIO,
                exitinfo2: u64::from(VMM_ERR_BUSY) << 32,
            }
        })
    }
}

impl SevGuestDevice for FakeSev {
    fn get_report(&mut self, req: &ReportReq, resp: &mut [u8; RESP_LEN]) -> Result<(), IoctlError> {
        self.plain_calls += 1;
        self.vmpls.push(req.vmpl);
        if let Some(e) = self.busy() {
            return Err(e);
        }
        self.fill(req, resp);
        Ok(())
    }

    fn get_ext_report(
        &mut self,
        req: &ReportReq,
        resp: &mut [u8; RESP_LEN],
        certs: &mut [u8],
        certs_len: &mut u32,
    ) -> Result<(), IoctlError> {
        self.ext_calls += 1;
        self.vmpls.push(req.vmpl);
        if self.ext_unsupported {
            return Err(IoctlError {
                errno: libc::ENOTTY,
                exitinfo2: 0,
            });
        }
        if let Some(e) = self.busy() {
            return Err(e);
        }
        if self.certs.len() > *certs_len as usize {
            *certs_len = self.certs.len() as u32;
            return Err(IoctlError {
                errno: libc::EIO,
                exitinfo2: u64::from(VMM_ERR_INVALID_LEN) << 32,
            });
        }
        certs[..self.certs.len()].copy_from_slice(&self.certs);
        self.fill(req, resp);
        Ok(())
    }
}

fn vcek_table(pad_to: usize) -> Vec<u8> {
    let mut t =
        CertTable::from_entries(vec![(Guid::VCEK, fixture("snp/milan-v2-virtee/vcek.der"))])
            .unwrap()
            .to_bytes();
    t.resize(pad_to.max(t.len()), 0);
    t
}

#[test]
fn extended_report_carries_the_vcek_and_asks_for_vmpl_0() {
    let mut dev = FakeSev {
        certs: vcek_table(0),
        ..Default::default()
    };
    let bundle = SevGuest::with_device(&mut dev).collect(&RD).unwrap();
    assert_eq!(bundle.provider, "sev-guest");
    assert_eq!(&bundle.evidence[0x50..0x90], &RD[..]);
    assert_eq!(bundle.certificates.len(), 1);
    assert_eq!(bundle.certificates[0].kind, CertKind::Vcek);
    assert_eq!(dev.vmpls, [0]);
}

#[test]
fn a_larger_certificate_table_gets_a_larger_buffer() {
    let mut dev = FakeSev {
        certs: vcek_table(20 * 1024),
        ..Default::default()
    };
    let bundle = SevGuest::with_device(&mut dev).collect(&RD).unwrap();
    assert_eq!(bundle.certificates.len(), 1);
    assert_eq!(dev.ext_calls, 2);
}

#[test]
fn without_extended_requests_it_falls_back_to_the_plain_report() {
    let mut dev = FakeSev {
        ext_unsupported: true,
        ..Default::default()
    };
    let bundle = SevGuest::with_device(&mut dev).collect(&RD).unwrap();
    assert!(bundle.certificates.is_empty());
    assert_eq!((dev.ext_calls, dev.plain_calls), (1, 1));
    assert_eq!(dev.vmpls, [0, 0]);
}

#[test]
fn throttling_is_retried_then_given_up() {
    let mut dev = FakeSev {
        busy: 2,
        ..Default::default()
    };
    assert!(SevGuest::with_device(&mut dev).collect(&RD).is_ok());
    let mut dev = FakeSev {
        busy: 100,
        ..Default::default()
    };
    assert!(matches!(
        SevGuest::with_device(&mut dev).collect(&RD),
        Err(EvidenceError::Busy { .. })
    ));
}

#[test]
fn firmware_status_is_reported() {
    let mut dev = FakeSev {
        fw_status: 0x16,
        ..Default::default()
    };
    match SevGuest::with_device(&mut dev).collect(&RD) {
        Err(EvidenceError::Firmware { fw_error, .. }) => assert_eq!(fw_error, 0x16),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_oversized_certificate_demand_is_refused() {
    let mut dev = FakeSev {
        certs: vcek_table(1 << 20),
        ..Default::default()
    };
    assert!(matches!(
        SevGuest::with_device(&mut dev).collect(&RD),
        Err(EvidenceError::Firmware { .. })
    ));
}

/// A TDREPORT fixture made to describe the same TD as the quote fixture.
struct FakeTdx {
    same_td: bool,
}

impl TdxGuestDevice for FakeTdx {
    fn get_report0(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, IoctlError> {
        let mut r = fixture("tdx/intel-dcap/tdreport_for_test.dat");
        r[128..192].copy_from_slice(report_data);
        if self.same_td {
            let q = tdx_quote_for(report_data);
            // TDINFO at 512: attributes 8, xfam 8, MRTD at 528; RTMRs at 720.
            // Quote body (offset 48): MRTD at 136, RTMRs at 328.
            r[528..576].copy_from_slice(&q[48 + 136..48 + 184]);
            r[720..912].copy_from_slice(&q[48 + 328..48 + 520]);
        }
        Ok(r)
    }
}

#[test]
fn tdx_quote_is_cross_checked_with_the_local_tdreport() {
    let tsm = ConfigfsTsm::with_fs(FakeTsm::new("tdx_guest", tdx_quote_for), Path::new("/tsm"));
    let bundle = TdxGuest::new(FakeTdx { same_td: true }, tsm)
        .collect(&RD)
        .unwrap();
    assert_eq!(bundle.provider, "tdx-guest");

    let tsm = ConfigfsTsm::with_fs(FakeTsm::new("tdx_guest", tdx_quote_for), Path::new("/tsm"));
    match TdxGuest::new(FakeTdx { same_td: false }, tsm).collect(&RD) {
        Err(EvidenceError::Unsupported(m)) => assert!(m.contains("another TD")),
        other => panic!("{other:?}"),
    }
}
