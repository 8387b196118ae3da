//! The simulated PSP (`enclavectl sim-psp`), for development and tests.
//!
//! Protocol: one JSON line `{"report_data":"<base64>","vmpl":0}`, answered by
//! one JSON line: an evidence bundle of TEE type `sim`, or `{"error":"…"}`.
//! Reached over vsock from a QEMU guest (`vsock://2:9100`) and over a Unix
//! socket in process mode.
//!
//! Trust: none. The bundle is checked to be of type `sim` and to carry the
//! REPORT_DATA asked for; the verifier decides the rest, and no production
//! policy accepts `sim` at all.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use transport::Addr;
use wire::{Bytes, EvidenceBundle, Tee};

use crate::{EvidenceError, EvidenceSource, SourceKind, REPORT_DATA_LEN};

/// The longest answer accepted (a bundle with three certificates is ~6 KiB).
const MAX_ANSWER: u64 = 256 * 1024;

/// The sim-psp client.
pub struct SimPsp {
    addr: Addr,
    timeout: Duration,
}

impl SimPsp {
    /// A client for the sim-psp at `addr`; `timeout` bounds connecting
    /// (with retries: the host side may start after the guest) and each
    /// read and write.
    pub fn new(addr: Addr, timeout: Duration) -> Self {
        SimPsp { addr, timeout }
    }

    fn connect(&self) -> Result<transport::Stream, EvidenceError> {
        let start = Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            match transport::connect(&self.addr) {
                Ok(s) => return Ok(s),
                Err(e) if start.elapsed() + backoff > self.timeout => {
                    return Err(EvidenceError::Sim(format!(
                        "cannot reach {}: {e}",
                        self.addr
                    )))
                }
                Err(_) => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

impl EvidenceSource for SimPsp {
    fn kind(&self) -> SourceKind {
        SourceKind::Sim
    }

    fn collect(
        &mut self,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<EvidenceBundle, EvidenceError> {
        let mut stream = self.connect()?;
        stream
            .set_timeouts(self.timeout)
            .map_err(|e| EvidenceError::Sim(e.to_string()))?;
        let mut request =
            serde_json::json!({"report_data": Bytes(report_data.to_vec()), "vmpl": 0}).to_string();
        request.push('\n');
        stream
            .write_all(request.as_bytes())
            .map_err(|e| EvidenceError::Sim(format!("sending request: {e}")))?;
        let mut line = Vec::new();
        BufReader::new((&mut stream).take(MAX_ANSWER))
            .read_until(b'\n', &mut line)
            .map_err(|e| EvidenceError::Sim(format!("reading answer: {e}")))?;
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice::<serde_json::Value>(&line)
        {
            if let Some(err) = o.get("error").and_then(|e| e.as_str()) {
                return Err(EvidenceError::Sim(format!("refused: {err}")));
            }
        }
        let bundle = EvidenceBundle::from_json(&line)
            .map_err(|e| EvidenceError::Sim(format!("bad answer: {e}")))?;
        if bundle.tee != Tee::Sim {
            return Err(EvidenceError::Sim(format!(
                "answered TEE type {}, want sim",
                bundle.tee.as_str()
            )));
        }
        crate::check_snp_report(&bundle.evidence, report_data)?;
        Ok(bundle)
    }
}
