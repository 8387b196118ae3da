//! The attacks, one module per guarantee they try to break. Add an attack
//! by writing its `fn() -> Verdict` and a line in [`ALL`].

use std::time::Duration;

use crate::Attack;

mod audit;
mod audit_stall;
mod callapi;
mod clock;
mod console;
mod failover;
mod fleet;
mod lifecycle;
mod pop;
mod sandbox;
mod starve;
mod verifier;

/// Every attack of the suite, in the order the table lists them.
pub static ALL: &[Attack] = &[
    Attack {
        name: "pin-control",
        claim: "holding the control channel neither stops renewal nor keeps secrets past the trust deadline",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: lifecycle::pin_control,
    },
    Attack {
        name: "stall-verifier",
        claim: "a verifier path that never answers, or drips, cannot keep secrets past the deadline",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: lifecycle::stall_verifier,
    },
    Attack {
        name: "stall-vault",
        claim: "a Vault path that never answers, or drips, cannot keep secrets past the deadline",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: lifecycle::stall_vault,
    },
    Attack {
        name: "clock-skew",
        claim: "a VM paused across the trust deadline answers no call after it (QEMU)",
        budget: Duration::from_secs(60),
        exclusive: true,
        run: clock::clock_skew,
    },
    Attack {
        name: "stall-upstream",
        claim: "a dripping transcription upstream ends the call at its deadline, not per read",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: lifecycle::stall_upstream,
    },
    Attack {
        name: "unauthenticated-call",
        claim: "without the platform's client certificate (none, another CA's, the platform's without its key) no call or metrics request is served and no caller hash leaks",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: callapi::unauthenticated_call,
    },
    Attack {
        name: "pii-canary",
        claim: "canaries in every call, webhook and error-path field reach none of the bytes the host sees (console, ready report, control status, metrics, health, error bodies)",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: callapi::pii_canary,
    },
    Attack {
        name: "replay-token",
        claim: "replayed attest requests and expired tokens are refused",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: lifecycle::replay_token,
    },
    Attack {
        name: "steal-token",
        claim: "a token and a client certificate the host holds, without the enclave key, do not log in to OpenBao's cert mount; a certificate-mode guest is provisioned",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: pop::steal_token,
    },
    Attack {
        name: "revoked-token",
        claim: "no Vault token of the guest outlives provisioning; revocation does not stop renewal",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: lifecycle::revoked_token,
    },
    Attack {
        name: "verifier-blip",
        claim: "a 2 s verifier blip at boot is retried; a denial still powers off at once",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: fleet::verifier_blip,
    },
    Attack {
        name: "vault-blip",
        claim: "a 2 s Vault blip at boot is retried",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: fleet::vault_blip,
    },
    Attack {
        name: "verifier-restart",
        claim: "a verifier restart shorter than the retry deadline withdraws no guest",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: fleet::verifier_restart,
    },
    Attack {
        name: "verifier-shed",
        claim: "a verifier at its connection limit answers 503 with Retry-After, and guests wait as told and all get ready",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: fleet::verifier_shed,
    },
    Attack {
        name: "verifier-failover",
        claim: "one of two verifier replicas behind HAProxy SIGKILLed while guests renew withdraws no guest; tokens of either replica are accepted",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: failover::verifier_failover,
    },
    Attack {
        name: "herd",
        claim: "guests booted together through a verifier restart all get ready and renew spread out (50 here; scripts/bench-fleet runs 200)",
        budget: Duration::from_secs(60),
        exclusive: true,
        run: fleet::herd,
    },
    Attack {
        name: "console-stall",
        claim: "a console the host stops reading stalls no call and no withdrawal",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: console::console_stall,
    },
    Attack {
        name: "log-flood",
        claim: "peer-triggered log lines are rate-limited: the console's rate stays bounded, calls keep their latency",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: console::log_flood,
    },
    Attack {
        name: "sandbox-escape",
        claim: "code in a guest thread can neither write outside the Landlock rules nor make a syscall off the seccomp list; the guest keeps serving",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: sandbox::sandbox_escape,
    },
    Attack {
        name: "keepalive-hog",
        claim: "more idle keep-alive connections than workers starve no call: an idle one is closed when another waits",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: starve::keepalive_hog,
    },
    Attack {
        name: "slowloris",
        claim: "requests dripped a byte a second starve no call and are cut at the request timeout",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: starve::slowloris,
    },
    Attack {
        name: "truncated-hello",
        claim: "half ClientHellos and silent connections starve no call and are closed at the handshake deadline",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: starve::truncated_hello,
    },
    Attack {
        name: "huge-content-length",
        claim: "declared bodies that never come are not preallocated: 413 over the limit, 400 for a bad or doubled length, calls served",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: starve::huge_content_length,
    },
    Attack {
        name: "verifier-slowloris",
        claim: "64 connections dripping a handshake or a request a byte a second hold no verifier worker past its deadline: guests keep renewing, none withdraws, a real client's exchanges all succeed",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: verifier::verifier_slowloris,
    },
    Attack {
        name: "verifier-flood",
        claim: "a flood of fast connections (challenges, bad bodies, abandoned handshakes) stops no renewal: guests keep renewing, none withdraws, a real client's exchanges all succeed",
        budget: Duration::from_secs(60),
        exclusive: true,
        run: verifier::verifier_flood,
    },
    Attack {
        name: "audit-tamper",
        claim: "records the host deletes, reorders, edits, replays or forges, in transit or in the database, are each detected and named by `enclavectl audit verify`",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: audit::audit_tamper,
    },
    Attack {
        name: "audit-stall",
        claim: "a collector path the host stalls makes a guest with audit.required refuse calls within audit.deadline_ms and lose no record once released; without it, calls are served and drops counted and named",
        budget: Duration::from_secs(60),
        exclusive: false,
        run: audit_stall::audit_stall,
    },
];
