//! The call service (boot step 9): HTTP/1.1 over TLS over the vsock call
//! port, TLS ending here with a key that never leaves the guest.
//!
//! Shape, after Firecracker's API server and the usual bounded-pool
//! servers: one acceptor thread hands connections to a fixed set of worker
//! threads through a bounded queue. When the queue is full the connection
//! goes to a single "busy" thread that completes the TLS handshake and
//! answers `503` with `Retry-After` under a short deadline; when even that
//! thread is backed up, the connection is closed. Every read is bounded by
//! the I/O timeout and by the request's deadline, so a slow client loses
//! its worker instead of holding it.
//!
//! Deadlines alone still let a few clients starve everyone for a timeout:
//! with `workers` connections idle on keep-alive, dripping a request or
//! stuck in a handshake, a new client waits in the queue until one times
//! out. So the workers watch the queue ([`Service::waiting`]): while a
//! connection waits for a worker, a connection that is idle, or slower
//! than a floor rate, for more than a grace period is closed (`conn.rs`,
//! `Timed::read`). Without waiters nothing changes: the timeouts rule.
//!
//! Routes (`routes.rs`): `POST /v1/calls` (`calls.rs`), `POST
//! /v1/retell/events` (`retell.rs`), `GET /health/enclave` and `GET
//! /metrics` (`health.rs`). Errors are JSON `{"error":{"code","message"}}`
//! with stable codes; no message carries request data.

mod calls;
mod conn;
mod health;
mod retell;
mod routes;
pub mod tls;
mod upstream;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::ServiceConfig;
use crate::lifecycle::Lifecycle as Shared;
use transport::{Listener, Stream};

/// Everything a worker needs.
pub struct Service {
    cfg: ServiceConfig,
    tls: Arc<rustls::ServerConfig>,
    /// HTTPS to the transcription upstream (`None`: not configured).
    upstream: Option<upstream::Upstream>,
    shared: Arc<Shared>,
    replay: Mutex<callproc::retell::ReplayGuard>,
    /// Connections accepted and queued for a worker, not yet taken: while
    /// this is not zero, workers shed idle and crawling connections.
    waiting: Arc<AtomicUsize>,
}

impl Service {
    /// The service over `shared`, presenting `tls`.
    pub fn new(
        cfg: ServiceConfig,
        tls: Arc<rustls::ServerConfig>,
        shared: Arc<Shared>,
    ) -> Result<Arc<Service>, String> {
        let upstream_tls =
            crate::attest::client_config(&cfg.transcription.ca_pem, Arc::clone(&shared.time))
                .map_err(|e| format!("transcription.ca: {e}"))?;
        let upstream = upstream::Upstream::new(&cfg, upstream_tls)?;
        let window_ms = u64::try_from(cfg.retell_window.as_millis()).unwrap_or(u64::MAX);
        let replay = Mutex::new(callproc::retell::ReplayGuard::new(
            REPLAY_CAPACITY,
            window_ms,
        ));
        Ok(Arc::new(Service {
            waiting: Arc::new(AtomicUsize::new(0)),
            replay,
            cfg,
            tls,
            upstream,
            shared,
        }))
    }
}

/// Distinct Retell deliveries remembered within the replay window.
const REPLAY_CAPACITY: usize = 4096;
/// Connections waiting for the busy thread before new ones are dropped.
const BUSY_QUEUE: usize = 32;
/// Bound on answering a connection `503`, handshake included.
const BUSY_DEADLINE: Duration = Duration::from_secs(2);

/// Starts the acceptor, the workers and the busy thread on `listener`.
pub fn start(listener: Listener, service: Arc<Service>) -> io::Result<()> {
    let (work_tx, work_rx) = mpsc::sync_channel::<Stream>(service.cfg.queue);
    let work_rx = Arc::new(Mutex::new(work_rx));
    for i in 0..service.cfg.workers {
        let rx = Arc::clone(&work_rx);
        let svc = Arc::clone(&service);
        std::thread::Builder::new()
            .name(format!("call-worker-{i}"))
            .spawn(move || worker(&rx, &svc))?;
    }
    let (busy_tx, busy_rx) = mpsc::sync_channel::<Stream>(BUSY_QUEUE);
    let svc = Arc::clone(&service);
    std::thread::Builder::new()
        .name("call-busy".into())
        .spawn(move || {
            for stream in busy_rx {
                conn::answer_busy(stream, &svc, BUSY_DEADLINE);
            }
        })?;
    std::thread::Builder::new()
        .name("call-accept".into())
        .spawn(move || accept(&listener, &work_tx, &busy_tx, &service))?;
    Ok(())
}

fn accept(
    listener: &Listener,
    work: &SyncSender<Stream>,
    busy: &SyncSender<Stream>,
    svc: &Service,
) {
    loop {
        let stream = match listener.accept() {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off rather than spin.
                crate::warn!(error = e.to_string().as_str(); "call service: accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        // Counted before it is queued, so that the worker taking it never
        // decrements first.
        svc.waiting.fetch_add(1, Ordering::SeqCst);
        match work.try_send(stream) {
            Ok(()) => {}
            Err(TrySendError::Full(stream)) => {
                svc.waiting.fetch_sub(1, Ordering::SeqCst);
                svc.shared.metrics.busy();
                if busy.try_send(stream).is_err() {
                    crate::warn!("call service saturated: connection dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                svc.waiting.fetch_sub(1, Ordering::SeqCst);
                crate::error!("call service: every worker is gone; not accepting");
                return;
            }
        }
    }
}

fn worker(rx: &Mutex<Receiver<Stream>>, svc: &Service) {
    loop {
        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        match next {
            Ok(stream) => {
                svc.waiting.fetch_sub(1, Ordering::SeqCst);
                conn::serve(stream, svc);
            }
            Err(_) => return,
        }
    }
}
