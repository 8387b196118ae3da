//! `[transcription]`: the OpenAI-compatible transcription upstream the call
//! service sends audio to.

use std::time::Duration;

use transport::Addr;

use super::fields::{Field, Fields, Kind};
use super::values::{optional_addr, pinned_ca, server_name, vault_path};
use super::ConfigError;

pub(super) const FIELDS: &[Field] = &[
    ("transcription.addr", Kind::Str, Some("")),
    (
        "transcription.server_name",
        Kind::Str,
        Some("transcribe.enclave.local"),
    ),
    ("transcription.ca", Kind::Str, Some("")),
    ("transcription.base_path", Kind::Str, Some("/v1")),
    ("transcription.model", Kind::Str, Some("whisper-1")),
    (
        "transcription.secret",
        Kind::Str,
        Some("transcription/api-key"),
    ),
    ("transcription.timeout_ms", Kind::Int, Some("60000")),
];

/// The OpenAI-compatible transcription upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionConfig {
    /// Where the proxy's egress to it listens.
    pub addr: Option<Addr>,
    /// The name its certificate carries (also the `Host` header).
    pub server_name: String,
    /// The one CA trusted for it (PEM).
    pub ca_pem: String,
    /// The API's base path (`/v1`): requests go to `<base>/audio/transcriptions`.
    pub base_path: String,
    /// The model named in each request.
    pub model: String,
    /// The secret holding its API key.
    pub secret: String,
    /// Bound on connecting and on each read and write.
    pub timeout: Duration,
}

/// Part of the call service's configuration ([`super::ServiceConfig`]
/// holds it); whether the service needs it is decided there.
pub(super) fn parse(fields: &Fields) -> Result<TranscriptionConfig, ConfigError> {
    let addr = optional_addr(fields, "transcription.addr")?;
    Ok(TranscriptionConfig {
        server_name: server_name(fields, "transcription.server_name")?,
        ca_pem: pinned_ca(fields, "transcription.ca", addr.is_some())?,
        addr,
        base_path: fields.parsed("transcription.base_path", |s| {
            if s.starts_with('/')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                Ok(s.to_owned())
            } else {
                Err(format!("{s:?} is not an absolute URL path"))
            }
        })?,
        model: fields.parsed("transcription.model", |s| {
            if !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_graphic()) {
                Ok(s.to_owned())
            } else {
                Err(format!("{s:?} is not a model name"))
            }
        })?,
        secret: fields.parsed("transcription.secret", vault_path)?,
        timeout: fields.millis("transcription.timeout_ms", 1..=600_000)?,
    })
}
