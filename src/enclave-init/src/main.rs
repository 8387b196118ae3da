//! `enclave-init`: PID 1 of an enclave-init confidential VM.
//!
//! Module map:
//! - [`boot`]: the boot-to-ready sequence, one step per line (start reading here).
//! - [`pid1`]: what only the first process does: signals, mounts, console,
//!   kernel modules, the no-write sandbox, entropy, panic hook, power-off.
//! - [`config`]: the measured configuration file plus `enclave.*` kernel
//!   command line overrides, validated into a typed [`config::Config`].
//! - [`keys`]: the enclave key pair.
//! - [`audit`]: the audit trail: signed, chained records of attestations,
//!   secrets, calls and lifecycle changes, queued and shipped to the
//!   collector; fails calls closed when `audit.required`.
//! - [`lifecycle`]: the only owner of secret lifetime: the state machine,
//!   the trust deadline, the supervisor that renews and the watchdog that
//!   wipes; the verifier-anchored clock.
//! - [`retry`]: transient vs final failures, backoff with full jitter and
//!   `Retry-After`, inside one deadline.
//! - [`secrets`]: the locked, non-dumpable, zeroizing secret store.
//! - [`zalloc`]: the global allocator that wipes every freed block.
//! - [`attest`]: one verifier exchange (steps 4-6).
//! - [`vault`]: one Vault/OpenBao login and response-wrapped read (steps 7-8).
//! - [`control`]: the host channel: readiness report and control commands.
//! - [`service`]: the call service (HTTPS on the call port): calls, Retell
//!   events, health, metrics; its TLS key and certificate request.
//! - [`metrics`]: the service's counters, in Prometheus text.
//! - [`logger`]: structured lines through a bounded queue and one writer
//!   thread, rate-limited per call site; the error-chain reporter.
//! - [`tee`]: the evidence source, chosen once at boot.
//! - [`sys`]: the only module with `unsafe`: syscalls nix does not wrap.
//!
//! The same binary runs as PID 1 of a VM and as an ordinary process (tests,
//! development); [`pid1::Role`] decides which duties apply.

mod logger;

mod attest;
mod audit;
mod boot;
mod config;
mod control;
mod keys;
mod lifecycle;
mod metrics;
mod pid1;
mod retry;
mod secrets;
mod service;
mod sys;
mod tee;
mod vault;
mod zalloc;

/// Every freed heap block is wiped (see [`zalloc`]).
#[global_allocator]
static ALLOCATOR: zalloc::ZeroizingAlloc = zalloc::ZeroizingAlloc;

fn main() -> ! {
    boot::run(pid1::Role::detect(), std::env::args_os().skip(1).collect())
}
