//! The verifier's audit records (issue 19): one `decision` record per
//! appraisal, in the verifier's own chain (its stream is its token key),
//! signed with the token key, shipped to the collector (`enclavectl audit
//! serve`).
//!
//! Appraisal never waits for it: a decision is handed to a bounded queue
//! with `try_send`; when the queue is full it is dropped and counted
//! (`enclave_verifier_audit_dropped_total`), before it is signed, so a
//! dropped decision leaves no gap in the chain (an enclave whose decision
//! was dropped shows in `audit verify` as an attestation not proven). One
//! shipper thread signs, sends and waits for the collector's `ack <seq>`;
//! unacknowledged records are resent after a reconnect. Every wait on the
//! collector (connect, resume answer, ack) has a deadline.
//!
//! Resuming the chain: on each connection the shipper says hello (its key,
//! `audit_record::ship`), reads the collector's ack of what it keeps, then
//! asks `resume <stream>` and the collector answers `at <next_seq> <prev hash>` from what
//! it stored, so a restarted verifier continues its chain. The host could
//! lie here; the result is a fork or a gap in the verifier's chain, which
//! `audit verify` names (it cannot make a record pass as another).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use audit_record::{Alg, Body, Chain, DecisionBody, KeyPairSigner, Record};
use ring::signature::{EcdsaKeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};

/// Counters shown in the verifier's metrics.
#[derive(Debug, Default)]
pub struct AuditCounters {
    /// Decisions dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Records the collector acknowledged.
    pub acked: AtomicU64,
    /// Decisions that could not become a record (a field outside the
    /// format's rules, a signing failure).
    pub unrecordable: AtomicU64,
}

/// The queue's end the service holds.
pub struct Shipper {
    tx: SyncSender<(DecisionBody, u64)>,
    counters: Arc<AuditCounters>,
}

/// How the shipper waits on the collector.
#[derive(Debug, Clone)]
pub struct ShipperLimits {
    /// Decisions waiting in the queue, at most.
    pub queue: usize,
    /// Each whole exchange with the collector (connect, resume, one ack).
    pub deadline: Duration,
    /// Pause between failed connections.
    pub backoff: Duration,
}

impl Default for ShipperLimits {
    fn default() -> ShipperLimits {
        ShipperLimits {
            queue: 1024,
            deadline: Duration::from_secs(5),
            backoff: Duration::from_millis(500),
        }
    }
}

impl Shipper {
    /// Starts the shipper thread for `collector`, signing with the PKCS#8
    /// P-384 token key.
    pub fn start(
        collector: transport::Addr,
        token_key_pkcs8: &[u8],
        limits: ShipperLimits,
        counters: Arc<AuditCounters>,
    ) -> Result<Shipper, String> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P384_SHA384_FIXED_SIGNING,
            token_key_pkcs8,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|_| "audit: the token key is not a PKCS#8 P-384 key".to_owned())?;
        let (tx, rx) = sync_channel(limits.queue);
        let c = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("audit-shipper".into())
            .spawn(move || ship_loop(&collector, &pair, &limits, &rx, &c))
            .map_err(|e| format!("audit: shipper thread: {e}"))?;
        Ok(Shipper { tx, counters })
    }

    /// Queues a decision at `time_ms`; never blocks.
    pub fn record(&self, body: DecisionBody, time_ms: u64) {
        match self.tx.try_send((body, time_ms)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

struct Conn {
    reader: BufReader<transport::Stream>,
}

fn read_line_by(conn: &mut Conn, deadline: Instant) -> Result<String, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("deadline".into());
    }
    conn.reader
        .get_ref()
        .set_read_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    // A line is at most a few dozen bytes; a peer sending more is cut.
    let n = (&mut conn.reader)
        .take(256)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if n == 0 || !line.ends_with('\n') {
        return Err("the collector closed or sent no line".into());
    }
    Ok(line.trim_end().to_owned())
}

/// A connection after the hello and the resume answer: the connection,
/// what the collector keeps (its ack), the next seq and the last hash.
type Resumed = (Conn, Option<u64>, u64, [u8; 32]);

fn connect(
    addr: &transport::Addr,
    spki: &[u8],
    stream_id: &str,
    limits: &ShipperLimits,
) -> Result<Resumed, String> {
    let deadline = Instant::now() + limits.deadline;
    let stream = transport::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_timeouts(limits.deadline)
        .map_err(|e| e.to_string())?;
    let mut conn = Conn {
        reader: BufReader::new(stream),
    };
    // The shipping protocol (`audit_record::ship`): the hello names the
    // key; the collector answers what of the stream it already keeps.
    conn.reader
        .get_mut()
        .write_all(
            format!(
                "{}resume {stream_id}\n",
                audit_record::ship::hello_line(spki)
            )
            .as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    let kept = audit_record::ship::parse_ack(&read_line_by(&mut conn, deadline)?)
        .map_err(|e| e.to_string())?;
    let (seq, prev) = audit_record::ship::parse_resume_answer(&read_line_by(&mut conn, deadline)?)
        .map_err(|e| e.to_string())?;
    Ok((conn, kept, seq, prev))
}

/// Sends `pending` and waits for the ack of its last record.
fn flush(
    conn: &mut Conn,
    pending: &mut VecDeque<Record>,
    limits: &ShipperLimits,
    counters: &AuditCounters,
) -> Result<(), String> {
    let Some(last) = pending.back().map(|r| r.seq) else {
        return Ok(());
    };
    let mut text = String::new();
    for r in pending.iter() {
        text.push_str(&r.to_line());
        text.push('\n');
    }
    conn.reader
        .get_mut()
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + limits.deadline;
    loop {
        let line = read_line_by(conn, deadline)?;
        let Some(acked) = audit_record::ship::parse_ack(&line).map_err(|e| e.to_string())? else {
            continue;
        };
        while pending.front().is_some_and(|r| r.seq <= acked) {
            pending.pop_front();
            counters.acked.fetch_add(1, Ordering::Relaxed);
        }
        if acked >= last {
            return Ok(());
        }
    }
}

fn ship_loop(
    addr: &transport::Addr,
    pair: &EcdsaKeyPair,
    limits: &ShipperLimits,
    rx: &Receiver<(DecisionBody, u64)>,
    counters: &AuditCounters,
) {
    let signer = KeyPairSigner {
        pair,
        alg: Alg::ES384,
    };
    let spki = audit_record::Sign::spki(&signer);
    let stream_id = audit_record::stream_id(&spki);
    let mut chain: Option<Chain> = None;
    let mut pending: VecDeque<Record> = VecDeque::new();
    let mut conn: Option<Conn> = None;
    loop {
        if conn.is_none() {
            match connect(addr, &spki, &stream_id, limits) {
                Ok((c, kept, seq, prev)) => {
                    if chain.is_none() {
                        chain = Some(Chain::resume(&spki, seq, prev));
                    }
                    // What the collector already keeps is not sent again.
                    while pending
                        .front()
                        .is_some_and(|r| kept.is_some_and(|k| r.seq <= k))
                    {
                        pending.pop_front();
                        counters.acked.fetch_add(1, Ordering::Relaxed);
                    }
                    conn = Some(c);
                }
                Err(e) => {
                    log::warn!(error = e.as_str(); "audit: collector unreachable");
                    std::thread::sleep(limits.backoff);
                    continue;
                }
            }
        }
        // Take new decisions only while the backlog is small: a collector
        // that does not ack fills the queue, and then decisions are
        // dropped (counted) before they are signed.
        if pending.len() < 64 {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok((body, time)) => {
                    if let Some(ch) = chain.as_mut() {
                        match ch.append(Body::Decision(body), time, &signer) {
                            Ok(r) => pending.push_back(r),
                            Err(e) => {
                                counters.unrecordable.fetch_add(1, Ordering::Relaxed);
                                log::warn!(error = e.to_string().as_str(); "audit: decision not recordable");
                            }
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if let Some(c) = conn.as_mut() {
            if let Err(e) = flush(c, &mut pending, limits, counters) {
                log::warn!(error = e.as_str(); "audit: shipping to the collector failed; reconnecting");
                conn = None;
                std::thread::sleep(limits.backoff);
            }
        }
    }
}
