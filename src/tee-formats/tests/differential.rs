//! Differential tests: every fixture through `tee-formats` and through the
//! upstream parsers the team validated (`sev` 8.0.0, `dcap-qvl` 0.7.1), field
//! by field. Plus signature checks over *our* signed bytes (p384/p256, the
//! curves those crates already pull in), which prove that the signed region
//! and the signature conversions this crate exposes are the right ones.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{fixture, SNP_REPORTS, TDX_QUOTES};
use sev::parser::ByteParser;
use tee_formats::snp::{Generation, ReceivedReport};
use tee_formats::tdx::{QuoteBody, ReceivedQuote};

#[test]
fn snp_reports_match_the_sev_crate() {
    for rel in SNP_REPORTS {
        let bytes = fixture(rel);
        let ours = ReceivedReport::parse(&bytes).unwrap();
        let r = ours.report();
        let theirs = sev::firmware::guest::AttestationReport::from_bytes(&bytes).unwrap();
        assert_eq!(r.version, theirs.version, "{rel}");
        assert_eq!(r.guest_svn, theirs.guest_svn, "{rel}");
        assert_eq!(r.policy.raw(), u64::from(theirs.policy), "{rel}");
        assert_eq!(
            r.policy.debug_allowed(),
            theirs.policy.debug_allowed(),
            "{rel}"
        );
        assert_eq!(r.policy.smt_allowed(), theirs.policy.smt_allowed(), "{rel}");
        assert_eq!(r.family_id, theirs.family_id, "{rel}");
        assert_eq!(r.image_id, theirs.image_id, "{rel}");
        assert_eq!(r.vmpl, theirs.vmpl, "{rel}");
        assert_eq!(r.signature_algo, theirs.sig_algo, "{rel}");
        assert_eq!(r.platform_info.raw(), u64::from(theirs.plat_info), "{rel}");
        assert_eq!(r.key_info.raw(), u32::from(theirs.key_info), "{rel}");
        assert_eq!(r.report_data, theirs.report_data, "{rel}");
        assert_eq!(r.measurement, theirs.measurement, "{rel}");
        assert_eq!(r.host_data, theirs.host_data, "{rel}");
        assert_eq!(r.id_key_digest, theirs.id_key_digest, "{rel}");
        assert_eq!(r.author_key_digest, theirs.author_key_digest, "{rel}");
        assert_eq!(r.report_id, theirs.report_id, "{rel}");
        assert_eq!(r.report_id_ma, theirs.report_id_ma, "{rel}");
        assert_eq!(r.chip_id, theirs.chip_id, "{rel}");
        let cpuid = r.cpuid();
        assert_eq!(cpuid.map(|c| c.family), theirs.cpuid_fam_id, "{rel}");
        assert_eq!(cpuid.map(|c| c.model), theirs.cpuid_mod_id, "{rel}");
        assert_eq!(cpuid.map(|c| c.stepping), theirs.cpuid_step, "{rel}");
        assert_eq!(
            r.mitigation_vectors().map(|v| v.0),
            theirs.launch_mit_vector,
            "{rel}"
        );
        assert_eq!(
            r.mitigation_vectors().map(|v| v.1),
            theirs.current_mit_vector,
            "{rel}"
        );
        let v = r.current_version();
        assert_eq!(
            (v.major, v.minor, v.build),
            (
                theirs.current.major,
                theirs.current.minor,
                theirs.current.build
            )
        );
        let v = r.committed_version();
        assert_eq!(
            (v.major, v.minor, v.build),
            (
                theirs.committed.major,
                theirs.committed.minor,
                theirs.committed.build
            )
        );
        // All fixtures are Milan (sev guesses it from CHIP_ID for v2).
        let generation = r.generation().unwrap_or(Generation::Milan);
        for (ours, theirs) in [
            (r.current_tcb, theirs.current_tcb),
            (r.reported_tcb, theirs.reported_tcb),
            (r.committed_tcb, theirs.committed_tcb),
            (r.launch_tcb, theirs.launch_tcb),
        ] {
            let d = ours.decode(generation);
            assert_eq!(
                (d.fmc, d.boot_loader, d.tee, d.snp, d.microcode),
                (
                    theirs.fmc,
                    theirs.bootloader,
                    theirs.tee,
                    theirs.snp,
                    theirs.microcode
                ),
                "{rel}"
            );
        }
        assert_eq!(&r.signature.r, theirs.signature.r(), "{rel}");
        assert_eq!(&r.signature.s, theirs.signature.s(), "{rel}");
        assert_eq!(
            theirs.to_bytes().unwrap().as_slice(),
            r.to_bytes().as_slice(),
            "{rel}: encoders agree"
        );
    }
}

/// ECDSA P-384/SHA-384 over `ReceivedReport::signed_bytes` with the VCEK/VLEK
/// key: our signed region and R/S conversion are the ones the PSP signed.
#[test]
fn snp_signatures_verify_over_our_signed_bytes() {
    use p384::ecdsa::signature::Verifier;
    let pairs = [
        (
            "snp/milan-v2-virtee/report.bin",
            "snp/milan-v2-virtee/vcek.der",
        ),
        (
            "snp/milan-v2-gosevguest/report.bin",
            "snp/milan-v2-gosevguest/vcek.der",
        ),
        (
            "snp/milan-v2-trustee/report.bin",
            "snp/milan-v2-trustee/vcek.der",
        ),
        (
            "snp/milan-v3-vlek-trustee/report.bin",
            "snp/milan-v3-vlek-trustee/vlek.der",
        ),
    ];
    for (report, cert) in pairs {
        let received = ReceivedReport::parse(&fixture(report)).unwrap();
        let cert = sev::certs::snp::Certificate::from_der(&fixture(cert)).unwrap();
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(cert.public_key_sec1()).unwrap();
        let sig = &received.report().signature;
        let sig = p384::ecdsa::Signature::from_scalars(sig.r_be(), sig.s_be()).unwrap();
        key.verify(received.signed_bytes(), &sig)
            .unwrap_or_else(|e| panic!("{report}: {e}"));
        // One flipped signed byte breaks it.
        let mut tampered = *received.signed_bytes();
        tampered[0x50] ^= 1;
        assert!(key.verify(&tampered, &sig).is_err(), "{report}");
    }
}

#[test]
fn tdx_quotes_match_dcap_qvl() {
    for rel in TDX_QUOTES {
        let bytes = fixture(rel);
        let ours = ReceivedQuote::parse(&bytes).unwrap();
        let q = ours.quote();
        let theirs = dcap_qvl::quote::Quote::parse(&bytes).unwrap();
        assert_eq!(q.header.version, theirs.header.version, "{rel}");
        assert_eq!(
            q.header.att_key_type, theirs.header.attestation_key_type,
            "{rel}"
        );
        assert_eq!(q.header.tee_type, theirs.header.tee_type, "{rel}");
        assert_eq!(
            (theirs.header.qe_svn, theirs.header.pce_svn),
            (0, 0),
            "{rel}: reserved in TDX"
        );
        assert_eq!(q.header.qe_vendor_id, theirs.header.qe_vendor_id, "{rel}");
        assert_eq!(q.header.user_data, theirs.header.user_data, "{rel}");
        assert_eq!(q.signed_len(), theirs.signed_length(), "{rel}");

        let b = q.body.td10();
        let t = theirs.report.as_td10().unwrap();
        assert_eq!(b.tee_tcb_svn, t.tee_tcb_svn, "{rel}");
        assert_eq!(b.mr_seam, t.mr_seam, "{rel}");
        assert_eq!(b.mr_signer_seam, t.mr_signer_seam, "{rel}");
        assert_eq!(b.seam_attributes, t.seam_attributes, "{rel}");
        assert_eq!(b.td_attributes, t.td_attributes, "{rel}");
        assert_eq!(b.xfam, t.xfam, "{rel}");
        assert_eq!(b.mr_td, t.mr_td, "{rel}");
        assert_eq!(b.mr_config_id, t.mr_config_id, "{rel}");
        assert_eq!(b.mr_owner, t.mr_owner, "{rel}");
        assert_eq!(b.mr_owner_config, t.mr_owner_config, "{rel}");
        assert_eq!(b.rtmr, [t.rt_mr0, t.rt_mr1, t.rt_mr2, t.rt_mr3], "{rel}");
        assert_eq!(b.report_data, t.report_data, "{rel}");
        match (&q.body, theirs.report.as_td15()) {
            (QuoteBody::Td10(_), None) => {}
            (QuoteBody::Td15(ours15), Some(t15)) => {
                assert_eq!(ours15.tee_tcb_svn2, t15.tee_tcb_svn2, "{rel}");
                assert_eq!(ours15.mr_servicetd, t15.mr_service_td, "{rel}");
            }
            (body, other) => panic!("{rel}: body {} vs {other:?}", body.body_type()),
        }

        let dcap_qvl::quote::AuthData::V4(a) = &theirs.auth_data else {
            panic!("{rel}: v4 auth data")
        };
        let sd = &q.signature_data;
        assert_eq!(sd.signature, a.ecdsa_signature, "{rel}");
        assert_eq!(sd.attestation_key, a.ecdsa_attestation_key, "{rel}");
        assert_eq!(a.certification_data.cert_type, 6, "{rel}");
        let qe = &sd.qe_report_certification_data;
        assert_eq!(qe.qe_report.to_bytes(), a.qe_report_data.qe_report, "{rel}");
        assert_eq!(
            ours.qe_report_bytes(),
            a.qe_report_data.qe_report.as_slice(),
            "{rel}"
        );
        assert_eq!(
            qe.qe_report_signature, a.qe_report_data.qe_report_signature,
            "{rel}"
        );
        assert_eq!(qe.qe_auth_data, a.qe_report_data.qe_auth_data.data, "{rel}");
        assert_eq!(
            qe.certification_data.cert_data_type,
            a.qe_report_data.certification_data.cert_type
        );
        assert_eq!(
            qe.certification_data.data, a.qe_report_data.certification_data.body.data,
            "{rel}"
        );
        assert_eq!(
            qe.certification_data.data.as_slice(),
            theirs.raw_cert_chain().unwrap(),
            "{rel}"
        );
    }
}

/// ECDSA P-256 by the attestation key over `ReceivedQuote::signed_bytes`.
#[test]
fn tdx_quote_signatures_verify_over_our_signed_bytes() {
    use p256::ecdsa::signature::Verifier;
    for rel in TDX_QUOTES {
        let received = ReceivedQuote::parse(&fixture(rel)).unwrap();
        let sd = &received.quote().signature_data;
        let mut sec1 = vec![0x04];
        sec1.extend_from_slice(&sd.attestation_key);
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&sd.signature).unwrap();
        key.verify(received.signed_bytes(), &sig)
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
    }
}
