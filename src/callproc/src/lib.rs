//! Call-processing service building blocks (issue 7 item 4).
//!
//! Pure code: no I/O, no unsafe, no panics on any input. It is linked into
//! the guest PID 1 binary.
#![forbid(unsafe_code)]

pub mod audio;
pub mod pii;
