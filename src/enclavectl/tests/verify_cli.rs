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
    d.file("policy.toml", format!("[snp]\nallowed = true\ncrl = \"if-present\"\nmin_reported_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }}\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n{extra}").as_bytes())
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
    let p = d.file("p.toml", format!("[snp]\nallowed = true\ncrl = \"if-present\"\nmin_reported_tcb = {{ bootloader = 4, tee = 0, snp = 24, microcode = 217 }}\nvmpls = [1]\nprovisional_firmware_allowed = true\nmeasurements = [\"{m}\"]\n").as_bytes());
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
        format!("[snp]\nallowed = true\ncrl = \"if-present\"\nmin_reported_tcb = {{ bootloader = 2, tee = 0, snp = 5, microcode = 68 }}\nmeasurements = [\"{m}\"]\n")
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
        format!("[snp]\nallowed = true\nmin_reported_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }}\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n").as_bytes(),
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
    // This quote has no event log: the policy pins no OS and says so.
    let p = d.file(
        "p.toml",
        format!(
            "[tdx]\nallowed = true\nmin_tcb_evaluation_data_number = 17\nmrtds = [\"{MRTD}\"]\nallow_unpinned_os = true\n"
        )
        .as_bytes(),
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
    assert_eq!(json["mr_td"], MRTD);
    assert_eq!(json["os_pinned"], false);
    // Another TD's event log (GCP COS-113) does not replay to this quote.
    let (code, json, _) = verify(&[
        "--quote",
        &fx("tdx/dcap-qvl/tdx_quote"),
        "--collateral",
        &fx("tdx/dcap-qvl/tdx_quote_collateral.json"),
        "--event-log",
        &fx("cloud/tdx-eventlog/go-tdx-guest-gcp-cos113/ccel_data.dat"),
        "--policy",
        &p,
        "--now",
        "2025-06-19T11:32:27Z",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["check"], "tdx.eventlog.replay");
    assert!(
        json["got"]
            .as_str()
            .unwrap()
            .starts_with("RTMR0 replays to "),
        "{json}"
    );
    // Without OS pins the policy is refused (usage error).
    let bare = d.file(
        "bare.toml",
        format!("[tdx]\nallowed = true\nmrtds = [\"{MRTD}\"]\n").as_bytes(),
    );
    let (code, _, stderr) = verify(&[
        "--quote",
        &fx("tdx/dcap-qvl/tdx_quote"),
        "--collateral",
        &fx("tdx/dcap-qvl/tdx_quote_collateral.json"),
        "--policy",
        &bare,
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("tdx.allow_unpinned_os"), "{stderr}");
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
        .contains("below every level of the TCB info"));
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
    // Impossible dates are refused, not rolled over.
    assert_eq!(
        verify(&[
            "--report",
            &report,
            "--cert",
            &vcek,
            "--policy",
            &p,
            "--now",
            "2026-02-30T00:00:00Z"
        ])
        .0,
        2
    );
    // A policy without a minimum TCB is refused at load.
    let no_min = d.file(
        "nomin.toml",
        format!("[snp]\nallowed = true\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n").as_bytes(),
    );
    let (code, _, err) = verify(&["--report", &report, "--cert", &vcek, "--policy", &no_min]);
    assert_eq!(code, 2);
    assert!(err.contains("snp.min_reported_tcb"), "{err}");
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

const AZ_SNP: &str = "cloud/azure/trustee-az-snp-vtpm";
const AZ_TDX: &str = "cloud/azure/trustee-az-tdx-vtpm";

fn azure_snp_policy(d: &Dir, measurement: &str, pcr0: &str, extra: &str) -> String {
    d.file(
        "azure.toml",
        format!(
            "[azure]\nallowed = true\n{extra}\n[azure.pcrs]\n0 = [\"{pcr0}\"]\n[azure.snp]\nallowed = true\ncrl = \"if-present\"\nprovisional_firmware_allowed = true\nmeasurements = [\"{measurement}\"]\n"
        )
        .as_bytes(),
    )
}

#[test]
fn azure_captures_verify_with_their_raw_nonce() {
    let d = Dir::new("azure");
    // SOURCES.md §2: v0 measurement and PCR0; nonce b"challenge" (hex).
    let p = azure_snp_policy(
        &d,
        "6a063be9dd79f6371c842e480f8dc3b5c725961344e57130e88c5adf49e8f7f6c79b75a5eb77fc769959f4aeb2f9401e",
        "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced",
        "user_data_required = false",
    );
    let v0 = fx(&format!("{AZ_SNP}/evidence-v0.json"));
    let args = |nonce: &'static str| {
        [
            "--azure",
            &v0,
            "--policy",
            &p,
            "--now",
            "2025-06-01T00:00:00Z",
            "--nonce",
            nonce,
        ]
        .map(str::to_owned)
    };
    let run = |a: [String; 8]| verify(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let (code, json, err) = run(args("6368616c6c656e6765"));
    assert_eq!(code, 0, "{json} {err}");
    assert_eq!(json["tee"], "azure-snp");
    assert_eq!(
        json["azure"]["pcrs"][0],
        "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced"
    );
    // The reversed nonce ("egnellahc").
    let (code, json, _) = run(args("65676e656c6c616863"));
    assert_eq!(code, 1);
    assert_eq!(json["check"], "azure.quote.nonce");
    // v2: user-data required (the default) carries the 48-byte nonce.
    let p2 = azure_snp_policy(
        &d,
        "5b0ce64ad1c1f6375dbda5f760b98526ca1bcf91b8195091afc28e7b024251d68fe32e05af34048d6607678cd23283ff",
        "84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7",
        "",
    );
    let (code, json, err) = verify(&[
        "--azure",
        &fx(&format!("{AZ_SNP}/evidence-v2.json")),
        "--policy",
        &p2,
        "--now",
        "2025-06-01T00:00:00Z",
        "--nonce",
        "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef",
    ]);
    assert_eq!(code, 0, "{json} {err}");
    assert_eq!(json["azure"]["user_data"].as_str().unwrap().len(), 128);
    // TDX: everything but the TCB status verifies without collateral.
    let pt = d.file(
        "tdx.toml",
        b"[azure]\nallowed = true\nguest_unpinned_allowed = true\nuser_data_required = false\n[azure.tdx]\nallowed = true\nmrtds = [\"024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7ab7b\"]\n",
    );
    let (code, json, _) = verify(&[
        "--azure",
        &fx(&format!("{AZ_TDX}/evidence-v1.json")),
        "--policy",
        &pt,
        "--now",
        "2025-06-01T00:00:00Z",
        "--nonce",
        "6368616c6c656e6765",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["check"], "tdx.collateral.missing");
}

#[test]
fn azure_usage_errors_exit_2() {
    let d = Dir::new("azure-usage");
    let p = snp_policy(&d, "");
    let report = fx("snp/milan-v2-virtee/report.bin");
    let vcek = fx("snp/milan-v2-virtee/vcek.der");
    // A raw nonce makes sense for Azure evidence only.
    let (code, _, err) = verify(&[
        "--report", &report, "--cert", &vcek, "--policy", &p, "--nonce", "00",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--enclave-key"), "{err}");
    // Collateral without a quote; evidence in no known form; a nonce too long.
    assert_eq!(
        verify(&[
            "--report",
            &report,
            "--cert",
            &vcek,
            "--policy",
            &p,
            "--collateral",
            &report
        ])
        .0,
        2
    );
    let junk = d.file("junk.json", b"{\"version\":\"3\"}");
    let (code, _, err) = verify(&["--azure", &junk, "--policy", &p]);
    assert_eq!(code, 2);
    assert!(err.contains("version"), "{err}");
    let v0 = fx(&format!("{AZ_SNP}/evidence-v0.json"));
    assert_eq!(
        verify(&["--azure", &v0, "--policy", &p, "--nonce", &"00".repeat(65)]).0,
        2
    );
}

#[test]
fn now_takes_rfc3339_or_unix_seconds() {
    // 1748736000 = 2025-06-01T00:00:00Z.
    let d = Dir::new("now");
    let p = snp_policy(&d, "");
    for now in [
        "2025-06-01T00:00:00Z",
        "1748736000",
        "2025-06-01T02:00:00+02:00",
    ] {
        let (code, json, err) = verify(&[
            "--report",
            &fx("snp/milan-v2-virtee/report.bin"),
            "--cert",
            &fx("snp/milan-v2-virtee/vcek.der"),
            "--policy",
            &p,
            "--now",
            now,
        ]);
        assert_eq!(code, 0, "{now}: {json} {err}");
    }
    // After the VCEK's notAfter (2030-04-03), by Unix seconds too: 1920000000 = 2030-11-04T05:20:00Z.
    let (code, json, _) = verify(&[
        "--report",
        &fx("snp/milan-v2-virtee/report.bin"),
        "--cert",
        &fx("snp/milan-v2-virtee/vcek.der"),
        "--policy",
        &p,
        "--now",
        "1920000000",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["check"], "snp.cert.validity");
}
