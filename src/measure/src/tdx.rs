//! TDX launch measurements that can be computed from the image alone: MRTD from the TDVF
//! metadata of the firmware, RTMR[2] of a direct (`-kernel/-initrd/-append`) boot, RTMR[3]
//! (zero at boot), and RTMR[1] for a firmware that measures the kernel image as given.
//! Algorithms as in `tee-formats.md` §5.2 (virtee/tdx-measure `src/{tdvf,kernel,util}.rs`).
//!
//! **MRTD** is one running SHA-384 (not a fold) over every 4 KiB page of every TDVF section,
//! in metadata order: unless the section is PAGE_AUG, a 128-byte `TDH.MEM.PAGE.ADD` record
//! (`"MEM.PAGE.ADD"` zero-padded to 16 bytes, `u64le GPA`, zeros); then, if the section is
//! MR_EXTEND, for each 256-byte chunk of the page a 128-byte `TDH.MR.EXTEND` record
//! (`"MR.EXTEND"`, `u64le GPA`, zeros) followed by the 256 data bytes. This is the order in
//! which KVM's `KVM_TDX_INIT_MEM_REGION` (QEMU's `tdx_finalize_vm`) adds and extends pages:
//! page by page.
//!
//! **RTMRs** fold event digests: `RTMR := SHA-384(RTMR ‖ digest)` from 48 zero bytes.
//! * RTMR[2] of a direct boot = fold of `SHA-384(UTF-16LE(cmdline + " initrd=initrd") ‖ 00 00)`
//!   and `SHA-384(initrd)`: TDVF's QEMU kernel loader appends `initrd=initrd` to the command
//!   line it passes to the kernel and measures both into the "OS" RTMR.
//! * RTMR[1] = fold of the kernel's Authenticode SHA-384, then the fixed strings "Calling
//!   EFI Application from Boot Option", separator, "Exit Boot Services Invocation", "Exit
//!   Boot Services Returned with Success". Which kernel bytes are hashed depends on the
//!   firmware: edk2 ≥ stable202505 loads the unmodified PE image (what [`rtmr1_direct`]
//!   computes); older TDVF builds measure the setup header *as QEMU patched it* (initrd
//!   address, heap end, loader type), which depends on the guest memory size and on
//!   QEMU's ACPI table size, and is **not** computed here.
//! * RTMR[0] covers the TD HOB, the configuration volume, the EFI variables and the ACPI
//!   tables QEMU generates for the exact machine configuration; it is **not** computed here.
//!
//! Everything is pure computation over byte slices, with an [`TdxError`] naming what is
//! wrong with a malformed firmware or kernel image.

use std::fmt;

use sha2::{Digest, Sha384};

use crate::ovmf::{firmware_table, le_u32, GuidTable, OvmfError, TableError, TDX_METADATA_GUID};
use crate::Digest48;

/// Page size of TDX memory initialisation.
pub const PAGE_SIZE: u64 = 4096;
/// Granularity of `TDH.MR.EXTEND`.
pub const MR_EXTEND_CHUNK: usize = 256;
/// Size of the TDVF descriptor header (`"TDVF", u32 length, u32 version, u32 count`).
pub const DESCRIPTOR_HEADER_LEN: usize = 16;
/// Size of one TDVF section entry.
pub const SECTION_ENTRY_LEN: usize = 32;
/// Section attribute: the section's contents are extended into MRTD.
pub const ATTR_MR_EXTEND: u32 = 1 << 0;
/// Section attribute: the pages are added after launch (`TDH.MEM.PAGE.AUG`), not measured.
pub const ATTR_PAGE_AUG: u32 = 1 << 1;

/// Type of a TDVF section (TDVF design guide, table "TDVF_SECTION type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TdvfSectionType {
    /// Boot firmware volume (the code).
    Bfv = 0,
    /// Configuration firmware volume (UEFI variables).
    Cfv = 1,
    /// TD hand-off block.
    TdHob = 2,
    /// Temporary memory.
    TempMem = 3,
    /// Permanent memory.
    PermMem = 4,
    /// Payload (kernel) image.
    Payload = 5,
    /// Payload parameters (command line).
    PayloadParam = 6,
}

impl TdvfSectionType {
    /// The type for its metadata value, if known.
    pub const fn from_raw(raw: u32) -> Option<TdvfSectionType> {
        Some(match raw {
            0 => TdvfSectionType::Bfv,
            1 => TdvfSectionType::Cfv,
            2 => TdvfSectionType::TdHob,
            3 => TdvfSectionType::TempMem,
            4 => TdvfSectionType::PermMem,
            5 => TdvfSectionType::Payload,
            6 => TdvfSectionType::PayloadParam,
            _ => return None,
        })
    }

    /// The TDVF design guide's name, e.g. `"BFV"`.
    pub const fn name(self) -> &'static str {
        match self {
            TdvfSectionType::Bfv => "BFV",
            TdvfSectionType::Cfv => "CFV",
            TdvfSectionType::TdHob => "TD_HOB",
            TdvfSectionType::TempMem => "TEMP_MEM",
            TdvfSectionType::PermMem => "PERM_MEM",
            TdvfSectionType::Payload => "PAYLOAD",
            TdvfSectionType::PayloadParam => "PAYLOAD_PARAM",
        }
    }
}

impl fmt::Display for TdvfSectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What is wrong with a TDVF image or a kernel image. Offsets are byte offsets into the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TdxError {
    /// The footer GUID table could not be parsed.
    #[error("parsing the firmware's GUID table")]
    GuidTable(#[source] OvmfError),
    /// The GUID table has no TDX metadata entry: not a TDVF build.
    #[error("the firmware's GUID table has no TDX metadata entry ({TDX_METADATA_GUID}): not a TDVF (IntelTdx/OvmfX64 with TDX) build")]
    NoTdxMetadata,
    /// The TDX metadata entry is shorter than its `u32` offset.
    #[error("TDX metadata GUID table entry has {len} data bytes, needs 4")]
    MetadataEntryData {
        /// Data length.
        len: usize,
    },
    /// The descriptor offset points outside the image.
    #[error("TDVF descriptor offset {offset_from_end:#x} from the end of a {len}-byte image leaves no room for its header")]
    DescriptorOffset {
        /// Offset from the end of the image, from the GUID table.
        offset_from_end: u32,
        /// Image length.
        len: usize,
    },
    /// The descriptor does not start with `"TDVF"`.
    #[error("TDVF descriptor at {offset:#x} has signature {found:02x?}, wanted \"TDVF\"")]
    DescriptorSignature {
        /// Offset of the descriptor.
        offset: usize,
        /// The four bytes found.
        found: [u8; 4],
    },
    /// The descriptor version is not 1.
    #[error("TDVF descriptor at {offset:#x} has version {found}, wanted 1")]
    DescriptorVersion {
        /// Offset of the descriptor.
        offset: usize,
        /// Version found.
        found: u32,
    },
    /// The descriptor length cannot hold its sections, or runs past the image end.
    #[error(
        "TDVF descriptor at {offset:#x} has length {length} for {count} sections \
         (needs at least {needed}, and at most {available} bytes are left in the image)"
    )]
    DescriptorLength {
        /// Offset of the descriptor.
        offset: usize,
        /// Length from the header.
        length: u32,
        /// Section count from the header.
        count: u32,
        /// `16 + 32 * count`.
        needed: u64,
        /// Bytes from the descriptor to the end of the image.
        available: usize,
    },
    /// The descriptor lists no section.
    #[error("TDVF descriptor lists no sections")]
    NoSections,
    /// A section type the TDVF design guide does not define.
    #[error("TDVF section #{index} has unknown type {raw:#x}")]
    UnknownSectionType {
        /// Position in the descriptor.
        index: usize,
        /// The type found.
        raw: u32,
    },
    /// A section sets attribute bits other than MR_EXTEND and PAGE_AUG.
    #[error("TDVF section #{index} ({kind}) has unknown attribute bits {attributes:#x}")]
    UnknownAttributes {
        /// Position in the descriptor.
        index: usize,
        /// Section type.
        kind: TdvfSectionType,
        /// The attributes found.
        attributes: u32,
    },
    /// A section's address or memory size is not 4 KiB-aligned, or its size is 0.
    #[error("TDVF section #{index} ({kind}) at {mem_addr:#x} size {mem_size:#x} is empty or not 4 KiB-aligned")]
    SectionMisaligned {
        /// Position in the descriptor.
        index: usize,
        /// Section type.
        kind: TdvfSectionType,
        /// Guest-physical address.
        mem_addr: u64,
        /// Memory size.
        mem_size: u64,
    },
    /// A section's raw data is larger than its memory, or lies outside the image.
    #[error(
        "TDVF section #{index} ({kind}) has raw data {data_offset:#x}+{raw_size:#x} \
         (memory size {mem_size:#x}) outside the {len}-byte image or larger than its memory"
    )]
    SectionData {
        /// Position in the descriptor.
        index: usize,
        /// Section type.
        kind: TdvfSectionType,
        /// Offset of the raw data in the image.
        data_offset: u32,
        /// Raw data size.
        raw_size: u32,
        /// Memory size.
        mem_size: u64,
        /// Image length.
        len: usize,
    },
    /// An MR_EXTEND section whose raw data does not fill its memory: what the VMM extends
    /// for the remainder is not defined by the image.
    #[error(
        "TDVF section #{index} ({kind}) is MR_EXTEND but its raw size {raw_size:#x} \
         differs from its memory size {mem_size:#x}"
    )]
    ExtendSizeMismatch {
        /// Position in the descriptor.
        index: usize,
        /// Section type.
        kind: TdvfSectionType,
        /// Raw data size.
        raw_size: u32,
        /// Memory size.
        mem_size: u64,
    },
    /// Two sections share guest pages.
    #[error("TDVF sections #{first} and #{second} overlap in guest memory")]
    SectionsOverlap {
        /// The earlier section in the descriptor.
        first: usize,
        /// The later one.
        second: usize,
    },
    /// The kernel is not a PE/COFF image (no EFI stub), so it has no Authenticode hash.
    #[error("kernel is not a PE/COFF image: {what}")]
    KernelNotPe {
        /// What is missing or out of range.
        what: String,
    },
}

/// One TDVF section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TdvfSection {
    /// Offset of the raw data in the image.
    pub data_offset: u32,
    /// Size of the raw data in the image.
    pub raw_size: u32,
    /// Guest-physical address.
    pub mem_addr: u64,
    /// Size in guest memory.
    pub mem_size: u64,
    /// What the section is.
    pub kind: TdvfSectionType,
    /// Attribute bits ([`ATTR_MR_EXTEND`], [`ATTR_PAGE_AUG`]).
    pub attributes: u32,
}

impl TdvfSection {
    /// Whether the contents are extended into MRTD.
    pub const fn mr_extend(&self) -> bool {
        self.attributes & ATTR_MR_EXTEND != 0
    }

    /// Whether the pages are added after launch (not in MRTD at all).
    pub const fn page_aug(&self) -> bool {
        self.attributes & ATTR_PAGE_AUG != 0
    }
}

/// A TDVF firmware image with its validated section list.
#[derive(Debug, Clone)]
pub struct Tdvf<'a> {
    image: &'a [u8],
    descriptor_offset: usize,
    sections: Vec<TdvfSection>,
}

impl<'a> Tdvf<'a> {
    /// Parses the GUID table and the TDVF descriptor of `image` and validates every section
    /// (type, attributes, alignment, raw data within the image, MR_EXTEND sizes, overlaps).
    pub fn parse(image: &'a [u8]) -> Result<Tdvf<'a>, TdxError> {
        let table = GuidTable::parse(image).map_err(TdxError::GuidTable)?;
        let entry = table
            .get(&TDX_METADATA_GUID)
            .ok_or(TdxError::NoTdxMetadata)?;
        let offset_from_end = entry
            .data
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or(TdxError::MetadataEntryData {
                len: entry.data.len(),
            })?;
        let len = image.len();
        let table = firmware_table(image, offset_from_end, b"TDVF", SECTION_ENTRY_LEN).map_err(
            |e| match e {
                TableError::Offset {
                    offset_from_end,
                    len,
                } => TdxError::DescriptorOffset {
                    offset_from_end,
                    len,
                },
                TableError::Signature { offset, found } => {
                    TdxError::DescriptorSignature { offset, found }
                }
                TableError::Version { offset, found } => {
                    TdxError::DescriptorVersion { offset, found }
                }
                TableError::Length {
                    offset,
                    length,
                    count,
                    needed,
                    available,
                } => TdxError::DescriptorLength {
                    offset,
                    length,
                    count,
                    needed,
                    available,
                },
                TableError::NoEntries => TdxError::NoSections,
            },
        )?;
        let (offset, count, entries) = (table.offset, table.count, table.entries);
        let mut sections = Vec::with_capacity(count as usize);
        for (index, e) in entries
            .chunks_exact(SECTION_ENTRY_LEN)
            .take(count as usize)
            .enumerate()
        {
            let s = parse_section(index, e, len)?;
            sections.push(s);
        }
        for (i, a) in sections.iter().enumerate() {
            for (j, b) in sections.iter().enumerate().skip(i + 1) {
                let a_end = a.mem_addr.saturating_add(a.mem_size);
                let b_end = b.mem_addr.saturating_add(b.mem_size);
                if a.mem_addr < b_end && b.mem_addr < a_end {
                    return Err(TdxError::SectionsOverlap {
                        first: i,
                        second: j,
                    });
                }
            }
        }
        Ok(Tdvf {
            image,
            descriptor_offset: offset,
            sections,
        })
    }

    /// The whole image.
    pub fn image(&self) -> &'a [u8] {
        self.image
    }

    /// Offset of the TDVF descriptor in the image.
    pub fn descriptor_offset(&self) -> usize {
        self.descriptor_offset
    }

    /// The sections, in descriptor order (the measurement order).
    pub fn sections(&self) -> &[TdvfSection] {
        &self.sections
    }

    /// MRTD of a TD launched with this firmware (see the [module documentation](self)).
    pub fn mrtd(&self) -> Digest48 {
        let mut h = Sha384::new();
        for s in &self.sections {
            let pages = s.mem_size / PAGE_SIZE;
            for page in 0..pages {
                let gpa = s.mem_addr + page * PAGE_SIZE;
                if !s.page_aug() {
                    h.update(record(b"MEM.PAGE.ADD", gpa));
                }
                if s.mr_extend() {
                    // Validated in `parse`: raw data covers the whole memory size.
                    let data = page_range(u64::from(s.data_offset), page)
                        .and_then(|range| self.image.get(range))
                        .unwrap_or_default();
                    for (i, chunk) in data.chunks(MR_EXTEND_CHUNK).enumerate() {
                        h.update(record(b"MR.EXTEND", gpa + (i * MR_EXTEND_CHUNK) as u64));
                        h.update(chunk);
                    }
                }
            }
        }
        h.finalize().into()
    }
}

/// The image bytes of page `page` of a section whose raw data starts at
/// `data_offset`; `None` if the range does not fit in `usize` (`parse` has
/// already checked that it lies inside the image).
fn page_range(data_offset: u64, page: u64) -> Option<std::ops::Range<usize>> {
    let start = data_offset.checked_add(page.checked_mul(PAGE_SIZE)?)?;
    let end = start.checked_add(PAGE_SIZE)?;
    Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}

fn parse_section(index: usize, e: &[u8], len: usize) -> Result<TdvfSection, TdxError> {
    let data_offset = le_u32(e, 0);
    let raw_size = le_u32(e, 4);
    let mem_addr = le_u64(e, 8);
    let mem_size = le_u64(e, 16);
    let raw_kind = le_u32(e, 24);
    let attributes = le_u32(e, 28);
    let kind = TdvfSectionType::from_raw(raw_kind).ok_or(TdxError::UnknownSectionType {
        index,
        raw: raw_kind,
    })?;
    if attributes & !(ATTR_MR_EXTEND | ATTR_PAGE_AUG) != 0 {
        return Err(TdxError::UnknownAttributes {
            index,
            kind,
            attributes,
        });
    }
    if mem_size == 0 || !mem_addr.is_multiple_of(PAGE_SIZE) || !mem_size.is_multiple_of(PAGE_SIZE) {
        return Err(TdxError::SectionMisaligned {
            index,
            kind,
            mem_addr,
            mem_size,
        });
    }
    let data_end = u64::from(data_offset) + u64::from(raw_size);
    if u64::from(raw_size) > mem_size || (raw_size > 0 && data_end > len as u64) {
        return Err(TdxError::SectionData {
            index,
            kind,
            data_offset,
            raw_size,
            mem_size,
            len,
        });
    }
    let s = TdvfSection {
        data_offset,
        raw_size,
        mem_addr,
        mem_size,
        kind,
        attributes,
    };
    if s.mr_extend() && u64::from(raw_size) != mem_size {
        return Err(TdxError::ExtendSizeMismatch {
            index,
            kind,
            raw_size,
            mem_size,
        });
    }
    Ok(s)
}

/// A 128-byte `TDH.MEM.PAGE.ADD` / `TDH.MR.EXTEND` record: the operation name zero-padded
/// to 16 bytes, the GPA, zeros.
fn record(name: &[u8], gpa: u64) -> [u8; 128] {
    let mut r = [0u8; 128];
    if let Some(dst) = r.get_mut(..name.len()) {
        dst.copy_from_slice(name);
    }
    r[16..24].copy_from_slice(&gpa.to_le_bytes());
    r
}

/// MRTD of the TDVF `image` (parses it first).
pub fn mrtd(image: &[u8]) -> Result<Digest48, TdxError> {
    Ok(Tdvf::parse(image)?.mrtd())
}

/// `RTMR := SHA-384(RTMR ‖ d)` for each event digest `d`, from 48 zero bytes.
pub fn rtmr_fold<'d>(events: impl IntoIterator<Item = &'d Digest48>) -> Digest48 {
    events.into_iter().fold([0u8; 48], |mr, d| {
        Sha384::new()
            .chain_update(mr)
            .chain_update(d)
            .finalize()
            .into()
    })
}

/// SHA-384 of `data`.
pub fn sha384(data: &[u8]) -> Digest48 {
    Sha384::digest(data).into()
}

/// The command line TDVF passes to a directly booted kernel with an initrd (and measures):
/// the given one plus `" initrd=initrd"`.
pub fn tdvf_cmdline(cmdline: &str) -> String {
    format!("{cmdline} initrd=initrd")
}

/// The command-line event digest: SHA-384 of the UTF-16LE string and a UTF-16 NUL.
pub fn cmdline_event(cmdline: &str) -> Digest48 {
    let mut h = Sha384::new();
    for unit in cmdline.encode_utf16() {
        h.update(unit.to_le_bytes());
    }
    h.update([0u8, 0]);
    h.finalize().into()
}

/// RTMR[2] of a direct boot of `initrd` with `cmdline` (as given to QEMU `-append`).
pub fn rtmr2_direct(cmdline: &str, initrd: &[u8]) -> Digest48 {
    rtmr_fold(&[cmdline_event(&tdvf_cmdline(cmdline)), sha384(initrd)])
}

/// The fixed events TDVF measures into RTMR[1] after the kernel's Authenticode hash.
pub const RTMR1_FIXED_EVENTS: [&[u8]; 4] = [
    b"Calling EFI Application from Boot Option",
    &[0, 0, 0, 0],
    b"Exit Boot Services Invocation",
    b"Exit Boot Services Returned with Success",
];

/// RTMR[1] of a direct boot of `kernel` by a TDVF that measures the kernel image unmodified
/// (edk2 ≥ stable202505). Not valid for older TDVF builds (see the
/// [module documentation](self)).
pub fn rtmr1_direct(kernel: &[u8]) -> Result<Digest48, TdxError> {
    let mut events = vec![authenticode_sha384(kernel)?];
    events.extend(RTMR1_FIXED_EVENTS.iter().map(|e| sha384(e)));
    Ok(rtmr_fold(&events))
}

/// RTMR[3] at boot: nothing is measured into it before the guest runs.
pub const RTMR3_AT_BOOT: Digest48 = [0; 48];

/// The Authenticode SHA-384 of a PE/COFF image (Microsoft "Windows Authenticode Portable
/// Executable Signature Format"), as UEFI computes it when it loads an image: the headers
/// without the checksum and the certificate-table directory entry, the sections in file
/// order, then any bytes after the sections except the certificate table; the total is
/// zero-padded to a multiple of 8 bytes (as edk2's `DxeTpm2MeasureBootLib`/tdx-measure do).
pub fn authenticode_sha384(pe: &[u8]) -> Result<Digest48, TdxError> {
    let bad = |what: &str| TdxError::KernelNotPe {
        what: what.to_owned(),
    };
    let u16_at = |off: usize, what: &str| {
        pe.get(off..off + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| bad(what))
    };
    let u32_at = |off: usize, what: &str| {
        pe.get(off..off + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| bad(what))
    };
    if pe.get(..2) != Some(b"MZ") {
        return Err(bad("no MZ signature"));
    }
    let pe_off = u32_at(0x3c, "DOS header e_lfanew")? as usize;
    if pe.get(pe_off..pe_off + 4) != Some(b"PE\0\0") {
        return Err(bad("no PE signature at e_lfanew"));
    }
    let coff = pe_off + 4;
    let sections = u16_at(coff + 2, "COFF NumberOfSections")? as usize;
    let opt_size = u16_at(coff + 16, "COFF SizeOfOptionalHeader")? as usize;
    let opt = coff + 20;
    let data_dirs = match u16_at(opt, "optional header magic")? {
        0x10b => opt + 96,
        0x20b => opt + 112,
        _ => return Err(bad("unknown optional header magic")),
    };
    let checksum = opt + 64;
    let cert_dir = data_dirs + 4 * 8;
    let size_of_headers = u32_at(opt + 60, "SizeOfHeaders")? as usize;
    if !(checksum < cert_dir && cert_dir + 8 <= size_of_headers && size_of_headers <= pe.len()) {
        return Err(bad("headers out of range"));
    }
    let mut h = Sha384::new();
    h.update(pe.get(..checksum).unwrap_or_default());
    h.update(pe.get(checksum + 4..cert_dir).unwrap_or_default());
    h.update(pe.get(cert_dir + 8..size_of_headers).unwrap_or_default());
    let mut hashed = size_of_headers;
    let table = opt + opt_size;
    let mut raw: Vec<(usize, usize)> = Vec::with_capacity(sections);
    for i in 0..sections {
        let s = table + i * 40;
        let size = u32_at(s + 16, "section SizeOfRawData")? as usize;
        let ptr = u32_at(s + 20, "section PointerToRawData")? as usize;
        if size > 0 {
            raw.push((ptr, size));
        }
    }
    raw.sort_by_key(|&(ptr, _)| ptr);
    for (ptr, size) in raw {
        let end = ptr.saturating_add(size).min(pe.len());
        h.update(pe.get(ptr.min(end)..end).unwrap_or_default());
        hashed += size;
    }
    let cert_addr = u32_at(cert_dir, "certificate table address")? as usize;
    let cert_size = u32_at(cert_dir + 4, "certificate table size")? as usize;
    if cert_addr > 0 && cert_size > 0 && pe.len() > hashed {
        let trailing = pe.len() - hashed;
        if trailing > cert_size {
            let extra = trailing - cert_size;
            h.update(pe.get(hashed..hashed + extra).unwrap_or_default());
        }
    }
    let rem = pe.len() % 8;
    if rem != 0 {
        h.update(&[0u8; 8][..8 - rem]);
    }
    Ok(h.finalize().into())
}

fn le_u64(b: &[u8], offset: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(src) = b.get(offset..offset + 8) {
        w.copy_from_slice(src);
    }
    u64::from_le_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_and_records() {
        assert_eq!(rtmr_fold(&[]), [0; 48]);
        let d = sha384(b"x");
        let mut buf = [0u8; 96];
        buf[48..].copy_from_slice(&d);
        assert_eq!(rtmr_fold(&[d]), sha384(&buf));
        let r = record(b"MEM.PAGE.ADD", 0x1122_3344_5566_7788);
        assert_eq!(&r[..12], b"MEM.PAGE.ADD");
        assert_eq!(r[12..16], [0; 4]);
        assert_eq!(r[16..24], 0x1122_3344_5566_7788u64.to_le_bytes());
        assert!(r[24..].iter().all(|&b| b == 0));
    }

    #[test]
    fn cmdline_event_is_utf16le_with_nul() {
        assert_eq!(cmdline_event("a"), sha384(&[b'a', 0, 0, 0]));
        assert_eq!(cmdline_event("é"), sha384(&[0xe9, 0, 0, 0]));
        assert_eq!(tdvf_cmdline("quiet"), "quiet initrd=initrd");
    }
}
