//! Our SNP launch digests against the real `sev-snp-measure` (the pinned PyPI release in
//! `scripts/deps/pip.txt`), on Debian's OVMF and on firmware images built here.
//!
//! The oracle is `$SEV_SNP_MEASURE` (default `/opt/enclave-init/venv/bin/sev-snp-measure`);
//! these tests fail, not skip, when it or Debian's OVMF is missing.

// Test code: a failed unwrap is a failed test (clippy.toml allows it in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use measure::snp::{self, cpu_signature, Inputs, VcpuType, VmmType};
use measure::{MeasureError, OvmfError};

const COUNTS: [u32; 4] = [1, 2, 7, 64];

#[test]
fn oracle_is_the_pinned_version() {
    let out = std::process::Command::new(oracle())
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let pinned = include_str!("../../../scripts/deps/pip.txt")
        .lines()
        .find_map(|l| {
            l.split('#')
                .next()?
                .trim()
                .strip_prefix("sev-snp-measure==")
        })
        .map(str::trim)
        .expect("scripts/deps/pip.txt pins sev-snp-measure");
    assert_eq!(
        version,
        format!("sev-snp-measure {pinned}"),
        "run scripts/install-deps"
    );
}

/// Debian's OVMF.fd (edk2 2022.11 OvmfPkgX64: SEV metadata with SNP_SEC_MEM, SNP_SECRETS and
/// CPUID, no SNP_KERNEL_HASHES) without a kernel: every vCPU type, both common guest
/// feature sets, 1, 2, 7 and 64 vCPUs.
#[test]
fn debian_ovmf_qemu_all_vcpu_types() {
    let ovmf = debian_ovmf();
    let dir = Scratch::new("debian-qemu");
    let mut n = 0;
    for vcpu_type in VCPU_TYPES {
        for features in [0x1, 0x21] {
            let inputs = Inputs {
                guest_features: features,
                ..Inputs::new(&ovmf, vcpu_type)
            };
            n += compare(
                &dir,
                &format!("{vcpu_type}-{features:#x}"),
                &inputs,
                &COUNTS,
            );
        }
    }
    assert_eq!(n, VCPU_TYPES.len() * 2 * COUNTS.len());
}

#[test]
fn debian_ovmf_ec2_gce_and_signatures() {
    let ovmf = debian_ovmf();
    let dir = Scratch::new("debian-vmm");
    for vmm_type in [VmmType::Ec2, VmmType::Gce] {
        let inputs = Inputs {
            vmm_type,
            ..Inputs::new(&ovmf, VcpuType::EpycV4)
        };
        compare(&dir, &format!("{vmm_type}"), &inputs, &[1, 7]);
    }
    // An explicit signature (--vcpu-sig), and one from family/model/stepping.
    let inputs = Inputs {
        guest_features: 0x3ff,
        ..Inputs::new(&ovmf, VcpuType::Signature(0x00a1_0f11))
    };
    compare(&dir, "sig", &inputs, &[1, 2]);
    let sig = cpu_signature(25, 17, 1);
    let ours = snp::launch_digest(&Inputs::new(&ovmf, VcpuType::Signature(sig)), 3).unwrap();
    let files = OracleFiles::write(&dir, "fms", &Inputs::new(&ovmf, VcpuType::Epyc));
    let theirs = run_oracle(&[
        "--mode=snp".to_owned(),
        "--vcpus=3".to_owned(),
        "--vcpu-family=25".to_owned(),
        "--vcpu-model=17".to_owned(),
        "--vcpu-stepping=1".to_owned(),
        format!("--ovmf={}", files.ovmf.display()),
    ])
    .unwrap();
    assert_eq!(measure::to_hex(&ours), theirs);
}

/// Debian's OVMF has no SNP_KERNEL_HASHES section: both refuse a kernel.
#[test]
fn debian_ovmf_refuses_a_kernel() {
    let ovmf = debian_ovmf();
    let dir = Scratch::new("debian-kernel");
    let kernel = blob(1, 10_000);
    let inputs = Inputs {
        kernel: Some(&kernel),
        ..Inputs::new(&ovmf, VcpuType::EpycV4)
    };
    let err = snp::launch_digest(&inputs, 1).unwrap_err();
    assert!(
        matches!(err, MeasureError::NoKernelHashesSection),
        "{err:?}"
    );
    let files = OracleFiles::write(&dir, "k", &inputs);
    let oracle_err = run_oracle(&oracle_args(&files, &inputs, 1)).unwrap_err();
    assert!(
        oracle_err.contains("doesn't include SNP_KERNEL_HASHES"),
        "{oracle_err}"
    );
}

/// A kernel, an optional initrd and an optional command line.
type DirectBoot = (Vec<u8>, Option<Vec<u8>>, Option<String>);

/// The kernel/initrd/cmdline combinations of the direct-boot tests.
fn direct_boot_cases() -> Vec<DirectBoot> {
    let long: String = "console=ttyS0 ".repeat(300);
    vec![
        (blob(10, 0), None, None),
        (blob(11, 1), Some(Vec::new()), Some(String::new())),
        (
            blob(12, 4096),
            Some(blob(13, 4095)),
            Some("console=ttyS0 loglevel=7".to_owned()),
        ),
        (
            blob(14, 65_537),
            None,
            Some("root=/dev/vda1 ro quiet é✓ \"x y\" a=b,c".to_owned()),
        ),
        (blob(15, 1_000_003), Some(blob(16, 300_001)), Some(long)),
        (
            blob(17, 123_456),
            Some(blob(18, 1)),
            Some("-- init=/init --".to_owned()),
        ),
    ]
}

/// Debian's OVMF turned by the test into a measured-direct-boot image (its metadata
/// replaced by the AmdSev section list, hash table location set), with several kernels,
/// initrds and command lines.
#[test]
fn debian_derived_with_kernel_hashes() {
    let debian = debian_ovmf();
    let sections = FwSpec::amd_sev(0, 0).sections.unwrap();
    let ovmf = rewrite_metadata(&debian, &sections, [0x81_0c00, 0x400]);
    let dir = Scratch::new("derived");
    for (i, (kernel, initrd, cmdline)) in direct_boot_cases().iter().enumerate() {
        let inputs = Inputs {
            kernel: Some(kernel),
            initrd: initrd.as_deref(),
            cmdline: cmdline.as_deref(),
            ..Inputs::new(&ovmf, VCPU_TYPES[i % VCPU_TYPES.len()])
        };
        compare(&dir, &format!("case{i}"), &inputs, &COUNTS);
    }
    // Without a kernel the hashes page is measured as a zero page.
    compare(
        &dir,
        "nokernel",
        &Inputs::new(&ovmf, VcpuType::EpycMilan),
        &[1, 7],
    );
}

/// A minimal image synthesized by the test (64 KiB, AmdSev layout), with the table at other
/// offsets in its page, every VMM type and several guest feature sets.
#[test]
fn synthetic_amd_sev_images() {
    let dir = Scratch::new("synthetic");
    let kernel = blob(20, 33_333);
    let initrd = blob(21, 77_777);
    for (i, (table_offset, vmm_type, features)) in [
        (0xc00, VmmType::Qemu, 0x1),
        (0x000, VmmType::Qemu, 0x21),
        (0xf50, VmmType::Ec2, 0x1),
        (0x3a0, VmmType::Gce, 0x21),
    ]
    .into_iter()
    .enumerate()
    {
        let mut spec = FwSpec::amd_sev(16 * 4096, 100 + i as u64);
        spec.hash_table = Some([0x81_0000 + table_offset, 0x400]);
        let ovmf = spec.build();
        let base = Inputs {
            vmm_type,
            guest_features: features,
            ..Inputs::new(&ovmf, VcpuType::EpycGenoa)
        };
        compare(&dir, &format!("bare{i}"), &base, &[1, 2, 64]);
        let with_kernel = Inputs {
            kernel: Some(&kernel),
            initrd: Some(&initrd),
            cmdline: Some("console=hvc0"),
            ..base
        };
        compare(&dir, &format!("kernel{i}"), &with_kernel, &COUNTS);
    }
}

/// Sections in a different order, a CPUID page before the secrets page, several CPUID and
/// SVSM_CAA sections (EC2 moves every CPUID page last), a 2-page image.
#[test]
fn synthetic_unusual_layouts() {
    let dir = Scratch::new("layouts");
    let mut spec = FwSpec::amd_sev(2 * 4096, 7);
    spec.metadata_from_end = 0xf00;
    spec.sections = Some(vec![
        [0x10_0000, 0x1000, CPUID],
        [0x20_0000, 0x4000, SVSM_CAA],
        [0x30_0000, 0x1000, SECRETS],
        [0x40_0000, 0x1000, KERNEL_HASHES],
        [0x50_0000, 0x1000, CPUID],
        [0x0, 0x2000, SEC_MEM],
    ]);
    spec.hash_table = Some([0x40_0010, 0x400]);
    let ovmf = spec.build();
    let kernel = blob(30, 5000);
    for vmm_type in VMM_TYPES {
        let inputs = Inputs {
            vmm_type,
            kernel: Some(&kernel),
            ..Inputs::new(&ovmf, VcpuType::EpycRome)
        };
        compare(&dir, &format!("unusual-{vmm_type}"), &inputs, &[1, 7]);
        let inputs = Inputs {
            vmm_type,
            ..Inputs::new(&ovmf, VcpuType::EpycRome)
        };
        compare(&dir, &format!("unusual-nokernel-{vmm_type}"), &inputs, &[2]);
    }
}

/// `--mode snp:ovmf-hash` and `--snp-ovmf-hash`: a seed replaces the firmware pages.
#[test]
fn ovmf_hash_seed() {
    let debian = debian_ovmf();
    let dir = Scratch::new("seed");
    let path = dir.file("ovmf.fd", &debian);
    let theirs = run_oracle(&[
        "--mode=snp:ovmf-hash".to_owned(),
        format!("--ovmf={}", path.display()),
    ])
    .unwrap();
    let seed = snp::ovmf_hash(&debian).unwrap();
    assert_eq!(measure::to_hex(&seed), theirs);
    assert_eq!(measure::digest_from_hex(&theirs).unwrap(), seed);

    // The seed gives the same digest as hashing the pages ...
    let plain = Inputs::new(&debian, VcpuType::EpycMilan);
    let seeded = Inputs {
        ovmf_hash: Some(seed),
        ..plain
    };
    assert_eq!(
        snp::launch_digests(&plain, 1..=8).unwrap(),
        snp::launch_digests(&seeded, 1..=8).unwrap()
    );
    // ... and an arbitrary seed is used as given, as the oracle does.
    let other = Inputs {
        ovmf_hash: Some([0x5a; 48]),
        ..plain
    };
    compare(&dir, "seed5a", &other, &[1, 7]);
}

/// An AP reset EIP of 0 is fine for one vCPU (as for the oracle) and an error for more.
#[test]
fn zero_ap_eip() {
    let dir = Scratch::new("eip0");
    let mut spec = FwSpec::amd_sev(4 * 4096, 3);
    spec.reset_eip = Some(0);
    let ovmf = spec.build();
    let inputs = Inputs::new(&ovmf, VcpuType::EpycV4);
    compare(&dir, "eip0", &inputs, &[1]);
    let err = snp::launch_digests(&inputs, 1..=2).unwrap_err();
    assert!(
        matches!(err, MeasureError::ApResetEipZero { vcpus: 2 }),
        "{err:?}"
    );
    let files = OracleFiles::write(&dir, "eip0-2", &inputs);
    assert!(run_oracle(&oracle_args(&files, &inputs, 2)).is_err());
}

/// A missing reset block fails both (the oracle needs it even for one vCPU).
#[test]
fn missing_reset_block() {
    let dir = Scratch::new("noreset");
    let mut spec = FwSpec::amd_sev(4 * 4096, 4);
    spec.reset_eip = None;
    let ovmf = spec.build();
    let inputs = Inputs::new(&ovmf, VcpuType::EpycV4);
    let err = snp::launch_digest(&inputs, 1).unwrap_err();
    assert!(
        matches!(
            err,
            MeasureError::Firmware {
                source: OvmfError::MissingTableEntry {
                    entry: "SEV-ES reset block",
                    ..
                }
            }
        ),
        "{err:?}"
    );
    let files = OracleFiles::write(&dir, "noreset", &inputs);
    let oracle_err = run_oracle(&oracle_args(&files, &inputs, 1)).unwrap_err();
    assert!(
        oracle_err.contains("SEV_ES_RESET_BLOCK_GUID"),
        "{oracle_err}"
    );
}
