//! Starving the call service (issue 15 items 3 and 4): connections that
//! hold a worker without using it (an idle keep-alive, a request dripped
//! byte by byte, a handshake that stops half-way, a body declared and
//! never sent), while a well-behaved client calls through the rig's
//! client ([`rig::call`]).
//!
//! Every attack runs against the same pool: the default 4 workers and 8
//! queue slots, with timeouts shortened so that "held until the timeout"
//! is visible inside the budget: idle 8 s, request 6 s, I/O 8 s. The
//! attackers outnumber the workers but fit in the queue with the
//! well-behaved client, so a call that is not served was starved, not
//! turned away as busy.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use enclave_tests::https::{Client, Conn};

use crate::rig::{self, Options, Rig};
use crate::Verdict;

const WORKERS: usize = 4;
const IDLE: Duration = Duration::from_secs(8);
const REQUEST: Duration = Duration::from_secs(6);
const IO: Duration = Duration::from_secs(8);
/// How long the well-behaved client calls while an attack is mounted.
const UNDER_ATTACK: Duration = Duration::from_secs(12);

fn service() -> String {
    format!(
        "workers = {WORKERS}\nqueue = 8\nidle_timeout_ms = {}\nrequest_timeout_ms = {}\nio_timeout_ms = {}\n",
        IDLE.as_millis(),
        REQUEST.as_millis(),
        IO.as_millis()
    )
}

fn boot() -> (Rig, enclave_tests::process::Guest, Client) {
    let rig = Rig::new(Options {
        token_ttl_secs: 60,
        ..Options::default()
    });
    let (guest, _report, client) = rig.guest_with_service(&service(), "");
    // A starved call must show as slow, not hang the attack.
    let client = client.with_timeout(Duration::from_secs(20));
    (rig, guest, client)
}

/// The slowest of a few calls before the attack (the TLS session, the
/// stand-in and the allocator warmed up); 0 calls answered 200 is None.
fn baseline(client: &Client) -> Option<Duration> {
    let mut slowest = Duration::ZERO;
    for n in 0..4 {
        let (status, took) = rig::call(client, &format!("base-{n}"));
        if status != 200 {
            return None;
        }
        slowest = slowest.max(took);
    }
    Some(slowest)
}

/// The well-behaved client: calls one after another (200 ms apart) until
/// stopped; each call's status and latency.
struct Caller {
    stop: Arc<AtomicBool>,
    /// Calls answered so far (any status).
    done: Arc<std::sync::atomic::AtomicUsize>,
    thread: JoinHandle<Vec<(u16, Duration)>>,
}

impl Caller {
    fn start(client: &Client, tag: &'static str) -> Caller {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, d, c) = (Arc::clone(&stop), Arc::clone(&done), client.clone());
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut n = 0;
            while !s.load(Ordering::SeqCst) {
                n += 1;
                out.push(rig::call(&c, &format!("{tag}-{n}")));
                d.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
            }
            out
        });
        Caller { stop, done, thread }
    }

    /// Calls answered so far.
    fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// Stops after the call in flight; the calls' figures.
    fn finish(self) -> Calls {
        self.stop.store(true, Ordering::SeqCst);
        let all = self.thread.join().unwrap_or_default();
        let mut lat: Vec<Duration> = all.iter().map(|c| c.1).collect();
        lat.sort();
        Calls {
            ok: all.iter().filter(|c| c.0 == 200).count(),
            total: all.len(),
            p99: percentile(&lat, 99),
            statuses: all.iter().map(|c| c.0).filter(|s| *s != 200).collect(),
        }
    }
}

struct Calls {
    ok: usize,
    total: usize,
    p99: Duration,
    /// The statuses other than 200 (0: no answer).
    statuses: Vec<u16>,
}

impl Calls {
    /// Every call answered 200 (at least 5 of them), p99 within `bound`.
    fn held(&self, bound: Duration) -> bool {
        self.total >= 5 && self.ok == self.total && self.p99 <= bound
    }

    fn figure(&self, bound: Duration) -> String {
        let mut s = format!(
            "call p99 {} ms (bound {} ms), {}/{} ok",
            self.p99.as_millis(),
            bound.as_millis(),
            self.ok,
            self.total
        );
        if !self.statuses.is_empty() {
            s.push_str(&format!(" (others: {:?})", self.statuses));
        }
        s
    }
}

/// The `p`th percentile of sorted values (the smallest value at or above
/// p % of them); zero for none.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Median and maximum of some durations, as text.
fn spread(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.sort();
    format!(
        "median {} max {} over {}",
        secs(v[v.len() / 2]),
        secs(v[v.len() - 1]),
        v.len()
    )
}

/// `n` attacker threads, each running `one` again and again until
/// stopped; `one` returns how long the guest held its connection (None:
/// the attack was stopped first, or the connection failed early).
struct Attackers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    held: Arc<Mutex<Vec<Duration>>>,
}

impl Attackers {
    fn start<F>(n: usize, one: F) -> Attackers
    where
        F: Fn(&AtomicBool) -> Option<Duration> + Send + Sync + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let one = Arc::new(one);
        let threads = (0..n)
            .map(|_| {
                let (s, h, one) = (Arc::clone(&stop), Arc::clone(&held), Arc::clone(&one));
                std::thread::spawn(move || {
                    while !s.load(Ordering::SeqCst) {
                        match one(&s) {
                            Some(d) => h.lock().unwrap().push(d),
                            None => std::thread::sleep(Duration::from_millis(50)),
                        }
                    }
                })
            })
            .collect();
        Attackers {
            stop,
            threads,
            held,
        }
    }

    /// Stops them (their connections close); how long each connection
    /// they lost was held.
    fn finish(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        let v = self.held.lock().unwrap().clone();
        v
    }
}

/// Waits on `conn` until the guest closes it or answers (`Some`: how long
/// since `since`), or `stop` is set (None).
fn wait_closed(conn: &mut Conn, since: Instant, stop: &AtomicBool) -> Option<Duration> {
    let _ = conn
        .get_mut()
        .sock
        .set_read_timeout(Some(Duration::from_millis(200)));
    until_closed(conn, since, stop)
}

/// Reads `r` (its read timeout already short) until the guest closes it
/// or answers (`Some`: how long since `since`), or `stop` is set (None).
fn until_closed(r: &mut impl Read, since: Instant, stop: &AtomicBool) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    loop {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        match r.read(&mut buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // EOF, close_notify, an answer (408) or a reset: the guest let go.
            _ => return Some(since.elapsed()),
        }
    }
}

/// Completes the TLS handshake on a new connection (the first request
/// byte comes after it).
fn handshake(client: &Client) -> Option<Conn> {
    let mut conn = client.connect().ok()?;
    let s = conn.get_mut();
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).ok()?;
    }
    Some(conn)
}

/// More idle keep-alive connections than workers: each makes one good
/// request and then says nothing (reconnecting when the guest closes
/// it), while the well-behaved client calls. Every call must be answered
/// 200 with p99 under half the idle timeout plus the slowest unloaded
/// call: a waiting call must get a worker because an idle connection is
/// closed for it, not because one idled out (that alone would put p99 at
/// the idle timeout, 8 s).
pub fn keepalive_hog() -> Verdict {
    let (_rig, guest, client) = boot();
    let Some(base) = baseline(&client) else {
        return Verdict::broken("no call answered 200 before the attack");
    };
    let bound = IDLE / 2 + base;
    let refused = Arc::new(AtomicU64::new(0));
    let (c, r) = (client.clone(), Arc::clone(&refused));
    let hogs = Attackers::start(WORKERS + 2, move |stop| {
        let mut conn = c.connect().ok()?;
        let resp = c.send(&mut conn, "GET", "/health/enclave", &[], b"").ok()?;
        if resp.status != 200 {
            r.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        wait_closed(&mut conn, Instant::now(), stop)
    });
    std::thread::sleep(Duration::from_millis(500));
    let caller = Caller::start(&client, "hog");
    std::thread::sleep(UNDER_ATTACK);
    let calls = caller.finish();
    let held = hogs.finish();
    drop(guest);
    let figure = format!(
        "{}; {} idle keep-alive hogs (4 workers), closed after idling {} (idle timeout {}), {} hog requests not answered 200",
        calls.figure(bound),
        WORKERS + 2,
        spread(held),
        secs(IDLE),
        refused.load(Ordering::Relaxed)
    );
    Verdict::judge(calls.held(bound), figure)
}

/// A POST head, dripped or sent at once before a dripped body.
const DRIP_HEAD: &[u8] = b"POST /v1/calls HTTP/1.1\r\nhost: call.enclave.local\r\ncontent-type: multipart/form-data; boundary=x\r\ncontent-length: 100000\r\n\r\n";

/// One dripper: after the handshake, the head one byte a second (or the
/// head at once, then the body one byte a second) until the guest cuts
/// it; how long from the first request byte.
fn drip(client: &Client, body: bool, stop: &AtomicBool) -> Option<Duration> {
    let mut conn = handshake(client)?;
    let started = Instant::now();
    let _ = conn
        .get_mut()
        .sock
        .set_read_timeout(Some(Duration::from_secs(1)));
    if body {
        conn.get_mut().write_all(DRIP_HEAD).ok()?;
        conn.get_mut().flush().ok()?;
    }
    let mut buf = [0u8; 1024];
    for i in 0..100_000 {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        let byte = if body {
            b'a'
        } else {
            DRIP_HEAD[i % DRIP_HEAD.len()]
        };
        if conn
            .get_mut()
            .write_all(&[byte])
            .and_then(|()| conn.get_mut().flush())
            .is_err()
        {
            return Some(started.elapsed());
        }
        match conn.read(&mut buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            _ => return Some(started.elapsed()),
        }
    }
    None
}

/// Slowloris: twice as many connections as workers drip a request one
/// byte a second (6 the head, 2 the body after a whole head), reconnecting
/// when cut, while the well-behaved client calls: every call answered 200,
/// p99 under half the request timeout plus the slowest unloaded call.
/// Then, with nobody waiting, one head dripper and one body dripper alone
/// must be cut at the request timeout (6 s from the first request byte,
/// within -0.5/+1.5 s): the head counts against it too.
pub fn slowloris() -> Verdict {
    let (_rig, guest, client) = boot();
    let Some(base) = baseline(&client) else {
        return Verdict::broken("no call answered 200 before the attack");
    };
    let bound = REQUEST / 2 + base;
    let (c1, c2) = (client.clone(), client.clone());
    let heads = Attackers::start(6, move |stop| drip(&c1, false, stop));
    let bodies = Attackers::start(2, move |stop| drip(&c2, true, stop));
    std::thread::sleep(Duration::from_millis(500));
    let caller = Caller::start(&client, "loris");
    std::thread::sleep(UNDER_ATTACK);
    let calls = caller.finish();
    let mut pressed = heads.finish();
    pressed.extend(bodies.finish());
    eprintln!("slowloris: alone now");
    // Alone: nobody waits for a worker.
    std::thread::sleep(Duration::from_millis(1500));
    let never = AtomicBool::new(false);
    let (c1, c2) = (client.clone(), client.clone());
    let head_alone = std::thread::spawn(move || drip(&c1, false, &AtomicBool::new(false)));
    let body_alone = drip(&c2, true, &never);
    let head_alone = head_alone.join().ok().flatten();
    drop(guest);
    let at_timeout = |d: Option<Duration>| {
        d.is_some_and(|d| {
            d + Duration::from_millis(500) >= REQUEST && d <= REQUEST + Duration::from_millis(1500)
        })
    };
    let show = |d: Option<Duration>| d.map_or("never cut".into(), secs);
    let figure = format!(
        "{}; 8 drippers (4 workers) held {} while others waited; alone, a dripped head held {} and a dripped body {} (request timeout {})",
        calls.figure(bound),
        spread(pressed.clone()),
        show(head_alone),
        show(body_alone),
        secs(REQUEST)
    );
    let none_past = pressed
        .iter()
        .all(|d| *d <= REQUEST + Duration::from_millis(1500));
    Verdict::judge(
        calls.held(bound) && none_past && at_timeout(head_alone) && at_timeout(body_alone),
        figure,
    )
}

/// The first half of a real TLS 1.3 ClientHello for the service's name.
fn half_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("call.enclave.local").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    assert!(
        hello.len() > 100 && hello[0] == 0x16,
        "not a handshake record"
    );
    hello.truncate(hello.len() / 2);
    hello
}

/// One raw TCP connection that sends `first` (half a ClientHello, or
/// nothing) and stops; how long until the guest closes it.
fn stop_short(addr: &transport::Addr, first: &[u8], stop: &AtomicBool) -> Option<Duration> {
    let mut s = transport::connect(addr).ok()?;
    let started = Instant::now();
    s.write_all(first).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
    until_closed(&mut s, started, stop)
}

/// Handshakes that never finish: 5 connections send half a ClientHello
/// and stop, 5 connect and send nothing (reconnecting when closed), while
/// the well-behaved client calls: every call answered 200, p99 under half
/// the idle timeout (the handshake's deadline) plus the slowest unloaded
/// call. Then, with nobody waiting, one of each alone must be closed at
/// the handshake deadline (8 s, within -0.5/+1.5 s).
pub fn truncated_hello() -> Verdict {
    let (_rig, guest, client) = boot();
    let Some(base) = baseline(&client) else {
        return Verdict::broken("no call answered 200 before the attack");
    };
    let bound = IDLE / 2 + base;
    let hello = Arc::new(half_hello());
    let (a1, a2, h) = (client.addr.clone(), client.addr.clone(), Arc::clone(&hello));
    let halves = Attackers::start(5, move |stop| stop_short(&a1, &h, stop));
    let silent = Attackers::start(5, move |stop| stop_short(&a2, &[], stop));
    std::thread::sleep(Duration::from_millis(500));
    let caller = Caller::start(&client, "hello");
    std::thread::sleep(UNDER_ATTACK);
    let calls = caller.finish();
    let pressed_half = halves.finish();
    let pressed_silent = silent.finish();
    eprintln!("truncated-hello: alone now");
    std::thread::sleep(Duration::from_millis(1500));
    let (a1, h) = (client.addr.clone(), Arc::clone(&hello));
    let half_alone = std::thread::spawn(move || stop_short(&a1, &h, &AtomicBool::new(false)));
    let silent_alone = stop_short(&client.addr, &[], &AtomicBool::new(false));
    let half_alone = half_alone.join().ok().flatten();
    drop(guest);
    let at_deadline = |d: Option<Duration>| {
        d.is_some_and(|d| {
            d + Duration::from_millis(500) >= IDLE && d <= IDLE + Duration::from_millis(1500)
        })
    };
    let show = |d: Option<Duration>| d.map_or("never closed".into(), secs);
    let figure = format!(
        "{}; while others waited, {}-byte half hellos held {}, silent connections {}; alone, {} and {} (handshake deadline {})",
        calls.figure(bound),
        hello.len(),
        spread(pressed_half),
        spread(pressed_silent),
        show(half_alone),
        show(silent_alone),
        secs(IDLE)
    );
    Verdict::judge(
        calls.held(bound) && at_deadline(half_alone) && at_deadline(silent_alone),
        figure,
    )
}

/// Sends a POST head with `lengths` as its Content-Length headers and
/// `body`, and reads the answer: its status (0: none, the connection
/// closed) and error code.
fn declare(client: &Client, lengths: &[&str], body: &[u8]) -> (u16, String) {
    let Ok(mut conn) = client.connect() else {
        return (0, String::new());
    };
    let mut head = String::from(
        "POST /v1/calls HTTP/1.1\r\nhost: call.enclave.local\r\ncontent-type: multipart/form-data; boundary=x\r\n",
    );
    for l in lengths {
        head.push_str(&format!("content-length: {l}\r\n"));
    }
    head.push_str("\r\n");
    let w = conn.get_mut();
    if w.write_all(head.as_bytes())
        .and_then(|()| w.write_all(body))
        .and_then(|()| w.flush())
        .is_err()
    {
        return (0, String::new());
    }
    match bounded_http::read_response(&mut conn, bounded_http::Limits::default()) {
        Ok(r) => {
            let code = serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            (r.status, code)
        }
        Err(_) => (0, String::new()),
    }
}

/// Declared bodies that never come. Content-Length over the 16 MiB
/// limit (16777217, 999999999999; 8 at once) must be refused 413 at
/// once; 16 at the limit (16777216, two waves of 8 at once) with no body
/// must end without an answer of 200, and the guest's peak resident set
/// (`VmHWM`) must grow by less than 8 MiB across all of it: less than half
/// of one body preallocated (the guest's allocator wipes every block on
/// free, so a preallocated body is touched in full). `+5`, `-1` and two
/// disagreeing lengths are 400 request.malformed, never served. The
/// well-behaved client calls throughout: every call 200, p99 under half
/// the request timeout plus the slowest unloaded call.
pub fn huge_content_length() -> Verdict {
    const LIMIT: usize = 16 * 1024 * 1024;
    let (_rig, guest, client) = boot();
    let Some(base) = baseline(&client) else {
        return Verdict::broken("no call answered 200 before the attack");
    };
    let bound = REQUEST / 2 + base;
    let pid = guest.child.id();
    let Some((rss0, hwm0)) = rig::rss_kib(pid) else {
        return Verdict::broken(format!("cannot read /proc/{pid}/status"));
    };
    let caller = Caller::start(&client, "huge");
    let mut wrong = Vec::new();
    for (what, lengths) in [
        ("+5", &["+5"][..]),
        ("-1", &["-1"][..]),
        ("5 and 6", &["5", "6"][..]),
    ] {
        let got = declare(&client, lengths, b"hello");
        if got != (400, "request.malformed".to_owned()) {
            wrong.push(format!("content-length {what}: {got:?}"));
        }
    }
    let wave = |lengths: &'static [&'static str]| -> Vec<(u16, String)> {
        let threads: Vec<_> = lengths
            .iter()
            .map(|&l| {
                let c = client.clone();
                std::thread::spawn(move || declare(&c, &[l], b""))
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    };
    let over = wave(&[
        "16777217",
        "999999999999",
        "16777217",
        "999999999999",
        "16777217",
        "999999999999",
        "16777217",
        "999999999999",
    ]);
    for (i, got) in over.iter().enumerate() {
        if *got != (413, "request.too_large".to_owned()) {
            wrong.push(format!("over the limit #{i}: {got:?}"));
        }
    }
    let at_limit: &'static [&'static str] = &["16777216"; 8];
    assert_eq!(at_limit[0].parse::<usize>().unwrap(), LIMIT);
    let t = Instant::now();
    let mut at = wave(at_limit);
    at.extend(wave(at_limit));
    // The waves may end (shed under pressure) before the well-behaved
    // client has made the 5 calls its figure needs: keep the pressure on
    // until it has, at most 4 waves more.
    let mut waves = 2;
    while caller.done() < 5 && waves < 6 {
        at.extend(wave(at_limit));
        waves += 1;
    }
    let at_took = t.elapsed();
    let served = at.iter().filter(|(s, _)| *s == 200).count();
    if served > 0 {
        wrong.push(format!("{served} bodies never sent were served 200"));
    }
    let calls = caller.finish();
    let Some((rss1, hwm1)) = rig::rss_kib(pid) else {
        return Verdict::broken(format!("cannot read /proc/{pid}/status"));
    };
    drop(guest);
    let grew = hwm1.saturating_sub(hwm0);
    let mut statuses: Vec<u16> = at.iter().map(|a| a.0).collect();
    statuses.sort_unstable();
    statuses.dedup();
    let figure = format!(
        "{}; VmHWM {} -> {} KiB (+{} KiB, bound 8192), VmRSS {} -> {} KiB after {} x 16 MiB declared at the limit (answered {:?}, {} for {} waves) and 8 over it; {}",
        calls.figure(bound),
        hwm0,
        hwm1,
        grew,
        rss0,
        rss1,
        8 * waves,
        statuses,
        secs(at_took),
        waves,
        if wrong.is_empty() {
            "413 over the limit, 400 for +5, -1 and two lengths".to_owned()
        } else {
            wrong.join("; ")
        }
    );
    Verdict::judge(
        wrong.is_empty() && grew < 8 * 1024 && calls.held(bound),
        figure,
    )
}
