//! The launch measurement of the simulation TEE.
//!
//! The simulated PSP (the stand-in for SEV-SNP hardware in process-mode tests) puts
//! [`sim_launch_digest`] of the guest's kernel, initrd and command line in the `MEASUREMENT`
//! field of the reports it signs, and `enclavectl measure --sim` prints the same value, so a
//! verifier pins simulated guests exactly as it pins real ones. It has no firmware, vCPU or
//! VMM component: the simulation has none of those.
//!
//! ```text
//! SHA-384( "enclave-init/sim-launch/v1\0"
//!        ‖ SHA-256(kernel) ‖ SHA-256(initrd) ‖ SHA-256(cmdline ‖ "\0") )
//! ```
//!
//! The three SHA-256 values are exactly those of QEMU's SEV hash table
//! ([`crate::hashes::SevHashes`]): a command line is hashed with a trailing NUL (just `"\0"`
//! when empty), and no initrd is hashed as an empty one. The domain tag keeps the value
//! from ever equalling a real SNP launch digest.

use sha2::{Digest, Sha384};

use crate::hashes::{cmdline_sha256, sha256};
use crate::Digest48;

/// Domain-separation prefix of the simulation launch digest (version 1), NUL included.
pub const SIM_LAUNCH_DOMAIN: &[u8] = b"enclave-init/sim-launch/v1\0";

/// The simulation TEE's launch measurement of `kernel`, `initrd` (empty if none) and
/// `cmdline`; see the [module documentation](self).
pub fn sim_launch_digest(kernel: &[u8], initrd: &[u8], cmdline: &str) -> Digest48 {
    Sha384::new()
        .chain_update(SIM_LAUNCH_DOMAIN)
        .chain_update(sha256(kernel))
        .chain_update(sha256(initrd))
        .chain_update(cmdline_sha256(cmdline))
        .finalize()
        .into()
}
