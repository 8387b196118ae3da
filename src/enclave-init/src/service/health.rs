//! `GET /health/enclave` and `GET /metrics`.

use std::fmt::Write as _;

use serde_json::json;

use super::routes::Reply;
use super::Service;
use crate::lifecycle::machine::Phase;

/// The health document (the platform's shape: `status`, `enclave`,
/// `attestation`, plus `lifecycle` and `clock`). 200 while secrets are
/// readable; 503 otherwise, with the reason, so a load balancer stops
/// sending calls.
pub fn health(svc: &Service) -> Reply {
    let l = &svc.shared;
    let s = l.snapshot();
    let tee = l.tee();
    let hardware = matches!(tee, "snp" | "tdx" | "nitro" | "azure-snp" | "azure-tdx");
    let audit = l.audit().map(|a| a.status());
    let audit_refusal = audit.as_ref().and_then(|a| a.refusing.clone());
    let (status, code, reason) = match (&s.withdrawn, s.trusted) {
        // Attested, but calls stop while a required audit trail is stalled.
        (_, true) if audit_refusal.is_some() => ("degraded", 503, audit_refusal),
        (_, true) => ("healthy", 200, None),
        (Some((_, why)), false) => ("degraded", 503, Some(why.clone())),
        (None, false) => (
            "degraded",
            503,
            Some(format!("not attested ({})", s.phase.as_str())),
        ),
    };
    let doc = json!({
        "status": status,
        "reason": reason,
        "enclave": {
            "enclave_ready": s.trusted,
            "enclave_mode": tee,
            "memory_encryption_active": hardware,
            "secrets_provisioned": s.secrets > 0,
            "secrets_count": s.secrets,
        },
        "attestation": {
            "valid": s.trusted,
            // Rooted in a hardware vendor's chain (simulation never is).
            "trusted": s.trusted && hardware,
            "expires_at": s.expires_at.map(|t| wire::time::rfc3339(i64::try_from(t).unwrap_or(i64::MAX))),
            "expires_in_s": s.expires_in.as_secs_f64(),
            "renewals": s.renewals,
        },
        "lifecycle": crate::lifecycle::snapshot_json(&s),
        // The audit trail: queue, acknowledgements, drops (null: none).
        "audit": audit.as_ref().map(crate::audit::status_json),
        // What confines this process now, read from the kernel
        // (/proc/self/status) at each request, Landlock from boot.
        "sandbox": crate::pid1::sandbox::state(),
        "clock": {
            "clocksource": l.clocksource,
            "drift_ms": s.drift_ms,
            // Without SecureTSC (SNP) or the TDX TSC the host can stop or
            // slow the guest's clock between two renewals (README).
            "trusted_timer": false,
        },
    });
    Reply::JsonStatus(code, doc)
}

/// The Prometheus document.
pub fn metrics(svc: &Service) -> String {
    let l = &svc.shared;
    let s = l.snapshot();
    let sandbox = crate::pid1::sandbox::state();
    let sb = |f: fn(&crate::pid1::sandbox::State) -> f64| sandbox.as_ref().map_or(0.0, f);
    let a = l.audit().map(|a| a.status());
    let av = |f: fn(&crate::audit::Status) -> f64| a.as_ref().map_or(0.0, f);
    let mut out = l.metrics.render(&[
        (
            "enclave_audit_queue_depth",
            "Audit records waiting for the collector's acknowledgement.",
            av(|a| a.depth as f64),
        ),
        (
            "enclave_audit_dropped_total",
            "Audit records dropped (queue full); each leaves a gap in the chain.",
            av(|a| a.dropped as f64),
        ),
        (
            "enclave_audit_acknowledged_total",
            "Audit records the collector acknowledged as stored.",
            av(|a| a.acked as f64),
        ),
        (
            "enclave_audit_last_ack_age_seconds",
            "Seconds since the collector's last acknowledgement (0: none yet).",
            av(|a| a.last_ack_age_ms.map_or(0.0, |ms| ms as f64 / 1000.0)),
        ),
        (
            "enclave_audit_refusing_calls",
            "1 while calls are refused because the required audit trail is stalled.",
            av(|a| f64::from(u8::from(a.refusing.is_some()))),
        ),
        (
            "enclave_attestation_valid",
            "1 while the enclave's secrets are readable (attested, before the trust deadline).",
            if s.trusted { 1.0 } else { 0.0 },
        ),
        (
            "enclave_attestation_expires_in_seconds",
            "Seconds until the trust deadline: min(token, Vault lease), monotonic.",
            s.expires_in.as_secs_f64(),
        ),
        (
            "enclave_secrets_provisioned",
            "Secrets held in the locked store.",
            s.secrets as f64,
        ),
        (
            "enclave_renewals_total",
            "Successful re-attestations since boot.",
            s.renewals as f64,
        ),
        (
            "enclave_withdrawals_total",
            "Times the secrets were withdrawn since boot.",
            s.withdrawals as f64,
        ),
        (
            "enclave_clock_drift_milliseconds",
            "Verifier time minus the guest's estimate at the last renewal.",
            s.drift_ms.map_or(0.0, |d| d as f64),
        ),
        (
            "enclave_log_lines_dropped_total",
            "Console lines dropped because the console was not drained.",
            crate::logger::dropped() as f64,
        ),
        (
            "enclave_log_lines_suppressed_total",
            "Console lines suppressed by per-site rate limits.",
            crate::logger::suppressed() as f64,
        ),
        (
            "enclave_sandbox_landlock_abi",
            "The Landlock ABI enforced since boot (0: none).",
            sb(|s| s.landlock_abi.map_or(0.0, f64::from)),
        ),
        (
            "enclave_sandbox_no_new_privs",
            "1 when no_new_privs is set.",
            sb(|s| f64::from(u8::from(s.no_new_privs))),
        ),
        (
            "enclave_sandbox_seccomp",
            "1 when the seccomp allow-list is installed.",
            sb(|s| f64::from(u8::from(s.seccomp))),
        ),
        (
            "enclave_sandbox_capabilities",
            "Effective capabilities left to the init.",
            sb(|s| s.capabilities.len() as f64),
        ),
        (
            "enclave_log_queue_bytes",
            "Bytes waiting for the console (stays up while the console is not read).",
            crate::logger::queued_bytes() as f64,
        ),
    ]);
    let _ = write!(out, "# HELP enclave_lifecycle_phase The lifecycle's phase (1 for the current one).\n# TYPE enclave_lifecycle_phase gauge\n");
    for p in Phase::ALL {
        let _ = writeln!(
            out,
            "enclave_lifecycle_phase{{phase=\"{}\"}} {}",
            p.as_str(),
            u8::from(p == s.phase)
        );
    }
    out
}
