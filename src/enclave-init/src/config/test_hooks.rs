//! `[test]`: switches that exist for the test suites only.

use super::fields::{Field, Fields, Kind};
use super::ConfigError;

pub(super) const FIELDS: &[Field] = &[("test.secret_hash_query", Kind::Str, Some("off"))];

/// Whether the control channel answers `secret-hash`
/// (`test.secret_hash_query`). `on` is refused outside test-hooks builds:
/// a keyed-hash oracle lets whoever holds the host side test guesses, so
/// the measured image cannot even be configured to offer one.
pub(super) fn secret_hash_query(fields: &Fields) -> Result<bool, ConfigError> {
    fields.parsed("test.secret_hash_query", |s| match s {
        "on" if cfg!(feature = "test-hooks") => Ok(true),
        "on" => Err("the keyed secret-hash query exists only in test-hooks builds, never in the measured image".to_owned()),
        "off" => Ok(false),
        _ => Err("expected on or off".to_owned()),
    })
}
