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
    /// The audit collector (`enclavectl audit serve`): one `decision` record
    /// per appraisal, signed with the token key, through a bounded queue
    /// that never slows appraisal (drops counted in /metrics). unix:///PATH,
    /// tcp://HOST:PORT or vsock://CID:PORT. One verifier per token key:
    /// replicas sharing a key would interleave one chain.
    #[arg(long)]
    audit: Option<transport::Addr>,
    /// Decisions waiting for the audit shipper, at most; past it they are
    /// dropped and counted.
    #[arg(long, default_value_t = 1024)]
    audit_queue: usize,
    /// Appraisal policy (TOML). Loaded as a production policy (no
    /// simulation) unless --dev.
    #[arg(long)]
    policy: PathBuf,
    /// Development mode: accept a policy that allows simulated evidence,
    /// and --now. Never in production.
    #[arg(long)]
    dev: bool,
    /// Token issuer URL; defaults to https://<listen address>.
    #[arg(long)]
    issuer: Option<String>,
    /// Token audience (the Vault/OpenBao role's bound audience).
    #[arg(long, default_value = "openbao")]
    audience: String,
    /// Token lifetime, seconds (short by default: the guest renews by
    /// re-attestation, and a token is a credential for its whole life); at
    /// most the policy's token.max_ttl_secs (default 60).
    #[arg(long, default_value_t = 60)]
    token_ttl_secs: u64,
    /// Nonce lifetime, seconds (at most 300).
    #[arg(long, default_value_t = 300)]
    nonce_ttl_secs: u64,
    /// Fixed verifier time (RFC 3339 or Unix seconds), for tests; only with --dev.
    #[arg(long)]
    now: Option<String>,
    /// Connections served at once (worker threads); past them a connection
    /// waits in the accept queue, and past that it is answered 503 with
    /// Retry-After (a few more) or closed.
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
    /// Connections that may wait for a worker; 0: shed at once when every
    /// worker is busy.
    #[arg(long, default_value_t = 64)]
    accept_queue: usize,
    /// How long a connection may wait for a worker before it is answered
    /// 503 with Retry-After, milliseconds.
    #[arg(long, default_value_t = 5000)]
    queue_wait_ms: u64,
    /// Connections (served or waiting) from one peer IP address; past it a
    /// connection is answered 503 (code busy_source). Behind HAProxy or
    /// another TCP proxy every peer is the proxy's address: raise this to
    /// --max-connections plus --accept-queue there (PROXY protocol is not
    /// supported).
    #[arg(long, default_value_t = 16)]
    max_per_source: usize,
    /// Deadline for the whole TLS handshake, milliseconds (however often
    /// bytes arrive).
    #[arg(long, default_value_t = 5000)]
    handshake_timeout_ms: u64,
    /// Deadline for a request from its first byte to the end of its body,
    /// milliseconds (however often bytes arrive).
    #[arg(long, default_value_t = 10000)]
    request_timeout_ms: u64,
    /// How long a kept-alive connection may wait for its next request,
    /// milliseconds.
    #[arg(long, default_value_t = 2000)]
    keep_alive_idle_ms: u64,
    /// The Retry-After (seconds) of a connection shed at the limit.
    #[arg(long, default_value_t = 1)]
    shed_retry_after_secs: u64,
    /// Client CA certificate (PEM): with --client-ca-key, guests in
    /// certificate mode (vault.auth = "cert") get a client certificate for
    /// their attested key, for OpenBao's cert auth (proof of possession).
    #[arg(long, requires = "client_ca_key")]
    client_ca_cert: Option<PathBuf>,
    /// The client CA's private key (PKCS#8 PEM).
    #[arg(long, requires = "client_ca_cert")]
    client_ca_key: Option<PathBuf>,
    #[command(flatten)]
    collateral: crate::collateral_cmd::Options,
}

pub fn run(args: Args) -> CmdResult {
    let read =
        |p: &PathBuf| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let policy_bytes = read(&args.policy)?;
    // Strict by default: a production policy unless --dev.
    let policy = if args.dev {
        appraisal::Policy::from_toml(&policy_bytes)
    } else {
        appraisal::Policy::production(&policy_bytes)
    }
    .map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        let hint = if matches!(e, appraisal::PolicyError::SimulationInProduction) {
            " (start the verifier with --dev to accept simulated evidence, in development only)"
        } else {
            ""
        };
        format!("policy {}: {e}{cause}{hint}", args.policy.display())
    })?;
    if policy.sim.allowed {
        log::warn!("--dev and this policy accepts SIMULATION evidence; never use it in production");
    }
    if args.token_ttl_secs > policy.token.max_ttl_secs {
        return Err(format!(
            "--token-ttl-secs {} is above the policy's token.max_ttl_secs {} (raise it in the policy's [token] section if you mean it; it then shows in every token's relaxations claim)",
            args.token_ttl_secs, policy.token.max_ttl_secs
        )
        .into());
    }
    let clock = match &args.now {
        None => verifier::service::Clock::System,
        Some(_) if !args.dev => {
            return Err(
                "--now is refused outside --dev: the verifier's time is its own clock".into(),
            )
        }
        Some(t) => verifier::service::Clock::Manual(Arc::new(AtomicI64::new(
            appraisal::time::parse_now(t).map_err(|e| format!("--now {e}"))?,
        ))),
    };
    let listener = TcpListener::bind(&args.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr()?;
    let config = verifier::service::Config {
        issuer: args.issuer.unwrap_or_else(|| format!("https://{local}")),
        audience: args.audience,
        token_ttl_secs: args.token_ttl_secs,
        nonce_ttl_secs: args.nonce_ttl_secs,
        clock,
        max_connections: args.max_connections,
        io_timeout: Duration::from_secs(30),
        shed_retry_after_secs: args.shed_retry_after_secs,
        keep_alive_idle: Duration::from_millis(args.keep_alive_idle_ms),
        handshake_timeout: Duration::from_millis(args.handshake_timeout_ms),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        accept_queue: args.accept_queue,
        queue_wait: Duration::from_millis(args.queue_wait_ms),
        max_per_source: args.max_per_source,
    };
    let (resolver, store) = args.collateral.resolver(true)?;
    let appraiser = verifier::PolicyAppraiser::new(policy)
        .map_err(|e| format!("pinned roots: {e}"))?
        .with_collateral(resolver, store);
    let v = verifier::service::Verifier::new(
        config,
        &read(&args.tls_cert)?,
        &read(&args.tls_key)?,
        &read(&args.token_key)?,
        &read(&args.nonce_key)?,
        Box::new(appraiser),
    )?;
    let v = match (&args.client_ca_cert, &args.client_ca_key) {
        (Some(cert), Some(key)) => {
            let text = |p: &PathBuf| {
                std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            };
            let ca = verifier::client_cert::ClientCa::from_pem(&text(cert)?, &text(key)?)
                .map_err(|e| format!("--client-ca-cert/--client-ca-key: {e}"))?;
            v.with_client_ca(ca)
        }
        _ => v,
    };
    let v = match &args.audit {
        Some(addr) => v.with_audit(
            addr.clone(),
            &read(&args.token_key)?,
            verifier::audit::ShipperLimits {
                queue: args.audit_queue.max(1),
                ..verifier::audit::ShipperLimits::default()
            },
        )?,
        None => v,
    };
    println!("listening https://{local}");
    Arc::new(v).serve(listener);
    Ok(ExitCode::SUCCESS)
}
