//! The real parts around the guest, as processes on loopback: OpenBao
//! (`bao server -dev` with TLS), the verifier and the simulated PSP
//! (`enclavectl`). Each is stopped by PID when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::children::SpawnDying;
use crate::{repo_root, tools_dir, TempDir};

/// Everything a child printed: its stdout (before and after readiness) and,
/// where it was piped, its stderr, for tests that search it.
#[derive(Clone, Default)]
pub struct Output(Arc<Mutex<Vec<u8>>>);

impl Output {
    fn push(&self, bytes: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
    }

    /// What was printed so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A child process killed (by PID) on drop.
pub struct Proc {
    child: Child,
    output: Output,
}

impl Proc {
    /// Takes ownership of a child.
    pub fn from_child(child: Child) -> Proc {
        Proc {
            child,
            output: Output::default(),
        }
    }

    /// What it printed so far (empty unless its output was captured: the
    /// simulated PSP's and the verifier's are).
    pub fn output(&self) -> Vec<u8> {
        self.output.bytes()
    }

    /// Kills it now.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it is still running (false once it exited).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The host tools binary (built by `scripts/test`).
pub fn enclavectl() -> PathBuf {
    if let Some(p) = std::env::var_os("ENCLAVECTL") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let p = target.join("debug/enclavectl");
    assert!(
        p.exists(),
        "{} is missing: run cargo build -p enclavectl (scripts/test does)",
        p.display()
    );
    p
}

/// The `bao` binary (scripts/install-deps puts it in the venv).
pub fn bao() -> PathBuf {
    let p = tools_dir().join("venv/bin/bao");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-deps",
        p.display()
    );
    p
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Where the servers' logs go instead of our stderr: `ENCLAVE_CHILD_LOGS`,
/// a directory (the demo sets it, so that its stages and summary are not
/// drowned in the servers' JSON lines); unset, they go to our stderr.
pub fn child_logs() -> Option<PathBuf> {
    std::env::var_os("ENCLAVE_CHILD_LOGS").map(PathBuf::from)
}

/// The stderr of a child whose output is not captured: a file named `name`
/// in [`child_logs`], else ours.
fn child_stderr(name: &str) -> Stdio {
    child_logs()
        .and_then(|d| std::fs::File::create(d.join(name)).ok())
        .map_or_else(Stdio::inherit, Stdio::from)
}

/// Copies a piped stderr into `output` and, unless [`child_logs`] is set,
/// to ours (as if inherited).
fn tee_stderr(child: &mut Child, output: &Output) {
    let Some(mut stderr) = child.stderr.take() else {
        return;
    };
    let output = output.clone();
    let echo = child_logs().is_none();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            if echo {
                let _ = std::io::stderr().write_all(&buf[..n]);
            }
            output.push(&buf[..n]);
        }
    });
}

/// Reads the child's stdout until a line satisfies `done`; every line (the
/// later ones too: the pipe is drained until the child closes it) goes into
/// `output`.
fn read_until(
    child: &mut Child,
    timeout: Duration,
    output: &Output,
    done: impl Fn(&str) -> bool,
) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.push(line.as_bytes());
            sink.push(b"\n");
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let stop = done(&line);
        lines.push(line);
        if stop {
            return lines;
        }
    }
    panic!("process did not get ready; its output: {lines:?}");
}

/// The development PKI (`enclavectl dev-pki`).
pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = TempDir::new("pki");
        let st = Command::new(enclavectl())
            .arg("dev-pki")
            .arg("--out")
            .arg(dir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.path("ca.pem")).unwrap()
    }

    /// The platform's client CA (what a guest pins as `service.client_ca`).
    pub fn platform_ca_pem(&self) -> String {
        std::fs::read_to_string(self.path("platform-ca.pem")).unwrap()
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// `enclavectl sim-psp` on a Unix socket.
pub struct SimPsp {
    pub proc: Proc,
    pub socket: PathBuf,
    pub ark_sha256: String,
    pub measurement: String,
}

/// The simulated PSP's keys persist across runs (RSA-4096 generation is slow).
pub fn sim_state_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("sim-psp-state")
}

impl SimPsp {
    /// Starts it with a given launch measurement (96 hex digits), or with
    /// kernel/initrd/cmdline files via `launch`.
    pub fn start(socket: &Path, launch: &[&str]) -> SimPsp {
        let mut child = Command::new(enclavectl())
            .arg("sim-psp")
            .arg("--state")
            .arg(sim_state_dir())
            .args(launch)
            .arg("--listen")
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn_dying()
            .unwrap();
        let output = Output::default();
        tee_stderr(&mut child, &output);
        let lines = read_until(&mut child, Duration::from_secs(300), &output, |l| {
            l == "sim-psp ready"
        });
        let field = |key: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(&format!("sim-psp {key} ")))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        SimPsp {
            ark_sha256: field("ark-sha256"),
            measurement: field("measurement"),
            socket: socket.to_owned(),
            proc: Proc { child, output },
        }
    }
}

/// A verifier policy for simulation evidence of `measurement`.
pub fn sim_policy(ark_sha256: &str, measurements: &[&str]) -> String {
    let list = measurements
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(", ");
    // sim-psp reports TCB 04000000000018d9 by default (bl 4, tee 0, snp 24,
    // ucode 217: SimTcb::DEFAULT in src/sim-psp/src/chain.rs): the minimum
    // pins it. Tokens live 300 s in
    // these development stacks, an explicit raise of the 60 s cap.
    format!(
        "[snp]\nallowed = false\nmeasurements = [{list}]\ncrl = \"if-present\"\n\
         min_reported_tcb = {{ bootloader = 4, tee = 0, snp = 24, microcode = 217 }}\n\n\
         [tdx]\nallowed = false\n\n\
         [sim]\nallowed = true\nark_sha256 = [\"{ark_sha256}\"]\n\n\
         [token]\nmax_ttl_secs = 300\n"
    )
}

/// `enclavectl verifier` on a loopback port.
pub struct Verifier {
    pub proc: Proc,
    pub url: String,
    pub port: u16,
}

impl Verifier {
    /// A development verifier (`--dev`: simulation policies are accepted),
    /// issuing 300-second tokens unless `extra` names another lifetime.
    pub fn start(pki: &Pki, policy: &str, dir: &Path, extra: &[&str]) -> Verifier {
        Self::start_on(pki, policy, dir, extra, 0)
    }

    /// Like [`Verifier::start`], on a given port (0: any): a verifier
    /// restarted on the same address keeps its issuer URL, which OpenBao's
    /// OIDC discovery points at.
    pub fn start_on(pki: &Pki, policy: &str, dir: &Path, extra: &[&str], port: u16) -> Verifier {
        let mut args = vec!["--dev"];
        if !extra.contains(&"--token-ttl-secs") {
            args.extend(["--token-ttl-secs", "300"]);
        }
        args.extend(extra);
        Self::start_with_on(pki, policy, dir, &args, port)
    }

    /// A verifier with exactly `args` (no --dev: a production verifier).
    pub fn start_with(pki: &Pki, policy: &str, dir: &Path, extra: &[&str]) -> Verifier {
        Self::start_with_on(pki, policy, dir, extra, 0)
    }

    fn start_with_on(pki: &Pki, policy: &str, dir: &Path, extra: &[&str], port: u16) -> Verifier {
        // Every peer here is loopback (guests come through the proxy, as
        // behind HAProxy): the per-source cap would count the whole fleet
        // as one client, so it is raised unless a test sets it.
        let per_source: &[&str] = if extra.contains(&"--max-per-source") {
            &[]
        } else {
            &["--max-per-source", "4096"]
        };
        let policy_path = dir.join(format!("policy-{}.toml", free_port()));
        std::fs::write(&policy_path, policy).unwrap();
        let mut child = Command::new(enclavectl())
            .arg("verifier")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-cert")
            .arg(pki.path("verifier.pem"))
            .arg("--tls-key")
            .arg(pki.path("verifier-key.pem"))
            .arg("--token-key")
            .arg(pki.path("token-key.pk8"))
            .arg("--nonce-key")
            .arg(pki.path("nonce.key"))
            .arg("--policy")
            .arg(&policy_path)
            .args(per_source)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn_dying()
            .unwrap();
        let output = Output::default();
        tee_stderr(&mut child, &output);
        let lines = read_until(&mut child, Duration::from_secs(30), &output, |l| {
            l.starts_with("listening ")
        });
        let url = lines
            .last()
            .and_then(|l| l.strip_prefix("listening "))
            .unwrap_or_default()
            .to_owned();
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Verifier {
            proc: Proc { child, output },
            url,
            port,
        }
    }
}

/// OpenBao: `bao server -dev` with a TLS listener on `port` serving the
/// development PKI's Vault certificate (the dev listener itself stays on
/// another, plain loopback port).
pub struct OpenBao {
    pub proc: Proc,
    pub addr: String,
    pub port: u16,
    pub ca: PathBuf,
    dir: TempDir,
}

impl OpenBao {
    pub fn start_on(pki: &Pki, port: u16) -> OpenBao {
        // One start at a time per test process: a test binary runs its tests
        // in parallel, and several Go servers initialising at once on two
        // cores (each polled with a `bao` CLI, itself a Go program) took
        // over a minute in CI.
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let dir = TempDir::new("bao");
        let config = dir.path().join("listener.hcl");
        std::fs::write(
            &config,
            format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
                pki.path("vault.pem").display(),
                pki.path("vault-key.pem").display()
            ),
        )
        .unwrap();
        let child = Command::new(bao())
            .args(["server", "-dev", "-dev-root-token-id=root"])
            .arg(format!("-dev-listen-address=127.0.0.1:{}", free_port()))
            .arg(format!("-config={}", config.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("bao.log")).unwrap())
            .spawn_dying()
            .unwrap();
        let bao = OpenBao {
            proc: Proc::from_child(child),
            addr: format!("https://127.0.0.1:{port}"),
            port,
            ca: pki.path("ca.pem"),
            dir,
        };
        // The CLI's `status` only once the TLS listener accepts: a TCP
        // connect costs nothing, a CLI run is a Go program's start.
        let deadline = Instant::now() + Duration::from_secs(90);
        let listening = || {
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_millis(200),
            )
            .is_ok()
        };
        while !(listening() && bao.cli(&["status"]).status().is_ok_and(|s| s.success())) {
            assert!(
                Instant::now() < deadline,
                "OpenBao did not start: {}",
                bao.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        bao
    }

    pub fn start(pki: &Pki) -> OpenBao {
        Self::start_on(pki, free_port())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
    }

    /// The CLI, pointed at this server with the root token.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bao());
        c.args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_CACERT", &self.ca)
            .env("BAO_TOKEN", "root")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(&self.ca).unwrap()
    }

    /// The secrets OpenBao holds for guests, as the guest names them
    /// (`path/field` under the `enclave-agents` KV mount that
    /// scripts/openbao-setup seeds), sorted: what a guest reading every
    /// secret it may read ends up holding.
    pub fn seeded_secrets(&self) -> Vec<String> {
        let json = |args: &[&str]| -> serde_json::Value {
            let out = self.cli(args).stdout(Stdio::piped()).output().unwrap();
            assert!(out.status.success(), "bao {args:?} failed");
            serde_json::from_slice(&out.stdout).unwrap()
        };
        let mut names = Vec::new();
        let paths = json(&["kv", "list", "-format=json", "-mount=enclave-agents"]);
        for path in paths.as_array().unwrap() {
            let path = path.as_str().unwrap();
            let secret = json(&["kv", "get", "-format=json", "-mount=enclave-agents", path]);
            for field in secret["data"]["data"].as_object().unwrap().keys() {
                names.push(format!("{path}/{field}"));
            }
        }
        names.sort();
        names
    }

    /// Runs scripts/openbao-setup against this server.
    pub fn setup(
        &self,
        verifier: &Verifier,
        pki: &Pki,
        measurements: &[&str],
        tees: &str,
        seeds: &[(&str, &str)],
    ) {
        self.setup_at(&verifier.url, pki, measurements, tees, seeds);
    }

    /// [`OpenBao::setup`] trusting the verifier issuer at `verifier_url`
    /// (replicas behind a proxy: the proxy's URL).
    pub fn setup_at(
        &self,
        verifier_url: &str,
        pki: &Pki,
        measurements: &[&str],
        tees: &str,
        seeds: &[(&str, &str)],
    ) {
        let mut c = Command::new(repo_root().join("scripts/openbao-setup"));
        c.env("BAO_ADDR", &self.addr)
            .env("BAO_CACERT", &self.ca)
            .env("BAO_TOKEN", "root")
            .env("BAO_CLI", bao())
            .env("ENCLAVE_VERIFIER_URL", verifier_url)
            .env("ENCLAVE_VERIFIER_CA", pki.path("ca.pem"))
            .env("ENCLAVE_CLIENT_CA", pki.path("client-ca.pem"))
            .env("ENCLAVE_MEASUREMENTS", measurements.join(","))
            .env("ENCLAVE_TEE_TYPES", tees);
        for (k, v) in seeds {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "openbao-setup failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Appended to a guest configuration, turns on the keyed secret-hash query
/// on the control channel; such a configuration runs (and is imaged with)
/// the test-hooks build of the guest ([`crate::guest_bin_for`]).
pub const TEST_HOOKS: &str = "\n[test]\nsecret_hash_query = \"on\"\n";

/// A guest configuration for process mode wired to these parts.
pub fn guest_config(
    dir: &Path,
    sim_socket: &Path,
    verifier: Option<(&Verifier, &Pki)>,
    vault: Option<&OpenBao>,
) -> String {
    let mut c = format!(
        "[host]\nready = \"unix://{}\"\ncontrol = \"tcp://127.0.0.1:0\"\nconnect_timeout_ms = 10000\n\n\
         [tee]\nsource = \"sim\"\nsim_psp = \"unix://{}\"\ntimeout_ms = 10000\n",
        dir.join("ready.sock").display(),
        sim_socket.display()
    );
    if let Some((v, pki)) = verifier {
        c.push_str(&format!(
            "\n[verifier]\naddr = \"tcp://127.0.0.1:{}\"\nserver_name = \"verifier.enclave.local\"\nca = \"\"\"\n{}\"\"\"\n",
            v.port,
            pki.ca_pem()
        ));
    }
    if let Some(b) = vault {
        c.push_str(&format!(
            "\n[vault]\naddr = \"tcp://127.0.0.1:{}\"\nserver_name = \"vault.enclave.local\"\nca = \"\"\"\n{}\"\"\"\n",
            b.port,
            b.ca_pem()
        ));
    }
    c
}

/// The image configuration for a VM guest: the verifier, Vault and the
/// transcription upstream reached over vsock (CID 2 = the host, through the
/// proxy), their CAs pinned, the call service on vsock port 5000, and
/// `extra` appended.
pub fn vm_config(pki: &Pki, extra: &str) -> String {
    format!(
        "{}\n[verifier]\naddr = \"vsock://2:8443\"\nserver_name = \"verifier.enclave.local\"\ntimeout_ms = 60000\nca = \"\"\"\n{ca}\"\"\"\n\n\
         [vault]\naddr = \"vsock://2:8200\"\nserver_name = \"vault.enclave.local\"\ntimeout_ms = 60000\nca = \"\"\"\n{ca}\"\"\"\n\n\
         {service}{extra}",
        crate::image_config(),
        ca = pki.ca_pem(),
        service = service_config("vsock://any:5000", "vsock://2:8444", pki, "")
    )
}

/// The host side of a VM guest, in its socket directory `dir`: sim-psp on
/// vsock port 9100 measuring what QEMU launched, and the proxy's egress to
/// the verifier (8443), Vault (8200) and the transcription stand-in (8444);
/// ingresses from loopback TCP ports to the guest's control port 1234
/// (address written to `dir/ingress.addr`) and call port 5000
/// (`dir/call.addr`); every forwarded byte recorded under `dir/tap`. Keep
/// the result alive with the guest.
pub fn vm_host_side(
    dir: &Path,
    initrd: &Path,
    verifier: &Verifier,
    bao: &OpenBao,
    transcription_port: u16,
) -> Box<dyn std::any::Any> {
    let kernel = crate::kernel_dir().join("vmlinuz");
    let cmdline = crate::qemu::cmdline("");
    let psp = SimPsp::start(
        &dir.join("vm.vsock_9100"),
        &[
            "--kernel",
            &kernel.display().to_string(),
            "--initrd",
            &initrd.display().to_string(),
            "--cmdline",
            &cmdline,
        ],
    );
    let mut child = Command::new(enclavectl())
        .arg("proxy")
        .arg("--egress")
        .arg(format!(
            "{}=127.0.0.1:{}",
            dir.join("vm.vsock_8443").display(),
            verifier.port
        ))
        .arg("--egress")
        .arg(format!(
            "{}=127.0.0.1:{}",
            dir.join("vm.vsock_8200").display(),
            bao.port
        ))
        .arg("--egress")
        .arg(format!(
            "{}=127.0.0.1:{transcription_port}",
            dir.join("vm.vsock_8444").display()
        ))
        .arg("--ingress")
        .arg(format!(
            "127.0.0.1:0={}:1234",
            dir.join("vm.vsock").display()
        ))
        .arg("--ingress")
        .arg(format!(
            "127.0.0.1:0={}:5000",
            dir.join("vm.vsock").display()
        ))
        .arg("--record")
        .arg(dir.join("tap"))
        .stdout(Stdio::piped())
        .stderr(child_stderr("proxy.log"))
        .spawn_dying()
        .expect("start enclavectl proxy");
    let output = Output::default();
    let lines = read_until(&mut child, Duration::from_secs(30), &output, |l| {
        l == "proxy ready"
    });
    // The ingress listener's address, for callers that reach the guest
    // through the proxy like an API gateway would.
    for line in lines
        .iter()
        .filter_map(|l| l.strip_prefix("proxy ingress "))
    {
        let addr = line.split(' ').next().unwrap_or_default();
        let file = if line.ends_with(":5000") {
            "call.addr"
        } else {
            "ingress.addr"
        };
        let _ = std::fs::write(dir.join(file), addr);
    }
    Box::new((psp, Proc { child, output }))
}

impl OpenBao {
    /// The CA of the `enclave-pki` mount (what call-service clients pin).
    pub fn serving_ca_pem(&self) -> String {
        let out = self
            .cli(&["read", "-field=certificate", "enclave-pki/cert/ca"])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success(), "reading the serving CA failed");
        let pem = String::from_utf8(out.stdout).unwrap();
        assert!(pem.contains("BEGIN CERTIFICATE"), "{pem}");
        pem
    }
}

/// The `[service]` and `[transcription]` sections for a guest whose call
/// service listens on `listen`, answers the clients of `pki`'s platform CA
/// (mutual TLS) and transcribes through `transcription` (an address),
/// trusting `pki`'s CA there; `extra` lines go into `[service]`.
pub fn service_config(listen: &str, transcription: &str, pki: &Pki, extra: &str) -> String {
    format!(
        "\n[service]\nlisten = \"{listen}\"\nclient_ca = \"\"\"\n{client_ca}\"\"\"\n{extra}\n\n[transcription]\naddr = \"{transcription}\"\nserver_name = \"transcribe.enclave.local\"\nca = \"\"\"\n{ca_pem}\"\"\"\n",
        client_ca = pki.platform_ca_pem(),
        ca_pem = pki.ca_pem(),
    )
}

/// A client of a guest's call service at `addr`: trusting the `serving_ca`
/// (Vault's PKI that signed the guest's certificate) and presenting the
/// platform client certificate of `pki`, as the API gateway does.
pub fn platform_client(pki: &Pki, addr: &str, serving_ca: &str) -> crate::https::Client {
    crate::https::Client::new(addr, serving_ca, "call.enclave.local").with_identity(
        &std::fs::read_to_string(pki.path("platform-client.pem")).unwrap(),
        &std::fs::read_to_string(pki.path("platform-client-key.pem")).unwrap(),
    )
}

/// The Python of the project's venv (retell-sdk is installed there).
pub fn venv_python() -> PathBuf {
    if let Some(p) = std::env::var_os("ENCLAVE_VENV") {
        return PathBuf::from(p).join("bin/python3");
    }
    let p = crate::tools_dir().join("venv/bin/python3");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-deps",
        p.display()
    );
    p
}

/// Signs `body` as Retell does, with Retell's own SDK (retell-sdk from
/// PyPI): the `X-Retell-Signature` value for `ts_ms`.
pub fn retell_sdk_sign(api_key: &str, body: &str, ts_ms: u64) -> String {
    let script = "import sys\nfrom retell.lib.webhook_auth import symmetric\n\
                  body = sys.stdin.read()\nprint(symmetric['sign'](body, sys.argv[1], int(sys.argv[2])))\n";
    let mut child = Command::new(venv_python())
        .args(["-c", script, api_key, &ts_ms.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_dying()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), body.as_bytes()).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "retell-sdk signing failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
