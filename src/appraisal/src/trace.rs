//! [`Trace`]: the checks an appraisal actually made, in the order it made
//! them, each with its [`Outcome`]. The decision record's `checks` list is
//! this trace, not a list derived from the outcome.
//!
//! Recording is done where each check function's result is consumed
//! (`Trace::step`), so a check function needs no trace parameter and a
//! denial cannot pass unrecorded: a failure whose check the step did not
//! name is still recorded as that check's `fail`.

use crate::denial::{Check, Denial};

/// What became of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The check ran and the evidence satisfied it.
    Pass,
    /// The check ran and denied the evidence (always the trace's last entry).
    Fail,
    /// The check did not apply to this evidence or policy; why.
    Skip(&'static str),
}

impl Outcome {
    /// `pass`, `fail` or `skip` (the decision record's `result`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip(_) => "skip",
        }
    }
}

/// The checks made so far, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    steps: Vec<(Check, Outcome)>,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Each check and its outcome, in the order they were made.
    pub fn steps(&self) -> &[(Check, Outcome)] {
        &self.steps
    }

    /// Records the result of a check function that makes `checks`, in that
    /// order: on success all passed; on a denial those before the failed
    /// one passed and the failed one failed (the function stops at its
    /// first failure). Returns `result` unchanged, for `?`.
    pub(crate) fn step<T>(
        &mut self,
        checks: &[Check],
        result: Result<T, Denial>,
    ) -> Result<T, Denial> {
        match &result {
            Ok(_) => self
                .steps
                .extend(checks.iter().map(|c| (*c, Outcome::Pass))),
            Err(d) => {
                if let Some(at) = checks.iter().position(|c| *c == d.check) {
                    self.steps
                        .extend(checks[..at].iter().map(|c| (*c, Outcome::Pass)));
                }
                self.steps.push((d.check, Outcome::Fail));
            }
        }
        result
    }

    /// Records a verification made in one call whose internal order this
    /// crate does not see (dcap-qvl): on success all of `checks` passed; on
    /// a denial only the failed check is known, and recorded.
    pub(crate) fn group<T>(
        &mut self,
        checks: &[Check],
        result: Result<T, Denial>,
    ) -> Result<T, Denial> {
        match &result {
            Ok(_) => self
                .steps
                .extend(checks.iter().map(|c| (*c, Outcome::Pass))),
            Err(d) => self.steps.push((d.check, Outcome::Fail)),
        }
        result
    }

    /// Appends `other`'s steps (a sub-appraisal traced on its own).
    pub(crate) fn append(&mut self, other: Trace) {
        self.steps.extend(other.steps);
    }

    /// Records a check that passed.
    pub(crate) fn pass(&mut self, check: Check) {
        self.steps.push((check, Outcome::Pass));
    }

    /// Gives `check`'s skip a reason that fits where it was skipped (an
    /// inner appraisal skips for its own reason; its caller knows better).
    pub(crate) fn reason_skip(&mut self, check: Check, why: &'static str) {
        for (c, o) in &mut self.steps {
            if *c == check && matches!(o, Outcome::Skip(_)) {
                *o = Outcome::Skip(why);
            }
        }
    }

    /// Records a check that did not apply, and why.
    pub(crate) fn skip(&mut self, check: Check, why: &'static str) {
        self.steps.push((check, Outcome::Skip(why)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(check: Check) -> Result<(), Denial> {
        Err(Denial::new(check, "", "", ""))
    }

    #[test]
    fn a_step_passes_the_checks_before_its_failure_and_stops_there() {
        let mut t = Trace::new();
        let checks = [
            Check::SnpPolicyDebug,
            Check::SnpPolicySmt,
            Check::SnpPolicyCxl,
        ];
        assert!(t.step(&checks, Ok(())).is_ok());
        assert!(t.step(&checks, denied(Check::SnpPolicySmt)).is_err());
        // A failure the step did not name is still recorded.
        assert!(t.step(&[], denied(Check::SnpSignature)).is_err());
        let got: Vec<(&str, &str)> = t
            .steps()
            .iter()
            .map(|(c, o)| (c.as_str(), o.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("snp.policy.debug", "pass"),
                ("snp.policy.smt", "pass"),
                ("snp.policy.cxl", "pass"),
                ("snp.policy.debug", "pass"),
                ("snp.policy.smt", "fail"),
                ("snp.signature", "fail"),
            ]
        );
    }
}
