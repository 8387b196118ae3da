//! Attacks from inside: code in the guest that tries to leave its sandbox
//! (a test hook stands in for a compromised component of the guest).

use enclave_tests::stack::TEST_HOOKS;

use crate::rig::{self, Options, Rig};
use crate::Verdict;

/// From a guest thread (the control thread, created after every
/// confinement step), the test-hooks build's `sandbox-probe` tries a write
/// outside the Landlock rules, chroot, spawning a process and socketpair
/// (refused only by the seccomp list). Held when every attempt is refused,
/// nothing was written, and the guest still answers calls and reports its
/// sandbox on.
pub fn sandbox_escape() -> Verdict {
    let rig = Rig::new(Options {
        token_ttl_secs: 20,
        ..Options::default()
    });
    let (guest, report, client) = rig.guest(TEST_HOOKS);
    let target = guest.dir.path().join("escaped");
    let answer = guest.command(&report, &format!("sandbox-probe {}", target.display()));
    let refused = |name: &str, want: &str| {
        answer
            .split_whitespace()
            .any(|w| w == format!("{name}={want}"))
    };
    let all_refused = refused("write", "EACCES")
        && refused("chroot", "EPERM")
        && refused("exec", "EPERM")
        && refused("socketpair", "EPERM");
    let written = target.exists();
    let (status, took) = rig::call(&client, "after-probe");
    let health = rig::health(&client);
    let sandbox_on = health.as_ref().is_some_and(|(code, h)| {
        *code == 200 && h["sandbox"]["seccomp"] == true && h["sandbox"]["no_new_privs"] == true
    });
    let alive = guest.command(&report, "ping") == "pong";
    drop(guest);
    let figure = format!(
        "probe from a guest thread: {answer}; file created: {written}; then a call {status} in {} ms, health 200 with seccomp and no_new_privs: {sandbox_on}, control answers: {alive}",
        took.as_millis()
    );
    Verdict::judge(
        all_refused && !written && status == 200 && sandbox_on && alive,
        figure,
    )
}
