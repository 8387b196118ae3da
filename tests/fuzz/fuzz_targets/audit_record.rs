//! The audit trail's record parser, as the collector and `enclavectl audit
//! verify` run it on lines the host delivered: any bytes never panic, and
//! a line that parses is its record's one canonical encoding (re-parsing
//! and re-serializing give the same record and line), so what is stored
//! is what was signed. The shipping protocol's hello and ack lines parse
//! only in their one spelling too, and so does the collector's answer to
//! the verifier's resume.
#![no_main]

use audit_record::{Chain, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    // The shipping protocol's control lines, from the same bytes.
    if let Ok(spki) = audit_record::ship::parse_hello(line) {
        assert_eq!(audit_record::ship::hello_line(&spki).trim_end(), line);
    }
    if let Ok(acked) = audit_record::ship::parse_ack(line) {
        assert_eq!(audit_record::ship::ack_line(acked).trim_end(), line);
    }
    if let Ok((seq, prev)) = audit_record::ship::parse_resume_answer(line) {
        assert_eq!(
            audit_record::ship::resume_answer_line(seq, &prev).trim_end(),
            line
        );
    }
    let Ok(rec) = Record::parse(line) else {
        return;
    };
    assert_eq!(rec.to_line(), line);
    assert_eq!(Record::parse(&rec.to_line()).as_ref(), Ok(&rec));
    assert!(rec.canonical_bytes().len() < line.len());
    // Checking it against some key never panics; following it from a
    // fresh chain of another stream is refused by name. (The fuzzer does
    // find that chain's own stream id, and a seq 0 with zero `prev` then
    // links: linkage is the chain's job, the signature `verify_sig`'s.)
    assert!(rec.verify_sig(b"not a key").is_err());
    let mut chain = Chain::new(b"not a key");
    let linked = chain.follow(&rec);
    if rec.stream != chain.stream() || rec.seq != 0 {
        assert!(linked.is_err());
    }
    let _ = Chain::after(&rec).next_seq();
});
