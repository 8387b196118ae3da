//! A benchmark killed with SIGKILL takes its servers with it: `bench-secrets`
//! (sim-psp, the verifier, OpenBao and guests, started through
//! `tests/support`) is killed once its servers run, and every process it
//! had started is gone within seconds instead of holding ports, OpenBao
//! and the caller's output pipe (issue 22: the old bench left all four
//! running).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use enclave_tests::children::{descendants, live_comm, SpawnDying};

#[test]
fn servers_die_with_a_killed_benchmark() {
    let mut bench = Command::new(env!("CARGO_BIN_EXE_bench-secrets"))
        .arg("100000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_dying()
        .unwrap();
    let pid = bench.id();
    // Its servers: sim-psp and the verifier (both enclavectl) and bao, up
    // and serving: a guest has booted against them.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut guests = 0;
    let seen = loop {
        let kids: Vec<(u32, String)> = descendants(pid)
            .into_iter()
            .filter_map(|p| live_comm(p).map(|c| (p, c)))
            .collect();
        let n = |name: &str| kids.iter().filter(|(_, c)| c == name).count();
        guests += n("enclave-init");
        if n("enclavectl") >= 2 && n("bao") >= 1 && guests > 0 {
            break kids;
        }
        assert!(
            bench.try_wait().unwrap().is_none(),
            "bench-secrets exited before its servers ran"
        );
        assert!(Instant::now() < deadline, "servers not started: {kids:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    bench.kill().unwrap(); // SIGKILL: no Drop, no panic handler runs.
    bench.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<_> = seen
            .iter()
            .filter(|(p, c)| live_comm(*p).as_deref() == Some(c.as_str()))
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after bench-secrets was killed: {alive:?} (of {seen:?})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
