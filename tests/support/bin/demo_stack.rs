//! The main job: the whole system on this machine. A development PKI, the
//! simulated PSP, the verifier, a real OpenBao configured by
//! scripts/openbao-setup, the host proxy; the image is built, its launch
//! measurement pinned in the verifier policy and the OpenBao role, and the
//! guest boots under QEMU, attests, logs in and holds its secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use enclave_tests::qemu::{cmdline, Guest};
use enclave_tests::stack::{sim_policy, vm_config, vm_host_side, OpenBao, Pki, SimPsp, Verifier};
use enclave_tests::{build_image, kernel_dir, TempDir};

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
    let measurement = hex(&measure::sim::sim_launch_digest(&kernel, &std::fs::read(&initrd).unwrap(), &cmdline("")));
    println!("image {} ({} bytes), simulation launch measurement {measurement}", initrd.display(), std::fs::metadata(&initrd).unwrap().len());

    println!("== verifier (policy pins the measurement) and OpenBao (role pins it too)");
    let ark = SimPsp::start(&dir.path().join("probe.sock"), &["--measurement", &measurement]).ark_sha256;
    let verifier = Verifier::start(&pki, &sim_policy(&ark, &[&measurement]), dir.path(), &[]);
    let bao = OpenBao::start(&pki);
    bao.setup(&verifier, &pki, &[&measurement], "sim", &[]);
    println!("verifier {}  OpenBao {}", verifier.url, bao.addr);

    println!("== booting the guest under QEMU (TCG) with sim-psp and the proxy");
    let mut guest = Guest::boot_with(&initrd, "", |d| vm_host_side(d, &initrd, &verifier, &bao));
    match guest.wait_ready(Duration::from_secs(300)) {
        Ok(ready) => {
            println!("ready after {:.1} s: {ready}", guest.started.elapsed().as_secs_f64());
            println!("status: {}", guest.command("status").unwrap_or_default());
        }
        Err(e) => {
            eprintln!("demo: the guest did not get ready: {e}");
            std::process::exit(1);
        }
    }
    println!("poweroff: {}", guest.command("poweroff").unwrap_or_default());
    let status = guest.wait_exit(Duration::from_secs(60));
    println!("QEMU exit: {status:?}\n--- guest console ---\n{}", guest.console());
    if !matches!(status, Ok(s) if s.success()) {
        std::process::exit(1);
    }
}
