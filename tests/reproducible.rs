//! Two clean builds in two different directories give identical bytes: the
//! guest binary and the initramfs (and so the launch measurement).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use enclave_tests::{repo_root, TempDir};

/// Copies the checkout's files (tracked and new, not ignored) to `to`.
fn copy_checkout(to: &Path) {
    let root = repo_root();
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    for rel in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        let src = root.join(rel);
        if !src.is_file() {
            continue; // deleted in the working tree
        }
        let dst = to.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&src, &dst).unwrap();
    }
}

/// Builds the guest and the image in `dir` with its own target directory.
fn build_in(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let image = dir.join("out/initramfs.cpio");
    let status = Command::new("bash")
        .arg(dir.join("scripts/build-image"))
        .arg(&image)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("SOURCE_DATE_EPOCH", "1735689600") // 2025-01-01: a release build refuses a time before its floor
        .status()
        .unwrap();
    assert!(status.success(), "build in {} failed", dir.display());
    let bin = dir.join("target/x86_64-unknown-linux-musl/release/enclave-init");
    (std::fs::read(bin).unwrap(), std::fs::read(image).unwrap())
}

#[test]
fn two_clean_builds_in_different_directories_are_identical() {
    let a = TempDir::new("repro-a");
    let b_parent = TempDir::new("repro-b");
    // Different depth and name, so any leaked path would differ in length.
    let b: PathBuf = b_parent.path().join("a/much/longer/checkout");
    copy_checkout(a.path());
    copy_checkout(&b);
    let (bin_a, img_a) = build_in(a.path());
    let (bin_b, img_b) = build_in(&b);
    assert!(
        bin_a == bin_b,
        "guest binaries differ between build directories"
    );
    assert!(img_a == img_b, "images differ between build directories");
    for leak in [
        a.path().to_str().unwrap(),
        b.to_str().unwrap(),
        "/.cargo/registry",
    ] {
        assert!(
            !contains(&bin_a, leak.as_bytes()),
            "the binary contains the path {leak}"
        );
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Our cpio is read by GNU cpio exactly as meant: names, modes, owner,
/// mtime, device numbers.
#[test]
fn gnu_cpio_reads_our_archive() {
    let dir = TempDir::new("cpio");
    let entries = vec![
        image::Entry::dir("dev", 0o755),
        image::Entry::char_device("dev/console", 0o600, 5, 1),
        image::Entry::file("init", 0o755, b"#!init".to_vec()),
        image::Entry::dir("etc", 0o755),
        image::Entry::file("etc/x", 0o644, b"0123456789".to_vec()),
    ];
    let path = dir.path().join("a.cpio");
    std::fs::write(&path, image::newc::write(&entries, 1_700_000_000)).unwrap();
    let out = Command::new("cpio")
        .args(["-t", "-v", "--quiet", "-F"])
        .arg(&path)
        .env("TZ", "UTC")
        .output()
        .expect("GNU cpio (scripts/install-deps installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 5, "{listing}");
    assert!(
        lines[0].starts_with("drwxr-xr-x   2 root     root            0 Nov 14  2023 dev"),
        "{listing}"
    );
    assert!(
        lines[1].starts_with("crw-------   1 root     root       5,   1 Nov 14  2023 dev/console"),
        "{listing}"
    );
    assert!(lines[2].starts_with("drwxr-xr-x"), "{listing}");
    assert!(lines[3].contains("10 Nov 14  2023 etc/x"), "{listing}");
    assert!(
        lines[4].starts_with("-rwxr-xr-x   1 root     root            6 Nov 14  2023 init"),
        "{listing}"
    );
}
