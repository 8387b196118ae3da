//! AMD KDS documents: URLs and validity extractors (`tee-formats.md` §1.5;
//! go-sev-guest `kds.go`, snpguest `fetch.rs`).
//!
//! | document | URL (base `https://kdsintf.amd.com`) | validity |
//! |---|---|---|
//! | VCEK (DER) | `/vcek/v1/{product}/{hwid}?blSPL=…&teeSPL=…&snpSPL=…&ucodeSPL=…` (Turin: 8-byte hwid, `fmcSPL=…&` first) | notBefore..notAfter, immutable |
//! | CA chain (PEM, ASK then ARK) | `/vcek/v1/{product}/cert_chain`, `/vlek/v1/{product}/cert_chain` | the earliest notAfter, immutable |
//! | CRL (DER, signed by the ARK) | `/vcek/v1/{product}/crl`, `/vlek/v1/{product}/crl` | thisUpdate..nextUpdate, mutable |
//!
//! The VLEK itself is not fetched: KDS hands it to cloud providers only, so
//! it comes from the host.

use der::Decode;
use tee_formats::snp::{Generation, TcbVersion};
use x509_cert::crl::CertificateList;
use x509_cert::Certificate;

use crate::cache::{Spec, Validity};

/// The public KDS.
pub const KDS_BASE: &str = "https://kdsintf.amd.com";

/// `vcek` or `vlek`: the key type whose chain and CRL are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Chip endorsement key.
    Vcek,
    /// Loaded (cloud provider) endorsement key.
    Vlek,
}

impl KeyType {
    /// The URL path segment.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyType::Vcek => "vcek",
            KeyType::Vlek => "vlek",
        }
    }
}

/// The VCEK for `chip_id` at `tcb`.
pub fn vcek(base: &str, product: Generation, chip_id: &[u8; 64], tcb: TcbVersion) -> Spec {
    let c = tcb.decode(product);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let (hwid, fmc) = match c.fmc {
        // Turin and later: the first 8 bytes of CHIP_ID, and the FMC SPL.
        Some(f) => (hex(&chip_id[..8]), format!("fmcSPL={f}&")),
        None => (hex(chip_id), String::new()),
    };
    Spec {
        url: format!(
            "{base}/vcek/v1/{}/{hwid}?{fmc}blSPL={}&teeSPL={}&snpSPL={}&ucodeSPL={}",
            product.kds_product(),
            c.boot_loader,
            c.tee,
            c.snp,
            c.microcode
        ),
        keep_headers: &[],
        validity: certificate_validity,
    }
}

/// The CA chain (ASK/ASVK, ARK) of `product`.
pub fn cert_chain(base: &str, product: Generation, key: KeyType) -> Spec {
    Spec {
        url: format!(
            "{base}/{}/v1/{}/cert_chain",
            key.as_str(),
            product.kds_product()
        ),
        keep_headers: &[],
        validity: pem_chain_validity,
    }
}

/// The ARK-signed CRL of `product` for `key`'s chain.
pub fn crl(base: &str, product: Generation, key: KeyType) -> Spec {
    Spec {
        url: format!("{base}/{}/v1/{}/crl", key.as_str(), product.kds_product()),
        keep_headers: &[],
        validity: crl_validity,
    }
}

fn unix(t: x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// A DER certificate: notBefore..notAfter, immutable.
pub fn certificate_validity(body: &[u8], _: &[(String, String)]) -> Result<Validity, String> {
    let c = Certificate::from_der(body).map_err(|e| format!("not a DER certificate: {e}"))?;
    let v = &c.tbs_certificate.validity;
    Ok(Validity {
        issued: Some(unix(v.not_before)),
        next_update: unix(v.not_after),
        mutable: false,
    })
}

/// A PEM chain: valid until its earliest notAfter, immutable.
pub fn pem_chain_validity(body: &[u8], _: &[(String, String)]) -> Result<Validity, String> {
    let text = std::str::from_utf8(body).map_err(|_| "not a PEM chain (not text)".to_owned())?;
    let mut out: Option<Validity> = None;
    for block in text.split_inclusive("-----END CERTIFICATE-----") {
        let Some(start) = block.find("-----BEGIN CERTIFICATE-----") else {
            continue;
        };
        let (_, der) =
            der::pem::decode_vec(&block.as_bytes()[start..]).map_err(|e| format!("PEM: {e}"))?;
        let v = certificate_validity(&der, &[])?;
        out = Some(match out {
            None => v,
            Some(o) => Validity {
                issued: o.issued.max(v.issued),
                next_update: o.next_update.min(v.next_update),
                mutable: false,
            },
        });
    }
    out.ok_or_else(|| "no certificate in the PEM chain".to_owned())
}

/// A DER CRL: thisUpdate..nextUpdate, mutable.
pub fn crl_validity(body: &[u8], _: &[(String, String)]) -> Result<Validity, String> {
    let c = CertificateList::from_der(body).map_err(|e| format!("not a DER CRL: {e}"))?;
    let t = &c.tbs_cert_list;
    let next = t.next_update.ok_or("CRL without nextUpdate")?;
    Ok(Validity {
        issued: Some(unix(t.this_update)),
        next_update: unix(next),
        mutable: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcek_urls_follow_kds() {
        // snp/milan-v2-virtee: reported_tcb 0300000000000873 (bl 3, tee 0, snp 8, ucode 115).
        let tcb = TcbVersion::from_raw(u64::from_le_bytes([3, 0, 0, 0, 0, 0, 8, 0x73]));
        let s = vcek(KDS_BASE, Generation::Milan, &[0xab; 64], tcb);
        assert_eq!(
            s.url,
            format!(
                "https://kdsintf.amd.com/vcek/v1/Milan/{}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115",
                "ab".repeat(64)
            )
        );
        let s = vcek(
            KDS_BASE,
            Generation::Turin,
            &[0xcd; 64],
            TcbVersion::from_raw(0),
        );
        assert!(
            s.url.starts_with(
                "https://kdsintf.amd.com/vcek/v1/Turin/cdcdcdcdcdcdcdcd?fmcSPL=0&blSPL=0"
            ),
            "{}",
            s.url
        );
        assert_eq!(
            crl("https://x", Generation::Genoa, KeyType::Vlek).url,
            "https://x/vlek/v1/Genoa/crl"
        );
        assert_eq!(
            cert_chain("https://x", Generation::Milan, KeyType::Vcek).url,
            "https://x/vcek/v1/Milan/cert_chain"
        );
        assert!(crl_validity(b"junk", &[]).is_err());
        assert!(certificate_validity(b"", &[]).is_err());
        assert!(pem_chain_validity(b"", &[]).is_err());
    }
}
