//! The collateral cache against the local HTTPS stand-in of AMD KDS and
//! Intel PCS (`collateral::standin`), which serves the real documents of
//! `$ENCLAVE_FIXTURES` (and the real AMD CRLs of `tests/data/amd-crl`) at the
//! real URL paths: cache hits, single-flight, backoff on 429 and 5xx, slow
//! and garbage answers, stale-if-error, refresh-ahead, the offline
//! directory, and host-supplied stale collateral ignored, each ending in a
//! real appraisal where it matters.
//!
//! Times: 2025-06-19T11:32:27Z (1750332747) is inside every window used
//! here: the TDX collateral (shared/fixtures/SOURCES.md), the Milan CRL
//! (2025-05-06 .. 2026-05-12, tests/data/amd-crl/README.md) and the virtee
//! VCEK (2023-04-03 .. 2030-04-03).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use appraisal::{Appraiser, Collateral, Policy, Source};
use collateral::cache::{self, Origin, Stats};
use collateral::http::{Client, Roots};
use collateral::standin::{Misbehave, StandIn};
use collateral::{kds, Cache, CacheConfig, CacheError, Endpoints, Resolver};
use tee_formats::snp::Generation;
use wire::{Bytes, CertKind, Certificate, EvidenceBundle, Tee};

const NOW: i64 = 1_750_332_747;
const VIRTEE_MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";

fn fixtures() -> PathBuf {
    let p = std::env::var_os("ENCLAVE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        });
    assert!(
        p.join("SOURCES.md").is_file(),
        "shared fixtures not found at {}: set ENCLAVE_FIXTURES",
        p.display()
    );
    p
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap()
}

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "collateral-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Setup {
    standin: StandIn,
    dir: TempDir,
    ca: PathBuf,
}

fn setup(name: &str) -> Setup {
    let standin = StandIn::start(&fixtures()).unwrap();
    let dir = TempDir::new(name);
    let ca = standin.write_ca(&dir.0).unwrap();
    Setup { standin, dir, ca }
}

impl Setup {
    fn cache(&self, config: CacheConfig, timeout: Duration) -> Arc<Cache> {
        let client = Client::new(&Roots::Pinned(self.ca.clone()), timeout).unwrap();
        Cache::new(config, Some(client), Some(self.dir.0.join("cache")), None).unwrap()
    }
    fn resolver(&self, cache: Arc<Cache>) -> Resolver {
        Resolver::new(
            cache,
            Endpoints {
                kds: self.standin.url.clone(),
                pcs: self.standin.url.clone(),
                root_ca_crl: format!("{}/IntelSGXRootCA.der", self.standin.url),
            },
        )
    }
}

fn virtee(with_vcek: bool) -> EvidenceBundle {
    let mut b = EvidenceBundle::new(Tee::Snp, "test", read("snp/milan-v2-virtee/report.bin"));
    if with_vcek {
        b.certificates.push(Certificate {
            kind: CertKind::Vcek,
            der: Bytes(read("snp/milan-v2-virtee/vcek.der")),
        });
    }
    b
}

fn tdx(with_collateral: bool) -> EvidenceBundle {
    let mut b = EvidenceBundle::new(Tee::Tdx, "test", read("tdx/dcap-qvl/tdx_quote"));
    if with_collateral {
        b.tdx_collateral =
            Some(serde_json::from_slice(&read("tdx/dcap-qvl/tdx_quote_collateral.json")).unwrap());
    }
    b
}

fn snp_policy() -> Policy {
    Policy::from_toml(
        format!("[snp]\nallowed = true\nmin_reported_tcb = {{ bootloader = 3, tee = 0, snp = 8, microcode = 115 }}\nmeasurements = [\"{VIRTEE_MEASUREMENT}\"]\n").as_bytes(),
    )
    .unwrap()
}

fn tdx_policy() -> Policy {
    Policy::from_toml(
        format!(
            "[tdx]\nallowed = true\nmin_tcb_evaluation_data_number = 17\nmrtds = [\"{MRTD}\"]\nallow_unpinned_os = true\n"
        )
        .as_bytes(),
    )
    .unwrap()
}

fn sources(c: &appraisal::Claims) -> serde_json::Value {
    serde_json::to_value(c).unwrap()["collateral"]["sources"].clone()
}

const MILAN_CRL: &str = "/vcek/v1/Milan/crl";
const VCEK: &str = "/vcek/v1/Milan/d49554ec";

#[test]
fn a_cold_appraisal_fetches_and_the_next_ones_hit_the_cache() {
    let s = setup("hits");
    let cache = s.cache(CacheConfig::default(), Duration::from_secs(5));
    let r = s.resolver(Arc::clone(&cache));
    let a = Appraiser::new().unwrap();
    // The host sends no VCEK and no CRL: the verifier gets both.
    let c = r.resolve(&virtee(false), NOW);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let claims = a
        .appraise(&virtee(false), &snp_policy(), NOW, None, &c)
        .unwrap();
    assert_eq!(
        sources(&claims),
        serde_json::json!({"vcek": "fetched", "crl": "fetched"})
    );
    assert_eq!(
        serde_json::to_value(&claims).unwrap()["collateral"]["revocation_checked"],
        true
    );
    assert_eq!((s.standin.count(VCEK), s.standin.count(MILAN_CRL)), (1, 1));
    // The collateral's age: the CRL's thisUpdate, 2025-05-06T12:39:06Z
    // (tests/data/amd-crl/README.md); the VCEK is a certificate, not counted.
    assert_eq!(r.oldest_issued(&virtee(false)), Some(1_746_535_146));
    assert_eq!(s.standin.count(MILAN_CRL), 1, "peeking fetches nothing");
    for _ in 0..3 {
        let c = r.resolve(&virtee(false), NOW + 60);
        let claims = a
            .appraise(&virtee(false), &snp_policy(), NOW + 60, None, &c)
            .unwrap();
        assert_eq!(
            sources(&claims),
            serde_json::json!({"vcek": "cache", "crl": "cache"}),
            "{:?} {:?}",
            s.standin.log(),
            c.problems
        );
    }
    assert_eq!((s.standin.count(VCEK), s.standin.count(MILAN_CRL)), (1, 1));
    // A new process (a new cache over the same directory) reads the disk.
    let again = s.resolver(s.cache(CacheConfig::default(), Duration::from_secs(5)));
    let c = again.resolve(&virtee(false), NOW + 120);
    assert_eq!(c.snp_crl.as_ref().unwrap().source, Source::Cache);
    assert_eq!(c.snp_vcek.as_ref().unwrap().source, Source::Cache);
    assert_eq!(s.standin.log().len(), 2);
    // TDX: four documents, then all cached.
    let c = r.resolve(&tdx(false), NOW);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let claims = a
        .appraise(&tdx(false), &tdx_policy(), NOW, None, &c)
        .unwrap();
    assert_eq!(
        sources(&claims),
        serde_json::json!({"tcb_info": "fetched", "qe_identity": "fetched", "pck_crl": "fetched", "root_ca_crl": "fetched"})
    );
    let c = r.resolve(&tdx(false), NOW + 1);
    let claims = a
        .appraise(&tdx(false), &tdx_policy(), NOW + 1, None, &c)
        .unwrap();
    assert_eq!(sources(&claims)["pck_crl"], "cache");
    assert_eq!(s.standin.log().len(), 6);
}

#[test]
fn concurrent_appraisals_share_one_fetch() {
    let s = setup("flight");
    // Every document is slow to come, so that all callers overlap.
    s.standin.script([
        Misbehave::Slow(Duration::from_millis(400)),
        Misbehave::Slow(Duration::from_millis(400)),
    ]);
    let cache = s.cache(CacheConfig::default(), Duration::from_secs(5));
    let r = Arc::new(s.resolver(Arc::clone(&cache)));
    let a = Arc::new(Appraiser::new().unwrap());
    let n = 12;
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (r, a) = (Arc::clone(&r), Arc::clone(&a));
            std::thread::spawn(move || {
                let c = r.resolve(&virtee(false), NOW);
                a.appraise(&virtee(false), &snp_policy(), NOW, None, &c)
                    .map(|_| ())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    assert_eq!(s.standin.count(VCEK), 1, "{:?}", s.standin.log());
    assert_eq!(s.standin.count(MILAN_CRL), 1, "{:?}", s.standin.log());
    assert!(Stats::get(&cache.stats().joined) >= 1);
}

#[test]
fn rate_limits_are_honoured_with_retry_after() {
    let s = setup("429");
    s.standin
        .script([Misbehave::TooManyRequests(1), Misbehave::TooManyRequests(1)]);
    let cache = s.cache(CacheConfig::default(), Duration::from_secs(5));
    let spec = kds::crl(&s.standin.url, Generation::Milan, kds::KeyType::Vcek);
    let got = cache.get(&spec, NOW).unwrap();
    assert_eq!(got.origin, Origin::Fetched);
    let log = s.standin.log();
    assert_eq!(
        log.iter().map(|l| l.status).collect::<Vec<_>>(),
        vec![429, 429, 200]
    );
    // Each retry waited at least the Retry-After second.
    assert!(log[1].at - log[0].at >= Duration::from_secs(1), "{log:?}");
    assert!(log[2].at - log[1].at >= Duration::from_secs(1), "{log:?}");
    assert_eq!(Stats::get(&cache.stats().rate_limited), 2);

    // A Retry-After beyond the fetch deadline ends the fetch at once, and
    // holds back the host's other documents too (no request is sent).
    let s = setup("429-long");
    let cache = s.cache(
        CacheConfig {
            fetch_deadline: Duration::from_secs(2),
            ..CacheConfig::default()
        },
        Duration::from_secs(5),
    );
    s.standin.script([Misbehave::TooManyRequests(30)]);
    let spec = kds::crl(&s.standin.url, Generation::Milan, kds::KeyType::Vcek);
    let start = std::time::Instant::now();
    match cache.get(&spec, NOW) {
        Err(CacheError::RateLimited {
            retry_after_secs, ..
        }) => assert!((29..=30).contains(&retry_after_secs)),
        other => panic!("{other:?}"),
    }
    let other = kds::cert_chain(&s.standin.url, Generation::Milan, kds::KeyType::Vcek);
    assert!(matches!(
        cache.get(&other, NOW),
        Err(CacheError::RateLimited { .. })
    ));
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(s.standin.log().len(), 1);
    // The appraisal's denial says why there is no CRL.
    let r = s.resolver(cache);
    let c = r.resolve(&virtee(true), NOW);
    let d = Appraiser::new()
        .unwrap()
        .appraise(&virtee(true), &snp_policy(), NOW, None, &c)
        .unwrap_err();
    assert_eq!(d.check.as_str(), "snp.crl.unavailable");
    assert!(
        d.got.contains("CRL: rate limited (429), retry after"),
        "{d}"
    );
}

#[test]
fn server_errors_slow_answers_and_garbage() {
    let s = setup("5xx");
    let cache = s.cache(CacheConfig::default(), Duration::from_millis(700));
    let spec = kds::crl(&s.standin.url, Generation::Milan, kds::KeyType::Vcek);
    // 503 then 502: retried with backoff, then the document.
    s.standin
        .script([Misbehave::Status(503), Misbehave::Status(502)]);
    assert_eq!(cache.get(&spec, NOW).unwrap().origin, Origin::Fetched);
    assert_eq!(
        s.standin.log().iter().map(|l| l.status).collect::<Vec<_>>(),
        vec![503, 502, 200]
    );

    // Slower than the client's timeout: that attempt is abandoned, the next
    // one gets the document.
    let chain = kds::cert_chain(&s.standin.url, Generation::Milan, kds::KeyType::Vcek);
    s.standin.script([Misbehave::Slow(Duration::from_secs(2))]);
    assert_eq!(cache.get(&chain, NOW).unwrap().origin, Origin::Fetched);
    assert_eq!(s.standin.count("/vcek/v1/Milan/cert_chain"), 2);

    // Garbage with a 200 is not the document: an error, and nothing cached.
    let genoa = kds::crl(&s.standin.url, Generation::Genoa, kds::KeyType::Vcek);
    s.standin.script([Misbehave::Garbage]);
    match cache.get(&genoa, NOW) {
        Err(CacheError::Invalid { why, .. }) => assert!(why.contains("not a DER CRL"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(cache.get(&genoa, NOW).unwrap().origin, Origin::Fetched);

    // A 404 is final (no retry); 500s until the deadline end in an error.
    let none = kds::crl(&s.standin.url, Generation::Turin, kds::KeyType::Vcek);
    assert!(matches!(
        cache.get(&none, NOW),
        Err(CacheError::Status { status: 404, .. })
    ));
    assert_eq!(s.standin.count("/vcek/v1/Turin/crl"), 1);
    let s = setup("5xx-deadline");
    let cache = s.cache(
        CacheConfig {
            fetch_deadline: Duration::from_secs(1),
            ..CacheConfig::default()
        },
        Duration::from_millis(700),
    );
    s.standin
        .script(std::iter::repeat_n(Misbehave::Status(500), 200));
    let spec = kds::crl(&s.standin.url, Generation::Milan, kds::KeyType::Vcek);
    assert!(matches!(
        cache.get(&spec, NOW),
        Err(CacheError::Status { status: 500, .. })
    ));
    let tried = s.standin.log().len();
    assert!(tried >= 2, "retried: {tried}");
    // The next appraisals within negative_ttl get the same answer at once,
    // without asking KDS again.
    assert!(matches!(
        cache.get(&spec, NOW),
        Err(CacheError::Status { status: 500, .. })
    ));
    assert_eq!(s.standin.log().len(), tried);
}

#[test]
fn stale_if_error_until_next_update_then_refused() {
    let s = setup("stale");
    let config = CacheConfig {
        max_age: Duration::from_secs(3600),
        fetch_deadline: Duration::from_secs(2),
        ..CacheConfig::default()
    };
    let cache = s.cache(config, Duration::from_secs(2));
    let spec = kds::crl(&s.standin.url, Generation::Milan, kds::KeyType::Vcek);
    let first = cache.get(&spec, NOW).unwrap();
    assert_eq!(first.origin, Origin::Fetched);
    // A CRL is mutable: refreshed after max_age.
    assert_eq!(cache.refresh_at(&first.entry), NOW + 3600);
    // KDS is down when the refresh is due: the cached CRL is still served.
    s.standin
        .script(std::iter::repeat_n(Misbehave::Status(503), 500));
    let later = NOW + 7200;
    let got = cache.get(&spec, later).unwrap();
    assert_eq!(got.origin, Origin::Cache);
    assert!(cache.wait_idle(Duration::from_secs(30)));
    assert!(Stats::get(&cache.stats().failures) >= 1);
    let got = cache.get(&spec, later + 60).unwrap();
    assert_eq!(got.origin, Origin::Cache);
    assert_eq!(got.entry.fetched_at, NOW);
    // And it passes an appraisal, named as from the cache.
    let r = s.resolver(Arc::clone(&cache));
    let c = r.resolve(&virtee(true), later + 60);
    let claims = Appraiser::new()
        .unwrap()
        .appraise(&virtee(true), &snp_policy(), later + 60, None, &c)
        .unwrap();
    assert_eq!(sources(&claims)["crl"], "cache");
    // Past the CRL's nextUpdate (2026-05-12T00:00:00Z = 1778544000) it is
    // never served, whatever KDS says.
    let after = 1_778_544_000;
    assert!(cache.get(&spec, after).is_err());
}

#[test]
fn refresh_ahead_fetches_in_the_background() {
    let s = setup("ahead");
    let cache = s.cache(
        CacheConfig {
            max_age: Duration::from_secs(600),
            ..CacheConfig::default()
        },
        Duration::from_secs(5),
    );
    let tcb = collateral::pcs::tcb_info(&s.standin.url, &[0xb0, 0xc0, 0x6f, 0, 0, 0]);
    let first = cache.get(&tcb, NOW).unwrap();
    assert_eq!(first.origin, Origin::Fetched);
    // TCB info nextUpdate 2025-07-19T10:16:03Z (1752920163): one month of
    // life, so the refresh point is the max_age.
    assert_eq!(first.entry.validity.next_update, 1_752_920_163);
    assert_eq!(cache.refresh_at(&first.entry), NOW + 600);
    // Before it: no request.
    assert_eq!(cache.get(&tcb, NOW + 599).unwrap().origin, Origin::Cache);
    assert!(cache.wait_idle(Duration::from_secs(10)));
    assert_eq!(s.standin.count("/tdx/certification/v4/tcb"), 1);
    // At it: served at once from the cache, refreshed behind.
    assert_eq!(cache.get(&tcb, NOW + 600).unwrap().origin, Origin::Cache);
    assert!(cache.wait_idle(Duration::from_secs(10)));
    assert_eq!(s.standin.count("/tdx/certification/v4/tcb"), 2);
    let now = cache.get(&tcb, NOW + 601).unwrap();
    assert_eq!(now.entry.fetched_at, NOW + 600);
    // An immutable document (a VCEK, valid to 2030) is not refreshed by age.
    let vcek = s
        .standin
        .paths()
        .into_iter()
        .find(|p| p.starts_with(VCEK))
        .unwrap();
    let spec = collateral::Spec {
        url: format!("{}{vcek}", s.standin.url),
        keep_headers: &[],
        validity: kds::certificate_validity,
    };
    let v = cache.get(&spec, NOW).unwrap();
    assert!(cache.refresh_at(&v.entry) > NOW + 365 * 86_400);
}

#[test]
fn an_offline_directory_serves_air_gapped_verifiers() {
    let s = setup("offline");
    // Fill an offline directory the way `enclavectl collateral fetch --out` does.
    let online = s.cache(CacheConfig::default(), Duration::from_secs(5));
    let r = s.resolver(Arc::clone(&online));
    let out = s.dir.0.join("offline");
    for b in [virtee(false), tdx(false)] {
        for spec in r.specs(&b).unwrap() {
            let got = online.get(&spec, NOW).unwrap();
            cache::write_offline(&out, &got.entry).unwrap();
        }
    }
    assert!(out.join("vcek/v1/Milan/crl").is_file());
    assert!(out
        .join("tdx/certification/v4/tcb?fmspc=B0C06F000000")
        .is_file());
    assert!(out
        .join("tdx/certification/v4/tcb?fmspc=B0C06F000000.headers")
        .is_file());
    let requests = s.standin.log().len();
    // No network at all.
    let offline = Cache::new(CacheConfig::default(), None, None, Some(out.clone())).unwrap();
    let r = s.resolver(offline);
    let a = Appraiser::new().unwrap();
    let c = r.resolve(&tdx(false), NOW);
    let claims = a
        .appraise(&tdx(false), &tdx_policy(), NOW, None, &c)
        .unwrap();
    assert_eq!(
        sources(&claims),
        serde_json::json!({"tcb_info": "offline", "qe_identity": "offline", "pck_crl": "offline", "root_ca_crl": "offline"})
    );
    let c = r.resolve(&virtee(false), NOW);
    let claims = a
        .appraise(&virtee(false), &snp_policy(), NOW, None, &c)
        .unwrap();
    assert_eq!(
        sources(&claims),
        serde_json::json!({"vcek": "offline", "crl": "offline"})
    );
    assert_eq!(s.standin.log().len(), requests);
    // Expired offline documents are not served: the PCK CRL's nextUpdate is
    // 2025-07-19T10:00:35Z.
    let c = r.resolve(&tdx(false), 1_752_919_235);
    assert!(
        c.problems
            .iter()
            .any(|p| p.starts_with("PCK CRL: the only copy expired at 2025-07-19T10:00:35Z")),
        "{:?}",
        c.problems
    );
    // A document the directory lacks is named.
    std::fs::remove_file(out.join("vcek/v1/Milan/crl")).unwrap();
    let c = r.resolve(&virtee(false), NOW);
    assert!(
        c.problems
            .iter()
            .any(|p| p.starts_with("CRL: not in the offline directory")),
        "{:?}",
        c.problems
    );
}

#[test]
fn host_supplied_stale_collateral_is_ignored() {
    let s = setup("stale-host");
    let cache = s.cache(CacheConfig::default(), Duration::from_secs(5));
    let r = s.resolver(cache);
    let a = Appraiser::new().unwrap();
    // The host's TCB info claims to be older (2025-06-01): the verifier's
    // fetched one is used.
    let mut b = tdx(true);
    let c = b.tdx_collateral.as_mut().unwrap();
    let older = c["tcb_info"]
        .as_str()
        .unwrap()
        .replace("2025-06-19T10:16:03Z", "2025-06-01T10:16:03Z");
    c["tcb_info"] = serde_json::Value::String(older);
    let col = r.resolve(&b, NOW);
    let claims = a.appraise(&b, &tdx_policy(), NOW, None, &col).unwrap();
    assert_eq!(sources(&claims)["tcb_info"], "fetched");
    // The same without the verifier's own: the host's altered document is
    // denied (it is not what Intel signed).
    let d = a
        .appraise(&b, &tdx_policy(), NOW, None, &Collateral::none())
        .unwrap_err();
    assert_eq!(d.check.as_str(), "tdx.collateral.signature");
}
