//! `enclavectl audit serve|verify|export|retain|pubkey`: the audit trail's
//! host side (issue 19), in the `audit-collector` crate.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use audit_collector::{keys, retain, serve, verify};
use clap::Subcommand;

use crate::CmdResult;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// The collector: stores the emitters' records in PostgreSQL (quarantine for what does not verify), acks after commit.
    Serve {
        /// PostgreSQL: a connection string or the server's Unix socket directory.
        #[arg(long)]
        db: String,
        /// Where emitters connect: vsock://any:PORT, unix:///PATH (hybrid vsock: /PATH/vm.vsock_PORT), tcp://HOST:PORT.
        #[arg(long)]
        listen: transport::Addr,
        /// The verifier's public key (SPKI PEM/DER, or its PKCS#8 token key): its decision records.
        #[arg(long)]
        verifier_key: Option<PathBuf>,
        /// Connections served at once.
        #[arg(long, default_value_t = 64)]
        max_connections: usize,
    },
    /// Checks every stream: signatures, chain, gaps, duplicates, reorders, edits, quarantine (exit 0 clean, 1 findings).
    Verify {
        /// PostgreSQL: a connection string or the server's Unix socket directory.
        #[arg(long)]
        db: String,
        /// The verifier's public key (SPKI PEM/DER, or its PKCS#8 token key).
        #[arg(long)]
        verifier_key: PathBuf,
        /// The retention job's public key (SPKI PEM/DER, or its PKCS#8 key).
        #[arg(long)]
        retention_key: Option<PathBuf>,
    },
    /// A JSON report for an auditor: the verify report and the signed records in [from, to).
    Export {
        /// PostgreSQL: a connection string or the server's Unix socket directory.
        #[arg(long)]
        db: String,
        /// The verifier's public key.
        #[arg(long)]
        verifier_key: PathBuf,
        /// The retention job's public key.
        #[arg(long)]
        retention_key: Option<PathBuf>,
        /// RFC 3339 start (inclusive).
        #[arg(long)]
        from: String,
        /// RFC 3339 end (exclusive).
        #[arg(long)]
        to: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// The retention job: deletes each stream's records older than the period, as a signed retention record says.
    Retain {
        /// PostgreSQL: a connection string or the server's Unix socket directory.
        #[arg(long)]
        db: String,
        /// The retention period, in days.
        #[arg(long)]
        older_than: u64,
        /// The retention job's PKCS#8 ECDSA key (P-256 or P-384).
        #[arg(long)]
        key: PathBuf,
    },
    /// Prints the public key (SPKI PEM) of a key file, to pin in `audit verify`.
    Pubkey {
        /// A PKCS#8 key or a public key.
        #[arg(long)]
        key: PathBuf,
    },
}

fn trust(verifier: &std::path::Path, retention: Option<&PathBuf>) -> Result<verify::Trust, String> {
    Ok(verify::Trust {
        verifier_spki: keys::spki_file(verifier)?,
        retention_spki: retention.map(|p| keys::spki_file(p)).transpose()?,
    })
}

pub fn run(cmd: AuditCommand) -> CmdResult {
    match cmd {
        AuditCommand::Serve {
            db,
            listen,
            verifier_key,
            max_connections,
        } => {
            let verifier_spki = verifier_key.map(|p| keys::spki_file(&p)).transpose()?;
            let conninfo = audit_collector::conninfo(&db);
            let mut client = audit_collector::connect(&db)?;
            let applied = audit_collector::migrate::migrate(&mut client)?;
            drop(client);
            let listener = transport::listen(&listen).map_err(|e| format!("{listen}: {e}"))?;
            log::info!(migrations = format!("{applied:?}").as_str(); "audit collector: schema ready");
            println!("audit collector listening on {}", listener.local_addr());
            std::io::stdout().flush()?;
            let collector = Arc::new(serve::Collector {
                conninfo,
                verifier_spki,
                limits: serve::Limits {
                    connections: max_connections,
                    ..serve::Limits::default()
                },
                counters: Arc::default(),
            });
            Err(collector.serve(listener).into())
        }
        AuditCommand::Verify {
            db,
            verifier_key,
            retention_key,
        } => {
            let trust = trust(&verifier_key, retention_key.as_ref())?;
            let mut client = audit_collector::connect(&db)?;
            let snap = verify::load(&mut client).map_err(|e| format!("database: {e}"))?;
            let report = verify::check(&snap, &trust);
            print!("{}", verify::render(&report));
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Export {
            db,
            verifier_key,
            retention_key,
            from,
            to,
            out,
        } => {
            let trust = trust(&verifier_key, retention_key.as_ref())?;
            let mut client = audit_collector::connect(&db)?;
            let doc = audit_collector::export::export(&mut client, &trust, &from, &to)?;
            std::fs::write(&out, serde_json::to_vec_pretty(&doc)?)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            println!("audit export: {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Retain {
            db,
            older_than,
            key,
        } => {
            let bytes = std::fs::read(&key).map_err(|e| format!("{}: {e}", key.display()))?;
            let (pair, alg) =
                keys::key_pair(&bytes).map_err(|e| format!("{}: {e}", key.display()))?;
            let signer = audit_record::KeyPairSigner { pair: &pair, alg };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis();
            let period = u128::from(older_than) * 86_400_000;
            let before = u64::try_from(now.saturating_sub(period))?;
            let mut client = audit_collector::connect(&db)?;
            let done = retain::retain(&mut client, &signer, before)?;
            for r in &done {
                println!(
                    "retained stream {}: seq 0-{} deleted ({} rows), retention record seq {}",
                    r.stream, r.through_seq, r.deleted, r.retention_seq
                );
            }
            println!("audit retain: {} streams", done.len());
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Pubkey { key } => {
            print!("{}", keys::spki_pem(&keys::spki_file(&key)?));
            Ok(ExitCode::SUCCESS)
        }
    }
}
