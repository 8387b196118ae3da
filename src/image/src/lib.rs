//! Reproducible initramfs for the enclave-init guest.
//!
//! The initramfs bytes are an input of the launch measurement, so they must
//! depend on nothing but the files that go in: this crate writes the newc
//! cpio itself (`guest-init.md` §4.1) instead of asking GNU cpio, which copies
//! directory link counts and permissions from the build machine.
//!
//! Determinism by construction:
//! - entries sorted bytewise by path, parents before children;
//! - inode numbers 1..n in that order, nlink 2 for directories and 1 otherwise;
//! - owner and group 0, modes from the recipe (never the builder's umask);
//! - every mtime is `SOURCE_DATE_EPOCH`;
//! - dev numbers 0; rdev only for `dev/console` (c 5:1); check 0;
//! - uncompressed, so no compressor version can change the bytes.
//!
//! Module map: [`newc`] writes entries; [`Recipe`] says what goes in;
//! [`eif`] writes and reads AWS Nitro Enclaves' Enclave Image File (kernel,
//! command line and this initramfs in one file).

#![forbid(unsafe_code)]

pub mod eif;
pub mod newc;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use newc::{Entry, Kind};

/// Where things go in the image (must match what the guest reads).
pub mod paths {
    /// The init binary.
    pub const INIT: &str = "init";
    /// The measured configuration.
    pub const CONFIG: &str = "etc/enclave/config.toml";
    /// The module list, in load order.
    pub const MODULES_LIST: &str = "lib/modules/modules.list";
    /// The directory holding module files.
    pub const MODULES_DIR: &str = "lib/modules";
}

/// What goes into the image.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// The static `enclave-init` binary.
    pub init: PathBuf,
    /// The configuration file.
    pub config: PathBuf,
    /// The module list (file names, in load order); `None` for a kernel with
    /// everything built in.
    pub modules_list: Option<PathBuf>,
    /// Where to find the listed modules: a kernel's `lib/modules/<version>`
    /// tree, searched recursively by file name.
    pub modules_dir: Option<PathBuf>,
    /// mtime of every entry (`SOURCE_DATE_EPOCH`).
    pub mtime: u32,
}

/// Why an image could not be built.
#[derive(Debug)]
pub enum ImageError {
    /// An input file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The module list names something the modules directory does not have.
    ModuleNotFound {
        /// The module file name.
        name: String,
        /// Where we looked.
        dir: PathBuf,
    },
    /// The module list names the same file twice, or the tree has two files
    /// of that name.
    ModuleAmbiguous {
        /// The module file name.
        name: String,
    },
    /// The module list is malformed.
    ModuleList {
        /// 1-based line.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A module list was given without a modules directory.
    NoModulesDir,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ImageError::ModuleNotFound { name, dir } => {
                write!(
                    f,
                    "module {name} is listed but not found under {}",
                    dir.display()
                )
            }
            ImageError::ModuleAmbiguous { name } => write!(
                f,
                "module {name} is listed twice or exists twice in the tree"
            ),
            ImageError::ModuleList { line, reason } => {
                write!(f, "module list line {line}: {reason}")
            }
            ImageError::NoModulesDir => write!(f, "a module list needs a modules directory"),
        }
    }
}

impl std::error::Error for ImageError {}

fn read(path: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(|source| ImageError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Module file names from a list: one per line, `#` comments; the same rules
/// as the guest's loader (plain `.ko` names, no paths).
pub fn parse_modules_list(text: &str) -> Result<Vec<String>, ImageError> {
    let mut names: Vec<String> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let name = line.split('#').next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        if name.contains('/') || !name.ends_with(".ko") {
            return Err(ImageError::ModuleList {
                line: n + 1,
                reason: format!("{name:?} is not a plain .ko file name"),
            });
        }
        if names.iter().any(|x| x == name) {
            return Err(ImageError::ModuleAmbiguous {
                name: name.to_owned(),
            });
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// Builds the archive entries for `recipe` (sorted, not yet numbered).
pub fn entries(recipe: &Recipe) -> Result<Vec<Entry>, ImageError> {
    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    let mut add = |e: Entry| {
        files.insert(e.path.clone(), e);
    };
    for dir in [
        "dev",
        "etc",
        "etc/enclave",
        "lib",
        "lib/modules",
        "proc",
        "sys",
    ] {
        add(Entry::dir(dir, 0o755));
    }
    // The kernel opens /dev/console for PID 1 before exec, from the
    // initramfs: without this node a custom kernel starts init with no
    // stdio. Debian's built-in cpio has one too; ours makes it explicit.
    add(Entry::char_device("dev/console", 0o600, 5, 1));
    add(Entry::file(paths::INIT, 0o755, read(&recipe.init)?));
    add(Entry::file(paths::CONFIG, 0o644, read(&recipe.config)?));
    if let Some(list_path) = &recipe.modules_list {
        let list = read(list_path)?;
        let text = String::from_utf8_lossy(&list);
        let names = parse_modules_list(&text)?;
        let dir = recipe
            .modules_dir
            .as_ref()
            .ok_or(ImageError::NoModulesDir)?;
        let index = index_modules(dir)?;
        for name in names {
            let found = index.get(&name).ok_or_else(|| ImageError::ModuleNotFound {
                name: name.clone(),
                dir: dir.clone(),
            })?;
            let path = found
                .as_ref()
                .ok_or_else(|| ImageError::ModuleAmbiguous { name: name.clone() })?;
            add(Entry::file(
                &format!("{}/{name}", paths::MODULES_DIR),
                0o644,
                read(path)?,
            ));
        }
        add(Entry::file(paths::MODULES_LIST, 0o644, list));
    }
    Ok(files.into_values().collect())
}

/// Builds the complete archive.
pub fn build(recipe: &Recipe) -> Result<Vec<u8>, ImageError> {
    Ok(newc::write(&entries(recipe)?, recipe.mtime))
}

/// Maps module file names to their path under `dir` (`None`: two files share
/// the name). Sorted walk, so the result never depends on readdir order.
fn index_modules(dir: &Path) -> Result<BTreeMap<String, Option<PathBuf>>, ImageError> {
    let mut index = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| ImageError::Read {
            path: d.clone(),
            source,
        })?;
        let mut children: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for p in children {
            if p.is_dir() {
                stack.push(p);
            } else if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                if name.ends_with(".ko") {
                    index
                        .entry(name.to_owned())
                        .and_modify(|v: &mut Option<PathBuf>| *v = None)
                        .or_insert_with(|| Some(p.clone()));
                }
            }
        }
    }
    Ok(index)
}
