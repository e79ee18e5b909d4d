//! `--report json=PATH`: the result tree as JSON (schema in `docs/reports.md`).

use crate::run::result::RunResult;

/// The JSON report text.
pub fn render(result: &RunResult) -> String {
    let mut out =
        serde_json::to_string_pretty(result).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    out.push('\n');
    out
}
