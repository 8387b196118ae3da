//! TDX TDREPORT: parse never panics; what parses re-encodes to the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tee_formats::tdx::TdReport;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = TdReport::parse(data) {
        assert_eq!(report.to_bytes().as_slice(), data);
    }
});
