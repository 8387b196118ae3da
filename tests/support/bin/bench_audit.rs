//! Records per second the audit collector (`enclavectl audit serve`) stores
//! in PostgreSQL (fsync on: each acknowledged batch is durable), beside a
//! baseline in the same run on the same server: the same rows written by
//! plain INSERTs in transactions of the collector's batch size, and by
//! COPY. The records are signed before the clock starts (the emitters'
//! cost is not the collector's); one stream, then 4 streams at once.
//!
//!   bench-audit [records per stream]      (default 20000)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::time::{Duration, Instant};

use audit_record::{Body, CallBody, CallOutcome, Chain};
use enclave_tests::audit_store::{make_run, now_ms, read_acks, sha256, Collector, Key};
use enclave_tests::postgres::Postgres;
use enclave_tests::TempDir;

/// One enclave's chain of `n` records (attestation, release, calls…).
fn chain_lines(vchain: &mut Chain, verifier: &Key, n: usize) -> (Vec<String>, Vec<String>) {
    let enclave = Key::p256();
    let run = make_run(vchain, verifier, &enclave, 0, now_ms());
    let mut lines = run.enclave_lines[..2].to_vec();
    let mut chain = Chain::after(&audit_record::Record::parse(&lines[1]).unwrap());
    let signer = enclave.signer();
    for i in 2..n {
        let t = now_ms();
        let rec = chain
            .append(
                Body::Call(CallBody {
                    call_ref: Some(sha256(format!("{i}").as_bytes())),
                    start_ms: t,
                    duration_ms: 20,
                    outcome: CallOutcome::Ok,
                }),
                t,
                &signer,
            )
            .unwrap();
        lines.push(rec.to_line());
    }
    (run.verifier_lines, lines)
}

fn send_all(socket: &std::path::Path, lines: &[String]) {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    let last = u64::try_from(lines.len() - 1).unwrap();
    let reader = s.try_clone().unwrap();
    let acks = std::thread::spawn(move || read_acks(reader, Some(last), Duration::from_secs(600)));
    let mut text = enclave_tests::audit_store::hello_for(&lines[0]);
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    s.write_all(text.as_bytes()).unwrap();
    assert_eq!(acks.join().unwrap().last(), Some(&last));
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap())
        .unwrap_or(20_000);
    let pg = Postgres::start(true);
    let dir = TempDir::new("bench-audit");
    let verifier = Key::p384();
    let vfile = verifier.write(&dir.path().join("token-key.pk8"));
    let mut vchain = Chain::new(&verifier.spki());
    let collector = Collector::start(&pg, &dir.path().join("collector.sock"), &vfile);

    let streams: Vec<(Vec<String>, Vec<String>)> = (0..5)
        .map(|_| chain_lines(&mut vchain, &verifier, n))
        .collect();
    let decisions: Vec<String> = streams.iter().flat_map(|s| s.0.clone()).collect();
    send_all(&collector.socket, &decisions);

    // The collector, one stream.
    let t = Instant::now();
    send_all(&collector.socket, &streams[0].1);
    let one = t.elapsed();
    // The collector, four streams at once.
    let t = Instant::now();
    let handles: Vec<_> = streams[1..5]
        .iter()
        .map(|s| {
            let lines = s.1.clone();
            let sock = collector.socket.clone();
            std::thread::spawn(move || send_all(&sock, &lines))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let four = t.elapsed();

    // Baselines on the same server and the same rows: copy the stored rows
    // to a twin table, by INSERT in batches of 512, then by COPY.
    let mut db = pg.client();
    let rows = db
        .query(
            "SELECT stream, seq, prev, hash, kind, time, body::text, sig, raw FROM audit_records
             WHERE kind <> 'decision' AND stream = (SELECT stream FROM audit_records WHERE kind = 'attestation' ORDER BY id LIMIT 1)
             ORDER BY seq",
            &[],
        )
        .unwrap();
    db.batch_execute("CREATE TABLE twin (LIKE audit_records INCLUDING ALL)")
        .unwrap();
    let t = Instant::now();
    for chunk in rows.chunks(512) {
        let mut tx = db.transaction().unwrap();
        let st = tx
            .prepare(
                "INSERT INTO twin (stream, seq, prev, hash, kind, time, body, sig, raw)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9)",
            )
            .unwrap();
        for r in chunk {
            let body: &str = r.get(6);
            tx.execute(
                &st,
                &[
                    &r.get::<_, &str>(0),
                    &r.get::<_, i64>(1),
                    &r.get::<_, &str>(2),
                    &r.get::<_, &str>(3),
                    &r.get::<_, &str>(4),
                    &r.get::<_, std::time::SystemTime>(5),
                    &body,
                    &r.get::<_, &str>(7),
                    &r.get::<_, &str>(8),
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let insert = t.elapsed();
    db.batch_execute("TRUNCATE twin").unwrap();
    let t = Instant::now();
    // COPY FROM STDIN through the client (no server-side file access
    // needed): the rows as text, written by the client.
    let mut text = Vec::new();
    for r in &rows {
        let esc = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('\t', "\\t")
                .replace('\n', "\\n")
        };
        let t: std::time::SystemTime = r.get(5);
        let ms = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        writeln!(
            text,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.get::<_, &str>(0),
            r.get::<_, i64>(1),
            r.get::<_, &str>(2),
            r.get::<_, &str>(3),
            r.get::<_, &str>(4),
            audit_collector::verify::rfc3339(u64::try_from(ms).unwrap()),
            esc(r.get::<_, &str>(6)),
            r.get::<_, &str>(7),
            esc(r.get::<_, &str>(8)),
        )
        .unwrap();
    }
    let mut w = db
        .copy_in("COPY twin (stream, seq, prev, hash, kind, time, body, sig, raw) FROM STDIN")
        .unwrap();
    w.write_all(&text).unwrap();
    w.finish().unwrap();
    let copy = t.elapsed();

    let rate = |k: usize, d: Duration| k as f64 / d.as_secs_f64();
    println!(
        "collector, 1 stream:   {n} records in {:.2} s = {:.0} records/s (verified, stored, acked; fsync on)",
        one.as_secs_f64(),
        rate(n, one)
    );
    println!(
        "collector, 4 streams:  {} records in {:.2} s = {:.0} records/s",
        4 * n,
        four.as_secs_f64(),
        rate(4 * n, four)
    );
    println!(
        "baseline INSERT:       {} rows in {:.2} s = {:.0} rows/s (same rows, prepared, 512 per transaction)",
        rows.len(),
        insert.as_secs_f64(),
        rate(rows.len(), insert)
    );
    println!(
        "baseline COPY:         {} rows in {:.2} s = {:.0} rows/s",
        rows.len(),
        copy.as_secs_f64(),
        rate(rows.len(), copy)
    );
}
