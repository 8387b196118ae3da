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
//! `checks`: the appraisal's own trace ([`appraisal::Trace`]), each check in
//! the order it ran: `pass`, `skip` with its `reason` (a check that did not
//! apply: CRL checks without a CRL under `snp.crl = "if-present"`, the VLEK's
//! check for a VCEK, a CoCo pod's init-data for an appliance image…), and on
//! a denial `fail` at the failed check, which is the last entry: nothing
//! after it ran. Checks that a library makes in one call (dcap-qvl's
//! collateral, PCK chain, QE and quote signature) are listed as passed when
//! it accepts; when it refuses, only the check it failed is known. A denial
//! by the service itself (nonce, enclave key), or by an appraiser that does
//! not trace, lists the failed check alone; an acceptance by such an
//! appraiser lists none.

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
    /// Why a skipped check did not apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// The record's `checks` from an appraisal's trace.
pub fn checks_of(trace: &appraisal::Trace) -> Vec<CheckResult> {
    trace
        .steps()
        .iter()
        .map(|(check, outcome)| CheckResult {
            check: check.as_str().to_owned(),
            result: outcome.as_str(),
            reason: match outcome {
                appraisal::Outcome::Skip(why) => Some(why),
                _ => None,
            },
        })
        .collect()
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

    /// Accepted with `claims`, after `checks` (the appraisal's trace).
    pub fn accepted(
        mut self,
        claims: &Map<String, Value>,
        checks: Option<Vec<CheckResult>>,
        started: Instant,
    ) -> Decision {
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
        self.checks = checks.unwrap_or_default();
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

    /// Denied at `check`, after `checks` (the appraisal's trace; `None`
    /// for the service's own checks, nonce and enclave key, where the
    /// appraisal did not run).
    pub fn denied(
        mut self,
        bundle: &EvidenceBundle,
        check: &str,
        checks: Option<Vec<CheckResult>>,
        started: Instant,
    ) -> Decision {
        self.stated_platform(bundle);
        self.checks = checks.unwrap_or_default();
        // Without a trace (or one that does not end at it), the failure is
        // still named.
        let ends_at_it = self
            .checks
            .last()
            .is_some_and(|c| c.check == check && c.result == "fail");
        if !ends_at_it {
            self.checks = vec![CheckResult {
                check: check.to_owned(),
                result: "fail",
                reason: None,
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
            Tee::Nitro => {
                // The document's own PCRs, as the accepted claims' would be
                // (SHA-384(PCR0 ‖ PCR1 ‖ PCR2)); not its module id, which
                // names the EC2 instance.
                if let Ok(d) = tee_formats::nitro::Document::parse(&bundle.evidence) {
                    if let (Some(p0), Some(p1), Some(p2)) =
                        (d.doc.pcr(0), d.doc.pcr(1), d.doc.pcr(2))
                    {
                        self.measurement = Some(hex(&appraisal::nitro::measurement(p0, p1, p2)));
                    }
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

    // Built from a name, not a literal in a `check` field: the service's check
    // names are read from its sources (lib.rs `service_checks_are_the_ones_produced`).
    fn row(name: &str, result: &'static str, reason: Option<&'static str>) -> CheckResult {
        CheckResult {
            check: name.to_owned(),
            result,
            reason,
        }
    }

    #[test]
    fn an_acceptance_names_its_collateral_sources_and_age() {
        let claims = serde_json::json!({
            "measurement": "ab", "chip_id": "cd", "signer": "vcek",
            "tcb": {"snp": 24},
            "collateral": {"sources": {"vcek": "cache", "crl": "fetched"}, "revocation_checked": false},
        });
        let checks = vec![
            row("snp.signature", "pass", None),
            row("snp.crl.revoked", "skip", Some("no CRL")),
        ];
        let d = Decision::start("id".into(), "snp", PolicyRef::default())
            .accepted(
                claims.as_object().unwrap(),
                Some(checks.clone()),
                Instant::now(),
            )
            .with_collateral_age(Some(3600));
        let c = d.collateral.as_ref().unwrap();
        assert_eq!(c.source, "mixed");
        assert_eq!(c.pieces["crl"], "kds");
        assert_eq!(c.age_secs, Some(3600));
        // The appraisal's checks, as given.
        assert_eq!(d.checks, checks);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["checks"][1]["reason"], "no CRL");
        assert!(json["checks"][0].get("reason").is_none());
        assert_eq!(
            (d.decision, d.measurement.as_deref()),
            ("accepted", Some("ab"))
        );
    }

    #[test]
    fn a_denial_without_a_trace_ending_at_it_names_the_failed_check_alone() {
        let bundle = EvidenceBundle::new(Tee::Sim, "test", vec![0u8; 3]);
        let traced = vec![
            row("snp.signature", "pass", None),
            row("snp.measurement", "fail", None),
        ];
        let d = Decision::start("id".into(), "sim", PolicyRef::default()).denied(
            &bundle,
            "snp.measurement",
            Some(traced.clone()),
            Instant::now(),
        );
        assert_eq!(d.checks, traced);
        // Unparseable evidence states no platform.
        assert_eq!(d.measurement, None);
        let d = Decision::start("id".into(), "sim", PolicyRef::default()).denied(
            &bundle,
            "nonce.replayed",
            None,
            Instant::now(),
        );
        assert_eq!(d.checks, vec![row("nonce.replayed", "fail", None)]);
    }
}
