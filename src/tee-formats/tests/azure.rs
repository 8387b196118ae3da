//! The Azure vTPM captures of `shared/fixtures/cloud/azure` (SOURCES.md §2):
//! HCL reports and TPM quotes parse to the documented values, re-encode to
//! the same bytes, and every malformed variant is refused with the field
//! that is wrong. Expected values are the ones SOURCES.md lists (checked
//! there with an independent Python script).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

mod common;

use common::{fixture, hex, unhex, Prng};
use sha2::{Digest, Sha256};
use tee_formats::azure::{HardwareReport, HclReport, HclReportType};
use tee_formats::tpm::{Attest, PcrSelection, Signature, ALG_RSASSA, ALG_SHA256};
use tee_formats::FormatError;

const SNP_HCL: &str = "cloud/azure/trustee-az-snp-vtpm/hcl-report.bin";
const TDX_HCL: &str = "cloud/azure/trustee-az-tdx-vtpm/hcl-report.bin";

fn json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(rel)).unwrap()
}

/// `quote.message` / `quote.pcrs` of a tpm-quote-v1.json.
fn quote_json(rel: &str) -> (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
    let j = json(rel);
    let pcrs = j["pcrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| unhex(p.as_str().unwrap()))
        .collect();
    (
        unhex(j["message"].as_str().unwrap()),
        unhex(j["signature"].as_str().unwrap()),
        pcrs,
    )
}

fn int_array(v: &serde_json::Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| u8::try_from(x.as_u64().unwrap()).unwrap())
        .collect()
}

#[test]
fn snp_hcl_report_parses_to_the_documented_values() {
    let bytes = fixture(SNP_HCL);
    let h = HclReport::parse(&bytes).unwrap();
    assert_eq!(bytes.len(), 2600);
    assert_eq!(h.header.version, 1);
    assert_eq!(h.header.report_size, 2346);
    assert_eq!(h.header.request_type, 2);
    assert_eq!(h.report_type(), HclReportType::Snp);
    assert_eq!(h.request_data.variable_data_size, 1110);
    assert_eq!(h.request_data.data_size, 1130);
    assert_eq!(h.padding_len, 2600 - 2346);
    assert_eq!(
        hex(&h.variable_data_sha256()),
        "b3fbad6514c83caeb0380882145e49f794229ef37c421b91fc47ff93556bafac"
    );
    assert!(h
        .variable_data
        .starts_with(br#"{"keys":[{"kid":"HCLAkPub""#));
    let HardwareReport::Snp(r) = &h.hardware_report else {
        panic!("not SNP")
    };
    let r = r.report();
    assert_eq!(r.version, 2);
    assert_eq!(r.vmpl, 0);
    assert_eq!(r.policy.raw(), 0x3001f);
    assert_eq!(hex(&r.measurement), "9ac48fcac8a2d88aeeff8d427ad4f2be0e3917c748a18bdf52cc317e7fe20308b459d5ef1a12e0c22944eb386d17c315");
    assert_eq!(hex(&r.reported_tcb.to_bytes()), "0300000000000873");
    assert_eq!(hex(&r.current_tcb.to_bytes()), "03000000000008d2");
    // The binding holds: REPORT_DATA = SHA-256(variable data) ‖ 32 zero bytes.
    assert_eq!(h.hardware_report.report_data(), &h.expected_report_data());
}

#[test]
fn tdx_hcl_report_parses_to_the_documented_values() {
    let bytes = fixture(TDX_HCL);
    let h = HclReport::parse(&bytes).unwrap();
    assert_eq!(h.header.version, 2);
    assert_eq!(h.header.report_size, 2437);
    assert_eq!(h.report_type(), HclReportType::Tdx);
    assert_eq!(h.request_data.variable_data_size, 1201);
    assert_eq!(
        hex(&h.variable_data_sha256()),
        "9734504f161d104c74e3165c15f779b06a9bb40dfa71937817d7eee68e593839"
    );
    let HardwareReport::Tdx(td) = &h.hardware_report else {
        panic!("not TDX")
    };
    assert_eq!(hex(&td.td_info.mr_td), "024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7ab7b");
    assert!(
        td.td_info.rtmr.iter().all(|r| r.iter().all(|&b| b == 0)),
        "paravisor CVM: RTMRs all zero"
    );
    assert_eq!(h.hardware_report.report_data(), &h.expected_report_data());
}

#[test]
fn legacy_v0_and_v1_captures_carry_hcl_reports_too() {
    // evidence-v0.json: the report as an integer array (SNP v3, Milan).
    let v0 = json("cloud/azure/trustee-az-snp-vtpm/evidence-v0.json");
    let h = HclReport::parse(&int_array(&v0["report"])).unwrap();
    let HardwareReport::Snp(r) = &h.hardware_report else {
        panic!("not SNP")
    };
    assert_eq!(r.report().version, 3);
    assert_eq!(hex(&r.report().measurement), "6a063be9dd79f6371c842e480f8dc3b5c725961344e57130e88c5adf49e8f7f6c79b75a5eb77fc769959f4aeb2f9401e");
    assert_eq!(hex(&r.report().reported_tcb.to_bytes()), "04000000000018db");
    assert_eq!(h.hardware_report.report_data(), &h.expected_report_data());
    // The TDX v0 capture: HCL report and TD quote as integer arrays.
    let t0 = json("cloud/azure/trustee-az-tdx-vtpm/evidence-v0.json");
    let h = HclReport::parse(&int_array(&t0["hcl_report"])).unwrap();
    assert_eq!(
        h.variable_data,
        HclReport::parse(&fixture(TDX_HCL)).unwrap().variable_data
    );
    assert_eq!(
        int_array(&t0["td_quote"]),
        fixture("cloud/azure/trustee-az-tdx-vtpm/td-quote.bin")
    );
}

#[test]
fn v2_user_data_is_upper_case_hex_of_the_nonce_padded_to_64_bytes() {
    use base64::Engine as _;
    let v2 = json("cloud/azure/trustee-az-snp-vtpm/evidence-v2.json");
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(v2["hcl_report"].as_str().unwrap())
        .unwrap();
    let h = HclReport::parse(&bytes).unwrap();
    let var: serde_json::Value = serde_json::from_slice(&h.variable_data).unwrap();
    let nonce = "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef";
    assert_eq!(
        var["user-data"].as_str().unwrap(),
        format!("{}{}", nonce.to_uppercase(), "0".repeat(32))
    );
}

#[test]
fn reports_re_encode_byte_for_byte() {
    for rel in [SNP_HCL, TDX_HCL] {
        let bytes = fixture(rel);
        let h = HclReport::parse(&bytes).unwrap();
        let hw = match &h.hardware_report {
            HardwareReport::Snp(r) => r.to_bytes().to_vec(),
            HardwareReport::Tdx(t) => t.to_bytes().to_vec(),
        };
        let again = HclReport::encode(
            h.header.version,
            h.report_type(),
            &hw,
            &h.variable_data,
            bytes.len(),
        )
        .unwrap();
        assert_eq!(again, bytes, "{rel}");
    }
}

/// Sets the little-endian u32 at `offset`.
fn put_u32(b: &mut [u8], offset: usize, v: u32) {
    b[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn malformed_reports_are_refused_with_the_field() {
    let good = fixture(SNP_HCL);
    type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(Mutation, FormatError)> = vec![
        (
            Box::new(|b| b[0] = b'X'),
            FormatError::UnsupportedValue {
                field: "HCL signature",
                offset: 0,
                value: u32::from_le_bytes(*b"XCLA").into(),
            },
        ),
        (
            Box::new(|b| put_u32(b, 4, 3)),
            FormatError::UnsupportedVersion {
                what: "HCL report",
                version: 3,
            },
        ),
        (
            Box::new(|b| put_u32(b, 12, 1)),
            FormatError::UnsupportedValue {
                field: "HCL request_type",
                offset: 12,
                value: 1,
            },
        ),
        (
            Box::new(|b| put_u32(b, 16, 5)),
            FormatError::UnsupportedValue {
                field: "HCL status",
                offset: 16,
                value: 5,
            },
        ),
        (
            Box::new(|b| b[28] = 1),
            FormatError::ReservedNotZero {
                what: "HCL header",
                offset: 20,
                len: 12,
            },
        ),
        (
            Box::new(|b| put_u32(b, 1220, 2)),
            FormatError::UnsupportedVersion {
                what: "IGVM request data",
                version: 2,
            },
        ),
        (
            Box::new(|b| put_u32(b, 1224, 3)),
            FormatError::UnsupportedValue {
                field: "IGVM report_type",
                offset: 1224,
                value: 3,
            },
        ),
        (
            Box::new(|b| put_u32(b, 1228, 2)),
            FormatError::UnsupportedValue {
                field: "IGVM report_data_hash_type",
                offset: 1228,
                value: 2,
            },
        ),
        (
            Box::new(|b| put_u32(b, 1216, 1131)),
            FormatError::BadLength {
                field: "IGVM data_size",
                offset: 1216,
                got: 1131,
                expected: 1130,
            },
        ),
        (
            Box::new(|b| put_u32(b, 8, 2347)),
            FormatError::BadLength {
                field: "HCL report_size",
                offset: 8,
                got: 2347,
                expected: 2346,
            },
        ),
        // Sizes that run past the end of the NV data (both fields agree).
        (
            Box::new(|b| {
                put_u32(b, 1232, 5000);
                put_u32(b, 1216, 5020);
                put_u32(b, 8, 6236);
            }),
            FormatError::LengthOutOfBounds {
                field: "IGVM variable_data_size",
                offset: 1232,
                declared: 5000,
                available: 1364,
            },
        ),
        (
            Box::new(|b| {
                put_u32(b, 1232, u32::MAX - 20);
                put_u32(b, 1216, u32::MAX);
                put_u32(b, 8, 0);
            }),
            FormatError::BadLength {
                field: "HCL report_size",
                offset: 8,
                got: 0,
                expected: u64::from(u32::MAX - 20) + 1236,
            },
        ),
        (
            Box::new(|b| b[2599] = 1),
            FormatError::TrailingBytes {
                what: "HCL report padding",
                offset: 2599,
                len: 1,
            },
        ),
        // A TDX report type over SNP bytes (whose last 160 bytes are zero,
        // reserved signature space): the TDREPORT type byte is the SNP version.
        (
            Box::new(|b| put_u32(b, 1224, 4)),
            FormatError::UnsupportedValue {
                field: "REPORTTYPE.TYPE",
                offset: 32,
                value: 2,
            },
        ),
        // The SNP report inside: an unsupported version (absolute offset).
        (
            Box::new(|b| put_u32(b, 32, 9)),
            FormatError::UnsupportedVersion {
                what: "ATTESTATION_REPORT",
                version: 9,
            },
        ),
        (
            Box::new(|b| b.truncate(1000)),
            FormatError::Truncated {
                what: "HCL report",
                needed: 1236,
                got: 1000,
            },
        ),
    ];
    for (i, (mutate, want)) in cases.iter().enumerate() {
        let mut b = good.clone();
        mutate(&mut b);
        assert_eq!(HclReport::parse(&b), Err(want.clone()), "case {i}");
    }
}

#[test]
fn every_truncation_and_many_mutants_are_handled() {
    let mut rng = Prng::new(0xA20E_5EED);
    for rel in [SNP_HCL, TDX_HCL] {
        let bytes = fixture(rel);
        for len in 0..bytes.len() {
            assert!(HclReport::parse(&bytes[..len]).is_err() || len >= 2346);
        }
        for _ in 0..3000 {
            let mut b = bytes.clone();
            for _ in 0..=rng.below(4) {
                let i = rng.below(b.len());
                b[i] = rng.next_u64() as u8;
            }
            if let Ok(h) = HclReport::parse(&b) {
                assert_eq!(
                    h.variable_data.len(),
                    h.request_data.variable_data_size as usize
                );
            }
        }
    }
}

#[test]
fn tpm_quotes_parse_and_their_pcr_digest_matches() {
    for (dir, digest, pcr0) in [
        (
            "trustee-az-snp-vtpm",
            "0daff74c2fca14910b1e9b54a384707434c3365db9f163cc73a39a9f7500833f",
            "f3a7e99a5f819a034386bce753a48a73cfdaa0bea0ecfc124bedbf5a8c4799be",
        ),
        (
            "trustee-az-tdx-vtpm",
            "6c0e21d918212d57872a752bcf358355d508d1d5b8cb632259b898b15f9f658d",
            "782b20b10f55cc46e2142cc2145d548698073e5beb82752c8d7f9279f0d8a273",
        ),
    ] {
        let (msg, sig, pcrs) = quote_json(&format!("cloud/azure/{dir}/tpm-quote-v1.json"));
        let a = Attest::parse(&msg).unwrap();
        assert_eq!(a.extra_data, b"challenge");
        assert_eq!(a.pcr_select, PcrSelection::sha256_all());
        assert_eq!(hex(&a.pcr_digest), digest);
        assert_eq!(hex(&pcrs[0]), pcr0);
        let concat: Vec<u8> = pcrs.concat();
        assert_eq!(hex(&Sha256::digest(&concat)), digest);
        assert_eq!(a.to_bytes().unwrap(), msg);
        assert_eq!(sig.len(), 256);
        // The raw RSASSA signature wrapped as a TPMT_SIGNATURE round-trips.
        let t = Signature::RsaSsa {
            hash: ALG_SHA256,
            sig: sig.clone(),
        };
        let enc = t.to_bytes().unwrap();
        assert_eq!(&enc[..6], &[0x00, 0x14, 0x00, 0x0b, 0x01, 0x00]);
        assert_eq!(Signature::parse(&enc).unwrap(), t);
        assert_eq!(u16::from_be_bytes([enc[0], enc[1]]), ALG_RSASSA);
    }
}

#[test]
fn the_orphan_quote_selects_pcr0_to_7_and_14() {
    let a = Attest::parse(&fixture("cloud/azure/trustee-az-snp-vtpm/tpm-quote.msg")).unwrap();
    assert_eq!(a.extra_data, b"challenge");
    assert_eq!(a.pcr_select.0.len(), 1);
    assert_eq!(
        a.pcr_select.0[0].indices(),
        vec![0, 1, 2, 3, 4, 5, 6, 7, 14]
    );
}

#[test]
fn malformed_quotes_are_refused_with_the_field() {
    let (msg, _, _) = quote_json("cloud/azure/trustee-az-snp-vtpm/tpm-quote-v1.json");
    let mut b = msg.clone();
    b[0] = 0;
    assert_eq!(
        Attest::parse(&b),
        Err(FormatError::UnsupportedValue {
            field: "TPMS_ATTEST.magic",
            offset: 0,
            value: 0x00544347
        })
    );
    let mut b = msg.clone();
    b[5] = 0x17; // TPM_ST_ATTEST_CERTIFY
    assert_eq!(
        Attest::parse(&b),
        Err(FormatError::UnsupportedValue {
            field: "TPMS_ATTEST.type",
            offset: 4,
            value: 0x8017
        })
    );
    let mut b = msg.clone();
    b.push(0);
    assert_eq!(
        Attest::parse(&b),
        Err(FormatError::TrailingBytes {
            what: "TPMS_ATTEST",
            offset: 122,
            len: 1
        })
    );
    // extraData declares 0x40 bytes: within the type's bound, past the end of the message.
    let mut b = msg[..50].to_vec();
    b[43] = 0x40;
    assert_eq!(
        Attest::parse(&b),
        Err(FormatError::LengthOutOfBounds {
            field: "TPMS_ATTEST.extraData",
            offset: 42,
            declared: 0x40,
            available: 6
        })
    );
    // Every truncation.
    for len in 0..msg.len() {
        assert!(Attest::parse(&msg[..len]).is_err(), "{len}");
    }
    // sizeofSelect 0 and 9 (at offset 4+2+36+11+17+8 + 4 + 2 = 84).
    for bad in [0u8, 9] {
        let mut b = msg.clone();
        b[84] = bad;
        assert!(
            matches!(
                Attest::parse(&b),
                Err(FormatError::BadLength {
                    field: "TPMS_PCR_SELECTION.sizeofSelect",
                    offset: 84,
                    ..
                })
            ),
            "{bad}"
        );
    }
    // A TPMS_CLOCK_INFO.safe that is not a TPMI_YES_NO.
    let mut b = msg.clone();
    b[4 + 2 + 36 + 11 + 16] = 2;
    assert!(matches!(
        Attest::parse(&b),
        Err(FormatError::UnsupportedValue {
            field: "TPMS_CLOCK_INFO.safe",
            ..
        })
    ));
}
