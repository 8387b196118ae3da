//! `enclavectl collateral fetch|show|prune`: the verifier's collateral cache
//! (crate `collateral`), and the collateral options the verifier and
//! `verify` share ([`Options`]).
//!
//! - `fetch EVIDENCE…`: gets the documents each evidence file needs (AMD
//!   KDS: VCEK, CA chain, CRL; Intel PCS: TCB info, QE identity, PCK CRL,
//!   root CA CRL) into the cache, and with `--out DIR` also lays them out
//!   as an offline directory (the URL paths) for an air-gapped verifier.
//! - `show`: every cached document with its validity and state.
//! - `prune`: removes expired documents (`--all`: everything).
//!
//! Exit status: 0 done, 1 a document could not be had, 2 usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use collateral::cache::{self, Cache, CacheConfig};
use collateral::http::{Client, Roots};
use collateral::store::Store;
use collateral::{kds, pcs, Endpoints, Resolver};
use serde_json::json;
use wire::{EvidenceBundle, Tee};

use crate::CmdResult;

/// Where the verifier's collateral comes from (shared by `verifier`,
/// `verify`, `collateral` and `policy check`).
#[derive(clap::Args, Clone, Debug)]
pub struct Options {
    /// Collateral cache directory: KDS/PCS documents keyed by URL, and the
    /// last accepted evidence per platform (for `enclavectl policy check`).
    /// Default: memory only.
    #[arg(long, value_name = "DIR")]
    pub collateral_cache: Option<PathBuf>,
    /// Offline mode: read KDS/PCS documents from DIR, laid out like their
    /// URL paths (`enclavectl collateral fetch --out DIR` makes one); no
    /// network access.
    #[arg(long, value_name = "DIR")]
    pub collateral_offline: Option<PathBuf>,
    /// AMD KDS base URL [default: https://kdsintf.amd.com].
    #[arg(long, value_name = "URL")]
    pub kds_url: Option<String>,
    /// Intel PCS or PCCS base URL [default: https://api.trustedservices.intel.com].
    #[arg(long, value_name = "URL")]
    pub pcs_url: Option<String>,
    /// Intel root CA CRL URL [default: Intel's; with --pcs-url,
    /// <pcs-url>/sgx/certification/v4/rootcacrl as a PCCS serves it].
    #[arg(long, value_name = "URL")]
    pub intel_root_crl_url: Option<String>,
    /// Trust only the CAs of this PEM file for KDS/PCS HTTPS [default: the
    /// system's CA bundle].
    #[arg(long, value_name = "PEM")]
    pub collateral_ca: Option<PathBuf>,
}

impl Options {
    /// Whether any endpoint was named (the offline tools fetch only then).
    pub fn names_endpoint(&self) -> bool {
        self.kds_url.is_some() || self.pcs_url.is_some() || self.intel_root_crl_url.is_some()
    }

    fn endpoints(&self) -> Endpoints {
        let d = Endpoints::default();
        let pcs = self
            .pcs_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned());
        Endpoints {
            kds: self
                .kds_url
                .clone()
                .map_or(d.kds, |u| u.trim_end_matches('/').to_owned()),
            root_ca_crl: self
                .intel_root_crl_url
                .clone()
                .or_else(|| {
                    pcs.as_ref()
                        .map(|p| format!("{p}/sgx/certification/v4/rootcacrl"))
                })
                .unwrap_or(d.root_ca_crl),
            pcs: pcs.unwrap_or(d.pcs),
        }
    }

    /// The cache and resolver, fetching over the network when `network`
    /// (and not offline), and the evidence store in the cache directory.
    pub fn resolver(&self, network: bool) -> Result<(Arc<Resolver>, Option<Store>), String> {
        let client = if network && self.collateral_offline.is_none() {
            let roots = match &self.collateral_ca {
                Some(p) => Roots::Pinned(p.clone()),
                None => Roots::System,
            };
            match Client::new(&roots, Duration::from_secs(5)) {
                Ok(c) => Some(c),
                Err(e) if self.collateral_ca.is_none() => {
                    eprintln!("enclavectl: WARNING: {e}; collateral is not fetched, only the cache and the bundle's are used");
                    None
                }
                Err(e) => return Err(e.to_string()),
            }
        } else {
            None
        };
        let cache = Cache::new(
            CacheConfig::default(),
            client,
            self.collateral_cache.clone(),
            self.collateral_offline.clone(),
        )
        .map_err(|e| e.to_string())?;
        let store = match &self.collateral_cache {
            Some(d) => Some(Store::open(d).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok((Arc::new(Resolver::new(cache, self.endpoints())), store))
    }
}

#[derive(Subcommand)]
pub enum CollateralCommand {
    /// Fetch the collateral evidence files need into the cache (and --out DIR as an offline directory).
    Fetch {
        /// Evidence: bundles (JSON), SEV-SNP reports, TDX quotes.
        #[arg(required = true)]
        evidence: Vec<PathBuf>,
        /// Also write the documents here, laid out like their URL paths.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// The time to check validity at (RFC 3339 or Unix seconds) [default: now].
        #[arg(long)]
        now: Option<String>,
        #[command(flatten)]
        options: Options,
    },
    /// List the cached documents: URL, fetched, next update, state.
    Show {
        /// The cache directory.
        #[arg(long, value_name = "DIR")]
        collateral_cache: PathBuf,
        /// The time to judge them at [default: now].
        #[arg(long)]
        now: Option<String>,
    },
    /// Remove expired documents from the cache.
    Prune {
        /// The cache directory.
        #[arg(long, value_name = "DIR")]
        collateral_cache: PathBuf,
        /// Remove every document, expired or not.
        #[arg(long)]
        all: bool,
        /// The time to judge them at [default: now].
        #[arg(long)]
        now: Option<String>,
    },
}

/// `--now`, or this machine's clock.
pub fn now(arg: Option<&str>) -> Result<i64, String> {
    match arg {
        Some(t) => appraisal::time::parse_now(t).map_err(|e| format!("--now {e}")),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .map_err(|e| e.to_string()),
    }
}

/// An evidence file as a bundle: JSON bundle, 1184-byte SNP report, or TDX quote.
pub fn evidence_bundle(path: &Path) -> Result<EvidenceBundle, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let trimmed = crate::evidence_cmd::trim_text(&bytes);
    if trimmed.first() == Some(&b'{') {
        return EvidenceBundle::from_json(trimmed).map_err(|e| format!("{}: {e}", path.display()));
    }
    let tee = if bytes.len() == 1184 {
        Tee::Snp
    } else {
        Tee::Tdx
    };
    Ok(EvidenceBundle::new(tee, "file", bytes))
}

fn state(cache: &Cache, e: &cache::Entry, now: i64) -> &'static str {
    if now >= e.validity.next_update {
        "expired"
    } else if now >= cache.refresh_at(e) {
        "refresh due"
    } else {
        "fresh"
    }
}

pub fn run(c: CollateralCommand) -> CmdResult {
    let usage = |e: String| {
        eprintln!("enclavectl collateral: {e}");
        Ok(ExitCode::from(2))
    };
    match c {
        CollateralCommand::Fetch {
            evidence,
            out,
            now: at,
            options,
        } => {
            let now = match now(at.as_deref()) {
                Ok(n) => n,
                Err(e) => return usage(e),
            };
            let (resolver, _) = match options.resolver(true) {
                Ok(r) => r,
                Err(e) => return usage(e),
            };
            let mut failed = false;
            for path in &evidence {
                let bundle = match evidence_bundle(path) {
                    Ok(b) => b,
                    Err(e) => return usage(e),
                };
                let specs = match resolver.specs(&bundle) {
                    Ok(s) => s,
                    Err(e) => return usage(format!("{}: {e}", path.display())),
                };
                for spec in specs {
                    match resolver.cache().get(&spec, now) {
                        Ok(got) => {
                            if let Some(dir) = &out {
                                cache::write_offline(dir, &got.entry)?;
                            }
                            println!(
                                "{}",
                                json!({"url": spec.url, "source": got.origin.source().as_str(), "next_update": wire::time::rfc3339(got.entry.validity.next_update)})
                            );
                        }
                        Err(e) => {
                            failed = true;
                            println!("{}", json!({"url": spec.url, "error": e.to_string()}));
                        }
                    }
                }
            }
            resolver.cache().wait_idle(Duration::from_secs(30));
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        CollateralCommand::Show {
            collateral_cache,
            now: at,
        } => {
            let now = match now(at.as_deref()) {
                Ok(n) => n,
                Err(e) => return usage(e),
            };
            let cache = Cache::new(CacheConfig::default(), None, Some(collateral_cache), None)?;
            for e in cache.entries() {
                println!(
                    "{}",
                    json!({
                        "url": e.url,
                        "fetched_at": wire::time::rfc3339(e.fetched_at),
                        "issued": e.validity.issued.map(wire::time::rfc3339),
                        "next_update": wire::time::rfc3339(e.validity.next_update),
                        "refresh_at": wire::time::rfc3339(cache.refresh_at(&e)),
                        "state": state(&cache, &e, now),
                        "bytes": e.body.len(),
                        "sha256": e.body_sha256,
                    })
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CollateralCommand::Prune {
            collateral_cache,
            all,
            now: at,
        } => {
            let now = match now(at.as_deref()) {
                Ok(n) => n,
                Err(e) => return usage(e),
            };
            let cache = Cache::new(CacheConfig::default(), None, Some(collateral_cache), None)?;
            let n = cache.prune(now, all)?;
            println!("{}", json!({"removed": n}));
            Ok(ExitCode::SUCCESS)
        }
    }
}

// Keep the KDS/PCS modules' defaults reachable from the help text.
const _: (&str, &str) = (kds::KDS_BASE, pcs::PCS_BASE);
