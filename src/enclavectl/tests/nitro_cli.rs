//! `enclavectl verify --nitro` and `enclavectl evidence inspect` on the real
//! AWS Nitro attestation documents of `shared/fixtures/cloud/nitro`, at
//! times pinned inside their windows (SOURCES.md §1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use base64::Engine;

fn fx(rel: &str) -> String {
    let base = std::env::var_os("ENCLAVE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        });
    base.join("cloud/nitro").join(rel).display().to_string()
}

const E1: &str = "eternis/example_attestation@56801aa3.b64";
const E1_NOW: &str = "2024-07-31T20:30:00Z";
const E1_PCR0: &str = "a873085089ae5e3c3c491c8e1e0ab46a713f4314b3c6401abb599ca36060922a3d6fc2a3e84d198a2131e80c60959bb3";
const E1_MEASUREMENT: &str = "140f71c2f49de42a703729c4be70660a1758c6e8b8665cbd3d9c165f38eb68e5d4025c2fe395d6fae43479492fb2ed0b";

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("nitro-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str, content: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn enclavectl(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_enclavectl"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn raw(rel: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(fx(rel)).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap()
}

fn policy(d: &Dir, pcr0: &str) -> String {
    d.file(
        "policy.toml",
        format!("[nitro]\nallowed = true\npcr0 = [\"{pcr0}\"]\n").as_bytes(),
    )
}

#[test]
fn verify_accepts_base64_and_raw_documents_and_names_a_wrong_pcr() {
    let d = Dir::new("verify");
    let p = policy(&d, E1_PCR0);
    let raw_file = d.file("doc.cose", &raw(E1));
    for doc in [fx(E1), raw_file] {
        let (code, json, err) =
            enclavectl(&["verify", "--policy", &p, "--nitro", &doc, "--now", E1_NOW]);
        assert_eq!(code, 0, "{json} {err}");
        assert_eq!(json["tee"], "nitro");
        assert_eq!(json["measurement"], E1_MEASUREMENT);
        assert_eq!(json["nitro"]["pcrs"]["0"], E1_PCR0);
    }
    let other = policy(&d, &"ab".repeat(48));
    let (code, json, _) = enclavectl(&[
        "verify",
        "--policy",
        &other,
        "--nitro",
        &fx(E1),
        "--now",
        E1_NOW,
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["check"], "nitro.pcr0");
    assert_eq!(json["got"], E1_PCR0);
    // Outside the window (the leaf expired at 22:56:11).
    let (code, json, _) = enclavectl(&[
        "verify",
        "--policy",
        &p,
        "--nitro",
        &fx(E1),
        "--now",
        "2024-08-01T00:00:00Z",
    ]);
    assert_eq!((code, json["check"].as_str()), (1, Some("nitro.time")));
    // The bad COSE signature.
    let (code, json, _) = enclavectl(&[
        "verify",
        "--policy",
        &p,
        "--nitro",
        &fx("eternis/invalid_attestation.b64"),
        "--now",
        "2024-07-23T22:00:00Z",
    ]);
    assert_eq!((code, json["check"].as_str()), (1, Some("nitro.signature")));
}

#[test]
fn verify_checks_the_binding_options() {
    let d = Dir::new("binding");
    let p = policy(&d, E1_PCR0);
    let nonce = "0000000000000000000000000000000000000001";
    let doc = fx(E1);
    let run = |extra: &[&str]| {
        let mut v = vec![
            "verify",
            "--policy",
            p.as_str(),
            "--nitro",
            doc.as_str(),
            "--now",
            E1_NOW,
        ];
        v.extend_from_slice(extra);
        enclavectl(&v)
    };
    // The raw nonce other attesters put in the document.
    let (code, json, err) = run(&["--nonce", nonce]);
    assert_eq!(code, 0, "{json} {err}");
    let (code, json, _) = run(&["--nonce", "02"]);
    assert_eq!(
        (code, json["check"].as_str()),
        (1, Some("nitro.binding.nonce"))
    );
    assert_eq!(json["got"], nonce);
    // Our REPORT_DATA: this document carries a multihash, not it.
    let rd = "11".repeat(64);
    let (code, json, _) = run(&["--report-data", &rd]);
    assert_eq!(
        (code, json["check"].as_str()),
        (1, Some("nitro.binding.user_data"))
    );
    assert_eq!(json["want"], rd);
    assert_eq!(
        json["got"],
        "12207e991a88fee0f1797486f4520d2a74f6616d94cc6018442fa67e6330ab91e9f512200000000000000000000000000000000000000000000000000000000000000000"
    );
    // The verifier's three inputs: REPORT_DATA recomputed from them.
    let key = d.file("spki.der", b"spki");
    let n32 = "07".repeat(32);
    let x32 = "09".repeat(32);
    let (code, json, _) = run(&["--nonce", &n32, "--enclave-key", &key, "--exporter", &x32]);
    assert_eq!(
        (code, json["check"].as_str()),
        (1, Some("nitro.binding.user_data"))
    );
    let want = tee_formats::binding::report_data(&[7; 32], b"spki", &[9; 32]);
    assert_eq!(json["want"], appraisal::hex::encode(&want));
}

#[test]
fn verify_refuses_what_is_not_a_document_with_exit_2() {
    let d = Dir::new("usage");
    let p = policy(&d, E1_PCR0);
    let junk = d.file("junk", b"this is not a document");
    let (code, _, err) = enclavectl(&["verify", "--policy", &p, "--nitro", &junk]);
    assert_eq!(code, 2);
    assert!(err.contains("Nitro attestation document: neither COSE_Sign1 bytes (0x84 or 0xd2 first) nor base64 text"), "{err}");
    let huge = d.file("huge", &vec![0x84; 10 * 1024 * 1024]);
    let (code, _, err) = enclavectl(&["verify", "--policy", &p, "--nitro", &huge]);
    assert_eq!(code, 2);
    assert!(err.contains("Nitro attestation document: 10485760 bytes, more than any document (at most 16384 bytes raw)"), "{err}");
    // Raw bytes that start like a COSE_Sign1 but are cut: a denial naming
    // the offset (the appraisal's nitro.format), exit 1.
    let mut cut = raw(E1);
    cut.truncate(1000);
    let cut = d.file("cut", &cut);
    let (code, json, _) = enclavectl(&["verify", "--policy", &p, "--nitro", &cut, "--now", E1_NOW]);
    assert_eq!((code, json["check"].as_str()), (1, Some("nitro.format")));
    assert_eq!(
        json["got"],
        "at byte 10: payload needs 4447 bytes, 990 remain"
    );
}

#[test]
fn inspect_shows_documents_in_every_form() {
    let d = Dir::new("inspect");
    let raw_file = d.file("doc.cose", &raw(E1));
    let bundle = serde_json::json!({
        "format": "enclave-init/evidence-bundle", "version": 1, "tee": "nitro", "provider": "nsm",
        "evidence": base64::engine::general_purpose::STANDARD.encode(raw(E1)),
    });
    let bundle_file = d.file("bundle.json", bundle.to_string().as_bytes());
    for f in [fx(E1), raw_file, bundle_file] {
        let (code, json, err) = enclavectl(&["evidence", "inspect", &f]);
        assert_eq!(code, 0, "{f}: {err}");
        let v = if json["kind"] == "evidence-bundle" {
            assert_eq!(json["tee"], "nitro");
            json["evidence"].clone()
        } else {
            json
        };
        assert_eq!(v["kind"], "nitro-attestation-document");
        assert_eq!(v["module_id"], "i-0809070ca8037095f-enc01910a5cff6ce304");
        assert_eq!(v["timestamp"], "2024-07-31T19:56:11Z");
        assert_eq!(v["digest"], "SHA384");
        let nonzero: Vec<&String> = v["pcrs"].as_object().unwrap().keys().collect();
        assert_eq!(nonzero, ["0", "1", "2", "4"]);
        assert_eq!(v["measurement"], E1_MEASUREMENT);
        assert_eq!(v["debug"], false);
        let chain = v["chain"].as_array().unwrap();
        assert_eq!(chain.len(), 5);
        assert_eq!(chain[0]["aws_root"], true);
        assert_eq!(chain[0]["not_after"], "2049-10-28T14:28:05Z");
        assert_eq!(chain[4]["position"], "certificate (leaf)");
        assert_eq!(chain[4]["not_after"], "2024-07-31T22:56:11Z");
        assert_eq!(
            (
                v["user_data_len"].as_u64(),
                v["nonce_len"].as_u64(),
                v["public_key_len"].as_u64()
            ),
            (Some(68), Some(20), Some(5))
        );
    }
    let (code, json, _) = enclavectl(&[
        "evidence",
        "inspect",
        &fx("eternis/example_attestation@HEAD.b64"),
    ]);
    assert_eq!(code, 0);
    assert_eq!(json["debug"], true);
}
