//! Prometheus counters: appraisals by TEE and result, denials by check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// The verifier's counters.
#[derive(Default)]
pub struct Metrics {
    appraisals: Mutex<BTreeMap<(String, &'static str), u64>>,
    denials: Mutex<BTreeMap<String, u64>>,
    challenges: Mutex<u64>,
    shed: std::sync::atomic::AtomicU64,
    /// Connection-level load (issue 18 item 1): one block.
    pub load: LoadMetrics,
    // ---- decisions (issue 18 item 4): appraisal durations ----------------
    durations: Mutex<BTreeMap<String, Histogram>>,
    /// The audit shipper's counters (issue 19), shared with its thread.
    pub audit: std::sync::Arc<crate::audit::AuditCounters>,
}

/// Upper bounds of the appraisal duration buckets, seconds: a warm SEV-SNP
/// appraisal takes about a millisecond, a cold one with a KDS fetch up to
/// the fetch deadline.
const DURATION_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum_ms: u64,
}

impl Metrics {
    /// Counts a challenge.
    pub fn challenge(&self) {
        *self.challenges.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    /// Counts a connection shed at the connection limit.
    pub fn shed(&self) {
        self.shed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts an appraisal outcome; `denied_check` is the first failed check.
    pub fn appraisal(&self, tee: &str, denied_check: Option<&str>) {
        let result = if denied_check.is_some() {
            "denied"
        } else {
            "accepted"
        };
        *self
            .appraisals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((tee.to_owned(), result))
            .or_default() += 1;
        if let Some(check) = denied_check {
            *self
                .denials
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(check.to_owned())
                .or_default() += 1;
        }
    }

    /// Counts a decision's duration (accepted or denied).
    pub fn decided(&self, d: &crate::decision::Decision) {
        let mut map = self.durations.lock().unwrap_or_else(|p| p.into_inner());
        let h = map.entry(d.tee.clone()).or_default();
        // Milliseconds as an exact float: at most 2^53 of them.
        let secs = Duration::from_millis(d.duration_ms).as_secs_f64();
        for (slot, le) in h.counts.iter_mut().zip(DURATION_BUCKETS) {
            if secs <= le {
                *slot += 1;
            }
        }
        h.count += 1;
        h.sum_ms = h.sum_ms.saturating_add(d.duration_ms);
    }

    fn render_durations(&self, out: &mut String) {
        out.push_str("# HELP enclave_verifier_appraisal_duration_seconds Time from an attest request to its decision, by TEE type.\n# TYPE enclave_verifier_appraisal_duration_seconds histogram\n");
        for (tee, h) in self
            .durations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let tee = escape(tee);
            for (n, le) in h.counts.iter().zip(DURATION_BUCKETS) {
                let _ = writeln!(
                    out,
                    "enclave_verifier_appraisal_duration_seconds_bucket{{tee=\"{tee}\",le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "enclave_verifier_appraisal_duration_seconds_bucket{{tee=\"{tee}\",le=\"+Inf\"}} {}\nenclave_verifier_appraisal_duration_seconds_sum{{tee=\"{tee}\"}} {}\nenclave_verifier_appraisal_duration_seconds_count{{tee=\"{tee}\"}} {}",
                h.count,
                Duration::from_millis(h.sum_ms).as_secs_f64(),
                h.count
            );
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP enclave_verifier_challenges_total Nonces issued.\n# TYPE enclave_verifier_challenges_total counter\n");
        let _ = writeln!(
            out,
            "enclave_verifier_challenges_total {}",
            *self.challenges.lock().unwrap_or_else(|p| p.into_inner())
        );
        out.push_str("# HELP enclave_verifier_shed_connections_total Connections over the connection limit, answered 503 with Retry-After or closed.\n# TYPE enclave_verifier_shed_connections_total counter\n");
        let _ = writeln!(
            out,
            "enclave_verifier_shed_connections_total {}",
            self.shed.load(std::sync::atomic::Ordering::Relaxed)
        );
        self.load.render(&mut out);
        out.push_str("# HELP enclave_verifier_appraisals_total Appraisals by TEE type and result.\n# TYPE enclave_verifier_appraisals_total counter\n");
        for ((tee, result), n) in self
            .appraisals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "enclave_verifier_appraisals_total{{tee=\"{}\",result=\"{result}\"}} {n}",
                escape(tee)
            );
        }
        out.push_str("# HELP enclave_verifier_denials_total Denials by the first failed check.\n# TYPE enclave_verifier_denials_total counter\n");
        for (check, n) in self
            .denials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "enclave_verifier_denials_total{{check=\"{}\"}} {n}",
                escape(check)
            );
        }
        self.render_durations(&mut out);
        let a = &self.audit;
        let ld = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP enclave_verifier_audit_dropped_total Decisions not recorded in the audit trail because its queue was full (the collector slow or away).\n# TYPE enclave_verifier_audit_dropped_total counter\nenclave_verifier_audit_dropped_total {}\n\
             # HELP enclave_verifier_audit_acked_total Decision records the audit collector acknowledged.\n# TYPE enclave_verifier_audit_acked_total counter\nenclave_verifier_audit_acked_total {}\n\
             # HELP enclave_verifier_audit_unrecordable_total Decisions that could not become an audit record.\n# TYPE enclave_verifier_audit_unrecordable_total counter\nenclave_verifier_audit_unrecordable_total {}\n",
            ld(&a.dropped),
            ld(&a.acked),
            ld(&a.unrecordable)
        );
        out
    }
}

// --- Connection load: deadline kills, connections in flight, queue. ---

/// Counters and gauges of connection handling: how many connections were
/// cut by a deadline (by phase), how many are being served, how many wait
/// for a worker.
#[derive(Default)]
pub struct LoadMetrics {
    /// Kills by phase: handshake, idle, request.
    kills: [std::sync::atomic::AtomicU64; 3],
    in_flight: std::sync::atomic::AtomicU64,
    queue_waiting: std::sync::atomic::AtomicU64,
}

impl LoadMetrics {
    /// Counts a connection cut by a deadline (or shed as too slow) in `phase`.
    pub fn deadline_kill(&self, phase: crate::deadline::Phase) {
        use crate::deadline::Phase;
        let i = match phase {
            Phase::Handshake => 0,
            Phase::Idle => 1,
            Phase::Request => 2,
        };
        self.kills[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets the gauges: connections served now, connections waiting.
    pub fn set_load(&self, in_flight: usize, waiting: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.in_flight.store(in_flight as u64, Relaxed);
        self.queue_waiting.store(waiting as u64, Relaxed);
    }

    fn render(&self, out: &mut String) {
        use std::sync::atomic::Ordering::Relaxed;
        out.push_str("# HELP enclave_verifier_deadline_kills_total Connections cut because a phase (handshake, idle wait for a request, request) passed its deadline or crawled while others waited. Idle ones are routine keep-alive ends.\n# TYPE enclave_verifier_deadline_kills_total counter\n");
        for (phase, n) in ["handshake", "idle", "request"].iter().zip(&self.kills) {
            let _ = writeln!(
                out,
                "enclave_verifier_deadline_kills_total{{phase=\"{phase}\"}} {}",
                n.load(Relaxed)
            );
        }
        out.push_str("# HELP enclave_verifier_connections_in_flight Connections a worker is serving.\n# TYPE enclave_verifier_connections_in_flight gauge\n");
        let _ = writeln!(
            out,
            "enclave_verifier_connections_in_flight {}",
            self.in_flight.load(Relaxed)
        );
        out.push_str("# HELP enclave_verifier_queue_waiting Connections accepted and waiting for a worker.\n# TYPE enclave_verifier_queue_waiting gauge\n");
        let _ = writeln!(
            out,
            "enclave_verifier_queue_waiting {}",
            self.queue_waiting.load(Relaxed)
        );
    }
}

// --- end of connection load ---

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_counters() {
        let m = super::Metrics::default();
        m.challenge();
        m.appraisal("sim", None);
        m.appraisal("snp", Some("snp.measurement"));
        let text = m.render();
        assert!(text.contains("enclave_verifier_challenges_total 1\n"));
        assert!(
            text.contains("enclave_verifier_appraisals_total{tee=\"sim\",result=\"accepted\"} 1\n")
        );
        assert!(
            text.contains("enclave_verifier_appraisals_total{tee=\"snp\",result=\"denied\"} 1\n")
        );
        assert!(text.contains("enclave_verifier_denials_total{check=\"snp.measurement\"} 1\n"));
    }

    #[test]
    fn renders_the_load_block() {
        let m = super::Metrics::default();
        m.load.deadline_kill(crate::deadline::Phase::Request);
        m.load.deadline_kill(crate::deadline::Phase::Request);
        m.load.deadline_kill(crate::deadline::Phase::Handshake);
        m.load.set_load(5, 3);
        let text = m.render();
        assert!(text.contains("enclave_verifier_deadline_kills_total{phase=\"request\"} 2\n"));
        assert!(text.contains("enclave_verifier_deadline_kills_total{phase=\"handshake\"} 1\n"));
        assert!(text.contains("enclave_verifier_deadline_kills_total{phase=\"idle\"} 0\n"));
        assert!(text.contains("enclave_verifier_connections_in_flight 5\n"));
        assert!(text.contains("enclave_verifier_queue_waiting 3\n"));
    }

    #[test]
    fn durations_fill_cumulative_buckets() {
        use crate::decision::{Decision, PolicyRef};
        let m = super::Metrics::default();
        for ms in [2, 40] {
            let mut d = Decision::start("id".into(), "sim", PolicyRef::default());
            d.duration_ms = ms;
            m.decided(&d);
        }
        let text = m.render();
        for (le, n) in [
            ("0.001", 0),
            ("0.0025", 1),
            ("0.025", 1),
            ("0.05", 2),
            ("+Inf", 2),
        ] {
            let line = format!(
                "enclave_verifier_appraisal_duration_seconds_bucket{{tee=\"sim\",le=\"{le}\"}} {n}\n"
            );
            assert!(text.contains(&line), "{line} not in {text}");
        }
        assert!(
            text.contains("enclave_verifier_appraisal_duration_seconds_sum{tee=\"sim\"} 0.042\n")
        );
        assert!(text.contains("enclave_verifier_appraisal_duration_seconds_count{tee=\"sim\"} 2\n"));
    }
}
