//! The record of recently accepted evidence, one per platform, in the cache
//! directory (`DIR/evidence/<platform>.json`): what `enclavectl policy check`
//! re-appraises against a candidate policy, and what the verifier's TCB
//! report lists. Evidence and collateral are public (no secret, no personal
//! datum: reports, certificates, CRLs); each record holds the bundle as
//! appraised with the verifier's own collateral folded in, so re-appraising
//! it needs no network. Bounded: at most [`CAPACITY`] records, the oldest
//! dropped first.

use std::path::{Path, PathBuf};

use appraisal::Collateral;
use serde::{Deserialize, Serialize};
use wire::{Bytes, CertKind, Certificate, EvidenceBundle, Tee};

/// Records kept.
pub const CAPACITY: usize = 256;

/// One platform's last accepted evidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// `snp-<chip id>`, `tdx-<fmspc>-<pck>`, `sim-<chip id>`.
    pub platform: String,
    /// `snp`, `tdx`, `sim`.
    pub tee: String,
    /// When it was appraised (verifier time).
    pub seen_at: i64,
    /// The `tcb` claim then.
    pub tcb: serde_json::Value,
    /// The bundle, with the verifier's collateral folded in.
    pub bundle: serde_json::Value,
}

/// The store.
pub struct Store {
    dir: PathBuf,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[error("evidence store {path}: {why}")]
pub struct StoreError {
    /// The file or directory.
    pub path: String,
    /// What went wrong.
    pub why: String,
}

impl Store {
    /// The store under `cache_dir/evidence`.
    pub fn open(cache_dir: &Path) -> Result<Store, StoreError> {
        let dir = cache_dir.join("evidence");
        std::fs::create_dir_all(&dir).map_err(|e| StoreError {
            path: dir.display().to_string(),
            why: e.to_string(),
        })?;
        Ok(Store { dir })
    }

    /// Records the accepted `bundle` (appraised with `collateral`) and its
    /// claims at `now`.
    pub fn record(
        &self,
        bundle: &EvidenceBundle,
        collateral: &Collateral,
        claims: &serde_json::Map<String, serde_json::Value>,
        now: i64,
    ) -> Result<(), StoreError> {
        let Some(platform) = platform_key(bundle, claims) else {
            return Ok(());
        };
        let folded = fold(bundle, collateral);
        let rec = Record {
            platform: platform.clone(),
            tee: bundle.tee.as_str().to_owned(),
            seen_at: now,
            tcb: claims.get("tcb").cloned().unwrap_or_default(),
            bundle: serde_json::from_slice(&folded.to_json()).unwrap_or_default(),
        };
        let path = self.dir.join(format!("{platform}.json"));
        let err = |e: std::io::Error| StoreError {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        let bytes = serde_json::to_vec(&rec).map_err(|e| StoreError {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        self.trim();
        Ok(())
    }

    /// Every record, newest first.
    pub fn list(&self) -> Vec<Record> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<Record> = rd
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        v.sort_by(|a: &Record, b| b.seen_at.cmp(&a.seen_at).then(a.platform.cmp(&b.platform)));
        v
    }

    fn trim(&self) {
        let all = self.list();
        for r in all.iter().skip(CAPACITY) {
            let _ = std::fs::remove_file(self.dir.join(format!("{}.json", r.platform)));
        }
    }
}

/// The platform a bundle's evidence comes from (public identifiers only).
pub fn platform_key(
    bundle: &EvidenceBundle,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    let safe = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit()) && !s.is_empty();
    match bundle.tee {
        Tee::Snp | Tee::Sim => {
            let chip = claims.get("chip_id")?.as_str()?;
            if !safe(chip) {
                return None;
            }
            if chip.bytes().all(|b| b == b'0') {
                // CHIP_ID masked (VLEK): the endorsement key identifies the host.
                let vlek = bundle.certificate(CertKind::Vlek)?;
                return Some(format!(
                    "{}-vlek-{}",
                    bundle.tee.as_str(),
                    &sha256_hex(vlek)[..16]
                ));
            }
            Some(format!("{}-{chip}", bundle.tee.as_str()))
        }
        Tee::Tdx => {
            let fmspc = claims.get("tcb")?.get("fmspc")?.as_str()?;
            if !safe(fmspc) {
                return None;
            }
            Some(format!(
                "tdx-{fmspc}-{}",
                &sha256_hex(&bundle.evidence[..bundle.evidence.len().min(632)])[..16]
            ))
        }
        // Not recorded yet (see resolve.rs). Nitro: not recorded, by
        // design: a document's leaf certificate expires about 3 hours after
        // it is made, so a stored one cannot be re-appraised by `policy
        // check` later, and the NSM reports no TCB to follow.
        Tee::AzureSnp | Tee::AzureTdx | Tee::Nitro => None,
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The bundle with the verifier's pieces in place of (or beside) the host's.
pub fn fold(bundle: &EvidenceBundle, c: &Collateral) -> EvidenceBundle {
    let mut b = bundle.clone();
    if let Some(v) = &c.snp_vcek {
        b.certificates.retain(|x| x.kind != CertKind::Vcek);
        b.certificates.push(Certificate {
            kind: CertKind::Vcek,
            der: Bytes(v.value.clone()),
        });
    }
    if let Some(crl) = &c.snp_crl {
        b.crls.retain(|x| x.0 != crl.value);
        b.crls.insert(0, Bytes(crl.value.clone()));
    }
    let t = &c.tdx;
    if let (Some(tcb), Some(qe), Some(pck), Some(root)) =
        (&t.tcb_info, &t.qe_identity, &t.pck_crl, &t.root_ca_crl)
    {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        b.tdx_collateral = Some(serde_json::json!({
            "pck_crl_issuer_chain": pck.value.issuer_chain,
            "root_ca_crl": hex(&root.value),
            "pck_crl": hex(&pck.value.der),
            "tcb_info_issuer_chain": tcb.value.issuer_chain,
            "tcb_info": tcb.value.json,
            "tcb_info_signature": hex(&tcb.value.signature),
            "qe_identity_issuer_chain": qe.value.issuer_chain,
            "qe_identity": qe.value.json,
            "qe_identity_signature": hex(&qe.value.signature),
        }));
    }
    b
}
