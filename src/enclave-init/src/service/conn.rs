//! One client connection: TLS, then HTTP/1.1 requests with keep-alive,
//! each read bounded by the I/O timeout and by the phase's deadline: the
//! idle timeout for the handshake and the wait for a request's first
//! byte, the request timeout from that byte to the end of its body.
//!
//! While other connections wait for a worker, a phase that has lasted
//! [`SHED_GRACE`] and brought less than [`SHED_MIN_RATE`] is cut: an idle
//! keep-alive connection, a handshake that stopped half-way, a request
//! head or body dripped byte by byte. A real client sends its handshake
//! and its request in a burst, far above the floor; it only loses a
//! kept-alive connection it was not using, which HTTP lets a server close
//! at any time.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bounded_http::{HttpError, Limits};
use transport::Stream;
use zeroize::Zeroize;

use super::routes::{self, ApiError, Reply};
use super::tls::Peer;
use super::Service;

/// Under pressure (connections waiting for a worker), how long a phase
/// may last below [`SHED_MIN_RATE`] before it is cut: long enough for a
/// handshake or a request sent at once, short enough that a waiting
/// client is served within about a second per busy worker.
const SHED_GRACE: Duration = Duration::from_secs(1);
/// Under pressure, the floor on a phase's average rate (bytes on the
/// socket since it began): 8 KiB/s, the rate of the 8 kHz µ-law audio the
/// service is sent. An idle connection has 0; one byte a second in TLS
/// records is about 22.
const SHED_MIN_RATE: f64 = 8.0 * 1024.0;
/// How often a blocked read looks at the queue.
const SHED_POLL: Duration = Duration::from_millis(100);

/// The socket under TLS, refusing to wait past a deadline, for longer
/// than the I/O timeout without a byte, or (while others wait) for a
/// crawling peer.
pub(super) struct Timed {
    stream: Stream,
    io: Duration,
    deadline: Instant,
    /// The read timeout the socket has now: set again only when it must
    /// change (not on every read of a large body).
    read_timeout: Duration,
    /// The service's count of connections waiting for a worker; `None`:
    /// never shed (the busy thread's short answers).
    waiting: Option<Arc<AtomicUsize>>,
    /// When the current phase began, and the bytes read in it.
    phase_start: Instant,
    phase_bytes: u64,
}

impl Timed {
    fn new(
        stream: Stream,
        io: Duration,
        deadline: Instant,
        waiting: Option<Arc<AtomicUsize>>,
    ) -> io::Result<Timed> {
        stream.set_timeouts(io)?;
        Ok(Timed {
            stream,
            io,
            deadline,
            read_timeout: io,
            waiting,
            phase_start: Instant::now(),
            phase_bytes: 0,
        })
    }

    /// Starts a phase that must end within `limit`.
    fn begin(&mut self, limit: Duration) {
        let now = Instant::now();
        self.deadline = now + limit;
        self.phase_start = now;
        self.phase_bytes = 0;
    }

    /// Others wait for a worker, and this phase has crawled for longer
    /// than the grace.
    fn shed(&self, now: Instant) -> bool {
        let Some(waiting) = &self.waiting else {
            return false;
        };
        let t = now.saturating_duration_since(self.phase_start);
        let slow = (self.phase_bytes as f64) < SHED_MIN_RATE * t.as_secs_f64();
        t >= SHED_GRACE && slow && waiting.load(Ordering::SeqCst) > 0
    }
}

impl Read for Timed {
    /// Waits in slices of [`SHED_POLL`] so that the queue is looked at
    /// while the peer is silent; the I/O timeout still bounds each read.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let started = Instant::now();
        loop {
            let now = Instant::now();
            let left = self.deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request deadline passed",
                ));
            }
            let silent = (started + self.io).saturating_duration_since(now);
            if silent.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "i/o timeout"));
            }
            if self.shed(now) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "too slow while others wait for a worker",
                ));
            }
            let want = left.min(silent).min(SHED_POLL);
            if want != self.read_timeout {
                self.stream.set_read_timeout(Some(want))?;
                self.read_timeout = want;
            }
            match self.stream.read(buf) {
                Ok(n) => {
                    self.phase_bytes += n as u64;
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

type Tls = BufReader<rustls::StreamOwned<rustls::ServerConnection, Timed>>;

fn open(
    stream: Stream,
    svc: &Service,
    deadline: Instant,
    waiting: Option<Arc<AtomicUsize>>,
) -> Option<Tls> {
    let timed = match Timed::new(stream, svc.cfg.io_timeout, deadline, waiting) {
        Ok(t) => t,
        Err(e) => {
            crate::debug!(error = e.to_string().as_str(); "call service: cannot set timeouts");
            return None;
        }
    };
    let conn = match rustls::ServerConnection::new(Arc::clone(&svc.tls)) {
        Ok(c) => c,
        Err(e) => {
            crate::warn!(error = e.to_string().as_str(); "call service: TLS session setup failed");
            return None;
        }
    };
    Some(BufReader::with_capacity(
        64 * 1024,
        rustls::StreamOwned::new(conn, timed),
    ))
}

/// Serves requests on one connection until the client closes, asks to
/// close, errs, idles past the idle timeout or is shed (module doc).
pub(super) fn serve(stream: Stream, svc: &Service) {
    let waiting = Some(Arc::clone(&svc.waiting));
    let Some(mut tls) = open(stream, svc, Instant::now() + svc.cfg.idle_timeout, waiting) else {
        return;
    };
    let limits = Limits {
        head_bytes: 16 * 1024,
        body_bytes: svc.cfg.max_body,
    };
    // One body buffer for the connection's requests (wiped after each):
    // a kept-alive client's calls do not each allocate, fault in and
    // unmap half a megabyte.
    let mut body = Vec::new();
    loop {
        // Idle: the handshake (the first time) and the wait for the next
        // request's first byte, within the idle timeout. A connection
        // that sent no byte of a request is closed without an answer.
        tls.get_mut().sock.begin(svc.cfg.idle_timeout);
        match tls.fill_buf() {
            Ok([]) => return,
            Ok(_) => {}
            Err(e) => return close_idle(&mut tls, &e),
        }
        // From the request's first byte to the end of its body: the
        // request timeout (a dripped head included).
        tls.get_mut().sock.begin(svc.cfg.request_timeout);
        let mut req = match bounded_http::read_request_head(&mut tls, limits) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => return refuse(&mut tls, svc, e),
        };
        if let Err(e) = bounded_http::declared_body_len(&req.headers, limits) {
            return refuse(&mut tls, svc, e);
        }
        if req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            && tls
                .get_mut()
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .and_then(|()| tls.get_mut().flush())
                .is_err()
        {
            return;
        }
        req.body = std::mem::take(&mut body);
        if let Err(e) =
            bounded_http::read_request_body_into(&mut tls, &req.headers, limits, &mut req.body)
        {
            return refuse(&mut tls, svc, e);
        }
        let close = req.wants_close();
        // HTTP/1.0 kept alive only because it asked: the answer says so.
        let keep_alive_10 = !close && req.minor_version == 0;
        let reply = routes::dispatch(&req, svc, Peer::of(&tls.get_ref().conn));
        body = reuse(std::mem::take(&mut req.body));
        if send_framed(&mut tls, svc, &reply, close, keep_alive_10).is_err() || close {
            return;
        }
    }
}

/// The largest body buffer a connection keeps between requests (a
/// minute of 16 kHz PCM is 1.9 MB); a larger one is freed, so a worker
/// holds at most this much while its client idles.
const KEEP_BODY_BUFFER: usize = 2 * 1024 * 1024;

/// A request's body buffer made ready for the next request: its bytes
/// wiped (call audio is personal data; the capacity past them was wiped
/// before), emptied, kept if small enough.
fn reuse(mut body: Vec<u8>) -> Vec<u8> {
    if body.capacity() > KEEP_BODY_BUFFER {
        // The allocator wipes the whole block when it is freed (zalloc.rs).
        return Vec::new();
    }
    body.as_mut_slice().zeroize();
    body.clear();
    body
}

/// Closes a connection that idled past its timeout or was shed: no request
/// to answer; a TLS close if the handshake was done.
fn close_idle(tls: &mut Tls, e: &io::Error) {
    crate::debug!(error = e.to_string().as_str(); "call service: idle connection closed");
    let w = tls.get_mut();
    if !w.conn.is_handshaking() {
        w.conn.send_close_notify();
        let _ = w.conn.write_tls(&mut w.sock);
    }
}

/// Answers a request that could not be read, when an answer is possible,
/// and closes: the stream cannot be resynchronised.
fn refuse(tls: &mut Tls, svc: &Service, e: HttpError) {
    let err = match &e {
        HttpError::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            ApiError::new(
                408,
                "request.timeout",
                "the request was not received in time",
            )
        }
        HttpError::Io(io) => {
            // Closed mid-request or TLS failure: nobody to answer.
            crate::debug!(error = io.to_string().as_str(); "call service: connection failed");
            return;
        }
        HttpError::Malformed(what) => ApiError::new(
            400,
            "request.malformed",
            format!("malformed HTTP request: {what}"),
        ),
        HttpError::HeadTooLarge => ApiError::new(
            431,
            "request.head_too_large",
            "request line and headers exceed 16 KiB",
        ),
        HttpError::BodyTooLarge { declared, limit } => ApiError::new(
            413,
            "request.too_large",
            format!("body of {declared} bytes exceeds the limit of {limit} bytes"),
        ),
        HttpError::Framing(what) => ApiError::new(
            411,
            "request.framing",
            format!("unsupported framing: {what}"),
        ),
    };
    crate::info!(status = err.status, code = err.code; "request refused");
    // A timed-out client gets a short grace to read its 408.
    tls.get_mut().sock.deadline = Instant::now() + Duration::from_secs(1);
    let _ = send(tls, svc, &Reply::Error(err), true);
}

fn send(tls: &mut Tls, svc: &Service, reply: &Reply, close: bool) -> io::Result<()> {
    send_framed(tls, svc, reply, close, false)
}

/// [`send`], saying `Connection: keep-alive` when `keep_alive` (an
/// HTTP/1.0 client that asked for it).
fn send_framed(
    tls: &mut Tls,
    svc: &Service,
    reply: &Reply,
    close: bool,
    keep_alive: bool,
) -> io::Result<()> {
    let (status, content_type, body, retry_after) = reply.parts();
    svc.shared.metrics.response(status);
    let mut headers: Vec<(&str, &str)> = vec![
        ("content-type", content_type),
        ("cache-control", "no-store"),
    ];
    let retry;
    if let Some(secs) = retry_after {
        retry = secs.to_string();
        headers.push(("retry-after", &retry));
    }
    if close {
        headers.push(("connection", "close"));
    } else if keep_alive {
        headers.push(("connection", "keep-alive"));
    }
    let w = tls.get_mut();
    bounded_http::write_response(w, status, &headers, &body)?;
    if close {
        w.conn.send_close_notify();
        let _ = w.conn.complete_io(&mut w.sock);
        linger(&mut w.sock);
    }
    Ok(())
}

/// Bound on the lingering close: time and bytes discarded.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 32 * 1024 * 1024;

/// A lingering close (as nginx does): when we answer before the client has
/// sent its whole body (413, 408, 503), closing at once with unread data
/// makes the kernel reset the connection, and the client may lose our
/// answer while still writing. So read and discard what it still sends,
/// briefly and boundedly, before closing.
fn linger(sock: &mut Timed) {
    sock.begin(LINGER);
    let mut sink = [0u8; 16 * 1024];
    let mut total = 0;
    while total < LINGER_BYTES {
        match sock.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

/// Every worker is busy: handshake, read the request head if it comes
/// quickly, answer 503 with Retry-After, close. Bounded by `deadline`.
pub(super) fn answer_busy(stream: Stream, svc: &Service, deadline: Duration) {
    let Some(mut tls) = open(stream, svc, Instant::now() + deadline, None) else {
        return;
    };
    // Reading the head lets the client see the answer instead of a reset
    // (closing with unread data makes the kernel send RST).
    let _ = bounded_http::read_request_head(
        &mut tls,
        Limits {
            head_bytes: 16 * 1024,
            body_bytes: 0,
        },
    );
    let err = ApiError::new(503, "service.busy", "every worker is busy; retry later")
        .retry_after(svc.cfg.retry_after_secs);
    let _ = send(&mut tls, svc, &Reply::Error(err), true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_buffer_is_kept_emptied_up_to_its_bound_and_freed_past_it() {
        let mut small = Vec::with_capacity(600 * 1024);
        small.extend_from_slice(&[7u8; 480 * 1024]);
        let kept = reuse(small);
        assert!(kept.is_empty());
        assert!(kept.capacity() >= 600 * 1024);
        let mut large = Vec::with_capacity(KEEP_BODY_BUFFER + 1);
        large.push(1u8);
        assert_eq!(reuse(large).capacity(), 0);
    }
}
