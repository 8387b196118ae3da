//! Counters for `GET /metrics` (Prometheus text format 0.0.4).
//!
//! Labels come from fixed sets only (agent types, error codes, attestation
//! failure classes): never from request data, so no personal data can
//! reach a label and the series count stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the call latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The service's counters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    attestation_attempts: u64,
    attestation_failures: BTreeMap<&'static str, u64>,
    calls: BTreeMap<&'static str, u64>,
    calls_failed: BTreeMap<(&'static str, &'static str), u64>,
    retell_events: BTreeMap<&'static str, u64>,
    retell_refused: BTreeMap<&'static str, u64>,
    responses: BTreeMap<u16, u64>,
    busy: u64,
    unauthenticated: u64,
    latency_buckets: [u64; LATENCY_BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// An attestation was attempted (boot or renewal).
    pub fn attestation_attempt(&self) {
        self.with(|m| m.attestation_attempts += 1);
    }

    /// An attestation failed; `reason` is a fixed class.
    pub fn attestation_failure(&self, reason: &'static str) {
        self.with(|m| *m.attestation_failures.entry(reason).or_default() += 1);
    }

    /// A call was processed.
    pub fn call_ok(&self, agent: &'static str, took: Duration) {
        self.with(|m| {
            *m.calls.entry(agent).or_default() += 1;
            let secs = took.as_secs_f64();
            for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
                if secs <= *le {
                    if let Some(b) = m.latency_buckets.get_mut(i) {
                        *b += 1;
                    }
                }
            }
            m.latency_count += 1;
            m.latency_sum += secs;
        });
    }

    /// A call failed with error `code` (`unknown` agent before the metadata
    /// was understood).
    pub fn call_failed(&self, agent: &'static str, code: &'static str) {
        self.with(|m| *m.calls_failed.entry((agent, code)).or_default() += 1);
    }

    /// A Retell event was accepted.
    pub fn retell_event(&self, event: &'static str) {
        self.with(|m| *m.retell_events.entry(event).or_default() += 1);
    }

    /// A Retell delivery was refused with `code`.
    pub fn retell_refused(&self, code: &'static str) {
        self.with(|m| *m.retell_refused.entry(code).or_default() += 1);
    }

    /// A response was sent.
    pub fn response(&self, status: u16) {
        self.with(|m| *m.responses.entry(status).or_default() += 1);
    }

    /// A connection was turned away because every worker was busy.
    pub fn busy(&self) {
        self.with(|m| m.busy += 1);
    }

    /// A request to a route that needs a client certificate came without one.
    pub fn unauthenticated(&self) {
        self.with(|m| m.unauthenticated += 1);
    }

    /// The Prometheus text; `gauges` are computed by the caller at scrape
    /// time (name, help, value).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(4096);
        for (name, help, value) in gauges {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
            );
        }
        let _ = write!(
            out,
            "# HELP enclave_attestation_attempts_total Attestations attempted (boot and renewals).\n\
             # TYPE enclave_attestation_attempts_total counter\nenclave_attestation_attempts_total {}\n",
            m.attestation_attempts
        );
        counter(
            &mut out,
            "enclave_attestation_failures_total",
            "Attestations failed, by reason.",
            "reason",
            &m.attestation_failures,
        );
        counter(
            &mut out,
            "enclave_calls_processed_total",
            "Calls processed, by agent type.",
            "agent_type",
            &m.calls,
        );
        let _ = write!(out, "# HELP enclave_calls_failed_total Calls refused or failed, by agent type and error code.\n# TYPE enclave_calls_failed_total counter\n");
        for ((agent, code), n) in &m.calls_failed {
            let _ = writeln!(
                out,
                "enclave_calls_failed_total{{agent_type=\"{agent}\",code=\"{code}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "enclave_retell_events_total",
            "Retell webhook events accepted, by event.",
            "event",
            &m.retell_events,
        );
        counter(
            &mut out,
            "enclave_retell_refused_total",
            "Retell webhook deliveries refused, by code.",
            "code",
            &m.retell_refused,
        );
        let statuses: BTreeMap<String, u64> = m
            .responses
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let _ = write!(out, "# HELP enclave_http_responses_total HTTP responses, by status.\n# TYPE enclave_http_responses_total counter\n");
        for (status, n) in &statuses {
            let _ = writeln!(
                out,
                "enclave_http_responses_total{{status=\"{status}\"}} {n}"
            );
        }
        let _ = write!(
            out,
            "# HELP enclave_http_busy_total Connections answered 503 because every worker was busy.\n\
             # TYPE enclave_http_busy_total counter\nenclave_http_busy_total {}\n",
            m.busy
        );
        let _ = write!(
            out,
            "# HELP enclave_http_unauthenticated_total Requests refused 401 for want of a platform client certificate.\n\
             # TYPE enclave_http_unauthenticated_total counter\nenclave_http_unauthenticated_total {}\n",
            m.unauthenticated
        );
        let _ = write!(
            out,
            "# HELP enclave_call_duration_seconds Time to process a call, request read to response ready.\n\
             # TYPE enclave_call_duration_seconds histogram\n"
        );
        for (le, n) in LATENCY_BUCKETS.iter().zip(m.latency_buckets.iter()) {
            let _ = writeln!(
                out,
                "enclave_call_duration_seconds_bucket{{le=\"{le}\"}} {n}"
            );
        }
        let _ = write!(
            out,
            "enclave_call_duration_seconds_bucket{{le=\"+Inf\"}} {c}\nenclave_call_duration_seconds_sum {}\nenclave_call_duration_seconds_count {c}\n",
            m.latency_sum,
            c = m.latency_count
        );
        out
    }
}

fn counter<K: std::fmt::Display>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: &BTreeMap<K, u64>,
) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n");
    for (k, n) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{k}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.attestation_attempt();
        m.attestation_failure("denied");
        m.call_ok("sara", Duration::from_millis(30));
        m.call_failed("unknown", "metadata.bad_json");
        m.response(200);
        let text = m.render(&[(
            "enclave_attestation_valid",
            "1 if attested and not expired.",
            1.0,
        )]);
        assert!(text.contains("enclave_attestation_valid 1\n"));
        assert!(text.contains("enclave_attestation_failures_total{reason=\"denied\"} 1\n"));
        assert!(text.contains("enclave_calls_processed_total{agent_type=\"sara\"} 1\n"));
        assert!(text.contains(
            "enclave_calls_failed_total{agent_type=\"unknown\",code=\"metadata.bad_json\"} 1\n"
        ));
        assert!(text.contains("enclave_call_duration_seconds_bucket{le=\"0.025\"} 0\n"));
        assert!(text.contains("enclave_call_duration_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("enclave_call_duration_seconds_count 1\n"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
