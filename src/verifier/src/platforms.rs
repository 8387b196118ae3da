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
        out.push_str("# HELP enclave_verifier_platforms Platforms seen, by TEE type and TCB status (TDX: Intel's status, out_of_date also when Intel lists a newer TCB; SEV-SNP: unknown, AMD publishes no current TCB).\n# TYPE enclave_verifier_platforms gauge\n");
        let mut by_status: BTreeMap<(&str, &'static str), u64> = BTreeMap::new();
        for p in m.values() {
            *by_status
                .entry((p.tee.as_str(), tcb_status(p)))
                .or_default() += 1;
        }
        for ((tee, status), n) in by_status {
            let _ = writeln!(
                out,
                "enclave_verifier_platforms{{tee=\"{tee}\",tcb_status=\"{status}\"}} {n}"
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

/// The fleet view of a platform's TCB: `up_to_date`, `out_of_date`
/// (Intel's OutOfDate statuses, or a newer UpToDate level listed),
/// `revoked`, `needs_configuration` (Intel's SWHardeningNeeded and
/// ConfigurationNeeded statuses), or `unknown` (SEV-SNP).
fn tcb_status(p: &Platform) -> &'static str {
    if p.tee != "tdx" {
        return "unknown";
    }
    let status = p
        .tcb
        .get("tcb_status")
        .and_then(Value::as_str)
        .unwrap_or("");
    match (status, current(p).1) {
        ("Revoked", _) => "revoked",
        (s, _) if s.starts_with("OutOfDate") => "out_of_date",
        ("UpToDate", Some(true)) => "out_of_date",
        ("UpToDate", _) => "up_to_date",
        ("", _) => "unknown",
        _ => "needs_configuration",
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
    out.push_str("# HELP enclave_verifier_collateral_fetch_errors_total Collateral fetches or refreshes that failed, by source (kds: AMD, pcs: Intel).\n# TYPE enclave_verifier_collateral_fetch_errors_total counter\n");
    for (source, v) in [("kds", &s.failures_kds), ("pcs", &s.failures_pcs)] {
        let _ = writeln!(
            out,
            "enclave_verifier_collateral_fetch_errors_total{{source=\"{source}\"}} {}",
            v.load(Ordering::Relaxed)
        );
    }
    out
}

/// Prometheus gauges of the cached collateral at `now`, per kind
/// ([`collateral::cache::kind_of`]): the oldest document's age (seconds
/// since its issueDate/thisUpdate, or since it was fetched when it has
/// none), and the soonest expiry (seconds until nextUpdate; negative once
/// past). Per kind, not per document: a label per chip would be unbounded.
pub fn render_collateral_age(entries: &[collateral::cache::Entry], now: i64) -> String {
    let mut age: BTreeMap<&'static str, i64> = BTreeMap::new();
    let mut expiry: BTreeMap<&'static str, i64> = BTreeMap::new();
    for e in entries {
        let kind = collateral::cache::kind_of(&e.url);
        let a = now.saturating_sub(e.validity.issued.unwrap_or(e.fetched_at));
        let x = e.validity.next_update.saturating_sub(now);
        age.entry(kind)
            .and_modify(|v| *v = (*v).max(a))
            .or_insert(a);
        expiry
            .entry(kind)
            .and_modify(|v| *v = (*v).min(x))
            .or_insert(x);
    }
    let mut out = String::from("# HELP enclave_verifier_collateral_age_seconds Age of the oldest cached collateral document of each kind (since issued).\n# TYPE enclave_verifier_collateral_age_seconds gauge\n");
    for (kind, v) in &age {
        let _ = writeln!(
            out,
            "enclave_verifier_collateral_age_seconds{{kind=\"{kind}\",source=\"{}\"}} {v}",
            collateral::cache::source_of_kind(kind)
        );
    }
    out.push_str("# HELP enclave_verifier_collateral_expiry_seconds Seconds until the soonest nextUpdate among cached collateral documents of each kind (negative: expired).\n# TYPE enclave_verifier_collateral_expiry_seconds gauge\n");
    for (kind, v) in &expiry {
        let _ = writeln!(
            out,
            "enclave_verifier_collateral_expiry_seconds{{kind=\"{kind}\",source=\"{}\"}} {v}",
            collateral::cache::source_of_kind(kind)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(tee: &str, tcb: Value) -> Platform {
        Platform {
            tee: tee.into(),
            last_seen: 0,
            tcb,
        }
    }

    #[test]
    fn the_fleet_gauge_counts_platforms_by_tcb_status() {
        let p = Platforms::default();
        {
            let mut m = p.map.lock().unwrap();
            let tdx = |status: &str, date: &str, current: &str| {
                platform(
                    "tdx",
                    json!({"tcb_status": status, "tcb_date": date, "current_tcb_date": current}),
                )
            };
            m.insert("a".into(), tdx("UpToDate", "2024-03-13", "2024-03-13"));
            // UpToDate under the collateral it was appraised with, but
            // Intel now lists a newer level.
            m.insert("b".into(), tdx("UpToDate", "2023-08-09", "2024-03-13"));
            m.insert(
                "c".into(),
                tdx("OutOfDateConfigurationNeeded", "2023-02-15", "2024-03-13"),
            );
            m.insert(
                "d".into(),
                tdx("SWHardeningNeeded", "2024-03-13", "2024-03-13"),
            );
            m.insert("e".into(), platform("snp", json!({"snp": 24})));
        }
        let text = p.render();
        for line in [
            "enclave_verifier_platforms{tee=\"tdx\",tcb_status=\"up_to_date\"} 1\n",
            "enclave_verifier_platforms{tee=\"tdx\",tcb_status=\"out_of_date\"} 2\n",
            "enclave_verifier_platforms{tee=\"tdx\",tcb_status=\"needs_configuration\"} 1\n",
            "enclave_verifier_platforms{tee=\"snp\",tcb_status=\"unknown\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} not in {text}");
        }
    }

    #[test]
    fn collateral_age_and_expiry_are_the_worst_document_of_each_kind() {
        let entry = |url: &str, issued: Option<i64>, fetched_at: i64, next_update: i64| {
            collateral::cache::Entry {
                url: url.into(),
                headers: Vec::new(),
                fetched_at,
                validity: collateral::cache::Validity {
                    issued,
                    next_update,
                    mutable: true,
                },
                body_sha256: String::new(),
                body: Default::default(),
            }
        };
        let now = 1_000_000;
        let text = render_collateral_age(
            &[
                entry(
                    "https://k/vcek/v1/Milan/crl",
                    Some(now - 3600),
                    now,
                    now + 7200,
                ),
                entry(
                    "https://k/vlek/v1/Milan/crl",
                    Some(now - 600),
                    now,
                    now + 60,
                ),
                // No issue date: its age counts from the fetch.
                entry(
                    "https://k/vcek/v1/Milan/ab?blSPL=1",
                    None,
                    now - 50,
                    now + 99,
                ),
                entry(
                    "https://p/tdx/certification/v4/qe/identity",
                    Some(now - 10),
                    now,
                    now - 5,
                ),
            ],
            now,
        );
        for line in [
            "enclave_verifier_collateral_age_seconds{kind=\"snp_crl\",source=\"kds\"} 3600\n",
            "enclave_verifier_collateral_expiry_seconds{kind=\"snp_crl\",source=\"kds\"} 60\n",
            "enclave_verifier_collateral_age_seconds{kind=\"vcek\",source=\"kds\"} 50\n",
            "enclave_verifier_collateral_expiry_seconds{kind=\"tdx_qe_identity\",source=\"pcs\"} -5\n",
        ] {
            assert!(text.contains(line), "{line} not in {text}");
        }
    }
}
