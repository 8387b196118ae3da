//! The guest binary stays small, static and free of host-side code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

use std::process::Command;

const MAX_BYTES: u64 = 4 * 1024 * 1024;

#[test]
fn guest_binary_is_static_stripped_and_small() {
    let bin = enclave_tests::guest_bin();
    let out = Command::new("file")
        .arg("-b")
        .arg(&bin)
        .output()
        .expect("`file` (scripts/install-deps installs it)");
    let desc = String::from_utf8_lossy(&out.stdout);
    // A static-PIE keeps ASLR; `file` calls it "static-pie linked".
    assert!(
        desc.contains("static-pie linked") || desc.contains("statically linked"),
        "{desc}"
    );
    assert!(!desc.contains("dynamically linked"), "{desc}");
    assert!(desc.contains(", stripped"), "{desc}");
    let bytes = std::fs::read(&bin).unwrap();
    assert!(
        !has_interpreter(&bytes),
        "the guest binary asks for a dynamic loader"
    );
    let size = bytes.len() as u64;
    println!("enclave-init: {size} bytes; {}", desc.trim());
    assert!(
        size < MAX_BYTES,
        "enclave-init is {size} bytes, over the {MAX_BYTES}-byte budget"
    );
}

/// The measured image carries no test hook: the release binary has no trace
/// of the keyed secret-hash query (its command word, its answers, its
/// configuration error), while the test-hooks build does (so the check is
/// not vacuous).
#[test]
fn release_guest_has_no_test_hooks() {
    let release = std::fs::read(enclave_tests::guest_bin()).unwrap();
    let hooks = std::fs::read(enclave_tests::guest_bin_hooks()).unwrap();
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    // (Short literals may be built from immediates, not stored: long ones.)
    for needle in [
        "error usage: secret-hash",
        "error no-such-secret",
        "error bad-key (want 64 hex digits)",
    ] {
        assert!(
            !contains(&release, needle),
            "the release guest contains {needle:?}"
        );
        assert!(
            contains(&hooks, needle),
            "the test-hooks guest lacks {needle:?}: this check would be vacuous"
        );
    }
    assert_ne!(release, hooks);
}

/// True when the ELF64 has a PT_INTERP program header.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum)
        .any(|i| u32::from_le_bytes(elf[phoff + i * phentsize..][..4].try_into().unwrap()) == 3)
}

/// The guest's dependency tree is the trusted computing base: every crate in
/// it is on this reviewed list, and no host-side crate of the workspace is.
#[test]
fn guest_links_only_reviewed_crates() {
    const ALLOWED: &[&str] = &[
        "enclave-init",
        // syscalls
        "libc",
        "nix",
        "bitflags",
        "cfg-if",
        "memoffset",
        // logging
        "log",
        // error types with their causes (#[source]); a proc-macro crate at
        // build time and a few trait impls at run time
        "thiserror",
        "thiserror-impl",
        // configuration and JSON
        "serde",
        "serde_core",
        "serde_derive",
        "serde_json",
        "serde_spanned",
        "itoa",
        "memchr",
        "zmij",
        "toml",
        "toml_datetime",
        "toml_parser",
        "winnow",
        // serde_derive's proc-macro build dependencies (not linked)
        "proc-macro2",
        "quote",
        "syn",
        "unicode-ident",
        // the workspace's guest-side crates
        "evidence",
        "tee-formats",
        "transport",
        "wire",
        "callproc",
        // the audit trail's record format (serde, serde_json, ring only)
        "audit-record",
        // hashing (REPORT_DATA binding): RustCrypto sha2 and its traits
        "sha2",
        "digest",
        "block-buffer",
        "crypto-common",
        "generic-array",
        "typenum",
        "cpufeatures",
        // base64 in wire messages (and in ureq, for Basic authorization)
        "base64",
        // HTTP/1.1 for the verifier exchange and the call service (ours)
        "bounded-http",
        "httparse",
        // HTTPS clients (Vault, the transcription upstream): ureq without
        // default features over our transport, rustls on our own config
        "ureq-transport",
        // ureq 3: the agent, pool and body handling
        "ureq",
        // ureq's sans-I/O HTTP/1.1 client state machine
        "ureq-proto",
        // ureq's URL path/query escaping
        "percent-encoding",
        // ureq's UTF-8 decoding of string bodies
        "utf8-zero",
        // crates.io's `http` (request/response types, ureq's API), which
        // keeps header values in `bytes`
        "http",
        "bytes",
        // TLS: rustls with the ring provider, webpki, and their small helpers
        "rustls",
        "rustls-pki-types",
        "rustls-webpki",
        "ring",
        "untrusted",
        "getrandom",
        "once_cell",
        "subtle",
        // secrets: zeroizing buffers, fixed-capacity containers
        "zeroize",
        "heapless",
        "hash32",
        "byteorder",
        "stable_deref_trait",
        // the sandbox: capability sets (caps, MIT/Apache-2.0, libc only) and
        // the seccomp allow-list (rust-vmm's seccompiler, Apache-2.0 OR
        // BSD-3-Clause, as in Firecracker; libc only without its json feature)
        "caps",
        "seccompiler",
    ];
    const HOST_ONLY: &[&str] = &[
        "enclavectl",
        "image",
        "measure",
        "enclave-tests",
        "clap",
        "appraisal",
        "verifier",
        "sim-psp",
        "proxy",
        "rcgen",
        "dcap-qvl",
        "sev",
    ];
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "enclave-init",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(enclave_tests::repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: std::collections::BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        crates.contains("nix"),
        "cargo tree gave nothing useful: {tree}"
    );
    for c in &crates {
        assert!(
            !HOST_ONLY.contains(c),
            "host-side crate {c} is in the guest"
        );
        assert!(
            ALLOWED.contains(c),
            "crate {c} is not on the guest's reviewed list (tests/guest_binary.rs)"
        );
    }
}

/// The proxy is untrusted and must only relay ciphertext: it has no TLS
/// crate, so it cannot terminate TLS even by mistake.
#[test]
fn the_proxy_links_no_tls() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree", "-p", "proxy", "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .current_dir(enclave_tests::repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("proxy"), "{tree}");
    for tls in ["rustls", "ring", "openssl", "native-tls", "aws-lc-rs"] {
        assert!(
            !tree
                .lines()
                .any(|l| l.split_whitespace().next() == Some(tls)),
            "the proxy links {tls}"
        );
    }
}
