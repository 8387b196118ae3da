//! A small HTTPS server for tests and benchmarks, and the plain TLS echo
//! built on it (the benchmark's baseline: the same TLS and HTTP/1.1 work as
//! the call service, no processing).
//!
//! TLS 1.3 only, rustls with the ring provider, one thread per connection,
//! keep-alive, bodies framed by `Content-Length` (the `bounded-http` crate). Any
//! transport address can be listened on (`tcp://127.0.0.1:0`, `unix://…`).
//! Dropping the server stops accepting and shuts its open TCP and Unix
//! connections down.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A connection kept waiting for its next request this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A TLS 1.3 server configuration (ring) from a PEM certificate chain and
/// its PEM key.
pub fn server_config(cert_pem: &Path, key_pem: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_pem)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: {e}", cert_pem.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate", cert_pem.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_pem).map_err(|e| format!("{}: {e}", key_pem.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| format!("TLS: {e}"))?;
    Ok(Arc::new(config))
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers besides `content-length`.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A reply with one `content-type` header.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// A JSON reply.
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply::new(status, "application/json", value.to_string())
    }

    /// The same reply with another status.
    pub fn with_status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }
}

/// What a server does with requests.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, req: &bounded_http::Request) -> Reply;

    /// Answers a request that could not be read (too large, bad framing);
    /// the connection is closed afterwards. `None`: close without a word.
    fn refuse(&self, err: &bounded_http::HttpError) -> Option<Reply> {
        match err {
            bounded_http::HttpError::Io(_) => None,
            bounded_http::HttpError::BodyTooLarge { .. } => {
                Some(Reply::new(413, "text/plain", err.to_string()))
            }
            bounded_http::HttpError::HeadTooLarge => {
                Some(Reply::new(431, "text/plain", err.to_string()))
            }
            _ => Some(Reply::new(400, "text/plain", err.to_string())),
        }
    }
}

impl<F: Fn(&bounded_http::Request) -> Reply + Send + Sync + 'static> Handler for F {
    fn handle(&self, req: &bounded_http::Request) -> Reply {
        self(req)
    }
}

/// A running server; dropping it stops it.
pub struct TlsServer {
    /// The address it listens on (the port actually bound for port 0).
    pub addr: transport::Addr,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<HashMap<u64, Closer>>>,
}

/// The plain TLS echo (see [`start_tls_echo`]).
pub type EchoServer = TlsServer;

/// A way to shut an accepted connection down from another thread.
enum Closer {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Closer {
    fn of(stream: &transport::Stream) -> Option<Closer> {
        match stream {
            transport::Stream::Tcp(s) => s.try_clone().ok().map(Closer::Tcp),
            transport::Stream::Unix(s) => s.try_clone().ok().map(Closer::Unix),
            transport::Stream::Vsock(_) => None,
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Closer::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Closer::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

impl TlsServer {
    /// Listens on `listen` and serves `handler` over TLS with `tls`, each
    /// request's head and body bounded by `limits`.
    pub fn start(
        listen: &transport::Addr,
        tls: Arc<rustls::ServerConfig>,
        limits: bounded_http::Limits,
        handler: impl Handler,
    ) -> std::io::Result<TlsServer> {
        let listener = transport::listen(listen)?;
        let addr = listener
            .local_addr()
            .parse::<transport::Addr>()
            .unwrap_or_else(|_| listen.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<HashMap<u64, Closer>>> = Arc::default();
        let handler: Arc<dyn Handler> = Arc::new(handler);
        let (stop2, open2) = (Arc::clone(&stop), Arc::clone(&open));
        std::thread::Builder::new()
            .name("tls-server".into())
            .spawn(move || {
                let ids = AtomicU64::new(0);
                loop {
                    let accepted = listener.accept();
                    if stop2.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = accepted else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    if let Some(c) = Closer::of(&stream) {
                        open2.lock().unwrap().insert(id, c);
                    }
                    let (tls, handler, open) =
                        (Arc::clone(&tls), Arc::clone(&handler), Arc::clone(&open2));
                    let spawned =
                        std::thread::Builder::new()
                            .name("tls-conn".into())
                            .spawn(move || {
                                serve_connection(stream, tls, limits, handler.as_ref());
                                open.lock().unwrap().remove(&id);
                            });
                    if spawned.is_err() {
                        open2.lock().unwrap().remove(&id);
                    }
                }
            })?;
        Ok(TlsServer { addr, stop, open })
    }

    /// The TCP port, for a `tcp://` server.
    pub fn port(&self) -> Option<u16> {
        match &self.addr {
            transport::Addr::Tcp(hp) => hp.rsplit(':').next().and_then(|p| p.parse().ok()),
            _ => None,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = transport::connect(&self.addr);
        if let Ok(open) = self.open.lock() {
            open.values().for_each(Closer::shutdown);
        }
        if let transport::Addr::Unix(path) = &self.addr {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn serve_connection(
    stream: transport::Stream,
    tls: Arc<rustls::ServerConfig>,
    limits: bounded_http::Limits,
    handler: &dyn Handler,
) {
    if stream.set_timeouts(IDLE_TIMEOUT).is_err() {
        return;
    }
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, rustls::StreamOwned::new(conn, stream));
    loop {
        let req = match bounded_http::read_request(&mut reader, limits) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                if let Some(reply) = handler.refuse(&e) {
                    let _ = write(reader.get_mut(), &reply.with_header("connection", "close"));
                }
                return;
            }
        };
        let reply = handler.handle(&req);
        let close = req.wants_close()
            || reply
                .headers
                .iter()
                .any(|(n, v)| n == "connection" && v.eq_ignore_ascii_case("close"));
        if write(reader.get_mut(), &reply).is_err() || close {
            reader.get_mut().conn.send_close_notify();
            let _ = reader.get_mut().flush();
            return;
        }
    }
}

fn write(w: &mut impl Write, reply: &Reply) -> std::io::Result<()> {
    let mut headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    // Every HTTP/1.1 origin server with a clock sends Date (RFC 9110
    // §6.6.1); the guest treats an authenticated peer's Date as a witness
    // of real time.
    let date = http_date(std::time::SystemTime::now());
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("date")) {
        headers.push(("date", &date));
    }
    bounded_http::write_response(w, reply.status, &headers, &reply.body)
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let name = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {d:02} {name} {year} {h:02}:{m:02}:{s:02} GMT")
}

/// The plain TLS echo: `POST /echo` answers 200 with the request's body
/// (`application/octet-stream`); anything else is 404. Bodies up to 64 MiB.
pub fn start_tls_echo(listen: &transport::Addr, cert: &Path, key: &Path) -> EchoServer {
    let limits = bounded_http::Limits {
        head_bytes: 64 * 1024,
        body_bytes: 64 * 1024 * 1024,
    };
    let tls = server_config(cert, key).unwrap_or_else(|e| panic!("echo server: {e}"));
    TlsServer::start(listen, tls, limits, |req: &bounded_http::Request| {
        if req.method == "POST" && req.path == "/echo" {
            Reply::new(200, "application/octet-stream", req.body.clone())
        } else {
            Reply::new(
                404,
                "text/plain",
                format!("no route for {} {}\n", req.method, req.path),
            )
        }
    })
    .unwrap_or_else(|e| panic!("echo server on {listen}: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates_match_rfc_9110s_example() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(super::http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_601_600);
        assert_eq!(super::http_date(t), "Mon, 07 Dec 2026 00:00:00 GMT");
    }
}
