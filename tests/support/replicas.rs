//! Verifier replicas behind HAProxy, as a high-availability deployment runs
//! them: N `enclavectl verifier` processes sharing only configuration (the
//! token signing key, the nonce key, the policy and one issuer URL: the
//! proxy's), and HAProxy in front in TCP mode with health checks on
//! `/healthz`.
//!
//! TCP mode (TLS passthrough) is required, not a choice: a guest's evidence
//! is bound to the TLS exporter of its connection to the verifier, and its
//! challenge and attest travel on that one connection. A proxy that
//! terminated TLS would have its own exporter, and every attest would be
//! denied `nonce.binding`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::children::SpawnDying;
use crate::stack::{free_port, Pki, Proc, Verifier};
use crate::TempDir;

/// Arguments every replica behind the proxy gets. Behind a proxy every
/// connection comes from its address, so the per-source cap is raised to
/// the connection limit (the proxy speaks for the whole fleet).
pub const REPLICA_ARGS: &[&str] = &["--max-connections", "256", "--max-per-source", "256"];

/// The HAProxy binary (Debian's package, scripts/deps/apt.txt).
pub fn haproxy_bin() -> PathBuf {
    let p =
        PathBuf::from(std::env::var_os("HAPROXY").unwrap_or_else(|| "/usr/sbin/haproxy".into()));
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-deps (Debian package haproxy)",
        p.display()
    );
    p
}

/// One backend server as HAProxy's `show stat` reports it.
#[derive(Debug, Clone)]
pub struct ServerStat {
    /// Its name in the configuration (`r0`, `r1`, ...).
    pub name: String,
    /// `UP`, `DOWN`, `UP 1/2`, `no check`...
    pub status: String,
    /// Connections it was given so far (`stot`).
    pub sessions: u64,
}

/// HAProxy in TCP mode in front of verifier replicas, stopped by PID on drop.
pub struct HaProxy {
    pub proc: Proc,
    /// The frontend's loopback port.
    pub port: u16,
    dir: TempDir,
}

impl HaProxy {
    /// Starts HAProxy on `127.0.0.1:port` balancing over the replicas on
    /// `backends` (loopback ports), and waits until every one of them is
    /// up by its health check. Checks run every 300 ms; two failures mark
    /// a replica down, two successes up again (fast, for tests).
    pub fn start(port: u16, backends: &[u16]) -> HaProxy {
        let dir = TempDir::new("haproxy");
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  server r{i} 127.0.0.1:{p}\n"))
            .collect();
        // `option redispatch 1`: a connection refused by a replica that is
        // dead but not yet marked down is retried on another one at once,
        // so the guest never sees the gap between the death and the
        // health check that notices it.
        let config = format!(
            "global\n  maxconn 4096\n  stats socket {sock} mode 600 level admin\n\n\
             defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n  \
             retries 3\n  option redispatch 1\n\n\
             frontend verifier\n  bind 127.0.0.1:{port}\n  default_backend replicas\n\n\
             backend replicas\n  balance roundrobin\n  option httpchk\n  \
             http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host verifier.enclave.local\n  \
             http-check expect status 200\n  \
             default-server check check-ssl verify none inter 300ms fastinter 200ms downinter 300ms fall 2 rise 2\n\
             {servers}",
            sock = dir.path().join("admin.sock").display(),
        );
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, config).unwrap();
        let check = Command::new(haproxy_bin())
            .arg("-c")
            .arg("-f")
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "HAProxy refused its configuration: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        // -db: foreground, no daemon (its PID is ours to stop).
        let child = Command::new(haproxy_bin())
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("haproxy.log")).unwrap())
            .spawn_dying()
            .unwrap();
        let mut proxy = HaProxy {
            proc: Proc::from_child(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = proxy
                .servers()
                .map(|s| s.len() == backends.len() && s.iter().all(|s| s.status == "UP"))
                .unwrap_or(false);
            if up {
                return proxy;
            }
            assert!(proxy.proc.running(), "HAProxy exited: {}", proxy.log());
            assert!(
                Instant::now() < deadline,
                "HAProxy's replicas were not all up within 20 s: {:?}; log: {}",
                proxy.servers(),
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What HAProxy wrote on stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    /// The backend servers' state, from the admin socket's `show stat`.
    pub fn servers(&self) -> Result<Vec<ServerStat>, String> {
        let csv = self.admin("show stat")?;
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .and_then(|h| h.strip_prefix("# "))
            .ok_or_else(|| format!("no header in show stat: {csv:?}"))?
            .split(',')
            .collect();
        let col = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .ok_or_else(|| format!("no column {name} in show stat"))
        };
        let (px, sv, st, stot) = (col("pxname")?, col("svname")?, col("status")?, col("stot")?);
        Ok(lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| {
                f.get(px) == Some(&"replicas")
                    && f.get(sv)
                        .is_some_and(|s| *s != "BACKEND" && *s != "FRONTEND")
            })
            .map(|f| ServerStat {
                name: f[sv].to_owned(),
                status: f.get(st).copied().unwrap_or("").to_owned(),
                sessions: f.get(stot).and_then(|s| s.parse().ok()).unwrap_or(0),
            })
            .collect())
    }

    /// Takes server `name` out of the rotation (`enabled` false: no new
    /// connection goes to it, health checks stop) or puts it back and
    /// waits (up to 10 s) until its checks have it up again.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), String> {
        let verb = if enabled { "enable" } else { "disable" };
        let answer = self.admin(&format!("{verb} server replicas/{name}"))?;
        if !answer.trim().is_empty() {
            return Err(format!("{verb} server replicas/{name}: {answer}"));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self
                .servers()?
                .into_iter()
                .find(|s| s.name == name)
                .map(|s| s.status)
                .ok_or_else(|| format!("no server {name}"))?;
            if (enabled && status == "UP") || (!enabled && status == "MAINT") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("server {name} still {status} 10 s after {verb}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One command on the admin socket; its answer.
    fn admin(&self, command: &str) -> Result<String, String> {
        let sock = self.dir.path().join("admin.sock");
        let mut s = UnixStream::connect(&sock).map_err(|e| format!("{}: {e}", sock.display()))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        s.write_all(format!("{command}\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// Verifier replicas sharing the development PKI's token key and nonce key,
/// one policy, and the proxy's URL as their issuer, behind [`HaProxy`].
pub struct Replicas {
    /// The replicas (index i is HAProxy's server `ri`).
    pub replicas: Vec<Verifier>,
    pub proxy: HaProxy,
    /// `https://127.0.0.1:<proxy port>`: the issuer in every replica's
    /// tokens, and where OpenBao's OIDC discovery must point.
    pub url: String,
}

impl Replicas {
    /// Starts `n` development verifiers (`Verifier::start`, with `extra`
    /// and [`REPLICA_ARGS`]) and HAProxy in front of them.
    pub fn start(pki: &Pki, policy: &str, dir: &Path, n: usize, extra: &[&str]) -> Replicas {
        let port = free_port();
        let url = format!("https://127.0.0.1:{port}");
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["--issuer", &url]);
        args.extend(REPLICA_ARGS);
        let replicas: Vec<Verifier> = (0..n)
            .map(|_| Verifier::start(pki, policy, dir, &args))
            .collect();
        let ports: Vec<u16> = replicas.iter().map(|v| v.port).collect();
        let proxy = HaProxy::start(port, &ports);
        Replicas {
            replicas,
            proxy,
            url,
        }
    }
}
