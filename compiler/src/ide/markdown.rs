//! The Markdown shown for built-in functions, fields and OpenTelemetry attributes.
//!
//! Shared by hover ([`super::hover`]) and the documentation of completion items
//! ([`super::complete`]), so the two never word the same thing differently.

use super::Analysis;
use crate::builtins;
use crate::semconv;
use std::fmt::Write;

/// Markdown for a semantic-convention attribute (or a custom one) with what the last run saw.
pub(crate) fn attribute_markdown(a: &Analysis, name: &str) -> String {
    let mut md = String::new();
    match semconv::registry().lookup(name) {
        Some(attr) => {
            let _ = writeln!(md, "```tbt\n{name}: {}\n```", attr.value_type());
            let _ = write!(md, "OpenTelemetry attribute `{}`", attr.name);
            if attr.is_template() {
                md.push_str(" (a template: the key continues after the prefix)");
            }
            let _ = write!(md, "\n\ntype `{}`", attr.ty);
            if !attr.stability.is_empty() {
                let _ = write!(md, " · stability: {}", attr.stability);
            }
            if !attr.values.is_empty() {
                let vals: Vec<String> = attr.values.iter().map(|v| format!("`{v}`")).collect();
                let _ = write!(md, "\n\nvalues: {}", vals.join(", "));
            }
            if let Some(why) = &attr.deprecated {
                let _ = write!(md, "\n\n**Deprecated** ({why})");
                if let Some(new) = &attr.renamed_to {
                    let _ = write!(md, ": use `{new}`");
                }
                md.push('.');
            }
        }
        None => {
            let _ = writeln!(md, "```tbt\n{name}: any\n```");
            md.push_str("A custom span attribute (not in the OpenTelemetry semantic conventions).");
        }
    }
    if let Some(lr) = &a.last_run
        && let Some(&i) = lr.by_name.get(name)
    {
        let s = &lr.run.attributes[i];
        let vals: Vec<String> = s.values.iter().map(|v| format!("`{v}`")).collect();
        let _ = write!(
            md,
            "\n\n---\nLast run: set on {} span{}",
            s.spans,
            if s.spans == 1 { "" } else { "s" }
        );
        if !vals.is_empty() {
            let _ = write!(
                md,
                "; values {}{}",
                vals.join(", "),
                if s.more { ", …" } else { "" }
            );
        }
        md.push('.');
    }
    md
}

pub(crate) fn function_markdown(f: &builtins::Function) -> String {
    format!(
        "```tbt\n{}({}) -> {}\n```\n{}\n\ne.g. `{}`",
        f.name,
        f.params.join(", "),
        f.returns.name(),
        f.doc,
        f.example
    )
}

pub(super) fn field_markdown(what: &str, f: Option<&builtins::Field>) -> String {
    match f {
        Some(f) => format!(
            "```tbt\n{}: {}\n```\n{what} field. {}",
            f.name,
            f.ty.name(),
            f.doc
        ),
        None => String::new(),
    }
}
