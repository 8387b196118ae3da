//! The TDX firmware's CC event log (CCEL) for the evidence bundle.
//!
//! TDVF records every boot measurement it and the kernel's EFI stub extend
//! into RTMR0-2 in a TCG crypto-agile log, and publishes it through the ACPI
//! `CCEL` table (`tee_formats::eventlog::ccel`). Linux exposes the table at
//! `/sys/firmware/acpi/tables/CCEL` and the log area at
//! `/sys/firmware/acpi/tables/data/CCEL`. The verifier replays the log into
//! the quote's RTMRs and reads from it which kernel, initrd and command line
//! booted; the guest only collects it:
//!
//! - no table: no log (not a TDVF, or a paravisor VM such as Azure's). The
//!   bundle carries none; a verifier policy that needs one denies, naming it.
//! - a table that is malformed or not TDX's: no log, with a warning.
//! - the log area is read up to its size (LAML) and at most
//!   [`MAX_LOG_LEN`](tee_formats::eventlog::MAX_LOG_LEN), parsed, and trimmed
//!   of its 0xFF padding (a 256 KiB area typically holds 10-20 KiB of log;
//!   the bundle must fit the verifier's request limit). A log that does not
//!   parse is sent as read: the verifier's denial then says exactly what is
//!   wrong with it, which a guest-side guess could not.
//!
//! Nothing here is secret; nothing is trusted either: the verifier checks
//! the log against the hardware-signed RTMRs.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use tee_formats::eventlog::{CcelTable, EventLog, MAX_LOG_LEN};

/// Where Linux exposes the CCEL ACPI table.
pub const DEFAULT_TABLE: &str = "/sys/firmware/acpi/tables/CCEL";
/// Where Linux exposes the CCEL log area.
pub const DEFAULT_DATA: &str = "/sys/firmware/acpi/tables/data/CCEL";

/// The CCEL table and log-area files (tests point them at fixture copies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcelPaths {
    /// The ACPI table.
    pub table: PathBuf,
    /// The log area.
    pub data: PathBuf,
}

impl Default for CcelPaths {
    fn default() -> Self {
        CcelPaths {
            table: PathBuf::from(DEFAULT_TABLE),
            data: PathBuf::from(DEFAULT_DATA),
        }
    }
}

/// The event log to put in a TDX bundle, or `None` (see the module
/// documentation for when and why). Never fails: every problem is logged and
/// left for the verifier to judge.
pub fn collect(paths: &CcelPaths) -> Option<Vec<u8>> {
    let table = match std::fs::read(&paths.table) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log::info!(table = paths.table.display().to_string().as_str(); "no CCEL ACPI table: the evidence carries no event log");
            return None;
        }
        Err(e) => {
            log::warn!(table = paths.table.display().to_string().as_str(), error = e.to_string().as_str(); "cannot read the CCEL ACPI table: the evidence carries no event log");
            return None;
        }
    };
    let table = match CcelTable::parse(&table) {
        Ok(t) if t.is_tdx() => t,
        Ok(t) => {
            log::warn!(cc_type = t.cc_type; "the CCEL ACPI table is not TDX's: the evidence carries no event log");
            return None;
        }
        Err(e) => {
            log::warn!(error = e.to_string().as_str(); "malformed CCEL ACPI table: the evidence carries no event log");
            return None;
        }
    };
    let limit = usize::try_from(table.log_area_minimum_length)
        .unwrap_or(usize::MAX)
        .min(MAX_LOG_LEN);
    let data = match read_at_most(&paths.data, limit) {
        Ok(d) => d,
        Err(e) => {
            log::warn!(data = paths.data.display().to_string().as_str(), error = e.to_string().as_str(); "cannot read the CCEL log area: the evidence carries no event log");
            return None;
        }
    };
    Some(trim(data))
}

/// The log trimmed of its padding, when it parses; else as given.
pub fn trim(mut data: Vec<u8>) -> Vec<u8> {
    match EventLog::parse(&data).map(|l| (l.len, l.events.len())) {
        Ok((len, events)) => {
            log::info!(events = events, bytes = len; "CC event log collected");
            data.truncate(len);
        }
        Err(e) => {
            log::warn!(error = e.to_string().as_str(); "the CC event log does not parse; sending it as read for the verifier to judge");
        }
    }
    data
}

/// At most `limit` bytes of the file at `path`, never allocating more.
fn read_at_most(path: &std::path::Path, limit: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    File::open(path)?
        .take(u64::try_from(limit).unwrap_or(u64::MAX))
        .read_to_end(&mut out)?;
    Ok(out)
}
