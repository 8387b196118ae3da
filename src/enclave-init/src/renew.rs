//! Step 10: before the attestation token or the Vault token expires,
//! re-attest and provision again (the call service's certificate is signed
//! again too, and swapped in); if that fails, fail closed.
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
use crate::service::tls::ServingCert;
use crate::state::{Health, Shared};
use crate::vault;

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
    /// The call service's certificate request and live certificate: each
    /// renewal has Vault sign the request again and swaps the result in.
    serving: Option<(vault::CertRequest, Arc<ServingCert>)>,
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
        serving: Option<(vault::CertRequest, Arc<ServingCert>)>,
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
            serving,
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

    /// Renews now: re-attest, log in, reload the secrets into a fresh store
    /// and swap it in (calls keep being served meanwhile). On failure the
    /// secrets are zeroized and health says why.
    pub fn run(&mut self, tee: &mut dyn EvidenceSource, shared: &Shared) {
        shared.metrics.attestation_attempt();
        let result = attest::attest_once(&self.verifier, &self.verifier_addr, &self.time, &self.key, tee)
            .map_err(|e| (e.class(), format!("attestation: {e}")))
            .and_then(|a| {
                let mut fresh = SecretStore::new().map_err(|e| ("secrets", e.to_string()))?;
                let request = self.serving.as_ref().map(|(r, _)| r);
                let p = vault::provision(&self.vault, &self.vault_addr, &self.time, &a, &mut fresh, request).map_err(|e| ("vault", e.to_string()))?;
                if let (Some((_, cert)), Some(chain)) = (&self.serving, &p.serving_chain) {
                    cert.replace(chain).map_err(|e| ("vault", e))?;
                }
                Ok((a, p, fresh))
            });
        match result {
            Ok((a, p, mut fresh)) => {
                // The old values drop (zeroized) with `fresh` after the swap.
                std::mem::swap(&mut *shared.secrets(), &mut fresh);
                drop(fresh);
                self.failures = 0;
                let now = self.time.now_secs();
                let mut renewals = 0;
                shared.update_attestation(|s| {
                    s.health = Health::Serving;
                    s.expires_at = a.expires_at;
                    s.vault_expires_at = now.saturating_add(p.token_lease_secs);
                    s.renewals += 1;
                    renewals = s.renewals;
                });
                log::info!(renewals = renewals, secrets = p.count; "re-attested and secrets renewed");
                self.schedule(a.expires_at, p.token_lease_secs);
            }
            Err((class, reason)) => {
                shared.secrets().clear();
                shared.metrics.attestation_failure(class);
                self.failures += 1;
                log::error!(reason = reason.as_str(); "renewal failed: secrets withdrawn");
                shared.update_attestation(|s| s.health = Health::Withdrawn(reason));
                let backoff = Duration::from_secs(1u64 << self.failures.min(5));
                self.next_at = Instant::now() + backoff;
            }
        }
    }
}
