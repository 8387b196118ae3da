//! Deadlines for a whole phase of a connection, not per read.
//!
//! A socket read timeout alone lets a peer that sends one byte every few
//! seconds hold a connection (and its worker) forever: each read succeeds.
//! [`Timed`] wraps the socket under TLS and shrinks the read timeout to
//! what is left of the current phase's deadline (the handshake, the idle
//! wait for a request, or a request from its first byte to the end of its
//! body), so a crawling peer is cut when the deadline passes however often
//! its bytes arrive. The same idea as the guest's call service
//! (`enclave-init` `service/conn.rs`), written again here: the verifier
//! does not depend on the guest.
//!
//! While other connections wait for a worker, a phase that has lasted
//! [`SHED_GRACE`] below [`SHED_MIN_RATE`] is cut too (idle keep-alive,
//! a handshake stopped half-way, a dripped request): a real client sends
//! its handshake and its request in one burst, far above the floor.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Under pressure, how long a phase may crawl before it is cut.
pub const SHED_GRACE: Duration = Duration::from_secs(1);
/// Under pressure, the floor on a phase's average rate, bytes a second on
/// the socket. A guest's attest request (a few kB at once) is far above;
/// one byte a second in TLS records is about 22.
pub const SHED_MIN_RATE: f64 = 2.0 * 1024.0;
/// How often a blocked read looks at the deadline and the queue.
const POLL: Duration = Duration::from_millis(100);

/// The phase of a connection a deadline belongs to (the label of
/// `enclave_verifier_deadline_kills_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The TLS handshake.
    Handshake,
    /// Waiting for the first byte of the next request (keep-alive).
    Idle,
    /// From a request's first byte to the end of its body.
    Request,
}

impl Phase {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Handshake => "handshake",
            Phase::Idle => "idle",
            Phase::Request => "request",
        }
    }
}

/// Why a read was cut: the error a [`Timed`] read returns, kept so the
/// connection can count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The phase's deadline passed.
    Deadline(Phase),
    /// Too slow while others wait for a worker.
    Shed(Phase),
    /// No byte for the I/O timeout.
    Silent(Phase),
}

impl Cut {
    /// The phase it happened in.
    pub fn phase(self) -> Phase {
        match self {
            Cut::Deadline(p) | Cut::Shed(p) | Cut::Silent(p) => p,
        }
    }
}

/// The socket, refusing to wait past the phase's deadline, for longer
/// than the I/O timeout without a byte, or (while others wait) for a
/// crawling peer.
pub struct Timed {
    sock: TcpStream,
    io: Duration,
    phase: Phase,
    deadline: Instant,
    /// The read timeout the socket has now (set again only on change).
    read_timeout: Option<Duration>,
    /// Connections waiting for a worker; `None`: never shed.
    waiting: Option<Arc<AtomicUsize>>,
    phase_start: Instant,
    phase_bytes: u64,
    /// Whether this phase may be shed as a crawler.
    sheddable: bool,
    /// The last cut, if a read was cut.
    cut: Option<Cut>,
}

impl Timed {
    /// Wraps `sock`; the first phase is `phase`, lasting at most `limit`.
    pub fn new(
        sock: TcpStream,
        io: Duration,
        phase: Phase,
        limit: Duration,
        waiting: Option<Arc<AtomicUsize>>,
    ) -> io::Result<Timed> {
        sock.set_write_timeout(Some(io))?;
        let now = Instant::now();
        Ok(Timed {
            sock,
            io,
            phase,
            deadline: now + limit,
            read_timeout: None,
            waiting,
            phase_start: now,
            phase_bytes: 0,
            sheddable: true,
            cut: None,
        })
    }

    /// Starts `phase`, which must end within `limit` from now.
    pub fn begin(&mut self, phase: Phase, limit: Duration) {
        self.begin_with(phase, limit, true);
    }

    /// Starts `phase` like [`Timed::begin`], never shed as a crawler:
    /// only its deadline ends it (a client that has made a request waits
    /// for its evidence between the challenge and the attest; a TDX quote
    /// can take a second).
    pub fn begin_patient(&mut self, phase: Phase, limit: Duration) {
        self.begin_with(phase, limit, false);
    }

    fn begin_with(&mut self, phase: Phase, limit: Duration, sheddable: bool) {
        let now = Instant::now();
        self.sheddable = sheddable;
        self.phase = phase;
        self.deadline = now + limit;
        self.phase_start = now;
        self.phase_bytes = 0;
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Why the last read was cut, if it was.
    pub fn cut(&self) -> Option<Cut> {
        self.cut
    }

    /// The socket (for its peer address, a shutdown).
    pub fn get_ref(&self) -> &TcpStream {
        &self.sock
    }

    fn shed(&self, now: Instant) -> bool {
        let Some(waiting) = &self.waiting else {
            return false;
        };
        if !self.sheddable {
            return false;
        }
        let t = now.saturating_duration_since(self.phase_start);
        #[allow(clippy::cast_precision_loss)]
        let slow = (self.phase_bytes as f64) < SHED_MIN_RATE * t.as_secs_f64();
        t >= SHED_GRACE && slow && waiting.load(Ordering::SeqCst) > 0
    }

    fn cut_with(&mut self, cut: Cut, what: &'static str) -> io::Error {
        self.cut = Some(cut);
        io::Error::new(io::ErrorKind::TimedOut, what)
    }
}

impl Read for Timed {
    /// Waits in slices of at most [`POLL`] so that the deadline and the
    /// queue are looked at while the peer is silent or crawling.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let started = Instant::now();
        loop {
            let now = Instant::now();
            let left = self.deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Err(self.cut_with(Cut::Deadline(self.phase), "phase deadline passed"));
            }
            let silent = (started + self.io).saturating_duration_since(now);
            if silent.is_zero() {
                return Err(self.cut_with(Cut::Silent(self.phase), "i/o timeout"));
            }
            if self.shed(now) {
                return Err(self.cut_with(
                    Cut::Shed(self.phase),
                    "too slow while others wait for a worker",
                ));
            }
            let want = Some(left.min(silent).min(POLL));
            if want != self.read_timeout {
                self.sock.set_read_timeout(want)?;
                self.read_timeout = want;
            }
            match self.sock.read(buf) {
                Ok(n) => {
                    self.phase_bytes = self.phase_bytes.saturating_add(n as u64);
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
        self.sock.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    /// A peer dripping a byte every 50 ms (well inside the 1 s I/O
    /// timeout, so a per-read timeout would never fire) is cut when the
    /// 600 ms phase deadline passes, and the cut names the phase.
    #[test]
    fn a_dripping_peer_is_cut_at_the_phase_deadline() {
        let (mut c, s) = pair();
        let dripper = std::thread::spawn(move || {
            for _ in 0..100 {
                if c.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let mut t = Timed::new(
            s,
            Duration::from_secs(1),
            Phase::Request,
            Duration::from_millis(600),
            None,
        )
        .unwrap();
        let start = Instant::now();
        let mut got = 0;
        let mut b = [0u8; 16];
        let err = loop {
            match t.read(&mut b) {
                Ok(0) => panic!("eof"),
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        let took = start.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(t.cut(), Some(Cut::Deadline(Phase::Request)));
        assert!(got >= 5, "only {got} bytes dripped before the cut");
        assert!(
            took >= Duration::from_millis(600) && took < Duration::from_millis(900),
            "cut after {took:?}"
        );
        drop(t);
        dripper.join().unwrap();
    }

    /// With a connection waiting for a worker, a silent phase is cut after
    /// the grace, long before its 10 s deadline; with nobody waiting it is
    /// not.
    #[test]
    fn a_crawler_is_shed_only_while_others_wait() {
        let waiting = Arc::new(AtomicUsize::new(0));
        let (_c, s) = pair();
        let mut t = Timed::new(
            s,
            Duration::from_secs(10),
            Phase::Idle,
            Duration::from_millis(1500),
            Some(Arc::clone(&waiting)),
        )
        .unwrap();
        let start = Instant::now();
        let mut b = [0u8; 1];
        t.read(&mut b).unwrap_err();
        assert_eq!(t.cut(), Some(Cut::Deadline(Phase::Idle)));
        assert!(start.elapsed() >= Duration::from_millis(1500));

        waiting.store(1, Ordering::SeqCst);
        t.begin(Phase::Handshake, Duration::from_secs(10));
        let start = Instant::now();
        t.read(&mut b).unwrap_err();
        assert_eq!(t.cut(), Some(Cut::Shed(Phase::Handshake)));
        let took = start.elapsed();
        assert!(
            took >= SHED_GRACE && took < SHED_GRACE + Duration::from_millis(400),
            "shed after {took:?}"
        );

        // A patient phase is not shed: it runs to its deadline.
        t.begin_patient(Phase::Idle, Duration::from_millis(1500));
        let start = std::time::Instant::now();
        t.read(&mut b).unwrap_err();
        assert_eq!(t.cut(), Some(Cut::Deadline(Phase::Idle)));
        assert!(start.elapsed() >= Duration::from_millis(1500));
    }
}
