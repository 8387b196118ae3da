//! The simulation certificate chain: ARK → ASK → VCEK, in the shapes of
//! AMD's (`shared/docs/tee-formats.md` §1.4, and the real Milan ARK/ASK in
//! `shared/fixtures/snp/amd-certs` and VCEKs in `shared/fixtures/snp/*/vcek.der`).
//!
//! | cert | key | signed by | serial | validity | extensions (in AMD's order) |
//! |---|---|---|---|---|---|
//! | ARK | RSA-4096 | itself | 0x10000 | 25 years (≤ 2049) | KeyUsage (critical: keyCertSign, cRLSign), SKI, BasicConstraints (critical: CA), CRL DP |
//! | ASK | RSA-4096 | ARK | 0x10001 | 25 years (≤ 2049) | SKI, AKI, BasicConstraints (critical: CA, pathlen 0), KeyUsage (critical: keyCertSign), CRL DP |
//! | VCEK | EC P-384 | ASK | 0 | 7 years | AMD's `1.3.6.1.4.1.3704.1.*`: structVersion, productName, blSPL, teeSPL, spl4-7, snpSPL, ucodeSPL, hwID |
//!
//! Every signature is RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48, trailer 1,
//! with the hash AlgorithmIdentifiers carrying NULL parameters, as AMD's do.
//! Names have AMD's RDN order (OU, C, L, ST, O, CN) and string types (UTF8String,
//! PrintableString for C), but say SIMULATION in OU, O and CN: nothing here
//! claims to be AMD, and no production policy pins this ARK.
//!
//! Three details copy AMD's bytes rather than strict DER, so that a verifier
//! that accepts the simulation also parses the real thing and the other way
//! round: the PSS parameters spell out the DEFAULT trailerField 1, the ASK's
//! KeyUsage is `03 02 01 04` (AMD's unused-bits count; DER would write
//! `03 02 02 04`), and the VCEK's hwID extension value is the 64 raw chip-id
//! bytes, not a DER OCTET STRING inside the extnValue (every real Milan/Genoa
//! VCEK is encoded so).
//!
//! Key identifiers are the leftmost 160 bits of SHA-256 of the subjectPublicKey
//! bits (RFC 7093 §2 method 1).

use p384::pkcs8::EncodePublicKey as _;
use rand_core::OsRng;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Verifier as _};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use tee_formats::snp::TcbVersion;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::der::asn1::{
    Any, BitString, GeneralizedTime, Ia5String, Ia5StringRef, ObjectIdentifier, OctetString,
    PrintableStringRef, SetOfVec, UtcTime, Utf8StringRef,
};
use x509_cert::der::{DateTime, Decode as _, Encode as _};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};

/// RSA modulus size of the ARK and ASK, as AMD's.
pub const RSA_BITS: usize = 4096;
/// The VCEK's productName: a Milan B0 part, matching the report's CPUID bytes
/// (family 0x19, model 0x01, stepping 1).
pub const PRODUCT_NAME: &str = "Milan-B0";
/// CN of the simulation ARK (AMD's is `ARK-Milan`).
pub const ARK_CN: &str = "ARK-Milan SIMULATION";
/// CN of the simulation ASK (AMD's is `SEV-Milan`).
pub const ASK_CN: &str = "SEV-Milan SIMULATION";
/// CN of the simulation VCEK (AMD's is `SEV-VCEK`).
pub const VCEK_CN: &str = "SEV-VCEK SIMULATION";
/// OU of every simulation certificate (AMD's is `Engineering`).
pub const ORGANIZATIONAL_UNIT: &str = "Engineering SIMULATION";
/// O of every simulation certificate (AMD's is `Advanced Micro Devices`).
pub const ORGANIZATION: &str = "enclave-init sim-psp SIMULATION";
/// CRL distribution point of the ARK and ASK: the shape of AMD's
/// (`https://kdsintf.amd.com/vcek/v1/Milan/crl`) under `.invalid`
/// (RFC 6761), which never resolves: the simulation has no CRL.
pub const CRL_URL: &str = "https://sim-psp.invalid/vcek/v1/Milan/crl";

const ARK_SERIAL: u32 = 0x1_0000;
const ASK_SERIAL: u32 = 0x1_0001;
const CA_YEARS: u16 = 25;
const VCEK_YEARS: u16 = 7;

// AMD's VCEK extensions (go-sev-guest `kds/kds.go`; tee-formats.md §1.4).
const OID_STRUCT_VERSION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.1");
const OID_PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
const OID_BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
const OID_TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
const OID_SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
const OID_SPL_4: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.4");
const OID_SPL_5: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.5");
const OID_SPL_6: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.6");
const OID_SPL_7: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.7");
const OID_UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
const OID_HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");

// RFC 5280 extensions and X.520 attribute types.
const OID_SKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_CRL_DP: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.31");
const OID_AKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_C: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const OID_L: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.7");
const OID_ST: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.8");
const OID_O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const OID_OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");

/// KeyUsage of the ARK: keyCertSign + cRLSign, AMD's bytes (= DER).
const ARK_KEY_USAGE: [u8; 4] = [0x03, 0x02, 0x01, 0x06];
/// KeyUsage of the ASK: keyCertSign, AMD's bytes (DER would be `03 02 02 04`).
const ASK_KEY_USAGE: [u8; 4] = [0x03, 0x02, 0x01, 0x04];

/// Domain tag of the simulated chip id.
const CHIP_ID_DOMAIN: &[u8] = b"enclave-init/sim-psp/chip-id/v1\0";

/// The TCB the simulated VCEK is issued for (Milan layout: the SPLs that
/// appear in the VCEK extensions and in the report's TCB_VERSION fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimTcb {
    /// blSPL / BOOT_LOADER.
    pub boot_loader: u8,
    /// teeSPL / TEE.
    pub tee: u8,
    /// snpSPL / SNP.
    pub snp: u8,
    /// ucodeSPL / MICROCODE.
    pub microcode: u8,
}

impl SimTcb {
    /// The TCB of a new simulation VCEK: that of the real Milan v3 report in
    /// `shared/fixtures/snp/milan-v3-vlek-trustee` (ucodeSPL 0xD9 ≥ 0x80, so
    /// its INTEGER takes two bytes, the encoding that trips naive parsers).
    pub const DEFAULT: SimTcb = SimTcb {
        boot_loader: 4,
        tee: 0,
        snp: 24,
        microcode: 0xD9,
    };

    /// As a Milan/Genoa TCB_VERSION: byte 0 BOOT_LOADER, 1 TEE, 6 SNP, 7
    /// MICROCODE (tee-formats.md §1.2).
    pub fn to_tcb_version(self) -> TcbVersion {
        TcbVersion::from_bytes([
            self.boot_loader,
            self.tee,
            0,
            0,
            0,
            0,
            self.snp,
            self.microcode,
        ])
    }
}

/// What a VCEK certificate's AMD extensions say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcekInfo {
    /// structVersion (`…1.1`).
    pub struct_version: u8,
    /// productName (`…1.2`).
    pub product_name: String,
    /// blSPL, teeSPL, snpSPL, ucodeSPL (`…1.3.{1,2,3,8}`).
    pub tcb: SimTcb,
    /// hwID (`…1.4`): the chip id.
    pub chip_id: [u8; 64],
}

impl VcekInfo {
    /// Reads the AMD extensions of a VCEK certificate (DER). The hwID is
    /// accepted both as raw bytes (AMD's encoding, and ours) and as a DER
    /// OCTET STRING. Every extension this simulation writes must be present.
    pub fn from_cert_der(der: &[u8]) -> Result<VcekInfo, ChainError> {
        let cert = parse_cert("VCEK", der)?;
        let exts = cert.tbs_certificate.extensions.unwrap_or_default();
        let find = |oid: ObjectIdentifier, name: &'static str| {
            exts.iter()
                .find(|e| e.extn_id == oid)
                .map(|e| e.extn_value.as_bytes())
                .ok_or(ChainError::MissingExtension { name })
        };
        let int = |oid, name| -> Result<u8, ChainError> {
            u8::from_der(find(oid, name)?)
                .map_err(|source| ChainError::BadExtension { name, source })
        };
        let product_name = Ia5StringRef::from_der(find(OID_PRODUCT_NAME, "productName")?)
            .map_err(|source| ChainError::BadExtension {
                name: "productName",
                source,
            })?
            .to_string();
        let hw_id = find(OID_HW_ID, "hwID")?;
        let chip_id = match <[u8; 64]>::try_from(hw_id) {
            Ok(raw) => raw,
            Err(_) => OctetString::from_der(hw_id)
                .ok()
                .and_then(|o| <[u8; 64]>::try_from(o.as_bytes()).ok())
                .ok_or(ChainError::HwIdLength { got: hw_id.len() })?,
        };
        Ok(VcekInfo {
            struct_version: int(OID_STRUCT_VERSION, "structVersion")?,
            product_name,
            tcb: SimTcb {
                boot_loader: int(OID_BL_SPL, "blSPL")?,
                tee: int(OID_TEE_SPL, "teeSPL")?,
                snp: int(OID_SNP_SPL, "snpSPL")?,
                microcode: int(OID_UCODE_SPL, "ucodeSPL")?,
            },
            chip_id,
        })
    }
}

/// Why a certificate could not be issued, read or checked.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// DER encoding of a certificate part failed.
    #[error("encoding the {what}")]
    Encode {
        /// Which part.
        what: &'static str,
        /// The cause.
        #[source]
        source: x509_cert::der::Error,
    },
    /// A certificate is not valid DER X.509.
    #[error("parsing the {cert} certificate")]
    Parse {
        /// Which certificate.
        cert: &'static str,
        /// The cause.
        #[source]
        source: x509_cert::der::Error,
    },
    /// A public key could not be encoded or decoded.
    #[error("{what} public key")]
    PublicKey {
        /// Which key.
        what: &'static str,
        /// The cause.
        #[source]
        source: x509_cert::spki::Error,
    },
    /// RSA-PSS signing failed.
    #[error("signing the {cert} certificate")]
    Sign {
        /// Which certificate.
        cert: &'static str,
        /// The cause.
        #[source]
        source: rsa::signature::Error,
    },
    /// A certificate's issuer is not the subject of the certificate it was
    /// checked against.
    #[error("the {cert} certificate's issuer is not the {issuer}")]
    IssuerMismatch {
        /// The certificate.
        cert: &'static str,
        /// Its expected issuer.
        issuer: &'static str,
    },
    /// A certificate is not signed with RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48.
    #[error("the {cert} certificate is not signed with RSASSA-PSS SHA-384, salt 48")]
    Algorithm {
        /// The certificate.
        cert: &'static str,
    },
    /// A certificate's signature does not verify with its issuer's key.
    #[error("the {cert} certificate's signature does not verify with the {issuer} key")]
    Signature {
        /// The certificate.
        cert: &'static str,
        /// Its issuer.
        issuer: &'static str,
    },
    /// A stored certificate is for another key than the stored key file.
    #[error("the {cert} certificate is for another key than the key file")]
    KeyMismatch {
        /// The certificate.
        cert: &'static str,
    },
    /// A stored certificate has expired.
    #[error("the {cert} certificate has expired")]
    Expired {
        /// The certificate.
        cert: &'static str,
    },
    /// A VCEK extension is missing.
    #[error("VCEK extension {name} is missing")]
    MissingExtension {
        /// The extension's name.
        name: &'static str,
    },
    /// A VCEK extension does not decode.
    #[error("VCEK extension {name} does not decode")]
    BadExtension {
        /// The extension's name.
        name: &'static str,
        /// The cause.
        #[source]
        source: x509_cert::der::Error,
    },
    /// The hwID extension is not 64 bytes.
    #[error("VCEK hwID is {got} bytes, want 64")]
    HwIdLength {
        /// Its length.
        got: usize,
    },
}

/// The simulated chip id of the chip whose VCEK public key is `vcek`:
/// SHA-512(domain tag ‖ SEC1 uncompressed point). Stable for a key, so the
/// state directory needs no separate file for it.
pub fn chip_id_for(vcek: &p384::PublicKey) -> [u8; 64] {
    use p384::elliptic_curve::sec1::ToEncodedPoint as _;
    Sha512::new()
        .chain_update(CHIP_ID_DOMAIN)
        .chain_update(vcek.to_encoded_point(false).as_bytes())
        .finalize()
        .into()
}

/// Issues the self-signed ARK for `ark`, valid from `now` for 25 years.
pub fn issue_ark(ark: &RsaPrivateKey, now: DateTime) -> Result<Vec<u8>, ChainError> {
    let spki = rsa_spki("ARK", &ark.to_public_key())?;
    let ski = key_identifier(&spki);
    let extensions = vec![
        raw_extension(OID_KEY_USAGE, true, ARK_KEY_USAGE.to_vec())?,
        extension(
            OID_SKI,
            false,
            &SubjectKeyIdentifier(octets(ski.to_vec())?),
            "ARK SKI",
        )?,
        extension(
            OID_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: None,
            },
            "ARK BasicConstraints",
        )?,
        extension(
            OID_CRL_DP,
            false,
            &crl_distribution_points()?,
            "ARK CRL distribution point",
        )?,
    ];
    let name = sim_name(ARK_CN)?;
    let tbs = tbs(
        ARK_SERIAL,
        name.clone(),
        name,
        validity(now, CA_YEARS)?,
        spki,
        extensions,
    )?;
    sign("ARK", tbs, ark)
}

/// Issues the ASK for `ask`, signed by the ARK key `ark`.
pub fn issue_ask(
    ask: &RsaPublicKey,
    ark: &RsaPrivateKey,
    now: DateTime,
) -> Result<Vec<u8>, ChainError> {
    let spki = rsa_spki("ASK", ask)?;
    let ski = key_identifier(&spki);
    let aki = key_identifier(&rsa_spki("ARK", &ark.to_public_key())?);
    let extensions = vec![
        extension(
            OID_SKI,
            false,
            &SubjectKeyIdentifier(octets(ski.to_vec())?),
            "ASK SKI",
        )?,
        extension(
            OID_AKI,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(octets(aki.to_vec())?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            "ASK AKI",
        )?,
        extension(
            OID_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: Some(0),
            },
            "ASK BasicConstraints",
        )?,
        raw_extension(OID_KEY_USAGE, true, ASK_KEY_USAGE.to_vec())?,
        extension(
            OID_CRL_DP,
            false,
            &crl_distribution_points()?,
            "ASK CRL distribution point",
        )?,
    ];
    let tbs = tbs(
        ASK_SERIAL,
        sim_name(ARK_CN)?,
        sim_name(ASK_CN)?,
        validity(now, CA_YEARS)?,
        spki,
        extensions,
    )?;
    sign("ASK", tbs, ark)
}

/// Issues the VCEK for `vcek`, signed by the ASK key `ask`, carrying `tcb`
/// and `chip_id` in AMD's extensions.
pub fn issue_vcek(
    vcek: &p384::PublicKey,
    ask: &RsaPrivateKey,
    tcb: SimTcb,
    chip_id: &[u8; 64],
    now: DateTime,
) -> Result<Vec<u8>, ChainError> {
    let doc = vcek
        .to_public_key_der()
        .map_err(|source| ChainError::PublicKey {
            what: "VCEK",
            source,
        })?;
    let spki = SubjectPublicKeyInfoOwned::from_der(doc.as_bytes()).map_err(|source| {
        ChainError::Encode {
            what: "VCEK public key",
            source,
        }
    })?;
    let int = |oid, v: u8, what| extension(oid, false, &v, what);
    // AMD's order: 1.1, 1.2, 3.1, 3.2, 3.4-3.7, 3.3, 3.8, 1.4.
    let extensions = vec![
        int(OID_STRUCT_VERSION, 0, "structVersion")?,
        extension(OID_PRODUCT_NAME, false, &ia5(PRODUCT_NAME)?, "productName")?,
        int(OID_BL_SPL, tcb.boot_loader, "blSPL")?,
        int(OID_TEE_SPL, tcb.tee, "teeSPL")?,
        int(OID_SPL_4, 0, "spl_4")?,
        int(OID_SPL_5, 0, "spl_5")?,
        int(OID_SPL_6, 0, "spl_6")?,
        int(OID_SPL_7, 0, "spl_7")?,
        int(OID_SNP_SPL, tcb.snp, "snpSPL")?,
        int(OID_UCODE_SPL, tcb.microcode, "ucodeSPL")?,
        raw_extension(OID_HW_ID, false, chip_id.to_vec())?,
    ];
    let tbs = tbs(
        0,
        sim_name(ASK_CN)?,
        sim_name(VCEK_CN)?,
        validity(now, VCEK_YEARS)?,
        spki,
        extensions,
    )?;
    sign("VCEK", tbs, ask)
}

/// Checks that `cert` (named `cert_name`) was issued by `issuer`: names
/// chain, the algorithm is RSASSA-PSS SHA-384 salt 48, and the signature over
/// the TBS verifies with the issuer's RSA key.
pub fn verify_issued_by(
    cert_name: &'static str,
    cert_der: &[u8],
    issuer_name: &'static str,
    issuer_der: &[u8],
) -> Result<(), ChainError> {
    let cert = parse_cert(cert_name, cert_der)?;
    let issuer = parse_cert(issuer_name, issuer_der)?;
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return Err(ChainError::IssuerMismatch {
            cert: cert_name,
            issuer: issuer_name,
        });
    }
    let alg = pss_algorithm()?;
    if cert.signature_algorithm != alg || cert.tbs_certificate.signature != alg {
        return Err(ChainError::Algorithm { cert: cert_name });
    }
    let spki = issuer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|source| ChainError::Encode {
            what: "issuer public key",
            source,
        })?;
    let key = RsaPublicKey::from_public_key_der(&spki).map_err(|source| ChainError::PublicKey {
        what: issuer_name,
        source,
    })?;
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|source| ChainError::Encode {
            what: "TBS certificate",
            source,
        })?;
    let bad = || ChainError::Signature {
        cert: cert_name,
        issuer: issuer_name,
    };
    let signature = rsa::pss::Signature::try_from(cert.signature.raw_bytes()).map_err(|_| bad())?;
    rsa::pss::VerifyingKey::<Sha384>::new(key)
        .verify(&tbs, &signature)
        .map_err(|_| bad())
}

/// The DER SubjectPublicKeyInfo of a certificate.
pub fn spki_der(cert_name: &'static str, cert_der: &[u8]) -> Result<Vec<u8>, ChainError> {
    parse_cert(cert_name, cert_der)?
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|source| ChainError::Encode {
            what: "public key",
            source,
        })
}

/// Whether a certificate's notAfter has passed at `now`.
pub fn expired(
    cert_name: &'static str,
    cert_der: &[u8],
    now: DateTime,
) -> Result<bool, ChainError> {
    let cert = parse_cert(cert_name, cert_der)?;
    Ok(cert.tbs_certificate.validity.not_after.to_unix_duration() <= now.unix_duration())
}

pub(crate) fn rsa_spki(
    what: &'static str,
    key: &RsaPublicKey,
) -> Result<SubjectPublicKeyInfoOwned, ChainError> {
    let doc = key
        .to_public_key_der()
        .map_err(|source| ChainError::PublicKey { what, source })?;
    SubjectPublicKeyInfoOwned::from_der(doc.as_bytes()).map_err(|source| ChainError::Encode {
        what: "RSA public key",
        source,
    })
}

fn parse_cert(cert: &'static str, der: &[u8]) -> Result<Certificate, ChainError> {
    Certificate::from_der(der).map_err(|source| ChainError::Parse { cert, source })
}

/// AMD's AlgorithmIdentifier, byte for byte: rsassaPss with hashAlgorithm
/// SHA-384 (NULL parameters), maskGenAlgorithm MGF1-SHA-384, saltLength 48
/// and trailerField 1 written out (`a3 03 02 01 01`: a DEFAULT value that
/// strict DER, and the `rsa` crate, would leave out; every AMD certificate
/// has it).
const AMD_PSS_ALGORITHM: [u8; 72] = [
    0x30, 0x46, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x39, 0xa0,
    0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
    0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
    0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0xa2, 0x03,
    0x02, 0x01, 0x30, 0xa3, 0x03, 0x02, 0x01, 0x01,
];

fn pss_algorithm() -> Result<AlgorithmIdentifierOwned, ChainError> {
    AlgorithmIdentifierOwned::from_der(&AMD_PSS_ALGORITHM).map_err(|source| ChainError::Encode {
        what: "RSASSA-PSS algorithm identifier",
        source,
    })
}

fn tbs(
    serial: u32,
    issuer: Name,
    subject: Name,
    validity: Validity,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
) -> Result<TbsCertificate, ChainError> {
    Ok(TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::from(serial),
        signature: pss_algorithm()?,
        issuer,
        validity,
        subject,
        subject_public_key_info,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    })
}

fn sign(
    cert: &'static str,
    tbs: TbsCertificate,
    issuer: &RsaPrivateKey,
) -> Result<Vec<u8>, ChainError> {
    let tbs_der = tbs.to_der().map_err(|source| ChainError::Encode {
        what: "TBS certificate",
        source,
    })?;
    let signer = rsa::pss::SigningKey::<Sha384>::new(issuer.clone());
    let signature = signer
        .try_sign_with_rng(&mut OsRng, &tbs_der)
        .map_err(|source| ChainError::Sign { cert, source })?;
    let signature =
        BitString::from_bytes(&signature.to_vec()).map_err(|source| ChainError::Encode {
            what: "signature",
            source,
        })?;
    let signature_algorithm = tbs.signature.clone();
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm,
        signature,
    }
    .to_der()
    .map_err(|source| ChainError::Encode {
        what: "certificate",
        source,
    })
}

/// AMD's RDN order (OU, C, L, ST, O, CN) and string types, SIMULATION values.
fn sim_name(cn: &str) -> Result<Name, ChainError> {
    let enc = |source| ChainError::Encode {
        what: "name",
        source,
    };
    let utf8 = |s: &str| {
        Utf8StringRef::new(s)
            .and_then(|v| Any::encode_from(&v))
            .map_err(enc)
    };
    let rdn = |oid: ObjectIdentifier, value: Any| {
        SetOfVec::try_from(vec![AttributeTypeAndValue { oid, value }])
            .map(RelativeDistinguishedName)
            .map_err(enc)
    };
    let country = PrintableStringRef::new("US")
        .and_then(|v| Any::encode_from(&v))
        .map_err(enc)?;
    Ok(RdnSequence(vec![
        rdn(OID_OU, utf8(ORGANIZATIONAL_UNIT)?)?,
        rdn(OID_C, country)?,
        rdn(OID_L, utf8("Santa Clara")?)?,
        rdn(OID_ST, utf8("CA")?)?,
        rdn(OID_O, utf8(ORGANIZATION)?)?,
        rdn(OID_CN, utf8(cn)?)?,
    ]))
}

/// From `now` to the same calendar date and time `years` later (AMD's
/// certificates run from 2020-10-22T17:23:05Z to 2045-10-22T17:23:05Z), but
/// not past 2049-12-31T23:59:59Z: both times then stay UTCTime, as in every
/// AMD certificate (RFC 5280 §4.1.2.5 switches to GeneralizedTime in 2050,
/// which is also handled, for clocks past 2049).
fn validity(now: DateTime, years: u16) -> Result<Validity, ChainError> {
    let enc = |source| ChainError::Encode {
        what: "validity",
        source,
    };
    // 29 February has no anniversary in most years.
    let day = if now.month() == 2 && now.day() == 29 {
        28
    } else {
        now.day()
    };
    let mut later = DateTime::new(
        now.year() + years,
        now.month(),
        day,
        now.hour(),
        now.minutes(),
        now.seconds(),
    )
    .map_err(enc)?;
    if now.year() < 2050 && later.year() >= 2050 {
        later = DateTime::new(2049, 12, 31, 23, 59, 59).map_err(enc)?;
    }
    Ok(Validity {
        not_before: x509_time(now).map_err(enc)?,
        not_after: x509_time(later).map_err(enc)?,
    })
}

fn x509_time(t: DateTime) -> Result<Time, x509_cert::der::Error> {
    if t.year() < 2050 {
        Ok(Time::UtcTime(UtcTime::from_date_time(t)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(t)))
    }
}

fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> [u8; 20] {
    let digest = Sha256::digest(spki.subject_public_key.raw_bytes());
    let mut id = [0u8; 20];
    id.copy_from_slice(&digest[..20]);
    id
}

fn crl_distribution_points() -> Result<CrlDistributionPoints, ChainError> {
    let url = Ia5String::new(CRL_URL).map_err(|source| ChainError::Encode {
        what: "CRL URL",
        source,
    })?;
    Ok(CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::UniformResourceIdentifier(url),
        ])),
        reasons: None,
        crl_issuer: None,
    }]))
}

fn ia5(s: &str) -> Result<Ia5StringRef<'_>, ChainError> {
    Ia5StringRef::new(s).map_err(|source| ChainError::Encode {
        what: "IA5String",
        source,
    })
}

fn octets(bytes: Vec<u8>) -> Result<OctetString, ChainError> {
    OctetString::new(bytes).map_err(|source| ChainError::Encode {
        what: "OCTET STRING",
        source,
    })
}

fn extension(
    oid: ObjectIdentifier,
    critical: bool,
    value: &impl x509_cert::der::Encode,
    what: &'static str,
) -> Result<Extension, ChainError> {
    let der = value
        .to_der()
        .map_err(|source| ChainError::Encode { what, source })?;
    raw_extension(oid, critical, der)
}

fn raw_extension(
    oid: ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
) -> Result<Extension, ChainError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: octets(value)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tcb_has_milan_layout() {
        let tcb = SimTcb::DEFAULT.to_tcb_version();
        assert_eq!(tcb.to_bytes(), [4, 0, 0, 0, 0, 0, 24, 0xD9]);
        let c = tcb.decode(tee_formats::snp::Generation::Milan);
        assert_eq!((c.boot_loader, c.tee, c.snp, c.microcode), (4, 0, 24, 0xD9));
    }

    #[test]
    fn validity_runs_to_the_same_date_and_stays_utc_time_before_2050() {
        let now = DateTime::new(2026, 2, 28, 10, 11, 12).unwrap();
        let v = validity(now, 7).unwrap();
        assert!(matches!(v.not_before, Time::UtcTime(_)));
        assert!(matches!(v.not_after, Time::UtcTime(_)));
        assert_eq!(
            v.not_after.to_date_time(),
            DateTime::new(2033, 2, 28, 10, 11, 12).unwrap()
        );
        let v = validity(now, 25).unwrap();
        assert!(matches!(v.not_after, Time::UtcTime(_)));
        assert_eq!(
            v.not_after.to_date_time(),
            DateTime::new(2049, 12, 31, 23, 59, 59).unwrap()
        );
        let v = validity(DateTime::new(2051, 1, 1, 0, 0, 0).unwrap(), 7).unwrap();
        assert!(matches!(v.not_before, Time::GeneralTime(_)));
        assert_eq!(
            v.not_after.to_date_time(),
            DateTime::new(2058, 1, 1, 0, 0, 0).unwrap()
        );
        let leap = DateTime::new(2028, 2, 29, 0, 0, 0).unwrap();
        assert_eq!(
            validity(leap, 7).unwrap().not_after.to_date_time(),
            DateTime::new(2035, 2, 28, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn names_have_amd_order_and_say_simulation() {
        let name = sim_name(ARK_CN).unwrap();
        let text = name.to_string();
        assert!(text.contains("CN=ARK-Milan SIMULATION"), "{text}");
        assert!(text.contains("OU=Engineering SIMULATION"), "{text}");
        let oids: Vec<_> = name.0.iter().map(|rdn| rdn.0.as_slice()[0].oid).collect();
        assert_eq!(oids, [OID_OU, OID_C, OID_L, OID_ST, OID_O, OID_CN]);
    }

    #[test]
    fn vcek_extensions_round_trip_with_a_p384_key() {
        // The VCEK needs an RSA issuer; a 1024-bit one keeps this unit test
        // fast (the real chain's 4096-bit keys are tested in tests/chain.rs).
        let ask = RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let vcek = p384::SecretKey::random(&mut OsRng).public_key();
        let chip = chip_id_for(&vcek);
        let now = DateTime::new(2026, 1, 2, 3, 4, 5).unwrap();
        let tcb = SimTcb {
            boot_loader: 1,
            tee: 2,
            snp: 3,
            microcode: 0x80,
        };
        let der = issue_vcek(&vcek, &ask, tcb, &chip, now).unwrap();
        let info = VcekInfo::from_cert_der(&der).unwrap();
        assert_eq!(
            info,
            VcekInfo {
                struct_version: 0,
                product_name: PRODUCT_NAME.into(),
                tcb,
                chip_id: chip
            }
        );
        // ucodeSPL 0x80 needs a leading zero byte: 02 02 00 80.
        let cert = Certificate::from_der(&der).unwrap();
        let exts = cert.tbs_certificate.extensions.unwrap();
        let ucode = exts.iter().find(|e| e.extn_id == OID_UCODE_SPL).unwrap();
        assert_eq!(ucode.extn_value.as_bytes(), [0x02, 0x02, 0x00, 0x80]);
        assert!(exts.iter().all(|e| !e.critical));
        assert_eq!(cert.tbs_certificate.serial_number.as_bytes(), [0]);
    }

    #[test]
    fn hw_id_is_also_read_as_an_octet_string() {
        let ask = RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
        let vcek = p384::SecretKey::random(&mut OsRng).public_key();
        let now = DateTime::new(2026, 1, 2, 3, 4, 5).unwrap();
        let der = issue_vcek(&vcek, &ask, SimTcb::DEFAULT, &[7; 64], now).unwrap();
        let mut cert = Certificate::from_der(&der).unwrap();
        for e in cert.tbs_certificate.extensions.as_mut().unwrap() {
            if e.extn_id == OID_HW_ID {
                e.extn_value =
                    OctetString::new(OctetString::new(vec![7; 64]).unwrap().to_der().unwrap())
                        .unwrap();
            }
        }
        let info = VcekInfo::from_cert_der(&cert.to_der().unwrap()).unwrap();
        assert_eq!(info.chip_id, [7; 64]);
    }

    #[test]
    fn chip_id_is_stable_per_key() {
        let a = p384::SecretKey::random(&mut OsRng).public_key();
        let b = p384::SecretKey::random(&mut OsRng).public_key();
        assert_eq!(chip_id_for(&a), chip_id_for(&a));
        assert_ne!(chip_id_for(&a), chip_id_for(&b));
    }
}
