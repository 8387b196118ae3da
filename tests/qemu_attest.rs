//! The guest in a real VM proves itself and gets its secrets through the
//! host proxy, and only the exact image that was measured does
//! (issue 8's pinning proof): build the image, compute its simulation
//! launch measurement, pin that in the verifier policy and the OpenBao role,
//! boot it with sim-psp measuring what QEMU launched.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Duration;

use enclave_tests::qemu::{cmdline, Guest};
use std::process::Command;

use enclave_tests::https;
use enclave_tests::stack::{
    enclavectl, platform_client, sim_policy, vm_config, vm_host_side as host_side, OpenBao, Pki,
    SimPsp, Verifier, TEST_HOOKS,
};
use enclave_tests::transcription::TranscriptionStandIn;
use enclave_tests::{build_image, kernel_dir, TempDir};

const CANARY: &str = "canary-vm-hume-5be2";
const TRANSCRIPTION_KEY: &str = "canary-vm-transcription-8d1e";
/// A caller's number and a phrase of the call: they may reach the caller
/// inside TLS, never the proxy, the console or the logs in clear.
const CANARY_PHONE: &str = "+39 347 555 0199";
const CANARY_DIGITS: &str = "3475550199";
const CANARY_PHRASE: &str = "zafferano e cannella";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn the_measured_image_gets_its_secrets_and_a_one_byte_change_is_denied() {
    let dir = TempDir::new("vm");
    let pki = Pki::new();
    let kernel = std::fs::read(kernel_dir().join("vmlinuz")).unwrap();

    // Build the image, then compute its launch measurement from the bytes.
    let img_dir = TempDir::new("img");
    // The test-hooks build (its keyed secret-hash query checks the exact
    // values below); its measurement is its own, computed here.
    let initrd = build_image(img_dir.path(), &vm_config(&pki, TEST_HOOKS), None);
    let pinned = hex(&measure::sim::sim_launch_digest(
        &kernel,
        &std::fs::read(&initrd).unwrap(),
        &cmdline(""),
    ));

    // Pin it in the verifier policy and the OpenBao role.
    let ark = SimPsp::start(&dir.path().join("probe.sock"), &["--measurement", &pinned]).ark_sha256;
    let verifier = Verifier::start(&pki, &sim_policy(&ark, &[&pinned]), dir.path(), &[]);
    let bao = OpenBao::start(&pki);
    bao.setup(
        &verifier,
        &pki,
        &[&pinned],
        "sim",
        &[
            ("ENCLAVE_SEED_HUME_API_KEY", CANARY),
            ("ENCLAVE_SEED_TRANSCRIPTION_API_KEY", TRANSCRIPTION_KEY),
        ],
    );
    let transcript = format!("Buongiorno, sono il {CANARY_PHONE}: la ricetta è {CANARY_PHRASE}.");
    let standin = TranscriptionStandIn::start(
        &pki.path("transcribe.pem"),
        &pki.path("transcribe-key.pem"),
        TRANSCRIPTION_KEY,
        &transcript,
    );

    // The measured image boots, attests over vsock and holds its secrets.
    let mut guest = Guest::boot_with(&initrd, "", |d| {
        host_side(d, &initrd, &verifier, &bao, standin.port)
    });
    let ready = guest.wait_ready(Duration::from_secs(240)).unwrap();
    assert_eq!(ready["attested"]["tee"], "sim", "{ready}");
    assert_eq!(ready["secrets_provisioned"], 5, "{ready}");
    let key = [7u8; 32];
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        CANARY.as_bytes(),
    );
    assert_eq!(
        guest
            .command(&format!("secret-hash hume/api-key {}", hex(&key)))
            .unwrap(),
        hex(tag.as_ref())
    );
    // A request through the proxy's ingress (TCP → hybrid vsock → guest) is answered.
    let ingress = std::fs::read_to_string(guest.dir().join("ingress.addr")).unwrap();
    let mut c = std::net::TcpStream::connect(ingress.trim()).unwrap();
    std::io::Write::write_all(&mut c, b"ping\n").unwrap();
    let mut answer = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(c), &mut answer).unwrap();
    assert_eq!(answer, "pong\n");

    // Calls through the proxy's ingress to the call port (TCP → hybrid
    // vsock → the guest's TLS), the guest transcribing through the proxy's
    // egress: enclavectl call and curl, both pinning OpenBao's serving CA.
    let call_addr = std::fs::read_to_string(guest.dir().join("call.addr"))
        .unwrap()
        .trim()
        .to_owned();
    let ca = guest.dir().join("serving-ca.pem");
    std::fs::write(&ca, bao.serving_ca_pem()).unwrap();
    let wav = guest.dir().join("call.wav");
    std::fs::write(&wav, https::wav("mulaw", 8000, 4.0)).unwrap();
    let metadata = serde_json::json!({"call_id": "vm-call-1", "shipment_id": "SHP-7", "agent_type": "franco", "caller_phone": CANARY_PHONE, "language": "it"}).to_string();
    let out = Command::new(enclavectl())
        .arg("call")
        .arg(&wav)
        .args([
            "--metadata",
            &metadata,
            "--addr",
            &format!("tcp://{call_addr}"),
            "--ca",
        ])
        .arg(&ca)
        .arg("--cert")
        .arg(pki.path("platform-client.pem"))
        .arg("--key")
        .arg(pki.path("platform-client-key.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "enclavectl call: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["transcript"], transcript.as_str(), "{result}");
    assert_eq!(result["audio"]["encoding"], "mulaw", "{result}");
    assert!(
        standin.last().unwrap().auth_ok,
        "the stand-in got the wrong key"
    );
    let port = call_addr.rsplit(':').next().unwrap();
    // curl (OpenSSL) as the platform's gateway: mutual TLS with the
    // platform client certificate; without it, the call route answers 401.
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&ca)
        .args(["--resolve", &format!("call.enclave.local:{port}:127.0.0.1")])
        .args(["-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
        .arg(format!("https://call.enclave.local:{port}/v1/calls"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with("\n401") && text.contains("auth.client_certificate"),
        "curl without a client certificate: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "--cacert"])
        .arg(&ca)
        .arg("--cert")
        .arg(pki.path("platform-client.pem"))
        .arg("--key")
        .arg(pki.path("platform-client-key.pem"))
        .args(["--resolve", &format!("call.enclave.local:{port}:127.0.0.1")])
        .arg(format!("https://call.enclave.local:{port}/health/enclave"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let health: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(health["enclave"]["enclave_ready"], true, "{health}");
    // curl posts a call the same way (multipart from files).
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "--cacert"])
        .arg(&ca)
        .arg("--cert")
        .arg(pki.path("platform-client.pem"))
        .arg("--key")
        .arg(pki.path("platform-client-key.pem"))
        .args(["--resolve", &format!("call.enclave.local:{port}:127.0.0.1")])
        .args(["-F", &format!("metadata={metadata};type=application/json")])
        .arg("-F")
        .arg(format!("audio=@{};type=audio/wav", wav.display()))
        .arg(format!("https://call.enclave.local:{port}/v1/calls"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["transcript"], transcript.as_str(), "{result}");
    let client = platform_client(&pki, &format!("tcp://{call_addr}"), &bao.serving_ca_pem());
    let metrics = String::from_utf8(client.request("GET", "/metrics", &[], b"").body).unwrap();
    assert!(
        metrics.contains("enclave_calls_processed_total{agent_type=\"franco\"} 2"),
        "{metrics}"
    );
    // Operator evidence: the measurement sim-psp signed is the one computed
    // from the image files, and REPORT_DATA is the operator binding.
    let nonce = [0x33u8; 32];
    let bundle = guest.command(&format!("evidence {}", hex(&nonce))).unwrap();
    let bundle = wire::EvidenceBundle::from_json(bundle.as_bytes()).unwrap();
    let report = tee_formats::snp::report::AttestationReport::parse(&bundle.evidence).unwrap();
    assert_eq!(hex(&report.measurement), pinned);
    assert_eq!(report.report_data, evidence::operator_report_data(&nonce));
    assert_eq!(guest.command("poweroff").unwrap(), "ok");
    let status = guest.wait_exit(Duration::from_secs(60)).unwrap();
    let console = guest.console();
    assert!(status.success(), "{console}");
    for canary in [
        CANARY,
        TRANSCRIPTION_KEY,
        CANARY_PHONE,
        CANARY_DIGITS,
        CANARY_PHRASE,
    ] {
        assert!(!console.contains(canary), "{canary:?} reached the console");
    }
    // The call's log view only: processed, named by its pseudonym, no
    // transcript prefix.
    assert!(
        console.contains("msg=\"call processed\"") && console.contains("\\\"call\\\":\\\"id:"),
        "the call's log view is logged: {console}"
    );
    assert!(
        !console.contains("[MASKED - ENCLAVE ONLY]"),
        "no transcript prefix on the console: {console}"
    );
    // Everything the untrusted proxy forwarded (both ways, verifier and
    // Vault): ciphertext only; the secret never crossed it in the clear.
    let mut seen = 0;
    for f in std::fs::read_dir(guest.dir().join("tap"))
        .unwrap()
        .flatten()
    {
        let bytes = std::fs::read(f.path()).unwrap();
        seen += bytes.len();
        for canary in [
            CANARY,
            TRANSCRIPTION_KEY,
            CANARY_PHONE,
            CANARY_DIGITS,
            CANARY_PHRASE,
        ] {
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{canary:?} crossed the proxy in the clear"
            );
        }
        assert!(
            !bytes.windows(4).any(|w| w == b"RIFF"),
            "the call audio crossed the proxy in the clear"
        );
        assert!(
            !bytes.windows(6).any(|w| w == b"\"jwt\":"),
            "the Vault login crossed the proxy in the clear"
        );
    }
    assert!(
        seen > 4096,
        "the proxy recorded only {seen} bytes: the check would be vacuous"
    );
    drop(guest);

    // One byte more in the measured configuration: a different image.
    let img2 = TempDir::new("img");
    let changed = build_image(
        img2.path(),
        &vm_config(&pki, &format!("{TEST_HOOKS}#")),
        None,
    );
    let a = std::fs::read(&initrd).unwrap();
    let b = std::fs::read(&changed).unwrap();
    assert_ne!(a, b);
    assert!(
        b.len() >= a.len() && b.len() - a.len() <= 4,
        "one more byte, at most one more 4-byte cpio pad"
    );
    let mut guest = Guest::boot_with(&changed, "", |d| {
        host_side(d, &changed, &verifier, &bao, standin.port)
    });
    let status = guest.wait_exit(Duration::from_secs(240)).unwrap();
    let console = guest.console();
    assert!(status.success(), "clean power-off expected:\n{console}");
    assert!(
        console.contains("verifier denied the evidence: check snp.measurement"),
        "{console}"
    );
    assert!(!console.contains("secrets provisioned"), "{console}");
}
