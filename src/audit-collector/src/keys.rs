//! Key files: a public key as DER SubjectPublicKeyInfo (raw or PEM
//! `PUBLIC KEY`), or taken from a PKCS#8 private key (raw or PEM `PRIVATE
//! KEY`, such as the verifier's `token-key.pk8`); a PKCS#8 ECDSA key as a
//! record signer. P-256 (ES256) and P-384 (ES384) are the format's two.

use audit_record::Alg;
use base64::Engine;
use ring::signature::{
    EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
};

/// The DER inside a PEM block with `label`, or the bytes as they are when
/// they are not PEM.
fn der(bytes: &[u8], label: &str) -> Result<Vec<u8>, String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(bytes.to_vec());
    };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(start) = text.find(&begin) else {
        return Ok(bytes.to_vec());
    };
    let body = text
        .get(start + begin.len()..)
        .and_then(|rest| rest.find(&end).and_then(|e| rest.get(..e)))
        .ok_or_else(|| format!("no {end}"))?;
    let b64: String = body.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("{label}: {e}"))
}

/// A PKCS#8 ECDSA key pair and its algorithm.
pub fn key_pair(bytes: &[u8]) -> Result<(EcdsaKeyPair, Alg), String> {
    let pk8 = der(bytes, "PRIVATE KEY")?;
    let rng = ring::rand::SystemRandom::new();
    if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &pk8, &rng) {
        return Ok((k, Alg::ES384));
    }
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pk8, &rng)
        .map(|k| (k, Alg::ES256))
        .map_err(|_| "not a PKCS#8 P-256 or P-384 ECDSA key".to_owned())
}

/// The SPKI (DER) of a public key file or of a PKCS#8 private key file.
pub fn spki(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(bytes).unwrap_or("");
    if text.contains("-----BEGIN PUBLIC KEY-----") {
        return der(bytes, "PUBLIC KEY");
    }
    if let Ok((pair, alg)) = key_pair(bytes) {
        return Ok(alg.spki_of_point(pair.public_key().as_ref()));
    }
    // Raw DER: an SPKI starts with a SEQUENCE; the signature check refuses
    // anything that is not a key of the record's algorithm.
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    Err("not a public key (PEM or DER SPKI) nor a PKCS#8 ECDSA key".to_owned())
}

/// [`spki`] of a file.
pub fn spki_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    spki(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// SPKI DER as PEM `PUBLIC KEY`.
pub fn spki_pem(spki: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}
