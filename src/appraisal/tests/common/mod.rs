//! Shared helpers of the appraisal tests: fixture paths, bundles, policies.
#![allow(dead_code)]

use std::path::PathBuf;

use appraisal::{Appraiser, Check, Claims, Collateral, Denial, Policy};
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

/// Appraises with a fresh appraiser.
pub fn appraise(b: &EvidenceBundle, p: &Policy, now: &str) -> Result<Claims, Denial> {
    Appraiser::new()
        .unwrap()
        .appraise(b, p, t(now), None, &Collateral::none())
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
