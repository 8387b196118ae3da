//! TCB lifecycle: per platform seen (SEV-SNP: CHIP_ID, or the VLEK when the
//! host masks it; TDX: FMSPC and PCK), the TCB it has and the TCB the
//! collateral now calls current, so that an operator sees a TCB recovery
//! coming before a policy change denies anyone (`GET /v1/platforms`,
//! `/metrics`; `enclavectl policy check` answers "whom would this deny").
//!
//! - TDX: the platform's matched TCB level (status, tcbDate) against the
//!   newest level Intel's TCB info calls `UpToDate` (`current_tcb_date`):
//!   `behind` when Intel lists a newer one (the platform is then OutOfDate
//!   under the next collateral, or already is).
//! - SEV-SNP: the REPORTED/LAUNCH/COMMITTED TCB components. AMD publishes
//!   no document that names the current TCB (KDS issues a VCEK for any
//!   TCB), so `current_tcb` is null and `behind` is not computed; the policy's
//!   `snp.min_reported_tcb` is the operator's own statement of it.
//!
//! Bounded: at most [`CAPACITY`] platforms, the least recently seen
//! forgotten first. Labels are public identifiers (chip ids, FMSPCs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use serde_json::{json, Map, Value};
use wire::EvidenceBundle;

/// Platforms remembered.
pub const CAPACITY: usize = 1024;

#[derive(Debug, Clone)]
struct Platform {
    tee: String,
    last_seen: i64,
    tcb: Value,
}

/// The platforms seen by this verifier.
#[derive(Default)]
pub struct Platforms {
    map: Mutex<BTreeMap<String, Platform>>,
}

impl Platforms {
    /// Records accepted evidence.
    pub fn seen(&self, bundle: &EvidenceBundle, claims: &Map<String, Value>, now: i64) {
        let Some(key) = collateral::store::platform_key(bundle, claims) else {
            return;
        };
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= CAPACITY && !m.contains_key(&key) {
            if let Some(oldest) = m
                .iter()
                .min_by_key(|(_, p)| p.last_seen)
                .map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        m.insert(
            key,
            Platform {
                tee: bundle.tee.as_str().to_owned(),
                last_seen: now,
                tcb: claims.get("tcb").cloned().unwrap_or(Value::Null),
            },
        );
    }

    /// `[{platform, tee, last_seen, tcb, current_tcb, behind}]`.
    pub fn to_json(&self) -> Value {
        let m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        Value::Array(
            m.iter()
                .map(|(k, p)| {
                    let (current, behind) = current(p);
                    json!({
                        "platform": k,
                        "tee": p.tee,
                        "last_seen": wire::time::rfc3339(p.last_seen),
                        "tcb": p.tcb,
                        "current_tcb": current,
                        "behind": behind,
                    })
                })
                .collect(),
        )
    }

    /// Prometheus lines.
    pub fn render(&self) -> String {
        let m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# HELP enclave_verifier_platform_last_seen_seconds When the platform's evidence was last accepted (Unix seconds).\n# TYPE enclave_verifier_platform_last_seen_seconds gauge\n");
        for (k, p) in m.iter() {
            let _ = writeln!(
                out,
                "enclave_verifier_platform_last_seen_seconds{{tee=\"{}\",platform=\"{k}\"}} {}",
                p.tee, p.last_seen
            );
        }
        out.push_str("# HELP enclave_verifier_platform_tcb_behind 1 when the collateral calls a newer TCB current than the platform has (TDX).\n# TYPE enclave_verifier_platform_tcb_behind gauge\n");
        for (k, p) in m.iter() {
            if let (_, Some(b)) = current(p) {
                let _ = writeln!(
                    out,
                    "enclave_verifier_platform_tcb_behind{{tee=\"{}\",platform=\"{k}\"}} {}",
                    p.tee,
                    u8::from(b)
                );
            }
        }
        out.push_str("# HELP enclave_verifier_platform_tcb_component The platform's TCB components (SEV-SNP REPORTED_TCB SPLs; TDX tcbEvaluationDataNumber and PCE SVN).\n# TYPE enclave_verifier_platform_tcb_component gauge\n");
        for (k, p) in m.iter() {
            let comps: &[&str] = if p.tee == "tdx" {
                &["tcb_evaluation_data_number"]
            } else {
                &["bootloader", "tee", "snp", "microcode", "fmc"]
            };
            for c in comps {
                if let Some(v) = p.tcb.get(*c).and_then(Value::as_u64) {
                    let _ = writeln!(out, "enclave_verifier_platform_tcb_component{{tee=\"{}\",platform=\"{k}\",component=\"{c}\"}} {v}", p.tee);
                }
            }
            if let Some(v) = p
                .tcb
                .get("components")
                .and_then(|c| c.get("pce_svn"))
                .and_then(Value::as_u64)
            {
                let _ = writeln!(out, "enclave_verifier_platform_tcb_component{{tee=\"{}\",platform=\"{k}\",component=\"pce_svn\"}} {v}", p.tee);
            }
        }
        out
    }
}

/// `(current TCB per the collateral, behind?)`.
fn current(p: &Platform) -> (Value, Option<bool>) {
    if p.tee != "tdx" {
        return (Value::Null, None);
    }
    let have = p.tcb.get("tcb_date").and_then(Value::as_str);
    let cur = p.tcb.get("current_tcb_date").and_then(Value::as_str);
    let behind = match (have, cur) {
        (Some(h), Some(c)) => {
            Some(c > h || p.tcb.get("tcb_status").and_then(Value::as_str) != Some("UpToDate"))
        }
        _ => None,
    };
    (
        json!({"tcb_date": cur, "tcb_evaluation_data_number": p.tcb.get("tcb_evaluation_data_number")}),
        behind,
    )
}

/// Prometheus lines of the collateral cache's counters.
pub fn render_cache(s: &collateral::cache::Stats) -> String {
    let mut out = String::new();
    for (name, help, v) in [
        (
            "requests",
            "HTTP requests to KDS/PCS, retries included",
            &s.requests,
        ),
        ("fetched", "documents fetched and stored", &s.fetched),
        ("cache_hits", "documents served from the cache", &s.hits),
        (
            "joined",
            "appraisals that waited for another's fetch of the same document",
            &s.joined,
        ),
        ("refreshes", "background refreshes started", &s.refreshes),
        ("failures", "fetches or refreshes that failed", &s.failures),
        ("rate_limited", "429 answers", &s.rate_limited),
    ] {
        let _ = write!(
            out,
            "# HELP enclave_verifier_collateral_{name}_total Collateral: {help}.\n# TYPE enclave_verifier_collateral_{name}_total counter\nenclave_verifier_collateral_{name}_total {}\n",
            v.load(Ordering::Relaxed)
        );
    }
    out
}
