//! Children that die with us: every server or guest a test, a benchmark or
//! the demo starts is killed by the kernel when the process that started it
//! dies, however it dies (success, panic, or SIGKILL from a runner that
//! gave up), so nothing is left holding ports, OpenBao state or the
//! caller's output pipe.
//!
//! `Drop` guards ([`crate::stack::Proc`], [`crate::process::Guest`]) cover
//! the orderly exits; this covers the rest with `PR_SET_PDEATHSIG`. The
//! kernel sends that signal when the *thread* that forked the child ends,
//! not the process, and tests and attacks start guests from short-lived
//! threads; so every spawn is done by one thread that lives as long as the
//! process ([`spawn`]).
//!
//! UNSAFETY: `pre_exec` is unsafe because the closure runs between fork and
//! exec; it only calls `prctl` and `getppid`, both async-signal-safe.
#![expect(
    unsafe_code,
    reason = "pre_exec: PR_SET_PDEATHSIG in the child between fork and exec"
)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

type Job = (Command, Sender<io::Result<Child>>);

/// The spawner: one thread for the whole process, never ending (it waits
/// for the next job until the process exits).
fn spawner() -> &'static Mutex<Sender<Job>> {
    static SPAWNER: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || {
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the child spawner thread");
        Mutex::new(tx)
    })
}

/// Arranges for the child `cmd` will start to get SIGKILL when this
/// process dies.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    let parent = std::process::id();
    // SAFETY: the closure only makes async-signal-safe system calls (prctl,
    // getppid) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then the
            // signal will never come, so do not start at all.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::other("the parent died before exec"));
            }
            Ok(())
        })
    }
}

/// Spawns `cmd` so that the child dies with this process (see the module
/// comment): the command is taken out of `cmd` (left empty) and started by
/// the spawner thread.
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    let mut owned = std::mem::replace(cmd, Command::new("/nonexistent/spent-command"));
    die_with_parent(&mut owned);
    let (tx, rx) = channel();
    spawner()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send((owned, tx))
        .map_err(|_| io::Error::other("the child spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("the child spawner thread is gone"))?
}

/// `.spawn_dying()` in a `Command` builder chain, for [`spawn`].
pub trait SpawnDying {
    /// [`spawn`].
    fn spawn_dying(&mut self) -> io::Result<Child>;
}

impl SpawnDying for Command {
    fn spawn_dying(&mut self) -> io::Result<Child> {
        spawn(self)
    }
}

/// Every descendant of `pid` (children, their children...), from
/// `/proc/PID/task/*/children`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let text = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in text.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// A process's command name (`/proc/PID/comm`), if it still exists and is
/// not a zombie.
pub fn live_comm(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (comm) STATE ...": the state follows the last ')'.
    let state = stat.rsplit_once(") ")?.1.chars().next()?;
    if state == 'Z' || state == 'X' {
        return None;
    }
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}
