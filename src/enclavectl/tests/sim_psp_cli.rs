//! `enclavectl sim-psp` starts, prints its start-up lines and answers over
//! Unix sockets (process mode and the host side of hybrid vsock).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use sim_psp::wire::{CertKind, Tee};

const EXE: &str = env!("CARGO_BIN_EXE_enclavectl");

/// The state directory the sim-psp crate's tests also use (same target
/// directory): its RSA-4096 keys are generated once, by whoever comes first.
fn state_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sim-psp-state")
}

fn scratch(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sim-psp-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `enclavectl sim-psp`, killed on drop.
struct SimPsp {
    child: Child,
    lines: Vec<String>,
}

impl SimPsp {
    /// Starts it and reads stdout up to `sim-psp ready` (key generation in a
    /// new state directory takes minutes in a debug build).
    fn start(args: &[&str]) -> SimPsp {
        let mut child = Command::new(EXE)
            .arg("sim-psp")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        let mut psp = SimPsp {
            child,
            lines: Vec::new(),
        };
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(600))
                .expect("sim-psp did not print `sim-psp ready`");
            let ready = line == "sim-psp ready";
            psp.lines.push(line);
            if ready {
                return psp;
            }
        }
    }

    /// The value of the start-up line `sim-psp <key> <value>`, for each such line.
    fn values(&self, key: &str) -> Vec<String> {
        let prefix = format!("sim-psp {key} ");
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for SimPsp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ATTESTATION_REPORT fields by offset (tee-formats.md §1.1).
fn measurement_of(report: &[u8]) -> &[u8] {
    &report[0x090..0x0C0]
}

fn report_data_of(report: &[u8]) -> &[u8] {
    &report[0x050..0x090]
}

fn policy_of(report: &[u8]) -> u64 {
    u64::from_le_bytes(report[0x008..0x010].try_into().unwrap())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn starts_prints_its_lines_and_answers_on_unix_and_hybrid_sockets() {
    let dir = scratch("launch");
    std::fs::write(dir.join("vmlinuz"), b"a kernel").unwrap();
    std::fs::write(dir.join("initrd"), b"an initramfs").unwrap();
    let cmdline = "console=ttyS0 enclave.tee=sim";
    let unix = dir.join("psp.sock");
    let hybrid = dir.join("vm.vsock_9100");
    let state = state_dir();
    let psp = SimPsp::start(&[
        "--state",
        state.to_str().unwrap(),
        "--kernel",
        dir.join("vmlinuz").to_str().unwrap(),
        "--initrd",
        dir.join("initrd").to_str().unwrap(),
        "--cmdline",
        cmdline,
        "--listen",
        &format!("unix://{}", unix.display()),
        "--listen",
        &format!("hybrid://{}", hybrid.display()),
    ]);

    // Exactly these lines, in this order.
    let keys: Vec<_> = psp
        .lines
        .iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        keys,
        [
            "sim-psp ark-sha256",
            "sim-psp measurement",
            "sim-psp listening",
            "sim-psp listening",
            "sim-psp ready"
        ]
    );
    let ark_sha256 = psp.values("ark-sha256").remove(0);
    assert_eq!(
        std::fs::read_to_string(state.join("ark.sha256")).unwrap(),
        format!("{ark_sha256}\n")
    );
    let measurement = measure::sim::sim_launch_digest(b"a kernel", b"an initramfs", cmdline);
    assert_eq!(psp.values("measurement"), [hex(&measurement)]);
    assert_eq!(
        psp.values("listening"),
        [
            format!("unix://{}", unix.display()),
            format!("hybrid://{}", hybrid.display())
        ]
    );

    for socket in [&unix, &hybrid] {
        let bundle = sim_psp::client::request(socket, &[0x33; 64], 0).unwrap();
        assert_eq!(bundle.tee, Tee::Sim);
        assert_eq!(bundle.evidence.len(), 0x4A0);
        assert_eq!(measurement_of(&bundle.evidence), measurement);
        assert_eq!(report_data_of(&bundle.evidence), [0x33; 64]);
        let ark = bundle.certificate(CertKind::Ark).unwrap();
        assert_eq!(
            hex(&Sha256::digest(ark)),
            ark_sha256,
            "the bundle's ARK is the one printed"
        );
    }
    drop(psp);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_given_measurement_and_policy_are_reported_as_they_are() {
    let dir = scratch("measurement");
    let socket = dir.join("psp.sock");
    let measurement = "c0ffee".repeat(16);
    let psp = SimPsp::start(&[
        "--state",
        state_dir().to_str().unwrap(),
        "--measurement",
        &measurement,
        "--policy",
        "0xb0000",
        "--listen",
        &format!("unix://{}", socket.display()),
    ]);
    assert_eq!(psp.values("measurement"), [measurement.as_str()]);
    let bundle = sim_psp::client::request(&socket, &[0; 64], 0).unwrap();
    assert_eq!(hex(measurement_of(&bundle.evidence)), measurement);
    assert_eq!(policy_of(&bundle.evidence), 0xb0000);
    // A refused request does not stop it.
    assert!(sim_psp::client::request(&socket, &[0; 64], 9).is_err());
    assert!(sim_psp::client::request(&socket, &[0; 64], 3).is_ok());
    drop(psp);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refuses_bad_arguments_with_a_reason() {
    let dir = scratch("args");
    let state = dir.join("state");
    let listen = format!("unix://{}", dir.join("psp.sock").display());
    let run = |args: &[&str]| {
        let out = Command::new(EXE)
            .arg("sim-psp")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let s = state.to_str().unwrap();
    for (args, code, why) in [
        (
            vec!["--state", s, "--measurement", "abcd", "--listen", &listen],
            1,
            "96 hex digits",
        ),
        (
            vec![
                "--state",
                s,
                "--kernel",
                "/nonexistent/k",
                "--initrd",
                "/nonexistent/i",
                "--cmdline",
                "",
                "--listen",
                &listen,
            ],
            1,
            "cannot read /nonexistent/k",
        ),
        (vec!["--state", s, "--listen", &listen], 2, "--kernel"),
        (
            vec!["--state", s, "--kernel", "/k", "--listen", &listen],
            2,
            "--initrd",
        ),
        (
            vec![
                "--state",
                s,
                "--measurement",
                &"00".repeat(48),
                "--listen",
                "tcp://127.0.0.1:1",
            ],
            2,
            "unknown scheme",
        ),
        (
            vec![
                "--state",
                s,
                "--measurement",
                &"00".repeat(48),
                "--policy",
                "0x10000",
                "--listen",
                &listen,
            ],
            1,
            "bit 17",
        ),
    ] {
        let (got, stderr) = run(&args);
        assert_eq!(got, Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
