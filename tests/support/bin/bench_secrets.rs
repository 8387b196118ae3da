//! Boot to ready in process mode (init start to secrets held) against the
//! local verifier, sim-psp and OpenBao: N runs (default 20), median and 95th
//! percentile of the total and of each part (evidence, verifier round trip,
//! Vault login and reads), in JWT mode and in certificate mode
//! (`vault.auth = "cert"`: the client certificate from the verifier, mutual
//! TLS to OpenBao's cert auth).
//!
//! Also the guest's peak resident memory (VmHWM at readiness, secrets
//! held). Ends with the rows of `scripts/bench`'s table (`row: ...`).
//!
//!   bench-secrets [N]
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::Instant;

use enclave_tests::children::SpawnDying;
use enclave_tests::stack::{guest_config, sim_policy, OpenBao, Pki, SimPsp, Verifier};
use enclave_tests::{guest_bin, TempDir};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// The guest's peak resident set so far, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(f64::NAN)
}

fn main() {
    enclave_tests::one_line_panics("bench-secrets");
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let dir = TempDir::new("bench");
    let pki = Pki::new();
    let m = "ab".repeat(48);
    let psp = SimPsp::start(&dir.path().join("psp.sock"), &["--measurement", &m]);
    let (ca_cert, ca_key) = (
        pki.path("client-ca.pem").display().to_string(),
        pki.path("client-ca-key.pem").display().to_string(),
    );
    let verifier = Verifier::start(
        &pki,
        &sim_policy(&psp.ark_sha256, &[&m]),
        dir.path(),
        &["--client-ca-cert", &ca_cert, "--client-ca-key", &ca_key],
    );
    let bao = OpenBao::start(&pki);
    bao.setup(&verifier, &pki, &[&m], "sim", &[]);
    // What the guest must end up holding: every secret OpenBao holds for it
    // (scripts/openbao-setup seeds them), counted there, not assumed here.
    let expected = bao.seeded_secrets().len();
    let mut medians = Vec::new();
    let mut rss = Vec::new();
    for (mode, extra) in [
        ("JWT", ""),
        (
            "certificate",
            "auth = \"cert\"\nauth_path = \"enclave-cert\"\n",
        ),
    ] {
        let (mut total, mut evidence, mut verifier_rt, mut vault) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let g = TempDir::new("g");
            std::fs::write(
                g.path().join("config.toml"),
                guest_config(g.path(), &psp.socket, Some((&verifier, &pki)), Some(&bao)) + extra,
            )
            .unwrap();
            let ready = UnixListener::bind(g.path().join("ready.sock")).unwrap();
            let start = Instant::now();
            let mut child = Command::new(guest_bin())
                .arg("--config")
                .arg(g.path().join("config.toml"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn_dying()
                .unwrap();
            let (s, _) = ready.accept().unwrap();
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).unwrap();
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            let r: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(
                r["secrets_provisioned"].as_u64(),
                u64::try_from(expected).ok(),
                "the guest holds a different number of secrets than OpenBao seeded: {r}"
            );
            rss.push(peak_rss_kib(child.id()));
            let step = |name: &str| {
                r["steps_us"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["step"] == name)
                    .map_or(0.0, |s| s["us"].as_f64().unwrap() / 1000.0)
            };
            total.push(ms);
            let (ev, vr) = (
                r["attested"]["evidence_us"].as_f64().unwrap() / 1000.0,
                r["attested"]["verifier_us"].as_f64().unwrap() / 1000.0,
            );
            evidence.push(ev);
            verifier_rt.push(vr);
            // Vault: the boot step that attests and provisions, less the attestation.
            vault.push((step("attest_and_provision") - ev - vr).max(0.0));
            let _ = child.kill();
            let _ = child.wait();
        }
        println!("boot to ready, process mode, {mode} mode, {runs} runs (ms)  median    p95");
        for (name, v) in [
            ("total (spawn to readiness report)", &mut total),
            ("evidence (sim-psp, unix socket)", &mut evidence),
            (
                "verifier round trip (TLS, challenge, attest)",
                &mut verifier_rt,
            ),
            (
                format!("Vault login + {expected} wrapped reads + unwraps").as_str(),
                &mut vault,
            ),
        ] {
            let (p50, p95) = (pct(v, 0.5), pct(v, 0.95));
            println!("{name:<48} {p50:>7.1} {p95:>7.1}");
        }
        medians.push(pct(&mut total, 0.5));
    }
    // The table's rows: JWT mode against certificate mode (issue 14: proof
    // of possession should cost at most one extra handshake, ratio <= 1.5).
    println!(
        "row: boot to ready, process mode, cert mode vs JWT mode (median of {runs}) | {:.1} ms | {:.1} ms | {:.2} | <= 1.5",
        medians[1],
        medians[0],
        medians[1] / medians[0]
    );
    let peak = pct(&mut rss, 1.0) / 1024.0;
    println!(
        "row: guest peak RSS (VmHWM at ready, {expected} secrets held) | {peak:.1} MiB | - | - | <= 64 MiB"
    );
}
