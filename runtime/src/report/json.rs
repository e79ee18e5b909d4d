//! `--report json=PATH`: the result tree as JSON (schema in `docs/reports.md`).

use super::Redactor;
use crate::run::result::RunResult;

/// The JSON report text.
pub fn render(result: &RunResult, redactor: &Redactor) -> String {
    let text =
        serde_json::to_string_pretty(result).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    let mut out = redactor.redact(&text);
    out.push('\n');
    out
}
