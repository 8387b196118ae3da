//! The sim-psp protocol: newline-delimited JSON over a stream socket.
//!
//! ```text
//! → {"report_data":"<standard base64 of 64 bytes>","vmpl":0}\n
//! ← <wire::EvidenceBundle JSON, TEE type "sim">\n      on success
//! ← {"error":"<message>"}\n                            on any refusal
//! ```
//!
//! `vmpl` may be left out (it is then 0); unknown fields are refused. A
//! request line is at most [`MAX_REQUEST_BYTES`] bytes, newline included.
//! A connection may carry several requests, one after the other; a line
//! that is too long ends it (there is no way to find the next line).

use base64::Engine as _;
use wire::EvidenceBundle;

/// The longest request line accepted, newline included.
pub const MAX_REQUEST_BYTES: usize = 4096;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// REPORT_DATA to put in the report.
    pub report_data: [u8; 64],
    /// VMPL to report (the PSP refuses anything above 3).
    pub vmpl: u32,
}

/// Why a request line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not JSON, or not the request's shape.
    #[error("malformed request: {0}")]
    Json(String),
    /// `report_data` is not standard base64.
    #[error("report_data is not base64: {0}")]
    Base64(String),
    /// `report_data` does not decode to 64 bytes.
    #[error("report_data is {got} bytes, want 64")]
    ReportDataLength {
        /// Its decoded length.
        got: usize,
    },
    /// The line is longer than [`MAX_REQUEST_BYTES`].
    #[error("request line exceeds {MAX_REQUEST_BYTES} bytes")]
    TooLong,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestJson {
    report_data: String,
    #[serde(default)]
    vmpl: u32,
}

/// Parses one request line (the trailing newline may be present).
pub fn parse_request(line: &[u8]) -> Result<Request, RequestError> {
    if line.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLong);
    }
    let json: RequestJson =
        serde_json::from_slice(line).map_err(|e| RequestError::Json(e.to_string()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(json.report_data.as_bytes())
        .map_err(|e| RequestError::Base64(e.to_string()))?;
    let report_data = <[u8; 64]>::try_from(bytes.as_slice())
        .map_err(|_| RequestError::ReportDataLength { got: bytes.len() })?;
    Ok(Request {
        report_data,
        vmpl: json.vmpl,
    })
}

/// A request line, newline included.
pub fn encode_request(report_data: &[u8; 64], vmpl: u32) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(report_data);
    let mut line = serde_json::json!({ "report_data": b64, "vmpl": vmpl })
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

/// A success answer line, newline included.
pub fn encode_bundle(bundle: &EvidenceBundle) -> Vec<u8> {
    let mut line = bundle.to_json();
    line.push(b'\n');
    line
}

/// An error answer line, newline included.
pub fn encode_error(message: &str) -> Vec<u8> {
    let mut line = serde_json::json!({ "error": message })
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

/// An answer line, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The evidence.
    Bundle(Box<EvidenceBundle>),
    /// The PSP's refusal.
    Error(String),
}

/// Decodes an answer line: `{"error":…}` or an evidence bundle.
pub fn parse_answer(line: &[u8]) -> Result<Answer, wire::WireError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ErrorJson {
        error: String,
    }
    if let Ok(e) = serde_json::from_slice::<ErrorJson>(line) {
        return Ok(Answer::Error(e.error));
    }
    EvidenceBundle::from_json(line).map(|b| Answer::Bundle(Box::new(b)))
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_request() {
        let rd: [u8; 64] = std::array::from_fn(|i| i as u8);
        let line = encode_request(&rd, 2);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(
            parse_request(&line),
            Ok(Request {
                report_data: rd,
                vmpl: 2
            })
        );
    }

    #[test]
    fn vmpl_defaults_to_zero() {
        let line = format!(
            "{{\"report_data\":\"{}\"}}",
            base64::engine::general_purpose::STANDARD.encode([1u8; 64])
        );
        assert_eq!(parse_request(line.as_bytes()).unwrap().vmpl, 0);
    }

    #[test]
    fn refuses_each_malformed_request_with_its_reason() {
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![0u8; n]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json\n".to_vec(), "malformed request"),
            (b"{}".to_vec(), "missing field `report_data`"),
            (
                format!("{{\"report_data\":\"{}\",\"x\":1}}", b64(64)).into_bytes(),
                "unknown field `x`",
            ),
            (b"{\"report_data\":\"!!!\"}".to_vec(), "not base64"),
            (
                format!("{{\"report_data\":\"{}\"}}", b64(32)).into_bytes(),
                "report_data is 32 bytes, want 64",
            ),
            (
                format!("{{\"report_data\":\"{}\",\"vmpl\":-1}}", b64(64)).into_bytes(),
                "malformed request",
            ),
            (vec![b' '; MAX_REQUEST_BYTES + 1], "exceeds 4096 bytes"),
        ];
        for (line, want) in cases {
            let e = parse_request(&line).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} does not contain {want:?}");
        }
    }

    #[test]
    fn decodes_both_answers() {
        assert_eq!(
            parse_answer(&encode_error("no")).unwrap(),
            Answer::Error("no".into())
        );
        let b = EvidenceBundle::new(wire::Tee::Sim, "sim-psp", vec![1, 2]);
        assert_eq!(
            parse_answer(&encode_bundle(&b)).unwrap(),
            Answer::Bundle(Box::new(b))
        );
        assert!(parse_answer(b"{\"x\":1}").is_err());
    }
}
