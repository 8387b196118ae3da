//! TDX appraisal: DCAP quote verification by dcap-qvl (pure Rust) against
//! the pinned Intel SGX Root CA with the bundle's collateral, then this
//! policy's checks on the TCB verdict and the TD report body.
//!
//! dcap-qvl does (`tee-formats.md` §3.4): the header, TCB info and QE
//! identity signatures, chains and freshness, both CRLs, the PCK chain,
//! the QE report signature, binding and identity, the quote signature, the
//! TCB level match with the TDX module identity, status convergence
//! (`Revoked` is always refused) and the TD attribute sanity checks
//! (reserved bits, MIGRATABLE, SERVTD_EXT, SEPT_VE_DISABLE, MRSERVICETD).
//! Its errors are `anyhow` chains; [`classify`] maps each to the check it
//! belongs to and keeps the full text in `got`.
//!
//! dcap-qvl is told to let debuggable TDs through (`allow_debug(true)`) so
//! that a debug TD is denied here, by `tdx.debug`, after its signatures
//! are known to be good: the denial then says precisely why.
//!
//! Collateral is mandatory: without it there is no TCB status at all
//! (go-tdx-guest's default; `attestation-landscape.md` §1.6).

use dcap_qvl::configs::RustCryptoConfig;
use dcap_qvl::quote::Report;
use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::{QuoteClaims, QuoteCollateralV3, QuotePolicy};
use wire::EvidenceBundle;

use crate::claims::{Claims, PolicyFlags, Tcb, TdxPolicyFlags, TdxTcb};
use crate::denial::{deny, Check, Denial};
use crate::hex::{self, Hex};
use crate::policy::{Policy, TdxPolicy};
use crate::roots::Roots;

/// TEE type of a TDX quote.
const TEE_TYPE_TDX: u32 = 0x81;

/// Appraises a TDX quote.
pub(crate) fn appraise(
    roots: &Roots,
    bundle: &EvidenceBundle,
    policy: &Policy,
    now: i64,
    expected_report_data: Option<&[u8; 64]>,
) -> Result<Claims, Denial> {
    let p = &policy.tdx;
    let collateral = collateral(bundle)?;
    let verified = verify_quote(roots, &bundle.evidence, collateral, now)?;
    let td = td_report(&verified)?;
    check_tcb_status(&verified, p)?;
    check_advisories(&verified, p)?;
    check_tcb_evaluation_data_number(&verified, p)?;
    check_qe_pce_svn(&verified, p)?;
    check_piid(&verified, p)?;
    check_debug(td, p)?;
    check_xfam(td, p)?;
    check_mr_seam(td, p)?;
    check_mrtd(td, p)?;
    let rtmr_checks = [
        (Check::TdxRtmr0, "RTMR0", &td.rt_mr0, &p.rtmr0),
        (Check::TdxRtmr1, "RTMR1", &td.rt_mr1, &p.rtmr1),
        (Check::TdxRtmr2, "RTMR2", &td.rt_mr2, &p.rtmr2),
        (Check::TdxRtmr3, "RTMR3", &td.rt_mr3, &p.rtmr3),
        (
            Check::TdxMrConfigId,
            "MRCONFIGID",
            &td.mr_config_id,
            &p.mr_config_id,
        ),
        (Check::TdxMrOwner, "MROWNER", &td.mr_owner, &p.mr_owner),
        (
            Check::TdxMrOwnerConfig,
            "MROWNERCONFIG",
            &td.mr_owner_config,
            &p.mr_owner_config,
        ),
    ];
    for (check, name, got, want) in rtmr_checks {
        check_exact(check, name, got, want)?;
    }
    crate::check_report_data(&td.report_data, expected_report_data)?;
    Ok(claims(&verified, td, policy))
}

fn collateral(bundle: &EvidenceBundle) -> Result<QuoteCollateralV3, Denial> {
    let value = bundle.tdx_collateral.as_ref().ok_or_else(|| {
        Denial::new(
            Check::TdxCollateralMissing,
            "no tdx_collateral in the bundle",
            "TCB info, QE identity, PCK and root CA CRLs (dcap-qvl QuoteCollateralV3 JSON)",
            "have the host proxy attach the collateral from Intel PCS or a PCCS",
        )
    })?;
    serde_json::from_value(value.clone()).map_err(|e| {
        Denial::new(
            Check::TdxCollateral,
            format!("collateral JSON: {e}"),
            "dcap-qvl QuoteCollateralV3 JSON",
            "attach the collateral unmodified",
        )
    })
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
        .map_err(|e| classify(&format!("{e:#}")))
}

/// Maps a dcap-qvl error (its full `{:#}` chain) to the check it belongs to.
fn classify(msg: &str) -> Denial {
    let m = msg.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    let (check, want, hint) = if has(&["no matching tcb level"]) {
        (Check::TdxTcbLevel, "a TCB level of the TCB info that the platform meets", "the platform's TCB (CPU microcode, PCE, TDX module) is below every level Intel lists: update the host")
    } else if has(&["tcb status is invalid: revoked", "unrecognized tcb status"]) {
        (
            Check::TdxTcbStatus,
            "a non-revoked TCB status",
            "the platform's TCB is revoked",
        )
    } else if has(&["crl"]) {
        (
            Check::TdxCrl,
            "current CRLs signed by Intel, revoking nothing in the chains",
            "attach the current PCK and root CA CRLs",
        )
    } else if has(&[
        "tcbinfo expired",
        "qe identity expired",
        "issue date is in the future",
        "certificateexpired",
        "certnotvalidyet",
        "not valid yet",
    ]) {
        (
            Check::TdxCollateralExpired,
            "collateral current at the verifier's time",
            "fetch current collateral from Intel PCS or the PCCS",
        )
    } else if has(&[
        "signature is invalid for tcb_info",
        "signature is invalid for qe_identity",
        "tcb info signer",
        "qe identity signer",
        "certificate chain is too short for tcb",
        "certificate chain is too short for qe",
    ]) {
        (
            Check::TdxCollateralSignature,
            "TCB info and QE identity signed by Intel",
            "attach the collateral unmodified",
        )
    } else if has(&[
        "failed to decode tcbinfo",
        "failed to decode qeidentity",
        "fmspc mismatch",
        "non-tdx tcb info",
        "qe identity id/version",
        "tcb fmspc",
        "issue date",
        "next update",
    ]) {
        (
            Check::TdxCollateral,
            "collateral for this quote's platform (FMSPC, TDX)",
            "fetch the collateral for this platform's FMSPC",
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
            "a TDX quote v4/v5 from Intel's QE, ECDSA P-256",
            "send the quote exactly as the QE produced it",
        )
    } else if has(&["pck", "unknownissuer", "badsignature", "certificate"]) {
        (
            Check::TdxPckChain,
            "a PCK chain to the pinned Intel SGX Root CA",
            "the quote's PCK certificate is not Intel's",
        )
    } else if has(&[
        "qe report",
        "qe mrsigner",
        "qe isvprodid",
        "qe miscselect",
        "qe attributes",
        "qe isvsvn",
        "qe report hash",
        "qe auth data",
    ]) {
        (Check::TdxQe, "a QE report signed by the PCK, bound to the attestation key, matching Intel's QE identity", "the quoting enclave is not Intel's or is out of date")
    } else if has(&["isv enclave report signature"]) {
        (
            Check::TdxSignature,
            "a quote signed by the QE's attestation key",
            "the quote was altered after signing",
        )
    } else if has(&["tdx module"]) {
        (
            Check::TdxModuleIdentity,
            "a TDX module whose signer and attributes match Intel's TCB info",
            "the TDX module is not one Intel lists",
        )
    } else if has(&[
        "td attributes",
        "td migration",
        "servtd_ext",
        "sept_ve_disable",
        "mr service td",
        "reserved bits",
    ]) {
        (
            Check::TdxTdAttributes,
            "TD attributes: reserved clear, not migratable, no service TD, SEPT_VE_DISABLE set",
            "launch the TD with the expected attributes",
        )
    } else {
        (
            Check::TdxQuote,
            "a quote that dcap-qvl verifies",
            "see got for dcap-qvl's reason",
        )
    };
    Denial::new(check, msg.to_owned(), want, hint)
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

fn check_mrtd(td: &dcap_qvl::quote::TDReport10, p: &TdxPolicy) -> Result<(), Denial> {
    if !p.mrtds.iter().any(|m| m.0 == td.mr_td) {
        return deny(
            Check::TdxMrtd,
            hex::encode(&td.mr_td),
            hex::list(&p.mrtds),
            "add this image's MRTD to tdx.mrtds, if you built it",
        );
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

fn claims(v: &QuoteClaims, td: &dcap_qvl::quote::TDReport10, policy: &Policy) -> Claims {
    let a = attrs(td);
    let bit = |n: u32| a >> n & 1 == 1;
    Claims {
        tee: "tdx",
        measurement: hex::encode(&td.mr_td),
        tcb: Tcb::Tdx(TdxTcb {
            tcb_status: v.tcb.status.to_string(),
            advisory_ids: v.tcb.advisory_ids.clone(),
            tcb_evaluation_data_number: v.tcb.eval_data_number,
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
        mr_config_id: Some(hex::encode(&td.mr_config_id)),
        mr_seam: Some(hex::encode(&td.mr_seam)),
        xfam: Some(hex::encode(&td.xfam)),
        td_attributes: Some(hex::encode(&td.td_attributes)),
        report_data: hex::encode(&td.report_data),
        policy_digest: hex::encode(policy.digest()),
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
