//! The transcription upstream: an OpenAI-compatible
//! `POST {base}/audio/transcriptions` (multipart `file`, `model`,
//! `language`, `response_format=json` → `{"text": …}`), reached through the
//! host proxy's egress over TLS pinned to the configured CA, authenticated
//! with the API key from the secret store. HTTPS is ureq over our transport
//! (`ureq-transport`): one [`Upstream`] per service, shared by the workers,
//! whose pool keeps a connection alive per worker, so a call costs no
//! handshake.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use callproc::multipart::Part;
use rustls::pki_types::ServerName;
use ureq_transport::{ureq, Failure};
use zeroize::Zeroizing;

use super::routes::ApiError;
use super::Service;
use crate::config::ServiceConfig;

/// The largest answer read from the upstream.
const BODY_LIMIT: u64 = 4 * 1024 * 1024;
/// How long an idle kept-alive connection stays in the pool.
const IDLE: Duration = Duration::from_secs(60);

/// The upstream as the service holds it: one agent shared by the workers
/// (`transcription.timeout` for a whole call: connect, TLS, sending the
/// audio and reading the answer together; up to one idle connection per
/// worker) and the request URL. The agent belongs to a withdrawal epoch:
/// once the lifecycle withdraws the secrets, the pool (connections that
/// carried the API key and call audio) is dropped, never reused.
pub struct Upstream {
    agent: std::sync::Mutex<(u64, ureq::Agent)>,
    make: Box<dyn Fn() -> ureq::Agent + Send + Sync>,
    /// `https://<server_name><base_path>/audio/transcriptions`.
    url: String,
    /// The whole call's deadline.
    timeout: Duration,
}

/// A transcription.
pub struct Transcript {
    /// The text.
    pub text: Zeroizing<String>,
    /// The model named in the request.
    pub model: String,
}

impl Upstream {
    /// The upstream of `cfg.transcription` (`None` when none is configured),
    /// trusting what `tls` trusts.
    pub fn new(
        cfg: &ServiceConfig,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Option<Upstream>, String> {
        let t = &cfg.transcription;
        let Some(addr) = &t.addr else { return Ok(None) };
        let name = ServerName::try_from(t.server_name.clone())
            .map_err(|_| "transcription.server_name is not a DNS name".to_owned())?;
        let workers = cfg.workers.max(1);
        let (timeout, addr) = (t.timeout, addr.clone());
        let make = move || {
            let config = ureq_transport::config(timeout)
                .max_idle_connections(workers)
                .max_idle_connections_per_host(workers)
                .max_idle_age(IDLE)
                .build();
            ureq_transport::agent_with(config, addr.clone(), name.clone(), Arc::clone(&tls))
        };
        let url = format!(
            "{}{}/audio/transcriptions",
            ureq_transport::https_base(&t.server_name),
            t.base_path.trim_end_matches('/')
        );
        Ok(Some(Upstream {
            agent: std::sync::Mutex::new((0, make())),
            make: Box::new(make),
            url,
            timeout: t.timeout,
        }))
    }

    /// The agent of the current withdrawal epoch (a new one, with an empty
    /// pool, after a withdrawal).
    fn agent(&self, epoch: u64) -> ureq::Agent {
        let mut a = self.agent.lock().unwrap_or_else(|e| e.into_inner());
        if a.0 != epoch {
            *a = (epoch, (self.make)());
        }
        a.1.clone()
    }

    /// Transcribes `wav` (a validated WAV file) in `language`.
    pub fn transcribe(
        &self,
        svc: &Service,
        wav: &[u8],
        language: &str,
    ) -> Result<Transcript, ApiError> {
        let t = &svc.cfg.transcription;
        let key = svc.shared.secret(&t.secret).ok_or_else(|| {
            ApiError::new(
                503,
                "upstream.no_key",
                "the transcription API key is not provisioned",
            )
            .retry_after(svc.cfg.retry_after_secs)
        })?;
        let auth = Zeroizing::new(format!("Bearer {}", String::from_utf8_lossy(&key)));
        let mut random = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).map_err(
            |_| {
                ApiError::new(
                    500,
                    "internal.random",
                    "no randomness for the request boundary",
                )
            },
        )?;
        let boundary = callproc::multipart::random_boundary(&random);
        let field = |name: &str, body| Part {
            name: name.into(),
            filename: None,
            content_type: None,
            body,
        };
        // The audio is sent between the encoded head and tail, never copied
        // into one body buffer (a minute of μ-law is 480 kB per call).
        let (head, tail) = callproc::multipart::encode_around_last(
            &boundary,
            &[
                field("model", t.model.as_bytes()),
                field("language", language.as_bytes()),
                field("response_format", b"json"),
                Part {
                    name: "file".into(),
                    filename: Some("call.wav".into()),
                    content_type: Some("audio/wav".into()),
                    body: wav,
                },
            ],
        );
        let length = (head.len() + wav.len() + tail.len()).to_string();
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let agent = self.agent(svc.shared.epoch());
        let deadline = std::time::Instant::now() + self.timeout;
        let send = || {
            agent
                .post(&self.url)
                .config()
                .timeout_global(Some(
                    deadline
                        .saturating_duration_since(std::time::Instant::now())
                        .max(Duration::from_millis(1)),
                ))
                .build()
                .header("authorization", auth.as_str())
                .header("content-type", content_type.as_str())
                .header("accept", "application/json")
                // A set Content-Length frames a reader's body (no chunking).
                .header("content-length", length.as_str())
                .send(ureq::SendBody::from_reader(
                    &mut head[..].chain(wav).chain(&tail[..]),
                ))
        };

        // A kept-alive connection may have been closed by the peer just as
        // it was taken from the pool; one retry on a fresh connection
        // covers that.
        let resp = match send() {
            Err(e) if closed_early(&e) => send(),
            other => other,
        }
        .map_err(|e| failed(svc, &e))?;
        // The upstream's Date is authenticated (pinned TLS): a witness of
        // real time. If it is ahead of ours, the host stopped our clock;
        // trust ends and this call's result is not sent.
        if let Some(date) = resp
            .headers()
            .get("date")
            .and_then(|d| d.to_str().ok())
            .and_then(crate::retry::parse_http_date)
        {
            if svc.shared.witness(date, "the transcription service") {
                return Err(ApiError::new(503, "enclave.secrets_withdrawn", "the enclave's clock was found behind an authenticated peer's; its secrets are withdrawn until it re-attests").retry_after(svc.cfg.retry_after_secs));
            }
        }
        match resp.status().as_u16() {
            200 => {}
            401 | 403 => {
                return Err(ApiError::new(
                    502,
                    "upstream.unauthorized",
                    "the transcription service refused the API key",
                ))
            }
            429 => {
                return Err(ApiError::new(
                    503,
                    "upstream.rate_limited",
                    "the transcription service is rate limiting",
                )
                .retry_after(svc.cfg.retry_after_secs.max(5)))
            }
            s => {
                return Err(ApiError::new(
                    502,
                    "upstream.error",
                    format!("the transcription service answered HTTP {s}"),
                ))
            }
        }
        let body = Zeroizing::new(
            ureq_transport::read_limited(resp, BODY_LIMIT)
                .map_err(|e| failed(svc, &e))?
                .1,
        );
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            ApiError::new(
                502,
                "upstream.bad_response",
                "the transcription service's answer is not JSON",
            )
        })?;
        let text = v.get("text").and_then(|t| t.as_str()).ok_or_else(|| {
            ApiError::new(
                502,
                "upstream.bad_response",
                "the transcription service's answer has no `text`",
            )
        })?;
        Ok(Transcript {
            text: Zeroizing::new(text.to_owned()),
            model: t.model.clone(),
        })
    }
}

/// Whether a request failed because the connection was gone before an
/// answer (the peer closed a kept-alive connection).
fn closed_early(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Io(io) if matches!(
        io.kind(),
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::BrokenPipe
    ))
}

/// The answer for a failed exchange.
fn failed(svc: &Service, e: &ureq::Error) -> ApiError {
    let msg = ureq_transport::message(e);
    match ureq_transport::classify(e) {
        Failure::Unreachable => {
            crate::warn!(error = msg.as_str(); "transcription service unreachable");
            ApiError::new(
                503,
                "upstream.unreachable",
                "the transcription service is unreachable",
            )
            .retry_after(svc.cfg.retry_after_secs)
        }
        Failure::Timeout => {
            crate::warn!(error = msg.as_str(); "transcription request failed");
            ApiError::new(
                504,
                "upstream.timeout",
                "the transcription service did not answer in time",
            )
        }
        Failure::Tls | Failure::Broken | Failure::Other => {
            crate::warn!(error = msg.as_str(); "transcription request failed");
            ApiError::new(
                502,
                "upstream.failed",
                "the transcription request failed (connection or TLS)",
            )
        }
    }
}
