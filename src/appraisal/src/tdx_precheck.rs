//! Our own checks of a TDX quote and its collateral, made before dcap-qvl
//! runs, so that each failure is named by the check it belongs to (issue 17
//! item 4) in our words, never in a library's: dcap-qvl reports chain
//! problems of the PCK, TCB-info and QE-identity chains alike, and some not
//! at all by name.
//!
//! In order:
//! 1. Form: the quote parses strictly (`tee-formats`), and whatever follows
//!    the signature data is zero padding only (`tdx.quote.format`). Then
//!    the quote's own signature by the attestation key in its signature
//!    data (`tdx.signature`, [`quote_signature`]): one ECDSA P-256
//!    verification, made before any chain work so that a forged quote
//!    costs nothing more. The key is not trusted yet: only steps 4 and 6
//!    (PCK chain, QE report binding it) and dcap-qvl make it Intel's; this
//!    changes the order of work, not the decision.
//! 2. CRL windows, to the second: root CA CRL and PCK CRL current at the
//!    verifier's time, `thisUpdate <= now < nextUpdate` (`tdx.crl`): a CRL
//!    is no longer current at its nextUpdate second, which is the rule
//!    webpki applies inside dcap-qvl (checked against it in the tests).
//! 3. TCB info and QE identity: issueDate/nextUpdate window
//!    (`tdx.collateral.expired`), signing chain to the pinned Intel SGX
//!    Root CA (`tdx.collateral_chain`), ECDSA signature over the exact JSON
//!    (`tdx.collateral.signature`).
//! 4. The quote's own PCK chain: leaf → PCK CA → pinned root, every
//!    certificate valid now; and its PCK CA is the one that issued the
//!    collateral's PCK CRL (same certificate as the CRL issuer chain's
//!    first), or revocation of this PCK was not checked (`tdx.pck_chain`).
//! 5. The TCB info is for the PCK's FMSPC (`tdx.collateral`).
//! 6. The QE report signature by the PCK leaf key (`tdx.qe_report`).
//!
//! dcap-qvl then verifies everything again (revocation included), with its
//! remaining failures mapped by `tdx::classify`.

use der::{Decode, Encode};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use tee_formats::tdx::quote::ReceivedQuote;
use x509_cert::crl::CertificateList;

use crate::denial::{Check, Denial};
use crate::x509::{self, Cert};

/// id-ecdsa-with-SHA256.
const ECDSA_SHA256: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// The collateral as dcap-qvl takes it, borrowed.
pub(crate) struct Set<'a> {
    pub tcb_info: &'a str,
    pub tcb_info_signature: &'a [u8],
    pub tcb_info_issuer_chain: &'a str,
    pub qe_identity: &'a str,
    pub qe_identity_signature: &'a [u8],
    pub qe_identity_issuer_chain: &'a str,
    pub pck_crl: &'a [u8],
    pub pck_crl_issuer_chain: &'a str,
    pub root_ca_crl: &'a [u8],
}

/// Step 1: the quote's form.
pub(crate) fn parse_quote(bytes: &[u8]) -> Result<ReceivedQuote, Denial> {
    let q = ReceivedQuote::parse(bytes).map_err(|e| {
        Denial::new(
            Check::TdxQuoteFormat,
            format!("not a well-formed TDX quote: {e}"),
            "a TDX quote v4/v5 (ECDSA P-256 attestation key, PCK chain certification data), every length consistent",
            "send the quote exactly as the quoting enclave produced it",
        )
    })?;
    let trailing = q.quote().trailing_len;
    let end = bytes.len() - trailing;
    if let Some(i) = bytes[end..].iter().position(|&b| b != 0) {
        return Err(Denial::new(
            Check::TdxQuoteFormat,
            format!(
                "{trailing} bytes after the signature data (which ends at offset {end}); byte at offset {} is {:#04x}",
                end + i,
                bytes[end + i]
            ),
            "nothing after the signature data but zero padding",
            "send the quote exactly as the quoting enclave produced it: bytes appended to a quote are not covered by any signature",
        ));
    }
    Ok(q)
}

/// Step 1, second part: the quote's signature by its attestation key (shared with the
/// collateral-free checks of Azure TDX, `tdx_offline`).
pub(crate) fn quote_signature(quote: &ReceivedQuote) -> Result<(), Denial> {
    crate::tdx_offline::quote_signature(quote)
}

/// Steps 2 to 6.
pub(crate) fn check(
    intel_root: &[u8],
    quote: &ReceivedQuote,
    set: &Set<'_>,
    now: i64,
) -> Result<(), Denial> {
    let root = Cert::parse(intel_root).map_err(|e| internal(format!("pinned Intel root: {e}")))?;
    crl_window("root CA CRL", set.root_ca_crl, now)?;
    let pck_crl = crl_window("PCK CRL", set.pck_crl, now)?;
    signed_json(
        "TCB info",
        set.tcb_info,
        set.tcb_info_signature,
        set.tcb_info_issuer_chain,
        &root,
        now,
    )?;
    signed_json(
        "QE identity",
        set.qe_identity,
        set.qe_identity_signature,
        set.qe_identity_issuer_chain,
        &root,
        now,
    )?;
    let (leaf_key, leaf_der) = pck_chain(quote, set, &pck_crl, &root, now)?;
    fmspc(set.tcb_info, &leaf_der)?;
    qe_report(quote, &leaf_key)
}

/// What the quote's PCK certificate says about its platform: the inputs of
/// the collateral URLs (PCS `tcb?fmspc=…`, `pckcrl?ca=…`) and the SGX TCB
/// components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxPlatform {
    /// FMSPC, 6 bytes.
    pub fmspc: [u8; 6],
    /// `"platform"` or `"processor"`: the CA that issued the PCK.
    pub ca: &'static str,
    /// CPUSVN (16 SGX TCB components).
    pub cpu_svn: [u8; 16],
    /// PCE SVN.
    pub pce_svn: u16,
}

/// Reads the platform of a TDX quote from its PCK certificate (no
/// verification: for choosing collateral and for display).
pub fn tdx_platform(quote: &[u8]) -> Result<TdxPlatform, String> {
    let q = ReceivedQuote::parse(quote).map_err(|e| format!("not a TDX quote: {e}"))?;
    let cd = &q
        .quote()
        .signature_data
        .qe_report_certification_data
        .certification_data;
    let pem = cd.pck_cert_chain_pem().ok_or_else(|| {
        format!(
            "certification data type {} carries no PCK chain",
            cd.cert_data_type
        )
    })?;
    let ders = pem_chain(pem)?;
    let leaf = Cert::parse(&ders[0])?;
    let ext =
        dcap_qvl::intel::parse_pck_extension_with::<dcap_qvl::configs::RustCryptoConfig>(&ders[0])
            .map_err(|_| "the PCK certificate has no readable Intel SGX extension".to_owned())?;
    let issuer = common_name(&leaf.cert.tbs_certificate.issuer);
    let ca = if issuer.contains("Processor") {
        "processor"
    } else if issuer.contains("Platform") {
        "platform"
    } else {
        return Err(format!(
            "PCK issuer {issuer:?} is neither the Platform nor the Processor CA"
        ));
    };
    Ok(TdxPlatform {
        fmspc: ext.fmspc,
        ca,
        cpu_svn: ext.cpu_svn,
        pce_svn: ext.pce_svn,
    })
}

/// The TCB info must be the one for the PCK's FMSPC.
fn fmspc(tcb_info: &str, pck_der: &[u8]) -> Result<(), Denial> {
    #[derive(serde::Deserialize)]
    struct Info {
        fmspc: String,
    }
    let Ok(ext) =
        dcap_qvl::intel::parse_pck_extension_with::<dcap_qvl::configs::RustCryptoConfig>(pck_der)
    else {
        return Err(Denial::new(
            Check::TdxPckChain,
            "the PCK certificate has no readable Intel SGX extension",
            "a PCK certificate with the SGX extension (FMSPC, TCB)",
            "send the quote unmodified",
        ));
    };
    let want = crate::hex::encode(&ext.fmspc).to_uppercase();
    let got = serde_json::from_str::<Info>(tcb_info)
        .map(|i| i.fmspc.to_uppercase())
        .unwrap_or_default();
    if got != want {
        return Err(Denial::new(
            Check::TdxCollateral,
            format!("TCB info for FMSPC {got:?}, the quote's PCK certificate is for FMSPC {want}"),
            format!("the TCB info of FMSPC {want}"),
            format!("fetch the TCB info for this platform (PCS /tdx/certification/v4/tcb?fmspc={want}; enclavectl collateral fetch)"),
        ));
    }
    Ok(())
}

fn internal(why: String) -> Denial {
    Denial::new(
        Check::TdxPckChain,
        why,
        "compiled-in Intel SGX Root CA",
        "the verifier build is corrupt; rebuild it",
    )
}

/// Parses a CRL and checks `thisUpdate <= now < nextUpdate`.
fn crl_window(name: &str, der: &[u8], now: i64) -> Result<CertificateList, Denial> {
    let crl = CertificateList::from_der(der).map_err(|e| {
        Denial::new(
            Check::TdxCrl,
            format!("{name} is not a DER CRL: {e}"),
            format!("the {name} exactly as Intel PCS serves it"),
            "fetch the collateral again (enclavectl collateral fetch)",
        )
    })?;
    let tbs = &crl.tbs_cert_list;
    let this = unix(tbs.this_update);
    let next = tbs.next_update.map(unix);
    let Some(next) = next else {
        return Err(Denial::new(
            Check::TdxCrl,
            format!("{name} has no nextUpdate"),
            format!("a {name} with a validity window"),
            "fetch the collateral again",
        ));
    };
    if now < this || now >= next {
        return Err(Denial::new(
            Check::TdxCrl,
            format!(
                "{name} valid {} up to {}, verifier time {}",
                x509::rfc3339(this),
                x509::rfc3339(next),
                x509::rfc3339(now)
            ),
            format!("a {name} current at the verifier's time (to the second)"),
            if now >= next {
                "the verifier's collateral is stale: let it reach Intel PCS (--pcs-url), refresh its cache (enclavectl collateral fetch), or fix the verifier's clock"
            } else {
                "the CRL is from the verifier's future: fix the verifier's clock (--now only with --dev)"
            },
        ));
    }
    Ok(crl)
}

fn unix(t: x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// The DER certificates of a PEM chain.
fn pem_chain(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "the PEM chain is not text".to_owned())?;
    let end = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    for block in text
        .split_inclusive(end)
        .filter(|b| b.contains("-----BEGIN CERTIFICATE-----"))
    {
        let start = block.find("-----BEGIN").unwrap_or(0);
        let (label, der) = der::pem::decode_vec(&block.as_bytes()[start..])
            .map_err(|e| format!("certificate {} of the PEM chain: {e}", out.len()))?;
        if label != "CERTIFICATE" {
            return Err(format!("PEM block labelled {label}"));
        }
        out.push(der);
        if out.len() > 4 {
            return Err("more than 4 certificates in the chain".into());
        }
    }
    if out.is_empty() {
        return Err("no certificate in the PEM chain".into());
    }
    Ok(out)
}

/// The P-256 key of a certificate.
fn p256_key(c: &Cert<'_>) -> Result<VerifyingKey, String> {
    let spki = &c.cert.tbs_certificate.subject_public_key_info;
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or("public key BIT STRING has unused bits")?;
    VerifyingKey::from_sec1_bytes(point).map_err(|_| "not a P-256 public key".into())
}

/// Checks that `issuer` signed `subject` (ECDSA P-256 SHA-256) and that the
/// names chain.
fn issued_by(subject: &Cert<'_>, issuer: &Cert<'_>) -> Result<(), String> {
    let who = |c: &Cert<'_>| c.subject_cn().unwrap_or_else(|| "?".into());
    if subject.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
        return Err(format!(
            "{:?} is not issued by {:?}",
            who(subject),
            who(issuer)
        ));
    }
    if subject.cert.signature_algorithm.oid != ECDSA_SHA256 {
        return Err(format!(
            "{:?} is not signed with ECDSA SHA-256",
            who(subject)
        ));
    }
    let sig = subject
        .cert
        .signature
        .as_bytes()
        .and_then(|b| Signature::from_der(b).ok())
        .ok_or_else(|| format!("{:?} carries a malformed signature", who(subject)))?;
    let key = p256_key(issuer).map_err(|e| format!("{:?}: {e}", who(issuer)))?;
    key.verify(subject.tbs, &sig).map_err(|_| {
        format!(
            "the signature of {:?} by {:?} does not verify",
            who(subject),
            who(issuer)
        )
    })
}

fn valid_at(c: &Cert<'_>, now: i64) -> Result<(), String> {
    let (nb, na) = c.validity();
    if now < nb || now > na {
        return Err(format!(
            "{:?} valid {} .. {}, verifier time {}",
            c.subject_cn().unwrap_or_default(),
            x509::rfc3339(nb),
            x509::rfc3339(na),
            x509::rfc3339(now)
        ));
    }
    Ok(())
}

/// Verifies `chain` (leaf first, up to an intermediate) to the pinned root.
/// A certificate in the chain equal to the root is skipped; any other
/// self-signed certificate is not trusted.
fn to_root(ders: &[Vec<u8>], root: &Cert<'_>, root_der: &[u8], now: i64) -> Result<(), String> {
    let certs: Vec<Cert<'_>> = ders
        .iter()
        .filter(|d| d[..] != *root_der)
        .map(|d| Cert::parse(d))
        .collect::<Result<_, _>>()?;
    let Some(leaf) = certs.first() else {
        return Err("the chain holds only the root".into());
    };
    for (i, c) in certs.iter().enumerate() {
        valid_at(c, now)?;
        let issuer = certs.get(i + 1).unwrap_or(root);
        issued_by(c, issuer)?;
    }
    let _ = leaf;
    valid_at(root, now)
}

/// TCB info / QE identity: window, chain, signature.
fn signed_json(
    name: &str,
    json: &str,
    signature: &[u8],
    chain_pem: &str,
    root: &Cert<'_>,
    now: i64,
) -> Result<(), Denial> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Dates {
        issue_date: String,
        next_update: String,
    }
    let malformed = |why: String| {
        Denial::new(
            Check::TdxCollateral,
            format!("{name}: {why}"),
            format!("the {name} exactly as Intel PCS serves it"),
            "fetch the collateral again (enclavectl collateral fetch)",
        )
    };
    let d: Dates =
        serde_json::from_str(json).map_err(|e| malformed(format!("not the expected JSON: {e}")))?;
    let (issue, next) = match (
        x509::parse_rfc3339(&d.issue_date),
        x509::parse_rfc3339(&d.next_update),
    ) {
        (Some(i), Some(n)) => (i, n),
        _ => {
            return Err(malformed(format!(
                "dates {:?} / {:?} are not RFC 3339",
                d.issue_date, d.next_update
            )))
        }
    };
    if now < issue || now > next {
        return Err(Denial::new(
            Check::TdxCollateralExpired,
            format!(
                "{name} issued {}, next update {}, verifier time {}",
                x509::rfc3339(issue),
                x509::rfc3339(next),
                x509::rfc3339(now)
            ),
            format!("a {name} current at the verifier's time"),
            if now > next {
                "the verifier's collateral is stale: let it reach Intel PCS (--pcs-url) or refresh its cache (enclavectl collateral fetch)"
            } else {
                "the collateral is from the verifier's future: fix the verifier's clock"
            },
        ));
    }
    let chain_err = |why: String| {
        Denial::new(
            Check::TdxCollateralChain,
            format!("{name} signing chain: {why}"),
            format!("the {name} signed by Intel's TCB signing certificate, issued by the pinned Intel SGX Root CA"),
            "the collateral's issuer chain is not Intel's: fetch it from Intel PCS or a PCCS you trust",
        )
    };
    let ders = pem_chain(chain_pem.as_bytes()).map_err(chain_err)?;
    let root_der = root.cert.to_der().map_err(|e| chain_err(e.to_string()))?;
    to_root(&ders, root, &root_der, now).map_err(chain_err)?;
    let leaf = Cert::parse(&ders[0]).map_err(chain_err)?;
    let key = p256_key(&leaf).map_err(chain_err)?;
    let sig = Signature::from_slice(signature).map_err(|_| {
        Denial::new(
            Check::TdxCollateralSignature,
            format!(
                "{name} signature is {} bytes, not a P-256 r‖s",
                signature.len()
            ),
            format!("the {name} signed by Intel"),
            "fetch the collateral again, unmodified",
        )
    })?;
    key.verify(json.as_bytes(), &sig).map_err(|_| {
        Denial::new(
            Check::TdxCollateralSignature,
            format!(
                "the {name} signature does not verify with the key of {:?}",
                leaf.subject_cn().unwrap_or_default()
            ),
            format!("the {name} exactly as Intel signed it"),
            "the collateral was altered: fetch it again from Intel PCS or a PCCS you trust",
        )
    })
}

/// The quote's PCK chain to the root, and its CA compared with the
/// collateral's PCK CRL issuer. Returns the PCK leaf key.
fn pck_chain(
    quote: &ReceivedQuote,
    set: &Set<'_>,
    pck_crl: &CertificateList,
    root: &Cert<'_>,
    now: i64,
) -> Result<(VerifyingKey, Vec<u8>), Denial> {
    let deny = |why: String, hint: &str| {
        Denial::new(
            Check::TdxPckChain,
            why,
            "a PCK certificate chain in the quote, leaf → Intel SGX PCK Platform/Processor CA → the pinned Intel SGX Root CA, covered by the collateral's PCK CRL",
            hint.to_owned(),
        )
    };
    let cd = &quote
        .quote()
        .signature_data
        .qe_report_certification_data
        .certification_data;
    let pem = cd.pck_cert_chain_pem().ok_or_else(|| {
        deny(
            format!(
                "certification data type {}, not a PCK certificate chain (type 5)",
                cd.cert_data_type
            ),
            "configure the host's quote generation to embed the PCK certificate chain",
        )
    })?;
    let ders = pem_chain(pem).map_err(|e| {
        deny(
            format!("the quote's PCK chain: {e}"),
            "send the quote exactly as the quoting enclave produced it",
        )
    })?;
    let root_der = root.cert.to_der().map_err(|e| internal(e.to_string()))?;
    to_root(&ders, root, &root_der, now).map_err(|e| {
        deny(
            format!("the quote's PCK chain: {e}"),
            "the quote's PCK certificate is not Intel's, or is not valid at the verifier's time",
        )
    })?;
    let leaf = Cert::parse(&ders[0]).map_err(|e| deny(e, "send the quote unmodified"))?;
    // The CA that issued the PCK must be the one whose CRL the collateral
    // carries, or the PCK's revocation is not checked at all.
    let ca_subject = &leaf.cert.tbs_certificate.issuer;
    let crl_issuer = &pck_crl.tbs_cert_list.issuer;
    let ca_cn = common_name(ca_subject);
    if ca_subject != crl_issuer {
        return Err(deny(
            format!(
                "the quote's PCK is issued by {ca_cn:?}, the collateral's PCK CRL by {:?}",
                common_name(crl_issuer)
            ),
            "fetch the PCK CRL of the quote's CA (PCS pckcrl?ca=platform or ca=processor)",
        ));
    }
    let quote_ca = ders
        .iter()
        .find(|d| Cert::parse(d).is_ok_and(|c| c.cert.tbs_certificate.subject == *ca_subject));
    let coll_ca = pem_chain(set.pck_crl_issuer_chain.as_bytes()).map_err(|e| {
        deny(
            format!("the collateral's PCK CRL issuer chain: {e}"),
            "fetch the collateral again",
        )
    })?;
    if quote_ca.map(|d| &d[..]) != Some(&coll_ca[0][..]) {
        return Err(deny(
            format!("the quote's {ca_cn:?} certificate differs from the one in the collateral's PCK CRL issuer chain"),
            "fetch the PCK CRL and its issuer chain for the quote's CA again from Intel PCS",
        ));
    }
    let key = p256_key(&leaf)
        .map_err(|e| deny(format!("PCK certificate: {e}"), "send the quote unmodified"))?;
    Ok((key, ders[0].clone()))
}

fn common_name(n: &x509_cert::name::Name) -> String {
    n.0.iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == const_oid::db::rfc4519::CN)
        .and_then(|atv| {
            std::str::from_utf8(atv.value.value())
                .ok()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// The QE report signature by the PCK key.
fn qe_report(quote: &ReceivedQuote, pck: &VerifyingKey) -> Result<(), Denial> {
    let qe = &quote.quote().signature_data.qe_report_certification_data;
    let ok = Signature::from_slice(&qe.qe_report_signature)
        .is_ok_and(|sig| pck.verify(quote.qe_report_bytes(), &sig).is_ok());
    if !ok {
        return Err(Denial::new(
            Check::TdxQeReport,
            "the QE report signature does not verify with the PCK certificate's key",
            "a QE report signed by the platform's PCK key",
            "the quote was altered after the quoting enclave signed it, or its PCK chain is another platform's",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_chain_is_bounded() {
        assert!(pem_chain(b"").is_err());
        let one = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, b"x").unwrap();
        assert_eq!(pem_chain(one.as_bytes()).unwrap(), vec![b"x".to_vec()]);
        assert!(pem_chain(one.repeat(5).as_bytes()).is_err());
        let _ = Encode::to_der(&der::asn1::Null);
    }
}
