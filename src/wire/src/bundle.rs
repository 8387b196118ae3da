//! The evidence bundle: one versioned, self-describing form carrying a
//! report or quote and everything needed to appraise it offline.
//!
//! ```json
//! {"format":"enclave-init/evidence-bundle","version":1,"tee":"snp",
//!  "provider":"sev-guest","evidence":"<base64 report>",
//!  "certificates":[{"kind":"vcek","der":"<base64>"},…],
//!  "crls":["<base64 DER CRL>"], "tdx_collateral":null}
//! ```
//!
//! - `snp`: `evidence` is the 1184-byte ATTESTATION_REPORT; certificates are
//!   the VCEK or VLEK and, when the platform provides them, ASK/ASVK and ARK.
//! - `tdx`: `evidence` is the quote (v4 or v5); its PCK chain is inside the
//!   quote; `tdx_collateral` is the collateral JSON when the host supplies it.
//! - `sim`: `evidence` is an SNP-format report signed by the simulated PSP,
//!   certificates are the simulation chain. A distinct TEE type: no
//!   production policy accepts it.
//!
//! The bundle is not trusted for anything: the verifier checks every
//! certificate against its own pinned roots. Its content only says where to
//! start.

use serde::{Deserialize, Serialize};

use crate::{Bytes, WireError};

/// The `format` value of a bundle.
pub const FORMAT: &str = "enclave-init/evidence-bundle";
/// The version this code writes and reads.
pub const VERSION: u32 = 1;

/// Which trusted execution environment produced the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tee {
    /// AMD SEV-SNP.
    Snp,
    /// Intel TDX.
    Tdx,
    /// The simulated PSP (development only).
    Sim,
}

impl Tee {
    /// The name used in claims and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Tee::Snp => "snp",
            Tee::Tdx => "tdx",
            Tee::Sim => "sim",
        }
    }
}

/// What a certificate in the bundle claims to be (the verifier checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertKind {
    /// Versioned Chip Endorsement Key (per chip and TCB).
    Vcek,
    /// Versioned Loaded Endorsement Key (per cloud provider).
    Vlek,
    /// AMD SEV Key (signs VCEKs).
    Ask,
    /// AMD SEV VLEK Key (signs VLEKs).
    Asvk,
    /// AMD Root Key.
    Ark,
}

/// A DER certificate and what it claims to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// Its role in the chain.
    pub kind: CertKind,
    /// DER bytes.
    pub der: Bytes,
}

/// The evidence bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBundle {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The TEE type.
    pub tee: Tee,
    /// Which guest interface produced it (`configfs-tsm`, `sev-guest`,
    /// `tdx-guest`, `coco-aa`, `sim-psp`): for diagnostics only.
    pub provider: String,
    /// The report or quote, as received from the hardware.
    pub evidence: Bytes,
    /// Certificates the platform supplied (may be empty).
    #[serde(default)]
    pub certificates: Vec<Certificate>,
    /// DER CRLs the platform supplied (may be empty).
    #[serde(default)]
    pub crls: Vec<Bytes>,
    /// TDX collateral, when the host supplies it.
    #[serde(default)]
    pub tdx_collateral: Option<serde_json::Value>,
}

impl EvidenceBundle {
    /// A bundle of this format and version.
    pub fn new(tee: Tee, provider: &str, evidence: Vec<u8>) -> EvidenceBundle {
        EvidenceBundle {
            format: FORMAT.to_owned(),
            version: VERSION,
            tee,
            provider: provider.to_owned(),
            evidence: Bytes(evidence),
            certificates: Vec::new(),
            crls: Vec::new(),
            tdx_collateral: None,
        }
    }

    /// Serializes to JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses and checks format and version.
    pub fn from_json(bytes: &[u8]) -> Result<EvidenceBundle, WireError> {
        let b: EvidenceBundle = crate::from_json(bytes)?;
        if b.format != FORMAT {
            return Err(WireError::Format { got: b.format, want: FORMAT });
        }
        if b.version != VERSION {
            return Err(WireError::Version { got: b.version, want: VERSION });
        }
        Ok(b)
    }

    /// The first certificate of `kind`, if any.
    pub fn certificate(&self, kind: CertKind) -> Option<&[u8]> {
        self.certificates.iter().find(|c| c.kind == kind).map(|c| &c.der[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EvidenceBundle {
        let mut b = EvidenceBundle::new(Tee::Snp, "sev-guest", vec![1, 2, 3]);
        b.certificates.push(Certificate { kind: CertKind::Vcek, der: Bytes(vec![0x30, 0x82]) });
        b
    }

    #[test]
    fn round_trips() {
        let b = sample();
        let json = b.to_json();
        assert!(std::str::from_utf8(&json).unwrap().contains("\"evidence\":\"AQID\""));
        assert_eq!(EvidenceBundle::from_json(&json).unwrap(), b);
        assert_eq!(b.certificate(CertKind::Vcek), Some(&[0x30, 0x82][..]));
        assert_eq!(b.certificate(CertKind::Ark), None);
    }

    #[test]
    fn refuses_other_formats_versions_and_fields() {
        let json = String::from_utf8(sample().to_json()).unwrap();
        let e = EvidenceBundle::from_json(json.replace(FORMAT, "x").as_bytes()).unwrap_err();
        assert_eq!(e, WireError::Format { got: "x".into(), want: FORMAT });
        let e = EvidenceBundle::from_json(json.replace("\"version\":1", "\"version\":2").as_bytes()).unwrap_err();
        assert_eq!(e, WireError::Version { got: 2, want: 1 });
        let e = EvidenceBundle::from_json(json.replace("\"tee\":\"snp\"", "\"tee\":\"sgx\"").as_bytes()).unwrap_err();
        assert!(matches!(e, WireError::Json(m) if m.contains("unknown variant `sgx`")));
        let e = EvidenceBundle::from_json(json.replace("{\"format\"", "{\"x\":1,\"format\"").as_bytes()).unwrap_err();
        assert!(matches!(e, WireError::Json(m) if m.contains("unknown field `x`")));
        let e = EvidenceBundle::from_json(json.replace("AQID", "!!").as_bytes()).unwrap_err();
        assert!(matches!(e, WireError::Json(m) if m.contains("invalid base64")));
    }
}
