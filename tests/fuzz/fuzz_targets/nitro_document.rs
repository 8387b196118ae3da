//! AWS Nitro attestation document (COSE_Sign1 over the NSM's CBOR map):
//! parse never panics and never exceeds its limits; what parses re-encodes
//! to a document that parses to the same fields; the whole appraisal (and
//! the file-input detection of `enclavectl verify --nitro`) never panics on
//! it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tee_formats::nitro::{self, Document};

fuzz_target!(|data: &[u8]| {
    let _ = appraisal::inputs::nitro_document(data);
    let Ok(d) = Document::parse(data) else {
        return;
    };
    assert!(data.len() <= nitro::MAX_DOCUMENT);
    assert!(d.doc.pcrs.len() <= nitro::MAX_PCRS);
    assert!(d.doc.cabundle.len() <= nitro::MAX_CABUNDLE);
    for f in [d.doc.public_key, d.doc.user_data, d.doc.nonce]
        .into_iter()
        .flatten()
    {
        assert!(f.len() <= nitro::MAX_FIELD);
    }
    assert!(d.doc.pcrs.windows(2).all(|w| w[0].0 < w[1].0));
    let payload = d.doc.encode_payload();
    let again = nitro::encode_cose_sign1(&payload, d.signature, d.tagged);
    if again.len() <= nitro::MAX_DOCUMENT {
        let e = Document::parse(&again).expect("a re-encoded document parses");
        assert_eq!(e.doc, d.doc);
        assert_eq!(e.tagged, d.tagged);
    }
    let policy = appraisal::Policy::from_toml(b"[nitro]\nallowed = true\ndebug_allowed = true\n")
        .expect("a valid policy");
    let (result, trace) = appraisal::nitro::appraise(
        data,
        &policy,
        1_725_719_900,
        &appraisal::nitro::Binding::default(),
    );
    if let Err(denial) = result {
        assert_eq!(trace.steps().last().map(|s| s.0), Some(denial.check));
    }
});
