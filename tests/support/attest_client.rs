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
pub type Tls = BufReader<rustls::StreamOwned<rustls::ClientConnection, DeadlineStream>>;

/// A TCP stream whose every read and write waits at most until one
/// instant: the socket timeout is set to what is left before each call, so
/// a peer that drips bytes cannot stretch the exchange past its deadline.
pub struct DeadlineStream {
    tcp: TcpStream,
    end: Instant,
}

impl DeadlineStream {
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the exchange's deadline passed",
            ));
        }
        Ok(left)
    }
}

impl std::io::Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        self.tcp.read(buf)
    }
}

impl std::io::Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

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
    let mut tls = connect(config, port, end)?;
    // Drive the handshake to its end now, so that its cost is not the
    // challenge's (one complete_io may return after a single read).
    let stream = tls.get_mut();
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| format!("TLS handshake: {e}"))?;
    }
    let handshake = t.elapsed();

    let t = Instant::now();
    let r = post(&mut tls, "/v1/challenge", b"{}")?;
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
    let r = post(&mut tls, "/v1/attest", &body)?;
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

fn connect(config: &Arc<rustls::ClientConfig>, port: u16, end: Instant) -> Result<Tls, String> {
    let tcp = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        end.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1)),
    )
    .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let name = rustls::pki_types::ServerName::try_from("verifier.enclave.local")
        .map_err(|e| e.to_string())?;
    let conn =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
    Ok(BufReader::new(rustls::StreamOwned::new(
        conn,
        DeadlineStream { tcp, end },
    )))
}

/// The verifier's `/metrics` text (within 10 s).
pub fn metrics(config: &Arc<rustls::ClientConfig>, port: u16) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    let mut tls = connect(config, port, end).unwrap();
    bounded_http::write_request(
        tls.get_mut(),
        "GET",
        "verifier.enclave.local",
        "/metrics",
        &[],
        b"",
    )
    .unwrap();
    let r = bounded_http::read_response(&mut tls, bounded_http::Limits::default()).unwrap();
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).unwrap()
}

/// One request on the connection (its [`DeadlineStream`] bounds it).
fn post(tls: &mut Tls, path: &str, body: &[u8]) -> Result<bounded_http::Response, String> {
    bounded_http::write_request(
        tls.get_mut(),
        "POST",
        "verifier.enclave.local",
        path,
        &[],
        body,
    )
    .map_err(|e| format!("{path}: {e}"))?;
    bounded_http::read_response(tls, bounded_http::Limits::default())
        .map_err(|e| format!("{path}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::net::TcpListener;

    use super::*;

    /// A server that drips a byte every 50 ms (a TLS record header that
    /// announces 16 KiB, then the body a byte at a time) never lets a
    /// single read time out; the exchange must still end at its deadline.
    #[test]
    fn a_dripping_verifier_ends_the_exchange_at_its_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.write_all(&[0x16, 0x03, 0x03, 0x40, 0x00]);
            while s.write_all(&[0]).is_ok() {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let pki = crate::stack::Pki::new();
        let t = Instant::now();
        let r = exchange(
            &client_config(&pki.ca_pem()),
            port,
            Path::new("/nonexistent/psp.sock"),
            &enclave_spki(),
            Duration::from_millis(500),
        );
        let took = t.elapsed();
        let Err(err) = r else {
            panic!("a dripping server gave a token");
        };
        assert!(err.starts_with("TLS handshake:"), "{err}");
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_millis(900),
            "ended after {took:?}"
        );
    }
}
