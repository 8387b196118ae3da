//! The real guest: enclave-init as PID 1 of a QEMU VM (TCG) with Debian's
//! kernel and virtio-vsock, every step asserted from the host side.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Duration;

use enclave_tests::qemu::{Guest, GUEST_CID};
use enclave_tests::{build_image, image_config, TempDir};

const BOOT: Duration = Duration::from_secs(180);
const EXIT: Duration = Duration::from_secs(60);

fn assert_clean_power_off(guest: &mut Guest) -> String {
    let status = guest.wait_exit(EXIT).unwrap();
    let console = guest.console();
    assert!(status.success(), "QEMU exit {status}; console:\n{console}");
    assert!(
        console.contains("reboot: Power down"),
        "no clean power-off; console:\n{console}"
    );
    assert!(
        !console.contains("Kernel panic"),
        "kernel panic; console:\n{console}"
    );
    assert!(
        !console.contains("Attempted to kill init"),
        "init exited; console:\n{console}"
    );
    console
}

#[test]
fn boots_reports_ready_answers_the_host_and_powers_off() {
    let dir = TempDir::new("img");
    let initrd = build_image(dir.path(), &image_config(), None);
    let mut guest = Guest::boot(&initrd, "");

    let ready = guest.wait_ready(BOOT).unwrap();
    assert_eq!(ready["event"], "ready", "{ready}");
    assert_eq!(ready["role"], "pid1", "{ready}");
    assert_eq!(ready["cid"], GUEST_CID, "{ready}");
    assert_eq!(ready["modules_loaded"], 8, "{ready}");
    assert_eq!(ready["control"], "vsock://any:1234", "{ready}");
    let sandbox = ready["sandbox"].as_str().unwrap_or_default();
    assert!(
        sandbox.starts_with("landlock-abi-"),
        "Debian's kernel has Landlock: {ready}"
    );
    let steps: Vec<&str> = ready["steps_us"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "take_over",
            "modules",
            "config",
            "entropy",
            "evidence_source",
            "sandbox",
            "privileges",
            "key"
        ]
    );
    assert_eq!(ready["evidence_source"], "sim", "{ready}");
    // PID 1 keeps only what power-off needs (pid1/privileges.rs).
    assert_eq!(
        ready["capabilities"]["effective"],
        serde_json::json!(["CAP_SYS_BOOT"]),
        "{ready}"
    );
    assert_eq!(
        ready["capabilities"]["bounding"],
        serde_json::json!(["CAP_SYS_BOOT"]),
        "{ready}"
    );

    assert_eq!(guest.command("ping").unwrap(), "pong");
    let status: serde_json::Value =
        serde_json::from_str(&guest.command("status").unwrap()).unwrap();
    assert_eq!(status["cid"], GUEST_CID);
    // The sandbox as the guest's kernel sees it, with the filter on.
    let state = &status["sandbox_state"];
    assert_eq!(state["seccomp"], true, "{status}");
    assert_eq!(state["no_new_privs"], true, "{status}");
    assert_eq!(
        state["capabilities"],
        serde_json::json!(["CAP_SYS_BOOT"]),
        "{status}"
    );
    assert!(
        state["landlock_abi"].as_u64().is_some_and(|abi| abi >= 1),
        "{status}"
    );
    assert_eq!(guest.command("reboot").unwrap(), "error unknown-command");
    assert_eq!(
        guest.command("ping").unwrap(),
        "pong",
        "still serving after a bad command"
    );
    assert_eq!(guest.command("poweroff").unwrap(), "ok");

    let console = assert_clean_power_off(&mut guest);
    for line in [
        "msg=\"module loaded\" module=vmw_vsock_virtio_transport.ko",
        "msg=\"no-write sandbox enforced\"",
        "msg=\"readiness reported\" addr=vsock://2:9000",
        "msg=\"shutting down\" role=pid1 reason=\"control: poweroff\"",
    ] {
        assert!(console.contains(line), "console lacks {line:?}:\n{console}");
    }
}

/// The guest kernel install-deps fetched has Landlock built in (its
/// `config`, from the Debian package), and the measured command line
/// enables it explicitly rather than through the kernel's default list.
#[test]
fn the_guest_kernel_has_landlock_and_the_command_line_enables_it() {
    let config = std::fs::read_to_string(enclave_tests::kernel_dir().join("config")).unwrap();
    assert!(
        config.lines().any(|l| l == "CONFIG_SECURITY_LANDLOCK=y"),
        "the guest kernel lacks Landlock"
    );
    let cmdline = enclave_tests::qemu::cmdline("");
    let lsm = cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("lsm="))
        .next_back()
        .unwrap_or_else(|| panic!("no lsm= in {cmdline}"));
    assert!(lsm.split(',').any(|m| m == "landlock"), "{cmdline}");
}

/// Debian's kernel has Landlock in its default LSM list; an `lsm=` without
/// it (as a host choosing the command line of an unmeasured boot, or a
/// kernel built without it) leaves the required sandbox unavailable: the
/// guest powers off with the reason instead of running unconfined.
#[test]
fn kernel_without_landlock_powers_off_with_the_reason() {
    let dir = TempDir::new("img");
    let initrd = build_image(dir.path(), &image_config(), None);
    let mut guest = Guest::boot(&initrd, "lsm=yama");
    let console = assert_clean_power_off(&mut guest);
    assert!(
        console.contains("boot.require_sandbox is on but the kernel has no Landlock"),
        "reason not printed:\n{console}"
    );
    assert!(console.contains("msg=\"fatal: powering off\""), "{console}");
}

#[test]
fn broken_configuration_file_powers_off_with_the_reason() {
    let dir = TempDir::new("img");
    let broken =
        image_config().replace("ready = \"vsock://2:9000\"", "ready = \"vsock://2:ninety\"");
    let initrd = build_image(dir.path(), &broken, None);
    let mut guest = Guest::boot(&initrd, "");
    let console = assert_clean_power_off(&mut guest);
    assert!(
        console.contains("configuration field `host.ready` (config file): \\\"vsock://2:ninety\\\": port \\\"ninety\\\" is not a number"),
        "reason not printed:\n{console}"
    );
    assert!(console.contains("msg=\"fatal: powering off\""), "{console}");
}

#[test]
fn broken_command_line_override_powers_off_with_the_reason() {
    let dir = TempDir::new("img");
    let initrd = build_image(dir.path(), &image_config(), None);
    let mut guest = Guest::boot(&initrd, "enclave.host.io_timeout_ms=0");
    let console = assert_clean_power_off(&mut guest);
    assert!(
        console.contains("configuration field `host.io_timeout_ms` (kernel command line): 0 is out of range 1..=600000"),
        "reason not printed:\n{console}"
    );
}

#[test]
fn missing_module_powers_off_with_the_reason() {
    let dir = TempDir::new("img");
    // The builder refuses a list naming a module it cannot find, so the
    // image is made with a valid list and the guest told to load one more.
    let initrd = build_image(dir.path(), &image_config(), None);
    let bytes = std::fs::read(&initrd).unwrap();
    let list =
        std::fs::read_to_string(enclave_tests::repo_root().join("image/modules.list")).unwrap();
    let patched = format!("{list}nosuch.ko\n");
    // Rebuild with the longer list using the builder's own entries.
    let recipe_dir = TempDir::new("img2");
    let mut entries = image::entries(&image::Recipe {
        init: enclave_tests::guest_bin(),
        config: dir.path().join("config.toml"),
        modules_list: Some(dir.path().join("modules.list")),
        modules_dir: Some(enclave_tests::kernel_dir().join("modules")),
        mtime: 1,
    })
    .unwrap();
    for e in &mut entries {
        if e.path == image::paths::MODULES_LIST {
            e.kind = image::Kind::File(patched.clone().into_bytes());
        }
    }
    let out = recipe_dir.path().join("initramfs.cpio");
    std::fs::write(&out, image::newc::write(&entries, 1)).unwrap();
    assert_ne!(std::fs::read(&out).unwrap(), bytes);

    let mut guest = Guest::boot(&out, "");
    let console = assert_clean_power_off(&mut guest);
    assert!(
        console.contains("module /lib/modules/nosuch.ko is listed but missing from the image"),
        "reason not printed:\n{console}"
    );
}

#[test]
fn kernel_without_vsock_powers_off_with_the_reason() {
    let dir = TempDir::new("img");
    // Only virtio, no vsock modules: AF_VSOCK does not exist in this guest.
    let initrd = build_image(
        dir.path(),
        &image_config(),
        Some("virtio_ring.ko\nvirtio.ko\nvirtio_pci_modern_dev.ko\nvirtio_pci_legacy_dev.ko\nvirtio_pci.ko\n"),
    );
    let mut guest = Guest::boot(&initrd, "");
    let console = assert_clean_power_off(&mut guest);
    assert!(
        console.contains("this kernel has no AF_VSOCK"),
        "reason not printed:\n{console}"
    );
}

#[test]
fn without_a_console_it_still_boots_serves_and_powers_off() {
    let dir = TempDir::new("img");
    let initrd = build_image(dir.path(), &image_config(), None);
    // No serial device at all: console=ttyS0 names nothing, so PID 1 has no
    // console to write to. It must neither hang nor panic the kernel.
    let mut guest = Guest::boot_without_serial(&initrd);
    let ready = guest.wait_ready(BOOT).unwrap();
    assert_eq!(ready["role"], "pid1", "{ready}");
    assert_eq!(guest.command("ping").unwrap(), "pong");
    assert_eq!(guest.command("poweroff").unwrap(), "ok");
    let status = guest.wait_exit(EXIT).unwrap();
    assert!(status.success(), "QEMU exit {status}");
}

/// Inside the real guest, as PID 1: code in the guest (the test-hooks
/// build's `sandbox-probe`, on the control thread) that tries to write
/// outside the Landlock rules (the initramfs root is a writable tmpfs, so
/// only Landlock stops it), chroot, spawn a process and make a socketpair
/// is refused each time, and PID 1 survives: it still answers and powers
/// off cleanly (issue 14).
#[test]
fn inside_the_guest_a_write_and_forbidden_syscalls_are_refused_and_pid1_survives() {
    let dir = TempDir::new("img");
    let config = format!("{}{}", image_config(), enclave_tests::stack::TEST_HOOKS);
    let initrd = build_image(dir.path(), &config, None);
    let mut guest = Guest::boot(&initrd, "");
    let ready = guest.wait_ready(BOOT).unwrap();
    assert_eq!(ready["role"], "pid1", "{ready}");
    let answer = guest.command("sandbox-probe /escaped").unwrap();
    for want in [
        "write=EACCES",
        "chroot=EPERM",
        "exec=EPERM",
        "socketpair=EPERM",
    ] {
        assert!(
            answer.split_whitespace().any(|w| w == want),
            "want {want} in {answer:?}"
        );
    }
    assert_eq!(guest.command("ping").unwrap(), "pong", "PID 1 survived");
    assert_eq!(guest.command("poweroff").unwrap(), "ok");
    let console = assert_clean_power_off(&mut guest);
    assert!(
        console.contains("sandbox probe (test hook)"),
        "the probe ran in the guest: {console}"
    );
}
