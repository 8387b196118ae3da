//! TCG/CCEL event log and CCEL ACPI table: parse never panics; what parses
//! replays (or fails with an MR-index error), describes every event, and
//! parses again, identically, when trimmed to its length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tee_formats::eventlog::{CcelTable, EventLog};

fuzz_target!(|data: &[u8]| {
    let _ = CcelTable::parse(data);
    if let Ok(log) = EventLog::parse(data) {
        let _ = log.replay();
        for e in &log.events {
            let _ = (e.describe(), e.component(), e.digests(), e.action_text());
        }
        let trimmed = data.get(..log.len).unwrap_or_default();
        let again = EventLog::parse(trimmed).unwrap_or_else(|e| panic!("trimmed log: {e}"));
        assert_eq!(again.events, log.events);
        assert!(again.padding.is_none());
    }
});
