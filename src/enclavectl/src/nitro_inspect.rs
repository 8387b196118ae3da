//! `enclavectl evidence inspect` of an AWS Nitro attestation document: the
//! payload's fields (module id, timestamp, digest, PCRs), the chain with
//! subjects and validity windows, and the sizes of the optional fields
//! (their bytes are the session binding, not for display). Describes only:
//! `enclavectl verify --nitro` is the appraisal.

use serde_json::{json, Value};
use tee_formats::nitro::Document;

/// The JSON view of a document (raw COSE_Sign1 bytes).
pub fn inspect(bytes: &[u8]) -> Result<Value, String> {
    let d = Document::parse(bytes).map_err(|e| format!("Nitro attestation document: {e}"))?;
    let doc = &d.doc;
    let zero = |v: &[u8]| v.iter().all(|&b| b == 0);
    let pcrs: serde_json::Map<String, Value> = doc
        .pcrs
        .iter()
        .filter(|(_, v)| !zero(v))
        .map(|(i, v)| (i.to_string(), json!(crate::hex(v))))
        .collect();
    let zero_pcrs: Vec<u8> = doc
        .pcrs
        .iter()
        .filter(|(_, v)| zero(v))
        .map(|(i, _)| *i)
        .collect();
    let chain: Vec<Value> = appraisal::nitro::describe_chain(&d)
        .into_iter()
        .map(|c| match c {
            Ok(c) => json!(c),
            Err(e) => json!({"error": e}),
        })
        .collect();
    let secs = i64::try_from(doc.timestamp_ms / 1000).unwrap_or(i64::MAX);
    let measurement = match (doc.pcr(0), doc.pcr(1), doc.pcr(2)) {
        (Some(a), Some(b), Some(c)) => json!(crate::hex(&appraisal::nitro::measurement(a, b, c))),
        _ => Value::Null,
    };
    let len = |f: Option<&[u8]>| f.map(<[u8]>::len);
    Ok(json!({
        "kind": "nitro-attestation-document",
        "size": bytes.len(),
        "cose": {"tagged": d.tagged, "alg": "ES384", "payload_len": d.payload.len()},
        "module_id": doc.module_id,
        "timestamp_ms": doc.timestamp_ms,
        "timestamp": wire::time::rfc3339(secs),
        "digest": doc.digest,
        "pcrs": pcrs,
        "zero_pcrs": zero_pcrs,
        "debug": doc.pcr(0).is_some_and(zero),
        "measurement": measurement,
        "chain": chain,
        "user_data_len": len(doc.user_data),
        "nonce_len": len(doc.nonce),
        "public_key_len": len(doc.public_key),
    }))
}
