//! Azure confidential VMs: evidence from the vTPM the paravisor (OpenHCL)
//! provides, over raw TPM 2.0 commands (`tee_formats::tpm::command`), with no
//! TPM software stack in the guest.
//!
//! On Azure the guest has no `/dev/sev-guest` or TDX quote of its own: the
//! paravisor requests the hardware report (VMPL 0 / the TD) with REPORT_DATA
//! = SHA-256 of its "runtime claims" JSON (which holds the vTPM attestation
//! key and whatever the guest wrote to NV `0x01400002` as `user-data`), and
//! stores the result, the HCL report, in NV `0x01400001`. So
//! [`AzureVtpm::collect`]:
//!
//! 1. writes REPORT_DATA (our 64-byte binding) to NV `0x01400002` (defining
//!    the index first if the guest never did, as Azure's own tools do), and
//!    the paravisor refreshes the HCL report with it as `user-data`;
//! 2. reads NV `0x01400001` in chunks of TPM_PT_NV_BUFFER_MAX and parses it
//!    strictly (`tee_formats::azure::HclReport`), checking that `user-data`
//!    is ours (a paravisor that leaves it zero is logged and tolerated: the
//!    verifier's policy decides);
//! 3. quotes PCR0-23 of the SHA-256 bank with the AK at `0x81000003`,
//!    extraData = SHA-256(REPORT_DATA): the trait hands a provider
//!    REPORT_DATA only, and REPORT_DATA already commits to the verifier's
//!    nonce (and to the key and TLS session), while a vTPM's TPM2B_DATA holds
//!    at most 48 bytes on Azure (its largest hash is SHA-384): 32 fits every
//!    TPM. The verifier recomputes it (`appraisal::extra_data_for_binding`);
//! 4. reads the 24 PCR values (TPM2_PCR_Read returns at most 8 at a time) and
//!    checks they hash to the quote's pcrDigest (a PCR extended between the
//!    quote and the read makes it quote again, at most [`QUOTE_ATTEMPTS`]
//!    times);
//! 5. adds what the platform provides and the guest cannot get from the
//!    vTPM: for SNP the VCEK chain, for TDX the TD quote of the TDREPORT.
//!    Azure serves both from IMDS (`/metadata/THIM/amd/certification`,
//!    `/acc/tdquote`), an HTTP endpoint on the VM's network; this guest has
//!    no network stack, so a host relay serves them on a configured address
//!    ([`Endorsements`]): optional, untrusted (the verifier checks every
//!    certificate and the quote against pinned roots).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use tee_formats::azure::{self, HclReport, HclReportType};
use tee_formats::tpm::command::{self, NvPublic, PcrReadOut, QuoteOut, RH_OWNER};
use tee_formats::tpm::{Attest, PcrSelection, PCR_COUNT};
use transport::Addr;
use wire::{Bytes, CertKind, Certificate, EvidenceBundle, Tee, TpmEvidence};

use crate::tpm_device::{Tpm, TpmAddr};
use crate::{EvidenceError, EvidenceSource, SourceKind, REPORT_DATA_LEN};

/// Quote attempts while the PCRs move between the quote and their read.
pub const QUOTE_ATTEMPTS: u32 = 3;
/// Reads of the HCL report while it does not yet carry our user data.
pub const REPORT_ATTEMPTS: u32 = 5;
/// The largest HCL report read (Azure's index is 2600 bytes).
pub const MAX_REPORT: usize = 16 * 1024;
/// Attributes of the user-data index when the guest defines it (owner
/// read/write, as `tpm2_nvdefine -C o` makes it).
pub const USER_DATA_ATTRIBUTES: u32 = command::NV_OWNERWRITE
    | command::NV_OWNERREAD
    | command::NV_AUTHWRITE
    | command::NV_AUTHREAD
    | command::NV_NO_DA;
/// The largest answer of an endorsement relay.
pub const MAX_ENDORSEMENT: u64 = 256 * 1024;

/// Where the platform's endorsements come from (host relays of Azure IMDS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endorsements {
    /// SNP: connect, read one JSON document to EOF in the shape of IMDS's
    /// THIM answer: `{"vcekCert": PEM, "certificateChain": PEM (ASK, ARK)}`.
    pub certs: Option<Addr>,
    /// TDX: connect, send one line `{"report":"<base64url TDREPORT>"}\n`,
    /// read one JSON document to EOF (the relay closes after it):
    /// `{"quote":"<base64url TD quote>"}` (IMDS `/acc/tdquote`).
    pub td_quote: Option<Addr>,
}

/// The Azure vTPM evidence source.
pub struct AzureVtpm {
    tpm: TpmAddr,
    endorsements: Endorsements,
    timeout: Duration,
}

impl AzureVtpm {
    /// A source over the TPM at `tpm`; `timeout` bounds each exchange.
    pub fn new(tpm: TpmAddr, endorsements: Endorsements, timeout: Duration) -> Self {
        AzureVtpm {
            tpm,
            endorsements,
            timeout,
        }
    }
}

/// Whether the TPM at `addr` is an Azure vTPM: it answers, and the HCL
/// report's NV index is defined. `Err` says why not, for the detection log.
pub fn probe(addr: &TpmAddr, timeout: Duration) -> Result<(), String> {
    if let TpmAddr::Device(p) = addr {
        if !p.exists() {
            return Err(format!("{addr} absent"));
        }
    }
    let mut tpm = Tpm::open(addr, timeout).map_err(|e| e.to_string())?;
    match nv_public(&mut tpm, azure::NV_INDEX_REPORT) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "{addr} present, but no HCL report at NV index {:#010x} ({e}): not an Azure vTPM",
            azure::NV_INDEX_REPORT
        )),
    }
}

fn nv_public(tpm: &mut Tpm, index: u32) -> Result<NvPublic, EvidenceError> {
    let params = tpm.call("NV_ReadPublic", &command::nv_read_public(index), 0, false)?;
    let p = NvPublic::from_response(&params).map_err(|e| EvidenceError::TpmFormat {
        command: "NV_ReadPublic",
        problem: e.to_string(),
    })?;
    if p.index != index {
        return Err(EvidenceError::TpmFormat {
            command: "NV_ReadPublic",
            problem: format!("answered for index {:#010x}, asked {index:#010x}", p.index),
        });
    }
    Ok(p)
}

/// TPM_PT_NV_BUFFER_MAX, or 1024 when the TPM does not say.
fn nv_buffer_max(tpm: &mut Tpm) -> Result<usize, EvidenceError> {
    let params = tpm.call(
        "GetCapability",
        &command::get_capability(command::CAP_TPM_PROPERTIES, command::PT_NV_BUFFER_MAX, 1),
        0,
        false,
    )?;
    let v = command::capability_property(&params, command::PT_NV_BUFFER_MAX).map_err(|e| {
        EvidenceError::TpmFormat {
            command: "GetCapability",
            problem: e.to_string(),
        }
    })?;
    Ok(v.map_or(1024, |v| (v as usize).clamp(64, command::MAX_NV_BUFFER)))
}

/// Reads the whole NV index, in chunks.
fn read_nv(tpm: &mut Tpm, index: u32, chunk: usize) -> Result<Vec<u8>, EvidenceError> {
    let size = usize::from(nv_public(tpm, index)?.data_size);
    if size > MAX_REPORT {
        return Err(EvidenceError::TpmFormat {
            command: "NV_ReadPublic",
            problem: format!("NV index of {size} bytes, at most {MAX_REPORT} read"),
        });
    }
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        let n = chunk.min(size - out.len());
        let (n16, off16) = (
            u16::try_from(n).unwrap_or(u16::MAX),
            u16::try_from(out.len()).unwrap_or(u16::MAX),
        );
        let params = tpm.call(
            "NV_Read",
            &command::nv_read(RH_OWNER, index, n16, off16),
            0,
            true,
        )?;
        let data = command::nv_read_data(&params).map_err(|e| EvidenceError::TpmFormat {
            command: "NV_Read",
            problem: e.to_string(),
        })?;
        if data.len() != n {
            return Err(EvidenceError::TpmFormat {
                command: "NV_Read",
                problem: format!("{} bytes for a read of {n}", data.len()),
            });
        }
        out.extend_from_slice(data);
    }
    Ok(out)
}

/// Writes our user data, defining the index first if it is not there.
fn write_user_data(tpm: &mut Tpm, data: &[u8; REPORT_DATA_LEN]) -> Result<(), EvidenceError> {
    match nv_public(tpm, azure::NV_INDEX_USER_DATA) {
        Ok(p) if usize::from(p.data_size) >= data.len() => {}
        Ok(p) => {
            return Err(EvidenceError::TpmFormat {
                command: "NV_ReadPublic",
                problem: format!("user-data index holds {} bytes, 64 needed", p.data_size),
            });
        }
        // TPM_RC_HANDLE on handle 1: the index is not defined.
        Err(EvidenceError::Tpm { rc, .. }) if rc == command::RC_HANDLE_1 => {
            log::info!(index = azure::NV_INDEX_USER_DATA; "defining the vTPM user-data NV index");
            tpm.call(
                "NV_DefineSpace",
                &command::nv_define_space(
                    RH_OWNER,
                    azure::NV_INDEX_USER_DATA,
                    USER_DATA_ATTRIBUTES,
                    64,
                ),
                0,
                true,
            )?;
        }
        Err(e) => return Err(e),
    }
    let cmd = command::nv_write(RH_OWNER, azure::NV_INDEX_USER_DATA, data, 0).map_err(|e| {
        EvidenceError::TpmFormat {
            command: "NV_Write",
            problem: e.to_string(),
        }
    })?;
    tpm.call("NV_Write", &cmd, 0, true)?;
    Ok(())
}

/// What the variable data says about our user data.
enum UserData {
    Ours,
    AbsentOrZero,
    Other,
}

fn user_data(hcl: &HclReport, want: &[u8; REPORT_DATA_LEN]) -> UserData {
    #[derive(serde::Deserialize)]
    struct Var {
        #[serde(rename = "user-data")]
        user_data: Option<String>,
    }
    let Ok(Var {
        user_data: Some(hex),
    }) = serde_json::from_slice::<Var>(&hcl.variable_data)
    else {
        return UserData::AbsentOrZero;
    };
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect();
    match bytes {
        Some(b) if b.as_slice() == want => UserData::Ours,
        Some(b) if b.iter().all(|&x| x == 0) => UserData::AbsentOrZero,
        _ => UserData::Other,
    }
}

/// Reads and parses the HCL report, until it carries our user data (or the
/// paravisor shows it does not take any).
fn read_report(
    tpm: &mut Tpm,
    chunk: usize,
    want: &[u8; REPORT_DATA_LEN],
) -> Result<(Vec<u8>, HclReport), EvidenceError> {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=REPORT_ATTEMPTS {
        let bytes = read_nv(tpm, azure::NV_INDEX_REPORT, chunk)?;
        let hcl = HclReport::parse(&bytes).map_err(EvidenceError::Malformed)?;
        match user_data(&hcl, want) {
            UserData::Ours => return Ok((bytes, hcl)),
            UserData::AbsentOrZero => {
                log::warn!("the HCL report carries no user-data: the paravisor did not take the binding (the verifier's policy decides)");
                return Ok((bytes, hcl));
            }
            UserData::Other if attempt < REPORT_ATTEMPTS => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            UserData::Other => break,
        }
    }
    Err(EvidenceError::ReportDataMismatch)
}

/// The 24 SHA-256 PCR values, PCR0 first.
fn read_pcrs(tpm: &mut Tpm) -> Result<Vec<Vec<u8>>, EvidenceError> {
    let mut values: Vec<Option<Vec<u8>>> = vec![None; PCR_COUNT];
    // The TPM answers a subset (at most 8 digests) each time: ask for what is
    // still missing until every PCR came back.
    for _ in 0..PCR_COUNT {
        let missing: Vec<usize> = (0..PCR_COUNT).filter(|&i| values[i].is_none()).collect();
        if missing.is_empty() {
            break;
        }
        let mut select = vec![0u8; PCR_COUNT / 8];
        for i in &missing {
            select[i / 8] |= 1 << (i % 8);
        }
        let sel = PcrSelection(vec![tee_formats::tpm::PcrBankSelection {
            hash: tee_formats::tpm::ALG_SHA256,
            select,
        }]);
        let cmd = command::pcr_read(&sel).map_err(|e| EvidenceError::TpmFormat {
            command: "PCR_Read",
            problem: e.to_string(),
        })?;
        let params = tpm.call("PCR_Read", &cmd, 0, false)?;
        let out = PcrReadOut::from_response(&params).map_err(|e| EvidenceError::TpmFormat {
            command: "PCR_Read",
            problem: e.to_string(),
        })?;
        let mut got = out.values.into_iter();
        let mut progressed = false;
        for bank in &out.selection.0 {
            for i in bank.indices() {
                let Some(v) = got.next() else { break };
                if bank.hash != tee_formats::tpm::ALG_SHA256 || v.len() != 32 {
                    return Err(EvidenceError::TpmFormat {
                        command: "PCR_Read",
                        problem: format!("PCR{i}: {} bytes of bank {:#06x}", v.len(), bank.hash),
                    });
                }
                if let Some(slot) = values.get_mut(i as usize).filter(|s| s.is_none()) {
                    *slot = Some(v);
                    progressed = true;
                }
            }
        }
        if !progressed {
            return Err(EvidenceError::TpmFormat {
                command: "PCR_Read",
                problem: "no PCR value returned".into(),
            });
        }
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.ok_or_else(|| EvidenceError::TpmFormat {
                command: "PCR_Read",
                problem: format!("PCR{i} never returned"),
            })
        })
        .collect()
}

/// A quote of PCR0-23 with `extra_data`, and the PCR values it covers.
fn quote(tpm: &mut Tpm, extra_data: &[u8]) -> Result<(QuoteOut, Vec<Vec<u8>>), EvidenceError> {
    let sel = PcrSelection::sha256_all();
    for attempt in 1..=QUOTE_ATTEMPTS {
        let cmd = command::quote(azure::AK_HANDLE, extra_data, &sel).map_err(|e| {
            EvidenceError::TpmFormat {
                command: "Quote",
                problem: e.to_string(),
            }
        })?;
        let params = tpm.call("Quote", &cmd, 0, true)?;
        let q = QuoteOut::from_response(&params).map_err(|e| EvidenceError::TpmFormat {
            command: "Quote",
            problem: e.to_string(),
        })?;
        let attest = Attest::parse(&q.attest).map_err(EvidenceError::Malformed)?;
        if attest.extra_data != extra_data || attest.pcr_select != sel {
            return Err(EvidenceError::TpmFormat {
                command: "Quote",
                problem: "the quote is not of what was asked".into(),
            });
        }
        let pcrs = read_pcrs(tpm)?;
        let digest: [u8; 32] = Sha256::digest(pcrs.concat()).into();
        if attest.pcr_digest == digest {
            return Ok((q, pcrs));
        }
        log::info!(attempt = attempt; "a PCR changed between the quote and its read; quoting again");
    }
    Err(EvidenceError::TpmFormat {
        command: "Quote",
        problem: format!("the PCRs kept changing across {QUOTE_ATTEMPTS} quotes"),
    })
}

impl EvidenceSource for AzureVtpm {
    fn kind(&self) -> SourceKind {
        SourceKind::AzureVtpm
    }

    fn collect(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<EvidenceBundle, EvidenceError> {
        let started = Instant::now();
        let mut tpm = Tpm::open(&self.tpm, self.timeout)?;
        write_user_data(&mut tpm, report_data)?;
        let chunk = nv_buffer_max(&mut tpm)?;
        let (hcl_bytes, hcl) = read_report(&mut tpm, chunk, report_data)?;
        let extra: [u8; 32] = Sha256::digest(report_data).into();
        let (q, pcrs) = quote(&mut tpm, &extra)?;
        drop(tpm);
        let tee = match hcl.report_type() {
            HclReportType::Snp => Tee::AzureSnp,
            HclReportType::Tdx => Tee::AzureTdx,
        };
        let mut bundle = EvidenceBundle::new(tee, SourceKind::AzureVtpm.as_str(), hcl_bytes);
        let mut tpm_evidence = TpmEvidence {
            quote: Bytes(q.attest),
            signature: Bytes(q.signature),
            pcrs: pcrs.into_iter().map(Bytes).collect(),
            td_quote: None,
        };
        match (&hcl.hardware_report, tee) {
            (tee_formats::azure::HardwareReport::Tdx(td), _) => match &self.endorsements.td_quote {
                Some(addr) => tpm_evidence.td_quote = Some(Bytes(fetch_td_quote(addr, &td.to_bytes(), self.timeout)?)),
                None => return Err(EvidenceError::Unsupported("Azure TDX: the TD quote of the HCL report comes from IMDS; configure its host relay (tee.azure_td_quote)")),
            },
            (_, _) => {
                if let Some(addr) = &self.endorsements.certs {
                    bundle.certificates = fetch_certs(addr, self.timeout)?;
                }
            }
        }
        bundle.tpm = Some(tpm_evidence);
        log::info!(tee = tee.as_str(), ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX); "vTPM evidence collected");
        Ok(bundle)
    }
}

fn relay_err(what: &str, addr: &Addr, e: impl std::fmt::Display) -> EvidenceError {
    EvidenceError::Endorsement(format!("{what} from {addr}: {e}"))
}

/// One JSON document from `addr`, after sending `request` (if any), to EOF.
fn relay(
    addr: &Addr,
    request: Option<&[u8]>,
    timeout: Duration,
    what: &str,
) -> Result<serde_json::Value, EvidenceError> {
    let mut s = transport::connect(addr)
        .map_err(|e| relay_err(what, addr, format!("cannot connect: {e}")))?;
    s.set_timeouts(timeout)
        .map_err(|e| relay_err(what, addr, e))?;
    if let Some(r) = request {
        s.write_all(r).map_err(|e| relay_err(what, addr, e))?;
    }
    let mut body = Vec::new();
    (&mut s)
        .take(MAX_ENDORSEMENT + 1)
        .read_to_end(&mut body)
        .map_err(|e| relay_err(what, addr, e))?;
    if body.len() as u64 > MAX_ENDORSEMENT {
        return Err(relay_err(
            what,
            addr,
            format!("answer larger than {MAX_ENDORSEMENT} bytes"),
        ));
    }
    serde_json::from_slice(&body).map_err(|e| relay_err(what, addr, format!("not JSON: {e}")))
}

/// The DER certificates of a PEM text, in order.
fn pem_ders(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let after = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let end = after
            .find("-----END CERTIFICATE-----")
            .ok_or("unterminated PEM block")?;
        let b64: String = after[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        out.push(
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| format!("PEM base64: {e}"))?,
        );
        rest = &after[end..];
    }
    Ok(out)
}

/// The VCEK and its chain, in THIM's shape. Roles follow THIM's order
/// (`vcekCert`; `certificateChain` = ASK then ARK); the verifier checks them.
fn fetch_certs(addr: &Addr, timeout: Duration) -> Result<Vec<Certificate>, EvidenceError> {
    let v = relay(addr, None, timeout, "VCEK chain")?;
    let field = |k: &str| {
        v.get(k)
            .and_then(|s| s.as_str())
            .ok_or_else(|| relay_err("VCEK chain", addr, format!("no string {k}")))
    };
    let vcek = pem_ders(field("vcekCert")?).map_err(|e| relay_err("VCEK chain", addr, e))?;
    let chain = match v.get("certificateChain") {
        Some(_) => {
            pem_ders(field("certificateChain")?).map_err(|e| relay_err("VCEK chain", addr, e))?
        }
        None => Vec::new(),
    };
    let [vcek] = <[Vec<u8>; 1]>::try_from(vcek).map_err(|v| {
        relay_err(
            "VCEK chain",
            addr,
            format!("{} certificates in vcekCert", v.len()),
        )
    })?;
    let mut certs = vec![Certificate {
        kind: CertKind::Vcek,
        der: Bytes(vcek),
    }];
    for (der, kind) in chain.into_iter().zip([CertKind::Ask, CertKind::Ark]) {
        certs.push(Certificate {
            kind,
            der: Bytes(der),
        });
    }
    Ok(certs)
}

/// The TD quote of `tdreport`, from the IMDS relay.
fn fetch_td_quote(
    addr: &Addr,
    tdreport: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, EvidenceError> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut request = serde_json::json!({ "report": b64.encode(tdreport) })
        .to_string()
        .into_bytes();
    request.push(b'\n');
    let v = relay(addr, Some(&request), timeout, "TD quote")?;
    let q = v
        .get("quote")
        .and_then(|s| s.as_str())
        .ok_or_else(|| relay_err("TD quote", addr, "no string quote"))?;
    let quote = b64
        .decode(q.trim_end_matches('=').as_bytes())
        .map_err(|e| relay_err("TD quote", addr, format!("quote is not base64url: {e}")))?;
    tee_formats::tdx::Quote::parse(&quote).map_err(EvidenceError::Malformed)?;
    Ok(quote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_decode_in_order() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBA==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_ders(pem).unwrap(), vec![vec![1, 2, 3], vec![4]]);
        assert!(pem_ders("-----BEGIN CERTIFICATE-----\nAQID").is_err());
        assert!(pem_ders("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----").is_err());
        assert_eq!(pem_ders("").unwrap(), Vec::<Vec<u8>>::new());
    }

    fn fixture(rel: &str) -> Vec<u8> {
        let dir = std::env::var("ENCLAVE_FIXTURES")
            .unwrap_or_else(|_| format!("{}/../../../shared/fixtures", env!("CARGO_MANIFEST_DIR")));
        std::fs::read(format!("{dir}/{rel}"))
            .unwrap_or_else(|e| panic!("fixture {dir}/{rel}: {e} (set ENCLAVE_FIXTURES)"))
    }

    /// A one-connection stand-in of a host relay: reads a line if `read_line`,
    /// checks it with `check`, answers `body`, closes.
    fn relay_standin(
        read_line: bool,
        check: impl FnOnce(&str) + Send + 'static,
        body: Vec<u8>,
    ) -> Addr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("tcp://{}", l.local_addr().unwrap())
            .parse()
            .unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            if read_line {
                let mut line = String::new();
                std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut s), &mut line)
                    .unwrap();
                check(&line);
            }
            s.write_all(&body).unwrap();
        });
        addr
    }

    #[test]
    fn the_td_quote_relay_is_asked_for_the_tdreport_and_its_quote_checked() {
        // The Azure TDX capture: the TDREPORT inside its HCL report, and its TD quote.
        let hcl =
            HclReport::parse(&fixture("cloud/azure/trustee-az-tdx-vtpm/hcl-report.bin")).unwrap();
        let tee_formats::azure::HardwareReport::Tdx(td) = &hcl.hardware_report else {
            panic!("not TDX")
        };
        let tdreport = td.to_bytes().to_vec();
        let quote = fixture("cloud/azure/trustee-az-tdx-vtpm/td-quote.bin");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let want = tdreport.clone();
        let body = serde_json::json!({ "quote": b64.encode(&quote) })
            .to_string()
            .into_bytes();
        let addr = relay_standin(
            true,
            move |line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                assert_eq!(b64.decode(v["report"].as_str().unwrap()).unwrap(), want);
            },
            body,
        );
        assert_eq!(
            fetch_td_quote(&addr, &tdreport, Duration::from_secs(5)).unwrap(),
            quote
        );
        // Something that is not a quote is refused.
        let bad = serde_json::json!({ "quote": b64.encode([4u8, 0, 2, 0]) })
            .to_string()
            .into_bytes();
        let addr = relay_standin(true, |_| {}, bad);
        assert!(matches!(
            fetch_td_quote(&addr, &tdreport, Duration::from_secs(5)),
            Err(EvidenceError::Malformed(_))
        ));
    }

    #[test]
    fn the_vcek_relay_answers_in_thim_shape() {
        // trustee's vcek.pem holds VCEK, ASK, ARK: as THIM splits them.
        let pem = String::from_utf8(fixture("cloud/azure/trustee-az-snp-vtpm/vcek.pem")).unwrap();
        let blocks: Vec<&str> = pem
            .split_inclusive("-----END CERTIFICATE-----")
            .filter(|b| b.contains("BEGIN"))
            .collect();
        assert_eq!(blocks.len(), 3);
        let doc = serde_json::json!({ "vcekCert": blocks[0], "certificateChain": format!("{}{}", blocks[1], blocks[2]), "tcbm": "x" });
        let addr = relay_standin(false, |_| {}, doc.to_string().into_bytes());
        let certs = fetch_certs(&addr, Duration::from_secs(5)).unwrap();
        assert_eq!(
            certs.iter().map(|c| c.kind).collect::<Vec<_>>(),
            [CertKind::Vcek, CertKind::Ask, CertKind::Ark]
        );
        assert_eq!(certs[0].der.0, pem_ders(blocks[0]).unwrap()[0]);
        // Two VCEKs, no VCEK, not JSON: refused with the relay named.
        for body in [
            serde_json::json!({ "vcekCert": format!("{}{}", blocks[0], blocks[1]) }).to_string(),
            "{}".to_owned(),
            "nope".to_owned(),
        ] {
            let addr = relay_standin(false, |_| {}, body.into_bytes());
            let e = fetch_certs(&addr, Duration::from_secs(5))
                .unwrap_err()
                .to_string();
            assert!(e.contains("VCEK chain from tcp://127.0.0.1:"), "{e}");
        }
    }

    #[test]
    fn user_data_index_attributes_are_owner_read_write() {
        assert_eq!(
            USER_DATA_ATTRIBUTES & (command::NV_OWNERREAD | command::NV_OWNERWRITE),
            command::NV_OWNERREAD | command::NV_OWNERWRITE
        );
        assert_eq!(command::cc::NV_WRITE, 0x137);
    }
}
