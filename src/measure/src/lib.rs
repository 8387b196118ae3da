//! Expected launch measurements, computed on the host from the guest image.
//!
//! * [`ovmf`] parses what the SEV-SNP launch digest needs from an OVMF image: the footer GUID
//!   table, the SEV metadata section list and the SEV-ES reset block.
//! * [`snp`] computes the SEV-SNP launch digest (`MEASUREMENT` of the attestation report)
//!   byte for byte as `sev-snp-measure --mode snp` does (virtee/sev-snp-measure 0.0.13;
//!   `tee-formats.md` §5.1), for one vCPU count or for a whole range in one pass.
//! * [`hashes`] builds the SEV kernel-hashes table QEMU writes for measured direct boot.
//! * [`nitro`] computes the PCRs of an AWS Nitro enclave image (EIF).
//! * [`sim`] computes the launch measurement of the simulation TEE.
//!
//! Everything is pure computation over byte slices: no I/O, no `unsafe`, no panics on input.
#![forbid(unsafe_code)]

pub mod hashes;
pub mod nitro;
pub mod ovmf;
pub mod sim;
pub mod snp;
pub mod tdx;

mod gctx;
mod vmsa;

pub use ovmf::OvmfError;

/// Why a launch digest could not be computed.
///
/// [`MeasureError::Firmware`] means the OVMF image is malformed; the other variants are inputs
/// that cannot describe a launchable guest (or that `sev-snp-measure` also rejects).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// The OVMF image could not be parsed.
    #[error("parsing the OVMF firmware image")]
    Firmware {
        /// What is wrong with the image.
        #[source]
        source: OvmfError,
    },
    /// The requested vCPU counts are empty, start at 0 or exceed [`snp::MAX_VCPUS`].
    #[error("vCPU range {start}..={end} is not within 1..={max}, or is empty")]
    VcpuRange {
        /// First requested vCPU count.
        start: u32,
        /// Last requested vCPU count.
        end: u32,
        /// Largest supported vCPU count.
        max: u32,
    },
    /// More than one vCPU needs an application-processor VMSA, but the firmware's SEV-ES
    /// reset block gives AP reset EIP 0 (`sev-snp-measure` fails here too).
    #[error("{vcpus} vCPUs need an AP reset EIP, but the SEV-ES reset block gives 0")]
    ApResetEipZero {
        /// The vCPU count that needed an AP.
        vcpus: u32,
    },
    /// An initrd or a command line was given without a kernel (QEMU only hashes them
    /// together with a kernel).
    #[error("{what} given without a kernel")]
    WithoutKernel {
        /// `"initrd"` or `"command line"`.
        what: &'static str,
    },
    /// A kernel was given, but the firmware declares no SNP_KERNEL_HASHES section, so it
    /// cannot do measured direct boot (not an AmdSev build).
    #[error(
        "a kernel was given, but the firmware's SEV metadata has no SNP_KERNEL_HASHES section"
    )]
    NoKernelHashesSection,
    /// A kernel was given, but the GUID table has no (or a zero) SEV hash table location.
    #[error(
        "a kernel was given, but the firmware's GUID table has no SEV hash table location ({guid})"
    )]
    NoHashTableLocation {
        /// The GUID of the missing entry.
        guid: ovmf::Guid,
    },
    /// With a kernel, the SNP_KERNEL_HASHES section must be exactly one page.
    #[error("SNP_KERNEL_HASHES section #{index} is {size:#x} bytes; with a kernel it must be one 4096-byte page")]
    KernelHashesSectionSize {
        /// Position of the section in the SEV metadata.
        index: usize,
        /// Its declared size.
        size: u32,
    },
    /// The SEV hash table (where QEMU writes the hashes) is not inside the SNP_KERNEL_HASHES page.
    #[error(
        "SEV hash table at {table_gpa:#x} ({table_len} bytes) is not inside \
         SNP_KERNEL_HASHES section #{index} at {section_gpa:#x}..{section_end:#x}"
    )]
    HashTableOutsideSection {
        /// Position of the section in the SEV metadata.
        index: usize,
        /// Guest-physical address of the hash table (from the GUID table).
        table_gpa: u32,
        /// Bytes QEMU writes there (the padded table).
        table_len: usize,
        /// Start of the section.
        section_gpa: u32,
        /// End (exclusive) of the section.
        section_end: u64,
    },
    /// A hex string is not the hex form of a 48-byte digest.
    #[error("expected 96 hex digits for a 48-byte digest, got {len} characters{}", if *.bad_char { " with a non-hex digit" } else { "" })]
    DigestHex {
        /// Length of the input, in characters.
        len: usize,
        /// Whether a character is not a hex digit.
        bad_char: bool,
    },
}

impl From<OvmfError> for MeasureError {
    fn from(source: OvmfError) -> Self {
        MeasureError::Firmware { source }
    }
}

/// A 48-byte SHA-384 launch digest, as in the SNP attestation report's `MEASUREMENT` field.
pub type Digest48 = [u8; 48];

/// Lowercase hex of `bytes` (the form `sev-snp-measure --output-format hex` prints).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Parses 96 hex digits (either case, surrounding whitespace ignored) into a 48-byte digest,
/// e.g. an OVMF hash seed as printed by `sev-snp-measure --mode snp:ovmf-hash`.
pub fn digest_from_hex(s: &str) -> Result<Digest48, MeasureError> {
    let s = s.trim();
    let bad = |bad_char| MeasureError::DigestHex {
        len: s.chars().count(),
        bad_char,
    };
    if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad(true));
    }
    if s.len() != 96 {
        return Err(bad(false));
    }
    let mut out = [0u8; 48];
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let hi = hex_val(pair.first().copied().unwrap_or(b'0'));
        let lo = hex_val(pair.get(1).copied().unwrap_or(b'0'));
        *o = (hi << 4) | lo;
    }
    Ok(out)
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let d: Digest48 = core::array::from_fn(|i| (i * 37) as u8);
        let h = to_hex(&d);
        assert_eq!(h.len(), 96);
        assert_eq!(digest_from_hex(&h.to_uppercase()).unwrap(), d);
        assert!(matches!(
            digest_from_hex("abc"),
            Err(MeasureError::DigestHex {
                len: 3,
                bad_char: false
            })
        ));
        assert!(matches!(
            digest_from_hex(&"g".repeat(96)),
            Err(MeasureError::DigestHex {
                len: 96,
                bad_char: true
            })
        ));
    }
}
