//! The main job: the whole system on this machine. A development PKI, the
//! simulated PSP, the verifier, a real OpenBao configured by
//! scripts/openbao-setup, the host proxy; the image is built, its launch
//! measurement pinned in the verifier policy and the OpenBao role, and the
//! guest boots under QEMU, attests, logs in and holds its secrets; a sample
//! call goes through the proxy's ingress, then the health document, then
//! the VM powers off. The audit trail runs beside it: a real PostgreSQL,
//! the collector (`enclavectl audit serve`) storing the guest's records
//! (vsock port 9300, `[audit] collector` in the measured configuration)
//! and the verifier's decisions (`--audit`), and `enclavectl audit verify`
//! over what was stored once the VM is off. Each stage is printed as it starts and ends
//! ([`Stages`]), and the run ends with a summary.
//!
//!   demo-stack [--quiet] [--logs DIR]
//!
//! `--quiet`: the summary only (errors still go to stderr). The servers'
//! logs, the guest's console and the call's result are written to DIR
//! (default out/demo); scripts/demo sets `ENCLAVE_CHILD_LOGS` to it so the
//! servers' own lines go there too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use enclave_tests::audit_store::Collector;
use enclave_tests::postgres::Postgres;
use enclave_tests::qemu::{cmdline, Guest};
use enclave_tests::stack::{
    enclavectl, sim_policy, vm_config, vm_host_side, OpenBao, Pki, SimPsp, Verifier,
};
use enclave_tests::stages::Stages;
use enclave_tests::transcription::TranscriptionStandIn;
use enclave_tests::{build_image, kernel_dir, TempDir};

/// The guest's collector: host vsock port 9300 (the socket directory's
/// `vm.vsock_9300`, linked to the collector's socket).
const AUDIT_CONFIG: &str = "\n[audit]\ncollector = \"vsock://2:9300\"\n";

const STANDIN_KEY: &str = "demo-transcription-key";
const SAMPLE_TRANSCRIPT: &str = "Questa è una trascrizione di prova: il cliente chiede la consegna della spedizione SHP-1042 domani mattina.";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() {
    enclave_tests::one_line_panics("demo");
    let mut quiet = false;
    let mut logs = enclave_tests::repo_root().join("out/demo");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quiet" => quiet = true,
            "--logs" => logs = PathBuf::from(args.next().expect("--logs DIR")),
            _ => {
                eprintln!("demo: unknown argument {a} (usage: demo-stack [--quiet] [--logs DIR])");
                std::process::exit(2);
            }
        }
    }
    std::fs::create_dir_all(&logs).expect("cannot create the log directory");
    let mut stages = Stages::new(quiet);
    match run(&mut stages, quiet, &logs) {
        Ok(summary) => {
            println!("{summary}");
            println!(
                "stages: {} (total {:.1} s)",
                stages.timings(),
                stages.total().as_secs_f64()
            );
        }
        Err(e) => {
            eprintln!("demo: {e}; logs in {}", logs.display());
            std::process::exit(1);
        }
    }
}

/// What the summary reports.
struct Facts {
    tee: String,
    secrets: Vec<String>,
    call: String,
    health: String,
}

/// What `enclavectl audit verify` and the database say once the VM is off.
struct AuditFacts {
    records: i64,
    quarantined: i64,
    streams: i64,
    calls: i64,
    verdict: String,
}

fn run(stages: &mut Stages, quiet: bool, logs: &Path) -> Result<String, String> {
    let say = |s: String| {
        if !quiet {
            println!("    {s}");
        }
    };
    let dir = TempDir::new("demo");
    let pki = Pki::new();
    let img = TempDir::new("img");
    let (initrd, measurement) = stages.run("image", || {
        let initrd = build_image(img.path(), &vm_config(&pki, AUDIT_CONFIG), None);
        let kernel = std::fs::read(kernel_dir().join("vmlinuz")).map_err(|e| e.to_string())?;
        let image = std::fs::read(&initrd).map_err(|e| e.to_string())?;
        let m = hex(&measure::sim::sim_launch_digest(
            &kernel,
            &image,
            &cmdline(""),
        ));
        say(format!(
            "initramfs {} bytes, simulation launch measurement {m}",
            image.len()
        ));
        Ok((initrd, m))
    })?;
    let pg = stages.run("audit store", || {
        let pg = Postgres::start(false);
        say(format!(
            "PostgreSQL (pid {}) on {}",
            pg.pid(),
            pg.socket_dir().display()
        ));
        Ok(pg)
    })?;
    let collector_sock = dir.path().join("collector.sock");
    let collector = stages.run("collector", || {
        let c = Collector::start(&pg, &collector_sock, &pki.path("token-key.pk8"));
        say(format!(
            "enclavectl audit serve on unix://{} (trusts the verifier's key for its decisions)",
            c.socket.display()
        ));
        Ok(c)
    })?;
    let audit_flag = format!("unix://{}", collector.socket.display());
    let verifier = stages.run("verifier", || {
        let ark = SimPsp::start(
            &dir.path().join("probe.sock"),
            &["--measurement", &measurement],
        )
        .ark_sha256;
        let v = Verifier::start(
            &pki,
            &sim_policy(&ark, &[&measurement]),
            dir.path(),
            &["--audit", &audit_flag],
        );
        say(format!(
            "{} (its policy pins the measurement; its decisions go to the collector)",
            v.url
        ));
        Ok(v)
    })?;
    let save_verifier_log = |v: &Verifier| {
        let _ = std::fs::write(logs.join("verifier.log"), v.proc.output());
    };
    let bao = stages.run("OpenBao", || {
        let bao = OpenBao::start(&pki);
        bao.setup(
            &verifier,
            &pki,
            &[&measurement],
            "sim",
            &[("ENCLAVE_SEED_TRANSCRIPTION_API_KEY", STANDIN_KEY)],
        );
        say(format!(
            "{} configured by scripts/openbao-setup (its role pins the measurement)",
            bao.addr
        ));
        Ok(bao)
    })?;
    // The transcription API is a third-party SaaS: a local stand-in with its
    // published request and response shapes, checking the key it receives.
    let standin = TranscriptionStandIn::start(
        &pki.path("transcribe.pem"),
        &pki.path("transcribe-key.pem"),
        STANDIN_KEY,
        SAMPLE_TRANSCRIPT,
    );
    // The proxy (and the sim-psp the VM's evidence comes from) are started
    // by the guest harness just before QEMU, in its socket directory.
    let mut guest = Guest::boot_with(&initrd, "", |d| {
        let t = std::time::Instant::now();
        if !quiet {
            println!("==> proxy");
        }
        let keep = vm_host_side(d, &initrd, &verifier, &bao, standin.port);
        // The guest's connections to host port 9300 reach the collector.
        if let Err(e) = std::os::unix::fs::symlink(&collector.socket, d.join("vm.vsock_9300")) {
            eprintln!("demo: cannot link the collector's socket for the guest: {e}");
        }
        let _ = stages.record("proxy", t.elapsed(), Ok(()));
        if !quiet {
            println!("==> boot");
        }
        keep
    });
    let result = guest_stages(stages, &mut guest, &bao, &pki, &pg, logs, &say);
    save_verifier_log(&verifier);
    let _ = std::fs::write(logs.join("openbao.log"), bao.log());
    let _ = std::fs::write(logs.join("console.log"), guest.console());
    let facts = result?;
    let audit = stages.run("audit verify", || {
        let a = audit_facts(&pg, &pki, logs)?;
        say(format!(
            "{} records stored in {} streams, {} quarantined; {}",
            a.records, a.streams, a.quarantined, a.verdict
        ));
        Ok(a)
    })?;
    drop(collector);
    if !quiet {
        println!("--- guest console ---\n{}", guest.console());
    }
    let secrets = if facts.secrets.is_empty() {
        "none".to_owned()
    } else {
        facts.secrets.join(", ")
    };
    Ok(format!(
        "demo summary\n\
         ran: development PKI, sim-psp, verifier, OpenBao, proxy, transcription stand-in; the guest as PID 1 under QEMU (TCG)\n\
         attested: tee {}, launch measurement {}\n\
         secrets held by the guest (names only): {secrets}\n\
         call: {}\n\
         health: {}\n\
         audit trail: {} records stored in PostgreSQL ({} calls), {} streams (enclave and verifier), {} quarantined; enclavectl audit verify: {}\n\
         logs: {} (console.log, verifier.log, openbao.log, proxy.log, call.json, audit-verify.txt)",
        facts.tee,
        measurement,
        facts.call,
        facts.health,
        audit.records,
        audit.calls,
        audit.streams,
        audit.quarantined,
        audit.verdict,
        logs.display()
    ))
}

/// From QEMU's start to power-off: the stages the host sees from outside,
/// each ended by the guest's own console line or answer.
fn guest_stages(
    stages: &mut Stages,
    guest: &mut Guest,
    bao: &OpenBao,
    pki: &Pki,
    pg: &Postgres,
    logs: &Path,
    say: &dyn Fn(String),
) -> Result<Facts, String> {
    const BOOT: Duration = Duration::from_secs(300);
    // "boot" was announced when QEMU started; its end is the guest's own
    // record that set-up is done and its key made.
    let t = std::time::Instant::now();
    let booted = guest.wait_console(
        |l| l.contains("boot step done") && l.contains("step=key"),
        BOOT,
    );
    stages.record(
        "boot",
        t.elapsed(),
        booted.as_ref().map(|_| ()).map_err(Clone::clone),
    )?;
    stages.run("attest", || {
        let line = guest.wait_console(
            |l| l.contains("msg=attested") || l.contains("msg=\"attested\""),
            BOOT,
        )?;
        // The guest's own record: `tee=sim expires_at=… clock_drift_ms=…`.
        let fields: Vec<&str> = line
            .split_whitespace()
            .filter(|w| w.starts_with("tee=") || w.starts_with("clock_drift_ms="))
            .collect();
        say(format!(
            "the verifier accepted the evidence: {}",
            fields.join(" ")
        ));
        Ok(())
    })?;
    let (ready, secrets) = stages.run("secrets", || {
        guest.wait_console(|l| l.contains("secrets provisioned"), BOOT)?;
        let ready = guest.wait_ready(BOOT)?;
        // Names from the guest's console (`secret provisioned secret=NAME`),
        // never values: it logs none.
        let secrets: Vec<String> = guest
            .console()
            .lines()
            .filter(|l| l.contains("secret provisioned"))
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("secret=")))
            .map(|s| s.trim_matches('"').to_owned())
            .collect();
        say(format!(
            "{} secrets held in locked memory: {}",
            ready["secrets_provisioned"],
            secrets.join(", ")
        ));
        Ok((ready, secrets))
    })?;
    let call = stages.run("call", || {
        let c = sample_call(guest, bao, pki, logs)?;
        say(c.clone());
        Ok(c)
    })?;
    let health = stages.run("health", || {
        let h = enclavectl_call(guest, pki, &["call", "--health"])?;
        let v: serde_json::Value =
            serde_json::from_str(&h).map_err(|e| format!("health is not JSON: {e}: {h}"))?;
        let h = format!(
            "status {}, secrets provisioned {}",
            v["status"], v["enclave"]["secrets_provisioned"]
        );
        say(h.clone());
        Ok(h)
    })?;
    // The call's record is shipped asynchronously: wait until it is stored
    // before powering off, so the trail shows it.
    wait_stored(pg, "call", 1, Duration::from_secs(60))?;
    stages.run("poweroff", || {
        let answer = guest.command("poweroff")?;
        let status = guest.wait_exit(Duration::from_secs(60))?;
        if status.success() {
            say(format!("{answer}; QEMU exited cleanly"));
            Ok(())
        } else {
            Err(format!("QEMU exited with {status}"))
        }
    })?;
    Ok(Facts {
        tee: ready["attested"]["tee"]
            .as_str()
            .unwrap_or("none")
            .to_owned(),
        secrets,
        call,
        health,
    })
}

/// Runs `enclavectl ARGS` against the guest's call port through the
/// proxy's ingress with the platform's client certificate (mutual TLS);
/// its stdout.
fn enclavectl_call(guest: &Guest, pki: &Pki, args: &[&str]) -> Result<String, String> {
    let call_addr =
        std::fs::read_to_string(guest.dir().join("call.addr")).map_err(|e| e.to_string())?;
    let out = std::process::Command::new(enclavectl())
        .args(args)
        .arg("--addr")
        .arg(format!("tcp://{}", call_addr.trim()))
        .arg("--ca")
        .arg(guest.dir().join("serving-ca.pem"))
        .arg("--cert")
        .arg(pki.path("platform-client.pem"))
        .arg("--key")
        .arg(pki.path("platform-client-key.pem"))
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Processes a sample call the way a platform agent would: `enclavectl call
/// sample-call.wav --metadata ...` through the proxy's ingress. The full
/// result goes to `logs/call.json`; the line returned names its outcome
/// and sizes, not its content (the summary may end up in CI logs).
fn sample_call(guest: &Guest, bao: &OpenBao, pki: &Pki, logs: &Path) -> Result<String, String> {
    std::fs::write(guest.dir().join("serving-ca.pem"), bao.serving_ca_pem())
        .map_err(|e| e.to_string())?;
    let wav = guest.dir().join("sample-call.wav");
    std::fs::write(&wav, enclave_tests::https::wav("mulaw", 8000, 5.0))
        .map_err(|e| e.to_string())?;
    let metadata = r#"{"call_id":"demo-call-1","shipment_id":"SHP-1042","agent_type":"sara","caller_phone":"+39 333 123 4567","language":"it"}"#;
    let out = enclavectl_call(
        guest,
        pki,
        &["call", &wav.display().to_string(), "--metadata", metadata],
    )?;
    let _ = std::fs::write(logs.join("call.json"), &out);
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("the call's result is not JSON: {e}"))?;
    let transcript = v["transcript"].as_str().unwrap_or_default();
    Ok(format!(
        "call {} processed in {} ms: {} s of {} audio at {} Hz, transcript of {} characters by {}, caller hashed with {}",
        v["call_id"],
        v["processing_ms"],
        v["audio"]["duration_secs"],
        v["audio"]["encoding"].as_str().unwrap_or("?"),
        v["audio"]["sample_rate_hz"],
        transcript.chars().count(),
        v["transcript_model"].as_str().unwrap_or("?"),
        v["pii"]["caller_hash"]
            .as_str()
            .and_then(|h| h.split_once(':'))
            .map_or("?", |(alg, _)| alg),
    ))
}

/// Waits until `pg` holds at least `n` records of `kind`.
fn wait_stored(pg: &Postgres, kind: &str, n: i64, budget: Duration) -> Result<(), String> {
    let deadline = std::time::Instant::now() + budget;
    loop {
        let got: i64 = pg
            .client()
            .query_one(
                "SELECT count(*) FROM audit_records WHERE kind = $1",
                &[&kind],
            )
            .map_err(|e| e.to_string())?
            .get(0);
        if got >= n {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "the collector stored {got} {kind} records, not {n}, within {} s",
                budget.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Counts what the collector stored and runs `enclavectl audit verify`
/// (its report to `logs/audit-verify.txt`).
fn audit_facts(pg: &Postgres, pki: &Pki, logs: &Path) -> Result<AuditFacts, String> {
    let mut db = pg.client();
    let mut count = |q: &str| -> Result<i64, String> {
        db.query_one(q, &[])
            .map(|r| r.get::<_, i64>(0))
            .map_err(|e| format!("{q}: {e}"))
    };
    let records = count("SELECT count(*) FROM audit_records")?;
    let calls = count("SELECT count(*) FROM audit_records WHERE kind = 'call'")?;
    let streams = count("SELECT count(DISTINCT stream) FROM audit_records")?;
    let quarantined = count("SELECT count(*) FROM audit_quarantine")?;
    let (ok, report) = enclave_tests::audit_store::verify(pg, &pki.path("token-key.pk8"), None);
    let _ = std::fs::write(logs.join("audit-verify.txt"), &report);
    let findings = report.lines().filter(|l| l.contains("FINDING ")).count();
    let verdict = if ok {
        "clean".to_owned()
    } else {
        format!("{findings} findings (see audit-verify.txt)")
    };
    Ok(AuditFacts {
        records,
        quarantined,
        streams,
        calls,
        verdict,
    })
}
