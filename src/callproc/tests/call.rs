//! Tests of `callproc::call`: strict metadata parsing, its errors (never
//! echoing a phone number), and the full and safe JSON forms of a result.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

use callproc::audio::{parse_wav, Limits};
use callproc::call::{AgentType, AudioSummary, CallError, CallMetadata, CallResult, Field};
use callproc::pii::{normalize_phone, PhoneError, PhoneHasher, Region};
use serde_json::{json, Value};

const GOOD: &str = r#"{"call_id":"call-2024.11:01_a","shipment_id":"SHP-123","agent_type":"sara","caller_phone":"333 123 4567","language":"it-IT"}"#;

fn with(key: &str, value: Value) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(GOOD).unwrap();
    v[key] = value;
    serde_json::to_vec(&v).unwrap()
}

fn without(key: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(GOOD).unwrap();
    v.as_object_mut().unwrap().remove(key);
    serde_json::to_vec(&v).unwrap()
}

fn err(bytes: &[u8]) -> CallError {
    CallMetadata::from_json(bytes).unwrap_err()
}

/// Phone digits that must never appear in errors or logs.
fn assert_no_phone(s: &str) {
    for needle in ["3331234567", "333 123", "123 4567", "1234567", "+39"] {
        assert!(!s.contains(needle), "leaked {needle:?} in {s}");
    }
}

#[test]
fn parses_and_normalises() {
    let m = CallMetadata::from_json(GOOD.as_bytes()).unwrap();
    assert_eq!(m.call_id, "call-2024.11:01_a");
    assert_eq!(m.shipment_id, "SHP-123");
    assert_eq!(m.agent_type, AgentType::Sara);
    assert_eq!(m.caller_phone, "+393331234567");
    assert_eq!(m.language, "it-IT");

    for (raw, e164) in [
        ("+39 333 1234567", "+393331234567"),
        ("0039 06 1234 5678", "+390612345678"),
        ("+44 20 7946 0958", "+442079460958"),
    ] {
        let m = CallMetadata::from_json(&with("caller_phone", json!(raw))).unwrap();
        assert_eq!(m.caller_phone, e164);
    }
    for (raw, tag) in [("it", "it"), ("EN-us", "en-US"), ("en", "en")] {
        let m = CallMetadata::from_json(&with("language", json!(raw))).unwrap();
        assert_eq!(m.language, tag);
    }
    for a in AgentType::ALL {
        let m = CallMetadata::from_json(&with("agent_type", json!(a.as_str()))).unwrap();
        assert_eq!(m.agent_type, a);
    }
    // Whitespace and key order do not matter.
    let spaced = br#"
        { "language" : "en" , "caller_phone":"3331234567", "agent_type":"franco",
          "shipment_id":"s", "call_id":"c" }
    "#;
    let m = CallMetadata::from_json(spaced).unwrap();
    assert_eq!(m.agent_type, AgentType::Franco);
}

#[test]
fn agent_type_serde_and_names() {
    assert_eq!(
        serde_json::to_string(&AgentType::Marco).unwrap(),
        "\"marco\""
    );
    assert_eq!(
        serde_json::from_str::<AgentType>("\"franco\"").unwrap(),
        AgentType::Franco
    );
    assert!(serde_json::from_str::<AgentType>("\"Sara\"").is_err());
    assert_eq!(AgentType::from_name("sara"), Some(AgentType::Sara));
    assert_eq!(AgentType::from_name("SARA"), None);
    assert_eq!(AgentType::Sara.to_string(), "sara");
}

#[test]
fn debug_hides_phone() {
    let m = CallMetadata::from_json(GOOD.as_bytes()).unwrap();
    let d = format!("{m:?}");
    assert!(
        d.contains("call-2024.11:01_a") && d.contains("SHP-123"),
        "{d}"
    );
    assert!(d.contains("Sara") && d.contains("it-IT"), "{d}");
    assert_no_phone(&d);
}

#[test]
fn every_error_code() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "metadata.bad_json"),
        (b"{".to_vec(), "metadata.bad_json"),
        (b"{\"call_id\":\"a\",}".to_vec(), "metadata.bad_json"),
        (format!("{GOOD} x").into_bytes(), "metadata.bad_json"),
        (b"[]".to_vec(), "metadata.bad_json"),
        (b"\"+393331234567\"".to_vec(), "metadata.bad_json"),
        (b"3331234567".to_vec(), "metadata.bad_json"),
        (b"null".to_vec(), "metadata.bad_json"),
        (with("call_id", json!(1)), "metadata.bad_json"),
        (
            with("caller_phone", json!(3331234567u64)),
            "metadata.bad_json",
        ),
        (with("caller_phone", Value::Null), "metadata.bad_json"),
        (with("agent_type", json!(["sara"])), "metadata.bad_json"),
        (
            GOOD.replace(
                "\"language\":\"it-IT\"",
                "\"language\":\"it-IT\",\"language\":\"en\"",
            )
            .into_bytes(),
            "metadata.bad_json",
        ),
        (without("call_id"), "metadata.missing_field"),
        (without("shipment_id"), "metadata.missing_field"),
        (without("agent_type"), "metadata.missing_field"),
        (without("caller_phone"), "metadata.missing_field"),
        (without("language"), "metadata.missing_field"),
        (b"{}".to_vec(), "metadata.missing_field"),
        (with("extra", json!("x")), "metadata.unknown_field"),
        (with("Call_id", json!("x")), "metadata.unknown_field"),
        (with("call_id", json!("")), "metadata.bad_call_id"),
        (with("call_id", json!("a b")), "metadata.bad_call_id"),
        (with("call_id", json!("a/b")), "metadata.bad_call_id"),
        (
            with("call_id", json!("x".repeat(129))),
            "metadata.bad_call_id",
        ),
        (with("shipment_id", json!("")), "metadata.bad_shipment_id"),
        (
            with("shipment_id", json!("SHP#1")),
            "metadata.bad_shipment_id",
        ),
        (with("agent_type", json!("Sara")), "metadata.agent_type"),
        (with("agent_type", json!("")), "metadata.agent_type"),
        (with("agent_type", json!("luigi")), "metadata.agent_type"),
        (with("caller_phone", json!("")), "metadata.bad_phone"),
        (
            with("caller_phone", json!("333 ABC 4567")),
            "metadata.bad_phone",
        ),
        (with("caller_phone", json!("112")), "metadata.bad_phone"),
        (
            with("caller_phone", json!("+39 333 1234567 8901")),
            "metadata.bad_phone",
        ),
        (with("language", json!("")), "metadata.bad_language"),
        (with("language", json!("italian")), "metadata.bad_language"),
        (with("language", json!("it_IT")), "metadata.bad_language"),
        (with("language", json!("it-Italy")), "metadata.bad_language"),
    ];
    for (bytes, code) in &cases {
        let e = err(bytes);
        assert_eq!(e.code(), *code, "{}: {e}", String::from_utf8_lossy(bytes));
        assert_no_phone(&e.to_string());
        assert_no_phone(&format!("{e:?}"));
    }
    let accepted = [
        with("call_id", json!("x".repeat(128))),
        with("shipment_id", json!("a.b_c:d-E9")),
    ];
    for bytes in accepted {
        CallMetadata::from_json(&bytes).unwrap();
    }
}

#[test]
fn error_details() {
    assert_eq!(
        err(&without("shipment_id")),
        CallError::MissingField(Field::ShipmentId)
    );
    assert_eq!(
        err(&without("shipment_id")).to_string(),
        "missing field `shipment_id`"
    );
    assert_eq!(
        err(&with("extra_thing", json!(1))),
        CallError::UnknownField(Some("extra_thing".into()))
    );
    assert_eq!(
        err(&with("agent_type", json!("luigi"))).to_string(),
        "invalid agent_type `luigi`: expected one of sara, marco, franco"
    );
    assert_eq!(
        err(&with("caller_phone", json!("112"))),
        CallError::BadPhone(PhoneError::InvalidNationalNumber)
    );
    assert_eq!(
        err(&with("call_id", json!("ab cd"))).to_string(),
        "invalid call_id: character at position 2 is not one of A-Z a-z 0-9 . _ : -"
    );
    assert!(matches!(
        err(b"{\n  \"a\" 1}"),
        CallError::BadJson { line: 2, .. }
    ));
    assert_eq!(err(b"[1]").to_string(), "metadata must be a JSON object");
}

#[test]
fn errors_never_echo_phone_like_input() {
    let phones = [
        "+393331234567",
        "3331234567",
        "+39 333 123 4567",
        "333-123-4567",
        "0039 333 1234567",
    ];
    for p in phones {
        // The phone number in every position where a value can go wrong.
        let mut bad: Vec<Vec<u8>> = vec![
            with("agent_type", json!(p)),
            with("call_id", json!(p)),
            with("shipment_id", json!(format!("{p} "))),
            with("language", json!(p)),
            with(p, json!("x")),
            with("caller_phone", json!(format!("{p}x"))),
            with("caller_phone", json!(format!("{p}99999"))),
            format!("\"{p}\"").into_bytes(),
            format!("{{\"caller_phone\": \"{p}\"").into_bytes(),
            format!("{{\"caller_phone\": \"{p}\", \"caller_phone\": \"{p}\"}}").into_bytes(),
            format!("{{\"caller_phone\": \"{p}\" \"x\"}}").into_bytes(),
        ];
        // A phone number as an unknown field's value and key.
        bad.push(format!("{{\"{p}\": \"{p}\"}}").into_bytes());
        for bytes in bad {
            let Err(e) = CallMetadata::from_json(&bytes) else {
                // `call_id` cannot hold spaces or `+`; digits only is valid.
                continue;
            };
            let digits: String = p.chars().filter(char::is_ascii_digit).collect();
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains(p), "{shown}");
                assert!(!shown.contains(&digits[digits.len() - 7..]), "{shown}");
            }
        }
    }
}

fn wav_pcm16(samples: &[i16], rate: u32) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

const TRANSCRIPT: &str = "Questa è una trascrizione riservatissima: richiamatemi al \
                          +39 333 123 4567 oppure scrivete a mario.rossi@example.com, \
                          codice spedizione confidenziale ZEBRA.";

fn result() -> CallResult {
    let samples: Vec<i16> = (0..16000)
        .map(|i| ((i as f64 * 0.05).sin() * 8000.0) as i16)
        .collect();
    let file = wav_pcm16(&samples, 16000);
    let wav = parse_wav(&file, &Limits::default()).unwrap();
    let audio = AudioSummary::new(&wav, &wav.analyze());
    CallResult {
        metadata: CallMetadata::from_json(GOOD.as_bytes()).unwrap(),
        audio,
        transcript: TRANSCRIPT.into(),
        transcript_model: "whisper-large-v3".into(),
        processing_ms: 1234,
    }
}

#[test]
fn audio_summary() {
    let r = result();
    assert_eq!(r.audio.encoding, "pcm16");
    assert_eq!(r.audio.sample_rate_hz, 16000);
    assert!((r.audio.duration_secs - 1.0).abs() < 1e-9);
    assert!(r.audio.rms_dbfs < 0.0 && r.audio.peak_dbfs <= 0.0);
    assert!(r.audio.speech_ratio > 0.9);
    let j = r.audio.to_json();
    assert_eq!(j["encoding"], "pcm16");
    assert_eq!(j["sample_rate_hz"], 16000);
    assert!(j["rms_dbfs"].is_f64());
}

#[test]
fn full_json_has_everything() {
    let h = PhoneHasher::new(b"pepper-0123456789abcdef0123456789");
    let r = result();
    let j = r.full_json(&h);
    let e164 = normalize_phone("3331234567", Region::It).unwrap();
    assert_eq!(j["call_id"], "call-2024.11:01_a");
    assert_eq!(j["shipment_id"], "SHP-123");
    assert_eq!(j["agent_type"], "sara");
    assert_eq!(j["language"], "it-IT");
    assert_eq!(j["caller_phone"], "+393331234567");
    assert_eq!(j["transcript"], TRANSCRIPT);
    assert_eq!(j["transcript_model"], "whisper-large-v3");
    assert_eq!(j["processing_ms"], 1234);
    assert_eq!(j["audio"]["encoding"], "pcm16");
    assert_eq!(j["pii"]["caller_hash"], h.hash(&e164));
    assert!(j["pii"]["caller_hash"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));
    let red = j["pii"]["transcript_redacted"].as_str().unwrap();
    assert!(red.contains(&h.hash(&e164)), "{red}");
    assert!(red.contains("[EMAIL]") && red.contains("ZEBRA"), "{red}");
    assert_no_phone(red);
}

#[test]
fn the_log_view_names_the_call_by_a_keyed_pseudonym_and_nothing_else() {
    let h = PhoneHasher::new(b"pepper-0123456789abcdef0123456789");
    let r = result();
    let j = r.log_view(&h);
    let s = serde_json::to_string(&j).unwrap();
    // (Sorted: the map keeps insertion order when serde_json's
    // preserve_order is on somewhere in the workspace.)
    let mut keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "agent_type",
            "audio",
            "call",
            "language",
            "processing_ms",
            "transcript_model"
        ]
    );
    for absent in [
        "call-2024.11:01_a",
        "SHP-123",
        "hmac-sha256:",
        "1234567",
        "Questa",
        "MASKED",
    ] {
        assert!(!s.contains(absent), "{absent:?} in {s}");
    }
    // The pseudonym: 64 bits, stable for one pepper and id, different for
    // another id, another domain (a shipment id spelled like the call id)
    // and another pepper, and never the caller-hash form.
    let p = j["call"].as_str().unwrap();
    assert_eq!(p.len(), 3 + 16, "{p}");
    assert!(
        p.starts_with("id:") && p[3..].chars().all(|c| c.is_ascii_hexdigit()),
        "{p}"
    );
    assert_eq!(p, h.pseudonym("call_id", "call-2024.11:01_a"));
    assert_ne!(p, h.pseudonym("call_id", "call-2024.11:01_b"));
    assert_ne!(p, h.pseudonym("shipment_id", "call-2024.11:01_a"));
    assert_ne!(
        p,
        PhoneHasher::new(b"another-pepper-0123456789abcdef0")
            .pseudonym("call_id", "call-2024.11:01_a")
    );
    // Independent check of the construction: HMAC-SHA256 over the
    // documented message, first 8 bytes in hex.
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        b"pepper-0123456789abcdef0123456789",
    );
    let tag = ring::hmac::sign(&key, b"enclave-log-id-v1\0call_id\0call-2024.11:01_a");
    let want: String = tag.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(&p[3..], want);
}

#[test]
fn safe_view_leaks_nothing() {
    let h = PhoneHasher::new(b"pepper-0123456789abcdef0123456789");
    let mut r = result();
    let phones = [
        "+39 333 123 4567",
        "333 123 4567",
        "3331234567",
        "+393331234567",
        "0039 333 1234567",
        "333-123-4567",
    ];
    for raw in phones {
        r.metadata.caller_phone = normalize_phone(raw, Region::It).unwrap().as_str().into();
        let j = r.safe_view(&h);
        let s = serde_json::to_string(&j).unwrap();
        for p in phones {
            assert!(!s.contains(p), "{p} in {s}");
        }
        assert!(!s.contains("1234567"), "{s}");
        // Every transcript word after the 15th character is absent.
        let tail = TRANSCRIPT.chars().skip(15).collect::<String>();
        for word in tail.split(|c: char| !c.is_alphanumeric()) {
            if word.chars().count() >= 4 && word.chars().any(char::is_alphabetic) {
                assert!(!s.contains(word), "{word:?} in {s}");
            }
        }
        assert_eq!(
            j["transcript"],
            "Questa è una tr... [MASKED - ENCLAVE ONLY]"
        );
        assert_eq!(
            j["caller"],
            h.hash(&normalize_phone(raw, Region::It).unwrap())
        );
        assert_eq!(j["transcript_chars"], TRANSCRIPT.chars().count());
        assert_eq!(j["call_id"], "call-2024.11:01_a");
        assert_eq!(j["agent_type"], "sara");
        assert_eq!(j["language"], "it-IT");
        assert_eq!(j["processing_ms"], 1234);
        assert_eq!(j["audio"], r.audio.to_json());
        let keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(
            !keys.contains(&"caller_phone") && !keys.contains(&"pii"),
            "{keys:?}"
        );
    }
    // A transcript starting with a number: masked through redaction.
    r.transcript = "3331234567 mi richiami subito per favore".into();
    let s = serde_json::to_string(&r.safe_view(&h)).unwrap();
    assert!(!s.contains("3331234567") && !s.contains("favore"), "{s}");
    // A caller field that is not a number is shown as unparseable.
    r.metadata.caller_phone = "not a phone".into();
    assert_eq!(r.safe_view(&h)["caller"], "unparseable");
    assert_eq!(r.full_json(&h)["pii"]["caller_hash"], "unparseable");
    // Debug of the result: no transcript, no phone.
    let d = format!("{r:?}");
    assert!(!d.contains("richiami") && !d.contains("not a phone"), "{d}");
}

#[test]
fn mutations_never_panic_or_leak() {
    // xorshift64*, fixed seed.
    let mut s = 0x00C0_FFEE_u64;
    let mut next = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let seed = GOOD.as_bytes();
    let pieces: &[&[u8]] = &[
        b"\"", b"\\", b",", b":", b"{", b"}", b"null", b"\\u00e8", b"+39",
    ];
    for _ in 0..20_000 {
        let mut b = seed.to_vec();
        for _ in 0..1 + next() % 3 {
            let at = (next() % (b.len() as u64 + 1)) as usize;
            match next() % 4 {
                0 if at < b.len() => b[at] ^= 1 << (next() % 8),
                1 => b.truncate(at),
                2 => {
                    let p = pieces[(next() % pieces.len() as u64) as usize];
                    b.splice(at..at, p.iter().copied());
                }
                _ => {
                    let end = (at + (next() % 6) as usize).min(b.len());
                    b.drain(at..end);
                }
            }
        }
        if let Err(e) = CallMetadata::from_json(&b) {
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains("1234567"), "{shown}");
            }
        }
    }
}
