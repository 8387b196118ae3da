//! Every check name the verifier can put in a denial
//! ([`verifier::all_check_names`]: `appraisal::Check::ALL` and the service's
//! `SERVICE_CHECKS`) has a test that asserts that exact name on a denial,
//! or is in [`EXEMPT`] with the reason no real (or mutated real) evidence
//! reaches it.
//!
//! The matching is textual and deliberately simple. The test sources
//! (`src/appraisal/tests/*.rs` and `src/verifier/tests/*.rs`, not this file
//! and not the shared helpers in `common/`) are cut into statements at `;`.
//! A statement asserts a denial when it calls the appraisal tests' `denied(`
//! helper (which `assert_eq!`s the denial's check), is an `assert_eq!`
//! on a denial (`.check` or the service tests' `denied_check(`), or is an
//! `assert!` comparing a denial's check (`.check == `). In such a
//! statement, an appraisal check counts when its variant appears as the
//! token `Check::Variant` (not followed by another identifier character, so
//! `Check::TdxQe` is not `Check::TdxQeReport`), a service check when its
//! name appears as the string literal `"name"`.
//!
//! What this cannot see: whether the evidence is real. The appraisal tests
//! run on the fixtures of `shared/fixtures/SOURCES.md` (mutated where a
//! denial needs it) or on the simulation's own signed evidence; a new test
//! on hand-built bytes would count too, and review has to catch it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use appraisal::Check;

/// Checks that no real or mutated real evidence reaches, and why. Each one
/// is a visible gap; the test fails when one of them gets a test (remove it
/// from here then).
const EXEMPT: &[(&str, &str)] = &[
    (
        "tdx.module_identity",
        "needs a TDX module signer/attributes that the TCB info does not list: both are signed \
         (MRSIGNERSEAM/SEAMATTRIBUTES under the quote's attestation key, tdx.signature; the TCB \
         info under Intel's TCB signing key, tdx.collateral.signature), and no real quote with \
         collateral from an unlisted module is among the fixtures",
    ),
    (
        "tdx.td_attributes",
        "needs a TD with reserved, migratable or service-TD attributes, or SEPT_VE_DISABLE off, \
         with its collateral: TD_ATTRIBUTES are signed by the attestation key (a flip is \
         tdx.signature), and the one such quote (trustee tdx_quote_5.dat, a service TD) has no \
         collateral for its FMSPC 90c06f000000 (tdx.collateral.missing / tdx.collateral)",
    ),
    (
        "tdx.debug",
        "needs a debug TD's quote with its collateral: the only debug TD quote (trustee \
         tdx_quote_4.dat) has none for its FMSPC 50806f000000, and setting a DEBUG bit in the \
         dcap-qvl quote breaks its signature (tdx.signature)",
    ),
    (
        "tdx.advisory",
        "needs collateral whose matching TCB level lists advisory ids: the dcap-qvl quote's \
         level has none (UpToDate), the outdated quote matches no level (tdx.tcb_level), and \
         the TCB info is signed by Intel (an added id is tdx.collateral.signature)",
    ),
    (
        "tdx.component.kernel",
        "needs a quote with both its CC event log and its collateral: the one real quote with \
         a matching log (GCP COS-113, cloud/SOURCES.md) has no collateral for FMSPC \
         00806f050000, and the component checks run after the DCAP appraisal; \
         src/appraisal/src/tdx_image.rs tests them on that real log directly",
    ),
    (
        "tdx.component.initrd",
        "as tdx.component.kernel (no quote with log and collateral; tested on the real GCP \
         COS-113 log in src/appraisal/src/tdx_image.rs)",
    ),
    (
        "tdx.component.cmdline",
        "as tdx.component.kernel (no quote with log and collateral; tested on the real GCP \
         COS-113 log in src/appraisal/src/tdx_image.rs)",
    ),
    (
        "tdx.quote",
        "the fallback for a dcap-qvl refusal that the verifier does not classify: every \
         refusal that known evidence mutations provoke is classified under a precise name \
         (src/appraisal/src/tdx.rs `classify` and its unit tests)",
    ),
    (
        "internal",
        "a verifier bug (the claims struct not serializing to a JSON object); no evidence \
         can cause it",
    ),
];

/// The test sources scanned, sorted: every `.rs` directly in the two test
/// directories, except this file.
fn test_sources() -> Vec<(PathBuf, String)> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [here.join("../appraisal/tests"), here.join("tests")] {
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rs")
                && p.file_name()
                    .is_some_and(|n| n != "every_check_is_proven.rs")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    files
        .into_iter()
        .map(|p| {
            let s = std::fs::read_to_string(&p).unwrap();
            (p, s)
        })
        .collect()
}

/// The statements (text between `;`) that assert a denial.
fn denial_assertions(src: &str) -> Vec<&str> {
    src.split(';')
        .filter(|s| {
            s.contains("denied(")
                || (s.contains("assert_eq!")
                    && (s.contains(".check") || s.contains("denied_check(")))
                || (s.contains("assert!") && s.contains(".check == "))
        })
        .collect()
}

/// Does `stmt` hold `token` not followed by an identifier character?
fn has_token(stmt: &str, token: &str) -> bool {
    stmt.match_indices(token).any(|(i, _)| {
        !stmt[i + token.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Names in `verifier::all_check_names()` asserted by some statement.
fn asserted_names() -> BTreeSet<&'static str> {
    let sources = test_sources();
    let stmts: Vec<&str> = sources
        .iter()
        .flat_map(|(_, s)| denial_assertions(s))
        .collect();
    let mut names = BTreeSet::new();
    for c in Check::ALL {
        let token = format!("Check::{c:?}");
        if stmts.iter().any(|s| has_token(s, &token)) {
            names.insert(c.as_str());
        }
    }
    for &n in verifier::SERVICE_CHECKS {
        let lit = format!("\"{n}\"");
        if stmts.iter().any(|s| s.contains(&lit)) {
            names.insert(n);
        }
    }
    names
}

#[test]
fn every_check_name_has_a_test_asserting_it_on_a_denial() {
    let all = verifier::all_check_names();
    let asserted = asserted_names();
    let exempt: BTreeSet<&str> = EXEMPT.iter().map(|(n, _)| *n).collect();
    for n in &exempt {
        assert!(all.contains(n), "exempt {n:?} is no check name");
    }
    let missing: Vec<&str> = all
        .iter()
        .copied()
        .filter(|n| !asserted.contains(n) && !exempt.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} check name(s) with no test asserting them on a denial: {missing:?}",
        missing.len()
    );
    let stale: Vec<&str> = exempt
        .iter()
        .copied()
        .filter(|n| asserted.contains(n))
        .collect();
    assert!(
        stale.is_empty(),
        "exempt but now asserted by a test (remove from EXEMPT): {stale:?}"
    );
    eprintln!(
        "{} check names: {} asserted on a denial, {} exempt",
        all.len(),
        asserted.len(),
        exempt.len()
    );
}

/// The matcher itself: a test that names a check finds it, one that names a
/// longer check with the same prefix does not, and a statement that is not
/// a denial assertion does not count.
#[test]
fn the_matcher_finds_exact_names_only() {
    let src = "let d = denied(appraise(&b, &p, NOW), Check::TdxQeReport);\n\
               let x = Check::TdxQe;\n\
               assert_eq!(denied_check(&r), \"nonce.length\");";
    let stmts = denial_assertions(src);
    assert_eq!(stmts.len(), 2, "{stmts:?}");
    assert!(stmts.iter().any(|s| has_token(s, "Check::TdxQeReport")));
    assert!(!stmts.iter().any(|s| has_token(s, "Check::TdxQe")));
    assert!(stmts.iter().any(|s| s.contains("\"nonce.length\"")));
}
