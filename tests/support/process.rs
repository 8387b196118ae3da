//! The guest as an ordinary process (process mode): boot it with a
//! configuration, wait for its readiness report, talk to its control port.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::children::SpawnDying;
use crate::{guest_bin_for, TempDir};

/// A running guest process, killed on drop.
pub struct Guest {
    /// The process.
    pub child: Child,
    /// Its directory: config, ready socket, stdout.log, stderr.log.
    pub dir: TempDir,
}

/// How a boot ended.
pub enum Boot {
    /// Ready, with its readiness report.
    Ready(Guest, serde_json::Value),
    /// Exited before readiness.
    Failed {
        /// Exit status.
        status: i32,
        /// What it printed.
        stderr: String,
    },
}

/// Starts the guest in process mode with `config` (written into `dir`)
/// and waits for readiness or exit. The configuration's `host.ready` must
/// be `unix://<dir>/ready.sock`.
pub fn boot(dir: TempDir, config: &str) -> Boot {
    boot_under(dir, config, &[])
}

/// [`boot`] under `wrapper` (a command and its arguments, e.g. strace's),
/// which is handed the guest binary and its arguments; [`Guest::child`] is
/// then the wrapper.
pub fn boot_under(dir: TempDir, config: &str, wrapper: &[&str]) -> Boot {
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let ready = UnixListener::bind(dir.path().join("ready.sock")).unwrap();
    ready.set_nonblocking(true).unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((w, rest)) => {
            let mut c = Command::new(w);
            c.args(rest).arg(guest_bin_for(config));
            c
        }
        None => Command::new(guest_bin_for(config)),
    };
    let mut child = cmd
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn_dying()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((s, _)) = ready.accept() {
            s.set_nonblocking(false).unwrap();
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).unwrap();
            return Boot::Ready(Guest { child, dir }, serde_json::from_str(&line).unwrap());
        }
        if let Some(st) = child.try_wait().unwrap() {
            let stderr = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
            return Boot::Failed {
                status: st.code().unwrap_or(-1),
                stderr,
            };
        }
        assert!(Instant::now() < deadline, "guest neither ready nor exited");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`boot`], but the guest's stderr (its console) is a pipe of one
/// page (as small as Linux allows, so that a console nobody reads fills
/// within seconds) handed to the caller, who reads it, or stops reading it
/// as a hostile host would.
pub fn boot_with_console(
    dir: TempDir,
    config: &str,
) -> Result<(Guest, serde_json::Value, std::fs::File), String> {
    console_boot(dir, config, false)
}

/// [`boot_with_console`] with the console already full when the guest
/// starts: its very first write blocks until the caller reads (a host that
/// stalls the console from the first byte).
pub fn boot_with_stalled_console(
    dir: TempDir,
    config: &str,
) -> Result<(Guest, serde_json::Value, std::fs::File), String> {
    console_boot(dir, config, true)
}

#[expect(
    unsafe_code,
    reason = "a one-page pipe: std makes pipes but cannot size them (pipe2, F_SETPIPE_SZ)"
)]
fn console_boot(
    dir: TempDir,
    config: &str,
    stalled: bool,
) -> Result<(Guest, serde_json::Value, std::fs::File), String> {
    use std::os::fd::FromRawFd;
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let ready = UnixListener::bind(dir.path().join("ready.sock")).unwrap();
    ready.set_nonblocking(true).unwrap();
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two-element array with two new descriptors.
    let made = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(made, 0, "pipe2");
    // SAFETY: both descriptors were just created and are owned here alone.
    let (read_end, write_end) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    // SAFETY: fcntl on a descriptor we own, integer argument.
    unsafe { libc::fcntl(fds[0], libc::F_SETPIPE_SZ, 4096) };
    if stalled {
        // Fill the page without blocking: O_NONBLOCK on the write end for
        // the fill only (it is the guest's from then on, blocking).
        // SAFETY: fcntl and write on a descriptor we own; the buffer is a
        // live local array of the length passed.
        unsafe {
            let flags = libc::fcntl(fds[1], libc::F_GETFL);
            libc::fcntl(fds[1], libc::F_SETFL, flags | libc::O_NONBLOCK);
            let fill = [b'#'; 512];
            while libc::write(fds[1], fill.as_ptr().cast(), fill.len()) > 0 {}
            libc::fcntl(fds[1], libc::F_SETFL, flags);
        }
    }
    let mut child = Command::new(guest_bin_for(config))
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
        .stderr(Stdio::from(write_end))
        .spawn_dying()
        .unwrap();
    let stderr = read_end;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((s, _)) = ready.accept() {
            s.set_nonblocking(false).unwrap();
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).unwrap();
            return Ok((
                Guest { child, dir },
                serde_json::from_str(&line).unwrap(),
                stderr,
            ));
        }
        if let Some(st) = child.try_wait().unwrap() {
            return Err(format!("guest exited ({st}) before readiness"));
        }
        if Instant::now() > deadline {
            return Err("guest neither ready nor exited".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Boot {
    /// The ready guest, or a panic with what it printed.
    pub fn ready(self) -> (Guest, serde_json::Value) {
        match self {
            Boot::Ready(g, r) => (g, r),
            Boot::Failed { status, stderr } => panic!("guest failed ({status}):\n{stderr}"),
        }
    }
}

impl Guest {
    /// One control command (the control port must be TCP); the answer line.
    pub fn command(&self, report: &serde_json::Value, cmd: &str) -> String {
        let addr = report["control"]
            .as_str()
            .unwrap()
            .strip_prefix("tcp://")
            .unwrap()
            .to_owned();
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    /// Everything it printed so far.
    pub fn logs(&self) -> String {
        let mut s = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        s.push_str(
            &std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default(),
        );
        s
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
