//! TDX appraisal: our own checks of the quote and its collateral first
//! (`tdx_precheck`: form, trailing bytes, CRL windows to the second, the
//! collateral's signing chains and signatures, the quote's PCK chain against
//! the collateral's, the QE report signature), then DCAP quote verification
//! by dcap-qvl (pure Rust) against the pinned Intel SGX Root CA, then this
//! policy's checks on the TCB verdict and the TD report body.
//!
//! dcap-qvl does (`tee-formats.md` §3.4): the header, TCB info and QE
//! identity signatures, chains and freshness, both CRLs, the PCK chain,
//! the QE report signature, binding and identity, the quote signature, the
//! TCB level match with the TDX module identity, status convergence
//! (`Revoked` is always refused) and the TD attribute sanity checks
//! (reserved bits, MIGRATABLE, SERVTD_EXT, SEPT_VE_DISABLE, MRSERVICETD).
//! Its errors are `anyhow` chains; [`classify`] maps each to the check it
//! belongs to, in our words: its text goes to the verifier's log, never
//! into a denial.
//!
//! dcap-qvl is told to let debuggable TDs through (`allow_debug(true)`) so
//! that a debug TD is denied here, by `tdx.debug`, after its signatures
//! are known to be good: the denial then says precisely why.
//!
//! Collateral is mandatory: without it there is no TCB status at all
//! (go-tdx-guest's default; `attestation-landscape.md` §1.6). Each piece
//! comes from the verifier ([`Collateral`]) unless the bundle's is strictly
//! newer and verifies ([`crate::collateral`]).
//!
//! Which image booted (MRTD, the RTMRs, the event log, the OS component pins
//! and CoCo pods) is decided in `tdx_image`, after the TD attributes.

use std::collections::BTreeMap;

use dcap_qvl::configs::RustCryptoConfig;
use dcap_qvl::quote::Report;
use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::{QuoteClaims, QuoteCollateralV3, QuotePolicy};
use tee_formats::tdx::quote::ReceivedQuote;
use wire::EvidenceBundle;

use crate::claims::{Claims, PolicyFlags, Tcb, TdxPolicyFlags, TdxTcb, TdxTcbComponents};
use crate::collateral::{Collateral, CollateralClaims, Source};
use crate::denial::{deny, Check, Denial};
use crate::hex::{self, Hex};
use crate::policy::{Policy, TdxPolicy};
use crate::roots::Roots;
use crate::tdx_image::{self, Image, Profile, TdMeasurements};
use crate::tdx_precheck::{self, Set};
use crate::trace::Trace;

/// TEE type of a TDX quote.
const TEE_TYPE_TDX: u32 = 0x81;

/// Appraises a TDX quote.
pub(crate) fn appraise(
    roots: &Roots,
    bundle: &EvidenceBundle,
    policy: &Policy,
    now: i64,
    expected_report_data: Option<&[u8; 64]>,
    collateral: &Collateral,
    t: &mut Trace,
) -> Result<Claims, Denial> {
    use Check::*;
    let p = &policy.tdx;
    let quote = t.step(
        &[TdxQuoteFormat],
        tdx_precheck::parse_quote(&bundle.evidence),
    )?;
    // Before any collateral or chain work: a forged quote costs one ECDSA
    // verification. Trusted only once the chains below verify.
    t.step(&[TdxSignature], tdx_precheck::quote_signature(&quote))?;
    // Recorded as `tdx.collateral` when it fails; it passes with the
    // verification below.
    let host = t.step(&[], host_collateral(bundle, collateral))?;
    let newest = t.step(
        &[TdxCollateralMissing],
        merge(host.as_ref(), collateral, Prefer::Newest).map_err(|d| add_problems(d, collateral)),
    )?;
    let theirs_first = t.step(
        &[],
        merge(host.as_ref(), collateral, Prefer::Verifier).map_err(|d| add_problems(d, collateral)),
    )?;
    let (verified, used) = match verify(roots, &quote, &newest, now) {
        Ok(v) => (t.group(VERIFY_CHECKS, Ok(v))?, newest),
        // A newer host piece that does not verify is ignored: appraise the
        // verifier's own pieces instead.
        Err(d) if newest.sources != theirs_first.sources && is_collateral_check(d.check) => {
            log::info!(
                "host-supplied TDX collateral refused ({}); appraising the verifier's own",
                d.check
            );
            let v = t.group(VERIFY_CHECKS, verify(roots, &quote, &theirs_first, now))?;
            (v, theirs_first)
        }
        Err(d) => return t.group(VERIFY_CHECKS, Err(d)),
    };
    // A re-check of the quote's form: recorded only if it fails.
    let td = t.step(&[], td_report(&verified))?;
    t.step(&[TdxTcbStatus], check_tcb_status(&verified, p))?;
    t.step(&[TdxAdvisory], check_advisories(&verified, p))?;
    t.step(
        &[TdxTcbEvaluationDataNumber],
        check_tcb_evaluation_data_number(&verified, p),
    )?;
    t.step(&[TdxQeSvn, TdxPceSvn], check_qe_pce_svn(&verified, p))?;
    t.step(&[TdxPiid], check_piid(&verified, p))?;
    t.step(&[TdxDebug], check_debug(td, p))?;
    t.step(&[TdxXfam], check_xfam(td, p))?;
    t.step(&[TdxMrSeam], check_mr_seam(td, p))?;
    let image = tdx_image::appraise(
        &TdMeasurements {
            mr_td: td.mr_td,
            rtmr: [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3],
            mr_config_id: td.mr_config_id,
        },
        bundle.event_log.as_deref(),
        policy,
        t,
    )?;
    let exact_checks = [
        (
            TdxMrConfigId,
            "MRCONFIGID",
            &td.mr_config_id,
            &p.mr_config_id,
        ),
        (TdxMrOwner, "MROWNER", &td.mr_owner, &p.mr_owner),
        (
            TdxMrOwnerConfig,
            "MROWNERCONFIG",
            &td.mr_owner_config,
            &p.mr_owner_config,
        ),
    ];
    for (check, name, got, want) in exact_checks {
        t.step(&[check], check_exact(check, name, got, want))?;
    }
    crate::check_report_data_traced(t, &td.report_data, expected_report_data)?;
    let current = current_tcb_date(&used.set.tcb_info);
    let collateral = CollateralClaims {
        sources: used.sources,
        revocation_checked: true,
    };
    Ok(claims(&verified, td, policy, &image, collateral, current))
}

/// What the collateral checks (`tdx_precheck`) and dcap-qvl verify when
/// they accept a quote, in the precheck's order; done in calls whose
/// internal order the trace does not see ([`Trace::group`]).
const VERIFY_CHECKS: &[Check] = &[
    Check::TdxCrl,
    Check::TdxCollateral,
    Check::TdxCollateralExpired,
    Check::TdxCollateralChain,
    Check::TdxCollateralSignature,
    Check::TdxPckChain,
    Check::TdxQeReport,
    Check::TdxQe,
    Check::TdxTcbLevel,
    Check::TdxModuleIdentity,
    Check::TdxTdAttributes,
];

fn add_problems(mut d: Denial, c: &Collateral) -> Denial {
    d.got.push_str(&c.problems_suffix());
    d
}

fn is_collateral_check(c: Check) -> bool {
    matches!(
        c,
        Check::TdxCollateral
            | Check::TdxCollateralExpired
            | Check::TdxCollateralSignature
            | Check::TdxCollateralChain
            | Check::TdxCrl
            | Check::TdxPckChain
    )
}

/// The bundle's collateral, if any. Malformed host collateral is a denial
/// only when the verifier has no complete set of its own.
fn host_collateral(
    bundle: &EvidenceBundle,
    collateral: &Collateral,
) -> Result<Option<QuoteCollateralV3>, Denial> {
    let Some(value) = bundle.tdx_collateral.as_ref() else {
        return Ok(None);
    };
    match serde_json::from_value::<QuoteCollateralV3>(value.clone()) {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            let t = &collateral.tdx;
            if t.tcb_info.is_some()
                && t.qe_identity.is_some()
                && t.pck_crl.is_some()
                && t.root_ca_crl.is_some()
            {
                log::info!(
                    "malformed host-supplied TDX collateral ignored: the verifier has its own"
                );
                Ok(None)
            } else {
                Err(Denial::new(
                    Check::TdxCollateral,
                    format!("the bundle's tdx_collateral is not QuoteCollateralV3 JSON ({e})"),
                    "TCB info, QE identity, PCK and root CA CRLs with their issuer chains",
                    "attach the collateral unmodified, or let the verifier fetch it (--pcs-url, or --collateral-offline)",
                ))
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prefer {
    /// The host's piece where it is strictly newer.
    Newest,
    /// The verifier's piece wherever it has one.
    Verifier,
}

/// A complete collateral set and where each piece came from.
struct Chosen {
    set: QuoteCollateralV3,
    sources: BTreeMap<&'static str, Source>,
}

/// `(tcbEvaluationDataNumber, issueDate)` of a TCB info / QE identity.
fn json_age(json: &str) -> (u32, i64) {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Age {
        #[serde(default)]
        tcb_evaluation_data_number: u32,
        #[serde(default)]
        issue_date: String,
    }
    serde_json::from_str::<Age>(json).map_or((0, i64::MIN), |a| {
        (
            a.tcb_evaluation_data_number,
            crate::x509::parse_rfc3339(&a.issue_date).unwrap_or(i64::MIN),
        )
    })
}

/// thisUpdate of a CRL (`i64::MIN` if it does not parse).
fn crl_age(der: &[u8]) -> i64 {
    <x509_cert::crl::CertificateList as der::Decode>::from_der(der).map_or(i64::MIN, |c| {
        i64::try_from(c.tbs_cert_list.this_update.to_unix_duration().as_secs()).unwrap_or(i64::MIN)
    })
}

/// One piece: the verifier's, the host's, or the host's when newer.
fn pick<T>(
    name: &'static str,
    mine: Option<(T, Source)>,
    host: Option<T>,
    newer: impl Fn(&T, &T) -> bool,
    prefer: Prefer,
    sources: &mut BTreeMap<&'static str, Source>,
) -> Result<T, &'static str> {
    let (v, s) = match (mine, host) {
        (Some((m, _)), Some(h)) if prefer == Prefer::Newest && newer(&h, &m) => (h, Source::Bundle),
        (Some((m, s)), _) => (m, s),
        (None, Some(h)) => (h, Source::Bundle),
        (None, None) => return Err(name),
    };
    sources.insert(name, s);
    Ok(v)
}

fn merge(
    host: Option<&QuoteCollateralV3>,
    collateral: &Collateral,
    prefer: Prefer,
) -> Result<Chosen, Denial> {
    let t = &collateral.tdx;
    let mut sources = BTreeMap::new();
    let missing = |name: &str| {
        Denial::new(
            Check::TdxCollateralMissing,
            format!("no {name}: the verifier has none and the bundle carries none"),
            "TCB info, QE identity, PCK and root CA CRLs for the quote's platform",
            "let the verifier fetch them (--pcs-url; reachable, or its cache warm), give it an offline directory (--collateral-offline), or have the host attach them",
        )
    };
    let tcb = pick(
        "tcb_info",
        t.tcb_info.as_ref().map(|p| {
            (
                (
                    p.value.json.clone(),
                    p.value.signature.clone(),
                    p.value.issuer_chain.clone(),
                ),
                p.source,
            )
        }),
        host.map(|h| {
            (
                h.tcb_info.clone(),
                h.tcb_info_signature.clone(),
                h.tcb_info_issuer_chain.clone(),
            )
        }),
        |a, b| json_age(&a.0) > json_age(&b.0),
        prefer,
        &mut sources,
    )
    .map_err(missing)?;
    let qe = pick(
        "qe_identity",
        t.qe_identity.as_ref().map(|p| {
            (
                (
                    p.value.json.clone(),
                    p.value.signature.clone(),
                    p.value.issuer_chain.clone(),
                ),
                p.source,
            )
        }),
        host.map(|h| {
            (
                h.qe_identity.clone(),
                h.qe_identity_signature.clone(),
                h.qe_identity_issuer_chain.clone(),
            )
        }),
        |a, b| json_age(&a.0) > json_age(&b.0),
        prefer,
        &mut sources,
    )
    .map_err(missing)?;
    let pck = pick(
        "pck_crl",
        t.pck_crl.as_ref().map(|p| {
            (
                (p.value.der.clone(), p.value.issuer_chain.clone()),
                p.source,
            )
        }),
        host.map(|h| (h.pck_crl.clone(), h.pck_crl_issuer_chain.clone())),
        |a, b| crl_age(&a.0) > crl_age(&b.0),
        prefer,
        &mut sources,
    )
    .map_err(missing)?;
    let root = pick(
        "root_ca_crl",
        t.root_ca_crl.as_ref().map(|p| (p.value.clone(), p.source)),
        host.map(|h| h.root_ca_crl.clone()),
        |a, b| crl_age(a) > crl_age(b),
        prefer,
        &mut sources,
    )
    .map_err(missing)?;
    Ok(Chosen {
        set: QuoteCollateralV3 {
            pck_crl_issuer_chain: pck.1,
            root_ca_crl: root,
            pck_crl: pck.0,
            tcb_info_issuer_chain: tcb.2,
            tcb_info: tcb.0,
            tcb_info_signature: tcb.1,
            qe_identity_issuer_chain: qe.2,
            qe_identity: qe.0,
            qe_identity_signature: qe.1,
            pck_certificate_chain: None,
        },
        sources,
    })
}

fn verify(
    roots: &Roots,
    quote: &ReceivedQuote,
    chosen: &Chosen,
    now: i64,
) -> Result<QuoteClaims, Denial> {
    let c = &chosen.set;
    let set = Set {
        tcb_info: &c.tcb_info,
        tcb_info_signature: &c.tcb_info_signature,
        tcb_info_issuer_chain: &c.tcb_info_issuer_chain,
        qe_identity: &c.qe_identity,
        qe_identity_signature: &c.qe_identity_signature,
        qe_identity_issuer_chain: &c.qe_identity_issuer_chain,
        pck_crl: &c.pck_crl,
        pck_crl_issuer_chain: &c.pck_crl_issuer_chain,
        root_ca_crl: &c.root_ca_crl,
    };
    tdx_precheck::check(roots.intel_root, quote, &set, now)?;
    verify_quote(roots, quote.meaningful_bytes(), c.clone(), now)
}

fn verify_quote(
    roots: &Roots,
    quote: &[u8],
    collateral: QuoteCollateralV3,
    now: i64,
) -> Result<QuoteClaims, Denial> {
    let now = u64::try_from(now).map_err(|_| {
        Denial::new(
            Check::TdxCollateralExpired,
            format!("verifier time {now}"),
            "a time after 1970",
            "set the verifier's time",
        )
    })?;
    QuoteVerifier::<RustCryptoConfig>::new_with_config(roots.intel_root.to_vec())
        .allow_debug(true)
        .verify_with_policy(quote, collateral, now, &QuotePolicy::claims_only(now))
        .map_err(|e| {
            let detail = format!("{e:#}");
            let d = classify(&detail);
            log::warn!("dcap-qvl refused the quote ({}): {detail}", d.check);
            d
        })
}

/// Maps a dcap-qvl error (its full `{:#}` chain) to the check it belongs to
/// and our own description of it. The library's text stays in the log.
fn classify(msg: &str) -> Denial {
    let m = msg.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    let (check, got, want, hint): (Check, &str, &str, &str) = if has(&["no matching tcb level"]) {
        (Check::TdxTcbLevel, "the platform's TCB (CPU SVN components, PCE SVN, TDX module SVN) is below every level of the TCB info", "a TCB level of the TCB info that the platform meets", "update the host (microcode, TDX module); if it is current, the TCB info may be for another platform")
    } else if has(&["tcb status is invalid: revoked", "unrecognized tcb status"]) {
        (
            Check::TdxTcbStatus,
            "the platform's TCB level is Revoked",
            "a non-revoked TCB status",
            "the platform's TCB is revoked: it cannot be trusted until updated",
        )
    } else if has(&["certrevoked", "revoked"]) {
        (
            Check::TdxCrl,
            "a certificate of the chain is on Intel's CRL",
            "no certificate of the chains revoked",
            "the platform's PCK (or a CA) is revoked: do not trust it",
        )
    } else if has(&["crlexpired", "crl expired"]) {
        (Check::TdxCrl, "a CRL is not current at the verifier's time", "current PCK and root CA CRLs", "refresh the collateral (enclavectl collateral fetch) or let the verifier reach Intel PCS (--pcs-url)")
    } else if has(&["crl"]) {
        (
            Check::TdxCrl,
            "a CRL is malformed, not signed by its issuer, or does not cover the chain",
            "PCK and root CA CRLs signed by Intel, covering the chains",
            "fetch the collateral again from Intel PCS",
        )
    } else if has(&["unknownrevocationstatus", "unknown revocation status"]) {
        (
            Check::TdxCrl,
            "no CRL covers a certificate of the chain",
            "CRLs from the CAs of the chains",
            "fetch the PCK CRL of the quote's CA (ca=platform or ca=processor)",
        )
    } else if has(&[
        "tcbinfo expired",
        "qe identity expired",
        "issue date is in the future",
    ]) {
        (Check::TdxCollateralExpired, "the TCB info or QE identity is not current at the verifier's time", "collateral current at the verifier's time", "refresh the collateral (enclavectl collateral fetch) or let the verifier reach Intel PCS (--pcs-url)")
    } else if has(&[
        "signature is invalid for tcb_info",
        "signature is invalid for qe_identity",
    ]) {
        (
            Check::TdxCollateralSignature,
            "the TCB info or QE identity signature does not verify",
            "TCB info and QE identity signed by Intel",
            "the collateral was altered: fetch it again",
        )
    } else if has(&[
        "tcb info signer",
        "qe identity signer",
        "chain is too short for tcb",
        "chain is too short for qe",
    ]) {
        (
            Check::TdxCollateralChain,
            "the TCB info or QE identity signing chain does not lead to the pinned Intel root",
            "a signing certificate issued by the Intel SGX Root CA",
            "fetch the collateral from Intel PCS or a PCCS you trust",
        )
    } else if has(&["fmspc mismatch"]) {
        (
            Check::TdxCollateral,
            "the TCB info is for another platform (FMSPC)",
            "the TCB info of the quote's FMSPC",
            "fetch the TCB info for this platform's FMSPC",
        )
    } else if has(&[
        "non-tdx tcb info",
        "qe identity id/version",
        "failed to decode tcbinfo",
        "failed to decode qeidentity",
        "tdx tcb info is missing",
    ]) {
        (
            Check::TdxCollateral,
            "the collateral is not TDX collateral, or does not parse",
            "TDX TCB info (id TDX, version 3) and TD_QE identity",
            "fetch the TDX collateral (PCS /tdx/certification/v4/…)",
        )
    } else if has(&[
        "failed to decode quote",
        "unsupported dcap quote version",
        "unknown qe vendor",
        "unsupported tee type",
        "must have version",
        "attestation key type",
        "invalid body size",
        "pck cert format",
    ]) {
        (
            Check::TdxQuoteFormat,
            "the quote's header or layout is not a supported TDX quote",
            "a TDX quote v4/v5 from Intel's QE, ECDSA P-256",
            "send the quote exactly as the QE produced it",
        )
    } else if has(&["signature is invalid for qe_report"]) {
        (
            Check::TdxQeReport,
            "the QE report signature does not verify with the PCK key",
            "a QE report signed by the platform's PCK key",
            "the quote was altered after the quoting enclave signed it",
        )
    } else if has(&["qe report hash", "qe auth data"]) {
        (
            Check::TdxQe,
            "the QE report does not bind the attestation key",
            "QE REPORTDATA = SHA-256(attestation key ‖ QE auth data)",
            "the quote was altered after signing",
        )
    } else if has(&[
        "qe mrsigner",
        "qe isvprodid",
        "qe miscselect",
        "qe attributes",
        "qe isvsvn",
        "qe report",
        "no tcb levels found in qe",
    ]) {
        (
            Check::TdxQe,
            "the quoting enclave does not match Intel's QE identity",
            "Intel's TD quoting enclave, at a listed TCB level",
            "update the host's quoting enclave (DCAP)",
        )
    } else if has(&["isv enclave report signature"]) {
        (
            Check::TdxSignature,
            "the quote signature does not verify with the attestation key",
            "a quote signed by the QE's attestation key",
            "the quote was altered after signing",
        )
    } else if has(&["pck", "unknownissuer", "badsignature", "certificate"]) {
        (
            Check::TdxPckChain,
            "the PCK chain does not verify to the pinned Intel SGX Root CA",
            "a PCK chain to the pinned Intel SGX Root CA",
            "the quote's PCK certificate is not Intel's",
        )
    } else if has(&["tdx module"]) {
        (
            Check::TdxModuleIdentity,
            "the TDX module's signer or attributes are not one Intel's TCB info lists",
            "a TDX module listed in the TCB info",
            "the host runs a TDX module Intel does not list for this platform",
        )
    } else if has(&[
        "debug mode",
        "td profiling",
        "td attributes",
        "td migration",
        "servtd_ext",
        "sept_ve_disable",
        "mr service td",
        "reserved bits",
    ]) {
        (Check::TdxTdAttributes, "the TD attributes are not acceptable (reserved bits, migration, a service TD, or SEPT_VE_DISABLE off)", "TD attributes: reserved clear, not migratable, no service TD, SEPT_VE_DISABLE set", "launch the TD with the expected attributes")
    } else {
        (Check::TdxQuote, "the quote verification refused the quote for a reason this verifier does not classify (details in the verifier's log)", "a quote that verifies against Intel's collateral", "look up the verifier's log line 'dcap-qvl refused the quote' for this request")
    };
    Denial::new(check, got, want, hint)
}

fn td_report(v: &QuoteClaims) -> Result<&dcap_qvl::quote::TDReport10, Denial> {
    match (&v.report, v.tee_type) {
        (Report::TD10(r), TEE_TYPE_TDX) => Ok(r),
        (Report::TD15(r), TEE_TYPE_TDX) => Ok(&r.base),
        (Report::TD15Ex(r), TEE_TYPE_TDX) => Ok(&r.base.base),
        _ => deny(
            Check::TdxQuoteFormat,
            format!("TEE type {:#x}, not a TD report", v.tee_type),
            "a TDX quote (TEE type 0x81)",
            "this is an SGX quote",
        ),
    }
}

fn check_tcb_status(v: &QuoteClaims, p: &TdxPolicy) -> Result<(), Denial> {
    let status = v.tcb.status.to_string();
    if !p.tcb_statuses.contains(&status) {
        return deny(
            Check::TdxTcbStatus,
            format!("{status} (advisories {:?})", v.tcb.advisory_ids),
            format!("one of {:?} (policy tdx.tcb_statuses)", p.tcb_statuses),
            "update the platform (microcode, TDX module, QE), or accept this status explicitly",
        );
    }
    Ok(())
}

fn check_advisories(v: &QuoteClaims, p: &TdxPolicy) -> Result<(), Denial> {
    if let Some(a) = v
        .tcb
        .advisory_ids
        .iter()
        .find(|a| !p.advisory_ids.contains(a))
    {
        return deny(
            Check::TdxAdvisory,
            a.clone(),
            format!("one of {:?} (policy tdx.advisory_ids)", p.advisory_ids),
            "read the advisory; accept it explicitly or update the platform",
        );
    }
    Ok(())
}

fn check_tcb_evaluation_data_number(v: &QuoteClaims, p: &TdxPolicy) -> Result<(), Denial> {
    if v.tcb.eval_data_number < p.min_tcb_evaluation_data_number {
        return deny(
            Check::TdxTcbEvaluationDataNumber,
            v.tcb.eval_data_number.to_string(),
            format!(
                ">= {} (policy tdx.min_tcb_evaluation_data_number)",
                p.min_tcb_evaluation_data_number
            ),
            "fetch current collateral: this one predates a TCB recovery",
        );
    }
    Ok(())
}

fn check_qe_pce_svn(v: &QuoteClaims, p: &TdxPolicy) -> Result<(), Denial> {
    let qe = v.qe.report.isv_svn;
    if qe < p.min_qe_svn {
        return deny(
            Check::TdxQeSvn,
            format!("QE ISVSVN {qe}"),
            format!(">= {} (policy tdx.min_qe_svn)", p.min_qe_svn),
            "update the host's quoting enclave (DCAP)",
        );
    }
    let pce = v.platform.pck.pce_svn;
    if pce < p.min_pce_svn {
        return deny(
            Check::TdxPceSvn,
            format!("PCE SVN {pce}"),
            format!(">= {} (policy tdx.min_pce_svn)", p.min_pce_svn),
            "update the platform (PCE) and re-provision its PCK certificate",
        );
    }
    Ok(())
}

fn check_piid(v: &QuoteClaims, p: &TdxPolicy) -> Result<(), Denial> {
    let Some(allowed) = &p.piids else {
        return Ok(());
    };
    let got = v.platform.pck.platform_instance_id;
    if !got.is_some_and(|id| allowed.iter().any(|a| a.0 == id)) {
        return deny(
            Check::TdxPiid,
            got.map_or_else(
                || "no platform instance id (Processor CA PCK)".to_owned(),
                |id| hex::encode(&id),
            ),
            hex::list(allowed),
            "run on an allowed platform, or add its PIID",
        );
    }
    Ok(())
}

fn attrs(td: &dcap_qvl::quote::TDReport10) -> u64 {
    u64::from_le_bytes(td.td_attributes)
}

fn check_debug(td: &dcap_qvl::quote::TDReport10, p: &TdxPolicy) -> Result<(), Denial> {
    // Bits 7:0 are the TD-under-debug (TUD) group: any of them set means the
    // host can inspect the TD (TDX module ABI, TDATTRIBUTES).
    if attrs(td) & 0xff != 0 && !p.debug_allowed {
        return deny(
            Check::TdxDebug,
            format!("TD_ATTRIBUTES {}", hex::encode(&td.td_attributes)),
            "DEBUG (bits 7:0) clear (policy tdx.debug_allowed = false)",
            "launch the TD without debug",
        );
    }
    Ok(())
}

fn check_xfam(td: &dcap_qvl::quote::TDReport10, p: &TdxPolicy) -> Result<(), Denial> {
    if let Some(xs) = &p.xfams {
        if !xs.iter().any(|x| x.0 == td.xfam) {
            return deny(
                Check::TdxXfam,
                hex::encode(&td.xfam),
                hex::list(xs),
                "launch with an allowed XFAM (CPU feature set)",
            );
        }
    }
    Ok(())
}

fn check_mr_seam(td: &dcap_qvl::quote::TDReport10, p: &TdxPolicy) -> Result<(), Denial> {
    if let Some(xs) = &p.mr_seams {
        if !xs.iter().any(|x| x.0 == td.mr_seam) {
            return deny(
                Check::TdxMrSeam,
                hex::encode(&td.mr_seam),
                hex::list(xs),
                "the host runs a TDX module this policy does not allow",
            );
        }
    }
    Ok(())
}

fn check_exact(
    check: Check,
    name: &str,
    got: &[u8; 48],
    want: &Option<Hex<48>>,
) -> Result<(), Denial> {
    match want {
        Some(w) if w.0 != *got => deny(
            check,
            format!("{name} {}", hex::encode(got)),
            w.to_string(),
            format!("the TD's {name} differs from the reference value"),
        ),
        _ => Ok(()),
    }
}

/// tcbDate of the first level the TCB info calls `UpToDate` (Intel lists
/// levels newest first).
fn current_tcb_date(tcb_info: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Level {
        tcb_date: String,
        tcb_status: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Info {
        tcb_levels: Vec<Level>,
    }
    let info: Info = serde_json::from_str(tcb_info).ok()?;
    info.tcb_levels
        .into_iter()
        .find(|l| l.tcb_status == "UpToDate")
        .map(|l| l.tcb_date)
}

fn claims(
    v: &QuoteClaims,
    td: &dcap_qvl::quote::TDReport10,
    policy: &Policy,
    image: &Image,
    collateral: CollateralClaims,
    current_tcb_date: Option<String>,
) -> Claims {
    let a = attrs(td);
    let bit = |n: u32| a >> n & 1 == 1;
    let pck = &v.platform.pck;
    Claims {
        tee: "tdx",
        measurement: hex::encode(&image.measurement),
        tcb: Tcb::Tdx(TdxTcb {
            tcb_status: v.tcb.status.to_string(),
            advisory_ids: v.tcb.advisory_ids.clone(),
            tcb_evaluation_data_number: v.tcb.eval_data_number,
            fmspc: hex::encode(&pck.fmspc),
            components: TdxTcbComponents {
                sgx: hex::encode(&pck.cpu_svn),
                pce_svn: pck.pce_svn,
                tdx: hex::encode(&td.tee_tcb_svn),
            },
            tcb_date: v.platform.tcb_level.tcb_date.clone(),
            current_tcb_date,
        }),
        policy_flags: PolicyFlags::Tdx(TdxPolicyFlags {
            debug: a & 0xff != 0,
            sept_ve_disable: bit(28),
            migratable: bit(29),
            pks: bit(30),
            kl: bit(31),
            perfmon: bit(63),
        }),
        chip_id: None,
        host_data: None,
        signer: None,
        product: None,
        vmpl: None,
        rtmrs: Some([
            hex::encode(&td.rt_mr0),
            hex::encode(&td.rt_mr1),
            hex::encode(&td.rt_mr2),
            hex::encode(&td.rt_mr3),
        ]),
        mr_td: Some(hex::encode(&td.mr_td)),
        os_pinned: Some(image.os_pinned),
        init_data: match image.profile {
            Profile::Appliance => None,
            Profile::Pod { init_data } => Some(hex::encode(&init_data)),
        },
        mr_config_id: Some(hex::encode(&td.mr_config_id)),
        mr_seam: Some(hex::encode(&td.mr_seam)),
        xfam: Some(hex::encode(&td.xfam)),
        td_attributes: Some(hex::encode(&td.td_attributes)),
        report_data: hex::encode(&td.report_data),
        policy_digest: hex::encode(policy.digest()),
        azure: None,
        nitro: None,
        collateral,
        relaxations: policy.relaxations("tdx"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_dcap_qvl_errors() {
        assert_eq!(
            classify("No matching TCB level found").check,
            Check::TdxTcbLevel
        );
        assert_eq!(
            classify("Failed to verify PCK: CrlExpired { .. }").check,
            Check::TdxCrl
        );
        assert_eq!(
            classify("TCBInfo expired").check,
            Check::TdxCollateralExpired
        );
        assert_eq!(
            classify("ISV enclave report signature is invalid").check,
            Check::TdxSignature
        );
        assert_eq!(classify("QE report hash mismatch").check, Check::TdxQe);
        assert_eq!(
            classify("Failed to decode quote: Invalid body size").check,
            Check::TdxQuoteFormat
        );
        assert_eq!(
            classify("Signature is invalid for tcb_info in quote_collateral").check,
            Check::TdxCollateralSignature
        );
        assert_eq!(
            classify("SEPT_VE_DISABLE is not enabled").check,
            Check::TdxTdAttributes
        );
        assert_eq!(classify("something new").check, Check::TdxQuote);
    }

    fn td(attributes: [u8; 8]) -> dcap_qvl::quote::TDReport10 {
        dcap_qvl::quote::TDReport10 {
            tee_tcb_svn: [0; 16],
            mr_seam: [0; 48],
            mr_signer_seam: [0; 48],
            seam_attributes: [0; 8],
            td_attributes: attributes,
            xfam: [0; 8],
            mr_td: [0; 48],
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            rt_mr0: [0; 48],
            rt_mr1: [0; 48],
            rt_mr2: [0; 48],
            rt_mr3: [0; 48],
            report_data: [0; 64],
        }
    }

    #[test]
    fn debug_td_is_denied_unless_allowed() {
        // td_attributes of shared/fixtures/tdx/trustee/tdx_quote_4.dat (DEBUG + SEPT_VE_DISABLE):
        // that quote has no collateral, so its body is checked here directly.
        let debug = td([0x01, 0, 0, 0x10, 0, 0, 0, 0]);
        let p = TdxPolicy::default();
        let d = check_debug(&debug, &p).unwrap_err();
        assert_eq!(d.check, Check::TdxDebug);
        assert!(d.got.contains("0100001000000000"), "{d}");
        // Any TUD bit (7:0) counts, e.g. bit 4 (profiling).
        assert!(check_debug(&td([0x10, 0, 0, 0x10, 0, 0, 0, 0]), &p).is_err());
        assert!(check_debug(&td([0, 0, 0, 0x10, 0, 0, 0, 0]), &p).is_ok());
        let allow = TdxPolicy {
            debug_allowed: true,
            ..TdxPolicy::default()
        };
        assert!(check_debug(&debug, &allow).is_ok());
    }
}
