//! The trail's queue, acknowledgements and backpressure, and the shipper
//! against a collector in this test (a unix listener that stores lines in
//! a Vec and acknowledges only what it stored; TEST HARNESS, not the real
//! collector, which is `enclavectl audit serve`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use audit_record::{Body, Chain, LifecycleBody, Record};

use super::*;
use crate::keys::EnclaveKey;

fn cfg(required: bool, queue: usize) -> AuditConfig {
    AuditConfig {
        collector: None,
        required,
        queue,
        deadline: Duration::from_millis(300),
        timeout: Duration::from_millis(500),
    }
}

fn trail(required: bool, queue: usize) -> (Arc<Audit>, Vec<u8>) {
    let key = EnclaveKey::generate().unwrap();
    let spki = key.spki().to_vec();
    let audit = Audit::new(
        cfg(required, queue),
        Box::new(key.audit_signer()),
        Arc::new(VerifierClock::new(0)),
    );
    (audit, spki)
}

fn change(n: u64) -> Body {
    Body::Lifecycle(LifecycleBody {
        from: format!("s{n}"),
        to: format!("s{}", n + 1),
    })
}

#[test]
fn required_refuses_while_full_or_stale_and_reopens_when_acknowledged() {
    let (a, _) = trail(true, 16);
    assert_eq!(a.gate(), Ok(()), "nothing waiting");
    a.emit(change(0));
    assert_eq!(a.gate(), Ok(()), "waiting, within the deadline");
    let later = Mono::now().after(Duration::from_millis(301));
    let why = a.gate_at(later).unwrap_err();
    assert!(
        why.contains("has not acknowledged record 0 for")
            && why.contains("audit.deadline_ms = 300"),
        "{why}"
    );
    assert_eq!(a.acknowledged(0), Ok(1));
    assert_eq!(a.gate_at(later), Ok(()), "acknowledged: open again");
    for n in 1..=16 {
        a.emit(change(n));
    }
    let why = a.gate().unwrap_err();
    assert_eq!(
        why,
        "the audit queue is full (16 records the collector has not acknowledged)"
    );
    let s = a.status();
    assert_eq!((s.depth, s.dropped, s.next_seq), (16, 0, 17));
    assert_eq!(s.refusing.as_deref(), Some(why.as_str()));
    // One more does not fit: dropped and counted, its seq consumed.
    a.emit(change(17));
    let s = a.status();
    assert_eq!((s.depth, s.dropped, s.next_seq), (16, 1, 18));
    assert_eq!(a.acknowledged(10), Ok(10));
    assert_eq!(a.gate(), Ok(()));
    assert_eq!(a.status().last_ack, Some(10));
}

#[test]
fn not_required_never_refuses_and_counts_what_it_drops() {
    let (a, _) = trail(false, 16);
    for n in 0..20 {
        a.emit(change(n));
    }
    assert_eq!(
        a.gate_at(Mono::now().after(Duration::from_secs(60))),
        Ok(())
    );
    let s = a.status();
    assert_eq!((s.depth, s.dropped, s.next_seq), (16, 4, 20));
    assert_eq!(s.refusing, None);
    let json = status_json(&s);
    assert_eq!(json["dropped"], 4);
    assert_eq!(json["serving_calls"], true);
}

#[test]
fn an_ack_of_a_record_never_made_is_refused() {
    let (a, _) = trail(true, 16);
    a.emit(change(0));
    assert_eq!(
        a.acknowledged(1),
        Err("the collector acknowledged seq 1, but only 1 records exist".into())
    );
    assert_eq!(a.status().depth, 1, "nothing left the queue");
}

/// The collector of these tests: stores each line it reads, then
/// acknowledges the highest contiguous seq it holds. `acking` off: it
/// stores but answers nothing. The store outlives connections (a
/// restarted collector keeps its database).
struct TestCollector {
    path: PathBuf,
    stored: Arc<Mutex<Vec<String>>>,
    acking: Arc<AtomicBool>,
    /// The next line read ends the connection without an ack: stored
    /// first (`Some(true)`: a crash after commit, before the ack) or not
    /// (`Some(false)`: a crash with the line in flight).
    crash: Arc<Mutex<Option<bool>>>,
}

impl TestCollector {
    fn start(name: &str) -> TestCollector {
        let path =
            std::env::temp_dir().join(format!("enclave-audit-{name}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let c = TestCollector {
            path,
            stored: Arc::new(Mutex::new(Vec::new())),
            acking: Arc::new(AtomicBool::new(true)),
            crash: Arc::new(Mutex::new(None)),
        };
        let (stored, acking, crash) = (
            Arc::clone(&c.stored),
            Arc::clone(&c.acking),
            Arc::clone(&c.crash),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                let mut hello = String::new();
                if r.read_line(&mut hello).unwrap_or(0) == 0 {
                    continue;
                }
                audit_record::ship::parse_hello(hello.trim_end()).unwrap();
                let committed = |s: &Vec<String>| (s.len() as u64).checked_sub(1);
                let _ = w.write_all(
                    audit_record::ship::ack_line(committed(&stored.lock().unwrap())).as_bytes(),
                );
                for line in r.lines() {
                    let Ok(line) = line else { break };
                    let rec = Record::parse(&line).unwrap();
                    let crashing = crash.lock().unwrap().take();
                    if crashing == Some(false) {
                        break;
                    }
                    let seq = usize::try_from(rec.seq).unwrap();
                    let mut s = stored.lock().unwrap();
                    // A resent record it already holds: same bytes, not stored twice.
                    if seq < s.len() {
                        assert_eq!(s[seq], line, "a different record at seq {}", rec.seq);
                    } else {
                        assert_eq!(seq, s.len(), "a gap before seq {}", rec.seq);
                        s.push(line);
                    }
                    let ack = committed(&s);
                    drop(s);
                    if crashing == Some(true) {
                        break;
                    }
                    if acking.load(Ordering::SeqCst) {
                        let _ = w.write_all(audit_record::ship::ack_line(ack).as_bytes());
                    }
                }
            }
        });
        c
    }

    fn wait_stored(&self, n: usize, within: Duration) -> Vec<String> {
        let until = Instant::now() + within;
        loop {
            let s = self.stored.lock().unwrap().clone();
            if s.len() >= n || Instant::now() > until {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn wait_for(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

#[test]
fn shipped_records_verify_and_a_collector_crash_loses_nothing() {
    let collector = TestCollector::start("crash");
    let (a, spki) = trail(true, 64);
    shipper::spawn(
        Arc::clone(&a),
        transport::Addr::Unix(collector.path.clone()),
    )
    .unwrap();
    for n in 0..10 {
        a.emit(change(n));
    }
    let lines = collector.wait_stored(10, Duration::from_secs(5));
    assert_eq!(lines.len(), 10);
    assert!(wait_for(Duration::from_secs(5), || a.status().depth == 0));
    // The collector dies with a record in flight (read, not stored), then
    // again after storing one but before acknowledging it.
    for crash in [false, true] {
        *collector.crash.lock().unwrap() = Some(crash);
        let first = a.status().next_seq;
        for n in first..first + 5 {
            a.emit(change(n));
        }
        assert!(
            wait_for(Duration::from_secs(10), || a.status().depth == 0),
            "{:?}",
            a.status()
        );
        assert!(collector.crash.lock().unwrap().is_none(), "it crashed");
        assert!(a.status().last_error.is_some());
    }
    let lines = collector.wait_stored(20, Duration::from_secs(1));
    assert_eq!(lines.len(), 20, "every record stored exactly once");
    let mut chain = Chain::new(&spki);
    for line in &lines {
        let rec = Record::parse(line).unwrap();
        rec.verify_sig(&spki).unwrap();
        chain.follow(&rec).unwrap();
    }
    let s = a.status();
    assert_eq!((s.acked, s.dropped, s.last_ack), (20, 0, Some(19)));
}

#[test]
fn a_collector_that_stops_acknowledging_stops_calls_until_it_resumes() {
    let collector = TestCollector::start("silent");
    let (a, _) = trail(true, 64);
    shipper::spawn(
        Arc::clone(&a),
        transport::Addr::Unix(collector.path.clone()),
    )
    .unwrap();
    a.emit(change(0));
    assert!(wait_for(Duration::from_secs(5), || a.status().acked == 1));
    collector.acking.store(false, Ordering::SeqCst);
    a.emit(change(1));
    // Stored, never acknowledged: after audit.deadline_ms calls stop.
    assert!(wait_for(Duration::from_secs(5), || a.gate().is_err()));
    let why = a.gate().unwrap_err();
    assert!(why.contains("has not acknowledged record 1"), "{why}");
    assert_eq!(collector.stored.lock().unwrap().len(), 2);
    collector.acking.store(true, Ordering::SeqCst);
    // The shipper's batch timed out; it reconnects, resends from record 1
    // and the (deduplicating) collector acknowledges it.
    assert!(
        wait_for(Duration::from_secs(10), || a.gate().is_ok()),
        "{:?}",
        a.status()
    );
    assert_eq!(collector.stored.lock().unwrap().len(), 2);
}

/// A host that leaves the connect itself hanging (a collector socket whose
/// backlog is full: connect(2) waits for room) holds a session no longer
/// than `audit.timeout_ms` (500 ms here), connect included.
#[test]
fn a_collector_whose_backlog_is_full_ends_the_session_at_the_timeout() {
    use std::os::fd::AsFd;
    use transport::Addr;
    let dir = std::env::temp_dir().join(format!("ei-audit-backlog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("collector.sock");
    let listener = UnixListener::bind(&path).unwrap();
    // Room for one pending connection (a backlog of 0), taken here and
    // never accepted.
    nix::sys::socket::listen(
        &listener.as_fd(),
        nix::sys::socket::Backlog::new(0).unwrap(),
    )
    .unwrap();
    let _first =
        transport::connect_within(&Addr::Unix(path.clone()), Duration::from_secs(1)).unwrap();
    let (a, _) = trail(false, 16);
    let addr = Addr::Unix(path);
    let (tx, rx) = std::sync::mpsc::channel();
    let t = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(shipper::session(&a, &addr));
    });
    let (progressed, why) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the session still hangs in connect after 5 s");
    let took = t.elapsed();
    assert!(!progressed);
    assert!(
        why.starts_with("cannot connect: ") && why.contains("backlog stayed full for 500 ms"),
        "{why}"
    );
    assert!(took < Duration::from_millis(1500), "{took:?}");
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}
