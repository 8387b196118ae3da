//! What the collector does with one received line: verify it, then store
//! it in `audit_records`, or keep it in `audit_quarantine` with the reason.
//! Nothing received is dropped.
//!
//! The key a record is checked against:
//! - the verifier's stream (decision and retention records): the verifier
//!   key given to the collector (`--verifier-key`);
//! - an enclave stream's seq 0 (its attestation record): the full SPKI the
//!   record carries, which must hash to the stream id and to the record's
//!   `enclave_spki_sha256`; it is then remembered in `audit_streams`;
//! - any later record of an enclave stream: the SPKI remembered for it.
//!
//! The collector only keeps what it cannot verify apart; it proves nothing
//! about attestation. `audit verify` proves each stream's key attested
//! through a verifier decision for the same SPKI digest and evidence.

use std::collections::{HashMap, HashSet};

use audit_record::{stream_id, Body, Record};
use postgres::Transaction;

/// The outcome of one line, after the transaction that holds it commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Verified and stored.
    Stored {
        /// Its stream.
        stream: String,
        /// Its sequence number.
        seq: u64,
    },
    /// The same record was already stored (a resend after a lost ack).
    AlreadyStored {
        /// Its stream.
        stream: String,
        /// Its sequence number.
        seq: u64,
    },
    /// Kept in quarantine.
    Quarantined {
        /// Its stream and sequence number, when the line parsed that far.
        at: Option<(String, u64)>,
        /// Why (no record content).
        reason: String,
    },
}

impl Outcome {
    /// The sequence number to acknowledge: every line that is now kept,
    /// stored or quarantined, is acknowledged so the emitter does not
    /// resend it forever; `audit verify` names what is in quarantine.
    pub fn ack_seq(&self) -> Option<u64> {
        match self {
            Outcome::Stored { seq, .. } | Outcome::AlreadyStored { seq, .. } => Some(*seq),
            Outcome::Quarantined { at, .. } => at.as_ref().map(|(_, s)| *s),
        }
    }
}

/// What one connection remembers: stream keys (in front of
/// `audit_streams`) and the records it already carried.
pub struct Keys {
    verifier: Option<(String, Vec<u8>)>,
    enclaves: HashMap<String, Vec<u8>>,
    /// (stream, seq) received on this connection. An emitter resends only
    /// after reconnecting (from its first unacknowledged record), so the
    /// same record twice on one connection is a replay by whoever is in
    /// between. Bounded: cleared when [`SEEN_MAX`] entries are held.
    seen: HashSet<(String, u64)>,
    /// [`crate::store::INSERT`], prepared on this connection's session.
    insert: Option<postgres::Statement>,
}

/// Replays are detected within this many records of one connection.
pub const SEEN_MAX: usize = 1 << 16;

impl Keys {
    /// With the verifier's SPKI (DER), when the collector has one.
    pub fn new(verifier_spki: Option<Vec<u8>>) -> Keys {
        Keys {
            verifier: verifier_spki.map(|k| (stream_id(&k), k)),
            enclaves: HashMap::new(),
            seen: HashSet::new(),
            insert: None,
        }
    }
}

fn quarantine(
    tx: &mut Transaction<'_>,
    at: Option<(String, u64)>,
    reason: String,
    raw: &str,
) -> Result<Outcome, postgres::Error> {
    let (stream, seq) = match &at {
        Some((s, q)) => (Some(s.as_str()), i64::try_from(*q).ok()),
        None => (None, None),
    };
    tx.execute(
        "INSERT INTO audit_quarantine (stream, seq, reason, raw) VALUES ($1, $2, $3, $4)",
        &[&stream, &seq, &reason, &raw],
    )?;
    Ok(Outcome::Quarantined { at, reason })
}

/// The key `record` must verify under, or why there is none. Learns an
/// enclave stream's key from its seq-0 attestation record.
fn key_for(
    tx: &mut Transaction<'_>,
    keys: &mut Keys,
    record: &Record,
) -> Result<Result<Vec<u8>, String>, postgres::Error> {
    if let Some((id, spki)) = &keys.verifier {
        if *id == record.stream {
            return Ok(Ok(spki.clone()));
        }
    }
    if let Body::Decision(_) | Body::Retention(_) = &record.body {
        return Ok(Err(format!(
            "{} record from a stream that is not the verifier's key",
            record.kind().as_str()
        )));
    }
    if record.seq == 0 {
        let Body::Attestation(att) = &record.body else {
            return Ok(Err("seq 0 is not an attestation record".to_owned()));
        };
        let Some(spki) = crate::hex::decode(&att.enclave_spki) else {
            return Ok(Err("enclave_spki is not hex".to_owned()));
        };
        if stream_id(&spki) != record.stream {
            return Ok(Err("enclave_spki does not hash to the stream id".to_owned()));
        }
        if crate::hex::sha256(&spki) != att.enclave_spki_sha256 {
            return Ok(Err(
                "enclave_spki does not match enclave_spki_sha256".to_owned()
            ));
        }
        return Ok(Ok(spki));
    }
    if let Some(k) = keys.enclaves.get(&record.stream) {
        return Ok(Ok(k.clone()));
    }
    let row = tx.query_opt(
        "SELECT spki FROM audit_streams WHERE stream = $1",
        &[&record.stream],
    )?;
    let Some(row) = row else {
        return Ok(Err(
            "key unknown for the stream (no verified seq 0)".to_owned()
        ));
    };
    let hex: String = row.get(0);
    match crate::hex::decode(&hex) {
        Some(k) => {
            keys.enclaves.insert(record.stream.clone(), k.clone());
            Ok(Ok(k))
        }
        None => Ok(Err("the stored key of the stream is not hex".to_owned())),
    }
}

/// Verifies and stores one line (without its newline) inside `tx`.
pub fn ingest(
    tx: &mut Transaction<'_>,
    keys: &mut Keys,
    line: &[u8],
) -> Result<Outcome, postgres::Error> {
    let raw = String::from_utf8_lossy(line);
    let record = match std::str::from_utf8(line)
        .map_err(|_| "not UTF-8".to_owned())
        .and_then(|s| Record::parse(s).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => return quarantine(tx, None, format!("unparseable: {e}"), &raw),
    };
    let at = Some((record.stream.clone(), record.seq));
    let Ok(seq) = i64::try_from(record.seq) else {
        return quarantine(tx, at, "seq out of range".to_owned(), &raw);
    };
    if keys.seen.len() >= SEEN_MAX {
        keys.seen.clear();
    }
    if !keys.seen.insert((record.stream.clone(), record.seq)) {
        return quarantine(
            tx,
            at,
            format!("seq {} replayed on one connection", record.seq),
            &raw,
        );
    }
    let key = match key_for(tx, keys, &record)? {
        Ok(k) => k,
        Err(reason) => return quarantine(tx, at, reason, &raw),
    };
    if let Err(e) = record.verify_sig(&key) {
        return quarantine(tx, at, format!("bad signature: {e}"), &raw);
    }
    let statement = match &keys.insert {
        Some(s) => s.clone(),
        None => {
            let s = tx.prepare(crate::store::INSERT)?;
            keys.insert = Some(s.clone());
            s
        }
    };
    if !crate::store::insert(tx, &statement, &record, &raw)? {
        let stored: Option<String> = tx
            .query_opt(
                "SELECT raw FROM audit_records WHERE stream = $1 AND seq = $2",
                &[&record.stream, &seq],
            )?
            .map(|r| r.get(0));
        return if stored.as_deref() == Some(raw.as_ref()) {
            Ok(Outcome::AlreadyStored {
                stream: record.stream,
                seq: record.seq,
            })
        } else {
            quarantine(
                tx,
                at,
                format!("duplicate seq {} with different content", record.seq),
                &raw,
            )
        };
    }
    if record.seq == 0 && keys.verifier.as_ref().is_none_or(|v| v.0 != record.stream) {
        tx.execute(
            "INSERT INTO audit_streams (stream, spki) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&record.stream, &crate::hex::encode(&key)],
        )?;
        keys.enclaves.insert(record.stream.clone(), key);
    }
    Ok(Outcome::Stored {
        stream: record.stream,
        seq: record.seq,
    })
}
