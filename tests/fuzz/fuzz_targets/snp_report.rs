//! SEV-SNP ATTESTATION_REPORT: parse never panics; what parses re-encodes to
//! the input byte for byte, and the received-bytes view agrees.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tee_formats::snp::{AttestationReport, ReceivedReport};

fuzz_target!(|data: &[u8]| {
    let parsed = AttestationReport::parse(data);
    let received = ReceivedReport::parse(data);
    assert_eq!(parsed.is_ok(), received.is_ok());
    if let (Ok(report), Ok(received)) = (parsed, received) {
        assert_eq!(report.to_bytes().as_slice(), data);
        assert_eq!(received.report(), &report);
        assert_eq!(received.to_bytes().as_slice(), data);
        let _ = report.generation();
        let _ = report
            .reported_tcb
            .decode(tee_formats::snp::Generation::Turin);
    }
});
