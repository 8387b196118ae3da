//! `POST /v1/calls`: multipart `metadata` (JSON) and `audio` (WAV) in; the
//! audio validated, decoded and measured, transcribed upstream; the full
//! result back to the caller inside TLS, and only its log view (no transcript, no
//! caller hash, the call by a keyed pseudonym) logged. Each call, served or
//! refused, is an audit record: its keyed reference, timing and outcome,
//! nothing else; with `audit.required`, calls are refused while the audit
//! trail is stalled.

use std::time::Instant;

use bounded_http::Request;
use callproc::audio::{self, AudioError};
use callproc::call::{AudioSummary, CallMetadata, CallResult};
use callproc::multipart;
use callproc::pii::PhoneHasher;
use zeroize::Zeroize;

use super::routes::ApiError;
use super::Service;

/// Handles one call; counts it under its agent type.
pub fn handle(req: &Request, svc: &Service) -> Result<serde_json::Value, ApiError> {
    let started = Instant::now();
    let start_ms = svc.shared.time.now_millis();
    let mut agent = "unknown";
    let mut call_ref = None;
    let result = process(req, svc, started, &mut agent, &mut call_ref);
    match &result {
        Ok(_) => svc.shared.metrics.call_ok(agent, started.elapsed()),
        Err(e) => {
            svc.shared.metrics.call_failed(agent, e.code);
            crate::info!(agent_type = agent, status = e.status, code = e.code; "call refused");
        }
    }
    if let Some(audit) = svc.shared.audit() {
        let status = result.as_ref().map_or_else(|e| e.status, |_| 200);
        audit.emit(audit_record::Body::Call(audit_record::CallBody {
            call_ref,
            start_ms,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            outcome: audit_record::CallOutcome::of_status(status),
        }));
    }
    result
}

fn process(
    req: &Request,
    svc: &Service,
    started: Instant,
    agent: &mut &'static str,
    call_ref: &mut Option<String>,
) -> Result<serde_json::Value, ApiError> {
    svc.shared.serving().map_err(|_| {
        ApiError::new(
            503,
            "enclave.secrets_withdrawn",
            "the enclave's secrets are withdrawn until it re-attests",
        )
        .retry_after(svc.cfg.retry_after_secs)
    })?;
    // Fail closed: no call is served that the trail may not record.
    if let Some(audit) = svc.shared.audit() {
        audit.gate().map_err(|why| {
            ApiError::new(
                503,
                "enclave.audit_unavailable",
                format!("calls are refused until the audit trail is stored: {why}"),
            )
            .retry_after(svc.cfg.retry_after_secs)
        })?;
    }
    let content_type = req.header("content-type").unwrap_or("");
    let boundary = multipart::boundary(content_type).map_err(|e| {
        ApiError::new(
            415,
            "request.content_type",
            format!("expected multipart/form-data with a boundary: {e}"),
        )
    })?;
    let parts = multipart::parse(&req.body, &boundary, &multipart::Limits::default())
        .map_err(|e| ApiError::new(400, e.code(), e.to_string()))?;
    let part = |name: &str| parts.iter().find(|p| p.name == name);
    if let Some(extra) = parts
        .iter()
        .find(|p| p.name != "metadata" && p.name != "audio")
    {
        return Err(ApiError::new(
            400,
            "call.unknown_part",
            format!(
                "unexpected part `{}` (want `metadata` and `audio`)",
                safe_name(&extra.name)
            ),
        ));
    }
    let metadata = part("metadata")
        .ok_or_else(|| ApiError::new(400, "call.missing_metadata", "no `metadata` part"))?;
    let audio_part =
        part("audio").ok_or_else(|| ApiError::new(400, "call.missing_audio", "no `audio` part"))?;
    let metadata = CallMetadata::from_json(metadata.body)
        .map_err(|e| ApiError::new(422, e.code(), e.to_string()))?;
    *agent = metadata.agent_type.as_str();
    // The call's audit reference, keyed by the pepper (a Vault secret the
    // host never sees): only the controller can link it to the call id.
    if svc.shared.audit().is_some() {
        if let Some(pepper) = svc.shared.secret(&svc.cfg.pepper_secret) {
            *call_ref = Some(audit_record::CallRefKey::new(&pepper).call_ref(&metadata.call_id));
        }
    }

    let limits = audio::Limits {
        max_bytes: svc.cfg.max_body,
        max_secs: audio::Limits::DEFAULT.max_secs,
    };
    let wav = audio::parse_wav(audio_part.body, &limits).map_err(audio_error)?;
    let analysis = wav.analyze();
    let summary = AudioSummary::new(&wav, &analysis);

    let upstream = svc.upstream.as_ref().ok_or_else(|| {
        ApiError::new(
            503,
            "upstream.not_configured",
            "no transcription service is configured",
        )
    })?;
    let transcript = upstream.transcribe(svc, audio_part.body, &metadata.language)?;
    let pepper = svc.shared.secret(&svc.cfg.pepper_secret).ok_or_else(|| {
        ApiError::new(
            503,
            "enclave.no_pepper",
            "the phone-number pepper is not provisioned",
        )
        .retry_after(svc.cfg.retry_after_secs)
    })?;
    let hasher = PhoneHasher::new(&pepper);
    drop(pepper);
    let mut result = CallResult {
        metadata,
        audio: summary,
        transcript: transcript.text.to_string(),
        transcript_model: transcript.model,
        processing_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    // Trust may have ended while the call was processed (the upstream is
    // the host's to stall): no result leaves after the deadline.
    if svc.shared.serving().is_err() {
        result.transcript.zeroize();
        return Err(ApiError::new(
            503,
            "enclave.secrets_withdrawn",
            "the enclave's secrets were withdrawn while the call was processed",
        )
        .retry_after(svc.cfg.retry_after_secs));
    }
    // The log view is the only form of a call that is ever logged: the
    // console is the host's (no transcript, no caller hash, no raw ids).
    crate::info!(call = result.log_view(&hasher).to_string().as_str(); "call processed");
    let full = result.full_json(&hasher);
    result.transcript.zeroize();
    Ok(full)
}

/// A part name for an error message: short and plain, or nothing.
fn safe_name(name: &str) -> String {
    if name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_owned()
    } else {
        "(unprintable)".to_owned()
    }
}

fn audio_error(e: AudioError) -> ApiError {
    let (status, code) = match e {
        AudioError::TooLarge { .. } => (413, "audio.too_large"),
        AudioError::TooLong { .. } => (413, "audio.too_long"),
        AudioError::NotRiff | AudioError::NotWave => (415, "audio.not_wav"),
        AudioError::TruncatedHeader { .. }
        | AudioError::Truncated { .. }
        | AudioError::RiffSizeTooSmall { .. }
        | AudioError::PartialFrame { .. } => (400, "audio.truncated"),
        AudioError::UnsupportedFormat { .. }
        | AudioError::UnsupportedSubformat { .. }
        | AudioError::UnsupportedBits { .. }
        | AudioError::UnsupportedRate { .. }
        | AudioError::UnsupportedChannels { .. } => (415, "audio.unsupported"),
        AudioError::Empty => (400, "audio.empty"),
        _ => (400, "audio.malformed"),
    };
    ApiError::new(status, code, e.to_string())
}
