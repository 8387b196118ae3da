//! The main job: the whole system on this machine. A development PKI, the
//! simulated PSP, the verifier, a real OpenBao configured by
//! scripts/openbao-setup, the host proxy; the image is built, its launch
//! measurement pinned in the verifier policy and the OpenBao role, and the
//! guest boots under QEMU, attests, logs in and holds its secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use enclave_tests::qemu::{cmdline, Guest};
use enclave_tests::stack::{
    enclavectl, sim_policy, vm_config, vm_host_side, OpenBao, Pki, SimPsp, Verifier,
};
use enclave_tests::transcription::TranscriptionStandIn;
use enclave_tests::{build_image, kernel_dir, TempDir};

const STANDIN_KEY: &str = "demo-transcription-key";
const SAMPLE_TRANSCRIPT: &str = "Questa è una trascrizione di prova: il cliente chiede la consegna della spedizione SHP-1042 domani mattina.";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() {
    let dir = TempDir::new("demo");
    println!("== development PKI, image, launch measurement");
    let pki = Pki::new();
    let img = TempDir::new("img");
    let initrd = build_image(img.path(), &vm_config(&pki, ""), None);
    let kernel = std::fs::read(kernel_dir().join("vmlinuz")).unwrap();
    let measurement = hex(&measure::sim::sim_launch_digest(
        &kernel,
        &std::fs::read(&initrd).unwrap(),
        &cmdline(""),
    ));
    println!(
        "image {} ({} bytes), simulation launch measurement {measurement}",
        initrd.display(),
        std::fs::metadata(&initrd).unwrap().len()
    );

    println!("== verifier (policy pins the measurement) and OpenBao (role pins it too)");
    let ark = SimPsp::start(
        &dir.path().join("probe.sock"),
        &["--measurement", &measurement],
    )
    .ark_sha256;
    let verifier = Verifier::start(&pki, &sim_policy(&ark, &[&measurement]), dir.path(), &[]);
    let bao = OpenBao::start(&pki);
    bao.setup(
        &verifier,
        &pki,
        &[&measurement],
        "sim",
        &[("ENCLAVE_SEED_TRANSCRIPTION_API_KEY", STANDIN_KEY)],
    );
    // The transcription API is a third-party SaaS: a local stand-in with its
    // published request and response shapes, checking the key it receives.
    let standin = TranscriptionStandIn::start(
        &pki.path("transcribe.pem"),
        &pki.path("transcribe-key.pem"),
        STANDIN_KEY,
        SAMPLE_TRANSCRIPT,
    );
    println!("verifier {}  OpenBao {}", verifier.url, bao.addr);

    println!("== booting the guest under QEMU (TCG) with sim-psp and the proxy");
    let mut guest = Guest::boot_with(&initrd, "", |d| {
        vm_host_side(d, &initrd, &verifier, &bao, standin.port)
    });
    match guest.wait_ready(Duration::from_secs(300)) {
        Ok(ready) => {
            println!(
                "ready after {:.1} s: {ready}",
                guest.started.elapsed().as_secs_f64()
            );
            println!("status: {}", guest.command("status").unwrap_or_default());
            if let Err(e) = sample_call(&guest, &bao, &pki) {
                eprintln!("demo: the sample call failed: {e}");
                let _ = guest.command("poweroff");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("demo: the guest did not get ready: {e}");
            std::process::exit(1);
        }
    }
    println!(
        "poweroff: {}",
        guest.command("poweroff").unwrap_or_default()
    );
    let status = guest.wait_exit(Duration::from_secs(60));
    println!(
        "QEMU exit: {status:?}\n--- guest console ---\n{}",
        guest.console()
    );
    if !matches!(status, Ok(s) if s.success()) {
        std::process::exit(1);
    }
}

/// Processes a sample call the way a platform agent would, through the
/// proxy's ingress with `enclavectl call` presenting the platform's client
/// certificate (mutual TLS), then prints the health document.
fn sample_call(guest: &Guest, bao: &OpenBao, pki: &Pki) -> Result<(), String> {
    let call_addr =
        std::fs::read_to_string(guest.dir().join("call.addr")).map_err(|e| e.to_string())?;
    let ca = guest.dir().join("serving-ca.pem");
    std::fs::write(&ca, bao.serving_ca_pem()).map_err(|e| e.to_string())?;
    let wav = guest.dir().join("sample-call.wav");
    std::fs::write(&wav, enclave_tests::https::wav("mulaw", 8000, 5.0))
        .map_err(|e| e.to_string())?;
    let metadata = r#"{"call_id":"demo-call-1","shipment_id":"SHP-1042","agent_type":"sara","caller_phone":"+39 333 123 4567","language":"it"}"#;
    let addr = format!("tcp://{}", call_addr.trim());
    println!("== sample call: enclavectl call sample-call.wav --metadata '{metadata}' --addr {addr} --ca serving-ca.pem --cert platform-client.pem --key platform-client-key.pem");
    let run = |args: &[&str]| -> Result<(), String> {
        let out = std::process::Command::new(enclavectl())
            .args(args)
            .arg("--addr")
            .arg(&addr)
            .arg("--ca")
            .arg(&ca)
            .arg("--cert")
            .arg(pki.path("platform-client.pem"))
            .arg("--key")
            .arg(pki.path("platform-client-key.pem"))
            .output()
            .map_err(|e| e.to_string())?;
        println!("{}", String::from_utf8_lossy(&out.stdout));
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    };
    run(&["call", &wav.display().to_string(), "--metadata", metadata])?;
    println!("== health: enclavectl call --health");
    run(&["call", "--health"])
}
