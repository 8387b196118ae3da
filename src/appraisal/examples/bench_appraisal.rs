//! Appraisals per second, single thread, warm chain cache: the SEV-SNP
//! fixture `snp/milan-v2-virtee` (Milan report v2 + VCEK) appraised again
//! and again by one [`appraisal::Appraiser`]. After the first appraisal the
//! chain is cached, so each further one parses the report, re-checks
//! validity and CRL mode, verifies the report signature and runs every
//! policy check (no CRL: `crl = "if-present"`). `scripts/bench-appraisal`
//! runs the fuller benchmark of `src/collateral/examples/bench_appraisal.rs`
//! (revocation checked, collateral inline vs from the verifier's cache).
//!
//! Usage: `bench_appraisal [SECONDS]` (default 5). Fixtures from
//! `$ENCLAVE_FIXTURES` or `shared/fixtures` beside the repository.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: any failure aborts it

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use appraisal::{Appraiser, Policy};
use wire::{Bytes, CertKind, Certificate, EvidenceBundle, Tee};

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SECONDS"))
        .unwrap_or(5.0);
    let fixtures = std::env::var_os("ENCLAVE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        });
    let read =
        |rel: &str| std::fs::read(fixtures.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut bundle = EvidenceBundle::new(Tee::Snp, "bench", read("snp/milan-v2-virtee/report.bin"));
    bundle.certificates.push(Certificate {
        kind: CertKind::Vcek,
        der: Bytes(read("snp/milan-v2-virtee/vcek.der")),
    });
    // No public AMD CRL exists (shared/fixtures/SOURCES.md): "if-present".
    let policy = Policy::from_toml(
        b"[snp]\nallowed = true\ncrl = \"if-present\"\nmin_reported_tcb = { bootloader = 3, tee = 0, snp = 8, microcode = 115 }\nmeasurements = [\"7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f\"]\n",
    )
    .unwrap();
    let now = appraisal::parse_rfc3339("2025-06-01T00:00:00Z").unwrap();
    let appraiser = Appraiser::new().unwrap();

    let cold = Instant::now();
    appraiser
        .appraise(&bundle, &policy, now, None, &appraisal::Collateral::none())
        .expect("the fixture is accepted");
    let cold = cold.elapsed();

    let rate = |f: &dyn Fn()| {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs_f64(seconds) {
            for _ in 0..16 {
                f();
            }
            n += 16;
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    let warm = rate(&|| {
        black_box(
            appraiser
                .appraise(
                    black_box(&bundle),
                    &policy,
                    now,
                    None,
                    &appraisal::Collateral::none(),
                )
                .unwrap(),
        );
    });
    println!("first (cold) appraisal: {:.1} ms", cold.as_secs_f64() * 1e3);
    println!("appraisals/s (warm cache, 1 thread): {warm:.1}");
}
