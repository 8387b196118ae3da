//! `hostile`: the adversarial suite. Each attack is something the host can
//! do to an enclave-init guest (stall, drip, replay, pin, read, fake),
//! mounted for real against real parts (the guest in process mode or in
//! QEMU, the verifier, OpenBao, the proxy), and judged by a figure:
//!
//! ```text
//! pin-control: held (2 renewals under the pin; 0.00 s served past expiry)
//! ```
//!
//! Usage: `hostile [--jobs N] [--list] [NAME…]` (all attacks by default).
//! Exit status 0 only if every attack held.
//!
//! Each attack runs in its own child process (`hostile --run NAME`) in its
//! own process group, so that its budget is enforced by killing the whole
//! group (the guest, verifier, OpenBao and relays it started die with it):
//! an attack that overruns its budget is `broken (budget exceeded)`, never a
//! hung suite. Attacks that share nothing run in parallel (`--jobs`);
//! the ones marked exclusive run alone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a broken attack"
)]

mod attacks;
mod rig;

use enclave_tests::children::SpawnDying;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What an attack concluded.
pub struct Verdict {
    /// Whether the guarantee held.
    pub held: bool,
    /// The figure that shows it (what was measured).
    pub figure: String,
}

impl Verdict {
    pub fn held(figure: impl Into<String>) -> Verdict {
        Verdict {
            held: true,
            figure: figure.into(),
        }
    }
    pub fn broken(figure: impl Into<String>) -> Verdict {
        Verdict {
            held: false,
            figure: figure.into(),
        }
    }
    /// Held when `ok`, with the same figure either way.
    pub fn judge(ok: bool, figure: impl Into<String>) -> Verdict {
        Verdict {
            held: ok,
            figure: figure.into(),
        }
    }
}

/// One attack of the suite.
pub struct Attack {
    /// Its name on the command line and in the table.
    pub name: &'static str,
    /// The guarantee it tries to break, in one line.
    pub claim: &'static str,
    /// Wall-clock budget; past it the attack is killed and counts as broken.
    pub budget: Duration,
    /// Needs the machine to itself (floods, fleets, QEMU).
    pub exclusive: bool,
    /// Mounts the attack and judges the outcome.
    pub run: fn() -> Verdict,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--run") {
        let name = args.get(1).cloned().unwrap_or_default();
        std::process::exit(run_one(&name));
    }
    let mut jobs = std::env::var("HOSTILE_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2usize);
    let mut names = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--jobs" => jobs = it.next().and_then(|v| v.parse().ok()).unwrap_or(jobs),
            "--list" => {
                for a in attacks::ALL {
                    println!(
                        "{:<22} {:>3} s{}  {}",
                        a.name,
                        a.budget.as_secs(),
                        if a.exclusive { " (alone)" } else { "" },
                        a.claim
                    );
                }
                return;
            }
            "-h" | "--help" => {
                println!("usage: hostile [--jobs N] [--list] [NAME…]");
                return;
            }
            _ => names.push(a),
        }
    }
    let selected: Vec<&'static Attack> = if names.is_empty() {
        attacks::ALL.iter().collect()
    } else {
        let mut v = Vec::new();
        for n in &names {
            match attacks::ALL.iter().find(|a| a.name == n) {
                Some(a) => v.push(a),
                None => {
                    eprintln!("hostile: no attack named {n:?} (see --list)");
                    std::process::exit(2);
                }
            }
        }
        v
    };
    std::process::exit(run_all(&selected, jobs.max(1)));
}

/// Runs the selected attacks, `jobs` at a time (exclusive ones alone),
/// printing each line as it finishes; the exit status.
fn run_all(selected: &[&'static Attack], jobs: usize) -> i32 {
    let started = Instant::now();
    let (shared, alone): (Vec<_>, Vec<_>) = selected.iter().partition(|a| !a.exclusive);
    let mut results: Vec<(&'static str, Verdict, Duration)> = Vec::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut queue = shared.into_iter();
    let mut running = 0;
    loop {
        while running < jobs {
            let Some(a) = queue.next() else { break };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let v = spawn_attack(a);
                let _ = tx.send((a.name, v, t.elapsed()));
            });
            running += 1;
        }
        if running == 0 {
            break;
        }
        let r = rx.recv().unwrap();
        print_line(r.0, &r.1, r.2);
        results.push(r);
        running -= 1;
    }
    for a in alone {
        let t = Instant::now();
        let v = spawn_attack(a);
        print_line(a.name, &v, t.elapsed());
        results.push((a.name, v, t.elapsed()));
    }
    let broken = results.iter().filter(|r| !r.1.held).count();
    eprintln!(
        "hostile: {} attacks, {} held, {} broken, {:.0} s",
        results.len(),
        results.len() - broken,
        broken,
        started.elapsed().as_secs_f64()
    );
    i32::from(broken > 0)
}

fn print_line(name: &str, v: &Verdict, took: Duration) {
    println!(
        "{name}: {} ({})",
        if v.held { "held" } else { "broken" },
        v.figure
    );
    eprintln!("hostile: {name} took {:.1} s", took.as_secs_f64());
}

/// An attack's budget: its own, or `HOSTILE_BUDGET_SECS` when that is
/// larger (the long forms in the benchmarks, e.g. `scripts/bench-fleet`);
/// never smaller, so the suite's budgets cannot be tightened by mistake.
fn budget_of(a: &Attack) -> Duration {
    let over = std::env::var("HOSTILE_BUDGET_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    over.map_or(a.budget, |o| o.max(a.budget))
}

/// Runs one attack in a child process in its own process group, killing
/// the group at the budget.
fn spawn_attack(a: &Attack) -> Verdict {
    let exe = std::env::current_exe().unwrap();
    let mut child = match Command::new(exe)
        .args(["--run", a.name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn_dying()
    {
        Ok(c) => c,
        Err(e) => return Verdict::broken(format!("cannot start: {e}")),
    };
    let pgid = child.id();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let name = a.name;
    let err_thread = std::thread::spawn(move || {
        let mut tail = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if std::env::var_os("HOSTILE_VERBOSE").is_some() {
                eprintln!("[{name}] {line}");
            }
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        tail
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("VERDICT ") {
                let _ = tx.send(rest.to_owned());
            }
        }
    });
    let budget = budget_of(a);
    let verdict = rx.recv_timeout(budget);
    // Whatever happened, the attack's whole process group goes.
    kill_group(pgid);
    let _ = child.wait();
    let tail = err_thread.join().unwrap_or_default();
    match verdict {
        Ok(line) => match line.split_once(' ') {
            Some(("held", fig)) => Verdict::held(fig),
            Some(("broken", fig)) => Verdict::broken(fig),
            _ => Verdict::broken(format!("bad verdict line {line:?}")),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            // Where it was when killed: its last lines, for the log.
            for line in &tail {
                eprintln!("[{}] {line}", a.name);
            }
            Verdict::broken(format!(
                "budget of {} s exceeded; last: {}",
                budget.as_secs(),
                tail.last().map(String::as_str).unwrap_or("no output")
            ))
        }
        Err(_) => Verdict::broken(format!(
            "the attack crashed: {}",
            tail.last().map(String::as_str).unwrap_or("no output")
        )),
    }
}

fn kill_group(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid) {
        // The group is the attack's own (process_group(0) above).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
    }
}

/// Child side: runs the attack, prints `VERDICT held|broken FIGURE`.
fn run_one(name: &str) -> i32 {
    let Some(a) = attacks::ALL.iter().find(|a| a.name == name) else {
        eprintln!("no attack {name:?}");
        return 2;
    };
    let v = (a.run)();
    println!(
        "VERDICT {} {}",
        if v.held { "held" } else { "broken" },
        v.figure
    );
    0
}
