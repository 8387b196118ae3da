//! One retry schedule for every outbound call of the guest (verifier,
//! Vault, the transcription upstream, the readiness report).
//!
//! - Every failure is either [`Class::Transient`] (the peer closed, reset or
//!   timed out; end of stream before a complete answer; HTTP 429, 502, 503,
//!   504) or [`Class::Final`] (a verifier denial, a Vault permission error,
//!   a certificate that does not match its pin, a malformed answer from a
//!   peer that did answer). Transient failures are retried; final ones
//!   never are.
//! - Retries wait with capped exponential backoff and *full jitter* (a
//!   uniform draw in `[0, min(cap, base·2ⁿ)]`, as in AWS's "Exponential
//!   Backoff And Jitter"), at least what the peer asked for in
//!   `Retry-After`, and never past the operation's one deadline: the last
//!   wait is cut so that the operation ends at the deadline, not after it.
//! - Each attempt is a fresh exchange (the caller's closure starts over: new
//!   nonce, new evidence, new connection); nothing is replayed.
//!
//! Time and randomness are parameters ([`Clock`], [`Jitter`]) so the
//! schedule is tested against a fake clock and a scripted random source.

use std::time::Duration;

use crate::lifecycle::clock::Mono;

/// Whether a failure is worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The peer or the path failed for now; `retry_after` is what the peer
    /// asked for (HTTP `Retry-After`), if anything.
    Transient {
        /// The peer's requested wait.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (a refusal, a pin mismatch, a malformed answer).
    Final,
}

impl Class {
    /// A transient failure without a requested wait.
    pub const TRANSIENT: Class = Class::Transient { retry_after: None };

    /// The class of an HTTP status from a peer that answered: 429, 502,
    /// 503 and 504 are transient (with the peer's `Retry-After`), every
    /// other non-success is final.
    pub fn of_status(status: u16, retry_after: Option<Duration>) -> Class {
        match status {
            429 | 502 | 503 | 504 => Class::Transient { retry_after },
            _ => Class::Final,
        }
    }

    /// Whether this failure may be retried.
    pub fn is_transient(self) -> bool {
        matches!(self, Class::Transient { .. })
    }
}

/// An error that knows its class.
pub trait Classify {
    /// Transient or final.
    fn class(&self) -> Class;
}

/// The schedule's constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
    /// The largest `Retry-After` honoured (a peer asking for more is
    /// clamped to this, then to the deadline).
    pub max_retry_after: Duration,
}

impl Backoff {
    /// 100 ms doubling to 5 s; `Retry-After` honoured up to 60 s.
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(5),
        max_retry_after: Duration::from_secs(60),
    };

    /// The ceiling of wait number `attempt` (0-based): `min(cap, base·2ⁿ)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait after failure number `attempt`: a full-jitter draw under
    /// the ceiling, at least the peer's `Retry-After` (clamped to
    /// `max_retry_after`), and never beyond `left` (the time to the
    /// deadline).
    pub fn wait(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        left: Duration,
        jitter: &mut dyn Jitter,
    ) -> Duration {
        let ceiling = self.ceiling(attempt);
        let drawn = Duration::from_millis(
            jitter.below(
                u64::try_from(ceiling.as_millis())
                    .unwrap_or(u64::MAX)
                    .saturating_add(1),
            ),
        );
        let asked = retry_after.map_or(Duration::ZERO, |r| r.min(self.max_retry_after));
        drawn.max(asked).min(left)
    }
}

/// A source of uniform random numbers (the jitter).
pub trait Jitter {
    /// A uniform draw in `0..bound` (`bound` > 0; 0 yields 0).
    fn below(&mut self, bound: u64) -> u64;
}

/// Jitter from the kernel's random generator.
pub struct SystemJitter;

impl Jitter for SystemJitter {
    fn below(&mut self, bound: u64) -> u64 {
        if bound <= 1 {
            return 0;
        }
        let mut b = [0u8; 8];
        // Jitter needs no secrecy; on the unlikely failure of the kernel's
        // generator the draw is the middle of the range.
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
            return bound / 2;
        }
        u64::from_le_bytes(b) % bound
    }
}

/// Where time comes from: the monotonic clock, and sleeping on it.
pub trait Clock {
    /// Now.
    fn now(&self) -> Mono;
    /// Sleeps `d`.
    fn sleep(&self, d: Duration);
}

/// Why a retried operation gave up, with its last error.
#[derive(Debug)]
pub struct GaveUp<E> {
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub last: E,
    /// Whether it was final (otherwise the deadline passed).
    pub final_failure: bool,
}

/// What an operation under retry reports to its observer after each failed
/// attempt: number, class and the wait before the next one (`None`: no
/// further attempt).
pub trait Observe<E> {
    /// Called after each failed attempt.
    fn failed(&mut self, attempt: u32, error: &E, class: Class, next_wait: Option<Duration>);
}

impl<E, F: FnMut(u32, &E, Class, Option<Duration>)> Observe<E> for F {
    fn failed(&mut self, attempt: u32, error: &E, class: Class, next_wait: Option<Duration>) {
        self(attempt, error, class, next_wait);
    }
}

/// Less than this before the deadline, no new attempt starts.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);

/// Runs `op` until it succeeds, fails finally, or `deadline` passes. `op`
/// receives the deadline (its own requests must end by then) and starts a
/// fresh exchange each time. No attempt starts at or after the deadline.
pub fn run<T, E: Classify>(
    deadline: Mono,
    backoff: Backoff,
    clock: &dyn Clock,
    jitter: &mut dyn Jitter,
    observe: &mut dyn Observe<E>,
    mut op: impl FnMut(Mono) -> Result<T, E>,
) -> Result<T, GaveUp<E>> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let err = match op(deadline) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let class = err.class();
        let Class::Transient { retry_after } = class else {
            observe.failed(attempt, &err, class, None);
            return Err(GaveUp {
                attempts: attempt,
                last: err,
                final_failure: true,
            });
        };
        let left = deadline.since(clock.now());
        let drawn = backoff.wait(attempt - 1, retry_after, left, jitter);
        // A draw never spends the whole rest of the window: at most half of
        // what is left (a peer's Retry-After still waits what it asked).
        // Otherwise one large draw after a short outage late in the window
        // gave up with seconds still left, and the secrets were withdrawn
        // at the deadline (seen in the verifier-restart attack).
        let asked = retry_after.map_or(Duration::ZERO, |r| r.min(backoff.max_retry_after));
        let wait = drawn.min((left / 2).max(asked));
        // An attempt needs time to do anything: none starts at the deadline.
        if left < MIN_ATTEMPT || wait >= left {
            observe.failed(attempt, &err, class, None);
            return Err(GaveUp {
                attempts: attempt,
                last: err,
                final_failure: false,
            });
        }
        observe.failed(attempt, &err, class, Some(wait));
        clock.sleep(wait);
    }
}

/// Parses an HTTP `Retry-After` value (RFC 9110 §10.2.3): delay-seconds or
/// an HTTP-date, against `now_unix` (the verifier-anchored time). A date in
/// the past is a zero wait; a negative, garbage or absurd value is `Err`
/// with the reason (the caller logs it and uses its own schedule).
pub fn parse_retry_after(value: &str, now_unix: u64) -> Result<Duration, String> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("Retry-After {v:?} is too large"));
    }
    if let Some(rest) = v.strip_prefix('-') {
        if rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("Retry-After {v:?} is negative"));
        }
    }
    match parse_http_date(v) {
        Some(at) => Ok(Duration::from_secs(at.saturating_sub(now_unix))),
        None => Err(format!(
            "Retry-After {:?} is neither seconds nor an HTTP date",
            v.chars().take(40).collect::<String>()
        )),
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only HTTP-date
/// form senders may generate, as Unix seconds.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let rest = s.get(5..)?; // "Sun, "
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let mon = parts.next()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == mon)?;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let (h, m, sec): (u64, u64, u64) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    if parts.next()? != "GMT"
        || parts.next().is_some()
        || !(1..=31).contains(&day)
        || h > 23
        || m > 59
        || sec > 60
        || !(1970..=9999).contains(&year)
    {
        return None;
    }
    let days = days_from_civil(
        year,
        u32::try_from(month + 1).ok()?,
        u32::try_from(day).ok()?,
    );
    u64::try_from(days)
        .ok()
        .map(|d| d * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A clock that only moves when slept on.
    struct FakeClock(Cell<u64>);

    impl Clock for FakeClock {
        fn now(&self) -> Mono {
            Mono::from_millis(self.0.get())
        }
        fn sleep(&self, d: Duration) {
            self.0
                .set(self.0.get() + u64::try_from(d.as_millis()).unwrap());
        }
    }

    /// Draws the largest value allowed (the worst case for deadlines).
    struct Max;
    impl Jitter for Max {
        fn below(&mut self, bound: u64) -> u64 {
            bound.saturating_sub(1)
        }
    }

    /// Scripted draws, then zeros.
    struct Script(Vec<u64>);
    impl Jitter for Script {
        fn below(&mut self, bound: u64) -> u64 {
            if self.0.is_empty() {
                0
            } else {
                self.0.remove(0) % bound.max(1)
            }
        }
    }

    #[derive(Debug, PartialEq)]
    struct E(Class);
    impl Classify for E {
        fn class(&self) -> Class {
            self.0
        }
    }

    fn no_observer() -> impl FnMut(u32, &E, Class, Option<Duration>) {
        |_, _, _, _| {}
    }

    #[test]
    fn ceilings_double_to_the_cap() {
        let b = Backoff::DEFAULT;
        let got: Vec<u128> = (0..8).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(
            b.ceiling(u32::MAX),
            Duration::from_secs(5),
            "no overflow on huge attempt counts"
        );
    }

    #[test]
    fn full_jitter_stays_within_the_ceiling_and_the_deadline() {
        let b = Backoff::DEFAULT;
        let far = Duration::from_secs(3600);
        assert_eq!(b.wait(0, None, far, &mut Max), Duration::from_millis(100));
        assert_eq!(
            b.wait(0, None, far, &mut Script(vec![0])),
            Duration::ZERO,
            "full jitter reaches zero"
        );
        assert_eq!(
            b.wait(3, None, far, &mut Script(vec![555])),
            Duration::from_millis(555)
        );
        assert_eq!(
            b.wait(9, None, Duration::from_millis(70), &mut Max),
            Duration::from_millis(70),
            "never past the deadline"
        );
    }

    #[test]
    fn retry_after_is_honoured_clamped_and_cut_at_the_deadline() {
        let b = Backoff::DEFAULT;
        let far = Duration::from_secs(3600);
        assert_eq!(
            b.wait(0, Some(Duration::from_secs(7)), far, &mut Max),
            Duration::from_secs(7),
            "the peer's wait wins over a shorter draw"
        );
        assert_eq!(
            b.wait(0, Some(Duration::from_secs(86_400 * 365)), far, &mut Max),
            Duration::from_secs(60),
            "a huge Retry-After is clamped"
        );
        assert_eq!(
            b.wait(
                0,
                Some(Duration::from_secs(30)),
                Duration::from_secs(2),
                &mut Max
            ),
            Duration::from_secs(2),
            "and cut at the deadline"
        );
    }

    #[test]
    fn transient_failures_are_retried_until_success() {
        let clock = FakeClock(Cell::new(0));
        let mut n = 0;
        let r = run(
            Mono::from_millis(60_000),
            Backoff::DEFAULT,
            &clock,
            &mut Max,
            &mut no_observer(),
            |_| {
                n += 1;
                if n < 4 {
                    Err(E(Class::TRANSIENT))
                } else {
                    Ok(n)
                }
            },
        );
        assert_eq!(r.unwrap(), 4);
        assert_eq!(
            clock.0.get(),
            100 + 200 + 400,
            "three waits at their ceilings"
        );
    }

    #[test]
    fn a_final_failure_is_never_retried() {
        let clock = FakeClock(Cell::new(0));
        let mut n = 0;
        let r: Result<(), _> = run(
            Mono::from_millis(60_000),
            Backoff::DEFAULT,
            &clock,
            &mut Max,
            &mut no_observer(),
            |_| {
                n += 1;
                Err(E(Class::Final))
            },
        );
        let g = r.unwrap_err();
        assert_eq!((n, g.attempts, g.final_failure), (1, 1, true));
        assert_eq!(clock.0.get(), 0, "no wait after a final failure");
    }

    #[test]
    fn the_deadline_is_never_exceeded_and_no_attempt_starts_at_it() {
        let clock = FakeClock(Cell::new(0));
        let mut starts = Vec::new();
        let deadline = Mono::from_millis(10_000);
        let r: Result<(), _> = run(
            deadline,
            Backoff::DEFAULT,
            &clock,
            &mut Max,
            &mut no_observer(),
            |d| {
                assert_eq!(d, deadline, "the operation sees the one deadline");
                starts.push(clock.0.get());
                Err(E(Class::Transient {
                    retry_after: Some(Duration::from_secs(3)),
                }))
            },
        );
        assert!(!r.unwrap_err().final_failure);
        assert!(clock.0.get() <= 10_000, "ended at {} ms", clock.0.get());
        assert!(starts.iter().all(|t| *t < 10_000), "{starts:?}");
        assert_eq!(starts, [0, 3000, 6000, 9000], "Retry-After of 3 s honoured");
    }

    /// Failures until 2 s into a 3 s window (a short outage late in it),
    /// with the largest draws: the attempts keep coming (each wait at most
    /// half of what is left) and one after the outage succeeds. Before,
    /// the fifth wait (ceiling 1.6 s, 1.5 s left) gave up.
    #[test]
    fn a_short_outage_late_in_the_window_leaves_attempts_after_it() {
        let clock = FakeClock(Cell::new(0));
        let mut starts = Vec::new();
        let r: Result<(), _> = run(
            Mono::from_millis(3_000),
            Backoff::DEFAULT,
            &clock,
            &mut Max,
            &mut no_observer(),
            |_| {
                starts.push(clock.0.get());
                if clock.0.get() < 2_000 {
                    Err(E(Class::TRANSIENT))
                } else {
                    Ok(())
                }
            },
        );
        assert!(r.is_ok(), "gave up: {starts:?}");
        assert_eq!(starts, [0, 100, 300, 700, 1500, 2250]);
    }

    #[test]
    fn the_observer_sees_every_failure_and_the_next_wait() {
        let clock = FakeClock(Cell::new(0));
        let mut seen = Vec::new();
        let mut n = 0;
        let _: Result<(), _> = run(
            Mono::from_millis(1_000),
            Backoff::DEFAULT,
            &clock,
            &mut Max,
            &mut |a: u32, _e: &E, c: Class, w: Option<Duration>| {
                seen.push((a, c.is_transient(), w.map(|w| w.as_millis())))
            },
            |_| {
                n += 1;
                Err(E(if n < 3 {
                    Class::TRANSIENT
                } else {
                    Class::Final
                }))
            },
        );
        assert_eq!(
            seen,
            [(1, true, Some(100)), (2, true, Some(200)), (3, false, None)]
        );
    }

    #[test]
    fn statuses_are_classified() {
        for s in [429, 502, 503, 504] {
            assert!(Class::of_status(s, None).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 500, 501] {
            assert_eq!(Class::of_status(s, None), Class::Final, "{s}");
        }
        assert_eq!(
            Class::of_status(503, Some(Duration::from_secs(2))),
            Class::Transient {
                retry_after: Some(Duration::from_secs(2))
            }
        );
    }

    #[test]
    fn retry_after_values() {
        let now = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example)
        assert_eq!(parse_retry_after("120", now), Ok(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Ok(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Ok(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Ok(Duration::ZERO),
            "a date in the past is no wait"
        );
        assert!(parse_retry_after("-5", now)
            .unwrap_err()
            .contains("negative"));
        assert!(parse_retry_after("soon", now).is_err());
        assert!(parse_retry_after("99999999999999999999999", now)
            .unwrap_err()
            .contains("too large"));
        assert!(parse_retry_after("Sun, 32 Nov 1994 08:49:37 GMT", now).is_err());
        assert!(parse_retry_after("", now).is_err());
    }

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 12, 7), 20_794);
    }

    /// Random sequences of outcomes under a random jitter: the deadline is
    /// never exceeded, no attempt starts at or after it, a final failure
    /// ends at once, success ends at once, and every wait honours the
    /// peer's Retry-After when the deadline leaves room for it.
    mod random_failures {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone, Copy)]
        enum Outcome {
            Ok,
            Final,
            Transient(Option<u64>),
        }

        fn outcome() -> impl Strategy<Value = Outcome> {
            prop_oneof![
                1 => Just(Outcome::Ok),
                1 => Just(Outcome::Final),
                6 => proptest::option::of(0u64..20_000).prop_map(Outcome::Transient),
            ]
        }

        struct Seeded(u64);
        impl Jitter for Seeded {
            fn below(&mut self, bound: u64) -> u64 {
                // xorshift: reproducible for a given seed.
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                if bound == 0 {
                    0
                } else {
                    self.0 % bound
                }
            }
        }

        proptest! {
            #[test]
            fn deadlines_hold_and_final_failures_stop(outcomes in proptest::collection::vec(outcome(), 1..60), deadline_ms in 1u64..120_000, seed in 1u64..u64::MAX) {
                let clock = FakeClock(Cell::new(0));
                let mut starts = Vec::new();
                let mut waits = Vec::new();
                let mut i = 0;
                let r = run(
                    Mono::from_millis(deadline_ms),
                    Backoff::DEFAULT,
                    &clock,
                    &mut Seeded(seed),
                    &mut |_a: u32, _e: &E, _c: Class, w: Option<Duration>| waits.push(w),
                    |_| {
                        starts.push(clock.0.get());
                        let o = outcomes.get(i).copied().unwrap_or(Outcome::Transient(None));
                        i += 1;
                        match o {
                            Outcome::Ok => Ok(()),
                            Outcome::Final => Err(E(Class::Final)),
                            Outcome::Transient(ra) => Err(E(Class::Transient { retry_after: ra.map(Duration::from_millis) })),
                        }
                    },
                );
                prop_assert!(clock.0.get() <= deadline_ms, "ended at {} past {}", clock.0.get(), deadline_ms);
                prop_assert!(starts.iter().all(|s| *s < deadline_ms), "{:?}", starts);
                let first_stop = outcomes.iter().position(|o| matches!(o, Outcome::Ok | Outcome::Final));
                match r {
                    Ok(()) => prop_assert_eq!(Some(starts.len() - 1), first_stop),
                    Err(g) if g.final_failure => {
                        prop_assert_eq!(Some(starts.len() - 1), first_stop);
                        prop_assert!(matches!(outcomes[starts.len() - 1], Outcome::Final));
                    }
                    Err(_) => prop_assert!(first_stop.is_none_or(|f| f >= starts.len())),
                }
                // Each retry waited at least what the peer asked, when the
                // deadline left that much.
                for (k, w) in waits.iter().enumerate() {
                    if let (Some(w), Some(Outcome::Transient(Some(ra)))) = (w, outcomes.get(k)) {
                        let asked = Duration::from_millis(*ra).min(Backoff::DEFAULT.max_retry_after);
                        prop_assert!(*w >= asked, "wait {:?} < Retry-After {:?}", w, asked);
                    }
                }
            }
        }
    }
}
