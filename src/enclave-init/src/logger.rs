//! Console logging: one structured line per event, `key=value` pairs
//! (logfmt), written with a single `write` so lines from different call sites
//! never interleave.
//!
//! Every line starts with the boot-clock time in seconds, so the boot log
//! doubles as the boot timer. Nothing secret is ever passed to a log macro:
//! secret types have no `Display`, and callers log lengths and names only.

use std::fmt::Write as _;
use std::io::Write as _;

use log::kv::{Key, Value, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};

/// Installs the console logger. Safe to call once; a second call is ignored.
pub fn init(level: LevelFilter) {
    static LOGGER: ConsoleLogger = ConsoleLogger;
    // An error means a logger is already installed (a second init), which is
    // harmless: keep the first.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

struct ConsoleLogger;

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(uptime_secs(), record);
        // Logging must never take the init down: a console that went away is
        // not a reason to stop serving.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Formats one record as `t=1.234567 level=info target=boot msg="…" k=v…\n`.
fn format_line(t: f64, record: &Record<'_>) -> String {
    let mut line = String::with_capacity(128);
    let target = record.target().strip_prefix("enclave_init::").unwrap_or(record.target());
    let _ = write!(
        line,
        "t={t:.6} level={} target={target} msg=",
        record.level().as_str().to_ascii_lowercase()
    );
    push_quoted(&mut line, &record.args().to_string());
    let mut pairs = Pairs(&mut line);
    let _ = record.key_values().visit(&mut pairs);
    line.push('\n');
    line
}

struct Pairs<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for Pairs<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let _ = write!(self.0, " {key}=");
        let text = value.to_string();
        if !text.is_empty() && text.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '=') {
            self.0.push_str(&text);
        } else {
            push_quoted(self.0, &text);
        }
        Ok(())
    }
}

/// Quotes a value so that the line stays one line and parseable.
fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Seconds since boot (CLOCK_BOOTTIME): the kernel's own clock, so console
/// lines line up with the kernel's `[   1.234]` timestamps.
pub fn uptime_secs() -> f64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME) {
        Ok(ts) => ts.tv_sec() as f64 + ts.tv_nsec() as f64 / 1e9,
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: std::fmt::Arguments<'_>, kvs: &[(&str, &str)]) -> String {
        let kvs: Vec<(&str, Value<'_>)> = kvs.iter().map(|(k, v)| (*k, Value::from(*v))).collect();
        let kvs = kvs.as_slice();
        let record = Record::builder()
            .args(args)
            .level(log::Level::Info)
            .target("enclave_init::boot")
            .key_values(&kvs)
            .build();
        format_line(1.5, &record)
    }

    #[test]
    fn one_line_per_event_with_pairs() {
        let l = line(format_args!("mounted"), &[("fs", "proc"), ("path", "/proc")]);
        assert_eq!(l, "t=1.500000 level=info target=boot msg=\"mounted\" fs=proc path=/proc\n");
    }

    #[test]
    fn newlines_and_quotes_cannot_break_the_line() {
        let l = line(format_args!("bad \"x\"\nsecond"), &[("why", "a b\nc")]);
        assert_eq!(l.matches('\n').count(), 1, "{l}");
        assert!(l.contains(r#"msg="bad \"x\"\nsecond""#), "{l}");
        assert!(l.contains(r#"why="a b\nc""#), "{l}");
    }
}
