//! The verifier service over real TLS: the nonce is single-use, expires, and
//! is bound to its connection; evidence bound to another connection is
//! refused. The appraisal is a stand-in that checks only REPORT_DATA (the
//! appraisal library has its own tests); everything else is the real
//! service.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Map, Value};
use verifier::service::{Clock, Config, Verifier};
use verifier::Appraiser;
use wire::verifier::{AttestRequest, Challenge, Denial, EXPORTER_LABEL};
use wire::{EvidenceBundle, Tee};

/// Accepts evidence whose bytes are exactly the expected REPORT_DATA.
struct ReportDataOnly;

impl Appraiser for ReportDataOnly {
    fn appraise(
        &self,
        bundle: &EvidenceBundle,
        expected: &[u8; 64],
        _now: i64,
    ) -> Result<Map<String, Value>, Denial> {
        if bundle.evidence[..] != expected[..] {
            return Err(Denial {
                check: "report_data".into(),
                got: "other".into(),
                want: "binding".into(),
                hint: String::new(),
            });
        }
        Ok(json!({"tee": "sim", "measurement": "00"})
            .as_object()
            .unwrap()
            .clone())
    }
}

struct Service {
    port: u16,
    ca: CertificateDer<'static>,
    clock: Arc<AtomicI64>,
    verifier: Arc<Verifier>,
}

fn start() -> Service {
    start_with(16)
}

fn start_with(max_connections: usize) -> Service {
    start_full(max_connections, None)
}

fn start_full(
    max_connections: usize,
    client_ca: Option<verifier::client_cert::ClientCa>,
) -> Service {
    start_tuned(max_connections, client_ca, |_| {})
}

/// [`start_tuned`] with a used-nonce set of at most `cap` entries.
fn start_nonce_cap(cap: usize) -> Service {
    start_built(16, None, |_| {}, Some(cap))
}

fn start_tuned(
    max_connections: usize,
    client_ca: Option<verifier::client_cert::ClientCa>,
    tune: impl FnOnce(&mut Config),
) -> Service {
    start_built(max_connections, client_ca, tune, None)
}

/// [`start_full`] with the connection settings changed by `tune` (and
/// the used-nonce set capped at `nonce_cap`).
fn start_built(
    max_connections: usize,
    client_ca: Option<verifier::client_cert::ClientCa>,
    tune: impl FnOnce(&mut Config),
    nonce_cap: Option<usize>,
) -> Service {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["verifier.test".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let clock = Arc::new(AtomicI64::new(1_800_000_000));
    let config = Config {
        issuer: "https://verifier.test".into(),
        audience: "openbao".into(),
        token_ttl_secs: 300,
        nonce_ttl_secs: 300,
        clock: Clock::Manual(Arc::clone(&clock)),
        max_connections,
        io_timeout: Duration::from_secs(10),
        shed_retry_after_secs: 3,
        keep_alive_idle: Duration::from_millis(500),
        handshake_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        accept_queue: 0,
        queue_wait: Duration::from_secs(2),
        max_per_source: 64,
    };
    let mut config = config;
    tune(&mut config);
    let v = Verifier::new(
        config,
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
        &verifier::token::Signer::generate_pkcs8().unwrap(),
        &[7u8; 32],
        Box::new(ReportDataOnly),
    )
    .unwrap();
    let v = match nonce_cap {
        Some(cap) => v.with_used_nonce_cap(cap),
        None => v,
    };
    let v = Arc::new(match client_ca {
        Some(ca) => v.with_client_ca(ca),
        None => v,
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let serving = Arc::clone(&v);
    std::thread::spawn(move || serving.serve(listener));
    Service {
        port,
        ca: ca.der().clone(),
        clock,
        verifier: v,
    }
}

type Tls = BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

fn connect(s: &Service) -> Tls {
    connect_to(s.port, &s.ca)
}

fn connect_to(port: u16, ca: &CertificateDer<'static>) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::try_from("verifier.test").unwrap(),
    )
    .unwrap();
    BufReader::new(rustls::StreamOwned::new(
        conn,
        TcpStream::connect(("127.0.0.1", port)).unwrap(),
    ))
}

fn post(tls: &mut Tls, path: &str, body: &[u8]) -> bounded_http::Response {
    bounded_http::write_request(tls.get_mut(), "POST", "verifier.test", path, &[], body).unwrap();
    bounded_http::read_response(tls, bounded_http::Limits::default()).unwrap()
}

fn exporter(tls: &Tls) -> [u8; 32] {
    let mut e = [0u8; 32];
    tls.get_ref()
        .conn
        .export_keying_material(&mut e, EXPORTER_LABEL, None)
        .unwrap();
    e
}

fn challenge(tls: &mut Tls) -> [u8; 32] {
    let r = post(tls, "/v1/challenge", b"{}");
    assert_eq!(r.status, 200);
    let c: Challenge = serde_json::from_slice(&r.body).unwrap();
    c.nonce[..].try_into().unwrap()
}

fn spki() -> Vec<u8> {
    use ring::signature::KeyPair as _;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    )
    .unwrap();
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .unwrap();
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(pair.public_key().as_ref());
    spki
}

/// An attest request whose "evidence" is REPORT_DATA for (nonce, key, exporter).
fn attest(
    tls: &mut Tls,
    nonce: &[u8; 32],
    key: &[u8],
    bound_exporter: &[u8; 32],
) -> bounded_http::Response {
    attest_asking(tls, nonce, key, bound_exporter, false)
}

fn attest_asking(
    tls: &mut Tls,
    nonce: &[u8; 32],
    key: &[u8],
    bound_exporter: &[u8; 32],
    client_certificate: bool,
) -> bounded_http::Response {
    let rd = tee_formats::binding::report_data(nonce, key, bound_exporter);
    let req = AttestRequest {
        nonce: nonce.to_vec().into(),
        enclave_key_spki: key.to_vec().into(),
        bundle: EvidenceBundle::new(Tee::Sim, "test", rd.to_vec()),
        client_certificate,
    };
    post(tls, "/v1/attest", &serde_json::to_vec(&req).unwrap())
}

fn denied_check(r: &bounded_http::Response) -> String {
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["denial"]["check"].as_str().unwrap().to_owned()
}

#[test]
fn a_bound_attestation_gets_a_token_once() {
    let s = start();
    let key = spki();
    let mut tls = connect(&s);
    let nonce = challenge(&mut tls);
    let e = exporter(&tls);
    let r = attest(&mut tls, &nonce, &key, &e);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let token = serde_json::from_slice::<Value>(&r.body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = s.verifier.signer().verify(&token).unwrap();
    assert_eq!(claims["tee"], "sim");
    assert_eq!(claims["aud"], "openbao");
    assert_eq!(claims["exp"], 1_800_000_300i64);
    assert_eq!(claims["cnf"], verifier::token::cnf_for_spki(&key).unwrap());
    // The same nonce again, same connection: refused.
    assert_eq!(
        denied_check(&attest(&mut tls, &nonce, &key, &e)),
        "nonce.replayed"
    );
}

#[test]
fn an_expired_nonce_is_refused() {
    let s = start();
    let key = spki();
    let mut tls = connect(&s);
    let nonce = challenge(&mut tls);
    let e = exporter(&tls);
    s.clock.fetch_add(301, Ordering::SeqCst);
    assert_eq!(
        denied_check(&attest(&mut tls, &nonce, &key, &e)),
        "nonce.expired"
    );
}

#[test]
fn a_nonce_from_another_connection_is_refused() {
    let s = start();
    let key = spki();
    let mut a = connect(&s);
    let nonce = challenge(&mut a);
    let ea = exporter(&a);
    let mut b = connect(&s);
    assert_eq!(
        denied_check(&attest(&mut b, &nonce, &key, &ea)),
        "nonce.binding"
    );
}

#[test]
fn evidence_bound_to_another_connection_is_refused() {
    // A relay: the host gets a nonce on its own connection B and presents
    // evidence the enclave bound to its connection A.
    let s = start();
    let key = spki();
    let mut a = connect(&s);
    let _ = challenge(&mut a);
    let ea = exporter(&a);
    let mut b = connect(&s);
    let nonce = challenge(&mut b);
    assert_eq!(
        denied_check(&attest(&mut b, &nonce, &key, &ea)),
        "report_data"
    );
    // And the metrics saw it.
    let mut c = connect(&s);
    bounded_http::write_request(c.get_mut(), "GET", "verifier.test", "/metrics", &[], b"").unwrap();
    let m = bounded_http::read_response(&mut c, bounded_http::Limits::default()).unwrap();
    assert!(String::from_utf8_lossy(&m.body)
        .contains("enclave_verifier_denials_total{check=\"report_data\"} 1"));
}

#[test]
fn discovery_and_jwks_describe_the_signing_key() {
    let s = start();
    let mut tls = connect(&s);
    bounded_http::write_request(
        tls.get_mut(),
        "GET",
        "verifier.test",
        "/.well-known/openid-configuration",
        &[],
        b"",
    )
    .unwrap();
    let d: Value = serde_json::from_slice(
        &bounded_http::read_response(&mut tls, bounded_http::Limits::default())
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(d["issuer"], "https://verifier.test");
    assert_eq!(d["jwks_uri"], "https://verifier.test/.well-known/jwks.json");
    bounded_http::write_request(
        tls.get_mut(),
        "GET",
        "verifier.test",
        "/.well-known/jwks.json",
        &[],
        b"",
    )
    .unwrap();
    let j: Value = serde_json::from_slice(
        &bounded_http::read_response(&mut tls, bounded_http::Limits::default())
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(j, s.verifier.signer().jwks());
    bounded_http::write_request(
        tls.get_mut(),
        "POST",
        "verifier.test",
        "/v1/attest",
        &[],
        b"not json",
    )
    .unwrap();
    assert_eq!(
        bounded_http::read_response(&mut tls, bounded_http::Limits::default())
            .unwrap()
            .status,
        400
    );
}

#[test]
fn over_the_connection_limit_a_client_is_told_when_to_retry() {
    let s = start_with(1);
    // One connection holds the only slot (a request answered proves it is
    // being served, not still queued).
    let mut held = connect(&s);
    let _ = challenge(&mut held);
    // The next is shed: 503, busy, Retry-After as configured, then closed.
    let mut shed = connect(&s);
    let r = post(&mut shed, "/v1/challenge", b"{}");
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "busy");
    let retry = r
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.as_str());
    assert_eq!(retry, Some("3"));
    // The held connection is still served; once it is gone, a new one is
    // (the slot frees when its thread ends: a few tries).
    let _ = challenge(&mut held);
    drop(held);
    let when_free = |method: &str, path: &str| {
        for _ in 0..100 {
            let mut c = connect(&s);
            bounded_http::write_request(c.get_mut(), method, "verifier.test", path, &[], b"")
                .unwrap();
            let r = bounded_http::read_response(&mut c, bounded_http::Limits::default()).unwrap();
            if r.status != 503 {
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the slot never freed");
    };
    assert_eq!(when_free("POST", "/v1/challenge").status, 200);
    // Counted in the metrics.
    let text = String::from_utf8(when_free("GET", "/metrics").body).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("enclave_verifier_shed_connections_total "))
        .unwrap();
    let count: u64 = line.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(count >= 1, "{line}");
}

#[test]
fn an_idle_kept_alive_connection_gives_its_slot_back() {
    let s = start_with(1);
    let mut idle = connect(&s);
    let _ = challenge(&mut idle);
    // Within the idle time the connection is kept: a second request on it
    // is served.
    let _ = challenge(&mut idle);
    // Idle past keep_alive_idle (500 ms here): the verifier closes it, and
    // the slot serves a new client without waiting for the I/O timeout.
    std::thread::sleep(Duration::from_millis(900));
    let mut next = connect(&s);
    let r = post(&mut next, "/v1/challenge", b"{}");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // And the idle one was closed, not left hanging.
    bounded_http::write_request(
        idle.get_mut(),
        "POST",
        "verifier.test",
        "/v1/challenge",
        &[],
        b"{}",
    )
    .ok();
    assert!(bounded_http::read_response(&mut idle, bounded_http::Limits::default()).is_err());
}

#[test]
fn a_guest_that_asks_gets_a_client_certificate_for_its_key_and_others_do_not() {
    let (ca_pem, ca_key) = verifier::client_cert::generate_ca("test client CA").unwrap();
    let s = start_full(
        16,
        Some(verifier::client_cert::ClientCa::from_pem(&ca_pem, &ca_key).unwrap()),
    );
    let key = spki();
    let mut tls = connect(&s);
    let nonce = challenge(&mut tls);
    let e = exporter(&tls);
    let r = attest_asking(&mut tls, &nonce, &key, &e, true);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let resp: wire::verifier::AttestResponse = serde_json::from_slice(&r.body).unwrap();
    let pem = resp.client_certificate.unwrap();
    use rustls::pki_types::pem::PemObject as _;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        cert.public_key().raw,
        &key[..],
        "the certificate is for the attested key"
    );
    assert_eq!(
        cert.validity().not_after.timestamp(),
        i64::try_from(resp.expires_at).unwrap(),
        "it lives as long as the token"
    );
    let sans = format!(
        "{:?}",
        cert.subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
    );
    assert!(
        sans.contains("urn:enclave:measurement:00") && sans.contains("urn:enclave:tee:sim"),
        "{sans}"
    );
    // Not asked: no certificate, and the answer is what older guests parse.
    let nonce = challenge(&mut tls);
    let r = attest(&mut tls, &nonce, &key, &e);
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v.get("client_certificate").is_none(), "{v}");
}

#[test]
fn a_verifier_without_a_client_ca_says_so() {
    let s = start();
    let key = spki();
    let mut tls = connect(&s);
    let nonce = challenge(&mut tls);
    let e = exporter(&tls);
    let r = attest_asking(&mut tls, &nonce, &key, &e, true);
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("no_client_ca"));
}

/// An attest request with the nonce and SPKI as given (any length).
fn attest_raw(
    tls: &mut Tls,
    nonce: &[u8],
    key: &[u8],
    bound_exporter: &[u8; 32],
) -> bounded_http::Response {
    let mut n = [0u8; 32];
    let k = nonce.len().min(32);
    n[..k].copy_from_slice(&nonce[..k]);
    let rd = tee_formats::binding::report_data(&n, key, bound_exporter);
    let req = AttestRequest {
        nonce: nonce.to_vec().into(),
        enclave_key_spki: key.to_vec().into(),
        bundle: EvidenceBundle::new(Tee::Sim, "test", rd.to_vec()),
        client_certificate: false,
    };
    post(tls, "/v1/attest", &serde_json::to_vec(&req).unwrap())
}

#[test]
fn a_nonce_of_another_length_is_refused() {
    let s = start();
    let key = spki();
    let mut tls = connect(&s);
    let nonce = challenge(&mut tls);
    let e = exporter(&tls);
    // The nonce this connection was issued, one byte short, then one longer.
    assert_eq!(
        denied_check(&attest_raw(&mut tls, &nonce[..31], &key, &e)),
        "nonce.length"
    );
    let mut longer = nonce.to_vec();
    longer.push(0);
    assert_eq!(
        denied_check(&attest_raw(&mut tls, &longer, &key, &e)),
        "nonce.length"
    );
    // The nonce itself is still unused: it attests.
    let r = attest(&mut tls, &nonce, &key, &e);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn an_enclave_key_that_is_no_ec_spki_is_refused() {
    let s = start();
    let key = spki();
    // The real P-256 SPKI with its last byte cut (no longer DER), then with
    // its curve OID's last byte (prime256v1 1.2.840.10045.3.1.7, at offset
    // 22) made 6: another curve.
    let mut other_curve = key.clone();
    assert_eq!(other_curve[22], 0x07);
    other_curve[22] = 0x06;
    for bad in [key[..key.len() - 1].to_vec(), other_curve] {
        let mut tls = connect(&s);
        let nonce = challenge(&mut tls);
        let e = exporter(&tls);
        let r = attest_raw(&mut tls, &nonce, &bad, &e);
        assert_eq!(denied_check(&r), "enclave_key");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["denial"]["got"], format!("{} bytes", bad.len()));
    }
}

/// A `/metrics` sample's value (the test fails if it is missing).
fn metric(s: &Service, sample: &str) -> u64 {
    let mut c = connect(s);
    bounded_http::write_request(c.get_mut(), "GET", "verifier.test", "/metrics", &[], b"").unwrap();
    let r = bounded_http::read_response(&mut c, bounded_http::Limits::default()).unwrap();
    let text = String::from_utf8(r.body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {sample} in {text}"))
        .parse()
        .unwrap()
}

/// A request head dripped a byte every 100 ms for 1.9 s (each read well
/// inside the 10 s I/O timeout, the last 100 ms before the deadline) is
/// cut at the 2 s request deadline with a 408, long before the I/O
/// timeout, and counted as a request-phase kill.
#[test]
fn a_dripped_request_is_cut_at_the_request_deadline() {
    use std::io::Write as _;
    let s = start();
    let mut tls = connect(&s);
    let _ = challenge(&mut tls);
    let head = b"POST /v1/challenge HTTP/1.1\r\nhost: verifier.test\r\nx-pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let start = std::time::Instant::now();
    let mut sent = 0;
    for b in head.iter() {
        if tls
            .get_mut()
            .write_all(&[*b])
            .and_then(|()| tls.get_mut().flush())
            .is_err()
        {
            break;
        }
        sent += 1;
        // Stop just before the deadline: a write after the server's
        // answer and close would be reset and lose the answer.
        if start.elapsed() > Duration::from_millis(1900) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        sent < head.len(),
        "the whole head was accepted ({sent} bytes)"
    );
    let r = bounded_http::read_response(&mut tls, bounded_http::Limits::default()).unwrap();
    let took = start.elapsed();
    assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "request_timeout");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(3000),
        "answered after {took:?}"
    );
    assert_eq!(
        metric(
            &s,
            "enclave_verifier_deadline_kills_total{phase=\"request\"}"
        ),
        1
    );
}

/// A ClientHello dripped a byte every 100 ms is closed at the 2 s
/// handshake deadline, not at the 10 s I/O timeout.
#[test]
fn a_dripped_handshake_is_cut_at_the_handshake_deadline() {
    use std::io::{Read as _, Write as _};
    let s = start();
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // A TLS record header announcing a 512-byte handshake message, then
    // filler: the server waits for the rest.
    let mut hello = vec![0x16, 0x03, 0x01, 0x02, 0x00];
    hello.extend(std::iter::repeat_n(0x01, 512));
    let start = std::time::Instant::now();
    let mut closed = None;
    for b in hello {
        if raw.write_all(&[b]).is_err() {
            closed = Some(start.elapsed());
            break;
        }
        let mut sink = [0u8; 64];
        match raw.read(&mut sink) {
            Ok(0) => {
                closed = Some(start.elapsed());
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                closed = Some(start.elapsed());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = closed.expect("the dripped handshake was never closed");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(2800),
        "closed after {took:?}"
    );
    assert_eq!(
        metric(
            &s,
            "enclave_verifier_deadline_kills_total{phase=\"handshake\"}"
        ),
        1
    );
}

/// With the one worker held by a connection that sent nothing, a second
/// connection waits in the queue (it is not shed) and is served once the
/// silent one, crawling while another waits, is cut after the 1 s grace
/// (not at its 5 s handshake deadline); a third, past the queue of one,
/// is shed at once with 503.
#[test]
fn a_connection_waits_in_the_queue_and_a_silent_one_makes_room() {
    let s = start_tuned(1, None, |c| {
        c.accept_queue = 1;
        c.queue_wait = Duration::from_secs(5);
        c.handshake_timeout = Duration::from_secs(5);
    });
    let silent = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (port, ca) = (s.port, s.ca.clone());
    let waiter = std::thread::spawn(move || {
        let mut c = connect_to(port, &ca);
        let started = std::time::Instant::now();
        let r = post(&mut c, "/v1/challenge", b"{}");
        (r.status, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    // The queue holds the waiter: the next is shed.
    let mut shed = connect(&s);
    let r = post(&mut shed, "/v1/challenge", b"{}");
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "busy");
    let (status, waited) = waiter.join().unwrap();
    assert_eq!(status, 200);
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(2000),
        "served after {waited:?}"
    );
    drop(silent);
    assert_eq!(
        metric(
            &s,
            "enclave_verifier_deadline_kills_total{phase=\"handshake\"}"
        ),
        1
    );
}

/// A kept-alive connection that has made a request (a client between its
/// challenge and its attest) is not shed while another waits: the waiter
/// is served only when its 2.5 s keep-alive idle ends, not after the 1 s
/// grace.
#[test]
fn a_client_between_requests_keeps_its_worker_until_its_idle_deadline() {
    let s = start_tuned(1, None, |c| {
        c.accept_queue = 1;
        c.queue_wait = Duration::from_secs(5);
        c.keep_alive_idle = Duration::from_millis(2500);
    });
    let mut held = connect(&s);
    let _ = challenge(&mut held);
    let (port, ca) = (s.port, s.ca.clone());
    let waiter = std::thread::spawn(move || {
        let mut c = connect_to(port, &ca);
        let started = std::time::Instant::now();
        let r = post(&mut c, "/v1/challenge", b"{}");
        (r.status, started.elapsed())
    });
    // Within its idle time the held connection is still served.
    std::thread::sleep(Duration::from_millis(1500));
    let _ = challenge(&mut held);
    let (status, waited) = waiter.join().unwrap();
    assert_eq!(status, 200);
    assert!(
        waited >= Duration::from_millis(3500) && waited < Duration::from_millis(5000),
        "served after {waited:?}"
    );
    assert_eq!(
        metric(&s, "enclave_verifier_deadline_kills_total{phase=\"idle\"}"),
        1
    );
}

/// With a cap of two connections per source, a third from the same
/// address is answered 503 `busy_source` while workers are free; once one
/// of the two closes, a new one is served.
#[test]
fn a_source_is_capped_at_its_connection_count() {
    let s = start_tuned(8, None, |c| {
        c.max_per_source = 2;
        c.accept_queue = 8;
    });
    let mut a = connect(&s);
    let _ = challenge(&mut a);
    let mut b = connect(&s);
    let _ = challenge(&mut b);
    let mut third = connect(&s);
    let r = post(&mut third, "/v1/challenge", b"{}");
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "busy_source");
    assert_eq!(
        r.headers
            .iter()
            .find(|(n, _)| n == "retry-after")
            .map(|(_, v)| v.as_str()),
        Some("3")
    );
    drop(a);
    for _ in 0..100 {
        let mut c = connect(&s);
        bounded_http::write_request(
            c.get_mut(),
            "POST",
            "verifier.test",
            "/v1/challenge",
            &[],
            b"{}",
        )
        .unwrap();
        let r = bounded_http::read_response(&mut c, bounded_http::Limits::default()).unwrap();
        if r.status == 200 {
            let _ = challenge(&mut b);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the source's slot never freed");
}

/// With room for one redeemed nonce, the first attestation gets a token;
/// the second, with a fresh and valid nonce, is denied `nonce.capacity`
/// (the set does not forget an unexpired nonce to make room).
#[test]
fn a_full_used_nonce_set_refuses_with_a_precise_denial() {
    let s = start_nonce_cap(1);
    let mut tls = connect(&s);
    let key = spki();
    let n1 = challenge(&mut tls);
    let ex = exporter(&tls);
    assert_eq!(attest(&mut tls, &n1, &key, &ex).status, 200);
    let n2 = challenge(&mut tls);
    let r = attest(&mut tls, &n2, &key, &ex);
    assert_eq!(denied_check(&r), "nonce.capacity");
}

/// A bundle of another format, version or with an unprintable provider is
/// refused 400 `unsupported_bundle` naming the field, before the nonce is
/// redeemed (the same nonce then still gets a token: nothing was spent on
/// it, no HMAC check consumed it, no appraisal ran).
#[test]
fn a_bundle_of_another_format_or_version_is_refused_before_the_nonce() {
    let s = start();
    let mut tls = connect(&s);
    let key = spki();
    let nonce = challenge(&mut tls);
    let ex = exporter(&tls);
    let rd = tee_formats::binding::report_data(&nonce, &key, &ex);
    let good = EvidenceBundle::new(Tee::Sim, "sim-psp", rd.to_vec());
    type Spoil = fn(&mut EvidenceBundle);
    let cases: [(&str, Spoil); 3] = [
        (
            "bundle format \"x\", want \"enclave-init/evidence-bundle\"",
            |b| b.format = "x".into(),
        ),
        ("bundle version 2, want 1", |b| b.version = 2),
        (
            "bundle provider of 8 bytes is not 1 to 64 of [A-Za-z0-9._-]",
            |b| b.provider = "sim\npsp\u{7}".into(),
        ),
    ];
    for (message, spoil) in cases {
        let mut bundle = good.clone();
        spoil(&mut bundle);
        let req = AttestRequest {
            nonce: nonce.to_vec().into(),
            enclave_key_spki: key.clone().into(),
            bundle,
            client_certificate: false,
        };
        let r = post(&mut tls, "/v1/attest", &serde_json::to_vec(&req).unwrap());
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"]["code"], "unsupported_bundle");
        assert_eq!(v["error"]["message"], message);
    }
    assert_eq!(attest(&mut tls, &nonce, &key, &ex).status, 200);
}

/// Request bodies: a declared length over the 256 KiB limit is refused
/// 400 at once, naming both numbers (nothing is read or allocated for
/// it); a 200,000-byte body declared and never sent is cut at the 2 s
/// request deadline with 408, not held for the 10 s I/O timeout. (The
/// allocation itself grows only with the bytes that arrive:
/// `http`'s `FIRST_BODY_ALLOC` and its tests.)
#[test]
fn declared_bodies_are_bounded_and_a_missing_one_is_cut_at_the_deadline() {
    use std::io::Write as _;
    let s = start();
    let mut tls = connect(&s);
    let head =
        "POST /v1/attest HTTP/1.1\r\nhost: verifier.test\r\ncontent-length: 10485760\r\n\r\n";
    tls.get_mut().write_all(head.as_bytes()).unwrap();
    tls.get_mut().flush().unwrap();
    let r = bounded_http::read_response(&mut tls, bounded_http::Limits::default()).unwrap();
    assert_eq!(r.status, 400);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v["error"]["message"],
        "body of 10485760 bytes exceeds 262144"
    );

    let mut tls = connect(&s);
    let head = "POST /v1/attest HTTP/1.1\r\nhost: verifier.test\r\ncontent-length: 200000\r\n\r\n{\"nonce\":";
    let start = std::time::Instant::now();
    tls.get_mut().write_all(head.as_bytes()).unwrap();
    tls.get_mut().flush().unwrap();
    let r = bounded_http::read_response(&mut tls, bounded_http::Limits::default()).unwrap();
    let took = start.elapsed();
    assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(2800),
        "answered after {took:?}"
    );
}
