//! `enclavectl verify`: exit status 0 (accepted, claims on stdout), 1
//! (denied, denial on stdout), 2 (usage), on the shared fixtures at their
//! pinned times.
// Helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    std::env::var_os("ENCLAVE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        })
}

fn fx(rel: &str) -> String {
    fixtures().join(rel).display().to_string()
}

const VIRTEE_MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("verify-cli-{name}-{}", std::process::id()));
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

fn verify(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_enclavectl"))
        .arg("verify")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn snp_policy(d: &Dir, extra: &str) -> String {
    d.file("policy.toml", format!("[snp]\nallowed = true\ncrl = \"if-present\"\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n{extra}").as_bytes())
}

#[test]
fn snp_report_with_certificates_is_accepted_exit_0() {
    let d = Dir::new("snp-ok");
    let p = snp_policy(&d, "");
    let (code, json, err) = verify(&[
        "--report",
        &fx("snp/milan-v2-virtee/report.bin"),
        "--cert",
        &fx("snp/milan-v2-virtee/vcek.der"),
        "--cert",
        &fx("snp/amd-certs/milan_ask_ark.pem"),
        "--policy",
        &p,
        "--now",
        "2025-06-01T00:00:00Z",
    ]);
    assert_eq!(code, 0, "{json} {err}");
    assert_eq!(json["tee"], "snp");
    assert_eq!(json["measurement"], VIRTEE_MEASUREMENT);
    assert_eq!(json["tcb"]["microcode"], 115);
}

#[test]
fn snp_report_after_vlek_expiry_is_denied_exit_1() {
    let d = Dir::new("vlek");
    let m = "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0";
    let p = d.file("p.toml", format!("[snp]\nallowed = true\ncrl = \"if-present\"\nvmpls = [1]\nprovisional_firmware_allowed = true\nmeasurements = [\"{m}\"]\n").as_bytes());
    let args = |now: &'static str| {
        vec![
            "--report".to_owned(),
            fx("snp/milan-v3-vlek-trustee/report.bin"),
            "--cert".to_owned(),
            fx("snp/milan-v3-vlek-trustee/vlek.der"),
            "--cert".to_owned(),
            fx("snp/amd-certs/milan_asvk_ark.pem"),
            "--policy".to_owned(),
            p.clone(),
            "--now".to_owned(),
            now.to_owned(),
        ]
    };
    let a = args("2025-12-01T00:00:00Z");
    let (code, json, _) = verify(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["signer"], "vlek");
    let a = args("2025-12-11T00:00:00Z");
    let (code, json, _) = verify(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 1, "{json}");
    assert_eq!(json["check"], "snp.cert.validity");
}

#[test]
fn debug_report_is_denied_by_a_no_debug_policy() {
    let d = Dir::new("debug");
    let m = "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01";
    let p = d.file(
        "p.toml",
        format!("[snp]\nallowed = true\ncrl = \"if-present\"\nmeasurements = [\"{m}\"]\n")
            .as_bytes(),
    );
    let (code, json, _) = verify(&[
        "--report",
        &fx("snp/milan-v2-gosevguest/report.bin"),
        "--cert",
        &fx("snp/milan-v2-gosevguest/vcek.der"),
        "--policy",
        &p,
        "--now",
        "2025-06-01T00:00:00Z",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["check"], "snp.policy.debug");
    assert!(json["hint"].as_str().unwrap().contains("debug"));
}

#[test]
fn bundle_input_and_default_crl_policy() {
    let d = Dir::new("bundle");
    let mut b = wire::EvidenceBundle::new(
        wire::Tee::Snp,
        "test",
        std::fs::read(fx("snp/milan-v2-virtee/report.bin")).unwrap(),
    );
    b.certificates.push(wire::Certificate {
        kind: wire::CertKind::Vcek,
        der: wire::Bytes(std::fs::read(fx("snp/milan-v2-virtee/vcek.der")).unwrap()),
    });
    let bundle = d.file("bundle.json", &b.to_json());
    let (code, json, _) = verify(&[
        "--bundle",
        &bundle,
        "--policy",
        &snp_policy(&d, ""),
        "--now",
        "2025-06-01T00:00:00Z",
    ]);
    assert_eq!(code, 0, "{json}");
    let strict = d.file(
        "strict.toml",
        format!("[snp]\nallowed = true\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n").as_bytes(),
    );
    let (code, json, _) = verify(&[
        "--bundle",
        &bundle,
        "--policy",
        &strict,
        "--now",
        "2025-06-01T00:00:00Z",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["check"], "snp.crl.unavailable");
}

#[test]
fn report_data_is_compared_when_given() {
    let d = Dir::new("rd");
    let p = snp_policy(&d, "");
    let base = [
        "--report",
        &fx("snp/milan-v2-virtee/report.bin"),
        "--cert",
        &fx("snp/milan-v2-virtee/vcek.der"),
        "--policy",
        &p,
        "--now",
        "2025-06-01T00:00:00Z",
    ]
    .map(str::to_owned);
    let good = "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd";
    let mut a: Vec<String> = base.to_vec();
    a.extend(["--report-data".to_owned(), good.to_owned()]);
    assert_eq!(
        verify(&a.iter().map(String::as_str).collect::<Vec<_>>()).0,
        0
    );
    let mut a: Vec<String> = base.to_vec();
    a.extend([
        "--nonce".into(),
        "00".repeat(32),
        "--enclave-key".into(),
        p.clone(),
        "--exporter".into(),
        "11".repeat(32),
    ]);
    let (code, json, _) = verify(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 1);
    assert_eq!(json["check"], "report_data");
}

#[test]
fn tdx_quote_with_collateral() {
    let d = Dir::new("tdx");
    let p = d.file(
        "p.toml",
        format!("[tdx]\nallowed = true\nmrtds = [\"{MRTD}\"]\n").as_bytes(),
    );
    let (code, json, _) = verify(&[
        "--quote",
        &fx("tdx/dcap-qvl/tdx_quote"),
        "--collateral",
        &fx("tdx/dcap-qvl/tdx_quote_collateral.json"),
        "--policy",
        &p,
        "--now",
        "2025-06-19T11:32:27Z",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["tcb"]["tcb_status"], "UpToDate");
    let (code, json, _) = verify(&[
        "--quote",
        &fx("tdx/dcap-qvl/tdx_quote_outdated"),
        "--collateral",
        &fx("tdx/dcap-qvl/tdx_quote_outdated_collateral.json"),
        "--policy",
        &p,
        "--now",
        "2026-02-18T11:58:51Z",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["check"], "tdx.tcb_level");
    assert!(json["got"]
        .as_str()
        .unwrap()
        .contains("No matching TCB level found"));
}

#[test]
fn usage_errors_exit_2() {
    let d = Dir::new("usage");
    let p = snp_policy(&d, "");
    let report = fx("snp/milan-v2-virtee/report.bin");
    let vcek = fx("snp/milan-v2-virtee/vcek.der");
    // No evidence at all; report without certificates; quote without collateral.
    assert_eq!(verify(&["--policy", &p]).0, 2);
    assert_eq!(verify(&["--report", &report, "--policy", &p]).0, 2);
    assert_eq!(verify(&["--quote", &report, "--policy", &p]).0, 2);
    // Bad time, bad policy, missing file, bad hex.
    assert_eq!(
        verify(&[
            "--report",
            &report,
            "--cert",
            &vcek,
            "--policy",
            &p,
            "--now",
            "yesterday"
        ])
        .0,
        2
    );
    let bad = d.file("bad.toml", b"[snp]\nunknown = 1\n");
    let (code, _, err) = verify(&["--report", &report, "--cert", &vcek, "--policy", &bad]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown"), "{err}");
    assert_eq!(
        verify(&[
            "--report",
            &report,
            "--cert",
            "/nonexistent",
            "--policy",
            &p
        ])
        .0,
        2
    );
    assert_eq!(
        verify(&[
            "--report",
            &report,
            "--cert",
            &vcek,
            "--policy",
            &p,
            "--report-data",
            "zz"
        ])
        .0,
        2
    );
}
