//! What can be verified of a TDX quote without Intel's collateral: the
//! quote signature, the QE report's binding of the attestation key, the QE
//! report signature by the PCK leaf, and the PCK chain to the pinned Intel
//! SGX Root CA (signatures, names, validity at the verifier's time). Used for
//! Azure TDX evidence before the full DCAP appraisal (`tdx.rs`, dcap-qvl with
//! collateral), so that a tampered quote is named precisely (`tdx.signature`,
//! `tdx.qe`, `tdx.pck_chain`) even when no collateral came with it; the TCB
//! status still needs the collateral (`tdx.collateral.missing` without it).
//!
//! Source: Intel "TDX DCAP Quote Generation/Verification" (quote v4 layout,
//! `sgx_quote_4.h`), `shared/docs/tee-formats.md` §3.4 steps 3-7; the same
//! steps as dcap-qvl `verify.rs` (`verify_isv_report_signature`,
//! `verify_qe_report_data`, `verify_qe_report_signature`,
//! `verify_pck_cert_chain`). CRLs are not checked here (they are collateral).

use const_oid::ObjectIdentifier;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use tee_formats::tdx::ReceivedQuote;

use crate::denial::{Check, Denial};
use crate::roots::Roots;
use crate::x509::Cert;

/// ecdsa-with-SHA256.
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// id-ecPublicKey.
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// prime256v1.
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// At most leaf, intermediate and root (dcap-qvl allows 4 intermediates).
const MAX_CHAIN: usize = 6;

/// Verifies `q` as far as it can be without collateral.
pub(crate) fn verify(roots: &Roots, q: &ReceivedQuote, now: i64) -> Result<(), Denial> {
    let quote = q.quote();
    let sd = &quote.signature_data;
    // 1. The quote body is signed by the attestation key.
    quote_signature(q)?;
    // 2. The QE report binds the attestation key: REPORTDATA =
    //    SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes.
    let qe = &sd.qe_report_certification_data;
    let mut h = Sha256::new();
    h.update(sd.attestation_key);
    h.update(&qe.qe_auth_data);
    let want: [u8; 32] = h.finalize().into();
    if qe.qe_report.report_data[..32] != want
        || qe.qe_report.report_data[32..].iter().any(|&b| b != 0)
    {
        return Err(qe_denial(
            "QE report data is not SHA-256(attestation key ‖ QE auth data) ‖ zeros",
        ));
    }
    // 3. The PCK chain to the pinned root.
    let pem = qe.certification_data.pck_cert_chain_pem().ok_or_else(|| {
        chain_denial(format!(
            "certification data type {} (not a PCK certificate chain)",
            qe.certification_data.cert_data_type
        ))
    })?;
    let ders = pem_certificates(pem)?;
    let certs: Vec<Cert<'_>> = ders
        .iter()
        .map(|d| Cert::parse(d).map_err(chain_denial))
        .collect::<Result<_, _>>()?;
    let (Some(leaf), Some(root)) = (certs.first(), certs.last()) else {
        return Err(chain_denial("empty PCK certificate chain"));
    };
    if certs.len() < 2 {
        return Err(chain_denial("the PCK chain has no root"));
    }
    if ders.last().map(Vec::as_slice) != Some(roots.intel_root) {
        return Err(chain_denial(
            "the chain's root is not the pinned Intel SGX Root CA",
        ));
    }
    for pair in certs.windows(2) {
        if let [subject, issuer] = pair {
            issued_by(subject, issuer)?;
        }
    }
    issued_by(root, root)?;
    for c in &certs {
        let (nb, na) = c.validity();
        if now < nb || now > na {
            return Err(chain_denial(format!(
                "certificate {:?} is valid {} .. {}, not at the verifier's time {}",
                c.subject_cn().unwrap_or_default(),
                nb,
                na,
                now
            )));
        }
    }
    // 4. The PCK leaf signed the QE report.
    let pck = p256_key(leaf).map_err(chain_denial)?;
    if !verify_raw(&pck, q.qe_report_bytes(), &qe.qe_report_signature) {
        return Err(qe_denial(
            "the QE report signature does not verify with the PCK certificate's key",
        ));
    }
    Ok(())
}

/// The quote's own signature: ECDSA P-256 over header and body by the
/// attestation key in its signature data (`tdx.signature`). Proves nothing
/// alone (the key is trusted only once the QE report and PCK chain verify);
/// it is checked first because it is one verification, so a forged quote
/// costs no chain work.
pub(crate) fn quote_signature(q: &ReceivedQuote) -> Result<(), Denial> {
    let sd = &q.quote().signature_data;
    let ak = p256_key_from_xy(&sd.attestation_key)
        .ok_or_else(|| signature_denial("the attestation key is not a P-256 point"))?;
    if !verify_raw(&ak, q.signed_bytes(), &sd.signature) {
        return Err(signature_denial(
            "ECDSA P-256 signature over the header and body does not verify",
        ));
    }
    Ok(())
}

fn signature_denial(got: impl Into<String>) -> Denial {
    Denial::new(
        Check::TdxSignature,
        got,
        "a quote signed by the QE's attestation key",
        "the quote was altered after signing",
    )
}

fn qe_denial(got: impl Into<String>) -> Denial {
    Denial::new(
        Check::TdxQe,
        got,
        "a QE report signed by the PCK, bound to the attestation key",
        "the quoting enclave's report is not Intel's or was altered",
    )
}

fn chain_denial(got: impl Into<String>) -> Denial {
    Denial::new(
        Check::TdxPckChain,
        got,
        "a PCK chain to the pinned Intel SGX Root CA, valid now",
        "the quote's PCK certificate is not Intel's",
    )
}

fn p256_key_from_xy(xy: &[u8; 64]) -> Option<VerifyingKey> {
    let mut sec1 = [0u8; 65];
    sec1[0] = 4;
    sec1[1..].copy_from_slice(xy);
    VerifyingKey::from_sec1_bytes(&sec1).ok()
}

/// ECDSA P-256 / SHA-256 over `msg` with a raw `r ‖ s` signature.
fn verify_raw(key: &VerifyingKey, msg: &[u8], rs: &[u8; 64]) -> bool {
    Signature::from_slice(rs).is_ok_and(|sig| key.verify(msg, &sig).is_ok())
}

fn p256_key(c: &Cert<'_>) -> Result<VerifyingKey, String> {
    let spki = &c.cert.tbs_certificate.subject_public_key_info;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    if spki.algorithm.oid != EC_PUBLIC_KEY || curve != Some(PRIME256V1) {
        return Err(format!(
            "{:?}: key is not P-256",
            c.subject_cn().unwrap_or_default()
        ));
    }
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or("public key BIT STRING has unused bits")?;
    VerifyingKey::from_sec1_bytes(point).map_err(|_| "P-256 public key is not a curve point".into())
}

/// `issuer` signed `subject` (ecdsa-with-SHA256 over the received TBS).
fn issued_by(subject: &Cert<'_>, issuer: &Cert<'_>) -> Result<(), Denial> {
    let name = subject.subject_cn().unwrap_or_default();
    if subject.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
        return Err(chain_denial(format!(
            "{name:?} is not issued by {:?}",
            issuer.subject_cn().unwrap_or_default()
        )));
    }
    if subject.cert.signature_algorithm.oid != ECDSA_WITH_SHA256 {
        return Err(chain_denial(format!(
            "{name:?} is signed with {}, not ecdsa-with-SHA256",
            subject.cert.signature_algorithm.oid
        )));
    }
    let key = p256_key(issuer).map_err(chain_denial)?;
    let der = subject
        .cert
        .signature
        .as_bytes()
        .ok_or_else(|| chain_denial("signature BIT STRING has unused bits"))?;
    let sig = Signature::from_der(der)
        .map_err(|_| chain_denial(format!("{name:?}: signature is not a DER ECDSA signature")))?;
    key.verify(subject.tbs, &sig)
        .map_err(|_| chain_denial(format!("the signature on {name:?} does not verify")))
}

/// The certificates of a PEM chain, in order.
fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, Denial> {
    let text =
        std::str::from_utf8(pem).map_err(|_| chain_denial("the PCK chain is not PEM text"))?;
    let end = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    for block in text
        .split_inclusive(end)
        .filter(|b| b.contains("-----BEGIN CERTIFICATE-----"))
    {
        if out.len() == MAX_CHAIN {
            return Err(chain_denial(format!(
                "more than {MAX_CHAIN} certificates in the PCK chain"
            )));
        }
        let start = block.find("-----BEGIN").unwrap_or(0);
        let (label, der) = der::pem::decode_vec(block.get(start..).unwrap_or_default().as_bytes())
            .map_err(|e| chain_denial(format!("PCK chain PEM: {e}")))?;
        if label != "CERTIFICATE" {
            return Err(chain_denial(format!("PCK chain PEM label {label}")));
        }
        out.push(der);
    }
    Ok(out)
}
