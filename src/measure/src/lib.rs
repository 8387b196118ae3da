//! Launch measurement (placeholder; filled by the measurement issue).
#![forbid(unsafe_code)]
