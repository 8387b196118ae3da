//! Differential tests: every fixture through `tee-formats` and through the
//! upstream parser the team validated (`sev` 8.0.0), field
//! by field. Plus signature checks over *our* signed bytes (p384, which
//! `sev` already pulls in), which prove that the signed region
//! and the signature conversions this crate exposes are the right ones.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{fixture, SNP_REPORTS};
use sev::parser::ByteParser;
use tee_formats::snp::{Generation, ReceivedReport};

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
