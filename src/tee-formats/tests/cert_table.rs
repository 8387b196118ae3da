//! SEV-SNP certificate table (extended report / configfs-tsm auxblob). No real
//! table is public (tee-formats.md §4), so tables are built from the real
//! certificates in shared/fixtures and laid out as hosts and the kernel do.
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

use common::fixture;
use tee_formats::snp::cert_table::ENTRY_SIZE;
use tee_formats::snp::{CertKind, CertTable, Guid};
use tee_formats::{CertTableProblem, FormatError};

/// The DER certificates of a PEM bundle (tiny base64 decoder: test only).
fn pem_certs(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = std::str::from_utf8(pem).unwrap();
    let mut out = Vec::new();
    for block in text.split("-----BEGIN CERTIFICATE-----").skip(1) {
        let b64: String = block
            .split("-----END CERTIFICATE-----")
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        out.push(base64(&b64));
    }
    out
}

fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("base64 digit {c}"),
    };
    let digits: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(val).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &d)| acc | (u32::from(d) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// ARK, ASK, VCEK (Milan), as a host would supply them.
fn milan_chain() -> Vec<(Guid, Vec<u8>)> {
    let ca = pem_certs(&fixture("snp/amd-certs/milan_ask_ark.pem"));
    assert_eq!(ca.len(), 2);
    assert_eq!(ca[0][0], 0x30, "DER SEQUENCE");
    vec![
        (Guid::VCEK, fixture("snp/milan-v2-virtee/vcek.der")),
        (Guid::ASK, ca[0].clone()),
        (Guid::ARK, ca[1].clone()),
    ]
}

fn entry_bytes(guid: Guid, offset: u32, length: u32) -> Vec<u8> {
    let mut e = guid.0.to_vec();
    e.extend_from_slice(&offset.to_le_bytes());
    e.extend_from_slice(&length.to_le_bytes());
    e
}

#[test]
fn known_guids_are_named_and_printed_in_rfc4122_order() {
    assert_eq!(
        Guid::VCEK.to_string(),
        "63da758d-e664-4564-adc5-f4b93be8accd"
    );
    assert_eq!(
        Guid::VLEK.to_string(),
        "a8074bc2-a25a-483e-aae6-39c045a0b8a1"
    );
    assert_eq!(
        Guid::ASK.to_string(),
        "4ab7b379-bbac-4fe4-a02f-05aef327c782"
    );
    assert_eq!(Guid::ASVK, Guid::ASK);
    assert_eq!(
        Guid::ARK.to_string(),
        "c0b406a4-a803-4952-9743-3fb6014cd0ae"
    );
    assert_eq!(
        Guid::CRL.to_string(),
        "92f81bc3-5811-4d3d-97ff-d19f88dc67ea"
    );
    assert_eq!(
        Guid::EXTRA_PLATFORM_INFO.to_string(),
        "ecae0c0f-9502-43b1-afa2-0ae2e0d565b6"
    );
    assert_eq!(&Guid::ARK.0[..4], &[0xc0, 0xb4, 0x06, 0xa4]);
    assert_eq!(CertKind::of(&Guid::VCEK), CertKind::Vcek);
    assert_eq!(CertKind::of(&Guid::VLEK), CertKind::Vlek);
    assert_eq!(CertKind::of(&Guid::ASK), CertKind::AskOrAsvk);
    assert_eq!(CertKind::of(&Guid::ARK), CertKind::Ark);
    assert_eq!(CertKind::of(&Guid::CRL), CertKind::Crl);
    assert_eq!(CertKind::of(&Guid([0x11; 16])), CertKind::Other);
}

#[test]
fn canonical_table_round_trips_and_finds_certificates() {
    let chain = milan_chain();
    let table = CertTable::from_entries(chain.clone()).unwrap();
    let bytes = table.to_bytes();
    let header_len = 4 * ENTRY_SIZE;
    assert_eq!(
        bytes.len(),
        header_len + chain.iter().map(|(_, d)| d.len()).sum::<usize>()
    );
    assert_eq!(
        &bytes[3 * ENTRY_SIZE..header_len],
        &[0u8; ENTRY_SIZE],
        "terminator"
    );
    assert_eq!(&bytes[..16], &Guid::VCEK.0);
    assert_eq!(
        u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize,
        header_len
    );

    let parsed = CertTable::parse(&bytes).unwrap();
    assert_eq!(parsed, table);
    assert_eq!(parsed.to_bytes(), bytes);
    assert_eq!(parsed.len_bytes(), bytes.len());
    assert_eq!(parsed.entries().len(), 3);
    assert_eq!(parsed.get(&Guid::VCEK), Some(chain[0].1.as_slice()));
    assert_eq!(
        parsed.get_kind(CertKind::AskOrAsvk),
        Some(chain[1].1.as_slice())
    );
    assert_eq!(parsed.get_kind(CertKind::Ark), Some(chain[2].1.as_slice()));
    assert_eq!(parsed.get_kind(CertKind::Vlek), None);
    let kinds: Vec<CertKind> = parsed.entries().iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, [CertKind::Vcek, CertKind::AskOrAsvk, CertKind::Ark]);
}

#[test]
fn page_padded_ext_report_buffer_round_trips() {
    // SNP_GET_EXT_REPORT hands back a page-multiple buffer; blobs may also be
    // placed with gaps. Uncovered bytes are zero, so the round trip is exact.
    let chain = milan_chain();
    let mut buf = vec![0u8; 16384];
    let offsets = [0x1000u32, 0x800, 0x2000];
    for (i, ((guid, data), off)) in chain.iter().zip(offsets).enumerate() {
        buf[i * ENTRY_SIZE..(i + 1) * ENTRY_SIZE].copy_from_slice(&entry_bytes(
            *guid,
            off,
            data.len() as u32,
        ));
        buf[off as usize..off as usize + data.len()].copy_from_slice(data);
    }
    let table = CertTable::parse(&buf).unwrap();
    assert_eq!(table.len_bytes(), 16384);
    assert_eq!(table.entries()[0].offset, 0x1000);
    assert_eq!(table.get(&Guid::ASK), Some(chain[1].1.as_slice()));
    assert_eq!(table.to_bytes(), buf);
}

#[test]
fn empty_and_all_zero_buffers_are_empty_tables() {
    let empty = CertTable::parse(&[]).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.to_bytes(), Vec::<u8>::new());
    let zeros = CertTable::parse(&[0u8; 4096]).unwrap();
    assert!(zeros.is_empty());
    assert_eq!(zeros.to_bytes(), vec![0u8; 4096]);
}

#[test]
fn unterminated_tables_are_truncated_errors() {
    let chain = milan_chain();
    let bytes = CertTable::from_entries(chain).unwrap().to_bytes();
    // Cut inside the GUID table, before the terminator is complete.
    for len in [1, 16, 23, 24, 47, 71, 95] {
        match CertTable::parse(&bytes[..len]) {
            Err(FormatError::Truncated { what, needed, got }) => {
                assert!(what.starts_with("certificate table entry"), "{what}");
                assert_eq!(got, len);
                assert!(needed > len);
            }
            other => panic!("len {len}: {other:?}"),
        }
    }
    // A single non-terminator entry with nothing after it.
    assert!(matches!(
        CertTable::parse(&entry_bytes(Guid::VCEK, 48, 1)),
        Err(FormatError::Truncated { .. })
    ));
}

#[test]
fn cut_certificate_data_is_out_of_bounds() {
    let bytes = CertTable::from_entries(milan_chain()).unwrap().to_bytes();
    let cut = bytes.len() - 1;
    match CertTable::parse(&bytes[..cut]) {
        Err(FormatError::CertTableEntry {
            index: 2,
            problem: CertTableProblem::OutOfBounds { buffer_len, .. },
        }) => {
            assert_eq!(buffer_len, cut)
        }
        other => panic!("{other:?}"),
    }
}

fn table(entries: &[(Guid, u32, u32)], total: usize) -> Vec<u8> {
    let mut buf: Vec<u8> = entries
        .iter()
        .flat_map(|&(g, o, l)| entry_bytes(g, o, l))
        .collect();
    buf.extend_from_slice(&[0u8; ENTRY_SIZE]);
    buf.resize(total.max(buf.len()), 0xAB);
    buf
}

#[test]
fn bad_offsets_lengths_overlaps_and_duplicates_are_rejected() {
    use CertTableProblem::*;
    let hdr = 3 * ENTRY_SIZE as u32; // two entries + terminator
    let cases: Vec<(Vec<u8>, FormatError)> = vec![
        (
            table(&[(Guid::VCEK, 0, 10), (Guid::ASK, hdr, 10)], 200),
            FormatError::CertTableEntry {
                index: 0,
                problem: OffsetInsideTable {
                    offset: 0,
                    table_len: 72,
                },
            },
        ),
        (
            table(&[(Guid::VCEK, hdr, 10), (Guid::ASK, hdr - 1, 10)], 200),
            FormatError::CertTableEntry {
                index: 1,
                problem: OffsetInsideTable {
                    offset: hdr - 1,
                    table_len: 72,
                },
            },
        ),
        (
            table(&[(Guid::VCEK, hdr, 10), (Guid::ASK, 190, 11)], 200),
            FormatError::CertTableEntry {
                index: 1,
                problem: OutOfBounds {
                    offset: 190,
                    length: 11,
                    buffer_len: 200,
                },
            },
        ),
        (
            table(&[(Guid::VCEK, hdr, u32::MAX), (Guid::ASK, 100, 10)], 200),
            FormatError::CertTableEntry {
                index: 0,
                problem: OutOfBounds {
                    offset: hdr,
                    length: u32::MAX,
                    buffer_len: 200,
                },
            },
        ),
        (
            table(
                &[(Guid::VCEK, u32::MAX, u32::MAX), (Guid::ASK, 100, 10)],
                200,
            ),
            FormatError::CertTableEntry {
                index: 0,
                problem: OutOfBounds {
                    offset: u32::MAX,
                    length: u32::MAX,
                    buffer_len: 200,
                },
            },
        ),
        (
            table(&[(Guid::VCEK, hdr, 0), (Guid::ASK, 100, 10)], 200),
            FormatError::CertTableEntry {
                index: 0,
                problem: Empty,
            },
        ),
        (
            table(&[(Guid::VCEK, hdr, 30), (Guid::ASK, hdr + 29, 10)], 200),
            FormatError::CertTableEntry {
                index: 1,
                problem: Overlap { other: 0 },
            },
        ),
        (
            table(&[(Guid::VCEK, 150, 30), (Guid::ASK, 100, 51)], 200),
            FormatError::CertTableEntry {
                index: 1,
                problem: Overlap { other: 0 },
            },
        ),
        (
            table(&[(Guid::VCEK, hdr, 10), (Guid::VCEK, 100, 10)], 200),
            FormatError::CertTableEntry {
                index: 1,
                problem: DuplicateGuid { other: 0 },
            },
        ),
    ];
    for (i, (buf, want)) in cases.into_iter().enumerate() {
        assert_eq!(CertTable::parse(&buf), Err(want), "case {i}");
    }
    // Adjacent (touching, not overlapping) entries are fine.
    let ok = table(&[(Guid::VCEK, hdr, 30), (Guid::ASK, hdr + 30, 10)], 200);
    assert_eq!(CertTable::parse(&ok).unwrap().entries().len(), 2);
    // The message names the entry and the problem.
    let msg = CertTable::parse(&table(&[(Guid::VCEK, hdr, 10), (Guid::VCEK, 100, 10)], 200))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("entry 1") && msg.contains("GUID"), "{msg}");
}

#[test]
fn from_entries_rejects_empty_and_duplicate_entries() {
    assert_eq!(
        CertTable::from_entries(vec![(Guid::VCEK, vec![])]),
        Err(FormatError::CertTableEntry {
            index: 0,
            problem: CertTableProblem::Empty
        })
    );
    assert_eq!(
        CertTable::from_entries(vec![(Guid::VCEK, vec![1]), (Guid::VCEK, vec![2])]),
        Err(FormatError::CertTableEntry {
            index: 1,
            problem: CertTableProblem::DuplicateGuid { other: 0 }
        })
    );
    let t = CertTable::from_entries(vec![]).unwrap();
    assert_eq!(t.to_bytes(), vec![0u8; ENTRY_SIZE], "just the terminator");
    assert!(CertTable::parse(&t.to_bytes()).unwrap().is_empty());
}

#[test]
fn large_tables_parse_and_report_the_first_duplicate() {
    let guid = |i: u32| {
        let mut g = [0x5Au8; 16];
        g[..4].copy_from_slice(&i.to_be_bytes());
        Guid(g)
    };
    let entries: Vec<(Guid, Vec<u8>)> = (0..2000).map(|i| (guid(i), vec![i as u8; 3])).collect();
    let bytes = CertTable::from_entries(entries.clone()).unwrap().to_bytes();
    let parsed = CertTable::parse(&bytes).unwrap();
    assert_eq!(parsed.entries().len(), 2000);
    assert_eq!(parsed.to_bytes(), bytes);

    // Entries 700 and 1500 repeat the GUIDs of entries 3 and 10: the error
    // names the earliest repetition.
    let mut dup = bytes.clone();
    dup[700 * ENTRY_SIZE..700 * ENTRY_SIZE + 16].copy_from_slice(&guid(3).0);
    dup[1500 * ENTRY_SIZE..1500 * ENTRY_SIZE + 16].copy_from_slice(&guid(10).0);
    assert_eq!(
        CertTable::parse(&dup),
        Err(FormatError::CertTableEntry {
            index: 700,
            problem: CertTableProblem::DuplicateGuid { other: 3 }
        })
    );
}
