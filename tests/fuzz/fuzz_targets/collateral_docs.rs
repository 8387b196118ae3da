//! What the verifier reads from AMD KDS, Intel PCS/PCCS, an offline
//! directory or a `Retry-After` header (crate `collateral`), and the PCK
//! chain it reads out of a quote to choose TDX collateral: no input panics,
//! and a document that is accepted has a consistent validity.
#![no_main]

use collateral::{cache, kds, pcs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let headers = vec![
        ("tcb-info-issuer-chain".to_owned(), "x".to_owned()),
        (
            "sgx-enclave-identity-issuer-chain".to_owned(),
            "x".to_owned(),
        ),
        ("sgx-pck-crl-issuer-chain".to_owned(), "x".to_owned()),
    ];
    let specs = [
        pcs::tcb_info("https://p", &[0; 6]),
        pcs::qe_identity("https://p"),
        pcs::pck_crl("https://p", "platform"),
        pcs::root_ca_crl("https://p/r"),
        kds::crl(
            "https://k",
            tee_formats::snp::Generation::Milan,
            kds::KeyType::Vcek,
        ),
        kds::cert_chain(
            "https://k",
            tee_formats::snp::Generation::Milan,
            kds::KeyType::Vcek,
        ),
    ];
    for spec in &specs {
        if let Ok(v) = (spec.validity)(data, &headers) {
            assert!(v.issued.is_some() || !v.mutable);
        }
    }
    let _ = kds::certificate_validity(data, &[]);
    let _ = pcs::crl_der(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cache::http_date(text);
        let _ = pcs::url_decode(text);
        assert_eq!(pcs::url_decode(&pcs::url_encode(text)), text);
        let _ = appraisal::time::parse_now(text);
    }
    let _ = appraisal::tdx_platform(data);
});
