//! `enclavectl measure`: the expected launch measurements of an image, computed ahead of
//! time, and what pins them: an expected-measurements file, a verifier policy snippet and
//! two OpenBao roles.
//!
//! * SEV-SNP: the launch digest from OVMF, kernel, initrd, command line, vCPU count and
//!   type, VMM type and guest features, byte-identical to `sev-snp-measure --mode snp`
//!   (0.0.13), for every requested vCPU count in one pass ([`measure::snp`]).
//! * TDX (`--tdvf`, alias `--tdx`): MRTD from the TDVF metadata; the event digests the
//!   firmware and the kernel's EFI stub record for a direct boot (the kernel's Authenticode
//!   SHA-384 in RTMR[1], the command line and the initrd in RTMR[2]), which the verifier
//!   compares with the event log (`tdx.kernel`, `tdx.cmdline`, `tdx.initrd`); RTMR[2],
//!   RTMR[3] (zero); RTMR[1] for a TDVF that measures the kernel as given (`--tdx-rtmr1`) or
//!   as observed on a reference boot (`--tdx-rtmr1-value`); and then the TDX `measurement`
//!   claim, SHA-384("enclave-init/tdx-measurement/v1\0" ‖ MRTD ‖ RTMR1 ‖ RTMR2)
//!   ([`tee_formats::tdx::measurement`]), which the OpenBao roles bind.
//! * Simulation (`--sim`): the value sim-psp reports ([`measure::sim::sim_launch_digest`]).
//! * AWS Nitro Enclaves (`--nitro IMAGE.eif`): PCR0, PCR1, PCR2 (and PCR8 for a signed
//!   image) as the EIF format defines them ([`measure::nitro`]), and the `measurement`
//!   claim SHA-384(PCR0 ‖ PCR1 ‖ PCR2); `nitro/pcr0`… lines, and with `--out-dir` a
//!   `[nitro]` policy snippet and the JWT role (a mode of its own: no other TEE option).
//! * CoCo pods (`--initdata FILE`): the init-data digest as Kata binds it (the TOML hashed
//!   with the algorithm it names, truncated or zero-padded to SEV-SNP HOST_DATA's 32 bytes
//!   and TDX MRCONFIGID's 48). The images measured with it are then Kata guests: the policy
//!   snippet lists them under `[coco]` with the init-data, and the roles bind `init_data`.
//!
//! Standard output has one `KEY HEX` line per value (`snp/<vcpus>`, `tdx/mrtd`,
//! `tdx/kernel`, `tdx/cmdline`, `tdx/initrd`, `tdx/rtmr1`, `tdx/rtmr2`, `tdx/rtmr3`,
//! `tdx/measurement`, `sim`, `initdata/algorithm`, `initdata/digest`,
//! `initdata/snp_host_data`, `initdata/tdx_mr_config_id`). With `--out-dir`, four files are
//! written there: `expected.json`, `verifier-policy.toml`, `openbao-role.json` and
//! `openbao-cel-role.json` (`kata-config/measurements/README.md` describes them).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use measure::hashes::sha256;
use measure::snp::{self, Inputs, VcpuType, VmmType};
use measure::{tdx, to_hex, Digest48};
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::CmdResult;

/// sev-snp-measure release whose output the SNP digest is checked against (tests).
pub const SEV_SNP_MEASURE_COMPAT: &str = "0.0.13";
/// The JWT auth mount, role and token policy the verifier's tokens are presented to.
pub const OPENBAO_MOUNT: &str = "enclave-attest";
/// OpenBao role (standard and CEL) and token policy name.
pub const OPENBAO_ROLE: &str = "enclave-agent";
/// The cert auth mount of certificate mode (`vault.auth = "cert"`).
pub const OPENBAO_CERT_MOUNT: &str = "enclave-cert";

/// Compute expected launch measurements; optionally write the verifier policy snippet and
/// the OpenBao roles that pin them.
#[derive(clap::Args, Debug)]
pub struct Measure {
    /// OVMF image for SEV-SNP (an AmdSevX64 build, e.g. Kata's AMDSEV.fd, when a kernel is
    /// given: it needs an SNP_KERNEL_HASHES section).
    #[arg(long, required_unless_present_any = ["sim", "tdvf", "initdata", "nitro"])]
    ovmf: Option<PathBuf>,
    /// Precomputed digest of the OVMF pages (`sev-snp-measure --snp-ovmf-hash`, 96 hex
    /// digits); the OVMF image is still read for its metadata.
    #[arg(long, requires = "ovmf")]
    snp_ovmf_hash: Option<String>,
    /// TDVF firmware for TDX (e.g. Kata's OVMF.inteltdx.fd): adds MRTD, the kernel,
    /// command-line and initrd event digests, the RTMRs and the TDX measurement claim.
    #[arg(long, visible_alias = "tdx", conflicts_with = "sim")]
    tdvf: Option<PathBuf>,
    /// Also compute RTMR[1], assuming a TDVF (edk2 >= stable202505) that measures the kernel
    /// image unmodified; older TDVF builds measure QEMU's patched setup header instead.
    #[arg(long, requires = "tdvf")]
    tdx_rtmr1: bool,
    /// RTMR[1] as observed on a reference boot of this image with this TDVF
    /// (`enclavectl evidence inspect` of its CCEL shows `replayed_rtmrs`), for TDVF builds
    /// whose RTMR[1] is not computed here; 96 hex digits.
    #[arg(
        long,
        value_name = "HEX",
        requires = "tdvf",
        conflicts_with = "tdx_rtmr1"
    )]
    tdx_rtmr1_value: Option<String>,
    /// A CoCo pod's init-data TOML (the file whose gzip+base64 is the pod's
    /// `io.katacontainers.config.hypervisor.cc_init_data` annotation): computes its digest as
    /// Kata binds it into HOST_DATA / MRCONFIGID; the images measured with it are Kata guests.
    #[arg(long, value_name = "FILE")]
    initdata: Option<PathBuf>,
    /// Kernel (bzImage) for measured direct boot.
    #[arg(long, required_if_eq("sim", "true"))]
    kernel: Option<PathBuf>,
    /// Initrd (our initramfs).
    #[arg(long, requires = "kernel")]
    initrd: Option<PathBuf>,
    /// File holding the exact kernel command line (trailing newlines are dropped, as
    /// `-append "$(cat FILE)"` drops them), e.g. kata-config/cmdline.
    #[arg(long, conflicts_with = "cmdline", requires = "kernel")]
    cmdline_file: Option<PathBuf>,
    /// The exact kernel command line.
    #[arg(long, requires = "kernel")]
    cmdline: Option<String>,
    /// vCPU counts: `N` or `A-B` (e.g. `1-64`: every count, in one pass).
    #[arg(long, required_unless_present_any = ["sim", "tdvf", "initdata", "nitro"], conflicts_with = "sim")]
    vcpus: Option<VcpuRange>,
    /// vCPU model as passed to QEMU `-cpu` (`sev-snp-measure --vcpu-type`).
    #[arg(long, default_value = "EPYC-v4", conflicts_with = "vcpu_sig")]
    vcpu_type: String,
    /// Explicit CPUID signature instead of a model (`--vcpu-sig`, e.g. 0xa00f11).
    #[arg(long)]
    vcpu_sig: Option<String>,
    /// Hypervisor: QEMU, ec2 or gce.
    #[arg(long, default_value = "QEMU")]
    vmm_type: String,
    /// SEV_FEATURES of the VMSAs (`--guest-features`): 0x1 = SNPActive; 0x21 adds DebugSwap.
    #[arg(long, default_value = "0x1")]
    guest_features: String,
    /// The simulation TEE (sim-psp): SHA-384 over kernel, initrd and command line only.
    #[arg(long, conflicts_with_all = ["ovmf", "snp_ovmf_hash"])]
    sim: bool,
    /// Write expected.json, verifier-policy.toml, openbao-role.json,
    /// openbao-cel-role.json and openbao-cert-role.json into this directory
    /// (created if missing).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// `aud` the verifier puts in its tokens (bound_audiences of the roles).
    #[arg(long, default_value = "openbao")]
    audience: String,
    /// Lifetime of the OpenBao token issued at login, in seconds (a hard maximum: the guest
    /// re-attests before it ends).
    #[arg(long, default_value_t = 900)]
    token_ttl: u64,
    /// Minimum SNP reported TCB for the policy snippet and the CEL role:
    /// `bootloader=N,tee=N,snp=N,microcode=N` (omitted components are 0).
    #[arg(long)]
    min_tcb: Option<MinTcb>,
    /// With --sim: SHA-256 of the simulated PSP's ARK certificate (DER) to pin in the policy
    /// snippet; without it the snippet's [sim] section is left disabled.
    #[arg(long, requires = "sim")]
    sim_ark_sha256: Vec<String>,
    /// An AWS Nitro Enclave Image File (`enclavectl image build --format eif`): its PCRs
    /// and the Nitro `measurement` claim.
    #[arg(long, value_name = "IMAGE.eif", conflicts_with_all = ["ovmf", "tdvf", "sim", "kernel", "initdata"])]
    nitro: Option<PathBuf>,
    /// With --nitro: SHA-256 of a SIMULATED NSM's root (`enclavectl sim-nsm` prints it) to
    /// pin in the snippet's `nitro.sim_root_sha256` (development only; the role then also
    /// accepts `nitro-sim`).
    #[arg(long, requires = "nitro")]
    nitro_sim_root_sha256: Option<String>,
    /// The verifier's client CA (PEM, `enclavectl verifier --client-ca-cert`) for the
    /// cert role (certificate mode); without it openbao-cert-role.json leaves
    /// `certificate` out and it is given when applying.
    #[arg(long)]
    client_ca: Option<PathBuf>,
}

/// An inclusive range of vCPU counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VcpuRange {
    /// First count.
    pub start: u32,
    /// Last count.
    pub end: u32,
}

impl FromStr for VcpuRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let num = |t: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("vCPU count {t:?} is not a number (want N or A-B)"))
        };
        let (start, end) = match s.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(s)?;
                (n, n)
            }
        };
        if start == 0 || start > end || end > snp::MAX_VCPUS {
            return Err(format!(
                "vCPU range {start}-{end} is not within 1-{} or is empty",
                snp::MAX_VCPUS
            ));
        }
        Ok(VcpuRange { start, end })
    }
}

/// A minimum SNP TCB (each component compared with `>=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MinTcb {
    /// BOOT_LOADER SPL.
    pub bootloader: u8,
    /// TEE SPL.
    pub tee: u8,
    /// SNP SPL.
    pub snp: u8,
    /// MICROCODE SPL.
    pub microcode: u8,
}

impl FromStr for MinTcb {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut t = MinTcb::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("TCB component {part:?} is not NAME=VALUE"))?;
            let v: u8 = v
                .trim()
                .parse()
                .map_err(|_| format!("TCB component {part:?}: value is not 0-255"))?;
            match k.trim() {
                "bootloader" => t.bootloader = v,
                "tee" => t.tee = v,
                "snp" => t.snp = v,
                "microcode" => t.microcode = v,
                other => {
                    return Err(format!(
                        "unknown TCB component {other:?} (known: bootloader, tee, snp, microcode)"
                    ))
                }
            }
        }
        Ok(t)
    }
}

impl MinTcb {
    fn components(&self) -> [(&'static str, u8); 4] {
        [
            ("bootloader", self.bootloader),
            ("tee", self.tee),
            ("snp", self.snp),
            ("microcode", self.microcode),
        ]
    }
}

/// A file read for measurement, with what `expected.json` records about it.
struct Input {
    name: String,
    bytes: Vec<u8>,
}

impl Input {
    fn read(path: &Path) -> Result<Input, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Ok(Input { name, bytes })
    }

    fn describe(&self) -> Value {
        json!({
            "file": self.name,
            "bytes": self.bytes.len(),
            "sha256": to_hex(&sha256(&self.bytes)),
        })
    }
}

/// Everything computed, ready to print and to render into the output files.
struct Results {
    snp: Option<SnpResults>,
    tdx: Option<TdxResults>,
    sim: Option<Digest48>,
    initdata: Option<InitData>,
}

struct SnpResults {
    vmm_type: VmmType,
    vcpu_type: VcpuType,
    guest_features: u64,
    ovmf_hash: Digest48,
    digests: Vec<(u32, Digest48)>,
}

struct TdxResults {
    mrtd: Digest48,
    /// The kernel's Authenticode SHA-384 (RTMR[1] event), when the kernel is a PE image.
    kernel: Option<Digest48>,
    /// The command-line event (RTMR[2]) and the command line it hashes.
    cmdline: Option<(Digest48, String)>,
    /// The initrd event (RTMR[2]).
    initrd: Option<Digest48>,
    rtmr1: Option<Digest48>,
    /// Where RTMR[1] came from.
    rtmr1_source: Option<&'static str>,
    rtmr2: Option<Digest48>,
    /// The `measurement` claim: needs RTMR[1] and RTMR[2].
    measurement: Option<Digest48>,
}

/// A CoCo init-data digest, as Kata binds it (kata-containers `src/libs/kata-types/src/
/// initdata.rs` `calculate_initdata_digest`, `src/agent/src/initdata.rs`): the TOML bytes
/// hashed with the algorithm the TOML names, then truncated or zero-padded to the TEE field.
struct InitData {
    name: String,
    sha256: Digest32,
    algorithm: String,
    digest: Vec<u8>,
    snp_host_data: Digest32,
    tdx_mr_config_id: Digest48,
}

type Digest32 = [u8; 32];

impl InitData {
    fn compute(input: &Input) -> Result<InitData, String> {
        let what = format!("init-data {}", input.name);
        let text = std::str::from_utf8(&input.bytes).map_err(|_| format!("{what}: not UTF-8"))?;
        let doc: toml::Table = text.parse().map_err(|e| format!("{what}: not TOML: {e}"))?;
        let field = |k: &str| -> Result<String, String> {
            doc.get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| {
                    format!("{what}: no string field `{k}` (Kata requires version and algorithm)")
                })
        };
        let version = field("version")?;
        if version != "0.1.0" {
            return Err(format!(
                "{what}: version {version:?}; Kata supports \"0.1.0\" only"
            ));
        }
        if !doc.get("data").is_some_and(|d| d.is_table()) {
            return Err(format!("{what}: no [data] table"));
        }
        let algorithm = field("algorithm")?;
        let digest: Vec<u8> = match algorithm.as_str() {
            "sha256" => sha2::Sha256::digest(&input.bytes).to_vec(),
            "sha384" => sha2::Sha384::digest(&input.bytes).to_vec(),
            "sha512" => sha2::Sha512::digest(&input.bytes).to_vec(),
            other => {
                return Err(format!(
                    "{what}: algorithm {other:?}; Kata supports sha256, sha384, sha512"
                ))
            }
        };
        Ok(InitData {
            name: input.name.clone(),
            sha256: sha256(&input.bytes),
            snp_host_data: fit(&digest),
            tdx_mr_config_id: fit(&digest),
            algorithm,
            digest,
        })
    }
}

/// Kata's `adjust_digest`: the first N bytes, zero-padded when the digest is shorter.
fn fit<const N: usize>(digest: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, d) in out.iter_mut().zip(digest) {
        *o = *d;
    }
    out
}

/// Runs the subcommand.
pub fn run(args: Measure) -> CmdResult {
    if let Some(eif) = &args.nitro {
        return run_nitro(&args, eif);
    }
    let ovmf = args.ovmf.as_deref().map(Input::read).transpose()?;
    let tdvf = args.tdvf.as_deref().map(Input::read).transpose()?;
    let kernel = args.kernel.as_deref().map(Input::read).transpose()?;
    let initrd = args.initrd.as_deref().map(Input::read).transpose()?;
    let cmdline = read_cmdline(&args)?;

    let initdata = args.initdata.as_deref().map(Input::read).transpose()?;
    let mut results = Results {
        snp: None,
        tdx: None,
        sim: None,
        initdata: initdata.as_ref().map(InitData::compute).transpose()?,
    };
    if args.sim {
        let k = kernel.as_ref().ok_or("--sim needs --kernel")?;
        results.sim = Some(measure::sim::sim_launch_digest(
            &k.bytes,
            initrd
                .as_ref()
                .map(|i| i.bytes.as_slice())
                .unwrap_or_default(),
            cmdline.as_deref().unwrap_or_default(),
        ));
    }
    if let Some(fw) = &ovmf {
        let vcpus = args.vcpus.ok_or("--ovmf needs --vcpus")?;
        let vcpu_type = match &args.vcpu_sig {
            Some(s) => VcpuType::Signature(parse_u32_hex(s, "--vcpu-sig")?),
            None => args.vcpu_type.parse()?,
        };
        let vmm_type: VmmType = args.vmm_type.parse()?;
        let guest_features = parse_u64_hex(&args.guest_features, "--guest-features")?;
        let seed = args
            .snp_ovmf_hash
            .as_deref()
            .map(measure::digest_from_hex)
            .transpose()
            .map_err(|e| format!("--snp-ovmf-hash: {e}"))?;
        let inputs = Inputs {
            ovmf: &fw.bytes,
            ovmf_hash: seed,
            kernel: kernel.as_ref().map(|k| k.bytes.as_slice()),
            initrd: initrd.as_ref().map(|i| i.bytes.as_slice()),
            cmdline: cmdline.as_deref(),
            vcpu_type,
            vmm_type,
            guest_features,
        };
        let digests = snp::launch_digests(&inputs, vcpus.start..=vcpus.end)
            .map_err(|e| chain(&e, &format!("SEV-SNP launch digest of {}", fw.name)))?;
        let ovmf_hash = match seed {
            Some(s) => s,
            None => snp::ovmf_hash(&fw.bytes).map_err(|e| chain(&e, "OVMF hash"))?,
        };
        results.snp = Some(SnpResults {
            vmm_type,
            vcpu_type,
            guest_features,
            ovmf_hash,
            digests,
        });
    }
    if let Some(fw) = &tdvf {
        let parsed = tdx::Tdvf::parse(&fw.bytes)
            .map_err(|e| chain(&e, &format!("TDX measurement of {}", fw.name)))?;
        // The kernel's Authenticode digest: a bzImage with an EFI stub is a PE image.
        let kernel_event = match &kernel {
            Some(k) => match tdx::authenticode_sha384(&k.bytes) {
                Ok(d) => Some(d),
                Err(e) if args.tdx_rtmr1 => return Err(chain(&e, "TDX RTMR[1]").into()),
                Err(_) => None,
            },
            None => None,
        };
        let (rtmr1, rtmr1_source) = match (&args.tdx_rtmr1_value, args.tdx_rtmr1) {
            (Some(h), _) => (
                Some(measure::digest_from_hex(h).map_err(|e| format!("--tdx-rtmr1-value: {e}"))?),
                Some("observed on a reference boot (--tdx-rtmr1-value)"),
            ),
            (None, true) => {
                let k = kernel.as_ref().ok_or("--tdx-rtmr1 needs --kernel")?;
                (
                    Some(tdx::rtmr1_direct(&k.bytes).map_err(|e| chain(&e, "TDX RTMR[1]"))?),
                    Some("TDVF >= edk2-stable202505: kernel PE image measured unmodified"),
                )
            }
            (None, false) => (None, None),
        };
        // RTMR[2] of a direct boot: the EFI stub's LoadOptions event (TDVF's QEMU loader
        // appends " initrd=initrd" when it loads an initrd) and its initrd event.
        let c = cmdline.clone().unwrap_or_default();
        let (cmdline_event, initrd_event, rtmr2) = match &initrd {
            Some(i) => {
                let passed = tdx::tdvf_cmdline(&c);
                let events = [tdx::cmdline_event(&passed), tdx::sha384(&i.bytes)];
                (
                    Some((events[0], passed)),
                    Some(events[1]),
                    Some(tdx::rtmr_fold(&events)),
                )
            }
            None if kernel.is_some() && cmdline.is_some() => {
                let event = tdx::cmdline_event(&c);
                (
                    Some((event, c.clone())),
                    None,
                    Some(tdx::rtmr_fold(&[event])),
                )
            }
            None => (None, None, None),
        };
        let mrtd = parsed.mrtd();
        let measurement = match (&rtmr1, &rtmr2) {
            (Some(r1), Some(r2)) => Some(tee_formats::tdx::measurement::image_measurement(
                &mrtd, r1, r2,
            )),
            _ => None,
        };
        results.tdx = Some(TdxResults {
            mrtd,
            kernel: kernel_event,
            cmdline: cmdline_event,
            initrd: initrd_event,
            rtmr1,
            rtmr1_source,
            rtmr2,
            measurement,
        });
    }
    if args.out_dir.is_some() {
        check_pinnable(&results)?;
    }

    print!("{}", render_stdout(&results));

    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let files = [
            (
                "expected.json",
                pretty(&expected_json(
                    &results, &ovmf, &tdvf, &kernel, &initrd, &cmdline,
                ))?,
            ),
            (
                "verifier-policy.toml",
                checked_policy_snippet(&args, &results, &kernel, &initrd)?,
            ),
            (
                "openbao-role.json",
                pretty(&openbao_role(&args, &results)?)?,
            ),
            (
                "openbao-cel-role.json",
                pretty(&openbao_cel_role(&args, &results)?)?,
            ),
            (
                "openbao-cert-role.json",
                pretty(&openbao_cert_role(&args, &results)?)?,
            ),
        ];
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        eprintln!(
            "apply with:\n  bao write auth/{OPENBAO_MOUNT}/role/{OPENBAO_ROLE} @{d}/openbao-role.json\n  \
             bao write auth/{OPENBAO_MOUNT}/cel/role/{OPENBAO_ROLE} @{d}/openbao-cel-role.json   \
             (login: auth/{OPENBAO_MOUNT}/cel/login)\n  \
             bao write auth/{OPENBAO_CERT_MOUNT}/certs/{OPENBAO_ROLE} @{d}/openbao-cert-role.json{ca}   \
             (certificate mode: vault.auth = \"cert\", vault.auth_path = \"{OPENBAO_CERT_MOUNT}\")",
            d = dir.display(),
            ca = if args.client_ca.is_some() { "" } else { " certificate=@<verifier client CA PEM>" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The command line from `--cmdline` or `--cmdline-file` (trailing newlines dropped).
fn read_cmdline(args: &Measure) -> Result<Option<String>, String> {
    let raw = match (&args.cmdline, &args.cmdline_file) {
        (Some(c), _) => c.clone(),
        (None, Some(p)) => {
            let bytes =
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("{}: the command line is not UTF-8", p.display()))?;
            text.trim_end_matches('\n').to_owned()
        }
        (None, None) => return Ok(None),
    };
    if raw.contains('\0') || raw.contains('\n') {
        return Err(
            "the kernel command line contains a NUL or an inner newline; QEMU -append cannot pass it"
                .to_owned(),
        );
    }
    Ok(Some(raw))
}

fn chain(e: &dyn std::error::Error, what: &str) -> String {
    let mut s = format!("{what}: {e}");
    let mut src = e.source();
    while let Some(inner) = src {
        let _ = write!(s, ": {inner}");
        src = inner.source();
    }
    s
}

fn parse_u64_hex(s: &str, flag: &str) -> Result<u64, String> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse::<u64>(),
    };
    parsed.map_err(|_| format!("{flag}: {s:?} is not a number (decimal or 0x-hex)"))
}

fn parse_u32_hex(s: &str, flag: &str) -> Result<u32, String> {
    u32::try_from(parse_u64_hex(s, flag)?).map_err(|_| format!("{flag}: {s:?} exceeds 32 bits"))
}

fn pretty(v: &Value) -> Result<String, String> {
    serde_json::to_string_pretty(v)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| format!("rendering JSON: {e}"))
}

/// What `--out-dir` needs to pin a TDX image: the kernel (its event digest or RTMR[1]),
/// RTMR[2], and RTMR[1] for the measurement claim the roles bind; a pod image and its
/// init-data together.
fn check_pinnable(r: &Results) -> Result<(), String> {
    if let Some(t) = &r.tdx {
        if t.kernel.is_none() && t.rtmr1.is_none() {
            return Err("TDX: nothing would pin the kernel: --kernel must be a PE (EFI stub) image, or give \
                        --tdx-rtmr1 / --tdx-rtmr1-value"
                .to_owned());
        }
        if t.rtmr2.is_none() {
            return Err("TDX: nothing would pin the command line and initrd: give --kernel with --cmdline or \
                        --cmdline-file (and --initrd)"
                .to_owned());
        }
        if t.measurement.is_none() {
            return Err("TDX: the measurement claim the OpenBao roles bind covers RTMR[1]: pass --tdx-rtmr1 \
                        (TDVF >= edk2-stable202505) or --tdx-rtmr1-value HEX from a reference boot \
                        (enclavectl evidence inspect of its CCEL)"
                .to_owned());
        }
    }
    if r.initdata.is_some() && r.snp.is_none() && r.tdx.is_none() {
        return Err("--initdata with --out-dir needs the Kata guest's image (--ovmf and/or --tdvf with its \
                    kernel and command line): a pod is pinned by its image and its init-data together"
            .to_owned());
    }
    Ok(())
}

fn render_stdout(r: &Results) -> String {
    let mut out = String::new();
    if let Some(s) = &r.snp {
        for (n, d) in &s.digests {
            let _ = writeln!(out, "snp/{n} {}", to_hex(d));
        }
    }
    if let Some(t) = &r.tdx {
        let _ = writeln!(out, "tdx/mrtd {}", to_hex(&t.mrtd));
        if let Some(v) = &t.kernel {
            let _ = writeln!(out, "tdx/kernel {}", to_hex(v));
        }
        if let Some((v, _)) = &t.cmdline {
            let _ = writeln!(out, "tdx/cmdline {}", to_hex(v));
        }
        if let Some(v) = &t.initrd {
            let _ = writeln!(out, "tdx/initrd {}", to_hex(v));
        }
        if let Some(v) = &t.rtmr1 {
            let _ = writeln!(out, "tdx/rtmr1 {}", to_hex(v));
        }
        if let Some(v) = &t.rtmr2 {
            let _ = writeln!(out, "tdx/rtmr2 {}", to_hex(v));
        }
        let _ = writeln!(out, "tdx/rtmr3 {}", to_hex(&tdx::RTMR3_AT_BOOT));
        if let Some(v) = &t.measurement {
            let _ = writeln!(out, "tdx/measurement {}", to_hex(v));
        }
    }
    if let Some(d) = &r.sim {
        let _ = writeln!(out, "sim {}", to_hex(d));
    }
    if let Some(i) = &r.initdata {
        let _ = writeln!(out, "initdata/algorithm {}", i.algorithm);
        let _ = writeln!(out, "initdata/digest {}", to_hex(&i.digest));
        let _ = writeln!(out, "initdata/snp_host_data {}", to_hex(&i.snp_host_data));
        let _ = writeln!(
            out,
            "initdata/tdx_mr_config_id {}",
            to_hex(&i.tdx_mr_config_id)
        );
    }
    out
}

/// The `measurement` claims a verifier issues for this image: the SNP digests, the
/// simulation digest, the TDX image measurement (MRTD, RTMR1, RTMR2).
fn pinned_measurements(r: &Results) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    if let Some(s) = &r.snp {
        v.extend(s.digests.iter().map(|(_, d)| to_hex(d)));
    }
    if let Some(d) = &r.sim {
        v.push(to_hex(d));
    }
    if let Some(m) = r.tdx.as_ref().and_then(|t| t.measurement.as_ref()) {
        v.push(to_hex(m));
    }
    v
}

/// The `init_data` claims of the pods (HOST_DATA for SNP images, MRCONFIGID for TDX).
fn pinned_init_data(r: &Results) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(i) = &r.initdata {
        if r.snp.is_some() || r.sim.is_some() {
            v.push(to_hex(&i.snp_host_data));
        }
        if r.tdx.is_some() {
            v.push(to_hex(&i.tdx_mr_config_id));
        }
    }
    v
}

/// The `tee` claim values the roles accept.
fn tees(r: &Results) -> Vec<&'static str> {
    let mut v = Vec::new();
    if r.snp.is_some() {
        v.push("snp");
    }
    if r.tdx.is_some() {
        v.push("tdx");
    }
    if r.sim.is_some() {
        v.push("sim");
    }
    v
}

fn expected_json(
    r: &Results,
    ovmf: &Option<Input>,
    tdvf: &Option<Input>,
    kernel: &Option<Input>,
    initrd: &Option<Input>,
    cmdline: &Option<String>,
) -> Value {
    let mut inputs = serde_json::Map::new();
    for (key, input) in [
        ("ovmf", ovmf),
        ("tdvf", tdvf),
        ("kernel", kernel),
        ("initrd", initrd),
    ] {
        if let Some(i) = input {
            inputs.insert(key.to_owned(), i.describe());
        }
    }
    if let Some(c) = cmdline {
        inputs.insert(
            "cmdline".to_owned(),
            json!({
                "value": c,
                "sha256": to_hex(&sha256(c.as_bytes())),
                "sev_hashes_sha256": to_hex(&measure::hashes::cmdline_sha256(c)),
            }),
        );
    }
    let mut doc = json!({
        "format": "enclave-init/expected-measurements/v1",
        "tees": tees(r),
        "tools": {
            "enclavectl": env!("CARGO_PKG_VERSION"),
            // The measure crate shares the workspace version (version.workspace = true).
            "measure": env!("CARGO_PKG_VERSION"),
            "snp_reference": format!("sev-snp-measure {SEV_SNP_MEASURE_COMPAT} (byte-identical)"),
        },
        "inputs": Value::Object(inputs),
    });
    if let (Some(s), Some(obj)) = (&r.snp, doc.as_object_mut()) {
        obj.insert(
            "snp".to_owned(),
            json!({
                "vmm_type": s.vmm_type.name(),
                "vcpu_type": s.vcpu_type.name(),
                "vcpu_signature": format!("{:#x}", s.vcpu_type.signature()),
                "guest_features": format!("{:#x}", s.guest_features),
                "ovmf_hash": to_hex(&s.ovmf_hash),
                "launch_digests": s.digests.iter().map(|(n, d)| json!({
                    "vcpus": n,
                    "measurement": to_hex(d),
                })).collect::<Vec<_>>(),
            }),
        );
    }
    if let (Some(t), Some(obj)) = (&r.tdx, doc.as_object_mut()) {
        let mut not_covered = vec![
            "rtmr0: TD HOB, CFV, EFI variables and the ACPI tables QEMU generates for the exact machine (memory size, devices)",
        ];
        if t.rtmr1.is_none() {
            not_covered.push("rtmr1: depends on the TDVF version (pass --tdx-rtmr1 for edk2 >= stable202505, which measures the kernel unmodified, or --tdx-rtmr1-value from a reference boot)");
        }
        if t.rtmr2.is_none() {
            not_covered.push("rtmr2: computed only for a direct boot with a command line");
        }
        if t.measurement.is_none() {
            not_covered.push("measurement: needs RTMR[1] and RTMR[2]");
        }
        let mut tdx_obj = json!({
            "mrtd": to_hex(&t.mrtd),
            "rtmr3": to_hex(&tdx::RTMR3_AT_BOOT),
            "mrtd_order": "per page: TDH.MEM.PAGE.ADD then TDH.MR.EXTEND (KVM_TDX_INIT_MEM_REGION)",
            "not_covered": not_covered,
        });
        if let Some(m) = tdx_obj.as_object_mut() {
            if let (Some(v), Some(src)) = (&t.rtmr1, t.rtmr1_source) {
                m.insert("rtmr1".to_owned(), json!(to_hex(v)));
                m.insert("rtmr1_assumes".to_owned(), json!(src));
            }
            if let Some(v) = &t.rtmr2 {
                m.insert("rtmr2".to_owned(), json!(to_hex(v)));
                if let Some((_, passed)) = &t.cmdline {
                    m.insert("rtmr2_cmdline".to_owned(), json!(passed));
                }
            }
            let mut events = serde_json::Map::new();
            if let Some(v) = &t.kernel {
                events.insert("kernel".to_owned(), json!({"rtmr": 1, "event": "EV_EFI_BOOT_SERVICES_APPLICATION (TDVF)", "sha384": to_hex(v), "is": "Authenticode SHA-384 of the kernel PE image"}));
            }
            if let Some((v, passed)) = &t.cmdline {
                events.insert("cmdline".to_owned(), json!({"rtmr": 2, "event": "EV_EVENT_TAG LOADED_IMAGE::LoadOptions (Linux EFI stub)", "sha384": to_hex(v), "is": format!("SHA-384 of UTF-16LE {passed:?} and a NUL")}));
            }
            if let Some(v) = &t.initrd {
                events.insert("initrd".to_owned(), json!({"rtmr": 2, "event": "EV_EVENT_TAG \"Linux initrd\" (Linux EFI stub)", "sha384": to_hex(v), "is": "SHA-384 of the initrd"}));
            }
            m.insert("events".to_owned(), Value::Object(events));
            if let Some(v) = &t.measurement {
                m.insert("measurement".to_owned(), json!(to_hex(v)));
                m.insert(
                    "measurement_is".to_owned(),
                    json!(
                        "SHA-384(\"enclave-init/tdx-measurement/v1\\0\" || MRTD || RTMR1 || RTMR2)"
                    ),
                );
            }
        }
        obj.insert("tdx".to_owned(), tdx_obj);
    }
    if let (Some(d), Some(obj)) = (&r.sim, doc.as_object_mut()) {
        obj.insert(
            "sim".to_owned(),
            json!({
                "measurement": to_hex(d),
                "algorithm": "SHA-384(\"enclave-init/sim-launch/v1\\0\" || SHA-256(kernel) || SHA-256(initrd) || SHA-256(cmdline || \"\\0\"))",
            }),
        );
    }
    if let (Some(i), Some(obj)) = (&r.initdata, doc.as_object_mut()) {
        obj.insert(
            "initdata".to_owned(),
            json!({
                "file": i.name,
                "sha256": to_hex(&i.sha256),
                "algorithm": i.algorithm,
                "digest": to_hex(&i.digest),
                "snp_host_data": to_hex(&i.snp_host_data),
                "tdx_mr_config_id": to_hex(&i.tdx_mr_config_id),
                "rule": "Kata: the init-data TOML hashed with its `algorithm`, truncated or zero-padded to 32 bytes (SEV-SNP HOST_DATA) and 48 bytes (TDX MRCONFIGID)",
            }),
        );
    }
    doc
}

/// The verifier policy snippet, in the schema of `src/appraisal/src/policy.rs`.
fn policy_snippet(
    args: &Measure,
    r: &Results,
    kernel: &Option<Input>,
    initrd: &Option<Input>,
) -> Result<String, String> {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Verifier policy snippet generated by enclavectl measure {} (appraisal::Policy schema).",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        t,
        "# Merge into the verifier's policy file; the inputs and their SHA-256 are in expected.json."
    );
    for (label, input) in [("kernel", kernel), ("initrd", initrd)] {
        if let Some(i) = input {
            let _ = writeln!(
                t,
                "#   {label} {} sha256 {}",
                i.name,
                to_hex(&sha256(&i.bytes))
            );
        }
    }
    let pod = r.initdata.as_ref();
    if let Some(s) = &r.snp {
        let _ = writeln!(t, "\n[snp]\nallowed = true");
        let _ = writeln!(
            t,
            "# MEASUREMENT for each vCPU count ({} {}, guest features {:#x}){}.",
            s.vmm_type,
            s.vcpu_type,
            s.guest_features,
            if pod.is_some() {
                ": Kata guest images, listed under [coco] below"
            } else {
                ""
            }
        );
        if pod.is_none() {
            let _ = writeln!(t, "measurements = [");
            for (n, d) in &s.digests {
                let _ = writeln!(t, "  \"{}\", # {n} vCPU{}", to_hex(d), plural(*n));
            }
            let _ = writeln!(t, "]");
        }
        let _ = writeln!(t, "debug_allowed = false\nmigrate_ma_allowed = false");
        min_tcb_table(&mut t, args);
    }
    if let Some(x) = &r.tdx {
        let _ = writeln!(t, "\n[tdx]\nallowed = true");
        if pod.is_none() {
            let _ = writeln!(t, "# MRTD: the firmware (TDVF).");
            let _ = writeln!(t, "mrtds = [\"{}\"]", to_hex(&x.mrtd));
            let _ = writeln!(
                t,
                "# OS components as the event log records them (compared with the CCEL the guest sends):"
            );
            if let Some(v) = &x.kernel {
                let _ = writeln!(
                    t,
                    "# kernel: Authenticode SHA-384 (EV_EFI_BOOT_SERVICES_APPLICATION, RTMR1)."
                );
                let _ = writeln!(t, "kernel = [\"{}\"]", to_hex(v));
            }
            if let Some((v, passed)) = &x.cmdline {
                let _ = writeln!(
                    t,
                    "# cmdline: SHA-384 of UTF-16LE {passed:?} + NUL (LoadOptions, RTMR2)."
                );
                let _ = writeln!(t, "cmdline = [\"{}\"]", to_hex(v));
            }
            if let Some(v) = &x.initrd {
                let _ = writeln!(
                    t,
                    "# initrd: SHA-384 of the initrd (\"Linux initrd\", RTMR2)."
                );
                let _ = writeln!(t, "initrd = [\"{}\"]", to_hex(v));
            }
            if let (Some(v), Some(src)) = (&x.rtmr1, x.rtmr1_source) {
                let _ = writeln!(t, "# RTMR[1] ({src}).");
                let _ = writeln!(t, "rtmr1 = \"{}\"", to_hex(v));
            }
            if let Some(v) = &x.rtmr2 {
                let _ = writeln!(t, "# RTMR[2]: the command line and the initrd.");
                let _ = writeln!(t, "rtmr2 = \"{}\"", to_hex(v));
            }
            let _ = writeln!(t, "rtmr3 = \"{}\"", to_hex(&tdx::RTMR3_AT_BOOT));
        } else {
            let _ = writeln!(t, "# The Kata guest image is listed under [coco] below.");
        }
        let _ = writeln!(t, "debug_allowed = false");
        let _ = writeln!(
            t,
            "# The lowest tcbEvaluationDataNumber of Intel's collateral to accept (required):\n\
             # 0 accepts collateral from before any TCB recovery and shows as a relaxation\n\
             # in every token; raise it to the number of the collateral you trust.\n\
             min_tcb_evaluation_data_number = 0"
        );
    }
    if let Some(i) = pod {
        let _ = writeln!(
            t,
            "\n# Confidential Containers pods: the Kata guest images above, launched with the init-data\n\
             # {} ({} of the TOML, truncated or zero-padded to the TEE field as Kata does).\n\
             [coco]\nallowed = true",
            i.name, i.algorithm
        );
        if let Some(s) = &r.snp {
            let _ = writeln!(t, "snp_measurements = [");
            for (n, d) in &s.digests {
                let _ = writeln!(t, "  \"{}\", # {n} vCPU{}", to_hex(d), plural(*n));
            }
            let _ = writeln!(t, "]\ninit_data_snp = [\"{}\"]", to_hex(&i.snp_host_data));
        }
        if let Some(x) = &r.tdx {
            let _ = writeln!(t, "tdx_mrtds = [\"{}\"]", to_hex(&x.mrtd));
            if let Some(v) = &x.rtmr1 {
                let _ = writeln!(t, "tdx_rtmr1 = [\"{}\"]", to_hex(v));
            }
            if let Some(v) = &x.rtmr2 {
                let _ = writeln!(t, "tdx_rtmr2 = [\"{}\"]", to_hex(v));
            }
            let _ = writeln!(t, "init_data_tdx = [\"{}\"]", to_hex(&i.tdx_mr_config_id));
        }
    }
    if let Some(d) = &r.sim {
        let _ = writeln!(
            t,
            "\n# Simulated evidence is appraised with the [snp] rules and reference values, so the\n\
             # simulation digest goes into snp.measurements; real SEV-SNP stays refused\n\
             # (snp.allowed defaults to false). Development only: Policy::production refuses this file."
        );
        let _ = writeln!(t, "[snp]\nmeasurements = [\"{}\"]", to_hex(d));
        min_tcb_table(&mut t, args);
        if args.sim_ark_sha256.is_empty() {
            let _ = writeln!(
                t,
                "\n# To accept sim-psp evidence, pin its ARK (SHA-256 of the DER certificate):\n\
                 # [sim]\n# allowed = true\n# ark_sha256 = [\"<64 hex digits>\"]"
            );
        } else {
            let mut pins = Vec::new();
            for a in &args.sim_ark_sha256 {
                let a = a.trim().to_ascii_lowercase();
                if a.len() != 64 || !a.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!(
                        "--sim-ark-sha256 {a:?}: want 64 hex digits (SHA-256)"
                    ));
                }
                pins.push(format!("\"{a}\""));
            }
            let _ = writeln!(
                t,
                "\n[sim]\nallowed = true\nark_sha256 = [{}]",
                pins.join(", ")
            );
        }
    }
    Ok(t)
}

/// `[snp.min_reported_tcb]`: `--min-tcb`, else an explicit "any TCB" (a
/// policy must name its minimum; zeros show as a relaxation in every token).
fn min_tcb_table(t: &mut String, args: &Measure) {
    match &args.min_tcb {
        Some(m) => {
            let _ = writeln!(t, "\n[snp.min_reported_tcb]");
            for (k, v) in m.components() {
                let _ = writeln!(t, "{k} = {v}");
            }
        }
        None => {
            let _ = writeln!(
                t,
                "\n# The lowest REPORTED_TCB to accept (required; --min-tcb sets it). All zeros\n\
                 # accepts any TCB and shows as a relaxation in every token.\n\
                 [snp.min_reported_tcb]\nbootloader = 0\ntee = 0\nsnp = 0\nmicrocode = 0"
            );
        }
    }
}

/// [`policy_snippet`], refused unless the verifier's own parser accepts it.
fn checked_policy_snippet(
    args: &Measure,
    r: &Results,
    kernel: &Option<Input>,
    initrd: &Option<Input>,
) -> Result<String, String> {
    let text = policy_snippet(args, r, kernel, initrd)?;
    appraisal::policy::Policy::from_toml(text.as_bytes())
        .map_err(|e| chain(&e, "the generated verifier policy snippet does not parse"))?;
    Ok(text)
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The standard JWT role (`auth/enclave-attest/role/enclave-agent`): exact matches only.
fn openbao_role(args: &Measure, r: &Results) -> Result<Value, String> {
    let mut bound = serde_json::Map::new();
    bound.insert("tee".to_owned(), json!(tees(r)));
    bound.insert("measurement".to_owned(), json!(pinned_measurements(r)));
    bound.insert("/policy_flags/debug".to_owned(), json!([false]));
    let init = pinned_init_data(r);
    if !init.is_empty() {
        bound.insert("init_data".to_owned(), json!(init));
    }
    Ok(json!({
        "role_type": "jwt",
        "bound_audiences": [args.audience],
        "user_claim": "sub",
        "bound_claims_type": "string",
        "bound_claims": Value::Object(bound),
        "token_policies": [OPENBAO_ROLE],
        "token_ttl": args.token_ttl,
        "token_max_ttl": args.token_ttl,
        "token_explicit_max_ttl": args.token_ttl,
        "token_type": "service",
    }))
}

/// The cert role of certificate mode (`auth/enclave-cert/certs/enclave-agent`): the
/// verifier's client certificate must chain to its client CA (`certificate`), carry a
/// pinned measurement as URI SAN `urn:enclave:measurement:<hex>`
/// (`allowed_uri_sans`) and an accepted tee as subject OU; the TLS handshake proves
/// the enclave key. It pins no init-data (the certificate does not carry it): CoCo
/// deployments that pin init-data keep the JWT role.
fn openbao_cert_role(args: &Measure, r: &Results) -> Result<Value, String> {
    let sans: Vec<String> = pinned_measurements(r)
        .iter()
        .map(|m| format!("urn:enclave:measurement:{m}"))
        .collect();
    let mut role = json!({
        "display_name": OPENBAO_ROLE,
        "allowed_uri_sans": sans,
        "allowed_organizational_units": tees(r),
        "token_policies": [OPENBAO_ROLE],
        "token_ttl": args.token_ttl,
        "token_max_ttl": args.token_ttl,
        "token_explicit_max_ttl": args.token_ttl,
        "token_type": "service",
    });
    if let Some(p) = &args.client_ca {
        let pem =
            std::fs::read_to_string(p).map_err(|e| format!("--client-ca {}: {e}", p.display()))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!("--client-ca {}: no PEM certificate", p.display()));
        }
        role["certificate"] = json!(pem);
    }
    Ok(role)
}

/// The CEL role (`auth/enclave-attest/cel/role/enclave-agent`, login at `cel/login`):
/// what exact matching cannot say (minimum TCB, `cnf` present, token lifetime), with a
/// reason for every refusal.
fn openbao_cel_role(args: &Measure, r: &Results) -> Result<Value, String> {
    let list = |v: &[String]| {
        let quoted: Vec<String> = v.iter().map(|s| format!("'{s}'")).collect();
        format!("[{}]", quoted.join(", "))
    };
    let tee_list: Vec<String> = tees(r).iter().map(|s| (*s).to_owned()).collect();
    let min = args.min_tcb.unwrap_or_default();
    let tcb_check = min
        .components()
        .iter()
        .map(|(k, v)| format!("double(claims.tcb.{k}) >= {v}.0"))
        .collect::<Vec<_>>()
        .join(" && ");
    // JSON numbers reach CEL as doubles; `now` is a timestamp (int(now) = Unix seconds).
    let max_ttl_ns = args
        .token_ttl
        .checked_mul(1_000_000_000)
        .ok_or("--token-ttl is too large")?;
    let snp_like = r.snp.is_some() || r.sim.is_some();
    let variables = vec![
        json!({"name": "allowed_tees", "expression": list(&tee_list)}),
        json!({"name": "allowed_measurements", "expression": list(&pinned_measurements(r))}),
        json!({"name": "tee_ok", "expression": "has(claims.tee) && claims.tee in allowed_tees"}),
        json!({"name": "measurement_ok", "expression": "has(claims.measurement) && claims.measurement in allowed_measurements"}),
        json!({"name": "debug_off", "expression": "has(claims.policy_flags) && has(claims.policy_flags.debug) && claims.policy_flags.debug == false"}),
        json!({"name": "tcb_ok", "expression": if snp_like {
            format!("(has(claims.tee) && claims.tee == 'tdx') || (has(claims.tcb) && {tcb_check})")
        } else {
            "true".to_owned()
        }}),
        json!({"name": "key_bound", "expression": "has(claims.cnf)"}),
        json!({"name": "init_data_ok", "expression": if pinned_init_data(r).is_empty() {
            "true".to_owned()
        } else {
            format!("has(claims.init_data) && claims.init_data in {}", list(&pinned_init_data(r)))
        }}),
        json!({"name": "short_lived", "expression": format!("has(claims.exp) && double(claims.exp) - double(int(now)) <= {}.0", args.token_ttl)}),
    ];
    let expression = format!(
        "!tee_ok ? 'tee claim not in the allowed TEE types' \
         : !measurement_ok ? 'measurement not in the allowlist' \
         : !debug_off ? 'debug policy flag set or missing' \
         : !tcb_ok ? 'reported TCB below the minimum {}' \
         : !key_bound ? 'no cnf (key binding) claim' \
         : !init_data_ok ? 'init_data claim not a pinned pod init-data digest' \
         : !short_lived ? 'attestation token lives longer than {} s' \
         : pb.Auth{{display_name: '{OPENBAO_ROLE}', policies: ['{OPENBAO_ROLE}'], \
         explicit_max_ttl: {max_ttl_ns}, \
         metadata: {{'tee': string(claims.tee), 'measurement': string(claims.measurement)}}}}",
        min.components()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        args.token_ttl
    );
    Ok(json!({
        "cel_program": {
            "variables": variables,
            "expression": expression,
        },
        "bound_audiences": [args.audience],
        "message": "attestation token refused by the enclave-agent CEL role",
    }))
}

/// The PCRs of an EIF's bytes (parsed strictly, CRC checked); PCR8 from
/// the signature section's signing certificate (PEM to DER, as AWS's
/// `EifReader` does) when the image is signed.
pub fn nitro_pcrs(eif: &[u8]) -> Result<measure::nitro::NitroPcrs, String> {
    use image::eif::SectionType;
    let parsed = image::eif::parse(eif).map_err(|e| e.to_string())?;
    let cert_der = match parsed.of(SectionType::Signature).next() {
        Some(section) => {
            let pem = image::eif::signing_certificate(section).map_err(|e| e.to_string())?;
            Some(image::eif::pem_certificate_der(&pem).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let one = |t| parsed.of(t).next().unwrap_or_default();
    let ramdisks: Vec<&[u8]> = parsed.of(SectionType::Ramdisk).collect();
    Ok(measure::nitro::NitroPcrs::compute(
        one(SectionType::Kernel),
        one(SectionType::Cmdline),
        &ramdisks,
        cert_der.as_deref(),
    ))
}

/// 96 hex digits as 48 bytes.
pub fn parse_hex_48(hex: &str) -> Option<[u8; 48]> {
    let hex = hex.trim();
    if hex.len() != 96 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 48];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// `measure --nitro`: the PCR lines, and with --out-dir the `[nitro]` snippet and the role.
fn run_nitro(args: &Measure, eif: &Path) -> CmdResult {
    let bytes = std::fs::read(eif).map_err(|e| format!("{}: {e}", eif.display()))?;
    let pcrs = nitro_pcrs(&bytes).map_err(|e| format!("{}: {e}", eif.display()))?;
    let m = to_hex(&pcrs.measurement());
    let (p0, p1, p2) = (to_hex(&pcrs.pcr0), to_hex(&pcrs.pcr1), to_hex(&pcrs.pcr2));
    println!("nitro/pcr0 {p0}");
    println!("nitro/pcr1 {p1}");
    println!("nitro/pcr2 {p2}");
    if let Some(p8) = &pcrs.pcr8 {
        println!("nitro/pcr8 {}", to_hex(p8));
    }
    println!("nitro/measurement {m}");
    let sim_root = match &args.nitro_sim_root_sha256 {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(h.to_ascii_lowercase())
        }
        Some(h) => return Err(format!("--nitro-sim-root-sha256 {h:?}: want 64 hex digits").into()),
        None => None,
    };
    let Some(dir) = &args.out_dir else {
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut snippet = format!(
        "# AWS Nitro Enclaves: {} (enclavectl measure --nitro)\n\
         # measurement claim = SHA-384(PCR0 || PCR1 || PCR2) = {m}\n\
         [nitro]\nallowed = true\ndebug_allowed = false\n\
         pcr0 = [\"{p0}\"]\npcr1 = [\"{p1}\"]\npcr2 = [\"{p2}\"]\n",
        eif.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
    );
    if let Some(p8) = &pcrs.pcr8 {
        let _ = writeln!(snippet, "pcr8 = [\"{}\"]", to_hex(p8));
    }
    let mut tees = vec!["nitro"];
    if let Some(root) = &sim_root {
        let _ = write!(
            snippet,
            "# DEVELOPMENT ONLY: a SIMULATED NSM root (enclavectl sim-nsm); production policies refuse it.\n\
             sim_root_sha256 = [\"{root}\"]\n"
        );
        tees.push("nitro-sim");
    }
    let role = json!({
        "role_type": "jwt",
        "bound_audiences": [args.audience],
        "user_claim": "sub",
        "bound_claims_type": "string",
        "bound_claims": {
            "tee": tees,
            "measurement": [m],
            "/policy_flags/debug": [false],
        },
        "token_policies": [OPENBAO_ROLE],
        "token_ttl": args.token_ttl,
        "token_max_ttl": args.token_ttl,
        "token_explicit_max_ttl": args.token_ttl,
        "token_type": "service",
    });
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text)
            .map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    write("verifier-policy.toml", &snippet)?;
    write("openbao-role.json", &pretty(&role)?)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcpu_ranges() {
        assert_eq!(
            "1-64".parse::<VcpuRange>(),
            Ok(VcpuRange { start: 1, end: 64 })
        );
        assert_eq!("4".parse::<VcpuRange>(), Ok(VcpuRange { start: 4, end: 4 }));
        assert!("0-3".parse::<VcpuRange>().is_err());
        assert!("5-2".parse::<VcpuRange>().is_err());
        assert!("x".parse::<VcpuRange>().is_err());
        assert!("1-5000".parse::<VcpuRange>().is_err());
    }

    #[test]
    fn min_tcb() {
        let t: MinTcb = "snp=23, microcode=213,bootloader=10".parse().unwrap();
        assert_eq!(
            t,
            MinTcb {
                bootloader: 10,
                tee: 0,
                snp: 23,
                microcode: 213
            }
        );
        assert!("fmc=1".parse::<MinTcb>().is_err());
        assert!("snp=300".parse::<MinTcb>().is_err());
        assert!("snp".parse::<MinTcb>().is_err());
    }

    #[test]
    fn hex_numbers() {
        assert_eq!(parse_u64_hex("0x21", "f"), Ok(0x21));
        assert_eq!(parse_u64_hex("33", "f"), Ok(33));
        assert!(parse_u64_hex("0xzz", "f").is_err());
        assert!(parse_u32_hex("0x1_0000_0000", "f").is_err());
    }

    /// A signed EIF (signature section in AWS's shape around the AWS root's
    /// PEM): PCR8 = SHA-384(0^48 ‖ SHA-384(DER)), the value computed with
    /// Python's hashlib from the fixture PEM
    /// (shared/fixtures/cloud/nitro/aws-root).
    #[test]
    fn a_signed_eif_gets_pcr8_from_its_signing_certificate() {
        let pem = include_bytes!("../../appraisal/roots/aws_nitro_enclaves_root_g1.pem");
        let mut section = vec![0x81, 0xa2, 0x73];
        section.extend_from_slice(b"signing_certificate");
        let ints = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.push(0x99);
            out.extend_from_slice(&u16::try_from(bytes.len()).unwrap().to_be_bytes());
            for b in bytes {
                if *b < 24 {
                    out.push(*b);
                } else {
                    out.extend_from_slice(&[0x18, *b]);
                }
            }
        };
        ints(&mut section, pem);
        section.push(0x69);
        section.extend_from_slice(b"signature");
        ints(&mut section, &[0x84]);
        let eif = image::eif::build(&image::eif::EifInputs {
            kernel: b"K",
            cmdline: "c",
            ramdisks: vec![b"R"],
            metadata: b"{}",
            signature: Some(&section),
        })
        .unwrap();
        let p = nitro_pcrs(&eif).unwrap();
        assert_eq!(
            to_hex(&p.pcr8.unwrap()),
            "df3a0511a411c6a5628d91a189a052d281dec8153ffecde6bdc1a059825c32e4bfb7fc95b367564a64812a8795af8f8a"
        );
        // The signature section is not part of PCR0.
        let unsigned = image::eif::build(&image::eif::EifInputs {
            kernel: b"K",
            cmdline: "c",
            ramdisks: vec![b"R"],
            metadata: b"{}",
            signature: None,
        })
        .unwrap();
        let u = nitro_pcrs(&unsigned).unwrap();
        assert_eq!((u.pcr0, u.pcr8), (p.pcr0, None));
    }
}
