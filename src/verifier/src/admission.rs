//! Which accepted connections get a worker, which wait, which are shed.
//!
//! A fixed set of workers takes connections from a bounded queue. A
//! connection is admitted when its source address holds fewer than the
//! per-source cap and the queue has room (counting idle workers, which
//! take it at once); otherwise it is shed (`503` with `Retry-After`). One
//! that waits longer than the wait timeout is shed too, so a client waits
//! a bounded time for either an answer or a refusal.
//!
//! The per-source cap is by peer IP: behind a TCP proxy (HAProxy, the
//! enclave proxy) every connection comes from the proxy's address, so
//! there it must be raised to the connection limit (or PROXY protocol put
//! in front; not implemented).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Admission settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Worker threads: connections served at once.
    pub workers: usize,
    /// Connections that may wait for a worker beyond the idle ones.
    pub queue: usize,
    /// How long a connection may wait for a worker before it is shed.
    pub queue_wait: Duration,
    /// Connections (served or waiting) from one peer IP.
    pub per_source: usize,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its source holds the per-source cap.
    Source,
    /// Every worker is busy and the queue is full.
    Full,
}

/// A connection holding its place in its source's count until dropped.
pub struct Admitted {
    /// The connection.
    pub tcp: TcpStream,
    /// When it was accepted.
    pub since: Instant,
    _slot: SourceSlot,
}

struct SourceSlot {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut st = self.gate.lock();
        if let Some(n) = st.per_source.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                st.per_source.remove(&self.ip);
            }
        }
    }
}

struct State {
    queue: VecDeque<Admitted>,
    busy: usize,
    per_source: HashMap<IpAddr, usize>,
}

/// The queue, the busy count and the per-source counts.
pub struct Gate {
    limits: Limits,
    state: Mutex<State>,
    ready: Condvar,
    /// Connections in the queue (read by workers without the lock, to
    /// decide whether to shed a crawler).
    waiting: Arc<AtomicUsize>,
    /// Workers serving a connection.
    in_flight: AtomicUsize,
}

impl Gate {
    /// An empty gate.
    pub fn new(limits: Limits) -> Arc<Gate> {
        Arc::new(Gate {
            limits: Limits {
                workers: limits.workers.max(1),
                per_source: limits.per_source.max(1),
                ..limits
            },
            state: Mutex::new(State {
                queue: VecDeque::new(),
                busy: 0,
                per_source: HashMap::new(),
            }),
            ready: Condvar::new(),
            waiting: Arc::new(AtomicUsize::new(0)),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The settings (workers at least 1).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The count of connections waiting for a worker.
    pub fn waiting(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.waiting)
    }

    /// Connections waiting now.
    pub fn queue_waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Workers serving a connection now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Queues `tcp` from `ip` for a worker, or says why not (the caller
    /// sheds it).
    pub fn admit(self: &Arc<Self>, tcp: TcpStream, ip: IpAddr) -> Result<(), (TcpStream, Refusal)> {
        let mut st = self.lock();
        let from_source = st.per_source.get(&ip).copied().unwrap_or(0);
        if from_source >= self.limits.per_source {
            return Err((tcp, Refusal::Source));
        }
        let idle = self.limits.workers.saturating_sub(st.busy);
        if st.queue.len() >= self.limits.queue.saturating_add(idle) {
            return Err((tcp, Refusal::Full));
        }
        *st.per_source.entry(ip).or_default() += 1;
        st.queue.push_back(Admitted {
            tcp,
            since: Instant::now(),
            _slot: SourceSlot {
                gate: Arc::clone(self),
                ip,
            },
        });
        self.waiting.store(st.queue.len(), Ordering::SeqCst);
        drop(st);
        self.ready.notify_one();
        Ok(())
    }

    /// A worker's next connection (waits for one); the worker counts as
    /// busy until [`Gate::done`].
    pub fn take(&self) -> Admitted {
        let mut st = self.lock();
        loop {
            if let Some(a) = st.queue.pop_front() {
                st.busy += 1;
                self.in_flight.store(st.busy, Ordering::SeqCst);
                self.waiting.store(st.queue.len(), Ordering::SeqCst);
                return a;
            }
            st = self.ready.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The worker finished its connection.
    pub fn done(&self) {
        let mut st = self.lock();
        st.busy = st.busy.saturating_sub(1);
        self.in_flight.store(st.busy, Ordering::SeqCst);
    }

    /// Removes the connections that have waited longer than the wait
    /// timeout (the caller sheds them).
    pub fn expired(&self, now: Instant) -> Vec<Admitted> {
        let mut st = self.lock();
        let mut out = Vec::new();
        while st
            .queue
            .front()
            .is_some_and(|a| now.saturating_duration_since(a.since) >= self.limits.queue_wait)
        {
            if let Some(a) = st.queue.pop_front() {
                out.push(a);
            }
        }
        self.waiting.store(st.queue.len(), Ordering::SeqCst);
        out
    }

    /// Connections counted for `ip` (served or waiting).
    pub fn from_source(&self, ip: IpAddr) -> usize {
        self.lock().per_source.get(&ip).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    fn conn(l: &TcpListener) -> TcpStream {
        TcpStream::connect(l.local_addr().unwrap()).unwrap()
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    /// Two workers, a queue of one: three connections fit (two taken at
    /// once by idle workers, one waits), the fourth is refused as full;
    /// one source is capped at its limit while another is still admitted;
    /// a slot frees when its connection is dropped.
    #[test]
    fn the_queue_and_the_per_source_cap_bound_admission() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let g = Gate::new(Limits {
            workers: 2,
            queue: 1,
            queue_wait: Duration::from_secs(5),
            per_source: 2,
        });
        g.admit(conn(&l), A).unwrap();
        g.admit(conn(&l), A).unwrap();
        // A third from A: the source cap (2), though there is room.
        assert_eq!(g.admit(conn(&l), A).unwrap_err().1, Refusal::Source);
        let a1 = g.take();
        let a2 = g.take();
        assert_eq!(g.in_flight(), 2);
        g.admit(conn(&l), B).unwrap();
        assert_eq!(g.queue_waiting(), 1);
        // Both workers busy, the one queue place taken: full.
        assert_eq!(g.admit(conn(&l), B).unwrap_err().1, Refusal::Full);
        assert_eq!(g.from_source(A), 2);
        drop(a1);
        g.done();
        assert_eq!(g.from_source(A), 1);
        assert_eq!(g.in_flight(), 1);
        // A worker is idle again: one more fits besides the waiting one.
        g.admit(conn(&l), A).unwrap();
        assert_eq!(g.queue_waiting(), 2);
        drop(a2);
    }

    /// A connection that waited past the wait timeout is handed back for
    /// shedding; a newer one stays queued.
    #[test]
    fn a_connection_waiting_too_long_is_expired() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let g = Gate::new(Limits {
            workers: 1,
            queue: 4,
            queue_wait: Duration::from_millis(200),
            per_source: 8,
        });
        g.admit(conn(&l), A).unwrap();
        let _busy = g.take();
        g.admit(conn(&l), A).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        g.admit(conn(&l), B).unwrap();
        let gone = g.expired(Instant::now());
        assert_eq!(gone.len(), 1);
        assert_eq!(g.queue_waiting(), 1);
        drop(gone);
        assert_eq!(g.from_source(A), 1);
        assert_eq!(g.from_source(B), 1);
    }
}
