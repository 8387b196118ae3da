//! Every SEV-SNP fixture of `shared/fixtures/SOURCES.md` gets its expected
//! outcome at a pinned time, and each check of the chain and signature is
//! denied by a one-thing change.
// Helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use appraisal::Check;
use common::*;
use wire::{Bytes, CertKind, Certificate};

#[test]
fn virtee_milan_v2_is_accepted_with_its_values() {
    let c = accepted(appraise(&virtee(), &virtee_policy_with(""), SNP_NOW));
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["tee"], "snp");
    assert_eq!(j["signer"], "vcek");
    assert_eq!(j["product"], "Milan");
    assert_eq!(j["measurement"], VIRTEE_MEASUREMENT);
    assert_eq!(j["tcb"]["bootloader"], 3);
    assert_eq!(j["tcb"]["tee"], 0);
    assert_eq!(j["tcb"]["snp"], 8);
    assert_eq!(j["tcb"]["microcode"], 115);
    assert_eq!(j["tcb"]["launch_tcb"]["microcode"], 115);
    assert_eq!(j["tcb"]["committed_tcb"]["snp"], 8);
    assert_eq!(j["policy_flags"]["debug"], false);
    assert_eq!(j["policy_flags"]["smt"], true);
    assert!(j["chip_id"]
        .as_str()
        .unwrap()
        .starts_with("d49554ec717f4e5b"));
    assert!(j["report_data"]
        .as_str()
        .unwrap()
        .starts_with("d447b55d197491bf"));
    assert_eq!(j["policy_digest"].as_str().unwrap().len(), 64);
    assert_eq!(j["vmpl"], 0);
}

#[test]
fn default_crl_mode_denies_without_a_crl() {
    let p = policy(&format!(
        "[snp]\nallowed = true\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n"
    ));
    let d = denied(appraise(&virtee(), &p, SNP_NOW), Check::SnpCrlUnavailable);
    assert!(d.want.contains("require"), "{d}");
}

#[test]
fn snp_not_allowed_by_an_empty_policy() {
    denied(
        appraise(&virtee(), &policy(""), SNP_NOW),
        Check::SnpNotAllowed,
    );
}

#[test]
fn gosevguest_debug_report_is_denied_by_a_no_debug_policy() {
    let b = snp_bundle(
        "snp/milan-v2-gosevguest/report.bin",
        "snp/milan-v2-gosevguest/vcek.der",
        CertKind::Vcek,
    );
    let m = "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01";
    let base = format!("[snp]\nallowed = true\ncrl = \"if-present\"\nmeasurements = [\"{m}\"]\n");
    let d = denied(appraise(&b, &policy(&base), SNP_NOW), Check::SnpPolicyDebug);
    assert!(
        d.got.contains("0xb0000") && d.got.contains("DEBUG set"),
        "{d}"
    );
    let c = accepted(appraise(
        &b,
        &policy(&format!("{base}debug_allowed = true\n")),
        SNP_NOW,
    ));
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["policy_flags"]["debug"], true);
    assert_eq!(j["tcb"]["microcode"], 68);
    assert!(j["report_data"]
        .as_str()
        .unwrap()
        .starts_with("0102030405000000"));
}

fn trustee_policy() -> appraisal::Policy {
    let m = "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c";
    policy(&format!("[snp]\nallowed = true\ncrl = \"if-present\"\nprovisional_firmware_allowed = true\nmeasurements = [\"{m}\"]\n"))
}

#[test]
fn trustee_report_verifies_against_reported_not_current_tcb() {
    let b = snp_bundle(
        "snp/milan-v2-trustee/report.bin",
        "snp/milan-v2-trustee/vcek.der",
        CertKind::Vcek,
    );
    let c = accepted(appraise(&b, &trustee_policy(), SNP_NOW));
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["tcb"]["microcode"], 0x73); // REPORTED_TCB, not CURRENT_TCB (0xce)
                                             // Committed (…0873) is below current (…08ce): only provisional firmware allows that.
    let strict = policy(&format!(
        "[snp]\nallowed = true\ncrl = \"if-present\"\nmeasurements = [\"{}\"]\n",
        "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"
    ));
    denied(appraise(&b, &strict, SNP_NOW), Check::SnpTcbCommitted);
}

#[test]
fn trustee_invalid_vceks_are_denied_by_the_chain() {
    for f in ["vcek-invalid-legacy.der", "vcek-invalid-new.der"] {
        let b = snp_bundle(
            "snp/milan-v2-trustee/report.bin",
            &format!("snp/milan-v2-trustee/{f}"),
            CertKind::Vcek,
        );
        // These VCEKs (not signed by the ASK) are also not for the report's
        // TCB: the report is checked against its VCEK before the chain is
        // built (issue 18), so the TCB names it. A VCEK that matches the
        // report and fails only its chain is still `snp.chain.vek`.
        let d = denied(appraise(&b, &trustee_policy(), SNP_NOW), Check::SnpVcekTcb);
        assert!(d.want.contains("REPORTED_TCB"), "{f}: {d}");
    }
}

fn vlek_bundle() -> wire::EvidenceBundle {
    snp_bundle(
        "snp/milan-v3-vlek-trustee/report.bin",
        "snp/milan-v3-vlek-trustee/vlek.der",
        CertKind::Vlek,
    )
}

fn vlek_policy() -> appraisal::Policy {
    let m = "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0";
    policy(&format!(
        "[snp]\nallowed = true\ncrl = \"if-present\"\nvmpls = [1]\nprovisional_firmware_allowed = true\nmeasurements = [\"{m}\"]\n"
    ))
}

#[test]
fn vlek_is_accepted_before_its_expiry_and_denied_after() {
    let c = accepted(appraise(
        &vlek_bundle(),
        &vlek_policy(),
        "2025-12-10T00:00:00Z",
    ));
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["signer"], "vlek");
    assert_eq!(j["vmpl"], 1);
    assert_eq!(j["tcb"]["microcode"], 0xd9);
    assert_eq!(j["tcb"]["snp"], 0x18);
    let d = denied(
        appraise(&vlek_bundle(), &vlek_policy(), "2025-12-11T00:00:00Z"),
        Check::SnpCertValidity,
    );
    assert!(
        d.got
            .contains("SEV-VLEK valid 2024-12-10T22:14:21Z .. 2025-12-10T22:14:21Z"),
        "{d}"
    );
}

#[test]
fn vlek_report_is_denied_when_the_policy_takes_only_vceks() {
    let p = policy("[snp]\nallowed = true\nsigners = [\"vcek\"]\n");
    denied(appraise(&vlek_bundle(), &p, SNP_NOW), Check::SnpSigner);
}

#[test]
fn vlek_report_with_only_a_vcek_is_denied() {
    let b = snp_bundle(
        "snp/milan-v3-vlek-trustee/report.bin",
        "snp/milan-v2-virtee/vcek.der",
        CertKind::Vcek,
    );
    denied(appraise(&b, &vlek_policy(), SNP_NOW), Check::SnpVekMissing);
}

#[test]
fn vlek_vmpl_1_is_denied_by_the_default_vmpls() {
    let m = "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0";
    let p = policy(&format!("[snp]\nallowed = true\ncrl = \"if-present\"\nprovisional_firmware_allowed = true\nmeasurements = [\"{m}\"]\n"));
    denied(appraise(&vlek_bundle(), &p, SNP_NOW), Check::SnpVmpl);
}

#[test]
fn vlek_csp_id_allowlist() {
    let m = "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0";
    let p = |csp: &str| {
        policy(&format!(
        "[snp]\nallowed = true\ncrl = \"if-present\"\nvmpls = [1]\nprovisional_firmware_allowed = true\nmeasurements = [\"{m}\"]\nvlek_csp_ids = [\"{csp}\"]\n"
    ))
    };
    accepted(appraise(
        &vlek_bundle(),
        &p("CN=cc-us-east-2.amazonaws.com"),
        SNP_NOW,
    ));
    denied(
        appraise(&vlek_bundle(), &p("CN=other.example"), SNP_NOW),
        Check::SnpVlekCspId,
    );
}

#[test]
fn vlek_committed_below_current_is_denied_by_default() {
    let m = "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0";
    let p = policy(&format!(
        "[snp]\nallowed = true\ncrl = \"if-present\"\nvmpls = [1]\nmeasurements = [\"{m}\"]\n"
    ));
    denied(
        appraise(&vlek_bundle(), &p, SNP_NOW),
        Check::SnpTcbCommitted,
    );
}

#[test]
fn turin_vcek_chain_verifies() {
    // No Turin report exists publicly: build a v3 Turin report whose
    // REPORTED_TCB and CHIP_ID match the VCEK. Everything up to the report
    // signature passes (chain, validity, TCB, chip id); the signature, which
    // nobody could make, is the first failure.
    let vcek = read("snp/turin-vcek-virtee/vcek.der");
    let mut r = read("snp/milan-v2-virtee/report.bin");
    r[0] = 3; // VERSION 3
    r[0x188] = 0x1a; // CPUID family: Turin
    r[0x189] = 0x02;
    // Turin TCB layout: fmc, bl, tee, snp, -, -, -, ucode = 0,0,0,0,..,9
    let tcb = [0u8, 0, 0, 0, 0, 0, 0, 9];
    for off in [0x38, 0x180, 0x1e0, 0x1f0] {
        r[off..off + 8].copy_from_slice(&tcb);
    }
    r[0x1a0..0x1e0].fill(0);
    r[0x1a0..0x1a8].copy_from_slice(&[0x1e, 0x55, 0x0a, 0x8e, 0xe5, 0xcf, 0x9f, 0x4d]);
    let mut b = wire::EvidenceBundle::new(wire::Tee::Snp, "test", r);
    b.certificates.push(Certificate {
        kind: CertKind::Vcek,
        der: Bytes(vcek),
    });
    denied(
        appraise(&b, &virtee_policy_with(""), SNP_NOW),
        Check::SnpSignature,
    );
    // And the same VCEK against the Milan roots (a v2 report says nothing
    // about the CPU; the productName "Turin" picks the Turin roots): a Milan
    // CPUID in a v3 report contradicts the certificate.
    let mut r2 = b.evidence.0.clone();
    r2[0x188] = 0x19;
    r2[0x189] = 0x01;
    b.evidence = Bytes(r2);
    denied(
        appraise(&b, &virtee_policy_with(""), SNP_NOW),
        Check::SnpProduct,
    );
}

// ---- one-thing changes on the virtee fixture --------------------------------

fn flip_report(off: usize, mask: u8) -> wire::EvidenceBundle {
    let mut b = virtee();
    b.evidence.0[off] ^= mask;
    b
}

#[test]
fn a_flipped_byte_in_the_signed_region_fails_the_signature() {
    // virtee/sev's own negative test: the policy byte.
    denied(
        appraise(&flip_report(21, 0x80), &virtee_policy_with(""), SNP_NOW),
        Check::SnpSignature,
    );
    // REPORT_DATA, MEASUREMENT, HOST_DATA, REPORT_ID, REPORT_ID_MA.
    for off in [0x50, 0x90, 0xc0, 0x140, 0x160] {
        denied(
            appraise(&flip_report(off, 0x01), &virtee_policy_with(""), SNP_NOW),
            Check::SnpSignature,
        );
    }
    // The signature itself.
    denied(
        appraise(&flip_report(0x2a0, 0x01), &virtee_policy_with(""), SNP_NOW),
        Check::SnpSignature,
    );
}

#[test]
fn a_flipped_vcek_byte_fails_the_chain() {
    // virtee/sev's negative test: vcek[40] ^= 0xff (inside the TBS: serial/algorithm area).
    let mut b = virtee();
    b.certificates[0].der.0[40] ^= 0xff;
    let d = appraise(&b, &virtee_policy_with(""), SNP_NOW).unwrap_err();
    assert!(
        matches!(d.check, Check::SnpChainVek | Check::SnpCertForm),
        "{d}"
    );
    // A byte inside the VCEK's hwID extension: still a well-formed
    // certificate, but no longer the report's chip. The report is checked
    // against its VCEK (chip id, then signature) before the chain is built
    // (issue 18: a report that does not match its VCEK costs no chain
    // work), so the chip id names it; the ASK's signature would too.
    let mut b = virtee();
    let der = &mut b.certificates[0].der.0;
    let n = der.len();
    der[n - 600] ^= 0x01;
    let d = appraise(&b, &virtee_policy_with(""), SNP_NOW).unwrap_err();
    assert!(matches!(d.check, Check::SnpVcekChipId), "{d}");
}

#[test]
fn a_vcek_that_is_not_x509_v3_fails_the_certificate_form() {
    // The VCEK's TBSCertificate opens with `[0] INTEGER 2` (v3) at DER offset
    // 8 (`a0 03 02 01 02`); 1 makes it a v2 certificate, still well-formed
    // DER, which AMD's KDS never issues: refused by form, before the chain.
    let mut b = virtee();
    let der = &mut b.certificates[0].der.0;
    assert_eq!(der[8..13], [0xa0, 0x03, 0x02, 0x01, 0x02]);
    der[12] = 0x01;
    denied(
        appraise(&b, &virtee_policy_with(""), SNP_NOW),
        Check::SnpCertForm,
    );
}

#[test]
fn a_vcek_of_another_chip_fails_tcb_or_chip_id() {
    // trustee's report (same REPORTED_TCB as virtee) with virtee's VCEK: the
    // chain is fine, the TCB matches, the chip id does not.
    let b = snp_bundle(
        "snp/milan-v2-trustee/report.bin",
        "snp/milan-v2-virtee/vcek.der",
        CertKind::Vcek,
    );
    let d = denied(
        appraise(&b, &trustee_policy(), SNP_NOW),
        Check::SnpVcekChipId,
    );
    assert!(d.want.contains("d49554ec"), "{d}");
    // gosevguest's report (REPORTED_TCB …0544) with virtee's VCEK (…0873).
    let b = snp_bundle(
        "snp/milan-v2-gosevguest/report.bin",
        "snp/milan-v2-virtee/vcek.der",
        CertKind::Vcek,
    );
    let d = denied(appraise(&b, &trustee_policy(), SNP_NOW), Check::SnpVcekTcb);
    assert!(
        d.got.contains("microcode 115") && d.want.contains("microcode 68"),
        "{d}"
    );
}

#[test]
fn a_tcb_field_change_is_caught_before_or_by_the_signature() {
    // REPORTED_TCB microcode: the VCEK no longer matches.
    denied(
        appraise(&flip_report(0x187, 0x01), &virtee_policy_with(""), SNP_NOW),
        Check::SnpVcekTcb,
    );
    // CURRENT_TCB microcode: only the signature can tell.
    denied(
        appraise(&flip_report(0x3f, 0x01), &virtee_policy_with(""), SNP_NOW),
        Check::SnpSignature,
    );
}

#[test]
fn a_host_supplied_root_is_compared_never_trusted() {
    let mut b = virtee();
    b.certificates.push(Certificate {
        kind: CertKind::Ark,
        der: Bytes(read("snp/turin-vcek-virtee/vcek.der")),
    });
    denied(
        appraise(&b, &virtee_policy_with(""), SNP_NOW),
        Check::SnpChainArk,
    );
    let mut b = virtee();
    b.certificates.push(Certificate {
        kind: CertKind::Ask,
        der: Bytes(read("snp/milan-v2-virtee/vcek.der")),
    });
    denied(
        appraise(&b, &virtee_policy_with(""), SNP_NOW),
        Check::SnpChainIntermediate,
    );
}

#[test]
fn the_clock_decides_certificate_validity() {
    // VCEK notBefore 2023-04-03T19:23:43Z, notAfter 2030-04-03T19:23:43Z.
    denied(
        appraise(&virtee(), &virtee_policy_with(""), "2023-04-03T19:23:42Z"),
        Check::SnpCertValidity,
    );
    accepted(appraise(
        &virtee(),
        &virtee_policy_with(""),
        "2023-04-03T19:23:43Z",
    ));
    denied(
        appraise(&virtee(), &virtee_policy_with(""), "2030-04-03T19:23:44Z"),
        Check::SnpCertValidity,
    );
}

#[test]
fn malformed_reports_are_denied_as_format() {
    let mut b = virtee();
    b.evidence.0.truncate(1000);
    denied(
        appraise(&b, &virtee_policy_with(""), SNP_NOW),
        Check::SnpReportFormat,
    );
    // A reserved byte (0x04C).
    denied(
        appraise(&flip_report(0x4c, 1), &virtee_policy_with(""), SNP_NOW),
        Check::SnpReportFormat,
    );
}

#[test]
fn signature_algo_and_signer_fields() {
    denied(
        appraise(&flip_report(0x34, 0x02), &virtee_policy_with(""), SNP_NOW),
        Check::SnpSignatureAlgo,
    );
    // KEY_INFO SIGNING_KEY = 7 (none).
    denied(
        appraise(&flip_report(0x48, 0x1c), &virtee_policy_with(""), SNP_NOW),
        Check::SnpSigner,
    );
    // MASK_CHIP_KEY.
    denied(
        appraise(&flip_report(0x48, 0x02), &virtee_policy_with(""), SNP_NOW),
        Check::SnpSigner,
    );
    denied(
        appraise(
            &virtee(),
            &virtee_policy_with("signers = [\"vlek\"]\n"),
            SNP_NOW,
        ),
        Check::SnpSigner,
    );
    denied(
        appraise(
            &virtee(),
            &virtee_policy_with("min_report_version = 3\n"),
            SNP_NOW,
        ),
        Check::SnpReportVersion,
    );
}

#[test]
fn the_warm_cache_gives_the_same_verdicts() {
    let a = appraisal::Appraiser::new().unwrap();
    let p = virtee_policy_with("");
    let now = t(SNP_NOW);
    let first = a
        .appraise(&virtee(), &p, now, None, &appraisal::Collateral::none())
        .unwrap();
    assert_eq!(
        a.appraise(&virtee(), &p, now, None, &appraisal::Collateral::none())
            .unwrap(),
        first
    );
    // Warm: time and CRL mode are still checked on every appraisal.
    assert_eq!(
        a.appraise(
            &virtee(),
            &p,
            t("2031-01-01T00:00:00Z"),
            None,
            &appraisal::Collateral::none()
        )
        .unwrap_err()
        .check,
        Check::SnpCertValidity
    );
    let strict = policy(&format!(
        "[snp]\nallowed = true\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n"
    ));
    assert_eq!(
        a.appraise(
            &virtee(),
            &strict,
            now,
            None,
            &appraisal::Collateral::none()
        )
        .unwrap_err()
        .check,
        Check::SnpCrlUnavailable
    );
    // Warm: a tampered report still fails its signature; a foreign root still fails.
    assert_eq!(
        a.appraise(
            &flip_report(0x90, 1),
            &p,
            now,
            None,
            &appraisal::Collateral::none()
        )
        .unwrap_err()
        .check,
        Check::SnpSignature
    );
    let mut b = virtee();
    b.certificates.push(Certificate {
        kind: CertKind::Ark,
        der: Bytes(read("snp/turin-vcek-virtee/vcek.der")),
    });
    assert_eq!(
        a.appraise(&b, &p, now, None, &appraisal::Collateral::none())
            .unwrap_err()
            .check,
        Check::SnpChainArk
    );
    // A correct ARK/ASK supplied by the host is accepted (it equals the pin).
    let mut b = virtee();
    let pem = String::from_utf8(read("snp/amd-certs/milan_ask_ark.pem")).unwrap();
    let ders: Vec<Vec<u8>> = pem
        .split("-----END CERTIFICATE-----")
        .filter(|s| s.contains("BEGIN"))
        .map(|s| {
            let body: String = s
                .lines()
                .filter(|l| !l.starts_with("-----") && !l.is_empty())
                .collect();
            base64_decode(&body)
        })
        .collect();
    b.certificates.push(Certificate {
        kind: CertKind::Ask,
        der: Bytes(ders[0].clone()),
    });
    b.certificates.push(Certificate {
        kind: CertKind::Ark,
        der: Bytes(ders[1].clone()),
    });
    assert_eq!(
        a.appraise(&b, &p, now, None, &appraisal::Collateral::none())
            .unwrap(),
        first
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    let table = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("base64"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= table(c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    out
}
