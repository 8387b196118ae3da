//! What the boot sequence, the renewal, the host channel and the call
//! service share once the enclave is ready: the secret store, the
//! attestation state and the metrics. One `Arc<Shared>`; every field guards
//! itself, so no lock is held across network I/O.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::attest::TrustedTime;
use crate::metrics::Metrics;
use crate::secrets::SecretStore;

/// The shared state.
pub struct Shared {
    secrets: Mutex<SecretStore>,
    attestation: Mutex<AttestationState>,
    /// Time as the verifier sees it (certificate checks, expiries).
    pub time: Arc<TrustedTime>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// `sim`, `snp` or `tdx`: where evidence comes from.
    pub tee: &'static str,
}

/// The attestation as the enclave stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationState {
    /// Attested with secrets held, or withdrawn and why.
    pub health: Health,
    /// Whether the enclave ever attested (development images may not).
    pub attested: bool,
    /// The attestation token's expiry (verifier time, Unix seconds).
    pub expires_at: u64,
    /// The Vault token's expiry (verifier time, Unix seconds; 0: none).
    pub vault_expires_at: u64,
    /// Successful renewals so far.
    pub renewals: u64,
}

/// How the enclave stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Attested, secrets held.
    Serving,
    /// Secrets withdrawn; the reason (no secret in it).
    Withdrawn(String),
}

impl Shared {
    /// The state right after boot.
    pub fn new(store: SecretStore, time: Arc<TrustedTime>, tee: &'static str, attestation: AttestationState) -> Arc<Shared> {
        Arc::new(Shared { secrets: Mutex::new(store), attestation: Mutex::new(attestation), time, metrics: Metrics::default(), tee })
    }

    /// The secret store. Hold the guard briefly: never across I/O.
    pub fn secrets(&self) -> MutexGuard<'_, SecretStore> {
        // A poisoned lock cannot happen (panic = abort); take the data anyway.
        self.secrets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of one secret in a zeroizing buffer, for the duration of a
    /// request; `None` if it is not held (never provisioned or withdrawn).
    pub fn secret(&self, name: &str) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        self.secrets().get(name).map(|v| zeroize::Zeroizing::new(v.to_vec()))
    }

    /// The attestation state.
    pub fn attestation(&self) -> AttestationState {
        self.attestation.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the attestation state.
    pub fn update_attestation(&self, f: impl FnOnce(&mut AttestationState)) {
        f(&mut self.attestation.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Whether calls may be served: attested (or a development image with
    /// no verifier) and the secrets not withdrawn.
    pub fn serving(&self) -> Result<(), String> {
        match self.attestation().health {
            Health::Serving => Ok(()),
            Health::Withdrawn(why) => Err(why),
        }
    }
}
