//! The SNP guest context's launch digest (`LD`), updated page by page as the PSP does on
//! `SNP_LAUNCH_UPDATE` (SNP ABI spec, PAGE_INFO; sev-snp-measure `gctx.py`).

use sha2::{Digest, Sha384};

use crate::ovmf::PAGE_SIZE;
use crate::Digest48;

/// Page types of `SNP_LAUNCH_UPDATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PageType {
    Normal = 0x01,
    Vmsa = 0x02,
    Zero = 0x03,
    Unmeasured = 0x04,
    Secrets = 0x05,
    Cpuid = 0x06,
}

/// Length of the PAGE_INFO structure that is hashed on each update.
const PAGE_INFO_LEN: usize = 0x70;

/// VMSA pages are recorded at GPA `(u64)-1`, page-aligned, bits above 51 cleared.
pub(crate) const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;

/// The running launch digest.
#[derive(Debug, Clone)]
pub(crate) struct Gctx {
    ld: Digest48,
}

pub(crate) fn sha384(data: &[u8]) -> Digest48 {
    Sha384::digest(data).into()
}

impl Gctx {
    /// Starts from `seed` (48 zero bytes for a fresh launch, or a precomputed OVMF hash).
    pub(crate) fn from_seed(seed: Digest48) -> Gctx {
        Gctx { ld: seed }
    }

    pub(crate) fn ld(&self) -> Digest48 {
        self.ld
    }

    /// `LD := SHA-384(LD ‖ contents ‖ u16 0x70 ‖ type ‖ is_imi=0 ‖ vmpl3..1 perms=0 ‖ 0 ‖ u64 gpa)`.
    pub(crate) fn update(&mut self, page_type: PageType, gpa: u64, contents: &Digest48) {
        let mut info = [0u8; PAGE_INFO_LEN];
        info[..48].copy_from_slice(&self.ld);
        info[48..96].copy_from_slice(contents);
        #[expect(clippy::cast_possible_truncation, reason = "PAGE_INFO_LEN is 0x70")]
        info[96..98].copy_from_slice(&(PAGE_INFO_LEN as u16).to_le_bytes());
        info[98] = page_type as u8;
        // 99: IMI_PAGE, 100..=102: VMPL3/2/1 permissions, 103: reserved; all zero.
        info[104..112].copy_from_slice(&gpa.to_le_bytes());
        self.ld = sha384(&info);
    }

    /// One NORMAL update per whole 4 KiB page of `data` (callers pass whole pages).
    pub(crate) fn update_normal_pages(&mut self, gpa: u64, data: &[u8]) {
        for (i, page) in data.chunks_exact(PAGE_SIZE).enumerate() {
            let h = sha384(page);
            self.update(PageType::Normal, gpa + (i * PAGE_SIZE) as u64, &h);
        }
    }

    /// One update of `page_type` with zero contents per page of `[gpa, gpa + size)`.
    pub(crate) fn update_empty_pages(&mut self, page_type: PageType, gpa: u64, size: u64) {
        let zeros = [0u8; 48];
        let mut offset = 0;
        while offset < size {
            self.update(page_type, gpa + offset, &zeros);
            offset += PAGE_SIZE as u64;
        }
    }
}
