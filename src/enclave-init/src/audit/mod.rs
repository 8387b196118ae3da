//! The audit trail, guest side (issue 19): records of each attestation,
//! secret release and withdrawal, processed call and lifecycle change,
//! signed by the attested enclave key and hash-chained
//! ([`audit_record`]), queued in memory and shipped to the collector by
//! one thread ([`shipper`]).
//!
//! - Emitting never blocks on the collector: [`Audit::emit`] signs and
//!   try-pushes under a lock that is never held across I/O.
//! - A record leaves the queue only when the collector acknowledges that
//!   it is stored ([`queue`]); after a reconnect the shipper sends again
//!   from the first unacknowledged one.
//! - A record that does not fit (queue full) is dropped and counted. It
//!   has consumed its sequence number, so the chain the collector holds
//!   shows the gap where it was: dropping is never silent in the trail.
//! - `audit.required`: while the queue is full, or its oldest record has
//!   waited longer than `audit.deadline_ms` for an acknowledgement, calls
//!   are refused ([`Audit::gate`], 503 with the reason; health says why).
//!   The decision is made by the caller from the queue and the clock; the
//!   shipper thread, which the host can stall, decides nothing.
//!
//! Nothing personal is in a record: a call is its keyed reference
//! ([`audit_record::CallRefKey`], keyed by the Vault pepper), its timing
//! and outcome; a secret is its path and version.

pub mod queue;
pub mod shipper;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use audit_record::{Body, Chain, Sign};

use crate::config::AuditConfig;
use crate::lifecycle::clock::{Mono, VerifierClock};
use queue::{Pending, Queue};

/// The guest's audit trail.
pub struct Audit {
    state: Mutex<State>,
    /// Signalled when a record is queued (the shipper waits on it).
    queued: Condvar,
    signer: Box<dyn Sign + Send + Sync>,
    cfg: AuditConfig,
    time: Arc<VerifierClock>,
}

struct State {
    chain: Chain,
    queue: Queue,
    /// Records dropped: the queue was full, or the record could not be made.
    dropped: u64,
    /// Records the collector acknowledged.
    acked: u64,
    /// The highest acknowledged seq, and when.
    last_ack: Option<(u64, Mono)>,
    /// Whether the shipper holds a connection that answered its hello.
    connected: bool,
    /// The shipper's last failure (no record content).
    last_error: Option<String>,
}

/// The trail's state as health and metrics show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// `audit.required`.
    pub required: bool,
    /// The stream id (the enclave key's).
    pub stream: String,
    /// Records waiting for an acknowledgement.
    pub depth: usize,
    /// The queue's bound.
    pub capacity: usize,
    /// Records dropped.
    pub dropped: u64,
    /// Records acknowledged.
    pub acked: u64,
    /// The next record's seq.
    pub next_seq: u64,
    /// The highest acknowledged seq.
    pub last_ack: Option<u64>,
    /// Milliseconds since that acknowledgement.
    pub last_ack_age_ms: Option<u64>,
    /// Whether the shipper is connected.
    pub connected: bool,
    /// The shipper's last failure.
    pub last_error: Option<String>,
    /// Why calls are refused now (`required` only).
    pub refusing: Option<String>,
}

impl Audit {
    /// A trail signed by `signer`, timed by `time`.
    pub fn new(
        cfg: AuditConfig,
        signer: Box<dyn Sign + Send + Sync>,
        time: Arc<VerifierClock>,
    ) -> Arc<Audit> {
        Arc::new(Audit {
            state: Mutex::new(State {
                chain: Chain::new(&signer.spki()),
                queue: Queue::new(cfg.queue),
                dropped: 0,
                acked: 0,
                last_ack: None,
                connected: false,
                last_error: None,
            }),
            queued: Condvar::new(),
            signer,
            cfg,
            time,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock cannot happen (panic = abort); take the data anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The signing key's SPKI (the shipper's hello).
    pub fn spki(&self) -> Vec<u8> {
        self.signer.spki()
    }

    /// Signs `body` as the next record and queues it; never waits for the
    /// collector. A record that does not fit is dropped and counted (its
    /// seq stays consumed: the gap shows in the trail).
    pub fn emit(&self, body: Body) {
        let kind = body.kind().as_str();
        let time = self.time.now_millis();
        let mut st = self.lock();
        let record = match st.chain.append(body, time, self.signer.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                st.dropped += 1;
                drop(st);
                crate::warn!(kind = kind, error = e.to_string().as_str(); "audit record not made");
                return;
            }
        };
        let pending = Pending {
            seq: record.seq,
            line: record.to_line(),
            queued: Mono::now(),
        };
        if st.queue.push(pending).is_err() {
            st.dropped += 1;
            let depth = st.queue.len();
            drop(st);
            crate::warn!(kind = kind, queue = depth; "audit queue full: record dropped");
            return;
        }
        drop(st);
        self.queued.notify_one();
    }

    /// Whether calls may be served as far as the trail is concerned:
    /// always when not `required`; otherwise not while the queue is full
    /// or its oldest record has waited past `audit.deadline_ms`.
    pub fn gate(&self) -> Result<(), String> {
        self.gate_at(Mono::now())
    }

    fn gate_at(&self, now: Mono) -> Result<(), String> {
        if !self.cfg.required {
            return Ok(());
        }
        let st = self.lock();
        refusal(&st, &self.cfg, now).map_or(Ok(()), Err)
    }

    /// The state for health and metrics.
    pub fn status(&self) -> Status {
        let now = Mono::now();
        let st = self.lock();
        Status {
            required: self.cfg.required,
            stream: st.chain.stream().to_owned(),
            depth: st.queue.len(),
            capacity: st.queue.capacity(),
            dropped: st.dropped,
            acked: st.acked,
            next_seq: st.chain.next_seq(),
            last_ack: st.last_ack.map(|(s, _)| s),
            last_ack_age_ms: st
                .last_ack
                .map(|(_, at)| u64::try_from(now.since(at).as_millis()).unwrap_or(u64::MAX)),
            connected: st.connected,
            last_error: st.last_error.clone(),
            refusing: if self.cfg.required {
                refusal(&st, &self.cfg, now)
            } else {
                None
            },
        }
    }

    /// The collector says every record up to `acked` is stored. Refused
    /// (`Err`) for a seq no record has had yet: a collector that claims
    /// to hold what was never made is not believed.
    pub(crate) fn acknowledged(&self, acked: u64) -> Result<usize, String> {
        let mut st = self.lock();
        if acked >= st.chain.next_seq() {
            return Err(format!(
                "the collector acknowledged seq {acked}, but only {} records exist",
                st.chain.next_seq()
            ));
        }
        let removed = st.queue.ack(acked);
        st.acked += removed as u64;
        if st.last_ack.is_none_or(|(s, _)| acked >= s) {
            st.last_ack = Some((acked, Mono::now()));
        }
        Ok(removed)
    }

    /// Up to `max` queued records from `from` on; waits (at most `wait`)
    /// for one when there are none.
    pub(crate) fn next_batch(
        &self,
        from: u64,
        max: usize,
        wait: std::time::Duration,
    ) -> Vec<(u64, String)> {
        let st = self.lock();
        let batch = st.queue.batch_from(from, max);
        if !batch.is_empty() {
            return batch;
        }
        let (st, _) = self
            .queued
            .wait_timeout(st, wait)
            .unwrap_or_else(|e| e.into_inner());
        st.queue.batch_from(from, max)
    }

    /// The seq of the oldest record waiting (where a new connection starts).
    pub(crate) fn first_unacked(&self) -> u64 {
        let st = self.lock();
        st.queue.oldest().map_or(st.chain.next_seq(), |p| p.seq)
    }

    /// The shipper's connection state, for health.
    pub(crate) fn set_link(&self, connected: bool, error: Option<String>) {
        let mut st = self.lock();
        st.connected = connected;
        if error.is_some() {
            st.last_error = error;
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AuditConfig {
        &self.cfg
    }
}

/// Why calls must stop now, if they must (for `required`).
fn refusal(st: &State, cfg: &AuditConfig, now: Mono) -> Option<String> {
    if st.queue.is_full() {
        return Some(format!(
            "the audit queue is full ({} records the collector has not acknowledged)",
            st.queue.len()
        ));
    }
    let oldest = st.queue.oldest()?;
    let waited = now.since(oldest.queued);
    (waited > cfg.deadline).then(|| {
        format!(
            "the audit collector has not acknowledged record {} for {} ms (audit.deadline_ms = {})",
            oldest.seq,
            waited.as_millis(),
            cfg.deadline.as_millis()
        )
    })
}

/// The trail's state as JSON, for health: counts and the stream id only.
pub fn status_json(s: &Status) -> serde_json::Value {
    serde_json::json!({
        "required": s.required,
        "stream": s.stream,
        "queue_depth": s.depth,
        "queue_capacity": s.capacity,
        "dropped": s.dropped,
        "acknowledged": s.acked,
        "next_seq": s.next_seq,
        "last_ack_seq": s.last_ack,
        "last_ack_age_ms": s.last_ack_age_ms,
        "collector_connected": s.connected,
        "last_error": s.last_error,
        "serving_calls": s.refusing.is_none(),
        "refusing_because": s.refusing,
    })
}

#[cfg(test)]
mod tests;
