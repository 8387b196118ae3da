//! [`FormatError`]: why a byte string is not a well-formed piece of evidence.
//!
//! Every variant names the structure or field and, where it has one, the byte
//! offset (absolute, from the start of the input passed to `parse`), so that a
//! verifier can report exactly what was wrong with the peer's bytes. All
//! variants describe a peer fault (malformed evidence), except
//! [`FormatError::TooLarge`] (the caller asked to encode something that does not
//! fit the format) and [`FormatError::GenerationNotInReport`] (the caller must
//! supply the CPU generation).

use std::fmt;

/// A structural problem with SEV-SNP or TDX evidence bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// The input ended before `what` was complete: `needed` bytes (an absolute
    /// end offset) were required, only `got` were present.
    Truncated {
        /// The structure or field being read.
        what: &'static str,
        /// Absolute end offset the structure needs.
        needed: usize,
        /// Absolute length actually available.
        got: usize,
    },
    /// A length (of the whole input or a declared length field) is not the one
    /// the format requires.
    BadLength {
        /// The structure or length field.
        field: &'static str,
        /// Absolute offset of the length field (0 for the input length).
        offset: usize,
        /// The length found.
        got: u64,
        /// The length required.
        expected: u64,
    },
    /// A declared length runs past the end of its enclosing buffer.
    LengthOutOfBounds {
        /// The length field.
        field: &'static str,
        /// Absolute offset of the length field.
        offset: usize,
        /// The declared length.
        declared: u64,
        /// Bytes actually available after the length field.
        available: usize,
    },
    /// A length-delimited region holds bytes its contents do not account for.
    TrailingBytes {
        /// The region.
        what: &'static str,
        /// Absolute offset of the first unaccounted byte.
        offset: usize,
        /// Number of unaccounted bytes.
        len: usize,
    },
    /// A structure version this crate does not implement.
    UnsupportedVersion {
        /// The structure.
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// A type or selector field holds a value this crate does not implement
    /// (TEE type, attestation key type, body type, certification data type,
    /// TDREPORT type).
    UnsupportedValue {
        /// The field.
        field: &'static str,
        /// Absolute offset of the field.
        offset: usize,
        /// The value found.
        value: u64,
    },
    /// A reserved, must-be-zero byte range is not zero.
    ReservedNotZero {
        /// The structure holding the range.
        what: &'static str,
        /// Absolute offset of the start of the reserved range.
        offset: usize,
        /// Length of the reserved range.
        len: usize,
    },
    /// The CPUID family/model in an SNP report matches no known generation.
    UnknownGeneration {
        /// CPUID_FAM_ID (extended family + base family).
        family: u8,
        /// CPUID_MOD_ID (extended model << 4 | model).
        model: u8,
    },
    /// The report (version 2) carries no CPUID bytes: the caller must supply
    /// the CPU generation.
    GenerationNotInReport {
        /// The report version.
        version: u32,
    },
    /// An entry of an SNP certificate table is invalid.
    CertTableEntry {
        /// Zero-based index of the entry in the table.
        index: usize,
        /// What is wrong with it.
        problem: CertTableProblem,
    },
    /// A value is too large to be encoded in its length field.
    TooLarge {
        /// The field that cannot hold it.
        field: &'static str,
        /// The length that does not fit.
        len: usize,
    },
    /// CBOR (the NSM messages) that is not what the format requires: wrong
    /// major type, indefinite length, unknown or repeated key, bad text.
    Cbor {
        /// The message or field being read.
        what: &'static str,
        /// Absolute offset of the offending item.
        offset: usize,
        /// What is wrong.
        problem: &'static str,
    },
}

/// What is wrong with one entry of an SNP certificate table
/// ([`FormatError::CertTableEntry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertTableProblem {
    /// The entry's data starts inside the GUID table itself.
    OffsetInsideTable {
        /// The entry's offset.
        offset: u32,
        /// Length of the GUID table including its terminator.
        table_len: usize,
    },
    /// The entry's data runs past the end of the buffer.
    OutOfBounds {
        /// The entry's offset.
        offset: u32,
        /// The entry's length.
        length: u32,
        /// Length of the whole buffer.
        buffer_len: usize,
    },
    /// The entry has length zero.
    Empty,
    /// The entry's data overlaps the data of entry `other`.
    Overlap {
        /// Index of the entry it overlaps.
        other: usize,
    },
    /// The entry repeats the GUID of entry `other`.
    DuplicateGuid {
        /// Index of the first entry with that GUID.
        other: usize,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { what, needed, got } => {
                write!(f, "{what}: truncated, needs {needed} bytes, got {got}")
            }
            Self::BadLength {
                field,
                offset,
                got,
                expected,
            } => write!(
                f,
                "{field} (offset {offset:#x}): length {got}, expected {expected}"
            ),
            Self::LengthOutOfBounds {
                field,
                offset,
                declared,
                available,
            } => write!(
                f,
                "{field} (offset {offset:#x}): declares {declared} bytes, only {available} available"
            ),
            Self::TrailingBytes { what, offset, len } => {
                write!(f, "{what}: {len} unaccounted bytes at offset {offset:#x}")
            }
            Self::UnsupportedVersion { what, version } => {
                write!(f, "{what}: unsupported version {version}")
            }
            Self::UnsupportedValue {
                field,
                offset,
                value,
            } => write!(f, "{field} (offset {offset:#x}): unsupported value {value:#x}"),
            Self::ReservedNotZero { what, offset, len } => write!(
                f,
                "{what}: reserved bytes at offset {offset:#x} ({len} bytes) are not zero"
            ),
            Self::UnknownGeneration { family, model } => write!(
                f,
                "CPUID family {family:#04x} model {model:#04x} is no known SEV-SNP generation"
            ),
            Self::GenerationNotInReport { version } => write!(
                f,
                "report version {version} carries no CPUID: the CPU generation must be supplied"
            ),
            Self::CertTableEntry { index, problem } => {
                write!(f, "certificate table entry {index}: {problem}")
            }
            Self::TooLarge { field, len } => {
                write!(f, "{field}: {len} bytes do not fit the length field")
            }
            Self::Cbor {
                what,
                offset,
                problem,
            } => write!(f, "{what} (offset {offset:#x}): {problem}"),
        }
    }
}

impl fmt::Display for CertTableProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OffsetInsideTable { offset, table_len } => write!(
                f,
                "offset {offset:#x} lies inside the {table_len}-byte GUID table"
            ),
            Self::OutOfBounds {
                offset,
                length,
                buffer_len,
            } => write!(
                f,
                "offset {offset:#x} + length {length} runs past the {buffer_len}-byte buffer"
            ),
            Self::Empty => f.write_str("length is zero"),
            Self::Overlap { other } => write!(f, "data overlaps entry {other}"),
            Self::DuplicateGuid { other } => write!(f, "GUID repeats entry {other}"),
        }
    }
}

impl std::error::Error for FormatError {}
