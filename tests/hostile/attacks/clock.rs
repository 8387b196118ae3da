//! The host owns the guest's clock: it can stop it (pause the VM), and the
//! guest resumes believing less time has passed than really did.

use std::time::{Duration, Instant};

use enclave_tests::qemu::Guest;
use enclave_tests::stack::{
    platform_client, sim_policy, vm_config, vm_host_side, OpenBao, Pki, SimPsp, Verifier,
};
use enclave_tests::transcription::TranscriptionStandIn;
use enclave_tests::{build_image, TempDir};

use crate::rig::{self, PEPPER, RETELL_KEY, TRANSCRIPTION_KEY};
use crate::Verdict;

/// The real guest in QEMU (TCG: its clocks stop with its vCPUs). Once it
/// is attested, the host pauses the VM for longer than the trust lifetime
/// left, then resumes it: the guest believes its token still has most of
/// its life. No call may be answered after the true trust deadline: the
/// first authenticated time the guest sees (the transcription service's
/// Date over pinned TLS) must end trust, and the next renewal re-anchors
/// the clock (drift) and re-attests.
pub fn clock_skew() -> Verdict {
    let dir = TempDir::new("skew");
    let pki = Pki::new();
    let kernel = std::fs::read(enclave_tests::kernel_dir().join("vmlinuz")).unwrap_or_default();
    let img = TempDir::new("skew-img");
    let initrd = build_image(img.path(), &vm_config(&pki, ""), None);
    let measurement: String = measure::sim::sim_launch_digest(
        &kernel,
        &std::fs::read(&initrd).unwrap_or_default(),
        &enclave_tests::qemu::cmdline(""),
    )
    .iter()
    .map(|b| format!("{b:02x}"))
    .collect();
    let ark = SimPsp::start(
        &dir.path().join("probe.sock"),
        &["--measurement", &measurement],
    )
    .ark_sha256;
    let verifier = Verifier::start(
        &pki,
        &sim_policy(&ark, &[&measurement]),
        dir.path(),
        &["--token-ttl-secs", "12"],
    );
    let bao = OpenBao::start(&pki);
    bao.setup(
        &verifier,
        &pki,
        &[&measurement],
        "sim",
        &[
            ("ENCLAVE_SEED_TRANSCRIPTION_API_KEY", TRANSCRIPTION_KEY),
            ("ENCLAVE_SEED_RETELL_API_KEY", RETELL_KEY),
            ("ENCLAVE_SEED_PII_PEPPER", PEPPER),
        ],
    );
    let standin = TranscriptionStandIn::start(
        &pki.path("transcribe.pem"),
        &pki.path("transcribe-key.pem"),
        TRANSCRIPTION_KEY,
        &rig::transcript(),
    );
    let mut guest = Guest::boot_with(&initrd, "", |d| {
        vm_host_side(d, &initrd, &verifier, &bao, standin.port)
    });
    if let Err(e) = guest.wait_ready(Duration::from_secs(45)) {
        return Verdict::broken(format!(
            "the guest did not boot: {}",
            e.lines().next().unwrap_or("")
        ));
    }
    let call_addr = std::fs::read_to_string(guest.dir().join("call.addr"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let client = platform_client(&pki, &format!("tcp://{call_addr}"), &bao.serving_ca_pem());
    eprintln!("clock-skew: guest ready, calls at {call_addr}");
    if rig::call(&client, "before").0 != 200 {
        return Verdict::broken(
            "no call answered before the pause: the attack would prove nothing",
        );
    }
    let Some(deadline) = rig::trust_deadline(&client) else {
        return Verdict::broken("no trust deadline in health");
    };
    // Pause across the deadline.
    let pause = (deadline - rig::unix_now() + 4.0).max(1.0);
    if guest.pause().is_err() {
        return Verdict::broken("QMP stop failed");
    }
    eprintln!("clock-skew: paused for {pause:.1} s");
    std::thread::sleep(Duration::from_secs_f64(pause));
    if guest.resume().is_err() {
        return Verdict::broken("QMP cont failed");
    }
    let resumed = rig::unix_now();
    eprintln!("clock-skew: resumed");
    // After the pause, short per-connection timeouts: a path the pause
    // wedged must end this attack with a figure, not run it into its budget.
    let client = platform_client(&pki, &format!("tcp://{call_addr}"), &bao.serving_ca_pem())
        .with_timeout(Duration::from_secs(5));
    // Calls after the true deadline: none may be answered.
    let mut answered_after = 0;
    let mut statuses = Vec::new();
    for n in 0..5 {
        let (status, _) = rig::call(&client, &format!("after-{n}"));
        if status == 200 && rig::unix_now() > deadline {
            answered_after += 1;
        }
        statuses.push(status);
    }
    let withdrawn = rig::health(&client)
        .map(|(_, h)| {
            h["lifecycle"]["withdrawn"]["kind"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    eprintln!("clock-skew: after-resume calls {statuses:?}, withdrawn as {withdrawn:?}");
    let t = Instant::now();
    let back = rig::wait_health(&client, 25, |h| h["attestation"]["valid"] == true).is_some();
    let figure = format!(
        "VM paused {pause:.0} s across the trust deadline: {answered_after} calls answered after it (statuses {statuses:?}); withdrawn as {withdrawn:?} {:.1} s after resume; {}",
        rig::unix_now() - resumed - t.elapsed().as_secs_f64(),
        if back { format!("re-attested {:.1} s later", t.elapsed().as_secs_f64()) } else { "never re-attested".into() }
    );
    drop(guest);
    Verdict::judge(answered_after == 0 && withdrawn == "clock" && back, figure)
}
