//! The host tools' logger: one JSON object per record on stderr
//! (`{"ts","level","target","msg", key-values…}`), so that a log shipper
//! routes and parses lines without a grammar per message.
//!
//! The level comes from `--log-level`, else `RUST_LOG`, else `info`. Both
//! take `env_logger`'s plain forms: a level (`debug`), `target=level`
//! directives, or both, comma-separated (`warn,verifier=debug`); the
//! longest matching target prefix wins.
//!
//! Written here rather than taken from `env_logger`: its key-value support
//! is behind an unstable feature and its JSON would be a custom formatter
//! anyway; what is needed (filter, one `write` per line) is this file.
//!
//! A key-value named [`JSON_KEY`] whose value is a JSON object in a string
//! is emitted as that object, nested, not as an escaped string: that is how
//! the verifier's decision record (target `decision`) stays one object a
//! shipper can query.

use std::io::Write as _;

use log::{Level, LevelFilter, Log, Metadata, Record};
use serde_json::{Map, Value};

/// The key-value whose string value is a JSON object to nest as is.
pub const JSON_KEY: &str = "record";

/// The fields every line has; a key-value of the same name is renamed
/// `kv.<name>` so it cannot overwrite them.
const FIXED: [&str; 4] = ["ts", "level", "target", "msg"];

/// Level directives: a default, then `(target prefix, level)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    default: LevelFilter,
    targets: Vec<(String, LevelFilter)>,
}

impl Filter {
    /// Parses `level`, `target=level`, comma-separated. An empty spec is
    /// `info`.
    pub fn parse(spec: &str) -> Result<Filter, String> {
        let mut filter = Filter {
            default: LevelFilter::Info,
            targets: Vec::new(),
        };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((target, level)) => {
                    let level = parse_level(level)?;
                    filter.targets.push((target.trim().to_owned(), level));
                }
                None => filter.default = parse_level(part)?,
            }
        }
        // Longest prefix first, so the first match is the most specific.
        filter
            .targets
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        Ok(filter)
    }

    /// The level in force for `target`.
    pub fn level_for(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .find(|(prefix, _)| {
                target == prefix
                    || target
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with("::"))
            })
            .map_or(self.default, |(_, l)| *l)
    }

    /// The most verbose level any directive allows (`log::set_max_level`).
    pub fn max(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, Ord::max)
    }
}

fn parse_level(s: &str) -> Result<LevelFilter, String> {
    s.trim().parse::<LevelFilter>().map_err(|_| {
        format!("log level {s:?}: want off, error, warn, info, debug or trace (or target=level)")
    })
}

/// The filter from `--log-level`, else `RUST_LOG`, else `info`.
pub fn filter_from(cli: Option<&str>, env: Option<&str>) -> Result<Filter, String> {
    match (cli, env) {
        (Some(spec), _) => Filter::parse(spec).map_err(|e| format!("--log-level: {e}")),
        (None, Some(spec)) => Filter::parse(spec).map_err(|e| format!("RUST_LOG: {e}")),
        (None, None) => Filter::parse(""),
    }
}

struct JsonLogger {
    filter: Filter,
}

impl Log for JsonLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.filter.level_for(metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = format_record(record, now_millis());
        line.push('\n');
        // One write per line: lines of concurrent threads do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs the logger (once per process; a second call is an error).
pub fn install(filter: Filter) -> Result<(), String> {
    let max = filter.max();
    // Leaked: the logger lives as long as the process (`log` keeps a
    // `&'static`; its `std` feature would only wrap this same leak).
    let logger: &'static JsonLogger = Box::leak(Box::new(JsonLogger { filter }));
    log::set_logger(logger).map_err(|e| format!("logger: {e}"))?;
    log::set_max_level(max);
    Ok(())
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The JSON line of `record` at `ts_millis` (no newline).
pub fn format_record(record: &Record<'_>, ts_millis: i64) -> String {
    let mut obj = Map::new();
    let secs = ts_millis.div_euclid(1000);
    let millis = ts_millis.rem_euclid(1000);
    // `wire::time::rfc3339` ends in `Z`: the milliseconds go before it.
    let ts = wire::time::rfc3339(secs);
    let ts = match ts.strip_suffix('Z') {
        Some(base) => format!("{base}.{millis:03}Z"),
        None => ts,
    };
    obj.insert("ts".into(), Value::String(ts));
    obj.insert("level".into(), Value::String(level_name(record.level())));
    obj.insert("target".into(), Value::String(record.target().to_owned()));
    obj.insert("msg".into(), Value::String(record.args().to_string()));
    let mut visitor = Collect(&mut obj);
    let _ = record.key_values().visit(&mut visitor);
    Value::Object(obj).to_string()
}

fn level_name(l: Level) -> String {
    l.as_str().to_ascii_lowercase()
}

struct Collect<'a>(&'a mut Map<String, Value>);

impl<'kvs> log::kv::VisitSource<'kvs> for Collect<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let key = key.as_str();
        let value = to_json(key, &value);
        let name = if FIXED.contains(&key) {
            format!("kv.{key}")
        } else {
            key.to_owned()
        };
        self.0.insert(name, value);
        Ok(())
    }
}

fn to_json(key: &str, v: &log::kv::Value<'_>) -> Value {
    if let Some(b) = v.to_bool() {
        return Value::Bool(b);
    }
    if let Some(n) = v.to_u64() {
        return Value::from(n);
    }
    if let Some(n) = v.to_i64() {
        return Value::from(n);
    }
    if let Some(f) = v.to_f64() {
        return Value::from(f);
    }
    let text = match v.to_borrowed_str() {
        Some(s) => s.to_owned(),
        None => v.to_string(),
    };
    if key == JSON_KEY {
        if let Ok(obj @ Value::Object(_)) = serde_json::from_str::<Value>(&text) {
            return obj;
        }
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: Level, target: &str, record_kvs: &[(&str, &str)]) -> Value {
        let kvs: Vec<(&str, log::kv::Value<'_>)> = record_kvs
            .iter()
            .map(|(k, v)| (*k, log::kv::Value::from(*v)))
            .collect();
        let text = format_record(
            &Record::builder()
                .level(level)
                .target(target)
                .args(format_args!("attestation denied"))
                .key_values(&kvs.as_slice())
                .build(),
            1_800_000_000_123,
        );
        assert!(!text.contains('\n'));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn a_record_is_one_json_object_with_its_key_values() {
        let v = line(
            Level::Warn,
            "verifier::service",
            &[("check", "snp.measurement"), ("target", "10.0.0.1:443")],
        );
        assert_eq!(v["ts"], "2027-01-15T08:00:00.123Z");
        assert_eq!(v["level"], "warn");
        assert_eq!(v["target"], "verifier::service");
        assert_eq!(v["msg"], "attestation denied");
        assert_eq!(v["check"], "snp.measurement");
        // A key-value named like a fixed field does not overwrite it.
        assert_eq!(v["kv.target"], "10.0.0.1:443");
    }

    #[test]
    fn the_record_key_nests_a_json_object_and_nothing_else() {
        let v = line(
            Level::Info,
            "decision",
            &[(JSON_KEY, r#"{"decision":"denied","checks":[]}"#)],
        );
        assert_eq!(v["record"]["decision"], "denied");
        let v = line(Level::Info, "decision", &[(JSON_KEY, "not json")]);
        assert_eq!(v["record"], "not json");
        let v = line(Level::Info, "x", &[("other", r#"{"a":1}"#)]);
        assert_eq!(v["other"], r#"{"a":1}"#);
    }

    #[test]
    fn directives_pick_the_longest_target_prefix() {
        let f = Filter::parse("warn,verifier=debug,verifier::service=error").unwrap();
        assert_eq!(f.level_for("proxy"), LevelFilter::Warn);
        assert_eq!(f.level_for("verifier"), LevelFilter::Debug);
        assert_eq!(f.level_for("verifier::metrics"), LevelFilter::Debug);
        assert_eq!(f.level_for("verifier::service"), LevelFilter::Error);
        // A prefix matches whole path segments only.
        assert_eq!(f.level_for("verifierx"), LevelFilter::Warn);
        assert_eq!(f.max(), LevelFilter::Debug);
        assert_eq!(Filter::parse("").unwrap().level_for("a"), LevelFilter::Info);
        assert_eq!(
            Filter::parse("TRACE").unwrap().level_for("a"),
            LevelFilter::Trace
        );
    }

    #[test]
    fn the_flag_wins_over_rust_log_and_bad_levels_are_refused() {
        let f = filter_from(Some("error"), Some("debug")).unwrap();
        assert_eq!(f.level_for("a"), LevelFilter::Error);
        let f = filter_from(None, Some("debug")).unwrap();
        assert_eq!(f.level_for("a"), LevelFilter::Debug);
        assert_eq!(
            filter_from(None, None).unwrap().level_for("a"),
            LevelFilter::Info
        );
        let e = filter_from(Some("loud"), None).unwrap_err();
        assert!(e.starts_with("--log-level: log level \"loud\""), "{e}");
        let e = filter_from(None, Some("a=loud")).unwrap_err();
        assert!(e.starts_with("RUST_LOG: "), "{e}");
    }
}
