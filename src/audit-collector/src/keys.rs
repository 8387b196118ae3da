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

/// The DER prefixes of uncompressed P-256 and P-384 SubjectPublicKeyInfos
/// (RFC 5480), and their whole lengths.
const SPKI_PREFIXES: [(&[u8], usize); 2] = [
    (
        &[
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ],
        91,
    ),
    (
        &[
            0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
        ],
        120,
    ),
];

/// The SPKI (DER) of a public key file or of a PKCS#8 private key file.
pub fn spki(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(bytes).unwrap_or("");
    if text.contains("-----BEGIN PUBLIC KEY-----") {
        return der(bytes, "PUBLIC KEY");
    }
    if let Ok((pair, alg)) = key_pair(bytes) {
        return Ok(alg.spki_of_point(pair.public_key().as_ref()));
    }
    // Raw DER: an uncompressed P-256 or P-384 SPKI, nothing else (a SEC1
    // private key also starts with a SEQUENCE and must not pass for one).
    let is_spki = SPKI_PREFIXES
        .iter()
        .any(|(prefix, len)| bytes.len() == *len && bytes.starts_with(prefix));
    if is_spki {
        return Ok(bytes.to_vec());
    }
    Err("not a P-256/P-384 public key (PEM or DER SPKI) nor a PKCS#8 ECDSA key (a SEC1 `EC PRIVATE KEY` must be converted: openssl pkcs8 -topk8 -nocrypt -outform DER)".to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The SPKI of a PKCS#8 key, of its PEM, of the SPKI's PEM and DER, all
    /// equal what openssl printed for the same key (`openssl pkey -pubout`,
    /// pasted here: an independent encoder); a SEC1 private key is refused.
    #[test]
    fn public_keys_from_every_accepted_form_and_sec1_refused() {
        // openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 | openssl pkcs8 -topk8 -nocrypt
        let pk8_pem = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5BZTO2559U1u3Axi
I8q9tAkKI7Xfh87qccnMESMWrL6hRANCAATZ9xmKV3yO4s+Se2YhRCufUbXED3OO
MZiBXJtZAx2huvPi1PC5vcPwehSIEZnwOaTGLvPUpoR33hJeHD+m+X+S
-----END PRIVATE KEY-----
";
        // openssl pkey -in key.pem -pubout
        let pub_pem = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2fcZild8juLPkntmIUQrn1G1xA9z
jjGYgVybWQMdobrz4tTwub3D8HoUiBGZ8Dmkxi7z1KaEd94SXhw/pvl/kg==
-----END PUBLIC KEY-----
";
        let want = spki(pub_pem.as_bytes()).unwrap();
        assert_eq!(want.len(), 91);
        assert_eq!(spki(pk8_pem.as_bytes()).unwrap(), want);
        assert_eq!(
            spki(&der(pk8_pem.as_bytes(), "PRIVATE KEY").unwrap()).unwrap(),
            want
        );
        assert_eq!(spki(&want).unwrap(), want);
        assert_eq!(spki_pem(&want), pub_pem);
        // The same key as SEC1 (openssl ec -outform DER): refused.
        let sec1 = crate::hex::decode("30770201010420e416533b6e79f54d6edc0c6223cabdb4090a23b5df87ceea71c9cc112316acbea00a06082a8648ce3d030107a14403420004d9f7198a577c8ee2cf927b6621442b9f51b5c40f738e3198815c9b59031da1baf3e2d4f0b9bdc3f07a14881199f039a4c62ef3d4a68477de125e1c3fa6f97f92").unwrap();
        assert!(spki(&sec1).is_err());
    }
}
