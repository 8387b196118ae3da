//! The enclave key pair, generated inside the enclave after entropy is ready.
//!
//! ECDSA P-256 (ring). The verifier's token names it (`cnf`), and the
//! REPORT_DATA binds it, so whoever holds the token without the private key
//! cannot use it for anything key-bound. The private key never leaves this
//! process; its PKCS#8 encoding is zeroized as soon as ring has parsed it.
//!
//! In certificate mode (`vault.auth = "cert"`) the key also signs the TLS
//! 1.3 handshake with OpenBao ([`EnclaveKey::tls_key`]): the login proves
//! possession of the attested key, which a copied token cannot.

use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use zeroize::Zeroize;

/// DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point.
const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The enclave key pair.
pub struct EnclaveKey {
    pair: Arc<EcdsaKeyPair>,
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
        f.debug_struct("EnclaveKey")
            .field("spki_len", &self.spki.len())
            .finish()
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
        Ok(EnclaveKey {
            pair: Arc::new(pair),
            spki,
        })
    }

    /// DER SubjectPublicKeyInfo of the public key.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// The key as rustls signs TLS 1.3 handshakes with it
    /// (`ecdsa_secp256r1_sha256`): the client key of the certificate-mode
    /// login. The private key stays in this process, shared, not copied.
    pub fn tls_key(&self) -> Arc<dyn rustls::sign::SigningKey> {
        Arc::new(TlsKey(Arc::clone(&self.pair)))
    }

    /// The certificate chain `chain_pem` (the verifier's client certificate
    /// for this key) with this key, for rustls client authentication.
    /// Refused when the certificate is for another key.
    pub fn certified(&self, chain_pem: &str) -> Result<Arc<rustls::sign::CertifiedKey>, String> {
        use rustls::pki_types::pem::PemObject as _;
        let chain = rustls::pki_types::CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("client certificate: {e}"))?;
        if chain.is_empty() {
            return Err("client certificate: none in the PEM".into());
        }
        let certified = rustls::sign::CertifiedKey::new(chain, self.tls_key());
        certified
            .keys_match()
            .map_err(|e| format!("client certificate: not for the enclave key: {e}"))?;
        Ok(Arc::new(certified))
    }

    /// Signs `msg` (ECDSA P-256 SHA-256, ASN.1 DER signature).
    #[cfg_attr(
        not(test),
        allow(
            dead_code,
            reason = "used by the serving certificate request once the call service lands"
        )
    )]
    pub fn sign(&self, msg: &[u8]) -> Option<Vec<u8>> {
        self.pair
            .sign(&SystemRandom::new(), msg)
            .ok()
            .map(|s| s.as_ref().to_vec())
    }
}

/// The enclave key as the audit trail's signer: the records' signatures
/// are by the attested key itself (ES256, ASN.1 DER), shared, not copied.
pub struct AuditSigner {
    pair: Arc<EcdsaKeyPair>,
    spki: Vec<u8>,
}

impl audit_record::Sign for AuditSigner {
    fn alg(&self) -> audit_record::Alg {
        audit_record::Alg::ES256
    }

    fn spki(&self) -> Vec<u8> {
        self.spki.clone()
    }

    fn sign(&self, msg: &[u8]) -> Option<Vec<u8>> {
        self.pair
            .sign(&SystemRandom::new(), msg)
            .ok()
            .map(|s| s.as_ref().to_vec())
    }
}

impl EnclaveKey {
    /// The signer of the audit trail's records.
    pub fn audit_signer(&self) -> AuditSigner {
        AuditSigner {
            pair: Arc::clone(&self.pair),
            spki: self.spki.clone(),
        }
    }
}

/// The enclave key as a rustls [`rustls::sign::SigningKey`].
struct TlsKey(Arc<EcdsaKeyPair>);

impl std::fmt::Debug for TlsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsKey(enclave key, P-256)")
    }
}

impl rustls::sign::SigningKey for TlsKey {
    fn choose_scheme(
        &self,
        offered: &[rustls::SignatureScheme],
    ) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&rustls::SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Box::new(TlsSigner(Arc::clone(&self.0))) as Box<dyn rustls::sign::Signer>)
    }

    fn public_key(&self) -> Option<rustls::pki_types::SubjectPublicKeyInfoDer<'_>> {
        let mut spki = SPKI_P256_PREFIX.to_vec();
        spki.extend_from_slice(self.0.public_key().as_ref());
        Some(spki.into())
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

struct TlsSigner(Arc<EcdsaKeyPair>);

impl std::fmt::Debug for TlsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsSigner(ecdsa_secp256r1_sha256)")
    }
}

impl rustls::sign::Signer for TlsSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.0
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| rustls::Error::General("enclave key: signing failed".into()))
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        rustls::SignatureScheme::ECDSA_NISTP256_SHA256
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
        let pk = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &k.spki()[26..],
        );
        assert!(pk.verify(b"hello", &sig).is_ok());
        assert!(!format!("{k:?}").contains("pair"));
    }

    #[test]
    fn the_tls_key_signs_tls13_ecdsa_and_certifies_only_its_own_certificate() {
        let k = EnclaveKey::generate().unwrap();
        let tls = k.tls_key();
        assert!(tls
            .choose_scheme(&[rustls::SignatureScheme::ED25519])
            .is_none());
        let signer = tls
            .choose_scheme(&[
                rustls::SignatureScheme::RSA_PSS_SHA256,
                rustls::SignatureScheme::ECDSA_NISTP256_SHA256,
            ])
            .unwrap();
        let sig = signer.sign(b"transcript").unwrap();
        let pk = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &k.spki()[26..],
        );
        assert!(pk.verify(b"transcript", &sig).is_ok());
        // A certificate for another key is refused.
        let other = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".to_owned()])
            .unwrap()
            .self_signed(&other)
            .unwrap();
        assert!(k
            .certified(&cert.pem())
            .unwrap_err()
            .contains("not for the enclave key"));
        assert!(k.certified("").is_err());
    }
}
