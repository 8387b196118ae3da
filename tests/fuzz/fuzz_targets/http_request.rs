//! HTTP/1.1 as the call service reads it from a client (and as our
//! clients read a response): any bytes, split into any sequence of
//! kept-alive requests, never panic, never yield a body past the limit or
//! a head past its bound, and a request's body is exactly the length its
//! head declared.
#![no_main]

use std::io::BufReader;

use libfuzzer_sys::fuzz_target;

const LIMITS: bounded_http::Limits = bounded_http::Limits {
    head_bytes: 2048,
    body_bytes: 4096,
};

fuzz_target!(|data: &[u8]| {
    // Requests, one after another on one connection, as conn.rs reads them.
    let mut r = BufReader::with_capacity(64, data);
    for _ in 0..8 {
        let head = match bounded_http::read_request_head(&mut r, LIMITS) {
            Ok(Some(h)) => h,
            Ok(None) | Err(_) => break,
        };
        assert!(head
            .headers
            .iter()
            .all(|(n, _)| !n.bytes().any(|b| b.is_ascii_uppercase())));
        let declared = match bounded_http::declared_body_len(&head.headers, LIMITS) {
            Ok(n) => n,
            Err(_) => break,
        };
        assert!(declared <= LIMITS.body_bytes);
        match bounded_http::read_request_body(&mut r, &head.headers, LIMITS) {
            Ok(body) => assert_eq!(body.len(), declared),
            Err(_) => break,
        }
        let _ = head.wants_close();
    }
    // The same bytes as a response (chunked framing included).
    if let Ok(resp) = bounded_http::read_response(&mut BufReader::new(data), LIMITS) {
        assert!(resp.body.len() <= LIMITS.body_bytes);
    }
});
