//! X.509 pieces of the SEV-SNP chain: parsing with the signed bytes kept as
//! received, the KDS certificate form (RSASSA-PSS SHA-384 / MGF1 SHA-384 /
//! salt 48; RSA intermediates; P-384 endorsement keys), RSA-PSS signature
//! checks, validity windows, the AMD VCEK/VLEK extensions and CRLs.
//!
//! Sources: `shared/docs/tee-formats.md` §1.4 (extension table and
//! encodings), go-sev-guest `verify.go` (`validateKDSCertificateProductNonspecific`,
//! `verifyCRL`), RFC 5280 and RFC 4055 (RSASSA-PSS parameters).
//!
//! Errors are strings: every caller turns them into a [`crate::Denial`]
//! whose `got` is that string, so they describe what was found.

use const_oid::db::rfc5280;
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, OctetStringRef};
use der::{Decode, Encode, Reader, SliceReader};
use rsa::pkcs1::RsaPssParams;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use sha2::Sha384;
use x509_cert::crl::CertificateList;
use x509_cert::Certificate;

/// id-RSASSA-PSS.
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// rsaEncryption.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-mgf1.
const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
/// id-sha384.
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
/// id-ecPublicKey.
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp384r1.
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// commonName.
const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// AMD VCEK/VLEK extension OIDs (`1.3.6.1.4.1.3704.1.*`).
pub(crate) mod amd_oid {
    use const_oid::ObjectIdentifier;
    /// productName, IA5String.
    pub const PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
    /// blSPL.
    pub const BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
    /// teeSPL.
    pub const TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
    /// snpSPL.
    pub const SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
    /// ucodeSPL.
    pub const UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
    /// fmcSPL (Turin and later).
    pub const FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
    /// hwID (VCEK only).
    pub const HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
    /// csp_id (VLEK only), IA5String.
    pub const CSP_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.5");
}

/// A parsed certificate and the bytes it came from.
pub(crate) struct Cert<'a> {
    /// The TBSCertificate bytes as received (what the issuer signed).
    pub tbs: &'a [u8],
    /// The parsed certificate.
    pub cert: Certificate,
}

impl<'a> Cert<'a> {
    /// Parses one DER certificate; trailing bytes are an error.
    pub fn parse(der: &'a [u8]) -> Result<Self, String> {
        let cert =
            Certificate::from_der(der).map_err(|e| format!("not a DER X.509 certificate: {e}"))?;
        let tbs = signed_part(der)?;
        Ok(Cert { tbs, cert })
    }

    /// The subject's common name, if any.
    pub fn subject_cn(&self) -> Option<String> {
        common_name(&self.cert.tbs_certificate.subject)
    }

    /// `(notBefore, notAfter)` as Unix seconds.
    pub fn validity(&self) -> (i64, i64) {
        let v = &self.cert.tbs_certificate.validity;
        (unix(v.not_before), unix(v.not_after))
    }

    /// The extnValue contents of extension `oid`, and its critical flag.
    pub fn extension(&self, oid: ObjectIdentifier) -> Option<(bool, &[u8])> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| (e.critical, e.extn_value.as_bytes()))
    }

    /// The serial number's bytes (big-endian, as encoded).
    pub fn serial(&self) -> &[u8] {
        self.cert.tbs_certificate.serial_number.as_bytes()
    }
}

/// The first element (TBSCertificate / TBSCertList) of a signed SEQUENCE,
/// as received.
fn signed_part(der: &[u8]) -> Result<&[u8], String> {
    let mut outer = SliceReader::new(der).map_err(|e| e.to_string())?;
    let header = der::Header::decode(&mut outer).map_err(|e| format!("outer header: {e}"))?;
    let body = outer
        .read_slice(header.length)
        .map_err(|e| format!("outer body: {e}"))?;
    outer
        .finish(())
        .map_err(|e| format!("trailing bytes: {e}"))?;
    let mut inner = SliceReader::new(body).map_err(|e| e.to_string())?;
    inner.tlv_bytes().map_err(|e| format!("signed part: {e}"))
}

fn unix(t: x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

fn common_name(name: &x509_cert::name::Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == CN)
        .and_then(|atv| {
            std::str::from_utf8(atv.value.value())
                .ok()
                .map(str::to_owned)
        })
}

/// The KDS signature algorithm: RSASSA-PSS with SHA-384, MGF1-SHA-384, salt
/// length 48, trailer 1, in both the TBS and the outer algorithm fields.
pub(crate) fn check_pss_sha384(
    tbs_alg: &spki::AlgorithmIdentifierOwned,
    outer_alg: &spki::AlgorithmIdentifierOwned,
) -> Result<(), String> {
    if tbs_alg != outer_alg {
        return Err("inner and outer signature algorithms differ".into());
    }
    if tbs_alg.oid != RSASSA_PSS {
        return Err(format!(
            "signature algorithm {} is not RSASSA-PSS",
            tbs_alg.oid
        ));
    }
    let params = tbs_alg
        .parameters
        .as_ref()
        .ok_or("RSASSA-PSS without parameters")?;
    let bytes = params.to_der().map_err(|e| e.to_string())?;
    let p = RsaPssParams::from_der(&bytes).map_err(|e| format!("RSASSA-PSS parameters: {e}"))?;
    let null_or_absent = |a: &Option<AnyRef<'_>>| a.as_ref().is_none_or(|a| a.is_null());
    let mgf_hash = p
        .mask_gen
        .parameters
        .as_ref()
        .ok_or("MGF1 without a hash")?;
    if p.hash.oid != SHA384 || !null_or_absent(&p.hash.parameters) {
        return Err(format!("PSS hash {} is not SHA-384", p.hash.oid));
    }
    if p.mask_gen.oid != MGF1 || mgf_hash.oid != SHA384 || !null_or_absent(&mgf_hash.parameters) {
        return Err(format!(
            "PSS mask {}/{} is not MGF1-SHA-384",
            p.mask_gen.oid, mgf_hash.oid
        ));
    }
    if p.salt_len != 48 {
        return Err(format!("PSS salt length {} is not 48", p.salt_len));
    }
    Ok(())
}

/// The certificate's RSA public key.
pub(crate) fn rsa_key(c: &Cert<'_>) -> Result<RsaPublicKey, String> {
    let spki = &c.cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(format!(
            "public key algorithm {} is not rsaEncryption",
            spki.algorithm.oid
        ));
    }
    let der = spki.to_der().map_err(|e| e.to_string())?;
    let key =
        RsaPublicKey::from_public_key_der(&der).map_err(|e| format!("RSA public key: {e}"))?;
    let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
    if bits < 2048 {
        return Err(format!("RSA key of {bits} bits is too small"));
    }
    Ok(key)
}

/// The certificate's P-384 public key (SEC1 point bytes).
pub(crate) fn p384_key(c: &Cert<'_>) -> Result<p384::PublicKey, String> {
    let spki = &c.cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != EC_PUBLIC_KEY {
        return Err(format!(
            "public key algorithm {} is not id-ecPublicKey",
            spki.algorithm.oid
        ));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    if curve != Some(SECP384R1) {
        return Err("EC key is not on secp384r1".into());
    }
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or("public key BIT STRING has unused bits")?;
    p384::PublicKey::from_sec1_bytes(point)
        .map_err(|_| "P-384 public key is not a curve point".into())
}

/// Checks `signature` over `signed` with `key`, RSASSA-PSS SHA-384 salt 48.
pub(crate) fn verify_pss(
    key: &RsaPublicKey,
    signed: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let vk = rsa::pss::VerifyingKey::<Sha384>::new(key.clone());
    let sig = rsa::pss::Signature::try_from(signature).map_err(|e| format!("signature: {e}"))?;
    vk.verify(signed, &sig)
        .map_err(|_| "RSA-PSS signature does not verify".into())
}

/// Checks that `issuer` signed `subject`: names chain, algorithm form, and
/// the signature over the received TBS bytes.
pub(crate) fn verify_issued_by(
    subject: &Cert<'_>,
    issuer: &Cert<'_>,
    issuer_key: &RsaPublicKey,
) -> Result<(), String> {
    if subject.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
        return Err(format!(
            "issuer {:?} is not the subject {:?} of the signing certificate",
            common_name(&subject.cert.tbs_certificate.issuer).unwrap_or_default(),
            issuer.subject_cn().unwrap_or_default()
        ));
    }
    let sig = subject
        .cert
        .signature
        .as_bytes()
        .ok_or("signature BIT STRING has unused bits")?;
    verify_pss(issuer_key, subject.tbs, sig)
}

/// Form of a CA certificate (ARK, ASK, ASVK): v3, PSS-SHA-384 signature,
/// RSA key, BasicConstraints cA, KeyUsage keyCertSign if present, no unknown
/// critical extension.
pub(crate) fn check_ca_form(c: &Cert<'_>) -> Result<RsaPublicKey, String> {
    let tbs = &c.cert.tbs_certificate;
    if tbs.version != x509_cert::Version::V3 {
        return Err("not an X.509 v3 certificate".into());
    }
    check_pss_sha384(&tbs.signature, &c.cert.signature_algorithm)?;
    let key = rsa_key(c)?;
    match c.extension(rfc5280::ID_CE_BASIC_CONSTRAINTS) {
        Some((_, v)) => {
            let bc = x509_cert::ext::pkix::BasicConstraints::from_der(v)
                .map_err(|e| format!("BasicConstraints: {e}"))?;
            if !bc.ca {
                return Err("BasicConstraints cA is false".into());
            }
        }
        None => return Err("no BasicConstraints extension".into()),
    }
    if let Some((_, v)) = c.extension(rfc5280::ID_CE_KEY_USAGE) {
        let ku =
            x509_cert::ext::pkix::KeyUsage::from_der(v).map_err(|e| format!("KeyUsage: {e}"))?;
        if !ku.key_cert_sign() {
            return Err("KeyUsage lacks keyCertSign".into());
        }
    }
    no_unknown_critical(
        c,
        &[rfc5280::ID_CE_BASIC_CONSTRAINTS, rfc5280::ID_CE_KEY_USAGE],
    )?;
    Ok(key)
}

/// Form of an endorsement key certificate (VCEK, VLEK): v3, PSS-SHA-384
/// signature, P-384 key, CN one of `expected_cns` (`SEV-VCEK` / `SEV-VLEK`),
/// not a CA, no unknown critical extension.
pub(crate) fn check_vek_form(
    c: &Cert<'_>,
    expected_cns: &[&str],
) -> Result<p384::PublicKey, String> {
    let tbs = &c.cert.tbs_certificate;
    if tbs.version != x509_cert::Version::V3 {
        return Err("not an X.509 v3 certificate".into());
    }
    check_pss_sha384(&tbs.signature, &c.cert.signature_algorithm)?;
    let key = p384_key(c)?;
    let cn = c.subject_cn().unwrap_or_default();
    if !expected_cns.contains(&cn.as_str()) {
        return Err(format!("subject CN {cn:?} is not one of {expected_cns:?}"));
    }
    if let Some((_, v)) = c.extension(rfc5280::ID_CE_BASIC_CONSTRAINTS) {
        let bc = x509_cert::ext::pkix::BasicConstraints::from_der(v)
            .map_err(|e| format!("BasicConstraints: {e}"))?;
        if bc.ca {
            return Err("an endorsement key certificate must not be a CA".into());
        }
    }
    no_unknown_critical(
        c,
        &[rfc5280::ID_CE_BASIC_CONSTRAINTS, rfc5280::ID_CE_KEY_USAGE],
    )?;
    Ok(key)
}

fn no_unknown_critical(c: &Cert<'_>, known: &[ObjectIdentifier]) -> Result<(), String> {
    let exts = c.cert.tbs_certificate.extensions.as_deref().unwrap_or(&[]);
    match exts
        .iter()
        .find(|e| e.critical && !known.contains(&e.extn_id))
    {
        Some(e) => Err(format!("unknown critical extension {}", e.extn_id)),
        None => Ok(()),
    }
}

/// The AMD extensions of a VCEK or VLEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VekExtensions {
    /// productName (`Milan-B0`, `Genoa`, …), if present.
    pub product_name: Option<String>,
    /// blSPL.
    pub bootloader: u8,
    /// teeSPL.
    pub tee: u8,
    /// snpSPL.
    pub snp: u8,
    /// ucodeSPL.
    pub microcode: u8,
    /// fmcSPL (Turin and later).
    pub fmc: Option<u8>,
    /// hwID, raw or unwrapped from a DER OCTET STRING (VCEK only).
    pub hw_id: Option<Vec<u8>>,
    /// csp_id (VLEK only).
    pub csp_id: Option<String>,
}

/// Parses the AMD extensions. The four SPLs are mandatory; each is a DER
/// INTEGER in `0..=255` (`02 02 00 d9` for values ≥ 0x80).
pub(crate) fn vek_extensions(c: &Cert<'_>) -> Result<VekExtensions, String> {
    let spl = |oid: ObjectIdentifier, name: &str| -> Result<Option<u8>, String> {
        match c.extension(oid) {
            None => Ok(None),
            Some((_, v)) => {
                let i = der::asn1::Uint::from_der(v)
                    .map_err(|e| format!("{name}: not a DER INTEGER: {e}"))?;
                match i.as_bytes() {
                    [b] => Ok(Some(*b)),
                    _ => Err(format!("{name}: value does not fit a byte")),
                }
            }
        }
    };
    let required =
        |oid, name: &str| spl(oid, name)?.ok_or_else(|| format!("{name} extension missing"));
    let ia5 = |oid: ObjectIdentifier, name: &str| -> Result<Option<String>, String> {
        match c.extension(oid) {
            None => Ok(None),
            Some((_, v)) => der::asn1::Ia5StringRef::from_der(v)
                .map(|s| Some(s.as_str().to_owned()))
                .map_err(|e| format!("{name}: not a DER IA5String: {e}")),
        }
    };
    // Real certificates carry the raw bytes; a DER OCTET STRING wrapping
    // (`04 40 …`) also exists (trustee and snpguest accept both). A raw
    // 64-byte (or Turin 8-byte) hwID that happens to parse as an OCTET
    // STRING is not unwrapped.
    let hw_id = c
        .extension(amd_oid::HW_ID)
        .map(|(_, v)| match OctetStringRef::from_der(v) {
            Ok(inner) if v.len() != 64 && v.len() != 8 => inner.as_bytes().to_vec(),
            _ => v.to_vec(),
        });
    Ok(VekExtensions {
        product_name: ia5(amd_oid::PRODUCT_NAME, "productName")?,
        bootloader: required(amd_oid::BL_SPL, "blSPL")?,
        tee: required(amd_oid::TEE_SPL, "teeSPL")?,
        snp: required(amd_oid::SNP_SPL, "snpSPL")?,
        microcode: required(amd_oid::UCODE_SPL, "ucodeSPL")?,
        fmc: spl(amd_oid::FMC_SPL, "fmcSPL")?,
        hw_id,
        csp_id: ia5(amd_oid::CSP_ID, "csp_id")?,
    })
}

/// A CRL that the ARK signed.
pub(crate) struct VerifiedCrl {
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: i64,
    /// Revoked serial numbers (big-endian bytes as encoded).
    pub revoked: Vec<Vec<u8>>,
}

/// What a CRL in the bundle is, relative to the ARK.
pub(crate) enum CrlOutcome {
    /// Issued by another authority: not this chain's.
    OtherIssuer,
    /// Issued and correctly signed by the ARK.
    Verified(VerifiedCrl),
}

/// Parses `der` and, if the ARK issued it, checks its form and signature
/// over the received TBSCertList.
pub(crate) fn check_crl(
    der: &[u8],
    ark: &Cert<'_>,
    ark_key: &RsaPublicKey,
) -> Result<CrlOutcome, String> {
    let crl = CertificateList::from_der(der).map_err(|e| format!("not a DER CRL: {e}"))?;
    let tbs = &crl.tbs_cert_list;
    if tbs.issuer != ark.cert.tbs_certificate.subject {
        return Ok(CrlOutcome::OtherIssuer);
    }
    check_pss_sha384(&tbs.signature, &crl.signature_algorithm)?;
    let sig = crl
        .signature
        .as_bytes()
        .ok_or("CRL signature BIT STRING has unused bits")?;
    verify_pss(ark_key, signed_part(der)?, sig).map_err(|e| format!("CRL: {e}"))?;
    let next_update = tbs.next_update.ok_or("CRL has no nextUpdate")?;
    let revoked = tbs
        .revoked_certificates
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|r| r.serial_number.as_bytes().to_vec())
        .collect();
    Ok(CrlOutcome::Verified(VerifiedCrl {
        this_update: unix(tbs.this_update),
        next_update: unix(next_update),
        revoked,
    }))
}

/// Formats Unix seconds as RFC 3339 UTC for denials (the one formatter
/// the guest's health document uses too).
pub(crate) use wire::time::rfc3339;

/// Parses RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SSZ`, optional fraction, or a
/// numeric `+HH:MM` offset) to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 20
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't'))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    // A real calendar date: 2026-02-30 and 2025-04-31 are refused, not
    // rolled over into the next month.
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from civil (H. Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for (s, t) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2025-06-19T11:32:27Z", 1_750_332_747),
            ("2026-02-18T11:58:51Z", 1_771_415_931),
            ("2025-12-10T00:00:00Z", 1_765_324_800),
        ] {
            assert_eq!(parse_rfc3339(s), Some(t), "{s}");
            assert_eq!(rfc3339(t), s);
        }
        assert_eq!(
            parse_rfc3339("2025-06-19T13:32:27+02:00"),
            Some(1_750_332_747)
        );
        assert_eq!(parse_rfc3339("2025-06-19T11:32:27.5Z"), Some(1_750_332_747));
        assert_eq!(parse_rfc3339("2025-06-19 11:32:27"), None);
        assert_eq!(parse_rfc3339("2025-13-19T11:32:27Z"), None);
        // Impossible dates are refused, not rolled over.
        assert_eq!(parse_rfc3339("2026-02-30T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2025-04-31T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2025-02-29T00:00:00Z"), None);
        // 2024 is a leap year: 2024-02-29 = 19782 days after the epoch.
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(19_782 * 86_400));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_rfc3339("1900-02-29T00:00:00Z"), None);
    }
}
