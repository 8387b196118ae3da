//! `enclavectl audit export`: a JSON report for an auditor: the verify
//! report of the whole store, and the signed lines whose time falls in
//! [from, to), so the auditor can check every signature and link again
//! with nothing but the pinned keys. Records hold no personal data (the
//! format's rule), so neither does the export.

use postgres::Client;
use serde_json::{json, Value};

use crate::verify::{self, Trust};

/// An RFC 3339 instant as Unix ms (PostgreSQL parses it: one parser of
/// times, the database's).
pub fn parse_time(db: &mut Client, text: &str) -> Result<i64, String> {
    db.query_one(
        "SELECT round(extract(epoch FROM $1::text::timestamptz) * 1000)::bigint",
        &[&text],
    )
    .map(|r| r.get(0))
    .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

/// The export document.
pub fn export(db: &mut Client, trust: &Trust, from: &str, to: &str) -> Result<Value, String> {
    let from_ms = parse_time(db, from)?;
    let to_ms = parse_time(db, to)?;
    let snap = verify::load(db).map_err(|e| format!("database: {e}"))?;
    let report = verify::check(&snap, trust);
    let records: Vec<Value> = snap
        .rows
        .iter()
        .filter(|r| r.time_ms >= from_ms && r.time_ms < to_ms)
        .map(|r| json!({"stream": r.stream, "seq": r.seq, "line": r.raw}))
        .collect();
    Ok(json!({
        "format": "enclave-init audit export v1",
        "from": from,
        "to": to,
        "verifier_key_sha256": crate::hex::sha256(&trust.verifier_spki),
        "retention_key_sha256": trust.retention_spki.as_deref().map(crate::hex::sha256),
        "report": verify::to_json(&report),
        "records": records,
    }))
}
