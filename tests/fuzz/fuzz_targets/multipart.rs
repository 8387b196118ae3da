//! multipart/form-data as the call service receives it: parsing any body
//! under any boundary never panics, every part borrows bytes of the input,
//! and what encode() writes parses back to the same parts.
#![no_main]

use callproc::multipart::{self, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, body) = data.split_at(data.len().min(40));
    let content_type = format!(
        "multipart/form-data; boundary={}",
        String::from_utf8_lossy(head)
    );
    let _ = multipart::boundary(&String::from_utf8_lossy(data));
    let Ok(boundary) = multipart::boundary(&content_type) else {
        return;
    };
    if let Ok(parts) = multipart::parse(body, &boundary, &Limits::default()) {
        let range = body.as_ptr_range();
        for p in &parts {
            assert!(p.body.is_empty() || range.contains(&p.body.as_ptr()));
        }
        let again = multipart::encode(&boundary, &parts);
        if let Ok(back) = multipart::parse(&again, &boundary, &Limits::default()) {
            assert_eq!(back.len(), parts.len());
            for (a, b) in back.iter().zip(&parts) {
                assert_eq!((&a.name, a.body), (&b.name, b.body));
            }
        }
    }
});
