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
//! secret, and nothing it sends is trusted beyond choosing a command.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use evidence::EvidenceSource;

use crate::pid1::signals::Signals;
#[cfg(test)]
use crate::secrets::SecretStore;
use crate::state::{Health, Shared};
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
        Some(libc::EAFNOSUPPORT) => ControlError::NoVsock { addr: addr.to_string() },
        _ => ControlError::Listen { addr: addr.to_string(), source },
    })
}

/// Sends the readiness report, retrying with backoff until `deadline`: the
/// host side may not be listening yet (the guest then gets a reset).
/// Returns the local vsock CID when the transport is vsock.
pub fn report_ready(addr: &Addr, deadline: Duration, report: &serde_json::Value) -> Result<Option<u32>, ControlError> {
    let retry = transport::Retry { deadline, first_backoff: Duration::from_millis(50), max_backoff: Duration::from_secs(1) };
    let (mut stream, attempts) = transport::connect_retrying(addr, retry).map_err(|e| match e.last.raw_os_error() {
        Some(libc::EAFNOSUPPORT) => ControlError::NoVsock { addr: addr.to_string() },
        _ => ControlError::ReadyUnreachable { addr: addr.to_string(), attempts: e.attempts, last: e.last },
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
    stream.set_timeouts(deadline).map_err(ControlError::ReadySend)?;
    stream.write_all(line.as_bytes()).map_err(ControlError::ReadySend)?;
    log::info!(addr = addr.to_string().as_str(), attempts = attempts; "readiness reported");
    Ok(local_cid)
}

/// What control commands may use.
pub struct Context<'a> {
    /// The `status` answer.
    pub status: serde_json::Value,
    /// The evidence source, for operator evidence.
    pub evidence: &'a mut dyn EvidenceSource,
    /// What the enclave holds: secrets (for the test-only keyed-hash
    /// query and renewal) and the attestation state.
    pub shared: &'a Shared,
    /// Re-attestation and renewal (none when nothing is provisioned).
    pub renewal: Option<&'a mut crate::renew::Renewal>,
    /// Whether `secret-hash` is answered (test images only).
    pub secret_hash_query: bool,
}

/// Serves control connections and signals until a shutdown is requested;
/// returns why. One connection at a time, each bounded by `io_timeout`.
pub fn serve(signals: &mut Signals, listener: &Listener, io_timeout: Duration, ctx: &mut Context<'_>) -> Result<String, ControlError> {
    loop {
        let (sig_ready, conn_ready) = {
            let mut fds = [
                PollFd::new(signals.fd().as_fd(), PollFlags::POLLIN),
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            ];
            let timeout = match &ctx.renewal {
                Some(r) => PollTimeout::try_from(r.due_in()).unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(ControlError::Poll(e)),
            }
            let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if let Some(r) = ctx.renewal.as_deref_mut() {
            if r.due_in().is_zero() {
                r.run(&mut *ctx.evidence, ctx.shared);
            }
        }
        if sig_ready {
            if let Some(signal) = signals.drain() {
                return Ok(format!("signal {signal}"));
            }
        }
        if conn_ready {
            match listener.accept() {
                Ok(stream) => {
                    if let Some(Command::PowerOff) = handle(stream, io_timeout, ctx) {
                        return Ok("control: poweroff".to_owned());
                    }
                }
                Err(e) => log::warn!(error = e.to_string().as_str(); "accept failed"),
            }
        }
    }
}

/// A control command that changes the init's state.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    PowerOff,
}

/// Answers one connection: one command line, one answer line.
fn handle(mut stream: Stream, io_timeout: Duration, ctx: &mut Context<'_>) -> Option<Command> {
    if let Err(e) = stream.set_timeouts(io_timeout) {
        log::warn!(error = e.to_string().as_str(); "control: cannot set timeouts; dropping connection");
        return None;
    }
    let line = match read_line(&mut stream, 256) {
        Ok(line) => line,
        Err(e) => {
            log::warn!(error = e.to_string().as_str(); "control: bad request");
            return None;
        }
    };
    let (reply, command) = answer(line.trim(), ctx);
    // Only the command word: arguments (nonces, keys) stay out of the log.
    log::info!(command = line.split_whitespace().next().unwrap_or("").chars().take(32).collect::<String>().as_str(); "control command");
    if let Err(e) = stream.write_all(reply.as_bytes()) {
        log::warn!(error = e.to_string().as_str(); "control: reply failed");
    }
    command
}

/// The reply to a command line.
fn answer(command: &str, ctx: &mut Context<'_>) -> (String, Option<Command>) {
    if let Some(nonce_hex) = command.strip_prefix("evidence ") {
        return (operator_evidence(nonce_hex, ctx.evidence), None);
    }
    if let Some(args) = command.strip_prefix("secret-hash ") {
        return (secret_hash(args, ctx), None);
    }
    match command {
        "ping" => ("pong\n".to_owned(), None),
        "status" => (format!("{}\n", status(ctx)), None),
        "poweroff" => ("ok\n".to_owned(), Some(Command::PowerOff)),
        _ => ("error unknown-command\n".to_owned(), None),
    }
}

/// The `status` answer: the boot facts plus the live state.
fn status(ctx: &Context<'_>) -> serde_json::Value {
    let mut s = ctx.status.clone();
    if let Some(o) = s.as_object_mut() {
        o.insert("secrets_provisioned".into(), ctx.shared.secrets().len().into());
        if ctx.renewal.is_some() {
            let a = ctx.shared.attestation();
            o.insert("renewals".into(), a.renewals.into());
            o.insert("attestation_expires_at".into(), a.expires_at.into());
            let health = match &a.health {
                Health::Serving => serde_json::json!({"state": "serving"}),
                Health::Withdrawn(why) => serde_json::json!({"state": "withdrawn", "reason": why}),
            };
            o.insert("health".into(), health);
        }
    }
    s
}

/// Evidence for an operator's nonce (32 bytes, hex): never for raw
/// REPORT_DATA, which would make this channel a signing oracle.
fn operator_evidence(nonce_hex: &str, evidence: &mut dyn EvidenceSource) -> String {
    let Some(nonce) = parse_hex32(nonce_hex.trim()) else {
        return "error bad-nonce (want 64 hex digits)\n".to_owned();
    };
    match evidence.collect(&evidence::operator_report_data(&nonce)) {
        Ok(bundle) => {
            let mut line = String::from_utf8_lossy(&bundle.to_json()).into_owned();
            line.push('\n');
            line
        }
        Err(e) => {
            log::warn!(error = e.to_string().as_str(); "operator evidence failed");
            format!("error evidence: {}\n", e.to_string().replace('\n', " "))
        }
    }
}

/// `secret-hash <name> <64 hex key>` → hex HMAC-SHA256 of the secret: lets
/// a test check the exact value while the value stays inside. Answered only
/// when the measured configuration enables it (test images).
fn secret_hash(args: &str, ctx: &Context<'_>) -> String {
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
    match ctx.shared.secrets().keyed_hash(name, &key) {
        Some(tag) => format!("{}\n", tag.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        None => "error no-such-secret\n".to_owned(),
    }
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
            0 if buf.is_empty() => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a command")),
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => buf.push(byte[0]),
        }
        if buf.len() > max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "command line too long"));
        }
    }
    String::from_utf8(buf).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "command is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An evidence source that records what it was asked for.
    struct Recorder(Vec<[u8; 64]>);

    impl EvidenceSource for Recorder {
        fn kind(&self) -> evidence::SourceKind {
            evidence::SourceKind::Sim
        }
        fn collect(&mut self, rd: &[u8; 64]) -> Result<wire::EvidenceBundle, evidence::EvidenceError> {
            self.0.push(*rd);
            Ok(wire::EvidenceBundle::new(wire::Tee::Sim, "test", rd.to_vec()))
        }
    }

    fn shared(store: SecretStore) -> std::sync::Arc<Shared> {
        let state = crate::state::AttestationState { health: Health::Serving, attested: false, expires_at: 0, vault_expires_at: 0, renewals: 0 };
        Shared::new(store, crate::attest::TrustedTime::new(0), "sim", state)
    }

    fn ctx<'a>(ev: &'a mut Recorder, store: &'a Shared, query: bool) -> Context<'a> {
        Context { status: serde_json::json!({"role": "process"}), evidence: ev, shared: store, secret_hash_query: query, renewal: None }
    }

    #[test]
    fn commands_and_answers() {
        let mut ev = Recorder(Vec::new());
        let store = shared(SecretStore::new().unwrap());
        let mut c = ctx(&mut ev, &store, false);
        assert_eq!(answer("ping", &mut c), ("pong\n".to_owned(), None));
        assert_eq!(answer("status", &mut c).0, "{\"role\":\"process\",\"secrets_provisioned\":0}\n");
        assert_eq!(answer("poweroff", &mut c), ("ok\n".to_owned(), Some(Command::PowerOff)));
        assert_eq!(answer("reboot", &mut c).0, "error unknown-command\n");
    }

    #[test]
    fn secret_hash_is_off_unless_configured() {
        let mut ev = Recorder(Vec::new());
        let mut store = SecretStore::new().unwrap();
        store.insert("hume/api-key", b"canary").unwrap();
        let key = "11".repeat(32);
        let want: String = store.keyed_hash("hume/api-key", &[0x11; 32]).unwrap().iter().map(|b| format!("{b:02x}")).collect();
        let store = shared(store);
        let off = answer(&format!("secret-hash hume/api-key {key}"), &mut ctx(&mut ev, &store, false)).0;
        assert_eq!(off, "error disabled\n");
        let on = answer(&format!("secret-hash hume/api-key {key}"), &mut ctx(&mut ev, &store, true)).0;
        assert_eq!(on.trim_end(), want);
        assert!(!on.contains("canary"));
        assert_eq!(answer(&format!("secret-hash nope {key}"), &mut ctx(&mut ev, &store, true)).0, "error no-such-secret\n");
    }

    #[test]
    fn operator_evidence_never_signs_the_raw_nonce() {
        let mut ev = Recorder(Vec::new());
        let store = shared(SecretStore::new().unwrap());
        let nonce = [0x11u8; 32];
        let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let reply = answer(&format!("evidence {hex}"), &mut ctx(&mut ev, &store, false)).0;
        let bundle = wire::EvidenceBundle::from_json(reply.trim_end().as_bytes()).unwrap();
        assert_eq!(ev.0, [evidence::operator_report_data(&nonce)]);
        assert_eq!(&bundle.evidence[..], &evidence::operator_report_data(&nonce)[..]);
        assert_ne!(&ev.0[0][..32], &nonce[..]);
        for bad in ["evidence 12", "evidence zz", &format!("evidence {hex}00")] {
            assert!(answer(bad, &mut ctx(&mut ev, &store, false)).0.starts_with("error bad-nonce"), "{bad}");
        }
        assert_eq!(ev.0.len(), 1, "bad nonces must not reach the TEE");
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
