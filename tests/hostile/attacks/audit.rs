//! The audit trail (issue 19): the host between an enclave and the
//! collector, and the host holding the database, delete, reorder, edit,
//! replay and forge records. The guarantee is not that they cannot (the
//! host owns the wire and the disk) but that `enclavectl audit verify`
//! detects and names every act. Real parts: PostgreSQL, the collector,
//! `audit-record` chains signed by real P-256 enclave keys and the
//! verifier's P-384 key.

use std::time::Duration;

use audit_record::{Chain, Record};
use enclave_tests::audit_store::{
    edit_field, forge, make_run, now_ms, ship, verify, Collector, Forwarder, Key,
};
use enclave_tests::postgres::Postgres;
use enclave_tests::TempDir;

use crate::Verdict;

const BUDGET: Duration = Duration::from_secs(20);

/// The report's block for `stream` (up to the next stream's header).
fn block<'a>(report: &'a str, stream: &str) -> &'a str {
    let Some(start) = report.find(&format!(" stream {stream} ")) else {
        return "";
    };
    let rest = &report[start..];
    let end = rest[1..]
        .find(" stream ")
        .and_then(|i| rest[..i + 1].rfind('\n'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Every act, its place, and the finding that must name it.
pub fn audit_tamper() -> Verdict {
    let pg = Postgres::start(false);
    let dir = TempDir::new("audit-tamper");
    let verifier = Key::p384();
    let vfile = verifier.write(&dir.path().join("token-key.pk8"));
    let mut vchain = Chain::new(&verifier.spki());
    let collector = Collector::start(&pg, &dir.path().join("collector.sock"), &vfile);

    // In transit: one enclave's stream through a tampering forwarder.
    let transit = make_run(&mut vchain, &verifier, &Key::p256(), 8, now_ms());
    // At rest: another enclave's stream, stored honestly, then edited.
    let rest = make_run(&mut vchain, &verifier, &Key::p256(), 8, now_ms());
    let mut decisions = transit.verifier_lines.clone();
    decisions.extend(rest.verifier_lines.iter().cloned());
    ship(&collector.socket, &decisions, Some(1), BUDGET);
    ship(&collector.socket, &rest.enclave_lines, Some(10), BUDGET);

    let stranger = Key::p256();
    let fwd_sock = dir.path().join("fwd.sock");
    let mut held: Option<String> = None;
    let _fwd = Forwarder::start(
        &fwd_sock,
        &collector.socket,
        move |line| match Record::parse(&line).map(|r| r.seq).unwrap_or(u64::MAX) {
            2 => vec![],
            4 => {
                held = Some(line);
                vec![]
            }
            5 => vec![line, held.take().unwrap_or_default()],
            6 => vec![edit_field(&line, "duration_ms", 1.into())],
            7 => vec![forge(&line, &stranger)],
            8 => vec![line.clone(), line],
            _ => vec![line],
        },
    );
    ship(&fwd_sock, &transit.enclave_lines, Some(10), BUDGET);

    // A whole instance the verifier never admitted: self-made "decision"
    // (quarantined: not the verifier's key) and a self-consistent chain.
    let impostor_verifier = Key::p384();
    let mut ichain = Chain::new(&impostor_verifier.spki());
    let impostor = make_run(&mut ichain, &impostor_verifier, &Key::p256(), 1, now_ms());
    ship(&collector.socket, &impostor.verifier_lines, Some(0), BUDGET);
    ship(&collector.socket, &impostor.enclave_lines, Some(3), BUDGET);

    let s = &rest.enclave_stream;
    let mut db = pg.client();
    let edited6 = edit_field(&rest.enclave_lines[6], "duration_ms", 1.into());
    let forged9 = forge(&rest.enclave_lines[9], &Key::p256());
    let appended = {
        // Seq 11, chained to seq 10, signed by a key that is not the stream's.
        let last = Record::parse(&rest.enclave_lines[10]).unwrap();
        let mut rec = last.clone();
        rec.seq = 11;
        rec.prev = last.hash();
        forge(&rec.to_line(), &Key::p256())
    };
    let sql = [
        format!("DELETE FROM audit_records WHERE stream = '{s}' AND seq = 3"),
        format!("UPDATE audit_records SET body = jsonb_set(body, '{{duration_ms}}', '1') WHERE stream = '{s}' AND seq = 5"),
        "ALTER TABLE audit_records DROP CONSTRAINT audit_records_stream_seq_key".to_owned(),
        format!("INSERT INTO audit_records (stream, seq, prev, hash, kind, time, body, sig, raw) SELECT stream, seq, prev, hash, kind, time, body, sig, raw FROM audit_records WHERE stream = '{s}' AND seq = 2"),
        format!("UPDATE audit_records a SET raw = b.raw FROM audit_records b WHERE a.stream = '{s}' AND b.stream = '{s}' AND ((a.seq = 7 AND b.seq = 8) OR (a.seq = 8 AND b.seq = 7))"),
    ];
    for q in &sql {
        db.batch_execute(q).unwrap();
    }
    db.execute(
        "UPDATE audit_records SET raw = $1 WHERE stream = $2 AND seq = 6",
        &[&edited6, s],
    )
    .unwrap();
    db.execute(
        "UPDATE audit_records SET raw = $1 WHERE stream = $2 AND seq = 9",
        &[&forged9, s],
    )
    .unwrap();
    db.execute(
        "INSERT INTO audit_records (stream, seq, prev, hash, kind, time, body, sig, raw)
         SELECT stream, 11, prev, hash, kind, time, body, sig, $1 FROM audit_records WHERE stream = $2 AND seq = 10",
        &[&appended, s],
    )
    .unwrap();

    let (ok, report) = verify(&pg, &vfile, None);
    let t = transit.enclave_stream.as_str();
    let i = impostor.enclave_stream.as_str();
    let acts: &[(&str, &str, &str)] = &[
        ("transit: delete seq 2", t, "seq 2 missing"),
        (
            "transit: reorder seq 4 after 5",
            t,
            "seq 5 reordered in transit (stored before seq 4)",
        ),
        ("transit: edit seq 6", t, "seq 6 quarantined: bad signature"),
        (
            "transit: forge seq 7",
            t,
            "seq 7 quarantined: bad signature",
        ),
        (
            "transit: replay seq 8",
            t,
            "seq 8 quarantined: seq 8 replayed on one connection",
        ),
        ("rest: delete seq 3", s, "seq 3 missing"),
        (
            "rest: edit seq 5's body column",
            s,
            "seq 5 edited (columns body disagree",
        ),
        ("rest: duplicate seq 2", s, "seq 2 duplicated (2 rows)"),
        (
            "rest: edit seq 6's line",
            s,
            "seq 6 forged or edited (signature does not verify",
        ),
        (
            "rest: swap seq 7 and 8",
            s,
            "seq 7 edited (columns seq, prev",
        ),
        (
            "rest: forge seq 9",
            s,
            "seq 9 forged or edited (signature does not verify",
        ),
        (
            "rest: append a forged seq 11",
            s,
            "seq 11 forged or edited (signature does not verify",
        ),
        (
            "a whole impostor instance",
            i,
            "seq 0 attestation not proven",
        ),
    ];
    let missed: Vec<&str> = acts
        .iter()
        .filter(|(_, stream, want)| !block(&report, stream).contains(&format!("FINDING {want}")))
        .map(|(name, _, _)| *name)
        .collect();
    let detected = acts.len() - missed.len();
    let figure = format!(
        "detected and named {detected}/{} (in transit 5, at rest 7, impostor 1); verify exit {}",
        acts.len(),
        if ok { 0 } else { 1 }
    );
    if missed.is_empty() && !ok {
        Verdict::held(figure)
    } else {
        if std::env::var_os("HOSTILE_VERBOSE").is_some() {
            eprintln!("{report}");
        }
        Verdict::broken(format!("{figure}; missed: {}", missed.join(", ")))
    }
}
