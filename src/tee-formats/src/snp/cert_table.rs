//! The SEV-SNP certificate table, as returned by SNP_GET_EXT_REPORT and by the
//! configfs-tsm `auxblob` attribute.
//!
//! Source: AMD GHCB specification (pub. 56421) §4.1.8.1; virtee/sev 8.0.0
//! `src/firmware/linux/host/types/snp.rs`, google/go-sev-guest `abi/abi.go`
//! (`shared/docs/tee-formats.md` §1.7). Layout:
//!
//! ```text
//! entry[0..n]   24 bytes each: GUID[16] (RFC-4122 byte order), u32 offset, u32 length
//! terminator    24 zero bytes
//! blobs         certificate data; offsets are from the start of the table
//! ```
//!
//! Parsing is defensive: every entry must point past the GUID table and inside
//! the buffer, have a non-zero length, not overlap another entry, and not
//! repeat a GUID. An empty buffer, or one that starts with the terminator (a
//! host that supplied no certificates), is an empty table.
//!
//! Round trip: [`CertTable::to_bytes`] writes each entry at the offset it was
//! parsed from, in a buffer of the parsed length; bytes no entry covers (gaps,
//! page padding) are written as zero. So `to_bytes(parse(b)) == b` whenever
//! those uncovered bytes were zero, which is how the kernel and hosts lay the
//! table out.

use std::fmt;

use crate::bytes::{ArrayWriter, Reader};
use crate::error::CertTableProblem;
use crate::json::json_struct;
use crate::FormatError;

/// Size of one GUID table entry.
pub const ENTRY_SIZE: usize = 24;

/// A GUID in the RFC-4122 (big-endian) byte order used by the certificate
/// table: the bytes of `63da758d-e664-…` start `63 da 75 8d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// `c0b406a4-a803-4952-9743-3fb6014cd0ae`: the AMD Root Key.
    pub const ARK: Self = Self([
        0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0,
        0xae,
    ]);
    /// `4ab7b379-bbac-4fe4-a02f-05aef327c782`: the AMD SEV Key. The GHCB
    /// specification defines no separate GUID for the ASVK, so hosts carry the
    /// ASVK of a VLEK chain under this same GUID.
    pub const ASK: Self = Self([
        0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7,
        0x82,
    ]);
    /// The ASVK's GUID: the same as [`Guid::ASK`] (see there).
    pub const ASVK: Self = Self::ASK;
    /// `63da758d-e664-4564-adc5-f4b93be8accd`: the VCEK.
    pub const VCEK: Self = Self([
        0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac,
        0xcd,
    ]);
    /// `a8074bc2-a25a-483e-aae6-39c045a0b8a1`: the VLEK.
    pub const VLEK: Self = Self([
        0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8,
        0xa1,
    ]);
    /// `92f81bc3-5811-4d3d-97ff-d19f88dc67ea`: a CRL (sev crate `CertType::CRL`).
    pub const CRL: Self = Self([
        0x92, 0xf8, 0x1b, 0xc3, 0x58, 0x11, 0x4d, 0x3d, 0x97, 0xff, 0xd1, 0x9f, 0x88, 0xdc, 0x67,
        0xea,
    ]);
    /// `ecae0c0f-9502-43b1-afa2-0ae2e0d565b6`: go-sev-guest's ExtraPlatformInfo (not AMD).
    pub const EXTRA_PLATFORM_INFO: Self = Self([
        0xec, 0xae, 0x0c, 0x0f, 0x95, 0x02, 0x43, 0xb1, 0xaf, 0xa2, 0x0a, 0xe2, 0xe0, 0xd5, 0x65,
        0xb6,
    ]);

    /// Whether all 16 bytes are zero.
    pub fn is_nil(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }
}

impl fmt::Display for Guid {
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Serialised in the 8-4-4-4-12 text form.
#[cfg(feature = "serde")]
impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What a certificate table entry holds, from its GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// AMD Root Key certificate.
    Ark,
    /// AMD SEV Key certificate, or the ASVK for a VLEK chain (same GUID).
    AskOrAsvk,
    /// VCEK certificate.
    Vcek,
    /// VLEK certificate.
    Vlek,
    /// Certificate revocation list.
    Crl,
    /// go-sev-guest ExtraPlatformInfo blob.
    ExtraPlatformInfo,
    /// Any other GUID.
    Other,
}

impl CertKind {
    /// The kind named by `guid`.
    pub fn of(guid: &Guid) -> Self {
        match *guid {
            Guid::ARK => Self::Ark,
            Guid::ASK => Self::AskOrAsvk,
            Guid::VCEK => Self::Vcek,
            Guid::VLEK => Self::Vlek,
            Guid::CRL => Self::Crl,
            Guid::EXTRA_PLATFORM_INFO => Self::ExtraPlatformInfo,
            _ => Self::Other,
        }
    }
}

impl fmt::Display for CertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ark => "ARK",
            Self::AskOrAsvk => "ASK/ASVK",
            Self::Vcek => "VCEK",
            Self::Vlek => "VLEK",
            Self::Crl => "CRL",
            Self::ExtraPlatformInfo => "ExtraPlatformInfo",
            Self::Other => "other",
        })
    }
}

/// Serialised as its name (`"VCEK"`, `"ASK/ASVK"`, …).
#[cfg(feature = "serde")]
impl serde::Serialize for CertKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One certificate of the table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertTableEntry {
    /// The entry's GUID.
    pub guid: Guid,
    /// Offset of the data from the start of the table.
    pub offset: u32,
    /// The certificate (DER) or other blob.
    pub data: Vec<u8>,
}

impl CertTableEntry {
    /// What the entry holds, from its GUID.
    pub fn kind(&self) -> CertKind {
        CertKind::of(&self.guid)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for CertTableEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let Self { guid, offset, data } = self;
        let mut s = serializer.serialize_struct("CertTableEntry", 5)?;
        s.serialize_field("guid", guid)?;
        s.serialize_field("kind", &self.kind())?;
        s.serialize_field("offset", offset)?;
        s.serialize_field("length", &data.len())?;
        s.serialize_field("data", &crate::json::hex(data))?;
        s.end()
    }
}

/// A parsed certificate table. Built by [`CertTable::parse`] or
/// [`CertTable::from_entries`], so its layout is always valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CertTable {
    entries: Vec<CertTableEntry>,
    /// Total length of the encoded table (the parsed buffer's length).
    len: usize,
}

json_struct!(CertTable {
    entries: val,
    len: val
});

impl CertTable {
    /// Parses a certificate table buffer (auxblob, or the ext-report
    /// certificate buffer including its page padding).
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes);
        let mut headers: Vec<(Guid, u32, u32)> = Vec::new();
        if !bytes.is_empty() {
            loop {
                let guid = Guid(r.array("certificate table entry GUID")?);
                let offset = r.u32("certificate table entry offset")?;
                let length = r.u32("certificate table entry length")?;
                if guid.is_nil() && offset == 0 && length == 0 {
                    break;
                }
                headers.push((guid, offset, length));
            }
        }
        let table_len = r.offset();
        let mut entries = Vec::with_capacity(headers.len());
        for (index, &(guid, offset, length)) in headers.iter().enumerate() {
            let fail = |problem| FormatError::CertTableEntry { index, problem };
            if length == 0 {
                return Err(fail(CertTableProblem::Empty));
            }
            let start = offset as usize;
            if start < table_len {
                return Err(fail(CertTableProblem::OffsetInsideTable {
                    offset,
                    table_len,
                }));
            }
            let data = start
                .checked_add(length as usize)
                .and_then(|end| bytes.get(start..end))
                .ok_or_else(|| {
                    fail(CertTableProblem::OutOfBounds {
                        offset,
                        length,
                        buffer_len: bytes.len(),
                    })
                })?;
            entries.push(CertTableEntry {
                guid,
                offset,
                data: data.to_vec(),
            });
        }
        check_duplicates(&entries)?;
        check_overlaps(&entries)?;
        Ok(Self {
            entries,
            len: bytes.len(),
        })
    }

    /// Lays out `entries` canonically: the GUID table, its terminator, then
    /// the blobs back to back in the given order.
    pub fn from_entries(entries: Vec<(Guid, Vec<u8>)>) -> Result<Self, FormatError> {
        let too_large = |len| FormatError::TooLarge {
            field: "certificate table entry offset",
            len,
        };
        let mut next = entries
            .len()
            .checked_add(1)
            .and_then(|n| n.checked_mul(ENTRY_SIZE))
            .ok_or(too_large(usize::MAX))?;
        let mut out = Vec::with_capacity(entries.len());
        for (index, (guid, data)) in entries.into_iter().enumerate() {
            let fail = |problem| FormatError::CertTableEntry { index, problem };
            if data.is_empty() {
                return Err(fail(CertTableProblem::Empty));
            }
            if let Some(other) = out.iter().position(|e: &CertTableEntry| e.guid == guid) {
                return Err(fail(CertTableProblem::DuplicateGuid { other }));
            }
            let offset = u32::try_from(next).map_err(|_| too_large(next))?;
            u32::try_from(data.len()).map_err(|_| too_large(data.len()))?;
            next = next.checked_add(data.len()).ok_or(too_large(next))?;
            out.push(CertTableEntry { guid, offset, data });
        }
        u32::try_from(next).map_err(|_| too_large(next))?;
        Ok(Self {
            entries: out,
            len: next,
        })
    }

    /// The entries, in table order.
    pub fn entries(&self) -> &[CertTableEntry] {
        &self.entries
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Length in bytes of the encoded table.
    pub fn len_bytes(&self) -> usize {
        self.len
    }

    /// The data of the entry with `guid`.
    pub fn get(&self, guid: &Guid) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|e| e.guid == *guid)
            .map(|e| e.data.as_slice())
    }

    /// The data of the entry of `kind` (GUIDs are unique, so at most one
    /// entry matches a named kind).
    pub fn get_kind(&self, kind: CertKind) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|e| e.kind() == kind)
            .map(|e| e.data.as_slice())
    }

    /// Encodes the table (see the module documentation for the round trip).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len];
        for (i, e) in self.entries.iter().enumerate() {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "lengths fit in u32 by construction (parse/from_entries check them)"
            )]
            let length = e.data.len() as u32;
            let mut record = [0u8; ENTRY_SIZE];
            let mut w = ArrayWriter::new(&mut record);
            w.put(&e.guid.0);
            w.put(&e.offset.to_le_bytes());
            w.put(&length.to_le_bytes());
            w.finish();
            let start = i.saturating_mul(ENTRY_SIZE);
            if let Some(dst) = out.get_mut(start..start.saturating_add(ENTRY_SIZE)) {
                dst.copy_from_slice(&record);
            }
        }
        for e in &self.entries {
            let start = e.offset as usize;
            let end = start.saturating_add(e.data.len());
            // Valid by construction (parse/from_entries checked the bounds).
            if let Some(dst) = out.get_mut(start..end) {
                dst.copy_from_slice(&e.data);
            }
        }
        out
    }
}

/// Rejects a GUID that appears twice (reported at its second occurrence).
/// Sorting keeps this O(n log n) however many entries a hostile table has.
fn check_duplicates(entries: &[CertTableEntry]) -> Result<(), FormatError> {
    let mut order: Vec<(Guid, usize)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.guid, i))
        .collect();
    order.sort_unstable();
    let mut first = None;
    let mut worst: Option<(usize, usize)> = None;
    for pair in order.windows(2) {
        let &[(g0, i0), (g1, i1)] = pair else {
            continue;
        };
        if g0 != g1 {
            first = None;
            continue;
        }
        let other = *first.get_or_insert(i0);
        if worst.is_none_or(|(index, _)| i1 < index) {
            worst = Some((i1, other));
        }
    }
    match worst {
        Some((index, other)) => Err(FormatError::CertTableEntry {
            index,
            problem: CertTableProblem::DuplicateGuid { other },
        }),
        None => Ok(()),
    }
}

/// Rejects entries whose data ranges intersect.
fn check_overlaps(entries: &[CertTableEntry]) -> Result<(), FormatError> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries.get(i).map_or(0, |e| e.offset));
    for pair in order.windows(2) {
        let &[a, b] = pair else { continue };
        let (Some(first), Some(second)) = (entries.get(a), entries.get(b)) else {
            continue;
        };
        let first_end = (first.offset as usize).saturating_add(first.data.len());
        if first_end > second.offset as usize {
            return Err(FormatError::CertTableEntry {
                index: a.max(b),
                problem: CertTableProblem::Overlap { other: a.min(b) },
            });
        }
    }
    Ok(())
}
