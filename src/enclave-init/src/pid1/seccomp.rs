//! The syscall allow-list, installed on every thread once the init is ready.
//!
//! Built with `seccompiler` (rust-vmm, as Firecracker does). Anything not
//! listed returns `EPERM`: never a kill, since a killed PID 1 is a kernel
//! panic, and an `EPERM` is an error value the code already handles. The
//! one kill seccompiler emits (a syscall made through another architecture's
//! ABI, e.g. `int 0x80`) is rewritten to `EPERM` too ([`no_kill`]).
//!
//! When: the last step of the boot, after every thread that set-up creates
//! (console writer, watchdog, supervisor, call service, control) exists and
//! after the power-off channel (`socketpair`) is made; `TSYNC` puts it on
//! all of them at once, and no_new_privs is already set
//! ([`super::privileges`]). Threads made later inherit it.
//!
//! How the list was derived: the process-mode tests (`process_mode`,
//! `secrets`, `calls`) and the QEMU boot run under `strace -f`, looking for
//! calls after `seccomp(...)` that failed with `EPERM`. Each group below says
//! who needs it. Denied on purpose, among everything else: `execve`,
//! `ptrace`, `mount`, module loading, `bpf`, `kexec_*`, `unshare`/`setns`,
//! `capset`, `keyctl`, `userfaultfd`, `process_vm_*`, `io_uring_*`, creating
//! sockets of kinds never used (`socket` is allowed, but Landlock and the
//! absence of capabilities bound what a socket can do), `socketpair`,
//! `bind`/`listen` (every listener is bound before).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

use super::Pid1Error;

/// The allowed syscalls, by group, each with who needs it.
const ALLOWED: &[(&str, &[libc::c_long])] = &[
    (
        // The allocator, thread stacks, `mlockall(MCL_FUTURE)` paging new
        // mappings in, the secret store (memfd_secret, sized with ftruncate,
        // locked and wiped).
        "memory",
        &[
            libc::SYS_brk,
            libc::SYS_mmap,
            libc::SYS_munmap,
            libc::SYS_mremap,
            libc::SYS_mprotect,
            libc::SYS_madvise,
            libc::SYS_mlock,
            libc::SYS_munlock,
            libc::SYS_memfd_secret,
            libc::SYS_ftruncate,
        ],
    ),
    (
        // Threads: locks and condition variables (futex), a thread's start
        // and end (musl's pthread_create and exit; `clone` is allowed only
        // for threads, below), names (prctl PR_SET_NAME, below), yields,
        // the CPU count (std's available_parallelism), and the abort path.
        "threads",
        &[
            libc::SYS_futex,
            libc::SYS_set_robust_list,
            libc::SYS_set_tid_address,
            libc::SYS_exit,
            libc::SYS_exit_group,
            libc::SYS_sched_yield,
            libc::SYS_sched_getaffinity,
            libc::SYS_gettid,
            libc::SYS_getpid,
            libc::SYS_tkill,
            libc::SYS_tgkill,
        ],
    ),
    (
        // Signals: the signalfd the main thread reads, masks around thread
        // creation, std's stack-overflow guard (sigaltstack).
        "signals",
        &[
            libc::SYS_rt_sigprocmask,
            libc::SYS_rt_sigaction,
            libc::SYS_rt_sigreturn,
            libc::SYS_sigaltstack,
        ],
    ),
    (
        // Time: the lifecycle's deadlines, retries' sleeps, the logger's
        // timestamps (the vDSO serves most reads; these are its fallbacks).
        "time",
        &[
            libc::SYS_clock_gettime,
            libc::SYS_clock_getres,
            libc::SYS_gettimeofday,
            libc::SYS_nanosleep,
            libc::SYS_clock_nanosleep,
        ],
    ),
    (
        // Descriptors and reads: the console and sockets (read/write),
        // /proc for health, evidence at each renewal (/dev/sev-guest and
        // /dev/tdx_guest ioctls, the TPM, configfs-tsm: mkdir of a report,
        // writes to inblob, rmdir; Landlock confines where), readiness
        // waits (poll).
        "files",
        &[
            libc::SYS_read,
            libc::SYS_readv,
            libc::SYS_pread64,
            libc::SYS_write,
            libc::SYS_writev,
            libc::SYS_pwrite64,
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_close,
            libc::SYS_lseek,
            libc::SYS_fstat,
            libc::SYS_stat,
            libc::SYS_lstat,
            libc::SYS_newfstatat,
            libc::SYS_statx,
            libc::SYS_access,
            libc::SYS_faccessat,
            libc::SYS_fcntl,
            libc::SYS_ioctl,
            libc::SYS_getdents64,
            libc::SYS_mkdir,
            libc::SYS_mkdirat,
            libc::SYS_rmdir,
            libc::SYS_unlinkat,
            libc::SYS_readlink,
            libc::SYS_getcwd,
            libc::SYS_poll,
            libc::SYS_ppoll,
            libc::SYS_dup,
        ],
    ),
    (
        // Sockets: the verifier, Vault and transcription clients (connect),
        // the control and call listeners (accept), timeouts and shutdowns.
        "sockets",
        &[
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_accept,
            libc::SYS_accept4,
            libc::SYS_getsockname,
            libc::SYS_getpeername,
            libc::SYS_getsockopt,
            libc::SYS_setsockopt,
            libc::SYS_sendto,
            libc::SYS_recvfrom,
            libc::SYS_sendmsg,
            libc::SYS_recvmsg,
            libc::SYS_shutdown,
        ],
    ),
    (
        // Keys, nonces, TLS, renewal jitter.
        "randomness",
        &[libc::SYS_getrandom],
    ),
    (
        // The way out: sync then power-off (PID 1), or exit (a process);
        // halting with pause if the kernel refuses.
        "power-off",
        &[libc::SYS_sync, libc::SYS_reboot, libc::SYS_pause],
    ),
];

/// Allowed with conditions on their arguments.
fn conditional() -> Result<BTreeMap<i64, Vec<SeccompRule>>, seccompiler::BackendError> {
    let mut rules = BTreeMap::new();
    let eq =
        |arg, value| SeccompCondition::new(arg, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, value);
    // clone: threads only (CLONE_THREAD set). A new process would be a copy
    // of PID 1 holding its keys; exec is denied anyway.
    let thread = u64::try_from(libc::CLONE_THREAD).unwrap_or(0);
    rules.insert(
        libc::SYS_clone,
        vec![SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(thread),
            thread,
        )?])?],
    );
    // prctl: a new thread naming itself (std sets the name from the
    // thread). Nothing else: dumpable, no_new_privs and the capability
    // bounding set are settled before.
    rules.insert(
        libc::SYS_prctl,
        vec![SeccompRule::new(vec![eq(0, libc::PR_SET_NAME as u64)?])?],
    );
    Ok(rules)
}

/// The compiled filter: everything in [`ALLOWED`] and [`conditional`]
/// returns normally, anything else `EPERM`.
pub fn program() -> Result<BpfProgram, Pid1Error> {
    let err = |e: &dyn std::fmt::Display| Pid1Error::Seccomp(e.to_string());
    let mut rules = conditional().map_err(|e| err(&e))?;
    for (_, calls) in ALLOWED {
        for call in *calls {
            rules.insert(*call, Vec::new());
        }
    }
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(&e))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(EPERM),
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| err(&e))?;
    let mut program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(&e))?;
    no_kill(&mut program);
    Ok(program)
}

const EPERM: u32 = libc::EPERM as u32;

/// Rewrites every "kill the process" return in `program` into "fail with
/// EPERM": PID 1 must never be killed by its own filter.
fn no_kill(program: &mut BpfProgram) {
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    for insn in program.iter_mut() {
        if insn.code == RET_K
            && (insn.k == libc::SECCOMP_RET_KILL_PROCESS || insn.k == libc::SECCOMP_RET_KILL_THREAD)
        {
            insn.k = libc::SECCOMP_RET_ERRNO | EPERM;
        }
    }
}

/// Compiles and installs the filter on every thread of the process (TSYNC).
/// Irreversible.
pub fn install() -> Result<(), Pid1Error> {
    let program = program()?;
    seccompiler::apply_filter_all_threads(&program)
        .map_err(|e| Pid1Error::Seccomp(e.to_string()))?;
    crate::info_always!(rules = program.len(); "seccomp allow-list installed on every thread");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    const CHILD: &str = "ENCLAVE_SECCOMP_CHILD";

    #[test]
    fn the_program_never_kills() {
        let program = super::program().unwrap();
        assert!(
            program
                .iter()
                .all(|i| !(i.code == 0x06 && (i.k & 0xffff_0000) == 0)),
            "a kill return is left"
        );
    }

    /// The filter is irreversible, so it is installed in a child: this same
    /// test binary, re-run on the single test below with an env var.
    #[test]
    fn forbidden_syscalls_fail_with_eperm_and_the_process_survives() {
        if std::env::var_os(CHILD).is_some() {
            return child();
        }
        super::super::rerun_test_in_child(
            "pid1::seccomp::tests::forbidden_syscalls_fail_with_eperm_and_the_process_survives",
            CHILD,
            std::ffi::OsStr::new("1"),
        );
    }

    fn child() {
        use nix::errno::Errno;
        super::install().unwrap();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(
            status
                .lines()
                .any(|l| l.split_whitespace().eq(["Seccomp:", "2"])),
            "{status}"
        );
        assert!(
            status
                .lines()
                .any(|l| l.split_whitespace().eq(["NoNewPrivs:", "1"])),
            "{status}"
        );
        let e = nix::mount::mount(
            Some("none"),
            "/tmp",
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap_err();
        assert_eq!(e, Errno::EPERM, "mount");
        // chroot: this test runs as root, so without the filter it would work.
        let e = nix::unistd::chroot("/").unwrap_err();
        assert_eq!(e, Errno::EPERM, "chroot");
        let e = Command::new("/bin/true").status().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "spawn/exec: {e}");
        let e = std::os::unix::net::UnixStream::pair().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "socketpair: {e}");
        // What stays allowed still works: reading, time, randomness.
        let mut buf = [0u8; 16];
        assert!(crate::sys::getrandom_nonblocking(&mut buf).unwrap());
        let _ = std::time::Instant::now();
        println!("CHILD-DONE");
    }
}
