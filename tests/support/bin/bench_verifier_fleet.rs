//! The verifier at fleet scale: a load generator playing GUESTS guests that
//! each renew every PERIOD seconds, against two verifier replicas behind
//! HAProxy (TCP mode), for SECONDS. It does not boot guests: it replays a
//! guest's exchange (new TLS connection, challenge, sim-psp evidence bound
//! to the nonce, an enclave key and the TLS exporter, attest) at the
//! fleet's aggregate rate, GUESTS / PERIOD exchanges a second, open loop
//! (each exchange starts at its scheduled time, whether or not earlier ones
//! have finished; a late start is reported, not hidden).
//!
//! Reports p50/p99 of the attest round trip (the appraisal as the guest
//! sees it) and of the whole exchange, errors, and the CPU seconds each
//! replica, HAProxy, sim-psp and the generator used (utime + stime from
//! /proc/<pid>/stat) over the run.
//!
//!   bench-verifier-fleet [GUESTS, default 10000] [SECONDS, default 60]
//!   PERIOD_SECS (default 60), WORKERS (concurrent exchanges, default 64);
//!   ENCLAVECTL names the enclavectl binary (scripts/bench-verifier-fleet
//!   points it at the release build).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    reason = "test code: counts and durations of one run"
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use enclave_tests::attest_client::{client_config, enclave_spki, exchange};
use enclave_tests::replicas::Replicas;
use enclave_tests::stack::{sim_policy, Pki, SimPsp};
use enclave_tests::TempDir;

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may
    // contain spaces: utime and stime are fields 14 and 15 of the line,
    // 12 and 13 after ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / clock_ticks()
}

/// Clock ticks per second (the unit of /proc/<pid>/stat's times), from
/// `getconf CLK_TCK` (no unsafe sysconf here).
fn clock_ticks() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .expect("getconf CLK_TCK")
    })
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one exchange measured, milliseconds.
#[derive(Default)]
struct Samples {
    attest: Vec<f64>,
    whole: Vec<f64>,
    handshake: Vec<f64>,
    evidence: Vec<f64>,
    late: Vec<f64>,
    errors: BTreeMap<String, u64>,
}

fn main() {
    let arg = |i: usize, d: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (guests, secs) = (arg(1, 10_000), arg(2, 60));
    let period: f64 = env_or("PERIOD_SECS", 60.0);
    let workers: usize = env_or("WORKERS", 64);
    let rate = guests as f64 / period;

    let dir = TempDir::new("bench-verifier-fleet");
    let pki = Pki::new();
    let psp = SimPsp::start(
        &dir.path().join("psp.sock"),
        &["--measurement", &"c3".repeat(48)],
    );
    let policy = sim_policy(&psp.ark_sha256, &[&psp.measurement]);
    let ha = Replicas::start(&pki, &policy, dir.path(), 2, &["--token-ttl-secs", "60"]);
    let tls = client_config(&pki.ca_pem());

    // Each replica directly, then the proxy: all answer (and warm up).
    for port in ha.replicas.iter().map(|v| v.port).chain([ha.proxy.port]) {
        if let Err(e) = exchange(
            &tls,
            port,
            &psp.socket,
            &enclave_spki(),
            Duration::from_secs(30),
        ) {
            panic!("a warm-up exchange with port {port} failed: {e}");
        }
    }

    let pids: Vec<(String, u32)> = ha
        .replicas
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("replica r{i}"), v.proc.pid()))
        .chain([
            ("haproxy".to_owned(), ha.proxy.proc.pid()),
            ("sim-psp".to_owned(), psp.proc.pid()),
            ("load generator".to_owned(), std::process::id()),
        ])
        .collect();
    let cpu0: Vec<f64> = pids.iter().map(|(_, p)| cpu_secs(*p)).collect();
    let sessions0: Vec<u64> = ha
        .proxy
        .servers()
        .unwrap()
        .iter()
        .map(|s| s.sessions)
        .collect();

    println!(
        "{guests} guests renewing every {period} s: {rate:.1} exchanges/s for {secs} s through HAProxy to 2 replicas; {workers} generator workers; {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let next = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let t0 = Instant::now() + Duration::from_millis(200);
    let end = t0 + Duration::from_secs(secs);
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (next, samples, tls) = (Arc::clone(&next), Arc::clone(&samples), Arc::clone(&tls));
            let (port, psp) = (ha.proxy.port, psp.socket.clone());
            std::thread::spawn(move || {
                let spki = enclave_spki();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let at = t0 + Duration::from_secs_f64(k as f64 / rate);
                    if at >= end {
                        return;
                    }
                    std::thread::sleep(at.saturating_duration_since(Instant::now()));
                    let late = Instant::now().saturating_duration_since(at);
                    let r = exchange(&tls, port, &psp, &spki, Duration::from_secs(30));
                    let whole = at.elapsed();
                    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                    let mut s = samples.lock().unwrap();
                    s.late.push(ms(late));
                    match r {
                        Ok(x) => {
                            s.attest.push(ms(x.attest));
                            s.whole.push(ms(whole));
                            s.handshake.push(ms(x.handshake));
                            s.evidence.push(ms(x.evidence));
                        }
                        Err(e) => {
                            // The error's kind, without the per-run details.
                            let kind: String = e.chars().take(60).collect();
                            *s.errors.entry(kind).or_default() += 1;
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu: Vec<f64> = pids
        .iter()
        .zip(&cpu0)
        .map(|((_, p), c0)| cpu_secs(*p) - c0)
        .collect();
    let sessions: Vec<u64> = ha
        .proxy
        .servers()
        .unwrap()
        .iter()
        .zip(&sessions0)
        .map(|(s, s0)| s.sessions - s0)
        .collect();

    let mut s = std::mem::take(&mut *samples.lock().unwrap());
    let ok = s.attest.len();
    let errors: u64 = s.errors.values().sum();
    println!(
        "exchanges: {ok} ok, {errors} failed, in {wall:.1} s ({:.1}/s); connections per replica {sessions:?}",
        ok as f64 / wall
    );
    for (e, n) in &s.errors {
        println!("  error x{n}: {e}");
    }
    println!("{:<36} {:>9} {:>9} {:>9}", "ms", "p50", "p99", "max");
    for (name, v) in [
        ("attest round trip (appraisal)", &mut s.attest),
        ("whole exchange (from its schedule)", &mut s.whole),
        ("TLS handshake", &mut s.handshake),
        ("sim-psp evidence (guest side)", &mut s.evidence),
        ("start later than scheduled", &mut s.late),
    ] {
        let max = v.iter().copied().fold(0.0, f64::max);
        println!(
            "{name:<36} {:>9.2} {:>9.2} {max:>9.2}",
            pct(v, 0.5),
            pct(v, 0.99)
        );
    }
    println!(
        "{:<36} {:>9} {:>9} {:>12}",
        "CPU", "seconds", "cores", "ms/exchange"
    );
    for ((name, _), c) in pids.iter().zip(&cpu) {
        println!(
            "{name:<36} {c:>9.2} {:>9.3} {:>12.3}",
            c / wall,
            c * 1000.0 / ok.max(1) as f64
        );
    }
    let verifier_cpu: f64 = cpu[..ha.replicas.len()].iter().sum();
    let per_exchange = verifier_cpu / ok.max(1) as f64;
    println!(
        "verifier replicas together: {verifier_cpu:.2} CPU s, {:.3} cores, {:.3} ms CPU per exchange",
        verifier_cpu / wall,
        per_exchange * 1000.0
    );
    // The paper extrapolation the docs write down, from this run's figure.
    let million_rate = 1_000_000.0 / period;
    println!(
        "1 000 000 guests every {period} s: {million_rate:.0} exchanges/s x {:.3} ms = {:.1} verifier cores",
        per_exchange * 1000.0,
        million_rate * per_exchange
    );
}
