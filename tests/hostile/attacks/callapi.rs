//! The call API as the host sees it: it reaches the call port (it owns the
//! ingress) and every byte the guest lets out. It must not get a call
//! served, nor learn anything personal.

use std::sync::Arc;
use std::time::Duration;

use enclave_tests::https::{self, Client};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::rig::{self, Options, Rig, CANARY_PHONE, CANARY_PHRASE, PEPPER, RETELL_KEY};
use crate::Verdict;

/// Presents a certificate whatever key it holds: the platform's certificate
/// (public; the host may have copied it) with a key of the host's own.
#[derive(Debug)]
struct StolenCert(Arc<CertifiedKey>);

impl ResolvesClientCert for StolenCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
    fn has_certs(&self) -> bool {
        true
    }
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// A client of `client`'s address presenting the platform certificate
/// signed for by another key: the handshake must fail at CertificateVerify.
fn stolen_cert_client(rig: &Rig, client: &Client) -> Client {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(read(&rig.pki.path("platform-client.pem")).as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key =
        PrivateKeyDer::from_pem_slice(read(&rig.pki.path("vault-key.pem")).as_bytes()).unwrap();
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    let certified = Arc::new(CertifiedKey::new(chain, signer));
    client
        .clone()
        .anonymous()
        .with_resolver(Arc::new(StolenCert(certified)))
}

/// The host calls `/v1/calls` (and scrapes `/metrics`) without the
/// platform's client certificate: with none, with a certificate of another
/// CA, with the platform's certificate but its own key. Held = none of
/// these requests is served (401 or a failed handshake), no caller hash
/// reaches the host, and the platform client is served throughout.
pub fn unauthenticated_call() -> Verdict {
    let rig = Rig::new(Options {
        token_ttl_secs: 60,
        ..Options::default()
    });
    let (guest, _report, platform) = rig.guest("");
    let addr = platform.addr.to_string();
    let serving_ca = rig.bao.serving_ca_pem();
    let none = Client::new(&addr, &serving_ca, "call.enclave.local");
    let other_ca = none.clone().with_identity(
        &read(&rig.pki.path("vault.pem")),
        &read(&rig.pki.path("vault-key.pem")),
    );
    let stolen = stolen_cert_client(&rig, &platform);
    let wav = https::wav("mulaw", 8000, 1.0);
    let (ct, body) = https::multipart(&[
        (
            "metadata",
            None,
            "application/json",
            rig::metadata("host-probe").as_bytes(),
        ),
        ("audio", Some("call.wav"), "audio/wav", &wav),
    ]);
    let mut attempts = 0u32;
    let mut served = 0u32;
    let mut refused_401 = 0u32;
    let mut handshake_refused = 0u32;
    let mut hash_leaked = 0u32;
    let mut platform_ok = 0u32;
    let mut platform_times = Vec::new();
    for round in 0..5 {
        for (who, c) in [
            ("none", &none),
            ("other-ca", &other_ca),
            ("stolen", &stolen),
        ] {
            for (method, path, b) in [
                ("POST", "/v1/calls", &body[..]),
                ("GET", "/metrics", &b""[..]),
            ] {
                attempts += 1;
                let headers: &[(&str, &str)] = if method == "POST" {
                    &[("content-type", ct.as_str())]
                } else {
                    &[]
                };
                let answer = c
                    .connect()
                    .map_err(|e| e.to_string())
                    .and_then(|mut conn| c.send(&mut conn, method, path, headers, b));
                if let Ok(r) = &answer {
                    if String::from_utf8_lossy(&r.body).contains("hmac-sha256:") {
                        hash_leaked += 1;
                    }
                }
                match answer {
                    Ok(r) if r.status == 401 && r.code() == "auth.client_certificate" => {
                        refused_401 += 1;
                    }
                    Ok(r) => {
                        served += 1;
                        eprintln!("{who} {method} {path} round {round}: {}", r.status);
                    }
                    Err(e) if e.contains("alert") => handshake_refused += 1,
                    Err(e) => {
                        // Anything else is not a refusal by the guest.
                        served += 1;
                        eprintln!("{who} {method} {path}: unexpected {e}");
                    }
                }
            }
        }
        let (status, took) = rig::call(&platform, &format!("platform-{round}"));
        platform_ok += u32::from(status == 200);
        platform_times.push(took);
    }
    drop(guest);
    let slowest = platform_times.iter().max().copied().unwrap_or_default();
    let figure = format!(
        "{served} of {attempts} unauthenticated requests served ({refused_401} answered 401, \
         {handshake_refused} handshakes refused: other CA, stolen certificate without its key); \
         caller hash shown {hash_leaked} times; platform calls {platform_ok}/5, slowest {:.0} ms",
        slowest.as_secs_f64() * 1000.0
    );
    Verdict::judge(
        served == 0
            && hash_leaked == 0
            && refused_401 == 10
            && handshake_refused == 20
            && platform_ok == 5,
        figure,
    )
}

/// Canaries of personal data in every field of the input the guest
/// handles: metadata (call id, shipment id, phone), the audio file name, the
/// transcript, Retell's webhook (number, transcript, summary), and in the
/// error paths (bad metadata, a bad phone, an unknown agent, an unsigned
/// and a mis-signed webhook, an unauthenticated call). The host collects
/// every byte it can see: the guest's console (stdout and stderr), the
/// readiness report and the control channel's status, `/metrics` and
/// `/health/enclave` as the platform scrapes them, and every error body.
/// Held = no canary, in any spelling, in any of it (and each stream was
/// captured: not empty).
pub fn pii_canary() -> Verdict {
    let rig = Rig::new(Options {
        token_ttl_secs: 60,
        ..Options::default()
    });
    let (guest, report, platform) = rig.guest("");
    let serving_ca = rig.bao.serving_ca_pem();
    let anonymous = Client::new(
        &platform.addr.to_string(),
        &serving_ca,
        "call.enclave.local",
    );
    let call_id = "cid-kanarienvogel-7731";
    let shipment = "SHP-kanarienvogel-4410";
    let file_name = "kanarienvogel-file.wav";
    let bad_phone = "kanarienvogel-phone";
    let summary = "Il signor Kanarienvogel chiede un richiamo";
    let canaries: Vec<&str> = vec![
        CANARY_PHONE,
        "+393339876543",
        "3339876543",
        "333 987 6543",
        CANARY_PHRASE,
        "kanarienvogel",
        "Kanarienvogel",
        RETELL_KEY,
        PEPPER,
    ];
    let wav = https::wav("mulaw", 8000, 1.0);
    let meta = |id: &str, phone: &str, agent: &str| {
        serde_json::json!({
            "call_id": id, "shipment_id": shipment, "agent_type": agent,
            "caller_phone": phone, "language": "it",
        })
        .to_string()
    };
    let mut bodies = Vec::new();
    let mut statuses = Vec::new();
    let mut send_call = |c: &Client, metadata: &str| {
        let (ct, body) = https::multipart(&[
            ("metadata", None, "application/json", metadata.as_bytes()),
            ("audio", Some(file_name), "audio/wav", &wav),
        ]);
        let r = c.request("POST", "/v1/calls", &[("content-type", &ct)], &body);
        statuses.push(r.status);
        r
    };
    // The good call (its answer goes to the platform, inside TLS: not
    // collected), then the error paths, whose bodies are collected.
    let good = send_call(&platform, &meta(call_id, CANARY_PHONE, "sara"));
    let good_ok = good.status == 200;
    for metadata in [
        meta(call_id, bad_phone, "sara"),
        meta(call_id, CANARY_PHONE, "kanarienvogel-agent"),
        format!("{{\"call_id\": \"{call_id}\", \"caller_phone\": \"{CANARY_PHONE}\""),
    ] {
        let r = send_call(&platform, &metadata);
        bodies.push(String::from_utf8_lossy(&r.body).into_owned());
    }
    let r = send_call(&anonymous, &meta(call_id, CANARY_PHONE, "sara"));
    bodies.push(String::from_utf8_lossy(&r.body).into_owned());
    // Retell: one signed delivery, one unsigned, one with a bad signature.
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let event = serde_json::json!({
        "event": "call_analyzed",
        "call": {
            "call_id": call_id, "agent_id": "agent_sara", "call_type": "phone_call",
            "direction": "inbound", "from_number": CANARY_PHONE, "to_number": "+390212345678",
            "call_status": "ended", "start_timestamp": 1_764_000_000_000u64,
            "end_timestamp": 1_764_000_095_000u64, "transcript": rig::transcript(),
            "call_analysis": {"call_summary": summary, "user_sentiment": "Neutral", "call_successful": true},
        }
    })
    .to_string();
    let sig = enclave_tests::stack::retell_sdk_sign(RETELL_KEY, &event, now_ms);
    let json = [("content-type", "application/json")];
    let signed = anonymous.request(
        "POST",
        "/v1/retell/events",
        &[json[0], ("x-retell-signature", sig.as_str())],
        event.as_bytes(),
    );
    // Its answer (the sanitized record, with the summary) goes back to
    // Retell inside TLS: not host-visible, not collected.
    statuses.push(signed.status);
    for sig in [None, Some("v=1,d=00")] {
        let mut h = json.to_vec();
        if let Some(s) = sig {
            h.push(("x-retell-signature", s));
        }
        let r = anonymous.request("POST", "/v1/retell/events", &h, event.as_bytes());
        statuses.push(r.status);
        bodies.push(String::from_utf8_lossy(&r.body).into_owned());
    }
    // What the platform scrapes and the host's own channels.
    let metrics =
        String::from_utf8_lossy(&platform.request("GET", "/metrics", &[], b"").body).into_owned();
    let health =
        String::from_utf8_lossy(&platform.request("GET", "/health/enclave", &[], b"").body)
            .into_owned();
    let status = guest.command(&report, "status");
    std::thread::sleep(Duration::from_millis(300));
    let console = guest.logs();
    drop(guest);
    let streams = [
        ("console", console),
        ("ready report", report.to_string()),
        ("control status", status),
        ("/metrics", metrics),
        ("/health/enclave", health),
        ("error bodies", bodies.join("\n")),
    ];
    let mut hits = Vec::new();
    let mut bytes = 0;
    let mut empty = Vec::new();
    for (name, text) in &streams {
        bytes += text.len();
        if text.trim().is_empty() {
            empty.push(*name);
        }
        for c in &canaries {
            if text.contains(c) {
                for line in text.lines().filter(|l| l.contains(c)) {
                    eprintln!("pii-canary: {c:?} in {name}: {line}");
                }
                hits.push(format!("{c:?} in {name}"));
            }
        }
    }
    let console_has_calls = streams[0].1.contains("call processed");
    let figure =
        format!(
        "{} canary hits in {bytes} host-visible bytes over {} streams ({} canaries x spellings); \
         good call {}, statuses {:?}{}",
        hits.len(),
        streams.len(),
        canaries.len(),
        good.status,
        statuses,
        if hits.is_empty() { String::new() } else { format!("; {}", hits.join(", ")) }
    );
    Verdict::judge(
        hits.is_empty() && empty.is_empty() && good_ok && console_has_calls && signed.status == 200,
        if empty.is_empty() {
            figure
        } else {
            format!("{figure}; not captured: {empty:?}")
        },
    )
}
