//! Azure confidential VMs: an SNP report or a TDREPORT wrapped by the
//! paravisor (OpenHCL) in an HCL report, and a vTPM quote proving the guest's
//! PCRs and freshness (`shared/fixtures/cloud/SOURCES.md` §2; trustee
//! `deps/verifier/src/az_snp_vtpm`, `az_tdx_vtpm`).
//!
//! The chain of trust: hardware root (AMD ARK or Intel root) → hardware
//! report, whose REPORT_DATA is SHA-256(variable data) → the variable data's
//! `HCLAkPub` (the vTPM attestation key) → the TPM quote (PCRs, extraData)
//! → the PCR values. The guest's own binding (`tee_formats::binding`)
//! reaches the hardware report through `user-data` in the variable data, and
//! the quote's extraData.
//!
//! Check order (each its own function):
//! TEE type allowed (`azure.not_allowed`) → HCL report form and type
//! (`azure.hcl.format`) → AK from the variable data (`azure.ak`) → binding
//! of the variable data into the hardware report (`azure.hcl.binding`; for
//! TDX against the TD quote, `azure.td_quote`) → quote form and scheme
//! (`azure.quote.format`) → quote signature by the AK
//! (`azure.quote.signature`) → extraData (`azure.quote.nonce`) → PCR
//! selection (`azure.quote.pcr_selection`) → PCR digest
//! (`azure.quote.pcr_digest`) → PCR allow-lists (`azure.pcr`) → user-data
//! (`azure.user_data`) → the hardware report through the SNP or TDX
//! appraisal, against `[azure.snp]` / `[azure.tdx]` (`snp.*`, `tdx.*`).
//! The vTPM checks come first because they need nothing from outside the
//! bundle: a TDX quote without collateral is then denied only after
//! everything Azure-specific has been verified.
//!
//! Freshness ([`AzureFreshness`]): for our verifier, the session's
//! REPORT_DATA binding `B` (64 bytes): `user-data` = `B` and extraData =
//! SHA-256(`B`) (a vTPM's TPM2B_DATA holds at most 48 or 64 bytes depending
//! on its largest hash: 32 fits every TPM). For captures made by other
//! attesters (trustee), a raw nonce `N`: extraData = `N` and `user-data`,
//! when present, starts with `N` (trustee compares a prefix; its v2 capture
//! pads a 48-byte nonce with 16 zero bytes).

use base64::Engine as _;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use tee_formats::azure::{HardwareReport, HclReport, HclReportType};
use tee_formats::tpm::{self, Attest, PcrSelection, Signature};
use wire::{CertKind, EvidenceBundle, Tee, TpmEvidence};

use crate::claims::{AzureClaims, Claims};
use crate::denial::{deny, Check, Denial};
use crate::hex;
use crate::policy::{AzurePolicy, Policy};
use crate::snp_chain::Trust;
use crate::Appraiser;

/// RSA key sizes accepted for the attestation key (bits).
pub const AK_BITS: [usize; 3] = [2048, 3072, 4096];
/// The one public exponent accepted for the attestation key.
pub const AK_EXPONENT: u32 = 65537;

/// What the quote's extraData and the HCL `user-data` must carry.
#[derive(Debug, Clone, Copy)]
pub enum AzureFreshness<'a> {
    /// The session's REPORT_DATA binding (`tee_formats::binding`):
    /// `user-data` = binding, extraData = SHA-256(binding).
    Binding(&'a [u8; 64]),
    /// A raw nonce (captures by other attesters): extraData = nonce,
    /// `user-data` (when present) starts with it.
    Nonce(&'a [u8]),
}

/// extraData for a REPORT_DATA binding: SHA-256 of it (fits any vTPM's
/// TPM2B_DATA). The guest's provider computes the same.
pub fn extra_data_for_binding(binding: &[u8; 64]) -> [u8; 32] {
    Sha256::digest(binding).into()
}

impl Appraiser {
    /// Appraises Azure evidence (`azure-snp`, `azure-tdx`) with an explicit
    /// freshness rule; [`Appraiser::appraise`] uses
    /// [`AzureFreshness::Binding`] of its expected REPORT_DATA. `None` skips
    /// extraData and `user-data` (offline inspection only).
    pub fn appraise_azure(
        &self,
        bundle: &EvidenceBundle,
        policy: &Policy,
        now_unix: i64,
        freshness: Option<AzureFreshness<'_>>,
        collateral: &crate::Collateral,
    ) -> Result<Claims, Denial> {
        self.appraise_azure_traced(bundle, policy, now_unix, freshness, collateral)
            .0
    }

    /// [`Appraiser::appraise_azure`], with the [`crate::Trace`] of the checks
    /// it made: the `azure.*` checks, then the hardware report's SEV-SNP or
    /// TDX checks, in the order they ran.
    pub fn appraise_azure_traced(
        &self,
        bundle: &EvidenceBundle,
        policy: &Policy,
        now_unix: i64,
        freshness: Option<AzureFreshness<'_>>,
        collateral: &crate::Collateral,
    ) -> (Result<Claims, Denial>, crate::Trace) {
        let mut t = crate::Trace::new();
        let result = appraise(
            self, bundle, policy, now_unix, freshness, collateral, &mut t,
        );
        (result, t)
    }
}

/// The variable data, as far as the appraisal reads it.
struct VarData {
    ak: RsaPublicKey,
    user_data: Option<Vec<u8>>,
    vm_configuration: Option<serde_json::Value>,
}

pub(crate) fn appraise(
    appraiser: &Appraiser,
    bundle: &EvidenceBundle,
    policy: &Policy,
    now: i64,
    freshness: Option<AzureFreshness<'_>>,
    collateral: &crate::Collateral,
    t: &mut crate::Trace,
) -> Result<Claims, Denial> {
    use Check::*;
    let p = &policy.azure;
    let kind = t.step(&[AzureNotAllowed], check_allowed(bundle.tee, p))?;
    let hcl = t.step(&[AzureHclFormat], parse_hcl(&bundle.evidence, kind))?;
    // Recorded as `azure.quote.format` when it fails; it passes with the
    // quote's parse below.
    let tpm = t.step(
        &[],
        bundle.tpm.as_ref().ok_or_else(|| {
            Denial::new(
                AzureQuoteFormat,
                "no tpm evidence in the bundle",
                "tpm.quote, tpm.signature and the 24 PCR values",
                "send the vTPM quote with the HCL report",
            )
        }),
    )?;
    let var = t.step(&[AzureAk], var_data(&hcl.variable_data))?;
    let td_quote = match kind {
        HclReportType::Snp => {
            t.step(
                &[AzureHclBinding],
                check_binding(
                    &hcl,
                    hcl.hardware_report.report_data(),
                    "the SNP report's REPORT_DATA",
                ),
            )?;
            t.skip(AzureTdQuote, "an SEV-SNP hardware report");
            None
        }
        HclReportType::Tdx => {
            let q = t.step(&[], td_quote(tpm))?;
            t.step(
                &[AzureHclBinding],
                check_binding(
                    &hcl,
                    &q.quote().body.td10().report_data,
                    "the TD quote's REPORTDATA",
                ),
            )?;
            t.step(&[AzureTdQuote], check_td_quote_matches(&hcl, &q))?;
            Some(q)
        }
    };
    let (attest, signature) = t.step(&[AzureQuoteFormat], parse_quote(tpm))?;
    t.step(
        &[AzureQuoteSignature],
        check_signature(&var.ak, &tpm.quote, &signature),
    )?;
    if freshness.is_some() {
        t.step(&[AzureQuoteNonce], check_nonce(&attest, freshness))?;
    } else {
        t.skip(AzureQuoteNonce, "offline appraisal: no session to compare");
    }
    t.step(&[AzureQuotePcrSelection], check_pcr_selection(&attest, tpm))?;
    t.step(&[AzureQuotePcrDigest], check_pcr_digest(&attest, tpm))?;
    t.step(&[AzurePcr], check_pcr_policy(tpm, p))?;
    if freshness.is_some() {
        t.step(
            &[AzureUserData],
            check_user_data(var.user_data.as_deref(), freshness, p),
        )?;
    } else {
        t.skip(AzureUserData, "offline appraisal: no session to compare");
    }

    let inner_policy = policy.azure_inner();
    let inner = appraise_hardware(
        appraiser,
        bundle,
        policy,
        &inner_policy,
        &hcl,
        td_quote,
        now,
        collateral,
        t,
    );
    // The inner appraisal skips REPORT_DATA as offline; here it is bound.
    t.reason_skip(
        ReportData,
        "Azure: REPORT_DATA binds the HCL variable data (azure.hcl.binding)",
    );
    let (mut claims, tee) = inner?;
    claims.tee = tee;
    claims.azure = Some(AzureClaims {
        pcrs: tpm.pcrs.iter().map(|v| hex::encode(v)).collect(),
        vm_configuration: var.vm_configuration,
        user_data: var.user_data.as_deref().map(hex::encode),
        hcl_version: hcl.header.version,
    });
    Ok(claims)
}

/// The hardware report inside, through the SEV-SNP or TDX appraisal.
#[allow(clippy::too_many_arguments)]
fn appraise_hardware(
    appraiser: &Appraiser,
    bundle: &EvidenceBundle,
    policy: &Policy,
    inner_policy: &Policy,
    hcl: &HclReport,
    td_quote: Option<tee_formats::tdx::ReceivedQuote>,
    now: i64,
    collateral: &crate::Collateral,
    t: &mut crate::Trace,
) -> Result<(Claims, &'static str), Denial> {
    use Check::*;
    Ok(match (&hcl.hardware_report, td_quote) {
        (HardwareReport::Snp(report), _) => {
            let trust = trust(bundle, policy);
            let mut inner =
                EvidenceBundle::new(Tee::Snp, &bundle.provider, report.to_bytes().to_vec());
            inner.certificates = bundle.certificates.clone();
            inner.crls = bundle.crls.clone();
            let claims = crate::snp::appraise(
                &appraiser.roots,
                &appraiser.cache,
                &inner,
                inner_policy,
                trust,
                now,
                None,
                collateral,
                t,
            )?;
            (
                claims,
                if matches!(trust, Trust::Sim(_)) {
                    "azure-sim"
                } else {
                    "azure-snp"
                },
            )
        }
        (HardwareReport::Tdx(_), Some(q)) => {
            // The quote's signature and PCK chain without collateral; dcap-qvl
            // verifies them again below (where they are recorded as passed).
            t.step(&[], crate::tdx_offline::verify(&appraiser.roots, &q, now))?;
            let mut inner = EvidenceBundle::new(Tee::Tdx, &bundle.provider, q.bytes().to_vec());
            inner.tdx_collateral = bundle.tdx_collateral.clone();
            (
                crate::tdx::appraise(
                    &appraiser.roots,
                    &inner,
                    inner_policy,
                    now,
                    None,
                    collateral,
                    t,
                )?,
                "azure-tdx",
            )
        }
        (HardwareReport::Tdx(_), None) => {
            return t.step(
                &[],
                deny(
                    AzureTdQuote,
                    "no TD quote",
                    "the TD quote of the HCL report's TDREPORT",
                    "send tpm.td_quote",
                ),
            )
        }
    })
}

fn check_allowed(tee: Tee, p: &AzurePolicy) -> Result<HclReportType, Denial> {
    let (kind, inner_allowed, key) = match tee {
        Tee::AzureSnp => (HclReportType::Snp, p.snp.allowed, "azure.snp.allowed"),
        Tee::AzureTdx => (HclReportType::Tdx, p.tdx.allowed, "azure.tdx.allowed"),
        other => {
            return deny(
                Check::AzureNotAllowed,
                format!("{} evidence", other.as_str()),
                "azure-snp or azure-tdx",
                "this is not Azure evidence",
            )
        }
    };
    if !p.allowed || !inner_allowed {
        let missing = if p.allowed { key } else { "azure.allowed" };
        return deny(
            Check::AzureNotAllowed,
            format!("{} evidence", tee.as_str()),
            format!("{missing} = true in the policy"),
            "this policy does not accept evidence from Azure confidential VMs of this kind",
        );
    }
    Ok(kind)
}

fn parse_hcl(bytes: &[u8], kind: HclReportType) -> Result<HclReport, Denial> {
    let hcl = HclReport::parse(bytes).map_err(|e| {
        Denial::new(
            Check::AzureHclFormat,
            e.to_string(),
            "an HCL report: \"HCLA\" header v1/v2, an SNP report or TDREPORT, IGVM request data (SHA-256), the variable data, zero padding",
            "send vTPM NV index 0x01400001 exactly as read",
        )
    })?;
    if hcl.report_type() != kind {
        return deny(
            Check::AzureHclFormat,
            format!("HCL report type {}", hcl.report_type().as_str()),
            format!("{} (the bundle's TEE type)", kind.as_str()),
            "the bundle's TEE type does not match the hardware report inside the HCL report",
        );
    }
    Ok(hcl)
}

fn ak_denial(got: impl Into<String>) -> Denial {
    Denial::new(
        Check::AzureAk,
        got,
        "variable data: JSON whose keys[] hold an RSA JWK with kid \"HCLAkPub\", 2048, 3072 or 4096 bits, e = 65537",
        "the HCL report's variable data is not what the paravisor writes",
    )
}

fn b64url(field: &str, s: &str) -> Result<Vec<u8>, Denial> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('=').as_bytes())
        .map_err(|e| ak_denial(format!("HCLAkPub.{field} is not base64url: {e}")))
}

fn var_data(bytes: &[u8]) -> Result<VarData, Denial> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ak_denial(format!("variable data is not JSON: {e}")))?;
    let keys = v
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| ak_denial("variable data has no keys[] array"))?;
    let jwk = keys
        .iter()
        .find(|k| k.get("kid").and_then(|s| s.as_str()) == Some("HCLAkPub"))
        .ok_or_else(|| ak_denial("no key with kid \"HCLAkPub\""))?;
    let field = |name: &str| {
        jwk.get(name)
            .and_then(|s| s.as_str())
            .ok_or_else(|| ak_denial(format!("HCLAkPub has no string {name}")))
    };
    let kty = field("kty")?;
    if kty != "RSA" {
        return Err(ak_denial(format!("HCLAkPub.kty {kty:?}")));
    }
    let n = b64url("n", field("n")?)?;
    let e = b64url("e", field("e")?)?;
    let n = BigUint::from_bytes_be(&n);
    let e = BigUint::from_bytes_be(&e);
    let bits = n.bits();
    if !AK_BITS.contains(&bits) {
        return Err(ak_denial(format!("HCLAkPub is a {bits}-bit RSA key")));
    }
    if e != BigUint::from(AK_EXPONENT) {
        return Err(ak_denial(format!("HCLAkPub exponent {e}")));
    }
    let ak = RsaPublicKey::new(n, e).map_err(|err| ak_denial(format!("HCLAkPub: {err}")))?;
    let user_data = match v.get("user-data") {
        None => None,
        Some(u) => Some(parse_user_data(u)?),
    };
    let vm_configuration = v.get("vm-configuration").cloned();
    Ok(VarData {
        ak,
        user_data,
        vm_configuration,
    })
}

fn user_data_denial(got: impl Into<String>) -> Denial {
    Denial::new(
        Check::AzureUserData,
        got,
        "user-data: 64 bytes of hex (either case) carrying the session binding",
        "the guest writes its binding to vTPM NV index 0x01400002 before reading the report",
    )
}

fn parse_user_data(u: &serde_json::Value) -> Result<Vec<u8>, Denial> {
    let s = u
        .as_str()
        .ok_or_else(|| user_data_denial("user-data is not a string"))?;
    let bytes =
        hex::decode(s).ok_or_else(|| user_data_denial(format!("user-data {s:?} is not hex")))?;
    if bytes.len() != tee_formats::azure::USER_DATA_LEN {
        return Err(user_data_denial(format!(
            "user-data is {} bytes",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn check_binding(hcl: &HclReport, report_data: &[u8; 64], whose: &str) -> Result<(), Denial> {
    let want = hcl.expected_report_data();
    if report_data != &want {
        return deny(
            Check::AzureHclBinding,
            format!("{whose} {}", hex::encode(report_data)),
            format!(
                "SHA-256(variable data) ‖ 32 zero bytes = {}",
                hex::encode(&want)
            ),
            "the variable data (AK, user-data) is not the one the hardware report vouches for",
        );
    }
    Ok(())
}

fn td_quote(tpm: &TpmEvidence) -> Result<tee_formats::tdx::ReceivedQuote, Denial> {
    let bytes = tpm.td_quote.as_ref().ok_or_else(|| {
        Denial::new(
            Check::AzureTdQuote,
            "no tpm.td_quote in the bundle",
            "the TD quote of the HCL report's TDREPORT",
            "send the TD quote the platform produced for the TDREPORT",
        )
    })?;
    tee_formats::tdx::ReceivedQuote::parse(bytes).map_err(|e| {
        Denial::new(
            Check::TdxQuoteFormat,
            e.to_string(),
            "a TDX quote v4/v5",
            "send the TD quote exactly as the platform produced it",
        )
    })
}

/// The TD quote must quote the TDREPORT in the HCL report: same TD
/// measurements and report data (the TDREPORT itself is MAC-protected and
/// only the quote is signed).
fn check_td_quote_matches(
    hcl: &HclReport,
    q: &tee_formats::tdx::ReceivedQuote,
) -> Result<(), Denial> {
    let HardwareReport::Tdx(td) = &hcl.hardware_report else {
        return Ok(());
    };
    let body = q.quote().body.td10();
    let info = &td.td_info;
    let fields: [(&str, &[u8], &[u8]); 5] = [
        ("MRTD", &body.mr_td, &info.mr_td),
        ("RTMR0", &body.rtmr[0], &info.rtmr[0]),
        ("RTMR3", &body.rtmr[3], &info.rtmr[3]),
        ("TD_ATTRIBUTES", &body.td_attributes, &info.attributes),
        (
            "REPORTDATA",
            &body.report_data,
            &td.report_mac_struct.report_data,
        ),
    ];
    for (name, quoted, reported) in fields {
        if quoted != reported {
            return deny(
                Check::AzureTdQuote,
                format!("TD quote {name} {}", hex::encode(quoted)),
                format!("the HCL report's TDREPORT {name} {}", hex::encode(reported)),
                "the TD quote is of another TD report",
            );
        }
    }
    Ok(())
}

fn quote_format(got: impl Into<String>) -> Denial {
    Denial::new(
        Check::AzureQuoteFormat,
        got,
        "a TPMS_ATTEST of type quote and a TPMT_SIGNATURE, RSASSA with SHA-256",
        "send the TPM2_Quote output exactly as the vTPM returned it",
    )
}

fn parse_quote(tpm: &TpmEvidence) -> Result<(Attest, Vec<u8>), Denial> {
    let signature =
        Signature::parse(&tpm.signature).map_err(|e| quote_format(format!("signature: {e}")))?;
    let sig = match signature {
        Signature::RsaSsa {
            hash: tpm::ALG_SHA256,
            sig,
        } => sig,
        other => {
            return Err(quote_format(format!(
                "signature scheme {} with {}",
                other.scheme(),
                tpm::alg_name(other.hash())
            )))
        }
    };
    let attest = Attest::parse(&tpm.quote).map_err(|e| quote_format(format!("quote: {e}")))?;
    Ok((attest, sig))
}

fn check_signature(ak: &RsaPublicKey, message: &[u8], sig: &[u8]) -> Result<(), Denial> {
    let digest = Sha256::digest(message);
    if sig.len() != ak.size()
        || ak
            .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, sig)
            .is_err()
    {
        return deny(
            Check::AzureQuoteSignature,
            format!("RSASSA-PKCS1-v1_5/SHA-256 signature ({} bytes) over the {}-byte TPMS_ATTEST does not verify", sig.len(), message.len()),
            format!("a signature by the HCL report's HCLAkPub ({} bits)", ak.n().bits()),
            "the quote was altered, or signed by a key the paravisor does not vouch for",
        );
    }
    Ok(())
}

fn check_nonce(attest: &Attest, freshness: Option<AzureFreshness<'_>>) -> Result<(), Denial> {
    let (want, what): (Vec<u8>, &str) = match freshness {
        None => return Ok(()),
        Some(AzureFreshness::Binding(b)) => (
            extra_data_for_binding(b).to_vec(),
            "SHA-256 of this session's REPORT_DATA binding",
        ),
        Some(AzureFreshness::Nonce(n)) => (n.to_vec(), "the verifier's nonce"),
    };
    if !ct_eq(&attest.extra_data, &want) {
        return deny(
            Check::AzureQuoteNonce,
            format!("extraData {}", hex::encode(&attest.extra_data)),
            format!("{} ({what})", hex::encode(&want)),
            "a quote from another session, or a replayed one",
        );
    }
    Ok(())
}

fn check_pcr_selection(attest: &Attest, tpm: &TpmEvidence) -> Result<(), Denial> {
    let want = PcrSelection::sha256_all();
    let show = |s: &PcrSelection| {
        s.0.iter()
            .map(|b| format!("{} {:?}", tpm::alg_name(b.hash), b.indices()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if attest.pcr_select != want {
        return deny(
            Check::AzureQuotePcrSelection,
            format!("selection {}", show(&attest.pcr_select)),
            format!("selection {}", show(&want)),
            "quote PCR0-23 of the SHA-256 bank",
        );
    }
    let lens: Vec<usize> = tpm.pcrs.iter().map(|p| p.len()).collect();
    if lens.len() != tpm::PCR_COUNT || lens.iter().any(|&l| l != 32) {
        return deny(
            Check::AzureQuotePcrSelection,
            format!("{} PCR values of lengths {lens:?}", lens.len()),
            "24 SHA-256 values, PCR0 first",
            "send the values of the quoted PCRs",
        );
    }
    Ok(())
}

fn check_pcr_digest(attest: &Attest, tpm: &TpmEvidence) -> Result<(), Denial> {
    let mut h = Sha256::new();
    for v in &tpm.pcrs {
        h.update(&v[..]);
    }
    let got: [u8; 32] = h.finalize().into();
    if attest.pcr_digest != got {
        return deny(
            Check::AzureQuotePcrDigest,
            format!("SHA-256 of the PCR values {}", hex::encode(&got)),
            format!("the quote's pcrDigest {}", hex::encode(&attest.pcr_digest)),
            "the PCR values are not the ones the vTPM quoted (read them again, or they were altered)",
        );
    }
    Ok(())
}

fn check_pcr_policy(tpm: &TpmEvidence, p: &AzurePolicy) -> Result<(), Denial> {
    for (i, allowed) in p.pcr_pins() {
        let Some(v) = tpm.pcrs.get(i) else { continue };
        if !allowed.iter().any(|a| a.0[..] == v[..]) {
            return deny(
                Check::AzurePcr,
                format!("PCR{i} {}", hex::encode(v)),
                format!("one of {} (policy azure.pcrs.{i})", hex::list(allowed)),
                format!("the guest measured into PCR{i} is not one this policy allows: add its value if you built it"),
            );
        }
    }
    Ok(())
}

fn check_user_data(
    user_data: Option<&[u8]>,
    freshness: Option<AzureFreshness<'_>>,
    p: &AzurePolicy,
) -> Result<(), Denial> {
    let want: &[u8] = match freshness {
        None => return Ok(()),
        Some(AzureFreshness::Binding(b)) => b,
        Some(AzureFreshness::Nonce(n)) => n,
    };
    if !p.user_data_required {
        return Ok(());
    }
    match user_data {
        None => deny(
            Check::AzureUserData,
            "no user-data in the variable data",
            "user-data carrying this session's binding (policy azure.user_data_required = true)",
            "the guest writes its binding to vTPM NV index 0x01400002; a paravisor that ignores it needs azure.user_data_required = false",
        ),
        Some(u) => {
            if want.len() > u.len() || !ct_eq(&u[..want.len()], want) {
                return deny(
                    Check::AzureUserData,
                    format!("user-data {}", hex::encode(u)),
                    format!("starting with {}", hex::encode(want)),
                    "the HCL report was refreshed for another session",
                );
            }
            Ok(())
        }
    }
}

/// Which root the SNP report inside is checked against: AMD's, unless the
/// policy accepts simulation (never in production) and the bundle's ARK is
/// a pinned simulation ARK.
fn trust<'p>(bundle: &EvidenceBundle, policy: &'p Policy) -> Trust<'p> {
    if policy.sim.allowed {
        let sim_ark = bundle
            .certificates
            .iter()
            .filter(|c| c.kind == CertKind::Ark)
            .any(|c| {
                policy
                    .sim
                    .ark_sha256
                    .iter()
                    .any(|pin| pin.0[..] == Sha256::digest(&c.der[..])[..])
            });
        if sim_ark {
            return Trust::Sim(&policy.sim.ark_sha256);
        }
    }
    Trust::Amd
}

/// Equality that does not stop at the first difference.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
