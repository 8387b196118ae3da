//! `enclavectl collateral fetch|show|prune`, `verify` with the verifier's
//! own collateral, `policy check`, `evidence inspect` on malformed and
//! decorated inputs, and the verifier's strict-by-default refusals, against
//! the KDS/PCS stand-in (`collateral::standin`: the real fixture documents
//! at the real paths) and the shared fixtures.
//!
//! Time: 2025-06-19T11:32:27Z (1750332747) is inside the TDX collateral's
//! window (shared/fixtures/SOURCES.md), the real Milan CRL's
//! (src/collateral/tests/data/amd-crl/README.md) and the virtee VCEK's.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use collateral::standin::StandIn;
use serde_json::Value;

const NOW: &str = "2025-06-19T11:32:27Z";
const VIRTEE_MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";

fn fixtures() -> PathBuf {
    let p = std::env::var_os("ENCLAVE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        });
    assert!(
        p.join("SOURCES.md").is_file(),
        "shared fixtures not found at {}: set ENCLAVE_FIXTURES",
        p.display()
    );
    p
}

fn fx(rel: &str) -> String {
    fixtures().join(rel).display().to_string()
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("collateral-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str, content: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn enclavectl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_enclavectl"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn lines(s: &str) -> Vec<Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn standin_args(s: &StandIn, ca: &str) -> Vec<String> {
    vec![
        "--kds-url".into(),
        s.url.clone(),
        "--pcs-url".into(),
        s.url.clone(),
        "--collateral-ca".into(),
        ca.into(),
    ]
}

#[test]
fn fetch_show_prune_and_an_offline_verify() {
    let d = Dir::new("fetch");
    let s = StandIn::start(&fixtures()).unwrap();
    let ca = s.write_ca(&d.0).unwrap().display().to_string();
    let cache = d.path("cache");
    let out = d.path("offline");
    let mut args: Vec<String> = vec![
        "collateral".into(),
        "fetch".into(),
        fx("snp/milan-v2-virtee/report.bin"),
        fx("tdx/dcap-qvl/tdx_quote"),
    ];
    args.extend(standin_args(&s, &ca));
    args.extend([
        "--collateral-cache".into(),
        cache.clone(),
        "--out".into(),
        out.clone(),
        "--now".into(),
        NOW.into(),
    ]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = enclavectl(&a);
    assert_eq!(code, 0, "{stdout} {stderr}");
    let got = lines(&stdout);
    // SNP: VCEK, CA chain, CRL; TDX: TCB info, QE identity, PCK CRL, root CA CRL
    // (with --pcs-url, as a PCCS serves it: /sgx/certification/v4/rootcacrl, hex).
    assert_eq!(got.len(), 7, "{stdout}");
    assert!(got.iter().all(|l| l["source"] == "fetched"), "{stdout}");
    assert!(got.iter().any(|l| l["url"]
        .as_str()
        .unwrap()
        .ends_with("/sgx/certification/v4/rootcacrl")));
    assert!(got.iter().any(
        |l| l["url"].as_str().unwrap().ends_with("/vcek/v1/Milan/crl")
            && l["next_update"] == "2026-05-12T00:00:00Z"
    ));
    // Again: from the cache, no request.
    let before = s.log().len();
    let (code, stdout, _) = enclavectl(&a);
    assert_eq!(code, 0);
    assert!(
        lines(&stdout).iter().all(|l| l["source"] == "cache"),
        "{stdout}"
    );
    assert_eq!(s.log().len(), before);
    // show: seven documents, all fresh at NOW.
    let (code, stdout, _) = enclavectl(&[
        "collateral",
        "show",
        "--collateral-cache",
        &cache,
        "--now",
        NOW,
    ]);
    assert_eq!(code, 0);
    let shown = lines(&stdout);
    assert_eq!(shown.len(), 7);
    assert!(shown.iter().all(|l| l["state"] == "fresh"), "{stdout}");
    // The offline directory answers `verify` with no network and no bundle
    // collateral: the host sent only the report (no VCEK, no CRL).
    let bundle = wire::EvidenceBundle::new(
        wire::Tee::Snp,
        "test",
        std::fs::read(fx("snp/milan-v2-virtee/report.bin")).unwrap(),
    );
    let b = d.file("bundle.json", &bundle.to_json());
    let p = d.file(
        "p.toml",
        format!("[snp]\nallowed = true\nmin_reported_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }}\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n").as_bytes(),
    );
    let (code, stdout, stderr) = enclavectl(&[
        "verify",
        "--bundle",
        &b,
        "--policy",
        &p,
        "--now",
        NOW,
        "--collateral-offline",
        &out,
    ]);
    assert_eq!(code, 0, "{stdout} {stderr}");
    let claims: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        claims["collateral"]["sources"],
        serde_json::json!({"vcek": "offline", "crl": "offline"})
    );
    assert_eq!(claims["collateral"]["revocation_checked"], true);
    // Without any collateral source: denied for want of the VCEK.
    let (code, stdout, _) = enclavectl(&["verify", "--bundle", &b, "--policy", &p, "--now", NOW]);
    assert_eq!(code, 1);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["check"],
        "snp.vek.missing"
    );
    // prune: nothing is expired at NOW; everything is at 2100.
    let (_, stdout, _) = enclavectl(&[
        "collateral",
        "prune",
        "--collateral-cache",
        &cache,
        "--now",
        NOW,
    ]);
    assert_eq!(lines(&stdout)[0]["removed"], 0);
    let (_, stdout, _) = enclavectl(&[
        "collateral",
        "prune",
        "--collateral-cache",
        &cache,
        "--now",
        "2100-01-01T00:00:00Z",
    ]);
    assert_eq!(lines(&stdout)[0]["removed"], 7);
    let (_, stdout, _) = enclavectl(&["collateral", "show", "--collateral-cache", &cache]);
    assert!(stdout.trim().is_empty(), "{stdout}");
    // A fetch that cannot succeed exits 1 and names the document.
    let mut args: Vec<String> = vec![
        "collateral".into(),
        "fetch".into(),
        fx("snp/milan-v2-virtee/report.bin"),
    ];
    args.extend([
        "--kds-url".into(),
        format!("{}/elsewhere", s.url),
        "--collateral-ca".into(),
        ca,
        "--now".into(),
        NOW.into(),
    ]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, _) = enclavectl(&a);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        lines(&stdout)
            .iter()
            .all(|l| l["error"].as_str().is_some_and(|e| e.ends_with("HTTP 404"))),
        "{stdout}"
    );
}

/// Records accepted evidence the way the verifier does (its PolicyAppraiser
/// with a collateral cache directory), with the fixtures' own REPORT_DATA.
fn record(cache: &Path, s: &StandIn, ca: &Path) {
    use verifier::Appraiser as _;
    let now = appraisal::time::parse_now(NOW).unwrap();
    let policy = appraisal::Policy::from_toml(
        format!(
            "[snp]\nallowed = true\nmin_reported_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }}\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n\
             [tdx]\nallowed = true\nmin_tcb_evaluation_data_number = 17\nmrtds = [\"{MRTD}\"]\nallow_unpinned_os = true\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let client = collateral::http::Client::new(
        &collateral::http::Roots::Pinned(ca.to_owned()),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let c = collateral::Cache::new(
        collateral::CacheConfig::default(),
        Some(client),
        Some(cache.to_owned()),
        None,
    )
    .unwrap();
    let endpoints = collateral::Endpoints {
        kds: s.url.clone(),
        pcs: s.url.clone(),
        root_ca_crl: format!("{}/IntelSGXRootCA.der", s.url),
    };
    let resolver = std::sync::Arc::new(collateral::Resolver::new(c, endpoints));
    let store = collateral::store::Store::open(cache).unwrap();
    let a = verifier::PolicyAppraiser::new(policy)
        .unwrap()
        .with_collateral(resolver, Some(store));
    let rd = |hex: &str| -> [u8; 64] { appraisal::hex::decode(hex).unwrap().try_into().unwrap() };
    // REPORT_DATA of the fixtures (shared/fixtures/SOURCES.md).
    let snp = wire::EvidenceBundle::new(
        wire::Tee::Snp,
        "test",
        std::fs::read(fx("snp/milan-v2-virtee/report.bin")).unwrap(),
    );
    a.appraise(&snp, &rd("d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd"), now).unwrap();
    let tdx = wire::EvidenceBundle::new(
        wire::Tee::Tdx,
        "test",
        std::fs::read(fx("tdx/dcap-qvl/tdx_quote")).unwrap(),
    );
    a.appraise(&tdx, &rd("9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"), now).unwrap();
    // The TCB report: both platforms, the TDX one not behind (its level is
    // the newest UpToDate one of the TCB info: tcbDate 2024-03-13).
    let platforms = a.platforms();
    let list = platforms.as_array().unwrap();
    assert_eq!(list.len(), 2, "{platforms}");
    let tdx_p = list.iter().find(|p| p["tee"] == "tdx").unwrap();
    assert!(
        tdx_p["platform"]
            .as_str()
            .unwrap()
            .starts_with("tdx-b0c06f000000-"),
        "{tdx_p}"
    );
    assert_eq!(tdx_p["tcb"]["tcb_date"], "2024-03-13T00:00:00Z");
    assert_eq!(tdx_p["behind"], false);
    let snp_p = list.iter().find(|p| p["tee"] == "snp").unwrap();
    assert_eq!(snp_p["tcb"]["microcode"], 115);
    assert!(snp_p["current_tcb"].is_null());
    let m = a.metrics();
    assert!(
        m.contains("enclave_verifier_platform_tcb_behind{tee=\"tdx\",platform=\"tdx-b0c06f000000-"),
        "{m}"
    );
    assert!(m.contains(",component=\"microcode\"} 115"), "{m}");
    assert!(
        m.contains("enclave_verifier_collateral_fetched_total 6"),
        "{m}"
    );
}

#[test]
fn policy_check_names_the_platforms_a_change_would_deny() {
    let d = Dir::new("policy-check");
    let s = StandIn::start(&fixtures()).unwrap();
    let ca = s.write_ca(&d.0).unwrap();
    let cache = d.0.join("cache");
    record(&cache, &s, &ca);
    let cache = cache.display().to_string();
    // The policy in force: both accepted, offline (no request).
    let before = s.log().len();
    let same = d.file(
        "same.toml",
        format!(
            "[snp]\nallowed = true\nmin_reported_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }}\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n\
             [tdx]\nallowed = true\nmin_tcb_evaluation_data_number = 17\nmrtds = [\"{MRTD}\"]\nallow_unpinned_os = true\n"
        )
        .as_bytes(),
    );
    let (code, stdout, stderr) =
        enclavectl(&["policy", "check", &same, "--collateral-cache", &cache]);
    assert_eq!(code, 0, "{stdout} {stderr}");
    let out = lines(&stdout);
    assert_eq!(out.last().unwrap()["accepted"], 2);
    assert_eq!(s.log().len(), before);
    // A TCB floor above the SNP platform's microcode (115), and a
    // tcbEvaluationDataNumber above the TDX collateral's (17): both denied, by name.
    let raised = d.file(
        "raised.toml",
        format!(
            "[snp]\nallowed = true\nmin_reported_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 116 }}\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n\
             [tdx]\nallowed = true\nmin_tcb_evaluation_data_number = 18\nmrtds = [\"{MRTD}\"]\nallow_unpinned_os = true\n"
        )
        .as_bytes(),
    );
    let (code, stdout, _) = enclavectl(&["policy", "check", &raised, "--collateral-cache", &cache]);
    assert_eq!(code, 1, "{stdout}");
    let out = lines(&stdout);
    let check =
        |tee: &str| out.iter().find(|l| l["tee"] == tee).unwrap()["denial"]["check"].clone();
    assert_eq!(check("snp"), "snp.tcb.reported");
    assert_eq!(check("tdx"), "tdx.tcb_evaluation_data_number");
    assert_eq!(out.last().unwrap()["denied"], 2);
    // A policy the verifier would refuse to load: exit 2.
    let bad = d.file("bad.toml", b"[tdx]\nallowed = true\n");
    let (code, _, stderr) = enclavectl(&["policy", "check", &bad, "--collateral-cache", &cache]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("tdx.min_tcb_evaluation_data_number"),
        "{stderr}"
    );
}

#[test]
fn evidence_inspect_malformed_empty_and_decorated_inputs() {
    let d = Dir::new("inspect");
    // Empty (or only whitespace): exit 2.
    for empty in [&b""[..], b"  \n"] {
        let f = d.file("empty", empty);
        let (code, _, stderr) = enclavectl(&["evidence", "inspect", &f]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("is empty"), "{stderr}");
    }
    // A bundle with a UTF-8 BOM and surrounding whitespace.
    let mut bundle = wire::EvidenceBundle::new(
        wire::Tee::Snp,
        "test",
        std::fs::read(fx("snp/milan-v2-virtee/report.bin")).unwrap(),
    );
    bundle.certificates.push(wire::Certificate {
        kind: wire::CertKind::Vcek,
        der: std::fs::read(fx("snp/milan-v2-virtee/vcek.der"))
            .unwrap()
            .into(),
    });
    let mut text = b"\xef\xbb\xbf\n  ".to_vec();
    text.extend_from_slice(&bundle.to_json());
    text.extend_from_slice(b"\r\n\n");
    let f = d.file("bom.json", &text);
    let (code, stdout, stderr) = enclavectl(&["evidence", "inspect", &f]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["kind"], "evidence-bundle");
    // Per-component TCB of an SEV-SNP report: the trustee report's reported
    // TCB 0300000000000873 and current TCB 03000000000008ce (SOURCES.md).
    let (code, stdout, _) = enclavectl(&[
        "evidence",
        "inspect",
        &fx("snp/milan-v2-trustee/report.bin"),
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["tcb"]["reported"],
        serde_json::json!({"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115})
    );
    assert_eq!(v["tcb"]["current"]["microcode"], 0xce);
    // The VLEK report is v3: its CPUID names Milan.
    let (_, stdout, _) = enclavectl(&[
        "evidence",
        "inspect",
        &fx("snp/milan-v3-vlek-trustee/report.bin"),
    ]);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["tcb"]["layout"], "Milan");
    assert_eq!(
        v["tcb"]["reported"],
        serde_json::json!({"bootloader": 4, "tee": 0, "snp": 24, "microcode": 217})
    );
    // TDX: TEE_TCB_SVN and the PCK's FMSPC, SGX components, PCE SVN (SOURCES.md:
    // tee_tcb_svn 06010300…, FMSPC b0c06f000000, PCESVN 11), and the zero padding.
    let (code, stdout, _) = enclavectl(&["evidence", "inspect", &fx("tdx/dcap-qvl/tdx_quote")]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["kind"], "tdx-quote");
    assert_eq!(
        v["tcb"]["tee_tcb_svn"],
        serde_json::json!([6, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    );
    assert_eq!(v["tcb"]["pck"]["fmspc"], "b0c06f000000");
    assert_eq!(v["tcb"]["pck"]["pce_svn"], 11);
    assert_eq!(v["tcb"]["pck"]["ca"], "platform");
    assert_eq!(
        v["tcb"]["trailing_bytes"],
        serde_json::json!({"len": 70, "all_zero": true})
    );
    // A truncated quote is recognised as a malformed TDX quote.
    let q = std::fs::read(fx("tdx/dcap-qvl/tdx_quote")).unwrap();
    let f = d.file("short", &q[..2000]);
    let (code, _, stderr) = enclavectl(&["evidence", "inspect", &f]);
    assert_eq!(code, 1);
    assert!(stderr.contains("malformed TDX quote"), "{stderr}");
}

#[test]
fn the_verifier_is_strict_by_default() {
    let d = Dir::new("strict");
    let pki = d.path("pki");
    let (code, _, err) = enclavectl(&["dev-pki", "--out", &pki]);
    assert_eq!(code, 0, "{err}");
    let base = |policy: &str| -> Vec<String> {
        vec![
            "verifier".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--tls-cert".into(),
            format!("{pki}/verifier.pem"),
            "--tls-key".into(),
            format!("{pki}/verifier-key.pem"),
            "--token-key".into(),
            format!("{pki}/token-key.pk8"),
            "--nonce-key".into(),
            format!("{pki}/nonce.key"),
            "--policy".into(),
            policy.into(),
        ]
    };
    let run = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        enclavectl(&a)
    };
    let ok = d.file("ok.toml", format!("[snp]\nallowed = true\nmin_reported_tcb = {{ snp = 8 }}\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n").as_bytes());
    // --now outside --dev.
    let mut a = base(&ok);
    a.extend(["--now".into(), NOW.into()]);
    let (code, _, err) = run(a);
    assert_eq!(code, 1);
    assert!(err.contains("--now is refused outside --dev"), "{err}");
    // A token lifetime above the policy's cap (60 s by default).
    let mut a = base(&ok);
    a.extend(["--token-ttl-secs".into(), "300".into()]);
    let (code, _, err) = run(a);
    assert_eq!(code, 1);
    assert!(
        err.contains("above the policy's token.max_ttl_secs 60"),
        "{err}"
    );
    // A simulation policy without --dev.
    let sim = d.file(
        "sim.toml",
        format!("[snp]\nmin_reported_tcb = {{ snp = 8 }}\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n[sim]\nallowed = true\nark_sha256 = [\"{}\"]\n", "ab".repeat(32)).as_bytes(),
    );
    let (code, _, err) = run(base(&sim));
    assert_eq!(code, 1);
    assert!(
        err.contains("sim.allowed = true is refused") && err.contains("--dev"),
        "{err}"
    );
    // A policy without a minimum TCB.
    let nomin = d.file(
        "nomin.toml",
        format!("[snp]\nallowed = true\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n").as_bytes(),
    );
    let (code, _, err) = run(base(&nomin));
    assert_eq!(code, 1);
    assert!(err.contains("snp.min_reported_tcb"), "{err}");
    // --now with --dev: impossible dates refused.
    let mut a = base(&ok);
    a.extend([
        "--dev".into(),
        "--now".into(),
        "2026-02-30T00:00:00Z".into(),
    ]);
    let (code, _, err) = run(a);
    assert_eq!(code, 1);
    assert!(err.contains("real calendar date"), "{err}");
}
