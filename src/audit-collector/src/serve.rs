//! `enclavectl audit serve`: accepts emitters' streams (the guests over
//! vsock, the verifier), stores each record, acknowledges after COMMIT.
//!
//! Framing (the guest's shipper, `src/enclave-init`; the verifier's,
//! `verifier::audit`): the emitter sends
//! records as JSON lines; after the transaction holding a batch of lines
//! commits, the collector answers `ack <seq>\n` with the highest sequence
//! number of the batch that is now kept (stored, already stored, or in
//! quarantine). A batch is every complete line already received, at most
//! [`Limits::batch`], so one commit serves many records under load and a
//! single record is acknowledged as soon as it is committed. A line
//! `resume <stream>` is answered `at <next seq> <last hash>` from what is
//! stored (the verifier continuing its chain after a restart).
//!
//! Deadlines: a line must arrive whole within [`Limits::line`] of its first
//! byte (a trickling peer cannot hold a worker), an idle connection is
//! closed after [`Limits::idle`], and every ack write is bounded by
//! [`Limits::line`]. A line longer than [`Limits::max_line`] is kept in
//! quarantine (its first `max_line` bytes) and the connection closed: the
//! framing is lost. At most [`Limits::connections`] connections at once;
//! more are closed at accept. Each connection has its own database
//! session, so a slow stream never delays another.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use transport::{Listener, Stream};

use crate::ingest::{ingest, Keys, Outcome};

/// The collector's bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest line accepted, in bytes (without the newline).
    pub max_line: usize,
    /// From a line's first byte to its newline; also bounds each ack write.
    pub line: Duration,
    /// An idle connection is closed after this.
    pub idle: Duration,
    /// Connections served at once.
    pub connections: usize,
    /// Lines committed in one transaction at most.
    pub batch: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: audit_record::MAX_LINE,
            line: Duration::from_secs(10),
            idle: Duration::from_secs(300),
            connections: 64,
            batch: 512,
        }
    }
}

/// Counters a running collector keeps (logged, and read by the tests).
#[derive(Debug, Default)]
pub struct Counters {
    /// Records stored.
    pub stored: AtomicUsize,
    /// Lines kept in quarantine.
    pub quarantined: AtomicUsize,
    /// Connections refused because [`Limits::connections`] were open.
    pub refused: AtomicUsize,
}

/// The collector: its database, the verifier's key, its bounds.
pub struct Collector {
    /// libpq-style connection string.
    pub conninfo: String,
    /// The verifier's SPKI (DER), for its decision and retention records.
    pub verifier_spki: Option<Vec<u8>>,
    /// Bounds.
    pub limits: Limits,
    /// Counters.
    pub counters: Arc<Counters>,
}

impl Collector {
    /// Serves `listener` forever (returns only if accepting fails).
    pub fn serve(self: Arc<Self>, listener: Listener) -> std::io::Error {
        let open = Arc::new(AtomicUsize::new(0));
        loop {
            let stream = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return e,
            };
            if open.fetch_add(1, Ordering::SeqCst) >= self.limits.connections {
                open.fetch_sub(1, Ordering::SeqCst);
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "audit collector: connection refused, {} open",
                    self.limits.connections
                );
                continue;
            }
            let me = Arc::clone(&self);
            let open2 = Arc::clone(&open);
            let spawned = std::thread::Builder::new()
                .name("audit-conn".into())
                .spawn(move || {
                    if let Err(e) = me.connection(stream) {
                        log::info!("audit collector: connection closed: {e}");
                    }
                    open2.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                open.fetch_sub(1, Ordering::SeqCst);
                log::warn!("audit collector: no thread for a connection: {e}");
            }
        }
    }

    /// One emitter's connection, until it closes, idles out or breaks framing.
    pub fn connection(&self, mut stream: Stream) -> Result<(), String> {
        let mut db =
            Client::connect(&self.conninfo, NoTls).map_err(|e| format!("database: {e}"))?;
        let mut keys = Keys::new(self.verifier_spki.clone());
        stream
            .set_timeouts(self.limits.line)
            .map_err(|e| format!("socket: {e}"))?;
        let mut pending: Vec<u8> = Vec::new();
        let mut line_started: Option<Instant> = None;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let lines = take_lines(&mut pending, self.limits.batch);
            if !lines.is_empty() {
                self.commit_batch(&mut db, &mut keys, &lines, &mut stream)?;
                line_started = (!pending.is_empty()).then(Instant::now);
                continue;
            }
            if pending.len() > self.limits.max_line {
                let head = pending.get(..self.limits.max_line).unwrap_or(&pending);
                let mut tx = db.transaction().map_err(|e| format!("database: {e}"))?;
                tx.execute(
                    "INSERT INTO audit_quarantine (reason, raw) VALUES ($1, $2)",
                    &[
                        &format!("line over {} bytes", self.limits.max_line),
                        &String::from_utf8_lossy(head).as_ref(),
                    ],
                )
                .map_err(|e| format!("database: {e}"))?;
                tx.commit().map_err(|e| format!("database: {e}"))?;
                self.counters.quarantined.fetch_add(1, Ordering::Relaxed);
                return Err(format!("line over {} bytes", self.limits.max_line));
            }
            let budget = match line_started {
                Some(t) => self.limits.line.checked_sub(t.elapsed()),
                None => Some(self.limits.idle),
            };
            let Some(budget) = budget.filter(|b| !b.is_zero()) else {
                return Err("a line did not arrive whole before its deadline".to_owned());
            };
            stream
                .set_read_timeout(Some(budget))
                .map_err(|e| format!("socket: {e}"))?;
            let n = match stream.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(if line_started.is_some() {
                        "a line did not arrive whole before its deadline".to_owned()
                    } else {
                        "idle".to_owned()
                    });
                }
                Err(e) => return Err(format!("read: {e}")),
            };
            if line_started.is_none() {
                line_started = Some(Instant::now());
            }
            pending.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }

    fn commit_batch(
        &self,
        db: &mut Client,
        keys: &mut Keys,
        lines: &[Vec<u8>],
        stream: &mut Stream,
    ) -> Result<(), String> {
        let mut tx = db.transaction().map_err(|e| format!("database: {e}"))?;
        let mut outcomes = Vec::with_capacity(lines.len());
        for line in lines {
            if keys.has_no_hello() {
                match crate::ingest::hello(&mut tx, keys, line)
                    .map_err(|e| format!("database: {e}"))?
                {
                    Ok(ack) => {
                        tx.commit().map_err(|e| format!("database: {e}"))?;
                        tx = db.transaction().map_err(|e| format!("database: {e}"))?;
                        stream
                            .write_all(ack.as_bytes())
                            .map_err(|e| format!("ack: {e}"))?;
                        continue;
                    }
                    Err(e) => return Err(format!("hello refused: {e}")),
                }
            }
            if let Some(id) = line.strip_prefix(b"resume ") {
                let answer = resume(&mut tx, id).map_err(|e| format!("database: {e}"))?;
                stream
                    .write_all(answer.as_bytes())
                    .map_err(|e| format!("resume: {e}"))?;
                continue;
            }
            outcomes.push(ingest(&mut tx, keys, line).map_err(|e| format!("database: {e}"))?);
        }
        tx.commit().map_err(|e| format!("database: {e}"))?;
        let mut ack: Option<u64> = keys.last_ack;
        let mut any = false;
        for o in &outcomes {
            match o {
                Outcome::Stored { .. } => {
                    self.counters.stored.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::AlreadyStored { .. } => {}
                Outcome::Quarantined { reason, at } => {
                    self.counters.quarantined.fetch_add(1, Ordering::Relaxed);
                    log::warn!(
                        "audit collector: quarantined {}: {reason}",
                        at.as_ref()
                            .map(|(s, q)| format!("stream {s} seq {q}"))
                            .unwrap_or_else(|| "a line".to_owned())
                    );
                }
            }
            any |= o.ack_seq().is_some();
            ack = ack.max(o.ack_seq());
        }
        // After every batch that held records, the highest seq kept so far
        // on this connection (never lower than an ack already sent).
        if let Some(seq) = ack.filter(|_| any) {
            keys.last_ack = Some(seq);
            stream
                .write_all(format!("ack {seq}\n").as_bytes())
                .map_err(|e| format!("ack: {e}"))?;
        }
        Ok(())
    }
}

/// The answer to `resume <stream>`: `at <next seq> <hash of the last
/// stored record>\n` (`at 0 <zeros>` for a stream with nothing stored). The
/// verifier's shipper asks it to continue its chain after a restart.
fn resume(tx: &mut postgres::Transaction<'_>, id: &[u8]) -> Result<String, postgres::Error> {
    let id = String::from_utf8_lossy(id);
    let row = tx.query_opt(
        "SELECT seq, raw FROM audit_records WHERE stream = $1 ORDER BY seq DESC LIMIT 1",
        &[&id.as_ref()],
    )?;
    Ok(match row {
        Some(r) => {
            let seq: i64 = r.get(0);
            let raw: String = r.get(1);
            let hash = ring::digest::digest(&ring::digest::SHA256, raw.as_bytes());
            let mut prev = [0u8; 32];
            prev.copy_from_slice(hash.as_ref());
            audit_record::ship::resume_answer_line(
                u64::try_from(seq).unwrap_or(0).saturating_add(1),
                &prev,
            )
        }
        None => audit_record::ship::resume_answer_line(0, &audit_record::GENESIS_PREV),
    })
}

/// Removes up to `max` complete lines (without their newline) from the
/// front of `pending`.
fn take_lines(pending: &mut Vec<u8>, max: usize) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut start = 0;
    while lines.len() < max {
        let Some(rest) = pending.get(start..) else {
            break;
        };
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            break;
        };
        lines.push(rest.get(..nl).unwrap_or_default().to_vec());
        start += nl + 1;
    }
    pending.drain(..start);
    lines
}

#[cfg(test)]
mod tests {
    use super::take_lines;

    #[test]
    fn lines_are_taken_whole_and_bounded() {
        let mut p = b"a\nbb\nccc\ndd".to_vec();
        assert_eq!(take_lines(&mut p, 2), vec![b"a".to_vec(), b"bb".to_vec()]);
        assert_eq!(p, b"ccc\ndd");
        assert_eq!(take_lines(&mut p, 10), vec![b"ccc".to_vec()]);
        assert_eq!(p, b"dd");
        assert!(take_lines(&mut p, 10).is_empty());
    }
}
