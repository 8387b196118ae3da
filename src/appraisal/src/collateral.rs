//! [`Collateral`]: what the verifier resolved for one appraisal by itself
//! (fetched from AMD KDS / Intel PCS, read from its cache or from an offline
//! directory), passed to [`crate::Appraiser::appraise`] next to the bundle.
//! The appraisal stays pure: it never fetches; the verifier resolves first
//! (crate `collateral`) and hands the documents in.
//!
//! Precedence (issue 17): a piece the verifier resolved wins over the same
//! piece in the bundle (which the host, the adversary, supplied). A host
//! piece is used instead only when it verifies and is strictly newer (a CRL
//! with a later thisUpdate, a TCB info or QE identity with a later issueDate
//! or a higher tcbEvaluationDataNumber); then the claims say `bundle`.
//! Where the verifier has nothing (no network, no cache, CHIP_ID masked), the
//! bundle's pieces are appraised as before and the claims say so.
//!
//! The claims name the source of every piece ([`Source`]) and whether
//! revocation was checked.

use std::collections::BTreeMap;

use serde::Serialize;

/// Where a piece of collateral came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Fetched by the verifier for this appraisal.
    Fetched,
    /// From the verifier's on-disk cache (fetched earlier, still current).
    Cache,
    /// From the verifier's offline directory (air-gapped sites).
    Offline,
    /// Supplied by the host in the evidence bundle.
    Bundle,
}

impl Source {
    /// `"fetched"`, `"cache"`, `"offline"` or `"bundle"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Fetched => "fetched",
            Source::Cache => "cache",
            Source::Offline => "offline",
            Source::Bundle => "bundle",
        }
    }
}

/// One document and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece<T> {
    /// The document.
    pub value: T,
    /// Its source.
    pub source: Source,
}

impl<T> Piece<T> {
    /// A piece from `source`.
    pub fn new(value: T, source: Source) -> Self {
        Piece { value, source }
    }
}

/// A signed Intel JSON document (TCB info, QE identity) as PCS serves it:
/// the exact text of the signed object, its ECDSA P-256 signature (r‖s) and
/// the PEM issuer chain from the response header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedJson {
    /// The exact bytes of the `tcbInfo` / `enclaveIdentity` value.
    pub json: String,
    /// 64-byte r‖s.
    pub signature: Vec<u8>,
    /// PEM: signing certificate, then the root.
    pub issuer_chain: String,
}

/// An Intel CRL with the PEM issuer chain PCS sends with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCrl {
    /// DER.
    pub der: Vec<u8>,
    /// PEM: the issuing CA, then the root (empty for the root CA CRL).
    pub issuer_chain: String,
}

/// The TDX collateral pieces the verifier resolved (each optional: a piece
/// it could not get is taken from the bundle).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TdxCollateral {
    /// TCB info for the quote's FMSPC.
    pub tcb_info: Option<Piece<SignedJson>>,
    /// TD QE identity.
    pub qe_identity: Option<Piece<SignedJson>>,
    /// The PCK CRL of the quote's PCK CA (platform or processor).
    pub pck_crl: Option<Piece<IssuedCrl>>,
    /// The Intel SGX Root CA CRL.
    pub root_ca_crl: Option<Piece<Vec<u8>>>,
}

/// Everything the verifier resolved for one appraisal. `Default` is
/// "nothing": the bundle's collateral alone, as in offline inspection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collateral {
    /// SEV-SNP: the VCEK for the report's CHIP_ID and REPORTED_TCB (DER).
    pub snp_vcek: Option<Piece<Vec<u8>>>,
    /// SEV-SNP: the ARK-signed CRL of the report's product and key type (DER).
    pub snp_crl: Option<Piece<Vec<u8>>>,
    /// TDX pieces.
    pub tdx: TdxCollateral,
    /// Why a piece could not be resolved (`"VCEK: KDS answered 429"`): told
    /// in a denial for missing collateral, so the operator sees the cause.
    pub problems: Vec<String>,
}

impl Collateral {
    /// Nothing resolved: appraise the bundle's collateral only.
    pub fn none() -> Self {
        Collateral::default()
    }

    /// The problems, as one sentence for a denial's `got` (empty if none).
    pub(crate) fn problems_suffix(&self) -> String {
        if self.problems.is_empty() {
            String::new()
        } else {
            format!(
                "; the verifier could not resolve: {}",
                self.problems.join("; ")
            )
        }
    }
}

/// The `collateral` claim: the source of each piece used, and whether
/// revocation (a CRL current at the verifier's time) was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct CollateralClaims {
    /// Piece name (`vcek`, `vlek`, `crl`, `tcb_info`, `qe_identity`,
    /// `pck_crl`, `root_ca_crl`) → source.
    pub sources: BTreeMap<&'static str, Source>,
    /// True when a CRL signed by the vendor root was current and checked.
    pub revocation_checked: bool,
}
