//! The terminal report: one line per test, failures rendered like compiler diagnostics at the
//! failing expectation (actual values, near misses, trace id), then a summary.

use crate::run::result::{RunResult, Status};
use tbt_compiler::SourceMap;
use tbt_compiler::diagnostic::{Code, Diagnostic};

/// Diagnostics for every failed expectation and every step that errored.
pub fn failure_diagnostics(result: &RunResult, sources: &SourceMap) -> Vec<Diagnostic> {
    let _ = sources;
    let mut out = Vec::new();
    for t in &result.tests {
        for s in &t.steps {
            let trace = s.trace_id.as_ref().map(|id| format!("trace id: {id}"));
            for e in s.expectations.iter().filter(|e| e.status != Status::Passed) {
                let (code, what) = match e.status {
                    Status::Undecided => (Code::ExpectationUndecided, "undecided"),
                    _ => (Code::ExpectationFailed, "failed"),
                };
                let mut d = Diagnostic::new(
                    code,
                    e.span,
                    format!(
                        "expectation {what} in `{}`",
                        step_label(&t.name, s.name.as_deref())
                    ),
                )
                .with_label(e.message.clone());
                for c in e.checks.iter().filter(|c| !c.passed).take(5) {
                    let on = c
                        .span
                        .as_deref()
                        .map_or(String::new(), |s| format!(" on {s}"));
                    let actual = c
                        .actual
                        .as_deref()
                        .map_or(String::new(), |a| format!(": actual {a}"));
                    let more = c
                        .message
                        .as_deref()
                        .map_or(String::new(), |m| format!(" ({m})"));
                    d = d.with_note(format!("`{}` failed{on}{actual}{more}", c.predicate));
                }
                let failing = e.checks.iter().filter(|c| !c.passed).count();
                if failing > 5 {
                    d = d.with_note(format!(
                        "… and {} more failing checks (see the JSON report)",
                        failing - 5
                    ));
                }
                for g in e.groups.iter().filter(|g| !g.passed).take(5) {
                    let failed: Vec<String> = g
                        .checks
                        .iter()
                        .filter(|c| !c.passed)
                        .map(|c| match &c.actual {
                            Some(a) => format!("`{}` (actual {a})", c.predicate),
                            None => format!("`{}`", c.predicate),
                        })
                        .collect();
                    d = d.with_note(format!(
                        "group {} ({} spans): {} failed",
                        g.key,
                        g.spans,
                        failed.join(", ")
                    ));
                }
                for m in e.near_misses.iter().take(5) {
                    let on = m.span.as_deref().unwrap_or("a span");
                    let actual = m
                        .actual
                        .as_deref()
                        .map_or(String::new(), |a| format!(", actual {a}"));
                    d = d.with_note(format!(
                        "near miss: {on} fails only `{}`{actual}",
                        m.predicate
                    ));
                }
                // A failed response expectation: what the trigger answered.
                if let Some(r) = s.response.as_ref().filter(|_| e.of_response) {
                    d = d.with_note(format!("response: {}", r.describe()));
                }
                // What arrived by the timeout adds to what the expectation says.
                if let Some(r) = s.reason.as_ref().filter(|_| {
                    matches!(s.stop, Some(crate::run::completion::Stop::Timeout { .. }))
                }) {
                    d = d.with_note(r.clone());
                }
                if let Some(tr) = &trace {
                    d = d.with_note(tr.clone());
                }
                out.push(d);
            }
            let expectation_failed = s.expectations.iter().any(|e| e.status != Status::Passed);
            if matches!(s.status, Status::Error | Status::Failed)
                && !expectation_failed
                && let Some(reason) = &s.reason
            {
                let span = s.trigger_span;
                let mut d = Diagnostic::new(
                    Code::StepError,
                    span,
                    format!("`{}` could not run", step_label(&t.name, s.name.as_deref())),
                )
                .with_label(reason.clone());
                if let Some(tr) = &trace {
                    d = d.with_note(tr.clone());
                }
                out.push(d);
            }
        }
    }
    out
}

fn step_label(test: &str, step: Option<&str>) -> String {
    match step {
        Some(s) => format!("{test}.{s}"),
        None => test.to_string(),
    }
}

/// One line per test and the summary, as plain text; `verbose` adds each step's trace id and
/// each expectation's outcome.
pub fn lines(result: &RunResult, verbose: bool) -> String {
    let mut out = String::new();
    for t in &result.tests {
        let mark = match t.status {
            Status::Passed => "ok     ",
            Status::Failed => "FAILED ",
            Status::Error => "ERROR  ",
            Status::Skipped => "skipped",
            // A test is never undecided (only expectations are).
            Status::Undecided => "FAILED ",
        };
        out.push_str(&format!("{mark} {} ({} ms)\n", t.name, t.duration_ms));
        for s in &t.steps {
            if verbose {
                let label = step_label(&t.name, s.name.as_deref());
                let trace = s.trace_id.as_deref().unwrap_or("-");
                let stop = s
                    .stop
                    .as_ref()
                    .map_or(String::new(), |w| format!("; {}", w.describe()));
                out.push_str(&format!(
                    "        {label}: {:?}, trace {trace}, {} spans, {} ms{stop}\n",
                    s.status, s.spans, s.duration_ms
                ));
                if let Some(w) = &s.waited {
                    out.push_str(&format!("          waited long: {w}\n"));
                }
                for n in &s.trace_notes {
                    out.push_str(&format!("          trace: {n}\n"));
                }
                for e in &s.expectations {
                    let mark = match e.status {
                        Status::Passed => "✓",
                        Status::Undecided => "?",
                        _ => "✗",
                    };
                    out.push_str(&format!(
                        "          {mark} {}:{} {} — {}\n",
                        e.location.line, e.location.column, e.source, e.message
                    ));
                }
            }
            if s.status == Status::Skipped
                && let Some(r) = &s.reason
            {
                out.push_str(&format!(
                    "        {}: {r}\n",
                    step_label(&t.name, s.name.as_deref())
                ));
            }
        }
    }
    let s = result.summary;
    out.push_str(&format!(
        "\n{} passed, {} failed, {} errors, {} skipped in {} ms\n",
        s.passed, s.failed, s.errors, s.skipped, result.duration_ms
    ));
    if s.waited_long > 0 {
        out.push_str(&format!(
            "{} passing step{} waited for {} trace longer than 1.5 × the slowest export delay seen{}\n",
            s.waited_long,
            if s.waited_long == 1 { "" } else { "s" },
            if s.waited_long == 1 { "its" } else { "their" },
            if verbose {
                " (see `waited long` above)"
            } else {
                ": `-v` or the JSON report's `waited` says why"
            }
        ));
    }
    out
}
