//! The proxy's configuration file (TOML). Every rule is explicit; anything
//! not listed is refused by construction (no socket, no listener).
//!
//! ```toml
//! max_connections = 64        # per rule
//! connect_timeout_ms = 10000
//! idle_timeout_ms = 300000
//!
//! [[egress]]                  # guest connect(CID 2, 8443) -> the verifier
//! listen = "/run/enclave/vm.vsock_8443"
//! target = "127.0.0.1:8443"
//!
//! [[ingress]]                 # the API gateway -> guest port 8443
//! listen = "127.0.0.1:8080"
//! uds = "/run/enclave/vm.vsock"
//! port = 8443
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::Limits;

/// The configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Concurrent connections per rule.
    #[serde(default = "default_max")]
    pub max_connections: usize,
    /// Connect timeout, milliseconds.
    #[serde(default = "default_connect")]
    pub connect_timeout_ms: u64,
    /// Idle timeout, milliseconds.
    #[serde(default = "default_idle")]
    pub idle_timeout_ms: u64,
    /// Guest-initiated rules.
    #[serde(default)]
    pub egress: Vec<Egress>,
    /// Host-initiated rules.
    #[serde(default)]
    pub ingress: Vec<Ingress>,
}

/// One egress rule: a hybrid-vsock host socket to one TCP target.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    /// `<uds>_<port>` of the guest's vsock device.
    pub listen: PathBuf,
    /// `host:port`.
    pub target: String,
}

/// One ingress rule: a TCP listener to a guest vsock port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingress {
    /// `host:port` to listen on.
    pub listen: String,
    /// The guest's hybrid-vsock socket.
    pub uds: PathBuf,
    /// The guest port.
    pub port: u32,
}

fn default_max() -> usize {
    64
}
fn default_connect() -> u64 {
    10_000
}
fn default_idle() -> u64 {
    300_000
}

impl Config {
    /// Parses and checks the file's text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        if c.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        for e in &c.egress {
            let name = e.listen.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let port_ok = name
                .rsplit_once('_')
                .is_some_and(|(_, p)| p.parse::<u32>().is_ok());
            if !port_ok {
                return Err(format!(
                    "egress listen {:?} must end in _<port> (the hybrid vsock socket of that port)",
                    e.listen
                ));
            }
            if e.target
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(format!("egress target {:?} is not host:port", e.target));
            }
        }
        Ok(c)
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example_and_refuses_mistakes() {
        let c = Config::parse(
            "max_connections = 8\n[[egress]]\nlisten = \"/r/vm.vsock_8443\"\ntarget = \"127.0.0.1:8443\"\n\
             [[ingress]]\nlisten = \"127.0.0.1:8080\"\nuds = \"/r/vm.vsock\"\nport = 8443\n",
        )
        .unwrap();
        assert_eq!(c.egress.len(), 1);
        assert_eq!(c.ingress[0].port, 8443);
        assert_eq!(c.limits().idle_timeout, Duration::from_secs(300));
        assert!(
            Config::parse("[[egress]]\nlisten = \"/r/x\"\ntarget = \"h:1\"\n")
                .unwrap_err()
                .contains("_<port>")
        );
        assert!(
            Config::parse("[[egress]]\nlisten = \"/r/x_1\"\ntarget = \"h\"\n")
                .unwrap_err()
                .contains("host:port")
        );
        assert!(Config::parse("bogus = 1\n")
            .unwrap_err()
            .contains("unknown field"));
        assert!(Config::parse("max_connections = 0\n").is_err());
    }
}
