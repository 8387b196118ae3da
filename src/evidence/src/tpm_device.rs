//! A TPM 2.0 command channel: the kernel's resource manager `/dev/tpmrm0`
//! (one command per `write`, one response per `read`), or a Unix socket
//! speaking the same raw command/response bytes (swtpm's `--server
//! type=unixio`, and the simulated paravisor in front of it, in tests).
//!
//! Every response is bounded ([`command::MAX_MESSAGE`]) and checked to be
//! exactly as long as its header says before anyone parses it.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tee_formats::tpm::command::{self, Response, HEADER_SIZE, MAX_MESSAGE};

use crate::EvidenceError;

/// Where the TPM is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmAddr {
    /// A character device (`/dev/tpmrm0`).
    Device(PathBuf),
    /// A Unix socket carrying raw TPM commands (`unix:///path`).
    Unix(PathBuf),
}

impl Default for TpmAddr {
    fn default() -> Self {
        TpmAddr::Device(PathBuf::from("/dev/tpmrm0"))
    }
}

impl FromStr for TpmAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.starts_with('/') {
                return Ok(TpmAddr::Unix(PathBuf::from(p)));
            }
        } else if s.starts_with('/') {
            return Ok(TpmAddr::Device(PathBuf::from(s)));
        }
        Err(format!(
            "TPM address {s:?} is neither an absolute device path nor unix:///PATH"
        ))
    }
}

impl fmt::Display for TpmAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TpmAddr::Device(p) => write!(f, "{}", p.display()),
            TpmAddr::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

enum Channel {
    Device(std::fs::File),
    Unix(UnixStream),
}

/// An open channel to the TPM. Commands go one at a time.
pub struct Tpm {
    channel: Channel,
    addr: TpmAddr,
}

impl Tpm {
    /// Opens the channel; `timeout` bounds each socket read and write (a
    /// device is bounded by the kernel driver's own command timeouts).
    pub fn open(addr: &TpmAddr, timeout: Duration) -> Result<Tpm, EvidenceError> {
        let io = |source| EvidenceError::Io {
            op: "open TPM",
            path: addr.to_string(),
            source,
        };
        let channel = match addr {
            TpmAddr::Device(p) => Channel::Device(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(p)
                    .map_err(io)?,
            ),
            TpmAddr::Unix(p) => {
                let s = UnixStream::connect(p).map_err(io)?;
                s.set_read_timeout(Some(timeout)).map_err(io)?;
                s.set_write_timeout(Some(timeout)).map_err(io)?;
                Channel::Unix(s)
            }
        };
        Ok(Tpm {
            channel,
            addr: addr.clone(),
        })
    }

    /// Sends one command and returns the whole response, checked for size.
    pub fn transact(&mut self, cmd: &[u8]) -> Result<Vec<u8>, EvidenceError> {
        let path = self.addr.to_string();
        let io = |op: &'static str| {
            let path = path.clone();
            move |source| EvidenceError::Io { op, path, source }
        };
        let mut buf = vec![0u8; MAX_MESSAGE];
        let len = match &mut self.channel {
            Channel::Device(f) => {
                f.write_all(cmd).map_err(io("write TPM command"))?;
                f.read(&mut buf).map_err(io("read TPM response"))?
            }
            Channel::Unix(s) => {
                s.write_all(cmd).map_err(io("write TPM command"))?;
                let (head, _) = buf.split_at_mut(HEADER_SIZE);
                s.read_exact(head).map_err(io("read TPM response"))?;
                let size = u32::from_be_bytes([head[2], head[3], head[4], head[5]]) as usize;
                if !(HEADER_SIZE..=MAX_MESSAGE).contains(&size) {
                    return Err(EvidenceError::TpmFormat {
                        command: "response header",
                        problem: format!("responseSize {size}"),
                    });
                }
                let body = buf.get_mut(HEADER_SIZE..size).unwrap_or_default();
                s.read_exact(body).map_err(io("read TPM response"))?;
                size
            }
        };
        buf.truncate(len);
        Ok(buf)
    }

    /// Sends `cmd` (named `what` in errors) and parses its response: the
    /// parameter area on success, [`EvidenceError::Tpm`] with the response
    /// code otherwise.
    pub fn call(
        &mut self,
        what: &'static str,
        cmd: &[u8],
        handles: usize,
        authorised: bool,
    ) -> Result<Vec<u8>, EvidenceError> {
        let raw = self.transact(cmd)?;
        let Response { code, params, .. } = command::parse_response(&raw, handles, authorised)
            .map_err(|e| EvidenceError::TpmFormat {
                command: what,
                problem: e.to_string(),
            })?;
        if code != 0 {
            return Err(EvidenceError::Tpm {
                command: what,
                rc: code,
            });
        }
        Ok(params.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(
            "/dev/tpmrm0".parse::<TpmAddr>().unwrap(),
            TpmAddr::default()
        );
        assert_eq!(
            "unix:///run/tpm.sock".parse::<TpmAddr>().unwrap(),
            TpmAddr::Unix("/run/tpm.sock".into())
        );
        assert!("tpmrm0".parse::<TpmAddr>().is_err());
        assert!("unix://relative".parse::<TpmAddr>().is_err());
        assert!("tcp://127.0.0.1:1".parse::<TpmAddr>().is_err());
        assert_eq!(TpmAddr::Unix("/x".into()).to_string(), "unix:///x");
    }
}
