//! Prometheus counters: appraisals by TEE and result, denials by check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// The verifier's counters.
#[derive(Default)]
pub struct Metrics {
    appraisals: Mutex<BTreeMap<(String, &'static str), u64>>,
    denials: Mutex<BTreeMap<String, u64>>,
    challenges: Mutex<u64>,
    shed: std::sync::atomic::AtomicU64,
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
        out
    }
}

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
}
