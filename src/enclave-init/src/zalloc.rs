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

    #[test]
    fn freed_and_moved_blocks_are_wiped() {
        let a = ZeroizingAlloc;
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: a fresh 64-byte block, written and read within bounds.
        unsafe {
            let p = a.alloc(layout);
            std::ptr::write_bytes(p, 0xAB, 64);
            let q = a.realloc(p, layout, 4096);
            assert_eq!(*q.add(63), 0xAB, "contents survive realloc");
            // The old block was wiped before release; reading it is not
            // allowed any more, so check the wipe helper itself instead.
            let mut buf = [0xCDu8; 32];
            wipe(buf.as_mut_ptr(), buf.len());
            assert_eq!(buf, [0u8; 32]);
            a.dealloc(q, Layout::from_size_align(4096, 8).unwrap());
        }
    }
}
