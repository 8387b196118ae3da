//! Appraisals per second of the SEV-SNP fixture `snp/milan-v2-virtee`
//! (Milan report v2) under a strict policy (`crl = "require"`: revocation
//! checked against the real AMD Milan CRL), single thread, warm chain
//! cache, two ways:
//!
//! - inline: the host supplies the VCEK and the CRL in the bundle;
//! - cache: the bundle carries the report alone; each appraisal first
//!   resolves the VCEK and the CRL through the verifier's collateral cache
//!   (warm: memory hits), as the verifier does;
//!
//! and the latency of the first appraisal with a cold cache against the
//! local KDS/PCS stand-in (HTTPS on loopback: handshake, fetches, disk
//! writes, chain verification), for SEV-SNP and for TDX (`tdx/dcap-qvl`).
//! `scripts/bench-appraisal` runs this next to `openssl speed ecdsap384`.
//!
//! Usage: `bench_appraisal FIXTURES [SECONDS]` (default 5).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // a benchmark: any failure aborts it

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use appraisal::{Appraiser, Collateral, Policy};
use collateral::http::{Client, Roots};
use collateral::standin::StandIn;
use collateral::{Cache, CacheConfig, Endpoints, Resolver};
use wire::{Bytes, CertKind, Certificate, EvidenceBundle, Tee};

const NOW: i64 = 1_750_332_747; // 2025-06-19T11:32:27Z: inside every window used
const MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";

fn rate(seconds: f64, f: &dyn Fn()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn resolver(standin: &StandIn, ca: &Path, dir: &Path) -> Resolver {
    let client = Client::new(&Roots::Pinned(ca.to_owned()), Duration::from_secs(5)).unwrap();
    let cache = Cache::new(
        CacheConfig::default(),
        Some(client),
        Some(dir.to_owned()),
        None,
    )
    .unwrap();
    Resolver::new(
        cache,
        Endpoints {
            kds: standin.url.clone(),
            pcs: standin.url.clone(),
            root_ca_crl: format!("{}/IntelSGXRootCA.der", standin.url),
        },
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let fixtures = PathBuf::from(args.next().expect("FIXTURES"));
    let seconds: f64 = args
        .next()
        .map(|s| s.parse().expect("SECONDS"))
        .unwrap_or(5.0);
    let read =
        |rel: &str| std::fs::read(fixtures.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let crl = collateral::standin::amd_crl("milan").unwrap();
    let report_only =
        EvidenceBundle::new(Tee::Snp, "bench", read("snp/milan-v2-virtee/report.bin"));
    let mut inline = report_only.clone();
    inline.certificates.push(Certificate {
        kind: CertKind::Vcek,
        der: Bytes(read("snp/milan-v2-virtee/vcek.der")),
    });
    inline.crls.push(Bytes(crl));
    let policy = Policy::production(
        format!("[snp]\nallowed = true\ncrl = \"require\"\nmin_reported_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }}\nmeasurements = [\"{MEASUREMENT}\"]\n").as_bytes(),
    )
    .unwrap();
    let tdx_policy = Policy::production(
        format!(
            // The fixture's quote is a GCP image, not ours: nothing of its
            // OS is pinned here, which the strict policy wants said.
            "[tdx]\nallowed = true\nallow_unpinned_os = true\nmin_tcb_evaluation_data_number = 17\nmrtds = [\"{MRTD}\"]\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let standin = StandIn::start(&fixtures).unwrap();
    let tmp = std::env::temp_dir().join(format!("bench-appraisal-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let ca = standin.write_ca(&tmp).unwrap();

    // Cold: a fresh cache directory, a fresh appraiser, against the stand-in.
    let mut cold_snp = Vec::new();
    let mut cold_tdx = Vec::new();
    for i in 0..5 {
        let dir = tmp.join(format!("cold-{i}"));
        let r = resolver(&standin, &ca, &dir);
        let a = Appraiser::new().unwrap();
        let t = Instant::now();
        let c = r.resolve(&report_only, NOW);
        a.appraise(&report_only, &policy, NOW, None, &c)
            .expect("accepted");
        cold_snp.push(t.elapsed());
        let tdx = EvidenceBundle::new(Tee::Tdx, "bench", read("tdx/dcap-qvl/tdx_quote"));
        let r = resolver(&standin, &ca, &tmp.join(format!("cold-tdx-{i}")));
        let a = Appraiser::new().unwrap();
        let t = Instant::now();
        let c = r.resolve(&tdx, NOW);
        a.appraise(&tdx, &tdx_policy, NOW, None, &c)
            .expect("accepted");
        cold_tdx.push(t.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };

    // Warm: one appraiser, one cache, single thread.
    let a = Appraiser::new().unwrap();
    let none = Collateral::none();
    a.appraise(&inline, &policy, NOW, None, &none)
        .expect("accepted");
    let inline_rate = rate(seconds, &|| {
        black_box(
            a.appraise(black_box(&inline), &policy, NOW, None, &none)
                .unwrap(),
        );
    });
    let r = resolver(&standin, &ca, &tmp.join("warm"));
    let c = r.resolve(&report_only, NOW);
    let claims = a
        .appraise(&report_only, &policy, NOW, None, &c)
        .expect("accepted");
    assert_eq!(
        serde_json::to_value(&claims).unwrap()["collateral"]["sources"]["crl"],
        "fetched"
    );
    let cache_rate = rate(seconds, &|| {
        let c = r.resolve(black_box(&report_only), NOW);
        black_box(a.appraise(&report_only, &policy, NOW, None, &c).unwrap());
    });
    let _ = std::fs::remove_dir_all(&tmp);
    println!("first appraisal, cold cache, SEV-SNP (VCEK + CRL from the stand-in), median of 5: {:.1} ms", median(&mut cold_snp));
    println!(
        "first appraisal, cold cache, TDX (4 documents from the stand-in), median of 5: {:.1} ms",
        median(&mut cold_tdx)
    );
    println!("appraisals/s (collateral inline, 1 thread): {inline_rate:.1}");
    println!("appraisals/s (collateral from the cache, 1 thread): {cache_rate:.1}");
}
