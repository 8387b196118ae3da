//! Step 10: before the attestation token or the Vault token expires,
//! re-attest and provision again; if that fails, fail closed.
//!
//! A renewal is a complete pass of steps 4-8: fresh nonce and evidence, a new
//! attestation token, a new Vault login, the secrets read again. It does not
//! reuse the old Vault token, so a token Vault revoked in the meantime costs
//! nothing. It runs at two thirds of the shorter remaining lifetime (the
//! verifier's clock, not the guest's). On failure every secret is zeroized
//! at once, and health says why; further attempts follow with backoff, and a
//! success restores service.

use std::sync::Arc;
use std::time::{Duration, Instant};

use evidence::EvidenceSource;

use crate::attest::{self, Attestation, TrustedTime};
use crate::config::{VaultConfig, VerifierConfig};
use crate::keys::EnclaveKey;
use crate::secrets::SecretStore;
use crate::vault;

/// How the enclave stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Attested, secrets held.
    Serving,
    /// Secrets withdrawn; the reason (no secret in it).
    Withdrawn(String),
}

/// The renewal schedule and what it needs.
pub struct Renewal {
    verifier: VerifierConfig,
    verifier_addr: transport::Addr,
    vault: VaultConfig,
    vault_addr: transport::Addr,
    time: Arc<TrustedTime>,
    key: EnclaveKey,
    next_at: Instant,
    failures: u32,
    /// Successful renewals so far.
    pub renewals: u64,
    /// The current state.
    pub health: Health,
    /// Attestation expiry (verifier time, Unix seconds).
    pub attestation_expires_at: u64,
}

impl Renewal {
    /// Schedules the first renewal after a successful boot.
    #[allow(clippy::too_many_arguments, reason = "one call site: the boot sequence hands over what it built")]
    pub fn new(
        verifier: VerifierConfig,
        verifier_addr: transport::Addr,
        vault: VaultConfig,
        vault_addr: transport::Addr,
        time: Arc<TrustedTime>,
        key: EnclaveKey,
        attestation: &Attestation,
        vault_lease_secs: u64,
    ) -> Renewal {
        let mut r = Renewal {
            verifier,
            verifier_addr,
            vault,
            vault_addr,
            time,
            key,
            next_at: Instant::now(),
            failures: 0,
            renewals: 0,
            health: Health::Serving,
            attestation_expires_at: attestation.expires_at,
        };
        r.schedule(attestation.expires_at, vault_lease_secs);
        r
    }

    fn schedule(&mut self, expires_at: u64, lease_secs: u64) {
        let remaining = expires_at.saturating_sub(self.time.now_secs());
        let lifetime = if lease_secs > 0 { remaining.min(lease_secs) } else { remaining };
        let wait = Duration::from_millis(lifetime.saturating_mul(1000) * 2 / 3).max(Duration::from_secs(1));
        self.next_at = Instant::now() + wait;
        log::info!(in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX); "next re-attestation scheduled");
    }

    /// Time until the next renewal is due.
    pub fn due_in(&self) -> Duration {
        self.next_at.saturating_duration_since(Instant::now())
    }

    /// Renews now: re-attest, log in, reload the secrets. On failure the
    /// secrets are zeroized and health says why.
    pub fn run(&mut self, tee: &mut dyn EvidenceSource, store: &mut SecretStore) {
        let result = attest::attest_once(&self.verifier, &self.verifier_addr, &self.time, &self.key, tee)
            .map_err(|e| format!("attestation: {e}"))
            .and_then(|a| {
                let p = vault::provision(&self.vault, &self.vault_addr, &self.time, &a, store).map_err(|e| e.to_string())?;
                Ok((a, p))
            });
        match result {
            Ok((a, p)) => {
                self.renewals += 1;
                self.failures = 0;
                self.health = Health::Serving;
                self.attestation_expires_at = a.expires_at;
                log::info!(renewals = self.renewals, secrets = p.count; "re-attested and secrets renewed");
                self.schedule(a.expires_at, p.token_lease_secs);
            }
            Err(reason) => {
                store.clear();
                self.failures += 1;
                log::error!(reason = reason.as_str(); "renewal failed: secrets withdrawn");
                self.health = Health::Withdrawn(reason);
                let backoff = Duration::from_secs(1u64 << self.failures.min(5));
                self.next_at = Instant::now() + backoff;
            }
        }
    }
}
