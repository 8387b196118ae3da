//! TDX fixtures of `shared/fixtures/SOURCES.md` at their pinned times, and
//! one-thing changes (collateral, clock, policy).
// Helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use appraisal::Check;
use common::*;
use wire::{EvidenceBundle, Tee};

const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
const NOW: &str = "2025-06-19T11:32:27Z"; // 1750332747
const OUTDATED_NOW: &str = "2026-02-18T11:58:51Z"; // 1771415931

fn bundle(quote: &str, collateral: Option<&str>) -> EvidenceBundle {
    let mut b = EvidenceBundle::new(Tee::Tdx, "test", read(quote));
    b.tdx_collateral = collateral.map(|c| serde_json::from_slice(&read(c)).unwrap());
    b
}

fn quote() -> EvidenceBundle {
    bundle(
        "tdx/dcap-qvl/tdx_quote",
        Some("tdx/dcap-qvl/tdx_quote_collateral.json"),
    )
}

/// A policy accepting the dcap-qvl quote's firmware. That quote has no event
/// log and this test pins no RTMR, so it says `allow_unpinned_os = true`
/// (without it the policy is refused at load; see `whole_image` below).
fn tdx_policy(extra: &str) -> appraisal::Policy {
    policy(&format!(
        "[tdx]\nallowed = true\nmrtds = [\"{MRTD}\"]\nallow_unpinned_os = true\n{extra}"
    ))
}

#[test]
fn dcap_qvl_quote_is_up_to_date_and_accepted() {
    assert_eq!(t(NOW), 1_750_332_747);
    let c = accepted(appraise(
        &quote(),
        &tdx_policy("min_tcb_evaluation_data_number = 17\n"),
        NOW,
    ));
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["tee"], "tdx");
    assert_eq!(j["mr_td"], MRTD);
    assert_eq!(j["measurement"], quote_measurement());
    assert_eq!(j["os_pinned"], false);
    assert!(j.get("init_data").is_none());
    assert_eq!(j["tcb"]["tcb_status"], "UpToDate");
    assert_eq!(j["tcb"]["advisory_ids"], serde_json::json!([]));
    assert_eq!(j["tcb"]["tcb_evaluation_data_number"], 17);
    assert_eq!(j["td_attributes"], "0000001000000000");
    assert_eq!(j["xfam"], "e702060000000000");
    assert_eq!(j["policy_flags"]["debug"], false);
    assert_eq!(j["policy_flags"]["sept_ve_disable"], true);
    assert!(j["mr_seam"]
        .as_str()
        .unwrap()
        .starts_with("5b38e33a6487958b"));
    assert!(j["rtmrs"][0]
        .as_str()
        .unwrap()
        .starts_with("44c0197b39157fdd"));
    assert_eq!(j["rtmrs"][3], "0".repeat(96));
    assert_eq!(j["mr_config_id"], "0".repeat(96));
    assert!(j["report_data"]
        .as_str()
        .unwrap()
        .starts_with("9a9d48e7f6799642"));
}

#[test]
fn outdated_quote_is_denied_with_no_matching_tcb_level() {
    let b = bundle(
        "tdx/dcap-qvl/tdx_quote_outdated",
        Some("tdx/dcap-qvl/tdx_quote_outdated_collateral.json"),
    );
    let d = denied(
        appraise(&b, &tdx_policy(""), OUTDATED_NOW),
        Check::TdxTcbLevel,
    );
    assert!(d.got.contains("below every level of the TCB info"), "{d}");
    // dcap-qvl's own words stay in the log, never in a denial.
    assert!(
        !d.to_string().contains("No matching TCB level found"),
        "{d}"
    );
}

#[test]
fn collateral_windows_are_checked_to_the_second() {
    // tdx_quote_collateral.json: PCK CRL thisUpdate 2025-06-19T10:00:35Z,
    // nextUpdate 2025-07-19T10:00:35Z; TCB info issued 2025-06-19T10:16:03Z;
    // QE identity issued 2025-06-19T10:32:27Z (shared/fixtures/SOURCES.md
    // gives the window [10:32:27Z, 2025-07-19T10:00:35Z]; openssl crl -text
    // shows the CRL dates). A CRL stops being current at its nextUpdate
    // second (webpki's rule, inside dcap-qvl too).
    accepted(appraise(&quote(), &tdx_policy(""), "2025-06-19T10:32:27Z"));
    accepted(appraise(&quote(), &tdx_policy(""), "2025-07-19T10:00:34Z"));
    let d = denied(
        appraise(&quote(), &tdx_policy(""), "2025-07-19T10:00:35Z"),
        Check::TdxCrl,
    );
    assert!(
        d.got.contains("PCK CRL valid 2025-06-19T10:00:35Z up to 2025-07-19T10:00:35Z, verifier time 2025-07-19T10:00:35Z"),
        "{d}"
    );
    assert!(d.hint.contains("--pcs-url"), "{d}");
    let d = denied(
        appraise(&quote(), &tdx_policy(""), "2025-06-19T10:32:26Z"),
        Check::TdxCollateralExpired,
    );
    assert!(
        d.got.contains("QE identity issued 2025-06-19T10:32:27Z"),
        "{d}"
    );
    let d = denied(
        appraise(&quote(), &tdx_policy(""), "2025-06-19T10:00:34Z"),
        Check::TdxCrl,
    );
    assert!(d.got.contains("verifier time 2025-06-19T10:00:34Z"), "{d}");
    denied(
        appraise(&quote(), &tdx_policy(""), "2100-01-01T00:00:00Z"),
        Check::TdxCrl,
    );
}

#[test]
fn quotes_without_collateral_are_denied() {
    for q in [
        "tdx/trustee/tdx_quote_4.dat",
        "tdx/trustee/tdx_quote_5.dat",
        "tdx/trustee/tdx_quote_6.dat",
        "tdx/dcap-qvl/tdx_quote",
    ] {
        denied(
            appraise(&bundle(q, None), &tdx_policy(""), NOW),
            Check::TdxCollateralMissing,
        );
    }
}

#[test]
fn collateral_of_another_platform_is_denied() {
    // The debug TD of trustee (FMSPC 50806f000000) with the dcap-qvl collateral (FMSPC b0c06f000000).
    let b = bundle(
        "tdx/trustee/tdx_quote_4.dat",
        Some("tdx/dcap-qvl/tdx_quote_collateral.json"),
    );
    let d = denied(appraise(&b, &tdx_policy(""), NOW), Check::TdxCollateral);
    assert!(d.got.contains("TCB info for FMSPC \"B0C06F000000\", the quote's PCK certificate is for FMSPC 50806F000000"), "{d}");
    assert!(d.hint.contains("fmspc=50806F000000"), "{d}");
}

#[test]
fn a_flipped_quote_byte_fails_the_signature() {
    let mut b = quote();
    // MRTD (body offset 136, +48 header).
    b.evidence.0[48 + 136] ^= 1;
    denied(appraise(&b, &tdx_policy(""), NOW), Check::TdxSignature);
    let mut b = quote();
    b.evidence.0[48 + 520] ^= 1; // REPORTDATA
    denied(appraise(&b, &tdx_policy(""), NOW), Check::TdxSignature);
}

#[test]
fn v5_body_size_tamper_is_a_format_error() {
    let mut b = bundle(
        "tdx/dcap-qvl/tdx_quote_outdated",
        Some("tdx/dcap-qvl/tdx_quote_outdated_collateral.json"),
    );
    b.evidence.0[50] ^= 1;
    denied(
        appraise(&b, &tdx_policy(""), OUTDATED_NOW),
        Check::TdxQuoteFormat,
    );
}

#[test]
fn tampered_collateral_fails_its_signature() {
    let mut b = quote();
    let c = b.tdx_collateral.as_mut().unwrap();
    let tcb = c["tcb_info"].as_str().unwrap().replace(
        "\"tcbEvaluationDataNumber\":17",
        "\"tcbEvaluationDataNumber\":99",
    );
    c["tcb_info"] = serde_json::Value::String(tcb);
    denied(
        appraise(&b, &tdx_policy(""), NOW),
        Check::TdxCollateralSignature,
    );
    let mut b = quote();
    b.tdx_collateral = Some(serde_json::json!({"tcb_info": 1}));
    denied(appraise(&b, &tdx_policy(""), NOW), Check::TdxCollateral);
}

#[test]
fn policy_values_are_each_checked() {
    denied(appraise(&quote(), &policy(""), NOW), Check::TdxNotAllowed);
    denied(
        appraise(
            &quote(),
            &tdx_policy("min_tcb_evaluation_data_number = 18\n"),
            NOW,
        ),
        Check::TdxTcbEvaluationDataNumber,
    );
    denied(
        appraise(
            &quote(),
            &tdx_policy("tcb_statuses = [\"OutOfDate\"]\n"),
            NOW,
        ),
        Check::TdxTcbStatus,
    );
    denied(
        appraise(
            &quote(),
            &tdx_policy(&format!("xfams = [\"{}\"]\n", "e7020600000000ff")),
            NOW,
        ),
        Check::TdxXfam,
    );
    accepted(appraise(
        &quote(),
        &tdx_policy("xfams = [\"e702060000000000\"]\n"),
        NOW,
    ));
    denied(
        appraise(
            &quote(),
            &tdx_policy(&format!("mr_seams = [\"{}\"]\n", "00".repeat(48))),
            NOW,
        ),
        Check::TdxMrSeam,
    );
    let other = "00".repeat(48);
    let p = policy(&format!(
        "[tdx]\nallowed = true\nmrtds = [\"{other}\"]\nallow_unpinned_os = true\n"
    ));
    denied(appraise(&quote(), &p, NOW), Check::TdxMrtd);
    for (field, check) in [
        ("rtmr0", Check::TdxRtmr0),
        ("rtmr1", Check::TdxRtmr1),
        ("rtmr2", Check::TdxRtmr2),
        ("rtmr3", Check::TdxRtmr3),
        ("mr_config_id", Check::TdxMrConfigId),
        ("mr_owner", Check::TdxMrOwner),
        ("mr_owner_config", Check::TdxMrOwnerConfig),
    ] {
        denied(
            appraise(
                &quote(),
                &tdx_policy(&format!("{field} = \"{}\"\n", "11".repeat(48))),
                NOW,
            ),
            check,
        );
    }
    accepted(appraise(
        &quote(),
        &tdx_policy(&format!(
            "rtmr3 = \"{}\"\nmr_config_id = \"{}\"\n",
            "00".repeat(48),
            "00".repeat(48)
        )),
        NOW,
    ));
}

#[test]
fn qe_pce_svn_minima_and_piid_allowlist() {
    // QE ISVSVN 6, PCE SVN 11 (SOURCES.md).
    accepted(appraise(
        &quote(),
        &tdx_policy("min_qe_svn = 6\nmin_pce_svn = 11\n"),
        NOW,
    ));
    denied(
        appraise(&quote(), &tdx_policy("min_qe_svn = 7\n"), NOW),
        Check::TdxQeSvn,
    );
    denied(
        appraise(&quote(), &tdx_policy("min_pce_svn = 12\n"), NOW),
        Check::TdxPceSvn,
    );
    // The PCK (Platform CA) of this quote carries PIID 07828474603e7019dc930775ffe8cdd2.
    let own = "07828474603e7019dc930775ffe8cdd2";
    let d = denied(
        appraise(
            &quote(),
            &tdx_policy(&format!("piids = [\"{}\"]\n", "00".repeat(16))),
            NOW,
        ),
        Check::TdxPiid,
    );
    assert_eq!(d.got, own);
    accepted(appraise(
        &quote(),
        &tdx_policy(&format!("piids = [\"{own}\"]\n")),
        NOW,
    ));
}

#[test]
fn report_data_must_equal_the_recomputed_binding() {
    let a = appraisal::Appraiser::new().unwrap();
    let good: [u8; 64] = appraisal::hex::decode("9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20").unwrap().try_into().unwrap();
    a.appraise(
        &quote(),
        &tdx_policy(""),
        t(NOW),
        Some(&good),
        &appraisal::Collateral::none(),
    )
    .unwrap();
    let mut bad = good;
    bad[63] ^= 1;
    assert_eq!(
        a.appraise(
            &quote(),
            &tdx_policy(""),
            t(NOW),
            Some(&bad),
            &appraisal::Collateral::none()
        )
        .unwrap_err()
        .check,
        Check::ReportData
    );
}

// ---- whole-image measurement ---------------------------------------------

/// MRTD, RTMR1, RTMR2 of the dcap-qvl quote, read at their documented body
/// offsets (v4: body at 48; MRTD 136, RTMR1 376, RTMR2 424).
fn quote_fields() -> ([u8; 48], [u8; 48], [u8; 48]) {
    let q = read("tdx/dcap-qvl/tdx_quote");
    let f = |o: usize| -> [u8; 48] { q[48 + o..48 + o + 48].try_into().unwrap() };
    (f(136), f(376), f(424))
}

/// The measurement claim as README "Claims" defines it, computed here:
/// SHA-384("enclave-init/tdx-measurement/v1\0" ‖ MRTD ‖ RTMR1 ‖ RTMR2).
fn quote_measurement() -> String {
    use sha2::{Digest, Sha384};
    let (mrtd, r1, r2) = quote_fields();
    assert_eq!(appraisal::hex::encode(&mrtd), MRTD);
    let mut h = Sha384::new();
    h.update(b"enclave-init/tdx-measurement/v1\0");
    h.update(mrtd);
    h.update(r1);
    h.update(r2);
    appraisal::hex::encode(&h.finalize())
}

#[test]
fn whole_image_rtmr_pins_accept_the_quote_and_deny_another_rtmr2() {
    let (_, r1, r2) = quote_fields();
    let (r1, r2) = (appraisal::hex::encode(&r1), appraisal::hex::encode(&r2));
    // Without OS pins a [tdx] that accepts images is refused at load.
    match appraisal::Policy::from_toml(
        format!("[tdx]\nallowed = true\nmrtds = [\"{MRTD}\"]\n").as_bytes(),
    ) {
        Err(appraisal::PolicyError::Invalid { field, .. }) => {
            assert_eq!(field, "tdx.allow_unpinned_os")
        }
        other => panic!("{other:?}"),
    }
    let pinned = |rtmr2: &str| {
        policy(&format!(
            "[tdx]\nallowed = true\nmrtds = [\"{MRTD}\"]\nrtmr1 = \"{r1}\"\nrtmr2 = [\"{rtmr2}\"]\n"
        ))
    };
    let c = accepted(appraise(&quote(), &pinned(&r2), NOW));
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["os_pinned"], true);
    assert_eq!(j["measurement"], quote_measurement());
    assert_eq!(j["rtmrs"][2], r2);
    // RTMR2 of the go-eventlog direct-boot log (SOURCES.md): another command line and initrd.
    let other = "c3e7ed9d7e909b29732f676d01dc63de869b049362b522a315cb042689670be07344c347cf85d985c7b928d4934e41e1";
    let d = denied(appraise(&quote(), &pinned(other), NOW), Check::TdxRtmr2);
    assert_eq!(d.got, format!("RTMR2 {r2}"));
    assert!(d.want.contains(other), "{d}");
}

#[test]
fn whole_image_component_pins_need_the_event_log() {
    let p = tdx_policy(&format!("kernel = [\"{}\"]\n", "11".repeat(48)));
    let d = denied(appraise(&quote(), &p, NOW), Check::TdxEventLog);
    assert_eq!(d.got, "no event log in the bundle");
    // Another TD's log (GCP COS-113) does not replay to this quote's RTMRs.
    let mut b = quote();
    b.event_log = Some(read("cloud/tdx-eventlog/go-tdx-guest-gcp-cos113/ccel_data.dat").into());
    let d = denied(appraise(&b, &tdx_policy(""), NOW), Check::TdxEventLogReplay);
    assert!(
        d.got.starts_with("RTMR0 replays to 3fa2f61f395b7f5f"),
        "{d}"
    );
    assert!(
        d.want.starts_with("RTMR0 of the quote: 44c0197b39157fdd"),
        "{d}"
    );
    // A malformed log is refused before anything else of the image.
    let mut b = quote();
    b.event_log = Some(vec![0xff; 100].into());
    let d = denied(appraise(&b, &tdx_policy(""), NOW), Check::TdxEventLog);
    assert!(d.got.contains("pcrIndex"), "{d}");
}

#[test]
fn whole_image_coco_pod_needs_its_init_data() {
    // The dcap-qvl quote's image listed as a Kata guest; it was launched with
    // MRCONFIGID = 0 (SOURCES.md), so no init-data pin can match it.
    let (mrtd, r1, r2) = quote_fields();
    let e = appraisal::hex::encode;
    let p = policy(&format!(
        "[tdx]\nallowed = true\n[coco]\nallowed = true\ntdx_mrtds = [\"{}\"]\ntdx_rtmr1 = [\"{}\"]\ntdx_rtmr2 = [\"{}\"]\ninit_data_tdx = [\"{}\"]\n",
        e(&mrtd),
        e(&r1),
        e(&r2),
        "ab".repeat(48)
    ));
    let d = denied(appraise(&quote(), &p, NOW), Check::CocoInitData);
    assert_eq!(d.got, format!("MRCONFIGID {}", "00".repeat(48)));
    // Not the pod image either: the appliance check (no MRTD listed) denies.
    let p = policy(&format!(
        "[tdx]\nallowed = true\n[coco]\nallowed = true\ntdx_mrtds = [\"{}\"]\ntdx_rtmr1 = [\"{}\"]\ntdx_rtmr2 = [\"{}\"]\ninit_data_tdx = [\"{}\"]\n",
        e(&mrtd),
        e(&r2),
        e(&r2),
        "ab".repeat(48)
    ));
    denied(appraise(&quote(), &p, NOW), Check::TdxMrtd);
}

// ---- the quote's own signing chain, mutated -------------------------------

/// Where `needle` first starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[test]
fn a_flipped_byte_in_the_pck_certificate_fails_the_pck_chain() {
    // The quote's certification data (type 6, at 770) holds the QE report,
    // its signature, the QE auth data and then the PEM chain (type 5), PCK
    // leaf first (SOURCES.md: PCK leaf → Intel SGX PCK Platform CA → root).
    // A base64 character 10 before the leaf's END line lies in the tail of
    // its ECDSA signature's S value: the DER still parses, the Platform
    // CA's signature over the leaf no longer verifies.
    let mut b = quote();
    let q = &mut b.evidence.0;
    let end = find(q, b"-----END CERTIFICATE-----");
    assert!(find(q, b"-----BEGIN CERTIFICATE-----") < end);
    let at = end - 10;
    assert_eq!(q[at], b'6', "the fixture's byte (SOURCES.md sha256)");
    q[at] = b'7';
    let d = denied(appraise(&b, &tdx_policy(""), NOW), Check::TdxPckChain);
    assert!(!d.to_string().contains("dcap"), "{d}");
}

#[test]
fn a_flipped_qe_auth_data_byte_fails_the_qe_binding() {
    // v4 quote: header 48 + body 584 = 632; signature data length (4), quote
    // signature (64), attestation key (64), certification data type (2) and
    // size (4) = 770; QE report (384) and its signature (64) = 1218; QE
    // auth data size (2, = 32) at 1218, the auth data (00 01 .. 1f) at 1220.
    // The QE report's REPORTDATA is SHA-256(attestation key ‖ auth data): a
    // changed auth byte no longer matches it, while every signature (quote
    // by the attestation key, QE report by the PCK) still verifies.
    let mut b = quote();
    let q = &mut b.evidence.0;
    assert_eq!(u16::from_le_bytes([q[1218], q[1219]]), 32);
    assert_eq!(&q[1220..1224], &[0, 1, 2, 3]);
    q[1221] ^= 0x80;
    denied(appraise(&b, &tdx_policy(""), NOW), Check::TdxQe);
}
