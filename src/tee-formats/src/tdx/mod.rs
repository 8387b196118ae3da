//! Intel TDX evidence.
//!
//! - [`tdreport`]: [`TdReport`], the 1024-byte TDREPORT_STRUCT (REPORTMACSTRUCT,
//!   TEE_TCB_INFO, TDINFO).
//! - [`quote`]: [`Quote`] (versions 4 and 5, ECDSA P-256) and [`ReceivedQuote`]
//!   (the quote plus the bytes it came from).
//! - [`body`]: the TD quote bodies [`TdQuoteBody10`], [`TdQuoteBody15`],
//!   [`TdQuoteBody15Ex`], and [`TdAttributes`].
//! - [`measurement`]: the TDX image identity (`measurement` claim) over MRTD,
//!   RTMR1 and RTMR2.

pub mod body;
pub mod measurement;
pub mod quote;
pub mod tdreport;

pub use body::{TdAttributes, TdQuoteBody10, TdQuoteBody15, TdQuoteBody15Ex};
pub use quote::{
    CertificationData, EnclaveReportBody, QeReportCertificationData, Quote, QuoteBody, QuoteHeader,
    QuoteSignatureData, ReceivedQuote,
};
pub use tdreport::{ReportMacStruct, ReportType, TdInfo, TdReport, TeeTcbInfo, TDREPORT_SIZE};
