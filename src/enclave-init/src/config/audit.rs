//! `[audit]`: where the audit trail's records go, and what happens when
//! they cannot; and the rule tying the trail to the verifier.

use std::time::Duration;

use transport::Addr;

use super::fields::{Field, Fields, Kind};
use super::values::{on_off, optional_addr};
use super::{Config, ConfigError, Origin};

pub(super) const FIELDS: &[Field] = &[
    ("audit.collector", Kind::Str, Some("")),
    ("audit.required", Kind::Str, Some("off")),
    ("audit.queue", Kind::Int, Some("1024")),
    ("audit.deadline_ms", Kind::Int, Some("10000")),
    ("audit.timeout_ms", Kind::Int, Some("5000")),
];

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

/// The trail's fields; a required trail needs a collector.
pub(super) fn parse(fields: &Fields) -> Result<AuditConfig, ConfigError> {
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
pub(super) fn check(config: &Config) -> Result<(), ConfigError> {
    if config.audit.collector.is_some() && config.verifier.addr.is_none() {
        return Err(ConfigError::Field {
            field: "audit.collector".into(),
            origin: Origin::File,
            reason: "the audit trail is signed by the attested enclave key: it needs a verifier (verifier.addr)".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use transport::Addr;

    use super::AuditConfig;
    use crate::config::parse;
    use crate::config::testing::{field_error, GOOD};
    use crate::config::Origin;

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
}
