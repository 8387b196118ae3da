//! The call service end to end in process mode, with real parts: the guest
//! attests (sim-psp, the verifier), logs in to OpenBao, has its serving
//! certificate signed by OpenBao's PKI, and serves HTTPS; a local stand-in
//! of the OpenAI-compatible transcription API checks the key it receives.
//! Clients: our test client, curl, and `enclavectl call`. The QEMU test
//! (qemu_attest.rs) runs the same through the proxy's ingress and vsock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::type_complexity,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use enclave_tests::https::{self, Client};
use enclave_tests::process::{boot, Guest};
use enclave_tests::stack::{
    enclavectl, guest_config, platform_client, retell_sdk_sign, service_config, sim_policy,
    OpenBao, Pki, SimPsp, Verifier,
};
use enclave_tests::transcription::TranscriptionStandIn;
use enclave_tests::TempDir;

const TRANSCRIPTION_KEY: &str = "canary-transcription-key-5e0b7c";
const RETELL_KEY: &str = "canary-retell-key-a41f09";
const PEPPER: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
/// A phone number that must never leave the enclave in clear.
const CANARY_PHONE: &str = "+39 333 987 6543";
/// Every spelling of it that is in the inputs (the transcript and the
/// metadata say `+39 333 987 6543`), that the guest itself produces (the
/// E.164 form it hashes, the national digits) or that a partial redaction
/// would leave (the national number as spoken). Each is checked on its own,
/// so none is missed because another one's pattern happens not to match.
const CANARY_PHONE_SPELLINGS: [&str; 4] =
    [CANARY_PHONE, "+393339876543", "3339876543", "333 987 6543"];
/// A phrase of the transcript that must never leave it either (beyond the
/// caller's own response).
const CANARY_PHRASE: &str = "ornitorinco viola";

fn transcript() -> String {
    format!("Questa è una trascrizione di prova. Mi richiami al {CANARY_PHONE}, la parola è {CANARY_PHRASE}.")
}

fn metadata(agent: &str) -> String {
    serde_json::json!({
        "call_id": "call-0001", "shipment_id": "SHP-42", "agent_type": agent,
        "caller_phone": CANARY_PHONE, "language": "it",
    })
    .to_string()
}

fn hmac_hex(key: &[u8], value: &str) -> String {
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        value.as_bytes(),
    );
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

struct Stack {
    pki: Pki,
    psp: SimPsp,
    verifier: Verifier,
    bao: OpenBao,
    standin: TranscriptionStandIn,
    _dir: TempDir,
}

fn stack() -> Stack {
    stack_with(&[])
}

fn stack_with(verifier_args: &[&str]) -> Stack {
    let dir = TempDir::new("calls");
    let pki = Pki::new();
    let m = "c3".repeat(48);
    let psp = SimPsp::start(&dir.path().join("psp.sock"), &["--measurement", &m]);
    let verifier = Verifier::start(
        &pki,
        &sim_policy(&psp.ark_sha256, &[&psp.measurement]),
        dir.path(),
        verifier_args,
    );
    let bao = OpenBao::start(&pki);
    bao.setup(
        &verifier,
        &pki,
        &[&psp.measurement],
        "sim",
        &[
            ("ENCLAVE_SEED_TRANSCRIPTION_API_KEY", TRANSCRIPTION_KEY),
            ("ENCLAVE_SEED_RETELL_API_KEY", RETELL_KEY),
            ("ENCLAVE_SEED_PII_PEPPER", PEPPER),
        ],
    );
    let standin = TranscriptionStandIn::start(
        &pki.path("transcribe.pem"),
        &pki.path("transcribe-key.pem"),
        TRANSCRIPTION_KEY,
        &transcript(),
    );
    Stack {
        pki,
        psp,
        verifier,
        bao,
        standin,
        _dir: dir,
    }
}

/// Boots a guest with the call service; returns it and a client pinned to
/// OpenBao's serving CA.
fn guest(s: &Stack, standin_port: u16, extra: &str) -> (Guest, serde_json::Value, Client) {
    let gdir = TempDir::new("guest");
    let mut config = guest_config(
        gdir.path(),
        &s.psp.socket,
        Some((&s.verifier, &s.pki)),
        Some(&s.bao),
    );
    config.push_str(&service_config(
        "tcp://127.0.0.1:0",
        &format!("tcp://127.0.0.1:{standin_port}"),
        &s.pki,
        extra,
    ));
    let (g, report) = boot(gdir, &config).ready();
    let addr = report["call_service"]
        .as_str()
        .unwrap_or_else(|| panic!("no call service in {report}"))
        .to_owned();
    let client = platform_client(&s.pki, &addr, &s.bao.serving_ca_pem());
    (g, report, client)
}

fn assert_no_canary(what: &str, text: &str) {
    for canary in CANARY_PHONE_SPELLINGS.into_iter().chain([
        CANARY_PHRASE,
        TRANSCRIPTION_KEY,
        RETELL_KEY,
        PEPPER,
    ]) {
        assert!(
            !text.contains(canary),
            "{what} contains the canary {canary:?}"
        );
    }
}

#[test]
fn calls_are_transcribed_and_personal_data_stays_inside() {
    let s = stack();
    let (g, _report, client) = guest(&s, s.standin.port, "");

    let e164 = "+393339876543";
    let want_hash = format!("hmac-sha256:{}", hmac_hex(PEPPER.as_bytes(), e164));
    for (encoding, rate, agent) in [
        ("pcm16", 16000, "sara"),
        ("mulaw", 8000, "marco"),
        ("alaw", 8000, "franco"),
    ] {
        let before = s.standin.requests();
        let r = client.call(&metadata(agent), &https::wav(encoding, rate, 3.0));
        assert_eq!(
            r.status,
            200,
            "{encoding}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        // The caller gets the whole result, inside TLS.
        assert_eq!(v["transcript"], transcript(), "{v}");
        assert_eq!(v["agent_type"], agent, "{v}");
        assert_eq!(v["audio"]["encoding"], encoding, "{v}");
        assert_eq!(v["audio"]["sample_rate_hz"], rate, "{v}");
        assert!(
            (v["audio"]["duration_secs"].as_f64().unwrap() - 3.0).abs() < 0.01,
            "{v}"
        );
        let speech = v["audio"]["speech_ratio"].as_f64().unwrap();
        assert!((0.3..=0.7).contains(&speech), "half the file is tone: {v}");
        assert_eq!(v["pii"]["caller_hash"], want_hash.as_str(), "{v}");
        // The redacted transcript has the caller's hash where the number was,
        // and no spelling of the number anywhere.
        let redacted = v["pii"]["transcript_redacted"].as_str().unwrap();
        assert!(
            transcript().contains(CANARY_PHONE),
            "the number is in the input"
        );
        for phone in CANARY_PHONE_SPELLINGS {
            assert!(
                !redacted.contains(phone),
                "the redacted transcript holds {phone:?}: {v}"
            );
        }
        assert_eq!(
            redacted,
            transcript().replace(CANARY_PHONE, &want_hash),
            "{v}"
        );
        // The upstream saw the key from Vault, the model and the language.
        assert_eq!(s.standin.requests(), before + 1);
        let seen = s.standin.last().unwrap();
        assert!(seen.auth_ok, "the stand-in got the wrong key");
        assert_eq!(seen.model, "whisper-1");
        assert_eq!(seen.language.as_deref(), Some("it"));
    }

    // curl, a stock client, pinned to the serving CA.
    let dir = TempDir::new("curl");
    std::fs::write(dir.path().join("ca.pem"), s.bao.serving_ca_pem()).unwrap();
    std::fs::write(dir.path().join("call.wav"), https::wav("mulaw", 8000, 2.0)).unwrap();
    let port = client
        .addr
        .to_string()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "--cacert"])
        .arg(dir.path().join("ca.pem"))
        .arg("--cert")
        .arg(s.pki.path("platform-client.pem"))
        .arg("--key")
        .arg(s.pki.path("platform-client-key.pem"))
        .args(["--resolve", &format!("call.enclave.local:{port}:127.0.0.1")])
        .args([
            "-F",
            &format!("metadata={};type=application/json", metadata("sara")),
        ])
        .arg("-F")
        .arg(format!(
            "audio=@{};type=audio/wav",
            dir.path().join("call.wav").display()
        ))
        .arg(format!("https://call.enclave.local:{port}/v1/calls"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["transcript"], transcript());

    // enclavectl call, the operator's client.
    let out = Command::new(enclavectl())
        .arg("call")
        .arg(dir.path().join("call.wav"))
        .args([
            "--metadata",
            &metadata("marco"),
            "--addr",
            &client.addr.to_string(),
            "--ca",
        ])
        .arg(dir.path().join("ca.pem"))
        .arg("--cert")
        .arg(s.pki.path("platform-client.pem"))
        .arg("--key")
        .arg(s.pki.path("platform-client-key.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "enclavectl call: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["agent_type"], "marco", "{v}");

    // Health: the platform's shape.
    let h = client.request("GET", "/health/enclave", &[], b"");
    assert_eq!(h.status, 200);
    let h = h.json();
    assert_eq!(h["status"], "healthy", "{h}");
    assert_eq!(h["enclave"]["enclave_ready"], true, "{h}");
    assert_eq!(h["enclave"]["enclave_mode"], "sim", "{h}");
    assert_eq!(h["enclave"]["memory_encryption_active"], false, "{h}");
    assert_eq!(h["enclave"]["secrets_provisioned"], true, "{h}");
    assert_eq!(h["attestation"]["valid"], true, "{h}");
    assert_eq!(
        h["attestation"]["trusted"], false,
        "simulation is never trusted: {h}"
    );
    assert!(
        h["attestation"]["expires_at"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "{h}"
    );
    // The sandbox as the kernel sees it while calls are served (issue 14):
    // this host's kernel has Landlock; a process keeps no capability.
    assert!(
        h["sandbox"]["landlock_abi"]
            .as_u64()
            .is_some_and(|abi| abi >= 1),
        "{h}"
    );
    assert_eq!(h["sandbox"]["no_new_privs"], true, "{h}");
    assert_eq!(h["sandbox"]["seccomp"], true, "{h}");
    assert_eq!(h["sandbox"]["capabilities"], serde_json::json!([]), "{h}");

    // Metrics: Prometheus text with the counters.
    let m = client.request("GET", "/metrics", &[], b"");
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(m.body).unwrap();
    for line in [
        "enclave_attestation_valid 1",
        "enclave_calls_processed_total{agent_type=\"sara\"} 2",
        "enclave_calls_processed_total{agent_type=\"marco\"} 2",
        "enclave_calls_processed_total{agent_type=\"franco\"} 1",
        "enclave_call_duration_seconds_count 5",
        "enclave_attestation_attempts_total 1",
        "enclave_sandbox_no_new_privs 1",
        "enclave_sandbox_seccomp 1",
        "enclave_sandbox_capabilities 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing in:\n{text}"
        );
    }
    let expires = text
        .lines()
        .find_map(|l| l.strip_prefix("enclave_attestation_expires_in_seconds "))
        .unwrap();
    // The trust deadline is min(token, Vault lease): openbao-setup's roles
    // issue 60-second Vault tokens, the verifier 300-second JWTs here.
    let expires = expires.parse::<f64>().unwrap();
    assert!(expires > 30.0 && expires <= 60.0, "{text}");

    // Nothing personal in logs or metrics: the safe view only.
    assert_no_canary("/metrics", &text);
    let logs = g.logs();
    assert_no_canary("the guest's log", &logs);
    // The log view only: the call by its keyed pseudonym, no caller hash,
    // no transcript (not even its masked prefix), no raw call or shipment id.
    let line = logs
        .lines()
        .find(|l| l.contains("msg=\"call processed\""))
        .unwrap_or_else(|| panic!("no call line in {logs}"));
    assert!(
        line.contains("\\\"call\\\":\\\"id:"),
        "the call is named by its pseudonym: {line}"
    );
    for absent in [
        want_hash.as_str(),
        "call-0001",
        "SHP-42",
        "Questa",
        "MASKED",
        "transcript_chars",
    ] {
        assert!(
            !logs.contains(absent),
            "{absent:?} in the guest's log: {line}"
        );
    }
}

#[test]
fn bad_requests_get_precise_errors_and_the_next_request_is_served() {
    let s = stack();
    let (g, _report, client) = guest(&s, s.standin.port, "max_body_bytes = 262144");
    let wav = https::wav("pcm16", 8000, 1.0);
    let good_meta = metadata("sara");
    let mut stereo = wav.clone();
    stereo[22] = 2; // channels
    let mut rate = https::wav("pcm16", 8000, 0.5);
    rate[24..28].copy_from_slice(&44100u32.to_le_bytes());
    let part = |name: &'static str, ct: &'static str, bytes: Vec<u8>| (name, ct, bytes);
    let cases: Vec<(&str, Vec<(&str, &str, Vec<u8>)>, u16, &str)> = vec![
        (
            "unknown agent",
            vec![
                part(
                    "metadata",
                    "application/json",
                    metadata("giovanni").into_bytes(),
                ),
                part("audio", "audio/wav", wav.clone()),
            ],
            422,
            "metadata.agent_type",
        ),
        (
            "bad JSON",
            vec![
                part("metadata", "application/json", b"{\"call_id\": ".to_vec()),
                part("audio", "audio/wav", wav.clone()),
            ],
            422,
            "metadata.bad_json",
        ),
        (
            "bad phone",
            vec![
                part(
                    "metadata",
                    "application/json",
                    good_meta.replace(CANARY_PHONE, "+39 12").into_bytes(),
                ),
                part("audio", "audio/wav", wav.clone()),
            ],
            422,
            "metadata.bad_phone",
        ),
        (
            "no audio",
            vec![part(
                "metadata",
                "application/json",
                good_meta.clone().into_bytes(),
            )],
            400,
            "call.missing_audio",
        ),
        (
            "no metadata",
            vec![part("audio", "audio/wav", wav.clone())],
            400,
            "call.missing_metadata",
        ),
        (
            "not a WAV",
            vec![
                part(
                    "metadata",
                    "application/json",
                    good_meta.clone().into_bytes(),
                ),
                part("audio", "audio/wav", b"ID3\x04mp3 data here".to_vec()),
            ],
            415,
            "audio.not_wav",
        ),
        (
            "truncated WAV",
            vec![
                part(
                    "metadata",
                    "application/json",
                    good_meta.clone().into_bytes(),
                ),
                part("audio", "audio/wav", wav[..wav.len() / 2].to_vec()),
            ],
            400,
            "audio.truncated",
        ),
        (
            "stereo",
            vec![
                part(
                    "metadata",
                    "application/json",
                    good_meta.clone().into_bytes(),
                ),
                part("audio", "audio/wav", stereo),
            ],
            415,
            "audio.unsupported",
        ),
        (
            "44.1 kHz",
            vec![
                part(
                    "metadata",
                    "application/json",
                    good_meta.clone().into_bytes(),
                ),
                part("audio", "audio/wav", rate),
            ],
            415,
            "audio.unsupported",
        ),
    ];
    for (what, parts, status, code) in cases {
        let refs: Vec<(&str, Option<&str>, &str, &[u8])> = parts
            .iter()
            .map(|(n, ct, b)| {
                (
                    *n,
                    if *n == "audio" {
                        Some("call.wav")
                    } else {
                        None
                    },
                    *ct,
                    b.as_slice(),
                )
            })
            .collect();
        let (ct, body) = https::multipart(&refs);
        let r = client.request("POST", "/v1/calls", &[("content-type", &ct)], &body);
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            !r.json()["error"]["message"].as_str().unwrap().is_empty(),
            "{what}"
        );
        assert_no_canary(what, &String::from_utf8_lossy(&r.body));
    }
    // Framing and routing.
    let raw: Vec<(&str, &str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "not multipart",
            "/v1/calls",
            "application/json",
            b"{}".to_vec(),
            415,
            "request.content_type",
        ),
        (
            "multipart without its end",
            "/v1/calls",
            "multipart/form-data; boundary=xyz",
            b"--xyz\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{}".to_vec(),
            400,
            "multipart.truncated",
        ),
        (
            "oversized",
            "/v1/calls",
            "multipart/form-data; boundary=xyz",
            vec![b'a'; 300_000],
            413,
            "request.too_large",
        ),
        (
            "unknown route",
            "/v1/nope",
            "application/json",
            b"{}".to_vec(),
            404,
            "route.not_found",
        ),
    ];
    for (what, path, ct, body, status, code) in raw {
        let r = client.request("POST", path, &[("content-type", ct)], &body);
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // An oversized body is answered before it is read; the lingering close
    // lets the client finish writing and read the 413 every time.
    for _ in 0..10 {
        let r = client.request(
            "POST",
            "/v1/calls",
            &[("content-type", "multipart/form-data; boundary=xyz")],
            &vec![b'a'; 1_000_000],
        );
        assert_eq!((r.status, r.code().as_str()), (413, "request.too_large"));
    }
    let r = client.request("GET", "/v1/calls", &[], b"");
    assert_eq!(
        (r.status, r.code().as_str()),
        (405, "route.method_not_allowed")
    );
    // Garbage instead of HTTP.
    let mut conn = client.connect().unwrap();
    conn.get_mut()
        .write_all(b"\x00\x01\x02 not http\r\n\r\n")
        .unwrap();
    let resp = bounded_http::read_response(&mut conn, bounded_http::Limits::default()).unwrap();
    assert_eq!(resp.status, 400);

    // HTTP/1.0: closed after the answer unless it asks for keep-alive, and
    // then the answer says so and the next request is served.
    let mut conn = client.connect().unwrap();
    conn.get_mut()
        .write_all(b"GET /health/enclave HTTP/1.0\r\nhost: x\r\n\r\n")
        .unwrap();
    let resp = bounded_http::read_response(&mut conn, bounded_http::Limits::default()).unwrap();
    assert_eq!(
        (resp.status, resp.header("connection")),
        (200, Some("close"))
    );
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut conn, &mut rest);
    assert!(rest.is_empty(), "nothing after the 1.0 answer");
    let mut conn = client.connect().unwrap();
    for _ in 0..2 {
        conn.get_mut()
            .write_all(b"GET /health/enclave HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n")
            .unwrap();
        let resp = bounded_http::read_response(&mut conn, bounded_http::Limits::default()).unwrap();
        assert_eq!(
            (resp.status, resp.header("connection")),
            (200, Some("keep-alive"))
        );
    }

    // Still serving, on a kept-alive connection too.
    let mut conn = client.connect().unwrap();
    for _ in 0..3 {
        let (ct, body) = https::multipart(&[
            ("metadata", None, "application/json", good_meta.as_bytes()),
            ("audio", Some("a.wav"), "audio/wav", &wav),
        ]);
        let r = client
            .send(
                &mut conn,
                "POST",
                "/v1/calls",
                &[("content-type", &ct)],
                &body,
            )
            .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let metrics = String::from_utf8(client.request("GET", "/metrics", &[], b"").body).unwrap();
    assert!(
        metrics.contains(
            "enclave_calls_failed_total{agent_type=\"unknown\",code=\"metadata.agent_type\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("enclave_calls_failed_total{agent_type=\"sara\",code=\"audio.not_wav\"} 1"),
        "{metrics}"
    );
    assert_no_canary("/metrics", &metrics);
    assert_no_canary("the guest's log", &g.logs());
    assert!(g.child.id() > 0 && g.logs().contains("call service listening"));
}

#[test]
fn retell_webhooks_signed_by_retells_sdk_are_verified() {
    let s = stack();
    let (g, _report, client) = guest(&s, s.standin.port, "");
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let event = |kind: &str, id: &str| {
        serde_json::json!({
            "event": kind,
            "call": {
                "call_id": id, "agent_id": "agent_sara", "call_type": "phone_call", "direction": "inbound",
                "from_number": CANARY_PHONE, "to_number": "+390212345678", "call_status": "ended",
                "start_timestamp": 1_764_000_000_000u64, "end_timestamp": 1_764_000_095_000u64,
                "transcript": transcript(),
                "call_analysis": {"call_summary": format!("Il cliente ({CANARY_PHONE}) chiede un richiamo."), "user_sentiment": "Neutral", "call_successful": true},
            }
        })
        .to_string()
    };
    let post = |body: &str, sig: Option<&str>| {
        let mut h = vec![("content-type", "application/json")];
        if let Some(sig) = sig {
            h.push(("x-retell-signature", sig));
        }
        client.request("POST", "/v1/retell/events", &h, body.as_bytes())
    };

    for kind in ["call_started", "call_ended", "call_analyzed"] {
        let body = event(kind, &format!("retell-{kind}"));
        let sig = retell_sdk_sign(RETELL_KEY, &body, now_ms());
        let r = post(&body, Some(&sig));
        assert_eq!(
            r.status,
            200,
            "{kind}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        assert_eq!(v["record"]["event"], kind, "{v}");
        assert_eq!(v["record"]["duration_ms"], 95_000, "{v}");
        assert_eq!(
            v["record"]["from"],
            format!(
                "hmac-sha256:{}",
                hmac_hex(PEPPER.as_bytes(), "+393339876543")
            ),
            "{v}"
        );
        assert_no_canary("the sanitized record", &v.to_string());
    }

    let body = event("call_ended", "retell-denials");
    let sig = retell_sdk_sign(RETELL_KEY, &body, now_ms());
    // A changed body, an old timestamp, the wrong key, no or a mangled header.
    let changed = body.replace("Neutral", "Positive");
    assert_eq!(
        post(&changed, Some(&sig)).code(),
        "retell.signature_invalid"
    );
    let old = retell_sdk_sign(RETELL_KEY, &body, now_ms() - 6 * 60 * 1000);
    assert_eq!(post(&body, Some(&old)).code(), "retell.signature_expired");
    let future = retell_sdk_sign(RETELL_KEY, &body, now_ms() + 6 * 60 * 1000);
    assert_eq!(
        post(&body, Some(&future)).code(),
        "retell.signature_expired"
    );
    let wrong = retell_sdk_sign("not-the-retell-key", &body, now_ms());
    assert_eq!(post(&body, Some(&wrong)).code(), "retell.signature_invalid");
    assert_eq!(post(&body, None).code(), "retell.signature_missing");
    assert_eq!(
        post(&body, Some("v=1,d=zz")).code(),
        "retell.signature_malformed"
    );
    for r in [post(&changed, Some(&sig)), post(&body, Some(&wrong))] {
        assert_eq!(r.status, 401);
    }
    // The genuine one is accepted once; its replay is refused.
    assert_eq!(post(&body, Some(&sig)).status, 200);
    let replay = post(&body, Some(&sig));
    assert_eq!(
        (replay.status, replay.code().as_str()),
        (409, "retell.replayed")
    );
    // An unknown event type, correctly signed.
    let odd = event("call_teleported", "retell-odd");
    let r = post(&odd, Some(&retell_sdk_sign(RETELL_KEY, &odd, now_ms())));
    assert_eq!((r.status, r.code().as_str()), (400, "retell.unknown_event"));

    let metrics = String::from_utf8(client.request("GET", "/metrics", &[], b"").body).unwrap();
    assert!(
        metrics.contains("enclave_retell_events_total{event=\"call_ended\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("enclave_retell_refused_total{code=\"retell.signature_invalid\"} 4"),
        "{metrics}"
    );
    assert_no_canary("the guest's log", &g.logs());
}

#[test]
fn saturation_gets_503_slow_clients_are_cut_off_and_service_recovers() {
    let s = stack();
    let (_g, _report, client) = guest(&s, s.standin.port, "workers = 2\nqueue = 1\nidle_timeout_ms = 1500\nrequest_timeout_ms = 1500\nio_timeout_ms = 1000");
    // Two clients that connect and say nothing hold both workers; a third
    // waits in the queue; the fourth is told to come back.
    let holders: Vec<_> = (0..3)
        .map(|_| {
            let c = client.connect().unwrap();
            std::thread::sleep(Duration::from_millis(100));
            c
        })
        .collect();
    let mut busy = client.connect().unwrap();
    let r = client
        .send(&mut busy, "GET", "/health/enclave", &[], b"")
        .unwrap();
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "service.busy"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("retry-after"), Some("1"));
    drop(holders);

    // A client trickling its request is cut off at the request deadline.
    std::thread::sleep(Duration::from_millis(1600));
    let mut slow = client.connect().unwrap();
    let started = Instant::now();
    let head = b"POST /v1/calls HTTP/1.1\r\nhost: call.enclave.local\r\ncontent-length: 100000\r\ncontent-type: multipart/form-data; boundary=x\r\n\r\n";
    slow.get_mut().write_all(head).unwrap();
    let mut cut = false;
    for _ in 0..100 {
        if slow
            .get_mut()
            .write_all(b"a")
            .and_then(|()| slow.get_mut().flush())
            .is_err()
        {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = bounded_http::read_response(&mut slow, bounded_http::Limits::default());
    let elapsed = started.elapsed();
    assert!(
        cut || answer.as_ref().is_ok_and(|r| r.status == 408),
        "the slow client was not cut off: {answer:?}"
    );
    assert!(
        elapsed < Duration::from_secs(8),
        "cut off after {elapsed:?}"
    );

    // And the service recovers.
    let r = client.call(&metadata("sara"), &https::wav("mulaw", 8000, 1.0));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let metrics = String::from_utf8(client.request("GET", "/metrics", &[], b"").body).unwrap();
    let busy_total = metrics
        .lines()
        .find_map(|l| l.strip_prefix("enclave_http_busy_total "))
        .unwrap();
    assert!(busy_total.parse::<u64>().unwrap() >= 1, "{metrics}");
}

#[test]
fn an_upstream_that_refuses_the_key_is_a_precise_502() {
    let s = stack();
    let other = TranscriptionStandIn::start(
        &s.pki.path("transcribe.pem"),
        &s.pki.path("transcribe-key.pem"),
        "some-other-key",
        "x",
    );
    let (g, _report, client) = guest(&s, other.port, "");
    let r = client.call(&metadata("sara"), &https::wav("pcm16", 8000, 1.0));
    assert_eq!(
        (r.status, r.code().as_str()),
        (502, "upstream.unauthorized"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(!other.last().unwrap().auth_ok);
    assert_no_canary("the error", &String::from_utf8_lossy(&r.body));
    assert_no_canary("the guest's log", &g.logs());
}

/// Waits until `/health/enclave` satisfies `done`.
fn wait_health(
    client: &Client,
    secs: u64,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let h = client.request("GET", "/health/enclave", &[], b"").json();
        if done(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "health never got there: {h}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn renewal_rotates_the_serving_certificate_and_a_failed_one_stops_calls() {
    // Tokens live 10 s: the guest renews between 5 and 7.5 s.
    let mut s = stack_with(&["--token-ttl-secs", "10"]);
    let (g, _report, client) = guest(&s, s.standin.port, "");
    // A fresh client each time: a resumed TLS session shows no certificate.
    let serving_ca = s.bao.serving_ca_pem();
    let leaf = |c: &Client| {
        let c = platform_client(&s.pki, &c.addr.to_string(), &serving_ca);
        let mut conn = c.connect().unwrap();
        assert_eq!(
            c.send(&mut conn, "GET", "/health/enclave", &[], b"")
                .unwrap()
                .status,
            200
        );
        Client::peer_leaf(&conn)
    };
    let first = leaf(&client);
    assert!(!first.is_empty());
    wait_health(&client, 30, |h| {
        h["attestation"]["renewals"].as_u64().unwrap_or(0) >= 1
    });
    let second = leaf(&client);
    assert_ne!(
        first, second,
        "each renewal has Vault sign the serving key again"
    );
    assert_eq!(
        client
            .call(&metadata("sara"), &https::wav("pcm16", 8000, 1.0))
            .status,
        200
    );

    // The verifier goes away: renewals fail (transiently), the secrets are
    // withdrawn at the trust deadline, calls are refused with 503 and health
    // says why.
    s.verifier.proc.stop();
    let h = wait_health(&client, 30, |h| h["status"] == "degraded");
    assert_eq!(h["enclave"]["secrets_provisioned"], false, "{h}");
    assert_eq!(h["attestation"]["valid"], false, "{h}");
    assert!(
        h["reason"]
            .as_str()
            .unwrap()
            .contains("trust deadline passed"),
        "{h}"
    );
    assert!(
        h["lifecycle"]["last_transient_cause"]
            .as_str()
            .unwrap_or_default()
            .contains("verifier"),
        "{h}"
    );
    let r = client.call(&metadata("sara"), &https::wav("pcm16", 8000, 1.0));
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "enclave.secrets_withdrawn")
    );
    assert_eq!(r.header("retry-after"), Some("1"));
    let m = String::from_utf8(client.request("GET", "/metrics", &[], b"").body).unwrap();
    assert!(m.lines().any(|l| l == "enclave_attestation_valid 0"), "{m}");
    assert!(
        m.lines()
            .any(|l| l.starts_with("enclave_attestation_failures_total{reason=\"unreachable\"}")),
        "{m}"
    );
    // Attempts are counted: boot, the renewal, and the failed retries
    // (several: transient failures are retried until the deadline).
    let attempts = m
        .lines()
        .find_map(|l| {
            l.strip_prefix("enclave_attestation_attempts_total ")?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    let failed: u64 = m
        .lines()
        .filter(|l| l.starts_with("enclave_attestation_failures_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(failed >= 2, "transient failures are retried: {m}");
    assert!(attempts >= failed + 2, "{m}");
    assert_no_canary("the guest's log", &g.logs());
}

/// An expired client certificate of the platform CA, issued by openssl
/// (`-days -1`: not after yesterday), in `dir`: (certificate, key) PEM.
fn expired_platform_cert(pki: &Pki, dir: &std::path::Path) -> (String, String) {
    let key = dir.join("expired-key.pem");
    let csr = dir.join("expired.csr");
    let cert = dir.join("expired.pem");
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // X.509 v3 (rustls takes no v1 certificate), a client certificate.
    let ext = dir.join("client.ext");
    std::fs::write(
        &ext,
        "basicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n",
    )
    .unwrap();
    let p = |p: &std::path::Path| p.display().to_string();
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &p(&key),
        "-subj",
        "/CN=api-gateway.enclave.local",
        "-out",
        &p(&csr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&pki.path("platform-ca.pem")),
        "-CAkey",
        &p(&pki.path("platform-ca-key.pem")),
        "-days",
        "-1",
        "-extfile",
        &p(&ext),
        "-out",
        &p(&cert),
    ]);
    (
        std::fs::read_to_string(cert).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    )
}

/// Mutual TLS on the call routes: `/v1/calls` and `/metrics` answer only a
/// client certificate of the platform CA (`service.client_ca`): none gets
/// 401 `auth.client_certificate` (counted in the metrics), one of another CA
/// (the TLS CA's Vault certificate) or an expired one of the platform CA
/// fails the handshake, a valid one is served. Health needs the certificate
/// too unless `service.health_without_client_cert = "on"`; Retell's webhook
/// is judged by its signature, not by a certificate.
#[test]
fn call_routes_answer_only_the_platform_client_certificate() {
    let s = stack();
    let (_g, _report, client) = guest(&s, s.standin.port, "");
    let serving_ca = s.bao.serving_ca_pem();
    let addr = client.addr.to_string();
    let anonymous = Client::new(&addr, &serving_ca, "call.enclave.local");
    let wav = https::wav("mulaw", 8000, 1.0);
    let meta = metadata("sara");

    let r = anonymous.call(&meta, &wav);
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "auth.client_certificate"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        r.json()["pii"].is_null(),
        "no caller hash without a certificate"
    );
    for path in ["/metrics", "/health/enclave"] {
        let r = anonymous.request("GET", path, &[], b"");
        assert_eq!(
            (r.status, r.code().as_str()),
            (401, "auth.client_certificate"),
            "{path}"
        );
    }
    // The webhook route is not behind the certificate: an unsigned delivery
    // is refused for its missing signature.
    let r = anonymous.request(
        "POST",
        "/v1/retell/events",
        &[("content-type", "application/json")],
        b"{}",
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "retell.signature_missing")
    );

    // A certificate of another CA, and an expired one of the right CA: the
    // handshake fails (rustls' alert reaches the client on its first read).
    let dir = TempDir::new("mtls");
    let (expired, expired_key) = expired_platform_cert(&s.pki, dir.path());
    for (what, c) in [
        (
            "a certificate of the TLS CA",
            anonymous.clone().with_identity(
                &std::fs::read_to_string(s.pki.path("vault.pem")).unwrap(),
                &std::fs::read_to_string(s.pki.path("vault-key.pem")).unwrap(),
            ),
        ),
        (
            "an expired platform certificate",
            anonymous.clone().with_identity(&expired, &expired_key),
        ),
    ] {
        let mut conn = c.connect().unwrap();
        let err = c
            .send(&mut conn, "GET", "/health/enclave", &[], b"")
            .map(|r| r.status)
            .expect_err(what);
        assert!(err.contains("alert"), "{what}: {err}");
    }

    // The platform's certificate is served, and the refusals were counted.
    let r = client.call(&meta, &wav);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["pii"]["caller_hash"].is_string(), "{}", r.json());
    let metrics = String::from_utf8(client.request("GET", "/metrics", &[], b"").body).unwrap();
    assert!(
        metrics.contains("enclave_http_unauthenticated_total 3\n"),
        "{metrics}"
    );

    // Health without a certificate only when the configuration says so.
    let (_g2, _r2, open) = guest(&s, s.standin.port, "health_without_client_cert = \"on\"");
    let anonymous = Client::new(&open.addr.to_string(), &serving_ca, "call.enclave.local");
    assert_eq!(
        anonymous.request("GET", "/health/enclave", &[], b"").status,
        200
    );
    assert_eq!(anonymous.request("GET", "/metrics", &[], b"").status, 401);
}
