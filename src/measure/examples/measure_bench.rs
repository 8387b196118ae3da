//! Times `snp::launch_digests` for vCPU counts 1..=N on one input and prints the digests.
//!
//! ```text
//! cargo run --release -p measure --example measure_bench -- \
//!     [--ovmf /usr/share/ovmf/OVMF.fd] [--kernel F] [--initrd F] [--append S] \
//!     [--vcpu-type EPYC-v4] [--max-vcpus 64] [--rounds 10]
//! ```
//!
//! Compare with `time sev-snp-measure --mode snp --vcpus=N …` (one count per run).

use std::error::Error;
use std::time::{Duration, Instant};

use measure::snp::{launch_digests, Inputs, VcpuType};

fn main() -> Result<(), Box<dyn Error>> {
    let mut ovmf_path = "/usr/share/ovmf/OVMF.fd".to_owned();
    let (mut kernel_path, mut initrd_path, mut cmdline) = (None, None, None);
    let (mut vcpu_type, mut max_vcpus, mut rounds) = (VcpuType::EpycV4, 64u32, 10u32);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--ovmf" => ovmf_path = value,
            "--kernel" => kernel_path = Some(value),
            "--initrd" => initrd_path = Some(value),
            "--append" => cmdline = Some(value),
            "--vcpu-type" => vcpu_type = value.parse()?,
            "--max-vcpus" => max_vcpus = value.parse()?,
            "--rounds" => rounds = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    let ovmf = std::fs::read(&ovmf_path).map_err(|e| format!("reading {ovmf_path}: {e}"))?;
    let kernel = kernel_path.map(std::fs::read).transpose()?;
    let initrd = initrd_path.map(std::fs::read).transpose()?;
    let inputs = Inputs {
        kernel: kernel.as_deref(),
        initrd: initrd.as_deref(),
        cmdline: cmdline.as_deref(),
        ..Inputs::new(&ovmf, vcpu_type)
    };

    let mut best = Duration::MAX;
    let mut digests = Vec::new();
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        digests = launch_digests(&inputs, 1..=max_vcpus)?;
        best = best.min(t.elapsed());
    }
    for (n, d) in &digests {
        println!("{n:4} {}", measure::to_hex(d));
    }
    eprintln!(
        "launch_digests(1..={max_vcpus}) on {} ({} KiB): best of {rounds}: {:.3} ms",
        ovmf_path,
        ovmf.len() / 1024,
        best.as_secs_f64() * 1e3
    );
    Ok(())
}
