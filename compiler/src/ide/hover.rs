//! Hover and signature help.

use super::markdown::{attribute_markdown, field_markdown, function_markdown};
use super::scan::{Scan, scan_before};
use super::{Analysis, SymbolKind};
use crate::ast::{ItemKind, StmtKind};
use crate::builtins::{self, Ty};
use crate::check::Resolution;
use crate::program::Origin;
use crate::span::{FileId, Span};
use std::fmt::Write;
use std::ops::Range;

/// What hovering shows.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Hover {
    /// The text the hover is about.
    pub range: Range<usize>,
    /// Markdown.
    pub markdown: String,
}

/// The signature of the call around the cursor.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SignatureHelp {
    /// `name(a, b)`.
    pub label: String,
    /// Markdown documentation of the function or matcher.
    pub documentation: Option<String>,
    /// The parameters, each with its range in `label`.
    pub parameters: Vec<ParameterInfo>,
    /// The parameter the cursor is in (may be past the last one when there are too many
    /// arguments).
    pub active_parameter: usize,
}

/// One parameter of a [`SignatureHelp`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ParameterInfo {
    /// Its name (with ` = default` for a matcher parameter that has one).
    pub label: String,
    /// Its byte range in the signature's label.
    pub range: Range<usize>,
}

impl Analysis {
    /// Markdown describing a definition.
    pub(crate) fn def_markdown(&self, d: usize) -> String {
        let def = &self.defs[d];
        let p = &self.c.program;
        let m = p.module(def.module);
        let item = m.ast.items.iter().find(|i| i.span == def.full);
        let mut md = String::new();
        match def.kind {
            SymbolKind::Matcher => {
                if let Some((it, mt)) = m.matcher_item(&def.name) {
                    let _ = writeln!(
                        md,
                        "```tbt\nmatcher {}({})\n```",
                        mt.name.name,
                        matcher_signature(self, mt)
                    );
                    if let Some(doc) = &it.doc {
                        md.push_str(doc);
                        md.push('\n');
                    }
                }
            }
            SymbolKind::Let | SymbolKind::Variable | SymbolKind::Parameter => {
                let ty = self.let_type(def);
                let kw = if def.kind == SymbolKind::Parameter {
                    "parameter"
                } else {
                    "let"
                };
                let _ = writeln!(md, "```tbt\n{kw} {}: {}\n```", def.name, ty.name());
                if let Some(doc) = item.and_then(|i| i.doc.as_ref()) {
                    md.push_str(doc);
                    md.push('\n');
                }
            }
            SymbolKind::Namespace => {
                if let Some(ItemKind::Import(imp)) = item.map(|i| &i.kind) {
                    let _ = writeln!(md, "```tbt\nimport \"{}\"\n```", imp.path);
                    if let Some(&(target, _)) = m.imports.get(&def.name) {
                        let tm = p.module(target);
                        let mut names: Vec<&str> = tm.matchers.keys().map(String::as_str).collect();
                        names.sort_unstable();
                        if !names.is_empty() {
                            let _ = writeln!(md, "matchers: {}", names.join(", "));
                        }
                    }
                }
            }
            SymbolKind::Test => {
                let _ = writeln!(md, "```tbt\ntest {}\n```", def.name);
                if let Some(t) = def.test.and_then(|t| p.tests.get(t)) {
                    if let Some(title) = &t.title {
                        let _ = writeln!(md, "{title}");
                    }
                    let steps: Vec<&str> =
                        t.steps.iter().filter_map(|s| s.name.as_deref()).collect();
                    if !steps.is_empty() {
                        let _ = writeln!(md, "\nsteps: {}", steps.join(", "));
                    }
                }
            }
            SymbolKind::Step => {
                if let (Some(t), Some(s)) = (def.test, def.step) {
                    let info = &p.tests[t];
                    let _ = writeln!(md, "```tbt\nstep {}\n```", info.step_label(s));
                    let caps: Vec<&str> = info.steps[s]
                        .captures
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    if !caps.is_empty() {
                        let _ = writeln!(md, "captures: {}", caps.join(", "));
                    }
                }
            }
            SymbolKind::Capture => {
                if let (Some(t), Some(s)) = (def.test, def.step) {
                    let info = &p.tests[t];
                    let source = info.steps[s]
                        .captures
                        .iter()
                        .find(|c| c.name == def.name)
                        .map(|c| c.source);
                    let _ = writeln!(
                        md,
                        "```tbt\ncapture {}.{}\n```\ncaptured from the {}; known after the step ran",
                        info.step_label(s),
                        def.name,
                        match source {
                            Some(crate::program::CaptureSource::Response) => "response",
                            _ => "trace",
                        }
                    );
                }
            }
            SymbolKind::Service => {
                let _ = writeln!(md, "```tbt\nservice {}\n```", def.name);
            }
        }
        if m.origin == Origin::Std || m.origin == Origin::Import {
            let _ = write!(md, "\n*from `{}`*", m.name);
        }
        md.trim_end().to_string()
    }

    /// The type of a `let`, variable or parameter: its value's recorded type.
    fn let_type(&self, def: &super::Def) -> Ty {
        let p = &self.c.program;
        let m = p.module(def.module);
        let value: Option<Span> = match def.kind {
            SymbolKind::Let => m.let_item(&def.name).map(|l| l.value.span),
            SymbolKind::Variable => {
                let body = match (def.test, def.step) {
                    (Some(t), Some(s)) => p.step_body(t, s),
                    (Some(t), None) => p.test_body(t),
                    _ => &[],
                };
                body.iter().find_map(|st| match &st.kind {
                    StmtKind::Let(l) if l.name.span == def.span => Some(l.value.span),
                    _ => None,
                })
            }
            SymbolKind::Parameter => m.ast.items.iter().find_map(|i| match &i.kind {
                ItemKind::Matcher(mt) => mt
                    .params
                    .iter()
                    .find(|pr| pr.name.span == def.span)
                    .map(|pr| pr.default.as_ref().map_or(def.span, |d| d.span)),
                _ => None,
            }),
            _ => None,
        };
        value
            .and_then(|v| {
                self.types
                    .binary_search_by_key(&(v.file, v.start, std::cmp::Reverse(v.end)), |(s, _)| {
                        (s.file, s.start, std::cmp::Reverse(s.end))
                    })
                    .ok()
                    .map(|i| self.types[i].1)
            })
            .map_or(Ty::Any, |t| if t == Ty::Null { Ty::Any } else { t })
    }

    /// Hover at the cursor: docs of matchers, functions, fields and attributes, a definition's
    /// signature, the type of the expression, and for a selector how many spans it matched in
    /// the last run.
    pub fn hover(&self, file: FileId, offset: usize) -> Option<Hover> {
        let offset = self.clamp(file, offset);
        let text = self.file_text(file);
        let mut md = String::new();
        let mut range: Option<Range<usize>> = None;
        if let Some((r, d)) = self.ref_at(file, offset) {
            range = Some(r.span.range());
            md = match &r.resolution {
                _ if *d != usize::MAX => self.def_markdown(*d),
                Resolution::Function(name) => builtins::function(name)
                    .map(function_markdown)
                    .unwrap_or_default(),
                Resolution::SpanField(n) => {
                    field_markdown("Span", builtins::SPAN_FIELDS.iter().find(|f| f.name == *n))
                }
                Resolution::ResponseField(n) => field_markdown(
                    "Response",
                    builtins::RESPONSE_FIELDS.iter().find(|f| f.name == *n),
                ),
                Resolution::TraceField(n) => field_markdown(
                    "Trace",
                    builtins::TRACE_FIELDS.iter().find(|f| f.name == *n),
                ),
                Resolution::Aggregate => {
                    field_markdown("Aggregate", builtins::AGGREGATE_FIELDS.first())
                }
                Resolution::Attribute => {
                    attribute_markdown(self, text.get(r.span.range()).unwrap_or(""))
                }
                Resolution::Constant => {
                    let name = text.get(r.span.range()).unwrap_or("");
                    if builtins::SPAN_KINDS.contains(&name) {
                        format!(
                            "```tbt\n{name}: span kind\n```\nspan kinds: {}",
                            builtins::SPAN_KINDS.join(", ")
                        )
                    } else {
                        format!(
                            "```tbt\n{name}: span status\n```\nspan statuses: {}",
                            builtins::SPAN_STATUSES.join(", ")
                        )
                    }
                }
                _ => String::new(),
            };
        } else if let Some(d) = self.def_named_at(file, offset) {
            range = Some(self.defs[d].span.range());
            md = self.def_markdown(d);
        }
        // The expression under the cursor: its type, and a selector's count in the last run.
        if let Some((span, ty)) = self.type_at(file, offset) {
            if md.is_empty() {
                range = Some(span.range());
                let _ = write!(md, "```tbt\n{}\n```", ty.name());
            }
            if ty == Ty::Spans
                && let Some(line) = self.selector_count(file, offset, span)
            {
                let _ = write!(md, "\n\n---\n{line}");
            }
        }
        let range = range?;
        (!md.is_empty()).then_some(Hover {
            range,
            markdown: md,
        })
    }

    /// "Matched N spans in the last run" for the selector at `span` (or the expectation's
    /// selector around the cursor).
    fn selector_count(&self, file: FileId, offset: usize, span: Span) -> Option<String> {
        let lr = self.last_run.as_ref()?;
        let exact = lr.by_range.get(&(file.0, span.start, span.end));
        let i = match exact {
            Some(&i) => i,
            None => {
                let o = offset as u32;
                *lr.by_range
                    .iter()
                    .filter(|((f, s, e), _)| *f == file.0 && *s <= o && o <= *e)
                    .min_by_key(|((_, s, e), _)| e - s)?
                    .1
            }
        };
        let s = &lr.run.selectors[i];
        Some(format!(
            "Matched {} span{} in the last run ({})",
            s.matched,
            if s.matched == 1 { "" } else { "s" },
            s.step
        ))
    }

    /// The signature of the function or matcher call the cursor is in, with the active
    /// parameter.
    pub fn signature_help(&self, file: FileId, offset: usize) -> Option<SignatureHelp> {
        let offset = self.clamp(file, offset);
        let text = self.file_text(file);
        let scan: Scan = scan_before(text, offset);
        if scan.in_string_or_comment {
            return None;
        }
        let (callee, commas) = scan.call?;
        let m = self
            .module_of
            .get(&file)
            .map(|&m| self.c.program.module(m))?;
        let segs: Vec<&str> = callee.split('.').collect();
        let matcher = match segs.as_slice() {
            [name] => m.matcher_item(name).map(|x| (m, x)),
            [ns, name] => m.imports.get(*ns).and_then(|&(t, _)| {
                let tm = self.c.program.module(t);
                tm.matcher_item(name).map(|x| (tm, x))
            }),
            _ => None,
        };
        let (name, params, doc): (String, Vec<String>, Option<String>) = match matcher {
            Some((_, (item, mt))) => (
                callee.clone(),
                mt.params
                    .iter()
                    .map(|p| match &p.default {
                        Some(d) => format!("{} = {}", p.name.name, self.c.sources.slice(d.span)),
                        None => p.name.name.clone(),
                    })
                    .collect(),
                item.doc.clone(),
            ),
            None => {
                let f = (segs.len() == 1)
                    .then(|| builtins::function(&callee))
                    .flatten()?;
                (
                    f.name.to_string(),
                    f.params.iter().map(|p| p.to_string()).collect(),
                    Some(format!("{}\n\ne.g. `{}`", f.doc, f.example)),
                )
            }
        };
        let mut label = format!("{name}(");
        let mut parameters = Vec::new();
        for (i, p) in params.iter().enumerate() {
            if i > 0 {
                label.push_str(", ");
            }
            let start = label.len();
            label.push_str(p);
            parameters.push(ParameterInfo {
                label: p.clone(),
                range: start..label.len(),
            });
        }
        label.push(')');
        Some(SignatureHelp {
            label,
            documentation: doc,
            parameters,
            active_parameter: commas,
        })
    }
}

/// `route = null` style parameter list of a matcher.
fn matcher_signature(a: &Analysis, mt: &crate::ast::Matcher) -> String {
    mt.params
        .iter()
        .map(|p| match &p.default {
            Some(d) => format!("{} = {}", p.name.name, a.c.sources.slice(d.span)),
            None => p.name.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
