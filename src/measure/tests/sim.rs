//! The simulation TEE's launch digest: fixed vectors computed independently (Python
//! `hashlib`), and its agreement with the SNP hash table's component hashes.

// Test code: a failed unwrap is a failed test (clippy.toml allows it in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::blob;
use measure::hashes::SevHashes;
use measure::sim::{sim_launch_digest, SIM_LAUNCH_DOMAIN};

#[test]
fn vectors() {
    assert_eq!(
        measure::to_hex(&sim_launch_digest(b"", b"", "")),
        "26728e6fc50fd4ee7d264a9ff1890a023c5b33c59373d9702704c7812d9a0303010411a878e76ee4e80d5697e0d2ca6f"
    );
    assert_eq!(
        measure::to_hex(&sim_launch_digest(&blob(1, 5000), &blob(2, 777), "console=ttyS0 quiet")),
        "c2997f7e2b2a7e245402b1232d0aa72328269382c4281228b7f36a55837ac6d2b15197596f71b40a0279d7423da1af80"
    );
}

#[test]
fn same_component_hashes_as_the_snp_table() {
    use sha2::{Digest, Sha384};
    let (k, i, c) = (blob(3, 4096), blob(4, 10), "root=/dev/vda ro");
    let h = SevHashes::new(&k, Some(&i), Some(c));
    let expected: [u8; 48] = Sha384::new()
        .chain_update(SIM_LAUNCH_DOMAIN)
        .chain_update(h.kernel)
        .chain_update(h.initrd)
        .chain_update(h.cmdline)
        .finalize()
        .into();
    assert_eq!(sim_launch_digest(&k, &i, c), expected);
    // Every input matters.
    assert_ne!(
        sim_launch_digest(&k, &i, c),
        sim_launch_digest(&k, &i, "root=/dev/vda rw")
    );
    assert_ne!(sim_launch_digest(&k, b"", c), sim_launch_digest(&k, &i, c));
}
