//! The SEV-SNP endorsement chain ARK → ASK/ASVK → VCEK/VLEK, and the warm
//! cache of verified chains.
//!
//! Trust: for real SNP the ARK, ASK and ASVK are the compiled-in, pinned
//! certificates of the product ([`crate::roots`]); certificates in the
//! bundle are only compared with them. For simulation the ARK comes from the
//! bundle and is trusted only if its SHA-256 is pinned by the policy
//! (`sim.ark_sha256`); everything after that is the same code.
//!
//! Split: [`verify_chain`] does the work that depends only on the bytes
//! (form, names, signatures, CRL signatures and revocation lists) and yields
//! a [`VerifiedChain`] that the cache keeps, keyed by SHA-256 of the
//! VCEK/VLEK DER. [`VerifiedChain::check_time_and_crl`] does the part that
//! depends on the verifier's time and on the policy's CRL mode, on every
//! appraisal. The order of denials is the same warm or cold.
//!
//! Collateral precedence ([`crate::collateral`]): the endorsement key comes
//! from the verifier when it fetched one, else from the bundle; the CRL the
//! verifier resolved is checked (it must verify), and a bundle CRL replaces
//! it only when that one verifies too and has a later thisUpdate. Without a
//! CRL from the verifier, the bundle's CRLs are checked as before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tee_formats::snp::Generation;
use wire::{CertKind, EvidenceBundle};

use crate::collateral::{Piece, Source};
use crate::denial::{deny, Check, Denial};
use crate::ecdsa::PreparedKey;
use crate::hex::{self, Hex};
use crate::policy::{CrlMode, Signer};
use crate::roots::Roots;
use crate::x509::{self, Cert, CrlOutcome, VekExtensions};

/// Where the ARK's trust comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Trust<'p> {
    /// The compiled-in AMD roots.
    Amd,
    /// An ARK from the bundle whose SHA-256 is one of these (policy `sim.ark_sha256`).
    Sim(&'p [Hex<32>]),
}

/// What the bundle's CRLs said, decided once per chain.
#[derive(Debug, Clone)]
enum CrlState {
    /// No CRL issued by the ARK.
    Absent,
    /// A CRL is malformed or its signature fails.
    Invalid(String),
    /// A CRL revokes the intermediate or the endorsement key.
    Revoked(String),
    /// Verified CRLs: latest thisUpdate, earliest nextUpdate, and where the
    /// CRL came from.
    Verified {
        this_update: i64,
        next_update: i64,
        source: Source,
    },
}

/// A chain whose signatures and form verified.
pub(crate) struct VerifiedChain {
    /// Which key the chain ends in.
    pub signer: Signer,
    /// The product whose chain it is (productName, or the report's CPUID).
    pub product: Generation,
    /// The endorsement key's AMD extensions.
    pub ext: VekExtensions,
    /// The endorsement key, prepared for report signatures.
    pub key: PreparedKey,
    /// Whether the ARK was the simulation pin.
    sim: bool,
    ark_sha256: [u8; 32],
    ark_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    crl_ders: Vec<Vec<u8>>,
    verifier_crl: Option<Vec<u8>>,
    /// `(name, notBefore, notAfter)` of ARK, intermediate, endorsement key.
    validity: [(String, i64, i64); 3],
    crl: CrlState,
}

impl VerifiedChain {
    /// Whether this cached chain is the one `bundle` (with the verifier's
    /// CRL) would verify to under `trust`.
    fn matches(
        &self,
        bundle: &EvidenceBundle,
        signer: Signer,
        trust: Trust<'_>,
        verifier_crl: Option<&Piece<Vec<u8>>>,
    ) -> bool {
        let trust_ok = match trust {
            Trust::Amd => !self.sim,
            Trust::Sim(pins) => self.sim && pins.iter().any(|p| p.0 == self.ark_sha256),
        };
        let same = |kind: CertKind, der: &[u8]| bundle.certificate(kind).is_none_or(|b| b == der);
        trust_ok
            && self.verifier_crl.as_deref() == verifier_crl.map(|p| &p.value[..])
            && self.signer == signer
            && same(CertKind::Ark, &self.ark_der)
            && same(intermediate_kind(signer), &self.intermediate_der)
            && bundle.crls.len() == self.crl_ders.len()
            && bundle
                .crls
                .iter()
                .zip(&self.crl_ders)
                .all(|(a, b)| a[..] == b[..])
    }

    /// The source of the CRL this chain was checked against, if any.
    pub fn crl_source(&self) -> Option<Source> {
        match self.crl {
            CrlState::Verified { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Certificate validity at `now`, then the CRL verdict under `mode`.
    /// `why_absent` completes a denial for a missing CRL (why the verifier
    /// could not fetch one).
    pub fn check_time_and_crl(
        &self,
        now: i64,
        mode: CrlMode,
        why_absent: &str,
    ) -> Result<(), Denial> {
        for (name, not_before, not_after) in &self.validity {
            if now < *not_before || now > *not_after {
                return deny(
                    Check::SnpCertValidity,
                    format!(
                        "{name} valid {} .. {}, verifier time {}",
                        x509::rfc3339(*not_before),
                        x509::rfc3339(*not_after),
                        x509::rfc3339(now)
                    ),
                    format!("{name} valid at the verifier's time"),
                    "fetch a current certificate from AMD KDS (a VLEK is valid for one year)",
                );
            }
        }
        match &self.crl {
            CrlState::Absent => match mode {
                CrlMode::Require => deny(
                    Check::SnpCrlUnavailable,
                    format!("no CRL issued by the ARK, from the verifier or in the bundle{why_absent}"),
                    "the ARK-signed CRL (policy snp.crl = \"require\")",
                    "let the verifier reach AMD KDS (--kds-url) or give it an offline directory (--collateral-offline) holding /vcek/v1/{product}/crl (or /vlek/…), or set snp.crl = \"if-present\" in the policy to accept evidence without revocation checking",
                ),
                CrlMode::IfPresent => {
                    log::warn!(
                        "SEV-SNP chain appraised without a CRL: revocation of the ASK/ASVK not checked (policy snp.crl = \"if-present\")"
                    );
                    Ok(())
                }
            },
            CrlState::Invalid(why) => deny(
                Check::SnpCrlInvalid,
                why.clone(),
                "a well-formed CRL signed by the ARK",
                "supply the CRL exactly as AMD KDS serves it",
            ),
            CrlState::Revoked(what) => deny(
                Check::SnpCrlRevoked,
                what.clone(),
                "no certificate of the chain revoked",
                "the platform's endorsement chain is revoked; do not trust it",
            ),
            CrlState::Verified {
                this_update,
                next_update,
                ..
            } => {
                if now < *this_update || now > *next_update {
                    return deny(
                        Check::SnpCrlInvalid,
                        format!(
                            "CRL valid {} .. {}, verifier time {}",
                            x509::rfc3339(*this_update),
                            x509::rfc3339(*next_update),
                            x509::rfc3339(now)
                        ),
                        "a CRL current at the verifier's time",
                        "fetch a fresh CRL from AMD KDS",
                    );
                }
                Ok(())
            }
        }
    }
}

fn intermediate_kind(signer: Signer) -> CertKind {
    match signer {
        Signer::Vcek => CertKind::Ask,
        Signer::Vlek => CertKind::Asvk,
    }
}

/// Cache of verified chains, keyed by SHA-256 of the VCEK/VLEK DER.
/// Bounded: each entry holds its key's table (about 210 KB), so at most
/// [`CACHE_CAPACITY`] entries (about 54 MB); when full it is emptied. Chains
/// are cheap to re-verify, and a peer that floods it with distinct
/// certificates only costs itself the chain verifications.
pub(crate) struct ChainCache {
    map: Mutex<HashMap<[u8; 32], Arc<VerifiedChain>>>,
    /// Chains verified (cache misses that reached [`verify_chain`]): what a
    /// forged report must not cost.
    builds: AtomicU64,
}

/// Entries before the cache is emptied.
const CACHE_CAPACITY: usize = 256;

impl ChainCache {
    /// An empty cache.
    pub fn new() -> Self {
        ChainCache {
            map: Mutex::new(HashMap::new()),
            builds: AtomicU64::new(0),
        }
    }

    /// How many chains were verified since the cache was made.
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// The cached chain for `bundle` with endorsement key `vek_der`, if one
    /// was verified before for the same certificates, CRLs and trust.
    pub fn get(
        &self,
        bundle: &EvidenceBundle,
        vek_der: &[u8],
        signer: Signer,
        trust: Trust<'_>,
        verifier_crl: Option<&Piece<Vec<u8>>>,
    ) -> Option<Arc<VerifiedChain>> {
        let key: [u8; 32] = Sha256::digest(vek_der).into();
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&key)
            .filter(|c| c.matches(bundle, signer, trust, verifier_crl))
            .map(Arc::clone)
    }

    /// The verified chain for `bundle` with endorsement key `vek_der` (the
    /// verifier's or the bundle's, see [`vek_der`]) and the verifier's CRL,
    /// from the cache or verified now.
    #[allow(clippy::too_many_arguments)]
    pub fn get_or_verify(
        &self,
        roots: &Roots,
        bundle: &EvidenceBundle,
        vek_der: &[u8],
        signer: Signer,
        trust: Trust<'_>,
        report_product: Option<Generation>,
        verifier_crl: Option<&Piece<Vec<u8>>>,
    ) -> Result<Arc<VerifiedChain>, Denial> {
        if let Some(c) = self.get(bundle, vek_der, signer, trust, verifier_crl) {
            return Ok(c);
        }
        self.builds.fetch_add(1, Ordering::Relaxed);
        let chain = Arc::new(verify_chain(
            roots,
            bundle,
            vek_der,
            signer,
            trust,
            report_product,
            verifier_crl,
        )?);
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= CACHE_CAPACITY {
            map.clear();
        }
        map.insert(Sha256::digest(vek_der).into(), Arc::clone(&chain));
        Ok(chain)
    }
}

/// The bundle's endorsement key certificate for `signer`.
pub(crate) fn vek_der(bundle: &EvidenceBundle, signer: Signer) -> Result<&[u8], Denial> {
    let kind = match signer {
        Signer::Vcek => CertKind::Vcek,
        Signer::Vlek => CertKind::Vlek,
    };
    bundle.certificate(kind).ok_or_else(|| {
        let present: Vec<String> = bundle
            .certificates
            .iter()
            .map(|c| format!("{:?}", c.kind).to_lowercase())
            .collect();
        Denial::new(
            Check::SnpVekMissing,
            format!("certificates: [{}]", present.join(", ")),
            format!(
                "a {} certificate (the report's KEY_INFO names it)",
                signer.as_str()
            ),
            "include the endorsement key certificate (configfs-tsm auxblob or KDS) in the bundle",
        )
    })
}

/// What the endorsement key certificate says, read without its chain: its
/// key, extensions and product, by the same tests [`verify_chain`] makes
/// first (form, then productName or the report's CPUID). It lets the
/// report be checked against the certificate (product, TCB, chip id,
/// signature) before any chain work; nothing in it is trusted until the
/// chain verifies. `None`: the chain's own form or product check will
/// deny the certificate.
pub(crate) struct VekPreview {
    pub key: p384::PublicKey,
    pub ext: VekExtensions,
    pub product: Generation,
}

pub(crate) fn vek_preview(
    vek_der: &[u8],
    signer: Signer,
    trust: Trust<'_>,
    report_product: Option<Generation>,
) -> Option<VekPreview> {
    let vek_name = vek_name(signer);
    let vek = Cert::parse(vek_der).ok()?;
    let (amd_cn, sim_cn) = (
        format!("SEV-{vek_name}"),
        format!("SEV-{vek_name} SIMULATION"),
    );
    let cns: &[&str] = match trust {
        Trust::Amd => &[&amd_cn],
        Trust::Sim(_) => &[&amd_cn, &sim_cn],
    };
    let key = x509::check_vek_form(&vek, cns).ok()?;
    let ext = x509::vek_extensions(&vek).ok()?;
    let product = match &ext.product_name {
        Some(name) => product_from_name(name)?,
        None => report_product?,
    };
    Some(VekPreview { key, ext, product })
}

fn vek_name(signer: Signer) -> &'static str {
    match signer {
        Signer::Vcek => "VCEK",
        Signer::Vlek => "VLEK",
    }
}

fn form(name: &str, why: String) -> Denial {
    Denial::new(
        Check::SnpCertForm,
        format!("{name}: {why}"),
        format!("{name} in AMD KDS form"),
        "supply the certificate exactly as AMD KDS serves it",
    )
}

/// The product named by a productName extension (`Milan-B0` → Milan).
fn product_from_name(name: &str) -> Option<Generation> {
    match name.split('-').next() {
        Some("Milan") => Some(Generation::Milan),
        Some("Genoa") => Some(Generation::Genoa),
        Some("Turin") => Some(Generation::Turin),
        Some("Venice") => Some(Generation::Venice),
        _ => None,
    }
}

/// Verifies everything about the chain that does not depend on time or policy.
fn verify_chain(
    roots: &Roots,
    bundle: &EvidenceBundle,
    vek_der: &[u8],
    signer: Signer,
    trust: Trust<'_>,
    report_product: Option<Generation>,
    verifier_crl: Option<&Piece<Vec<u8>>>,
) -> Result<VerifiedChain, Denial> {
    let vek_name = vek_name(signer);
    // 1. The endorsement key certificate's form and extensions.
    let vek = Cert::parse(vek_der).map_err(|e| form(vek_name, e))?;
    // sim-psp marks its certificates (`SEV-VCEK SIMULATION`); AMD's never are.
    let amd_cn = format!("SEV-{vek_name}");
    let sim_cn = format!("SEV-{vek_name} SIMULATION");
    let cns: &[&str] = match trust {
        Trust::Amd => &[&amd_cn],
        Trust::Sim(_) => &[&amd_cn, &sim_cn],
    };
    let vek_key = x509::check_vek_form(&vek, cns).map_err(|e| form(vek_name, e))?;
    let ext = x509::vek_extensions(&vek).map_err(|e| form(vek_name, e))?;
    match (signer, &ext.hw_id) {
        (Signer::Vcek, None) => return Err(form(vek_name, "no hwID extension".into())),
        (Signer::Vlek, Some(_)) => {
            return Err(form(vek_name, "a VLEK must not carry a hwID".into()))
        }
        _ => {}
    }
    if signer == Signer::Vcek && ext.csp_id.is_some() {
        return Err(form(vek_name, "a VCEK must not carry a csp_id".into()));
    }

    // 2. The product: productName, else the report's CPUID.
    let product = match (&ext.product_name, report_product) {
        (Some(name), _) => product_from_name(name).ok_or_else(|| {
            Denial::new(
                Check::SnpProduct,
                format!("{vek_name} productName {name:?}"),
                "Milan, Genoa or Turin",
                "this verifier pins no chain for that product",
            )
        })?,
        (None, Some(p)) => p,
        (None, None) => {
            return deny(
                Check::SnpProduct,
                format!("{vek_name} without productName and a version 2 report without CPUID"),
                "a product from the certificate or the report",
                "use a report of version 3 or later, or a VCEK with productName",
            )
        }
    };

    // 3. The ARK: pinned (AMD) or pinned by fingerprint (simulation).
    let (ark_der, intermediate_der): (&[u8], &[u8]) = match trust {
        Trust::Amd => {
            let r = roots.amd(product).ok_or_else(|| {
                Denial::new(
                    Check::SnpProduct,
                    format!("product {product}"),
                    "Milan, Genoa or Turin",
                    "no AMD chain is pinned for this product",
                )
            })?;
            let pinned_int = match signer {
                Signer::Vcek => r.ask,
                Signer::Vlek => r.asvk,
            };
            if let Some(b) = bundle.certificate(CertKind::Ark) {
                if b != r.ark {
                    return deny(
                        Check::SnpChainArk,
                        format!("bundle ARK SHA-256 {}", hex::encode(&Sha256::digest(b))),
                        format!("the pinned ARK-{product}, SHA-256 {}", hex::encode(&Sha256::digest(r.ark))),
                        "the host supplied a root that is not AMD's; a supplied root is only ever compared, never trusted",
                    );
                }
            }
            if let Some(b) = bundle.certificate(intermediate_kind(signer)) {
                if b != pinned_int {
                    return deny(
                        Check::SnpChainIntermediate,
                        format!(
                            "bundle {} SHA-256 {}",
                            intermediate_name(signer),
                            hex::encode(&Sha256::digest(b))
                        ),
                        format!(
                            "the pinned {} of {product}, SHA-256 {}",
                            intermediate_name(signer),
                            hex::encode(&Sha256::digest(pinned_int))
                        ),
                        "supply the intermediate AMD KDS serves for this product, or none",
                    );
                }
            }
            (r.ark, pinned_int)
        }
        Trust::Sim(pins) => {
            let ark = bundle.certificate(CertKind::Ark).ok_or_else(|| {
                Denial::new(
                    Check::SnpChainArk,
                    "no ARK in the bundle",
                    "the simulated PSP's ARK",
                    "sim-psp bundles carry their ARK",
                )
            })?;
            let fp: [u8; 32] = Sha256::digest(ark).into();
            if !pins.iter().any(|p| p.0 == fp) {
                return deny(
                    Check::SnpChainArk,
                    format!("ARK SHA-256 {}", hex::encode(&fp)),
                    format!("sim.ark_sha256 {}", hex::list(pins)),
                    "pin this simulator's ARK in the policy, if you mean to trust it",
                );
            }
            let int = bundle
                .certificate(intermediate_kind(signer))
                .ok_or_else(|| {
                    Denial::new(
                        Check::SnpChainIntermediate,
                        format!("no {} in the bundle", intermediate_name(signer)),
                        format!("the simulated PSP's {}", intermediate_name(signer)),
                        "sim-psp bundles carry their intermediate",
                    )
                })?;
            (ark, int)
        }
    };
    let ark = Cert::parse(ark_der).map_err(|e| form("ARK", e))?;
    let ark_key = x509::check_ca_form(&ark).map_err(|e| form("ARK", e))?;
    x509::verify_issued_by(&ark, &ark, &ark_key).map_err(|e| {
        Denial::new(
            Check::SnpChainArk,
            format!("ARK self-signature: {e}"),
            "a self-signed ARK",
            "the root certificate is corrupt",
        )
    })?;

    // 4. ARK → ASK/ASVK.
    let int_name = intermediate_name(signer);
    let int = Cert::parse(intermediate_der).map_err(|e| form(int_name, e))?;
    let int_key = x509::check_ca_form(&int).map_err(|e| form(int_name, e))?;
    x509::verify_issued_by(&int, &ark, &ark_key).map_err(|e| {
        Denial::new(
            Check::SnpChainIntermediate,
            format!("ARK → {int_name}: {e}"),
            format!("{int_name} signed by the ARK"),
            "the intermediate is not the ARK's",
        )
    })?;

    // 5. ASK/ASVK → VCEK/VLEK.
    x509::verify_issued_by(&vek, &int, &int_key).map_err(|e| {
        Denial::new(
            Check::SnpChainVek,
            format!("{int_name} → {vek_name}: {e}"),
            format!("{vek_name} signed by the {product} {int_name}"),
            "the endorsement key certificate is not AMD's (or is for another product or key type)",
        )
    })?;

    // 6. CRLs issued by the ARK: signature and revocation; time is checked per appraisal.
    let crl = crl_state(
        bundle,
        verifier_crl,
        &ark,
        &ark_key,
        &int,
        &vek,
        int_name,
        vek_name,
    );

    let name = |c: &Cert<'_>, fallback: &str| c.subject_cn().unwrap_or_else(|| fallback.to_owned());
    let (a, i, v) = (ark.validity(), int.validity(), vek.validity());
    Ok(VerifiedChain {
        signer,
        product,
        key: PreparedKey::new(&vek_key),
        sim: matches!(trust, Trust::Sim(_)),
        ark_sha256: Sha256::digest(ark_der).into(),
        ark_der: ark_der.to_vec(),
        intermediate_der: intermediate_der.to_vec(),
        crl_ders: bundle.crls.iter().map(|c| c.0.clone()).collect(),
        verifier_crl: verifier_crl.map(|p| p.value.clone()),
        validity: [
            (name(&ark, "ARK"), a.0, a.1),
            (name(&int, int_name), i.0, i.1),
            (name(&vek, vek_name), v.0, v.1),
        ],
        crl,
        ext,
    })
}

fn intermediate_name(signer: Signer) -> &'static str {
    match signer {
        Signer::Vcek => "ASK",
        Signer::Vlek => "ASVK",
    }
}

#[allow(clippy::too_many_arguments)]
fn crl_state(
    bundle: &EvidenceBundle,
    verifier_crl: Option<&Piece<Vec<u8>>>,
    ark: &Cert<'_>,
    ark_key: &rsa::RsaPublicKey,
    int: &Cert<'_>,
    vek: &Cert<'_>,
    int_name: &str,
    vek_name: &str,
) -> CrlState {
    let revoked = |c: &x509::VerifiedCrl| -> Option<CrlState> {
        if c.revoked.iter().any(|s| s == int.serial()) {
            return Some(CrlState::Revoked(format!(
                "{int_name} serial {} is on the ARK's CRL",
                hex::encode(int.serial())
            )));
        }
        if c.revoked.iter().any(|s| s == vek.serial()) {
            return Some(CrlState::Revoked(format!(
                "{vek_name} serial {} is on the ARK's CRL",
                hex::encode(vek.serial())
            )));
        }
        None
    };
    // The verifier's own CRL first: it must verify. A CRL of another ARK
    // (resolved for another product) is not this chain's and is ignored.
    let mut chosen: Option<(x509::VerifiedCrl, Source)> = None;
    if let Some(v) = verifier_crl {
        match x509::check_crl(&v.value, ark, ark_key) {
            Err(e) => {
                return CrlState::Invalid(format!(
                    "the CRL the verifier got ({}): {e}",
                    v.source.as_str()
                ))
            }
            Ok(CrlOutcome::OtherIssuer) => {}
            Ok(CrlOutcome::Verified(c)) => chosen = Some((c, v.source)),
        }
    }
    if let Some((mut best, mut source)) = chosen {
        // A host CRL replaces it only if it verifies and is strictly newer;
        // one that does not verify is ignored (the verifier has its own).
        for der in &bundle.crls {
            if let Ok(CrlOutcome::Verified(c)) = x509::check_crl(der, ark, ark_key) {
                if c.this_update > best.this_update {
                    best = c;
                    source = Source::Bundle;
                } else if c.this_update < best.this_update {
                    log::info!("host-supplied SEV-SNP CRL ignored: older than the verifier's");
                }
            }
        }
        return revoked(&best).unwrap_or(CrlState::Verified {
            this_update: best.this_update,
            next_update: best.next_update,
            source,
        });
    }
    let mut window: Option<(i64, i64)> = None;
    for (n, der) in bundle.crls.iter().enumerate() {
        match x509::check_crl(der, ark, ark_key) {
            Err(e) => return CrlState::Invalid(format!("CRL {n}: {e}")),
            Ok(CrlOutcome::OtherIssuer) => {}
            Ok(CrlOutcome::Verified(c)) => {
                if let Some(r) = revoked(&c) {
                    return r;
                }
                window = Some(match window {
                    None => (c.this_update, c.next_update),
                    Some((t, n)) => (t.max(c.this_update), n.min(c.next_update)),
                });
            }
        }
    }
    match window {
        None => CrlState::Absent,
        Some((this_update, next_update)) => CrlState::Verified {
            this_update,
            next_update,
            source: Source::Bundle,
        },
    }
}
