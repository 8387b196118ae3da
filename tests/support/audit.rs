//! TEST HARNESS, not the product: a minimal audit collector speaking
//! `audit_record::ship` over TCP on loopback. It stores each record line
//! in a Vec (a record resent after a reconnect must be byte for byte the
//! one it holds), then acknowledges the highest contiguous seq it holds.
//! The real collector is `enclavectl audit serve` (PostgreSQL); this one
//! lets guest-side tests and benchmarks run without it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audit_record::{Kind, Record};

/// The collector (see the module documentation).
pub struct Collector {
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// The lines stored, in seq order.
    pub stored: Arc<Mutex<Vec<String>>>,
    /// The key of the last hello.
    pub spki: Arc<Mutex<Option<Vec<u8>>>>,
    /// Off: it stores, and acknowledges nothing (not even the hello).
    pub acking: Arc<AtomicBool>,
}

impl Collector {
    /// Starts it; `acking` as [`Collector::acking`].
    pub fn start(acking: bool) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = Collector {
            port: listener.local_addr().unwrap().port(),
            stored: Arc::new(Mutex::new(Vec::new())),
            spki: Arc::new(Mutex::new(None)),
            acking: Arc::new(AtomicBool::new(acking)),
        };
        let (stored, spki, acking) = (
            Arc::clone(&c.stored),
            Arc::clone(&c.spki),
            Arc::clone(&c.acking),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (stored, spki, acking) =
                    (Arc::clone(&stored), Arc::clone(&spki), Arc::clone(&acking));
                std::thread::spawn(move || {
                    let mut w = conn.try_clone().unwrap();
                    let mut lines = BufReader::new(conn).lines();
                    let Some(Ok(hello)) = lines.next() else {
                        return;
                    };
                    *spki.lock().unwrap() = Some(audit_record::ship::parse_hello(&hello).unwrap());
                    let committed = |s: &Vec<String>| (s.len() as u64).checked_sub(1);
                    if acking.load(Ordering::SeqCst) {
                        let ack = committed(&stored.lock().unwrap());
                        let _ = w.write_all(audit_record::ship::ack_line(ack).as_bytes());
                    }
                    for line in lines {
                        let Ok(line) = line else { return };
                        let seq = usize::try_from(Record::parse(&line).unwrap().seq).unwrap();
                        let mut s = stored.lock().unwrap();
                        if seq == s.len() {
                            s.push(line);
                        } else {
                            assert!(seq < s.len(), "a gap before seq {seq}");
                            assert_eq!(s[seq], line, "seq {seq} resent with other bytes");
                        }
                        let ack = committed(&s);
                        drop(s);
                        if acking.load(Ordering::SeqCst) {
                            let _ = w.write_all(audit_record::ship::ack_line(ack).as_bytes());
                        }
                    }
                });
            }
        });
        c
    }

    /// The stored records, parsed.
    pub fn records(&self) -> Vec<(String, Record)> {
        self.stored
            .lock()
            .unwrap()
            .iter()
            .map(|l| (l.clone(), Record::parse(l).unwrap()))
            .collect()
    }

    /// Waits (at most 20 s) until `n` records of `kind` are stored.
    pub fn wait_for(&self, kind: Kind, n: usize) -> Vec<(String, Record)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.records();
            if r.iter().filter(|(_, r)| r.kind() == kind).count() >= n {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "never {n} {kind:?} records: {:?}",
                r.iter().map(|(_, r)| r.kind()).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
