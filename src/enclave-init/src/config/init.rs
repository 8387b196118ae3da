//! The init's own settings: `[log]` and `[boot]`.

use std::time::Duration;

use log::LevelFilter;

use super::fields::{Field, Fields, Kind};
use super::values::on_off;
use super::ConfigError;

pub(super) const FIELDS: &[Field] = &[
    ("log.level", Kind::Str, Some("info")),
    ("boot.entropy_timeout_ms", Kind::Int, Some("30000")),
    ("boot.require_sandbox", Kind::Str, Some("on")),
];

/// Most verbose level written to the console (`log.level`).
pub(super) fn log_level(fields: &Fields) -> Result<LevelFilter, ConfigError> {
    fields.parsed("log.level", |s| match s {
        "off" => Ok(LevelFilter::Off),
        "error" => Ok(LevelFilter::Error),
        "warn" => Ok(LevelFilter::Warn),
        "info" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        _ => Err("expected one of off, error, warn, info, debug, trace".to_owned()),
    })
}

/// How long to wait for the kernel's random generator
/// (`boot.entropy_timeout_ms`).
pub(super) fn entropy_timeout(fields: &Fields) -> Result<Duration, ConfigError> {
    fields.millis("boot.entropy_timeout_ms", 1..=600_000)
}

/// Whether boot fails without the no-write sandbox (`boot.require_sandbox`).
pub(super) fn require_sandbox(fields: &Fields) -> Result<bool, ConfigError> {
    fields.parsed("boot.require_sandbox", on_off)
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::config::testing::{field_error, GOOD};

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
}
