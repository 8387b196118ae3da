//! configfs-tsm: `mkdir` a report entry, check `provider`, write `privlevel`
//! (SNP) and the 64-byte `inblob`, read `outblob` (and `auxblob`, the SNP
//! certificate table), check `generation`, `rmdir` (tee-formats.md §1.7).
//!
//! `generation` counts the writes to the entry. We read it after `outblob`
//! and require exactly our own writes: anything else means another process
//! wrote the same entry between our `inblob` and our `outblob`, so the blob
//! may answer someone else's REPORT_DATA.
//!
//! The filesystem is reached through [`TsmFs`] so that tests can run the same
//! code against a fake tree that behaves like the kernel's.
//!
//! A TDX bundle also carries the firmware's CC event log ([`crate::ccel`]):
//! [`ConfigfsTsm::new`] reads it from its sysfs location, [`ConfigfsTsm::with_fs`]
//! only when told where ([`ConfigfsTsm::with_event_log`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use wire::{EvidenceBundle, Tee};

use crate::ccel::{self, CcelPaths};
use crate::{EvidenceError, EvidenceSource, SourceKind, REPORT_DATA_LEN};

/// Where configfs-tsm reports live.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";

/// How often `outblob` is retried while the interface is busy (a TDX quote
/// in flight gives EBUSY to the next request).
const BUSY_RETRIES: u32 = 8;

/// The filesystem operations configfs-tsm needs.
pub trait TsmFs: Send {
    /// mkdir.
    fn mkdir(&mut self, path: &Path) -> io::Result<()>;
    /// rmdir.
    fn rmdir(&mut self, path: &Path) -> io::Result<()>;
    /// Reads a whole attribute.
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>>;
    /// Writes a whole attribute in one `write`.
    fn write(&mut self, path: &Path, data: &[u8]) -> io::Result<()>;
}

/// Borrowed filesystems work too (tests keep access to their fake).
impl<T: TsmFs + ?Sized> TsmFs for &mut T {
    fn mkdir(&mut self, path: &Path) -> io::Result<()> {
        (**self).mkdir(path)
    }
    fn rmdir(&mut self, path: &Path) -> io::Result<()> {
        (**self).rmdir(path)
    }
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        (**self).read(path)
    }
    fn write(&mut self, path: &Path, data: &[u8]) -> io::Result<()> {
        (**self).write(path, data)
    }
}

/// The real configfs.
pub struct RealFs;

impl TsmFs for RealFs {
    fn mkdir(&mut self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }
    fn rmdir(&mut self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn write(&mut self, path: &Path, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        // One write call: configfs binary attributes take the buffer as a
        // whole; O_TRUNC is not supported there, so open for writing only.
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        let n = f.write(data)?;
        if n != data.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write to configfs attribute",
            ));
        }
        Ok(())
    }
}

/// The configfs-tsm source.
pub struct ConfigfsTsm<F: TsmFs = RealFs> {
    fs: F,
    root: PathBuf,
    /// Which provider the caller requires (`sev_guest`/`tdx_guest`), if any.
    want_provider: Option<&'static str>,
    /// Where the TDX CC event log is read from, if anywhere.
    event_log: Option<CcelPaths>,
}

impl ConfigfsTsm<RealFs> {
    /// The real interface under `root`; TDX bundles carry the CC event log
    /// from its sysfs location ([`ccel::DEFAULT_TABLE`], [`ccel::DEFAULT_DATA`]).
    pub fn new(root: &Path) -> Self {
        ConfigfsTsm {
            fs: RealFs,
            root: root.to_owned(),
            want_provider: None,
            event_log: Some(CcelPaths::default()),
        }
    }
}

impl<F: TsmFs> ConfigfsTsm<F> {
    /// The interface over `fs` (tests use a fake); no event log unless
    /// [`ConfigfsTsm::with_event_log`] says where.
    pub fn with_fs(fs: F, root: &Path) -> Self {
        ConfigfsTsm {
            fs,
            root: root.to_owned(),
            want_provider: None,
            event_log: None,
        }
    }

    /// Reads the TDX CC event log from `paths` (`None`: never).
    pub fn with_event_log(mut self, paths: Option<CcelPaths>) -> Self {
        self.event_log = paths;
        self
    }

    /// Requires a provider (`"sev_guest"` or `"tdx_guest"`).
    pub fn require_provider(mut self, provider: &'static str) -> Self {
        self.want_provider = Some(provider);
        self
    }

    fn io<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> EvidenceError + 'p {
        move |source| EvidenceError::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }

    fn request(
        &mut self,
        dir: &Path,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<EvidenceBundle, EvidenceError> {
        let provider_path = dir.join("provider");
        let provider = self
            .fs
            .read(&provider_path)
            .map_err(Self::io("reading", &provider_path))?;
        let provider = String::from_utf8_lossy(&provider).trim().to_owned();
        let (tee, want) = match provider.as_str() {
            "sev_guest" => (Tee::Snp, "sev_guest"),
            "tdx_guest" => (Tee::Tdx, "tdx_guest"),
            _ => {
                return Err(EvidenceError::WrongProvider {
                    got: provider,
                    want: "sev_guest or tdx_guest",
                })
            }
        };
        if let Some(required) = self.want_provider {
            if required != want {
                return Err(EvidenceError::WrongProvider {
                    got: provider,
                    want: required,
                });
            }
        }
        let mut writes = 0u64;
        if tee == Tee::Snp {
            // privlevel is decimal text (kstrtouint), and becomes the VMPL.
            let p = dir.join("privlevel");
            self.fs.write(&p, b"0").map_err(Self::io("writing", &p))?;
            writes += 1;
        }
        let inblob = dir.join("inblob");
        self.fs
            .write(&inblob, report_data)
            .map_err(Self::io("writing", &inblob))?;
        writes += 1;

        let outblob = self.read_when_not_busy(&dir.join("outblob"))?;
        let generation_path = dir.join("generation");
        let generation = self
            .fs
            .read(&generation_path)
            .map_err(Self::io("reading", &generation_path))?;
        let generation: u64 = String::from_utf8_lossy(&generation)
            .trim()
            .parse()
            .map_err(|_| EvidenceError::Io {
                op: "parsing",
                path: generation_path.display().to_string(),
                source: io::Error::new(io::ErrorKind::InvalidData, "not a number"),
            })?;
        if generation != writes {
            return Err(EvidenceError::GenerationRace {
                expected: writes,
                got: generation,
            });
        }

        let mut bundle = match tee {
            Tee::Snp => {
                crate::check_snp_report(&outblob, report_data)?;
                let mut b =
                    EvidenceBundle::new(Tee::Snp, SourceKind::ConfigfsTsm.as_str(), outblob);
                let aux = dir.join("auxblob");
                match self.fs.read(&aux) {
                    Ok(table) if !table.is_empty() => crate::snp_certificates(&mut b, &table)?,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(EvidenceError::Io {
                            op: "reading",
                            path: aux.display().to_string(),
                            source: e,
                        })
                    }
                }
                b
            }
            _ => {
                crate::tdx_guest::check_quote(&outblob, report_data)?;
                let mut b =
                    EvidenceBundle::new(Tee::Tdx, SourceKind::ConfigfsTsm.as_str(), outblob);
                b.event_log = self
                    .event_log
                    .as_ref()
                    .and_then(ccel::collect)
                    .map(wire::Bytes);
                b
            }
        };
        bundle.provider = SourceKind::ConfigfsTsm.as_str().to_owned();
        Ok(bundle)
    }

    /// Reads `outblob`, retrying with backoff while the provider is busy.
    fn read_when_not_busy(&mut self, path: &Path) -> Result<Vec<u8>, EvidenceError> {
        let mut backoff = Duration::from_millis(50);
        for attempt in 1..=BUSY_RETRIES {
            match self.fs.read(path) {
                Ok(b) => return Ok(b),
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY)
                        || e.raw_os_error() == Some(libc::EAGAIN) =>
                {
                    log::info!(attempt = attempt; "configfs-tsm busy; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    return Err(EvidenceError::Io {
                        op: "reading",
                        path: path.display().to_string(),
                        source: e,
                    })
                }
            }
        }
        Err(EvidenceError::Busy {
            attempts: BUSY_RETRIES,
        })
    }
}

impl<F: TsmFs> EvidenceSource for ConfigfsTsm<F> {
    fn kind(&self) -> SourceKind {
        SourceKind::ConfigfsTsm
    }

    fn collect(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<EvidenceBundle, EvidenceError> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = self.root.join(format!(
            "enclave-init-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        self.fs
            .mkdir(&dir)
            .map_err(Self::io("creating report entry", &dir))?;
        let result = self.request(&dir, report_data);
        if let Err(e) = self.fs.rmdir(&dir) {
            log::warn!(entry = dir.display().to_string().as_str(), error = e.to_string().as_str(); "cannot remove configfs-tsm entry");
        }
        result
    }
}
