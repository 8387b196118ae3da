//! `enclavectl verify`: appraise evidence offline with the same library as
//! the verifier service, print the claims or the denial as JSON.
//!
//! Exit status: 0 accepted, 1 denied, 2 usage error (bad arguments,
//! unreadable file, invalid policy). Evidence comes as a bundle, as an SNP
//! report with certificates (and CRLs), as a TDX quote with collateral
//! (and the TD's event log), or as Azure vTPM evidence (`--azure`:
//! trustee's `az-snp-vtpm`/`az-tdx-vtpm` JSON, versions 0, 1 and 2, or an
//! `azure-snp`/`azure-tdx` bundle, with `--collateral` for a TD quote). For
//! Azure evidence `--nonce` alone is the raw nonce the vTPM quote's
//! extraData (and `user-data`, as a prefix) must carry, as other attesters
//! use it; with `--enclave-key` and `--exporter` it is our verifier's nonce,
//! as for every TEE. An AWS Nitro attestation document (`--nitro`: the
//! COSE_Sign1 bytes or their base64 text, or a `nitro` bundle) is checked
//! against `--report-data` (its `user_data`) or, with `--nonce`,
//! `--enclave-key` and `--exporter`, against the recomputed REPORT_DATA
//! and also the nonce (`nonce`) and the key's SPKI (`public_key`); `--nonce`
//! alone is then the raw nonce the document must carry (1 to 1024 bytes),
//! for documents other attesters made.
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
#[command(group(ArgGroup::new("evidence").required(true).args(["bundle", "report", "quote", "azure", "nitro"])))]
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
    /// Collateral for `--quote`, or for the TD quote of `--azure` evidence
    /// (dcap-qvl QuoteCollateralV3 JSON).
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// The TD's CC event log for `--quote` (the CCEL log area,
    /// `/sys/firmware/acpi/tables/data/CCEL`), replayed against the quote's RTMRs.
    #[arg(long, value_name = "FILE", requires = "quote")]
    event_log: Option<PathBuf>,
    /// Azure vTPM evidence (JSON): trustee's az-snp-vtpm / az-tdx-vtpm
    /// evidence (v0 integer arrays, v1, v2 with user-data) or an
    /// azure-snp / azure-tdx evidence bundle.
    #[arg(long, value_name = "FILE")]
    azure: Option<PathBuf>,
    /// An AWS Nitro Enclaves attestation document: the COSE_Sign1 bytes as
    /// /dev/nsm returns them, or their base64 text.
    #[arg(long, value_name = "FILE")]
    nitro: Option<PathBuf>,
    /// The policy (TOML).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// The verifier's time (RFC 3339 or Unix seconds), instead of this machine's clock.
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// Collateral: documents from a cache or offline directory (and, with
    /// --kds-url/--pcs-url, fetched) take precedence over the bundle's.
    #[command(flatten)]
    sources: crate::collateral_cmd::Options,
    /// Expected REPORT_DATA, 128 hex digits.
    #[arg(long, value_name = "HEX", conflicts_with_all = ["nonce", "enclave_key", "exporter"])]
    report_data: Option<String>,
    /// Recompute the expected REPORT_DATA from the verifier nonce (64 hex digits) …
    /// (with `--azure` and neither of the next two: the raw nonce of the
    /// vTPM quote, 1 to 64 bytes in hex)
    #[arg(long, value_name = "HEX")]
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
    let o = &args.sources;
    let collateral =
        if o.collateral_cache.is_some() || o.collateral_offline.is_some() || o.names_endpoint() {
            match o.resolver(o.names_endpoint()) {
                Ok((r, _)) => r.resolve(&inputs.bundle, inputs.now),
                Err(e) => {
                    eprintln!("enclavectl verify: {e}");
                    return Ok(ExitCode::from(USAGE));
                }
            }
        } else {
            appraisal::Collateral::none()
        };
    let result = match &inputs.azure_nonce {
        _ if inputs.bundle.tee == Tee::Nitro => {
            let spki = inputs.enclave_spki.as_deref();
            let nonce = inputs.nitro_nonce.as_deref();
            let binding = appraisal::nitro::Binding {
                report_data: inputs.report_data.as_ref(),
                nonce,
                enclave_spki: spki,
            };
            appraisal::nitro::appraise(
                &inputs.bundle.evidence,
                &inputs.policy,
                inputs.now,
                &binding,
            )
            .0
        }
        Some(nonce) => appraiser.appraise_azure(
            &inputs.bundle,
            &inputs.policy,
            inputs.now,
            Some(appraisal::AzureFreshness::Nonce(nonce)),
            &collateral,
        ),
        None => appraiser.appraise(
            &inputs.bundle,
            &inputs.policy,
            inputs.now,
            inputs.report_data.as_ref(),
            &collateral,
        ),
    };
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
    /// `--azure` with `--nonce` alone: the raw vTPM nonce.
    azure_nonce: Option<Vec<u8>>,
    /// Nitro: the nonce the document's `nonce` must equal (the verifier
    /// nonce with `--enclave-key`/`--exporter`, else the raw `--nonce`).
    nitro_nonce: Option<Vec<u8>>,
    /// Nitro: the enclave key SPKI the document's `public_key` must equal.
    enclave_spki: Option<Vec<u8>>,
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
            Some(t) => appraisal::time::parse_now(t).map_err(|e| Usage(format!("--now {e}")))?,
            None => {
                let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
                i64::try_from(d.as_secs())?
            }
        };
        let mut azure_nonce = None;
        let mut nitro_nonce = None;
        let mut enclave_spki = None;
        let bundle = bundle(args)?;
        let nitro = bundle.tee == Tee::Nitro;
        let report_data = match (
            &args.report_data,
            &args.nonce,
            &args.enclave_key,
            &args.exporter,
        ) {
            (Some(rd), ..) => Some(hex_array::<64>("--report-data", rd)?),
            (None, Some(nonce), Some(key), Some(exporter)) => {
                let n = hex_array::<32>("--nonce", nonce)?;
                let spki = read(key)?;
                let rd = tee_formats::binding::report_data(
                    &n,
                    &spki,
                    &hex_array::<32>("--exporter", exporter)?,
                );
                nitro_nonce = Some(n.to_vec());
                enclave_spki = Some(spki);
                Some(rd)
            }
            (None, Some(nonce), None, None) if nitro => {
                let n = appraisal::hex::decode(nonce)
                    .filter(|n| (1..=1024).contains(&n.len()))
                    .ok_or_else(|| Usage("--nonce alone with a Nitro document must be 1 to 1024 bytes of hex".into()))?;
                nitro_nonce = Some(n);
                None
            }
            (None, Some(nonce), None, None) if args.azure.is_some() => {
                let n = appraisal::hex::decode(nonce)
                    .filter(|n| (1..=64).contains(&n.len()))
                    .ok_or_else(|| Usage("--nonce with --azure must be 1 to 64 bytes of hex".into()))?;
                azure_nonce = Some(n);
                None
            }
            (None, Some(_), _, _) => {
                return Err(Usage(
                    "--nonce needs --enclave-key and --exporter (alone, it is the raw vTPM nonce of --azure evidence)".into(),
                ))
            }
            _ => None,
        };
        if args.collateral.is_some() && args.quote.is_none() && args.azure.is_none() {
            return Err(Usage("--collateral goes with --quote or --azure".into()));
        }
        Ok(Inputs {
            bundle,
            policy,
            now,
            report_data,
            azure_nonce,
            nitro_nonce,
            enclave_spki,
        })
    }
}

fn bundle(args: &Args) -> Result<EvidenceBundle, Usage> {
    if let Some(path) = &args.bundle {
        return EvidenceBundle::from_json(crate::evidence_cmd::trim_text(&read(path)?))
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
    if let Some(path) = &args.nitro {
        let doc = appraisal::inputs::nitro_document(&read(path)?)
            .map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        return Ok(EvidenceBundle::new(Tee::Nitro, "enclavectl-verify", doc));
    }
    if let Some(path) = &args.azure {
        let mut b = appraisal::inputs::azure_evidence(&read(path)?)
            .map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        if let Some(c) = &args.collateral {
            let json: serde_json::Value = serde_json::from_slice(&read(c)?)
                .map_err(|e| Usage(format!("collateral {}: {e}", c.display())))?;
            b.tdx_collateral = Some(json);
        }
        return Ok(b);
    }
    match (&args.quote, &args.collateral) {
        (Some(q), Some(c)) => {
            let mut b = EvidenceBundle::new(Tee::Tdx, "enclavectl-verify", read(q)?);
            let json: serde_json::Value = serde_json::from_slice(&read(c)?)
                .map_err(|e| Usage(format!("collateral {}: {e}", c.display())))?;
            b.tdx_collateral = Some(json);
            if let Some(l) = &args.event_log {
                b.event_log = Some(Bytes(read(l)?));
            }
            Ok(b)
        }
        _ => Err(Usage(
            "one of --bundle, --report, --quote, --azure or --nitro is required".into(),
        )),
    }
}
