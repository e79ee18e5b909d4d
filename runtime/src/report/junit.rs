//! `--report junit=PATH`: JUnit XML that CI systems read — a testsuite per file, a testcase per
//! step (per test for inline tests), the failed expectations' messages in the failure.

use crate::run::result::{RunResult, Status};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::collections::BTreeMap;
use std::time::Duration;

/// The JUnit XML text.
pub fn render(result: &RunResult) -> String {
    let mut report = Report::new("tbt");
    report.set_time(Duration::from_millis(result.duration_ms));
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for t in &result.tests {
        let suite = suites
            .entry(t.location.file.as_str())
            .or_insert_with(|| TestSuite::new(t.location.file.clone()));
        for s in &t.steps {
            let name = match &s.name {
                Some(n) => format!("{}.{n}", t.name),
                None => t.name.clone(),
            };
            let mut status = match s.status {
                Status::Passed => TestCaseStatus::success(),
                Status::Skipped => TestCaseStatus::skipped(),
                // A step is never undecided (only expectations are).
                Status::Failed | Status::Undecided => {
                    TestCaseStatus::non_success(NonSuccessKind::Failure)
                }
                Status::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
            };
            // Failures first (the step failed on them), undecided expectations after.
            let mut not_passed: Vec<_> = s
                .expectations
                .iter()
                .filter(|e| e.status != Status::Passed)
                .collect();
            not_passed.sort_by_key(|e| e.status == Status::Undecided);
            let failures: Vec<String> = not_passed
                .iter()
                .map(|e| {
                    format!(
                        "{}:{}:{}: {} — {}",
                        e.location.file, e.location.line, e.location.column, e.source, e.message
                    )
                })
                .collect();
            let mut message = s.reason.clone().unwrap_or_default();
            if message.is_empty() {
                message = failures.first().cloned().unwrap_or_default();
            }
            if s.status != Status::Passed {
                status.set_message(message);
                let mut description = failures.join("\n");
                if let Some(r) = &s.response {
                    description.push_str(&format!("\nresponse: {}", r.describe()));
                }
                if let Some(id) = &s.trace_id {
                    description.push_str(&format!("\ntrace id: {id}"));
                }
                status.set_description(description.trim());
            }
            let mut case = TestCase::new(name, status);
            case.set_classname(t.name.clone());
            case.set_time(Duration::from_millis(s.duration_ms));
            case.set_assertions(s.expectations.len());
            suite.add_test_case(case);
        }
    }
    report.add_test_suites(suites.into_values());
    report.to_string().unwrap_or_default()
}
