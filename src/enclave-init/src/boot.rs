//! Boot to ready: the steps of "Boot to ready" in `architecture.md`, in
//! order, one call each, then the hand-over to the lifecycle. Nothing else
//! sequences: after step 9 the supervisor renews (step 10), the watchdog
//! enforces the trust deadline, the control channel reports, and this
//! thread only waits for a shutdown request.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::attest::Limits;
use crate::config::{self, ConfigError};
use crate::control::{self, ControlError};
use crate::lifecycle::clock::{Mono, VerifierClock};
use crate::lifecycle::exchange::{Exchange, ExchangeError, SharedTee};
use crate::lifecycle::supervisor::{self, Supervisor};
use crate::lifecycle::{watchdog, Lifecycle};
use crate::logger;
use crate::pid1::{self, sandbox::Sandbox, Outcome, Pid1, Pid1Error, Role};
use crate::service::{self, tls::ServingKey};
use crate::{keys, secrets, tee, vault};

/// The image's build time (`SOURCE_DATE_EPOCH` at build, required by
/// `scripts/build-guest`): the floor of trusted time before the verifier
/// has answered, so a host cannot roll the guest's clock back before its
/// own build to make expired certificates look valid.
const BUILD_EPOCH: u64 = parse_epoch(option_env!("SOURCE_DATE_EPOCH"));

/// The earliest plausible build time (2024-01-01): a floor below it means
/// the build ran without a real `SOURCE_DATE_EPOCH`; a release build then
/// fails to compile (below) rather than trust time 0.
const EPOCH_FLOOR: u64 = 1_704_067_200;

#[cfg(not(debug_assertions))]
const _: () = assert!(BUILD_EPOCH >= EPOCH_FLOOR, "build with SOURCE_DATE_EPOCH set (scripts/build-guest does): the guest's time floor comes from it");

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

/// Runs the init. Never returns: PID 1 powers off, a process exits.
pub fn run(role: Role, args: Vec<OsString>) -> ! {
    logger::init(log::LevelFilter::Info, || {
        pid1::sandbox::confine_console_writer().map_err(|e| e.to_string())
    });
    let args = match role {
        // The kernel hands stray command-line words to init as arguments;
        // PID 1 takes everything from the image and /proc/cmdline instead.
        Role::Pid1 => Args::default(),
        Role::Process => match Args::parse(args) {
            Ok(a) => a,
            Err(why) => pid1::finish(
                role,
                Outcome::Fatal {
                    status: 2,
                    reason: why,
                },
            ),
        },
    };
    crate::info_always!(version = env!("CARGO_PKG_VERSION"), role = role.as_str(), build_epoch = BUILD_EPOCH; "enclave-init starting");
    if BUILD_EPOCH < EPOCH_FLOOR {
        // Only a development build can get here (a release build without
        // SOURCE_DATE_EPOCH does not compile).
        crate::warn_always!("built without SOURCE_DATE_EPOCH: no time floor before the verifier answers (development build)");
    }
    let mut timer = Timer::new();

    // 1. PID 1 duties: signals, panic hook, Ctrl-Alt-Del, mounts, console.
    let mut pid1 = match pid1::take_over(role) {
        Ok(p) => p,
        Err((e, role)) => pid1::finish(role, fatal(BootError::Pid1(e))),
    };
    timer.step("take_over");

    let outcome = match boot_to_ready(&pid1, &args, &mut timer) {
        Ok(ready) => {
            let outcome = serve(&mut pid1, &ready);
            // Shutting down: the secrets go first, explicitly (threads
            // still hold the lifecycle, so no destructor would run), and
            // for good (a renewal finishing now cannot bring them back).
            ready.lifecycle.shut_down();
            outcome
        }
        Err(e) => fatal(e),
    };
    pid1.finish(outcome)
}

/// Steps 1 (modules) to 9 (readiness), then the hand-over (10).
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
    let source = tee::open(&config.tee)?;
    let source_kind = source.kind();
    let tee: SharedTee = Arc::new(Mutex::new(source));
    let time = Arc::new(VerifierClock::new(BUILD_EPOCH));
    timer.step("evidence_source");

    // The control listener is opened before the sandbox closes the
    // filesystem (a unix listener is a file); then no more writes, ever.
    let listener = control::listen(&config.host.control)?;
    let call_listener = match &config.service.listen {
        Some(addr) => Some(
            transport::listen(addr)
                .map_err(|e| BootError::Service(format!("cannot listen on {addr}: {e}")))?,
        ),
        None => None,
    };
    let tpm = match &config.tee.tpm {
        evidence::tpm_device::TpmAddr::Device(path) => Some(path.as_path()),
        evidence::tpm_device::TpmAddr::Unix(_) => None,
    };
    let sandbox = pid1::sandbox::forbid_writes(config.require_sandbox, tpm)?;
    timer.step("sandbox");

    // Capabilities down to what power-off needs, no_new_privs: now, while
    // this is the only thread but the console writer (capabilities are per
    // thread; every thread made from here on inherits the reduced sets).
    let privileges = pid1::privileges::drop_privileges(pid1.role())?;
    crate::info_always!(effective = privileges.effective.join(",").as_str(), bounding = privileges.bounding.join(",").as_str(); "capabilities dropped");
    // The console writer predates both steps: it confined itself when it
    // started, before it could wait on the console. No secret exists
    // before it is known to have.
    match logger::writer_confinement(std::time::Duration::from_secs(5)) {
        Some(Ok(())) => {}
        Some(Err(why)) => return Err(BootError::Pid1(pid1::Pid1Error::WriterNotConfined(why))),
        None => {
            return Err(BootError::Pid1(pid1::Pid1Error::WriterNotConfined(
                "it did not start within 5 s".into(),
            )))
        }
    }
    timer.step("privileges");

    // From here on the process holds keys: no core dumps, not dumpable,
    // and as PID 1 every page locked in memory.
    secrets::harden_process(pid1.role() == Role::Pid1)?;
    let lifecycle = Lifecycle::new(secrets::SecretStore::new()?, Arc::clone(&time), "none");
    lifecycle.set_max_drift(config.lifecycle.max_clock_drift);

    // 3. The enclave key; the call service's serving key and its request.
    let serving = match &config.service.listen {
        Some(_) => {
            let key = ServingKey::generate().map_err(BootError::Service)?;
            let csr = key
                .csr_pem(&config.service.server_name)
                .map_err(BootError::Service)?;
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
    let exchange = match (&config.verifier.addr, &config.vault.addr) {
        (Some(verifier_addr), vault_addr) => Some(Exchange {
            verifier: config.verifier.clone(),
            verifier_addr: verifier_addr.clone(),
            vault: vault_addr
                .as_ref()
                .map(|a| (config.vault.clone(), a.clone())),
            key: keys::EnclaveKey::generate()?,
            cert_request: serving.as_ref().map(|(_, r)| r.clone()),
            limits: Limits {
                max_token_ttl: config.verifier.max_token_ttl,
                max_drift: config.lifecycle.max_clock_drift,
            },
            time: Arc::clone(&time),
            tee: Arc::clone(&tee),
        }),
        (None, Some(_)) => {
            return Err(BootError::Service(
                "Vault is configured but no verifier: nothing to log in with".into(),
            ))
        }
        (None, None) => {
            crate::warn_always!(
                "no verifier configured: not attesting; no secrets will be provisioned"
            );
            None
        }
    };
    timer.step("key");

    // The audit trail, signed by the enclave key, from before the first
    // attestation (its first record is the lifecycle leaving `booting`).
    // The configuration guarantees a collector comes with a verifier.
    if let (Some(addr), Some(x)) = (&config.audit.collector, &exchange) {
        let audit = crate::audit::Audit::new(
            config.audit.clone(),
            Box::new(x.key.audit_signer()),
            Arc::clone(&time),
        );
        lifecycle.set_audit(Arc::clone(&audit));
        crate::audit::shipper::spawn(audit, addr.clone())
            .map_err(|e| BootError::Service(format!("cannot start the audit shipper: {e}")))?;
        crate::info_always!(collector = addr.to_string().as_str(), required = config.audit.required; "audit trail on");
    }

    // 4-8. Challenge, evidence bound to nonce, key and TLS session, token;
    // Vault login, secrets (response-wrapped) into the locked store, the
    // serving certificate signed by Vault's PKI, the Vault token revoked.
    // Transient failures are retried until the boot deadline; a denial is
    // final at once.
    let grant = match &exchange {
        Some(x) => {
            let g = supervisor::first(&lifecycle, x, &config.lifecycle, Mono::now())
                .map_err(BootError::Exchange)?;
            crate::info_always!(secrets = g.count, bound_by = g.bound_by, vault_lease_secs = g.lease.as_secs(); "secrets provisioned");
            timer.step("attest_and_provision");
            Some(g)
        }
        None => None,
    };
    // From now on the watchdog ends trust at its deadline, whatever else
    // is stuck.
    watchdog::spawn(Arc::clone(&lifecycle))
        .map_err(|e| BootError::Service(format!("cannot start the watchdog: {e}")))?;

    // 9. The call service on its port (TLS with the Vault-signed
    // certificate), then readiness to the host.
    let chain = grant.as_ref().and_then(|g| g.serving_chain.clone());
    let (call_service, serving_cert) = match (call_listener, serving, chain) {
        (Some(l), Some((key, _)), Some(chain)) => {
            let addr = l.local_addr();
            let (tls, cert) = key
                .server_config(
                    &chain,
                    &config.service.client_ca_pem,
                    Arc::clone(&lifecycle.time),
                )
                .map_err(BootError::Service)?;
            let svc = service::Service::new(config.service.clone(), tls, Arc::clone(&lifecycle))
                .map_err(BootError::Service)?;
            service::start(l, svc)
                .map_err(|e| BootError::Service(format!("cannot start the call service: {e}")))?;
            crate::info_always!(listen = addr.as_str(), workers = config.service.workers; "call service listening");
            timer.step("call_service");
            (Some(addr), Some(cert))
        }
        (None, _, _) => (None, None),
        _ => {
            return Err(BootError::Service(
                "the call service needs attestation and Vault to obtain its certificate".into(),
            ))
        }
    };
    let snapshot = lifecycle.snapshot();
    let report = serde_json::json!({
        "event": "ready",
        "version": env!("CARGO_PKG_VERSION"),
        "role": pid1.role().as_str(),
        "modules_loaded": modules,
        "sandbox": sandbox_str(sandbox),
        "capabilities": { "effective": privileges.effective, "bounding": privileges.bounding },
        "evidence_source": source_kind.as_str(),
        "attested": grant.as_ref().map(|g| serde_json::json!({
            "tee": g.attestation.tee,
            "expires_at": g.attestation.expires_at,
            "evidence_us": u64::try_from(g.attestation.evidence_time.as_micros()).unwrap_or(u64::MAX),
            "verifier_us": u64::try_from(g.attestation.verifier_time.as_micros()).unwrap_or(u64::MAX),
        })),
        "secrets_provisioned": snapshot.secrets,
        "secret_memory": format!("{:?}", lifecycle.backing()),
        "lifecycle": crate::lifecycle::snapshot_json(&snapshot),
        "clocksource": lifecycle.clocksource,
        "call_service": call_service,
        "control": listener.local_addr(),
        "uptime_s": logger::uptime_secs(),
        "steps_us": timer.as_json(),
    });
    let cid = control::report_ready(&config.host.ready, config.host.connect_timeout, &report)?;
    timer.step("ready");

    // 10. Hand-over: the supervisor renews before the deadline; the control
    // channel reports on its own thread and decides nothing.
    if let Some(x) = exchange {
        Supervisor::new(
            Arc::clone(&lifecycle),
            x,
            config.lifecycle.clone(),
            serving_cert,
        )
        .spawn()
        .map_err(|e| BootError::Service(format!("cannot start the supervisor: {e}")))?;
    }
    let (poweroff_rx, poweroff_tx) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| BootError::Service(format!("cannot make the power-off channel: {e}")))?;
    // The last set-up step: from here on every thread (the control thread
    // spawned below inherits it) runs under the syscall allow-list.
    pid1::seccomp::install()?;
    timer.step("seccomp");
    let status = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "role": pid1.role().as_str(),
        "cid": cid,
        "sandbox": sandbox_str(sandbox),
        "sandbox_state": pid1::sandbox::state(),
        "clocksource": lifecycle.clocksource,
        "steps_us": timer.as_json(),
    });
    let local = listener.local_addr();
    let ctx = control::Context {
        status,
        evidence: tee,
        lifecycle: Arc::clone(&lifecycle),
        secret_hash_query: config.secret_hash_query,
    };
    control::spawn(listener, config.host.io_timeout, ctx, poweroff_tx)
        .map_err(|e| BootError::Service(format!("cannot start the control channel: {e}")))?;
    crate::info_always!(control = local.as_str(); "ready");
    Ok(Ready {
        lifecycle,
        poweroff: poweroff_rx,
    })
}

/// Waits for a shutdown request (a signal, or `poweroff` on the control
/// channel).
fn serve(pid1: &mut Pid1, ready: &Ready) -> Outcome {
    match control::wait_for_shutdown(pid1.signals(), &ready.poweroff) {
        Ok(reason) => Outcome::Requested(reason),
        Err(e) => fatal(BootError::Control(e)),
    }
}

/// What the init holds once it is ready.
struct Ready {
    lifecycle: Arc<Lifecycle>,
    poweroff: std::os::unix::net::UnixStream,
}

fn sandbox_str(s: Sandbox) -> String {
    match s {
        Sandbox::Enforced { abi } => format!("landlock-abi-{abi}"),
        Sandbox::Unavailable => "unavailable".to_owned(),
    }
}

/// Why the boot failed; each variant is one step's error, its cause
/// attached (printed as one chain by [`logger::chain`]).
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A PID 1 duty.
    #[error(transparent)]
    Pid1(#[from] Pid1Error),
    /// The configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The host channel.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The evidence source.
    #[error("evidence")]
    Evidence(#[from] evidence::EvidenceError),
    /// The enclave key.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// Attestation and provisioning.
    #[error(transparent)]
    Exchange(ExchangeError),
    /// The secret store.
    #[error("secret store")]
    Secrets(#[from] secrets::SecretError),
    /// The call service.
    #[error("call service: {0}")]
    Service(String),
}

/// Maps a boot error to the way out: the whole cause chain is printed on
/// one line, and a process exits with 78 (EX_CONFIG) for a configuration
/// error, 1 otherwise.
fn fatal(e: BootError) -> Outcome {
    let status = match e {
        BootError::Config(_) => 78,
        _ => 1,
    };
    Outcome::Fatal {
        status,
        reason: logger::chain(&e),
    }
}

/// Process-mode arguments (PID 1 uses the defaults).
#[derive(Debug)]
struct Args {
    config: PathBuf,
    cmdline: String,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            config: PathBuf::from(config::IMAGE_CONFIG_PATH),
            cmdline: String::new(),
        }
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
        Timer {
            last: Instant::now(),
            steps: Vec::new(),
        }
    }

    fn step(&mut self, name: &'static str) {
        let now = Instant::now();
        let us = now.duration_since(self.last).as_micros();
        self.last = now;
        self.steps.push((name, us));
        crate::info_always!(step = name, us = u64::try_from(us).unwrap_or(u64::MAX); "boot step done");
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
        let a = Args::parse(vec![
            "--config".into(),
            "/x.toml".into(),
            "--cmdline".into(),
            "enclave.a=b".into(),
        ])
        .unwrap();
        assert_eq!(a.config, PathBuf::from("/x.toml"));
        assert_eq!(a.cmdline, "enclave.a=b");
        assert!(Args::parse(vec!["--config".into()])
            .unwrap_err()
            .contains("needs a UTF-8 value"));
        assert!(Args::parse(vec!["--bogus".into()])
            .unwrap_err()
            .contains("unknown argument"));
    }
}
