//! A simulated PSP for tests: an RSA-PSS ARK and ASK and a P-384 VCEK with
//! the AMD extensions, ARK-signed CRLs, and reports signed by the VCEK.
//! Same shapes as AMD's (only the RSA keys are 2048-bit, committed under
//! `tests/data/` so debug-build tests need no RSA key generation).

use std::str::FromStr;
use std::time::Duration;

use der::asn1::{BitString, Ia5String, OctetString, UtcTime};
use der::{Decode, Encode};
use p384::ecdsa::signature::Signer as _;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use sha2::{Digest, Sha256, Sha384};
use spki::SubjectPublicKeyInfoOwned;
use wire::{Bytes, CertKind, Certificate as WireCert, EvidenceBundle, Tee};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

/// Start and end of validity, Unix seconds.
pub type Window = (u64, u64);

/// 2020-01-01 .. 2045-01-01.
pub const LONG: Window = (1_577_836_800, 2_366_841_600);

/// Knobs for one simulated chain.
#[derive(Clone)]
pub struct Options {
    pub ark_validity: Window,
    pub ask_validity: Window,
    pub vcek_validity: Window,
    /// VCEK TCB extensions: bl, tee, snp, ucode.
    pub vcek_tcb: [u8; 4],
    pub product_name: &'static str,
    pub hw_id: Vec<u8>,
    /// Serial of the ASK (revocation tests).
    pub ask_serial: u8,
    /// CN of the VCEK.
    pub vcek_cn: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ark_validity: LONG,
            ask_validity: LONG,
            vcek_validity: LONG,
            vcek_tcb: [3, 0, 8, 115],
            product_name: "Milan-B0",
            hw_id: (0..64u8).map(|i| i.wrapping_mul(7) ^ 0x5a).collect(),
            ask_serial: 2,
            vcek_cn: "SEV-VCEK",
        }
    }
}

/// A simulated chain with its keys.
pub struct Sim {
    pub ark: Vec<u8>,
    pub ask: Vec<u8>,
    pub vcek: Vec<u8>,
    pub opts: Options,
    ark_key: rsa::RsaPrivateKey,
    vcek_key: p384::ecdsa::SigningKey,
}

fn rsa_key(pem: &str) -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap()
}

fn name(cn: &str) -> Name {
    Name::from_str(&format!(
        "CN={cn},O=Advanced Micro Devices,ST=CA,L=Santa Clara,C=US,OU=Engineering"
    ))
    .unwrap()
}

fn time(secs: u64) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(secs)).unwrap())
}

fn pss_alg() -> spki::AlgorithmIdentifierOwned {
    rsa::pss::get_default_pss_signature_algo_id::<Sha384>().unwrap()
}

fn sign_pss(key: &rsa::RsaPrivateKey, msg: &[u8]) -> Vec<u8> {
    let sk = rsa::pss::SigningKey::<Sha384>::new(key.clone());
    sk.sign_with_rng(&mut rand_core::OsRng, msg).to_vec()
}

fn ext(oid: &str, critical: bool, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: der::oid::ObjectIdentifier::new_unwrap(oid),
        critical,
        extn_value: OctetString::new(value).unwrap(),
    }
}

fn int_der(v: u8) -> Vec<u8> {
    der::asn1::Uint::new(&[v]).unwrap().to_der().unwrap()
}

fn cert(
    subject: &str,
    issuer: &str,
    serial: u8,
    validity: Window,
    spki_der: &[u8],
    exts: Vec<Extension>,
    signer: &rsa::RsaPrivateKey,
) -> Vec<u8> {
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[serial]).unwrap(),
        signature: pss_alg(),
        issuer: name(issuer),
        validity: Validity {
            not_before: time(validity.0),
            not_after: time(validity.1),
        },
        subject: name(subject),
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(spki_der).unwrap(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(exts),
    };
    let tbs_der = tbs.to_der().unwrap();
    let sig = sign_pss(signer, &tbs_der);
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: pss_alg(),
        signature: BitString::from_bytes(&sig).unwrap(),
    }
    .to_der()
    .unwrap()
}

fn ca_exts() -> Vec<Extension> {
    vec![
        ext(
            "2.5.29.19",
            true,
            BasicConstraints {
                ca: true,
                path_len_constraint: Some(0),
            }
            .to_der()
            .unwrap(),
        ),
        ext(
            "2.5.29.15",
            true,
            KeyUsage(KeyUsages::KeyCertSign.into()).to_der().unwrap(),
        ),
    ]
}

impl Sim {
    /// Builds a chain with `opts`.
    pub fn new(opts: Options) -> Sim {
        let ark_key = rsa_key(include_str!("../data/sim_ark_key.pem"));
        let ask_key = rsa_key(include_str!("../data/sim_ask_key.pem"));
        let vcek_key = p384::ecdsa::SigningKey::from_bytes(&[0x42u8; 48].into()).unwrap();
        let ark_spki = ark_key.to_public_key().to_public_key_der().unwrap();
        let ask_spki = ask_key.to_public_key().to_public_key_der().unwrap();
        let vcek_spki = p384::PublicKey::from(vcek_key.verifying_key())
            .to_public_key_der()
            .unwrap();
        let ark = cert(
            "ARK-Sim",
            "ARK-Sim",
            1,
            opts.ark_validity,
            ark_spki.as_bytes(),
            ca_exts(),
            &ark_key,
        );
        let ask = cert(
            "SEV-Sim",
            "ARK-Sim",
            opts.ask_serial,
            opts.ask_validity,
            ask_spki.as_bytes(),
            ca_exts(),
            &ark_key,
        );
        let [bl, tee, snp, ucode] = opts.vcek_tcb;
        let amd = "1.3.6.1.4.1.3704.1";
        let vcek_exts = vec![
            ext(&format!("{amd}.1"), false, int_der(0)),
            ext(
                &format!("{amd}.2"),
                false,
                Ia5String::new(opts.product_name).unwrap().to_der().unwrap(),
            ),
            ext(&format!("{amd}.3.1"), false, int_der(bl)),
            ext(&format!("{amd}.3.2"), false, int_der(tee)),
            ext(&format!("{amd}.3.3"), false, int_der(snp)),
            ext(&format!("{amd}.3.8"), false, int_der(ucode)),
            ext(&format!("{amd}.4"), false, opts.hw_id.clone()),
        ];
        let vcek = cert(
            opts.vcek_cn,
            "SEV-Sim",
            0,
            opts.vcek_validity,
            vcek_spki.as_bytes(),
            vcek_exts,
            &ask_key,
        );
        Sim {
            ark,
            ask,
            vcek,
            opts,
            ark_key,
            vcek_key,
        }
    }

    /// SHA-256 of the ARK, hex: the `sim.ark_sha256` pin.
    pub fn ark_pin(&self) -> String {
        appraisal::hex::encode(&Sha256::digest(&self.ark))
    }

    /// A CRL signed by the ARK, revoking `serials`.
    pub fn crl(&self, window: Window, serials: &[u8]) -> Vec<u8> {
        let revoked: Vec<RevokedCert> = serials
            .iter()
            .map(|s| RevokedCert {
                serial_number: SerialNumber::new(&[*s]).unwrap(),
                revocation_date: time(window.0),
                crl_entry_extensions: None,
            })
            .collect();
        let tbs = TbsCertList {
            version: Version::V2,
            signature: pss_alg(),
            issuer: name("ARK-Sim"),
            this_update: time(window.0),
            next_update: Some(time(window.1)),
            revoked_certificates: if revoked.is_empty() {
                None
            } else {
                Some(revoked)
            },
            crl_extensions: None,
        };
        let sig = sign_pss(&self.ark_key, &tbs.to_der().unwrap());
        CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: pss_alg(),
            signature: BitString::from_bytes(&sig).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    /// A v2 Milan report template matching the VCEK (TCB, chip id), not yet signed.
    pub fn template(&self) -> Vec<u8> {
        let mut r = super::read("snp/milan-v2-virtee/report.bin");
        r[0x1a0..0x1e0].copy_from_slice(&self.opts.hw_id);
        r
    }

    /// Signs `report` (bytes 0x000..0x2A0) with the VCEK key, in place.
    pub fn sign(&self, report: &mut [u8]) {
        let sig: p384::ecdsa::Signature = self.vcek_key.sign(&report[..0x2a0]);
        let (r, s) = (sig.r().to_bytes(), sig.s().to_bytes());
        report[0x2a0..0x330].fill(0);
        for (i, b) in r.iter().rev().enumerate() {
            report[0x2a0 + i] = *b;
        }
        for (i, b) in s.iter().rev().enumerate() {
            report[0x2e8 + i] = *b;
        }
    }

    /// A signed report from the template after `edit`.
    pub fn report(&self, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut r = self.template();
        edit(&mut r);
        self.sign(&mut r);
        r
    }

    /// A `sim` bundle carrying the chain and `crls`.
    pub fn bundle(&self, report: Vec<u8>, crls: Vec<Vec<u8>>) -> EvidenceBundle {
        let mut b = EvidenceBundle::new(Tee::Sim, "sim-psp", report);
        b.certificates.push(WireCert {
            kind: CertKind::Vcek,
            der: Bytes(self.vcek.clone()),
        });
        b.certificates.push(WireCert {
            kind: CertKind::Ask,
            der: Bytes(self.ask.clone()),
        });
        b.certificates.push(WireCert {
            kind: CertKind::Ark,
            der: Bytes(self.ark.clone()),
        });
        b.crls = crls.into_iter().map(Bytes).collect();
        b
    }
}
