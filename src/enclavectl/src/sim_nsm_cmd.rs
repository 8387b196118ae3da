//! `enclavectl sim-nsm`: a SIMULATED AWS Nitro Secure Module (development
//! and tests only; NOT AWS). Its documents chain to a root generated at each
//! start ("enclave-init SIMULATED NSM root, not AWS"), which no production
//! policy accepts (`Policy::production` refuses `nitro.sim_root_sha256`).
//!
//! ```text
//! enclavectl sim-nsm --listen unix:///PATH (--eif IMAGE.eif | --pcr N=HEX …)
//! ```
//!
//! A guest with `tee.source = "nitro"` and `tee.nsm = "unix:///PATH"` sends
//! its NSM requests here. On start it prints, one per line on stdout, then
//! serves until killed:
//!
//! ```text
//! sim-nsm root-sha256 <64 hex>     pin as the dev policy's nitro.sim_root_sha256
//! sim-nsm pcr<N> <96 hex>          each non-zero PCR reported
//! sim-nsm listening unix://<PATH>
//! sim-nsm ready
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use sim_psp::nsm::{SimNsm, PCR_LEN};

use crate::CmdResult;

/// Arguments of `enclavectl sim-nsm`.
#[derive(clap::Args)]
#[command(about = "A SIMULATED AWS Nitro Secure Module (not AWS; development and tests only)")]
pub struct Args {
    /// Where to listen: unix:///PATH.
    #[arg(long)]
    listen: String,
    /// Report the PCR0, PCR1 and PCR2 of this Enclave Image File.
    #[arg(long)]
    eif: Option<PathBuf>,
    /// N=HEX: report PCR N (0 to 15) as these 48 bytes (repeatable; after --eif).
    #[arg(long = "pcr")]
    pcrs: Vec<String>,
}

pub fn run(args: Args) -> CmdResult {
    let path = args
        .listen
        .strip_prefix("unix://")
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| format!("--listen {:?}: want unix:///PATH", args.listen))?;
    let mut pcrs = BTreeMap::new();
    if let Some(eif) = &args.eif {
        let bytes = std::fs::read(eif).map_err(|e| format!("{}: {e}", eif.display()))?;
        let p = crate::measure_cmd::nitro_pcrs(&bytes)
            .map_err(|e| format!("{}: {e}", eif.display()))?;
        pcrs.insert(0, p.pcr0);
        pcrs.insert(1, p.pcr1);
        pcrs.insert(2, p.pcr2);
        if let Some(p8) = p.pcr8 {
            pcrs.insert(8, p8);
        }
    }
    for rule in &args.pcrs {
        let (n, hex) = rule
            .split_once('=')
            .ok_or_else(|| format!("--pcr {rule:?}: want N=HEX"))?;
        let n: u8 = n
            .parse()
            .map_err(|_| format!("--pcr {rule:?}: bad index"))?;
        let value = crate::measure_cmd::parse_hex_48(hex)
            .ok_or_else(|| format!("--pcr {rule:?}: want {} hex digits", 2 * PCR_LEN))?;
        pcrs.insert(n, value);
    }
    log::warn!("sim-nsm: SIMULATED Nitro Secure Module: its documents prove nothing about hardware; no production policy accepts them");
    let nsm = Arc::new(SimNsm::generate(pcrs.clone())?);
    println!("sim-nsm root-sha256 {}", nsm.root_sha256());
    for (n, v) in &pcrs {
        println!("sim-nsm pcr{n} {}", crate::hex(v));
    }
    let _served = sim_psp::nsm::serve(Arc::clone(&nsm), std::path::Path::new(path))?;
    println!("sim-nsm listening unix://{path}");
    println!("sim-nsm ready");
    loop {
        std::thread::park();
    }
    #[allow(unreachable_code)]
    Ok(ExitCode::SUCCESS)
}
