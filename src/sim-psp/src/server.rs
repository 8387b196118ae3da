//! The sim-psp server: answers [`crate::protocol`] requests on one or more
//! listeners, one thread per connection.
//!
//! Listen addresses:
//!
//! - `unix:///path`: a plain Unix stream listener. Process mode: the guest
//!   runs as a local process and connects to this path.
//! - `hybrid:///dir/vm.vsock_9100`: the host side of *hybrid vsock*
//!   (`shared/docs/guest-init.md` §3.2). The guest does `connect(CID 2,
//!   port 9100)`; vhost-device-vsock (QEMU tests) or Firecracker / Cloud
//!   Hypervisor, run with `uds-path=/dir/vm.vsock`, turn that into a
//!   connection to the host Unix socket `/dir/vm.vsock_9100`. So this is a
//!   plain Unix listener too; the name must end in `_<port>` to catch the
//!   mistake of naming the VMM's own main socket.
//! - `vsock://any:PORT`: AF_VSOCK, for hosts with vhost-vsock (production-like
//!   QEMU, where the guest reaches the host at CID 2). Binds CID any only.
//!
//! Limits, so that no peer can exhaust the host or crash the server: a
//! request line of at most [`MAX_REQUEST_BYTES`], a read timeout per line,
//! at most [`DEFAULT_MAX_CONNECTIONS`] connections at once (more get a
//! `busy` error and are closed), and no panic on any input.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd as _, AsRawFd as _};
use std::os::unix::fs::FileTypeExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::protocol::{self, MAX_REQUEST_BYTES};
use crate::report::SimPsp;
use crate::state::hex;

/// Connections served at once; more are refused with `busy`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// How long a request line (or the idle time before it) may take.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `unix:///path`.
    Unix(PathBuf),
    /// `hybrid:///dir/<uds-name>_<port>`: a Unix listener at that path.
    Hybrid {
        /// The socket path.
        path: PathBuf,
        /// The vsock port the guest connects to (from the `_<port>` suffix).
        port: u32,
    },
    /// `vsock://any:PORT`.
    Vsock {
        /// The port.
        port: u32,
    },
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let want = "want unix:///PATH, hybrid:///DIR/UDS_PORT or vsock://any:PORT";
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("{s:?} is not a listen address ({want})"))?;
        let absolute = |rest: &str| {
            if rest.starts_with('/') {
                Ok(PathBuf::from(rest))
            } else {
                Err(format!(
                    "{s:?}: the path must be absolute ({scheme}:///run/x)"
                ))
            }
        };
        match scheme {
            "unix" => Ok(ListenAddr::Unix(absolute(rest)?)),
            "hybrid" => {
                let path = absolute(rest)?;
                let port = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.rsplit_once('_'))
                    .and_then(|(_, p)| p.parse::<u32>().ok())
                    .ok_or_else(|| {
                        format!("{s:?}: a hybrid vsock path is the VMM's uds-path + `_<port>` (hybrid:///run/vm.vsock_9100)")
                    })?;
                Ok(ListenAddr::Hybrid { path, port })
            }
            "vsock" => {
                let (cid, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| format!("{s:?}: want vsock://any:PORT"))?;
                if cid != "any" && cid != "-1" {
                    return Err(format!(
                        "{s:?}: the server binds CID any (vsock://any:PORT)"
                    ));
                }
                let port = port
                    .parse()
                    .map_err(|_| format!("{s:?}: port {port:?} is not a number"))?;
                Ok(ListenAddr::Vsock { port })
            }
            other => Err(format!("{s:?}: unknown scheme {other:?} ({want})")),
        }
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Unix(p) => write!(f, "unix://{}", p.display()),
            ListenAddr::Hybrid { path, .. } => write!(f, "hybrid://{}", path.display()),
            ListenAddr::Vsock { port } => write!(f, "vsock://any:{port}"),
        }
    }
}

impl ListenAddr {
    fn unix_path(&self) -> Option<&Path> {
        match self {
            ListenAddr::Unix(path) | ListenAddr::Hybrid { path, .. } => Some(path),
            ListenAddr::Vsock { .. } => None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding a listener failed.
    #[error("listening on {addr}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Another server already answers on this socket path.
    #[error("{path} is in use by another server")]
    InUse {
        /// The path.
        path: PathBuf,
    },
    /// The path exists and is not a socket; it is left alone.
    #[error("{path} exists and is not a socket")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Starting a thread failed.
    #[error("starting the accept thread")]
    Spawn(#[source] io::Error),
}

struct Bound {
    addr: ListenAddr,
    listener: Arc<transport::Listener>,
}

/// A bound, not yet serving, server.
pub struct Server {
    psp: Arc<SimPsp>,
    bound: Vec<Bound>,
    max_connections: usize,
    read_timeout: Duration,
}

impl Server {
    /// Binds every address (removing stale Unix socket files first, never
    /// a live one or a non-socket).
    pub fn bind(psp: Arc<SimPsp>, addrs: &[ListenAddr]) -> Result<Server, ServeError> {
        let mut bound = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let listener = match addr {
                ListenAddr::Unix(path) | ListenAddr::Hybrid { path, .. } => bind_unix(path)?,
                ListenAddr::Vsock { port } => transport::listen(&transport::Addr::Vsock {
                    cid: transport::VMADDR_CID_ANY,
                    port: *port,
                })
                .map_err(|source| ServeError::Bind {
                    addr: addr.to_string(),
                    source,
                })?,
            };
            bound.push(Bound {
                addr: addr.clone(),
                listener: Arc::new(listener),
            });
        }
        Ok(Server {
            psp,
            bound,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            read_timeout: DEFAULT_READ_TIMEOUT,
        })
    }

    /// Other limits than [`DEFAULT_MAX_CONNECTIONS`] and [`DEFAULT_READ_TIMEOUT`].
    pub fn with_limits(mut self, max_connections: usize, read_timeout: Duration) -> Server {
        self.max_connections = max_connections;
        self.read_timeout = read_timeout;
        self
    }

    /// The addresses listened on, in the order given.
    pub fn addrs(&self) -> Vec<ListenAddr> {
        self.bound.iter().map(|b| b.addr.clone()).collect()
    }

    /// Starts one accept thread per listener.
    pub fn spawn(self) -> Result<ServerHandle, ServeError> {
        let shared = Arc::new(Shared {
            psp: self.psp,
            stop: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            max_connections: self.max_connections,
            read_timeout: self.read_timeout,
        });
        let mut handle = ServerHandle {
            shared: Arc::clone(&shared),
            bound: Vec::new(),
            threads: Vec::new(),
        };
        for b in self.bound {
            let listener = Arc::clone(&b.listener);
            let label = b.addr.to_string();
            let s = Arc::clone(&shared);
            let thread = std::thread::Builder::new()
                .name("sim-psp-accept".into())
                .spawn(move || accept_loop(&s, &listener, &label))
                .map_err(ServeError::Spawn)?;
            handle.threads.push(thread);
            handle.bound.push(b);
        }
        Ok(handle)
    }
}

/// A running server.
pub struct ServerHandle {
    shared: Arc<Shared>,
    bound: Vec<Bound>,
    threads: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// Serves until the process ends.
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }

    /// Stops accepting, waits for the accept threads and removes the Unix
    /// socket files. Connections already open finish on their own (each is
    /// bounded by the read timeout).
    pub fn shutdown(self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for b in &self.bound {
            // Wakes the blocked accept(2) (it returns EINVAL on Linux).
            let _ = nix::sys::socket::shutdown(
                b.listener.as_fd().as_raw_fd(),
                nix::sys::socket::Shutdown::Both,
            );
        }
        for t in self.threads {
            let _ = t.join();
        }
        for b in &self.bound {
            if let Some(path) = b.addr.unix_path() {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Requests answered (or refused) so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

struct Shared {
    psp: Arc<SimPsp>,
    stop: AtomicBool,
    active: AtomicUsize,
    requests: AtomicU64,
    max_connections: usize,
    read_timeout: Duration,
}

/// One connection slot, taken in the accept loop and released on drop
/// (also when the connection thread could not be started).
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn bind_unix(path: &Path) -> Result<transport::Listener, ServeError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(ServeError::InUse {
                    path: path.to_owned(),
                });
            }
            // A socket nobody listens on: left by a server that was killed.
            std::fs::remove_file(path).map_err(|source| ServeError::Bind {
                addr: format!("unix://{}", path.display()),
                source,
            })?;
        }
        Ok(_) => {
            return Err(ServeError::NotASocket {
                path: path.to_owned(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ServeError::Bind {
                addr: format!("unix://{}", path.display()),
                source,
            })
        }
    }
    transport::listen(&transport::Addr::Unix(path.to_owned())).map_err(|source| ServeError::Bind {
        addr: format!("unix://{}", path.display()),
        source,
    })
}

fn accept_loop(shared: &Arc<Shared>, listener: &transport::Listener, label: &str) {
    loop {
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let mut stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                log::warn!(listener = label, error = e.to_string().as_str(); "sim-psp: accept failed");
                // EMFILE and the like: do not spin.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if shared.active.fetch_add(1, Ordering::SeqCst) >= shared.max_connections {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            log::warn!(listener = label, max = shared.max_connections; "sim-psp: busy, refusing a connection");
            let _ = stream.set_timeouts(Duration::from_secs(1));
            let _ = stream.write_all(&protocol::encode_error(&format!(
                "busy: {} connections open, try again",
                shared.max_connections
            )));
            continue;
        }
        let slot = Slot(Arc::clone(shared));
        let conn_label = label.to_owned();
        let spawned = std::thread::Builder::new()
            .name("sim-psp-conn".into())
            .spawn(move || {
                serve_connection(&slot.0, &mut stream, &conn_label);
                drop(slot);
            });
        if let Err(e) = spawned {
            // The closure (and its slot) was dropped with the error.
            log::warn!(listener = label, error = e.to_string().as_str(); "sim-psp: cannot start a connection thread");
        }
    }
}

fn serve_connection(shared: &Shared, stream: &mut transport::Stream, label: &str) {
    if let Err(e) = stream.set_timeouts(shared.read_timeout) {
        log::warn!(listener = label, error = e.to_string().as_str(); "sim-psp: setting timeouts failed");
        return;
    }
    let mut pending = Vec::new();
    loop {
        let line = match next_line(stream, &mut pending, shared.read_timeout) {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(LineError::TooLong) => {
                let n = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
                let e = protocol::RequestError::TooLong;
                log::warn!(request = n, listener = label, error = e.to_string().as_str(); "sim-psp: request refused");
                let _ = stream.write_all(&protocol::encode_error(&e.to_string()));
                return;
            }
            Err(LineError::Io(e)) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    log::warn!(listener = label, error = e.to_string().as_str(); "sim-psp: reading a request failed");
                }
                return;
            }
        };
        let n = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = answer(&shared.psp, &line, n, label);
        if let Err(e) = stream.write_all(&answer) {
            log::warn!(request = n, listener = label, error = e.to_string().as_str(); "sim-psp: writing the answer failed");
            return;
        }
    }
}

fn answer(psp: &SimPsp, line: &[u8], n: u64, label: &str) -> Vec<u8> {
    let request = match protocol::parse_request(line) {
        Ok(r) => r,
        Err(e) => {
            log::warn!(request = n, listener = label, error = e.to_string().as_str(); "sim-psp: request refused");
            return protocol::encode_error(&e.to_string());
        }
    };
    // Only a prefix: enough to match a request to a guest's log line.
    let prefix = hex(request.report_data.get(..8).unwrap_or_default());
    match psp.evidence(&request.report_data, request.vmpl) {
        Ok(bundle) => {
            log::info!(request = n, listener = label, report_data_prefix = prefix.as_str(), vmpl = request.vmpl; "sim-psp: signed report");
            protocol::encode_bundle(&bundle)
        }
        Err(e) => {
            log::warn!(request = n, listener = label, report_data_prefix = prefix.as_str(), error = e.to_string().as_str(); "sim-psp: evidence refused");
            protocol::encode_error(&e.to_string())
        }
    }
}

enum LineError {
    TooLong,
    Io(io::Error),
}

/// The next request line (newline included, if there was one), `None` at a
/// clean end of stream. Bytes after the newline stay in `pending`. The whole
/// line must arrive within `timeout`, so a peer trickling one byte at a time
/// cannot hold a connection.
fn next_line(
    stream: &mut impl Read,
    pending: &mut Vec<u8>,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, LineError> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(i) = pending.iter().position(|&b| b == b'\n') {
            if i >= MAX_REQUEST_BYTES {
                return Err(LineError::TooLong);
            }
            return Ok(Some(pending.drain(..=i).collect()));
        }
        if pending.len() >= MAX_REQUEST_BYTES {
            return Err(LineError::TooLong);
        }
        if start.elapsed() > timeout {
            return Err(LineError::Io(io::ErrorKind::TimedOut.into()));
        }
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LineError::Io(e)),
        };
        if n == 0 {
            return Ok(if pending.is_empty() {
                None
            } else {
                Some(std::mem::take(pending))
            });
        }
        pending.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_addresses() {
        assert_eq!(
            "unix:///run/p.sock".parse(),
            Ok(ListenAddr::Unix("/run/p.sock".into()))
        );
        assert_eq!(
            "hybrid:///tmp/t/vm.vsock_9100".parse(),
            Ok(ListenAddr::Hybrid {
                path: "/tmp/t/vm.vsock_9100".into(),
                port: 9100
            })
        );
        assert_eq!(
            "vsock://any:9100".parse(),
            Ok(ListenAddr::Vsock { port: 9100 })
        );
        assert_eq!(
            "vsock://-1:9100".parse(),
            Ok(ListenAddr::Vsock { port: 9100 })
        );
        for a in [
            "unix:///run/p.sock",
            "hybrid:///tmp/t/vm.vsock_9100",
            "vsock://any:9100",
        ] {
            assert_eq!(a.parse::<ListenAddr>().unwrap().to_string(), a);
        }
    }

    #[test]
    fn refuses_bad_listen_addresses_with_a_reason() {
        for (s, why) in [
            ("/run/p.sock", "not a listen address"),
            ("unix://run/p.sock", "must be absolute"),
            ("hybrid:///tmp/vm.vsock", "uds-path + `_<port>`"),
            ("hybrid:///tmp/vm.vsock_x", "uds-path + `_<port>`"),
            ("vsock://2:9100", "binds CID any"),
            ("vsock://any:x", "not a number"),
            ("tcp://127.0.0.1:1", "unknown scheme"),
        ] {
            let e = s.parse::<ListenAddr>().unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn splits_lines_and_bounds_them() {
        let t = Duration::from_secs(5);
        let mut input: &[u8] = b"one\ntwo\nthree";
        let mut pending = Vec::new();
        let mut lines = Vec::new();
        while let Ok(Some(l)) = next_line(&mut input, &mut pending, t) {
            lines.push(l);
        }
        assert_eq!(
            lines,
            [b"one\n".to_vec(), b"two\n".to_vec(), b"three".to_vec()]
        );

        let long = vec![b'a'; MAX_REQUEST_BYTES + 10];
        assert!(matches!(
            next_line(&mut long.as_slice(), &mut Vec::new(), t),
            Err(LineError::TooLong)
        ));
        let mut exact = vec![b'a'; MAX_REQUEST_BYTES - 1];
        exact.push(b'\n');
        assert!(
            matches!(next_line(&mut exact.as_slice(), &mut Vec::new(), t), Ok(Some(l)) if l.len() == MAX_REQUEST_BYTES)
        );
        let mut over = vec![b'a'; MAX_REQUEST_BYTES];
        over.push(b'\n');
        assert!(matches!(
            next_line(&mut over.as_slice(), &mut Vec::new(), t),
            Err(LineError::TooLong)
        ));
    }
}
