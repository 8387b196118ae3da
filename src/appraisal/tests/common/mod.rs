//! Shared helpers of the appraisal tests: fixture paths, bundles, policies.
#![allow(dead_code)]

use std::path::PathBuf;

use appraisal::{Appraiser, Check, Claims, Collateral, Denial, Outcome, Policy, Trace};
use wire::{Bytes, CertKind, Certificate, EvidenceBundle, Tee};

/// `shared/fixtures`, or `$ENCLAVE_FIXTURES`.
pub fn fixtures() -> PathBuf {
    std::env::var_os("ENCLAVE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        })
}

/// Bytes of a fixture file.
pub fn read(rel: &str) -> Vec<u8> {
    let p = fixtures().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Unix time of an RFC 3339 instant.
pub fn t(s: &str) -> i64 {
    appraisal::parse_rfc3339(s).unwrap()
}

/// An SNP bundle of a report and its endorsement key.
pub fn snp_bundle(report: &str, vek: &str, kind: CertKind) -> EvidenceBundle {
    let mut b = EvidenceBundle::new(Tee::Snp, "test", read(report));
    b.certificates.push(Certificate {
        kind,
        der: Bytes(read(vek)),
    });
    b
}

/// The virtee Milan v2 report with its VCEK.
pub fn virtee() -> EvidenceBundle {
    snp_bundle(
        "snp/milan-v2-virtee/report.bin",
        "snp/milan-v2-virtee/vcek.der",
        CertKind::Vcek,
    )
}

/// A time at which every SNP fixture certificate is valid (before the VLEK's expiry).
pub const SNP_NOW: &str = "2025-06-01T00:00:00Z";

/// Measurement of the virtee report.
pub const VIRTEE_MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";

/// A policy from TOML text. A policy must name its minimum TCB
/// (`Policy::from_toml` refuses it otherwise; `policy_refusals` tests that):
/// where the text has an `[snp]` or `[tdx]` section without one, the
/// explicit "any TCB" value is added (zeros), so that tests about other
/// checks stay short.
pub fn policy(toml: &str) -> Policy {
    let mut text = toml.to_owned();
    if text.contains("[snp]\n") && !text.contains("min_reported_tcb") {
        text = text.replacen(
            "[snp]\n",
            "[snp]\nmin_reported_tcb = { bootloader = 0 }\n",
            1,
        );
    }
    if text.contains("[tdx]\n") && !text.contains("min_tcb_evaluation_data_number") {
        text = text.replacen("[tdx]\n", "[tdx]\nmin_tcb_evaluation_data_number = 0\n", 1);
    }
    Policy::from_toml(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

/// Policy accepting the virtee report (no CRL exists publicly, so `if-present`).
pub fn virtee_policy_with(extra: &str) -> Policy {
    policy(&format!(
        "[snp]\nallowed = true\ncrl = \"if-present\"\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n{extra}"
    ))
}

/// Appraises with a fresh appraiser (traced, see [`consistent`]).
pub fn appraise(b: &EvidenceBundle, p: &Policy, now: &str) -> Result<Claims, Denial> {
    consistent(
        Appraiser::new()
            .unwrap()
            .appraise_traced(b, p, t(now), None, &Collateral::none()),
    )
}

/// The result of a traced appraisal, after asserting that its trace agrees
/// with it: a denial is the trace's last entry, as `fail`; an acceptance
/// has no `fail`; no check is recorded twice. Every appraisal test goes
/// through it, so a check site that denies without recording (or records
/// a check twice) fails the test that proves its denial.
#[track_caller]
pub fn consistent((r, trace): (Result<Claims, Denial>, Trace)) -> Result<Claims, Denial> {
    let steps = trace.steps();
    let mut seen = std::collections::HashSet::new();
    for (c, _) in steps {
        assert!(seen.insert(*c), "{c} recorded twice: {steps:?}");
    }
    let fails = steps.iter().filter(|(_, o)| *o == Outcome::Fail).count();
    match &r {
        Ok(_) => assert_eq!(fails, 0, "accepted with a failed check: {steps:?}"),
        Err(d) => {
            assert_eq!(
                steps.last(),
                Some(&(d.check, Outcome::Fail)),
                "{d}: {steps:?}"
            );
            assert_eq!(fails, 1, "{steps:?}");
        }
    }
    r
}

/// Asserts a denial by `check` and returns it.
#[track_caller]
pub fn denied(r: Result<Claims, Denial>, check: Check) -> Denial {
    match r {
        Ok(c) => panic!("accepted, expected {check}: {c:?}"),
        Err(d) => {
            assert_eq!(d.check, check, "{d}");
            d
        }
    }
}

/// Asserts acceptance.
#[track_caller]
pub fn accepted(r: Result<Claims, Denial>) -> Claims {
    r.unwrap_or_else(|d| panic!("denied: {d}"))
}
pub mod sim;

/// `name:result` per step, for exact comparison.
pub fn names(t: &Trace) -> Vec<String> {
    t.steps()
        .iter()
        .map(|(c, o)| format!("{c}:{}", o.as_str()))
        .collect()
}

/// The checks of the virtee Milan report's acceptance under
/// `virtee_policy_with("")`: the report against its VCEK (product, TCB,
/// chip id, signature) before the chain; no CRL under `if-present`; a VCEK,
/// so the VLEK's check does not apply; an appliance image; offline, so no
/// session binding.
pub const SNP_ACCEPTED: &[&str] = &[
    "snp.not_allowed:pass",
    "snp.report.format:pass",
    "snp.report.version:pass",
    "snp.signature_algo:pass",
    "snp.signer:pass",
    "snp.vek.missing:pass",
    "snp.product:pass",
    "snp.vcek.tcb:pass",
    "snp.vcek.chip_id:pass",
    "snp.vlek.csp_id:skip",
    "snp.signature:pass",
    "snp.cert.form:pass",
    "snp.chain.ark:pass",
    "snp.chain.intermediate:pass",
    "snp.chain.vek:pass",
    "snp.cert.validity:pass",
    "snp.crl.unavailable:skip",
    "snp.crl.invalid:skip",
    "snp.crl.revoked:skip",
    "snp.tcb.current:pass",
    "snp.tcb.reported:pass",
    "snp.tcb.launch:pass",
    "snp.tcb.committed:pass",
    "snp.firmware:pass",
    "snp.policy.reserved:pass",
    "snp.policy.abi:pass",
    "snp.policy.debug:pass",
    "snp.policy.migrate_ma:pass",
    "snp.policy.smt:pass",
    "snp.policy.single_socket:pass",
    "snp.policy.cxl:pass",
    "snp.policy.mem_aes_256_xts:pass",
    "snp.policy.rapl_dis:pass",
    "snp.policy.ciphertext_hiding:pass",
    "snp.policy.page_swap_disable:pass",
    "snp.platform.reserved:pass",
    "snp.platform.smt:pass",
    "snp.platform.tsme:pass",
    "snp.platform.ecc:pass",
    "snp.platform.alias_check:pass",
    "snp.platform.ciphertext_hiding:pass",
    "snp.vmpl:pass",
    "snp.guest_svn:pass",
    "snp.report_id_ma:pass",
    "snp.measurement:pass",
    "coco.init_data:skip",
    "snp.host_data:pass",
    "snp.chip_id:pass",
    "snp.id_key_digest:pass",
    "snp.family_id:pass",
    "snp.image_id:pass",
    "snp.mitigations:pass",
    "report_data:skip",
];
