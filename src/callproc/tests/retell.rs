//! Tests of `callproc::retell`: signatures, the replay guard, event parsing
//! and the sanitized record. (Interoperability with Retell's own SDK is in
//! `retell_sdk.rs`.)
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

use callproc::pii::{normalize_phone, PhoneHasher, Region};
use callproc::retell::{
    sign, verify, EventType, ReplayGuard, RetellError, RetellEvent, Verified,
    DEFAULT_REPLAY_CAPACITY, DEFAULT_WINDOW_MS,
};
use ring::hmac;
use serde_json::{json, Value};

const KEY: &[u8] = b"key_0123456789abcdef";
const NOW: u64 = 1_714_608_500_000;
const W: u64 = DEFAULT_WINDOW_MS;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn sign_is_hmac_of_body_and_decimal_timestamp() {
    let body = br#"{"event":"call_started"}"#;
    let sig = sign(KEY, body, 1_700_000_000_123);
    let key = hmac::Key::new(hmac::HMAC_SHA256, KEY);
    let mut msg = body.to_vec();
    msg.extend_from_slice(b"1700000000123");
    let want = hex(hmac::sign(&key, &msg).as_ref());
    assert_eq!(sig, format!("v=1700000000123,d={want}"));
}

#[test]
fn verify_accepts_and_refuses() {
    let body = br#"{"event":"call_ended","call":{"call_id":"c1"}}"#;
    let sig = sign(KEY, body, NOW);
    let v = verify(KEY, body, Some(&sig), NOW, W).unwrap();
    assert_eq!(v.ts_ms, NOW);
    assert_eq!(format!("v={NOW},d={}", hex(&v.digest)), sig);
    // Window edges, both directions, inclusive.
    verify(KEY, body, Some(&sig), NOW + W, W).unwrap();
    verify(KEY, body, Some(&sig), NOW - W, W).unwrap();
    // Header whitespace is ignored.
    verify(KEY, body, Some(&format!("  {sig}\t")), NOW, W).unwrap();
    // A zero-padded timestamp signs the parsed value, as the SDK does.
    let padded = sig.replacen("v=", "v=000", 1);
    assert_eq!(verify(KEY, body, Some(&padded), NOW, W).unwrap(), v);

    let code =
        |body: &[u8], h: Option<&str>, now: u64| verify(KEY, body, h, now, W).unwrap_err().code();
    assert_eq!(code(body, None, NOW), "retell.signature_missing");
    assert_eq!(code(body, Some(""), NOW), "retell.signature_missing");
    assert_eq!(code(body, Some("   "), NOW), "retell.signature_missing");
    for bad in [
        "v=1".to_owned(),
        "garbage".to_owned(),
        sig.to_uppercase(),
        sig.replace(",d=", ", d="),
        sig.replace("v=", "V="),
        format!("{sig}0"),
        sig[..sig.len() - 1].to_owned(),
        format!("v=-{NOW},d={}", hex(&v.digest)),
        format!("v=99999999999999999999,d={}", hex(&v.digest)),
        format!("d={},v={NOW}", hex(&v.digest)),
        format!("v={NOW},d={}", "g".repeat(64)),
        format!("v=١٧,d={}", hex(&v.digest)),
    ] {
        assert_eq!(
            code(body, Some(&bad), NOW),
            "retell.signature_malformed",
            "{bad}"
        );
    }
    assert_eq!(
        verify(KEY, body, Some(&sig), NOW + W + 1, W),
        Err(RetellError::SignatureExpired { skew_ms: W + 1 })
    );
    assert_eq!(
        code(body, Some(&sig), NOW - W - 1),
        "retell.signature_expired"
    );
    assert_eq!(code(body, Some(&sig), 0), "retell.signature_expired");
    assert_eq!(code(body, Some(&sig), u64::MAX), "retell.signature_expired");
    // Changed body, other key, changed timestamp, flipped digest bit.
    assert_eq!(code(b"{}", Some(&sig), NOW), "retell.signature_invalid");
    let mut changed = body.to_vec();
    changed.push(b' ');
    assert_eq!(code(&changed, Some(&sig), NOW), "retell.signature_invalid");
    assert_eq!(
        verify(b"other key", body, Some(&sig), NOW, W)
            .unwrap_err()
            .code(),
        "retell.signature_invalid"
    );
    let moved = sig.replacen(&NOW.to_string(), &(NOW + 1).to_string(), 1);
    assert_eq!(code(body, Some(&moved), NOW), "retell.signature_invalid");
    let mut d = v.digest;
    d[31] ^= 1;
    let flipped = format!("v={NOW},d={}", hex(&d));
    assert_eq!(code(body, Some(&flipped), NOW), "retell.signature_invalid");
    // Expiry is checked before the HMAC (as the SDK).
    assert_eq!(
        code(b"{}", Some(&sig), NOW + W + 1),
        "retell.signature_expired"
    );
}

#[test]
fn error_texts_are_fixed() {
    for e in [
        RetellError::SignatureMissing,
        RetellError::SignatureMalformed,
        RetellError::SignatureExpired { skew_ms: 5 },
        RetellError::SignatureInvalid,
        RetellError::Replayed,
        RetellError::ReplayCacheFull { capacity: 3 },
        RetellError::BadJson { line: 1, column: 2 },
        RetellError::BadEvent("call missing"),
        RetellError::WrongType { field: "call" },
        RetellError::UnknownEvent(None),
        RetellError::UnknownEvent(Some("transcript_updated".into())),
    ] {
        assert!(e.code().starts_with("retell."));
        assert!(!e.to_string().is_empty());
    }
}

fn verified(ts_ms: u64, n: u8) -> Verified {
    Verified {
        ts_ms,
        digest: [n; 32],
    }
}

#[test]
fn replay_guard() {
    let mut g = ReplayGuard::new(3, W);
    assert!(g.is_empty() && g.capacity() == 3);
    let a = verified(NOW, 1);
    g.check_and_remember(&a, NOW).unwrap();
    assert!(!g.is_empty());
    assert_eq!(
        g.check_and_remember(&a, NOW + 10),
        Err(RetellError::Replayed)
    );
    // Same timestamp, other digest (another body): accepted.
    g.check_and_remember(&verified(NOW, 2), NOW).unwrap();
    // A future timestamp inside the window.
    let future = verified(NOW + W, 3);
    g.check_and_remember(&future, NOW).unwrap();
    assert_eq!(g.len(), 3);
    // Full, all inside the window: refused, nothing forgotten.
    let e = g
        .check_and_remember(&verified(NOW + 1, 4), NOW + 1)
        .unwrap_err();
    assert_eq!(e, RetellError::ReplayCacheFull { capacity: 3 });
    assert_eq!(e.code(), "retell.replay_cache_full");
    assert_eq!(
        g.check_and_remember(&a, NOW + W),
        Err(RetellError::Replayed)
    );
    // Once `a` leaves the window it is dropped, making room.
    g.check_and_remember(&verified(NOW + W + 1, 4), NOW + W + 1)
        .unwrap();
    assert_eq!(g.len(), 2);
    // The future entry is remembered until it, too, leaves the window.
    assert_eq!(
        g.check_and_remember(&future, NOW + 2 * W),
        Err(RetellError::Replayed)
    );
    // A stale Verified is refused as expired, never remembered.
    assert_eq!(
        g.check_and_remember(&verified(NOW, 9), NOW + 2 * W + 1)
            .unwrap_err()
            .code(),
        "retell.signature_expired"
    );
    assert_eq!(
        g.check_and_remember(&verified(NOW + 3 * W + 1, 9), NOW + W)
            .unwrap_err()
            .code(),
        "retell.signature_expired"
    );
    // Capacity 0 refuses everything.
    let mut z = ReplayGuard::new(0, W);
    assert_eq!(
        z.check_and_remember(&a, NOW).unwrap_err().code(),
        "retell.replay_cache_full"
    );
}

#[test]
fn replay_guard_end_to_end_and_bounded() {
    let mut g = ReplayGuard::new(DEFAULT_REPLAY_CAPACITY, W);
    let body = br#"{"event":"call_started","call":{"call_id":"x"}}"#;
    let sig = sign(KEY, body, NOW);
    let v = verify(KEY, body, Some(&sig), NOW + 1000, W).unwrap();
    g.check_and_remember(&v, NOW + 1000).unwrap();
    let again = verify(KEY, body, Some(&sig), NOW + 2000, W).unwrap();
    assert_eq!(
        g.check_and_remember(&again, NOW + 2000).unwrap_err().code(),
        "retell.replayed"
    );
    // One webhook every 100 ms for an hour: the guard never exceeds the
    // entries of one window (3000 + the current one).
    let mut g = ReplayGuard::new(DEFAULT_REPLAY_CAPACITY, W);
    for i in 0..36_000u64 {
        let now = NOW + i * 100;
        g.check_and_remember(&verified(now, (i % 251) as u8), now)
            .unwrap();
        assert!(g.len() <= 3001);
    }
}

fn sample_event() -> Value {
    json!({
        "event": "call_analyzed",
        "call": {
            "call_type": "phone_call",
            "from_number": "+39 333 123 4567",
            "to_number": "+390212345678",
            "direction": "inbound",
            "call_id": "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6",
            "agent_id": "oBeDLoLOeuAbiuaMFXRtDOLriTJ5tSxD",
            "agent_version": 3,
            "call_status": "ended",
            "metadata": {"shipment_id": "SHP-1", "note": "cliente 3331234567"},
            "retell_llm_dynamic_variables": {"customer_name": "Mario Rossi"},
            "start_timestamp": 1714608475945u64,
            "end_timestamp": 1714608491736u64,
            "disconnection_reason": "user_hangup",
            "transcript": "Agent: Buongiorno, sono Sara.\nUser: Salve, chiamo per la spedizione, il mio numero è 333 123 4567, grazie mille.",
            "transcript_object": [{"role": "agent", "content": "Buongiorno", "words": []}],
            "call_analysis": {
                "call_summary": "Richiesta informazioni sul pacco; recapito 3331234567, mail mario@example.com.",
                "in_voicemail": false,
                "user_sentiment": "Positive",
                "call_successful": true,
                "custom_analysis_data": {"phone_again": "+393331234567"}
            },
            "opt_out_sensitive_data_storage": false,
            "some_future_field": {"nested": [1, 2, 3]}
        }
    })
}

#[test]
fn parses_a_retell_payload() {
    let bytes = serde_json::to_vec(&sample_event()).unwrap();
    let e = RetellEvent::from_json(&bytes).unwrap();
    assert_eq!(e.event, EventType::CallAnalyzed);
    let c = &e.call;
    assert_eq!(c.call_id, "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6");
    assert_eq!(
        c.agent_id.as_deref(),
        Some("oBeDLoLOeuAbiuaMFXRtDOLriTJ5tSxD")
    );
    assert_eq!(c.call_type.as_deref(), Some("phone_call"));
    assert_eq!(c.from_number.as_deref(), Some("+39 333 123 4567"));
    assert_eq!(c.direction.as_deref(), Some("inbound"));
    assert_eq!(c.call_status.as_deref(), Some("ended"));
    assert_eq!(c.start_timestamp, Some(1714608475945));
    assert_eq!(c.end_timestamp, Some(1714608491736));
    assert_eq!(c.disconnection_reason.as_deref(), Some("user_hangup"));
    let a = c.call_analysis.as_ref().unwrap();
    assert_eq!(a.user_sentiment.as_deref(), Some("Positive"));
    assert_eq!(a.call_successful, Some(true));
    assert_eq!(a.in_voicemail, Some(false));
    assert!(a.custom_analysis_data.is_some());
    assert_eq!(c.metadata.as_ref().unwrap()["shipment_id"], "SHP-1");

    // Debug shows no number, transcript, summary or metadata.
    let d = format!("{e:?}");
    assert!(d.contains("Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6"), "{d}");
    // The analysis is shown, its free text redacted (not the whole of it
    // dropped: an operator still sees the outcome).
    let analysis = format!("{a:?}");
    assert_eq!(
        analysis,
        "CallAnalysis { call_summary: Some(<redacted>), user_sentiment: Some(\"Positive\"), \
         call_successful: Some(true), in_voicemail: Some(false), custom_analysis_data: Some(<redacted>) }"
    );
    for leak in [
        "333",
        "1234567",
        "Buongiorno",
        "Mario",
        "example.com",
        "SHP-1",
    ] {
        assert!(!d.contains(leak), "{leak} in {d}");
    }

    // Web call: no numbers, no direction; started events have no analysis.
    let web = json!({"event": "call_started", "call": {
        "call_id": "w1", "call_type": "web_call", "agent_id": "a",
        "call_status": "ongoing", "start_timestamp": 1, "from_number": null}});
    let e = RetellEvent::from_json(web.to_string().as_bytes()).unwrap();
    assert_eq!(e.event, EventType::CallStarted);
    assert_eq!(e.call.from_number, None);
    assert_eq!(e.call.to_number, None);
    let r = e.record(&PhoneHasher::new(b"p"));
    assert_eq!(r["from"], Value::Null);
    assert_eq!(r["duration_ms"], Value::Null);
    assert_eq!(r["transcript"], Value::Null);
    assert_eq!(r["call_summary"], Value::Null);
    assert_eq!(r["event"], "call_started");
    let ended = json!({"event": "call_ended", "call": {"call_id": "w1"}});
    assert_eq!(
        RetellEvent::from_json(ended.to_string().as_bytes())
            .unwrap()
            .event,
        EventType::CallEnded
    );
}

#[test]
fn event_errors() {
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), "retell.bad_event"),
        (json!("+393331234567"), "retell.bad_event"),
        (json!({}), "retell.bad_event"),
        (json!({"call": {"call_id": "c"}}), "retell.bad_event"),
        (
            json!({"event": 3, "call": {"call_id": "c"}}),
            "retell.bad_event",
        ),
        (json!({"event": "call_ended"}), "retell.bad_event"),
        (
            json!({"event": "call_ended", "call": null}),
            "retell.bad_event",
        ),
        (
            json!({"event": "call_ended", "call": "c"}),
            "retell.bad_event",
        ),
        (
            json!({"event": "call_ended", "call": {}}),
            "retell.bad_event",
        ),
        (
            json!({"event": "call_ended", "call": {"call_id": ""}}),
            "retell.bad_event",
        ),
        (
            json!({"event": "call_ended", "call": {"call_id": 7}}),
            "retell.bad_event",
        ),
        (
            json!({"event": "call_ended", "call": {"call_id": "c", "start_timestamp": "1"}}),
            "retell.bad_event",
        ),
        (
            json!({"event": "call_ended", "call": {"call_id": "c", "end_timestamp": -1}}),
            "retell.bad_event",
        ),
        (
            json!({"event": "call_ended", "call": {"call_id": "c", "from_number": 393331234567u64}}),
            "retell.bad_event",
        ),
        (
            json!({"event": "call_ended", "call": {"call_id": "c", "call_analysis": []}}),
            "retell.bad_event",
        ),
        (
            json!({"event": "call_ended", "call": {"call_id": "c", "call_analysis": {"call_successful": "yes"}}}),
            "retell.bad_event",
        ),
        (
            json!({"event": "transcript_updated", "call": {"call_id": "c"}}),
            "retell.unknown_event",
        ),
        (
            json!({"event": "Call_Ended", "call": {"call_id": "c"}}),
            "retell.unknown_event",
        ),
        (
            json!({"event": "+393331234567", "call": {"call_id": "c"}}),
            "retell.unknown_event",
        ),
    ];
    for (v, code) in &cases {
        let e = RetellEvent::from_json(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.code(), *code, "{v}: {e}");
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("3331234567"), "{shown}");
        }
    }
    assert_eq!(
        RetellEvent::from_json(br#"{"event":"transfer_started","call":{"call_id":"c"}}"#)
            .unwrap_err(),
        RetellError::UnknownEvent(Some("transfer_started".into()))
    );
    for bad in [&b""[..], b"{", b"{\"event\":\"call_ended\",}", b"{} {}"] {
        let e = RetellEvent::from_json(bad).unwrap_err();
        assert!(matches!(e, RetellError::BadJson { .. }), "{e}");
        assert_eq!(e.code(), "retell.bad_event");
    }
    let e = RetellEvent::from_json(
        br#"{"event":"call_ended","call":{"call_id":"c","from_number":["+393331234567"]}}"#,
    )
    .unwrap_err();
    assert_eq!(
        e,
        RetellError::WrongType {
            field: "call.from_number"
        }
    );
}

#[test]
fn record_is_sanitized() {
    let h = PhoneHasher::new(b"pepper-0123456789abcdef0123456789");
    let ev = sample_event();
    let e = RetellEvent::from_json(ev.to_string().as_bytes()).unwrap();
    let r = e.record(&h);
    let from = normalize_phone("+39 333 123 4567", Region::It).unwrap();
    let to = normalize_phone("+390212345678", Region::It).unwrap();
    assert_eq!(r["event"], "call_analyzed");
    assert_eq!(r["call_id"], "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6");
    assert_eq!(r["agent_id"], "oBeDLoLOeuAbiuaMFXRtDOLriTJ5tSxD");
    assert_eq!(r["call_type"], "phone_call");
    assert_eq!(r["direction"], "inbound");
    assert_eq!(r["call_status"], "ended");
    assert_eq!(r["disconnection_reason"], "user_hangup");
    assert_eq!(r["start_timestamp"], 1714608475945u64);
    assert_eq!(r["duration_ms"], 1714608491736u64 - 1714608475945);
    assert_eq!(r["from"], h.hash(&from));
    assert_eq!(r["to"], h.hash(&to));
    assert_eq!(
        r["transcript"],
        "Agent: Buongior... [MASKED - ENCLAVE ONLY]"
    );
    let transcript = ev["call"]["transcript"].as_str().unwrap();
    assert_eq!(r["transcript_chars"], transcript.chars().count());
    assert_eq!(r["user_sentiment"], "Positive");
    assert_eq!(r["call_successful"], true);
    assert_eq!(r["in_voicemail"], false);
    let summary = r["call_summary"].as_str().unwrap();
    assert!(
        summary.contains(&h.hash(&from)) && summary.contains("[EMAIL]"),
        "{summary}"
    );

    let s = serde_json::to_string(&r).unwrap();
    for leak in [
        "3331234567",
        "333 123 4567",
        "+39 333",
        "0212345678",
        "mario@example.com",
        "SHP-1",
        "phone_again",
        "Mario Rossi",
    ] {
        assert!(!s.contains(leak), "{leak} in {s}");
    }
    // No transcript word after the 15th character.
    for word in transcript
        .chars()
        .skip(15)
        .collect::<String>()
        .split(|c: char| !c.is_alphanumeric())
    {
        if word.chars().count() >= 4 && word.chars().any(char::is_alphabetic) {
            assert!(!s.contains(word), "{word:?} in {s}");
        }
    }
}

#[test]
fn record_unparseable_numbers_and_odd_values() {
    let h = PhoneHasher::new(b"p");
    let v = json!({"event": "call_ended", "call": {
        "call_id": "c 1",
        "from_number": "sip:+393331234567@pbx.example",
        "to_number": "",
        "direction": "inbound\n+393331234567",
        "start_timestamp": 10, "end_timestamp": 5,
        "transcript": "",
        "call_analysis": {"user_sentiment": "Molto positivo, ha detto 3331234567"}
    }});
    let r = RetellEvent::from_json(v.to_string().as_bytes())
        .unwrap()
        .record(&h);
    assert_eq!(r["from"], "unparseable");
    assert_eq!(r["to"], "unparseable");
    assert_eq!(r["call_id"], "invalid");
    assert_eq!(r["direction"], "invalid");
    assert_eq!(r["user_sentiment"], "invalid");
    assert_eq!(r["duration_ms"], Value::Null);
    assert_eq!(r["transcript"], "... [MASKED - ENCLAVE ONLY]");
    assert_eq!(r["transcript_chars"], 0);
    assert!(!r.to_string().contains("3331234567"));
}

#[test]
fn mutations_never_panic_or_leak() {
    let mut s = 0xBEEF_u64;
    let mut next = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let seed = sample_event().to_string().into_bytes();
    let h = PhoneHasher::new(b"p");
    let mut parsed = 0;
    for _ in 0..5_000 {
        let mut b = seed.clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() % (b.len() as u64 + 1)) as usize;
            match next() % 3 {
                0 if at < b.len() => b[at] ^= 1 << (next() % 8),
                1 => b.truncate(at),
                _ => {
                    let end = (at + (next() % 6) as usize).min(b.len());
                    b.drain(at..end);
                }
            }
        }
        match RetellEvent::from_json(&b) {
            Ok(e) => {
                parsed += 1;
                let r = e.record(&h).to_string();
                assert!(
                    !r.contains("3331234567") && !r.contains("333 123 4567"),
                    "{r}"
                );
            }
            Err(e) => assert!(!e.to_string().contains("3331234567")),
        }
        let sig = String::from_utf8_lossy(b.get(..80).unwrap_or(&b)).into_owned();
        let _ = verify(KEY, &b, Some(&sig), NOW, W);
    }
    assert!(parsed > 100, "{parsed}");
}
