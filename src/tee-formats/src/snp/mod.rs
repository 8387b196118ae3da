//! AMD SEV-SNP evidence.
//!
//! - [`report`]: [`AttestationReport`] (the 1184-byte ATTESTATION_REPORT, versions
//!   2, 3/4 and 5) and [`ReceivedReport`] (the report plus the bytes it came from).
//! - [`fields`]: [`TcbVersion`] (+ [`Generation`]-dependent decoding), [`GuestPolicy`],
//!   [`PlatformInfo`], [`KeyInfo`], [`Signature`].
//! - [`cert_table`]: [`CertTable`], the GUID-indexed certificate table of the
//!   extended report / configfs-tsm `auxblob`.

pub mod cert_table;
pub mod fields;
pub mod report;

pub use cert_table::{CertKind, CertTable, CertTableEntry, Guid};
pub use fields::{
    FirmwareVersion, Generation, GuestPolicy, KeyInfo, PlatformInfo, Signature, SigningKey,
    TcbComponents, TcbVersion,
};
pub use report::{AttestationReport, Cpuid, ReceivedReport, ReportLayout, REPORT_SIZE, SIGNED_LEN};
