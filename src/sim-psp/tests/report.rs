//! Reports from the real (4096-bit) simulation chain: they parse with
//! tee-formats, carry what was asked, and their signature verifies with the
//! VCEK public key from the certificate over the received bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

mod common;

use common::shared_chain;
use p384::ecdsa::signature::Verifier as _;
use p384::pkcs8::DecodePublicKey as _;
use sim_psp::SimPsp;
use tee_formats::snp::{Generation, ReceivedReport, SigningKey};
use wire::{CertKind, EvidenceBundle, Tee};
use x509_cert::der::{Decode as _, Encode as _};

const KERNEL: &[u8] = b"\x7fELF a kernel";
const INITRD: &[u8] = b"070701 an initramfs";
const CMDLINE: &str = "console=ttyS0 enclave.tee=sim";

fn psp() -> SimPsp {
    SimPsp::new(
        shared_chain(),
        measure::sim::sim_launch_digest(KERNEL, INITRD, CMDLINE),
    )
}

fn vcek_key(bundle: &EvidenceBundle) -> p384::ecdsa::VerifyingKey {
    let der = bundle.certificate(CertKind::Vcek).unwrap();
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    p384::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap()
}

/// Checks the signature as a verifier does (tee-formats.md §1.3): R and S
/// from their little-endian fields, over the received bytes 0x000..0x2A0.
fn signature_verifies(report: &[u8], key: &p384::ecdsa::VerifyingKey) -> bool {
    let Ok(received) = ReceivedReport::parse(report) else {
        return false;
    };
    let sig = received.report().signature;
    let Ok(sig) = p384::ecdsa::Signature::from_scalars(sig.r_be(), sig.s_be()) else {
        return false;
    };
    key.verify(received.signed_bytes(), &sig).is_ok()
}

/// The VCEK's AMD extensions, decoded here without sim-psp's reader.
fn vcek_extension(bundle: &EvidenceBundle, oid: &str) -> Vec<u8> {
    let cert =
        x509_cert::Certificate::from_der(bundle.certificate(CertKind::Vcek).unwrap()).unwrap();
    let oid = x509_cert::der::asn1::ObjectIdentifier::new(oid).unwrap();
    let exts = cert.tbs_certificate.extensions.unwrap();
    exts.iter()
        .find(|e| e.extn_id == oid)
        .unwrap()
        .extn_value
        .as_bytes()
        .to_vec()
}

#[test]
fn report_round_trips_through_tee_formats_with_the_fields_asked_for() {
    let psp = psp();
    let report_data: [u8; 64] = std::array::from_fn(|i| (i * 7) as u8);
    let bundle = psp.evidence(&report_data, 0).unwrap();
    assert_eq!(bundle.tee, Tee::Sim);
    assert_eq!(bundle.provider, "sim-psp");
    let received = ReceivedReport::parse(&bundle.evidence).unwrap();
    assert_eq!(
        received.to_bytes().as_slice(),
        &bundle.evidence[..],
        "parse keeps every byte"
    );
    let r = received.report();
    assert_eq!(r.version, 3);
    assert_eq!(r.report_data, report_data);
    assert_eq!(r.vmpl, 0);
    assert_eq!(
        r.measurement,
        measure::sim::sim_launch_digest(KERNEL, INITRD, CMDLINE)
    );
    assert_eq!(r.policy.raw(), 0x30000);
    assert_eq!(r.signature_algo, 1);
    assert_eq!(r.key_info.signing_key(), SigningKey::Vcek);
    assert!(!r.key_info.mask_chip_key() && !r.key_info.author_key_en());
    assert_eq!(r.generation().unwrap(), Generation::Milan);
    assert!(r.signature.high_bytes_zero());

    // REPORTED_TCB (and the other three) = the VCEK's SPL extensions; CHIP_ID = its hwID.
    let int = |oid: &str| u8::from_der(&vcek_extension(&bundle, oid)).unwrap();
    let tcb = r.reported_tcb.decode(Generation::Milan);
    assert_eq!(tcb.boot_loader, int("1.3.6.1.4.1.3704.1.3.1"));
    assert_eq!(tcb.tee, int("1.3.6.1.4.1.3704.1.3.2"));
    assert_eq!(tcb.snp, int("1.3.6.1.4.1.3704.1.3.3"));
    assert_eq!(tcb.microcode, int("1.3.6.1.4.1.3704.1.3.8"));
    assert_eq!(r.current_tcb, r.reported_tcb);
    assert_eq!(r.committed_tcb, r.reported_tcb);
    assert_eq!(r.launch_tcb, r.reported_tcb);
    assert_eq!(
        r.chip_id.as_slice(),
        vcek_extension(&bundle, "1.3.6.1.4.1.3704.1.4")
    );

    for vmpl in 1..=3 {
        let r = ReceivedReport::parse(&psp.report(&report_data, vmpl).unwrap()).unwrap();
        assert_eq!(r.report().vmpl, vmpl);
    }
}

#[test]
fn signature_verifies_over_the_received_bytes_and_fails_after_any_flip() {
    let psp = psp();
    let bundle = psp.evidence(&[0x42; 64], 0).unwrap();
    let key = vcek_key(&bundle);
    assert!(signature_verifies(&bundle.evidence, &key));
    // Every 7th byte of the signed range, and its last byte.
    for at in (0..0x2A0).step_by(7).chain([0x29F]) {
        let mut bad = bundle.evidence.to_vec();
        bad[at] ^= 0x80;
        assert!(
            !signature_verifies(&bad, &key),
            "flipping byte {at:#x} still verifies"
        );
    }
    // The signature itself.
    let mut bad = bundle.evidence.to_vec();
    bad[0x2A0] ^= 1;
    assert!(!signature_verifies(&bad, &key));
}

#[test]
fn every_report_is_freshly_signed_and_all_verify() {
    let psp = psp();
    let a = psp.report(&[1; 64], 0).unwrap();
    let b = psp.report(&[1; 64], 0).unwrap();
    // RFC 6979 signatures are deterministic: same request, same bytes.
    assert_eq!(a, b);
    let c = psp.report(&[2; 64], 0).unwrap();
    assert_ne!(a[0x2A0..0x330], c[0x2A0..0x330]);
    let key = vcek_key(&psp.evidence(&[0; 64], 0).unwrap());
    assert!(signature_verifies(&a, &key) && signature_verifies(&c, &key));
}

#[test]
fn bundle_json_round_trips_through_wire() {
    let bundle = psp().evidence(&[9; 64], 0).unwrap();
    let back = EvidenceBundle::from_json(&bundle.to_json()).unwrap();
    assert_eq!(back, bundle);
    let kinds: Vec<_> = back.certificates.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [CertKind::Vcek, CertKind::Ask, CertKind::Ark]);
}

#[test]
fn a_configured_policy_is_reported() {
    let psp = psp().with_policy(0xb0000).unwrap();
    let r = ReceivedReport::parse(&psp.report(&[0; 64], 0).unwrap()).unwrap();
    assert_eq!(r.report().policy.raw(), 0xb0000);
    assert!(r.report().policy.debug_allowed());
}
