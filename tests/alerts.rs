//! Every metric an alert rule watches is one a running verifier exports, so
//! an alert cannot silently watch a metric that does not exist (a renamed
//! counter would otherwise leave its alert quiet forever). The rules
//! themselves are checked and unit-tested by promtool in `scripts/test`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use enclave_tests::stack::{sim_policy, Pki, Verifier};
use enclave_tests::{repo_root, TempDir};

const RULES: &str = "kata-config/alerts/enclave-attestation.rules.yaml";

/// The metric names in the rules' `expr:` values: identifiers starting
/// `enclave_` (label names and functions never do).
fn rule_metrics(rules: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in rules.lines() {
        let Some(expr) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let mut rest = expr;
        while let Some(i) = rest.find("enclave_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names
}

/// The metric families a scrape declares (`# TYPE name kind`).
fn exported(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn scrape(pki: &Pki, port: u16) -> String {
    let config = enclave_tests::attest_client::client_config(&pki.ca_pem());
    let name = rustls::pki_types::ServerName::try_from("verifier.enclave.local").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = std::io::BufReader::new(rustls::StreamOwned::new(
        conn,
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap(),
    ));
    bounded_http::write_request(
        tls.get_mut(),
        "GET",
        "verifier.enclave.local",
        "/metrics",
        &[],
        b"",
    )
    .unwrap();
    let r = bounded_http::read_response(&mut tls, bounded_http::Limits::default()).unwrap();
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).unwrap()
}

#[test]
fn every_metric_an_alert_watches_is_exported_by_the_verifier() {
    let rules = std::fs::read_to_string(repo_root().join(RULES)).unwrap();
    let used = rule_metrics(&rules);
    // The extraction found the rules' metrics (or checking them proves nothing).
    for name in [
        "enclave_verifier_appraisals_total",
        "enclave_verifier_collateral_expiry_seconds",
        "enclave_verifier_platforms",
        "enclave_verifier_deadline_kills_total",
    ] {
        assert!(used.contains(name), "{name} not found in {RULES}: {used:?}");
    }

    let dir = TempDir::new("alerts");
    let pki = Pki::new();
    let policy = sim_policy(&"ab".repeat(32), &[&"00".repeat(48)]);
    let verifier = Verifier::start(&pki, &policy, dir.path(), &[]);
    let families = exported(&scrape(&pki, verifier.port));
    assert!(families.contains("enclave_verifier_challenges_total"));

    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !families.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "alert rules watch metrics the verifier does not export: {missing:?}"
    );
}
