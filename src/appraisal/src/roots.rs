//! The compiled-in trust anchors: AMD ARK/ASK/ASVK for Milan, Genoa and
//! Turin, the Intel SGX Root CA and the AWS Nitro Enclaves root (G1). Each file is pinned by the SHA-256 of
//! its DER bytes, checked when an [`crate::Appraiser`] is built: a file
//! changed in the source tree is caught there, not trusted.
//!
//! Provenance of the bytes and fingerprints: `roots/README.md` (they are
//! the certificates AMD's KDS and Intel's PCS serve; the fingerprints are
//! the ones in `shared/fixtures/SOURCES.md` and `tee-formats.md` §1.4).
//! A root supplied by the host (in the bundle) is never trusted: it is only
//! compared with these (snpguest #125).

use sha2::{Digest, Sha256};
use tee_formats::snp::Generation;

/// The three AMD certificates of one product.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AmdRoots {
    /// ARK (self-signed root).
    pub ark: &'static [u8],
    /// ASK (signs VCEKs).
    pub ask: &'static [u8],
    /// ASVK (signs VLEKs).
    pub asvk: &'static [u8],
}

struct Pinned {
    der: &'static [u8],
    sha256: &'static str,
    name: &'static str,
}

const PINNED: [Pinned; 11] = [
    Pinned {
        der: include_bytes!("../roots/milan_ark.der"),
        sha256: "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
        name: "ARK-Milan",
    },
    Pinned {
        der: include_bytes!("../roots/milan_ask.der"),
        sha256: "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b",
        name: "SEV-Milan",
    },
    Pinned {
        der: include_bytes!("../roots/milan_asvk.der"),
        sha256: "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5",
        name: "SEV-VLEK-Milan",
    },
    Pinned {
        der: include_bytes!("../roots/genoa_ark.der"),
        sha256: "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
        name: "ARK-Genoa",
    },
    Pinned {
        der: include_bytes!("../roots/genoa_ask.der"),
        sha256: "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521",
        name: "SEV-Genoa",
    },
    Pinned {
        der: include_bytes!("../roots/genoa_asvk.der"),
        sha256: "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372",
        name: "SEV-VLEK-Genoa",
    },
    Pinned {
        der: include_bytes!("../roots/turin_ark.der"),
        sha256: "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
        name: "ARK-Turin",
    },
    Pinned {
        der: include_bytes!("../roots/turin_ask.der"),
        sha256: "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185",
        name: "SEV-Turin",
    },
    Pinned {
        der: include_bytes!("../roots/turin_asvk.der"),
        sha256: "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c",
        name: "SEV-VLEK-Turin",
    },
    Pinned {
        der: include_bytes!("../roots/intel_sgx_root_ca.der"),
        sha256: "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3",
        name: "Intel SGX Root CA",
    },
    Pinned {
        der: include_bytes!("../roots/aws_nitro_enclaves_root_g1.der"),
        sha256: "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b",
        name: "AWS Nitro Enclaves Root G1",
    },
];

/// A compiled-in certificate does not match its pinned fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("compiled-in certificate {name} has SHA-256 {got}, pinned {want}")]
pub struct RootPinError {
    /// Which certificate.
    pub name: &'static str,
    /// Its SHA-256.
    pub got: String,
    /// The pinned SHA-256.
    pub want: &'static str,
}

/// The verified compiled-in anchors.
#[derive(Debug, Clone)]
pub(crate) struct Roots {
    pub milan: AmdRoots,
    pub genoa: AmdRoots,
    pub turin: AmdRoots,
    pub intel_root: &'static [u8],
    pub aws_nitro_root: &'static [u8],
}

impl Roots {
    /// Checks every pin and returns the anchors.
    pub fn load() -> Result<Self, RootPinError> {
        for p in &PINNED {
            let got = crate::hex::encode(&Sha256::digest(p.der));
            if got != p.sha256 {
                return Err(RootPinError {
                    name: p.name,
                    got,
                    want: p.sha256,
                });
            }
        }
        let [m_ark, m_ask, m_asvk, g_ark, g_ask, g_asvk, t_ark, t_ask, t_asvk, intel, aws] = PINNED;
        Ok(Roots {
            milan: AmdRoots {
                ark: m_ark.der,
                ask: m_ask.der,
                asvk: m_asvk.der,
            },
            genoa: AmdRoots {
                ark: g_ark.der,
                ask: g_ask.der,
                asvk: g_asvk.der,
            },
            turin: AmdRoots {
                ark: t_ark.der,
                ask: t_ask.der,
                asvk: t_asvk.der,
            },
            intel_root: intel.der,
            aws_nitro_root: aws.der,
        })
    }

    /// The AMD anchors of `product` (none for Venice yet: AMD publishes no
    /// Venice chain that this build pins).
    pub fn amd(&self, product: Generation) -> Option<&AmdRoots> {
        match product {
            Generation::Milan => Some(&self.milan),
            Generation::Genoa => Some(&self.genoa),
            Generation::Turin => Some(&self.turin),
            Generation::Venice => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pin_holds() {
        let r = Roots::load().unwrap();
        assert!(r.amd(Generation::Venice).is_none());
        assert_eq!(r.amd(Generation::Genoa).unwrap().ark, r.genoa.ark);
    }

    #[test]
    fn the_aws_root_is_the_der_of_the_published_pem() {
        use der::DecodePem;
        let pem = include_str!("../roots/aws_nitro_enclaves_root_g1.pem");
        let cert = x509_cert::Certificate::from_pem(pem).unwrap();
        let der = der::Encode::to_der(&cert).unwrap();
        assert_eq!(der, Roots::load().unwrap().aws_nitro_root);
    }
}
