//! AWS Nitro Enclaves without Nitro hardware: the EIF is built reproducibly
//! and its PCRs computed as the format defines them (checked here by hand
//! with ring's SHA-384 over the section bytes); then the guest, in process
//! mode, asks a SIMULATED NSM (`enclavectl sim-nsm`, reporting that EIF's
//! PCRs) for its attestation document, the real verifier appraises it as
//! `nitro-sim` under a development policy pinning the simulation root and
//! the PCRs, and a real OpenBao releases the secrets; a policy with another
//! PCR0 denies `nitro.pcr0` and nothing is released.
//!
//! What this cannot cover: the real `/dev/nsm` ioctl and the PCRs a Nitro
//! hypervisor reports for our EIF (no hardware here). The verifier's
//! appraisal of real AWS-signed documents is covered by
//! `src/appraisal/tests/nitro.rs` on the fixtures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use enclave_tests::process::{boot, Boot};
use enclave_tests::stack::{enclavectl, guest_config, OpenBao, Pki, Proc, Verifier, TEST_HOOKS};
use enclave_tests::TempDir;

const CANARY: &str = "canary-nitro-hume-5e2b";
const CMDLINE: &str = "console=ttyS0 reboot=k panic=1 pci=off nomodules";
const EPOCH: &str = "1735689600";

fn kernel() -> PathBuf {
    let p = PathBuf::from("/opt/enclave-init/kernel/current/vmlinuz");
    assert!(
        p.is_file(),
        "{} missing (scripts/install-deps)",
        p.display()
    );
    p
}

/// Writes an init and a configuration into `dir` and builds an EIF there
/// with `enclavectl image build --format eif`, run from `dir`.
fn build_eif(dir: &Path) -> Vec<u8> {
    std::fs::write(
        dir.join("init"),
        b"\x7fELF not really an init, the EIF does not care",
    )
    .unwrap();
    std::fs::write(
        dir.join("config.toml"),
        b"[host]\nready = \"vsock://3:9000\"\n",
    )
    .unwrap();
    let out = Command::new(enclavectl())
        .args(["image", "build", "--format", "eif", "--init", "init"])
        .args([
            "--config",
            "config.toml",
            "--cmdline",
            CMDLINE,
            "--out",
            "image.eif",
        ])
        .arg("--kernel")
        .arg(kernel())
        .args(["--source-date-epoch", EPOCH])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join("image.eif")).unwrap()
}

fn sha384(parts: &[&[u8]]) -> Vec<u8> {
    let mut c = ring::digest::Context::new(&ring::digest::SHA384);
    for p in parts {
        c.update(p);
    }
    c.finish().as_ref().to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// PCRx = SHA-384(48 zero bytes ‖ SHA-384(content)), the README's rule.
fn pcr(content: &[&[u8]]) -> String {
    hex(&sha384(&[&[0u8; 48], &sha384(content)]))
}

/// The sections of an EIF read straight from the header (548 bytes,
/// big-endian, `section_offsets` at 28 and `section_sizes` at 284, each
/// section behind a 12-byte header whose first u16 is its type): written
/// here from the specification, not with `image::eif`.
fn sections(eif: &[u8]) -> Vec<(u16, &[u8])> {
    let be64 = |at: usize| {
        usize::try_from(u64::from_be_bytes(eif[at..at + 8].try_into().unwrap())).unwrap()
    };
    let n = u16::from_be_bytes([eif[26], eif[27]]) as usize;
    (0..n)
        .map(|i| {
            let (off, size) = (be64(28 + 8 * i), be64(284 + 8 * i));
            let t = u16::from_be_bytes([eif[off], eif[off + 1]]);
            (t, &eif[off + 12..off + 12 + size])
        })
        .collect()
}

/// `enclavectl measure --nitro` lines, as KEY -> HEX.
fn measure(eif: &Path, out_dir: Option<&Path>, sim_root: Option<&str>) -> Vec<(String, String)> {
    let mut c = Command::new(enclavectl());
    c.args(["measure", "--nitro"]).arg(eif);
    if let Some(d) = out_dir {
        c.arg("--out-dir").arg(d);
    }
    if let Some(r) = sim_root {
        c.args(["--nitro-sim-root-sha256", r]);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn the_eif_is_bit_identical_from_two_directories_and_its_pcrs_follow_the_format() {
    let a = TempDir::new("eif-a");
    let b_parent = TempDir::new("eif-b");
    let b = b_parent.path().join("deeper/and-longer");
    std::fs::create_dir_all(&b).unwrap();
    let (eif_a, eif_b) = (build_eif(a.path()), build_eif(&b));
    assert!(eif_a == eif_b, "EIFs differ between build directories");
    assert_eq!(&eif_a[..6], b".eif\x00\x04");

    // Kernel, cmdline, metadata, one ramdisk (our initramfs), in that order.
    let s = sections(&eif_a);
    let types: Vec<u16> = s.iter().map(|(t, _)| *t).collect();
    assert_eq!(types, [1, 2, 5, 3]);
    assert_eq!(s[0].1, std::fs::read(kernel()).unwrap());
    assert_eq!(s[1].1, CMDLINE.as_bytes());
    let (k, c, r) = (s[0].1, s[1].1, s[3].1);
    let want_pcr0 = pcr(&[k, c, r]);
    let want_pcr2 = pcr(&[]);
    let got = measure(&a.path().join("image.eif"), None, None);
    let get = |key: &str| got.iter().find(|(k, _)| k == key).unwrap().1.clone();
    assert_eq!(get("nitro/pcr0"), want_pcr0);
    // One ramdisk: PCR1 measures the same bytes as PCR0, PCR2 nothing.
    assert_eq!(get("nitro/pcr1"), want_pcr0);
    assert_eq!(get("nitro/pcr2"), want_pcr2);
    let pcrs: Vec<u8> = [want_pcr0.clone(), want_pcr0, want_pcr2]
        .iter()
        .flat_map(|h| (0..48).map(move |i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap()))
        .collect();
    assert_eq!(get("nitro/measurement"), hex(&sha384(&[&pcrs])));
}

/// `enclavectl sim-nsm` on a Unix socket, reporting an EIF's PCRs.
struct SimNsm {
    proc: Proc,
    socket: PathBuf,
    root_sha256: String,
}

impl SimNsm {
    fn start(socket: &Path, eif: &Path) -> SimNsm {
        let mut child = Command::new(enclavectl())
            .arg("sim-nsm")
            .arg("--listen")
            .arg(format!("unix://{}", socket.display()))
            .arg("--eif")
            .arg(eif)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut root = None;
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("sim-nsm did not get ready");
            if let Some(r) = line.strip_prefix("sim-nsm root-sha256 ") {
                root = Some(r.to_owned());
            }
            if line == "sim-nsm ready" {
                break;
            }
        }
        SimNsm {
            proc: Proc::from_child(child),
            socket: socket.to_owned(),
            root_sha256: root.expect("no root-sha256 line"),
        }
    }
}

struct Stack {
    pki: Pki,
    nsm: SimNsm,
    verifier: Verifier,
    bao: OpenBao,
    dir: TempDir,
}

/// An EIF, the simulated NSM reporting its PCRs, a development verifier
/// whose policy is `measure --nitro`'s snippet (with `pcr0` replaced by
/// `policy_pcr0` when given), and OpenBao with `measure`'s measurement.
fn stack(policy_pcr0: Option<&str>) -> Stack {
    let dir = TempDir::new("nitro-stack");
    let eif = dir.path().join("image.eif");
    build_eif(dir.path());
    let nsm = SimNsm::start(&dir.path().join("nsm.sock"), &eif);
    let out = dir.path().join("measured");
    let lines = measure(&eif, Some(&out), Some(&nsm.root_sha256));
    let m = lines
        .iter()
        .find(|(k, _)| k == "nitro/measurement")
        .unwrap()
        .1
        .clone();
    let mut policy = std::fs::read_to_string(out.join("verifier-policy.toml")).unwrap();
    assert!(
        policy.contains(&format!("sim_root_sha256 = [\"{}\"]", nsm.root_sha256)),
        "{policy}"
    );
    if let Some(other) = policy_pcr0 {
        let pcr0 = &lines.iter().find(|(k, _)| k == "nitro/pcr0").unwrap().1;
        policy = policy.replace(
            &format!("pcr0 = [\"{pcr0}\"]"),
            &format!("pcr0 = [\"{other}\"]"),
        );
        assert!(policy.contains(other));
    }
    policy.push_str("\n[token]\nmax_ttl_secs = 300\n");
    let pki = Pki::new();
    let verifier = Verifier::start(&pki, &policy, dir.path(), &[]);
    let bao = OpenBao::start(&pki);
    bao.setup(
        &verifier,
        &pki,
        &[&m],
        "nitro-sim",
        &[("ENCLAVE_SEED_HUME_API_KEY", CANARY)],
    );
    Stack {
        pki,
        nsm,
        verifier,
        bao,
        dir,
    }
}

/// A process-mode guest configuration whose evidence comes from the
/// simulated NSM.
fn nitro_config(s: &Stack, gdir: &Path) -> String {
    let unused = gdir.join("no-psp.sock");
    let config =
        guest_config(gdir, &unused, Some((&s.verifier, &s.pki)), Some(&s.bao)) + TEST_HOOKS;
    let sim = format!(
        "source = \"sim\"\nsim_psp = \"unix://{}\"\n",
        unused.display()
    );
    assert!(config.contains(&sim), "{config}");
    config.replace(
        &sim,
        &format!(
            "source = \"nitro\"\nnsm = \"unix://{}\"\n",
            s.nsm.socket.display()
        ),
    )
}

fn hmac_hex(key: &[u8; 32], value: &str) -> String {
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        value.as_bytes(),
    );
    hex(tag.as_ref())
}

#[test]
fn a_nitro_guest_attests_through_the_simulated_nsm_and_gets_its_secrets() {
    let s = stack(None);
    let gdir = TempDir::new("nitro-guest");
    let config = nitro_config(&s, gdir.path());
    let (guest, report) = match boot(gdir, &config) {
        Boot::Ready(g, r) => (g, r),
        Boot::Failed { status, stderr } => panic!("guest failed ({status}):\n{stderr}"),
    };
    // The bundle type; the claim is `nitro-sim`, the only tee the OpenBao
    // role binds (`stack`), so the secrets below prove it.
    assert_eq!(report["attested"]["tee"], "nitro", "{report}");
    assert_eq!(report["evidence_source"], "nitro", "{report}");
    let key = [0x17u8; 32];
    assert_eq!(
        guest.command(&report, &format!("secret-hash hume/api-key {}", hex(&key))),
        hmac_hex(&key, CANARY)
    );
    let logs = guest.logs();
    assert!(
        logs.contains("SIMULATION TEE: evidence from the simulated NSM"),
        "{logs}"
    );
    assert!(!logs.contains(CANARY));
    assert_eq!(guest.command(&report, "poweroff"), "ok");
    let _ = &s.dir;
}

#[test]
fn a_policy_pinning_another_pcr0_denies_nitro_pcr0_and_releases_nothing() {
    let other = "ab".repeat(48);
    let s = stack(Some(&other));
    let gdir = TempDir::new("nitro-guest");
    let config = nitro_config(&s, gdir.path());
    match boot(gdir, &config) {
        Boot::Failed { status, stderr } => {
            assert_eq!(status, 1);
            assert!(
                stderr.contains("verifier denied the evidence: check nitro.pcr0"),
                "{stderr}"
            );
            assert!(!stderr.contains(CANARY));
        }
        Boot::Ready(_, r) => panic!("a PCR0 outside the policy got secrets: {r}"),
    }
    let _ = (&s.dir, &s.nsm.proc);
}
