//! The demo's progress: each stage printed as it starts and as it ends,
//! with its duration, so a run that builds and boots for minutes never
//! looks hung. `scripts/demo` prints its own first stages (install, build)
//! in the same two-line format; this is the rest of it.

use std::time::{Duration, Instant};

/// The stages of one run and how long each took.
pub struct Stages {
    quiet: bool,
    done: Vec<(&'static str, Duration)>,
}

impl Stages {
    /// Quiet: nothing printed here (the caller prints its summary).
    pub fn new(quiet: bool) -> Stages {
        Stages {
            quiet,
            done: Vec::new(),
        }
    }

    /// Runs `f` as the stage `name`: "==> name" before it, "<== name: 1.2
    /// s" after it, or "<== name: FAILED after 1.2 s: why".
    pub fn run<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        if !self.quiet {
            println!("==> {name}");
        }
        let t = Instant::now();
        let r = f();
        self.end(name, t.elapsed(), &r);
        r
    }

    /// Ends a stage whose start was printed elsewhere (one that began
    /// inside a harness call, e.g. "boot" when QEMU starts), `took` long.
    pub fn record(
        &mut self,
        name: &'static str,
        took: Duration,
        result: Result<(), String>,
    ) -> Result<(), String> {
        self.end(name, took, &result);
        result
    }

    fn end<T>(&mut self, name: &'static str, took: Duration, r: &Result<T, String>) {
        match r {
            Ok(_) if !self.quiet => println!("<== {name}: {:.1} s", took.as_secs_f64()),
            Err(e) => eprintln!("<== {name}: FAILED after {:.1} s: {e}", took.as_secs_f64()),
            Ok(_) => {}
        }
        self.done.push((name, took));
    }

    /// "image 2.1 s, verifier 0.3 s, ...": every stage run, in order.
    pub fn timings(&self) -> String {
        self.done
            .iter()
            .map(|(n, d)| format!("{n} {:.1} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The time of all stages together.
    pub fn total(&self) -> Duration {
        self.done.iter().map(|(_, d)| *d).sum()
    }
}
