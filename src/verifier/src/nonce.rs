//! Single-use challenge nonces that need no shared state between replicas.
//!
//! A nonce is 32 bytes: `expiry (u64 BE) ‖ random (8) ‖ tag (16)`, where
//! `tag = HMAC-SHA256(key, DOMAIN ‖ expiry ‖ random ‖ exporter)[..16]` and
//! `exporter` is the TLS exporter of the connection that asked for it.
//!
//! - Any replica holding `key` verifies a nonce without a database.
//! - The nonce is bound to its TLS connection: presented on another
//!   connection, the tag does not verify. A load balancer forwards one TCP
//!   connection to one replica, so "used on this connection" is local state:
//!   the per-replica used-set below makes it single-use.
//! - Expiry is the verifier's clock (at most 5 minutes ahead).

use std::collections::HashMap;
use std::sync::Mutex;

use ring::hmac;

const DOMAIN: &[u8] = b"enclave-init/verifier-nonce/v1\0";
/// Nonce length.
pub const NONCE_LEN: usize = 32;
/// The longest a nonce may live.
pub const MAX_TTL_SECS: u64 = 300;

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Wrong length.
    Length,
    /// Not issued by us for this connection.
    Forged,
    /// Past its expiry.
    Expired,
    /// Already used.
    Replayed,
}

impl NonceError {
    /// The check name used in denials and metrics.
    pub fn check(self) -> &'static str {
        match self {
            NonceError::Length => "nonce.length",
            NonceError::Forged => "nonce.binding",
            NonceError::Expired => "nonce.expired",
            NonceError::Replayed => "nonce.replayed",
        }
    }
}

/// Issues and redeems nonces.
pub struct Nonces {
    key: hmac::Key,
    ttl_secs: u64,
    used: Mutex<HashMap<[u8; NONCE_LEN], u64>>,
}

impl Nonces {
    /// `key_bytes` must be shared by every replica; `ttl_secs` ≤ 300.
    pub fn new(key_bytes: &[u8], ttl_secs: u64) -> Nonces {
        Nonces {
            key: hmac::Key::new(hmac::HMAC_SHA256, key_bytes),
            ttl_secs: ttl_secs.clamp(1, MAX_TTL_SECS),
            used: Mutex::new(HashMap::new()),
        }
    }

    fn tag(&self, expiry: &[u8; 8], random: &[u8; 8], exporter: &[u8]) -> [u8; 16] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(DOMAIN);
        ctx.update(expiry);
        ctx.update(random);
        ctx.update(exporter);
        let mut out = [0u8; 16];
        out.copy_from_slice(&ctx.sign().as_ref()[..16]);
        out
    }

    /// A nonce for the connection with this `exporter`, valid until
    /// `now + ttl`. Returns the nonce and its expiry.
    pub fn issue(&self, now: u64, exporter: &[u8], random: [u8; 8]) -> ([u8; NONCE_LEN], u64) {
        let expiry = now.saturating_add(self.ttl_secs);
        let e = expiry.to_be_bytes();
        let mut n = [0u8; NONCE_LEN];
        n[..8].copy_from_slice(&e);
        n[8..16].copy_from_slice(&random);
        n[16..].copy_from_slice(&self.tag(&e, &random, exporter));
        (n, expiry)
    }

    /// Redeems a nonce presented on the connection with this `exporter`.
    pub fn redeem(&self, nonce: &[u8], now: u64, exporter: &[u8]) -> Result<(), NonceError> {
        let n: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| NonceError::Length)?;
        let mut e = [0u8; 8];
        e.copy_from_slice(&n[..8]);
        let mut r = [0u8; 8];
        r.copy_from_slice(&n[8..16]);
        let want = self.tag(&e, &r, exporter);
        // Constant time: no early exit on the first differing byte.
        if want
            .iter()
            .zip(&n[16..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
        {
            return Err(NonceError::Forged);
        }
        let expiry = u64::from_be_bytes(e);
        if now >= expiry {
            return Err(NonceError::Expired);
        }
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.retain(|_, exp| *exp > now);
        if used.insert(n, expiry).is_some() {
            return Err(NonceError::Replayed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_works_once_on_its_connection_until_it_expires() {
        let n = Nonces::new(b"k", 300);
        let (nonce, exp) = n.issue(1000, b"conn-a", [1; 8]);
        assert_eq!(exp, 1300);
        assert_eq!(n.redeem(&nonce, 1001, b"conn-b"), Err(NonceError::Forged));
        assert_eq!(n.redeem(&nonce, 1300, b"conn-a"), Err(NonceError::Expired));
        assert_eq!(n.redeem(&nonce, 1299, b"conn-a"), Ok(()));
        assert_eq!(n.redeem(&nonce, 1299, b"conn-a"), Err(NonceError::Replayed));
        assert_eq!(
            n.redeem(&nonce[..31], 1001, b"conn-a"),
            Err(NonceError::Length)
        );
    }

    #[test]
    fn another_replica_with_the_key_accepts_and_tampering_is_caught() {
        let a = Nonces::new(b"shared", 60);
        let b = Nonces::new(b"shared", 60);
        let (mut nonce, _) = a.issue(10, b"x", [7; 8]);
        assert_eq!(b.redeem(&nonce, 11, b"x"), Ok(()));
        let (n2, _) = a.issue(10, b"x", [8; 8]);
        let mut later = n2;
        later[7] ^= 1; // push the expiry
        assert_eq!(a.redeem(&later, 11, b"x"), Err(NonceError::Forged));
        nonce[20] ^= 1;
        assert_eq!(
            Nonces::new(b"other", 60).redeem(&n2, 11, b"x"),
            Err(NonceError::Forged)
        );
        assert_eq!(a.redeem(&nonce, 11, b"x"), Err(NonceError::Forged));
    }

    #[test]
    fn ttl_is_capped_at_five_minutes() {
        let n = Nonces::new(b"k", 3600);
        assert_eq!(n.issue(0, b"", [0; 8]).1, 300);
    }
}
