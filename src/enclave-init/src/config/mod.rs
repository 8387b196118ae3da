//! The measured configuration.
//!
//! The file lives inside the initramfs (`/etc/enclave/config.toml`), so its
//! bytes are part of the launch measurement: whoever pins the measurement
//! pins the configuration. The kernel command line is measured too, and may
//! override single fields as `enclave.<section>.<field>=<value>`
//! (`enclave.log.level=debug`).
//!
//! [`load`] reads the file; [`parse`] then
//! 1. flattens its tables into dotted field names, each checked by name
//!    against the sections' field tables ([`SECTIONS`]),
//! 2. applies the command line's overrides ([`cmdline`]) and fills in the
//!    defaults ([`fields`]),
//! 3. builds each section from its fields, in the order of [`Config`], and
//! 4. checks the rules that span sections (the call service needs Vault,
//!    the audit trail needs a verifier).
//!
//! An unknown key, a wrong type or an out-of-range value is a
//! [`ConfigError`] that names the exact field (`host.ready`) and why it was
//! refused. Nothing is silently ignored.
//!
//! One module per section holds its struct, its fields with their defaults,
//! its parsing and checks, and their tests: [`init`] (`[log]`, `[boot]`),
//! [`host`], [`tee`], [`verifier`], [`vault`], [`service`],
//! [`transcription`], [`lifecycle`], [`audit`], [`test_hooks`] (`[test]`).
//! [`values`] holds the value checks several sections share.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::LevelFilter;

mod audit;
mod cmdline;
mod fields;
mod host;
mod init;
mod lifecycle;
mod service;
mod tee;
mod test_hooks;
mod transcription;
mod values;
mod vault;
mod verifier;

pub use audit::AuditConfig;
pub use host::HostConfig;
pub use lifecycle::LifecycleConfig;
pub use service::ServiceConfig;
pub use tee::TeeConfig;
// Nothing outside names it yet, but it is the type of a public field
// (`ServiceConfig::transcription`): it stays nameable as before the split.
#[allow(unused_imports)]
pub use transcription::TranscriptionConfig;
pub use vault::{VaultAuth, VaultConfig};
pub use verifier::VerifierConfig;

use fields::{Field, Fields};

/// Where PID 1 finds its configuration inside the image.
pub const IMAGE_CONFIG_PATH: &str = "/etc/enclave/config.toml";

/// Every section's fields, their kinds and their defaults. The tables are
/// the configuration's documentation; `image/config.toml` shows each field
/// in use. Their order is the order an unknown field's error lists the
/// known ones.
const SECTIONS: &[&[Field]] = &[
    init::FIELDS,
    host::FIELDS,
    tee::FIELDS,
    verifier::FIELDS,
    vault::FIELDS,
    service::FIELDS,
    transcription::FIELDS,
    lifecycle::FIELDS,
    audit::FIELDS,
    test_hooks::FIELDS,
];

/// The validated configuration, built once in boot step 2 and passed down by
/// reference (never a global).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Most verbose level written to the console.
    pub log_level: LevelFilter,
    /// How long to wait for the kernel's random generator before giving up.
    pub entropy_timeout: Duration,
    /// Refuse to boot when the kernel cannot enforce the no-write sandbox
    /// (no Landlock). On by default: an image that runs without it must say
    /// so in its measured configuration or command line.
    pub require_sandbox: bool,
    /// The host channel.
    pub host: HostConfig,
    /// Where evidence comes from.
    pub tee: TeeConfig,
    /// The attestation verifier.
    pub verifier: VerifierConfig,
    /// Vault/OpenBao.
    pub vault: VaultConfig,
    /// The call service.
    pub service: ServiceConfig,
    /// Renewal, deadlines, clock drift.
    pub lifecycle: LifecycleConfig,
    /// The audit trail (`[audit]`).
    pub audit: AuditConfig,
    /// Answer `secret-hash` on the control channel: only in builds with the
    /// `test-hooks` feature (never the measured image), and only when the
    /// configuration asks (a keyed-hash oracle lets whoever holds the host
    /// side test guesses).
    pub secret_hash_query: bool,
}

/// Why a configuration was refused. Each variant names where the problem is.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's explanation, with line and column.
        message: String,
    },
    /// A field is unknown, missing, of the wrong type or out of range.
    Field {
        /// The dotted field name, e.g. `host.ready`.
        field: String,
        /// Where the value came from.
        origin: Origin,
        /// Why it was refused.
        reason: String,
    },
}

/// Where a configuration value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The measured configuration file.
    File,
    /// An `enclave.*` kernel command line parameter.
    Cmdline,
    /// The field's documented default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::File => "config file",
            Origin::Cmdline => "kernel command line",
            Origin::Default => "default",
        })
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, .. } => {
                write!(f, "cannot read configuration {}", path.display())
            }
            ConfigError::Syntax { path, message } => {
                write!(
                    f,
                    "configuration {} is not valid TOML: {}",
                    path.display(),
                    message.trim()
                )
            }
            ConfigError::Field {
                field,
                origin,
                reason,
            } => {
                write!(f, "configuration field `{field}` ({origin}): {reason}")
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Loads the configuration file at `path` and applies the `enclave.*`
/// parameters found in `cmdline` (the kernel command line, or its stand-in in
/// process mode).
pub fn load(path: &Path, cmdline: &str) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, cmdline).map_err(|e| match e {
        ConfigError::Syntax { message, .. } => ConfigError::Syntax {
            path: path.to_owned(),
            message,
        },
        e => e,
    })
}

/// Parses configuration text and applies command-line overrides.
pub fn parse(text: &str, cmdline: &str) -> Result<Config, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
    let fields = Fields::collect(&table, cmdline::overrides(cmdline))?;
    // Field order decides which of several bad fields is reported: keep it.
    let config = Config {
        log_level: init::log_level(&fields)?,
        entropy_timeout: init::entropy_timeout(&fields)?,
        require_sandbox: init::require_sandbox(&fields)?,
        host: host::parse(&fields)?,
        tee: tee::parse(&fields)?,
        verifier: verifier::parse(&fields)?,
        vault: vault::parse(&fields)?,
        service: service::parse(&fields)?,
        lifecycle: lifecycle::parse(&fields)?,
        audit: audit::parse(&fields)?,
        secret_hash_query: test_hooks::secret_hash_query(&fields)?,
    };
    service::check(&config)?;
    audit::check(&config)?;
    Ok(config)
}

/// What the sections' tests share: a minimal valid file and a way to
/// expect a field error.
#[cfg(test)]
mod testing {
    use super::{parse, ConfigError, Origin};

    /// The smallest valid configuration: only the fields without defaults.
    pub(super) const GOOD: &str = r#"
        [log]
        level = "debug"
        [host]
        ready = "vsock://2:9000"
        control = "vsock://any:1234"
    "#;

    pub(super) fn field_error(text: &str, cmdline: &str) -> (String, Origin, String) {
        match parse(text, cmdline) {
            Err(ConfigError::Field {
                field,
                origin,
                reason,
            }) => (field, origin, reason),
            other => panic!("expected a field error, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use transport::Addr;

    use super::testing::{field_error, GOOD};
    use super::*;

    #[test]
    fn parses_the_image_configuration() {
        let text = include_str!("../../../../image/config.toml");
        let config = parse(text, "").expect("image/config.toml must be valid");
        assert_eq!(config.host.ready, Addr::Vsock { cid: 2, port: 9000 });
    }

    #[test]
    fn applies_defaults_and_values() {
        let c = parse(GOOD, "").unwrap();
        assert_eq!(c.log_level, LevelFilter::Debug);
        assert_eq!(c.entropy_timeout, Duration::from_secs(30));
        assert_eq!(
            c.host.control,
            Addr::Vsock {
                cid: transport::VMADDR_CID_ANY,
                port: 1234
            }
        );
        assert_eq!(c.host.io_timeout, Duration::from_secs(5));
        assert!(
            c.require_sandbox,
            "the sandbox is mandatory unless the measured configuration says otherwise"
        );
    }

    #[test]
    fn cmdline_overrides_win_and_other_params_are_ignored() {
        let c = parse(
            GOOD,
            r#"console=ttyS0 panic=-1 enclave.log.level=warn enclave.host.ready="vsock://2:9100" enclave.host.io_timeout_ms=250 quiet"#,
        )
        .unwrap();
        assert_eq!(c.log_level, LevelFilter::Warn);
        assert_eq!(c.host.ready, Addr::Vsock { cid: 2, port: 9100 });
        assert_eq!(c.host.io_timeout, Duration::from_millis(250));
    }

    #[test]
    fn unknown_file_field_is_named() {
        let (field, origin, reason) = field_error(&format!("{GOOD}\nextra = 1\n"), "");
        assert_eq!((field.as_str(), origin), ("host.extra", Origin::File));
        assert!(reason.starts_with("unknown field"), "{reason}");
        let (field, _, _) = field_error(&format!("[nosuch]\na = 1\n{GOOD}"), "");
        assert_eq!(field, "nosuch");
    }

    #[test]
    fn unknown_cmdline_field_is_named() {
        let (field, origin, _) = field_error(GOOD, "enclave.host.redy=vsock://2:1");
        assert_eq!((field.as_str(), origin), ("host.redy", Origin::Cmdline));
    }

    #[test]
    fn wrong_types_and_values_are_named() {
        let (field, _, reason) = field_error(&GOOD.replace("\"debug\"", "3"), "");
        assert_eq!(field, "log.level");
        assert_eq!(reason, "expected a string, got integer");

        let (field, _, reason) = field_error(GOOD, "enclave.log.level=loud");
        assert_eq!(field, "log.level");
        assert!(reason.contains("expected one of"), "{reason}");

        let (field, origin, reason) = field_error(GOOD, "enclave.host.connect_timeout_ms=0");
        assert_eq!(
            (field.as_str(), origin),
            ("host.connect_timeout_ms", Origin::Cmdline)
        );
        assert_eq!(reason, "0 is out of range 1..=600000");

        let (field, _, reason) = field_error(GOOD, "enclave.host.io_timeout_ms=soon");
        assert_eq!(field, "host.io_timeout_ms");
        assert_eq!(reason, "expected an integer, got \"soon\"");

        let (field, _, reason) = field_error(GOOD, "enclave.host.ready=vsock://any:9000");
        assert_eq!(field, "host.ready");
        assert!(reason.contains("cannot connect"), "{reason}");

        let (field, _, reason) = field_error(GOOD, "enclave.host.control=http://x");
        assert_eq!(field, "host.control");
        assert!(reason.contains("scheme"), "{reason}");
    }

    #[test]
    fn missing_required_field_is_named() {
        let (field, _, reason) = field_error("[host]\nready = \"vsock://2:9000\"\n", "");
        assert_eq!(field, "host.control");
        assert!(reason.starts_with("missing"));
    }

    #[test]
    fn syntax_errors_carry_the_position() {
        match parse("[host\nready=", "") {
            Err(ConfigError::Syntax { message, .. }) => {
                assert!(message.contains("line 1"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
