//! Capabilities dropped to what PID 1 still needs, and no_new_privs.
//!
//! When: right after the no-write sandbox, before the secrets and before any
//! thread but the console writer exists. Capabilities (all five sets) are a
//! property of each thread, not of the process: dropping them later, once
//! the supervisor, watchdog, control and call-service threads run, would
//! leave those threads with every capability. Nothing after this step needs
//! more than [`PID1_KEEPS`]: the mounts and modules are done, the listeners
//! are bound (a vsock port below 1024 needs CAP_NET_BIND_SERVICE only at
//! `bind`), and the evidence devices (`/dev/sev-guest`, `/dev/tdx_guest`,
//! configfs-tsm, the TPM) check file modes, which uid 0 owns, not
//! capabilities. The console writer thread, started before everything,
//! drops all of its own when it starts, before its first write
//! ([`super::sandbox::confine_console_writer`]).
//!
//! Memory locking: PID 1 locks every page (`mlockall(MCL_FUTURE)`) and the
//! secret store lives in `memfd_secret`, both bounded by RLIMIT_MEMLOCK for a
//! process without CAP_IPC_LOCK. The limit is raised to unlimited here, while
//! CAP_SYS_RESOURCE is still held, so that CAP_IPC_LOCK need not be kept;
//! where it cannot be raised (a kernel or container that withholds
//! CAP_SYS_RESOURCE), PID 1 keeps CAP_IPC_LOCK instead.

use caps::{CapSet, Capability, CapsHashSet};
use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};

use super::{Pid1Error, Role};

/// What PID 1 keeps, and why:
/// - `CAP_SYS_BOOT`: `reboot(RB_POWER_OFF)`, the only way PID 1 ends, on a
///   shutdown request, a fatal error or a panic (the panic hook powers off
///   from whichever thread panicked, so every thread keeps it).
///
/// A process (tests, development) exits instead of powering off and keeps
/// nothing.
pub const PID1_KEEPS: &[Capability] = &[Capability::CAP_SYS_BOOT];

/// What is left after [`drop_privileges`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privileges {
    /// What was kept, for the other threads that drop theirs.
    pub kept: CapsHashSet,
    /// Effective capabilities, by name, sorted.
    pub effective: Vec<String>,
    /// The bounding set, by name, sorted.
    pub bounding: Vec<String>,
}

/// Raises RLIMIT_MEMLOCK, drops every capability but what `role` needs from
/// the calling thread's bounding, ambient, inheritable, permitted and
/// effective sets, and sets no_new_privs. Threads created afterwards inherit
/// all of it.
pub fn drop_privileges(role: Role) -> Result<Privileges, Pid1Error> {
    let mut keep: CapsHashSet = match role {
        Role::Pid1 => PID1_KEEPS.iter().copied().collect(),
        Role::Process => CapsHashSet::new(),
    };
    if setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY).is_err()
        && role == Role::Pid1
    {
        // No CAP_SYS_RESOURCE (a container, a kernel that withholds it):
        // PID 1 keeps CAP_IPC_LOCK instead, or the pages it maps from now
        // on (locked by MCL_FUTURE) would fail past the limit. A process
        // locks only its secret store and keeps the limit it had.
        crate::warn_always!("cannot raise RLIMIT_MEMLOCK: keeping CAP_IPC_LOCK");
        keep.insert(Capability::CAP_IPC_LOCK);
    }
    drop_in_this_thread(&keep, role == Role::Pid1)?;
    let read = |set| {
        caps::read(None, set).map_err(|e| Pid1Error::Privileges {
            step: "read back",
            source: e.to_string(),
        })
    };
    Ok(Privileges {
        effective: names(&read(CapSet::Effective)?),
        bounding: names(&read(CapSet::Bounding)?),
        kept: keep,
    })
}

/// Drops every capability but `keep` from the calling thread and sets its
/// no_new_privs. `strict`: a bounding set that cannot be reduced (no
/// CAP_SETPCAP) is an error; otherwise it is left as it is, which only an
/// unprivileged process meets: with no_new_privs it can gain nothing from it.
pub fn drop_in_this_thread(keep: &CapsHashSet, strict: bool) -> Result<(), Pid1Error> {
    let err = |step: &'static str| {
        move |e: caps::errors::CapsError| Pid1Error::Privileges {
            step,
            source: e.to_string(),
        }
    };
    let can_setpcap =
        caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).map_err(err("capget"))?;
    if can_setpcap {
        for cap in caps::read(None, CapSet::Bounding).map_err(err("read the bounding set"))? {
            if !keep.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap).map_err(err("PR_CAPBSET_DROP"))?;
            }
        }
    } else if strict {
        return Err(Pid1Error::Privileges {
            step: "bounding set",
            source: "CAP_SETPCAP is not effective".to_owned(),
        });
    }
    caps::clear(None, CapSet::Ambient).map_err(err("clear the ambient set"))?;
    caps::clear(None, CapSet::Inheritable).map_err(err("clear the inheritable set"))?;
    let permitted = caps::read(None, CapSet::Permitted).map_err(err("read the permitted set"))?;
    let left: CapsHashSet = permitted.intersection(keep).copied().collect();
    // Effective first: it must stay a subset of permitted at every step.
    caps::set(None, CapSet::Effective, &left).map_err(err("capset effective"))?;
    caps::set(None, CapSet::Permitted, &left).map_err(err("capset permitted"))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| Pid1Error::Privileges {
        step: "PR_SET_NO_NEW_PRIVS",
        source: e.to_string(),
    })?;
    Ok(())
}

fn names(set: &CapsHashSet) -> Vec<String> {
    let mut v: Vec<String> = set.iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {

    /// Dropping is irreversible, so the dropping part runs in a child: this
    /// same test binary, re-run on the single test below with an env var.
    const CHILD: &str = "ENCLAVE_PRIVILEGES_CHILD";

    #[test]
    fn capabilities_are_dropped_for_every_later_thread() {
        if std::env::var_os(CHILD).is_some() {
            return child();
        }
        super::super::rerun_test_in_child(
            "pid1::privileges::tests::capabilities_are_dropped_for_every_later_thread",
            CHILD,
            std::ffi::OsStr::new("1"),
        );
    }

    fn status_field(status: &str, name: &str) -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }

    fn child() {
        let privileged =
            caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SETPCAP).unwrap();
        let left = super::drop_privileges(super::Role::Pid1);
        if !privileged {
            // Not root: PID 1's strict mode refuses, a process's goes on.
            assert!(left.is_err());
            super::drop_privileges(super::Role::Process).unwrap();
            println!("CHILD-DONE");
            return;
        }
        let left = left.unwrap();
        // CAP_IPC_LOCK stays only where RLIMIT_MEMLOCK cannot be raised
        // (no CAP_SYS_RESOURCE, as in some containers).
        let (names, bits): (&[&str], u64) = if left.kept.contains(&caps::Capability::CAP_IPC_LOCK) {
            (&["CAP_IPC_LOCK", "CAP_SYS_BOOT"], 1 << 14 | 1 << 22)
        } else {
            (&["CAP_SYS_BOOT"], 1 << 22)
        };
        assert_eq!(left.effective, names);
        assert_eq!(left.bounding, names);
        // A thread created afterwards has the same sets (the kernel's view).
        let status =
            std::thread::spawn(|| std::fs::read_to_string("/proc/thread-self/status").unwrap())
                .join()
                .unwrap();
        let boot = format!("{bits:016x}");
        assert_eq!(status_field(&status, "CapEff:"), boot, "{status}");
        assert_eq!(status_field(&status, "CapPrm:"), boot, "{status}");
        assert_eq!(status_field(&status, "CapBnd:"), boot, "{status}");
        assert_eq!(
            status_field(&status, "CapInh:"),
            "0000000000000000",
            "{status}"
        );
        assert_eq!(
            status_field(&status, "CapAmb:"),
            "0000000000000000",
            "{status}"
        );
        assert_eq!(status_field(&status, "NoNewPrivs:"), "1", "{status}");
        // What a dropped capability guarded is refused: mount needs CAP_SYS_ADMIN.
        let e = nix::mount::mount(
            Some("none"),
            "/proc",
            Some("proc"),
            nix::mount::MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .unwrap_err();
        assert_eq!(e, nix::errno::Errno::EPERM);
        println!("CHILD-DONE");
    }
}
