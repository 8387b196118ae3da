//! `POST /v1/retell/events`: Retell webhooks, signed by Retell with the
//! account's API key (`X-Retell-Signature: v=<unix ms>,d=<hex HMAC-SHA256
//! over body ‖ ms>`). Verified in constant time against the key in the
//! secret store, within a replay window (and each delivery accepted once),
//! then reduced to a sanitized record: the transcript and phone numbers
//! stay inside.

use bounded_http::Request;
use callproc::pii::PhoneHasher;
use callproc::retell::{self, RetellEvent};

use super::routes::ApiError;
use super::Service;

/// Handles one delivery.
pub fn handle(req: &Request, svc: &Service) -> Result<serde_json::Value, ApiError> {
    let result = process(req, svc);
    match &result {
        Ok((event, _)) => svc.shared.metrics.retell_event(event),
        Err(e) => {
            svc.shared.metrics.retell_refused(e.code);
            crate::info!(status = e.status, code = e.code; "Retell event refused");
        }
    }
    result.map(|(_, record)| record)
}

fn process(req: &Request, svc: &Service) -> Result<(&'static str, serde_json::Value), ApiError> {
    svc.shared.serving().map_err(|_| {
        ApiError::new(
            503,
            "enclave.secrets_withdrawn",
            "the enclave's secrets are withdrawn until it re-attests",
        )
        .retry_after(svc.cfg.retry_after_secs)
    })?;
    let key = svc.shared.secret(&svc.cfg.retell_secret).ok_or_else(|| {
        ApiError::new(
            503,
            "retell.no_key",
            "the Retell API key is not provisioned",
        )
        .retry_after(svc.cfg.retry_after_secs)
    })?;
    let now_ms = svc.shared.time.now_millis();
    let window_ms = u64::try_from(svc.cfg.retell_window.as_millis()).unwrap_or(u64::MAX);
    let verified = retell::verify(
        &key,
        &req.body,
        req.header("x-retell-signature"),
        now_ms,
        window_ms,
    )
    .map_err(|e| ApiError::new(401, e.code(), e.to_string()))?;
    drop(key);
    let event = RetellEvent::from_json(&req.body)
        .map_err(|e| ApiError::new(400, e.code(), e.to_string()))?;
    // Only a well-formed, authentic delivery is remembered.
    svc.replay
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check_and_remember(&verified, now_ms)
        .map_err(|e| ApiError::new(409, e.code(), e.to_string()))?;
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
    let record = event.record(&hasher);
    // The host reads the log: the log view, never the record (its summary
    // can name people; redaction finds numbers, not names).
    crate::info!(retell = event.log_view(&hasher).to_string().as_str(); "Retell event processed");
    Ok((
        event.event.as_str(),
        serde_json::json!({"status": "processed", "record": record}),
    ))
}
