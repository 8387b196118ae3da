//! Proxy throughput (MB/s, 1 and 16 streams) and new connections per second
//! on the egress path (hybrid-vsock Unix socket → TCP target), side by side
//! with socat on the same path in the same run.
//!
//!   bench-proxy [MiB]      (default 512 MiB per measurement)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use enclave_tests::children::SpawnDying;
use enclave_tests::stack::{enclavectl, Proc};
use enclave_tests::TempDir;

/// A TCP sink: reads every connection to EOF, then closes it.
fn sink() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = vec![0u8; 256 * 1024];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                let _ = s.shutdown(Shutdown::Both);
            });
        }
    });
    port
}

fn wait_socket(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(p).is_err() {
        assert!(Instant::now() < deadline, "{} never accepted", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pushes `total` bytes through `uds` over `streams` connections; MB/s.
fn throughput(uds: &Path, total: usize, streams: usize) -> f64 {
    let per = total / streams;
    let start = Instant::now();
    let handles: Vec<_> = (0..streams)
        .map(|_| {
            let uds: PathBuf = uds.to_owned();
            std::thread::spawn(move || {
                let mut c = UnixStream::connect(&uds).unwrap();
                let chunk = vec![0x5au8; 256 * 1024];
                let mut left = per;
                while left > 0 {
                    let n = left.min(chunk.len());
                    c.write_all(&chunk[..n]).unwrap();
                    left -= n;
                }
                c.shutdown(Shutdown::Write).unwrap();
                let mut b = [0u8; 1];
                let _ = c.read(&mut b); // the sink closing ends it: all bytes arrived
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    (per * streams) as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// New connections per second (connect, one byte, close, wait for close) for 2 s.
fn conns_per_sec(uds: &Path) -> f64 {
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_secs(2) {
        let mut c = UnixStream::connect(uds).unwrap();
        c.write_all(b"x").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut b = [0u8; 1];
        let _ = c.read(&mut b);
        n += 1;
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn main() {
    enclave_tests::one_line_panics("bench-proxy");
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(512);
    let total = mib * 1024 * 1024;
    let dir = TempDir::new("bp");
    let port = sink();
    let ours = dir.path().join("ours.vsock_9");
    let theirs = dir.path().join("socat.vsock_9");
    let _proxy = Proc::from_child(
        Command::new(enclavectl())
            .args(["proxy", "--egress"])
            .arg(format!("{}=127.0.0.1:{port}", ours.display()))
            .stdout(Stdio::null())
            .spawn_dying()
            .unwrap(),
    );
    let _socat = Proc::from_child(
        Command::new("socat")
            .arg(format!("UNIX-LISTEN:{},fork", theirs.display()))
            .arg(format!("TCP:127.0.0.1:{port}"))
            .spawn_dying()
            .expect("socat (scripts/install-deps installs it)"),
    );
    wait_socket(&ours);
    wait_socket(&theirs);
    println!("egress path: Unix socket -> TCP loopback, {mib} MiB per throughput run");
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "", "enclavectl", "socat", "ratio"
    );
    let mut rows = Vec::new();
    for streams in [1, 16] {
        let a = throughput(&ours, total, streams);
        let b = throughput(&theirs, total, streams);
        println!(
            "{:<28} {:>9.0} MB/s {:>7.0} MB/s {:>8.2}",
            format!("throughput, {streams} stream(s)"),
            a,
            b,
            a / b
        );
        rows.push(format!(
            "row: proxy throughput, {streams} stream(s), vs socat | {a:.0} MB/s | {b:.0} MB/s | {:.2} | >= 1.0",
            a / b
        ));
    }
    let a = conns_per_sec(&ours);
    let b = conns_per_sec(&theirs);
    println!(
        "{:<28} {:>10.0} /s {:>10.0} /s {:>8.2}",
        "new connections",
        a,
        b,
        a / b
    );
    // scripts/bench's table.
    for r in rows {
        println!("{r}");
    }
    println!(
        "row: proxy new connections/s vs socat | {a:.0} /s | {b:.0} /s | {:.2} | >= 1.0",
        a / b
    );
}
