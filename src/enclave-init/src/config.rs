//! The measured configuration.
//!
//! The file lives inside the initramfs (`/etc/enclave/config.toml`), so its
//! bytes are part of the launch measurement: whoever pins the measurement
//! pins the configuration. The kernel command line is measured too, and may
//! override single fields as `enclave.<section>.<field>=<value>`
//! (`enclave.log.level=debug`).
//!
//! Every field is checked by name against [`FIELDS`]: an unknown key, a wrong
//! type or an out-of-range value is a [`ConfigError`] that names the exact
//! field (`host.ready`) and why it was refused. Nothing is silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::LevelFilter;

use transport::Addr;

/// Where PID 1 finds its configuration inside the image.
pub const IMAGE_CONFIG_PATH: &str = "/etc/enclave/config.toml";

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

/// The lifecycle's schedule and bounds (`[lifecycle]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleConfig {
    /// The first attestation and provisioning, retried on transient
    /// failures, must succeed within this much of the boot, or boot fails.
    pub boot_deadline: Duration,
    /// Bound on one whole attempt (verifier and Vault, connect, TLS and
    /// every read and write together).
    pub attempt_timeout: Duration,
    /// Renewal happens at a random instant between these percentages of
    /// the trust lifetime (per guest and per renewal: fleets spread out).
    pub renew_from_pct: u8,
    /// See `renew_from_pct`.
    pub renew_to_pct: u8,
    /// A renewal's retries end this long before the trust deadline.
    pub renew_margin: Duration,
    /// Guest and verifier time may disagree by this much at a renewal;
    /// beyond it the secrets are withdrawn (the host moved the guest's clock).
    pub max_clock_drift: Duration,
    /// The longest pause between re-attestation rounds after a withdrawal.
    pub reattest_cap: Duration,
}

/// The audit trail (`[audit]`): where records go and what happens when
/// they cannot.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditConfig {
    /// The collector (`enclavectl audit serve`); `None`: no audit trail.
    pub collector: Option<Addr>,
    /// Fail closed: while the queue is full or the collector has not
    /// acknowledged the oldest record for `deadline`, calls are refused.
    /// Off: records that do not fit are dropped and counted.
    pub required: bool,
    /// Records held until the collector acknowledges them.
    pub queue: usize,
    /// How long the oldest record may wait for its acknowledgement before
    /// the trail counts as stalled (`required`: calls stop).
    pub deadline: Duration,
    /// Bound on one whole exchange with the collector: connecting, the
    /// hello, sending a batch and reading its acknowledgement.
    pub timeout: Duration,
}

/// The call service: where it listens, its TLS identity, its bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// The call port; `None`: no call service (development images).
    pub listen: Option<Addr>,
    /// The name in the serving certificate (the common name of the request
    /// Vault's PKI signs; clients check it).
    pub server_name: String,
    /// Vault's PKI signing endpoint for that request.
    pub pki_sign_path: String,
    /// Requested certificate lifetime.
    pub cert_ttl: Duration,
    /// Worker threads: requests processed at once.
    pub workers: usize,
    /// Connections waiting for a worker before new ones get `503`.
    pub queue: usize,
    /// Largest request body.
    pub max_body: usize,
    /// Bound on each read and write.
    pub io_timeout: Duration,
    /// Bound on receiving a whole request once its head has begun.
    pub request_timeout: Duration,
    /// Bound on waiting for the next request on a kept-alive connection
    /// (and for the first, handshake included).
    pub idle_timeout: Duration,
    /// `Retry-After` on `503`.
    pub retry_after_secs: u64,
    /// The secret keying phone-number hashes.
    pub pepper_secret: String,
    /// The secret verifying Retell webhooks (the Retell API key).
    pub retell_secret: String,
    /// Accepted distance between a Retell signature's time and ours.
    pub retell_window: Duration,
    /// The CA (PEM) whose certificates authenticate the platform's API
    /// gateway: `/v1/calls` and `/metrics` answer only a client presenting
    /// one (mutual TLS). Required when the service listens.
    pub client_ca_pem: String,
    /// Whether `/health/enclave` answers a client without a certificate.
    pub health_without_client_cert: bool,
    /// The transcription upstream.
    pub transcription: TranscriptionConfig,
}

/// The OpenAI-compatible transcription upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionConfig {
    /// Where the proxy's egress to it listens.
    pub addr: Option<Addr>,
    /// The name its certificate carries (also the `Host` header).
    pub server_name: String,
    /// The one CA trusted for it (PEM).
    pub ca_pem: String,
    /// The API's base path (`/v1`): requests go to `<base>/audio/transcriptions`.
    pub base_path: String,
    /// The model named in each request.
    pub model: String,
    /// The secret holding its API key.
    pub secret: String,
    /// Bound on connecting and on each read and write.
    pub timeout: Duration,
}

/// How the guest logs in to Vault/OpenBao (`vault.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultAuth {
    /// `jwt` (the default): the verifier's token at the JWT auth method.
    /// A bearer token: whoever copies it can log in until it expires (its
    /// `cnf` claim is informational; Vault does not check it).
    Jwt,
    /// `cert`: the verifier's client certificate for the enclave key at
    /// the cert auth method, over mutual TLS: the handshake proves
    /// possession of the attested key (proof of possession).
    Cert,
}

/// How to reach Vault/OpenBao and what to read there.
#[derive(Debug, Clone, PartialEq)]
pub struct VaultConfig {
    /// `None`: no secrets.
    pub addr: Option<Addr>,
    /// The name its TLS certificate must carry.
    pub server_name: String,
    /// The one CA trusted for it (PEM).
    pub ca_pem: String,
    /// How the guest logs in (`vault.auth`).
    pub auth: VaultAuth,
    /// The auth method's mount path (the JWT mount, or the cert mount in
    /// certificate mode).
    pub auth_path: String,
    /// The role (JWT role, or cert role name in certificate mode).
    pub role: String,
    /// The KV v2 mount.
    pub kv_mount: String,
    /// Secrets to read, each `<kv path>/<field>` under the mount (e.g.
    /// `hume/api-key` is field `api-key` of secret `hume`).
    pub secrets: Vec<String>,
    /// Bound on connecting and on each read and write.
    pub timeout: Duration,
    /// TTL of response-wrapping tokens.
    pub wrap_ttl: Duration,
}

/// How to reach the verifier, and whom to trust there.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifierConfig {
    /// `None`: no attestation (development images only; nothing secret is
    /// provisioned without it).
    pub addr: Option<Addr>,
    /// The name its TLS certificate must carry.
    pub server_name: String,
    /// The one CA trusted for it (PEM, measured with this file).
    pub ca_pem: String,
    /// Bound on connecting and on each read and write.
    pub timeout: Duration,
    /// The longest token lifetime the guest accepts (the verifier's policy
    /// caps it too; this is the guest's own bound).
    pub max_token_ttl: Duration,
}

/// Which evidence source to use.
#[derive(Debug, Clone, PartialEq)]
pub struct TeeConfig {
    /// `None` = detect the hardware interface (never the simulation).
    pub source: Option<evidence::SourceKind>,
    /// The simulated PSP, when `source` is `sim`.
    pub sim_psp: Addr,
    /// Bound on obtaining evidence (connecting, each read and write).
    pub timeout: Duration,
    /// Where the host serves TDX collateral, if it does.
    pub tdx_collateral: Option<Addr>,
    /// The TPM (Azure vTPM): `/dev/tpmrm0`, or `unix:///PATH` in tests.
    pub tpm: evidence::tpm_device::TpmAddr,
    /// Azure: host relays of IMDS for the VCEK chain and the TD quote.
    pub azure: evidence::azure_vtpm::Endorsements,
}

/// Addresses and timeouts of the host channel (readiness and control).
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// Where the readiness report is sent (the host listens there).
    pub ready: Addr,
    /// Where host-initiated control connections (ping, status, poweroff) arrive.
    pub control: Addr,
    /// Total time allowed to reach the readiness listener, retries included.
    pub connect_timeout: Duration,
    /// Read/write timeout on each control connection: a silent peer cannot
    /// hold the init.
    pub io_timeout: Duration,
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

/// The kind of value a field holds, used to check the file and to convert
/// command-line strings.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
}

/// Every field, its kind and its default (`None`: required). The table is the
/// configuration's documentation; `image/config.toml` shows each in use.
const FIELDS: &[(&str, Kind, Option<&str>)] = &[
    ("log.level", Kind::Str, Some("info")),
    ("boot.entropy_timeout_ms", Kind::Int, Some("30000")),
    ("boot.require_sandbox", Kind::Str, Some("on")),
    ("host.ready", Kind::Str, None),
    ("host.control", Kind::Str, None),
    ("host.connect_timeout_ms", Kind::Int, Some("30000")),
    ("host.io_timeout_ms", Kind::Int, Some("5000")),
    ("tee.source", Kind::Str, Some("auto")),
    ("tee.sim_psp", Kind::Str, Some("vsock://2:9100")),
    ("tee.timeout_ms", Kind::Int, Some("30000")),
    ("tee.tdx_collateral", Kind::Str, Some("")),
    ("tee.tpm", Kind::Str, Some("/dev/tpmrm0")),
    ("tee.azure_certs", Kind::Str, Some("")),
    ("tee.azure_td_quote", Kind::Str, Some("")),
    ("verifier.addr", Kind::Str, Some("")),
    (
        "verifier.server_name",
        Kind::Str,
        Some("verifier.enclave.local"),
    ),
    ("verifier.ca", Kind::Str, Some("")),
    ("verifier.timeout_ms", Kind::Int, Some("10000")),
    ("verifier.max_token_ttl_s", Kind::Int, Some("300")),
    ("vault.addr", Kind::Str, Some("")),
    ("vault.server_name", Kind::Str, Some("vault.enclave.local")),
    ("vault.ca", Kind::Str, Some("")),
    ("vault.auth", Kind::Str, Some("jwt")),
    ("vault.auth_path", Kind::Str, Some("enclave-attest")),
    ("vault.role", Kind::Str, Some("enclave-agent")),
    ("vault.kv_mount", Kind::Str, Some("enclave-agents")),
    (
        "vault.secrets",
        Kind::Str,
        Some("hume/api-key,retell/api-key,database/connection,transcription/api-key,pii/pepper"),
    ),
    ("vault.timeout_ms", Kind::Int, Some("10000")),
    ("vault.wrap_ttl_ms", Kind::Int, Some("60000")),
    ("service.listen", Kind::Str, Some("")),
    ("service.server_name", Kind::Str, Some("call.enclave.local")),
    (
        "service.pki_sign_path",
        Kind::Str,
        Some("enclave-pki/sign/enclave-serving"),
    ),
    ("service.cert_ttl_ms", Kind::Int, Some("86400000")),
    ("service.workers", Kind::Int, Some("4")),
    ("service.queue", Kind::Int, Some("8")),
    ("service.max_body_bytes", Kind::Int, Some("16777216")),
    ("service.io_timeout_ms", Kind::Int, Some("10000")),
    ("service.request_timeout_ms", Kind::Int, Some("30000")),
    ("service.idle_timeout_ms", Kind::Int, Some("15000")),
    ("service.retry_after_s", Kind::Int, Some("1")),
    ("service.pepper_secret", Kind::Str, Some("pii/pepper")),
    ("service.retell_secret", Kind::Str, Some("retell/api-key")),
    ("service.retell_window_ms", Kind::Int, Some("300000")),
    ("service.client_ca", Kind::Str, Some("")),
    ("service.health_without_client_cert", Kind::Str, Some("off")),
    ("transcription.addr", Kind::Str, Some("")),
    (
        "transcription.server_name",
        Kind::Str,
        Some("transcribe.enclave.local"),
    ),
    ("transcription.ca", Kind::Str, Some("")),
    ("transcription.base_path", Kind::Str, Some("/v1")),
    ("transcription.model", Kind::Str, Some("whisper-1")),
    (
        "transcription.secret",
        Kind::Str,
        Some("transcription/api-key"),
    ),
    ("transcription.timeout_ms", Kind::Int, Some("60000")),
    ("lifecycle.boot_deadline_ms", Kind::Int, Some("120000")),
    ("lifecycle.attempt_timeout_ms", Kind::Int, Some("20000")),
    ("lifecycle.renew_from_pct", Kind::Int, Some("50")),
    ("lifecycle.renew_to_pct", Kind::Int, Some("75")),
    ("lifecycle.renew_margin_ms", Kind::Int, Some("1000")),
    ("lifecycle.max_clock_drift_ms", Kind::Int, Some("2000")),
    ("lifecycle.reattest_cap_ms", Kind::Int, Some("30000")),
    ("audit.collector", Kind::Str, Some("")),
    ("audit.required", Kind::Str, Some("off")),
    ("audit.queue", Kind::Int, Some("1024")),
    ("audit.deadline_ms", Kind::Int, Some("10000")),
    ("audit.timeout_ms", Kind::Int, Some("5000")),
    ("test.secret_hash_query", Kind::Str, Some("off")),
];

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
    let mut values = BTreeMap::new();
    flatten("", &table, &mut values)?;
    for (key, raw) in cmdline_overrides(cmdline) {
        let kind = kind_of(&key).ok_or_else(|| ConfigError::Field {
            field: key.clone(),
            origin: Origin::Cmdline,
            reason: format!("unknown field (known: {})", known_fields()),
        })?;
        let value = match kind {
            Kind::Str => toml::Value::String(raw),
            Kind::Int => toml::Value::Integer(raw.parse().map_err(|_| ConfigError::Field {
                field: key.clone(),
                origin: Origin::Cmdline,
                reason: format!("expected an integer, got {raw:?}"),
            })?),
        };
        values.insert(key, (value, Origin::Cmdline));
    }
    for (name, _, default) in FIELDS {
        if let (false, Some(d)) = (values.contains_key(*name), default) {
            let value = match kind_of(name) {
                Some(Kind::Int) => toml::Value::Integer(d.parse().unwrap_or_default()),
                _ => toml::Value::String((*d).to_owned()),
            };
            values.insert((*name).to_owned(), (value, Origin::Default));
        }
    }
    let fields = Fields(values);
    let config = Config {
        log_level: fields.parsed("log.level", |s| match s {
            "off" => Ok(LevelFilter::Off),
            "error" => Ok(LevelFilter::Error),
            "warn" => Ok(LevelFilter::Warn),
            "info" => Ok(LevelFilter::Info),
            "debug" => Ok(LevelFilter::Debug),
            "trace" => Ok(LevelFilter::Trace),
            _ => Err("expected one of off, error, warn, info, debug, trace".to_owned()),
        })?,
        entropy_timeout: fields.millis("boot.entropy_timeout_ms", 1..=600_000)?,
        require_sandbox: fields.parsed("boot.require_sandbox", on_off)?,
        host: HostConfig {
            ready: fields.parsed("host.ready", |s| {
                let addr: Addr = s.parse()?;
                addr.check_connectable()?;
                Ok(addr)
            })?,
            control: fields.parsed("host.control", |s| {
                let addr: Addr = s.parse()?;
                addr.check_listenable()?;
                Ok(addr)
            })?,
            connect_timeout: fields.millis("host.connect_timeout_ms", 1..=600_000)?,
            io_timeout: fields.millis("host.io_timeout_ms", 1..=600_000)?,
        },
        tee: TeeConfig {
            source: fields.parsed("tee.source", |s| match s {
                "auto" => Ok(None),
                other => other.parse().map(Some),
            })?,
            sim_psp: fields.parsed("tee.sim_psp", |s| {
                let addr: Addr = s.parse()?;
                addr.check_connectable()?;
                Ok(addr)
            })?,
            timeout: fields.millis("tee.timeout_ms", 1..=600_000)?,
            tdx_collateral: optional_addr(&fields, "tee.tdx_collateral")?,
            tpm: fields.parsed("tee.tpm", |s| s.parse())?,
            azure: evidence::azure_vtpm::Endorsements {
                certs: optional_addr(&fields, "tee.azure_certs")?,
                td_quote: optional_addr(&fields, "tee.azure_td_quote")?,
            },
        },
        verifier: verifier_config(&fields)?,
        vault: vault_config(&fields)?,
        service: service_config(&fields)?,
        lifecycle: lifecycle_config(&fields)?,
        audit: audit_config(&fields)?,
        secret_hash_query: fields.parsed("test.secret_hash_query", |s| match s {
            "on" if cfg!(feature = "test-hooks") => Ok(true),
            "on" => Err("the keyed secret-hash query exists only in test-hooks builds, never in the measured image".to_owned()),
            "off" => Ok(false),
            _ => Err("expected on or off".to_owned()),
        })?,
    };
    check_service(&config)?;
    check_audit(&config)?;
    Ok(config)
}

fn audit_config(fields: &Fields) -> Result<AuditConfig, ConfigError> {
    let collector = optional_addr(fields, "audit.collector")?;
    let required = fields.parsed("audit.required", on_off)?;
    if required && collector.is_none() {
        return Err(ConfigError::Field {
            field: "audit.required".into(),
            origin: fields.get("audit.required")?.1,
            reason: "an audit trail is required but audit.collector names no collector".into(),
        });
    }
    Ok(AuditConfig {
        collector,
        required,
        queue: fields.count("audit.queue", 16..=65_536)?,
        deadline: fields.millis("audit.deadline_ms", 100..=3_600_000)?,
        timeout: fields.millis("audit.timeout_ms", 100..=600_000)?,
    })
}

/// The audit trail is signed by the attested enclave key: without a
/// verifier there is no such key, and a trail nobody can tie to an
/// attested image proves nothing.
fn check_audit(config: &Config) -> Result<(), ConfigError> {
    if config.audit.collector.is_some() && config.verifier.addr.is_none() {
        return Err(ConfigError::Field {
            field: "audit.collector".into(),
            origin: Origin::File,
            reason: "the audit trail is signed by the attested enclave key: it needs a verifier (verifier.addr)".into(),
        });
    }
    Ok(())
}

/// A switch: `on` or `off`.
fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("expected on or off".to_owned()),
    }
}

/// A peer address that may be left empty (the peer is then not used).
fn optional_addr(fields: &Fields, name: &str) -> Result<Option<Addr>, ConfigError> {
    fields.parsed(name, |s| {
        if s.is_empty() {
            return Ok(None);
        }
        let addr: Addr = s.parse()?;
        addr.check_connectable()?;
        Ok(Some(addr))
    })
}

/// The name a peer's TLS certificate must carry.
fn server_name(fields: &Fields, name: &str) -> Result<String, ConfigError> {
    fields.parsed(name, |s| {
        rustls::pki_types::ServerName::try_from(s.to_owned())
            .map(|_| s.to_owned())
            .map_err(|_| format!("{s:?} is not a DNS name or IP address"))
    })
}

/// The CA pinned for a peer: required (and checked) when the peer is used.
fn pinned_ca(fields: &Fields, name: &str, used: bool) -> Result<String, ConfigError> {
    fields.parsed(name, |s| {
        if used {
            crate::attest::parse_ca(s)?;
        }
        Ok(s.to_owned())
    })
}

/// A Vault path or path segment: letters, digits, `- _ . /`, no `..`.
fn vault_path(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !s.contains("..")
    {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a plain Vault path (letters, digits, - _ . /)"
        ))
    }
}

fn vault_config(fields: &Fields) -> Result<VaultConfig, ConfigError> {
    let addr = optional_addr(fields, "vault.addr")?;
    let has_addr = addr.is_some();
    let segment = vault_path;
    Ok(VaultConfig {
        addr,
        server_name: server_name(fields, "vault.server_name")?,
        ca_pem: pinned_ca(fields, "vault.ca", has_addr)?,
        auth: fields.parsed("vault.auth", |s| match s {
            "jwt" => Ok(VaultAuth::Jwt),
            "cert" => Ok(VaultAuth::Cert),
            other => Err(format!("{other:?} is neither \"jwt\" nor \"cert\"")),
        })?,
        auth_path: fields.parsed("vault.auth_path", segment)?,
        role: fields.parsed("vault.role", segment)?,
        kv_mount: fields.parsed("vault.kv_mount", segment)?,
        secrets: fields.parsed("vault.secrets", |s| {
            s.split(',')
                .map(|p| segment(p.trim()))
                .collect::<Result<Vec<_>, _>>()
        })?,
        timeout: fields.millis("vault.timeout_ms", 1..=600_000)?,
        wrap_ttl: fields.millis("vault.wrap_ttl_ms", 1000..=3_600_000)?,
    })
}

fn service_config(fields: &Fields) -> Result<ServiceConfig, ConfigError> {
    let listen = fields.parsed("service.listen", |s| {
        if s.is_empty() {
            return Ok(None);
        }
        let addr: Addr = s.parse()?;
        addr.check_listenable()?;
        Ok(Some(addr))
    })?;
    let used = listen.is_some();
    let transcription_addr = optional_addr(fields, "transcription.addr")?;
    let transcription = TranscriptionConfig {
        server_name: server_name(fields, "transcription.server_name")?,
        ca_pem: pinned_ca(fields, "transcription.ca", transcription_addr.is_some())?,
        addr: transcription_addr,
        base_path: fields.parsed("transcription.base_path", |s| {
            if s.starts_with('/')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                Ok(s.to_owned())
            } else {
                Err(format!("{s:?} is not an absolute URL path"))
            }
        })?,
        model: fields.parsed("transcription.model", |s| {
            if !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_graphic()) {
                Ok(s.to_owned())
            } else {
                Err(format!("{s:?} is not a model name"))
            }
        })?,
        secret: fields.parsed("transcription.secret", vault_path)?,
        timeout: fields.millis("transcription.timeout_ms", 1..=600_000)?,
    };
    if used && fields.parsed("service.client_ca", |s| Ok::<_, String>(s.is_empty()))? {
        return Err(ConfigError::Field {
            field: "service.client_ca".into(),
            origin: Origin::Default,
            reason: "the call service (service.listen) needs the CA of its clients: \
                     /v1/calls and /metrics answer only mutual TLS"
                .into(),
        });
    }
    let client_ca_pem = pinned_ca(fields, "service.client_ca", used)?;
    if used && transcription.addr.is_none() {
        return Err(ConfigError::Field {
            field: "transcription.addr".into(),
            origin: Origin::Default,
            reason: "the call service (service.listen) needs a transcription upstream".into(),
        });
    }
    Ok(ServiceConfig {
        listen,
        server_name: server_name(fields, "service.server_name")?,
        pki_sign_path: fields.parsed("service.pki_sign_path", vault_path)?,
        cert_ttl: fields.millis("service.cert_ttl_ms", 60_000..=31_536_000_000)?,
        workers: fields.count("service.workers", 1..=256)?,
        queue: fields.count("service.queue", 0..=4096)?,
        max_body: fields.count("service.max_body_bytes", 1024..=268_435_456)?,
        io_timeout: fields.millis("service.io_timeout_ms", 1..=600_000)?,
        request_timeout: fields.millis("service.request_timeout_ms", 1..=3_600_000)?,
        idle_timeout: fields.millis("service.idle_timeout_ms", 1..=3_600_000)?,
        retry_after_secs: fields.count("service.retry_after_s", 1..=3600)? as u64,
        pepper_secret: fields.parsed("service.pepper_secret", vault_path)?,
        retell_secret: fields.parsed("service.retell_secret", vault_path)?,
        retell_window: fields.millis("service.retell_window_ms", 1000..=3_600_000)?,
        client_ca_pem,
        health_without_client_cert: fields.parsed("service.health_without_client_cert", on_off)?,
        transcription,
    })
}

/// Cross-section rules: the call service needs Vault (its certificate and
/// its secrets), and every secret it names must be provisioned.
fn check_service(config: &Config) -> Result<(), ConfigError> {
    if config.service.listen.is_none() {
        return Ok(());
    }
    let field = |field: &str, reason: String| ConfigError::Field {
        field: field.into(),
        origin: Origin::File,
        reason,
    };
    if config.vault.addr.is_none() {
        return Err(field(
            "service.listen",
            "the call service needs Vault (vault.addr): its certificate and keys come from there"
                .into(),
        ));
    }
    for (name, secret) in [
        ("service.pepper_secret", &config.service.pepper_secret),
        ("service.retell_secret", &config.service.retell_secret),
        ("transcription.secret", &config.service.transcription.secret),
    ] {
        if !config.vault.secrets.contains(secret) {
            return Err(field(
                name,
                format!("{secret:?} is not among vault.secrets, so it would never be provisioned"),
            ));
        }
    }
    Ok(())
}

fn verifier_config(fields: &Fields) -> Result<VerifierConfig, ConfigError> {
    let addr = optional_addr(fields, "verifier.addr")?;
    let used = addr.is_some();
    Ok(VerifierConfig {
        addr,
        server_name: server_name(fields, "verifier.server_name")?,
        ca_pem: pinned_ca(fields, "verifier.ca", used)?,
        timeout: fields.millis("verifier.timeout_ms", 1..=600_000)?,
        max_token_ttl: Duration::from_secs(
            fields
                .integer("verifier.max_token_ttl_s", 1..=86_400)?
                .unsigned_abs(),
        ),
    })
}

fn lifecycle_config(fields: &Fields) -> Result<LifecycleConfig, ConfigError> {
    let pct = |name| {
        fields
            .integer(name, 1..=95)
            .map(|n| u8::try_from(n).unwrap_or(50))
    };
    let (from, to) = (
        pct("lifecycle.renew_from_pct")?,
        pct("lifecycle.renew_to_pct")?,
    );
    if to < from {
        return Err(ConfigError::Field {
            field: "lifecycle.renew_to_pct".to_owned(),
            origin: fields.get("lifecycle.renew_to_pct")?.1,
            reason: format!("{to} is below lifecycle.renew_from_pct ({from})"),
        });
    }
    Ok(LifecycleConfig {
        boot_deadline: fields.millis("lifecycle.boot_deadline_ms", 1000..=3_600_000)?,
        attempt_timeout: fields.millis("lifecycle.attempt_timeout_ms", 100..=600_000)?,
        renew_from_pct: from,
        renew_to_pct: to,
        renew_margin: fields.millis("lifecycle.renew_margin_ms", 0..=600_000)?,
        max_clock_drift: fields.millis("lifecycle.max_clock_drift_ms", 1..=3_600_000)?,
        reattest_cap: fields.millis("lifecycle.reattest_cap_ms", 1000..=3_600_000)?,
    })
}

/// The field values, each with its origin, keyed by dotted name.
struct Fields(BTreeMap<String, (toml::Value, Origin)>);

impl Fields {
    fn get(&self, name: &str) -> Result<&(toml::Value, Origin), ConfigError> {
        self.0.get(name).ok_or_else(|| ConfigError::Field {
            field: name.to_owned(),
            origin: Origin::File,
            reason: "missing (this field has no default)".to_owned(),
        })
    }

    fn parsed<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let (value, origin) = self.get(name)?;
        let text = value.as_str().ok_or_else(|| ConfigError::Field {
            field: name.to_owned(),
            origin: *origin,
            reason: format!("expected a string, got {}", value.type_str()),
        })?;
        parse(text).map_err(|reason| ConfigError::Field {
            field: name.to_owned(),
            origin: *origin,
            reason,
        })
    }

    /// An integer field within `range`.
    fn integer(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64, ConfigError> {
        let (value, origin) = self.get(name)?;
        let field = |reason| ConfigError::Field {
            field: name.to_owned(),
            origin: *origin,
            reason,
        };
        let n = value
            .as_integer()
            .ok_or_else(|| field(format!("expected an integer, got {}", value.type_str())))?;
        if !range.contains(&n) {
            return Err(field(format!(
                "{n} is out of range {}..={}",
                range.start(),
                range.end()
            )));
        }
        Ok(n)
    }

    /// A count (ranges given are non-negative).
    fn count(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<usize, ConfigError> {
        let n = self.integer(name, range)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn millis(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Duration, ConfigError> {
        let n = self.integer(name, range)?;
        Ok(Duration::from_millis(n.unsigned_abs()))
    }
}

/// Turns nested tables into dotted names, refusing unknown keys.
fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut BTreeMap<String, (toml::Value, Origin)>,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) if is_section(&name) => flatten(&name, inner, out)?,
            _ if kind_of(&name).is_some() => {
                out.insert(name, (value.clone(), Origin::File));
            }
            _ => {
                return Err(ConfigError::Field {
                    field: name,
                    origin: Origin::File,
                    reason: format!("unknown field (known: {})", known_fields()),
                })
            }
        }
    }
    Ok(())
}

fn is_section(name: &str) -> bool {
    FIELDS.iter().any(|(f, _, _)| {
        f.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

fn kind_of(name: &str) -> Option<Kind> {
    FIELDS
        .iter()
        .find(|(f, _, _)| *f == name)
        .map(|(_, k, _)| *k)
}

fn known_fields() -> String {
    FIELDS
        .iter()
        .map(|(f, _, _)| *f)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `enclave.*` parameters of a kernel command line, in order (a later one
/// wins). The kernel allows double quotes around values with spaces.
fn cmdline_overrides(cmdline: &str) -> Vec<(String, String)> {
    split_cmdline(cmdline)
        .into_iter()
        .filter_map(|param| {
            let rest = param.strip_prefix("enclave.")?;
            let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Splits a kernel command line as the kernel does (`next_arg` in
/// lib/cmdline.c): on whitespace, with double quotes grouping and removed.
fn split_cmdline(cmdline: &str) -> Vec<String> {
    let mut params = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                any = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if any {
                    params.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            c => {
                current.push(c);
                any = true;
            }
        }
    }
    if any {
        params.push(current);
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [log]
        level = "debug"
        [host]
        ready = "vsock://2:9000"
        control = "vsock://any:1234"
    "#;

    fn field_error(text: &str, cmdline: &str) -> (String, Origin, String) {
        match parse(text, cmdline) {
            Err(ConfigError::Field {
                field,
                origin,
                reason,
            }) => (field, origin, reason),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_image_configuration() {
        let text = include_str!("../../../image/config.toml");
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
    fn require_sandbox_is_a_switch() {
        assert!(
            !parse(GOOD, "enclave.boot.require_sandbox=off")
                .unwrap()
                .require_sandbox
        );
        assert!(
            parse(&format!("{GOOD}\n[boot]\nrequire_sandbox = \"on\"\n"), "")
                .unwrap()
                .require_sandbox
        );
        let (field, _, reason) = field_error(GOOD, "enclave.boot.require_sandbox=maybe");
        assert_eq!(
            (field.as_str(), reason.as_str()),
            ("boot.require_sandbox", "expected on or off")
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
    fn tee_source_is_auto_unless_named() {
        assert_eq!(parse(GOOD, "").unwrap().tee.source, None);
        let c = parse(
            GOOD,
            "enclave.tee.source=sim enclave.tee.sim_psp=unix:///run/psp.sock",
        )
        .unwrap();
        assert_eq!(c.tee.source, Some(evidence::SourceKind::Sim));
        assert_eq!(c.tee.sim_psp, Addr::Unix("/run/psp.sock".into()));
        let (field, _, reason) = field_error(GOOD, "enclave.tee.source=tpm");
        assert_eq!(field, "tee.source");
        assert!(reason.contains("unknown evidence source"), "{reason}");
        // The Azure vTPM: the device by default, a socket for tests.
        let c = parse(GOOD, "enclave.tee.source=azure-vtpm enclave.tee.tpm=unix:///run/tpm.sock enclave.tee.azure_certs=vsock://2:9101").unwrap();
        assert_eq!(c.tee.source, Some(evidence::SourceKind::AzureVtpm));
        assert_eq!(
            c.tee.tpm,
            evidence::tpm_device::TpmAddr::Unix("/run/tpm.sock".into())
        );
        assert_eq!(c.tee.azure.certs, Some(Addr::Vsock { cid: 2, port: 9101 }));
        assert_eq!(
            parse(GOOD, "").unwrap().tee.tpm,
            evidence::tpm_device::TpmAddr::default()
        );
        let (field, _, reason) = field_error(GOOD, "enclave.tee.tpm=tpmrm0");
        assert_eq!(field, "tee.tpm");
        assert!(reason.contains("absolute device path"), "{reason}");
    }

    #[test]
    fn vault_paths_are_checked() {
        let c = parse(GOOD, "").unwrap();
        assert_eq!(
            c.vault.secrets,
            [
                "hume/api-key",
                "retell/api-key",
                "database/connection",
                "transcription/api-key",
                "pii/pepper"
            ]
        );
        assert_eq!(c.vault.addr, None);
        assert_eq!(c.vault.auth, VaultAuth::Jwt, "JWT stays the default");
        let (field, _, _) = field_error(GOOD, "enclave.vault.auth=mtls");
        assert_eq!(field, "vault.auth");
        let (field, _, reason) = field_error(GOOD, "enclave.vault.secrets=a,../b");
        assert_eq!(field, "vault.secrets");
        assert!(reason.contains("plain Vault path"), "{reason}");
        let (field, _, _) = field_error(GOOD, "enclave.vault.addr=tcp://127.0.0.1:8200");
        assert_eq!(field, "vault.ca", "a Vault address needs its pinned CA");
    }

    #[test]
    fn the_call_service_needs_client_ca_vault_a_transcriber_and_its_secrets() {
        // Mutual TLS is not optional: no client CA, no call service.
        let (field, _, reason) = field_error(GOOD, "enclave.service.listen=vsock://any:5000");
        assert_eq!(field, "service.client_ca");
        assert!(reason.contains("mutual TLS"), "{reason}");
        let ca =
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ0zD\n-----END CERTIFICATE-----\n";
        let (field, _, reason) = field_error(
            &format!("{GOOD}\n[service]\nclient_ca = \"not PEM\"\n"),
            "enclave.service.listen=vsock://any:5000",
        );
        assert_eq!(field, "service.client_ca", "{reason}");
        let good = format!("{GOOD}\n[service]\nclient_ca = \"\"\"\n{ca}\"\"\"\n");
        let c = parse(&good, "").unwrap();
        assert!(
            !c.service.health_without_client_cert,
            "health needs the certificate by default"
        );
        let (field, _, reason) = field_error(&good, "enclave.service.listen=vsock://any:5000");
        assert_eq!(field, "transcription.addr");
        assert!(
            reason.contains("needs a transcription upstream"),
            "{reason}"
        );
        let (field, _, reason) = field_error(
            &good,
            "enclave.service.listen=vsock://any:5000 enclave.transcription.addr=vsock://2:8444",
        );
        assert_eq!(field, "transcription.ca", "{reason}");
        let with_ca = format!(
            "{good}\n[transcription]\naddr = \"vsock://2:8444\"\nca = \"\"\"\n{ca}\"\"\"\n"
        );
        // With a transcriber, the service still needs Vault for its
        // certificate and keys.
        let (field, _, reason) = field_error(&with_ca, "enclave.service.listen=vsock://any:5000");
        assert_eq!(field, "service.listen");
        assert!(reason.contains("needs Vault"), "{reason}");
        let (field, _, reason) = field_error(GOOD, "enclave.service.workers=0");
        assert_eq!(
            (field.as_str(), reason.as_str()),
            ("service.workers", "0 is out of range 1..=256")
        );
        let (field, _, reason) = field_error(GOOD, "enclave.service.listen=vsock://2:5000");
        assert_eq!(field, "service.listen", "{reason}");
    }

    #[test]
    fn the_audit_trail_is_off_by_default_and_checked_when_on() {
        let c = parse(GOOD, "").unwrap();
        assert_eq!(
            c.audit,
            AuditConfig {
                collector: None,
                required: false,
                queue: 1024,
                deadline: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
            }
        );
        let (f, o, why) = field_error(GOOD, "enclave.audit.required=on");
        assert_eq!((f.as_str(), o), ("audit.required", Origin::Cmdline));
        assert!(why.contains("audit.collector names no collector"), "{why}");
        let (f, _, why) = field_error(GOOD, "enclave.audit.collector=vsock://2:9300");
        assert_eq!(f, "audit.collector");
        assert!(why.contains("needs a verifier"), "{why}");
        let (f, _, why) = field_error(GOOD, "enclave.audit.queue=8");
        assert_eq!(f, "audit.queue");
        assert!(why.contains("out of range 16..=65536"), "{why}");
        let (f, _, _) = field_error(GOOD, "enclave.audit.required=yes");
        assert_eq!(f, "audit.required");
        let ca =
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ0zD\n-----END CERTIFICATE-----\n";
        let with_verifier =
            format!("{GOOD}\n[verifier]\naddr = \"vsock://2:9200\"\nca = \"\"\"\n{ca}\"\"\"\n");
        let c = parse(
            &with_verifier,
            "enclave.audit.collector=vsock://2:9300 enclave.audit.required=on enclave.audit.queue=64 enclave.audit.deadline_ms=2500",
        )
        .unwrap();
        assert_eq!(c.audit.collector, Some(Addr::Vsock { cid: 2, port: 9300 }));
        assert!(c.audit.required);
        assert_eq!(c.audit.queue, 64);
        assert_eq!(c.audit.deadline, Duration::from_millis(2500));
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

    #[test]
    fn cmdline_splitting_follows_the_kernel() {
        assert_eq!(
            split_cmdline("  a  b=\"c d\" \"e f\"\n"),
            vec!["a", "b=c d", "e f"]
        );
        assert_eq!(split_cmdline(""), Vec::<String>::new());
    }
}
