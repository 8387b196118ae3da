//! The global allocator: the system allocator, except that every block is
//! overwritten with zeros before it is freed (and before `realloc` lets go of
//! the old block).
//!
//! Why: secret bytes pass through ordinary heap buffers on their way into the
//! locked secret store: TLS plaintext records, HTTP bodies, the JSON that
//! Vault's unwrap returns. Those buffers are freed in many places, some in
//! dependencies we do not control. Wiping at the allocator catches all of
//! them at once, so no freed heap block keeps a copy for a later allocation
//! (or a memory dump) to find.
//!
//! UNSAFETY: implementing `GlobalAlloc` is unsafe by definition; each method
//! forwards to `System` under the caller's guarantees and writes only inside
//! the block being released.
#![expect(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// See the module documentation.
pub struct ZeroizingAlloc;

/// Overwrites `len` bytes at `ptr` with zeros the optimiser keeps.
///
/// One `memset` (a byte-wise volatile loop cost 17% of a call's CPU time
/// under load), then an empty `asm!` block that is handed the pointer and
/// may read any memory (no `nomem`/`readonly` option): the compiler must
/// assume it reads the zeros, so the stores before the free are not dead
/// and cannot be removed (BoringSSL's OPENSSL_cleanse does the same).
/// `std::hint::black_box` would be faster to write but is documented as
/// best effort only.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes.
#[cfg(target_arch = "x86_64")]
unsafe fn wipe(ptr: *mut u8, len: usize) {
    // SAFETY: the caller guarantees ptr..ptr+len is writable.
    unsafe { std::ptr::write_bytes(ptr, 0, len) };
    // SAFETY: the asm block is empty: it executes no instruction, touches
    // no register but the input and does not use the stack.
    unsafe { std::arch::asm!("/* {0} */", in(reg) ptr, options(nostack, preserves_flags)) };
}

/// Elsewhere: the portable volatile loop.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn wipe(ptr: *mut u8, len: usize) {
    for i in 0..len {
        // SAFETY: i < len and the caller guarantees ptr..ptr+len is writable.
        unsafe { std::ptr::write_volatile(ptr.add(i), 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

// SAFETY: allocation and deallocation are System's; we only add wiping of
// blocks we own at the time (between the caller handing them back and System
// taking them), and realloc preserves the contents up to min(old, new) size.
unsafe impl GlobalAlloc for ZeroizingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees (non-zero size).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for alloc.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller hands back a live block of layout.size() bytes
        // that it no longer uses; we wipe it, then give it to System.
        unsafe {
            wipe(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Never let System move the block itself: it would free the old one
        // without wiping it.
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: new_layout has non-zero size (GlobalAlloc::realloc's
        // contract) and the old block is live for layout.size() bytes.
        unsafe {
            let new = System.alloc(new_layout);
            if new.is_null() {
                return new;
            }
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            wipe(ptr, layout.size());
            System.dealloc(ptr, layout);
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the `len` bytes at `p` are all zero, read with volatile loads
    /// so the optimiser cannot reason about what it "knows" is there.
    ///
    /// # Safety
    /// `p..p+len` must be readable.
    unsafe fn zeros(p: *const u8, len: usize) -> Result<(), String> {
        // SAFETY: the caller guarantees the range is readable.
        let got: Vec<u8> = (0..len)
            .map(|i| unsafe { std::ptr::read_volatile(p.add(i)) })
            .collect();
        if got.iter().all(|&b| b == 0) {
            Ok(())
        } else {
            Err(format!("{got:02x?}"))
        }
    }

    /// Looks at the bytes of blocks after ZeroizingAlloc handed them back to
    /// System: glibc's per-thread cache returns the block just freed to the
    /// next allocation of the same size in the same thread, with its old
    /// bytes (bar the cache's own 16-byte link at the start). A block that
    /// was not wiped still holds the 0xAB pattern there.
    ///
    /// Why this way: the wipe's enemy is dead-store elimination, which only
    /// the optimiser does: stores right before `free` are dead to it unless
    /// something may read them (the empty `asm!` in `wipe`). So the check
    /// has to see the real allocator after the real `free`, with the same
    /// inlining the release build gets: a spy allocator in between would
    /// read the bytes itself and keep the stores alive. This test therefore
    /// also runs optimised, in `scripts/test`:
    /// `cargo test --release -p enclave-init zalloc` (the release profile:
    /// LTO, opt-level "s", as the guest). Without the `asm!` barrier it
    /// fails there, though it still passes in a debug build.
    /// Reading a block System handed out uninitialised is a measurement of
    /// the machine, done with volatile loads, not something the program does.
    #[test]
    fn freed_and_moved_blocks_are_wiped() {
        let a = ZeroizingAlloc;
        let layout = Layout::from_size_align(64, 8).unwrap();
        const LINK: usize = 16; // glibc tcache: next pointer and key
                                // SAFETY: every block is System's or ours, used within its size;
                                // freed blocks are only looked at once System has handed them out
                                // again.
        unsafe {
            // A freed block.
            let p = a.alloc(layout);
            assert!(!p.is_null());
            std::ptr::write_bytes(p, 0xAB, 64);
            // The pattern is read (by an opaque use), so its stores are live.
            std::arch::asm!("/* {0} */", in(reg) p, options(nostack, preserves_flags));
            a.dealloc(p, layout);
            let again = System.alloc(layout);
            assert_eq!(
                again, p,
                "glibc did not hand the freed block back; this check needs its tcache"
            );
            zeros(again.add(LINK), 64 - LINK)
                .map_err(|b| format!("freed block not wiped: {b}"))
                .unwrap();
            System.dealloc(again, layout);

            // A moved block: realloc copies, then wipes and frees the old one.
            let p = a.alloc(layout);
            std::ptr::write_bytes(p, 0xAB, 64);
            std::arch::asm!("/* {0} */", in(reg) p, options(nostack, preserves_flags));
            let q = a.realloc(p, layout, 4096);
            assert!(!q.is_null() && q != p);
            assert_eq!(
                std::ptr::read_volatile(q.add(63)),
                0xAB,
                "contents survive realloc"
            );
            let again = System.alloc(layout);
            assert_eq!(
                again, p,
                "glibc did not hand the old block back; this check needs its tcache"
            );
            zeros(again.add(LINK), 64 - LINK)
                .map_err(|b| format!("moved-from block not wiped: {b}"))
                .unwrap();
            System.dealloc(again, layout);
            a.dealloc(q, Layout::from_size_align(4096, 8).unwrap());
        }
    }
}
