//! Reading evidence inputs from files, for front ends (`enclavectl verify`):
//! certificates and CRLs in PEM or DER, with each certificate's role in the
//! SEV-SNP chain recognised from its subject name. Nothing here is a check:
//! the roles only tell the appraisal where to start, and it verifies every
//! certificate against its own pins.

use wire::{Bytes, CertKind, Certificate};

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
