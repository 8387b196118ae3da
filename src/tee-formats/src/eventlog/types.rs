//! Event types, digest algorithms, and what an event measures.
//!
//! Event types: TCG PC Client Platform Firmware Profile Specification, level
//! 00 version 1.06 rev 52, §10.4.1 table 9 (EV_*) and table 10 (EV_EFI_*).
//! Algorithm ids and sizes: TCG Algorithm Registry, revision 1.34, table 3.
//! Linux tagged events: `drivers/firmware/efi/libstub/efi-stub-helper.c`
//! (`INITRD_EVENT_TAG_ID` 0x8F3B22ED "Linux initrd", `LOAD_OPTIONS_EVENT_TAG_ID`
//! 0x8F3B22EE "LOADED_IMAGE::LoadOptions", both into PCR 9 = RTMR2).

/// EV_PREBOOT_CERT.
pub const EV_PREBOOT_CERT: u32 = 0x0;
/// EV_POST_CODE.
pub const EV_POST_CODE: u32 = 0x1;
/// EV_NO_ACTION: informational; never extended.
pub const EV_NO_ACTION: u32 = 0x3;
/// EV_SEPARATOR.
pub const EV_SEPARATOR: u32 = 0x4;
/// EV_ACTION.
pub const EV_ACTION: u32 = 0x5;
/// EV_EVENT_TAG.
pub const EV_EVENT_TAG: u32 = 0x6;
/// EV_S_CRTM_CONTENTS.
pub const EV_S_CRTM_CONTENTS: u32 = 0x7;
/// EV_S_CRTM_VERSION.
pub const EV_S_CRTM_VERSION: u32 = 0x8;
/// EV_CPU_MICROCODE.
pub const EV_CPU_MICROCODE: u32 = 0x9;
/// EV_PLATFORM_CONFIG_FLAGS.
pub const EV_PLATFORM_CONFIG_FLAGS: u32 = 0xa;
/// EV_TABLE_OF_DEVICES.
pub const EV_TABLE_OF_DEVICES: u32 = 0xb;
/// EV_COMPACT_HASH.
pub const EV_COMPACT_HASH: u32 = 0xc;
/// EV_IPL.
pub const EV_IPL: u32 = 0xd;
/// EV_IPL_PARTITION_DATA.
pub const EV_IPL_PARTITION_DATA: u32 = 0xe;
/// EV_NONHOST_CODE.
pub const EV_NONHOST_CODE: u32 = 0xf;
/// EV_NONHOST_CONFIG.
pub const EV_NONHOST_CONFIG: u32 = 0x10;
/// EV_NONHOST_INFO.
pub const EV_NONHOST_INFO: u32 = 0x11;
/// EV_OMIT_BOOT_DEVICE_EVENTS.
pub const EV_OMIT_BOOT_DEVICE_EVENTS: u32 = 0x12;
/// EV_POST_CODE2.
pub const EV_POST_CODE2: u32 = 0x13;
/// EV_EFI_VARIABLE_DRIVER_CONFIG.
pub const EV_EFI_VARIABLE_DRIVER_CONFIG: u32 = 0x8000_0001;
/// EV_EFI_VARIABLE_BOOT.
pub const EV_EFI_VARIABLE_BOOT: u32 = 0x8000_0002;
/// EV_EFI_BOOT_SERVICES_APPLICATION: a UEFI application, measured by its
/// Authenticode digest. In a QEMU direct boot this is the kernel.
pub const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
/// EV_EFI_BOOT_SERVICES_DRIVER.
pub const EV_EFI_BOOT_SERVICES_DRIVER: u32 = 0x8000_0004;
/// EV_EFI_RUNTIME_SERVICES_DRIVER.
pub const EV_EFI_RUNTIME_SERVICES_DRIVER: u32 = 0x8000_0005;
/// EV_EFI_GPT_EVENT.
pub const EV_EFI_GPT_EVENT: u32 = 0x8000_0006;
/// EV_EFI_ACTION: a fixed ASCII string, digest = hash of the string.
pub const EV_EFI_ACTION: u32 = 0x8000_0007;
/// EV_EFI_PLATFORM_FIRMWARE_BLOB.
pub const EV_EFI_PLATFORM_FIRMWARE_BLOB: u32 = 0x8000_0008;
/// EV_EFI_HANDOFF_TABLES.
pub const EV_EFI_HANDOFF_TABLES: u32 = 0x8000_0009;
/// EV_EFI_PLATFORM_FIRMWARE_BLOB2.
pub const EV_EFI_PLATFORM_FIRMWARE_BLOB2: u32 = 0x8000_000a;
/// EV_EFI_HANDOFF_TABLES2 (TDVF: the TD HOB).
pub const EV_EFI_HANDOFF_TABLES2: u32 = 0x8000_000b;
/// EV_EFI_VARIABLE_BOOT2.
pub const EV_EFI_VARIABLE_BOOT2: u32 = 0x8000_000c;
/// EV_EFI_GPT_EVENT2.
pub const EV_EFI_GPT_EVENT2: u32 = 0x8000_000d;
/// EV_EFI_HCRTM_EVENT.
pub const EV_EFI_HCRTM_EVENT: u32 = 0x8000_0010;
/// EV_EFI_VARIABLE_AUTHORITY.
pub const EV_EFI_VARIABLE_AUTHORITY: u32 = 0x8000_00e0;
/// EV_EFI_SPDM_FIRMWARE_BLOB.
pub const EV_EFI_SPDM_FIRMWARE_BLOB: u32 = 0x8000_00e1;
/// EV_EFI_SPDM_FIRMWARE_CONFIG.
pub const EV_EFI_SPDM_FIRMWARE_CONFIG: u32 = 0x8000_00e2;

/// The specification's name of an event type, if it has one.
pub fn event_type_name(t: u32) -> Option<&'static str> {
    Some(match t {
        EV_PREBOOT_CERT => "EV_PREBOOT_CERT",
        EV_POST_CODE => "EV_POST_CODE",
        0x2 => "EV_UNUSED",
        EV_NO_ACTION => "EV_NO_ACTION",
        EV_SEPARATOR => "EV_SEPARATOR",
        EV_ACTION => "EV_ACTION",
        EV_EVENT_TAG => "EV_EVENT_TAG",
        EV_S_CRTM_CONTENTS => "EV_S_CRTM_CONTENTS",
        EV_S_CRTM_VERSION => "EV_S_CRTM_VERSION",
        EV_CPU_MICROCODE => "EV_CPU_MICROCODE",
        EV_PLATFORM_CONFIG_FLAGS => "EV_PLATFORM_CONFIG_FLAGS",
        EV_TABLE_OF_DEVICES => "EV_TABLE_OF_DEVICES",
        EV_COMPACT_HASH => "EV_COMPACT_HASH",
        EV_IPL => "EV_IPL",
        EV_IPL_PARTITION_DATA => "EV_IPL_PARTITION_DATA",
        EV_NONHOST_CODE => "EV_NONHOST_CODE",
        EV_NONHOST_CONFIG => "EV_NONHOST_CONFIG",
        EV_NONHOST_INFO => "EV_NONHOST_INFO",
        EV_OMIT_BOOT_DEVICE_EVENTS => "EV_OMIT_BOOT_DEVICE_EVENTS",
        EV_POST_CODE2 => "EV_POST_CODE2",
        EV_EFI_VARIABLE_DRIVER_CONFIG => "EV_EFI_VARIABLE_DRIVER_CONFIG",
        EV_EFI_VARIABLE_BOOT => "EV_EFI_VARIABLE_BOOT",
        EV_EFI_BOOT_SERVICES_APPLICATION => "EV_EFI_BOOT_SERVICES_APPLICATION",
        EV_EFI_BOOT_SERVICES_DRIVER => "EV_EFI_BOOT_SERVICES_DRIVER",
        EV_EFI_RUNTIME_SERVICES_DRIVER => "EV_EFI_RUNTIME_SERVICES_DRIVER",
        EV_EFI_GPT_EVENT => "EV_EFI_GPT_EVENT",
        EV_EFI_ACTION => "EV_EFI_ACTION",
        EV_EFI_PLATFORM_FIRMWARE_BLOB => "EV_EFI_PLATFORM_FIRMWARE_BLOB",
        EV_EFI_HANDOFF_TABLES => "EV_EFI_HANDOFF_TABLES",
        EV_EFI_PLATFORM_FIRMWARE_BLOB2 => "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        EV_EFI_HANDOFF_TABLES2 => "EV_EFI_HANDOFF_TABLES2",
        EV_EFI_VARIABLE_BOOT2 => "EV_EFI_VARIABLE_BOOT2",
        EV_EFI_GPT_EVENT2 => "EV_EFI_GPT_EVENT2",
        EV_EFI_HCRTM_EVENT => "EV_EFI_HCRTM_EVENT",
        EV_EFI_VARIABLE_AUTHORITY => "EV_EFI_VARIABLE_AUTHORITY",
        EV_EFI_SPDM_FIRMWARE_BLOB => "EV_EFI_SPDM_FIRMWARE_BLOB",
        EV_EFI_SPDM_FIRMWARE_CONFIG => "EV_EFI_SPDM_FIRMWARE_CONFIG",
        _ => return None,
    })
}

/// TPM_ALG_SHA1.
pub const ALG_SHA1: u16 = 0x0004;
/// TPM_ALG_SHA256.
pub const ALG_SHA256: u16 = 0x000b;
/// TPM_ALG_SHA384: the algorithm of the TDX RTMRs.
pub const ALG_SHA384: u16 = 0x000c;
/// TPM_ALG_SHA512.
pub const ALG_SHA512: u16 = 0x000d;
/// TPM_ALG_SM3_256.
pub const ALG_SM3_256: u16 = 0x0012;
/// TPM_ALG_SHA3_256.
pub const ALG_SHA3_256: u16 = 0x0027;
/// TPM_ALG_SHA3_384.
pub const ALG_SHA3_384: u16 = 0x0028;
/// TPM_ALG_SHA3_512.
pub const ALG_SHA3_512: u16 = 0x0029;

/// The name and digest size of a known hash algorithm.
pub fn algorithm(id: u16) -> Option<(&'static str, u16)> {
    Some(match id {
        ALG_SHA1 => ("sha1", 20),
        ALG_SHA256 => ("sha256", 32),
        ALG_SHA384 => ("sha384", 48),
        ALG_SHA512 => ("sha512", 64),
        ALG_SM3_256 => ("sm3_256", 32),
        ALG_SHA3_256 => ("sha3_256", 32),
        ALG_SHA3_384 => ("sha3_384", 48),
        ALG_SHA3_512 => ("sha3_512", 64),
        _ => return None,
    })
}

/// Linux EFI stub tag id of the initrd event.
pub const LINUX_INITRD_TAG_ID: u32 = 0x8F3B_22ED;
/// Linux EFI stub tag id of the command-line (LoadOptions) event.
pub const LINUX_LOAD_OPTIONS_TAG_ID: u32 = 0x8F3B_22EE;
const LINUX_INITRD_TEXT: &[u8] = b"Linux initrd\0";
const LINUX_LOAD_OPTIONS_TEXT: &[u8] = b"LOADED_IMAGE::LoadOptions\0";

/// What an OS component event measures (see [`Event::component`](super::Event::component)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// The kernel: the UEFI application the firmware started (its Authenticode
    /// SHA-384), EV_EFI_BOOT_SERVICES_APPLICATION, recorded by TDVF into RTMR1.
    Kernel,
    /// The initrd, as the Linux EFI stub measures it (SHA-384 of the file),
    /// EV_EVENT_TAG "Linux initrd", into RTMR2.
    Initrd,
    /// The kernel command line as the Linux EFI stub measures it
    /// (SHA-384 of the UTF-16LE LoadOptions with their NUL; TDVF's QEMU loader
    /// appends ` initrd=initrd`), EV_EVENT_TAG "LOADED_IMAGE::LoadOptions",
    /// into RTMR2.
    Cmdline,
}

impl Component {
    /// `"kernel"`, `"initrd"` or `"cmdline"` (the policy keys).
    pub const fn as_str(self) -> &'static str {
        match self {
            Component::Kernel => "kernel",
            Component::Initrd => "initrd",
            Component::Cmdline => "cmdline",
        }
    }

    /// The RTMR (0-3) the firmware and the Linux EFI stub extend with it.
    pub const fn rtmr(self) -> usize {
        match self {
            Component::Kernel => 1,
            Component::Initrd | Component::Cmdline => 2,
        }
    }
}

/// The Linux tag of an EV_EVENT_TAG event, in either form the EFI stub has
/// written: the bare NUL-terminated text, or a TCG_PCClientTaggedEvent
/// (`u32 taggedEventID`, `u32 taggedEventDataSize`, the text).
pub(crate) fn linux_tag(data: &[u8]) -> Option<Component> {
    for (id, text, component) in [
        (LINUX_INITRD_TAG_ID, LINUX_INITRD_TEXT, Component::Initrd),
        (
            LINUX_LOAD_OPTIONS_TAG_ID,
            LINUX_LOAD_OPTIONS_TEXT,
            Component::Cmdline,
        ),
    ] {
        if data == text {
            return Some(component);
        }
        let (head, rest) = data.split_at_checked(8)?;
        let (id_bytes, len_bytes) = head.split_at(4);
        if id_bytes == id.to_le_bytes()
            && len_bytes == u32::try_from(text.len()).unwrap_or(u32::MAX).to_le_bytes()
            && rest == text
        {
            return Some(component);
        }
    }
    None
}

/// `data` as text, if it is printable ASCII (an optional trailing NUL
/// allowed), else as UTF-16LE printable ASCII (optional trailing NUL).
pub(crate) fn text(data: &[u8]) -> Option<String> {
    let printable = |b: u8| b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b);
    let ascii = data.strip_suffix(&[0]).unwrap_or(data);
    if !ascii.is_empty() && ascii.iter().all(|&b| printable(b)) {
        return Some(String::from_utf8_lossy(ascii).into_owned());
    }
    if data.len() >= 2 && data.len().is_multiple_of(2) {
        let units: Vec<u16> = data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let units = units.strip_suffix(&[0]).unwrap_or(&units);
        let units = units.strip_suffix(&[0]).unwrap_or(units);
        let bytes: Option<Vec<u8>> = units.iter().map(|&u| u8::try_from(u).ok()).collect();
        if let Some(bytes) = bytes.filter(|v| !v.is_empty() && v.iter().all(|&b| printable(b))) {
            return Some(bytes.into_iter().map(char::from).collect());
        }
    }
    None
}

/// The variable name of a UEFI_VARIABLE_DATA (`GUID VariableName`,
/// `u64 UnicodeNameLength` (characters), `u64 VariableDataLength`,
/// `CHAR16 UnicodeName[]`, data), if it is well formed and printable.
pub(crate) fn variable_name(data: &[u8]) -> Option<String> {
    let name_len = u64::from_le_bytes(data.get(16..24)?.try_into().ok()?);
    let name_bytes = usize::try_from(name_len).ok()?.checked_mul(2)?;
    let name = data.get(32..32usize.checked_add(name_bytes)?)?;
    text(name)
}
