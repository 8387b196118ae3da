//! A strict reader for the subset of CBOR (RFC 8949) an NSM attestation
//! document uses: unsigned and negative integers, byte and text strings,
//! arrays, maps, tag 18 and `null`. Definite lengths only.
//!
//! Why our own ~150 lines and not a CBOR crate: the reader borrows every
//! string from the input (no allocation at all), so a declared length is
//! compared with the bytes that remain before anything else happens, and a
//! 10 MB length or a 1000-entry array costs nothing but the error. Anything
//! outside the subset (indefinite lengths, floats, other tags and simple
//! values, reserved additional information) is refused with its offset.
//! Nesting is bounded by the document's fixed shape (the caller asks for
//! each item's type), not by recursion.

use std::fmt;

/// Why bytes are not the CBOR the caller asked for, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// Absolute offset of the item (its initial byte) or of the end of input.
    pub offset: usize,
    /// What was wrong.
    pub problem: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.problem)
    }
}

impl std::error::Error for DocumentError {}

/// CBOR major types, by number.
pub(crate) const UINT: u8 = 0;
pub(crate) const NINT: u8 = 1;
pub(crate) const BSTR: u8 = 2;
pub(crate) const TSTR: u8 = 3;
pub(crate) const ARRAY: u8 = 4;
pub(crate) const MAP: u8 = 5;
pub(crate) const TAG: u8 = 6;

/// The simple value `null` (major 7, value 22), as its one byte.
const NULL: u8 = 0xf6;

pub(crate) fn major_name(m: u8) -> &'static str {
    match m {
        UINT => "unsigned integer",
        NINT => "negative integer",
        BSTR => "byte string",
        TSTR => "text string",
        ARRAY => "array",
        MAP => "map",
        TAG => "tag",
        _ => "simple value or float",
    }
}

/// A position in the input; every read advances it past one item's head
/// (and, for strings, its content).
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the whole input (for nested payloads).
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Absolute offset of the next item.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn err<T>(&self, at: usize, problem: impl Into<String>) -> Result<T, DocumentError> {
        Err(DocumentError {
            offset: at,
            problem: problem.into(),
        })
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Refuses bytes after the last item.
    pub fn finish(&self, what: &str) -> Result<(), DocumentError> {
        if !self.at_end() {
            return self.err(
                self.offset(),
                format!(
                    "{} bytes after the end of {what}",
                    self.buf.len() - self.pos
                ),
            );
        }
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, DocumentError> {
        let Some(&b) = self.buf.get(self.pos) else {
            return self.err(self.offset(), "input ends where an item should start");
        };
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DocumentError> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return self.err(
                self.offset(),
                format!("{what} needs {n} bytes, {left} remain"),
            );
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next item's major type, without consuming it.
    pub fn peek_major(&self) -> Result<u8, DocumentError> {
        match self.buf.get(self.pos) {
            Some(b) => Ok(b >> 5),
            None => self.err(self.offset(), "input ends where an item should start"),
        }
    }

    /// Reads one head: (major type, argument). Indefinite lengths and the
    /// reserved additional-information values 28..30 are refused.
    fn head(&mut self) -> Result<(u8, u64, usize), DocumentError> {
        let at = self.offset();
        let b = self.byte()?;
        let (major, info) = (b >> 5, b & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let bytes = self.take(n, "integer argument")?;
                bytes.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
            }
            31 => {
                return self.err(
                    at,
                    format!(
                        "indefinite-length {} refused (definite lengths only)",
                        major_name(major)
                    ),
                )
            }
            _ => return self.err(at, format!("reserved additional information {info}")),
        };
        Ok((major, arg, at))
    }

    fn expect(&mut self, want: u8, what: &str) -> Result<(u64, usize), DocumentError> {
        let (major, arg, at) = self.head()?;
        if major != want {
            return self.err(
                at,
                format!(
                    "{what}: expected a {}, found a {}",
                    major_name(want),
                    major_name(major)
                ),
            );
        }
        Ok((arg, at))
    }

    /// An unsigned integer.
    pub fn uint(&mut self, what: &str) -> Result<u64, DocumentError> {
        Ok(self.expect(UINT, what)?.0)
    }

    /// An integer, signed (CBOR negative integers are -1 - arg).
    pub fn int(&mut self, what: &str) -> Result<i128, DocumentError> {
        let (major, arg, at) = self.head()?;
        match major {
            UINT => Ok(i128::from(arg)),
            NINT => Ok(-1 - i128::from(arg)),
            m => self.err(
                at,
                format!("{what}: expected an integer, found a {}", major_name(m)),
            ),
        }
    }

    /// A byte string of at most `max` bytes, borrowed from the input. The
    /// declared length is checked against `max` and against what remains
    /// before the content is touched.
    pub fn bstr(&mut self, what: &str, max: usize) -> Result<&'a [u8], DocumentError> {
        let (len, at) = self.expect(BSTR, what)?;
        self.content(len, at, what, max)
    }

    /// A UTF-8 text string of at most `max` bytes.
    pub fn tstr(&mut self, what: &str, max: usize) -> Result<&'a str, DocumentError> {
        let (len, at) = self.expect(TSTR, what)?;
        let bytes = self.content(len, at, what, max)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s),
            Err(_) => self.err(at, format!("{what}: text string is not UTF-8")),
        }
    }

    fn content(
        &mut self,
        len: u64,
        at: usize,
        what: &str,
        max: usize,
    ) -> Result<&'a [u8], DocumentError> {
        match usize::try_from(len) {
            Ok(n) if n <= max => self.take(n, what),
            _ => self.err(at, format!("{what}: {len} bytes, at most {max} allowed")),
        }
    }

    /// An array header of at most `max` entries; returns the count.
    pub fn array(&mut self, what: &str, max: usize) -> Result<usize, DocumentError> {
        let (n, at) = self.expect(ARRAY, what)?;
        self.count(n, at, what, max)
    }

    /// A map header of at most `max` entries; returns the count.
    pub fn map(&mut self, what: &str, max: usize) -> Result<usize, DocumentError> {
        let (n, at) = self.expect(MAP, what)?;
        self.count(n, at, what, max)
    }

    fn count(&self, n: u64, at: usize, what: &str, max: usize) -> Result<usize, DocumentError> {
        match usize::try_from(n) {
            Ok(n) if n <= max => Ok(n),
            _ => self.err(at, format!("{what}: {n} entries, at most {max} allowed")),
        }
    }

    /// A tag number (major 6).
    pub fn tag(&mut self) -> Result<u64, DocumentError> {
        Ok(self.expect(TAG, "tag")?.0)
    }

    /// Consumes a `null` if one is next; says whether it did.
    pub fn null(&mut self) -> Result<bool, DocumentError> {
        if self.buf.get(self.pos) == Some(&NULL) {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }
}

/// Writes a head (major type and argument) in its shortest form.
pub(crate) fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    let b = arg.to_be_bytes();
    match arg {
        0..=23 => out.push(m | b[7]),
        24..=0xff => out.extend_from_slice(&[m | 24, b[7]]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&b[6..]);
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&b[4..]);
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&b);
        }
    }
}

/// Writes a byte string.
pub(crate) fn write_bstr(out: &mut Vec<u8>, bytes: &[u8]) {
    write_head(out, BSTR, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Writes a text string.
pub(crate) fn write_tstr(out: &mut Vec<u8>, s: &str) {
    write_head(out, TSTR, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip_in_shortest_form() {
        for (arg, len) in [
            (0u64, 1),
            (23, 1),
            (24, 2),
            (255, 2),
            (256, 3),
            (65536, 5),
            (1 << 32, 9),
        ] {
            let mut v = Vec::new();
            write_head(&mut v, UINT, arg);
            assert_eq!(v.len(), len, "{arg}");
            assert_eq!(Reader::new(&v, 0).uint("x").unwrap(), arg);
        }
    }

    #[test]
    fn indefinite_and_reserved_are_refused_with_offsets() {
        let e = Reader::new(&[0xbf, 0xff], 0).map("m", 4).unwrap_err();
        assert_eq!(
            e.to_string(),
            "at byte 0: indefinite-length map refused (definite lengths only)"
        );
        let e = Reader::new(&[0x1c], 7).uint("n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "at byte 7: reserved additional information 28"
        );
    }

    #[test]
    fn lengths_are_checked_before_content() {
        // A byte string declaring 10 MB, with 3 bytes behind it.
        let e = Reader::new(&[0x5a, 0x00, 0x98, 0x96, 0x80, 1, 2, 3], 0)
            .bstr("user_data", 1024)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "at byte 0: user_data: 10000000 bytes, at most 1024 allowed"
        );
        let e = Reader::new(&[0x45, 1, 2], 0)
            .bstr("nonce", 1024)
            .unwrap_err();
        assert_eq!(e.to_string(), "at byte 1: nonce needs 5 bytes, 2 remain");
        let e = Reader::new(&[0x99, 0x03, 0xe8], 0)
            .array("cabundle", 8)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "at byte 0: cabundle: 1000 entries, at most 8 allowed"
        );
    }
}
