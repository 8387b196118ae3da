//! [`Claims`]: what an accepted appraisal asserts. Serialised as JSON they
//! become the attestation token's claims, so the field names are part of
//! the interface: `tee`, `measurement`, `tcb`, `policy_flags`, `chip_id`,
//! `host_data`, `rtmrs`, `mr_config_id`, `mr_seam`, `xfam`, `td_attributes`,
//! `signer`, `policy_digest`, and since whole-image measurement on TDX
//! `mr_td`, `os_pinned`, `init_data`; for Azure evidence `azure` (`pcrs`,
//! `vm_configuration`, `user_data`, `hcl_version`); `collateral` and `relaxations`. Byte
//! strings are lowercase hex.
//!
//! `measurement` is the image identity an OpenBao role binds: on SEV-SNP the
//! launch digest MEASUREMENT (firmware, kernel, initrd, command line); on TDX
//! SHA-384("enclave-init/tdx-measurement/v1\0" ‖ MRTD ‖ RTMR1 ‖ RTMR2)
//! (`tee_formats::tdx::measurement::image_measurement`: firmware, kernel,
//! command line and initrd), with MRTD alone in `mr_td`; on AWS Nitro
//! Enclaves SHA-384(PCR0 ‖ PCR1 ‖ PCR2) (the EIF image: kernel, command line,
//! ramdisks; 144 bytes hashed, no tag), the PCRs themselves in `nitro.pcrs`.

use serde::Serialize;

use crate::collateral::CollateralClaims;

/// The claims of accepted evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// `"snp"`, `"tdx"`, `"sim"`, `"nitro"`, `"nitro-sim"` (a document of the
    /// simulated NSM: development only), `"azure-snp"`, `"azure-tdx"`, or
    /// `"azure-sim"` (Azure-shaped evidence whose hardware report is signed by
    /// the simulation chain: development only).
    pub tee: &'static str,
    /// The image identity: SNP MEASUREMENT; TDX SHA-384(tag ‖ MRTD ‖ RTMR1 ‖
    /// RTMR2) (see the module documentation).
    pub measurement: String,
    /// TCB of the platform.
    pub tcb: Tcb,
    /// SNP guest policy bits, or TDX TD attributes, by name.
    pub policy_flags: PolicyFlags,
    /// SNP: CHIP_ID (all zero when the host masks it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chip_id: Option<String>,
    /// SNP: HOST_DATA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_data: Option<String>,
    /// SNP: `"vcek"` or `"vlek"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<&'static str>,
    /// SNP: the product whose chain verified (`"Milan"`, `"Genoa"`, `"Turin"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<&'static str>,
    /// SNP: VMPL of the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmpl: Option<u32>,
    /// TDX: RTMR0..RTMR3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtmrs: Option<[String; 4]>,
    /// TDX: MRTD (the firmware).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mr_td: Option<String>,
    /// TDX: whether the policy pinned the kernel, the initrd and the command
    /// line (false only under `tdx.allow_unpinned_os = true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_pinned: Option<bool>,
    /// CoCo pods (`[coco]`): the init-data digest the evidence carries
    /// (SEV-SNP HOST_DATA, TDX MRCONFIGID), one the policy pinned. Absent
    /// for appliance evidence, so a role binding it accepts only pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_data: Option<String>,
    /// TDX: MRCONFIGID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mr_config_id: Option<String>,
    /// TDX: MRSEAM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mr_seam: Option<String>,
    /// TDX: XFAM (8 bytes as in the quote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xfam: Option<String>,
    /// TDX: TD_ATTRIBUTES (8 bytes as in the quote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub td_attributes: Option<String>,
    /// REPORT_DATA (64 bytes).
    pub report_data: String,
    /// SHA-256 of the policy file the evidence was appraised against.
    pub policy_digest: String,
    /// Azure evidence: what the vTPM and the paravisor vouch for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureClaims>,
    /// Nitro documents: the pinnable PCRs and the NSM's timestamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nitro: Option<NitroClaims>,
    /// Where each piece of collateral came from, and whether revocation was
    /// checked.
    pub collateral: CollateralClaims,
    /// Every relaxation of the strict defaults the policy made for this TEE
    /// ([`crate::Policy::relaxations`]); empty when there is none.
    pub relaxations: Vec<String>,
}

/// The `azure` claim: the vTPM quote's PCRs and the paravisor's runtime
/// claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AzureClaims {
    /// PCR0..PCR23 of the SHA-256 bank, as quoted.
    pub pcrs: Vec<String>,
    /// `vm-configuration` of the variable data, as the paravisor wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_configuration: Option<serde_json::Value>,
    /// `user-data` of the variable data (64 bytes), when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// HCL report header version.
    pub hcl_version: u32,
}

/// The `nitro` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NitroClaims {
    /// PCR0, 1, 2, 3, 4 and 8 as the document has them (index → hex), the
    /// ones `[nitro]` can pin.
    pub pcrs: std::collections::BTreeMap<u8, String>,
    /// The document's `timestamp` (milliseconds since the Unix epoch).
    pub timestamp_ms: u64,
}

/// The TCB claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Tcb {
    /// A platform with no TCB version in its evidence (AWS Nitro: the NSM
    /// reports none); serialised as `null`.
    None,
    /// SEV-SNP (and simulation).
    Snp(SnpTcb),
    /// TDX.
    Tdx(TdxTcb),
}

/// One SEV-SNP TCB_VERSION, decoded for the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SnpTcbComponents {
    /// BOOT_LOADER SPL.
    pub bootloader: u8,
    /// TEE SPL.
    pub tee: u8,
    /// SNP SPL.
    pub snp: u8,
    /// MICROCODE SPL.
    pub microcode: u8,
    /// FMC SPL (Turin and later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
}

/// The SEV-SNP TCB claim: REPORTED_TCB's components at top level, plus
/// LAUNCH_TCB and COMMITTED_TCB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SnpTcb {
    /// REPORTED_TCB.
    #[serde(flatten)]
    pub reported: SnpTcbComponents,
    /// LAUNCH_TCB.
    pub launch_tcb: SnpTcbComponents,
    /// COMMITTED_TCB.
    pub committed_tcb: SnpTcbComponents,
}

/// The TDX TCB claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxTcb {
    /// Converged TCB status (`UpToDate`, …).
    pub tcb_status: String,
    /// Advisory ids of the matched TCB levels.
    pub advisory_ids: Vec<String>,
    /// tcbEvaluationDataNumber of the collateral (lower of TCB info and QE identity).
    pub tcb_evaluation_data_number: u32,
    /// FMSPC of the platform (from its PCK certificate): the platform family
    /// Intel's TCB info is issued for.
    pub fmspc: String,
    /// The platform's TCB components: PCK CPUSVN (16 SGX components), PCE
    /// SVN and the TD's TEE_TCB_SVN (16 TDX components).
    pub components: TdxTcbComponents,
    /// tcbDate of the TCB level the platform matched.
    pub tcb_date: String,
    /// tcbDate of the newest level the collateral calls `UpToDate`: when it
    /// is later than `tcb_date`, Intel has published a TCB this platform does
    /// not have yet.
    pub current_tcb_date: Option<String>,
}

/// A TDX platform's TCB components.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxTcbComponents {
    /// CPUSVN from the PCK certificate (16 SGX TCB components), hex.
    pub sgx: String,
    /// PCE SVN from the PCK certificate.
    pub pce_svn: u16,
    /// TEE_TCB_SVN from the TD report (16 TDX TCB components), hex.
    pub tdx: String,
}

/// The `policy_flags` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PolicyFlags {
    /// AWS Nitro: whether the enclave runs in debug mode.
    Nitro(NitroPolicyFlags),
    /// SEV-SNP guest policy.
    Snp(SnpPolicyFlags),
    /// TDX TD attributes.
    Tdx(TdxPolicyFlags),
}

/// AWS Nitro Enclaves flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NitroPolicyFlags {
    /// PCR0 all zero: a debug enclave (accepted only under
    /// `nitro.debug_allowed`).
    pub debug: bool,
}

/// SEV-SNP GUEST_POLICY, bit by bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SnpPolicyFlags {
    /// ABI_MAJOR.
    pub abi_major: u8,
    /// ABI_MINOR.
    pub abi_minor: u8,
    /// SMT allowed.
    pub smt: bool,
    /// Migration agent allowed.
    pub migrate_ma: bool,
    /// Debugging allowed.
    pub debug: bool,
    /// Single socket required.
    pub single_socket: bool,
    /// CXL allowed.
    pub cxl: bool,
    /// AES-256-XTS required.
    pub mem_aes_256_xts: bool,
    /// RAPL disabled.
    pub rapl_dis: bool,
    /// Ciphertext hiding required.
    pub ciphertext_hiding: bool,
    /// Page swapping disabled.
    pub page_swap_disable: bool,
}

/// TDX TD_ATTRIBUTES, bit by bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TdxPolicyFlags {
    /// Any of bits 7:0 (DEBUG and the other TUD bits).
    pub debug: bool,
    /// Bit 28 SEPT_VE_DISABLE.
    pub sept_ve_disable: bool,
    /// Bit 29 MIGRATABLE.
    pub migratable: bool,
    /// Bit 30 PKS.
    pub pks: bool,
    /// Bit 31 KL.
    pub kl: bool,
    /// Bit 63 PERFMON.
    pub perfmon: bool,
}
