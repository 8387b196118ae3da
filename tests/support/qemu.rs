//! The QEMU guest harness (`guest-init.md` §3.5): QEMU under TCG with
//! `vhost-user-vsock-pci`, backed by vhost-device-vsock, whose host side is
//! hybrid vsock over Unix sockets:
//! - guest → host: the guest's `connect(2, P)` lands on `<uds>_P`;
//! - host → guest: connect to `<uds>`, send `CONNECT P\n`, read `OK …\n`
//!   (EOF means nothing listens in the guest yet: retry).
//!
//! Guests run one at a time (a process-wide lock): TCG is CPU-bound and the
//! machine has two cores.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::children::SpawnDying;
use crate::TempDir;

/// The guest's CID.
pub const GUEST_CID: u32 = 4;
/// The readiness port (image/config.toml).
pub const READY_PORT: u32 = 9000;
/// The control port (image/config.toml).
pub const CONTROL_PORT: u32 = 1234;

static ONE_GUEST_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A running guest. Dropping it kills QEMU and the vsock daemon.
pub struct Guest {
    dir: TempDir,
    qemu: Child,
    vhost: Child,
    ready: UnixListener,
    pub started: Instant,
    _keep: Box<dyn std::any::Any>,
    _lock: MutexGuard<'static, ()>,
}

/// The kernel command line a guest boots with (it is measured).
pub fn cmdline(extra: &str) -> String {
    format!("console=ttyS0 panic=-1 quiet {LSM} {extra}")
}

/// The LSMs the guest's command line enables (measured with it): Landlock
/// first, whatever the kernel's built-in default list says.
pub const LSM: &str = "lsm=landlock,lockdown,yama";

impl Guest {
    /// Boots `initrd` with Debian's kernel; `extra_cmdline` is appended to
    /// [`cmdline`] (a later `lsm=` replaces [`LSM`]).
    pub fn boot(initrd: &Path, extra_cmdline: &str) -> Guest {
        Self::boot_with(initrd, extra_cmdline, |_| Box::new(()))
    }

    /// Like [`Guest::boot`], but first calls `host_side(dir)`, with the
    /// directory whose `vm.vsock_<port>` sockets the guest's connections to
    /// the host reach, so that host services can listen there before the
    /// guest starts. What it returns is kept alive as long as the guest.
    pub fn boot_with(
        initrd: &Path,
        extra_cmdline: &str,
        host_side: impl FnOnce(&Path) -> Box<dyn std::any::Any>,
    ) -> Guest {
        Self::start(initrd, extra_cmdline, true, host_side)
    }

    /// Boots with no serial port at all: `console=ttyS0` names no device,
    /// so PID 1 has no console.
    pub fn boot_without_serial(initrd: &Path) -> Guest {
        Self::start(initrd, "", false, |_| Box::new(()))
    }

    fn start(
        initrd: &Path,
        extra_cmdline: &str,
        serial: bool,
        host_side: impl FnOnce(&Path) -> Box<dyn std::any::Any>,
    ) -> Guest {
        let lock = ONE_GUEST_AT_A_TIME
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let dir = TempDir::new("qemu");
        let d = dir.path();
        let keep = host_side(d);
        let kernel = crate::kernel_dir().join("vmlinuz");
        // Listen for the readiness report before the guest can send it.
        let ready = UnixListener::bind(d.join(format!("vm.vsock_{READY_PORT}"))).unwrap();
        let vhost_sock = d.join("vhost.sock");
        let vhost = Command::new(crate::vhost_device_vsock())
            .arg("--vm")
            .arg(format!(
                "guest-cid={GUEST_CID},socket={},uds-path={}",
                vhost_sock.display(),
                d.join("vm.vsock").display()
            ))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("vhost.log")).unwrap())
            .spawn_dying()
            .expect("start vhost-device-vsock");
        // QEMU is the vhost-user client: the daemon's socket must exist first.
        wait_for(
            || vhost_sock.exists(),
            Duration::from_secs(10),
            "vhost-device-vsock socket",
        );
        let cmdline = cmdline(extra_cmdline);
        let started = Instant::now();
        let qemu = Command::new("qemu-system-x86_64")
            .args([
                "-machine",
                "q35,accel=tcg",
                "-cpu",
                "max",
                "-m",
                "512M",
                "-smp",
                "1",
            ])
            .args([
                "-object",
                "memory-backend-memfd,id=mem0,size=512M",
                "-machine",
                "memory-backend=mem0",
            ])
            .arg("-chardev")
            .arg(format!("socket,id=char0,path={}", vhost_sock.display()))
            .args(["-device", "vhost-user-vsock-pci,chardev=char0"])
            .arg("-kernel")
            .arg(&kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", &cmdline])
            .args(["-display", "none", "-nodefaults", "-no-reboot"])
            .arg("-qmp")
            .arg(format!(
                "unix:{},server=on,wait=off",
                d.join("qmp.sock").display()
            ))
            .arg("-serial")
            .arg(if serial {
                format!("file:{}", d.join("console.log").display())
            } else {
                "none".to_owned()
            })
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("qemu.log")).unwrap())
            .spawn_dying()
            .expect("start qemu-system-x86_64 (scripts/install-deps installs it)");
        Guest {
            dir,
            qemu,
            vhost,
            ready,
            started,
            _keep: keep,
            _lock: lock,
        }
    }

    /// Waits for the readiness report and returns it, parsed.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<serde_json::Value, String> {
        self.ready.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            match self.ready.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let mut line = String::new();
                    BufReader::new(s)
                        .read_line(&mut line)
                        .map_err(|e| e.to_string())?;
                    return serde_json::from_str(&line)
                        .map_err(|e| format!("bad readiness line {line:?}: {e}"));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.to_string()),
            }
            if let Ok(Some(status)) = self.qemu.try_wait() {
                return Err(format!(
                    "QEMU exited ({status}) before readiness; console:\n{}",
                    self.console()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no readiness within {timeout:?}; console:\n{}",
                    self.console()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until a line of the console satisfies `found` and returns it;
    /// an error if QEMU exits first or `timeout` passes.
    pub fn wait_console(
        &mut self,
        found: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.console().lines().find(|l| found(l)) {
                return Ok(l.to_owned());
            }
            if let Ok(Some(status)) = self.qemu.try_wait() {
                return Err(format!(
                    "QEMU exited ({status}); console:\n{}",
                    self.console()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not seen on the console within {timeout:?}; console:\n{}",
                    self.console()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens a host-initiated connection to a guest port (hybrid vsock),
    /// retrying while nothing listens in the guest.
    pub fn connect(&self, port: u32, timeout: Duration) -> Result<UnixStream, String> {
        hybrid_connect(&self.dir.path().join("vm.vsock"), port, timeout)
    }

    /// Sends one control command and returns the answer line.
    pub fn command(&self, command: &str) -> Result<String, String> {
        let mut s = self.connect(CONTROL_PORT, Duration::from_secs(30))?;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("{command}\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(s)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(line.trim_end().to_owned())
    }

    /// Waits for QEMU to exit (the guest powered off, or the kernel died).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.qemu.try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.qemu.kill();
                return Err(format!(
                    "QEMU still running after {timeout:?}; console:\n{}",
                    self.console()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the guest printed on its serial console so far.
    pub fn console(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("console.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Stops the VM's vCPUs (QMP `stop`): under TCG the guest's clocks
    /// stop with them, so after [`Guest::resume`] the guest believes less
    /// time has passed than really did, the host's way of moving its clock
    /// back.
    pub fn pause(&self) -> Result<(), String> {
        self.qmp("stop")
    }

    /// Restarts the vCPUs (QMP `cont`).
    pub fn resume(&self) -> Result<(), String> {
        self.qmp("cont")
    }

    fn qmp(&self, command: &str) -> Result<(), String> {
        let mut s = UnixStream::connect(self.dir.path().join("qmp.sock"))
            .map_err(|e| format!("QMP: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| e.to_string())?; // greeting
        for c in ["qmp_capabilities", command] {
            s.write_all(format!("{{\"execute\":\"{c}\"}}\n").as_bytes())
                .map_err(|e| e.to_string())?;
            loop {
                line.clear();
                r.read_line(&mut line).map_err(|e| e.to_string())?;
                if line.contains("\"return\"") {
                    break;
                }
                if line.contains("\"error\"") || line.is_empty() {
                    return Err(format!("QMP {c}: {line}"));
                }
            }
        }
        Ok(())
    }

    /// The harness's working directory (sockets, logs).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        // The daemon re-serves forever after QEMU goes: stop it by PID.
        let _ = self.vhost.kill();
        let _ = self.vhost.wait();
    }
}

/// The hybrid vsock handshake: `CONNECT <port>\n` → `OK …\n` (vhost-device-vsock
/// answers `OK <guest port>`, Firecracker `OK <host port>`: only `OK` counts).
pub fn hybrid_connect(uds: &Path, port: u32, timeout: Duration) -> Result<UnixStream, String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match UnixStream::connect(uds) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.write_all(format!("CONNECT {port}\n").as_bytes())
                    .map_err(|e| e.to_string())?;
                let mut line = Vec::new();
                let mut b = [0u8; 1];
                while !line.ends_with(b"\n") {
                    match s.read(&mut b) {
                        Ok(1) => line.push(b[0]),
                        _ => break,
                    }
                }
                if line.starts_with(b"OK") {
                    s.set_read_timeout(None).unwrap();
                    return Ok(s);
                }
                last = format!("handshake answer {:?}", String::from_utf8_lossy(&line));
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "CONNECT {port} via {} failed until the deadline: {last}",
        uds.display()
    ))
}

fn wait_for(mut cond: impl FnMut() -> bool, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
