//! ureq over our transport against small rustls HTTPS servers on a unix
//! socket, on TCP, and behind a hybrid-vsock stand-in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use ureq_transport::{classify, Failure};

const NAME: &str = "vault.enclave.local";
const TIMEOUT: Duration = Duration::from_secs(5);
/// The exporter label the exporter tests use.
const LABEL: &[u8] = b"EXPORTER-ureq-transport-test";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A CA and a server certificate for [`NAME`] it issued.
struct Pki {
    ca: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    key: String,
}

impl Pki {
    fn new() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        // A name of its own: two test CAs never look like one another.
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let n = SERIAL.fetch_add(1, Ordering::SeqCst);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("test CA {n}"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec![NAME.to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        Pki {
            ca: ca.der().clone(),
            leaf: leaf.der().clone(),
            key: leaf_key.serialize_pem(),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = PrivateKeyDer::from_pem_slice(self.key.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![self.leaf.clone()], key)
        .unwrap();
        Arc::new(config)
    }

    /// What the guest builds: TLS 1.3, ring, only this CA trusted.
    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        Arc::new(config)
    }
}

/// How the test server answers.
#[derive(Clone, Copy)]
enum Mode {
    /// `/echo` echoes the body, `/forbidden` is 403 with a JSON body,
    /// `/exporter` is the hex of this connection's [`LABEL`] exporter (the
    /// server's side of it), anything else names method, path and `Host`.
    Normal,
    /// As `Normal`, then closes the connection after each response
    /// (without saying so in a header).
    CloseAfterEach,
    /// Reads the request and never answers.
    Silent,
}

/// A scratch directory.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ureq-transport-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Serves one connection: TLS, then requests until the client closes.
fn serve_conn<S: Read + Write>(stream: S, tls: Arc<rustls::ServerConfig>, mode: Mode) {
    let conn = rustls::ServerConnection::new(tls).unwrap();
    let mut io = BufReader::new(rustls::StreamOwned::new(conn, stream));
    let limits = bounded_http::Limits {
        head_bytes: 16 * 1024,
        body_bytes: 4 * 1024 * 1024,
    };
    while let Ok(Some(req)) = bounded_http::read_request(&mut io, limits) {
        let (status, body) = match (mode, req.path.as_str()) {
            (Mode::Silent, _) => {
                std::thread::sleep(Duration::from_secs(10));
                return;
            }
            (_, "/echo") => (200, req.body.clone()),
            (_, "/forbidden") => (403, br#"{"errors":["permission denied"]}"#.to_vec()),
            (_, "/exporter") => {
                let exporter = io
                    .get_ref()
                    .conn
                    .export_keying_material([0u8; 32], LABEL, None)
                    .unwrap();
                (200, hex(&exporter).into_bytes())
            }
            _ => (
                200,
                format!(
                    "{} {} host={}",
                    req.method,
                    req.path,
                    req.header("host").unwrap_or("-")
                )
                .into_bytes(),
            ),
        };
        if bounded_http::write_response(
            io.get_mut(),
            status,
            &[("content-type", "text/plain")],
            &body,
        )
        .is_err()
        {
            return;
        }
        if matches!(mode, Mode::CloseAfterEach) {
            return;
        }
    }
}

/// Serves `listener` in the background; counts accepted connections.
fn serve(
    listener: transport::Listener,
    tls: Arc<rustls::ServerConfig>,
    mode: Mode,
) -> Arc<AtomicUsize> {
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        while let Ok(stream) = listener.accept() {
            count.fetch_add(1, Ordering::SeqCst);
            let tls = Arc::clone(&tls);
            std::thread::spawn(move || serve_conn(stream, tls, mode));
        }
    });
    accepted
}

fn listen(addr: &str) -> (transport::Addr, transport::Listener) {
    let listener = transport::listen(&addr.parse().unwrap()).unwrap();
    (listener.local_addr().parse().unwrap(), listener)
}

fn agent(addr: transport::Addr, pki: &Pki, timeout: Duration) -> ureq::Agent {
    ureq_transport::agent(
        addr,
        ServerName::try_from(NAME).unwrap().to_owned(),
        pki.client_config(),
        timeout,
    )
}

fn url(path: &str) -> String {
    format!("https://{NAME}{path}")
}

fn text(resp: ureq::http::Response<ureq::Body>) -> String {
    String::from_utf8(
        resp.into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .unwrap(),
    )
    .unwrap()
}

/// GET, POST with bodies larger than the buffers, and a third request, all
/// on one kept-alive connection.
fn exercise(addr: transport::Addr, pki: &Pki, accepted: &AtomicUsize) {
    let agent = agent(addr, pki, TIMEOUT);
    let resp = agent.get(url("/v1/hello")).call().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        text(resp),
        format!("GET /v1/hello host={NAME}"),
        "the URL's host is the Host header; no DNS was needed for it"
    );

    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let resp = agent
        .post(url("/echo"))
        .header("content-type", "application/octet-stream")
        .send(&body[..])
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .unwrap(),
        body
    );

    let resp = agent
        .post(url("/v1/sys/wrapping/unwrap"))
        .send_empty()
        .unwrap();
    assert_eq!(
        text(resp),
        format!("POST /v1/sys/wrapping/unwrap host={NAME}")
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "keep-alive: one connection carried every request"
    );
}

#[test]
fn get_and_post_over_unix_keep_one_connection_alive() {
    let pki = Pki::new();
    let dir = scratch("unix");
    let (addr, listener) = listen(&format!("unix://{}", dir.join("s.sock").display()));
    let accepted = serve(listener, pki.server_config(), Mode::Normal);
    exercise(addr, &pki, &accepted);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn get_and_post_over_tcp_keep_one_connection_alive() {
    let pki = Pki::new();
    let (addr, listener) = listen("tcp://127.0.0.1:0");
    let accepted = serve(listener, pki.server_config(), Mode::Normal);
    exercise(addr, &pki, &accepted);
}

#[test]
fn a_hybrid_vsock_listener_stand_in_works() {
    let pki = Pki::new();
    let dir = scratch("hybrid");
    let uds = dir.join("vm.vsock");
    let listener = UnixListener::bind(&uds).unwrap();
    let tls = pki.server_config();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        while let Ok((mut s, _)) = listener.accept() {
            count.fetch_add(1, Ordering::SeqCst);
            // Byte by byte: what follows the line is the guest's TLS.
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while !line.ends_with(b"\n") && s.read(&mut byte).unwrap() == 1 {
                line.push(byte[0]);
            }
            assert_eq!(line, b"CONNECT 5000\n");
            s.write_all(b"OK 1\n").unwrap();
            let tls = Arc::clone(&tls);
            std::thread::spawn(move || serve_conn(s, tls, Mode::Normal));
        }
    });
    exercise(transport::Addr::Hybrid { uds, port: 5000 }, &pki, &accepted);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn error_statuses_come_back_as_responses_with_their_bodies() {
    let pki = Pki::new();
    let (addr, listener) = listen("tcp://127.0.0.1:0");
    serve(listener, pki.server_config(), Mode::Normal);
    let resp = agent(addr, &pki, TIMEOUT)
        .get(url("/forbidden"))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(text(resp), r#"{"errors":["permission denied"]}"#);
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let other = Pki::new();
    let (addr, listener) = listen("tcp://127.0.0.1:0");
    serve(listener, other.server_config(), Mode::Normal);
    let err = agent(addr, &pki, TIMEOUT)
        .get(url("/v1/hello"))
        .call()
        .unwrap_err();
    assert_eq!(classify(&err), Failure::Tls, "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let pki = Pki::new();
    let (addr, listener) = listen("tcp://127.0.0.1:0");
    serve(listener, pki.server_config(), Mode::Normal);
    // The URL says vault.enclave.local, but the connector's fixed name is
    // what the certificate must match.
    let agent = ureq_transport::agent(
        addr,
        ServerName::try_from("other.enclave.local")
            .unwrap()
            .to_owned(),
        pki.client_config(),
        TIMEOUT,
    );
    let err = agent.get(url("/v1/hello")).call().unwrap_err();
    assert_eq!(classify(&err), Failure::Tls, "{err}");
    assert!(err.to_string().contains("not valid for name"), "{err}");
}

#[test]
fn nothing_listening_is_a_clean_unreachable_error() {
    let pki = Pki::new();
    let dir = scratch("absent");
    let (tcp, listener) = listen("tcp://127.0.0.1:0");
    drop(listener);
    for addr in [transport::Addr::Unix(dir.join("absent.sock")), tcp] {
        let err = agent(addr.clone(), &pki, TIMEOUT)
            .get(url("/v1/hello"))
            .call()
            .unwrap_err();
        assert_eq!(classify(&err), Failure::Unreachable, "{addr}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("cannot connect to {addr}")),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_silent_server_times_out_within_the_read_timeout() {
    let pki = Pki::new();
    let (addr, listener) = listen("tcp://127.0.0.1:0");
    serve(listener, pki.server_config(), Mode::Silent);
    let started = Instant::now();
    let err = agent(addr, &pki, Duration::from_millis(300))
        .get(url("/v1/hello"))
        .call()
        .unwrap_err();
    assert_eq!(classify(&err), Failure::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_connection_the_server_closed_is_not_reused() {
    let pki = Pki::new();
    let (addr, listener) = listen("tcp://127.0.0.1:0");
    let accepted = serve(listener, pki.server_config(), Mode::CloseAfterEach);
    let agent = agent(addr, &pki, TIMEOUT);
    for i in 1..=3 {
        let resp = agent.get(url("/v1/hello")).call().unwrap();
        assert_eq!(text(resp), format!("GET /v1/hello host={NAME}"));
        assert_eq!(accepted.load(Ordering::SeqCst), i);
        // Let the server's close arrive before the pool is asked again.
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn plain_http_urls_are_refused() {
    let pki = Pki::new();
    let (addr, listener) = listen("tcp://127.0.0.1:0");
    let accepted = serve(listener, pki.server_config(), Mode::Normal);
    let err = agent(addr, &pki, TIMEOUT)
        .get(format!("http://{NAME}/v1/hello"))
        .call()
        .unwrap_err();
    assert!(matches!(err, ureq::Error::RequireHttpsOnly(_)), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[test]
fn the_pool_is_shared_across_threads() {
    let pki = Pki::new();
    let (addr, listener) = listen("tcp://127.0.0.1:0");
    let accepted = serve(listener, pki.server_config(), Mode::Normal);
    let agent = agent(addr, &pki, TIMEOUT);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let agent = agent.clone();
            s.spawn(move || {
                for _ in 0..5 {
                    let resp = agent.post(url("/echo")).send(&b"ping"[..]).unwrap();
                    assert_eq!(text(resp), "ping");
                }
            });
        }
    });
    let n = accepted.load(Ordering::SeqCst);
    assert!((1..=20).contains(&n), "{n}");
    // Sequential requests after that reuse the idle connection.
    for _ in 0..3 {
        assert_eq!(
            text(agent.get(url("/v1/x")).call().unwrap()),
            format!("GET /v1/x host={NAME}")
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), n);
}

fn exporter_agent(addr: transport::Addr, pki: &Pki) -> (ureq::Agent, ureq_transport::ExporterSlot) {
    let spec = ureq_transport::ExporterSpec {
        label: LABEL,
        len: 32,
    };
    let name = ServerName::try_from(NAME).unwrap().to_owned();
    ureq_transport::agent_with_exporter(
        ureq_transport::config(TIMEOUT).build(),
        addr,
        name,
        pki.client_config(),
        spec,
    )
}

#[test]
fn the_recorded_exporter_is_the_servers_for_the_connection_that_carried_the_requests() {
    let pki = Pki::new();
    let (addr, listener) = listen("tcp://127.0.0.1:0");
    let addr_again = addr.clone();
    let accepted = serve(listener, pki.server_config(), Mode::Normal);
    let (agent, slot) = exporter_agent(addr, &pki);
    assert_eq!(slot.latest(), None, "nothing before the first connection");

    let first = text(agent.post(url("/exporter")).send(&b"{}"[..]).unwrap());
    let recorded = slot.latest().unwrap();
    assert_eq!(recorded.serial, 1);
    assert_eq!(recorded.value.len(), 32);
    assert_eq!(
        hex(&recorded.value),
        first,
        "the client's exporter is the server's for this connection"
    );

    // The next request rides the same connection: same exporter, same serial.
    let second = text(
        agent
            .post(url("/exporter"))
            .send(&b"{\"x\":1}"[..])
            .unwrap(),
    );
    assert_eq!(second, first);
    assert_eq!(slot.latest().unwrap(), recorded);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    // Another agent, another connection: another exporter.
    let (other, other_slot) = exporter_agent(addr_again, &pki);
    let third = text(other.post(url("/exporter")).send_empty().unwrap());
    assert_ne!(third, first);
    assert_eq!(hex(&other_slot.latest().unwrap().value), third);
}

#[test]
fn a_server_that_closes_after_each_response_shows_a_new_serial_and_exporter() {
    let pki = Pki::new();
    let (addr, listener) = listen("tcp://127.0.0.1:0");
    let accepted = serve(listener, pki.server_config(), Mode::CloseAfterEach);
    let (agent, slot) = exporter_agent(addr, &pki);
    let mut seen = Vec::new();
    for i in 1..=3u64 {
        let answer = text(agent.post(url("/exporter")).send_empty().unwrap());
        let recorded = slot.latest().unwrap();
        assert_eq!(recorded.serial, i, "a new connection, a new serial");
        assert_eq!(hex(&recorded.value), answer);
        assert!(
            !seen.contains(&answer),
            "each connection has its own exporter"
        );
        seen.push(answer);
        assert_eq!(accepted.load(Ordering::SeqCst), i as usize);
        // Let the server's close arrive before the pool is asked again.
        std::thread::sleep(Duration::from_millis(100));
    }
}
