//! ECDSA P-384 / SHA-384 verification of SEV-SNP report signatures, with
//! fixed-base tables for the generator and for each cached VCEK/VLEK.
//!
//! Why not `p384::ecdsa::VerifyingKey::verify`: it computes `u1·G + u2·Q` as
//! two constant-time 384-bit scalar multiplications (768 doublings), which
//! is right for secret scalars but here every input is public (the digest,
//! the signature, the public key). With a table of `j·16^i·P` (`i < 96`,
//! `1 ≤ j ≤ 15`) per base point, each multiplication is at most 96 mixed
//! additions and no doubling. The tables are built once per key (about 1,500
//! point additions) and kept with the verified
//! chain in the cache, so a warm appraisal pays only for the additions.
//!
//! The arithmetic is `p384`'s (complete addition formulas, so identities
//! and equal points need no special case); only the scalar multiplication
//! strategy is ours, and it is variable-time on public data only. The
//! equation checked is the one of SEC 1 v2 §4.1.4 / FIPS 186-5 §6.4.2:
//! `r, s ∈ [1, n-1]`, `e = SHA-384(m)` reduced mod n, `R = e·s⁻¹·G + r·s⁻¹·Q`,
//! `R ≠ O`, `x(R) mod n == r`. A differential test against
//! `p384::ecdsa::VerifyingKey` covers it.

use std::sync::OnceLock;

use p384::elliptic_curve::group::Group;
use p384::elliptic_curve::ops::{Invert, Reduce};
use p384::elliptic_curve::point::AffineCoordinates;
use p384::{FieldBytes, ProjectivePoint, PublicKey, Scalar, U384};
use sha2::{Digest, Sha384};

/// 4-bit windows over a 384-bit scalar.
const WINDOWS: usize = 96;
/// Non-zero digits per window.
const DIGITS: usize = 15;

/// `rows[i][j - 1] = j · 16^i · P` for one base point `P`. Projective: with
/// `p384`'s complete formulas a mixed addition saves only about a tenth of
/// a projective one, and affine tables would need 1,440 field inversions
/// per key (`p384` 0.13 has no batch inversion for its field).
pub(crate) struct FixedBaseTable {
    rows: Vec<[ProjectivePoint; DIGITS]>,
}

impl FixedBaseTable {
    /// The table of `base`.
    pub fn new(base: ProjectivePoint) -> Self {
        let mut rows = Vec::with_capacity(WINDOWS);
        let mut b = base;
        for _ in 0..WINDOWS {
            let mut row = [b; DIGITS];
            for j in 1..DIGITS {
                row[j] = row[j - 1] + b;
            }
            b = row[DIGITS - 1] + b;
            rows.push(row);
        }
        FixedBaseTable { rows }
    }

    /// Adds `k · P` to `acc` (variable time: `k` must be public).
    fn mul_add(&self, k: &Scalar, acc: &mut ProjectivePoint) {
        let bytes = k.to_bytes(); // big-endian
        for (i, row) in self.rows.iter().enumerate() {
            let byte = bytes.get(47 - i / 2).copied().unwrap_or(0);
            let digit = if i % 2 == 0 { byte & 0x0f } else { byte >> 4 };
            if let Some(p) = usize::from(digit).checked_sub(1).and_then(|j| row.get(j)) {
                *acc += p;
            }
        }
    }
}

/// The generator's table: a constant of the curve, computed on first use.
fn generator_table() -> &'static FixedBaseTable {
    static TABLE: OnceLock<FixedBaseTable> = OnceLock::new();
    TABLE.get_or_init(|| FixedBaseTable::new(ProjectivePoint::generator()))
}

/// A P-384 public key prepared for repeated verification.
pub(crate) struct PreparedKey {
    table: FixedBaseTable,
}

impl PreparedKey {
    /// Builds the key's table.
    pub fn new(key: &PublicKey) -> Self {
        PreparedKey {
            table: FixedBaseTable::new(key.to_projective()),
        }
    }

    /// Verifies an ECDSA P-384 signature with SHA-384 over `msg`; `r` and
    /// `s` are big-endian.
    pub fn verify(&self, msg: &[u8], r: &[u8; 48], s: &[u8; 48]) -> bool {
        let Ok(sig) = p384::ecdsa::Signature::from_scalars(*r, *s) else {
            return false; // r or s is zero or not below n
        };
        let (r, s) = sig.split_scalars();
        let e = <Scalar as Reduce<U384>>::reduce_bytes(&Sha384::digest(msg));
        let s_inv = *s.invert_vartime();
        let u1 = e * s_inv;
        let u2 = *r * s_inv;
        let mut point = ProjectivePoint::IDENTITY;
        generator_table().mul_add(&u1, &mut point);
        self.table.mul_add(&u2, &mut point);
        if bool::from(point.is_identity()) {
            return false;
        }
        let x: FieldBytes = point.to_affine().x();
        <Scalar as Reduce<U384>>::reduce_bytes(&x) == *r
    }
}

/// A one-off verification (no table): the report signature checked with
/// the endorsement certificate's key before its chain is verified, where
/// building a [`PreparedKey`] would cost more than the verification.
pub(crate) fn verify_once(key: &PublicKey, msg: &[u8], r: &[u8; 48], s: &[u8; 48]) -> bool {
    use p384::ecdsa::signature::Verifier;
    let Ok(sig) = p384::ecdsa::Signature::from_scalars(*r, *s) else {
        return false; // r or s is zero or not below n
    };
    p384::ecdsa::VerifyingKey::from(key)
        .verify(msg, &sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::ecdsa::signature::{Signer, Verifier};
    use p384::ecdsa::{Signature, SigningKey, VerifyingKey};

    #[test]
    fn table_multiplication_matches_p384() {
        let k = Scalar::from(0x1234_5678_9abc_def0_u64) * Scalar::from(0xfedc_ba98_7654_3210_u64);
        let mut acc = ProjectivePoint::IDENTITY;
        generator_table().mul_add(&k, &mut acc);
        assert_eq!(
            acc.to_affine(),
            (ProjectivePoint::generator() * k).to_affine()
        );
        let mut acc = ProjectivePoint::IDENTITY;
        generator_table().mul_add(&-Scalar::ONE, &mut acc);
        assert_eq!(acc.to_affine(), (-ProjectivePoint::generator()).to_affine());
    }

    #[test]
    fn agrees_with_p384_verify_on_valid_and_tampered_signatures() {
        for seed in 1u8..=6 {
            let mut sk_bytes = [seed; 48];
            sk_bytes[0] = 0x01;
            let sk = SigningKey::from_bytes(&sk_bytes.into()).unwrap();
            let vk = VerifyingKey::from(&sk);
            let prepared = PreparedKey::new(&PublicKey::from(&vk));
            for m in 0u8..4 {
                let msg = vec![m ^ seed; 672];
                let sig: Signature = sk.sign(&msg);
                let (r, s) = (sig.r().to_bytes(), sig.s().to_bytes());
                let (r, s): ([u8; 48], [u8; 48]) = (r.into(), s.into());
                assert!(prepared.verify(&msg, &r, &s));
                assert!(vk.verify(&msg, &sig).is_ok());
                let mut bad = msg.clone();
                bad[usize::from(m) * 7] ^= 1;
                assert_eq!(prepared.verify(&bad, &r, &s), vk.verify(&bad, &sig).is_ok());
                let mut r2 = r;
                r2[47] ^= 1;
                let expect = Signature::from_scalars(r2, s)
                    .map(|g| vk.verify(&msg, &g).is_ok())
                    .unwrap_or(false);
                assert_eq!(prepared.verify(&msg, &r2, &s), expect);
                assert!(!prepared.verify(&msg, &[0; 48], &s));
                assert!(!prepared.verify(&msg, &r, &[0xff; 48]));
            }
        }
    }
}
