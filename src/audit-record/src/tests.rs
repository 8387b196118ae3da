//! The format's tests, with real ring keys.

use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
};

use crate::*;

fn p256() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

fn p384() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

fn d(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

fn samples() -> Vec<Body> {
    vec![
        Body::Attestation(AttestationBody {
            evidence_sha256: d('a'),
            tee: "sev-snp".into(),
            measurement: "ab".repeat(48),
            tcb: "bootloader=3 tee=0 snp=22 microcode=213".into(),
            decision_id: "0123456789abcdef0123456789abcdef".into(),
            enclave_spki_sha256: d('b'),
        }),
        Body::SecretRelease(SecretBody {
            path: "kv/data/app/pepper".into(),
            version: 3,
        }),
        Body::SecretWithdrawal(SecretBody {
            path: "kv/data/app/pepper".into(),
            version: 3,
        }),
        Body::Call(CallBody {
            call_ref: Some(d('c')),
            start_ms: 1_796_000_000_000,
            duration_ms: 812,
            outcome: CallOutcome::Ok,
        }),
        Body::Call(CallBody {
            call_ref: None,
            start_ms: 1_796_000_000_001,
            duration_ms: 1,
            outcome: CallOutcome::Rejected,
        }),
        Body::Lifecycle(LifecycleBody {
            from: "attesting".into(),
            to: "serving".into(),
        }),
        Body::Decision(DecisionBody {
            request_id: "0123456789abcdef0123456789abcdef".into(),
            verdict: Verdict::Denied,
            tee: "tdx".into(),
            measurement: None,
            enclave_spki_sha256: None,
            evidence_sha256: d('e'),
            policy_id: "prod-eu".into(),
            policy_version: 7,
            denied_check: Some("tdx.quote_signature".into()),
        }),
        Body::Retention(RetentionBody {
            stream: "0123456789abcdef0123456789abcdef".into(),
            through_seq: 41,
            last_hash: d('f'),
            before_time: 1_790_000_000_000,
            deleted_count: 42,
        }),
    ]
}

#[test]
fn a_chain_of_every_kind_parses_verifies_and_links() {
    let key = p256();
    let signer = KeyPairSigner {
        pair: &key,
        alg: Alg::ES256,
    };
    let spki = signer.spki();
    let mut chain = Chain::new(&spki);
    assert_eq!(chain.stream().len(), 32);
    let mut reader = Chain::new(&spki);
    let mut prev = GENESIS_PREV;
    for (i, body) in samples().into_iter().enumerate() {
        let rec = chain
            .append(body.clone(), 1000 + i as u64, &signer)
            .unwrap();
        assert_eq!(rec.seq, i as u64);
        assert_eq!(rec.prev, prev);
        assert_eq!(rec.kind(), body.kind());
        let line = rec.to_line();
        assert!(line.len() <= MAX_LINE && !line.contains('\n'));
        let parsed = Record::parse(&line).unwrap();
        assert_eq!(parsed, rec);
        parsed.verify_sig(&spki).unwrap();
        reader.follow(&parsed).unwrap();
        prev = rec.hash();
    }
    assert_eq!(reader, chain);
    assert_eq!(chain.next_seq(), 8);
}

#[test]
fn the_line_is_pinned_byte_for_byte() {
    // The format's canonical bytes, written out: h2's collector and
    // verifier, and anything else reading the trail, re-serialize to these.
    let rec = Record {
        stream: "00112233445566778899aabbccddeeff".into(),
        seq: 5,
        prev: [0x11; 32],
        time: 1_796_000_000_123,
        body: Body::Call(CallBody {
            call_ref: None,
            start_ms: 7,
            duration_ms: 8,
            outcome: CallOutcome::UpstreamError,
        }),
        alg: Alg::ES256,
        sig: vec![0x30, 0x01],
    };
    let prev = "11".repeat(32);
    let unsigned = format!(
        r#"{{"v":1,"stream":"00112233445566778899aabbccddeeff","seq":5,"prev":"{prev}","time":1796000000123,"kind":"call","body":{{"call_ref":null,"start_ms":7,"duration_ms":8,"outcome":"upstream_error"}},"alg":"ES256"}}"#
    );
    assert_eq!(String::from_utf8(rec.canonical_bytes()).unwrap(), unsigned);
    let line = format!(
        r#"{}{},"sig":"3001"}}"#,
        &unsigned[..unsigned.len() - 1],
        ""
    );
    assert_eq!(rec.to_line(), line);
    let h = ring::digest::digest(&ring::digest::SHA256, line.as_bytes());
    assert_eq!(rec.hash().as_slice(), h.as_ref());
    assert_eq!(Record::parse(&line).unwrap(), rec);
}

#[test]
fn an_edited_record_or_another_key_fails_verification() {
    let key = p256();
    let signer = KeyPairSigner {
        pair: &key,
        alg: Alg::ES256,
    };
    let spki = signer.spki();
    let mut chain = Chain::new(&spki);
    let rec = chain.append(samples().swap_remove(1), 1, &signer).unwrap();
    rec.verify_sig(&spki).unwrap();

    let mut edited = rec.clone();
    edited.body = Body::SecretRelease(SecretBody {
        path: "kv/data/app/pepper".into(),
        version: 4,
    });
    assert_eq!(edited.verify_sig(&spki), Err(VerifyError::BadSignature));
    let mut retimed = rec.clone();
    retimed.time += 1;
    assert_eq!(retimed.verify_sig(&spki), Err(VerifyError::BadSignature));

    let other = p256();
    let other_spki = KeyPairSigner {
        pair: &other,
        alg: Alg::ES256,
    }
    .spki();
    assert_eq!(rec.verify_sig(&other_spki), Err(VerifyError::WrongStream));
    // The other key claiming the stream: its stream id is forged into the
    // record, the signature still fails.
    let mut forged = rec.clone();
    forged.stream = stream_id(&other_spki);
    assert_eq!(
        forged.verify_sig(&other_spki),
        Err(VerifyError::BadSignature)
    );
    // A P-384 key for an ES256 record.
    let big = KeyPairSigner {
        pair: &p384(),
        alg: Alg::ES384,
    }
    .spki();
    let mut wrong_alg = rec.clone();
    wrong_alg.stream = stream_id(&big);
    assert_eq!(wrong_alg.verify_sig(&big), Err(VerifyError::KeyNotForAlg));
}

#[test]
fn the_verifier_key_signs_es384() {
    let key = p384();
    let signer = KeyPairSigner {
        pair: &key,
        alg: Alg::ES384,
    };
    let spki = signer.spki();
    assert_eq!(spki.len(), 120);
    let mut chain = Chain::new(&spki);
    let rec = chain.append(samples().swap_remove(6), 9, &signer).unwrap();
    assert_eq!(rec.alg, Alg::ES384);
    assert_eq!(rec.sig.len(), 96);
    let parsed = Record::parse(&rec.to_line()).unwrap();
    parsed.verify_sig(&spki).unwrap();
    assert!(rec.to_line().contains(r#""alg":"ES384""#));
}

#[test]
fn append_refuses_bad_fields_and_a_foreign_signer_without_moving() {
    let key = p256();
    let signer = KeyPairSigner {
        pair: &key,
        alg: Alg::ES256,
    };
    let mut chain = Chain::new(&signer.spki());
    let quote = Body::SecretRelease(SecretBody {
        path: "kv/\"x".into(),
        version: 1,
    });
    assert_eq!(
        chain.append(quote, 1, &signer),
        Err(SignError::Field(body::FieldError {
            field: "path",
            rule: "text"
        }))
    );
    let upper = Body::Call(CallBody {
        call_ref: Some(d('A')),
        start_ms: 0,
        duration_ms: 0,
        outcome: CallOutcome::Ok,
    });
    assert!(matches!(
        chain.append(upper, 1, &signer),
        Err(SignError::Field(body::FieldError {
            field: "call_ref",
            ..
        }))
    ));
    let other = p256();
    let foreign = KeyPairSigner {
        pair: &other,
        alg: Alg::ES256,
    };
    assert_eq!(
        chain.append(samples().swap_remove(5), 1, &foreign),
        Err(SignError::WrongKey)
    );
    assert_eq!(chain.next_seq(), 0);
    assert_eq!(chain.prev(), GENESIS_PREV);
}

fn one_line() -> (String, Vec<u8>) {
    let key = p256();
    let signer = KeyPairSigner {
        pair: &key,
        alg: Alg::ES256,
    };
    let mut chain = Chain::new(&signer.spki());
    let rec = chain.append(samples().swap_remove(6), 77, &signer).unwrap();
    (rec.to_line(), signer.spki())
}

#[test]
fn parse_refuses_every_other_encoding() {
    let (line, _) = one_line();
    Record::parse(&line).unwrap();
    let err = |l: &str| Record::parse(l).unwrap_err();
    // Bounded.
    assert_eq!(err(&" ".repeat(MAX_LINE + 1)), ParseError::TooLong);
    // Unknown fields, top level and body.
    assert!(matches!(
        err(&line.replacen("{\"v\":1,", "{\"v\":1,\"x\":0,", 1)),
        ParseError::Shape(_)
    ));
    assert!(matches!(
        err(&line.replacen(
            "\"policy_version\":7",
            "\"policy_version\":7,\"extra\":1",
            1
        )),
        ParseError::Body(_)
    ));
    // Version, stream, prev, sig.
    assert_eq!(
        err(&line.replacen("{\"v\":1", "{\"v\":2", 1)),
        ParseError::Version(2)
    );
    let rec = Record::parse(&line).unwrap();
    assert_eq!(
        err(&line.replacen(&rec.stream, &rec.stream.to_uppercase(), 1)),
        ParseError::Stream
    );
    assert_eq!(
        err(&line.replacen(&"0".repeat(64), &"0".repeat(62), 1)),
        ParseError::Prev
    );
    let sig = crate::hex::encode(&rec.sig);
    assert_eq!(err(&line.replacen(&sig, "", 1)), ParseError::Sig);
    assert_eq!(
        err(&line.replacen(&sig, &sig.to_uppercase(), 1)),
        ParseError::Sig
    );
    // A body of another kind.
    assert!(matches!(
        err(&line.replacen("\"kind\":\"decision\"", "\"kind\":\"call\"", 1)),
        ParseError::Body(_)
    ));
    // A field breaking its rule.
    assert!(matches!(
        err(&line.replacen("\"tee\":\"tdx\"", "\"tee\":\"t x\"", 1)),
        ParseError::Field(_)
    ));
    // Same record, other encodings: spacing, field order, an escape, a
    // missing null, a float.
    assert_eq!(
        err(&line.replacen("\"seq\":0", "\"seq\": 0", 1)),
        ParseError::NotCanonical
    );
    assert_eq!(
        err(&line.replacen("\"tee\":\"tdx\"", "\"tee\":\"\\u0074dx\"", 1)),
        ParseError::NotCanonical
    );
    assert_eq!(
        err(&line.replacen("\"measurement\":null,", "", 1)),
        ParseError::NotCanonical
    );
    let swapped = line
        .replacen("{\"v\":1,", "{", 1)
        .replacen(",\"seq\"", ",\"v\":1,\"seq\"", 1);
    assert_eq!(err(&swapped), ParseError::NotCanonical);
    assert!(matches!(
        err(&line.replacen("\"time\":77", "\"time\":77.0", 1)),
        ParseError::Shape(_)
    ));
    // A trailing newline is the stream's separator, not part of the line.
    assert_eq!(err(&format!("{line}\n")), ParseError::NotCanonical);
}

#[test]
fn follow_names_gaps_replays_and_broken_links() {
    let key = p256();
    let signer = KeyPairSigner {
        pair: &key,
        alg: Alg::ES256,
    };
    let spki = signer.spki();
    let mut chain = Chain::new(&spki);
    let recs: Vec<Record> = samples()
        .into_iter()
        .map(|b| chain.append(b, 1, &signer).unwrap())
        .collect();

    let mut r = Chain::new(&spki);
    r.follow(&recs[0]).unwrap();
    r.follow(&recs[1]).unwrap();
    assert_eq!(
        r.follow(&recs[3]),
        Err(LinkError::Gap {
            expected: 2,
            got: 3
        })
    );
    assert_eq!(
        r.follow(&recs[1]),
        Err(LinkError::Replayed {
            expected: 2,
            got: 1
        })
    );
    // A record re-signed by the key with a forged prev: the chain catches
    // what the signature cannot.
    let mut spliced = Chain::after(&recs[0]);
    let forged = spliced
        .append(samples().swap_remove(5), 1, &signer)
        .unwrap();
    assert_eq!(forged.seq, 1);
    let mut r2 = Chain::new(&spki);
    r2.follow(&recs[0]).unwrap();
    r2.follow(&recs[1]).unwrap();
    let mut bad = recs[2].clone();
    bad.prev = forged.hash();
    assert_eq!(r2.follow(&bad), Err(LinkError::PrevMismatch { seq: 2 }));
    let other = Chain::new(b"another key");
    let mut r3 = other.clone();
    assert!(matches!(
        r3.follow(&recs[0]),
        Err(LinkError::WrongStream { .. })
    ));
    // Resuming after a trusted record continues the chain.
    let mut resumed = Chain::after(&recs[4]);
    for rec in &recs[5..] {
        resumed.follow(rec).unwrap();
    }
    assert_eq!(resumed, chain);
}

#[test]
fn call_refs_are_keyed_and_full_length() {
    let k1 = CallRefKey::new(b"pepper one, 32 bytes of secret..");
    let k2 = CallRefKey::new(b"pepper two, 32 bytes of secret..");
    let a = k1.call_ref("call-0001");
    assert_eq!(a.len(), 64);
    assert!(body::is_name(&a));
    assert_eq!(a, k1.call_ref("call-0001"));
    assert_ne!(a, k1.call_ref("call-0002"));
    assert_ne!(a, k2.call_ref("call-0001"));
    // Known answer: HMAC-SHA256(key, domain ‖ id) by ring's own HMAC.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"pepper one, 32 bytes of secret..");
    let tag = ring::hmac::sign(&key, b"enclave-audit-call-ref-v1\0call-0001");
    assert_eq!(a, crate::hex::encode(tag.as_ref()));
    assert_eq!(format!("{k1:?}"), "CallRefKey(..)");
}

#[test]
fn the_schema_names_every_field_of_every_kind() {
    let schema: serde_json::Value = serde_json::from_str(include_str!("../schema.json")).unwrap();
    let (line, _) = one_line();
    let top: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&line).unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let order: Vec<String> = {
        // serde_json's Map is sorted; the order is checked on the raw line.
        let mut keys: Vec<(usize, String)> = top
            .keys()
            .map(|k| (line.find(&format!("\"{k}\":")).unwrap(), k.clone()))
            .collect();
        keys.sort();
        keys.into_iter().map(|(_, k)| k).collect()
    };
    assert_eq!(required, order);
    let kinds: Vec<&str> = schema["properties"]["kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(kinds, Kind::ALL.map(Kind::as_str));
    for body in samples() {
        let kind = body.kind().as_str();
        let rule = schema["allOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["if"]["properties"]["kind"]["const"] == kind)
            .unwrap_or_else(|| panic!("no schema for {kind}"));
        let b = &rule["then"]["properties"]["body"];
        let mut want: Vec<&str> = b["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let got_v = serde_json::to_value(&body).unwrap();
        let mut got: Vec<&str> = got_v
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        want.sort();
        got.sort();
        assert_eq!(want, got, "schema body of {kind}");
        assert_eq!(b["additionalProperties"], false);
    }
}

#[test]
fn the_fuzz_seeds_are_records() {
    // The fuzz target's seeds (tests/fuzz/seeds/audit_record) start it from
    // valid lines of every shape; a format change that breaks them fails
    // here, not silently in the fuzzer's coverage.
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fuzz/seeds/audit_record"
    );
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if path.extension().is_some_and(|x| x == "jsonl") {
            Record::parse(&text).unwrap();
            n += 1;
        } else if text.starts_with("hello") {
            ship::parse_hello(&text).unwrap();
        } else {
            ship::parse_ack(&text).unwrap();
        }
    }
    assert_eq!(n, 7);
}
