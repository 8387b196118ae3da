//! The CC Event Log ACPI table, `CCEL` (ACPI 6.5 §5.2.34, table 5.175): where
//! the firmware put the event log and how large its area is. Linux exposes
//! the table at `/sys/firmware/acpi/tables/CCEL` and the log area itself at
//! `/sys/firmware/acpi/tables/data/CCEL`.
//!
//! ```text
//! 0   Signature "CCEL"      4   Length (56)       8  Revision (1)   9 Checksum
//! 10  OEMID[6]              16  OEM Table ID[8]   24 OEM Revision   28 Creator ID
//! 32  Creator Revision      36  CC Type           37 CC Subtype     38 Reserved (u16, 0)
//! 40  LAML (u64): log area minimum length         48 LASA (u64): log area start address
//! ```
//!
//! The whole table must sum to zero modulo 256 (ACPI §5.2.6).

use super::EventLogError;
use crate::json::json_struct;

/// Size of the CCEL table.
pub const CCEL_TABLE_SIZE: usize = 56;
/// CC Type of Intel TDX.
pub const CC_TYPE_TDX: u8 = 2;
/// CC Type of AMD SEV.
pub const CC_TYPE_SEV: u8 = 1;

/// A parsed CCEL ACPI table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CcelTable {
    /// 8: table revision.
    pub revision: u8,
    /// 10: OEM id (e.g. `"INTEL "`).
    pub oem_id: [u8; 6],
    /// 16: OEM table id (e.g. `"EDK2    "`).
    pub oem_table_id: [u8; 8],
    /// 24: OEM revision.
    pub oem_revision: u32,
    /// 28: creator id.
    pub creator_id: u32,
    /// 32: creator revision.
    pub creator_revision: u32,
    /// 36: CC type (2 = TDX).
    pub cc_type: u8,
    /// 37: CC subtype.
    pub cc_subtype: u8,
    /// 40: LAML, the length of the log area.
    pub log_area_minimum_length: u64,
    /// 48: LASA, the guest-physical address of the log area.
    pub log_area_start_address: u64,
}

impl CcelTable {
    /// Parses the 56-byte table: signature, length, checksum and the reserved
    /// field are checked; any CC type is returned (callers check it).
    pub fn parse(b: &[u8]) -> Result<CcelTable, EventLogError> {
        let bad = |field: &'static str, offset: usize, got: String, want: &'static str| {
            EventLogError::CcelTable {
                field,
                offset,
                got,
                want,
            }
        };
        let t: &[u8; CCEL_TABLE_SIZE] = b
            .try_into()
            .map_err(|_| bad("table length", 0, format!("{} bytes", b.len()), "56 bytes"))?;
        let u32_at = |o: usize| u32::from_le_bytes([t[o], t[o + 1], t[o + 2], t[o + 3]]);
        let u64_at = |o: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&t[o..o + 8]);
            u64::from_le_bytes(w)
        };
        if &t[0..4] != b"CCEL" {
            return Err(bad(
                "Signature",
                0,
                format!("{:02x?}", &t[0..4]),
                "\"CCEL\"",
            ));
        }
        let length = u32_at(4);
        if length as usize != CCEL_TABLE_SIZE {
            return Err(bad("Length", 4, length.to_string(), "56"));
        }
        let sum = t.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        if sum != 0 {
            return Err(bad(
                "Checksum",
                9,
                format!("a table summing to {sum:#04x}"),
                "a table summing to 0 (mod 256)",
            ));
        }
        let reserved = u16::from_le_bytes([t[38], t[39]]);
        if reserved != 0 {
            return Err(bad("Reserved", 38, format!("{reserved:#06x}"), "0"));
        }
        let mut oem_id = [0u8; 6];
        oem_id.copy_from_slice(&t[10..16]);
        let mut oem_table_id = [0u8; 8];
        oem_table_id.copy_from_slice(&t[16..24]);
        Ok(CcelTable {
            revision: t[8],
            oem_id,
            oem_table_id,
            oem_revision: u32_at(24),
            creator_id: u32_at(28),
            creator_revision: u32_at(32),
            cc_type: t[36],
            cc_subtype: t[37],
            log_area_minimum_length: u64_at(40),
            log_area_start_address: u64_at(48),
        })
    }

    /// Whether the table describes a TDX event log.
    pub const fn is_tdx(&self) -> bool {
        self.cc_type == CC_TYPE_TDX
    }
}

json_struct!(CcelTable {
    revision: val,
    oem_id: hex,
    oem_table_id: hex,
    oem_revision: val,
    creator_id: val,
    creator_revision: val,
    cc_type: val,
    cc_subtype: val,
    log_area_minimum_length: val,
    log_area_start_address: val,
});
