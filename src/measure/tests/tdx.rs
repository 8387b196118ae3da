//! TDX precomputation: MRTD from TDVF metadata, RTMR[1] (Authenticode of the kernel) and
//! RTMR[2] (command line + initrd) of a direct boot.
//!
//! Reference values were computed with the algorithms of virtee/tdx-measure
//! (`src/tdvf.rs` `Tdvf::parse`/`mrtd`, `src/util.rs` `authenticode_sha384_hash`/
//! `measure_log`/`measure_cmdline`, `src/kernel.rs` RTMR[1]/[2] event lists, at 2a67baf0),
//! built locally from those sources (no release of it is on crates.io), on:
//! * TDVF images built here (`tdvf_image`, deterministic bytes; `dump_fixtures` writes
//!   them out for recomputation);
//! * Debian 12's `OVMF.fd` (ovmf 2022.11-6+deb12u2: an OvmfPkgX64 build *with* TDX
//!   metadata) and the guest kernel installed by scripts/install-deps, each checked only when
//!   its SHA-256 is the one the vector was computed for;
//! * a PE/COFF image built here (out-of-order sections, trailing data, certificate table,
//!   length not a multiple of 8).

// Test code: a failed unwrap is a failed test (clippy.toml allows it in #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

mod common;

use common::{blob, guid_table};
use measure::ovmf::{OvmfError, TDX_METADATA_GUID};
use measure::tdx::{self, TdvfSectionType, TdxError, ATTR_MR_EXTEND, ATTR_PAGE_AUG};
use measure::to_hex;

/// One TDVF section: `[data_offset, raw_size, mem_addr, mem_size, type, attributes]`.
type Sec = (u32, u32, u64, u64, u32, u32);

/// A `len`-byte image of pseudo-random bytes with a TDVF descriptor `from_end` bytes before
/// its end and a GUID table pointing at it.
fn tdvf_image(seed: u64, len: usize, from_end: u32, sections: &[Sec]) -> Vec<u8> {
    let mut img = blob(seed, len);
    let mut d = b"TDVF".to_vec();
    d.extend_from_slice(&(16 + 32 * sections.len() as u32).to_le_bytes());
    d.extend_from_slice(&1u32.to_le_bytes());
    d.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for &(off, raw, addr, size, kind, attr) in sections {
        d.extend_from_slice(&off.to_le_bytes());
        d.extend_from_slice(&raw.to_le_bytes());
        d.extend_from_slice(&addr.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
        d.extend_from_slice(&kind.to_le_bytes());
        d.extend_from_slice(&attr.to_le_bytes());
    }
    let start = len - from_end as usize;
    img[start..start + d.len()].copy_from_slice(&d);
    let table = guid_table(&[(TDX_METADATA_GUID, from_end.to_le_bytes().to_vec())]);
    let end = len - 32;
    img[end - table.len()..end].copy_from_slice(&table);
    img
}

/// 64 KiB at 0xffff0000: CFV (16 KiB, not extended), BFV (48 KiB, extended), TD HOB and
/// temporary memory (added, not extended), and PAGE_AUG memory (not in MRTD).
fn image_a() -> Vec<u8> {
    tdvf_image(
        0xa,
        0x10000,
        0x800,
        &[
            (0x4000, 0xc000, 0xffff_4000, 0xc000, 0, ATTR_MR_EXTEND),
            (0, 0x4000, 0xffff_0000, 0x4000, 1, 0),
            (0, 0, 0x80_9000, 0x2000, 2, 0),
            (0, 0, 0x80_0000, 0x6000, 3, 0),
            (0, 0, 0x90_0000, 0x3000, 3, ATTR_PAGE_AUG),
        ],
    )
}

/// 8 KiB: a one-page BFV, a CFV that is also extended, payload memory above 4 GiB and
/// PAGE_AUG payload parameters.
fn image_b() -> Vec<u8> {
    tdvf_image(
        0xb,
        0x2000,
        0x100,
        &[
            (0x1000, 0x1000, 0xffff_f000, 0x1000, 0, ATTR_MR_EXTEND),
            (0, 0x1000, 0xffff_e000, 0x1000, 1, ATTR_MR_EXTEND),
            (0, 0, 0x1_0000_0000, 0x4000, 5, 0),
            (0, 0, 0x20_0000, 0x1000, 6, ATTR_PAGE_AUG),
        ],
    )
}

/// A PE32+ image: two sections in reverse file order, bytes after the sections, a
/// certificate table at the end, length not a multiple of 8.
fn pe_image() -> Vec<u8> {
    let cert_size = 0x40usize;
    let len = 0xb00 + 0x123 + cert_size;
    let mut pe = blob(0x9e, len);
    pe[..2].copy_from_slice(b"MZ");
    pe[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    pe[0x80..0x84].copy_from_slice(b"PE\0\0");
    let coff = 0x84;
    pe[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes());
    pe[coff + 2..coff + 4].copy_from_slice(&2u16.to_le_bytes());
    pe[coff + 16..coff + 18].copy_from_slice(&0xf0u16.to_le_bytes());
    let opt = coff + 20;
    pe[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
    pe[opt + 60..opt + 64].copy_from_slice(&0x400u32.to_le_bytes());
    let cert_dir = opt + 112 + 4 * 8;
    pe[cert_dir..cert_dir + 4].copy_from_slice(&((len - cert_size) as u32).to_le_bytes());
    pe[cert_dir + 4..cert_dir + 8].copy_from_slice(&(cert_size as u32).to_le_bytes());
    let table = opt + 0xf0;
    for (i, (ptr, size)) in [(0x800u32, 0x300u32), (0x400, 0x400)]
        .into_iter()
        .enumerate()
    {
        let s = table + i * 40;
        pe[s + 16..s + 20].copy_from_slice(&size.to_le_bytes());
        pe[s + 20..s + 24].copy_from_slice(&ptr.to_le_bytes());
    }
    pe
}

const DEBIAN_OVMF_SHA256: &str = "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773";
const DEBIAN_OVMF_MRTD: &str = "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a212967fb231c47";
const DEBIAN_KERNEL_SHA256: &str =
    "26f2e57c99338feaf71c46fa4babdc7e1a6c115943002d109fdb746667104f5f";
const DEBIAN_KERNEL_AUTHENTICODE: &str = "e494e71ba795e8fc3edc1b3cab678c8c8782a6efe14d2d5a25155dc948b53f7d1dab088ff7005b7e6f9b0534738660e2";
const DEBIAN_KERNEL_RTMR1: &str = "d6d8b20f84328086e9a9baa2e37918d2b14f18e8b77927c56edb7a32819cadd67c866111eef7134b04b67add2dff004a";

fn sha256_hex(b: &[u8]) -> String {
    to_hex(&measure::hashes::sha256(b))
}

#[test]
fn mrtd_of_built_images() {
    assert_eq!(to_hex(&tdx::mrtd(&image_a()).unwrap()), MRTD_A);
    assert_eq!(to_hex(&tdx::mrtd(&image_b()).unwrap()), MRTD_B);
    // Parsed as laid out.
    let a = image_a();
    let t = tdx::Tdvf::parse(&a).unwrap();
    assert_eq!(t.descriptor_offset(), 0x10000 - 0x800);
    let kinds: Vec<_> = t.sections().iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            TdvfSectionType::Bfv,
            TdvfSectionType::Cfv,
            TdvfSectionType::TdHob,
            TdvfSectionType::TempMem,
            TdvfSectionType::TempMem
        ]
    );
    assert!(t.sections()[0].mr_extend() && t.sections()[4].page_aug());
}

const MRTD_A: &str = "3525f2c6745ae0657c22e007ffba6707ea3aeafb752e6035e3e3e3933c27ac4c0301a22397398a5deb70aaf47b97386a";
const MRTD_B: &str = "89f25eecda3ebd9f2bb386701f36bb6b6e41bdef0f48a3af340e4da1e063ba58f029bc4b8de69216964df58e78eb1848";
const PE_AUTHENTICODE: &str = "1f0ae18ac57d6272ee538dc8fc4f6366b7204f5a8d56829c32ad4264eba76edd9dd7b99f8cbf2392b4bcac488a7f3758";
const PE_RTMR1: &str = "4d818d8be5d0261a085a866267642cff556d32a6f6530a53e11371c30db07800d4cc671cd653750c567224d6eb8f00ef";
const RTMR2_CASES: [(&str, u64, usize, &str); 3] = [
    ("console=ttyS0 panic=-1 quiet", 1, 4096, "7cd5977a2c063a0da16b06f609f13877df187595f4d2f7b6e95e5d5dc946873aa3ba1f73bad6ac3e901a63b7375373ed"),
    ("", 2, 0, "9406d3d5004a44b7be794ec4e6c9a597d7a776ddd67ebbf34ffa41d14ed39848f1fdf4f6adf8b9e1f3a0b87ce288c6c7"),
    ("root=/dev/vda1 é✓ \"x y\"", 3, 100_001, "16abc36c1021239ac8a4006fd9c8f28addf684908841d9b932da947d2b876f66370b695204572c9fa8f49461b0b7159e"),
];

/// Every page matters, and so does every section field.
#[test]
fn mrtd_depends_on_everything_measured() {
    let a = image_a();
    let base = tdx::mrtd(&a).unwrap();
    // A byte in the extended BFV changes MRTD ...
    let mut b = a.clone();
    b[0x4000 + 0x1234] ^= 1;
    assert_ne!(tdx::mrtd(&b).unwrap(), base);
    // ... a byte in the unextended CFV does not.
    let mut c = a.clone();
    c[0x10] ^= 1;
    assert_eq!(tdx::mrtd(&c).unwrap(), base);
}

#[test]
fn rtmr1_and_authenticode() {
    let pe = pe_image();
    assert_eq!(
        to_hex(&tdx::authenticode_sha384(&pe).unwrap()),
        PE_AUTHENTICODE
    );
    assert_eq!(to_hex(&tdx::rtmr1_direct(&pe).unwrap()), PE_RTMR1);
    // The checksum and the certificate directory entry are not hashed.
    let mut other = pe.clone();
    other[0x98 + 64] ^= 0xff;
    assert_eq!(
        tdx::authenticode_sha384(&other).unwrap(),
        tdx::authenticode_sha384(&pe).unwrap()
    );
    // The certificate table itself is not hashed.
    let mut cert = pe.clone();
    let n = cert.len();
    cert[n - 1] ^= 0xff;
    assert_eq!(
        tdx::authenticode_sha384(&cert).unwrap(),
        tdx::authenticode_sha384(&pe).unwrap()
    );
    // Section bytes are.
    let mut sec = pe.clone();
    sec[0x900] ^= 1;
    assert_ne!(
        tdx::authenticode_sha384(&sec).unwrap(),
        tdx::authenticode_sha384(&pe).unwrap()
    );
}

#[test]
fn rtmr2_direct_boot() {
    for (cmdline, seed, len, expected) in RTMR2_CASES {
        assert_eq!(
            to_hex(&tdx::rtmr2_direct(cmdline, &blob(seed, len))),
            expected,
            "{cmdline:?}"
        );
    }
    assert_eq!(tdx::RTMR3_AT_BOOT, [0; 48]);
}

/// The Authenticode SHA-384 of the PE image at `path`, by an independent
/// implementation: osslsigncode (`extract-data -h sha384` writes the
/// SpcIndirectDataContent a signature would sign; its digest is the 48-byte
/// OCTET STRING after the sha384 AlgorithmIdentifier). `$OSSLSIGNCODE`,
/// default `osslsigncode` on the PATH; `None` when it is not installed.
fn osslsigncode_authenticode_sha384(path: &std::path::Path) -> Option<String> {
    let scratch = common::Scratch::new("authenticode");
    let out_path = scratch.file("data.der", b"");
    let _ = std::fs::remove_file(&out_path);
    let tool = std::env::var_os("OSSLSIGNCODE").unwrap_or_else(|| "osslsigncode".into());
    let st = std::process::Command::new(tool)
        .args(["extract-data", "-h", "sha384", "-in"])
        .arg(path)
        .arg("-out")
        .arg(&out_path)
        .output();
    let st = match st {
        Ok(st) => st,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("osslsigncode: {e}"),
    };
    assert!(
        st.status.success(),
        "osslsigncode: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let der = std::fs::read(&out_path).unwrap();
    // SEQUENCE { OID 2.16.840.1.101.3.4.2.2 (sha384), NULL }, OCTET STRING (48)
    let alg_digest: &[u8] = &[
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30,
    ];
    let at = der
        .windows(alg_digest.len())
        .position(|w| w == alg_digest)
        .expect("a sha384 digest in osslsigncode's output");
    Some(to_hex(
        &der[at + alg_digest.len()..at + alg_digest.len() + 48],
    ))
}

/// Debian's OVMF.fd carries TDX metadata (BFV extended, CFV, TD HOB, temporary memory).
/// The guest kernel's Authenticode hash and RTMR[1] hold for whatever kernel
/// scripts/install-deps installed (Debian moves on): the expected values come
/// from osslsigncode, with the pinned vectors checked too when the kernel is
/// the one they were computed for. A missing kernel or osslsigncode fails.
#[test]
fn debian_ovmf_and_kernel() {
    let ovmf = common::debian_ovmf();
    let t = tdx::Tdvf::parse(&ovmf).unwrap();
    assert_eq!(t.sections().len(), 6);
    assert_eq!(t.sections()[0].kind, TdvfSectionType::Bfv);
    // No independent MRTD implementation is installed here: the vector is
    // tied to the build it was computed for (tdx-measure at 2a67baf0).
    if sha256_hex(&ovmf) == DEBIAN_OVMF_SHA256 {
        assert_eq!(to_hex(&t.mrtd()), DEBIAN_OVMF_MRTD);
    } else {
        // Opted out: the kernel checks still run.
        let _ = common::missing(
            "OVMF_VECTOR",
            "Debian's OVMF.fd is not the build the MRTD vector was computed for",
        );
    }
    let kernel_path = std::env::var_os("ENCLAVE_KERNEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/opt/enclave-init/kernel/current".into())
        .join("vmlinuz");
    let k = match std::fs::read(&kernel_path) {
        Ok(k) => k,
        Err(e) => {
            common::missing(
                "GUEST_KERNEL",
                &format!(
                    "no guest kernel at {}: {e}: run scripts/install-deps",
                    kernel_path.display()
                ),
            );
            return;
        }
    };
    let ours = to_hex(&tdx::authenticode_sha384(&k).unwrap());
    if sha256_hex(&k) == DEBIAN_KERNEL_SHA256 {
        assert_eq!(ours, DEBIAN_KERNEL_AUTHENTICODE);
        assert_eq!(to_hex(&tdx::rtmr1_direct(&k).unwrap()), DEBIAN_KERNEL_RTMR1);
    }
    let Some(oracle) = osslsigncode_authenticode_sha384(&kernel_path) else {
        common::missing("OSSLSIGNCODE", "osslsigncode is not installed (scripts/deps/apt.txt): the kernel's Authenticode hash has no oracle");
        return;
    };
    assert_eq!(
        ours,
        oracle,
        "Authenticode SHA-384 of {}",
        kernel_path.display()
    );
    // RTMR[1]: the Authenticode hash, then TDVF's fixed events (tdx-measure
    // src/kernel.rs at 2a67baf0), each SHA-384'd and extended from zero.
    let mut events = vec![oracle];
    for e in [
        &b"Calling EFI Application from Boot Option"[..],
        &[0, 0, 0, 0],
        b"Exit Boot Services Invocation",
        b"Exit Boot Services Returned with Success",
    ] {
        events.push(to_hex(&tdx::sha384(e)));
    }
    let rtmr1 = events.iter().fold([0u8; 48], |mr, e| {
        let mut buf = mr.to_vec();
        buf.extend(
            (0..e.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&e[i..i + 2], 16).unwrap()),
        );
        tdx::sha384(&buf)
    });
    assert_eq!(to_hex(&tdx::rtmr1_direct(&k).unwrap()), to_hex(&rtmr1));
}

fn parse_err(img: &[u8]) -> TdxError {
    tdx::Tdvf::parse(img).unwrap_err()
}

/// Malformed firmware: each gets its own precise error.
#[test]
fn malformed_tdvf() {
    let len = 0x10000;
    let good: Vec<Sec> = vec![
        (0x4000, 0xc000, 0xffff_4000, 0xc000, 0, ATTR_MR_EXTEND),
        (0, 0x4000, 0xffff_0000, 0x4000, 1, 0),
    ];
    let with = |secs: &[Sec]| tdvf_image(1, len, 0x800, secs);
    tdx::Tdvf::parse(&with(&good)).unwrap();

    // No GUID table at all; a table without the TDX entry (an SEV-only OVMF).
    assert!(matches!(
        parse_err(&blob(5, len)),
        TdxError::GuidTable(OvmfError::FooterMissing { .. })
    ));
    let mut no_tdx = blob(6, len);
    let t = guid_table(&[(measure::ovmf::SEV_ES_RESET_BLOCK_GUID, vec![0; 4])]);
    no_tdx[len - 32 - t.len()..len - 32].copy_from_slice(&t);
    assert_eq!(parse_err(&no_tdx), TdxError::NoTdxMetadata);
    let mut short = blob(7, len);
    let t = guid_table(&[(TDX_METADATA_GUID, vec![0; 2])]);
    short[len - 32 - t.len()..len - 32].copy_from_slice(&t);
    assert_eq!(parse_err(&short), TdxError::MetadataEntryData { len: 2 });

    // Descriptor offset, signature, version, length, count.
    let mut img = tdvf_image(1, len, 0x800, &good);
    let entry = len - 32 - 18 - 18 - 4;
    img[entry..entry + 4].copy_from_slice(&0x2_0000u32.to_le_bytes());
    assert_eq!(
        parse_err(&img),
        TdxError::DescriptorOffset {
            offset_from_end: 0x2_0000,
            len
        }
    );
    let d = len - 0x800;
    let mut sig = with(&good);
    sig[d..d + 4].copy_from_slice(b"TDVG");
    assert_eq!(
        parse_err(&sig),
        TdxError::DescriptorSignature {
            offset: d,
            found: *b"TDVG"
        }
    );
    let mut ver = with(&good);
    ver[d + 8..d + 12].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(
        parse_err(&ver),
        TdxError::DescriptorVersion {
            offset: d,
            found: 2
        }
    );
    let mut count = with(&good);
    count[d + 12..d + 16].copy_from_slice(&3u32.to_le_bytes());
    assert!(matches!(
        parse_err(&count),
        TdxError::DescriptorLength {
            count: 3,
            length: 80,
            needed: 112,
            ..
        }
    ));
    assert_eq!(parse_err(&with(&[])), TdxError::NoSections);

    // Sections.
    let edit = |i: usize, s: Sec| {
        let mut v = good.clone();
        v[i] = s;
        with(&v)
    };
    assert_eq!(
        parse_err(&edit(1, (0, 0x4000, 0xffff_0000, 0x4000, 9, 0))),
        TdxError::UnknownSectionType { index: 1, raw: 9 }
    );
    assert_eq!(
        parse_err(&edit(1, (0, 0x4000, 0xffff_0000, 0x4000, 1, 4))),
        TdxError::UnknownAttributes {
            index: 1,
            kind: TdvfSectionType::Cfv,
            attributes: 4
        }
    );
    assert_eq!(
        parse_err(&edit(1, (0, 0x4000, 0xffff_0800, 0x4000, 1, 0))),
        TdxError::SectionMisaligned {
            index: 1,
            kind: TdvfSectionType::Cfv,
            mem_addr: 0xffff_0800,
            mem_size: 0x4000
        }
    );
    assert!(matches!(
        parse_err(&edit(1, (0, 0, 0xffff_0000, 0, 1, 0))),
        TdxError::SectionMisaligned {
            index: 1,
            mem_size: 0,
            ..
        }
    ));
    assert_eq!(
        parse_err(&edit(1, (0xf000, 0x4000, 0xffff_0000, 0x4000, 1, 0))),
        TdxError::SectionData {
            index: 1,
            kind: TdvfSectionType::Cfv,
            data_offset: 0xf000,
            raw_size: 0x4000,
            mem_size: 0x4000,
            len
        }
    );
    assert!(matches!(
        parse_err(&edit(1, (0, 0x5000, 0xffff_0000, 0x4000, 1, 0))),
        TdxError::SectionData {
            index: 1,
            raw_size: 0x5000,
            ..
        }
    ));
    assert_eq!(
        parse_err(&edit(
            0,
            (0x4000, 0xb000, 0xffff_4000, 0xc000, 0, ATTR_MR_EXTEND)
        )),
        TdxError::ExtendSizeMismatch {
            index: 0,
            kind: TdvfSectionType::Bfv,
            raw_size: 0xb000,
            mem_size: 0xc000
        }
    );
    assert_eq!(
        parse_err(&edit(1, (0, 0x4000, 0xffff_6000, 0x4000, 1, 0))),
        TdxError::SectionsOverlap {
            first: 0,
            second: 1
        }
    );
    // Error messages name the problem.
    let msg = parse_err(&edit(1, (0, 0x4000, 0xffff_6000, 0x4000, 1, 0))).to_string();
    assert_eq!(msg, "TDVF sections #0 and #1 overlap in guest memory");

    // A kernel that is no PE image.
    assert!(matches!(
        tdx::authenticode_sha384(b"not a kernel"),
        Err(TdxError::KernelNotPe { .. })
    ));
    let mut pe = pe_image();
    pe[0x3c..0x40].copy_from_slice(&0xffff_0000u32.to_le_bytes());
    assert_eq!(
        tdx::authenticode_sha384(&pe).unwrap_err().to_string(),
        "kernel is not a PE/COFF image: no PE signature at e_lfanew"
    );
}

/// Writes the built images to `$TDX_FIXTURE_DIR` so the vectors can be recomputed with
/// tdx-measure: `TDX_FIXTURE_DIR=/tmp/x cargo test -p measure --test tdx -- --ignored`.
#[test]
#[ignore]
fn dump_fixtures() {
    let dir = std::path::PathBuf::from(std::env::var_os("TDX_FIXTURE_DIR").unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.fd"), image_a()).unwrap();
    std::fs::write(dir.join("b.fd"), image_b()).unwrap();
    std::fs::write(dir.join("pe.efi"), pe_image()).unwrap();
    for (i, (_, seed, len, _)) in RTMR2_CASES.iter().enumerate() {
        std::fs::write(dir.join(format!("initrd{i}")), blob(*seed, *len)).unwrap();
    }
}
