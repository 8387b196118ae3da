//! Azure vTPM evidence of `shared/fixtures/cloud/azure` (SOURCES.md §2) at a
//! pinned time: every capture accepted with the values SOURCES.md lists,
//! every negative case it lists denied by the check that names it, and the
//! policy's Azure rules each exercised on the real evidence.
// Helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use appraisal::{AzureFreshness, Check, Claims, Denial, Outcome, Policy, Trace};
use common::*;
use tee_formats::azure::HclReport;
use wire::{Bytes, EvidenceBundle, Tee, TpmEvidence};

/// Inside every fixture certificate's validity (VCEKs from 2023-05-02 and
/// 2025-01-28; the TDX PCK leaf to 2030-09-13).
const NOW: &str = "2025-06-01T00:00:00Z";
const SNP_DIR: &str = "cloud/azure/trustee-az-snp-vtpm";
const TDX_DIR: &str = "cloud/azure/trustee-az-tdx-vtpm";
/// trustee's nonce for every capture but v2.
const CHALLENGE: &[u8] = b"challenge";

// SOURCES.md §2 values.
const HCL_MEASUREMENT: &str = "9ac48fcac8a2d88aeeff8d427ad4f2be0e3917c748a18bdf52cc317e7fe20308b459d5ef1a12e0c22944eb386d17c315";
const HCL_PCR0: &str = "f3a7e99a5f819a034386bce753a48a73cfdaa0bea0ecfc124bedbf5a8c4799be";
const V0_MEASUREMENT: &str = "6a063be9dd79f6371c842e480f8dc3b5c725961344e57130e88c5adf49e8f7f6c79b75a5eb77fc769959f4aeb2f9401e";
const V0_PCR0: &str = "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced";
const V2_MEASUREMENT: &str = "5b0ce64ad1c1f6375dbda5f760b98526ca1bcf91b8195091afc28e7b024251d68fe32e05af34048d6607678cd23283ff";
const V2_PCR0: &str = "84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7";
const V2_NONCE: &str = "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef";
const TDX_PCR0: &str = "782b20b10f55cc46e2142cc2145d548698073e5beb82752c8d7f9279f0d8a273";

fn unhex(s: &str) -> Vec<u8> {
    appraisal::hex::decode(s).unwrap()
}

/// The TpmEvidence of a tpm-quote-v1.json (raw signature wrapped as a TPMT_SIGNATURE).
fn tpm_evidence(rel: &str) -> TpmEvidence {
    let j: serde_json::Value = serde_json::from_slice(&read(rel)).unwrap();
    let sig = tee_formats::tpm::Signature::RsaSsa {
        hash: tee_formats::tpm::ALG_SHA256,
        sig: unhex(j["signature"].as_str().unwrap()),
    };
    TpmEvidence {
        quote: Bytes(unhex(j["message"].as_str().unwrap())),
        signature: Bytes(sig.to_bytes().unwrap()),
        pcrs: j["pcrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| Bytes(unhex(p.as_str().unwrap())))
            .collect(),
        td_quote: None,
    }
}

/// hcl-report.bin + tpm-quote-v1.json + vcek.pem (VCEK, ASK, ARK).
fn snp_set() -> EvidenceBundle {
    let mut b = EvidenceBundle::new(
        Tee::AzureSnp,
        "test",
        read(&format!("{SNP_DIR}/hcl-report.bin")),
    );
    b.tpm = Some(tpm_evidence(&format!("{SNP_DIR}/tpm-quote-v1.json")));
    b.certificates =
        appraisal::inputs::certificates(&read(&format!("{SNP_DIR}/vcek.pem"))).unwrap();
    b
}

/// hcl-report.bin + td-quote.bin + tpm-quote-v1.json (no collateral exists).
fn tdx_set() -> EvidenceBundle {
    let mut b = EvidenceBundle::new(
        Tee::AzureTdx,
        "test",
        read(&format!("{TDX_DIR}/hcl-report.bin")),
    );
    let mut t = tpm_evidence(&format!("{TDX_DIR}/tpm-quote-v1.json"));
    t.td_quote = Some(Bytes(read(&format!("{TDX_DIR}/td-quote.bin"))));
    b.tpm = Some(t);
    b
}

fn capture(rel: &str) -> EvidenceBundle {
    appraisal::inputs::azure_evidence(&read(rel)).unwrap()
}

/// An Azure SNP policy pinning `pcr0` and the paravisor `measurement`.
fn snp_policy(measurement: &str, pcr0: &str, extra: &str) -> Policy {
    policy(&format!(
        "[azure]\nallowed = true\nuser_data_required = false\n{extra}\n[azure.pcrs]\n0 = [\"{pcr0}\"]\n\n\
         [azure.snp]\nallowed = true\ncrl = \"if-present\"\nprovisional_firmware_allowed = true\nmeasurements = [\"{measurement}\"]\n"
    ))
}

fn tdx_policy(extra: &str) -> Policy {
    policy(&format!(
        "[azure]\nallowed = true\nuser_data_required = false\n{extra}\n[azure.pcrs]\n0 = [\"{TDX_PCR0}\"]\n\n\
         [azure.tdx]\nallowed = true\nmrtds = [\"024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7ab7b\"]\n"
    ))
}

fn run(b: &EvidenceBundle, p: &Policy, nonce: &[u8]) -> Result<Claims, Denial> {
    consistent(appraisal::Appraiser::new().unwrap().appraise_azure_traced(
        b,
        p,
        t(NOW),
        Some(AzureFreshness::Nonce(nonce)),
        &appraisal::Collateral::none(),
    ))
}

fn snp_ok(b: &EvidenceBundle) -> Result<Claims, Denial> {
    run(b, &snp_policy(HCL_MEASUREMENT, HCL_PCR0, ""), CHALLENGE)
}

#[test]
fn the_hcl_report_set_is_accepted_with_its_documented_values() {
    let c = accepted(snp_ok(&snp_set()));
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["tee"], "azure-snp");
    assert_eq!(j["measurement"], HCL_MEASUREMENT);
    assert_eq!(j["vmpl"], 0);
    assert_eq!(j["product"], "Milan");
    assert_eq!(j["signer"], "vcek");
    assert!(
        j["chip_id"].as_str().unwrap().starts_with("19752a44"),
        "{j}"
    );
    assert!(j["chip_id"].as_str().unwrap().ends_with("8c6cca"), "{j}");
    assert_eq!(j["azure"]["pcrs"][0], HCL_PCR0);
    assert_eq!(j["azure"]["pcrs"].as_array().unwrap().len(), 24);
    assert_eq!(j["azure"]["pcrs"][8], "0".repeat(64));
    assert_eq!(j["azure"]["hcl_version"], 1);
    assert_eq!(j["azure"]["vm_configuration"]["secure-boot"], true);
    // REPORT_DATA is SHA-256(variable data) ‖ 32 zero bytes.
    assert_eq!(
        j["report_data"],
        format!(
            "b3fbad6514c83caeb0380882145e49f794229ef37c421b91fc47ff93556bafac{}",
            "0".repeat(64)
        )
    );
}

#[test]
fn sources_md_negative_cases_are_each_denied_by_their_check() {
    // byte 0x1a6 := 0 (REPORTED_TCB's SNP SPL): "SNP version mismatch".
    let mut b = snp_set();
    b.evidence.0[0x1a6] = 0;
    let d = denied(snp_ok(&b), Check::SnpVcekTcb);
    assert!(d.got.contains("snp 8") && d.want.contains("snp 0"), "{d}");
    // byte 0x6e0 += 1 (inside HCLEkPub.n): the variable data no longer hashes to REPORT_DATA.
    let mut b = snp_set();
    b.evidence.0[0x6e0] += 1;
    let d = denied(snp_ok(&b), Check::AzureHclBinding);
    assert!(d.got.contains("b3fbad6514c83cae"), "{d}");
    // byte 0x540 := 0 (inside HCLAkPub.n): the AK cannot be read.
    let mut b = snp_set();
    b.evidence.0[0x540] = 0;
    let d = denied(snp_ok(&b), Check::AzureAk);
    assert!(d.got.contains("not JSON"), "{d}");
    // signature[0] ^= 1 (TPMT_SIGNATURE: alg, hash, size, then the signature).
    let mut b = snp_set();
    b.tpm.as_mut().unwrap().signature.0[6] ^= 1;
    denied(snp_ok(&b), Check::AzureQuoteSignature);
    // The reversed nonce.
    let reversed: Vec<u8> = CHALLENGE.iter().rev().copied().collect();
    let d = denied(
        run(
            &snp_set(),
            &snp_policy(HCL_MEASUREMENT, HCL_PCR0, ""),
            &reversed,
        ),
        Check::AzureQuoteNonce,
    );
    assert_eq!(d.got, "extraData 6368616c6c656e6765");
    // pcrs[0][0] ^= 1.
    let mut b = snp_set();
    b.tpm.as_mut().unwrap().pcrs[0].0[0] ^= 1;
    let d = denied(snp_ok(&b), Check::AzureQuotePcrDigest);
    assert!(
        d.want
            .contains("0daff74c2fca14910b1e9b54a384707434c3365db9f163cc73a39a9f7500833f"),
        "{d}"
    );
}

#[test]
fn legacy_v0_and_v1_captures_are_accepted() {
    for rel in ["evidence-v0.json", "evidence-v1.json"] {
        let b = capture(&format!("{SNP_DIR}/{rel}"));
        assert_eq!(b.tee, Tee::AzureSnp);
        let c = accepted(run(&b, &snp_policy(V0_MEASUREMENT, V0_PCR0, ""), CHALLENGE));
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(j["measurement"], V0_MEASUREMENT, "{rel}");
        assert_eq!(j["azure"]["pcrs"][0], V0_PCR0, "{rel}");
        // reported_tcb 04000000000018db: microcode 0xdb = 219 (Milan).
        assert_eq!(j["tcb"]["microcode"], 219, "{rel}");
        assert_eq!(j["tcb"]["snp"], 24, "{rel}");
    }
}

#[test]
fn v2_capture_binds_the_nonce_through_upper_case_user_data() {
    let b = capture(&format!("{SNP_DIR}/evidence-v2.json"));
    // user-data required (the default): it must start with the nonce.
    let p = policy(&format!(
        "[azure]\nallowed = true\n[azure.pcrs]\n0 = [\"{V2_PCR0}\"]\n[azure.snp]\nallowed = true\ncrl = \"if-present\"\nprovisional_firmware_allowed = true\nmeasurements = [\"{V2_MEASUREMENT}\"]\n"
    ));
    let c = accepted(run(&b, &p, &unhex(V2_NONCE)));
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["measurement"], V2_MEASUREMENT);
    assert_eq!(j["azure"]["pcrs"][0], V2_PCR0);
    assert_eq!(
        j["azure"]["user_data"],
        format!("{V2_NONCE}{}", "0".repeat(32))
    );
    // Another nonce: the quote's extraData is the first thing to disagree.
    denied(run(&b, &p, &unhex("123abc")), Check::AzureQuoteNonce);
}

#[test]
fn zero_user_data_is_denied_when_the_policy_requires_the_binding() {
    // The hcl-report.bin and v0/v1 paravisors left user-data zero.
    for b in [snp_set(), capture(&format!("{SNP_DIR}/evidence-v0.json"))] {
        let measurement = if b.provider == "test" {
            HCL_MEASUREMENT
        } else {
            V0_MEASUREMENT
        };
        let pcr0 = if b.provider == "test" {
            HCL_PCR0
        } else {
            V0_PCR0
        };
        let p = snp_policy(measurement, pcr0, "").clone();
        let strict = policy(&format!(
            "[azure]\nallowed = true\n[azure.pcrs]\n0 = [\"{pcr0}\"]\n[azure.snp]\nallowed = true\ncrl = \"if-present\"\nprovisional_firmware_allowed = true\nmeasurements = [\"{measurement}\"]\n"
        ));
        accepted(run(&b, &p, CHALLENGE));
        let d = denied(run(&b, &strict, CHALLENGE), Check::AzureUserData);
        assert_eq!(d.got, format!("user-data {}", "0".repeat(128)));
    }
}

#[test]
fn the_tdx_set_passes_every_check_that_needs_no_collateral() {
    // HCL binding against the TD quote, the vTPM quote, the TD quote's
    // signature, QE report and PCK chain all verify; the TCB status needs
    // Intel collateral, which the capture does not have.
    let d = denied(
        run(&tdx_set(), &tdx_policy(""), CHALLENGE),
        Check::TdxCollateralMissing,
    );
    assert!(
        d.got.contains("no tcb_info") && d.got.contains("the bundle carries none"),
        "{d}"
    );
    for rel in ["evidence-v0.json", "evidence-v1.json"] {
        let b = capture(&format!("{TDX_DIR}/{rel}"));
        assert_eq!(b.tee, Tee::AzureTdx);
        denied(
            run(&b, &tdx_policy(""), CHALLENGE),
            Check::TdxCollateralMissing,
        );
    }
}

#[test]
fn tdx_negative_cases_are_each_denied_by_their_check() {
    // SOURCES.md: byte 0x880 += 1 → "TDX Quote report data mismatch".
    let mut b = tdx_set();
    b.evidence.0[0x880] += 1;
    let d = denied(run(&b, &tdx_policy(""), CHALLENGE), Check::AzureHclBinding);
    assert!(
        d.got
            .starts_with("the TD quote's REPORTDATA 9734504f161d104c"),
        "{d}"
    );
    // The TD quote: MRSEAM (body offset 16) altered → the quote signature.
    let mut b = tdx_set();
    b.tpm.as_mut().unwrap().td_quote.as_mut().unwrap().0[48 + 16] ^= 1;
    denied(run(&b, &tdx_policy(""), CHALLENGE), Check::TdxSignature);
    // Its MRTD altered: no longer the HCL report's TDREPORT.
    let mut b = tdx_set();
    b.tpm.as_mut().unwrap().td_quote.as_mut().unwrap().0[48 + 136] ^= 1;
    denied(run(&b, &tdx_policy(""), CHALLENGE), Check::AzureTdQuote);
    // The QE report (ISVSVN, 632 + 4 + 64 + 64 + 258) altered.
    let mut b = tdx_set();
    b.tpm.as_mut().unwrap().td_quote.as_mut().unwrap().0[632 + 4 + 128 + 2 + 4 + 258] ^= 1;
    denied(run(&b, &tdx_policy(""), CHALLENGE), Check::TdxQe);
    // After the PCK leaf's validity (2030-09-13).
    let after = appraisal::Appraiser::new().unwrap().appraise_azure(
        &tdx_set(),
        &tdx_policy(""),
        t("2031-01-01T00:00:00Z"),
        Some(AzureFreshness::Nonce(CHALLENGE)),
        &appraisal::Collateral::none(),
    );
    let d = denied(after, Check::TdxPckChain);
    assert!(d.got.contains("not at the verifier's time"), "{d}");
    // No TD quote at all.
    let mut b = tdx_set();
    b.tpm.as_mut().unwrap().td_quote = None;
    denied(run(&b, &tdx_policy(""), CHALLENGE), Check::AzureTdQuote);
    // A TDX report in an azure-snp bundle.
    let mut b = tdx_set();
    b.tee = Tee::AzureSnp;
    let p = snp_policy(HCL_MEASUREMENT, TDX_PCR0, "");
    denied(run(&b, &p, CHALLENGE), Check::AzureHclFormat);
}

#[test]
fn the_policy_gates_azure_evidence_and_its_hardware_kinds() {
    denied(
        run(&snp_set(), &policy(""), CHALLENGE),
        Check::AzureNotAllowed,
    );
    let d = denied(
        run(&snp_set(), &tdx_policy(""), CHALLENGE),
        Check::AzureNotAllowed,
    );
    assert!(d.want.contains("azure.snp.allowed"), "{d}");
    // A bare-metal [snp] section does not vouch for a paravisor's measurement.
    let p = policy(&format!(
        "[snp]\nallowed = true\nmeasurements = [\"{HCL_MEASUREMENT}\"]\n[azure]\nallowed = true\nuser_data_required = false\n[azure.pcrs]\n0 = [\"{HCL_PCR0}\"]\n[azure.snp]\nallowed = true\ncrl = \"if-present\"\nprovisional_firmware_allowed = true\n"
    ));
    denied(run(&snp_set(), &p, CHALLENGE), Check::SnpMeasurement);
    // A PCR other than the allowed value.
    let d = denied(
        run(
            &snp_set(),
            &snp_policy(HCL_MEASUREMENT, V0_PCR0, ""),
            CHALLENGE,
        ),
        Check::AzurePcr,
    );
    assert_eq!(d.got, format!("PCR0 {HCL_PCR0}"));
    // The [azure.snp] rules apply to the inner report: VMPL 0 only by default.
    let p = policy(&format!(
        "[azure]\nallowed = true\nuser_data_required = false\n[azure.pcrs]\n0 = [\"{HCL_PCR0}\"]\n[azure.snp]\nallowed = true\ncrl = \"if-present\"\nprovisional_firmware_allowed = true\nvmpls = [2]\nmeasurements = [\"{HCL_MEASUREMENT}\"]\n"
    ));
    denied(run(&snp_set(), &p, CHALLENGE), Check::SnpVmpl);
    // Azure evidence under a production policy that accepts plain SNP only.
    let plain = policy(&format!(
        "[snp]\nallowed = true\nmeasurements = [\"{HCL_MEASUREMENT}\"]\n"
    ));
    denied(run(&snp_set(), &plain, CHALLENGE), Check::AzureNotAllowed);
}

#[test]
fn malformed_quotes_and_keys_are_denied_precisely() {
    // No vTPM evidence.
    let mut b = snp_set();
    b.tpm = None;
    denied(snp_ok(&b), Check::AzureQuoteFormat);
    // RSAPSS instead of RSASSA.
    let mut b = snp_set();
    b.tpm.as_mut().unwrap().signature.0[1] = 0x16;
    let d = denied(snp_ok(&b), Check::AzureQuoteFormat);
    assert!(d.got.contains("RSAPSS"), "{d}");
    // An unknown signature algorithm.
    let mut b = snp_set();
    b.tpm.as_mut().unwrap().signature.0[1] = 0x99;
    let d = denied(snp_ok(&b), Check::AzureQuoteFormat);
    assert!(d.got.contains("TPMT_SIGNATURE.sigAlg"), "{d}");
    // A quote that is not a TPMS_ATTEST.
    let mut b = snp_set();
    b.tpm.as_mut().unwrap().quote.0.truncate(50);
    denied(snp_ok(&b), Check::AzureQuoteFormat);
    // 23 PCR values for a 24-PCR quote.
    let mut b = snp_set();
    b.tpm.as_mut().unwrap().pcrs.pop();
    denied(snp_ok(&b), Check::AzureQuotePcrSelection);
    // A truncated HCL report.
    let mut b = snp_set();
    b.evidence.0.truncate(2000);
    let d = denied(snp_ok(&b), Check::AzureHclFormat);
    assert!(d.got.contains("IGVM variable_data_size"), "{d}");
}

/// The fixture's HCL report with its variable data replaced (the binding then
/// fails, but the AK is read first).
fn with_var_data(edit: impl Fn(&mut serde_json::Value)) -> EvidenceBundle {
    with_var_data_as(edit, |v| serde_json::to_vec(v).unwrap())
}

fn with_var_data_as(
    edit: impl Fn(&mut serde_json::Value),
    write: impl Fn(&serde_json::Value) -> Vec<u8>,
) -> EvidenceBundle {
    let mut b = snp_set();
    let h = HclReport::parse(&b.evidence).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&h.variable_data).unwrap();
    edit(&mut v);
    let var = write(&v);
    let tee_formats::azure::HardwareReport::Snp(r) = &h.hardware_report else {
        panic!()
    };
    b.evidence.0 = HclReport::encode(1, h.report_type(), &r.to_bytes(), &var, 2600).unwrap();
    b
}

#[test]
fn attestation_keys_of_the_wrong_kind_or_size_are_refused() {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let mut n1024 = vec![0xffu8; 128];
    n1024[127] = 0xfb;
    for (edit, want) in [
        (
            Box::new(move |v: &mut serde_json::Value| v["keys"][0]["n"] = b64(&n1024).into())
                as Box<dyn Fn(&mut serde_json::Value)>,
            "1024-bit",
        ),
        (
            Box::new(|v: &mut serde_json::Value| v["keys"][0]["e"] = "Aw".into()),
            "exponent 3",
        ),
        (
            Box::new(|v: &mut serde_json::Value| v["keys"][0]["kty"] = "EC".into()),
            "kty \"EC\"",
        ),
        (
            Box::new(|v: &mut serde_json::Value| v["keys"][0]["kid"] = "Other".into()),
            "no key with kid",
        ),
        (
            Box::new(|v: &mut serde_json::Value| v["keys"][0]["n"] = "!!".into()),
            "not base64url",
        ),
        (
            Box::new(|v: &mut serde_json::Value| *v = serde_json::json!([1, 2])),
            "no keys[] array",
        ),
    ] {
        let d = denied(snp_ok(&with_var_data(edit)), Check::AzureAk);
        assert!(d.got.contains(want), "{want}: {d}");
    }
    // Unchanged, the re-encoded report still passes (the test edits nothing else).
    accepted(snp_ok(&with_var_data(|_| {})));
    // The same JSON content in other bytes (pretty-printed): the binding is
    // over the raw bytes, so it fails.
    denied(
        snp_ok(&with_var_data_as(
            |_| {},
            |v| serde_json::to_vec_pretty(v).unwrap(),
        )),
        Check::AzureHclBinding,
    );
}

#[test]
fn the_binding_freshness_rule_is_sha256_of_report_data() {
    // A REPORT_DATA whose SHA-256 is not "challenge": the nonce check names the rule.
    let rd = [7u8; 64];
    let d = appraisal::Appraiser::new()
        .unwrap()
        .appraise(
            &snp_set(),
            &snp_policy(HCL_MEASUREMENT, HCL_PCR0, ""),
            t(NOW),
            Some(&rd),
            &appraisal::Collateral::none(),
        )
        .unwrap_err();
    assert_eq!(d.check, Check::AzureQuoteNonce);
    assert_eq!(
        d.want,
        format!(
            "{} (SHA-256 of this session's REPORT_DATA binding)",
            appraisal::hex::encode(&appraisal::extra_data_for_binding(&rd))
        )
    );
    // Without expected REPORT_DATA (offline), freshness is not checked.
    accepted(appraisal::Appraiser::new().unwrap().appraise(
        &snp_set(),
        &snp_policy(HCL_MEASUREMENT, HCL_PCR0, ""),
        t(NOW),
        None,
        &appraisal::Collateral::none(),
    ));
}

/// The traced appraisal: its result, and its trace as `name:result` (and as is).
#[allow(clippy::type_complexity)]
fn traced(b: &EvidenceBundle, p: &Policy) -> (Result<Claims, Denial>, (Vec<String>, Trace)) {
    let (r, trace) = appraisal::Appraiser::new().unwrap().appraise_azure_traced(
        b,
        p,
        t(NOW),
        Some(AzureFreshness::Nonce(CHALLENGE)),
        &appraisal::Collateral::none(),
    );
    (r, (names(&trace), trace))
}

/// The SNP report inside (Milan, VCEK) passes exactly the checks of the
/// virtee Milan report's acceptance after its `snp.not_allowed` (Azure's
/// own gate ran); its REPORT_DATA is the HCL binding (checked as
/// `azure.hcl.binding`), so skipped there as in an offline appraisal.
const AZURE_SNP_INNER: &[&str] = SNP_ACCEPTED.split_at(1).1;

/// The `azure.*` checks of an accepted `azure-snp` appraisal, in the
/// order they run, before the SNP report's own.
const AZURE_SNP_PREFIX: &[&str] = &[
    "azure.not_allowed:pass",
    "azure.hcl.format:pass",
    "azure.ak:pass",
    "azure.hcl.binding:pass",
    "azure.td_quote:skip",
    "azure.quote.format:pass",
    "azure.quote.signature:pass",
    "azure.quote.nonce:pass",
    "azure.quote.pcr_selection:pass",
    "azure.quote.pcr_digest:pass",
    "azure.pcr:pass",
    "azure.user_data:pass",
];

/// The accepted prefix up to `check` (excluded), then `check` failed.
fn ends_at(accepted: &[&str], check: &str) -> Vec<String> {
    let at = accepted
        .iter()
        .position(|c| *c == format!("{check}:pass"))
        .unwrap();
    let mut want: Vec<String> = accepted[..at].iter().map(|s| s.to_string()).collect();
    want.push(format!("{check}:fail"));
    want
}

#[test]
fn an_azure_snp_trace_lists_every_check_once_in_order() {
    let (r, got) = traced(&snp_set(), &snp_policy(HCL_MEASUREMENT, HCL_PCR0, ""));
    consistent((r, got.1.clone())).unwrap();
    let want: Vec<&str> = AZURE_SNP_PREFIX
        .iter()
        .chain(AZURE_SNP_INNER)
        .copied()
        .collect();
    assert_eq!(got.0, want);
    // Why the inner REPORT_DATA check is skipped: the HCL binding holds it.
    let why = got.1.steps().last().map(|(_, o)| *o);
    assert_eq!(
        why,
        Some(Outcome::Skip(
            "Azure: REPORT_DATA binds the HCL variable data (azure.hcl.binding)"
        ))
    );
}

#[test]
fn an_azure_denial_ends_its_trace_at_its_failed_check() {
    let mut accepted: Vec<&str> = AZURE_SNP_PREFIX.to_vec();
    accepted.extend_from_slice(AZURE_SNP_INNER);
    // Another PCR0 pinned: the vTPM checks up to azure.pcr, no SNP work.
    let (r, got) = traced(&snp_set(), &snp_policy(HCL_MEASUREMENT, TDX_PCR0, ""));
    denied(consistent((r, got.1)), Check::AzurePcr);
    assert_eq!(got.0, ends_at(&accepted, "azure.pcr"));
    // A forged vTPM quote signature.
    let mut b = snp_set();
    let sig = &mut b.tpm.as_mut().unwrap().signature.0;
    let last = sig.len() - 1;
    sig[last] ^= 1;
    let (r, got) = traced(&b, &snp_policy(HCL_MEASUREMENT, HCL_PCR0, ""));
    denied(consistent((r, got.1)), Check::AzureQuoteSignature);
    assert_eq!(got.0, ends_at(&accepted, "azure.quote.signature"));
    // Another paravisor measurement: every Azure check, then the SNP ones
    // up to snp.measurement.
    let (r, got) = traced(&snp_set(), &snp_policy(V0_MEASUREMENT, HCL_PCR0, ""));
    denied(consistent((r, got.1)), Check::SnpMeasurement);
    assert_eq!(got.0, ends_at(&accepted, "snp.measurement"));
    // Azure TDX (no collateral in the capture): the Azure checks with the
    // TD quote's binding, then the TD quote's form and signature, then the
    // missing collateral.
    let (r, got) = traced(&tdx_set(), &tdx_policy(""));
    denied(consistent((r, got.1)), Check::TdxCollateralMissing);
    let mut want: Vec<String> = AZURE_SNP_PREFIX.iter().map(|s| s.to_string()).collect();
    want[4] = "azure.td_quote:pass".into();
    want.extend(
        [
            "tdx.quote.format:pass",
            "tdx.signature:pass",
            "tdx.collateral.missing:fail",
        ]
        .map(String::from),
    );
    assert_eq!(got.0, want);
}
