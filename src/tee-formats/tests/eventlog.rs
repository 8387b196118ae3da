//! The CCEL event-log parser and replay on the real logs of
//! `shared/fixtures/cloud/tdx-eventlog/` (expected values from its SOURCES.md
//! §3, recomputed there by an independent script), and on malformed logs:
//! truncated at every length, sizes past the end, unknown algorithms, data
//! after the padding, 100 MB, too many events, bad MR indices, bad Spec ID
//! headers and CCEL tables.
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

use common::{fixture, hex, unhex, Prng};
use tee_formats::eventlog::{
    types, CcelTable, Component, EventLog, EventLogError, MAX_EVENTS, MAX_LOG_LEN,
};
use tee_formats::tdx::{Quote, QuoteBody};

const COS_DATA: &str = "cloud/tdx-eventlog/go-tdx-guest-gcp-cos113/ccel_data.dat";
const COS_TABLE: &str = "cloud/tdx-eventlog/go-tdx-guest-gcp-cos113/ccel_table.dat";
const COS_QUOTE: &str = "cloud/tdx-eventlog/go-tdx-guest-gcp-cos113/cos-113-tdx-quote.dat";
const GO_TABLE: &str = "cloud/tdx-eventlog/go-eventlog/CCEL.bin";
const GO_EVENT_LOG: &str = "cloud/tdx-eventlog/go-eventlog/event_log.bin";
const GO_UNPADDED: &str = "cloud/tdx-eventlog/go-eventlog/CCEL_unpadded.data.bin";
const DUPE: &str = "cloud/tdx-eventlog/go-eventlog/cos-113-intel-tdx-dupe-separator.bin";
const DUPE_UNPADDED: &str =
    "cloud/tdx-eventlog/go-eventlog/cos-113-intel-tdx-dupe-separator-unpadded.bin";

// SOURCES.md §3, tdx-eventlog/go-tdx-guest-gcp-cos113: "Replay = quote".
const COS_RTMR0: &str = "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6";
const COS_RTMR1: &str = "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1";
const COS_RTMR2: &str = "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1";

fn rtmrs_hex(log: &EventLog<'_>) -> Vec<String> {
    log.replay().unwrap().iter().map(|r| hex(r)).collect()
}

fn zero() -> String {
    "00".repeat(48)
}

#[test]
fn gcp_cos113_log_replays_to_its_quote() {
    let data = fixture(COS_DATA);
    assert_eq!(data.len(), 262_144);
    let log = EventLog::parse(&data).unwrap();
    assert_eq!(log.events.len(), 43);
    assert_eq!(log.len, 18_101, "data ends at 18101 (SOURCES.md)");
    let pad = log.padding.unwrap();
    assert_eq!((pad.byte, pad.len), (0xFF, 262_144 - 18_101));
    assert_eq!(log.spec_id.header_pcr_index, 1);
    assert_eq!(log.spec_id.algorithms.len(), 1);
    assert_eq!(log.spec_id.algorithms[0].algorithm_id, types::ALG_SHA384);
    assert_eq!(log.spec_id.algorithms[0].digest_size, 48);
    assert_eq!(rtmrs_hex(&log), [COS_RTMR0, COS_RTMR1, COS_RTMR2, &zero()]);

    // The quote (its body parsed by our quote parser; its signature is
    // checked independently in SOURCES.md) carries the same four RTMRs.
    let quote = Quote::parse(&fixture(COS_QUOTE)).unwrap();
    assert_eq!(quote.trailing_len, 3065);
    let QuoteBody::Td10(body) = &quote.body else {
        panic!("a v4 TD 1.0 body")
    };
    assert_eq!(log.replay().unwrap(), body.rtmr);
    assert_eq!(
        hex(&body.mr_td),
        "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a"
    );

    // Not grouped by index: two EV_EFI_VARIABLE_AUTHORITY (index 1) events
    // come after index-3 events (SOURCES.md).
    let authority: Vec<u32> = log
        .events
        .iter()
        .filter(|e| e.event_type == types::EV_EFI_VARIABLE_AUTHORITY)
        .map(|e| e.number)
        .collect();
    assert_eq!(authority, [21, 22]);
    assert!(log.events[..20].iter().any(|e| e.mr_index == 3));
    // RTMR2 holds 20 EV_IPL events of GRUB, RTMR3 nothing.
    let ipl = log.events.iter().filter(|e| e.rtmr() == Some(2)).count();
    assert_eq!(ipl, 20);
    assert!(log
        .events
        .iter()
        .all(|e| e.event_type != types::EV_IPL || e.rtmr() == Some(2)));
    assert!(log.events.iter().all(|e| e.rtmr() != Some(3)));
    // Two UEFI applications (shim, GRUB) in RTMR1.
    let apps: Vec<(u32, Option<usize>)> = log
        .events
        .iter()
        .filter(|e| e.component() == Some(Component::Kernel))
        .map(|e| (e.number, e.rtmr()))
        .collect();
    assert_eq!(apps, [(18, Some(1)), (24, Some(1))]);
}

#[test]
fn trimmed_to_its_length_the_log_parses_the_same() {
    let data = fixture(COS_DATA);
    let full = EventLog::parse(&data).unwrap();
    let trimmed = EventLog::parse(&data[..full.len]).unwrap();
    assert_eq!(trimmed.events, full.events);
    assert_eq!(trimmed.padding, None);
    // The same log padded with 0x00 instead of 0xFF.
    let mut zeros = data.clone();
    zeros[full.len..].fill(0);
    let z = EventLog::parse(&zeros).unwrap();
    assert_eq!(z.events, full.events);
    assert_eq!(z.padding.unwrap().byte, 0);
}

#[test]
fn ccel_tables() {
    let t = CcelTable::parse(&fixture(COS_TABLE)).unwrap();
    assert_eq!(t.revision, 1);
    assert_eq!(&t.oem_id, b"INTEL ");
    assert_eq!(&t.oem_table_id, b"EDK2    ");
    assert!(t.is_tdx());
    assert_eq!(t.log_area_minimum_length, 0x40000);
    assert_eq!(t.log_area_start_address, 0xbedb_f000);
    // go-eventlog's test expects {65536, TDX}.
    let t = CcelTable::parse(&fixture(GO_TABLE)).unwrap();
    assert_eq!((t.log_area_minimum_length, t.cc_type), (65_536, 2));

    let good = fixture(GO_TABLE);
    let err = |b: &[u8]| match CcelTable::parse(b) {
        Err(EventLogError::CcelTable { field, offset, .. }) => (field, offset),
        other => panic!("{other:?}"),
    };
    assert_eq!(err(&good[..55]), ("table length", 0));
    let mut b = good.clone();
    b[0] = b'X';
    b[9] = b[9].wrapping_sub(b'X' - b'C'); // keep the checksum right
    assert_eq!(err(&b), ("Signature", 0));
    let mut b = good.clone();
    b[40] ^= 1;
    assert_eq!(err(&b), ("Checksum", 9));
    let mut b = good.clone();
    b[38] = 1;
    b[9] = b[9].wrapping_sub(1);
    assert_eq!(err(&b), ("Reserved", 38));
    let mut b = good;
    b[4] = 57;
    b[9] = b[9].wrapping_sub(1);
    assert_eq!(err(&b), ("Length", 4));
}

#[test]
fn go_eventlog_logs_replay_to_their_stated_values() {
    let data = fixture(GO_EVENT_LOG);
    let log = EventLog::parse(&data).unwrap();
    assert_eq!(log.events.len(), 27);
    assert_eq!(
        rtmrs_hex(&log),
        [
            "f68df15175d7c810a6b35f1847ba318723b9de337ee00bc63cf42c0a29ad1d94a5b16d3e2ba1b96ec55a46e67b1bea92",
            "8adfd9a44e11725208cbe1cf79726f1c86c0c45c1b5046b603e32650e7b44bdf7101abf1bf6ecbebc38b35f9f28f588e",
            &zero(),
            &zero(),
        ]
    );

    let data = fixture(GO_UNPADDED);
    assert_eq!(data.len(), 2026);
    let log = EventLog::parse(&data).unwrap();
    assert_eq!(log.events.len(), 19);
    assert_eq!((log.len, log.padding), (2026, None));
    // SOURCES.md: the three differ (the test's unused claim that all three
    // equal 8083cd68… is wrong).
    assert_eq!(
        rtmrs_hex(&log),
        [
            "8083cd6898cc52a90231cdf9c0532bf9513c40465c6f71e56cbe32ee2c11a9dfc030297ca3ca0f62477d6d1f610d3fdb",
            "6484f0d72c03521c0434553be34e8db8228b729e799666d2b7754085c77aa9981f5a440df3047194b24f212ff1160c1e",
            "c3e7ed9d7e909b29732f676d01dc63de869b049362b522a315cb042689670be07344c347cf85d985c7b928d4934e41e1",
            &zero(),
        ]
    );
    // A direct boot: the kernel as the UEFI application TDVF started from its
    // "kernel" file, then the EFI stub's LoadOptions event in RTMR2.
    let kernel = &log.events[11];
    assert_eq!(
        (kernel.number, kernel.rtmr(), kernel.component()),
        (12, Some(1), Some(Component::Kernel))
    );
    assert!(
        kernel.describe().ends_with(": kernel"),
        "{}",
        kernel.describe()
    );
    let cmdline = &log.events[16];
    assert_eq!(
        (cmdline.number, cmdline.rtmr(), cmdline.component()),
        (17, Some(2), Some(Component::Cmdline))
    );
    assert_eq!(
        log.events[14].action_text(),
        Some("Calling EFI Application from Boot Option")
    );
    assert!(log.events[14].digest_is_hash_of_data());
    assert!(!kernel.digest_is_hash_of_data());
    assert_eq!(log.events[7].describe(), "separator (00000000)");
    assert_eq!(log.events[2].describe(), "UEFI variable SecureBoot");
    assert_eq!(
        log.events[0].describe(),
        "handoff tables (TD HOB): TdxTable"
    );
}

#[test]
fn duplicated_separator_log_replays_to_its_stated_values() {
    let padded = fixture(DUPE);
    let unpadded = fixture(DUPE_UNPADDED);
    let a = EventLog::parse(&padded).unwrap();
    let b = EventLog::parse(&unpadded).unwrap();
    assert_eq!(a.events, b.events);
    assert_eq!(b.len, 18_101);
    assert_eq!(
        rtmrs_hex(&a),
        [
            "a4de2df23e9611299123ba4359c42a5e578b0f8488bf1bba8ef5606d9ea5d81c97c064b482a5eac537d166bd0f0f752d",
            "0ee9366c928a77092f55e9e114c7394181fd264699155f0df77d23577618d5f650568a17d379355a07bd846e552f4e20",
            COS_RTMR2,
            &zero(),
        ]
    );
    // The alteration: event 16, the separator COS-113 records into RTMR1,
    // was moved to RTMR0, which then holds two.
    let cos = fixture(COS_DATA);
    let cos = EventLog::parse(&cos).unwrap();
    assert_eq!(
        (cos.events[15].event_type, cos.events[15].rtmr()),
        (types::EV_SEPARATOR, Some(1))
    );
    assert_eq!(
        (a.events[15].event_type, a.events[15].rtmr()),
        (types::EV_SEPARATOR, Some(0))
    );
    let seps = |l: &EventLog<'_>| {
        l.events
            .iter()
            .filter(|e| e.event_type == types::EV_SEPARATOR && e.rtmr() == Some(0))
            .count()
    };
    assert_eq!((seps(&cos), seps(&a)), (1, 2));
}

/// The end offset of every event of `data` (and of the Spec ID event).
fn boundaries(data: &[u8]) -> Vec<usize> {
    let log = EventLog::parse(data).unwrap();
    let mut b: Vec<usize> = log.events.iter().map(|e| e.offset).collect();
    b.push(log.len);
    b
}

#[test]
fn truncation_at_every_length_is_an_error_except_at_event_boundaries() {
    let data = fixture(GO_UNPADDED);
    let ends = boundaries(&data);
    for cut in 0..data.len() {
        match EventLog::parse(&data[..cut]) {
            Ok(log) => {
                assert!(ends.contains(&cut), "cut {cut} parsed");
                assert_eq!(log.len, cut);
            }
            Err(EventLogError::Truncated {
                offset,
                needed,
                available,
                ..
            }) => {
                assert!(!ends.contains(&cut) || cut < ends[0], "cut {cut}");
                assert!(
                    offset + needed > cut && offset + available == cut,
                    "cut {cut}"
                );
            }
            Err(EventLogError::SizeOutOfBounds {
                declared,
                available,
                offset,
                ..
            }) => {
                assert!(
                    declared > available as u64 && offset + 4 + available == cut,
                    "cut {cut}"
                );
            }
            Err(e) => panic!("cut {cut}: {e}"),
        }
    }
    // Nothing at all: the Spec ID event is missing.
    assert!(matches!(
        EventLog::parse(&[]),
        Err(EventLogError::Truncated {
            offset: 0,
            needed: 4,
            available: 0,
            ..
        })
    ));
}

#[test]
fn sizes_past_the_end_are_refused_with_their_field_and_offset() {
    let mut data = fixture(GO_UNPADDED);
    let log = EventLog::parse(&data).unwrap();
    // Event 5's eventSize field: offset + 12 + (2 + 48) digests.
    let e5 = log.events[4].offset;
    let size_at = e5 + 12 + 50;
    drop(log);
    data[size_at..size_at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let err = EventLog::parse(&data).unwrap_err();
    assert_eq!(
        err,
        EventLogError::SizeOutOfBounds {
            field: "event eventSize",
            offset: size_at,
            declared: 0xFFFF_FFF0,
            available: data.len() - size_at - 4,
        }
    );
    assert!(
        err.to_string().contains("event eventSize at offset"),
        "{err}"
    );
    // The Spec ID event's own eventSize.
    let mut data = fixture(GO_UNPADDED);
    data[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        EventLog::parse(&data),
        Err(EventLogError::SizeOutOfBounds {
            field: "Spec ID event eventSize",
            offset: 28,
            declared: 0xFFFF_FFFF,
            ..
        })
    ));
}

#[test]
fn unknown_or_unlisted_algorithms_are_refused() {
    let base = fixture(GO_UNPADDED);
    // Spec ID: algorithmId at 60, digestSize at 62.
    assert_eq!(&base[60..64], &[0x0c, 0x00, 48, 0]);
    let mut d = base.clone();
    d[60] = 0xff;
    assert_eq!(
        EventLog::parse(&d).unwrap_err(),
        EventLogError::UnknownAlgorithm {
            alg: 0x00ff,
            offset: 60
        }
    );
    let mut d = base.clone();
    d[62] = 32;
    assert_eq!(
        EventLog::parse(&d).unwrap_err(),
        EventLogError::AlgorithmSize {
            alg: 0x000c,
            offset: 62,
            got: 32,
            want: 48
        }
    );
    // Event 1 (at 65) carries a SHA-256 digest the Spec ID event does not list.
    let mut d = base.clone();
    assert_eq!(&d[77..79], &[0x0c, 0x00]);
    d[77] = 0x0b;
    assert_eq!(
        EventLog::parse(&d).unwrap_err(),
        EventLogError::EventAlgorithm {
            event: 1,
            offset: 77,
            alg: 0x000b
        }
    );
    // Event 1 claims two digests.
    let mut d = base.clone();
    d[73] = 2;
    assert_eq!(
        EventLog::parse(&d).unwrap_err(),
        EventLogError::DigestCount {
            event: 1,
            offset: 73,
            got: 2,
            want: 1
        }
    );
    // numberOfAlgorithms 0 and 17.
    for n in [0u32, 17] {
        let mut d = base.clone();
        d[56..60].copy_from_slice(&n.to_le_bytes());
        assert_eq!(
            EventLog::parse(&d).unwrap_err(),
            EventLogError::AlgorithmCount { offset: 56, got: n }
        );
    }
}

/// A log of SHA-256 + SHA-384 (or only `algs`), built here: Spec ID event then `events`.
fn synthetic(algs: &[(u16, u16)], events: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut spec = Vec::new();
    spec.extend_from_slice(b"Spec ID Event03\0");
    spec.extend_from_slice(&0u32.to_le_bytes());
    spec.extend_from_slice(&[0, 2, 0, 2]);
    spec.extend_from_slice(&(algs.len() as u32).to_le_bytes());
    for (id, size) in algs {
        spec.extend_from_slice(&id.to_le_bytes());
        spec.extend_from_slice(&size.to_le_bytes());
    }
    spec.push(0);
    let mut out = Vec::new();
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&[0; 20]);
    out.extend_from_slice(&(spec.len() as u32).to_le_bytes());
    out.extend_from_slice(&spec);
    for (mr, ty, data) in events {
        out.extend_from_slice(&mr.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(algs.len() as u32).to_le_bytes());
        for (id, size) in algs {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend(std::iter::repeat_n(0x5a, *size as usize));
        }
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

#[test]
fn multi_bank_logs_parse_and_a_log_without_sha384_is_refused() {
    let two = synthetic(
        &[(0x000b, 32), (0x000c, 48)],
        &[(1, 0x80000007, b"x"), (4, 3, b"")],
    );
    let log = EventLog::parse(&two).unwrap();
    assert_eq!(log.events.len(), 2);
    let digests = log.events[0].digests();
    assert_eq!(
        digests.iter().map(|d| (d.0, d.1.len())).collect::<Vec<_>>(),
        [(0x000b, 32), (0x000c, 48)]
    );
    assert_eq!(log.events[0].sha384, [0x5a; 48]);
    // EV_NO_ACTION in RTMR3 is not extended.
    let r = log.replay().unwrap();
    assert_eq!(r[3], [0; 48]);
    assert_ne!(r[0], [0; 48]);

    let only256 = synthetic(&[(0x000b, 32)], &[]);
    assert_eq!(
        EventLog::parse(&only256).unwrap_err(),
        EventLogError::NoSha384
    );
    let dup = synthetic(&[(0x000c, 48), (0x000c, 48)], &[]);
    assert_eq!(
        EventLog::parse(&dup).unwrap_err(),
        EventLogError::DuplicateAlgorithm {
            alg: 0x000c,
            offset: 64
        }
    );
}

#[test]
fn measured_events_must_name_an_rtmr() {
    for mr in [0u32, 5, u32::MAX] {
        let d = synthetic(&[(0x000c, 48)], &[(1, 4, &[0; 4]), (mr, 0x80000007, b"x")]);
        let log = EventLog::parse(&d).unwrap();
        let offset = log.events[1].offset;
        assert_eq!(
            log.replay().unwrap_err(),
            EventLogError::MrIndex {
                event: 2,
                offset,
                mr_index: mr
            }
        );
    }
    // ...but an EV_NO_ACTION event may carry any index.
    let d = synthetic(&[(0x000c, 48)], &[(9, 3, b"StartupLocality\0\0")]);
    assert_eq!(EventLog::parse(&d).unwrap().replay().unwrap(), [[0; 48]; 4]);
}

#[test]
fn spec_id_header_fields_are_checked() {
    let base = fixture(GO_UNPADDED);
    let field = |d: &[u8]| match EventLog::parse(d) {
        Err(EventLogError::SpecIdHeader { field, offset, .. }) => (field, offset),
        other => panic!("{other:?}"),
    };
    let mut d = base.clone();
    d[0] = 2;
    assert_eq!(field(&d), ("pcrIndex", 0));
    let mut d = base.clone();
    d[4] = 4;
    assert_eq!(field(&d), ("eventType", 4));
    let mut d = base.clone();
    d[10] = 1;
    assert_eq!(field(&d), ("digest", 8));
    let mut d = base.clone();
    d[32] = b's';
    assert_eq!(field(&d), ("signature", 32));
    let mut d = base.clone();
    d[53] = 1;
    assert_eq!(field(&d), ("specVersionMajor.Minor", 52));
    let mut d = base.clone();
    d[55] = 3;
    assert_eq!(field(&d), ("uintnSize", 55));
    // One more byte claimed by the Spec ID event than it holds: the vendor
    // info size says 0, so the extra byte is refused (the first event's first
    // byte is swallowed, the rest then misparses; the Spec ID error comes first).
    let mut d = base;
    d[28] += 1;
    assert_eq!(field(&d), ("eventSize", 28));
}

#[test]
fn bytes_after_the_padding_are_refused() {
    let mut data = fixture(COS_DATA);
    data[100_000] = 0x00;
    assert_eq!(
        EventLog::parse(&data).unwrap_err(),
        EventLogError::DataAfterPadding {
            padding_at: 18_101,
            offset: 100_000
        }
    );
    // A last, partial header that is not padding.
    let mut data = fixture(GO_UNPADDED);
    data.extend_from_slice(&[1, 0, 0]);
    assert!(matches!(
        EventLog::parse(&data),
        Err(EventLogError::Truncated { offset: 2026, .. })
    ));
}

#[test]
fn a_100_mb_input_is_refused_before_it_is_read() {
    let big = vec![0xFFu8; 100 * 1024 * 1024];
    assert_eq!(
        EventLog::parse(&big).unwrap_err(),
        EventLogError::TooLarge {
            len: 100 * 1024 * 1024,
            max: MAX_LOG_LEN
        }
    );
    // The largest accepted input: a real log padded to MAX_LOG_LEN.
    let mut data = fixture(GO_UNPADDED);
    data.resize(MAX_LOG_LEN, 0xFF);
    assert_eq!(EventLog::parse(&data).unwrap().events.len(), 19);
}

#[test]
fn too_many_events_are_refused() {
    let one: &[u8] = b"";
    let events: Vec<(u32, u32, &[u8])> = (0..=MAX_EVENTS)
        .map(|_| (4u32, 0x80000007u32, one))
        .collect();
    let d = synthetic(&[(0x000c, 48)], &events);
    assert!(d.len() < MAX_LOG_LEN);
    assert_eq!(
        EventLog::parse(&d).unwrap_err(),
        EventLogError::TooManyEvents { max: MAX_EVENTS }
    );
    let d = synthetic(&[(0x000c, 48)], &events[1..]);
    assert_eq!(EventLog::parse(&d).unwrap().events.len(), MAX_EVENTS);
}

#[test]
fn mutants_never_panic() {
    let mut rng = Prng::new(0xCCE1_0000_5EED_0001);
    for f in [GO_UNPADDED, GO_EVENT_LOG] {
        let base = fixture(f);
        let base = &base[..EventLog::parse(&base).unwrap().len];
        for _ in 0..3000 {
            let mut m = base.to_vec();
            for _ in 0..=rng.below(4) {
                let i = rng.below(m.len());
                m[i] = rng.next_u64() as u8;
            }
            if let Ok(log) = EventLog::parse(&m) {
                let _ = log.replay();
                for e in &log.events {
                    let _ = (e.describe(), e.component(), e.digests());
                }
            }
        }
    }
}

#[test]
fn linux_tagged_events_in_both_forms() {
    let bare = synthetic(&[(0x000c, 48)], &[(3, 6, b"Linux initrd\0")]);
    let mut tagged_data = Vec::new();
    tagged_data.extend_from_slice(&0x8F3B22EEu32.to_le_bytes());
    tagged_data.extend_from_slice(&26u32.to_le_bytes());
    tagged_data.extend_from_slice(b"LOADED_IMAGE::LoadOptions\0");
    let tagged = synthetic(&[(0x000c, 48)], &[(3, 6, &tagged_data)]);
    assert_eq!(
        EventLog::parse(&bare).unwrap().events[0].component(),
        Some(Component::Initrd)
    );
    assert_eq!(
        EventLog::parse(&tagged).unwrap().events[0].component(),
        Some(Component::Cmdline)
    );
    let other = synthetic(&[(0x000c, 48)], &[(3, 6, b"Linux initrd")]);
    assert_eq!(EventLog::parse(&other).unwrap().events[0].component(), None);
}

#[test]
fn json_view_names_every_event() {
    let data = fixture(GO_UNPADDED);
    let log = EventLog::parse(&data).unwrap();
    let v = serde_json::to_value(&log).unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 19);
    assert_eq!(v["spec_id"]["algorithms"][0]["name"], "sha384");
    let e12 = &v["events"][11];
    assert_eq!(e12["number"], 12);
    assert_eq!(e12["rtmr"], 1);
    assert_eq!(e12["event_type_name"], "EV_EFI_BOOT_SERVICES_APPLICATION");
    assert_eq!(e12["component"], "kernel");
    assert_eq!(e12["digests"][0]["algorithm"], "sha384");
    assert_eq!(e12["digests"][0]["digest"], hex(&log.events[11].sha384));
    assert!(e12["digests"][0]["digest"]
        .as_str()
        .unwrap()
        .starts_with("b575e51f1a731998"));
    assert_eq!(v["padding"], serde_json::Value::Null);
    let _ = unhex("00");
}
