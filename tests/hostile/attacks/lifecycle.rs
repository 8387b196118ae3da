//! Attacks on the trust deadline: the host stalls what it can and keeps
//! asking for service after trust has ended.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::rig::{self, Options, Rig};

use crate::Verdict;

/// The host holds the guest's control channel (connections that drip one
/// byte a second and never finish a command line) for the guest's whole
/// life. Phase 1: the verifier is reachable, so the guest must keep
/// renewing. Phase 2: the host also cuts the verifier path; trust must end
/// at the deadline: the figure is how long calls were still answered
/// after it (≤ 1 s to hold).
pub fn pin_control() -> Verdict {
    let rig = Rig::new(Options::default());
    let (guest, report, client) = rig.guest("");
    let control = report["control"]
        .as_str()
        .unwrap()
        .strip_prefix("tcp://")
        .unwrap()
        .to_owned();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pins: Vec<_> = (0..4)
        .map(|_| {
            let (addr, stop) = (control.clone(), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(mut s) = TcpStream::connect(&addr) else {
                        continue;
                    };
                    while !stop.load(std::sync::atomic::Ordering::Relaxed)
                        && s.write_all(b"p").is_ok()
                    {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            })
        })
        .collect();

    // Phase 1: renewals go on under the pin.
    let renewals_at = |c| {
        rig::health(c)
            .map(|(_, h)| h["attestation"]["renewals"].as_u64().unwrap_or(0))
            .unwrap_or(0)
    };
    let phase1_end = Instant::now() + Duration::from_secs(14);
    let mut renewals = 0;
    while Instant::now() < phase1_end && renewals < 1 {
        std::thread::sleep(Duration::from_millis(500));
        renewals = renewals_at(&client);
    }

    // Phase 2: the verifier path is cut too; trust must end at its deadline.
    rig.to_verifier.set(rig::Mode::Cut);
    let watched = rig::watch_trust_end(&client, Duration::from_secs(25), "pin");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in pins {
        let _ = p.join();
    }
    drop(guest);
    let Some((past, _)) = watched else {
        return Verdict::broken(format!(
            "{renewals} renewal(s) under the pin; trust never ended after the verifier was cut"
        ));
    };
    let figure = format!("{renewals} renewal(s) under the pin; {past:.2} s served past expiry");
    Verdict::judge(renewals >= 1 && past <= 1.0, figure)
}

/// Short attempts and margins: a deadline that holds at 4 s holds at 30 s.
pub const SHORT: &str = "\n[lifecycle]\nattempt_timeout_ms = 4000\nrenew_margin_ms = 500\n";

/// The host's relay to the verifier accepts every connection and never
/// answers (stall), then forwards but drips every answer one byte a
/// second (drip). Renewal cannot succeed; trust must still end at its
/// deadline, and the guest must re-attest once the path works again.
pub fn stall_verifier() -> Verdict {
    stall_peer("verifier")
}

/// The same on the path to Vault: attestation succeeds, the Vault login
/// never completes.
pub fn stall_vault() -> Verdict {
    stall_peer("vault")
}

fn stall_peer(which: &str) -> Verdict {
    let rig = Rig::new(Options::default());
    let (guest, _report, client) = rig.guest(SHORT);
    let relay = if which == "verifier" {
        &rig.to_verifier
    } else {
        &rig.to_vault
    };
    let mut figures = Vec::new();
    let mut held = true;
    for mode in [rig::Mode::Stall, rig::Mode::Drip] {
        if rig::wait_health(&client, 20, |h| h["attestation"]["valid"] == true).is_none() {
            return Verdict::broken(format!(
                "{mode:?}: the guest was not attested to begin with"
            ));
        }
        relay.set(mode);
        let Some((past, _)) = rig::watch_trust_end(&client, Duration::from_secs(25), "stall")
        else {
            return Verdict::broken(format!("{mode:?}: trust never ended"));
        };
        let withdrawn = rig::health(&client).is_some_and(|(status, h)| {
            status == 503 && h["lifecycle"]["withdrawn"]["kind"] == "deadline"
        });
        eprintln!("{mode:?}: {past:.2} s past expiry, withdrawn {withdrawn}");
        relay.set(rig::Mode::Pass);
        let t = Instant::now();
        let back = rig::wait_health(&client, 25, |h| h["attestation"]["valid"] == true).is_some();
        figures.push(format!(
            "{}: {past:.2} s served past expiry, {}, {}",
            if mode == rig::Mode::Stall {
                "stall"
            } else {
                "drip"
            },
            if withdrawn {
                "withdrawn at the deadline"
            } else {
                "NOT withdrawn"
            },
            if back {
                format!(
                    "re-attested {:.1} s after the path returned",
                    t.elapsed().as_secs_f64()
                )
            } else {
                "never re-attested".to_owned()
            }
        ));
        held &= past <= 1.0 && withdrawn && back;
    }
    drop(guest);
    Verdict::judge(held, figures.join("; "))
}

/// The host's relay to the transcription upstream drips its answer one
/// byte a second. The call must end at the upstream's deadline as a whole
/// (not per read), with 504, and the worker must be free again.
pub fn stall_upstream() -> Verdict {
    let rig = Rig::new(Options {
        token_ttl_secs: 60,
        ..Options::default()
    });
    let gdir = enclave_tests::TempDir::new("hguest");
    let config = rig
        .guest_config(&gdir, "")
        .replace("[transcription]\n", "[transcription]\ntimeout_ms = 3000\n");
    let (guest, report) = enclave_tests::process::boot(gdir, &config).ready();
    let addr = report["call_service"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let client = enclave_tests::stack::platform_client(&rig.pki, &addr, &rig.bao.serving_ca_pem());
    let (ok, _) = rig::call(&client, "warm-up");
    rig.to_upstream.set(rig::Mode::Drip);
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let c = client.clone();
            std::thread::spawn(move || rig::call(&c, &format!("drip-{i}")))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Meanwhile the service still answers health at once.
    let t = Instant::now();
    let health_ok = rig::health(&client).is_some();
    let health_ms = t.elapsed().as_millis();
    let results: Vec<(u16, Duration)> = calls
        .into_iter()
        .map(|h| h.join().unwrap_or((0, Duration::ZERO)))
        .collect();
    rig.to_upstream.set(rig::Mode::Pass);
    let (after, _) = rig::call(&client, "after");
    drop(guest);
    let slowest = results
        .iter()
        .map(|r| r.1)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let all_504 = results.iter().all(|r| r.0 == 504);
    let figure = format!(
        "dripped calls answered {:?} within {slowest:.1} s (upstream deadline 3 s); health in {health_ms} ms meanwhile; next call {after} (warm-up {ok})",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    Verdict::judge(
        ok == 200 && all_504 && slowest < 4.5 && health_ok && health_ms < 2000 && after == 200,
        figure,
    )
}

/// The host replays what it can get hold of: an attest request (its own,
/// made with the simulated PSP it runs in process mode) on the same
/// connection and on another one, and a token after its expiry. Held: the
/// verifier refuses both replays, and OpenBao refuses the expired token
/// (short leeways).
pub fn replay_token() -> Verdict {
    use rig::host_client as hc;
    let rig = Rig::new(Options {
        token_ttl_secs: 3,
        ..Options::default()
    });
    let ca = rig.pki.ca_pem();
    let spki = hc::spki();
    let mut tls = hc::connect(&ca, rig.verifier.port);
    let request = hc::attest_request(&mut tls, &rig.psp.socket, &spki);
    let first = hc::post(&mut tls, "/v1/attest", &request);
    if first.status != 200 {
        return Verdict::broken(format!(
            "the host's own first attestation failed ({}): the replay test would be vacuous",
            first.status
        ));
    }
    let token: serde_json::Value = serde_json::from_slice(&first.body).unwrap_or_default();
    let jwt = token["token"].as_str().unwrap_or_default().to_owned();
    let exp = token["expires_at"].as_u64().unwrap_or(0) as f64;
    let same = hc::post(&mut tls, "/v1/attest", &request);
    let mut other = hc::connect(&ca, rig.verifier.port);
    let elsewhere = hc::post(&mut other, "/v1/attest", &request);
    let login = |jwt: &str| {
        rig.bao
            .cli(&[
                "write",
                "-format=json",
                "auth/enclave-attest/login",
                "role=enclave-agent",
                &format!("jwt={jwt}"),
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    // Within its life the token logs in: it is a bearer credential (the
    // certificate login mode removes that; see steal-token).
    let fresh = login(&jwt);
    while rig::unix_now() < exp + 1.0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let late = login(&jwt);
    let late_by = rig::unix_now() - exp;
    let figure = format!(
        "replayed attest: same connection {} {}, other connection {} {}; token logs in within its life: {fresh}; {late_by:.1} s after exp: {}",
        same.status,
        hc::denied_check(&same).unwrap_or_default(),
        elsewhere.status,
        hc::denied_check(&elsewhere).unwrap_or_default(),
        if late { "ACCEPTED" } else { "refused" }
    );
    Verdict::judge(
        same.status == 403 && elsewhere.status == 403 && fresh && !late,
        figure,
    )
}

/// After provisioning, no Vault token of the guest is left alive (it
/// revokes its own: renewal is by re-attestation), and revoking every
/// token of the auth method does not stop renewal.
pub fn revoked_token() -> Verdict {
    let rig = Rig::new(Options {
        token_ttl_secs: 20,
        ..Options::default()
    });
    let (guest, _report, client) = rig.guest("");
    let live = live_enclave_tokens(&rig);
    let revoked = rig
        .bao
        .cli(&["token", "revoke", "-mode=path", "auth/enclave-attest/"])
        .status()
        .is_ok_and(|s| s.success());
    let renewed = rig::wait_health(&client, 25, |h| {
        h["attestation"]["renewals"].as_u64().unwrap_or(0) >= 1 && h["attestation"]["valid"] == true
    })
    .is_some();
    let live_after = live_enclave_tokens(&rig);
    drop(guest);
    let figure = format!("live guest tokens after provisioning: {live:?}, after a renewal: {live_after:?}; renewed after the operator revoked the auth path: {renewed}");
    Verdict::judge(
        live == Some(0) && live_after == Some(0) && revoked && renewed,
        figure,
    )
}

/// Tokens alive in OpenBao that came from the enclave's auth method.
fn live_enclave_tokens(rig: &Rig) -> Option<usize> {
    let out = rig
        .bao
        .cli(&["list", "-format=json", "auth/token/accessors"])
        .stdout(std::process::Stdio::piped())
        .output()
        .ok()?;
    let accessors: Vec<String> = serde_json::from_slice(&out.stdout).ok()?;
    let mut n = 0;
    for a in accessors {
        let out = rig
            .bao
            .cli(&[
                "write",
                "-format=json",
                "auth/token/lookup-accessor",
                &format!("accessor={a}"),
            ])
            .stdout(std::process::Stdio::piped())
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["data"]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("auth/enclave-attest/"))
        {
            n += 1;
        }
    }
    Some(n)
}
