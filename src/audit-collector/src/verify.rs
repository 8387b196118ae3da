//! `enclavectl audit verify`: everything the database holds, checked from
//! the signed lines alone (the other columns are only indexes the host could
//! edit), against two pinned keys: the verifier's (its decision records)
//! and the retention job's (its retention records).
//!
//! Per stream: each stored line parses, its columns agree with it, its
//! signature verifies with the stream's key; sequence numbers run without
//! gaps from 0 (or from the retention point a signed retention record
//! names) with no duplicates; each record's `prev` is the previous record's
//! hash; time and arrival order follow seq; every quarantined line is named.
//! An enclave stream's key is proven by its attestation record and a
//! verifier decision that accepted the same SPKI digest and evidence digest
//! under the same decision id. Every problem is a finding naming the stream
//! and seq; any finding makes the run fail.

use std::collections::{BTreeMap, HashMap};

use audit_record::{stream_id, Body, Record, Verdict, GENESIS_PREV};
use postgres::Client;
use serde_json::{json, Value};

use crate::hex;

/// One stored row, as read back.
#[derive(Debug, Clone)]
pub struct Row {
    /// Insertion order (the arrival order at the collector).
    pub id: i64,
    /// Columns.
    pub stream: String,
    /// Column.
    pub seq: i64,
    /// Column.
    pub prev: String,
    /// Column.
    pub hash: String,
    /// Column.
    pub kind: String,
    /// Column, Unix ms.
    pub time_ms: i64,
    /// Column.
    pub body: Value,
    /// Column.
    pub sig: String,
    /// The line as received: the only part that is signed.
    pub raw: String,
}

/// One quarantined line.
#[derive(Debug, Clone)]
pub struct QRow {
    /// Its stream, when it parsed that far.
    pub stream: Option<String>,
    /// Its seq, when it parsed that far.
    pub seq: Option<i64>,
    /// Why.
    pub reason: String,
}

/// Everything verify reads.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `audit_records`.
    pub rows: Vec<Row>,
    /// `audit_quarantine`.
    pub quarantine: Vec<QRow>,
    /// `audit_streams`: stream → SPKI hex (unsigned: checked against the stream id).
    pub keys: HashMap<String, String>,
}

/// Reads the whole store.
pub fn load(db: &mut Client) -> Result<Snapshot, postgres::Error> {
    let rows = db
        .query(
            "SELECT id, stream, seq, prev, hash, kind,
                    round(extract(epoch FROM time) * 1000)::bigint, body::text, sig, raw
             FROM audit_records ORDER BY stream, seq, id",
            &[],
        )?
        .into_iter()
        .map(|r| Row {
            id: r.get(0),
            stream: r.get(1),
            seq: r.get(2),
            prev: r.get(3),
            hash: r.get(4),
            kind: r.get(5),
            time_ms: r.get(6),
            body: serde_json::from_str(r.get::<_, &str>(7)).unwrap_or(Value::Null),
            sig: r.get(8),
            raw: r.get(9),
        })
        .collect();
    let quarantine = db
        .query(
            "SELECT stream, seq, reason FROM audit_quarantine ORDER BY id",
            &[],
        )?
        .into_iter()
        .map(|r| QRow {
            stream: r.get(0),
            seq: r.get(1),
            reason: r.get(2),
        })
        .collect();
    let keys = db
        .query("SELECT stream, spki FROM audit_streams", &[])?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(Snapshot {
        rows,
        quarantine,
        keys,
    })
}

/// The keys an auditor pins.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The verifier's token key (SPKI DER): decision records.
    pub verifier_spki: Vec<u8>,
    /// The retention job's key (SPKI DER): retention records.
    pub retention_spki: Option<Vec<u8>>,
}

/// Which emitter a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An enclave instance (the guest).
    Enclave,
    /// The verifier's decisions.
    Verifier,
    /// The retention job.
    Retention,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Enclave => "enclave",
            Role::Verifier => "verifier",
            Role::Retention => "retention",
        }
    }
}

/// One attestation of an enclave stream.
#[derive(Debug, Clone)]
pub struct Attested {
    /// Its record's seq.
    pub seq: u64,
    /// Its record's time (Unix ms).
    pub time: u64,
    /// Evidence digest.
    pub evidence_sha256: String,
    /// Measurement.
    pub measurement: String,
    /// TEE.
    pub tee: String,
    /// The verifier's decision id.
    pub decision_id: String,
    /// The verifier decision record that accepted it (its seq), if any.
    pub decision_seq: Option<u64>,
}

/// What verify found for one stream.
#[derive(Debug, Clone)]
pub struct StreamReport {
    /// Stream id.
    pub stream: String,
    /// Emitter.
    pub role: Role,
    /// SHA-256 of its key's SPKI, when known.
    pub key_sha256: Option<String>,
    /// Records stored (rows).
    pub records: usize,
    /// Lowest and highest seq stored.
    pub seqs: Option<(u64, u64)>,
    /// The retention point: seq ≤ this were deleted by retention record
    /// (its seq), before a time.
    pub retained: Option<(u64, u64, u64)>,
    /// Attestations.
    pub attestations: Vec<Attested>,
    /// Calls: count, first and last time (Unix ms).
    pub calls: (u64, Option<u64>, Option<u64>),
    /// Secrets released and withdrawn.
    pub secrets: (u64, u64),
    /// Decisions (verifier stream): accepted, denied.
    pub decisions: (u64, u64),
    /// Every problem, named.
    pub findings: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per stream, ordered by role then id.
    pub streams: Vec<StreamReport>,
    /// Quarantined lines that name no stream.
    pub unattributed: Vec<String>,
}

impl Report {
    /// Every finding, each prefixed with its stream.
    pub fn findings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .streams
            .iter()
            .flat_map(|s| {
                s.findings
                    .iter()
                    .map(move |f| format!("stream {}: {f}", s.stream))
            })
            .collect();
        out.extend(self.unattributed.iter().cloned());
        out
    }

    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.unattributed.is_empty() && self.streams.iter().all(|s| s.findings.is_empty())
    }
}

/// A row's signed line, parsed and checked against its columns and key.
struct Checked {
    row: Row,
    record: Option<Record>,
    sig_ok: bool,
}

fn seq_range(a: u64, b: u64) -> String {
    if a == b {
        format!("seq {a}")
    } else {
        format!("seq {a}-{b}")
    }
}

/// Parses each row and names every way it disagrees with itself or its key.
fn check_row(row: &Row, key: Option<&[u8]>, findings: &mut Vec<String>) -> Checked {
    let record = match Record::parse(&row.raw) {
        Ok(r) => r,
        Err(e) => {
            findings.push(format!(
                "seq {} edited (the stored line does not parse: {e})",
                row.seq
            ));
            return Checked {
                row: row.clone(),
                record: None,
                sig_ok: false,
            };
        }
    };
    let mut differs = Vec::new();
    if record.stream != row.stream {
        differs.push("stream");
    }
    if i64::try_from(record.seq).ok() != Some(row.seq) {
        differs.push("seq");
    }
    if hex::encode(&record.prev) != row.prev {
        differs.push("prev");
    }
    if hex::sha256(row.raw.as_bytes()) != row.hash {
        differs.push("hash");
    }
    if record.kind().as_str() != row.kind {
        differs.push("kind");
    }
    if i64::try_from(record.time).ok() != Some(row.time_ms) {
        differs.push("time");
    }
    if serde_json::to_value(&record.body).ok().as_ref() != Some(&row.body) {
        differs.push("body");
    }
    if hex::encode(&record.sig) != row.sig {
        differs.push("sig");
    }
    if !differs.is_empty() {
        findings.push(format!(
            "seq {} edited (columns {} disagree with the signed line)",
            row.seq,
            differs.join(", ")
        ));
    }
    let sig_ok = match key {
        Some(k) => match record.verify_sig(k) {
            Ok(()) => true,
            Err(e) => {
                findings.push(format!(
                    "seq {} forged or edited (signature does not verify: {e})",
                    record.seq
                ));
                false
            }
        },
        None => false,
    };
    Checked {
        row: row.clone(),
        record: Some(record),
        sig_ok,
    }
}

/// The retention point of each stream: (through_seq, last_hash, retention
/// record seq, before_time), from verified retention records.
type RetentionPoints = HashMap<String, (u64, String, u64, u64)>;

/// Checks a snapshot against the pinned keys.
pub fn check(snap: &Snapshot, trust: &Trust) -> Report {
    let verifier_id = stream_id(&trust.verifier_spki);
    let retention_id = trust.retention_spki.as_deref().map(stream_id);
    let mut by_stream: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in &snap.rows {
        by_stream.entry(r.stream.as_str()).or_default().push(r);
    }
    for q in &snap.quarantine {
        if let Some(s) = &q.stream {
            by_stream.entry(s.as_str()).or_default();
        }
    }
    by_stream.entry(verifier_id.as_str()).or_default();

    // The retention and verifier streams first: the others need them.
    let mut order: Vec<&str> = Vec::new();
    if let Some(r) = &retention_id {
        if by_stream.contains_key(r.as_str()) {
            order.push(r.as_str());
        }
    }
    order.push(verifier_id.as_str());
    order.extend(
        by_stream
            .keys()
            .copied()
            .filter(|s| *s != verifier_id && Some(*s) != retention_id.as_deref()),
    );

    let mut points: RetentionPoints = HashMap::new();
    let mut decisions: HashMap<String, (u64, audit_record::DecisionBody)> = HashMap::new();
    let mut streams = Vec::new();
    for stream in order {
        let rows = by_stream.get(stream).cloned().unwrap_or_default();
        let role = if stream == verifier_id {
            Role::Verifier
        } else if Some(stream) == retention_id.as_deref() {
            Role::Retention
        } else {
            Role::Enclave
        };
        let report = check_stream(
            stream,
            role,
            &rows,
            snap,
            trust,
            &mut points,
            &mut decisions,
        );
        streams.push(report);
    }
    let unattributed = snap
        .quarantine
        .iter()
        .filter(|q| q.stream.is_none())
        .map(|q| format!("a quarantined line names no stream: {}", q.reason))
        .collect();
    Report {
        streams,
        unattributed,
    }
}

/// An enclave stream's key: the one its emitter's hello named, as the
/// collector kept it. The host could edit that table, but not find another
/// key with the same stream id (the first 128 bits of the key's SHA-256),
/// and the attestation record signed with it names its digest.
fn enclave_key(stream: &str, snap: &Snapshot) -> Option<Vec<u8>> {
    snap.keys
        .get(stream)
        .and_then(|k| hex::decode(k))
        .filter(|k| stream_id(k) == stream)
}

fn check_stream(
    stream: &str,
    role: Role,
    rows: &[&Row],
    snap: &Snapshot,
    trust: &Trust,
    points: &mut RetentionPoints,
    decisions: &mut HashMap<String, (u64, audit_record::DecisionBody)>,
) -> StreamReport {
    let mut findings = Vec::new();
    let key = match role {
        Role::Verifier => Some(trust.verifier_spki.clone()),
        Role::Retention => trust.retention_spki.clone(),
        Role::Enclave => enclave_key(stream, snap),
    };
    if key.is_none() && !rows.is_empty() {
        findings.push(format!(
            "key unknown (no hello named it): {} records unverifiable",
            rows.len()
        ));
    }
    let checked: Vec<Checked> = rows
        .iter()
        .map(|r| check_row(r, key.as_deref(), &mut findings))
        .collect();

    // One row per seq (the first to arrive); more are duplicates.
    let mut by_seq: BTreeMap<i64, Vec<&Checked>> = BTreeMap::new();
    for c in &checked {
        by_seq.entry(c.row.seq).or_default().push(c);
    }
    for (seq, cs) in &by_seq {
        if cs.len() > 1 {
            findings.push(format!("seq {seq} duplicated ({} rows)", cs.len()));
        }
    }

    let point = points.get(stream).cloned();
    let start = point.as_ref().map_or(0, |p| p.0.saturating_add(1));
    let mut expected = start;
    let mut last: Option<&Checked> = None;
    for (seq, cs) in &by_seq {
        let Ok(seq) = u64::try_from(*seq) else {
            continue;
        };
        let Some(c) = cs.first().copied() else {
            continue;
        };
        if seq < start {
            continue;
        }
        if seq > expected {
            findings.push(format!("{} missing", seq_range(expected, seq - 1)));
        }
        // The chain: prev is the previous record's hash (the genesis
        // zeros, or the retention point's stated hash).
        if let Some(rec) = &c.record {
            let want_prev: Option<String> = if seq == start {
                Some(match &point {
                    Some(p) => p.1.clone(),
                    None => hex::encode(&GENESIS_PREV),
                })
            } else if seq == expected {
                last.map(|l| hex::sha256(l.row.raw.as_bytes()))
            } else {
                None
            };
            if let Some(want) = want_prev {
                if hex::encode(&rec.prev) != want {
                    if seq == start {
                        findings.push(format!(
                            "seq {seq} does not chain to the stream's start (prev mismatch)"
                        ));
                    } else {
                        findings.push(format!(
                            "seq {} edited (hash mismatch: seq {seq}'s prev is not its hash)",
                            seq - 1
                        ));
                    }
                }
            }
            if let (Some(l), true) = (last.and_then(|l| l.record.as_ref()), seq == expected) {
                if rec.time < l.time {
                    findings.push(format!(
                        "seq {seq} reordered (its time is before seq {}'s)",
                        seq - 1
                    ));
                }
            }
        }
        if let Some(l) = last {
            if c.row.id < l.row.id {
                findings.push(format!(
                    "seq {seq} reordered in transit (stored before seq {})",
                    l.row.seq
                ));
            }
        }
        expected = seq.saturating_add(1);
        last = Some(c);
    }
    for q in snap
        .quarantine
        .iter()
        .filter(|q| q.stream.as_deref() == Some(stream))
    {
        let at = q
            .seq
            .map(|s| format!("seq {s}"))
            .unwrap_or_else(|| "a record".to_owned());
        findings.push(format!("{at} quarantined: {}", q.reason));
    }

    let mut report = StreamReport {
        stream: stream.to_owned(),
        role,
        key_sha256: key.as_deref().map(hex::sha256),
        records: rows.len(),
        seqs: by_seq
            .keys()
            .next()
            .zip(by_seq.keys().next_back())
            .and_then(|(a, b)| Some((u64::try_from(*a).ok()?, u64::try_from(*b).ok()?))),
        retained: point.as_ref().map(|p| (p.0, p.2, p.3)),
        attestations: Vec::new(),
        calls: (0, None, None),
        secrets: (0, 0),
        decisions: (0, 0),
        findings: Vec::new(),
    };
    for c in checked.iter().filter(|c| c.sig_ok) {
        let Some(rec) = &c.record else { continue };
        match &rec.body {
            Body::Decision(d) => {
                match d.verdict {
                    Verdict::Accepted => report.decisions.0 += 1,
                    Verdict::Denied => report.decisions.1 += 1,
                }
                if role == Role::Verifier {
                    decisions.insert(d.request_id.clone(), (rec.seq, d.clone()));
                }
            }
            Body::Retention(r) if role == Role::Retention => {
                let entry = points.entry(r.stream.clone()).or_insert((
                    r.through_seq,
                    r.last_hash.clone(),
                    rec.seq,
                    r.before_time,
                ));
                if r.through_seq >= entry.0 {
                    *entry = (r.through_seq, r.last_hash.clone(), rec.seq, r.before_time);
                }
            }
            Body::Attestation(a) if role == Role::Enclave => {
                if report.key_sha256.as_deref() != Some(a.enclave_spki_sha256.as_str()) {
                    findings.push(format!(
                        "seq {} attestation names another key than the stream's",
                        rec.seq
                    ));
                }
                let proof = decisions.get(&a.decision_id).filter(|(_, d)| {
                    d.verdict == Verdict::Accepted
                        && d.enclave_spki_sha256.as_deref() == Some(a.enclave_spki_sha256.as_str())
                        && d.evidence_sha256 == a.evidence_sha256
                });
                if proof.is_none() {
                    findings.push(format!(
                        "seq {} attestation not proven: no verifier decision {} accepting this key and evidence",
                        rec.seq, a.decision_id
                    ));
                }
                report.attestations.push(Attested {
                    seq: rec.seq,
                    time: rec.time,
                    evidence_sha256: a.evidence_sha256.clone(),
                    measurement: a.measurement.clone(),
                    tee: a.tee.clone(),
                    decision_id: a.decision_id.clone(),
                    decision_seq: proof.map(|p| p.0),
                });
            }
            Body::Call(_) => {
                report.calls.0 += 1;
                report.calls.1 = Some(report.calls.1.map_or(rec.time, |t| t.min(rec.time)));
                report.calls.2 = Some(report.calls.2.map_or(rec.time, |t| t.max(rec.time)));
            }
            Body::SecretRelease(_) => report.secrets.0 += 1,
            Body::SecretWithdrawal(_) => report.secrets.1 += 1,
            _ => {}
        }
    }
    if role == Role::Enclave
        && report.attestations.is_empty()
        && point.is_none()
        && !rows.is_empty()
    {
        findings.push("no attestation record: the stream's key is not attested".to_owned());
    }
    report.findings = findings;
    report
}

/// Unix ms as RFC 3339 UTC (days-from-civil, Howard Hinnant's algorithm).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

fn opt_time(t: Option<u64>) -> String {
    t.map(rfc3339).unwrap_or_else(|| "-".to_owned())
}

/// The report as text, one block per stream, findings last.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for s in &report.streams {
        out.push_str(&format!(
            "{} stream {} (key sha256 {})\n",
            s.role.as_str(),
            s.stream,
            s.key_sha256.as_deref().unwrap_or("unknown")
        ));
        if let Some((through, rseq, before)) = s.retained {
            out.push_str(&format!(
                "  starts after the retention point: seq 0-{through} deleted (retention record seq {rseq}, older than {})\n",
                rfc3339(before)
            ));
        }
        match s.seqs {
            Some((a, b)) => out.push_str(&format!("  records: {} (seq {a}-{b})\n", s.records)),
            None => out.push_str("  records: 0\n"),
        }
        for a in &s.attestations {
            out.push_str(&format!(
                "  attested {} at seq {}: evidence {} measurement {} tee {} decision {} ({})\n",
                rfc3339(a.time),
                a.seq,
                a.evidence_sha256,
                a.measurement,
                a.tee,
                a.decision_id,
                a.decision_seq
                    .map(|q| format!("proven by verifier decision seq {q}"))
                    .unwrap_or_else(|| "NOT proven".to_owned())
            ));
        }
        if s.role == Role::Enclave {
            out.push_str(&format!(
                "  calls: {} (first {}, last {}); secrets released {}, withdrawn {}\n",
                s.calls.0,
                opt_time(s.calls.1),
                opt_time(s.calls.2),
                s.secrets.0,
                s.secrets.1
            ));
        }
        if s.role == Role::Verifier {
            out.push_str(&format!(
                "  decisions: {} accepted, {} denied\n",
                s.decisions.0, s.decisions.1
            ));
        }
        for f in &s.findings {
            out.push_str(&format!("  FINDING {f}\n"));
        }
    }
    for f in &report.unattributed {
        out.push_str(&format!("FINDING {f}\n"));
    }
    let n = report.findings().len();
    out.push_str(&if n == 0 {
        format!("audit verify: OK, {} streams\n", report.streams.len())
    } else {
        format!("audit verify: {n} findings\n")
    });
    out
}

/// The report as JSON (the export's summary).
pub fn to_json(report: &Report) -> Value {
    let streams: Vec<Value> = report
        .streams
        .iter()
        .map(|s| {
            json!({
                "stream": s.stream,
                "role": s.role.as_str(),
                "key_sha256": s.key_sha256,
                "records": s.records,
                "first_seq": s.seqs.map(|x| x.0),
                "last_seq": s.seqs.map(|x| x.1),
                "retention_point": s.retained.map(|(through, rseq, before)| json!({
                    "through_seq": through, "retention_seq": rseq, "before": rfc3339(before)})),
                "attestations": s.attestations.iter().map(|a| json!({
                    "seq": a.seq, "time": rfc3339(a.time), "evidence_sha256": a.evidence_sha256,
                    "measurement": a.measurement, "tee": a.tee, "decision_id": a.decision_id,
                    "verifier_decision_seq": a.decision_seq})).collect::<Vec<_>>(),
                "calls": {"count": s.calls.0, "first": s.calls.1.map(rfc3339), "last": s.calls.2.map(rfc3339)},
                "secrets": {"released": s.secrets.0, "withdrawn": s.secrets.1},
                "decisions": {"accepted": s.decisions.0, "denied": s.decisions.1},
                "findings": s.findings,
            })
        })
        .collect();
    json!({"ok": report.ok(), "streams": streams, "unattributed": report.unattributed})
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_of_known_instants() {
        // `date -u -d @0`, `@951782400` (2000-02-29, a leap day), and
        // `@1796000000` with 123 ms.
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_000_000_123), "2026-11-30T00:53:20.123Z");
    }
}
