//! The heart of the mission, end to end on loopback with real parts: the
//! guest (process mode) proves itself with the simulated PSP to the real
//! verifier, logs in to a real OpenBao through its JWT auth method, and holds
//! the secrets; every denial path is exercised.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use enclave_tests::process::{boot, Boot, Guest};
use enclave_tests::stack::{guest_config, sim_policy, OpenBao, Pki, SimPsp, Verifier, TEST_HOOKS};
use enclave_tests::TempDir;

const CANARY_HUME: &str = "canary-hume-4c1d9f2e7b";
const CANARY_RETELL: &str = "canary-retell-91aa03";
const CANARY_DB: &str = "postgres://enclave:canary-db-pw-77e1@db.internal/calls";

fn seeds() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ENCLAVE_SEED_HUME_API_KEY", CANARY_HUME),
        ("ENCLAVE_SEED_RETELL_API_KEY", CANARY_RETELL),
        ("ENCLAVE_SEED_DATABASE_CONNECTION", CANARY_DB),
    ]
}

/// A random launch measurement for the simulated PSP.
fn measurement() -> String {
    let mut b = [0u8; 48];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac_hex(key: &[u8; 32], value: &str) -> String {
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        value.as_bytes(),
    );
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard (`+/`) or URL-safe (`-_`) base64 without padding, written out
/// here so the forms searched for do not come from code under test.
fn base64(bytes: &[u8], url: bool) -> String {
    let mut abc: Vec<u8> =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".to_vec();
    if url {
        abc[62] = b'-';
        abc[63] = b'_';
    }
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(abc[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The forms a canary could leak in: as is, hex (both cases), base64 and
/// base64url at each of the three alignments it can have inside a longer
/// encoded text (the 4-character groups that hold only canary bytes), and
/// JSON-escaped (`/` escaped or not).
fn leak_forms(canary: &str) -> Vec<(String, String)> {
    let mut forms = vec![("plain".to_owned(), canary.to_owned())];
    let hex: String = canary.bytes().map(|b| format!("{b:02x}")).collect();
    forms.push(("hex".into(), hex.to_uppercase()));
    forms.push(("hex".into(), hex));
    for url in [false, true] {
        for shift in 0..3 {
            // `shift` bytes before the canary: the groups those touch, and
            // the last one (it mixes in what follows), are left out.
            let mut padded = vec![0u8; shift];
            padded.extend_from_slice(canary.as_bytes());
            let whole = padded.len() / 3 * 4;
            let first = if shift == 0 { 0 } else { 4 };
            let encoded = base64(&padded, url);
            forms.push((
                format!("base64{} at offset {shift}", if url { "url" } else { "" }),
                encoded[first..whole.min(encoded.len())].to_owned(),
            ));
        }
    }
    let json = serde_json::to_string(canary).unwrap();
    let json = json.trim_matches('"').to_owned();
    forms.push(("JSON with / escaped".into(), json.replace('/', "\\/")));
    forms.push(("JSON".into(), json));
    forms.dedup_by(|a, b| a.1 == b.1);
    forms
}

/// `text` (named `what`) holds none of the canary's forms.
fn assert_no_leak(what: &str, text: &[u8], canary: &str) {
    for (form, needle) in leak_forms(canary) {
        assert!(
            !text.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{what} holds the canary {canary:?} in {form} form ({needle})"
        );
    }
}

/// Every file under `dir`, recursively, must hold no form of `canary`.
fn assert_no_file_contains(dir: &Path, canary: &str) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            assert_no_file_contains(&p, canary);
        } else if let Ok(bytes) = std::fs::read(&p) {
            assert_no_leak(&p.display().to_string(), &bytes, canary);
        }
    }
}

#[test]
fn the_leak_forms_are_what_other_encoders_produce() {
    // Known answers (RFC 4648 section 10, and Python's base64 for the rest).
    assert_eq!(base64(b"foobar", false), "Zm9vYmFy");
    assert_eq!(base64(b"fo", false), "Zm8");
    assert_eq!(base64(&[0xfb, 0xff], false), "+/8");
    assert_eq!(base64(&[0xfb, 0xff], true), "-_8");
    // Each base64 form is found inside the encoding of a longer text
    // holding the canary at each offset, as a leak would be.
    for prefix in ["", "x", "xy", "xyz"] {
        let text = format!("{prefix}{CANARY_DB} and more");
        for url in [false, true] {
            let encoded = base64(text.as_bytes(), url);
            let found = leak_forms(CANARY_DB)
                .iter()
                .any(|(f, n)| f.starts_with("base64") && encoded.contains(n.as_str()));
            assert!(found, "{prefix:?} url={url}: {encoded}");
        }
    }
    assert!(leak_forms(CANARY_DB)
        .iter()
        .any(|(_, n)| n == "postgres:\\/\\/enclave:canary-db-pw-77e1@db.internal\\/calls"));
}

/// The full stack for one test.
struct Stack {
    pki: Pki,
    psp: SimPsp,
    verifier: Verifier,
    bao: OpenBao,
    measurement: String,
    dir: TempDir,
}

fn stack(role_measurements: Option<&[&str]>, verifier_args: &[&str]) -> Stack {
    let dir = TempDir::new("stack");
    let pki = Pki::new();
    let m = measurement();
    let psp = SimPsp::start(&dir.path().join("psp.sock"), &["--measurement", &m]);
    assert_eq!(psp.measurement, m);
    // Every stack's verifier has a client CA: guests in certificate mode
    // ask it for a client certificate, guests in JWT mode do not.
    let (ca_cert, ca_key) = (
        pki.path("client-ca.pem").display().to_string(),
        pki.path("client-ca-key.pem").display().to_string(),
    );
    let mut args = vec![
        "--client-ca-cert",
        ca_cert.as_str(),
        "--client-ca-key",
        ca_key.as_str(),
    ];
    args.extend_from_slice(verifier_args);
    let verifier = Verifier::start(&pki, &sim_policy(&psp.ark_sha256, &[&m]), dir.path(), &args);
    let bao = OpenBao::start(&pki);
    bao.setup(
        &verifier,
        &pki,
        role_measurements.unwrap_or(&[&m]),
        "sim",
        &seeds(),
    );
    Stack {
        pki,
        psp,
        verifier,
        bao,
        measurement: m,
        dir,
    }
}

#[test]
fn attests_logs_in_and_holds_the_exact_secrets() {
    let s = stack(None, &[]);
    let gdir = TempDir::new("guest");
    let config = guest_config(
        gdir.path(),
        &s.psp.socket,
        Some((&s.verifier, &s.pki)),
        Some(&s.bao),
    ) + TEST_HOOKS;
    let (guest, report) = match boot(gdir, &config) {
        Boot::Ready(g, r) => (g, r),
        Boot::Failed { status, stderr } => panic!("guest failed ({status}):\n{stderr}"),
    };
    assert_eq!(report["attested"]["tee"], "sim", "{report}");
    assert_eq!(report["secrets_provisioned"], 5, "{report}");
    let key = [0x42u8; 32];
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    for (name, value) in [
        ("hume/api-key", CANARY_HUME),
        ("retell/api-key", CANARY_RETELL),
        ("database/connection", CANARY_DB),
    ] {
        assert_eq!(
            guest.command(&report, &format!("secret-hash {name} {key_hex}")),
            hmac_hex(&key, value),
            "{name}"
        );
    }
    // Core dumps are off for the process holding them.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", guest.child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(
        core.split_whitespace().filter(|w| *w == "0").count() == 2,
        "{core}"
    );
    assert_eq!(guest.command(&report, "poweroff"), "ok");
    // The canaries appear nowhere, in no form: the guest's stdout and
    // stderr, the verifier's and sim-psp's output, OpenBao's log, anything
    // in the guest's directory or the stack's (configs, sockets, logs).
    let logs = guest.logs();
    let (verifier_out, psp_out) = (s.verifier.proc.output(), s.psp.proc.output());
    // Those outputs were captured (or searching them proves nothing).
    assert!(
        String::from_utf8_lossy(&verifier_out).contains("listening "),
        "verifier output not captured"
    );
    assert!(
        String::from_utf8_lossy(&psp_out).contains("\"msg\":\"sim-psp: signed report\""),
        "sim-psp output not captured"
    );
    for canary in [CANARY_HUME, CANARY_RETELL, CANARY_DB] {
        assert_no_leak("the guest's log", logs.as_bytes(), canary);
        assert_no_leak("the verifier's output", &verifier_out, canary);
        assert_no_leak("sim-psp's output", &psp_out, canary);
        assert_no_leak("OpenBao's log", s.bao.log().as_bytes(), canary);
        assert_no_file_contains(guest.dir.path(), canary);
        assert_no_file_contains(s.dir.path(), canary);
    }
    assert!(
        logs.contains("msg=\"secret provisioned\" secret=hume/api-key\n"),
        "{logs}"
    );
    // Not even a secret's length reaches the console.
    assert!(!logs.contains("len="), "{logs}");
    // The guest revoked its own Vault token once the secrets were read
    // (renewal is by re-attestation): the console says nothing to the
    // contrary.
    assert!(!logs.contains("Vault token not revoked"), "{logs}");
}

#[test]
fn a_measurement_the_vault_role_does_not_pin_is_refused_by_vault() {
    let other = measurement();
    let s = stack(Some(&[&other]), &[]);
    let gdir = TempDir::new("guest");
    let config = guest_config(
        gdir.path(),
        &s.psp.socket,
        Some((&s.verifier, &s.pki)),
        Some(&s.bao),
    );
    match boot(gdir, &config) {
        Boot::Failed { status, stderr } => {
            assert_eq!(status, 1);
            assert!(
                stderr.contains("attested"),
                "the verifier accepted it: {stderr}"
            );
            assert!(stderr.contains("Vault refused login"), "{stderr}");
            assert!(
                stderr.contains("measurement"),
                "Vault names the claim: {stderr}"
            );
        }
        Boot::Ready(_, r) => panic!("a measurement outside the role got secrets: {r}"),
    }
}

#[test]
fn simulation_evidence_under_a_production_policy_is_denied_by_the_verifier() {
    let dir = TempDir::new("stack");
    let pki = Pki::new();
    let m = measurement();
    let psp = SimPsp::start(&dir.path().join("psp.sock"), &["--measurement", &m]);
    let production = sim_policy(&psp.ark_sha256, &[&m])
        .replace("[sim]\nallowed = true", "[sim]\nallowed = false");
    // A production verifier (no --dev): the policy refuses simulation.
    let verifier =
        Verifier::start_with(&pki, &production, dir.path(), &["--token-ttl-secs", "300"]);
    let gdir = TempDir::new("guest");
    let config = guest_config(gdir.path(), &psp.socket, Some((&verifier, &pki)), None);
    match boot(gdir, &config) {
        Boot::Failed { status, stderr } => {
            assert_eq!(status, 1);
            assert!(
                stderr.contains("verifier denied the evidence: check sim"),
                "{stderr}"
            );
        }
        Boot::Ready(_, r) => panic!("simulation accepted by a production policy: {r}"),
    }
}

#[test]
fn a_verifier_certificate_from_another_ca_is_refused_by_tls() {
    let dir = TempDir::new("stack");
    let pki = Pki::new();
    let other = Pki::new();
    let m = measurement();
    let psp = SimPsp::start(&dir.path().join("psp.sock"), &["--measurement", &m]);
    let verifier = Verifier::start(&pki, &sim_policy(&psp.ark_sha256, &[&m]), dir.path(), &[]);
    // The guest pins `other`'s CA, not the one that issued the verifier's certificate.
    let gdir = TempDir::new("guest");
    let config = guest_config(gdir.path(), &psp.socket, Some((&verifier, &other)), None);
    match boot(gdir, &config) {
        Boot::Failed { status, stderr } => {
            assert_eq!(status, 1);
            assert!(
                stderr.contains("verifier TLS") || stderr.contains("UnknownIssuer"),
                "{stderr}"
            );
            assert!(
                stderr.contains("UnknownIssuer") || stderr.contains("invalid peer certificate"),
                "{stderr}"
            );
        }
        Boot::Ready(_, r) => panic!("an untrusted verifier was accepted: {r}"),
    }
}

#[test]
fn a_vault_certificate_from_another_ca_is_refused_by_tls() {
    let s = stack(None, &[]);
    let gdir = TempDir::new("guest");
    let mut config = guest_config(
        gdir.path(),
        &s.psp.socket,
        Some((&s.verifier, &s.pki)),
        Some(&s.bao),
    );
    // Pin another CA for Vault (the verifier keeps its own, so the guest
    // gets as far as Vault).
    let other = Pki::new();
    let vault_section = config.split_off(config.find("[vault]").unwrap());
    config.push_str(&vault_section.replace(&s.pki.ca_pem(), &other.ca_pem()));
    match boot(gdir, &config) {
        Boot::Failed { status, stderr } => {
            assert_eq!(status, 1);
            assert!(stderr.contains("Vault"), "{stderr}");
            assert!(
                stderr.contains("UnknownIssuer") || stderr.contains("invalid peer certificate"),
                "{stderr}"
            );
        }
        Boot::Ready(_, r) => panic!("an untrusted Vault was accepted: {r}"),
    }
}

#[test]
fn vault_down_at_boot_is_retried_until_it_comes_up() {
    let dir = TempDir::new("stack");
    let pki = Pki::new();
    let m = measurement();
    let psp = SimPsp::start(&dir.path().join("psp.sock"), &["--measurement", &m]);
    let verifier = Verifier::start(&pki, &sim_policy(&psp.ark_sha256, &[&m]), dir.path(), &[]);
    // The guest boots while nothing listens on Vault's port.
    let port = quiet_port();
    let gdir = TempDir::new("guest");
    let config = guest_config(gdir.path(), &psp.socket, Some((&verifier, &pki)), None)
        + &format!(
            "\n[vault]\naddr = \"tcp://127.0.0.1:{port}\"\nserver_name = \"vault.enclave.local\"\nca = \"\"\"\n{}\"\"\"\n",
            pki.ca_pem()
        );
    let guest_path = gdir.path().to_owned();
    let booting = std::thread::spawn(move || boot(gdir, &config));
    std::thread::sleep(Duration::from_secs(3));
    // Vault comes up, configured: a fully set-up OpenBao becomes reachable
    // on the port the guest keeps trying (a forwarder opened only now).
    let bao = OpenBao::start(&pki);
    bao.setup(&verifier, &pki, &[&m], "sim", &seeds());
    forward(port, bao.port);
    match booting.join().unwrap() {
        Boot::Ready(guest, report) => {
            assert_eq!(report["secrets_provisioned"], 5, "{report}");
            let logs = guest.logs();
            assert!(
                logs.contains("msg=\"attestation attempt failed; retrying\"")
                    && logs.contains("class=vault_unreachable"),
                "{logs}"
            );
        }
        Boot::Failed { stderr, .. } => panic!(
            "guest gave up while Vault came up:\n{stderr}\n{:?}",
            guest_path
        ),
    }
}

/// A loopback port where nothing listens, outside the kernel's ephemeral
/// range (32768-60999 by default): while the test keeps it closed, no
/// other test's `free_port()` and no outgoing connection can take it (a
/// `free_port()` here lost it once in CI, AddrInUse at the forward).
fn quiet_port() -> u16 {
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
    (0u32..)
        .map(|i| 20_000 + ((seed.wrapping_add(i.wrapping_mul(7919))) % 12_000) as u16)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .unwrap()
}

/// Forwards loopback `from` → `to` from now on (both directions, each
/// connection in its own threads).
fn forward(from: u16, to: u16) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", from)).unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                continue;
            };
            for (mut a, mut b) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut a, &mut b);
                    let _ = b.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
}

/// Tokens the verifier would sign, but expired, for another audience, or
/// from another issuer key: OpenBao's role refuses each.
#[test]
fn vault_refuses_expired_and_foreign_tokens() {
    let s = stack(None, &[]);
    let signer =
        verifier::token::Signer::from_pkcs8(&std::fs::read(s.pki.path("token-key.pk8")).unwrap())
            .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = |exp: i64, aud: &str| {
        let v = serde_json::json!({
            "iss": s.verifier.url, "aud": aud, "sub": "enclave:test", "iat": exp - 300, "nbf": exp - 300, "exp": exp,
            "tee": "sim", "measurement": s.measurement,
        });
        v.as_object().unwrap().clone()
    };
    let login = |jwt: &str| {
        let out = s
            .bao
            .cli(&[
                "write",
                "-format=json",
                "auth/enclave-attest/login",
                "role=enclave-agent",
                &format!("jwt={jwt}"),
            ])
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = login(&signer.sign(&claims(now + 300, "openbao")).unwrap());
    assert!(
        ok,
        "a valid token must log in (the test is not vacuous): {err}"
    );
    let (ok, err) = login(&signer.sign(&claims(now - 3600, "openbao")).unwrap());
    assert!(!ok && err.contains("expired"), "{err}");
    let (ok, err) = login(&signer.sign(&claims(now + 300, "someone-else")).unwrap());
    assert!(!ok && err.contains("aud"), "{err}");
    let foreign =
        verifier::token::Signer::from_pkcs8(&verifier::token::Signer::generate_pkcs8().unwrap())
            .unwrap();
    let (ok, err) = login(&foreign.sign(&claims(now + 300, "openbao")).unwrap());
    assert!(!ok, "a token signed by another key must fail: {err}");
}

fn status(guest: &Guest, report: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&guest.command(report, "status")).unwrap()
}

/// Waits up to `secs` for `cond(status)`.
fn wait_status(
    guest: &Guest,
    report: &serde_json::Value,
    secs: u64,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = status(guest, report);
        if cond(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "status never matched: {s}\n{}",
            guest.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn reattests_before_expiry_even_after_vault_revokes_its_token() {
    // Tokens live 10 s: the guest renews between 5 and 7.5 s.
    let s = stack(None, &["--token-ttl-secs", "10"]);
    let gdir = TempDir::new("guest");
    let config = guest_config(
        gdir.path(),
        &s.psp.socket,
        Some((&s.verifier, &s.pki)),
        Some(&s.bao),
    ) + TEST_HOOKS;
    let Boot::Ready(guest, report) = boot(gdir, &config) else {
        panic!("guest did not get ready")
    };
    // Vault revokes every token the enclave got from its auth method.
    let revoked = s
        .bao
        .cli(&["token", "revoke", "-mode=path", "auth/enclave-attest/"])
        .status()
        .unwrap();
    assert!(revoked.success());
    let st = wait_status(&guest, &report, 30, |st| {
        st["renewals"].as_u64().unwrap_or(0) >= 1
    });
    assert_eq!(st["health"]["state"], "serving", "{st}");
    assert_eq!(st["secrets_provisioned"], 5, "{st}");
    let key = [9u8; 32];
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        guest.command(&report, &format!("secret-hash hume/api-key {key_hex}")),
        hmac_hex(&key, CANARY_HUME)
    );
    assert!(guest
        .logs()
        .contains("msg=\"re-attested and secrets renewed\""));
}

#[test]
fn a_failed_renewal_withdraws_every_secret_and_health_says_why() {
    let mut s = stack(None, &["--token-ttl-secs", "10"]);
    let gdir = TempDir::new("guest");
    let config = guest_config(
        gdir.path(),
        &s.psp.socket,
        Some((&s.verifier, &s.pki)),
        Some(&s.bao),
    ) + TEST_HOOKS;
    let Boot::Ready(guest, report) = boot(gdir, &config) else {
        panic!("guest did not get ready")
    };
    assert_eq!(status(&guest, &report)["secrets_provisioned"], 5);
    // The verifier goes away: renewals fail (transiently: it may come
    // back), so the secrets are kept until the trust deadline, then wiped.
    s.verifier.proc.stop();
    let st = wait_status(&guest, &report, 30, |st| {
        st["health"]["state"] == "withdrawn"
    });
    assert_eq!(st["secrets_provisioned"], 0, "{st}");
    assert_eq!(st["health"]["kind"], "deadline", "{st}");
    assert!(
        st["health"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("trust deadline passed"),
        "{st}"
    );
    assert!(
        st["lifecycle"]["last_transient_cause"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot reach the verifier"),
        "{st}"
    );
    assert!(
        st["lifecycle"]["failed_attempts"].as_u64().unwrap_or(0) >= 1,
        "{st}"
    );
    let key_hex = "00".repeat(32);
    assert_eq!(
        guest.command(&report, &format!("secret-hash hume/api-key {key_hex}")),
        "error no-such-secret"
    );
    // Still answering, still alive: health keeps saying why.
    assert_eq!(guest.command(&report, "ping"), "pong");
}

#[test]
fn verifier_unreachable_at_boot_is_retried() {
    let s = stack(None, &[]);
    let gdir = TempDir::new("guest");
    let port = quiet_port();
    // The guest boots pointing at a port where nothing listens yet.
    let config = guest_config(
        gdir.path(),
        &s.psp.socket,
        Some((&s.verifier, &s.pki)),
        Some(&s.bao),
    )
    .replace(
        &format!("tcp://127.0.0.1:{}\"", s.verifier.port),
        &format!("tcp://127.0.0.1:{port}\""),
    );
    let booting = std::thread::spawn(move || boot(gdir, &config));
    std::thread::sleep(Duration::from_secs(2));
    forward(port, s.verifier.port);
    match booting.join().unwrap() {
        Boot::Ready(guest, report) => {
            assert_eq!(report["secrets_provisioned"], 5, "{report}");
            let logs = guest.logs();
            assert!(
                logs.contains("msg=\"attestation attempt failed; retrying\"")
                    && logs.contains("class=unreachable"),
                "{logs}"
            );
        }
        Boot::Failed { stderr, .. } => panic!("guest gave up on the verifier:\n{stderr}"),
    }
}

// --- Certificate mode: proof of possession of the attested key ----------------

/// The `[vault]` lines of certificate mode (appended to the `[vault]`
/// section `guest_config` ends with).
const CERT_MODE: &str = "auth = \"cert\"\nauth_path = \"enclave-cert\"\n";

#[test]
fn cert_mode_guest_logs_in_with_its_key_and_holds_the_exact_secrets() {
    let s = stack(None, &[]);
    let gdir = TempDir::new("guest");
    let config = guest_config(
        gdir.path(),
        &s.psp.socket,
        Some((&s.verifier, &s.pki)),
        Some(&s.bao),
    ) + CERT_MODE
        + TEST_HOOKS;
    let (guest, report) = match boot(gdir, &config) {
        Boot::Ready(g, r) => (g, r),
        Boot::Failed { status, stderr } => panic!("guest failed ({status}):\n{stderr}"),
    };
    assert_eq!(report["secrets_provisioned"], 5, "{report}");
    let key = [0x24u8; 32];
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    for (name, value) in [
        ("hume/api-key", CANARY_HUME),
        ("retell/api-key", CANARY_RETELL),
        ("database/connection", CANARY_DB),
    ] {
        assert_eq!(
            guest.command(&report, &format!("secret-hash {name} {key_hex}")),
            hmac_hex(&key, value),
            "{name}"
        );
    }
    let logs = guest.logs();
    assert!(
        logs.contains("msg=\"Vault login accepted\"") && logs.contains("auth=cert"),
        "{logs}"
    );
    assert!(!logs.contains("Vault token not revoked"), "{logs}");
    assert_eq!(guest.command(&report, "poweroff"), "ok");
}

/// A P-256 key as the enclave has one: its SPKI and a rustls signing key.
fn p256_key() -> (Vec<u8>, std::sync::Arc<dyn rustls::sign::SigningKey>) {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(pair.public_key().as_ref());
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(pkcs8.as_ref().to_vec().into());
    (
        spki,
        rustls::crypto::ring::sign::any_ecdsa_type(&der).unwrap(),
    )
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A client certificate from the verifier's client CA (what the verifier
/// issues after a successful appraisal).
fn client_cert(
    s: &Stack,
    spki: &[u8],
    measurement: &str,
    not_before: i64,
    expires_at: i64,
) -> String {
    let ca = verifier::client_cert::ClientCa::from_pem(
        &std::fs::read_to_string(s.pki.path("client-ca.pem")).unwrap(),
        &std::fs::read_to_string(s.pki.path("client-ca-key.pem")).unwrap(),
    )
    .unwrap();
    let subject = verifier::client_cert::Subject {
        jkt: "test",
        tee: "sim",
        measurement,
    };
    ca.issue(
        spki,
        &subject,
        not_before + verifier::client_cert::BACKDATE_SECS,
        expires_at,
    )
    .unwrap()
}

/// One request to OpenBao's TLS listener, presenting `client` (certificate
/// chain PEM and the key that signs the handshake, matching or not).
fn bao_request(
    s: &Stack,
    client: Option<(&str, std::sync::Arc<dyn rustls::sign::SigningKey>)>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, serde_json::Value), String> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(s.bao.ca_pem().as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        // CertifiedKey::new does not check that the key matches: the
        // server must.
        Some((pem, key)) => {
            let chain = rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let ck = rustls::sign::CertifiedKey::new(chain, key);
            builder.with_client_cert_resolver(std::sync::Arc::new(
                rustls::sign::SingleCertAndKey::from(ck),
            ))
        }
        None => builder.with_no_client_auth(),
    };
    let conn = rustls::ClientConnection::new(
        std::sync::Arc::new(config),
        "vault.enclave.local".try_into().unwrap(),
    )
    .unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", s.bao.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = std::io::BufReader::new(rustls::StreamOwned::new(conn, tcp));
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    bounded_http::write_request(
        tls.get_mut(),
        method,
        "vault.enclave.local",
        path,
        &all,
        body.as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let r = bounded_http::read_response(&mut tls, bounded_http::Limits::default())
        .map_err(|e| e.to_string())?;
    Ok((
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
    ))
}

fn cert_login(
    s: &Stack,
    client: Option<(&str, std::sync::Arc<dyn rustls::sign::SigningKey>)>,
    body: &str,
) -> Result<(u16, serde_json::Value), String> {
    bao_request(s, client, "POST", "/v1/auth/enclave-cert/login", &[], body)
}

const CERT_LOGIN: &str = r#"{"name":"enclave-agent"}"#;

#[test]
fn the_cert_role_admits_the_certificate_with_its_key_and_nothing_less() {
    let s = stack(None, &[]);
    let now = unix_now();
    let (spki, key) = p256_key();
    let pem = client_cert(&s, &spki, &s.measurement, now, now + 300);

    // The certificate with the enclave key: logged in, the secrets readable.
    let (status, v) = cert_login(&s, Some((&pem, key.clone())), CERT_LOGIN).unwrap();
    assert_eq!(status, 200, "{v}");
    let token = v["auth"]["client_token"].as_str().unwrap().to_owned();
    assert!(
        v["auth"]["policies"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("enclave-agent")),
        "{v}"
    );
    assert!(
        v["auth"]["lease_duration"].as_u64().unwrap() <= 60,
        "short-lived like the JWT role: {v}"
    );
    let (status, v) = bao_request(
        &s,
        None,
        "GET",
        "/v1/enclave-agents/data/hume",
        &[("x-vault-token", &token)],
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["data"]["api-key"], CANARY_HUME);

    // The same certificate presented with another key: the TLS handshake
    // fails (CertificateVerify does not verify), no answer at all.
    let (_, other) = p256_key();
    let r = cert_login(&s, Some((&pem, other)), CERT_LOGIN);
    assert!(
        r.is_err(),
        "a certificate without its key must not get through TLS: {r:?}"
    );

    // No certificate at all: refused.
    let (status, v) = cert_login(&s, None, CERT_LOGIN).unwrap();
    assert!(status == 400 || status == 403, "{status} {v}");

    // An expired certificate (issued by the same CA, for the same key): refused.
    let expired = client_cert(&s, &spki, &s.measurement, now - 3600, now - 1800);
    let r = cert_login(&s, Some((&expired, key.clone())), CERT_LOGIN);
    assert!(
        !matches!(r, Ok((200, _))),
        "an expired client certificate must be refused: {r:?}"
    );

    // A certificate for a measurement the role does not pin: refused.
    let foreign = client_cert(&s, &spki, &"ab".repeat(48), now, now + 300);
    let r = cert_login(&s, Some((&foreign, key.clone())), CERT_LOGIN);
    assert!(matches!(r, Ok((400 | 403, _))), "{r:?}");

    // A certificate from another CA (self-made, same claims): refused.
    let (other_ca, other_ca_key) =
        verifier::client_cert::generate_ca("enclave-init development verifier client CA").unwrap();
    let rogue = verifier::client_cert::ClientCa::from_pem(&other_ca, &other_ca_key)
        .unwrap()
        .issue(
            &spki,
            &verifier::client_cert::Subject {
                jkt: "test",
                tee: "sim",
                measurement: &s.measurement,
            },
            now,
            now + 300,
        )
        .unwrap();
    let r = cert_login(&s, Some((&rogue, key)), CERT_LOGIN);
    assert!(matches!(r, Ok((400 | 403, _))), "{r:?}");
}

#[test]
fn a_jwt_copied_from_a_successful_run_is_refused_by_the_cert_mount() {
    let s = stack(None, &[]);
    // A token the verifier signs for this very measurement: the JWT mount
    // takes it (the copy is a valid bearer token there)...
    let signer =
        verifier::token::Signer::from_pkcs8(&std::fs::read(s.pki.path("token-key.pk8")).unwrap())
            .unwrap();
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": s.verifier.url, "aud": "openbao", "sub": "enclave:test", "iat": now, "nbf": now, "exp": now + 300,
        "tee": "sim", "measurement": s.measurement,
    });
    let jwt = signer.sign(claims.as_object().unwrap()).unwrap();
    let body = serde_json::json!({"role": "enclave-agent", "jwt": jwt}).to_string();
    let (status, v) = bao_request(
        &s,
        None,
        "POST",
        "/v1/auth/enclave-attest/login",
        &[],
        &body,
    )
    .unwrap();
    assert_eq!(
        status, 200,
        "the copied token is valid at the JWT mount (the test is not vacuous): {v}"
    );
    // ...and the cert mount, in every shape the token could be handed over, refuses it.
    for body in [
        serde_json::json!({"name": "enclave-agent", "jwt": jwt}).to_string(),
        serde_json::json!({"role": "enclave-agent", "jwt": jwt}).to_string(),
        CERT_LOGIN.to_owned(),
    ] {
        let (status, v) = cert_login(&s, None, &body).unwrap();
        assert!(status == 400 || status == 403, "{status} {v}");
        assert!(v["auth"].is_null(), "{v}");
    }
}

#[test]
fn cert_mode_reattests_with_a_fresh_certificate_before_expiry() {
    // Tokens and certificates live 10 s: the guest renews between 5 and
    // 7.5 s, each time with a new certificate (the old one expires).
    let s = stack(None, &["--token-ttl-secs", "10"]);
    let gdir = TempDir::new("guest");
    let config = guest_config(
        gdir.path(),
        &s.psp.socket,
        Some((&s.verifier, &s.pki)),
        Some(&s.bao),
    ) + CERT_MODE
        + TEST_HOOKS;
    let Boot::Ready(guest, report) = boot(gdir, &config) else {
        panic!("guest did not get ready")
    };
    let revoked = s
        .bao
        .cli(&["token", "revoke", "-mode=path", "auth/enclave-cert/"])
        .status()
        .unwrap();
    assert!(revoked.success());
    let st = wait_status(&guest, &report, 30, |st| {
        st["renewals"].as_u64().unwrap_or(0) >= 2
    });
    assert_eq!(st["health"]["state"], "serving", "{st}");
    assert_eq!(st["secrets_provisioned"], 5, "{st}");
    let key = [7u8; 32];
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        guest.command(&report, &format!("secret-hash hume/api-key {key_hex}")),
        hmac_hex(&key, CANARY_HUME)
    );
    let logs = guest.logs();
    assert!(
        logs.matches("auth=cert").count() >= 3,
        "one certificate login per attestation: {logs}"
    );
}

#[test]
fn cert_mode_against_a_verifier_without_a_client_ca_fails_at_once_and_says_why() {
    let s = stack(None, &[]);
    // A second verifier, same keys and policy, but no client CA.
    let plain = Verifier::start(
        &s.pki,
        &sim_policy(&s.psp.ark_sha256, &[&s.measurement]),
        s.dir.path(),
        &[],
    );
    let gdir = TempDir::new("guest");
    let config = guest_config(
        gdir.path(),
        &s.psp.socket,
        Some((&plain, &s.pki)),
        Some(&s.bao),
    ) + CERT_MODE;
    let started = Instant::now();
    match boot(gdir, &config) {
        Boot::Ready(_, r) => {
            panic!("a certificate-mode guest got ready without a certificate: {r}")
        }
        Boot::Failed { stderr, .. } => {
            assert!(stderr.contains("no_client_ca"), "{stderr}");
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "a final failure is not retried until the boot deadline"
            );
        }
    }
}
