//! Call audio (issue 7 item 2): the enclave validates a WAV recording and
//! measures it.
//!
//! * [`parse_wav`] validates a RIFF/WAVE file and returns a view of its
//!   samples (no copy: [`Wav::analyze`] reads the encoded bytes, and
//!   [`Wav::samples`] decodes them to `i16` on request). Accepted: mono, 8000 or 16000 Hz, and one of PCM 16-bit
//!   (format tag 1), G.711 A-law 8-bit (6), G.711 μ-law 8-bit (7), or
//!   `WAVE_FORMAT_EXTENSIBLE` (0xFFFE) whose sub-format is one of those.
//!   Stereo is refused, not downmixed: a recording's channels are the
//!   caller's business (e.g. one file per call leg).
//! * [`mulaw_to_linear`] and [`alaw_to_linear`] are the ITU-T G.711
//!   expansions.
//! * [`analyze`] measures duration, RMS and peak level in dBFS, and the
//!   share of 20 ms frames that carry activity (a simple energy VAD).
//!
//! Everything here is pure and total: no I/O, no panics on any input, and
//! allocation is bounded: measuring allocates 8 bytes per 20 ms frame, and
//! only [`Wav::samples`] allocates the decoded vector (at most one `i16` per
//! input byte), after the declared data length has been checked against
//! the bytes actually present and against [`Limits`].

use std::fmt;

/// Caller-chosen bounds on an input file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input, in bytes (the whole file).
    pub max_bytes: usize,
    /// Longest accepted recording, in seconds.
    pub max_secs: u32,
}

impl Limits {
    /// 64 MiB and one hour (an hour of 16 kHz PCM16 is about 110 MiB, so
    /// the byte limit binds first for that format).
    pub const DEFAULT: Limits = Limits {
        max_bytes: 64 * 1024 * 1024,
        max_secs: 3600,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A RIFF chunk identifier (four ASCII bytes such as `fmt ` or `data`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// The outer `RIFF` chunk.
    pub const RIFF: FourCc = FourCc(*b"RIFF");
    /// The format chunk.
    pub const FMT: FourCc = FourCc(*b"fmt ");
    /// The sample data chunk.
    pub const DATA: FourCc = FourCc(*b"data");
}

impl fmt::Display for FourCc {
    /// Printable ASCII as is, anything else as `\xNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc(\"{self}\")")
    }
}

/// How the samples of an accepted file were encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Linear PCM, 16-bit signed little-endian (`WAVE_FORMAT_PCM`, 1).
    Pcm16,
    /// G.711 A-law, 8-bit (`WAVE_FORMAT_ALAW`, 6).
    ALaw,
    /// G.711 μ-law, 8-bit (`WAVE_FORMAT_MULAW`, 7).
    MuLaw,
}

impl Encoding {
    /// The WAVE format tag (also the sub-format code of an extensible file).
    pub fn format_tag(self) -> u16 {
        match self {
            Encoding::Pcm16 => FORMAT_PCM,
            Encoding::ALaw => FORMAT_ALAW,
            Encoding::MuLaw => FORMAT_MULAW,
        }
    }

    /// Bits per (mono) sample in the file.
    pub fn bits_per_sample(self) -> u16 {
        match self {
            Encoding::Pcm16 => 16,
            Encoding::ALaw | Encoding::MuLaw => 8,
        }
    }

    fn from_tag(tag: u16) -> Option<Encoding> {
        match tag {
            FORMAT_PCM => Some(Encoding::Pcm16),
            FORMAT_ALAW => Some(Encoding::ALaw),
            FORMAT_MULAW => Some(Encoding::MuLaw),
            _ => None,
        }
    }
}

const FORMAT_PCM: u16 = 1;
const FORMAT_ALAW: u16 = 6;
const FORMAT_MULAW: u16 = 7;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// `KSDATAFORMAT_SUBTYPE_*` GUIDs are `XXXXXXXX-0000-0010-8000-00AA00389B71`
/// with the format tag in the first field; these are its bytes 2..16 as
/// stored (little-endian fields) in a `fmt ` chunk.
const SUBTYPE_GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// Sample rates accepted by [`parse_wav`], in Hz.
pub const SUPPORTED_RATES_HZ: [u32; 2] = [8000, 16000];

/// Why a file was refused by [`parse_wav`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AudioError {
    /// The input is larger than [`Limits::max_bytes`].
    TooLarge {
        /// Input length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The file does not start with `RIFF` (this includes big-endian
    /// `RIFX` and 64-bit `RF64` files, which are not supported).
    NotRiff,
    /// The RIFF form type is not `WAVE`.
    NotWave,
    /// A fixed-size header (the 12-byte RIFF/WAVE header at offset 0, or an
    /// 8-byte chunk header) is cut short.
    TruncatedHeader {
        /// Where the header starts in the file.
        offset: usize,
        /// Bytes the header needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// A chunk declares more bytes than are present (for `RIFF`, than the
    /// file holds after the 8-byte header; for any other chunk, than the
    /// `RIFF` chunk holds after the chunk's header). Never silently clipped.
    Truncated {
        /// The chunk.
        chunk: FourCc,
        /// The chunk's declared size.
        declared: u64,
        /// Bytes present for its body.
        available: u64,
    },
    /// The `RIFF` size field is smaller than the 4-byte `WAVE` form type.
    RiffSizeTooSmall {
        /// The declared size.
        declared: u32,
    },
    /// A chunk that must appear at most once (`fmt `, `data`) appears again.
    DuplicateChunk {
        /// The chunk.
        chunk: FourCc,
    },
    /// No `fmt ` chunk.
    MissingFmt,
    /// No `data` chunk.
    MissingData,
    /// The `fmt ` chunk is shorter than its format requires (16 bytes, 40
    /// for `WAVE_FORMAT_EXTENSIBLE`).
    FmtTooShort {
        /// Its size.
        len: u32,
        /// The size required.
        min: u32,
    },
    /// The format tag (or the extensible sub-format code) is none of PCM,
    /// A-law and μ-law.
    UnsupportedFormat {
        /// The tag.
        tag: u16,
    },
    /// A `WAVE_FORMAT_EXTENSIBLE` sub-format GUID that is not of the
    /// `KSDATAFORMAT_SUBTYPE` family (bytes as stored in the file).
    UnsupportedSubformat {
        /// The GUID's 16 bytes.
        guid: [u8; 16],
    },
    /// The sample size does not match the format (PCM must be 16-bit,
    /// G.711 8-bit). For an extensible file, also reported when the valid
    /// bits per sample differ from the container size (`bits` is then the
    /// valid-bits field).
    UnsupportedBits {
        /// The format tag (sub-format code for extensible files).
        tag: u16,
        /// The bits per sample found.
        bits: u16,
    },
    /// A sample rate other than 8000 or 16000 Hz.
    UnsupportedRate {
        /// The rate.
        hz: u32,
    },
    /// Anything but one channel (stereo is refused, not downmixed).
    UnsupportedChannels {
        /// The channel count.
        channels: u16,
    },
    /// The `fmt ` block alignment is not channels × bytes per sample.
    BlockAlignMismatch {
        /// The declared value.
        declared: u16,
        /// The value implied by the format.
        expected: u16,
    },
    /// The `fmt ` average byte rate is not rate × block alignment.
    ByteRateMismatch {
        /// The declared value.
        declared: u32,
        /// The value implied by the format.
        expected: u32,
    },
    /// The `data` chunk does not hold a whole number of sample frames.
    PartialFrame {
        /// The data size.
        data_len: u32,
        /// The block alignment (bytes per frame).
        block_align: u16,
    },
    /// The `data` chunk is empty.
    Empty,
    /// Longer than [`Limits::max_secs`].
    TooLong {
        /// The duration, in seconds rounded up.
        secs: u64,
        /// The limit.
        max: u32,
    },
}

impl fmt::Display for AudioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AudioError::TooLarge { len, max } => {
                write!(
                    f,
                    "audio file is {len} bytes, more than the {max}-byte limit"
                )
            }
            AudioError::NotRiff => f.write_str("not a RIFF file"),
            AudioError::NotWave => f.write_str("RIFF file is not WAVE"),
            AudioError::TruncatedHeader {
                offset,
                needed,
                available,
            } => write!(
                f,
                "header at offset {offset} needs {needed} bytes, only {available} present"
            ),
            AudioError::Truncated {
                chunk,
                declared,
                available,
            } => write!(
                f,
                "chunk '{chunk}' declares {declared} bytes, only {available} present"
            ),
            AudioError::RiffSizeTooSmall { declared } => {
                write!(f, "RIFF size {declared} cannot hold the WAVE form type")
            }
            AudioError::DuplicateChunk { chunk } => write!(f, "chunk '{chunk}' appears twice"),
            AudioError::MissingFmt => f.write_str("no 'fmt ' chunk"),
            AudioError::MissingData => f.write_str("no 'data' chunk"),
            AudioError::FmtTooShort { len, min } => {
                write!(f, "'fmt ' chunk is {len} bytes, the format needs {min}")
            }
            AudioError::UnsupportedFormat { tag } => {
                write!(
                    f,
                    "unsupported format tag {tag:#06x} (PCM, A-law, mu-law only)"
                )
            }
            AudioError::UnsupportedSubformat { guid } => {
                f.write_str("unsupported extensible sub-format GUID ")?;
                for b in guid {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            AudioError::UnsupportedBits { tag, bits } => write!(
                f,
                "{bits} bits per sample unsupported for format {tag:#06x} (PCM 16, G.711 8)"
            ),
            AudioError::UnsupportedRate { hz } => {
                write!(f, "sample rate {hz} Hz unsupported (8000 or 16000 only)")
            }
            AudioError::UnsupportedChannels { channels } => {
                write!(f, "{channels} channels unsupported (mono only)")
            }
            AudioError::BlockAlignMismatch { declared, expected } => {
                write!(f, "block align {declared}, format implies {expected}")
            }
            AudioError::ByteRateMismatch { declared, expected } => {
                write!(f, "byte rate {declared}, format implies {expected}")
            }
            AudioError::PartialFrame {
                data_len,
                block_align,
            } => write!(
                f,
                "data size {data_len} is not a multiple of the {block_align}-byte frame"
            ),
            AudioError::Empty => f.write_str("no audio samples"),
            AudioError::TooLong { secs, max } => {
                write!(f, "recording lasts {secs} s, more than the {max} s limit")
            }
        }
    }
}

impl std::error::Error for AudioError {}

/// A validated mono recording: a view of the file's sample data.
///
/// Voice is personal data: `Debug` prints the format and the sample count,
/// never the samples.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Wav<'a> {
    encoding: Encoding,
    sample_rate_hz: u32,
    /// Whole samples only (checked by [`parse_wav`]), never empty.
    data: &'a [u8],
}

impl Wav<'_> {
    /// The file's encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Samples per second (8000 or 16000).
    pub fn sample_rate_hz(&self) -> u32 {
        self.sample_rate_hz
    }

    /// How many samples the recording holds; never 0.
    pub fn sample_count(&self) -> usize {
        match self.encoding {
            Encoding::Pcm16 => self.data.len() / 2,
            Encoding::MuLaw | Encoding::ALaw => self.data.len(),
        }
    }

    /// The samples decoded (G.711 expanded to the 16-bit scale).
    pub fn samples(&self) -> Vec<i16> {
        match self.encoding {
            Encoding::Pcm16 => self
                .data
                .as_chunks::<2>()
                .0
                .iter()
                .map(|&b| i16::from_le_bytes(b))
                .collect(),
            Encoding::MuLaw => self
                .data
                .iter()
                .map(|&b| MULAW_TABLE[usize::from(b)])
                .collect(),
            Encoding::ALaw => self
                .data
                .iter()
                .map(|&b| ALAW_TABLE[usize::from(b)])
                .collect(),
        }
    }

    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        duration_secs(self.sample_count(), self.sample_rate_hz)
    }

    /// [`analyze`] of this recording, read from the encoded bytes: the same
    /// figures as `analyze(&self.samples(), rate)`, without decoding a copy
    /// (a minute of μ-law would be 960 kB more per call).
    pub fn analyze(&self) -> Analysis {
        let (data, rate) = (self.data, self.sample_rate_hz);
        let (len, squares_of, magnitudes) = match self.encoding {
            Encoding::Pcm16 => {
                let (total, energies) = frame_energies(self.sample_count(), rate, |from, to| {
                    data.get(2 * from..2 * to).map_or(0, pcm16_squares)
                });
                return analysis(
                    self.sample_count(),
                    rate,
                    total,
                    &energies,
                    pcm16_peak(data),
                );
            }
            Encoding::MuLaw => (data.len(), &MULAW_SQUARES, &MULAW_MAGNITUDES),
            Encoding::ALaw => (data.len(), &ALAW_SQUARES, &ALAW_MAGNITUDES),
        };
        // G.711: the peak is the largest magnitude among the codes seen.
        let mut seen = [false; 256];
        let (total, energies) = frame_energies(len, rate, |from, to| {
            data.get(from..to)
                .map_or(0, |codes| g711_squares(codes, squares_of, &mut seen))
        });
        let peak = (0..=255u8)
            .filter(|&c| seen[usize::from(c)])
            .map(|c| magnitudes[usize::from(c)])
            .max()
            .unwrap_or(0);
        analysis(len, rate, total, &energies, peak)
    }
}

impl fmt::Debug for Wav<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wav")
            .field("encoding", &self.encoding)
            .field("sample_rate_hz", &self.sample_rate_hz)
            .field(
                "samples",
                &format_args!("<{} samples>", self.sample_count()),
            )
            .finish()
    }
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let end = off.checked_add(2)?;
    let a: [u8; 2] = b.get(off..end)?.try_into().ok()?;
    Some(u16::from_le_bytes(a))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let end = off.checked_add(4)?;
    let a: [u8; 4] = b.get(off..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(a))
}

fn fourcc_at(b: &[u8], off: usize) -> Option<FourCc> {
    let end = off.checked_add(4)?;
    let a: [u8; 4] = b.get(off..end)?.try_into().ok()?;
    Some(FourCc(a))
}

/// Validates a RIFF/WAVE file; the recording is a view of `bytes`.
///
/// Checks, in order: size against `limits.max_bytes`; `RIFF` magic; the
/// 12-byte header; `WAVE`; the `RIFF` size (it must fit in the file; bytes
/// after the `RIFF` chunk are ignored); then the chunk walk over the whole
/// `RIFF` body: every chunk header complete, every chunk's declared size
/// present (odd-sized chunks are followed by one pad byte, which may be
/// missing after the last chunk), `fmt ` and `data` at most once, any other
/// chunk (`LIST`, `fact`, `cue `, …) skipped, in any order. Then the format
/// (see [`AudioError`] for each refusal), then the data: non-empty, whole
/// frames, within `limits.max_secs`.
pub fn parse_wav<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Wav<'a>, AudioError> {
    if bytes.len() > limits.max_bytes {
        return Err(AudioError::TooLarge {
            len: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let magic_len = bytes.len().min(4);
    if bytes.get(..magic_len) != b"RIFF".get(..magic_len) {
        return Err(AudioError::NotRiff);
    }
    let (Some(riff_size), Some(form)) = (u32_at(bytes, 4), fourcc_at(bytes, 8)) else {
        return Err(AudioError::TruncatedHeader {
            offset: 0,
            needed: 12,
            available: bytes.len(),
        });
    };
    if form != FourCc(*b"WAVE") {
        return Err(AudioError::NotWave);
    }
    if riff_size < 4 {
        return Err(AudioError::RiffSizeTooSmall {
            declared: riff_size,
        });
    }
    let after_header = bytes.len().saturating_sub(8);
    let riff_len = usize::try_from(riff_size).unwrap_or(usize::MAX);
    if riff_len > after_header {
        return Err(AudioError::Truncated {
            chunk: FourCc::RIFF,
            declared: u64::from(riff_size),
            available: after_header as u64,
        });
    }
    // riff_len <= bytes.len() - 8, so this cannot fail.
    let riff_body = bytes.get(12..8 + riff_len).unwrap_or_default();

    let (fmt, data) = walk_chunks(riff_body)?;
    let fmt = fmt.ok_or(AudioError::MissingFmt)?;
    let data = data.ok_or(AudioError::MissingData)?;
    let format = parse_fmt(fmt)?;
    checked_data(data, format, limits)
}

/// The `fmt ` and `data` bodies of a RIFF body (the bytes after `WAVE`).
type Chunks<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

fn walk_chunks(body: &[u8]) -> Result<Chunks<'_>, AudioError> {
    let mut fmt = None;
    let mut data = None;
    let mut rest = body;
    while !rest.is_empty() {
        let (Some(id), Some(size)) = (fourcc_at(rest, 0), u32_at(rest, 4)) else {
            return Err(AudioError::TruncatedHeader {
                offset: 12 + (body.len() - rest.len()),
                needed: 8,
                available: rest.len(),
            });
        };
        let after = rest.get(8..).unwrap_or_default();
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        let (Some(content), Some(tail)) = (after.get(..len), after.get(len..)) else {
            return Err(AudioError::Truncated {
                chunk: id,
                declared: u64::from(size),
                available: after.len() as u64,
            });
        };
        let slot = match id {
            FourCc::FMT => Some(&mut fmt),
            FourCc::DATA => Some(&mut data),
            _ => None,
        };
        if let Some(slot) = slot {
            if slot.is_some() {
                return Err(AudioError::DuplicateChunk { chunk: id });
            }
            *slot = Some(content);
        }
        // Odd sizes are padded to even; tolerate a missing final pad byte.
        rest = if size % 2 == 1 {
            tail.get(1..).unwrap_or_default()
        } else {
            tail
        };
    }
    Ok((fmt, data))
}

#[derive(Clone, Copy)]
struct Format {
    encoding: Encoding,
    rate: u32,
    block_align: u16,
}

fn parse_fmt(fmt: &[u8]) -> Result<Format, AudioError> {
    let len = u32::try_from(fmt.len()).unwrap_or(u32::MAX);
    let too_short = |min| AudioError::FmtTooShort { len, min };
    let field16 = |off| u16_at(fmt, off).ok_or(too_short(16));
    let field32 = |off| u32_at(fmt, off).ok_or(too_short(16));
    let tag = field16(0)?;
    let channels = field16(2)?;
    let rate = field32(4)?;
    let byte_rate = field32(8)?;
    let block_align = field16(12)?;
    let bits = field16(14)?;

    let (encoding, tag) = if tag == FORMAT_EXTENSIBLE {
        // cbSize (offset 16) is not checked: the chunk size is what bounds
        // the fields read here.
        let (Some(valid_bits), Some(guid)) = (
            u16_at(fmt, 18),
            fmt.get(24..40).and_then(|g| <[u8; 16]>::try_from(g).ok()),
        ) else {
            return Err(too_short(40));
        };
        if guid.get(2..) != Some(&SUBTYPE_GUID_TAIL[..]) {
            return Err(AudioError::UnsupportedSubformat { guid });
        }
        let sub = u16::from_le_bytes([guid[0], guid[1]]);
        let encoding = Encoding::from_tag(sub).ok_or(AudioError::UnsupportedFormat { tag: sub })?;
        if valid_bits != bits {
            return Err(AudioError::UnsupportedBits {
                tag: sub,
                bits: valid_bits,
            });
        }
        (encoding, sub)
    } else {
        let encoding = Encoding::from_tag(tag).ok_or(AudioError::UnsupportedFormat { tag })?;
        (encoding, tag)
    };
    if bits != encoding.bits_per_sample() {
        return Err(AudioError::UnsupportedBits { tag, bits });
    }
    if channels != 1 {
        return Err(AudioError::UnsupportedChannels { channels });
    }
    if !SUPPORTED_RATES_HZ.contains(&rate) {
        return Err(AudioError::UnsupportedRate { hz: rate });
    }
    let expected_align = bits / 8;
    if block_align != expected_align {
        return Err(AudioError::BlockAlignMismatch {
            declared: block_align,
            expected: expected_align,
        });
    }
    // rate <= 16000 and align <= 2: no overflow.
    let expected_rate = rate * u32::from(block_align);
    if byte_rate != expected_rate {
        return Err(AudioError::ByteRateMismatch {
            declared: byte_rate,
            expected: expected_rate,
        });
    }
    Ok(Format {
        encoding,
        rate,
        block_align,
    })
}

fn checked_data<'a>(
    data: &'a [u8],
    format: Format,
    limits: &Limits,
) -> Result<Wav<'a>, AudioError> {
    let data_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    if data.is_empty() {
        return Err(AudioError::Empty);
    }
    let align = usize::from(format.block_align);
    if align == 0 || !data.len().is_multiple_of(align) {
        return Err(AudioError::PartialFrame {
            data_len,
            block_align: format.block_align,
        });
    }
    let frames = (data.len() / align) as u64;
    let rate = u64::from(format.rate);
    if frames > u64::from(limits.max_secs) * rate {
        return Err(AudioError::TooLong {
            secs: frames.div_ceil(rate),
            max: limits.max_secs,
        });
    }
    Ok(Wav {
        encoding: format.encoding,
        sample_rate_hz: format.rate,
        data,
    })
}

/// ITU-T G.711 μ-law expansion to the 16-bit scale (the 14-bit G.711 value
/// × 4; range ±32124; codes `0xFF` and `0x7F` both decode to 0).
///
/// The code word is transmitted inverted: after complementing, bit 7 is the
/// sign (1 = negative), bits 6..4 the segment `s`, bits 3..0 the step `q`,
/// and the magnitude is `(2q + 33)·2^s − 33` in 14-bit units.
pub const fn mulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let segment = (u >> 4) & 0x07;
    let step = (u & 0x0F) as i16;
    // ((q << 3) + 0x84) << s is at most (120 + 132) << 7 = 32256.
    let magnitude = (((step << 3) + 0x84) << segment) - 0x84;
    if u & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// ITU-T G.711 A-law expansion to the 16-bit scale (the 13-bit G.711 value
/// × 8; range ±32256; no code decodes to 0).
///
/// The even bits are transmitted inverted (XOR `0x55`): after that, bit 7
/// is the sign (1 = positive), bits 6..4 the segment `s`, bits 3..0 the
/// step `q`; the magnitude is `2q + 1` for `s = 0` and `(2q + 33)·2^(s−1)`
/// otherwise, in 13-bit units (half a step above the decision level).
pub const fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = (a >> 4) & 0x07;
    let step = (a & 0x0F) as i16;
    let magnitude = if segment == 0 {
        (step << 4) + 8
    } else {
        // At most (240 + 264) << 6 = 32256.
        ((step << 4) + 0x108) << (segment - 1)
    };
    if a & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

/// Every μ-law code expanded once, at compile time (decoding is a lookup).
const MULAW_TABLE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the loop keeps i below 256"
        )]
        let code = i as u8;
        t[i] = mulaw_to_linear(code);
        i += 1;
    }
    t
};
/// Every A-law code expanded once, at compile time.
const ALAW_TABLE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the loop keeps i below 256"
        )]
        let code = i as u8;
        t[i] = alaw_to_linear(code);
        i += 1;
    }
    t
};

/// Level reported for digital silence (and the floor of every level).
pub const FLOOR_DBFS: f64 = -120.0;
/// VAD frame length, in milliseconds.
pub const FRAME_MS: u32 = 20;
/// A frame is active when its energy exceeds the noise floor by this much…
pub const VAD_MARGIN_DB: f64 = 10.0;
/// …but the threshold is never below this (so dither over digital silence
/// is not activity)…
pub const VAD_MIN_THRESHOLD_DBFS: f64 = -60.0;
/// …nor above this (so a recording with no pauses, whose floor is its own
/// level, still counts as active).
pub const VAD_MAX_THRESHOLD_DBFS: f64 = -30.0;
/// The noise floor is this percentile of the frame energies.
pub const NOISE_PERCENTILE: usize = 10;

const FULL_SCALE: f64 = 32768.0;

/// Measurements of a recording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Analysis {
    /// `samples / rate` (0 for a zero rate).
    pub duration_secs: f64,
    /// RMS level in dBFS (full scale 32768, so a full-scale sine reads
    /// −3.01); [`FLOOR_DBFS`] for silence or no samples.
    pub rms_dbfs: f64,
    /// Largest absolute sample in dBFS; [`FLOOR_DBFS`] for silence.
    pub peak_dbfs: f64,
    /// Fraction (0..=1) of complete 20 ms frames judged active by the
    /// energy VAD described at [`analyze`]; 0 if there is no whole frame.
    pub speech_ratio: f64,
}

fn duration_secs(samples: usize, rate_hz: u32) -> f64 {
    if rate_hz == 0 {
        0.0
    } else {
        samples as f64 / f64::from(rate_hz)
    }
}

/// Converts a mean square (in sample units²) to dBFS, floored.
fn power_dbfs(mean_square: f64) -> f64 {
    let ratio = mean_square / (FULL_SCALE * FULL_SCALE);
    if ratio > 0.0 && ratio.is_finite() {
        (10.0 * ratio.log10()).max(FLOOR_DBFS)
    } else {
        FLOOR_DBFS
    }
}

/// The exact sum of squares of at most 2^33 samples, written so that it
/// vectorises on plain x86-64 (SSE2): squares of a pair added in 32 bits
/// (`pmaddwd`), widened, summed in 64. A pair's sum is at most 2 × 32768²
/// = 2^31, which overflows `i32` only for two −32768s and is then still
/// right read as `u32`. (A per-sample `u64` square, the obvious form, needs
/// 64-bit multiplies SSE2 lacks.)
fn block_sum_squares(block: &[i16]) -> u64 {
    let (pairs, rest) = block.as_chunks::<2>();
    pairs.iter().map(|&[a, b]| pair_squares(a, b)).sum::<u64>()
        + rest
            .iter()
            .map(|&s| u64::from(s.unsigned_abs()).pow(2))
            .sum::<u64>()
}

/// `a² + b²`, exact, in 32-bit arithmetic (see [`block_sum_squares`]).
fn pair_squares(a: i16, b: i16) -> u64 {
    let (a, b) = (i32::from(a), i32::from(b));
    #[expect(
        clippy::cast_sign_loss,
        reason = "the wrapped i32 sum of two squares is exact as u32 (at most 2^31)"
    )]
    let s = (a * a).wrapping_add(b * b) as u32;
    u64::from(s)
}

/// [`block_sum_squares`] of little-endian 16-bit samples (a trailing odd
/// byte, which [`parse_wav`] never leaves, is ignored).
fn pcm16_squares(bytes: &[u8]) -> u64 {
    let (quads, rest) = bytes.as_chunks::<4>();
    let pairs: u64 = quads
        .iter()
        .map(|&[a0, a1, b0, b1]| {
            pair_squares(i16::from_le_bytes([a0, a1]), i16::from_le_bytes([b0, b1]))
        })
        .sum();
    match *rest {
        [lo, hi] => pairs + u64::from(i16::from_le_bytes([lo, hi]).unsigned_abs()).pow(2),
        _ => pairs,
    }
}

/// The largest magnitude of little-endian 16-bit samples.
fn pcm16_peak(bytes: &[u8]) -> u16 {
    bytes
        .as_chunks::<2>()
        .0
        .iter()
        .map(|&b| i16::from_le_bytes(b).unsigned_abs())
        .max()
        .unwrap_or(0)
}

/// Every G.711 code's square, at compile time: measuring the encoded
/// bytes is a lookup per sample, with no decoded copy.
const MULAW_SQUARES: [u32; 256] = squares(&MULAW_TABLE);
const ALAW_SQUARES: [u32; 256] = squares(&ALAW_TABLE);
/// Every G.711 code's magnitude.
const MULAW_MAGNITUDES: [u16; 256] = magnitudes(&MULAW_TABLE);
const ALAW_MAGNITUDES: [u16; 256] = magnitudes(&ALAW_TABLE);

const fn squares(linear: &[i16; 256]) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let m = linear[i].unsigned_abs() as u32;
        t[i] = m * m;
        i += 1;
    }
    t
}

const fn magnitudes(linear: &[i16; 256]) -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = linear[i].unsigned_abs();
        i += 1;
    }
    t
}

/// The sum of squares of G.711 codes, from the code tables (each square
/// is at most 32256² < 2^30, so the u64 sums of up to 2^32 codes are
/// exact), marking each code in `seen`. Four sums, not one: each lookup
/// then waits for no other (2.9× faster in the size-optimised guest, where
/// LLVM does not vectorise).
fn g711_squares(codes: &[u8], squares: &[u32; 256], seen: &mut [bool; 256]) -> u64 {
    let (quads, rest) = codes.as_chunks::<4>();
    let mut sums = [0u64; 4];
    for quad in quads {
        for (sum, &c) in sums.iter_mut().zip(quad) {
            *sum += u64::from(squares[usize::from(c)]);
            seen[usize::from(c)] = true;
        }
    }
    for &c in rest {
        sums[0] += u64::from(squares[usize::from(c)]);
        seen[usize::from(c)] = true;
    }
    sums.iter().sum()
}

/// Measures a mono recording.
///
/// Levels: RMS over all samples and the largest absolute sample, in dBFS
/// relative to 32768, floored at [`FLOOR_DBFS`] (never NaN or infinite).
///
/// Speech ratio (energy VAD): the samples are cut into complete 20 ms frames
/// (a trailing partial frame is ignored) and each frame's mean-square energy
/// is taken in dBFS. The noise floor is the 10th percentile of those
/// energies (1 dB histogram, rounded down); the threshold is the floor + 10
/// dB, clamped to −60..=−30 dBFS; the ratio is the share of frames whose
/// energy exceeds the threshold. One pass over the samples (the frames'
/// energies kept: 8 bytes per 20 ms).
pub fn analyze(samples: &[i16], rate_hz: u32) -> Analysis {
    let (total, energies) = frame_energies(samples.len(), rate_hz, |from, to| {
        samples.get(from..to).map_or(0, block_sum_squares)
    });
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    analysis(samples.len(), rate_hz, total, &energies, peak)
}

/// The sum of squares of `len` samples and the energy of each whole frame
/// (dBFS), given `squares(from, to)`, the sum of squares of samples
/// `from..to` (one frame, or at most 2^20 samples): the one framing for
/// decoded samples and encoded bytes.
fn frame_energies(
    len: usize,
    rate_hz: u32,
    mut squares: impl FnMut(usize, usize) -> u64,
) -> (u128, Vec<f64>) {
    // At most u32::MAX / 50 < 2^27 samples a frame: its u64 sum is exact.
    let frame_len = usize::try_from(rate_hz / (1000 / FRAME_MS)).unwrap_or(0);
    let whole = if frame_len == 0 {
        0
    } else {
        len - len % frame_len
    };
    // One pass (a minute of audio is 480 000 samples, read once): each
    // whole frame's sum of squares gives its energy and adds to the total.
    let mut total = 0u128;
    let mut energies = Vec::with_capacity(whole / frame_len.max(1));
    let mut from = 0;
    while from < whole {
        let to = from + frame_len;
        let sum = squares(from, to);
        total += u128::from(sum);
        energies.push(power_dbfs(sum as f64 / frame_len as f64));
        from = to;
    }
    // The partial frame at the end (everything, when a frame is shorter
    // than a sample), in blocks whose u64 sums cannot overflow.
    while from < len {
        let to = len.min(from + (1 << 20));
        total += u128::from(squares(from, to));
        from = to;
    }
    (total, energies)
}

/// The [`Analysis`] of `len` samples from their sum of squares, frame
/// energies and largest magnitude.
fn analysis(len: usize, rate_hz: u32, total: u128, energies: &[f64], peak: u16) -> Analysis {
    let rms_dbfs = if len == 0 {
        FLOOR_DBFS
    } else {
        power_dbfs(total as f64 / len as f64)
    };
    let peak_f = f64::from(peak);
    Analysis {
        duration_secs: duration_secs(len, rate_hz),
        rms_dbfs,
        peak_dbfs: power_dbfs(peak_f * peak_f),
        speech_ratio: speech_ratio(energies),
    }
}

/// The share of frames above the threshold, from the frames' energies.
fn speech_ratio(energies: &[f64]) -> f64 {
    // Bins of 1 dB: bin i holds energies in [FLOOR + i, FLOOR + i + 1).
    const BINS: usize = 121;
    let mut histogram = [0u64; BINS];
    for &e in energies {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a float-to-int `as` saturates (NaN and negatives give 0), and the bin is clamped to BINS - 1"
        )]
        let bin = ((e - FLOOR_DBFS).floor() as usize).min(BINS - 1);
        if let Some(count) = histogram.get_mut(bin) {
            *count += 1;
        }
    }
    let frames = energies.len() as u64;
    if frames == 0 {
        return 0.0;
    }
    let rank = frames * NOISE_PERCENTILE as u64 / 100;
    let mut seen = 0u64;
    let mut floor_bin = 0usize;
    for (i, &count) in histogram.iter().enumerate() {
        seen += count;
        if seen > rank {
            floor_bin = i;
            break;
        }
    }
    let noise_floor = FLOOR_DBFS + floor_bin as f64;
    let threshold =
        (noise_floor + VAD_MARGIN_DB).clamp(VAD_MIN_THRESHOLD_DBFS, VAD_MAX_THRESHOLD_DBFS);
    let active = energies.iter().filter(|&&e| e > threshold).count() as u64;
    active as f64 / frames as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_tables_match_the_expansion_functions() {
        for code in 0..=255u8 {
            assert_eq!(MULAW_TABLE[usize::from(code)], mulaw_to_linear(code));
            assert_eq!(ALAW_TABLE[usize::from(code)], alaw_to_linear(code));
        }
    }

    #[test]
    fn block_sums_equal_a_plain_sum() {
        let samples: Vec<i16> = (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 16) as i16)
            .collect();
        let plain: u128 = samples
            .iter()
            .map(|&s| u128::from(s.unsigned_abs()).pow(2))
            .sum();
        let blocks: u128 = samples
            .chunks(1 << 20)
            .map(|b| u128::from(block_sum_squares(b)))
            .sum();
        assert_eq!(blocks, plain);
        assert_eq!(block_sum_squares(&[i16::MIN; 4]), 4 * 32768 * 32768);
        // Pairs of −32768 wrap i32 (2^31) and an odd tail goes alone.
        assert_eq!(block_sum_squares(&[i16::MIN; 1001]), 1001 * 32768 * 32768);
        assert_eq!(
            block_sum_squares(&[i16::MIN, i16::MAX, i16::MIN]),
            2 * 32768 * 32768 + 32767 * 32767
        );
        for frame in samples.chunks(161).take(1000) {
            let plain: u64 = frame
                .iter()
                .map(|&s| u64::from(s.unsigned_abs()).pow(2))
                .sum();
            assert_eq!(block_sum_squares(frame), plain);
        }
    }

    /// The encoded measurement is the decoded one, bit for bit, for every
    /// encoding, with frames, a partial frame and the extremes.
    #[test]
    fn measuring_the_encoded_bytes_equals_measuring_the_decoded_samples() {
        let mut bytes: Vec<u8> = (0..48_123u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
            .collect();
        // Quiet stretches (so the VAD has a floor) and −32768 pairs.
        bytes[1000..9000].fill(0xFF);
        bytes[20_000..20_008].copy_from_slice(&[0, 0x80, 0, 0x80, 0, 0x80, 0, 0x80]);
        for (encoding, data) in [
            (Encoding::Pcm16, &bytes[..48_122]),
            (Encoding::MuLaw, &bytes[..]),
            (Encoding::ALaw, &bytes[..]),
        ] {
            for rate in [8000, 16000] {
                let wav = Wav {
                    encoding,
                    sample_rate_hz: rate,
                    data,
                };
                let decoded = wav.samples();
                assert_eq!(decoded.len(), wav.sample_count());
                assert_eq!(
                    wav.analyze(),
                    analyze(&decoded, rate),
                    "{encoding:?} {rate}"
                );
            }
        }
        assert_eq!(
            pcm16_squares(&[0, 0x80, 0, 0x80, 1, 0]),
            2 * 32768 * 32768 + 1
        );
        assert_eq!(pcm16_peak(&[1, 0, 0, 0x80, 0xff, 0x7f]), 32768);
    }
}
