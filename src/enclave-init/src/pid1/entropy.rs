//! Entropy before keys.
//!
//! Keys are generated from the kernel CRNG only once it is initialised. We
//! poll `getrandom(GRND_NONBLOCK)` instead of blocking so that a kernel that
//! never gets entropy is reported and powered off, not left hanging. Trust:
//! the host's virtio-rng is not relied on; recent x86 kernels seed from
//! RDRAND/RDSEED, which the TEE guarantees come from the CPU.

use std::time::{Duration, Instant};

use super::Pid1Error;

/// Waits until the CRNG is ready, at most `timeout`. Returns how long it took.
pub fn wait_ready(timeout: Duration) -> Result<Duration, Pid1Error> {
    let start = Instant::now();
    let mut probe = [0u8; 1];
    loop {
        if crate::sys::getrandom_nonblocking(&mut probe).map_err(Pid1Error::Entropy)? {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return Err(Pid1Error::EntropyTimeout {
                waited_ms: start.elapsed().as_millis(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_running_host_has_entropy() {
        assert!(super::wait_ready(std::time::Duration::from_secs(1)).is_ok());
    }
}
