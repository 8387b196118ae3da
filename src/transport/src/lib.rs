//! Byte streams by URL: `vsock://CID:PORT`, `hybrid:///path/vm.vsock:PORT`,
//! `unix:///path`, `tcp://HOST:PORT`.
//!
//! `hybrid` is the host side of hybrid vsock (Firecracker, Cloud Hypervisor,
//! vhost-device-vsock): connect to the VMM's Unix socket, send
//! `CONNECT <port>\n`, and any `OK …` line means connected (vhost-device-vsock
//! answers with the guest port, Firecracker with a host port); EOF means
//! nothing listens in the guest yet. The other direction needs no scheme: a
//! guest's `connect(2, P)` arrives on the plain Unix socket `<path>_P`.
//!
//! In a VM the guest has no network of its own: everything crosses vsock to
//! an untrusted host proxy (TLS ends inside the guest, not here). Unix and TCP
//! addresses exist for process mode (tests, development) only.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use nix::sys::socket::{self, sockopt, AddressFamily, Backlog, SockFlag, SockType, VsockAddr};
use nix::sys::time::TimeVal;

/// `VMADDR_CID_ANY`: bind to whatever CID this VM has.
pub const VMADDR_CID_ANY: u32 = u32::MAX;

/// A transport address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// AF_VSOCK; `cid` [`VMADDR_CID_ANY`] (written `any` or `-1`) only for listening.
    Vsock {
        /// Context id: 2 is the host as seen from a guest.
        cid: u32,
        /// Port; ports below 1024 need CAP_NET_BIND_SERVICE to listen.
        port: u32,
    },
    /// Host side of hybrid vsock: the VMM's socket and a guest port.
    Hybrid {
        /// The VMM's Unix socket.
        uds: PathBuf,
        /// The guest port.
        port: u32,
    },
    /// A Unix stream socket path (process mode).
    Unix(PathBuf),
    /// A TCP `host:port` (process mode).
    Tcp(String),
}

impl FromStr for Addr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| {
            format!(
                "{s:?} is not an address (want vsock://CID:PORT, unix:///PATH or tcp://HOST:PORT)"
            )
        })?;
        match scheme {
            "vsock" => {
                let (cid, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| format!("{s:?}: want vsock://CID:PORT"))?;
                let cid = match cid {
                    "any" | "-1" => VMADDR_CID_ANY,
                    _ => cid
                        .parse()
                        .map_err(|_| format!("{s:?}: CID {cid:?} is not a number or `any`"))?,
                };
                let port = port
                    .parse()
                    .map_err(|_| format!("{s:?}: port {port:?} is not a number"))?;
                Ok(Addr::Vsock { cid, port })
            }
            "hybrid" => {
                let (path, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| format!("{s:?}: want hybrid:///PATH:PORT"))?;
                if !path.starts_with('/') {
                    return Err(format!("{s:?}: the socket path must be absolute"));
                }
                let port = port
                    .parse()
                    .map_err(|_| format!("{s:?}: port {port:?} is not a number"))?;
                Ok(Addr::Hybrid {
                    uds: PathBuf::from(path),
                    port,
                })
            }
            "unix" => {
                if !rest.starts_with('/') {
                    return Err(format!(
                        "{s:?}: a unix path must be absolute (unix:///run/x.sock)"
                    ));
                }
                Ok(Addr::Unix(PathBuf::from(rest)))
            }
            "tcp" => {
                let (host, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| format!("{s:?}: want tcp://HOST:PORT"))?;
                if host.is_empty() || port.parse::<u16>().is_err() {
                    return Err(format!("{s:?}: want tcp://HOST:PORT with a port 0-65535"));
                }
                Ok(Addr::Tcp(rest.to_owned()))
            }
            other => Err(format!(
                "{s:?}: unknown scheme {other:?} (want vsock, hybrid, unix or tcp)"
            )),
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Vsock {
                cid: VMADDR_CID_ANY,
                port,
            } => write!(f, "vsock://any:{port}"),
            Addr::Vsock { cid, port } => write!(f, "vsock://{cid}:{port}"),
            Addr::Hybrid { uds, port } => write!(f, "hybrid://{}:{port}", uds.display()),
            Addr::Unix(p) => write!(f, "unix://{}", p.display()),
            Addr::Tcp(hp) => write!(f, "tcp://{hp}"),
        }
    }
}

impl Addr {
    /// Refuses addresses that cannot be connected to.
    pub fn check_connectable(&self) -> Result<(), String> {
        match self {
            Addr::Vsock {
                cid: VMADDR_CID_ANY,
                ..
            } => Err(format!("{self}: cannot connect to CID `any`")),
            _ => Ok(()),
        }
    }

    /// Refuses addresses that cannot be listened on.
    pub fn check_listenable(&self) -> Result<(), String> {
        match self {
            Addr::Vsock { cid, .. } if *cid != VMADDR_CID_ANY => Err(format!(
                "{self}: a vsock listener binds CID `any` (vsock://any:PORT)"
            )),
            Addr::Hybrid { uds, port } => Err(format!(
                "{self}: guest connections to port {port} arrive on unix://{}_{port}; listen there",
                uds.display()
            )),
            _ => Ok(()),
        }
    }
}

/// A connected byte stream.
#[derive(Debug)]
pub enum Stream {
    /// AF_VSOCK.
    Vsock(OwnedFd),
    /// Unix stream socket.
    Unix(UnixStream),
    /// TCP (with `TCP_NODELAY`).
    Tcp(TcpStream),
}

/// Connects once (no retry; callers decide their retry policy).
pub fn connect(addr: &Addr) -> io::Result<Stream> {
    match addr {
        Addr::Vsock { cid, port } => {
            let fd = vsock_socket()?;
            socket::connect(fd.as_raw_fd_compat(), &VsockAddr::new(*cid, *port))?;
            Ok(Stream::Vsock(fd))
        }
        Addr::Hybrid { uds, port } => Ok(Stream::Unix(hybrid_connect(uds, *port)?)),
        Addr::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path)?)),
        Addr::Tcp(hp) => {
            let s = TcpStream::connect(hp.as_str())?;
            // Without it, a small response waits for the peer's delayed ACK
            // (about 40 ms per round trip; architecture.md, "Performance notes").
            s.set_nodelay(true)?;
            Ok(Stream::Tcp(s))
        }
    }
}

/// Connects once, giving up after `timeout` for the whole connect: a TCP
/// handshake that gets no answer (a blackholed address, a listener whose
/// accept queue is full drops SYNs) or a Unix listener whose backlog is
/// full would otherwise hold the caller for minutes, or forever. AF_VSOCK
/// is bounded by the kernel's own connect timeout (2 s by default) and the
/// host-side hybrid handshake by its 10 s read timeout.
pub fn connect_within(addr: &Addr, timeout: Duration) -> io::Result<Stream> {
    match addr {
        Addr::Vsock { .. } | Addr::Hybrid { .. } => connect(addr),
        Addr::Unix(path) => Ok(Stream::Unix(unix_connect_within(path, timeout)?)),
        Addr::Tcp(hp) => {
            let deadline = std::time::Instant::now() + timeout;
            let mut last = None;
            // A literal address resolves without a lookup (the guest has
            // no resolver; its peers are addresses).
            for sa in std::net::ToSocketAddrs::to_socket_addrs(hp.as_str())? {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                match TcpStream::connect_timeout(&sa, left) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "connect {addr}: no answer within {} ms",
                        timeout.as_millis()
                    ),
                )
            }))
        }
    }
}

/// A Unix stream connect bounded by `timeout`: a listener whose backlog is
/// full makes connect(2) wait for room, for as long as `SO_SNDTIMEO`
/// allows (none: forever), then fail with `EAGAIN`.
fn unix_connect_within(path: &std::path::Path, timeout: Duration) -> io::Result<UnixStream> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::SendTimeout, &timeval(timeout)?)?;
    match socket::connect(fd.as_raw_fd_compat(), &socket::UnixAddr::new(path)?) {
        Ok(()) => {}
        Err(nix::errno::Errno::EAGAIN) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "connect unix://{}: the listener's backlog stayed full for {} ms",
                    path.display(),
                    timeout.as_millis()
                ),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let s = UnixStream::from(fd);
    // The caller sets its own timeouts; this one was for the connect.
    s.set_write_timeout(None)?;
    Ok(s)
}

/// How [`connect_retrying`] retries.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Give up once this much time has passed (including the wait before
    /// the next attempt).
    pub deadline: Duration,
    /// The first wait; it doubles each time, up to `max_backoff`.
    pub first_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

/// Why [`connect_retrying`] gave up.
#[derive(Debug)]
pub struct RetryError {
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub last: io::Error,
}

impl fmt::Display for RetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} attempts, last: {}", self.attempts, self.last)
    }
}

impl std::error::Error for RetryError {}

/// Connects, retrying with exponential backoff while the peer is not there
/// yet: the host side of a VM (the proxy, a hybrid-vsock listener, a guest
/// port behind a hybrid socket whose handshake ends in EOF) often starts
/// after the guest. Errors that no retry can fix (no AF_VSOCK in this
/// kernel, a malformed address) end it at once. Returns the stream and the
/// number of attempts.
pub fn connect_retrying(addr: &Addr, retry: Retry) -> Result<(Stream, u32), RetryError> {
    let start = std::time::Instant::now();
    let mut backoff = retry.first_backoff;
    let mut attempts = 0;
    loop {
        attempts += 1;
        match connect(addr) {
            Ok(s) => return Ok((s, attempts)),
            Err(last) => {
                let permanent = matches!(
                    last.raw_os_error(),
                    Some(libc::EAFNOSUPPORT) | Some(libc::EINVAL)
                ) || last.kind() == io::ErrorKind::InvalidInput;
                if permanent || start.elapsed() + backoff > retry.deadline {
                    return Err(RetryError { attempts, last });
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(retry.max_backoff);
            }
        }
    }
}

/// The hybrid vsock handshake (module docs). Any failure during it, EOF
/// included, is `ConnectionRefused`: nothing listens on that guest port.
fn hybrid_connect(uds: &std::path::Path, port: u32) -> io::Result<UnixStream> {
    let mut s = UnixStream::connect(uds)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = Vec::new();
    // One byte at a time: whatever follows the OK line is the stream's
    // first data and must not be swallowed by a read-ahead buffer.
    let handshake = s
        .write_all(format!("CONNECT {port}\n").as_bytes())
        .and_then(|()| {
            let mut byte = [0u8; 1];
            while line.len() < 64 && !line.ends_with(b"\n") {
                if s.read(&mut byte)? == 0 {
                    break;
                }
                line.push(byte[0]);
            }
            Ok(())
        });
    if handshake.is_err() || !line.starts_with(b"OK") {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("guest port {port}: no listener"),
        ));
    }
    s.set_read_timeout(None)?;
    Ok(s)
}

fn vsock_socket() -> io::Result<OwnedFd> {
    Ok(socket::socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

/// `SO_RCVTIMEO`/`SO_SNDTIMEO` for a timeout, as std does for TCP and Unix
/// sockets: the kernel reads a zero timeval as "block forever", so a zero
/// timeout is refused and one under a microsecond (a deadline about to
/// pass) becomes one microsecond, never infinity.
fn timeval(t: Duration) -> io::Result<TimeVal> {
    if t.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    let micros = i64::from(t.subsec_micros());
    Ok(if secs == 0 && micros == 0 {
        TimeVal::new(0, 1)
    } else {
        TimeVal::new(secs, micros)
    })
}

impl Stream {
    /// A second handle on the same connection (for copying both ways).
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Vsock(fd) => Stream::Vsock(fd.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    /// Half-closes the sending direction (the peer reads EOF).
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Vsock(fd) => Ok(socket::shutdown(
                fd.as_raw_fd_compat(),
                socket::Shutdown::Write,
            )?),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }

    /// Bounds reads alone (`None`: block). Servers shorten it as a
    /// request's deadline approaches, so a client trickling bytes cannot
    /// hold a worker past the deadline.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Vsock(fd) => {
                let tv = match timeout {
                    None => TimeVal::new(0, 0),
                    Some(t) => timeval(t)?,
                };
                Ok(socket::setsockopt(fd, sockopt::ReceiveTimeout, &tv)?)
            }
            Stream::Unix(s) => s.set_read_timeout(timeout),
            Stream::Tcp(s) => s.set_read_timeout(timeout),
        }
    }

    /// Bounds every read and write: a peer that goes silent cannot hold us.
    pub fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Stream::Vsock(fd) => {
                let tv = timeval(timeout)?;
                socket::setsockopt(fd, sockopt::ReceiveTimeout, &tv)?;
                socket::setsockopt(fd, sockopt::SendTimeout, &tv)?;
                Ok(())
            }
            Stream::Unix(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))
            }
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Vsock(fd) => Ok(nix::unistd::read(fd.as_fd(), buf)?),
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Vsock(fd) => Ok(nix::unistd::write(fd, buf)?),
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening socket.
#[derive(Debug)]
pub enum Listener {
    /// AF_VSOCK.
    Vsock(OwnedFd),
    /// Unix stream socket.
    Unix(UnixListener),
    /// TCP.
    Tcp(TcpListener),
}

/// Binds and listens. A unix path is created here, so listeners are opened
/// before the no-write sandbox closes the filesystem.
pub fn listen(addr: &Addr) -> io::Result<Listener> {
    match addr {
        Addr::Vsock { cid, port } => {
            let fd = vsock_socket()?;
            socket::bind(fd.as_raw_fd_compat(), &VsockAddr::new(*cid, *port))?;
            socket::listen(&fd, Backlog::new(16).map_err(io::Error::from)?)?;
            Ok(Listener::Vsock(fd))
        }
        Addr::Unix(path) => Ok(Listener::Unix(UnixListener::bind(path)?)),
        Addr::Tcp(hp) => Ok(Listener::Tcp(TcpListener::bind(hp.as_str())?)),
        Addr::Hybrid { .. } => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            addr.check_listenable().err().unwrap_or_default(),
        )),
    }
}

impl Listener {
    /// Accepts one connection (blocking).
    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Vsock(fd) => {
                let raw = socket::accept4(fd.as_raw_fd_compat(), SockFlag::SOCK_CLOEXEC)?;
                Ok(Stream::Vsock(owned(raw)?))
            }
            Listener::Unix(l) => Ok(Stream::Unix(l.accept()?.0)),
            Listener::Tcp(l) => {
                let s = l.accept()?.0;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
        }
    }

    /// The address actually bound (useful with port 0 in tests).
    pub fn local_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| format!("tcp://{a}"))
                .unwrap_or_default(),
            Listener::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| format!("unix://{}", p.display())))
                .unwrap_or_default(),
            Listener::Vsock(fd) => socket::getsockname::<VsockAddr>(fd.as_raw_fd_compat())
                .map(|a| {
                    Addr::Vsock {
                        cid: a.cid(),
                        port: a.port(),
                    }
                    .to_string()
                })
                .unwrap_or_default(),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Vsock(fd) => fd.as_fd(),
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Vsock(fd) => fd.as_fd(),
            Listener::Unix(l) => l.as_fd(),
            Listener::Tcp(l) => l.as_fd(),
        }
    }
}

/// nix takes raw fds in some socket calls; this keeps the conversion in one
/// place.
trait RawFdCompat {
    fn as_raw_fd_compat(&self) -> std::os::fd::RawFd;
}

impl RawFdCompat for OwnedFd {
    fn as_raw_fd_compat(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.as_raw_fd()
    }
}

/// Takes ownership of a descriptor `accept4` just returned.
// UNSAFETY: the only unsafe in the crate: adopting a descriptor the kernel
// just handed to this thread.
#[expect(unsafe_code)]
fn owned(raw: std::os::fd::RawFd) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    if raw < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: `raw` was returned by a successful accept4 on this thread a
    // moment ago; nothing else owns or closes it, so OwnedFd becomes its only
    // owner.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a thread; its result, or a panic naming `what` if it is
    /// still running after 5 s (a connect without a bound hangs forever:
    /// the test must fail, not hang).
    fn within_5s<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{what}: still blocked after 5 s"))
    }

    /// A Unix listener with a backlog of 0 (room for one pending
    /// connection, never accepted): the second connect waits for room.
    /// `connect_within` gives up at its timeout with `TimedOut`.
    #[test]
    fn a_unix_connect_to_a_full_backlog_ends_at_its_timeout() {
        let dir = std::env::temp_dir().join(format!("ei-full-backlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("l.sock");
        let l = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        socket::bind(l.as_raw_fd_compat(), &socket::UnixAddr::new(&path).unwrap()).unwrap();
        socket::listen(&l, Backlog::new(0).unwrap()).unwrap();
        let addr = Addr::Unix(path.clone());
        let a2 = addr.clone();
        let first = within_5s("first connect", move || {
            connect_within(&a2, Duration::from_secs(1))
        });
        assert!(first.is_ok(), "{first:?}");
        let t = std::time::Instant::now();
        let a3 = addr.clone();
        let second = within_5s("second connect", move || {
            connect_within(&a3, Duration::from_millis(300))
        });
        let took = t.elapsed();
        let e = second.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(
            e.to_string().contains("backlog stayed full for 300 ms"),
            "{e}"
        );
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_secs(2),
            "{took:?}"
        );
        drop(first);
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A TCP listener on loopback whose accept queue is full drops the
    /// SYNs of further connects (no RST): without a bound, connect(2)
    /// retransmits for minutes. `connect_within` ends at its timeout.
    #[test]
    fn a_tcp_connect_to_a_full_accept_queue_ends_at_its_timeout() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        // listen(2) again on a listening socket sets its backlog anew.
        socket::listen(&l, Backlog::new(0).unwrap()).unwrap();
        let port = l.local_addr().unwrap().port();
        let addr = Addr::Tcp(format!("127.0.0.1:{port}"));
        // Fill the accept queue (its bound is the backlog + 1).
        let mut held = Vec::new();
        let mut timed_out = None;
        for _ in 0..8 {
            let a = addr.clone();
            let t = std::time::Instant::now();
            match within_5s("connect", move || {
                connect_within(&a, Duration::from_millis(300))
            }) {
                Ok(s) => held.push(s),
                Err(e) => {
                    timed_out = Some((e, t.elapsed()));
                    break;
                }
            }
        }
        let (e, took) = timed_out.expect("every connect succeeded: the accept queue never filled");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_secs(2),
            "{took:?}"
        );
        drop(l);
    }

    /// A vsock timeout under a microsecond is one microsecond on the
    /// socket, never the zero timeval the kernel reads as "forever"; zero
    /// is refused as std refuses it for TCP. Read back from a real vsock
    /// socket (created, never connected).
    #[test]
    fn a_sub_microsecond_vsock_timeout_is_not_infinite() {
        let stream = Stream::Vsock(vsock_socket().unwrap());
        let get = |s: &Stream| {
            let Stream::Vsock(fd) = s else { unreachable!() };
            let tv = socket::getsockopt(fd, sockopt::ReceiveTimeout).unwrap();
            (tv.tv_sec(), tv.tv_usec())
        };
        // The kernel keeps timeouts in jiffies (rounded up: 1 µs reads
        // back as one jiffy, 1-10 ms), never as 0.
        let tiny = |s: &Stream| {
            let (sec, usec) = get(s);
            sec == 0 && (1..=10_000).contains(&usec)
        };
        stream
            .set_read_timeout(Some(Duration::from_nanos(500)))
            .unwrap();
        assert!(tiny(&stream), "{:?}", get(&stream));
        stream.set_timeouts(Duration::from_nanos(1)).unwrap();
        assert!(tiny(&stream), "{:?}", get(&stream));
        stream
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        assert_eq!(get(&stream), (1, 500_000));
        let zero = stream.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(zero.kind(), io::ErrorKind::InvalidInput);
        assert!(stream.set_timeouts(Duration::ZERO).is_err());
        // Like TCP in std.
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpStream::connect(tcp.local_addr().unwrap()).unwrap();
        assert!(tcp.set_read_timeout(Some(Duration::ZERO)).is_err());
        stream.set_read_timeout(None).unwrap();
        assert_eq!(get(&stream), (0, 0), "None: block");
    }

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            "vsock://2:9000".parse(),
            Ok(Addr::Vsock { cid: 2, port: 9000 })
        );
        assert_eq!(
            "vsock://any:1234".parse(),
            Ok(Addr::Vsock {
                cid: VMADDR_CID_ANY,
                port: 1234
            })
        );
        assert_eq!(
            "vsock://-1:1234".parse(),
            Ok(Addr::Vsock {
                cid: VMADDR_CID_ANY,
                port: 1234
            })
        );
        assert_eq!(
            "unix:///run/a.sock".parse(),
            Ok(Addr::Unix("/run/a.sock".into()))
        );
        assert_eq!(
            "tcp://127.0.0.1:80".parse(),
            Ok(Addr::Tcp("127.0.0.1:80".into()))
        );
        assert_eq!(
            "hybrid:///run/vm.vsock:1234".parse(),
            Ok(Addr::Hybrid {
                uds: "/run/vm.vsock".into(),
                port: 1234
            })
        );
        assert!("hybrid:///run/vm.vsock:1234"
            .parse::<Addr>()
            .unwrap()
            .check_listenable()
            .unwrap_err()
            .contains("vm.vsock_1234"));
    }

    #[test]
    fn hybrid_handshake_accepts_any_ok_and_refuses_on_eof() {
        use std::io::BufRead;
        let dir = std::env::temp_dir().join(format!("ei-hybrid-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let uds = dir.join("vm.vsock");
        let l = UnixListener::bind(&uds).unwrap();
        std::thread::spawn(move || {
            let (mut a, _) = l.accept().unwrap();
            let mut line = String::new();
            io::BufReader::new(a.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line, "CONNECT 1234\n");
            a.write_all(b"OK 1073741824\nhello").unwrap(); // Firecracker style
            let (b, _) = l.accept().unwrap();
            drop(b); // nothing listens in the guest
        });
        let addr = Addr::Hybrid {
            uds: uds.clone(),
            port: 1234,
        };
        let mut s = connect(&addr).unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello", "bytes after the OK line are the stream");
        assert_eq!(
            connect(&addr).unwrap_err().kind(),
            io::ErrorKind::ConnectionRefused
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hybrid_connect_retries_until_the_guest_port_listens() {
        use std::io::BufRead;
        let dir = std::env::temp_dir().join(format!("ei-hybrid-retry-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let uds = dir.join("vm.vsock");
        let addr = Addr::Hybrid {
            uds: uds.clone(),
            port: 5000,
        };
        let retry = Retry {
            deadline: Duration::from_secs(10),
            first_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
        };
        // Nothing at all yet (ENOENT), then a device whose guest port is
        // closed twice (EOF after CONNECT), then a listener.
        let l = {
            let uds = uds.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                let l = UnixListener::bind(&uds).unwrap();
                for answer in [None, None, Some("OK 5000\n")] {
                    let (mut a, _) = l.accept().unwrap();
                    let mut line = String::new();
                    io::BufReader::new(a.try_clone().unwrap())
                        .read_line(&mut line)
                        .unwrap();
                    assert_eq!(line, "CONNECT 5000\n");
                    if let Some(ok) = answer {
                        a.write_all(ok.as_bytes()).unwrap();
                        a.write_all(b"up").unwrap();
                        return;
                    }
                }
            })
        };
        let (mut s, attempts) = connect_retrying(&addr, retry).unwrap();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"up");
        assert!(
            attempts >= 4,
            "ENOENT at least once, then two EOFs, then OK: {attempts}"
        );
        l.join().unwrap();

        // A port that never listens: a bounded number of attempts, the
        // cause kept.
        let quick = Retry {
            deadline: Duration::from_millis(300),
            first_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(50),
        };
        let err = connect_retrying(&Addr::Unix(dir.join("absent.sock")), quick).unwrap_err();
        assert!(err.attempts >= 3, "{err}");
        assert_eq!(err.last.kind(), io::ErrorKind::NotFound);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_malformed_addresses_with_a_reason() {
        for (s, why) in [
            ("vsock:2:9000", "not an address"),
            ("vsock://x:9000", "CID"),
            ("vsock://2", "want vsock://"),
            ("vsock://2:port", "port"),
            ("unix://relative", "absolute"),
            ("tcp://host", "want tcp://"),
            ("tcp://:80", "want tcp://"),
            ("tcp://h:70000", "want tcp://"),
            ("http://x:1", "scheme"),
        ] {
            let err = s.parse::<Addr>().unwrap_err();
            assert!(err.contains(why), "{s}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "vsock://2:9000",
            "vsock://any:1",
            "hybrid:///r/vm.vsock:5",
            "unix:///a",
            "tcp://[::1]:5",
        ] {
            assert_eq!(s.parse::<Addr>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn tcp_and_unix_carry_bytes_both_ways() {
        let dir = std::env::temp_dir().join(format!("ei-transport-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        for addr in [
            Addr::Tcp("127.0.0.1:0".into()),
            Addr::Unix(dir.join("s.sock")),
        ] {
            let listener = listen(&addr).unwrap();
            let bound: Addr = listener.local_addr().parse().unwrap();
            let t = std::thread::spawn(move || {
                let mut s = listener.accept().unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).unwrap();
                s.write_all(&buf).unwrap();
            });
            let mut c = connect(&bound).unwrap();
            c.set_timeouts(Duration::from_secs(5)).unwrap();
            c.write_all(b"ping").unwrap();
            let mut buf = [0u8; 4];
            c.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ping");
            t.join().unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
