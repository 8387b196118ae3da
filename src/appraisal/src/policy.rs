//! The appraisal policy: a typed TOML file (`policy.example.toml` documents
//! every field). Unknown fields are errors; every default is the strict
//! choice, except where a default would make every real platform fail
//! (`smt_allowed = true`).
//!
//! The SHA-256 of the file bytes, exactly as loaded, is the policy digest
//! that every token carries ([`Policy::digest`]).

use std::fmt;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::hex;

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not TOML, or not this schema (unknown field, wrong type, bad hex).
    #[error("policy file does not parse")]
    Parse(#[source] toml::de::Error),
    /// A value parses but is refused.
    #[error("policy field {field}: {problem}")]
    Invalid {
        /// The dotted field name.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// [`Policy::production`] was given a policy that accepts simulation.
    #[error("sim.allowed = true is refused by the production constructor")]
    SimulationInProduction,
}

/// The whole policy, plus the digest of the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// SEV-SNP rules (also applied to simulated evidence).
    pub snp: SnpPolicy,
    /// TDX rules.
    pub tdx: TdxPolicy,
    /// Simulation rules.
    pub sim: SimPolicy,
    digest: [u8; 32],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    snp: SnpPolicy,
    #[serde(default)]
    tdx: TdxPolicy,
    #[serde(default)]
    sim: SimPolicy,
}

impl Policy {
    /// Parses a policy file. Simulation is accepted only if the file says
    /// `sim.allowed = true` (with a pinned `sim.ark_sha256`).
    pub fn from_toml(bytes: &[u8]) -> Result<Self, PolicyError> {
        let text = std::str::from_utf8(bytes).map_err(|e| PolicyError::Invalid {
            field: "(file)",
            problem: format!("not UTF-8: {e}"),
        })?;
        let file: PolicyFile = toml::from_str(text).map_err(PolicyError::Parse)?;
        let policy = Policy {
            snp: file.snp,
            tdx: file.tdx,
            sim: file.sim,
            digest: Sha256::digest(bytes).into(),
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Parses a policy file for production: as [`Policy::from_toml`], but a
    /// file that accepts simulated evidence is refused.
    pub fn production(bytes: &[u8]) -> Result<Self, PolicyError> {
        let policy = Self::from_toml(bytes)?;
        if policy.sim.allowed {
            return Err(PolicyError::SimulationInProduction);
        }
        Ok(policy)
    }

    /// SHA-256 of the policy file bytes as loaded.
    pub const fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    fn validate(&self) -> Result<(), PolicyError> {
        if self.sim.allowed && self.sim.ark_sha256.is_empty() {
            return Err(PolicyError::Invalid {
                field: "sim.ark_sha256",
                problem: "sim.allowed = true needs at least one pinned ARK fingerprint".into(),
            });
        }
        for s in &self.tdx.tcb_statuses {
            if s == "Revoked" {
                return Err(PolicyError::Invalid {
                    field: "tdx.tcb_statuses",
                    problem: "Revoked is never accepted".into(),
                });
            }
            if !TDX_TCB_STATUSES.contains(&s.as_str()) {
                return Err(PolicyError::Invalid {
                    field: "tdx.tcb_statuses",
                    problem: format!("unknown TCB status {s:?} (known: {TDX_TCB_STATUSES:?})"),
                });
            }
        }
        Ok(())
    }
}

/// TCB statuses Intel defines, other than `Revoked`.
pub const TDX_TCB_STATUSES: &[&str] = &[
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "TDRelaunchAdvised",
    "TDRelaunchAdvisedConfigurationNeeded",
];

/// What to do when no CRL signed by the ARK accompanies SNP evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CrlMode {
    /// Deny (`snp.crl.unavailable`). The default: fail closed.
    #[default]
    Require,
    /// Check a CRL when there is one; without one, log a warning and go on.
    IfPresent,
}

/// Which key signed an SNP report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signer {
    /// Versioned Chip Endorsement Key (per chip).
    Vcek,
    /// Versioned Loaded Endorsement Key (per cloud provider).
    Vlek,
}

impl Signer {
    /// `"vcek"` or `"vlek"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Signer::Vcek => "vcek",
            Signer::Vlek => "vlek",
        }
    }
}

/// A minimum SEV-SNP TCB, component by component (each compared with `>=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinTcb {
    /// BOOT_LOADER SPL.
    #[serde(default)]
    pub bootloader: u8,
    /// TEE SPL.
    #[serde(default)]
    pub tee: u8,
    /// SNP SPL.
    #[serde(default)]
    pub snp: u8,
    /// MICROCODE SPL.
    #[serde(default)]
    pub microcode: u8,
    /// FMC SPL (Turin and later; ignored for earlier generations).
    #[serde(default)]
    pub fmc: u8,
}

/// A firmware version `major.minor.build`, written as a string `"1.55.29"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FirmwareMin {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Build.
    pub build: u8,
}

impl<'de> Deserialize<'de> for FirmwareMin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let parts: Vec<&str> = s.split('.').collect();
        let parse = |p: &str| p.parse::<u8>().map_err(serde::de::Error::custom);
        match parts.as_slice() {
            [major, minor, build] => Ok(FirmwareMin {
                major: parse(major)?,
                minor: parse(minor)?,
                build: parse(build)?,
            }),
            _ => Err(serde::de::Error::custom(format!(
                "firmware version {s:?} is not MAJOR.MINOR.BUILD"
            ))),
        }
    }
}

/// A guest policy ABI version `major.minor`, written as a string `"1.51"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AbiMin {
    /// ABI_MAJOR.
    pub major: u8,
    /// ABI_MINOR.
    pub minor: u8,
}

impl<'de> Deserialize<'de> for AbiMin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let parse = |p: &str| p.parse::<u8>().map_err(serde::de::Error::custom);
        match s.split('.').collect::<Vec<_>>().as_slice() {
            [major, minor] => Ok(AbiMin {
                major: parse(major)?,
                minor: parse(minor)?,
            }),
            _ => Err(serde::de::Error::custom(format!(
                "ABI version {s:?} is not MAJOR.MINOR"
            ))),
        }
    }
}

impl fmt::Display for FirmwareMin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// `[snp]`: SEV-SNP reference values and rules.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpPolicy {
    /// Accept SEV-SNP evidence at all. Default false.
    #[serde(default)]
    pub allowed: bool,
    /// Allowed MEASUREMENT values (48-byte hex). Empty: nothing is accepted.
    #[serde(default)]
    pub measurements: Vec<hex::Hex<48>>,
    /// Lowest accepted report VERSION. Default 2.
    #[serde(default = "default_min_report_version")]
    pub min_report_version: u32,
    /// Minimum REPORTED_TCB.
    #[serde(default)]
    pub min_reported_tcb: MinTcb,
    /// Minimum LAUNCH_TCB.
    #[serde(default)]
    pub min_launch_tcb: MinTcb,
    /// Minimum current and committed firmware version (`"1.55.29"`).
    #[serde(default)]
    pub min_firmware: Option<FirmwareMin>,
    /// Accept committed TCB/firmware below current (provisional firmware).
    /// Default false: committed must equal current.
    #[serde(default)]
    pub provisional_firmware_allowed: bool,
    /// Minimum GUEST_SVN. Default 0.
    #[serde(default)]
    pub min_guest_svn: u32,
    /// Minimum guest policy ABI `"major.minor"`; default none.
    #[serde(default)]
    pub min_abi: Option<AbiMin>,
    /// Accept a guest policy with DEBUG. Default false.
    #[serde(default)]
    pub debug_allowed: bool,
    /// Accept a guest policy with MIGRATE_MA. Default false.
    #[serde(default)]
    pub migrate_ma_allowed: bool,
    /// Accept a guest policy with SMT allowed. Default true.
    #[serde(default = "yes")]
    pub smt_allowed: bool,
    /// Require SINGLE_SOCKET in the guest policy. Default false.
    #[serde(default)]
    pub single_socket_required: bool,
    /// Accept a guest policy with CXL_ALLOW. Default false.
    #[serde(default)]
    pub cxl_allowed: bool,
    /// Require MEM_AES_256_XTS. Default false.
    #[serde(default)]
    pub mem_aes_256_xts_required: bool,
    /// Require RAPL_DIS. Default false.
    #[serde(default)]
    pub rapl_dis_required: bool,
    /// Require CIPHERTEXT_HIDING in the guest policy. Default false.
    #[serde(default)]
    pub ciphertext_hiding_required: bool,
    /// Require PAGE_SWAP_DISABLE. Default false.
    #[serde(default)]
    pub page_swap_disable_required: bool,
    /// PLATFORM_INFO constraints.
    #[serde(default)]
    pub platform: SnpPlatformPolicy,
    /// Allowed VMPL values. Default `[0]`.
    #[serde(default = "default_vmpls")]
    pub vmpls: Vec<u32>,
    /// Expected HOST_DATA (32-byte hex), e.g. the config digest.
    #[serde(default)]
    pub host_data: Option<hex::Hex<32>>,
    /// CHIP_ID allowlist (64-byte hex). None: any chip.
    #[serde(default)]
    pub chip_ids: Option<Vec<hex::Hex<64>>>,
    /// ID_KEY_DIGEST allowlist (48-byte hex). None: not checked.
    #[serde(default)]
    pub id_key_digests: Option<Vec<hex::Hex<48>>>,
    /// Expected FAMILY_ID (16-byte hex, from the ID block). None: not checked.
    #[serde(default)]
    pub family_id: Option<hex::Hex<16>>,
    /// Expected IMAGE_ID (16-byte hex, from the ID block). None: not checked.
    #[serde(default)]
    pub image_id: Option<hex::Hex<16>>,
    /// Mitigation bits that LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR must
    /// both have (report v5+; a non-zero value denies earlier versions).
    /// Default 0.
    #[serde(default)]
    pub required_mitigations: u64,
    /// Accepted signing keys. Default `["vcek", "vlek"]`.
    #[serde(default = "default_signers")]
    pub signers: Vec<Signer>,
    /// VLEK CSP id allowlist (`"CN=…"` as in the VLEK's csp_id extension). None: any.
    #[serde(default)]
    pub vlek_csp_ids: Option<Vec<String>>,
    /// CRL handling. Default `"require"`.
    #[serde(default)]
    pub crl: CrlMode,
}

impl Default for SnpPolicy {
    fn default() -> Self {
        SnpPolicy {
            allowed: false,
            measurements: Vec::new(),
            min_report_version: default_min_report_version(),
            min_reported_tcb: MinTcb::default(),
            min_launch_tcb: MinTcb::default(),
            min_firmware: None,
            provisional_firmware_allowed: false,
            min_guest_svn: 0,
            min_abi: None,
            debug_allowed: false,
            migrate_ma_allowed: false,
            smt_allowed: true,
            single_socket_required: false,
            cxl_allowed: false,
            mem_aes_256_xts_required: false,
            rapl_dis_required: false,
            ciphertext_hiding_required: false,
            page_swap_disable_required: false,
            platform: SnpPlatformPolicy::default(),
            vmpls: default_vmpls(),
            host_data: None,
            chip_ids: None,
            id_key_digests: None,
            family_id: None,
            image_id: None,
            required_mitigations: 0,
            signers: default_signers(),
            vlek_csp_ids: None,
            crl: CrlMode::Require,
        }
    }
}

/// `[snp.platform]`: PLATFORM_INFO constraints.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpPlatformPolicy {
    /// Accept a platform with SMT enabled. Default true.
    #[serde(default = "yes")]
    pub smt_enabled_allowed: bool,
    /// Require TSME. Default false.
    #[serde(default)]
    pub tsme_required: bool,
    /// Require ECC memory. Default false.
    #[serde(default)]
    pub ecc_required: bool,
    /// Require ALIAS_CHECK_COMPLETE (CVE-2024-21944; report v3+). Default false.
    #[serde(default)]
    pub alias_check_required: bool,
    /// Require ciphertext hiding enabled. Default false.
    #[serde(default)]
    pub ciphertext_hiding_required: bool,
}

impl Default for SnpPlatformPolicy {
    fn default() -> Self {
        SnpPlatformPolicy {
            smt_enabled_allowed: true,
            tsme_required: false,
            ecc_required: false,
            alias_check_required: false,
            ciphertext_hiding_required: false,
        }
    }
}

/// `[tdx]`: TDX reference values and rules.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxPolicy {
    /// Accept TDX evidence at all. Default false.
    #[serde(default)]
    pub allowed: bool,
    /// Allowed MRTD values. Empty: nothing is accepted.
    #[serde(default)]
    pub mrtds: Vec<hex::Hex<48>>,
    /// Expected RTMR0.
    #[serde(default)]
    pub rtmr0: Option<hex::Hex<48>>,
    /// Expected RTMR1.
    #[serde(default)]
    pub rtmr1: Option<hex::Hex<48>>,
    /// Expected RTMR2.
    #[serde(default)]
    pub rtmr2: Option<hex::Hex<48>>,
    /// Expected RTMR3.
    #[serde(default)]
    pub rtmr3: Option<hex::Hex<48>>,
    /// Expected MRCONFIGID.
    #[serde(default)]
    pub mr_config_id: Option<hex::Hex<48>>,
    /// Expected MROWNER.
    #[serde(default)]
    pub mr_owner: Option<hex::Hex<48>>,
    /// Expected MROWNERCONFIG.
    #[serde(default)]
    pub mr_owner_config: Option<hex::Hex<48>>,
    /// MRSEAM allowlist. None: any TDX module Intel's TCB info vouches for.
    #[serde(default)]
    pub mr_seams: Option<Vec<hex::Hex<48>>>,
    /// XFAM allowlist (8-byte hex, as in the quote). None: any.
    #[serde(default)]
    pub xfams: Option<Vec<hex::Hex<8>>>,
    /// Accepted TCB statuses. Default `["UpToDate"]`. `Revoked` is refused.
    #[serde(default = "default_tcb_statuses")]
    pub tcb_statuses: Vec<String>,
    /// Accepted advisory ids (e.g. `"INTEL-SA-00837"`); any other denies.
    #[serde(default)]
    pub advisory_ids: Vec<String>,
    /// Minimum tcbEvaluationDataNumber of the collateral. Default 0.
    #[serde(default)]
    pub min_tcb_evaluation_data_number: u32,
    /// Accept a debuggable TD. Default false.
    #[serde(default)]
    pub debug_allowed: bool,
    /// Minimum ISVSVN of the quoting enclave. Default 0.
    #[serde(default)]
    pub min_qe_svn: u16,
    /// Minimum PCE SVN of the platform (PCK certificate). Default 0.
    #[serde(default)]
    pub min_pce_svn: u16,
    /// Platform instance id (PIID, 16-byte hex, from the PCK certificate)
    /// allowlist. None: any platform.
    #[serde(default)]
    pub piids: Option<Vec<hex::Hex<16>>>,
}

impl Default for TdxPolicy {
    fn default() -> Self {
        TdxPolicy {
            allowed: false,
            mrtds: Vec::new(),
            rtmr0: None,
            rtmr1: None,
            rtmr2: None,
            rtmr3: None,
            mr_config_id: None,
            mr_owner: None,
            mr_owner_config: None,
            mr_seams: None,
            xfams: None,
            tcb_statuses: default_tcb_statuses(),
            advisory_ids: Vec::new(),
            min_tcb_evaluation_data_number: 0,
            debug_allowed: false,
            min_qe_svn: 0,
            min_pce_svn: 0,
            piids: None,
        }
    }
}

/// `[sim]`: simulated evidence (an SNP-format report from `sim-psp`).
/// Appraised with the `[snp]` rules and reference values, against an ARK
/// trusted only by its pinned fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimPolicy {
    /// Accept simulated evidence. Default false.
    #[serde(default)]
    pub allowed: bool,
    /// SHA-256 of the simulated PSP's ARK certificate (DER).
    #[serde(default)]
    pub ark_sha256: Vec<hex::Hex<32>>,
}

fn yes() -> bool {
    true
}
fn default_min_report_version() -> u32 {
    2
}
fn default_vmpls() -> Vec<u32> {
    vec![0]
}
fn default_signers() -> Vec<Signer> {
    vec![Signer::Vcek, Signer::Vlek]
}
fn default_tcb_statuses() -> Vec<String> {
    vec!["UpToDate".to_owned()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_strict() {
        let p = Policy::from_toml(b"").unwrap();
        assert!(!p.snp.allowed && !p.tdx.allowed && !p.sim.allowed);
        assert_eq!(p.snp.crl, CrlMode::Require);
        assert_eq!(p.snp.vmpls, vec![0]);
        assert!(!p.snp.debug_allowed);
        assert_eq!(p.tdx.tcb_statuses, vec!["UpToDate".to_owned()]);
        assert_eq!(hex::encode(p.digest()), hex::encode(&Sha256::digest(b"")));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(matches!(
            Policy::from_toml(b"[snp]\ndebug = true\n"),
            Err(PolicyError::Parse(_))
        ));
        assert!(matches!(
            Policy::from_toml(b"[snp]\nmeasurements = [\"00\"]\n"),
            Err(PolicyError::Parse(_))
        ));
        assert!(matches!(
            Policy::from_toml(b"[snp]\ncrl = \"never\"\n"),
            Err(PolicyError::Parse(_))
        ));
        assert!(matches!(
            Policy::from_toml(b"[tdx]\ntcb_statuses = [\"Revoked\"]\n"),
            Err(PolicyError::Invalid {
                field: "tdx.tcb_statuses",
                ..
            })
        ));
        assert!(matches!(
            Policy::from_toml(b"[sim]\nallowed = true\n"),
            Err(PolicyError::Invalid {
                field: "sim.ark_sha256",
                ..
            })
        ));
    }

    #[test]
    fn production_refuses_simulation() {
        let file = format!(
            "[sim]\nallowed = true\nark_sha256 = [\"{}\"]\n",
            "ab".repeat(32)
        );
        assert!(Policy::from_toml(file.as_bytes()).unwrap().sim.allowed);
        assert!(matches!(
            Policy::production(file.as_bytes()),
            Err(PolicyError::SimulationInProduction)
        ));
    }

    #[test]
    fn example_file_parses() {
        let text = include_bytes!("../policy.example.toml");
        let p = Policy::production(text).unwrap();
        assert!(p.snp.allowed);
        assert_eq!(p.snp.crl, CrlMode::Require);
    }
}
