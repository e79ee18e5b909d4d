//! The one result tree every reporter reads: `RunResult → TestResult → StepResult →
//! ExpectationReport`. Documented in `docs/reports.md`; the JSON report is this tree serialised.

use serde::Serialize;

/// How a test, step or expectation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything held.
    Passed,
    /// An expectation did not hold.
    Failed,
    /// Something around the test broke (trigger error, trace never arrived).
    Error,
    /// Not run: a prerequisite failed, the run was stopped, or the test was filtered out.
    Skipped,
}

/// A place in a `.tbt` file.
#[derive(Clone, Debug, Serialize)]
pub struct Location {
    /// File as given on the command line.
    pub file: String,
    /// One-based line.
    pub line: usize,
    /// One-based column (characters).
    pub column: usize,
}

/// One checked value on one span (or on the response or trace).
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// `"charge card" (payments, 00f067aa0ba902b7)`; absent for response and trace checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<String>,
    /// The predicate as written.
    pub predicate: String,
    /// The actual value, rendered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// Whether it held.
    pub passed: bool,
    /// More detail (type found, missing attribute).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One expectation's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct ExpectationReport {
    /// The expectation's source, first line.
    pub source: String,
    /// Where it is written.
    pub location: Location,
    /// Passed or failed.
    pub status: Status,
    /// What happened, in one line.
    pub message: String,
    /// Spans selected.
    pub selected: usize,
    /// Checks (failing first).
    pub checks: Vec<CheckReport>,
    /// For an empty selection: spans that failed exactly one predicate.
    pub near_misses: Vec<CheckReport>,
    /// For `by KEY`: one entry per group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupReport>,
    /// Source byte range, for rendering.
    #[serde(skip)]
    pub span: tbt_compiler::Span,
}

/// One group of `expect SEL by KEY { … }`.
#[derive(Clone, Debug, Serialize)]
pub struct GroupReport {
    /// The key shared by the group, rendered.
    pub key: String,
    /// Spans in the group.
    pub spans: usize,
    /// Whether the block held for the group.
    pub passed: bool,
    /// The group's checks.
    pub checks: Vec<CheckReport>,
}

/// One step.
#[derive(Clone, Debug, Serialize)]
pub struct StepResult {
    /// The step's name (`None` for an inline test).
    pub name: Option<String>,
    /// Outcome.
    pub status: Status,
    /// The trace id the trigger started, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Why it errored or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Spans seen in the trace.
    pub spans: usize,
    /// Why the step stopped waiting for its trace (steps with trace expectations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<super::completion::Stop>,
    /// Each expectation.
    pub expectations: Vec<ExpectationReport>,
    /// Milliseconds from trigger to verdict.
    pub duration_ms: u64,
    /// The trigger statement, for rendering errors.
    #[serde(skip)]
    pub trigger_span: tbt_compiler::Span,
}

/// One test.
#[derive(Clone, Debug, Serialize)]
pub struct TestResult {
    /// The test's name.
    pub name: String,
    /// Its title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Where it is written.
    pub location: Location,
    /// Worst of its steps.
    pub status: Status,
    /// Its steps.
    pub steps: Vec<StepResult>,
    /// Milliseconds.
    pub duration_ms: u64,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// Every test, in suite order.
    pub tests: Vec<TestResult>,
    /// Counts by status.
    pub summary: Summary,
    /// Milliseconds.
    pub duration_ms: u64,
    /// True when the run was stopped (Ctrl-C) before it finished.
    pub interrupted: bool,
    /// What the editor shows from this run; `tbt run` writes it to `.tbt/last-run.json`
    /// ([`crate::run::last_run`]).
    #[serde(skip)]
    pub last_run: Option<tbt_compiler::ide::last_run::LastRun>,
}

/// Counts of tests by status.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Summary {
    /// Tests that passed.
    pub passed: usize,
    /// Tests with a failed expectation.
    pub failed: usize,
    /// Tests that errored.
    pub errors: usize,
    /// Tests skipped.
    pub skipped: usize,
}

impl RunResult {
    /// The process exit code: 0 all passed, 1 an expectation failed, 3 infrastructure error,
    /// 130 stopped by Ctrl-C (128 + SIGINT, as shells report it).
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            130
        } else if self.summary.errors > 0 {
            3
        } else if self.summary.failed > 0 {
            1
        } else {
            0
        }
    }
}

impl Status {
    /// The worse of two statuses (error > failed > skipped > passed).
    pub fn worst(self, other: Status) -> Status {
        let rank = |s: Status| match s {
            Status::Passed => 0,
            Status::Skipped => 1,
            Status::Failed => 2,
            Status::Error => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}
