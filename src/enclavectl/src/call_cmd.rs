//! `enclavectl call`: a client of the guest's call service, the way a
//! platform agent uses it.
//!
//! ```text
//! enclavectl call FILE.wav --metadata JSON|@FILE --addr URL --ca CA.pem
//!                 --cert CLIENT.pem --key CLIENT-KEY.pem
//!                 [--server-name NAME] [--timeout-ms N]
//! enclavectl call --health  --addr URL --ca CA.pem [--cert … --key …]  # GET /health/enclave
//! enclavectl call --metrics --addr URL --ca CA.pem --cert … --key …    # GET /metrics
//! ```
//!
//! The service answers `/v1/calls` and `/metrics` only over mutual TLS:
//! `--cert`/`--key` are the platform's client certificate (issued by the
//! CA the guest pins as `service.client_ca`; `enclavectl dev-pki` writes
//! `platform-client.pem` for development).
//!
//! A call is `POST /v1/calls` with a `multipart/form-data` body: part
//! `metadata` (`application/json`) and part `audio` (`audio/wav`, the
//! file's bytes, its base name as the filename). HTTPS is TLS 1.3 only
//! (rustls, ring), trusting the one CA in `--ca` and nothing else; `--addr`
//! is any transport URL (`tcp://HOST:PORT` for the proxy's ingress,
//! `unix://`, `hybrid://`, `vsock://`).
//!
//! The response body goes to stdout (JSON pretty-printed, other bodies as
//! they came). Exit status: 0 for a 2xx answer, 1 for any other answer (its
//! body, usually the JSON error, is printed all the same), 2 for usage,
//! connection and TLS errors, which are described on stderr.

use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::ArgGroup;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use transport::Addr;

use crate::CmdResult;

/// Exit status of a usage, connection or TLS error.
const USAGE: u8 = 2;

/// Largest response head and body accepted.
const RESPONSE_LIMITS: bounded_http::Limits = bounded_http::Limits {
    head_bytes: 64 * 1024,
    body_bytes: 16 * 1024 * 1024,
};

/// Arguments of `enclavectl call`.
#[derive(clap::Args)]
#[command(group(ArgGroup::new("what").required(true).args(["file", "health", "metrics"])))]
pub struct Args {
    /// The call's audio (WAV), sent as part `audio` of `POST /v1/calls`.
    #[arg(value_name = "FILE.wav", requires = "metadata")]
    file: Option<PathBuf>,
    /// The call's metadata, sent as part `metadata`: JSON text, or `@FILE`
    /// to read it from a file. It must be a JSON object.
    #[arg(long, value_name = "JSON|@FILE", requires = "file")]
    metadata: Option<String>,
    /// `GET /health/enclave` instead of a call.
    #[arg(long)]
    health: bool,
    /// `GET /metrics` instead of a call.
    #[arg(long)]
    metrics: bool,
    /// The service's address: tcp://HOST:PORT (the proxy's ingress),
    /// unix:///PATH, hybrid:///PATH:PORT or vsock://CID:PORT.
    #[arg(long, value_name = "URL")]
    addr: Addr,
    /// The CA that issued the service's certificate (PEM); the only one
    /// trusted.
    #[arg(long, value_name = "CA.pem")]
    ca: PathBuf,
    /// The client certificate (PEM, leaf first) presented for mutual TLS:
    /// one the platform CA issued (`service.client_ca`). `/v1/calls` and
    /// `/metrics` answer 401 without it.
    #[arg(long, value_name = "CERT.pem", requires = "key")]
    cert: Option<PathBuf>,
    /// The private key of `--cert` (PEM, PKCS#8, SEC1 or PKCS#1).
    #[arg(long, value_name = "KEY.pem", requires = "cert")]
    key: Option<PathBuf>,
    /// The name the service's certificate must carry (also the Host header).
    #[arg(long, value_name = "NAME", default_value = "call.enclave.local")]
    server_name: String,
    /// Bound on connecting and on each read and write, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    timeout_ms: u64,
}

/// Why a request could not be made or answered. Every variant exits 2.
#[derive(Debug)]
pub enum CallError {
    /// Bad input: arguments, files, metadata.
    Usage(String),
    /// The address could not be connected to.
    Connect {
        /// The address.
        addr: Addr,
        /// The cause.
        source: io::Error,
    },
    /// The TLS handshake or a TLS record failed (certificate not issued by
    /// the pinned CA, wrong name, protocol version, …).
    Tls {
        /// The address.
        addr: Addr,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// The connection failed or timed out after it was set up.
    Io {
        /// The address.
        addr: Addr,
        /// What we were doing.
        during: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// The answer is not an acceptable HTTP/1.1 response.
    Http {
        /// The address.
        addr: Addr,
        /// The cause.
        source: bounded_http::HttpError,
    },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Usage(msg) => f.write_str(msg),
            CallError::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
            CallError::Tls { addr, source } => write!(f, "TLS with {addr} failed: {source}"),
            CallError::Io {
                addr,
                during,
                source,
            } if is_timeout(source) => {
                write!(f, "{addr}: timed out {during} (--timeout-ms)")
            }
            CallError::Io {
                addr,
                during,
                source,
            } if source.kind() == io::ErrorKind::UnexpectedEof => {
                write!(f, "{addr}: the connection was closed {during}")
            }
            CallError::Io {
                addr,
                during,
                source,
            } => write!(f, "{addr}: {during}: {source}"),
            CallError::Http { addr, source } => write!(f, "{addr}: bad HTTP response: {source}"),
        }
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Usage(_) => None,
            CallError::Connect { source, .. } | CallError::Io { source, .. } => Some(source),
            CallError::Tls { source, .. } => Some(source),
            CallError::Http { source, .. } => Some(source),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The rustls error inside an I/O error, if that is what it is.
fn tls_cause(e: &io::Error) -> Option<rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned()
}

/// An I/O error on an established stream: a TLS error if rustls raised it.
fn stream_error(addr: &Addr, during: &'static str, e: io::Error) -> CallError {
    match tls_cause(&e) {
        Some(source) => CallError::Tls {
            addr: addr.clone(),
            source,
        },
        None => CallError::Io {
            addr: addr.clone(),
            during,
            source: e,
        },
    }
}

/// A request to make.
struct Outgoing {
    method: &'static str,
    path: &'static str,
    content_type: Option<String>,
    accept: &'static str,
    body: Vec<u8>,
}

/// Runs `enclavectl call`.
pub fn run(args: Args) -> CmdResult {
    match call(&args) {
        Ok(resp) => {
            print_body(&resp.body)?;
            if (200..300).contains(&resp.status) {
                Ok(ExitCode::SUCCESS)
            } else {
                let retry = resp
                    .header("retry-after")
                    .map(|s| format!(" (Retry-After: {s})"))
                    .unwrap_or_default();
                eprintln!(
                    "enclavectl call: the service answered HTTP {} {}{retry}",
                    resp.status,
                    bounded_http::reason(resp.status)
                );
                Ok(ExitCode::FAILURE)
            }
        }
        Err(e) => {
            eprintln!("enclavectl call: {e}");
            Ok(ExitCode::from(USAGE))
        }
    }
}

fn call(args: &Args) -> Result<bounded_http::Response, CallError> {
    args.addr.check_connectable().map_err(CallError::Usage)?;
    let name = ServerName::try_from(args.server_name.clone()).map_err(|_| {
        CallError::Usage(format!(
            "--server-name {:?} is not a DNS name or IP address",
            args.server_name
        ))
    })?;
    let config = client_config(&args.ca, args.cert.as_deref().zip(args.key.as_deref()))?;
    let request = if args.health {
        Outgoing {
            method: "GET",
            path: "/health/enclave",
            content_type: None,
            accept: "application/json",
            body: Vec::new(),
        }
    } else if args.metrics {
        Outgoing {
            method: "GET",
            path: "/metrics",
            content_type: None,
            accept: "text/plain",
            body: Vec::new(),
        }
    } else {
        call_request(args)?
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    exchange(
        &args.addr,
        config,
        name,
        &args.server_name,
        timeout,
        &request,
    )
}

/// `POST /v1/calls` from the file and the metadata.
fn call_request(args: &Args) -> Result<Outgoing, CallError> {
    let (Some(file), Some(metadata)) = (&args.file, &args.metadata) else {
        return Err(CallError::Usage(
            "a call needs FILE.wav and --metadata".into(),
        ));
    };
    let metadata = read_metadata(metadata)?;
    let audio = std::fs::read(file)
        .map_err(|e| CallError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let filename = form_filename(file);
    let mut random = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| CallError::Usage("the system random generator failed".into()))?;
    let boundary = format!("enclavectl-{}", crate::hex(&random));
    let parts = [
        Part {
            name: "metadata",
            filename: None,
            content_type: "application/json",
            body: &metadata,
        },
        Part {
            name: "audio",
            filename: Some(&filename),
            content_type: "audio/wav",
            body: &audio,
        },
    ];
    let body = multipart(&boundary, &parts).ok_or_else(|| {
        CallError::Usage("the multipart boundary occurs in the data; try again".into())
    })?;
    Ok(Outgoing {
        method: "POST",
        path: "/v1/calls",
        content_type: Some(format!("multipart/form-data; boundary={boundary}")),
        accept: "application/json",
        body,
    })
}

/// The `--metadata` text (inline or `@FILE`), checked to be a JSON object.
fn read_metadata(arg: &str) -> Result<Vec<u8>, CallError> {
    let (text, origin) = match arg.strip_prefix('@') {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| CallError::Usage(format!("--metadata @{path}: cannot read: {e}")))?;
            (bytes, format!("--metadata @{path}"))
        }
        None => (arg.as_bytes().to_vec(), "--metadata".to_owned()),
    };
    match serde_json::from_slice::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(_)) => Ok(text),
        Ok(_) => Err(CallError::Usage(format!("{origin}: want a JSON object"))),
        Err(e) => Err(CallError::Usage(format!("{origin}: not JSON: {e}"))),
    }
}

/// The file's base name, made safe for a quoted `filename` parameter.
fn form_filename(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_control() || c == '"' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    if safe.is_empty() {
        "call.wav".to_owned()
    } else {
        safe
    }
}

/// One part of a `multipart/form-data` body.
struct Part<'a> {
    name: &'a str,
    filename: Option<&'a str>,
    content_type: &'a str,
    body: &'a [u8],
}

/// Encodes a `multipart/form-data` body (RFC 7578, CRLF line ends).
/// `None` if the delimiter occurs in a part's data (then another boundary
/// is needed).
fn multipart(boundary: &str, parts: &[Part<'_>]) -> Option<Vec<u8>> {
    let delimiter = format!("\r\n--{boundary}");
    if parts.iter().any(|p| {
        contains(p.body, delimiter.as_bytes()) || p.body.starts_with(&delimiter.as_bytes()[2..])
    }) {
        return None;
    }
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.body.len() + 256).sum());
    for p in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = match p.filename {
            Some(f) => format!(
                "Content-Disposition: form-data; name=\"{}\"; filename=\"{f}\"\r\n",
                p.name
            ),
            None => format!("Content-Disposition: form-data; name=\"{}\"\r\n", p.name),
        };
        out.extend_from_slice(disposition.as_bytes());
        out.extend_from_slice(format!("Content-Type: {}\r\n\r\n", p.content_type).as_bytes());
        out.extend_from_slice(p.body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Some(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// TLS 1.3 only, ring, trusting only the certificates in `ca`, presenting
/// `identity` (certificate, key) when given.
fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, CallError> {
    let pem = std::fs::read(ca)
        .map_err(|e| CallError::Usage(format!("--ca {}: cannot read: {e}", ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| CallError::Usage(format!("--ca {}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| CallError::Usage(format!("--ca {}: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(CallError::Usage(format!(
            "--ca {}: no certificate in it",
            ca.display()
        )));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(|e| CallError::Usage(format!("TLS set-up: {e}")))?
    .with_root_certificates(roots);
    let config = match identity {
        None => config.with_no_client_auth(),
        Some((cert, key)) => {
            let pem = std::fs::read(cert).map_err(|e| {
                CallError::Usage(format!("--cert {}: cannot read: {e}", cert.display()))
            })?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CallError::Usage(format!("--cert {}: {e}", cert.display())))?;
            if chain.is_empty() {
                return Err(CallError::Usage(format!(
                    "--cert {}: no certificate in it",
                    cert.display()
                )));
            }
            let pem = std::fs::read(key).map_err(|e| {
                CallError::Usage(format!("--key {}: cannot read: {e}", key.display()))
            })?;
            let private = PrivateKeyDer::from_pem_slice(&pem)
                .map_err(|e| CallError::Usage(format!("--key {}: {e}", key.display())))?;
            config
                .with_client_auth_cert(chain, private)
                .map_err(|e| CallError::Usage(format!("--cert/--key: {e}")))?
        }
    };
    Ok(Arc::new(config))
}

/// Connects, bounded by `timeout` where the transport allows (TCP).
fn connect(addr: &Addr, timeout: Duration) -> Result<transport::Stream, CallError> {
    let failed = |source| CallError::Connect {
        addr: addr.clone(),
        source,
    };
    let stream = match addr {
        Addr::Tcp(hostport) => {
            let candidates: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(hostport.as_str())
                .map_err(failed)?
                .collect();
            let mut last =
                io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
            let mut connected = None;
            for sa in candidates {
                match std::net::TcpStream::connect_timeout(&sa, timeout) {
                    Ok(s) => {
                        connected = Some(s);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            let s = connected.ok_or_else(|| failed(last))?;
            s.set_nodelay(true).map_err(failed)?;
            transport::Stream::Tcp(s)
        }
        _ => transport::connect(addr).map_err(failed)?,
    };
    stream.set_timeouts(timeout).map_err(failed)?;
    Ok(stream)
}

/// One request on a new connection, closed afterwards.
fn exchange(
    addr: &Addr,
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    host: &str,
    timeout: Duration,
    req: &Outgoing,
) -> Result<bounded_http::Response, CallError> {
    let mut stream = connect(addr, timeout)?;
    let mut conn =
        rustls::ClientConnection::new(config, name).map_err(|source| CallError::Tls {
            addr: addr.clone(),
            source,
        })?;
    // The handshake on its own, so its failures are reported as such.
    while conn.is_handshaking() {
        conn.complete_io(&mut stream)
            .map_err(|e| stream_error(addr, "during the TLS handshake", e))?;
    }
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, stream));
    let mut headers = vec![
        ("accept", req.accept),
        ("connection", "close"),
        ("user-agent", "enclavectl"),
    ];
    if let Some(ct) = &req.content_type {
        headers.push(("content-type", ct.as_str()));
    }
    bounded_http::write_request(
        tls.get_mut(),
        req.method,
        host,
        req.path,
        &headers,
        &req.body,
    )
    .map_err(|e| stream_error(addr, "sending the request", e))?;
    bounded_http::read_response(&mut tls, RESPONSE_LIMITS).map_err(|e| match e {
        bounded_http::HttpError::Io(e) => stream_error(addr, "waiting for the response", e),
        source => CallError::Http {
            addr: addr.clone(),
            source,
        },
    })
}

/// The body on stdout: JSON pretty-printed (key order kept), anything else
/// as it came.
fn print_body(body: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => {
            let pretty = serde_json::to_string_pretty(&v).map_err(io::Error::other)?;
            writeln!(out, "{pretty}")?;
        }
        Err(_) => {
            out.write_all(body)?;
            if !body.is_empty() && !body.ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_encoding_is_crlf_framed() {
        let parts = [
            Part {
                name: "metadata",
                filename: None,
                content_type: "application/json",
                body: b"{}",
            },
            Part {
                name: "audio",
                filename: Some("call.wav"),
                content_type: "audio/wav",
                body: b"RIFF",
            },
        ];
        let body = multipart("b0", &parts).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "--b0\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n{}\r\n\
             --b0\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"call.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n\
             --b0--\r\n"
        );
    }

    #[test]
    fn a_boundary_found_in_the_data_is_refused() {
        let data = b"abc\r\n--b0--\r\n";
        let parts = [Part {
            name: "audio",
            filename: None,
            content_type: "audio/wav",
            body: data,
        }];
        assert!(multipart("b0", &parts).is_none());
        let parts = [Part {
            name: "audio",
            filename: None,
            content_type: "audio/wav",
            body: b"--b0 at the start",
        }];
        assert!(multipart("b0", &parts).is_none());
        let parts = [Part {
            name: "audio",
            filename: None,
            content_type: "audio/wav",
            body: b"-b0 nearly",
        }];
        assert!(multipart("b0", &parts).is_some());
    }

    #[test]
    fn filenames_are_quoted_safely() {
        assert_eq!(form_filename(Path::new("/tmp/x/call.wav")), "call.wav");
        assert_eq!(form_filename(Path::new("a\"b\\c\r\n.wav")), "a_b_c__.wav");
        assert_eq!(form_filename(Path::new("/")), "call.wav");
    }

    #[test]
    fn metadata_must_be_a_json_object() {
        assert_eq!(
            read_metadata(r#"{"call_id":"c1"}"#).unwrap(),
            br#"{"call_id":"c1"}"#
        );
        assert!(read_metadata("[1]")
            .unwrap_err()
            .to_string()
            .contains("JSON object"));
        assert!(read_metadata("{")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
        assert!(read_metadata("@/nonexistent/m.json")
            .unwrap_err()
            .to_string()
            .contains("cannot read"));
    }
}
