//! From evidence to the collateral the appraisal needs: which KDS/PCS
//! documents, fetched through the [`Cache`], as an [`appraisal::Collateral`].
//!
//! - SEV-SNP, VCEK-signed: the VCEK for CHIP_ID and REPORTED_TCB (not when
//!   the host masks CHIP_ID), and the product's VCEK CRL.
//! - SEV-SNP, VLEK-signed: the product's VLEK CRL (the VLEK itself only
//!   comes from the host).
//! - The product: the report's CPUID (v3+), else the productName of the
//!   host's VCEK/VLEK (it only picks the URL; the chain is verified against
//!   the pinned roots), else Milan then Genoa (a 404 moves on).
//! - TDX: FMSPC and PCK CA from the quote's PCK certificate, then TCB info,
//!   QE identity, PCK CRL and root CA CRL.
//! - Simulation: nothing (its CRL travels with its bundle).
//! - Not per appraisal: the KDS CA chains (ASK/ASVK, ARK). The appraisal
//!   trusts only its compiled-in, pinned copies; `enclavectl collateral
//!   fetch` still gets them (into the cache and offline directories).
//!
//! Nothing here fails an appraisal: a document that cannot be had is left
//! out and its reason goes into [`Collateral::problems`], for the denial the
//! appraisal then makes (or the bundle's copy is used).

use std::sync::Arc;

use appraisal::collateral::{Piece, TdxCollateral};
use appraisal::Collateral;
use der::Decode;
use tee_formats::snp::{Generation, ReceivedReport, SigningKey};
use wire::{CertKind, EvidenceBundle, Tee};

use crate::cache::{Cache, CacheError, Got, Spec};
use crate::{kds, pcs};

/// Where the documents are fetched from.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// AMD KDS base (default [`kds::KDS_BASE`]).
    pub kds: String,
    /// Intel PCS or PCCS base (default [`pcs::PCS_BASE`]).
    pub pcs: String,
    /// The root CA CRL URL (default [`pcs::ROOT_CA_CRL_URL`]).
    pub root_ca_crl: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            kds: kds::KDS_BASE.to_owned(),
            pcs: pcs::PCS_BASE.to_owned(),
            root_ca_crl: pcs::ROOT_CA_CRL_URL.to_owned(),
        }
    }
}

/// Resolves collateral for evidence.
pub struct Resolver {
    cache: Arc<Cache>,
    endpoints: Endpoints,
}

impl Resolver {
    /// A resolver over `cache`.
    pub fn new(cache: Arc<Cache>, endpoints: Endpoints) -> Resolver {
        Resolver { cache, endpoints }
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The collateral for `bundle` at the verifier's time `now`.
    pub fn resolve(&self, bundle: &EvidenceBundle, now: i64) -> Collateral {
        match bundle.tee {
            Tee::Snp => self.snp(bundle, now),
            Tee::Tdx => self.tdx(bundle, now),
            // Simulation needs none; Azure's hardware report sits inside the
            // HCL report and its collateral comes with the bundle (the host's
            // IMDS relay) for now: resolving it here is not done yet. A
            // Nitro document carries its whole chain, and AWS publishes no
            // CRL for it.
            Tee::Sim | Tee::AzureSnp | Tee::AzureTdx | Tee::Nitro => Collateral::none(),
        }
    }

    /// When the oldest cached document `bundle`'s appraisal uses that can
    /// change (CRLs, TCB info, QE identity; not certificates) was issued
    /// (its thisUpdate/issueDate, else when it was fetched): how stale the
    /// collateral behind a decision was. None when the cache holds none.
    pub fn oldest_issued(&self, bundle: &EvidenceBundle) -> Option<i64> {
        self.specs(bundle)
            .ok()?
            .iter()
            .filter_map(|spec| self.cache.peek(&spec.url))
            .filter(|e| e.validity.mutable)
            .map(|e| e.validity.issued.unwrap_or(e.fetched_at))
            .min()
    }

    /// The documents to get for `bundle` (the first product guess for a
    /// v2 report without a hint): for `enclavectl collateral fetch`.
    pub fn specs(&self, bundle: &EvidenceBundle) -> Result<Vec<Spec>, String> {
        match bundle.tee {
            Tee::Snp => {
                let r = ReceivedReport::parse(&bundle.evidence)
                    .map_err(|e| format!("not an SEV-SNP report: {e}"))?;
                let r = r.report();
                let key = key_type(r.key_info.signing_key())
                    .ok_or("the report is not signed by a VCEK or VLEK")?;
                let product = products(bundle, r)[0];
                let mut v = vec![
                    kds::cert_chain(&self.endpoints.kds, product, key),
                    kds::crl(&self.endpoints.kds, product, key),
                ];
                if key == kds::KeyType::Vcek && r.chip_id.iter().any(|&b| b != 0) {
                    v.insert(
                        0,
                        kds::vcek(&self.endpoints.kds, product, &r.chip_id, r.reported_tcb),
                    );
                }
                Ok(v)
            }
            Tee::Tdx => {
                let p = appraisal::tdx_platform(&bundle.evidence)?;
                Ok(vec![
                    pcs::tcb_info(&self.endpoints.pcs, &p.fmspc),
                    pcs::qe_identity(&self.endpoints.pcs),
                    pcs::pck_crl(&self.endpoints.pcs, p.ca),
                    pcs::root_ca_crl(&self.endpoints.root_ca_crl),
                ])
            }
            Tee::Sim | Tee::AzureSnp | Tee::AzureTdx | Tee::Nitro => Ok(Vec::new()),
        }
    }

    fn get(&self, spec: &Spec, now: i64, what: &str, problems: &mut Vec<String>) -> Option<Got> {
        match self.cache.get(spec, now) {
            Ok(g) => Some(g),
            Err(e) => {
                problems.push(format!("{what}: {}", describe(&e)));
                None
            }
        }
    }

    fn snp(&self, bundle: &EvidenceBundle, now: i64) -> Collateral {
        let mut c = Collateral::none();
        let Ok(received) = ReceivedReport::parse(&bundle.evidence) else {
            return c; // the appraisal names the format error
        };
        let r = received.report();
        let Some(key) = key_type(r.key_info.signing_key()) else {
            return c;
        };
        let candidates = products(bundle, r);
        let mut product = candidates[0];
        let masked = r.chip_id.iter().all(|&b| b == 0);
        let kds = &self.endpoints.kds;
        // The common case, a warm cache: no thread, no wait.
        let want_vcek = key == kds::KeyType::Vcek && !masked;
        let crl_spec = kds::crl(kds, product, key);
        let vcek_spec = want_vcek.then(|| kds::vcek(kds, product, &r.chip_id, r.reported_tcb));
        if let Some(crl) = self.cache.get_cached(&crl_spec, now) {
            let vcek = vcek_spec.as_ref().map(|s| self.cache.get_cached(s, now));
            if !matches!(vcek, Some(None)) {
                c.snp_crl = Some(Piece::new(crl.entry.body.to_vec(), crl.origin.source()));
                c.snp_vcek = vcek
                    .flatten()
                    .map(|g| Piece::new(g.entry.body.to_vec(), g.origin.source()));
                return c;
            }
        }
        // The VCEK and the CRL are independent: fetch both at once.
        let (vcek, crl) = std::thread::scope(|s| {
            let vcek = s.spawn(|| {
                let mut problems = Vec::new();
                if key != kds::KeyType::Vcek || masked {
                    return (None, candidates[0], problems);
                }
                for (i, p) in candidates.iter().enumerate() {
                    let spec = kds::vcek(kds, *p, &r.chip_id, r.reported_tcb);
                    match self.cache.get(&spec, now) {
                        Ok(g) => return (Some(g), *p, problems),
                        Err(CacheError::Status { status: 404, .. }) if i + 1 < candidates.len() => {
                            continue
                        }
                        Err(e) => {
                            problems.push(format!("VCEK: {}", describe(&e)));
                            break;
                        }
                    }
                }
                (None, candidates[0], problems)
            });
            let crl = s.spawn(|| {
                let mut problems = Vec::new();
                let g = self.get(
                    &kds::crl(kds, candidates[0], key),
                    now,
                    "CRL",
                    &mut problems,
                );
                (g, problems)
            });
            (vcek.join(), crl.join())
        });
        if let Ok((g, p, problems)) = vcek {
            c.snp_vcek = g.map(|g| Piece::new(g.entry.body.to_vec(), g.origin.source()));
            product = p;
            c.problems.extend(problems);
        }
        if let Ok((g, problems)) = crl {
            c.problems.extend(problems);
            c.snp_crl = g.map(|g| Piece::new(g.entry.body.to_vec(), g.origin.source()));
        }
        if product != candidates[0] {
            // The VCEK was found under another product: its CRL is that one's.
            let mut problems = Vec::new();
            c.snp_crl = self
                .get(&kds::crl(kds, product, key), now, "CRL", &mut problems)
                .map(|g| Piece::new(g.entry.body.to_vec(), g.origin.source()));
            c.problems.extend(problems);
        }
        c
    }

    fn tdx(&self, bundle: &EvidenceBundle, now: i64) -> Collateral {
        let mut c = Collateral::none();
        let platform = match appraisal::tdx_platform(&bundle.evidence) {
            Ok(p) => p,
            Err(e) => {
                c.problems.push(format!("TDX collateral: {e}"));
                return c;
            }
        };
        let e = &self.endpoints;
        let specs = [
            ("TCB info", pcs::tcb_info(&e.pcs, &platform.fmspc)),
            ("QE identity", pcs::qe_identity(&e.pcs)),
            ("PCK CRL", pcs::pck_crl(&e.pcs, platform.ca)),
            ("root CA CRL", pcs::root_ca_crl(&e.root_ca_crl)),
        ];
        let cached: Vec<Option<Got>> = specs
            .iter()
            .map(|(_, spec)| self.cache.get_cached(spec, now))
            .collect();
        let got: Vec<Result<Got, CacheError>> = if cached.iter().all(Option::is_some) {
            // A warm cache: no thread, no wait.
            cached.into_iter().flatten().map(Ok).collect()
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = specs
                    .iter()
                    .map(|(_, spec)| s.spawn(|| self.cache.get(spec, now)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(CacheError::Transport("fetch thread failed".into()))
                        })
                    })
                    .collect()
            })
        };
        let mut t = TdxCollateral::default();
        for ((what, _), g) in specs.iter().zip(got) {
            let g = match g {
                Ok(g) => g,
                Err(err) => {
                    c.problems.push(format!("{what}: {}", describe(&err)));
                    continue;
                }
            };
            let src = g.origin.source();
            let bad = |why: String| format!("{what}: {why}");
            match *what {
                "TCB info" => match pcs::signed_json(&g.entry, true) {
                    Ok(v) => t.tcb_info = Some(Piece::new(v, src)),
                    Err(why) => c.problems.push(bad(why)),
                },
                "QE identity" => match pcs::signed_json(&g.entry, false) {
                    Ok(v) => t.qe_identity = Some(Piece::new(v, src)),
                    Err(why) => c.problems.push(bad(why)),
                },
                "PCK CRL" => match pcs::issued_crl(&g.entry) {
                    Ok(v) => t.pck_crl = Some(Piece::new(v, src)),
                    Err(why) => c.problems.push(bad(why)),
                },
                _ => match pcs::crl_der(&g.entry.body) {
                    Ok(v) => t.root_ca_crl = Some(Piece::new(v, src)),
                    Err(why) => c.problems.push(bad(why)),
                },
            }
        }
        c.tdx = t;
        c
    }
}

fn key_type(k: SigningKey) -> Option<kds::KeyType> {
    match k {
        SigningKey::Vcek => Some(kds::KeyType::Vcek),
        SigningKey::Vlek => Some(kds::KeyType::Vlek),
        _ => None,
    }
}

/// Products to try, most likely first.
fn products(bundle: &EvidenceBundle, r: &tee_formats::snp::AttestationReport) -> Vec<Generation> {
    if let Some(Ok(g)) = r.cpuid().map(|c| Generation::from_cpuid(c.family, c.model)) {
        return vec![g];
    }
    for kind in [CertKind::Vcek, CertKind::Vlek] {
        if let Some(g) = bundle.certificate(kind).and_then(product_name) {
            return vec![g];
        }
    }
    vec![Generation::Milan, Generation::Genoa]
}

/// The productName extension of a VCEK/VLEK (`Milan-B0` → Milan).
fn product_name(der: &[u8]) -> Option<Generation> {
    let oid = der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
    let c = x509_cert::Certificate::from_der(der).ok()?;
    let ext = c
        .tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)?;
    let name = der::asn1::Ia5StringRef::from_der(ext.extn_value.as_bytes()).ok()?;
    match name.as_str().split('-').next()? {
        "Milan" => Some(Generation::Milan),
        "Genoa" => Some(Generation::Genoa),
        "Turin" => Some(Generation::Turin),
        _ => None,
    }
}

/// A cache error in a sentence for a denial.
fn describe(e: &CacheError) -> String {
    match e {
        CacheError::RateLimited {
            retry_after_secs, ..
        } => {
            format!("rate limited (429), retry after {retry_after_secs} s")
        }
        CacheError::Status { status, .. } => format!("answered HTTP {status}"),
        CacheError::Transport(why) => format!("unreachable ({why})"),
        CacheError::Invalid { why, .. } => {
            format!("answered something that is not the document ({why})")
        }
        CacheError::Expired { next_update, .. } => {
            format!(
                "the only copy expired at {}",
                wire::time::rfc3339(*next_update)
            )
        }
        CacheError::NotOffline { path, .. } => format!("not in the offline directory ({path})"),
        CacheError::Io(why) => format!("cache directory: {why}"),
    }
}
