//! Interoperability of `callproc::retell` with Retell's own SDK
//! (retell-sdk 6.2.13 from PyPI, `retell/lib/webhook_auth.py`), run in the
//! project's venv: `$ENCLAVE_VENV/bin/python3`, by default
//! `/opt/enclave-init/venv/bin/python3` (scripts/install-deps installs
//! `scripts/deps/pip.txt` there).
//!
//! This test does not skip: a missing Python or SDK is a failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use callproc::retell::{sign, verify, DEFAULT_WINDOW_MS};
use serde_json::{json, Value};

const SDK_VERSION: &str = "6.2.13";

fn python() -> PathBuf {
    let venv = std::env::var_os("ENCLAVE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/enclave-init/venv"));
    venv.join("bin/python3")
}

/// Reads a JSON request on stdin, answers on stdout:
/// * `sign`: the SDK's `symmetric["sign"](body, key, ts)` of each item;
/// * `verify`: `symmetric["verify"](body, key, sig, {"timestamp": now})`;
/// * `client_verify`: `Retell(api_key=key).verify(body, key, sig)`, the
///   SDK's public entry point (current time, 5-minute window).
const SCRIPT: &str = r#"
import json, sys
from importlib.metadata import version
from retell import Retell
from retell.lib.webhook_auth import symmetric, FIVE_MINUTES
req = json.load(sys.stdin)
client = Retell(api_key="unused-by-verify")
out = {
    "version": version("retell-sdk"),
    "five_minutes": FIVE_MINUTES,
    "sign": [symmetric["sign"](i["body"], i["key"], i["ts"]) for i in req["sign"]],
    "verify": [symmetric["verify"](i["body"], i["key"], i["sig"], {"timestamp": i["now"]})
               for i in req["verify"]],
    "client_verify": [client.verify(i["body"], i["key"], i["sig"]) for i in req["client_verify"]],
}
json.dump(out, sys.stdout)
"#;

fn run_sdk(request: &Value) -> Value {
    let py = python();
    let mut child = Command::new(&py)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): create the venv and `pip install retell-sdk=={SDK_VERSION}` \
                 (scripts/install-deps), or set ENCLAVE_VENV",
                py.display()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed ({}): is retell-sdk=={SDK_VERSION} installed in the venv?\n{}",
        py.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], SDK_VERSION, "retell-sdk version");
    assert_eq!(v["five_minutes"], DEFAULT_WINDOW_MS);
    v
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

const BODIES: [&str; 4] = [
    r#"{"event":"call_started","call":{"call_id":"Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6","call_type":"web_call"}}"#,
    r#"{"event":"call_analyzed","call":{"call_id":"c2","transcript":"Agent: Buongiorno, è Sara 😀\nUser: ciao"}}"#,
    "",
    "{\n  \"spaced\": true\n}\n",
];

const KEYS: [&str; 2] = ["key_3f9a1c2b7d8e4f60a1b2c3d4e5f60718", "chiave-è-ünïcode"];

#[test]
fn sdk_signatures_verify_here() {
    let ts = 1_714_608_475_945u64;
    let mut items = Vec::new();
    for key in KEYS {
        for body in BODIES {
            items.push(json!({"body": body, "key": key, "ts": ts}));
        }
    }
    let out = run_sdk(&json!({"sign": items, "verify": [], "client_verify": []}));
    let sigs = out["sign"].as_array().unwrap();
    assert_eq!(sigs.len(), items.len());
    let w = DEFAULT_WINDOW_MS;
    for (item, sig) in items.iter().zip(sigs) {
        let key = item["key"].as_str().unwrap().as_bytes();
        let body = item["body"].as_str().unwrap().as_bytes();
        let sig = sig.as_str().unwrap();
        // Our signer produces the same header.
        assert_eq!(sig, sign(key, body, ts));
        let v = verify(key, body, Some(sig), ts, w).unwrap();
        assert_eq!(v.ts_ms, ts);
        verify(key, body, Some(sig), ts + w, w).unwrap();
        verify(key, body, Some(sig), ts - w, w).unwrap();

        let code = |key: &[u8], body: &[u8], now: u64| {
            verify(key, body, Some(sig), now, w).unwrap_err().code()
        };
        let mut changed = body.to_vec();
        changed.extend_from_slice(b" ");
        assert_eq!(code(key, &changed, ts), "retell.signature_invalid");
        let mut flipped = body.to_vec();
        if let Some(first) = flipped.first_mut() {
            *first ^= 0x20;
            assert_eq!(code(key, &flipped, ts), "retell.signature_invalid");
        }
        assert_eq!(code(key, body, ts + w + 1), "retell.signature_expired");
        assert_eq!(code(key, body, ts - w - 1), "retell.signature_expired");
        assert_eq!(code(b"wrong-key", body, ts), "retell.signature_invalid");
        assert_eq!(
            code(&key[..key.len() - 1], body, ts),
            "retell.signature_invalid"
        );
    }
}

#[test]
fn our_signatures_verify_in_the_sdk() {
    let now = now_ms();
    let ts = now - 1_000;
    let w = DEFAULT_WINDOW_MS;
    // (body, key, signature, now for the SDK, expected)
    let mut cases: Vec<(String, &str, String, u64, bool)> = Vec::new();
    for key in KEYS {
        for body in BODIES {
            let sig = sign(key.as_bytes(), body.as_bytes(), ts);
            cases.push((body.into(), key, sig.clone(), now, true));
            // The window edge is inclusive in both implementations.
            cases.push((body.into(), key, sig.clone(), ts + w, true));
            cases.push((body.into(), key, sig.clone(), ts + w + 1, false));
            cases.push((body.into(), key, sig.clone(), ts - w - 1, false));
            // Tampered body, wrong key, tampered digest.
            cases.push((format!("{body} "), key, sig.clone(), now, false));
            cases.push((body.into(), "wrong-key", sig.clone(), now, false));
            let last = sig.chars().last().unwrap();
            let flipped = format!(
                "{}{}",
                &sig[..sig.len() - 1],
                if last == '0' { '1' } else { '0' }
            );
            cases.push((body.into(), key, flipped, now, false));
            // A zero-padded timestamp: both sign the parsed value.
            let padded = sig.replacen("v=", "v=00", 1);
            assert!(verify(key.as_bytes(), body.as_bytes(), Some(&padded), now, w).is_ok());
            cases.push((body.into(), key, padded, now, true));
        }
    }
    let verify_items: Vec<Value> = cases
        .iter()
        .map(|(b, k, s, n, _)| json!({"body": b, "key": k, "sig": s, "now": n}))
        .collect();
    // The SDK's public verify (its own clock): one good, one tampered.
    let good = sign(KEYS[0].as_bytes(), BODIES[0].as_bytes(), now);
    let client_items = json!([
        {"body": BODIES[0], "key": KEYS[0], "sig": good},
        {"body": BODIES[1], "key": KEYS[0], "sig": good},
        {"body": BODIES[0], "key": KEYS[0], "sig": sign(KEYS[0].as_bytes(), BODIES[0].as_bytes(), now - 10 * w)},
    ]);
    let out = run_sdk(&json!({"sign": [], "verify": verify_items, "client_verify": client_items}));
    let got = out["verify"].as_array().unwrap();
    assert_eq!(got.len(), cases.len());
    for ((body, key, sig, at, want), got) in cases.iter().zip(got) {
        assert_eq!(
            got.as_bool(),
            Some(*want),
            "SDK verify of {sig} (key {key}, now {at}, body {body:?})"
        );
        // And we agree with the SDK on every case.
        let ours = verify(key.as_bytes(), body.as_bytes(), Some(sig), *at, w).is_ok();
        assert_eq!(ours, *want, "our verify of {sig}");
    }
    assert_eq!(out["client_verify"], json!([true, false, false]));
}
