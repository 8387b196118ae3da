//! Schema migrations: numbered SQL files embedded in the binary, applied in
//! order at start, each once (recorded in `schema_migrations`), all in one
//! transaction under an advisory lock so two collectors starting together
//! do not both apply one.

use postgres::Client;

/// (version, name, SQL), in order. Append only: an applied file never changes.
const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "audit_tables",
    include_str!("../migrations/0001_audit_tables.sql"),
)];

/// An arbitrary constant naming this schema's advisory lock.
const LOCK_KEY: i64 = 0x6175_6469_745f_6d67; // "audit_mg"

/// Applies every migration not yet applied; returns the versions applied now.
pub fn migrate(db: &mut Client) -> Result<Vec<i32>, postgres::Error> {
    let mut tx = db.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )?;
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        let done = tx.query_opt(
            "SELECT 1 FROM schema_migrations WHERE version = $1",
            &[version],
        )?;
        if done.is_none() {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )?;
            applied.push(*version);
        }
    }
    tx.commit()?;
    Ok(applied)
}

/// The newest schema version this binary knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}
