//! The host proxy. Untrusted by design: it forwards bytes and nothing else.
//!
//! - Egress: the guest connects to the host (vsock port P); with hybrid
//!   vsock that arrives on the Unix socket `<uds>_P`, with kernel vsock
//!   (an AWS Nitro parent instance, a QEMU host with vhost-vsock) on a
//!   `vsock://any:P` listener. Each is forwarded to exactly one allow-listed
//!   TCP target; a port with no rule has no listener, so the guest's
//!   connection is refused.
//! - Ingress: a TCP listener forwarded to a guest port through the hybrid
//!   vsock handshake (`CONNECT <port>\n` → `OK …`), or to a guest CID and
//!   port with kernel vsock.
//!
//! No CID is assumed on either side: the guest reaches the host as CID 2
//! under QEMU and as CID 3 (the parent) in a Nitro enclave, which the
//! `vsock://any:P` listener serves alike; an ingress rule names the guest's
//! CID (a Nitro enclave's is 4 or more, 16 and up by default).
//!
//! Each connection is two copying threads; EOF in one direction is passed
//! on as a half-close (`shutdown(Write)`), so request/response protocols
//! that close their sending side still work. Concurrency is bounded; connect
//! has a timeout. TLS passes through untouched: the proxy sees ciphertext.
#![forbid(unsafe_code)]

pub mod config;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Limits shared by all rules.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Concurrent connections per rule.
    pub max_connections: usize,
    /// Connect timeout to the target.
    pub connect_timeout: Duration,
    /// A direction idle this long ends the connection.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Optional capture of every forwarded byte, for audits and tests: each
/// connection's two directions go to `<dir>/<n>.up` (towards the target)
/// and `<dir>/<n>.down`. What it records is what the untrusted host sees.
#[derive(Debug, Clone, Default)]
pub struct Tap {
    dir: Option<Arc<PathBuf>>,
    seq: Arc<AtomicUsize>,
}

impl Tap {
    /// Records into `dir` (created).
    pub fn into_dir(dir: &Path) -> io::Result<Tap> {
        std::fs::create_dir_all(dir)?;
        Ok(Tap {
            dir: Some(Arc::new(dir.to_owned())),
            seq: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn files(&self) -> (Option<std::fs::File>, Option<std::fs::File>) {
        let Some(dir) = &self.dir else {
            return (None, None);
        };
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let open = |suffix: &str| std::fs::File::create(dir.join(format!("{n}.{suffix}"))).ok();
        (open("up"), open("down"))
    }
}

/// Something both ends of a forwarded connection can do.
trait Duplex: Read + Write + Send + 'static {
    fn try_clone_box(&self) -> io::Result<Box<dyn Duplex>>;
    fn shutdown_write(&self);
    fn set_idle(&self, t: Duration);
}

impl Duplex for TcpStream {
    fn try_clone_box(&self) -> io::Result<Box<dyn Duplex>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
    fn set_idle(&self, t: Duration) {
        let _ = self.set_read_timeout(Some(t));
    }
}

impl Duplex for UnixStream {
    fn try_clone_box(&self) -> io::Result<Box<dyn Duplex>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
    fn set_idle(&self, t: Duration) {
        let _ = self.set_read_timeout(Some(t));
    }
}

impl Duplex for transport::Stream {
    fn try_clone_box(&self) -> io::Result<Box<dyn Duplex>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_write(&self) {
        let _ = transport::Stream::shutdown_write(self);
    }
    fn set_idle(&self, t: Duration) {
        let _ = self.set_read_timeout(Some(t));
    }
}

/// Copies both ways until both directions reach EOF (or idle out).
fn splice(a: Box<dyn Duplex>, b: Box<dyn Duplex>, idle: Duration, tap: &Tap) -> io::Result<()> {
    a.set_idle(idle);
    b.set_idle(idle);
    let (a2, b2) = (a.try_clone_box()?, b.try_clone_box()?);
    let (up_file, down_file) = tap.files();
    let up = std::thread::spawn(move || pump(a, b2, up_file));
    pump(b, a2, down_file);
    let _ = up.join();
    Ok(())
}

fn pump(mut from: Box<dyn Duplex>, mut to: Box<dyn Duplex>, mut record: Option<std::fs::File>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(f) = record.as_mut() {
                    let _ = f.write_all(&buf[..n]);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    to.shutdown_write();
}

struct Slots(Arc<AtomicUsize>, usize);

impl Slots {
    fn take(&self) -> Option<SlotGuard> {
        if self.0.fetch_add(1, Ordering::SeqCst) >= self.1 {
            self.0.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(SlotGuard(Arc::clone(&self.0)))
    }
}

struct SlotGuard(Arc<AtomicUsize>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Egress: forwards connections arriving on `uds` to `target` (host:port).
/// Runs forever on the calling thread.
pub fn egress(uds: &Path, target: &str, limits: Limits) -> io::Result<()> {
    let _ = std::fs::remove_file(uds);
    let listener = UnixListener::bind(uds)?;
    egress_on(listener, uds, target, limits, Tap::default())
}

/// [`egress`] on a listener already bound (so callers can report readiness).
pub fn egress_on(
    listener: UnixListener,
    uds: &Path,
    target: &str,
    limits: Limits,
    tap: Tap,
) -> io::Result<()> {
    let mut incoming = listener.incoming();
    egress_loop(
        move || {
            incoming
                .next()
                .map(|r| r.map(|s| Box::new(s) as Box<dyn Duplex>))
        },
        &uds.display().to_string(),
        target,
        limits,
        tap,
    )
}

/// Egress from a kernel-vsock listener (`vsock://any:PORT`, bound with
/// [`transport::listen`]): the same rule, whatever CID the guest sees the
/// host as.
pub fn egress_on_vsock(
    listener: transport::Listener,
    listen: &str,
    target: &str,
    limits: Limits,
    tap: Tap,
) -> io::Result<()> {
    egress_loop(
        move || Some(listener.accept().map(|s| Box::new(s) as Box<dyn Duplex>)),
        listen,
        target,
        limits,
        tap,
    )
}

fn egress_loop(
    mut accept: impl FnMut() -> Option<io::Result<Box<dyn Duplex>>>,
    listen: &str,
    target: &str,
    limits: Limits,
    tap: Tap,
) -> io::Result<()> {
    let addr = target.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{target}: no address"))
    })?;
    let slots = Slots(Arc::new(AtomicUsize::new(0)), limits.max_connections);
    log::info!(listen = listen, target = target; "egress rule");
    while let Some(guest) = accept() {
        let Ok(guest) = guest else { continue };
        let Some(slot) = slots.take() else {
            log::warn!(target = target; "egress: connection limit reached; refused");
            continue;
        };
        let (timeout, tap) = (limits.connect_timeout, tap.clone());
        std::thread::spawn(move || {
            let _slot = slot;
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(t) => {
                    let _ = t.set_nodelay(true);
                    let _ = splice(guest, Box::new(t), limits.idle_timeout, &tap);
                }
                Err(e) => {
                    log::warn!(target = addr.to_string().as_str(), error = e.to_string().as_str(); "egress: target unreachable")
                }
            }
        });
    }
    Ok(())
}

/// Binds every egress rule's socket (a stale file at that path is removed
/// first) and serves each on its own thread. These sockets are the whole of
/// the proxy's egress rule check: a guest port with no rule gets no socket,
/// so the VMM's connect to `<uds>_<port>` is refused.
pub fn serve_egress(
    rules: &[config::Egress],
    limits: Limits,
    tap: &Tap,
) -> io::Result<Vec<std::thread::JoinHandle<io::Result<()>>>> {
    let mut threads = Vec::new();
    for e in rules {
        if let Some(addr) = e.vsock_listen() {
            let addr = addr.map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
            let listener = transport::listen(&addr)
                .map_err(|err| io::Error::new(err.kind(), format!("{addr}: {err}")))?;
            let (listen, target, tap) = (addr.to_string(), e.target.clone(), tap.clone());
            threads.push(std::thread::spawn(move || {
                egress_on_vsock(listener, &listen, &target, limits, tap)
            }));
            continue;
        }
        let _ = std::fs::remove_file(&e.listen);
        let listener = UnixListener::bind(&e.listen)
            .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", e.listen.display())))?;
        let (uds, target, tap) = (e.listen.clone(), e.target.clone(), tap.clone());
        threads.push(std::thread::spawn(move || {
            egress_on(listener, &uds, &target, limits, tap)
        }));
    }
    Ok(threads)
}

/// The hybrid vsock handshake (`transport`'s `hybrid://` scheme): any
/// `OK …` line is success; EOF means nothing listens in the guest yet.
pub fn hybrid_connect(uds: &Path, port: u32, _timeout: Duration) -> io::Result<UnixStream> {
    match transport::connect(&transport::Addr::Hybrid {
        uds: uds.to_owned(),
        port,
    })? {
        transport::Stream::Unix(s) => Ok(s),
        _ => Err(io::Error::other(
            "hybrid connect returned a non-Unix stream",
        )),
    }
}

/// Ingress: forwards connections arriving on `listen` (host:port) to guest
/// `port` through the hybrid vsock socket `uds`. Runs forever.
pub fn ingress(listen: &str, uds: PathBuf, port: u32, limits: Limits) -> io::Result<()> {
    ingress_on(
        TcpListener::bind(listen)?,
        listen,
        transport::Addr::Hybrid { uds, port },
        limits,
        Tap::default(),
    )
}

/// [`ingress`] on a listener already bound, to `guest`: a hybrid vsock
/// socket and port, or a kernel-vsock CID and port (`config::Ingress::guest`).
pub fn ingress_on(
    listener: TcpListener,
    listen: &str,
    guest: transport::Addr,
    limits: Limits,
    tap: Tap,
) -> io::Result<()> {
    let port = match &guest {
        transport::Addr::Hybrid { port, .. } | transport::Addr::Vsock { port, .. } => *port,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{other}: an ingress rule leads to a guest vsock port"),
            ))
        }
    };
    let slots = Slots(Arc::new(AtomicUsize::new(0)), limits.max_connections);
    log::info!(listen = listen, port = port; "ingress rule");
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let _ = client.set_nodelay(true);
        let Some(slot) = slots.take() else {
            log::warn!(listen = listen; "ingress: connection limit reached; refused");
            continue;
        };
        let (guest, tap) = (guest.clone(), tap.clone());
        std::thread::spawn(move || {
            let _slot = slot;
            match transport::connect(&guest) {
                Ok(g) => {
                    let _ = splice(Box::new(client), Box::new(g), limits.idle_timeout, &tap);
                }
                Err(e) => {
                    log::warn!(port = port, error = e.to_string().as_str(); "ingress: guest unreachable")
                }
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_forwards_both_ways_with_half_close() {
        let dir = std::env::temp_dir().join(format!("ei-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = TcpListener::bind("127.0.0.1:0").unwrap();
        let taddr = target.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut s, _) = target.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap(); // needs the half-close to end
            s.write_all(&got.iter().rev().copied().collect::<Vec<_>>())
                .unwrap();
        });
        let uds = dir.join("vm.vsock_8443");
        let uds2 = uds.clone();
        std::thread::spawn(move || egress(&uds2, &taddr, Limits::default()));
        let mut c = loop {
            if let Ok(c) = UnixStream::connect(&uds) {
                break c;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        c.write_all(b"abc").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"cba");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn echo_target() -> String {
        let target = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = target.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for s in target.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut r = s.try_clone().unwrap();
                    let mut w = s;
                    let _ = io::copy(&mut r, &mut w);
                    let _ = w.shutdown(Shutdown::Write);
                });
            }
        });
        addr
    }

    fn egress_rule(dir: &Path, name: &str, target: &str, limits: Limits, tap: Tap) -> PathBuf {
        let uds = dir.join(name);
        let _ = std::fs::remove_file(&uds);
        let listener = UnixListener::bind(&uds).unwrap();
        let (u, t) = (uds.clone(), target.to_owned());
        std::thread::spawn(move || egress_on(listener, &u, &t, limits, tap));
        uds
    }

    #[test]
    fn many_concurrent_connections_and_a_recorded_copy() {
        let dir = std::env::temp_dir().join(format!("ei-proxy-c-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tap = Tap::into_dir(&dir.join("tap")).unwrap();
        let uds = egress_rule(
            &dir,
            "vm.vsock_7000",
            &echo_target(),
            Limits::default(),
            tap,
        );
        let clients: Vec<_> = (0..48)
            .map(|i| {
                let uds = uds.clone();
                std::thread::spawn(move || {
                    let mut c = UnixStream::connect(&uds).unwrap();
                    let msg = format!("hello {i} ").repeat(1000);
                    c.write_all(msg.as_bytes()).unwrap();
                    c.shutdown(Shutdown::Write).unwrap();
                    let mut back = String::new();
                    c.read_to_string(&mut back).unwrap();
                    assert_eq!(back, msg);
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        // The tap saw exactly what crossed: 48 connections, both ways.
        let files = std::fs::read_dir(dir.join("tap")).unwrap().count();
        assert_eq!(files, 96);
        let up = std::fs::read_to_string(dir.join("tap/0.up")).unwrap();
        assert!(up.starts_with("hello "));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// What a read under a timeout says about the peer: `Ok(0)` is EOF (the
    /// proxy closed the connection); a timeout means it is still open.
    #[derive(Debug, PartialEq, Eq)]
    enum Read1 {
        Closed,
        StillOpen,
        Data,
    }

    fn read_one(s: &mut UnixStream, wait: Duration) -> Read1 {
        s.set_read_timeout(Some(wait)).unwrap();
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => Read1::Closed,
            Ok(_) => Read1::Data,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Read1::StillOpen
            }
            // A reset is a close too (the proxy dropped it with data unread).
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Read1::Closed,
            Err(e) => panic!("read: {e}"),
        }
    }

    #[test]
    fn the_connection_limit_and_idle_timeout_hold() {
        let dir = std::env::temp_dir().join(format!("ei-proxy-l-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let idle = Duration::from_millis(300);
        let limits = Limits {
            max_connections: 1,
            idle_timeout: idle,
            ..Limits::default()
        };
        let uds = egress_rule(
            &dir,
            "vm.vsock_7001",
            &echo_target(),
            limits,
            Tap::default(),
        );
        let mut first = UnixStream::connect(&uds).unwrap();
        first.write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        first.read_exact(&mut one).unwrap();
        let echoed = std::time::Instant::now();
        // While the first holds the only slot, a second is closed at once
        // (EOF, not a timeout: a timeout would mean it got through).
        let mut second = UnixStream::connect(&uds).unwrap();
        let _ = second.write_all(b"y");
        assert_eq!(
            read_one(&mut second, Duration::from_secs(5)),
            Read1::Closed,
            "the second connection must be refused"
        );
        // The idle first connection is cut after the idle timeout, not before.
        assert_eq!(
            read_one(&mut first, Duration::from_secs(5)),
            Read1::Closed,
            "idle connection must be closed"
        );
        let waited = echoed.elapsed();
        assert!(
            waited >= idle,
            "closed after {waited:?}, before the idle timeout {idle:?}"
        );
        // The slot came back: a third connection is served.
        let mut third = loop {
            let mut c = UnixStream::connect(&uds).unwrap();
            // A connection refused while the slot is still held may be gone
            // before the write (EPIPE): the read below then says Closed.
            let _ = c.write_all(b"z");
            match read_one(&mut c, Duration::from_secs(5)) {
                Read1::Data => break c,
                // The first's slot is released a moment after its EOF.
                Read1::Closed if echoed.elapsed() < Duration::from_secs(5) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                other => panic!("third connection: {other:?}"),
            }
        };
        third.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_one(&mut third, Duration::from_secs(5)), Read1::Closed);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_port_without_a_rule_is_refused() {
        // The proxy's rule check is the set of sockets it binds: drive it
        // from a configuration, then connect as the VMM does for a guest's
        // connect(CID 2, port): to `<uds>_<port>`.
        let dir = std::env::temp_dir().join(format!("ei-proxy-r-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "[[egress]]\nlisten = {:?}\ntarget = {:?}\n",
            dir.join("vm.vsock_7002"),
            echo_target()
        );
        let config = config::Config::parse(&text).unwrap();
        let _threads = serve_egress(&config.egress, config.limits(), &Tap::default()).unwrap();
        // The rule's port is served (so a refusal below is not a broken setup).
        let mut ok = UnixStream::connect(dir.join("vm.vsock_7002")).unwrap();
        ok.write_all(b"q").unwrap();
        let mut one = [0u8; 1];
        ok.read_exact(&mut one).unwrap();
        assert_eq!(&one, b"q");
        // The proxy created nothing else a guest could reach ...
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["vm.vsock_7002"]);
        // ... so port 25, and any other port, is refused.
        for port in [25, 7001, 7003, 8443] {
            let e = UnixStream::connect(dir.join(format!("vm.vsock_{port}"))).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "port {port}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hybrid_handshake_accepts_any_ok_and_reports_eof() {
        let dir = std::env::temp_dir().join(format!("ei-proxy-h-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let uds = dir.join("vm.vsock");
        let l = UnixListener::bind(&uds).unwrap();
        std::thread::spawn(move || {
            let (mut a, _) = l.accept().unwrap();
            let mut line = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(a.try_clone().unwrap()),
                &mut line,
            )
            .unwrap();
            assert_eq!(line, "CONNECT 1234\n");
            a.write_all(b"OK 1073741824\n").unwrap();
            let (b, _) = l.accept().unwrap();
            drop(b); // nothing listens in the guest: EOF
        });
        assert!(hybrid_connect(&uds, 1234, Duration::from_secs(2)).is_ok());
        let e = hybrid_connect(&uds, 1234, Duration::from_secs(2)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Plays the VMM's side of the hybrid vsock socket at `uds` for one
    /// connection to guest `port`: the `CONNECT` line read byte by byte
    /// (nothing past it consumed), `OK`, then the stream is the guest's.
    fn fake_guest(uds: &Path, port: u32, guest: impl FnOnce(UnixStream) + Send + 'static) {
        let l = UnixListener::bind(uds).unwrap();
        std::thread::spawn(move || {
            let (mut a, _) = l.accept().unwrap();
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while line.last() != Some(&b'\n') {
                a.read_exact(&mut b).unwrap();
                line.push(b[0]);
            }
            assert_eq!(line, format!("CONNECT {port}\n").as_bytes());
            a.write_all(b"OK 1073741824\n").unwrap();
            guest(a);
        });
    }

    /// A kernel-vsock egress rule (the Nitro parent's, or a vhost-vsock
    /// host's) binds `vsock://any:PORT`: whichever CID the guest sees the
    /// host as reaches it. Needs AF_VSOCK in the test kernel; where the
    /// address family does not exist it fails unless
    /// `ENCLAVE_ALLOW_SKIP_VSOCK=1` asks for the skip.
    #[test]
    fn a_kernel_vsock_egress_rule_listens_on_any_cid() {
        let port = 40_000 + std::process::id() % 20_000;
        let rules = [config::Egress {
            listen: PathBuf::from(format!("vsock://any:{port}")),
            target: "127.0.0.1:9".into(),
        }];
        match serve_egress(&rules, Limits::default(), &Tap::default()) {
            Err(e)
                if e.raw_os_error() == Some(libc_eafnosupport())
                    && std::env::var("ENCLAVE_ALLOW_SKIP_VSOCK").as_deref() == Ok("1") =>
            {
                eprintln!("SKIPPED (ENCLAVE_ALLOW_SKIP_VSOCK=1): no AF_VSOCK in this kernel");
                return;
            }
            other => drop(other.unwrap()),
        }
        let again = transport::listen(&transport::Addr::Vsock {
            cid: transport::VMADDR_CID_ANY,
            port,
        });
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::AddrInUse);
    }

    /// EAFNOSUPPORT on Linux.
    fn libc_eafnosupport() -> i32 {
        97
    }

    /// An ingress rule on a fresh loopback port to guest `port` behind `uds`.
    fn ingress_rule(uds: &Path, port: u32, limits: Limits) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let uds = uds.to_owned();
        let guest = transport::Addr::Hybrid { uds, port };
        std::thread::spawn(move || ingress_on(listener, "test", guest, limits, Tap::default()));
        addr
    }

    /// Ingress carries a client to the guest port, and each direction's
    /// end separately: the guest's half-close reaches the client while the
    /// client still writes, and the client's half-close then reaches the
    /// guest while the guest could still answer.
    #[test]
    fn ingress_forwards_to_the_guest_port_and_each_half_close() {
        let dir = std::env::temp_dir().join(format!("ei-proxy-i-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let uds = dir.join("vm.vsock");
        let (tx, rx) = std::sync::mpsc::channel();
        fake_guest(&uds, 8443, move |mut g| {
            g.write_all(b"from guest").unwrap();
            g.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            let _ = g.read_to_end(&mut got); // ends only on the client's EOF
            let _ = tx.send(got);
        });
        let addr = ingress_rule(&uds, 8443, Limits::default());
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got)
            .expect("the guest's half-close must reach the client as EOF");
        assert_eq!(got, b"from guest");
        c.write_all(b"from client").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let at_guest = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the client's half-close must reach the guest as EOF");
        assert_eq!(at_guest, b"from client");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A client that sends nothing is cut after the idle timeout: the guest
    /// sees EOF (the client-to-guest direction idled out), not before.
    #[test]
    fn ingress_cuts_a_silent_client_after_the_idle_timeout() {
        let dir = std::env::temp_dir().join(format!("ei-proxy-j-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let uds = dir.join("vm.vsock");
        let idle = Duration::from_millis(300);
        let (tx, rx) = std::sync::mpsc::channel();
        fake_guest(&uds, 5000, move |mut g| {
            let started = std::time::Instant::now();
            // Keep the guest-to-client direction busy so that only the
            // client's silence can end the other one.
            let mut w = g.try_clone().unwrap();
            std::thread::spawn(move || {
                while w.write_all(b".").is_ok() {
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
            g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut b = [0u8; 1];
            let eof = matches!(g.read(&mut b), Ok(0));
            let _ = tx.send((eof, started.elapsed()));
        });
        let addr = ingress_rule(
            &uds,
            5000,
            Limits {
                idle_timeout: idle,
                ..Limits::default()
            },
        );
        let _c = TcpStream::connect(addr).unwrap();
        let (eof, after) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            eof,
            "the silent client's direction must end in EOF at the guest"
        );
        assert!(
            after >= idle,
            "cut after {after:?}, before the idle timeout {idle:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
