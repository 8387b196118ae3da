//! The same binary as an ordinary process: it serves, refuses bad
//! configuration precisely, stops on SIGTERM, and writes no file (checked on
//! a syscall trace).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "test code: a failed unwrap is a failed test")]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enclave_tests::{guest_bin, TempDir};

fn config(dir: &Path) -> String {
    format!(
        "[host]\nready = \"unix://{}\"\ncontrol = \"tcp://127.0.0.1:0\"\nconnect_timeout_ms = 10000\n\
         [tee]\nsource = \"sim\"\nsim_psp = \"unix://{}\"\ntimeout_ms = 2000\n",
        dir.join("ready.sock").display(),
        dir.join("psp.sock").display()
    )
}

/// Starts the init (optionally under `wrapper`), waits for its readiness
/// report and returns the child and the report.
fn start(dir: &Path, wrapper: &[&str], cmdline: &str) -> (Child, serde_json::Value) {
    std::fs::write(dir.join("config.toml"), config(dir)).unwrap();
    let ready = UnixListener::bind(dir.join("ready.sock")).unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((w, rest)) => {
            let mut c = Command::new(w);
            c.args(rest).arg(guest_bin());
            c
        }
        None => Command::new(guest_bin()),
    };
    let child = cmd
        .arg("--config")
        .arg(dir.join("config.toml"))
        .args(["--cmdline", cmdline])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let (s, _) = ready.accept().unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    (child, serde_json::from_str(&line).unwrap())
}

fn command(report: &serde_json::Value, cmd: &str) -> String {
    let addr = report["control"].as_str().unwrap().strip_prefix("tcp://").unwrap().to_owned();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

fn wait(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_then_powers_off_on_request() {
    let dir = TempDir::new("proc");
    let (mut child, report) = start(dir.path(), &[], "");
    assert_eq!(report["role"], "process");
    assert_eq!(report["modules_loaded"], 0);
    assert_eq!(command(&report, "ping"), "pong");
    assert_eq!(command(&report, "poweroff"), "ok");
    assert!(wait(&mut child, Duration::from_secs(10)).success());
    // The store is wiped explicitly before the exit (no destructor runs).
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    let wiped = log.find("msg=\"secret store wiped at shutdown\" secrets=0").expect(&log);
    let shutting_down = log.find("msg=\"shutting down\"").expect(&log);
    assert!(wiped < shutting_down, "{log}");
}

#[test]
fn sigterm_is_a_clean_shutdown() {
    let dir = TempDir::new("proc");
    let (mut child, _) = start(dir.path(), &[], "");
    nix_kill(child.id(), 15);
    let status = wait(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(log.contains("msg=\"shutdown requested by signal\" signal=SIGTERM"), "{log}");
}

fn nix_kill(pid: u32, sig: i32) {
    assert!(Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap().success());
}

#[test]
fn bad_configuration_names_the_field_and_exits_78() {
    let dir = TempDir::new("proc");
    for (config, cmdline, want) in [
        ("[host]\ncontrol = \"tcp://127.0.0.1:0\"\n", "", "configuration field `host.ready` (config file): missing"),
        ("[host]\nready = \"unix:///x\"\ncontrol = \"tcp://127.0.0.1:0\"\nspeed = 3\n", "", "configuration field `host.speed` (config file): unknown field"),
        ("[log]\nlevel = [\n", "", "is not valid TOML"),
        (&config(dir.path()), "enclave.log.level=chatty", "configuration field `log.level` (kernel command line): expected one of"),
    ] {
        std::fs::write(dir.path().join("bad.toml"), config).unwrap();
        let out = Command::new(guest_bin())
            .arg("--config")
            .arg(dir.path().join("bad.toml"))
            .args(["--cmdline", cmdline])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{stderr}");
        assert!(stderr.contains(want), "want {want:?} in:\n{stderr}");
    }
    let out = Command::new(guest_bin()).args(["--config", "/nonexistent.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read configuration /nonexistent.toml"));
}

#[test]
fn without_a_tee_it_stops_and_never_falls_back_to_simulation() {
    let dir = TempDir::new("proc");
    std::fs::write(dir.path().join("config.toml"), config(dir.path())).unwrap();
    let out = Command::new(guest_bin())
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .args(["--cmdline", "enclave.tee.source=auto"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The Azure vTPM first (absent here, or a TPM without the HCL report's NV index).
    assert!(stderr.contains("no TEE evidence interface (tried: azure-vtpm: /dev/tpmrm0 "), "{stderr}");
    assert!(
        stderr.contains(
            "; configfs-tsm: /sys/kernel/config/tsm/report absent; \
             sev-guest: /dev/sev-guest absent; tdx-guest: /dev/tdx_guest absent; coco-aa: tcp://127.0.0.1:8006"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("SIMULATION"), "{stderr}");
}

/// One field of a `/proc/.../status` file.
fn status_field<'a>(status: &'a str, name: &str) -> &'a str {
    status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or("")
}

/// Once ready, every thread of the guest runs with no_new_privs, under the
/// seccomp filter and without capabilities (a process keeps none; PID 1
/// keeps CAP_SYS_BOOT, checked in QEMU), and it still serves.
#[test]
fn every_thread_is_confined_once_ready_and_it_still_serves() {
    let dir = TempDir::new("confined");
    let (mut child, report) = start(dir.path(), &[], "");
    assert_eq!(report["capabilities"]["effective"], serde_json::json!([]), "{report}");
    // The runner may lack CAP_SETPCAP (not root): the bounding set then
    // stays, and no_new_privs makes it unusable.
    let runner_can_drop = std::fs::read_to_string("/proc/self/status")
        .map(|s| u64::from_str_radix(status_field(&s, "CapEff:"), 16).unwrap_or(0) & (1 << 8) != 0)
        .unwrap();
    // The filter goes on after the readiness report, just before the
    // control thread starts: once control answers, it is on.
    assert_eq!(command(&report, "ping"), "pong");
    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{}/task", child.id())).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(tasks.len() >= 3, "main, console writer, control, watchdog at least: {tasks:?}");
    for task in &tasks {
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        let name = status_field(&status, "Name:");
        assert_eq!(status_field(&status, "NoNewPrivs:"), "1", "{name}: {status}");
        assert_eq!(status_field(&status, "Seccomp:"), "2", "{name}: {status}");
        for set in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
            assert_eq!(status_field(&status, set), "0000000000000000", "{name} {set} {status}");
        }
        if runner_can_drop {
            assert_eq!(status_field(&status, "CapBnd:"), "0000000000000000", "{name}: {status}");
        }
    }
    // It still serves under the filter: the control channel answers, and
    // its status reports the sandbox as the kernel sees it.
    let status: serde_json::Value = serde_json::from_str(&command(&report, "status")).unwrap();
    let state = &status["sandbox_state"];
    assert_eq!(state["seccomp"], true, "{status}");
    assert_eq!(state["no_new_privs"], true, "{status}");
    assert!(state["landlock_abi"].as_u64().is_some_and(|abi| abi >= 1), "this host's kernel has Landlock: {status}");
    assert_eq!(state["capabilities"], serde_json::json!([]), "{status}");
    assert_eq!(command(&report, "poweroff"), "ok");
    assert!(wait(&mut child, Duration::from_secs(10)).success());
}

/// A kernel without Landlock (simulated: strace makes landlock_create_ruleset
/// fail with ENOSYS, as a kernel without it does): with
/// `boot.require_sandbox` on (the default) the boot fails with the reason;
/// turned off, it boots and says the sandbox is unavailable.
#[test]
fn without_landlock_the_required_sandbox_stops_the_boot() {
    let dir = TempDir::new("nolandlock");
    std::fs::write(dir.path().join("config.toml"), config(dir.path())).unwrap();
    let no_landlock = ["-f", "-qq", "-o", "/dev/null", "-e", "trace=landlock_create_ruleset", "-e", "inject=landlock_create_ruleset:error=ENOSYS"];
    let out = Command::new("strace")
        .args(no_landlock)
        .arg(guest_bin())
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .args(["--cmdline", ""])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("boot.require_sandbox is on but the kernel has no Landlock"), "{stderr}");
    assert!(!stderr.contains("msg=\"ready\""), "{stderr}");

    let (mut child, report) = start(dir.path(), &["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=landlock_create_ruleset", "-e", "inject=landlock_create_ruleset:error=ENOSYS"], "enclave.boot.require_sandbox=off");
    assert_eq!(report["sandbox"], "unavailable", "{report}");
    assert_eq!(command(&report, "poweroff"), "ok");
    assert!(wait(&mut child, Duration::from_secs(10)).success());
}

/// Syscalls that create, change or remove filesystem objects.
const MUTATING: &[&str] = &[
    "creat", "mkdir", "mkdirat", "unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2", "link", "linkat",
    "symlink", "symlinkat", "mknod", "mknodat", "truncate", "ftruncate", "chmod", "fchmod", "fchmodat", "chown",
    "fchown", "fchownat", "lchown", "utimensat", "setxattr", "fsetxattr", "lsetxattr",
];

#[test]
fn a_syscall_trace_shows_no_file_created_or_written() {
    let dir = TempDir::new("strace");
    let trace = dir.path().join("trace.txt");
    let trace_arg = trace.to_str().unwrap().to_owned();
    let (mut child, report) =
        start(dir.path(), &["strace", "-f", "-qq", "-yy", "-s", "64", "-o", &trace_arg], "enclave.log.level=debug");
    assert_eq!(command(&report, "ping"), "pong");
    assert_eq!(command(&report, "status").chars().next(), Some('{'));
    assert_eq!(command(&report, "poweroff"), "ok");
    assert!(wait(&mut child, Duration::from_secs(20)).success());

    let text = std::fs::read_to_string(&trace).unwrap();
    let mut socket_writes = 0;
    let mut opens = 0;
    for line in text.lines() {
        // "<pid> name(args) = result"
        let call = line.split_whitespace().nth(1).unwrap_or("");
        let name = call.split('(').next().unwrap_or("");
        // Sizing the secret store's memfd_secret region is memory, not a file.
        let on_memory = call.contains("</secretmem>") || call.contains("<memfd:");
        assert!(on_memory || !MUTATING.contains(&name), "filesystem mutation: {line}");
        if name == "open" || name == "openat" || name == "openat2" {
            opens += 1;
            let writes = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"].iter().any(|f| line.contains(f));
            assert!(!writes || line.contains("\"/dev/"), "file opened for writing: {line}");
        }
        if ["write", "writev", "pwrite64", "pwritev", "pwritev2", "sendto", "sendmsg"].contains(&name) {
            let fd = call.split_once('(').map(|x| x.1).unwrap_or("");
            let to_socket = fd.contains("<TCP:") || fd.contains("<UNIX-STREAM:") || fd.contains("<UNIX:") || fd.contains("<socket:");
            let to_stderr = fd.starts_with("2<");
            assert!(to_socket || to_stderr, "write to something other than a socket or stderr: {line}");
            socket_writes += usize::from(to_socket);
        }
    }
    // The trace is not vacuous: it saw the config being read and the
    // readiness report and answers going out.
    assert!(opens > 0 && text.contains("config.toml"), "trace missed the config read:\n{text}");
    assert!(socket_writes >= 3, "trace missed the socket writes:\n{text}");
    assert!(text.contains("landlock_restrict_self"), "trace missed the sandbox:\n{text}");
}

/// `enclavectl evidence get` (the operator tool) against the simulated PSP,
/// and `evidence inspect` of what it wrote.
#[test]
fn enclavectl_evidence_get_and_inspect() {
    use enclave_tests::stack::{enclavectl, SimPsp};
    let dir = TempDir::new("evget");
    let m = "cd".repeat(48);
    let psp = SimPsp::start(&dir.path().join("psp.sock"), &["--measurement", &m]);
    let out = dir.path().join("bundle.json");
    let st = Command::new(enclavectl())
        .args(["evidence", "get", "--report-data", &"ab".repeat(64), "--source", "sim", "--sim-psp"])
        .arg(format!("unix://{}", psp.socket.display()))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let inspected = Command::new(enclavectl()).args(["evidence", "inspect"]).arg(&out).output().unwrap();
    assert!(inspected.status.success(), "{}", String::from_utf8_lossy(&inspected.stderr));
    let v: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(v["tee"], "sim");
    assert_eq!(v["evidence"]["report"]["measurement"], m);
    assert_eq!(v["evidence"]["report"]["report_data"], "ab".repeat(64));
    // Without --source on a machine with no TEE: the list of what was tried, never the simulation.
    let none = Command::new(enclavectl()).args(["evidence", "get", "--report-data", "00"]).output().unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no TEE evidence interface"));
}
