//! The CoCo attestation-agent, through api-server-rest (`guest-init.md`
//! §1.4 (a)): evidence for an appliance that runs as a container in a
//! Confidential Containers (Kata) pod, where the hardware interfaces belong
//! to the guest's own attestation-agent and are not exposed to containers.
//!
//! # Protocol (confidential-containers/guest-components 8246e5e0)
//!
//! Request: `GET /aa/evidence?runtime_data=<b>&encoding=base64` over plain
//! HTTP/1.1 to `127.0.0.1:8006` (`api-server-rest/src/main.rs:31`).
//! `<b>` is our 64-byte REPORT_DATA in URL-safe base64 without padding
//! (`api-server-rest/src/utils.rs:13-21`, `decode_runtime_data`; the
//! `encoding` parameter exists since guest-components v0.21.0, commit
//! 00c0851a. An older server takes the 86 characters themselves as the data
//! and the attester refuses them as longer than 64 bytes, a 500 we explain).
//! The attester zero-pads runtime data shorter than 64 bytes
//! (`attester/src/snp/mod.rs:35-39`, `tdx/mod.rs:106-110`); ours is always
//! exactly 64, so REPORT_DATA must come back identical.
//!
//! Answers (`api-server-rest/src/router.rs`):
//! - 200, `application/octet-stream`: the primary attester's evidence JSON
//!   (`router.rs:173-192`; `attestation-agent/src/lib.rs:198-204` turns the
//!   attester's `serde_json::Value` into text).
//! - 403 `Forbidden` to any non-loopback peer (`router.rs:101-104`).
//! - 404 `Attestation Feature Not Enabled` when api-server-rest runs without
//!   its attestation feature (`router.rs:150-155`; `main.rs:47-49,78-89`:
//!   `--features resource`, which kata-agent passes by default). Fixed by the
//!   Kata setting [`KATA_SETTING`] on the kernel command line.
//! - 400 `BAD REQUEST` (no or undecodable `runtime_data`), 500 with the
//!   attester's error text.
//!
//! Evidence shapes:
//! - SNP (`attester/src/snp/mod.rs:23-27,44-54`):
//!   `{"attestation_report": <sev AttestationReport>, "cert_chain": null |
//!   [{"cert_type": "VCEK"|"VLEK"|"ASK"|"ARK"|"CRL"|"Empty"|{"OTHER": "<uuid>"},
//!   "data": [<byte>, …]}, …]}`: the report as the `sev` crate's serde derive
//!   writes it (every byte array a JSON array of numbers; TCB versions as
//!   `{"fmc","bootloader","tee","snp","microcode"}`; firmware versions as
//!   `{"major","minor","build"}`; the signature as `{"r","s"}`). The field
//!   set is the same in sev 6.3 (what the attester links) and sev 8.0.0.
//! - TDX (`attester/src/tdx/mod.rs:38-47,116-123`): `{"cc_eventlog": null |
//!   "<base64>", "quote": "<base64>"}` (standard alphabet, padded). The event
//!   log (the guest's CCEL) goes into the bundle's `event_log`, trimmed of its
//!   padding when it parses.
//! - The sample attester (`attester/src/sample/mod.rs:17-21`), which the
//!   agent falls back to when it detects no TEE (`attester/src/lib.rs:311-323`):
//!   `{"svn": "1", "report_data": "<base64>"}`. Refused with its own error.
//!
//! # Turning sev's JSON back into the report
//!
//! The attester parses the firmware's 1184 bytes with `sev` and sends the
//! parsed fields, so the signed bytes must be rebuilt. The encoding follows
//! sev 8.0.0 `AttestationReport`'s `Encoder` exactly: reserved ranges are
//! zero, the TCB_VERSION byte layout depends on the CPU generation (from
//! CPUID_FAM_ID/MOD_ID in version 3+; for version 2, a CHIP_ID whose last 56
//! bytes are zero means Turin, else the Milan/Genoa layout). A report whose
//! reserved bytes were not zero cannot survive that round trip and fails the
//! verifier's signature check: fail closed, never a silent acceptance. The
//! deserializer is strict: every field sev writes must be present (`null`
//! where sev writes `None`), no other field is accepted, arrays have exactly
//! their length, and the optional fields must be present exactly for the
//! report versions and generations that define them.
//!
//! # Trust
//!
//! None beyond any other source: the REPORT_DATA is checked here, and the
//! verifier checks the signature and the certificates against its own pinned
//! roots. Plain HTTP is acceptable only because the peer is on loopback;
//! other addresses are refused before connecting.

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use tee_formats::snp::cert_table::{CertTable, Guid};
use tee_formats::snp::fields::{
    Generation, GuestPolicy, KeyInfo, PlatformInfo, Signature, TcbVersion,
};
use tee_formats::snp::report::{AttestationReport, REPORT_SIZE};
use transport::Addr;
use wire::{EvidenceBundle, Tee};

use crate::{EvidenceError, EvidenceSource, SourceKind, REPORT_DATA_LEN};

/// Where api-server-rest listens (`api-server-rest/src/main.rs:31`), as the
/// `host:port` of a `tcp://` [`Addr`].
pub const DEFAULT_ADDR: &str = "127.0.0.1:8006";

/// How long [`crate::detect`] waits for the TCP connection to api-server-rest.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// The largest evidence answer accepted. An SNP answer with a full
/// certificate chain is ~40 KiB of JSON (bytes as decimal numbers); a TDX
/// answer is dominated by the base64 event log (CCEL plus the agent's own
/// log), well under this.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// Status line and headers.
const MAX_HEAD: usize = 16 * 1024;

/// The Kata setting that enables `/aa/*` on api-server-rest.
pub const KATA_SETTING: &str = "agent.guest_components_rest_api=attestation";

/// The provider name in bundles.
const PROVIDER: &str = "coco-aa";

/// Why the attestation-agent gave no usable evidence.
#[derive(Debug)]
pub enum AaError {
    /// The address is not a literal loopback `tcp://IP:PORT`.
    NotLoopback {
        /// The configured address.
        addr: String,
    },
    /// Connecting failed (nothing listens, or the connection was reset).
    Unreachable {
        /// The address.
        addr: String,
        /// The cause.
        source: io::Error,
    },
    /// No complete answer within the timeout.
    Timeout {
        /// The address.
        addr: String,
        /// The bound that expired.
        after: Duration,
    },
    /// The answer is not an acceptable HTTP message (too large, bad framing,
    /// connection closed early).
    Http {
        /// The address.
        addr: String,
        /// The cause.
        source: bounded_http::HttpError,
    },
    /// 404 "Attestation Feature Not Enabled": api-server-rest runs with the
    /// `resource` feature only (kata-agent's default).
    FeatureNotEnabled {
        /// The address.
        addr: String,
    },
    /// 403: api-server-rest serves loopback peers only.
    Forbidden {
        /// The address.
        addr: String,
    },
    /// Any other status than 200.
    Status {
        /// The address.
        addr: String,
        /// The status code.
        status: u16,
        /// The start of the body, printable characters only.
        body: String,
    },
    /// The agent detected no TEE and answered with its sample attester.
    SampleEvidence,
    /// The answer does not have the shape of SNP or TDX evidence.
    Json(String),
}

impl fmt::Display for AaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AaError::NotLoopback { addr } => write!(
                f,
                "{addr}: the attestation-agent REST API is plain HTTP and is reached only at a literal loopback \
                 tcp://IP:PORT (default tcp://{DEFAULT_ADDR})"
            ),
            AaError::Unreachable { addr, source } => write!(
                f,
                "cannot reach the attestation-agent REST API at {addr}: {source} (is this a CoCo pod with \
                 api-server-rest running, and does the container share the guest's network namespace?)"
            ),
            AaError::Timeout { addr, after } => {
                write!(f, "the attestation-agent REST API at {addr} gave no complete answer within {after:?}")
            }
            AaError::Http { addr, source } => {
                write!(f, "bad answer from the attestation-agent REST API at {addr}: {source}")
            }
            AaError::FeatureNotEnabled { addr } => write!(
                f,
                "the attestation-agent REST API at {addr} answered 404 \"Attestation Feature Not Enabled\": \
                 api-server-rest runs with its `resource` feature only, kata-agent's default. Enable evidence with \
                 the Kata setting `{KATA_SETTING}` (or `=all`), e.g. the pod annotation \
                 io.katacontainers.config.hypervisor.kernel_params: \"{KATA_SETTING}\". It changes the measured \
                 kernel command line: the verifier's reference values must expect it"
            ),
            AaError::Forbidden { addr } => write!(
                f,
                "the attestation-agent REST API at {addr} answered 403: it serves loopback peers only; the \
                 request must come from the guest's own network namespace"
            ),
            AaError::Status { addr, status, body } => {
                write!(f, "the attestation-agent REST API at {addr} answered {status}: {body:?}")?;
                if body.contains("no more than 64 bytes") {
                    f.write_str(
                        " (this api-server-rest predates `encoding=base64` for runtime_data: guest-components \
                         v0.21.0 or later is needed)",
                    )?;
                }
                Ok(())
            }
            AaError::SampleEvidence => f.write_str(
                "the attestation-agent detected no TEE and answered with its sample attester's evidence, which \
                 proves nothing",
            ),
            AaError::Json(m) => write!(f, "attestation-agent evidence: {m}"),
        }
    }
}

/// The cause is part of the message (as for [`EvidenceError`]).
impl std::error::Error for AaError {}

/// The attestation-agent REST client.
pub struct CocoAa {
    addr: Addr,
    timeout: Duration,
}

impl CocoAa {
    /// A client for api-server-rest at `addr` (normally
    /// `tcp://`[`DEFAULT_ADDR`]); `timeout` bounds each request as a whole,
    /// connecting included (a TDX quote may take seconds).
    pub fn new(addr: Addr, timeout: Duration) -> Self {
        CocoAa { addr, timeout }
    }

    /// The request target for `report_data`.
    pub fn evidence_target(report_data: &[u8; REPORT_DATA_LEN]) -> String {
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(report_data);
        format!("/aa/evidence?runtime_data={encoded}&encoding=base64")
    }

    /// One GET, bounded by the deadline; the body of a 200 answer.
    fn get(&self, target: &str) -> Result<Vec<u8>, AaError> {
        let addr = self.addr.to_string();
        let sock = loopback_socket_addr(&self.addr)?;
        let deadline = Instant::now() + self.timeout;
        let timeout = |addr: &str| AaError::Timeout {
            addr: addr.to_owned(),
            after: self.timeout,
        };
        let stream =
            TcpStream::connect_timeout(&sock, self.timeout).map_err(|e| match e.kind() {
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => timeout(&addr),
                _ => AaError::Unreachable {
                    addr: addr.clone(),
                    source: e,
                },
            })?;
        // Best effort: only latency depends on it.
        let _ = stream.set_nodelay(true);
        let mut conn = Deadlined { stream, deadline };
        let host = sock.to_string();
        bounded_http::write_request(
            &mut conn,
            "GET",
            &host,
            target,
            &[
                ("accept", "application/octet-stream, application/json"),
                ("connection", "close"),
            ],
            b"",
        )
        .map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => timeout(&addr),
            _ => AaError::Unreachable {
                addr: addr.clone(),
                source: e,
            },
        })?;
        let limits = bounded_http::Limits {
            head_bytes: MAX_HEAD,
            body_bytes: MAX_BODY,
        };
        let response = bounded_http::read_response(&mut BufReader::new(&mut conn), limits)
            .map_err(|e| match e {
                bounded_http::HttpError::Io(io)
                    if matches!(
                        io.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    ) =>
                {
                    timeout(&addr)
                }
                other => AaError::Http {
                    addr: addr.clone(),
                    source: other,
                },
            })?;
        match response.status {
            200 => Ok(response.body),
            403 => Err(AaError::Forbidden { addr }),
            404 if response
                .body
                .starts_with(b"Attestation Feature Not Enabled") =>
            {
                Err(AaError::FeatureNotEnabled { addr })
            }
            status => Err(AaError::Status {
                addr,
                status,
                body: printable(&response.body),
            }),
        }
    }
}

impl EvidenceSource for CocoAa {
    fn kind(&self) -> SourceKind {
        SourceKind::CocoAa
    }

    fn collect(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<EvidenceBundle, EvidenceError> {
        log::info!(addr = self.addr.to_string().as_str(); "requesting evidence from the CoCo attestation-agent");
        let body = self
            .get(&Self::evidence_target(report_data))
            .map_err(EvidenceError::CocoAa)?;
        let bundle = parse_evidence(&body)?;
        match bundle.tee {
            Tee::Snp => crate::check_snp_report(&bundle.evidence, report_data)?,
            _ => {
                crate::tdx_guest::check_quote(&bundle.evidence, report_data)?;
            }
        }
        Ok(bundle)
    }
}

/// The socket address of `addr`, if it is a literal loopback `tcp://IP:PORT`
/// (no name resolution in the guest).
pub fn loopback_socket_addr(addr: &Addr) -> Result<SocketAddr, AaError> {
    match addr {
        Addr::Tcp(hp) => match hp.parse::<SocketAddr>() {
            Ok(sock) if sock.ip().is_loopback() => Ok(sock),
            _ => Err(AaError::NotLoopback {
                addr: addr.to_string(),
            }),
        },
        _ => Err(AaError::NotLoopback {
            addr: addr.to_string(),
        }),
    }
}

/// Whether something accepts TCP connections at `addr` (one connect,
/// bounded by `timeout`); `Err` says why not, for the detection log.
pub(crate) fn probe(addr: &Addr, timeout: Duration) -> Result<(), String> {
    let sock = loopback_socket_addr(addr).map_err(|e| e.to_string())?;
    match TcpStream::connect_timeout(&sock, timeout) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{addr}: {e}")),
    }
}

/// The start of a body, for error messages: printable ASCII, at most 200
/// characters.
fn printable(body: &[u8]) -> String {
    body.iter()
        .take(200)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

/// A TCP stream whose every read and write is bounded by one deadline: a
/// peer that trickles bytes cannot extend the request past it.
struct Deadlined {
    stream: TcpStream,
    deadline: Instant,
}

impl Deadlined {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        Ok(left)
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Converts an `/aa/evidence` answer into a bundle (TEE `snp` or `tdx`,
/// provider `coco-aa`): the SNP report rebuilt byte for byte with its
/// certificates, or the TDX quote. The structure is checked, REPORT_DATA is
/// not (the caller knows what it asked for).
pub fn parse_evidence(body: &[u8]) -> Result<EvidenceBundle, EvidenceError> {
    let json = |m: String| EvidenceError::CocoAa(AaError::Json(m));
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| json(format!("the answer is not JSON: {e}")))?;
    let serde_json::Value::Object(map) = value else {
        return Err(json("the answer is not a JSON object".to_owned()));
    };
    if map.contains_key("attestation_report") {
        let evidence: SnpEvidence = serde_json::from_slice(body)
            .map_err(|e| json(format!("not the SNP attester's evidence: {e}")))?;
        return snp_bundle(evidence);
    }
    if map.contains_key("quote") {
        let evidence: TdxEvidence = serde_json::from_slice(body)
            .map_err(|e| json(format!("not the TDX attester's evidence: {e}")))?;
        return tdx_bundle(evidence);
    }
    if map.len() == 2 && map.contains_key("svn") && map.contains_key("report_data") {
        return Err(EvidenceError::CocoAa(AaError::SampleEvidence));
    }
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    Err(json(format!(
        "evidence with fields {keys:?} is neither the SNP nor the TDX attester's (only those two are supported)"
    )))
}

fn snp_bundle(evidence: SnpEvidence) -> Result<EvidenceBundle, EvidenceError> {
    let report = evidence
        .attestation_report
        .to_bytes()
        .map_err(|m| EvidenceError::CocoAa(AaError::Json(m)))?;
    // The rebuilt report must be one our own parser accepts.
    AttestationReport::parse(&report).map_err(EvidenceError::Malformed)?;
    let mut bundle = EvidenceBundle::new(Tee::Snp, PROVIDER, report.to_vec());
    let mut entries = Vec::new();
    for entry in evidence.cert_chain.unwrap_or_default() {
        let guid = match entry.cert_type {
            SevCertType::Empty => continue,
            SevCertType::Ark => Guid::ARK,
            SevCertType::Ask => Guid::ASK,
            SevCertType::Vcek => Guid::VCEK,
            SevCertType::Vlek => Guid::VLEK,
            SevCertType::Crl => Guid::CRL,
            SevCertType::Other(uuid) => parse_uuid(&uuid).ok_or_else(|| {
                EvidenceError::CocoAa(AaError::Json(format!("cert_type OTHER: bad UUID {uuid:?}")))
            })?,
        };
        entries.push((guid, entry.data));
    }
    if !entries.is_empty() {
        // Duplicate or empty entries are refused as in a kernel table.
        let table = CertTable::from_entries(entries).map_err(EvidenceError::Malformed)?;
        crate::add_snp_certificates(&mut bundle, &table);
    }
    Ok(bundle)
}

fn tdx_bundle(evidence: TdxEvidence) -> Result<EvidenceBundle, EvidenceError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let quote = b64
        .decode(&evidence.quote)
        .map_err(|e| EvidenceError::CocoAa(AaError::Json(format!("quote is not base64: {e}"))))?;
    tee_formats::tdx::quote::Quote::parse(&quote).map_err(EvidenceError::Malformed)?;
    let mut bundle = EvidenceBundle::new(Tee::Tdx, PROVIDER, quote);
    if let Some(log) = &evidence.cc_eventlog {
        let log = b64.decode(log).map_err(|e| {
            EvidenceError::CocoAa(AaError::Json(format!("cc_eventlog is not base64: {e}")))
        })?;
        // The Kata guest's CCEL, forwarded (trimmed of its padding) for the
        // verifier to replay; nothing here trusts it.
        bundle.event_log = Some(wire::Bytes(crate::ccel::trim(log)));
    }
    Ok(bundle)
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (the form `uuid` serialises) in
/// RFC 4122 byte order.
fn parse_uuid(s: &str) -> Option<Guid> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let hex: Vec<u8> = b.iter().copied().filter(|&c| c != b'-').collect();
    if hex.len() != 32 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(Guid(out))
}

// ---------------------------------------------------------------------------
// The serde form of sev's types, strictly.

/// `attester/src/snp/mod.rs` `SnpEvidence`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnpEvidence {
    attestation_report: SevReport,
    #[serde(deserialize_with = "present")]
    cert_chain: Option<Vec<SevCertEntry>>,
}

/// `attester/src/tdx/mod.rs` `TdxEvidence`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TdxEvidence {
    #[serde(deserialize_with = "present")]
    cc_eventlog: Option<String>,
    quote: String,
}

/// sev `firmware::host::CertTableEntry`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SevCertEntry {
    cert_type: SevCertType,
    data: Vec<u8>,
}

/// sev `firmware::host::CertType` (externally tagged; `OTHER` carries the
/// `uuid` crate's string form).
#[derive(Deserialize)]
enum SevCertType {
    Empty,
    #[serde(rename = "ARK")]
    Ark,
    #[serde(rename = "ASK")]
    Ask,
    #[serde(rename = "VCEK")]
    Vcek,
    #[serde(rename = "VLEK")]
    Vlek,
    #[serde(rename = "CRL")]
    Crl,
    #[serde(rename = "OTHER")]
    Other(String),
}

/// sev `firmware::host::TcbVersion`.
#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct SevTcb {
    #[serde(deserialize_with = "present")]
    fmc: Option<u8>,
    bootloader: u8,
    tee: u8,
    snp: u8,
    microcode: u8,
}

/// sev `firmware::guest::Version`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SevVersion {
    major: u8,
    minor: u8,
    build: u8,
}

/// sev `certs::snp::ecdsa::Signature`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SevSignature {
    r: Bytes<72>,
    s: Bytes<72>,
}

/// sev `firmware::guest::AttestationReport` (sev 8.0.0 with `serde`; the same
/// JSON as sev 6.3's `Array<u8, N>` newtypes).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SevReport {
    version: u32,
    guest_svn: u32,
    policy: u64,
    family_id: Bytes<16>,
    image_id: Bytes<16>,
    vmpl: u32,
    sig_algo: u32,
    current_tcb: SevTcb,
    plat_info: u64,
    key_info: u32,
    report_data: Bytes<64>,
    measurement: Bytes<48>,
    host_data: Bytes<32>,
    id_key_digest: Bytes<48>,
    author_key_digest: Bytes<48>,
    report_id: Bytes<32>,
    report_id_ma: Bytes<32>,
    reported_tcb: SevTcb,
    #[serde(deserialize_with = "present")]
    cpuid_fam_id: Option<u8>,
    #[serde(deserialize_with = "present")]
    cpuid_mod_id: Option<u8>,
    #[serde(deserialize_with = "present")]
    cpuid_step: Option<u8>,
    chip_id: Bytes<64>,
    committed_tcb: SevTcb,
    current: SevVersion,
    committed: SevVersion,
    launch_tcb: SevTcb,
    #[serde(deserialize_with = "present")]
    launch_mit_vector: Option<u64>,
    #[serde(deserialize_with = "present")]
    current_mit_vector: Option<u64>,
    signature: SevSignature,
}

/// How sev lays out TCB_VERSION for a report.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TcbLayout {
    /// Milan, Genoa: `[bootloader, tee, 0, 0, 0, 0, snp, microcode]`.
    Legacy,
    /// Turin, Venice: `[fmc, bootloader, tee, snp, 0, 0, 0, microcode]`.
    Turin,
}

impl SevTcb {
    fn to_bytes(self, layout: TcbLayout, field: &str) -> Result<TcbVersion, String> {
        let bytes = match (layout, self.fmc) {
            (TcbLayout::Legacy, None) => [
                self.bootloader,
                self.tee,
                0,
                0,
                0,
                0,
                self.snp,
                self.microcode,
            ],
            (TcbLayout::Turin, Some(fmc)) => [
                fmc,
                self.bootloader,
                self.tee,
                self.snp,
                0,
                0,
                0,
                self.microcode,
            ],
            (TcbLayout::Legacy, Some(_)) => {
                return Err(format!("{field}.fmc is set for a Milan/Genoa report"))
            }
            (TcbLayout::Turin, None) => {
                return Err(format!("{field}.fmc is missing for a Turin/Venice report"))
            }
        };
        Ok(TcbVersion::from_bytes(bytes))
    }
}

impl SevReport {
    /// The 1184 bytes, as sev 8.0.0's `Encoder for AttestationReport`
    /// writes them.
    fn to_bytes(&self) -> Result<[u8; REPORT_SIZE], String> {
        let v3 = match self.version {
            2 => false,
            3..=5 => true,
            v => return Err(format!("report version {v} is not 2 to 5")),
        };
        let v5 = self.version == 5;
        let cpuid = (self.cpuid_fam_id, self.cpuid_mod_id, self.cpuid_step);
        let layout = if v3 {
            let (Some(family), Some(model), Some(_)) = cpuid else {
                return Err(format!(
                    "report version {} without its CPUID fields",
                    self.version
                ));
            };
            match Generation::from_cpuid(family, model).map_err(|e| e.to_string())? {
                Generation::Milan | Generation::Genoa => TcbLayout::Legacy,
                Generation::Turin | Generation::Venice => TcbLayout::Turin,
            }
        } else {
            if cpuid != (None, None, None) {
                return Err("report version 2 with CPUID fields".to_owned());
            }
            // sev: a masked CHIP_ID gives no generation; zeros after the
            // first 8 bytes mean Turin.
            if self.chip_id.0 == [0; 64] {
                return Err(
                    "version 2 report with a masked CHIP_ID (sev cannot tell its generation)"
                        .to_owned(),
                );
            }
            if self.chip_id.0[8..] == [0; 56] {
                TcbLayout::Turin
            } else {
                TcbLayout::Legacy
            }
        };
        let (launch_mit_vector, current_mit_vector) =
            match (v5, self.launch_mit_vector, self.current_mit_vector) {
                (true, Some(l), Some(c)) => (l, c),
                (false, None, None) => (0, 0),
                _ => {
                    return Err(format!(
                "report version {}: the mitigation vectors must be present exactly for version 5",
                self.version
            ))
                }
            };
        let (family, model, stepping) = (
            cpuid.0.unwrap_or(0),
            cpuid.1.unwrap_or(0),
            cpuid.2.unwrap_or(0),
        );
        let report = AttestationReport {
            version: self.version,
            guest_svn: self.guest_svn,
            policy: GuestPolicy(self.policy),
            family_id: self.family_id.0,
            image_id: self.image_id.0,
            vmpl: self.vmpl,
            signature_algo: self.sig_algo,
            current_tcb: self.current_tcb.to_bytes(layout, "current_tcb")?,
            platform_info: PlatformInfo(self.plat_info),
            key_info: KeyInfo(self.key_info),
            report_data: self.report_data.0,
            measurement: self.measurement.0,
            host_data: self.host_data.0,
            id_key_digest: self.id_key_digest.0,
            author_key_digest: self.author_key_digest.0,
            report_id: self.report_id.0,
            report_id_ma: self.report_id_ma.0,
            reported_tcb: self.reported_tcb.to_bytes(layout, "reported_tcb")?,
            cpuid_fam_id: family,
            cpuid_mod_id: model,
            cpuid_step: stepping,
            chip_id: self.chip_id.0,
            committed_tcb: self.committed_tcb.to_bytes(layout, "committed_tcb")?,
            current_build: self.current.build,
            current_minor: self.current.minor,
            current_major: self.current.major,
            committed_build: self.committed.build,
            committed_minor: self.committed.minor,
            committed_major: self.committed.major,
            launch_tcb: self.launch_tcb.to_bytes(layout, "launch_tcb")?,
            launch_mit_vector,
            current_mit_vector,
            signature: Signature {
                r: self.signature.r.0,
                s: self.signature.s.0,
            },
        };
        Ok(report.to_bytes())
    }
}

/// A field that must be present, as `null` or a value (serde's derive would
/// take a missing `Option` field as `None`; with `deserialize_with` it is an
/// error).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// Exactly `N` bytes, as a JSON array of numbers 0..=255.
struct Bytes<const N: usize>([u8; N]);

impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Exact<const N: usize>;
        impl<'de, const N: usize> Visitor<'de> for Exact<N> {
            type Value = Bytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of exactly {N} bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes<N>, A::Error> {
                let mut out = [0u8; N];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(N + 1, &self));
                }
                Ok(Bytes(out))
            }
        }
        d.deserialize_tuple(N, Exact::<N>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_is_url_safe_base64_without_padding() {
        let mut rd = [0u8; 64];
        rd[0] = 0xfb; // '+' / '/' in the standard alphabet
        rd[1] = 0xff;
        let t = CocoAa::evidence_target(&rd);
        let q = t.strip_prefix("/aa/evidence?runtime_data=").unwrap();
        let (data, enc) = q.split_once('&').unwrap();
        assert_eq!(enc, "encoding=base64");
        assert_eq!(data.len(), 86);
        assert!(data
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(data)
                .unwrap(),
            rd
        );
    }

    #[test]
    fn only_literal_loopback_tcp_addresses() {
        for ok in [
            "tcp://127.0.0.1:8006",
            "tcp://[::1]:8006",
            "tcp://127.1.2.3:1",
        ] {
            assert!(loopback_socket_addr(&ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "tcp://192.0.2.1:8006",
            "tcp://localhost:8006",
            "unix:///run/aa.sock",
            "vsock://2:8006",
        ] {
            assert!(
                matches!(
                    loopback_socket_addr(&bad.parse().unwrap()),
                    Err(AaError::NotLoopback { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn uuids() {
        assert_eq!(
            parse_uuid("63da758d-e664-4564-adc5-f4b93be8accd"),
            Some(Guid::VCEK)
        );
        assert_eq!(
            parse_uuid("63DA758D-E664-4564-ADC5-F4B93BE8ACCD"),
            Some(Guid::VCEK)
        );
        assert_eq!(parse_uuid("63da758de6644564adc5f4b93be8accd"), None);
        assert_eq!(parse_uuid("63da758d-e664-4564-adc5-f4b93be8accg"), None);
        assert_eq!(parse_uuid("+3da758d-e664-4564-adc5-f4b93be8accd"), None);
    }

    #[test]
    fn present_fields_must_be_there() {
        assert!(serde_json::from_str::<TdxEvidence>(r#"{"quote":"AA=="}"#).is_err());
        let ok: TdxEvidence =
            serde_json::from_str(r#"{"quote":"AA==","cc_eventlog":null}"#).unwrap();
        assert!(ok.cc_eventlog.is_none());
        assert!(serde_json::from_str::<TdxEvidence>(
            r#"{"quote":"AA==","cc_eventlog":null,"x":1}"#
        )
        .is_err());
        assert!(serde_json::from_str::<TdxEvidence>(
            r#"{"quote":"AA==","quote":"AA==","cc_eventlog":null}"#
        )
        .is_err());
    }

    #[test]
    fn byte_arrays_are_exact() {
        assert_eq!(
            serde_json::from_str::<Bytes<3>>("[1,2,255]").unwrap().0,
            [1, 2, 255]
        );
        for bad in [
            "[1,2]",
            "[1,2,3,4]",
            "[1,2,256]",
            "[1,2,-1]",
            "[1,2,1.5]",
            "\"AQID\"",
            "null",
        ] {
            assert!(serde_json::from_str::<Bytes<3>>(bad).is_err(), "{bad}");
        }
    }
}
