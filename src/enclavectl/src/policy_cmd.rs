//! `enclavectl policy check POLICY`: which guests a policy change would
//! deny, before it is applied. The verifier keeps the last accepted
//! evidence of each platform in its collateral cache directory, with the
//! collateral it was appraised with folded in (crate `collateral`, module
//! `store`); this re-appraises each record against the candidate policy,
//! offline, at the time it was seen (or `--now`), so that only the policy
//! differs. REPORT_DATA is not checked (no session).
//!
//! Output: one JSON object per platform (`verdict` accepted/denied, the
//! denial), then a summary. Exit status: 0 nobody denied, 1 some denied,
//! 2 usage (unreadable or invalid policy, no records).

use std::path::PathBuf;
use std::process::ExitCode;

use appraisal::{Appraiser, Collateral, Policy};
use clap::Subcommand;
use collateral::store::Store;
use serde_json::json;

use crate::CmdResult;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Re-appraise the last accepted evidence of every platform against POLICY: whom would it deny?
    Check {
        /// The candidate policy (TOML).
        policy: PathBuf,
        /// The verifier's collateral cache directory (holds the evidence records).
        #[arg(long, value_name = "DIR")]
        collateral_cache: PathBuf,
        /// Appraise at this time (RFC 3339 or Unix seconds) instead of when each was seen.
        #[arg(long)]
        now: Option<String>,
    },
}

pub fn run(c: PolicyCommand) -> CmdResult {
    let PolicyCommand::Check {
        policy,
        collateral_cache,
        now,
    } = c;
    let usage = |e: String| {
        eprintln!("enclavectl policy check: {e}");
        Ok(ExitCode::from(2))
    };
    let bytes = match std::fs::read(&policy) {
        Ok(b) => b,
        Err(e) => return usage(format!("{}: {e}", policy.display())),
    };
    let p = match Policy::from_toml(&bytes) {
        Ok(p) => p,
        Err(e) => {
            let cause = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            return usage(format!("policy {}: {e}{cause}", policy.display()));
        }
    };
    let at = match now
        .as_deref()
        .map(|t| crate::collateral_cmd::now(Some(t)))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let store = match Store::open(&collateral_cache) {
        Ok(s) => s,
        Err(e) => return usage(e.to_string()),
    };
    let records = store.list();
    if records.is_empty() {
        return usage(format!(
            "no evidence records in {} (the verifier keeps them with --collateral-cache)",
            collateral_cache.display()
        ));
    }
    let appraiser = Appraiser::new()?;
    let (mut accepted, mut denied) = (0, 0);
    for r in &records {
        let when = at.unwrap_or(r.seen_at);
        let verdict = serde_json::to_vec(&r.bundle)
            .map_err(|e| e.to_string())
            .and_then(|b| wire::EvidenceBundle::from_json(&b).map_err(|e| e.to_string()))
            .map(|b| appraiser.appraise(&b, &p, when, None, &Collateral::none()));
        let line = match verdict {
            Ok(Ok(_)) => {
                accepted += 1;
                json!({"platform": r.platform, "tee": r.tee, "seen_at": wire::time::rfc3339(r.seen_at), "verdict": "accepted"})
            }
            Ok(Err(d)) => {
                denied += 1;
                json!({"platform": r.platform, "tee": r.tee, "seen_at": wire::time::rfc3339(r.seen_at), "verdict": "denied", "denial": wire::verifier::Denial::from(d)})
            }
            Err(e) => {
                denied += 1;
                json!({"platform": r.platform, "tee": r.tee, "verdict": "unreadable", "error": e})
            }
        };
        println!("{line}");
    }
    println!(
        "{}",
        json!({"platforms": records.len(), "accepted": accepted, "denied": denied})
    );
    Ok(if denied == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
