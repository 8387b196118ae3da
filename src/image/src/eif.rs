//! AWS Nitro Enclaves' Enclave Image File (EIF), version 4: written and read.
//!
//! Layout (aws/aws-nitro-enclaves-image-format, README "Enclave Image File
//! (EIF) Specification" of 2024-06-21, and `src/defs/mod.rs`; all integers
//! big-endian):
//!
//! - `EifHeader`, 548 bytes: magic `.eif`, version u16 (4), flags u16 (bit 0:
//!   aarch64; 0 here, x86_64), default_mem u64, default_cpus u64, reserved
//!   u16, num_sections u16, section_offsets [u64; 32], section_sizes
//!   [u64; 32], unused u32, eif_crc32 u32;
//! - then each section: `EifSectionHeader` (type u16, flags u16, size u64;
//!   12 bytes) and its data. Types: 1 kernel, 2 cmdline, 3 ramdisk,
//!   4 signature, 5 metadata.
//! - `eif_crc32`: CRC-32/ISO-HDLC (the zlib CRC) over the header without its
//!   last 4 bytes, then every section header and its data in file order.
//!
//! We write the sections in the order AWS's `EifBuilder` does (kernel,
//! cmdline, metadata, ramdisks), the command line without a NUL (its
//! `CString::into_bytes`), default_mem 1 GiB and default_cpus 2 as it does.
//!
//! Why our own code and not the `aws-nitro-enclaves-image-format` crate:
//! that crate links OpenSSL (through `aws-nitro-enclaves-cose` and its
//! signing), which this repository keeps out of its host tools; the format
//! itself is ~150 lines.
//!
//! Reproducibility: the metadata section is JSON we write from fixed values
//! and `SOURCE_DATE_EPOCH` ([`metadata_json`]); nothing else in the file
//! depends on the build machine.

use std::fmt;

/// `.eif`.
pub const MAGIC: [u8; 4] = *b".eif";
/// The format version written (and the newest read).
pub const VERSION: u16 = 4;
/// Size of the file header.
pub const HEADER_SIZE: usize = 548;
/// Size of a section header.
pub const SECTION_HEADER_SIZE: usize = 12;
/// Most sections a file can have.
pub const MAX_SECTIONS: usize = 32;
/// What AWS's builder writes as default memory (unused by the platform).
pub const DEFAULT_MEM: u64 = 1024 * 1024 * 1024;
/// What AWS's builder writes as default vCPUs (unused by the platform).
pub const DEFAULT_CPUS: u64 = 2;

/// A section type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionType {
    /// The Linux kernel (bzImage on x86_64).
    Kernel = 1,
    /// The kernel command line.
    Cmdline = 2,
    /// A ramdisk (cpio or cpio.gz); all of them form the initramfs.
    Ramdisk = 3,
    /// The PCR0 signature and signing certificate (CBOR).
    Signature = 4,
    /// Build metadata (JSON), not measured.
    Metadata = 5,
}

impl SectionType {
    fn from_u16(v: u16) -> Option<SectionType> {
        Some(match v {
            1 => SectionType::Kernel,
            2 => SectionType::Cmdline,
            3 => SectionType::Ramdisk,
            4 => SectionType::Signature,
            5 => SectionType::Metadata,
            _ => return None,
        })
    }
}

/// A parsed EIF: its sections in file order, borrowing the file's bytes.
#[derive(Debug)]
pub struct Eif<'a> {
    /// Format version.
    pub version: u16,
    /// Header flags (bit 0: aarch64).
    pub flags: u16,
    /// (type, data) of each section, in file order.
    pub sections: Vec<(SectionType, &'a [u8])>,
}

impl<'a> Eif<'a> {
    /// The data of the sections of type `t`, in file order.
    pub fn of(&self, t: SectionType) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.sections
            .iter()
            .filter(move |(st, _)| *st == t)
            .map(|(_, d)| *d)
    }
}

/// Why bytes are not an EIF we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EifError {
    /// Shorter than its header or a section it declares.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// The offset it needed up to.
        needed: u64,
        /// The file length.
        len: usize,
    },
    /// Not `.eif`.
    BadMagic,
    /// A version this code does not know.
    UnsupportedVersion(u16),
    /// num_sections is 0 or above 32.
    SectionCount(u16),
    /// A section header or table entry that does not match its section.
    BadSection {
        /// Index of the section.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// The CRC in the header is not the file's.
    Crc {
        /// In the header.
        stored: u32,
        /// Of the bytes.
        computed: u32,
    },
    /// A mandatory section is missing or repeated.
    Sections(String),
    /// An input cannot be written into an EIF.
    Input(String),
}

impl fmt::Display for EifError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EifError::Truncated { what, needed, len } => {
                write!(f, "EIF {what}: needs {needed} bytes, the file has {len}")
            }
            EifError::BadMagic => f.write_str("not an EIF (magic is not \".eif\")"),
            EifError::UnsupportedVersion(v) => write!(f, "EIF version {v} (2 to 4 are known)"),
            EifError::SectionCount(n) => write!(f, "EIF declares {n} sections (1 to 32)"),
            EifError::BadSection { index, problem } => write!(f, "EIF section {index}: {problem}"),
            EifError::Crc { stored, computed } => write!(
                f,
                "EIF CRC-32 is {stored:#010x} in the header, {computed:#010x} over the file"
            ),
            EifError::Sections(m) => write!(f, "EIF sections: {m}"),
            EifError::Input(m) => write!(f, "EIF input: {m}"),
        }
    }
}

impl std::error::Error for EifError {}

/// What goes into an EIF.
#[derive(Debug, Clone)]
pub struct EifInputs<'a> {
    /// The kernel (bzImage).
    pub kernel: &'a [u8],
    /// The kernel command line (written without a NUL).
    pub cmdline: &'a str,
    /// The ramdisks, in order (ramdisk 0 is measured into PCR1, the others
    /// into PCR2).
    pub ramdisks: Vec<&'a [u8]>,
    /// The metadata section (JSON, see [`metadata_json`]).
    pub metadata: &'a [u8],
    /// A signature section (CBOR, see [`signing_certificate`]), written
    /// last as AWS's builder does; `image build` writes none.
    pub signature: Option<&'a [u8]>,
}

/// The metadata section: AWS's `EifIdentityInfo` JSON, every value fixed or
/// derived from `source_date_epoch`, so two builds give the same bytes.
pub fn metadata_json(tool_version: &str, source_date_epoch: u32) -> Vec<u8> {
    format!(
        "{{\"ImageName\":\"enclave-init\",\"ImageVersion\":\"{v}\",\"BuildMetadata\":{{\"BuildTime\":\"{t}\",\"BuildTool\":\"enclavectl\",\"BuildToolVersion\":\"{v}\",\"OperatingSystem\":\"Linux\",\"KernelVersion\":\"unknown\"}},\"DockerInfo\":{{}},\"CustomMetadata\":{{}}}}",
        v = tool_version.escape_default(),
        t = rfc3339(source_date_epoch),
    )
    .into_bytes()
}

/// Writes an EIF.
pub fn build(inputs: &EifInputs<'_>) -> Result<Vec<u8>, EifError> {
    if inputs.ramdisks.is_empty() {
        return Err(EifError::Input("at least one ramdisk is needed".into()));
    }
    if inputs.cmdline.contains('\0') {
        return Err(EifError::Input("the command line contains a NUL".into()));
    }
    let mut sections: Vec<(SectionType, &[u8])> = vec![
        (SectionType::Kernel, inputs.kernel),
        (SectionType::Cmdline, inputs.cmdline.as_bytes()),
        (SectionType::Metadata, inputs.metadata),
    ];
    sections.extend(inputs.ramdisks.iter().map(|r| (SectionType::Ramdisk, *r)));
    if let Some(sig) = inputs.signature {
        sections.push((SectionType::Signature, sig));
    }
    let count = match u16::try_from(sections.len()) {
        Ok(n) if usize::from(n) <= MAX_SECTIONS => n,
        _ => {
            return Err(EifError::Input(format!(
                "{} sections, at most {MAX_SECTIONS}",
                sections.len()
            )))
        }
    };

    let mut offsets = [0u64; MAX_SECTIONS];
    let mut sizes = [0u64; MAX_SECTIONS];
    let mut at = HEADER_SIZE as u64;
    for (i, (_, data)) in sections.iter().enumerate() {
        offsets[i] = at;
        sizes[i] = data.len() as u64;
        at += (SECTION_HEADER_SIZE + data.len()) as u64;
    }
    let mut out = Vec::with_capacity(usize::try_from(at).unwrap_or(0));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes()); // flags: x86_64
    out.extend_from_slice(&DEFAULT_MEM.to_be_bytes());
    out.extend_from_slice(&DEFAULT_CPUS.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes()); // reserved
    out.extend_from_slice(&count.to_be_bytes());
    for o in offsets {
        out.extend_from_slice(&o.to_be_bytes());
    }
    for s in sizes {
        out.extend_from_slice(&s.to_be_bytes());
    }
    out.extend_from_slice(&0u32.to_be_bytes()); // unused
    out.extend_from_slice(&0u32.to_be_bytes()); // CRC, filled in below
    debug_assert_eq!(out.len(), HEADER_SIZE);
    for (t, data) in &sections {
        out.extend_from_slice(&(*t as u16).to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&(data.len() as u64).to_be_bytes());
        out.extend_from_slice(data);
    }
    let crc = file_crc(&out);
    out[HEADER_SIZE - 4..HEADER_SIZE].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// The CRC the header must carry: over everything but its own 4 bytes.
fn file_crc(file: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(&file[..HEADER_SIZE - 4]);
    crc.update(&file[HEADER_SIZE..]);
    crc.finish()
}

fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// Reads an EIF strictly: header, section table, each section header
/// matching its table entry, sections contiguous from the header to the end
/// of the file, the CRC, exactly one kernel and one command line, at least
/// one ramdisk, every ramdisk after the kernel.
pub fn parse(file: &[u8]) -> Result<Eif<'_>, EifError> {
    if file.len() < HEADER_SIZE {
        return Err(EifError::Truncated {
            what: "header",
            needed: HEADER_SIZE as u64,
            len: file.len(),
        });
    }
    if file[..4] != MAGIC {
        return Err(EifError::BadMagic);
    }
    let version = be_u16(file, 4);
    if !(2..=VERSION).contains(&version) {
        return Err(EifError::UnsupportedVersion(version));
    }
    let flags = be_u16(file, 6);
    let count = be_u16(file, 26);
    if count == 0 || usize::from(count) > MAX_SECTIONS {
        return Err(EifError::SectionCount(count));
    }
    let stored = u32::from_be_bytes([file[544], file[545], file[546], file[547]]);
    let computed = file_crc(file);
    if stored != computed {
        return Err(EifError::Crc { stored, computed });
    }
    let mut sections = Vec::with_capacity(usize::from(count));
    let mut at = HEADER_SIZE as u64;
    for i in 0..usize::from(count) {
        let offset = be_u64(file, 28 + 8 * i);
        let size = be_u64(file, 28 + 8 * MAX_SECTIONS + 8 * i);
        let bad = |problem: String| EifError::BadSection { index: i, problem };
        if offset != at {
            return Err(bad(format!(
                "starts at {offset}, the previous one ends at {at}"
            )));
        }
        let data_start = offset + SECTION_HEADER_SIZE as u64;
        let end = data_start
            .checked_add(size)
            .ok_or_else(|| bad(format!("size {size} overflows")))?;
        if end > file.len() as u64 {
            return Err(EifError::Truncated {
                what: "section",
                needed: end,
                len: file.len(),
            });
        }
        // Within the file (checked above), so these fit usize.
        let fit = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let (o, ds, e) = (fit(offset), fit(data_start), fit(end));
        let t = be_u16(file, o);
        let t = SectionType::from_u16(t).ok_or_else(|| bad(format!("unknown type {t}")))?;
        let header_size = be_u64(file, o + 4);
        if header_size != size {
            return Err(bad(format!(
                "its header says {header_size} bytes, the table {size}"
            )));
        }
        sections.push((t, &file[ds..e]));
        at = end;
    }
    if at != file.len() as u64 {
        return Err(EifError::Sections(format!(
            "{} bytes after the last section",
            file.len() as u64 - at
        )));
    }
    let eif = Eif {
        version,
        flags,
        sections,
    };
    for (t, name) in [
        (SectionType::Kernel, "kernel"),
        (SectionType::Cmdline, "cmdline"),
    ] {
        let n = eif.of(t).count();
        if n != 1 {
            return Err(EifError::Sections(format!(
                "{n} {name} sections, exactly 1 needed"
            )));
        }
    }
    if eif.of(SectionType::Ramdisk).count() == 0 {
        return Err(EifError::Sections("no ramdisk".into()));
    }
    if version >= 4 && eif.of(SectionType::Metadata).count() != 1 {
        return Err(EifError::Sections(
            "version 4 needs one metadata section".into(),
        ));
    }
    let kernel_at = eif
        .sections
        .iter()
        .position(|(t, _)| *t == SectionType::Kernel)
        .unwrap_or(0);
    if eif.sections[..kernel_at]
        .iter()
        .any(|(t, _)| *t == SectionType::Ramdisk)
    {
        return Err(EifError::Sections(
            "a ramdisk comes before the kernel".into(),
        ));
    }
    Ok(eif)
}

/// The signing certificate (PEM bytes, as AWS's builder stores it) of the
/// first entry of a signature section: serde_cbor of `Vec<PcrSignature>`,
/// an array of maps `{"signing_certificate": [u8…], "signature": [u8…]}`
/// whose byte vectors are CBOR arrays of integers (README "EifSectionSignature";
/// AWS's `EifReader` reads entry 0 only, as here).
pub fn signing_certificate(section: &[u8]) -> Result<Vec<u8>, EifError> {
    let bad = |m: &str| EifError::Sections(format!("signature section: {m}"));
    let mut r = Cbor { b: section, at: 0 };
    let (major, n) = r.head().ok_or_else(|| bad("truncated"))?;
    if major != 4 || n == 0 {
        return Err(bad("not a non-empty array"));
    }
    let (major, entries) = r.head().ok_or_else(|| bad("truncated"))?;
    if major != 5 {
        return Err(bad("entry 0 is not a map"));
    }
    let mut cert = None;
    for _ in 0..entries {
        let (major, len) = r.head().ok_or_else(|| bad("truncated"))?;
        if major != 3 {
            return Err(bad("a key is not text"));
        }
        let key = r.take(len).ok_or_else(|| bad("truncated key"))?;
        let (major, count) = r.head().ok_or_else(|| bad("truncated"))?;
        if major != 4 || count > (section.len() - r.at) as u64 {
            return Err(bad("a value is not an array of bytes"));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for _ in 0..count {
            match r.head() {
                Some((0, v)) => bytes.push(u8::try_from(v).map_err(|_| bad("a byte above 255"))?),
                _ => return Err(bad("a value is not an array of bytes")),
            }
        }
        match key {
            b"signing_certificate" if cert.is_none() => cert = Some(bytes),
            b"signature" => {}
            _ => return Err(bad("unknown or repeated key")),
        }
    }
    cert.ok_or_else(|| bad("no signing_certificate"))
}

/// The DER of the first `CERTIFICATE` block of PEM text.
pub fn pem_certificate_der(pem: &[u8]) -> Result<Vec<u8>, EifError> {
    let bad = |m: &str| EifError::Sections(format!("signing certificate: {m}"));
    let text = std::str::from_utf8(pem).map_err(|_| bad("not PEM text"))?;
    let body = text
        .split_once("-----BEGIN CERTIFICATE-----")
        .and_then(|(_, rest)| rest.split_once("-----END CERTIFICATE-----"))
        .map(|(body, _)| body)
        .ok_or_else(|| bad("no CERTIFICATE block"))?;
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Err(bad("not base64")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Ok(out)
}

/// Just enough CBOR for the signature section: definite-length heads.
struct Cbor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cbor<'a> {
    fn head(&mut self) -> Option<(u8, u64)> {
        let first = *self.b.get(self.at)?;
        let extra = match first & 0x1f {
            0..=23 => 0,
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return None, // indefinite or reserved
        };
        let arg_bytes = self.b.get(self.at + 1..self.at + 1 + extra)?;
        let arg = if extra == 0 {
            u64::from(first & 0x1f)
        } else {
            arg_bytes.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b))
        };
        self.at += 1 + extra;
        Some((first >> 5, arg))
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
}

/// CRC-32/ISO-HDLC (reflected, polynomial 0xEDB88320, init and final XOR
/// 0xFFFFFFFF): the zlib CRC the `crc` crate's `CRC_32_ISO_HDLC` computes.
struct Crc32 {
    table: [u32; 256],
    value: u32,
}

impl Crc32 {
    fn new() -> Crc32 {
        let mut table = [0u32; 256];
        for (i, slot) in (0u32..).zip(table.iter_mut()) {
            let mut c = i;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        Crc32 {
            table,
            value: 0xffff_ffff,
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.value =
                self.table[((self.value ^ u32::from(*b)) & 0xff) as usize] ^ (self.value >> 8);
        }
    }

    fn finish(&self) -> u32 {
        self.value ^ 0xffff_ffff
    }
}

/// `YYYY-MM-DDTHH:MM:SS+00:00` of a Unix time.
fn rfc3339(secs: u32) -> String {
    let days = i64::from(secs / 86_400);
    let rem = secs % 86_400;
    // H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        build(&EifInputs {
            kernel: b"KERNEL",
            cmdline: "console=ttyS0",
            ramdisks: vec![b"RD0", b"RD1"],
            metadata: &metadata_json("0.1.0", 1_700_000_000),
            signature: None,
        })
        .unwrap()
    }

    #[test]
    fn crc32_is_the_zlib_crc() {
        // The standard check value of CRC-32/ISO-HDLC.
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xcbf4_3926);
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let f = sample();
        assert_eq!(&f[..4], b".eif");
        assert_eq!(be_u16(&f, 4), 4);
        assert_eq!(be_u64(&f, 8), DEFAULT_MEM);
        assert_eq!(be_u64(&f, 16), DEFAULT_CPUS);
        assert_eq!(be_u16(&f, 26), 5);
        // Kernel section right after the header: type 1, flags 0, size 6.
        assert_eq!(be_u64(&f, 28), 548);
        assert_eq!(
            &f[548..566],
            b"\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x06KERNEL"
        );
        // Cmdline next, without a NUL.
        assert_eq!(be_u64(&f, 36), 566);
        assert_eq!(be_u64(&f, 28 + 256 + 8), 13);
        assert_eq!(&f[566..568], b"\x00\x02");
        assert_eq!(&f[578..591], b"console=ttyS0");
        // Then metadata, then the ramdisks.
        assert_eq!(be_u16(&f, 591), 5);
        let eif = parse(&f).unwrap();
        let types: Vec<_> = eif.sections.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            types,
            [
                SectionType::Kernel,
                SectionType::Cmdline,
                SectionType::Metadata,
                SectionType::Ramdisk,
                SectionType::Ramdisk
            ]
        );
        assert_eq!(
            eif.of(SectionType::Ramdisk).collect::<Vec<_>>(),
            [b"RD0", b"RD1"]
        );
        // The CRC covers everything but itself.
        assert_eq!(
            u32::from_be_bytes(f[544..548].try_into().unwrap()),
            file_crc(&f)
        );
    }

    #[test]
    fn metadata_is_fixed_by_source_date_epoch() {
        let m = String::from_utf8(metadata_json("0.1.0", 1_700_000_000)).unwrap();
        assert!(
            m.contains("\"BuildTime\":\"2023-11-14T22:13:20+00:00\""),
            "{m}"
        );
        assert_eq!(
            metadata_json("0.1.0", 1_700_000_000),
            metadata_json("0.1.0", 1_700_000_000)
        );
    }

    /// A signature section in AWS's shape (byte vectors as arrays of
    /// integers) around the AWS root's PEM: its DER comes back, and its
    /// SHA-256 is the value AWS publishes for that root.
    #[test]
    fn the_signing_certificate_comes_out_of_a_signature_section() {
        let pem = include_bytes!("../../appraisal/roots/aws_nitro_enclaves_root_g1.pem");
        let mut section = vec![0x81, 0xa2, 0x73];
        section.extend_from_slice(b"signing_certificate");
        let ints = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.push(0x99); // array, 2-byte length
            out.extend_from_slice(&u16::try_from(bytes.len()).unwrap().to_be_bytes());
            for b in bytes {
                if *b < 24 {
                    out.push(*b);
                } else {
                    out.extend_from_slice(&[0x18, *b]);
                }
            }
        };
        ints(&mut section, pem);
        section.push(0x69);
        section.extend_from_slice(b"signature");
        ints(&mut section, &[0x84, 0x40, 0xa0, 0x40, 0x40]);
        assert_eq!(signing_certificate(&section).unwrap(), pem.to_vec());
        let der = pem_certificate_der(pem).unwrap();
        let sha: String = sha256_hex(&der);
        assert_eq!(
            sha,
            "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
        );
        // In a file, the section comes last and parses.
        let f = build(&EifInputs {
            kernel: b"K",
            cmdline: "c",
            ramdisks: vec![b"R"],
            metadata: b"{}",
            signature: Some(&section),
        })
        .unwrap();
        let eif = parse(&f).unwrap();
        assert_eq!(eif.sections.last().unwrap().0, SectionType::Signature);
        // A byte above 255 is refused.
        let mut bad = section.clone();
        let at = 3 + 19 + 3; // first integer of signing_certificate
        bad[at] = 0x19; // a 2-byte integer: 0x19 0x2d 0x2d = 11565
        assert!(signing_certificate(&bad).is_err());
    }

    /// SHA-256, written out here (FIPS 180-4) so the check does not rest
    /// on a crate this one does not otherwise need.
    fn sha256_hex(data: &[u8]) -> String {
        const K: [u32; 64] = [
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
            0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
            0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
            0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
            0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
            0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
            0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
            0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
            0xc67178f2,
        ];
        let mut h: [u32; 8] = [
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
            0x5be0cd19,
        ];
        let mut m = data.to_vec();
        m.push(0x80);
        while m.len() % 64 != 56 {
            m.push(0);
        }
        m.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
        for block in m.chunks(64) {
            let mut w = [0u32; 64];
            for i in 0..16 {
                w[i] = u32::from_be_bytes(block[4 * i..4 * i + 4].try_into().unwrap());
            }
            for i in 16..64 {
                let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
                let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16]
                    .wrapping_add(s0)
                    .wrapping_add(w[i - 7])
                    .wrapping_add(s1);
            }
            let mut v = h;
            for i in 0..64 {
                let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
                let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
                let t1 = v[7]
                    .wrapping_add(s1)
                    .wrapping_add(ch)
                    .wrapping_add(K[i])
                    .wrapping_add(w[i]);
                let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
                let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
                let t2 = s0.wrapping_add(maj);
                v = [
                    t1.wrapping_add(t2),
                    v[0],
                    v[1],
                    v[2],
                    v[3].wrapping_add(t1),
                    v[4],
                    v[5],
                    v[6],
                ];
            }
            for (a, b) in h.iter_mut().zip(v) {
                *a = a.wrapping_add(b);
            }
        }
        h.iter().map(|x| format!("{x:08x}")).collect()
    }

    #[test]
    fn damaged_files_are_refused_precisely() {
        let f = sample();
        let mut bad = f.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(parse(&bad), Err(EifError::Crc { .. })));
        assert!(matches!(
            parse(&f[..f.len() - 1]),
            Err(EifError::Crc { .. } | EifError::Truncated { .. })
        ));
        let mut magic = f.clone();
        magic[0] = b'x';
        assert_eq!(parse(&magic).unwrap_err(), EifError::BadMagic);
        assert!(matches!(
            parse(&f[..100]),
            Err(EifError::Truncated { needed: 548, .. })
        ));
        // A section table entry that lies about a size (CRC fixed up).
        let mut lie = f.clone();
        lie[28 + 256 + 7] = 7; // kernel size 7 instead of 6
        let crc = file_crc(&lie);
        lie[544..548].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            parse(&lie),
            Err(EifError::BadSection { index: 0, .. })
        ));
        assert!(build(&EifInputs {
            kernel: b"K",
            cmdline: "a\0b",
            ramdisks: vec![b"R"],
            metadata: b"{}",
            signature: None,
        })
        .is_err());
    }
}
