//! A SIMULATED AWS Nitro Secure Module, for development and tests only
//! (there is no Nitro hardware here). NOT AWS: its documents chain to a root
//! generated at start, named "enclave-init SIMULATED NSM root, not AWS",
//! which no production policy accepts; a development policy pins it by
//! [`SimNsm::root_sha256`] (`[nitro] sim_root_sha256`).
//!
//! It answers the NSM's `Attestation` request (`tee_formats::nsm`) with an
//! attestation document in AWS's shape: an untagged COSE_Sign1 (protected
//! header `{1: -35}`, ES384, empty unprotected header) over the CBOR map
//! `module_id, digest = "SHA384", timestamp (ms), pcrs {0..15: 48 bytes},
//! certificate, cabundle [root, intermediate], public_key, user_data,
//! nonce` (absent fields are `null`, as the NSM writes them), signed by a
//! leaf key under root → intermediate → leaf, all P-384.
//!
//! Transport: a Unix socket; each message (request, then response) is
//! preceded by its length, u32 big-endian (`evidence::nsm` is the client).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use ring::signature::{EcdsaKeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
use sha2::{Digest as _, Sha256};
use tee_formats::nitro;
use tee_formats::nsm::{AttestationRequest, Response, REQUEST_MAX};

/// The simulation root's common name (says what it is, wherever it shows).
pub const ROOT_CN: &str = "enclave-init SIMULATED NSM root, not AWS";
/// The module id in every document.
pub const MODULE_ID: &str = "i-00000000000000000-enc-simulated";
/// How many PCRs a document lists (as AWS's NSM: 0 to 15).
pub const PCR_COUNT: u8 = 16;
/// Bytes of a PCR (SHA-384).
pub const PCR_LEN: usize = 48;

/// Why the simulated NSM could not start or sign.
#[derive(Debug)]
pub struct NsmSimError(pub String);

impl std::fmt::Display for NsmSimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "simulated NSM: {}", self.0)
    }
}

impl std::error::Error for NsmSimError {}

fn err(what: &str) -> impl Fn(rcgen::Error) -> NsmSimError + '_ {
    move |e| NsmSimError(format!("{what}: {e}"))
}

/// The simulated NSM: its chain, its leaf key and the PCRs it reports.
pub struct SimNsm {
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    leaf_der: Vec<u8>,
    leaf_key: EcdsaKeyPair,
    pcrs: BTreeMap<u8, [u8; PCR_LEN]>,
}

impl SimNsm {
    /// Generates a new chain (valid from yesterday: root to 2049, the
    /// others for 30 days) reporting `pcrs` (others are zero).
    pub fn generate(pcrs: BTreeMap<u8, [u8; PCR_LEN]>) -> Result<SimNsm, NsmSimError> {
        if let Some(i) = pcrs.keys().find(|i| **i >= PCR_COUNT) {
            return Err(NsmSimError(format!("PCR{i}: the NSM has PCR0 to PCR15")));
        }
        let today = days_since_epoch(SystemTime::now());
        let alg = &rcgen::PKCS_ECDSA_P384_SHA384;

        let mut root = ca_params(ROOT_CN, today)?;
        let (y, _, _) = civil(today);
        root.not_after = rcgen::date_time_ymd((y + 30).min(2049), 12, 31);
        let root_key = KeyPair::generate_for(alg).map_err(err("root key"))?;
        let root_der = root
            .self_signed(&root_key)
            .map_err(err("root"))?
            .der()
            .to_vec();
        let root_issuer = Issuer::new(root, root_key);

        let inter = ca_params("enclave-init SIMULATED NSM intermediate, not AWS", today)?;
        let inter_key = KeyPair::generate_for(alg).map_err(err("intermediate key"))?;
        let intermediate_der = inter
            .signed_by(&inter_key, &root_issuer)
            .map_err(err("intermediate"))?
            .der()
            .to_vec();
        let inter_issuer = Issuer::new(inter, inter_key);

        // Like AWS's leaves: no CA, no AuthorityKeyIdentifier.
        let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(err("leaf"))?;
        leaf.distinguished_name.push(
            DnType::CommonName,
            "enclave-init SIMULATED NSM signer, not AWS",
        );
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        window(&mut leaf, today);
        let leaf_key = KeyPair::generate_for(alg).map_err(err("leaf key"))?;
        let leaf_der = leaf
            .signed_by(&leaf_key, &inter_issuer)
            .map_err(err("leaf"))?
            .der()
            .to_vec();
        let leaf_key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P384_SHA384_FIXED_SIGNING,
            &leaf_key.serialize_der(),
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| NsmSimError(format!("leaf key: {e}")))?;
        Ok(SimNsm {
            root_der,
            intermediate_der,
            leaf_der,
            leaf_key,
            pcrs,
        })
    }

    /// SHA-256 of the root certificate's DER, lowercase hex: what a
    /// development policy pins as `[nitro] sim_root_sha256`.
    pub fn root_sha256(&self) -> String {
        hex(&Sha256::digest(&self.root_der))
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The leaf's public key (uncompressed SEC1 point).
    #[cfg(test)]
    fn leaf_key_public(&self) -> &[u8] {
        use ring::signature::KeyPair as _;
        self.leaf_key.public_key().as_ref()
    }

    /// The PCR values reported, PCR0 to PCR15.
    pub fn pcr(&self, index: u8) -> [u8; PCR_LEN] {
        self.pcrs.get(&index).copied().unwrap_or([0; PCR_LEN])
    }

    /// An attestation document for `request`, timestamped `now_ms`.
    pub fn document(
        &self,
        request: &AttestationRequest,
        now_ms: u64,
    ) -> Result<Vec<u8>, NsmSimError> {
        // The document in the format crate's one encoding (the appraisal
        // parses the same module's layout; real AWS documents re-encode to
        // their exact bytes through it).
        let pcrs: Vec<[u8; PCR_LEN]> = (0..PCR_COUNT).map(|i| self.pcr(i)).collect();
        let payload = nitro::AttestationDoc {
            module_id: MODULE_ID,
            digest: "SHA384",
            timestamp_ms: now_ms,
            pcrs: (0..PCR_COUNT).zip(pcrs.iter().map(|p| &p[..])).collect(),
            certificate: &self.leaf_der,
            cabundle: vec![&self.root_der, &self.intermediate_der],
            public_key: request.public_key.as_deref(),
            user_data: request.user_data.as_deref(),
            nonce: request.nonce.as_deref(),
        }
        .encode_payload();
        let to_sign = nitro::sig_structure(&nitro::PROTECTED_ES384, &payload);
        let signature = self
            .leaf_key
            .sign(&ring::rand::SystemRandom::new(), &to_sign)
            .map_err(|_| NsmSimError("signing failed".into()))?;
        let signature: &[u8; nitro::SIGNATURE_LEN] = signature
            .as_ref()
            .try_into()
            .map_err(|_| NsmSimError("signature is not r || s of P-384".into()))?;
        Ok(nitro::encode_cose_sign1(&payload, signature, false))
    }

    /// The NSM's answer to one request: the document, or an NSM error code
    /// (`InvalidArgument` for a request that does not parse, as the NSM).
    pub fn answer(&self, request: &[u8], now_ms: u64) -> Vec<u8> {
        let response = match AttestationRequest::parse(request) {
            Ok(req) => match self.document(&req, now_ms) {
                Ok(document) => Response::Attestation { document },
                Err(e) => {
                    log::warn!(error = e.to_string().as_str(); "sim-nsm: cannot sign");
                    Response::Error("InternalError".into())
                }
            },
            Err(e) => {
                log::warn!(error = e.to_string().as_str(); "sim-nsm: request refused");
                Response::Error("InvalidArgument".into())
            }
        };
        response.encode()
    }
}

fn ca_params(cn: &str, today: i64) -> Result<CertificateParams, NsmSimError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err(cn))?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    window(&mut p, today);
    Ok(p)
}

/// From yesterday to 30 days on (day granularity: rcgen's date helper).
fn window(p: &mut CertificateParams, today: i64) {
    let (y, m, d) = civil(today - 1);
    p.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil(today + 30);
    p.not_after = rcgen::date_time_ymd(y, m, d);
}

fn days_since_epoch(t: SystemTime) -> i64 {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(0)
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// civil_from_days).
fn civil(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        i32::try_from(y).unwrap_or(1970),
        u8::try_from(m).unwrap_or(1),
        u8::try_from(d).unwrap_or(1),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a connection may take for each whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `nsm` on the Unix socket `path` until the process ends: one
/// thread per connection (at most [`MAX_CONNECTIONS`]), requests in
/// sequence on each. Returns once listening; serving goes on in a thread.
pub fn serve(nsm: Arc<SimNsm>, path: &Path) -> Result<Arc<AtomicU64>, NsmSimError> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .map_err(|e| NsmSimError(format!("listen on unix://{}: {e}", path.display())))?;
    let served = Arc::new(AtomicU64::new(0));
    let active = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&served);
    std::thread::Builder::new()
        .name("sim-nsm-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    active.fetch_sub(1, Ordering::SeqCst);
                    continue; // dropped: the client sees EOF
                }
                let (nsm, active, counter) =
                    (Arc::clone(&nsm), Arc::clone(&active), Arc::clone(&counter));
                let spawned = std::thread::Builder::new()
                    .name("sim-nsm-conn".into())
                    .spawn(move || {
                        serve_connection(&nsm, stream, &counter);
                        active.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    log::warn!("sim-nsm: cannot start a connection thread");
                }
            }
        })
        .map_err(|e| NsmSimError(format!("accept thread: {e}")))?;
    Ok(served)
}

fn serve_connection(nsm: &SimNsm, mut s: UnixStream, served: &AtomicU64) {
    if s.set_read_timeout(Some(REQUEST_TIMEOUT)).is_err()
        || s.set_write_timeout(Some(REQUEST_TIMEOUT)).is_err()
    {
        return;
    }
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > REQUEST_MAX {
            log::warn!(len = len; "sim-nsm: request over the NSM's limit, closing");
            return;
        }
        let mut request = vec![0u8; len];
        if s.read_exact(&mut request).is_err() {
            return;
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let answer = nsm.answer(&request, now_ms);
        let n = served.fetch_add(1, Ordering::SeqCst) + 1;
        log::info!(request = n, bytes = answer.len(); "sim-nsm: answered");
        let Ok(alen) = u32::try_from(answer.len()) else {
            return;
        };
        let mut out = alen.to_be_bytes().to_vec();
        out.extend_from_slice(&answer);
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(civil(19_782), (2024, 2, 29));
        assert_eq!(civil(20_430), (2025, 12, 8));
    }

    /// The document is an untagged COSE_Sign1 in AWS's layout, its
    /// signature verifies over the Sig_structure with the leaf key, and it
    /// carries what the request asked for.
    #[test]
    fn the_document_has_the_aws_shape_and_verifies() {
        let mut pcrs = BTreeMap::new();
        pcrs.insert(0, [0xaa; PCR_LEN]);
        let nsm = SimNsm::generate(pcrs).unwrap();
        let req = AttestationRequest {
            user_data: Some(vec![7; 64]),
            nonce: Some(vec![1; 32]),
            public_key: None,
        };
        let doc = nsm.document(&req, 1_722_455_771_686).unwrap();
        // array(4), bstr(4) a1 01 38 22, map(0), bstr(payload, 2-byte length).
        assert_eq!(&doc[..7], &[0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0]);
        assert_eq!(doc[7], 0x59);
        let plen = usize::from(u16::from_be_bytes([doc[8], doc[9]]));
        let payload = &doc[10..10 + plen];
        assert_eq!(&doc[10 + plen..10 + plen + 2], &[0x58, 96]);
        assert_eq!(doc.len(), 10 + plen + 2 + 96);
        let signature = &doc[10 + plen + 2..];

        let mut sig_structure = vec![0x84, 0x6a];
        sig_structure.extend_from_slice(b"Signature1");
        sig_structure.extend_from_slice(&[0x44, 0xa1, 0x01, 0x38, 0x22, 0x40, 0x59]);
        sig_structure.extend_from_slice(&doc[8..10 + plen]);
        let leaf = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P384_SHA384_FIXED,
            nsm.leaf_key_public(),
        );
        leaf.verify(&sig_structure, signature).unwrap();
        let mut tampered = sig_structure.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(leaf.verify(&tampered, signature).is_err());

        // Payload: a map of 9, module_id first; PCR0 and user_data present;
        // public_key null.
        assert_eq!(payload[0], 0xa9);
        assert_eq!(&payload[1..11], b"\x69module_id");
        let find = |needle: &[u8]| payload.windows(needle.len()).position(|w| w == needle);
        let mut pcr0 = vec![0x00, 0x58, 48];
        pcr0.extend_from_slice(&[0xaa; 48]);
        assert!(find(&pcr0).is_some());
        assert!(find(b"\x6apublic_key\xf6").is_some());
        let mut user_data = b"\x69user_data\x58\x40".to_vec();
        user_data.extend_from_slice(&[7; 64]);
        assert!(find(&user_data).is_some());
        // timestamp 1722455771686 = 0x0191_0a5d_4a26 (uint, 8-byte form).
        assert!(find(b"\x69timestamp\x1b\x00\x00\x01\x91\x0a\x5d\x4a\x26").is_some());
        assert_eq!(nsm.root_sha256().len(), 64);
    }

    #[test]
    fn a_bad_request_gets_invalid_argument() {
        let nsm = SimNsm::generate(BTreeMap::new()).unwrap();
        assert_eq!(
            Response::parse(&nsm.answer(b"\xa0", 0)).unwrap(),
            Response::Error("InvalidArgument".into())
        );
        let mut bad = BTreeMap::new();
        bad.insert(16, [0; PCR_LEN]);
        assert!(SimNsm::generate(bad).is_err());
    }
}
