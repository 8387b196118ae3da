//! The decision record: one JSON object per appraisal, accepted or denied
//! (nonce failures included), logged at `info` under target `decision`, so
//! that an operator can answer "why was this guest refused" and a log
//! shipper can route the records on their own.
//!
//! Fields: `request_id` (also the `x-request-id` response header, so a
//! guest's log line matches its record), `tee`, `chip_id` (SEV-SNP) or
//! `fmspc` (TDX) when known, `tcb`, `measurement`, `policy` {id, version,
//! digest}, `checks` [{check, result: pass|fail|skip}], `collateral`
//! {source, pieces, revocation_checked, age_secs}, `decision`
//! (accepted|denied), `denied_check`, `duration_ms`.
//!
//! What it never holds: the token, the nonce, keys, the enclave key's SPKI,
//! a client certificate, REPORT_DATA. Measurements, chip ids, FMSPCs and TCB
//! versions are public platform identifiers, not personal data.
//!
//! On a denial the platform fields are what the evidence states (parsed,
//! not verified): a refused report is still worth matching to its machine.
//!
//! `checks`: the appraisal stops at the first failure and the checks run in
//! a fixed order per TEE ([`appraisal::Check::ALL`]'s declaration order,
//! with the differences of snp.rs and tdx.rs applied in [`sequence`]), so
//! the list is that order for the evidence's TEE: `pass` before the failed
//! check, `fail` at it, `skip` after it. It is derived, not traced: the
//! appraisal does not report each check it runs, so a check the appraisal
//! makes in two places (SEV-SNP's product: from CPUID early, from the chain
//! later) is listed once, at its later place. On acceptance every
//! check passed, except those that did not apply: the CRL checks when the
//! claims say revocation was not checked, the VLEK check for a VCEK and the
//! VCEK's for a VLEK (`skip`). A denial by the service itself (nonce,
//! enclave key) lists that check alone: the appraisal did not run.

use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};
use wire::{EvidenceBundle, Tee};

/// The log target of decision records.
pub const TARGET: &str = "decision";

/// One check and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// Stable check name (`snp.measurement`).
    pub check: String,
    /// `pass`, `fail` or `skip`.
    pub result: &'static str,
}

/// The policy an appraisal ran against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PolicyRef {
    /// The policy file's `id`.
    pub id: String,
    /// The policy file's `version`.
    pub version: u64,
    /// SHA-256 of the policy file (the tokens' `policy_digest`).
    pub digest: String,
}

/// Where the collateral of an accepted appraisal came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollateralRef {
    /// `cache`, `kds` (AMD), `pcs` (Intel), `bundle`, `offline`, or `mixed`
    /// when the pieces came from several.
    pub source: String,
    /// Per piece (`vcek`, `crl`, `tcb_info`…), its source.
    pub pieces: Map<String, Value>,
    /// Whether a current CRL was checked.
    pub revocation_checked: bool,
    /// Seconds since the oldest changing document (CRL, TCB info, QE
    /// identity) in the verifier's cache for this evidence was issued; null
    /// when there is none (simulation, bundle-only collateral).
    pub age_secs: Option<u64>,
}

/// One appraisal's record.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Random, 16 bytes hex; also the response's `x-request-id`.
    pub request_id: String,
    /// The bundle's TEE type.
    pub tee: String,
    /// SEV-SNP CHIP_ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chip_id: Option<String>,
    /// TDX FMSPC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmspc: Option<String>,
    /// The TCB claim (accepted), or `{"reported_tcb": <8 bytes hex>}`
    /// (SEV-SNP denied).
    pub tcb: Value,
    /// The image identity, when known.
    pub measurement: Option<String>,
    /// The policy.
    pub policy: PolicyRef,
    /// Each check and its result (see the module documentation).
    pub checks: Vec<CheckResult>,
    /// The collateral (accepted appraisals only).
    pub collateral: Option<CollateralRef>,
    /// `accepted` or `denied`.
    pub decision: &'static str,
    /// The check that failed.
    pub denied_check: Option<String>,
    /// From the request's arrival at `attest` to the decision.
    pub duration_ms: u64,
}

/// A fresh request id: 16 random bytes, hex.
pub fn request_id() -> String {
    let mut id = [0u8; 16];
    // A failing system RNG leaves zeros: the id only correlates logs.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl Decision {
    /// A record for `bundle`'s appraisal, before its outcome is known.
    pub fn start(request_id: String, tee: &str, policy: PolicyRef) -> Decision {
        Decision {
            request_id,
            tee: tee.to_owned(),
            chip_id: None,
            fmspc: None,
            tcb: Value::Null,
            measurement: None,
            policy,
            checks: Vec::new(),
            collateral: None,
            decision: "denied",
            denied_check: None,
            duration_ms: 0,
        }
    }

    /// Accepted with `claims`.
    pub fn accepted(mut self, claims: &Map<String, Value>, started: Instant) -> Decision {
        let tee = self.tee.clone();
        let str_claim = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        self.measurement = str_claim("measurement");
        self.chip_id = str_claim("chip_id");
        self.tcb = claims.get("tcb").cloned().unwrap_or(Value::Null);
        self.fmspc = self
            .tcb
            .get("fmspc")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let coll = claims.get("collateral");
        let revocation_checked = coll
            .and_then(|c| c.get("revocation_checked"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let signer = str_claim("signer");
        self.checks = sequence(&tee)
            .into_iter()
            .map(|check| {
                let not_applicable = (!revocation_checked && is_crl_check(check))
                    || (signer.as_deref() == Some("vcek") && check == "snp.vlek.csp_id")
                    || (signer.as_deref() == Some("vlek") && check == "snp.vcek.chip_id");
                CheckResult {
                    check: check.to_owned(),
                    result: if not_applicable { "skip" } else { "pass" },
                }
            })
            .collect();
        self.collateral = coll.map(|c| collateral_ref(&tee, c, revocation_checked));
        self.decision = "accepted";
        self.duration_ms = elapsed_ms(started);
        self
    }

    /// The collateral's age (accepted appraisals: the record has no
    /// collateral otherwise).
    pub fn with_collateral_age(mut self, age_secs: Option<u64>) -> Decision {
        if let Some(c) = &mut self.collateral {
            c.age_secs = age_secs;
        }
        self
    }

    /// Denied at `check`. `appraised`: whether the appraisal ran (false for
    /// the service's own checks: nonce, enclave key).
    pub fn denied(
        mut self,
        bundle: &EvidenceBundle,
        check: &str,
        appraised: bool,
        started: Instant,
    ) -> Decision {
        self.stated_platform(bundle);
        self.checks = if appraised {
            let mut reached = true;
            sequence(&self.tee)
                .into_iter()
                .map(|c| {
                    let result = if c == check {
                        reached = false;
                        "fail"
                    } else if reached {
                        "pass"
                    } else {
                        "skip"
                    };
                    CheckResult {
                        check: c.to_owned(),
                        result,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        // A check outside the TEE's sequence (`snp.not_allowed`, a service
        // check) is still named as the failure.
        if !self.checks.iter().any(|c| c.result == "fail") {
            self.checks = vec![CheckResult {
                check: check.to_owned(),
                result: "fail",
            }];
        }
        self.denied_check = Some(check.to_owned());
        self.decision = "denied";
        self.duration_ms = elapsed_ms(started);
        self
    }

    /// What denied evidence says about its platform, unverified.
    fn stated_platform(&mut self, bundle: &EvidenceBundle) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        match bundle.tee {
            Tee::Snp | Tee::Sim => {
                if let Ok(r) = tee_formats::snp::AttestationReport::parse(&bundle.evidence) {
                    self.measurement = Some(hex(&r.measurement));
                    self.chip_id = Some(hex(&r.chip_id));
                    // The 8 bytes as in the report (the form `enclavectl`
                    // and the policy comments use): decoding the SPLs
                    // needs the product, which only the chain settles.
                    self.tcb = serde_json::json!({"reported_tcb": hex(&r.reported_tcb.to_bytes())});
                }
            }
            Tee::Tdx => {
                if let Ok(p) = appraisal::tdx_platform(&bundle.evidence) {
                    self.fmspc = Some(hex(&p.fmspc));
                }
            }
            Tee::AzureSnp | Tee::AzureTdx => {}
        }
    }

    /// Logs the record: one JSON object under target [`TARGET`].
    pub fn log(&self) {
        match serde_json::to_string(self) {
            Ok(json) => log::info!(target: TARGET, record = json.as_str(); "appraisal decision"),
            Err(e) => {
                log::warn!(target: TARGET, error = e.to_string().as_str(); "decision record not serialisable")
            }
        }
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn is_crl_check(name: &str) -> bool {
    name.starts_with("snp.crl.") || name == "tdx.crl"
}

/// The checks of `tee`'s appraisal, in the order they are made.
pub fn sequence(tee: &str) -> Vec<&'static str> {
    let names = appraisal::Check::ALL.iter().map(|c| c.as_str());
    let with = |prefixes: &[&str]| -> Vec<&'static str> {
        names
            .clone()
            .filter(|n| {
                prefixes.iter().any(|p| n.starts_with(p))
                    && !n.ends_with(".not_allowed")
                    && *n != "report_data"
            })
            .collect()
    };
    let mut seq = match tee {
        "snp" | "sim" => snp_order(with(&["snp.", "coco."])),
        "tdx" => tdx_order(with(&["tdx.", "coco."])),
        "azure-snp" | "azure-sim" => with(&["azure.", "snp."]),
        "azure-tdx" => with(&["azure.", "tdx."]),
        _ => Vec::new(),
    };
    // The session binding is checked last (Azure binds in `azure.user_data`).
    if matches!(tee, "snp" | "sim" | "tdx") {
        seq.push("report_data");
    }
    seq
}

/// Where snp.rs's order differs from the declaration order: the product
/// is settled after the chain and its validity/CRL, and a CoCo pod's
/// init-data is checked with the measurement.
fn snp_order(mut seq: Vec<&'static str>) -> Vec<&'static str> {
    move_after(&mut seq, "snp.product", "snp.crl.revoked");
    move_after(&mut seq, "coco.init_data", "snp.measurement");
    seq
}

/// tdx.rs parses the quote before it looks at any collateral.
fn tdx_order(mut seq: Vec<&'static str>) -> Vec<&'static str> {
    if let Some(i) = seq.iter().position(|c| *c == "tdx.quote.format") {
        let c = seq.remove(i);
        seq.insert(0, c);
    }
    seq
}

fn move_after(seq: &mut Vec<&'static str>, check: &'static str, after: &str) {
    if let Some(i) = seq.iter().position(|c| *c == check) {
        seq.remove(i);
        let at = seq
            .iter()
            .position(|c| *c == after)
            .map_or(seq.len(), |j| j + 1);
        seq.insert(at, check);
    }
}

fn collateral_ref(tee: &str, c: &Value, revocation_checked: bool) -> CollateralRef {
    let fetched = if tee.contains("tdx") { "pcs" } else { "kds" };
    let pieces: Map<String, Value> = c
        .get("sources")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let s = match v.as_str() {
                        Some("fetched") => fetched,
                        Some(other) => other,
                        None => "unknown",
                    };
                    (k.clone(), Value::String(s.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut sources: Vec<&str> = pieces.values().filter_map(Value::as_str).collect();
    sources.sort_unstable();
    sources.dedup();
    let source = match sources.as_slice() {
        [] => "none".to_owned(),
        [one] => (*one).to_owned(),
        _ => "mixed".to_owned(),
    };
    CollateralRef {
        source,
        pieces,
        revocation_checked,
        age_secs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snp_sequence_runs_from_the_report_to_the_binding() {
        let seq = sequence("sim");
        assert_eq!(seq.first(), Some(&"snp.report.format"));
        assert_eq!(seq.last(), Some(&"report_data"));
        assert!(seq.contains(&"snp.measurement"));
        let at = |c: &str| seq.iter().position(|x| *x == c).unwrap();
        // snp.rs: chain, validity and CRL, then the product; the pod's
        // init-data with the measurement.
        assert!(at("snp.crl.revoked") < at("snp.product"));
        assert_eq!(at("snp.product") + 1, at("snp.vcek.tcb"));
        assert_eq!(at("snp.measurement") + 1, at("coco.init_data"));
        assert_eq!(sequence("tdx")[0], "tdx.quote.format");
        assert!(!seq.iter().any(|c| c.starts_with("tdx.")));
        assert!(sequence("unknown").is_empty());
    }

    #[test]
    fn an_acceptance_names_its_collateral_sources_and_age() {
        let claims = serde_json::json!({
            "measurement": "ab", "chip_id": "cd", "signer": "vcek",
            "tcb": {"snp": 24},
            "collateral": {"sources": {"vcek": "cache", "crl": "fetched"}, "revocation_checked": false},
        });
        let d = Decision::start("id".into(), "snp", PolicyRef::default())
            .accepted(claims.as_object().unwrap(), Instant::now())
            .with_collateral_age(Some(3600));
        let c = d.collateral.as_ref().unwrap();
        assert_eq!(c.source, "mixed");
        assert_eq!(c.pieces["crl"], "kds");
        assert_eq!(c.age_secs, Some(3600));
        let result = |name: &str| d.checks.iter().find(|c| c.check == name).unwrap().result;
        // Revocation not checked: the CRL checks did not apply.
        assert_eq!(result("snp.crl.revoked"), "skip");
        assert_eq!(result("snp.vlek.csp_id"), "skip");
        assert_eq!(result("snp.vcek.chip_id"), "pass");
        assert_eq!(
            (d.decision, d.measurement.as_deref()),
            ("accepted", Some("ab"))
        );
    }

    #[test]
    fn a_denial_passes_the_checks_before_and_skips_those_after() {
        let bundle = EvidenceBundle::new(Tee::Sim, "test", vec![0u8; 3]);
        let d = Decision::start("id".into(), "sim", PolicyRef::default()).denied(
            &bundle,
            "snp.measurement",
            true,
            Instant::now(),
        );
        let result = |name: &str| d.checks.iter().find(|c| c.check == name).unwrap().result;
        assert_eq!(result("snp.signature"), "pass");
        assert_eq!(result("snp.measurement"), "fail");
        assert_eq!(result("report_data"), "skip");
        assert_eq!(d.checks.iter().filter(|c| c.result == "fail").count(), 1);
        // Unparseable evidence states no platform.
        assert_eq!(d.measurement, None);
        let d = Decision::start("id".into(), "sim", PolicyRef::default()).denied(
            &bundle,
            "nonce.replayed",
            false,
            Instant::now(),
        );
        assert_eq!(
            d.checks,
            vec![CheckResult {
                check: "nonce.replayed".into(),
                result: "fail"
            }]
        );
    }
}
