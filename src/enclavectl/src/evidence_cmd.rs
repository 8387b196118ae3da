//! `enclavectl evidence`: look at evidence, and get it on a TEE machine.
//!
//! - `inspect FILE`: an SNP report, a TDX quote, a TDREPORT, an SNP
//!   certificate table, a TDX CC event log (the CCEL log area) or its ACPI
//!   table, an Azure HCL report, a TPMS_ATTEST, an evidence bundle or Azure
//!   vTPM evidence JSON (trustee v0/v1/v2), printed as JSON (every field;
//!   byte fields in hex), with the TCB component by component (SEV-SNP:
//!   bootloader, TEE, SNP, microcode, FMC of each TCB_VERSION; TDX:
//!   TEE_TCB_SVN, and the PCK's FMSPC, SGX components and PCE SVN). An event
//!   log is shown event by event (number, RTMR, type, every digest, what it
//!   measures) with the RTMRs it replays to; in a TDX bundle the replay is
//!   compared with the quote's RTMRs. For Azure evidence: the HCL header, the
//!   hardware report, the variable data (parsed JSON, its hex and SHA-256),
//!   the quote, its signature and the PCRs. A file that starts like a TDX
//!   quote (version 4/5, TEE type 0x81) is reported as a malformed quote when
//!   it does not parse. A bundle may carry a UTF-8 BOM and surrounding
//!   whitespace. An AWS Nitro attestation document (COSE_Sign1 bytes or
//!   their base64 text): module id, timestamp (RFC 3339), digest, the
//!   non-zero PCRs (and which are zero), the measurement claim it would
//!   get, the chain with subjects and validity windows, and the sizes of
//!   user_data, nonce and public_key. Exit status: 0 shown, 1 not
//!   recognised, 2 empty or unreadable.
//! - `get --report-data HEX`: evidence for that REPORT_DATA from this
//!   machine's TEE (detected as the guest does, or `--source`), as a bundle.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use evidence::{EvidenceSource, Paths, SourceKind};
use serde_json::{json, Value};
use tee_formats::eventlog::{CcelTable, EventLog};
use tee_formats::snp::cert_table::CertTable;
use tee_formats::snp::report::AttestationReport;
use tee_formats::snp::Generation;
use tee_formats::tdx::quote::{Quote, QuoteBody};
use tee_formats::tdx::tdreport::TdReport;

use crate::CmdResult;

#[derive(Subcommand)]
pub enum EvidenceCommand {
    /// Print a report, quote, TDREPORT, certificate table, CC event log (CCEL) or bundle as JSON.
    Inspect {
        /// The file.
        file: PathBuf,
    },
    /// Get evidence for REPORT_DATA from this machine's TEE (an operator tool).
    Get {
        /// 64 bytes of REPORT_DATA, hex (shorter values are zero-padded).
        #[arg(long)]
        report_data: String,
        /// configfs-tsm, sev-guest, tdx-guest, coco-aa, azure-vtpm, nitro or sim; default: detect (never sim).
        #[arg(long)]
        source: Option<String>,
        /// With --source sim: the sim-psp address (unix:///path).
        #[arg(long)]
        sim_psp: Option<String>,
        /// The TPM probed for, and used by, azure-vtpm (`/dev/tpmrm0`, or unix:///path).
        #[arg(long, default_value = "/dev/tpmrm0")]
        tpm: String,
        /// With azure-vtpm: where a host relay serves IMDS's VCEK chain (THIM JSON).
        #[arg(long)]
        azure_certs: Option<String>,
        /// With nitro: the NSM (`/dev/nsm`, or unix:///path of the SIMULATED NSM).
        #[arg(long, default_value = "/dev/nsm")]
        nsm: String,
        /// Write the bundle here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(c: EvidenceCommand) -> CmdResult {
    match c {
        EvidenceCommand::Inspect { file } => {
            let bytes = match std::fs::read(&file) {
                Ok(b) if trim_text(&b).is_empty() => {
                    eprintln!("enclavectl evidence inspect: {} is empty", file.display());
                    return Ok(ExitCode::from(2));
                }
                Ok(b) => b,
                Err(e) => {
                    eprintln!("enclavectl evidence inspect: {}: {e}", file.display());
                    return Ok(ExitCode::from(2));
                }
            };
            let v = inspect(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Get {
            report_data,
            source,
            sim_psp,
            tpm,
            azure_certs,
            nsm,
            out,
        } => {
            let rd = parse_report_data(&report_data)?;
            let paths = Paths {
                tpm: tpm.parse()?,
                ..Paths::default()
            };
            let kind = match source.as_deref() {
                Some(s) => s.parse::<SourceKind>()?,
                None => evidence::detect(&paths)?,
            };
            let mut src: Box<dyn EvidenceSource> = match kind {
                SourceKind::ConfigfsTsm => {
                    Box::new(evidence::configfs_tsm::ConfigfsTsm::new(&paths.tsm_root))
                }
                SourceKind::SevGuest => {
                    Box::new(evidence::sev_guest::SevGuest::open(&paths.sev_guest))
                }
                SourceKind::TdxGuest => Box::new(evidence::tdx_guest::TdxGuest::open(
                    &paths.tdx_guest,
                    &paths.tsm_root,
                )),
                SourceKind::CocoAa => Box::new(evidence::coco_aa::CocoAa::new(
                    paths.coco_aa.clone(),
                    Duration::from_secs(30),
                )),
                SourceKind::AzureVtpm => {
                    let certs = azure_certs
                        .map(|a| a.parse::<transport::Addr>())
                        .transpose()?;
                    let endorsements = evidence::azure_vtpm::Endorsements {
                        certs,
                        td_quote: None,
                    };
                    Box::new(evidence::azure_vtpm::AzureVtpm::new(
                        paths.tpm.clone(),
                        endorsements,
                        Duration::from_secs(30),
                    ))
                }
                SourceKind::Nitro => Box::new(evidence::nsm::Nsm::new(
                    nsm.parse()?,
                    Duration::from_secs(30),
                )),
                SourceKind::Sim => {
                    let addr: transport::Addr = sim_psp
                        .ok_or("--source sim needs --sim-psp unix:///PATH")?
                        .parse()?;
                    Box::new(evidence::sim::SimPsp::new(addr, Duration::from_secs(30)))
                }
            };
            let bundle = src.collect(&rd)?;
            let json = bundle.to_json();
            match out {
                Some(p) => {
                    std::fs::write(&p, &json).map_err(|e| format!("{}: {e}", p.display()))?
                }
                None => println!("{}", String::from_utf8_lossy(&json)),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_report_data(hex: &str) -> Result<[u8; 64], String> {
    let hex = hex.trim();
    if hex.len() > 128 || !hex.len().is_multiple_of(2) {
        return Err(format!(
            "--report-data: at most 128 hex digits, an even number (got {})",
            hex.len()
        ));
    }
    let mut out = [0u8; 64];
    for (i, b) in out.iter_mut().enumerate().take(hex.len() / 2) {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| "--report-data is not hex".to_owned())?;
    }
    Ok(out)
}

/// A text file's content without a UTF-8 BOM and surrounding whitespace,
/// when what remains is JSON (`{`); binary files are returned unchanged
/// (a report may well start or end with a byte that looks like a space).
pub fn trim_text(bytes: &[u8]) -> &[u8] {
    let b = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let b = b.trim_ascii();
    if b.first() == Some(&b'{') || b.is_empty() {
        b
    } else {
        bytes
    }
}

/// True when `bytes` start like a TDX quote: version 4 or 5 and TEE type
/// 0x81 (`tee-formats.md` §3.2 header).
fn looks_like_tdx_quote(bytes: &[u8]) -> bool {
    let version = bytes.get(0..2).map(|v| u16::from_le_bytes([v[0], v[1]]));
    let tee = bytes
        .get(4..8)
        .map(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]));
    matches!(version, Some(4 | 5)) && tee == Some(0x81)
}

/// The JSON view of any evidence file, recognised by its form.
pub fn inspect(bytes: &[u8]) -> Result<Value, String> {
    let text = trim_text(bytes);
    if text.first() == Some(&b'{') {
        let is_bundle =
            serde_json::from_slice::<Value>(text).is_ok_and(|v| v.get("format").is_some());
        let b = if is_bundle {
            wire::EvidenceBundle::from_json(text)
                .map_err(|e| format!("not an evidence bundle: {e}"))?
        } else {
            appraisal::inputs::azure_evidence(text)
                .map_err(|e| format!("neither an evidence bundle nor {e}"))?
        };
        let evidence = match b.tee {
            wire::Tee::Snp | wire::Tee::Sim => inspect_snp(&b.evidence)?,
            wire::Tee::Tdx => inspect_quote(&b.evidence)?,
            wire::Tee::AzureSnp | wire::Tee::AzureTdx => inspect_hcl(&b.evidence)?,
            wire::Tee::Nitro => crate::nitro_inspect::inspect(&b.evidence)?,
        };
        let event_log = match &b.event_log {
            None => Value::Null,
            Some(log) => {
                let mut v = inspect_event_log(log)?;
                if let (Some(obj), Ok(q)) = (v.as_object_mut(), Quote::parse(&b.evidence)) {
                    let quoted = quote_rtmrs(&q);
                    let replayed = EventLog::parse(log).ok().and_then(|l| l.replay().ok());
                    let matches: Vec<bool> = match replayed {
                        Some(r) => r.iter().zip(quoted.iter()).map(|(a, b)| a == b).collect(),
                        None => Vec::new(),
                    };
                    obj.insert(
                        "quote_rtmrs".to_owned(),
                        json!(quoted.iter().map(|r| crate::hex(r)).collect::<Vec<_>>()),
                    );
                    obj.insert("replay_matches_quote".to_owned(), json!(matches));
                }
                v
            }
        };
        let tpm = b.tpm.as_ref().map(inspect_tpm).transpose()?;
        let certs: Vec<Value> = b
            .certificates
            .iter()
            .map(|c| json!({"kind": c.kind, "der_sha256": crate::hex(&<sha2::Sha256 as sha2::Digest>::digest(&c.der[..])), "der_len": c.der.len()}))
            .collect();
        return Ok(json!({
            "kind": "evidence-bundle", "version": b.version, "tee": b.tee, "provider": b.provider,
            "evidence": evidence, "certificates": certs, "crls": b.crls.len(), "tdx_collateral": b.tdx_collateral.is_some(),
            "event_log": event_log,
            "tpm": tpm,
        }));
    }
    // A Nitro document: base64 text of a COSE_Sign1 is shown (or its
    // error); raw bytes that merely start like one (0x84, 0xd2) only when
    // they parse, so other binary forms still get their own view.
    let raw_cose = matches!(bytes.first(), Some(0x84 | 0xd2));
    if let Ok(doc) = appraisal::inputs::nitro_document(bytes) {
        if !raw_cose || tee_formats::nitro::Document::parse(&doc).is_ok() {
            return crate::nitro_inspect::inspect(&doc);
        }
    }
    if bytes.get(32..48) == Some(b"Spec ID Event03\0") {
        return inspect_event_log(bytes);
    }
    if bytes.len() == tee_formats::eventlog::ccel::CCEL_TABLE_SIZE && bytes.starts_with(b"CCEL") {
        let t = CcelTable::parse(bytes).map_err(|e| e.to_string())?;
        return Ok(json!({"kind": "ccel-table", "table": t, "tdx": t.is_tdx()}));
    }
    if bytes.starts_with(&tee_formats::azure::SIGNATURE) {
        return inspect_hcl(bytes);
    }
    if bytes.starts_with(&tee_formats::tpm::TPM_GENERATED_VALUE.to_be_bytes()) {
        let a = tee_formats::tpm::Attest::parse(bytes).map_err(|e| format!("TPMS_ATTEST: {e}"))?;
        return Ok(json!({"kind": "tpm-quote", "quote": a}));
    }
    if looks_like_tdx_quote(bytes) {
        return inspect_quote(bytes).map_err(|e| format!("malformed {e}"));
    }
    match bytes.len() {
        1184 => inspect_snp(bytes),
        1024 => {
            let r = TdReport::parse(bytes).map_err(|e| e.to_string())?;
            Ok(json!({"kind": "tdx-tdreport", "report": r}))
        }
        _ => {
            let t = CertTable::parse(bytes).map_err(|e| {
                format!("not a report, quote, TDREPORT, certificate table or bundle ({e})")
            })?;
            Ok(json!({"kind": "snp-cert-table", "table": t}))
        }
    }
}

/// An Azure HCL report: every field, and the variable data parsed as JSON
/// (when it is JSON) next to the hex bytes that were hashed.
fn inspect_hcl(bytes: &[u8]) -> Result<Value, String> {
    let h = tee_formats::azure::HclReport::parse(bytes).map_err(|e| format!("HCL report: {e}"))?;
    let var_json = serde_json::from_slice::<Value>(&h.variable_data).ok();
    let binding_holds = h.hardware_report.report_data() == &h.expected_report_data();
    Ok(
        json!({"kind": "azure-hcl-report", "report": h, "variable_data_json": var_json, "report_data_binds_variable_data": binding_holds}),
    )
}

/// The vTPM part of an Azure bundle: quote, signature, PCRs, TD quote.
fn inspect_tpm(t: &wire::TpmEvidence) -> Result<Value, String> {
    let quote =
        tee_formats::tpm::Attest::parse(&t.quote).map_err(|e| format!("vTPM quote: {e}"))?;
    let signature = tee_formats::tpm::Signature::parse(&t.signature)
        .map_err(|e| format!("vTPM quote signature: {e}"))?;
    let pcrs: Vec<String> = t.pcrs.iter().map(|p| crate::hex(p)).collect();
    let digest = crate::hex(&<sha2::Sha256 as sha2::Digest>::digest(
        t.pcrs
            .iter()
            .flat_map(|p| p.iter().copied())
            .collect::<Vec<u8>>(),
    ));
    let td_quote = t.td_quote.as_ref().map(|q| inspect_quote(q)).transpose()?;
    Ok(
        json!({"quote": quote, "signature": signature, "pcrs": pcrs, "pcrs_sha256": digest, "td_quote": td_quote}),
    )
}

fn inspect_snp(bytes: &[u8]) -> Result<Value, String> {
    let r = AttestationReport::parse(bytes).map_err(|e| format!("SNP report: {e}"))?;
    // v3+ reports name their CPU; a v2 report is Milan or Genoa, whose
    // TCB_VERSION layouts are the same.
    let (generation, layout) = match r.cpuid().map(|c| Generation::from_cpuid(c.family, c.model)) {
        Some(Ok(g)) => (g, g.kds_product().to_owned()),
        _ => (
            Generation::Milan,
            "Milan/Genoa (version 2 report: no CPUID)".to_owned(),
        ),
    };
    let tcb = |t: tee_formats::snp::TcbVersion| {
        let c = t.decode(generation);
        let mut v = json!({"bootloader": c.boot_loader, "tee": c.tee, "snp": c.snp, "microcode": c.microcode});
        if let Some(f) = c.fmc {
            v["fmc"] = json!(f);
        }
        v
    };
    Ok(json!({
        "kind": "snp-report",
        "tcb": {
            "layout": layout,
            "reported": tcb(r.reported_tcb),
            "current": tcb(r.current_tcb),
            "committed": tcb(r.committed_tcb),
            "launch": tcb(r.launch_tcb),
        },
        "report": r,
    }))
}

/// A CC event log: every event, and the RTMRs it replays to.
fn inspect_event_log(bytes: &[u8]) -> Result<Value, String> {
    let log = EventLog::parse(bytes).map_err(|e| format!("CC event log: {e}"))?;
    let replayed = log.replay().map_err(|e| format!("CC event log: {e}"))?;
    let components: Vec<Value> = log
        .events
        .iter()
        .filter_map(|e| {
            e.component()
                .filter(|c| e.rtmr() == Some(c.rtmr()))
                .map(|c| json!({"component": c.as_str(), "event": e.number, "rtmr": e.rtmr(), "sha384": crate::hex(&e.sha384)}))
        })
        .collect();
    Ok(json!({
        "kind": "cc-event-log",
        "log": log,
        "replayed_rtmrs": replayed.iter().map(|r| crate::hex(r)).collect::<Vec<_>>(),
        "components": components,
    }))
}

fn quote_rtmrs(q: &Quote) -> [[u8; 48]; 4] {
    use tee_formats::tdx::quote::QuoteBody;
    match &q.body {
        QuoteBody::Td10(b) => b.rtmr,
        QuoteBody::Td15(b) => b.td10.rtmr,
        QuoteBody::Td15Ex(b) => b.td15.td10.rtmr,
    }
}

fn inspect_quote(bytes: &[u8]) -> Result<Value, String> {
    let q = Quote::parse(bytes).map_err(|e| format!("TDX quote: {e}"))?;
    let (svn, svn2) = match &q.body {
        QuoteBody::Td10(b) => (b.tee_tcb_svn, None),
        QuoteBody::Td15(b) => (b.td10.tee_tcb_svn, Some(b.tee_tcb_svn2)),
        QuoteBody::Td15Ex(b) => (b.td15.td10.tee_tcb_svn, Some(b.td15.tee_tcb_svn2)),
    };
    let mut tcb = json!({"tee_tcb_svn": svn.to_vec()});
    if let Some(s2) = svn2 {
        tcb["tee_tcb_svn2"] = json!(s2.to_vec());
    }
    match appraisal::tdx_platform(bytes) {
        Ok(p) => {
            tcb["pck"] = json!({
                "fmspc": crate::hex(&p.fmspc),
                "ca": p.ca,
                "sgx_tcb_components": p.cpu_svn.to_vec(),
                "pce_svn": p.pce_svn,
            });
        }
        Err(e) => tcb["pck"] = json!({"error": e}),
    }
    if q.trailing_len > 0 {
        let end = bytes.len() - q.trailing_len;
        tcb["trailing_bytes"] =
            json!({"len": q.trailing_len, "all_zero": bytes[end..].iter().all(|&b| b == 0)});
    }
    Ok(json!({"kind": "tdx-quote", "tcb": tcb, "quote": q}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture from `$ENCLAVE_FIXTURES`, else the repository's sibling `shared/fixtures`.
    fn fixture(rel: &str) -> Vec<u8> {
        let dir = std::env::var("ENCLAVE_FIXTURES")
            .unwrap_or_else(|_| format!("{}/../../../shared/fixtures", env!("CARGO_MANIFEST_DIR")));
        std::fs::read(format!("{dir}/{rel}"))
            .unwrap_or_else(|e| panic!("fixture {dir}/{rel}: {e} (set ENCLAVE_FIXTURES)"))
    }

    #[test]
    fn inspects_every_kind_of_fixture() {
        let r = inspect(&fixture("snp/milan-v2-virtee/report.bin")).unwrap();
        assert_eq!(r["kind"], "snp-report");
        assert_eq!(
            r["report"]["measurement"],
            "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"
        );
        assert_eq!(
            inspect(&fixture("tdx/dcap-qvl/tdx_quote")).unwrap()["kind"],
            "tdx-quote"
        );
        assert_eq!(
            inspect(&fixture("tdx/intel-dcap/tdreport_for_test.dat")).unwrap()["kind"],
            "tdx-tdreport"
        );
        let mut b = wire::EvidenceBundle::new(
            wire::Tee::Snp,
            "test",
            fixture("snp/milan-v2-virtee/report.bin"),
        );
        b.certificates.push(wire::Certificate {
            kind: wire::CertKind::Vcek,
            der: fixture("snp/milan-v2-virtee/vcek.der").into(),
        });
        let v = inspect(&b.to_json()).unwrap();
        assert_eq!(v["kind"], "evidence-bundle");
        assert_eq!(v["certificates"][0]["kind"], "vcek");
        assert!(inspect(b"garbage").unwrap_err().contains("not a report"));
    }

    const COS: &str = "cloud/tdx-eventlog/go-tdx-guest-gcp-cos113";

    #[test]
    fn inspects_ccel_logs_tables_and_bundles_carrying_them() {
        // SOURCES.md §3 (cloud): the COS-113 log replays to its quote's RTMRs.
        let rtmrs = [
            "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6",
            "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1",
            "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1",
        ];
        let log = fixture(&format!("{COS}/ccel_data.dat"));
        let v = inspect(&log).unwrap();
        assert_eq!(v["kind"], "cc-event-log");
        assert_eq!(v["log"]["events"].as_array().unwrap().len(), 43);
        assert_eq!(v["replayed_rtmrs"][0], rtmrs[0]);
        assert_eq!(v["replayed_rtmrs"][1], rtmrs[1]);
        assert_eq!(v["replayed_rtmrs"][2], rtmrs[2]);
        let e = &v["log"]["events"][14];
        assert_eq!(
            (e["number"].as_u64(), e["rtmr"].as_u64()),
            (Some(15), Some(1))
        );
        assert_eq!(e["event_type_name"], "EV_EFI_ACTION");
        assert_eq!(e["measures"], "Calling EFI Application from Boot Option");
        assert_eq!(e["digests"][0]["algorithm"], "sha384");
        // The direct-boot log names its kernel and command-line events.
        let v = inspect(&fixture(
            "cloud/tdx-eventlog/go-eventlog/CCEL_unpadded.data.bin",
        ))
        .unwrap();
        assert_eq!(v["components"][0]["component"], "kernel");
        assert_eq!(v["components"][0]["event"], 12);
        assert_eq!(v["components"][1]["component"], "cmdline");
        assert_eq!(v["components"][1]["event"], 17);

        let t = inspect(&fixture(&format!("{COS}/ccel_table.dat"))).unwrap();
        assert_eq!(t["kind"], "ccel-table");
        assert_eq!(t["tdx"], true);
        assert_eq!(t["table"]["log_area_minimum_length"], 0x40000);

        let mut b = wire::EvidenceBundle::new(
            wire::Tee::Tdx,
            "test",
            fixture(&format!("{COS}/cos-113-tdx-quote.dat")),
        );
        b.event_log = Some(log[..18_101].to_vec().into());
        let v = inspect(&b.to_json()).unwrap();
        assert_eq!(v["event_log"]["kind"], "cc-event-log");
        assert_eq!(v["event_log"]["quote_rtmrs"][2], rtmrs[2]);
        assert_eq!(
            v["event_log"]["replay_matches_quote"],
            json!([true, true, true, true])
        );
        // A truncated log is an error naming where.
        let e = inspect(&log[..9000]).unwrap_err();
        assert!(e.starts_with("CC event log: "), "{e}");
    }

    #[test]
    fn inspects_azure_evidence() {
        let h = inspect(&fixture("cloud/azure/trustee-az-snp-vtpm/hcl-report.bin")).unwrap();
        assert_eq!(h["kind"], "azure-hcl-report");
        assert_eq!(h["report"]["header"]["version"], 1);
        assert_eq!(h["report"]["request_data"]["report_type"], "snp");
        assert_eq!(
            h["report"]["variable_data_sha256"],
            "b3fbad6514c83caeb0380882145e49f794229ef37c421b91fc47ff93556bafac"
        );
        assert_eq!(h["variable_data_json"]["keys"][0]["kid"], "HCLAkPub");
        assert_eq!(h["report_data_binds_variable_data"], true);
        let v = inspect(&fixture("cloud/azure/trustee-az-snp-vtpm/evidence-v2.json")).unwrap();
        assert_eq!(v["tee"], "azure-snp");
        assert_eq!(
            v["tpm"]["pcrs"][0],
            "84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7"
        );
        assert_eq!(v["tpm"]["quote"]["extra_data"], "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef");
        assert_eq!(v["tpm"]["signature"]["scheme"], "RSASSA");
        assert_eq!(
            v["evidence"]["variable_data_json"]["user-data"]
                .as_str()
                .unwrap()
                .len(),
            128
        );
        let t = inspect(&fixture("cloud/azure/trustee-az-tdx-vtpm/evidence-v0.json")).unwrap();
        assert_eq!(t["tee"], "azure-tdx");
        assert_eq!(t["tpm"]["td_quote"]["kind"], "tdx-quote");
        let q = inspect(&fixture("cloud/azure/trustee-az-snp-vtpm/tpm-quote.msg")).unwrap();
        assert_eq!(q["kind"], "tpm-quote");
        assert_eq!(
            q["quote"]["pcr_select"][0]["pcrs"],
            json!([0, 1, 2, 3, 4, 5, 6, 7, 14])
        );
    }

    #[test]
    fn report_data_is_hex_and_bounded() {
        assert_eq!(parse_report_data("0102").unwrap()[..3], [1, 2, 0]);
        assert!(parse_report_data("zz").is_err());
        assert!(parse_report_data(&"00".repeat(65)).is_err());
    }
}
