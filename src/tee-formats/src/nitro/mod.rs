//! AWS Nitro Enclaves attestation documents, as `/dev/nsm` returns them: a
//! COSE_Sign1 (RFC 9052 §4.2), untagged or with tag 18, whose payload is the
//! CBOR map the NSM API defines (aws-nitro-enclaves-nsm-api
//! `docs/attestation_process.md` §3.2).
//!
//! ```text
//! COSE_Sign1 = [ protected: bstr .cbor {1: -35}, unprotected: {}, payload: bstr, signature: bstr(96) ]
//! payload    = { module_id: tstr, digest: "SHA384", timestamp: uint (ms),
//!                pcrs: {uint(0..31) => bstr(48)}, certificate: bstr (DER),
//!                cabundle: [bstr (DER), ...] (root first),
//!                ? public_key: bstr / null, ? user_data: bstr / null, ? nonce: bstr / null }
//! ```
//!
//! Parsing only, strictly typed: the signature, the chain and the values are
//! the appraisal's (`appraisal::nitro`). Every string borrows from the input
//! and every length and count is compared with its limit and with the bytes
//! that remain before it is used, so memory does not depend on what the
//! document declares ([`cbor`]).
//!
//! Limits, and why:
//! - the document: [`MAX_DOCUMENT`] = 16 KiB. The largest real documents
//!   here (blocky-nitrite, three 1024-byte optional fields, 16 PCRs, a
//!   4-certificate bundle) are 7.5 KB; the worst legitimate case (32 PCRs,
//!   3 × 1024-byte fields, a leaf and 8 bundle certificates of ~700 bytes)
//!   stays under 12 KB.
//! - `public_key`, `user_data`, `nonce`: [`MAX_FIELD`] = 1024 bytes each,
//!   the NSM's own maximum.
//! - `cabundle`: at most [`MAX_CABUNDLE`] (8) certificates (AWS issues root →
//!   regional → zonal → instance, 4); each certificate at most
//!   [`MAX_CERT`] = 4096 bytes of DER.
//! - `pcrs`: at most 32 entries, indices 0..=31, no index twice.
//! - headers: the protected header is exactly `{1: -35}` (alg ES384) and the
//!   unprotected header is an empty map (or `null`): nothing else is ever
//!   signed or ignored. Unknown payload keys and duplicate keys are refused.

pub(crate) mod cbor;

pub use cbor::DocumentError;

use cbor::{write_bstr, write_head, write_tstr, Reader, ARRAY};

/// Largest attestation document accepted (bytes of COSE_Sign1).
pub const MAX_DOCUMENT: usize = 16 * 1024;
/// Largest `public_key`, `user_data` or `nonce` (the NSM's limit).
pub const MAX_FIELD: usize = 1024;
/// Most certificates in `cabundle`.
pub const MAX_CABUNDLE: usize = 8;
/// Largest certificate (DER) in `certificate` or `cabundle`.
pub const MAX_CERT: usize = 4096;
/// Most PCRs (the NSM has 32).
pub const MAX_PCRS: usize = 32;
/// Length of a SHA-384 PCR.
pub const PCR_LEN: usize = 48;
/// COSE algorithm identifier of ECDSA P-384 with SHA-384 (ES384).
pub const ALG_ES384: i128 = -35;
/// Length of an ES384 signature (`r ‖ s`).
pub const SIGNATURE_LEN: usize = 96;
/// The COSE tag of a COSE_Sign1.
pub const TAG_COSE_SIGN1: u64 = 18;

/// A parsed COSE_Sign1 and the attestation document in its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document<'a> {
    /// Whether the COSE_Sign1 carried tag 18 (AWS documents do not).
    pub tagged: bool,
    /// The protected header bytes as received (what the signature covers).
    pub protected: &'a [u8],
    /// The payload bytes as received (what the signature covers).
    pub payload: &'a [u8],
    /// `r ‖ s`, 48 bytes each.
    pub signature: &'a [u8; SIGNATURE_LEN],
    /// The decoded payload.
    pub doc: AttestationDoc<'a>,
}

/// The payload map of an attestation document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationDoc<'a> {
    /// `module_id`: the enclave's id (instance id and enclave serial).
    pub module_id: &'a str,
    /// `digest`: the PCR hash (`"SHA384"` on every NSM).
    pub digest: &'a str,
    /// `timestamp`: milliseconds since the Unix epoch, the NSM's clock.
    pub timestamp_ms: u64,
    /// `pcrs`: (index, value), sorted by index.
    pub pcrs: Vec<(u8, &'a [u8])>,
    /// `certificate`: the leaf (DER) whose key signed the document.
    pub certificate: &'a [u8],
    /// `cabundle`: the issuers (DER), root first (empty when the document
    /// has `null` or `[]`: the appraisal refuses that chain).
    pub cabundle: Vec<&'a [u8]>,
    /// `public_key`, absent or `null` = `None`.
    pub public_key: Option<&'a [u8]>,
    /// `user_data`, absent or `null` = `None`.
    pub user_data: Option<&'a [u8]>,
    /// `nonce`, absent or `null` = `None`.
    pub nonce: Option<&'a [u8]>,
}

impl<'a> AttestationDoc<'a> {
    /// The value of PCR `index`, if the document has it.
    pub fn pcr(&self, index: u8) -> Option<&'a [u8]> {
        self.pcrs.iter().find(|(i, _)| *i == index).map(|(_, v)| *v)
    }
}

impl<'a> Document<'a> {
    /// Parses a COSE_Sign1 attestation document (see the module
    /// documentation for the shape and the limits).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DocumentError> {
        if bytes.len() > MAX_DOCUMENT {
            return Err(DocumentError {
                offset: 0,
                problem: format!(
                    "document of {} bytes, at most {MAX_DOCUMENT} allowed",
                    bytes.len()
                ),
            });
        }
        let mut r = Reader::new(bytes, 0);
        let tagged = r.peek_major()? == cbor::TAG;
        if tagged {
            let at = r.offset();
            let tag = r.tag()?;
            if tag != TAG_COSE_SIGN1 {
                return r.err(at, format!("tag {tag} is not COSE_Sign1 (18)"));
            }
        }
        let at = r.offset();
        let n = r.array("COSE_Sign1", 4)?;
        if n != 4 {
            return r.err(at, format!("COSE_Sign1 has {n} elements, not 4"));
        }
        let protected_at = r.offset();
        let protected = r.bstr("protected header", 64)?;
        check_protected(protected, protected_at + head_len(protected.len()))?;
        // AWS sends an empty map; anything in it would be unauthenticated,
        // so nothing is read from it. `null` (written by some test
        // producers, e.g. blocky-nitrite's self-signed document) is taken
        // as that empty map: it is not signed either way.
        if !r.null()? {
            r.map("unprotected header", 0)?;
        }
        let payload_at = r.offset();
        let payload = r.bstr("payload", MAX_DOCUMENT)?;
        let sig_at = r.offset();
        let sig = r.bstr("signature", SIGNATURE_LEN)?;
        let Ok(signature) = <&[u8; SIGNATURE_LEN]>::try_from(sig) else {
            return r.err(
                sig_at,
                format!(
                    "signature of {} bytes, not {SIGNATURE_LEN} (ES384 r ‖ s)",
                    sig.len()
                ),
            );
        };
        r.finish("the COSE_Sign1")?;
        let doc = parse_payload(payload, payload_at + head_len(payload.len()))?;
        Ok(Document {
            tagged,
            protected,
            payload,
            signature,
            doc,
        })
    }

    /// The bytes the signature covers: the COSE Sig_structure
    /// `["Signature1", protected, h'', payload]` (RFC 9052 §4.4), built from
    /// the received protected header and payload.
    pub fn sig_structure(&self) -> Vec<u8> {
        sig_structure(self.protected, self.payload)
    }
}

/// The protected header of every NSM document: `{1: -35}` (alg ES384).
pub const PROTECTED_ES384: [u8; 4] = [0xa1, 0x01, 0x38, 0x22];

/// The COSE Sig_structure `["Signature1", protected, h'', payload]` (RFC
/// 9052 §4.4): what an ES384 signer signs (with SHA-384) and a verifier
/// checks.
pub fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + protected.len() + 24);
    write_head(&mut out, ARRAY, 4);
    write_tstr(&mut out, "Signature1");
    write_bstr(&mut out, protected);
    write_bstr(&mut out, &[]);
    write_bstr(&mut out, payload);
    out
}

/// A COSE_Sign1 of `payload` with the ES384 protected header, an empty
/// unprotected header and `signature` (`r ‖ s` over
/// [`sig_structure`]`(&PROTECTED_ES384, payload)`), untagged as the NSM
/// writes it, or with tag 18.
pub fn encode_cose_sign1(payload: &[u8], signature: &[u8; SIGNATURE_LEN], tagged: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + SIGNATURE_LEN + 16);
    if tagged {
        write_head(&mut out, cbor::TAG, TAG_COSE_SIGN1);
    }
    write_head(&mut out, ARRAY, 4);
    write_bstr(&mut out, &PROTECTED_ES384);
    write_head(&mut out, cbor::MAP, 0);
    write_bstr(&mut out, payload);
    write_bstr(&mut out, signature);
    out
}

impl AttestationDoc<'_> {
    /// The payload map as the NSM encodes it: its nine keys in the NSM's
    /// order, absent optional fields as `null`, PCRs by index. For the
    /// simulated NSM and tests; the appraisal verifies the received bytes,
    /// never a re-encoding.
    pub fn encode_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        write_head(&mut out, cbor::MAP, 9);
        write_tstr(&mut out, "module_id");
        write_tstr(&mut out, self.module_id);
        write_tstr(&mut out, "digest");
        write_tstr(&mut out, self.digest);
        write_tstr(&mut out, "timestamp");
        write_head(&mut out, cbor::UINT, self.timestamp_ms);
        write_tstr(&mut out, "pcrs");
        write_head(&mut out, cbor::MAP, self.pcrs.len() as u64);
        for (i, v) in &self.pcrs {
            write_head(&mut out, cbor::UINT, u64::from(*i));
            write_bstr(&mut out, v);
        }
        write_tstr(&mut out, "certificate");
        write_bstr(&mut out, self.certificate);
        write_tstr(&mut out, "cabundle");
        write_head(&mut out, ARRAY, self.cabundle.len() as u64);
        for c in &self.cabundle {
            write_bstr(&mut out, c);
        }
        for (key, value) in [
            ("public_key", self.public_key),
            ("user_data", self.user_data),
            ("nonce", self.nonce),
        ] {
            write_tstr(&mut out, key);
            match value {
                Some(v) => write_bstr(&mut out, v),
                None => out.push(0xf6),
            }
        }
        out
    }
}

/// Length of the head of a byte string of `len` bytes (in its shortest
/// form, the only one `Reader::bstr` callers see here: used for offsets in
/// messages only).
fn head_len(len: usize) -> usize {
    match len {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        _ => 5,
    }
}

/// The protected header must be exactly `{1: -35}`.
fn check_protected(bytes: &[u8], base: usize) -> Result<(), DocumentError> {
    let mut r = Reader::new(bytes, base);
    let at = r.offset();
    let n = r.map("protected header", 4)?;
    if n != 1 {
        return r.err(
            at,
            format!("protected header has {n} entries, want only alg (1)"),
        );
    }
    let at = r.offset();
    let label = r.int("protected header label")?;
    if label != 1 {
        return r.err(at, format!("protected header label {label}, want alg (1)"));
    }
    let at = r.offset();
    let alg = r.int("alg")?;
    if alg != ALG_ES384 {
        return r.err(at, format!("alg {alg} is not ES384 (-35)"));
    }
    r.finish("the protected header")
}

const KEYS: [&str; 9] = [
    "module_id",
    "digest",
    "timestamp",
    "pcrs",
    "certificate",
    "cabundle",
    "public_key",
    "user_data",
    "nonce",
];

fn parse_payload(bytes: &[u8], base: usize) -> Result<AttestationDoc<'_>, DocumentError> {
    let mut r = Reader::new(bytes, base);
    let n = r.map("payload", KEYS.len())?;
    let mut seen = [false; KEYS.len()];
    let mut module_id = None;
    let mut digest = None;
    let mut timestamp_ms = None;
    let mut pcrs = None;
    let mut certificate = None;
    let mut cabundle = None;
    let (mut public_key, mut user_data, mut nonce) = (None, None, None);
    for _ in 0..n {
        let at = r.offset();
        let key = r.tstr("payload key", 32)?;
        let Some(k) = KEYS.iter().position(|k| *k == key) else {
            return r.err(at, format!("unknown payload key {key:?}"));
        };
        if seen[k] {
            return r.err(at, format!("payload key {key:?} appears twice"));
        }
        seen[k] = true;
        match k {
            0 => module_id = Some(r.tstr("module_id", 256)?),
            1 => digest = Some(r.tstr("digest", 16)?),
            2 => timestamp_ms = Some(r.uint("timestamp")?),
            3 => pcrs = Some(parse_pcrs(&mut r)?),
            4 => certificate = Some(r.bstr("certificate", MAX_CERT)?),
            5 => {
                // `null` or `[]`: a document with no issuers (self-signed);
                // parsed, so that the appraisal refuses it as a chain.
                let n = if r.null()? {
                    0
                } else {
                    r.array("cabundle", MAX_CABUNDLE)?
                };
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(r.bstr("cabundle certificate", MAX_CERT)?);
                }
                cabundle = Some(v);
            }
            6 => public_key = optional(&mut r, "public_key")?,
            7 => user_data = optional(&mut r, "user_data")?,
            _ => nonce = optional(&mut r, "nonce")?,
        }
    }
    r.finish("the payload")?;
    let missing = |name: &str| DocumentError {
        offset: base,
        problem: format!("payload has no {name}"),
    };
    Ok(AttestationDoc {
        module_id: module_id.ok_or_else(|| missing("module_id"))?,
        digest: digest.ok_or_else(|| missing("digest"))?,
        timestamp_ms: timestamp_ms.ok_or_else(|| missing("timestamp"))?,
        pcrs: pcrs.ok_or_else(|| missing("pcrs"))?,
        certificate: certificate.ok_or_else(|| missing("certificate"))?,
        cabundle: cabundle.ok_or_else(|| missing("cabundle"))?,
        public_key,
        user_data,
        nonce,
    })
}

/// `pcrs`: a map of index → digest. Values are 1..=64 bytes here; that they
/// are 48 (SHA-384) is checked with `digest` by the appraisal.
fn parse_pcrs<'a>(r: &mut Reader<'a>) -> Result<Vec<(u8, &'a [u8])>, DocumentError> {
    let n = r.map("pcrs", MAX_PCRS)?;
    let mut v: Vec<(u8, &[u8])> = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.offset();
        let i = r.uint("PCR index")?;
        let idx = match u8::try_from(i) {
            Ok(i) if usize::from(i) < MAX_PCRS => i,
            _ => return r.err(at, format!("PCR index {i} is not in 0..=31")),
        };
        if v.iter().any(|(j, _)| *j == idx) {
            return r.err(at, format!("PCR {idx} appears twice"));
        }
        let vat = r.offset();
        let value = r.bstr("PCR value", 64)?;
        if value.is_empty() {
            return r.err(vat, format!("PCR {idx} is empty"));
        }
        v.push((idx, value));
    }
    v.sort_by_key(|(i, _)| *i);
    Ok(v)
}

/// An optional field: a byte string of at most [`MAX_FIELD`] bytes, or
/// `null` (both forms occur in real documents).
fn optional<'a>(r: &mut Reader<'a>, what: &str) -> Result<Option<&'a [u8]>, DocumentError> {
    if r.null()? {
        return Ok(None);
    }
    Ok(Some(r.bstr(what, MAX_FIELD)?))
}

#[cfg(test)]
mod tests;
