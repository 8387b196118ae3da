//! Byte layouts of SEV-SNP, TDX and Azure vTPM evidence, and the REPORT_DATA
//! binding.
//!
//! Shared by the guest (`enclave-init`, which requests evidence) and the host
//! (the appraisal and `enclavectl evidence inspect`). Parsing only: no I/O, no
//! cryptographic verification. Every parser takes untrusted bytes and returns
//! [`FormatError`] on anything malformed; none panics.
//!
//! Module map:
//!
//! - [`snp`]: SEV-SNP `AttestationReport` / `ReceivedReport`, `TcbVersion`,
//!   `GuestPolicy`, `PlatformInfo`, `KeyInfo`, and the certificate table
//!   (`CertTable`).
//! - [`tdx`]: TDX `TdReport` (TDREPORT_STRUCT) and `Quote` / `ReceivedQuote`
//!   (quote versions 4 and 5).
//! - [`eventlog`]: the TCG crypto-agile event log of TDX firmware (CCEL), its
//!   ACPI table, what each event measures, and the replay into RTMR0-3
//!   ([`eventlog::EventLogError`]).
//! - [`binding`]: the one REPORT_DATA construction used by guest and verifier.
//! - [`azure`]: the Azure confidential VM HCL report (vTPM NV `0x01400001`):
//!   header, SNP report or TDREPORT, IGVM request data, variable data.
//! - [`tpm`]: TPM 2.0 quote structures (TPMS_ATTEST, TPMT_SIGNATURE,
//!   TPML_PCR_SELECTION) and the few commands a guest sends its vTPM.
//! - [`nitro`]: AWS Nitro Enclaves attestation documents (COSE_Sign1 over
//!   the NSM's CBOR map), with their own [`nitro::DocumentError`] (offset and
//!   problem).
//! - [`nsm`]: the AWS Nitro Secure Module's `Attestation` request and
//!   response (CBOR), as exchanged with `/dev/nsm`.
//! - [`FormatError`]: the error type of every parser.
//!
//! Conventions (`shared/docs/style.md` §6.4): one struct per specification
//! table, fields in table order with the specification's names in snake_case,
//! offsets in the field documentation; reserved ranges are not stored, are
//! checked to be zero on parse and are written as zero. Signatures are checked
//! over the received bytes (`ReceivedReport::signed_bytes`,
//! `ReceivedQuote::signed_bytes`), never over a re-encoding.
//!
//! Cargo feature `serde` (off by default, so the guest stays small):
//! `serde::Serialize` for every parsed structure, every field included, byte
//! strings as lowercase hex. This is the JSON view of `enclavectl evidence
//! inspect`.
#![forbid(unsafe_code)]

pub mod azure;
pub mod binding;
mod bytes;
mod error;
pub mod eventlog;
mod json;
pub mod nitro;
pub mod nsm;
pub mod snp;
pub mod tdx;
pub mod tpm;

pub use error::{CertTableProblem, FormatError};
