//! The verifier's own collateral (issue 17): it fetches AMD KDS and Intel
//! PCS (or a PCCS) documents itself over HTTPS, caches them on disk keyed by
//! URL with validity taken from the documents, and hands them to the pure
//! appraisal as an [`appraisal::Collateral`]. Host-supplied collateral is a
//! hint, never an authority (`architecture.md`, "Verifier at fleet scale").
//!
//! Module map:
//! - [`cache`]: the generic fetch/cache core: a [`cache::Spec`] is a URL and
//!   a validity extractor; single-flight, 429/Retry-After backoff,
//!   stale-if-error, refresh-ahead, offline directory. Other collateral
//!   (NVIDIA OCSP, RIMs) plugs in with its own `Spec`.
//! - [`http`]: one HTTPS GET (ureq + rustls/ring, pinned or system roots).
//! - [`kds`]: AMD KDS URLs and validity extractors.
//! - [`pcs`]: Intel PCS/PCCS URLs, validity extractors, response → pieces.
//! - [`resolve`]: evidence → the documents it needs → [`appraisal::Collateral`].
//! - [`store`]: the last accepted evidence per platform (for `enclavectl
//!   policy check` and the TCB report).
//! - `standin` (feature `standin`, tests only): a local HTTPS stand-in of
//!   KDS and PCS serving the real documents of the shared fixtures.
#![forbid(unsafe_code)]

pub mod cache;
pub mod http;
pub mod kds;
pub mod pcs;
pub mod resolve;
#[cfg(feature = "standin")]
pub mod standin;
pub mod store;

pub use cache::{Cache, CacheConfig, CacheError, Spec, Validity};
pub use resolve::{Endpoints, Resolver};
