//! `sim-psp`: a simulated AMD secure processor, for development and tests
//! only (`shared/docs/architecture.md`, "Parts").
//!
//! It holds a simulation ARK → ASK → VCEK chain with the same certificate
//! shapes and VCEK TCB extensions as AMD's, knows the launch measurement of
//! the guest it was told was launched (`measure::sim::sim_launch_digest`,
//! the one function `enclavectl measure --sim` also uses), and signs
//! SEV-SNP-format reports on request, answering with an evidence bundle of
//! TEE type `sim`. Simulation evidence is its own TEE type: no production
//! policy accepts it, and a policy that does pins this chain's ARK by
//! [`Chain::ark_sha256`].
//!
//! Module map:
//!
//! - [`chain`]: certificate issuance in AMD's shapes; [`SimTcb`],
//!   [`VcekInfo`] (reads the VCEK extensions back), `verify_issued_by`.
//! - [`state`]: [`Chain`], the keys and certificates kept in a state
//!   directory across restarts.
//! - [`report`]: [`SimPsp`], which signs ATTESTATION_REPORTs (version 3).
//! - [`protocol`]: the JSON-lines request and answer.
//! - [`server`]: [`Server`] on `unix://`, `hybrid://` and `vsock://`
//!   listeners; [`ListenAddr`].
//! - [`client`]: [`client::request`], a Unix-socket client for tests.
//! - [`nsm`]: a SIMULATED AWS Nitro Secure Module (`enclavectl sim-nsm`):
//!   attestation documents in AWS's COSE_Sign1 shape under a simulation root.
//! - [`paravisor`]: a SIMULATED Azure paravisor: a TPM relay in front of
//!   swtpm that writes HCL reports (this PSP's reports inside) to the vTPM's
//!   NV when the guest writes its user data, as OpenHCL does.
#![forbid(unsafe_code)]

pub mod chain;
pub mod client;
pub mod nsm;
pub mod paravisor;
pub mod protocol;
pub mod report;
pub mod server;
pub mod state;

/// The evidence bundle types the server answers with and the client returns.
pub use wire;

pub use chain::{SimTcb, VcekInfo};
pub use report::{ReportError, SimPsp};
pub use server::{ListenAddr, ServeError, Server, ServerHandle};
pub use state::{Chain, StateError};
