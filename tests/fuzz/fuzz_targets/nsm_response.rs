//! What `/dev/nsm` (or the simulated NSM's socket) hands the guest, and what
//! a guest hands the simulated NSM: the CBOR Attestation response and
//! request. Nothing panics; what parses re-encodes and parses to the same
//! value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tee_formats::nsm::{AttestationRequest, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Response::parse(data) {
        assert_eq!(
            Response::parse(&r.encode()).expect("an encoded response parses"),
            r
        );
    }
    if let Ok(q) = AttestationRequest::parse(data) {
        let bytes = q.encode().expect("a parsed request encodes");
        assert_eq!(
            AttestationRequest::parse(&bytes).expect("an encoded request parses"),
            q
        );
    }
});
