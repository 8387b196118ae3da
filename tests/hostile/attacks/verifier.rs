//! Abusing the verifier itself (issue 18 item 1): connections that hold
//! its workers without using them (a handshake or a request dripped byte
//! by byte), and a flood of fast connections (challenges, bad bodies,
//! handshakes abandoned), while guests renew through it and a real client
//! runs full challenge + attest exchanges.
//!
//! The verifier runs with its defaults (64 workers, a queue of 64, 5 s
//! handshake, 10 s request, 2 s idle) except the per-source cap, which the
//! test stack raises because every peer here is loopback: these attacks
//! test the deadlines and the shedding of crawlers, not the cap.
//!
//! Held only if every guest renewed during the attack, none withdrew, and
//! every exchange of the real client succeeded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use enclave_tests::process::Guest;
use wire::verifier::{AttestRequest, Challenge, EXPORTER_LABEL};

use super::fleet::{boot_many, join};
use crate::rig::{host_client as hc, Options, Rig};
use crate::Verdict;

/// How long the attack is mounted: about four renewals of an 8 s token.
const UNDER_ATTACK: Duration = Duration::from_secs(20);
const GUESTS: usize = 3;

/// The rig and three guests renewing every 4-6 s.
fn boot() -> Result<(Rig, Vec<(Guest, serde_json::Value)>), Verdict> {
    let rig = Rig::new(Options {
        token_ttl_secs: 8,
        ..Options::default()
    });
    let running: Vec<(Guest, serde_json::Value)> =
        join(boot_many(GUESTS, |d| rig.plain_config(d, "")))
            .into_iter()
            .filter_map(|b| b.guest)
            .collect();
    if running.len() != GUESTS {
        return Err(Verdict::broken(format!(
            "only {} of {GUESTS} guests booted before the attack",
            running.len()
        )));
    }
    Ok((rig, running))
}

/// Each guest's (renewals, withdrawals, trusted) now.
fn status(guests: &[(Guest, serde_json::Value)]) -> Vec<(u64, u64, bool)> {
    guests
        .iter()
        .map(|(g, r)| {
            let st: serde_json::Value =
                serde_json::from_str(&g.command(r, "status")).unwrap_or_default();
            (
                st["renewals"].as_u64().unwrap_or(0),
                st["lifecycle"]["withdrawals"].as_u64().unwrap_or(1),
                st["lifecycle"]["trusted"] == true,
            )
        })
        .collect()
}

/// One full exchange of a real client on a fresh connection: handshake,
/// challenge, sim evidence for the binding, attest; its time, or why it
/// failed (never a panic: the attack goes on).
fn exchange(ca: &str, port: u16, psp: &std::path::Path) -> Result<Duration, String> {
    let t = Instant::now();
    let mut tls = hc::connect(ca, port);
    let io = |e: std::io::Error| e.to_string();
    tls.get_ref()
        .sock
        .set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(io)?;
    let post = |tls: &mut hc::Tls, path: &str, body: &[u8]| {
        bounded_http::write_request(
            tls.get_mut(),
            "POST",
            "verifier.enclave.local",
            path,
            &[],
            body,
        )
        .map_err(|e| format!("{path}: {e}"))?;
        bounded_http::read_response(tls, bounded_http::Limits::default())
            .map_err(|e| format!("{path}: {e}"))
    };
    let r = post(&mut tls, "/v1/challenge", b"{}")?;
    if r.status != 200 {
        return Err(format!("challenge {}", r.status));
    }
    let c: Challenge = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
    let nonce: [u8; 32] = c.nonce[..].try_into().map_err(|_| "nonce length")?;
    let mut exporter = [0u8; 32];
    tls.get_ref()
        .conn
        .export_keying_material(&mut exporter, EXPORTER_LABEL, None)
        .map_err(|e| e.to_string())?;
    let spki = hc::spki();
    let rd = tee_formats::binding::report_data(&nonce, &spki, &exporter);
    let addr: transport::Addr = format!("unix://{}", psp.display())
        .parse()
        .map_err(|e| format!("{e:?}"))?;
    let mut source = evidence::sim::SimPsp::new(addr, Duration::from_secs(10));
    let bundle = evidence::EvidenceSource::collect(&mut source, &rd).map_err(|e| e.to_string())?;
    let req = AttestRequest {
        nonce: nonce.to_vec().into(),
        enclave_key_spki: spki.into(),
        bundle,
        client_certificate: false,
    };
    let body = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
    let r = post(&mut tls, "/v1/attest", &body)?;
    if r.status != 200 {
        return Err(format!(
            "attest {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }
    Ok(t.elapsed())
}

/// The real client: exchanges one after another (300 ms apart) until
/// stopped; each one's time or failure.
struct Client {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Result<Duration, String>>>,
}

impl Client {
    fn start(rig: &Rig) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, ca, port, psp) = (
            Arc::clone(&stop),
            rig.pki.ca_pem(),
            rig.verifier.port,
            rig.psp.socket.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            while !s.load(Ordering::SeqCst) {
                out.push(exchange(&ca, port, &psp));
                std::thread::sleep(Duration::from_millis(300));
            }
            out
        });
        Client { stop, thread }
    }

    /// (succeeded, failed, p99 of the successes, first failure).
    fn finish(self) -> (usize, usize, Duration, Option<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let all = self.thread.join().unwrap_or_default();
        let mut ok: Vec<Duration> = all
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        let failed: Vec<&String> = all.iter().filter_map(|r| r.as_ref().err()).collect();
        ok.sort();
        let p99 = if ok.is_empty() {
            Duration::ZERO
        } else {
            ok[((ok.len() * 99).div_ceil(100)).saturating_sub(1)]
        };
        (
            ok.len(),
            failed.len(),
            p99,
            failed.first().map(|s| (*s).clone()),
        )
    }
}

/// The verifier's `/metrics` sample `name` (0 if absent).
fn metric(rig: &Rig, name: &str) -> u64 {
    let mut tls = hc::connect(&rig.pki.ca_pem(), rig.verifier.port);
    let _ = tls
        .get_ref()
        .sock
        .set_read_timeout(Some(Duration::from_secs(10)));
    if bounded_http::write_request(
        tls.get_mut(),
        "GET",
        "verifier.enclave.local",
        "/metrics",
        &[],
        b"",
    )
    .is_err()
    {
        return 0;
    }
    let Ok(r) = bounded_http::read_response(&mut tls, bounded_http::Limits::default()) else {
        return 0;
    };
    String::from_utf8_lossy(&r.body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// A ClientHello for the verifier, as bytes on the wire.
fn client_hello(ca: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()).flatten() {
        let _ = roots.add(c);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    let Ok(config) = config else {
        return Vec::new();
    };
    let Ok(name) = rustls::pki_types::ServerName::try_from("verifier.enclave.local") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Ok(mut c) = rustls::ClientConnection::new(Arc::new(config), name) {
        let _ = c.write_tls(&mut out);
    }
    out
}

/// The dripping attackers: `n` connections, half dripping a ClientHello,
/// half a request head after a real handshake, one byte every
/// `interval`; each reconnects at the next tick when the verifier cuts
/// it. Counts the connections the verifier cut.
struct Drippers {
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Drippers {
    fn start(rig: &Rig, n: usize, interval: Duration) -> Drippers {
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicU64::new(0));
        let ca = rig.pki.ca_pem();
        let hello = Arc::new(client_hello(&ca));
        let port = rig.verifier.port;
        let threads = (0..n)
            .map(|i| {
                let (stop, cut, ca, hello) = (
                    Arc::clone(&stop),
                    Arc::clone(&cut),
                    ca.clone(),
                    Arc::clone(&hello),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let survived = if i % 2 == 0 {
                            drip_handshake(port, &hello, interval, &stop)
                        } else {
                            drip_request(&ca, port, interval, &stop)
                        };
                        if !survived {
                            cut.fetch_add(1, Ordering::Relaxed);
                            // Like slowloris itself, a cut socket is
                            // opened again at the next tick: reconnecting
                            // in a tight loop is a connection flood,
                            // verifier-flood's attack.
                            std::thread::sleep(interval);
                        }
                    }
                })
            })
            .collect();
        Drippers { stop, cut, threads }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        self.cut.load(Ordering::Relaxed)
    }
}

/// Drips `hello` a byte per `interval`; false when the verifier closed
/// the connection (true: stopped, or the whole hello went through).
fn drip_handshake(port: u16, hello: &[u8], interval: Duration, stop: &AtomicBool) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        std::thread::sleep(interval);
        return false;
    };
    let _ = s.set_read_timeout(Some(interval));
    for b in hello {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        if s.write_all(&[*b]).is_err() {
            return false;
        }
        // Waiting on a read notices the verifier's close at once.
        let mut sink = [0u8; 256];
        match s.read(&mut sink) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Completes a handshake, then drips a request head a byte per
/// `interval`; false when the verifier closed the connection or answered.
fn drip_request(ca: &str, port: u16, interval: Duration, stop: &AtomicBool) -> bool {
    let mut tls = hc::connect(ca, port);
    let head = b"POST /v1/challenge HTTP/1.1\r\nhost: verifier.enclave.local\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\ncontent-length: 2\r\n\r\n{}";
    // The handshake completes on the first write (or fails if shed).
    for b in head {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        if tls
            .get_mut()
            .write_all(&[*b])
            .and_then(|()| tls.get_mut().flush())
            .is_err()
        {
            return false;
        }
        std::thread::sleep(interval);
    }
    true
}

/// The renewals figure and verdict parts shared by both attacks.
fn judge(
    what: String,
    before: &[(u64, u64, bool)],
    after: &[(u64, u64, bool)],
    client: (usize, usize, Duration, Option<String>),
    extra: bool,
) -> Verdict {
    let renewed: Vec<u64> = before
        .iter()
        .zip(after)
        .map(|(b, a)| a.0.saturating_sub(b.0))
        .collect();
    let withdrawn = after.iter().filter(|s| s.1 > 0 || !s.2).count();
    let (ok, failed, p99, first_failure) = client;
    let figure = format!(
        "{what}; guests renewed {renewed:?} times in {} s, {withdrawn} of {GUESTS} withdrew; real client {ok}/{} exchanges ok, p99 {} ms{}",
        UNDER_ATTACK.as_secs(),
        ok + failed,
        p99.as_millis(),
        first_failure.map(|f| format!(" (first failure: {f})")).unwrap_or_default(),
    );
    Verdict::judge(
        extra && withdrawn == 0 && renewed.iter().all(|&n| n >= 2) && ok > 0 && failed == 0,
        figure,
    )
}

/// 64 connections (`HOSTILE_SLOWLORIS_CONNECTIONS`; `scripts/bench-verifier`
/// runs 1024) drip a ClientHello or a request head a byte every second,
/// reconnecting a second after each cut, for 20 s while three guests renew (8 s
/// tokens) and a real client runs full exchanges. The drippers hold every
/// worker when they start: only the deadlines and the shedding of
/// crawlers while others wait give the guests a worker.
pub fn verifier_slowloris() -> Verdict {
    let n: usize = std::env::var("HOSTILE_SLOWLORIS_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let (rig, guests) = match boot() {
        Ok(x) => x,
        Err(v) => return v,
    };
    let before = status(&guests);
    let drippers = Drippers::start(&rig, n, Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(500));
    let client = Client::start(&rig);
    std::thread::sleep(UNDER_ATTACK);
    let client = client.finish();
    let cut = drippers.finish();
    let after = status(&guests);
    let kills = metric(
        &rig,
        "enclave_verifier_deadline_kills_total{phase=\"handshake\"}",
    ) + metric(
        &rig,
        "enclave_verifier_deadline_kills_total{phase=\"request\"}",
    );
    judge(
        format!("{n} dripping connections (a byte a second) cut {cut} times (verifier counted {kills} handshake/request kills)"),
        &before,
        &after,
        client,
        cut > 0 && kills > 0,
    )
}

/// Eight threads open connections as fast as they can for 20 s: a
/// challenge on a fresh TLS connection, a garbage attest body (must be
/// 400), a ClientHello then close, a bare connect then close; while three
/// guests renew and a real client runs full exchanges.
pub fn verifier_flood() -> Verdict {
    let (rig, guests) = match boot() {
        Ok(x) => x,
        Err(v) => return v,
    };
    let before = status(&guests);
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    let ca = rig.pki.ca_pem();
    let hello = Arc::new(client_hello(&ca));
    let port = rig.verifier.port;
    let threads: Vec<JoinHandle<()>> = (0..8)
        .map(|i| {
            let (stop, ops, wrong, ca, hello) = (
                Arc::clone(&stop),
                Arc::clone(&ops),
                Arc::clone(&wrong),
                ca.clone(),
                Arc::clone(&hello),
            );
            std::thread::spawn(move || {
                let mut k = i;
                while !stop.load(Ordering::SeqCst) {
                    k += 1;
                    let ok = flood_once(k % 4, &ca, port, &hello);
                    ops.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let client = Client::start(&rig);
    std::thread::sleep(UNDER_ATTACK);
    let client = client.finish();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let after = status(&guests);
    let (ops, wrong) = (ops.load(Ordering::Relaxed), wrong.load(Ordering::Relaxed));
    judge(
        format!("{ops} flood connections ({wrong} answered other than expected: 200/400/503)"),
        &before,
        &after,
        client,
        ops > 0,
    )
}

/// One flood connection of `kind`; false when the verifier answered other
/// than expected (a challenge: 200 or a 503 shed; a garbage body: 400 or
/// 503). Abandoned handshakes and bare connects expect nothing.
fn flood_once(kind: usize, ca: &str, port: u16, hello: &[u8]) -> bool {
    match kind {
        0 | 1 => {
            let mut tls = hc::connect(ca, port);
            let _ = tls
                .get_ref()
                .sock
                .set_read_timeout(Some(Duration::from_secs(10)));
            let body: &[u8] = if kind == 0 { b"{}" } else { b"{\"nonce\":[1,2" };
            let path = if kind == 0 {
                "/v1/challenge"
            } else {
                "/v1/attest"
            };
            let sent = bounded_http::write_request(
                tls.get_mut(),
                "POST",
                "verifier.enclave.local",
                path,
                &[],
                body,
            );
            let Ok(()) = sent else { return true };
            match bounded_http::read_response(&mut tls, bounded_http::Limits::default()) {
                Ok(r) => {
                    let want = if kind == 0 { 200 } else { 400 };
                    r.status == want || r.status == 503
                }
                // A shed connection past the 503 slots is closed unanswered.
                Err(_) => true,
            }
        }
        2 => {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(hello);
            }
            true
        }
        _ => {
            let _ = TcpStream::connect(("127.0.0.1", port));
            true
        }
    }
}
