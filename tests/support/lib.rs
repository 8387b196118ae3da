//! Test support: where the built artifacts are, temporary directories, and
//! the QEMU guest harness ([`qemu::Guest`]).
//!
//! Tests here exercise real parts: the static guest binary built by
//! `scripts/build-guest`, Debian's kernel and QEMU, vhost-device-vsock,
//! strace. A missing part fails the test with the command that installs it;
//! nothing is skipped silently.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

pub mod attest_client;
pub mod audit;
pub mod audit_store;
pub mod azure;
pub mod children;
pub mod echo;
pub mod https;
pub mod postgres;
pub mod process;
pub mod qemu;
pub mod replicas;
pub mod stack;
pub mod stages;
pub mod transcription;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The installed tools (scripts/install-deps).
pub fn tools_dir() -> PathBuf {
    std::env::var_os("ENCLAVE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/enclave-init"))
}

fn must_exist(path: PathBuf, how: &str) -> PathBuf {
    assert!(path.exists(), "{} is missing: run {how}", path.display());
    path
}

/// The static guest binary.
pub fn guest_bin() -> PathBuf {
    let p = std::env::var_os("ENCLAVE_INIT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"));
            target.join("x86_64-unknown-linux-musl/release/enclave-init")
        });
    must_exist(p, "scripts/build-guest")
}

/// The guest built with the `test-hooks` feature (`scripts/build-guest
/// --test-hooks`): the keyed secret-hash query for tests that check exact
/// secret values. Never the measured image: its own build profile.
pub fn guest_bin_hooks() -> PathBuf {
    let p = std::env::var_os("ENCLAVE_INIT_HOOKS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"));
            target.join("x86_64-unknown-linux-musl/test-hooks/enclave-init")
        });
    must_exist(p, "scripts/build-guest --test-hooks")
}

/// The guest binary a configuration needs: the test-hooks build when it
/// asks for a test hook ([`stack::TEST_HOOKS`]), the release build
/// otherwise.
pub fn guest_bin_for(config: &str) -> PathBuf {
    if config.contains(stack::TEST_HOOKS.trim()) {
        guest_bin_hooks()
    } else {
        guest_bin()
    }
}

/// The guest kernel's directory: `vmlinuz` and `modules/`.
pub fn kernel_dir() -> PathBuf {
    let p = std::env::var_os("ENCLAVE_KERNEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools_dir().join("kernel/current"));
    must_exist(p.join("vmlinuz"), "scripts/install-deps");
    p
}

/// vhost-device-vsock.
pub fn vhost_device_vsock() -> PathBuf {
    must_exist(
        tools_dir().join("bin/vhost-device-vsock"),
        "scripts/install-deps",
    )
}

/// A directory removed when dropped. Paths stay short: unix socket paths
/// are limited to 108 bytes.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ei-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An initramfs built with the project's image builder from the real guest
/// binary, a configuration text and the repo's module list (or `modules`).
pub fn build_image(dir: &Path, config: &str, modules: Option<&str>) -> PathBuf {
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, config).unwrap();
    let list = dir.join("modules.list");
    let text = match modules {
        Some(t) => t.to_owned(),
        None => std::fs::read_to_string(repo_root().join("image/modules.list")).unwrap(),
    };
    std::fs::write(&list, text).unwrap();
    let recipe = image::Recipe {
        init: guest_bin_for(config),
        config: config_path,
        modules_list: Some(list),
        modules_dir: Some(kernel_dir().join("modules")),
        mtime: 1_700_000_000,
    };
    let out = dir.join("initramfs.cpio");
    std::fs::write(&out, image::build(&recipe).unwrap()).unwrap();
    out
}

/// The image's own configuration file.
pub fn image_config() -> String {
    std::fs::read_to_string(repo_root().join("image/config.toml")).unwrap()
}

/// Makes a panic of this program (a benchmark, the demo) one line on stderr,
/// `NAME: what went wrong`, without a backtrace: a missing binary or a
/// server that did not start is a message for the operator, not a crash
/// report. Tests keep the default hook.
pub fn one_line_panics(name: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panicked".to_owned());
        eprintln!("{name}: {}", msg.replace('\n', " "));
    }));
}
