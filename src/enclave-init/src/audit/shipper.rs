//! The one thread that ships records to the collector
//! ([`audit_record::ship`]: hello with the enclave key, record lines, acks
//! of what is stored).
//!
//! A session: connect, hello, read the collector's ack (together within
//! `audit.timeout_ms`), then batches of at most [`BATCH`] records, each
//! written and acknowledged within `audit.timeout_ms` (the whole exchange,
//! not each read). Any failure
//! ends the session; the next one starts after a backoff (doubling from
//! 100 ms to 5 s, reset by a session that got an ack) from the first
//! record not yet acknowledged. This thread decides nothing about
//! serving: callers read the queue and the clock ([`super::Audit::gate`]),
//! so stalling it only makes the queue grow.

use std::io::{self, BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::Duration;

use audit_record::ship;
use transport::{Addr, Stream};

use super::Audit;
use crate::lifecycle::clock::Mono;

/// Records sent before waiting for their acknowledgement.
pub const BATCH: usize = 64;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long an idle session waits for a record before looking again.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// Starts the shipper for `audit` towards `addr`.
pub fn spawn(audit: Arc<Audit>, addr: Addr) -> io::Result<()> {
    std::thread::Builder::new()
        .name("audit-ship".into())
        .spawn(move || run(&audit, &addr))?;
    Ok(())
}

fn run(audit: &Audit, addr: &Addr) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let (progressed, why) = session(audit, addr);
        audit.set_link(false, Some(why.clone()));
        crate::warn!(collector = addr.to_string().as_str(), reason = why.as_str(); "audit collector session ended");
        if progressed {
            backoff = FIRST_BACKOFF;
        }
        std::thread::sleep(backoff);
        backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
    }
}

/// One connection, until it fails: whether any ack came, and why it ended.
pub(super) fn session(audit: &Audit, addr: &Addr) -> (bool, String) {
    let timeout = audit.config().timeout;
    // One deadline for connect, hello and its ack: a host that leaves the
    // connect hanging (full backlog, dropped SYNs) holds this thread no
    // longer than one that never answers the hello.
    let deadline = Mono::now().after(timeout);
    let stream = match transport::connect_within(addr, timeout) {
        Ok(s) => s,
        Err(e) => return (false, format!("cannot connect: {e}")),
    };
    let mut conn = Conn(BufReader::new(stream));
    if let Err(e) = conn.write_all(ship::hello_line(&audit.spki()).as_bytes(), deadline) {
        return (false, format!("hello: {e}"));
    }
    match conn.read_ack(deadline) {
        Ok(Some(acked)) => {
            if let Err(e) = audit.acknowledged(acked) {
                return (false, e);
            }
        }
        Ok(None) => {}
        Err(e) => return (false, format!("hello: {e}")),
    }
    audit.set_link(true, None);
    let mut next = audit.first_unacked();
    loop {
        let batch = audit.next_batch(next, BATCH, IDLE_WAIT);
        let Some(&(last, _)) = batch.last() else {
            continue;
        };
        let mut out = String::new();
        for (_, line) in &batch {
            out.push_str(line);
            out.push('\n');
        }
        let deadline = Mono::now().after(timeout);
        if let Err(e) = conn.write_all(out.as_bytes(), deadline) {
            return (true, format!("sending records: {e}"));
        }
        next = last.saturating_add(1);
        loop {
            match conn.read_ack(deadline) {
                Ok(Some(acked)) => {
                    if let Err(e) = audit.acknowledged(acked) {
                        return (true, e);
                    }
                    if acked >= last {
                        break;
                    }
                }
                Ok(None) => {}
                Err(e) => return (true, format!("waiting for the ack of seq {last}: {e}")),
            }
        }
    }
}

/// The connection: reads through a buffer, writes straight to the stream,
/// every operation bounded by its deadline.
struct Conn(BufReader<Stream>);

impl Conn {
    fn left(deadline: Mono) -> io::Result<Duration> {
        let left = deadline.since(Mono::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "deadline (audit.timeout_ms) passed",
            ));
        }
        Ok(left)
    }

    fn write_all(&mut self, mut buf: &[u8], deadline: Mono) -> io::Result<()> {
        while !buf.is_empty() {
            let s = self.0.get_mut();
            s.set_timeouts(Self::left(deadline)?)?;
            match s.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = buf.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.0.get_mut().flush()
    }

    /// One `ack` line, at most [`ship::MAX_CONTROL_LINE`] bytes.
    fn read_ack(&mut self, deadline: Mono) -> io::Result<Option<u64>> {
        let mut line = Vec::new();
        loop {
            self.0
                .get_ref()
                .set_read_timeout(Some(Self::left(deadline)?))?;
            let buf = match self.0.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the collector closed the connection",
                ));
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            line.extend_from_slice(buf.get(..take).unwrap_or_default());
            self.0.consume(if done { take + 1 } else { take });
            if line.len() > ship::MAX_CONTROL_LINE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the collector's line is too long",
                ));
            }
            if done {
                let text = std::str::from_utf8(&line)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))?;
                return ship::parse_ack(text)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
            }
        }
    }
}
