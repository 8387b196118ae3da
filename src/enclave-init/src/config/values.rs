//! Value checks more than one section uses: switches, peer addresses, TLS
//! names, pinned CAs and Vault paths.

use transport::Addr;

use super::fields::Fields;
use super::ConfigError;

/// A switch: `on` or `off`.
pub(super) fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("expected on or off".to_owned()),
    }
}

/// A peer address that may be left empty (the peer is then not used).
pub(super) fn optional_addr(fields: &Fields, name: &str) -> Result<Option<Addr>, ConfigError> {
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
pub(super) fn server_name(fields: &Fields, name: &str) -> Result<String, ConfigError> {
    fields.parsed(name, |s| {
        rustls::pki_types::ServerName::try_from(s.to_owned())
            .map(|_| s.to_owned())
            .map_err(|_| format!("{s:?} is not a DNS name or IP address"))
    })
}

/// The CA pinned for a peer: required (and checked) when the peer is used.
pub(super) fn pinned_ca(fields: &Fields, name: &str, used: bool) -> Result<String, ConfigError> {
    fields.parsed(name, |s| {
        if used {
            crate::attest::parse_ca(s)?;
        }
        Ok(s.to_owned())
    })
}

/// A Vault path or path segment: letters, digits, `- _ . /`, no `..`.
pub(super) fn vault_path(s: &str) -> Result<String, String> {
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
