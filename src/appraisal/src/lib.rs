//! The one appraisal library: decides whether an evidence bundle satisfies a
//! policy. The verifier service and `enclavectl verify` both call
//! [`Appraiser::appraise`]; neither re-implements a check
//! (`shared/docs/style.md` §6.3).
//!
//! Pure: no network (the caller passes certificates, CRLs and collateral:
//! the host's in the bundle, the verifier's own in a [`Collateral`]), no
//! clock (`now_unix` is a parameter: the verifier's trusted time, never the
//! guest's), no global state except the curve constant table in [`ecdsa`].
//! Every outcome is either [`Claims`] or a [`Denial`] naming the first
//! failed [`Check`].
//!
//! Module map:
//! - [`policy`]: [`Policy`] (typed TOML, digest), [`PolicyError`].
//! - [`claims`]: [`Claims`], the token claims of accepted evidence.
//! - [`collateral`]: [`Collateral`], what the verifier resolved itself, its
//!   precedence over the bundle's, and the sources named in the claims.
//! - [`time`]: the verifier's `--now` (RFC 3339 or Unix seconds, real dates only).
//! - [`denial`]: [`Denial`], [`Check`] (stable check names).
//! - [`trace`]: [`Trace`], the checks an appraisal made and their outcomes.
//! - `snp`: the SEV-SNP (and simulation) check sequence; `snp_chain`: the
//!   ARK → ASK/ASVK → VCEK/VLEK chain, CRLs and the warm chain cache.
//! - `tdx`: the TDX check sequence around dcap-qvl; `tdx_image`: which
//!   image booted (MRTD, RTMRs, the replayed event log, kernel/initrd/cmdline
//!   pins, CoCo pods and their init-data).
//! - `tdx`: the TDX check sequence around dcap-qvl.
//! - `azure`: Azure confidential VMs (HCL report + vTPM quote, then the SNP
//!   or TDX sequence on the hardware report); [`AzureFreshness`].
//! - `tdx_offline`: a TD quote's signature, QE report and PCK chain without
//!   collateral (Azure TDX, before dcap-qvl).
//! - `x509`: KDS certificate form, RSA-PSS, AMD extensions, CRLs, RFC 3339.
//! - `ecdsa`: P-384 report-signature verification with per-key tables.
//! - [`nitro`]: AWS Nitro Enclaves attestation documents (COSE_Sign1 from
//!   the NSM; AWS root or a pinned simulated NSM root).
//! - `roots`: compiled-in, pinned AMD, Intel and AWS Nitro roots.
//! - [`hex`]: lowercase hex and the policy's hex type.
//! - [`inputs`]: certificates and CRLs from PEM/DER files, for front ends.
//!
//! Check order (each its own function): TEE type allowed → evidence form →
//! signer → (SEV-SNP: the report against its endorsement key, signature
//! included, before any chain work) → vendor chain (signatures, validity,
//! CRL) → TCB → policy flags → measurement and other reference values →
//! REPORT_DATA. See `snp.rs` and `tdx.rs` for the full lists;
//! [`Appraiser::appraise_traced`] returns the checks actually made
//! ([`trace`]).
#![forbid(unsafe_code)]

mod azure;
pub mod claims;
pub mod collateral;
pub mod denial;
mod ecdsa;
pub mod hex;
pub mod inputs;
pub mod nitro;
pub mod policy;
mod roots;
mod snp;
mod snp_chain;
mod tdx;
mod tdx_image;
mod tdx_offline;
mod tdx_precheck;
pub mod time;
pub mod trace;
mod x509;

pub use azure::{extra_data_for_binding, AzureFreshness};
pub use claims::Claims;
pub use collateral::{Collateral, Source};
pub use denial::{Check, Denial};
pub use policy::{Policy, PolicyError};
pub use roots::RootPinError;
pub use tdx_precheck::{tdx_platform, TdxPlatform};
pub use trace::{Outcome, Trace};
pub use x509::parse_rfc3339;

use wire::{EvidenceBundle, Tee};

use crate::roots::Roots;
use crate::snp_chain::{ChainCache, Trust};

/// The appraiser: pinned roots plus a warm cache of verified SEV-SNP
/// chains (keyed by SHA-256 of the VCEK/VLEK DER), so that repeated
/// appraisals of evidence from the same platform verify only the report
/// signature. Share one per process (`Sync`).
pub struct Appraiser {
    roots: Roots,
    cache: ChainCache,
}

impl Appraiser {
    /// Loads the compiled-in roots, checking each against its pinned
    /// SHA-256.
    pub fn new() -> Result<Self, RootPinError> {
        Ok(Appraiser {
            roots: Roots::load()?,
            cache: ChainCache::new(),
        })
    }

    /// Appraises `bundle` against `policy` at the verifier's time
    /// `now_unix` (Unix seconds). `expected_report_data` is the REPORT_DATA
    /// the verifier recomputed with `tee_formats::binding::report_data`
    /// (nonce, enclave key, TLS exporter); `None` skips that check (offline
    /// inspection only: such claims are not bound to a session).
    /// `collateral` is what the verifier resolved itself (KDS/PCS, its cache,
    /// an offline directory); it takes precedence over the bundle's
    /// ([`collateral`] module). [`Collateral::none`] appraises the bundle's
    /// alone.
    pub fn appraise(
        &self,
        bundle: &EvidenceBundle,
        policy: &Policy,
        now_unix: i64,
        expected_report_data: Option<&[u8; 64]>,
        collateral: &Collateral,
    ) -> Result<Claims, Denial> {
        self.appraise_traced(bundle, policy, now_unix, expected_report_data, collateral)
            .0
    }

    /// [`Appraiser::appraise`], with the [`Trace`] of the checks it made:
    /// each in the order it ran, passed, skipped (with why) or, last, failed.
    pub fn appraise_traced(
        &self,
        bundle: &EvidenceBundle,
        policy: &Policy,
        now_unix: i64,
        expected_report_data: Option<&[u8; 64]>,
        collateral: &Collateral,
    ) -> (Result<Claims, Denial>, Trace) {
        let mut t = Trace::new();
        let result = self.appraise_into(
            bundle,
            policy,
            now_unix,
            expected_report_data,
            collateral,
            &mut t,
        );
        (result, t)
    }

    /// How many SEV-SNP chains this appraiser has verified (not taken from
    /// its warm cache): a forged report must not add to it.
    pub fn snp_chains_verified(&self) -> u64 {
        self.cache.builds()
    }

    fn appraise_into(
        &self,
        bundle: &EvidenceBundle,
        policy: &Policy,
        now_unix: i64,
        expected_report_data: Option<&[u8; 64]>,
        collateral: &Collateral,
        t: &mut Trace,
    ) -> Result<Claims, Denial> {
        match bundle.tee {
            Tee::Snp => {
                t.step(
                    &[Check::SnpNotAllowed],
                    check_allowed(policy.snp.allowed, Check::SnpNotAllowed, "snp"),
                )?;
                snp::appraise(
                    &self.roots,
                    &self.cache,
                    bundle,
                    policy,
                    Trust::Amd,
                    now_unix,
                    expected_report_data,
                    collateral,
                    t,
                )
            }
            Tee::Sim => {
                t.step(
                    &[Check::SimNotAllowed],
                    check_allowed(policy.sim.allowed, Check::SimNotAllowed, "sim"),
                )?;
                snp::appraise(
                    &self.roots,
                    &self.cache,
                    bundle,
                    policy,
                    Trust::Sim(&policy.sim.ark_sha256),
                    now_unix,
                    expected_report_data,
                    collateral,
                    t,
                )
            }
            Tee::Tdx => {
                t.step(
                    &[Check::TdxNotAllowed],
                    check_allowed(policy.tdx.allowed, Check::TdxNotAllowed, "tdx"),
                )?;
                tdx::appraise(
                    &self.roots,
                    bundle,
                    policy,
                    now_unix,
                    expected_report_data,
                    collateral,
                    t,
                )
            }
            Tee::Nitro => nitro::appraise_allowed(
                &self.roots,
                &bundle.evidence,
                policy,
                now_unix,
                &nitro::Binding {
                    report_data: expected_report_data,
                    ..nitro::Binding::default()
                },
                t,
            ),
            Tee::AzureSnp | Tee::AzureTdx => azure::appraise(
                self,
                bundle,
                policy,
                now_unix,
                expected_report_data.map(AzureFreshness::Binding),
                collateral,
                t,
            ),
        }
    }
}

/// One-shot appraisal with a fresh [`Appraiser`] (no warm cache). A root
/// failing its pin is reported as a denial of the root check.
pub fn appraise(
    bundle: &EvidenceBundle,
    policy: &Policy,
    now_unix: i64,
    expected_report_data: Option<&[u8; 64]>,
    collateral: &Collateral,
) -> Result<Claims, Denial> {
    let appraiser = Appraiser::new().map_err(|e| {
        let check = if e.name.starts_with("Intel") {
            Check::TdxPckChain
        } else {
            Check::SnpChainArk
        };
        Denial::new(
            check,
            e.to_string(),
            "compiled-in roots matching their pins",
            "the verifier build is corrupt; rebuild it",
        )
    })?;
    appraiser.appraise(bundle, policy, now_unix, expected_report_data, collateral)
}

pub(crate) fn check_allowed(allowed: bool, check: Check, tee: &str) -> Result<(), Denial> {
    if !allowed {
        return denial::deny(
            check,
            format!("{tee} evidence"),
            format!("{tee}.allowed = true in the policy"),
            if tee == "sim" {
                "simulated evidence proves nothing about the platform; only a development policy (sim.allowed = true, loaded by a verifier started with --dev) may accept it"
            } else {
                "this policy does not accept evidence from this TEE: set it in the policy, with its reference values"
            },
        );
    }
    Ok(())
}

/// [`check_report_data`], recorded in `t`: skipped when there is no
/// binding to compare (offline inspection).
pub(crate) fn check_report_data_traced(
    t: &mut Trace,
    got: &[u8; 64],
    want: Option<&[u8; 64]>,
) -> Result<(), Denial> {
    if want.is_none() {
        t.skip(
            Check::ReportData,
            "offline appraisal: no session binding to compare",
        );
        return Ok(());
    }
    t.step(&[Check::ReportData], check_report_data(got, want))
}

/// Compares all 64 bytes of REPORT_DATA with the recomputed binding, without
/// stopping at the first difference.
pub(crate) fn check_report_data(got: &[u8; 64], want: Option<&[u8; 64]>) -> Result<(), Denial> {
    let Some(want) = want else { return Ok(()) };
    let diff = got
        .iter()
        .zip(want.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return denial::deny(
            Check::ReportData,
            hex::encode(got),
            hex::encode(want),
            "REPORT_DATA is not SHA-512(tag ‖ nonce ‖ SHA-256(SPKI) ‖ exporter) of this session: stale nonce, other key, or relayed through another TLS connection",
        );
    }
    Ok(())
}
