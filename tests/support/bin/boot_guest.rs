//! Boots the guest image once under QEMU and walks the host side of the
//! protocol: readiness, ping, status, poweroff. Used by `scripts/demo` and
//! `scripts/bench-boot` (which reads the `boot-to-ready` line).
//!
//!   boot-guest INITRD [--quiet]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use enclave_tests::qemu::Guest;

fn main() {
    enclave_tests::one_line_panics("boot-guest");
    let mut args = std::env::args().skip(1);
    let initrd = args.next().expect("usage: boot-guest INITRD [--quiet]");
    let quiet = args.next().as_deref() == Some("--quiet");
    let mut guest = Guest::boot(std::path::Path::new(&initrd), "");
    let ready = match guest.wait_ready(Duration::from_secs(120)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("boot-guest: {e}");
            std::process::exit(1);
        }
    };
    let ms = guest.started.elapsed().as_secs_f64() * 1000.0;
    println!("boot-to-ready {ms:.0} ms (QEMU start to the readiness report)");
    if !quiet {
        println!("readiness report: {ready}");
        for cmd in ["ping", "status"] {
            println!(
                "{cmd} -> {}",
                guest.command(cmd).unwrap_or_else(|e| format!("error: {e}"))
            );
        }
    }
    let answer = guest
        .command("poweroff")
        .unwrap_or_else(|e| format!("error: {e}"));
    let status = guest.wait_exit(Duration::from_secs(60));
    if !quiet {
        println!("poweroff -> {answer}");
        println!("QEMU exit: {status:?}");
        println!("--- guest console ---\n{}", guest.console());
    }
    if !matches!(status, Ok(s) if s.success()) {
        std::process::exit(1);
    }
}
