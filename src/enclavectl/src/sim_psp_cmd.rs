//! `enclavectl sim-psp`: the simulated AMD secure processor (development
//! only; its evidence is TEE type `sim`, which no production policy accepts).
//!
//! ```text
//! enclavectl sim-psp --state DIR \
//!     (--kernel F --initrd F --cmdline S | --measurement HEX) \
//!     [--policy 0x30000] --listen ADDR [--listen ADDR …]
//! ```
//!
//! ADDR: `unix:///path` (process mode), `hybrid:///dir/vm.vsock_9100` (the
//! host side of hybrid vsock: a guest's `connect(CID 2, 9100)` through
//! vhost-device-vsock started with `uds-path=/dir/vm.vsock`), or
//! `vsock://any:PORT` (hosts with vhost-vsock).
//!
//! On start it prints, one per line on stdout, then serves until killed:
//!
//! ```text
//! sim-psp ark-sha256 <64 hex>        pin as the policy's sim.ark_sha256
//! sim-psp measurement <96 hex>
//! sim-psp listening <ADDR>           once per --listen
//! sim-psp ready
//! ```
//!
//! State-directory changes (key generation, certificate issuance) and one
//! line per request go to stderr. Keys are generated on the first start with
//! a new state directory: RSA-4096 takes seconds in a release build and one to
//! a few minutes in a debug build.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use sim_psp::{Chain, ListenAddr, Server, SimPsp};

use crate::CmdResult;

/// Arguments of `enclavectl sim-psp`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("launch").required(true).args(["kernel", "measurement"])))]
pub struct Args {
    /// State directory: the simulation keys and certificates (created on
    /// first use, reused afterwards, so the ARK fingerprint stays the same).
    #[arg(long)]
    state: PathBuf,
    /// Kernel the guest was launched with (measured with the initrd and command line).
    #[arg(long, requires_all = ["initrd", "cmdline"])]
    kernel: Option<PathBuf>,
    /// Initramfs the guest was launched with.
    #[arg(long, requires = "kernel")]
    initrd: Option<PathBuf>,
    /// Kernel command line the guest was launched with.
    #[arg(long, requires = "kernel")]
    cmdline: Option<String>,
    /// The launch measurement itself: 96 hex digits (48 bytes).
    #[arg(long, conflicts_with_all = ["kernel", "initrd", "cmdline"])]
    measurement: Option<String>,
    /// Guest POLICY in the reports (bit 17 set, bits 63:26 clear).
    #[arg(long, default_value = "0x30000", value_parser = parse_u64)]
    policy: u64,
    /// Where to listen (repeatable): unix:///PATH, hybrid:///DIR/UDS_PORT or vsock://any:PORT.
    #[arg(long = "listen", required = true)]
    listen: Vec<ListenAddr>,
}

pub fn run(args: Args) -> CmdResult {
    let measurement = match (&args.measurement, &args.kernel, &args.initrd, &args.cmdline) {
        (Some(hex), _, _, _) => parse_measurement(hex)?,
        (None, Some(kernel), Some(initrd), Some(cmdline)) => {
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            };
            measure::sim::sim_launch_digest(&read(kernel)?, &read(initrd)?, cmdline)
        }
        _ => return Err("give --kernel, --initrd and --cmdline, or --measurement".into()),
    };
    // Before the state directory: a new one takes a while to create.
    sim_psp::report::check_policy(args.policy).map_err(|e| with_causes(&e))?;
    if !args.state.join("ark-key.pem").exists() {
        log::info!(state = args.state.display().to_string().as_str(); "sim-psp: creating state: RSA-4096 key generation takes seconds in a release build, one to a few minutes in a debug build");
    }
    let chain = Chain::load_or_create(&args.state).map_err(|e| with_causes(&e))?;
    for change in chain.changes() {
        log::info!(change = change.to_string().as_str(); "sim-psp: state changed");
    }
    let psp = SimPsp::new(chain, measurement)
        .with_policy(args.policy)
        .map_err(|e| with_causes(&e))?;
    let ark_sha256 = psp.ark_sha256();
    let server = Server::bind(Arc::new(psp), &args.listen).map_err(|e| with_causes(&e))?;
    let addrs = server.addrs();
    let handle = server.spawn().map_err(|e| with_causes(&e))?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "sim-psp ark-sha256 {}", crate::hex(&ark_sha256))?;
    writeln!(out, "sim-psp measurement {}", crate::hex(&measurement))?;
    for addr in &addrs {
        writeln!(out, "sim-psp listening {addr}")?;
    }
    writeln!(out, "sim-psp ready")?;
    out.flush()?;
    drop(out);

    handle.wait();
    Ok(ExitCode::SUCCESS)
}

/// 96 hex digits → 48 bytes.
fn parse_measurement(hex: &str) -> Result<[u8; 48], String> {
    let hex = hex.trim();
    let bad = || {
        format!(
            "--measurement must be 96 hex digits (48 bytes), got {:?}",
            hex
        )
    };
    if hex.len() != 96 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 48];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|e| format!("{s:?} is not a number: {e}"))
}

/// The error and its causes, `: `-separated (`main` prints only `Display`).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_measurement_of_96_hex_digits_only() {
        let hex = "ab".repeat(48);
        assert_eq!(parse_measurement(&hex), Ok([0xAB; 48]));
        assert_eq!(parse_measurement(&hex.to_uppercase()), Ok([0xAB; 48]));
        for bad in [
            "ab".repeat(47),
            "ab".repeat(49),
            "zz".repeat(48),
            "é".repeat(48),
            format!("+{}", &hex[1..]),
        ] {
            assert!(parse_measurement(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_policies_in_hex_or_decimal() {
        assert_eq!(parse_u64("0x30000"), Ok(0x30000));
        assert_eq!(parse_u64("196608"), Ok(0x30000));
        assert!(parse_u64("0xzz").is_err());
    }
}
