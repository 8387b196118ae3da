//! configfs-tsm against a fake tree that behaves like the kernel's.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fakes;

use std::path::Path;

use evidence::configfs_tsm::ConfigfsTsm;
use evidence::{EvidenceError, EvidenceSource};
use fakes::{fixture, snp_report_for, tdx_quote_for, FakeTsm};
use tee_formats::snp::cert_table::{CertTable, Guid};
use wire::{CertKind, Tee};

const ROOT: &str = "/sys/kernel/config/tsm/report";
const RD: [u8; 64] = [0x5a; 64];

fn source(fake: FakeTsm) -> ConfigfsTsm<FakeTsm> {
    ConfigfsTsm::with_fs(fake, Path::new(ROOT))
}

fn cert_table() -> Vec<u8> {
    let vcek = fixture("snp/milan-v2-virtee/vcek.der");
    CertTable::from_entries(vec![(Guid::VCEK, vcek), (Guid::ASK, vec![0x30, 1, 2]), (Guid::ARK, vec![0x30, 3, 4])])
        .unwrap()
        .to_bytes()
}

#[test]
fn snp_report_with_certificates() {
    let mut fake = FakeTsm::new("sev_guest", snp_report_for);
    fake.auxblob = Some(cert_table());
    let mut src = source(fake);
    let bundle = src.collect(&RD).unwrap();
    assert_eq!(bundle.tee, Tee::Snp);
    assert_eq!(bundle.provider, "configfs-tsm");
    assert_eq!(bundle.evidence.len(), 1184);
    assert_eq!(&bundle.evidence[0x50..0x90], &RD[..]);
    let kinds: Vec<CertKind> = bundle.certificates.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [CertKind::Vcek, CertKind::Ask, CertKind::Ark]);
    assert_eq!(bundle.certificate(CertKind::Vcek).unwrap(), &fixture("snp/milan-v2-virtee/vcek.der")[..]);
}

#[test]
fn snp_asks_for_vmpl_0_and_removes_its_entry() {
    let mut fake = FakeTsm::new("sev_guest", snp_report_for);
    let mut direct = ConfigfsTsm::with_fs(&mut fake, Path::new(ROOT));
    direct.collect(&RD).unwrap();
    drop(direct);
    assert_eq!(fake.privlevels, [0]);
    assert_eq!(fake.removed.len(), 1);
    assert_eq!(fake.live_entries(), 0);
}

#[test]
fn empty_auxblob_means_no_certificates() {
    let mut fake = FakeTsm::new("sev_guest", snp_report_for);
    fake.auxblob = Some(vec![0; 4096]);
    assert!(source(fake).collect(&RD).unwrap().certificates.is_empty());
}

#[test]
fn tdx_quote_with_trailing_padding() {
    let fake = FakeTsm::new("tdx_guest", |rd| {
        let mut q = tdx_quote_for(rd);
        q.extend_from_slice(&[0; 512]); // the kernel's buffer may carry zero padding
        q
    });
    let bundle = source(fake).collect(&RD).unwrap();
    assert_eq!(bundle.tee, Tee::Tdx);
    assert!(bundle.certificates.is_empty());
}

#[test]
fn wrong_provider_is_refused_and_the_entry_removed() {
    let mut fake = FakeTsm::new("arm_cca_guest", snp_report_for);
    let mut src = ConfigfsTsm::with_fs(&mut fake, Path::new(ROOT));
    match src.collect(&RD) {
        Err(EvidenceError::WrongProvider { got, .. }) => assert_eq!(got, "arm_cca_guest"),
        other => panic!("{other:?}"),
    }
    drop(src);
    assert_eq!(fake.live_entries(), 0);

    let src = ConfigfsTsm::with_fs(FakeTsm::new("sev_guest", snp_report_for), Path::new(ROOT));
    match src.require_provider("tdx_guest").collect(&RD) {
        Err(EvidenceError::WrongProvider { got, want }) => assert_eq!((got.as_str(), want), ("sev_guest", "tdx_guest")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_concurrent_writer_is_detected() {
    let mut fake = FakeTsm::new("tdx_guest", tdx_quote_for);
    fake.racer = true;
    match source(fake).collect(&RD) {
        Err(EvidenceError::GenerationRace { expected, got }) => assert_eq!((expected, got), (1, 2)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn short_outblob_is_refused() {
    let fake = FakeTsm::new("sev_guest", |_| vec![2; 100]);
    match source(fake).collect(&RD) {
        Err(EvidenceError::ShortEvidence { got, min }) => assert_eq!((got, min), (100, 1184)),
        other => panic!("{other:?}"),
    }
    let fake = FakeTsm::new("tdx_guest", |rd| tdx_quote_for(rd)[..600].to_vec());
    assert!(matches!(source(fake).collect(&RD), Err(EvidenceError::Malformed(_))));
}

#[test]
fn evidence_for_other_report_data_is_refused() {
    let fake = FakeTsm::new("sev_guest", |_| snp_report_for(&[1; 64]));
    assert!(matches!(source(fake).collect(&RD), Err(EvidenceError::ReportDataMismatch)));
}

#[test]
fn busy_is_retried_then_given_up() {
    let mut fake = FakeTsm::new("tdx_guest", tdx_quote_for);
    fake.busy_reads = 2;
    assert!(source(fake).collect(&RD).is_ok());
    let mut fake = FakeTsm::new("tdx_guest", tdx_quote_for);
    fake.busy_reads = 1000;
    assert!(matches!(source(fake).collect(&RD), Err(EvidenceError::Busy { .. })));
}
