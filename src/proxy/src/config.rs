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
//!
//! With kernel vsock (an AWS Nitro parent instance: the enclave reaches the
//! parent as CID 3, the enclave is CID 4 or more, 16 and up by default):
//!
//! ```toml
//! [[egress]]                  # enclave connect(CID 3, 8443) -> the verifier
//! listen = "vsock://any:8443"
//! target = "127.0.0.1:8443"
//!
//! [[ingress]]                 # the API gateway -> enclave CID 16, port 8443
//! listen = "127.0.0.1:8080"
//! cid = 16
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

/// One egress rule: a hybrid-vsock host socket, or a kernel-vsock port, to
/// one TCP target.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    /// `<uds>_<port>` of the guest's vsock device, or `vsock://any:PORT`.
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
    /// The guest's hybrid-vsock socket (hybrid vsock), or
    #[serde(default)]
    pub uds: Option<PathBuf>,
    /// the guest's CID (kernel vsock): exactly one of the two.
    #[serde(default)]
    pub cid: Option<u32>,
    /// The guest port.
    pub port: u32,
}

impl Egress {
    /// `Some` when the rule listens on kernel vsock (`vsock://any:PORT`):
    /// the address, or why it is not one a host can listen on.
    pub fn vsock_listen(&self) -> Option<Result<transport::Addr, String>> {
        let text = self.listen.to_str()?;
        if !text.starts_with("vsock://") {
            return None;
        }
        Some(text.parse::<transport::Addr>().and_then(|a| {
            a.check_listenable()?;
            Ok(a)
        }))
    }
}

impl Ingress {
    /// Where connections go: `hybrid://UDS:PORT` or `vsock://CID:PORT`.
    pub fn guest(&self) -> Result<transport::Addr, String> {
        match (&self.uds, self.cid) {
            (Some(uds), None) => Ok(transport::Addr::Hybrid {
                uds: uds.clone(),
                port: self.port,
            }),
            // 0 (hypervisor), 1 (local), 2 (host) and any are never a guest.
            (None, Some(cid)) if cid > 2 && cid != transport::VMADDR_CID_ANY => {
                Ok(transport::Addr::Vsock {
                    cid,
                    port: self.port,
                })
            }
            (None, Some(cid)) => Err(format!(
                "ingress {}: CID {cid} is not a guest's (3 or more)",
                self.listen
            )),
            _ => Err(format!(
                "ingress {}: give exactly one of uds (hybrid vsock) and cid (kernel vsock)",
                self.listen
            )),
        }
    }
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
            if let Some(addr) = e.vsock_listen() {
                addr.map_err(|m| format!("egress listen: {m}"))?;
                check_target(&e.target)?;
                continue;
            }
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
            check_target(&e.target)?;
        }
        for i in &c.ingress {
            i.guest()?;
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

fn check_target(target: &str) -> Result<(), String> {
    if target
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .is_none()
    {
        return Err(format!("egress target {target:?} is not host:port"));
    }
    Ok(())
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

    /// An AWS Nitro parent: the enclave reaches us as CID 3 and is CID 16;
    /// nothing in the rules assumes the QEMU host CID 2 or a fixed guest CID.
    #[test]
    fn nitro_parent_rules_use_kernel_vsock_and_any_guest_cid() {
        let c = Config::parse(
            "[[egress]]\nlisten = \"vsock://any:8443\"\ntarget = \"127.0.0.1:8443\"\n\
             [[ingress]]\nlisten = \"127.0.0.1:8080\"\ncid = 16\nport = 8443\n\
             [[ingress]]\nlisten = \"127.0.0.1:8081\"\ncid = 4242\nport = 7000\n",
        )
        .unwrap();
        assert_eq!(
            c.egress[0].vsock_listen(),
            Some(Ok(transport::Addr::Vsock {
                cid: transport::VMADDR_CID_ANY,
                port: 8443
            }))
        );
        assert_eq!(
            c.ingress[0].guest(),
            Ok(transport::Addr::Vsock {
                cid: 16,
                port: 8443
            })
        );
        assert_eq!(
            c.ingress[1].guest(),
            Ok(transport::Addr::Vsock {
                cid: 4242,
                port: 7000
            })
        );
        // Listening on one CID (the parent's 3, or the host's 2) would tie
        // the rule to one platform: refused, `any` serves both.
        assert!(
            Config::parse("[[egress]]\nlisten = \"vsock://3:8443\"\ntarget = \"h:1\"\n")
                .unwrap_err()
                .contains("binds CID `any`")
        );
        // CID 2 is the host, never a guest; uds and cid together are ambiguous.
        assert!(
            Config::parse("[[ingress]]\nlisten = \"127.0.0.1:1\"\ncid = 2\nport = 1\n")
                .unwrap_err()
                .contains("not a guest's")
        );
        assert!(Config::parse(
            "[[ingress]]\nlisten = \"127.0.0.1:1\"\ncid = 16\nuds = \"/r/v\"\nport = 1\n"
        )
        .unwrap_err()
        .contains("exactly one"));
    }
}
