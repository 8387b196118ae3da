//! `[vault]`: how to reach Vault/OpenBao, how to log in, and which secrets
//! to read there.

use std::time::Duration;

use transport::Addr;

use super::fields::{Field, Fields, Kind};
use super::values::{optional_addr, pinned_ca, server_name, vault_path};
use super::ConfigError;

pub(super) const FIELDS: &[Field] = &[
    ("vault.addr", Kind::Str, Some("")),
    ("vault.server_name", Kind::Str, Some("vault.enclave.local")),
    ("vault.ca", Kind::Str, Some("")),
    ("vault.auth", Kind::Str, Some("jwt")),
    ("vault.auth_path", Kind::Str, Some("enclave-attest")),
    ("vault.role", Kind::Str, Some("enclave-agent")),
    ("vault.kv_mount", Kind::Str, Some("enclave-agents")),
    (
        "vault.secrets",
        Kind::Str,
        Some("hume/api-key,retell/api-key,database/connection,transcription/api-key,pii/pepper"),
    ),
    ("vault.timeout_ms", Kind::Int, Some("10000")),
    ("vault.wrap_ttl_ms", Kind::Int, Some("60000")),
];

/// How the guest logs in to Vault/OpenBao (`vault.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultAuth {
    /// `jwt` (the default): the verifier's token at the JWT auth method.
    /// A bearer token: whoever copies it can log in until it expires (its
    /// `cnf` claim is informational; Vault does not check it).
    Jwt,
    /// `cert`: the verifier's client certificate for the enclave key at
    /// the cert auth method, over mutual TLS: the handshake proves
    /// possession of the attested key (proof of possession).
    Cert,
}

/// How to reach Vault/OpenBao and what to read there.
#[derive(Debug, Clone, PartialEq)]
pub struct VaultConfig {
    /// `None`: no secrets.
    pub addr: Option<Addr>,
    /// The name its TLS certificate must carry.
    pub server_name: String,
    /// The one CA trusted for it (PEM).
    pub ca_pem: String,
    /// How the guest logs in (`vault.auth`).
    pub auth: VaultAuth,
    /// The auth method's mount path (the JWT mount, or the cert mount in
    /// certificate mode).
    pub auth_path: String,
    /// The role (JWT role, or cert role name in certificate mode).
    pub role: String,
    /// The KV v2 mount.
    pub kv_mount: String,
    /// Secrets to read, each `<kv path>/<field>` under the mount (e.g.
    /// `hume/api-key` is field `api-key` of secret `hume`).
    pub secrets: Vec<String>,
    /// Bound on connecting and on each read and write.
    pub timeout: Duration,
    /// TTL of response-wrapping tokens.
    pub wrap_ttl: Duration,
}

pub(super) fn parse(fields: &Fields) -> Result<VaultConfig, ConfigError> {
    let addr = optional_addr(fields, "vault.addr")?;
    let has_addr = addr.is_some();
    let segment = vault_path;
    Ok(VaultConfig {
        addr,
        server_name: server_name(fields, "vault.server_name")?,
        ca_pem: pinned_ca(fields, "vault.ca", has_addr)?,
        auth: fields.parsed("vault.auth", |s| match s {
            "jwt" => Ok(VaultAuth::Jwt),
            "cert" => Ok(VaultAuth::Cert),
            other => Err(format!("{other:?} is neither \"jwt\" nor \"cert\"")),
        })?,
        auth_path: fields.parsed("vault.auth_path", segment)?,
        role: fields.parsed("vault.role", segment)?,
        kv_mount: fields.parsed("vault.kv_mount", segment)?,
        secrets: fields.parsed("vault.secrets", |s| {
            s.split(',')
                .map(|p| segment(p.trim()))
                .collect::<Result<Vec<_>, _>>()
        })?,
        timeout: fields.millis("vault.timeout_ms", 1..=600_000)?,
        wrap_ttl: fields.millis("vault.wrap_ttl_ms", 1000..=3_600_000)?,
    })
}

#[cfg(test)]
mod tests {
    use super::VaultAuth;
    use crate::config::parse;
    use crate::config::testing::{field_error, GOOD};

    #[test]
    fn vault_paths_are_checked() {
        let c = parse(GOOD, "").unwrap();
        assert_eq!(
            c.vault.secrets,
            [
                "hume/api-key",
                "retell/api-key",
                "database/connection",
                "transcription/api-key",
                "pii/pepper"
            ]
        );
        assert_eq!(c.vault.addr, None);
        assert_eq!(c.vault.auth, VaultAuth::Jwt, "JWT stays the default");
        let (field, _, _) = field_error(GOOD, "enclave.vault.auth=mtls");
        assert_eq!(field, "vault.auth");
        let (field, _, reason) = field_error(GOOD, "enclave.vault.secrets=a,../b");
        assert_eq!(field, "vault.secrets");
        assert!(reason.contains("plain Vault path"), "{reason}");
        let (field, _, _) = field_error(GOOD, "enclave.vault.addr=tcp://127.0.0.1:8200");
        assert_eq!(field, "vault.ca", "a Vault address needs its pinned CA");
    }
}
