//! Attacks on the login to OpenBao: what the host can copy is a bearer
//! token in JWT mode, and worthless in certificate mode (proof of
//! possession of the attested key).

use std::io::BufReader;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use enclave_tests::process::boot;
use enclave_tests::TempDir;

use crate::rig::{self, Options, Rig};
use crate::Verdict;

/// The `[vault]` lines of certificate mode.
const CERT_MODE: &str = "auth = \"cert\"\nauth_path = \"enclave-cert\"\n";

/// The host takes what it can see: a verifier token for the guest's very
/// measurement and a client certificate for a key it does not hold (the
/// certificate is public; in process mode the host makes both with the
/// simulated PSP it runs, then forgets the key, as it never has the
/// enclave's). It tries OpenBao's cert mount with the token, and with the
/// certificate signed by a key of its own. Held: both refused (the second
/// in the TLS handshake), and a guest in certificate mode is provisioned.
/// The figure also shows the same token accepted at the JWT mount: that is
/// what JWT mode's bearer token allows, and what certificate mode removes.
pub fn steal_token() -> Verdict {
    use rig::host_client as hc;
    let rig = Rig::new(Options {
        token_ttl_secs: 30,
        ..Options::default()
    });

    // The guest, in certificate mode, through the host's relays.
    let gdir = TempDir::new("hguest");
    let config = rig.plain_config(&gdir, CERT_MODE);
    let (guest, report) = boot(gdir, &config).ready();
    let provisioned = report["secrets_provisioned"].as_u64().unwrap_or(0);
    let cert_login_logged = guest.logs().contains("auth=cert");

    // What the host holds: a token and a certificate for the measurement.
    let mut tls = hc::connect(&rig.pki.ca_pem(), rig.verifier.port);
    let request = hc::attest_request_asking(&mut tls, &rig.psp.socket, &hc::spki(), true);
    let answer = hc::post(&mut tls, "/v1/attest", &request);
    if answer.status != 200 {
        return Verdict::broken(format!(
            "the host's own attestation failed ({}): the test would be vacuous",
            answer.status
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    let jwt = v["token"].as_str().unwrap_or_default().to_owned();
    let Some(cert) = v["client_certificate"].as_str().map(str::to_owned) else {
        return Verdict::broken(
            "the verifier issued no client certificate: the test would be vacuous",
        );
    };

    let ca = rig.bao.ca_pem();
    let login = "/v1/auth/enclave-cert/login";
    // 1. The token at the cert mount, in each shape it could be handed over.
    let token_tries: Vec<Result<u16, String>> = [
        serde_json::json!({"name": "enclave-agent", "jwt": jwt}),
        serde_json::json!({"role": "enclave-agent", "jwt": jwt}),
    ]
    .iter()
    .map(|b| bao_post(&ca, rig.bao.port, None, login, &b.to_string()))
    .collect();
    // 2. The certificate, with a key of the host's (not the one certified).
    let stolen = bao_post(
        &ca,
        rig.bao.port,
        Some((&cert, host_key())),
        login,
        r#"{"name":"enclave-agent"}"#,
    );
    // The same token at the JWT mount: a bearer token there.
    let at_jwt_mount = bao_post(
        &ca,
        rig.bao.port,
        None,
        "/v1/auth/enclave-attest/login",
        &serde_json::json!({"role": "enclave-agent", "jwt": jwt}).to_string(),
    );
    drop(guest);

    let refused = |r: &Result<u16, String>| !matches!(r, Ok(200));
    let show = |r: &Result<u16, String>| match r {
        Ok(s) => format!("HTTP {s}"),
        Err(e) => format!("no answer ({})", e.chars().take(60).collect::<String>()),
    };
    let figure = format!(
        "token at the cert mount: {}; certificate without its key: {}; same token at the JWT mount: {} (bearer); cert-mode guest provisioned {provisioned} secrets",
        token_tries.iter().map(show).collect::<Vec<_>>().join(", "),
        show(&stolen),
        show(&at_jwt_mount),
    );
    Verdict::judge(
        token_tries.iter().all(refused) && stolen.is_err() && provisioned == 5 && cert_login_logged,
        figure,
    )
}

/// A P-256 key of the host's own.
fn host_key() -> Arc<dyn rustls::sign::SigningKey> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    )
    .unwrap();
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(pkcs8.as_ref().to_vec().into());
    rustls::crypto::ring::sign::any_ecdsa_type(&der).unwrap()
}

/// POSTs `body` to OpenBao at `path`, presenting `client` if given (the
/// certificate with whatever key: rustls does not check that they match,
/// OpenBao's TLS must). The status, or why there was none.
fn bao_post(
    ca_pem: &str,
    port: u16,
    client: Option<(&str, Arc<dyn rustls::sign::SigningKey>)>,
    path: &str,
    body: &str,
) -> Result<u16, String> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots);
    let config = match client {
        Some((pem, key)) => {
            let chain = rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
                rustls::sign::CertifiedKey::new(chain, key),
            )))
        }
        None => builder.with_no_client_auth(),
    };
    let name = rustls::pki_types::ServerName::try_from("vault.enclave.local")
        .map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    bounded_http::write_request(
        tls.get_mut(),
        "POST",
        "vault.enclave.local",
        path,
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    bounded_http::read_response(&mut tls, bounded_http::Limits::default())
        .map(|r| r.status)
        .map_err(|e| e.to_string())
}
