//! The CoCo attestation-agent provider against a stand-in of api-server-rest
//! that follows guest-components 8246e5e0: the router's request handling and
//! answers (`api-server-rest/src/{router.rs,utils.rs}`) and the attesters'
//! evidence JSON, serialised with the real `sev` crate's serde derive as the
//! SNP attester does (`attestation-agent/attester/src/{snp,tdx,sample}`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

mod fakes;

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use evidence::coco_aa::{self, AaError, CocoAa};
use evidence::{EvidenceError, EvidenceSource, Paths, SourceKind};
use fakes::{fixture, fixtures, snp_report_for, tdx_quote_for};
use serde::Serialize;
use sev::firmware::host::{CertTableEntry, CertType};
use sev::parser::ByteParser;
use tee_formats::snp::fields::TcbVersion;
use tee_formats::snp::report::AttestationReport;
use transport::Addr;
use wire::{CertKind, Tee};

const RD: [u8; 64] = {
    let mut rd = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        rd[i] = (i as u8).wrapping_mul(37) ^ 0xa5; // every value class, '+' and '/' in base64 included
        i += 1;
    }
    rd
};
const TIMEOUT: Duration = Duration::from_secs(5);

// --- The attesters' evidence, as guest-components serialises it ------------

/// `attester/src/snp/mod.rs` `SnpEvidence`, with sev's own types.
#[derive(Serialize)]
struct SnpEvidence {
    attestation_report: sev::firmware::guest::AttestationReport,
    cert_chain: Option<Vec<CertTableEntry>>,
}

/// `attester/src/tdx/mod.rs` `TdxEvidence`.
#[derive(Serialize)]
struct TdxEvidence {
    cc_eventlog: Option<String>,
    quote: String,
}

/// `attester/src/sample/mod.rs` `SampleQuote`.
#[derive(Serialize)]
struct SampleQuote {
    svn: String,
    report_data: String,
}

/// What the SNP attester sends for `report`: `to_value`, then the agent's
/// `to_string` (`attestation-agent/src/lib.rs:198-204`).
fn snp_json(report: &[u8], certs: Option<Vec<CertTableEntry>>) -> String {
    let attestation_report = sev::firmware::guest::AttestationReport::from_bytes(report).unwrap();
    serde_json::to_value(SnpEvidence {
        attestation_report,
        cert_chain: certs,
    })
    .unwrap()
    .to_string()
}

fn pem_certs(rel: &str) -> Vec<Vec<u8>> {
    let text = String::from_utf8(fixture(rel)).unwrap();
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|block| {
            let b64: String = block
                .split("-----END CERTIFICATE-----")
                .next()
                .unwrap()
                .split_whitespace()
                .collect();
            STANDARD.decode(b64).unwrap()
        })
        .collect()
}

const CRL: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x07];

fn vcek_chain() -> Vec<CertTableEntry> {
    let ask_ark = pem_certs("snp/amd-certs/milan_ask_ark.pem");
    vec![
        CertTableEntry::new(CertType::VCEK, fixture("snp/milan-v2-virtee/vcek.der")),
        CertTableEntry::new(CertType::ASK, ask_ark[0].clone()),
        CertTableEntry::new(CertType::ARK, ask_ark[1].clone()),
        CertTableEntry::new(CertType::CRL, CRL.to_vec()),
        // go-sev-guest's ExtraPlatformInfo: carried by sev as OTHER, ignored by us.
        CertTableEntry::new(
            CertType::OTHER(uuid_of("ecae0c0f-9502-43b1-afa2-0ae2e0d565b6")),
            vec![1, 2, 3],
        ),
    ]
}

fn uuid_of(s: &str) -> uuid::Uuid {
    s.parse().unwrap()
}

// --- The stand-in api-server-rest -----------------------------------------

/// The agent's primary attester.
#[derive(Clone)]
enum Attester {
    Snp {
        certs: Option<Vec<CertTableEntry>>,
    },
    Tdx {
        eventlog: Option<Vec<u8>>,
    },
    /// No TEE detected (`attester/src/lib.rs:311-323`).
    Sample,
    /// Signs other REPORT_DATA than asked for.
    SnpIgnoringReportData,
    TdxIgnoringReportData,
}

impl Attester {
    /// `get_evidence(runtime_data)`: at most 64 bytes, zero-padded.
    fn evidence(&self, mut rd: Vec<u8>) -> Result<String, String> {
        if rd.len() > 64 {
            return Err(match self {
                Attester::Tdx { .. } => {
                    "TDX Attester: Report data must be no more than 64 bytes".into()
                }
                _ => "SNP Attester: Report data must be no more than 64 bytes".into(),
            });
        }
        rd.resize(64, 0);
        Ok(match self {
            Attester::Snp { certs } => snp_json(&snp_report_for(&rd), certs.clone()),
            Attester::SnpIgnoringReportData => snp_json(&snp_report_for(&[1; 64]), None),
            Attester::Tdx { eventlog } => serde_json::to_value(TdxEvidence {
                cc_eventlog: eventlog.as_ref().map(|l| STANDARD.encode(l)),
                quote: STANDARD.encode(tdx_quote_for(&rd)),
            })
            .unwrap()
            .to_string(),
            Attester::TdxIgnoringReportData => serde_json::to_value(TdxEvidence {
                cc_eventlog: None,
                quote: STANDARD.encode(tdx_quote_for(&[2; 64])),
            })
            .unwrap()
            .to_string(),
            Attester::Sample => serde_json::to_value(SampleQuote {
                svn: "1".into(),
                report_data: STANDARD.encode(&rd),
            })
            .unwrap()
            .to_string(),
        })
    }
}

/// How the stand-in answers one connection.
enum Behaviour {
    /// api-server-rest with `--features attestation`.
    Router {
        attester: Attester,
        legacy: bool,
        peer_is_loopback: bool,
    },
    /// api-server-rest with `--features resource` (kata-agent's default).
    ResourceOnly,
    /// These exact bytes, then close.
    Raw(Vec<u8>),
    /// Reads the request, then says nothing for this long.
    Silent(Duration),
    /// Answers one byte at a time, slowly.
    Trickle,
}

fn router(attester: Attester) -> Behaviour {
    Behaviour::Router {
        attester,
        legacy: false,
        peer_is_loopback: true,
    }
}

struct StandIn {
    addr: Addr,
    handle: JoinHandle<Option<bounded_http::Request>>,
}

impl StandIn {
    /// The request the client sent.
    fn request(self) -> bounded_http::Request {
        self.handle.join().unwrap().expect("no request")
    }
}

fn reply(w: &mut TcpStream, status: u16, content_type: Option<&str>, body: &[u8]) {
    let headers: Vec<(&str, &str)> = content_type
        .map(|c| ("content-type", c))
        .into_iter()
        .collect();
    let _ = bounded_http::write_response(w, status, &headers, body);
}

/// `router.rs` `route` for `/aa/evidence`, and `utils.rs` `decode_runtime_data`.
fn route(
    attester: &Attester,
    legacy: bool,
    peer: SocketAddr,
    req: &bounded_http::Request,
    w: &mut TcpStream,
) {
    if !peer.ip().is_loopback() {
        return reply(w, 403, None, b"Forbidden");
    }
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    if path != "/aa/evidence" || req.method != "GET" {
        return reply(w, 404, None, b"URL NOT FOUND");
    }
    let params: HashMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let Some(runtime_data) = params.get("runtime_data") else {
        return reply(w, 400, None, b"BAD REQUEST");
    };
    // Before v0.21.0 the encoding parameter did not exist.
    let encoding = if legacy {
        None
    } else {
        params.get("encoding").copied()
    };
    let rd = match encoding {
        None => runtime_data.as_bytes().to_vec(),
        Some("base64") => match URL_SAFE_NO_PAD.decode(runtime_data) {
            Ok(v) => v,
            Err(_) => return reply(w, 400, None, b"BAD REQUEST"),
        },
        Some(_) => return reply(w, 400, None, b"BAD REQUEST"),
    };
    match attester.evidence(rd) {
        Ok(json) => reply(w, 200, Some("application/octet-stream"), json.as_bytes()),
        Err(e) => reply(w, 500, None, e.as_bytes()),
    }
}

fn stand_in(behaviour: Behaviour) -> StandIn {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = Addr::Tcp(listener.local_addr().unwrap().to_string());
    let handle = thread::spawn(move || {
        let (mut stream, peer) = listener.accept().unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let req =
            bounded_http::read_request(&mut reader, bounded_http::Limits::default()).unwrap()?;
        match behaviour {
            Behaviour::Router {
                attester,
                legacy,
                peer_is_loopback,
            } => {
                let peer = if peer_is_loopback {
                    peer
                } else {
                    "10.0.0.1:12345".parse().unwrap()
                };
                route(&attester, legacy, peer, &req, &mut stream);
            }
            Behaviour::ResourceOnly => {
                reply(&mut stream, 404, None, b"Attestation Feature Not Enabled")
            }
            Behaviour::Raw(bytes) => {
                let _ = stream.write_all(&bytes);
            }
            Behaviour::Silent(d) => thread::sleep(d),
            Behaviour::Trickle => {
                for b in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
                    .iter()
                    .cycle()
                    .take(40)
                {
                    if stream.write_all(&[*b]).is_err() {
                        break;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
        Some(req)
    });
    StandIn { addr, handle }
}

fn collect(addr: &Addr, timeout: Duration) -> Result<wire::EvidenceBundle, EvidenceError> {
    CocoAa::new(addr.clone(), timeout).collect(&RD)
}

// --- The request ------------------------------------------------------------

#[test]
fn the_request_is_what_api_server_rest_expects() {
    let s = stand_in(router(Attester::Snp { certs: None }));
    collect(&s.addr, TIMEOUT).unwrap();
    let req = s.request();
    assert_eq!(req.method, "GET");
    let target = format!(
        "/aa/evidence?runtime_data={}&encoding=base64",
        URL_SAFE_NO_PAD.encode(RD)
    );
    assert_eq!(req.path, target);
    assert_eq!(req.path, CocoAa::evidence_target(&RD));
    assert!(req.body.is_empty());
}

// --- SNP --------------------------------------------------------------------

#[test]
fn snp_report_and_certificates() {
    let s = stand_in(router(Attester::Snp {
        certs: Some(vcek_chain()),
    }));
    let bundle = collect(&s.addr, TIMEOUT).unwrap();
    assert_eq!(bundle.tee, Tee::Snp);
    assert_eq!(bundle.provider, "coco-aa");
    assert_eq!(
        &bundle.evidence[..],
        &snp_report_for(&RD)[..],
        "the report is rebuilt byte for byte"
    );
    let kinds: Vec<CertKind> = bundle.certificates.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [CertKind::Vcek, CertKind::Ask, CertKind::Ark]);
    let ask_ark = pem_certs("snp/amd-certs/milan_ask_ark.pem");
    assert_eq!(
        bundle.certificate(CertKind::Vcek).unwrap(),
        &fixture("snp/milan-v2-virtee/vcek.der")[..]
    );
    assert_eq!(bundle.certificate(CertKind::Ask).unwrap(), &ask_ark[0][..]);
    assert_eq!(bundle.certificate(CertKind::Ark).unwrap(), &ask_ark[1][..]);
    assert_eq!(bundle.crls.len(), 1);
    assert_eq!(&bundle.crls[0][..], CRL);
}

#[test]
fn snp_without_certificates() {
    for certs in [None, Some(vec![])] {
        let s = stand_in(router(Attester::Snp { certs }));
        let bundle = collect(&s.addr, TIMEOUT).unwrap();
        assert_eq!(&bundle.evidence[..], &snp_report_for(&RD)[..]);
        assert!(bundle.certificates.is_empty() && bundle.crls.is_empty());
    }
}

#[test]
fn snp_vlek_chain_carries_the_asvk() {
    let chain = vec![
        CertTableEntry::new(
            CertType::VLEK,
            fixture("snp/milan-v3-vlek-trustee/vlek.der"),
        ),
        CertTableEntry::new(CertType::ASK, vec![0x30, 1, 2]),
        CertTableEntry::new(CertType::ARK, vec![0x30, 3, 4]),
    ];
    let s = stand_in(router(Attester::Snp { certs: Some(chain) }));
    let bundle = collect(&s.addr, TIMEOUT).unwrap();
    let kinds: Vec<CertKind> = bundle.certificates.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [CertKind::Vlek, CertKind::Asvk, CertKind::Ark]);
}

#[test]
fn duplicate_or_empty_certificates_are_refused() {
    let report = snp_report_for(&RD);
    let vcek = fixture("snp/milan-v2-virtee/vcek.der");
    let dup = snp_json(
        &report,
        Some(vec![
            CertTableEntry::new(CertType::VCEK, vcek.clone()),
            CertTableEntry::new(CertType::VCEK, vcek),
        ]),
    );
    assert!(matches!(
        coco_aa::parse_evidence(dup.as_bytes()),
        Err(EvidenceError::Malformed(_))
    ));
    let empty = snp_json(
        &report,
        Some(vec![CertTableEntry::new(CertType::ARK, vec![])]),
    );
    assert!(matches!(
        coco_aa::parse_evidence(empty.as_bytes()),
        Err(EvidenceError::Malformed(_))
    ));
}

// --- TDX --------------------------------------------------------------------

#[test]
fn tdx_quote() {
    // The agent's cc_eventlog goes into the bundle: a real CCEL (GCP COS-113,
    // 262144 bytes of which 18101 are log) trimmed of its padding; bytes
    // that are no event log as they came, for the verifier to judge.
    let ccel = fixture("cloud/tdx-eventlog/go-tdx-guest-gcp-cos113/ccel_data.dat");
    for (eventlog, forwarded) in [
        (None, None),
        (Some(vec![0xab; 3000]), Some(vec![0xab; 3000])),
        (Some(ccel.clone()), Some(ccel[..18_101].to_vec())),
    ] {
        let s = stand_in(router(Attester::Tdx { eventlog }));
        let bundle = collect(&s.addr, TIMEOUT).unwrap();
        assert_eq!(bundle.tee, Tee::Tdx);
        assert_eq!(bundle.provider, "coco-aa");
        assert_eq!(&bundle.evidence[..], &tdx_quote_for(&RD)[..]);
        assert!(bundle.certificates.is_empty());
        assert_eq!(bundle.event_log.map(|b| b.0), forwarded);
    }
}

#[test]
fn tdx_shapes_are_strict() {
    let quote = STANDARD.encode(tdx_quote_for(&RD));
    for (body, what) in [
        (format!(r#"{{"quote":"{quote}"}}"#), "cc_eventlog missing"),
        (
            format!(r#"{{"quote":"{quote}","cc_eventlog":null,"extra":1}}"#),
            "unknown field",
        ),
        (
            format!(
                r#"{{"quote":"{}","cc_eventlog":null}}"#,
                URL_SAFE_NO_PAD.encode(tdx_quote_for(&RD))
            ),
            "unpadded",
        ),
        (
            r#"{"quote":"@@@@","cc_eventlog":null}"#.to_owned(),
            "not base64",
        ),
        (
            format!(r#"{{"quote":"{quote}","cc_eventlog":"%%"}}"#),
            "event log not base64",
        ),
    ] {
        assert!(
            matches!(
                coco_aa::parse_evidence(body.as_bytes()),
                Err(EvidenceError::CocoAa(AaError::Json(_)))
            ),
            "{what}"
        );
    }
    let short = format!(
        r#"{{"quote":"{}","cc_eventlog":null}}"#,
        STANDARD.encode(&tdx_quote_for(&RD)[..600])
    );
    assert!(matches!(
        coco_aa::parse_evidence(short.as_bytes()),
        Err(EvidenceError::Malformed(_))
    ));
}

// --- REPORT_DATA ------------------------------------------------------------

#[test]
fn evidence_for_other_report_data_is_refused() {
    for attester in [
        Attester::SnpIgnoringReportData,
        Attester::TdxIgnoringReportData,
    ] {
        let s = stand_in(router(attester));
        assert!(matches!(
            collect(&s.addr, TIMEOUT),
            Err(EvidenceError::ReportDataMismatch)
        ));
    }
}

#[test]
fn a_server_without_the_encoding_parameter_is_explained() {
    let attester = Attester::Snp { certs: None };
    let s = stand_in(Behaviour::Router {
        attester,
        legacy: true,
        peer_is_loopback: true,
    });
    let err = collect(&s.addr, TIMEOUT).unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::CocoAa(AaError::Status { status: 500, .. })
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("no more than 64 bytes") && msg.contains("v0.21.0"),
        "{msg}"
    );
}

// --- HTTP errors ------------------------------------------------------------

#[test]
fn feature_not_enabled_names_the_kata_setting() {
    let s = stand_in(Behaviour::ResourceOnly);
    let err = collect(&s.addr, TIMEOUT).unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::CocoAa(AaError::FeatureNotEnabled { .. })
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("agent.guest_components_rest_api=attestation"),
        "{msg}"
    );
    assert!(
        msg.contains("Attestation Feature Not Enabled") && msg.contains("kernel command line"),
        "{msg}"
    );
}

#[test]
fn forbidden() {
    let s = stand_in(Behaviour::Router {
        attester: Attester::Snp { certs: None },
        legacy: false,
        peer_is_loopback: false,
    });
    let err = collect(&s.addr, TIMEOUT).unwrap_err();
    assert!(
        matches!(err, EvidenceError::CocoAa(AaError::Forbidden { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("loopback"));
}

#[test]
fn other_statuses() {
    let s = stand_in(answer(404, b"URL NOT FOUND"));
    match collect(&s.addr, TIMEOUT) {
        Err(EvidenceError::CocoAa(AaError::Status {
            status: 404, body, ..
        })) => assert_eq!(body, "URL NOT FOUND"),
        other => panic!("{other:?}"),
    }
    let s = stand_in(answer(500, b"Failed to get\x00evidence: x"));
    match collect(&s.addr, TIMEOUT) {
        Err(EvidenceError::CocoAa(AaError::Status {
            status: 500, body, ..
        })) => {
            assert_eq!(body, "Failed to get.evidence: x")
        }
        other => panic!("{other:?}"),
    }
}

/// A complete answer with this status and body.
fn answer(status: u16, body: &[u8]) -> Behaviour {
    let mut msg = Vec::new();
    bounded_http::write_response(&mut msg, status, &[], body).unwrap();
    Behaviour::Raw(msg)
}

fn ok_with(body: &[u8]) -> Behaviour {
    let mut msg = Vec::new();
    bounded_http::write_response(
        &mut msg,
        200,
        &[("content-type", "application/octet-stream")],
        body,
    )
    .unwrap();
    Behaviour::Raw(msg)
}

#[test]
fn malformed_json_is_refused() {
    for body in [
        &b"{\"attestation_report\": "[..],
        b"[]",
        b"\"x\"",
        b"",
        b"{\"foo\":1}",
    ] {
        let s = stand_in(ok_with(body));
        let err = collect(&s.addr, TIMEOUT).unwrap_err();
        assert!(
            matches!(err, EvidenceError::CocoAa(AaError::Json(_))),
            "{:?}: {err:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn sample_evidence_is_refused() {
    let s = stand_in(router(Attester::Sample));
    let err = collect(&s.addr, TIMEOUT).unwrap_err();
    assert!(
        matches!(err, EvidenceError::CocoAa(AaError::SampleEvidence)),
        "{err:?}"
    );
}

#[test]
fn oversized_body_is_refused_unread() {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
        coco_aa::MAX_BODY + 1
    );
    let s = stand_in(Behaviour::Raw(head.into_bytes()));
    match collect(&s.addr, TIMEOUT) {
        Err(EvidenceError::CocoAa(AaError::Http {
            source: bounded_http::HttpError::BodyTooLarge { declared, limit },
            ..
        })) => {
            assert_eq!(
                (declared, limit),
                (coco_aa::MAX_BODY + 1, coco_aa::MAX_BODY)
            )
        }
        other => panic!("{other:?}"),
    }
    // Chunked, with no declared length: stopped at the limit too.
    let mut chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..3 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    let s = stand_in(Behaviour::Raw(chunked));
    assert!(matches!(
        collect(&s.addr, TIMEOUT),
        Err(EvidenceError::CocoAa(AaError::Http {
            source: bounded_http::HttpError::BodyTooLarge { .. },
            ..
        }))
    ));
}

#[test]
fn connection_refused() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = Addr::Tcp(format!("127.0.0.1:{port}"));
    let err = collect(&addr, TIMEOUT).unwrap_err();
    assert!(
        matches!(err, EvidenceError::CocoAa(AaError::Unreachable { .. })),
        "{err:?}"
    );
}

#[test]
fn a_silent_server_times_out() {
    let s = stand_in(Behaviour::Silent(Duration::from_secs(3)));
    let start = Instant::now();
    let err = collect(&s.addr, Duration::from_millis(300)).unwrap_err();
    assert!(
        matches!(err, EvidenceError::CocoAa(AaError::Timeout { .. })),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_trickling_server_cannot_extend_the_deadline() {
    // One byte every 50 ms: each read succeeds, the whole answer would take 2 s.
    let s = stand_in(Behaviour::Trickle);
    let start = Instant::now();
    let err = collect(&s.addr, Duration::from_millis(400)).unwrap_err();
    assert!(
        matches!(err, EvidenceError::CocoAa(AaError::Timeout { .. })),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn non_loopback_addresses_are_refused_before_connecting() {
    for addr in [
        "tcp://192.0.2.1:8006",
        "tcp://localhost:8006",
        "unix:///run/aa.sock",
    ] {
        let err = collect(&addr.parse().unwrap(), TIMEOUT).unwrap_err();
        assert!(
            matches!(err, EvidenceError::CocoAa(AaError::NotLoopback { .. })),
            "{addr}: {err:?}"
        );
    }
}

// --- Detection --------------------------------------------------------------

fn scratch(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("coco-aa-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn paths_in(dir: &std::path::Path, coco_aa: Addr) -> Paths {
    Paths {
        tsm_root: dir.join("tsm/report"),
        sev_guest: dir.join("sev-guest"),
        tdx_guest: dir.join("tdx_guest"),
        coco_aa,
        ccel: evidence::ccel::CcelPaths {
            table: dir.join("CCEL"),
            data: dir.join("data/CCEL"),
        },
        tpm: evidence::tpm_device::TpmAddr::Device(dir.join("tpmrm0")),
        nsm: dir.join("nsm"),
    }
}

#[test]
fn detection_probes_the_agent_after_the_hardware() {
    let dir = scratch("detect");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let aa = Addr::Tcp(listener.local_addr().unwrap().to_string());
    let mut paths = paths_in(&dir, aa);
    assert_eq!(evidence::detect(&paths).unwrap(), SourceKind::CocoAa);

    // The order is fixed: hardware first, even with the agent listening.
    std::fs::write(&paths.sev_guest, b"").unwrap();
    assert_eq!(evidence::detect(&paths).unwrap(), SourceKind::SevGuest);
    std::fs::create_dir_all(&paths.tsm_root).unwrap();
    assert_eq!(evidence::detect(&paths).unwrap(), SourceKind::ConfigfsTsm);
    // /dev/nsm exists only in a Nitro enclave: it comes before the others.
    std::fs::write(&paths.nsm, b"").unwrap();
    assert_eq!(evidence::detect(&paths).unwrap(), SourceKind::Nitro);

    // Nothing listening: no TEE, and the list says what was tried, in order.
    drop(listener);
    let dir = scratch("detect-none");
    paths = paths_in(&dir, paths.coco_aa.clone());
    match evidence::detect(&paths) {
        Err(EvidenceError::NoTee { tried }) => {
            let names: Vec<&str> = tried.iter().map(|t| t.split(':').next().unwrap()).collect();
            assert_eq!(
                names,
                [
                    "azure-vtpm",
                    "nitro",
                    "configfs-tsm",
                    "sev-guest",
                    "tdx-guest",
                    "coco-aa"
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    // A non-loopback address is not probed.
    paths.coco_aa = "tcp://192.0.2.1:8006".parse().unwrap();
    match evidence::detect(&paths) {
        Err(EvidenceError::NoTee { tried }) => assert!(tried[5].contains("loopback"), "{tried:?}"),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn default_paths_and_names() {
    assert_eq!(Paths::default().coco_aa.to_string(), "tcp://127.0.0.1:8006");
    assert_eq!("coco-aa".parse::<SourceKind>().unwrap(), SourceKind::CocoAa);
    assert_eq!(SourceKind::CocoAa.as_str(), "coco-aa");
    assert_eq!(
        CocoAa::new(Paths::default().coco_aa, TIMEOUT).kind(),
        SourceKind::CocoAa
    );
}

// --- Differential: sev's serde form back to the exact bytes ----------------

/// sev serialises the report; we rebuild it: the bytes must be identical,
/// and identical to sev's own encoder's.
fn round_trip(bytes: &[u8], what: &str) {
    let body = snp_json(bytes, None);
    let bundle = coco_aa::parse_evidence(body.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(&bundle.evidence[..], bytes, "{what}");
    let theirs = sev::firmware::guest::AttestationReport::from_bytes(bytes)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_eq!(&theirs[..], bytes, "{what}: sev's own encoder");
}

#[test]
fn differential_every_fixture_report() {
    let mut n = 0;
    for entry in std::fs::read_dir(fixtures().join("snp")).unwrap() {
        let report = entry.unwrap().path().join("report.bin");
        if report.exists() {
            round_trip(
                &std::fs::read(&report).unwrap(),
                &report.display().to_string(),
            );
            n += 1;
        }
    }
    assert!(n >= 4, "only {n} fixture reports");
}

fn turin_tcb(fmc: u8, bl: u8, tee: u8, snp: u8, ucode: u8) -> TcbVersion {
    TcbVersion::from_bytes([fmc, bl, tee, snp, 0, 0, 0, ucode])
}

#[test]
fn differential_other_versions_and_generations() {
    let v3 = AttestationReport::parse(&fixture("snp/milan-v3-vlek-trustee/report.bin")).unwrap();
    let v2 = AttestationReport::parse(&fixture("snp/milan-v2-virtee/report.bin")).unwrap();

    let mut milan_v4 = v3;
    milan_v4.version = 4;
    round_trip(&milan_v4.to_bytes(), "Milan v4");

    let mut genoa = v3;
    (genoa.cpuid_fam_id, genoa.cpuid_mod_id, genoa.cpuid_step) = (0x19, 0x11, 1);
    round_trip(&genoa.to_bytes(), "Genoa v3");

    for (family, model, name) in [(0x1A, 0x02, "Turin v5"), (0x1A, 0x50, "Venice v5")] {
        let mut r = v3;
        r.version = 5;
        (r.cpuid_fam_id, r.cpuid_mod_id, r.cpuid_step) = (family, model, 0);
        r.current_tcb = turin_tcb(1, 2, 3, 4, 5);
        r.reported_tcb = turin_tcb(6, 7, 8, 9, 10);
        r.committed_tcb = turin_tcb(11, 12, 13, 14, 15);
        r.launch_tcb = turin_tcb(16, 17, 18, 19, 20);
        (r.launch_mit_vector, r.current_mit_vector) =
            (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        round_trip(&r.to_bytes(), name);
    }

    // Version 2 on Turin: sev tells it from a CHIP_ID with zeros after byte 8.
    let mut turin_v2 = v2;
    turin_v2.chip_id[8..].fill(0);
    turin_v2.current_tcb = turin_tcb(1, 2, 3, 4, 5);
    turin_v2.reported_tcb = turin_tcb(1, 2, 3, 4, 5);
    turin_v2.committed_tcb = turin_tcb(1, 2, 3, 4, 5);
    turin_v2.launch_tcb = turin_tcb(1, 2, 3, 4, 5);
    round_trip(&turin_v2.to_bytes(), "Turin v2");
}

#[test]
fn bytes_sev_does_not_carry_are_lost_so_the_signature_fails() {
    // A Milan TCB_VERSION with a reserved byte set: sev drops it, so the
    // rebuilt report differs from what the PSP signed (fail closed).
    let mut r = AttestationReport::parse(&fixture("snp/milan-v2-virtee/report.bin")).unwrap();
    let mut tcb = r.current_tcb.to_bytes();
    tcb[3] = 0x42;
    r.current_tcb = TcbVersion::from_bytes(tcb);
    let original = r.to_bytes();
    let rebuilt = coco_aa::parse_evidence(snp_json(&original, None).as_bytes()).unwrap();
    assert_ne!(&rebuilt.evidence[..], &original[..]);
}

/// The sev JSON of the v2 fixture, to mutate.
fn report_json() -> serde_json::Value {
    serde_json::from_str(&snp_json(
        &fixture("snp/milan-v2-virtee/report.bin"),
        Some(vcek_chain()),
    ))
    .unwrap()
}

#[test]
fn snp_shapes_are_strict() {
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 13] = [
        ("cert_chain missing", |v| {
            v.as_object_mut().unwrap().remove("cert_chain");
        }),
        ("unknown top-level field", |v| v["extra"] = 1.into()),
        ("unknown report field", |v| {
            v["attestation_report"]["extra"] = 1.into()
        }),
        ("report field missing", |v| {
            v["attestation_report"]
                .as_object_mut()
                .unwrap()
                .remove("host_data");
        }),
        ("optional report field missing", |v| {
            v["attestation_report"]
                .as_object_mut()
                .unwrap()
                .remove("launch_mit_vector");
        }),
        ("short report_data", |v| {
            v["attestation_report"]["report_data"]
                .as_array_mut()
                .unwrap()
                .pop();
        }),
        ("byte out of range", |v| {
            v["attestation_report"]["measurement"][0] = 256.into()
        }),
        ("version 6", |v| {
            v["attestation_report"]["version"] = 6.into()
        }),
        ("v2 with CPUID", |v| {
            v["attestation_report"]["cpuid_fam_id"] = 0x19.into()
        }),
        ("v2 with mitigation vectors", |v| {
            v["attestation_report"]["launch_mit_vector"] = 0.into();
            v["attestation_report"]["current_mit_vector"] = 0.into();
        }),
        ("Milan TCB with fmc", |v| {
            v["attestation_report"]["current_tcb"]["fmc"] = 1.into()
        }),
        ("masked CHIP_ID in v2", |v| {
            v["attestation_report"]["chip_id"] = vec![0u8; 64].into()
        }),
        ("unknown cert type", |v| {
            v["cert_chain"][0]["cert_type"] = "PEK".into()
        }),
    ];
    let valid = report_json();
    assert!(coco_aa::parse_evidence(valid.to_string().as_bytes()).is_ok());
    for (what, edit) in cases {
        let mut v = valid.clone();
        edit(&mut v);
        let err = coco_aa::parse_evidence(v.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(err, EvidenceError::CocoAa(AaError::Json(_))),
            "{what}: {err:?}"
        );
    }
    // v3: the CPUID fields are required, and must name a known generation.
    let v3: serde_json::Value = serde_json::from_str(&snp_json(
        &fixture("snp/milan-v3-vlek-trustee/report.bin"),
        None,
    ))
    .unwrap();
    for (what, field, value) in [
        ("v3 without CPUID", "cpuid_fam_id", serde_json::Value::Null),
        ("unknown generation", "cpuid_fam_id", 0x17.into()),
    ] {
        let mut v = v3.clone();
        v["attestation_report"][field] = value;
        assert!(
            matches!(
                coco_aa::parse_evidence(v.to_string().as_bytes()),
                Err(EvidenceError::CocoAa(AaError::Json(_)))
            ),
            "{what}"
        );
    }
}
