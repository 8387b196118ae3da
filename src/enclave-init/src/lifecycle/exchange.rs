//! One attempt: attest to the verifier, log in to Vault with the token,
//! read the secrets into a fresh locked store, have the serving key's
//! request signed, revoke the Vault token; then the trust deadline of what
//! was obtained: `min(token expiry, Vault lease end)`, both on the
//! monotonic clock (the token's from the verifier-anchored instant the
//! challenge was sent, the lease's from the instant the login was sent, so
//! both err early).
//!
//! Everything here runs under one deadline for the whole attempt; a failure
//! says whether another attempt may help ([`ExchangeError`] is
//! [`Classify`]). Each call starts from nothing: a new challenge, new
//! evidence, a new Vault login.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use evidence::EvidenceSource;

use super::clock::Mono;
use crate::attest::{self, AttestError, Limits, TrustedTime};
use crate::config::{VaultAuth, VaultConfig, VerifierConfig};
use crate::keys::EnclaveKey;
use crate::retry::{Class, Classify};
use crate::secrets::{SecretError, SecretStore};
use crate::vault::{self, CertRequest, VaultError};

/// The evidence source, shared by the supervisor (renewals) and the
/// control channel (operator evidence, which only ever tries the lock).
pub type SharedTee = Arc<Mutex<Box<dyn EvidenceSource>>>;

/// What every attempt needs, fixed at boot.
pub struct Exchange {
    /// The verifier.
    pub verifier: VerifierConfig,
    /// Its address.
    pub verifier_addr: transport::Addr,
    /// Vault (`None`: attest only, nothing to provision: development).
    pub vault: Option<(VaultConfig, transport::Addr)>,
    /// The enclave key the evidence binds.
    pub key: EnclaveKey,
    /// The serving key's certificate request, signed again at each attempt.
    pub cert_request: Option<CertRequest>,
    /// Token and clock limits.
    pub limits: Limits,
    /// Verifier-anchored time.
    pub time: Arc<TrustedTime>,
    /// The evidence source.
    pub tee: SharedTee,
}

/// What a successful attempt yields.
pub struct Grant {
    /// The secrets, in their own locked store.
    pub store: SecretStore,
    /// Trust ends here.
    pub deadline: Mono,
    /// What set the deadline: `token` or `vault_lease`.
    pub bound_by: &'static str,
    /// The attestation (its token already spent on the login).
    pub attestation: attest::Attestation,
    /// The serving certificate chain, when requested.
    pub serving_chain: Option<String>,
    /// Secrets held.
    pub count: usize,
    /// The secrets by path and version (for the audit trail).
    pub released: Vec<super::Held>,
    /// The Vault lease.
    pub lease: Duration,
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The verifier exchange.
    #[error("attestation")]
    Attest(#[source] AttestError),
    /// Vault.
    #[error("provisioning")]
    Vault(#[source] VaultError),
    /// A fresh store could not be allocated.
    #[error("secret store")]
    Store(#[source] SecretError),
}

impl Classify for ExchangeError {
    fn class(&self) -> Class {
        match self {
            ExchangeError::Attest(e) => e.class(),
            ExchangeError::Vault(e) => e.class(),
            ExchangeError::Store(_) => Class::Final,
        }
    }
}

impl ExchangeError {
    /// A fixed label for metrics (`unreachable`, `denied`, `vault_refused`…).
    pub fn label(&self) -> &'static str {
        match self {
            ExchangeError::Attest(e) => e.label(),
            ExchangeError::Vault(e) => e.label(),
            ExchangeError::Store(_) => "secrets",
        }
    }
}

impl Exchange {
    /// One attempt, all of it before `deadline`.
    pub fn run(&self, deadline: Mono) -> Result<Grant, ExchangeError> {
        let attestation = {
            // The lock is ours alone for the attempt: the control channel
            // only ever tries it, so it cannot hold the supervisor up.
            let mut tee = self.tee.lock().unwrap_or_else(|p| p.into_inner());
            let cert_mode = self
                .vault
                .as_ref()
                .is_some_and(|(cfg, _)| cfg.auth == VaultAuth::Cert);
            attest::attest_once(
                &self.verifier,
                &self.verifier_addr,
                &self.time,
                &self.key,
                tee.as_mut(),
                deadline,
                self.limits,
                cert_mode,
            )
            .map_err(ExchangeError::Attest)?
        };
        crate::info_always!(tee = attestation.tee.as_str(), expires_at = attestation.expires_at, clock_drift_ms = attestation.drift_ms.unwrap_or(0); "attested");
        let mut store = SecretStore::new().map_err(ExchangeError::Store)?;
        let (deadline_at, bound_by, serving_chain, count, released, lease) = match &self.vault {
            Some((cfg, addr)) => {
                let login = match (&cfg.auth, &attestation.client_certificate) {
                    (VaultAuth::Cert, Some(chain_pem)) => vault::Login::Cert {
                        chain_pem,
                        key: &self.key,
                    },
                    // attest_once refuses an answer without the certificate
                    // that certificate mode asked for.
                    (VaultAuth::Cert, None) => {
                        return Err(ExchangeError::Vault(VaultError::Protocol(
                            "certificate mode: the verifier issued no client certificate".into(),
                        )))
                    }
                    (VaultAuth::Jwt, _) => vault::Login::Jwt(&attestation.token),
                };
                let p = vault::provision_once(
                    cfg,
                    addr,
                    &self.time,
                    &login,
                    &mut store,
                    self.cert_request.as_ref(),
                    deadline,
                )
                .map_err(ExchangeError::Vault)?;
                let (at, by) = match p.lease_deadline {
                    Some(lease_end) if lease_end < attestation.deadline => {
                        // Said once per attempt: the operator may want the
                        // lease and the token lifetimes aligned.
                        crate::info_always!(lease_secs = p.lease.as_secs(); "the Vault lease is shorter than the token: trust ends with the lease");
                        (lease_end, "vault_lease")
                    }
                    Some(_) => (attestation.deadline, "token"),
                    None => {
                        crate::warn_always!(
                            "Vault gave the login no lease: trust is bounded by the token alone"
                        );
                        (attestation.deadline, "token")
                    }
                };
                (at, by, p.serving_chain, p.count, p.released, p.lease)
            }
            None => (
                attestation.deadline,
                "token",
                None,
                0,
                Vec::new(),
                Duration::ZERO,
            ),
        };
        Ok(Grant {
            store,
            deadline: deadline_at,
            bound_by,
            attestation,
            serving_chain,
            count,
            released,
            lease,
        })
    }
}
