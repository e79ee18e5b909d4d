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
    /// An expectation whose spans could still arrive when its step ended (another expectation
    /// failed for good first); expectations only.
    Undecided,
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
    /// Passed, failed or undecided.
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
    /// An `expect response` (the step's `response` is its evidence).
    #[serde(skip)]
    pub of_response: bool,
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
    /// What was wrong with the trace's shape and how it was read (a parent cycle broken, spans
    /// with duplicate ids dropped, clocks that ran backwards).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace_notes: Vec<String>,
    /// Why the step stopped waiting for its trace (steps with trace expectations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<super::completion::Stop>,
    /// Each expectation.
    pub expectations: Vec<ExpectationReport>,
    /// What the trigger answered, when a response expectation failed: the evidence a reader
    /// needs first (a 409's body says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseExcerpt>,
    /// Milliseconds from trigger to verdict.
    pub duration_ms: u64,
    /// For a passing step that waited long (see [`Summary::waited_long`]): how long, and what
    /// for (which service's next export, its period and how it was estimated; or the timeout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited: Option<String>,
    /// The trigger statement, for rendering errors.
    #[serde(skip)]
    pub trigger_span: tbt_compiler::Span,
}

/// The start of a trigger's answer, for a failed response expectation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResponseExcerpt {
    /// The HTTP status, the gRPC status code or the exit code.
    pub status: i64,
    /// The body's first [`ResponseExcerpt::LIMIT`] bytes as text (an HTTP body, a gRPC message as
    /// JSON, a process's standard output); invalid UTF-8 is replaced.
    pub body: String,
    /// The body's whole length in bytes.
    pub body_bytes: usize,
    /// A process's standard error, its first [`ResponseExcerpt::LIMIT`] bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

impl ResponseExcerpt {
    /// How much of a body is kept.
    pub const LIMIT: usize = 512;

    /// The excerpt of `response`.
    pub fn of(response: &tbt_compiler::eval::Response) -> ResponseExcerpt {
        use tbt_compiler::eval::Response;
        match response {
            Response::Http { status, body, .. } => ResponseExcerpt {
                status: i64::from(*status),
                body: head(body),
                body_bytes: body.len(),
                stderr: None,
            },
            Response::Grpc { code, body, .. } => {
                let text = body.as_ref().map(|b| b.to_string()).unwrap_or_default();
                ResponseExcerpt {
                    status: i64::from(*code),
                    body: head(text.as_bytes()),
                    body_bytes: text.len(),
                    stderr: None,
                }
            }
            Response::Exec {
                exit_code,
                stdout,
                stderr,
                ..
            } => ResponseExcerpt {
                status: i64::from(*exit_code),
                body: head(stdout.as_bytes()),
                body_bytes: stdout.len(),
                stderr: Some(head(stderr.as_bytes())),
            },
        }
    }

    /// One line for a note: `status 409, body (41 bytes): {"error":"…"}`.
    pub fn describe(&self) -> String {
        let size = if self.body_bytes > Self::LIMIT {
            format!("first {} of {} bytes", Self::LIMIT, self.body_bytes)
        } else {
            format!(
                "{} byte{}",
                self.body_bytes,
                if self.body_bytes == 1 { "" } else { "s" }
            )
        };
        let mut line = format!("status {}, body ({size}): {}", self.status, self.body);
        if let Some(err) = self.stderr.as_deref().filter(|e| !e.is_empty()) {
            line.push_str(&format!("; stderr: {err}"));
        }
        line
    }
}

/// The first [`ResponseExcerpt::LIMIT`] bytes as one line of text: cut at a character boundary,
/// line breaks and other control characters escaped.
fn head(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(ResponseExcerpt::LIMIT)]);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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
    /// Passing steps that waited longer for their trace than its evidence needed: they ended at
    /// their timeout, or came more than 1.5 × the run's slowest export delay (plus `settle`)
    /// after their trigger. Each says why in [`StepResult::waited`].
    pub waited_long: usize,
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
            Status::Undecided => 2,
            Status::Failed => 3,
            Status::Error => 4,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ResponseExcerpt;
    use tbt_compiler::eval::Response;

    fn http(status: u16, body: &[u8]) -> ResponseExcerpt {
        ResponseExcerpt::of(&Response::Http {
            status,
            headers: Vec::new(),
            body: body.to_vec(),
            duration: 0,
        })
    }

    #[test]
    fn a_long_body_is_cut_and_says_how_long_it_was() {
        let e = http(500, &[b'a'; 2000]);
        assert_eq!(e.body.len(), ResponseExcerpt::LIMIT);
        assert_eq!(e.body_bytes, 2000);
        assert!(
            e.describe()
                .starts_with("status 500, body (first 512 of 2000 bytes): aaa"),
            "{}",
            e.describe()
        );
    }

    #[test]
    fn line_breaks_are_escaped_and_a_cut_character_does_not_panic() {
        let e = http(409, b"{\"error\":\n\"dup\"}\r\n");
        assert_eq!(
            e.describe(),
            "status 409, body (18 bytes): {\"error\":\\n\"dup\"}\\r\\n"
        );
        // 511 ASCII bytes, then a two-byte character across the limit.
        let mut body = vec![b'x'; 511];
        body.extend("é".as_bytes());
        let e = http(200, &body);
        assert!(e.body.ends_with('\u{FFFD}'), "{}", e.body);
        assert_eq!(http(204, b"").describe(), "status 204, body (0 bytes): ");
    }

    #[test]
    fn a_process_shows_its_exit_code_stdout_and_stderr() {
        let e = ResponseExcerpt::of(&Response::Exec {
            exit_code: 3,
            stdout: "1 byte\n".into(),
            stderr: "no such table: orders\n".into(),
            duration: 0,
        });
        assert_eq!(
            e.describe(),
            "status 3, body (7 bytes): 1 byte\\n; stderr: no such table: orders\\n"
        );
    }
}
