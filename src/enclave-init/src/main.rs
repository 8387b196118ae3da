//! `enclave-init`: PID 1 of an enclave-init confidential VM.
//!
//! Module map:
//! - [`boot`]: the boot-to-ready sequence, one step per line (start reading here).
//! - [`pid1`]: what only the first process does: signals, mounts, console,
//!   kernel modules, the no-write sandbox, entropy, panic hook, power-off.
//! - [`config`]: the measured configuration file plus `enclave.*` kernel
//!   command line overrides, validated into a typed [`config::Config`].
//! - [`keys`]: the enclave key pair.
//! - [`secrets`]: the locked, non-dumpable, zeroizing secret store.
//! - [`zalloc`]: the global allocator that wipes every freed block.
//! - [`attest`]: the verifier exchange (steps 4-6) and trusted time.
//! - [`vault`]: Vault/OpenBao login and response-wrapped secret reads (steps 7-8).
//! - [`renew`]: step 10, re-attestation before expiry, fail-closed.
//! - [`control`]: the host channel: readiness report and control commands.
//! - [`service`]: the call service (HTTPS on the call port): calls, Retell
//!   events, health, metrics; its TLS key and certificate request.
//! - [`state`]: what boot, renewal, control and the service share.
//! - [`metrics`]: the service's counters, in Prometheus text.
//! - [`logger`]: one structured line per event on the console.
//! - [`tee`]: the evidence source, chosen once at boot.
//! - [`sys`]: the only module with `unsafe`: syscalls nix does not wrap.
//!
//! The same binary runs as PID 1 of a VM and as an ordinary process (tests,
//! development); [`pid1::Role`] decides which duties apply.

mod attest;
mod boot;
mod config;
mod control;
mod keys;
mod renew;
mod secrets;
mod service;
mod state;
mod logger;
mod metrics;
mod pid1;
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
