//! Nitro chains this test makes itself (P-384, as a simulated NSM's): the
//! simulation root accepted only where a policy pins it (`nitro-sim`), and
//! every way a chain can fail to lead to a pinned root, named `nitro.chain`;
//! the COSE signature checked with the leaf's key first; the session
//! binding through the Appraiser, as the verifier calls it.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use appraisal::{Appraiser, Check, Collateral, Policy};
use common::{accepted, consistent, denied, names, t};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    SigningKey, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
};
use sha2::{Digest, Sha256};
use tee_formats::nitro::{encode_cose_sign1, sig_structure, AttestationDoc, PROTECTED_ES384};
use wire::{EvidenceBundle, Tee};

const NOW: &str = "2025-06-01T12:00:00Z";
const PCR0: [u8; 48] = [0xa0; 48];

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

fn params(cn: &str, ca: bool) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = if ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2026, 1, 1);
    p
}

fn root(cn: &str) -> Ca {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let params = params(cn, true);
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Ca { params, key, der }
}

fn issue(issuer: &Ca, cn: &str, ca: bool) -> Ca {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let params = params(cn, ca);
    let der = params
        .signed_by(&key, &Issuer::from_params(&issuer.params, &issuer.key))
        .unwrap()
        .der()
        .to_vec();
    Ca { params, key, der }
}

/// A simulated NSM: root → intermediate → leaf.
struct Nsm {
    root: Ca,
    inter: Ca,
    leaf: Ca,
}

fn nsm() -> Nsm {
    let root = root("sim-nsm root");
    let inter = issue(&root, "sim-nsm zonal", true);
    let leaf = issue(&inter, "sim-nsm enclave", false);
    Nsm { root, inter, leaf }
}

/// A document with `cabundle`, signed by `signer`, its certificate `leaf`.
fn document(
    signer: &KeyPair,
    leaf: &[u8],
    cabundle: &[&[u8]],
    user_data: Option<&[u8]>,
    tagged: bool,
) -> Vec<u8> {
    document_with(signer, leaf, cabundle, user_data, tagged, |_| {})
}

/// [`document`], its payload edited by `edit` before it is signed.
fn document_with(
    signer: &KeyPair,
    leaf: &[u8],
    cabundle: &[&[u8]],
    user_data: Option<&[u8]>,
    tagged: bool,
    edit: impl FnOnce(&mut AttestationDoc<'_>),
) -> Vec<u8> {
    let pcrs: Vec<(u8, &[u8])> = (0u8..16)
        .map(|i| (i, if i < 3 { &PCR0[..] } else { &[0u8; 48][..] }))
        .collect();
    let mut doc = AttestationDoc {
        module_id: "i-00000000000000000-enc0000000000000000",
        digest: "SHA384",
        timestamp_ms: u64::try_from(t(NOW)).unwrap() * 1000,
        pcrs,
        certificate: leaf,
        cabundle: cabundle.to_vec(),
        public_key: None,
        user_data,
        nonce: None,
    };
    edit(&mut doc);
    let payload = doc.encode_payload();
    let der_sig = signer
        .sign(&sig_structure(&PROTECTED_ES384, &payload))
        .unwrap();
    let sig = p384::ecdsa::Signature::from_der(&der_sig).unwrap();
    let mut raw = [0u8; 96];
    raw.copy_from_slice(&sig.to_bytes());
    encode_cose_sign1(&payload, &raw, tagged)
}

fn sim_policy(root_der: &[u8]) -> Policy {
    let pin = appraisal::hex::encode(&Sha256::digest(root_der));
    Policy::from_toml(
        format!("[nitro]\nallowed = true\nsim_root_sha256 = [\"{pin}\"]\n").as_bytes(),
    )
    .unwrap()
}

fn appraise(
    document: Vec<u8>,
    p: &Policy,
    report_data: Option<&[u8; 64]>,
) -> (
    Result<appraisal::Claims, appraisal::Denial>,
    appraisal::Trace,
) {
    let b = EvidenceBundle::new(Tee::Nitro, "sim-nsm", document);
    Appraiser::new()
        .unwrap()
        .appraise_traced(&b, p, t(NOW), report_data, &Collateral::none())
}

#[test]
fn a_pinned_simulation_root_gives_nitro_sim_claims_bound_to_the_session() {
    let n = nsm();
    let rd = tee_formats::binding::report_data(&[7; 32], b"spki", &[9; 32]);
    for tagged in [false, true] {
        let doc = document(
            &n.leaf.key,
            &n.leaf.der,
            &[&n.root.der, &n.inter.der],
            Some(&rd),
            tagged,
        );
        let (r, trace) = appraise(doc, &sim_policy(&n.root.der), Some(&rd));
        let c = accepted(consistent((r, trace.clone())));
        assert_eq!(c.tee, "nitro-sim");
        assert_eq!(c.report_data, appraisal::hex::encode(&rd));
        assert_eq!(
            c.relaxations,
            ["nitro.sim_root_sha256 (simulated NSM: no hardware guarantee)"]
        );
        assert_eq!(
            names(&trace)[13..],
            [
                "nitro.binding.user_data:pass",
                "nitro.binding.nonce:skip",
                "nitro.binding.enclave_key:skip"
            ]
        );
    }
    // Another session's binding.
    let doc = document(
        &n.leaf.key,
        &n.leaf.der,
        &[&n.root.der, &n.inter.der],
        Some(&rd),
        false,
    );
    let other = tee_formats::binding::report_data(&[8; 32], b"spki", &[9; 32]);
    let d = denied(
        consistent(appraise(doc, &sim_policy(&n.root.der), Some(&other))),
        Check::NitroBindingUserData,
    );
    assert_eq!(d.got, appraisal::hex::encode(&rd));
    // No user_data at all.
    let doc = document(
        &n.leaf.key,
        &n.leaf.der,
        &[&n.root.der, &n.inter.der],
        None,
        false,
    );
    let d = denied(
        consistent(appraise(doc, &sim_policy(&n.root.der), Some(&rd))),
        Check::NitroBindingUserData,
    );
    assert_eq!(d.got, "");
}

#[test]
fn an_unpinned_root_is_refused_as_chain() {
    let n = nsm();
    let doc = document(
        &n.leaf.key,
        &n.leaf.der,
        &[&n.root.der, &n.inter.der],
        None,
        false,
    );
    let p = Policy::from_toml(b"[nitro]\nallowed = true\n").unwrap();
    let (r, trace) = appraise(doc.clone(), &p, None);
    let d = denied(consistent((r, trace.clone())), Check::NitroChain);
    assert_eq!(
        d.got,
        format!(
            "cabundle[0] has SHA-256 {}, not the pinned AWS root 641a0321…8f79bb5b",
            appraisal::hex::encode(&Sha256::digest(&n.root.der))
        )
    );
    assert_eq!(
        names(&trace),
        [
            "nitro.not_allowed:pass",
            "nitro.format:pass",
            "nitro.signature:pass",
            "nitro.chain:fail"
        ]
    );
    // Another simulation root's pin does not cover it.
    let other = root("other root");
    let d = denied(
        consistent(appraise(doc, &sim_policy(&other.der), None)),
        Check::NitroChain,
    );
    assert!(
        d.got.ends_with("nor a pinned simulated NSM root"),
        "{}",
        d.got
    );
}

#[test]
fn broken_chains_are_refused_as_chain() {
    let n = nsm();
    let p = sim_policy(&n.root.der);
    // The intermediate left out: the leaf's issuer is not the root.
    let doc = document(&n.leaf.key, &n.leaf.der, &[&n.root.der], None, false);
    let d = denied(consistent(appraise(doc, &p, None)), Check::NitroChain);
    assert_eq!(
        d.got,
        "certificate (leaf): issuer is not the subject \"sim-nsm root\" of the certificate before it"
    );
    // An intermediate that is not a CA.
    let not_ca = issue(&n.root, "sim-nsm zonal", false);
    let leaf = issue(&not_ca, "sim-nsm enclave", false);
    let doc = document(
        &leaf.key,
        &leaf.der,
        &[&n.root.der, &not_ca.der],
        None,
        false,
    );
    let d = denied(consistent(appraise(doc, &p, None)), Check::NitroChain);
    assert_eq!(
        d.got,
        "cabundle[1]: issues a certificate but BasicConstraints cA is false"
    );
    // An intermediate with the right name but another key (a forgery).
    let forger = root("sim-nsm root");
    let forged = issue(&forger, "sim-nsm zonal", true);
    let leaf = issue(&forged, "sim-nsm enclave", false);
    let doc = document(
        &leaf.key,
        &leaf.der,
        &[&n.root.der, &forged.der],
        None,
        false,
    );
    let d = denied(consistent(appraise(doc, &p, None)), Check::NitroChain);
    assert_eq!(d.got, "cabundle[1]: ECDSA P-384 signature does not verify");
}

#[test]
fn a_chain_under_the_real_aws_root_must_be_signed_by_it() {
    // An intermediate named like AWS's root's subject, signed by our key:
    // cabundle[0] is the genuine pinned root, so only the signature tells.
    let aws = include_bytes!("../roots/aws_nitro_enclaves_root_g1.der");
    let mut aws_params = params("aws.nitro-enclaves", true);
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CountryName,
        rcgen::DnValue::PrintableString("US".try_into().unwrap()),
    );
    dn.push(DnType::OrganizationName, "Amazon");
    dn.push(DnType::OrganizationalUnitName, "AWS");
    dn.push(DnType::CommonName, "aws.nitro-enclaves");
    aws_params.distinguished_name = dn;
    let fake = Ca {
        key: KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap(),
        params: aws_params,
        der: Vec::new(),
    };
    let inter = issue(&fake, "zonal", true);
    let leaf = issue(&inter, "enclave", false);
    let doc = document(&leaf.key, &leaf.der, &[aws, &inter.der], None, false);
    let p = Policy::from_toml(b"[nitro]\nallowed = true\n").unwrap();
    let d = denied(consistent(appraise(doc, &p, None)), Check::NitroChain);
    assert_eq!(d.got, "cabundle[1]: ECDSA P-384 signature does not verify");
}

#[test]
fn the_cose_signature_is_checked_with_the_leaf_key_first() {
    let n = nsm();
    let p = sim_policy(&n.root.der);
    // Signed by the intermediate's key, not the leaf's.
    let doc = document(
        &n.inter.key,
        &n.leaf.der,
        &[&n.root.der, &n.inter.der],
        None,
        false,
    );
    let (r, trace) = appraise(doc, &p, None);
    let d = denied(consistent((r, trace.clone())), Check::NitroSignature);
    assert_eq!(
        d.got,
        "the ES384 signature does not verify over the Sig_structure"
    );
    assert_eq!(names(&trace).last().unwrap(), "nitro.signature:fail");
    // A P-256 leaf: no ES384 key.
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = params("p256", false)
        .signed_by(&key, &Issuer::from_params(&n.inter.params, &n.inter.key))
        .unwrap();
    let doc = document(
        &n.leaf.key,
        leaf.der(),
        &[&n.root.der, &n.inter.der],
        None,
        false,
    );
    let d = denied(consistent(appraise(doc, &p, None)), Check::NitroSignature);
    assert_eq!(d.got, "leaf certificate key: EC key is not on secp384r1");
}

#[test]
fn only_sha384_pcrs_with_pcr0_to_2_pass_the_digest_check() {
    let n = nsm();
    let p = sim_policy(&n.root.der);
    let bundle: [&[u8]; 2] = [&n.root.der, &n.inter.der];
    static SHORT: [u8; 32] = [0xa0; 32];
    for (edit, got) in [
        (
            Box::new(|d: &mut AttestationDoc<'_>| d.digest = "SHA256")
                as Box<dyn FnOnce(&mut AttestationDoc<'_>)>,
            "digest \"SHA256\"",
        ),
        (
            Box::new(|d: &mut AttestationDoc<'_>| d.pcrs[1].1 = &SHORT),
            "PCR1 of 32 bytes",
        ),
        (
            Box::new(|d: &mut AttestationDoc<'_>| {
                d.pcrs.remove(2);
            }),
            "no PCR2",
        ),
    ] {
        let doc = document_with(&n.leaf.key, &n.leaf.der, &bundle, None, false, edit);
        let (r, trace) = appraise(doc, &p, None);
        let d = denied(consistent((r, trace.clone())), Check::NitroDigest);
        assert_eq!(d.got, got);
        assert_eq!(
            names(&trace),
            [
                "nitro.not_allowed:pass",
                "nitro.format:pass",
                "nitro.signature:pass",
                "nitro.chain:pass",
                "nitro.time:pass",
                "nitro.digest:fail"
            ]
        );
    }
}

#[test]
fn a_document_from_the_future_or_before_the_chain_is_refused_as_time() {
    let n = nsm();
    let p = sim_policy(&n.root.der);
    let bundle: [&[u8]; 2] = [&n.root.der, &n.inter.der];
    // 301 s ahead of the verifier's time: beyond the allowed skew.
    let ahead = u64::try_from(t(NOW) + 301).unwrap() * 1000;
    let doc = document_with(&n.leaf.key, &n.leaf.der, &bundle, None, false, |d| {
        d.timestamp_ms = ahead
    });
    let d = denied(consistent(appraise(doc, &p, None)), Check::NitroTime);
    assert_eq!(
        d.got,
        "timestamp 2025-06-01T12:05:01Z is after the verifier's time 2025-06-01T12:00:00Z"
    );
    // 300 s ahead: within it.
    let doc = document_with(&n.leaf.key, &n.leaf.der, &bundle, None, false, |d| {
        d.timestamp_ms = ahead - 1000;
    });
    accepted(consistent(appraise(doc, &p, None)));
    // A timestamp in seconds (as blocky's self-signed document has): 1970.
    let doc = document_with(&n.leaf.key, &n.leaf.der, &bundle, None, false, |d| {
        d.timestamp_ms = u64::try_from(t(NOW)).unwrap();
    });
    let d = denied(consistent(appraise(doc, &p, None)), Check::NitroTime);
    assert!(d.got.starts_with("cabundle[0] (sim-nsm root) is valid 2025-01-01T00:00:00Z .. 2026-01-01T00:00:00Z, not at the document's timestamp 1970-01-21T"), "{}", d.got);
}
