//! The host proxy. Untrusted by design: it forwards bytes and nothing else.
//!
//! - Egress: the guest connects to the host (vsock CID 2, port P); with
//!   hybrid vsock that arrives on the Unix socket `<uds>_P`. Each such
//!   socket is forwarded to exactly one allow-listed TCP target; a port with
//!   no rule has no socket, so the guest's connection is refused.
//! - Ingress: a TCP listener forwarded to a guest port through the hybrid
//!   vsock handshake (`CONNECT <port>\n` → `OK …`).
//!
//! Each connection is two copying threads; EOF in one direction is passed
//! on as a half-close (`shutdown(Write)`), so request/response protocols
//! that close their sending side still work. Concurrency is bounded; connect
//! has a timeout. TLS passes through untouched: the proxy sees ciphertext.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_connections: 64, connect_timeout: Duration::from_secs(10) }
    }
}

/// Something both ends of a forwarded connection can do.
trait Duplex: Read + Write + Send + 'static {
    fn try_clone_box(&self) -> io::Result<Box<dyn Duplex>>;
    fn shutdown_write(&self);
}

impl Duplex for TcpStream {
    fn try_clone_box(&self) -> io::Result<Box<dyn Duplex>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Duplex for UnixStream {
    fn try_clone_box(&self) -> io::Result<Box<dyn Duplex>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// Copies both ways until both directions reach EOF.
fn splice(a: Box<dyn Duplex>, b: Box<dyn Duplex>) -> io::Result<()> {
    let (a2, b2) = (a.try_clone_box()?, b.try_clone_box()?);
    let up = std::thread::spawn(move || pump(a, b2));
    pump(b, a2);
    let _ = up.join();
    Ok(())
}

fn pump(mut from: Box<dyn Duplex>, mut to: Box<dyn Duplex>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
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
    egress_on(listener, uds, target, limits)
}

/// [`egress`] on a listener already bound (so callers can report readiness).
pub fn egress_on(listener: UnixListener, uds: &Path, target: &str, limits: Limits) -> io::Result<()> {
    let addr = target
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{target}: no address")))?;
    let slots = Slots(Arc::new(AtomicUsize::new(0)), limits.max_connections);
    log::info!(uds = uds.display().to_string().as_str(), target = target; "egress rule");
    for guest in listener.incoming() {
        let Ok(guest) = guest else { continue };
        let Some(slot) = slots.take() else {
            log::warn!(target = target; "egress: connection limit reached; refused");
            continue;
        };
        let timeout = limits.connect_timeout;
        std::thread::spawn(move || {
            let _slot = slot;
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(t) => {
                    let _ = t.set_nodelay(true);
                    let _ = splice(Box::new(guest), Box::new(t));
                }
                Err(e) => log::warn!(target = addr.to_string().as_str(), error = e.to_string().as_str(); "egress: target unreachable"),
            }
        });
    }
    Ok(())
}

/// The hybrid vsock handshake: `CONNECT <port>\n`, any `OK …` line is
/// success (vhost-device-vsock answers with the guest port, Firecracker
/// with a host port); EOF means nothing listens in the guest yet.
pub fn hybrid_connect(uds: &Path, port: u32, timeout: Duration) -> io::Result<UnixStream> {
    let mut s = UnixStream::connect(uds)?;
    s.set_read_timeout(Some(timeout))?;
    let mut line = Vec::new();
    // The device may close at once (write fails) or after reading the
    // request (read gives EOF): both mean "no listener in the guest".
    let handshake = s
        .write_all(format!("CONNECT {port}\n").as_bytes())
        .and_then(|()| BufReader::new((&mut s).take(64)).read_until(b'\n', &mut line).map(drop));
    if handshake.is_err() || !line.starts_with(b"OK") {
        return Err(io::Error::new(io::ErrorKind::ConnectionRefused, format!("guest port {port}: no listener")));
    }
    s.set_read_timeout(None)?;
    Ok(s)
}

/// Ingress: forwards connections arriving on `listen` (host:port) to guest
/// `port` through the hybrid vsock socket `uds`. Runs forever.
pub fn ingress(listen: &str, uds: PathBuf, port: u32, limits: Limits) -> io::Result<()> {
    ingress_on(TcpListener::bind(listen)?, listen, uds, port, limits)
}

/// [`ingress`] on a listener already bound.
pub fn ingress_on(listener: TcpListener, listen: &str, uds: PathBuf, port: u32, limits: Limits) -> io::Result<()> {
    let slots = Slots(Arc::new(AtomicUsize::new(0)), limits.max_connections);
    log::info!(listen = listen, port = port; "ingress rule");
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let _ = client.set_nodelay(true);
        let Some(slot) = slots.take() else {
            log::warn!(listen = listen; "ingress: connection limit reached; refused");
            continue;
        };
        let (uds, timeout) = (uds.clone(), limits.connect_timeout);
        std::thread::spawn(move || {
            let _slot = slot;
            match hybrid_connect(&uds, port, timeout) {
                Ok(g) => {
                    let _ = splice(Box::new(client), Box::new(g));
                }
                Err(e) => log::warn!(port = port, error = e.to_string().as_str(); "ingress: guest unreachable"),
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
            s.write_all(&got.iter().rev().copied().collect::<Vec<_>>()).unwrap();
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

    #[test]
    fn hybrid_handshake_accepts_any_ok_and_reports_eof() {
        let dir = std::env::temp_dir().join(format!("ei-proxy-h-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let uds = dir.join("vm.vsock");
        let l = UnixListener::bind(&uds).unwrap();
        std::thread::spawn(move || {
            let (mut a, _) = l.accept().unwrap();
            let mut line = String::new();
            BufReader::new(a.try_clone().unwrap()).read_line(&mut line).unwrap();
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
}
