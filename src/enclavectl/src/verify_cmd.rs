//! `enclavectl verify`: appraise evidence offline with the same library as
//! the verifier service, print the claims or the denial as JSON.
//!
//! Exit status: 0 accepted, 1 denied, 2 usage error (bad arguments,
//! unreadable file, invalid policy). Evidence comes as a bundle, as an SNP
//! report with certificates (and CRLs), or as a TDX quote with collateral.
//! Time is this machine's clock unless `--now` says otherwise: here the
//! operator's machine is the verifier, and the guest's clock is never used.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use appraisal::{Appraiser, Policy};
use clap::ArgGroup;
use wire::{Bytes, EvidenceBundle, Tee};

use crate::CmdResult;

/// Exit status of a usage error.
const USAGE: u8 = 2;

/// Arguments of `enclavectl verify`.
#[derive(clap::Args)]
#[command(group(ArgGroup::new("evidence").required(true).args(["bundle", "report", "quote"])))]
pub struct Args {
    /// An evidence bundle (JSON, `enclave-init/evidence-bundle` v1).
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// An SEV-SNP ATTESTATION_REPORT (1184 bytes).
    #[arg(long, value_name = "FILE", requires = "cert")]
    report: Option<PathBuf>,
    /// Certificates for `--report`, PEM or DER; the role (VCEK, VLEK, ASK,
    /// ASVK, ARK) is read from the subject. Repeatable.
    #[arg(long, value_name = "FILE", requires = "report")]
    cert: Vec<PathBuf>,
    /// CRLs for `--report` (PEM or DER). Repeatable.
    #[arg(long, value_name = "FILE", requires = "report")]
    crl: Vec<PathBuf>,
    /// TEE type of `--report`: `snp`, or `sim` for a simulated PSP's report.
    #[arg(long, value_name = "TEE", default_value = "snp", value_parser = ["snp", "sim"], requires = "report")]
    tee: String,
    /// A TDX quote (v4 or v5).
    #[arg(long, value_name = "FILE", requires = "collateral")]
    quote: Option<PathBuf>,
    /// Collateral for `--quote` (dcap-qvl QuoteCollateralV3 JSON).
    #[arg(long, value_name = "FILE", requires = "quote")]
    collateral: Option<PathBuf>,
    /// The policy (TOML).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// The verifier's time (RFC 3339), instead of this machine's clock.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    /// Expected REPORT_DATA, 128 hex digits.
    #[arg(long, value_name = "HEX", conflicts_with_all = ["nonce", "enclave_key", "exporter"])]
    report_data: Option<String>,
    /// Recompute the expected REPORT_DATA from the verifier nonce (64 hex digits) …
    #[arg(long, value_name = "HEX", requires_all = ["enclave_key", "exporter"])]
    nonce: Option<String>,
    /// … the enclave key's DER SubjectPublicKeyInfo …
    #[arg(long, value_name = "FILE", requires_all = ["nonce", "exporter"])]
    enclave_key: Option<PathBuf>,
    /// … and the TLS exporter value (64 hex digits).
    #[arg(long, value_name = "HEX", requires_all = ["nonce", "enclave_key"])]
    exporter: Option<String>,
}

/// A usage problem: printed, exit status 2.
struct Usage(String);

impl<E: std::fmt::Display> From<E> for Usage {
    fn from(e: E) -> Self {
        Usage(e.to_string())
    }
}

pub fn run(args: Args) -> CmdResult {
    let inputs = match Inputs::read(&args) {
        Ok(i) => i,
        Err(Usage(msg)) => {
            eprintln!("enclavectl verify: {msg}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let appraiser = Appraiser::new()?;
    let result = appraiser.appraise(
        &inputs.bundle,
        &inputs.policy,
        inputs.now,
        inputs.report_data.as_ref(),
    );
    let (json, code) = match result {
        Ok(claims) => (serde_json::to_string_pretty(&claims)?, ExitCode::SUCCESS),
        Err(denial) => {
            let wire: wire::verifier::Denial = denial.into();
            (serde_json::to_string_pretty(&wire)?, ExitCode::FAILURE)
        }
    };
    println!("{json}");
    Ok(code)
}

struct Inputs {
    bundle: EvidenceBundle,
    policy: Policy,
    now: i64,
    report_data: Option<[u8; 64]>,
}

fn read(path: &Path) -> Result<Vec<u8>, Usage> {
    std::fs::read(path).map_err(|e| Usage(format!("cannot read {}: {e}", path.display())))
}

fn hex_array<const N: usize>(flag: &str, s: &str) -> Result<[u8; N], Usage> {
    appraisal::hex::decode(s)
        .and_then(|v| <[u8; N]>::try_from(v).ok())
        .ok_or_else(|| Usage(format!("{flag} must be {} hex digits", 2 * N)))
}

impl Inputs {
    fn read(args: &Args) -> Result<Inputs, Usage> {
        let policy_bytes = read(&args.policy)?;
        let policy = Policy::from_toml(&policy_bytes).map_err(|e| {
            let cause = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            Usage(format!("policy {}: {e}{cause}", args.policy.display()))
        })?;
        let now = match &args.now {
            Some(t) => appraisal::parse_rfc3339(t)
                .ok_or_else(|| Usage(format!("--now {t:?} is not RFC 3339")))?,
            None => {
                let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
                i64::try_from(d.as_secs())?
            }
        };
        let report_data = match (
            &args.report_data,
            &args.nonce,
            &args.enclave_key,
            &args.exporter,
        ) {
            (Some(rd), ..) => Some(hex_array::<64>("--report-data", rd)?),
            (None, Some(nonce), Some(key), Some(exporter)) => {
                Some(tee_formats::binding::report_data(
                    &hex_array::<32>("--nonce", nonce)?,
                    &read(key)?,
                    &hex_array::<32>("--exporter", exporter)?,
                ))
            }
            _ => None,
        };
        Ok(Inputs {
            bundle: bundle(args)?,
            policy,
            now,
            report_data,
        })
    }
}

fn bundle(args: &Args) -> Result<EvidenceBundle, Usage> {
    if let Some(path) = &args.bundle {
        return EvidenceBundle::from_json(&read(path)?)
            .map_err(|e| Usage(format!("bundle {}: {e}", path.display())));
    }
    if let Some(path) = &args.report {
        let tee = if args.tee == "sim" {
            Tee::Sim
        } else {
            Tee::Snp
        };
        let mut b = EvidenceBundle::new(tee, "enclavectl-verify", read(path)?);
        for c in &args.cert {
            b.certificates.extend(
                appraisal::inputs::certificates(&read(c)?)
                    .map_err(|e| Usage(format!("{}: {e}", c.display())))?,
            );
        }
        for c in &args.crl {
            b.crls.extend(
                appraisal::inputs::crls(&read(c)?)
                    .map_err(|e| Usage(format!("{}: {e}", c.display())))?
                    .into_iter()
                    .map(Bytes),
            );
        }
        return Ok(b);
    }
    match (&args.quote, &args.collateral) {
        (Some(q), Some(c)) => {
            let mut b = EvidenceBundle::new(Tee::Tdx, "enclavectl-verify", read(q)?);
            let json: serde_json::Value = serde_json::from_slice(&read(c)?)
                .map_err(|e| Usage(format!("collateral {}: {e}", c.display())))?;
            b.tdx_collateral = Some(json);
            Ok(b)
        }
        _ => Err(Usage(
            "one of --bundle, --report or --quote is required".into(),
        )),
    }
}
