//! The audit trail's host side as the tests and the hostile suite run it:
//! the real collector (`enclavectl audit serve`) on a real PostgreSQL
//! ([`crate::postgres::Postgres`]), emitters made of `audit-record`'s
//! `Chain` with real ECDSA keys (P-256 for an enclave, P-384 for the
//! verifier, as in production), a tampering forwarder between an emitter
//! and the collector, and `enclavectl audit verify`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use audit_record::{
    Alg, AttestationBody, Body, CallBody, CallOutcome, Chain, DecisionBody, KeyPairSigner,
    LifecycleBody, Record, SecretBody, Sign, Verdict,
};
use ring::signature::{
    EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
};

use crate::postgres::Postgres;
use crate::stack::{enclavectl, Proc};

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256, lowercase hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Every key this process made, by stream id: an emitter's hello names its
/// key, and [`ship`] finds it from the stream of the first line it sends.
static KEYS: std::sync::Mutex<Vec<(String, Vec<u8>)>> = std::sync::Mutex::new(Vec::new());

fn remember(key: &Key) {
    let spki = key.spki();
    KEYS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((audit_record::stream_id(&spki), spki));
}

/// The hello line (with its newline) of the emitter whose records `line`
/// is one of.
pub fn hello_for(line: &str) -> String {
    let stream = Record::parse(line).unwrap().stream;
    let keys = KEYS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let spki = &keys.iter().find(|(s, _)| *s == stream).unwrap().1;
    audit_record::ship::hello_line(spki)
}

/// A signing key with its PKCS#8 bytes (written where a command needs it).
pub struct Key {
    pub pair: EcdsaKeyPair,
    pub alg: Alg,
    pub pkcs8: Vec<u8>,
}

impl Key {
    /// A fresh P-256 key (an enclave's).
    pub fn p256() -> Key {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .unwrap()
            .as_ref()
            .to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &rng).unwrap();
        let k = Key {
            pair,
            alg: Alg::ES256,
            pkcs8,
        };
        remember(&k);
        k
    }

    /// A fresh P-384 key (the verifier's token key, or a retention key).
    pub fn p384() -> Key {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            .unwrap()
            .as_ref()
            .to_vec();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &pkcs8, &rng).unwrap();
        let k = Key {
            pair,
            alg: Alg::ES384,
            pkcs8,
        };
        remember(&k);
        k
    }

    pub fn signer(&self) -> KeyPairSigner<'_> {
        KeyPairSigner {
            pair: &self.pair,
            alg: self.alg,
        }
    }

    pub fn spki(&self) -> Vec<u8> {
        self.alg.spki_of_point(self.pair.public_key().as_ref())
    }

    /// Writes the PKCS#8 key to `path` and returns it.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, &self.pkcs8).unwrap();
        path.to_owned()
    }
}

/// Unix ms now.
pub fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// One enclave instance and the verifier's decision that admitted it: the
/// verifier's record (seq `decision_seq` of its chain) and the enclave's
/// records: attestation at seq 0, a secret release, `calls` calls, one
/// lifecycle change. Times start at `t0` and grow 1 s per record.
pub struct Run {
    pub verifier_lines: Vec<String>,
    pub enclave_lines: Vec<String>,
    pub enclave_stream: String,
}

/// Makes a [`Run`]: appends the decision to `verifier` and a fresh chain for
/// `enclave`.
pub fn make_run(
    verifier: &mut Chain,
    verifier_key: &Key,
    enclave: &Key,
    calls: usize,
    t0: u64,
) -> Run {
    let spki = enclave.spki();
    let evidence = sha256(format!("evidence of {}", hex(&spki)).as_bytes());
    let decision_id = format!("req-{}", &sha256(&spki)[..16]);
    let measurement = "ab".repeat(48);
    let decision = verifier
        .append(
            Body::Decision(DecisionBody {
                request_id: decision_id.clone(),
                verdict: Verdict::Accepted,
                tee: "sev-snp".into(),
                measurement: Some(measurement.clone()),
                enclave_spki_sha256: Some(sha256(&spki)),
                evidence_sha256: evidence.clone(),
                policy_id: "test-policy".into(),
                policy_version: 1,
                denied_check: None,
            }),
            t0,
            &verifier_key.signer(),
        )
        .unwrap();
    let mut chain = Chain::new(&spki);
    let signer = enclave.signer();
    let mut t = t0;
    let mut lines = Vec::new();
    let mut push = |body: Body, chain: &mut Chain, t: &mut u64| {
        *t += 1000;
        lines.push(chain.append(body, *t, &signer).unwrap().to_line());
    };
    push(
        Body::Attestation(AttestationBody {
            evidence_sha256: evidence,
            tee: "sev-snp".into(),
            measurement,
            tcb: "bootloader=3 tee=0 snp=22 microcode=213".into(),
            decision_id,
            enclave_spki_sha256: sha256(&spki),
        }),
        &mut chain,
        &mut t,
    );
    push(
        Body::SecretRelease(SecretBody {
            path: "kv/data/app/pepper".into(),
            version: 1,
        }),
        &mut chain,
        &mut t,
    );
    for i in 0..calls {
        push(
            Body::Call(CallBody {
                call_ref: Some(sha256(format!("call {i}").as_bytes())),
                start_ms: t + 1,
                duration_ms: 20,
                outcome: CallOutcome::Ok,
            }),
            &mut chain,
            &mut t,
        );
    }
    push(
        Body::Lifecycle(LifecycleBody {
            from: "serving".into(),
            to: "stopping".into(),
        }),
        &mut chain,
        &mut t,
    );
    Run {
        verifier_lines: vec![decision.to_line()],
        enclave_lines: lines,
        enclave_stream: chain.stream().to_owned(),
    }
}

/// A running collector.
pub struct Collector {
    pub proc: Proc,
    pub socket: PathBuf,
}

impl Collector {
    /// `enclavectl audit serve` on `pg`, listening on `socket`, trusting
    /// `verifier_key` (a PKCS#8 file) for decision records.
    pub fn start(pg: &Postgres, socket: &Path, verifier_key: &Path) -> Collector {
        let _ = std::fs::remove_file(socket);
        let mut child = Command::new(enclavectl())
            .args(["--log-level", "warn", "audit", "serve", "--db"])
            .arg(pg.socket_dir())
            .arg("--listen")
            .arg(format!("unix://{}", socket.display()))
            .arg("--verifier-key")
            .arg(verifier_key)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("audit collector listening on unix://"),
            "collector: {line:?}"
        );
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Collector {
            proc: Proc::from_child(child),
            socket: socket.to_owned(),
        }
    }
}

/// Sends the hello of the first line's emitter and then `lines` on one
/// connection to `socket` (the shipping protocol, `audit_record::ship`) and
/// reads acks until `last` is acknowledged or `budget` runs out; returns
/// every acked seq in order (the hello's answer included, `ack none` not).
pub fn ship(socket: &Path, lines: &[String], last: Option<u64>, budget: Duration) -> Vec<u64> {
    let mut s = UnixStream::connect(socket).unwrap();
    let mut text = hello_for(&lines[0]);
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    s.write_all(text.as_bytes()).unwrap();
    read_acks(s, last, budget)
}

/// Reads `ack N` lines until `last` (or EOF, or `budget`).
pub fn read_acks(s: UnixStream, last: Option<u64>, budget: Duration) -> Vec<u64> {
    let deadline = Instant::now() + budget;
    let mut r = BufReader::new(s);
    let mut acks = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || last.is_some_and(|l| acks.last() == Some(&l)) {
            return acks;
        }
        r.get_ref().set_read_timeout(Some(left)).unwrap();
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return acks,
            Ok(_) => {
                if let Some(n) = audit_record::ship::parse_ack(line.trim_end())
                    .unwrap_or_else(|e| panic!("{e}: {line:?}"))
                {
                    acks.push(n);
                }
            }
        }
    }
}

/// `enclavectl audit verify`: (success, stdout).
pub fn verify(pg: &Postgres, verifier_key: &Path, retention_key: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new(enclavectl());
    cmd.args(["--log-level", "warn", "audit", "verify", "--db"])
        .arg(pg.socket_dir())
        .arg("--verifier-key")
        .arg(verifier_key);
    if let Some(k) = retention_key {
        cmd.arg("--retention-key").arg(k);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "audit verify: {:?} {text} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A tampering forwarder (the untrusted host between an emitter and the
/// collector): relays each connection, passing every line from the emitter
/// through `tamper` (which returns the lines to send instead, possibly none
/// or several), and the collector's acks back unchanged.
pub struct Forwarder {
    pub socket: PathBuf,
}

impl Forwarder {
    pub fn start<F>(socket: &Path, to: &Path, tamper: F) -> Forwarder
    where
        F: FnMut(String) -> Vec<String> + Send + 'static,
    {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).unwrap();
        let to = to.to_owned();
        let tamper = std::sync::Arc::new(std::sync::Mutex::new(tamper));
        std::thread::spawn(move || {
            for from in listener.incoming() {
                let Ok(from) = from else { return };
                let Ok(up) = UnixStream::connect(&to) else {
                    continue;
                };
                let (mut up_r, mut from_w) = (up.try_clone().unwrap(), from.try_clone().unwrap());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = up_r.read(&mut buf) {
                        if n == 0 || from_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = from_w.shutdown(std::net::Shutdown::Both);
                });
                let tamper = std::sync::Arc::clone(&tamper);
                std::thread::spawn(move || {
                    let mut up = up;
                    for line in BufReader::new(from).lines() {
                        let Ok(line) = line else { break };
                        // The hello passes; records go through `tamper`.
                        let out = if line.starts_with("hello ") {
                            vec![line]
                        } else {
                            (tamper.lock().unwrap())(line)
                        };
                        for l in out {
                            if up.write_all(format!("{l}\n").as_bytes()).is_err() {
                                return;
                            }
                        }
                    }
                    let _ = up.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Forwarder {
            socket: socket.to_owned(),
        }
    }
}

/// `line` (a record) with its body's `field` set to `value`, the signature
/// kept: what an editing host can produce.
pub fn edit_field(line: &str, field: &str, value: serde_json::Value) -> String {
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["body"][field] = value;
    // Keep the format's field order so the edit is a valid, parseable line
    // whose signature no longer matches.
    let rec = Record::parse(line).unwrap();
    let mut edited = rec.clone();
    if let Body::Call(c) = &mut edited.body {
        if field == "duration_ms" {
            c.duration_ms = v["body"][field].as_u64().unwrap();
        }
    }
    let out = edited.to_line();
    assert_ne!(out, line, "edit_field supports call.duration_ms");
    out
}

/// A record signed by `key` but claiming `stream` and `seq` (a forgery by a
/// host that does not hold the stream's key).
pub fn forge(line: &str, key: &Key) -> String {
    let mut rec = Record::parse(line).unwrap();
    rec.sig = key.signer().sign(&rec.canonical_bytes()).unwrap();
    rec.to_line()
}
