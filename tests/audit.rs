//! The audit trail end to end in process mode (issue 19): the guest
//! attests (sim-psp, the verifier), is provisioned by OpenBao, serves
//! calls, and ships its signed, chained records to a collector.
//!
//! TEST HARNESS: the collector here is the test support's
//! (`enclave_tests::audit::Collector`): a TCP listener speaking
//! `audit_record::ship` that stores each line in a Vec and acknowledges
//! only what it has stored. The real collector
//! (`enclavectl audit serve`, PostgreSQL) is tested on its own; these
//! tests are about what the guest emits and when it stops serving.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use audit_record::{Body, CallOutcome, Chain, Kind};
use enclave_tests::audit::Collector;
use enclave_tests::https::{self, Client};
use enclave_tests::process::{boot, Guest};
use enclave_tests::stack::{
    guest_config, platform_client, service_config, sim_policy, OpenBao, Pki, SimPsp, Verifier,
};
use enclave_tests::transcription::TranscriptionStandIn;
use enclave_tests::TempDir;

const TRANSCRIPTION_KEY: &str = "canary-transcription-key-77a1c0";
const RETELL_KEY: &str = "canary-retell-key-5d2e81";
const PEPPER: &str = "7a6b5c4d3e2f10017a6b5c4d3e2f10017a6b5c4d3e2f10017a6b5c4d3e2f1001";
const CANARY_PHONE: &str = "+39 333 987 6543";
const CANARY_SPELLINGS: [&str; 4] = [CANARY_PHONE, "+393339876543", "3339876543", "333 987 6543"];
const CANARY_PHRASE: &str = "ornitorinco viola";
const CALL_ID: &str = "call-canary-0001";
const SHIPMENT_ID: &str = "SHP-canary-42";

fn transcript() -> String {
    format!("Mi richiami al {CANARY_PHONE}, la parola è {CANARY_PHRASE}.")
}

fn metadata() -> String {
    serde_json::json!({
        "call_id": CALL_ID, "shipment_id": SHIPMENT_ID, "agent_type": "sara",
        "caller_phone": CANARY_PHONE, "language": "it",
    })
    .to_string()
}

struct Stack {
    pki: Pki,
    psp: SimPsp,
    verifier: Verifier,
    bao: OpenBao,
    standin: TranscriptionStandIn,
    _dir: TempDir,
}

fn stack() -> Stack {
    stack_with(&[])
}

/// [`stack`] with more verifier arguments (`--audit`).
fn stack_with(verifier_extra: &[&str]) -> Stack {
    let dir = TempDir::new("audit");
    let pki = Pki::new();
    let m = "a7".repeat(48);
    let psp = SimPsp::start(&dir.path().join("psp.sock"), &["--measurement", &m]);
    let verifier = Verifier::start(
        &pki,
        &sim_policy(&psp.ark_sha256, &[&psp.measurement]),
        dir.path(),
        verifier_extra,
    );
    let bao = OpenBao::start(&pki);
    bao.setup(
        &verifier,
        &pki,
        &[&psp.measurement],
        "sim",
        &[
            ("ENCLAVE_SEED_TRANSCRIPTION_API_KEY", TRANSCRIPTION_KEY),
            ("ENCLAVE_SEED_RETELL_API_KEY", RETELL_KEY),
            ("ENCLAVE_SEED_PII_PEPPER", PEPPER),
        ],
    );
    let standin = TranscriptionStandIn::start(
        &pki.path("transcribe.pem"),
        &pki.path("transcribe-key.pem"),
        TRANSCRIPTION_KEY,
        &transcript(),
    );
    Stack {
        pki,
        psp,
        verifier,
        bao,
        standin,
        _dir: dir,
    }
}

/// A guest with the call service and `[audit]` lines `audit`.
fn guest(s: &Stack, audit: &str) -> (Guest, Client) {
    let gdir = TempDir::new("guest");
    let mut config = guest_config(
        gdir.path(),
        &s.psp.socket,
        Some((&s.verifier, &s.pki)),
        Some(&s.bao),
    );
    config.push_str(&service_config(
        "tcp://127.0.0.1:0",
        &format!("tcp://127.0.0.1:{}", s.standin.port),
        &s.pki,
        "",
    ));
    config.push_str(&format!("\n[audit]\n{audit}\n"));
    let (g, report) = boot(gdir, &config).ready();
    let addr = report["call_service"].as_str().unwrap().to_owned();
    let client = platform_client(&s.pki, &addr, &s.bao.serving_ca_pem());
    (g, client)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn health(client: &Client) -> (u16, serde_json::Value) {
    let r = client.request("GET", "/health/enclave", &[], b"");
    (r.status, r.json())
}

#[test]
fn a_run_with_calls_ships_a_chain_that_verifies_and_holds_no_personal_data() {
    let s = stack();
    let collector = Collector::start(true);
    let (g, client) = guest(
        &s,
        &format!(
            "collector = \"tcp://127.0.0.1:{}\"\nrequired = \"on\"",
            collector.port
        ),
    );
    for _ in 0..2 {
        let r = client.call(&metadata(), &https::wav("pcm16", 16000, 1.0));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    // Refused before any call id was read.
    let r = client.request("POST", "/v1/calls", &[("content-type", "text/plain")], b"x");
    assert_eq!(r.status, 415);
    let records = collector.wait_for(Kind::Call, 3);

    // Signed by the key of the hello, chained from seq 0 without a gap.
    let spki = collector.spki.lock().unwrap().clone().unwrap();
    let mut chain = Chain::new(&spki);
    for (_, r) in &records {
        r.verify_sig(&spki).unwrap();
        chain.follow(r).unwrap();
    }
    let bodies: Vec<&Body> = records.iter().map(|(_, r)| &r.body).collect();
    let lifecycle: Vec<(String, String)> = bodies
        .iter()
        .filter_map(|b| match b {
            Body::Lifecycle(l) => Some((l.from.clone(), l.to.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        lifecycle[..2],
        [
            ("booting".to_owned(), "attesting".to_owned()),
            ("attesting".to_owned(), "ready".to_owned())
        ]
    );
    assert!(
        matches!(bodies[0], Body::Lifecycle(_)),
        "the first record is the lifecycle leaving booting"
    );
    // The attestation: the attested key is the stream's key.
    let att = bodies
        .iter()
        .find_map(|b| match b {
            Body::Attestation(a) => Some(a),
            _ => None,
        })
        .unwrap();
    let spki_sha = ring::digest::digest(&ring::digest::SHA256, &spki);
    assert_eq!(att.enclave_spki_sha256, hex(spki_sha.as_ref()));
    assert_eq!(att.tee, "sim");
    assert_eq!(att.measurement, s.psp.measurement);
    assert_eq!(
        att.decision_id.len(),
        32,
        "the verifier's request id: {att:?}"
    );
    // Each configured secret released, by path and version.
    let mut released: Vec<String> = bodies
        .iter()
        .filter_map(|b| match b {
            Body::SecretRelease(r) => {
                assert!(r.version >= 1, "{r:?}");
                Some(r.path.clone())
            }
            _ => None,
        })
        .collect();
    released.sort();
    assert!(
        released.contains(&"enclave-agents/pii/pepper".to_owned()),
        "{released:?}"
    );
    // Calls: the keyed reference (HMAC under the Vault pepper), never the id.
    let calls: Vec<_> = bodies
        .iter()
        .filter_map(|b| match b {
            Body::Call(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    let want_ref = hex(ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, PEPPER.as_bytes()),
        format!("enclave-audit-call-ref-v1\0{CALL_ID}").as_bytes(),
    )
    .as_ref());
    assert_eq!(calls.len(), 3);
    for c in &calls[..2] {
        assert_eq!(c.outcome, CallOutcome::Ok);
        assert_eq!(c.call_ref.as_deref(), Some(want_ref.as_str()));
        assert!(
            c.duration_ms < 30_000 && c.start_ms > 1_700_000_000_000,
            "{c:?}"
        );
    }
    assert_eq!(calls[2].outcome, CallOutcome::Rejected);
    assert_eq!(calls[2].call_ref, None);
    // No canary of any call field, nor any secret, in any shipped line.
    for (line, _) in &records {
        for canary in CANARY_SPELLINGS.into_iter().chain([
            CANARY_PHRASE,
            CALL_ID,
            SHIPMENT_ID,
            "sara",
            TRANSCRIPTION_KEY,
            RETELL_KEY,
            PEPPER,
        ]) {
            assert!(!line.contains(canary), "{canary:?} in {line}");
        }
    }
    let (status, h) = health(&client);
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["audit"]["dropped"], 0, "{h}");
    assert_eq!(h["audit"]["serving_calls"], true, "{h}");
    assert_eq!(h["audit"]["collector_connected"], true, "{h}");
    drop(g);
}

#[test]
fn a_required_trail_whose_collector_stops_acknowledging_stops_calls_until_it_resumes() {
    let s = stack();
    let collector = Collector::start(true);
    let (_g, client) = guest(
        &s,
        &format!(
            "collector = \"tcp://127.0.0.1:{}\"\nrequired = \"on\"\ndeadline_ms = 1000\ntimeout_ms = 1000",
            collector.port
        ),
    );
    let call = || client.call(&metadata(), &https::wav("pcm16", 16000, 0.5));
    assert_eq!(call().status, 200);
    collector.wait_for(Kind::Call, 1);
    // Everything so far acknowledged before the collector falls silent.
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(&client).1["audit"]["queue_depth"] != 0 {
        assert!(Instant::now() < deadline, "{}", health(&client).1);
        std::thread::sleep(Duration::from_millis(20));
    }
    collector.acking.store(false, Ordering::SeqCst);
    // Served: nothing waited yet. Its record is stored, never acknowledged.
    assert_eq!(call().status, 200);
    collector.wait_for(Kind::Call, 2);
    std::thread::sleep(Duration::from_millis(1300));
    let r = call();
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    let e = r.json();
    assert_eq!(e["error"]["code"], "enclave.audit_unavailable", "{e}");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("has not acknowledged record") && msg.contains("audit.deadline_ms = 1000"),
        "{msg}"
    );
    let (status, h) = health(&client);
    assert_eq!(status, 503, "{h}");
    assert!(
        h["reason"]
            .as_str()
            .unwrap()
            .contains("has not acknowledged record"),
        "{h}"
    );
    assert_eq!(h["audit"]["serving_calls"], false, "{h}");
    // The collector acknowledges again: the backlog drains, calls resume.
    collector.acking.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(20);
    while health(&client).0 != 200 {
        assert!(Instant::now() < deadline, "{}", health(&client).1);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(call().status, 200);
    // Nothing lost: the refused call is recorded too, the chain is whole.
    let records = collector.wait_for(Kind::Call, 4);
    let spki = collector.spki.lock().unwrap().clone().unwrap();
    let mut chain = Chain::new(&spki);
    for (_, r) in &records {
        chain.follow(r).unwrap();
    }
    let outcomes: Vec<CallOutcome> = records
        .iter()
        .filter_map(|(_, r)| match &r.body {
            Body::Call(c) => Some(c.outcome),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            CallOutcome::Ok,
            CallOutcome::Ok,
            CallOutcome::Unavailable,
            CallOutcome::Ok
        ]
    );
}

#[test]
fn a_trail_not_required_keeps_serving_and_counts_what_it_drops() {
    let s = stack();
    // A collector that takes the lines and never acknowledges anything.
    let collector = Collector::start(false);
    let (_g, client) = guest(
        &s,
        &format!(
            "collector = \"tcp://127.0.0.1:{}\"\nqueue = 16",
            collector.port
        ),
    );
    for _ in 0..12 {
        let r = client.call(&metadata(), &https::wav("pcm16", 16000, 0.2));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let (status, h) = health(&client);
    assert_eq!(status, 200, "{h}");
    let a = &h["audit"];
    let made = a["next_seq"].as_u64().unwrap();
    assert!(made > 16, "{h}");
    assert_eq!(a["queue_depth"], 16, "{h}");
    assert_eq!(a["dropped"].as_u64(), Some(made - 16), "{h}");
    assert_eq!(a["serving_calls"], true, "{h}");
    let metrics = String::from_utf8(client.request("GET", "/metrics", &[], b"").body).unwrap();
    assert!(
        metrics.contains(&format!("\nenclave_audit_dropped_total {}\n", made - 16)),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nenclave_audit_queue_depth 16\n"),
        "{metrics}"
    );
}

// ---- With the real collector (`enclavectl audit serve`, PostgreSQL) ----

/// The stack, its verifier shipping decisions to the collector at
/// `dir/collector.sock` (it retries until the collector is up), and the
/// collector there on a throwaway PostgreSQL, trusting that verifier's key.
fn real_stack(
    dir: &TempDir,
) -> (
    Stack,
    enclave_tests::postgres::Postgres,
    enclave_tests::audit_store::Collector,
) {
    let sock = dir.path().join("collector.sock");
    let s = stack_with(&["--audit", &format!("unix://{}", sock.display())]);
    let pg = enclave_tests::postgres::Postgres::start(false);
    let collector =
        enclave_tests::audit_store::Collector::start(&pg, &sock, &s.pki.path("token-key.pk8"));
    (s, pg, collector)
}

fn stored(pg: &enclave_tests::postgres::Postgres, kind: &str) -> i64 {
    pg.client()
        .query_one(
            "SELECT count(*) FROM audit_records WHERE kind = $1",
            &[&kind],
        )
        .unwrap()
        .get(0)
}

fn wait_stored(pg: &enclave_tests::postgres::Postgres, kind: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored(pg, kind) < n {
        assert!(Instant::now() < deadline, "{n} {kind} records not stored");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Everything the database holds, as text: every row of every table.
fn dump(pg: &enclave_tests::postgres::Postgres) -> String {
    let mut db = pg.client();
    let mut out = String::new();
    for t in [
        "audit_records",
        "audit_quarantine",
        "audit_streams",
        "schema_migrations",
    ] {
        for r in db
            .query(&format!("SELECT row_to_json(t)::text FROM {t} t"), &[])
            .unwrap()
        {
            out.push_str(r.get::<_, &str>(0));
            out.push('\n');
        }
    }
    out
}

/// The guest in process mode with calls, its records stored by the real
/// collector in PostgreSQL, the verifier's decisions beside them: `audit
/// verify` (against the verifier's token key) accepts the trail and names
/// the instance's evidence, its proving decision and its calls; the
/// collector is killed and restarted while the guest serves, and nothing
/// is lost; no canary of any call field, nor any secret, is anywhere in
/// the database, in any spelling.
#[test]
fn the_real_collector_stores_a_guest_trail_that_verifies_and_holds_no_personal_data() {
    let dir = TempDir::new("audit-real");
    let (s, pg, mut collector) = real_stack(&dir);
    let sock = collector.socket.clone();
    let (g, client) = guest(
        &s,
        &format!(
            "collector = \"unix://{}\"\nrequired = \"on\"",
            sock.display()
        ),
    );
    let r = client.call(&metadata(), &https::wav("pcm16", 16000, 1.0));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    wait_stored(&pg, "call", 1);
    // The collector dies; a call made meanwhile waits in the guest's queue
    // and is stored once a new collector is up.
    collector.proc.stop();
    let r = client.call(&metadata(), &https::wav("pcm16", 16000, 1.0));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = client.request("POST", "/v1/calls", &[("content-type", "text/plain")], b"x");
    assert_eq!(r.status, 415);
    collector =
        enclave_tests::audit_store::Collector::start(&pg, &sock, &s.pki.path("token-key.pk8"));
    wait_stored(&pg, "call", 3);
    wait_stored(&pg, "decision", 1);

    let (ok, report) = enclave_tests::audit_store::verify(&pg, &s.pki.path("token-key.pk8"), None);
    assert!(ok, "{report}");
    assert!(
        report.contains("(proven by verifier decision seq 0)"),
        "{report}"
    );
    assert!(report.contains("calls: 3 (first "), "{report}");
    assert!(report.contains(" tee sim "), "{report}");
    assert!(report.contains(&s.psp.measurement), "{report}");

    let text = dump(&pg);
    assert!(
        text.contains("\"kind\":\"call\""),
        "the dump holds the records"
    );
    let pepper_ref = hex(ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, PEPPER.as_bytes()),
        format!("enclave-audit-call-ref-v1\0{CALL_ID}").as_bytes(),
    )
    .as_ref());
    assert!(
        text.contains(&pepper_ref),
        "the keyed call reference is stored"
    );
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    for canary in CANARY_SPELLINGS.into_iter().chain([
        CANARY_PHRASE,
        CALL_ID,
        SHIPMENT_ID,
        "sara",
        TRANSCRIPTION_KEY,
        RETELL_KEY,
        PEPPER,
    ]) {
        for form in [canary.to_owned(), hex(canary.as_bytes()), b64(canary)] {
            assert!(!text.contains(&form), "{canary:?} ({form}) in the database");
        }
    }
    drop((g, collector));
}

/// A host between the guest and the real collector drops one of the
/// guest's call records in transit: `audit verify` fails and names the
/// missing seq.
#[test]
fn a_record_dropped_between_the_guest_and_the_collector_is_named() {
    let dir = TempDir::new("audit-drop");
    let (s, pg, collector) = real_stack(&dir);
    let fwd = dir.path().join("fwd.sock");
    let dropped: std::sync::Arc<std::sync::Mutex<Option<u64>>> = std::sync::Arc::default();
    let d = std::sync::Arc::clone(&dropped);
    let _fwd = enclave_tests::audit_store::Forwarder::start(&fwd, &collector.socket, move |line| {
        let rec = audit_record::Record::parse(&line).unwrap();
        // The first call record, each time the guest sends it again.
        let mut d = d.lock().unwrap();
        if d.is_none() && rec.kind() == Kind::Call {
            *d = Some(rec.seq);
        }
        if *d == Some(rec.seq) {
            return vec![];
        }
        vec![line]
    });
    let (_g, client) = guest(&s, &format!("collector = \"unix://{}\"", fwd.display()));
    for _ in 0..2 {
        let r = client.call(&metadata(), &https::wav("pcm16", 16000, 0.5));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    wait_stored(&pg, "call", 1);
    wait_stored(&pg, "decision", 1);
    // The guest's later records (the second call at least) are stored.
    std::thread::sleep(Duration::from_millis(500));
    let seq = dropped.lock().unwrap().unwrap();
    let (ok, report) = enclave_tests::audit_store::verify(&pg, &s.pki.path("token-key.pk8"), None);
    assert!(!ok, "{report}");
    assert!(
        report.contains(&format!("FINDING seq {seq} missing")),
        "seq {seq}: {report}"
    );
}
