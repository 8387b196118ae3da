//! The appraisal policy: a typed TOML file (`policy.example.toml` documents
//! every field). Unknown fields are errors; every default is the strict
//! choice, except where a default would make every real platform fail
//! (`smt_allowed = true`).
//!
//! The SHA-256 of the file bytes, exactly as loaded, is the policy digest
//! that every token carries ([`Policy::digest`]).
//!
//! Whole-image rules (refused at load, [`PolicyError::Invalid`]): a `[tdx]`
//! section that accepts images (`mrtds`) must pin the kernel (`kernel` or
//! `rtmr1`), the initrd (`initrd` or `rtmr2`) and the command line (`cmdline`
//! or `rtmr2`) unless it says `allow_unpinned_os = true`; a `[coco]` section
//! that accepts pods must pin their init-data (and, on TDX, the Kata guest's
//! RTMR1 and RTMR2). An empty allow-list (`kernel = []`) is refused: it would
//! accept nothing while looking like a pin.
//!
//! Strict by default (issue 17): a policy that accepts a TEE must name its
//! minimum TCB (`snp.min_reported_tcb` for SEV-SNP and simulation,
//! `tdx.min_tcb_evaluation_data_number` for TDX), or it is refused at load;
//! writing zeros is allowed, and is then a relaxation. Every relaxation the
//! file makes ([`Policy::relaxations`]) is listed in the claims of every
//! token it accepts.

use std::collections::BTreeMap;
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
    /// [`Policy::production`] was given a policy that pins a simulated NSM
    /// root (`nitro.sim_root_sha256` not empty).
    #[error(
        "nitro.sim_root_sha256 (a simulated NSM root) is refused by the production constructor"
    )]
    NitroSimulationInProduction,
}

/// The whole policy, plus the digest of the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The operator's name for this policy (`id`, default [`DEFAULT_POLICY_ID`]):
    /// with `version`, what a decision record names, readable where the
    /// digest is not.
    pub id: String,
    /// The operator's version of the policy (`version`, default 0).
    pub version: u64,
    /// SEV-SNP rules (also applied to simulated evidence).
    pub snp: SnpPolicy,
    /// TDX rules.
    pub tdx: TdxPolicy,
    /// Simulation rules.
    pub sim: SimPolicy,
    /// Confidential Containers pods (Kata guest images and their init-data).
    pub coco: CocoPolicy,
    /// Azure confidential VM rules (HCL report + vTPM quote).
    pub azure: AzurePolicy,
    /// AWS Nitro Enclaves rules (NSM attestation documents).
    pub nitro: NitroPolicy,
    /// Token rules.
    pub token: TokenPolicy,
    digest: [u8; 32],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    snp: SnpPolicy,
    #[serde(default)]
    tdx: TdxPolicy,
    #[serde(default)]
    sim: SimPolicy,
    #[serde(default)]
    coco: CocoPolicy,
    #[serde(default)]
    azure: AzurePolicy,
    #[serde(default)]
    nitro: NitroPolicy,
    #[serde(default)]
    token: TokenPolicy,
}

/// The policy `id` of a file that names none.
pub const DEFAULT_POLICY_ID: &str = "unnamed";

/// The default and ceiling of [`TokenPolicy::max_ttl_secs`] without an
/// explicit raise: a bearer token should live at most a minute
/// (`architecture.md`, "Logging in to Vault").
pub const DEFAULT_MAX_TOKEN_TTL_SECS: u64 = 60;

/// `[token]`: the attestation token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPolicy {
    /// The longest token lifetime the verifier may issue under this policy
    /// (its `--token-ttl-secs` is refused above it). Default 60; a higher
    /// value is a relaxation, shown in the claims.
    #[serde(default = "default_max_ttl")]
    pub max_ttl_secs: u64,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        TokenPolicy {
            max_ttl_secs: DEFAULT_MAX_TOKEN_TTL_SECS,
        }
    }
}

fn default_max_ttl() -> u64 {
    DEFAULT_MAX_TOKEN_TTL_SECS
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
        let table: toml::Table = toml::from_str(text).map_err(PolicyError::Parse)?;
        let policy = Policy {
            id: file.id.unwrap_or_else(|| DEFAULT_POLICY_ID.to_owned()),
            version: file.version,
            snp: file.snp,
            tdx: file.tdx,
            sim: file.sim,
            coco: file.coco,
            azure: file.azure,
            nitro: file.nitro,
            token: file.token,
            digest: Sha256::digest(bytes).into(),
        };
        policy.validate()?;
        policy.require_minimum_tcb(&table)?;
        Ok(policy)
    }

    /// A policy that accepts a TEE must say which TCB it requires at least.
    fn require_minimum_tcb(&self, table: &toml::Table) -> Result<(), PolicyError> {
        let has = |section: &str, key: &str| {
            table
                .get(section)
                .and_then(|s| s.as_table())
                .is_some_and(|s| s.contains_key(key))
        };
        if (self.snp.allowed || self.sim.allowed) && !has("snp", "min_reported_tcb") {
            return Err(PolicyError::Invalid {
                field: "snp.min_reported_tcb",
                problem: format!(
                    "{} = true needs the lowest REPORTED_TCB this policy accepts, e.g. min_reported_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }} (all zeros accepts any TCB, and shows as a relaxation in every token)",
                    if self.snp.allowed { "snp.allowed" } else { "sim.allowed" }
                ),
            });
        }
        if self.tdx.allowed && !has("tdx", "min_tcb_evaluation_data_number") {
            return Err(PolicyError::Invalid {
                field: "tdx.min_tcb_evaluation_data_number",
                problem: "tdx.allowed = true needs the lowest tcbEvaluationDataNumber of Intel's collateral this policy accepts (e.g. 17; 0 accepts collateral from before any TCB recovery, and shows as a relaxation in every token)".into(),
            });
        }
        Ok(())
    }

    /// What this policy relaxes for evidence of `tee` (`"snp"`, `"sim"`,
    /// `"tdx"`), each as `key = value (why it matters)`: the `relaxations`
    /// claim. Empty for a policy that keeps every strict default.
    pub fn relaxations(&self, tee: &str) -> Vec<String> {
        let mut r = Vec::new();
        let s = &self.snp;
        if tee == "sim" {
            r.push("sim.allowed = true (simulated evidence: no hardware guarantee)".to_owned());
        }
        if tee == "snp" || tee == "sim" {
            if s.crl == CrlMode::IfPresent {
                r.push("snp.crl = \"if-present\" (revocation unchecked without a CRL)".to_owned());
            }
            if s.min_reported_tcb == MinTcb::default() {
                r.push("snp.min_reported_tcb = 0 (any TCB)".to_owned());
            }
            if s.debug_allowed {
                r.push("snp.debug_allowed = true".to_owned());
            }
            if s.migrate_ma_allowed {
                r.push("snp.migrate_ma_allowed = true".to_owned());
            }
            if s.provisional_firmware_allowed {
                r.push("snp.provisional_firmware_allowed = true".to_owned());
            }
            if s.vmpls.iter().any(|&v| v != 0) {
                r.push(format!("snp.vmpls = {:?}", s.vmpls));
            }
        }
        if tee == "nitro-sim" {
            r.push("nitro.sim_root_sha256 (simulated NSM: no hardware guarantee)".to_owned());
        }
        if (tee == "nitro" || tee == "nitro-sim") && self.nitro.debug_allowed {
            r.push(
                "nitro.debug_allowed = true (PCR0 all zero: the parent can read enclave memory)"
                    .to_owned(),
            );
        }
        if tee == "tdx" {
            let t = &self.tdx;
            let extra: Vec<&String> = t.tcb_statuses.iter().filter(|x| *x != "UpToDate").collect();
            if !extra.is_empty() {
                r.push(format!("tdx.tcb_statuses also {extra:?}"));
            }
            if !t.advisory_ids.is_empty() {
                r.push(format!("tdx.advisory_ids = {:?}", t.advisory_ids));
            }
            if t.min_tcb_evaluation_data_number == 0 {
                r.push("tdx.min_tcb_evaluation_data_number = 0 (any collateral)".to_owned());
            }
            if t.debug_allowed {
                r.push("tdx.debug_allowed = true".to_owned());
            }
        }
        if self.token.max_ttl_secs > DEFAULT_MAX_TOKEN_TTL_SECS {
            r.push(format!(
                "token.max_ttl_secs = {} (above {DEFAULT_MAX_TOKEN_TTL_SECS})",
                self.token.max_ttl_secs
            ));
        }
        r
    }

    /// Parses a policy file for production: as [`Policy::from_toml`], but a
    /// file that accepts simulated evidence is refused.
    pub fn production(bytes: &[u8]) -> Result<Self, PolicyError> {
        let policy = Self::from_toml(bytes)?;
        if policy.sim.allowed {
            return Err(PolicyError::SimulationInProduction);
        }
        if !policy.nitro.sim_root_sha256.is_empty() {
            return Err(PolicyError::NitroSimulationInProduction);
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
        if !(1..=86_400).contains(&self.token.max_ttl_secs) {
            return Err(PolicyError::Invalid {
                field: "token.max_ttl_secs",
                problem: format!("{} is not within 1..=86400", self.token.max_ttl_secs),
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
        self.validate_tdx_image()?;
        self.validate_coco()?;
        self.azure.validate()
    }

    /// TDX allow-lists are not empty, and an image-accepting `[tdx]` pins the OS.
    fn validate_tdx_image(&self) -> Result<(), PolicyError> {
        let t = &self.tdx;
        for (field, list) in [
            ("tdx.rtmr0", &t.rtmr0),
            ("tdx.rtmr1", &t.rtmr1),
            ("tdx.rtmr2", &t.rtmr2),
            ("tdx.rtmr3", &t.rtmr3),
            ("tdx.kernel", &t.kernel),
            ("tdx.initrd", &t.initrd),
            ("tdx.cmdline", &t.cmdline),
        ] {
            if list.as_ref().is_some_and(Vec::is_empty) {
                return Err(PolicyError::Invalid {
                    field,
                    problem:
                        "an empty list accepts nothing: list the allowed digests or remove the key"
                            .into(),
                });
            }
        }
        if !t.allowed || t.mrtds.is_empty() || t.allow_unpinned_os {
            return Ok(());
        }
        let unpinned = t.unpinned_os();
        if !unpinned.is_empty() {
            return Err(PolicyError::Invalid {
                field: "tdx.allow_unpinned_os",
                problem: format!(
                    "[tdx] accepts images (tdx.mrtds) but pins no {}: MRTD covers only the firmware, so a host \
                     could boot its own kernel, initrd or command line under it. Pin them (tdx.kernel or tdx.rtmr1, \
                     tdx.initrd and tdx.cmdline or tdx.rtmr2; `enclavectl measure --tdvf` computes them), or say \
                     allow_unpinned_os = true (the claims then carry os_pinned = false)",
                    unpinned.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// A `[coco]` section that accepts pods pins their init-data and image.
    fn validate_coco(&self) -> Result<(), PolicyError> {
        let c = &self.coco;
        if !c.allowed {
            return Ok(());
        }
        let invalid = |field, problem: &str| {
            Err(PolicyError::Invalid {
                field,
                problem: problem.to_owned(),
            })
        };
        if c.snp_measurements.is_empty() && c.tdx_mrtds.is_empty() {
            return invalid(
                "coco.allowed",
                "coco.allowed = true but neither coco.snp_measurements nor coco.tdx_mrtds lists a Kata guest image",
            );
        }
        if c.init_data_snp.iter().any(|d| d.0 == [0; 32])
            || c.init_data_tdx.iter().any(|d| d.0 == [0; 48])
        {
            return invalid(
                "coco.init_data_snp",
                "an all-zero init-data digest is what a pod launched without init-data carries: it pins nothing",
            );
        }
        if !c.snp_measurements.is_empty() {
            if c.init_data_snp.is_empty() {
                return invalid(
                    "coco.init_data_snp",
                    "coco.snp_measurements accepts SEV-SNP pods, so their init-data (HOST_DATA) must be pinned: \
                     `enclavectl measure --initdata FILE` computes it",
                );
            }
            if !(self.snp.allowed || self.sim.allowed) {
                return invalid(
                    "coco.snp_measurements",
                    "SEV-SNP pods need snp.allowed = true: the [snp] platform rules apply to them",
                );
            }
            if let Some(m) = c
                .snp_measurements
                .iter()
                .find(|m| self.snp.measurements.contains(m))
            {
                return invalid(
                    "coco.snp_measurements",
                    &format!(
                        "{m} is also in snp.measurements: evidence of that image would pass as an appliance \
                         without its init-data"
                    ),
                );
            }
        }
        if !c.tdx_mrtds.is_empty() {
            if c.init_data_tdx.is_empty() {
                return invalid(
                    "coco.init_data_tdx",
                    "coco.tdx_mrtds accepts TDX pods, so their init-data (MRCONFIGID) must be pinned: \
                     `enclavectl measure --initdata FILE` computes it",
                );
            }
            if c.tdx_rtmr1.is_empty() || c.tdx_rtmr2.is_empty() {
                return invalid(
                    if c.tdx_rtmr1.is_empty() { "coco.tdx_rtmr1" } else { "coco.tdx_rtmr2" },
                    "coco.tdx_mrtds accepts TDX pods, so the Kata guest's kernel (RTMR1) and command line and \
                     initrd (RTMR2) must be pinned: MRTD covers only the firmware",
                );
            }
            if !self.tdx.allowed {
                return invalid(
                    "coco.tdx_mrtds",
                    "TDX pods need tdx.allowed = true: the [tdx] platform rules apply to them",
                );
            }
            // A Kata guest image the [tdx] RTMR pins also accept would pass as an
            // appliance, without its init-data (with component pins only, the
            // event log decides: the Kata kernel is not ours).
            let t = &self.tdx;
            let overlaps = |pins: &Option<Vec<hex::Hex<48>>>, pod: &[hex::Hex<48>]| {
                pins.as_ref()
                    .is_some_and(|p| p.iter().any(|h| pod.contains(h)))
            };
            if c.tdx_mrtds.iter().any(|m| t.mrtds.contains(m))
                && overlaps(&t.rtmr1, &c.tdx_rtmr1)
                && overlaps(&t.rtmr2, &c.tdx_rtmr2)
            {
                return invalid(
                    "coco.tdx_mrtds",
                    "a Kata guest image listed here (MRTD, RTMR1, RTMR2) is also accepted by tdx.mrtds, tdx.rtmr1 \
                     and tdx.rtmr2: its evidence would pass as an appliance without its init-data",
                );
            }
        }
        Ok(())
    }

    /// The policy the hardware report inside Azure evidence is appraised
    /// against: `[azure.snp]` and `[azure.tdx]` in place of `[snp]` and
    /// `[tdx]` (same `[sim]`, same digest). Kept apart so that an Azure
    /// paravisor's measurement can never be accepted as a bare-metal one.
    pub(crate) fn azure_inner(&self) -> Policy {
        Policy {
            id: self.id.clone(),
            version: self.version,
            snp: self.azure.snp.clone(),
            tdx: self.azure.tdx.clone(),
            sim: self.sim.clone(),
            azure: AzurePolicy::default(),
            nitro: NitroPolicy::default(),
            coco: CocoPolicy::default(),
            token: self.token.clone(),
            digest: self.digest,
        }
    }
}

/// `[azure]`: Azure confidential VMs, where the paravisor (OpenHCL) holds
/// the hardware report and the guest proves itself through the vTPM.
///
/// The hardware report's measurement covers the paravisor and the virtual
/// firmware, not the guest: the guest is measured into the vTPM's PCRs, so a
/// policy that accepts Azure evidence must pin PCRs (or say explicitly that
/// it does not, `guest_unpinned_allowed`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AzurePolicy {
    /// Accept Azure evidence at all. Default false. Each hardware kind is
    /// also gated by `[azure.snp] allowed` / `[azure.tdx] allowed`.
    #[serde(default)]
    pub allowed: bool,
    /// PCR allow-lists: PCR index (`"0"` … `"23"`) → accepted SHA-256
    /// values (32-byte hex). PCRs not named are not checked.
    #[serde(default)]
    pub pcrs: BTreeMap<String, Vec<hex::Hex<32>>>,
    /// Accept Azure evidence with no PCR pinned (the guest image is then
    /// not checked at all). Default false.
    #[serde(default)]
    pub guest_unpinned_allowed: bool,
    /// Require the `user-data` the guest wrote through the vTPM to carry the
    /// session binding. Default true. With false it is not checked, and the
    /// binding rests on the quote's extraData alone (paravisors or captures
    /// that leave user-data zero).
    #[serde(default = "yes")]
    pub user_data_required: bool,
    /// `[azure.snp]`: the SEV-SNP report inside the HCL report (same fields
    /// as `[snp]`; `allowed` gates `azure-snp`; `measurements` are the
    /// paravisor's launch digests).
    #[serde(default)]
    pub snp: SnpPolicy,
    /// `[azure.tdx]`: the TD quote of an Azure TDX CVM (same fields as
    /// `[tdx]`; `allowed` gates `azure-tdx`).
    #[serde(default)]
    pub tdx: TdxPolicy,
}

impl AzurePolicy {
    /// The parsed PCR allow-lists, by ascending index.
    pub fn pcr_pins(&self) -> Vec<(usize, &[hex::Hex<32>])> {
        let mut pins: Vec<(usize, &[hex::Hex<32>])> = self
            .pcrs
            .iter()
            .filter_map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, v.as_slice())))
            .collect();
        pins.sort_by_key(|(i, _)| *i);
        pins
    }

    fn validate(&self) -> Result<(), PolicyError> {
        for (k, v) in &self.pcrs {
            let ok = k.parse::<usize>().is_ok_and(|i| i < 24)
                && !k.starts_with('+')
                && (k == "0" || !k.starts_with('0'));
            if !ok {
                return Err(PolicyError::Invalid {
                    field: "azure.pcrs",
                    problem: format!("key {k:?} is not a PCR index 0 to 23"),
                });
            }
            if v.is_empty() {
                return Err(PolicyError::Invalid {
                    field: "azure.pcrs",
                    problem: format!("PCR {k} has an empty allow-list (nothing would be accepted); leave it out to not check it"),
                });
            }
        }
        if self.allowed && self.pcrs.is_empty() && !self.guest_unpinned_allowed {
            return Err(PolicyError::Invalid {
                field: "azure.pcrs",
                problem: "the paravisor's measurement does not cover the guest: pin the PCRs that measure it, or set azure.guest_unpinned_allowed = true".into(),
            });
        }
        for s in &self.tdx.tcb_statuses {
            if s == "Revoked" || !TDX_TCB_STATUSES.contains(&s.as_str()) {
                return Err(PolicyError::Invalid {
                    field: "azure.tdx.tcb_statuses",
                    problem: format!("TCB status {s:?} is not accepted (known, never Revoked: {TDX_TCB_STATUSES:?})"),
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
    /// Allowed RTMR0 values (the VM configuration: TD HOB, UEFI variables,
    /// ACPI tables). One hex string or a list. None: not checked.
    #[serde(default, deserialize_with = "one_or_many")]
    pub rtmr0: Option<Vec<hex::Hex<48>>>,
    /// Allowed RTMR1 values (the kernel as TDVF starts it, and the boot
    /// path). One hex string or a list. None: not checked. Pins the kernel.
    #[serde(default, deserialize_with = "one_or_many")]
    pub rtmr1: Option<Vec<hex::Hex<48>>>,
    /// Allowed RTMR2 values (the kernel command line and the initrd as the
    /// Linux EFI stub measures them). One hex string or a list. None: not
    /// checked. Pins the initrd and the command line.
    #[serde(default, deserialize_with = "one_or_many")]
    pub rtmr2: Option<Vec<hex::Hex<48>>>,
    /// Allowed RTMR3 values (zero at boot). One hex string or a list. None:
    /// not checked.
    #[serde(default, deserialize_with = "one_or_many")]
    pub rtmr3: Option<Vec<hex::Hex<48>>>,
    /// Allowed kernel digests: the Authenticode SHA-384 TDVF records for the
    /// UEFI application it starts (EV_EFI_BOOT_SERVICES_APPLICATION, RTMR1),
    /// compared with the event log. None: not checked.
    #[serde(default)]
    pub kernel: Option<Vec<hex::Hex<48>>>,
    /// Allowed initrd digests: SHA-384 of the initrd, as the Linux EFI stub
    /// records it (EV_EVENT_TAG "Linux initrd", RTMR2). None: not checked.
    #[serde(default)]
    pub initrd: Option<Vec<hex::Hex<48>>>,
    /// Allowed command-line digests: SHA-384 of the UTF-16LE command line
    /// with its NUL as the Linux EFI stub records it (EV_EVENT_TAG
    /// "LOADED_IMAGE::LoadOptions", RTMR2; TDVF appends ` initrd=initrd`).
    /// None: not checked.
    #[serde(default)]
    pub cmdline: Option<Vec<hex::Hex<48>>>,
    /// Accept a policy whose images do not pin all of kernel, initrd and
    /// command line (the claims then say `os_pinned: false`). Default false.
    #[serde(default)]
    pub allow_unpinned_os: bool,
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
            kernel: None,
            initrd: None,
            cmdline: None,
            allow_unpinned_os: false,
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

impl TdxPolicy {
    /// Which of kernel, initrd and command line no pin covers (directly or
    /// through RTMR1 / RTMR2), in that order.
    pub fn unpinned_os(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.kernel.is_none() && self.rtmr1.is_none() {
            v.push("kernel");
        }
        if self.initrd.is_none() && self.rtmr2.is_none() {
            v.push("initrd");
        }
        if self.cmdline.is_none() && self.rtmr2.is_none() {
            v.push("cmdline");
        }
        v
    }
}

/// `[coco]`: Confidential Containers pods. The Kata guest images a policy
/// accepts for pods are listed here, apart from the appliance images of
/// `[snp]`/`[tdx]`: evidence matching one of them is pod evidence and must
/// carry one of the pinned init-data digests (HOST_DATA on SEV-SNP,
/// MRCONFIGID on TDX). The bundle's `provider` plays no part: a pod's
/// container writes it, unmeasured. The platform rules of `[snp]`/`[tdx]`
/// apply to pods as to appliances.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CocoPolicy {
    /// Accept evidence from CoCo pods. Default false.
    #[serde(default)]
    pub allowed: bool,
    /// Init-data digests as SEV-SNP HOST_DATA carries them (32 bytes; Kata:
    /// the init-data TOML's digest, truncated or zero-padded to 32).
    #[serde(default)]
    pub init_data_snp: Vec<hex::Hex<32>>,
    /// Init-data digests as TDX MRCONFIGID carries them (48 bytes; Kata: the
    /// digest truncated or zero-padded to 48).
    #[serde(default)]
    pub init_data_tdx: Vec<hex::Hex<48>>,
    /// SEV-SNP launch digests of the Kata guest (firmware, kernel, initrd or
    /// rootfs root hash, command line).
    #[serde(default)]
    pub snp_measurements: Vec<hex::Hex<48>>,
    /// MRTDs of the Kata guest's firmware.
    #[serde(default)]
    pub tdx_mrtds: Vec<hex::Hex<48>>,
    /// RTMR1 values of the Kata guest (its kernel).
    #[serde(default)]
    pub tdx_rtmr1: Vec<hex::Hex<48>>,
    /// RTMR2 values of the Kata guest (its command line, with the dm-verity
    /// root hash, and initrd).
    #[serde(default)]
    pub tdx_rtmr2: Vec<hex::Hex<48>>,
}

/// `"…"` or `["…", …]`, for the RTMR pins (a single string was the only
/// form before they became allow-lists).
fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<hex::Hex<48>>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(hex::Hex<48>),
        Many(Vec<hex::Hex<48>>),
    }
    match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(h)) => Ok(Some(vec![h])),
        Ok(OneOrMany::Many(v)) => Ok(Some(v)),
        Err(_) => Err(serde::de::Error::custom(
            "want a 48-byte hex string (96 hex digits) or a list of them",
        )),
    }
}

/// `[nitro]`: AWS Nitro Enclaves attestation documents.
///
/// A document is accepted when its COSE signature verifies with its leaf
/// certificate, its chain leads to the AWS Nitro Enclaves root (pinned in
/// the build) or to a simulated NSM root pinned in `sim_root_sha256`, every
/// certificate is valid at the document's timestamp and at the verifier's
/// time, its PCRs are SHA-384, it is not a debug enclave (PCR0 all zero)
/// unless `debug_allowed`, and each pinned PCR is in its list.
///
/// The `measurement` claim of a Nitro document is
/// SHA-384(PCR0 ‖ PCR1 ‖ PCR2) (48 + 48 + 48 bytes, no separator): the image
/// (EIF: kernel, command line, ramdisks), so an OpenBao role pins it as on
/// SEV-SNP. `enclavectl measure --nitro` prints the same value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NitroPolicy {
    /// Accept Nitro documents. Default false.
    #[serde(default)]
    pub allowed: bool,
    /// PCR0 (the whole EIF image): allowed values; absent = not checked.
    #[serde(default)]
    pub pcr0: Option<Vec<hex::Hex<48>>>,
    /// PCR1 (kernel, command line and the first ramdisk).
    #[serde(default)]
    pub pcr1: Option<Vec<hex::Hex<48>>>,
    /// PCR2 (the application ramdisks).
    #[serde(default)]
    pub pcr2: Option<Vec<hex::Hex<48>>>,
    /// PCR3 (the parent instance's IAM role).
    #[serde(default)]
    pub pcr3: Option<Vec<hex::Hex<48>>>,
    /// PCR4 (the parent instance id).
    #[serde(default)]
    pub pcr4: Option<Vec<hex::Hex<48>>>,
    /// PCR8 (the EIF signing certificate).
    #[serde(default)]
    pub pcr8: Option<Vec<hex::Hex<48>>>,
    /// Accept debug enclaves (PCR0 all zero: the parent can read the
    /// enclave's memory and console). Default false.
    #[serde(default)]
    pub debug_allowed: bool,
    /// SHA-256 of simulated NSM roots (DER) whose documents are accepted
    /// (claims `tee = "nitro-sim"`). [`Policy::production`] refuses any.
    #[serde(default)]
    pub sim_root_sha256: Vec<hex::Hex<32>>,
}

impl NitroPolicy {
    /// The PCR pins, by index (`None` = not checked).
    pub fn pcr_pins(&self) -> [(u8, Option<&[hex::Hex<48>]>); 6] {
        [
            (0, self.pcr0.as_deref()),
            (1, self.pcr1.as_deref()),
            (2, self.pcr2.as_deref()),
            (3, self.pcr3.as_deref()),
            (4, self.pcr4.as_deref()),
            (8, self.pcr8.as_deref()),
        ]
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
pub(crate) mod tests {
    use super::*;

    /// `text` with explicit zero minimum TCBs for `[snp]` and `[tdx]` where
    /// it names none (for tests about other rules).
    pub(crate) fn with_minima(text: &str) -> String {
        let mut text = text.to_owned();
        if text.contains("[snp]\n") && !text.contains("min_reported_tcb") {
            text = text.replacen(
                "[snp]\n",
                "[snp]\nmin_reported_tcb = { bootloader = 0 }\n",
                1,
            );
        }
        if text.contains("[tdx]\n") && !text.contains("min_tcb_evaluation_data_number") {
            text = text.replacen("[tdx]\n", "[tdx]\nmin_tcb_evaluation_data_number = 0\n", 1);
        }
        text
    }

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
    fn id_and_version_name_the_policy_and_default_to_unnamed_0() {
        let p = Policy::from_toml(b"id = \"fleet-main\"\nversion = 12\n").unwrap();
        assert_eq!((p.id.as_str(), p.version), ("fleet-main", 12));
        let p = Policy::from_toml(b"").unwrap();
        assert_eq!((p.id.as_str(), p.version), ("unnamed", 0));
        assert!(matches!(
            Policy::from_toml(b"version = \"one\"\n"),
            Err(PolicyError::Parse(_))
        ));
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
            "[snp]\nmin_reported_tcb = {{ bootloader = 0 }}\n[sim]\nallowed = true\nark_sha256 = [\"{}\"]\n",
            "ab".repeat(32)
        );
        assert!(Policy::from_toml(file.as_bytes()).unwrap().sim.allowed);
        assert!(matches!(
            Policy::production(file.as_bytes()),
            Err(PolicyError::SimulationInProduction)
        ));
    }

    fn invalid(text: &str) -> (&'static str, String) {
        match Policy::from_toml(text.as_bytes()) {
            Err(PolicyError::Invalid { field, problem }) => (field, problem),
            other => panic!("{other:?}\n{text}"),
        }
    }

    const MRTD: &str = "\"91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7\"";

    fn h48(b: u8) -> String {
        format!("\"{}\"", hex::encode(&[b; 48]))
    }

    #[test]
    fn a_tdx_policy_without_os_pins_is_refused_at_load() {
        let base = format!(
            "[tdx]\nallowed = true\nmin_tcb_evaluation_data_number = 0\nmrtds = [{MRTD}]\n"
        );
        let (field, problem) = invalid(&base);
        assert_eq!(field, "tdx.allow_unpinned_os");
        assert!(
            problem.contains("pins no kernel, initrd, cmdline:"),
            "{problem}"
        );
        let (_, problem) = invalid(&format!("{base}kernel = [{}]\n", h48(1)));
        assert!(problem.contains("pins no initrd, cmdline:"), "{problem}");
        let (_, problem) = invalid(&format!("{base}rtmr2 = {}\n", h48(2)));
        assert!(problem.contains("pins no kernel:"), "{problem}");
        // Pinned through the RTMRs, through the components, or explicitly not.
        for ok in [
            format!("{base}rtmr1 = {}\nrtmr2 = [{}]\n", h48(1), h48(2)),
            format!(
                "{base}kernel = [{}]\ninitrd = [{}]\ncmdline = [{}]\n",
                h48(1),
                h48(2),
                h48(3)
            ),
            format!("{base}kernel = [{}]\nrtmr2 = {}\n", h48(1), h48(2)),
            format!("{base}allow_unpinned_os = true\n"),
            "[tdx]\nallowed = true\n".to_owned(),
            format!("[tdx]\nmrtds = [{MRTD}]\n"),
        ] {
            let ok = with_minima(&ok);
            Policy::from_toml(ok.as_bytes()).unwrap_or_else(|e| panic!("{e:?}\n{ok}"));
        }
        let p = Policy::from_toml(
            format!(
                "{base}rtmr1 = {}\nrtmr2 = [{}, {}]\n",
                h48(1),
                h48(2),
                h48(3)
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(p.tdx.rtmr1, Some(vec![hex::Hex([1; 48])]));
        assert_eq!(p.tdx.rtmr2.as_ref().map(Vec::len), Some(2));
        assert!(p.tdx.unpinned_os().is_empty());
    }

    #[test]
    fn empty_or_malformed_tdx_pins_are_refused() {
        let base = format!("[tdx]\nallowed = true\nmin_tcb_evaluation_data_number = 0\nmrtds = [{MRTD}]\nallow_unpinned_os = true\n");
        for key in ["rtmr0", "rtmr2", "kernel", "initrd", "cmdline"] {
            let (field, _) = invalid(&format!("{base}{key} = []\n"));
            assert_eq!(field.strip_prefix("tdx."), Some(key));
        }
        for bad in [
            "rtmr1 = \"00\"\n",
            "rtmr1 = 7\n",
            "kernel = \"ab\"\n",
            "allow_unpinned_os = \"yes\"\n",
        ] {
            assert!(
                matches!(
                    Policy::from_toml(format!("{base}{bad}").as_bytes()),
                    Err(PolicyError::Parse(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn coco_pods_must_pin_their_init_data_and_image() {
        let h32 = |b: u8| format!("\"{}\"", hex::encode(&[b; 32]));
        let snp = "[snp]\nallowed = true\nmin_reported_tcb = { bootloader = 0 }\n";
        let tdx = "[tdx]\nallowed = true\nmin_tcb_evaluation_data_number = 0\n";
        let (field, _) = invalid("[coco]\nallowed = true\n");
        assert_eq!(field, "coco.allowed");
        let (field, problem) = invalid(&format!(
            "{snp}[coco]\nallowed = true\nsnp_measurements = [{}]\n",
            h48(5)
        ));
        assert_eq!(field, "coco.init_data_snp");
        assert!(
            problem.contains("enclavectl measure --initdata"),
            "{problem}"
        );
        let (field, _) = invalid(&format!(
            "{snp}[coco]\nallowed = true\nsnp_measurements = [{}]\ninit_data_snp = [{}]\n",
            h48(5),
            h32(0)
        ));
        assert_eq!(field, "coco.init_data_snp");
        let (field, _) = invalid(&format!(
            "[coco]\nallowed = true\nsnp_measurements = [{}]\ninit_data_snp = [{}]\n",
            h48(5),
            h32(6)
        ));
        assert_eq!(field, "coco.snp_measurements");
        let (field, problem) = invalid(&format!(
            "[snp]\nallowed = true\nmeasurements = [{}]\n[coco]\nallowed = true\nsnp_measurements = [{}]\ninit_data_snp = [{}]\n",
            h48(5),
            h48(5),
            h32(6)
        ));
        assert_eq!(field, "coco.snp_measurements");
        assert!(problem.contains("also in snp.measurements"), "{problem}");
        let (field, _) = invalid(&format!("{tdx}[coco]\nallowed = true\ntdx_mrtds = [{MRTD}]\ntdx_rtmr1 = [{}]\ntdx_rtmr2 = [{}]\n", h48(1), h48(2)));
        assert_eq!(field, "coco.init_data_tdx");
        let (field, _) = invalid(&format!("{tdx}[coco]\nallowed = true\ntdx_mrtds = [{MRTD}]\ninit_data_tdx = [{}]\ntdx_rtmr2 = [{}]\n", h48(9), h48(2)));
        assert_eq!(field, "coco.tdx_rtmr1");
        let good = format!(
            "{snp}{tdx}[coco]\nallowed = true\nsnp_measurements = [{}]\ninit_data_snp = [{}]\ntdx_mrtds = [{MRTD}]\ntdx_rtmr1 = [{}]\ntdx_rtmr2 = [{}]\ninit_data_tdx = [{}]\n",
            h48(5),
            h32(6),
            h48(1),
            h48(2),
            h48(9)
        );
        let p = Policy::from_toml(with_minima(&good).as_bytes()).unwrap();
        assert!(p.coco.allowed && p.coco.init_data_snp.len() == 1);
        // The same Kata guest image also accepted as an appliance by the RTMR pins.
        let both = format!(
            "{snp}[tdx]\nallowed = true\nmin_tcb_evaluation_data_number = 0\nmrtds = [{MRTD}]\nrtmr1 = {}\nrtmr2 = {}\n[coco]\nallowed = true\ntdx_mrtds = [{MRTD}]\ntdx_rtmr1 = [{}]\ntdx_rtmr2 = [{}]\ninit_data_tdx = [{}]\n",
            h48(1),
            h48(2),
            h48(1),
            h48(2),
            h48(9)
        );
        let (field, problem) = invalid(&both);
        assert_eq!(field, "coco.tdx_mrtds");
        assert!(problem.contains("without its init-data"), "{problem}");
        Policy::from_toml(
            both.replace(
                &format!("rtmr2 = {}", h48(2)),
                &format!("rtmr2 = {}", h48(3)),
            )
            .as_bytes(),
        )
        .unwrap();
        // A [coco] that does not accept pods needs nothing.
        Policy::from_toml(format!("[coco]\nsnp_measurements = [{}]\n", h48(5)).as_bytes()).unwrap();
        assert!(matches!(
            Policy::from_toml(b"[coco]\nprovider = \"coco-aa\"\n"),
            Err(PolicyError::Parse(_))
        ));
    }

    #[test]
    fn azure_sections_are_checked() {
        let pin = format!("\"{}\"", "ab".repeat(32));
        let p = Policy::from_toml(format!("[azure]\nallowed = true\n[azure.pcrs]\n4 = [{pin}]\n11 = [{pin}]\n[azure.snp]\nallowed = true\nvmpls = [0]\n").as_bytes()).unwrap();
        assert!(p.azure.allowed && p.azure.snp.allowed && !p.azure.tdx.allowed && !p.snp.allowed);
        assert_eq!(
            p.azure
                .pcr_pins()
                .iter()
                .map(|(i, _)| *i)
                .collect::<Vec<_>>(),
            vec![4, 11]
        );
        assert!(p.azure.user_data_required);
        for (text, want) in [
            ("[azure]\nallowed = true\n".to_owned(), "azure.pcrs"),
            (format!("[azure.pcrs]\n24 = [{pin}]\n"), "azure.pcrs"),
            (format!("[azure.pcrs]\n04 = [{pin}]\n"), "azure.pcrs"),
            ("[azure.pcrs]\n4 = []\n".to_owned(), "azure.pcrs"),
            (
                "[azure.tdx]\ntcb_statuses = [\"Revoked\"]\n".to_owned(),
                "azure.tdx.tcb_statuses",
            ),
        ] {
            match Policy::from_toml(text.as_bytes()) {
                Err(PolicyError::Invalid { field, .. }) => assert_eq!(field, want, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(
            Policy::from_toml(b"[azure]\nallowed = true\nguest_unpinned_allowed = true\n").is_ok()
        );
        assert!(matches!(
            Policy::from_toml(b"[azure]\npcr = 1\n"),
            Err(PolicyError::Parse(_))
        ));
    }

    #[test]
    fn a_policy_without_minimum_tcb_is_refused_at_load() {
        for (file, field) in [
            ("[snp]\nallowed = true\n", "snp.min_reported_tcb"),
            ("[snp]\nallowed = true\nmin_launch_tcb = { snp = 8 }\n", "snp.min_reported_tcb"),
            (
                "[sim]\nallowed = true\nark_sha256 = [\"abababababababababababababababababababababababababababababababab\"]\n",
                "snp.min_reported_tcb",
            ),
            ("[tdx]\nallowed = true\n", "tdx.min_tcb_evaluation_data_number"),
        ] {
            match Policy::from_toml(file.as_bytes()) {
                Err(PolicyError::Invalid { field: f, problem }) => {
                    assert_eq!(f, field, "{file}");
                    assert!(problem.contains("needs the lowest"), "{problem}");
                }
                other => panic!("{file}: {other:?}"),
            }
        }
        // Present (even all zeros, an explicit relaxation) is accepted; a
        // TEE that is not allowed needs none.
        let zero =
            Policy::from_toml(b"[snp]\nallowed = true\nmin_reported_tcb = { bootloader = 0 }\n")
                .unwrap();
        assert_eq!(
            zero.relaxations("snp"),
            vec!["snp.min_reported_tcb = 0 (any TCB)".to_owned()]
        );
        let some =
            Policy::from_toml(b"[snp]\nallowed = true\nmin_reported_tcb = { snp = 8 }\n").unwrap();
        assert!(some.relaxations("snp").is_empty());
        Policy::from_toml(b"[tdx]\nallowed = false\n").unwrap();
        let tdx = Policy::from_toml(b"[tdx]\nallowed = true\nmin_tcb_evaluation_data_number = 17\ntcb_statuses = [\"UpToDate\", \"OutOfDate\"]\n").unwrap();
        assert_eq!(
            tdx.relaxations("tdx"),
            vec!["tdx.tcb_statuses also [\"OutOfDate\"]".to_owned()]
        );
    }

    #[test]
    fn token_ttl_cap_defaults_to_60_and_a_raise_is_a_relaxation() {
        let p = Policy::from_toml(b"").unwrap();
        assert_eq!(p.token.max_ttl_secs, 60);
        assert!(!p.relaxations("snp").iter().any(|r| r.starts_with("token")));
        let raised = Policy::from_toml(b"[token]\nmax_ttl_secs = 300\n").unwrap();
        assert_eq!(raised.token.max_ttl_secs, 300);
        assert!(raised
            .relaxations("tdx")
            .contains(&"token.max_ttl_secs = 300 (above 60)".to_owned()));
        assert!(matches!(
            Policy::from_toml(b"[token]\nmax_ttl_secs = 0\n"),
            Err(PolicyError::Invalid {
                field: "token.max_ttl_secs",
                ..
            })
        ));
        assert!(matches!(
            Policy::from_toml(b"[token]\nmax_ttl = 5\n"),
            Err(PolicyError::Parse(_))
        ));
    }

    #[test]
    fn example_file_parses() {
        let text = include_bytes!("../policy.example.toml");
        let p = Policy::production(text).unwrap();
        assert!(p.snp.allowed);
        assert_eq!(p.snp.crl, CrlMode::Require);
        assert_eq!((p.id.as_str(), p.version), ("example", 1));
        assert!(p.azure.allowed && p.azure.snp.allowed && !p.azure.tdx.allowed);
        assert_eq!(p.azure.pcr_pins().len(), 1);
        assert!(!p.nitro.allowed && !p.nitro.debug_allowed);
        assert_eq!(p.nitro.pcr0.as_ref().map(Vec::len), Some(1));
        assert!(p.nitro.pcr1.is_none() && p.nitro.sim_root_sha256.is_empty());
    }

    #[test]
    fn nitro_pcr_pins_are_48_bytes_and_sim_roots_stay_out_of_production() {
        let e = Policy::from_toml(b"[nitro]\nallowed = true\npcr0 = [\"abcd\"]\n").unwrap_err();
        assert!(
            format!("{e:?}").contains("is 2 bytes, want 48 (96 hex digits)"),
            "{e:?}"
        );
        let e = Policy::from_toml(b"[nitro]\nallowed = true\npcr5 = []\n").unwrap_err();
        assert!(format!("{e:?}").contains("unknown field `pcr5`"), "{e:?}");
        let sim = format!(
            "[nitro]\nallowed = true\nsim_root_sha256 = [\"{}\"]\n",
            "ab".repeat(32)
        );
        assert!(Policy::from_toml(sim.as_bytes()).is_ok());
        assert!(matches!(
            Policy::production(sim.as_bytes()),
            Err(PolicyError::NitroSimulationInProduction)
        ));
    }
}
