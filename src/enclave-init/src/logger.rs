//! Console logging that the host cannot use to stall the guest.
//!
//! The console is a serial port whose far end the host owns: if it stops
//! reading, every write blocks. So no thread that serves a call, answers
//! the control channel or owns a security decision ever writes to it:
//!
//! - **A bounded queue and one writer thread.** [`log`] formats the line
//!   and appends it to an in-memory queue (at most [`QUEUE_BYTES`]) under a
//!   lock held only for the append; the `log-writer` thread takes the whole
//!   queue and writes it. When the queue is full the line is dropped and
//!   counted ([`dropped`], a metric), and once the console drains again one
//!   `"N lines dropped"` line says so.
//! - **Rate limits on every line a peer can trigger.** The crate's
//!   [`warn!`](crate::warn)/[`info!`](crate::info)/[`error!`](crate::error)/
//!   [`debug!`](crate::debug) macros carry a per-call-site token bucket
//!   ([`Site`]: a burst of [`BURST`] lines, then one per [`REFILL`]), as
//!   Firecracker's rate-limited logger does; suppressed lines are counted
//!   and summarised (`"lines suppressed"`, with the site and the count)
//!   by the writer every [`SUMMARY_EVERY`]. Only boot steps, lifecycle
//!   transitions and fatal causes use the unlimited
//!   [`info_always!`](crate::info_always)/[`warn_always!`](crate::warn_always)/
//!   [`error_always!`](crate::error_always); `src/enclave-init/clippy.toml`
//!   keeps the raw `log::` macros out.
//! - **Boot-time fatal errors still reach the console**: [`flush`] waits
//!   for the queue to drain, up to a deadline, before power-off.
//!
//! Format: one logfmt line per event (`t=<boot clock> level= target= msg=
//! k=v…`), quoted so that no value can break the line. Nothing secret is
//! ever passed to a log macro: secret types have no `Display`, and callers
//! log names, never values or lengths.
//!
//! [`chain`] is the one error reporter: an error and its causes, on one
//! line.

use std::collections::VecDeque;
use std::fmt::Write as _;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use log::kv::{Key, Value, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};

/// The queue's capacity in bytes (about 300 typical lines).
pub const QUEUE_BYTES: usize = 64 * 1024;
/// Lines a call site may log at once before it is limited.
pub const BURST: u32 = 10;
/// One more line per call site each `REFILL`.
pub const REFILL: Duration = Duration::from_millis(500);
/// How often the writer reports suppressed lines.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(5);

static LOGGER: ConsoleLogger = ConsoleLogger {
    queue: Mutex::new(Queue {
        lines: VecDeque::new(),
        bytes: 0,
        dropped_unreported: 0,
        writing: false,
    }),
    ready: Condvar::new(),
    idle: Condvar::new(),
};
static DROPPED: AtomicU64 = AtomicU64::new(0);
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
static WRITER: AtomicBool = AtomicBool::new(false);
/// How the writer thread's own sandbox went (`Err`: why not), set once by
/// that thread before its first write.
static WRITER_CONFINED: OnceLock<Result<(), String>> = OnceLock::new();

/// Whether the console writer thread confined itself, waiting for it up to
/// `within` (it does so when it starts, before it touches the console, so
/// only scheduling can delay it). `Some(Ok)` too when there is no writer
/// thread. `None`: it did not get there in time.
pub fn writer_confinement(within: Duration) -> Option<Result<(), String>> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(r) = WRITER_CONFINED.get() {
            return Some(r.clone());
        }
        if !WRITER.load(Ordering::SeqCst) {
            return Some(Ok(()));
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Installs the console logger and starts its writer thread, which first
/// runs `confine` (its own sandbox: it is the one thread that waits on the
/// host's console, so it must not wait there unconfined). A second call
/// only sets the level.
pub fn init(level: LevelFilter, confine: fn() -> Result<(), String>) {
    // An error means a logger is already installed (a second init), which is
    // harmless: keep the first.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
    if !WRITER.swap(true, Ordering::SeqCst) {
        let spawned = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                // The writer starts before PID 1 blocks signals for its signalfd
                // (the first line is logged before that), so it would inherit an
                // open mask: a SIGTERM delivered to this thread would kill the
                // process with no clean shutdown. It takes no signal but faults.
                block_async_signals();
                let _ = WRITER_CONFINED.set(confine());
                writer(&LOGGER, &mut std::io::stderr())
            });
        if spawned.is_err() {
            // No writer thread (the kernel refused a thread this early):
            // lines stay queued (bounded) and `flush` reports nothing.
            WRITER.store(false, Ordering::SeqCst);
        }
    }
}

/// Blocks every signal but the synchronous faults in the calling thread.
fn block_async_signals() {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
    let mut mask = SigSet::all();
    for s in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGABRT,
        Signal::SIGTRAP,
        Signal::SIGSYS,
    ] {
        mask.remove(s);
    }
    // Cannot fail with a valid `how`; if it did, the thread keeps the mask
    // it inherited, which is what it had before this existed.
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), None);
}

/// Lines dropped because the console did not drain, since boot.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Bytes waiting in the queue for the console (non-zero for long: the
/// console is not being read).
pub fn queued_bytes() -> usize {
    LOGGER.lock().bytes
}

/// Lines suppressed by per-site rate limits, since boot.
pub fn suppressed() -> u64 {
    SUPPRESSED.load(Ordering::Relaxed)
}

/// Waits until every queued line is written, or `deadline` passes: before
/// power-off, so that a fatal cause reaches the console if it drains at
/// all. Returns whether everything was written.
pub fn flush(deadline: Duration) -> bool {
    WRITER.load(Ordering::SeqCst) && LOGGER.flush_until(Instant::now() + deadline)
}

struct ConsoleLogger {
    queue: Mutex<Queue>,
    /// Lines are waiting (the writer waits on it).
    ready: Condvar,
    /// The queue emptied (flush waits on it).
    idle: Condvar,
}

struct Queue {
    lines: VecDeque<String>,
    bytes: usize,
    dropped_unreported: u64,
    writing: bool,
}

impl ConsoleLogger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a line, or drops and counts it when the queue is full.
    fn push(&self, line: String) {
        let mut q = self.lock();
        if q.bytes + line.len() > QUEUE_BYTES {
            q.dropped_unreported += 1;
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.bytes += line.len();
        q.lines.push_back(line);
        drop(q);
        self.ready.notify_one();
    }

    fn flush_until(&self, deadline: Instant) -> bool {
        let mut q = self.lock();
        while !q.lines.is_empty() || q.writing {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            q = match self.idle.wait_timeout(q, left) {
                Ok((q, _)) => q,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

/// The writer thread: takes whatever is queued and writes it; the only
/// thread that ever waits on the console.
fn writer(logger: &ConsoleLogger, out: &mut dyn std::io::Write) {
    let mut last_summary = Instant::now();
    loop {
        let (lines, dropped) = {
            let mut q = logger.lock();
            while q.lines.is_empty() && q.dropped_unreported == 0 {
                let wait = SUMMARY_EVERY
                    .saturating_sub(last_summary.elapsed())
                    .max(Duration::from_millis(10));
                q = match logger.ready.wait_timeout(q, wait) {
                    Ok((q, _)) => q,
                    Err(p) => p.into_inner().0,
                };
                if last_summary.elapsed() >= SUMMARY_EVERY {
                    break;
                }
            }
            q.writing = true;
            q.bytes = 0;
            (
                std::mem::take(&mut q.lines),
                std::mem::take(&mut q.dropped_unreported),
            )
        };
        let mut text = String::new();
        if dropped > 0 {
            text.push_str(&system_line(&format!(
                "{dropped} lines dropped: the console was not read"
            )));
        }
        if last_summary.elapsed() >= SUMMARY_EVERY {
            last_summary = Instant::now();
            for (site, n) in Site::take_all_suppressed() {
                text.push_str(&system_line(&format!(
                    "{n} lines suppressed at {site} (rate limit)"
                )));
            }
        }
        for l in &lines {
            text.push_str(l);
        }
        // The console is the host's: this write may block for as long as
        // the host likes. Only this thread waits; a failed write is lost.
        if !text.is_empty() {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        logger.lock().writing = false;
        logger.idle.notify_all();
    }
}

fn system_line(msg: &str) -> String {
    let mut line = format!("t={:.6} level=warn target=logger msg=", uptime_secs());
    push_quoted(&mut line, msg);
    line.push('\n');
    line
}

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        self.push(format_line(uptime_secs(), record));
    }

    fn flush(&self) {}
}

/// Formats one record as `t=1.234567 level=info target=boot msg="…" k=v…\n`.
fn format_line(t: f64, record: &Record<'_>) -> String {
    let mut line = String::with_capacity(128);
    let target = record
        .target()
        .strip_prefix("enclave_init::")
        .unwrap_or(record.target());
    let _ = write!(
        line,
        "t={t:.6} level={} target={target} msg=",
        record.level().as_str().to_ascii_lowercase()
    );
    push_quoted(&mut line, &record.args().to_string());
    let mut pairs = Pairs(&mut line);
    let _ = record.key_values().visit(&mut pairs);
    line.push('\n');
    line
}

struct Pairs<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for Pairs<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let _ = write!(self.0, " {key}=");
        let text = value.to_string();
        if !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '=')
        {
            self.0.push_str(&text);
        } else {
            push_quoted(self.0, &text);
        }
        Ok(())
    }
}

/// Quotes a value so that the line stays one line and parseable.
fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Seconds since boot (CLOCK_BOOTTIME): the kernel's own clock, so console
/// lines line up with the kernel's `[   1.234]` timestamps.
pub fn uptime_secs() -> f64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME) {
        Ok(ts) => ts.tv_sec() as f64 + ts.tv_nsec() as f64 / 1e9,
        Err(_) => 0.0,
    }
}

/// An error and its causes on one line: `a: b: c`. A cause whose text the
/// previous message already ends with is not repeated.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// One call site's rate limit: a token bucket of [`BURST`] lines refilled
/// one per [`REFILL`], and the count of what it suppressed.
pub struct Site {
    name: &'static str,
    state: Mutex<SiteState>,
    registered: AtomicBool,
}

struct SiteState {
    /// Tokens, in units of 1/1000 line (refilled continuously).
    milli_tokens: u64,
    last_ms: u64,
    suppressed: u64,
    primed: bool,
}

static SITES: Mutex<Vec<&'static Site>> = Mutex::new(Vec::new());

impl Site {
    /// A call site named `name` (module and line).
    pub const fn new(name: &'static str) -> Site {
        Site {
            name,
            state: Mutex::new(SiteState {
                milli_tokens: 0,
                last_ms: 0,
                suppressed: 0,
                primed: false,
            }),
            registered: AtomicBool::new(false),
        }
    }

    /// Whether this site may log now.
    pub fn allow(&'static self) -> bool {
        if !self.registered.swap(true, Ordering::Relaxed) {
            SITES.lock().unwrap_or_else(|e| e.into_inner()).push(self);
        }
        self.allow_at(now_ms())
    }

    /// Whether this site may log at `now_ms` (monotonic milliseconds).
    pub fn allow_at(&self, now_ms: u64) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let full = u64::from(BURST) * 1000;
        if !s.primed {
            s.primed = true;
            s.milli_tokens = full;
            s.last_ms = now_ms;
        }
        let refill_ms = u64::try_from(REFILL.as_millis()).unwrap_or(1).max(1);
        let earned = now_ms.saturating_sub(s.last_ms).saturating_mul(1000) / refill_ms;
        s.milli_tokens = s.milli_tokens.saturating_add(earned).min(full);
        s.last_ms = now_ms;
        if s.milli_tokens >= 1000 {
            s.milli_tokens -= 1000;
            true
        } else {
            s.suppressed += 1;
            SUPPRESSED.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    fn take_suppressed(&self) -> u64 {
        std::mem::take(
            &mut self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .suppressed,
        )
    }

    fn take_all_suppressed() -> Vec<(&'static str, u64)> {
        let sites = SITES.lock().unwrap_or_else(|e| e.into_inner()).clone();
        sites
            .iter()
            .filter_map(|s| Some((s.name, s.take_suppressed())).filter(|(_, n)| *n > 0))
            .collect()
    }
}

/// Monotonic milliseconds for the rate limiter.
pub fn now_ms() -> u64 {
    crate::lifecycle::clock::Mono::now().as_millis()
}

/// A rate-limited line at `$lvl` (see the module doc).
#[macro_export]
macro_rules! limited {
    ($lvl:expr, $($arg:tt)+) => {{
        static SITE: $crate::logger::Site = $crate::logger::Site::new(concat!(module_path!(), ":", line!()));
        if log::log_enabled!($lvl) && SITE.allow() {
            log::log!($lvl, $($arg)+);
        }
    }};
}

/// A rate-limited error line (anything a peer can trigger).
#[macro_export]
macro_rules! error { ($($arg:tt)+) => { $crate::limited!(log::Level::Error, $($arg)+) }; }
/// A rate-limited warning (anything a peer can trigger).
#[macro_export]
macro_rules! warn { ($($arg:tt)+) => { $crate::limited!(log::Level::Warn, $($arg)+) }; }
/// A rate-limited info line (anything a peer can trigger).
#[macro_export]
macro_rules! info { ($($arg:tt)+) => { $crate::limited!(log::Level::Info, $($arg)+) }; }
/// A rate-limited debug line.
#[macro_export]
macro_rules! debug { ($($arg:tt)+) => { $crate::limited!(log::Level::Debug, $($arg)+) }; }
/// An unlimited info line: boot steps and lifecycle transitions only.
#[macro_export]
macro_rules! info_always { ($($arg:tt)+) => { log::log!(log::Level::Info, $($arg)+) }; }
/// An unlimited warning: boot steps and lifecycle transitions only.
#[macro_export]
macro_rules! warn_always { ($($arg:tt)+) => { log::log!(log::Level::Warn, $($arg)+) }; }
/// An unlimited error: lifecycle transitions and fatal causes only.
#[macro_export]
macro_rules! error_always { ($($arg:tt)+) => { log::log!(log::Level::Error, $($arg)+) }; }

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn line(args: std::fmt::Arguments<'_>, kvs: &[(&str, &str)]) -> String {
        let kvs: Vec<(&str, Value<'_>)> = kvs.iter().map(|(k, v)| (*k, Value::from(*v))).collect();
        let kvs = kvs.as_slice();
        let record = Record::builder()
            .args(args)
            .level(log::Level::Info)
            .target("enclave_init::boot")
            .key_values(&kvs)
            .build();
        format_line(1.5, &record)
    }

    #[test]
    fn one_line_per_event_with_pairs() {
        let l = line(
            format_args!("mounted"),
            &[("fs", "proc"), ("path", "/proc")],
        );
        assert_eq!(
            l,
            "t=1.500000 level=info target=boot msg=\"mounted\" fs=proc path=/proc\n"
        );
    }

    #[test]
    fn newlines_and_quotes_cannot_break_the_line() {
        let l = line(format_args!("bad \"x\"\nsecond"), &[("why", "a b\nc")]);
        assert_eq!(l.matches('\n').count(), 1, "{l}");
        assert!(l.contains(r#"msg="bad \"x\"\nsecond""#), "{l}");
        assert!(l.contains(r#"why="a b\nc""#), "{l}");
    }

    fn test_logger() -> &'static ConsoleLogger {
        Box::leak(Box::new(ConsoleLogger {
            queue: Mutex::new(Queue {
                lines: VecDeque::new(),
                bytes: 0,
                dropped_unreported: 0,
                writing: false,
            }),
            ready: Condvar::new(),
            idle: Condvar::new(),
        }))
    }

    /// A console that blocks every write until released, and records what
    /// it was given.
    struct Blocking {
        open: Arc<(Mutex<bool>, Condvar)>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl std::io::Write for Blocking {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (lock, cv) = &*self.open;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_console_never_blocks_a_logger_and_drops_are_counted_then_reported() {
        let logger = test_logger();
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let got = Arc::new(Mutex::new(Vec::new()));
        let mut console = Blocking {
            open: Arc::clone(&open),
            got: Arc::clone(&got),
        };
        std::thread::spawn(move || writer(logger, &mut console));
        // The writer takes the first line and blocks on the console. Wait
        // until it does: a writer thread scheduled late would otherwise take
        // the overflowed queue and its drop count in one batch (seen on a
        // 2-core CI runner), and the test would see nothing dropped.
        logger.push("first\n".to_owned());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !logger.lock().writing {
            assert!(Instant::now() < deadline, "the writer never started");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Every later push must return at once, and past the capacity drop.
        let started = Instant::now();
        let line = format!("{}\n", "x".repeat(99));
        for _ in 0..(3 * QUEUE_BYTES / line.len()) {
            logger.push(line.clone());
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "pushing took {:?} with the console stalled",
            started.elapsed()
        );
        let dropped = logger.lock().dropped_unreported;
        assert!(dropped > 0, "nothing was dropped with the console stalled");
        let t = Instant::now();
        assert!(
            !logger.flush_until(t + Duration::from_millis(100)),
            "nothing can be flushed to a stalled console"
        );
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "flush gives up at its deadline"
        );
        // The console drains: everything queued arrives, then the drop count.
        *open.0.lock().unwrap() = true;
        open.1.notify_all();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
            if text.contains(&format!("{dropped} lines dropped")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the drop count was never reported"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn flush_returns_once_the_queue_drained() {
        let logger = test_logger();
        let got = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new((Mutex::new(true), Condvar::new()));
        let mut console = Blocking {
            open,
            got: Arc::clone(&got),
        };
        std::thread::spawn(move || writer(logger, &mut console));
        logger.push("fatal: the reason\n".to_owned());
        assert!(logger.flush_until(Instant::now() + Duration::from_secs(5)));
        assert!(String::from_utf8_lossy(&got.lock().unwrap()).contains("fatal: the reason"));
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_one_line_per_refill() {
        let site = Site::new("test:1");
        let allowed = (0..50).filter(|_| site.allow_at(1_000)).count();
        assert_eq!(
            allowed, BURST as usize,
            "a burst, then nothing at the same instant"
        );
        assert_eq!(site.take_suppressed(), 40);
        let refill = u64::try_from(REFILL.as_millis()).unwrap();
        assert!(!site.allow_at(1_000 + refill - 1));
        assert!(site.allow_at(1_000 + refill), "one line per refill period");
        assert!(!site.allow_at(1_000 + refill));
        // A long quiet spell refills the burst, no more.
        let later = 1_000 + 3600 * 1000;
        assert_eq!(
            (0..50).filter(|_| site.allow_at(later)).count(),
            BURST as usize
        );
    }

    #[test]
    fn the_chain_carries_every_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read configuration /tmp")]
        struct Read(#[source] std::io::Error);
        let e = Read(std::io::Error::from_raw_os_error(libc::EISDIR));
        assert_eq!(
            chain(&e),
            "cannot read configuration /tmp: Is a directory (os error 21)"
        );
        #[derive(Debug, thiserror::Error)]
        #[error("boot")]
        struct Outer(#[source] Read);
        assert_eq!(
            chain(&Outer(Read(std::io::Error::from_raw_os_error(
                libc::ENOENT
            )))),
            "boot: cannot read configuration /tmp: No such file or directory (os error 2)"
        );
    }
}
