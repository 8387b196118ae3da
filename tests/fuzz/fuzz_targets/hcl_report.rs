//! Azure HCL report (vTPM NV 0x01400001): parse never panics; what parses
//! re-encodes byte for byte (padding included), its sizes agree with its
//! fields, and the REPORT_DATA binding is computable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tee_formats::azure::{HardwareReport, HclReport, VAR_DATA_OFFSET};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = HclReport::parse(data) {
        assert_eq!(
            h.variable_data.len(),
            h.request_data.variable_data_size as usize
        );
        assert_eq!(
            h.header.report_size as usize,
            VAR_DATA_OFFSET + h.variable_data.len()
        );
        assert_eq!(h.header.report_size as usize + h.padding_len, data.len());
        let hw = match &h.hardware_report {
            HardwareReport::Snp(r) => r.to_bytes().to_vec(),
            HardwareReport::Tdx(t) => t.to_bytes().to_vec(),
        };
        let again = HclReport::encode(
            h.header.version,
            h.report_type(),
            &hw,
            &h.variable_data,
            data.len(),
        )
        .expect("a parsed report encodes");
        assert_eq!(again.as_slice(), data);
        let _ = h.expected_report_data();
    }
});
