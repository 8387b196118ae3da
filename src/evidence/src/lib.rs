//! Attestation evidence from every guest interface, behind one interface.
//!
//! Module map:
//! - [`configfs_tsm`]: `/sys/kernel/config/tsm/report` (Linux ≥ 6.7; SNP and TDX).
//! - [`sev_guest`]: `/dev/sev-guest` (`SNP_GET_EXT_REPORT`, then `SNP_GET_REPORT`).
//! - [`tdx_guest`]: `/dev/tdx_guest` (`TDX_CMD_GET_REPORT0`: a TDREPORT, not
//!   remotely verifiable; the quote comes through configfs-tsm).
//! - [`coco_aa`]: the CoCo attestation-agent's REST API (api-server-rest on
//!   `127.0.0.1:8006`), for an appliance running as a container in a
//!   Confidential Containers pod (SNP and TDX).
//! - [`azure_vtpm`]: Azure confidential VMs: the HCL report and a quote from
//!   the paravisor's vTPM, over [`tpm_device`] (`/dev/tpmrm0`, or a Unix
//!   socket in tests) with hand-written TPM 2.0 commands.
//! - [`nsm`]: `/dev/nsm`, the Nitro Secure Module of an AWS Nitro enclave
//!   (a CBOR attestation request through an ioctl; a Unix socket to the
//!   SIMULATED NSM, `enclavectl sim-nsm`, in tests).
//! - [`sim`]: the simulated PSP (`enclavectl sim-psp`), over vsock or a Unix socket.
//! - [`ccel`]: the TDX firmware's CC event log (ACPI CCEL), which TDX bundles
//!   carry in `event_log` for the verifier to replay.
//! - `sys`: the ioctls, the only `unsafe` in this crate.
//!
//! [`detect`] tries the Azure vTPM, the hardware interfaces, then the
//! attestation-agent, in a fixed, logged order and **never** picks the simulation: simulation is chosen only by naming it in
//! the measured configuration, so an image built for production cannot fall
//! back to it when hardware is missing; it stops with the list of what it
//! tried.

pub mod azure_vtpm;
pub mod ccel;
pub mod coco_aa;
pub mod collateral;
pub mod configfs_tsm;
pub mod nsm;
pub mod sev_guest;
pub mod sim;
mod sys;
pub mod tpm_device;

/// The error an ioctl returns (public for device fakes in tests).
pub mod sev_guest_ioctl_error {
    pub use crate::sys::IoctlError;
}
pub mod tdx_guest;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use wire::EvidenceBundle;

/// Length of REPORT_DATA in both SNP reports and TDX quotes.
pub const REPORT_DATA_LEN: usize = 64;

/// A source of evidence.
/// `Send`: the supervisor thread renews with it while the control thread
/// may ask it for operator evidence (never both at once: a mutex).
pub trait EvidenceSource: Send {
    /// Its name, as in [`SourceKind`].
    fn kind(&self) -> SourceKind;
    /// Evidence whose REPORT_DATA is exactly `report_data`, with whatever
    /// certificates and collateral the platform provides.
    fn collect(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<EvidenceBundle, EvidenceError>;
    /// [`EvidenceSource::collect`] for a verifier exchange: `binding` holds
    /// the values REPORT_DATA binds, for sources whose evidence also carries
    /// them in fields of its own (Nitro: the NSM's `nonce` and `public_key`).
    /// Others ignore it.
    fn collect_bound(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
        binding: &Binding<'_>,
    ) -> Result<EvidenceBundle, EvidenceError> {
        let _ = binding;
        self.collect(report_data)
    }
}

/// What a verifier exchange's REPORT_DATA binds, besides the TLS exporter.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The verifier's nonce.
    pub nonce: &'a [u8],
    /// The enclave key's SubjectPublicKeyInfo, DER.
    pub spki: &'a [u8],
}

/// The kinds of source, in detection order (simulation last and never detected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// configfs-tsm.
    ConfigfsTsm,
    /// `/dev/sev-guest`.
    SevGuest,
    /// `/dev/tdx_guest` (TDREPORT only).
    TdxGuest,
    /// The CoCo attestation-agent through api-server-rest (loopback HTTP).
    CocoAa,
    /// The vTPM of an Azure confidential VM (HCL report + quote).
    AzureVtpm,
    /// The Nitro Secure Module of an AWS Nitro enclave (`/dev/nsm`).
    Nitro,
    /// The simulated PSP.
    Sim,
}

impl SourceKind {
    /// The configuration and log name.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::ConfigfsTsm => "configfs-tsm",
            SourceKind::SevGuest => "sev-guest",
            SourceKind::TdxGuest => "tdx-guest",
            SourceKind::CocoAa => "coco-aa",
            SourceKind::AzureVtpm => "azure-vtpm",
            SourceKind::Nitro => "nitro",
            SourceKind::Sim => "sim",
        }
    }
}

impl FromStr for SourceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "configfs-tsm" => Ok(SourceKind::ConfigfsTsm),
            "sev-guest" => Ok(SourceKind::SevGuest),
            "tdx-guest" => Ok(SourceKind::TdxGuest),
            "coco-aa" => Ok(SourceKind::CocoAa),
            "azure-vtpm" => Ok(SourceKind::AzureVtpm),
            "nitro" => Ok(SourceKind::Nitro),
            "sim" => Ok(SourceKind::Sim),
            _ => Err(format!("unknown evidence source {s:?} (configfs-tsm, sev-guest, tdx-guest, coco-aa, azure-vtpm, nitro, sim)")),
        }
    }
}

/// Where the interfaces live (tests point these at fakes).
#[derive(Debug, Clone)]
pub struct Paths {
    /// configfs-tsm report root.
    pub tsm_root: PathBuf,
    /// The SNP guest device.
    pub sev_guest: PathBuf,
    /// The TDX guest device.
    pub tdx_guest: PathBuf,
    /// api-server-rest of the CoCo attestation-agent (a loopback `tcp://`).
    pub coco_aa: transport::Addr,
    /// The TDX CC event log (ACPI CCEL table and log area).
    pub ccel: ccel::CcelPaths,
    /// The TPM (`/dev/tpmrm0`), probed for the Azure vTPM.
    pub tpm: tpm_device::TpmAddr,
    /// The Nitro Secure Module (`/dev/nsm`).
    pub nsm: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            tsm_root: PathBuf::from(configfs_tsm::DEFAULT_ROOT),
            sev_guest: PathBuf::from("/dev/sev-guest"),
            tdx_guest: PathBuf::from("/dev/tdx_guest"),
            coco_aa: transport::Addr::Tcp(coco_aa::DEFAULT_ADDR.to_owned()),
            ccel: ccel::CcelPaths::default(),
            tpm: tpm_device::TpmAddr::default(),
            nsm: PathBuf::from("/dev/nsm"),
        }
    }
}

/// Finds the evidence interface to use, in a fixed order: the Azure vTPM (a
/// TPM whose NV index 0x01400001 holds an HCL report: first, because an
/// Azure CVM can have a configfs-tsm directory with no provider that works
/// behind the paravisor, and the NV index is an unambiguous sign), then
/// `/dev/nsm` (AWS Nitro), configfs-tsm, `/dev/sev-guest`, `/dev/tdx_guest` (which cannot produce a
/// quote on its own), then the CoCo attestation-agent's REST API (one TCP
/// connection attempt of at most [`coco_aa::PROBE_TIMEOUT`]: inside a CoCo
/// pod the hardware interfaces belong to the guest's agent, not to
/// containers). Never the simulation. When a later interface is chosen, what
/// was skipped is logged.
pub fn detect(paths: &Paths) -> Result<SourceKind, EvidenceError> {
    let mut tried = Vec::new();
    match azure_vtpm::probe(&paths.tpm, coco_aa::PROBE_TIMEOUT) {
        Ok(()) => return Ok(SourceKind::AzureVtpm),
        Err(why) => tried.push(format!("azure-vtpm: {why}")),
    }
    // A Nitro enclave has no TPM, configfs-tsm or guest device of the other
    // TEEs; /dev/nsm exists only there.
    if paths.nsm.exists() {
        return Ok(SourceKind::Nitro);
    }
    tried.push(format!("nitro: {} absent", paths.nsm.display()));
    if paths.tsm_root.is_dir() {
        return Ok(SourceKind::ConfigfsTsm);
    }
    tried.push(format!("configfs-tsm: {} absent", paths.tsm_root.display()));
    if paths.sev_guest.exists() {
        return Ok(SourceKind::SevGuest);
    }
    tried.push(format!("sev-guest: {} absent", paths.sev_guest.display()));
    if paths.tdx_guest.exists() {
        tried.push(format!(
            "tdx-guest: {} present, but a TDX quote needs configfs-tsm (Linux >= 6.7 with CONFIG_TSM_REPORTS)",
            paths.tdx_guest.display()
        ));
    } else {
        tried.push(format!("tdx-guest: {} absent", paths.tdx_guest.display()));
    }
    match coco_aa::probe(&paths.coco_aa, coco_aa::PROBE_TIMEOUT) {
        Ok(()) => {
            log::info!(skipped = tried.join("; ").as_str(), addr = paths.coco_aa.to_string().as_str();
                "no hardware evidence interface; the CoCo attestation-agent REST API accepts connections");
            return Ok(SourceKind::CocoAa);
        }
        Err(why) => tried.push(format!("coco-aa: {why}")),
    }
    Err(EvidenceError::NoTee { tried })
}

/// Why evidence could not be had.
#[derive(Debug)]
pub enum EvidenceError {
    /// No TEE interface: what was tried, in order. Simulation is never a
    /// fallback; it must be configured.
    NoTee {
        /// Each interface and why it was not used.
        tried: Vec<String>,
    },
    /// A file or device operation failed.
    Io {
        /// What we were doing.
        op: &'static str,
        /// On what.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// configfs-tsm is backed by another provider than expected.
    WrongProvider {
        /// What `provider` said.
        got: String,
        /// What we can use.
        want: &'static str,
    },
    /// Another writer changed the request between our write and our read.
    GenerationRace {
        /// The generation our own writes imply.
        expected: u64,
        /// What the kernel reports.
        got: u64,
    },
    /// The report or quote is shorter than its format allows.
    ShortEvidence {
        /// Its length.
        got: usize,
        /// The minimum.
        min: usize,
    },
    /// The evidence does not parse.
    Malformed(tee_formats::FormatError),
    /// The evidence carries other REPORT_DATA than requested.
    ReportDataMismatch,
    /// The interface stayed busy (throttled) through every retry.
    Busy {
        /// Attempts made.
        attempts: u32,
    },
    /// The firmware or the VMM refused the request.
    Firmware {
        /// errno of the ioctl.
        errno: i32,
        /// Firmware status (exitinfo2 bits 31:0).
        fw_error: u32,
        /// VMM status (exitinfo2 bits 63:32).
        vmm_error: u32,
    },
    /// The simulated PSP failed or answered something unusable.
    Sim(String),
    /// The source cannot produce remotely verifiable evidence.
    Unsupported(&'static str),
    /// Host-supplied TDX collateral could not be had.
    Collateral(String),
    /// The CoCo attestation-agent's REST API failed or answered something
    /// unusable.
    CocoAa(coco_aa::AaError),
    /// A TPM command failed with a response code.
    Tpm {
        /// The command.
        command: &'static str,
        /// TPM_RC.
        rc: u32,
    },
    /// A TPM response (or what it carries) is malformed.
    TpmFormat {
        /// The command.
        command: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The Nitro Secure Module (or the simulated one) failed or refused.
    Nsm(String),
    /// An endorsement the platform serves (the VCEK chain, a TD quote)
    /// could not be had.
    Endorsement(String),
}

impl fmt::Display for EvidenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvidenceError::NoTee { tried } => write!(
                f,
                "no TEE evidence interface (tried: {}); simulation is used only when configured (tee.source = \"sim\")",
                tried.join("; ")
            ),
            EvidenceError::Io { op, path, source } => write!(f, "{op} {path}: {source}"),
            EvidenceError::WrongProvider { got, want } => {
                write!(f, "configfs-tsm provider is {got:?}, want {want}")
            }
            EvidenceError::GenerationRace { expected, got } => write!(
                f,
                "configfs-tsm generation is {got}, our writes imply {expected}: another writer raced this request"
            ),
            EvidenceError::ShortEvidence { got, min } => write!(f, "evidence is {got} bytes, at least {min} expected"),
            EvidenceError::Malformed(e) => write!(f, "evidence does not parse: {e}"),
            EvidenceError::ReportDataMismatch => write!(f, "evidence carries other REPORT_DATA than requested"),
            EvidenceError::Busy { attempts } => write!(f, "interface busy after {attempts} attempts"),
            EvidenceError::Firmware { errno, fw_error, vmm_error } => write!(
                f,
                "request refused: errno {errno}, firmware status {fw_error:#x}, VMM status {vmm_error:#x}"
            ),
            EvidenceError::Sim(m) => write!(f, "simulated PSP: {m}"),
            EvidenceError::Unsupported(m) => f.write_str(m),
            EvidenceError::Collateral(m) => write!(f, "TDX collateral: {m}"),
            EvidenceError::CocoAa(e) => e.fmt(f),
            EvidenceError::Tpm { command, rc } => {
                write!(f, "TPM2_{command} failed: {}", tee_formats::tpm::command::rc_description(*rc))
            }
            EvidenceError::TpmFormat { command, problem } => write!(f, "TPM2_{command}: malformed response: {problem}"),
            EvidenceError::Nsm(m) => write!(f, "NSM: {m}"),
            EvidenceError::Endorsement(m) => write!(f, "platform endorsement: {m}"),
        }
    }
}

impl std::error::Error for EvidenceError {}

/// Checks an SNP report: parses, and carries `report_data`.
pub(crate) fn check_snp_report(report: &[u8], report_data: &[u8; 64]) -> Result<(), EvidenceError> {
    let min = tee_formats::snp::report::REPORT_SIZE;
    if report.len() < min {
        return Err(EvidenceError::ShortEvidence {
            got: report.len(),
            min,
        });
    }
    let parsed = tee_formats::snp::report::AttestationReport::parse(report)
        .map_err(EvidenceError::Malformed)?;
    if &parsed.report_data != report_data {
        return Err(EvidenceError::ReportDataMismatch);
    }
    Ok(())
}

/// Turns an SNP certificate table (auxblob or extended report) into bundle
/// certificates and CRLs. The ASK GUID also carries the ASVK when the signer
/// is a VLEK.
pub(crate) fn snp_certificates(
    bundle: &mut EvidenceBundle,
    table: &[u8],
) -> Result<(), EvidenceError> {
    if table.iter().all(|b| *b == 0) {
        return Ok(()); // the host supplied no certificates
    }
    let table =
        tee_formats::snp::cert_table::CertTable::parse(table).map_err(EvidenceError::Malformed)?;
    add_snp_certificates(bundle, &table);
    Ok(())
}

/// Adds the VCEK/VLEK, ASK/ASVK, ARK and CRL of a parsed certificate table
/// to `bundle` (other GUIDs are ignored).
pub(crate) fn add_snp_certificates(
    bundle: &mut EvidenceBundle,
    table: &tee_formats::snp::cert_table::CertTable,
) {
    use tee_formats::snp::cert_table::Guid;
    use wire::{Bytes, CertKind, Certificate};
    let vlek = table.get(&Guid::VLEK).is_some();
    for (guid, kind) in [
        (Guid::VCEK, CertKind::Vcek),
        (Guid::VLEK, CertKind::Vlek),
        (Guid::ASK, if vlek { CertKind::Asvk } else { CertKind::Ask }),
        (Guid::ARK, CertKind::Ark),
    ] {
        if let Some(der) = table.get(&guid) {
            bundle.certificates.push(Certificate {
                kind,
                der: Bytes(der.to_vec()),
            });
        }
    }
    if let Some(crl) = table.get(&Guid::CRL) {
        bundle.crls.push(Bytes(crl.to_vec()));
    }
}

/// Domain tag of operator evidence (see [`operator_report_data`]).
pub const OPERATOR_TAG: &[u8; 34] = b"enclave-init/operator-evidence/v1\0";

/// REPORT_DATA for evidence an operator asks the running enclave for, with
/// a nonce of their choosing: SHA-512(OPERATOR_TAG ‖ nonce).
///
/// Why not the nonce itself: a guest that signs *any* REPORT_DATA the host
/// asks for is an oracle. The host could compute the verifier binding
/// (`tee_formats::binding`) for its own key and TLS session and pass the
/// attestation as this enclave. The distinct domain tag makes operator
/// evidence unusable for that: the verifier recomputes REPORT_DATA with its
/// own tag, which can never produce this value.
pub fn operator_report_data(nonce: &[u8; 32]) -> [u8; REPORT_DATA_LEN] {
    use sha2::{Digest, Sha512};
    let mut h = Sha512::new();
    h.update(OPERATOR_TAG);
    h.update(nonce);
    h.finalize().into()
}
