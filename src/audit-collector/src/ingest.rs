//! What the collector does with one received line: verify it, then store
//! it in `audit_records`, or keep it in `audit_quarantine` with the reason.
//! Nothing received is dropped.
//!
//! The key a record is checked against: each connection opens with the
//! emitter's hello naming its key (`audit_record::ship`); the connection
//! carries that key's stream only, and the key is remembered in
//! `audit_streams`. Decision and retention records are accepted only from
//! the verifier's key given to the collector (`--verifier-key`).
//!
//! The collector only keeps what it cannot verify apart; it proves nothing
//! about attestation. `audit verify` proves each stream's key attested
//! through a verifier decision for the same SPKI digest and evidence.

use std::collections::HashSet;

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
    /// The stream and key of the connection's hello.
    hello: Option<(String, Vec<u8>)>,
    /// (stream, seq) received on this connection. An emitter resends only
    /// after reconnecting (from its first unacknowledged record), so the
    /// same record twice on one connection is a replay by whoever is in
    /// between. Bounded: cleared when [`SEEN_MAX`] entries are held.
    seen: HashSet<(String, u64)>,
    /// The last ack sent (acks never go down).
    pub last_ack: Option<u64>,
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
            hello: None,
            last_ack: None,
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

/// The key `record` must verify under, or why there is none: the key the
/// connection's hello named, for records of its stream only; decision and
/// retention records only under the verifier's own key.
fn key_for(keys: &Keys, record: &Record) -> Result<Vec<u8>, String> {
    let Some((stream, spki)) = &keys.hello else {
        return Err("no hello before the record".to_owned());
    };
    if *stream != record.stream {
        return Err("a record of another stream than the connection's hello".to_owned());
    }
    let is_verifier = keys
        .verifier
        .as_ref()
        .is_some_and(|(id, _)| *id == record.stream);
    if let Body::Decision(_) | Body::Retention(_) = &record.body {
        if !is_verifier {
            return Err(format!(
                "{} record from a stream that is not the verifier's key",
                record.kind().as_str()
            ));
        }
    }
    match &keys.verifier {
        Some((id, v)) if *id == record.stream => Ok(v.clone()),
        _ => Ok(spki.clone()),
    }
}

impl Keys {
    /// Whether the connection has not said hello yet.
    pub fn has_no_hello(&self) -> bool {
        self.hello.is_none()
    }
}

/// The connection's hello (`hello 1 <spki>`, [`audit_record::ship`]): the
/// key of the stream it carries, remembered in `audit_streams`; returns the
/// ack line to answer with (what of the stream is already kept, in records
/// or in quarantine), or why the hello is refused.
pub fn hello(
    tx: &mut Transaction<'_>,
    keys: &mut Keys,
    line: &[u8],
) -> Result<Result<String, String>, postgres::Error> {
    let parsed = std::str::from_utf8(line)
        .map_err(|_| "not UTF-8".to_owned())
        .and_then(|l| audit_record::ship::parse_hello(l).map_err(|e| e.to_string()));
    let spki = match parsed {
        Ok(k) => k,
        Err(e) => return Ok(Err(e)),
    };
    let stream = stream_id(&spki);
    tx.execute(
        "INSERT INTO audit_streams (stream, spki) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&stream, &crate::hex::encode(&spki)],
    )?;
    let kept: Option<i64> = tx
        .query_one(
            "SELECT greatest((SELECT max(seq) FROM audit_records WHERE stream = $1),
                             (SELECT max(seq) FROM audit_quarantine WHERE stream = $1))",
            &[&stream],
        )?
        .get(0);
    keys.hello = Some((stream, spki));
    keys.last_ack = kept.and_then(|k| u64::try_from(k).ok());
    Ok(Ok(audit_record::ship::ack_line(
        kept.and_then(|k| u64::try_from(k).ok()),
    )))
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
    let key = match key_for(keys, &record) {
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
    Ok(Outcome::Stored {
        stream: record.stream,
        seq: record.seq,
    })
}
