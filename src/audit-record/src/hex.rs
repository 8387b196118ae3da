//! Lowercase hex, the only byte encoding in a record (one encoding per
//! value keeps the canonical bytes unique).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Lowercase hex to bytes; `None` for odd length, uppercase or any other
/// character.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// Whether `s` is lowercase hex of exactly `bytes` bytes.
pub fn is_hex_of(s: &str, bytes: usize) -> bool {
    s.len() == bytes * 2 && decode(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        assert_eq!(encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(decode("00abff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(decode("00ABff"), None);
        assert_eq!(decode("abc"), None);
        assert_eq!(decode("zz"), None);
        assert!(is_hex_of("00ab", 2));
        assert!(!is_hex_of("00ab", 3));
    }
}
