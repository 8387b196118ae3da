//! A small client for tests and host tools: one request over a Unix socket
//! (`unix://` or `hybrid://` path). The guest has its own client
//! (`evidence::sim`); this one exists so the server can be tested through
//! its public protocol.

use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wire::EvidenceBundle;

use crate::protocol::{self, Answer};

/// Bounds connecting, sending and receiving.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest answer read (a bundle with three certificates is about 6 KiB).
pub const MAX_ANSWER_BYTES: u64 = 256 * 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("connecting to {path}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Sending the request or reading the answer failed.
    #[error("exchanging a request with the sim-psp")]
    Exchange(#[source] io::Error),
    /// The sim-psp refused the request.
    #[error("the sim-psp refused: {0}")]
    Refused(String),
    /// The answer is neither an evidence bundle nor an error.
    #[error("the sim-psp's answer does not parse")]
    BadAnswer(#[source] wire::WireError),
}

/// Asks the sim-psp listening at `path` for a report over `report_data` at
/// `vmpl`.
pub fn request(
    path: &Path,
    report_data: &[u8; 64],
    vmpl: u32,
) -> Result<EvidenceBundle, ClientError> {
    let line = exchange(path, &protocol::encode_request(report_data, vmpl))?;
    match protocol::parse_answer(&line).map_err(ClientError::BadAnswer)? {
        Answer::Bundle(b) => Ok(*b),
        Answer::Error(e) => Err(ClientError::Refused(e)),
    }
}

/// Sends `request` as it is and returns the first answer line (newline
/// included): for tests that send malformed requests.
pub fn exchange(path: &Path, request: &[u8]) -> Result<Vec<u8>, ClientError> {
    let mut stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
        path: path.to_owned(),
        source,
    })?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(ClientError::Exchange)?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(ClientError::Exchange)?;
    // A server that refuses (busy, or a line too long) answers and closes
    // without reading the rest: the write may then fail while the answer is
    // already waiting to be read.
    let sent = stream.write_all(request);
    let mut line = Vec::new();
    let read = BufReader::new(stream.take(MAX_ANSWER_BYTES)).read_until(b'\n', &mut line);
    match (sent, read) {
        _ if line.ends_with(b"\n") => Ok(line),
        (Err(e), _) | (Ok(()), Err(e)) => Err(ClientError::Exchange(e)),
        (Ok(()), Ok(_)) => Ok(line),
    }
}
