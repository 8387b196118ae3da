//! Routing and the error shape shared by every route.

use std::borrow::Cow;

use bounded_http::Request;

use super::tls::Peer;
use super::{calls, health, retell, Service};

/// A route's failure: status, stable code, clear message. The message never
/// carries request data (phone numbers, transcripts, keys).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code, e.g. `metadata.agent_type`.
    pub code: &'static str,
    /// For people.
    pub message: Cow<'static, str>,
    /// Seconds for `Retry-After` (503 only).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error.
    pub fn new(status: u16, code: &'static str, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// With `Retry-After`.
    pub fn retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs);
        self
    }
}

/// What a route answers.
pub enum Reply {
    /// A JSON document, 200.
    Json(serde_json::Value),
    /// JSON with another status (e.g. a degraded health document).
    JsonStatus(u16, serde_json::Value),
    /// Prometheus text.
    Metrics(String),
    /// An error.
    Error(ApiError),
}

impl Reply {
    /// Status, content type, body, Retry-After.
    pub fn parts(&self) -> (u16, &'static str, Vec<u8>, Option<u64>) {
        match self {
            Reply::Json(v) => (200, "application/json", v.to_string().into_bytes(), None),
            Reply::JsonStatus(s, v) => (*s, "application/json", v.to_string().into_bytes(), None),
            Reply::Metrics(text) => (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                text.clone().into_bytes(),
                None,
            ),
            Reply::Error(e) => {
                let body = serde_json::json!({"error": {"code": e.code, "message": e.message}});
                (
                    e.status,
                    "application/json",
                    body.to_string().into_bytes(),
                    e.retry_after,
                )
            }
        }
    }
}

/// Picks the route, once the peer may reach it: `/v1/calls` and
/// `/metrics` only for the platform (mutual TLS); `/health/enclave` too
/// unless `service.health_without_client_cert`; Retell's webhooks prove
/// themselves by their signature (`retell.rs`).
pub fn dispatch(req: &Request, svc: &Service, peer: Peer) -> Reply {
    let path = req.path.split('?').next().unwrap_or("");
    let needs_client_cert = match path {
        "/v1/calls" | "/metrics" => true,
        "/health/enclave" => !svc.cfg.health_without_client_cert,
        _ => false,
    };
    if needs_client_cert && peer != Peer::Platform {
        svc.shared.metrics.unauthenticated();
        return Reply::Error(ApiError::new(
            401,
            "auth.client_certificate",
            "this route answers only a client certificate issued by the platform CA (service.client_ca)",
        ));
    }
    let reply = match (req.method.as_str(), path) {
        ("POST", "/v1/calls") => calls::handle(req, svc).map(Reply::Json),
        ("POST", "/v1/retell/events") => retell::handle(req, svc).map(Reply::Json),
        ("GET", "/health/enclave") => Ok(health::health(svc)),
        ("GET", "/metrics") => Ok(Reply::Metrics(health::metrics(svc))),
        (_, "/v1/calls" | "/v1/retell/events") => Err(ApiError::new(405, "route.method_not_allowed", "use POST")),
        (_, "/health/enclave" | "/metrics") => Err(ApiError::new(405, "route.method_not_allowed", "use GET")),
        _ => Err(ApiError::new(404, "route.not_found", "no such route (POST /v1/calls, POST /v1/retell/events, GET /health/enclave, GET /metrics)")),
    };
    reply.unwrap_or_else(Reply::Error)
}
