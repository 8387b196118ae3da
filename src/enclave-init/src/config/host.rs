//! `[host]`: the host channel (readiness report and control commands).

use std::time::Duration;

use transport::Addr;

use super::fields::{Field, Fields, Kind};
use super::ConfigError;

pub(super) const FIELDS: &[Field] = &[
    ("host.ready", Kind::Str, None),
    ("host.control", Kind::Str, None),
    ("host.connect_timeout_ms", Kind::Int, Some("30000")),
    ("host.io_timeout_ms", Kind::Int, Some("5000")),
];

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

pub(super) fn parse(fields: &Fields) -> Result<HostConfig, ConfigError> {
    Ok(HostConfig {
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
    })
}
