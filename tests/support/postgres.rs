//! A throwaway PostgreSQL server (Debian's `postgresql`, a real part): a
//! fresh cluster made by `initdb` in a temporary directory, listening only
//! on a Unix socket in that directory (`listen_addresses=''`: no TCP port
//! for anything else on the machine to reach), started and stopped by its
//! PID.
//!
//! PostgreSQL refuses to run as root, and the tests run as root: initdb and
//! the server run as the `postgres` system user through `setpriv`, on a
//! directory owned by it. `--pdeathsig KILL` is set after the credential
//! change, so the server dies with the thread that started it even when the
//! test process aborts (the dev profile is panic=abort) and no `Drop` runs.

use crate::TempDir;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server; killed (fast shutdown, then SIGKILL) on drop.
pub struct Postgres {
    child: Option<Child>,
    dir: TempDir,
}

/// The directory of Debian's PostgreSQL programs (`/usr/lib/postgresql/N/bin`,
/// the highest N installed).
pub fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<u32> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}: run scripts/install-deps", root.display()))
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|v| root.join(format!("{v}/bin/postgres")).exists())
        .collect();
    versions.sort_unstable();
    let v = versions.last().unwrap_or_else(|| {
        panic!(
            "no PostgreSQL in {}: run scripts/install-deps",
            root.display()
        )
    });
    root.join(format!("{v}/bin"))
}

#[expect(unsafe_code, reason = "std has no geteuid")]
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program` as the `postgres` user when we are root (as is), dying with us.
fn as_postgres(program: &Path) -> Command {
    if running_as_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            "--pdeathsig=KILL",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// A new cluster, started, accepting connections (or a panic naming why).
    /// `durable = false` turns fsync off (tests: nothing here must survive a
    /// machine crash); the benchmark keeps it on.
    pub fn start(durable: bool) -> Postgres {
        let dir = TempDir::new("pg");
        let data = dir.path().join("data");
        if running_as_root() {
            let st = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown postgres {}", dir.path().display());
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let bin = bin_dir();
        let out = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut cmd = as_postgres(&bin.join("postgres"));
        cmd.arg("-D").arg(&data).arg("-k").arg(dir.path()).args([
            "-c",
            "listen_addresses=",
            "-c",
            "max_connections=50",
        ]);
        if !durable {
            cmd.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let pg = Postgres {
            child: Some(child),
            dir,
        };
        pg.wait_ready(Duration::from_secs(30));
        pg
    }

    fn wait_ready(&self, budget: Duration) {
        let deadline = Instant::now() + budget;
        loop {
            if let Ok(mut c) = postgres::Client::connect(&self.conninfo(), postgres::NoTls) {
                if c.simple_query("SELECT 1").is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL not ready in {budget:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The directory holding the server's socket (`.s.PGSQL.5432`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A libpq-style connection string for the socket.
    pub fn conninfo(&self) -> String {
        format!(
            "host={} user=postgres dbname=postgres",
            self.socket_dir().display()
        )
    }

    /// A connected client (superuser).
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.conninfo(), postgres::NoTls).unwrap()
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }
}

impl Drop for Postgres {
    #[expect(
        unsafe_code,
        reason = "std's Child::kill sends only SIGKILL; fast shutdown is SIGINT"
    )]
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let Ok(pid) = libc::pid_t::try_from(child.id()) else {
            return;
        };
        // SIGINT is PostgreSQL's fast shutdown: clients are disconnected.
        // SAFETY: kill on the PID of our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
