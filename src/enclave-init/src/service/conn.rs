//! One client connection: TLS, then HTTP/1.1 requests with keep-alive,
//! each read bounded by the I/O timeout and by the request's deadline.

use std::io::{self, BufReader, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HttpError, Limits};
use transport::Stream;

use super::routes::{self, ApiError, Reply};
use super::tls::Peer;
use super::Service;

/// The socket under TLS, refusing to wait past a deadline.
pub(super) struct Timed {
    stream: Stream,
    io: Duration,
    deadline: Instant,
    /// The read timeout the socket has now: set again only when the
    /// deadline comes nearer than the I/O timeout (not on every read of a
    /// large body).
    read_timeout: Duration,
}

impl Timed {
    fn new(stream: Stream, io: Duration, deadline: Instant) -> io::Result<Timed> {
        stream.set_timeouts(io)?;
        Ok(Timed {
            stream,
            io,
            deadline,
            read_timeout: io,
        })
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request deadline passed",
            ));
        }
        let want = left.min(self.io);
        if want != self.read_timeout {
            self.stream.set_read_timeout(Some(want))?;
            self.read_timeout = want;
        }
        self.stream.read(buf)
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

fn open(stream: Stream, svc: &Service, deadline: Instant) -> Option<Tls> {
    let timed = match Timed::new(stream, svc.cfg.io_timeout, deadline) {
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
/// close, errs or idles past the idle timeout.
pub(super) fn serve(stream: Stream, svc: &Service) {
    let Some(mut tls) = open(stream, svc, Instant::now() + svc.cfg.idle_timeout) else {
        return;
    };
    let limits = Limits {
        head_bytes: 16 * 1024,
        body_bytes: svc.cfg.max_body,
    };
    loop {
        // Waiting for the next request (and the handshake, the first time):
        // the idle timeout. Then the whole request: the request timeout.
        tls.get_mut().sock.deadline = Instant::now() + svc.cfg.idle_timeout;
        let mut req = match http::read_request_head(&mut tls, limits) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => return refuse(&mut tls, svc, e),
        };
        tls.get_mut().sock.deadline = Instant::now() + svc.cfg.request_timeout;
        if let Err(e) = http::declared_body_len(&req.headers, limits) {
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
        req.body = match http::read_request_body(&mut tls, &req.headers, limits) {
            Ok(b) => b,
            Err(e) => return refuse(&mut tls, svc, e),
        };
        let close = req.wants_close();
        let reply = routes::dispatch(&req, svc, Peer::of(&tls.get_ref().conn));
        if send(&mut tls, svc, &reply, close).is_err() || close {
            return;
        }
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
    }
    let w = tls.get_mut();
    http::write_response(w, status, &headers, &body)?;
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
    sock.deadline = Instant::now() + LINGER;
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
    let Some(mut tls) = open(stream, svc, Instant::now() + deadline) else {
        return;
    };
    // Reading the head lets the client see the answer instead of a reset
    // (closing with unread data makes the kernel send RST).
    let _ = http::read_request_head(
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
