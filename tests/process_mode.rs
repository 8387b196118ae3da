//! The same binary as an ordinary process: it serves, refuses bad
//! configuration precisely, stops on SIGTERM, and writes no file (checked on
//! a syscall trace).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]

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
    let addr = report["control"]
        .as_str()
        .unwrap()
        .strip_prefix("tcp://")
        .unwrap()
        .to_owned();
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
    let wiped = log
        .find("msg=\"secret store wiped at shutdown\" secrets=0")
        .expect(&log);
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
    assert!(
        log.contains("msg=\"shutdown requested by signal\" signal=SIGTERM"),
        "{log}"
    );
}

fn nix_kill(pid: u32, sig: i32) {
    assert!(Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success());
}

#[test]
fn bad_configuration_names_the_field_and_exits_78() {
    let dir = TempDir::new("proc");
    for (config, cmdline, want) in [
        (
            "[host]\ncontrol = \"tcp://127.0.0.1:0\"\n",
            "",
            "configuration field `host.ready` (config file): missing",
        ),
        (
            "[host]\nready = \"unix:///x\"\ncontrol = \"tcp://127.0.0.1:0\"\nspeed = 3\n",
            "",
            "configuration field `host.speed` (config file): unknown field",
        ),
        ("[log]\nlevel = [\n", "", "is not valid TOML"),
        (
            &config(dir.path()),
            "enclave.log.level=chatty",
            "configuration field `log.level` (kernel command line): expected one of",
        ),
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
    let out = Command::new(guest_bin())
        .args(["--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot read configuration /nonexistent.toml"));
}

/// Every I/O failure on the boot path reaches the console with its cause:
/// the OS's words, on the same line as what the init was doing (issue 27:
/// `cannot read configuration /tmp` used to stop there).
#[test]
fn boot_path_io_errors_print_their_os_cause() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new("proc");
    let secret = dir.path().join("root-only.toml");
    std::fs::write(&secret, config(dir.path())).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let root = running_as_root();
    let mut cases: Vec<(String, Option<u32>, &str)> =
        vec![
        ("/tmp".into(), None, "cannot read configuration /tmp: Is a directory (os error 21)"),
        (
            "/nonexistent.toml".into(),
            None,
            "cannot read configuration /nonexistent.toml: No such file or directory (os error 2)",
        ),
    ];
    // Permission: as root DAC is bypassed, so the guest runs as nobody
    // against a root-only file (skipped only when not root, said so).
    let want_denied = format!(
        "cannot read configuration {}: Permission denied (os error 13)",
        secret.display()
    );
    if root {
        // The directory must be searchable by nobody to reach the file.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        cases.push((
            secret.display().to_string(),
            Some(65534),
            want_denied.as_str(),
        ));
    } else {
        eprintln!("boot_path_io_errors_print_their_os_cause: not root, the permission case needs a second user");
    }
    for (path, uid, want) in cases {
        let mut cmd = Command::new(guest_bin());
        cmd.args(["--config", &path]);
        if let Some(uid) = uid {
            cmd.uid(uid).gid(65534);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{path}: {stderr}");
        let line = stderr
            .lines()
            .find(|l| l.contains("fatal"))
            .unwrap_or_else(|| panic!("no fatal line for {path}:\n{stderr}"));
        assert!(
            line.contains(want),
            "want {want:?} on the fatal line, got:\n{line}"
        );
    }
}

/// Whether the test runs as root, from /proc (no unsafe needed).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
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
    assert!(
        stderr.contains("no TEE evidence interface (tried: azure-vtpm: /dev/tpmrm0 "),
        "{stderr}"
    );
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
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or("")
}

/// Once ready, every thread of the guest runs with no_new_privs, under the
/// seccomp filter and without capabilities (a process keeps none; PID 1
/// keeps CAP_SYS_BOOT, checked in QEMU), and it still serves.
#[test]
fn every_thread_is_confined_once_ready_and_it_still_serves() {
    let dir = TempDir::new("confined");
    let (mut child, report) = start(dir.path(), &[], "");
    assert_eq!(
        report["capabilities"]["effective"],
        serde_json::json!([]),
        "{report}"
    );
    // The runner may lack CAP_SETPCAP (not root): the bounding set then
    // stays, and no_new_privs makes it unusable.
    let runner_can_drop = std::fs::read_to_string("/proc/self/status")
        .map(|s| u64::from_str_radix(status_field(&s, "CapEff:"), 16).unwrap_or(0) & (1 << 8) != 0)
        .unwrap();
    // The filter goes on after the readiness report, just before the
    // control thread starts: once control answers, it is on.
    assert_eq!(command(&report, "ping"), "pong");
    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{}/task", child.id()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        tasks.len() >= 3,
        "main, console writer, control, watchdog at least: {tasks:?}"
    );
    for task in &tasks {
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        let name = status_field(&status, "Name:");
        assert_eq!(
            status_field(&status, "NoNewPrivs:"),
            "1",
            "{name}: {status}"
        );
        assert_eq!(status_field(&status, "Seccomp:"), "2", "{name}: {status}");
        for set in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
            assert_eq!(
                status_field(&status, set),
                "0000000000000000",
                "{name} {set} {status}"
            );
        }
        if runner_can_drop {
            assert_eq!(
                status_field(&status, "CapBnd:"),
                "0000000000000000",
                "{name}: {status}"
            );
        }
    }
    // It still serves under the filter: the control channel answers, and
    // its status reports the sandbox as the kernel sees it.
    let status: serde_json::Value = serde_json::from_str(&command(&report, "status")).unwrap();
    let state = &status["sandbox_state"];
    assert_eq!(state["seccomp"], true, "{status}");
    assert_eq!(state["no_new_privs"], true, "{status}");
    assert!(
        state["landlock_abi"].as_u64().is_some_and(|abi| abi >= 1),
        "this host's kernel has Landlock: {status}"
    );
    assert_eq!(state["capabilities"], serde_json::json!([]), "{status}");
    assert_eq!(command(&report, "poweroff"), "ok");
    assert!(wait(&mut child, Duration::from_secs(10)).success());
}

/// A host that stalls the console from the first byte (its pipe is full
/// before the guest starts, and nobody reads it) holds the console writer
/// in its first write: that thread must already be confined, since it
/// confines itself before writing. Once ready, its status shows no
/// capability, no_new_privs and the seccomp filter; and the boot was not
/// held by the console.
#[test]
fn a_console_stalled_from_the_first_byte_holds_no_unconfined_thread() {
    let dir = TempDir::new("stalled");
    let config = config(dir.path());
    let (guest, report, _console) =
        enclave_tests::process::boot_with_stalled_console(dir, &config).unwrap();
    assert_eq!(command(&report, "ping"), "pong");
    let mut writer = None;
    for task in std::fs::read_dir(format!("/proc/{}/task", guest.child.id())).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        if status_field(&status, "Name:") == "log-writer" {
            writer = Some(status);
        }
    }
    let status = writer.expect("a log-writer thread");
    // Blocked in its first write to the full pipe.
    assert_eq!(
        status_field(&status, "State:").chars().next(),
        Some('S'),
        "{status}"
    );
    assert_eq!(status_field(&status, "NoNewPrivs:"), "1", "{status}");
    assert_eq!(status_field(&status, "Seccomp:"), "2", "{status}");
    for set in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
        assert_eq!(
            status_field(&status, set),
            "0000000000000000",
            "{set} {status}"
        );
    }
    assert_eq!(command(&report, "poweroff"), "ok");
}

/// A kernel without Landlock (simulated: strace makes landlock_create_ruleset
/// fail with ENOSYS, as a kernel without it does): with
/// `boot.require_sandbox` on (the default) the boot fails with the reason;
/// turned off, it boots and says the sandbox is unavailable.
#[test]
fn without_landlock_the_required_sandbox_stops_the_boot() {
    let dir = TempDir::new("nolandlock");
    std::fs::write(dir.path().join("config.toml"), config(dir.path())).unwrap();
    let no_landlock = [
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=landlock_create_ruleset",
        "-e",
        "inject=landlock_create_ruleset:error=ENOSYS",
    ];
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
    assert!(
        stderr.contains("boot.require_sandbox is on but the kernel has no Landlock"),
        "{stderr}"
    );
    assert!(!stderr.contains("msg=\"ready\""), "{stderr}");

    let (mut child, report) = start(
        dir.path(),
        &[
            "strace",
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=landlock_create_ruleset",
            "-e",
            "inject=landlock_create_ruleset:error=ENOSYS",
        ],
        "enclave.boot.require_sandbox=off",
    );
    assert_eq!(report["sandbox"], "unavailable", "{report}");
    assert_eq!(command(&report, "poweroff"), "ok");
    assert!(wait(&mut child, Duration::from_secs(10)).success());
}

/// Syscalls that create, change or remove filesystem objects, or that
/// could write a file without a `write` to a file descriptor showing it.
/// None may appear at all, except on the secret store's memory
/// (memfd_secret) or a memfd.
const MUTATING: &[&str] = &[
    "creat",
    "mkdir",
    "mkdirat",
    "unlink",
    "unlinkat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "mknod",
    "mknodat",
    "truncate",
    "ftruncate",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "fchownat",
    "lchown",
    "utime",
    "utimes",
    "futimesat",
    "utimensat",
    "setxattr",
    "fsetxattr",
    "lsetxattr",
    "removexattr",
    "fremovexattr",
    "lremovexattr",
    "fallocate",
    "open_by_handle_at",
    "name_to_handle_at",
    "io_uring_setup",
    "io_uring_enter",
    "process_vm_writev",
    "remap_file_pages",
    "mount",
    "umount2",
    "move_mount",
    "fsopen",
    "fsmount",
    "fsconfig",
    "pivot_root",
    "swapon",
    "sync_file_range",
    "msync",
];

/// Syscalls that write bytes to a file descriptor, with the position of
/// that descriptor among their arguments: it must be a socket, a pipe, the
/// console (fd 2) or memory, never a file.
const WRITING: &[(&str, usize)] = &[
    ("write", 0),
    ("writev", 0),
    ("pwrite64", 0),
    ("pwritev", 0),
    ("pwritev2", 0),
    ("sendto", 0),
    ("sendmsg", 0),
    ("sendmmsg", 0),
    ("sendfile", 0),
    ("sendfile64", 0),
    ("vmsplice", 0),
    ("splice", 2),
    ("tee", 1),
    ("copy_file_range", 2),
];

/// The arguments of a traced call `name(a, b, …) …`, split at the commas
/// outside brackets and quotes.
fn trace_args(call: &str) -> Vec<&str> {
    let Some((_, rest)) = call.split_once('(') else {
        return Vec::new();
    };
    let (mut out, mut depth, mut quoted, mut start) = (Vec::new(), 0i32, false, 0);
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'(' | b'[' | b'{' | b'<' if !quoted => depth += 1,
            b')' | b']' | b'}' | b'>' if !quoted && depth > 0 => depth -= 1,
            b')' if !quoted => {
                out.push(rest[start..i].trim());
                return out;
            }
            b',' if !quoted && depth == 0 => {
                out.push(rest[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(rest[start..].trim_end_matches("<unfinished ...>").trim());
    out
}

/// Whether strace's `-yy` annotation of a descriptor names something that
/// is not a file: a socket, a pipe, anonymous memory.
fn not_a_file(fd: &str) -> bool {
    [
        "<TCP:",
        "<TCPv6:",
        "<UDP:",
        "<UNIX-STREAM:",
        "<UNIX:",
        "<socket:",
        "<NETLINK:",
        "<pipe:",
        "<anon_inode:",
        "</secretmem>",
        "<memfd:",
        "</memfd:",
    ]
    .iter()
    .any(|k| fd.contains(k))
}

/// The whole life of a guest under strace, in process mode: evidence from
/// sim-psp, the verifier, the Vault login and secrets into the secret store,
/// the call service with a call transcribed upstream, a renewal, the
/// verifier gone and the secrets withdrawn at the trust deadline, then
/// poweroff. Nothing in it creates or writes a file: no `O_CREAT` anywhere
/// (`/dev/shm` included), no open for writing outside `/dev` (nor in
/// `/dev/shm` or `/dev/mqueue`), no write-like call to a file descriptor
/// that is a file (but the console, fd 2), no call that changes the
/// filesystem.
#[test]
fn a_syscall_trace_shows_no_file_created_or_written() {
    use enclave_tests::https;
    use enclave_tests::process::boot_under;
    use enclave_tests::stack::{
        guest_config, platform_client, service_config, sim_policy, OpenBao, Pki, SimPsp, Verifier,
    };
    use enclave_tests::transcription::TranscriptionStandIn;

    let dir = TempDir::new("strace");
    let trace = dir.path().join("trace.txt");
    let trace_arg = trace.to_str().unwrap().to_owned();
    let pki = Pki::new();
    let psp = SimPsp::start(
        &dir.path().join("psp.sock"),
        &["--measurement", &"c4".repeat(48)],
    );
    // Tokens live 10 s: the guest renews between 5 and 7.5 s.
    let mut verifier = Verifier::start(
        &pki,
        &sim_policy(&psp.ark_sha256, &[&psp.measurement]),
        dir.path(),
        &["--token-ttl-secs", "10"],
    );
    let bao = OpenBao::start(&pki);
    let key = "canary-transcription-key-strace";
    let pepper = "5a".repeat(32);
    bao.setup(
        &verifier,
        &pki,
        &[&psp.measurement],
        "sim",
        &[
            ("ENCLAVE_SEED_TRANSCRIPTION_API_KEY", key),
            ("ENCLAVE_SEED_RETELL_API_KEY", "retell-strace"),
            ("ENCLAVE_SEED_PII_PEPPER", &pepper),
        ],
    );
    let standin = TranscriptionStandIn::start(
        &pki.path("transcribe.pem"),
        &pki.path("transcribe-key.pem"),
        key,
        "Una prova.",
    );
    let gdir = TempDir::new("strace-guest");
    let mut config = guest_config(
        gdir.path(),
        &psp.socket,
        Some((&verifier, &pki)),
        Some(&bao),
    );
    config.push_str(&service_config(
        "tcp://127.0.0.1:0",
        &format!("tcp://127.0.0.1:{}", standin.port),
        &pki,
        "",
    ));
    let (mut g, report) = boot_under(
        gdir,
        &config,
        &["strace", "-f", "-qq", "-yy", "-s", "64", "-o", &trace_arg],
    )
    .ready();

    // A call, transcribed upstream with the key from Vault.
    let client = platform_client(
        &pki,
        report["call_service"].as_str().unwrap(),
        &bao.serving_ca_pem(),
    );
    let meta = serde_json::json!({"call_id": "c-1", "shipment_id": "S-1", "agent_type": "sara", "caller_phone": "+39 333 111 2222", "language": "it"}).to_string();
    let r = client.call(&meta, &https::wav("pcm16", 16000, 1.0));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(standin.last().unwrap().auth_ok);
    let health = |done: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let h = client.request("GET", "/health/enclave", &[], b"").json();
            if done(&h) {
                return h;
            }
            assert!(Instant::now() < deadline, "health never got there: {h}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // A renewal.
    health(&|h| h["attestation"]["renewals"].as_u64().unwrap_or(0) >= 1);
    // The withdrawal: the verifier goes away, the trust deadline passes.
    verifier.proc.stop();
    let h = health(&|h| h["status"] == "degraded");
    assert_eq!(h["enclave"]["secrets_provisioned"], false, "{h}");
    assert_eq!(g.command(&report, "poweroff"), "ok");
    assert!(wait(&mut g.child, Duration::from_secs(30)).success());

    let text = std::fs::read_to_string(&trace).unwrap();
    let (mut socket_writes, mut opens) = (0, 0);
    for line in text.lines() {
        // "<pid> name(args) = result"
        let call = line.split_once(' ').map(|x| x.1).unwrap_or("").trim_start();
        let name = call.split('(').next().unwrap_or("");
        let args = trace_args(call);
        let on_memory = args.first().is_some_and(|fd| {
            fd.contains("</secretmem>") || fd.contains("<memfd:") || fd.contains("</memfd:")
        });
        assert!(
            on_memory || !MUTATING.contains(&name),
            "filesystem mutation: {line}"
        );
        if name == "open" || name == "openat" || name == "openat2" {
            opens += 1;
            assert!(
                !line.contains("O_CREAT") && !line.contains("O_TMPFILE"),
                "file created: {line}"
            );
            let writes = ["O_WRONLY", "O_RDWR", "O_TRUNC", "O_APPEND"]
                .iter()
                .any(|f| line.contains(f));
            let under_dev = line.contains("\"/dev/")
                && !line.contains("\"/dev/shm")
                && !line.contains("\"/dev/mqueue");
            assert!(!writes || under_dev, "file opened for writing: {line}");
        }
        if name == "mmap" && line.contains("MAP_SHARED") && line.contains("PROT_WRITE") {
            let fd = args.get(4).copied().unwrap_or("");
            assert!(not_a_file(fd), "a file mapped shared and writable: {line}");
        }
        if let Some(&(_, at)) = WRITING.iter().find(|(n, _)| *n == name) {
            let fd = args.get(at).copied().unwrap_or("");
            let to_stderr = fd.starts_with("2<");
            assert!(
                not_a_file(fd) || to_stderr,
                "{name} to something other than a socket, a pipe, memory or stderr: {line}"
            );
            socket_writes += usize::from(not_a_file(fd));
        }
    }
    // The trace is not vacuous: it saw the config read, the sandbox, the
    // secret store, every peer (sim-psp, the verifier, Vault, the upstream)
    // and, in the log, the renewal and the withdrawal.
    assert!(
        opens > 0 && text.contains("config.toml"),
        "trace missed the config read"
    );
    assert!(
        text.contains("landlock_restrict_self"),
        "trace missed the sandbox"
    );
    assert!(
        text.contains("memfd_secret") || text.contains("<memfd:"),
        "trace missed the secret store"
    );
    for port in [verifier.port, bao.port, standin.port] {
        assert!(
            text.contains(&format!(":{port}]")),
            "trace missed the connection to port {port}"
        );
    }
    assert!(
        text.contains(&psp.socket.display().to_string()),
        "trace missed sim-psp"
    );
    assert!(
        socket_writes >= 20,
        "trace missed the socket writes ({socket_writes})"
    );
    let logs = g.logs();
    for what in ["re-attested and secrets renewed", "trust deadline passed"] {
        assert!(logs.contains(what), "the run missed {what:?}:\n{logs}");
    }
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
        .args([
            "evidence",
            "get",
            "--report-data",
            &"ab".repeat(64),
            "--source",
            "sim",
            "--sim-psp",
        ])
        .arg(format!("unix://{}", psp.socket.display()))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let inspected = Command::new(enclavectl())
        .args(["evidence", "inspect"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        inspected.status.success(),
        "{}",
        String::from_utf8_lossy(&inspected.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(v["tee"], "sim");
    assert_eq!(v["evidence"]["report"]["measurement"], m);
    assert_eq!(v["evidence"]["report"]["report_data"], "ab".repeat(64));
    // Without --source on a machine with no TEE: the list of what was tried, never the simulation.
    let none = Command::new(enclavectl())
        .args(["evidence", "get", "--report-data", "00"])
        .output()
        .unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no TEE evidence interface"));
}
