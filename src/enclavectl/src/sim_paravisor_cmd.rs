//! `enclavectl sim-paravisor`: a SIMULATED Azure paravisor in front of a
//! software TPM (development and tests only; its HCL reports hold reports
//! signed by the sim-psp chain, which no production policy accepts, and
//! which the verifier names `azure-sim`).
//!
//! ```text
//! enclavectl sim-paravisor --state DIR --measurement HEX [--policy 0x30000] \
//!     --tpm unix:///SWTPM_SOCKET --listen unix:///GUEST_TPM_SOCKET [--certs unix:///PATH]
//! ```
//!
//! The TPM behind `--tpm` (swtpm `--server type=unixio`) must be provisioned
//! as Azure's HCL lays it out first: an RSA-2048 restricted RSASSA/SHA-256
//! signing key persisted at 0x81000003, and NV index 0x01400001 defined by
//! the platform hierarchy (PPWRITE) with owner read. The guest then uses
//! `tee.tpm = "unix://GUEST_TPM_SOCKET"` and `tee.azure_certs =
//! "unix://CERTS"` (the simulation chain in IMDS THIM's shape).
//!
//! On start it prints, one per line on stdout, then serves until killed:
//!
//! ```text
//! sim-paravisor ark-sha256 <64 hex>     pin as the policy's sim.ark_sha256
//! sim-paravisor measurement <96 hex>    the "paravisor" launch digest ([azure.snp] measurements)
//! sim-paravisor ready
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use sim_psp::paravisor::{self, Paravisor};
use sim_psp::{Chain, SimPsp};

use crate::CmdResult;

/// Arguments of `enclavectl sim-paravisor`.
#[derive(clap::Args)]
pub struct Args {
    /// State directory of the simulation chain (shared with sim-psp).
    #[arg(long)]
    state: PathBuf,
    /// The launch measurement in the reports: 96 hex digits.
    #[arg(long)]
    measurement: String,
    /// Guest POLICY in the reports.
    #[arg(long, default_value = "0x30000")]
    policy: String,
    /// The provisioned software TPM: unix:///PATH.
    #[arg(long)]
    tpm: String,
    /// Where the guest's TPM commands arrive: unix:///PATH.
    #[arg(long)]
    listen: String,
    /// Where the simulation chain is served (THIM JSON): unix:///PATH.
    #[arg(long)]
    certs: Option<String>,
}

fn unix_path(flag: &str, s: &str) -> Result<PathBuf, String> {
    s.strip_prefix("unix://")
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .ok_or_else(|| format!("{flag} must be unix:///PATH, got {s:?}"))
}

pub fn run(args: Args) -> CmdResult {
    let hex = args.measurement.trim();
    let bytes = appraisal::hex::decode(hex)
        .filter(|b| b.len() == 48)
        .ok_or("--measurement must be 96 hex digits")?;
    let mut measurement = [0u8; 48];
    measurement.copy_from_slice(&bytes);
    let policy = match args.policy.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16)?,
        None => args.policy.parse()?,
    };
    let listen = unix_path("--listen", &args.listen)?;
    let certs = args
        .certs
        .as_deref()
        .map(|c| unix_path("--certs", c))
        .transpose()?;
    let tpm = args.tpm.parse::<evidence::tpm_device::TpmAddr>()?;
    let chain = Chain::load_or_create(&args.state).map_err(|e| paravisor::with_causes(&e))?;
    let psp = SimPsp::new(chain, measurement)
        .with_policy(policy)
        .map_err(|e| paravisor::with_causes(&e))?;
    let p = Arc::new(Paravisor::start(psp, tpm).map_err(|e| paravisor::with_causes(&e))?);
    paravisor::serve(Arc::clone(&p), &listen, certs.as_deref())
        .map_err(|e| paravisor::with_causes(&e))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "sim-paravisor ark-sha256 {}",
        crate::hex(&p.ark_sha256())
    )?;
    writeln!(
        out,
        "sim-paravisor measurement {}",
        crate::hex(&p.measurement())
    )?;
    writeln!(out, "sim-paravisor ready")?;
    out.flush()?;
    drop(out);
    loop {
        std::thread::park();
    }
}
