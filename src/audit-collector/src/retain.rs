//! `enclavectl audit retain`: the retention job. Deletes, per stream, the
//! longest prefix of records older than the period, and states it in a
//! signed `retention` record (stream, through which seq, the hash of the
//! last deleted record), so `audit verify` starts that stream's chain there
//! and names the point instead of reporting a gap.
//!
//! The retention records are signed by the retention job's own key (a
//! PKCS#8 ECDSA key, its own stream), not by the verifier's token key: a
//! stream is one key (its id is the key's digest), so the job cannot append
//! to the running verifier's chain, and the token key stays in the
//! verifier alone. The auditor pins the retention key (`audit verify
//! --retention-key`); whoever holds it can state a deletion but never
//! fake continuity: the first kept record's `prev`, signed by its emitter,
//! must equal the stated hash.

use audit_record::{Body, Chain, Record, RetentionBody, Sign};
use postgres::Client;

use crate::hex;

/// One stream's deleted prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retained {
    /// The stream.
    pub stream: String,
    /// Records deleted, seq ≤ this.
    pub through_seq: u64,
    /// How many rows were deleted.
    pub deleted: u64,
    /// The retention record's seq in the retention stream.
    pub retention_seq: u64,
}

fn db_err(e: postgres::Error) -> String {
    format!("database: {e}")
}

/// Deletes what is older than `before_ms` (Unix ms) in every stream but the
/// retention stream itself, one transaction per stream.
pub fn retain(db: &mut Client, signer: &dyn Sign, before_ms: u64) -> Result<Vec<Retained>, String> {
    let own = audit_record::stream_id(&signer.spki());
    let before = i64::try_from(before_ms).map_err(|_| "time out of range".to_owned())?;
    let streams: Vec<String> = db
        .query(
            "SELECT DISTINCT stream FROM audit_records WHERE stream <> $1 ORDER BY stream",
            &[&own],
        )
        .map_err(db_err)?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for stream in streams {
        let mut tx = db.transaction().map_err(db_err)?;
        // One retention job at a time (its chain has one writer).
        tx.execute("SELECT pg_advisory_xact_lock(7365636574)", &[])
            .map_err(db_err)?;
        // The prefix ends before the first record at or after the cut-off.
        let cut: Option<i64> = tx
            .query_one(
                "SELECT min(seq) FROM audit_records
                 WHERE stream = $1 AND time >= to_timestamp($2::bigint / 1000.0)",
                &[&stream, &before],
            )
            .map_err(db_err)?
            .get(0);
        let last = tx
            .query_opt(
                "SELECT seq, raw FROM audit_records WHERE stream = $1 AND seq < coalesce($2, 9223372036854775807)
                 ORDER BY seq DESC LIMIT 1",
                &[&stream, &cut],
            )
            .map_err(db_err)?;
        let Some(last) = last else {
            continue;
        };
        let through: i64 = last.get(0);
        let raw: String = last.get(1);
        let deleted = tx
            .execute(
                "DELETE FROM audit_records WHERE stream = $1 AND seq <= $2",
                &[&stream, &through],
            )
            .map_err(db_err)?;
        let prev_row = tx
            .query_opt(
                "SELECT raw FROM audit_records WHERE stream = $1 ORDER BY seq DESC LIMIT 1",
                &[&own],
            )
            .map_err(db_err)?;
        let mut chain = match prev_row {
            Some(r) => {
                let line: String = r.get(0);
                let rec = Record::parse(&line)
                    .map_err(|e| format!("the retention stream's last record: {e}"))?;
                Chain::after(&rec)
            }
            None => Chain::new(&signer.spki()),
        };
        let through_seq = u64::try_from(through).map_err(|_| "negative seq".to_owned())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?;
        let record = chain
            .append(
                Body::Retention(RetentionBody {
                    before_time: before_ms,
                    deleted_count: deleted,
                    stream: stream.clone(),
                    through_seq,
                    last_hash: hex::sha256(raw.as_bytes()),
                }),
                u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
                signer,
            )
            .map_err(|e| format!("signing the retention record: {e}"))?;
        let line = record.to_line();
        if !crate::store::insert(&mut tx, crate::store::INSERT, &record, &line).map_err(db_err)? {
            return Err("the retention stream's next seq is taken".to_owned());
        }
        tx.commit().map_err(db_err)?;
        log::info!(stream = stream.as_str(), through_seq, deleted; "audit retention: prefix deleted");
        out.push(Retained {
            stream,
            through_seq,
            deleted,
            retention_seq: record.seq,
        });
    }
    Ok(out)
}
