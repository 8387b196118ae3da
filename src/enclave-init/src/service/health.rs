//! `GET /health/enclave` and `GET /metrics`.

use serde_json::json;

use super::routes::Reply;
use super::Service;
use crate::state::Health;

/// The health document (the platform's shape: `status`, `enclave`,
/// `attestation`). 200 while serving; 503 once secrets are withdrawn, with
/// the reason, so a load balancer stops sending calls.
pub fn health(svc: &Service) -> Reply {
    let a = svc.shared.attestation();
    let now = svc.shared.time.now_secs();
    let secrets = svc.shared.secrets().len();
    let hardware = matches!(svc.shared.tee, "snp" | "tdx");
    let valid = a.attested && a.health == Health::Serving && a.expires_at > now;
    let (status, code, reason) = match &a.health {
        Health::Serving => ("healthy", 200, None),
        Health::Withdrawn(why) => ("degraded", 503, Some(why.clone())),
    };
    let doc = json!({
        "status": status,
        "reason": reason,
        "enclave": {
            "enclave_ready": a.health == Health::Serving,
            "enclave_mode": svc.shared.tee,
            "memory_encryption_active": hardware,
            "secrets_provisioned": secrets > 0,
            "secrets_count": secrets,
        },
        "attestation": {
            "valid": valid,
            // Rooted in a hardware vendor's chain (simulation never is).
            "trusted": valid && hardware,
            "expires_at": if a.attested { json!(iso8601(a.expires_at)) } else { json!(null) },
            "expires_in_s": a.expires_at.saturating_sub(now),
            "renewals": a.renewals,
        },
    });
    Reply::JsonStatus(code, doc)
}

/// The Prometheus document.
pub fn metrics(svc: &Service) -> String {
    let a = svc.shared.attestation();
    let now = svc.shared.time.now_secs();
    let valid = a.attested && a.health == Health::Serving && a.expires_at > now;
    let secrets = svc.shared.secrets().len();
    svc.shared.metrics.render(&[
        ("enclave_attestation_valid", "1 while the enclave is attested, its secrets held and the token unexpired.", if valid { 1.0 } else { 0.0 }),
        ("enclave_attestation_expires_in_seconds", "Seconds until the attestation token expires (verifier time).", a.expires_at.saturating_sub(now) as f64),
        ("enclave_vault_token_expires_in_seconds", "Seconds until the Vault token's lease ends (verifier time).", a.vault_expires_at.saturating_sub(now) as f64),
        ("enclave_secrets_provisioned", "Secrets held in the locked store.", secrets as f64),
    ])
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (proleptic Gregorian, UTC).
pub fn iso8601(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::iso8601;

    #[test]
    fn iso8601_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_795_999_999), "2026-11-30T00:53:19Z");
        assert_eq!(iso8601(4_107_542_400), "2100-03-01T00:00:00Z");
    }
}
