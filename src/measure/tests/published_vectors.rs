//! Published expected launch digests of virtee/sev-snp-measure (`tests/test_guest.py` at
//! 8f2b337e, the `snp_ovmf_hash_*` cases). They use the OVMF-hash seed of edk2-stable202405's
//! AmdSevX64 build, so only that build's metadata matters, which the test rebuilds
//! (`FwSpec::amd_sev`: sections, AP reset EIP 0x80b004, hash table at 0x810c00). The kernel
//! and initrd are empty files (`/dev/null`). Independent of the installed oracle.

// Test code: a failed unwrap is a failed test (clippy.toml allows it in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::FwSpec;
use measure::snp::{launch_digest, Inputs, VcpuType};

const AMDSEV_OVMF_HASH: &str =
    "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74";

#[test]
fn sev_snp_measure_published_vectors() {
    let ovmf = FwSpec::amd_sev(4096 * 4, 9).build();
    let seed = measure::digest_from_hex(AMDSEV_OVMF_HASH).unwrap();
    for (cmdline, features, expected) in [
        ("", 0x21, "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef98a7ef198"),
        ("", 0x1, "ddc5224521617a536ee7ce9dd6224d1b58a8d4fda1c741f3ac99fc4bfa04ba6e9fc98646d4a07a9079397fa3852819b5"),
        (
            "console=ttyS0 loglevel=7",
            0x21,
            "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977",
        ),
        (
            "console=ttyS0 loglevel=7",
            0x1,
            "6d287813eb5222d770f75005c664e34c204f385ce832cc2ce7d0d6f354454362f390ef83a92046c042e706363b4b08fa",
        ),
    ] {
        let inputs = Inputs {
            ovmf_hash: Some(seed),
            kernel: Some(&[]),
            initrd: Some(&[]),
            cmdline: Some(cmdline),
            guest_features: features,
            ..Inputs::new(&ovmf, VcpuType::EpycV4)
        };
        assert_eq!(measure::to_hex(&launch_digest(&inputs, 1).unwrap()), expected, "{cmdline:?} {features:#x}");
    }
}
