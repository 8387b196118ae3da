//! The audit trail's host side against a real PostgreSQL (Debian's, a
//! throwaway cluster on a Unix socket): the collector (`enclavectl audit
//! serve`) stores what real keys signed (`audit-record`'s `Chain`, P-256
//! enclave keys, the verifier's P-384 key), `enclavectl audit verify`
//! accepts an honest trail and names every deletion, reorder, duplicate,
//! edit and forgery by the host, at rest (SQL on the tables) and in
//! transit (a tampering forwarder); what cannot be verified is kept in
//! quarantine; a collector killed mid-stream loses nothing it acked;
//! retention deletes a prefix and verify starts the chain there.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use audit_record::Chain;
use enclave_tests::audit_store::{
    edit_field, forge, make_run, now_ms, ship, verify, Collector, Forwarder, Key,
};
use enclave_tests::postgres::Postgres;
use enclave_tests::TempDir;

const BUDGET: Duration = Duration::from_secs(20);

struct World {
    pg: Postgres,
    dir: TempDir,
    verifier: Key,
    verifier_file: std::path::PathBuf,
    verifier_chain: Chain,
    collector: Collector,
}

fn world() -> World {
    let pg = Postgres::start(false);
    let dir = TempDir::new("audit");
    let verifier = Key::p384();
    let verifier_file = verifier.write(&dir.path().join("token-key.pk8"));
    let verifier_chain = Chain::new(&verifier.spki());
    let collector = Collector::start(&pg, &dir.path().join("collector.sock"), &verifier_file);
    World {
        pg,
        dir,
        verifier,
        verifier_file,
        verifier_chain,
        collector,
    }
}

/// Stores one honest run (decision + enclave chain) and returns it.
fn store_run(w: &mut World, calls: usize) -> enclave_tests::audit_store::Run {
    let enclave = Key::p256();
    let run = make_run(
        &mut w.verifier_chain,
        &w.verifier,
        &enclave,
        calls,
        now_ms(),
    );
    let vlast = w.verifier_chain.next_seq() - 1;
    assert_eq!(
        ship(
            &w.collector.socket,
            &run.verifier_lines,
            Some(vlast),
            BUDGET
        )
        .last(),
        Some(&vlast)
    );
    let last = u64::try_from(run.enclave_lines.len() - 1).unwrap();
    assert_eq!(
        ship(&w.collector.socket, &run.enclave_lines, Some(last), BUDGET).last(),
        Some(&last)
    );
    run
}

fn count(pg: &Postgres, sql: &str) -> i64 {
    pg.client().query_one(sql, &[]).unwrap().get(0)
}

/// An honest trail of two enclave instances verifies, and the report names
/// each instance's evidence, its proving decision and its calls.
#[test]
fn an_honest_trail_verifies_and_is_reported_per_instance() {
    let mut w = world();
    let a = store_run(&mut w, 5);
    let b = store_run(&mut w, 2);
    // 2 decisions + (attestation, release, calls, lifecycle) per instance.
    assert_eq!(
        count(&w.pg, "SELECT count(*) FROM audit_records"),
        2 + 8 + 5
    );
    assert_eq!(count(&w.pg, "SELECT count(*) FROM audit_quarantine"), 0);
    assert_eq!(
        count(&w.pg, "SELECT max(version)::bigint FROM schema_migrations"),
        1
    );
    let (ok, report) = verify(&w.pg, &w.verifier_file, None);
    assert!(ok, "{report}");
    assert!(report.contains("audit verify: OK, 3 streams"), "{report}");
    for (run, calls, dseq) in [(&a, 5, 0), (&b, 2, 1)] {
        let block = report
            .split(&format!("enclave stream {}", run.enclave_stream))
            .nth(1)
            .unwrap();
        assert!(
            block.contains(&format!("proven by verifier decision seq {dseq}")),
            "{report}"
        );
        assert!(
            block.contains(&format!("calls: {calls} (first ")),
            "{report}"
        );
    }
    assert!(
        report.contains("decisions: 2 accepted, 0 denied"),
        "{report}"
    );

    // The export for an auditor: the report and the signed lines in range
    // (an hour around now: all of them; a day in 2001: none).
    let out = w.dir.path().join("export.json");
    let export = |from: &str, to: &str| {
        let st = std::process::Command::new(enclave_tests::stack::enclavectl())
            .args(["--log-level", "warn", "audit", "export", "--db"])
            .arg(w.pg.socket_dir())
            .arg("--verifier-key")
            .arg(&w.verifier_file)
            .args(["--from", from, "--to", to, "--out"])
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success());
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&out).unwrap()).unwrap()
    };
    let now = now_ms();
    let rfc = audit_collector::verify::rfc3339;
    let doc = export(&rfc(now - 3_600_000), &rfc(now + 3_600_000));
    assert_eq!(doc["report"]["ok"], true);
    let lines = doc["records"].as_array().unwrap();
    assert_eq!(lines.len(), 15);
    for l in lines {
        let rec = audit_record::Record::parse(l["line"].as_str().unwrap()).unwrap();
        assert_eq!(rec.seq, l["seq"].as_u64().unwrap());
    }
    let doc = export("2001-01-01T00:00:00Z", "2001-01-02T00:00:00+00:00");
    assert_eq!(doc["records"].as_array().unwrap().len(), 0);

    // A collector restart re-applies no migration and stores nothing twice.
    drop(std::mem::replace(
        &mut w.collector,
        Collector::start(&w.pg, &w.dir.path().join("c2.sock"), &w.verifier_file),
    ));
    let resent = ship(&w.collector.socket, &a.enclave_lines, Some(7), BUDGET);
    assert_eq!(resent.last(), Some(&7));
    assert_eq!(count(&w.pg, "SELECT count(*) FROM audit_records"), 15);
    assert_eq!(count(&w.pg, "SELECT count(*) FROM schema_migrations"), 1);
}

/// The host edits the database directly: each act is named by seq.
#[test]
fn tampering_at_rest_is_detected_and_named() {
    let mut w = world();
    let run = store_run(&mut w, 8); // enclave seq 0-10
    let s = run.enclave_stream.clone();
    let mut db = w.pg.client();
    let stranger = Key::p256();
    let forged = forge(&run.enclave_lines[9], &stranger);
    // Delete seq 3; edit seq 5's body column and seq 6's signed line;
    // duplicate seq 2 (the host drops the constraint); swap the lines of
    // seq 7 and 8 (their columns stay); replace seq 9 by a forgery.
    db.batch_execute(&format!(
        "DELETE FROM audit_records WHERE stream = '{s}' AND seq = 3;
         UPDATE audit_records SET body = jsonb_set(body, '{{duration_ms}}', '1') WHERE stream = '{s}' AND seq = 5;
         ALTER TABLE audit_records DROP CONSTRAINT audit_records_stream_seq_key;
         INSERT INTO audit_records (stream, seq, prev, hash, kind, time, body, sig, raw)
           SELECT stream, seq, prev, hash, kind, time, body, sig, raw FROM audit_records WHERE stream = '{s}' AND seq = 2;
         UPDATE audit_records a SET raw = b.raw FROM audit_records b
           WHERE a.stream = '{s}' AND b.stream = '{s}' AND ((a.seq = 7 AND b.seq = 8) OR (a.seq = 8 AND b.seq = 7));"
    ))
    .unwrap();
    let edited = edit_field(&run.enclave_lines[6], "duration_ms", 1.into());
    db.execute(
        "UPDATE audit_records SET raw = $1 WHERE stream = $2 AND seq = 6",
        &[&edited, &s],
    )
    .unwrap();
    db.execute(
        "UPDATE audit_records SET raw = $1, sig = '00' WHERE stream = $2 AND seq = 9",
        &[&forged, &s],
    )
    .unwrap();
    let (ok, report) = verify(&w.pg, &w.verifier_file, None);
    assert!(!ok, "{report}");
    for want in [
        "FINDING seq 3 missing",
        "FINDING seq 5 edited (columns body disagree with the signed line)",
        "FINDING seq 6 edited (columns hash, body disagree with the signed line)",
        "FINDING seq 6 forged or edited (signature does not verify",
        "FINDING seq 2 duplicated (2 rows)",
        "FINDING seq 7 edited (columns seq, prev, hash, time, body, sig disagree with the signed line)",
        "FINDING seq 9 forged or edited (signature does not verify",
    ] {
        assert!(report.contains(want), "{want:?} not in:\n{report}");
    }
    // Only the enclave stream is wrong: the verifier's is clean.
    assert!(report.lines().filter(|l| l.contains("FINDING")).count() >= 7);
}

/// The host between the enclave and the collector drops, reorders, edits,
/// forges and duplicates records: the forgeries and edits are kept in
/// quarantine, and verify names every act.
#[test]
fn tampering_in_transit_is_detected_and_named() {
    let mut w = world();
    let enclave = Key::p256();
    let run = make_run(&mut w.verifier_chain, &w.verifier, &enclave, 8, now_ms());
    ship(&w.collector.socket, &run.verifier_lines, Some(0), BUDGET);
    let stranger = Key::p256();
    let fwd_sock = w.dir.path().join("fwd.sock");
    let mut held: Option<String> = None;
    let _fwd = Forwarder::start(&fwd_sock, &w.collector.socket, move |line| {
        let seq = audit_record::Record::parse(&line).unwrap().seq;
        match seq {
            2 => vec![], // drop
            4 => {
                held = Some(line); // hold back…
                vec![]
            }
            5 => vec![line, held.take().unwrap()], // …send after 5
            6 => vec![edit_field(&line, "duration_ms", 1.into())], // edit
            7 => vec![forge(&line, &stranger)],    // forge
            8 => vec![line.clone(), line],         // replay
            _ => vec![line],
        }
    });
    let acks = ship(&fwd_sock, &run.enclave_lines, Some(10), BUDGET);
    assert_eq!(acks.last(), Some(&10), "{acks:?}");
    let s = &run.enclave_stream;
    assert_eq!(
        count(
            &w.pg,
            &format!("SELECT count(*) FROM audit_quarantine WHERE stream = '{s}'")
        ),
        3
    );
    let (ok, report) = verify(&w.pg, &w.verifier_file, None);
    assert!(!ok, "{report}");
    for want in [
        "FINDING seq 2 missing",
        "FINDING seq 5 reordered in transit (stored before seq 4)",
        "FINDING seq 6-7 missing",
        "FINDING seq 6 quarantined: bad signature",
        "FINDING seq 7 quarantined: bad signature",
        "FINDING seq 8 quarantined: seq 8 replayed on one connection",
    ] {
        assert!(report.contains(want), "{want:?} not in:\n{report}");
    }
}

/// What the collector cannot verify is kept, with the reason, never
/// dropped: a bad signature, a record of another stream than the
/// connection's hello, a line that does not parse, a decision not signed by
/// the verifier's key. A connection that does not open with a hello is
/// closed and stores nothing.
#[test]
fn unverifiable_records_land_in_quarantine_with_the_reason() {
    let mut w = world();
    let enclave = Key::p256();
    let run = make_run(&mut w.verifier_chain, &w.verifier, &enclave, 2, now_ms());
    let stranger = Key::p256();
    let not_verifier = Key::p384();
    let mut their_chain = Chain::new(&not_verifier.spki());
    let other = make_run(&mut their_chain, &not_verifier, &Key::p256(), 0, now_ms());
    let lines = vec![
        run.enclave_lines[0].clone(),
        run.enclave_lines[1].clone(),
        forge(&run.enclave_lines[2], &stranger),
        "{\"v\":1,\"not\":\"a record\"}".to_owned(),
        other.enclave_lines[0].clone(),
    ];
    let acks = ship(&w.collector.socket, &lines, Some(2), BUDGET);
    assert_eq!(acks.last(), Some(&2), "{acks:?}");
    // A decision signed by a P-384 key that is not the verifier's, on its
    // own connection (its hello names that key).
    let acks = ship(&w.collector.socket, &other.verifier_lines, Some(0), BUDGET);
    assert_eq!(acks, vec![0]);
    // No hello: closed at once, nothing kept.
    {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&w.collector.socket).unwrap();
        s.write_all(format!("{}\n", run.enclave_lines[3]).as_bytes())
            .unwrap();
        s.set_read_timeout(Some(BUDGET)).unwrap();
        let mut rest = Vec::new();
        assert_eq!(s.read_to_end(&mut rest).unwrap(), 0);
    }
    let mut db = w.pg.client();
    let rows: Vec<(String, String)> = db
        .query("SELECT reason, raw FROM audit_quarantine ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let reasons: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(reasons[0], "bad signature: the signature does not verify");
    assert!(reasons[1].starts_with("unparseable: "), "{reasons:?}");
    assert_eq!(
        reasons[2],
        "a record of another stream than the connection's hello"
    );
    assert_eq!(
        reasons[3],
        "decision record from a stream that is not the verifier's key"
    );
    // The raw lines are kept as received.
    assert_eq!(rows[0].1, lines[2]);
    assert_eq!(rows[1].1, lines[3]);
    assert_eq!(rows[2].1, lines[4]);
    assert_eq!(count(&w.pg, "SELECT count(*) FROM audit_records"), 2);
}

/// The collector is killed (SIGKILL) while records stream in; every seq
/// acknowledged before the kill is in the database, and the emitter's
/// resend from its first unacknowledged record completes a chain that
/// verifies.
#[test]
fn a_collector_killed_mid_stream_loses_nothing_acked() {
    let mut w = world();
    let enclave = Key::p256();
    let run = make_run(&mut w.verifier_chain, &w.verifier, &enclave, 400, now_ms());
    ship(&w.collector.socket, &run.verifier_lines, Some(0), BUDGET);
    let sock = w.collector.socket.clone();
    let lines = run.enclave_lines.clone();
    let sender = std::thread::spawn(move || {
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        let reader = s.try_clone().unwrap();
        let acks = std::thread::spawn(move || {
            enclave_tests::audit_store::read_acks(reader, None, Duration::from_secs(20))
        });
        use std::io::Write;
        s.write_all(enclave_tests::audit_store::hello_for(&lines[0]).as_bytes())
            .unwrap();
        for l in &lines {
            if s.write_all(format!("{l}\n").as_bytes()).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        acks.join().unwrap()
    });
    // Kill it once something is committed (and so acknowledged), while the
    // sender is still far from the end (one line a millisecond, 403 lines).
    let deadline = std::time::Instant::now() + BUDGET;
    while count(
        &w.pg,
        &format!(
            "SELECT count(*) FROM audit_records WHERE stream = '{}'",
            run.enclave_stream
        ),
    ) == 0
    {
        assert!(std::time::Instant::now() < deadline, "nothing stored");
        std::thread::sleep(Duration::from_millis(5));
    }
    w.collector.proc.stop();
    let acks = sender.join().unwrap();
    let acked = *acks.last().expect("some records acked before the kill");
    assert!(acked < 401, "the kill came too late: {acked}");
    let stored = count(
        &w.pg,
        &format!(
            "SELECT count(*) FROM audit_records WHERE stream = '{}' AND seq <= {acked}",
            run.enclave_stream
        ),
    );
    assert_eq!(stored, i64::try_from(acked + 1).unwrap());
    // Restart; the emitter resends from its first unacknowledged record.
    w.collector = Collector::start(&w.pg, &w.dir.path().join("c2.sock"), &w.verifier_file);
    let from = usize::try_from(acked + 1).unwrap();
    let rest = ship(
        &w.collector.socket,
        &run.enclave_lines[from..],
        Some(402),
        BUDGET,
    );
    assert_eq!(rest.last(), Some(&402));
    let (ok, report) = verify(&w.pg, &w.verifier_file, None);
    assert!(ok, "{report}");
}

/// Retention deletes each stream's prefix older than the period and says
/// so in a signed record; verify starts the chain there and names it. A
/// deletion the retention key did not sign is a finding.
#[test]
fn retention_deletes_a_prefix_and_verify_starts_there() {
    let mut w = world();
    let day = 86_400_000;
    let enclave = Key::p256();
    // Records 40 days old (decision, enclave seq 0-4), and a second run of
    // the same instance's chain is not possible, so: one chain whose first
    // five records are old and the rest new.
    let old = now_ms() - 40 * day;
    let run = make_run(&mut w.verifier_chain, &w.verifier, &enclave, 3, old);
    // Re-sign seq 5.. with recent times: extend the chain from seq 4.
    let mut lines: Vec<String> = run.enclave_lines[..5].to_vec();
    let mut chain = Chain::after(&audit_record::Record::parse(&lines[4]).unwrap());
    for i in 0..3u64 {
        let rec = chain
            .append(
                audit_record::Body::Lifecycle(audit_record::LifecycleBody {
                    from: "serving".into(),
                    to: format!("step{i}"),
                }),
                now_ms() - 1000 + i,
                &enclave.signer(),
            )
            .unwrap();
        lines.push(rec.to_line());
    }
    ship(&w.collector.socket, &run.verifier_lines, Some(0), BUDGET);
    assert_eq!(
        ship(&w.collector.socket, &lines, Some(7), BUDGET).last(),
        Some(&7)
    );
    let retention = Key::p384();
    let rkey = retention.write(&w.dir.path().join("retention.pk8"));
    let out = std::process::Command::new(enclave_tests::stack::enclavectl())
        .args(["--log-level", "warn", "audit", "retain", "--db"])
        .arg(w.pg.socket_dir())
        .args(["--older-than", "30", "--key"])
        .arg(&rkey)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "retained stream {}: seq 0-4 deleted (5 rows), retention record seq",
            run.enclave_stream
        )),
        "{text}"
    );
    assert!(text.contains("audit retain: 2 streams"), "{text}");
    let (ok, report) = verify(&w.pg, &w.verifier_file, Some(&rkey));
    assert!(ok, "{report}");
    assert!(
        report.contains("starts after the retention point: seq 0-4 deleted (retention record seq"),
        "{report}"
    );
    // Without trusting the retention key the deletion is a gap.
    let (ok, report) = verify(&w.pg, &w.verifier_file, None);
    assert!(!ok);
    assert!(report.contains("FINDING seq 0-4 missing"), "{report}");
    // A deletion after retention is named.
    w.pg.client()
        .execute(
            "DELETE FROM audit_records WHERE stream = $1 AND seq = 6",
            &[&run.enclave_stream],
        )
        .unwrap();
    let (ok, report) = verify(&w.pg, &w.verifier_file, Some(&rkey));
    assert!(!ok);
    assert!(report.contains("FINDING seq 6 missing"), "{report}");
}

const MEASUREMENT: &str = "6f627365727661626c652d6d6561737572656d656e74000000000000000000000000000000000000000000000000001e";

/// The verifier's side (`enclavectl verifier --audit`): each appraisal,
/// accepted or denied, becomes one decision record signed with the token
/// key, naming the attested key's digest; a restarted verifier continues
/// its chain; the whole trail verifies against the token key.
#[test]
fn the_verifier_records_each_decision_and_resumes_its_chain() {
    use enclave_tests::stack::{sim_policy, Pki, SimPsp, Verifier};
    let mut w = world();
    let pki = Pki::new();
    // This collector trusts the verifier's real token key.
    w.collector = Collector::start(
        &w.pg,
        &w.dir.path().join("c-pki.sock"),
        &pki.path("token-key.pk8"),
    );
    let psp = SimPsp::start(
        &w.dir.path().join("psp.sock"),
        &["--measurement", MEASUREMENT],
    );
    let policy = format!(
        "id = \"fleet-main\"\nversion = 7\n{}",
        sim_policy(&psp.ark_sha256, &[&psp.measurement])
    );
    let addr = format!("unix://{}", w.collector.socket.display());
    let config = enclave_tests::attest_client::client_config(&pki.ca_pem());
    let keys: Vec<Vec<u8>> = (0..3)
        .map(|_| enclave_tests::attest_client::enclave_spki())
        .collect();
    for (i, key) in keys.iter().enumerate() {
        // A new verifier process for the third: its chain resumes at seq 2.
        let v = Verifier::start(&pki, &policy, w.dir.path(), &["--audit", &addr]);
        let x = enclave_tests::attest_client::exchange(&config, v.port, &psp.socket, key, BUDGET)
            .unwrap();
        assert!(!x.token.token.is_empty());
        wait_rows(&w.pg, i64::try_from(i + 1).unwrap());
    }
    let mut db = w.pg.client();
    let rows = db
        .query(
            "SELECT seq, body->>'verdict', body->>'enclave_spki_sha256', body->>'policy_id',
                    length(body->>'evidence_sha256')
             FROM audit_records WHERE kind = 'decision' ORDER BY seq",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 3);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.get::<_, i64>(0), i64::try_from(i).unwrap());
        assert_eq!(r.get::<_, &str>(1), "accepted");
        assert_eq!(
            r.get::<_, &str>(2),
            enclave_tests::audit_store::sha256(&keys[i])
        );
        assert_eq!(r.get::<_, &str>(3), "fleet-main");
        assert_eq!(r.get::<_, i32>(4), 64);
    }
    let (ok, report) = verify(&w.pg, &pki.path("token-key.pk8"), None);
    assert!(ok, "{report}");
    assert!(
        report.contains("decisions: 3 accepted, 0 denied"),
        "{report}"
    );
}

fn wait_rows(pg: &Postgres, n: i64) {
    let deadline = std::time::Instant::now() + BUDGET;
    while count(
        pg,
        "SELECT count(*) FROM audit_records WHERE kind = 'decision'",
    ) < n
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} decision records not stored"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A collector that accepts and never answers does not slow appraisal:
/// with a queue of 2, twenty appraisals each take under a second and the
/// decisions past the queue are counted as dropped in /metrics.
#[test]
fn a_stalled_collector_never_slows_appraisal_and_drops_are_counted() {
    use enclave_tests::stack::{sim_policy, Pki, SimPsp, Verifier};
    let dir = TempDir::new("audit-stall");
    let sock = dir.path().join("stalled.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // Accepts, holds every connection, reads nothing, answers nothing.
    let held = std::thread::spawn(move || {
        listener
            .incoming()
            .take(4)
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    });
    let pki = Pki::new();
    let psp = SimPsp::start(
        &dir.path().join("psp.sock"),
        &["--measurement", MEASUREMENT],
    );
    let policy = sim_policy(&psp.ark_sha256, &[&psp.measurement]);
    let addr = format!("unix://{}", sock.display());
    let v = Verifier::start(
        &pki,
        &policy,
        dir.path(),
        &["--audit", &addr, "--audit-queue", "2"],
    );
    let config = enclave_tests::attest_client::client_config(&pki.ca_pem());
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let key = enclave_tests::attest_client::enclave_spki();
        let x = enclave_tests::attest_client::exchange(&config, v.port, &psp.socket, &key, BUDGET)
            .unwrap();
        slowest = slowest.max(x.attest);
    }
    assert!(
        slowest < Duration::from_secs(1),
        "slowest attest {slowest:?}"
    );
    let metrics = enclave_tests::attest_client::metrics(&config, v.port);
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("enclave_verifier_audit_dropped_total "))
        .unwrap()
        .parse()
        .unwrap();
    // 20 decisions: one may be signed and stuck unacknowledged, 2 wait in
    // the queue; the rest are dropped.
    assert!((17..=18).contains(&dropped), "dropped {dropped}\n{metrics}");
    assert!(metrics.contains("enclave_verifier_audit_acked_total 0\n"));
    drop(held);
}
