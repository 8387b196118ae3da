//! Steps 7-8 of the boot: log in to Vault/OpenBao with the attestation token
//! and read the secrets into the secret store.
//!
//! - HTTPS through ureq over our transport (`ureq-transport`): rustls with
//!   the Vault CA pinned in the measured configuration and certificate time
//!   from the verifier's clock; one kept-alive connection carries the whole
//!   sequence: login, then per secret a KV v2 read and its unwrap.
//! - JWT login at `auth/<auth_path>/login` with the configured role: Vault's
//!   role, not this code, decides which measurements get a token.
//! - KV v2 reads are response-wrapped (`X-Vault-Wrap-TTL`): the secret
//!   travels only inside the unwrap response, whose wrapping token is
//!   single-use and checked for its creation path.
//! - Secret bytes go straight from the unwrap response into the locked
//!   store; the transient response buffers are `Zeroizing`, and the
//!   zeroizing allocator wipes whatever serde_json allocated on the way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use serde_json::Value;
use ureq_transport::{ureq, Failure};
use zeroize::Zeroizing;

use crate::attest::{Attestation, TrustedTime};
use crate::config::VaultConfig;
use crate::secrets::{SecretError, SecretStore};

/// Why provisioning failed.
#[derive(Debug)]
pub enum VaultError {
    /// Vault could not be reached (retried until the deadline).
    Unreachable {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// TLS set-up or the exchange failed.
    Tls(String),
    /// Vault refused (its `errors` messages, which carry no secret).
    Refused {
        /// What we asked.
        op: String,
        /// HTTP status.
        status: u16,
        /// Vault's messages.
        errors: Vec<String>,
    },
    /// Vault answered something unexpected.
    Protocol(String),
    /// The store refused a secret.
    Store(SecretError),
}

impl std::fmt::Display for VaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultError::Unreachable { attempts, last } => write!(f, "Vault unreachable after {attempts} attempts: {last}"),
            VaultError::Tls(e) => write!(f, "Vault TLS: {e}"),
            VaultError::Refused { op, status, errors } => write!(f, "Vault refused {op} ({status}): {}", errors.join("; ")),
            VaultError::Protocol(e) => write!(f, "Vault protocol: {e}"),
            VaultError::Store(e) => write!(f, "secret store: {e}"),
        }
    }
}

impl std::error::Error for VaultError {}

/// A Vault client: a ureq agent whose one kept-alive connection (opened by
/// the first request) carries the whole sequence.
struct Vault {
    agent: ureq::Agent,
    /// `https://<server_name>`: the URLs' host names the peer (and the
    /// `Host` header); the connection goes to the configured address.
    base: String,
}

/// A Vault token: zeroized on drop, never logged.
struct VaultToken(Zeroizing<String>);

/// The largest response body read from Vault.
const BODY_LIMIT: u64 = 256 * 1024;

impl Vault {
    fn connect(cfg: &VaultConfig, addr: &transport::Addr, time: &Arc<TrustedTime>) -> Result<Vault, VaultError> {
        let tls = crate::attest::client_config(&cfg.ca_pem, Arc::clone(time)).map_err(|e| match e {
            crate::attest::AttestError::Tls(e) => VaultError::Tls(e),
            e => VaultError::Tls(e.to_string()),
        })?;
        let name = ServerName::try_from(cfg.server_name.clone()).map_err(|e| VaultError::Tls(e.to_string()))?;
        let agent = ureq_transport::agent(addr.clone(), name, tls, cfg.timeout);
        Ok(Vault { agent, base: ureq_transport::https_base(&cfg.server_name) })
    }

    /// One request; the body comes back in a zeroizing buffer.
    fn call(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<(u16, Zeroizing<Vec<u8>>), VaultError> {
        let mut req = ureq::http::Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(body).map_err(|e| VaultError::Protocol(format!("{path}: {e}")))?;
        let resp = self.agent.run(req).map_err(|e| Self::failed(path, &e))?;
        let (status, body) = ureq_transport::read_limited(resp, BODY_LIMIT)
            .map_err(|e| VaultError::Protocol(format!("{path}: {}", ureq_transport::message(&e))))?;
        Ok((status, Zeroizing::new(body)))
    }

    /// A failed request: unreachable (retried by [`provision`]), TLS (the
    /// certificate, the handshake), or the exchange broke.
    fn failed(path: &str, e: &ureq::Error) -> VaultError {
        let msg = ureq_transport::message(e);
        match ureq_transport::classify(e) {
            Failure::Unreachable => VaultError::Unreachable { attempts: 1, last: msg },
            Failure::Tls => VaultError::Tls(msg),
            Failure::Timeout if matches!(e, ureq::Error::Timeout(ureq::Timeout::Connect)) => VaultError::Tls(format!("handshake: {msg}")),
            Failure::Timeout | Failure::Other => VaultError::Protocol(format!("{path}: {msg}")),
        }
    }

    fn json(op: &str, status: u16, body: &[u8]) -> Result<Value, VaultError> {
        let v: Value = serde_json::from_slice(body).map_err(|e| VaultError::Protocol(format!("{op}: not JSON: {e}")))?;
        if status != 200 {
            let errors = v["errors"].as_array().map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect()).unwrap_or_default();
            return Err(VaultError::Refused { op: op.to_owned(), status, errors });
        }
        Ok(v)
    }

    fn login(&mut self, cfg: &VaultConfig, jwt: &str) -> Result<(VaultToken, u64), VaultError> {
        let body = Zeroizing::new(serde_json::json!({"role": cfg.role, "jwt": jwt}).to_string());
        let path = format!("/v1/auth/{}/login", cfg.auth_path);
        let (status, resp) = self.call("POST", &path, &[("content-type", "application/json")], body.as_bytes())?;
        let v = Self::json("login", status, &resp)?;
        let token = v["auth"]["client_token"].as_str().ok_or_else(|| VaultError::Protocol("login: no auth.client_token".into()))?;
        let lease = v["auth"]["lease_duration"].as_u64().unwrap_or(0);
        Ok((VaultToken(Zeroizing::new(token.to_owned())), lease))
    }

    /// Reads secret `name` (`<kv path>/<field>`, e.g. `hume/api-key`: field
    /// `api-key` of KV v2 secret `hume`), response-wrapped, and unwraps it.
    fn read_secret(&mut self, cfg: &VaultConfig, token: &VaultToken, name: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (path, field) = name.rsplit_once('/').unwrap_or((name, "value"));
        let api = format!("/v1/{}/data/{path}", cfg.kv_mount);
        let ttl = format!("{}s", cfg.wrap_ttl.as_secs().max(1));
        let (status, resp) = self.call("GET", &api, &[("x-vault-token", token.0.as_str()), ("x-vault-wrap-ttl", &ttl)], b"")?;
        let v = Self::json(&format!("read {path}"), status, &resp)?;
        let wrap = &v["wrap_info"];
        let wrapping = Zeroizing::new(wrap["token"].as_str().ok_or_else(|| VaultError::Protocol(format!("read {path}: not wrapped")))?.to_owned());
        // The wrapping token must have been created for exactly this read.
        let want = format!("{}/data/{path}", cfg.kv_mount);
        if wrap["creation_path"].as_str() != Some(want.as_str()) {
            return Err(VaultError::Protocol(format!("read {path}: wrapping token created for {:?}, want {want:?}", wrap["creation_path"])));
        }
        let (status, resp) = self.call("POST", "/v1/sys/wrapping/unwrap", &[("x-vault-token", wrapping.as_str())], b"")?;
        let v = Self::json(&format!("unwrap {path}"), status, &resp)?;
        let value = v["data"]["data"][field]
            .as_str()
            .ok_or_else(|| VaultError::Protocol(format!("secret {path} has no string field `{field}`")))?;
        Ok(Zeroizing::new(value.as_bytes().to_vec()))
    }

    /// Has Vault's PKI sign a certificate request; returns the chain (leaf
    /// first, then the issuing CA), PEM.
    fn sign_csr(&mut self, token: &VaultToken, req: &CertRequest) -> Result<String, VaultError> {
        let body = serde_json::json!({
            "csr": req.csr_pem,
            "common_name": req.common_name,
            "ttl": format!("{}s", req.ttl.as_secs().max(60)),
            "format": "pem",
        })
        .to_string();
        let path = format!("/v1/{}", req.sign_path);
        let (status, resp) = self.call("POST", &path, &[("x-vault-token", token.0.as_str()), ("content-type", "application/json")], body.as_bytes())?;
        let v = Self::json("sign serving certificate", status, &resp)?;
        let leaf = v["data"]["certificate"].as_str().ok_or_else(|| VaultError::Protocol("sign: no data.certificate".into()))?;
        let issuer = v["data"]["issuing_ca"].as_str().unwrap_or("");
        Ok(format!("{}\n{}\n", leaf.trim(), issuer.trim()))
    }
}

/// A certificate request for Vault's PKI (the serving key's).
#[derive(Debug, Clone)]
pub struct CertRequest {
    /// The PKCS#10 request, PEM.
    pub csr_pem: String,
    /// The name asked for.
    pub common_name: String,
    /// `<pki mount>/sign/<role>`.
    pub sign_path: String,
    /// Requested lifetime.
    pub ttl: Duration,
}

/// What provisioning achieved (for logs and health; no secret).
#[derive(Debug)]
pub struct Provisioned {
    /// The signed serving certificate chain, when one was requested.
    pub serving_chain: Option<String>,
    /// Secrets held.
    pub count: usize,
    /// Vault token lease, seconds.
    pub token_lease_secs: u64,
    /// Connection attempts made.
    pub attempts: u32,
}

/// Logs in and loads every configured secret into `store`. Retries with
/// bounded backoff while Vault is unreachable (it may start after us);
/// refusals are final.
pub fn provision(
    cfg: &VaultConfig,
    addr: &transport::Addr,
    time: &Arc<TrustedTime>,
    attestation: &Attestation,
    store: &mut SecretStore,
    cert: Option<&CertRequest>,
) -> Result<Provisioned, VaultError> {
    let start = Instant::now();
    let mut backoff = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match provision_once(cfg, addr, time, attestation, store, cert) {
            Ok((count, token_lease_secs, serving_chain)) => return Ok(Provisioned { serving_chain, count, token_lease_secs, attempts }),
            Err(VaultError::Unreachable { last, .. }) => {
                // A connection lost midway may have stored some secrets
                // already; the next attempt starts from an empty store.
                store.clear();
                if start.elapsed() + backoff > cfg.retry {
                    return Err(VaultError::Unreachable { attempts, last });
                }
                log::warn!(attempt = attempts, error = last.as_str(), retry_ms = backoff.as_millis() as u64; "Vault unreachable; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                store.clear();
                return Err(e);
            }
        }
    }
}

fn provision_once(
    cfg: &VaultConfig,
    addr: &transport::Addr,
    time: &Arc<TrustedTime>,
    attestation: &Attestation,
    store: &mut SecretStore,
    cert: Option<&CertRequest>,
) -> Result<(usize, u64, Option<String>), VaultError> {
    let mut vault = Vault::connect(cfg, addr, time)?;
    let (token, lease) = vault.login(cfg, &attestation.token)?;
    log::info!(role = cfg.role.as_str(), lease_secs = lease; "Vault login accepted");
    for path in &cfg.secrets {
        let value = vault.read_secret(cfg, &token, path)?;
        store.insert(path, &value).map_err(VaultError::Store)?;
        log::info!(secret = path.as_str(), len = value.len(); "secret provisioned");
    }
    let chain = match cert {
        Some(req) => {
            let chain = vault.sign_csr(&token, req)?;
            log::info!(name = req.common_name.as_str(), path = req.sign_path.as_str(); "serving certificate signed by Vault PKI");
            Some(chain)
        }
        None => None,
    };
    Ok((cfg.secrets.len(), lease, chain))
}
