//! The decision record of real evidence (`$ENCLAVE_FIXTURES`): a TDX quote
//! from dcap-qvl's test data with its Intel collateral, and the virtee
//! SEV-SNP Milan report with its VCEK, appraised by the production
//! appraiser at 2025-06-19T11:32:27Z (inside both collaterals' windows,
//! shared/fixtures/SOURCES.md). The record's platform fields (FMSPC,
//! CHIP_ID, measurement, TCB) come from the evidence, its policy fields
//! from the policy file, its check results from the appraisal's trace.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Instant;

use verifier::decision::{checks_of, Decision};
use verifier::{Appraiser, PolicyAppraiser};
use wire::{Bytes, CertKind, Certificate, EvidenceBundle, Tee};

const NOW: i64 = 1_750_332_747;
const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
const VIRTEE_MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";

fn read(rel: &str) -> Vec<u8> {
    let dir = std::env::var_os("ENCLAVE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        });
    std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e} (set ENCLAVE_FIXTURES)"))
}

fn tdx_bundle() -> EvidenceBundle {
    let mut b = EvidenceBundle::new(Tee::Tdx, "test", read("tdx/dcap-qvl/tdx_quote"));
    b.tdx_collateral =
        Some(serde_json::from_slice(&read("tdx/dcap-qvl/tdx_quote_collateral.json")).unwrap());
    b
}

fn tdx_policy() -> appraisal::Policy {
    appraisal::Policy::from_toml(
        format!(
            "id = \"tdx-fleet\"\nversion = 3\n[tdx]\nallowed = true\nmin_tcb_evaluation_data_number = 17\nmrtds = [\"{MRTD}\"]\nallow_unpinned_os = true\n"
        )
        .as_bytes(),
    )
    .unwrap()
}

fn result_of(d: &Decision, check: &str) -> &'static str {
    d.checks
        .iter()
        .find(|c| c.check == check)
        .unwrap_or_else(|| panic!("{check} not listed"))
        .result
}

/// Through the verifier's appraiser: the session binding cannot match (the
/// quote was made for another session), so every other check passes and
/// `report_data` fails; the record names the platform by its FMSPC.
#[test]
fn a_real_tdx_quote_for_another_session_is_denied_at_report_data() {
    let a = PolicyAppraiser::new(tdx_policy()).unwrap();
    let bundle = tdx_bundle();
    let (result, checks) = a.appraise_traced(&bundle, &[0u8; 64], NOW);
    let denial = result.unwrap_err();
    assert_eq!(denial.check, "report_data");
    let d = Decision::start("r1".into(), "tdx", a.policy_ref()).denied(
        &bundle,
        &denial.check,
        checks,
        Instant::now(),
    );
    assert_eq!(d.fmspc.as_deref(), Some("b0c06f000000"));
    assert_eq!((d.policy.id.as_str(), d.policy.version), ("tdx-fleet", 3));
    assert_eq!(d.decision, "denied");
    assert_eq!(d.denied_check.as_deref(), Some("report_data"));
    for check in [
        "tdx.quote.format",
        "tdx.pck_chain",
        "tdx.signature",
        "tdx.mrtd",
    ] {
        assert_eq!(result_of(&d, check), "pass", "{check}");
    }
    // The binding is the last check: the trace ends there, failed, and
    // every check before it ran once.
    let last = d.checks.last().unwrap();
    assert_eq!((last.check.as_str(), last.result), ("report_data", "fail"));
    assert_eq!(d.checks.len(), 39, "{:?}", d.checks);
    assert_eq!(result_of(&d, "tdx.component.kernel"), "skip");
    assert!(d.collateral.is_none());
}

/// Offline (no session binding), the same quote is accepted: FMSPC from the
/// PCK certificate, Intel's TCB status, the collateral from the bundle with
/// revocation checked.
#[test]
fn a_real_tdx_quote_accepted_offline_names_its_fmspc_tcb_and_collateral() {
    let (claims, trace) = appraisal::Appraiser::new().unwrap().appraise_traced(
        &tdx_bundle(),
        &tdx_policy(),
        NOW,
        None,
        &appraisal::Collateral::none(),
    );
    let claims = serde_json::to_value(claims.unwrap()).unwrap();
    let d = Decision::start("r2".into(), "tdx", Default::default()).accepted(
        claims.as_object().unwrap(),
        Some(checks_of(&trace)),
        Instant::now(),
    );
    assert_eq!(d.decision, "accepted");
    assert_eq!(d.fmspc.as_deref(), Some("b0c06f000000"));
    // shared/fixtures/SOURCES.md: FMSPC b0c06f000000, tcbDate 2024-03-13, UpToDate.
    assert_eq!(d.tcb["tcb_status"], "UpToDate");
    assert_eq!(d.tcb["tcb_date"], "2024-03-13T00:00:00Z");
    let c = d.collateral.as_ref().unwrap();
    assert_eq!(c.source, "bundle");
    assert!(c.revocation_checked);
    assert_eq!(result_of(&d, "tdx.crl"), "pass");
    assert_eq!(d.chip_id, None);
}

/// The virtee Milan report with its VCEK, no CRL under `crl = "if-present"`:
/// accepted offline; CHIP_ID and MEASUREMENT are the report's, the CRL
/// checks and the VLEK's did not apply.
#[test]
fn a_real_snp_report_accepted_without_a_crl_skips_the_crl_checks() {
    let mut bundle = EvidenceBundle::new(Tee::Snp, "test", read("snp/milan-v2-virtee/report.bin"));
    bundle.certificates.push(Certificate {
        kind: CertKind::Vcek,
        der: Bytes(read("snp/milan-v2-virtee/vcek.der")),
    });
    let policy = appraisal::Policy::from_toml(
        format!("[snp]\nallowed = true\ncrl = \"if-present\"\nmin_reported_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }}\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n").as_bytes(),
    )
    .unwrap();
    let (claims, trace) = appraisal::Appraiser::new().unwrap().appraise_traced(
        &bundle,
        &policy,
        NOW,
        None,
        &appraisal::Collateral::none(),
    );
    let claims = serde_json::to_value(claims.unwrap()).unwrap();
    let d = Decision::start("r3".into(), "snp", Default::default()).accepted(
        claims.as_object().unwrap(),
        Some(checks_of(&trace)),
        Instant::now(),
    );
    assert_eq!(d.measurement.as_deref(), Some(VIRTEE_MEASUREMENT));
    // CHIP_ID: 64 bytes, the report's (offset 0x1A0).
    let report = read("snp/milan-v2-virtee/report.bin");
    let chip: String = report[0x1A0..0x1E0]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(d.chip_id.as_deref(), Some(chip.as_str()));
    assert_eq!(d.tcb["microcode"], claims["tcb"]["microcode"]);
    for check in [
        "snp.crl.unavailable",
        "snp.crl.invalid",
        "snp.crl.revoked",
        "snp.vlek.csp_id",
    ] {
        assert_eq!(result_of(&d, check), "skip", "{check}");
    }
    let crl = d
        .checks
        .iter()
        .find(|c| c.check == "snp.crl.revoked")
        .unwrap();
    assert!(crl.reason.unwrap().contains("if-present"), "{crl:?}");
    assert_eq!(result_of(&d, "snp.vcek.chip_id"), "pass");
    assert_eq!(result_of(&d, "snp.measurement"), "pass");
    assert_eq!(d.collateral.as_ref().unwrap().source, "bundle");
    assert!(!d.collateral.as_ref().unwrap().revocation_checked);
    // The same evidence as the verifier's own denial states the same platform.
    let denied = Decision::start("r4".into(), "snp", Default::default()).denied(
        &bundle,
        "snp.measurement",
        None,
        Instant::now(),
    );
    assert_eq!(denied.chip_id, d.chip_id);
    assert_eq!(denied.measurement, d.measurement);
}

/// A real AWS Nitro document through the verifier's appraiser, at a time
/// inside its window (shared/fixtures/cloud/SOURCES.md §1): made for
/// another session (its `user_data` is a multihash, not our binding), so
/// every check passes up to `nitro.binding.user_data`, which fails; the
/// record states the document's measurement, SHA-384(PCR0 ‖ PCR1 ‖ PCR2).
#[test]
fn a_real_nitro_document_for_another_session_is_denied_at_its_user_data() {
    use base64::Engine as _;
    let text = read("cloud/nitro/eternis/example_attestation@56801aa3.b64");
    let doc = base64::engine::general_purpose::STANDARD
        .decode(std::str::from_utf8(&text).unwrap().trim())
        .unwrap();
    let pcr0 = "a873085089ae5e3c3c491c8e1e0ab46a713f4314b3c6401abb599ca36060922a3d6fc2a3e84d198a2131e80c60959bb3";
    let policy = appraisal::Policy::from_toml(
        format!("id = \"nitro-fleet\"\n[nitro]\nallowed = true\npcr0 = [\"{pcr0}\"]\n").as_bytes(),
    )
    .unwrap();
    let a = PolicyAppraiser::new(policy).unwrap();
    let bundle = EvidenceBundle::new(Tee::Nitro, "nsm", doc);
    let now = 1_722_457_800; // 2024-07-31T20:30:00Z
    let (result, checks) = a.appraise_traced(&bundle, &[0u8; 64], now);
    let denial = result.unwrap_err();
    assert_eq!(denial.check, "nitro.binding.user_data");
    let d = Decision::start("r1".into(), "nitro", a.policy_ref()).denied(
        &bundle,
        &denial.check,
        checks,
        Instant::now(),
    );
    assert_eq!(
        d.measurement.as_deref(),
        Some("140f71c2f49de42a703729c4be70660a1758c6e8b8665cbd3d9c165f38eb68e5d4025c2fe395d6fae43479492fb2ed0b")
    );
    let got: Vec<(&str, &str)> = d
        .checks
        .iter()
        .map(|c| (c.check.as_str(), c.result))
        .collect();
    assert_eq!(
        got,
        [
            ("nitro.not_allowed", "pass"),
            ("nitro.format", "pass"),
            ("nitro.signature", "pass"),
            ("nitro.chain", "pass"),
            ("nitro.time", "pass"),
            ("nitro.digest", "pass"),
            ("nitro.debug", "pass"),
            ("nitro.pcr0", "pass"),
            ("nitro.pcr1", "skip"),
            ("nitro.pcr2", "skip"),
            ("nitro.pcr3", "skip"),
            ("nitro.pcr4", "skip"),
            ("nitro.pcr8", "skip"),
            ("nitro.binding.user_data", "fail"),
        ]
    );
}
