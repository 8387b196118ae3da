//! Signals through a signalfd.
//!
//! Every signal is blocked except the synchronous CPU faults (SIGSEGV, SIGBUS,
//! SIGILL, SIGFPE, SIGTRAP, SIGSYS) and SIGABRT: blocking those would turn a
//! crash into a hang. Blocked signals queue on the signalfd, which the serving
//! loop polls like any other descriptor (catatonit's design): no handlers, no
//! async-signal-safety concerns.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

/// The signal source.
pub struct Signals {
    fd: SignalFd,
}

/// Signals that must stay deliverable: a fault must kill (and, for PID 1,
/// reach the panic path) rather than spin on the faulting instruction.
const FAULTS: [Signal; 7] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGILL,
    Signal::SIGFPE,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

impl Signals {
    /// Blocks everything but the faults and opens the signalfd.
    pub fn take_over() -> nix::Result<Signals> {
        let mut mask = SigSet::all();
        for s in FAULTS {
            mask.remove(s);
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
        Ok(Signals { fd })
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> &SignalFd {
        &self.fd
    }

    /// Handles every pending signal: reaps children on SIGCHLD, and returns
    /// the first shutdown request (SIGTERM, SIGINT from Ctrl-Alt-Del, SIGPWR
    /// from the hypervisor, SIGQUIT) if any.
    pub fn drain(&mut self) -> Option<&'static str> {
        let mut shutdown = None;
        while let Ok(Some(info)) = self.fd.read_signal() {
            let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
            match Signal::try_from(signo) {
                Ok(Signal::SIGCHLD) => reap(),
                Ok(s @ (Signal::SIGTERM | Signal::SIGINT | Signal::SIGPWR | Signal::SIGQUIT)) => {
                    crate::info_always!(signal = s.as_str(); "shutdown requested by signal");
                    shutdown.get_or_insert(s.as_str());
                }
                Ok(s) => crate::info_always!(signal = s.as_str(); "signal ignored"),
                Err(_) => crate::info_always!(signo = signo; "unknown signal ignored"),
            }
        }
        shutdown
    }
}

/// Reaps every exited child. PID 1 inherits orphans; a zombie left unreaped
/// holds a PID forever.
fn reap() {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(status) => {
                crate::info_always!(status = format!("{status:?}").as_str(); "child reaped")
            }
        }
    }
}
