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
//!   quote; `tdx_collateral` is the collateral JSON when the host supplies it;
//!   `event_log` is the firmware's CC event log (the CCEL log area, TCG
//!   crypto-agile format, trimmed of its padding) when the guest has one: the
//!   verifier replays it into RTMR0-3 and compares the kernel, initrd and
//!   command-line events with the policy. The field is absent (not `null`)
//!   when there is no log, so a bundle without one serialises as before.
//! - `sim`: `evidence` is an SNP-format report signed by the simulated PSP,
//!   certificates are the simulation chain. A distinct TEE type: no
//!   production policy accepts it.
//! - `azure-snp`, `azure-tdx` (Azure confidential VMs, where a paravisor
//!   holds the hardware report): `evidence` is the HCL report exactly as read
//!   from vTPM NV index `0x01400001` (padding included); `tpm` carries the
//!   vTPM quote: `quote` (TPMS_ATTEST as signed), `signature`
//!   (TPMT_SIGNATURE), `pcrs` (the 24 SHA-256 PCR values, PCR0 first) and,
//!   for `azure-tdx`, `td_quote` (the platform's TD quote of the TDREPORT in
//!   the HCL report). For `azure-snp`, `certificates` hold the VCEK (and
//!   ASK/ARK when the platform gives them); for `azure-tdx`,
//!   `tdx_collateral` is the collateral of the TD quote.
//!   `{"tee":"azure-snp",…,"evidence":"<base64 HCL report>",
//!   "tpm":{"quote":"…","signature":"…","pcrs":["…",…]}}`
//!
//! - `nitro` (AWS Nitro Enclaves): `evidence` is the attestation document
//!   exactly as `/dev/nsm` returned it (a COSE_Sign1, untagged or with tag
//!   18; ES384 over its CBOR payload). Its certificate chain is inside the
//!   document (`certificate`, `cabundle`), so `certificates` and `crls` are
//!   empty. `provider` is `nsm` (the device) or `sim-nsm` (the simulated
//!   NSM, development only: its documents chain to a simulation root that
//!   only a non-production policy pins).
//!   `{"tee":"nitro","provider":"nsm","evidence":"<base64 COSE_Sign1>"}`
//!
//! `tpm` is absent from every other bundle, whose JSON is unchanged by it.
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
    /// Azure confidential VM on SEV-SNP: HCL report + vTPM quote.
    #[serde(rename = "azure-snp")]
    AzureSnp,
    /// Azure confidential VM on TDX: HCL report + vTPM quote + TD quote.
    #[serde(rename = "azure-tdx")]
    AzureTdx,
    /// AWS Nitro Enclaves: the NSM's attestation document (COSE_Sign1).
    /// Documents of the simulated NSM are the same type: the appraisal
    /// tells them apart by the root their `cabundle` starts with.
    Nitro,
}

impl Tee {
    /// The name used in claims and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Tee::Snp => "snp",
            Tee::Tdx => "tdx",
            Tee::Sim => "sim",
            Tee::AzureSnp => "azure-snp",
            Tee::AzureTdx => "azure-tdx",
            Tee::Nitro => "nitro",
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
    /// TDX: the CC event log (CCEL log area), when the guest has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_log: Option<Bytes>,
    /// `azure-snp` / `azure-tdx`: the vTPM quote (and the TD quote); absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<TpmEvidence>,
}

/// The vTPM part of an Azure bundle (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpmEvidence {
    /// TPMS_ATTEST of the quote, the bytes the attestation key signed.
    pub quote: Bytes,
    /// TPMT_SIGNATURE of the quote.
    pub signature: Bytes,
    /// PCR values of the quote's selection (SHA-256 bank, PCR0..PCR23), in
    /// selection order.
    pub pcrs: Vec<Bytes>,
    /// `azure-tdx`: the TD quote (v4) of the HCL report's TDREPORT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub td_quote: Option<Bytes>,
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
            event_log: None,
            tpm: None,
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
            return Err(WireError::Format {
                got: b.format,
                want: FORMAT,
            });
        }
        if b.version != VERSION {
            return Err(WireError::Version {
                got: b.version,
                want: VERSION,
            });
        }
        Ok(b)
    }

    /// The first certificate of `kind`, if any.
    pub fn certificate(&self, kind: CertKind) -> Option<&[u8]> {
        self.certificates
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| &c.der[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EvidenceBundle {
        let mut b = EvidenceBundle::new(Tee::Snp, "sev-guest", vec![1, 2, 3]);
        b.certificates.push(Certificate {
            kind: CertKind::Vcek,
            der: Bytes(vec![0x30, 0x82]),
        });
        b
    }

    #[test]
    fn round_trips() {
        let b = sample();
        let json = b.to_json();
        assert!(std::str::from_utf8(&json)
            .unwrap()
            .contains("\"evidence\":\"AQID\""));
        assert_eq!(EvidenceBundle::from_json(&json).unwrap(), b);
        assert_eq!(b.certificate(CertKind::Vcek), Some(&[0x30, 0x82][..]));
        assert_eq!(b.certificate(CertKind::Ark), None);
    }

    #[test]
    fn event_log_is_optional_and_absent_when_none() {
        // A bundle without a log serialises exactly as before the field existed.
        let b = sample();
        let json = String::from_utf8(b.to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"format":"enclave-init/evidence-bundle","version":1,"tee":"snp","provider":"sev-guest","evidence":"AQID","certificates":[{"kind":"vcek","der":"MII="}],"crls":[],"tdx_collateral":null}"#
        );
        let mut t = EvidenceBundle::new(Tee::Tdx, "configfs-tsm", vec![9]);
        t.event_log = Some(Bytes(vec![0xff, 0x00]));
        let json = t.to_json();
        assert!(std::str::from_utf8(&json)
            .unwrap()
            .ends_with(r#""tdx_collateral":null,"event_log":"/wA="}"#));
        assert_eq!(EvidenceBundle::from_json(&json).unwrap(), t);
        let e = EvidenceBundle::from_json(
            String::from_utf8(json)
                .unwrap()
                .replace("/wA=", "%")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(e, WireError::Json(m) if m.contains("invalid base64")));
    }

    #[test]
    fn refuses_other_formats_versions_and_fields() {
        let json = String::from_utf8(sample().to_json()).unwrap();
        let e = EvidenceBundle::from_json(json.replace(FORMAT, "x").as_bytes()).unwrap_err();
        assert_eq!(
            e,
            WireError::Format {
                got: "x".into(),
                want: FORMAT
            }
        );
        let e =
            EvidenceBundle::from_json(json.replace("\"version\":1", "\"version\":2").as_bytes())
                .unwrap_err();
        assert_eq!(e, WireError::Version { got: 2, want: 1 });
        let e = EvidenceBundle::from_json(
            json.replace("\"tee\":\"snp\"", "\"tee\":\"sgx\"")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(e, WireError::Json(m) if m.contains("unknown variant `sgx`")));
        let e = EvidenceBundle::from_json(
            json.replace("{\"format\"", "{\"x\":1,\"format\"")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(e, WireError::Json(m) if m.contains("unknown field `x`")));
        let e = EvidenceBundle::from_json(json.replace("AQID", "!!").as_bytes()).unwrap_err();
        assert!(matches!(e, WireError::Json(m) if m.contains("invalid base64")));
    }

    #[test]
    fn bundles_without_tpm_evidence_keep_their_json() {
        // The exact form a v1 bundle had before the Azure field existed.
        let json = String::from_utf8(sample().to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"format":"enclave-init/evidence-bundle","version":1,"tee":"snp","provider":"sev-guest","evidence":"AQID","certificates":[{"kind":"vcek","der":"MII="}],"crls":[],"tdx_collateral":null}"#
        );
    }

    #[test]
    fn azure_bundles_round_trip_with_their_tpm_evidence() {
        let mut b = EvidenceBundle::new(Tee::AzureTdx, "azure-vtpm", vec![0x48, 0x43]);
        b.tpm = Some(TpmEvidence {
            quote: Bytes(vec![0xff, 0x54]),
            signature: Bytes(vec![0, 0x14]),
            pcrs: vec![Bytes(vec![0; 32]); 24],
            td_quote: Some(Bytes(vec![4, 0])),
        });
        let json = String::from_utf8(b.to_json()).unwrap();
        assert!(json.contains(r#""tee":"azure-tdx""#), "{json}");
        assert!(
            json.contains(r#""tpm":{"quote":"/1Q=","signature":"ABQ=","pcrs":["#),
            "{json}"
        );
        assert_eq!(EvidenceBundle::from_json(json.as_bytes()).unwrap(), b);
        assert_eq!(Tee::AzureSnp.as_str(), "azure-snp");
        let e = EvidenceBundle::from_json(json.replace(r#""td_quote""#, r#""x""#).as_bytes())
            .unwrap_err();
        assert!(matches!(e, WireError::Json(m) if m.contains("unknown field `x`")));
    }

    #[test]
    fn nitro_bundles_carry_the_document_alone() {
        let b = EvidenceBundle::new(Tee::Nitro, "nsm", vec![0x84, 0x44]);
        let json = String::from_utf8(b.to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"format":"enclave-init/evidence-bundle","version":1,"tee":"nitro","provider":"nsm","evidence":"hEQ=","certificates":[],"crls":[],"tdx_collateral":null}"#
        );
        assert_eq!(EvidenceBundle::from_json(json.as_bytes()).unwrap(), b);
        assert_eq!(Tee::Nitro.as_str(), "nitro");
    }
}
