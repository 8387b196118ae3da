//! A local stand-in for an OpenAI-compatible transcription API (a
//! third-party SaaS), following its published request and response shapes:
//!
//! `POST /v1/audio/transcriptions`, `Authorization: Bearer <key>`, a
//! `multipart/form-data` body with fields `file` (required), `model`
//! (required), `language` (ISO-639-1, optional), `response_format`
//! (`json` default → `{"text": …}`; `verbose_json` → adds `task`,
//! `language`, `duration`, `segments`; `text`, `srt`, `vtt` → plain text);
//! other fields (`prompt`, `temperature`, …) are accepted and ignored.
//! Errors are OpenAI's `{"error":{"message","type","param","code"}}`: 401
//! `invalid_api_key` for a wrong or missing key, 400 for a missing field,
//! a file that is not RIFF/WAVE, or a bad value, 404/405 for other routes,
//! 413 beyond 25 MiB.
//!
//! It answers at once with the configured transcript (zero added latency,
//! keep-alive), counts requests and records what the last transcription
//! request carried, so tests can assert what the guest sent.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::echo::{server_config, Handler, Reply, TlsServer};

/// The endpoint.
pub const PATH: &str = "/v1/audio/transcriptions";

/// OpenAI's file size limit.
const MAX_FILE: usize = 25 * 1024 * 1024;

/// What the last transcription request carried.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenRequest {
    /// Whether `Authorization: Bearer <key>` carried the configured key.
    pub auth_ok: bool,
    /// Field `model` (empty if absent).
    pub model: String,
    /// Field `language`.
    pub language: Option<String>,
    /// Field `response_format`.
    pub response_format: Option<String>,
    /// Length of field `file` in bytes (0 if absent).
    pub file_bytes: usize,
    /// The `file` part's filename.
    pub file_name: Option<String>,
    /// The `file` part's Content-Type.
    pub file_content_type: Option<String>,
    /// The status the stand-in answered.
    pub status: u16,
}

/// The running stand-in; dropping it stops it.
pub struct TranscriptionStandIn {
    /// Its loopback TCP port (127.0.0.1).
    pub port: u16,
    state: Arc<State>,
    _server: TlsServer,
}

struct State {
    api_key: String,
    transcript: String,
    requests: AtomicU64,
    last: Mutex<Option<SeenRequest>>,
}

impl TranscriptionStandIn {
    /// Serves HTTPS on 127.0.0.1 (a free port) with the certificate and key
    /// (PEM files; `enclavectl dev-pki` writes `transcribe.pem` for
    /// `transcribe.enclave.local`), accepting `api_key` and answering
    /// `transcript`. Panics if it cannot (test support).
    pub fn start(
        cert_pem: &Path,
        key_pem: &Path,
        api_key: &str,
        transcript: &str,
    ) -> TranscriptionStandIn {
        TranscriptionStandIn::try_start("127.0.0.1:0", cert_pem, key_pem, api_key, transcript)
            .unwrap_or_else(|e| panic!("transcription stand-in: {e}"))
    }

    /// As [`start`](Self::start), on a given `host:port`.
    pub fn try_start(
        listen: &str,
        cert_pem: &Path,
        key_pem: &Path,
        api_key: &str,
        transcript: &str,
    ) -> Result<TranscriptionStandIn, String> {
        let tls = server_config(cert_pem, key_pem)?;
        let state = Arc::new(State {
            api_key: api_key.to_owned(),
            transcript: transcript.to_owned(),
            requests: AtomicU64::new(0),
            last: Mutex::new(None),
        });
        // The form's other fields and headers ride along with the file.
        let limits = bounded_http::Limits {
            head_bytes: 64 * 1024,
            body_bytes: MAX_FILE + 64 * 1024,
        };
        let addr = transport::Addr::Tcp(listen.to_owned());
        let server = TlsServer::start(&addr, tls, limits, Api(Arc::clone(&state)))
            .map_err(|e| format!("listen on {listen}: {e}"))?;
        let port = server
            .port()
            .ok_or_else(|| format!("no TCP port bound for {}", server.addr))?;
        Ok(TranscriptionStandIn {
            port,
            state,
            _server: server,
        })
    }

    /// HTTP requests received so far (all routes).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// What the last request to the transcription endpoint carried.
    pub fn last(&self) -> Option<SeenRequest> {
        self.state.last.lock().ok().and_then(|l| l.clone())
    }
}

struct Api(Arc<State>);

/// OpenAI's error body.
fn api_error(
    status: u16,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"message": message, "type": kind, "param": param, "code": code}}),
    )
}

fn invalid_request(message: &str, param: Option<&str>) -> Reply {
    api_error(400, message, "invalid_request_error", param, None)
}

impl Handler for Api {
    fn handle(&self, req: &bounded_http::Request) -> Reply {
        let n = self.0.requests.fetch_add(1, Ordering::SeqCst);
        let reply = self
            .route(req)
            .with_header("x-request-id", &format!("req_standin_{n:08x}"));
        reply.with_header("openai-processing-ms", "0")
    }

    fn refuse(&self, err: &bounded_http::HttpError) -> Option<Reply> {
        self.0.requests.fetch_add(1, Ordering::SeqCst);
        match err {
            bounded_http::HttpError::Io(_) => None,
            bounded_http::HttpError::BodyTooLarge { declared, .. } => Some(api_error(
                413,
                &format!(
                    "Maximum content size limit ({MAX_FILE}) exceeded ({declared} bytes read)"
                ),
                "server_error",
                None,
                None,
            )),
            other => Some(invalid_request(
                &format!("Could not parse the request: {other}"),
                None,
            )),
        }
    }
}

impl Api {
    fn route(&self, req: &bounded_http::Request) -> Reply {
        let path = req.path.split('?').next().unwrap_or("");
        if path != PATH {
            return invalid_request(&format!("Invalid URL ({} {})", req.method, req.path), None)
                .with_status(404);
        }
        if req.method != "POST" {
            return invalid_request(
                &format!("Invalid method for URL ({} {})", req.method, req.path),
                None,
            )
            .with_status(405);
        }
        let auth_ok = req
            .header("authorization")
            .and_then(|v| v.split_once(' '))
            .is_some_and(|(scheme, key)| {
                scheme.eq_ignore_ascii_case("bearer") && key.trim() == self.0.api_key
            });
        let form = req
            .header("content-type")
            .ok_or("no Content-Type")
            .and_then(|ct| parse_form(ct, &req.body));
        let field = |name: &str| {
            form.as_ref()
                .ok()
                .and_then(|f| f.iter().find(|p| p.name == name))
        };
        let text_field =
            |name: &str| field(name).map(|p| String::from_utf8_lossy(&p.body).trim().to_owned());
        let file = field("file");
        let mut seen = SeenRequest {
            auth_ok,
            model: text_field("model").unwrap_or_default(),
            language: text_field("language"),
            response_format: text_field("response_format"),
            file_bytes: file.map_or(0, |f| f.body.len()),
            file_name: file.and_then(|f| f.filename.clone()),
            file_content_type: file.and_then(|f| f.content_type.clone()),
            status: 0,
        };
        let reply = self.transcribe(auth_ok, req, &form, &seen);
        seen.status = reply.status;
        if let Ok(mut last) = self.0.last.lock() {
            *last = Some(seen);
        }
        reply
    }

    fn transcribe(
        &self,
        auth_ok: bool,
        req: &bounded_http::Request,
        form: &Result<Vec<FormPart>, &'static str>,
        seen: &SeenRequest,
    ) -> Reply {
        if !auth_ok {
            return api_error(
                401,
                "Incorrect API key provided",
                "invalid_request_error",
                None,
                Some("invalid_api_key"),
            );
        }
        let form = match form {
            Ok(f) => f,
            Err(why) => {
                let ct = req.header("content-type").unwrap_or("");
                return if ct.to_ascii_lowercase().starts_with("multipart/form-data") {
                    invalid_request(&format!("Could not parse multipart form: {why}"), None)
                } else {
                    invalid_request(
                        &format!(
                            "Invalid Content-Type header ({ct}), expected multipart/form-data."
                        ),
                        None,
                    )
                };
            }
        };
        let Some(file) = form.iter().find(|p| p.name == "file") else {
            return invalid_request("Missing required parameter: 'file'.", Some("file"));
        };
        if seen.model.is_empty() {
            return invalid_request("you must provide a model parameter", None);
        }
        if file.body.len() > MAX_FILE {
            return api_error(
                413,
                &format!(
                    "Maximum content size limit ({MAX_FILE}) exceeded ({} bytes read)",
                    file.body.len()
                ),
                "server_error",
                None,
                None,
            );
        }
        let Some(duration) = wav_duration(&file.body) else {
            return invalid_request(
                "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']",
                None,
            );
        };
        if let Some(lang) = &seen.language {
            if lang.len() != 2 || !lang.bytes().all(|b| b.is_ascii_lowercase()) {
                return invalid_request(&format!("Invalid language '{lang}'. Language parameter must be specified in ISO-639-1 format."), Some("language"));
            }
        }
        let text = &self.0.transcript;
        match seen.response_format.as_deref().unwrap_or("json") {
            "json" => Reply::json(200, &json!({"text": text})),
            "verbose_json" => Reply::json(
                200,
                &json!({
                    "task": "transcribe",
                    "language": language_name(seen.language.as_deref().unwrap_or("en")),
                    "duration": duration,
                    "text": text,
                    "segments": [],
                }),
            ),
            "text" => Reply::new(200, "text/plain; charset=utf-8", format!("{text}\n")),
            "srt" => Reply::new(200, "text/plain; charset=utf-8", format!("1\n00:00:00,000 --> {}\n{text}\n\n", timestamp(duration, ','))),
            "vtt" => Reply::new(200, "text/plain; charset=utf-8", format!("WEBVTT\n\n00:00:00.000 --> {}\n{text}\n\n", timestamp(duration, '.'))),
            other => invalid_request(&format!("'{other}' is not one of ['json', 'text', 'srt', 'verbose_json', 'vtt'] - 'response_format'"), None),
        }
    }
}

/// `HH:MM:SS<sep>mmm`.
fn timestamp(secs: f64, sep: char) -> String {
    let ms = (secs * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// The language's English name, as `verbose_json` reports it.
fn language_name(code: &str) -> &str {
    match code {
        "en" => "english",
        "it" => "italian",
        "de" => "german",
        "fr" => "french",
        "es" => "spanish",
        "pt" => "portuguese",
        "nl" => "dutch",
        other => other,
    }
}

/// The duration of a RIFF/WAVE file in seconds; `None` if it is not one.
/// A file without a usable `fmt `/`data` pair still counts as WAVE
/// (duration 0), as long as its header says so.
fn wav_duration(bytes: &[u8]) -> Option<f64> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (mut pos, mut byte_rate, mut data) = (12usize, None, None);
    while let (Some(id), Some(size)) = (bytes.get(pos..pos + 4), u32_at(pos + 4)) {
        let size = size as usize;
        match id {
            b"fmt " => byte_rate = u32_at(pos + 16),
            b"data" => data = Some(size.min(bytes.len().saturating_sub(pos + 8))),
            _ => {}
        }
        pos = pos
            .saturating_add(8)
            .saturating_add(size)
            .saturating_add(size & 1);
    }
    match (byte_rate, data) {
        (Some(rate), Some(len)) if rate > 0 => Some(len as f64 / f64::from(rate)),
        _ => Some(0.0),
    }
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormPart {
    /// The `name` parameter of its Content-Disposition.
    pub name: String,
    /// The `filename` parameter.
    pub filename: Option<String>,
    /// Its Content-Type.
    pub content_type: Option<String>,
    /// Its bytes.
    pub body: Vec<u8>,
}

/// Parses a `multipart/form-data` body (RFC 7578) given the request's
/// Content-Type. Strict about framing: every delimiter is CRLF-framed and
/// the close delimiter must be present.
pub fn parse_form(content_type: &str, body: &[u8]) -> Result<Vec<FormPart>, &'static str> {
    let (media, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !media.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err("not multipart/form-data");
    }
    let boundary = parameters(params)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or("no boundary parameter")?;
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let framed = [b"\r\n".as_slice(), delimiter].concat();
    // The first delimiter: at the very start, or after a preamble.
    let mut pos = if body.starts_with(delimiter) {
        delimiter.len()
    } else {
        find(body, &framed, 0).ok_or("no opening delimiter")? + framed.len()
    };
    let mut parts = Vec::new();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then CRLF.
        let line_end = find(body, b"\r\n", pos).ok_or("truncated delimiter line")?;
        if body[pos..line_end]
            .iter()
            .any(|b| *b != b' ' && *b != b'\t')
        {
            return Err("garbage after a delimiter");
        }
        let head_start = line_end + 2;
        if body[head_start..].starts_with(b"\r\n") {
            return Err("a part has no headers");
        }
        let head_end = find(body, b"\r\n\r\n", head_start).ok_or("part headers not terminated")?;
        let content_start = head_end + 4;
        let next = find(body, &framed, content_start).ok_or("no closing delimiter")?;
        let head = std::str::from_utf8(&body[head_start..head_end])
            .map_err(|_| "part headers are not UTF-8")?;
        let mut part = FormPart {
            name: String::new(),
            filename: None,
            content_type: None,
            body: body[content_start..next].to_vec(),
        };
        let mut named = false;
        for line in head.split("\r\n").filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').ok_or("bad part header")?;
            if name.trim().eq_ignore_ascii_case("content-disposition") {
                let (kind, params) = value.split_once(';').unwrap_or((value, ""));
                if !kind.trim().eq_ignore_ascii_case("form-data") {
                    return Err("part disposition is not form-data");
                }
                for (k, v) in parameters(params) {
                    if k.eq_ignore_ascii_case("name") {
                        part.name = v;
                        named = true;
                    } else if k.eq_ignore_ascii_case("filename") {
                        part.filename = Some(v);
                    }
                }
            } else if name.trim().eq_ignore_ascii_case("content-type") {
                part.content_type = Some(value.trim().to_owned());
            }
        }
        if !named {
            return Err("a part has no name");
        }
        parts.push(part);
        pos = next + framed.len();
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    // Candidates by the needle's first byte, then a compare: a memcmp at
    // every offset of a 480 KB upload made this stand-in cost more CPU
    // than the enclave it serves in scripts/bench-calls.
    let (&first, _) = needle.split_first()?;
    let hay = haystack.get(from..)?;
    let mut at = 0;
    while let Some(i) = hay.get(at..)?.iter().position(|&b| b == first) {
        let start = at + i;
        if hay.get(start..start + needle.len())? == needle {
            return Some(from + start);
        }
        at = start + 1;
    }
    None
}

/// `; k=v; k="quoted \" v"` parameters, in order.
fn parameters(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ';' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            while chars.peek().is_some_and(|c| *c != ';') {
                chars.next();
            }
        } else {
            value = chars
                .by_ref()
                .take_while(|c| *c != ';')
                .collect::<String>()
                .trim()
                .to_owned();
        }
        out.push((key.trim().to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_with_and_without_preamble() {
        let body = b"preamble\r\n--xyz\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n\
                     --xyz  \r\nContent-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--\r\n\r\n--xyz--\r\n";
        let parts = parse_form("multipart/form-data; boundary=\"xyz\"", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].body.as_slice()),
            ("model", &b"whisper-1"[..])
        );
        assert_eq!(parts[1].filename.as_deref(), Some("a \"b\".wav"));
        assert_eq!(parts[1].content_type.as_deref(), Some("audio/wav"));
        assert_eq!(parts[1].body, b"RIFF\r\n--\r\n");
        let empty = b"--xyz\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n\r\n--xyz--";
        assert_eq!(
            parse_form("multipart/form-data; boundary=xyz", empty).unwrap()[0].body,
            b""
        );
    }

    #[test]
    fn bad_forms_are_refused() {
        let ct = "multipart/form-data; boundary=xyz";
        assert!(parse_form("application/json", b"{}").is_err());
        assert!(parse_form("multipart/form-data", b"").is_err());
        assert!(parse_form(
            ct,
            b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end"
        )
        .is_err());
        assert!(parse_form(
            ct,
            b"--xyz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--xyz--"
        )
        .is_err());
        assert!(parse_form(ct, b"nothing here").is_err());
    }

    #[test]
    fn wav_durations() {
        let mut wav =
            b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data"
                .to_vec();
        wav.extend_from_slice(&16000u32.to_le_bytes());
        wav.extend(std::iter::repeat_n(0u8, 16000));
        assert_eq!(wav_duration(&wav), Some(1.0));
        assert_eq!(wav_duration(b"RIFF\0\0\0\0WAVE"), Some(0.0));
        assert_eq!(wav_duration(b"ID3\x03 not a wav"), None);
        assert_eq!(timestamp(3723.5, ','), "01:02:03,500");
    }
}
