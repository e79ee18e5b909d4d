//! Helpers shared by the parser test binaries.
#![allow(dead_code)]

use tbt_compiler::parser::{self, Parsed};
use tbt_compiler::span::SourceFile;
use tbt_compiler::{Diagnostic, FileId};

/// The taste example of the language brief.
pub const TASTE: &str = include_str!("taste.tbt");

/// Renders diagnostics one per line: `CODE line:col-line:col message`, plus help and fixes.
pub fn render_diagnostics(src: &str, diagnostics: &[Diagnostic]) -> String {
    let file = SourceFile::new("test.tbt", src);
    let mut out = String::new();
    for d in diagnostics {
        let s = d.span();
        let (l1, c1) = file.line_col_human(s.start);
        let (l2, c2) = file.line_col_human(s.end);
        out.push_str(&format!("{} {l1}:{c1}-{l2}:{c2} {}\n", d.code, d.message));
        for h in &d.help {
            out.push_str(&format!("    help: {h}\n"));
        }
        for f in &d.fixes {
            let edits: Vec<String> = f
                .edits
                .iter()
                .map(|(sp, t)| {
                    let (l, c) = file.line_col_human(sp.start);
                    format!("{l}:{c} {:?} -> {t:?}", &src[sp.range()])
                })
                .collect();
            out.push_str(&format!("    fix: {} [{}]\n", f.message, edits.join(", ")));
        }
    }
    out
}

/// Parses and renders tree and diagnostics in the "SOURCE / AST / DIAGNOSTICS" layout.
pub fn snapshot(src: &str) -> String {
    let Parsed { file, diagnostics } = parser::parse(FileId(0), src);
    let mut out = String::from("----- SOURCE\n");
    out.push_str(src);
    if !src.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("----- AST\n");
    out.push_str(&parser::dump(&file));
    out.push_str("----- DIAGNOSTICS\n");
    out.push_str(&render_diagnostics(src, &diagnostics));
    out
}

/// Parses a file that must be free of errors and returns its dump.
pub fn parse_ok(src: &str) -> String {
    let parsed = parser::parse(FileId(0), src);
    assert!(
        parsed.diagnostics.is_empty(),
        "unexpected diagnostics:\n{}",
        render_diagnostics(src, &parsed.diagnostics)
    );
    parser::dump(&parsed.file)
}

/// Parses one expression that must be free of errors and returns its dump.
pub fn expr_ok(src: &str) -> String {
    let (e, diags) = parser::parse_expr(FileId(0), src, 0);
    assert!(
        diags.is_empty(),
        "unexpected diagnostics:\n{}",
        render_diagnostics(src, &diags)
    );
    parser::dump_expr(&e)
}
