//! Call-processing service building blocks (issue 7).
//!
//! * [`pii`]: phone normalisation, keyed pseudonymisation, redaction and
//!   masking of transcripts.
//! * [`audio`]: WAV validation, G.711 decoding, level and activity analysis.
//! * [`multipart`]: `multipart/form-data` parsing and encoding.
//! * [`call`]: the `POST /v1/calls` metadata, result, and its full and safe
//!   (log) JSON forms.
//! * [`retell`]: Retell webhook signatures, replay guard, sanitized event
//!   records.
//!
//! Pure code: no I/O, no unsafe, no panics on any input. It is linked into
//! the guest PID 1 binary.
#![forbid(unsafe_code)]

pub mod audio;
pub mod call;
pub mod multipart;
pub mod pii;
pub mod retell;
