//! The simulated PSP: signs SEV-SNP ATTESTATION_REPORTs (version 3, Milan
//! layout; `shared/docs/tee-formats.md` §1.1-1.3) with the simulation VCEK.
//!
//! Every report carries the launch measurement the PSP was configured with,
//! the VCEK's TCB in all four TCB fields and its hwID as CHIP_ID, so a
//! verifier's checks run exactly as on hardware; only the root differs.

use p384::ecdsa::signature::Signer as _;
use rand_core::{OsRng, RngCore as _};
use tee_formats::snp::{AttestationReport, GuestPolicy, KeyInfo, PlatformInfo, Signature};
use wire::{CertKind, Certificate, EvidenceBundle, Tee};

use crate::state::Chain;

/// Report VERSION: 3, as Milan firmware 1.55 writes (CPUID bytes present).
pub const REPORT_VERSION: u32 = 3;
/// The default guest POLICY: SMT allowed, reserved bit 17 set, ABI 0.0;
/// no debug, no migration agent.
pub const DEFAULT_POLICY: u64 = 0x30000;
/// SIGNATURE_ALGO 1: ECDSA P-384 with SHA-384.
pub const SIGNATURE_ALGO_ECDSA_P384_SHA384: u32 = 1;
/// The `provider` of the evidence bundles it answers with.
pub const PROVIDER: &str = "sim-psp";

/// PLATFORM_INFO of a real Milan v3 report (`shared/fixtures/snp/milan-v3-vlek-trustee`):
/// SMT_EN, TSME_EN, ECC_EN, ALIAS_CHECK_COMPLETE.
const PLATFORM_INFO: u64 = 0x27;
/// Milan B0: CPUID family 0x19, model 0x01, stepping 1 (matches the VCEK's
/// productName "Milan-B0").
const CPUID: (u8, u8, u8) = (0x19, 0x01, 0x01);
/// Firmware 1.55.29 (build, minor, major), that of the same real report.
const FIRMWARE: (u8, u8, u8) = (29, 55, 1);
/// Bit 17 of POLICY is reserved and must be 1 (tee-formats.md §1.2).
const POLICY_RESERVED_ONE: u64 = 1 << 17;

/// Why a report was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    /// VMPL outside 0..=3.
    #[error("vmpl {got} is not 0..=3")]
    Vmpl {
        /// The VMPL asked for.
        got: u32,
    },
    /// A POLICY that no real PSP would launch a guest with.
    #[error("policy {policy:#x}: {problem}")]
    Policy {
        /// The policy.
        policy: u64,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// ECDSA signing failed.
    #[error("signing the report")]
    Sign,
}

/// The simulated secure processor of one launched guest.
#[derive(Debug)]
pub struct SimPsp {
    chain: Chain,
    measurement: [u8; 48],
    policy: u64,
    report_id: [u8; 32],
}

impl SimPsp {
    /// A PSP that launched a guest measuring `measurement`
    /// (`measure::sim::sim_launch_digest` of its kernel, initrd and command
    /// line) with [`DEFAULT_POLICY`]. REPORT_ID is random per instance, as
    /// it is per launch on hardware.
    pub fn new(chain: Chain, measurement: [u8; 48]) -> SimPsp {
        let mut report_id = [0u8; 32];
        OsRng.fill_bytes(&mut report_id);
        SimPsp {
            chain,
            measurement,
            policy: DEFAULT_POLICY,
            report_id,
        }
    }

    /// The same PSP with another guest POLICY. Bit 17 must be set and bits
    /// 63:26 clear, as on hardware.
    pub fn with_policy(mut self, policy: u64) -> Result<SimPsp, ReportError> {
        check_policy(policy)?;
        self.policy = policy;
        Ok(self)
    }

    /// A signed 1184-byte ATTESTATION_REPORT for `report_data` at `vmpl`.
    pub fn report(&self, report_data: &[u8; 64], vmpl: u32) -> Result<Vec<u8>, ReportError> {
        if vmpl > 3 {
            return Err(ReportError::Vmpl { got: vmpl });
        }
        let info = self.chain.vcek_info();
        let tcb = info.tcb.to_tcb_version();
        let mut report = AttestationReport {
            version: REPORT_VERSION,
            guest_svn: 0,
            policy: GuestPolicy(self.policy),
            family_id: [0; 16],
            image_id: [0; 16],
            vmpl,
            signature_algo: SIGNATURE_ALGO_ECDSA_P384_SHA384,
            current_tcb: tcb,
            platform_info: PlatformInfo(PLATFORM_INFO),
            // AUTHOR_KEY_EN 0, MASK_CHIP_KEY 0, SIGNING_KEY 0 = VCEK.
            key_info: KeyInfo(0),
            report_data: *report_data,
            measurement: self.measurement,
            host_data: [0; 32],
            id_key_digest: [0; 48],
            author_key_digest: [0; 48],
            report_id: self.report_id,
            report_id_ma: [0xFF; 32],
            reported_tcb: tcb,
            cpuid_fam_id: CPUID.0,
            cpuid_mod_id: CPUID.1,
            cpuid_step: CPUID.2,
            chip_id: info.chip_id,
            committed_tcb: tcb,
            current_build: FIRMWARE.0,
            current_minor: FIRMWARE.1,
            current_major: FIRMWARE.2,
            committed_build: FIRMWARE.0,
            committed_minor: FIRMWARE.1,
            committed_major: FIRMWARE.2,
            launch_tcb: tcb,
            launch_mit_vector: 0,
            current_mit_vector: 0,
            signature: Signature {
                r: [0; 72],
                s: [0; 72],
            },
        };
        let unsigned = report.to_bytes();
        let signed_part = unsigned
            .get(..tee_formats::snp::SIGNED_LEN)
            .ok_or(ReportError::Sign)?;
        let signature: p384::ecdsa::Signature = self
            .chain
            .vcek_key()
            .try_sign(signed_part)
            .map_err(|_| ReportError::Sign)?;
        let (r, s) = signature.split_bytes();
        report.signature = Signature {
            r: le72(&r),
            s: le72(&s),
        };
        Ok(report.to_bytes().to_vec())
    }

    /// [`SimPsp::report`] as an evidence bundle of TEE type `sim`, provider
    /// [`PROVIDER`], certificates VCEK, ASK, ARK.
    pub fn evidence(
        &self,
        report_data: &[u8; 64],
        vmpl: u32,
    ) -> Result<EvidenceBundle, ReportError> {
        let mut bundle = EvidenceBundle::new(Tee::Sim, PROVIDER, self.report(report_data, vmpl)?);
        bundle.certificates = vec![
            Certificate {
                kind: CertKind::Vcek,
                der: self.chain.vcek_der().to_vec().into(),
            },
            Certificate {
                kind: CertKind::Ask,
                der: self.chain.ask_der().to_vec().into(),
            },
            Certificate {
                kind: CertKind::Ark,
                der: self.chain.ark_der().to_vec().into(),
            },
        ];
        Ok(bundle)
    }

    /// SHA-256 of the simulation ARK (DER): what a verifier policy that
    /// accepts simulation pins.
    pub fn ark_sha256(&self) -> [u8; 32] {
        self.chain.ark_sha256()
    }

    /// The launch measurement in every report.
    pub fn measurement(&self) -> &[u8; 48] {
        &self.measurement
    }

    /// The guest POLICY in every report.
    pub fn policy(&self) -> u64 {
        self.policy
    }

    /// The chain that signs.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }
}

/// Checks a guest POLICY as the firmware does at launch: bit 17 set, bits
/// 63:26 clear.
pub fn check_policy(policy: u64) -> Result<(), ReportError> {
    if policy & POLICY_RESERVED_ONE == 0 {
        return Err(ReportError::Policy {
            policy,
            problem: "reserved bit 17 must be 1",
        });
    }
    if policy & GuestPolicy::RESERVED_MASK != 0 {
        return Err(ReportError::Policy {
            policy,
            problem: "bits 63:26 are reserved and must be 0",
        });
    }
    Ok(())
}

/// A 48-byte big-endian scalar as the report's 72-byte little-endian field
/// (48 significant bytes, then 24 zero bytes; tee-formats.md §1.3).
fn le72(be: &[u8]) -> [u8; 72] {
    let mut le = [0u8; 72];
    for (dst, src) in le.iter_mut().zip(be.iter().rev()) {
        *dst = *src;
    }
    le
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le72_reverses_into_the_low_bytes() {
        let be: Vec<u8> = (1..=48).collect();
        let le = le72(&be);
        assert_eq!(le[0], 48);
        assert_eq!(le[47], 1);
        assert!(le[48..].iter().all(|&b| b == 0));
    }
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]
mod signing_tests {
    use p384::ecdsa::signature::Verifier as _;
    use p384::pkcs8::DecodePublicKey as _;
    use x509_cert::der::{Decode as _, Encode as _};

    use super::*;

    fn psp() -> SimPsp {
        SimPsp::new(Chain::for_tests(), [0x5A; 48])
    }

    /// The VCEK public key as a verifier gets it: from the certificate DER.
    fn vcek_key_from_cert(der: &[u8]) -> p384::ecdsa::VerifyingKey {
        let cert = x509_cert::Certificate::from_der(der).unwrap();
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap();
        p384::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap()
    }

    fn verify(report: &[u8], key: &p384::ecdsa::VerifyingKey) -> bool {
        // R and S: 72-byte little-endian fields at 0x2A0 and 0x2E8.
        let be = |at: usize| -> [u8; 48] { std::array::from_fn(|i| report[at + 47 - i]) };
        let sig = p384::ecdsa::Signature::from_scalars(be(0x2A0), be(0x2E8)).unwrap();
        key.verify(&report[..0x2A0], &sig).is_ok()
    }

    #[test]
    fn report_is_signed_by_the_vcek_over_the_first_0x2a0_bytes() {
        let psp = psp();
        let rd: [u8; 64] = std::array::from_fn(|i| i as u8);
        let report = psp.report(&rd, 2).unwrap();
        assert_eq!(report.len(), 0x4A0);
        let key = vcek_key_from_cert(psp.chain().vcek_der());
        assert!(verify(&report, &key));
        assert!(report[0x2A0 + 48..0x2A0 + 72].iter().all(|&b| b == 0));
        assert!(report[0x2E8 + 48..0x330].iter().all(|&b| b == 0));
        assert!(report[0x330..].iter().all(|&b| b == 0));
        for at in [0x000, 0x008, 0x030, 0x050, 0x090, 0x1A0, 0x29F] {
            let mut bad = report.clone();
            bad[at] ^= 0x01;
            assert!(!verify(&bad, &key), "flipping byte {at:#x} still verifies");
        }
    }

    #[test]
    fn report_fields_sit_at_the_amd_offsets() {
        let psp = psp();
        let rd = [0xA5; 64];
        let r = psp.report(&rd, 1).unwrap();
        let u32_at = |o: usize| u32::from_le_bytes(r[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(r[o..o + 8].try_into().unwrap());
        assert_eq!(u32_at(0x000), 3);
        assert_eq!(u64_at(0x008), 0x30000);
        assert_eq!(u32_at(0x030), 1);
        assert_eq!(u32_at(0x034), 1);
        assert_eq!(
            u32_at(0x048),
            0,
            "KEY_INFO: VCEK, no author key, chip key not masked"
        );
        assert_eq!(&r[0x050..0x090], &rd);
        assert_eq!(&r[0x090..0x0C0], &[0x5A; 48]);
        let info = psp.chain().vcek_info();
        let tcb = info.tcb.to_tcb_version().to_bytes();
        for at in [0x038, 0x180, 0x1E0, 0x1F0] {
            assert_eq!(r[at..at + 8], tcb, "TCB at {at:#x}");
        }
        assert_eq!(&r[0x188..0x18B], &[0x19, 0x01, 0x01]);
        assert_eq!(&r[0x1A0..0x1E0], &info.chip_id);
        assert_eq!(&r[0x160..0x180], &[0xFF; 32]);
    }

    #[test]
    fn refuses_vmpl_above_3_and_bad_policies() {
        let psp = psp();
        assert_eq!(psp.report(&[0; 64], 4), Err(ReportError::Vmpl { got: 4 }));
        assert_eq!(
            psp.report(&[0; 64], u32::MAX),
            Err(ReportError::Vmpl { got: u32::MAX })
        );
        for vmpl in 0..=3 {
            assert!(psp.report(&[0; 64], vmpl).is_ok());
        }
        let psp = psp.with_policy(0xb0000).unwrap();
        assert_eq!(psp.policy(), 0xb0000);
        assert!(
            matches!(psp.with_policy(0x10000), Err(ReportError::Policy { problem, .. }) if problem.contains("bit 17"))
        );
        let psp = SimPsp::new(Chain::for_tests(), [0; 48]);
        assert!(
            matches!(psp.with_policy(0x30000 | 1 << 26), Err(ReportError::Policy { problem, .. }) if problem.contains("63:26"))
        );
    }

    #[test]
    fn evidence_is_a_sim_bundle_with_vcek_ask_ark() {
        let psp = psp();
        let b = psp.evidence(&[1; 64], 0).unwrap();
        assert_eq!(b.tee, Tee::Sim);
        assert_eq!(b.provider, "sim-psp");
        let kinds: Vec<_> = b.certificates.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [CertKind::Vcek, CertKind::Ask, CertKind::Ark]);
        assert_eq!(b.certificate(CertKind::Ark), Some(psp.chain().ark_der()));
        assert_eq!(b.evidence.len(), 0x4A0);
    }
}
