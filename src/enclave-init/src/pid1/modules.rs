//! Kernel modules listed in the image, loaded with `finit_module` in order.
//!
//! Debian's kernel builds virtio and vsock as modules, so the image carries
//! them and a list in dependency order (`image/modules.list`). The list and
//! the modules are in the initramfs, hence measured: the kernel's module
//! signature check is not what we rely on.

use std::ffi::CStr;
use std::path::Path;

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};

use super::Pid1Error;

/// Where the list lives in the image.
pub const LIST_PATH: &str = "/lib/modules/modules.list";
/// Where the module files live in the image.
pub const DIR: &str = "/lib/modules";

/// Parses a module list: one file name per line, `#` comments, blank lines
/// ignored. Names must be plain file names ending in `.ko` (no paths).
pub fn parse_list(text: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let name = line.split('#').next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        if name.contains('/') || !name.ends_with(".ko") {
            return Err(format!(
                "line {}: {name:?} is not a plain .ko file name",
                n + 1
            ));
        }
        names.push(name);
    }
    Ok(names)
}

/// Loads every listed module from `dir`. A missing list means "no modules"
/// (a kernel with everything built in); a listed but missing module, or one
/// the kernel refuses, is fatal: the init would come up without its vsock
/// transport. `EEXIST` (already loaded or built in) is fine.
pub fn load_listed(list_path: &str, dir: &str) -> Result<usize, Pid1Error> {
    let text = match std::fs::read_to_string(list_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::info_always!(list = list_path; "no module list; assuming a kernel with everything built in");
            return Ok(0);
        }
        Err(source) => {
            return Err(Pid1Error::ModuleList {
                path: list_path.to_owned(),
                source,
            })
        }
    };
    let names = parse_list(&text).map_err(|why| Pid1Error::ModuleList {
        path: list_path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, why),
    })?;
    let mut loaded = 0;
    for name in names {
        let path = Path::new(dir).join(name);
        let shown = path.display().to_string();
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Pid1Error::ModuleMissing { path: shown })
            }
            Err(e) => {
                return Err(Pid1Error::ModuleLoad {
                    path: shown,
                    source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                })
            }
        };
        match finit_module(&file, EMPTY_PARAMS, ModuleInitFlags::empty()) {
            Ok(()) => {
                loaded += 1;
                crate::info_always!(module = name; "module loaded");
            }
            Err(Errno::EEXIST) => crate::info_always!(module = name; "module already present"),
            Err(source) => {
                return Err(Pid1Error::ModuleLoad {
                    path: shown,
                    source,
                })
            }
        }
    }
    Ok(loaded)
}

const EMPTY_PARAMS: &CStr = c"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_keeps_order_and_skips_comments() {
        let list = "# virtio first\nvirtio_ring.ko\n\n virtio.ko  # core\nvsock.ko\n";
        assert_eq!(
            parse_list(list).unwrap(),
            vec!["virtio_ring.ko", "virtio.ko", "vsock.ko"]
        );
    }

    #[test]
    fn list_refuses_paths_and_non_modules() {
        assert!(parse_list("../etc/passwd.ko")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_list("ok.ko\nvsock\n").unwrap_err().contains("line 2"));
    }

    #[test]
    fn missing_list_means_no_modules() {
        assert_eq!(
            load_listed("/nonexistent/modules.list", "/nonexistent").unwrap(),
            0
        );
    }

    #[test]
    fn listed_but_missing_module_is_named() {
        let dir = std::env::temp_dir().join(format!("ei-mod-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("modules.list");
        std::fs::write(&list, "vsock.ko\n").unwrap();
        let err = load_listed(list.to_str().unwrap(), dir.to_str().unwrap()).unwrap_err();
        assert!(
            matches!(&err, Pid1Error::ModuleMissing { path } if path.ends_with("/vsock.ko")),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
