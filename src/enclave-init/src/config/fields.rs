//! The field table and the values read against it.
//!
//! Each section module declares its fields (name, kind, default) in a
//! `FIELDS` table; [`super::SECTIONS`] lists those tables. This module turns
//! the file's nested tables into dotted names checked against them, applies
//! the command line's `enclave.*` overrides, fills in the defaults, and
//! hands the sections typed accessors ([`Fields`]) whose errors name the
//! field and where its value came from.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::{ConfigError, Origin, SECTIONS};

/// The kind of value a field holds, used to check the file and to convert
/// command-line strings.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Str,
    Int,
}

/// One field: its dotted name, its kind and its default (`None`: required).
pub(super) type Field = (&'static str, Kind, Option<&'static str>);

/// Every field of every section, in the order the sections are listed.
fn all() -> impl Iterator<Item = &'static Field> {
    SECTIONS.iter().flat_map(|section| section.iter())
}

/// The field values, each with its origin, keyed by dotted name.
pub(super) struct Fields(BTreeMap<String, (toml::Value, Origin)>);

impl Fields {
    /// The file's values, then the command line's overrides (a later one
    /// wins), then the defaults of every field still unset.
    pub(super) fn collect(
        table: &toml::Table,
        overrides: Vec<(String, String)>,
    ) -> Result<Fields, ConfigError> {
        let mut values = BTreeMap::new();
        flatten("", table, &mut values)?;
        for (key, raw) in overrides {
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
        for (name, _, default) in all() {
            if let (false, Some(d)) = (values.contains_key(*name), default) {
                let value = match kind_of(name) {
                    Some(Kind::Int) => toml::Value::Integer(d.parse().unwrap_or_default()),
                    _ => toml::Value::String((*d).to_owned()),
                };
                values.insert((*name).to_owned(), (value, Origin::Default));
            }
        }
        Ok(Fields(values))
    }

    /// A field's value and origin; a field with no value is missing.
    pub(super) fn get(&self, name: &str) -> Result<&(toml::Value, Origin), ConfigError> {
        self.0.get(name).ok_or_else(|| ConfigError::Field {
            field: name.to_owned(),
            origin: Origin::File,
            reason: "missing (this field has no default)".to_owned(),
        })
    }

    /// A string field, converted by `parse`; its refusal becomes the
    /// field's error.
    pub(super) fn parsed<T>(
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
    pub(super) fn integer(
        &self,
        name: &str,
        range: RangeInclusive<i64>,
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
    pub(super) fn count(
        &self,
        name: &str,
        range: RangeInclusive<i64>,
    ) -> Result<usize, ConfigError> {
        let n = self.integer(name, range)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// A duration given in milliseconds (ranges given are non-negative).
    pub(super) fn millis(
        &self,
        name: &str,
        range: RangeInclusive<i64>,
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
    all().any(|(f, _, _)| {
        f.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

fn kind_of(name: &str) -> Option<Kind> {
    all().find(|(f, _, _)| *f == name).map(|(_, k, _)| *k)
}

fn known_fields() -> String {
    all().map(|(f, _, _)| *f).collect::<Vec<_>>().join(", ")
}
