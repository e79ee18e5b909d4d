//! Completion in context.
//!
//! The text before the cursor is lexed by the cursor scan ([`super::scan`], shared with signature
//! help; the file may be half-typed, so the syntax tree is not trusted for the context): a stack
//! of open blocks and brackets says where the cursor is — top level, a test or step body, a
//! trigger's options, a service, an expectation block over spans, `expect response`/`expect
//! trace`, a selector filter `span[…]`, a call's arguments — and the tokens of the current
//! statement say what may come next. Names in scope come from the program (lets, matchers,
//! imports, the enclosing test's steps and captures).

use super::Analysis;
use super::markdown::{attribute_markdown, function_markdown};
use super::scan::{Block, Frame, Tok, scan_before};
use crate::ast::{ItemKind, StmtKind};
use crate::builtins::{self, FnContext};
use crate::program::Module;
use crate::semconv;
use crate::span::FileId;
use std::collections::HashSet;
use std::ops::Range;

/// What a completion item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionKind {
    /// A keyword.
    Keyword,
    /// A module-level `let`.
    Let,
    /// A step/test `let` or matcher parameter.
    Variable,
    /// A capture (`step.name`).
    Capture,
    /// A matcher.
    Matcher,
    /// A built-in function.
    Function,
    /// A built-in field (span, response, trace) or aggregate.
    Field,
    /// A span attribute name.
    Attribute,
    /// A value: an enum member, a span kind or status, an HTTP method, a value seen in the last
    /// run.
    Value,
    /// An import namespace or standard module.
    Module,
    /// A test name.
    Test,
    /// A step name.
    Step,
    /// An option or directive name in a trigger or service block.
    Option,
}

/// One completion.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CompletionItem {
    /// What the list shows.
    pub label: String,
    /// What it is.
    pub kind: CompletionKind,
    /// A one-line detail (type, signature, origin).
    pub detail: Option<String>,
    /// Markdown documentation.
    pub documentation: Option<String>,
    /// The text that replaces `range`.
    pub insert_text: String,
    /// The range to replace: the partial word before the cursor (after the last `.`).
    pub range: Range<usize>,
    /// Deprecated (attributes).
    pub deprecated: bool,
}

/// Where names come from at the cursor.
struct Ctx<'a> {
    a: &'a Analysis,
    m: &'a Module,
    /// Where names in scope are looked up: the cursor in the text the analysis saw.
    scope: usize,
    range: Range<usize>,
    partial: &'a str,
    out: Vec<CompletionItem>,
    seen: HashSet<(String, CompletionKind)>,
}

impl Ctx<'_> {
    fn push(
        &mut self,
        label: impl Into<String>,
        kind: CompletionKind,
        detail: Option<String>,
        doc: Option<String>,
    ) {
        let label = label.into();
        let insert = label.clone();
        self.push_insert(label, insert, kind, detail, doc, false);
    }

    fn push_insert(
        &mut self,
        label: String,
        insert_text: String,
        kind: CompletionKind,
        detail: Option<String>,
        documentation: Option<String>,
        deprecated: bool,
    ) {
        if !self.seen.insert((label.clone(), kind)) {
            return;
        }
        self.out.push(CompletionItem {
            label,
            kind,
            detail,
            documentation,
            insert_text,
            range: self.range.clone(),
            deprecated,
        });
    }

    fn keywords(&mut self, kws: &[&str]) {
        for k in kws {
            self.push(*k, CompletionKind::Keyword, None, None);
        }
    }

    fn functions(&mut self, allow: &[FnContext]) {
        for f in builtins::FUNCTIONS {
            if allow.contains(&f.context) {
                self.push(
                    f.name,
                    CompletionKind::Function,
                    Some(format!(
                        "{}({}) -> {}",
                        f.name,
                        f.params.join(", "),
                        f.returns.name()
                    )),
                    Some(function_markdown(f)),
                );
            }
        }
    }

    fn fields(&mut self, fields: &[builtins::Field], what: &str) {
        for f in fields {
            self.push(
                f.name,
                CompletionKind::Field,
                Some(format!("{}: {}", what, f.ty.name())),
                Some(f.doc.to_string()),
            );
        }
    }

    fn matchers_of(&mut self, m: &Module, prefix: &str) {
        let mut names: Vec<(&String, &usize)> = m.matchers.iter().collect();
        names.sort();
        for (name, _) in names {
            if let Some((item, mt)) = m.matcher_item(name) {
                self.push(
                    format!("{prefix}{name}"),
                    CompletionKind::Matcher,
                    Some(format!(
                        "matcher {name}({})",
                        super::nav::matcher_params(mt)
                    )),
                    item.doc.clone(),
                );
            }
        }
    }

    /// Lets, locals, captures of earlier steps, namespaces and matchers in scope.
    fn names(&mut self, matchers: bool) {
        let a = self.a;
        let m = self.m;
        let o = self.scope as u32;
        for (i, item) in m.ast.items.iter().enumerate() {
            match &item.kind {
                ItemKind::Let(l) => {
                    let d = a.def_at.get(&l.name.span).copied();
                    self.push(
                        l.name.name.clone(),
                        CompletionKind::Let,
                        d.map(|d| a.def_markdown(d).lines().nth(1).unwrap_or("").to_string()),
                        item.doc.clone(),
                    );
                }
                ItemKind::Matcher(mt) if item.span.start <= o && o <= item.span.end => {
                    for p in &mt.params {
                        self.push(
                            p.name.name.clone(),
                            CompletionKind::Variable,
                            Some("parameter".into()),
                            None,
                        );
                    }
                }
                ItemKind::Import(_) => {
                    if let Some((ns, (target, _))) =
                        m.imports.iter().find(|(_, (_, idx))| *idx == i)
                    {
                        let path = a.c.program.module(*target).name.clone();
                        self.push(
                            ns.clone(),
                            CompletionKind::Module,
                            Some(format!("import \"{path}\"")),
                            None,
                        );
                    }
                }
                _ => {}
            }
        }
        if matchers {
            self.matchers_of(m, "");
        }
        // The test around the cursor: its lets before the cursor and earlier steps' captures.
        let p = &a.c.program;
        let Some(ti) = p
            .tests
            .iter()
            .position(|t| t.module == m.id && t.span.start <= o && o <= t.span.end)
        else {
            return;
        };
        let t = &p.tests[ti];
        let current = t
            .steps
            .iter()
            .position(|s| s.span.start <= o && o <= s.span.end);
        let mut lets: Vec<&crate::ast::Let> = Vec::new();
        for st in p.test_body(ti) {
            if let StmtKind::Let(l) = &st.kind
                && st.span.end <= o
            {
                lets.push(l);
            }
        }
        if let Some(si) = current
            && t.steps[si].name.is_some()
        {
            for st in p.step_body(ti, si) {
                if let StmtKind::Let(l) = &st.kind
                    && st.span.end <= o
                {
                    lets.push(l);
                }
            }
        }
        for l in lets {
            self.push(
                l.name.name.clone(),
                CompletionKind::Variable,
                Some("let".into()),
                None,
            );
        }
        for (si, s) in t.steps.iter().enumerate() {
            if current.is_some_and(|c| si >= c) {
                continue;
            }
            if let Some(sn) = &s.name {
                self.push(
                    sn.clone(),
                    CompletionKind::Step,
                    Some(format!("step {}", t.step_label(si))),
                    None,
                );
                for c in &s.captures {
                    self.push(
                        format!("{sn}.{}", c.name),
                        CompletionKind::Capture,
                        Some(format!("capture of {}", t.step_label(si))),
                        None,
                    );
                }
            }
        }
        for (oi, other) in p.tests.iter().enumerate() {
            if oi != ti {
                self.push(
                    other.name.clone(),
                    CompletionKind::Test,
                    other.title.clone(),
                    None,
                );
            }
        }
    }

    /// Attribute names starting with `prefix` (full names), from the registry and the last run.
    fn attributes(&mut self, qualifier: Option<&str>) {
        let a = self.a;
        let head = qualifier.map(|q| format!("{q}.")).unwrap_or_default();
        let want = format!("{head}{}", self.partial);
        for attr in semconv::registry().all() {
            if attr.is_template() || !attr.name.starts_with(&want) {
                continue;
            }
            if want.is_empty() && attr.stability != "stable" {
                continue;
            }
            let insert = attr.name[head.len()..].to_string();
            let detail = format!(
                "{}{}{}",
                attr.value_type(),
                if attr.stability.is_empty() {
                    String::new()
                } else {
                    format!(" · {}", attr.stability)
                },
                if attr.deprecated.is_some() {
                    " · deprecated"
                } else {
                    ""
                }
            );
            self.push_insert(
                attr.name.clone(),
                insert,
                CompletionKind::Attribute,
                Some(detail),
                Some(attribute_markdown(a, &attr.name)),
                attr.deprecated.is_some(),
            );
        }
        if let Some(lr) = &a.last_run {
            for s in &lr.run.attributes {
                if s.name.starts_with(&want)
                    && semconv::registry().lookup(&s.name).is_none()
                    && s.name[head.len()..].split('.').all(|seg| {
                        seg.chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                            && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    })
                {
                    self.push_insert(
                        s.name.clone(),
                        s.name[head.len()..].to_string(),
                        CompletionKind::Attribute,
                        Some(format!("seen on {} spans in the last run", s.spans)),
                        Some(attribute_markdown(a, &s.name)),
                        false,
                    );
                }
            }
        }
    }

    /// Values after `NAME ==`: enum members, span kinds and statuses, values of the last run.
    fn values_of(&mut self, name: &str) -> bool {
        let before = self.out.len();
        match name {
            "kind" => {
                for k in builtins::SPAN_KINDS {
                    self.push(*k, CompletionKind::Value, Some("span kind".into()), None);
                }
            }
            "status" => {
                for k in builtins::SPAN_STATUSES {
                    self.push(*k, CompletionKind::Value, Some("span status".into()), None);
                }
            }
            _ => {}
        }
        if let Some(attr) = semconv::registry().lookup(name) {
            for v in &attr.values {
                self.push(
                    v.to_string(),
                    CompletionKind::Value,
                    Some(format!("value of {}", attr.name)),
                    None,
                );
            }
        }
        if let Some(lr) = &self.a.last_run
            && let Some(&i) = lr.by_name.get(name)
        {
            for v in &lr.run.attributes[i].values {
                self.push(
                    v.to_string(),
                    CompletionKind::Value,
                    Some("seen in the last run".into()),
                    None,
                );
            }
        }
        self.out.len() > before
    }
}

const TOP: &[&str] = &["import", "let", "secret", "matcher", "service", "test"];
const TEST_BODY: &[&str] = &[
    "step", "let", "trigger", "expect", "after", "timeout", "settle",
];
const STEP_BODY: &[&str] = &["let", "trigger", "expect", "timeout", "settle"];

impl Analysis {
    /// Completions at the cursor. Items replace [`CompletionItem::range`] (the partial word
    /// after the last `.`); long lists (attributes) are already filtered by that prefix.
    pub fn completions(&self, file: FileId, offset: usize) -> Vec<CompletionItem> {
        let offset = self.clamp(file, offset);
        self.completions_in(file, self.file_text(file), offset, offset)
    }

    /// Completions at `offset` of `text`, a newer text of `file` than the one this analysis saw
    /// (the editor's, while the analysis of it is still being built): what the cursor is in
    /// comes from `text`, the names in scope from this analysis at `scope`, the same place in
    /// the text it saw. Ranges are offsets of `text`.
    pub fn completions_in(
        &self,
        file: FileId,
        text: &str,
        offset: usize,
        scope: usize,
    ) -> Vec<CompletionItem> {
        let offset = text.floor_char_boundary(offset);
        let scope = self.clamp(file, scope);
        let Some(m) = self.module_of.get(&file).map(|&m| self.c.program.module(m)) else {
            return Vec::new();
        };
        let word_start = text[..offset]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .last()
            .map_or(offset, |(i, _)| i);
        let word = &text[word_start..offset];
        let (qualifier, partial, pstart) = match word.rfind('.') {
            Some(d) => (Some(&word[..d]), &word[d + 1..], word_start + d + 1),
            None => (None, word, word_start),
        };
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            return Vec::new();
        }
        let scan = scan_before(text, word_start);
        if scan.in_string_or_comment {
            return Vec::new();
        }
        let before_colon = scan.prev.iter().rev().nth(1);
        if qualifier.is_none()
            && scan.prev.last() == Some(&Tok::Op(":"))
            && text[..word_start].ends_with(':')
            && before_colon.is_some_and(|t| matches!(t, Tok::Name(_) | Tok::RBracket | Tok::RParen))
        {
            // `span:` — a pseudo-class.
            return builtins::PSEUDO_CLASSES
                .iter()
                .map(|(name, arg)| CompletionItem {
                    label: name.to_string(),
                    kind: CompletionKind::Keyword,
                    detail: Some(match arg {
                        Some(t) => format!(":{name}({})", t.name()),
                        None => format!(":{name}"),
                    }),
                    documentation: None,
                    insert_text: name.to_string(),
                    range: pstart..offset,
                    deprecated: false,
                })
                .collect();
        }
        let mut cx = Ctx {
            a: self,
            m,
            scope,
            range: pstart..offset,
            partial,
            out: Vec::new(),
            seen: HashSet::new(),
        };
        let block = scan
            .frames
            .iter()
            .rev()
            .find_map(|f| match f {
                Frame::Block { kind, stmt } => Some((kind.clone(), stmt.clone())),
                Frame::Bracket { .. } => None,
            })
            .unwrap_or((Block::Top, Vec::new()));
        let (kind, stmt) = block;
        let brackets_above: Vec<&Frame> = scan
            .frames
            .iter()
            .rev()
            .take_while(|f| matches!(f, Frame::Bracket { .. }))
            .collect();
        let in_filter = scan
            .frames
            .iter()
            .rev()
            .take_while(|f| !matches!(f, Frame::Block { kind, .. } if *kind != Block::Object))
            .any(|f| matches!(f, Frame::Bracket { filter: true, .. }));
        let stmt_start = stmt.is_empty() && brackets_above.is_empty();
        let by_clause = stmt.first() == Some(&Tok::Kw("expect")) && stmt.contains(&Tok::Kw("by"));
        let pred = in_filter || by_clause || kind == Block::Pred;
        if let Some(q) = qualifier {
            cx.qualified(q, pred);
            return cx.out;
        }
        let prev = scan.prev.last();
        // Statement starts.
        if stmt_start {
            match &kind {
                Block::Top => cx.keywords(TOP),
                Block::Test => cx.keywords(TEST_BODY),
                Block::Step => cx.keywords(STEP_BODY),
                Block::Service => {
                    for d in builtins::SERVICE_DIRECTIVES {
                        cx.push(
                            *d,
                            CompletionKind::Option,
                            Some("service directive".into()),
                            None,
                        );
                    }
                }
                Block::TriggerOptions(k) => {
                    for o in crate::trigger::kind(k).map_or(&[][..], |k| k.options) {
                        cx.push(
                            o.name,
                            CompletionKind::Option,
                            Some(format!(
                                "trigger {k} option{}",
                                if o.keyed {
                                    " (NAME \"key\" = value)"
                                } else {
                                    ""
                                }
                            )),
                            None,
                        );
                    }
                }
                Block::Pred => {
                    cx.keywords(&["let", "any", "not"]);
                    cx.fields(builtins::AGGREGATE_FIELDS, "aggregate");
                    cx.functions(&[FnContext::Any, FnContext::Aggregate]);
                    cx.fields(builtins::SPAN_FIELDS, "span");
                    cx.attributes(None);
                    cx.names(false);
                }
                Block::Response => {
                    cx.keywords(&["let", "not"]);
                    cx.fields(builtins::RESPONSE_FIELDS, "response");
                    cx.functions(&[FnContext::Any, FnContext::Response]);
                    cx.names(false);
                }
                Block::Trace => {
                    cx.keywords(&["let", "not"]);
                    cx.fields(builtins::TRACE_FIELDS, "trace");
                    cx.functions(&[FnContext::Any]);
                    cx.names(false);
                }
                Block::Object => {}
            }
            return cx.out;
        }
        // Statement shapes.
        match stmt.as_slice() {
            [Tok::Kw("secret")] => {
                cx.keywords(&["let"]);
                return cx.out;
            }
            [Tok::Kw("import"), Tok::Str] => {
                cx.keywords(&["as"]);
                return cx.out;
            }
            [Tok::Kw("trigger")] => {
                for k in crate::trigger::kind_names() {
                    cx.push(
                        k,
                        CompletionKind::Keyword,
                        Some("trigger kind".into()),
                        None,
                    );
                }
                return cx.out;
            }
            [Tok::Kw("trigger"), Tok::Name(k)] if k == "http" => {
                for meth in builtins::HTTP_METHODS {
                    cx.push(
                        *meth,
                        CompletionKind::Value,
                        Some("HTTP method".into()),
                        None,
                    );
                }
                return cx.out;
            }
            [Tok::Kw("trigger"), Tok::Name(k), Tok::Str] if k == "grpc" => {
                cx.keywords(&["at"]);
                return cx.out;
            }
            [Tok::Name(r)] if r == "ready" && kind == Block::Service => {
                for p in builtins::READY_PROBES {
                    cx.push(
                        *p,
                        CompletionKind::Keyword,
                        Some("readiness probe".into()),
                        None,
                    );
                }
                return cx.out;
            }
            [Tok::Kw("after"), ..] => {
                if matches!(prev, Some(Tok::Kw("after")) | Some(Tok::Op(","))) {
                    let p = &self.c.program;
                    let o = scope as u32;
                    for t in &p.tests {
                        if !(t.module == m.id && t.span.start <= o && o <= t.span.end) {
                            cx.push(t.name.clone(), CompletionKind::Test, t.title.clone(), None);
                        }
                    }
                }
                return cx.out;
            }
            _ => {}
        }
        let in_expect =
            stmt.first() == Some(&Tok::Kw("expect")) && brackets_above.is_empty() && !in_filter;
        if in_expect {
            match prev {
                Some(Tok::Kw("expect")) => {
                    cx.keywords(&["no", "response", "trace", "span"]);
                    cx.names(true);
                    return cx.out;
                }
                Some(Tok::Kw("no" | "before" | "after")) => {
                    cx.keywords(&["span"]);
                    cx.names(true);
                    return cx.out;
                }
                Some(t) if t.ends_operand() && !by_clause => {
                    cx.keywords(&["by", "before", "after"]);
                    return cx.out;
                }
                _ => {}
            }
        }
        // Values after a comparison.
        if let Some(Tok::Op("==" | "!=")) = prev
            && let Some(Tok::Name(lhs)) = scan.prev.iter().rev().nth(1)
            && cx.values_of(lhs)
        {
            return cx.out;
        }
        if let Some(Tok::Op("[")) = prev
            && let Some(Tok::Kw("in")) = scan.prev.iter().rev().nth(1)
            && let Some(Tok::Name(lhs)) = scan.prev.iter().rev().nth(2)
            && cx.values_of(lhs)
        {
            return cx.out;
        }
        if prev.is_some_and(Tok::ends_operand)
            && brackets_above.is_empty()
            && (pred || kind == Block::Response || kind == Block::Trace)
        {
            cx.keywords(&["and", "or", "contains", "matches", "in"]);
            return cx.out;
        }
        // An operand.
        match kind {
            _ if pred => {
                cx.fields(builtins::SPAN_FIELDS, "span");
                if kind == Block::Pred && !in_filter && !by_clause {
                    cx.fields(builtins::AGGREGATE_FIELDS, "aggregate");
                    cx.functions(&[FnContext::Any, FnContext::Aggregate]);
                } else {
                    cx.functions(&[FnContext::Any]);
                }
                cx.keywords(&["not", "true", "false", "null"]);
                cx.attributes(None);
                cx.names(false);
            }
            Block::Response => {
                cx.fields(builtins::RESPONSE_FIELDS, "response");
                cx.functions(&[FnContext::Any, FnContext::Response]);
                cx.keywords(&["not", "true", "false", "null"]);
                cx.names(false);
            }
            Block::Trace => {
                cx.fields(builtins::TRACE_FIELDS, "trace");
                cx.functions(&[FnContext::Any]);
                cx.keywords(&["not", "true", "false", "null"]);
                cx.names(false);
            }
            _ => {
                let selector = stmt.first() == Some(&Tok::Kw("matcher")) || in_expect || brackets_above.iter().any(|f| matches!(f, Frame::Bracket { callee: Some(c), .. } if c == "not" || c == "has"));
                cx.functions(&[FnContext::Any]);
                cx.keywords(&["true", "false", "null", "span"]);
                cx.names(selector || stmt.first() == Some(&Tok::Kw("expect")));
            }
        }
        cx.out
    }
}

impl Ctx<'_> {
    /// Completions after `QUALIFIER.`: module members, captures of a step, steps of a test,
    /// attributes under a namespace.
    fn qualified(&mut self, q: &str, pred: bool) {
        let a = self.a;
        let p = &a.c.program;
        let m = self.m;
        if let Some(&(target, _)) = m.imports.get(q) {
            let tm = p.module(target);
            self.matchers_of(tm, "");
            let mut lets: Vec<&String> = tm.lets.keys().collect();
            lets.sort();
            for l in lets {
                let doc = tm.ast.items.get(tm.lets[l]).and_then(|i| i.doc.clone());
                self.push(
                    l.clone(),
                    CompletionKind::Let,
                    Some(format!("let from {}", tm.name)),
                    doc,
                );
            }
        }
        if !pred
            && !m.imports.contains_key(q)
            && let Some(src) = crate::stdlib::module(&format!("std/{q}"))
        {
            // A standard module not imported yet: its matchers, with what to add.
            let parsed = crate::parser::parse(crate::span::FileId(0), src);
            for item in &parsed.file.items {
                if let ItemKind::Matcher(mt) = &item.kind {
                    self.push(
                        mt.name.name.clone(),
                        CompletionKind::Matcher,
                        Some(format!(
                            "matcher {}({}) — needs `import \"std/{q}\"`",
                            mt.name.name,
                            super::nav::matcher_params(mt)
                        )),
                        item.doc.clone(),
                    );
                }
            }
        }
        let o = self.scope as u32;
        let here = p
            .tests
            .iter()
            .position(|t| t.module == m.id && t.span.start <= o && o <= t.span.end);
        let segs: Vec<&str> = q.split('.').collect();
        let captures_of = |cx: &mut Self, ti: usize, si: usize| {
            let t = &p.tests[ti];
            for c in &t.steps[si].captures {
                cx.push(
                    c.name.clone(),
                    CompletionKind::Capture,
                    Some(format!("capture of {}", t.step_label(si))),
                    None,
                );
            }
        };
        match segs.as_slice() {
            [step] => {
                if let Some(ti) = here
                    && let Some(si) = p.tests[ti]
                        .steps
                        .iter()
                        .position(|s| s.name.as_deref() == Some(*step))
                {
                    captures_of(self, ti, si);
                }
                if let Some(&ti) = p.test_index.get(*step) {
                    let t = &p.tests[ti];
                    for (si, s) in t.steps.iter().enumerate() {
                        match &s.name {
                            Some(n) => self.push(
                                n.clone(),
                                CompletionKind::Step,
                                Some(format!("step {}", t.step_label(si))),
                                None,
                            ),
                            None => captures_of(self, ti, si),
                        }
                    }
                }
            }
            [test, step] => {
                if let Some(&ti) = p.test_index.get(*test)
                    && let Some(si) = p.tests[ti]
                        .steps
                        .iter()
                        .position(|s| s.name.as_deref() == Some(*step))
                {
                    captures_of(self, ti, si);
                }
            }
            _ => {}
        }
        if pred {
            if q == "scope" {
                self.push(
                    "name",
                    CompletionKind::Field,
                    Some("span: string".into()),
                    Some("The instrumentation scope name.".into()),
                );
            }
            self.attributes(Some(q));
        }
    }
}
