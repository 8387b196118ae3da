//! The pseudo filesystems PID 1 mounts, as a table: review happens here.
//!
//! No tmpfs and no disk: the enclave writes nothing to any filesystem, so
//! there is no place for it to write to. `EBUSY` (already mounted, e.g. by
//! `devtmpfs.mount=1`) is fine.

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use super::Pid1Error;

/// One mount and why it exists.
pub struct Mount {
    /// Source name shown in /proc/mounts.
    pub source: &'static str,
    /// Mount point (present in the image, or provided by sysfs).
    pub target: &'static str,
    /// Filesystem type.
    pub fstype: &'static str,
    /// Flags.
    pub flags: MsFlags,
    /// Options.
    pub data: Option<&'static str>,
    /// A kernel without this filesystem is acceptable.
    pub optional: bool,
}

/// What is mounted, in order (sysfs before configfs, which lives below it).
pub const MOUNTS: &[Mount] = &[
    // Device nodes: console, vsock, sev-guest, tdx_guest. Debian's kernel has
    // no CONFIG_DEVTMPFS_MOUNT, so nobody else mounts it for an initramfs.
    Mount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: Some("mode=0755"),
        optional: false,
    },
    // The kernel command line (configuration overrides) and our own status.
    Mount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
        data: None,
        optional: false,
    },
    // Needed for /sys/kernel/config below.
    Mount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
        data: None,
        optional: false,
    },
    // configfs-tsm attestation reports (Linux >= 6.7). Older or smaller
    // kernels have no configfs: evidence then comes from the ioctls.
    Mount {
        source: "configfs",
        target: "/sys/kernel/config",
        fstype: "configfs",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
        data: None,
        optional: true,
    },
];

/// Mounts every entry of [`MOUNTS`].
pub fn mount_all() -> Result<(), Pid1Error> {
    for m in MOUNTS {
        match mount(Some(m.source), m.target, Some(m.fstype), m.flags, m.data) {
            Ok(()) => crate::info_always!(fs = m.fstype, target = m.target; "mounted"),
            Err(Errno::EBUSY) => {
                crate::info_always!(fs = m.fstype, target = m.target; "already mounted")
            }
            Err(e @ (Errno::ENODEV | Errno::ENOENT)) if m.optional => {
                crate::info_always!(fs = m.fstype, target = m.target, error = e.desc(); "not available in this kernel")
            }
            Err(source) => {
                return Err(Pid1Error::Mount {
                    target: m.target,
                    source,
                })
            }
        }
    }
    Ok(())
}
