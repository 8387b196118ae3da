//! One HTTPS GET: ureq 3 over rustls (ring provider), roots pinned (a PEM
//! file: the CA of KDS/PCS, or a test CA) or the system's (the PEM bundle
//! at `SSL_CERT_FILE`, else the distribution's). One agent per client:
//! connections are kept alive per host. Status codes are answers, not
//! errors: the cache decides what a 429 or a 503 means.

use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// Why a request got no HTTP answer, or a client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The roots file could not be read or holds no certificate.
    #[error("trust roots {path}: {why}")]
    Roots {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// No answer: refused, reset, TLS failure, timeout, DNS.
    #[error("no answer from {url}: {why}")]
    Transport {
        /// The URL.
        url: String,
        /// ureq's description, without its internals' prefix.
        why: String,
    },
    /// The answer's body is larger than the limit.
    #[error("the answer from {url} is larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
}

/// Where the client's trust roots come from.
#[derive(Debug, Clone)]
pub enum Roots {
    /// Every certificate in this PEM file (pinned).
    Pinned(std::path::PathBuf),
    /// The system's PEM bundle (`SSL_CERT_FILE`, else
    /// `/etc/ssl/certs/ca-certificates.crt` or `/etc/pki/tls/certs/ca-bundle.crt`).
    System,
}

/// An HTTP answer: status, the headers asked for, body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// `(lowercase name, value)` of the headers named in the request.
    pub headers: Vec<(String, String)>,
    /// The body (bounded).
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Largest body accepted: KDS and PCS documents are a few KB (a PCK CRL of
/// a large platform CA stays well under 1 MiB).
pub const MAX_BODY: u64 = 4 * 1024 * 1024;

/// An HTTPS client.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    /// A client trusting `roots`, with `timeout` for one whole request.
    pub fn new(roots: &Roots, timeout: Duration) -> Result<Client, HttpError> {
        let (path, pem) = match roots {
            Roots::Pinned(p) => (p.display().to_string(), read(p)?),
            Roots::System => system_bundle()?,
        };
        let certs = all_pem_certs(&pem);
        if certs.is_empty() {
            return Err(HttpError::Roots {
                path,
                why: "no PEM certificate in it".into(),
            });
        }
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::new_with_certs(&certs))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .https_only(true)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent("enclave-init-verifier")
            .build()
            .new_agent();
        Ok(Client { agent })
    }

    /// GET `url`, keeping the headers named in `keep` (lowercase).
    pub fn get(&self, url: &str, keep: &[&str]) -> Result<Answer, HttpError> {
        let transport = |e: ureq::Error| HttpError::Transport {
            url: url.to_owned(),
            why: e.to_string().trim_start_matches("other: ").to_owned(),
        };
        let mut resp = self.agent.get(url).call().map_err(transport)?;
        let status = resp.status().as_u16();
        let mut headers = Vec::new();
        for name in keep.iter().chain(["retry-after"].iter()) {
            if let Some(v) = resp.headers().get(*name).and_then(|v| v.to_str().ok()) {
                headers.push(((*name).to_owned(), v.to_owned()));
            }
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => HttpError::TooLarge {
                    url: url.to_owned(),
                    limit: MAX_BODY,
                },
                e => transport(e),
            })?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

fn read(p: &std::path::Path) -> Result<Vec<u8>, HttpError> {
    std::fs::read(p).map_err(|e| HttpError::Roots {
        path: p.display().to_string(),
        why: e.to_string(),
    })
}

fn system_bundle() -> Result<(String, Vec<u8>), HttpError> {
    let candidates: Vec<std::path::PathBuf> = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain([
            "/etc/ssl/certs/ca-certificates.crt".into(),
            "/etc/pki/tls/certs/ca-bundle.crt".into(),
        ])
        .collect();
    for c in &candidates {
        if let Ok(b) = std::fs::read(c) {
            return Ok((c.display().to_string(), b));
        }
    }
    Err(HttpError::Roots {
        path: "system".into(),
        why: "no CA bundle (SSL_CERT_FILE, /etc/ssl/certs/ca-certificates.crt); pin a CA with --collateral-ca".into(),
    })
}

/// Every certificate of a PEM bundle.
fn all_pem_certs(pem: &[u8]) -> Vec<Certificate<'static>> {
    let Ok(text) = std::str::from_utf8(pem) else {
        return Vec::new();
    };
    let end = "-----END CERTIFICATE-----";
    text.split_inclusive(end)
        .filter_map(|block| {
            let start = block.find("-----BEGIN CERTIFICATE-----")?;
            let (label, der) = der::pem::decode_vec(&block.as_bytes()[start..]).ok()?;
            (label == "CERTIFICATE").then(|| Certificate::from_der(&der).to_owned())
        })
        .collect()
}
