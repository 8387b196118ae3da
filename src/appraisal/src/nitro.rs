//! AWS Nitro Enclaves: appraisal of an NSM attestation document (a
//! COSE_Sign1, parsed by `tee_formats::nitro`), one function per check, in
//! this order (the check names of [`Check`]):
//!
//! `nitro.format` → `nitro.signature` (the COSE ES384 signature with the
//! leaf certificate's key, before any chain work: a forged document costs
//! one verification) → `nitro.chain` (root pinned by SHA-256: the AWS Nitro
//! Enclaves root G1, or a simulated NSM root of `nitro.sim_root_sha256`;
//! then each certificate signed by the one before it, issuers CAs) →
//! `nitro.time` → `nitro.digest` → `nitro.debug` → `nitro.pcr0`, `pcr1`,
//! `pcr2`, `pcr3`, `pcr4`, `pcr8` → `nitro.binding.user_data` →
//! `nitro.binding.nonce` → `nitro.binding.enclave_key`.
//!
//! Time: every certificate must be valid both at the document's `timestamp`
//! (the NSM's clock: the chain was good when the document was made) and at
//! the verifier's time (the chain is still good when we trust it; AWS leaf
//! certificates live about three hours, which bounds how old an accepted
//! document can be). A timestamp more than [`MAX_FUTURE_SECS`] after the
//! verifier's time is refused too (the NSM clock cannot be ahead of ours by
//! more than skew).
//!
//! Binding (what the guest puts in the document, `docs/architecture.md`):
//! `user_data` = the 64-byte REPORT_DATA binding (`tee_formats::binding`,
//! the same construction SEV-SNP and TDX carry), `nonce` = the verifier's
//! nonce, `public_key` = the enclave key's SPKI DER. `user_data` covers the
//! other two (REPORT_DATA hashes the nonce and the SPKI), so when the caller
//! has only REPORT_DATA the nonce and key checks are skipped as covered.
//!
//! What is not checked, and why: AWS leaf certificates have no
//! AuthorityKeyIdentifier (names and signatures link the chain instead); no
//! CRL exists for this PKI (the short lifetimes stand in for revocation);
//! pathLenConstraint is not enforced (the root is pinned and the chain is at
//! most 9 certificates).

use std::collections::BTreeMap;

use const_oid::db::rfc5280;
use const_oid::ObjectIdentifier;
use der::Decode;
use sha2::{Digest, Sha256, Sha384};
use tee_formats::nitro::{Document, PCR_LEN};

use crate::claims::{Claims, NitroClaims, NitroPolicyFlags, PolicyFlags, Tcb};
use crate::collateral::CollateralClaims;
use crate::denial::{deny, Check, Denial};
use crate::ecdsa;
use crate::hex::{self, Hex};
use crate::policy::Policy;
use crate::roots::Roots;
use crate::trace::Trace;
use crate::x509::{p384_key, Cert};

/// ecdsa-with-SHA384.
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

/// How far the document's timestamp may be ahead of the verifier's time
/// (clock skew between the NSM and the verifier).
pub const MAX_FUTURE_SECS: i64 = 300;

/// What the verifier expects the document to be bound to. `None` skips a
/// check (offline inspection has no session).
#[derive(Debug, Clone, Copy, Default)]
pub struct Binding<'a> {
    /// The REPORT_DATA the verifier recomputed (`user_data` must equal it).
    pub report_data: Option<&'a [u8; 64]>,
    /// The verifier's nonce (`nonce` must equal it).
    pub nonce: Option<&'a [u8]>,
    /// The enclave key's SPKI DER (`public_key` must equal it).
    pub enclave_spki: Option<&'a [u8]>,
}

/// Which root the chain ended at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Aws,
    Sim,
}

/// Appraises the attestation document `document` (raw COSE_Sign1 bytes)
/// against `policy` at the verifier's time `now_unix`, with the compiled-in
/// AWS root. Starts with `nitro.not_allowed`. Returns the result and the
/// checks made.
pub fn appraise(
    document: &[u8],
    policy: &Policy,
    now_unix: i64,
    binding: &Binding<'_>,
) -> (Result<Claims, Denial>, Trace) {
    let mut t = Trace::new();
    let result = match Roots::load() {
        Ok(roots) => appraise_allowed(&roots, document, policy, now_unix, binding, &mut t),
        Err(e) => t.step(
            &[],
            deny(
                Check::NitroChain,
                e.to_string(),
                "compiled-in roots matching their pins",
                "the verifier build is corrupt; rebuild it",
            ),
        ),
    };
    (result, t)
}

/// `nitro.not_allowed`, then [`appraise_document`].
pub(crate) fn appraise_allowed(
    roots: &Roots,
    document: &[u8],
    policy: &Policy,
    now: i64,
    binding: &Binding<'_>,
    t: &mut Trace,
) -> Result<Claims, Denial> {
    t.step(
        &[Check::NitroNotAllowed],
        crate::check_allowed(policy.nitro.allowed, Check::NitroNotAllowed, "nitro"),
    )?;
    appraise_document(roots, document, policy, now, binding, t)
}

fn appraise_document(
    roots: &Roots,
    document: &[u8],
    policy: &Policy,
    now: i64,
    binding: &Binding<'_>,
    t: &mut Trace,
) -> Result<Claims, Denial> {
    use Check::*;
    let p = &policy.nitro;
    let d = t.step(&[NitroFormat], parse(document))?;
    let leaf = t.step(&[NitroSignature], check_signature(&d))?;
    let (root, certs) = t.step(&[NitroChain], check_chain(roots, &d, leaf, policy))?;
    t.step(&[NitroTime], check_time(&certs, d.doc.timestamp_ms, now))?;
    t.step(&[NitroDigest], check_digest(&d))?;
    let debug = pcr(&d, 0).iter().all(|&b| b == 0);
    t.step(&[NitroDebug], check_debug(debug, p.debug_allowed))?;
    for (index, pins) in p.pcr_pins() {
        let check = pcr_check(index);
        match pins {
            None => t.skip(check, "not pinned by the policy"),
            Some(pins) => t.step(&[check], check_pcr(&d, index, pins, check))?,
        }
    }
    check_binding(&d, binding, t)?;
    Ok(claims(&d, root, debug, policy))
}

fn parse(bytes: &[u8]) -> Result<Document<'_>, Denial> {
    Document::parse(bytes).or_else(|e| {
        deny(
            Check::NitroFormat,
            e.to_string(),
            "a COSE_Sign1 NSM attestation document (tee_formats::nitro)",
            "the bytes are not an attestation document as /dev/nsm returns it",
        )
    })
}

/// The COSE signature, with the leaf's P-384 key, over the Sig_structure.
/// The leaf is not trusted yet: its chain is checked next.
fn check_signature<'a>(d: &Document<'a>) -> Result<Cert<'a>, Denial> {
    let leaf = Cert::parse(d.doc.certificate).or_else(|e| {
        deny(
            Check::NitroSignature,
            format!("leaf certificate: {e}"),
            "a DER certificate with a P-384 key",
            "the document's signing certificate is unusable",
        )
    })?;
    let key = p384_key(&leaf).or_else(|e| {
        deny(
            Check::NitroSignature,
            format!("leaf certificate key: {e}"),
            "a P-384 key (ES384)",
            "the document's signing certificate is unusable",
        )
    })?;
    // The parser guarantees 96 bytes: r ‖ s, 48 each.
    let (mut r, mut s) = ([0u8; 48], [0u8; 48]);
    r.copy_from_slice(&d.signature[..48]);
    s.copy_from_slice(&d.signature[48..]);
    if !ecdsa::verify_once(&key, &d.sig_structure(), &r, &s) {
        return deny(
            Check::NitroSignature,
            "the ES384 signature does not verify over the Sig_structure",
            "a signature by the leaf certificate's key",
            "the document was altered after the NSM signed it, or was not signed by this certificate",
        );
    }
    Ok(leaf)
}

/// The chain: `cabundle[0]` is a pinned root, each next certificate (then
/// the leaf) is issued by the previous one. Returns which root and every
/// certificate, root first, leaf last.
fn check_chain<'a>(
    roots: &Roots,
    d: &Document<'a>,
    leaf: Cert<'a>,
    policy: &Policy,
) -> Result<(Root, Vec<Cert<'a>>), Denial> {
    let Some(&root_der) = d.doc.cabundle.first() else {
        return Err(chain_denial(
            "cabundle is empty: no root (a self-signed document)".to_owned(),
        ));
    };
    let root_sha = Sha256::digest(root_der);
    let root = if root_der == roots.aws_nitro_root {
        Root::Aws
    } else if policy
        .nitro
        .sim_root_sha256
        .iter()
        .any(|h| h.0[..] == root_sha[..])
    {
        Root::Sim
    } else {
        return Err(chain_denial(format!(
            "cabundle[0] has SHA-256 {}, not the pinned AWS root 641a0321…8f79bb5b{}",
            hex::encode(&root_sha),
            if policy.nitro.sim_root_sha256.is_empty() {
                ""
            } else {
                " nor a pinned simulated NSM root"
            }
        )));
    };
    let mut certs = Vec::with_capacity(d.doc.cabundle.len() + 1);
    for (i, der) in d.doc.cabundle.iter().enumerate() {
        match Cert::parse(der) {
            Ok(c) => certs.push(c),
            Err(e) => return Err(chain_denial(format!("cabundle[{i}]: {e}"))),
        }
    }
    certs.push(leaf);
    // The root signs itself; then each certificate is signed by the previous.
    for i in 0..certs.len() {
        let issuer = if i == 0 { &certs[0] } else { &certs[i - 1] };
        if let Err(e) = verify_issued_by(&certs[i], issuer) {
            return Err(chain_denial(format!("{}: {e}", position(i, certs.len()))));
        }
        if i + 1 < certs.len() {
            if let Err(e) = check_ca(&certs[i]) {
                return Err(chain_denial(format!("{}: {e}", position(i, certs.len()))));
            }
        }
    }
    Ok((root, certs))
}

fn chain_denial(got: String) -> Denial {
    Denial::new(
        Check::NitroChain,
        got,
        "cabundle + certificate chained to the AWS Nitro Enclaves root",
        "the document was not issued by AWS's NSM PKI (or by a simulated NSM this policy pins)",
    )
}

fn position(i: usize, n: usize) -> String {
    if i + 1 == n {
        "certificate (leaf)".to_owned()
    } else {
        format!("cabundle[{i}]")
    }
}

/// `issuer` signed `subject` with ECDSA P-384 SHA-384, names chain.
fn verify_issued_by(subject: &Cert<'_>, issuer: &Cert<'_>) -> Result<(), String> {
    let s = &subject.cert;
    if s.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
        return Err(format!(
            "issuer is not the subject {:?} of the certificate before it",
            issuer.subject_cn().unwrap_or_default()
        ));
    }
    if s.signature_algorithm.oid != ECDSA_WITH_SHA384
        || s.tbs_certificate.signature.oid != ECDSA_WITH_SHA384
    {
        return Err(format!(
            "signature algorithm {} is not ecdsa-with-SHA384",
            s.signature_algorithm.oid
        ));
    }
    let key = p384_key(issuer).map_err(|e| format!("issuer key: {e}"))?;
    let sig_der = s
        .signature
        .as_bytes()
        .ok_or("signature BIT STRING has unused bits")?;
    let sig = p384::ecdsa::Signature::from_der(sig_der)
        .map_err(|_| "signature is not a DER ECDSA-Sig-Value".to_owned())?;
    use p384::ecdsa::signature::Verifier;
    p384::ecdsa::VerifyingKey::from(&key)
        .verify(subject.tbs, &sig)
        .map_err(|_| "ECDSA P-384 signature does not verify".to_owned())
}

/// An issuer must say it is a CA.
fn check_ca(c: &Cert<'_>) -> Result<(), String> {
    match c.extension(rfc5280::ID_CE_BASIC_CONSTRAINTS) {
        Some((_, v)) => {
            let bc = x509_cert::ext::pkix::BasicConstraints::from_der(v)
                .map_err(|e| format!("BasicConstraints: {e}"))?;
            if bc.ca {
                Ok(())
            } else {
                Err("issues a certificate but BasicConstraints cA is false".into())
            }
        }
        None => Err("issues a certificate but has no BasicConstraints".into()),
    }
}

fn check_time(certs: &[Cert<'_>], timestamp_ms: u64, now: i64) -> Result<(), Denial> {
    let doc_secs = i64::try_from(timestamp_ms / 1000).unwrap_or(i64::MAX);
    let want = "every certificate valid at the document's timestamp and at the verifier's time";
    if doc_secs > now.saturating_add(MAX_FUTURE_SECS) {
        return deny(
            Check::NitroTime,
            format!(
                "timestamp {} is after the verifier's time {}",
                crate::x509::rfc3339(doc_secs),
                crate::x509::rfc3339(now)
            ),
            format!("a timestamp at most {MAX_FUTURE_SECS} s ahead"),
            "the NSM's clock or the verifier's is wrong",
        );
    }
    for (i, c) in certs.iter().enumerate() {
        let (nb, na) = c.validity();
        for (what, at) in [
            ("the document's timestamp", doc_secs),
            ("the verifier's time", now),
        ] {
            if at < nb || at > na {
                return deny(
                    Check::NitroTime,
                    format!(
                        "{} ({}) is valid {} .. {}, not at {what} {}",
                        position(i, certs.len()),
                        c.subject_cn().unwrap_or_default(),
                        crate::x509::rfc3339(nb),
                        crate::x509::rfc3339(na),
                        crate::x509::rfc3339(at)
                    ),
                    want,
                    "AWS leaf certificates live about 3 hours: the document is stale (request a fresh one) or a clock is wrong",
                );
            }
        }
    }
    Ok(())
}

fn check_digest(d: &Document<'_>) -> Result<(), Denial> {
    let hint = "every NSM reports SHA-384 PCRs";
    if d.doc.digest != "SHA384" {
        return deny(
            Check::NitroDigest,
            format!("digest {:?}", d.doc.digest),
            "\"SHA384\"",
            hint,
        );
    }
    if let Some((i, v)) = d.doc.pcrs.iter().find(|(_, v)| v.len() != PCR_LEN) {
        return deny(
            Check::NitroDigest,
            format!("PCR{i} of {} bytes", v.len()),
            format!("{PCR_LEN}-byte PCRs"),
            hint,
        );
    }
    for i in 0..3 {
        if d.doc.pcr(i).is_none() {
            return deny(
                Check::NitroDigest,
                format!("no PCR{i}"),
                "PCR0, PCR1 and PCR2",
                hint,
            );
        }
    }
    Ok(())
}

/// PCR `i`, 48 bytes (after `nitro.digest`; zeros if absent).
fn pcr<'a>(d: &Document<'a>, i: u8) -> &'a [u8] {
    const ZERO: [u8; PCR_LEN] = [0; PCR_LEN];
    d.doc.pcr(i).unwrap_or(&ZERO)
}

fn check_debug(debug: bool, allowed: bool) -> Result<(), Denial> {
    if debug && !allowed {
        return deny(
            Check::NitroDebug,
            "PCR0 all zero (debug mode)",
            "a production enclave (nitro.debug_allowed = false)",
            "the enclave was started with --debug-mode: the parent can read its memory and console",
        );
    }
    Ok(())
}

fn pcr_check(index: u8) -> Check {
    match index {
        0 => Check::NitroPcr0,
        1 => Check::NitroPcr1,
        2 => Check::NitroPcr2,
        3 => Check::NitroPcr3,
        4 => Check::NitroPcr4,
        _ => Check::NitroPcr8,
    }
}

fn check_pcr(d: &Document<'_>, index: u8, pins: &[Hex<48>], check: Check) -> Result<(), Denial> {
    let hint = "the enclave image (or its parent, for PCR3/PCR4) is not one this policy pins";
    let Some(v) = d.doc.pcr(index) else {
        return deny(check, format!("no PCR{index}"), hex::list(pins), hint);
    };
    if !pins.iter().any(|h| h.0[..] == *v) {
        return deny(check, hex::encode(v), hex::list(pins), hint);
    }
    Ok(())
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_binding(d: &Document<'_>, b: &Binding<'_>, t: &mut Trace) -> Result<(), Denial> {
    use Check::*;
    let user_data = d.doc.user_data.unwrap_or(&[]);
    match b.report_data {
        None => t.skip(
            NitroBindingUserData,
            "offline appraisal: no session binding to compare",
        ),
        Some(want) => {
            let r = if same(user_data, want) {
                Ok(())
            } else {
                deny(
                    NitroBindingUserData,
                    hex::encode(user_data),
                    hex::encode(want),
                    "user_data is not SHA-512(tag ‖ nonce ‖ SHA-256(SPKI) ‖ exporter) of this session: stale nonce, other key, or relayed through another TLS connection",
                )
            };
            t.step(&[NitroBindingUserData], r)?;
        }
    }
    let covered = if b.report_data.is_some() {
        "covered by nitro.binding.user_data (REPORT_DATA hashes the nonce and the key)"
    } else {
        "offline appraisal: no session binding to compare"
    };
    let nonce = d.doc.nonce.unwrap_or(&[]);
    match b.nonce {
        None => t.skip(NitroBindingNonce, covered),
        Some(want) => {
            let r = if same(nonce, want) {
                Ok(())
            } else {
                deny(
                    NitroBindingNonce,
                    hex::encode(nonce),
                    hex::encode(want),
                    "the document answers another challenge",
                )
            };
            t.step(&[NitroBindingNonce], r)?;
        }
    }
    let key = d.doc.public_key.unwrap_or(&[]);
    match b.enclave_spki {
        None => t.skip(NitroBindingEnclaveKey, covered),
        Some(want) => {
            let r = if same(key, want) {
                Ok(())
            } else {
                deny(
                    NitroBindingEnclaveKey,
                    format!(
                        "public_key with SHA-256 {}",
                        hex::encode(&Sha256::digest(key))
                    ),
                    format!(
                        "the enclave key SPKI with SHA-256 {}",
                        hex::encode(&Sha256::digest(want))
                    ),
                    "the document vouches for another key",
                )
            };
            t.step(&[NitroBindingEnclaveKey], r)?;
        }
    }
    Ok(())
}

/// SHA-384(PCR0 ‖ PCR1 ‖ PCR2): the `measurement` claim (see the claims
/// module); `enclavectl measure --nitro` computes the same from an EIF.
pub fn measurement(pcr0: &[u8], pcr1: &[u8], pcr2: &[u8]) -> [u8; 48] {
    let mut h = Sha384::new();
    h.update(pcr0);
    h.update(pcr1);
    h.update(pcr2);
    h.finalize().into()
}

fn claims(d: &Document<'_>, root: Root, debug: bool, policy: &Policy) -> Claims {
    let tee = match root {
        Root::Aws => "nitro",
        Root::Sim => "nitro-sim",
    };
    let pcrs: BTreeMap<u8, String> = [0u8, 1, 2, 3, 4, 8]
        .iter()
        .filter_map(|&i| d.doc.pcr(i).map(|v| (i, hex::encode(v))))
        .collect();
    Claims {
        tee,
        measurement: hex::encode(&measurement(pcr(d, 0), pcr(d, 1), pcr(d, 2))),
        tcb: Tcb::None,
        policy_flags: PolicyFlags::Nitro(NitroPolicyFlags { debug }),
        chip_id: None,
        host_data: None,
        signer: None,
        product: None,
        vmpl: None,
        rtmrs: None,
        mr_td: None,
        os_pinned: None,
        init_data: None,
        mr_config_id: None,
        mr_seam: None,
        xfam: None,
        td_attributes: None,
        report_data: hex::encode(d.doc.user_data.unwrap_or(&[])),
        policy_digest: hex::encode(policy.digest()),
        azure: None,
        nitro: Some(NitroClaims {
            pcrs,
            timestamp_ms: d.doc.timestamp_ms,
        }),
        collateral: CollateralClaims::default(),
        relaxations: policy.relaxations(tee),
    }
}

/// One certificate of a document, as `enclavectl evidence inspect` shows
/// it. Describes; verifies nothing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertSummary {
    /// `cabundle[i]` or `certificate (leaf)`.
    pub position: String,
    /// Subject (RFC 4514).
    pub subject: String,
    /// Issuer (RFC 4514).
    pub issuer: String,
    /// notBefore, RFC 3339.
    pub not_before: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// SHA-256 of the DER.
    pub sha256: String,
    /// Whether this is the pinned AWS Nitro Enclaves root.
    pub aws_root: bool,
}

/// The document's chain, root first, leaf last; a certificate that does
/// not parse is described by its error.
pub fn describe_chain(d: &Document<'_>) -> Vec<Result<CertSummary, String>> {
    let ders: Vec<&[u8]> = d
        .doc
        .cabundle
        .iter()
        .copied()
        .chain(std::iter::once(d.doc.certificate))
        .collect();
    let n = ders.len();
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            let c = Cert::parse(der).map_err(|e| format!("{}: {e}", position(i, n)))?;
            let (nb, na) = c.validity();
            let sha = Sha256::digest(der);
            Ok(CertSummary {
                position: position(i, n),
                subject: c.cert.tbs_certificate.subject.to_string(),
                issuer: c.cert.tbs_certificate.issuer.to_string(),
                not_before: crate::x509::rfc3339(nb),
                not_after: crate::x509::rfc3339(na),
                sha256: hex::encode(&sha),
                aws_root: hex::encode(&sha) == AWS_ROOT_SHA256,
            })
        })
        .collect()
}

/// SHA-256 of the AWS Nitro Enclaves root G1 (DER), as `roots.rs` pins it.
pub const AWS_ROOT_SHA256: &str =
    "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";
