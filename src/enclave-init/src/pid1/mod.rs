//! What the first process of the VM must do, and nothing else.
//!
//! Module map:
//! - [`signals`]: every signal but the CPU faults blocked and read through a
//!   signalfd; children reaped; shutdown requests recognised.
//! - [`mounts`]: the pseudo filesystems, as a commented table.
//! - [`modules`]: kernel modules from the list carried in the image.
//! - [`entropy`]: wait until the kernel CRNG is ready, before any key exists.
//! - [`sandbox`]: the no-write Landlock sandbox.
//! - [`privileges`]: capabilities dropped to what is still needed, no_new_privs.
//! - [`seccomp`]: the syscall allow-list, applied to every thread once ready.
//!
//! The same binary also runs as an ordinary process ([`Role::Process`]): the
//! duties that only PID 1 may perform (mounts, console, modules, Ctrl-Alt-Del,
//! power-off) are skipped there, and "power off" becomes a process exit.

pub mod entropy;
pub mod modules;
pub mod mounts;
pub mod privileges;
pub mod sandbox;
pub mod seccomp;
pub mod signals;

/// Runs one test of this binary again, alone, in a child process with
/// `key=value` in its environment, and asserts that it succeeded and
/// printed `CHILD-DONE`. For tests of steps that cannot be undone in the
/// test process (Landlock, dropped capabilities, a seccomp filter).
#[cfg(test)]
pub(crate) fn rerun_test_in_child(test: &str, key: &str, value: &std::ffi::OsStr) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(key, value)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("CHILD-DONE"),
        "child did not run:\n{stdout}"
    );
}

use nix::sys::reboot::{reboot, set_cad_enabled, RebootMode};
use std::fmt;

use self::signals::Signals;

/// Which process this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The VM's init: it must never exit, only power off.
    Pid1,
    /// An ordinary process (tests, development): it exits instead.
    Process,
}

impl Role {
    /// PID 1 is the init; anything else is an ordinary process.
    pub fn detect() -> Role {
        if nix::unistd::getpid().as_raw() == 1 {
            Role::Pid1
        } else {
            Role::Process
        }
    }

    /// The name used in logs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Pid1 => "pid1",
            Role::Process => "process",
        }
    }
}

/// Why a PID 1 duty failed.
#[derive(Debug)]
pub enum Pid1Error {
    /// Blocking signals or creating the signalfd failed.
    Signals(nix::Error),
    /// Turning Ctrl-Alt-Del into a signal failed.
    CtrlAltDel(nix::Error),
    /// A mount in [`mounts::MOUNTS`] failed.
    Mount {
        /// Where.
        target: &'static str,
        /// The kernel's answer.
        source: nix::Error,
    },
    /// Reading the module list failed.
    ModuleList {
        /// The list file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A listed module file is missing from the image.
    ModuleMissing {
        /// The module file.
        path: String,
    },
    /// The kernel refused a module.
    ModuleLoad {
        /// The module file.
        path: String,
        /// The kernel's answer.
        source: nix::Error,
    },
    /// The kernel's random generator did not become ready in time.
    EntropyTimeout {
        /// How long we waited.
        waited_ms: u128,
    },
    /// getrandom failed for another reason.
    Entropy(std::io::Error),
    /// Landlock exists but refused the ruleset.
    Sandbox(std::io::Error),
    /// `boot.require_sandbox` is on and the kernel has no Landlock.
    SandboxUnavailable,
    /// The console writer thread could not confine itself (why).
    WriterNotConfined(String),
    /// Dropping capabilities or setting no_new_privs failed.
    Privileges {
        /// The step that failed.
        step: &'static str,
        /// The kernel's answer.
        source: String,
    },
    /// Building or installing the seccomp filter failed.
    Seccomp(String),
}

impl fmt::Display for Pid1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pid1Error::Signals(e) => write!(f, "cannot take over signals: {e}"),
            Pid1Error::CtrlAltDel(e) => write!(f, "cannot turn off Ctrl-Alt-Del reboot: {e}"),
            Pid1Error::Mount { target, source } => write!(f, "cannot mount {target}: {source}"),
            Pid1Error::ModuleList { path, source } => write!(f, "cannot read module list {path}: {source}"),
            Pid1Error::ModuleMissing { path } => write!(f, "module {path} is listed but missing from the image"),
            Pid1Error::ModuleLoad { path, source } => write!(f, "kernel refused module {path}: {source}"),
            Pid1Error::EntropyTimeout { waited_ms } => {
                write!(f, "kernel random generator not ready after {waited_ms} ms")
            }
            Pid1Error::Entropy(e) => write!(f, "getrandom failed: {e}"),
            Pid1Error::Sandbox(e) => write!(f, "cannot enforce the no-write sandbox: {e}"),
            Pid1Error::WriterNotConfined(why) => {
                write!(f, "the console writer thread is not confined: {why}")
            }
            Pid1Error::SandboxUnavailable => write!(
                f,
                "boot.require_sandbox is on but the kernel has no Landlock (not built in, or missing from lsm= on the kernel command line)"
            ),
            Pid1Error::Privileges { step, source } => write!(f, "cannot drop privileges ({step}): {source}"),
            Pid1Error::Seccomp(e) => write!(f, "cannot install the seccomp filter: {e}"),
        }
    }
}

impl std::error::Error for Pid1Error {}

/// The process after take-over: its role and its signal source.
pub struct Pid1 {
    role: Role,
    signals: Signals,
}

/// How the init ends.
pub enum Outcome {
    /// Asked to stop (control command, SIGTERM, Ctrl-Alt-Del).
    Requested(String),
    /// A fatal error: the reason is printed, then power-off.
    Fatal {
        /// Process-mode exit status (PID 1 powers off instead).
        status: i32,
        /// The reason, already free of secrets.
        reason: String,
    },
}

/// Step 1 of the boot: take over signals, install the panic hook, mount the
/// pseudo filesystems and put the console on fds 0-2.
///
/// Order matters: signals first (nothing may kill or stop us from here on),
/// the panic hook second (a bug after this powers off instead of panicking
/// the kernel), then `/dev` before the console can be reopened from it.
pub fn take_over(role: Role) -> Result<Pid1, (Pid1Error, Role)> {
    let signals = Signals::take_over().map_err(|e| (Pid1Error::Signals(e), role))?;
    install_panic_hook(role);
    if role == Role::Pid1 {
        // Ctrl-Alt-Del then sends SIGINT to us instead of rebooting at once;
        // we treat it as a shutdown request (signals.rs).
        set_cad_enabled(false).map_err(|e| (Pid1Error::CtrlAltDel(e), role))?;
        mounts::mount_all().map_err(|e| (e, role))?;
        console_on_stdio();
    }
    Ok(Pid1 { role, signals })
}

impl Pid1 {
    /// This process's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The signal source, for the serving loop.
    pub fn signals(&mut self) -> &mut Signals {
        &mut self.signals
    }

    /// Loads the image's kernel modules (PID 1 only).
    pub fn load_modules(&self) -> Result<usize, Pid1Error> {
        match self.role {
            Role::Pid1 => modules::load_listed(modules::LIST_PATH, modules::DIR),
            Role::Process => Ok(0),
        }
    }

    /// The kernel command line: `/proc/cmdline` for PID 1, the stand-in
    /// passed by `--cmdline` for a process.
    pub fn cmdline(&self, process_cmdline: &str) -> String {
        match self.role {
            Role::Pid1 => std::fs::read_to_string("/proc/cmdline").unwrap_or_default(),
            Role::Process => process_cmdline.to_owned(),
        }
    }

    /// The only way out: log the outcome, then power off (PID 1) or exit
    /// (process). Never returns.
    pub fn finish(self, outcome: Outcome) -> ! {
        finish(self.role, outcome)
    }
}

/// Ends the init in `role` with `outcome`. Never returns.
pub fn finish(role: Role, outcome: Outcome) -> ! {
    let status = match &outcome {
        Outcome::Requested(why) => {
            crate::info_always!(role = role.as_str(), reason = why.as_str(); "shutting down");
            0
        }
        Outcome::Fatal { status, reason } => {
            crate::error_always!(role = role.as_str(), reason = reason.as_str(); "fatal: powering off");
            *status
        }
    };
    // The last lines (above all a fatal cause) reach the console if it
    // drains at all; a host that stopped reading it cannot hold the
    // power-off for longer than this.
    crate::logger::flush(FLUSH_DEADLINE);
    match role {
        Role::Pid1 => power_off(),
        #[expect(
            clippy::exit,
            reason = "an ordinary process ends by exiting; only PID 1 must not"
        )]
        Role::Process => std::process::exit(status),
    }
}

/// How long the last lines may take to reach the console before power-off.
const FLUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

/// sync, then ACPI power-off. If the kernel refuses, wait forever rather
/// than exit: PID 1 exiting is a kernel panic.
fn power_off() -> ! {
    nix::unistd::sync();
    let err = match reboot(RebootMode::RB_POWER_OFF) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    crate::error_always!(error = err.to_string().as_str(); "power-off refused; halting here");
    loop {
        nix::unistd::pause();
    }
}

/// A panic must not reach the kernel as "Attempted to kill init!". The hook
/// logs where it happened and powers off. It prints the message only when it
/// is a literal (`&'static str`): a formatted panic message could carry data,
/// and no data leaves the enclave through a panic.
fn install_panic_hook(role: Role) {
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown".to_owned());
        let message = info
            .payload()
            .downcast_ref::<&'static str>()
            .copied()
            .unwrap_or("<formatted message withheld>");
        crate::error_always!(location = location.as_str(), message = message; "panic: powering off");
        // Through the logger's queue: a stalled console cannot hold the
        // power-off past the flush deadline.
        crate::logger::flush(FLUSH_DEADLINE);
        if role == Role::Pid1 {
            power_off();
        }
    }));
}

/// Reopens `/dev/console` (now on devtmpfs) onto fds 0, 1 and 2. The kernel
/// already opened the initramfs's `dev/console` for us; this makes the
/// console independent of that node. Without a console we keep whatever
/// stderr the kernel gave us, and say so there.
fn console_on_stdio() {
    let console = match nix::fcntl::open(
        "/dev/console",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            crate::warn_always!(error = e.to_string().as_str(); "no /dev/console; logging to the inherited stderr");
            return;
        }
    };
    let results = [
        ("stdin", nix::unistd::dup2_stdin(&console)),
        ("stdout", nix::unistd::dup2_stdout(&console)),
        ("stderr", nix::unistd::dup2_stderr(&console)),
    ];
    for (fd, result) in results {
        if let Err(e) = result {
            crate::warn_always!(fd = fd, error = e.to_string().as_str(); "cannot put the console on a standard fd");
        }
    }
}
