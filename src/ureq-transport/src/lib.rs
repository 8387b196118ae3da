//! [ureq] over the guest's [`transport`], with rustls on top: HTTPS for the
//! guest's clients (Vault, upstream APIs) without a network stack or a
//! resolver in the guest.
//!
//! Every peer of the guest is one fixed address (the host proxy's vsock
//! port, or a unix/tcp address in process mode), so the pieces ureq lets us
//! plug in ([`Agent::with_parts`]) are:
//!
//! - [`StreamConnector`]: ignores the address the URL resolved to and opens
//!   [`transport::connect`] to its one configured [`transport::Addr`]; reads
//!   and writes honour ureq's timeouts (socket `SO_RCVTIMEO`/`SO_SNDTIMEO`).
//! - [`TlsConnector`], chained on it: rustls with *our*
//!   `Arc<rustls::ClientConfig>` (pinned CA, trusted clock, TLS 1.3) and a
//!   fixed server name; every connection it hands ureq is TLS, whatever the
//!   URL's scheme.
//! - [`NoDns`]: a resolver that never resolves; it returns a placeholder
//!   address the connector ignores, so URLs such as
//!   `https://vault.enclave.local/v1/...` name the peer (for the `Host`
//!   header and the pool) without any lookup.
//!
//! [`agent`] puts them together with keep-alive pooling on. Errors that a
//! caller's policy needs to tell apart (unreachable → retry later; TLS →
//! refuse; timeout) are sorted by [`classify`].
//!
//! A caller that binds something to the TLS session (the attestation
//! exchange puts the exporter in the evidence) opts in with
//! [`agent_with_exporter`]: the connector records each new connection's
//! exporter, numbered, in an [`ExporterSlot`] the caller reads.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use nix::sys::socket::{self, sockopt, MsgFlags};
use nix::sys::time::TimeVal;
use rustls::pki_types::ServerName;
use ureq::config::{Config, ConfigBuilder};
use ureq::http::Uri;
use ureq::typestate::AgentScope;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::time::{Duration as UDuration, Instant as UInstant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, ShutdownHandle, Transport,
};
use ureq::{Agent, Error};

// At trace level ureq-proto hex-dumps every request and response, tokens and
// secrets included. This is evaluated in every build of every binary that
// links this crate, with that build's own `log` features and profile: a
// release build (the guest's) whose features let trace through (say a
// `release_max_level_trace` anywhere in its graph) does not compile.
const _: () = assert!(
    log::STATIC_MAX_LEVEL as usize <= log::LevelFilter::Debug as usize,
    "log's trace level is compiled in: ureq-proto would log secrets"
);

pub use ureq;

/// Request or status line plus headers, at most (ureq's input buffer is
/// larger, so a head this size always fits).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Each connection's input buffer (per layer).
const INPUT_BUFFER: usize = 32 * 1024;
/// Each connection's output buffer (per layer); request bodies go through
/// it in pieces.
const OUTPUT_BUFFER: usize = 16 * 1024;

/// Our defaults for an agent: `timeout` bounds connecting (TLS handshake
/// included) and every single read and write; HTTP error statuses come back
/// as responses (`http_status_as_error(false)`, so error bodies can be
/// read); HTTPS only; no redirects; one idle kept-alive connection.
/// Adjust (e.g. more idle connections for a worker pool) and pass to
/// [`agent_with`].
pub fn config(timeout: std::time::Duration) -> ConfigBuilder<AgentScope> {
    Config::builder()
        .http_status_as_error(false)
        .https_only(true)
        .max_redirects(0)
        .user_agent("enclave-init")
        .timeout_connect(Some(timeout))
        .timeout_per_read(Some(timeout))
        .timeout_per_write(Some(timeout))
        .max_idle_connections(1)
        .max_idle_connections_per_host(1)
        .max_response_header_size(MAX_HEAD_BYTES)
        .input_buffer_size(INPUT_BUFFER)
        .output_buffer_size(OUTPUT_BUFFER)
}

/// An agent whose every connection goes to `addr` over TLS (`tls`, expecting
/// `server_name`), with [`config`]`(timeout)`.
pub fn agent(
    addr: transport::Addr,
    server_name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
    timeout: std::time::Duration,
) -> Agent {
    agent_with(config(timeout).build(), addr, server_name, tls)
}

/// [`agent`] with a configuration of the caller's (start from [`config`]).
pub fn agent_with(
    config: Config,
    addr: transport::Addr,
    server_name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
) -> Agent {
    let connector = StreamConnector::new(addr).chain(TlsConnector::new(tls, server_name));
    Agent::with_parts(config, connector, NoDns)
}

/// [`agent_with`], plus: right after the handshake of every new connection
/// the TLS connector takes the exporter `spec` asks for from that
/// connection's rustls session and records it in the returned slot, with
/// the connection's serial number.
///
/// With one idle connection in the pool (as [`config`] sets) and requests
/// made one after another, a request reuses the connection the previous one
/// left, so the slot read after a response names the connection that
/// carried it; if a later request finds the serial changed, the pooled
/// connection was gone and a new one carried it.
pub fn agent_with_exporter(
    config: Config,
    addr: transport::Addr,
    server_name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
    spec: ExporterSpec,
) -> (Agent, ExporterSlot) {
    let slot = ExporterSlot::default();
    let tls = TlsConnector::new(tls, server_name).with_exporter(spec, slot.clone());
    let connector = StreamConnector::new(addr).chain(tls);
    (Agent::with_parts(config, connector, NoDns), slot)
}

/// Which TLS exporter (RFC 8446 §7.5, no context) to record for each new
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExporterSpec {
    /// The exporter label.
    pub label: &'static [u8],
    /// How many bytes to export.
    pub len: usize,
}

/// The exporter of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The connection's number: 1 for the first connection the agent
    /// opened, one more for each new one after it.
    pub serial: u64,
    /// The exporter ([`ExporterSpec::len`] bytes).
    pub value: Vec<u8>,
}

/// Where the connector records the exporter of the newest connection
/// (shared: clones are the same slot).
#[derive(Debug, Clone, Default)]
pub struct ExporterSlot(Arc<Mutex<SlotState>>);

/// What a slot holds.
#[derive(Debug, Default)]
struct SlotState {
    /// Connections recorded so far.
    serial: u64,
    /// The newest connection's exporter.
    latest: Option<Exported>,
}

impl ExporterSlot {
    /// The newest connection's exporter; `None` before the first
    /// connection.
    pub fn latest(&self) -> Option<Exported> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .latest
            .clone()
    }

    /// Records a new connection's exporter; returns its serial.
    fn record(&self, value: Vec<u8>) -> u64 {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.serial += 1;
        let serial = state.serial;
        state.latest = Some(Exported { serial, value });
        serial
    }
}

/// A response's status and body, the body read to the end but never past
/// `limit` bytes (a larger body is an error, not a truncation).
pub fn read_limited(
    resp: ureq::http::Response<ureq::Body>,
    limit: u64,
) -> Result<(u16, Vec<u8>), Error> {
    let status = resp.status().as_u16();
    let body = resp.into_body().with_config().limit(limit).read_to_vec()?;
    Ok((status, body))
}

/// `https://<server_name>`, the base of URLs for a peer known by that name
/// (an IPv6 address in brackets).
pub fn https_base(server_name: &str) -> String {
    if server_name.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("https://[{server_name}]")
    } else {
        format!("https://{server_name}")
    }
}

/// What went wrong with a request, as far as a caller's policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The peer could not be connected to ([`ConnectFailed`]): nothing was
    /// sent; trying again later may work.
    Unreachable,
    /// TLS failed ([`TlsFailed`]): an untrusted or misnamed certificate, a
    /// bad record.
    Tls,
    /// A ureq timeout expired (connect, a read, a write, or a total budget).
    Timeout,
    /// The connection broke mid-exchange: reset, aborted, or closed before
    /// a complete answer (end of stream). The peer (or the path to it)
    /// failed for now; a fresh exchange may work.
    Broken,
    /// Anything else: the peer spoke something other than HTTP/1.1, a body
    /// was over its limit.
    Other,
}

/// Sorts an error from an agent made here.
pub fn classify(e: &Error) -> Failure {
    match e {
        Error::Timeout(_) => Failure::Timeout,
        Error::Other(inner) if inner.is::<ConnectFailed>() => Failure::Unreachable,
        Error::Other(inner) if inner.is::<TlsFailed>() => Failure::Tls,
        Error::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            Failure::Timeout
        }
        Error::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::NotConnected
            ) =>
        {
            Failure::Broken
        }
        Error::ConnectionFailed => Failure::Broken,
        _ => Failure::Other,
    }
}

/// A response read whole: status, the `Retry-After` value if any, and the
/// body (at most `limit` bytes).
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, as sent.
    pub retry_after: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Reads a response whole (body bounded by `limit`), keeping `Retry-After`.
pub fn read_answer(resp: ureq::http::Response<ureq::Body>, limit: u64) -> Result<Answer, Error> {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(64).collect());
    let body = resp.into_body().with_config().limit(limit).read_to_vec()?;
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// An error's message without ureq's `other: ` prefix for the errors made
/// here; a TLS failure is rustls's own words.
pub fn message(e: &Error) -> String {
    match e {
        Error::Other(inner) => match inner.downcast_ref::<TlsFailed>() {
            Some(tls) => tls.0.to_string(),
            None => inner.to_string(),
        },
        e => e.to_string(),
    }
}

/// [`transport::connect`] failed (carried in [`Error::Other`]).
#[derive(Debug)]
pub struct ConnectFailed {
    /// Where we tried.
    pub addr: String,
    /// Why it failed.
    pub source: io::Error,
}

impl fmt::Display for ConnectFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot connect to {}: {}", self.addr, self.source)
    }
}

impl std::error::Error for ConnectFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// rustls refused the peer or a record (carried in [`Error::Other`]).
#[derive(Debug)]
pub struct TlsFailed(pub rustls::Error);

impl fmt::Display for TlsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS: {}", self.0)
    }
}

impl std::error::Error for TlsFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// An I/O error from below the HTTP layer, back into ureq's terms: a ureq
/// error that travelled through `std::io` (a timeout) is unwrapped, a rustls
/// error becomes [`TlsFailed`].
fn from_io(e: io::Error) -> Error {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return Error::Other(Box::new(TlsFailed(tls.clone())));
    }
    Error::from(e)
}

// ---------------------------------------------------------------------------
// Timeouts

/// The time a timeout leaves: `Ok(None)` when it never happens, `Err` when
/// it is spent.
fn budget(t: &NextTimeout) -> Result<Option<std::time::Duration>, Error> {
    if t.after.is_not_happening() {
        return Ok(None);
    }
    if t.after.is_zero() {
        return Err(Error::Timeout(t.reason));
    }
    Ok(Some(*t.after))
}

/// `SO_RCVTIMEO`/`SO_SNDTIMEO` for `limit` (a zero timeval blocks forever,
/// so a positive limit is at least a microsecond).
fn timeval(limit: Option<std::time::Duration>) -> TimeVal {
    match limit {
        None => TimeVal::new(0, 0),
        Some(d) => {
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            let micros = i64::from(d.subsec_micros());
            if secs == 0 && micros == 0 {
                TimeVal::new(0, 1)
            } else {
                TimeVal::new(secs, micros)
            }
        }
    }
}

/// An I/O error of a read or write under `reason`'s timeout.
fn io_error(e: io::Error, reason: ureq::Timeout) -> Error {
    match e.kind() {
        // SO_RCVTIMEO/SO_SNDTIMEO expiry is EAGAIN.
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout(reason),
        _ => Error::Io(e),
    }
}

// ---------------------------------------------------------------------------
// The byte stream

/// Opens every connection to one [`transport::Addr`], whatever the URL
/// says. Start of a chain; [`TlsConnector`] goes on it.
#[derive(Debug, Clone)]
pub struct StreamConnector {
    addr: transport::Addr,
}

impl StreamConnector {
    /// Connects to `addr`.
    pub fn new(addr: transport::Addr) -> StreamConnector {
        StreamConnector { addr }
    }
}

impl Connector<()> for StreamConnector {
    type Out = StreamTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<()>,
    ) -> Result<Option<StreamTransport>, Error> {
        let limit = budget(&details.timeout)?;
        let started = Instant::now();
        // transport::connect blocks (vsock and unix connects are local and
        // quick; a hybrid handshake has its own bound), so the connect
        // budget is checked when it returns; what is left of it bounds the
        // TLS handshake that follows.
        let stream = transport::connect(&self.addr).map_err(|source| {
            Error::Other(Box::new(ConnectFailed {
                addr: self.addr.to_string(),
                source,
            }))
        })?;
        if limit.is_some_and(|l| started.elapsed() >= l) {
            return Err(Error::Timeout(details.timeout.reason));
        }
        let handle = Arc::new(SocketHandle(stream.as_fd().try_clone_to_owned()?));
        let weak: Weak<dyn ShutdownHandle> = Arc::downgrade(&handle) as Weak<dyn ShutdownHandle>;
        (details.register_shutdown)(weak)?;
        let config = details.config;
        Ok(Some(StreamTransport {
            stream,
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
            read_timeout: None,
            write_timeout: None,
            _handle: handle,
        }))
    }
}

/// A duplicate of a connection's socket, for [`Agent::shutdown`] to shut it
/// down from another thread.
struct SocketHandle(OwnedFd);

impl ShutdownHandle for SocketHandle {
    fn shutdown(&self) {
        // An error means the socket is shut down or closed already.
        let _ = socket::shutdown(self.0.as_raw_fd(), socket::Shutdown::Both);
    }
}

/// A [`transport::Stream`] as a ureq [`Transport`].
pub struct StreamTransport {
    stream: transport::Stream,
    buffers: LazyBuffers,
    /// The `SO_RCVTIMEO` last set (`None`: not yet), to skip repeats.
    read_timeout: Option<Option<std::time::Duration>>,
    /// The `SO_SNDTIMEO` last set.
    write_timeout: Option<Option<std::time::Duration>>,
    /// Keeps the shutdown handle alive as long as the connection.
    _handle: Arc<SocketHandle>,
}

impl fmt::Debug for StreamTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTransport")
            .field("stream", &self.stream)
            .finish()
    }
}

impl Transport for StreamTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let timeout = timeout.for_write();
        let limit = budget(&timeout)?;
        if self.write_timeout != Some(limit) {
            socket::setsockopt(&self.stream, sockopt::SendTimeout, &timeval(limit))
                .map_err(io::Error::from)?;
            self.write_timeout = Some(limit);
        }
        let output = &self.buffers.output()[..amount];
        self.stream
            .write_all(output)
            .map_err(|e| io_error(e, timeout.reason))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let timeout = timeout.for_read();
        let limit = budget(&timeout)?;
        if self.read_timeout != Some(limit) {
            socket::setsockopt(&self.stream, sockopt::ReceiveTimeout, &timeval(limit))
                .map_err(io::Error::from)?;
            self.read_timeout = Some(limit);
        }
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match self.stream.read(input) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        }
        .map_err(|e| io_error(e, timeout.reason))?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    /// Open when a read would block: nothing has arrived while idle, not
    /// even EOF (bytes we did not ask for also make it unusable).
    fn is_open(&mut self) -> bool {
        let mut byte = [0u8; 1];
        let fd = self.stream.as_fd().as_raw_fd();
        matches!(
            socket::recv(fd, &mut byte, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT),
            Err(nix::errno::Errno::EAGAIN)
        )
    }
}

// ---------------------------------------------------------------------------
// TLS

/// Wraps the chained transport in TLS with a fixed client configuration and
/// server name (never taken from the URL).
#[derive(Debug, Clone)]
pub struct TlsConnector {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    /// The exporter to record for each new connection, and where.
    exporter: Option<(ExporterSpec, ExporterSlot)>,
}

impl TlsConnector {
    /// TLS with `config`, expecting a certificate for `server_name`.
    pub fn new(
        config: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
    ) -> TlsConnector {
        TlsConnector {
            config,
            server_name,
            exporter: None,
        }
    }

    /// Also records, once each new connection's handshake is complete, the
    /// exporter `spec` asks for in `slot` (see [`agent_with_exporter`]).
    pub fn with_exporter(mut self, spec: ExporterSpec, slot: ExporterSlot) -> TlsConnector {
        self.exporter = Some((spec, slot));
        self
    }
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = TlsTransport<In>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        // Without a transport below there is nothing to wrap, and no
        // plaintext fallback.
        let Some(inner) = chained else {
            return Err(Error::ConnectionFailed);
        };
        let conn =
            rustls::ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
                .map_err(|e| Error::Other(Box::new(TlsFailed(e))))?;
        // The handshake spends what the connect budget has left.
        let since = match details.now {
            UInstant::Exact(t) => t,
            _ => Instant::now(),
        };
        let mut io = Adapter {
            inner,
            timeout: details.timeout,
            since,
        };
        let mut conn = conn;
        conn.complete_io(&mut io).map_err(from_io)?;
        if conn.is_handshaking() {
            return Err(Error::Other(Box::new(TlsFailed(rustls::Error::General(
                "the peer closed during the handshake".into(),
            )))));
        }
        // The handshake is complete: the exporter comes from the very
        // session that will carry this connection's requests.
        if let Some((spec, slot)) = &self.exporter {
            let value = conn
                .export_keying_material(vec![0u8; spec.len], spec.label, None)
                .map_err(|e| Error::Other(Box::new(TlsFailed(e))))?;
            slot.record(value);
        }
        let config = details.config;
        Ok(Some(TlsTransport {
            stream: rustls::StreamOwned::new(conn, io),
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
        }))
    }
}

/// A transport as `std::io` for rustls, each read and write bounded by what
/// is left of the timeout last set.
struct Adapter<In> {
    inner: In,
    timeout: NextTimeout,
    since: Instant,
}

impl<In: Transport> Adapter<In> {
    fn set(&mut self, timeout: NextTimeout) {
        self.timeout = timeout;
        self.since = Instant::now();
    }

    /// The timeout last set, less the time since.
    fn now(&self) -> NextTimeout {
        let mut t = self.timeout;
        if let UDuration::Exact(d) = t.after {
            t.after = UDuration::Exact(d.saturating_sub(self.since.elapsed()));
        }
        t
    }
}

impl<In: Transport> Read for Adapter<In> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inner.buffers().input().is_empty() {
            let timeout = self.now();
            // Per-read limits apply in the transport doing the I/O.
            self.inner.await_input(timeout).map_err(Error::into_io)?;
        }
        let input = self.inner.buffers().input();
        let n = input.len().min(buf.len());
        buf[..n].copy_from_slice(&input[..n]);
        self.inner.buffers().input_consume(n);
        Ok(n)
    }
}

impl<In: Transport> Write for Adapter<In> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let output = self.inner.buffers().output();
        let n = buf.len().min(output.len());
        output[..n].copy_from_slice(&buf[..n]);
        let timeout = self.now();
        self.inner
            .transmit_output(n, timeout)
            .map_err(Error::into_io)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// HTTP over TLS over the chained transport.
pub struct TlsTransport<In: Transport> {
    stream: rustls::StreamOwned<rustls::ClientConnection, Adapter<In>>,
    buffers: LazyBuffers,
}

impl<In: Transport> fmt::Debug for TlsTransport<In> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport")
            .field("inner", &self.stream.sock.inner)
            .finish()
    }
}

impl<In: Transport> Transport for TlsTransport<In> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        self.stream.sock.set(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output).map_err(from_io)?;
        self.stream.flush().map_err(from_io)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.stream.sock.set(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input).map_err(from_io)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.sock.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------
// Names

/// A resolver that never resolves: the guest has no DNS, and
/// [`StreamConnector`] ignores addresses anyway. Returns `0.0.0.0` with the
/// URL's port as the one placeholder ureq requires.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDns;

impl Resolver for NoDns {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, Error> {
        let port = uri.port_u16().unwrap_or(443);
        let mut addrs = self.empty();
        addrs.push(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_timeouts_never_round_down_to_blocking() {
        assert_eq!(timeval(None), TimeVal::new(0, 0), "no timeout: block");
        assert_eq!(
            timeval(Some(std::time::Duration::from_nanos(10))),
            TimeVal::new(0, 1)
        );
        assert_eq!(
            timeval(Some(std::time::Duration::from_millis(1500))),
            TimeVal::new(1, 500_000)
        );
    }

    #[test]
    fn spent_budgets_are_timeouts() {
        let t = |after| NextTimeout {
            after,
            reason: ureq::Timeout::Connect,
            ..NextTimeout::default()
        };
        assert_eq!(budget(&t(UDuration::NotHappening)).ok(), Some(None));
        assert_eq!(
            budget(&t(UDuration::from_secs(2))).ok(),
            Some(Some(std::time::Duration::from_secs(2)))
        );
        assert!(matches!(
            budget(&t(UDuration::from_secs(0))),
            Err(Error::Timeout(ureq::Timeout::Connect))
        ));
    }

    #[test]
    fn errors_sort_into_what_callers_act_on() {
        let unreachable = Error::Other(Box::new(ConnectFailed {
            addr: "vsock://2:8000".into(),
            source: io::ErrorKind::ConnectionRefused.into(),
        }));
        assert_eq!(classify(&unreachable), Failure::Unreachable);
        assert_eq!(
            classify(&from_io(io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::DecryptError
            ))),
            Failure::Tls
        );
        assert_eq!(
            classify(&from_io(Error::Timeout(ureq::Timeout::PerRead).into_io())),
            Failure::Timeout
        );
        assert_eq!(
            classify(&io_error(
                io::ErrorKind::WouldBlock.into(),
                ureq::Timeout::PerWrite
            )),
            Failure::Timeout
        );
        for kind in [
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::NotConnected,
        ] {
            assert_eq!(classify(&from_io(kind.into())), Failure::Broken, "{kind:?}");
        }
        assert_eq!(classify(&Error::ConnectionFailed), Failure::Broken);
        assert_eq!(
            classify(&from_io(io::ErrorKind::InvalidData.into())),
            Failure::Other
        );
        assert_eq!(classify(&Error::BodyExceedsLimit(10)), Failure::Other);
    }

    #[test]
    fn base_urls_bracket_ipv6() {
        assert_eq!(
            https_base("vault.enclave.local"),
            "https://vault.enclave.local"
        );
        assert_eq!(https_base("127.0.0.1"), "https://127.0.0.1");
        assert_eq!(https_base("::1"), "https://[::1]");
    }

    /// The static level `log` compiles into a release build with these
    /// features enabled, by log's own rules (its `STATIC_MAX_LEVEL`): the
    /// most restrictive `release_max_level_*` if there is one, else the most
    /// restrictive `max_level_*`, else trace.
    fn release_level(features: &[&str]) -> log::LevelFilter {
        let levels = [
            ("off", log::LevelFilter::Off),
            ("error", log::LevelFilter::Error),
            ("warn", log::LevelFilter::Warn),
            ("info", log::LevelFilter::Info),
            ("debug", log::LevelFilter::Debug),
            ("trace", log::LevelFilter::Trace),
        ];
        let pick = |prefix: &str| {
            levels
                .iter()
                .find(|(name, _)| features.contains(&format!("{prefix}{name}").as_str()))
                .map(|l| l.1)
        };
        pick("release_max_level_")
            .or_else(|| pick("max_level_"))
            .unwrap_or(log::LevelFilter::Trace)
    }

    #[test]
    fn trace_is_compiled_out() {
        // ureq-proto's trace hex dumps would carry tokens and secrets. This
        // test runs in a debug build, where `release_max_level_*` features
        // are ignored; what governs the guest is its release build's graph:
        // the `log` features of enclave-init's normal dependencies for the
        // guest target, as Cargo resolves them.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    "tree",
                    "--locked",
                    "--offline",
                    "-p",
                    "enclave-init",
                    "--target",
                    "x86_64-unknown-linux-musl",
                    "-e",
                    "normal",
                ])
                .args(["--prefix", "none", "--format", "{p}|{f}", "--manifest-path"])
                .arg(root.join("Cargo.toml"))
                .output()
                .unwrap();
        assert!(
            out.status.success(),
            "cargo tree: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8(out.stdout).unwrap();
        let mut features: Vec<&str> = tree
            .lines()
            .filter(|l| l.starts_with("log v"))
            .flat_map(|l| l.split_once('|').map_or("", |x| x.1).split(','))
            .collect();
        features.sort_unstable();
        features.dedup();
        assert!(
            !features.is_empty(),
            "log is not in the guest's graph:\n{tree}"
        );
        let level = release_level(&features);
        assert!(
            level <= log::LevelFilter::Debug,
            "the release guest's log level is {level} (features {features:?})"
        );
        // The rules themselves, on the cases that matter.
        assert_eq!(
            release_level(&["kv", "max_level_debug"]),
            log::LevelFilter::Debug
        );
        assert_eq!(
            release_level(&["max_level_debug", "release_max_level_trace"]),
            log::LevelFilter::Trace
        );
        assert_eq!(release_level(&["kv"]), log::LevelFilter::Trace);
        assert_eq!(
            release_level(&["max_level_trace", "max_level_info"]),
            log::LevelFilter::Info
        );
        // And the build this test runs in.
        assert!(log::STATIC_MAX_LEVEL <= log::LevelFilter::Debug);
    }

    #[test]
    fn messages_drop_the_other_prefix() {
        let e = Error::Other(Box::new(TlsFailed(rustls::Error::DecryptError)));
        assert_eq!(message(&e), rustls::Error::DecryptError.to_string());
        let e = Error::Other(Box::new(ConnectFailed {
            addr: "unix:///x".into(),
            source: io::ErrorKind::NotFound.into(),
        }));
        assert_eq!(message(&e), "cannot connect to unix:///x: entity not found");
        assert_eq!(
            message(&Error::Timeout(ureq::Timeout::PerRead)),
            Error::Timeout(ureq::Timeout::PerRead).to_string()
        );
    }

    #[test]
    fn the_resolver_answers_without_dns() {
        let config = Config::default();
        let uri: Uri = "https://vault.enclave.local:8200/v1/sys/health"
            .parse()
            .unwrap_or_default();
        let addrs = NoDns
            .resolve(&uri, &config, NextTimeout::default())
            .map_err(|e| e.to_string());
        assert_eq!(
            addrs.map(|a| a.iter().copied().collect::<Vec<_>>()),
            Ok(vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8200))])
        );
    }
}
