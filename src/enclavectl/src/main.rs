//! `enclavectl`: the operator's and the release pipeline's tools. Argument
//! parsing and dispatch only; the work happens in the library crates. One
//! module per subcommand, each with its clap arguments and a `run` function.
//!
//! Subcommands:
//! - `image build`: the reproducible initramfs ([`image`](mod@image_cmd)).
//! - `measure`: expected launch measurements, verifier policy snippet, OpenBao roles.
//! - `verifier`: the attestation verifier service.
//! - `dev-pki`: a throw-away development PKI.
//! - `verify`: offline appraisal, claims or denial as JSON (exit 0/1/2).
//! - `sim-psp`: the simulated secure processor (development only).
//! - `sim-paravisor`: a simulated Azure paravisor in front of swtpm (development only).
//! - `sim-nsm`: a simulated AWS Nitro Secure Module (development only).
//! - `call`: a client of the guest's call service (a call, its health, its metrics).
//! - `collateral fetch|show|prune`: the verifier's KDS/PCS collateral cache.
//! - `policy check`: which platforms a candidate policy would deny.
//! - `audit serve|verify|export|retain|pubkey`: the audit trail's collector and its checks.
//! - `evidence inspect|get`: parse evidence files; get evidence from this machine's TEE.
//! - `proxy`: the untrusted host proxy between TCP and the guest's vsock.
//! - `generate-docs` (hidden): manual pages and shell completions ([`docs_cmd`]).
//!
//! Every subcommand's help ends with an example ([`docs_cmd::with_examples`]).
//!
//! Every subcommand logs through [`logger`]: JSON lines on stderr, the level
//! from `--log-level`, else `RUST_LOG`, else `info`.

mod audit_cmd;
mod call_cmd;
mod collateral_cmd;
mod dev_pki_cmd;
mod docs_cmd;
mod evidence_cmd;
mod image_cmd;
mod logger;
mod measure_cmd;
mod nitro_inspect;
mod policy_cmd;
mod proxy_cmd;
mod sim_nsm_cmd;
mod sim_paravisor_cmd;
mod sim_psp_cmd;
mod verifier_cmd;
mod verify_cmd;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Subcommand};

/// Host-side tools of enclave-init: build and measure the guest image, run
/// the attestation verifier and the host proxy, appraise evidence offline,
/// manage the collateral cache and policies, talk to a guest's call service,
/// and (development only) simulate the secure processor and the Azure
/// paravisor.
#[derive(clap::Parser)]
#[command(version, about)]
struct Cli {
    /// Log level of every subcommand (JSON lines on stderr): off, error, warn, info, debug,
    /// trace, or `target=level` directives, comma-separated; overrides RUST_LOG [default: info].
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The guest image.
    #[command(subcommand)]
    Image(image_cmd::ImageCommand),
    /// Expected launch measurements (SEV-SNP, TDX, simulation), verifier policy and OpenBao roles.
    Measure(measure_cmd::Measure),
    /// The attestation verifier service (HTTPS).
    Verifier(verifier_cmd::Args),
    /// A throw-away development PKI (CA, TLS certificates, token and nonce keys).
    DevPki(dev_pki_cmd::Args),
    /// Inspect evidence files; get evidence from this machine's TEE.
    #[command(subcommand)]
    Evidence(evidence_cmd::EvidenceCommand),
    /// The untrusted host proxy: byte forwarding between TCP and the guest's vsock.
    Proxy(proxy_cmd::Args),
    /// Appraise evidence offline: the claims or the denial as JSON (exit 0 accepted, 1 denied, 2 usage).
    Verify(verify_cmd::Args),
    /// The simulated AMD secure processor (development only: TEE type `sim`).
    SimPsp(sim_psp_cmd::Args),
    /// A SIMULATED AWS Nitro Secure Module (development only, not AWS: claims `nitro-sim`).
    SimNsm(sim_nsm_cmd::Args),
    /// A simulated Azure paravisor in front of a provisioned swtpm (development only: claims `azure-sim`).
    SimParavisor(sim_paravisor_cmd::Args),
    /// A client of the guest's call service: a call (WAV and metadata), its health or its metrics (exit 0 2xx, 1 error answer, 2 usage/connection/TLS).
    Call(call_cmd::Args),
    /// The verifier's collateral cache: fetch (also into an offline directory), show, prune (exit 0/1/2).
    #[command(subcommand)]
    Collateral(collateral_cmd::CollateralCommand),
    /// Policies: check which platforms a candidate policy would deny (exit 0 none, 1 some, 2 usage).
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Write the manual pages and shell completions (a build step: scripts/install-deps).
    #[command(hide = true)]
    GenerateDocs(docs_cmd::Args),
    /// The audit trail: the collector (PostgreSQL), verify, export, retention.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
}

fn main() -> ExitCode {
    // The command tree with every subcommand's example (docs_cmd.rs).
    let cmd = docs_cmd::with_examples(Cli::command());
    let cli = match Cli::from_arg_matches(&cmd.clone().get_matches()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let env = std::env::var("RUST_LOG").ok();
    if let Err(e) =
        logger::filter_from(cli.log_level.as_deref(), env.as_deref()).and_then(logger::install)
    {
        eprintln!("enclavectl: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Image(c) => image_cmd::run(c),
        Command::Measure(a) => measure_cmd::run(a),
        Command::Verifier(a) => verifier_cmd::run(a),
        Command::DevPki(a) => dev_pki_cmd::run(a),
        Command::Proxy(a) => proxy_cmd::run(a),
        Command::Evidence(c) => evidence_cmd::run(c),
        Command::Verify(a) => verify_cmd::run(a),
        Command::SimPsp(a) => sim_psp_cmd::run(a),
        Command::SimNsm(a) => sim_nsm_cmd::run(a),
        Command::SimParavisor(a) => sim_paravisor_cmd::run(a),
        Command::Call(a) => call_cmd::run(a),
        Command::Collateral(c) => collateral_cmd::run(c),
        Command::Policy(c) => policy_cmd::run(c),
        Command::GenerateDocs(a) => docs_cmd::run(a, cmd),
        Command::Audit(c) => audit_cmd::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("enclavectl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The error type subcommands return: printed once, then exit status 1.
pub type CmdResult = Result<ExitCode, Box<dyn std::error::Error>>;

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
