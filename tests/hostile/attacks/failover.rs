//! High availability: two verifier replicas sharing only configuration
//! (token key, nonce key, policy, the proxy's URL as issuer) behind HAProxy
//! in TCP mode. The host kills one replica while guests renew; no guest
//! may notice.

use std::time::{Duration, Instant};

use enclave_tests::attest_client::{client_config, enclave_spki, exchange};
use enclave_tests::process::Guest;
use enclave_tests::replicas::Replicas;
use enclave_tests::stack::{sim_policy, OpenBao, Pki, SimPsp};
use enclave_tests::TempDir;

use super::fleet::{boot_many, join};
use crate::rig::{PEPPER, RETELL_KEY, TRANSCRIPTION_KEY};
use crate::Verdict;

/// Guests renewing through the proxy.
const GUESTS: usize = 4;
/// Token lifetime: guests renew at 50-75 % of it, every 3-4.5 s.
const TTL_SECS: &str = "6";
/// How long the guests keep renewing after the kill: three periods at least.
const AFTER_KILL: Duration = Duration::from_secs(14);
/// The longest a client may wait between two successful exchanges across
/// the kill: one exchange cut on r0 (the probe's 2 s deadline at worst)
/// and a retry that HAProxy sends to r1.
const PROBE_GAP: Duration = Duration::from_secs(3);

/// Four process-mode guests renew every few seconds through HAProxy in
/// front of two replicas; replica r0 is SIGKILLed mid-run and the guests
/// keep renewing for 14 s. Held only if no guest withdrew, every guest
/// renewed at least twice after the kill, both replicas had served before
/// it, HAProxy marked r0 down, a client exchanging back to back through the
/// proxy across the kill never waited more than 3 s between two successful
/// exchanges, and OpenBao accepted a token issued by a
/// replica that was out of rotation while OpenBao's discovery ran (tokens
/// of either replica are interchangeable: same issuer, same key).
pub fn verifier_failover() -> Verdict {
    let dir = TempDir::new("failover");
    let pki = Pki::new();
    let psp = SimPsp::start(
        &dir.path().join("psp.sock"),
        &["--measurement", &"c3".repeat(48)],
    );
    let policy = sim_policy(&psp.ark_sha256, &[&psp.measurement]);
    let mut ha = Replicas::start(
        &pki,
        &policy,
        dir.path(),
        2,
        &["--token-ttl-secs", TTL_SECS],
    );

    // OpenBao is configured while r0 is out of rotation: its OIDC
    // discovery (and JWKS) can only come from r1 through the proxy.
    if let Err(e) = ha.proxy.set_enabled("r0", false) {
        return Verdict::broken(format!("HAProxy: {e}"));
    }
    let bao = OpenBao::start(&pki);
    bao.setup_at(
        &ha.url,
        &pki,
        &[&psp.measurement],
        "sim",
        &[
            ("ENCLAVE_SEED_TRANSCRIPTION_API_KEY", TRANSCRIPTION_KEY),
            ("ENCLAVE_SEED_RETELL_API_KEY", RETELL_KEY),
            ("ENCLAVE_SEED_PII_PEPPER", PEPPER),
        ],
    );
    // A token straight from r0 (out of rotation): OpenBao must accept it.
    let tls = client_config(&pki.ca_pem());
    let r0_token = exchange(
        &tls,
        ha.replicas[0].port,
        &psp.socket,
        &enclave_spki(),
        Duration::from_secs(10),
    );
    let r0_login = match &r0_token {
        Ok(x) => bao
            .cli(&[
                "write",
                "auth/enclave-attest/login",
                &format!("jwt={}", x.token.token),
            ])
            .status()
            .is_ok_and(|s| s.success()),
        Err(_) => false,
    };
    if let Err(e) = ha.proxy.set_enabled("r0", true) {
        return Verdict::broken(format!("HAProxy: {e}"));
    }

    let ca = pki.ca_pem();
    let config = |d: &TempDir| {
        format!(
            "[host]\nready = \"unix://{}\"\ncontrol = \"tcp://127.0.0.1:0\"\nconnect_timeout_ms = 10000\n\n\
             [tee]\nsource = \"sim\"\nsim_psp = \"unix://{}\"\ntimeout_ms = 10000\n\n\
             [verifier]\naddr = \"tcp://127.0.0.1:{}\"\nserver_name = \"verifier.enclave.local\"\nca = \"\"\"\n{ca}\"\"\"\n\n\
             [vault]\naddr = \"tcp://127.0.0.1:{}\"\nserver_name = \"vault.enclave.local\"\nca = \"\"\"\n{}\"\"\"\n",
            d.path().join("ready.sock").display(),
            psp.socket.display(),
            ha.proxy.port,
            bao.port,
            bao.ca_pem(),
        )
    };
    let running: Vec<(Guest, serde_json::Value)> = join(boot_many(GUESTS, config))
        .into_iter()
        .filter_map(|b| b.guest)
        .collect();
    if running.len() != GUESTS {
        return Verdict::broken(format!(
            "only {} of {GUESTS} guests booted through the proxy",
            running.len()
        ));
    }
    let status = |(g, r): &(Guest, serde_json::Value)| -> serde_json::Value {
        serde_json::from_str(&g.command(r, "status")).unwrap_or_default()
    };
    // Into the renewals: the kill lands while guests are mid-cycle.
    std::thread::sleep(Duration::from_secs(5));
    let before: Vec<u64> = running
        .iter()
        .map(|g| status(g)["renewals"].as_u64().unwrap_or(0))
        .collect();
    let sessions = |name: &str| {
        ha.proxy
            .servers()
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.name == name)
            .map_or(0, |s| s.sessions)
    };
    let (r0_before, r1_before) = (sessions("r0"), sessions("r1"));

    // A host-side client exchanging back to back through the proxy from
    // 1 s before the kill to 3 s after it: some of its exchanges are in
    // flight on r0 when it dies. Its longest wait between two successful
    // exchanges is the failover time a client sees.
    let probe = {
        let (tls, port, psp) = (tls.clone(), ha.proxy.port, psp.socket.clone());
        let until = Instant::now() + Duration::from_secs(4);
        std::thread::spawn(move || {
            let spki = enclave_spki();
            // Its start and end count as successes: a probe that never got
            // through after the kill has the gap from its last success to
            // its end.
            let (mut ok_at, mut failed) = (vec![Instant::now()], 0u32);
            while Instant::now() < until {
                match exchange(&tls, port, &psp, &spki, Duration::from_secs(2)) {
                    Ok(_) => ok_at.push(Instant::now()),
                    Err(_) => failed += 1,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            ok_at.push(Instant::now());
            (ok_at, failed)
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let killed = Instant::now();
    ha.replicas[0].proc.stop(); // SIGKILL
    let mut down_after = None;
    while killed.elapsed() < AFTER_KILL {
        if down_after.is_none()
            && ha.proxy.servers().is_ok_and(|s| {
                s.iter()
                    .any(|s| s.name == "r0" && s.status.starts_with("DOWN"))
            })
        {
            down_after = Some(killed.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let r1_after = sessions("r1").saturating_sub(r1_before);
    let (ok_at, probe_failed) = probe.join().unwrap_or_default();
    let probe_gap = ok_at
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(Duration::MAX);
    // Its real successes after the kill (not its end mark).
    let probe_after = ok_at
        .iter()
        .skip(1)
        .take(ok_at.len().saturating_sub(2))
        .filter(|t| **t > killed)
        .count();

    let mut withdrawn = 0;
    let mut renewed_after = Vec::new();
    let mut retries = 0;
    for (g, b) in running.iter().zip(&before) {
        let st = status(g);
        if st["lifecycle"]["withdrawals"].as_u64().unwrap_or(1) > 0
            || st["lifecycle"]["trusted"] != true
        {
            withdrawn += 1;
        }
        renewed_after.push(st["renewals"].as_u64().unwrap_or(0).saturating_sub(*b));
        retries +=
            g.0.logs()
                .lines()
                .filter(|l| l.contains("attestation attempt failed; retrying"))
                .count();
    }
    let fewest = renewed_after.iter().copied().min().unwrap_or(0);
    let total: u64 = renewed_after.iter().sum();
    let figure = format!(
        "r0 SIGKILLed with {GUESTS} guests renewing every 3-4.5 s (r0/r1 had taken {r0_before}/{r1_before} connections): {withdrawn} withdrew; {total} renewals in the {} s after the kill (each guest >= {fewest}), {r1_after} connections to r1; HAProxy marked r0 down {}; {retries} guest retries; a client exchanging back to back through the proxy: {probe_failed} failed, {probe_after} ok after the kill, longest gap {:.2} s; OpenBao {} a token from r0 with discovery through r1{}",
        AFTER_KILL.as_secs(),
        down_after.map_or("never".into(), |d| format!("{:.2} s after the kill", d.as_secs_f64())),
        probe_gap.as_secs_f64(),
        if r0_login { "accepted" } else { "REFUSED" },
        match &r0_token {
            Err(e) => format!(" (no token from r0: {e})"),
            Ok(_) => String::new(),
        },
    );
    Verdict::judge(
        withdrawn == 0
            && fewest >= 2
            && r0_before > 0
            && r1_before > 0
            && down_after.is_some()
            && probe_after > 0
            && probe_gap <= PROBE_GAP
            && r0_login,
        figure,
    )
}
