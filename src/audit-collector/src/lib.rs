//! The audit trail's host side (issue 19): the collector that stores the
//! emitters' signed records in PostgreSQL ([`serve`], [`ingest`]), its
//! schema ([`migrate`]), the auditor's check ([`verify`]) and export
//! ([`export`]), and the retention job ([`retain`]). The record format is
//! `audit-record`'s.
//!
//! Database: `--db` takes a libpq-style connection string or the directory
//! of the server's Unix socket ([`conninfo`]).

pub mod export;
pub mod hex;
pub mod ingest;
pub mod keys;
pub mod migrate;
pub mod retain;
pub mod serve;
pub mod store;
pub mod verify;

/// `--db` as a connection string: a directory (the server's socket
/// directory) becomes `host=DIR user=postgres dbname=postgres`; anything
/// else is passed as it is.
pub fn conninfo(db: &str) -> String {
    if db.starts_with('/') && std::path::Path::new(db).is_dir() {
        format!("host={db} user=postgres dbname=postgres")
    } else {
        db.to_owned()
    }
}

/// Connects and applies the migrations.
pub fn connect(db: &str) -> Result<postgres::Client, String> {
    let mut client = postgres::Client::connect(&conninfo(db), postgres::NoTls)
        .map_err(|e| format!("database {db:?}: {e}"))?;
    migrate::migrate(&mut client).map_err(|e| format!("migrations: {e}"))?;
    Ok(client)
}
