//! The transcription upstream: an OpenAI-compatible
//! `POST {base}/audio/transcriptions` (multipart `file`, `model`,
//! `language`, `response_format=json` → `{"text": …}`), reached through the
//! host proxy's egress over TLS pinned to the configured CA, authenticated
//! with the API key from the secret store. Each worker keeps one
//! keep-alive connection, so a call costs no handshake.

use std::io::BufReader;
use std::sync::Arc;

use callproc::multipart::Part;
use rustls::pki_types::ServerName;
use zeroize::Zeroizing;

use super::routes::ApiError;
use super::Service;

type Tls = BufReader<rustls::StreamOwned<rustls::ClientConnection, transport::Stream>>;

/// A worker's connection to the upstream, if open.
#[derive(Default)]
pub struct Upstream {
    conn: Option<Tls>,
}

/// A transcription.
pub struct Transcript {
    /// The text.
    pub text: Zeroizing<String>,
    /// The model named in the request.
    pub model: String,
}

impl Upstream {
    /// Transcribes `wav` (a validated WAV file) in `language`.
    pub fn transcribe(&mut self, svc: &Service, wav: &[u8], language: &str) -> Result<Transcript, ApiError> {
        let t = &svc.cfg.transcription;
        let Some(addr) = &t.addr else {
            return Err(ApiError::new(503, "upstream.not_configured", "no transcription service is configured"));
        };
        let key = svc.shared.secret(&t.secret).ok_or_else(|| {
            ApiError::new(503, "upstream.no_key", "the transcription API key is not provisioned").retry_after(svc.cfg.retry_after_secs)
        })?;
        let auth = Zeroizing::new(format!("Bearer {}", String::from_utf8_lossy(&key)));
        let mut random = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
            .map_err(|_| ApiError::new(500, "internal.random", "no randomness for the request boundary"))?;
        let boundary = callproc::multipart::random_boundary(&random);
        let field = |name: &str, body| Part { name: name.into(), filename: None, content_type: None, body };
        let body = Zeroizing::new(callproc::multipart::encode(
            &boundary,
            &[
                field("model", t.model.as_bytes()),
                field("language", language.as_bytes()),
                field("response_format", b"json"),
                Part { name: "file".into(), filename: Some("call.wav".into()), content_type: Some("audio/wav".into()), body: wav },
            ],
        ));
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let path = format!("{}/audio/transcriptions", t.base_path.trim_end_matches('/'));
        let headers = [("authorization", auth.as_str()), ("content-type", content_type.as_str()), ("accept", "application/json")];

        // A kept-alive connection may have been closed by the peer since;
        // one retry on a fresh connection covers that.
        let reused = self.conn.is_some();
        let resp = match self.exchange(svc, addr, &path, &headers, &body) {
            Err(_) if reused => {
                self.conn = None;
                self.exchange(svc, addr, &path, &headers, &body)
            }
            other => other,
        };
        let resp = resp.inspect_err(|_| self.conn = None)?;
        if resp.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            self.conn = None;
        }
        match resp.status {
            200 => {}
            401 | 403 => return Err(ApiError::new(502, "upstream.unauthorized", "the transcription service refused the API key")),
            429 => return Err(ApiError::new(503, "upstream.rate_limited", "the transcription service is rate limiting").retry_after(svc.cfg.retry_after_secs.max(5))),
            s => return Err(ApiError::new(502, "upstream.error", format!("the transcription service answered HTTP {s}"))),
        }
        let body = Zeroizing::new(resp.body);
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| ApiError::new(502, "upstream.bad_response", "the transcription service's answer is not JSON"))?;
        let text = v.get("text").and_then(|t| t.as_str()).ok_or_else(|| {
            ApiError::new(502, "upstream.bad_response", "the transcription service's answer has no `text`")
        })?;
        Ok(Transcript { text: Zeroizing::new(text.to_owned()), model: t.model.clone() })
    }

    fn exchange(
        &mut self,
        svc: &Service,
        addr: &transport::Addr,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<http::Response, ApiError> {
        let t = &svc.cfg.transcription;
        if self.conn.is_none() {
            let name = ServerName::try_from(t.server_name.clone())
                .map_err(|_| ApiError::new(500, "upstream.config", "transcription.server_name is not a DNS name"))?;
            let stream = transport::connect(addr).map_err(|e| {
                log::warn!(error = e.to_string().as_str(); "transcription service unreachable");
                ApiError::new(503, "upstream.unreachable", "the transcription service is unreachable").retry_after(svc.cfg.retry_after_secs)
            })?;
            stream
                .set_timeouts(t.timeout)
                .map_err(|_| ApiError::new(503, "upstream.unreachable", "the transcription service is unreachable"))?;
            let conn = rustls::ClientConnection::new(Arc::clone(&svc.upstream_tls), name)
                .map_err(|_| ApiError::new(500, "upstream.config", "TLS client set-up failed"))?;
            self.conn = Some(BufReader::with_capacity(16 * 1024, rustls::StreamOwned::new(conn, stream)));
        }
        let Some(tls) = self.conn.as_mut() else {
            return Err(ApiError::new(500, "internal.state", "no upstream connection"));
        };
        let fail = |e: String| {
            log::warn!(error = e.as_str(); "transcription request failed");
            let timed_out = e.contains("timed out") || e.contains("Resource temporarily unavailable");
            if timed_out {
                ApiError::new(504, "upstream.timeout", "the transcription service did not answer in time")
            } else {
                ApiError::new(502, "upstream.failed", "the transcription request failed (connection or TLS)")
            }
        };
        http::write_request(tls.get_mut(), "POST", &t.server_name, path, headers, body).map_err(|e| fail(e.to_string()))?;
        http::read_response(tls, http::Limits { head_bytes: 16 * 1024, body_bytes: 4 * 1024 * 1024 }).map_err(|e| fail(e.to_string()))
    }
}
