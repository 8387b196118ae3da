//! `[service]`: the call service: where it listens, its TLS identity, its
//! bounds, the secrets it uses; and the rules tying it to Vault.

use std::time::Duration;

use transport::Addr;

use super::fields::{Field, Fields, Kind};
use super::transcription::{self, TranscriptionConfig};
use super::values::{on_off, pinned_ca, server_name, vault_path};
use super::{Config, ConfigError, Origin};

pub(super) const FIELDS: &[Field] = &[
    ("service.listen", Kind::Str, Some("")),
    ("service.server_name", Kind::Str, Some("call.enclave.local")),
    (
        "service.pki_sign_path",
        Kind::Str,
        Some("enclave-pki/sign/enclave-serving"),
    ),
    ("service.cert_ttl_ms", Kind::Int, Some("86400000")),
    ("service.workers", Kind::Int, Some("4")),
    ("service.queue", Kind::Int, Some("8")),
    ("service.max_body_bytes", Kind::Int, Some("16777216")),
    ("service.io_timeout_ms", Kind::Int, Some("10000")),
    ("service.request_timeout_ms", Kind::Int, Some("30000")),
    ("service.idle_timeout_ms", Kind::Int, Some("15000")),
    ("service.retry_after_s", Kind::Int, Some("1")),
    ("service.pepper_secret", Kind::Str, Some("pii/pepper")),
    ("service.retell_secret", Kind::Str, Some("retell/api-key")),
    ("service.retell_window_ms", Kind::Int, Some("300000")),
    ("service.client_ca", Kind::Str, Some("")),
    ("service.health_without_client_cert", Kind::Str, Some("off")),
];

/// The call service: where it listens, its TLS identity, its bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// The call port; `None`: no call service (development images).
    pub listen: Option<Addr>,
    /// The name in the serving certificate (the common name of the request
    /// Vault's PKI signs; clients check it).
    pub server_name: String,
    /// Vault's PKI signing endpoint for that request.
    pub pki_sign_path: String,
    /// Requested certificate lifetime.
    pub cert_ttl: Duration,
    /// Worker threads: requests processed at once.
    pub workers: usize,
    /// Connections waiting for a worker before new ones get `503`.
    pub queue: usize,
    /// Largest request body.
    pub max_body: usize,
    /// Bound on each read and write.
    pub io_timeout: Duration,
    /// Bound on receiving a whole request once its head has begun.
    pub request_timeout: Duration,
    /// Bound on waiting for the next request on a kept-alive connection
    /// (and for the first, handshake included).
    pub idle_timeout: Duration,
    /// `Retry-After` on `503`.
    pub retry_after_secs: u64,
    /// The secret keying phone-number hashes.
    pub pepper_secret: String,
    /// The secret verifying Retell webhooks (the Retell API key).
    pub retell_secret: String,
    /// Accepted distance between a Retell signature's time and ours.
    pub retell_window: Duration,
    /// The CA (PEM) whose certificates authenticate the platform's API
    /// gateway: `/v1/calls` and `/metrics` answer only a client presenting
    /// one (mutual TLS). Required when the service listens.
    pub client_ca_pem: String,
    /// Whether `/health/enclave` answers a client without a certificate.
    pub health_without_client_cert: bool,
    /// The transcription upstream.
    pub transcription: TranscriptionConfig,
}

/// The service's own fields and its transcription upstream; a listening
/// service needs a client CA and a transcriber.
pub(super) fn parse(fields: &Fields) -> Result<ServiceConfig, ConfigError> {
    let listen = fields.parsed("service.listen", |s| {
        if s.is_empty() {
            return Ok(None);
        }
        let addr: Addr = s.parse()?;
        addr.check_listenable()?;
        Ok(Some(addr))
    })?;
    let used = listen.is_some();
    let transcription = transcription::parse(fields)?;
    if used && fields.parsed("service.client_ca", |s| Ok::<_, String>(s.is_empty()))? {
        return Err(ConfigError::Field {
            field: "service.client_ca".into(),
            origin: Origin::Default,
            reason: "the call service (service.listen) needs the CA of its clients: \
                     /v1/calls and /metrics answer only mutual TLS"
                .into(),
        });
    }
    let client_ca_pem = pinned_ca(fields, "service.client_ca", used)?;
    if used && transcription.addr.is_none() {
        return Err(ConfigError::Field {
            field: "transcription.addr".into(),
            origin: Origin::Default,
            reason: "the call service (service.listen) needs a transcription upstream".into(),
        });
    }
    Ok(ServiceConfig {
        listen,
        server_name: server_name(fields, "service.server_name")?,
        pki_sign_path: fields.parsed("service.pki_sign_path", vault_path)?,
        cert_ttl: fields.millis("service.cert_ttl_ms", 60_000..=31_536_000_000)?,
        workers: fields.count("service.workers", 1..=256)?,
        queue: fields.count("service.queue", 0..=4096)?,
        max_body: fields.count("service.max_body_bytes", 1024..=268_435_456)?,
        io_timeout: fields.millis("service.io_timeout_ms", 1..=600_000)?,
        request_timeout: fields.millis("service.request_timeout_ms", 1..=3_600_000)?,
        idle_timeout: fields.millis("service.idle_timeout_ms", 1..=3_600_000)?,
        retry_after_secs: fields.count("service.retry_after_s", 1..=3600)? as u64,
        pepper_secret: fields.parsed("service.pepper_secret", vault_path)?,
        retell_secret: fields.parsed("service.retell_secret", vault_path)?,
        retell_window: fields.millis("service.retell_window_ms", 1000..=3_600_000)?,
        client_ca_pem,
        health_without_client_cert: fields.parsed("service.health_without_client_cert", on_off)?,
        transcription,
    })
}

/// Cross-section rules: the call service needs Vault (its certificate and
/// its secrets), and every secret it names must be provisioned.
pub(super) fn check(config: &Config) -> Result<(), ConfigError> {
    if config.service.listen.is_none() {
        return Ok(());
    }
    let field = |field: &str, reason: String| ConfigError::Field {
        field: field.into(),
        origin: Origin::File,
        reason,
    };
    if config.vault.addr.is_none() {
        return Err(field(
            "service.listen",
            "the call service needs Vault (vault.addr): its certificate and keys come from there"
                .into(),
        ));
    }
    for (name, secret) in [
        ("service.pepper_secret", &config.service.pepper_secret),
        ("service.retell_secret", &config.service.retell_secret),
        ("transcription.secret", &config.service.transcription.secret),
    ] {
        if !config.vault.secrets.contains(secret) {
            return Err(field(
                name,
                format!("{secret:?} is not among vault.secrets, so it would never be provisioned"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::config::testing::{field_error, GOOD};

    #[test]
    fn the_call_service_needs_client_ca_vault_a_transcriber_and_its_secrets() {
        // Mutual TLS is not optional: no client CA, no call service.
        let (field, _, reason) = field_error(GOOD, "enclave.service.listen=vsock://any:5000");
        assert_eq!(field, "service.client_ca");
        assert!(reason.contains("mutual TLS"), "{reason}");
        let ca =
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ0zD\n-----END CERTIFICATE-----\n";
        let (field, _, reason) = field_error(
            &format!("{GOOD}\n[service]\nclient_ca = \"not PEM\"\n"),
            "enclave.service.listen=vsock://any:5000",
        );
        assert_eq!(field, "service.client_ca", "{reason}");
        let good = format!("{GOOD}\n[service]\nclient_ca = \"\"\"\n{ca}\"\"\"\n");
        let c = parse(&good, "").unwrap();
        assert!(
            !c.service.health_without_client_cert,
            "health needs the certificate by default"
        );
        let (field, _, reason) = field_error(&good, "enclave.service.listen=vsock://any:5000");
        assert_eq!(field, "transcription.addr");
        assert!(
            reason.contains("needs a transcription upstream"),
            "{reason}"
        );
        let (field, _, reason) = field_error(
            &good,
            "enclave.service.listen=vsock://any:5000 enclave.transcription.addr=vsock://2:8444",
        );
        assert_eq!(field, "transcription.ca", "{reason}");
        let with_ca = format!(
            "{good}\n[transcription]\naddr = \"vsock://2:8444\"\nca = \"\"\"\n{ca}\"\"\"\n"
        );
        // With a transcriber, the service still needs Vault for its
        // certificate and keys.
        let (field, _, reason) = field_error(&with_ca, "enclave.service.listen=vsock://any:5000");
        assert_eq!(field, "service.listen");
        assert!(reason.contains("needs Vault"), "{reason}");
        let (field, _, reason) = field_error(GOOD, "enclave.service.workers=0");
        assert_eq!(
            (field.as_str(), reason.as_str()),
            ("service.workers", "0 is out of range 1..=256")
        );
        let (field, _, reason) = field_error(GOOD, "enclave.service.listen=vsock://2:5000");
        assert_eq!(field, "service.listen", "{reason}");
    }
}
