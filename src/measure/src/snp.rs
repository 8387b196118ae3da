//! The SEV-SNP launch digest, byte-identical to
//! `sev-snp-measure --mode snp --output-format hex` (virtee/sev-snp-measure 0.0.13;
//! algorithm in `tee-formats.md` §5.1).
//!
//! Steps, each a launch update of the guest context (`LD := SHA-384(PAGE_INFO)`):
//! 1. every page of the OVMF image, mapped to end at 4 GiB (or a precomputed
//!    [`ovmf_hash`] seed instead);
//! 2. the SEV metadata sections in order: SNP_SEC_MEM and SVSM_CAA as zero pages (GCE:
//!    SNP_SEC_MEM unmeasured), SNP_SECRETS as a secrets page, CPUID as a CPUID page (EC2:
//!    all CPUID pages after the other sections), SNP_KERNEL_HASHES as a normal page holding
//!    the [`SevHashes`] table when a kernel is given, else as zero pages;
//! 3. one VMSA page per vCPU: the bootstrap processor first, then the application processors
//!    (reset EIP from the firmware's SEV-ES reset block).
//!
//! Since step 3 only appends, [`launch_digests`] computes the digests for a whole range of
//! vCPU counts with one pass over steps 1–2 and one update per vCPU.
//!
//! ```no_run
//! # fn main() -> Result<(), measure::MeasureError> {
//! use measure::snp::{self, Inputs, VcpuType};
//! let ovmf = std::fs::read("OVMF.fd").unwrap_or_default();
//! let kernel = std::fs::read("vmlinuz").unwrap_or_default();
//! let inputs = Inputs {
//!     kernel: Some(&kernel),
//!     cmdline: Some("console=ttyS0"),
//!     ..Inputs::new(&ovmf, VcpuType::EpycMilan)
//! };
//! for (vcpus, digest) in snp::launch_digests(&inputs, 1..=64)? {
//!     println!("{vcpus} {}", measure::to_hex(&digest));
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::gctx::{Gctx, PageType, VMSA_GPA};
use crate::hashes::{SevHashes, PADDED_TABLE_LEN};
use crate::ovmf::{Ovmf, SectionType, PAGE_SIZE, SEV_HASH_TABLE_GUID};
use crate::{vmsa, Digest48, MeasureError};

/// Default guest features (SEV_FEATURES), as `sev-snp-measure --guest-features`: SNPActive.
/// QEMU ≥ 6.6 on Linux ≥ 6.6 launches with 0x21 (SNPActive + DebugSwap).
pub const DEFAULT_GUEST_FEATURES: u64 = 0x1;

/// Largest vCPU count [`launch_digests`] accepts (KVM's x86 `KVM_MAX_VCPUS`).
pub const MAX_VCPUS: u32 = 4096;

/// The hypervisor, which fixes a few initial register values and the page order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VmmType {
    /// QEMU/KVM (the default).
    #[default]
    Qemu,
    /// AWS EC2: different initial segment flags and FPU state; CPUID pages measured last;
    /// the vCPU type is not used.
    Ec2,
    /// Google Compute Engine: SNP_SEC_MEM pages unmeasured, different PAT; the vCPU type
    /// is not used.
    Gce,
}

impl VmmType {
    /// The name `sev-snp-measure --vmm-type` takes: `QEMU`, `ec2` or `gce`.
    pub const fn name(self) -> &'static str {
        match self {
            VmmType::Qemu => "QEMU",
            VmmType::Ec2 => "ec2",
            VmmType::Gce => "gce",
        }
    }
}

impl fmt::Display for VmmType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown VMM or vCPU type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?} (known: {known})")]
pub struct UnknownName {
    /// `"VMM type"` or `"vCPU type"`.
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The accepted names, comma-separated.
    pub known: String,
}

impl FromStr for VmmType {
    type Err = UnknownName;

    /// Accepts the `sev-snp-measure` names, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [VmmType::Qemu, VmmType::Ec2, VmmType::Gce]
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownName {
                what: "VMM type",
                name: s.to_owned(),
                known: "QEMU, ec2, gce".to_owned(),
            })
    }
}

/// The guest vCPU model, which fixes the CPUID signature the VMSA carries in RDX
/// (the QEMU CPU models sev-snp-measure knows, or an explicit signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the variants are QEMU's CPU model names, see `VcpuType::name`
pub enum VcpuType {
    Epyc,
    EpycV1,
    EpycV2,
    EpycIbpb,
    EpycV3,
    EpycV4,
    EpycRome,
    EpycRomeV1,
    EpycRomeV2,
    EpycRomeV3,
    EpycMilan,
    EpycMilanV1,
    EpycMilanV2,
    EpycGenoa,
    EpycGenoaV1,
    EpycTurin,
    /// An explicit CPUID signature (`--vcpu-sig`; see [`cpu_signature`] for `--vcpu-family`).
    Signature(u32),
}

impl VcpuType {
    /// Every named model, in sev-snp-measure's order.
    pub const NAMED: [VcpuType; 16] = [
        VcpuType::Epyc,
        VcpuType::EpycV1,
        VcpuType::EpycV2,
        VcpuType::EpycIbpb,
        VcpuType::EpycV3,
        VcpuType::EpycV4,
        VcpuType::EpycRome,
        VcpuType::EpycRomeV1,
        VcpuType::EpycRomeV2,
        VcpuType::EpycRomeV3,
        VcpuType::EpycMilan,
        VcpuType::EpycMilanV1,
        VcpuType::EpycMilanV2,
        VcpuType::EpycGenoa,
        VcpuType::EpycGenoaV1,
        VcpuType::EpycTurin,
    ];

    /// The QEMU CPU model name (`--vcpu-type`), e.g. `"EPYC-Milan"`; `None` for
    /// [`VcpuType::Signature`].
    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            VcpuType::Epyc => "EPYC",
            VcpuType::EpycV1 => "EPYC-v1",
            VcpuType::EpycV2 => "EPYC-v2",
            VcpuType::EpycIbpb => "EPYC-IBPB",
            VcpuType::EpycV3 => "EPYC-v3",
            VcpuType::EpycV4 => "EPYC-v4",
            VcpuType::EpycRome => "EPYC-Rome",
            VcpuType::EpycRomeV1 => "EPYC-Rome-v1",
            VcpuType::EpycRomeV2 => "EPYC-Rome-v2",
            VcpuType::EpycRomeV3 => "EPYC-Rome-v3",
            VcpuType::EpycMilan => "EPYC-Milan",
            VcpuType::EpycMilanV1 => "EPYC-Milan-v1",
            VcpuType::EpycMilanV2 => "EPYC-Milan-v2",
            VcpuType::EpycGenoa => "EPYC-Genoa",
            VcpuType::EpycGenoaV1 => "EPYC-Genoa-v1",
            VcpuType::EpycTurin => "EPYC-Turin",
            VcpuType::Signature(_) => return None,
        })
    }

    /// The CPUID Fn0000_0001_EAX signature.
    pub const fn signature(self) -> u32 {
        match self {
            VcpuType::Epyc
            | VcpuType::EpycV1
            | VcpuType::EpycV2
            | VcpuType::EpycIbpb
            | VcpuType::EpycV3
            | VcpuType::EpycV4 => cpu_signature(23, 1, 2),
            VcpuType::EpycRome
            | VcpuType::EpycRomeV1
            | VcpuType::EpycRomeV2
            | VcpuType::EpycRomeV3 => cpu_signature(23, 49, 0),
            VcpuType::EpycMilan | VcpuType::EpycMilanV1 | VcpuType::EpycMilanV2 => {
                cpu_signature(25, 1, 1)
            }
            VcpuType::EpycGenoa | VcpuType::EpycGenoaV1 => cpu_signature(25, 17, 0),
            VcpuType::EpycTurin => cpu_signature(26, 0, 0),
            VcpuType::Signature(sig) => sig,
        }
    }
}

impl fmt::Display for VcpuType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "signature {:#x}", self.signature()),
        }
    }
}

impl FromStr for VcpuType {
    type Err = UnknownName;

    /// Accepts exactly the names `sev-snp-measure --vcpu-type` accepts.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VcpuType::NAMED
            .into_iter()
            .find(|v| v.name() == Some(s))
            .ok_or_else(|| UnknownName {
                what: "vCPU type",
                name: s.to_owned(),
                known: VcpuType::NAMED
                    .iter()
                    .filter_map(|v| v.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// The CPUID signature for a family, model and stepping (AMD CPUID spec #25481,
/// Fn0000_0001_EAX), as `sev-snp-measure --vcpu-family/--vcpu-model/--vcpu-stepping`.
pub const fn cpu_signature(family: u32, model: u32, stepping: u32) -> u32 {
    let (family_low, family_high) = if family > 0xf {
        (0xf, (family.wrapping_sub(0xf)) & 0xff)
    } else {
        (family, 0)
    };
    (family_high << 20)
        | (((model >> 4) & 0xf) << 16)
        | ((family_low & 0xff) << 8)
        | ((model & 0xf) << 4)
        | (stepping & 0xf)
}

/// Everything the launch digest depends on besides the vCPU count.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The OVMF image (`--ovmf`). Its metadata is always used; its pages only when
    /// [`Inputs::ovmf_hash`] is `None`.
    pub ovmf: &'a [u8],
    /// A precomputed digest of the OVMF pages (`--snp-ovmf-hash`, see [`ovmf_hash`]).
    pub ovmf_hash: Option<Digest48>,
    /// The kernel for measured direct boot (`--kernel`); needs an SNP_KERNEL_HASHES section.
    pub kernel: Option<&'a [u8]>,
    /// The initrd (`--initrd`); only with a kernel. `None` hashes like an empty file.
    pub initrd: Option<&'a [u8]>,
    /// The kernel command line (`--append`); only with a kernel. `None` hashes like `""`.
    pub cmdline: Option<&'a str>,
    /// The vCPU model (`--vcpu-type`/`--vcpu-sig`); not used for EC2 and GCE.
    pub vcpu_type: VcpuType,
    /// The hypervisor (`--vmm-type`).
    pub vmm_type: VmmType,
    /// SEV_FEATURES of every VMSA (`--guest-features`).
    pub guest_features: u64,
}

impl<'a> Inputs<'a> {
    /// Inputs for booting `ovmf` alone on QEMU with the default guest features.
    pub fn new(ovmf: &'a [u8], vcpu_type: VcpuType) -> Inputs<'a> {
        Inputs {
            ovmf,
            ovmf_hash: None,
            kernel: None,
            initrd: None,
            cmdline: None,
            vcpu_type,
            vmm_type: VmmType::Qemu,
            guest_features: DEFAULT_GUEST_FEATURES,
        }
    }
}

/// The digest of the OVMF pages alone (`sev-snp-measure --mode snp:ovmf-hash`): a seed for
/// [`Inputs::ovmf_hash`], so that a verifier can keep 48 bytes instead of the firmware.
pub fn ovmf_hash(ovmf: &[u8]) -> Result<Digest48, MeasureError> {
    let fw = Ovmf::parse(ovmf)?;
    let mut g = Gctx::from_seed([0; 48]);
    g.update_normal_pages(fw.gpa(), fw.image());
    Ok(g.ld())
}

/// The launch digest of a guest with `vcpus` vCPUs.
pub fn launch_digest(inputs: &Inputs<'_>, vcpus: u32) -> Result<Digest48, MeasureError> {
    let digests = launch_digests(inputs, vcpus..=vcpus)?;
    match digests.first() {
        Some(&(_, d)) => Ok(d),
        None => Err(MeasureError::VcpuRange {
            start: vcpus,
            end: vcpus,
            max: MAX_VCPUS,
        }),
    }
}

/// The launch digests for every vCPU count in `vcpus` (within `1..=`[`MAX_VCPUS`]), in
/// increasing order, in one pass: the firmware and metadata are measured once, then each
/// count costs one more VMSA update.
pub fn launch_digests(
    inputs: &Inputs<'_>,
    vcpus: RangeInclusive<u32>,
) -> Result<Vec<(u32, Digest48)>, MeasureError> {
    let (start, end) = (*vcpus.start(), *vcpus.end());
    if start == 0 || start > end || end > MAX_VCPUS {
        return Err(MeasureError::VcpuRange {
            start,
            end,
            max: MAX_VCPUS,
        });
    }
    let fw = Ovmf::parse(inputs.ovmf)?;
    let ap_eip = fw.sev_es_reset_eip();
    if end > 1 && ap_eip == 0 {
        return Err(MeasureError::ApResetEipZero { vcpus: end });
    }
    let mut g = measure_before_vmsas(inputs, &fw)?;

    let sig = inputs.vcpu_type.signature();
    let bsp = vmsa::digest(vmsa::BSP_EIP, inputs.guest_features, sig, inputs.vmm_type);
    let ap = vmsa::digest(ap_eip, inputs.guest_features, sig, inputs.vmm_type);
    let mut out = Vec::with_capacity((end - start) as usize + 1);
    for n in 1..=end {
        g.update(PageType::Vmsa, VMSA_GPA, if n == 1 { &bsp } else { &ap });
        if n >= start {
            out.push((n, g.ld()));
        }
    }
    Ok(out)
}

/// Steps 1 and 2: the firmware pages and the metadata sections.
fn measure_before_vmsas(inputs: &Inputs<'_>, fw: &Ovmf<'_>) -> Result<Gctx, MeasureError> {
    if inputs.kernel.is_none() {
        if inputs.initrd.is_some() {
            return Err(MeasureError::WithoutKernel { what: "initrd" });
        }
        if inputs.cmdline.is_some_and(|c| !c.is_empty()) {
            return Err(MeasureError::WithoutKernel {
                what: "command line",
            });
        }
    }
    let hashes = inputs
        .kernel
        .map(|k| SevHashes::new(k, inputs.initrd, inputs.cmdline));
    if hashes.is_some() && !fw.has_section(SectionType::SnpKernelHashes) {
        return Err(MeasureError::NoKernelHashesSection);
    }

    let mut g = match inputs.ovmf_hash {
        Some(seed) => Gctx::from_seed(seed),
        None => {
            let mut g = Gctx::from_seed([0; 48]);
            g.update_normal_pages(fw.gpa(), fw.image());
            g
        }
    };
    let vmm = inputs.vmm_type;
    for (index, s) in fw.sections().iter().enumerate() {
        let (gpa, size) = (u64::from(s.gpa), u64::from(s.size));
        match s.kind {
            SectionType::SnpSecMem if vmm == VmmType::Gce => {
                g.update_empty_pages(PageType::Unmeasured, gpa, size)
            }
            SectionType::SnpSecMem | SectionType::SvsmCaa => {
                g.update_empty_pages(PageType::Zero, gpa, size)
            }
            SectionType::SnpSecrets => {
                g.update_empty_pages(PageType::Secrets, gpa, PAGE_SIZE as u64)
            }
            SectionType::Cpuid if vmm == VmmType::Ec2 => {}
            SectionType::Cpuid => g.update_empty_pages(PageType::Cpuid, gpa, PAGE_SIZE as u64),
            SectionType::SnpKernelHashes => match &hashes {
                None => g.update_empty_pages(PageType::Zero, gpa, size),
                Some(h) => {
                    let page = kernel_hashes_page(fw, index, h)?;
                    g.update_normal_pages(gpa, &page);
                }
            },
        }
    }
    if vmm == VmmType::Ec2 {
        for s in fw
            .sections()
            .iter()
            .filter(|s| s.kind == SectionType::Cpuid)
        {
            g.update_empty_pages(PageType::Cpuid, u64::from(s.gpa), PAGE_SIZE as u64);
        }
    }
    Ok(g)
}

/// The SNP_KERNEL_HASHES page (section `index`) with the hash table where QEMU puts it.
fn kernel_hashes_page(
    fw: &Ovmf<'_>,
    index: usize,
    hashes: &SevHashes,
) -> Result<[u8; PAGE_SIZE], MeasureError> {
    let section = fw.sections().get(index).copied();
    let Some(s) = section else {
        return Err(MeasureError::NoKernelHashesSection);
    };
    if s.size as usize != PAGE_SIZE {
        return Err(MeasureError::KernelHashesSectionSize {
            index,
            size: s.size,
        });
    }
    let table = match fw.hash_table() {
        Some(t) if t.gpa != 0 => t,
        _ => {
            return Err(MeasureError::NoHashTableLocation {
                guid: SEV_HASH_TABLE_GUID,
            })
        }
    };
    let table_end = u64::from(table.gpa) + PADDED_TABLE_LEN as u64;
    if table.gpa < s.gpa || table_end > s.end() {
        return Err(MeasureError::HashTableOutsideSection {
            index,
            table_gpa: table.gpa,
            table_len: PADDED_TABLE_LEN,
            section_gpa: s.gpa,
            section_end: s.end(),
        });
    }
    let offset = (table.gpa - s.gpa) as usize;
    hashes
        .page(offset)
        .ok_or(MeasureError::HashTableOutsideSection {
            index,
            table_gpa: table.gpa,
            table_len: PADDED_TABLE_LEN,
            section_gpa: s.gpa,
            section_end: s.end(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_table() {
        assert_eq!(VcpuType::EpycV4.signature(), 0x800f12);
        assert_eq!(VcpuType::EpycRome.signature(), 0x830f10);
        assert_eq!(VcpuType::EpycMilan.signature(), 0xa00f11);
        assert_eq!(VcpuType::EpycGenoa.signature(), 0xa10f10);
        assert_eq!(VcpuType::EpycTurin.signature(), 0xb00f00);
        for v in VcpuType::NAMED {
            let name = v.name().unwrap();
            assert_eq!(name.parse::<VcpuType>().unwrap(), v);
        }
        assert!("epyc".parse::<VcpuType>().is_err());
        assert_eq!("EC2".parse::<VmmType>().unwrap(), VmmType::Ec2);
        assert_eq!("qemu".parse::<VmmType>().unwrap(), VmmType::Qemu);
    }
}
