//! What a vTPM (or a peer) hands the verifier and the guest: TPMS_ATTEST,
//! TPMT_SIGNATURE, TPML_PCR_SELECTION, and every TPM response the guest
//! parses. Nothing panics; what parses re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tee_formats::tpm::command::{self, NvPublic, PcrReadOut, QuoteOut, RsaPublic};
use tee_formats::tpm::{Attest, PcrSelection, Signature};

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = Attest::parse(data) {
        assert_eq!(a.to_bytes().expect("a parsed quote encodes"), data);
    }
    if let Ok(s) = Signature::parse(data) {
        assert_eq!(s.to_bytes().expect("a parsed signature encodes"), data);
    }
    if let Ok(p) = PcrSelection::parse(data) {
        let mut out = Vec::new();
        p.write(&mut out).expect("a parsed selection encodes");
        assert_eq!(out, data);
        let _ = p.0.iter().map(|b| b.indices()).count();
    }
    for (handles, authorised) in [(0, false), (0, true), (1, false)] {
        if let Ok(r) = command::parse_response(data, handles, authorised) {
            assert!(r.params.len() <= data.len());
        }
    }
    let _ = NvPublic::from_response(data);
    let _ = command::nv_read_data(data);
    if let Ok(q) = QuoteOut::from_response(data) {
        assert_eq!(
            Signature::parse(&q.signature).as_ref(),
            Ok(&q.parsed_signature)
        );
    }
    if let Ok(p) = PcrReadOut::from_response(data) {
        assert!(p.values.len() <= command::MAX_DIGESTS);
    }
    let _ = RsaPublic::from_read_public(data);
    let _ = command::capability_property(data, command::PT_NV_BUFFER_MAX);
    let _ = command::CommandHeader::parse(data);
});
