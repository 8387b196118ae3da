//! `multipart/form-data` (RFC 7578, on the RFC 2046 multipart syntax): the
//! body of `POST /v1/calls` (a JSON metadata part and a WAV part).
//!
//! * [`boundary`] takes the boundary out of a `Content-Type` header value.
//! * [`parse`] splits a body into [`Part`]s that borrow their bytes from it
//!   (no copy of the audio), under caller-chosen [`Limits`].
//! * [`encode`] and [`random_boundary`] build a body (the guest's upstream
//!   client and the host command line).
//!
//! Wire format accepted, as sent by curl, Python requests/httpx and
//! browsers: CRLF line ends; a preamble before the first delimiter and an
//! epilogue after the close delimiter are ignored; transport padding
//! (spaces, tabs) after a delimiter is allowed. A delimiter is recognised
//! only as `CRLF--boundary` followed by `--` or by optional padding and
//! CRLF (the first one may also start the body); anything else, e.g. a line
//! `--boundaryX`, is part content.
//!
//! Part headers are parsed case-insensitively; they must be UTF-8 (browsers
//! send raw UTF-8 file names) without control characters other than tab.
//! Folded header lines (a line starting with space or tab) are joined to
//! the previous one. Headers other than `Content-Disposition` and
//! `Content-Type` (e.g. `Content-Transfer-Encoding`) are ignored.
//!
//! Quoted parameter values: `\"` and `\\` are unescaped (RFC 9110
//! quoted-pair, what httpx sends for a backslash); a backslash before any
//! other character is kept as is, because browsers and curl send
//! backslashes unescaped (`a\b.wav`). Percent sequences (`%22`, which
//! browsers and curl send for `"`) are not decoded: the value is returned as
//! sent. `filename*` (RFC 5987) is ignored, as RFC 7578 §4.2 says senders
//! must not use it.
//!
//! Errors never contain body bytes: they carry a byte offset into the body
//! and, for a duplicate part, its name when that name is a short
//! identifier.

use std::fmt;

/// The `Content-Type` media type this module handles.
pub const FORM_DATA: &str = "multipart/form-data";

/// Longest boundary RFC 2046 allows.
pub const MAX_BOUNDARY_LEN: usize = 70;

/// Caller-chosen bounds on a multipart body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most parts accepted; one more is [`MultipartError::TooManyParts`].
    pub max_parts: usize,
    /// Largest header block of one part, in bytes (the blank line that ends
    /// it not counted).
    pub max_header_bytes: usize,
}

impl Limits {
    /// 16 parts, 8 KiB of headers per part.
    pub const DEFAULT: Limits = Limits {
        max_parts: 16,
        max_header_bytes: 8 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// One part of a `multipart/form-data` body.
///
/// `Debug` prints the name, the content type and the body length; the file
/// name and the body bytes (personal data, possibly) are not printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// The `name` parameter of `Content-Disposition` (the form field).
    pub name: String,
    /// The `filename` parameter, if present (as sent: see the module
    /// documentation about escapes).
    pub filename: Option<String>,
    /// The `Content-Type` header of the part, trimmed, if present.
    pub content_type: Option<String>,
    /// The part's content, borrowed from the parsed body.
    pub body: &'a [u8],
}

impl fmt::Debug for Part<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Part")
            .field("name", &self.name)
            .field(
                "filename",
                &self.filename.as_ref().map(|_| format_args!("<redacted>")),
            )
            .field("content_type", &self.content_type)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// Why a `Content-Type` or a body was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultipartError {
    /// The media type is not `multipart/form-data`.
    NotFormData,
    /// `multipart/form-data` without a `boundary` parameter.
    NoBoundary,
    /// The boundary is empty, longer than 70 characters, has a character
    /// RFC 2046 does not allow or ends with a space; or the parameters
    /// around it are malformed or repeat it.
    BadBoundary(&'static str),
    /// The body ends before the close delimiter `--boundary--` (or has no
    /// delimiter at all). `offset`: where the unterminated part (or the
    /// search for the first delimiter) starts.
    Truncated {
        /// Byte offset into the body.
        offset: usize,
    },
    /// A part's header block is malformed or larger than
    /// [`Limits::max_header_bytes`].
    BadPartHeaders {
        /// Byte offset of the part's header block.
        offset: usize,
        /// What is wrong (a fixed text).
        reason: &'static str,
    },
    /// A part has no `Content-Disposition: form-data` header with a
    /// non-empty `name`.
    NoName {
        /// Byte offset of the part's header block.
        offset: usize,
    },
    /// Two parts have the same name.
    DuplicatePart {
        /// The name, if it is a short identifier (at most 64 of
        /// `A-Z a-z 0-9 _ . : -`); otherwise a placeholder.
        name: String,
        /// Byte offset of the second part's header block.
        offset: usize,
    },
    /// More parts than [`Limits::max_parts`].
    TooManyParts {
        /// The limit.
        max: usize,
    },
}

impl MultipartError {
    /// A stable identifier of the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            MultipartError::NotFormData => "multipart.not_form_data",
            MultipartError::NoBoundary => "multipart.no_boundary",
            MultipartError::BadBoundary(_) => "multipart.bad_boundary",
            MultipartError::Truncated { .. } => "multipart.truncated",
            MultipartError::BadPartHeaders { .. } => "multipart.bad_part_headers",
            MultipartError::NoName { .. } => "multipart.no_name",
            MultipartError::DuplicatePart { .. } => "multipart.duplicate_part",
            MultipartError::TooManyParts { .. } => "multipart.too_many_parts",
        }
    }

    fn duplicate(name: &str, offset: usize) -> Self {
        let shown = if !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
        {
            name.to_owned()
        } else {
            "<non-identifier name>".to_owned()
        };
        MultipartError::DuplicatePart {
            name: shown,
            offset,
        }
    }
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultipartError::NotFormData => write!(f, "content type is not {FORM_DATA}"),
            MultipartError::NoBoundary => write!(f, "{FORM_DATA} without a boundary parameter"),
            MultipartError::BadBoundary(why) => write!(f, "invalid multipart boundary: {why}"),
            MultipartError::Truncated { offset } => write!(
                f,
                "multipart body truncated: no closing delimiter after byte {offset}"
            ),
            MultipartError::BadPartHeaders { offset, reason } => {
                write!(f, "invalid part headers at byte {offset}: {reason}")
            }
            MultipartError::NoName { offset } => write!(
                f,
                "part at byte {offset} has no Content-Disposition: form-data name"
            ),
            MultipartError::DuplicatePart { name, offset } => {
                write!(f, "duplicate part `{name}` at byte {offset}")
            }
            MultipartError::TooManyParts { max } => {
                write!(f, "more than {max} parts in multipart body")
            }
        }
    }
}

impl std::error::Error for MultipartError {}

// ---------------------------------------------------------------------------
// Content-Type and parameters
// ---------------------------------------------------------------------------

/// RFC 2046 `bcharsnospace`, plus space (allowed except last).
fn is_bchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'\''
                | b'('
                | b')'
                | b'+'
                | b'_'
                | b','
                | b'-'
                | b'.'
                | b'/'
                | b':'
                | b'='
                | b'?'
                | b' '
        )
}

fn check_boundary(b: &str) -> Result<(), MultipartError> {
    if b.is_empty() {
        return Err(MultipartError::BadBoundary("empty"));
    }
    if b.len() > MAX_BOUNDARY_LEN {
        return Err(MultipartError::BadBoundary("longer than 70 characters"));
    }
    if !b.bytes().all(is_bchar) {
        return Err(MultipartError::BadBoundary(
            "character not allowed by RFC 2046",
        ));
    }
    if b.ends_with(' ') {
        return Err(MultipartError::BadBoundary("ends with a space"));
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

fn skip_ows(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// Parses `*( OWS ";" OWS name "=" ( token / quoted-string ) ) OWS` into
/// (lowercased name, value) pairs. Empty parameters (`;;`, a trailing `;`)
/// are tolerated. `Err` is a fixed reason.
fn parse_params(s: &str) -> Result<Vec<(String, String)>, &'static str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = skip_ows(b, 0);
    while i < b.len() {
        if b.get(i) != Some(&b';') {
            return Err("expected ';' between parameters");
        }
        i = skip_ows(b, i + 1);
        if i >= b.len() || b.get(i) == Some(&b';') {
            continue;
        }
        let name_start = i;
        while b.get(i).is_some_and(|&c| is_tchar(c)) {
            i += 1;
        }
        let name = s.get(name_start..i).ok_or("malformed parameter name")?;
        if name.is_empty() {
            return Err("malformed parameter name");
        }
        i = skip_ows(b, i);
        if b.get(i) != Some(&b'=') {
            return Err("parameter without '='");
        }
        i = skip_ows(b, i + 1);
        let value = if b.get(i) == Some(&b'"') {
            let mut v = String::new();
            let mut rest = s.get(i + 1..).ok_or("unterminated quoted string")?.chars();
            let mut consumed = 1usize;
            let mut closed = false;
            while let Some(c) = rest.next() {
                consumed += c.len_utf8();
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => {
                        // Only `\"` and `\\` are escapes; see module docs.
                        let mut peek = rest.clone();
                        match peek.next() {
                            Some(e @ ('"' | '\\')) => {
                                v.push(e);
                                consumed += 1;
                                rest = peek;
                            }
                            _ => v.push('\\'),
                        }
                    }
                    c => v.push(c),
                }
            }
            if !closed {
                return Err("unterminated quoted string");
            }
            i += consumed;
            v
        } else {
            let start = i;
            while b.get(i).is_some_and(|&c| is_tchar(c)) {
                i += 1;
            }
            if i == start {
                return Err("empty or invalid parameter value");
            }
            s.get(start..i)
                .ok_or("empty or invalid parameter value")?
                .to_owned()
        };
        out.push((name.to_ascii_lowercase(), value));
        i = skip_ows(b, i);
    }
    Ok(out)
}

/// The boundary of a `multipart/form-data` body, from its `Content-Type`
/// header value.
///
/// The media type and the parameter name are matched case-insensitively;
/// the value may be a token or a quoted string; it must be 1 to 70
/// characters that RFC 2046 allows (letters, digits, `'()+_,-./:=?` and
/// space, not last). A repeated `boundary` parameter is refused.
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let (media, params) = match content_type.find(';') {
        Some(i) => (
            content_type.get(..i).unwrap_or(""),
            content_type.get(i..).unwrap_or(""),
        ),
        None => (content_type, ""),
    };
    if !media.trim().eq_ignore_ascii_case(FORM_DATA) {
        return Err(MultipartError::NotFormData);
    }
    let params = parse_params(params).map_err(MultipartError::BadBoundary)?;
    let mut found: Option<String> = None;
    for (name, value) in params {
        if name == "boundary" {
            if found.is_some() {
                return Err(MultipartError::BadBoundary("boundary parameter repeated"));
            }
            found = Some(value);
        }
    }
    let b = found.ok_or(MultipartError::NoBoundary)?;
    check_boundary(&b)?;
    Ok(b)
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Position of `needle` in `hay` at or after `from`. `needle` starts with
/// `\r` and has no other `\r` (a boundary has no CR), so each attempt stops
/// by the next `\r` of `hay`: linear time.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(hay.get(from..)?, needle).map(|at| from + at)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DelimKind {
    /// `--boundary` + padding + CRLF: a part follows.
    Open,
    /// `--boundary--`: the end.
    Close,
}

/// What follows `--boundary` at `at`: `--` (close), or transport padding
/// and CRLF (a part follows at the returned offset). `None`: not a
/// delimiter.
fn delimiter_tail(body: &[u8], at: usize) -> Option<(DelimKind, usize)> {
    if body.get(at..at + 2) == Some(b"--") {
        return Some((DelimKind::Close, at + 2));
    }
    let i = skip_ows(body, at);
    if body.get(i..i + 2) == Some(b"\r\n") {
        Some((DelimKind::Open, i + 2))
    } else {
        None
    }
}

/// The next delimiter `CRLF--boundary` at or after `from`: (offset of its
/// CRLF, kind, offset after it).
fn next_delimiter(body: &[u8], delim: &[u8], from: usize) -> Option<(usize, DelimKind, usize)> {
    let mut i = from;
    loop {
        let at = find(body, delim, i)?;
        if let Some((kind, next)) = delimiter_tail(body, at + delim.len()) {
            return Some((at, kind, next));
        }
        i = at + 1;
    }
}

struct PartHeaders {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
}

/// Parses a part's header block (without the terminating blank line).
fn parse_part_headers(block: &[u8], offset: usize) -> Result<PartHeaders, MultipartError> {
    let bad = |reason| MultipartError::BadPartHeaders { offset, reason };
    let text = std::str::from_utf8(block).map_err(|_| bad("not UTF-8"))?;
    // Unfold: (name, value) with continuation lines appended.
    let mut headers: Vec<(&str, String)> = Vec::new();
    if !text.is_empty() {
        for line in text.split("\r\n") {
            if line.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(bad("control character in header"));
            }
            if line.starts_with([' ', '\t']) {
                let last = headers
                    .last_mut()
                    .ok_or(bad("continuation line without a header"))?;
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let (name, value) = line.split_once(':').ok_or(bad("header line without ':'"))?;
            if name.is_empty() || !name.bytes().all(is_tchar) {
                return Err(bad("invalid header name"));
            }
            headers.push((name, value.trim().to_owned()));
        }
    }
    let mut disposition: Option<&str> = None;
    let mut content_type: Option<&str> = None;
    for (name, value) in &headers {
        if name.eq_ignore_ascii_case("content-disposition") {
            if disposition.replace(value).is_some() {
                return Err(bad("Content-Disposition repeated"));
            }
        } else if name.eq_ignore_ascii_case("content-type") && content_type.replace(value).is_some()
        {
            return Err(bad("Content-Type repeated"));
        }
    }
    let disposition = disposition.ok_or(MultipartError::NoName { offset })?;
    let (kind, params) = match disposition.find(';') {
        Some(i) => (
            disposition.get(..i).unwrap_or(""),
            disposition.get(i..).unwrap_or(""),
        ),
        None => (disposition, ""),
    };
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(bad("Content-Disposition is not form-data"));
    }
    let params = parse_params(params).map_err(bad)?;
    let mut name: Option<String> = None;
    let mut filename: Option<String> = None;
    for (k, v) in params {
        let slot = match k.as_str() {
            "name" => &mut name,
            "filename" => &mut filename,
            _ => continue,
        };
        if slot.replace(v).is_some() {
            return Err(bad("Content-Disposition parameter repeated"));
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or(MultipartError::NoName { offset })?;
    let content_type = match content_type {
        Some("") => return Err(bad("empty Content-Type")),
        Some(ct) => Some(ct.to_owned()),
        None => None,
    };
    Ok(PartHeaders {
        name,
        filename,
        content_type,
    })
}

/// Splits a `multipart/form-data` body into its parts.
///
/// `boundary` is the value [`boundary`] returned (it is checked again).
/// The parts are returned in body order; each part's body borrows from
/// `body`. A body whose first delimiter is the close delimiter has no
/// parts (`Ok` of an empty vector).
///
/// Refused: a boundary RFC 2046 does not allow; no delimiter, or no close
/// delimiter ([`MultipartError::Truncated`]); a header block that is
/// malformed or over [`Limits::max_header_bytes`]; a part without
/// `Content-Disposition: form-data; name=…` (a non-empty name); two parts
/// with the same name; more than [`Limits::max_parts`] parts.
pub fn parse<'a>(
    body: &'a [u8],
    boundary: &str,
    limits: &Limits,
) -> Result<Vec<Part<'a>>, MultipartError> {
    check_boundary(boundary)?;
    let delim = format!("\r\n--{boundary}").into_bytes();
    let dash = delim.get(2..).unwrap_or(&[]);

    // The first delimiter: at the very start, or after a preamble.
    let first = if body.starts_with(dash) {
        delimiter_tail(body, dash.len())
    } else {
        None
    };
    let (mut kind, mut pos) = match first {
        Some(t) => t,
        None => {
            let (_, k, next) =
                next_delimiter(body, &delim, 0).ok_or(MultipartError::Truncated { offset: 0 })?;
            (k, next)
        }
    };

    let mut parts: Vec<Part<'a>> = Vec::new();
    while kind == DelimKind::Open {
        if parts.len() >= limits.max_parts {
            return Err(MultipartError::TooManyParts {
                max: limits.max_parts,
            });
        }
        let part_start = pos;
        let rest = body.get(pos..).unwrap_or(&[]);
        let (block, content_start) = if rest.starts_with(b"\r\n") {
            (&[][..], pos + 2)
        } else {
            let window_end = rest.len().min(limits.max_header_bytes.saturating_add(4));
            let window = rest.get(..window_end).unwrap_or(&[]);
            match window.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(end) => (window.get(..end).unwrap_or(&[]), pos + end + 4),
                None if window_end < rest.len() => {
                    return Err(MultipartError::BadPartHeaders {
                        offset: part_start,
                        reason: "header block larger than the limit",
                    })
                }
                None => return Err(MultipartError::Truncated { offset: part_start }),
            }
        };
        if block.len() > limits.max_header_bytes {
            return Err(MultipartError::BadPartHeaders {
                offset: part_start,
                reason: "header block larger than the limit",
            });
        }
        let headers = parse_part_headers(block, part_start)?;
        let (end, k, next) = next_delimiter(body, &delim, content_start)
            .ok_or(MultipartError::Truncated { offset: part_start })?;
        if parts.iter().any(|p| p.name == headers.name) {
            return Err(MultipartError::duplicate(&headers.name, part_start));
        }
        parts.push(Part {
            name: headers.name,
            filename: headers.filename,
            content_type: headers.content_type,
            body: body.get(content_start..end).unwrap_or(&[]),
        });
        kind = k;
        pos = next;
    }
    Ok(parts)
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// A quoted-string for a `Content-Disposition` parameter: `"` and `\` are
/// backslash-escaped, control characters percent-encoded (`%0D`, `%0A`…, as
/// browsers do for CR and LF), so no value can end the header line.
fn push_quoted(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push(b'\\');
                out.push(c as u8);
            }
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                let v = u32::from(c) as usize;
                out.push(b'%');
                out.push(HEX.get(v >> 4).copied().unwrap_or(b'0'));
                out.push(HEX.get(v & 0xf).copied().unwrap_or(b'0'));
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Encodes `parts` as a `multipart/form-data` body with `boundary` (the
/// request's `Content-Type` is `multipart/form-data; boundary=<boundary>`).
///
/// Each part gets `Content-Disposition: form-data; name="…"` (with
/// `filename="…"` if set; see the escaping below) and, if set, a
/// `Content-Type` header (control characters removed); CRLF line ends; the
/// body ends with the close delimiter and CRLF.
///
/// In `name` and `filename`, `"` and `\` are backslash-escaped and control
/// characters percent-encoded, so [`parse`] gives back the same strings
/// when they have no control characters.
///
/// The caller must choose a boundary that occurs in no part body; a
/// [`random_boundary`] does so with overwhelming probability.
pub fn encode(boundary: &str, parts: &[Part<'_>]) -> Vec<u8> {
    let size: usize = parts
        .iter()
        .map(|p| p.body.len() + p.name.len() + 128 + boundary.len())
        .sum();
    let mut out = Vec::with_capacity(size + boundary.len() + 8);
    for p in parts {
        push_part(&mut out, boundary, p);
    }
    push_close(&mut out, boundary);
    out
}

/// [`encode`] cut around the last part's body: `(head, tail)` with
/// `head + last.body + tail == encode(boundary, parts)`. A large last
/// body (the call's audio) is then sent between the two without being
/// copied into a new buffer. With no parts, the head is the whole encoding.
pub fn encode_around_last(boundary: &str, parts: &[Part<'_>]) -> (Vec<u8>, Vec<u8>) {
    let Some((last, first)) = parts.split_last() else {
        return (encode(boundary, parts), Vec::new());
    };
    let mut head =
        Vec::with_capacity(first.iter().map(|p| p.body.len() + 256).sum::<usize>() + 256);
    for p in first {
        push_part(&mut head, boundary, p);
    }
    push_part_head(&mut head, boundary, last);
    let mut tail = Vec::with_capacity(boundary.len() + 8);
    tail.extend_from_slice(b"\r\n");
    push_close(&mut tail, boundary);
    (head, tail)
}

/// One part: its head, its body, the CRLF before the next delimiter.
fn push_part(out: &mut Vec<u8>, boundary: &str, p: &Part<'_>) {
    push_part_head(out, boundary, p);
    out.extend_from_slice(p.body);
    out.extend_from_slice(b"\r\n");
}

/// A part's delimiter and headers, up to its body.
fn push_part_head(out: &mut Vec<u8>, boundary: &str, p: &Part<'_>) {
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"\r\nContent-Disposition: form-data; name=");
    push_quoted(out, &p.name);
    if let Some(f) = &p.filename {
        out.extend_from_slice(b"; filename=");
        push_quoted(out, f);
    }
    out.extend_from_slice(b"\r\n");
    if let Some(ct) = &p.content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend(ct.bytes().filter(|&b| b >= 0x20 && b != 0x7f));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The close delimiter.
fn push_close(out: &mut Vec<u8>, boundary: &str) {
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
}

/// A boundary made from 16 random bytes: `callproc-` and 32 lowercase hex
/// digits (41 characters). The caller supplies the randomness (e.g. from
/// `ring::rand::SystemRandom`).
pub fn random_boundary(random: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(41);
    s.push_str("callproc-");
    for b in random {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_is_exact() {
        assert_eq!(find(b"ab\r\n--x\r\n--b", b"\r\n--b", 0), Some(7));
        assert_eq!(find(b"\r\n--", b"\r\n--b", 0), None);
        assert_eq!(find(b"\r\n--b", b"\r\n--b", 1), None);
    }

    #[test]
    fn params() {
        assert_eq!(
            parse_params(r#"; Name="a\"b\\c\d" ; x=tok;"#).unwrap(),
            vec![
                ("name".to_owned(), r#"a"b\c\d"#.to_owned()),
                ("x".to_owned(), "tok".to_owned())
            ]
        );
        assert!(parse_params(r#"; name="abc"#).is_err());
        assert!(parse_params("; name").is_err());
        assert!(parse_params("; =x").is_err());
        assert!(parse_params("x=1").is_err());
        assert_eq!(parse_params("").unwrap(), vec![]);
    }
}
