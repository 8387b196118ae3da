//! Proof-of-possession credentials: a short-lived X.509 client certificate
//! for the enclave's attested key, signed by the verifier's client CA.
//!
//! The guest logs in to OpenBao's `cert` auth method over mutual TLS with
//! it: the TLS handshake proves possession of the private key the evidence
//! bound (REPORT_DATA), so a copy of the certificate alone is worthless,
//! unlike the JWT, which is a bearer token.
//!
//! What the certificate says (what an OpenBao `cert` role can require):
//! - subject `CN=enclave:<jkt>` (the key's RFC 7638 thumbprint, as the
//!   JWT's `sub`), `OU=<tee>` (`allowed_organizational_units`);
//! - URI SANs `urn:enclave:measurement:<hex>` (`allowed_uri_sans`) and
//!   `urn:enclave:tee:<tee>`;
//! - extended key usage clientAuth only, not a CA;
//! - validity: from a minute before the appraisal (OpenBao's clock may lag
//!   the verifier's a little) to the token's expiry.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
};

use crate::token::KeyError;

/// The prefix of the measurement URI SAN.
pub const MEASUREMENT_URI_PREFIX: &str = "urn:enclave:measurement:";
/// The prefix of the TEE URI SAN.
pub const TEE_URI_PREFIX: &str = "urn:enclave:tee:";
/// How far before the appraisal the certificate is valid (clock skew
/// between the verifier and OpenBao).
pub const BACKDATE_SECS: i64 = 60;

/// DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point.
const SPKI_P256: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// DER prefix of a P-384 SubjectPublicKeyInfo with an uncompressed point.
const SPKI_P384: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];

/// The enclave's public key as rcgen needs it: the raw EC point and its
/// algorithm (the certificate is issued for a key whose private half only
/// the enclave has).
struct EnclavePublicKey {
    point: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl PublicKeyData for EnclavePublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

impl EnclavePublicKey {
    /// From a P-256 or P-384 SubjectPublicKeyInfo (uncompressed point).
    fn from_spki(spki: &[u8]) -> Option<EnclavePublicKey> {
        let (point, n, alg) = if let Some(p) = spki.strip_prefix(SPKI_P256) {
            (p, 32, &rcgen::PKCS_ECDSA_P256_SHA256)
        } else {
            (
                spki.strip_prefix(SPKI_P384)?,
                48,
                &rcgen::PKCS_ECDSA_P384_SHA384,
            )
        };
        (point.len() == 1 + 2 * n && point.first() == Some(&4)).then(|| EnclavePublicKey {
            point: point.to_vec(),
            alg,
        })
    }
}

/// What the certificate asserts.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The key's RFC 7638 thumbprint (the `cnf.jkt` claim).
    pub jkt: &'a str,
    /// The TEE (`snp`, `tdx`, `sim`…).
    pub tee: &'a str,
    /// The launch measurement, lowercase hex.
    pub measurement: &'a str,
}

/// The verifier's client CA: issues the certificates.
pub struct ClientCa {
    issuer: Issuer<'static, KeyPair>,
}

impl ClientCa {
    /// From the CA certificate and its private key (PEM; PKCS#8, the key
    /// `enclavectl dev-pki` writes as `client-ca-key.pem`).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<ClientCa, KeyError> {
        let key =
            KeyPair::from_pem(key_pem).map_err(|e| KeyError(format!("client CA key: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| KeyError(format!("client CA certificate: {e}")))?;
        Ok(ClientCa { issuer })
    }

    /// A client certificate (PEM) for the key `spki` with `subject`'s
    /// claims, valid from [`BACKDATE_SECS`] before `now` to `expires_at`
    /// (Unix seconds).
    pub fn issue(
        &self,
        spki: &[u8],
        subject: &Subject<'_>,
        now: i64,
        expires_at: i64,
    ) -> Result<String, KeyError> {
        let key = EnclavePublicKey::from_spki(spki).ok_or_else(|| {
            KeyError("enclave key: not an EC P-256 or P-384 SubjectPublicKeyInfo".into())
        })?;
        if subject.measurement.is_empty()
            || !subject.measurement.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(KeyError(format!(
                "measurement {:?} is not hex",
                subject.measurement
            )));
        }
        if subject.tee.is_empty()
            || !subject
                .tee
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(KeyError(format!(
                "tee {:?} is not a plain name",
                subject.tee
            )));
        }
        let time = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .map_err(|e| KeyError(format!("certificate time {t}: {e}")))
        };
        let ia5 = |s: String| {
            s.try_into()
                .map_err(|e: rcgen::Error| KeyError(format!("URI SAN: {e}")))
        };
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("enclave:{}", subject.jkt));
        dn.push(DnType::OrganizationalUnitName, subject.tee);
        params.distinguished_name = dn;
        params.subject_alt_names = vec![
            SanType::URI(ia5(format!(
                "{MEASUREMENT_URI_PREFIX}{}",
                subject.measurement.to_ascii_lowercase()
            ))?),
            SanType::URI(ia5(format!("{TEE_URI_PREFIX}{}", subject.tee))?),
        ];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = time(now.saturating_sub(BACKDATE_SECS))?;
        params.not_after = time(expires_at)?;
        let mut serial = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
            .map_err(|_| KeyError("random generator failed".into()))?;
        // Positive and without a leading zero octet.
        serial[0] = (serial[0] & 0x7f) | 0x40;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| KeyError(format!("client certificate: {e}")))?;
        Ok(cert.pem())
    }
}

/// A new client CA (development set-ups, tests): the certificate and its
/// PKCS#8 key, PEM.
pub fn generate_ca(common_name: &str) -> Result<(String, String), KeyError> {
    let err = |e: rcgen::Error| KeyError(format!("client CA generation: {e}"));
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let cert = params.self_signed(&key).map_err(err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spki_of(k: &KeyPair) -> Vec<u8> {
        k.subject_public_key_info()
    }

    #[test]
    fn issues_a_client_certificate_for_the_enclave_key() {
        let (ca_pem, ca_key) = generate_ca("test client CA").unwrap();
        let ca = ClientCa::from_pem(&ca_pem, &ca_key).unwrap();
        let enclave = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let spki = spki_of(&enclave);
        let subject = Subject {
            jkt: "abc",
            tee: "sim",
            measurement: "AB01",
        };
        let pem = ca.issue(&spki, &subject, 1_000_000, 1_000_060).unwrap();
        let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(cert.public_key().raw, &spki[..]);
        assert_eq!(
            cert.validity().not_before.timestamp(),
            1_000_000 - BACKDATE_SECS
        );
        assert_eq!(cert.validity().not_after.timestamp(), 1_000_060);
        let sans: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| format!("{n}"))
            .collect();
        assert!(
            sans.iter()
                .any(|s| s.contains("urn:enclave:measurement:ab01")),
            "{sans:?}"
        );
        assert!(
            sans.iter().any(|s| s.contains("urn:enclave:tee:sim")),
            "{sans:?}"
        );
        let subject_dn = cert.subject().to_string();
        assert!(
            subject_dn.contains("CN=enclave:abc") && subject_dn.contains("OU=sim"),
            "{subject_dn}"
        );
        assert!(!cert.is_ca());
        let ca_der = rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert!(cert.verify_signature(Some(ca_cert.public_key())).is_ok());
        assert_eq!(cert.issuer(), ca_cert.subject());
    }

    #[test]
    fn refuses_what_it_cannot_certify() {
        let (ca_pem, ca_key) = generate_ca("test client CA").unwrap();
        let ca = ClientCa::from_pem(&ca_pem, &ca_key).unwrap();
        let spki = spki_of(&KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap());
        let ok = Subject {
            jkt: "abc",
            tee: "sim",
            measurement: "ab",
        };
        assert!(ca.issue(b"not a key", &ok, 0, 60).is_err());
        assert!(ca
            .issue(
                &spki,
                &Subject {
                    measurement: "zz",
                    ..ok.clone()
                },
                0,
                60
            )
            .is_err());
        assert!(ca
            .issue(
                &spki,
                &Subject {
                    tee: "a,b",
                    ..ok.clone()
                },
                0,
                60
            )
            .is_err());
        assert!(ca
            .issue(
                &spki,
                &Subject {
                    measurement: "",
                    ..ok
                },
                0,
                60
            )
            .is_err());
        assert!(ClientCa::from_pem("junk", &ca_key).is_err());
    }

    use rustls::pki_types::pem::PemObject as _;
}
