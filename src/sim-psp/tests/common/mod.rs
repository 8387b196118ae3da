//! Test support: one simulation state directory shared by every test (and by
//! `enclavectl`'s CLI test), fixtures, scratch directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sim_psp::Chain;

/// The state directory every test shares: `$CARGO_TARGET_TMPDIR/sim-psp-state`.
/// RSA-4096 generation takes minutes in a debug build, so it happens
/// once per target directory; `Chain::load_or_create` locks the directory, so
/// concurrent tests wait for the first one and then reuse its keys.
pub fn shared_state_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sim-psp-state")
}

/// The shared chain.
pub fn shared_chain() -> Chain {
    Chain::load_or_create(&shared_state_dir()).expect("shared sim-psp state")
}

/// A new empty directory under the target's tmp dir (removed by [`Scratch`]'s drop).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "sim-psp-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A scratch state directory holding copies of the shared state's files.
    pub fn copy_of_shared_state(tag: &str) -> Scratch {
        shared_chain();
        let s = Scratch::new(tag);
        for entry in std::fs::read_dir(shared_state_dir()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if name != "lock" && entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), s.0.join(name)).unwrap();
            }
        }
        s
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `$ENCLAVE_FIXTURES`, else the repository root's sibling `shared/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("ENCLAVE_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures"
        )),
    }
}

/// Reads a fixture; a missing fixture fails the test (never a silent skip).
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = fixtures_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "fixture {} unreadable ({e}); set ENCLAVE_FIXTURES to shared/fixtures",
            path.display()
        )
    })
}

/// The certificates of a PEM bundle, as DER, in file order.
pub fn pem_bundle(text: &str) -> Vec<Vec<u8>> {
    text.split("-----END CERTIFICATE-----")
        .filter(|part| part.contains("-----BEGIN CERTIFICATE-----"))
        .map(|part| {
            let pem = format!("{}-----END CERTIFICATE-----\n", part.trim_start());
            x509_cert::der::pem::decode_vec(pem.as_bytes()).unwrap().1
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
