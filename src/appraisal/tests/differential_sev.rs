//! Differential test: the chain and report-signature verdicts of this crate
//! agree with virtee/sev 8.0.0 (`crypto_nossl`), the upstream verifier the
//! team validated on the fixtures, for every SEV-SNP fixture pairing and
//! for one-byte tampering of report and VCEK.
// Helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use appraisal::Check;
use common::*;
use sev::certs::snp::{builtin::milan, ca, Certificate, Chain, Verifiable};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use wire::CertKind;

/// sev's verdict on chain + signature (Milan, VCEK).
fn sev_ok(report: &[u8], vcek: &[u8]) -> bool {
    let Ok(report) = AttestationReport::from_bytes(report) else {
        return false;
    };
    let Ok(vek) = Certificate::from_der(vcek) else {
        return false;
    };
    let chain = Chain {
        ca: ca::Chain {
            ark: milan::ark().unwrap(),
            ask: milan::ask().unwrap(),
        },
        vek,
    };
    (&chain, &report).verify().is_ok()
}

/// Ours: chain and signature passed (the policy checks after them do not
/// matter here, so a denial by a later check counts as "verified").
fn ours_ok(report: &[u8], vcek: &[u8]) -> bool {
    let mut b = wire::EvidenceBundle::new(wire::Tee::Snp, "diff", report.to_vec());
    b.certificates.push(wire::Certificate {
        kind: CertKind::Vcek,
        der: wire::Bytes(vcek.to_vec()),
    });
    let p = policy("[snp]\nallowed = true\ncrl = \"if-present\"\nprovisional_firmware_allowed = true\ndebug_allowed = true\n");
    match appraise(&b, &p, SNP_NOW) {
        Ok(_) => true,
        Err(d) => !matches!(
            d.check,
            Check::SnpReportFormat
                | Check::SnpCertForm
                | Check::SnpChainArk
                | Check::SnpChainIntermediate
                | Check::SnpChainVek
                | Check::SnpVcekTcb
                | Check::SnpVcekChipId
                | Check::SnpSignature
        ),
    }
}

#[test]
fn chain_and_signature_verdicts_agree_with_sev() {
    let reports = [
        "snp/milan-v2-virtee/report.bin",
        "snp/milan-v2-gosevguest/report.bin",
        "snp/milan-v2-trustee/report.bin",
    ];
    let vceks = [
        "snp/milan-v2-virtee/vcek.der",
        "snp/milan-v2-gosevguest/vcek.der",
        "snp/milan-v2-trustee/vcek.der",
        "snp/milan-v2-trustee/vcek-invalid-legacy.der",
        "snp/milan-v2-trustee/vcek-invalid-new.der",
    ];
    let mut accepted_pairs = 0;
    for r in reports {
        for v in vceks {
            let (report, vcek) = (read(r), read(v));
            let theirs = sev_ok(&report, &vcek);
            // sev does not compare the VCEK's TCB and hwID with the report:
            // where it accepts, so must our chain and signature steps, and
            // where we accept, so must sev.
            let ours = ours_ok(&report, &vcek);
            if ours {
                assert!(theirs, "{r} + {v}: we accept, sev refuses");
                accepted_pairs += 1;
            }
            if theirs && !ours {
                // Only our extra bindings may refuse what sev accepts.
                let mut b = wire::EvidenceBundle::new(wire::Tee::Snp, "diff", report.clone());
                b.certificates.push(wire::Certificate {
                    kind: CertKind::Vcek,
                    der: wire::Bytes(vcek.clone()),
                });
                let d = appraise(
                    &b,
                    &policy("[snp]\nallowed = true\ncrl = \"if-present\"\n"),
                    SNP_NOW,
                )
                .unwrap_err();
                assert!(
                    matches!(d.check, Check::SnpVcekTcb | Check::SnpVcekChipId),
                    "{r} + {v}: {d}"
                );
            }
        }
    }
    assert_eq!(accepted_pairs, 3, "each report with its own VCEK");
}

#[test]
fn one_byte_tampering_agrees_with_sev() {
    let (report, vcek) = (
        read("snp/milan-v2-virtee/report.bin"),
        read("snp/milan-v2-virtee/vcek.der"),
    );
    assert!(sev_ok(&report, &vcek) && ours_ok(&report, &vcek));
    for off in [0x08, 0x15, 0x50, 0x90, 0xc0, 0x140, 0x2a0, 0x2e8] {
        let mut r = report.clone();
        r[off] ^= 0x80;
        assert!(!sev_ok(&r, &vcek), "sev accepts a flip at {off:#x}");
        assert!(!ours_ok(&r, &vcek), "we accept a flip at {off:#x}");
    }
    for off in [40, 200, 400, vcek.len() - 100] {
        let mut v = vcek.clone();
        v[off] ^= 0xff;
        assert_eq!(
            sev_ok(&report, &v),
            ours_ok(&report, &v),
            "vcek flip at {off}"
        );
    }
}
