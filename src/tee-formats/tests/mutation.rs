//! Deterministic mutation test: every fixture is truncated at every length,
//! and flipped, overwritten and extended at many positions chosen by a
//! fixed-seed PRNG. Every parser sees every mutant; none may panic, and
//! whatever parses must re-encode consistently.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

mod common;

use common::{fixture, Prng, SNP_REPORTS, TDREPORTS, TDX_QUOTES};
use tee_formats::snp::{AttestationReport, CertTable, Guid, ReceivedReport};
use tee_formats::tdx::{Quote, ReceivedQuote, TdReport};

const SEED: u64 = 0x5EED_0FE7_C1A7_E5E5;
const MUTANTS_PER_FIXTURE: usize = 3000;

/// Runs every parser on `input` and checks the round-trip invariants of the
/// ones that accept it.
fn check_all(input: &[u8]) {
    if let Ok(r) = AttestationReport::parse(input) {
        assert_eq!(r.to_bytes().as_slice(), input);
        assert_eq!(ReceivedReport::parse(input).unwrap().report(), &r);
        let _ = r.generation();
    }
    if let Ok(t) = CertTable::parse(input) {
        let again = t.to_bytes();
        assert_eq!(again.len(), input.len());
        assert_eq!(CertTable::parse(&again).unwrap(), t);
    }
    if let Ok(r) = TdReport::parse(input) {
        assert_eq!(r.to_bytes().as_slice(), input);
    }
    if let Ok(q) = Quote::parse(input) {
        let enc = q.to_bytes().unwrap();
        assert_eq!(enc.as_slice(), &input[..input.len() - q.trailing_len]);
        let rq = ReceivedQuote::parse(input).unwrap();
        assert_eq!(rq.signed_bytes().len(), q.signed_len());
        let _ = rq.qe_report_bytes();
    }
    let _ = tee_formats::binding::report_data_from_slices(
        input.get(..32).unwrap_or(input),
        input,
        input.get(32..64).unwrap_or(input),
    );
}

/// Values that stress length and type fields.
const INTERESTING: &[u32] = &[
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x248,
    0x288,
    0x375,
    0x10CC,
    0xFFFF,
    0x1_0000,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
];

fn mutate(rng: &mut Prng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    match rng.below(6) {
        0 => {
            // Flip 1..=4 random bits.
            for _ in 0..=rng.below(4) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            // Overwrite 1..=8 random bytes.
            for _ in 0..=rng.below(8) {
                let i = rng.below(b.len());
                b[i] = rng.next_u64() as u8;
            }
        }
        2 => {
            // An interesting 16- or 32-bit value at a random position.
            let v = INTERESTING[rng.below(INTERESTING.len())];
            let i = rng.below(b.len());
            let bytes = v.to_le_bytes();
            let width = if rng.below(2) == 0 { 2 } else { 4 };
            for (k, byte) in bytes.iter().take(width).enumerate() {
                if let Some(dst) = b.get_mut(i + k) {
                    *dst = *byte;
                }
            }
        }
        3 => {
            // Truncate, then flip.
            b.truncate(rng.below(b.len() + 1));
            if !b.is_empty() {
                let i = rng.below(b.len());
                b[i] ^= 0xFF;
            }
        }
        4 => {
            // Extend with random bytes.
            for _ in 0..=rng.below(64) {
                b.push(rng.next_u64() as u8);
            }
        }
        _ => {
            // Delete or duplicate a range (shifts every later field).
            let i = rng.below(b.len());
            let n = rng.below(32).min(b.len() - i);
            if rng.below(2) == 0 {
                b.drain(i..i + n);
            } else {
                let dup: Vec<u8> = b[i..i + n].to_vec();
                b.splice(i..i, dup);
            }
        }
    }
    b
}

fn cert_table_sample() -> Vec<u8> {
    CertTable::from_entries(vec![
        (Guid::VCEK, fixture("snp/milan-v2-virtee/vcek.der")),
        (Guid::VLEK, fixture("snp/milan-v3-vlek-trustee/vlek.der")),
        (Guid::CRL, vec![0x30, 0x03, 0x02, 0x01, 0x00]),
    ])
    .unwrap()
    .to_bytes()
}

fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = SNP_REPORTS
        .iter()
        .chain(TDX_QUOTES)
        .chain(TDREPORTS)
        .map(|rel| (rel.to_string(), fixture(rel)))
        .collect();
    out.push(("synthetic cert table".into(), cert_table_sample()));
    out
}

#[test]
fn every_truncation_of_every_fixture_is_handled() {
    for (name, bytes) in all_fixtures() {
        for len in 0..bytes.len() {
            check_all(&bytes[..len]);
        }
        check_all(&bytes);
        eprintln!("{name}: {} truncations", bytes.len());
    }
}

#[test]
fn random_mutants_of_every_fixture_are_handled() {
    let mut rng = Prng::new(SEED);
    for (name, bytes) in all_fixtures() {
        for _ in 0..MUTANTS_PER_FIXTURE {
            let m = mutate(&mut rng, &bytes);
            check_all(&m);
        }
        eprintln!("{name}: {MUTANTS_PER_FIXTURE} mutants");
    }
}

#[test]
fn every_single_byte_flip_of_the_quote_structure_is_handled() {
    // Exhaustive over the header, body descriptor and the signature-data
    // framing of a v5 quote (where every length and type field lives).
    let bytes = fixture("tdx/dcap-qvl/tdx_quote_outdated");
    let framing = (0..60).chain(700..800).chain(1150..1250);
    for i in framing {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            check_all(&b);
        }
    }
}
