//! The Azure vTPM stand-ins: swtpm (Debian's software TPM, started here and
//! stopped by PID), provisioned with tpm2-tools the way Azure's HCL lays the
//! vTPM out, and the SIMULATED paravisor in front of it (`enclavectl
//! sim-paravisor`). tpm2-tools also serve as the independent oracle of what
//! the guest's hand-written TPM commands produce.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::children::SpawnDying;
use crate::stack::{enclavectl, sim_state_dir, Proc};
use crate::TempDir;

/// A tool of the Debian packages swtpm / swtpm-tools / tpm2-tools.
fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is missing: install the Debian packages swtpm swtpm-tools tpm2-tools (scripts/install-deps does)");
}

/// swtpm on a Unix socket (raw TPM 2.0 commands), its control channel at
/// `<socket>.ctrl` (where tpm2-tools' swtpm TCTI expects it).
pub struct Swtpm {
    pub proc: Proc,
    pub socket: PathBuf,
    pub dir: TempDir,
}

impl Swtpm {
    /// Starts a fresh TPM (new state), powered on and started up.
    pub fn start() -> Swtpm {
        let dir = TempDir::new("swtpm");
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        let socket = dir.path().join("tpm.sock");
        let child = Command::new(tool("swtpm"))
            .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
            .arg("--tpmstate")
            .arg(format!("dir={}", state.display()))
            .arg("--server")
            .arg(format!("type=unixio,path={}", socket.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}.ctrl", socket.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("swtpm.log")).unwrap())
            .spawn_dying()
            .unwrap();
        let tpm = Swtpm {
            proc: Proc::from_child(child),
            socket,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !tpm.socket.exists()
            || !tpm
                .try_tool("tpm2_getcap", &["properties-fixed"])
                .status
                .success()
        {
            assert!(
                Instant::now() < deadline,
                "swtpm did not start: {}",
                std::fs::read_to_string(tpm.dir.path().join("swtpm.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        tpm
    }

    /// `unix://` address of its command socket.
    pub fn addr(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn try_tool(&self, name: &str, args: &[&str]) -> Output {
        Command::new(tool(name))
            .args(args)
            .env(
                "TPM2TOOLS_TCTI",
                format!("swtpm:path={}", self.socket.display()),
            )
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// Runs a tpm2-tools command against this TPM; its stdout.
    pub fn tpm2(&self, name: &str, args: &[&str]) -> String {
        let out = self.try_tool(name, args);
        assert!(
            out.status.success(),
            "{name} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Provisions the vTPM as Azure's HCL lays it out: the attestation key,
    /// an RSA-2048 restricted signing key with RSASSA/SHA-256, persisted at
    /// 0x81000003; NV 0x01400001 for the HCL report, defined by the platform
    /// hierarchy (PPWRITE: the guest cannot write it), readable by the owner
    /// (swtpm allows at most 2048 bytes; Azure's index is 2600).
    pub fn provision_azure(&self) {
        self.tpm2(
            "tpm2_createprimary",
            &[
                "-Q",
                "-C",
                "e",
                "-g",
                "sha256",
                "-G",
                "rsa2048:rsassa-sha256:null",
                "-a",
                "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign|noda",
                "-c",
                "ak.ctx",
            ],
        );
        self.tpm2(
            "tpm2_evictcontrol",
            &["-Q", "-C", "o", "-c", "ak.ctx", "0x81000003"],
        );
        self.tpm2("tpm2_flushcontext", &["-t"]);
        self.tpm2(
            "tpm2_nvdefine",
            &[
                "0x01400001",
                "-C",
                "p",
                "-s",
                "2048",
                "-a",
                "ppwrite|ppread|ownerread|authread|platformcreate|no_da",
            ],
        );
    }

    /// Extends SHA-256 PCR `pcr` with `digest` (what a measured boot does).
    pub fn extend(&self, pcr: u32, digest: &[u8; 32]) {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.tpm2("tpm2_pcrextend", &[&format!("{pcr}:sha256={hex}")]);
    }

    /// The 24 SHA-256 PCR values, as tpm2_pcrread prints them.
    pub fn pcrs(&self) -> Vec<String> {
        let out = self.tpm2(
            "tpm2_pcrread",
            &["sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23"],
        );
        let mut values = vec![String::new(); 24];
        for line in out.lines() {
            // "    0 : 0xABCD…", "    11: 0xABCD…"
            if let Some((i, v)) = line.split_once(':') {
                if let (Ok(i), Some(v)) = (i.trim().parse::<usize>(), v.trim().strip_prefix("0x")) {
                    values[i] = v.to_lowercase();
                }
            }
        }
        values
    }

    /// The AK's modulus, hex, from tpm2_readpublic.
    pub fn ak_modulus(&self) -> String {
        let out = self.tpm2("tpm2_readpublic", &["-c", "0x81000003"]);
        out.lines()
            .find_map(|l| l.trim().strip_prefix("rsa: "))
            .map(str::to_lowercase)
            .expect("tpm2_readpublic prints the modulus")
    }

    /// Writes the AK's public key as PEM into the TPM's directory; its path.
    pub fn ak_pem(&self) -> PathBuf {
        self.tpm2(
            "tpm2_readpublic",
            &["-Q", "-c", "0x81000003", "-f", "pem", "-o", "ak.pem"],
        );
        self.dir.path().join("ak.pem")
    }

    /// A path in the TPM's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `enclavectl sim-paravisor` in front of a provisioned swtpm.
pub struct Paravisor {
    pub proc: Proc,
    /// Where the guest's TPM commands go (`tee.tpm`).
    pub tpm: PathBuf,
    /// Where the simulation chain is served (`tee.azure_certs`).
    pub certs: PathBuf,
    pub ark_sha256: String,
    pub measurement: String,
}

impl Paravisor {
    pub fn start(swtpm: &Swtpm, dir: &Path, measurement: &str) -> Paravisor {
        let tpm = dir.join("guest-tpm.sock");
        let certs = dir.join("certs.sock");
        let mut child = Command::new(enclavectl())
            .arg("sim-paravisor")
            .arg("--state")
            .arg(sim_state_dir())
            .args(["--measurement", measurement, "--tpm", &swtpm.addr()])
            .arg("--listen")
            .arg(format!("unix://{}", tpm.display()))
            .arg("--certs")
            .arg(format!("unix://{}", certs.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn_dying()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line == "sim-paravisor ready";
            lines.push(line);
            if done {
                break;
            }
        }
        assert!(
            lines.last().is_some_and(|l| l == "sim-paravisor ready"),
            "sim-paravisor did not start: {lines:?}"
        );
        let field = |key: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(&format!("sim-paravisor {key} ")))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        Paravisor {
            ark_sha256: field("ark-sha256"),
            measurement: field("measurement"),
            tpm,
            certs,
            proc: Proc::from_child(child),
        }
    }
}

/// A verifier policy that accepts the simulated paravisor's evidence of
/// `measurement` with PCR `pcr` = `value` (development only: it accepts the
/// simulation chain).
pub fn sim_azure_policy(ark_sha256: &str, measurement: &str, pcr: u32, value: &str) -> String {
    format!(
        "[snp]\nallowed = false\nmin_reported_tcb = {{ bootloader = 4, tee = 0, snp = 24, microcode = 217 }}\n\n\
         [sim]\nallowed = true\nark_sha256 = [\"{ark_sha256}\"]\n\n\
         [azure]\nallowed = true\n\n[azure.pcrs]\n{pcr} = [\"{value}\"]\n\n\
         [azure.snp]\nallowed = true\ncrl = \"if-present\"\nmeasurements = [\"{measurement}\"]\n\n\
         [token]\nmax_ttl_secs = 300\n"
    )
}
