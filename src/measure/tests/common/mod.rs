//! Test support: the `sev-snp-measure` oracle, Debian's OVMF, deterministic blobs and
//! firmware images built by the tests.
#![allow(dead_code)] // each test file uses a different part
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use measure::ovmf::{
    GuidTable, SectionType, FOOTER_GUID, SEV_ES_RESET_BLOCK_GUID, SEV_HASH_TABLE_GUID,
    SEV_METADATA_GUID, SEV_SECRET_BLOCK_GUID,
};
use measure::snp::{Inputs, VcpuType, VmmType};

const INSTALL_HINT: &str = "run scripts/install-deps (it installs the pinned sev-snp-measure \
     into /opt/enclave-init/venv and Debian's ovmf package)";

/// Path of the oracle: `$SEV_SNP_MEASURE`, default `$ENCLAVE_TOOLS/venv/bin/sev-snp-measure`
/// (`ENCLAVE_TOOLS` defaults to `/opt/enclave-init`, as in `scripts/env`).
/// Panics (fails the test) when it is missing.
pub fn oracle() -> PathBuf {
    let p = std::env::var_os("SEV_SNP_MEASURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let tools =
                std::env::var_os("ENCLAVE_TOOLS").unwrap_or_else(|| "/opt/enclave-init".into());
            PathBuf::from(tools).join("venv/bin/sev-snp-measure")
        });
    assert!(
        p.is_file(),
        "the sev-snp-measure oracle is missing at {}: {INSTALL_HINT}",
        p.display()
    );
    p
}

/// Debian's `OVMF.fd` (`$OVMF_FD`, default `/usr/share/ovmf/OVMF.fd`). Panics when missing.
pub fn debian_ovmf() -> Vec<u8> {
    let p = std::env::var_os("OVMF_FD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/ovmf/OVMF.fd"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}: {INSTALL_HINT}", p.display()))
}

/// A prerequisite is missing: the test fails, unless the environment opts
/// out of exactly this one by name with `ENCLAVE_ALLOW_SKIP_<NAME>=1` (CI
/// never does); then it says so and the caller returns. Returns `true` when
/// the caller must skip.
pub fn missing(name: &str, what: &str) -> bool {
    let var = format!("ENCLAVE_ALLOW_SKIP_{name}");
    if std::env::var(&var).is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED ({var}=1): {what}");
        return true;
    }
    panic!("{what} (set {var}=1 to skip this check on purpose)");
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn blob(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A scratch directory under Cargo's per-target temporary directory, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("measure-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `data` to `name` in the directory and returns its path.
    pub fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the oracle with `args`; `Ok(stdout)` on success, `Err(stderr)` on failure.
pub fn run_oracle<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<String, String> {
    let out = Command::new(oracle()).args(args).output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The files an [`Inputs`] refers to, written out for the oracle.
pub struct OracleFiles {
    pub ovmf: PathBuf,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
}

impl OracleFiles {
    pub fn write(dir: &Scratch, tag: &str, inputs: &Inputs<'_>) -> OracleFiles {
        OracleFiles {
            ovmf: dir.file(&format!("{tag}-ovmf.fd"), inputs.ovmf),
            kernel: inputs.kernel.map(|k| dir.file(&format!("{tag}-kernel"), k)),
            initrd: inputs.initrd.map(|i| dir.file(&format!("{tag}-initrd"), i)),
        }
    }
}

/// The oracle's `--mode snp` arguments for `inputs` and `vcpus`.
pub fn oracle_args(files: &OracleFiles, inputs: &Inputs<'_>, vcpus: u32) -> Vec<String> {
    let mut a = vec![
        "--mode".to_owned(),
        "snp".to_owned(),
        format!("--vcpus={vcpus}"),
        format!("--ovmf={}", files.ovmf.display()),
        format!("--vmm-type={}", inputs.vmm_type),
        format!("--guest-features={:#x}", inputs.guest_features),
        "--output-format=hex".to_owned(),
    ];
    match inputs.vcpu_type {
        VcpuType::Signature(s) => a.push(format!("--vcpu-sig={s:#x}")),
        v => a.push(format!("--vcpu-type={}", v.name().unwrap())),
    }
    if let Some(k) = &files.kernel {
        a.push(format!("--kernel={}", k.display()));
    }
    if let Some(i) = &files.initrd {
        a.push(format!("--initrd={}", i.display()));
    }
    if let Some(c) = inputs.cmdline {
        a.push(format!("--append={c}"));
    }
    if let Some(h) = inputs.ovmf_hash {
        a.push(format!("--snp-ovmf-hash={}", measure::to_hex(&h)));
    }
    a
}

/// Computes our digests for `1..=max(counts)` in one call and compares each of `counts`
/// with the oracle's output. Returns the number of comparisons.
pub fn compare(dir: &Scratch, tag: &str, inputs: &Inputs<'_>, counts: &[u32]) -> usize {
    let max = counts.iter().copied().max().unwrap();
    let ours = measure::snp::launch_digests(inputs, 1..=max)
        .unwrap_or_else(|e| panic!("{tag}: our digest failed: {e} ({e:?})"));
    assert_eq!(ours.len(), max as usize);
    let files = OracleFiles::write(dir, tag, inputs);
    for &n in counts {
        let args = oracle_args(&files, inputs, n);
        let theirs =
            run_oracle(&args).unwrap_or_else(|e| panic!("{tag}: oracle failed on {args:?}: {e}"));
        let (count, digest) = ours[n as usize - 1];
        assert_eq!(count, n);
        assert_eq!(
            measure::to_hex(&digest),
            theirs,
            "{tag}: digest for {n} vCPUs differs from sev-snp-measure {args:?}"
        );
        let single = measure::snp::launch_digest(inputs, n).unwrap();
        assert_eq!(
            single, digest,
            "{tag}: launch_digest({n}) != launch_digests(1..=64)[{n}]"
        );
    }
    counts.len()
}

/// A firmware image built by a test: random bytes with a GUID table, SEV metadata and
/// reset block laid out as edk2 does.
#[derive(Clone)]
pub struct FwSpec {
    /// Image length.
    pub len: usize,
    /// Seed of the image bytes.
    pub seed: u64,
    /// SEV metadata sections `[gpa, size, type]`; `None`: no SEV metadata entry at all.
    pub sections: Option<Vec<[u32; 3]>>,
    /// Where the metadata header goes, as an offset from the end of the image.
    pub metadata_from_end: u32,
    /// AP reset EIP; `None`: no reset block entry.
    pub reset_eip: Option<u32>,
    /// `{gpa, size}` of the SEV hash table; `None`: no such entry.
    pub hash_table: Option<[u32; 2]>,
}

/// Section type values.
pub const SEC_MEM: u32 = SectionType::SnpSecMem as u32;
pub const SECRETS: u32 = SectionType::SnpSecrets as u32;
pub const CPUID: u32 = SectionType::Cpuid as u32;
pub const SVSM_CAA: u32 = SectionType::SvsmCaa as u32;
pub const KERNEL_HASHES: u32 = SectionType::SnpKernelHashes as u32;

impl FwSpec {
    /// The layout of edk2-stable202405's AmdSevX64 build (sections, reset EIP and hash
    /// table location), in an image of `len` random bytes.
    pub fn amd_sev(len: usize, seed: u64) -> FwSpec {
        FwSpec {
            len,
            seed,
            sections: Some(vec![
                [0x80_0000, 0x9000, SEC_MEM],
                [0x80_a000, 0x3000, SEC_MEM],
                [0x80_d000, 0x1000, SECRETS],
                [0x80_e000, 0x1000, CPUID],
                [0x80_f000, 0x1000, SVSM_CAA],
                [0x81_0000, 0x1000, KERNEL_HASHES],
                [0x81_1000, 0xf000, SEC_MEM],
            ]),
            metadata_from_end: 0x800,
            reset_eip: Some(0x80_b004),
            hash_table: Some([0x81_0c00, 0x400]),
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let mut img = blob(self.seed, self.len);
        let mut entries: Vec<(measure::ovmf::Guid, Vec<u8>)> = Vec::new();
        if let Some(h) = self.hash_table {
            entries.push((
                SEV_HASH_TABLE_GUID,
                [h[0].to_le_bytes(), h[1].to_le_bytes()].concat(),
            ));
        }
        entries.push((
            SEV_SECRET_BLOCK_GUID,
            [0x81_0000u32.to_le_bytes(), 0xc00u32.to_le_bytes()].concat(),
        ));
        if let Some(sections) = &self.sections {
            let start = self.len - self.metadata_from_end as usize;
            let md = metadata_blob(sections);
            img[start..start + md.len()].copy_from_slice(&md);
            entries.push((
                SEV_METADATA_GUID,
                self.metadata_from_end.to_le_bytes().to_vec(),
            ));
        }
        if let Some(eip) = self.reset_eip {
            entries.push((SEV_ES_RESET_BLOCK_GUID, eip.to_le_bytes().to_vec()));
        }
        let table = guid_table(&entries);
        let end = self.len - 32;
        img[end - table.len()..end].copy_from_slice(&table);
        img
    }
}

/// `"ASEV", u32 length, u32 version 1, u32 count`, then the sections.
pub fn metadata_blob(sections: &[[u32; 3]]) -> Vec<u8> {
    let mut md = b"ASEV".to_vec();
    md.extend_from_slice(&(16 + 12 * sections.len() as u32).to_le_bytes());
    md.extend_from_slice(&1u32.to_le_bytes());
    md.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for s in sections {
        for v in s {
            md.extend_from_slice(&v.to_le_bytes());
        }
    }
    md
}

/// A GUID table with `entries` in file order, followed by the footer.
pub fn guid_table(entries: &[(measure::ovmf::Guid, Vec<u8>)]) -> Vec<u8> {
    let mut t = Vec::new();
    for (guid, data) in entries {
        t.extend_from_slice(data);
        t.extend_from_slice(&(data.len() as u16 + 18).to_le_bytes());
        t.extend_from_slice(&guid.to_bytes_le());
    }
    t.extend_from_slice(&(t.len() as u16 + 18).to_le_bytes());
    t.extend_from_slice(&FOOTER_GUID.to_bytes_le());
    t
}

/// Debian's OVMF with its SEV metadata replaced by `sections` (written `0x2000` bytes from
/// the end, the table entry repointed) and its SEV hash table entry set to `hash_table`:
/// a real image turned into one that supports measured direct boot.
pub fn rewrite_metadata(img: &[u8], sections: &[[u32; 3]], hash_table: [u32; 2]) -> Vec<u8> {
    let mut img = img.to_vec();
    let table = GuidTable::parse(&img).unwrap();
    let from_end: u32 = 0x2000;
    let md = metadata_blob(sections);
    let start = img.len() - from_end as usize;
    img[start..start + md.len()].copy_from_slice(&md);
    let md_entry = table.get(&SEV_METADATA_GUID).unwrap().data_offset;
    img[md_entry..md_entry + 4].copy_from_slice(&from_end.to_le_bytes());
    let ht = table
        .get(&SEV_HASH_TABLE_GUID)
        .expect("Debian's OVMF has a hash table entry")
        .data_offset;
    img[ht..ht + 4].copy_from_slice(&hash_table[0].to_le_bytes());
    img[ht + 4..ht + 8].copy_from_slice(&hash_table[1].to_le_bytes());
    img
}

/// The vCPU types the matrix covers.
pub const VCPU_TYPES: [VcpuType; 6] = [
    VcpuType::Epyc,
    VcpuType::EpycV4,
    VcpuType::EpycRome,
    VcpuType::EpycMilan,
    VcpuType::EpycGenoa,
    VcpuType::EpycTurin,
];

/// The VMM types.
pub const VMM_TYPES: [VmmType; 3] = [VmmType::Qemu, VmmType::Ec2, VmmType::Gce];
