//! The enclave key pair, generated inside the enclave after entropy is ready.
//!
//! ECDSA P-256 (ring). The verifier's token names it (`cnf`), and the
//! REPORT_DATA binds it, so whoever holds the token without the private key
//! cannot use it for anything key-bound. The private key never leaves this
//! process; its PKCS#8 encoding is zeroized as soon as ring has parsed it.

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use zeroize::Zeroize;

/// DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point.
const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The enclave key pair.
pub struct EnclaveKey {
    #[allow(dead_code, reason = "signs the serving certificate request once the call service lands")]
    pair: EcdsaKeyPair,
    spki: Vec<u8>,
}

/// Key generation failed (the kernel RNG or ring refused).
#[derive(Debug)]
pub struct KeyError(&'static str);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "enclave key generation failed: {}", self.0)
    }
}

impl std::error::Error for KeyError {}

impl std::fmt::Debug for EnclaveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key: only what anyone may see.
        f.debug_struct("EnclaveKey").field("spki_len", &self.spki.len()).finish()
    }
}

impl EnclaveKey {
    /// Generates a new key pair from the kernel CRNG.
    pub fn generate() -> Result<EnclaveKey, KeyError> {
        let rng = SystemRandom::new();
        let mut pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| KeyError("random generator"))?
            .as_ref()
            .to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &rng);
        pkcs8.zeroize();
        let pair = pair.map_err(|_| KeyError("PKCS#8 round trip"))?;
        let mut spki = SPKI_P256_PREFIX.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        Ok(EnclaveKey { pair, spki })
    }

    /// DER SubjectPublicKeyInfo of the public key.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// Signs `msg` (ECDSA P-256 SHA-256, ASN.1 DER signature).
    #[allow(dead_code, reason = "used by the serving certificate request once the call service lands")]
    pub fn sign(&self, msg: &[u8]) -> Option<Vec<u8>> {
        self.pair.sign(&SystemRandom::new(), msg).ok().map(|s| s.as_ref().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_is_p256_and_signatures_verify() {
        let k = EnclaveKey::generate().unwrap();
        assert_eq!(k.spki().len(), 91);
        let sig = k.sign(b"hello").unwrap();
        let pk = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &k.spki()[26..]);
        assert!(pk.verify(b"hello", &sig).is_ok());
        assert!(!format!("{k:?}").contains("pair"));
    }
}
