//! Minimal HTTP/1.1 messages over any byte stream, with hard limits.
//!
//! Used where the stream itself matters: the verifier protocol binds the
//! evidence to the TLS connection it travels on (the TLS exporter), so the
//! challenge and the attest request must share one connection whose TLS
//! state we hold. Parsing is `httparse`'s; this crate adds the limits
//! (header bytes, body bytes), `Content-Length` framing for requests
//! (chunked requests are refused, never guessed), `Content-Length` or
//! chunked responses, and keep-alive.

#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, BufRead, Write};

/// Limits on one message.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Request or status line plus headers.
    pub head_bytes: usize,
    /// Body.
    pub body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head_bytes: 16 * 1024,
            body_bytes: 1024 * 1024,
        }
    }
}

/// Why a message was refused.
#[derive(Debug)]
pub enum HttpError {
    /// The stream failed (timeouts included).
    Io(io::Error),
    /// The head is not HTTP/1.x.
    Malformed(&'static str),
    /// The head is larger than allowed.
    HeadTooLarge,
    /// The body is larger than allowed.
    BodyTooLarge {
        /// Declared length.
        declared: usize,
        /// The limit.
        limit: usize,
    },
    /// Framing we do not accept (a request with Transfer-Encoding).
    Framing(&'static str),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "i/o: {e}"),
            HttpError::Malformed(w) => write!(f, "malformed message: {w}"),
            HttpError::HeadTooLarge => f.write_str("message head too large"),
            HttpError::BodyTooLarge { declared, limit } => {
                write!(f, "body of {declared} bytes exceeds {limit}")
            }
            HttpError::Framing(w) => write!(f, "unsupported framing: {w}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e)
    }
}

/// A request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value (first occurrence).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// Whether the connection ends after this request (RFC 9112 9.3): the
    /// `close` option in any `Connection` header (a comma-separated token
    /// list, any case); and for HTTP/1.0, unless it asked for `keep-alive`
    /// (then the answer must say `Connection: keep-alive`).
    pub fn wants_close(&self) -> bool {
        self.connection_option("close")
            || (self.minor_version == 0 && !self.connection_option("keep-alive"))
    }

    /// Whether any `Connection` header lists `option` (case-insensitive).
    pub fn connection_option(&self, option: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == "connection")
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(option))
    }
}

impl Response {
    /// A header's value (first occurrence).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Reads the head (up to the blank line), bounded. `Ok(None)` on a clean
/// EOF before any byte (the peer closed a kept-alive connection).
fn read_head<R: BufRead>(r: &mut R, limit: usize) -> Result<Option<Vec<u8>>, HttpError> {
    let mut head = Vec::with_capacity(512);
    loop {
        let before = head.len();
        let n = <&mut R as io::Read>::take(&mut *r, (limit + 1 - head.len().min(limit)) as u64)
            .read_until(b'\n', &mut head)?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(HttpError::Malformed("truncated head"))
            };
        }
        if head.len() > limit {
            return Err(HttpError::HeadTooLarge);
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            return Ok(Some(head));
        }
    }
}

fn headers_of(parsed: &[httparse::Header<'_>]) -> Result<Vec<(String, String)>, HttpError> {
    parsed
        .iter()
        .map(|h| {
            let v = std::str::from_utf8(h.value)
                .map_err(|_| HttpError::Malformed("header value is not UTF-8"))?;
            Ok((h.name.to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect()
}

fn read_body(
    r: &mut impl BufRead,
    headers: &[(String, String)],
    limit: usize,
) -> Result<Vec<u8>, HttpError> {
    let declared = declared_body_len(
        headers,
        Limits {
            head_bytes: 0,
            body_bytes: limit,
        },
    )?;
    read_exactly(r, declared)
}

/// The first allocation for a body: a declared length is only a claim, so
/// memory grows with the bytes that actually arrive (`read_to_end` at most
/// doubles it), never with what the peer announced. A peer declaring
/// 16 MiB and sending nothing costs this much, not 16 MiB.
const FIRST_BODY_ALLOC: usize = 64 * 1024;

/// Exactly `len` bytes (an early EOF is `UnexpectedEof`), allocated as
/// they arrive.
fn read_exactly(r: &mut impl BufRead, len: usize) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::with_capacity(len.min(FIRST_BODY_ALLOC));
    append_exactly(r, len, &mut body)?;
    Ok(body)
}

/// Appends exactly `len` bytes to `out`, allocated as they arrive.
fn append_exactly(r: &mut impl BufRead, len: usize, out: &mut Vec<u8>) -> Result<(), HttpError> {
    let got = io::Read::read_to_end(&mut io::Read::take(&mut *r, len as u64), out)?;
    if got < len {
        return Err(HttpError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "body shorter than its declared length",
        )));
    }
    Ok(())
}

/// Reads one request.
pub fn read_request(r: &mut impl BufRead, limits: Limits) -> Result<Option<Request>, HttpError> {
    let Some(mut req) = read_request_head(r, limits)? else {
        return Ok(None);
    };
    req.body = read_request_body(r, &req.headers, limits)?;
    Ok(Some(req))
}

/// Reads a request's head only (the body is left empty), so a server can
/// answer `Expect: 100-continue` or refuse an oversized declared body
/// before the client sends it. Read the body with [`read_request_body`].
pub fn read_request_head(
    r: &mut impl BufRead,
    limits: Limits,
) -> Result<Option<Request>, HttpError> {
    let Some(head) = read_head(r, limits.head_bytes)? else {
        return Ok(None);
    };
    let mut storage = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut storage);
    match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HttpError::Malformed("incomplete head")),
        Err(_) => return Err(HttpError::Malformed("bad request head")),
    }
    let method = req
        .method
        .ok_or(HttpError::Malformed("no method"))?
        .to_owned();
    let path = req.path.ok_or(HttpError::Malformed("no path"))?.to_owned();
    let minor_version = req.version.ok_or(HttpError::Malformed("no version"))?;
    let headers = headers_of(req.headers)?;
    Ok(Some(Request {
        method,
        path,
        headers,
        body: Vec::new(),
        minor_version,
    }))
}

/// The body a request head declares: `Content-Length` bytes, at most the
/// limit; chunked bodies are refused.
pub fn declared_body_len(headers: &[(String, String)], limits: Limits) -> Result<usize, HttpError> {
    if find(headers, "transfer-encoding").is_some() {
        return Err(HttpError::Framing(
            "transfer-encoding (only Content-Length is accepted)",
        ));
    }
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    // RFC 9112 §6.3: an invalid Content-Length, or several, is a 400 and
    // the connection cannot be trusted further. Only `1*DIGIT` is valid:
    // `usize::from_str` alone would also take "+5". Several headers are
    // refused even when they agree (a proxy in front may pick another).
    let declared = match lengths.as_slice() {
        [] => 0,
        [one] if !one.is_empty() && one.bytes().all(|b| b.is_ascii_digit()) => {
            // All digits: too large for usize is still a length, and too large.
            one.parse::<usize>().unwrap_or(usize::MAX)
        }
        [_] => return Err(HttpError::Malformed("bad content-length")),
        _ => return Err(HttpError::Malformed("several content-length headers")),
    };
    if declared > limits.body_bytes {
        return Err(HttpError::BodyTooLarge {
            declared,
            limit: limits.body_bytes,
        });
    }
    Ok(declared)
}

/// Reads the body of a request whose head [`read_request_head`] returned.
pub fn read_request_body(
    r: &mut impl BufRead,
    headers: &[(String, String)],
    limits: Limits,
) -> Result<Vec<u8>, HttpError> {
    read_body(r, headers, limits.body_bytes)
}

/// [`read_request_body`] appended to `out`, whose capacity is used first:
/// a server keeps one buffer per connection for its requests' bodies. It
/// grows, past what it has, only with bytes that arrive.
pub fn read_request_body_into(
    r: &mut impl BufRead,
    headers: &[(String, String)],
    limits: Limits,
    out: &mut Vec<u8>,
) -> Result<(), HttpError> {
    let declared = declared_body_len(headers, limits)?;
    append_exactly(r, declared, out)
}

/// Reads a chunked body (responses only: servers such as Vault's choose
/// chunking for larger bodies), bounded by `limit` in total. Trailers are
/// read and dropped.
fn read_chunked(r: &mut impl BufRead, limit: usize) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        <&mut _ as io::Read>::take(&mut *r, 1024).read_until(b'\n', &mut line)?;
        let text = std::str::from_utf8(&line).map_err(|_| HttpError::Framing("bad chunk size"))?;
        let size_hex = text.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| HttpError::Framing("bad chunk size"))?;
        if size == 0 {
            loop {
                let mut trailer = Vec::new();
                let n =
                    <&mut _ as io::Read>::take(&mut *r, 8192).read_until(b'\n', &mut trailer)?;
                if n == 0 || trailer == b"\r\n" || trailer == b"\n" {
                    return Ok(body);
                }
            }
        }
        if body.len().saturating_add(size) > limit {
            return Err(HttpError::BodyTooLarge {
                declared: body.len().saturating_add(size),
                limit,
            });
        }
        append_exactly(r, size, &mut body)?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(HttpError::Framing("chunk not followed by CRLF"));
        }
    }
}

/// Reads one response (`Content-Length` or chunked framing).
pub fn read_response(r: &mut impl BufRead, limits: Limits) -> Result<Response, HttpError> {
    let head = read_head(r, limits.head_bytes)?
        .ok_or(HttpError::Malformed("connection closed before a response"))?;
    let mut storage = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut storage);
    match resp.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HttpError::Malformed("incomplete head")),
        Err(_) => return Err(HttpError::Malformed("bad response head")),
    }
    let status = resp.code.ok_or(HttpError::Malformed("no status"))?;
    let headers = headers_of(resp.headers)?;
    let chunked =
        find(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        read_chunked(r, limits.body_bytes)?
    } else {
        read_body(r, &headers, limits.body_bytes)?
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Writes a request with a body and `Content-Length`.
pub fn write_request(
    w: &mut impl Write,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut msg = head.into_bytes();
    msg.extend_from_slice(body);
    w.write_all(&msg)?;
    w.flush()
}

/// Writes a response with a body and `Content-Length`.
pub fn write_response(
    w: &mut impl Write,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\n",
        reason(status),
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut msg = head.into_bytes();
    msg.extend_from_slice(body);
    w.write_all(&msg)?;
    w.flush()
}

/// The reason phrase of the codes we send.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connection options are a token list in any case; HTTP/1.0 keeps the
    /// connection only when it asks, HTTP/1.1 unless it asks to close.
    #[test]
    fn keep_alive_follows_the_version_and_the_connection_tokens() {
        let close = |head: &str| {
            let mut r = io::BufReader::new(head.as_bytes());
            read_request(&mut r, Limits::default())
                .unwrap()
                .unwrap()
                .wants_close()
        };
        assert!(!close("GET / HTTP/1.1\r\n\r\n"));
        assert!(close("GET / HTTP/1.1\r\nconnection: Close\r\n\r\n"));
        assert!(close(
            "GET / HTTP/1.1\r\nconnection: keep-alive, close\r\n\r\n"
        ));
        assert!(close(
            "GET / HTTP/1.1\r\nconnection: te\r\nconnection: CLOSE \r\n\r\n"
        ));
        assert!(!close("GET / HTTP/1.1\r\nconnection: closed\r\n\r\n"));
        assert!(close("GET / HTTP/1.0\r\n\r\n"), "1.0 closes by default");
        assert!(!close("GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n"));
        assert!(close(
            "GET / HTTP/1.0\r\nconnection: keep-alive, close\r\n\r\n"
        ));
    }

    #[test]
    fn request_round_trip_and_keep_alive() {
        let mut buf = Vec::new();
        write_request(
            &mut buf,
            "POST",
            "v",
            "/v1/attest",
            &[("content-type", "application/json")],
            b"{}",
        )
        .unwrap();
        write_request(&mut buf, "GET", "v", "/healthz", &[], b"").unwrap();
        let mut r = &buf[..];
        let a = read_request(&mut r, Limits::default()).unwrap().unwrap();
        assert_eq!(
            (a.method.as_str(), a.path.as_str(), a.body.as_slice()),
            ("POST", "/v1/attest", &b"{}"[..])
        );
        assert_eq!(a.header("content-type"), Some("application/json"));
        let b = read_request(&mut r, Limits::default()).unwrap().unwrap();
        assert_eq!(b.path, "/healthz");
        assert!(read_request(&mut r, Limits::default()).unwrap().is_none());
    }

    /// One buffer for a connection's bodies: each request gets exactly its
    /// own bytes, a long one after a short one and a short one after a
    /// long one, and the capacity grows only once.
    #[test]
    fn bodies_read_into_one_buffer_are_each_exact() {
        let bodies: [&[u8]; 3] = [&[b'a'; 70_000], b"short", &[b'c'; 200_000]];
        let mut wire = Vec::new();
        for body in bodies {
            write_request(&mut wire, "POST", "v", "/v1/calls", &[], body).unwrap();
        }
        let mut r = &wire[..];
        let mut buf = Vec::new();
        let mut capacities = Vec::new();
        for body in bodies {
            let head = read_request_head(&mut r, Limits::default())
                .unwrap()
                .unwrap();
            buf.clear();
            read_request_body_into(&mut r, &head.headers, Limits::default(), &mut buf).unwrap();
            assert_eq!(buf, body);
            capacities.push(buf.capacity());
        }
        assert_eq!(capacities[0], capacities[1], "reused, not reallocated");
        // Short of its declared length: an error, as for a fresh buffer.
        let short = b"POST / HTTP/1.1\r\ncontent-length: 9\r\n\r\nabc";
        let mut r = &short[..];
        let head = read_request_head(&mut r, Limits::default())
            .unwrap()
            .unwrap();
        buf.clear();
        assert!(
            read_request_body_into(&mut r, &head.headers, Limits::default(), &mut buf).is_err()
        );
    }

    #[test]
    fn head_first_then_body() {
        let msg =
            b"POST /v1/calls HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\nhello";
        let mut r = &msg[..];
        let limits = Limits {
            head_bytes: 1024,
            body_bytes: 5,
        };
        let req = read_request_head(&mut r, limits).unwrap().unwrap();
        assert_eq!(req.header("expect"), Some("100-continue"));
        assert!(req.body.is_empty());
        assert_eq!(declared_body_len(&req.headers, limits).unwrap(), 5);
        assert_eq!(
            read_request_body(&mut r, &req.headers, limits).unwrap(),
            b"hello"
        );
        let small = Limits {
            head_bytes: 1024,
            body_bytes: 4,
        };
        assert!(matches!(
            declared_body_len(&req.headers, small),
            Err(HttpError::BodyTooLarge {
                declared: 5,
                limit: 4
            })
        ));
    }

    #[test]
    fn response_round_trip() {
        let mut buf = Vec::new();
        write_response(
            &mut buf,
            403,
            &[("content-type", "application/json")],
            b"{\"x\":1}",
        )
        .unwrap();
        let resp = read_response(&mut &buf[..], Limits::default()).unwrap();
        assert_eq!(resp.status, 403);
        assert_eq!(resp.body, b"{\"x\":1}");
    }

    #[test]
    fn chunked_responses_are_decoded_within_limits() {
        let msg = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        let resp = read_response(&mut &msg[..], Limits::default()).unwrap();
        assert_eq!(resp.body, b"hello world");
        let small = Limits {
            head_bytes: 1024,
            body_bytes: 8,
        };
        assert!(matches!(
            read_response(&mut &msg[..], small),
            Err(HttpError::BodyTooLarge { .. })
        ));
        let bad = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n";
        assert!(matches!(
            read_response(&mut &bad[..], Limits::default()),
            Err(HttpError::Framing(_))
        ));
    }

    /// RFC 9112 §6.3 / RFC 9110 §8.6: `Content-Length = 1*DIGIT`; anything
    /// else, or several of them, is malformed (the service answers 400).
    #[test]
    fn content_length_is_strictly_digits_and_single() {
        let limits = Limits {
            head_bytes: 1024,
            body_bytes: 100,
        };
        let head = |cl: &[&str]| -> Vec<(String, String)> {
            cl.iter()
                .map(|v| ("content-length".to_owned(), (*v).to_owned()))
                .collect()
        };
        for bad in ["+5", "-1", "5,5", "0x5", " ", "", "5 5", "1_0", "\u{0665}"] {
            assert!(
                matches!(
                    declared_body_len(&head(&[bad]), limits),
                    Err(HttpError::Malformed("bad content-length"))
                ),
                "{bad:?} accepted"
            );
        }
        for two in [&["5", "6"][..], &["5", "5"][..], &["0", "+0"][..]] {
            assert!(
                matches!(
                    declared_body_len(&head(two), limits),
                    Err(HttpError::Malformed("several content-length headers"))
                ),
                "{two:?} accepted"
            );
        }
        assert_eq!(declared_body_len(&head(&["007"]), limits).unwrap(), 7);
        assert_eq!(declared_body_len(&head(&[]), limits).unwrap(), 0);
        // Over the limit, however large: 413, not 400.
        for (big, declared) in [
            ("101", 101),
            ("999999999999", 999_999_999_999),
            ("99999999999999999999999999", usize::MAX),
        ] {
            assert!(
                matches!(
                    declared_body_len(&head(&[big]), limits),
                    Err(HttpError::BodyTooLarge { declared: d, limit: 100 }) if d == declared
                ),
                "{big}"
            );
        }
        // Through the whole request reader too, from the wire's bytes.
        let plus = b"POST / HTTP/1.1\r\ncontent-length: +5\r\n\r\nhello";
        assert!(matches!(
            read_request(&mut &plus[..], limits),
            Err(HttpError::Malformed("bad content-length"))
        ));
    }

    /// Reads at most 5 bytes, then EOF, recording the largest buffer it
    /// was offered: a reader given a declared-length buffer sees it.
    struct Stingy {
        left: usize,
        largest_offer: usize,
    }

    impl io::Read for Stingy {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.largest_offer = self.largest_offer.max(buf.len());
            let n = buf.len().min(self.left);
            buf[..n].fill(b'x');
            self.left -= n;
            Ok(n)
        }
    }

    /// A declared length is not allocated up front: a request declaring
    /// 16 MiB whose peer sends 5 bytes never has a buffer of 16 MiB (the
    /// reader is never offered more than the first allocation), and ends
    /// in `UnexpectedEof`. The same for a chunk size of a response.
    #[test]
    fn declared_lengths_are_not_preallocated() {
        let limits = Limits {
            head_bytes: 1024,
            body_bytes: 16 * 1024 * 1024,
        };
        let headers = vec![("content-length".to_owned(), (16 * 1024 * 1024).to_string())];
        let mut r = io::BufReader::with_capacity(
            16,
            Stingy {
                left: 5,
                largest_offer: 0,
            },
        );
        let err = read_request_body(&mut r, &headers, limits).unwrap_err();
        assert!(
            matches!(&err, HttpError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof),
            "{err}"
        );
        let offered = r.get_ref().largest_offer;
        assert!(offered <= FIRST_BODY_ALLOC, "offered {offered} bytes");

        let mut r = io::BufReader::with_capacity(
            16,
            io::Read::chain(
                &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1000000\r\n"[..],
                Stingy {
                    left: 5,
                    largest_offer: 0,
                },
            ),
        );
        let err = read_response(&mut r, limits).unwrap_err();
        assert!(
            matches!(&err, HttpError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof),
            "{err}"
        );
        let offered = r.get_ref().get_ref().1.largest_offer;
        assert!(offered <= FIRST_BODY_ALLOC, "offered {offered} bytes");
        // And a body that does arrive is read whole, past the first allocation.
        let mut whole = io::BufReader::new(Stingy {
            left: 200_000,
            largest_offer: 0,
        });
        let h = vec![("content-length".to_owned(), "200000".to_owned())];
        assert_eq!(
            read_request_body(&mut whole, &h, limits).unwrap(),
            vec![b'x'; 200_000]
        );
    }

    #[test]
    fn limits_and_framing_are_enforced() {
        let small = Limits {
            head_bytes: 64,
            body_bytes: 4,
        };
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100));
        assert!(matches!(
            read_request(&mut long.as_bytes(), small),
            Err(HttpError::HeadTooLarge)
        ));
        let big = b"POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello";
        assert!(matches!(
            read_request(&mut &big[..], small),
            Err(HttpError::BodyTooLarge {
                declared: 5,
                limit: 4
            })
        ));
        let chunked = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
        assert!(matches!(
            read_request(&mut &chunked[..], Limits::default()),
            Err(HttpError::Framing(_))
        ));
        let two = b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab";
        assert!(matches!(
            read_request(&mut &two[..], Limits::default()),
            Err(HttpError::Malformed("several content-length headers"))
        ));
        let short = b"POST / HTTP/1.1\r\ncontent-length: 9\r\n\r\nab";
        assert!(matches!(
            read_request(&mut &short[..], Limits::default()),
            Err(HttpError::Io(_))
        ));
        assert!(matches!(
            read_request(&mut &b"\x00\x01garbage\r\n\r\n"[..], Limits::default()),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            read_request(&mut &b"GET / HTTP/1.1\r\n"[..], Limits::default()),
            Err(HttpError::Malformed(_))
        ));
    }
}
