//! The shipping protocol between an emitter (the guest) and the collector
//! (`enclavectl audit serve`), over one byte stream: vsock in a VM, unix
//! or TCP in process mode. Line-based, ASCII, every line ended by `\n`.
//!
//! ```text
//! guest      → collector: hello 1 <SPKI, lowercase hex>\n     (once, first)
//! collector  → guest:     ack <seq>\n | ack none\n             (at once)
//! guest      → collector: <record line>\n <record line>\n …
//! collector  → guest:     ack <seq>\n                          (as it commits)
//! ```
//!
//! - `hello`: protocol version 1 and the DER SubjectPublicKeyInfo of the
//!   key that signs the stream's records. The collector derives the
//!   stream id from it ([`crate::stream_id`]) and keeps the key with the
//!   stream: it is what `audit verify` checks signatures with, and what
//!   the stream's `attestation` record (`enclave_spki_sha256`) and the
//!   verifier's `decision` bind to the attested evidence.
//! - `ack <seq>`: every record of this stream with a sequence number up
//!   to and including `seq` is durably stored (committed; a record that
//!   failed verification counts once it is in quarantine). `ack none`:
//!   nothing of this stream is stored yet. The collector answers the hello
//!   with its current ack, then acks as it commits (it may answer several
//!   lines read together with one ack). Acks never go down.
//! - The emitter keeps each record until an ack covers it, and after a
//!   reconnect sends again from its first unacked record; the collector
//!   acks a record it already holds byte for byte without storing it
//!   twice.
//! - Either side closes the connection on anything else (an unparsable
//!   line, an ack beyond what was sent); the emitter reconnects with
//!   backoff. Every wait on the peer has a deadline on the emitter's side.

use crate::hex;

/// A hello's or an ack's longest line (without `\n`): a P-384 SPKI in hex
/// is 240 digits.
pub const MAX_CONTROL_LINE: usize = 600;

/// The protocol version in the hello.
pub const VERSION: u32 = 1;

/// A control line that is not the protocol's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipError {
    /// Longer than [`MAX_CONTROL_LINE`].
    TooLong,
    /// Not `hello 1 <hex>`.
    BadHello,
    /// Not `ack <seq>` or `ack none`.
    BadAck,
    /// Not `at <seq> <hash>`.
    BadResume,
}

impl std::fmt::Display for ShipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShipError::TooLong => "audit protocol: control line too long",
            ShipError::BadHello => "audit protocol: expected `hello 1 <spki hex>`",
            ShipError::BadAck => "audit protocol: expected `ack <seq>` or `ack none`",
            ShipError::BadResume => "audit protocol: expected `at <seq> <hash>`",
        })
    }
}

impl std::error::Error for ShipError {}

/// The hello for the key `spki`, with its newline.
pub fn hello_line(spki: &[u8]) -> String {
    format!("hello {VERSION} {}\n", hex::encode(spki))
}

/// The SPKI of a hello line (without its newline).
pub fn parse_hello(line: &str) -> Result<Vec<u8>, ShipError> {
    if line.len() > MAX_CONTROL_LINE {
        return Err(ShipError::TooLong);
    }
    let spki = line
        .strip_prefix("hello 1 ")
        .and_then(hex::decode)
        .ok_or(ShipError::BadHello)?;
    if spki.is_empty() {
        return Err(ShipError::BadHello);
    }
    Ok(spki)
}

/// The ack of `committed` (the highest contiguous stored seq; `None`:
/// nothing stored), with its newline.
pub fn ack_line(committed: Option<u64>) -> String {
    match committed {
        Some(seq) => format!("ack {seq}\n"),
        None => "ack none\n".to_owned(),
    }
}

/// What an ack line (without its newline) says is stored: decimal without
/// sign or leading zeros, or `none`.
pub fn parse_ack(line: &str) -> Result<Option<u64>, ShipError> {
    if line.len() > MAX_CONTROL_LINE {
        return Err(ShipError::TooLong);
    }
    let n = line.strip_prefix("ack ").ok_or(ShipError::BadAck)?;
    if n == "none" {
        return Ok(None);
    }
    let canonical =
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'));
    if !canonical {
        return Err(ShipError::BadAck);
    }
    n.parse().map(Some).map_err(|_| ShipError::BadAck)
}

/// The verifier's resume request (with its newline), sent after the
/// hello: the verifier keeps no state across restarts, and asks where its
/// chain stands. Not part of the guest's protocol.
pub fn resume_line(stream: &str) -> String {
    format!("resume {stream}\n")
}

/// The collector's answer to a resume (with its newline): the next seq and
/// the hash of the last stored record (zeros when nothing is stored).
pub fn resume_answer_line(next_seq: u64, prev: &[u8; 32]) -> String {
    format!("at {next_seq} {}\n", hex::encode(prev))
}

/// A resume answer (without its newline): `at <seq> <64 hex digits>`, the
/// seq in decimal without sign or leading zeros.
pub fn parse_resume_answer(line: &str) -> Result<(u64, [u8; 32]), ShipError> {
    if line.len() > MAX_CONTROL_LINE {
        return Err(ShipError::TooLong);
    }
    let rest = line.strip_prefix("at ").ok_or(ShipError::BadResume)?;
    let (n, h) = rest.split_once(' ').ok_or(ShipError::BadResume)?;
    let canonical =
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'));
    if !canonical {
        return Err(ShipError::BadResume);
    }
    let seq = n.parse().map_err(|_| ShipError::BadResume)?;
    let prev: [u8; 32] = hex::decode(h)
        .and_then(|p| p.try_into().ok())
        .ok_or(ShipError::BadResume)?;
    Ok((seq, prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_and_ack_round_trip_and_refuse_variants() {
        let spki = [0x30, 0x59, 0xff];
        let hello = hello_line(&spki);
        assert_eq!(hello, "hello 1 3059ff\n");
        assert_eq!(parse_hello(hello.trim_end()), Ok(spki.to_vec()));
        for bad in [
            "hello 2 3059ff",
            "hello 1 ",
            "hello 1 3059FF",
            "hello 1 305",
            "hi",
        ] {
            assert_eq!(parse_hello(bad), Err(ShipError::BadHello), "{bad}");
        }
        assert_eq!(parse_hello(&"a".repeat(601)), Err(ShipError::TooLong));

        assert_eq!(ack_line(Some(17)), "ack 17\n");
        assert_eq!(ack_line(None), "ack none\n");
        assert_eq!(parse_ack("ack 17"), Ok(Some(17)));
        assert_eq!(parse_ack("ack 0"), Ok(Some(0)));
        assert_eq!(parse_ack("ack none"), Ok(None));
        assert_eq!(parse_ack(&format!("ack {}", u64::MAX)), Ok(Some(u64::MAX)));
        for bad in [
            "ack 017",
            "ack +1",
            "ack -1",
            "ack ",
            "ack 1 ",
            "ACK 1",
            "ack 18446744073709551616",
        ] {
            assert_eq!(parse_ack(bad), Err(ShipError::BadAck), "{bad}");
        }
    }

    #[test]
    fn resume_answers_round_trip_and_refuse_variants() {
        let h = "ab".repeat(32);
        let line = resume_answer_line(41, &[0xab; 32]);
        assert_eq!(line, format!("at 41 {h}\n"));
        assert_eq!(parse_resume_answer(line.trim_end()), Ok((41, [0xab; 32])));
        assert_eq!(
            parse_resume_answer(&format!("at 0 {}", "0".repeat(64))),
            Ok((0, [0; 32]))
        );
        for bad in [
            format!("at 041 {h}"),
            format!("at -1 {h}"),
            format!("at 41  {h}"),
            format!("at 41 {}", "AB".repeat(32)),
            format!("at 41 {}", "ab".repeat(31)),
            format!("at 41 {h} x"),
            format!("ack 41 {h}"),
            "at 18446744073709551616 ".to_owned() + &h,
        ] {
            assert_eq!(
                parse_resume_answer(&bad),
                Err(ShipError::BadResume),
                "{bad:?}"
            );
        }
        assert_eq!(resume_line("00ff"), "resume 00ff\n");
    }
}
