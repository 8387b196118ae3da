//! Steps 4-6 of the boot: the attestation exchange with the verifier.
//!
//! One TLS 1.3 connection (rustls, the verifier's CA pinned in the measured
//! configuration) carries both requests:
//! 1. `POST /v1/challenge` → a nonce bound to this connection, and the
//!    verifier's time;
//! 2. REPORT_DATA = SHA-512(tag ‖ nonce ‖ SHA-256(enclave SPKI) ‖ TLS
//!    exporter of this connection) (`tee_formats::binding`), evidence for it;
//! 3. `POST /v1/attest` → the token, or a structured denial.
//!
//! The exporter ties the evidence to this TLS session: a host relaying our
//! evidence over its own connection presents a different exporter and is
//! denied. Time: certificates are checked against [`TrustedTime`], which
//! follows the verifier's clock once it has answered, never the guest's
//! host-controlled clock alone.

use std::io::BufReader;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
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

/// A TLS connection to a peer, read through a buffer.
pub type Tls = BufReader<rustls::StreamOwned<rustls::ClientConnection, transport::Stream>>;

/// Why a TLS connection could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// The transport connection failed (the peer is unreachable).
    Unreachable(std::io::Error),
    /// TLS could not be set up (bad pinned CA, bad name).
    Tls(String),
}

/// Opens a TLS 1.3 connection to `addr` trusting only `ca_pem`, expecting
/// `server_name`, with `timeout` on every read and write. The handshake runs
/// on the first read or write.
pub fn connect_tls(
    addr: &transport::Addr,
    server_name: &str,
    ca_pem: &str,
    timeout: std::time::Duration,
    time: &Arc<TrustedTime>,
) -> Result<Tls, ConnectError> {
    let config = client_config(ca_pem, Arc::clone(time)).map_err(|e| ConnectError::Tls(e.to_string()))?;
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| ConnectError::Tls(e.to_string()))?;
    let stream = transport::connect(addr).map_err(ConnectError::Unreachable)?;
    stream.set_timeouts(timeout).map_err(ConnectError::Unreachable)?;
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| ConnectError::Tls(e.to_string()))?;
    Ok(BufReader::new(rustls::StreamOwned::new(conn, stream)))
}

fn call(tls: &mut Tls, host: &str, path: &str, body: &[u8]) -> Result<http::Response, AttestError> {
    http::write_request(tls.get_mut(), "POST", host, path, &[("content-type", "application/json")], body)
        .map_err(|e| AttestError::Tls(e.to_string()))?;
    http::read_response(tls, http::Limits { head_bytes: 16 * 1024, body_bytes: 256 * 1024 })
        .map_err(|e| AttestError::Protocol(format!("{path}: {e}")))
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
    let mut tls = connect_tls(addr, &cfg.server_name, &cfg.ca_pem, cfg.timeout, time).map_err(|e| match e {
        ConnectError::Unreachable(e) => AttestError::Connect(e),
        ConnectError::Tls(e) => AttestError::Tls(e),
    })?;

    // 4. Challenge.
    let resp = call(&mut tls, &cfg.server_name, "/v1/challenge", b"{}")?;
    if resp.status != 200 {
        return Err(AttestError::Protocol(format!("/v1/challenge answered {}", resp.status)));
    }
    let challenge: Challenge = wire::from_json(&resp.body).map_err(|e| AttestError::Protocol(e.to_string()))?;
    let nonce: [u8; 32] =
        challenge.nonce[..].try_into().map_err(|_| AttestError::Protocol(format!("nonce is {} bytes", challenge.nonce.len())))?;
    time.anchor(challenge.verifier_time);

    // 5. Evidence bound to the nonce, our key and this TLS session.
    let mut exporter = [0u8; 32];
    tls.get_ref()
        .conn
        .export_keying_material(&mut exporter, EXPORTER_LABEL, None)
        .map_err(|e| AttestError::Tls(format!("exporter: {e}")))?;
    let report_data = tee_formats::binding::report_data(&nonce, key.spki(), &exporter);
    let evidence_started = Instant::now();
    let bundle = tee.collect(&report_data).map_err(AttestError::Evidence)?;
    let evidence_time = evidence_started.elapsed();

    // 6. Attest.
    let request = AttestRequest { nonce: nonce.to_vec().into(), enclave_key_spki: key.spki().to_vec().into(), bundle };
    let body = serde_json::to_vec(&request).map_err(|e| AttestError::Protocol(e.to_string()))?;
    let resp = call(&mut tls, &cfg.server_name, "/v1/attest", &body)?;
    match resp.status {
        200 => {
            let ok: AttestResponse = wire::from_json(&resp.body).map_err(|e| AttestError::Protocol(e.to_string()))?;
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
            let d: Denied = wire::from_json(&resp.body).map_err(|e| AttestError::Protocol(e.to_string()))?;
            Err(AttestError::Denied(d.denial))
        }
        other => Err(AttestError::Protocol(format!(
            "/v1/attest answered {other}: {}",
            String::from_utf8_lossy(&resp.body).chars().take(200).collect::<String>()
        ))),
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

    #[test]
    fn the_pinned_ca_must_be_pem() {
        assert!(parse_ca("").is_err());
        assert!(parse_ca("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n").is_err());
    }
}
