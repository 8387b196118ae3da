//! Test support (feature `standin`): a local HTTPS stand-in of AMD KDS and
//! Intel PCS, for the third-party services the tests cannot reach. It
//! serves the REAL documents of the shared fixtures at the real URL paths,
//! in the published shapes (`tee-formats.md` §1.5, §3.4):
//!
//! - `/vcek/v1/{product}/{hwid}?[fmcSPL=…&]blSPL=…&teeSPL=…&snpSPL=…&ucodeSPL=…`:
//!   every VCEK of `snp/*/vcek.der`, at the path its own extensions
//!   (productName, hwID, SPLs) give (DER, `application/pkix-cert`).
//! - `/vcek/v1/{Milan,Genoa,Turin}/cert_chain` (`snp/amd-certs/*_ask_ark.pem`),
//!   `/vlek/v1/Milan/cert_chain` (`milan_asvk_ark.pem`).
//! - `/vcek/v1/Milan/crl`, `/vlek/v1/Milan/crl`, `/vcek/v1/Genoa/crl`: the
//!   real AMD CRLs of `tests/data/amd-crl` (the fixtures have none).
//! - `/tdx/certification/v4/tcb?fmspc=B0C06F000000`,
//!   `/tdx/certification/v4/qe/identity`,
//!   `/sgx/certification/v4/pckcrl?ca=platform&encoding=der`,
//!   `/IntelSGXRootCA.der` (and `/sgx/certification/v4/rootcacrl`, hex, as a
//!   PCCS serves it): `tdx/dcap-qvl/tdx_quote_collateral.json` as PCS
//!   serves it (`{"tcbInfo":…,"signature":…}` bodies, URL-encoded PEM issuer
//!   chains in `TCB-Info-Issuer-Chain`, `SGX-Enclave-Identity-Issuer-Chain`,
//!   `SGX-PCK-CRL-Issuer-Chain`).
//!
//! It can misbehave on request ([`Misbehave`]): 429 with `Retry-After`, a
//! 5xx, a slow answer, garbage. Every request is logged with its time.
//! TLS: a test CA made at start ([`StandIn::ca_pem`]), leaf for 127.0.0.1.

use std::collections::{HashMap, VecDeque};
use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use der::Decode;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::pcs::url_encode;

/// One way to answer a request instead of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misbehave {
    /// `429 Too Many Requests` with `Retry-After: secs`.
    TooManyRequests(u64),
    /// This status (e.g. 503), no body.
    Status(u16),
    /// The document, after this delay.
    Slow(Duration),
    /// `200` with a body that is not the document.
    Garbage,
}

/// A logged request.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Path and query.
    pub path: String,
    /// Status answered.
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
}

/// A served document: body and response headers.
type Doc = (Vec<u8>, Vec<(String, String)>);

#[derive(Default)]
struct State {
    docs: HashMap<String, Doc>,
    script: VecDeque<Misbehave>,
    log: Vec<Logged>,
}

/// The running stand-in (stops accepting when dropped; its threads end
/// with the test process).
pub struct StandIn {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    ca_pem: String,
    state: Arc<Mutex<State>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why the stand-in could not start.
#[derive(Debug, thiserror::Error)]
#[error("stand-in: {0}")]
pub struct StandInError(pub String);

fn err(e: impl std::fmt::Display) -> StandInError {
    StandInError(e.to_string())
}

impl StandIn {
    /// Starts on a loopback port with the documents of `fixtures`
    /// (`$ENCLAVE_FIXTURES`).
    pub fn start(fixtures: &Path) -> Result<StandIn, StandInError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "KDS/PCS stand-in test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().map_err(err)?;
        let ca = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).map_err(err)?;
        leaf.subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        let leaf_key = KeyPair::generate().map_err(err)?;
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf_cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .map_err(err)?;
        let tls = Arc::new(tls);
        let listener = TcpListener::bind("127.0.0.1:0").map_err(err)?;
        let port = listener.local_addr().map_err(err)?.port();
        let state = Arc::new(Mutex::new(State {
            docs: documents(fixtures)?,
            ..State::default()
        }));
        let st = Arc::clone(&state);
        std::thread::Builder::new()
            .name("standin-accept".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let (tls, st) = (Arc::clone(&tls), Arc::clone(&st));
                    let _ = std::thread::Builder::new()
                        .name("standin-conn".into())
                        .spawn(move || serve(conn, tls, st));
                }
            })
            .map_err(err)?;
        Ok(StandIn {
            url: format!("https://127.0.0.1:{port}"),
            ca_pem: ca.pem(),
            state,
        })
    }

    /// The test CA (PEM) to pin.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the test CA to `dir/standin-ca.pem` and returns the path.
    pub fn write_ca(&self, dir: &Path) -> Result<PathBuf, StandInError> {
        let p = dir.join("standin-ca.pem");
        std::fs::write(&p, &self.ca_pem).map_err(err)?;
        Ok(p)
    }

    /// The next requests are answered like this, in order.
    pub fn script(&self, m: impl IntoIterator<Item = Misbehave>) {
        lock(&self.state).script.extend(m);
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Logged> {
        lock(&self.state).log.clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        lock(&self.state)
            .log
            .iter()
            .filter(|l| l.path.starts_with(prefix))
            .count()
    }

    /// Serves `body` (with `headers`) at `path` from now on.
    pub fn put(&self, path: &str, body: Vec<u8>, headers: Vec<(String, String)>) {
        lock(&self.state)
            .docs
            .insert(path.to_owned(), (body, headers));
    }

    /// The paths served.
    pub fn paths(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.state).docs.keys().cloned().collect();
        v.sort();
        v
    }
}

fn serve(tcp: TcpStream, tls: Arc<rustls::ServerConfig>, st: Arc<Mutex<State>>) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut r = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    let limits = bounded_http::Limits {
        head_bytes: 16 * 1024,
        body_bytes: 0,
    };
    while let Ok(Some(req)) = bounded_http::read_request(&mut r, limits) {
        let at = Instant::now();
        let (doc, next) = {
            let mut s = lock(&st);
            (s.docs.get(&req.path).cloned(), s.script.pop_front())
        };
        let mut delay = None;
        let (status, headers, body): (u16, Vec<(String, String)>, Vec<u8>) = match (next, doc) {
            (Some(Misbehave::TooManyRequests(secs)), _) => (
                429,
                vec![("retry-after".into(), secs.to_string())],
                Vec::new(),
            ),
            (Some(Misbehave::Status(s)), _) => (s, Vec::new(), Vec::new()),
            (Some(Misbehave::Garbage), _) => {
                (200, Vec::new(), b"<html>maintenance</html>".to_vec())
            }
            (Some(Misbehave::Slow(d)), doc) => {
                delay = Some(d);
                match doc {
                    Some((b, h)) => (200, h, b),
                    None => (404, Vec::new(), Vec::new()),
                }
            }
            (None, Some((b, h))) => (200, h, b),
            (None, None) => (404, Vec::new(), Vec::new()),
        };
        // Logged on arrival (a slow answer is still one request).
        lock(&st).log.push(Logged {
            path: req.path.clone(),
            status,
            at,
        });
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let hs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if bounded_http::write_response(r.get_mut(), status, &hs, &body).is_err()
            || req.wants_close()
        {
            return;
        }
    }
}

fn read(p: &Path) -> Result<Vec<u8>, StandInError> {
    std::fs::read(p).map_err(|e| StandInError(format!("{}: {e}", p.display())))
}

/// The AMD CRLs kept in this crate (the fixtures have none).
pub fn amd_crl(product: &str) -> Result<Vec<u8>, StandInError> {
    read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/data/amd-crl/{}.crl", product.to_lowercase())),
    )
}

/// PEM certificates of a file, as DER.
fn pem_ders(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    text.split_inclusive("-----END CERTIFICATE-----")
        .filter_map(|b| {
            let start = b.find("-----BEGIN CERTIFICATE-----")?;
            der::pem::decode_vec(&b.as_bytes()[start..])
                .ok()
                .map(|x| x.1)
        })
        .collect()
}

fn to_pem(ders: &[Vec<u8>]) -> Vec<u8> {
    ders.iter()
        .filter_map(|d| der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, d).ok())
        .collect::<String>()
        .into_bytes()
}

/// The KDS path of a VCEK, from its own extensions.
pub fn vcek_path(der: &[u8]) -> Result<String, StandInError> {
    let c = x509_cert::Certificate::from_der(der).map_err(err)?;
    let exts = c.tbs_certificate.extensions.unwrap_or_default();
    let ext = |oid: &str| {
        let oid = der::oid::ObjectIdentifier::new_unwrap(oid);
        exts.iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes().to_vec())
    };
    let int = |oid: &str| -> Result<u8, StandInError> {
        let v = ext(oid).ok_or_else(|| StandInError(format!("VCEK without {oid}")))?;
        let i = der::asn1::Uint::from_der(&v).map_err(err)?;
        i.as_bytes()
            .last()
            .copied()
            .ok_or_else(|| StandInError("empty SPL".into()))
    };
    let name = ext("1.3.6.1.4.1.3704.1.2")
        .ok_or_else(|| StandInError("VCEK without productName".into()))?;
    let name = der::asn1::Ia5StringRef::from_der(&name)
        .map_err(err)?
        .as_str()
        .to_owned();
    let product = name.split('-').next().unwrap_or_default().to_owned();
    let hwid =
        ext("1.3.6.1.4.1.3704.1.4").ok_or_else(|| StandInError("VCEK without hwID".into()))?;
    let hex: String = hwid.iter().map(|b| format!("{b:02x}")).collect();
    let fmc = match ext("1.3.6.1.4.1.3704.1.3.9") {
        Some(_) => format!("fmcSPL={}&", int("1.3.6.1.4.1.3704.1.3.9")?),
        None => String::new(),
    };
    Ok(format!(
        "/vcek/v1/{product}/{hex}?{fmc}blSPL={}&teeSPL={}&snpSPL={}&ucodeSPL={}",
        int("1.3.6.1.4.1.3704.1.3.1")?,
        int("1.3.6.1.4.1.3704.1.3.2")?,
        int("1.3.6.1.4.1.3704.1.3.3")?,
        int("1.3.6.1.4.1.3704.1.3.8")?
    ))
}

/// Every document, keyed by path and query.
fn documents(fx: &Path) -> Result<HashMap<String, Doc>, StandInError> {
    let mut d = HashMap::new();
    for dir in [
        "milan-v2-virtee",
        "milan-v2-gosevguest",
        "milan-v2-trustee",
        "turin-vcek-virtee",
    ] {
        let der = read(&fx.join("snp").join(dir).join("vcek.der"))?;
        d.insert(vcek_path(&der)?, (der, Vec::new()));
    }
    let certs = fx.join("snp/amd-certs");
    for (product, file) in [
        ("Milan", "milan_ask_ark.pem"),
        ("Genoa", "genoa_ask_ark.pem"),
        ("Turin", "turin_ask_ark.pem"),
    ] {
        d.insert(
            format!("/vcek/v1/{product}/cert_chain"),
            (read(&certs.join(file))?, Vec::new()),
        );
    }
    d.insert(
        "/vlek/v1/Milan/cert_chain".into(),
        (read(&certs.join("milan_asvk_ark.pem"))?, Vec::new()),
    );
    for product in ["Genoa", "Turin"] {
        // ASK, ARK, ASVK → ASVK, ARK (KDS order).
        let all = pem_ders(&read(
            &certs.join(format!("{}_ask_ark_asvk.pem", product.to_lowercase())),
        )?);
        if all.len() == 3 {
            d.insert(
                format!("/vlek/v1/{product}/cert_chain"),
                (to_pem(&[all[2].clone(), all[1].clone()]), Vec::new()),
            );
        }
    }
    d.insert("/vcek/v1/Milan/crl".into(), (amd_crl("milan")?, Vec::new()));
    d.insert("/vlek/v1/Milan/crl".into(), (amd_crl("milan")?, Vec::new()));
    d.insert("/vcek/v1/Genoa/crl".into(), (amd_crl("genoa")?, Vec::new()));

    let c: serde_json::Value =
        serde_json::from_slice(&read(&fx.join("tdx/dcap-qvl/tdx_quote_collateral.json"))?)
            .map_err(err)?;
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    let hex = |k: &str| {
        appraisal::hex::decode(&s(k)).ok_or_else(|| StandInError(format!("{k} is not hex")))
    };
    let h = |name: &str, k: &str| vec![(name.to_owned(), url_encode(&s(k)))];
    let fmspc = {
        #[derive(serde::Deserialize)]
        struct F {
            fmspc: String,
        }
        serde_json::from_str::<F>(&s("tcb_info"))
            .map_err(err)?
            .fmspc
    };
    d.insert(
        format!("/tdx/certification/v4/tcb?fmspc={fmspc}"),
        (
            format!(
                "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
                s("tcb_info"),
                s("tcb_info_signature")
            )
            .into_bytes(),
            h("TCB-Info-Issuer-Chain", "tcb_info_issuer_chain"),
        ),
    );
    d.insert(
        "/tdx/certification/v4/qe/identity".into(),
        (
            format!(
                "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
                s("qe_identity"),
                s("qe_identity_signature")
            )
            .into_bytes(),
            h(
                "SGX-Enclave-Identity-Issuer-Chain",
                "qe_identity_issuer_chain",
            ),
        ),
    );
    d.insert(
        "/sgx/certification/v4/pckcrl?ca=platform&encoding=der".into(),
        (
            hex("pck_crl")?,
            h("SGX-PCK-CRL-Issuer-Chain", "pck_crl_issuer_chain"),
        ),
    );
    d.insert(
        "/IntelSGXRootCA.der".into(),
        (hex("root_ca_crl")?, Vec::new()),
    );
    // A PCCS serves the root CA CRL hex-encoded.
    d.insert(
        "/sgx/certification/v4/rootcacrl".into(),
        (s("root_ca_crl").into_bytes(), Vec::new()),
    );
    Ok(d)
}
