//! What the suite found: one [`CheckResult`] per [`Check`], gathered in a [`Report`] that prints
//! one line per check. The checks themselves live in `checks`.

use std::{fmt, time::Duration};

/// The checks of the suite, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// Metadata is usable: a name, an upper-case `[A-Z0-9_]` type, a version, and an API version
    /// of this kit's major.
    Metadata,
    /// The scenario's valid configuration validates with no field error.
    ValidConfiguration,
    /// `validate` never panics, whatever text it gets (a fixed corpus of nasty values, every field
    /// of the valid configuration replaced by wrong types, and seeded pseudo-random JSON).
    ValidateNeverPanics,
    /// `start` with an invalid configuration fails with a CONFIG error, and `validate` names at
    /// least one field error for that configuration.
    StartRejectsInvalidConfiguration,
    /// `process` before `start` returns a STATE error, or one non-delivered outcome per message.
    ProcessBeforeStart,
    /// `stop` twice without `start`, and twice after `start`, succeeds.
    StopIsIdempotent,
    /// `destroy` of an instance that never started returns.
    DestroyWithoutStart,
    /// A connection check against a closed port is a CONNECTION error within the call bound.
    CheckConnectionUnreachable,
    /// After `start` against a target that never answers, `process` returns exactly one outcome
    /// per message, none delivered, within the timeout plus grace; an empty batch gets no outcome.
    /// A driver that connects in `start` may instead refuse to start with a CONNECTION error.
    ProcessAgainstBlackHole,
    /// For a driver that announces the `PIPELINE` capability, against the scenario's delivering
    /// target: after the `pipeline` control operation, three batches (1, 2 and 3 messages) are
    /// submitted before any is collected; each submit returns no outcome or one per message;
    /// collects return each pending batch's outcomes, in submission order, all delivered; a
    /// collect with nothing pending returns no outcome.
    PipelinedBatchesInOrder,
}

impl Check {
    /// Every check, in the order they run.
    pub const ALL: [Check; 10] = [
        Check::Metadata,
        Check::ValidConfiguration,
        Check::ValidateNeverPanics,
        Check::StartRejectsInvalidConfiguration,
        Check::ProcessBeforeStart,
        Check::StopIsIdempotent,
        Check::DestroyWithoutStart,
        Check::CheckConnectionUnreachable,
        Check::ProcessAgainstBlackHole,
        Check::PipelinedBatchesInOrder,
    ];

    /// The check's name in reports, e.g. `validate_never_panics`.
    pub fn name(self) -> &'static str {
        match self {
            Check::Metadata => "metadata",
            Check::ValidConfiguration => "valid_configuration",
            Check::ValidateNeverPanics => "validate_never_panics",
            Check::StartRejectsInvalidConfiguration => "start_rejects_invalid_configuration",
            Check::ProcessBeforeStart => "process_before_start",
            Check::StopIsIdempotent => "stop_is_idempotent",
            Check::DestroyWithoutStart => "destroy_without_start",
            Check::CheckConnectionUnreachable => "check_connection_unreachable",
            Check::ProcessAgainstBlackHole => "process_against_black_hole",
            Check::PipelinedBatchesInOrder => "pipelined_batches_in_order",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The driver did what the contract says.
    Pass,
    /// It did not; the detail says what happened.
    Fail,
    /// The scenario gave nothing to check with (the detail names the missing field).
    Skip,
}

/// One check's verdict and a one-line detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// Its verdict.
    pub verdict: Verdict,
    /// What was seen, on one line.
    pub detail: String,
    /// How long the check took.
    pub elapsed: Duration,
}

/// The results of a run, one per [`Check`] in [`Check::ALL`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Who was checked, e.g. `HTTP (http 0.1.0, plugin-api 1.0.0)`.
    pub driver: String,
    /// The results.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// Whether no check failed (skipped checks do not fail a report).
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.verdict != Verdict::Fail)
    }

    /// The result of `check`.
    pub fn result(&self, check: Check) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.check == check)
    }

    /// The verdict of `check` (`Skip` when it did not run).
    pub fn verdict(&self, check: Check) -> Verdict {
        self.result(check).map_or(Verdict::Skip, |r| r.verdict)
    }

    /// The checks that failed.
    pub fn failed(&self) -> Vec<Check> {
        self.results.iter().filter(|r| r.verdict == Verdict::Fail).map(|r| r.check).collect()
    }

    fn count(&self, verdict: Verdict) -> usize {
        self.results.iter().filter(|r| r.verdict == verdict).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (passed, failed, skipped) =
            (self.count(Verdict::Pass), self.count(Verdict::Fail), self.count(Verdict::Skip));
        writeln!(f, "{}: {passed} passed, {failed} failed, {skipped} skipped", self.driver)?;
        for r in &self.results {
            let verdict = match r.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
                Verdict::Skip => "SKIP",
            };
            writeln!(f, "  {verdict} {:<36} {:>6} ms  {}", r.check.name(), r.elapsed.as_millis(), r.detail)?;
        }
        Ok(())
    }
}
