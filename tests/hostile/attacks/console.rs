//! Attacks through the console, which the host owns: stop reading it, or
//! make the guest write to it as fast as possible.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use enclave_tests::https::Client;
use enclave_tests::process::{boot_with_console, Guest};
use enclave_tests::stack::platform_client;
use enclave_tests::TempDir;

use crate::rig::{self, Options, Rig};
use crate::Verdict;

/// Boots a guest whose console the attack holds; the client of its call
/// service and its control address.
fn guest_with_console(rig: &Rig) -> Result<(Guest, Client, String, std::fs::File), String> {
    let dir = TempDir::new("console");
    let config = rig.guest_config(&dir, "");
    let (g, report, console) = boot_with_console(dir, &config)?;
    let addr = report["call_service"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let control = report["control"]
        .as_str()
        .unwrap_or_default()
        .strip_prefix("tcp://")
        .unwrap_or_default()
        .to_owned();
    Ok((
        g,
        platform_client(&rig.pki, &addr, &rig.bao.serving_ca_pem()),
        control,
        console,
    ))
}

/// Starts `threads` flooders that make the guest log as much as a peer
/// can: junk on the control channel, malformed and unknown requests on the
/// call port. Returns the stop flag and the count of requests made.
fn flood(
    threads: usize,
    client: &Client,
    control: &str,
) -> (
    Arc<AtomicBool>,
    Arc<AtomicU64>,
    Vec<std::thread::JoinHandle<()>>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let handles = (0..threads)
        .map(|i| {
            let (stop, made, client, control) = (
                Arc::clone(&stop),
                Arc::clone(&made),
                client.clone(),
                control.to_owned(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match i % 3 {
                        0 => {
                            if let Ok(mut s) = TcpStream::connect(&control) {
                                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                                let _ = s.write_all(b"junk-command\n");
                                let _ = s.read(&mut [0u8; 64]);
                            }
                        }
                        1 => {
                            if let Ok(mut c) = client.connect() {
                                let _ = c.get_mut().write_all(b"GARBAGE / HTTP/9.9\r\n\r\n");
                                let _ = c.get_mut().flush();
                                let _ = c.read(&mut [0u8; 256]);
                            }
                        }
                        _ => {
                            if let Ok(mut c) = client.connect() {
                                let _ = client.send(&mut c, "GET", "/no/such/route", &[], b"");
                            }
                        }
                    }
                    made.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    (stop, made, handles)
}

/// The host never reads the console (a one-page pipe, full within the
/// boot), and floods the control and call ports with connections that each
/// make the guest log a line. The guest must boot, answer well-behaved
/// calls within 5 s, and end trust at its deadline (the wipe never waits
/// on the console). The guest's own metrics must show the console backed
/// up, or the attack proved nothing.
pub fn console_stall() -> Verdict {
    let rig = Rig::new(Options {
        token_ttl_secs: 12,
        ..Options::default()
    });
    let (guest, client, control, console) = match guest_with_console(&rig) {
        Ok(g) => g,
        Err(e) => return Verdict::broken(e),
    };
    // The host holds the console and never reads it: every write to it
    // blocks once the pipe's page is full.
    let _held = console;
    let (stop, made, flooders) = flood(8, &client, &control);
    let mut within = 0;
    let mut latencies = Vec::new();
    for n in 0..12 {
        let (status, took) = rig::call(&client, &format!("stall-{n}"));
        if status == 200 && took <= Duration::from_secs(5) {
            within += 1;
        }
        latencies.push(took);
        std::thread::sleep(Duration::from_millis(300));
    }
    let backed_up = metric(&client, "enclave_log_queue_bytes").unwrap_or(0.0) > 0.0
        || metric(&client, "enclave_log_lines_dropped_total").unwrap_or(0.0) > 0.0;
    // Still stalled and flooded: trust must end on time.
    rig.to_verifier.set(rig::Mode::Cut);
    let Some((past, _)) = rig::watch_trust_end(&client, Duration::from_secs(30), "stalled") else {
        stop.store(true, Ordering::Relaxed);
        return Verdict::broken(
            "trust never ended (or health never answered) while the console was stalled",
        );
    };
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        let _ = f.join();
    }
    latencies.sort();
    let slowest = latencies.last().copied().unwrap_or_default();
    drop(guest);
    let figure = format!(
        "{within}/12 calls answered within 5 s with the console never read and {} flood requests (slowest {:.2} s); {past:.2} s served past expiry; console {}",
        made.load(Ordering::Relaxed),
        slowest.as_secs_f64(),
        if backed_up { "backed up (queued or dropping)" } else { "NOT backed up: the attack did not bite" }
    );
    Verdict::judge(within == 12 && past <= 1.0 && backed_up, figure)
}

/// A gauge or counter from the guest's `/metrics`.
fn metric(client: &Client, name: &str) -> Option<f64> {
    let mut conn = client.connect().ok()?;
    let r = client.send(&mut conn, "GET", "/metrics", &[], b"").ok()?;
    let text = String::from_utf8(r.body).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
}

/// Every line a peer can trigger, at full rate, with the console read:
/// the console's byte rate must stay under the documented bound (rate
/// limits per call site) and calls must keep their latency.
pub fn log_flood() -> Verdict {
    /// The bound the README documents for a flooded console.
    const BOUND_BYTES_PER_SEC: f64 = 8.0 * 1024.0;
    let rig = Rig::new(Options {
        token_ttl_secs: 60,
        ..Options::default()
    });
    let (guest, client, control, mut console) = match guest_with_console(&rig) {
        Ok(g) => g,
        Err(e) => return Verdict::broken(e),
    };
    let bytes = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&bytes);
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = console.read(&mut buf) {
            if n == 0 {
                break;
            }
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    let p99 = |tag: &str| {
        let mut v: Vec<Duration> = (0..20)
            .map(|n| rig::call(&client, &format!("{tag}-{n}")).1)
            .collect();
        v.sort();
        v[v.len() * 99 / 100]
    };
    let idle = p99("idle");
    let before = bytes.load(Ordering::Relaxed);
    let t = Instant::now();
    let (stop, made, flooders) = flood(8, &client, &control);
    let flooded = p99("flooded");
    std::thread::sleep(Duration::from_secs(
        10u64.saturating_sub(t.elapsed().as_secs()),
    ));
    stop.store(true, Ordering::Relaxed);
    let secs = t.elapsed().as_secs_f64();
    for f in flooders {
        let _ = f.join();
    }
    let rate = (bytes.load(Ordering::Relaxed) - before) as f64 / secs;
    drop(guest);
    let figure = format!(
        "console {:.1} KiB/s under {} flood requests in {secs:.0} s (bound {:.0} KiB/s); call p99 {:.0} ms flooded vs {:.0} ms idle",
        rate / 1024.0,
        made.load(Ordering::Relaxed),
        BOUND_BYTES_PER_SEC / 1024.0,
        flooded.as_secs_f64() * 1000.0,
        idle.as_secs_f64() * 1000.0
    );
    Verdict::judge(
        rate <= BOUND_BYTES_PER_SEC && flooded <= (idle * 3).max(idle + Duration::from_millis(300)),
        figure,
    )
}
