//! Sub-fields of the SEV-SNP ATTESTATION_REPORT: TCB_VERSION, GUEST_POLICY,
//! PLATFORM_INFO, KEY_INFO, the ECDSA signature, and the CPU generation that
//! TCB_VERSION's layout depends on.
//!
//! Source: AMD SEV-SNP Firmware ABI Specification (pub. 56860), "TCB_VERSION",
//! "GUEST_POLICY", "ATTESTATION_REPORT" tables; as implemented by virtee/sev 8.0.0
//! `src/firmware/{guest,host}/types/snp.rs` and google/go-sev-guest `abi/abi.go`
//! (`shared/docs/tee-formats.md` §1.2).
//!
//! Bitfields expose the raw integer and one accessor per named bit; reserved
//! bits are never set or cleared by this crate, only reported by
//! `reserved_bits()` (the appraisal decides whether a set reserved bit is fatal:
//! firmware keeps assigning new bits, as PLATFORM_INFO bits 2..7 show).

use std::fmt;

use crate::json::json_struct;
use crate::FormatError;

/// The AMD EPYC generation of the processor that signed a report. It decides
/// the layout of [`TcbVersion`] and the KDS product name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generation {
    /// Zen 3, family 0x19 model 0x00..=0x0F.
    Milan,
    /// Zen 4, family 0x19 model 0x10..=0x1F or 0xA0..=0xAF (also Bergamo, Siena).
    Genoa,
    /// Zen 5, family 0x1A model 0x00..=0x11.
    Turin,
    /// Zen 6, family 0x1A model 0x50..=0x57, 0x90..=0x9F, 0xA0..=0xAF, 0xC0..=0xC7.
    Venice,
}

impl Generation {
    /// Identifies the generation from a report's CPUID_FAM_ID / CPUID_MOD_ID
    /// bytes (report version 3 and later); table from sev 8.0.0
    /// `Generation::identify_cpu` and trustee `get_processor_generation`.
    pub fn from_cpuid(family: u8, model: u8) -> Result<Self, FormatError> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Ok(Self::Milan),
            (0x19, 0x10..=0x1F | 0xA0..=0xAF) => Ok(Self::Genoa),
            (0x1A, 0x00..=0x11) => Ok(Self::Turin),
            (0x1A, 0x50..=0x57 | 0x90..=0x9F | 0xA0..=0xAF | 0xC0..=0xC7) => Ok(Self::Venice),
            _ => Err(FormatError::UnknownGeneration { family, model }),
        }
    }

    /// The `{product}` path segment of AMD KDS URLs.
    pub const fn kds_product(self) -> &'static str {
        match self {
            Self::Milan => "Milan",
            Self::Genoa => "Genoa",
            Self::Turin => "Turin",
            Self::Venice => "Venice",
        }
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kds_product())
    }
}

/// Serialised as the KDS product name.
#[cfg(feature = "serde")]
impl serde::Serialize for Generation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// TCB_VERSION: 8 bytes, little-endian, whose byte layout depends on the
/// [`Generation`] (see [`TcbVersion::decode`]). Kept raw; decoding needs the
/// generation, which a version 2 report does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TcbVersion(u64);

/// The security patch levels of a [`TcbVersion`], decoded for one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcbComponents {
    /// FMC SPL (Turin and later only).
    pub fmc: Option<u8>,
    /// BOOT_LOADER SPL.
    pub boot_loader: u8,
    /// TEE SPL.
    pub tee: u8,
    /// SNP SPL.
    pub snp: u8,
    /// MICROCODE SPL.
    pub microcode: u8,
}

json_struct!(TcbComponents {
    fmc: val,
    boot_loader: val,
    tee: val,
    snp: val,
    microcode: val
});

impl TcbVersion {
    /// Wraps a raw TCB_VERSION value.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw value (little-endian reading of the 8 bytes).
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// From the 8 bytes as they appear in the report.
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        Self(u64::from_le_bytes(bytes))
    }

    /// The 8 bytes as they appear in the report.
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }

    /// Decodes the SPLs for `generation`:
    ///
    /// | byte | Milan, Genoa | Turin, Venice |
    /// |---|---|---|
    /// | 0 | BOOT_LOADER | FMC |
    /// | 1 | TEE | BOOT_LOADER |
    /// | 2 | reserved | TEE |
    /// | 3 | reserved | SNP |
    /// | 4, 5 | reserved | reserved |
    /// | 6 | SNP | reserved |
    /// | 7 | MICROCODE | MICROCODE |
    pub const fn decode(self, generation: Generation) -> TcbComponents {
        let [b0, b1, b2, b3, _, _, b6, b7] = self.to_bytes();
        match generation {
            Generation::Milan | Generation::Genoa => TcbComponents {
                fmc: None,
                boot_loader: b0,
                tee: b1,
                snp: b6,
                microcode: b7,
            },
            Generation::Turin | Generation::Venice => TcbComponents {
                fmc: Some(b0),
                boot_loader: b1,
                tee: b2,
                snp: b3,
                microcode: b7,
            },
        }
    }
}

impl fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::json::write_hex(f, &self.to_bytes())
    }
}

/// Serialised as the hex of the 8 bytes in report order (e.g. `0300000000000873`).
#[cfg(feature = "serde")]
impl serde::Serialize for TcbVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

macro_rules! bits {
    ($(#[$doc:meta] $name:ident = $bit:expr;)*) => {
        $(#[$doc] pub const fn $name(self) -> bool { (self.0 >> $bit) & 1 == 1 })*
    };
}

/// GUEST_POLICY (report offset 0x008), as chosen by the host at launch.
///
/// | bits | field |
/// |---|---|
/// | 7:0 | ABI_MINOR |
/// | 15:8 | ABI_MAJOR |
/// | 16 | SMT allowed |
/// | 17 | reserved, must be 1 |
/// | 18 | MIGRATE_MA allowed |
/// | 19 | DEBUG allowed |
/// | 20 | SINGLE_SOCKET required |
/// | 21 | CXL_ALLOW |
/// | 22 | MEM_AES_256_XTS |
/// | 23 | RAPL_DIS |
/// | 24 | CIPHERTEXT_HIDING(_DRAM) |
/// | 25 | PAGE_SWAP_DISABLE |
/// | 63:26 | reserved, MBZ |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    /// Bits 63:26, reserved (MBZ).
    pub const RESERVED_MASK: u64 = !((1 << 26) - 1);

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// ABI_MINOR (bits 7:0): minimum firmware ABI minor version.
    pub const fn abi_minor(self) -> u8 {
        self.0.to_le_bytes()[0]
    }
    /// ABI_MAJOR (bits 15:8): minimum firmware ABI major version.
    pub const fn abi_major(self) -> u8 {
        self.0.to_le_bytes()[1]
    }
    bits! {
        /// Bit 16: SMT is allowed.
        smt_allowed = 16;
        /// Bit 17: reserved, must be 1 (the firmware rejects a launch policy without it).
        reserved_must_be_one = 17;
        /// Bit 18: association with a migration agent is allowed.
        migrate_ma_allowed = 18;
        /// Bit 19: debugging is allowed (the host can decrypt guest memory).
        debug_allowed = 19;
        /// Bit 20: the guest may run on a single socket only.
        single_socket_required = 20;
        /// Bit 21: CXL may be populated with devices or memory.
        cxl_allowed = 21;
        /// Bit 22: AES-256-XTS memory encryption is required.
        mem_aes_256_xts = 22;
        /// Bit 23: Running Average Power Limit must be disabled.
        rapl_dis = 23;
        /// Bit 24: ciphertext hiding must be enabled.
        ciphertext_hiding = 24;
        /// Bit 25: guest page swapping (SNP_PAGE_MOVE etc.) is disabled (report v5).
        page_swap_disable = 25;
    }
    /// Reserved bits 63:26 that are set (zero in a well-formed policy).
    pub const fn reserved_bits(self) -> u64 {
        self.0 & Self::RESERVED_MASK
    }
}

/// PLATFORM_INFO (report offset 0x040): the platform state at report time.
///
/// | bit | field |
/// |---|---|
/// | 0 | SMT_EN |
/// | 1 | TSME_EN |
/// | 2 | ECC_EN |
/// | 3 | RAPL_DIS |
/// | 4 | CIPHERTEXT_HIDING_EN |
/// | 5 | ALIAS_CHECK_COMPLETE (report v3+) |
/// | 6 | reserved |
/// | 7 | TIO_EN (report v5) |
/// | 63:8 | reserved |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlatformInfo(pub u64);

impl PlatformInfo {
    /// Bit 6 and bits 63:8, reserved.
    pub const RESERVED_MASK: u64 = !0xBF;

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }
    bits! {
        /// Bit 0: SMT is enabled on the platform.
        smt_en = 0;
        /// Bit 1: transparent SME is enabled.
        tsme_en = 1;
        /// Bit 2: the platform uses error-correcting memory.
        ecc_en = 2;
        /// Bit 3: RAPL is disabled.
        rapl_dis = 3;
        /// Bit 4: ciphertext hiding is enabled.
        ciphertext_hiding_en = 4;
        /// Bit 5: the memory alias check has completed.
        alias_check_complete = 5;
        /// Bit 7: SEV-TIO is enabled.
        tio_en = 7;
    }
    /// Reserved bits that are set.
    pub const fn reserved_bits(self) -> u64 {
        self.0 & Self::RESERVED_MASK
    }
}

/// KEY_INFO (report offset 0x048; called SIGNER_INFO by go-sev-guest).
///
/// | bits | field |
/// |---|---|
/// | 0 | AUTHOR_KEY_EN |
/// | 1 | MASK_CHIP_KEY |
/// | 4:2 | SIGNING_KEY (0 VCEK, 1 VLEK, 7 none, others reserved) |
/// | 31:5 | reserved, MBZ |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyInfo(pub u32);

/// Which key signed the report (KEY_INFO.SIGNING_KEY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningKey {
    /// 0: the Versioned Chip Endorsement Key.
    Vcek,
    /// 1: the Versioned Loaded Endorsement Key.
    Vlek,
    /// 7: the report is not signed.
    None,
    /// 2..=6: reserved values.
    Reserved(u8),
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vcek => f.write_str("VCEK"),
            Self::Vlek => f.write_str("VLEK"),
            Self::None => f.write_str("none"),
            Self::Reserved(v) => write!(f, "reserved({v})"),
        }
    }
}

/// Serialised as `"VCEK"`, `"VLEK"`, `"none"` or `"reserved(N)"`.
#[cfg(feature = "serde")]
impl serde::Serialize for SigningKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl KeyInfo {
    /// Bits 31:5, reserved (MBZ).
    pub const RESERVED_MASK: u32 = !0x1F;

    /// The raw value.
    pub const fn raw(self) -> u32 {
        self.0
    }
    bits! {
        /// Bit 0: the ID block was signed with an author key (AUTHOR_KEY_DIGEST is valid).
        author_key_en = 0;
        /// Bit 1: the host masked the chip key: the signature is all zero.
        mask_chip_key = 1;
    }
    /// Bits 4:2: the signing key.
    pub const fn signing_key(self) -> SigningKey {
        match (self.0 >> 2) & 7 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            #[expect(clippy::cast_possible_truncation, reason = "masked to 3 bits above")]
            other => SigningKey::Reserved(other as u8),
        }
    }
    /// Reserved bits 31:5 that are set.
    pub const fn reserved_bits(self) -> u32 {
        self.0 & Self::RESERVED_MASK
    }
}

#[cfg(feature = "serde")]
mod bitfield_json {
    use serde::ser::{Serialize, SerializeStruct, Serializer};

    use super::{GuestPolicy, KeyInfo, PlatformInfo};

    impl Serialize for GuestPolicy {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut s = serializer.serialize_struct("GuestPolicy", 13)?;
            s.serialize_field("raw", &self.raw())?;
            s.serialize_field("abi_minor", &self.abi_minor())?;
            s.serialize_field("abi_major", &self.abi_major())?;
            s.serialize_field("smt_allowed", &self.smt_allowed())?;
            s.serialize_field("reserved_must_be_one", &self.reserved_must_be_one())?;
            s.serialize_field("migrate_ma_allowed", &self.migrate_ma_allowed())?;
            s.serialize_field("debug_allowed", &self.debug_allowed())?;
            s.serialize_field("single_socket_required", &self.single_socket_required())?;
            s.serialize_field("cxl_allowed", &self.cxl_allowed())?;
            s.serialize_field("mem_aes_256_xts", &self.mem_aes_256_xts())?;
            s.serialize_field("rapl_dis", &self.rapl_dis())?;
            s.serialize_field("ciphertext_hiding", &self.ciphertext_hiding())?;
            s.serialize_field("page_swap_disable", &self.page_swap_disable())?;
            s.end()
        }
    }

    impl Serialize for PlatformInfo {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut s = serializer.serialize_struct("PlatformInfo", 8)?;
            s.serialize_field("raw", &self.raw())?;
            s.serialize_field("smt_en", &self.smt_en())?;
            s.serialize_field("tsme_en", &self.tsme_en())?;
            s.serialize_field("ecc_en", &self.ecc_en())?;
            s.serialize_field("rapl_dis", &self.rapl_dis())?;
            s.serialize_field("ciphertext_hiding_en", &self.ciphertext_hiding_en())?;
            s.serialize_field("alias_check_complete", &self.alias_check_complete())?;
            s.serialize_field("tio_en", &self.tio_en())?;
            s.end()
        }
    }

    impl Serialize for KeyInfo {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut s = serializer.serialize_struct("KeyInfo", 4)?;
            s.serialize_field("raw", &self.raw())?;
            s.serialize_field("author_key_en", &self.author_key_en())?;
            s.serialize_field("mask_chip_key", &self.mask_chip_key())?;
            s.serialize_field("signing_key", &self.signing_key())?;
            s.end()
        }
    }
}

/// SIGNATURE (report offset 0x2A0) for SIGNATURE_ALGO 1, ECDSA P-384 with
/// SHA-384: R and S as 72-byte little-endian integers (48 significant bytes,
/// then 24 zero bytes). The rest of the 512-byte field (0x330..0x4A0) is
/// reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    /// 0x2A0: R, little-endian.
    pub r: [u8; 72],
    /// 0x2E8: S, little-endian.
    pub s: [u8; 72],
}

json_struct!(Signature { r: hex, s: hex });

impl Signature {
    /// R as the 48-byte big-endian scalar a P-384 verifier expects.
    pub fn r_be(&self) -> [u8; 48] {
        le72_to_be48(&self.r)
    }

    /// S as the 48-byte big-endian scalar a P-384 verifier expects.
    pub fn s_be(&self) -> [u8; 48] {
        le72_to_be48(&self.s)
    }

    /// Whether the upper 24 bytes of R and S are zero, as they are for any
    /// P-384 scalar.
    pub fn high_bytes_zero(&self) -> bool {
        self.r
            .iter()
            .skip(48)
            .chain(self.s.iter().skip(48))
            .all(|&b| b == 0)
    }
}

fn le72_to_be48(le: &[u8; 72]) -> [u8; 48] {
    let mut be = [0u8; 48];
    for (dst, src) in be.iter_mut().zip(le.iter().take(48).rev()) {
        *dst = *src;
    }
    be
}

/// A firmware version, from the report's `{CURRENT,COMMITTED}_{BUILD,MINOR,MAJOR}` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FirmwareVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Build number.
    pub build: u8,
}

json_struct!(FirmwareVersion {
    major: val,
    minor: val,
    build: val
});

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}
