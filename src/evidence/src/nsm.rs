//! `/dev/nsm`: the Nitro Secure Module of an AWS Nitro enclave.
//!
//! One `Attestation` request (`tee_formats::nsm`, CBOR) through the driver's
//! ioctl (`NSM_IOCTL_RAW`, see `sys`), answered by an attestation document:
//! a COSE_Sign1 signed by the Nitro hypervisor's key, whose certificate
//! chains to the AWS Nitro Enclaves root. The bundle carries it as it came;
//! the verifier appraises it (`appraisal::nitro`).
//!
//! What the request carries (the verifier checks all three):
//! - `user_data`: our 64-byte REPORT_DATA binding (`tee_formats::binding`,
//!   the same bytes SEV-SNP puts in REPORT_DATA);
//! - `nonce`: the verifier's nonce;
//! - `public_key`: the enclave key's SPKI DER.
//!
//! Operator evidence ([`crate::operator_report_data`]) has no verifier nonce
//! or session key: it carries the REPORT_DATA only.
//!
//! SIMULATION: where there is no Nitro hardware (process mode, tests),
//! `tee.nsm` names a `unix://` socket of `enclavectl sim-nsm` instead of the
//! device, which answers the same CBOR bytes, each message preceded by its
//! length (u32, big-endian). Its documents chain to a simulation root that
//! no production policy accepts.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use tee_formats::nsm::{AttestationRequest, Response, REQUEST_MAX, RESPONSE_MAX};
use wire::{EvidenceBundle, Tee};

use crate::{Binding, EvidenceError, EvidenceSource, SourceKind, REPORT_DATA_LEN};

/// Where the NSM is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsmAddr {
    /// The NSM character device (`/dev/nsm`).
    Device(PathBuf),
    /// SIMULATION: `enclavectl sim-nsm` on a Unix socket (`unix:///path`).
    Unix(PathBuf),
}

impl Default for NsmAddr {
    fn default() -> Self {
        NsmAddr::Device(PathBuf::from("/dev/nsm"))
    }
}

impl FromStr for NsmAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.starts_with('/') {
                return Ok(NsmAddr::Unix(PathBuf::from(p)));
            }
        } else if s.starts_with('/') {
            return Ok(NsmAddr::Device(PathBuf::from(s)));
        }
        Err(format!(
            "NSM address {s:?} is neither an absolute device path nor unix:///PATH"
        ))
    }
}

impl fmt::Display for NsmAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NsmAddr::Device(p) => write!(f, "{}", p.display()),
            NsmAddr::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// The Nitro evidence source.
pub struct Nsm {
    addr: NsmAddr,
    timeout: Duration,
}

impl Nsm {
    /// A source talking to the NSM at `addr`; `timeout` bounds a whole
    /// socket exchange (the device is bounded by its driver).
    pub fn new(addr: NsmAddr, timeout: Duration) -> Self {
        Nsm { addr, timeout }
    }

    /// Sends `request` and returns the attestation document.
    pub fn attest(&mut self, request: &AttestationRequest) -> Result<Vec<u8>, EvidenceError> {
        let bytes = request.encode().map_err(EvidenceError::Malformed)?;
        let answer = match &self.addr {
            NsmAddr::Device(path) => {
                let mut buf = vec![0u8; RESPONSE_MAX];
                let len = crate::sys::nsm_request(path, &bytes, &mut buf).map_err(|e| {
                    EvidenceError::Firmware {
                        errno: e.errno,
                        fw_error: 0,
                        vmm_error: 0,
                    }
                })?;
                buf.truncate(len);
                buf
            }
            NsmAddr::Unix(path) => exchange_socket(path, &bytes, Instant::now() + self.timeout)?,
        };
        match Response::parse(&answer).map_err(EvidenceError::Malformed)? {
            Response::Attestation { document } => Ok(document),
            Response::Error(code) => Err(EvidenceError::Nsm(format!("the NSM refused: {code}"))),
        }
    }

    fn bundle(&mut self, request: &AttestationRequest) -> Result<EvidenceBundle, EvidenceError> {
        let document = self.attest(request)?;
        check_document(&document, request)?;
        let provider = match self.addr {
            NsmAddr::Device(_) => "nsm",
            NsmAddr::Unix(_) => "sim-nsm",
        };
        Ok(EvidenceBundle::new(Tee::Nitro, provider, document))
    }
}

impl EvidenceSource for Nsm {
    fn kind(&self) -> SourceKind {
        SourceKind::Nitro
    }

    fn collect(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<EvidenceBundle, EvidenceError> {
        self.bundle(&AttestationRequest {
            user_data: Some(report_data.to_vec()),
            nonce: None,
            public_key: None,
        })
    }

    fn collect_bound(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
        binding: &Binding<'_>,
    ) -> Result<EvidenceBundle, EvidenceError> {
        self.bundle(&AttestationRequest {
            user_data: Some(report_data.to_vec()),
            nonce: Some(binding.nonce.to_vec()),
            public_key: Some(binding.spki.to_vec()),
        })
    }
}

/// Checks that the document parses and carries exactly what was asked for,
/// as the other sources check their REPORT_DATA: a document made for
/// another session (replayed by whoever answers on the device or socket) is
/// refused here already. The verifier checks it all again, with the
/// signature and the chain.
fn check_document(document: &[u8], request: &AttestationRequest) -> Result<(), EvidenceError> {
    let parsed = tee_formats::nitro::Document::parse(document)
        .map_err(|e| EvidenceError::Nsm(format!("the attestation document does not parse: {e}")))?;
    let d = &parsed.doc;
    if d.user_data != request.user_data.as_deref()
        || d.nonce != request.nonce.as_deref()
        || d.public_key != request.public_key.as_deref()
    {
        return Err(EvidenceError::ReportDataMismatch);
    }
    Ok(())
}

/// One request and its response over the simulated NSM's socket, the whole
/// exchange (connect, write, every read) within `deadline`: a peer that
/// drips bytes cannot stretch it.
fn exchange_socket(
    path: &std::path::Path,
    request: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, EvidenceError> {
    let io = |op: &'static str| {
        move |source| EvidenceError::Io {
            op,
            path: format!("unix://{}", path.display()),
            source,
        }
    };
    let len = match u32::try_from(request.len()) {
        Ok(len) if request.len() <= REQUEST_MAX => len,
        _ => {
            return Err(EvidenceError::Nsm(format!(
                "request over the NSM's {REQUEST_MAX}-byte limit"
            )))
        }
    };
    let mut s = UnixStream::connect(path).map_err(io("connect to the simulated NSM"))?;
    set_remaining(&s, deadline).map_err(io("send to the simulated NSM"))?;
    let mut out = Vec::with_capacity(4 + request.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(request);
    s.write_all(&out).map_err(io("send to the simulated NSM"))?;
    let mut len = [0u8; 4];
    read_by(&mut s, &mut len, deadline).map_err(io("read from the simulated NSM"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > RESPONSE_MAX {
        return Err(EvidenceError::Nsm(format!(
            "the simulated NSM announces a {len}-byte response, over the {RESPONSE_MAX}-byte buffer"
        )));
    }
    let mut body = vec![0u8; len];
    read_by(&mut s, &mut body, deadline).map_err(io("read from the simulated NSM"))?;
    Ok(body)
}

fn set_remaining(s: &UnixStream, deadline: Instant) -> std::io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::ErrorKind::TimedOut.into());
    }
    s.set_read_timeout(Some(left))?;
    s.set_write_timeout(Some(left))
}

/// Fills `buf`, each read bounded by what is left until `deadline`.
fn read_by(s: &mut UnixStream, buf: &mut [u8], deadline: Instant) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        set_remaining(s, deadline)?;
        match s.read(&mut buf[done..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn addresses_parse() {
        assert_eq!("/dev/nsm".parse::<NsmAddr>().unwrap(), NsmAddr::default());
        assert_eq!(
            "unix:///run/nsm.sock".parse::<NsmAddr>().unwrap(),
            NsmAddr::Unix("/run/nsm.sock".into())
        );
        assert!("nsm".parse::<NsmAddr>().is_err());
        assert!("vsock://3:9000".parse::<NsmAddr>().is_err());
    }

    /// A peer on the socket: reads one request, then runs `answer`.
    fn peer(
        answer: impl FnOnce(&mut UnixStream, Vec<u8>) + Send + 'static,
    ) -> (tempdir::Dir, std::thread::JoinHandle<()>) {
        let dir = tempdir::Dir::new();
        let listener = UnixListener::bind(dir.sock()).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut len = [0u8; 4];
            s.read_exact(&mut len).unwrap();
            let mut req = vec![0u8; u32::from_be_bytes(len) as usize];
            s.read_exact(&mut req).unwrap();
            answer(&mut s, req);
        });
        (dir, t)
    }

    fn framed(bytes: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn the_bound_request_carries_report_data_nonce_and_key_and_the_document_comes_back() {
        let (dir, t) = peer(|s, req| {
            let req = AttestationRequest::parse(&req).unwrap();
            assert_eq!(req.user_data.as_deref(), Some(&[7u8; 64][..]));
            assert_eq!(req.nonce.as_deref(), Some(&[1u8; 32][..]));
            assert_eq!(req.public_key.as_deref(), Some(&b"spki"[..]));
            let doc = Response::Attestation {
                document: document(&req),
            };
            s.write_all(&framed(&doc.encode())).unwrap();
        });
        let mut nsm = Nsm::new(NsmAddr::Unix(dir.sock()), Duration::from_secs(5));
        let binding = Binding {
            nonce: &[1; 32],
            spki: b"spki",
        };
        let bundle = nsm.collect_bound(&[7; 64], &binding).unwrap();
        t.join().unwrap();
        assert_eq!(bundle.tee, Tee::Nitro);
        assert_eq!(bundle.provider, "sim-nsm");
        let expected = AttestationRequest {
            user_data: Some(vec![7; 64]),
            nonce: Some(vec![1; 32]),
            public_key: Some(b"spki".to_vec()),
        };
        assert_eq!(bundle.evidence.0, document(&expected));
    }

    #[test]
    fn a_document_for_other_report_data_is_refused() {
        let (dir, t) = peer(|s, req| {
            let mut req = AttestationRequest::parse(&req).unwrap();
            req.user_data = Some(vec![8; 64]); // another session's binding
            let doc = Response::Attestation {
                document: document(&req),
            };
            s.write_all(&framed(&doc.encode())).unwrap();
        });
        let mut nsm = Nsm::new(NsmAddr::Unix(dir.sock()), Duration::from_secs(5));
        let e = nsm.collect(&[7; 64]).unwrap_err();
        t.join().unwrap();
        assert!(matches!(e, EvidenceError::ReportDataMismatch), "{e}");
    }

    #[test]
    fn a_document_that_does_not_parse_is_refused() {
        let (dir, t) = peer(|s, _| {
            let doc = Response::Attestation {
                document: vec![0x84, 1, 2],
            };
            s.write_all(&framed(&doc.encode())).unwrap();
        });
        let mut nsm = Nsm::new(NsmAddr::Unix(dir.sock()), Duration::from_secs(5));
        let e = nsm.collect(&[7; 64]).unwrap_err();
        t.join().unwrap();
        assert!(
            e.to_string()
                .starts_with("NSM: the attestation document does not parse: at byte "),
            "{e}"
        );
    }

    /// An attestation document in the NSM's shape carrying what `req` asks
    /// for (unsigned: the guest does not verify signatures, the verifier does).
    fn document(req: &AttestationRequest) -> Vec<u8> {
        use tee_formats::nitro;
        let payload = nitro::AttestationDoc {
            module_id: "i-0-enc-test",
            digest: "SHA384",
            timestamp_ms: 1,
            pcrs: vec![(0, &[0; 48][..])],
            certificate: &[0x30, 0x00],
            cabundle: vec![&[0x30, 0x00]],
            public_key: req.public_key.as_deref(),
            user_data: req.user_data.as_deref(),
            nonce: req.nonce.as_deref(),
        }
        .encode_payload();
        nitro::encode_cose_sign1(&payload, &[0; nitro::SIGNATURE_LEN], false)
    }

    #[test]
    fn an_nsm_error_is_an_error_with_its_code() {
        let (dir, t) = peer(|s, _| {
            let err = Response::Error("InvalidArgument".into());
            s.write_all(&framed(&err.encode())).unwrap();
        });
        let mut nsm = Nsm::new(NsmAddr::Unix(dir.sock()), Duration::from_secs(5));
        let e = nsm.collect(&[0; 64]).unwrap_err();
        t.join().unwrap();
        assert_eq!(e.to_string(), "NSM: the NSM refused: InvalidArgument");
    }

    #[test]
    fn an_oversized_length_is_refused_before_reading() {
        let (dir, t) = peer(|s, _| {
            s.write_all(&(u32::try_from(RESPONSE_MAX).unwrap() + 1).to_be_bytes())
                .unwrap();
        });
        let mut nsm = Nsm::new(NsmAddr::Unix(dir.sock()), Duration::from_secs(5));
        let e = nsm.collect(&[0; 64]).unwrap_err();
        t.join().unwrap();
        assert!(e.to_string().contains("12289-byte response"), "{e}");
    }

    #[test]
    fn a_dripping_peer_cannot_stretch_the_deadline() {
        let (dir, t) = peer(|s, _| {
            // One byte every 100 ms: each read is quick, the whole is not.
            for b in framed(&[0xa0; 64]) {
                if s.write_all(&[b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let mut nsm = Nsm::new(NsmAddr::Unix(dir.sock()), Duration::from_millis(700));
        let started = Instant::now();
        let e = nsm.collect(&[0; 64]).unwrap_err();
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(1500),
            "took {took:?}, deadline 700 ms"
        );
        assert!(matches!(e, EvidenceError::Io { .. }), "{e}");
        t.join().unwrap();
    }

    /// A private directory for a socket, removed on drop.
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "nsm-test-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn sock(&self) -> std::path::PathBuf {
                self.0.join("nsm.sock")
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
