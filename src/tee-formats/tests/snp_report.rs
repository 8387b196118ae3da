//! SEV-SNP ATTESTATION_REPORT: every fixture parses with the values stated in
//! `shared/fixtures/SOURCES.md`, round-trips byte for byte, and malformed
//! reports fail with an error naming the field or offset.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{fixture, hex, hex_then_zeros, unhex, SNP_REPORTS};
use tee_formats::snp::{
    AttestationReport, Generation, ReceivedReport, ReportLayout, SigningKey, TcbComponents,
    TcbVersion, REPORT_SIZE, SIGNED_LEN,
};
use tee_formats::FormatError;

fn parse(rel: &str) -> AttestationReport {
    AttestationReport::parse(&fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn tcb(hex_bytes: &str) -> TcbVersion {
    TcbVersion::from_bytes(unhex(hex_bytes).try_into().unwrap())
}

fn milan(boot_loader: u8, tee: u8, snp: u8, microcode: u8) -> TcbComponents {
    TcbComponents {
        fmc: None,
        boot_loader,
        tee,
        snp,
        microcode,
    }
}

#[test]
fn every_fixture_round_trips_exactly() {
    for rel in SNP_REPORTS {
        let bytes = fixture(rel);
        assert_eq!(bytes.len(), REPORT_SIZE, "{rel}");
        let report = AttestationReport::parse(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(
            report.to_bytes().as_slice(),
            bytes.as_slice(),
            "{rel}: serialize(parse(x)) != x"
        );
        let received = ReceivedReport::parse(&bytes).unwrap();
        assert_eq!(received.report(), &report);
        assert_eq!(
            received.signed_bytes().as_slice(),
            &bytes[..SIGNED_LEN],
            "{rel}"
        );
        assert_eq!(
            received.signature_bytes().as_slice(),
            &bytes[SIGNED_LEN..],
            "{rel}"
        );
        assert_eq!(received.to_bytes().as_slice(), bytes.as_slice(), "{rel}");
        // R and S are 48 significant bytes + 24 zero bytes.
        assert!(report.signature.high_bytes_zero(), "{rel}");
        assert_eq!(
            report.signature.r_be()[47],
            bytes[0x2A0],
            "{rel}: r_be reverses the LE bytes"
        );
        assert_eq!(report.signature.s_be()[0], bytes[0x2E8 + 47], "{rel}");
        assert_eq!(report.signature_algo, 1, "{rel}");
        assert_eq!(report.report_id_ma, [0xFF; 32], "{rel}: no migration agent");
    }
}

#[test]
fn milan_v2_virtee_values() {
    let r = parse("snp/milan-v2-virtee/report.bin");
    assert_eq!(r.version, 2);
    assert_eq!(r.layout().unwrap(), ReportLayout::V2);
    assert_eq!(r.guest_svn, 0);
    assert_eq!(r.policy.raw(), 0x30000);
    assert!(r.policy.smt_allowed() && r.policy.reserved_must_be_one() && !r.policy.debug_allowed());
    assert_eq!(r.vmpl, 0);
    assert_eq!(r.signature_algo, 1);
    assert_eq!(r.platform_info.raw(), 0x1);
    assert!(r.platform_info.smt_en());
    assert_eq!(r.key_info.raw(), 0);
    assert_eq!(r.key_info.signing_key(), SigningKey::Vcek);
    assert_eq!(
        hex(&r.measurement),
        "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"
    );
    assert_eq!(
        hex(&r.report_data),
        "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd"
    );
    let t = tcb("0300000000000873");
    assert_eq!(r.reported_tcb, t);
    assert_eq!((r.current_tcb, r.committed_tcb, r.launch_tcb), (t, t, t));
    assert_eq!(
        r.reported_tcb.decode(Generation::Milan),
        milan(3, 0, 8, 115)
    );
    assert!(hex(&r.chip_id).starts_with("d49554ec717f4e5b"));
    assert!(hex(&r.chip_id).ends_with("4d541eb6"));
    assert_eq!(r.current_version().to_string(), "1.52.4");
    assert_eq!(r.committed_version().to_string(), "1.52.4");
    assert_eq!(
        (r.current_build, r.current_minor, r.current_major),
        (0x04, 0x34, 0x01)
    );
    assert_eq!(r.cpuid(), None);
    assert_eq!(r.mitigation_vectors(), None);
    assert_eq!(
        r.generation(),
        Err(FormatError::GenerationNotInReport { version: 2 })
    );
}

#[test]
fn milan_v2_gosevguest_values() {
    let r = parse("snp/milan-v2-gosevguest/report.bin");
    assert_eq!(r.version, 2);
    assert_eq!(r.policy.raw(), 0xb0000);
    assert!(r.policy.smt_allowed());
    assert!(r.policy.reserved_must_be_one());
    assert!(r.policy.debug_allowed(), "SOURCES.md: DEBUG allowed");
    assert!(!r.policy.migrate_ma_allowed());
    assert_eq!(r.policy.reserved_bits(), 0);
    assert_eq!(r.platform_info.raw(), 0x1);
    assert_eq!(hex(&r.report_data), hex_then_zeros("0102030405", 59));
    assert_eq!(
        hex(&r.measurement),
        "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"
    );
    assert_eq!(r.reported_tcb, tcb("0200000000000544"));
    assert_eq!(r.reported_tcb.decode(Generation::Milan), milan(2, 0, 5, 68));
    assert_eq!(r.current_version().to_string(), "1.49.3");
    assert_eq!(
        (r.current_build, r.current_minor, r.current_major),
        (0x03, 0x31, 0x01)
    );
}

#[test]
fn milan_v2_trustee_values() {
    let r = parse("snp/milan-v2-trustee/report.bin");
    assert_eq!(r.version, 2);
    assert_eq!(r.guest_svn, 4);
    assert_eq!(r.policy.raw(), 0x3001f);
    assert_eq!((r.policy.abi_major(), r.policy.abi_minor()), (0, 31));
    assert_eq!(hex(&r.family_id), hex_then_zeros("01", 15));
    assert_eq!(hex(&r.image_id), hex_then_zeros("02", 15));
    assert_eq!(
        hex(&r.id_key_digest),
        "0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6e0b2bb57af7a44a3"
    );
    assert_eq!(r.author_key_digest, [0; 48]);
    assert_eq!(r.key_info.raw(), 0);
    assert!(!r.key_info.author_key_en());
    assert_eq!(
        hex(&r.measurement),
        "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"
    );
    assert_eq!(
        hex(&r.report_data),
        hex_then_zeros(
            "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2",
            32
        )
    );
    assert_eq!(r.current_tcb, tcb("03000000000008ce"));
    assert_eq!(r.reported_tcb, tcb("0300000000000873"));
    assert_ne!(
        r.current_tcb, r.reported_tcb,
        "VCEK must be matched against REPORTED_TCB"
    );
    assert_eq!(r.current_tcb.decode(Generation::Milan).microcode, 0xce);
    assert_eq!(r.reported_tcb.decode(Generation::Milan).microcode, 0x73);
}

#[test]
fn milan_v3_vlek_values() {
    let r = parse("snp/milan-v3-vlek-trustee/report.bin");
    assert_eq!(r.version, 3);
    assert_eq!(r.layout().unwrap(), ReportLayout::V3);
    assert_eq!(r.vmpl, 1);
    assert_eq!(r.policy.raw(), 0x30000);
    assert_eq!(r.key_info.raw(), 0x4);
    assert_eq!(r.key_info.signing_key(), SigningKey::Vlek);
    assert!(!r.key_info.mask_chip_key());
    assert_eq!(r.platform_info.raw(), 0x27);
    let p = r.platform_info;
    assert!(p.smt_en() && p.tsme_en() && p.ecc_en() && !p.rapl_dis() && !p.ciphertext_hiding_en());
    assert!(p.alias_check_complete() && !p.tio_en());
    assert_eq!(p.reserved_bits(), 0);
    assert_eq!(r.chip_id, [0; 64], "MASK_CHIP_ID");
    let c = r.cpuid().unwrap();
    assert_eq!((c.family, c.model, c.stepping), (0x19, 0x01, 0x01));
    assert_eq!(r.generation(), Ok(Generation::Milan));
    assert_eq!(
        hex(&r.measurement),
        "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0"
    );
    assert_eq!(r.reported_tcb, tcb("04000000000018d9"));
    assert_eq!(
        r.reported_tcb.decode(r.generation().unwrap()),
        milan(4, 0, 24, 217)
    );
    assert_eq!(r.current_tcb, tcb("04000000000018dc"));
    assert_eq!(r.committed_tcb, tcb("04000000000018db"));
    assert_eq!(r.launch_tcb, tcb("04000000000018db"));
    assert_eq!(r.current_version().to_string(), "1.55.29");
    assert_eq!(
        (r.current_build, r.current_minor, r.current_major),
        (0x1d, 0x37, 0x01)
    );
    assert_eq!(r.mitigation_vectors(), None);
}

#[test]
fn tcb_version_layout_depends_on_generation() {
    let t = TcbVersion::from_bytes([0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x07, 0x08]);
    assert_eq!(t.raw(), 0x0807_0000_0403_0201);
    assert_eq!(TcbVersion::from_raw(t.raw()), t);
    assert_eq!(t.decode(Generation::Genoa), milan(1, 2, 7, 8));
    let turin = TcbComponents {
        fmc: Some(1),
        boot_loader: 2,
        tee: 3,
        snp: 4,
        microcode: 8,
    };
    assert_eq!(t.decode(Generation::Turin), turin);
    assert_eq!(t.decode(Generation::Venice), turin);
    assert_eq!(t.to_string(), "0102030400000708");
}

#[test]
fn generation_from_cpuid_table() {
    let cases = [
        (0x19, 0x01, Ok(Generation::Milan)),
        (0x19, 0x11, Ok(Generation::Genoa)),
        (0x19, 0xA0, Ok(Generation::Genoa)),
        (0x1A, 0x00, Ok(Generation::Turin)),
        (0x1A, 0x11, Ok(Generation::Turin)),
        (0x1A, 0x50, Ok(Generation::Venice)),
        (0x1A, 0xC7, Ok(Generation::Venice)),
        (
            0x19,
            0x20,
            Err(FormatError::UnknownGeneration {
                family: 0x19,
                model: 0x20,
            }),
        ),
        (
            0x17,
            0x31,
            Err(FormatError::UnknownGeneration {
                family: 0x17,
                model: 0x31,
            }),
        ),
    ];
    for (family, model, want) in cases {
        assert_eq!(
            Generation::from_cpuid(family, model),
            want,
            "{family:#x}/{model:#x}"
        );
    }
}

#[test]
fn v3_report_with_unknown_cpuid_parses_but_has_no_generation() {
    let mut b = fixture("snp/milan-v3-vlek-trustee/report.bin");
    b[0x189] = 0x70;
    let r = AttestationReport::parse(&b).unwrap();
    assert_eq!(
        r.generation(),
        Err(FormatError::UnknownGeneration {
            family: 0x19,
            model: 0x70
        })
    );
}

#[test]
fn version_5_reads_the_mitigation_vectors_and_version_4_is_the_v3_layout() {
    let mut b = fixture("snp/milan-v3-vlek-trustee/report.bin");
    b[0] = 5;
    b[0x1F8..0x200].copy_from_slice(&0x11u64.to_le_bytes());
    b[0x200..0x208].copy_from_slice(&0x22u64.to_le_bytes());
    let r = AttestationReport::parse(&b).unwrap();
    assert_eq!(r.layout().unwrap(), ReportLayout::V5);
    assert_eq!(r.mitigation_vectors(), Some((0x11, 0x22)));
    assert_eq!(r.to_bytes().as_slice(), b.as_slice());
    // The same bytes are reserved in a v3 report.
    b[0] = 3;
    assert_eq!(
        AttestationReport::parse(&b),
        Err(FormatError::ReservedNotZero {
            what: "ATTESTATION_REPORT",
            offset: 0x1F8,
            len: 0xA8
        })
    );
    // v5 still reserves 0x208..0x2A0.
    b[0] = 5;
    b[0x29F] = 1;
    assert_eq!(
        AttestationReport::parse(&b),
        Err(FormatError::ReservedNotZero {
            what: "ATTESTATION_REPORT",
            offset: 0x208,
            len: 0x98
        })
    );
    let mut b = fixture("snp/milan-v3-vlek-trustee/report.bin");
    b[0] = 4;
    let r = AttestationReport::parse(&b).unwrap();
    assert_eq!(r.layout().unwrap(), ReportLayout::V3);
    assert_eq!(r.generation(), Ok(Generation::Milan));
}

#[test]
fn unsupported_versions_are_rejected() {
    let good = fixture("snp/milan-v2-virtee/report.bin");
    for version in [0u32, 1, 6, 7, 0x100, u32::MAX] {
        let mut b = good.clone();
        b[..4].copy_from_slice(&version.to_le_bytes());
        assert_eq!(
            AttestationReport::parse(&b),
            Err(FormatError::UnsupportedVersion {
                what: "ATTESTATION_REPORT",
                version
            }),
            "version {version}"
        );
    }
}

#[test]
fn truncated_and_oversized_reports_are_rejected() {
    let good = fixture("snp/milan-v2-virtee/report.bin");
    for len in [0, 1, 3, 4, 0x4C, 0x2A0, 0x2A1, REPORT_SIZE - 1] {
        assert_eq!(
            AttestationReport::parse(&good[..len]),
            Err(FormatError::Truncated {
                what: "ATTESTATION_REPORT",
                needed: REPORT_SIZE,
                got: len
            }),
            "len {len}"
        );
        assert!(ReceivedReport::parse(&good[..len]).is_err());
    }
    for extra in [1usize, 4, 4096] {
        let mut b = good.clone();
        b.resize(REPORT_SIZE + extra, 0);
        assert_eq!(
            AttestationReport::parse(&b),
            Err(FormatError::BadLength {
                field: "ATTESTATION_REPORT",
                offset: 0,
                got: (REPORT_SIZE + extra) as u64,
                expected: REPORT_SIZE as u64
            })
        );
    }
}

#[test]
fn every_reserved_range_is_checked_and_named_by_offset() {
    // (byte to set, start of its reserved range, range length) for a v2 and a v3 report.
    let v2 = [
        (0x04C, 0x04C, 4),
        (0x04F, 0x04C, 4),
        (0x188, 0x188, 24),
        (0x19F, 0x188, 24),
        (0x1EB, 0x1EB, 1),
        (0x1EF, 0x1EF, 1),
        (0x1F8, 0x1F8, 0xA8),
        (0x29F, 0x1F8, 0xA8),
        (0x330, 0x330, 0x170),
        (0x49F, 0x330, 0x170),
    ];
    let v3 = [(0x18B, 0x18B, 21), (0x19F, 0x18B, 21), (0x1F8, 0x1F8, 0xA8)];
    for (rel, cases) in [
        ("snp/milan-v2-virtee/report.bin", &v2[..]),
        ("snp/milan-v3-vlek-trustee/report.bin", &v3[..]),
    ] {
        let good = fixture(rel);
        for &(byte, offset, len) in cases {
            let mut b = good.clone();
            b[byte] = 0x01;
            assert_eq!(
                AttestationReport::parse(&b),
                Err(FormatError::ReservedNotZero {
                    what: "ATTESTATION_REPORT",
                    offset,
                    len
                }),
                "{rel}: byte {byte:#x}"
            );
        }
    }
}

#[test]
fn signed_bytes_are_the_received_bytes() {
    // virtee/sev's negative test flips report[21] (SOURCES.md calls it a
    // policy byte; 0x15 is in fact FAMILY_ID[5], POLICY is 0x08..0x10): the
    // signed bytes change with it, the parse still succeeds.
    let mut b = fixture("snp/milan-v2-virtee/report.bin");
    b[21] ^= 0x80;
    let r = ReceivedReport::parse(&b).unwrap();
    assert_eq!(r.signed_bytes()[21], b[21]);
    assert_eq!(r.report().family_id[5], 0x80);
    assert_eq!(r.report().policy.raw(), 0x30000);
    b[0x09] ^= 0x80;
    let r = ReceivedReport::parse(&b).unwrap();
    assert_eq!(r.report().policy.raw(), 0x30000 ^ 0x8000);
}

#[test]
fn error_messages_name_the_field_and_offset() {
    let mut b = fixture("snp/milan-v2-virtee/report.bin");
    b[0x1EB] = 9;
    let msg = AttestationReport::parse(&b).unwrap_err().to_string();
    assert!(
        msg.contains("ATTESTATION_REPORT") && msg.contains("0x1eb"),
        "{msg}"
    );
    let msg = AttestationReport::parse(&b[..10]).unwrap_err().to_string();
    assert!(msg.contains("1184") && msg.contains("10"), "{msg}");
}
