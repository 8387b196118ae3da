//! [`EventLogError`]: why bytes are not a well-formed TCG crypto-agile event
//! log (or CCEL ACPI table), or why a well-formed log cannot be replayed into
//! the TDX RTMRs.
//!
//! Every variant names the structure or field and the absolute byte offset in
//! the input handed to the parser; event numbers are those of
//! [`Event::number`](super::Event::number) (the Spec ID header is event 0).
//! Nothing here carries the log's own bytes, only lengths, offsets and ids.

use std::fmt;

/// A structural problem with an event log, a CCEL table, or its replay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventLogError {
    /// The input is larger than any event log this parser accepts.
    TooLarge {
        /// Input length.
        len: usize,
        /// The maximum ([`MAX_LOG_LEN`](super::MAX_LOG_LEN)).
        max: usize,
    },
    /// The input ended inside `what`.
    Truncated {
        /// The structure or field being read.
        what: &'static str,
        /// Absolute offset where it starts.
        offset: usize,
        /// Bytes it needs from there.
        needed: usize,
        /// Bytes left from there.
        available: usize,
    },
    /// A declared size runs past the end of the input.
    SizeOutOfBounds {
        /// The size field.
        field: &'static str,
        /// Absolute offset of the size field.
        offset: usize,
        /// The declared size.
        declared: u64,
        /// Bytes left after the size field.
        available: usize,
    },
    /// A field of the first event (the TCG_PCR_EVENT carrying the
    /// TCG_EfiSpecIdEvent) does not have the value the specification requires.
    SpecIdHeader {
        /// The field.
        field: &'static str,
        /// Absolute offset of the field.
        offset: usize,
        /// What was found (numbers in decimal or hex, never log bytes).
        got: String,
        /// What is required.
        want: &'static str,
    },
    /// The Spec ID event names an algorithm this parser does not know, so
    /// its digests cannot be delimited with confidence.
    UnknownAlgorithm {
        /// The TPM_ALG_ID.
        alg: u16,
        /// Absolute offset of the id.
        offset: usize,
    },
    /// The Spec ID event gives a known algorithm a digest size other than its own.
    AlgorithmSize {
        /// The TPM_ALG_ID.
        alg: u16,
        /// Absolute offset of the size field.
        offset: usize,
        /// The declared size.
        got: u16,
        /// The algorithm's size.
        want: u16,
    },
    /// The Spec ID event lists an algorithm twice.
    DuplicateAlgorithm {
        /// The TPM_ALG_ID.
        alg: u16,
        /// Absolute offset of the second listing.
        offset: usize,
    },
    /// The Spec ID event lists no algorithm, or more than
    /// [`MAX_ALGORITHMS`](super::MAX_ALGORITHMS).
    AlgorithmCount {
        /// Absolute offset of `numberOfAlgorithms`.
        offset: usize,
        /// The count found.
        got: u32,
    },
    /// The log does not record SHA-384, the algorithm of the TDX RTMRs.
    NoSha384,
    /// An event's digest list does not have one digest per Spec ID algorithm.
    DigestCount {
        /// The event.
        event: u32,
        /// Absolute offset of the count.
        offset: usize,
        /// The count found.
        got: u32,
        /// The number of algorithms of the Spec ID event.
        want: usize,
    },
    /// An event carries a digest of an algorithm the Spec ID event does not
    /// list (or lists it twice).
    EventAlgorithm {
        /// The event.
        event: u32,
        /// Absolute offset of the algorithm id.
        offset: usize,
        /// The TPM_ALG_ID.
        alg: u16,
    },
    /// Bytes that are neither an event nor the uniform 0xFF/0x00 padding of
    /// an unused log area follow the padding's start.
    DataAfterPadding {
        /// Absolute offset where the padding starts.
        padding_at: usize,
        /// Absolute offset of the first byte that is not padding.
        offset: usize,
    },
    /// More events than [`MAX_EVENTS`](super::MAX_EVENTS).
    TooManyEvents {
        /// The maximum.
        max: usize,
    },
    /// A measured event (not EV_NO_ACTION) names a measurement register that
    /// is not an RTMR (CC MR index 1-4).
    MrIndex {
        /// The event.
        event: u32,
        /// Absolute offset of the event.
        offset: usize,
        /// The index found.
        mr_index: u32,
    },
    /// A field of a CCEL ACPI table is wrong.
    CcelTable {
        /// The field.
        field: &'static str,
        /// Absolute offset of the field.
        offset: usize,
        /// What was found.
        got: String,
        /// What is required.
        want: &'static str,
    },
}

impl fmt::Display for EventLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(f, "event log of {len} bytes is larger than the {max}-byte maximum")
            }
            Self::Truncated {
                what,
                offset,
                needed,
                available,
            } => write!(
                f,
                "{what} at offset {offset:#x}: truncated, needs {needed} bytes, {available} left"
            ),
            Self::SizeOutOfBounds {
                field,
                offset,
                declared,
                available,
            } => write!(
                f,
                "{field} at offset {offset:#x} declares {declared} bytes, only {available} left"
            ),
            Self::SpecIdHeader {
                field,
                offset,
                got,
                want,
            } => write!(
                f,
                "Spec ID event: {field} at offset {offset:#x} is {got}, want {want}"
            ),
            Self::UnknownAlgorithm { alg, offset } => write!(
                f,
                "Spec ID event: unknown digest algorithm {alg:#06x} at offset {offset:#x}"
            ),
            Self::AlgorithmSize {
                alg,
                offset,
                got,
                want,
            } => write!(
                f,
                "Spec ID event: algorithm {alg:#06x} at offset {offset:#x} has digest size {got}, want {want}"
            ),
            Self::DuplicateAlgorithm { alg, offset } => write!(
                f,
                "Spec ID event: algorithm {alg:#06x} listed again at offset {offset:#x}"
            ),
            Self::AlgorithmCount { offset, got } => write!(
                f,
                "Spec ID event: numberOfAlgorithms at offset {offset:#x} is {got}, want 1 to {}",
                super::MAX_ALGORITHMS
            ),
            Self::NoSha384 => f.write_str(
                "the Spec ID event does not list SHA-384 (0x000c), the algorithm of the TDX RTMRs",
            ),
            Self::DigestCount {
                event,
                offset,
                got,
                want,
            } => write!(
                f,
                "event {event}: digest count at offset {offset:#x} is {got}, want {want} (one per Spec ID algorithm)"
            ),
            Self::EventAlgorithm { event, offset, alg } => write!(
                f,
                "event {event}: digest algorithm {alg:#06x} at offset {offset:#x} is not listed by the Spec ID event, or repeats"
            ),
            Self::DataAfterPadding { padding_at, offset } => write!(
                f,
                "padding starting at offset {padding_at:#x} is followed by other bytes at offset {offset:#x}"
            ),
            Self::TooManyEvents { max } => write!(f, "more than {max} events"),
            Self::MrIndex {
                event,
                offset,
                mr_index,
            } => write!(
                f,
                "event {event} at offset {offset:#x} extends CC MR index {mr_index}, not an RTMR (1-4)"
            ),
            Self::CcelTable {
                field,
                offset,
                got,
                want,
            } => write!(
                f,
                "CCEL table: {field} at offset {offset:#x} is {got}, want {want}"
            ),
        }
    }
}

impl std::error::Error for EventLogError {}
