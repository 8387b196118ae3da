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
//!
//! The used-set is a ring of per-second buckets indexed by expiry
//! ([`UsedSet`]): inserting is one hash insert, forgetting the expired is
//! clearing the buckets whose second has passed (amortised O(1), never a
//! scan of the live entries), and the entry count has a hard cap: when
//! full, a redemption is refused (`nonce.capacity`) rather than the set
//! growing or an unexpired nonce being forgotten (which would let it be
//! replayed).

use std::collections::HashSet;
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
    /// The used-set is full (the cap on unexpired redeemed nonces).
    Capacity,
}

impl NonceError {
    /// The check name used in denials and metrics.
    pub fn check(self) -> &'static str {
        match self {
            NonceError::Length => "nonce.length",
            NonceError::Forged => "nonce.binding",
            NonceError::Expired => "nonce.expired",
            NonceError::Replayed => "nonce.replayed",
            NonceError::Capacity => "nonce.capacity",
        }
    }
}

/// The default cap on redeemed, unexpired nonces: 2^20 (about 56 MiB of
/// entries at most), 3,500 attestations a second for the full 300 s.
pub const DEFAULT_USED_CAP: usize = 1 << 20;

/// Ring slots: one per second of the longest lifetime, plus the current.
const SLOTS_U64: u64 = MAX_TTL_SECS + 1;
const SLOTS: usize = 301;
const _: () = assert!(SLOTS as u64 == SLOTS_U64);

/// The ring slot of an expiry second.
fn slot(second: u64) -> usize {
    // Below SLOTS, so it fits any usize.
    usize::try_from(second % SLOTS_U64).unwrap_or(0)
}

/// Redeemed nonces, bucketed by their expiry second.
pub struct UsedSet {
    /// `buckets[expiry % SLOTS]` holds the nonces expiring at that second;
    /// `stamps` says which second each bucket holds now.
    buckets: Vec<HashSet<[u8; NONCE_LEN]>>,
    stamps: Vec<u64>,
    len: usize,
    cap: usize,
    /// Every bucket of a second before this one has been cleared.
    swept_to: u64,
}

impl UsedSet {
    /// An empty set holding at most `cap` entries.
    pub fn new(cap: usize) -> UsedSet {
        UsedSet {
            buckets: (0..SLOTS).map(|_| HashSet::new()).collect(),
            stamps: vec![0; SLOTS],
            len: 0,
            cap,
            swept_to: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the nonces that expired at or before `now`: each bucket of
    /// a second passed since the last sweep is cleared once (at most
    /// [`SLOTS`] per call, however long the gap).
    fn sweep(&mut self, now: u64) {
        if now < self.swept_to {
            return;
        }
        let from = self.swept_to.max(now.saturating_sub(SLOTS_U64 - 1));
        for second in from..=now {
            let i = slot(second);
            if self.stamps[i] <= now {
                self.len -= self.buckets[i].len();
                self.buckets[i].clear();
                // A bucket reused for a later second is not cleared.
            }
        }
        self.swept_to = now.saturating_add(1);
    }

    /// Records `nonce`, valid until `expiry` (> `now`, at most
    /// [`MAX_TTL_SECS`] ahead). `Replayed` if it is already held,
    /// `Capacity` if the set is full.
    pub fn insert(
        &mut self,
        nonce: [u8; NONCE_LEN],
        expiry: u64,
        now: u64,
    ) -> Result<(), NonceError> {
        self.sweep(now);
        let i = slot(expiry);
        if self.stamps[i] != expiry {
            // The bucket held an older second, swept already (expiry is
            // at most SLOTS-1 ahead, so no live second shares a slot).
            self.len -= self.buckets[i].len();
            self.buckets[i].clear();
            self.stamps[i] = expiry;
        }
        if self.buckets[i].contains(&nonce) {
            return Err(NonceError::Replayed);
        }
        if self.len >= self.cap {
            return Err(NonceError::Capacity);
        }
        self.buckets[i].insert(nonce);
        self.len += 1;
        Ok(())
    }
}

/// Issues and redeems nonces.
pub struct Nonces {
    key: hmac::Key,
    ttl_secs: u64,
    used: Mutex<UsedSet>,
}

impl Nonces {
    /// `key_bytes` must be shared by every replica; `ttl_secs` ≤ 300.
    pub fn new(key_bytes: &[u8], ttl_secs: u64) -> Nonces {
        Nonces {
            key: hmac::Key::new(hmac::HMAC_SHA256, key_bytes),
            ttl_secs: ttl_secs.clamp(1, MAX_TTL_SECS),
            used: Mutex::new(UsedSet::new(DEFAULT_USED_CAP)),
        }
    }

    /// Caps the used-set at `cap` entries (tests; memory budgets).
    pub fn with_used_cap(self, cap: usize) -> Nonces {
        Nonces {
            used: Mutex::new(UsedSet::new(cap)),
            ..self
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
        // A tag that verifies was made with our key, so the expiry is one
        // we issued: at most MAX_TTL_SECS after its issue, which was no
        // later than now unless the clock stepped back. Refuse anything
        // further out rather than let it share a bucket with a live second.
        if expiry - now > MAX_TTL_SECS {
            return Err(NonceError::Forged);
        }
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(n, expiry, now)
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

    /// Replay within the lifetime is caught in the bucketed set; at the
    /// expiry second the entry is swept (and the nonce is refused as
    /// expired by then anyway); the count follows.
    #[test]
    fn the_used_set_forgets_by_expiry_second() {
        let mut u = UsedSet::new(10);
        assert_eq!(u.insert([1; 32], 1010, 1000), Ok(()));
        assert_eq!(u.insert([2; 32], 1011, 1000), Ok(()));
        assert_eq!(u.insert([1; 32], 1010, 1005), Err(NonceError::Replayed));
        assert_eq!(u.len(), 2);
        // At 1010 the 1010 bucket is cleared, the 1011 one kept.
        assert_eq!(u.insert([3; 32], 1300, 1010), Ok(()));
        assert_eq!(u.len(), 2);
        assert_eq!(u.insert([2; 32], 1011, 1010), Err(NonceError::Replayed));
        // Long after, everything before is gone, in one sweep of at most
        // one ring, and a bucket reused for a later second is clean.
        assert_eq!(u.insert([4; 32], 5000 + 301, 5000), Ok(()));
        assert_eq!(u.len(), 1);
        assert_eq!(u.insert([3; 32], 5000 + 300, 5000), Ok(()));
    }

    /// Full: a new nonce is refused with `Capacity` (nothing unexpired is
    /// dropped to make room, which would allow its replay), a replay is
    /// still called a replay, and room returns when a second expires.
    #[test]
    fn the_used_set_is_bounded_and_says_so() {
        let n = Nonces::new(b"k", 10).with_used_cap(3);
        let nonces: Vec<_> = (0..4u8).map(|i| n.issue(100, b"c", [i; 8]).0).collect();
        for x in &nonces[..3] {
            assert_eq!(n.redeem(x, 101, b"c"), Ok(()));
        }
        assert_eq!(n.redeem(&nonces[3], 101, b"c"), Err(NonceError::Capacity));
        assert_eq!(n.redeem(&nonces[0], 101, b"c"), Err(NonceError::Replayed));
        let (later, _) = n.issue(105, b"c", [9; 8]);
        assert_eq!(n.redeem(&later, 110, b"c"), Ok(()));
        assert_eq!(NonceError::Capacity.check(), "nonce.capacity");
    }

    /// Many redemptions across the lifetime keep the set at the nonces
    /// still live: after 2,000 s of one nonce a second with a 300 s
    /// lifetime, 300 are held, not 2,000.
    #[test]
    fn the_used_set_holds_only_live_nonces() {
        let n = Nonces::new(b"k", 300);
        for t in 0..2000u64 {
            let (x, _) = n.issue(t, b"c", t.to_be_bytes());
            assert_eq!(n.redeem(&x, t, b"c"), Ok(()));
        }
        assert_eq!(n.used.lock().unwrap().len(), 300);
    }

    #[test]
    fn ttl_is_capped_at_five_minutes() {
        let n = Nonces::new(b"k", 3600);
        assert_eq!(n.issue(0, b"", [0; 8]).1, 300);
    }
}
