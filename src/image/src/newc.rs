//! The newc ("070701") cpio format, as the kernel reads it
//! (docs.kernel.org/driver-api/early-userspace/buffer-format.html).
//!
//! Each entry: a 110-byte ASCII header of `070701` and 13 eight-digit hex
//! fields (ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor
//! rdevminor namesize check), the NUL-terminated name padded to 4 bytes, the
//! data padded to 4 bytes. The archive ends with `TRAILER!!!`.

use std::fmt::Write as _;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file and its bytes.
    File(Vec<u8>),
    /// A character device node.
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// One archive entry. Paths are relative (`etc/enclave/config.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path, no leading `/`.
    pub path: String,
    /// Permission bits (the type bits come from `kind`).
    pub perm: u32,
    /// What it is.
    pub kind: Kind,
}

impl Entry {
    /// A directory.
    pub fn dir(path: &str, perm: u32) -> Entry {
        Entry {
            path: path.to_owned(),
            perm,
            kind: Kind::Dir,
        }
    }

    /// A regular file.
    pub fn file(path: &str, perm: u32, data: Vec<u8>) -> Entry {
        Entry {
            path: path.to_owned(),
            perm,
            kind: Kind::File(data),
        }
    }

    /// A character device.
    pub fn char_device(path: &str, perm: u32, major: u32, minor: u32) -> Entry {
        Entry {
            path: path.to_owned(),
            perm,
            kind: Kind::CharDevice { major, minor },
        }
    }
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

/// Writes `entries` as one archive: sorted bytewise by path (a parent sorts
/// before its children), inodes numbered 1..n in that order, owner 0, the
/// given mtime, then the trailer.
pub fn write(entries: &[Entry], mtime: u32) -> Vec<u8> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let mut out = Vec::new();
    for (i, e) in sorted.iter().enumerate() {
        let ino = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let (mode, nlink, data, rdev): (u32, u32, &[u8], (u32, u32)) = match &e.kind {
            Kind::Dir => (S_IFDIR | e.perm, 2, &[], (0, 0)),
            Kind::File(d) => (S_IFREG | e.perm, 1, d, (0, 0)),
            Kind::CharDevice { major, minor } => (S_IFCHR | e.perm, 1, &[], (*major, *minor)),
        };
        entry(&mut out, &e.path, ino, mode, nlink, mtime, data, rdev);
    }
    entry(&mut out, "TRAILER!!!", 0, 0, 1, 0, &[], (0, 0));
    out
}

#[expect(
    clippy::too_many_arguments,
    reason = "mirrors the header's fields one to one"
)]
fn entry(
    out: &mut Vec<u8>,
    name: &str,
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    data: &[u8],
    rdev: (u32, u32),
) {
    let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let namesize = u32::try_from(name.len() + 1).unwrap_or(u32::MAX);
    let mut header = String::with_capacity(110);
    header.push_str("070701");
    for field in [
        ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev.0, rdev.1, namesize, 0,
    ] {
        let _ = write!(header, "{field:08x}");
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_matches_the_kernel_format() {
        let a = write(&[Entry::file("init", 0o755, b"abc".to_vec())], 7);
        // 110-byte header + "init\0" (5) = 115, padded to 116; data 3 padded to 4.
        assert_eq!(&a[..6], b"070701");
        assert_eq!(&a[6..14], b"00000001"); // ino
        assert_eq!(&a[14..22], b"000081ed"); // S_IFREG | 0755
        assert_eq!(&a[38..46], b"00000001"); // nlink
        assert_eq!(&a[46..54], b"00000007"); // mtime
        assert_eq!(&a[54..62], b"00000003"); // filesize
        assert_eq!(&a[94..102], b"00000005"); // namesize
        assert_eq!(&a[110..115], b"init\0");
        assert_eq!(&a[116..119], b"abc");
        assert_eq!(a.len() % 4, 0);
        assert!(a.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let e = vec![
            Entry::dir("etc", 0o755),
            Entry::file("etc/x", 0o644, vec![1]),
            Entry::char_device("dev/console", 0o600, 5, 1),
        ];
        let mut r = e.clone();
        r.reverse();
        assert_eq!(write(&e, 1), write(&r, 1));
    }
}
