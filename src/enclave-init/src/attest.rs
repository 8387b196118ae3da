//! Steps 4-6 of the boot: the attestation exchange with the verifier.
//!
//! HTTPS through ureq over our transport (`ureq-transport`); one kept-alive
//! TLS 1.3 connection (rustls, the verifier's CA pinned in the measured
//! configuration) carries both requests:
//! 1. `POST /v1/challenge` → a nonce bound to this connection, and the
//!    verifier's time;
//! 2. REPORT_DATA = SHA-512(tag ‖ nonce ‖ SHA-256(enclave SPKI) ‖ TLS
//!    exporter of this connection) (`tee_formats::binding`), evidence for it;
//! 3. `POST /v1/attest` → the token, or a structured denial.
//!
//! The exporter is the one the TLS connector recorded for the connection
//! that carried the challenge, taken from that connection's rustls session
//! right after its handshake. Should the verifier close the connection
//! before the attest request (which then goes out on a new one, with
//! another exporter), the exchange starts over from a fresh challenge.
//!
//! The exporter ties the evidence to this TLS session: a host relaying our
//! evidence over its own connection presents a different exporter and is
//! denied. Time: the challenge's verifier time anchors the guest's clock
//! (`lifecycle::clock`), and the drift since the last anchor is measured
//! here; certificates are checked against that clock, never the guest's
//! host-controlled one alone.
//!
//! One call of [`attest_once`] is one attempt with one deadline for all of
//! it (connect, TLS, every read and write, the evidence): each request gets
//! what is left of it as ureq's global timeout. Retrying is the caller's
//! business (`retry`): [`AttestError`] says which failures are transient.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use ureq_transport::{ureq, ExporterSlot, ExporterSpec, Failure};
use wire::verifier::{AttestRequest, AttestResponse, Challenge, Denial, EXPORTER_LABEL};
use zeroize::Zeroizing;

use evidence::EvidenceSource;

use crate::config::VerifierConfig;
use crate::keys::EnclaveKey;
use crate::lifecycle::clock::{ClockError, Mono, VerifierClock};
use crate::retry::{Class, Classify};

/// The verifier-anchored clock (the name the rest of the guest knows it by).
pub type TrustedTime = VerifierClock;

/// Why an attestation attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The verifier could not be connected to.
    #[error("cannot reach the verifier")]
    Connect(#[source] std::io::Error),
    /// TLS failed: a certificate that does not chain to the pinned CA or
    /// names another host, a bad record.
    #[error("verifier TLS: {0}")]
    Tls(String),
    /// The connection broke before a complete answer (reset, end of stream).
    #[error("the connection to the verifier broke: {0}")]
    Broken(String),
    /// The attempt's deadline passed.
    #[error("the verifier exchange did not finish within the attempt's deadline")]
    Timeout,
    /// The verifier (or a proxy in front of it) is shedding load or down
    /// for now: 429, 502, 503, 504.
    #[error("the verifier is unavailable for now (HTTP {status})")]
    Unavailable {
        /// HTTP status.
        status: u16,
        /// Its `Retry-After`, when valid.
        retry_after: Option<Duration>,
    },
    /// The verifier answered something that is not the protocol.
    #[error("verifier protocol: {0}")]
    Protocol(String),
    /// The verifier denied the evidence.
    #[error("verifier denied the evidence: check {} got {} want {} ({})", .0.check, .0.got, .0.want, .0.hint)]
    Denied(Denial),
    /// Evidence could not be obtained.
    #[error("evidence: {0}")]
    Evidence(evidence::EvidenceError),
    /// The verifier's time went backwards, or the guest's clock drifted
    /// beyond its bound since the last anchoring.
    #[error("time")]
    Clock(#[source] ClockError),
    /// The token's lifetime is refused: already expired, or beyond the cap.
    #[error("token refused: {0}")]
    Token(String),
}

impl Classify for AttestError {
    fn class(&self) -> Class {
        match self {
            AttestError::Connect(_) | AttestError::Broken(_) | AttestError::Timeout => {
                Class::TRANSIENT
            }
            AttestError::Unavailable { retry_after, .. } => Class::Transient {
                retry_after: *retry_after,
            },
            // A busy interface and a simulated PSP that is restarting are
            // passing states; anything else from the TEE is not.
            AttestError::Evidence(
                evidence::EvidenceError::Busy { .. } | evidence::EvidenceError::Sim(_),
            ) => Class::TRANSIENT,
            AttestError::Tls(_)
            | AttestError::Protocol(_)
            | AttestError::Denied(_)
            | AttestError::Evidence(_)
            | AttestError::Clock(_)
            | AttestError::Token(_) => Class::Final,
        }
    }
}

impl AttestError {
    /// A fixed label for metrics: `unreachable`, `broken`, `timeout`,
    /// `unavailable`, `tls`, `protocol`, `denied`, `evidence`, `clock` or
    /// `token`.
    pub fn label(&self) -> &'static str {
        match self {
            AttestError::Connect(_) => "unreachable",
            AttestError::Broken(_) => "broken",
            AttestError::Timeout => "timeout",
            AttestError::Unavailable { .. } => "unavailable",
            AttestError::Tls(_) => "tls",
            AttestError::Protocol(_) => "protocol",
            AttestError::Denied(_) => "denied",
            AttestError::Evidence(_) => "evidence",
            AttestError::Clock(_) => "clock",
            AttestError::Token(_) => "token",
        }
    }
}

/// A token from the verifier. The token is a bearer credential for Vault:
/// zeroized on drop, never logged.
pub struct Attestation {
    /// The audit trail's record of it: digests, claims, the verifier's
    /// decision id (nothing secret).
    pub audit: audit_record::AttestationBody,
    /// The JWT.
    pub token: Zeroizing<String>,
    /// The client certificate for the enclave key (PEM), when it was asked
    /// for (`vault.auth = "cert"`). Not secret: worthless without the key.
    pub client_certificate: Option<String>,
    /// Its expiry, verifier time (Unix seconds).
    pub expires_at: u64,
    /// The monotonic instant the token expires (under the anchor this
    /// exchange set).
    pub deadline: Mono,
    /// The TEE type the verifier saw.
    pub tee: String,
    /// The drift measured against the previous anchor (ms), if there was one.
    pub drift_ms: Option<i64>,
    /// Time spent obtaining evidence.
    pub evidence_time: Duration,
    /// Time spent on the verifier exchange (connect, TLS, challenge, attest).
    pub verifier_time: Duration,
}

impl std::fmt::Debug for Attestation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attestation")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("tee", &self.tee)
            .finish()
    }
}

/// The audit record of an accepted attestation: the digest of the
/// `/v1/attest` body as sent (the verifier's decision record has the same
/// digest), the TEE, the token's `measurement` and `tcb` claims (read from
/// the token the pinned verifier just issued over TLS), the decision id
/// (`x-request-id`; `unknown` when the verifier sent none), and the digest
/// of the enclave key's SPKI.
fn audit_body(
    attest_body: &[u8],
    tee: &str,
    token: &str,
    request_id: Option<String>,
    spki: &[u8],
) -> audit_record::AttestationBody {
    let sha = |b: &[u8]| {
        ring::digest::digest(&ring::digest::SHA256, b)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let claims = token_claims(token);
    let claim = |k: &str| claims.as_ref().and_then(|c| c.get(k));
    audit_record::AttestationBody {
        evidence_sha256: sha(attest_body),
        tee: tee.to_owned(),
        measurement: claim("measurement")
            .and_then(|m| m.as_str())
            .unwrap_or("")
            .to_owned(),
        tcb: claim("tcb").map_or_else(|| "unknown".to_owned(), tcb_text),
        decision_id: request_id.unwrap_or_else(|| "unknown".to_owned()),
        enclave_spki_sha256: sha(spki),
    }
}

/// The claims of a JWT (its payload, base64url), unverified: for the
/// record only; the token's authority is Vault's to check.
fn token_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A TCB claim as the record's text: `key=value` pairs in key order for an
/// object, nested objects as dotted keys (`committed_tcb.snp=24`), the
/// value itself otherwise; only printable ASCII without quotes or
/// backslashes (others become `?`), at most 256 characters.
fn tcb_text(v: &serde_json::Value) -> String {
    fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                // Key order by hand: a map's iteration order is serde_json's
                // choice (sorted, or insertion order when another crate in
                // the build enables `preserve_order`).
                let mut entries: Vec<_> = m.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (k, v) in entries {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            serde_json::Value::String(s) if prefix.is_empty() => out.push(s.clone()),
            serde_json::Value::String(s) => out.push(format!("{prefix}={s}")),
            other if prefix.is_empty() => out.push(other.to_string()),
            other => out.push(format!("{prefix}={other}")),
        }
    }
    let mut parts = Vec::new();
    flatten("", v, &mut parts);
    let text: String = parts
        .join(" ")
        .chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .take(256)
        .collect();
    if text.trim().is_empty() {
        "unknown".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod audit_body_tests {
    use super::*;

    #[test]
    fn the_tcb_claim_becomes_plain_text_and_the_token_claims_are_read() {
        let tcb = serde_json::json!({"snp": 24, "committed_tcb": {"snp": 22, "tee": 0}, "status": "UpToDate\"x"});
        assert_eq!(
            tcb_text(&tcb),
            "committed_tcb.snp=22 committed_tcb.tee=0 snp=24 status=UpToDate?x"
        );
        assert_eq!(tcb_text(&serde_json::json!("OutOfDate")), "OutOfDate");
        assert_eq!(tcb_text(&serde_json::json!({})), "unknown");
        assert_eq!(
            tcb_text(&serde_json::json!({"k": "x".repeat(300)})).len(),
            256
        );
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"measurement":"abcd","tcb":{"snp":3}}"#);
        let body = audit_body(b"{}", "sim", &format!("h.{payload}.s"), None, b"spki");
        assert_eq!(body.measurement, "abcd");
        assert_eq!(body.tcb, "snp=3");
        assert_eq!(body.decision_id, "unknown");
        assert_eq!(
            body.evidence_sha256,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}

/// Parses the pinned CA (one or more PEM certificates).
pub fn parse_ca(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM text".to_owned());
    }
    Ok(certs)
}

/// A TLS 1.3 client configuration trusting only `ca_pem`.
pub fn client_config(
    ca_pem: &str,
    time: Arc<TrustedTime>,
) -> Result<Arc<rustls::ClientConfig>, AttestError> {
    client_config_with(ca_pem, time, None)
}

/// [`client_config`], presenting `client` (certificate and key) when the
/// server asks for a client certificate (mutual TLS).
pub fn client_config_with(
    ca_pem: &str,
    time: Arc<TrustedTime>,
    client: Option<Arc<rustls::sign::CertifiedKey>>,
) -> Result<Arc<rustls::ClientConfig>, AttestError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in parse_ca(ca_pem).map_err(AttestError::Tls)? {
        roots
            .add(cert)
            .map_err(|e| AttestError::Tls(format!("pinned CA: {e}")))?;
    }
    let config = rustls::ClientConfig::builder_with_details(
        Arc::new(rustls::crypto::ring::default_provider()),
        time,
    )
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(|e| AttestError::Tls(e.to_string()))?
    .with_root_certificates(roots);
    let config = match client {
        Some(certified) => config
            .with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified))),
        None => config.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The largest response body read from the verifier.
const BODY_LIMIT: u64 = 256 * 1024;

/// How many times one exchange starts over from a fresh challenge when the
/// verifier closed the kept-alive connection between challenge and attest
/// (the attest request then went out on a new connection, whose exporter
/// the evidence does not carry).
const ROUNDS: u32 = 3;

/// A verifier answer: status, body (zeroizing: it may carry the token),
/// and the `x-request-id` that names its decision record.
type Answer = (u16, Zeroizing<Vec<u8>>, Option<String>);

/// The verifier's HTTPS client for one exchange: a ureq agent over our
/// transport (rustls on the pinned configuration) whose one kept-alive
/// connection carries challenge and attest, and the slot where its TLS
/// connector records each new connection's exporter.
struct Verifier {
    agent: ureq::Agent,
    exporters: ExporterSlot,
    /// `https://<server_name>`.
    base: String,
    deadline: Mono,
    clock: Arc<TrustedTime>,
}

impl Verifier {
    fn new(
        cfg: &VerifierConfig,
        addr: &transport::Addr,
        time: &Arc<TrustedTime>,
        deadline: Mono,
    ) -> Result<Verifier, AttestError> {
        let tls = client_config(&cfg.ca_pem, Arc::clone(time))?;
        let name = ServerName::try_from(cfg.server_name.clone())
            .map_err(|e| AttestError::Tls(e.to_string()))?;
        let spec = ExporterSpec {
            label: EXPORTER_LABEL,
            len: 32,
        };
        // `config` keeps one idle connection: requests made one after
        // another reuse it.
        let (agent, exporters) = ureq_transport::agent_with_exporter(
            ureq_transport::config(cfg.timeout).build(),
            addr.clone(),
            name,
            tls,
            spec,
        );
        Ok(Verifier {
            agent,
            exporters,
            base: ureq_transport::https_base(&cfg.server_name),
            deadline,
            clock: Arc::clone(time),
        })
    }

    /// POSTs a JSON body within what is left of the deadline; the answer
    /// (body bounded, in a zeroizing buffer: the attest answer is a bearer
    /// token). 429 and 502-504 are [`AttestError::Unavailable`].
    fn post(&self, path: &str, body: &[u8]) -> Result<(u16, Zeroizing<Vec<u8>>), AttestError> {
        self.post_with_id(path, body)
            .map(|(status, body, _)| (status, body))
    }

    /// [`Verifier::post`], with the answer's `x-request-id` (the verifier's
    /// decision record id) when it has a plain one.
    fn post_with_id(&self, path: &str, body: &[u8]) -> Result<Answer, AttestError> {
        let left = self.deadline.since(Mono::now());
        if left.is_zero() {
            return Err(AttestError::Timeout);
        }
        let resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .config()
            .timeout_global(Some(left))
            .build()
            .header("content-type", "application/json")
            .send(body)
            .map_err(|e| failed(path, &e))?;
        let request_id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| audit_record::body::is_name(v))
            .map(str::to_owned);
        let answer = ureq_transport::read_answer(resp, BODY_LIMIT).map_err(|e| failed(path, &e))?;
        let body = Zeroizing::new(answer.body);
        if Class::of_status(answer.status, None).is_transient() {
            return Err(AttestError::Unavailable {
                status: answer.status,
                retry_after: retry_after_of(answer.retry_after.as_deref(), &self.clock),
            });
        }
        Ok((answer.status, body, request_id))
    }

    /// The serial and exporter of the newest connection: after a request,
    /// the one that carried it.
    fn exporter(&self) -> Result<(u64, [u8; 32]), AttestError> {
        let latest = self
            .exporters
            .latest()
            .ok_or_else(|| AttestError::Tls("exporter: no connection was made".to_owned()))?;
        let exporter: [u8; 32] = latest.value[..]
            .try_into()
            .map_err(|_| AttestError::Tls(format!("exporter is {} bytes", latest.value.len())))?;
        Ok((latest.serial, exporter))
    }

    /// The serial of the newest connection.
    fn serial(&self) -> Option<u64> {
        self.exporters.latest().map(|e| e.serial)
    }
}

/// A `Retry-After` header as a wait; an unusable value is logged and
/// ignored (the caller's own schedule applies).
pub(crate) fn retry_after_of(value: Option<&str>, clock: &TrustedTime) -> Option<Duration> {
    let v = value?;
    match crate::retry::parse_retry_after(v, clock.now_secs()) {
        Ok(d) => Some(d),
        Err(why) => {
            crate::warn!(reason = why.as_str(); "ignoring an unusable Retry-After");
            None
        }
    }
}

/// A failed request: unreachable or broken (transient), timed out
/// (transient), TLS (the certificate, the handshake: final), or the peer
/// spoke something else (final).
fn failed(path: &str, e: &ureq::Error) -> AttestError {
    let msg = ureq_transport::message(e);
    match ureq_transport::classify(e) {
        Failure::Unreachable => match e {
            ureq::Error::Other(inner) => {
                match inner.downcast_ref::<ureq_transport::ConnectFailed>() {
                    Some(failed) => AttestError::Connect(std::io::Error::new(
                        failed.source.kind(),
                        failed.to_string(),
                    )),
                    None => AttestError::Connect(std::io::Error::other(msg)),
                }
            }
            _ => AttestError::Connect(std::io::Error::other(msg)),
        },
        Failure::Tls => AttestError::Tls(msg),
        Failure::Timeout => AttestError::Timeout,
        Failure::Broken => AttestError::Broken(format!("{path}: {msg}")),
        Failure::Other => AttestError::Protocol(format!("{path}: {msg}")),
    }
}

/// What [`attest_once`] checks the token and the clock against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest token lifetime accepted.
    pub max_token_ttl: Duration,
    /// The largest drift between guest and verifier time accepted.
    pub max_drift: Duration,
}

/// Runs the exchange once, all of it before `deadline`; with
/// `client_certificate`, asks the verifier for a client certificate for
/// `key` too (certificate mode).
#[expect(
    clippy::too_many_arguments,
    reason = "one exchange's inputs, each distinct"
)]
pub fn attest_once(
    cfg: &VerifierConfig,
    addr: &transport::Addr,
    time: &Arc<TrustedTime>,
    key: &EnclaveKey,
    tee: &mut dyn EvidenceSource,
    deadline: Mono,
    limits: Limits,
    client_certificate: bool,
) -> Result<Attestation, AttestError> {
    let started = Instant::now();
    let verifier = Verifier::new(cfg, addr, time, deadline)?;
    let mut evidence_time = Duration::ZERO;
    let mut round = 0u32;
    loop {
        round += 1;

        // 4. Challenge; its time anchors ours (to the instant we asked).
        let sent = Mono::now();
        let (status, body) = verifier.post("/v1/challenge", b"{}")?;
        let received = Mono::now();
        if status != 200 {
            return Err(AttestError::Protocol(format!(
                "/v1/challenge answered {status}"
            )));
        }
        let challenge: Challenge =
            wire::from_json(&body).map_err(|e| AttestError::Protocol(e.to_string()))?;
        let nonce: [u8; 32] = challenge.nonce[..].try_into().map_err(|_| {
            AttestError::Protocol(format!("nonce is {} bytes", challenge.nonce.len()))
        })?;
        let verifier_ms = challenge.time_ms();
        let drift_ms = match time.check(
            verifier_ms,
            sent,
            received,
            u64::try_from(limits.max_drift.as_millis()).unwrap_or(u64::MAX),
        ) {
            Ok(d) => d,
            // Time going backwards: keep the old anchor (a smaller time
            // would stretch every deadline) and refuse.
            Err(e @ ClockError::Backwards { .. }) => return Err(AttestError::Clock(e)),
            // Drift: the verifier is the authority, the guest's clock the
            // suspect. Re-anchor, and refuse this attempt: trust ends now
            // and only a fresh attestation restores it.
            Err(e @ ClockError::Drift { .. }) => {
                time.anchor(verifier_ms, sent);
                return Err(AttestError::Clock(e));
            }
        };
        time.anchor(verifier_ms, sent);

        // 5. Evidence bound to the nonce, our key and the TLS session that
        // carried the challenge (its exporter, recorded by the connector).
        let (serial, exporter) = verifier.exporter()?;
        let report_data = tee_formats::binding::report_data(&nonce, key.spki(), &exporter);
        let evidence_started = Instant::now();
        let binding = evidence::Binding {
            nonce: &nonce,
            spki: key.spki(),
        };
        let bundle = tee
            .collect_bound(&report_data, &binding)
            .map_err(AttestError::Evidence)?;
        evidence_time += evidence_started.elapsed();

        // 6. Attest, on the same connection.
        let request = AttestRequest {
            nonce: nonce.to_vec().into(),
            enclave_key_spki: key.spki().to_vec().into(),
            bundle,
            client_certificate,
        };
        let body =
            serde_json::to_vec(&request).map_err(|e| AttestError::Protocol(e.to_string()))?;
        let (status, resp, request_id) = verifier.post_with_id("/v1/attest", &body)?;
        if verifier.serial() != Some(serial) {
            // The verifier closed the connection after the challenge; the
            // attest went out on a new one, which the evidence is not bound
            // to (and the verifier refuses): start over.
            if round < ROUNDS {
                crate::warn!(round = round, status = status; "the verifier closed the connection between challenge and attest; starting over");
                continue;
            }
            return Err(AttestError::Broken(format!(
                "the verifier closed the connection between /v1/challenge and /v1/attest {ROUNDS} times"
            )));
        }
        return match status {
            200 => {
                let ok: AttestResponse =
                    wire::from_json(&resp).map_err(|e| AttestError::Protocol(e.to_string()))?;
                let lifetime_ms = ok
                    .expires_at
                    .saturating_mul(1000)
                    .saturating_sub(verifier_ms);
                if lifetime_ms == 0 {
                    return Err(AttestError::Token(format!(
                        "it expired at {} s, before the verifier's time {} ms",
                        ok.expires_at, verifier_ms
                    )));
                }
                if Duration::from_millis(lifetime_ms)
                    > limits.max_token_ttl.saturating_add(Duration::from_secs(1))
                {
                    return Err(AttestError::Token(format!(
                        "its lifetime of {} s exceeds the cap of {} s (verifier.max_token_ttl_s)",
                        lifetime_ms / 1000,
                        limits.max_token_ttl.as_secs()
                    )));
                }
                if client_certificate && ok.client_certificate.is_none() {
                    return Err(AttestError::Protocol("the verifier issued no client certificate (vault.auth = \"cert\" needs a verifier with a client CA)".into()));
                }
                let audit = audit_body(
                    &body,
                    request.bundle.tee.as_str(),
                    &ok.token,
                    request_id,
                    key.spki(),
                );
                Ok(Attestation {
                    audit,
                    token: Zeroizing::new(ok.token),
                    client_certificate: ok.client_certificate,
                    expires_at: ok.expires_at,
                    deadline: sent.after(Duration::from_millis(lifetime_ms)),
                    tee: request.bundle.tee.as_str().to_owned(),
                    drift_ms,
                    evidence_time,
                    verifier_time: started.elapsed().saturating_sub(evidence_time),
                })
            }
            403 => {
                #[derive(serde::Deserialize)]
                struct Denied {
                    denial: Denial,
                }
                let d: Denied =
                    wire::from_json(&resp).map_err(|e| AttestError::Protocol(e.to_string()))?;
                Err(AttestError::Denied(d.denial))
            }
            other => Err(AttestError::Protocol(format!(
                "/v1/attest answered {other}: {}",
                String::from_utf8_lossy(&resp)
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            ))),
        };
    }
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]
mod tests {
    use super::*;

    /// An evidence source whose evidence is the REPORT_DATA it was asked for.
    struct Echo;

    impl EvidenceSource for Echo {
        fn kind(&self) -> evidence::SourceKind {
            evidence::SourceKind::Sim
        }
        fn collect(
            &mut self,
            rd: &[u8; 64],
        ) -> Result<wire::EvidenceBundle, evidence::EvidenceError> {
            Ok(wire::EvidenceBundle::new(
                wire::Tee::Sim,
                "test",
                rd.to_vec(),
            ))
        }
    }

    /// A stand-in verifier on `listener`: challenges, then checks that the
    /// evidence (the REPORT_DATA itself, from [`Echo`]) binds the nonce it
    /// issued on *this* connection and *its* exporter of this connection.
    /// The first `closing` connections are closed right after the
    /// challenge. Returns the connections served (once one attested).
    fn stand_in(
        listener: std::net::TcpListener,
        tls: Arc<rustls::ServerConfig>,
        closing: usize,
    ) -> std::thread::JoinHandle<usize> {
        std::thread::spawn(move || {
            let mut served = 0;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                served += 1;
                let conn = rustls::ServerConnection::new(Arc::clone(&tls)).unwrap();
                let mut io = std::io::BufReader::new(rustls::StreamOwned::new(conn, stream));
                let mut issued = None;
                while let Ok(Some(req)) = bounded_http::read_request(
                    &mut io,
                    bounded_http::Limits {
                        head_bytes: 16 * 1024,
                        body_bytes: 1 << 20,
                    },
                ) {
                    let mut exporter = [0u8; 32];
                    io.get_ref()
                        .conn
                        .export_keying_material(&mut exporter, EXPORTER_LABEL, None)
                        .unwrap();
                    let (status, body) = match req.path.as_str() {
                        "/v1/challenge" => {
                            let nonce = [served as u8; 32];
                            issued = Some(nonce);
                            (
                                200,
                                serde_json::to_vec(&Challenge {
                                    nonce: nonce.to_vec().into(),
                                    verifier_time: 1_000,
                                    expires_at: 1_060,
                                    verifier_time_ms: Some(1_000_000),
                                })
                                .unwrap(),
                            )
                        }
                        _ => {
                            let req: AttestRequest = wire::from_json(&req.body).unwrap();
                            let bound = issued.is_some_and(|n| n[..] == req.nonce[..])
                                && req.bundle.evidence[..]
                                    == tee_formats::binding::report_data(
                                        &req.nonce[..].try_into().unwrap(),
                                        &req.enclave_key_spki,
                                        &exporter,
                                    )[..];
                            if bound {
                                (
                                    200,
                                    serde_json::to_vec(&AttestResponse {
                                        token: format!("token-{served}"),
                                        expires_at: 2_000,
                                        client_certificate: None,
                                    })
                                    .unwrap(),
                                )
                            } else {
                                let denial = Denial {
                                    check: "report_data".into(),
                                    got: "-".into(),
                                    want: "-".into(),
                                    hint: "-".into(),
                                };
                                (
                                    403,
                                    serde_json::to_vec(&serde_json::json!({ "denial": denial }))
                                        .unwrap(),
                                )
                            }
                        }
                    };
                    // Closing connections say so (`connection: close`), so
                    // the client never races the close.
                    let closes = served <= closing;
                    let headers: &[(&str, &str)] = if closes {
                        &[
                            ("content-type", "application/json"),
                            ("connection", "close"),
                        ]
                    } else {
                        &[("content-type", "application/json")]
                    };
                    bounded_http::write_response(io.get_mut(), status, headers, &body).unwrap();
                    if closes {
                        break;
                    }
                }
                if served > closing {
                    return served;
                }
            }
            served
        })
    }

    const GENEROUS: Limits = Limits {
        max_token_ttl: Duration::from_secs(3600),
        max_drift: Duration::from_secs(3600),
    };

    fn exchange(closing: usize) -> (Result<Attestation, AttestError>, usize, u64) {
        exchange_with(closing, GENEROUS)
    }

    fn exchange_with(
        closing: usize,
        limits: Limits,
    ) -> (Result<Attestation, AttestError>, usize, u64) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["verifier.test".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf_key.serialize_pem().as_bytes())
                .unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: transport::Addr = format!("tcp://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let server = stand_in(listener, Arc::new(tls), closing);
        let cfg = VerifierConfig {
            addr: Some(addr.clone()),
            server_name: "verifier.test".to_owned(),
            ca_pem: ca.pem(),
            timeout: std::time::Duration::from_secs(5),
            max_token_ttl: Duration::from_secs(3600),
        };
        let time = Arc::new(TrustedTime::new(0));
        let deadline = Mono::now().after(Duration::from_secs(20));
        let result = attest_once(
            &cfg,
            &addr,
            &time,
            &EnclaveKey::generate().unwrap(),
            &mut Echo,
            deadline,
            limits,
            false,
        );
        let served = if result.is_ok() {
            server.join().unwrap()
        } else {
            0
        };
        (result, served, time.now_secs())
    }

    #[test]
    fn challenge_and_attest_share_one_connection_and_its_exporter() {
        let (result, served, now) = exchange(0);
        let attestation = result.unwrap();
        assert_eq!(attestation.token.as_str(), "token-1");
        assert_eq!(served, 1, "one connection carried both requests");
        assert!(
            (1_000..1_005).contains(&now),
            "the challenge's time anchors certificate checks"
        );
    }

    #[test]
    fn a_connection_closed_after_the_challenge_starts_the_exchange_over() {
        // Twice closed, third time bound: the evidence always carries the
        // exporter of the connection its attest request goes out on.
        let (result, served, _) = exchange(2);
        assert_eq!(result.unwrap().token.as_str(), "token-3");
        assert_eq!(served, 3);
        // Closed every time: a protocol error, not an attest on the wrong connection.
        let (result, _, _) = exchange(usize::MAX);
        let err = result.unwrap_err();
        assert!(matches!(err, AttestError::Broken(_)), "{err}");
        assert!(
            err.class().is_transient(),
            "a fresh exchange later may work"
        );
        assert!(
            err.to_string()
                .contains("closed the connection between /v1/challenge and /v1/attest"),
            "{err}"
        );
    }

    #[test]
    fn the_token_deadline_is_anchored_on_the_challenge_and_its_lifetime_is_capped() {
        let (result, _, _) = exchange(0);
        let a = result.unwrap();
        // Verifier time 1_000_000 ms, token until 2_000 s: 1000 s from the
        // instant the challenge was sent (before `now`, never after).
        let left = a.deadline.since(Mono::now());
        assert!(
            left <= Duration::from_secs(1000) && left > Duration::from_secs(990),
            "{left:?}"
        );
        let capped = Limits {
            max_token_ttl: Duration::from_secs(300),
            ..GENEROUS
        };
        let (result, _, _) = exchange_with(0, capped);
        let err = result.unwrap_err();
        assert!(
            matches!(err, AttestError::Token(_))
                && err.to_string().contains("exceeds the cap of 300 s"),
            "{err}"
        );
        assert_eq!(err.class(), Class::Final);
    }

    #[test]
    fn failures_are_classified_transient_or_final() {
        let transient = [
            AttestError::Connect(std::io::ErrorKind::ConnectionRefused.into()),
            AttestError::Broken("reset".into()),
            AttestError::Timeout,
            AttestError::Unavailable {
                status: 503,
                retry_after: None,
            },
            AttestError::Evidence(evidence::EvidenceError::Busy { attempts: 3 }),
        ];
        for e in &transient {
            assert!(e.class().is_transient(), "{e}");
        }
        let denial = Denial {
            check: "snp.measurement".into(),
            got: "a".into(),
            want: "b".into(),
            hint: "c".into(),
        };
        let finals = [
            AttestError::Tls("certificate not valid for name".into()),
            AttestError::Protocol("garbage".into()),
            AttestError::Denied(denial),
            AttestError::Evidence(evidence::EvidenceError::ReportDataMismatch),
            AttestError::Clock(ClockError::Backwards {
                before_ms: 2,
                now_ms: 1,
            }),
            AttestError::Token("expired".into()),
        ];
        for e in &finals {
            assert_eq!(e.class(), Class::Final, "{e}");
        }
        assert_eq!(
            AttestError::Unavailable {
                status: 429,
                retry_after: Some(Duration::from_secs(3))
            }
            .class(),
            Class::Transient {
                retry_after: Some(Duration::from_secs(3))
            }
        );
    }

    #[test]
    fn the_pinned_ca_must_be_pem() {
        assert!(parse_ca("").is_err());
        assert!(parse_ca("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n").is_err());
    }
}
