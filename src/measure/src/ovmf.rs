//! OVMF image parsing: the footer GUID table, the SEV metadata and the SEV-ES reset block.
//!
//! Layout (edk2 `OvmfPkg/ResetVector`, read as virtee/sev-snp-measure `ovmf.py` reads it;
//! `tee-formats.md` §5.1):
//!
//! * The image is mapped so that it ends at 4 GiB.
//! * The GUID table ends 32 bytes before the end of the image. Its last entry is the footer
//!   `{u16 table_length, GUID 96b582de-…}`, where `table_length` covers the whole table
//!   including the footer. Walking backwards from the footer, each entry is
//!   `data ‖ u16 length ‖ GUID` (GUID in EFI byte order, `length` counting all three).
//! * Entry `dc886566-…` holds a `u32` offset from the end of the image of the SEV metadata:
//!   `"ASEV", u32 length, u32 version = 1, u32 count`, then `count` sections
//!   `{u32 gpa, u32 size, u32 type}`.
//! * Entry `00f771de-…` (SEV-ES reset block) holds the `u32` reset EIP of the application
//!   processors; entry `7255371f-…` holds `{u32 gpa, u32 size}` of the SEV hash table.
//!
//! [`Ovmf::parse`] is stricter than `sev-snp-measure` where the latter would silently accept a
//! firmware that cannot launch (or would crash on it): every such case is an [`OvmfError`]
//! naming what is wrong. For every well-formed image the parsed values are the ones
//! `sev-snp-measure` uses.

use std::fmt;

/// Page size of the SNP measurement (and of every section).
pub const PAGE_SIZE: usize = 4096;
/// The image is mapped so that its last byte is just below this guest-physical address.
pub const FOUR_GIB: u64 = 1 << 32;
/// The GUID table ends this many bytes before the end of the image.
pub const TABLE_END_FROM_IMAGE_END: usize = 32;
/// Size of a GUID table entry header (`u16 length ‖ GUID`).
pub const ENTRY_HEADER_LEN: usize = 18;
/// Size of the SEV metadata header (`"ASEV", u32 length, u32 version, u32 count`).
pub const METADATA_HEADER_LEN: usize = 16;
/// Size of one SEV metadata section descriptor (`u32 gpa, u32 size, u32 type`).
pub const METADATA_SECTION_LEN: usize = 12;

/// A GUID, stored in the EFI ("mixed-endian", Python `uuid.bytes_le`) byte order used by
/// the firmware and by the SEV hash table. [`fmt::Display`] prints the canonical form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid([u8; 16]);

impl Guid {
    /// The GUID `d1-d2-d3-d4[0..2]-d4[2..8]` in canonical notation.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// A GUID from its 16 bytes in EFI byte order (as stored in the image).
    pub const fn from_bytes_le(bytes: [u8; 16]) -> Self {
        Guid(bytes)
    }

    /// The 16 bytes in EFI byte order (as stored in the image).
    pub const fn to_bytes_le(self) -> [u8; 16] {
        self.0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `96b582de-1fb2-45f7-baea-a366c55a082d`: the GUID table footer.
pub const FOOTER_GUID: Guid = Guid::from_fields(
    0x96b582de,
    0x1fb2,
    0x45f7,
    [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d],
);
/// `dc886566-984a-4798-a75e-5585a7bf67cc`: offset of the SEV metadata from the end of the image.
pub const SEV_METADATA_GUID: Guid = Guid::from_fields(
    0xdc886566,
    0x984a,
    0x4798,
    [0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc],
);
/// `7255371f-3a3b-4b04-927b-1da6efa8d454`: `{u32 gpa, u32 size}` of the SEV hash table.
pub const SEV_HASH_TABLE_GUID: Guid = Guid::from_fields(
    0x7255371f,
    0x3a3b,
    0x4b04,
    [0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54],
);
/// `00f771de-1a7e-4fcb-890e-68c77e2fb44e`: the SEV-ES reset block (`u32` AP reset EIP).
pub const SEV_ES_RESET_BLOCK_GUID: Guid = Guid::from_fields(
    0x00f771de,
    0x1a7e,
    0x4fcb,
    [0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e],
);
/// `4c2eb361-7d9b-4cc3-8081-127c90d3d294`: `{u32 gpa, u32 size}` of the SEV launch secret.
pub const SEV_SECRET_BLOCK_GUID: Guid = Guid::from_fields(
    0x4c2eb361,
    0x7d9b,
    0x4cc3,
    [0x80, 0x81, 0x12, 0x7c, 0x90, 0xd3, 0xd2, 0x94],
);
/// `e47a6535-984a-4798-865e-4685a7bf8ec2`: offset of the TDX metadata (TDVF descriptor).
pub const TDX_METADATA_GUID: Guid = Guid::from_fields(
    0xe47a6535,
    0x984a,
    0x4798,
    [0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2],
);

/// What is wrong with an OVMF image. Offsets are byte offsets into the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OvmfError {
    /// The image is too small to hold the footer.
    #[error("image is {len} bytes, too small for a GUID table footer (needs {min})")]
    ImageTooSmall {
        /// Image length.
        len: usize,
        /// Minimum length.
        min: usize,
    },
    /// The image is not a whole number of 4096-byte pages, or is larger than 4 GiB.
    #[error(
        "image is {len} bytes; it must be a non-zero multiple of 4096 bytes and at most 4 GiB"
    )]
    ImageLength {
        /// Image length.
        len: usize,
    },
    /// No footer GUID where the table footer must be.
    #[error(
        "no GUID table footer at offset {offset:#x}: found GUID {found}, wanted {FOOTER_GUID}"
    )]
    FooterMissing {
        /// Offset of the footer entry header.
        offset: usize,
        /// The GUID found there.
        found: Guid,
    },
    /// The footer's table length is shorter than the footer or reaches before the image start.
    #[error("GUID table footer gives table length {length}, outside {ENTRY_HEADER_LEN}..={max}")]
    FooterTableLength {
        /// Table length from the footer.
        length: u16,
        /// The largest length that fits in the image.
        max: usize,
    },
    /// An entry's length is shorter than its header or longer than the table left before it.
    #[error(
        "GUID table entry {guid} (header at {offset:#x}) has length {length}, \
         outside {ENTRY_HEADER_LEN}..={remaining}"
    )]
    TableEntryLength {
        /// The entry's GUID.
        guid: Guid,
        /// Offset of the entry header.
        offset: usize,
        /// Length from the header.
        length: u16,
        /// Table bytes left, including this entry.
        remaining: usize,
    },
    /// Bytes left at the start of the table that are too few for an entry header.
    #[error("GUID table has {bytes} stray bytes at offset {offset:#x}, too few for an entry")]
    TableLeftover {
        /// Offset of the table start.
        offset: usize,
        /// Number of stray bytes.
        bytes: usize,
    },
    /// The same GUID appears twice in the table.
    #[error("GUID table entry {guid} appears twice (second header at {offset:#x})")]
    DuplicateTableEntry {
        /// The repeated GUID.
        guid: Guid,
        /// Offset of the second (lower) entry header.
        offset: usize,
    },
    /// A required GUID table entry is absent.
    #[error("GUID table has no {entry} entry ({guid})")]
    MissingTableEntry {
        /// What the entry is.
        entry: &'static str,
        /// Its GUID.
        guid: Guid,
    },
    /// A GUID table entry's data is too short for its layout.
    #[error("GUID table {entry} entry ({guid}) has {len} data bytes, needs {wanted}")]
    TableEntryData {
        /// What the entry is.
        entry: &'static str,
        /// Its GUID.
        guid: Guid,
        /// Data length.
        len: usize,
        /// Needed length.
        wanted: usize,
    },
    /// The SEV metadata offset points outside the image.
    #[error("SEV metadata offset {offset_from_end:#x} from the end of a {len}-byte image leaves no room for its header")]
    MetadataOffset {
        /// Offset from the end of the image, from the GUID table.
        offset_from_end: u32,
        /// Image length.
        len: usize,
    },
    /// The SEV metadata does not start with `"ASEV"`.
    #[error("SEV metadata at {offset:#x} has signature {found:02x?}, wanted \"ASEV\"")]
    MetadataSignature {
        /// Offset of the metadata header.
        offset: usize,
        /// The four bytes found.
        found: [u8; 4],
    },
    /// The SEV metadata version is not 1.
    #[error("SEV metadata at {offset:#x} has version {found}, wanted 1")]
    MetadataVersion {
        /// Offset of the metadata header.
        offset: usize,
        /// Version found.
        found: u32,
    },
    /// The metadata length cannot hold its sections, or the metadata runs past the image end.
    #[error(
        "SEV metadata at {offset:#x} has length {length} for {count} sections \
         (needs at least {needed}, and at most {available} bytes are left in the image)"
    )]
    MetadataLength {
        /// Offset of the metadata header.
        offset: usize,
        /// Length from the header.
        length: u32,
        /// Section count from the header.
        count: u32,
        /// `16 + 12 * count`.
        needed: u64,
        /// Bytes from the header to the end of the image.
        available: usize,
    },
    /// The SEV metadata lists no section.
    #[error("SEV metadata lists no sections")]
    NoSections,
    /// A section type that neither sev-snp-measure nor QEMU knows.
    #[error("SEV metadata section #{index} has unknown type {raw:#x}")]
    UnknownSectionType {
        /// Position in the metadata.
        index: usize,
        /// The type found.
        raw: u32,
    },
    /// A section has size 0.
    #[error("SEV metadata section #{index} ({kind}) at {gpa:#x} is empty")]
    SectionEmpty {
        /// Position in the metadata.
        index: usize,
        /// Section type.
        kind: SectionType,
        /// Start address.
        gpa: u32,
    },
    /// A section's address or size is not 4 KiB-aligned.
    #[error(
        "SEV metadata section #{index} ({kind}) at {gpa:#x} size {size:#x} is not 4 KiB-aligned"
    )]
    SectionMisaligned {
        /// Position in the metadata.
        index: usize,
        /// Section type.
        kind: SectionType,
        /// Start address.
        gpa: u32,
        /// Size.
        size: u32,
    },
    /// A secrets or CPUID section that is not exactly one page (QEMU would measure its whole
    /// size, sev-snp-measure a single page).
    #[error(
        "SEV metadata section #{index} ({kind}) is {size:#x} bytes; it must be one 4096-byte page"
    )]
    SectionSize {
        /// Position in the metadata.
        index: usize,
        /// Section type.
        kind: SectionType,
        /// Size found.
        size: u32,
    },
    /// A section reaches into the firmware mapping (or past 4 GiB).
    #[error(
        "SEV metadata section #{index} ({kind}) {gpa:#x}..{end:#x} reaches past {limit:#x}, \
         where the firmware image is mapped"
    )]
    SectionOutOfRange {
        /// Position in the metadata.
        index: usize,
        /// Section type.
        kind: SectionType,
        /// Start address.
        gpa: u32,
        /// End address (exclusive).
        end: u64,
        /// Guest-physical address of the firmware image.
        limit: u64,
    },
    /// Two sections share pages.
    #[error(
        "SEV metadata sections #{first} ({first_kind}, {first_gpa:#x}..{first_end:#x}) and \
         #{second} ({second_kind}, {second_gpa:#x}..{second_end:#x}) overlap"
    )]
    SectionsOverlap {
        /// Position in the metadata of the earlier of the two.
        first: usize,
        /// Its type.
        first_kind: SectionType,
        /// Its start.
        first_gpa: u32,
        /// Its end (exclusive).
        first_end: u64,
        /// Position in the metadata of the later of the two.
        second: usize,
        /// Its type.
        second_kind: SectionType,
        /// Its start.
        second_gpa: u32,
        /// Its end (exclusive).
        second_end: u64,
    },
    /// A section every SNP guest firmware declares is absent.
    #[error("SEV metadata has no {kind} section")]
    MissingSection {
        /// The missing type.
        kind: SectionType,
    },
}

/// One GUID table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    /// The entry's GUID.
    pub guid: Guid,
    /// Offset of the entry's data in the image.
    pub data_offset: usize,
    /// The entry's data (without the length and GUID).
    pub data: Vec<u8>,
}

/// The footer GUID table of an OVMF image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuidTable {
    /// Entries in walking order: the one just below the footer first.
    entries: Vec<TableEntry>,
}

impl GuidTable {
    /// Parses the GUID table that ends 32 bytes before the end of `image`.
    pub fn parse(image: &[u8]) -> Result<GuidTable, OvmfError> {
        let len = image.len();
        let min = TABLE_END_FROM_IMAGE_END + ENTRY_HEADER_LEN;
        if len < min {
            return Err(OvmfError::ImageTooSmall { len, min });
        }
        let footer = len - min;
        let (length, found) = entry_header(image, footer);
        if found != FOOTER_GUID {
            return Err(OvmfError::FooterMissing {
                offset: footer,
                found,
            });
        }
        let max = footer + ENTRY_HEADER_LEN;
        let table_len = usize::from(length);
        if table_len < ENTRY_HEADER_LEN || table_len > max {
            return Err(OvmfError::FooterTableLength { length, max });
        }
        let start = footer + ENTRY_HEADER_LEN - table_len;
        let mut end = footer;
        let mut entries: Vec<TableEntry> = Vec::new();
        while end > start {
            let remaining = end - start;
            if remaining < ENTRY_HEADER_LEN {
                return Err(OvmfError::TableLeftover {
                    offset: start,
                    bytes: remaining,
                });
            }
            let header = end - ENTRY_HEADER_LEN;
            let (length, guid) = entry_header(image, header);
            let entry_len = usize::from(length);
            if entry_len < ENTRY_HEADER_LEN || entry_len > remaining {
                return Err(OvmfError::TableEntryLength {
                    guid,
                    offset: header,
                    length,
                    remaining,
                });
            }
            if entries.iter().any(|e| e.guid == guid) {
                return Err(OvmfError::DuplicateTableEntry {
                    guid,
                    offset: header,
                });
            }
            let data_offset = end - entry_len;
            let data = image.get(data_offset..header).unwrap_or_default().to_vec();
            entries.push(TableEntry {
                guid,
                data_offset,
                data,
            });
            end = data_offset;
        }
        Ok(GuidTable { entries })
    }

    /// All entries, the one just below the footer first.
    pub fn entries(&self) -> &[TableEntry] {
        &self.entries
    }

    /// The entry with `guid`, if any.
    pub fn get(&self, guid: &Guid) -> Option<&TableEntry> {
        self.entries.iter().find(|e| e.guid == *guid)
    }

    /// The first `N` data bytes of a required entry.
    fn field<const N: usize>(&self, entry: &'static str, guid: Guid) -> Result<[u8; N], OvmfError> {
        let e = self
            .get(&guid)
            .ok_or(OvmfError::MissingTableEntry { entry, guid })?;
        e.data
            .get(..N)
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or(OvmfError::TableEntryData {
                entry,
                guid,
                len: e.data.len(),
                wanted: N,
            })
    }

    fn optional_field<const N: usize>(
        &self,
        entry: &'static str,
        guid: Guid,
    ) -> Result<Option<[u8; N]>, OvmfError> {
        match self.field::<N>(entry, guid) {
            Ok(v) => Ok(Some(v)),
            Err(OvmfError::MissingTableEntry { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `(u16 length, GUID)` of the entry header at `offset`; the caller checked it is in bounds.
fn entry_header(image: &[u8], offset: usize) -> (u16, Guid) {
    let mut h = [0u8; ENTRY_HEADER_LEN];
    if let Some(src) = image.get(offset..offset + ENTRY_HEADER_LEN) {
        h.copy_from_slice(src);
    }
    let mut g = [0u8; 16];
    g.copy_from_slice(&h[2..]);
    (u16::from_le_bytes([h[0], h[1]]), Guid(g))
}

/// A table the firmware describes from its end: a 16-byte header (magic,
/// total length, version 1, entry count) followed by `count` entries. OVMF's
/// SEV metadata (`ASEV`) and TDVF's TDX metadata (`TDVF`) share this shape.
pub(crate) struct FirmwareTable<'a> {
    /// Offset of the header in the image.
    pub offset: usize,
    /// Number of entries.
    pub count: u32,
    /// The entries' bytes (`count` entries, possibly followed by padding).
    pub entries: &'a [u8],
}

/// Why a [`FirmwareTable`] could not be located; callers map these to their
/// own error types.
pub(crate) enum TableError {
    Offset {
        offset_from_end: u32,
        len: usize,
    },
    Signature {
        offset: usize,
        found: [u8; 4],
    },
    Version {
        offset: usize,
        found: u32,
    },
    Length {
        offset: usize,
        length: u32,
        count: u32,
        needed: u64,
        available: usize,
    },
    NoEntries,
}

const TABLE_HEADER_LEN: usize = METADATA_HEADER_LEN;

/// Locates and checks a [`FirmwareTable`] `offset_from_end` bytes before the
/// end of `image`.
pub(crate) fn firmware_table<'a>(
    image: &'a [u8],
    offset_from_end: u32,
    magic: &[u8; 4],
    entry_len: usize,
) -> Result<FirmwareTable<'a>, TableError> {
    let len = image.len();
    let offset = match len.checked_sub(offset_from_end as usize) {
        Some(o) if len - o >= TABLE_HEADER_LEN => o,
        _ => {
            return Err(TableError::Offset {
                offset_from_end,
                len,
            })
        }
    };
    let header = image
        .get(offset..offset + TABLE_HEADER_LEN)
        .unwrap_or_default();
    let mut signature = [0u8; 4];
    signature.copy_from_slice(header.get(..4).unwrap_or(&[0; 4]));
    if &signature != magic {
        return Err(TableError::Signature {
            offset,
            found: signature,
        });
    }
    let length = le_u32(header, 4);
    let version = le_u32(header, 8);
    let count = le_u32(header, 12);
    if version != 1 {
        return Err(TableError::Version {
            offset,
            found: version,
        });
    }
    let needed = TABLE_HEADER_LEN as u64 + entry_len as u64 * u64::from(count);
    let available = len - offset;
    if u64::from(length) < needed || length as usize > available {
        return Err(TableError::Length {
            offset,
            length,
            count,
            needed,
            available,
        });
    }
    if count == 0 {
        return Err(TableError::NoEntries);
    }
    let entries = image
        .get(offset + TABLE_HEADER_LEN..offset + length as usize)
        .unwrap_or_default();
    Ok(FirmwareTable {
        offset,
        count,
        entries,
    })
}

pub(crate) fn le_u32(b: &[u8], offset: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(src) = b.get(offset..offset + 4) {
        w.copy_from_slice(src);
    }
    u32::from_le_bytes(w)
}

/// Type of an SEV metadata section (edk2 `OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum SectionType {
    /// Memory the VMM pre-validates: measured as zero pages (unmeasured on GCE).
    SnpSecMem = 1,
    /// The SNP secrets page.
    SnpSecrets = 2,
    /// The CPUID page.
    Cpuid = 3,
    /// The SVSM calling-area page: measured as zero pages.
    SvsmCaa = 4,
    /// The page holding QEMU's kernel hashes table (measured direct boot).
    SnpKernelHashes = 0x10,
}

impl SectionType {
    /// The type for its metadata value, if known.
    pub const fn from_raw(raw: u32) -> Option<SectionType> {
        Some(match raw {
            1 => SectionType::SnpSecMem,
            2 => SectionType::SnpSecrets,
            3 => SectionType::Cpuid,
            4 => SectionType::SvsmCaa,
            0x10 => SectionType::SnpKernelHashes,
            _ => return None,
        })
    }

    /// The name used by edk2 and sev-snp-measure, e.g. `"SNP_SEC_MEM"`.
    pub const fn name(self) -> &'static str {
        match self {
            SectionType::SnpSecMem => "SNP_SEC_MEM",
            SectionType::SnpSecrets => "SNP_SECRETS",
            SectionType::Cpuid => "CPUID",
            SectionType::SvsmCaa => "SVSM_CAA",
            SectionType::SnpKernelHashes => "SNP_KERNEL_HASHES",
        }
    }

    /// Whether the measurement covers exactly one page whatever the declared size.
    const fn single_page(self) -> bool {
        matches!(self, SectionType::SnpSecrets | SectionType::Cpuid)
    }
}

impl fmt::Display for SectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One SEV metadata section: guest memory the VMM populates before launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataSection {
    /// Guest-physical start address (page-aligned).
    pub gpa: u32,
    /// Size in bytes (a non-zero multiple of 4096).
    pub size: u32,
    /// What the section is.
    pub kind: SectionType,
}

impl MetadataSection {
    /// End address (exclusive).
    pub fn end(&self) -> u64 {
        u64::from(self.gpa) + u64::from(self.size)
    }
}

/// Where QEMU writes the SEV hash table (GUID table entry [`SEV_HASH_TABLE_GUID`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashTableLocation {
    /// Guest-physical address.
    pub gpa: u32,
    /// Reserved size in bytes.
    pub size: u32,
}

/// An OVMF image with everything the SNP launch digest needs, validated.
#[derive(Debug, Clone)]
pub struct Ovmf<'a> {
    image: &'a [u8],
    table: GuidTable,
    metadata_offset: usize,
    sections: Vec<MetadataSection>,
    sev_es_reset_eip: u32,
    hash_table: Option<HashTableLocation>,
}

impl<'a> Ovmf<'a> {
    /// Parses and validates `image`: length, GUID table, SEV-ES reset block, SEV metadata
    /// and its sections (types, alignment, sizes, ranges, overlaps, presence of the
    /// SNP_SECRETS and CPUID pages).
    pub fn parse(image: &'a [u8]) -> Result<Ovmf<'a>, OvmfError> {
        let len = image.len();
        if len == 0 || !len.is_multiple_of(PAGE_SIZE) || len as u64 > FOUR_GIB {
            return Err(OvmfError::ImageLength { len });
        }
        let table = GuidTable::parse(image)?;
        let sev_es_reset_eip =
            u32::from_le_bytes(table.field::<4>("SEV-ES reset block", SEV_ES_RESET_BLOCK_GUID)?);
        let hash_table = table
            .optional_field::<8>("SEV hash table", SEV_HASH_TABLE_GUID)?
            .map(|b| HashTableLocation {
                gpa: le_u32(&b, 0),
                size: le_u32(&b, 4),
            });
        let offset_from_end =
            u32::from_le_bytes(table.field::<4>("SEV metadata", SEV_METADATA_GUID)?);
        let gpa = FOUR_GIB - len as u64;
        let (metadata_offset, sections) = parse_metadata(image, offset_from_end, gpa)?;
        Ok(Ovmf {
            image,
            table,
            metadata_offset,
            sections,
            sev_es_reset_eip,
            hash_table,
        })
    }

    /// The whole image.
    pub fn image(&self) -> &'a [u8] {
        self.image
    }

    /// Guest-physical address of the image's first byte (`4 GiB − length`).
    pub fn gpa(&self) -> u64 {
        FOUR_GIB - self.image.len() as u64
    }

    /// The footer GUID table.
    pub fn guid_table(&self) -> &GuidTable {
        &self.table
    }

    /// Offset of the SEV metadata header in the image.
    pub fn metadata_offset(&self) -> usize {
        self.metadata_offset
    }

    /// The SEV metadata sections, in metadata order (the measurement order).
    pub fn sections(&self) -> &[MetadataSection] {
        &self.sections
    }

    /// Whether a section of `kind` exists.
    pub fn has_section(&self, kind: SectionType) -> bool {
        self.sections.iter().any(|s| s.kind == kind)
    }

    /// Reset EIP of the application processors, from the SEV-ES reset block.
    pub fn sev_es_reset_eip(&self) -> u32 {
        self.sev_es_reset_eip
    }

    /// Location of the SEV hash table, if the GUID table has that entry.
    pub fn hash_table(&self) -> Option<HashTableLocation> {
        self.hash_table
    }
}

fn parse_metadata(
    image: &[u8],
    offset_from_end: u32,
    fw_gpa: u64,
) -> Result<(usize, Vec<MetadataSection>), OvmfError> {
    let table = firmware_table(image, offset_from_end, b"ASEV", METADATA_SECTION_LEN).map_err(
        |e| match e {
            TableError::Offset {
                offset_from_end,
                len,
            } => OvmfError::MetadataOffset {
                offset_from_end,
                len,
            },
            TableError::Signature { offset, found } => {
                OvmfError::MetadataSignature { offset, found }
            }
            TableError::Version { offset, found } => OvmfError::MetadataVersion { offset, found },
            TableError::Length {
                offset,
                length,
                count,
                needed,
                available,
            } => OvmfError::MetadataLength {
                offset,
                length,
                count,
                needed,
                available,
            },
            TableError::NoEntries => OvmfError::NoSections,
        },
    )?;
    let (offset, count, items) = (table.offset, table.count, table.entries);
    let mut sections = Vec::with_capacity(count as usize);
    for (index, d) in items
        .chunks_exact(METADATA_SECTION_LEN)
        .take(count as usize)
        .enumerate()
    {
        let (gpa, size, raw) = (le_u32(d, 0), le_u32(d, 4), le_u32(d, 8));
        let kind =
            SectionType::from_raw(raw).ok_or(OvmfError::UnknownSectionType { index, raw })?;
        if size == 0 {
            return Err(OvmfError::SectionEmpty { index, kind, gpa });
        }
        #[expect(clippy::cast_possible_truncation, reason = "PAGE_SIZE is 4096")]
        if !gpa.is_multiple_of(PAGE_SIZE as u32) || !size.is_multiple_of(PAGE_SIZE as u32) {
            return Err(OvmfError::SectionMisaligned {
                index,
                kind,
                gpa,
                size,
            });
        }
        if kind.single_page() && size as usize != PAGE_SIZE {
            return Err(OvmfError::SectionSize { index, kind, size });
        }
        let s = MetadataSection { gpa, size, kind };
        if s.end() > fw_gpa {
            return Err(OvmfError::SectionOutOfRange {
                index,
                kind,
                gpa,
                end: s.end(),
                limit: fw_gpa,
            });
        }
        sections.push(s);
    }
    for kind in [SectionType::SnpSecrets, SectionType::Cpuid] {
        if !sections.iter().any(|s| s.kind == kind) {
            return Err(OvmfError::MissingSection { kind });
        }
    }
    let mut order: Vec<usize> = (0..sections.len()).collect();
    order.sort_by_key(|&i| sections.get(i).map(|s| (s.gpa, i)));
    for pair in order.windows(2) {
        if let [a, b] = *pair {
            if let (Some(x), Some(y)) = (sections.get(a), sections.get(b)) {
                if x.end() > u64::from(y.gpa) {
                    let ((first, x), (second, y)) = if a < b {
                        ((a, x), (b, y))
                    } else {
                        ((b, y), (a, x))
                    };
                    return Err(OvmfError::SectionsOverlap {
                        first,
                        first_kind: x.kind,
                        first_gpa: x.gpa,
                        first_end: x.end(),
                        second,
                        second_kind: y.kind,
                        second_gpa: y.gpa,
                        second_end: y.end(),
                    });
                }
            }
        }
    }
    Ok((offset, sections))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_round_trip() {
        assert_eq!(
            FOOTER_GUID.to_string(),
            "96b582de-1fb2-45f7-baea-a366c55a082d"
        );
        assert_eq!(
            SEV_METADATA_GUID.to_string(),
            "dc886566-984a-4798-a75e-5585a7bf67cc"
        );
        assert_eq!(
            FOOTER_GUID.to_bytes_le()[..4],
            [0xde, 0x82, 0xb5, 0x96],
            "EFI byte order: first field little-endian"
        );
    }
}
