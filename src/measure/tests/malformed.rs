//! Malformed firmware and impossible inputs: each case asserts the precise error.

// Test code: a failed unwrap is a failed test (clippy.toml allows it in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

mod common;

use common::*;
use measure::ovmf::{
    Guid, GuidTable, Ovmf, SectionType, SEV_ES_RESET_BLOCK_GUID, SEV_HASH_TABLE_GUID,
    SEV_METADATA_GUID, SEV_SECRET_BLOCK_GUID,
};
use measure::snp::{launch_digest, launch_digests, Inputs, VcpuType, MAX_VCPUS};
use measure::{MeasureError, OvmfError};

const LEN: usize = 16 * 4096;

fn good() -> FwSpec {
    FwSpec::amd_sev(LEN, 42)
}

fn with_sections(sections: Vec<[u32; 3]>) -> Vec<u8> {
    FwSpec {
        sections: Some(sections),
        ..good()
    }
    .build()
}

fn parse_err(img: &[u8]) -> OvmfError {
    let err = Ovmf::parse(img).unwrap_err();
    // The same error reaches the digest API, wrapped.
    match launch_digest(&Inputs::new(img, VcpuType::EpycV4), 1) {
        Err(MeasureError::Firmware { source }) => assert_eq!(source, err),
        other => panic!("digest gave {other:?}, parse gave {err:?}"),
    }
    // Every error has a one-line message.
    assert!(!err.to_string().contains('\n'));
    err
}

/// Offset of the `u16 length` of `guid`'s table entry header.
fn header_of(img: &[u8], guid: Guid) -> usize {
    let t = GuidTable::parse(img).unwrap();
    let e = t.get(&guid).unwrap();
    e.data_offset + e.data.len()
}

fn put_u16(img: &mut [u8], at: usize, v: u16) {
    img[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(img: &mut [u8], at: usize, v: u32) {
    img[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn the_good_image_parses() {
    let img = good().build();
    let fw = Ovmf::parse(&img).unwrap();
    assert_eq!(fw.sections().len(), 7);
    assert_eq!(fw.sev_es_reset_eip(), 0x80_b004);
    assert_eq!(fw.gpa(), (1 << 32) - LEN as u64);
    assert_eq!(fw.metadata_offset(), LEN - 0x800);
    assert_eq!(fw.hash_table().unwrap().gpa, 0x81_0c00);
    assert_eq!(fw.guid_table().entries().len(), 4);
    assert!(fw.has_section(SectionType::SvsmCaa));
}

#[test]
fn image_length() {
    let mut img = good().build();
    img.extend_from_slice(&[0; 16]);
    let fixed_tail = img.len();
    // Keep a valid footer at the new end so only the length is wrong.
    img.copy_within(LEN - 50..LEN, fixed_tail - 50);
    assert_eq!(parse_err(&img), OvmfError::ImageLength { len: LEN + 16 });
    assert_eq!(parse_err(&[]), OvmfError::ImageLength { len: 0 });
    assert_eq!(
        GuidTable::parse(&[0; 49]).unwrap_err(),
        OvmfError::ImageTooSmall { len: 49, min: 50 }
    );
}

#[test]
fn footer_missing() {
    let mut img = good().build();
    img[LEN - 32 - 1] ^= 0xff; // last byte of the footer GUID
    let OvmfError::FooterMissing { offset, found } = parse_err(&img) else {
        panic!()
    };
    assert_eq!(offset, LEN - 50);
    assert_eq!(found.to_string(), "96b582de-1fb2-45f7-baea-a366c55a08d2");

    let debian = debian_ovmf();
    let mut img = debian.clone();
    let n = img.len();
    img[n - 48] ^= 1;
    assert!(matches!(parse_err(&img), OvmfError::FooterMissing { offset, .. } if offset == n - 50));
}

#[test]
fn footer_table_length() {
    let mut img = good().build();
    put_u16(&mut img, LEN - 50, 17);
    assert_eq!(
        parse_err(&img),
        OvmfError::FooterTableLength {
            length: 17,
            max: LEN - 32
        }
    );
    put_u16(&mut img, LEN - 50, 0xffff);
    assert_eq!(
        parse_err(&img),
        OvmfError::FooterTableLength {
            length: 0xffff,
            max: LEN - 32
        }
    );
}

#[test]
fn table_entry_lengths() {
    let img = good().build();
    // Too short for its own header.
    let mut bad = img.clone();
    let reset = header_of(&img, SEV_ES_RESET_BLOCK_GUID);
    put_u16(&mut bad, reset, 5);
    assert_eq!(
        parse_err(&bad),
        OvmfError::TableEntryLength {
            guid: SEV_ES_RESET_BLOCK_GUID,
            offset: reset,
            length: 5,
            remaining: 96
        }
    );
    // Longer than the table left before it (the lowest entry: 26 bytes left).
    let mut bad = img.clone();
    let ht = header_of(&img, SEV_HASH_TABLE_GUID);
    put_u16(&mut bad, ht, 27);
    assert_eq!(
        parse_err(&bad),
        OvmfError::TableEntryLength {
            guid: SEV_HASH_TABLE_GUID,
            offset: ht,
            length: 27,
            remaining: 26
        }
    );
    // The footer claims 5 bytes more than the entries use.
    let mut bad = img.clone();
    put_u16(&mut bad, LEN - 50, 114 + 5);
    assert_eq!(
        parse_err(&bad),
        OvmfError::TableLeftover {
            offset: LEN - 32 - 119,
            bytes: 5
        }
    );
}

#[test]
fn duplicate_entry() {
    let img = good().build();
    let mut bad = img.clone();
    let secret = header_of(&img, SEV_SECRET_BLOCK_GUID);
    bad[secret + 2..secret + 18].copy_from_slice(&SEV_ES_RESET_BLOCK_GUID.to_bytes_le());
    assert_eq!(
        parse_err(&bad),
        OvmfError::DuplicateTableEntry {
            guid: SEV_ES_RESET_BLOCK_GUID,
            offset: secret
        }
    );
}

#[test]
fn missing_and_short_entries() {
    let img = FwSpec {
        sections: None,
        ..good()
    }
    .build();
    assert_eq!(
        parse_err(&img),
        OvmfError::MissingTableEntry {
            entry: "SEV metadata",
            guid: SEV_METADATA_GUID
        }
    );
    let img = FwSpec {
        reset_eip: None,
        ..good()
    }
    .build();
    assert_eq!(
        parse_err(&img),
        OvmfError::MissingTableEntry {
            entry: "SEV-ES reset block",
            guid: SEV_ES_RESET_BLOCK_GUID
        }
    );
    // A reset block with 2 data bytes.
    let mut img = blob(5, LEN);
    let table = guid_table(&[(SEV_ES_RESET_BLOCK_GUID, vec![4, 0xb0])]);
    img[LEN - 32 - table.len()..LEN - 32].copy_from_slice(&table);
    assert_eq!(
        parse_err(&img),
        OvmfError::TableEntryData {
            entry: "SEV-ES reset block",
            guid: SEV_ES_RESET_BLOCK_GUID,
            len: 2,
            wanted: 4
        }
    );
    // A hash table location with only a GPA.
    let mut img = blob(5, LEN);
    let table = guid_table(&[
        (SEV_HASH_TABLE_GUID, vec![0, 0xc, 0x81, 0]),
        (SEV_ES_RESET_BLOCK_GUID, vec![4, 0xb0, 0x80, 0]),
    ]);
    img[LEN - 32 - table.len()..LEN - 32].copy_from_slice(&table);
    assert!(matches!(
        parse_err(&img),
        OvmfError::TableEntryData {
            entry: "SEV hash table",
            len: 4,
            wanted: 8,
            ..
        }
    ));
}

#[test]
fn metadata_header() {
    let img = good().build();
    let md_entry = GuidTable::parse(&img)
        .unwrap()
        .get(&SEV_METADATA_GUID)
        .unwrap()
        .data_offset;
    let md = LEN - 0x800;

    let mut bad = img.clone();
    put_u32(&mut bad, md_entry, LEN as u32 + 1);
    assert_eq!(
        parse_err(&bad),
        OvmfError::MetadataOffset {
            offset_from_end: LEN as u32 + 1,
            len: LEN
        }
    );
    put_u32(&mut bad, md_entry, 15);
    assert_eq!(
        parse_err(&bad),
        OvmfError::MetadataOffset {
            offset_from_end: 15,
            len: LEN
        }
    );

    let mut bad = img.clone();
    bad[md + 3] = b'X';
    assert_eq!(
        parse_err(&bad),
        OvmfError::MetadataSignature {
            offset: md,
            found: *b"ASEX"
        }
    );

    let mut bad = img.clone();
    put_u32(&mut bad, md + 8, 2);
    assert_eq!(
        parse_err(&bad),
        OvmfError::MetadataVersion {
            offset: md,
            found: 2
        }
    );

    let mut bad = img.clone();
    put_u32(&mut bad, md + 4, 99);
    assert_eq!(
        parse_err(&bad),
        OvmfError::MetadataLength {
            offset: md,
            length: 99,
            count: 7,
            needed: 100,
            available: 0x800
        }
    );
    put_u32(&mut bad, md + 4, 0x801);
    assert!(matches!(
        parse_err(&bad),
        OvmfError::MetadataLength { length: 0x801, .. }
    ));
    put_u32(&mut bad, md + 4, 100);
    put_u32(&mut bad, md + 12, u32::MAX);
    assert!(matches!(
        parse_err(&bad),
        OvmfError::MetadataLength {
            count: u32::MAX,
            ..
        }
    ));

    assert_eq!(parse_err(&with_sections(vec![])), OvmfError::NoSections);
}

#[test]
fn bad_sections() {
    let base = good().sections.unwrap();
    let edit = |i: usize, s: [u32; 3]| {
        let mut v = base.clone();
        v[i] = s;
        with_sections(v)
    };
    assert_eq!(
        parse_err(&edit(1, [0x80_a000, 0x3000, 5])),
        OvmfError::UnknownSectionType { index: 1, raw: 5 }
    );
    assert_eq!(
        parse_err(&edit(6, [0x81_1000, 0, 1])),
        OvmfError::SectionEmpty {
            index: 6,
            kind: SectionType::SnpSecMem,
            gpa: 0x81_1000
        }
    );
    assert_eq!(
        parse_err(&edit(0, [0x80_0100, 0x9000, 1])),
        OvmfError::SectionMisaligned {
            index: 0,
            kind: SectionType::SnpSecMem,
            gpa: 0x80_0100,
            size: 0x9000
        }
    );
    assert_eq!(
        parse_err(&edit(4, [0x80_f000, 0x1001, 4])),
        OvmfError::SectionMisaligned {
            index: 4,
            kind: SectionType::SvsmCaa,
            gpa: 0x80_f000,
            size: 0x1001
        }
    );
    assert_eq!(
        parse_err(&edit(2, [0x80_d000, 0x2000, 2])),
        OvmfError::SectionSize {
            index: 2,
            kind: SectionType::SnpSecrets,
            size: 0x2000
        }
    );
    // Into the firmware mapping (the 64 KiB image starts at 0xffff0000).
    assert_eq!(
        parse_err(&edit(6, [0xfffe_f000, 0x2000, 1])),
        OvmfError::SectionOutOfRange {
            index: 6,
            kind: SectionType::SnpSecMem,
            gpa: 0xfffe_f000,
            end: 0xffff_1000,
            limit: 0xffff_0000
        }
    );
    assert!(matches!(
        parse_err(&edit(6, [0xffff_f000, 0xffff_f000, 1])),
        OvmfError::SectionOutOfRange {
            end: 0x1_ffff_e000,
            ..
        }
    ));
    // The secrets page inside the first SNP_SEC_MEM range.
    assert_eq!(
        parse_err(&edit(2, [0x80_8000, 0x1000, 2])),
        OvmfError::SectionsOverlap {
            first: 0,
            first_kind: SectionType::SnpSecMem,
            first_gpa: 0x80_0000,
            first_end: 0x80_9000,
            second: 2,
            second_kind: SectionType::SnpSecrets,
            second_gpa: 0x80_8000,
            second_end: 0x80_9000,
        }
    );
    // A later section starting below an earlier one and reaching into it.
    assert!(matches!(
        parse_err(&edit(6, [0x7f_f000, 0x2000, 1])),
        OvmfError::SectionsOverlap {
            first: 0,
            second: 6,
            ..
        }
    ));
    // Every SNP firmware declares the secrets and CPUID pages.
    assert_eq!(
        parse_err(&edit(3, [0x80_e000, 0x1000, 1])),
        OvmfError::MissingSection {
            kind: SectionType::Cpuid
        }
    );
    assert_eq!(
        parse_err(&edit(2, [0x80_d000, 0x1000, 1])),
        OvmfError::MissingSection {
            kind: SectionType::SnpSecrets
        }
    );
}

#[test]
fn kernel_hashes_problems() {
    let kernel = blob(1, 1000);
    let digest_err = |spec: FwSpec| {
        let img = spec.build();
        let inputs = Inputs {
            kernel: Some(&kernel),
            ..Inputs::new(&img, VcpuType::EpycMilan)
        };
        launch_digest(&inputs, 1).unwrap_err()
    };
    // The table would cross the end of the SNP_KERNEL_HASHES page.
    assert!(matches!(
        digest_err(FwSpec {
            hash_table: Some([0x81_0f80, 0x400]),
            ..good()
        }),
        MeasureError::HashTableOutsideSection {
            index: 5,
            table_gpa: 0x81_0f80,
            table_len: 176,
            section_gpa: 0x81_0000,
            section_end: 0x81_1000
        }
    ));
    assert!(matches!(
        digest_err(FwSpec {
            hash_table: Some([0x80_0000, 0x400]),
            ..good()
        }),
        MeasureError::HashTableOutsideSection {
            table_gpa: 0x80_0000,
            ..
        }
    ));
    assert!(matches!(
        digest_err(FwSpec { hash_table: None, ..good() }),
        MeasureError::NoHashTableLocation { guid } if guid == SEV_HASH_TABLE_GUID
    ));
    assert!(matches!(
        digest_err(FwSpec {
            hash_table: Some([0, 0]),
            ..good()
        }),
        MeasureError::NoHashTableLocation { .. }
    ));
    let mut two_pages = good().sections.unwrap();
    two_pages[5] = [0x81_0000, 0x2000, KERNEL_HASHES];
    two_pages[6] = [0x81_2000, 0xe000, SEC_MEM];
    let spec = FwSpec {
        sections: Some(two_pages),
        ..good()
    };
    assert!(matches!(
        digest_err(spec.clone()),
        MeasureError::KernelHashesSectionSize {
            index: 5,
            size: 0x2000
        }
    ));
    // Without a kernel the two pages are zero pages, as for the oracle.
    let img = spec.build();
    launch_digest(&Inputs::new(&img, VcpuType::EpycMilan), 1).unwrap();
    // The firmware built without SNP_KERNEL_HASHES.
    let mut none = good().sections.unwrap();
    none.remove(5);
    assert!(matches!(
        digest_err(FwSpec {
            sections: Some(none),
            ..good()
        }),
        MeasureError::NoKernelHashesSection
    ));
}

#[test]
fn inputs_without_kernel_and_vcpu_ranges() {
    let img = good().build();
    let base = Inputs::new(&img, VcpuType::EpycMilan);
    let initrd = [1u8; 10];
    assert!(matches!(
        launch_digest(
            &Inputs {
                initrd: Some(&initrd),
                ..base
            },
            1
        ),
        Err(MeasureError::WithoutKernel { what: "initrd" })
    ));
    assert!(matches!(
        launch_digest(
            &Inputs {
                cmdline: Some("quiet"),
                ..base
            },
            1
        ),
        Err(MeasureError::WithoutKernel {
            what: "command line"
        })
    ));
    // An empty command line without a kernel is ignored (as `--append ""` is).
    assert_eq!(
        launch_digest(
            &Inputs {
                cmdline: Some(""),
                ..base
            },
            1
        )
        .unwrap(),
        launch_digest(&base, 1).unwrap()
    );
    for (start, end) in [(0, 1), (5, 4), (1, MAX_VCPUS + 1)] {
        assert!(matches!(
            launch_digests(&base, start..=end),
            Err(MeasureError::VcpuRange { start: s, end: e, max: MAX_VCPUS }) if s == start && e == end
        ));
    }
    let all = launch_digests(&base, 1..=10).unwrap();
    assert_eq!(launch_digests(&base, 4..=10).unwrap(), all[3..].to_vec());
    assert_eq!(
        launch_digests(&base, 1..=MAX_VCPUS).unwrap().len(),
        MAX_VCPUS as usize
    );
}
