//! Steps 4-6 of the boot: the attestation exchange with the verifier.
//!
//! HTTPS through ureq over our transport (`ureq-transport`); one kept-alive
//! TLS 1.3 connection (rustls, the verifier's CA pinned in the measured
//! configuration) carries both requests:
//! 1. `POST /v1/challenge` → a nonce bound to this connection, and the
//!    verifier's time;
//! 2. REPORT_DATA = SHA-512(tag ‖ nonce ‖ SHA-256(enclave SPKI) ‖ TLS
//!    exporter of this connection) (`tee_formats::binding`), evidence for it;
//! 3. `POST /v1/attest` → the token, or a structured denial.
//!
//! The exporter is the one the TLS connector recorded for the connection
//! that carried the challenge, taken from that connection's rustls session
//! right after its handshake. Should the verifier close the connection
//! before the attest request (which then goes out on a new one, with
//! another exporter), the exchange starts over from a fresh challenge.
//!
//! The exporter ties the evidence to this TLS session: a host relaying our
//! evidence over its own connection presents a different exporter and is
//! denied. Time: certificates are checked against [`TrustedTime`], which
//! follows the verifier's clock once it has answered, never the guest's
//! host-controlled clock alone.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use ureq_transport::{ureq, ConnectFailed, ExporterSlot, ExporterSpec, Failure};
use wire::verifier::{AttestRequest, AttestResponse, Challenge, Denial, EXPORTER_LABEL};
use zeroize::Zeroizing;

use evidence::EvidenceSource;

use crate::config::VerifierConfig;
use crate::keys::EnclaveKey;

/// Why attestation failed.
#[derive(Debug)]
pub enum AttestError {
    /// The verifier could not be reached.
    Connect(std::io::Error),
    /// TLS set-up or the exchange failed.
    Tls(String),
    /// The verifier answered something that is not the protocol.
    Protocol(String),
    /// The verifier denied the evidence.
    Denied(Denial),
    /// Evidence could not be obtained.
    Evidence(evidence::EvidenceError),
}

impl std::fmt::Display for AttestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttestError::Connect(e) => write!(f, "cannot reach the verifier: {e}"),
            AttestError::Tls(e) => write!(f, "verifier TLS: {e}"),
            AttestError::Protocol(e) => write!(f, "verifier protocol: {e}"),
            AttestError::Denied(d) => write!(f, "verifier denied the evidence: check {} got {} want {} ({})", d.check, d.got, d.want, d.hint),
            AttestError::Evidence(e) => write!(f, "evidence: {e}"),
        }
    }
}

impl std::error::Error for AttestError {}

/// A token from the verifier. The token is a bearer credential for Vault:
/// zeroized on drop, never logged.
pub struct Attestation {
    /// The JWT.
    pub token: Zeroizing<String>,
    /// Its expiry, verifier time (Unix seconds).
    pub expires_at: u64,
    /// The TEE type the verifier saw.
    pub tee: String,
    /// Time spent obtaining evidence.
    pub evidence_time: std::time::Duration,
    /// Time spent on the verifier exchange (connect, TLS, challenge, attest).
    pub verifier_time: std::time::Duration,
}

impl std::fmt::Debug for Attestation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attestation").field("token", &"<redacted>").field("expires_at", &self.expires_at).field("tee", &self.tee).finish()
    }
}

impl AttestError {
    /// A fixed class for metrics labels: `unreachable`, `tls`, `protocol`,
    /// `denied` or `evidence`.
    pub fn class(&self) -> &'static str {
        match self {
            AttestError::Connect(_) => "unreachable",
            AttestError::Tls(_) => "tls",
            AttestError::Protocol(_) => "protocol",
            AttestError::Denied(_) => "denied",
            AttestError::Evidence(_) => "evidence",
        }
    }
}

/// Time for certificate checks: the verifier's clock plus monotonic time
/// elapsed since it answered; before that, the later of the guest clock and
/// the image's build time (a host cannot roll us back before the build).
#[derive(Debug)]
pub struct TrustedTime {
    floor_secs: u64,
    anchor: Mutex<Option<(u64, Instant)>>,
}

impl TrustedTime {
    /// A clock whose floor is `floor_secs` (the build's SOURCE_DATE_EPOCH).
    pub fn new(floor_secs: u64) -> Arc<TrustedTime> {
        Arc::new(TrustedTime { floor_secs, anchor: Mutex::new(None) })
    }

    /// Adopts the verifier's time.
    pub fn anchor(&self, verifier_time: u64) {
        *self.anchor.lock().unwrap_or_else(|p| p.into_inner()) = Some((verifier_time, Instant::now()));
    }

    /// Now, Unix milliseconds (webhook timestamps are in milliseconds).
    pub fn now_millis(&self) -> u64 {
        if let Some((t, at)) = *self.anchor.lock().unwrap_or_else(|p| p.into_inner()) {
            return t.saturating_mul(1000).saturating_add(u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX));
        }
        let guest = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        u64::try_from(guest).unwrap_or(u64::MAX).max(self.floor_secs.saturating_mul(1000))
    }

    /// Now, Unix seconds.
    pub fn now_secs(&self) -> u64 {
        if let Some((t, at)) = *self.anchor.lock().unwrap_or_else(|p| p.into_inner()) {
            return t.saturating_add(at.elapsed().as_secs());
        }
        let guest = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        guest.max(self.floor_secs)
    }
}

impl rustls::time_provider::TimeProvider for TrustedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(std::time::Duration::from_secs(self.now_secs())))
    }
}

/// Parses the pinned CA (one or more PEM certificates).
pub fn parse_ca(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM text".to_owned());
    }
    Ok(certs)
}

/// A TLS 1.3 client configuration trusting only `ca_pem`.
pub fn client_config(ca_pem: &str, time: Arc<TrustedTime>) -> Result<Arc<rustls::ClientConfig>, AttestError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in parse_ca(ca_pem).map_err(AttestError::Tls)? {
        roots.add(cert).map_err(|e| AttestError::Tls(format!("pinned CA: {e}")))?;
    }
    let config = rustls::ClientConfig::builder_with_details(Arc::new(rustls::crypto::ring::default_provider()), time)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| AttestError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The largest response body read from the verifier.
const BODY_LIMIT: u64 = 256 * 1024;

/// How many times one exchange starts over from a fresh challenge when the
/// verifier closed the kept-alive connection between challenge and attest
/// (the attest request then went out on a new connection, whose exporter
/// the evidence does not carry).
const ROUNDS: u32 = 3;

/// The verifier's HTTPS client for one exchange: a ureq agent over our
/// transport (rustls on the pinned configuration) whose one kept-alive
/// connection carries challenge and attest, and the slot where its TLS
/// connector records each new connection's exporter.
struct Verifier {
    agent: ureq::Agent,
    exporters: ExporterSlot,
    /// `https://<server_name>`.
    base: String,
}

impl Verifier {
    fn new(cfg: &VerifierConfig, addr: &transport::Addr, time: &Arc<TrustedTime>) -> Result<Verifier, AttestError> {
        let tls = client_config(&cfg.ca_pem, Arc::clone(time))?;
        let name = ServerName::try_from(cfg.server_name.clone()).map_err(|e| AttestError::Tls(e.to_string()))?;
        let spec = ExporterSpec { label: EXPORTER_LABEL, len: 32 };
        // `config` keeps one idle connection: requests made one after
        // another reuse it.
        let (agent, exporters) = ureq_transport::agent_with_exporter(ureq_transport::config(cfg.timeout).build(), addr.clone(), name, tls, spec);
        Ok(Verifier { agent, exporters, base: ureq_transport::https_base(&cfg.server_name) })
    }

    /// POSTs a JSON body; the status and the response body (bounded, in a
    /// zeroizing buffer: the attest answer is a bearer token).
    fn post(&self, path: &str, body: &[u8]) -> Result<(u16, Zeroizing<Vec<u8>>), AttestError> {
        let resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body)
            .map_err(|e| failed(path, e))?;
        let (status, body) = ureq_transport::read_limited(resp, BODY_LIMIT)
            .map_err(|e| AttestError::Protocol(format!("{path}: {}", ureq_transport::message(&e))))?;
        Ok((status, Zeroizing::new(body)))
    }

    /// The serial and exporter of the newest connection: after a request,
    /// the one that carried it.
    fn exporter(&self) -> Result<(u64, [u8; 32]), AttestError> {
        let latest = self.exporters.latest().ok_or_else(|| AttestError::Tls("exporter: no connection was made".to_owned()))?;
        let exporter: [u8; 32] =
            latest.value[..].try_into().map_err(|_| AttestError::Tls(format!("exporter is {} bytes", latest.value.len())))?;
        Ok((latest.serial, exporter))
    }

    /// The serial of the newest connection.
    fn serial(&self) -> Option<u64> {
        self.exporters.latest().map(|e| e.serial)
    }
}

/// A failed request: unreachable (retried by [`attest`]), TLS (the
/// certificate, the handshake), or the exchange broke.
fn failed(path: &str, e: ureq::Error) -> AttestError {
    let msg = ureq_transport::message(&e);
    match ureq_transport::classify(&e) {
        Failure::Unreachable => match e {
            ureq::Error::Other(inner) => match inner.downcast::<ConnectFailed>() {
                Ok(failed) => AttestError::Connect(failed.source),
                Err(_) => AttestError::Connect(std::io::Error::other(msg)),
            },
            _ => AttestError::Connect(std::io::Error::other(msg)),
        },
        Failure::Tls => AttestError::Tls(msg),
        Failure::Timeout if matches!(e, ureq::Error::Timeout(ureq::Timeout::Connect)) => AttestError::Tls(format!("handshake: {msg}")),
        Failure::Timeout | Failure::Other => AttestError::Protocol(format!("{path}: {msg}")),
    }
}

/// Runs the exchange, retrying with bounded backoff while the verifier is
/// unreachable (up to `cfg.retry`); a denial or protocol error is final.
pub fn attest(
    cfg: &VerifierConfig,
    addr: &transport::Addr,
    time: &Arc<TrustedTime>,
    key: &EnclaveKey,
    tee: &mut dyn EvidenceSource,
) -> Result<Attestation, AttestError> {
    let start = Instant::now();
    let mut backoff = std::time::Duration::from_millis(100);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match attest_once(cfg, addr, time, key, tee) {
            Err(AttestError::Connect(e)) if start.elapsed() + backoff <= cfg.retry => {
                log::warn!(attempt = attempt, error = e.to_string().as_str(), retry_ms = backoff.as_millis() as u64; "verifier unreachable; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// Runs the exchange once (renewal has its own retry schedule).
pub fn attest_once(
    cfg: &VerifierConfig,
    addr: &transport::Addr,
    time: &Arc<TrustedTime>,
    key: &EnclaveKey,
    tee: &mut dyn EvidenceSource,
) -> Result<Attestation, AttestError> {
    let started = Instant::now();
    let verifier = Verifier::new(cfg, addr, time)?;
    let mut evidence_time = std::time::Duration::ZERO;
    let mut round = 0u32;
    loop {
        round += 1;

        // 4. Challenge.
        let (status, body) = verifier.post("/v1/challenge", b"{}")?;
        if status != 200 {
            return Err(AttestError::Protocol(format!("/v1/challenge answered {status}")));
        }
        let challenge: Challenge = wire::from_json(&body).map_err(|e| AttestError::Protocol(e.to_string()))?;
        let nonce: [u8; 32] =
            challenge.nonce[..].try_into().map_err(|_| AttestError::Protocol(format!("nonce is {} bytes", challenge.nonce.len())))?;
        time.anchor(challenge.verifier_time);

        // 5. Evidence bound to the nonce, our key and the TLS session that
        // carried the challenge (its exporter, recorded by the connector).
        let (serial, exporter) = verifier.exporter()?;
        let report_data = tee_formats::binding::report_data(&nonce, key.spki(), &exporter);
        let evidence_started = Instant::now();
        let bundle = tee.collect(&report_data).map_err(AttestError::Evidence)?;
        evidence_time += evidence_started.elapsed();

        // 6. Attest, on the same connection.
        let request = AttestRequest { nonce: nonce.to_vec().into(), enclave_key_spki: key.spki().to_vec().into(), bundle };
        let body = serde_json::to_vec(&request).map_err(|e| AttestError::Protocol(e.to_string()))?;
        let (status, resp) = verifier.post("/v1/attest", &body)?;
        if verifier.serial() != Some(serial) {
            // The verifier closed the connection after the challenge; the
            // attest went out on a new one, which the evidence is not bound
            // to (and the verifier refuses): start over.
            if round < ROUNDS {
                log::warn!(round = round, status = status; "the verifier closed the connection between challenge and attest; starting over");
                continue;
            }
            return Err(AttestError::Protocol(format!(
                "the verifier closed the connection between /v1/challenge and /v1/attest {ROUNDS} times"
            )));
        }
        return match status {
            200 => {
                let ok: AttestResponse = wire::from_json(&resp).map_err(|e| AttestError::Protocol(e.to_string()))?;
                Ok(Attestation {
                    token: Zeroizing::new(ok.token),
                    expires_at: ok.expires_at,
                    tee: request.bundle.tee.as_str().to_owned(),
                    evidence_time,
                    verifier_time: started.elapsed().saturating_sub(evidence_time),
                })
            }
            403 => {
                #[derive(serde::Deserialize)]
                struct Denied {
                    denial: Denial,
                }
                let d: Denied = wire::from_json(&resp).map_err(|e| AttestError::Protocol(e.to_string()))?;
                Err(AttestError::Denied(d.denial))
            }
            other => Err(AttestError::Protocol(format!(
                "/v1/attest answered {other}: {}",
                String::from_utf8_lossy(&resp).chars().take(200).collect::<String>()
            ))),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_time_follows_the_verifier_once_anchored() {
        let t = TrustedTime::new(4_000_000_000);
        assert!(t.now_secs() >= 4_000_000_000, "the build floor bounds a rolled-back guest clock");
        t.anchor(1_000);
        assert!((1_000..1_005).contains(&t.now_secs()));
    }

    /// An evidence source whose evidence is the REPORT_DATA it was asked for.
    struct Echo;

    impl EvidenceSource for Echo {
        fn kind(&self) -> evidence::SourceKind {
            evidence::SourceKind::Sim
        }
        fn collect(&mut self, rd: &[u8; 64]) -> Result<wire::EvidenceBundle, evidence::EvidenceError> {
            Ok(wire::EvidenceBundle::new(wire::Tee::Sim, "test", rd.to_vec()))
        }
    }

    /// A stand-in verifier on `listener`: challenges, then checks that the
    /// evidence (the REPORT_DATA itself, from [`Echo`]) binds the nonce it
    /// issued on *this* connection and *its* exporter of this connection.
    /// The first `closing` connections are closed right after the
    /// challenge. Returns the connections served (once one attested).
    fn stand_in(listener: std::net::TcpListener, tls: Arc<rustls::ServerConfig>, closing: usize) -> std::thread::JoinHandle<usize> {
        std::thread::spawn(move || {
            let mut served = 0;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                served += 1;
                let conn = rustls::ServerConnection::new(Arc::clone(&tls)).unwrap();
                let mut io = std::io::BufReader::new(rustls::StreamOwned::new(conn, stream));
                let mut issued = None;
                while let Ok(Some(req)) = http::read_request(&mut io, http::Limits { head_bytes: 16 * 1024, body_bytes: 1 << 20 }) {
                    let mut exporter = [0u8; 32];
                    io.get_ref().conn.export_keying_material(&mut exporter, EXPORTER_LABEL, None).unwrap();
                    let (status, body) = match req.path.as_str() {
                        "/v1/challenge" => {
                            let nonce = [served as u8; 32];
                            issued = Some(nonce);
                            (200, serde_json::to_vec(&Challenge { nonce: nonce.to_vec().into(), verifier_time: 1_000, expires_at: 1_060 }).unwrap())
                        }
                        _ => {
                            let req: AttestRequest = wire::from_json(&req.body).unwrap();
                            let bound = issued.is_some_and(|n| n[..] == req.nonce[..])
                                && req.bundle.evidence[..] == tee_formats::binding::report_data(&req.nonce[..].try_into().unwrap(), &req.enclave_key_spki, &exporter)[..];
                            if bound {
                                (200, serde_json::to_vec(&AttestResponse { token: format!("token-{served}"), expires_at: 2_000 }).unwrap())
                            } else {
                                let denial = Denial { check: "report_data".into(), got: "-".into(), want: "-".into(), hint: "-".into() };
                                (403, serde_json::to_vec(&serde_json::json!({ "denial": denial })).unwrap())
                            }
                        }
                    };
                    // Closing connections say so (`connection: close`), so
                    // the client never races the close.
                    let closes = served <= closing;
                    let headers: &[(&str, &str)] =
                        if closes { &[("content-type", "application/json"), ("connection", "close")] } else { &[("content-type", "application/json")] };
                    http::write_response(io.get_mut(), status, headers, &body).unwrap();
                    if closes {
                        break;
                    }
                }
                if served > closing {
                    return served;
                }
            }
            served
        })
    }

    fn exchange(closing: usize) -> (Result<Attestation, AttestError>, usize, u64) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["verifier.test".to_owned()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf_key.serialize_pem().as_bytes()).unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: transport::Addr = format!("tcp://{}", listener.local_addr().unwrap()).parse().unwrap();
        let server = stand_in(listener, Arc::new(tls), closing);
        let cfg = VerifierConfig {
            addr: Some(addr.clone()),
            server_name: "verifier.test".to_owned(),
            ca_pem: ca.pem(),
            timeout: std::time::Duration::from_secs(5),
            retry: std::time::Duration::ZERO,
        };
        let time = TrustedTime::new(0);
        let result = attest_once(&cfg, &addr, &time, &EnclaveKey::generate().unwrap(), &mut Echo);
        let served = if result.is_ok() { server.join().unwrap() } else { 0 };
        (result, served, time.now_secs())
    }

    #[test]
    fn challenge_and_attest_share_one_connection_and_its_exporter() {
        let (result, served, now) = exchange(0);
        let attestation = result.unwrap();
        assert_eq!(attestation.token.as_str(), "token-1");
        assert_eq!(served, 1, "one connection carried both requests");
        assert!((1_000..1_005).contains(&now), "the challenge's time anchors certificate checks");
    }

    #[test]
    fn a_connection_closed_after_the_challenge_starts_the_exchange_over() {
        // Twice closed, third time bound: the evidence always carries the
        // exporter of the connection its attest request goes out on.
        let (result, served, _) = exchange(2);
        assert_eq!(result.unwrap().token.as_str(), "token-3");
        assert_eq!(served, 3);
        // Closed every time: a protocol error, not an attest on the wrong connection.
        let (result, _, _) = exchange(usize::MAX);
        let err = result.unwrap_err();
        assert!(matches!(err, AttestError::Protocol(_)), "{err}");
        assert!(err.to_string().contains("closed the connection between /v1/challenge and /v1/attest"), "{err}");
    }

    #[test]
    fn the_pinned_ca_must_be_pem() {
        assert!(parse_ca("").is_err());
        assert!(parse_ca("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n").is_err());
    }
}
