//! Syscalls that nix does not wrap, behind safe functions.
//!
//! UNSAFETY: this is the only module of the guest that may use `unsafe`: raw
//! syscalls (getrandom, Landlock) and taking ownership of file descriptors
//! the kernel returned. Everything else calls the safe wrappers below.
#![expect(unsafe_code)]

pub mod landlock;

use std::io;

/// Fills `buf` from the kernel CRNG without blocking. `Ok(false)` means the
/// CRNG is not initialised yet (EAGAIN).
pub fn getrandom_nonblocking(buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid, writable buffer of exactly `rest.len()`
        // bytes for the duration of the call; getrandom writes at most that.
        let n =
            unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), libc::GRND_NONBLOCK) };
        if n < 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(false),
                Some(libc::EINTR) => continue,
                _ => return Err(err),
            }
        }
        filled += n.unsigned_abs();
    }
    Ok(true)
}

// IOCTL_VM_SOCKETS_GET_LOCAL_CID = _IO(7, 0xb9) on /dev/vsock; the kernel
// writes the CID through the argument pointer (vsock(7)).
nix::ioctl_read_bad!(
    vm_sockets_get_local_cid,
    nix::request_code_none!(7, 0xb9),
    u32
);

/// This VM's vsock CID, from `/dev/vsock`.
pub fn vsock_local_cid() -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    let dev = std::fs::File::open("/dev/vsock")?;
    let mut cid: u32 = 0;
    // SAFETY: `dev` is an open /dev/vsock descriptor for the whole call and
    // `cid` is a valid, writable u32, which is what this ioctl writes.
    unsafe { vm_sockets_get_local_cid(dev.as_raw_fd(), &mut cid) }?;
    Ok(cid)
}
