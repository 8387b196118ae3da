//! The watchdog: wipes the secret store at the trust deadline, whatever
//! every other thread is doing.
//!
//! It waits on the lifecycle's condition variable until the deadline (or a
//! transition moves it), then takes the lifecycle's lock, which no holder
//! keeps across I/O, and wipes. Nothing it waits on belongs to the host:
//! not the console (the wipe comes first; the log line after it goes into
//! the logger's bounded queue), not a connection, not the supervisor. The
//! wait is capped at one second so that a monotonic clock that paused
//! (a suspended VM) cannot delay the wipe by more than that after resume;
//! readers check the deadline themselves anyway.

use std::sync::Arc;
use std::time::Duration;

use super::clock::Mono;
use super::Lifecycle;

/// The longest the watchdog sleeps between checks.
const MAX_NAP: Duration = Duration::from_secs(1);

/// Starts the watchdog thread.
pub fn spawn(lifecycle: Arc<Lifecycle>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || loop {
            let next = lifecycle.tick();
            let cap = Mono::now().after(MAX_NAP);
            lifecycle.wait_change(Some(next.map_or(cap, |d| d.min(cap))));
        })?;
    Ok(())
}
