//! The secret store: the only place secrets live.
//!
//! - One fixed region, allocated once: `memfd_secret` where the kernel offers
//!   it (the pages leave the kernel's direct map), else anonymous memory;
//!   locked with `mlock` (never swapped) and `MADV_DONTDUMP` (never in a
//!   core dump). Fixed-capacity slots: storing a secret never reallocates,
//!   so no stale copy is left behind.
//! - Names are `heapless` strings; values are only ever borrowed out as
//!   slices into the region.
//! - Removing, clearing or dropping overwrites the bytes with zeros.
//! - `Debug` shows names and lengths, never content; there is no `Display`.
//!
//! Process-wide hardening that goes with it is in [`harden_process`].
//!
//! UNSAFETY: the region is raw memory from `mmap`; this module creates it,
//! hands out slices within its bounds only, and unmaps it once.
#![expect(unsafe_code)]

use std::fmt;

use zeroize::Zeroize;

/// How many secrets the store holds.
pub const SLOTS: usize = 16;
/// The largest secret, in bytes.
pub const SLOT_BYTES: usize = 4096;
const REGION_BYTES: usize = SLOTS * SLOT_BYTES;

/// Why a secret could not be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The region could not be allocated or locked.
    Memory {
        /// What failed.
        op: &'static str,
        /// errno.
        errno: i32,
    },
    /// Every slot is taken.
    Full,
    /// The value exceeds [`SLOT_BYTES`] (neither its content nor its
    /// length: a secret's length is not logged either).
    TooLarge {
        /// The secret's name.
        name: String,
    },
    /// The name is longer than 64 bytes.
    NameTooLong,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::Memory { op, errno } => {
                write!(f, "secret memory: {op} failed (errno {errno})")
            }
            SecretError::Full => write!(f, "secret store full ({SLOTS} secrets)"),
            SecretError::TooLarge { name } => {
                write!(f, "secret {name} is over {SLOT_BYTES} bytes")
            }
            SecretError::NameTooLong => write!(f, "secret name longer than 64 bytes"),
        }
    }
}

impl std::error::Error for SecretError {}

/// How the region is backed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// `memfd_secret`: removed from the kernel's direct map.
    MemfdSecret,
    /// Anonymous private memory, locked.
    Anonymous,
}

/// The locked region.
struct Region {
    ptr: *mut u8,
    backing: Backing,
}

// SAFETY: the region is owned by one SecretStore; access goes through &/&mut
// of the store, so Rust's aliasing rules apply as for a Box<[u8]>.
unsafe impl Send for Region {}

impl Region {
    fn new() -> Result<Region, SecretError> {
        let (ptr, backing) = match memfd_secret_map() {
            Some(p) => (p, Backing::MemfdSecret),
            None => {
                // SAFETY: anonymous private mapping of REGION_BYTES; no file,
                // no fixed address.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        REGION_BYTES,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    )
                };
                if p == libc::MAP_FAILED {
                    return Err(SecretError::Memory {
                        op: "mmap",
                        errno: errno(),
                    });
                }
                (p.cast::<u8>(), Backing::Anonymous)
            }
        };
        let region = Region { ptr, backing };
        // memfd_secret pages are locked by the kernel itself ("locked in the
        // same way as mlock()'ed memory", memfd_secret(2)) and never dumped;
        // anonymous memory needs both.
        if backing == Backing::Anonymous {
            // SAFETY: ptr..ptr+REGION_BYTES is the mapping created above.
            if unsafe { libc::mlock(ptr.cast(), REGION_BYTES) } != 0 {
                return Err(SecretError::Memory {
                    op: "mlock",
                    errno: errno(),
                });
            }
            // SAFETY: as above; the advice only excludes the range from dumps.
            if unsafe { libc::madvise(ptr.cast(), REGION_BYTES, libc::MADV_DONTDUMP) } != 0 {
                return Err(SecretError::Memory {
                    op: "madvise(MADV_DONTDUMP)",
                    errno: errno(),
                });
            }
        }
        Ok(region)
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is REGION_BYTES long, readable, and lives as
        // long as self.
        unsafe { std::slice::from_raw_parts(self.ptr, REGION_BYTES) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as bytes(), writable, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, REGION_BYTES) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.bytes_mut().zeroize();
        // SAFETY: unlocking and unmapping the mapping created in new(); no
        // slice into it outlives self.
        let (unlocked, unmapped) = unsafe {
            let unlocked = self.backing != Backing::Anonymous
                || libc::munlock(self.ptr.cast(), REGION_BYTES) == 0;
            (unlocked, libc::munmap(self.ptr.cast(), REGION_BYTES) == 0)
        };
        // As Firecracker's guest-memory Drop does: a failure here would
        // leave the (already zeroized) pages mapped or locked; it cannot
        // leak content, but it must not pass unnoticed.
        if !unlocked || !unmapped {
            crate::error_always!(munlock_ok = unlocked, munmap_ok = unmapped, errno = errno(); "secret region not released cleanly (its bytes were zeroized first)");
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A region from `memfd_secret(2)`, or `None` where the kernel does not
/// offer it (ENOSYS, or not enabled).
fn memfd_secret_map() -> Option<*mut u8> {
    // SAFETY: memfd_secret takes only flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_memfd_secret, libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let fd = i32::try_from(fd).ok()?;
    // SAFETY: fd is the descriptor just returned; sized, mapped shared (as
    // memfd_secret requires), then closed: the mapping keeps the memory.
    unsafe {
        if libc::ftruncate(fd, REGION_BYTES as libc::off_t) != 0 {
            libc::close(fd);
            return None;
        }
        let p = libc::mmap(
            std::ptr::null_mut(),
            REGION_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        libc::close(fd);
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(p.cast())
    }
}

/// A slot's bookkeeping (not secret).
struct Slot {
    name: heapless::String<64>,
    len: usize,
}

/// The store.
pub struct SecretStore {
    region: Region,
    slots: heapless::Vec<Slot, SLOTS>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for s in &self.slots {
            m.entry(&s.name.as_str(), &format_args!("<{} bytes>", s.len));
        }
        m.finish()
    }
}

impl SecretStore {
    /// Allocates and locks the region.
    pub fn new() -> Result<SecretStore, SecretError> {
        Ok(SecretStore {
            region: Region::new()?,
            slots: heapless::Vec::new(),
        })
    }

    /// How the region is backed.
    pub fn backing(&self) -> Backing {
        self.region.backing
    }

    /// Stores `value` under `name` (replacing an older value of that name).
    /// The caller wipes its own copy.
    pub fn insert(&mut self, name: &str, value: &[u8]) -> Result<(), SecretError> {
        if value.len() > SLOT_BYTES {
            return Err(SecretError::TooLarge {
                name: name.to_owned(),
            });
        }
        let index = match self.slots.iter().position(|s| s.name.as_str() == name) {
            Some(i) => i,
            None => {
                let mut n = heapless::String::new();
                n.push_str(name).map_err(|_| SecretError::NameTooLong)?;
                self.slots
                    .push(Slot { name: n, len: 0 })
                    .map_err(|_| SecretError::Full)?;
                self.slots.len() - 1
            }
        };
        let slot = &mut self.region.bytes_mut()[index * SLOT_BYTES..(index + 1) * SLOT_BYTES];
        slot.zeroize();
        slot[..value.len()].copy_from_slice(value);
        if let Some(s) = self.slots.get_mut(index) {
            s.len = value.len();
        }
        Ok(())
    }

    /// Borrows a secret.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let i = self.slots.iter().position(|s| s.name.as_str() == name)?;
        let len = self.slots.get(i)?.len;
        self.region
            .bytes()
            .get(i * SLOT_BYTES..i * SLOT_BYTES + len)
    }

    /// How many secrets are held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Forgets every secret; the bytes are overwritten with zeros.
    pub fn clear(&mut self) {
        self.region.bytes_mut().zeroize();
        self.slots.clear();
    }

    #[cfg(test)]
    fn region_ptr(&self) -> *const u8 {
        self.region.ptr
    }
}

/// Process-wide hardening for a process that holds secrets: not dumpable
/// (no core dump, no ptrace by non-root peers, /proc/self/mem closed to
/// others), core size limit 0, and for PID 1 every page locked in memory.
pub fn harden_process(lock_all: bool) -> Result<(), SecretError> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(SecretError::Memory {
            op: "prctl(PR_SET_DUMPABLE)",
            errno: errno(),
        });
    }
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit struct for the duration of the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
        return Err(SecretError::Memory {
            op: "setrlimit(RLIMIT_CORE)",
            errno: errno(),
        });
    }
    if lock_all {
        // SAFETY: flags only.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
            return Err(SecretError::Memory {
                op: "mlockall",
                errno: errno(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_replaces_and_wipes() {
        let mut s = SecretStore::new().unwrap();
        s.insert("hume/api-key", b"canary-1234").unwrap();
        s.insert("retell/api-key", b"r").unwrap();
        assert_eq!(s.get("hume/api-key"), Some(&b"canary-1234"[..]));
        s.insert("hume/api-key", b"xy").unwrap();
        assert_eq!(s.get("hume/api-key"), Some(&b"xy"[..]));
        let ptr = s.region_ptr();
        // SAFETY: the region is still mapped; reading slot 0.
        let before = unsafe { std::slice::from_raw_parts(ptr, 16) }.to_vec();
        assert_eq!(&before[..2], b"xy");
        assert!(
            before[2..].iter().all(|b| *b == 0),
            "the replaced value left no tail"
        );
        s.clear();
        // SAFETY: still mapped until s is dropped.
        let after = unsafe { std::slice::from_raw_parts(ptr, REGION_BYTES) };
        assert!(
            after.iter().all(|b| *b == 0),
            "cleared secrets read as zeros"
        );
        assert!(s.get("hume/api-key").is_none());
    }

    #[test]
    fn debug_shows_names_and_lengths_only() {
        let mut s = SecretStore::new().unwrap();
        s.insert("db", b"postgres://user:pw@h/db").unwrap();
        let d = format!("{s:?}");
        assert!(d.contains("db") && d.contains("<23 bytes>"), "{d}");
        assert!(!d.contains("pw@"), "{d}");
    }

    #[test]
    fn limits_are_enforced_without_echoing_values() {
        let mut s = SecretStore::new().unwrap();
        let e = s.insert("big", &[7u8; SLOT_BYTES + 1]).unwrap_err();
        assert_eq!(e, SecretError::TooLarge { name: "big".into() });
        assert_eq!(
            s.insert(&"n".repeat(65), b"v"),
            Err(SecretError::NameTooLong)
        );
        for i in 0..SLOTS {
            s.insert(&format!("s{i}"), b"v").unwrap();
        }
        assert_eq!(s.insert("one-more", b"v"), Err(SecretError::Full));
    }

    /// A value of exactly a slot's size fits, and every slot reads back
    /// its own value (slot i at i × SLOT_BYTES, not slot 0's).
    #[test]
    fn a_full_slot_fits_and_each_slot_reads_its_own_value() {
        let mut s = SecretStore::new().unwrap();
        let full: Vec<u8> = (1..=251u8).cycle().take(SLOT_BYTES).collect();
        s.insert("full", &full).unwrap();
        s.insert("b", b"second").unwrap();
        s.insert("c", b"third!").unwrap();
        assert_eq!(s.get("full"), Some(&full[..]));
        assert_eq!(s.get("b"), Some(&b"second"[..]));
        assert_eq!(s.get("c"), Some(&b"third!"[..]));
        assert_eq!(s.len(), 3);
    }

    /// Each error says what failed in words, with the name but never the
    /// value or its length.
    #[test]
    fn errors_name_what_failed_and_never_a_value_or_length() {
        let shown = [
            SecretError::TooLarge { name: "db".into() }.to_string(),
            SecretError::Full.to_string(),
            SecretError::NameTooLong.to_string(),
            SecretError::Memory {
                op: "mlock",
                errno: 12,
            }
            .to_string(),
        ];
        assert_eq!(
            shown,
            [
                "secret db is over 4096 bytes",
                "secret store full (16 secrets)",
                "secret name longer than 64 bytes",
                "secret memory: mlock failed (errno 12)",
            ]
        );
    }

    /// The region is memfd_secret memory exactly when the kernel offers
    /// memfd_secret (probed here on its own), else locked anonymous memory.
    #[test]
    fn the_backing_is_memfd_secret_where_the_kernel_offers_it() {
        // SAFETY: memfd_secret takes only flags and returns a descriptor.
        let fd = unsafe { libc::syscall(libc::SYS_memfd_secret, libc::O_CLOEXEC) };
        let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0);
        let offered = fd.is_some();
        if let Some(fd) = fd {
            // SAFETY: closing the descriptor just returned.
            unsafe { libc::close(fd) };
        }
        let s = SecretStore::new().unwrap();
        let want = if offered {
            Backing::MemfdSecret
        } else {
            Backing::Anonymous
        };
        assert_eq!(s.backing(), want);
    }

    /// Dropping the store unmaps its region (after wiping it, which the
    /// allocator-independent `clear` test shows): the mapping is gone from
    /// /proc/self/maps.
    #[test]
    fn dropping_the_store_unmaps_its_region() {
        let mut s = SecretStore::new().unwrap();
        s.insert("k", b"v").unwrap();
        let start = format!("{:x}-", s.region_ptr() as usize);
        let mapped = || {
            std::fs::read_to_string("/proc/self/maps")
                .unwrap()
                .lines()
                .any(|l| l.starts_with(&start))
        };
        assert!(mapped(), "the region is not where the store says");
        drop(s);
        assert!(!mapped(), "the region is still mapped after the drop");
    }

    /// `harden_process` in a process of its own (it would change the test
    /// runner's): not dumpable, core limit 0, and with `lock_all` memory
    /// locked. Runs the ignored test below as a child.
    #[test]
    fn hardening_holds_in_a_child_process() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "secrets::tests::child_hardens_itself",
                "--test-threads=1",
            ])
            .env("ENCLAVE_SECRETS_HARDEN_CHILD", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran no test: {text}");
    }

    #[test]
    #[ignore = "run in its own process by hardening_holds_in_a_child_process"]
    fn child_hardens_itself() {
        assert!(
            std::env::var_os("ENCLAVE_SECRETS_HARDEN_CHILD").is_some(),
            "only as the child of hardening_holds_in_a_child_process"
        );
        harden_process(true).unwrap();
        // SAFETY: prctl with integer arguments only.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }, 0);
        let mut core = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: a valid rlimit struct to fill.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut core) }, 0);
        assert_eq!((core.rlim_cur, core.rlim_max), (0, 0));
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let locked_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmLck:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        assert!(locked_kb > 0, "mlockall locked nothing: {status}");
    }
}
