//! AWS Nitro Enclaves: the real AWS-issued attestation documents of
//! `shared/fixtures/cloud/nitro` (SOURCES.md §1), each at a time pinned
//! inside its window, with the verdict SOURCES.md gives; then PCR pins,
//! time, debug, the chain and the session binding.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use appraisal::nitro::{self, Binding};
use appraisal::{Appraiser, Check, Collateral, Policy};
use base64::Engine;
use common::{accepted, consistent, denied, names, t};
use wire::{EvidenceBundle, Tee};

fn doc(rel: &str) -> Vec<u8> {
    let text = common::read(&format!("cloud/nitro/{rel}"));
    base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8(text).unwrap().trim())
        .unwrap()
}

const E1: &str = "eternis/example_attestation@56801aa3.b64";
const E1_NOW: &str = "2024-07-31T20:30:00Z";
const E1_PCR0: &str = "a873085089ae5e3c3c491c8e1e0ab46a713f4314b3c6401abb599ca36060922a3d6fc2a3e84d198a2131e80c60959bb3";
const E1_PCR1: &str = "4b4d5b3661b3efc12920900c80e126e4ce783c522de6c02a2a5bf7af3a2b9327b86776f188e4be1c1c404a129dbda493";
const E1_PCR2: &str = "e1853b9c159778310885479b764c0b277125ceca4688d858e0d9180c26fcc710141220ad7482bd524f3adefd5ff2af0f";
const E1_PCR4: &str = "7c0a65e1456f71483c68fcd39bd607b50da6ba790300cf117f16d47130984b40003b28895ecb25c143dff47ed95178f6";
const E2: &str = "eternis/example_attestation_2@56801aa3.b64";
const E2_NOW: &str = "2024-07-31T21:00:00Z";
const E2_PCR0: &str = "a6cdfede5b1e7950de33218995add7d8f1f6e059c9cccd204316e69feaa2ce54f6f9ff6f5992db0f1ca6135f9b095b85";
const E2_PCR2: &str = "96305fcb8857758cba8e5b260f32dba1e00be6343c11521a5c24db6834955f116e884df8c7b2a6a1736295b48c82af14";
const BLOCKY: &str = "blocky-nitrite/nitro_attestation.b64";
const BLOCKY_NOW: &str = "2024-09-07T15:00:00Z";
const BLOCKY_PCR0: &str = "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a";
const BLOCKY_PCR1: &str = "0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d623e8805f3f605946b3d8b0c6aa";
const BLOCKY_PCR2: &str = "d5dcbdea0aa39c802f9d55ced2ea6e4d74ecec5f08fe40c508882639c9090642669106a062a3e24ee2805a3024b9b75c";
const BLOCKY_DEBUG: &str = "blocky-nitrite/nitro_attestation_debug.b64";
const BLOCKY_DEBUG_NOW: &str = "2024-09-07T15:00:00Z";
/// Debug documents of the Eternis enclave, each with a time in its window.
const ETERNIS_DEBUG: [(&str, &str); 3] = [
    (
        "eternis/example_attestation@0de63773.b64",
        "2024-09-06T05:00:00Z",
    ),
    (
        "eternis/example_attestation@HEAD.b64",
        "2024-09-09T20:00:00Z",
    ),
    ("eternis/lib_rs_test_verify.b64", "2024-09-17T20:48:11Z"),
];
const ETERNIS_PCR3: &str = "671ca1e328f75015b2aeee60639cc5252bc835d8bb690444d1f8e2bf4260f73dc1b71e07a14a770c7d0becac6eb3b53f";
const INVALID: &str = "eternis/invalid_attestation.b64";
const INVALID_NOW: &str = "2024-07-23T22:00:00Z";
const SELFSIGNED: &str = "blocky-nitrite/selfsigned_attestation.b64";

fn policy(extra: &str) -> Policy {
    Policy::from_toml(format!("[nitro]\nallowed = true\n{extra}").as_bytes()).unwrap()
}

fn pins(pcr0: &str, pcr1: &str, pcr2: &str) -> Policy {
    policy(&format!(
        "pcr0 = [\"{pcr0}\"]\npcr1 = [\"{pcr1}\"]\npcr2 = [\"{pcr2}\"]\n"
    ))
}

/// Through the Appraiser (the verifier's path: a bundle, REPORT_DATA only).
fn appraise_bundle(
    document: Vec<u8>,
    p: &Policy,
    now: &str,
) -> (
    Result<appraisal::Claims, appraisal::Denial>,
    appraisal::Trace,
) {
    let b = EvidenceBundle::new(Tee::Nitro, "nsm", document);
    Appraiser::new()
        .unwrap()
        .appraise_traced(&b, p, t(now), None, &Collateral::none())
}

fn appraise(rel: &str, p: &Policy, now: &str) -> Result<appraisal::Claims, appraisal::Denial> {
    consistent(appraise_bundle(doc(rel), p, now))
}

const ACCEPTED_UNBOUND: &[&str] = &[
    "nitro.not_allowed:pass",
    "nitro.format:pass",
    "nitro.signature:pass",
    "nitro.chain:pass",
    "nitro.time:pass",
    "nitro.digest:pass",
    "nitro.debug:pass",
    "nitro.pcr0:pass",
    "nitro.pcr1:pass",
    "nitro.pcr2:pass",
    "nitro.pcr3:skip",
    "nitro.pcr4:skip",
    "nitro.pcr8:skip",
    "nitro.binding.user_data:skip",
    "nitro.binding.nonce:skip",
    "nitro.binding.enclave_key:skip",
];

#[test]
fn production_documents_are_accepted_under_their_pcrs_with_the_exact_trace() {
    for (rel, now, p) in [
        (E1, E1_NOW, pins(E1_PCR0, E1_PCR1, E1_PCR2)),
        (E2, E2_NOW, pins(E2_PCR0, E1_PCR1, E2_PCR2)),
        (
            BLOCKY,
            BLOCKY_NOW,
            pins(BLOCKY_PCR0, BLOCKY_PCR1, BLOCKY_PCR2),
        ),
    ] {
        let (r, trace) = appraise_bundle(doc(rel), &p, now);
        let c = accepted(consistent((r, trace.clone())));
        assert_eq!(names(&trace), ACCEPTED_UNBOUND, "{rel}");
        assert_eq!(c.tee, "nitro");
        assert!(c.relaxations.is_empty(), "{:?}", c.relaxations);
    }
    let c = accepted(appraise(E1, &pins(E1_PCR0, E1_PCR1, E1_PCR2), E1_NOW));
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["nitro"]["pcrs"]["4"], E1_PCR4);
    assert_eq!(json["nitro"]["timestamp_ms"], 1_722_455_771_686u64);
    assert_eq!(json["policy_flags"]["debug"], false);
    assert_eq!(json["tcb"], serde_json::Value::Null);
    // measurement = SHA-384(PCR0 ‖ PCR1 ‖ PCR2), by an independent hasher.
    let mut h = <sha2::Sha384 as sha2::Digest>::new();
    for p in [E1_PCR0, E1_PCR1, E1_PCR2] {
        sha2::Digest::update(&mut h, appraisal::hex::decode(p).unwrap());
    }
    assert_eq!(
        c.measurement,
        appraisal::hex::encode(&sha2::Digest::finalize(h))
    );
    assert_eq!(
        c.report_data,
        "12207e991a88fee0f1797486f4520d2a74f6616d94cc6018442fa67e6330ab91e9f51220\
         0000000000000000000000000000000000000000000000000000000000000000"
    );
}

#[test]
fn a_wrong_pcr_is_named() {
    let zero = "00".repeat(48);
    let d = denied(
        appraise(E1, &pins(E2_PCR0, E1_PCR1, E1_PCR2), E1_NOW),
        Check::NitroPcr0,
    );
    assert_eq!(d.got, E1_PCR0);
    assert_eq!(d.want, format!("one of [{E2_PCR0}]"));
    denied(
        appraise(E1, &pins(E1_PCR0, &zero, E1_PCR2), E1_NOW),
        Check::NitroPcr1,
    );
    // The second Eternis image: same PCR1, other PCR2.
    denied(
        appraise(E2, &pins(E2_PCR0, E1_PCR1, E1_PCR2), E2_NOW),
        Check::NitroPcr2,
    );
    let p = policy(&format!("pcr4 = [\"{E1_PCR0}\"]\n"));
    let d = denied(appraise(E1, &p, E1_NOW), Check::NitroPcr4);
    assert_eq!(d.got, E1_PCR4);
    // PCR8 is all zero in an unsigned EIF: a pin on a signing cert refuses it.
    let p = policy(&format!("pcr8 = [\"{E1_PCR0}\"]\n"));
    let d = denied(appraise(E1, &p, E1_NOW), Check::NitroPcr8);
    assert_eq!(d.got, zero);
    let p = policy(&format!("pcr3 = [\"{ETERNIS_PCR3}\"]\n"));
    denied(appraise(E1, &p, E1_NOW), Check::NitroPcr3);
}

#[test]
fn documents_outside_their_window_are_refused_as_time() {
    let p = pins(E1_PCR0, E1_PCR1, E1_PCR2);
    // Window 2024-07-31 19:56:08 .. 22:56:11 (the leaf).
    accepted(appraise(E1, &p, "2024-07-31T19:56:11Z"));
    accepted(appraise(E1, &p, "2024-07-31T22:56:11Z"));
    let d = denied(appraise(E1, &p, "2024-07-31T22:56:12Z"), Check::NitroTime);
    assert!(d.got.starts_with("certificate (leaf) ("), "{}", d.got);
    assert!(
        d.got
            .ends_with("not at the verifier's time 2024-07-31T22:56:12Z"),
        "{}",
        d.got
    );
    // Long after: every certificate has expired.
    denied(appraise(E1, &p, "2026-01-01T00:00:00Z"), Check::NitroTime);
    // The verifier's clock behind the document by more than the skew.
    let d = denied(appraise(E1, &p, "2024-07-31T19:50:00Z"), Check::NitroTime);
    assert_eq!(
        d.got,
        "timestamp 2024-07-31T19:56:11Z is after the verifier's time 2024-07-31T19:50:00Z"
    );
}

#[test]
fn the_bad_cose_signature_is_refused_before_the_chain() {
    let (r, trace) = appraise_bundle(doc(INVALID), &policy("debug_allowed = true\n"), INVALID_NOW);
    let d = denied(consistent((r, trace.clone())), Check::NitroSignature);
    assert_eq!(
        d.got,
        "the ES384 signature does not verify over the Sig_structure"
    );
    assert_eq!(
        names(&trace),
        [
            "nitro.not_allowed:pass",
            "nitro.format:pass",
            "nitro.signature:fail"
        ]
    );
}

#[test]
fn debug_documents_are_refused_unless_debug_allowed() {
    let mut all = vec![(BLOCKY_DEBUG, BLOCKY_DEBUG_NOW)];
    all.extend(ETERNIS_DEBUG);
    for (rel, now) in all {
        let d = denied(appraise(rel, &policy(""), now), Check::NitroDebug);
        assert_eq!(d.got, "PCR0 all zero (debug mode)", "{rel}");
        let c = accepted(appraise(rel, &policy("debug_allowed = true\n"), now));
        assert_eq!(c.tee, "nitro");
        assert_eq!(
            c.relaxations,
            ["nitro.debug_allowed = true (PCR0 all zero: the parent can read enclave memory)"]
        );
        assert_eq!(
            serde_json::to_value(&c).unwrap()["policy_flags"]["debug"],
            true
        );
    }
    // lib_rs_test_verify: the upstream test's PCR3 pin holds too.
    let p = policy(&format!(
        "debug_allowed = true\npcr3 = [\"{ETERNIS_PCR3}\"]\n"
    ));
    accepted(appraise(ETERNIS_DEBUG[2].0, &p, ETERNIS_DEBUG[2].1));
    // A production document is not debug: its trace passes nitro.debug.
    accepted(appraise(BLOCKY, &policy(""), BLOCKY_NOW));
}

#[test]
fn the_self_signed_document_is_refused_as_chain() {
    // Its COSE signature verifies with its own (self-signed) leaf; it has no
    // cabundle, so nothing leads to the AWS root.
    let (r, trace) = appraise_bundle(
        doc(SELFSIGNED),
        &policy("debug_allowed = true\n"),
        "2024-04-17T19:00:00Z",
    );
    let d = denied(consistent((r, trace.clone())), Check::NitroChain);
    assert_eq!(d.got, "cabundle is empty: no root (a self-signed document)");
    assert_eq!(
        names(&trace),
        [
            "nitro.not_allowed:pass",
            "nitro.format:pass",
            "nitro.signature:pass",
            "nitro.chain:fail"
        ]
    );
}

#[test]
fn not_allowed_and_production_policies() {
    let p = Policy::from_toml(b"[nitro]\nallowed = false\n").unwrap();
    let d = denied(appraise(E1, &p, E1_NOW), Check::NitroNotAllowed);
    assert_eq!(d.got, "nitro evidence");
    let sim = "[nitro]\nallowed = true\nsim_root_sha256 = [\"641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b\"]\n";
    assert!(Policy::from_toml(sim.as_bytes()).is_ok());
    assert_eq!(
        Policy::production(sim.as_bytes()).unwrap_err().to_string(),
        "nitro.sim_root_sha256 (a simulated NSM root) is refused by the production constructor"
    );
}

#[test]
fn the_binding_is_checked_when_the_caller_has_it() {
    let d = doc(BLOCKY);
    let p = policy("");
    let ones = [1u8; 1024];
    // blocky's user_data, nonce and public_key are 1024 bytes of 0x01.
    let (r, trace) = nitro::appraise(
        &d,
        &p,
        t(BLOCKY_NOW),
        &Binding {
            report_data: None,
            nonce: Some(&ones),
            enclave_spki: Some(&ones),
        },
    );
    accepted(consistent((r, trace.clone())));
    assert_eq!(
        names(&trace)[13..],
        [
            "nitro.binding.user_data:skip",
            "nitro.binding.nonce:pass",
            "nitro.binding.enclave_key:pass"
        ]
    );
    let rd = [1u8; 64];
    let (r, trace) = nitro::appraise(
        &d,
        &p,
        t(BLOCKY_NOW),
        &Binding {
            report_data: Some(&rd),
            ..Binding::default()
        },
    );
    let den = denied(consistent((r, trace.clone())), Check::NitroBindingUserData);
    assert_eq!(den.want, "01".repeat(64));
    assert_eq!(
        names(&trace).last().unwrap(),
        "nitro.binding.user_data:fail"
    );
    let (r, _) = nitro::appraise(
        &d,
        &p,
        t(BLOCKY_NOW),
        &Binding {
            nonce: Some(&ones[..32]),
            ..Binding::default()
        },
    );
    denied(r, Check::NitroBindingNonce);
    let (r, _) = nitro::appraise(
        &d,
        &p,
        t(BLOCKY_NOW),
        &Binding {
            enclave_spki: Some(b"spki"),
            ..Binding::default()
        },
    );
    denied(r, Check::NitroBindingEnclaveKey);
}

/// OpenSSL, an independent oracle, on the same bytes: the COSE signature
/// over the Sig_structure (good on a real document, bad on
/// `invalid_attestation`, whose chain is still good) and the chain to the
/// pinned root at the document's time.
#[test]
fn openssl_agrees_on_signatures_and_chains() {
    use std::process::Command;
    let openssl = std::env::var_os("OPENSSL").unwrap_or_else(|| "openssl".into());
    if let Err(e) = Command::new(&openssl).arg("version").output() {
        if std::env::var("ENCLAVE_ALLOW_SKIP_OPENSSL").is_ok_and(|v| v == "1") {
            eprintln!("SKIPPED (ENCLAVE_ALLOW_SKIP_OPENSSL=1): openssl not available ({e})");
            return;
        }
        panic!("openssl not available ({e}): the independent check needs it (scripts/deps/apt.txt); set ENCLAVE_ALLOW_SKIP_OPENSSL=1 to skip it on purpose");
    }
    let pem = |der: &[u8]| {
        let b = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    };
    let dir = std::env::temp_dir().join(format!("nitro-openssl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (rel, signature_ok) in [(E1, true), (BLOCKY, true), (INVALID, false)] {
        let bytes = doc(rel);
        let d = tee_formats::nitro::Document::parse(&bytes).unwrap();
        let f = |name: &str| dir.join(name);
        std::fs::write(f("root.pem"), pem(d.doc.cabundle[0])).unwrap();
        let rest: String = d.doc.cabundle[1..].iter().map(|c| pem(c)).collect();
        std::fs::write(f("untrusted.pem"), rest).unwrap();
        std::fs::write(f("leaf.pem"), pem(d.doc.certificate)).unwrap();
        std::fs::write(f("data.bin"), d.sig_structure()).unwrap();
        let sig = p384::ecdsa::Signature::from_slice(d.signature).unwrap();
        std::fs::write(f("sig.der"), sig.to_der().as_bytes()).unwrap();
        let out = Command::new(&openssl)
            .args(["x509", "-pubkey", "-noout", "-in"])
            .arg(f("leaf.pem"))
            .output()
            .unwrap();
        std::fs::write(f("pub.pem"), &out.stdout).unwrap();
        let out = Command::new(&openssl)
            .args(["dgst", "-sha384", "-verify"])
            .arg(f("pub.pem"))
            .arg("-signature")
            .arg(f("sig.der"))
            .arg(f("data.bin"))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.success(), signature_ok, "{rel}: {said}");
        assert_eq!(
            said.trim(),
            if signature_ok {
                "Verified OK"
            } else {
                "Verification failure"
            }
        );
        let attime = (d.doc.timestamp_ms / 1000).to_string();
        let out = Command::new(&openssl)
            .args(["verify", "-attime", &attime, "-CAfile"])
            .arg(f("root.pem"))
            .arg("-untrusted")
            .arg(f("untrusted.pem"))
            .arg(f("leaf.pem"))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && said.contains(": OK"),
            "{rel}: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Bad input through the Appraiser: a real document cut, its payload map
/// made indefinite-length, its outer array made a map, and 10 MB of it:
/// each `nitro.format` with the offset, nothing after it.
#[test]
fn malformed_documents_are_refused_as_format_with_their_offset() {
    let p = pins(E1_PCR0, E1_PCR1, E1_PCR2);
    let real = doc(E1);
    let format = |bytes: Vec<u8>| {
        let (r, trace) = appraise_bundle(bytes, &p, E1_NOW);
        let d = denied(consistent((r, trace.clone())), Check::NitroFormat);
        assert_eq!(
            names(&trace),
            ["nitro.not_allowed:pass", "nitro.format:fail"]
        );
        d.got
    };
    assert_eq!(
        format(real[..real.len() - 1].to_vec()),
        "at byte 4459: signature needs 96 bytes, 95 remain"
    );
    // The payload is a bstr at offset 7 (0x59, 2 length bytes); its map head at 10.
    assert_eq!(real[10], 0xa9);
    let mut indefinite = real.clone();
    indefinite[10] = 0xbf;
    assert_eq!(
        format(indefinite),
        "at byte 10: indefinite-length map refused (definite lengths only)"
    );
    let mut wrong_major = real.clone();
    wrong_major[0] = 0xa4;
    assert_eq!(
        format(wrong_major),
        "at byte 0: COSE_Sign1: expected a array, found a map"
    );
    let mut huge = real.clone();
    huge.resize(10 * 1024 * 1024, 0);
    assert_eq!(
        format(huge),
        "at byte 0: document of 10485760 bytes, at most 16384 allowed"
    );
}
