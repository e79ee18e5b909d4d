//! Compiler diagnostics → LSP diagnostics and quick fixes.

use crate::workspace::Snapshot;
use std::collections::HashMap;
use tbt_compiler::diagnostic::{Code, Diagnostic as TbtDiagnostic, Fix};
use tbt_compiler::{Severity, Span};
use tower_lsp_server::ls_types::{
    self as lsp, DiagnosticRelatedInformation, DiagnosticSeverity, DiagnosticTag, Location,
    NumberOrString, TextEdit, Uri, WorkspaceEdit,
};

/// The `source` of every diagnostic the server publishes.
pub const SOURCE: &str = "tbt";

impl Snapshot {
    /// The LSP range of a span of this compilation (`None` for a file without URI).
    pub fn range(&self, span: Span) -> Option<(Uri, lsp::Range)> {
        let i = span.file.0 as usize;
        let uri = self.uris.get(i)?.clone()?;
        let text = &self.compilation().sources.try_get(span.file)?.text;
        let lines = self.lines.get(i)?;
        let r = span.range();
        Some((uri, lines.range(text, r.start, r.end)))
    }

    /// A fix as a workspace edit, when every span it touches is in a file with a URI.
    pub fn workspace_edit(&self, fix: &Fix) -> Option<WorkspaceEdit> {
        let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
        for (span, text) in &fix.edits {
            let (uri, range) = self.range(*span)?;
            changes.entry(uri).or_default().push(TextEdit {
                range,
                new_text: text.clone(),
            });
        }
        Some(WorkspaceEdit {
            changes: Some(changes),
            ..WorkspaceEdit::default()
        })
    }
}

/// The one conversion of a compiler diagnostic to an LSP diagnostic: range of the primary label,
/// the code (`TBT0101`), the severity, the message with the primary label's text and the
/// `note:`/`help:` lines `tbt check` prints under it, secondary labels as related information.
/// Unused definitions are tagged unnecessary, deprecated attributes deprecated.
pub fn to_lsp_diagnostic(snapshot: &Snapshot, d: &TbtDiagnostic) -> Option<lsp::Diagnostic> {
    let (_, range) = snapshot.range(d.span())?;
    let severity = match d.severity {
        Severity::Error => DiagnosticSeverity::ERROR,
        Severity::Warning => DiagnosticSeverity::WARNING,
        Severity::Note => DiagnosticSeverity::INFORMATION,
    };
    let mut message = d.message.clone();
    for n in &d.notes {
        message.push_str("\nnote: ");
        message.push_str(n);
    }
    for h in &d.help {
        message.push_str("\nhelp: ");
        message.push_str(h);
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .filter(|l| !l.message.is_empty())
        .filter_map(|l| {
            let (uri, range) = snapshot.range(l.span)?;
            Some(DiagnosticRelatedInformation {
                location: Location { uri, range },
                message: l.message.clone(),
            })
        })
        .collect();
    let tags = match d.code {
        Code::UnusedLet | Code::UnusedMatcher | Code::UnusedImport => {
            Some(vec![DiagnosticTag::UNNECESSARY])
        }
        Code::DeprecatedAttribute => Some(vec![DiagnosticTag::DEPRECATED]),
        _ => None,
    };
    Some(lsp::Diagnostic {
        range,
        severity: Some(severity),
        code: Some(NumberOrString::String(d.code.as_str().to_string())),
        code_description: None,
        source: Some(SOURCE.to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags,
        data: None,
    })
}
