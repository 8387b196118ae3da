//! The host channel: the readiness report (guest → host) and control
//! commands (host → guest).
//!
//! Protocol, one line each way, UTF-8, `\n`-terminated:
//! - readiness: the guest connects to `host.ready` and sends one JSON object
//!   `{"event":"ready",…}` with its version, role, CID and boot timings;
//! - control: the host connects to `host.control` and sends `ping`
//!   (→ `pong`), `status` (→ one JSON object), `evidence <64 hex digits>`
//!   (→ an evidence bundle for operator REPORT_DATA derived from that nonce,
//!   see `evidence::operator_report_data`) or `poweroff` (→ `ok`, then the
//!   VM powers off). Anything else gets `error unknown-command`.
//!
//! Trust: the host is the adversary, but it can stop the VM at any time
//! anyway, so `poweroff` gives it nothing new. Nothing on this channel is
//! secret, and nothing it sends is trusted beyond choosing a command. The
//! channel runs on its own thread and decides nothing: it reports the
//! lifecycle's state and cannot delay, trigger or undo a withdrawal, so a
//! host that holds it open stalls only itself.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::lifecycle::exchange::SharedTee;
use crate::lifecycle::Lifecycle;
use crate::pid1::signals::Signals;
use transport::{self, Addr, Listener, Stream};

/// Why the host channel failed.
#[derive(Debug)]
pub enum ControlError {
    /// The kernel has no AF_VSOCK at all (module not loaded or not built).
    NoVsock {
        /// The address we tried.
        addr: String,
    },
    /// The readiness listener could not be reached before the deadline.
    ReadyUnreachable {
        /// The address.
        addr: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: io::Error,
    },
    /// Sending the readiness report failed after connecting.
    ReadySend(io::Error),
    /// The control listener could not be opened.
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: io::Error,
    },
    /// Polling failed.
    Poll(Errno),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::NoVsock { addr } => write!(
                f,
                "cannot reach {addr}: this kernel has no AF_VSOCK (list vsock.ko and \
                 vmw_vsock_virtio_transport.ko in the module list, or build them in)"
            ),
            ControlError::ReadyUnreachable { addr, attempts, last } => write!(
                f,
                "readiness listener {addr} unreachable after {attempts} attempts: {last} \
                 (ENODEV: no vsock device attached to the VM; ECONNRESET: nothing listens on the host)"
            ),
            ControlError::ReadySend(e) => write!(f, "sending the readiness report failed: {e}"),
            ControlError::Listen { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            ControlError::Poll(e) => write!(f, "poll failed: {e}"),
        }
    }
}

impl std::error::Error for ControlError {}

/// Opens the control listener (before the sandbox: a unix path is a file).
pub fn listen(addr: &Addr) -> Result<Listener, ControlError> {
    transport::listen(addr).map_err(|source| match source.raw_os_error() {
        Some(libc::EAFNOSUPPORT) => ControlError::NoVsock {
            addr: addr.to_string(),
        },
        _ => ControlError::Listen {
            addr: addr.to_string(),
            source,
        },
    })
}

/// Sends the readiness report, retrying with backoff until `deadline`: the
/// host side may not be listening yet (the guest then gets a reset).
/// Returns the local vsock CID when the transport is vsock.
pub fn report_ready(
    addr: &Addr,
    deadline: Duration,
    report: &serde_json::Value,
) -> Result<Option<u32>, ControlError> {
    let retry = transport::Retry {
        deadline,
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
    };
    let (mut stream, attempts) =
        transport::connect_retrying(addr, retry).map_err(|e| match e.last.raw_os_error() {
            Some(libc::EAFNOSUPPORT) => ControlError::NoVsock {
                addr: addr.to_string(),
            },
            _ => ControlError::ReadyUnreachable {
                addr: addr.to_string(),
                attempts: e.attempts,
                last: e.last,
            },
        })?;
    // The socket's own address says CID `any`; the device knows ours.
    let local_cid = match &stream {
        Stream::Vsock(_) => crate::sys::vsock_local_cid().ok(),
        _ => None,
    };
    let mut report = report.clone();
    if let (Some(cid), Some(obj)) = (local_cid, report.as_object_mut()) {
        obj.insert("cid".to_owned(), cid.into());
    }
    let mut line = report.to_string();
    line.push('\n');
    stream
        .set_timeouts(deadline)
        .map_err(ControlError::ReadySend)?;
    stream
        .write_all(line.as_bytes())
        .map_err(ControlError::ReadySend)?;
    crate::info_always!(addr = addr.to_string().as_str(), attempts = attempts; "readiness reported");
    Ok(local_cid)
}

/// What control commands may use.
pub struct Context {
    /// The boot facts for `status`.
    pub status: serde_json::Value,
    /// The evidence source, for operator evidence (tried, never waited for:
    /// the supervisor's renewal holds it while it attests).
    pub evidence: SharedTee,
    /// The lifecycle: `status` reads its snapshot, nothing more.
    pub lifecycle: Arc<Lifecycle>,
    /// Whether `secret-hash` is answered (test-hooks builds only).
    #[cfg_attr(
        not(feature = "test-hooks"),
        expect(dead_code, reason = "only the test-hooks query reads it")
    )]
    pub secret_hash_query: bool,
}

/// Starts the control thread: it serves control connections one at a time,
/// each bounded by `io_timeout` as a whole (a host that drips bytes or
/// never finishes a line loses the connection at the deadline). It decides
/// nothing: it reads the lifecycle and asks for power-off by writing one
/// byte to `poweroff` (the main thread polls its other end).
pub fn spawn(
    listener: Listener,
    io_timeout: Duration,
    ctx: Context,
    poweroff: std::os::unix::net::UnixStream,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            let mut poweroff = poweroff;
            loop {
                match listener.accept() {
                    Ok(stream) => {
                        if let Some(Command::PowerOff) = handle(stream, io_timeout, &ctx) {
                            let _ = poweroff.write_all(b"p");
                        }
                    }
                    Err(e) => {
                        crate::warn!(error = e.to_string().as_str(); "control: accept failed");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })?;
    Ok(())
}

/// Waits for a shutdown: a signal, or a power-off asked on the control
/// channel. Returns why.
pub fn wait_for_shutdown(
    signals: &mut Signals,
    poweroff: &std::os::unix::net::UnixStream,
) -> Result<String, ControlError> {
    loop {
        let (sig_ready, off_ready) = {
            let mut fds = [
                PollFd::new(signals.fd().as_fd(), PollFlags::POLLIN),
                PollFd::new(poweroff.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(ControlError::Poll(e)),
            }
            let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if sig_ready {
            if let Some(signal) = signals.drain() {
                return Ok(format!("signal {signal}"));
            }
        }
        if off_ready {
            return Ok("control: poweroff".to_owned());
        }
    }
}

/// A control command that changes the init's state.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    PowerOff,
}

/// A control connection under one deadline for all of it.
struct Deadlined {
    stream: Stream,
    deadline: std::time::Instant,
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "control connection deadline passed",
            ));
        }
        // A timeout below a microsecond would read as "none" (blocking).
        self.stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        self.stream.read(buf)
    }
}

/// Answers one connection: one command line, one answer line, all within
/// `io_timeout`.
fn handle(stream: Stream, io_timeout: Duration, ctx: &Context) -> Option<Command> {
    if let Err(e) = stream.set_timeouts(io_timeout) {
        crate::warn!(error = e.to_string().as_str(); "control: cannot set timeouts; dropping connection");
        return None;
    }
    let mut conn = Deadlined {
        stream,
        deadline: std::time::Instant::now() + io_timeout,
    };
    let line = match read_line(&mut conn, 256) {
        Ok(line) => line,
        Err(e) => {
            crate::warn!(error = e.to_string().as_str(); "control: bad request");
            return None;
        }
    };
    let (reply, command) = answer(line.trim(), ctx);
    // Only the command word: arguments (nonces, keys) stay out of the log.
    crate::info!(command = line.split_whitespace().next().unwrap_or("").chars().take(32).collect::<String>().as_str(); "control command");
    if let Err(e) = conn.stream.write_all(reply.as_bytes()) {
        crate::warn!(error = e.to_string().as_str(); "control: reply failed");
    }
    if command == Some(Command::PowerOff) {
        linger(&mut conn);
    }
    command
}

/// Before a power-off: the answer must reach the host before the machine
/// stops, and a written answer is only in the guest's socket buffer (a VM
/// that powers off right away can take the virtqueue's pending bytes with
/// it, and the host reads EOF instead of `ok`). So: half-close, then wait
/// for the host to close its end, which it does once it has read the
/// answer. Bounded by what is left of the connection's deadline, at most
/// [`LINGER`]: a host that never closes delays its own power-off by that
/// much, nothing more.
fn linger(conn: &mut Deadlined) {
    /// The longest wait for the host to close after a power-off answer.
    const LINGER: Duration = Duration::from_secs(2);
    let cap = std::time::Instant::now() + LINGER;
    if cap < conn.deadline {
        conn.deadline = cap;
    }
    if conn.stream.shutdown_write().is_err() {
        return;
    }
    let mut buf = [0u8; 64];
    // Ok(0) is the host's close; an error is the deadline or a reset.
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// The reply to a command line.
fn answer(command: &str, ctx: &Context) -> (String, Option<Command>) {
    if let Some(nonce_hex) = command.strip_prefix("evidence ") {
        return (operator_evidence(nonce_hex, &ctx.evidence), None);
    }
    #[cfg(feature = "test-hooks")]
    if let Some(args) = command.strip_prefix("secret-hash ") {
        return (secret_hash(args, ctx), None);
    }
    #[cfg(feature = "test-hooks")]
    if let Some(path) = command.strip_prefix("sandbox-probe ") {
        return (sandbox_probe(path.trim()), None);
    }
    match command {
        "ping" => ("pong\n".to_owned(), None),
        "status" => (format!("{}\n", status(ctx)), None),
        "poweroff" => ("ok\n".to_owned(), Some(Command::PowerOff)),
        _ => ("error unknown-command\n".to_owned(), None),
    }
}

/// The `status` answer: the boot facts plus the lifecycle's snapshot.
fn status(ctx: &Context) -> serde_json::Value {
    let mut s = ctx.status.clone();
    let snap = ctx.lifecycle.snapshot();
    if let Some(o) = s.as_object_mut() {
        o.insert("secrets_provisioned".into(), snap.secrets.into());
        o.insert("renewals".into(), snap.renewals.into());
        o.insert(
            "attestation_expires_at".into(),
            snap.expires_at.unwrap_or(0).into(),
        );
        o.insert("lifecycle".into(), crate::lifecycle::snapshot_json(&snap));
        let health = match &snap.withdrawn {
            None if snap.trusted => serde_json::json!({"state": "serving"}),
            Some((kind, why)) => {
                serde_json::json!({"state": "withdrawn", "kind": kind, "reason": why})
            }
            None => serde_json::json!({"state": snap.phase.as_str()}),
        };
        o.insert("health".into(), health);
    }
    s
}

/// Evidence for an operator's nonce (32 bytes, hex): never for raw
/// REPORT_DATA, which would make this channel a signing oracle. Answered
/// only when the evidence source is free (a renewal holds it while it
/// attests; the control channel never waits for it).
fn operator_evidence(nonce_hex: &str, evidence: &SharedTee) -> String {
    let Some(nonce) = parse_hex32(nonce_hex.trim()) else {
        return "error bad-nonce (want 64 hex digits)\n".to_owned();
    };
    let mut source = match evidence.try_lock() {
        Ok(s) => s,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            return "error busy (a renewal is attesting; ask again)\n".to_owned()
        }
    };
    match source.collect(&evidence::operator_report_data(&nonce)) {
        Ok(bundle) => {
            let mut line = String::from_utf8_lossy(&bundle.to_json()).into_owned();
            line.push('\n');
            line
        }
        Err(e) => {
            crate::warn!(error = e.to_string().as_str(); "operator evidence failed");
            format!("error evidence: {}\n", e.to_string().replace('\n', " "))
        }
    }
}

/// `secret-hash <name> <64 hex key>` → hex HMAC-SHA256 of the secret: lets
/// a test check the exact value while the value stays inside. Compiled only
/// into test-hooks builds, and answered only when their configuration
/// enables it.
#[cfg(feature = "test-hooks")]
fn secret_hash(args: &str, ctx: &Context) -> String {
    if !ctx.secret_hash_query {
        return "error disabled\n".to_owned();
    }
    let mut parts = args.split_whitespace();
    let (Some(name), Some(key_hex), None) = (parts.next(), parts.next(), parts.next()) else {
        return "error usage: secret-hash NAME KEYHEX\n".to_owned();
    };
    let Some(key) = parse_hex32(key_hex) else {
        return "error bad-key (want 64 hex digits)\n".to_owned();
    };
    match ctx.lifecycle.keyed_hash(name, &key) {
        Some(tag) => format!(
            "{}\n",
            tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        None => "error no-such-secret\n".to_owned(),
    }
}

/// `sandbox-probe <path>` → what the sandbox did with four attempts made
/// from this thread (a thread created after every confinement step), each
/// `name=<errno>` or `name=ALLOWED`: creating `path` (Landlock: EACCES),
/// chroot (no capability, not on the seccomp list), spawning a process
/// (fork and exec: seccomp and Landlock), socketpair (allowed to anyone,
/// refused only by the seccomp list). Compiled only into test-hooks builds;
/// each attempt is harmless had it succeeded (chroot to `/`, `/bin/true`).
#[cfg(feature = "test-hooks")]
fn sandbox_probe(path: &str) -> String {
    let name = |e: &std::io::Error| match e.raw_os_error() {
        Some(n) => format!("{:?}", nix::errno::Errno::from_raw(n)),
        None => e.kind().to_string().replace(' ', "-"),
    };
    let outcome = |r: std::io::Result<()>| r.map_or_else(|e| name(&e), |()| "ALLOWED".to_owned());
    let write = outcome(std::fs::File::create(path).map(drop));
    let chroot = outcome(nix::unistd::chroot("/").map_err(std::io::Error::from));
    let exec = outcome(std::process::Command::new("/bin/true").status().map(drop));
    let socketpair = outcome(std::os::unix::net::UnixStream::pair().map(drop));
    crate::warn_always!(write = write.as_str(), chroot = chroot.as_str(), exec = exec.as_str(), socketpair = socketpair.as_str(); "sandbox probe (test hook)");
    format!("write={write} chroot={chroot} exec={exec} socketpair={socketpair}\n")
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Reads up to a newline, at most `max` bytes; longer lines are an error.
fn read_line(stream: &mut impl Read, max: usize) -> io::Result<String> {
    let mut buf = Vec::with_capacity(64);
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte)? {
            0 if buf.is_empty() => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed before a command",
                ))
            }
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => buf.push(byte[0]),
        }
        if buf.len() > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "command line too long",
            ));
        }
    }
    String::from_utf8(buf)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "command is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::clock::{Mono, VerifierClock};
    use crate::secrets::SecretStore;
    use evidence::EvidenceSource;
    use std::sync::Mutex;

    /// An evidence source that records what it was asked for.
    struct Recorder(Arc<Mutex<Vec<[u8; 64]>>>);

    impl EvidenceSource for Recorder {
        fn kind(&self) -> evidence::SourceKind {
            evidence::SourceKind::Sim
        }
        fn collect(
            &mut self,
            rd: &[u8; 64],
        ) -> Result<wire::EvidenceBundle, evidence::EvidenceError> {
            self.0.lock().unwrap().push(*rd);
            Ok(wire::EvidenceBundle::new(
                wire::Tee::Sim,
                "test",
                rd.to_vec(),
            ))
        }
    }

    fn ctx(query: bool) -> (Context, Arc<Mutex<Vec<[u8; 64]>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tee: SharedTee = Arc::new(Mutex::new(Box::new(Recorder(Arc::clone(&seen)))));
        let lifecycle = Lifecycle::new(
            SecretStore::new().unwrap(),
            Arc::new(VerifierClock::new(0)),
            "sim",
        );
        (
            Context {
                status: serde_json::json!({"role": "process"}),
                evidence: tee,
                lifecycle,
                secret_hash_query: query,
            },
            seen,
        )
    }

    #[test]
    fn commands_and_answers() {
        let (c, _) = ctx(false);
        assert_eq!(answer("ping", &c), ("pong\n".to_owned(), None));
        let status: serde_json::Value = serde_json::from_str(&answer("status", &c).0).unwrap();
        assert_eq!(status["role"], "process");
        assert_eq!(status["secrets_provisioned"], 0);
        assert_eq!(status["health"]["state"], "booting");
        assert_eq!(status["lifecycle"]["phase"], "booting");
        assert_eq!(
            answer("poweroff", &c),
            ("ok\n".to_owned(), Some(Command::PowerOff))
        );
        assert_eq!(answer("reboot", &c).0, "error unknown-command\n");
    }

    /// A power-off answer is delivered before power-off is asked for: the
    /// connection is half-closed after `ok` and held until the host closes
    /// its end (which it does once it has read the answer), so the machine
    /// cannot stop with the answer still in a socket buffer.
    #[test]
    fn poweroff_is_asked_for_only_after_the_host_closed_the_connection() {
        use std::io::BufRead;
        use std::sync::atomic::{AtomicBool, Ordering};
        let (c, _) = ctx(false);
        let (guest_end, host_end) = std::os::unix::net::UnixStream::pair().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let done_in = Arc::clone(&done);
        let handler = std::thread::spawn(move || {
            let got = handle(Stream::Unix(guest_end), Duration::from_secs(10), &c);
            done_in.store(true, Ordering::SeqCst);
            got
        });
        let mut host = std::io::BufReader::new(host_end);
        host.get_mut().write_all(b"poweroff\n").unwrap();
        let mut line = String::new();
        host.read_line(&mut line).unwrap();
        assert_eq!(line, "ok\n");
        // The guest half-closed after its answer: the host reads EOF.
        let mut rest = Vec::new();
        host.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !done.load(Ordering::SeqCst),
            "power-off was asked for while the host still held the connection"
        );
        drop(host);
        assert_eq!(handler.join().unwrap(), Some(Command::PowerOff));
    }

    #[test]
    fn status_reports_the_lifecycle_and_changes_nothing() {
        let (c, _) = ctx(false);
        c.lifecycle.attempt();
        let mut fresh = SecretStore::new().unwrap();
        fresh.insert("k", b"v").unwrap();
        c.lifecycle
            .grant(&mut fresh, Mono::now().after(Duration::from_secs(60)))
            .unwrap();
        for _ in 0..3 {
            let status: serde_json::Value = serde_json::from_str(&answer("status", &c).0).unwrap();
            assert_eq!(status["health"]["state"], "serving");
            assert_eq!(status["secrets_provisioned"], 1);
        }
        assert!(
            c.lifecycle.secret("k").is_some(),
            "asking for status withdrew nothing"
        );
    }

    #[cfg(feature = "test-hooks")]
    #[test]
    fn secret_hash_is_off_unless_configured() {
        let (c, _) = ctx(false);
        let key = "11".repeat(32);
        assert_eq!(
            answer(&format!("secret-hash k {key}"), &c).0,
            "error disabled\n"
        );
    }

    #[cfg(not(feature = "test-hooks"))]
    #[test]
    fn there_is_no_secret_hash_query_outside_test_hooks_builds() {
        let (c, _) = ctx(true);
        assert_eq!(
            answer(&format!("secret-hash k {}", "11".repeat(32)), &c).0,
            "error unknown-command\n"
        );
    }

    #[test]
    fn operator_evidence_never_signs_the_raw_nonce() {
        let (c, seen) = ctx(false);
        let nonce = [0x11u8; 32];
        let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let reply = answer(&format!("evidence {hex}"), &c).0;
        let bundle = wire::EvidenceBundle::from_json(reply.trim_end().as_bytes()).unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [evidence::operator_report_data(&nonce)]
        );
        assert_eq!(
            &bundle.evidence[..],
            &evidence::operator_report_data(&nonce)[..]
        );
        assert_ne!(&seen.lock().unwrap()[0][..32], &nonce[..]);
        for bad in ["evidence 12", "evidence zz", &format!("evidence {hex}00")] {
            assert!(answer(bad, &c).0.starts_with("error bad-nonce"), "{bad}");
        }
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "bad nonces must not reach the TEE"
        );
    }

    #[test]
    fn operator_evidence_never_waits_for_a_renewal() {
        let (c, seen) = ctx(false);
        let held = c.evidence.lock().unwrap();
        let t = std::time::Instant::now();
        assert!(answer(&format!("evidence {}", "22".repeat(32)), &c)
            .0
            .starts_with("error busy"));
        assert!(t.elapsed() < Duration::from_secs(1));
        drop(held);
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn a_dripping_control_client_loses_its_connection_at_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let drip = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            // One byte every 100 ms, never a newline: per-read timeouts
            // would never fire.
            for _ in 0..40 {
                if s.write_all(b"p").is_err() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        });
        let (stream, _) = listener.accept().unwrap();
        let (c, _) = ctx(false);
        let t = std::time::Instant::now();
        assert_eq!(
            handle(Stream::Tcp(stream), Duration::from_millis(500), &c),
            None
        );
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "held for {:?}",
            t.elapsed()
        );
        let _ = drip.join();
    }

    #[test]
    fn lines_are_bounded() {
        assert_eq!(read_line(&mut &b"ping\nrest"[..], 256).unwrap(), "ping");
        assert_eq!(read_line(&mut &b"ping"[..], 256).unwrap(), "ping");
        assert!(read_line(&mut &[b'a'; 300][..], 256).is_err());
        assert!(read_line(&mut &b""[..], 256).is_err());
        assert!(read_line(&mut &b"\xff\n"[..], 256).is_err());
    }

    #[test]
    fn unreachable_ready_listener_is_reported_after_the_deadline() {
        let addr: Addr = "unix:///nonexistent/ready.sock".parse().unwrap();
        match report_ready(&addr, Duration::from_millis(200), &serde_json::json!({})) {
            Err(ControlError::ReadyUnreachable { attempts, .. }) => assert!(attempts >= 2),
            other => panic!("{other:?}"),
        }
    }
}
