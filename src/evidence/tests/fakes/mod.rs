//! Shared fakes: a configfs-tsm tree and guest devices that behave like the
//! kernel's, built from the real fixtures.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use evidence::configfs_tsm::TsmFs;
use tee_formats::snp::report::AttestationReport;

pub fn fixtures() -> PathBuf {
    std::env::var_os("ENCLAVE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        })
}

pub fn fixture(rel: &str) -> Vec<u8> {
    let p = fixtures().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// A real SNP report with its REPORT_DATA replaced (as the PSP would sign it).
pub fn snp_report_for(report_data: &[u8]) -> Vec<u8> {
    let mut r = AttestationReport::parse(&fixture("snp/milan-v2-virtee/report.bin")).unwrap();
    r.report_data.copy_from_slice(report_data);
    r.to_bytes().to_vec()
}

/// A real TDX quote with its REPORT_DATA replaced (header 48 + body offset 520).
pub fn tdx_quote_for(report_data: &[u8]) -> Vec<u8> {
    let mut q = fixture("tdx/dcap-qvl/tdx_quote");
    q[48 + 520..48 + 520 + 64].copy_from_slice(report_data);
    q
}

fn err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

#[derive(Default)]
struct Entry {
    inblob: Option<Vec<u8>>,
    generation: u64,
    privlevel: Option<u32>,
}

/// Computes `outblob` from `inblob`.
pub type Outblob = Box<dyn FnMut(&[u8]) -> Vec<u8> + Send>;

/// configfs-tsm as the kernel implements it (report.c): per-entry
/// attributes, `generation` counting writes, 64-byte `inblob` only, decimal
/// `privlevel`, `outblob` computed from `inblob`.
pub struct FakeTsm {
    pub provider: &'static str,
    pub outblob: Outblob,
    pub auxblob: Option<Vec<u8>>,
    /// outblob reads that answer EBUSY first.
    pub busy_reads: u32,
    /// Another process writes `inblob` of the same entry before our read.
    pub racer: bool,
    entries: HashMap<PathBuf, Entry>,
    pub removed: Vec<PathBuf>,
    pub privlevels: Vec<u32>,
}

impl FakeTsm {
    pub fn new(
        provider: &'static str,
        outblob: impl FnMut(&[u8]) -> Vec<u8> + Send + 'static,
    ) -> Self {
        FakeTsm {
            provider,
            outblob: Box::new(outblob),
            auxblob: None,
            busy_reads: 0,
            racer: false,
            entries: HashMap::new(),
            removed: Vec::new(),
            privlevels: Vec::new(),
        }
    }

    pub fn live_entries(&self) -> usize {
        self.entries.len()
    }

    fn split<'a>(&mut self, path: &'a Path) -> io::Result<(PathBuf, &'a str)> {
        let dir = path.parent().ok_or_else(|| err(libc::ENOENT))?.to_owned();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| err(libc::ENOENT))?;
        if !self.entries.contains_key(&dir) {
            return Err(err(libc::ENOENT));
        }
        Ok((dir, name))
    }
}

impl TsmFs for FakeTsm {
    fn mkdir(&mut self, path: &Path) -> io::Result<()> {
        if self.entries.contains_key(path) {
            return Err(err(libc::EEXIST));
        }
        self.entries.insert(path.to_owned(), Entry::default());
        Ok(())
    }

    fn rmdir(&mut self, path: &Path) -> io::Result<()> {
        self.entries.remove(path).ok_or_else(|| err(libc::ENOENT))?;
        self.removed.push(path.to_owned());
        Ok(())
    }

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        let (dir, name) = self.split(path)?;
        match name {
            "provider" => Ok(format!("{}\n", self.provider).into_bytes()),
            "generation" => Ok(format!("{}\n", self.entries[&dir].generation).into_bytes()),
            "outblob" => {
                if self.busy_reads > 0 {
                    self.busy_reads -= 1;
                    return Err(err(libc::EBUSY));
                }
                if self.racer {
                    let e = self.entries.get_mut(&dir).unwrap();
                    e.inblob = Some(vec![0xee; 64]);
                    e.generation += 1;
                }
                let inblob = self.entries[&dir]
                    .inblob
                    .clone()
                    .ok_or_else(|| err(libc::EINVAL))?;
                Ok((self.outblob)(&inblob))
            }
            "auxblob" if self.provider == "sev_guest" => {
                Ok(self.auxblob.clone().unwrap_or_default())
            }
            _ => Err(err(libc::ENOENT)),
        }
    }

    fn write(&mut self, path: &Path, data: &[u8]) -> io::Result<()> {
        let (dir, name) = self.split(path)?;
        let e = self.entries.get_mut(&dir).unwrap();
        match name {
            "inblob" if data.len() == 64 => e.inblob = Some(data.to_vec()),
            "inblob" => return Err(err(libc::EINVAL)),
            "privlevel" if self.provider == "sev_guest" => {
                let v: u32 = std::str::from_utf8(data)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| err(libc::EINVAL))?;
                if v > 3 {
                    return Err(err(libc::EINVAL));
                }
                e.privlevel = Some(v);
                self.privlevels.push(v);
            }
            _ => return Err(err(libc::EACCES)),
        }
        e.generation += 1;
        Ok(())
    }
}
