//! Writing a verified record into `audit_records` (the collector's ingest
//! and the retention job share it).

use audit_record::Record;
use postgres::GenericClient;
use postgres::ToStatement;

/// The insert, as text (see [`insert`]); a connection that stores many
/// records prepares it once.
pub const INSERT: &str =
    "INSERT INTO audit_records (stream, seq, prev, hash, kind, time, body, sig, raw)
     VALUES ($1, $2, $3, $4, $5, to_timestamp($6::bigint / 1000.0), $7::text::jsonb, $8, $9)
     ON CONFLICT (stream, seq) DO NOTHING RETURNING id";

use crate::hex;

/// Inserts `record` (whose line is `raw`) unless its (stream, seq) is
/// taken; true when inserted. `statement` is [`INSERT`] or its prepared
/// statement.
pub fn insert<C: GenericClient, S: ToStatement + ?Sized>(
    db: &mut C,
    statement: &S,
    record: &Record,
    raw: &str,
) -> Result<bool, postgres::Error> {
    let seq = i64::try_from(record.seq).unwrap_or(i64::MAX);
    let time_ms = i64::try_from(record.time).unwrap_or(i64::MAX);
    // The body column is the body as signed, re-serialized from the parsed
    // record (serializing a parsed body of strings and integers cannot fail).
    let body = serde_json::to_string(&record.body).unwrap_or_default();
    let inserted = db.query_opt(
        statement,
        &[
            &record.stream,
            &seq,
            &hex::encode(&record.prev),
            &hex::sha256(raw.as_bytes()),
            &record.kind().as_str(),
            &time_ms,
            &body,
            &hex::encode(&record.sig),
            &raw,
        ],
    )?;
    Ok(inserted.is_some())
}
