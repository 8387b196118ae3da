//! Test support: fixture location, hex, a deterministic PRNG.
#![allow(dead_code)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

use std::path::PathBuf;

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

pub const SNP_REPORTS: &[&str] = &[
    "snp/milan-v2-virtee/report.bin",
    "snp/milan-v2-gosevguest/report.bin",
    "snp/milan-v2-trustee/report.bin",
    "snp/milan-v3-vlek-trustee/report.bin",
];

pub const TDX_QUOTES: &[&str] = &[
    "tdx/dcap-qvl/tdx_quote",
    "tdx/dcap-qvl/tdx_quote_outdated",
    "tdx/trustee/tdx_quote_4.dat",
    "tdx/trustee/tdx_quote_5.dat",
    "tdx/trustee/tdx_quote_6.dat",
];

pub const TDREPORTS: &[&str] = &["tdx/intel-dcap/tdreport_for_test.dat"];

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// `prefix` followed by `zeros` zero bytes, as hex.
pub fn hex_then_zeros(prefix: &str, zeros: usize) -> String {
    format!("{prefix}{}", "00".repeat(zeros))
}

/// xorshift64*: a fixed-seed, dependency-free PRNG for mutation tests.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}
