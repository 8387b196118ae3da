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
            "expires_at": if a.attested { json!(wire::time::rfc3339(i64::try_from(a.expires_at).unwrap_or(i64::MAX))) } else { json!(null) },
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
