//! The HTTPS service.
//!
//! TLS 1.3 only (the exporter that binds evidence to the connection is
//! defined without caveats there), rustls with the ring provider. One thread
//! per connection, bounded; every read and write has a timeout; keep-alive,
//! because the challenge and the attest request must travel on the same
//! connection.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use bounded_http::{Limits, Request};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Map, Value};
use wire::verifier::{AttestRequest, AttestResponse, Challenge, Denial};

use crate::admission::{Admitted, Gate, Limits as AdmissionLimits, Refusal};
use crate::deadline::{Phase, Timed};
use crate::decision::{request_id, CheckResult, Decision};
use crate::metrics::Metrics;
use crate::nonce::Nonces;
use crate::token::{cnf_for_spki, Signer};
use crate::{Appraiser, EXPORTER_LABEL};

/// The verifier's clock: the only time that counts for freshness and token
/// lifetimes (the guest's clock is host-controlled).
#[derive(Clone)]
pub enum Clock {
    /// The system clock.
    System,
    /// A fixed or test-controlled time (`--now`), Unix seconds.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// Now, Unix seconds.
    pub fn now(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Now, Unix milliseconds (a manual clock stands at the start of its second).
    pub fn now_millis(&self) -> u64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0),
            Clock::Manual(t) => u64::try_from(t.load(Ordering::SeqCst))
                .unwrap_or(0)
                .saturating_mul(1000),
        }
    }
}

/// Service settings.
pub struct Config {
    /// `iss` of tokens and the OIDC issuer URL (`https://host:port`).
    pub issuer: String,
    /// `aud` of tokens (the Vault/OpenBao role's bound audience).
    pub audience: String,
    /// Token lifetime.
    pub token_ttl_secs: u64,
    /// Nonce lifetime (at most 300).
    pub nonce_ttl_secs: u64,
    /// The clock.
    pub clock: Clock,
    /// Worker threads: connections served at once.
    pub max_connections: usize,
    /// The longest wait for a byte from the peer, and for a write.
    pub io_timeout: Duration,
    /// What a shed connection is told to wait (`Retry-After`, seconds).
    pub shed_retry_after_secs: u64,
    /// How long a kept-alive connection may idle between requests (and
    /// after the handshake, before its first request).
    pub keep_alive_idle: Duration,
    /// The whole TLS handshake, from accept.
    pub handshake_timeout: Duration,
    /// A request, from its first byte to the end of its body.
    pub request_timeout: Duration,
    /// Connections that may wait for a worker beyond the idle ones; past
    /// them a connection is shed.
    pub accept_queue: usize,
    /// How long a connection may wait for a worker before it is shed.
    pub queue_wait: Duration,
    /// Connections (served or waiting) from one peer IP. Behind a TCP
    /// proxy every peer is the proxy: raise it to the connection limit.
    pub max_per_source: usize,
}

/// Connections shed at once that still get a `503` with `Retry-After` (a
/// TLS handshake and one short answer each) before the verifier falls
/// back to closing them unanswered.
fn shed_slots(max_connections: usize) -> usize {
    max_connections / 4 + 8
}

/// The whole time a shed connection gets (handshake, request head, the
/// answer): no more of the verifier's time than that.
const SHED_TIMEOUT: Duration = Duration::from_secs(2);

/// How often queued connections are checked against the wait timeout.
const QUEUE_POLL: Duration = Duration::from_millis(100);

/// Why the service could not be set up.
#[derive(Debug)]
pub struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// The verifier.
pub struct Verifier {
    config: Config,
    tls: Arc<rustls::ServerConfig>,
    nonces: Nonces,
    signer: Signer,
    client_ca: Option<crate::client_cert::ClientCa>,
    appraiser: Box<dyn Appraiser>,
    metrics: Metrics,
    gate: Arc<Gate>,
    /// Connections being answered `503` now.
    shedding: Arc<AtomicUsize>,
    /// Decision records for the audit trail (`--audit`).
    audit: Option<crate::audit::Shipper>,
}

impl Verifier {
    /// Builds the service from PEM TLS credentials, a PKCS#8 P-384 token
    /// key, the nonce HMAC key (shared by replicas) and the appraiser.
    pub fn new(
        config: Config,
        tls_chain_pem: &[u8],
        tls_key_pem: &[u8],
        token_key_pkcs8: &[u8],
        nonce_key: &[u8],
        appraiser: Box<dyn Appraiser>,
    ) -> Result<Verifier, SetupError> {
        if nonce_key.len() < 32 {
            return Err(SetupError(format!(
                "nonce key is {} bytes, at least 32 needed",
                nonce_key.len()
            )));
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(tls_chain_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| SetupError(format!("TLS certificate chain: {e}")))?;
        if chain.is_empty() {
            return Err(SetupError("TLS certificate chain: no certificate".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(tls_key_pem)
            .map_err(|e| SetupError(format!("TLS key: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| SetupError(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| SetupError(format!("TLS: {e}")))?;
        let signer = Signer::from_pkcs8(token_key_pkcs8).map_err(|e| SetupError(e.0))?;
        let gate = Gate::new(AdmissionLimits {
            workers: config.max_connections,
            queue: config.accept_queue,
            queue_wait: config.queue_wait,
            per_source: config.max_per_source,
        });
        Ok(Verifier {
            nonces: Nonces::new(nonce_key, config.nonce_ttl_secs),
            gate,
            config,
            tls: Arc::new(tls),
            signer,
            client_ca: None,
            appraiser,
            metrics: Metrics::default(),
            shedding: Arc::new(AtomicUsize::new(0)),
            audit: None,
        })
    }

    /// Ships a signed `decision` record of every appraisal to the audit
    /// collector at `collector` (never waiting for it: see [`crate::audit`]).
    pub fn with_audit(
        mut self,
        collector: transport::Addr,
        token_key_pkcs8: &[u8],
        limits: crate::audit::ShipperLimits,
    ) -> Result<Self, SetupError> {
        let shipper = crate::audit::Shipper::start(
            collector,
            token_key_pkcs8,
            limits,
            Arc::clone(&self.metrics.audit),
        )
        .map_err(SetupError)?;
        self.audit = Some(shipper);
        Ok(self)
    }

    /// The audit record of `record` (evidence digest: SHA-256 of the
    /// `/v1/attest` body as received, as the guest's attestation record
    /// has it).
    fn audit_decision(&self, record: &Decision, evidence_sha256: &str, spki: &[u8]) {
        let Some(audit) = &self.audit else {
            return;
        };
        let verdict = if record.decision == "accepted" {
            audit_record::Verdict::Accepted
        } else {
            audit_record::Verdict::Denied
        };
        audit.record(
            audit_record::DecisionBody {
                request_id: record.request_id.clone(),
                verdict,
                tee: record.tee.clone(),
                measurement: record.measurement.clone(),
                enclave_spki_sha256: (!spki.is_empty()).then(|| sha256_hex(spki)),
                evidence_sha256: evidence_sha256.to_owned(),
                policy_id: record.policy.id.clone(),
                policy_version: record.policy.version,
                denied_check: record.denied_check.clone(),
            },
            self.config.clock.now_millis(),
        );
    }

    /// Issues client certificates with `ca` to guests that ask for one
    /// (proof-of-possession mode); without it they are told no.
    pub fn with_client_ca(mut self, ca: crate::client_cert::ClientCa) -> Self {
        self.client_ca = Some(ca);
        self
    }

    /// Caps the used-nonce set at `cap` entries (default
    /// [`crate::nonce::DEFAULT_USED_CAP`]); past it an attestation is
    /// denied `nonce.capacity` until nonces expire.
    pub fn with_used_nonce_cap(mut self, cap: usize) -> Self {
        self.nonces = self.nonces.with_used_cap(cap);
        self
    }

    /// The token signer (tests verify tokens with it).
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Accepts connections forever: starts the workers and the queue's
    /// watchman, then admits or sheds each connection.
    pub fn serve(self: Arc<Self>, listener: TcpListener) {
        let workers = self.gate.limits().workers;
        for _ in 0..workers {
            let me = Arc::clone(&self);
            if let Err(e) = std::thread::Builder::new()
                .name("verifier-conn".into())
                .spawn(move || me.work())
            {
                log::warn!(error = e.to_string().as_str(); "cannot start a worker; serving with fewer");
            }
        }
        let me = Arc::clone(&self);
        if let Err(e) = std::thread::Builder::new()
            .name("verifier-queue".into())
            .spawn(move || me.expire_waiting())
        {
            log::warn!(error = e.to_string().as_str(); "cannot start the queue watchman; waits are bounded only when a worker frees");
        }
        for tcp in listener.incoming() {
            let tcp = match tcp {
                Ok(t) => t,
                Err(e) => {
                    log::warn!(error = e.to_string().as_str(); "accept failed");
                    continue;
                }
            };
            let Ok(peer) = tcp.peer_addr() else {
                continue;
            };
            if let Err((tcp, refusal)) = self.gate.admit(tcp, peer.ip()) {
                self.shed(tcp, refusal);
            }
        }
    }

    /// A worker: serves queued connections one at a time; one that waited
    /// past the wait timeout is shed instead (its client was promised an
    /// answer within it).
    fn work(&self) {
        loop {
            let next = self.gate.take();
            if next.since.elapsed() >= self.config.queue_wait {
                let Admitted { tcp, .. } = next;
                self.shed(tcp, Refusal::Full);
            } else {
                let Admitted { tcp, .. } = next;
                self.connection(tcp);
            }
            self.gate.done();
        }
    }

    /// Sheds the connections that waited past the wait timeout while every
    /// worker was busy.
    fn expire_waiting(&self) {
        loop {
            std::thread::sleep(QUEUE_POLL);
            for a in self.gate.expired(std::time::Instant::now()) {
                let Admitted { tcp, .. } = a;
                self.shed(tcp, Refusal::Full);
            }
        }
    }

    /// Sheds a connection not admitted: a `503` with `Retry-After` (so a
    /// guest backs off for as long as asked instead of hammering a closed
    /// port), on its own short-lived thread with a short deadline for the
    /// whole exchange; past [`shed_slots`] of those, the connection is
    /// closed unanswered.
    fn shed(&self, tcp: TcpStream, why: Refusal) {
        self.metrics.shed();
        if self.shedding.fetch_add(1, Ordering::SeqCst) >= shed_slots(self.config.max_connections) {
            self.shedding.fetch_sub(1, Ordering::SeqCst);
            log::warn!(max = self.config.max_connections; "connection limit reached; closing new connection");
            return;
        }
        let tls = Arc::clone(&self.tls);
        let retry = self.config.shed_retry_after_secs;
        let shedding = Arc::clone(&self.shedding);
        let spawned = std::thread::Builder::new()
            .name("verifier-shed".into())
            .spawn(move || {
                answer_busy(tcp, &tls, retry, why);
                shedding.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.shedding.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Serves one connection: the handshake within its deadline, then
    /// requests, each within the request deadline from its first byte,
    /// with at most the keep-alive idle time between them.
    fn connection(&self, tcp: TcpStream) {
        let c = &self.config;
        let _ = tcp.set_nodelay(true);
        let timed = match Timed::new(
            tcp,
            c.io_timeout,
            Phase::Handshake,
            c.handshake_timeout,
            Some(self.gate.waiting()),
        ) {
            Ok(t) => t,
            Err(e) => {
                log::debug!(error = e.to_string().as_str(); "cannot set socket timeouts");
                return;
            }
        };
        let conn = match rustls::ServerConnection::new(Arc::clone(&self.tls)) {
            Ok(c) => c,
            Err(e) => {
                log::warn!(error = e.to_string().as_str(); "TLS set-up failed");
                return;
            }
        };
        let mut reader = BufReader::new(rustls::StreamOwned::new(conn, timed));
        let mut first = true;
        {
            let s = reader.get_mut();
            while s.conn.is_handshaking() {
                if let Err(e) = s.conn.complete_io(&mut s.sock) {
                    self.closing(&s.sock, &e);
                    return;
                }
            }
        }
        loop {
            // Between requests (and before the first) a connection may
            // idle only `keep_alive_idle` (a guest's exchange sends its
            // attest right after the challenge): idle clients, OpenBao's
            // pooled discovery connections among them, must not hold a
            // worker.
            // Before its first request a connection that crawls while
            // others wait is shed; after one (a client between challenge
            // and attest, fetching its evidence) only the deadline ends it.
            let sock = &mut reader.get_mut().sock;
            if first {
                sock.begin(Phase::Idle, c.keep_alive_idle);
            } else {
                sock.begin_patient(Phase::Idle, c.keep_alive_idle);
            }
            first = false;
            match reader.fill_buf() {
                Ok([]) => return,
                Ok(_) => {}
                Err(e) => {
                    self.closing(&reader.get_ref().sock, &e);
                    return;
                }
            }
            reader
                .get_mut()
                .sock
                .begin(Phase::Request, c.request_timeout);
            let request = match bounded_http::read_request(
                &mut reader,
                Limits {
                    head_bytes: 16 * 1024,
                    body_bytes: 256 * 1024,
                },
            ) {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    let timed_out = reader.get_ref().sock.cut().is_some();
                    if let bounded_http::HttpError::Io(io) = &e {
                        self.closing(&reader.get_ref().sock, io);
                    }
                    let (status, body) = if timed_out {
                        error_body(
                            408,
                            "request_timeout",
                            "the request was not received within its deadline",
                        )
                    } else {
                        error_body(400, "bad_request", &e.to_string())
                    };
                    log::debug!(error = e.to_string().as_str(), status = status; "closing connection");
                    // A short grace to send the answer: the peer may be
                    // the crawler that was just cut.
                    let _ = reader
                        .get_ref()
                        .sock
                        .get_ref()
                        .set_write_timeout(Some(Duration::from_secs(1)));
                    let _ = respond(reader.get_mut(), status, "application/json", &body);
                    return;
                }
            };
            let mut exporter = [0u8; 32];
            let exported =
                reader
                    .get_ref()
                    .conn
                    .export_keying_material(&mut exporter, EXPORTER_LABEL, None);
            if exported.is_err() {
                return;
            }
            let reply = self.handle(&request, &exporter);
            if reply.write_to(reader.get_mut()).is_err() || request.wants_close() {
                return;
            }
        }
    }

    /// Counts a connection that ends because a deadline cut it.
    fn closing(&self, sock: &Timed, e: &std::io::Error) {
        if let Some(cut) = sock.cut() {
            self.metrics.load.deadline_kill(cut.phase());
            log::debug!(phase = cut.phase().label(), error = e.to_string().as_str(); "connection cut");
        }
    }

    /// Routes one request that arrived on the connection with `exporter`.
    pub fn handle(&self, req: &Request, exporter: &[u8; 32]) -> Reply {
        if req.method == "POST" && req.path.split('?').next() == Some("/v1/attest") {
            let id = request_id();
            let (status, body) = self.attest(&req.body, exporter, &id);
            if status != 200 && status != 403 {
                // No decision was reached (a malformed request, or a failure
                // after acceptance): no record, but the id still finds this.
                log::debug!(request_id = id.as_str(), status = status; "attest request not decided");
            }
            return Reply {
                status,
                content_type: "application/json",
                body,
                request_id: Some(id),
            };
        }
        let (status, content_type, body) = self.route(req, exporter);
        Reply {
            status,
            content_type,
            body,
            request_id: None,
        }
    }

    fn route(&self, req: &Request, exporter: &[u8; 32]) -> (u16, &'static str, Vec<u8>) {
        let json = "application/json";
        let path = req.path.split('?').next().unwrap_or("");
        match (req.method.as_str(), path) {
            ("POST", "/v1/challenge") => (200, json, self.challenge(exporter)),
            ("GET", "/.well-known/openid-configuration") => (200, json, self.discovery()),
            ("GET", "/.well-known/jwks.json") => {
                (200, json, self.signer.jwks().to_string().into_bytes())
            }
            ("GET", "/healthz") => (200, json, br#"{"status":"ok"}"#.to_vec()),
            ("GET", "/metrics") => {
                self.metrics
                    .load
                    .set_load(self.gate.in_flight(), self.gate.queue_waiting());
                let mut text = self.metrics.render();
                text.push_str(&self.appraiser.metrics());
                // The cap, so an alert can say how close to it in-flight is.
                text.push_str(&format!("# HELP enclave_verifier_connection_limit Concurrent connections served (--max-connections).\n# TYPE enclave_verifier_connection_limit gauge\nenclave_verifier_connection_limit {}\n", self.config.max_connections));
                (200, "text/plain; version=0.0.4", text.into_bytes())
            }
            // TCB lifecycle: each platform's TCB against what the collateral calls current.
            ("GET", "/v1/platforms") => (
                200,
                json,
                json!({"platforms": self.appraiser.platforms()})
                    .to_string()
                    .into_bytes(),
            ),
            (
                _,
                "/v1/challenge"
                | "/v1/attest"
                | "/.well-known/openid-configuration"
                | "/.well-known/jwks.json"
                | "/healthz"
                | "/metrics"
                | "/v1/platforms",
            ) => {
                let (s, b) =
                    error_body(405, "method_not_allowed", "method not allowed on this path");
                (s, json, b)
            }
            _ => {
                let (s, b) = error_body(404, "not_found", "no such path");
                (s, json, b)
            }
        }
    }

    fn now(&self) -> i64 {
        self.config.clock.now()
    }

    fn challenge(&self, exporter: &[u8; 32]) -> Vec<u8> {
        let now_ms = self.config.clock.now_millis();
        let now = now_ms / 1000;
        let mut random = [0u8; 8];
        // A failing system RNG leaves zeros; the HMAC tag still binds the
        // nonce, and the used-set still makes it single-use.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
        let (nonce, expires_at) = self.nonces.issue(now, exporter, random);
        self.metrics.challenge();
        let c = Challenge {
            nonce: nonce.to_vec().into(),
            verifier_time: now,
            expires_at,
            verifier_time_ms: Some(now_ms),
        };
        serde_json::to_vec(&c).unwrap_or_default()
    }

    /// An appraisal; its decision record is logged under `request_id`
    /// (also the response's `x-request-id`).
    fn attest(&self, body: &[u8], exporter: &[u8; 32], request_id: &str) -> (u16, Vec<u8>) {
        let started = Instant::now();
        let req: AttestRequest = match wire::from_json(body) {
            Ok(r) => r,
            Err(e) => return error_body(400, "bad_request", &e.to_string()),
        };
        // Before the nonce and any crypto: a bundle this verifier does not
        // speak is refused for what it is, and costs no HMAC, no chain.
        if let Err(message) = check_bundle_header(&req.bundle) {
            return error_body(400, "unsupported_bundle", &message);
        }
        let tee = req.bundle.tee.as_str();
        let record = Decision::start(request_id.to_owned(), tee, self.appraiser.policy_ref());
        let evidence_sha256 = sha256_hex(body);
        let deny = |denial: Denial, checks: Option<Vec<CheckResult>>| {
            let record = record
                .clone()
                .denied(&req.bundle, &denial.check, checks, started);
            self.audit_decision(&record, &evidence_sha256, &req.enclave_key_spki);
            self.deny(tee, denial, &record)
        };
        let now = self.now();
        if let Err(e) = self
            .nonces
            .redeem(&req.nonce, u64::try_from(now).unwrap_or(0), exporter)
        {
            let denial = Denial {
                check: e.check().to_owned(),
                got: format!("{e:?}").to_lowercase(),
                want: "a nonce this verifier issued on this TLS connection, unexpired, unused"
                    .to_owned(),
                hint: "ask /v1/challenge again on the same connection and attest at once"
                    .to_owned(),
            };
            return deny(denial, None);
        }
        let Some(cnf) = cnf_for_spki(&req.enclave_key_spki) else {
            let denial = Denial {
                check: "enclave_key".into(),
                got: format!("{} bytes", req.enclave_key_spki.len()),
                want: "an EC P-256 or P-384 SubjectPublicKeyInfo (DER)".into(),
                hint: "send the enclave key's SPKI".into(),
            };
            return deny(denial, None);
        };
        let Ok(nonce) = <[u8; 32]>::try_from(&req.nonce[..]) else {
            return error_body(400, "bad_request", "nonce length");
        };
        let expected = tee_formats::binding::report_data(&nonce, &req.enclave_key_spki, exporter);
        let (result, checks) = self.appraiser.appraise_traced(&req.bundle, &expected, now);
        let mut claims = match result {
            Ok(c) => c,
            Err(denial) => return deny(denial, checks),
        };
        let exp = now.saturating_add(i64::try_from(self.config.token_ttl_secs).unwrap_or(300));
        let mut jti = [0u8; 16];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut jti);
        let jkt = cnf["jkt"].as_str().unwrap_or_default().to_owned();
        for (k, v) in [
            ("iss", json!(self.config.issuer)),
            ("aud", json!(self.config.audience)),
            ("sub", json!(format!("enclave:{jkt}"))),
            ("iat", json!(now)),
            ("nbf", json!(now)),
            ("exp", json!(exp)),
            (
                "jti",
                json!(jti.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            ),
            ("eat_nonce", json!(B64URL.encode(nonce))),
            ("cnf", cnf),
        ] {
            claims.insert(k.to_owned(), v);
        }
        claims.entry("tee").or_insert_with(|| json!(tee));
        let client_certificate = if req.client_certificate {
            let Some(ca) = &self.client_ca else {
                return error_body(400, "no_client_ca", "this verifier issues no client certificates (start it with --client-ca-cert and --client-ca-key)");
            };
            let subject = crate::client_cert::Subject {
                jkt: &jkt,
                tee: claims.get("tee").and_then(Value::as_str).unwrap_or(tee),
                measurement: claims
                    .get("measurement")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            };
            match ca.issue(&req.enclave_key_spki, &subject, now, exp) {
                Ok(pem) => Some(pem),
                Err(e) => return error_body(500, "client_certificate_failed", &e.0),
            }
        } else {
            None
        };
        let token = match self.signer.sign(&claims) {
            Ok(t) => t,
            Err(e) => return error_body(500, "signing_failed", &e.0),
        };
        let record = record
            .accepted(&claims, checks, started)
            .with_collateral_age(self.appraiser.collateral_age(&req.bundle, now));
        self.metrics.appraisal(tee, None);
        self.metrics.decided(&record);
        record.log();
        self.audit_decision(&record, &evidence_sha256, &req.enclave_key_spki);
        let resp = AttestResponse {
            token,
            expires_at: u64::try_from(exp).unwrap_or(0),
            client_certificate,
        };
        (200, serde_json::to_vec(&resp).unwrap_or_default())
    }

    fn deny(&self, tee: &str, denial: Denial, record: &Decision) -> (u16, Vec<u8>) {
        self.metrics.appraisal(tee, Some(&denial.check));
        self.metrics.decided(record);
        record.log();
        // What the evidence showed, for the operator; the record has the rest.
        log::debug!(request_id = record.request_id.as_str(), check = denial.check.as_str(), got = denial.got.as_str(); "attestation denied");
        (403, json!({"denial": denial}).to_string().into_bytes())
    }

    fn discovery(&self) -> Vec<u8> {
        let iss = &self.config.issuer;
        json!({
            "issuer": iss,
            "jwks_uri": format!("{iss}/.well-known/jwks.json"),
            "id_token_signing_alg_values_supported": ["ES384"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "claims_supported": ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "eat_nonce", "tee", "measurement", "tcb", "policy_flags", "chip_id", "cnf", "policy_digest"],
        })
        .to_string()
        .into_bytes()
    }
}

/// The bundle's `format` and `version` are the ones this verifier reads,
/// and its `provider` (logged and recorded for diagnostics) is a short
/// name: 1 to 64 of `[A-Za-z0-9._-]`.
fn check_bundle_header(b: &wire::EvidenceBundle) -> Result<(), String> {
    if b.format != wire::bundle::FORMAT {
        return Err(format!(
            "bundle format {:?}, want {:?}",
            b.format.chars().take(64).collect::<String>(),
            wire::bundle::FORMAT
        ));
    }
    if b.version != wire::bundle::VERSION {
        return Err(format!(
            "bundle version {}, want {}",
            b.version,
            wire::bundle::VERSION
        ));
    }
    let p = &b.provider;
    if p.is_empty()
        || p.len() > 64
        || !p
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "bundle provider of {} bytes is not 1 to 64 of [A-Za-z0-9._-]",
            p.len()
        ));
    }
    Ok(())
}

/// Answers a shed connection `503` with `Retry-After` and closes it, all
/// within [`SHED_TIMEOUT`]. The request head is read first (bounded) so
/// that the client is not reset while it writes; its content does not
/// matter.
fn answer_busy(tcp: TcpStream, tls: &Arc<rustls::ServerConfig>, retry_after: u64, why: Refusal) {
    let Ok(timed) = Timed::new(tcp, SHED_TIMEOUT, Phase::Handshake, SHED_TIMEOUT, None) else {
        return;
    };
    let Ok(conn) = rustls::ServerConnection::new(Arc::clone(tls)) else {
        return;
    };
    let mut reader = BufReader::new(rustls::StreamOwned::new(conn, timed));
    if let Ok(Some(_)) = bounded_http::read_request_head(
        &mut reader,
        Limits {
            head_bytes: 16 * 1024,
            body_bytes: 0,
        },
    ) {
        let (status, body) = match why {
            Refusal::Full => error_body(
                503,
                "busy",
                "the verifier is at its connection limit; retry after the given delay",
            ),
            Refusal::Source => error_body(
                503,
                "busy_source",
                "too many connections from this address; retry after the given delay",
            ),
        };
        let retry = retry_after.to_string();
        let _ = bounded_http::write_response(
            reader.get_mut(),
            status,
            &[
                ("content-type", "application/json"),
                ("retry-after", retry.as_str()),
                ("connection", "close"),
            ],
            &body,
        );
    }
}

/// An answer: status, content type, body and, for an appraisal, the id of
/// its decision record (sent as `x-request-id`).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `content-type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// The decision record's id (`POST /v1/attest` only).
    pub request_id: Option<String>,
}

impl Reply {
    fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut headers = vec![("content-type", self.content_type)];
        if let Some(id) = &self.request_id {
            headers.push(("x-request-id", id.as_str()));
        }
        bounded_http::write_response(w, self.status, &headers, &self.body)
    }
}

fn error_body(status: u16, code: &str, message: &str) -> (u16, Vec<u8>) {
    (
        status,
        json!({"error": {"code": code, "message": message}})
            .to_string()
            .into_bytes(),
    )
}

fn respond(
    w: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    bounded_http::write_response(w, status, &[("content-type", content_type)], body)
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Claims as a map (helper for appraisers).
pub fn claims_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
