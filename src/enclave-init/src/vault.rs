//! Steps 7-8 of the boot: log in to Vault/OpenBao with the attestation token
//! and read the secrets into the secret store.
//!
//! - HTTPS through ureq over our transport (`ureq-transport`): rustls with
//!   the Vault CA pinned in the measured configuration and certificate time
//!   from the verifier's clock; one kept-alive connection carries the whole
//!   sequence: login, then per secret a KV v2 read and its unwrap.
//! - Login at `auth/<auth_path>/login` with the configured role: Vault's
//!   role, not this code, decides which measurements get a token. Either
//!   the verifier's JWT (`vault.auth = "jwt"`, a bearer token), or, in
//!   certificate mode (`"cert"`), OpenBao's cert auth over mutual TLS with
//!   the verifier's client certificate and the enclave key: the handshake
//!   proves possession of the attested key, so a copied token or
//!   certificate is worthless without it.
//! - KV v2 reads are response-wrapped (`X-Vault-Wrap-TTL`): the secret
//!   travels only inside the unwrap response, whose wrapping token is
//!   single-use and checked for its creation path.
//! - Secret bytes go straight from the unwrap response into the locked
//!   store; the transient response buffers are `Zeroizing`, and the
//!   zeroizing allocator wipes whatever serde_json allocated on the way.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde_json::Value;
use ureq_transport::{ureq, Failure};
use zeroize::Zeroizing;

use crate::attest::TrustedTime;
use crate::config::VaultConfig;
use crate::keys::EnclaveKey;
use crate::lifecycle::clock::Mono;
use crate::retry::{Class, Classify};
use crate::secrets::{SecretError, SecretStore};

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Vault could not be connected to.
    #[error("cannot reach Vault: {0}")]
    Unreachable(String),
    /// TLS failed: a certificate that does not chain to the pinned CA or
    /// names another host, a bad record.
    #[error("Vault TLS: {0}")]
    Tls(String),
    /// The connection broke before a complete answer.
    #[error("the connection to Vault broke: {0}")]
    Broken(String),
    /// The attempt's deadline passed.
    #[error("Vault did not answer within the attempt's deadline")]
    Timeout,
    /// Vault (or a proxy in front of it) is unavailable for now: 429,
    /// 502, 503, 504.
    #[error("Vault is unavailable for now ({op}: HTTP {status})")]
    Unavailable {
        /// What we asked.
        op: String,
        /// HTTP status.
        status: u16,
        /// Its `Retry-After`, when valid.
        retry_after: Option<Duration>,
    },
    /// Vault refused (its `errors` messages, which carry no secret).
    #[error("Vault refused {op} ({status}): {}", errors.join("; "))]
    Refused {
        /// What we asked.
        op: String,
        /// HTTP status.
        status: u16,
        /// Vault's messages.
        errors: Vec<String>,
    },
    /// Vault could not fetch the keys that verify our token from their
    /// source (OpenBao's JWT auth reads the verifier's OIDC discovery and
    /// JWKS): the verifier restarting behind it, not a refusal of ours.
    #[error("Vault could not reach the token's key source ({op}: HTTP {status}): {}", errors.join("; "))]
    KeySource {
        /// What we asked.
        op: String,
        /// HTTP status.
        status: u16,
        /// Vault's messages.
        errors: Vec<String>,
    },
    /// Vault answered something unexpected.
    #[error("Vault protocol: {0}")]
    Protocol(String),
    /// The store refused a secret.
    #[error("secret store")]
    Store(#[source] SecretError),
}

impl Classify for VaultError {
    fn class(&self) -> Class {
        match self {
            VaultError::Unreachable(_)
            | VaultError::Broken(_)
            | VaultError::Timeout
            | VaultError::KeySource { .. } => Class::TRANSIENT,
            VaultError::Unavailable { retry_after, .. } => Class::Transient {
                retry_after: *retry_after,
            },
            VaultError::Tls(_)
            | VaultError::Refused { .. }
            | VaultError::Protocol(_)
            | VaultError::Store(_) => Class::Final,
        }
    }
}

impl VaultError {
    /// A fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            VaultError::Unreachable(_) => "vault_unreachable",
            VaultError::Tls(_) => "vault_tls",
            VaultError::Broken(_) => "vault_broken",
            VaultError::Timeout => "vault_timeout",
            VaultError::Unavailable { .. } => "vault_unavailable",
            VaultError::Refused { .. } => "vault_refused",
            VaultError::KeySource { .. } => "vault_key_source",
            VaultError::Protocol(_) => "vault_protocol",
            VaultError::Store(_) => "secrets",
        }
    }
}

/// A Vault client: a ureq agent whose one kept-alive connection (opened by
/// the first request) carries the whole sequence, every request within
/// what is left of the attempt's deadline.
struct Vault {
    agent: ureq::Agent,
    /// `https://<server_name>`: the URLs' host names the peer (and the
    /// `Host` header); the connection goes to the configured address.
    base: String,
    deadline: Mono,
    clock: Arc<TrustedTime>,
}

/// A Vault token: zeroized on drop, never logged.
struct VaultToken(Zeroizing<String>);

/// The largest response body read from Vault.
const BODY_LIMIT: u64 = 256 * 1024;

impl Vault {
    fn connect(
        cfg: &VaultConfig,
        addr: &transport::Addr,
        time: &Arc<TrustedTime>,
        login: &Login<'_>,
        deadline: Mono,
    ) -> Result<Vault, VaultError> {
        let client = match login {
            Login::Jwt(_) => None,
            Login::Cert { chain_pem, key } => {
                Some(key.certified(chain_pem).map_err(VaultError::Protocol)?)
            }
        };
        let tls = crate::attest::client_config_with(&cfg.ca_pem, Arc::clone(time), client)
            .map_err(|e| VaultError::Tls(e.to_string()))?;
        let name = ServerName::try_from(cfg.server_name.clone())
            .map_err(|e| VaultError::Tls(e.to_string()))?;
        let agent = ureq_transport::agent(addr.clone(), name, tls, cfg.timeout);
        Ok(Vault {
            agent,
            base: ureq_transport::https_base(&cfg.server_name),
            deadline,
            clock: Arc::clone(time),
        })
    }

    /// One request within the deadline; the body comes back in a zeroizing
    /// buffer. 429 and 502-504 are [`VaultError::Unavailable`].
    fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, Zeroizing<Vec<u8>>), VaultError> {
        self.call_until(self.deadline, method, path, headers, body)
    }

    fn call_until(
        &mut self,
        deadline: Mono,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, Zeroizing<Vec<u8>>), VaultError> {
        let left = deadline.since(Mono::now());
        if left.is_zero() {
            return Err(VaultError::Timeout);
        }
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(body)
            .map_err(|e| VaultError::Protocol(format!("{path}: {e}")))?;
        let req = self
            .agent
            .configure_request(req)
            .timeout_global(Some(left))
            .build();
        let resp = self.agent.run(req).map_err(|e| Self::failed(path, &e))?;
        let answer =
            ureq_transport::read_answer(resp, BODY_LIMIT).map_err(|e| Self::failed(path, &e))?;
        let body = Zeroizing::new(answer.body);
        if Class::of_status(answer.status, None).is_transient() {
            return Err(VaultError::Unavailable {
                op: path.to_owned(),
                status: answer.status,
                retry_after: crate::attest::retry_after_of(
                    answer.retry_after.as_deref(),
                    &self.clock,
                ),
            });
        }
        Ok((answer.status, body))
    }

    /// A failed request, sorted as [`VaultError`]'s classes need.
    fn failed(path: &str, e: &ureq::Error) -> VaultError {
        let msg = ureq_transport::message(e);
        match ureq_transport::classify(e) {
            Failure::Unreachable => VaultError::Unreachable(msg),
            Failure::Tls => VaultError::Tls(msg),
            Failure::Timeout => VaultError::Timeout,
            Failure::Broken => VaultError::Broken(format!("{path}: {msg}")),
            Failure::Other => VaultError::Protocol(format!("{path}: {msg}")),
        }
    }

    fn json(op: &str, status: u16, body: &[u8]) -> Result<Value, VaultError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| VaultError::Protocol(format!("{op}: not JSON: {e}")))?;
        if status != 200 {
            let errors: Vec<String> = v["errors"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if errors.iter().any(|e| is_key_source_failure(e)) {
                return Err(VaultError::KeySource {
                    op: op.to_owned(),
                    status,
                    errors,
                });
            }
            return Err(VaultError::Refused {
                op: op.to_owned(),
                status,
                errors,
            });
        }
        Ok(v)
    }

    /// Logs in; the token and its lease, counted from when the request was
    /// sent (Vault started the lease after that, so this errs early).
    fn login(
        &mut self,
        cfg: &VaultConfig,
        login: &Login<'_>,
    ) -> Result<(VaultToken, Duration, Mono), VaultError> {
        let body = Zeroizing::new(match login {
            Login::Jwt(jwt) => serde_json::json!({"role": cfg.role, "jwt": jwt}).to_string(),
            // The cert auth method: the credential is the TLS client
            // certificate this connection's handshake presented.
            Login::Cert { .. } => serde_json::json!({"name": cfg.role}).to_string(),
        });
        let path = format!("/v1/auth/{}/login", cfg.auth_path);
        let sent = Mono::now();
        let (status, resp) = self.call(
            "POST",
            &path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )?;
        let v = Self::json("login", status, &resp)?;
        let token = v["auth"]["client_token"]
            .as_str()
            .ok_or_else(|| VaultError::Protocol("login: no auth.client_token".into()))?;
        let lease = v["auth"]["lease_duration"]
            .as_u64()
            .ok_or_else(|| VaultError::Protocol("login: no auth.lease_duration".into()))?;
        Ok((
            VaultToken(Zeroizing::new(token.to_owned())),
            Duration::from_secs(lease),
            sent,
        ))
    }

    /// Revokes our own token (`auth/token/revoke-self`): renewal is by
    /// re-attestation, so the token is of no further use to us, and a
    /// revoked token is of no use to whoever might copy it. Best effort,
    /// bounded by `deadline`.
    fn revoke_self(&mut self, token: &VaultToken, deadline: Mono) -> Result<(), VaultError> {
        let (status, _) = self.call_until(
            deadline,
            "POST",
            "/v1/auth/token/revoke-self",
            &[("x-vault-token", token.0.as_str())],
            b"",
        )?;
        match status {
            200 | 204 => Ok(()),
            s => Err(VaultError::Refused {
                op: "revoke-self".into(),
                status: s,
                errors: Vec::new(),
            }),
        }
    }

    /// Reads secret `name` (`<kv path>/<field>`, e.g. `hume/api-key`: field
    /// `api-key` of KV v2 secret `hume`), response-wrapped, and unwraps it.
    fn read_secret(
        &mut self,
        cfg: &VaultConfig,
        token: &VaultToken,
        name: &str,
    ) -> Result<(Zeroizing<Vec<u8>>, u64), VaultError> {
        let (path, field) = name.rsplit_once('/').unwrap_or((name, "value"));
        let api = format!("/v1/{}/data/{path}", cfg.kv_mount);
        let ttl = format!("{}s", cfg.wrap_ttl.as_secs().max(1));
        let (status, resp) = self.call(
            "GET",
            &api,
            &[
                ("x-vault-token", token.0.as_str()),
                ("x-vault-wrap-ttl", &ttl),
            ],
            b"",
        )?;
        let v = Self::json(&format!("read {path}"), status, &resp)?;
        let wrap = &v["wrap_info"];
        let wrapping = Zeroizing::new(
            wrap["token"]
                .as_str()
                .ok_or_else(|| VaultError::Protocol(format!("read {path}: not wrapped")))?
                .to_owned(),
        );
        // The wrapping token must have been created for exactly this read.
        let want = format!("{}/data/{path}", cfg.kv_mount);
        if wrap["creation_path"].as_str() != Some(want.as_str()) {
            return Err(VaultError::Protocol(format!(
                "read {path}: wrapping token created for {:?}, want {want:?}",
                wrap["creation_path"]
            )));
        }
        let (status, resp) = self.call(
            "POST",
            "/v1/sys/wrapping/unwrap",
            &[("x-vault-token", wrapping.as_str())],
            b"",
        )?;
        let v = Self::json(&format!("unwrap {path}"), status, &resp)?;
        let value = v["data"]["data"][field].as_str().ok_or_else(|| {
            VaultError::Protocol(format!("secret {path} has no string field `{field}`"))
        })?;
        // KV v2 numbers every write; the audit trail names the version
        // released (0: Vault did not say).
        let version = v["data"]["metadata"]["version"].as_u64().unwrap_or(0);
        Ok((Zeroizing::new(value.as_bytes().to_vec()), version))
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
        let (status, resp) = self.call(
            "POST",
            &path,
            &[
                ("x-vault-token", token.0.as_str()),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        )?;
        let v = Self::json("sign serving certificate", status, &resp)?;
        let leaf = v["data"]["certificate"]
            .as_str()
            .ok_or_else(|| VaultError::Protocol("sign: no data.certificate".into()))?;
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

/// The Vault login's credential.
pub enum Login<'a> {
    /// The verifier's JWT (JWT auth; a bearer token).
    Jwt(&'a str),
    /// The verifier's client certificate for the enclave key, and the key
    /// (cert auth over mutual TLS; proof of possession).
    Cert {
        /// The certificate (PEM).
        chain_pem: &'a str,
        /// The enclave key it certifies.
        key: &'a EnclaveKey,
    },
}

/// What provisioning achieved (for logs and health; no secret).
#[derive(Debug)]
pub struct Provisioned {
    /// The signed serving certificate chain, when one was requested.
    pub serving_chain: Option<String>,
    /// Secrets held.
    pub count: usize,
    /// Each secret read, as the audit trail names it: `<kv mount>/<name>`
    /// and its KV version.
    pub released: Vec<crate::lifecycle::Held>,
    /// The Vault token's lease.
    pub lease: Duration,
    /// The monotonic instant the lease ends (`None`: Vault gave no lease,
    /// e.g. a root-like token: only the attestation bounds trust).
    pub lease_deadline: Option<Mono>,
}

/// One provisioning attempt, all of it before `deadline`: log in with the
/// attestation token or the client certificate (`login`), read every configured secret (response-wrapped) into
/// `store`, have the serving key's request signed, then revoke the Vault
/// token. On any failure after login the token is revoked too (best
/// effort, briefly) and `store` is cleared: a retry starts from nothing.
pub fn provision_once(
    cfg: &VaultConfig,
    addr: &transport::Addr,
    time: &Arc<TrustedTime>,
    login: &Login<'_>,
    store: &mut SecretStore,
    cert: Option<&CertRequest>,
    deadline: Mono,
) -> Result<Provisioned, VaultError> {
    let mut vault = Vault::connect(cfg, addr, time, login, deadline)?;
    let (token, lease, sent) = vault.login(cfg, login)?;
    let auth = match login {
        Login::Jwt(_) => "jwt",
        Login::Cert { .. } => "cert",
    };
    crate::info_always!(role = cfg.role.as_str(), auth = auth, lease_secs = lease.as_secs(); "Vault login accepted");
    let mut released = Vec::with_capacity(cfg.secrets.len());
    let result = read_all(&mut vault, cfg, &token, store, cert, &mut released);
    // Revocation gets a short grace past the deadline (at most 2 s): a
    // token left alive is worse than a late attempt, and it is bounded.
    let grace = Mono::now()
        .after(Duration::from_secs(2))
        .min(deadline.after(Duration::from_secs(2)));
    if let Err(e) = vault.revoke_self(&token, grace) {
        crate::warn!(reason = crate::logger::chain(&e).as_str(); "Vault token not revoked (it expires with its lease)");
    }
    match result {
        Ok(serving_chain) => Ok(Provisioned {
            serving_chain,
            count: cfg.secrets.len(),
            released,
            lease,
            lease_deadline: (!lease.is_zero()).then(|| sent.after(lease)),
        }),
        Err(e) => {
            store.clear();
            Err(e)
        }
    }
}

fn read_all(
    vault: &mut Vault,
    cfg: &VaultConfig,
    token: &VaultToken,
    store: &mut SecretStore,
    cert: Option<&CertRequest>,
    released: &mut Vec<crate::lifecycle::Held>,
) -> Result<Option<String>, VaultError> {
    for path in &cfg.secrets {
        let (value, version) = vault.read_secret(cfg, token, path)?;
        store.insert(path, &value).map_err(VaultError::Store)?;
        released.push((format!("{}/{path}", cfg.kv_mount), version));
        // The name only: never the value, nor its length.
        crate::info_always!(secret = path.as_str(); "secret provisioned");
    }
    match cert {
        Some(req) => {
            let chain = vault.sign_csr(token, req)?;
            crate::info_always!(name = req.common_name.as_str(), path = req.sign_path.as_str(); "serving certificate signed by Vault PKI");
            Ok(Some(chain))
        }
        None => Ok(None),
    }
}

/// Whether a Vault error message says that Vault could not fetch the keys
/// of its JWT validator (the verifier's OIDC discovery document or JWKS),
/// which OpenBao reports as a 400: `error configuring token validator:
/// keyset configuration error: Get "https://…": dial tcp …: connection
/// refused`. That is the verifier being away for a moment, so it is
/// retried; every other 400 (a bad or expired token, a claim the role does
/// not bind) stays final.
fn is_key_source_failure(message: &str) -> bool {
    message.starts_with("error configuring token validator")
        && message.contains("keyset configuration error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validator_that_cannot_fetch_its_keys_is_transient_and_nothing_else_is() {
        // OpenBao 2.7's words when the verifier's discovery URL is down.
        let down = "error configuring token validator: keyset configuration error: Get \"https://127.0.0.1:36987/.well-known/openid-configuration\": dial tcp 127.0.0.1:36987: connect: connection refused";
        assert!(is_key_source_failure(down));
        let body = serde_json::json!({ "errors": [down] }).to_string();
        let e = Vault::json("login", 400, body.as_bytes()).unwrap_err();
        assert!(
            matches!(e, VaultError::KeySource { status: 400, .. }),
            "{e}"
        );
        assert!(e.class().is_transient(), "{e}");
        // A misconfigured mount, a bad token, a claim mismatch: final.
        for msg in [
            "error configuring token validator: unsupported config type",
            "error validating token: invalid audience (aud) claim: audience claim does not match any expected audience",
            "error validating claims: claim \"measurement\" does not match any associated bound claim values",
            "permission denied",
        ] {
            assert!(!is_key_source_failure(msg), "{msg}");
            let body = serde_json::json!({ "errors": [msg] }).to_string();
            let e = Vault::json("login", 400, body.as_bytes()).unwrap_err();
            assert_eq!(e.class(), Class::Final, "{e}");
        }
    }

    #[test]
    fn failures_are_classified_transient_or_final() {
        for e in [
            VaultError::Unreachable("refused".into()),
            VaultError::Broken("eof".into()),
            VaultError::Timeout,
            VaultError::Unavailable {
                op: "login".into(),
                status: 502,
                retry_after: None,
            },
        ] {
            assert!(e.class().is_transient(), "{e}");
        }
        for e in [
            VaultError::Tls("UnknownIssuer".into()),
            VaultError::Refused {
                op: "login".into(),
                status: 403,
                errors: vec!["permission denied".into()],
            },
            VaultError::Protocol("not JSON".into()),
            VaultError::Store(SecretError::Full),
        ] {
            assert_eq!(e.class(), Class::Final, "{e}");
        }
    }
}
