//! Rendering diagnostics for people and for machines.
//!
//! One [`Diagnostic`] renders three ways: like a compiler (codespan-reporting, with or without
//! colour), as JSON objects (one per diagnostic, for tools), and as GitHub Actions workflow
//! commands. Runtime failures go through the same renderer so they point at `.tbt` source too.

use crate::diagnostic::{Diagnostic, Severity};
use crate::span::{FileId, SourceMap};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::{Error as FilesError, Files};
use codespan_reporting::term;
use std::ops::Range;

impl<'a> Files<'a> for SourceMap {
    type FileId = FileId;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        self.try_get(id)
            .map(|f| f.name.as_str())
            .ok_or(FilesError::FileMissing)
    }

    fn source(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        self.try_get(id)
            .map(|f| f.text.as_str())
            .ok_or(FilesError::FileMissing)
    }

    fn line_index(&'a self, id: FileId, byte_index: usize) -> Result<usize, FilesError> {
        let f = self.try_get(id).ok_or(FilesError::FileMissing)?;
        Ok(f.line_col(byte_index.min(f.text.len()) as u32).0)
    }

    fn line_range(&'a self, id: FileId, line_index: usize) -> Result<Range<usize>, FilesError> {
        let f = self.try_get(id).ok_or(FilesError::FileMissing)?;
        let starts = f.line_starts();
        let start = *starts.get(line_index).ok_or(FilesError::LineTooLarge {
            given: line_index,
            max: starts.len() - 1,
        })? as usize;
        let end = starts
            .get(line_index + 1)
            .map_or(f.text.len(), |&e| e as usize);
        Ok(start..end)
    }
}

fn to_codespan(d: &Diagnostic) -> cs::Diagnostic<FileId> {
    let severity = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
        Severity::Note => cs::Severity::Note,
    };
    let labels = d
        .labels
        .iter()
        .map(|l| {
            let style = if l.primary {
                cs::LabelStyle::Primary
            } else {
                cs::LabelStyle::Secondary
            };
            cs::Label::new(style, l.span.file, l.span.range()).with_message(l.message.clone())
        })
        .collect();
    let mut notes: Vec<String> = d.notes.iter().map(|n| format!("note: {n}")).collect();
    notes.extend(d.help.iter().map(|h| format!("help: {h}")));
    cs::Diagnostic::new(severity)
        .with_code(d.code.as_str())
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(notes)
}

/// Renders diagnostics as plain text (no colour), exactly as `tbt check --color never` prints them.
pub fn render_plain(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    let config = term::Config::default();
    let mut out = String::new();
    for d in diagnostics {
        if term::emit_to_string(&mut out, &config, sources, &to_codespan(d)).is_err() {
            out.push_str(&format!(
                "{}[{}]: {}\n\n",
                d.severity.as_str(),
                d.code,
                d.message
            ));
        }
    }
    out
}

/// Renders diagnostics to a terminal stream, in colour when the stream's choice says so.
pub fn render_to(
    writer: &mut dyn term::WriteStyle,
    sources: &SourceMap,
    diagnostics: &[Diagnostic],
) -> std::io::Result<()> {
    let config = term::Config::default();
    for d in diagnostics {
        term::emit_to_write_style(writer, &config, sources, &to_codespan(d))
            .map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// One diagnostic as a JSON object: file, line, column, end, code, severity, message, labels.
///
/// Lines and columns are one-based; columns count characters.
pub fn to_json(sources: &SourceMap, d: &Diagnostic) -> serde_json::Value {
    let loc = |span: crate::span::Span| {
        let Some(f) = sources.try_get(span.file) else {
            return serde_json::json!({});
        };
        let (line, column) = f.line_col_human(span.start);
        let (end_line, end_column) = f.line_col_human(span.end);
        serde_json::json!({
            "file": f.name,
            "line": line,
            "column": column,
            "end": { "line": end_line, "column": end_column },
        })
    };
    let primary = loc(d.span());
    let labels: Vec<_> = d
        .labels
        .iter()
        .map(|l| {
            let mut v = loc(l.span);
            v["message"] = l.message.clone().into();
            v["primary"] = l.primary.into();
            v
        })
        .collect();
    let fixes: Vec<_> = d
        .fixes
        .iter()
        .map(|f| {
            serde_json::json!({
                "message": f.message,
                "edits": f.edits.iter().map(|(s, t)| { let mut v = loc(*s); v["replacement"] = t.clone().into(); v }).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "file": primary["file"],
        "line": primary["line"],
        "column": primary["column"],
        "end": primary["end"],
        "code": d.code.as_str(),
        "severity": d.severity.as_str(),
        "message": d.message,
        "labels": labels,
        "notes": d.notes,
        "help": d.help,
        "fixes": fixes,
    })
}

/// GitHub Actions workflow commands (`::error file=…,line=…,col=…,endLine=…,endColumn=…,title=…::msg`).
pub fn render_github(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "notice",
        };
        let span = d.span();
        let mut msg = d.message.clone();
        for h in &d.help {
            msg.push_str("\nhelp: ");
            msg.push_str(h);
        }
        match sources.try_get(span.file) {
            Some(f) => {
                let (line, col) = f.line_col_human(span.start);
                let (end_line, end_col) = f.line_col_human(span.end);
                out.push_str(&format!(
                    "::{level} file={},line={line},col={col},endLine={end_line},endColumn={end_col},title={}::{}\n",
                    escape_property(&f.name),
                    escape_property(d.code.as_str()),
                    escape_data(&msg)
                ));
            }
            None => out.push_str(&format!(
                "::{level} title={}::{}\n",
                d.code,
                escape_data(&msg)
            )),
        }
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}
