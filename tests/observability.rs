//! The host tools explain themselves (issue 18 item 3): every `enclavectl`
//! subcommand logs JSON lines on stderr at the level `--log-level` or
//! `RUST_LOG` asks for, and the verifier writes one decision record per
//! appraisal, accepted or denied, matched to its answer by `x-request-id`,
//! with no nonce, token or key in it.
//!
//! Real processes on loopback: `enclavectl sim-psp`, `verifier`, `proxy`;
//! the evidence is the simulated PSP's, appraised by the real appraisal.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use enclave_tests::stack::{enclavectl, sim_policy, sim_state_dir, Pki, SimPsp, Verifier};
use enclave_tests::TempDir;
use serde_json::Value;
use wire::verifier::{AttestRequest, Challenge, EXPORTER_LABEL};

/// A launch measurement of our own (96 hex digits).
const MEASUREMENT: &str = "6f627365727661626c652d6d6561737572656d656e74000000000000000000000000000000000000000000000000001e";

/// The JSON log lines of `output`; every stderr line of these tools must be
/// one (stdout lines are the tools' own protocol: `listening …`).
fn json_lines(output: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(output)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Waits until `pred` holds on the lines of `read()`, up to 20 s.
fn wait_for(read: impl Fn() -> Vec<u8>, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = json_lines(&read());
        if pred(&lines) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "log lines never matched: {}",
            String::from_utf8_lossy(&read())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has(lines: &[Value], level: &str, msg: &str) -> bool {
    lines.iter().any(|l| l["level"] == level && l["msg"] == msg)
}

fn levels(lines: &[Value]) -> Vec<String> {
    let mut l: Vec<String> = lines
        .iter()
        .map(|l| l["level"].as_str().unwrap().to_owned())
        .collect();
    l.sort();
    l.dedup();
    l
}

type Tls = BufReader<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>>;

fn connect(pki: &Pki, port: u16) -> Tls {
    let config = enclave_tests::attest_client::client_config(&pki.ca_pem());
    let name = rustls::pki_types::ServerName::try_from("verifier.enclave.local").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    BufReader::new(rustls::StreamOwned::new(
        conn,
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap(),
    ))
}

fn post(tls: &mut Tls, path: &str, body: &[u8]) -> bounded_http::Response {
    bounded_http::write_request(
        tls.get_mut(),
        "POST",
        "verifier.enclave.local",
        path,
        &[],
        body,
    )
    .unwrap();
    bounded_http::read_response(tls, bounded_http::Limits::default()).unwrap()
}

/// A challenge on `tls`, then sim-psp evidence bound to `bound_spki`; the
/// request carries `sent_spki` (another key: a REPORT_DATA denial).
fn attest_request(tls: &mut Tls, psp: &Path, bound_spki: &[u8], sent_spki: &[u8]) -> AttestRequest {
    let r = post(tls, "/v1/challenge", b"{}");
    assert_eq!(r.status, 200);
    let c: Challenge = serde_json::from_slice(&r.body).unwrap();
    let nonce: [u8; 32] = c.nonce[..].try_into().unwrap();
    let mut exporter = [0u8; 32];
    tls.get_ref()
        .conn
        .export_keying_material(&mut exporter, EXPORTER_LABEL, None)
        .unwrap();
    let rd = tee_formats::binding::report_data(&nonce, bound_spki, &exporter);
    let addr: transport::Addr = format!("unix://{}", psp.display()).parse().unwrap();
    let mut source = evidence::sim::SimPsp::new(addr, Duration::from_secs(10));
    let bundle = evidence::EvidenceSource::collect(&mut source, &rd).unwrap();
    AttestRequest {
        nonce: nonce.to_vec().into(),
        enclave_key_spki: sent_spki.to_vec().into(),
        bundle,
        client_certificate: false,
    }
}

/// The decision record with `id`, waiting for it.
fn record(verifier: &Verifier, id: &str) -> Value {
    let lines = wait_for(
        || verifier.proc.output(),
        |l| l.iter().any(|r| r["record"]["request_id"] == id),
    );
    let line = lines
        .into_iter()
        .find(|r| r["record"]["request_id"] == id)
        .unwrap();
    assert_eq!(line["target"], "decision");
    assert_eq!(line["level"], "info");
    line["record"].clone()
}

fn result_of(record: &Value, check: &str) -> String {
    record["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("{check} not in {record}"))["result"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// One verifier, three appraisals: accepted; the same request again
/// (denied at `nonce.replayed`, before any appraisal); evidence bound to
/// another key (denied at `report_data`, after every other check passed).
/// Each answer's `x-request-id` names its record; the records hold the
/// policy's id and version, the platform, each check's result, and none of
/// the nonce, the token or the enclave key in any encoding.
#[test]
fn each_appraisal_leaves_one_decision_record_and_no_secret() {
    let dir = TempDir::new("obs-decision");
    let pki = Pki::new();
    let psp = SimPsp::start(
        &dir.path().join("psp.sock"),
        &["--measurement", MEASUREMENT],
    );
    let policy = format!(
        "id = \"fleet-main\"\nversion = 7\n{}",
        sim_policy(&psp.ark_sha256, &[&psp.measurement])
    );
    let verifier = Verifier::start(&pki, &policy, dir.path(), &[]);

    // Accepted.
    let mut tls = connect(&pki, verifier.port);
    let key = enclave_tests::attest_client::enclave_spki();
    let req = attest_request(&mut tls, &psp.socket, &key, &key);
    let body = serde_json::to_vec(&req).unwrap();
    let ok = post(&mut tls, "/v1/attest", &body);
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    let id_ok = ok.header("x-request-id").unwrap().to_owned();
    assert_eq!(id_ok.len(), 32);
    let token = serde_json::from_slice::<Value>(&ok.body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = record(&verifier, &id_ok);
    assert_eq!(r["decision"], "accepted");
    assert_eq!(r["tee"], "sim");
    assert_eq!(r["measurement"], MEASUREMENT);
    assert_eq!(r["chip_id"].as_str().unwrap().len(), 128);
    assert_eq!(r["policy"]["id"], "fleet-main");
    assert_eq!(r["policy"]["version"], 7);
    assert_eq!(r["policy"]["digest"].as_str().unwrap().len(), 64);
    assert_eq!(r["denied_check"], Value::Null);
    assert_eq!(r["tcb"]["snp"], 24, "sim-psp's default REPORTED_TCB");
    for check in [
        "snp.report.format",
        "snp.signature",
        "snp.measurement",
        "report_data",
    ] {
        assert_eq!(result_of(&r, check), "pass", "{check}");
    }
    assert!(r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["result"] == "pass" || c["result"] == "skip"));
    assert_eq!(r["collateral"]["source"], "bundle");
    assert!(r["duration_ms"].is_u64());

    // The same request again: the nonce is spent.
    let replay = post(&mut tls, "/v1/attest", &body);
    assert_eq!(replay.status, 403);
    let id_replay = replay.header("x-request-id").unwrap().to_owned();
    assert_ne!(id_replay, id_ok);
    let r = record(&verifier, &id_replay);
    assert_eq!(r["decision"], "denied");
    assert_eq!(r["denied_check"], "nonce.replayed");
    assert_eq!(
        r["checks"],
        serde_json::json!([{"check": "nonce.replayed", "result": "fail"}])
    );
    // What the refused evidence states about its platform.
    assert_eq!(r["measurement"], MEASUREMENT);
    // sim-psp's default TCB: bl 4, tee 0, snp 24, ucode 217 (stack.rs sim_policy).
    assert_eq!(r["tcb"]["reported_tcb"], "04000000000018d9");

    // Evidence bound to another key than the one sent.
    let mut tls2 = connect(&pki, verifier.port);
    let other = enclave_tests::attest_client::enclave_spki();
    let req2 = attest_request(&mut tls2, &psp.socket, &key, &other);
    let denied = post(&mut tls2, "/v1/attest", &serde_json::to_vec(&req2).unwrap());
    assert_eq!(denied.status, 403);
    let r = record(&verifier, denied.header("x-request-id").unwrap());
    assert_eq!(r["decision"], "denied");
    assert_eq!(r["denied_check"], "report_data");
    assert_eq!(result_of(&r, "snp.measurement"), "pass");
    assert_eq!(result_of(&r, "report_data"), "fail");
    // The appraisal's own trace: the binding is its last check.
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.last().unwrap()["check"], "report_data");
    assert_eq!(checks.iter().filter(|c| c["result"] == "fail").count(), 1);
    assert_eq!(r["policy"]["id"], "fleet-main");

    // No nonce, token or enclave key, in any encoding.
    let out = String::from_utf8_lossy(&verifier.proc.output()).into_owned();
    assert!(
        out.contains("\"target\":\"decision\""),
        "output not captured"
    );
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let b64url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let token_sig = token.rsplit('.').next().unwrap().to_owned();
    let mut secrets = vec![token.clone(), token_sig];
    for bytes in [&req.nonce[..], &req2.nonce[..], &key[..], &other[..]] {
        secrets.extend([hex(bytes), b64(bytes), b64url(bytes)]);
    }
    for s in secrets {
        assert!(!out.contains(&s), "{s} is in the verifier's log");
    }
}

/// `enclavectl verifier`: info by default (decision records, no debug
/// line); `--log-level debug` adds the denial's detail at debug, under the
/// same request id.
#[test]
fn the_verifier_logs_at_the_level_of_its_flag() {
    let dir = TempDir::new("obs-verifier");
    let pki = Pki::new();
    let psp = SimPsp::start(
        &dir.path().join("psp.sock"),
        &["--measurement", MEASUREMENT],
    );
    let policy = sim_policy(&psp.ark_sha256, &[&psp.measurement]);
    for (flag, debug) in [(None, false), (Some("debug"), true)] {
        let extra: Vec<&str> = flag.map(|l| vec!["--log-level", l]).unwrap_or_default();
        let verifier = Verifier::start(&pki, &policy, dir.path(), &extra);
        let mut tls = connect(&pki, verifier.port);
        let key = enclave_tests::attest_client::enclave_spki();
        let req = attest_request(
            &mut tls,
            &psp.socket,
            &key,
            &enclave_tests::attest_client::enclave_spki(),
        );
        let r = post(&mut tls, "/v1/attest", &serde_json::to_vec(&req).unwrap());
        assert_eq!(r.status, 403);
        let id = r.header("x-request-id").unwrap().to_owned();
        let rec = record(&verifier, &id);
        assert_eq!(rec["denied_check"], "report_data");
        let lines = json_lines(&verifier.proc.output());
        let detail = lines
            .iter()
            .find(|l| l["msg"] == "attestation denied" && l["request_id"] == id.as_str());
        assert_eq!(detail.is_some(), debug, "flag {flag:?}: {lines:?}");
        if let Some(d) = detail {
            assert_eq!(d["level"], "debug");
            assert_eq!(d["check"], "report_data");
            assert_eq!(d["target"], "verifier::service");
        } else {
            assert!(!levels(&lines).contains(&"debug".to_owned()));
        }
    }
}

/// A host tool started by hand, its stderr into a file.
struct Tool {
    child: Child,
    stderr: std::path::PathBuf,
    stdout: Vec<String>,
}

impl Tool {
    fn start(args: &[&str], rust_log: Option<&str>, log: &Path, ready: &str) -> Tool {
        let mut cmd = Command::new(enclavectl());
        cmd.args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap());
        if let Some(l) = rust_log {
            cmd.env("RUST_LOG", l);
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdout = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let done = line == ready;
            stdout.push(line);
            if done {
                break;
            }
        }
        assert_eq!(stdout.last().map(String::as_str), Some(ready), "{stdout:?}");
        // Drain the rest so the tool never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Tool {
            child,
            stderr: log.to_owned(),
            stdout,
        }
    }

    fn log(&self) -> Vec<u8> {
        std::fs::read(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `enclavectl proxy`: `RUST_LOG=info` shows the ingress rule (info) and a
/// refused connection (warn, the guest's socket does not exist);
/// `--log-level warn` wins over `RUST_LOG=info` and drops the info line.
#[test]
fn the_proxy_logs_at_the_level_of_rust_log_unless_the_flag_says_otherwise() {
    let dir = TempDir::new("obs-proxy");
    let uds = dir.path().join("absent.vsock");
    let ingress = format!("127.0.0.1:0={}:8443", uds.display());
    for (flag, want_info) in [(None, true), (Some("warn"), false)] {
        let mut args = vec!["proxy", "--ingress", ingress.as_str()];
        if let Some(l) = flag {
            args.extend(["--log-level", l]);
        }
        let tool = Tool::start(
            &args,
            Some("info"),
            &dir.path().join("proxy.log"),
            "proxy ready",
        );
        let addr = tool
            .stdout
            .iter()
            .find_map(|l| l.strip_prefix("proxy ingress "))
            .and_then(|l| l.split(" -> ").next())
            .unwrap()
            .to_owned();
        let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
        let _ = tcp.write_all(b"hello");
        let lines = wait_for(
            || tool.log(),
            |l| has(l, "warn", "ingress: guest unreachable"),
        );
        let warn = lines
            .iter()
            .find(|l| l["msg"] == "ingress: guest unreachable")
            .unwrap();
        assert_eq!(warn["target"], "proxy");
        assert_eq!(warn["port"], 8443);
        assert!(warn["ts"].as_str().unwrap().ends_with('Z'));
        assert_eq!(has(&lines, "info", "ingress rule"), want_info, "{flag:?}");
        if !want_info {
            assert_eq!(levels(&lines), ["warn"]);
        }
    }
}

/// `enclavectl sim-psp`: a signed report is logged at info and a malformed
/// request at warn by default; `RUST_LOG=warn` keeps only the warning;
/// `RUST_LOG=sim_psp=off` (a target directive) silences both.
#[test]
fn sim_psp_logs_at_the_level_of_rust_log_with_target_directives() {
    let dir = TempDir::new("obs-psp");
    let sock = dir.path().join("psp.sock");
    let listen = format!("unix://{}", sock.display());
    let state = sim_state_dir();
    for (rust_log, want_info, want_warn) in [
        (None, true, true),
        (Some("warn"), false, true),
        (Some("info,sim_psp=off"), false, false),
    ] {
        let _ = std::fs::remove_file(&sock);
        let tool = Tool::start(
            &[
                "sim-psp",
                "--state",
                state.to_str().unwrap(),
                "--measurement",
                MEASUREMENT,
                "--listen",
                &listen,
            ],
            rust_log,
            &dir.path().join("psp.log"),
            "sim-psp ready",
        );
        let addr: transport::Addr = listen.parse().unwrap();
        let mut source = evidence::sim::SimPsp::new(addr, Duration::from_secs(10));
        evidence::EvidenceSource::collect(&mut source, &[7u8; 64]).unwrap();
        let mut raw = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        raw.write_all(b"not a request\n").unwrap();
        let mut answer = String::new();
        BufReader::new(&raw).read_line(&mut answer).unwrap();
        assert!(answer.contains("error"), "{answer}");
        // Both requests were answered: their lines (if any) are written.
        std::thread::sleep(Duration::from_millis(200));
        let lines = json_lines(&tool.log());
        assert_eq!(
            has(&lines, "info", "sim-psp: signed report"),
            want_info,
            "{rust_log:?}: {lines:?}"
        );
        assert_eq!(
            has(&lines, "warn", "sim-psp: request refused"),
            want_warn,
            "{rust_log:?}: {lines:?}"
        );
        if let Some(l) = lines.iter().find(|l| l["msg"] == "sim-psp: signed report") {
            assert_eq!(l["target"], "sim_psp::server");
            assert_eq!(l["report_data_prefix"], "0707070707070707");
        }
    }
}
