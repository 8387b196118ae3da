//! The fetch/cache core, generic over "a URL and a validity extractor"
//! ([`Spec`]): AMD KDS and Intel PCS documents use it ([`crate::kds`],
//! [`crate::pcs`]), and so can NVIDIA OCSP responses and RIMs later. The
//! interface is the whole of [`Spec`] + [`Cache::get`]:
//!
//! ```text
//! let spec = Spec { url: "https://…/crl".into(), keep_headers: &[], validity: my_validity };
//! let got = cache.get(&spec, now)?;          // got.entry.body, got.origin
//! ```
//!
//! where `validity(body, headers)` parses the document just enough to say
//! how long it is good for ([`Validity`]): a CRL's thisUpdate/nextUpdate, a
//! TCB info's issueDate/nextUpdate, a certificate's notBefore/notAfter. A
//! body it refuses is never cached (garbage from a server is an error).
//!
//! Behaviour, for one key (the URL):
//! - fresh (`now < refresh_at`): served from memory or disk (`cache`).
//! - refresh window (`refresh_at <= now < next_update`): served from the
//!   cache at once, and one background refresh is started (refresh-ahead).
//!   If that refresh fails, the cached copy goes on being served until its
//!   own nextUpdate (stale-if-error), and the next refresh waits for the
//!   backoff.
//! - absent or expired (`now >= next_update`): fetched now (`fetched`); all
//!   concurrent callers of the key wait for the one fetch (single-flight).
//!   An expired document is never served.
//! - `refresh_at = min(fetched_at + max_age (mutable documents only),
//!   next_update - ahead)`, `ahead = min(refresh_ahead, (next_update -
//!   issued) / 4)`: CRLs and TCB info are re-checked at least every
//!   `max_age` (a revocation is published within a CRL's validity);
//!   certificates only near their notAfter.
//! - 429 and 5xx: retried inside the fetch deadline with capped exponential
//!   backoff and full jitter, honouring `Retry-After` (seconds or HTTP
//!   date); a 429 holds back every request to that host until its
//!   Retry-After (KDS rate limits are per client). A Retry-After beyond the
//!   deadline ends the fetch at once ([`CacheError::RateLimited`]).
//! - an availability failure (no answer, 429, 5xx until the deadline) is
//!   repeated at once for `negative_ttl` (30 s) instead of being fetched
//!   again by every appraisal.
//! - offline (no client, an offline directory): the document is read from
//!   `DIR/<URL path>[?<query>]` (the KDS/PCS paths, as `wget -x` lays them
//!   out, without the host) and its kept headers from `<that>.headers`
//!   (`name: value` lines); still only while valid (`offline`).
//!
//! Time: `now` (validity) is the caller's clock, the verifier's trusted
//! time; waits (backoff, Retry-After) are real time.
//!
//! On disk: `DIR/v1/<sha256(url)>.body` and `.meta` (JSON: url, kept
//! headers, fetched_at, validity, SHA-256 of the body), each written to a
//! temporary file and renamed, meta last; an entry whose body does not
//! match its meta is ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http::{Answer, Client, HttpError};

/// What a document says about its own lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validity {
    /// issueDate / thisUpdate / notBefore, Unix seconds, if the document has one.
    pub issued: Option<i64>,
    /// nextUpdate / notAfter, Unix seconds: never served at or after it.
    pub next_update: i64,
    /// True for documents that change within their validity (CRLs, TCB
    /// info, QE identity, OCSP): re-checked every `max_age`.
    pub mutable: bool,
}

/// The validity extractor of one kind of document: parses `body` (with the
/// kept headers) just enough to say how long it is good for. An `Err` (our
/// words, for logs and denials) means the body is not that document.
pub type ValidityFn = fn(body: &[u8], headers: &[(String, String)]) -> Result<Validity, String>;

/// One document to get: its URL (the cache key), the response headers to
/// keep with it (lowercase names, e.g. Intel's issuer chains), and its
/// validity extractor.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The URL.
    pub url: String,
    /// Response headers kept with the body.
    pub keep_headers: &'static [&'static str],
    /// The validity extractor.
    pub validity: ValidityFn,
}

/// A cached document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its URL.
    pub url: String,
    /// The kept headers, `(lowercase name, value)`.
    pub headers: Vec<(String, String)>,
    /// When it was fetched (caller's clock).
    pub fetched_at: i64,
    /// Its validity.
    pub validity: Validity,
    /// SHA-256 of the body, hex.
    pub body_sha256: String,
    /// The body.
    #[serde(skip)]
    pub body: Arc<Vec<u8>>,
}

impl Entry {
    /// The first kept header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where a served document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Fetched for this call.
    Fetched,
    /// From the cache.
    Cache,
    /// From the offline directory.
    Offline,
}

impl Origin {
    /// As an appraisal source.
    pub fn source(self) -> appraisal::Source {
        match self {
            Origin::Fetched => appraisal::Source::Fetched,
            Origin::Cache => appraisal::Source::Cache,
            Origin::Offline => appraisal::Source::Offline,
        }
    }
}

/// A served document.
#[derive(Debug, Clone)]
pub struct Got {
    /// The document.
    pub entry: Arc<Entry>,
    /// Where it came from.
    pub origin: Origin,
}

/// Why no current document could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The server rate-limits us beyond the fetch deadline.
    #[error("{url}: rate limited (429), retry after {retry_after_secs} s")]
    RateLimited {
        /// The URL.
        url: String,
        /// Seconds until the server accepts requests again.
        retry_after_secs: u64,
    },
    /// The server answered an error status that is not worth retrying
    /// (404, 403, …), or still a 5xx at the deadline.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// No answer (refused, TLS, timeout) until the deadline.
    #[error("{0}")]
    Transport(String),
    /// The body is not the document expected (garbage, truncated).
    #[error("{url}: not the expected document: {why}")]
    Invalid {
        /// The URL.
        url: String,
        /// The extractor's reason.
        why: String,
    },
    /// The only copy (fetched, cached or offline) is past its nextUpdate.
    #[error("{url}: expired at {next_update} (Unix), verifier time {now}")]
    Expired {
        /// The URL.
        url: String,
        /// Its nextUpdate.
        next_update: i64,
        /// The caller's time.
        now: i64,
    },
    /// Offline mode and no such file.
    #[error("{url}: not in the offline directory ({path})")]
    NotOffline {
        /// The URL.
        url: String,
        /// The file looked for.
        path: String,
    },
    /// The cache directory cannot be written.
    #[error("cache directory: {0}")]
    Io(String),
}

/// Tunables, with the defaults of [`CacheConfig::default`].
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Mutable documents are re-checked at least this often (default 6 h).
    pub max_age: Duration,
    /// Refresh this long before nextUpdate at most (default 1 h; at most a
    /// quarter of the document's lifetime).
    pub refresh_ahead: Duration,
    /// One fetch, retries included, ends by this deadline (default 10 s).
    pub fetch_deadline: Duration,
    /// First backoff step (default 200 ms), doubled per retry …
    pub backoff_base: Duration,
    /// … up to this cap (default 5 s).
    pub backoff_cap: Duration,
    /// Entries kept in memory before it is emptied (default 1024).
    pub memory_entries: usize,
    /// After a fetch fails for want of an answer (no connection, 429, 5xx at
    /// the deadline), further fetches of that document fail at once with the
    /// same error for this long (default 30 s): an unreachable KDS costs one
    /// fetch deadline, not one per appraisal.
    pub negative_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_age: Duration::from_secs(6 * 3600),
            refresh_ahead: Duration::from_secs(3600),
            fetch_deadline: Duration::from_secs(10),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(5),
            memory_entries: 1024,
            negative_ttl: Duration::from_secs(30),
        }
    }
}

/// Counters (for `/metrics` and the tests).
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent (retries included).
    pub requests: AtomicU64,
    /// Documents fetched and stored.
    pub fetched: AtomicU64,
    /// Served from the cache.
    pub hits: AtomicU64,
    /// Callers that waited for another caller's fetch of the same key.
    pub joined: AtomicU64,
    /// Background refreshes started.
    pub refreshes: AtomicU64,
    /// Fetches or refreshes that failed.
    pub failures: AtomicU64,
    /// 429 answers seen.
    pub rate_limited: AtomicU64,
    /// Failed fetches of AMD KDS documents (part of `failures`).
    pub failures_kds: AtomicU64,
    /// Failed fetches of Intel PCS documents (part of `failures`).
    pub failures_pcs: AtomicU64,
}

/// What kind of collateral `url` serves (a metric label: bounded, unlike
/// the URL, which names a chip or an FMSPC): `vcek`, `vlek`, `snp_crl`,
/// `snp_cert_chain`, `tdx_tcb_info`, `tdx_qe_identity`, `tdx_pck_crl`,
/// `tdx_root_ca_crl`, or `other`.
pub fn kind_of(url: &str) -> &'static str {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.split_once('/').map_or("", |(_, p)| p);
    let path = path.split('?').next().unwrap_or("");
    if path.ends_with("/crl") && (path.starts_with("vcek/") || path.starts_with("vlek/")) {
        "snp_crl"
    } else if path.ends_with("/cert_chain") {
        "snp_cert_chain"
    } else if path.starts_with("vcek/") {
        "vcek"
    } else if path.starts_with("vlek/") {
        "vlek"
    } else if path.ends_with("/tcb") {
        "tdx_tcb_info"
    } else if path.ends_with("/qe/identity") {
        "tdx_qe_identity"
    } else if path.ends_with("/pckcrl") {
        "tdx_pck_crl"
    } else if path.ends_with("rootcacrl") || path.ends_with("IntelSGXRootCA.der") {
        "tdx_root_ca_crl"
    } else {
        "other"
    }
}

/// `kds` (AMD) or `pcs` (Intel) for a kind of [`kind_of`].
pub fn source_of_kind(kind: &str) -> &'static str {
    if kind.starts_with("tdx_") {
        "pcs"
    } else {
        "kds"
    }
}

impl Stats {
    /// A counter's value.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// One fetch in flight, shared by every caller of its key.
#[derive(Default)]
struct Flight {
    done: Mutex<Option<Result<Arc<Entry>, CacheError>>>,
    cv: Condvar,
}

/// The cache. Share one per process (`Arc`).
pub struct Cache {
    config: CacheConfig,
    client: Option<Client>,
    dir: Option<PathBuf>,
    offline: Option<PathBuf>,
    memory: Mutex<HashMap<String, Arc<Entry>>>,
    flights: Mutex<HashMap<String, Arc<Flight>>>,
    /// Per key: no background refresh before this instant (after a failure).
    retry_not_before: Mutex<HashMap<String, Instant>>,
    /// Per host: no request before this instant (after a 429).
    host_blocked: Mutex<HashMap<String, Instant>>,
    stats: Stats,
    jitter: AtomicU64,
    /// Background refreshes started and not finished.
    pending: AtomicU64,
    /// Per key: the last availability failure, repeated until this instant.
    failed: Mutex<HashMap<String, (Instant, CacheError)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Cache {
    /// A cache fetching with `client` (None: offline only), storing in
    /// `dir` (None: memory only), and reading `offline` (an air-gapped
    /// site's directory) before the network.
    pub fn new(
        config: CacheConfig,
        client: Option<Client>,
        dir: Option<PathBuf>,
        offline: Option<PathBuf>,
    ) -> Result<Arc<Cache>, CacheError> {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d.join("v1"))
                .map_err(|e| CacheError::Io(format!("{}: {e}", d.display())))?;
        }
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a seed: keeping the low 64 bits of the nanoseconds is the point"
        )]
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1);
        Ok(Arc::new(Cache {
            config,
            client,
            dir,
            offline,
            memory: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            retry_not_before: Mutex::new(HashMap::new()),
            host_blocked: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            jitter: AtomicU64::new(seed),
            pending: AtomicU64::new(0),
            failed: Mutex::new(HashMap::new()),
        }))
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The cache directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The cached document of `url`, current or not, without counting a
    /// hit or starting a refresh (for reports: the decision record's age).
    pub fn peek(&self, url: &str) -> Option<Arc<Entry>> {
        self.cached(url)
    }

    /// A current copy of `spec`'s document at `now`, if the cache holds one
    /// (starting a background refresh when it is due); never fetches and
    /// never waits.
    pub fn get_cached(self: &Arc<Self>, spec: &Spec, now: i64) -> Option<Got> {
        let entry = self.cached(&spec.url)?;
        if now >= entry.validity.next_update {
            return None;
        }
        if now >= self.refresh_at(&entry) {
            self.refresh_in_background(spec, now);
        }
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        Some(Got {
            entry,
            origin: Origin::Cache,
        })
    }

    /// A current copy of `spec`'s document at `now`.
    pub fn get(self: &Arc<Self>, spec: &Spec, now: i64) -> Result<Got, CacheError> {
        if let Some(got) = self.get_cached(spec, now) {
            return Ok(got);
        }
        if self.client.is_none() {
            if let Some(dir) = &self.offline {
                return self.offline_get(dir, spec, now);
            }
        }
        if let Some((until, e)) = lock(&self.failed).get(&spec.url) {
            if Instant::now() < *until {
                return Err(e.clone());
            }
        }
        let entry = self.single_flight(spec, now)?;
        Ok(Got {
            entry,
            origin: Origin::Fetched,
        })
    }

    /// When `entry` should be refreshed.
    pub fn refresh_at(&self, entry: &Entry) -> i64 {
        let v = entry.validity;
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let life = v.next_update - v.issued.unwrap_or(entry.fetched_at);
        let ahead = secs(self.config.refresh_ahead).min(life / 4).max(0);
        let by_expiry = v.next_update - ahead;
        if v.mutable {
            by_expiry.min(entry.fetched_at.saturating_add(secs(self.config.max_age)))
        } else {
            by_expiry
        }
    }

    /// Waits until no fetch or refresh is in flight (tests, `collateral fetch`).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.pending.load(Ordering::SeqCst) == 0 && lock(&self.flights).is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Every entry on disk (for `enclavectl collateral show`).
    pub fn entries(&self) -> Vec<Entry> {
        let Some(dir) = &self.dir else {
            return lock(&self.memory).values().map(|e| (**e).clone()).collect();
        };
        let Ok(rd) = std::fs::read_dir(dir.join("v1")) else {
            return Vec::new();
        };
        let mut out: Vec<Entry> = rd
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "meta"))
            .filter_map(|e| load(&e.path().with_extension("")))
            .collect();
        out.sort_by(|a, b| a.url.cmp(&b.url));
        out
    }

    /// Removes the entries expired at `now` (every entry with `all`);
    /// returns how many.
    pub fn prune(&self, now: i64, all: bool) -> Result<usize, CacheError> {
        let mut n = 0;
        for e in self.entries() {
            if all || now >= e.validity.next_update {
                if let Some(dir) = &self.dir {
                    let base = dir.join("v1").join(key(&e.url));
                    for ext in ["meta", "body"] {
                        match std::fs::remove_file(base.with_extension(ext)) {
                            Ok(()) => {}
                            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                            Err(err) => return Err(CacheError::Io(err.to_string())),
                        }
                    }
                }
                lock(&self.memory).remove(&e.url);
                n += 1;
            }
        }
        Ok(n)
    }

    fn cached(&self, url: &str) -> Option<Arc<Entry>> {
        if let Some(e) = lock(&self.memory).get(url) {
            return Some(Arc::clone(e));
        }
        let dir = self.dir.as_ref()?;
        let e = Arc::new(load(&dir.join("v1").join(key(url)))?);
        if e.url != url {
            return None;
        }
        self.remember(Arc::clone(&e));
        Some(e)
    }

    fn remember(&self, e: Arc<Entry>) {
        let mut m = lock(&self.memory);
        if m.len() >= self.config.memory_entries {
            m.clear();
        }
        m.insert(e.url.clone(), e);
    }

    fn offline_get(&self, dir: &Path, spec: &Spec, now: i64) -> Result<Got, CacheError> {
        let path = offline_path(dir, &spec.url);
        let body = std::fs::read(&path).map_err(|_| CacheError::NotOffline {
            url: spec.url.clone(),
            path: path.display().to_string(),
        })?;
        let mut headers = Vec::new();
        if let Ok(text) = std::fs::read_to_string(headers_path(&path)) {
            for line in text.lines() {
                if let Some((n, v)) = line.split_once(':') {
                    headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
        }
        let validity = (spec.validity)(&body, &headers).map_err(|why| CacheError::Invalid {
            url: spec.url.clone(),
            why,
        })?;
        if now >= validity.next_update {
            return Err(CacheError::Expired {
                url: spec.url.clone(),
                next_update: validity.next_update,
                now,
            });
        }
        let entry = Arc::new(Entry {
            url: spec.url.clone(),
            headers,
            fetched_at: now,
            validity,
            body_sha256: hex(&Sha256::digest(&body)),
            body: Arc::new(body),
        });
        Ok(Got {
            entry,
            origin: Origin::Offline,
        })
    }

    /// The one fetch of `spec.url` now; concurrent callers wait for it.
    fn single_flight(self: &Arc<Self>, spec: &Spec, now: i64) -> Result<Arc<Entry>, CacheError> {
        let (flight, leader) = {
            let mut f = lock(&self.flights);
            match f.get(&spec.url) {
                Some(fl) => (Arc::clone(fl), false),
                None => {
                    let fl = Arc::new(Flight::default());
                    f.insert(spec.url.clone(), Arc::clone(&fl));
                    (fl, true)
                }
            }
        };
        if !leader {
            self.stats.joined.fetch_add(1, Ordering::Relaxed);
            let mut done = lock(&flight.done);
            while done.is_none() {
                done = flight
                    .cv
                    .wait(done)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            let result = done
                .clone()
                .unwrap_or_else(|| Err(CacheError::Transport("no result".into())));
            drop(done);
            // A refresh that ended before this caller's now (the verifier's
            // clock may be ahead of the leader's) may still be expired.
            return match result {
                Ok(e) if now >= e.validity.next_update => Err(CacheError::Expired {
                    url: spec.url.clone(),
                    next_update: e.validity.next_update,
                    now,
                }),
                r => r,
            };
        }
        let result = self.fetch(spec, now);
        match &result {
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                let by_source = match source_of_kind(kind_of(&spec.url)) {
                    "pcs" => &self.stats.failures_pcs,
                    _ => &self.stats.failures_kds,
                };
                by_source.fetch_add(1, Ordering::Relaxed);
                let availability = matches!(
                    e,
                    CacheError::RateLimited { .. }
                        | CacheError::Transport(_)
                        | CacheError::Status {
                            status: 429 | 500..=599,
                            ..
                        }
                );
                if availability && !self.config.negative_ttl.is_zero() {
                    lock(&self.failed).insert(
                        spec.url.clone(),
                        (Instant::now() + self.config.negative_ttl, e.clone()),
                    );
                }
            }
            Ok(_) => {
                lock(&self.failed).remove(&spec.url);
            }
        }
        *lock(&flight.done) = Some(result.clone());
        flight.cv.notify_all();
        lock(&self.flights).remove(&spec.url);
        result
    }

    fn refresh_in_background(self: &Arc<Self>, spec: &Spec, now: i64) {
        if lock(&self.flights).contains_key(&spec.url) {
            return;
        }
        if lock(&self.retry_not_before)
            .get(&spec.url)
            .is_some_and(|t| Instant::now() < *t)
        {
            return;
        }
        self.stats.refreshes.fetch_add(1, Ordering::Relaxed);
        self.pending.fetch_add(1, Ordering::SeqCst);
        let me = Arc::clone(self);
        let spec = spec.clone();
        let spawned = std::thread::Builder::new()
            .name("collateral-refresh".into())
            .spawn(move || {
                if let Err(e) = me.single_flight(&spec, now) {
                    // Stale-if-error: the cached copy stays until its nextUpdate.
                    log::warn!("collateral refresh of {} failed, serving the cached copy until its nextUpdate: {e}", spec.url);
                    let wait = me.config.backoff_cap.max(Duration::from_secs(30));
                    lock(&me.retry_not_before).insert(spec.url.clone(), Instant::now() + wait);
                } else {
                    lock(&me.retry_not_before).remove(&spec.url);
                }
                me.pending.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            log::warn!("collateral refresh not started: {e}");
        }
    }

    fn host_of(url: &str) -> String {
        url.split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or(url)
            .to_owned()
    }

    /// Full-jitter backoff for attempt `n` (0-based).
    fn backoff(&self, n: u32) -> Duration {
        let cap = self.config.backoff_cap;
        let exp = self
            .config
            .backoff_base
            .saturating_mul(1u32.checked_shl(n.min(16)).unwrap_or(u32::MAX))
            .min(cap);
        // xorshift: jitter only, not a secret.
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.store(x, Ordering::Relaxed);
        let ms = u64::try_from(exp.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(x % ms)
    }

    /// GET with retries until the deadline, validate, store.
    fn fetch(&self, spec: &Spec, now: i64) -> Result<Arc<Entry>, CacheError> {
        let Some(client) = &self.client else {
            return Err(CacheError::Transport(format!(
                "{}: no network access configured (offline mode) and not in the cache",
                spec.url
            )));
        };
        let deadline = Instant::now() + self.config.fetch_deadline;
        let host = Self::host_of(&spec.url);
        let mut attempt = 0u32;
        loop {
            // A 429 for this host holds every request to it back.
            let blocked = lock(&self.host_blocked).get(&host).copied();
            if let Some(until) = blocked {
                let now_i = Instant::now();
                if until > now_i {
                    if until > deadline {
                        return Err(CacheError::RateLimited {
                            url: spec.url.clone(),
                            retry_after_secs: (until - now_i).as_secs().max(1),
                        });
                    }
                    std::thread::sleep(until - now_i);
                }
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let answer = client.get(&spec.url, spec.keep_headers);
            let retry_in = match answer {
                Ok(a) if a.status == 200 => return self.accept(spec, a, now),
                Ok(a) if a.status == 429 => {
                    self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    let ra = retry_after(&a)
                        .unwrap_or_else(|| self.backoff(attempt).max(Duration::from_secs(1)));
                    lock(&self.host_blocked).insert(host.clone(), Instant::now() + ra);
                    if Instant::now() + ra > deadline {
                        return Err(CacheError::RateLimited {
                            url: spec.url.clone(),
                            retry_after_secs: ra.as_secs().max(1),
                        });
                    }
                    // The host block above makes the next round wait.
                    Duration::ZERO
                }
                Ok(a) if matches!(a.status, 500 | 502 | 503 | 504) => {
                    let d = retry_after(&a).unwrap_or_else(|| self.backoff(attempt));
                    if Instant::now() + d > deadline {
                        return Err(CacheError::Status {
                            url: spec.url.clone(),
                            status: a.status,
                        });
                    }
                    d
                }
                Ok(a) => {
                    return Err(CacheError::Status {
                        url: spec.url.clone(),
                        status: a.status,
                    })
                }
                Err(e @ HttpError::TooLarge { .. }) => {
                    return Err(CacheError::Invalid {
                        url: spec.url.clone(),
                        why: e.to_string(),
                    })
                }
                Err(e) => {
                    let d = self.backoff(attempt);
                    if Instant::now() + d > deadline {
                        return Err(CacheError::Transport(e.to_string()));
                    }
                    d
                }
            };
            std::thread::sleep(retry_in);
            attempt += 1;
        }
    }

    fn accept(&self, spec: &Spec, a: Answer, now: i64) -> Result<Arc<Entry>, CacheError> {
        let headers: Vec<(String, String)> = a
            .headers
            .into_iter()
            .filter(|(n, _)| spec.keep_headers.contains(&n.as_str()))
            .collect();
        let validity = (spec.validity)(&a.body, &headers).map_err(|why| CacheError::Invalid {
            url: spec.url.clone(),
            why,
        })?;
        if now >= validity.next_update {
            return Err(CacheError::Expired {
                url: spec.url.clone(),
                next_update: validity.next_update,
                now,
            });
        }
        let entry = Entry {
            url: spec.url.clone(),
            headers,
            fetched_at: now,
            validity,
            body_sha256: hex(&Sha256::digest(&a.body)),
            body: Arc::new(a.body),
        };
        if let Some(dir) = &self.dir {
            store(&dir.join("v1").join(key(&spec.url)), &entry)?;
        }
        self.stats.fetched.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(entry);
        self.remember(Arc::clone(&entry));
        Ok(entry)
    }
}

/// `Retry-After`: delta seconds, or an HTTP date (RFC 9110 §10.2.3).
fn retry_after(a: &Answer) -> Option<Duration> {
    let v = a.header("retry-after")?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = http_date(v)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(
        u64::try_from(at).ok()?.saturating_sub(now),
    ))
}

/// IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT` to Unix seconds.
pub fn http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| x == mon)? + 1;
    let iso = format!("{year}-{m:02}-{:02}T{time}Z", day.parse::<u8>().ok()?);
    appraisal::parse_rfc3339(&iso)
}

/// The cache file stem of `url`.
pub fn key(url: &str) -> String {
    hex(&Sha256::digest(url.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `DIR/<path>[?<query>]` of a URL (the host and scheme dropped).
pub fn offline_path(dir: &Path, url: &str) -> PathBuf {
    let rest = url
        .split("://")
        .nth(1)
        .and_then(|r| r.find('/').map(|i| &r[i + 1..]))
        .unwrap_or("");
    // No climbing out of the directory, whatever the URL holds.
    let safe: Vec<&str> = rest
        .split('/')
        .filter(|c| !c.is_empty() && *c != "." && *c != "..")
        .collect();
    let mut p = dir.to_path_buf();
    for c in safe {
        p.push(c);
    }
    p
}

/// Writes `entry` into an offline directory at its URL's path (and its
/// kept headers beside it): what `enclavectl collateral fetch --out` makes
/// for an air-gapped verifier.
pub fn write_offline(dir: &Path, entry: &Entry) -> Result<PathBuf, CacheError> {
    let path = offline_path(dir, &entry.url);
    let io = |e: std::io::Error| CacheError::Io(format!("{}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(&path, &entry.body[..]).map_err(io)?;
    if !entry.headers.is_empty() {
        let text: String = entry
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect();
        std::fs::write(headers_path(&path), text).map_err(io)?;
    }
    Ok(path)
}

/// The headers file next to an offline document.
pub fn headers_path(doc: &Path) -> PathBuf {
    let mut s = doc.as_os_str().to_owned();
    s.push(".headers");
    PathBuf::from(s)
}

fn load(base: &Path) -> Option<Entry> {
    let meta = std::fs::read(base.with_extension("meta")).ok()?;
    let mut e: Entry = serde_json::from_slice(&meta).ok()?;
    let body = std::fs::read(base.with_extension("body")).ok()?;
    if hex(&Sha256::digest(&body)) != e.body_sha256 {
        log::warn!(
            "collateral cache entry {} ignored: body does not match its meta",
            base.display()
        );
        return None;
    }
    e.body = Arc::new(body);
    Some(e)
}

fn store(base: &Path, e: &Entry) -> Result<(), CacheError> {
    let io = |err: std::io::Error| CacheError::Io(format!("{}: {err}", base.display()));
    let meta = serde_json::to_vec_pretty(e).map_err(|err| CacheError::Io(err.to_string()))?;
    for (ext, bytes) in [("body", &e.body[..]), ("meta", &meta[..])] {
        let tmp = base.with_extension(format!("{ext}.tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, base.with_extension(ext)).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_name_every_document_the_resolver_asks_for() {
        let kds = crate::kds::KDS_BASE;
        let pcs = crate::pcs::PCS_BASE;
        for (url, kind) in [
            (format!("{kds}/vcek/v1/Milan/abcd?blSPL=3"), "vcek"),
            (format!("{kds}/vcek/v1/Milan/crl"), "snp_crl"),
            (format!("{kds}/vlek/v1/Genoa/crl"), "snp_crl"),
            (format!("{kds}/vcek/v1/Milan/cert_chain"), "snp_cert_chain"),
            (
                format!("{pcs}/tdx/certification/v4/tcb?fmspc=B0C06F000000"),
                "tdx_tcb_info",
            ),
            (
                format!("{pcs}/tdx/certification/v4/qe/identity"),
                "tdx_qe_identity",
            ),
            (
                format!("{pcs}/sgx/certification/v4/pckcrl?ca=processor&encoding=der"),
                "tdx_pck_crl",
            ),
            (crate::pcs::ROOT_CA_CRL_URL.to_owned(), "tdx_root_ca_crl"),
            ("https://elsewhere/x".to_owned(), "other"),
        ] {
            assert_eq!(kind_of(&url), kind, "{url}");
        }
        assert_eq!(source_of_kind("tdx_pck_crl"), "pcs");
        assert_eq!(source_of_kind("vcek"), "kds");
    }

    #[test]
    fn offline_paths_follow_the_url_path_and_stay_inside() {
        let d = Path::new("/o");
        assert_eq!(
            offline_path(d, "https://kdsintf.amd.com/vcek/v1/Milan/crl"),
            Path::new("/o/vcek/v1/Milan/crl")
        );
        assert_eq!(
            offline_path(
                d,
                "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=B0C06F000000"
            ),
            Path::new("/o/tdx/certification/v4/tcb?fmspc=B0C06F000000")
        );
        assert_eq!(
            offline_path(d, "https://h/../../etc/passwd"),
            Path::new("/o/etc/passwd")
        );
    }

    #[test]
    fn http_dates() {
        // RFC 9110's example: 784111777 = Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37"), None);
    }
}
