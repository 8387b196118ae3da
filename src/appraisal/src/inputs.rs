//! Reading evidence inputs from files, for front ends (`enclavectl verify`):
//! certificates and CRLs in PEM or DER, with each certificate's role in the
//! SEV-SNP chain recognised from its subject name, and Azure vTPM evidence in
//! the JSON forms other attesters write ([`azure_evidence`]). Nothing here is
//! a check: the roles only tell the appraisal where to start, and it verifies
//! every certificate against its own pins.

use base64::Engine as _;
use wire::{Bytes, CertKind, Certificate, EvidenceBundle, Tee, TpmEvidence};

use crate::x509::Cert;

/// Why an input file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Not PEM, and not a DER certificate or CRL.
    #[error("not a PEM or DER {what}: {detail}")]
    Decode {
        /// `certificate` or `CRL`.
        what: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// A certificate whose role is not recognisable from its subject.
    #[error("cannot tell the role of certificate with subject CN {cn:?}; name it (vcek=, vlek=, ask=, asvk=, ark=)")]
    UnknownRole {
        /// Its CN.
        cn: String,
    },
    /// Azure evidence JSON in none of the known forms.
    #[error("Azure evidence: {detail}")]
    Azure {
        /// What is wrong, and where.
        detail: String,
    },
    /// Neither a COSE_Sign1 attestation document nor its base64 text.
    #[error("Nitro attestation document: {detail}")]
    Nitro {
        /// What is wrong.
        detail: String,
    },
}

/// A Nitro attestation document from a file: the raw COSE_Sign1 bytes (an
/// array of 4, `0x84`, or tag 18 first, `0xd2`) as they are, or base64 text
/// of them (standard alphabet, padding optional, surrounding whitespace and
/// line breaks ignored: the form the NSM's users publish). The size limit
/// is checked before decoding. Nothing is verified here.
pub fn nitro_document(bytes: &[u8]) -> Result<Vec<u8>, InputError> {
    let err = |detail: String| InputError::Nitro { detail };
    // base64 of a document within the parser's limit is at most 4/3 of it.
    let max_text = tee_formats::nitro::MAX_DOCUMENT / 3 * 4 + 4096;
    if bytes.len() > max_text {
        return Err(err(format!(
            "{} bytes, more than any document (at most {} bytes raw)",
            bytes.len(),
            tee_formats::nitro::MAX_DOCUMENT
        )));
    }
    if matches!(bytes.first(), Some(0x84 | 0xd2)) {
        return Ok(bytes.to_vec());
    }
    let text: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(
            text.strip_suffix(b"==")
                .or(text.strip_suffix(b"="))
                .unwrap_or(&text),
        )
        .map_err(|e| {
            err(format!(
                "neither COSE_Sign1 bytes (0x84 or 0xd2 first) nor base64 text: {e}"
            ))
        })?;
    if !matches!(decoded.first(), Some(0x84 | 0xd2)) {
        return Err(err(
            "base64 text that does not decode to a COSE_Sign1 (0x84 or 0xd2 first)".to_owned(),
        ));
    }
    Ok(decoded)
}

fn get<'a>(
    o: &'a serde_json::Map<String, serde_json::Value>,
    k: &str,
) -> Result<&'a serde_json::Value, InputError> {
    o.get(k)
        .ok_or_else(|| azure_err(format!("no tpm_quote.{k}")))
}

fn azure_err(detail: impl Into<String>) -> InputError {
    InputError::Azure {
        detail: detail.into(),
    }
}

/// Bytes of an Azure evidence field: an integer array (the legacy form),
/// or a string in `encoding` (`hex` or `base64url`).
fn azure_bytes(v: &serde_json::Value, field: &str, encoding: &str) -> Result<Vec<u8>, InputError> {
    match v {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|x| {
                x.as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(|| azure_err(format!("{field}: not an array of bytes")))
            })
            .collect(),
        serde_json::Value::String(s) if encoding == "hex" => {
            crate::hex::decode(s).ok_or_else(|| azure_err(format!("{field}: not hex")))
        }
        serde_json::Value::String(s) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('=').as_bytes())
            .map_err(|e| azure_err(format!("{field}: not base64url: {e}"))),
        _ => Err(azure_err(format!(
            "{field}: neither a byte array nor a string"
        ))),
    }
}

/// Azure vTPM evidence as an evidence bundle, from JSON in any of these forms:
///
/// - our evidence bundle (`"format":"enclave-init/evidence-bundle"`), as is;
/// - trustee's `az-snp-vtpm` / `az-tdx-vtpm` evidence: version 0 (no
///   `version`; `quote`/`tpm_quote` `{signature, message, pcrs}`, `report` /
///   `hcl_report`, `td_quote` as integer arrays, `vcek` PEM), version 1 and 2
///   (`"version":"1"|"2"`; the quote's fields hex, `hcl_report`, `vcek`
///   (DER) and `td_quote` base64url; version 2 is version 1 from a paravisor
///   that puts `user-data` in the variable data).
///
/// The raw RSASSA signature those forms carry becomes a TPMT_SIGNATURE
/// (RSASSA, SHA-256), which is what the vTPM returned before the attester
/// stripped it. The TEE type is read from the HCL report's report type.
pub fn azure_evidence(json: &[u8]) -> Result<EvidenceBundle, InputError> {
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| azure_err(format!("not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| azure_err("not a JSON object"))?;
    if obj.contains_key("format") {
        let b = EvidenceBundle::from_json(json)
            .map_err(|e| azure_err(format!("evidence bundle: {e}")))?;
        if !matches!(b.tee, Tee::AzureSnp | Tee::AzureTdx) {
            return Err(azure_err(format!(
                "a bundle of TEE type {}, not azure-snp or azure-tdx",
                b.tee.as_str()
            )));
        }
        return Ok(b);
    }
    let version = match obj.get("version") {
        None => 0,
        Some(serde_json::Value::String(s)) if s == "1" => 1,
        Some(serde_json::Value::String(s)) if s == "2" => 2,
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(1) => 1,
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(2) => 2,
        Some(other) => return Err(azure_err(format!("version {other} (known: absent, 1, 2)"))),
    };
    let known: &[&str] = &[
        "version",
        "quote",
        "tpm_quote",
        "report",
        "hcl_report",
        "vcek",
        "td_quote",
    ];
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(azure_err(format!("unknown field {k:?}")));
    }
    let text = if version == 0 { "array" } else { "hex" };
    let binary = if version == 0 { "array" } else { "base64url" };
    let quote = obj
        .get("tpm_quote")
        .or_else(|| obj.get("quote"))
        .ok_or_else(|| azure_err("no tpm_quote (or quote)"))?;
    let quote = quote
        .as_object()
        .ok_or_else(|| azure_err("tpm_quote is not an object"))?;
    if let Some(k) = quote
        .keys()
        .find(|k| !["signature", "message", "pcrs"].contains(&k.as_str()))
    {
        return Err(azure_err(format!("unknown tpm_quote field {k:?}")));
    }
    let signature = azure_bytes(get(quote, "signature")?, "tpm_quote.signature", text)?;
    let message = azure_bytes(get(quote, "message")?, "tpm_quote.message", text)?;
    let pcrs = get(quote, "pcrs")?
        .as_array()
        .ok_or_else(|| azure_err("tpm_quote.pcrs is not an array"))?
        .iter()
        .map(|p| azure_bytes(p, "tpm_quote.pcrs[]", text).map(Bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let hcl = obj
        .get("hcl_report")
        .or_else(|| obj.get("report"))
        .ok_or_else(|| azure_err("no hcl_report (or report)"))?;
    let hcl = azure_bytes(hcl, "hcl_report", binary)?;
    let td_quote = obj
        .get("td_quote")
        .map(|q| azure_bytes(q, "td_quote", binary))
        .transpose()?;
    let tee = match tee_formats::azure::HclReport::parse(&hcl).map(|h| h.report_type()) {
        Ok(tee_formats::azure::HclReportType::Tdx) => Tee::AzureTdx,
        Ok(tee_formats::azure::HclReportType::Snp) => Tee::AzureSnp,
        // A malformed report is the appraisal's to deny; guess the type.
        Err(_) if td_quote.is_some() => Tee::AzureTdx,
        Err(_) => Tee::AzureSnp,
    };
    let sig = tee_formats::tpm::Signature::RsaSsa {
        hash: tee_formats::tpm::ALG_SHA256,
        sig: signature,
    }
    .to_bytes()
    .map_err(|e| azure_err(format!("tpm_quote.signature: {e}")))?;
    let mut b = EvidenceBundle::new(tee, &format!("trustee-az-vtpm-v{version}"), hcl);
    b.tpm = Some(TpmEvidence {
        quote: Bytes(message),
        signature: Bytes(sig),
        pcrs,
        td_quote: td_quote.map(Bytes),
    });
    if let Some(vcek) = obj.get("vcek") {
        let der = match vcek.as_str() {
            Some(pem) if pem.contains("-----BEGIN") => pem.as_bytes().to_vec(),
            _ => azure_bytes(vcek, "vcek", binary)?,
        };
        b.certificates = certificates(&der)?;
    }
    Ok(b)
}

/// The DER documents of a PEM file with `label` blocks, or the file itself
/// if it is not PEM.
fn documents(bytes: &[u8], label: &str, what: &'static str) -> Result<Vec<Vec<u8>>, InputError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(vec![bytes.to_vec()]);
    };
    let begin = format!("-----BEGIN {label}-----");
    if !text.contains(&begin) {
        return Ok(vec![bytes.to_vec()]);
    }
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    for block in text.split_inclusive(&end).filter(|b| b.contains(&begin)) {
        let start = block.find(&begin).unwrap_or(0);
        let (l, der) =
            der::pem::decode_vec(&block.as_bytes()[start..]).map_err(|e| InputError::Decode {
                what,
                detail: e.to_string(),
            })?;
        if l != label {
            return Err(InputError::Decode {
                what,
                detail: format!("PEM label {l}"),
            });
        }
        out.push(der);
    }
    Ok(out)
}

/// The certificates of a PEM (one or more) or DER file, each with the role
/// its subject CN names: `SEV-VCEK` → VCEK, `SEV-VLEK` → VLEK,
/// `SEV-VLEK-<product>` → ASVK, `SEV-<product>` → ASK, `ARK-<product>` → ARK
/// (a `… SIMULATION` suffix, as sim-psp writes, is ignored).
pub fn certificates(bytes: &[u8]) -> Result<Vec<Certificate>, InputError> {
    documents(bytes, "CERTIFICATE", "certificate")?
        .into_iter()
        .map(|der| {
            let c = Cert::parse(&der).map_err(|detail| InputError::Decode {
                what: "certificate",
                detail,
            })?;
            let cn = c.subject_cn().unwrap_or_default();
            let base = cn.strip_suffix(" SIMULATION").unwrap_or(&cn);
            let kind = match base {
                "SEV-VCEK" => CertKind::Vcek,
                "SEV-VLEK" => CertKind::Vlek,
                b if b.starts_with("SEV-VLEK-") => CertKind::Asvk,
                b if b.starts_with("ARK-") => CertKind::Ark,
                b if b.starts_with("SEV-") => CertKind::Ask,
                _ => return Err(InputError::UnknownRole { cn }),
            };
            Ok(Certificate {
                kind,
                der: Bytes(der),
            })
        })
        .collect()
}

/// The CRLs of a PEM (`X509 CRL`, one or more) or DER file.
pub fn crls(bytes: &[u8]) -> Result<Vec<Vec<u8>>, InputError> {
    let docs = documents(bytes, "X509 CRL", "CRL")?;
    for d in &docs {
        <x509_cert::crl::CertificateList as der::Decode>::from_der(d).map_err(|e| {
            InputError::Decode {
                what: "CRL",
                detail: e.to_string(),
            }
        })?;
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_amd_bundles() {
        let mut pem = String::new();
        for der in [
            &include_bytes!("../roots/genoa_ask.der")[..],
            include_bytes!("../roots/genoa_ark.der"),
            include_bytes!("../roots/genoa_asvk.der"),
        ] {
            pem.push_str(
                &der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap(),
            );
        }
        let kinds: Vec<CertKind> = certificates(pem.as_bytes())
            .unwrap()
            .iter()
            .map(|c| c.kind)
            .collect();
        assert_eq!(kinds, vec![CertKind::Ask, CertKind::Ark, CertKind::Asvk]);
        let der = include_bytes!("../roots/milan_ark.der");
        assert_eq!(certificates(der).unwrap()[0].kind, CertKind::Ark);
        assert!(matches!(
            certificates(b"junk"),
            Err(InputError::Decode { .. })
        ));
        assert!(matches!(crls(b"junk"), Err(InputError::Decode { .. })));
    }
}
