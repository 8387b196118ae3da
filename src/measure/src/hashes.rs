//! The SEV hash table that QEMU writes into guest memory for measured direct boot
//! (`-kernel/-initrd/-append` with `kernel-hashes=on`), and that OVMF checks the loaded
//! kernel, initrd and command line against (QEMU `target/i386/sev.c`; sev-snp-measure
//! `sev_hashes.py`).
//!
//! Layout, GUIDs in EFI byte order: header `{GUID 9438d606-…, u16 length = 168}`, then three
//! entries `{GUID, u16 length = 50, SHA-256}` for the command line, the initrd and the kernel,
//! zero-padded to a multiple of 16 (176 bytes).

use sha2::{Digest, Sha256};

use crate::ovmf::{Guid, PAGE_SIZE};

/// `9438d606-4f22-4cc9-b479-a793d411fd21`: the table header.
pub const TABLE_HEADER_GUID: Guid = Guid::from_fields(
    0x9438d606,
    0x4f22,
    0x4cc9,
    [0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21],
);
/// `97d02dd8-bd20-4c94-aa78-e7714d36ab2a`: the command-line entry.
pub const CMDLINE_GUID: Guid = Guid::from_fields(
    0x97d02dd8,
    0xbd20,
    0x4c94,
    [0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a],
);
/// `44baf731-3a2f-4bd7-9af1-41e29169781d`: the initrd entry.
pub const INITRD_GUID: Guid = Guid::from_fields(
    0x44baf731,
    0x3a2f,
    0x4bd7,
    [0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d],
);
/// `4de79437-abd2-427f-b835-d5b172d2045b`: the kernel entry.
pub const KERNEL_GUID: Guid = Guid::from_fields(
    0x4de79437,
    0xabd2,
    0x427f,
    [0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b],
);

/// Length of one entry: GUID, u16 length, SHA-256.
const ENTRY_LEN: usize = 16 + 2 + 32;
/// Length of the table, as recorded in its header.
pub const TABLE_LEN: usize = 16 + 2 + 3 * ENTRY_LEN;
/// Length of the table padded to 16 bytes: what QEMU writes and what is measured.
pub const PADDED_TABLE_LEN: usize = (TABLE_LEN + 15) & !15;

/// SHA-256 of the kernel command line as QEMU hashes it: its bytes followed by a NUL
/// (just `"\0"` for an empty command line).
pub fn cmdline_sha256(cmdline: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(cmdline.as_bytes())
        .chain_update([0u8])
        .finalize()
        .into()
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The three hashes of a measured direct boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevHashes {
    /// SHA-256 of the kernel image.
    pub kernel: [u8; 32],
    /// SHA-256 of the initrd (of the empty string when there is none).
    pub initrd: [u8; 32],
    /// [`cmdline_sha256`] of the command line (of `""` when there is none).
    pub cmdline: [u8; 32],
}

impl SevHashes {
    /// Hashes the direct-boot inputs. A missing initrd or command line hashes as empty.
    pub fn new(kernel: &[u8], initrd: Option<&[u8]>, cmdline: Option<&str>) -> SevHashes {
        SevHashes {
            kernel: sha256(kernel),
            initrd: sha256(initrd.unwrap_or_default()),
            cmdline: cmdline_sha256(cmdline.unwrap_or_default()),
        }
    }

    /// The padded table, byte-identical to QEMU's.
    pub fn table(&self) -> [u8; PADDED_TABLE_LEN] {
        let mut t = [0u8; PADDED_TABLE_LEN];
        let mut w = Writer { buf: &mut t, at: 0 };
        w.put(&TABLE_HEADER_GUID.to_bytes_le());
        #[expect(clippy::cast_possible_truncation, reason = "TABLE_LEN is 168")]
        w.put(&(TABLE_LEN as u16).to_le_bytes());
        for (guid, hash) in [
            (CMDLINE_GUID, &self.cmdline),
            (INITRD_GUID, &self.initrd),
            (KERNEL_GUID, &self.kernel),
        ] {
            w.put(&guid.to_bytes_le());
            #[expect(clippy::cast_possible_truncation, reason = "ENTRY_LEN is 50")]
            w.put(&(ENTRY_LEN as u16).to_le_bytes());
            w.put(hash);
        }
        t
    }

    /// A zero page with [`SevHashes::table`] at `offset`, or `None` if it does not fit.
    pub fn page(&self, offset: usize) -> Option<[u8; PAGE_SIZE]> {
        let mut page = [0u8; PAGE_SIZE];
        page.get_mut(offset..offset.checked_add(PADDED_TABLE_LEN)?)?
            .copy_from_slice(&self.table());
        Some(page)
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.at..self.at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(TABLE_LEN, 168);
        assert_eq!(PADDED_TABLE_LEN, 176);
        let h = SevHashes::new(b"k", None, None);
        let t = h.table();
        assert_eq!(t[..16], TABLE_HEADER_GUID.to_bytes_le());
        assert_eq!(t[16..18], [168, 0]);
        assert_eq!(t[18..34], CMDLINE_GUID.to_bytes_le());
        assert_eq!(t[34..36], [50, 0]);
        assert_eq!(t[36..68], sha256(b"\0"));
        assert_eq!(t[118..134], KERNEL_GUID.to_bytes_le());
        assert_eq!(t[136..168], sha256(b"k"));
        assert_eq!(t[168..], [0; 8]);
        assert!(h.page(4096 - 176).is_some());
        assert!(h.page(4096 - 175).is_none());
    }
}
