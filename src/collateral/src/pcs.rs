//! Intel PCS v4 (or a PCCS, same paths) documents for TDX: URLs, validity
//! extractors, and the conversion of the responses into the pieces the
//! appraisal takes (`tee-formats.md` §3.4; dcap-qvl `src/collateral.rs`).
//!
//! | document | URL (base `https://api.trustedservices.intel.com`) | kept header |
//! |---|---|---|
//! | TCB info | `/tdx/certification/v4/tcb?fmspc={FMSPC}` → `{"tcbInfo":{…},"signature":"<hex>"}` | `TCB-Info-Issuer-Chain` (or `SGX-TCB-Info-Issuer-Chain`) |
//! | QE identity | `/tdx/certification/v4/qe/identity` → `{"enclaveIdentity":{…},"signature":"<hex>"}` | `SGX-Enclave-Identity-Issuer-Chain` |
//! | PCK CRL | `/sgx/certification/v4/pckcrl?ca={platform,processor}&encoding=der` (DER) | `SGX-PCK-CRL-Issuer-Chain` |
//! | root CA CRL | `https://certificates.trustedservices.intel.com/IntelSGXRootCA.der` (PCCS: `{base}/sgx/certification/v4/rootcacrl`, hex) | — |
//!
//! Issuer chains are URL-encoded PEM. The signed bytes of the TCB info and
//! QE identity are the exact text of the `tcbInfo` / `enclaveIdentity`
//! value in the body, so it is cut out as received, never re-serialised.

use appraisal::collateral::{IssuedCrl, SignedJson};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::cache::{Entry, Spec, Validity};

/// Intel's PCS.
pub const PCS_BASE: &str = "https://api.trustedservices.intel.com";
/// Intel's root CA CRL (the URL in the root certificate's CRL distribution point).
pub const ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";

const TCB_CHAIN: &[&str] = &["tcb-info-issuer-chain", "sgx-tcb-info-issuer-chain"];
const QE_CHAIN: &[&str] = &["sgx-enclave-identity-issuer-chain"];
const PCK_CHAIN: &[&str] = &["sgx-pck-crl-issuer-chain"];

/// TCB info of `fmspc` (6 bytes).
pub fn tcb_info(base: &str, fmspc: &[u8; 6]) -> Spec {
    let f: String = fmspc.iter().map(|b| format!("{b:02X}")).collect();
    Spec {
        url: format!("{base}/tdx/certification/v4/tcb?fmspc={f}"),
        keep_headers: TCB_CHAIN,
        validity: |b, h| signed_validity(b, h, "tcbInfo"),
    }
}

/// The TD QE identity.
pub fn qe_identity(base: &str) -> Spec {
    Spec {
        url: format!("{base}/tdx/certification/v4/qe/identity"),
        keep_headers: QE_CHAIN,
        validity: |b, h| signed_validity(b, h, "enclaveIdentity"),
    }
}

/// The PCK CRL of `ca` (`platform` or `processor`).
pub fn pck_crl(base: &str, ca: &str) -> Spec {
    Spec {
        url: format!("{base}/sgx/certification/v4/pckcrl?ca={ca}&encoding=der"),
        keep_headers: PCK_CHAIN,
        validity: |b, h| {
            if first(h, PCK_CHAIN).is_none() {
                return Err("no SGX-PCK-CRL-Issuer-Chain header".into());
            }
            crate::kds::crl_validity(&crl_der(b)?, h)
        },
    }
}

/// The root CA CRL at `url` (Intel's, or a PCCS's `…/rootcacrl`).
pub fn root_ca_crl(url: &str) -> Spec {
    Spec {
        url: url.to_owned(),
        keep_headers: &[],
        validity: |b, h| crate::kds::crl_validity(&crl_der(b)?, h),
    }
}

/// A CRL body as DER: DER as PCS serves it, or hex as a PCCS does.
pub fn crl_der(body: &[u8]) -> Result<Vec<u8>, String> {
    if body.first() == Some(&0x30) {
        return Ok(body.to_vec());
    }
    let text = std::str::from_utf8(body).map_err(|_| "neither DER nor hex".to_owned())?;
    appraisal::hex::decode(text.trim()).ok_or_else(|| "neither DER nor hex".to_owned())
}

fn first<'a>(headers: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| {
        headers
            .iter()
            .find(|(h, _)| h == n)
            .map(|(_, v)| v.as_str())
    })
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "tcbInfo", borrow, default)]
    tcb_info: Option<&'a RawValue>,
    #[serde(rename = "enclaveIdentity", borrow, default)]
    enclave_identity: Option<&'a RawValue>,
    signature: String,
}

/// The signed JSON text, its signature, and the inner object's dates.
fn split<'a>(body: &'a [u8], field: &str) -> Result<(&'a str, Vec<u8>), String> {
    let env: Envelope<'a> =
        serde_json::from_slice(body).map_err(|e| format!("not PCS JSON: {e}"))?;
    let raw = match field {
        "tcbInfo" => env.tcb_info,
        _ => env.enclave_identity,
    }
    .ok_or_else(|| format!("no {field} in the body"))?;
    let sig = appraisal::hex::decode(&env.signature).ok_or("signature is not hex")?;
    if sig.len() != 64 {
        return Err(format!("signature is {} bytes, not 64", sig.len()));
    }
    Ok((raw.get(), sig))
}

fn signed_validity(
    body: &[u8],
    headers: &[(String, String)],
    field: &str,
) -> Result<Validity, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Dates {
        issue_date: String,
        next_update: String,
    }
    let (json, _) = split(body, field)?;
    let names = if field == "tcbInfo" {
        TCB_CHAIN
    } else {
        QE_CHAIN
    };
    if first(headers, names).is_none() {
        return Err(format!("no issuer chain header ({})", names.join(" or ")));
    }
    let d: Dates = serde_json::from_str(json).map_err(|e| format!("{field}: {e}"))?;
    let parse = |s: &str| {
        appraisal::parse_rfc3339(s).ok_or_else(|| format!("{field}: date {s:?} is not RFC 3339"))
    };
    Ok(Validity {
        issued: Some(parse(&d.issue_date)?),
        next_update: parse(&d.next_update)?,
        mutable: true,
    })
}

/// Percent-decoding of an issuer-chain header.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encoding of a PEM chain for a header (the stand-in, offline files).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (c as char).to_string()
            }
            _ => format!("%{c:02X}"),
        })
        .collect()
}

/// A cached TCB info or QE identity response as the appraisal's piece.
pub fn signed_json(e: &Entry, tcb_info: bool) -> Result<SignedJson, String> {
    let (field, names) = if tcb_info {
        ("tcbInfo", TCB_CHAIN)
    } else {
        ("enclaveIdentity", QE_CHAIN)
    };
    let (json, signature) = split(&e.body, field)?;
    let chain = first(&e.headers, names).ok_or("no issuer chain")?;
    Ok(SignedJson {
        json: json.to_owned(),
        signature,
        issuer_chain: url_decode(chain),
    })
}

/// A cached PCK CRL response as the appraisal's piece.
pub fn issued_crl(e: &Entry) -> Result<IssuedCrl, String> {
    let chain = first(&e.headers, PCK_CHAIN).ok_or("no issuer chain")?;
    Ok(IssuedCrl {
        der: crl_der(&e.body)?,
        issuer_chain: url_decode(chain),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_encoding() {
        assert_eq!(
            tcb_info(PCS_BASE, &[0xb0, 0xc0, 0x6f, 0, 0, 0]).url,
            "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=B0C06F000000"
        );
        assert_eq!(
            pck_crl("https://p", "processor").url,
            "https://p/sgx/certification/v4/pckcrl?ca=processor&encoding=der"
        );
        let pem = "-----BEGIN CERTIFICATE-----\nMIIC+/=\n-----END CERTIFICATE-----\n";
        assert_eq!(url_decode(&url_encode(pem)), pem);
        assert_eq!(url_decode("%2"), "%2");
        assert_eq!(crl_der(b"3003").unwrap(), vec![0x30, 0x03]);
        assert!(crl_der(b"zz").is_err());
    }

    #[test]
    fn the_signed_text_is_cut_out_as_received() {
        let body = br#"{"tcbInfo":{"b":1, "issueDate":"2025-06-19T10:16:03Z","nextUpdate":"2025-07-19T10:16:03Z"},"signature":"00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"}"#;
        let h = vec![("tcb-info-issuer-chain".to_owned(), "x".to_owned())];
        let (json, sig) = split(body, "tcbInfo").unwrap();
        assert_eq!(
            json,
            r#"{"b":1, "issueDate":"2025-06-19T10:16:03Z","nextUpdate":"2025-07-19T10:16:03Z"}"#
        );
        assert_eq!(sig.len(), 64);
        let v = signed_validity(body, &h, "tcbInfo").unwrap();
        assert_eq!(v.next_update, 1_752_920_163);
        assert!(signed_validity(body, &[], "tcbInfo").is_err());
        assert!(signed_validity(b"garbage", &h, "tcbInfo").is_err());
    }
}
