//! Attacks on a fleet's routine: a blip on the verifier or Vault path, a
//! verifier restart, and a herd booting together. A blip is retried, a
//! denial is final at once, and no fleet moves in lockstep.

use std::time::{Duration, Instant};

use enclave_tests::process::{boot, Boot, Guest};
use enclave_tests::stack::SimPsp;
use enclave_tests::TempDir;

use crate::rig::{self, Options, Rig};
use crate::Verdict;

/// How a boot went: ready (with the guest) or not, and when.
pub(super) struct Booted {
    pub(super) guest: Option<(Guest, serde_json::Value)>,
    pub(super) started: Instant,
    pub(super) took: Duration,
    pub(super) stderr: String,
}

/// Boots `n` guests at once with `config(dir)`.
pub(super) fn boot_many(
    n: usize,
    config: impl Fn(&TempDir) -> String + Sync,
) -> Vec<std::thread::JoinHandle<Booted>> {
    (0..n)
        .map(|_| {
            let dir = TempDir::new("fleet");
            let cfg = config(&dir);
            std::thread::spawn(move || {
                let t = Instant::now();
                match boot(dir, &cfg) {
                    Boot::Ready(g, r) => Booted {
                        guest: Some((g, r)),
                        started: t,
                        took: t.elapsed(),
                        stderr: String::new(),
                    },
                    Boot::Failed { stderr, .. } => Booted {
                        guest: None,
                        started: t,
                        took: t.elapsed(),
                        stderr,
                    },
                }
            })
        })
        .collect()
}

pub(super) fn join(handles: Vec<std::thread::JoinHandle<Booted>>) -> Vec<Booted> {
    handles
        .into_iter()
        .map(|h| {
            h.join().unwrap_or(Booted {
                guest: None,
                started: Instant::now(),
                took: Duration::ZERO,
                stderr: "boot thread failed".into(),
            })
        })
        .collect()
}

/// Five guests boot while, for the first 2 s, the host's relay accepts and
/// closes every connection to the verifier (or to Vault). All must attest
/// within 10 s. And a guest the policy refuses must still power off at
/// once after the denial: retries never turn a refusal into a stall.
pub fn verifier_blip() -> Verdict {
    blip("verifier")
}

/// The same blip on the path to Vault.
pub fn vault_blip() -> Verdict {
    blip("vault")
}

fn blip(which: &str) -> Verdict {
    let rig = Rig::new(Options {
        token_ttl_secs: 20,
        ..Options::default()
    });
    let relay = if which == "verifier" {
        &rig.to_verifier
    } else {
        &rig.to_vault
    };
    relay.set(rig::Mode::Cut);
    let handles = boot_many(5, |d| rig.plain_config(d, ""));
    std::thread::sleep(Duration::from_secs(2));
    relay.set(rig::Mode::Pass);
    let booted = join(handles);
    let within = booted
        .iter()
        .filter(|b| b.guest.is_some() && b.took <= Duration::from_secs(10))
        .count();
    let slowest = booted
        .iter()
        .map(|b| b.took)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let failed: Vec<&str> = booted
        .iter()
        .filter(|b| b.guest.is_none())
        .map(|b| b.stderr.lines().last().unwrap_or(""))
        .collect();

    // A guest whose measurement the policy refuses: denied, then off.
    let other = SimPsp::start(
        &rig.dir.path().join("other-psp.sock"),
        &["--measurement", &"d4".repeat(48)],
    );
    let dir = TempDir::new("refused");
    let cfg = rig.plain_config(&dir, "").replace(
        &rig.psp.socket.display().to_string(),
        &other.socket.display().to_string(),
    );
    let t = Instant::now();
    let refused = match boot(dir, &cfg) {
        Boot::Ready(..) => None,
        Boot::Failed { stderr, .. } => {
            Some((t.elapsed(), stderr.contains("verifier denied the evidence")))
        }
    };
    let (off_after, denied) = refused.map_or((f64::INFINITY, false), |(d, denied)| {
        (d.as_secs_f64(), denied)
    });
    let figure = format!(
        "{within}/5 guests attested within 10 s of a 2 s {which} blip (slowest {slowest:.1} s){}; a refused guest powered off {off_after:.1} s after it started{}",
        if failed.is_empty() { String::new() } else { format!(", failures: {failed:?}") },
        if denied { " (denied)" } else { " (NOT by a denial)" },
    );
    Verdict::judge(within == 5 && denied && off_after < 5.0, figure)
}

/// Guests are renewing when the verifier is killed and started again on
/// the same address (behind the host's relay), and two more boot during
/// the outage. No guest may power off or withdraw for an outage shorter
/// than its retry deadline; the new ones are ready soon after the return.
pub fn verifier_restart() -> Verdict {
    let mut rig = Rig::new(Options {
        token_ttl_secs: 10,
        ..Options::default()
    });
    let first = join(boot_many(3, |d| rig.plain_config(d, "")));
    let running: Vec<(Guest, serde_json::Value)> =
        first.into_iter().filter_map(|b| b.guest).collect();
    if running.len() != 3 {
        return Verdict::broken(format!(
            "only {} of 3 guests booted before the restart",
            running.len()
        ));
    }
    // Into the renewal window (50-75 % of 10 s), then the outage.
    std::thread::sleep(Duration::from_secs(4));
    let t_kill = Instant::now();
    let late = {
        rig.verifier.proc.stop();
        let late = boot_many(2, |d| rig.plain_config(d, ""));
        rig.restart_verifier(Duration::from_secs(2));
        late
    };
    let back_at = t_kill.elapsed();
    let late = join(late);
    let late_ready = late.iter().filter(|b| b.guest.is_some()).count();
    let after_return = late
        .iter()
        .map(|b| b.took.saturating_sub(back_at))
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    // Let every running guest go through at least one renewal.
    std::thread::sleep(Duration::from_secs(8));
    let mut withdrawn = 0;
    let mut renewed = 0;
    for (g, r) in &running {
        let st: serde_json::Value =
            serde_json::from_str(&g.command(r, "status")).unwrap_or_default();
        if st["lifecycle"]["withdrawals"].as_u64().unwrap_or(1) > 0
            || st["lifecycle"]["trusted"] != true
        {
            withdrawn += 1;
        }
        if st["renewals"].as_u64().unwrap_or(0) >= 1 {
            renewed += 1;
        }
    }
    let figure = format!(
        "outage {:.1} s: {withdrawn} of 3 running guests withdrew, {renewed}/3 renewed; {late_ready}/2 guests booting during it ready {after_return:.1} s after the verifier returned",
        back_at.as_secs_f64()
    );
    Verdict::judge(withdrawn == 0 && renewed == 3 && late_ready == 2, figure)
}

/// Many guests boot together against one verifier and one OpenBao, with a
/// verifier restart in the middle of their boots. Figures: how many got
/// ready, the slowest boot, the verifier's peak concurrent connections,
/// and where in their lifetime the guests renewed over three renewals
/// (they must spread over the window, not move in lockstep).
///
/// The suite runs the short form (50 guests, inside its 60 s budget on two
/// cores); `scripts/bench-fleet` runs the long form (200 or more) through
/// `HOSTILE_HERD_GUESTS`.
pub fn herd() -> Verdict {
    let n: usize = std::env::var("HOSTILE_HERD_GUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut rig = Rig::new(Options {
        token_ttl_secs: 10,
        ..Options::default()
    });
    // Renewals are read from the lifecycle's lines, which are logged at
    // info and are never rate-limited.
    // Half the fleet starts, then the other half, and the verifier goes
    // down (for 1 s) right as the second half begins to attest: those
    // boots must ride out the restart.
    let mut handles = boot_many(n / 2, |d| rig.plain_config(d, ""));
    std::thread::sleep(Duration::from_millis(300));
    handles.extend(boot_many(n - n / 2, |d| rig.plain_config(d, "")));
    let down = Instant::now();
    rig.restart_verifier(Duration::from_secs(1));
    let up = Instant::now();
    let booted = join(handles);
    // Boots that were under way while the verifier was down.
    let spanned = booted
        .iter()
        .filter(|b| b.started <= up && b.started + b.took >= down)
        .count();
    for b in booted.iter().filter(|b| b.guest.is_none()).take(3) {
        eprintln!(
            "herd: a guest did not get ready: {}",
            b.stderr
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let ready: Vec<&(Guest, serde_json::Value)> =
        booted.iter().filter_map(|b| b.guest.as_ref()).collect();
    let slowest = booted
        .iter()
        .map(|b| b.took)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    // Three renewals at 50-75 % of 10 s: within about 25 s of the last boot.
    std::thread::sleep(Duration::from_secs(24));
    let mut fractions = Vec::new();
    let mut rounds: [Vec<f64>; 3] = Default::default();
    for (g, _) in &ready {
        let logs = g.logs();
        for (k, line) in logs
            .lines()
            .filter(|l| l.contains("msg=\"next re-attestation scheduled\""))
            .take(3)
            .enumerate()
        {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            if let (Some(t), Some(in_ms), Some(life)) =
                (field("t="), field("in_ms="), field("lifetime_ms="))
            {
                if life > 0.0 {
                    fractions.push(in_ms / life);
                }
                rounds[k].push(t + in_ms / 1000.0);
            }
        }
    }
    let spread = |v: &[f64]| {
        v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
            - v.iter().cloned().fold(f64::INFINITY, f64::min)
    };
    let (lo, hi) = (
        fractions.iter().cloned().fold(f64::INFINITY, f64::min),
        fractions.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    let spreads: Vec<String> = rounds
        .iter()
        .map(|r| {
            if r.len() > 1 {
                format!("{:.1} s", spread(r))
            } else {
                "-".into()
            }
        })
        .collect();
    let figure = format!(
        "{}/{n} ready (slowest {slowest:.1} s) through a verifier restart ({spanned} boots under way during the 1 s outage); peak {} concurrent verifier connections; renewals at {:.0}-{:.0} % of the lifetime (spread of the first three rounds: {})",
        ready.len(),
        rig.to_verifier.peak(),
        lo * 100.0,
        hi * 100.0,
        spreads.join(", ")
    );
    Verdict::judge(
        ready.len() == n && spanned > 0 && lo >= 0.49 && hi <= 0.76 && hi - lo > 0.1,
        figure,
    )
}

/// A verifier at its connection limit sheds load with `503` and
/// `Retry-After` instead of closing connections: 12 guests boot together
/// against a verifier that serves 2 connections at a time. All must get
/// ready, and the shed guests must have waited as told (their retries
/// logged with the verifier's 503), not hammered it.
pub fn verifier_shed() -> Verdict {
    let rig = Rig::new(Options {
        token_ttl_secs: 20,
        // No accept queue: past its 2 workers the verifier sheds at once.
        verifier_args: [
            "--max-connections",
            "2",
            "--accept-queue",
            "0",
            "--shed-retry-after-secs",
            "1",
        ]
        .map(String::from)
        .to_vec(),
    });
    let n = 12;
    let booted = join(boot_many(n, |d| rig.plain_config(d, "")));
    let ready: Vec<&Guest> = booted
        .iter()
        .filter_map(|b| b.guest.as_ref().map(|(g, _)| g))
        .collect();
    let slowest = booted
        .iter()
        .map(|b| b.took)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    // Retries that followed a 503 from the verifier, and their waits.
    let (mut told, mut waits) = (0, Vec::new());
    for g in &ready {
        for line in g
            .logs()
            .lines()
            .filter(|l| l.contains("attestation attempt failed; retrying") && l.contains("503"))
        {
            told += 1;
            if let Some(ms) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("retry_in_ms="))
                .and_then(|v| v.parse::<u64>().ok())
            {
                waits.push(ms);
            }
        }
    }
    let shortest = waits.iter().min().copied().unwrap_or(0);
    let figure = format!(
        "{}/{n} ready (slowest {slowest:.1} s) against a verifier serving 2 connections; {told} retries after its 503, the shortest wait {shortest} ms (Retry-After 1 s)",
        ready.len()
    );
    // Every wait after a 503 honoured its Retry-After (1 s, the last one
    // of a deadline may be cut short, which boot's 120 s never does here).
    Verdict::judge(ready.len() == n && told > 0 && shortest >= 1000, figure)
}
