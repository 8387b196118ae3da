//! TDX quotes v4/v5 and the TDREPORT: every fixture parses with the values
//! stated in `shared/fixtures/SOURCES.md` and round-trips; malformed input
//! fails with an error naming the field.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{fixture, hex, hex_then_zeros, TDX_QUOTES};
use sha2::{Digest, Sha256, Sha384};
use tee_formats::tdx::quote::{CERT_DATA_TYPE_PCK_CHAIN, QE_REPORT_SIZE};
use tee_formats::tdx::{Quote, QuoteBody, ReceivedQuote, TdReport, TDREPORT_SIZE};
use tee_formats::FormatError;

const INTEL_QE_VENDOR_ID: &str = "939a7233f79c4ca9940a0db3957f0607";

fn parse(rel: &str) -> Quote {
    Quote::parse(&fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_quote_round_trips_its_meaningful_bytes() {
    // (fixture, version, body type, file length, end of signature data)
    let expect = [
        ("tdx/dcap-qvl/tdx_quote", 4, 2, 5006, 4936),
        ("tdx/dcap-qvl/tdx_quote_outdated", 5, 3, 5006, 5006),
        ("tdx/trustee/tdx_quote_4.dat", 4, 2, 4936, 4936),
        ("tdx/trustee/tdx_quote_5.dat", 5, 3, 5006, 5006),
        ("tdx/trustee/tdx_quote_6.dat", 4, 2, 5006, 4936),
    ];
    assert_eq!(expect.len(), TDX_QUOTES.len());
    for (rel, version, body_type, len, end) in expect {
        let bytes = fixture(rel);
        assert_eq!(bytes.len(), len, "{rel}");
        let q = parse(rel);
        assert_eq!(q.header.version, version, "{rel}");
        assert_eq!(q.header.tee_type, 0x81, "{rel}");
        assert_eq!(q.header.att_key_type, 2, "{rel}");
        assert_eq!(hex(&q.header.qe_vendor_id), INTEL_QE_VENDOR_ID, "{rel}");
        assert_eq!(q.body.body_type(), body_type, "{rel}");
        assert_eq!(q.trailing_len, len - end, "{rel}");
        // Round trip, exactly, for what is kept; the padding is zero in every fixture.
        let encoded = q.to_bytes().unwrap();
        assert_eq!(
            encoded.as_slice(),
            &bytes[..end],
            "{rel}: serialize(parse(x)) != x[..end]"
        );
        assert!(bytes[end..].iter().all(|&b| b == 0), "{rel}: padding");
        assert_eq!(
            Quote::parse(&encoded).unwrap(),
            Quote {
                trailing_len: 0,
                ..q.clone()
            }
        );

        let rq = ReceivedQuote::parse(&bytes).unwrap();
        assert_eq!(rq.quote(), &q);
        assert_eq!(rq.bytes(), bytes.as_slice());
        assert_eq!(rq.meaningful_bytes(), &bytes[..end]);
        let signed_len = if version == 4 { 632 } else { 54 + 648 };
        assert_eq!(rq.signed_bytes(), &bytes[..signed_len], "{rel}");
        // The QE report as received equals its re-encoding (reserved bytes zero).
        let qe = &q.signature_data.qe_report_certification_data;
        assert_eq!(rq.qe_report_bytes().len(), QE_REPORT_SIZE);
        assert_eq!(
            rq.qe_report_bytes(),
            qe.qe_report.to_bytes().as_slice(),
            "{rel}"
        );
        // QE binding: report_data = SHA-256(attestation key ‖ QE auth data) ‖ 0^32.
        let mut h = Sha256::new();
        h.update(q.signature_data.attestation_key);
        h.update(&qe.qe_auth_data);
        let digest: [u8; 32] = h.finalize().into();
        assert_eq!(&qe.qe_report.report_data[..32], digest.as_slice(), "{rel}");
        assert_eq!(&qe.qe_report.report_data[32..], &[0u8; 32], "{rel}");
        assert_eq!(qe.qe_auth_data.len(), 32, "{rel}");
        // Nested type 5: a NUL-terminated PEM chain of three certificates.
        assert_eq!(
            qe.certification_data.cert_data_type,
            CERT_DATA_TYPE_PCK_CHAIN
        );
        assert_eq!(qe.certification_data.data.last(), Some(&0));
        let pem = qe.certification_data.pck_cert_chain_pem().unwrap();
        assert_eq!(pem.last(), Some(&b'\n'));
        let pem = std::str::from_utf8(pem).unwrap();
        assert_eq!(
            pem.matches("-----BEGIN CERTIFICATE-----").count(),
            3,
            "{rel}"
        );
        // Intel's QE.
        assert_eq!(
            hex(&qe.qe_report.mr_signer),
            "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5",
            "{rel}"
        );
        assert_eq!(qe.qe_report.isv_prod_id, 2, "{rel}");
    }
}

#[test]
fn dcap_qvl_v4_quote_values() {
    let q = parse("tdx/dcap-qvl/tdx_quote");
    let QuoteBody::Td10(b) = &q.body else {
        panic!("v4 body is TD 1.0")
    };
    assert_eq!(hex(&b.tee_tcb_svn), "06010300000000000000000000000000");
    assert_eq!(
        hex(&b.mr_seam),
        "5b38e33a6487958b72c3c12a938eaa5e3fd4510c51aeeab58c7d5ecee41d7c436489d6c8e4f92f160b7cad34207b00c1"
    );
    assert_eq!(b.mr_signer_seam, [0; 48]);
    assert_eq!(b.seam_attributes, [0; 8]);
    assert_eq!(hex(&b.td_attributes), "0000001000000000");
    let attrs = b.td_attributes();
    assert!(attrs.sept_ve_disable() && !attrs.debug() && !attrs.under_debug());
    assert_eq!(attrs.reserved_bits(), 0);
    assert_eq!(hex(&b.xfam), "e702060000000000");
    assert_eq!(
        hex(&b.mr_td),
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    );
    assert_eq!(
        (b.mr_config_id, b.mr_owner, b.mr_owner_config),
        ([0; 48], [0; 48], [0; 48])
    );
    assert_eq!(
        hex(&b.rtmr[0]),
        "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0"
    );
    assert_eq!(
        hex(&b.rtmr[1]),
        "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378"
    );
    assert_eq!(
        hex(&b.rtmr[2]),
        "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132"
    );
    assert_eq!(b.rtmr[3], [0; 48]);
    assert_eq!(
        hex(&b.report_data),
        "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
    );
    let qe = &q.signature_data.qe_report_certification_data.qe_report;
    assert_eq!((qe.isv_prod_id, qe.isv_svn), (2, 6));
    assert_eq!(q.signed_len(), 632);
    assert_eq!(q.trailing_len, 70);
}

#[test]
fn dcap_qvl_v5_outdated_quote_is_td15() {
    let q = parse("tdx/dcap-qvl/tdx_quote_outdated");
    assert_eq!(q.header.version, 5);
    let QuoteBody::Td15(b) = &q.body else {
        panic!("body type 3")
    };
    assert_eq!(q.body.size(), 648);
    assert_eq!(q.signed_len(), 54 + 648);
    assert!(q.body.td15().is_some());
    assert_eq!(b.td10.td_attributes, q.body.td10().td_attributes);
}

#[test]
fn trustee_quote_values() {
    let q4 = parse("tdx/trustee/tdx_quote_4.dat");
    let b = q4.body.td10();
    assert_eq!(hex(&b.td_attributes), "0100001000000000");
    assert!(b.td_attributes().debug(), "DEBUG TD");
    assert!(hex(&b.mr_td).starts_with("705ee938") && hex(&b.mr_td).ends_with("9ce5f031"));
    assert!(
        hex(&b.report_data).starts_with("7c71fe2c") && hex(&b.report_data).ends_with("71501429")
    );

    let q5 = parse("tdx/trustee/tdx_quote_5.dat");
    assert_eq!((q5.header.version, q5.body.body_type()), (5, 3));
    let b15 = q5.body.td15().unwrap();
    assert_ne!(b15.mr_servicetd, [0; 48]);
    assert!(
        hex(&b15.mr_servicetd).starts_with("383c87d3")
            && hex(&b15.mr_servicetd).ends_with("7a5a033d")
    );

    let q6 = parse("tdx/trustee/tdx_quote_6.dat");
    let b = q6.body.td10();
    assert_eq!(q6.header.version, 4);
    assert!(
        hex(&b.mr_config_id).starts_with("889abf47") && hex(&b.mr_config_id).ends_with("b150ed67")
    );
    assert_ne!(&b.report_data[..48], &[0u8; 48]);
    assert_eq!(&b.report_data[48..], &[0u8; 16]);
    assert_eq!(q6.trailing_len, 70);
}

#[test]
fn tdreport_values_and_internal_hashes() {
    let bytes = fixture("tdx/intel-dcap/tdreport_for_test.dat");
    assert_eq!(bytes.len(), TDREPORT_SIZE);
    let r = TdReport::parse(&bytes).unwrap();
    assert_eq!(
        r.to_bytes().as_slice(),
        bytes.as_slice(),
        "serialize(parse(x)) != x"
    );
    let m = &r.report_mac_struct;
    assert_eq!(
        (
            m.report_type.tee_type,
            m.report_type.subtype,
            m.report_type.version
        ),
        (0x81, 0, 0)
    );
    assert_eq!(
        hex(&r.tee_tcb_info.tee_tcb_svn),
        hex_then_zeros("04000500", 12)
    );
    assert_eq!(
        hex(&r.td_info.mr_td),
        "bb1249bde960ef9b22d56eefb94b7f40ca3b528b31e6e4af0babb075c02ce5c1f63681101779927ea604f5aa49ec95b3"
    );
    assert_eq!(hex(&r.td_info.attributes), "0000005000000000");
    assert!(hex(&m.tee_tcb_info_hash).starts_with("3e00fdef8508b231"));
    assert!(hex(&m.tee_tcb_info_hash).ends_with("c7f72197"));
    assert!(hex(&m.tee_info_hash).starts_with("c155ed68c23976c9"));
    assert!(hex(&m.tee_info_hash).ends_with("e3c39ecd10"));
    // The hashes cover TEE_TCB_INFO (239 bytes) and TDINFO (512 bytes) of the re-encoding.
    let enc = r.to_bytes();
    let tcb_info_hash: [u8; 48] = Sha384::digest(&enc[0x100..0x1EF]).into();
    let td_info_hash: [u8; 48] = Sha384::digest(&enc[0x200..0x400]).into();
    assert_eq!(tcb_info_hash, m.tee_tcb_info_hash);
    assert_eq!(td_info_hash, m.tee_info_hash);
    assert_eq!(r.tee_tcb_info.tee_tcb_svn2, [0; 16], "TDX 1.0");
    assert_eq!(r.td_info.servtd_hash, [0; 48], "TDX 1.0");
}

#[test]
fn tdreport_malformed() {
    let good = fixture("tdx/intel-dcap/tdreport_for_test.dat");
    for len in [0, 1, 0x100, 0x3FF] {
        assert_eq!(
            TdReport::parse(&good[..len]),
            Err(FormatError::Truncated {
                what: "TDREPORT",
                needed: 1024,
                got: len
            })
        );
    }
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(
        TdReport::parse(&long),
        Err(FormatError::BadLength {
            field: "TDREPORT",
            ..
        })
    ));
    let mut b = good.clone();
    b[0] = 0x00; // SGX report type
    assert_eq!(
        TdReport::parse(&b),
        Err(FormatError::UnsupportedValue {
            field: "REPORTTYPE.TYPE",
            offset: 0,
            value: 0
        })
    );
    for (byte, offset, len) in [
        (3, 3, 1),
        (4, 4, 12),
        (0xC0, 0xC0, 32),
        (0x190, 0x190, 0x70),
        (0x1F0, 0x190, 0x70),
        (0x3C0, 0x3C0, 64),
    ] {
        let mut b = good.clone();
        b[byte] = 1;
        assert_eq!(
            TdReport::parse(&b),
            Err(FormatError::ReservedNotZero {
                what: "TDREPORT",
                offset,
                len
            }),
            "byte {byte:#x}"
        );
    }
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn truncated_quotes_fail_with_the_field_that_was_cut() {
    let good = fixture("tdx/trustee/tdx_quote_4.dat");
    let cases = [
        (0, "quote version"),
        (1, "quote version"),
        (2, "att_key_type"),
        (8, "quote header"),
        (20, "qe_vendor_id"),
        (47, "user_data"),
        (48, "TEE_TCB_SVN"),
        (300, "MROWNER"),
        (340, "MROWNERCONFIG"),
        (631, "REPORTDATA"),
        (632, "signature_data_len"),
        (634, "signature_data_len"),
    ];
    for (len, what) in cases {
        match Quote::parse(&good[..len]) {
            Err(FormatError::Truncated { what: w, got, .. }) => {
                assert_eq!((w, got), (what, len), "len {len}")
            }
            other => panic!("len {len}: {other:?}"),
        }
    }
    // Past 636 the declared signature_data_len no longer fits.
    for len in [636, 700, 1000, 4000, 4935] {
        assert_eq!(
            Quote::parse(&good[..len]),
            Err(FormatError::LengthOutOfBounds {
                field: "signature_data_len",
                offset: 632,
                declared: 4300,
                available: len - 636
            }),
            "len {len}"
        );
    }
}

#[test]
fn oversized_declared_lengths_are_out_of_bounds() {
    let good = fixture("tdx/dcap-qvl/tdx_quote"); // v4; signature data at 632
    let sig = 632;
    let cert_size = sig + 4 + 128 + 2;
    let qe = cert_size + 4;
    let auth_len = qe + 384 + 64;
    let inner_size = auth_len + 2 + 32 + 2;

    let mut b = good.clone();
    set_u32(&mut b, sig, u32::MAX);
    assert!(matches!(
        Quote::parse(&b),
        Err(FormatError::LengthOutOfBounds {
            field: "signature_data_len",
            declared: 0xFFFF_FFFF,
            ..
        })
    ));
    let mut b = good.clone();
    set_u32(&mut b, cert_size, 4300);
    assert_eq!(
        Quote::parse(&b),
        Err(FormatError::LengthOutOfBounds {
            field: "certification data size",
            offset: cert_size,
            declared: 4300,
            available: 4166
        })
    );
    let mut b = good.clone();
    set_u16(&mut b, auth_len, 0xFFFF);
    assert!(matches!(
        Quote::parse(&b),
        Err(FormatError::LengthOutOfBounds { field: "qe_auth_data_len", offset, declared: 0xFFFF, .. }) if offset == auth_len
    ));
    let mut b = good.clone();
    set_u32(&mut b, inner_size, 3679);
    assert_eq!(
        Quote::parse(&b),
        Err(FormatError::LengthOutOfBounds {
            field: "QE certification data size",
            offset: inner_size,
            declared: 3679,
            available: 3678
        })
    );
    // Shorter declared lengths leave bytes their region does not account for.
    let mut b = good.clone();
    set_u32(&mut b, inner_size, 3677);
    assert_eq!(
        Quote::parse(&b),
        Err(FormatError::TrailingBytes {
            what: "QE report certification data",
            offset: 4935,
            len: 1
        })
    );
    let mut b = good.clone();
    set_u32(&mut b, sig, 4301);
    assert_eq!(
        Quote::parse(&b),
        Err(FormatError::TrailingBytes {
            what: "signature data",
            offset: 4936,
            len: 1
        })
    );
}

#[test]
fn wrong_versions_and_types_are_rejected() {
    let v4 = fixture("tdx/trustee/tdx_quote_4.dat");
    let v5 = fixture("tdx/dcap-qvl/tdx_quote_outdated");
    for version in [0u16, 1, 3, 6, 0xFFFF] {
        let mut b = v4.clone();
        set_u16(&mut b, 0, version);
        assert_eq!(
            Quote::parse(&b),
            Err(FormatError::UnsupportedVersion {
                what: "TDX quote",
                version: version.into()
            })
        );
    }
    let mut b = v4.clone();
    set_u16(&mut b, 2, 3); // ECDSA-384
    assert_eq!(
        Quote::parse(&b),
        Err(FormatError::UnsupportedValue {
            field: "att_key_type",
            offset: 2,
            value: 3
        })
    );
    let mut b = v4.clone();
    set_u32(&mut b, 4, 0); // SGX
    assert_eq!(
        Quote::parse(&b),
        Err(FormatError::UnsupportedValue {
            field: "tee_type",
            offset: 4,
            value: 0
        })
    );
    let mut b = v4.clone();
    b[9] = 1;
    assert_eq!(
        Quote::parse(&b),
        Err(FormatError::ReservedNotZero {
            what: "quote header",
            offset: 8,
            len: 4
        })
    );
    for body_type in [0u16, 1, 5, 0xFFFF] {
        let mut b = v5.clone();
        set_u16(&mut b, 48, body_type);
        assert_eq!(
            Quote::parse(&b),
            Err(FormatError::UnsupportedValue {
                field: "body_type",
                offset: 48,
                value: body_type.into()
            })
        );
    }
    // tee-formats.md §4: `quote[50] ^= 1` on tdx_quote_outdated -> invalid body size.
    let mut b = v5.clone();
    b[50] ^= 1;
    assert_eq!(
        Quote::parse(&b),
        Err(FormatError::BadLength {
            field: "body_size",
            offset: 50,
            got: 649,
            expected: 648
        })
    );
    let mut b = v4.clone();
    set_u16(&mut b, 632 + 4 + 128, 5); // outer certification data must be type 6
    assert_eq!(
        Quote::parse(&b),
        Err(FormatError::UnsupportedValue {
            field: "certification data type",
            offset: 764,
            value: 5
        })
    );
    let inner_type = 632 + 4 + 128 + 6 + 384 + 64 + 2 + 32;
    let mut b = v4.clone();
    set_u16(&mut b, inner_type, 7);
    assert_eq!(
        Quote::parse(&b),
        Err(FormatError::UnsupportedValue {
            field: "QE certification data type",
            offset: inner_type,
            value: 7
        })
    );
    // QE report reserved bytes.
    let qe = 632 + 4 + 128 + 6;
    let mut b = v4.clone();
    b[qe + 100] = 1;
    assert_eq!(
        Quote::parse(&b),
        Err(FormatError::ReservedNotZero {
            what: "QE report",
            offset: qe + 96,
            len: 32
        })
    );
}

#[test]
fn v5_quotes_with_td10_and_td15ex_bodies_round_trip() {
    // Build v5 type 2 and type 4 quotes from real parts.
    let q = parse("tdx/dcap-qvl/tdx_quote_outdated");
    let QuoteBody::Td15(b15) = q.body.clone() else {
        panic!()
    };
    let mut td10 = q.clone();
    td10.body = QuoteBody::Td10(b15.td10.clone());
    let bytes = td10.to_bytes().unwrap();
    assert_eq!(
        (bytes[48], bytes[50]),
        (2, 0x48),
        "type 2, size 584 = 0x248"
    );
    let back = Quote::parse(&bytes).unwrap();
    assert_eq!(back, td10);
    assert_eq!(back.signed_len(), 54 + 584);

    let ex = tee_formats::tdx::TdQuoteBody15Ex {
        td15: b15,
        vmid: 1,
        td_id: [2; 32],
        dev_info: [3; 48],
        init_service_td_hash: [4; 48],
        init_service_td_attributes: [5; 8],
        init_cpu_svn: [6; 16],
        init_tee_tcb_svn: [7; 16],
        init_tee_fmspc: [8; 12],
        cur_service_td_hash: [9; 48],
        cur_service_td_attributes: [10; 8],
    };
    let mut q4 = q.clone();
    q4.body = QuoteBody::Td15Ex(Box::new(ex));
    let bytes = q4.to_bytes().unwrap();
    assert_eq!(u32::from_le_bytes(bytes[50..54].try_into().unwrap()), 885);
    assert_eq!(bytes[54 + 648], 1, "VMID right after the 1.5 body");
    assert_eq!(&bytes[54 + 877..54 + 885], &[10; 8]);
    assert_eq!(Quote::parse(&bytes).unwrap(), q4);

    // A v4 header cannot carry a 1.5 body.
    let mut bad = q.clone();
    bad.header.version = 4;
    assert!(matches!(
        bad.to_bytes(),
        Err(FormatError::UnsupportedValue { .. })
    ));
}
