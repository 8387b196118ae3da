//! The guest as an ordinary process (process mode): boot it with a
//! configuration, wait for its readiness report, talk to its control port.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{guest_bin, TempDir};

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
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let ready = UnixListener::bind(dir.path().join("ready.sock")).unwrap();
    ready.set_nonblocking(true).unwrap();
    let mut child = Command::new(guest_bin())
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
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
            return Boot::Failed { status: st.code().unwrap_or(-1), stderr };
        }
        assert!(Instant::now() < deadline, "guest neither ready nor exited");
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
        let addr = report["control"].as_str().unwrap().strip_prefix("tcp://").unwrap().to_owned();
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    /// Everything it printed so far.
    pub fn logs(&self) -> String {
        let mut s = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default());
        s
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
