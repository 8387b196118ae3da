//! The no-write sandbox: after set-up the init forbids itself every
//! filesystem write, enforced by the kernel (Landlock).
//!
//! Denied from then on, everywhere: creating, writing, truncating, renaming
//! or removing files, directories, device nodes, sockets, pipes and links, and
//! executing anything. What stays allowed, and why:
//! - writing to already-open descriptors (the console, sockets): Landlock
//!   checks at `open`, and these were opened before;
//! - opening exactly the evidence devices for writing, each renewal
//!   reopening its own: `/dev/sev-guest` and `/dev/tdx_guest` (ioctls) and
//!   the TPM the configuration names (`/dev/tpmrm0` by default). Nothing
//!   else under `/dev`: `/dev/vsock` is only read (its CID ioctl), the
//!   console was opened before;
//! - configfs-tsm, only beneath `/sys/kernel/config/tsm/report`: an
//!   attestation report is requested by `mkdir` of a report entry, writes to
//!   its `inblob` and `privlevel`, and `rmdir` afterwards.
//!
//! Reading stays allowed: the init reads its own configuration, `/proc` and
//! `/sys`. A kernel without Landlock (not built, or not in `lsm=`) is a boot
//! failure when `boot.require_sandbox` is on (the default): the VM powers off
//! with [`Pid1Error::SandboxUnavailable`]. Only a configuration that turns it
//! off (and so a measurement that says so) boots without it, relying on its
//! code alone, which the strace test checks.
//!
//! Landlock restricts the calling thread and the threads it creates later.
//! The console writer thread (`logger`) exists before this step, and it is
//! the one thread that waits on the host (the console): it confines itself
//! when it starts, before its first write, more tightly than the rest
//! ([`confine_console_writer`]: no file access at all, no capability), so
//! a console the host stalls never holds an unconfined thread. Boot checks
//! that it did ([`crate::logger::writer_confinement`]).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::sys::landlock::{self, access, Ruleset};

use super::Pid1Error;

/// What the sandbox achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sandbox {
    /// Enforced by the kernel with this Landlock ABI version.
    Enforced {
        /// Landlock ABI version.
        abi: u32,
    },
    /// The kernel has no Landlock.
    Unavailable,
}

/// What [`forbid_writes`] achieved, kept for health. Set once at boot: it
/// is a fact about this process, not configuration.
static LANDLOCK: OnceLock<Sandbox> = OnceLock::new();

/// The sandbox as the kernel sees it now (`/proc/self/status`), with the
/// Landlock outcome of boot: what health reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct State {
    /// The Landlock ABI enforced, `None` if none (or not yet).
    pub landlock_abi: Option<u32>,
    /// `NoNewPrivs: 1`.
    pub no_new_privs: bool,
    /// `Seccomp: 2` (filter mode).
    pub seccomp: bool,
    /// The effective capabilities left, by name.
    pub capabilities: Vec<String>,
    /// The bounding set, by name.
    pub bounding: Vec<String>,
}

/// Reads the sandbox's state; `None` if `/proc/self/status` is unreadable.
pub fn state() -> Option<State> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let caps = |name: &str| -> Vec<String> {
        let bits = field(name)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        let mut v: Vec<String> = caps::all()
            .into_iter()
            .filter(|c| bits & c.bitmask() != 0)
            .map(|c| c.to_string())
            .collect();
        v.sort();
        v
    };
    Some(State {
        landlock_abi: match LANDLOCK.get() {
            Some(Sandbox::Enforced { abi }) => Some(*abi),
            _ => None,
        },
        no_new_privs: field("NoNewPrivs:") == Some("1"),
        seccomp: field("Seccomp:") == Some("2"),
        capabilities: caps("CapEff:"),
        bounding: caps("CapBnd:"),
    })
}

/// Paths where some writing stays allowed, and what.
const ALLOWED: &[(&str, u64)] = &[
    ("/dev/sev-guest", access::WRITE_FILE),
    ("/dev/tdx_guest", access::WRITE_FILE),
    // The NSM ioctl needs the device open for writing (AWS Nitro).
    ("/dev/nsm", access::WRITE_FILE),
    (
        "/sys/kernel/config/tsm/report",
        access::WRITE_FILE | access::MAKE_DIR | access::REMOVE_DIR,
    ),
];

/// The rules of the sandbox.
#[derive(Debug, Clone)]
struct Rules {
    abi: u32,
    /// The configured TPM device, when evidence may come from one.
    tpm: Option<PathBuf>,
}

impl Rules {
    /// Enforces the rules on the calling thread (and threads it creates).
    fn restrict_this_thread(&self) -> Result<(), Pid1Error> {
        let mut handled = access::EXECUTE
            | access::WRITE_FILE
            | access::REMOVE_DIR
            | access::REMOVE_FILE
            | access::MAKE_CHAR
            | access::MAKE_DIR
            | access::MAKE_REG
            | access::MAKE_SOCK
            | access::MAKE_FIFO
            | access::MAKE_BLOCK
            | access::MAKE_SYM;
        if self.abi >= 2 {
            handled |= access::REFER;
        }
        if self.abi >= 3 {
            handled |= access::TRUNCATE;
        }
        let ruleset = Ruleset::new(handled).map_err(Pid1Error::Sandbox)?;
        let tpm = self.tpm.as_deref().map(|p| (p, access::WRITE_FILE));
        for (path, rights) in ALLOWED.iter().map(|(p, r)| (Path::new(*p), *r)).chain(tpm) {
            // Absent here (another TEE, no configfs-tsm): nothing to allow.
            if path.exists() {
                ruleset
                    .allow_beneath(path, rights)
                    .map_err(Pid1Error::Sandbox)?;
            }
        }
        ruleset.restrict_self().map_err(Pid1Error::Sandbox)
    }
}

/// The console writer's own sandbox, taken by that thread when it starts,
/// before it first writes to the console (where the host may hold it for
/// as long as it likes): every capability dropped, no_new_privs, and every
/// filesystem access the kernel's Landlock knows handled with none allowed
/// (it writes only to a descriptor it inherited). Without Landlock in the
/// kernel only the privileges are dropped; [`forbid_writes`] then decides
/// whether the boot may go on.
pub fn confine_console_writer() -> Result<(), Pid1Error> {
    // Only PID 1 must be able to shrink the bounding set; an unprivileged
    // process (tests) cannot, and no_new_privs makes it unusable.
    let strict = std::process::id() == 1;
    super::privileges::drop_in_this_thread(&caps::CapsHashSet::new(), strict)?;
    let Some(abi) = landlock::abi_version().map_err(Pid1Error::Sandbox)? else {
        return Ok(());
    };
    let mut handled = access::EXECUTE
        | access::WRITE_FILE
        | access::READ_FILE
        | access::READ_DIR
        | access::REMOVE_DIR
        | access::REMOVE_FILE
        | access::MAKE_CHAR
        | access::MAKE_DIR
        | access::MAKE_REG
        | access::MAKE_SOCK
        | access::MAKE_FIFO
        | access::MAKE_BLOCK
        | access::MAKE_SYM;
    if abi >= 2 {
        handled |= access::REFER;
    }
    if abi >= 3 {
        handled |= access::TRUNCATE;
    }
    Ruleset::new(handled)
        .and_then(Ruleset::restrict_self)
        .map_err(Pid1Error::Sandbox)
}

/// Forbids all filesystem writes from now on, except [`ALLOWED`] and the
/// TPM device `tpm`. Without Landlock in the kernel this fails when
/// `required`, and only warns otherwise. Returns the rules enforced, if any.
pub fn forbid_writes(required: bool, tpm: Option<&Path>) -> Result<Sandbox, Pid1Error> {
    let Some(abi) = landlock::abi_version().map_err(Pid1Error::Sandbox)? else {
        if required {
            return Err(Pid1Error::SandboxUnavailable);
        }
        crate::warn_always!("Landlock unavailable in this kernel and boot.require_sandbox is off: no-write is not kernel-enforced");
        let _ = LANDLOCK.set(Sandbox::Unavailable);
        return Ok(Sandbox::Unavailable);
    };
    let rules = Rules {
        abi,
        tpm: tpm.map(Path::to_path_buf),
    };
    rules.restrict_this_thread()?;
    crate::info_always!(landlock_abi = abi; "no-write sandbox enforced");
    let _ = LANDLOCK.set(Sandbox::Enforced { abi });
    Ok(Sandbox::Enforced { abi })
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    /// Landlock is irreversible, so the sandboxed part runs in a child: this
    /// same test binary, re-run on the single test below with an env var.
    const CHILD: &str = "ENCLAVE_SANDBOX_CHILD_DIR";

    #[test]
    fn writes_after_setup_are_refused() {
        if let Ok(dir) = std::env::var(CHILD) {
            return child(&dir);
        }
        let dir = std::env::temp_dir().join(format!("ei-sandbox-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("existing"), b"before").unwrap();
        super::super::rerun_test_in_child(
            "pid1::sandbox::tests::writes_after_setup_are_refused",
            CHILD,
            dir.as_os_str(),
        );
        // Nothing the sandboxed child tried left a trace.
        assert_eq!(std::fs::read(dir.join("existing")).unwrap(), b"before");
        assert!(!dir.join("new").exists());
        assert!(!dir.join("newdir").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn child(dir: &str) {
        let dir = std::path::Path::new(dir);
        // Before the sandbox, writing works (the test is not vacuous).
        std::fs::write(dir.join("probe-before"), b"x").unwrap();
        std::fs::remove_file(dir.join("probe-before")).unwrap();
        // A regular file stands in for the configured TPM device.
        let tpm = dir.join("tpm");
        std::fs::write(&tpm, b"").unwrap();
        match super::forbid_writes(true, Some(&tpm)).unwrap() {
            super::Sandbox::Enforced { .. } => {}
            super::Sandbox::Unavailable => panic!("this test needs a kernel with Landlock"),
        }
        let denied = |r: std::io::Result<()>, what: &str| {
            let e = r.expect_err(what);
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied,
                "{what}: {e}"
            );
        };
        denied(std::fs::write(dir.join("new"), b"x"), "create a file");
        denied(
            std::fs::write(dir.join("existing"), b"x"),
            "overwrite a file",
        );
        denied(
            std::fs::OpenOptions::new()
                .append(true)
                .open(dir.join("existing"))
                .map(drop),
            "append",
        );
        denied(std::fs::create_dir(dir.join("newdir")), "mkdir");
        denied(std::fs::remove_file(dir.join("existing")), "unlink");
        denied(
            std::fs::rename(dir.join("existing"), dir.join("renamed")),
            "rename",
        );
        denied(
            std::os::unix::fs::symlink("/etc", dir.join("link")),
            "symlink",
        );
        denied(
            std::os::unix::net::UnixListener::bind(dir.join("sock")).map(drop),
            "bind a unix socket",
        );
        denied(Command::new("/bin/true").status().map(drop), "exec");
        // Only the named devices may be opened for writing: not /dev/null.
        denied(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .map(drop),
            "open /dev/null for writing",
        );
        // Reading stays possible, and so does writing the configured TPM.
        assert_eq!(std::fs::read(dir.join("existing")).unwrap(), b"before");
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&tpm)
            .unwrap();
        std::fs::read("/dev/null").unwrap();
        println!("CHILD-DONE");
    }
}
