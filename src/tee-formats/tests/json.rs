//! The JSON view (feature `serde`, enabled for tests through the crate's
//! dev-dependency on itself): every field present, byte strings as lowercase
//! hex.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{fixture, hex};
use serde_json::Value;
use tee_formats::snp::{AttestationReport, CertTable, Guid, ReceivedReport};
use tee_formats::tdx::{Quote, ReceivedQuote, TdReport};

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn is_lower_hex(s: &str) -> bool {
    s.len().is_multiple_of(2)
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

#[test]
fn snp_report_json_has_every_field_in_table_order() {
    let bytes = fixture("snp/milan-v3-vlek-trustee/report.bin");
    let r = AttestationReport::parse(&bytes).unwrap();
    let v = json(&r);
    assert_eq!(
        keys(&v),
        [
            "version",
            "guest_svn",
            "policy",
            "family_id",
            "image_id",
            "vmpl",
            "signature_algo",
            "current_tcb",
            "platform_info",
            "key_info",
            "report_data",
            "measurement",
            "host_data",
            "id_key_digest",
            "author_key_digest",
            "report_id",
            "report_id_ma",
            "reported_tcb",
            "cpuid_fam_id",
            "cpuid_mod_id",
            "cpuid_step",
            "chip_id",
            "committed_tcb",
            "current_build",
            "current_minor",
            "current_major",
            "committed_build",
            "committed_minor",
            "committed_major",
            "launch_tcb",
            "launch_mit_vector",
            "current_mit_vector",
            "signature"
        ]
    );
    assert_eq!(v["version"], 3);
    assert_eq!(v["measurement"], hex(&r.measurement));
    assert_eq!(v["reported_tcb"], "04000000000018d9");
    assert_eq!(v["policy"]["raw"], 0x30000);
    assert_eq!(v["policy"]["debug_allowed"], false);
    assert_eq!(v["key_info"]["signing_key"], "VLEK");
    assert_eq!(v["platform_info"]["alias_check_complete"], true);
    assert_eq!(v["cpuid_fam_id"], 0x19);
    assert!(is_lower_hex(v["signature"]["r"].as_str().unwrap()));
    assert_eq!(v["signature"]["r"].as_str().unwrap().len(), 144);
    assert_eq!(json(&ReceivedReport::parse(&bytes).unwrap()), v);
}

#[test]
fn tdx_quote_json_has_every_field() {
    let bytes = fixture("tdx/trustee/tdx_quote_5.dat");
    let q = Quote::parse(&bytes).unwrap();
    let v = json(&q);
    assert_eq!(
        keys(&v),
        ["header", "body", "signature_data", "trailing_len"]
    );
    assert_eq!(
        keys(&v["header"]),
        [
            "version",
            "att_key_type",
            "tee_type",
            "qe_vendor_id",
            "user_data"
        ]
    );
    assert_eq!(
        v["header"]["qe_vendor_id"],
        "939a7233f79c4ca9940a0db3957f0607"
    );
    assert_eq!(v["body"]["body_type"], 3);
    let body = &v["body"]["body"];
    assert_eq!(keys(body), ["td10", "tee_tcb_svn2", "mr_servicetd"]);
    assert_eq!(keys(&body["td10"]).len(), 12);
    assert_eq!(body["td10"]["rtmr"].as_array().unwrap().len(), 4);
    assert!(body["mr_servicetd"]
        .as_str()
        .unwrap()
        .starts_with("383c87d3"));
    let qe = &v["signature_data"]["qe_report_certification_data"];
    assert_eq!(
        keys(qe),
        [
            "qe_report",
            "qe_report_signature",
            "qe_auth_data",
            "certification_data"
        ]
    );
    assert_eq!(keys(&qe["qe_report"]).len(), 12);
    assert_eq!(qe["qe_report"]["isv_prod_id"], 2);
    assert_eq!(qe["certification_data"]["cert_data_type"], 5);
    assert!(qe["certification_data"]["pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(is_lower_hex(
        qe["certification_data"]["data"].as_str().unwrap()
    ));
    assert_eq!(v["trailing_len"], 0);
    assert_eq!(json(&ReceivedQuote::parse(&bytes).unwrap()), v);
}

#[test]
fn tdreport_and_cert_table_json() {
    let r = TdReport::parse(&fixture("tdx/intel-dcap/tdreport_for_test.dat")).unwrap();
    let v = json(&r);
    assert_eq!(keys(&v), ["report_mac_struct", "tee_tcb_info", "td_info"]);
    assert_eq!(v["report_mac_struct"]["report_type"]["tee_type"], 0x81);
    assert!(v["td_info"]["mr_td"]
        .as_str()
        .unwrap()
        .starts_with("bb1249bd"));
    assert_eq!(v["td_info"]["attributes"], "0000005000000000");

    let vcek = fixture("snp/milan-v2-virtee/vcek.der");
    let t = CertTable::from_entries(vec![(Guid::VCEK, vcek.clone())]).unwrap();
    let v = json(&t);
    assert_eq!(v["len"], 48 + vcek.len());
    let e = &v["entries"][0];
    assert_eq!(e["guid"], "63da758d-e664-4564-adc5-f4b93be8accd");
    assert_eq!(e["kind"], "VCEK");
    assert_eq!(e["offset"], 48);
    assert_eq!(e["length"], vcek.len());
    assert_eq!(e["data"], hex(&vcek));
}
