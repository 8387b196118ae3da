//! `enclavectl verifier`: the attestation verifier service.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use crate::CmdResult;

/// Arguments of `enclavectl verifier`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (host:port; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// TLS certificate chain (PEM).
    #[arg(long)]
    tls_cert: PathBuf,
    /// TLS private key (PEM).
    #[arg(long)]
    tls_key: PathBuf,
    /// Token signing key: PKCS#8 P-384 (DER). Every replica has the same.
    #[arg(long)]
    token_key: PathBuf,
    /// Nonce HMAC key (at least 32 bytes). Every replica has the same.
    #[arg(long)]
    nonce_key: PathBuf,
    /// Appraisal policy (TOML).
    #[arg(long)]
    policy: PathBuf,
    /// Refuse a policy that accepts simulation evidence.
    #[arg(long)]
    production: bool,
    /// Token issuer URL; defaults to https://<listen address>.
    #[arg(long)]
    issuer: Option<String>,
    /// Token audience (the Vault/OpenBao role's bound audience).
    #[arg(long, default_value = "openbao")]
    audience: String,
    /// Token lifetime, seconds.
    #[arg(long, default_value_t = 300)]
    token_ttl_secs: u64,
    /// Nonce lifetime, seconds (at most 300).
    #[arg(long, default_value_t = 300)]
    nonce_ttl_secs: u64,
    /// Fixed verifier time (RFC 3339), for tests; default: the system clock.
    #[arg(long)]
    now: Option<String>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
}

pub fn run(args: Args) -> CmdResult {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let policy_bytes = read(&args.policy)?;
    let policy = if args.production {
        appraisal::Policy::production(&policy_bytes)
    } else {
        appraisal::Policy::from_toml(&policy_bytes)
    }
    .map_err(|e| format!("policy {}: {e}", args.policy.display()))?;
    if policy.sim.allowed {
        eprintln!("enclavectl verifier: WARNING: this policy accepts SIMULATION evidence; never use it in production");
    }
    let clock = match &args.now {
        None => verifier::service::Clock::System,
        Some(t) => {
            let secs = appraisal::parse_rfc3339(t).ok_or_else(|| format!("--now {t:?} is not RFC 3339"))?;
            verifier::service::Clock::Manual(Arc::new(AtomicI64::new(secs)))
        }
    };
    let listener = TcpListener::bind(&args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr()?;
    let config = verifier::service::Config {
        issuer: args.issuer.unwrap_or_else(|| format!("https://{local}")),
        audience: args.audience,
        token_ttl_secs: args.token_ttl_secs,
        nonce_ttl_secs: args.nonce_ttl_secs,
        clock,
        max_connections: args.max_connections,
        io_timeout: Duration::from_secs(30),
    };
    let appraiser = verifier::PolicyAppraiser::new(policy).map_err(|e| format!("pinned roots: {e}"))?;
    let v = verifier::service::Verifier::new(
        config,
        &read(&args.tls_cert)?,
        &read(&args.tls_key)?,
        &read(&args.token_key)?,
        &read(&args.nonce_key)?,
        Box::new(appraiser),
    )?;
    println!("listening https://{local}");
    Arc::new(v).serve(listener);
    Ok(ExitCode::SUCCESS)
}
