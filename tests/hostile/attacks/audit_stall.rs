//! The audit trail's path stalled (issue 19): the host owns the link to
//! the collector and stops it (it accepts, then neither forwards nor
//! answers: no ack ever comes) while calls arrive. With `audit.required`
//! the guest must stop serving calls within `audit.deadline_ms` and, once
//! the host lets records flow again, lose none of them; without it, calls
//! keep being served and the records that do not fit are counted and show
//! as a named gap. Real parts: the rig, PostgreSQL, the collector
//! (`enclavectl audit serve`), `enclavectl audit verify`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use enclave_tests::audit_store::{verify, Collector};
use enclave_tests::https::{self, Client};
use enclave_tests::postgres::Postgres;
use enclave_tests::TempDir;

use crate::rig::{self, Options, Rig};
use crate::Verdict;

/// `audit.deadline_ms` of the strict guest.
const DEADLINE_MS: u64 = 1000;
/// What the refusal may take beyond the deadline: the caller's poll
/// period and one call's processing on a loaded machine.
const MARGIN_MS: u64 = 1000;
/// The lax guest's queue (the configuration's minimum).
const LAX_QUEUE: u64 = 16;

/// The host's link from a guest to the collector's Unix socket: a TCP
/// listener whose connections are relayed both ways until [`Link::stall`],
/// then neither read nor answered until [`Link::release`].
struct Link {
    port: u16,
    stalled: Arc<AtomicBool>,
}

impl Link {
    fn start(collector: &Path) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stalled = Arc::new(AtomicBool::new(false));
        let (flag, to) = (Arc::clone(&stalled), collector.to_owned());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(guest) = conn else { continue };
                let Ok(up) = UnixStream::connect(&to) else {
                    continue;
                };
                let (g2, u2) = (guest.try_clone().unwrap(), up.try_clone().unwrap());
                let (f1, f2) = (Arc::clone(&flag), Arc::clone(&flag));
                std::thread::spawn(move || pump(Side::Tcp(guest), Side::Unix(up), &f1));
                std::thread::spawn(move || pump(Side::Unix(u2), Side::Tcp(g2), &f2));
            }
        });
        Link { port, stalled }
    }

    fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    fn release(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }
}

enum Side {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Side {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Side::Tcp(s) => {
                s.set_read_timeout(Some(Duration::from_millis(50)))?;
                s.read(buf)
            }
            Side::Unix(s) => {
                s.set_read_timeout(Some(Duration::from_millis(50)))?;
                s.read(buf)
            }
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Side::Tcp(s) => s.write_all(buf),
            Side::Unix(s) => s.write_all(buf),
        }
    }
    fn shutdown(&self) {
        let _ = match self {
            Side::Tcp(s) => s.shutdown(Shutdown::Write),
            Side::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
}

/// Copies `from` to `to`; while `stalled`, reads nothing (the bytes wait
/// in the kernel's buffers, the sender's writes eventually block).
fn pump(mut from: Side, mut to: Side, stalled: &AtomicBool) {
    let mut buf = [0u8; 8192];
    loop {
        if stalled.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    to.shutdown();
}

/// One call: its status and error code (`""` when none), and when it ended.
fn call(client: &Client, id: &str) -> (u16, String, Instant) {
    let wav = https::wav("mulaw", 8000, 0.5);
    let (ct, body) = https::multipart(&[
        (
            "metadata",
            None,
            "application/json",
            rig::metadata(id).as_bytes(),
        ),
        ("audio", Some("call.wav"), "audio/wav", &wav),
    ]);
    let r = client.connect().ok().and_then(|mut conn| {
        client
            .send(
                &mut conn,
                "POST",
                "/v1/calls",
                &[("content-type", &ct)],
                &body,
            )
            .ok()
    });
    let end = Instant::now();
    match r {
        Some(r) => {
            let code = serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            (r.status, code, end)
        }
        None => (0, String::new(), end),
    }
}

/// The guest's `audit` health block.
fn audit_health(client: &Client) -> serde_json::Value {
    rig::health(client)
        .map(|(_, h)| h["audit"].clone())
        .unwrap_or_default()
}

/// Waits until every record the guest made is acknowledged; its next seq.
fn drained(client: &Client, budget: Duration) -> Option<u64> {
    let deadline = Instant::now() + budget;
    while Instant::now() < deadline {
        let a = audit_health(client);
        if a["queue_depth"] == 0 && a["collector_connected"] == true {
            return a["next_seq"].as_u64();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The verify report's block for `stream`.
fn block(report: &str, stream: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for l in report.lines() {
        // A header: `enclave stream ID (key sha256 …)`; the health
        // document's stream may be the longer form of the same id.
        if !l.starts_with(' ') {
            inside = l
                .split_once(" stream ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|id| !id.is_empty() && stream.starts_with(id));
        }
        if inside {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// N when the block's `records: N (seq 0-M)` line says M = N - 1.
fn stored_whole(block: &str) -> Option<u64> {
    let line = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("records: "))?;
    let (n, range) = line.split_once(" (seq 0-")?;
    let n: u64 = n.parse().ok()?;
    let last: u64 = range.strip_suffix(')')?.parse().ok()?;
    (last + 1 == n).then_some(n)
}

/// How many seqs the block's `FINDING seq A-B missing` (or `seq A
/// missing`) lines name.
fn missing_seqs(block: &str) -> u64 {
    block
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("FINDING seq ")?
                .strip_suffix(" missing")
        })
        .map(|r| match r.split_once('-') {
            Some((a, b)) => match (a.parse::<u64>(), b.parse::<u64>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => u64::from(r.parse::<u64>().is_ok()),
        })
        .sum()
}

/// Both guests against one collector, each behind its own stalled link.
pub fn audit_stall() -> Verdict {
    let dir = TempDir::new("audit-stall");
    let sock: PathBuf = dir.path().join("collector.sock");
    let rig = Rig::new(Options {
        verifier_args: vec!["--audit".into(), format!("unix://{}", sock.display())],
        ..Options::default()
    });
    let pg = Postgres::start(false);
    let vkey = rig.pki.path("token-key.pk8");
    let _collector = Collector::start(&pg, &sock, &vkey);
    let strict_link = Link::start(&sock);
    let lax_link = Link::start(&sock);
    let (_strict_guest, _, strict) = rig.guest(&format!(
        "\n[audit]\ncollector = \"tcp://127.0.0.1:{}\"\nrequired = \"on\"\ndeadline_ms = {DEADLINE_MS}\ntimeout_ms = 500\n",
        strict_link.port
    ));
    let (_lax_guest, _, lax) = rig.guest(&format!(
        "\n[audit]\ncollector = \"tcp://127.0.0.1:{}\"\nrequired = \"off\"\nqueue = {LAX_QUEUE}\ntimeout_ms = 500\n",
        lax_link.port
    ));
    let mut problems = Vec::new();

    // required = on: a call, stored; then the link stalls.
    let (s, _, _) = call(&strict, "strict-before");
    if s != 200 {
        problems.push(format!("strict: the call before the stall got {s}"));
    }
    if drained(&strict, Duration::from_secs(10)).is_none() {
        return Verdict::broken("strict: the trail never drained before the stall");
    }
    strict_link.stall();
    // The first call is served (nothing waits yet); its record is the
    // first one no ack will come for. From its end, the deadline runs.
    let (s, _, first_unacked) = call(&strict, "strict-stalled-0");
    if s != 200 {
        problems.push(format!("strict: the first stalled call got {s}, not 200"));
    }
    let mut refused_at = None;
    let mut served_late = 0;
    let mut refused = 0;
    let stall_until = first_unacked + Duration::from_millis(DEADLINE_MS + MARGIN_MS + 1500);
    let mut i = 1;
    while Instant::now() < stall_until {
        let (s, code, end) = call(&strict, &format!("strict-stalled-{i}"));
        i += 1;
        match s {
            503 if code == "enclave.audit_unavailable" => {
                refused += 1;
                refused_at.get_or_insert(end);
            }
            200 if end.duration_since(first_unacked).as_millis()
                > u128::from(DEADLINE_MS + MARGIN_MS) =>
            {
                served_late += 1
            }
            200 => {}
            other => problems.push(format!("strict: a stalled call got {other} {code}")),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let latency_ms = refused_at.map(|t| t.duration_since(first_unacked).as_millis());
    let held_records = audit_health(&strict)["queue_depth"].as_u64().unwrap_or(0);
    strict_link.release();
    let released = Instant::now();
    // Serving resumes once the queued records are stored.
    let mut resumed = None;
    while released.elapsed() < Duration::from_secs(15) {
        let (s, _, end) = call(&strict, &format!("strict-after-{i}"));
        i += 1;
        if s == 200 {
            resumed = Some(end.duration_since(released));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let strict_seq = drained(&strict, Duration::from_secs(15));
    let strict_stream = audit_health(&strict)["stream"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // required = off: the link stalls, calls keep being served, what does
    // not fit the queue is dropped and counted.
    if drained(&lax, Duration::from_secs(10)).is_none() {
        return Verdict::broken("lax: the trail never drained before the stall");
    }
    lax_link.stall();
    let lax_calls = LAX_QUEUE + 8;
    let mut lax_served = 0;
    for n in 0..lax_calls {
        let (s, code, _) = call(&lax, &format!("lax-stalled-{n}"));
        if s == 200 {
            lax_served += 1;
        } else {
            problems.push(format!("lax: a stalled call got {s} {code}"));
        }
    }
    lax_link.release();
    // A dropped record at the tail shows only once a later one is stored:
    // one more call once the queue has drained (before, its record could
    // meet the full queue too).
    if drained(&lax, Duration::from_secs(15)).is_none() {
        problems.push("lax: the queue did not drain after the release".into());
    }
    let (s, code, _) = call(&lax, "lax-after");
    if s != 200 {
        problems.push(format!("lax: the call after the release got {s} {code}"));
    }
    let lax_seq = drained(&lax, Duration::from_secs(15));
    // The final count: a record made after the calls (a renewal's) may
    // also have met the full queue.
    let dropped = audit_health(&lax)["dropped"].as_u64().unwrap_or(0);
    let lax_stream = audit_health(&lax)["stream"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let (_, report) = verify(&pg, &vkey, None);
    let sb = block(&report, &strict_stream);
    let lb = block(&report, &lax_stream);
    match latency_ms {
        None => problems.push("strict: no call was refused while stalled".into()),
        Some(l) if l > u128::from(DEADLINE_MS + MARGIN_MS) => problems.push(format!(
            "strict: refused {l} ms after the first unacknowledged record (deadline {DEADLINE_MS} ms)"
        )),
        Some(_) => {}
    }
    if served_late > 0 {
        problems.push(format!(
            "strict: {served_late} calls served past the deadline"
        ));
    }
    if resumed.is_none() {
        problems.push("strict: serving did not resume once released".into());
    }
    // Whole: every seq from 0 stored (a renewal may have added records
    // since the drain), no finding.
    let stored = stored_whole(&sb);
    match (strict_seq, stored) {
        (Some(n), Some(m)) if m >= n && !sb.contains("FINDING") => {}
        _ => problems.push(format!("strict: the trail is not whole: {}", sb.trim())),
    }
    if lax_served != lax_calls {
        problems.push(format!(
            "lax: {lax_served}/{lax_calls} served while stalled"
        ));
    }
    if dropped == 0 {
        problems.push("lax: no drop counted with the queue overflowing".into());
    }
    // Each dropped record consumed its seq: the gaps named add up to the
    // drops counted.
    let named = missing_seqs(&lb);
    if lax_seq.is_none() || named != dropped {
        problems.push(format!(
            "lax: {named} seqs named missing for {dropped} dropped: {}",
            lb.trim()
        ));
    }
    let figure = format!(
        "required: refused (503 enclave.audit_unavailable) {} ms after the first unacknowledged record (deadline {DEADLINE_MS} ms), {refused} refused, {held_records} records held while stalled, all recovered: {} records stored, seq 0 to the last, verify clean; serving resumed {:.1} s after release. \
         not required: {lax_served}/{lax_calls} calls served while stalled, {dropped} records dropped (health), {named} seqs named missing by verify",
        latency_ms.map_or("never".to_owned(), |l| l.to_string()),
        stored.map_or("?".to_owned(), |n| n.to_string()),
        resumed.map_or(f64::NAN, |d| d.as_secs_f64()),
    );
    if problems.is_empty() {
        Verdict::held(figure)
    } else {
        if std::env::var_os("HOSTILE_VERBOSE").is_some() {
            eprintln!("{report}");
        }
        Verdict::broken(format!("{figure}; {}", problems.join("; ")))
    }
}
