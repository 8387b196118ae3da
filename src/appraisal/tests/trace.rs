//! The appraisal's trace ([`appraisal::Trace`]) on real evidence
//! (`$ENCLAVE_FIXTURES`): each check that ran, once, in the order it ran;
//! checks that did not apply are skipped with a reason; a denial ends at
//! its failed check. And the SEV-SNP order of work (issue 18): the report's
//! signature is checked before the chain is built, so a forged report costs
//! no chain verification.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use appraisal::{Appraiser, Check, Claims, Collateral, Denial, Outcome, Trace};
use common::*;
use wire::{EvidenceBundle, Tee};

const TDX_NOW: &str = "2025-06-19T11:32:27Z";
const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";

fn traced(
    a: &Appraiser,
    b: &EvidenceBundle,
    p: &appraisal::Policy,
    now: &str,
) -> (Result<Claims, Denial>, Trace) {
    a.appraise_traced(b, p, t(now), None, &Collateral::none())
}

fn tdx() -> (EvidenceBundle, appraisal::Policy) {
    let mut b = EvidenceBundle::new(Tee::Tdx, "test", read("tdx/dcap-qvl/tdx_quote"));
    b.tdx_collateral =
        Some(serde_json::from_slice(&read("tdx/dcap-qvl/tdx_quote_collateral.json")).unwrap());
    let p = policy(&format!(
        "[tdx]\nallowed = true\nmrtds = [\"{MRTD}\"]\nallow_unpinned_os = true\nmin_tcb_evaluation_data_number = 17\n"
    ));
    (b, p)
}

/// The dcap-qvl quote's acceptance: dcap-qvl's checks (one call) passed;
/// no event log and no component pins; an appliance image; offline.
const TDX_ACCEPTED: &[&str] = &[
    "tdx.not_allowed:pass",
    "tdx.quote.format:pass",
    "tdx.signature:pass",
    "tdx.collateral.missing:pass",
    "tdx.crl:pass",
    "tdx.collateral:pass",
    "tdx.collateral.expired:pass",
    "tdx.collateral_chain:pass",
    "tdx.collateral.signature:pass",
    "tdx.pck_chain:pass",
    "tdx.qe_report:pass",
    "tdx.qe:pass",
    "tdx.tcb_level:pass",
    "tdx.module_identity:pass",
    "tdx.td_attributes:pass",
    "tdx.tcb_status:pass",
    "tdx.advisory:pass",
    "tdx.tcb_evaluation_data_number:pass",
    "tdx.qe_svn:pass",
    "tdx.pce_svn:pass",
    "tdx.piid:pass",
    "tdx.debug:pass",
    "tdx.xfam:pass",
    "tdx.mr_seam:pass",
    "tdx.mrtd:pass",
    "tdx.rtmr0:pass",
    "tdx.rtmr1:pass",
    "tdx.rtmr2:pass",
    "tdx.rtmr3:pass",
    "tdx.component.kernel:skip",
    "tdx.component.initrd:skip",
    "tdx.component.cmdline:skip",
    "tdx.eventlog:skip",
    "tdx.eventlog.replay:skip",
    "coco.init_data:skip",
    "tdx.mr_config_id:pass",
    "tdx.mr_owner:pass",
    "tdx.mr_owner_config:pass",
    "report_data:skip",
];

/// Each check at most once; every skip says why; a fail only last.
#[track_caller]
fn well_formed(t: &Trace) {
    let mut seen = std::collections::HashSet::new();
    for (i, (c, o)) in t.steps().iter().enumerate() {
        assert!(seen.insert(*c), "{c} recorded twice: {:?}", names(t));
        match o {
            Outcome::Skip(why) => assert!(!why.is_empty(), "{c} skipped without a reason"),
            Outcome::Fail => assert_eq!(i + 1, t.steps().len(), "{c} failed before the end"),
            Outcome::Pass => {}
        }
    }
}

#[test]
fn an_accepted_snp_report_traces_each_check_once_in_order() {
    let a = Appraiser::new().unwrap();
    let (r, t) = traced(&a, &virtee(), &virtee_policy_with(""), SNP_NOW);
    r.unwrap();
    assert_eq!(names(&t), SNP_ACCEPTED);
    well_formed(&t);
    // Warm: the chain comes from the cache (verified for these bytes);
    // the trace is the same.
    let (r, t2) = traced(&a, &virtee(), &virtee_policy_with(""), SNP_NOW);
    r.unwrap();
    assert_eq!(t2, t);
    assert_eq!(a.snp_chains_verified(), 1);
}

#[test]
fn an_accepted_tdx_quote_traces_each_check_once_in_order() {
    let a = Appraiser::new().unwrap();
    let (b, p) = tdx();
    let (r, t) = traced(&a, &b, &p, TDX_NOW);
    r.unwrap();
    assert_eq!(names(&t), TDX_ACCEPTED);
    well_formed(&t);
}

#[test]
fn a_denial_ends_at_its_failed_check_with_nothing_after() {
    let a = Appraiser::new().unwrap();
    // Another measurement pinned: everything up to snp.measurement ran as
    // in the acceptance, then it failed.
    let other = policy(&format!(
        "[snp]\nallowed = true\ncrl = \"if-present\"\nmeasurements = [\"{}\"]\n",
        "00".repeat(48)
    ));
    let (r, t) = traced(&a, &virtee(), &other, SNP_NOW);
    assert_eq!(r.unwrap_err().check, Check::SnpMeasurement);
    let at = SNP_ACCEPTED
        .iter()
        .position(|c| *c == "snp.measurement:pass")
        .unwrap();
    let mut want: Vec<String> = SNP_ACCEPTED[..at].iter().map(|s| s.to_string()).collect();
    want.push("snp.measurement:fail".into());
    assert_eq!(names(&t), want);
    well_formed(&t);
    // TDX: another MRTD.
    let (b, _) = tdx();
    let p = policy(&format!(
        "[tdx]\nallowed = true\nmrtds = [\"{}\"]\nallow_unpinned_os = true\nmin_tcb_evaluation_data_number = 17\n",
        "00".repeat(48)
    ));
    let (r, t) = traced(&a, &b, &p, TDX_NOW);
    assert_eq!(r.unwrap_err().check, Check::TdxMrtd);
    let at = TDX_ACCEPTED
        .iter()
        .position(|c| *c == "tdx.mrtd:pass")
        .unwrap();
    let mut want: Vec<String> = TDX_ACCEPTED[..at].iter().map(|s| s.to_string()).collect();
    want.push("tdx.mrtd:fail".into());
    assert_eq!(names(&t), want);
}

/// Issue 18: a report whose signature does not verify is denied by
/// `snp.signature` before any chain work: the trace has no chain check and
/// the appraiser verified no chain. The genuine report then builds the
/// chain once, and the warm cache serves it after.
#[test]
fn a_forged_snp_signature_is_denied_before_any_chain_is_built() {
    let a = Appraiser::new().unwrap();
    let mut b = virtee();
    b.evidence.0[0x2a0] ^= 0x01; // SIGNATURE.R, first byte
    let (r, t) = traced(&a, &b, &virtee_policy_with(""), SNP_NOW);
    assert_eq!(r.unwrap_err().check, Check::SnpSignature);
    assert_eq!(
        t.steps().last(),
        Some(&(Check::SnpSignature, Outcome::Fail))
    );
    assert!(
        !names(&t)
            .iter()
            .any(|n| n.starts_with("snp.chain.") || n.starts_with("snp.cert.")),
        "{:?}",
        names(&t)
    );
    assert_eq!(a.snp_chains_verified(), 0);
    // A signed field changed (CURRENT_TCB): the same, only the signature can tell.
    let mut b = virtee();
    b.evidence.0[0x3f] ^= 0x01;
    let (r, _) = traced(&a, &b, &virtee_policy_with(""), SNP_NOW);
    assert_eq!(r.unwrap_err().check, Check::SnpSignature);
    assert_eq!(a.snp_chains_verified(), 0);
    traced(&a, &virtee(), &virtee_policy_with(""), SNP_NOW)
        .0
        .unwrap();
    assert_eq!(a.snp_chains_verified(), 1);
    // Once the chain is cached, a forged report is still denied by its
    // signature (checked with the cached key) and builds nothing.
    let mut b = virtee();
    b.evidence.0[0x2a0] ^= 0x01;
    let (r, t) = traced(&a, &b, &virtee_policy_with(""), SNP_NOW);
    assert_eq!(r.unwrap_err().check, Check::SnpSignature);
    assert_eq!(
        t.steps().last(),
        Some(&(Check::SnpSignature, Outcome::Fail))
    );
    assert_eq!(a.snp_chains_verified(), 1);
}

/// Issue 18: a TDX quote whose own signature does not verify is denied by
/// `tdx.signature` right after its form, before any CRL, collateral, PCK
/// chain or QE report work: the trace is exactly those two checks (after
/// the TEE gate). A signed body field changed (MRSEAM) is the same.
#[test]
fn a_forged_tdx_quote_signature_is_denied_before_any_chain_work() {
    let a = Appraiser::new().unwrap();
    let (b, p) = tdx();
    let q = tee_formats::tdx::ReceivedQuote::parse(&b.evidence.0).unwrap();
    // The signature data: its 4-byte length, then the signature (r ‖ s).
    let sig_at = q.signed_bytes().len() + 4;
    let want = [
        "tdx.not_allowed:pass",
        "tdx.quote.format:pass",
        "tdx.signature:fail",
    ];
    for (what, off) in [
        ("signature r", sig_at),
        ("signature s", sig_at + 63),
        ("MRSEAM", 48 + 16),
    ] {
        let mut forged = b.clone();
        forged.evidence.0[off] ^= 0x01;
        let (r, t) = traced(&a, &forged, &p, TDX_NOW);
        let d = r.unwrap_err();
        assert_eq!(d.check, Check::TdxSignature, "{what}: {d}");
        assert_eq!(names(&t), want, "{what}");
        well_formed(&t);
    }
}

/// No denial escapes the trace: over a corpus of one-byte changes to the
/// real SNP report, its VCEK and the TDX quote, every denial is the
/// trace's last entry, as `fail`, and the trace is well formed. A check
/// site that denied without recording would leave the trace ending
/// elsewhere.
#[test]
fn every_denial_is_the_last_entry_of_its_trace() {
    let a = Appraiser::new().unwrap();
    let mut denied_by = std::collections::BTreeSet::new();
    let mut check = |b: &EvidenceBundle, p: &appraisal::Policy, now: &str, what: &str| {
        let (r, t) = traced(&a, b, p, now);
        well_formed(&t);
        match r {
            Err(d) => {
                assert_eq!(
                    t.steps().last(),
                    Some(&(d.check, Outcome::Fail)),
                    "{what}: {d}: {:?}",
                    names(&t)
                );
                denied_by.insert(d.check.as_str());
            }
            Ok(_) => assert!(
                !t.steps().iter().any(|(_, o)| *o == Outcome::Fail),
                "{what}"
            ),
        }
    };
    let snp_policy = virtee_policy_with("");
    let report_len = virtee().evidence.0.len();
    for off in (0..report_len).step_by(5) {
        let mut b = virtee();
        b.evidence.0[off] ^= 0x01;
        check(&b, &snp_policy, SNP_NOW, &format!("report byte {off:#x}"));
    }
    let mut b = virtee();
    b.evidence.0.truncate(100);
    check(&b, &snp_policy, SNP_NOW, "short report");
    let vek_len = virtee().certificates[0].der.0.len();
    for off in (0..vek_len).step_by(23) {
        let mut b = virtee();
        b.certificates[0].der.0[off] ^= 0x01;
        check(&b, &snp_policy, SNP_NOW, &format!("VCEK byte {off}"));
    }
    let mut b = virtee();
    b.certificates.clear();
    check(&b, &snp_policy, SNP_NOW, "no VCEK");
    check(
        &virtee(),
        &snp_policy,
        "2040-01-01T00:00:00Z",
        "expired VCEK",
    );
    let require = policy(&format!(
        "[snp]\nallowed = true\ncrl = \"require\"\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n"
    ));
    check(&virtee(), &require, SNP_NOW, "CRL required");
    let (tdx_b, tdx_p) = tdx();
    let quote_len = tdx_b.evidence.0.len();
    for off in (0..quote_len).step_by(97) {
        let mut b = tdx_b.clone();
        b.evidence.0[off] ^= 0x01;
        check(&b, &tdx_p, TDX_NOW, &format!("quote byte {off}"));
    }
    let mut b = tdx_b.clone();
    b.tdx_collateral = None;
    check(&b, &tdx_p, TDX_NOW, "no collateral");
    check(&tdx_b, &tdx_p, "2030-01-01T00:00:00Z", "collateral expired");
    assert!(denied_by.len() >= 12, "{denied_by:?}");
    println!("{} checks denied: {denied_by:?}", denied_by.len());
}
