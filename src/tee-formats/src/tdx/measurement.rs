//! The TDX image identity: the value of the `measurement` claim of accepted
//! TDX evidence, and what `enclavectl measure` computes for an image.
//!
//! On SEV-SNP the launch digest covers firmware, kernel, initrd and command
//! line in one value. On TDX they are spread over MRTD (the firmware, TDVF)
//! and the RTMRs the firmware and the kernel's EFI stub extend at boot: RTMR1
//! (the kernel, as the UEFI application TDVF starts, and the boot-path
//! events) and RTMR2 (the kernel command line and the initrd). So the TDX
//! measurement is one digest over the three:
//!
//! ```text
//! measurement = SHA-384("enclave-init/tdx-measurement/v1\0" ‖ MRTD ‖ RTMR1 ‖ RTMR2)
//! ```
//!
//! RTMR0 is left out: it records the VM's configuration (TD HOB with the
//! memory map, the configuration volume, the ACPI tables QEMU builds for the
//! machine shape), which no image tool can predict and which changes with
//! the VM size; a policy pins it separately (`tdx.rtmr0`). RTMR3 is left out:
//! it is zero at boot and extended at run time (e.g. by a CoCo
//! attestation-agent). The values in the digest are the quote's own, so the
//! claim pins the whole booted image whatever the policy pins.

use sha2::{Digest, Sha384};

/// Domain tag of the TDX measurement digest.
pub const MEASUREMENT_TAG: &[u8; 32] = b"enclave-init/tdx-measurement/v1\0";

/// The TDX `measurement` claim: SHA-384 of [`MEASUREMENT_TAG`] ‖ MRTD ‖ RTMR1 ‖ RTMR2.
pub fn image_measurement(mr_td: &[u8; 48], rtmr1: &[u8; 48], rtmr2: &[u8; 48]) -> [u8; 48] {
    Sha384::new()
        .chain_update(MEASUREMENT_TAG)
        .chain_update(mr_td)
        .chain_update(rtmr1)
        .chain_update(rtmr2)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_documented_concatenation() {
        assert_eq!(MEASUREMENT_TAG.len(), 32);
        let (a, b, c) = ([1u8; 48], [2u8; 48], [3u8; 48]);
        let mut buf = Vec::new();
        buf.extend_from_slice(b"enclave-init/tdx-measurement/v1\0");
        buf.extend_from_slice(&a);
        buf.extend_from_slice(&b);
        buf.extend_from_slice(&c);
        let want: [u8; 48] = Sha384::digest(&buf).into();
        assert_eq!(image_measurement(&a, &b, &c), want);
        assert_ne!(image_measurement(&a, &c, &b), want);
    }
}
