//! Issue 17 item 4 and the collateral precedence, on real (or mutated real)
//! evidence: each denial with its check name and words of our own (no
//! library internals), and the verifier's collateral winning over the
//! host's.
//!
//! Fixtures: `tdx/dcap-qvl/tdx_quote` + `tdx_quote_collateral.json` at
//! 2025-06-19T11:32:27Z (shared/fixtures/SOURCES.md: UpToDate), the Milan
//! VCEK report of `snp/milan-v2-virtee`, and the real AMD Milan CRL of
//! `src/collateral/tests/data/amd-crl` (its README: issued by ARK-Milan,
//! valid 2025-05-06T12:39:06Z .. 2026-05-12T00:00:00Z, revokes nothing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use appraisal::collateral::{IssuedCrl, Piece, SignedJson, TdxCollateral};
use appraisal::{Appraiser, Check, Claims, Collateral, Denial, Source};
use common::*;
use serde_json::Value;
use wire::{EvidenceBundle, Tee};

const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
const NOW: &str = "2025-06-19T11:32:27Z";

fn tdx_policy() -> appraisal::Policy {
    policy(&format!(
        "[tdx]\nallowed = true\nmin_tcb_evaluation_data_number = 17\nmrtds = [\"{MRTD}\"]\nallow_unpinned_os = true\n"
    ))
}

fn collateral_json() -> Value {
    serde_json::from_slice(&read("tdx/dcap-qvl/tdx_quote_collateral.json")).unwrap()
}

fn tdx_bundle(collateral: Option<Value>) -> EvidenceBundle {
    let mut b = EvidenceBundle::new(Tee::Tdx, "test", read("tdx/dcap-qvl/tdx_quote"));
    b.tdx_collateral = collateral;
    b
}

fn unhex(v: &Value) -> Vec<u8> {
    appraisal::hex::decode(v.as_str().unwrap()).unwrap()
}

/// The fixture collateral as the verifier would hold it (from its cache).
fn verifier_tdx(c: &Value, source: Source) -> Collateral {
    let s = |k: &str| c[k].as_str().unwrap().to_owned();
    Collateral {
        tdx: TdxCollateral {
            tcb_info: Some(Piece::new(
                SignedJson {
                    json: s("tcb_info"),
                    signature: unhex(&c["tcb_info_signature"]),
                    issuer_chain: s("tcb_info_issuer_chain"),
                },
                source,
            )),
            qe_identity: Some(Piece::new(
                SignedJson {
                    json: s("qe_identity"),
                    signature: unhex(&c["qe_identity_signature"]),
                    issuer_chain: s("qe_identity_issuer_chain"),
                },
                source,
            )),
            pck_crl: Some(Piece::new(
                IssuedCrl {
                    der: unhex(&c["pck_crl"]),
                    issuer_chain: s("pck_crl_issuer_chain"),
                },
                source,
            )),
            root_ca_crl: Some(Piece::new(unhex(&c["root_ca_crl"]), source)),
        },
        ..Collateral::default()
    }
}

fn run(b: &EvidenceBundle, p: &appraisal::Policy, c: &Collateral) -> Result<Claims, Denial> {
    consistent(
        Appraiser::new()
            .unwrap()
            .appraise_traced(b, p, t(NOW), None, c),
    )
}

/// No denial may carry a library's wording (dcap-qvl, anyhow, webpki, der).
#[track_caller]
fn own_words(d: &Denial) {
    let text = d.to_string();
    for leak in [
        "Failed to",
        "quote_collateral",
        "Fmspc mismatch",
        "anyhow",
        "UnknownIssuer",
        "BadSignature",
        "CrlExpired",
        "Signature is invalid",
        "TCBInfo",
    ] {
        assert!(!text.contains(leak), "library text {leak:?} leaked: {text}");
    }
}

/// PEM certificates → DER.
fn pem_ders(pem: &str) -> Vec<Vec<u8>> {
    pem.split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| {
            let start = b.find("-----BEGIN").unwrap();
            der::pem::decode_vec(&b.as_bytes()[start..]).unwrap().1
        })
        .collect()
}

fn to_pem(ders: &[Vec<u8>]) -> String {
    ders.iter()
        .map(|d| der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, d).unwrap())
        .collect()
}

#[test]
fn a_bad_qe_report_signature_is_tdx_qe_report() {
    // tee-formats' layout: v4 quote, header 48 + body 584 + u32 sig len 4 +
    // signature 64 + attestation key 64 + u16 type + u32 size = 832: the QE
    // report (384 bytes), then its signature.
    let mut b = tdx_bundle(Some(collateral_json()));
    let sig = 48 + 584 + 4 + 64 + 64 + 6 + 384;
    b.evidence.0[sig + 10] ^= 0x01;
    let d = denied(
        run(&b, &tdx_policy(), &Collateral::none()),
        Check::TdxQeReport,
    );
    assert_eq!(d.check.as_str(), "tdx.qe_report");
    assert!(d.got.contains("QE report signature does not verify"), "{d}");
    own_words(&d);
    // A changed QE report byte (its ISVSVN) breaks the same signature.
    let mut b = tdx_bundle(Some(collateral_json()));
    b.evidence.0[48 + 584 + 4 + 128 + 6 + 258] ^= 0x01;
    denied(
        run(&b, &tdx_policy(), &Collateral::none()),
        Check::TdxQeReport,
    );
}

#[test]
fn tcb_info_and_qe_identity_chain_problems_are_tdx_collateral_chain() {
    for (field, name) in [
        ("tcb_info_issuer_chain", "TCB info"),
        ("qe_identity_issuer_chain", "QE identity"),
    ] {
        // The signing certificate's own signature (its last byte) broken.
        let mut c = collateral_json();
        let mut ders = pem_ders(c[field].as_str().unwrap());
        let last = ders[0].len() - 1;
        ders[0][last] ^= 0x01;
        c[field] = Value::String(to_pem(&ders));
        let d = denied(
            run(&tdx_bundle(Some(c)), &tdx_policy(), &Collateral::none()),
            Check::TdxCollateralChain,
        );
        assert_eq!(d.check.as_str(), "tdx.collateral_chain");
        assert!(d.got.starts_with(&format!("{name} signing chain: ")), "{d}");
        assert!(d.got.contains("does not verify"), "{d}");
        own_words(&d);
        // A signer that is not issued by the root: the PCK Platform CA's
        // chain is Intel's, but the quote's PCK leaf is not a TCB signer.
        let mut c = collateral_json();
        let pck_leaf = pem_ders(
            &String::from_utf8_lossy(&read("tdx/dcap-qvl/tdx_quote")[..])
                .chars()
                .collect::<String>(),
        );
        assert!(!pck_leaf.is_empty());
        c[field] = Value::String(to_pem(&pck_leaf[..1]));
        let d = denied(
            run(&tdx_bundle(Some(c)), &tdx_policy(), &Collateral::none()),
            Check::TdxCollateralChain,
        );
        assert!(
            d.got.contains("is not issued by \"Intel SGX Root CA\""),
            "{d}"
        );
        own_words(&d);
    }
    // The chain is fine but the document was changed: a signature problem,
    // not a chain problem.
    let mut c = collateral_json();
    let mut sig = unhex(&c["qe_identity_signature"]);
    sig[0] ^= 1;
    c["qe_identity_signature"] = Value::String(appraisal::hex::encode(&sig));
    let d = denied(
        run(&tdx_bundle(Some(c)), &tdx_policy(), &Collateral::none()),
        Check::TdxCollateralSignature,
    );
    assert!(
        d.got.contains("QE identity signature does not verify"),
        "{d}"
    );
}

#[test]
fn the_quotes_pck_chain_is_compared_with_the_collaterals() {
    // The collateral's PCK CRL issuer chain starts with another CA
    // certificate than the one that issued the quote's PCK.
    let mut c = collateral_json();
    let tcb_chain = pem_ders(c["tcb_info_issuer_chain"].as_str().unwrap());
    let mut pck_chain = pem_ders(c["pck_crl_issuer_chain"].as_str().unwrap());
    pck_chain[0] = tcb_chain[0].clone();
    c["pck_crl_issuer_chain"] = Value::String(to_pem(&pck_chain));
    let d = denied(
        run(&tdx_bundle(Some(c)), &tdx_policy(), &Collateral::none()),
        Check::TdxPckChain,
    );
    assert!(
        d.got
            .contains("differs from the one in the collateral's PCK CRL issuer chain"),
        "{d}"
    );
    own_words(&d);
    // A PCK CRL from another CA (the root's CRL in its place): the PCK's
    // revocation would not be checked.
    let mut c = collateral_json();
    c["pck_crl"] = c["root_ca_crl"].clone();
    let d = denied(
        run(&tdx_bundle(Some(c)), &tdx_policy(), &Collateral::none()),
        Check::TdxPckChain,
    );
    assert!(
        d.got.contains("the quote's PCK is issued by \"Intel SGX PCK Platform CA\", the collateral's PCK CRL by \"Intel SGX Root CA\""),
        "{d}"
    );
    assert!(d.hint.contains("ca=platform"), "{d}");
    own_words(&d);
}

#[test]
fn trailing_bytes_after_a_quote_are_refused_unless_zero_padding() {
    // The fixture: signature data ends at 4936, then 70 zero bytes (SOURCES.md).
    let b = tdx_bundle(Some(collateral_json()));
    assert_eq!(b.evidence.len(), 5006);
    accepted(run(&b, &tdx_policy(), &Collateral::none()));
    let mut b = tdx_bundle(Some(collateral_json()));
    b.evidence.0[5005] = 0x01;
    let d = denied(
        run(&b, &tdx_policy(), &Collateral::none()),
        Check::TdxQuoteFormat,
    );
    assert!(
        d.got.contains("70 bytes after the signature data (which ends at offset 4936); byte at offset 5005 is 0x01"),
        "{d}"
    );
    let mut b = tdx_bundle(Some(collateral_json()));
    b.evidence.0.truncate(4936);
    b.evidence.0.extend_from_slice(b"smuggled");
    let d = denied(
        run(&b, &tdx_policy(), &Collateral::none()),
        Check::TdxQuoteFormat,
    );
    assert!(d.got.contains("8 bytes after the signature data"), "{d}");
    // Truncated: a format error in our parser's words.
    let mut b = tdx_bundle(Some(collateral_json()));
    b.evidence.0.truncate(1000);
    let d = denied(
        run(&b, &tdx_policy(), &Collateral::none()),
        Check::TdxQuoteFormat,
    );
    assert!(d.got.starts_with("not a well-formed TDX quote: "), "{d}");
    own_words(&d);
}

#[test]
fn the_verifiers_tdx_collateral_is_used_and_named() {
    // No collateral in the bundle at all: the verifier's (from its cache).
    let c = verifier_tdx(&collateral_json(), Source::Cache);
    let claims = accepted(run(&tdx_bundle(None), &tdx_policy(), &c));
    let j = serde_json::to_value(&claims).unwrap();
    assert_eq!(
        j["collateral"],
        serde_json::json!({"sources": {"tcb_info": "cache", "qe_identity": "cache", "pck_crl": "cache", "root_ca_crl": "cache"}, "revocation_checked": true})
    );
    assert_eq!(j["tcb"]["fmspc"], "b0c06f000000");
    assert_eq!(j["tcb"]["components"]["pce_svn"], 11);
    assert_eq!(
        j["tcb"]["components"]["tdx"],
        "06010300000000000000000000000000"
    );
    // The same documents from the host too: a tie goes to the verifier.
    let claims = accepted(run(&tdx_bundle(Some(collateral_json())), &tdx_policy(), &c));
    assert_eq!(
        serde_json::to_value(&claims).unwrap()["collateral"]["sources"]["tcb_info"],
        "cache"
    );
    // Without the verifier's: the host's, and the claims say so.
    let claims = accepted(run(
        &tdx_bundle(Some(collateral_json())),
        &tdx_policy(),
        &Collateral::none(),
    ));
    assert_eq!(
        serde_json::to_value(&claims).unwrap()["collateral"]["sources"]["pck_crl"],
        "bundle"
    );
}

#[test]
fn host_collateral_that_is_older_or_does_not_verify_is_ignored() {
    let c = verifier_tdx(&collateral_json(), Source::Fetched);
    // Older: the host's TCB info claims an earlier issueDate (and so no
    // longer verifies; being older, it is not even tried).
    let mut host = collateral_json();
    let older = host["tcb_info"]
        .as_str()
        .unwrap()
        .replace("2025-06-19T10:16:03Z", "2025-06-01T10:16:03Z");
    host["tcb_info"] = Value::String(older);
    let claims = accepted(run(&tdx_bundle(Some(host)), &tdx_policy(), &c));
    assert_eq!(
        serde_json::to_value(&claims).unwrap()["collateral"]["sources"]["tcb_info"],
        "fetched"
    );
    // "Newer" but forged: a higher tcbEvaluationDataNumber that Intel did
    // not sign. It is tried, refused, and the verifier's own is used.
    let mut host = collateral_json();
    let newer = host["tcb_info"].as_str().unwrap().replace(
        "\"tcbEvaluationDataNumber\":17",
        "\"tcbEvaluationDataNumber\":99",
    );
    host["tcb_info"] = Value::String(newer);
    let claims = accepted(run(&tdx_bundle(Some(host.clone())), &tdx_policy(), &c));
    assert_eq!(
        serde_json::to_value(&claims).unwrap()["collateral"]["sources"]["tcb_info"],
        "fetched"
    );
    // Without the verifier's own, that forged document is denied.
    denied(
        run(&tdx_bundle(Some(host)), &tdx_policy(), &Collateral::none()),
        Check::TdxCollateralSignature,
    );
    // Malformed host collateral is ignored when the verifier has a set.
    let claims = accepted(run(
        &tdx_bundle(Some(serde_json::json!({"tcb_info": 1}))),
        &tdx_policy(),
        &c,
    ));
    assert_eq!(
        serde_json::to_value(&claims).unwrap()["collateral"]["sources"]["qe_identity"],
        "fetched"
    );
}

#[test]
fn missing_tdx_collateral_names_what_the_verifier_could_not_get() {
    let mut c = Collateral::none();
    c.problems
        .push("TCB info: PCS answered 429 (retry after 30 s)".into());
    let d = denied(
        run(&tdx_bundle(None), &tdx_policy(), &c),
        Check::TdxCollateralMissing,
    );
    assert!(d.got.contains("no tcb_info"), "{d}");
    assert!(d.got.contains("PCS answered 429"), "{d}");
    assert!(d.hint.contains("--pcs-url"), "{d}");
}

// ---- SEV-SNP: the verifier's VCEK and CRL -----------------------------------

fn milan_crl() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../collateral/tests/data/amd-crl/milan.crl"
    ))
    .unwrap()
}

fn genoa_crl() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../collateral/tests/data/amd-crl/genoa.crl"
    ))
    .unwrap()
}

fn strict_snp() -> appraisal::Policy {
    policy(&format!(
        "[snp]\nallowed = true\nmin_reported_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }}\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n"
    ))
}

#[test]
fn the_real_milan_crl_checks_revocation_of_real_evidence() {
    // With crl = "require" (the default) and no CRL anywhere: denied, and
    // the hint names the flags and the policy key.
    let d = denied(
        run(&virtee(), &strict_snp(), &Collateral::none()),
        Check::SnpCrlUnavailable,
    );
    assert!(
        d.hint.contains("--kds-url") && d.hint.contains("snp.crl"),
        "{d}"
    );
    // The verifier's CRL (from its cache): accepted, revocation checked.
    let c = Collateral {
        snp_crl: Some(Piece::new(milan_crl(), Source::Cache)),
        ..Collateral::default()
    };
    let claims = accepted(run(&virtee(), &strict_snp(), &c));
    let j = serde_json::to_value(&claims).unwrap();
    assert_eq!(
        j["collateral"],
        serde_json::json!({"sources": {"vcek": "bundle", "crl": "cache"}, "revocation_checked": true})
    );
    assert_eq!(j["relaxations"], serde_json::json!([]));
    // The same CRL from the host: a tie goes to the verifier; host garbage
    // next to the verifier's CRL is ignored.
    let mut b = virtee();
    b.crls.push(wire::Bytes(milan_crl()));
    b.crls.push(wire::Bytes(b"not a CRL".to_vec()));
    let claims = accepted(run(&b, &strict_snp(), &c));
    assert_eq!(
        serde_json::to_value(&claims).unwrap()["collateral"]["sources"]["crl"],
        "cache"
    );
    // Only the host's: used, and named.
    let mut b = virtee();
    b.crls.push(wire::Bytes(milan_crl()));
    let claims = accepted(run(&b, &strict_snp(), &Collateral::none()));
    assert_eq!(
        serde_json::to_value(&claims).unwrap()["collateral"]["sources"]["crl"],
        "bundle"
    );
    // The verifier's VCEK replaces the host's (here: the host sends none).
    let mut b = virtee();
    let vcek = b.certificates.remove(0).der.0;
    let c = Collateral {
        snp_vcek: Some(Piece::new(vcek, Source::Fetched)),
        snp_crl: Some(Piece::new(milan_crl(), Source::Fetched)),
        ..Collateral::default()
    };
    let claims = accepted(run(&b, &strict_snp(), &c));
    assert_eq!(
        serde_json::to_value(&claims).unwrap()["collateral"]["sources"],
        serde_json::json!({"vcek": "fetched", "crl": "fetched"})
    );
    // After the CRL's nextUpdate (2026-05-12T00:00:00Z): not current.
    let late =
        Appraiser::new()
            .unwrap()
            .appraise(&b, &strict_snp(), t("2026-05-12T00:00:01Z"), None, &c);
    denied(late, Check::SnpCrlInvalid);
    // A CRL of another product (Genoa's, from the verifier) is not this
    // chain's: as if there were none.
    let c = Collateral {
        snp_crl: Some(Piece::new(genoa_crl(), Source::Fetched)),
        problems: vec!["CRL: KDS unreachable".into()],
        ..Collateral::default()
    };
    let d = denied(run(&virtee(), &strict_snp(), &c), Check::SnpCrlUnavailable);
    assert!(d.got.contains("KDS unreachable"), "{d}");
    // A corrupted CRL from the verifier is a denial, not a silent skip.
    let mut bad = milan_crl();
    let n = bad.len() - 1;
    bad[n] ^= 1;
    let c = Collateral {
        snp_crl: Some(Piece::new(bad, Source::Fetched)),
        ..Collateral::default()
    };
    denied(run(&virtee(), &strict_snp(), &c), Check::SnpCrlInvalid);
}
