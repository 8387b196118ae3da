//! `enclavectl call` and the transcription stand-in, each against the
//! other side of its wire contract:
//!
//! - the stand-in answers a raw rustls client the way OpenAI's
//!   `POST /v1/audio/transcriptions` does (keys, fields, formats, errors);
//! - `enclavectl call --health/--metrics` against a small HTTPS server:
//!   exit 0 for 200, 1 for a 503 JSON error, 2 for an unreachable address,
//!   a certificate from another CA or for another name;
//! - `enclavectl call FILE.wav --metadata …` sends a multipart body whose
//!   `metadata` and `audio` parts arrive with the right names, content
//!   types and bytes.
//!
//! Needs the `enclavectl` binary (`ENCLAVECTL`, or `cargo build -p
//! enclavectl` in the same target directory).
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

use std::io::BufReader;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use enclave_tests::echo::{server_config, start_tls_echo, Reply, TlsServer};
use enclave_tests::stack::{enclavectl, free_port, Pki};
use enclave_tests::transcription::TranscriptionStandIn;
use enclave_tests::TempDir;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};

const KEY: &str = "sk-standin-test-0b9f";
const TRANSCRIPT: &str = "Buongiorno, vorrei spostare la consegna a domani.";
const NAME: &str = "transcribe.enclave.local";

type Conn = BufReader<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>>;

/// A TLS 1.3 connection trusting only `ca_pem`.
fn connect(port: u16, ca_pem: &Path) -> Conn {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from(NAME).unwrap())
        .unwrap();
    BufReader::new(rustls::StreamOwned::new(conn, tcp))
}

fn send(
    conn: &mut Conn,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> bounded_http::Response {
    bounded_http::write_request(conn.get_mut(), method, NAME, path, headers, body).unwrap();
    bounded_http::read_response(conn, bounded_http::Limits::default()).unwrap()
}

fn json_of(r: &bounded_http::Response) -> Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&r.body)))
}

/// A form field: name, `Some((filename, content type))` for a file, bytes.
type Field<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

/// A multipart body, as curl -F makes it.
fn form(fields: &[Field<'_>]) -> (String, Vec<u8>) {
    let boundary = "------------------------d74496d66958873e";
    let mut body = Vec::new();
    for (name, file, bytes) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some((filename, ct)) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {ct}\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Half a second of 8 kHz PCM16 mono: a 440 Hz tone.
fn wav() -> Vec<u8> {
    let samples: Vec<u8> = (0..4000)
        .flat_map(|i| {
            ((8000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 8000.0).sin()) as i16)
                .to_le_bytes()
        })
        .collect();
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0");
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(b"\x02\0\x10\0data");
    out.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    out.extend_from_slice(&samples);
    out
}

#[test]
fn standin_answers_like_the_openai_transcription_api() {
    let pki = Pki::new();
    let standin = TranscriptionStandIn::start(
        &pki.path("transcribe.pem"),
        &pki.path("transcribe-key.pem"),
        KEY,
        TRANSCRIPT,
    );
    let ca = pki.path("ca.pem");
    let audio = wav();
    let bearer = format!("Bearer {KEY}");
    let post = |conn: &mut Conn, auth: Option<&str>, fields: &[Field<'_>]| {
        let (ct, body) = form(fields);
        let mut headers = vec![("content-type", ct.as_str())];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        send(conn, "POST", "/v1/audio/transcriptions", &headers, &body)
    };
    let file = ("file", Some(("call.wav", "audio/wav")), audio.as_slice());
    let model = ("model", None, b"whisper-1".as_slice());

    // One kept-alive connection for the accepted formats.
    let mut conn = connect(standin.port, &ca);
    let r = post(
        &mut conn,
        Some(&bearer),
        &[file, model, ("language", None, b"it")],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(json_of(&r), json!({"text": TRANSCRIPT}));
    let seen = standin.last().unwrap();
    assert!(seen.auth_ok);
    assert_eq!(seen.model, "whisper-1");
    assert_eq!(seen.language.as_deref(), Some("it"));
    assert_eq!(seen.response_format, None);
    assert_eq!(seen.file_bytes, audio.len());
    assert_eq!(seen.file_name.as_deref(), Some("call.wav"));
    assert_eq!(seen.file_content_type.as_deref(), Some("audio/wav"));
    assert_eq!(seen.status, 200);

    let r = post(
        &mut conn,
        Some(&bearer),
        &[
            file,
            model,
            ("language", None, b"it"),
            ("response_format", None, b"verbose_json"),
        ],
    );
    assert_eq!(r.status, 200);
    let v = json_of(&r);
    assert_eq!(
        (
            v["task"].as_str(),
            v["language"].as_str(),
            v["text"].as_str()
        ),
        (Some("transcribe"), Some("italian"), Some(TRANSCRIPT))
    );
    assert_eq!(v["duration"].as_f64(), Some(0.5));
    assert_eq!(v["segments"], json!([]));

    let r = post(
        &mut conn,
        Some(&bearer),
        &[model, ("response_format", None, b"text"), file],
    );
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        format!("{TRANSCRIPT}\n")
    );

    // Errors, in OpenAI's shape.
    let r = post(&mut conn, Some("Bearer sk-wrong"), &[file, model]);
    assert_eq!(r.status, 401);
    assert_eq!(
        json_of(&r),
        json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})
    );
    let seen = standin.last().unwrap();
    assert!(!seen.auth_ok);
    assert_eq!(
        (seen.model.as_str(), seen.file_bytes, seen.status),
        ("whisper-1", audio.len(), 401)
    );
    let r = post(&mut conn, None, &[file, model]);
    assert_eq!(
        (r.status, json_of(&r)["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );

    let r = post(&mut conn, Some(&bearer), &[model]);
    assert_eq!(r.status, 400);
    let e = &json_of(&r)["error"];
    assert_eq!(
        (e["type"].as_str(), e["param"].as_str()),
        (Some("invalid_request_error"), Some("file")),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("'file'"), "{e}");

    let r = post(
        &mut conn,
        Some(&bearer),
        &[
            (
                "file",
                Some(("call.mp3", "audio/mpeg")),
                b"ID3\x04 not a wav file",
            ),
            model,
        ],
    );
    assert_eq!(r.status, 400);
    assert!(json_of(&r)["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid file format."));

    let r = post(&mut conn, Some(&bearer), &[file]);
    assert_eq!(r.status, 400);
    assert!(json_of(&r)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("model"));

    let r = post(
        &mut conn,
        Some(&bearer),
        &[file, model, ("response_format", None, b"yaml")],
    );
    assert_eq!(r.status, 400);
    let r = send(
        &mut conn,
        "POST",
        "/v1/audio/transcriptions",
        &[
            ("authorization", &bearer),
            ("content-type", "application/json"),
        ],
        b"{}",
    );
    assert_eq!(r.status, 400);
    assert!(json_of(&r)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("multipart/form-data"));
    let r = send(
        &mut conn,
        "GET",
        "/v1/audio/transcriptions",
        &[("authorization", &bearer)],
        b"",
    );
    assert_eq!(r.status, 405);
    let r = send(
        &mut conn,
        "POST",
        "/v1/audio/translations",
        &[("authorization", &bearer)],
        b"",
    );
    assert_eq!(r.status, 404);
    assert_eq!(json_of(&r)["error"]["type"], "invalid_request_error");
    assert_eq!(
        standin.requests(),
        12,
        "every request on the one connection is counted"
    );

    // Dropping it stops it: the port is closed soon after.
    let port = standin.port;
    drop(standin);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the stand-in still accepts connections after drop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn echo_server_echoes_over_tls_with_keep_alive() {
    let pki = Pki::new();
    let echo = start_tls_echo(
        &"tcp://127.0.0.1:0".parse().unwrap(),
        &pki.path("transcribe.pem"),
        &pki.path("transcribe-key.pem"),
    );
    let mut conn = connect(echo.port().unwrap(), &pki.path("ca.pem"));
    for body in [&b"ping"[..], &wav()[..], b""] {
        let r = send(
            &mut conn,
            "POST",
            "/echo",
            &[("content-type", "application/octet-stream")],
            body,
        );
        assert_eq!((r.status, r.body.as_slice()), (200, body));
    }
    assert_eq!(send(&mut conn, "GET", "/other", &[], b"").status, 404);
}

/// `enclavectl ARGS`: exit code, stdout, stderr.
fn enclavectl_run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(enclavectl()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An HTTPS server on `listen` with the stand-in's certificate
/// (`transcribe.enclave.local`), answering with `handler`.
fn https_server(
    pki: &Pki,
    listen: &str,
    handler: impl Fn(&bounded_http::Request) -> Reply + Send + Sync + 'static,
) -> TlsServer {
    let tls = server_config(&pki.path("transcribe.pem"), &pki.path("transcribe-key.pem")).unwrap();
    TlsServer::start(
        &listen.parse().unwrap(),
        tls,
        bounded_http::Limits {
            head_bytes: 64 * 1024,
            body_bytes: 64 * 1024 * 1024,
        },
        handler,
    )
    .unwrap()
}

#[test]
fn call_health_and_metrics_exit_codes() {
    let pki = Pki::new();
    let ca = pki.path("ca.pem").display().to_string();
    let unavailable = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicU64::new(0));
    let (flag, count) = (Arc::clone(&unavailable), Arc::clone(&hits));
    let handler = move |req: &bounded_http::Request| {
        count.fetch_add(1, Ordering::SeqCst);
        assert_eq!(req.header("host"), Some(NAME));
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/health/enclave") if flag.load(Ordering::SeqCst) => Reply::json(
                503,
                &json!({"error": {"code": "service.unavailable", "message": "secrets are not provisioned yet"}}),
            )
            .with_header("retry-after", "1"),
            // Keys deliberately not in alphabetical order: the order is kept.
            ("GET", "/health/enclave") => Reply::json(200, &json!({"status": "ready", "attested": true, "tee": "sim"})),
            ("GET", "/metrics") => Reply::new(200, "text/plain; version=0.0.4", "calls_total 3\ncalls_failed_total 0\n"),
            _ => Reply::json(404, &json!({"error": {"code": "not_found", "message": "no such route"}})),
        }
    };
    let server = https_server(&pki, "tcp://127.0.0.1:0", handler);
    let addr = server.addr.to_string();
    let base = [
        "call",
        "--addr",
        addr.as_str(),
        "--ca",
        ca.as_str(),
        "--server-name",
        NAME,
    ];

    let (code, out, err) = enclavectl_run(&[&base[..], &["--health"]].concat());
    assert_eq!(code, 0, "stdout {out} stderr {err}");
    assert_eq!(
        out,
        "{\n  \"status\": \"ready\",\n  \"attested\": true,\n  \"tee\": \"sim\"\n}\n"
    );

    let (code, out, _) = enclavectl_run(&[&base[..], &["--metrics"]].concat());
    assert_eq!(
        (code, out.as_str()),
        (0, "calls_total 3\ncalls_failed_total 0\n")
    );

    unavailable.store(true, Ordering::SeqCst);
    let (code, out, err) = enclavectl_run(&[&base[..], &["--health"]].concat());
    assert_eq!(code, 1, "stdout {out} stderr {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "service.unavailable");
    assert!(out.contains("\n    \"code\""), "pretty-printed: {out}");
    assert!(
        err.contains("503") && err.contains("Retry-After: 1"),
        "{err}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    // The same over a Unix socket (the transport crate's URLs).
    let dir = TempDir::new("callcli");
    let sock = format!("unix://{}", dir.path().join("call.sock").display());
    let _unix = https_server(&pki, &sock, |_: &bounded_http::Request| {
        Reply::json(200, &json!({"status": "ready"}))
    });
    let (code, out, err) = enclavectl_run(&[
        "call",
        "--health",
        "--addr",
        &sock,
        "--ca",
        &ca,
        "--server-name",
        NAME,
    ]);
    assert_eq!(
        (code, out.as_str()),
        (0, "{\n  \"status\": \"ready\"\n}\n"),
        "{err}"
    );

    // Exit 2: nothing listening …
    let closed = format!("tcp://127.0.0.1:{}", free_port());
    let (code, out, err) = enclavectl_run(&[
        "call",
        "--health",
        "--addr",
        &closed,
        "--ca",
        &ca,
        "--server-name",
        NAME,
    ]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("cannot connect to") && err.contains("refused"),
        "{err}"
    );
    // … a certificate for another name (the default is call.enclave.local) …
    let (code, _, err) = enclavectl_run(&["call", "--health", "--addr", &addr, "--ca", &ca]);
    assert_eq!(code, 2);
    assert!(err.contains("TLS") && err.contains("certificate"), "{err}");
    // … a server whose CA is not the pinned one …
    let other = Pki::new();
    let other_ca = other.path("ca.pem").display().to_string();
    let (code, _, err) = enclavectl_run(&[
        "call",
        "--health",
        "--addr",
        &addr,
        "--ca",
        &other_ca,
        "--server-name",
        NAME,
    ]);
    assert_eq!(code, 2);
    // Both dev CAs carry the same subject, so rustls finds the other CA's
    // certificate as the issuer and rejects the signature.
    assert!(
        err.contains("TLS") && err.contains("invalid peer certificate"),
        "{err}"
    );
    // … no TLS at all (a peer that closes at once) …
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_addr = format!("tcp://{}", plain.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in plain.incoming() {
            drop(s);
        }
    });
    let (code, _, err) = enclavectl_run(&[
        "call",
        "--health",
        "--addr",
        &plain_addr,
        "--ca",
        &ca,
        "--server-name",
        NAME,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("TLS handshake"), "{err}");
    // … a peer that accepts and never answers (--timeout-ms) …
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = format!("tcp://{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let (code, _, err) = enclavectl_run(&[
        "call",
        "--health",
        "--addr",
        &silent_addr,
        "--ca",
        &ca,
        "--server-name",
        NAME,
        "--timeout-ms",
        "300",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("timed out"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(silent);
    // … and usage errors.
    for args in [
        &["call", "--health", "--addr", "http://x", "--ca", &ca][..],
        &[
            "call",
            "--health",
            "--addr",
            &addr,
            "--ca",
            "/nonexistent/ca.pem",
        ],
        &[
            "call",
            "--health",
            "--metrics",
            "--addr",
            &addr,
            "--ca",
            &ca,
        ],
        &["call", "--addr", &addr, "--ca", &ca],
    ] {
        let (code, _, err) = enclavectl_run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    drop(server);
}

/// The parts of a multipart body, found by searching the boundary:
/// (the part's header block, its bytes).
fn naive_parts(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = content_type.split("boundary=").nth(1).unwrap();
    let delimiter = format!("--{boundary}");
    assert!(body.starts_with(delimiter.as_bytes()));
    let close = format!("\r\n--{boundary}--\r\n");
    assert!(
        body.ends_with(close.as_bytes()),
        "the body ends with the close delimiter"
    );
    let framed = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    let mut rest = &body[delimiter.len()..];
    while rest.starts_with(b"\r\n") {
        rest = &rest[2..];
        let head_end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(rest[..head_end].to_vec()).unwrap();
        let content = &rest[head_end + 4..];
        let end = content
            .windows(framed.len())
            .position(|w| w == framed.as_bytes())
            .unwrap();
        parts.push((head, content[..end].to_vec()));
        rest = &content[end + framed.len()..];
    }
    assert_eq!(rest, b"--\r\n");
    parts
}

#[test]
fn call_sends_metadata_and_audio_parts() {
    let pki = Pki::new();
    let ca = pki.path("ca.pem").display().to_string();
    let received: Arc<Mutex<Vec<bounded_http::Request>>> = Arc::default();
    let status = Arc::new(AtomicU64::new(200));
    let (log, answer) = (Arc::clone(&received), Arc::clone(&status));
    let server = https_server(
        &pki,
        "tcp://127.0.0.1:0",
        move |req: &bounded_http::Request| {
            log.lock().unwrap().push(req.clone());
            match answer.load(Ordering::SeqCst) {
                200 => Reply::json(
                    200,
                    &json!({"call_id": "call-0001", "status": "processed", "transcript": TRANSCRIPT}),
                ),
                s => Reply::json(
                    s as u16,
                    &json!({"error": {"code": "audio.unsupported", "message": "not a supported WAV file"}}),
                ),
            }
        },
    );
    let addr = server.addr.to_string();
    let dir = TempDir::new("callcli");
    let audio = wav();
    let wav_path = dir.path().join("sample call.wav");
    std::fs::write(&wav_path, &audio).unwrap();
    let wav_arg = wav_path.display().to_string();
    let metadata = r#"{"call_id":"call-0001","shipment_id":"SHP-42","agent_type":"sara","caller_phone":"+39 333 123 4567","language":"it"}"#;

    let (code, out, err) = enclavectl_run(&[
        "call",
        &wav_arg,
        "--metadata",
        metadata,
        "--addr",
        &addr,
        "--ca",
        &ca,
        "--server-name",
        NAME,
    ]);
    assert_eq!(code, 0, "stdout {out} stderr {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["transcript"], TRANSCRIPT);
    assert!(
        out.starts_with("{\n  \"call_id\": \"call-0001\",\n  \"status\""),
        "{out}"
    );

    let req = received.lock().unwrap().pop().unwrap();
    assert_eq!(
        (req.method.as_str(), req.path.as_str(), req.header("host")),
        ("POST", "/v1/calls", Some(NAME))
    );
    let ct = req.header("content-type").unwrap();
    assert!(ct.starts_with("multipart/form-data; boundary="), "{ct}");
    let parts = naive_parts(ct, &req.body);
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts[0].0,
        "Content-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json"
    );
    assert_eq!(parts[0].1, metadata.as_bytes());
    assert_eq!(parts[1].0, "Content-Disposition: form-data; name=\"audio\"; filename=\"sample call.wav\"\r\nContent-Type: audio/wav");
    assert_eq!(parts[1].1, audio);
    // The stand-in's stricter parser reads the same body.
    let strict = enclave_tests::transcription::parse_form(ct, &req.body).unwrap();
    assert_eq!(
        strict.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["metadata", "audio"]
    );

    // A fresh random boundary each time; metadata from a file.
    let meta_path = dir.path().join("meta.json");
    std::fs::write(&meta_path, metadata).unwrap();
    let at_file = format!("@{}", meta_path.display());
    let (code, _, err) = enclavectl_run(&[
        "call",
        &wav_arg,
        "--metadata",
        &at_file,
        "--addr",
        &addr,
        "--ca",
        &ca,
        "--server-name",
        NAME,
    ]);
    assert_eq!(code, 0, "{err}");
    let again = received.lock().unwrap().pop().unwrap();
    assert_ne!(again.header("content-type"), Some(ct));
    assert_eq!(
        naive_parts(again.header("content-type").unwrap(), &again.body)[0].1,
        metadata.as_bytes()
    );

    // An error answer: exit 1, its JSON printed.
    status.store(422, Ordering::SeqCst);
    let (code, out, err) = enclavectl_run(&[
        "call",
        &wav_arg,
        "--metadata",
        metadata,
        "--addr",
        &addr,
        "--ca",
        &ca,
        "--server-name",
        NAME,
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["error"]["code"],
        "audio.unsupported"
    );
    assert!(err.contains("422"), "{err}");

    // Usage errors: nothing is sent.
    let before = received.lock().unwrap().len();
    let missing = dir.path().join("missing.wav").display().to_string();
    for (args, why) in [
        (
            vec!["call", wav_arg.as_str(), "--metadata", "{not json"],
            "not JSON",
        ),
        (
            vec!["call", wav_arg.as_str(), "--metadata", "[1, 2]"],
            "JSON object",
        ),
        (
            vec![
                "call",
                wav_arg.as_str(),
                "--metadata",
                "@/nonexistent/meta.json",
            ],
            "cannot read",
        ),
        (
            vec!["call", missing.as_str(), "--metadata", metadata],
            "cannot read",
        ),
        (vec!["call", wav_arg.as_str()], "--metadata"),
    ] {
        let (code, out, err) = enclavectl_run(
            &[
                &args[..],
                &["--addr", &addr, "--ca", &ca, "--server-name", NAME],
            ]
            .concat(),
        );
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert_eq!(received.lock().unwrap().len(), before);
}
