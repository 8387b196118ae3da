//! The guest's exchange with the verifier, replayed from the host: one TLS
//! connection, `POST /v1/challenge`, simulated evidence from sim-psp bound
//! to the nonce, an enclave key and the connection's TLS exporter (as
//! `src/enclave-init/src/attest.rs` builds it), `POST /v1/attest`. For load
//! generators and tests that need a token without booting a guest; every
//! failure is a value (a load generator counts them).

use std::io::BufReader;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wire::verifier::{AttestRequest, AttestResponse, Challenge, EXPORTER_LABEL};

/// A TLS connection to a verifier.
pub type Tls = BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

/// A TLS 1.3 client configuration trusting `ca_pem` (the guest's pinned
/// verifier CA).
pub fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// A fresh P-256 SPKI: the enclave key a guest would attest.
pub fn enclave_spki() -> Vec<u8> {
    use ring::signature::KeyPair as _;
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    // The fixed DER prefix of a P-256 SubjectPublicKeyInfo.
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(pair.public_key().as_ref());
    spki
}

/// How one exchange went, phase by phase.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// TCP connect and TLS handshake.
    pub handshake: Duration,
    /// `POST /v1/challenge` round trip.
    pub challenge: Duration,
    /// Evidence from sim-psp (the guest's PSP; not the verifier's cost).
    pub evidence: Duration,
    /// `POST /v1/attest` round trip: the appraisal as the guest sees it.
    pub attest: Duration,
    /// The verifier's answer to the attest.
    pub token: AttestResponse,
}

/// One exchange with the verifier on `127.0.0.1:port`, evidence from the
/// sim-psp on `psp`, the whole of it within `deadline`.
pub fn exchange(
    config: &Arc<rustls::ClientConfig>,
    port: u16,
    psp: &Path,
    spki: &[u8],
    deadline: Duration,
) -> Result<Exchange, String> {
    let end = Instant::now() + deadline;
    let t = Instant::now();
    let mut tls = connect(config, port, deadline)?;
    // Drive the handshake now, so that its cost is not the challenge's.
    let stream = tls.get_mut();
    stream
        .conn
        .complete_io(&mut stream.sock)
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let handshake = t.elapsed();

    let t = Instant::now();
    let r = post(&mut tls, "/v1/challenge", b"{}", end)?;
    if r.status != 200 {
        return Err(format!("challenge answered {}", r.status));
    }
    let c: Challenge = serde_json::from_slice(&r.body).map_err(|e| format!("challenge: {e}"))?;
    let nonce: [u8; 32] = c.nonce[..]
        .try_into()
        .map_err(|_| format!("challenge nonce of {} bytes", c.nonce.len()))?;
    let challenge = t.elapsed();

    let t = Instant::now();
    let mut exporter = [0u8; 32];
    tls.get_ref()
        .conn
        .export_keying_material(&mut exporter, EXPORTER_LABEL, None)
        .map_err(|e| format!("TLS exporter: {e}"))?;
    let rd = tee_formats::binding::report_data(&nonce, spki, &exporter);
    let addr: transport::Addr = format!("unix://{}", psp.display())
        .parse()
        .map_err(|e| format!("sim-psp address: {e}"))?;
    let mut source =
        evidence::sim::SimPsp::new(addr, end.saturating_duration_since(Instant::now()));
    let bundle = evidence::EvidenceSource::collect(&mut source, &rd)
        .map_err(|e| format!("sim-psp evidence: {e}"))?;
    let req = AttestRequest {
        nonce: nonce.to_vec().into(),
        enclave_key_spki: spki.to_vec().into(),
        bundle,
        client_certificate: false,
    };
    let body = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
    let evidence = t.elapsed();

    let t = Instant::now();
    let r = post(&mut tls, "/v1/attest", &body, end)?;
    let attest = t.elapsed();
    if r.status != 200 {
        return Err(format!(
            "attest answered {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }
    let token: AttestResponse =
        serde_json::from_slice(&r.body).map_err(|e| format!("attest response: {e}"))?;
    Ok(Exchange {
        handshake,
        challenge,
        evidence,
        attest,
        token,
    })
}

fn connect(
    config: &Arc<rustls::ClientConfig>,
    port: u16,
    deadline: Duration,
) -> Result<Tls, String> {
    let tcp = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        deadline,
    )
    .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    tcp.set_read_timeout(Some(deadline))
        .and_then(|()| tcp.set_write_timeout(Some(deadline)))
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("verifier.enclave.local")
        .map_err(|e| e.to_string())?;
    let conn =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
    Ok(BufReader::new(rustls::StreamOwned::new(conn, tcp)))
}

/// One request; the socket's timeouts are cut to what is left of the
/// exchange's deadline first, so the deadline covers the whole exchange.
fn post(tls: &mut Tls, path: &str, body: &[u8], end: Instant) -> Result<http::Response, String> {
    let left = end.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(format!("deadline passed before {path}"));
    }
    let sock = &tls.get_ref().sock;
    sock.set_read_timeout(Some(left))
        .and_then(|()| sock.set_write_timeout(Some(left)))
        .map_err(|e| e.to_string())?;
    http::write_request(
        tls.get_mut(),
        "POST",
        "verifier.enclave.local",
        path,
        &[],
        body,
    )
    .map_err(|e| format!("{path}: {e}"))?;
    http::read_response(tls, http::Limits::default()).map_err(|e| format!("{path}: {e}"))
}
