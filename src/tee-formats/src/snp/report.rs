//! The SEV-SNP ATTESTATION_REPORT (1184 bytes, little-endian).
//!
//! Source: AMD SEV-SNP Firmware ABI Specification (pub. 56860),
//! "ATTESTATION_REPORT Structure" table; offsets as in virtee/sev 8.0.0
//! `src/firmware/guest/types/snp.rs` and google/go-sev-guest `abi/abi.go`
//! `ReportToProto` (`shared/docs/tee-formats.md` §1.1). Report versions:
//!
//! | VERSION | layout | adds |
//! |---|---|---|
//! | 2 | [`ReportLayout::V2`] | |
//! | 3, 4 | [`ReportLayout::V3`] | CPUID_FAM_ID/MOD_ID/STEP at 0x188 |
//! | 5 | [`ReportLayout::V5`] | LAUNCH_MIT_VECTOR, CURRENT_MIT_VECTOR at 0x1F8 |
//!
//! Version 4 has the version 3 layout (sev 8.0.0 decodes it as V3, and
//! `tee-formats.md` §1.6 lists it as valid); 0, 1 and 6+ are rejected.
//!
//! Every reserved range is checked to be zero (all four real reports in
//! `shared/fixtures/snp` have zero there, and go-sev-guest rejects non-zero
//! ones): 0x04C..0x050, 0x18B..0x1A0 (v2: 0x188..0x1A0), 0x1EB, 0x1EF,
//! 0x208..0x2A0 (v2/v3: 0x1F8..0x2A0) and 0x330..0x4A0. The error names the
//! offset where the reserved range starts. Reserved *bits* of POLICY,
//! PLATFORM_INFO and KEY_INFO are not checked here (see [`super::fields`]).

use crate::bytes::{ArrayWriter, Reader};
use crate::json::json_struct;
use crate::FormatError;

use super::fields::{
    FirmwareVersion, Generation, GuestPolicy, KeyInfo, PlatformInfo, Signature, TcbVersion,
};

/// Size of an ATTESTATION_REPORT in bytes.
pub const REPORT_SIZE: usize = 0x4A0;
/// Length of the signed part of the report, `0x000..0x2A0`.
pub const SIGNED_LEN: usize = 0x2A0;
/// Length of the SIGNATURE field, `0x2A0..0x4A0`.
pub const SIGNATURE_FIELD_LEN: usize = REPORT_SIZE - SIGNED_LEN;

const WHAT: &str = "ATTESTATION_REPORT";

// The field sizes of the AMD table add up to the report size (v5 layout;
// reserved ranges spelled out).
const _: () = assert!(
    4 + 4 + 8 + 16 + 16 + 4 + 4 + 8 + 8 + 4 + 4 // VERSION .. KEY_INFO, reserved 0x4C
        + 64 + 48 + 32 + 48 + 48 + 32 + 32 + 8 // REPORT_DATA .. REPORTED_TCB
        + 3 + 21 + 64 + 8 // CPUID, reserved 0x18B, CHIP_ID, COMMITTED_TCB
        + 3 + 1 + 3 + 1 + 8 // CURRENT_*, reserved, COMMITTED_*, reserved, LAUNCH_TCB
        + 8 + 8 + 0x98 // mitigation vectors, reserved 0x208
        == SIGNED_LEN
);
const _: () = assert!(72 + 72 + 0x170 == SIGNATURE_FIELD_LEN);

/// Which fields a report version carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReportLayout {
    /// VERSION 2.
    V2,
    /// VERSION 3 and 4: adds the CPUID bytes.
    V3,
    /// VERSION 5: adds the mitigation vectors.
    V5,
}

impl ReportLayout {
    /// The layout of report `version`, or [`FormatError::UnsupportedVersion`].
    pub const fn for_version(version: u32) -> Result<Self, FormatError> {
        match version {
            2 => Ok(Self::V2),
            3 | 4 => Ok(Self::V3),
            5 => Ok(Self::V5),
            _ => Err(FormatError::UnsupportedVersion {
                what: WHAT,
                version,
            }),
        }
    }
}

/// The SEV-SNP ATTESTATION_REPORT, field by field in the order of the AMD
/// table (SEV-SNP Firmware ABI spec 56860, "ATTESTATION_REPORT Structure").
///
/// Fields introduced by later versions are plain values that are zero in
/// earlier versions (the parser checks that their bytes, reserved there, are
/// zero); [`AttestationReport::cpuid`] and
/// [`AttestationReport::mitigation_vectors`] return them only for the versions
/// that define them. Reserved ranges are not stored: they are zero by
/// construction. `AttestationReport::parse(b)?.to_bytes() == b` for every
/// report the parser accepts.
///
/// This is a value; to check the signature use [`ReceivedReport`], which keeps
/// the bytes as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttestationReport {
    /// 0x000: VERSION (2, 3, 4 or 5).
    pub version: u32,
    /// 0x004: GUEST_SVN, from the ID block.
    pub guest_svn: u32,
    /// 0x008: POLICY.
    pub policy: GuestPolicy,
    /// 0x010: FAMILY_ID, from the ID block.
    pub family_id: [u8; 16],
    /// 0x020: IMAGE_ID, from the ID block.
    pub image_id: [u8; 16],
    /// 0x030: VMPL the report was requested for.
    pub vmpl: u32,
    /// 0x034: SIGNATURE_ALGO (1 = ECDSA P-384 with SHA-384).
    pub signature_algo: u32,
    /// 0x038: CURRENT_TCB.
    pub current_tcb: TcbVersion,
    /// 0x040: PLATFORM_INFO.
    pub platform_info: PlatformInfo,
    /// 0x048: KEY_INFO (AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY).
    pub key_info: KeyInfo,
    // 0x04C: 4 reserved bytes, MBZ.
    /// 0x050: REPORT_DATA, supplied by the guest.
    pub report_data: [u8; 64],
    /// 0x090: MEASUREMENT, the launch digest.
    pub measurement: [u8; 48],
    /// 0x0C0: HOST_DATA, supplied by the host at launch.
    pub host_data: [u8; 32],
    /// 0x0E0: ID_KEY_DIGEST, SHA-384 of the ID key (zero without an ID block).
    pub id_key_digest: [u8; 48],
    /// 0x110: AUTHOR_KEY_DIGEST, zero unless KEY_INFO.AUTHOR_KEY_EN.
    pub author_key_digest: [u8; 48],
    /// 0x140: REPORT_ID.
    pub report_id: [u8; 32],
    /// 0x160: REPORT_ID_MA (all 0xFF without a migration agent).
    pub report_id_ma: [u8; 32],
    /// 0x180: REPORTED_TCB: the TCB the VCEK was derived for.
    pub reported_tcb: TcbVersion,
    /// 0x188: CPUID_FAM_ID (v3+; zero in v2).
    pub cpuid_fam_id: u8,
    /// 0x189: CPUID_MOD_ID (v3+; zero in v2).
    pub cpuid_mod_id: u8,
    /// 0x18A: CPUID_STEP (v3+; zero in v2).
    pub cpuid_step: u8,
    // 0x18B: 21 reserved bytes, MBZ (v2: 0x188..0x1A0).
    /// 0x1A0: CHIP_ID (zero when MASK_CHIP_ID is set; Turin uses the first 8 bytes).
    pub chip_id: [u8; 64],
    /// 0x1E0: COMMITTED_TCB.
    pub committed_tcb: TcbVersion,
    /// 0x1E8: CURRENT_BUILD.
    pub current_build: u8,
    /// 0x1E9: CURRENT_MINOR.
    pub current_minor: u8,
    /// 0x1EA: CURRENT_MAJOR.
    pub current_major: u8,
    // 0x1EB: 1 reserved byte, MBZ.
    /// 0x1EC: COMMITTED_BUILD.
    pub committed_build: u8,
    /// 0x1ED: COMMITTED_MINOR.
    pub committed_minor: u8,
    /// 0x1EE: COMMITTED_MAJOR.
    pub committed_major: u8,
    // 0x1EF: 1 reserved byte, MBZ.
    /// 0x1F0: LAUNCH_TCB.
    pub launch_tcb: TcbVersion,
    /// 0x1F8: LAUNCH_MIT_VECTOR (v5+; zero before).
    pub launch_mit_vector: u64,
    /// 0x200: CURRENT_MIT_VECTOR (v5+; zero before).
    pub current_mit_vector: u64,
    // 0x208: 0x98 reserved bytes, MBZ (v2/v3: 0x1F8..0x2A0).
    /// 0x2A0: SIGNATURE (R at 0x2A0, S at 0x2E8; 0x330..0x4A0 reserved, MBZ).
    pub signature: Signature,
}

json_struct!(AttestationReport {
    version: val,
    guest_svn: val,
    policy: val,
    family_id: hex,
    image_id: hex,
    vmpl: val,
    signature_algo: val,
    current_tcb: val,
    platform_info: val,
    key_info: val,
    report_data: hex,
    measurement: hex,
    host_data: hex,
    id_key_digest: hex,
    author_key_digest: hex,
    report_id: hex,
    report_id_ma: hex,
    reported_tcb: val,
    cpuid_fam_id: val,
    cpuid_mod_id: val,
    cpuid_step: val,
    chip_id: hex,
    committed_tcb: val,
    current_build: val,
    current_minor: val,
    current_major: val,
    committed_build: val,
    committed_minor: val,
    committed_major: val,
    launch_tcb: val,
    launch_mit_vector: val,
    current_mit_vector: val,
    signature: val,
});

/// The CPUID bytes of a version 3+ report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cpuid {
    /// CPUID_FAM_ID: extended family + base family (0x19 Zen 3/4, 0x1A Zen 5).
    pub family: u8,
    /// CPUID_MOD_ID: extended model << 4 | base model.
    pub model: u8,
    /// CPUID_STEP: stepping.
    pub stepping: u8,
}

impl AttestationReport {
    /// Parses exactly [`REPORT_SIZE`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.len() < REPORT_SIZE {
            return Err(FormatError::Truncated {
                what: WHAT,
                needed: REPORT_SIZE,
                got: bytes.len(),
            });
        }
        if bytes.len() > REPORT_SIZE {
            return Err(FormatError::BadLength {
                field: WHAT,
                offset: 0,
                got: bytes.len() as u64,
                expected: REPORT_SIZE as u64,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u32("VERSION")?;
        let layout = ReportLayout::for_version(version)?;
        let guest_svn = r.u32("GUEST_SVN")?;
        let policy = GuestPolicy(r.u64("POLICY")?);
        let family_id = r.array("FAMILY_ID")?;
        let image_id = r.array("IMAGE_ID")?;
        let vmpl = r.u32("VMPL")?;
        let signature_algo = r.u32("SIGNATURE_ALGO")?;
        let current_tcb = TcbVersion::from_raw(r.u64("CURRENT_TCB")?);
        let platform_info = PlatformInfo(r.u64("PLATFORM_INFO")?);
        let key_info = KeyInfo(r.u32("KEY_INFO")?);
        r.reserved(4, WHAT)?;
        let report_data = r.array("REPORT_DATA")?;
        let measurement = r.array("MEASUREMENT")?;
        let host_data = r.array("HOST_DATA")?;
        let id_key_digest = r.array("ID_KEY_DIGEST")?;
        let author_key_digest = r.array("AUTHOR_KEY_DIGEST")?;
        let report_id = r.array("REPORT_ID")?;
        let report_id_ma = r.array("REPORT_ID_MA")?;
        let reported_tcb = TcbVersion::from_raw(r.u64("REPORTED_TCB")?);
        let (cpuid_fam_id, cpuid_mod_id, cpuid_step) = if layout >= ReportLayout::V3 {
            let cpuid = (
                r.u8("CPUID_FAM_ID")?,
                r.u8("CPUID_MOD_ID")?,
                r.u8("CPUID_STEP")?,
            );
            r.reserved(21, WHAT)?;
            cpuid
        } else {
            r.reserved(24, WHAT)?;
            (0, 0, 0)
        };
        let chip_id = r.array("CHIP_ID")?;
        let committed_tcb = TcbVersion::from_raw(r.u64("COMMITTED_TCB")?);
        let current_build = r.u8("CURRENT_BUILD")?;
        let current_minor = r.u8("CURRENT_MINOR")?;
        let current_major = r.u8("CURRENT_MAJOR")?;
        r.reserved(1, WHAT)?;
        let committed_build = r.u8("COMMITTED_BUILD")?;
        let committed_minor = r.u8("COMMITTED_MINOR")?;
        let committed_major = r.u8("COMMITTED_MAJOR")?;
        r.reserved(1, WHAT)?;
        let launch_tcb = TcbVersion::from_raw(r.u64("LAUNCH_TCB")?);
        let (launch_mit_vector, current_mit_vector) = if layout >= ReportLayout::V5 {
            let vectors = (r.u64("LAUNCH_MIT_VECTOR")?, r.u64("CURRENT_MIT_VECTOR")?);
            r.reserved(0x98, WHAT)?;
            vectors
        } else {
            r.reserved(0xA8, WHAT)?;
            (0, 0)
        };
        let signature = Signature {
            r: r.array("SIGNATURE.R")?,
            s: r.array("SIGNATURE.S")?,
        };
        r.reserved(0x170, WHAT)?;
        r.finish(WHAT)?;
        Ok(Self {
            version,
            guest_svn,
            policy,
            family_id,
            image_id,
            vmpl,
            signature_algo,
            current_tcb,
            platform_info,
            key_info,
            report_data,
            measurement,
            host_data,
            id_key_digest,
            author_key_digest,
            report_id,
            report_id_ma,
            reported_tcb,
            cpuid_fam_id,
            cpuid_mod_id,
            cpuid_step,
            chip_id,
            committed_tcb,
            current_build,
            current_minor,
            current_major,
            committed_build,
            committed_minor,
            committed_major,
            launch_tcb,
            launch_mit_vector,
            current_mit_vector,
            signature,
        })
    }

    /// Encodes the report. Reserved ranges are written as zero; fields a
    /// version does not define are written as they are held (zero for any
    /// parsed report), so `parse(b)?.to_bytes() == b`.
    pub fn to_bytes(&self) -> [u8; REPORT_SIZE] {
        let mut out = [0u8; REPORT_SIZE];
        let mut w = ArrayWriter::new(&mut out);
        w.put(&self.version.to_le_bytes());
        w.put(&self.guest_svn.to_le_bytes());
        w.put(&self.policy.0.to_le_bytes());
        w.put(&self.family_id);
        w.put(&self.image_id);
        w.put(&self.vmpl.to_le_bytes());
        w.put(&self.signature_algo.to_le_bytes());
        w.put(&self.current_tcb.to_bytes());
        w.put(&self.platform_info.0.to_le_bytes());
        w.put(&self.key_info.0.to_le_bytes());
        w.skip(4);
        w.put(&self.report_data);
        w.put(&self.measurement);
        w.put(&self.host_data);
        w.put(&self.id_key_digest);
        w.put(&self.author_key_digest);
        w.put(&self.report_id);
        w.put(&self.report_id_ma);
        w.put(&self.reported_tcb.to_bytes());
        w.put(&[self.cpuid_fam_id, self.cpuid_mod_id, self.cpuid_step]);
        w.skip(21);
        w.put(&self.chip_id);
        w.put(&self.committed_tcb.to_bytes());
        w.put(&[self.current_build, self.current_minor, self.current_major]);
        w.skip(1);
        w.put(&[
            self.committed_build,
            self.committed_minor,
            self.committed_major,
        ]);
        w.skip(1);
        w.put(&self.launch_tcb.to_bytes());
        w.put(&self.launch_mit_vector.to_le_bytes());
        w.put(&self.current_mit_vector.to_le_bytes());
        w.skip(0x98);
        w.put(&self.signature.r);
        w.put(&self.signature.s);
        w.skip(0x170);
        w.finish();
        out
    }

    /// The layout of this report's version.
    pub fn layout(&self) -> Result<ReportLayout, FormatError> {
        ReportLayout::for_version(self.version)
    }

    /// The CPUID bytes, for version 3 and later.
    pub fn cpuid(&self) -> Option<Cpuid> {
        match self.layout() {
            Ok(ReportLayout::V3 | ReportLayout::V5) => Some(Cpuid {
                family: self.cpuid_fam_id,
                model: self.cpuid_mod_id,
                stepping: self.cpuid_step,
            }),
            _ => None,
        }
    }

    /// `(LAUNCH_MIT_VECTOR, CURRENT_MIT_VECTOR)`, for version 5 and later.
    pub fn mitigation_vectors(&self) -> Option<(u64, u64)> {
        match self.layout() {
            Ok(ReportLayout::V5) => Some((self.launch_mit_vector, self.current_mit_vector)),
            _ => None,
        }
    }

    /// The CPU generation from the CPUID bytes (version 3+). A version 2
    /// report gives [`FormatError::GenerationNotInReport`]: the caller must
    /// know the generation (from configuration or the VCEK's productName).
    pub fn generation(&self) -> Result<Generation, FormatError> {
        match self.cpuid() {
            Some(c) => Generation::from_cpuid(c.family, c.model),
            None => Err(FormatError::GenerationNotInReport {
                version: self.version,
            }),
        }
    }

    /// The running firmware version (CURRENT_MAJOR.CURRENT_MINOR.CURRENT_BUILD).
    pub const fn current_version(&self) -> FirmwareVersion {
        FirmwareVersion {
            major: self.current_major,
            minor: self.current_minor,
            build: self.current_build,
        }
    }

    /// The committed firmware version.
    pub const fn committed_version(&self) -> FirmwareVersion {
        FirmwareVersion {
            major: self.committed_major,
            minor: self.committed_minor,
            build: self.committed_build,
        }
    }
}

/// A report together with the exact bytes it was parsed from.
///
/// The signature must be checked over [`ReceivedReport::signed_bytes`]: the
/// received bytes `0x000..0x2A0`, never a re-encoding of the parsed fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceivedReport {
    signed: [u8; SIGNED_LEN],
    signature_field: [u8; SIGNATURE_FIELD_LEN],
    report: AttestationReport,
}

impl ReceivedReport {
    /// Parses exactly [`REPORT_SIZE`] bytes and keeps them.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let report = AttestationReport::parse(bytes)?;
        let (signed, rest) =
            bytes
                .split_first_chunk::<SIGNED_LEN>()
                .ok_or(FormatError::Truncated {
                    what: WHAT,
                    needed: SIGNED_LEN,
                    got: bytes.len(),
                })?;
        let signature_field =
            <[u8; SIGNATURE_FIELD_LEN]>::try_from(rest).map_err(|_| FormatError::BadLength {
                field: WHAT,
                offset: 0,
                got: bytes.len() as u64,
                expected: REPORT_SIZE as u64,
            })?;
        Ok(Self {
            signed: *signed,
            signature_field,
            report,
        })
    }

    /// The parsed fields.
    pub const fn report(&self) -> &AttestationReport {
        &self.report
    }

    /// The signed bytes `0x000..0x2A0`, exactly as received.
    pub const fn signed_bytes(&self) -> &[u8; SIGNED_LEN] {
        &self.signed
    }

    /// The SIGNATURE field `0x2A0..0x4A0`, exactly as received.
    pub const fn signature_bytes(&self) -> &[u8; SIGNATURE_FIELD_LEN] {
        &self.signature_field
    }

    /// All 1184 bytes, exactly as received.
    pub fn to_bytes(&self) -> [u8; REPORT_SIZE] {
        let mut out = [0u8; REPORT_SIZE];
        let mut w = ArrayWriter::new(&mut out);
        w.put(&self.signed);
        w.put(&self.signature_field);
        w.finish();
        out
    }
}

/// Serialised as the parsed report.
#[cfg(feature = "serde")]
impl serde::Serialize for ReceivedReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.report.serialize(serializer)
    }
}
