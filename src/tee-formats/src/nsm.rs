//! The AWS Nitro Secure Module (NSM) messages a Nitro enclave exchanges with
//! `/dev/nsm`: the `Attestation` request and its response.
//!
//! The NSM speaks CBOR (RFC 8949) in the shapes the AWS NSM API
//! (`aws-nitro-enclaves-nsm-api`, `src/api/mod.rs`) gets from serde's
//! externally tagged enums:
//!
//! - request `{"Attestation": {"user_data": bstr / null, "nonce": bstr / null,
//!   "public_key": bstr / null}}`, each field at most [`FIELD_MAX`] bytes, the
//!   whole request at most [`REQUEST_MAX`] bytes (the driver's limit);
//! - response `{"Attestation": {"document": bstr}}` (the COSE_Sign1
//!   attestation document) or `{"Error": "<ErrorCode>"}` (a unit variant
//!   name such as `"InvalidArgument"`), at most [`RESPONSE_MAX`] bytes.
//!
//! Why a hand-written codec and not a CBOR crate: these two messages use four
//! CBOR item types (map, text, byte string, null); about 200 lines cover them
//! strictly (definite lengths only, no unknown or repeated keys, no trailing
//! bytes, every length checked against what is left before anything is
//! allocated), and the guest PID 1 gains no dependency. The fuzz target
//! `nsm_response` runs both parsers. The attestation document itself is
//! parsed by the verifier, not here.

// The writer is the one of the documents (shortest-form heads, as serde_cbor
// writes them); the reader below stays this module's own, bounded for the
// NSM's messages.
use crate::nitro::cbor::{write_bstr, write_head, write_tstr};
use crate::FormatError;

/// The largest request the NSM driver accepts (`NSM_REQUEST_MAX_SIZE`).
pub const REQUEST_MAX: usize = 0x1000;
/// The response buffer the NSM API hands the driver (`NSM_RESPONSE_MAX_SIZE`).
pub const RESPONSE_MAX: usize = 0x3000;
/// The largest `user_data`, `nonce` or `public_key` the NSM accepts.
pub const FIELD_MAX: usize = 1024;
/// The longest NSM error code name we accept (the longest AWS defines is
/// `InvalidOperation`-sized; 64 leaves room for new ones).
pub const ERROR_MAX: usize = 64;

const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_MAP: u8 = 5;
const NULL: u8 = 0xf6;

/// `Request::Attestation`: what the enclave asks the NSM to sign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestationRequest {
    /// Opaque data for the verifier (ours: the 64-byte REPORT_DATA binding).
    pub user_data: Option<Vec<u8>>,
    /// The verifier's nonce.
    pub nonce: Option<Vec<u8>>,
    /// The enclave's public key (ours: the enclave key's SPKI DER).
    pub public_key: Option<Vec<u8>>,
}

/// The NSM's answer to an attestation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `Response::Attestation`: the COSE_Sign1 attestation document.
    Attestation {
        /// Its bytes, as the NSM produced them.
        document: Vec<u8>,
    },
    /// `Response::Error`: the NSM's error code name (ASCII letters and
    /// digits only, so it can be logged as it is).
    Error(String),
}

impl AttestationRequest {
    /// The CBOR request. Fails when a field exceeds [`FIELD_MAX`].
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::with_capacity(64 + 3 * FIELD_MAX);
        write_head(&mut out, MAJOR_MAP, 1);
        write_tstr(&mut out, "Attestation");
        write_head(&mut out, MAJOR_MAP, 3);
        for (name, value) in self.fields() {
            write_tstr(&mut out, name);
            match value {
                Some(v) if v.len() > FIELD_MAX => {
                    return Err(FormatError::TooLarge {
                        field: name,
                        len: v.len(),
                    })
                }
                Some(v) => write_bstr(&mut out, v),
                None => out.push(NULL),
            }
        }
        Ok(out)
    }

    fn fields(&self) -> [(&'static str, &Option<Vec<u8>>); 3] {
        [
            ("user_data", &self.user_data),
            ("nonce", &self.nonce),
            ("public_key", &self.public_key),
        ]
    }

    /// Parses a request (the simulated NSM's side). Fields may be absent or
    /// `null`; anything else than the three known keys is refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        const WHAT: &str = "NSM request";
        if bytes.len() > REQUEST_MAX {
            return Err(FormatError::BadLength {
                field: WHAT,
                offset: 0,
                got: bytes.len() as u64,
                expected: REQUEST_MAX as u64,
            });
        }
        let mut r = Reader { buf: bytes, pos: 0 };
        r.single_entry_map(WHAT)?;
        let at = r.pos;
        if r.text(WHAT, 32)? != "Attestation" {
            return Err(cbor(WHAT, at, "not an Attestation request"));
        }
        let entries = r.map_len("Attestation request")?;
        if entries > 3 {
            return Err(cbor(WHAT, at, "more than three fields"));
        }
        let mut req = AttestationRequest::default();
        let mut seen = [false; 3];
        for _ in 0..entries {
            let at = r.pos;
            let key = r.text("Attestation request key", 32)?;
            let index = match key {
                "user_data" => 0,
                "nonce" => 1,
                "public_key" => 2,
                _ => return Err(cbor(WHAT, at, "unknown field")),
            };
            if seen[index] {
                return Err(cbor(WHAT, at, "repeated field"));
            }
            seen[index] = true;
            let value = r.null_or_bytes("Attestation request field", FIELD_MAX)?;
            let slot = match index {
                0 => &mut req.user_data,
                1 => &mut req.nonce,
                _ => &mut req.public_key,
            };
            *slot = value.map(<[u8]>::to_vec);
        }
        r.end(WHAT)?;
        Ok(req)
    }
}

impl Response {
    /// Parses the NSM's response: exactly one of the two shapes above,
    /// nothing after it.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        const WHAT: &str = "NSM response";
        if bytes.len() > RESPONSE_MAX {
            return Err(FormatError::BadLength {
                field: WHAT,
                offset: 0,
                got: bytes.len() as u64,
                expected: RESPONSE_MAX as u64,
            });
        }
        let mut r = Reader { buf: bytes, pos: 0 };
        r.single_entry_map(WHAT)?;
        let at = r.pos;
        let response = match r.text(WHAT, 32)? {
            "Attestation" => {
                r.single_entry_map("Attestation response")?;
                let at = r.pos;
                if r.text("Attestation response key", 32)? != "document" {
                    return Err(cbor(WHAT, at, "Attestation response without document"));
                }
                let document = r.bytes("attestation document", RESPONSE_MAX)?;
                Response::Attestation {
                    document: document.to_vec(),
                }
            }
            "Error" => {
                let at = r.pos;
                let code = r.text("NSM error code", ERROR_MAX)?;
                if code.is_empty() || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(cbor(WHAT, at, "error code is not a plain name"));
                }
                Response::Error(code.to_owned())
            }
            _ => return Err(cbor(WHAT, at, "neither Attestation nor Error")),
        };
        r.end(WHAT)?;
        Ok(response)
    }

    /// The CBOR response (the simulated NSM's side).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_head(&mut out, MAJOR_MAP, 1);
        match self {
            Response::Attestation { document } => {
                write_tstr(&mut out, "Attestation");
                write_head(&mut out, MAJOR_MAP, 1);
                write_tstr(&mut out, "document");
                write_bstr(&mut out, document);
            }
            Response::Error(code) => {
                write_tstr(&mut out, "Error");
                write_tstr(&mut out, code);
            }
        }
        out
    }
}

fn cbor(what: &'static str, offset: usize, problem: &'static str) -> FormatError {
    FormatError::Cbor {
        what,
        offset,
        problem,
    }
}

/// A cursor over untrusted CBOR.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// The initial byte and argument of the next item: (major type, argument,
    /// the initial byte). Indefinite lengths and reserved encodings are
    /// refused.
    fn head(&mut self, what: &'static str) -> Result<(u8, u64, u8), FormatError> {
        let at = self.pos;
        let initial = *self.buf.get(at).ok_or(FormatError::Truncated {
            what,
            needed: at + 1,
            got: self.buf.len(),
        })?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let extra = match info {
            0..=23 => 0,
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Err(cbor(what, at, "indefinite length is not allowed")),
            _ => return Err(cbor(what, at, "reserved additional information")),
        };
        let end = at + 1 + extra;
        let arg_bytes = self.buf.get(at + 1..end).ok_or(FormatError::Truncated {
            what,
            needed: end,
            got: self.buf.len(),
        })?;
        let arg = if extra == 0 {
            u64::from(info)
        } else {
            arg_bytes
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        };
        self.pos = end;
        Ok((major, arg, initial))
    }

    /// The content of a byte or text string of at most `max` bytes.
    fn string(
        &mut self,
        what: &'static str,
        major: u8,
        max: usize,
    ) -> Result<&'a [u8], FormatError> {
        let at = self.pos;
        let (got, len, _) = self.head(what)?;
        if got != major {
            return Err(cbor(
                what,
                at,
                if major == MAJOR_BYTES {
                    "not a byte string"
                } else {
                    "not a text string"
                },
            ));
        }
        let available = self.buf.len() - self.pos;
        let len = match usize::try_from(len) {
            Ok(len) if len <= available => len,
            _ => {
                return Err(FormatError::LengthOutOfBounds {
                    field: what,
                    offset: at,
                    declared: len,
                    available,
                })
            }
        };
        if len > max {
            return Err(FormatError::BadLength {
                field: what,
                offset: at,
                got: len as u64,
                expected: max as u64,
            });
        }
        let s = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], FormatError> {
        self.string(what, MAJOR_BYTES, max)
    }

    fn text(&mut self, what: &'static str, max: usize) -> Result<&'a str, FormatError> {
        let at = self.pos;
        let raw = self.string(what, MAJOR_TEXT, max)?;
        std::str::from_utf8(raw).map_err(|_| cbor(what, at, "text is not UTF-8"))
    }

    fn null_or_bytes(
        &mut self,
        what: &'static str,
        max: usize,
    ) -> Result<Option<&'a [u8]>, FormatError> {
        if self.buf.get(self.pos) == Some(&NULL) {
            self.pos += 1;
            return Ok(None);
        }
        self.bytes(what, max).map(Some)
    }

    fn map_len(&mut self, what: &'static str) -> Result<u64, FormatError> {
        let at = self.pos;
        match self.head(what)? {
            (MAJOR_MAP, n, _) => Ok(n),
            _ => Err(cbor(what, at, "not a map")),
        }
    }

    fn single_entry_map(&mut self, what: &'static str) -> Result<(), FormatError> {
        let at = self.pos;
        match self.map_len(what)? {
            1 => Ok(()),
            _ => Err(cbor(what, at, "not a map of exactly one entry")),
        }
    }

    fn end(&self, what: &'static str) -> Result<(), FormatError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(FormatError::TrailingBytes {
                what,
                offset: self.pos,
                len: self.buf.len() - self.pos,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request serde_cbor makes of `Request::Attestation { user_data:
    /// Some([1, 2]), nonce: None, public_key: Some([3]) }` (written out by
    /// hand from RFC 8949: map(1), text(11) "Attestation", map(3), …).
    const REQUEST: &[u8] =
        b"\xa1\x6bAttestation\xa3\x69user_data\x42\x01\x02\x65nonce\xf6\x6apublic_key\x41\x03";

    #[test]
    fn the_request_has_the_nsm_api_shape() {
        let req = AttestationRequest {
            user_data: Some(vec![1, 2]),
            nonce: None,
            public_key: Some(vec![3]),
        };
        assert_eq!(req.encode().unwrap(), REQUEST);
        assert_eq!(AttestationRequest::parse(REQUEST).unwrap(), req);
    }

    #[test]
    fn a_64_byte_field_takes_a_one_byte_length() {
        let req = AttestationRequest {
            user_data: Some(vec![7; 64]),
            ..Default::default()
        };
        let bytes = req.encode().unwrap();
        // "user_data" key, then 0x58 0x40 (bstr, 1-byte length 64).
        let key = bytes
            .windows(10)
            .position(|w| w == b"\x69user_data")
            .unwrap();
        assert_eq!(&bytes[key + 10..key + 12], &[0x58, 0x40]);
        assert_eq!(AttestationRequest::parse(&bytes).unwrap(), req);
    }

    #[test]
    fn fields_over_1024_bytes_are_not_encoded() {
        let req = AttestationRequest {
            nonce: Some(vec![0; FIELD_MAX + 1]),
            ..Default::default()
        };
        assert_eq!(
            req.encode(),
            Err(FormatError::TooLarge {
                field: "nonce",
                len: 1025
            })
        );
    }

    #[test]
    fn both_responses_parse() {
        let doc = b"\xa1\x6bAttestation\xa1\x68document\x43\x84\x40\xa0";
        assert_eq!(
            Response::parse(doc).unwrap(),
            Response::Attestation {
                document: vec![0x84, 0x40, 0xa0]
            }
        );
        let err = b"\xa1\x65Error\x6fInvalidArgument";
        assert_eq!(
            Response::parse(err).unwrap(),
            Response::Error("InvalidArgument".into())
        );
        for r in [Response::parse(doc).unwrap(), Response::parse(err).unwrap()] {
            assert_eq!(Response::parse(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn malformed_responses_are_refused_precisely() {
        let problem = |bytes: &[u8]| match Response::parse(bytes) {
            Err(FormatError::Cbor {
                problem, offset, ..
            }) => (problem, offset),
            other => panic!("{other:?}"),
        };
        // Indefinite-length map.
        assert_eq!(
            problem(b"\xbf\x6bAttestation\xa1\x68document\x40\xff"),
            ("indefinite length is not allowed", 0)
        );
        // Indefinite-length byte string for the document.
        assert_eq!(
            problem(b"\xa1\x6bAttestation\xa1\x68document\x5f\x41\x00\xff"),
            ("indefinite length is not allowed", 23)
        );
        // A text document (wrong major type).
        assert_eq!(
            problem(b"\xa1\x6bAttestation\xa1\x68document\x61x"),
            ("not a byte string", 23)
        );
        // Another NSM response variant.
        assert_eq!(
            problem(b"\xa1\x6bDescribePCR\xa0"),
            ("neither Attestation nor Error", 1)
        );
        // Two top-level entries.
        assert_eq!(
            problem(b"\xa2\x65Error\x61X\x65Error\x61Y"),
            ("not a map of exactly one entry", 0)
        );
        // An error code that is not a plain name (log injection).
        assert_eq!(
            problem(b"\xa1\x65Error\x62a\n"),
            ("error code is not a plain name", 7)
        );
        // A document declaring 4 GiB in a 30-byte message.
        assert!(matches!(
            Response::parse(b"\xa1\x6bAttestation\xa1\x68document\x5a\xff\xff\xff\xff"),
            Err(FormatError::LengthOutOfBounds {
                declared: 0xffff_ffff,
                available: 0,
                ..
            })
        ));
        // Truncated inside the head.
        assert!(matches!(
            Response::parse(b"\xa1\x6bAttestation\xa1\x68document\x59\x01"),
            Err(FormatError::Truncated {
                needed: 26,
                got: 25,
                ..
            })
        ));
        // Trailing bytes.
        assert_eq!(
            Response::parse(b"\xa1\x65Error\x61X\x00"),
            Err(FormatError::TrailingBytes {
                what: "NSM response",
                offset: 9,
                len: 1
            })
        );
        // Larger than the response buffer.
        assert!(matches!(
            Response::parse(&vec![0; RESPONSE_MAX + 1]),
            Err(FormatError::BadLength { got: 0x3001, .. })
        ));
    }

    #[test]
    fn malformed_requests_are_refused() {
        let unknown = b"\xa1\x6bAttestation\xa1\x63pcr\xf6";
        assert!(matches!(
            AttestationRequest::parse(unknown),
            Err(FormatError::Cbor {
                problem: "unknown field",
                offset: 14,
                ..
            })
        ));
        let repeated = b"\xa1\x6bAttestation\xa2\x65nonce\xf6\x65nonce\xf6";
        assert!(matches!(
            AttestationRequest::parse(repeated),
            Err(FormatError::Cbor {
                problem: "repeated field",
                offset: 21,
                ..
            })
        ));
        let mut big = b"\xa1\x6bAttestation\xa1\x65nonce\x59\x04\x01".to_vec();
        big.extend_from_slice(&[0; 1025]);
        assert!(matches!(
            AttestationRequest::parse(&big),
            Err(FormatError::BadLength {
                got: 1025,
                expected: 1024,
                ..
            })
        ));
    }
}
