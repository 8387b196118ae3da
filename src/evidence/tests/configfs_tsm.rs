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
    CertTable::from_entries(vec![
        (Guid::VCEK, vcek),
        (Guid::ASK, vec![0x30, 1, 2]),
        (Guid::ARK, vec![0x30, 3, 4]),
    ])
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
    assert_eq!(
        bundle.certificate(CertKind::Vcek).unwrap(),
        &fixture("snp/milan-v2-virtee/vcek.der")[..]
    );
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
        Err(EvidenceError::WrongProvider { got, want }) => {
            assert_eq!((got.as_str(), want), ("sev_guest", "tdx_guest"))
        }
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
    assert!(matches!(
        source(fake).collect(&RD),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn evidence_for_other_report_data_is_refused() {
    let fake = FakeTsm::new("sev_guest", |_| snp_report_for(&[1; 64]));
    assert!(matches!(
        source(fake).collect(&RD),
        Err(EvidenceError::ReportDataMismatch)
    ));
}

#[test]
fn busy_is_retried_then_given_up() {
    let mut fake = FakeTsm::new("tdx_guest", tdx_quote_for);
    fake.busy_reads = 2;
    assert!(source(fake).collect(&RD).is_ok());
    let mut fake = FakeTsm::new("tdx_guest", tdx_quote_for);
    fake.busy_reads = 1000;
    assert!(matches!(
        source(fake).collect(&RD),
        Err(EvidenceError::Busy { .. })
    ));
}

// --- the TDX CC event log ---------------------------------------------------

const COS_TABLE: &str = "cloud/tdx-eventlog/go-tdx-guest-gcp-cos113/ccel_table.dat";
const COS_DATA: &str = "cloud/tdx-eventlog/go-tdx-guest-gcp-cos113/ccel_data.dat";

/// A directory holding copies of a CCEL table and log area, as sysfs does.
fn ccel_dir(name: &str, table: Option<Vec<u8>>, data: &[u8]) -> evidence::ccel::CcelPaths {
    let dir = std::env::temp_dir().join(format!("ccel-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let paths = evidence::ccel::CcelPaths {
        table: dir.join("CCEL"),
        data: dir.join("data/CCEL"),
    };
    if let Some(t) = table {
        std::fs::write(&paths.table, t).unwrap();
    }
    std::fs::write(&paths.data, data).unwrap();
    paths
}

fn tdx_with_log(paths: evidence::ccel::CcelPaths) -> Option<Vec<u8>> {
    let mut src = source(FakeTsm::new("tdx_guest", tdx_quote_for)).with_event_log(Some(paths));
    src.collect(&RD).unwrap().event_log.map(|b| b.0)
}

#[test]
fn a_tdx_bundle_carries_the_ccel_log_trimmed_of_its_padding() {
    let data = fixture(COS_DATA);
    // SOURCES.md: the log ends at 18101, then 0xFF up to the 0x40000 area.
    let log = tdx_with_log(ccel_dir("cos", Some(fixture(COS_TABLE)), &data)).unwrap();
    assert_eq!(log, &data[..18_101]);
    // No table (no TDVF, or a paravisor VM): no log, and the quote still goes.
    assert_eq!(tdx_with_log(ccel_dir("none", None, &data)), None);
    // Without paths (the fake tree's default), never read.
    assert!(source(FakeTsm::new("tdx_guest", tdx_quote_for))
        .collect(&RD)
        .unwrap()
        .event_log
        .is_none());
    // SNP bundles carry none, whatever the paths.
    let mut snp = source(FakeTsm::new("sev_guest", snp_report_for)).with_event_log(Some(ccel_dir(
        "snp",
        Some(fixture(COS_TABLE)),
        &data,
    )));
    assert!(snp.collect(&RD).unwrap().event_log.is_none());
}

#[test]
fn the_ccel_table_decides_whether_and_how_much_is_read() {
    let data = fixture(COS_DATA);
    let table = fixture(COS_TABLE);
    // A table that is not TDX's (CC type 1 = SEV; checksum kept right).
    let mut sev = table.clone();
    sev[36] = 1;
    sev[9] = sev[9].wrapping_add(1);
    assert_eq!(tdx_with_log(ccel_dir("sev", Some(sev), &data)), None);
    // A malformed table (bad checksum).
    let mut bad = table.clone();
    bad[40] ^= 1;
    assert_eq!(tdx_with_log(ccel_dir("badsum", Some(bad), &data)), None);
    // The area is read up to the table's length (0x40000), not beyond: bytes
    // after it would otherwise be "data after padding".
    let mut longer = data.clone();
    longer.extend_from_slice(&[1; 4096]);
    assert_eq!(
        tdx_with_log(ccel_dir("longer", Some(table.clone()), &longer)).unwrap(),
        &data[..18_101]
    );
    // A log that does not parse is sent as read, for the verifier to judge.
    let garbage = vec![0x42u8; 1000];
    assert_eq!(
        tdx_with_log(ccel_dir("garbage", Some(table), &garbage)).unwrap(),
        garbage
    );
}
