//! The call service's TLS identity: a P-256 key generated inside the guest,
//! a certificate request for it, and the server configuration once Vault's
//! PKI has signed it. The private key never leaves this process: Vault sees
//! the request (public key, name, signature), never the key.

use std::sync::{Arc, RwLock};

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SigningKey};
use zeroize::Zeroizing;

use crate::attest::TrustedTime;

/// Who is on the other end of a connection, as far as the routes care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Presented a certificate of `service.client_ca`, verified in the
    /// handshake: the platform's API gateway.
    Platform,
    /// Presented none.
    Anonymous,
}

impl Peer {
    /// The peer of an established server connection.
    pub fn of(conn: &rustls::ServerConnection) -> Peer {
        // With a client verifier configured, rustls records peer
        // certificates only after they verified against the CA.
        if conn.peer_certificates().is_some_and(|c| !c.is_empty()) {
            Peer::Platform
        } else {
            Peer::Anonymous
        }
    }
}

/// The serving key, before and while its certificate is obtained.
pub struct ServingKey {
    pkcs8: Zeroizing<Vec<u8>>,
    pair: EcdsaKeyPair,
}

impl std::fmt::Debug for ServingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServingKey { <redacted> }")
    }
}

/// OID 1.2.840.10045.2.1 (id-ecPublicKey) and 1.2.840.10045.3.1.7 (P-256).
const EC_P256_ALGORITHM: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];
/// AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
const ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
/// OID 2.5.4.3 (commonName).
const OID_CN: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];

impl ServingKey {
    /// A fresh key from the kernel CRNG.
    pub fn generate() -> Result<ServingKey, String> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| "serving key: random generator failed")?;
        let pkcs8 = Zeroizing::new(doc.as_ref().to_vec());
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &rng)
            .map_err(|_| "serving key: PKCS#8 round trip failed")?;
        Ok(ServingKey { pkcs8, pair })
    }

    /// The SubjectPublicKeyInfo (DER).
    pub fn spki(&self) -> Vec<u8> {
        let mut bits = vec![0u8];
        bits.extend_from_slice(self.pair.public_key().as_ref());
        let mut body = EC_P256_ALGORITHM.to_vec();
        body.extend(der(0x03, &bits));
        der(0x30, &body)
    }

    /// A PKCS#10 certification request for `common_name`, PEM. Vault's PKI
    /// role takes the name from it (and adds it as the DNS SAN).
    pub fn csr_pem(&self, common_name: &str) -> Result<String, String> {
        let atv = [OID_CN, &der(0x0c, common_name.as_bytes())].concat();
        let name = der(0x30, &der(0x31, &der(0x30, &atv)));
        let info = der(
            0x30,
            &[&[0x02, 0x01, 0x00][..], &name, &self.spki(), &[0xa0, 0x00]].concat(),
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), &info)
            .map_err(|_| "serving key: signing the request failed")?;
        let mut bits = vec![0u8];
        bits.extend_from_slice(sig.as_ref());
        let csr = der(0x30, &[&info[..], ECDSA_SHA256, &der(0x03, &bits)].concat());
        Ok(pem("CERTIFICATE REQUEST", &csr))
    }

    /// The TLS 1.3 server configuration presenting `chain_pem` (leaf first,
    /// as Vault returns it) with this key, and the handle through which a
    /// renewed certificate for the same key replaces it.
    ///
    /// Clients may present a certificate issued by `client_ca_pem`, checked
    /// at the guest's trusted `time` (not the host's clock); a certificate
    /// that fails the check fails the handshake. A client may also present
    /// none (Retell's webhooks cannot): the routes decide, through
    /// [`Peer`], what such a client may reach.
    pub fn server_config(
        self,
        chain_pem: &str,
        client_ca_pem: &str,
        time: Arc<TrustedTime>,
    ) -> Result<(Arc<rustls::ServerConfig>, Arc<ServingCert>), String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.to_vec()));
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| format!("serving key: {e}"))?;
        let cert = Arc::new(ServingCert {
            signing,
            current: RwLock::new(None),
        });
        cert.replace(chain_pem)?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in
            crate::attest::parse_ca(client_ca_pem).map_err(|e| format!("service.client_ca: {e}"))?
        {
            roots
                .add(ca)
                .map_err(|e| format!("service.client_ca: {e}"))?;
        }
        let clients =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("service.client_ca: {e}"))?;
        let mut config = rustls::ServerConfig::builder_with_details(provider, time)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(clients)
            .with_cert_resolver(Arc::clone(&cert) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok((Arc::new(config), cert))
    }
}

/// The certificate the call service presents: replaced on every renewal
/// (Vault signs the same key's request again), so it never outlives its
/// validity while the enclave stays attested.
pub struct ServingCert {
    signing: Arc<dyn SigningKey>,
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServingCert { <redacted> }")
    }
}

impl ServingCert {
    /// Presents `chain_pem` from now on, if it certifies our key.
    pub fn replace(&self, chain_pem: &str) -> Result<(), String> {
        let chain =
            crate::attest::parse_ca(chain_pem).map_err(|e| format!("serving certificate: {e}"))?;
        let certified = CertifiedKey::new(chain, Arc::clone(&self.signing));
        certified
            .keys_match()
            .map_err(|e| format!("serving certificate does not match the key: {e}"))?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(certified));
        Ok(())
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// One DER TLV.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if let Some(short) = u8::try_from(len).ok().filter(|l| *l < 0x80) {
        out.push(short);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or(&[]);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "at most size_of::<usize>() = 8 length bytes"
        )]
        let count = significant.len() as u8;
        out.push(0x80 | count);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(der(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der(0x04, &[0u8; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = der(0x04, &[0u8; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn csr_is_accepted_by_openssl() {
        let key = ServingKey::generate().unwrap();
        let csr = key.csr_pem("call.enclave.local").unwrap();
        let dir = std::env::temp_dir().join(format!("csr-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("r.csr"), &csr).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["req", "-verify", "-noout", "-subject", "-in"])
            .arg(dir.join("r.csr"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("CN") && text.contains("call.enclave.local"),
            "{text}"
        );
        assert!(text.to_lowercase().contains("verif"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
        assert!(!format!("{key:?}").contains("pkcs8"));
    }
}
