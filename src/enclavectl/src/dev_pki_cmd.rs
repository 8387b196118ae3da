//! `enclavectl dev-pki`: a throw-away PKI for development and tests: one CA,
//! TLS certificates for the verifier, Vault and the transcription API's
//! stand-in, the verifier's token key, nonce key and client CA
//! (`client-ca.pem`, `client-ca-key.pem`), and the platform's client CA with
//! one API-gateway certificate (`platform-ca.pem`, `platform-ca-key.pem`, `platform-client.pem`,
//! `platform-client-key.pem`) for the call service's mutual TLS. Production
//! keys come from the operator's own PKI.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::CmdResult;

/// Arguments of `enclavectl dev-pki`.
#[derive(clap::Args)]
pub struct Args {
    /// Output directory (created).
    #[arg(long)]
    out: PathBuf,
}

fn write(dir: &Path, name: &str, bytes: &[u8], secret: bool) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn leaf(names: &[&str], issuer: &Issuer<'_, KeyPair>) -> Result<(String, String), rcgen::Error> {
    let mut params =
        CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
    params
        .distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A self-signed CA named `name`: its certificate and key (PEM) and its
/// issuer.
fn ca(name: &str) -> Result<(String, String, Issuer<'static, KeyPair>), rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key_pem = key.serialize_pem();
    Ok((cert.pem(), key_pem, Issuer::new(params, key)))
}

/// A TLS client certificate for `name` (extended key usage clientAuth).
fn client_leaf(name: &str, issuer: &Issuer<'_, KeyPair>) -> Result<(String, String), rcgen::Error> {
    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

pub fn run(args: Args) -> CmdResult {
    std::fs::create_dir_all(&args.out)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "enclave-init development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    write(&args.out, "ca.pem", ca_cert.pem().as_bytes(), false)?;
    write(
        &args.out,
        "ca-key.pem",
        ca_key.serialize_pem().as_bytes(),
        true,
    )?;
    let issuer = Issuer::new(ca_params, ca_key);
    for (name, sans) in [
        (
            "verifier",
            ["verifier.enclave.local", "localhost", "127.0.0.1"],
        ),
        ("vault", ["vault.enclave.local", "localhost", "127.0.0.1"]),
        // The transcription API's local stand-in (tests, demo).
        (
            "transcribe",
            ["transcribe.enclave.local", "localhost", "127.0.0.1"],
        ),
    ] {
        let (cert, key) = leaf(&sans, &issuer)?;
        write(&args.out, &format!("{name}.pem"), cert.as_bytes(), false)?;
        write(&args.out, &format!("{name}-key.pem"), key.as_bytes(), true)?;
    }
    // The platform's client CA: the API gateway's certificates, the only
    // clients the guest's call service answers on /v1/calls and /metrics
    // (mutual TLS; the guest pins this CA as `service.client_ca`). A CA of
    // its own, so that no server certificate the TLS CA signs can call.
    let (platform_ca, platform_ca_key, platform_issuer) =
        ca("enclave-init development platform client CA")?;
    write(&args.out, "platform-ca.pem", platform_ca.as_bytes(), false)?;
    write(
        &args.out,
        "platform-ca-key.pem",
        platform_ca_key.as_bytes(),
        true,
    )?;
    let (cert, key) = client_leaf("api-gateway.enclave.local", &platform_issuer)?;
    write(&args.out, "platform-client.pem", cert.as_bytes(), false)?;
    write(&args.out, "platform-client-key.pem", key.as_bytes(), true)?;
    // The verifier's client CA (proof-of-possession mode): a CA of its own,
    // so that OpenBao's cert role trusts exactly the certificates the
    // verifier issues, nothing the TLS CA signs.
    let (client_ca, client_ca_key) =
        verifier::client_cert::generate_ca("enclave-init development verifier client CA")?;
    write(&args.out, "client-ca.pem", client_ca.as_bytes(), false)?;
    write(
        &args.out,
        "client-ca-key.pem",
        client_ca_key.as_bytes(),
        true,
    )?;
    write(
        &args.out,
        "token-key.pk8",
        &verifier::token::Signer::generate_pkcs8()?,
        true,
    )?;
    let mut nonce_key = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce_key)
        .map_err(|_| "random generator failed")?;
    write(&args.out, "nonce.key", &nonce_key, true)?;
    println!("development PKI written to {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
