//! Tests of `callproc::audio`: WAV files are generated here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

use callproc::audio::{
    alaw_to_linear, analyze, mulaw_to_linear, parse_wav, AudioError, Encoding, FourCc, Limits,
    FLOOR_DBFS,
};

// ---------------------------------------------------------------------------
// WAV writer
// ---------------------------------------------------------------------------

/// A chunk: id, size, body, pad byte if the body is odd.
fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = id.to_vec();
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(body);
    if body.len() % 2 == 1 {
        v.push(0);
    }
    v
}

/// A RIFF/WAVE file of the given chunks, with a correct RIFF size.
fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(4 + body.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVE");
    v.extend_from_slice(&body);
    v
}

/// A 16-byte `fmt ` body with consistent block align and byte rate.
fn fmt_body(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let align = channels * bits.div_ceil(8);
    let mut v = Vec::new();
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
    v.extend_from_slice(&align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v
}

const GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// A 40-byte `WAVE_FORMAT_EXTENSIBLE` `fmt ` body.
fn ext_fmt_body(sub: u16, rate: u32, bits: u16, valid_bits: u16) -> Vec<u8> {
    let mut v = fmt_body(0xFFFE, 1, rate, bits);
    v.extend_from_slice(&22u16.to_le_bytes());
    v.extend_from_slice(&valid_bits.to_le_bytes());
    v.extend_from_slice(&4u32.to_le_bytes()); // SPEAKER_FRONT_CENTER
    v.extend_from_slice(&sub.to_le_bytes());
    v.extend_from_slice(&GUID_TAIL);
    v
}

fn pcm16_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn wav_pcm16(rate: u32, samples: &[i16]) -> Vec<u8> {
    riff(&[
        chunk(b"fmt ", &fmt_body(1, 1, rate, 16)),
        chunk(b"data", &pcm16_bytes(samples)),
    ])
}

fn wav_8bit(tag: u16, rate: u32, codes: &[u8]) -> Vec<u8> {
    riff(&[
        chunk(b"fmt ", &fmt_body(tag, 1, rate, 8)),
        chunk(b"data", codes),
    ])
}

fn limits() -> Limits {
    Limits::default()
}

fn parse(bytes: &[u8]) -> Result<callproc::audio::Wav<'_>, AudioError> {
    parse_wav(bytes, &limits())
}

// ---------------------------------------------------------------------------
// G.711 reference, computed from the ITU-T G.711 tables' formulas
// ---------------------------------------------------------------------------

/// μ-law: complement the code; sign bit 7 (1 = negative), segment s, step
/// q; reconstruction (2q + 33)·2^s − 33 in 14-bit units, ×4 to 16 bits.
fn mulaw_reference(code: u8) -> i32 {
    let c = 255 - i32::from(code); // the complement, by arithmetic
    let negative = c >= 128;
    let s = (c % 128) / 16;
    let q = c % 16;
    let mag = (2 * q + 33) * 2i32.pow(s as u32) - 33;
    4 * if negative { -mag } else { mag }
}

/// A-law: invert the even bits; sign bit 7 (1 = positive), segment s, step
/// q; reconstruction 2q + 1 (s = 0) or (2q + 33)·2^(s−1), in 13-bit units,
/// ×8 to 16 bits.
fn alaw_reference(code: u8) -> i32 {
    let mut c = 0i32;
    for bit in 0..8 {
        let b = (i32::from(code) >> bit) & 1;
        let inverted = if bit % 2 == 0 { 1 - b } else { b };
        c += inverted << bit;
    }
    let positive = c >= 128;
    let s = (c % 128) / 16;
    let q = c % 16;
    let mag = if s == 0 {
        2 * q + 1
    } else {
        (2 * q + 33) * 2i32.pow(s as u32 - 1)
    };
    8 * if positive { mag } else { -mag }
}

/// Nearest μ-law code (brute force over the reference table).
fn mulaw_encode(x: i16) -> u8 {
    (0..=255u8)
        .min_by_key(|&c| {
            // Ties (only ±0) go to the higher code: 0xFF is the usual zero.
            (
                (mulaw_reference(c) - i32::from(x)).abs(),
                std::cmp::Reverse(c),
            )
        })
        .unwrap()
}

fn alaw_encode(x: i16) -> u8 {
    (0..=255u8)
        .min_by_key(|&c| ((alaw_reference(c) - i32::from(x)).abs(), c))
        .unwrap()
}

#[test]
fn mulaw_full_table_matches_g711() {
    for code in 0..=255u8 {
        assert_eq!(
            i32::from(mulaw_to_linear(code)),
            mulaw_reference(code),
            "code {code:#04x}"
        );
    }
    assert_eq!(mulaw_to_linear(0xFF), 0);
    assert_eq!(mulaw_to_linear(0x7F), 0);
    assert_eq!(mulaw_to_linear(0x80), 32124);
    assert_eq!(mulaw_to_linear(0x00), -32124);
    // Monotone within each sign: 0x80..=0xFF falls from +32124 to 0.
    for c in 0x80..0xFFu8 {
        assert!(mulaw_to_linear(c) > mulaw_to_linear(c + 1));
    }
}

#[test]
fn alaw_full_table_matches_g711() {
    for code in 0..=255u8 {
        assert_eq!(
            i32::from(alaw_to_linear(code)),
            alaw_reference(code),
            "code {code:#04x}"
        );
    }
    assert_eq!(alaw_to_linear(0xD5), 8);
    assert_eq!(alaw_to_linear(0x55), -8);
    assert_eq!(alaw_to_linear(0xAA), 32256);
    assert_eq!(alaw_to_linear(0x2A), -32256);
    // 256 distinct values, none zero.
    let mut all: Vec<i16> = (0..=255u8).map(alaw_to_linear).collect();
    assert!(!all.contains(&0));
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 256);
}

// ---------------------------------------------------------------------------
// Accepted files
// ---------------------------------------------------------------------------

fn sine(rate: u32, hz: f64, amplitude: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (amplitude * (2.0 * std::f64::consts::PI * hz * t).sin()).round() as i16
        })
        .collect()
}

#[test]
fn mulaw_60s_tone_and_silence() {
    let rate = 8000;
    // 400 Hz at 8 kHz: a 20-sample period, encoded once and repeated.
    let period: Vec<u8> = sine(rate, 400.0, 3277.0, 20)
        .into_iter()
        .map(mulaw_encode)
        .collect();
    let silence = mulaw_encode(0);
    assert_eq!(silence, 0xFF);
    // Tone during [5, 17) s and [30, 39) s: 21 of 60 s.
    let mut codes = Vec::with_capacity(60 * 8000);
    for sec in 0..60 {
        let tone = (5..17).contains(&sec) || (30..39).contains(&sec);
        for i in 0..8000 {
            codes.push(if tone { period[i % 20] } else { silence });
        }
    }
    let file = wav_8bit(7, rate, &codes);
    let wav = parse(&file).unwrap();
    assert_eq!(wav.encoding(), Encoding::MuLaw);
    assert_eq!(wav.sample_rate_hz(), 8000);
    assert_eq!(wav.samples().len(), 480_000);
    assert_eq!(wav.duration_secs(), 60.0);
    let a = wav.analyze();
    assert_eq!(a.duration_secs, 60.0);
    assert!((a.speech_ratio - 21.0 / 60.0).abs() < 0.01, "{a:?}");
    // Tone RMS ≈ 3277/√2 → −20 dBFS − 3.01 dB, diluted by 21/60.
    let expected = 20.0 * (3277.0 / 32768.0f64).log10() - 3.0103 + 10.0 * (21.0f64 / 60.0).log10();
    assert!((a.rms_dbfs - expected).abs() < 0.3, "{a:?} vs {expected}");
    assert!((a.peak_dbfs - (-20.0)).abs() < 0.5, "{a:?}");
}

#[test]
fn pcm16_full_scale_sine() {
    let samples = sine(16000, 1000.0, 32767.0, 16000);
    let file = wav_pcm16(16000, &samples);
    let wav = parse(&file).unwrap();
    assert_eq!(wav.encoding(), Encoding::Pcm16);
    assert_eq!(wav.samples(), &samples[..]);
    let a = wav.analyze();
    assert_eq!(a.duration_secs, 1.0);
    assert!((a.rms_dbfs - (-3.0103)).abs() < 0.05, "{a:?}");
    assert!(a.peak_dbfs.abs() < 0.01, "{a:?}");
    // No pauses: the floor is the tone itself, the threshold caps at -30.
    assert_eq!(a.speech_ratio, 1.0);
}

#[test]
fn pcm16_little_endian_extremes() {
    let samples = [i16::MIN, -1, 0, 1, i16::MAX, 0x1234];
    let file = wav_pcm16(8000, &samples);
    let wav = parse(&file).unwrap();
    assert_eq!(wav.samples(), &samples[..]);
    assert_eq!(analyze(&[i16::MIN], 8000).peak_dbfs, 0.0);
}

#[test]
fn alaw_file_decodes() {
    let codes: Vec<u8> = (0..=255u8).cycle().take(1600).collect();
    let file = wav_8bit(6, 8000, &codes);
    let wav = parse(&file).unwrap();
    assert_eq!(wav.encoding(), Encoding::ALaw);
    let expected: Vec<i16> = codes.iter().map(|&c| alaw_to_linear(c)).collect();
    assert_eq!(wav.samples(), &expected[..]);
    // Round trip of the encoder used for generation.
    for x in [-32000i16, -1000, -8, 8, 500, 31000] {
        let y = alaw_to_linear(alaw_encode(x));
        assert!((i32::from(x) - i32::from(y)).abs() <= 1024, "{x} {y}");
    }
}

#[test]
fn extensible_formats() {
    let samples = sine(16000, 500.0, 10000.0, 320);
    let f = riff(&[
        chunk(b"fmt ", &ext_fmt_body(1, 16000, 16, 16)),
        chunk(b"data", &pcm16_bytes(&samples)),
    ]);
    let wav = parse(&f).unwrap();
    assert_eq!(wav.encoding(), Encoding::Pcm16);
    assert_eq!(wav.samples(), &samples[..]);
    for (sub, enc) in [(6u16, Encoding::ALaw), (7, Encoding::MuLaw)] {
        let f = riff(&[
            chunk(b"fmt ", &ext_fmt_body(sub, 8000, 8, 8)),
            chunk(b"data", &[0x12, 0x34, 0x56]),
        ]);
        let wav = parse(&f).unwrap();
        assert_eq!(wav.encoding(), enc);
        assert_eq!(wav.samples().len(), 3);
    }
}

#[test]
fn unknown_chunks_skipped_in_any_order() {
    let samples = [100i16, -200, 300];
    let list = chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00test\x00\x00");
    let fact = chunk(b"fact", &3u32.to_le_bytes());
    let f = riff(&[
        list.clone(),
        chunk(b"fmt ", &fmt_body(1, 1, 8000, 16)),
        fact,
        chunk(b"junk", &[0; 28]),
        chunk(b"data", &pcm16_bytes(&samples)),
        list,
    ]);
    assert_eq!(parse(&f).unwrap().samples(), &samples[..]);
    // data before fmt is accepted too.
    let f = riff(&[
        chunk(b"data", &pcm16_bytes(&samples)),
        chunk(b"fmt ", &fmt_body(1, 1, 8000, 16)),
    ]);
    assert_eq!(parse(&f).unwrap().samples(), &samples[..]);
    // An 18-byte PCM fmt (cbSize = 0) is fine.
    let mut fmt18 = fmt_body(1, 1, 8000, 16);
    fmt18.extend_from_slice(&[0, 0]);
    let f = riff(&[
        chunk(b"fmt ", &fmt18),
        chunk(b"data", &pcm16_bytes(&samples)),
    ]);
    assert_eq!(parse(&f).unwrap().samples(), &samples[..]);
}

#[test]
fn odd_chunk_padding() {
    // An odd-sized unknown chunk, then an odd-sized μ-law data chunk whose
    // pad byte is present, then another chunk after it.
    let f = riff(&[
        chunk(b"note", b"abc"),
        chunk(b"fmt ", &fmt_body(7, 1, 8000, 8)),
        chunk(b"data", &[0x00, 0x80, 0xFF]),
        chunk(b"fact", &3u32.to_le_bytes()),
    ]);
    let wav = parse(&f).unwrap();
    assert_eq!(wav.samples(), &[-32124, 32124, 0]);
    // Same with the final pad byte missing (common in the wild).
    let mut f = riff(&[
        chunk(b"fmt ", &fmt_body(7, 1, 8000, 8)),
        chunk(b"data", &[0x00, 0x80, 0xFF]),
    ]);
    f.pop();
    let size = (f.len() - 8) as u32;
    f[4..8].copy_from_slice(&size.to_le_bytes());
    assert_eq!(parse(&f).unwrap().samples(), &[-32124, 32124, 0]);
    // Without padding the next header is read one byte early: refused.
    let mut body = Vec::new();
    body.extend_from_slice(&chunk(b"fmt ", &fmt_body(7, 1, 8000, 8)));
    body.extend_from_slice(b"note\x03\x00\x00\x00abc"); // no pad
    body.extend_from_slice(&chunk(b"data", &[1, 2]));
    let mut f = b"RIFF".to_vec();
    f.extend_from_slice(&(4 + body.len() as u32).to_le_bytes());
    f.extend_from_slice(b"WAVE");
    f.extend_from_slice(&body);
    assert!(parse(&f).is_err());
}

#[test]
fn trailing_bytes_after_riff_ignored() {
    let mut f = wav_8bit(7, 8000, &[1, 2, 3, 4]);
    f.extend_from_slice(b"garbage");
    assert_eq!(parse(&f).unwrap().samples().len(), 4);
}

// ---------------------------------------------------------------------------
// Refused files: every error variant
// ---------------------------------------------------------------------------

fn valid_pcm() -> Vec<u8> {
    wav_pcm16(8000, &[1, 2, 3, 4])
}

#[test]
fn too_large() {
    let f = valid_pcm();
    let l = Limits {
        max_bytes: f.len() - 1,
        max_secs: 10,
    };
    assert_eq!(
        parse_wav(&f, &l),
        Err(AudioError::TooLarge {
            len: f.len(),
            max: f.len() - 1
        })
    );
    let l = Limits {
        max_bytes: f.len(),
        max_secs: 10,
    };
    assert!(parse_wav(&f, &l).is_ok());
}

#[test]
fn wrong_magic() {
    let mut f = valid_pcm();
    f[0] = b'X';
    assert_eq!(parse(&f), Err(AudioError::NotRiff));
    assert_eq!(parse(b"RIFX"), Err(AudioError::NotRiff));
    assert_eq!(parse(b"RF64\0\0\0\0WAVE"), Err(AudioError::NotRiff));
    assert_eq!(parse(b"x"), Err(AudioError::NotRiff));
    let mut f = valid_pcm();
    f[8..12].copy_from_slice(b"AVI ");
    assert_eq!(parse(&f), Err(AudioError::NotWave));
}

#[test]
fn truncated_at_every_length() {
    let f = wav_8bit(7, 8000, &[0x11; 101]);
    assert!(parse(&f).is_ok());
    // Every proper prefix, including the one missing only the pad byte.
    for n in 0..f.len() {
        let err = parse(&f[..n]).unwrap_err();
        let expected = if n < 12 {
            AudioError::TruncatedHeader {
                offset: 0,
                needed: 12,
                available: n,
            }
        } else {
            AudioError::Truncated {
                chunk: FourCc::RIFF,
                declared: (f.len() - 8) as u64,
                available: (n - 8) as u64,
            }
        };
        assert_eq!(err, expected, "length {n}");
    }
}

/// Keeps the first `n` bytes and fixes the RIFF size to match, so the
/// truncation is seen by the chunk walk.
fn cut_consistent(f: &[u8], n: usize) -> Vec<u8> {
    let mut g = f[..n].to_vec();
    let size = (n - 8) as u32;
    g[4..8].copy_from_slice(&size.to_le_bytes());
    g
}

#[test]
fn truncated_chunks_inside_consistent_riff() {
    let f = valid_pcm(); // 12 header + 8+16 fmt + 8+8 data = 52
    assert_eq!(f.len(), 52);
    // Only "WAVE": no chunks at all.
    assert_eq!(parse(&cut_consistent(&f, 12)), Err(AudioError::MissingFmt));
    for n in 13..20 {
        assert_eq!(
            parse(&cut_consistent(&f, n)),
            Err(AudioError::TruncatedHeader {
                offset: 12,
                needed: 8,
                available: n - 12
            }),
            "{n}"
        );
    }
    for n in 20..36 {
        assert_eq!(
            parse(&cut_consistent(&f, n)),
            Err(AudioError::Truncated {
                chunk: FourCc::FMT,
                declared: 16,
                available: (n - 20) as u64
            }),
            "{n}"
        );
    }
    assert_eq!(parse(&cut_consistent(&f, 36)), Err(AudioError::MissingData));
    for n in 37..44 {
        assert_eq!(
            parse(&cut_consistent(&f, n)),
            Err(AudioError::TruncatedHeader {
                offset: 36,
                needed: 8,
                available: n - 36
            }),
            "{n}"
        );
    }
    for n in 44..52 {
        assert_eq!(
            parse(&cut_consistent(&f, n)),
            Err(AudioError::Truncated {
                chunk: FourCc::DATA,
                declared: 8,
                available: (n - 44) as u64
            }),
            "{n}"
        );
    }
}

#[test]
fn data_length_lying() {
    let mut f = valid_pcm();
    f[40..44].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(
        parse(&f),
        Err(AudioError::Truncated {
            chunk: FourCc::DATA,
            declared: 1000,
            available: 8
        })
    );
    f[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        parse(&f),
        Err(AudioError::Truncated {
            chunk: FourCc::DATA,
            declared: u64::from(u32::MAX),
            available: 8
        })
    );
    // RIFF size lying.
    let mut f = valid_pcm();
    f[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        parse(&f),
        Err(AudioError::Truncated {
            chunk: FourCc::RIFF,
            declared: u64::from(u32::MAX),
            available: 44
        })
    );
    f[4..8].copy_from_slice(&3u32.to_le_bytes());
    assert_eq!(parse(&f), Err(AudioError::RiffSizeTooSmall { declared: 3 }));
}

#[test]
fn duplicate_and_missing_chunks() {
    let fmt = chunk(b"fmt ", &fmt_body(1, 1, 8000, 16));
    let data = chunk(b"data", &[0, 0]);
    assert_eq!(
        parse(&riff(&[fmt.clone(), fmt.clone(), data.clone()])),
        Err(AudioError::DuplicateChunk { chunk: FourCc::FMT })
    );
    assert_eq!(
        parse(&riff(&[fmt.clone(), data.clone(), data.clone()])),
        Err(AudioError::DuplicateChunk {
            chunk: FourCc::DATA
        })
    );
    assert_eq!(
        parse(&riff(std::slice::from_ref(&data))),
        Err(AudioError::MissingFmt)
    );
    assert_eq!(
        parse(&riff(&[fmt, chunk(b"LIST", b"")])),
        Err(AudioError::MissingData)
    );
}

fn with_fmt(fmt: &[u8], data: &[u8]) -> Result<Vec<i16>, AudioError> {
    parse(&riff(&[chunk(b"fmt ", fmt), chunk(b"data", data)])).map(|w| w.samples())
}

#[test]
fn fmt_errors() {
    let good = fmt_body(1, 1, 8000, 16);
    assert_eq!(
        with_fmt(&good[..14], &[0, 0]),
        Err(AudioError::FmtTooShort { len: 14, min: 16 })
    );
    assert_eq!(
        with_fmt(&ext_fmt_body(1, 8000, 16, 16)[..39], &[0, 0]),
        Err(AudioError::FmtTooShort { len: 39, min: 40 })
    );
    assert_eq!(
        with_fmt(&fmt_body(3, 1, 8000, 32), &[0; 4]), // IEEE float
        Err(AudioError::UnsupportedFormat { tag: 3 })
    );
    assert_eq!(
        with_fmt(&fmt_body(0x55, 1, 8000, 0), &[0; 4]), // MP3
        Err(AudioError::UnsupportedFormat { tag: 0x55 })
    );
    assert_eq!(
        with_fmt(&ext_fmt_body(3, 8000, 32, 32), &[0; 4]),
        Err(AudioError::UnsupportedFormat { tag: 3 })
    );
    let mut bad_guid = ext_fmt_body(1, 8000, 16, 16);
    bad_guid[39] = 0x72;
    let mut guid = [0u8; 16];
    guid.copy_from_slice(&bad_guid[24..40]);
    assert_eq!(
        with_fmt(&bad_guid, &[0; 2]),
        Err(AudioError::UnsupportedSubformat { guid })
    );
    // 24-bit PCM, 8-bit PCM, 16-bit μ-law.
    assert_eq!(
        with_fmt(&fmt_body(1, 1, 8000, 24), &[0; 3]),
        Err(AudioError::UnsupportedBits { tag: 1, bits: 24 })
    );
    assert_eq!(
        with_fmt(&fmt_body(1, 1, 8000, 8), &[0; 3]),
        Err(AudioError::UnsupportedBits { tag: 1, bits: 8 })
    );
    assert_eq!(
        with_fmt(&fmt_body(7, 1, 8000, 16), &[0; 2]),
        Err(AudioError::UnsupportedBits { tag: 7, bits: 16 })
    );
    // Extensible: 24-bit container, 20 valid bits in a 24-bit container,
    // 12 valid bits in a 16-bit one.
    assert_eq!(
        with_fmt(&ext_fmt_body(1, 8000, 24, 24), &[0; 3]),
        Err(AudioError::UnsupportedBits { tag: 1, bits: 24 })
    );
    assert_eq!(
        with_fmt(&ext_fmt_body(1, 8000, 16, 12), &[0; 2]),
        Err(AudioError::UnsupportedBits { tag: 1, bits: 12 })
    );
    // Sample rates.
    for hz in [44100, 48000, 11025, 0, 8001, u32::MAX / 2] {
        assert_eq!(
            with_fmt(&fmt_body(1, 1, hz, 16), &[0; 2]),
            Err(AudioError::UnsupportedRate { hz })
        );
    }
    // Channels: stereo refused, zero refused.
    assert_eq!(
        with_fmt(&fmt_body(1, 2, 8000, 16), &[0; 4]),
        Err(AudioError::UnsupportedChannels { channels: 2 })
    );
    assert_eq!(
        with_fmt(&fmt_body(7, 0, 8000, 8), &[0; 4]),
        Err(AudioError::UnsupportedChannels { channels: 0 })
    );
    // Block align and byte rate.
    let mut f = fmt_body(1, 1, 16000, 16);
    f[12..14].copy_from_slice(&4u16.to_le_bytes());
    assert_eq!(
        with_fmt(&f, &[0; 4]),
        Err(AudioError::BlockAlignMismatch {
            declared: 4,
            expected: 2
        })
    );
    let mut f = fmt_body(1, 1, 16000, 16);
    f[8..12].copy_from_slice(&16000u32.to_le_bytes());
    assert_eq!(
        with_fmt(&f, &[0; 4]),
        Err(AudioError::ByteRateMismatch {
            declared: 16000,
            expected: 32000
        })
    );
}

#[test]
fn data_errors() {
    let pcm = fmt_body(1, 1, 8000, 16);
    assert_eq!(with_fmt(&pcm, &[]), Err(AudioError::Empty));
    assert_eq!(
        with_fmt(&fmt_body(6, 1, 8000, 8), &[]),
        Err(AudioError::Empty)
    );
    assert_eq!(
        with_fmt(&pcm, &[0; 3]),
        Err(AudioError::PartialFrame {
            data_len: 3,
            block_align: 2
        })
    );
    // Duration limit: exactly max_secs is fine, one sample more is not.
    let l = Limits {
        max_bytes: 1 << 20,
        max_secs: 2,
    };
    let mulaw = fmt_body(7, 1, 8000, 8);
    let ok = riff(&[chunk(b"fmt ", &mulaw), chunk(b"data", &[0xFF; 16000])]);
    assert_eq!(parse_wav(&ok, &l).unwrap().duration_secs(), 2.0);
    let long = riff(&[chunk(b"fmt ", &mulaw), chunk(b"data", &[0xFF; 16001])]);
    assert_eq!(
        parse_wav(&long, &l),
        Err(AudioError::TooLong { secs: 3, max: 2 })
    );
}

#[test]
fn errors_display() {
    let e = AudioError::Truncated {
        chunk: FourCc(*b"da\x00a"),
        declared: 10,
        available: 2,
    };
    assert_eq!(
        e.to_string(),
        "chunk 'da\\x00a' declares 10 bytes, only 2 present"
    );
    assert!(AudioError::UnsupportedRate { hz: 44100 }
        .to_string()
        .contains("44100"));
    // Debug of a Wav does not dump the samples.
    let file = valid_pcm();
    let wav = parse(&file).unwrap();
    assert_eq!(
        format!("{wav:?}"),
        "Wav { encoding: Pcm16, sample_rate_hz: 8000, samples: <4 samples> }"
    );
}

// ---------------------------------------------------------------------------
// analyze
// ---------------------------------------------------------------------------

#[test]
fn analyze_silence_and_edge_cases() {
    for a in [
        analyze(&[], 8000),
        analyze(&[0; 8000], 8000),
        analyze(&[0; 10], 0),
    ] {
        assert_eq!(a.rms_dbfs, FLOOR_DBFS);
        assert_eq!(a.peak_dbfs, FLOOR_DBFS);
        assert_eq!(a.speech_ratio, 0.0);
        assert!(a.duration_secs.is_finite());
    }
    assert_eq!(analyze(&[0; 10], 0).duration_secs, 0.0);
    // Less than one frame: levels measured, no VAD decision.
    let a = analyze(&[1000; 100], 8000);
    assert_eq!(a.speech_ratio, 0.0);
    assert!((a.rms_dbfs - 20.0 * (1000.0f64 / 32768.0).log10()).abs() < 1e-9);
    // Odd rates never panic.
    for rate in [1, 49, 50, 51, u32::MAX] {
        let a = analyze(&[5; 300], rate);
        assert!(a.speech_ratio.is_finite() && a.duration_secs.is_finite());
    }
}

/// xorshift64*: deterministic test noise.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn vad_adapts_to_noise_floor() {
    let rate = 16000;
    let mut rng = Rng(7);
    // Background noise around -50 dBFS, 3 s tone bursts at -20 dBFS in a
    // 10 s recording: 0.3 active.
    let tone = sine(rate, 300.0, 3277.0, 10 * 16000);
    let samples: Vec<i16> = (0..10 * 16000)
        .map(|i| {
            let noise = rng.below(201) as i16 - 100;
            let sec = i / 16000;
            if sec == 2 || sec == 5 || sec == 6 {
                tone[i].saturating_add(noise)
            } else {
                noise
            }
        })
        .collect();
    let a = analyze(&samples, rate);
    assert!((a.speech_ratio - 0.3).abs() < 0.01, "{a:?}");
    // Pauses 9.5 dB louder (about -46 dBFS): the floor adapts, still 0.3.
    // Pauses 29.5 dB louder (about -26 dBFS, above the -30 dBFS threshold
    // ceiling): everything reads as active.
    for (gain, expected) in [(3, 0.3), (30, 1.0)] {
        let louder: Vec<i16> = samples
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let sec = i / 16000;
                if sec == 2 || sec == 5 || sec == 6 {
                    s
                } else {
                    s.saturating_mul(gain)
                }
            })
            .collect();
        let a = analyze(&louder, rate);
        assert!((a.speech_ratio - expected).abs() < 0.01, "{gain}: {a:?}");
    }
}

// ---------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------

#[test]
fn mutation_never_panics() {
    let seeds: Vec<Vec<u8>> = vec![
        valid_pcm(),
        wav_8bit(7, 8000, &[0x12; 41]),
        riff(&[
            chunk(b"LIST", b"INFOabc"),
            chunk(b"fmt ", &ext_fmt_body(6, 16000, 8, 8)),
            chunk(b"data", &[0x55; 64]),
        ]),
    ];
    let small = Limits {
        max_bytes: 4096,
        max_secs: 1,
    };
    let mut rng = Rng(0x5EED_CA11);
    let mut accepted = 0u32;
    for round in 0..20_000u32 {
        let mut f = seeds[round as usize % seeds.len()].clone();
        for _ in 0..=rng.below(4) {
            match rng.below(6) {
                0 if !f.is_empty() => {
                    let i = rng.below(f.len() as u64) as usize;
                    f[i] ^= 1 << rng.below(8);
                }
                1 if !f.is_empty() => {
                    let i = rng.below(f.len() as u64) as usize;
                    f[i] = rng.next() as u8;
                }
                2 => {
                    let n = rng.below(f.len() as u64 + 1) as usize;
                    f.truncate(n);
                }
                3 => {
                    for _ in 0..rng.below(64) {
                        f.push(rng.next() as u8);
                    }
                }
                4 if f.len() >= 4 => {
                    // Overwrite a size-like field with an extreme value.
                    let i = rng.below(f.len() as u64 - 3) as usize;
                    let v = [0u32, 1, 3, 0x7FFF_FFFF, u32::MAX][rng.below(5) as usize];
                    f[i..i + 4].copy_from_slice(&v.to_le_bytes());
                }
                _ => {
                    let i = rng.below(f.len() as u64 + 1) as usize;
                    f.insert(i, rng.next() as u8);
                }
            }
        }
        for l in [&small, &Limits::default()] {
            if let Ok(wav) = parse_wav(&f, l) {
                accepted += 1;
                assert!(!wav.samples().is_empty());
                assert!(wav.samples().len() <= f.len());
                let a = wav.analyze();
                // Measured from the encoded bytes as from the decoded samples.
                assert_eq!(a, analyze(&wav.samples(), wav.sample_rate_hz()));
                assert!(a.rms_dbfs.is_finite() && a.peak_dbfs.is_finite());
                assert!((0.0..=1.0).contains(&a.speech_ratio));
            }
        }
    }
    assert!(accepted > 0);
}
