//! TCG crypto-agile event logs, as TDX firmware (TDVF) writes them into the
//! CC Event Log area (CCEL), and their replay into the TDX RTMRs.
//!
//! Format (TCG PC Client Platform Firmware Profile Specification 1.06 rev 52,
//! §10.2.1 TCG_PCR_EVENT, §10.2.2 TCG_PCR_EVENT2, §10.4.5.1
//! TCG_EfiSpecIdEvent; UEFI 2.10 §38.4 EFI_CC_MEASUREMENT_PROTOCOL):
//!
//! ```text
//! event 0 (SHA-1 layout, TCG_PCR_EVENT):
//!   u32 pcrIndex (0; TDVF writes 1)   u32 eventType = EV_NO_ACTION (3)
//!   u8 digest[20] = 0                 u32 eventSize, then TCG_EfiSpecIdEvent:
//!     "Spec ID Event03\0"  u32 platformClass  u8 specVersionMinor (0)  u8 specVersionMajor (2)
//!     u8 specErrata  u8 uintnSize (1|2)  u32 numberOfAlgorithms
//!     {u16 algorithmId, u16 digestSize} x numberOfAlgorithms   u8 vendorInfoSize  vendorInfo
//! events 1.. (TCG_PCR_EVENT2):
//!   u32 pcrIndex (for CC logs: the CC MR index)  u32 eventType
//!   u32 count  {u16 algorithmId, digest[size from the Spec ID event]} x count
//!   u32 eventSize  event[eventSize]
//! then the unused rest of the log area: all 0xFF (TDVF) or all 0x00
//! ```
//!
//! CC MR index (UEFI 2.10 §38.4.1; TDVF design guide §"TD measurement"): 0 =
//! MRTD (never extended through the log), 1 = RTMR0, 2 = RTMR1, 3 = RTMR2,
//! 4 = RTMR3. TDVF maps TPM PCR 1 and 7 to RTMR0, PCR 2-6 to RTMR1 and PCR
//! 8-15 to RTMR2. Replay: every RTMR starts as 48 zero bytes and each
//! measured event extends it, `RTMR := SHA-384(RTMR ‖ digest)`; EV_NO_ACTION
//! events are never extended, wherever they appear.
//!
//! The parser is strict and bounded: inputs above [`MAX_LOG_LEN`] are refused
//! before anything is read; every size is checked against the bytes that are
//! left; events are borrowed, never copied, and at most [`MAX_EVENTS`] of them
//! are kept; the Spec ID event must list only known algorithms with their
//! exact sizes (an unknown algorithm's digests could not be delimited), and
//! every event must carry exactly one digest of each. After the last event
//! the rest of the input must be uniform padding (0xFF or 0x00), or nothing:
//! a log cut off inside an event is [`EventLogError::Truncated`].
//!
//! Module map: [`types`] (event types, algorithms, what an event measures),
//! [`ccel`] (the ACPI table), `error` ([`EventLogError`]).

pub mod ccel;
mod error;
pub mod types;

use sha2::{Digest, Sha384};

pub use ccel::CcelTable;
pub use error::EventLogError;
pub use types::Component;

use types::{ALG_SHA384, EV_NO_ACTION};

/// The largest log accepted, in bytes (TDVF's log area is 64 KiB by default,
/// 256 KiB on GCP).
pub const MAX_LOG_LEN: usize = 4 * 1024 * 1024;
/// The most events kept (a TDVF boot records a few dozen, a GRUB boot a few
/// hundred); with the smallest SHA-384 event (66 bytes) this bound, not
/// [`MAX_LOG_LEN`], is what limits the memory a log can make the parser keep.
pub const MAX_EVENTS: usize = 16_384;
/// The most algorithms a Spec ID event may list.
pub const MAX_ALGORITHMS: usize = 16;
/// Number of RTMRs.
pub const RTMR_COUNT: usize = 4;

/// A 48-byte SHA-384 value (a digest or an RTMR).
pub type Sha384Digest = [u8; 48];

const SPEC_ID_SIGNATURE: &[u8; 16] = b"Spec ID Event03\0";

/// One algorithm of the Spec ID event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlgorithmSize {
    /// TPM_ALG_ID.
    pub algorithm_id: u16,
    /// Size of its digests.
    pub digest_size: u16,
}

/// The TCG_EfiSpecIdEvent of event 0, with the header fields that vary.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpecIdEvent<'a> {
    /// pcrIndex of the TCG_PCR_EVENT header (0 per the specification; TDVF writes 1).
    pub header_pcr_index: u32,
    /// platformClass (0 client, 1 server).
    pub platform_class: u32,
    /// specVersionMinor (0).
    pub spec_version_minor: u8,
    /// specVersionMajor (2).
    pub spec_version_major: u8,
    /// specErrata.
    pub spec_errata: u8,
    /// uintnSize (1: 32-bit UINTN, 2: 64-bit).
    pub uintn_size: u8,
    /// The digest algorithms every event carries, in order.
    pub algorithms: Vec<AlgorithmSize>,
    /// vendorInfo.
    pub vendor_info: &'a [u8],
}

/// One TCG_PCR_EVENT2, borrowed from the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event<'a> {
    /// Its position in the log: 1 for the first event after the Spec ID
    /// event (which is event 0).
    pub number: u32,
    /// Absolute offset of its first byte.
    pub offset: usize,
    /// pcrIndex: the CC MR index (1-4 = RTMR0-3).
    pub mr_index: u32,
    /// eventType.
    pub event_type: u32,
    /// Its SHA-384 digest.
    pub sha384: Sha384Digest,
    /// The TPMT_HA list (already validated).
    digests: &'a [u8],
    /// The event data.
    pub data: &'a [u8],
}

/// Uniform padding after the last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Padding {
    /// The padding byte (0xFF or 0x00).
    pub byte: u8,
    /// How many bytes.
    pub len: usize,
}

/// A parsed event log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventLog<'a> {
    /// Event 0.
    pub spec_id: SpecIdEvent<'a>,
    /// Events 1.., in log order.
    pub events: Vec<Event<'a>>,
    /// Bytes of the log proper (event 0 to the end of the last event): the
    /// prefix a sender may trim the log area to.
    pub len: usize,
    /// The padding after it, if any.
    pub padding: Option<Padding>,
}

/// A bounds-checked cursor whose errors are [`EventLogError`]s with absolute offsets.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], EventLogError> {
        let truncated = EventLogError::Truncated {
            what,
            offset: self.pos,
            needed: n,
            available: self.remaining(),
        };
        let end = self.pos.checked_add(n).ok_or(truncated.clone())?;
        let out = self.buf.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], EventLogError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, EventLogError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, EventLogError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, EventLogError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a `u32` size field `field`, then that many bytes.
    fn sized(&mut self, field: &'static str) -> Result<&'a [u8], EventLogError> {
        let offset = self.pos;
        let declared = self.u32(field)?;
        let available = self.remaining();
        let n = usize::try_from(declared).unwrap_or(usize::MAX);
        if n > available {
            return Err(EventLogError::SizeOutOfBounds {
                field,
                offset,
                declared: u64::from(declared),
                available,
            });
        }
        self.take(n, field)
    }
}

fn spec_id_error(
    field: &'static str,
    offset: usize,
    got: String,
    want: &'static str,
) -> EventLogError {
    EventLogError::SpecIdHeader {
        field,
        offset,
        got,
        want,
    }
}

impl<'a> EventLog<'a> {
    /// Parses a whole log area (or a log trimmed to [`EventLog::len`]).
    pub fn parse(input: &'a [u8]) -> Result<EventLog<'a>, EventLogError> {
        if input.len() > MAX_LOG_LEN {
            return Err(EventLogError::TooLarge {
                len: input.len(),
                max: MAX_LOG_LEN,
            });
        }
        let mut c = Cursor { buf: input, pos: 0 };
        let spec_id = parse_spec_id(&mut c)?;
        let mut events = Vec::new();
        let mut padding = None;
        while c.remaining() > 0 {
            if let Some(p) = padding_at(&c)? {
                padding = Some(p);
                break;
            }
            if events.len() == MAX_EVENTS {
                return Err(EventLogError::TooManyEvents { max: MAX_EVENTS });
            }
            let number = u32::try_from(events.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            events.push(parse_event(&mut c, number, &spec_id.algorithms)?);
        }
        let len = input.len() - padding.map_or(0, |p| p.len);
        Ok(EventLog {
            spec_id,
            events,
            len,
            padding,
        })
    }

    /// The events that extend an RTMR (every event but EV_NO_ACTION), each
    /// with its RTMR (0-3). Fails on the first measured event whose CC MR
    /// index is not 1-4.
    pub fn measured(&self) -> Result<Vec<(usize, &Event<'a>)>, EventLogError> {
        let mut out = Vec::with_capacity(self.events.len());
        for e in self.events.iter().filter(|e| e.event_type != EV_NO_ACTION) {
            let rtmr = rtmr_of(e.mr_index).ok_or(EventLogError::MrIndex {
                event: e.number,
                offset: e.offset,
                mr_index: e.mr_index,
            })?;
            out.push((rtmr, e));
        }
        Ok(out)
    }

    /// Replays the log: RTMR0-3 as the TDX module holds them after these events.
    pub fn replay(&self) -> Result<[Sha384Digest; RTMR_COUNT], EventLogError> {
        let mut rtmrs = [[0u8; 48]; RTMR_COUNT];
        for (i, e) in self.measured()? {
            if let Some(r) = rtmrs.get_mut(i) {
                extend(r, &e.sha384);
            }
        }
        Ok(rtmrs)
    }
}

/// The RTMR (0-3) of a CC MR index (1-4).
pub const fn rtmr_of(mr_index: u32) -> Option<usize> {
    match mr_index {
        1..=4 => Some(mr_index as usize - 1),
        _ => None,
    }
}

/// `mr := SHA-384(mr ‖ digest)`: one TDG.MR.RTMR.EXTEND.
pub fn extend(mr: &mut Sha384Digest, digest: &Sha384Digest) {
    *mr = Sha384::new()
        .chain_update(*mr)
        .chain_update(digest)
        .finalize()
        .into();
}

fn parse_spec_id<'a>(c: &mut Cursor<'a>) -> Result<SpecIdEvent<'a>, EventLogError> {
    let header_pcr_index = c.u32("Spec ID event pcrIndex")?;
    if header_pcr_index > 1 {
        return Err(spec_id_error(
            "pcrIndex",
            0,
            header_pcr_index.to_string(),
            "0 (or 1, as TDVF writes)",
        ));
    }
    let event_type = c.u32("Spec ID event eventType")?;
    if event_type != EV_NO_ACTION {
        return Err(spec_id_error(
            "eventType",
            4,
            format!("{event_type:#x}"),
            "EV_NO_ACTION (0x3)",
        ));
    }
    let digest: [u8; 20] = c.array("Spec ID event digest")?;
    if digest != [0; 20] {
        return Err(spec_id_error(
            "digest",
            8,
            "not zero".to_owned(),
            "20 zero bytes",
        ));
    }
    let data = c.sized("Spec ID event eventSize")?;
    let base = c.pos - data.len();
    let mut s = Cursor {
        buf: c.buf.get(..c.pos).unwrap_or_default(),
        pos: base,
    };
    let signature: [u8; 16] = s.array("Spec ID signature")?;
    if &signature != SPEC_ID_SIGNATURE {
        return Err(spec_id_error(
            "signature",
            base,
            format!("{signature:02x?}"),
            "\"Spec ID Event03\\0\"",
        ));
    }
    let platform_class = s.u32("platformClass")?;
    let minor_at = s.pos;
    let spec_version_minor = s.u8("specVersionMinor")?;
    let spec_version_major = s.u8("specVersionMajor")?;
    if (spec_version_major, spec_version_minor) != (2, 0) {
        return Err(spec_id_error(
            "specVersionMajor.Minor",
            minor_at,
            format!("{spec_version_major}.{spec_version_minor}"),
            "2.0",
        ));
    }
    let spec_errata = s.u8("specErrata")?;
    let uintn_at = s.pos;
    let uintn_size = s.u8("uintnSize")?;
    if !(1..=2).contains(&uintn_size) {
        return Err(spec_id_error(
            "uintnSize",
            uintn_at,
            uintn_size.to_string(),
            "1 or 2",
        ));
    }
    let count_at = s.pos;
    let count = s.u32("numberOfAlgorithms")?;
    if count == 0 || count as usize > MAX_ALGORITHMS {
        return Err(EventLogError::AlgorithmCount {
            offset: count_at,
            got: count,
        });
    }
    let mut algorithms: Vec<AlgorithmSize> = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let at = s.pos;
        let algorithm_id = s.u16("algorithmId")?;
        let digest_size = s.u16("digestSize")?;
        let (_, want) = types::algorithm(algorithm_id).ok_or(EventLogError::UnknownAlgorithm {
            alg: algorithm_id,
            offset: at,
        })?;
        if digest_size != want {
            return Err(EventLogError::AlgorithmSize {
                alg: algorithm_id,
                offset: at + 2,
                got: digest_size,
                want,
            });
        }
        if algorithms.iter().any(|a| a.algorithm_id == algorithm_id) {
            return Err(EventLogError::DuplicateAlgorithm {
                alg: algorithm_id,
                offset: at,
            });
        }
        algorithms.push(AlgorithmSize {
            algorithm_id,
            digest_size,
        });
    }
    let vendor_info_size = s.u8("vendorInfoSize")?;
    let vendor_info = s.take(usize::from(vendor_info_size), "vendorInfo")?;
    if s.remaining() != 0 {
        return Err(spec_id_error(
            "eventSize",
            28,
            format!(
                "{} bytes, {} more than the Spec ID event",
                data.len(),
                s.remaining()
            ),
            "exactly the size of the TCG_EfiSpecIdEvent",
        ));
    }
    if !algorithms.iter().any(|a| a.algorithm_id == ALG_SHA384) {
        return Err(EventLogError::NoSha384);
    }
    Ok(SpecIdEvent {
        header_pcr_index,
        platform_class,
        spec_version_minor,
        spec_version_major,
        spec_errata,
        uintn_size,
        algorithms,
        vendor_info,
    })
}

/// Uniform padding starting at the cursor, if its first bytes (up to 8: an
/// event header) are all 0xFF or all 0x00; then every remaining byte must be
/// that byte.
fn padding_at(c: &Cursor<'_>) -> Result<Option<Padding>, EventLogError> {
    let rest = c.buf.get(c.pos..).unwrap_or_default();
    let head = rest.get(..rest.len().min(8)).unwrap_or_default();
    let Some(&byte) = head.first() else {
        return Ok(None);
    };
    if !(byte == 0xFF || byte == 0x00) || head.iter().any(|&b| b != byte) {
        return Ok(None);
    }
    if let Some(i) = rest.iter().position(|&b| b != byte) {
        return Err(EventLogError::DataAfterPadding {
            padding_at: c.pos,
            offset: c.pos + i,
        });
    }
    Ok(Some(Padding {
        byte,
        len: rest.len(),
    }))
}

fn parse_event<'a>(
    c: &mut Cursor<'a>,
    number: u32,
    algorithms: &[AlgorithmSize],
) -> Result<Event<'a>, EventLogError> {
    let offset = c.pos;
    let mr_index = c.u32("event pcrIndex")?;
    let event_type = c.u32("event eventType")?;
    let count_at = c.pos;
    let count = c.u32("event digest count")?;
    if count as usize != algorithms.len() {
        return Err(EventLogError::DigestCount {
            event: number,
            offset: count_at,
            got: count,
            want: algorithms.len(),
        });
    }
    let digests_start = c.pos;
    let mut seen = [false; MAX_ALGORITHMS];
    let mut sha384 = None;
    for _ in 0..count {
        let at = c.pos;
        let alg = c.u16("digest algorithmId")?;
        let i = algorithms
            .iter()
            .position(|a| a.algorithm_id == alg)
            .filter(|&i| !seen.get(i).copied().unwrap_or(true))
            .ok_or(EventLogError::EventAlgorithm {
                event: number,
                offset: at,
                alg,
            })?;
        if let Some(s) = seen.get_mut(i) {
            *s = true;
        }
        let size = algorithms.get(i).map_or(0, |a| usize::from(a.digest_size));
        let d = c.take(size, "event digest")?;
        if alg == ALG_SHA384 {
            let mut a = [0u8; 48];
            a.copy_from_slice(d);
            sha384 = Some(a);
        }
    }
    let digests = c.buf.get(digests_start..c.pos).unwrap_or_default();
    let data = c.sized("event eventSize")?;
    // The Spec ID event lists SHA-384 (checked) and every event carries each
    // listed algorithm exactly once (checked above).
    let sha384 = sha384.ok_or(EventLogError::NoSha384)?;
    Ok(Event {
        number,
        offset,
        mr_index,
        event_type,
        sha384,
        digests,
        data,
    })
}

impl<'a> Event<'a> {
    /// The RTMR (0-3) this event extends, if it is measured and its MR index is an RTMR's.
    pub fn rtmr(&self) -> Option<usize> {
        if self.event_type == EV_NO_ACTION {
            None
        } else {
            rtmr_of(self.mr_index)
        }
    }

    /// Every digest: (TPM_ALG_ID, bytes), in log order.
    pub fn digests(&self) -> Vec<(u16, &'a [u8])> {
        let mut out = Vec::new();
        let mut rest = self.digests;
        while let Some((id, tail)) = rest.split_first_chunk::<2>() {
            let alg = u16::from_le_bytes(*id);
            let Some((_, size)) = types::algorithm(alg) else {
                break;
            };
            let Some((d, tail)) = tail.split_at_checked(usize::from(size)) else {
                break;
            };
            out.push((alg, d));
            rest = tail;
        }
        out
    }

    /// The specification's name of its type, if it has one.
    pub fn type_name(&self) -> Option<&'static str> {
        types::event_type_name(self.event_type)
    }

    /// Whether its SHA-384 digest is the SHA-384 of its own data (true of
    /// separators and EFI actions: what was measured is in the log).
    pub fn digest_is_hash_of_data(&self) -> bool {
        let h: Sha384Digest = Sha384::digest(self.data).into();
        h == self.sha384
    }

    /// The OS component this event measures, by its type and data (not by
    /// its RTMR): a UEFI application (the kernel in a direct boot), or the
    /// Linux EFI stub's initrd and command-line events.
    pub fn component(&self) -> Option<Component> {
        match self.event_type {
            types::EV_EFI_BOOT_SERVICES_APPLICATION => Some(Component::Kernel),
            types::EV_EVENT_TAG => types::linux_tag(self.data),
            _ => None,
        }
    }

    /// EV_EFI_ACTION text, if the data is printable ASCII.
    pub fn action_text(&self) -> Option<&'a str> {
        if self.event_type != types::EV_EFI_ACTION {
            return None;
        }
        let printable =
            !self.data.is_empty() && self.data.iter().all(|&b| (0x20..0x7f).contains(&b));
        if printable {
            std::str::from_utf8(self.data).ok()
        } else {
            None
        }
    }

    /// What it measures, in words (for people: `enclavectl evidence inspect`).
    pub fn describe(&self) -> String {
        use types::*;
        let short = |t: String| -> String {
            if t.chars().count() > 100 {
                format!("{}…", t.chars().take(100).collect::<String>())
            } else {
                t
            }
        };
        let text = || types::text(self.data).map(short);
        match self.event_type {
            EV_NO_ACTION => format!(
                "not extended{}",
                text().map(|t| format!(": {t}")).unwrap_or_default()
            ),
            EV_SEPARATOR => format!("separator ({})", hex_short(self.data)),
            EV_EFI_ACTION | EV_ACTION => {
                text().unwrap_or_else(|| "action (binary data)".to_owned())
            }
            EV_EVENT_TAG => match linux_tag(self.data) {
                Some(Component::Initrd) => "initrd (Linux EFI stub, \"Linux initrd\")".to_owned(),
                Some(Component::Cmdline) => {
                    "kernel command line (Linux EFI stub, LOADED_IMAGE::LoadOptions)".to_owned()
                }
                _ => "tagged event".to_owned(),
            },
            EV_EFI_BOOT_SERVICES_APPLICATION => {
                let path = device_path_files(self.data);
                format!(
                    "UEFI application, Authenticode digest (the kernel in a direct boot){}",
                    if path.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", path.join(" "))
                    }
                )
            }
            EV_EFI_VARIABLE_DRIVER_CONFIG
            | EV_EFI_VARIABLE_BOOT
            | EV_EFI_VARIABLE_BOOT2
            | EV_EFI_VARIABLE_AUTHORITY => format!(
                "UEFI variable {}",
                variable_name(self.data).unwrap_or_else(|| "(unnamed)".to_owned())
            ),
            EV_EFI_PLATFORM_FIRMWARE_BLOB | EV_EFI_PLATFORM_FIRMWARE_BLOB2 => {
                format!("firmware volume{}", described_blob(self.data))
            }
            EV_EFI_HANDOFF_TABLES | EV_EFI_HANDOFF_TABLES2 => {
                format!("handoff tables (TD HOB){}", described_blob(self.data))
            }
            EV_PLATFORM_CONFIG_FLAGS => format!(
                "platform configuration{}",
                text().map(|t| format!(": {t}")).unwrap_or_default()
            ),
            EV_IPL => format!(
                "boot loader{}",
                text().map(|t| format!(": {t}")).unwrap_or_default()
            ),
            EV_EFI_GPT_EVENT | EV_EFI_GPT_EVENT2 => "GPT partition table".to_owned(),
            t => match event_type_name(t) {
                Some(n) => n.to_owned(),
                None => format!("event type {t:#x}"),
            },
        }
    }
}

fn hex_short(b: &[u8]) -> String {
    let mut s: String = b.iter().take(16).map(|x| format!("{x:02x}")).collect();
    if b.len() > 16 {
        s.push('…');
    }
    s
}

/// `: <description>` of an EV_EFI_PLATFORM_FIRMWARE_BLOB2 / HANDOFF_TABLES2
/// (`u8 size`, description, then the base and length).
fn described_blob(data: &[u8]) -> String {
    data.split_first()
        .and_then(|(&n, rest)| rest.get(..usize::from(n)))
        .and_then(types::text)
        .map(|t| format!(": {t}"))
        .unwrap_or_default()
}

/// File names in the device path of a UEFI_IMAGE_LOAD_EVENT (four UINT64s,
/// then the device path): media file-path nodes (type 4, subtype 4).
fn device_path_files(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Some(mut rest) = data.get(32..) else {
        return out;
    };
    while let Some((head, _)) = rest.split_first_chunk::<4>() {
        let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
        if len < 4 || head[0] == 0x7f {
            break;
        }
        let Some((node, tail)) = rest.split_at_checked(len) else {
            break;
        };
        if head[0] == 4 && head[1] == 4 {
            if let Some(t) = node.get(4..).and_then(types::text) {
                out.push(t);
            }
        }
        rest = tail;
    }
    out
}

#[cfg(feature = "serde")]
mod json {
    use serde::ser::{Serialize, SerializeStruct, Serializer};

    use super::{Event, EventLog, Padding, SpecIdEvent};
    use crate::json::hex;

    impl Serialize for SpecIdEvent<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let algorithms: Vec<AlgView> = self.algorithms.iter().map(|a| AlgView(*a)).collect();
            let mut s = serializer.serialize_struct("SpecIdEvent", 8)?;
            s.serialize_field("header_pcr_index", &self.header_pcr_index)?;
            s.serialize_field("platform_class", &self.platform_class)?;
            s.serialize_field("spec_version_minor", &self.spec_version_minor)?;
            s.serialize_field("spec_version_major", &self.spec_version_major)?;
            s.serialize_field("spec_errata", &self.spec_errata)?;
            s.serialize_field("uintn_size", &self.uintn_size)?;
            s.serialize_field("algorithms", &algorithms)?;
            s.serialize_field("vendor_info", &hex(self.vendor_info))?;
            s.end()
        }
    }

    /// One Spec ID algorithm as `{"id", "name", "digest_size"}`.
    struct AlgView(super::AlgorithmSize);

    impl Serialize for AlgView {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut s = serializer.serialize_struct("Algorithm", 3)?;
            s.serialize_field("id", &self.0.algorithm_id)?;
            s.serialize_field(
                "name",
                super::types::algorithm(self.0.algorithm_id).map_or("unknown", |(n, _)| n),
            )?;
            s.serialize_field("digest_size", &self.0.digest_size)?;
            s.end()
        }
    }

    /// One digest as `{"algorithm": name, "digest": hex}`.
    struct DigestView<'a>(u16, &'a [u8]);

    impl Serialize for DigestView<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut s = serializer.serialize_struct("Digest", 2)?;
            s.serialize_field(
                "algorithm",
                super::types::algorithm(self.0).map_or("unknown", |(n, _)| n),
            )?;
            s.serialize_field("digest", &hex(self.1))?;
            s.end()
        }
    }

    impl Serialize for Event<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let digests: Vec<DigestView<'_>> = self
                .digests()
                .into_iter()
                .map(|(a, d)| DigestView(a, d))
                .collect();
            let mut s = serializer.serialize_struct("Event", 10)?;
            s.serialize_field("number", &self.number)?;
            s.serialize_field("offset", &self.offset)?;
            s.serialize_field("mr_index", &self.mr_index)?;
            s.serialize_field("rtmr", &self.rtmr())?;
            s.serialize_field("event_type", &self.event_type)?;
            s.serialize_field("event_type_name", &self.type_name())?;
            s.serialize_field("digests", &digests)?;
            s.serialize_field("measures", &self.describe())?;
            s.serialize_field("component", &self.component().map(super::Component::as_str))?;
            s.serialize_field("data", &hex(self.data))?;
            s.end()
        }
    }

    impl Serialize for Padding {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut s = serializer.serialize_struct("Padding", 2)?;
            s.serialize_field("byte", &self.byte)?;
            s.serialize_field("len", &self.len)?;
            s.end()
        }
    }

    impl Serialize for EventLog<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut s = serializer.serialize_struct("EventLog", 4)?;
            s.serialize_field("spec_id", &self.spec_id)?;
            s.serialize_field("events", &self.events)?;
            s.serialize_field("len", &self.len)?;
            s.serialize_field("padding", &self.padding)?;
            s.end()
        }
    }
}
