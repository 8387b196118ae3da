//! The call service under load, beside a plain TLS echo on the same
//! transport in the same run: requests per second and p50/p99 latency for
//! a 60-second 8 kHz μ-law call (one `POST /v1/calls` each), 1 and 16
//! concurrent clients, each on its own kept-alive TLS connection. The
//! transcription stand-in answers at once (zero upstream latency), so the
//! figures are the enclave's own cost: TLS, multipart, WAV decoding and
//! analysis, the upstream round trip through its own TLS client, PII
//! hashing, the response. The echo server receives the same request body
//! and sends it back (TLS and HTTP framing only). A second enclave, the
//! same but with the audit trail on (`audit.required`, every call a signed
//! record shipped to the test-support collector, which acknowledges each
//! line), gives the audit trail's overhead.
//!
//!   bench-calls [SECONDS per run, default 10]
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use enclave_tests::https::{self, Client};
use enclave_tests::process::boot;
use enclave_tests::stack::{
    guest_config, platform_client, service_config, sim_policy, OpenBao, Pki, SimPsp, Verifier,
};
use enclave_tests::transcription::TranscriptionStandIn;
use enclave_tests::TempDir;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Runs `clients` threads for `secs`, each sending `POST path` with `body`
/// on one kept-alive connection; returns (requests/s, p50 ms, p99 ms).
fn load(
    client: &Client,
    path: &str,
    content_type: &str,
    body: &[u8],
    clients: usize,
    secs: u64,
) -> (f64, f64, f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let body = Arc::new(body.to_vec());
    let mut handles = Vec::new();
    let started = Instant::now();
    for _ in 0..clients {
        let (client, stop, body, path, ct) = (
            client.clone(),
            Arc::clone(&stop),
            Arc::clone(&body),
            path.to_owned(),
            content_type.to_owned(),
        );
        handles.push(std::thread::spawn(move || {
            let mut conn = client.connect().unwrap();
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match client.send(&mut conn, "POST", &path, &[("content-type", &ct)], &body) {
                    Ok(r) if r.status == 200 => lat.push(t.elapsed().as_secs_f64() * 1000.0),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = client.connect().unwrap();
                    }
                }
            }
            (lat, errors)
        }));
    }
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rps = all.len() as f64 / elapsed;
    (rps, pct(&mut all, 0.5), pct(&mut all, 0.99), errors)
}

fn main() {
    enclave_tests::one_line_panics("bench-calls");
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let dir = TempDir::new("bench-calls");
    let pki = Pki::new();
    let m = "c3".repeat(48);
    let psp = SimPsp::start(&dir.path().join("psp.sock"), &["--measurement", &m]);
    let verifier = Verifier::start(
        &pki,
        &sim_policy(&psp.ark_sha256, &[&psp.measurement]),
        dir.path(),
        &[],
    );
    let bao = OpenBao::start(&pki);
    bao.setup(
        &verifier,
        &pki,
        &[&psp.measurement],
        "sim",
        &[("ENCLAVE_SEED_TRANSCRIPTION_API_KEY", "bench-key")],
    );
    let transcript = "Questa è una trascrizione di prova per il benchmark: il cliente chiede la consegna domani.";
    let standin = TranscriptionStandIn::start(
        &pki.path("transcribe.pem"),
        &pki.path("transcribe-key.pem"),
        "bench-key",
        transcript,
    );

    // The enclave (process mode, the release guest binary) on a Unix socket.
    let g = TempDir::new("g");
    let call_sock = g.path().join("call.sock");
    let mut config = guest_config(g.path(), &psp.socket, Some((&verifier, &pki)), Some(&bao));
    config.push_str(&service_config(
        &format!("unix://{}", call_sock.display()),
        &format!("tcp://127.0.0.1:{}", standin.port),
        &pki,
        "workers = 16\nqueue = 16",
    ));
    config.push_str("\n[log]\nlevel = \"warn\"\n");
    let (_guest, _report) = boot(g, &config).ready();
    let service = platform_client(
        &pki,
        &format!("unix://{}", call_sock.display()),
        &bao.serving_ca_pem(),
    );
    // The same enclave with the audit trail on, shipping to a collector that
    // acknowledges each record (tests/support/audit.rs).
    let collector = enclave_tests::audit::Collector::start(true);
    let ga = TempDir::new("ga");
    let audited_sock = ga.path().join("call.sock");
    let mut config = guest_config(ga.path(), &psp.socket, Some((&verifier, &pki)), Some(&bao));
    config.push_str(&service_config(
        &format!("unix://{}", audited_sock.display()),
        &format!("tcp://127.0.0.1:{}", standin.port),
        &pki,
        "workers = 16\nqueue = 16",
    ));
    config.push_str(&format!(
        "\n[log]\nlevel = \"warn\"\n\n[audit]\ncollector = \"tcp://127.0.0.1:{}\"\nrequired = \"on\"\n",
        collector.port
    ));
    let (_audited_guest, _report) = boot(ga, &config).ready();
    let audited = platform_client(
        &pki,
        &format!("unix://{}", audited_sock.display()),
        &bao.serving_ca_pem(),
    );

    // The baseline: a plain TLS echo on the same transport.
    let echo_sock = dir.path().join("echo.sock");
    let _echo = enclave_tests::echo::start_tls_echo(
        &format!("unix://{}", echo_sock.display()).parse().unwrap(),
        &pki.path("transcribe.pem"),
        &pki.path("transcribe-key.pem"),
    );
    let echo = Client::new(
        &format!("unix://{}", echo_sock.display()),
        &pki.ca_pem(),
        "transcribe.enclave.local",
    );

    let wav = https::wav("mulaw", 8000, 60.0);
    let metadata = r#"{"call_id":"bench-1","shipment_id":"SHP-1","agent_type":"sara","caller_phone":"+39 333 123 4567","language":"it"}"#;
    let (ct, body) = https::multipart(&[
        ("metadata", None, "application/json", metadata.as_bytes()),
        ("audio", Some("call.wav"), "audio/wav", &wav),
    ]);
    // Warm up (and check) both.
    assert_eq!(service.call(metadata, &wav).status, 200);
    assert_eq!(audited.call(metadata, &wav).status, 200);
    assert_eq!(
        echo.request("POST", "/echo", &[("content-type", &ct)], &body)
            .body
            .len(),
        body.len()
    );

    println!("request: 60 s 8 kHz mu-law call, {} bytes of multipart body; {secs} s per run; transport unix socket; {} CPUs", body.len(), std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!(
        "{:<28} {:>8} {:>10} {:>10} {:>10} {:>8}",
        "", "clients", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let mut rows = Vec::new();
    for clients in [1, 16] {
        let (e_rps, e50, e99, e_err) = load(&echo, "/echo", &ct, &body, clients, secs);
        println!(
            "{:<28} {:>8} {:>10.1} {:>10.2} {:>10.2} {:>8}",
            "plain TLS echo (baseline)", clients, e_rps, e50, e99, e_err
        );
        let (s_rps, s50, s99, s_err) = load(&service, "/v1/calls", &ct, &body, clients, secs);
        println!(
            "{:<28} {:>8} {:>10.1} {:>10.2} {:>10.2} {:>8}",
            "enclave POST /v1/calls", clients, s_rps, s50, s99, s_err
        );
        println!(
            "{:<28} {:>8} {:>10.2} {:>10.2} {:>10.2}",
            "ratio call/echo",
            clients,
            s_rps / e_rps,
            s50 / e50,
            s99 / e99
        );
        let before = collector.stored.lock().unwrap().len();
        let (a_rps, a50, a99, a_err) = load(&audited, "/v1/calls", &ct, &body, clients, secs);
        let shipped = collector.stored.lock().unwrap().len() - before;
        println!(
            "{:<28} {:>8} {:>10.1} {:>10.2} {:>10.2} {:>8}",
            "  same, audit trail on", clients, a_rps, a50, a99, a_err
        );
        println!(
            "{:<28} {:>8} {:>10.2} {:>10.2} {:>10.2}   ({shipped} records acknowledged)",
            "ratio audit on/off",
            clients,
            a_rps / s_rps,
            a50 / s50,
            a99 / s99
        );
        // The goal (issue 15): 0.3 of the echo with 16 clients.
        let goal = if clients == 16 { ">= 0.3" } else { "-" };
        rows.push(format!(
            "row: calls/s, {clients} client(s), vs plain TLS echo | {s_rps:.1} /s | {e_rps:.1} /s | {:.2} | {goal}",
            s_rps / e_rps
        ));
        rows.push(format!(
            "row: calls/s, {clients} client(s), audit trail on vs off | {a_rps:.1} /s | {s_rps:.1} /s | {:.2} | >= 0.95",
            a_rps / s_rps
        ));
    }
    // scripts/bench's table.
    for r in rows {
        println!("{r}");
    }
    println!(
        "upstream requests served by the stand-in: {}",
        standin.requests()
    );
}
