//! Boot to ready: the steps of "Boot to ready" in `architecture.md`, in
//! order, one call each. Every step logs its duration; the readiness report
//! carries them all.
//!
//! Steps 3-8 (keys, challenge, evidence, token, Vault login, secrets) and 10
//! (renewal) arrive with the evidence, verifier and secrets work; until then
//! the init goes from its configuration straight to readiness.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use crate::config::{self, Config, ConfigError};
use crate::control::{self, ControlError};
use crate::logger;
use crate::pid1::{self, sandbox::Sandbox, Outcome, Pid1, Pid1Error, Role};
use crate::service::{self, tls::ServingKey};
use crate::state::{AttestationState, Health, Shared};
use crate::{attest, keys, renew, secrets, tee, vault};
use std::sync::Arc;

/// The image's build time (SOURCE_DATE_EPOCH at build): the floor of trusted
/// time before the verifier has answered.
const BUILD_EPOCH: u64 = parse_epoch(option_env!("SOURCE_DATE_EPOCH"));

const fn parse_epoch(s: Option<&str>) -> u64 {
    let Some(s) = s else { return 0 };
    let b = s.as_bytes();
    let mut i = 0;
    let mut n: u64 = 0;
    while i < b.len() {
        let d = b[i];
        if d < b'0' || d > b'9' {
            return 0;
        }
        n = n * 10 + (d - b'0') as u64;
        i += 1;
    }
    n
}
use transport::Listener;

/// Runs the init. Never returns: PID 1 powers off, a process exits.
pub fn run(role: Role, args: Vec<OsString>) -> ! {
    logger::init(log::LevelFilter::Info);
    let args = match role {
        // The kernel hands stray command-line words to init as arguments;
        // PID 1 takes everything from the image and /proc/cmdline instead.
        Role::Pid1 => Args::default(),
        Role::Process => match Args::parse(args) {
            Ok(a) => a,
            Err(why) => pid1::finish(role, Outcome::Fatal { status: 2, reason: why }),
        },
    };
    log::info!(version = env!("CARGO_PKG_VERSION"), role = role.as_str(); "enclave-init starting");
    let mut timer = Timer::new();

    // 1. PID 1 duties: signals, panic hook, Ctrl-Alt-Del, mounts, console.
    let mut pid1 = match pid1::take_over(role) {
        Ok(p) => p,
        Err((e, role)) => pid1::finish(role, fatal(BootError::Pid1(e))),
    };
    timer.step("take_over");

    let outcome = match boot_to_ready(&pid1, &args, &mut timer) {
        Ok(mut ready) => serve(&mut pid1, &mut ready),
        Err(e) => fatal(e),
    };
    pid1.finish(outcome)
}

/// Steps 1 (modules) to 9 (readiness).
fn boot_to_ready(pid1: &Pid1, args: &Args, timer: &mut Timer) -> Result<Ready, BootError> {
    // 1. (cont.) Kernel modules from the image: virtio and vsock.
    let modules = pid1.load_modules()?;
    timer.step("modules");

    // 2. The measured configuration, with `enclave.*` command-line overrides.
    let config = config::load(&args.config, &pid1.cmdline(&args.cmdline))?;
    log::set_max_level(config.log_level);
    timer.step("config");

    // Entropy before any key is made (step 3 onwards).
    pid1::entropy::wait_ready(config.entropy_timeout)?;
    timer.step("entropy");

    // The evidence source (step 5 uses it; operators may ask for evidence).
    let mut tee = tee::open(&config.tee)?;
    let time = attest::TrustedTime::new(BUILD_EPOCH);
    timer.step("evidence_source");

    // The control listener is opened before the sandbox closes the
    // filesystem (a unix listener is a file); then no more writes, ever.
    let listener = control::listen(&config.host.control)?;
    let call_listener = match &config.service.listen {
        Some(addr) => Some(transport::listen(addr).map_err(|e| BootError::Service(format!("cannot listen on {addr}: {e}")))?),
        None => None,
    };
    let sandbox = pid1::sandbox::forbid_writes()?;
    timer.step("sandbox");

    // From here on the process holds keys: no core dumps, not dumpable,
    // and as PID 1 every page locked in memory.
    secrets::harden_process(pid1.role() == Role::Pid1)?;

    // 3-6. Enclave key, challenge, evidence bound to nonce, key and TLS
    // session, token. Skipped only when the measured configuration names no
    // verifier (development images: nothing secret is provisioned then).
    let (attestation, key) = match &config.verifier.addr {
        Some(addr) => {
            let key = keys::EnclaveKey::generate()?;
            timer.step("key");
            let attestation = attest::attest(&config.verifier, addr, &time, &key, tee.as_mut())?;
            log::info!(tee = attestation.tee.as_str(), expires_at = attestation.expires_at; "attested");
            timer.step("attest");
            (Some(attestation), Some(key))
        }
        None => {
            log::warn!("no verifier configured: not attesting; no secrets will be provisioned");
            (None, None)
        }
    };

    // 7-8. Vault login with the token; secrets, response-wrapped, into the
    // locked store; the call service's certificate request signed by
    // Vault's PKI (its key is made here and never leaves).
    let mut store = secrets::SecretStore::new()?;
    let serving = match &config.service.listen {
        Some(_) => {
            let key = ServingKey::generate().map_err(BootError::Service)?;
            let csr = key.csr_pem(&config.service.server_name).map_err(BootError::Service)?;
            let req = vault::CertRequest {
                csr_pem: csr,
                common_name: config.service.server_name.clone(),
                sign_path: config.service.pki_sign_path.clone(),
                ttl: config.service.cert_ttl,
            };
            Some((key, req))
        }
        None => None,
    };
    let provisioned = match (&config.vault.addr, &attestation) {
        (Some(addr), Some(attestation)) => {
            let p = vault::provision(&config.vault, addr, &time, attestation, &mut store, serving.as_ref().map(|(_, r)| r))?;
            log::info!(secrets = p.count, attempts = p.attempts, vault_lease_secs = p.token_lease_secs; "secrets provisioned");
            timer.step("secrets");
            Some(p)
        }
        (Some(_), None) => return Err(BootError::Vault(vault::VaultError::Protocol("Vault is configured but no verifier: nothing to log in with".into()))),
        (None, _) => None,
    };

    // What the host channel, the renewal and the call service share.
    let shared = Shared::new(
        store,
        Arc::clone(&time),
        tee_name(attestation.as_ref().map(|a| a.tee.as_str())),
        AttestationState {
            health: Health::Serving,
            attested: attestation.is_some(),
            expires_at: attestation.as_ref().map_or(0, |a| a.expires_at),
            vault_expires_at: provisioned.as_ref().map_or(0, |p| time.now_secs().saturating_add(p.token_lease_secs)),
            renewals: 0,
        },
    );
    if attestation.is_some() {
        shared.metrics.attestation_attempt();
    }

    // 9. The call service on its port, then readiness to the host.
    let mut serving_cert = None;
    let cert_request = serving.as_ref().map(|(_, r)| r.clone());
    let call_service = match (call_listener, serving, provisioned.as_ref().and_then(|p| p.serving_chain.as_deref())) {
        (Some(l), Some((key, _)), Some(chain)) => {
            let addr = l.local_addr();
            let (tls, cert) = key.server_config(chain).map_err(BootError::Service)?;
            serving_cert = Some(cert);
            let svc = service::Service::new(config.service.clone(), tls, Arc::clone(&shared)).map_err(BootError::Service)?;
            service::start(l, svc).map_err(|e| BootError::Service(format!("cannot start the call service: {e}")))?;
            log::info!(listen = addr.as_str(), workers = config.service.workers; "call service listening");
            timer.step("call_service");
            Some(addr)
        }
        (None, _, _) => None,
        _ => return Err(BootError::Service("the call service needs attestation and Vault to obtain its certificate".into())),
    };
    let report = serde_json::json!({
        "event": "ready",
        "version": env!("CARGO_PKG_VERSION"),
        "role": pid1.role().as_str(),
        "modules_loaded": modules,
        "sandbox": sandbox_str(sandbox),
        "evidence_source": tee.kind().as_str(),
        "attested": attestation.as_ref().map(|a| serde_json::json!({
            "tee": a.tee,
            "expires_at": a.expires_at,
            "evidence_us": u64::try_from(a.evidence_time.as_micros()).unwrap_or(u64::MAX),
            "verifier_us": u64::try_from(a.verifier_time.as_micros()).unwrap_or(u64::MAX),
        })),
        "secrets_provisioned": provisioned.as_ref().map_or(0, |p| p.count),
        "secret_memory": format!("{:?}", shared.secrets().backing()),
        "call_service": call_service,
        "control": listener.local_addr(),
        "uptime_s": logger::uptime_secs(),
        "steps_us": timer.as_json(),
    });
    let cid = control::report_ready(&config.host.ready, config.host.connect_timeout, &report)?;
    timer.step("ready");
    // 10. Renewal: re-attest before the token or the Vault lease runs out.
    let renewal = match (&attestation, key, &provisioned, &config.verifier.addr, &config.vault.addr) {
        (Some(a), Some(key), Some(p), Some(v), Some(b)) => Some(renew::Renewal::new(
            config.verifier.clone(),
            v.clone(),
            config.vault.clone(),
            b.clone(),
            time,
            key,
            a,
            p.token_lease_secs,
            cert_request.zip(serving_cert),
        )),
        _ => None,
    };
    Ok(Ready { config, listener, sandbox, cid, steps: timer.as_json(), tee, shared, renewal })
}

/// Serves the host channel until a shutdown request.
fn serve(pid1: &mut Pid1, ready: &mut Ready) -> Outcome {
    let status = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "role": pid1.role().as_str(),
        "cid": ready.cid,
        "sandbox": sandbox_str(ready.sandbox),
        "uptime_s": logger::uptime_secs(),
        "steps_us": ready.steps,
    });
    log::info!(control = ready.listener.local_addr().as_str(); "ready");
    let mut ctx = control::Context {
        status,
        evidence: ready.tee.as_mut(),
        shared: &ready.shared,
        secret_hash_query: ready.config.secret_hash_query,
        renewal: ready.renewal.as_mut(),
    };
    match control::serve(pid1.signals(), &ready.listener, ready.config.host.io_timeout, &mut ctx) {
        Ok(reason) => Outcome::Requested(reason),
        Err(e) => fatal(BootError::Control(e)),
    }
}

/// What the init holds once it is ready.
struct Ready {
    config: Config,
    listener: Listener,
    sandbox: Sandbox,
    cid: Option<u32>,
    steps: serde_json::Value,
    tee: Box<dyn evidence::EvidenceSource>,
    shared: Arc<Shared>,
    renewal: Option<renew::Renewal>,
}

/// The TEE the verifier's claims name (`none` before any attestation).
fn tee_name(claimed: Option<&str>) -> &'static str {
    match claimed {
        Some("snp") => "snp",
        Some("tdx") => "tdx",
        Some("sim") => "sim",
        _ => "none",
    }
}

fn sandbox_str(s: Sandbox) -> String {
    match s {
        Sandbox::Enforced { abi } => format!("landlock-abi-{abi}"),
        Sandbox::Unavailable => "unavailable".to_owned(),
    }
}

/// Why the boot failed; each variant is one step's error.
#[derive(Debug)]
pub enum BootError {
    /// A PID 1 duty.
    Pid1(Pid1Error),
    /// The configuration.
    Config(ConfigError),
    /// The host channel.
    Control(ControlError),
    /// The evidence source.
    Evidence(evidence::EvidenceError),
    /// The enclave key.
    Key(keys::KeyError),
    /// Attestation.
    Attest(attest::AttestError),
    /// Vault.
    Vault(vault::VaultError),
    /// The secret store.
    Secrets(secrets::SecretError),
    /// The call service.
    Service(String),
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Pid1(e) => e.fmt(f),
            BootError::Config(e) => e.fmt(f),
            BootError::Control(e) => e.fmt(f),
            BootError::Evidence(e) => write!(f, "evidence: {e}"),
            BootError::Key(e) => e.fmt(f),
            BootError::Attest(e) => write!(f, "attestation: {e}"),
            BootError::Vault(e) => e.fmt(f),
            BootError::Secrets(e) => e.fmt(f),
            BootError::Service(e) => write!(f, "call service: {e}"),
        }
    }
}

impl From<Pid1Error> for BootError {
    fn from(e: Pid1Error) -> Self {
        BootError::Pid1(e)
    }
}

impl From<ConfigError> for BootError {
    fn from(e: ConfigError) -> Self {
        BootError::Config(e)
    }
}

impl From<evidence::EvidenceError> for BootError {
    fn from(e: evidence::EvidenceError) -> Self {
        BootError::Evidence(e)
    }
}

impl From<keys::KeyError> for BootError {
    fn from(e: keys::KeyError) -> Self {
        BootError::Key(e)
    }
}

impl From<attest::AttestError> for BootError {
    fn from(e: attest::AttestError) -> Self {
        BootError::Attest(e)
    }
}

impl From<vault::VaultError> for BootError {
    fn from(e: vault::VaultError) -> Self {
        BootError::Vault(e)
    }
}

impl From<secrets::SecretError> for BootError {
    fn from(e: secrets::SecretError) -> Self {
        BootError::Secrets(e)
    }
}

impl From<ControlError> for BootError {
    fn from(e: ControlError) -> Self {
        BootError::Control(e)
    }
}

/// Maps a boot error to the way out: the reason is printed, and a process
/// exits with 78 (EX_CONFIG) for a configuration error, 1 otherwise.
fn fatal(e: BootError) -> Outcome {
    let status = match e {
        BootError::Config(_) => 78,
        _ => 1,
    };
    Outcome::Fatal { status, reason: e.to_string() }
}

/// Process-mode arguments (PID 1 uses the defaults).
#[derive(Debug)]
struct Args {
    config: PathBuf,
    cmdline: String,
}

impl Default for Args {
    fn default() -> Self {
        Args { config: PathBuf::from(config::IMAGE_CONFIG_PATH), cmdline: String::new() }
    }
}

impl Args {
    const USAGE: &'static str = "usage: enclave-init [--config PATH] [--cmdline 'enclave.k=v …']";

    /// Hand-parsed: two options do not justify an argument-parsing crate in
    /// the trusted computing base.
    fn parse(args: Vec<OsString>) -> Result<Args, String> {
        let mut out = Args::default();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| format!("{name} needs a UTF-8 value; {}", Self::USAGE))
            };
            match arg.to_str() {
                Some("--config") => out.config = PathBuf::from(value("--config")?),
                Some("--cmdline") => out.cmdline = value("--cmdline")?,
                _ => return Err(format!("unknown argument {arg:?}; {}", Self::USAGE)),
            }
        }
        Ok(out)
    }
}

/// Durations of the boot steps, for the log and the readiness report.
struct Timer {
    last: Instant,
    steps: Vec<(&'static str, u128)>,
}

impl Timer {
    fn new() -> Timer {
        Timer { last: Instant::now(), steps: Vec::new() }
    }

    fn step(&mut self, name: &'static str) {
        let now = Instant::now();
        let us = now.duration_since(self.last).as_micros();
        self.last = now;
        self.steps.push((name, us));
        log::info!(step = name, us = u64::try_from(us).unwrap_or(u64::MAX); "boot step done");
    }

    fn as_json(&self) -> serde_json::Value {
        self.steps.iter().map(|(n, us)| serde_json::json!({"step": n, "us": u64::try_from(*us).unwrap_or(u64::MAX)})).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_checked() {
        let a = Args::parse(vec!["--config".into(), "/x.toml".into(), "--cmdline".into(), "enclave.a=b".into()]).unwrap();
        assert_eq!(a.config, PathBuf::from("/x.toml"));
        assert_eq!(a.cmdline, "enclave.a=b");
        assert!(Args::parse(vec!["--config".into()]).unwrap_err().contains("needs a UTF-8 value"));
        assert!(Args::parse(vec!["--bogus".into()]).unwrap_err().contains("unknown argument"));
    }
}
