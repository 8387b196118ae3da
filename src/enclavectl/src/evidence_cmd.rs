//! `enclavectl evidence`: look at evidence, and get it on a TEE machine.
//!
//! - `inspect FILE`: an SNP report, a TDX quote, a TDREPORT, an SNP
//!   certificate table or an evidence bundle, printed as JSON (every field;
//!   byte fields in hex).
//! - `get --report-data HEX`: evidence for that REPORT_DATA from this
//!   machine's TEE (detected as the guest does, or `--source`), as a bundle.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use evidence::{EvidenceSource, Paths, SourceKind};
use serde_json::{json, Value};
use tee_formats::snp::cert_table::CertTable;
use tee_formats::snp::report::AttestationReport;
use tee_formats::tdx::quote::Quote;
use tee_formats::tdx::tdreport::TdReport;

use crate::CmdResult;

#[derive(Subcommand)]
pub enum EvidenceCommand {
    /// Print a report, quote, TDREPORT, certificate table or bundle as JSON.
    Inspect {
        /// The file.
        file: PathBuf,
    },
    /// Get evidence for REPORT_DATA from this machine's TEE (an operator tool).
    Get {
        /// 64 bytes of REPORT_DATA, hex (shorter values are zero-padded).
        #[arg(long)]
        report_data: String,
        /// configfs-tsm, sev-guest, tdx-guest, coco-aa or sim; default: detect (never sim).
        #[arg(long)]
        source: Option<String>,
        /// With --source sim: the sim-psp address (unix:///path).
        #[arg(long)]
        sim_psp: Option<String>,
        /// Write the bundle here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(c: EvidenceCommand) -> CmdResult {
    match c {
        EvidenceCommand::Inspect { file } => {
            let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let v = inspect(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Get { report_data, source, sim_psp, out } => {
            let rd = parse_report_data(&report_data)?;
            let paths = Paths::default();
            let kind = match source.as_deref() {
                Some(s) => s.parse::<SourceKind>()?,
                None => evidence::detect(&paths)?,
            };
            let mut src: Box<dyn EvidenceSource> = match kind {
                SourceKind::ConfigfsTsm => Box::new(evidence::configfs_tsm::ConfigfsTsm::new(&paths.tsm_root)),
                SourceKind::SevGuest => Box::new(evidence::sev_guest::SevGuest::open(&paths.sev_guest)),
                SourceKind::TdxGuest => Box::new(evidence::tdx_guest::TdxGuest::open(&paths.tdx_guest, &paths.tsm_root)),
                SourceKind::CocoAa => Box::new(evidence::coco_aa::CocoAa::new(paths.coco_aa.clone(), Duration::from_secs(30))),
                SourceKind::Sim => {
                    let addr: transport::Addr = sim_psp.ok_or("--source sim needs --sim-psp unix:///PATH")?.parse()?;
                    Box::new(evidence::sim::SimPsp::new(addr, Duration::from_secs(30)))
                }
            };
            let bundle = src.collect(&rd)?;
            let json = bundle.to_json();
            match out {
                Some(p) => std::fs::write(&p, &json).map_err(|e| format!("{}: {e}", p.display()))?,
                None => println!("{}", String::from_utf8_lossy(&json)),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_report_data(hex: &str) -> Result<[u8; 64], String> {
    let hex = hex.trim();
    if hex.len() > 128 || !hex.len().is_multiple_of(2) {
        return Err(format!("--report-data: at most 128 hex digits, an even number (got {})", hex.len()));
    }
    let mut out = [0u8; 64];
    for (i, b) in out.iter_mut().enumerate().take(hex.len() / 2) {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| "--report-data is not hex".to_owned())?;
    }
    Ok(out)
}

/// The JSON view of any evidence file, recognised by its form.
pub fn inspect(bytes: &[u8]) -> Result<Value, String> {
    if bytes.first() == Some(&b'{') {
        let b = wire::EvidenceBundle::from_json(bytes).map_err(|e| format!("not an evidence bundle: {e}"))?;
        let evidence = match b.tee {
            wire::Tee::Snp | wire::Tee::Sim => inspect_snp(&b.evidence)?,
            wire::Tee::Tdx => inspect_quote(&b.evidence)?,
        };
        let certs: Vec<Value> = b
            .certificates
            .iter()
            .map(|c| json!({"kind": c.kind, "der_sha256": crate::hex(&<sha2::Sha256 as sha2::Digest>::digest(&c.der[..])), "der_len": c.der.len()}))
            .collect();
        return Ok(json!({
            "kind": "evidence-bundle", "version": b.version, "tee": b.tee, "provider": b.provider,
            "evidence": evidence, "certificates": certs, "crls": b.crls.len(), "tdx_collateral": b.tdx_collateral.is_some(),
        }));
    }
    match bytes.len() {
        1184 => inspect_snp(bytes),
        1024 => {
            let r = TdReport::parse(bytes).map_err(|e| e.to_string())?;
            Ok(json!({"kind": "tdx-tdreport", "report": r}))
        }
        _ => {
            if let Ok(q) = inspect_quote(bytes) {
                return Ok(q);
            }
            let t = CertTable::parse(bytes).map_err(|e| format!("not a report, quote, TDREPORT, certificate table or bundle ({e})"))?;
            Ok(json!({"kind": "snp-cert-table", "table": t}))
        }
    }
}

fn inspect_snp(bytes: &[u8]) -> Result<Value, String> {
    let r = AttestationReport::parse(bytes).map_err(|e| format!("SNP report: {e}"))?;
    Ok(json!({"kind": "snp-report", "report": r}))
}

fn inspect_quote(bytes: &[u8]) -> Result<Value, String> {
    let q = Quote::parse(bytes).map_err(|e| format!("TDX quote: {e}"))?;
    Ok(json!({"kind": "tdx-quote", "quote": q}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture from `$ENCLAVE_FIXTURES`, else the repository's sibling `shared/fixtures`.
    fn fixture(rel: &str) -> Vec<u8> {
        let dir = std::env::var("ENCLAVE_FIXTURES").unwrap_or_else(|_| format!("{}/../../../shared/fixtures", env!("CARGO_MANIFEST_DIR")));
        std::fs::read(format!("{dir}/{rel}")).unwrap_or_else(|e| panic!("fixture {dir}/{rel}: {e} (set ENCLAVE_FIXTURES)"))
    }

    #[test]
    fn inspects_every_kind_of_fixture() {
        let r = inspect(&fixture("snp/milan-v2-virtee/report.bin")).unwrap();
        assert_eq!(r["kind"], "snp-report");
        assert_eq!(
            r["report"]["measurement"],
            "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"
        );
        assert_eq!(inspect(&fixture("tdx/dcap-qvl/tdx_quote")).unwrap()["kind"], "tdx-quote");
        assert_eq!(inspect(&fixture("tdx/intel-dcap/tdreport_for_test.dat")).unwrap()["kind"], "tdx-tdreport");
        let mut b = wire::EvidenceBundle::new(wire::Tee::Snp, "test", fixture("snp/milan-v2-virtee/report.bin"));
        b.certificates.push(wire::Certificate { kind: wire::CertKind::Vcek, der: fixture("snp/milan-v2-virtee/vcek.der").into() });
        let v = inspect(&b.to_json()).unwrap();
        assert_eq!(v["kind"], "evidence-bundle");
        assert_eq!(v["certificates"][0]["kind"], "vcek");
        assert!(inspect(b"garbage").unwrap_err().contains("not a report"));
    }

    #[test]
    fn report_data_is_hex_and_bounded() {
        assert_eq!(parse_report_data("0102").unwrap()[..3], [1, 2, 0]);
        assert!(parse_report_data("zz").is_err());
        assert!(parse_report_data(&"00".repeat(65)).is_err());
    }
}
