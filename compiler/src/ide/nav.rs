//! Definitions, references, rename and symbols.

use super::{Analysis, Def};
use crate::ast::{self, BlockStmtKind, ExpectKind, ItemKind, StmtKind};
use crate::compile::default_namespace;
use crate::program::{Module, Origin, StepLoc};
use crate::span::{FileId, Span};
use std::collections::BTreeMap;
use std::ops::Range;

/// What a definition is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolKind {
    /// An import namespace (`import "std/http"` → `http`, or the `as` name).
    Namespace,
    /// A module-level `let`.
    Let,
    /// A matcher.
    Matcher,
    /// A matcher parameter.
    Parameter,
    /// A service.
    Service,
    /// A test.
    Test,
    /// A step of a test.
    Step,
    /// A `let` in a test or step body.
    Variable,
    /// A `let` inside an expectation block.
    Capture,
}

impl SymbolKind {
    /// A lower-case word for messages.
    pub fn describe(self) -> &'static str {
        match self {
            SymbolKind::Namespace => "import namespace",
            SymbolKind::Let => "let",
            SymbolKind::Matcher => "matcher",
            SymbolKind::Parameter => "parameter",
            SymbolKind::Service => "service",
            SymbolKind::Test => "test",
            SymbolKind::Step => "step",
            SymbolKind::Variable => "variable",
            SymbolKind::Capture => "capture",
        }
    }
}

/// A byte range in a named file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Location {
    /// The file.
    pub file: FileId,
    /// Its name (a path as given to the compiler, or `std/http`).
    pub path: String,
    /// Byte range in its text.
    pub range: Range<usize>,
}

/// Replace `range` with `new_text`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TextEdit {
    /// Byte range in the file's text.
    pub range: Range<usize>,
    /// The replacement.
    pub new_text: String,
}

/// The edits of one file, sorted, not overlapping.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FileEdit {
    /// The file.
    pub file: FileId,
    /// Its name.
    pub path: String,
    /// The edits.
    pub edits: Vec<TextEdit>,
}

/// An entry of a file's outline.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DocumentSymbol {
    /// The name.
    pub name: String,
    /// A short detail (a test's title, a matcher's parameters, a let's value).
    pub detail: Option<String>,
    /// What it is.
    pub kind: SymbolKind,
    /// The whole definition.
    pub range: Range<usize>,
    /// The name.
    pub selection_range: Range<usize>,
    /// Nested symbols (steps of a test, captures of a step).
    pub children: Vec<DocumentSymbol>,
}

/// A search result over the whole workspace.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WorkspaceSymbol {
    /// The name.
    pub name: String,
    /// What it is.
    pub kind: SymbolKind,
    /// The enclosing test or module.
    pub container: Option<String>,
    /// Where its name is.
    pub location: Location,
}

/// The answer to "go to definition".
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Definition {
    /// The name under the cursor.
    pub origin: Range<usize>,
    /// The defining name.
    pub target: Location,
    /// The whole definition.
    pub full: Range<usize>,
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: SymbolKind,
}

fn add(a: &mut Analysis, def: Def) {
    let i = a.defs.len();
    a.def_at.entry(def.span).or_insert(i);
    a.defs.push(def);
}

pub(super) fn collect_defs(a: &mut Analysis) {
    let mut defs = Vec::new();
    let p = &a.c.program;
    for m in &p.modules {
        for item in &m.ast.items {
            let base = |name: &str, span: Span, kind| Def {
                name: name.to_string(),
                span,
                full: item.span,
                kind,
                module: m.id,
                test: None,
                step: None,
                implicit: false,
            };
            match &item.kind {
                ItemKind::Import(imp) => {
                    let mut d = match &imp.alias {
                        Some(al) => base(&al.name, al.span, SymbolKind::Namespace),
                        None => base(
                            &default_namespace(&imp.path),
                            imp.path_span,
                            SymbolKind::Namespace,
                        ),
                    };
                    d.implicit = imp.alias.is_none();
                    defs.push(d);
                }
                ItemKind::Let(l) => defs.push(base(&l.name.name, l.name.span, SymbolKind::Let)),
                ItemKind::Matcher(mt) => {
                    defs.push(base(&mt.name.name, mt.name.span, SymbolKind::Matcher));
                    for prm in &mt.params {
                        defs.push(base(&prm.name.name, prm.name.span, SymbolKind::Parameter));
                    }
                }
                ItemKind::Service(s) => {
                    defs.push(base(&s.name.name, s.name.span, SymbolKind::Service))
                }
                ItemKind::Test(t) if m.origin != Origin::Root => {
                    defs.push(base(&t.name.name, t.name.span, SymbolKind::Test))
                }
                ItemKind::Test(_) | ItemKind::Error => {}
            }
        }
    }
    for (ti, t) in p.tests.iter().enumerate() {
        let m = p.module(t.module);
        let local = |name: &ast::Ident, full: Span, kind, step: Option<usize>| Def {
            name: name.name.clone(),
            span: name.span,
            full,
            kind,
            module: m.id,
            test: Some(ti),
            step,
            implicit: false,
        };
        defs.push(Def {
            name: t.name.clone(),
            span: t.name_span,
            full: t.span,
            kind: SymbolKind::Test,
            module: m.id,
            test: Some(ti),
            step: None,
            implicit: false,
        });
        let stepped = t.steps.iter().any(|s| s.loc != StepLoc::Inline);
        if stepped {
            for stmt in p.test_body(ti) {
                if let StmtKind::Let(l) = &stmt.kind {
                    defs.push(local(&l.name, stmt.span, SymbolKind::Variable, None));
                }
            }
        }
        for (si, s) in t.steps.iter().enumerate() {
            if let Some(name) = &s.name {
                defs.push(Def {
                    name: name.clone(),
                    span: s.name_span,
                    full: s.span,
                    kind: SymbolKind::Step,
                    module: m.id,
                    test: Some(ti),
                    step: Some(si),
                    implicit: false,
                });
            }
            for stmt in p.step_body(ti, si) {
                if let StmtKind::Let(l) = &stmt.kind {
                    defs.push(local(&l.name, stmt.span, SymbolKind::Variable, Some(si)));
                }
            }
            for c in &s.captures {
                defs.push(Def {
                    name: c.name.clone(),
                    span: c.span,
                    full: c.span,
                    kind: SymbolKind::Capture,
                    module: m.id,
                    test: Some(ti),
                    step: Some(si),
                    implicit: false,
                });
            }
        }
    }
    for d in defs {
        add(a, d);
    }
}

/// Keywords of the language: never valid as names.
pub const KEYWORDS: &[&str] = &[
    "import", "as", "let", "secret", "matcher", "service", "test", "step", "after", "before",
    "timeout", "settle", "trigger", "expect", "no", "by", "response", "trace", "any", "and", "or",
    "not", "contains", "matches", "in", "true", "false", "null", "at", "within",
];

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&s)
}

impl Analysis {
    /// The definition of the name under the cursor (a definition's own name answers itself).
    pub fn definition(&self, file: FileId, offset: usize) -> Option<Definition> {
        let offset = self.clamp(file, offset);
        // On an import's path: the imported module itself.
        if let Some(m) = self.module_of.get(&file).map(|&m| self.c.program.module(m)) {
            let o = offset as u32;
            for item in &m.ast.items {
                if let ItemKind::Import(imp) = &item.kind
                    && imp.path_span.start <= o
                    && o <= imp.path_span.end
                    && let Some(&(target, _)) = m
                        .imports
                        .values()
                        .find(|(_, idx)| m.ast.items.get(*idx).is_some_and(|i| i.span == item.span))
                {
                    let tm = self.c.program.module(target);
                    let len = self.file_text(tm.file).len();
                    return Some(Definition {
                        origin: imp.path_span.range(),
                        target: Location {
                            file: tm.file,
                            path: tm.name.clone(),
                            range: 0..0,
                        },
                        full: 0..len,
                        name: tm.name.clone(),
                        kind: SymbolKind::Namespace,
                    });
                }
            }
        }
        let (origin, d) = match self.ref_at(file, offset) {
            Some((r, d)) if *d != usize::MAX => (r.span.range(), *d),
            _ => {
                let d = self.def_named_at(file, offset)?;
                (self.defs[d].span.range(), d)
            }
        };
        let def = &self.defs[d];
        Some(Definition {
            origin,
            target: self.location(def.span),
            full: def.full.range(),
            name: def.name.clone(),
            kind: def.kind,
        })
    }

    /// Every use of the name under the cursor, across files, in file then position order; with
    /// `include_declaration`, its definition too.
    pub fn references(
        &self,
        file: FileId,
        offset: usize,
        include_declaration: bool,
    ) -> Vec<Location> {
        let Some(d) = self.def_at_cursor(file, offset) else {
            return Vec::new();
        };
        let mut out: Vec<Location> = self.uses[d]
            .iter()
            .map(|&i| self.location(self.refs[i].0.span))
            .collect();
        if include_declaration {
            out.push(self.location(self.defs[d].span));
        }
        out.sort_by_key(|l| (l.file, l.range.start, l.range.end));
        out.dedup();
        out
    }

    /// The range of the name under the cursor and its text, when it can be renamed; otherwise
    /// why not.
    pub fn prepare_rename(
        &self,
        file: FileId,
        offset: usize,
    ) -> Result<(Range<usize>, String), String> {
        let offset = self.clamp(file, offset);
        let range = match self.ref_at(file, offset) {
            Some((r, d)) if *d != usize::MAX => r.span.range(),
            Some((r, _)) => {
                return Err(format!(
                    "`{}` is built into the language and cannot be renamed",
                    self.c.sources.slice(r.span)
                ));
            }
            None => {
                let d = self
                    .def_named_at(file, offset)
                    .ok_or_else(|| "there is no name to rename here".to_string())?;
                self.defs[d].span.range()
            }
        };
        let d = self
            .def_at_cursor(file, offset)
            .ok_or_else(|| "there is no name to rename here".to_string())?;
        self.renamable(d)?;
        if self.defs[d].implicit && self.defs[d].span.range() == range {
            // `import "std/http"`: the namespace `http` has no written name yet.
            return Ok((range, self.defs[d].name.clone()));
        }
        let text = self.file_text(file).get(range.clone()).unwrap_or("");
        Ok((range, text.to_string()))
    }

    fn renamable(&self, d: usize) -> Result<(), String> {
        let def = &self.defs[d];
        if self.is_std(def.span.file) {
            return Err(format!(
                "`{}` is defined in the standard library (`{}`), which cannot be edited",
                def.name,
                self.file_name(def.span.file)
            ));
        }
        Ok(())
    }

    /// Renames the definition under the cursor and all its uses. Refuses names of the standard
    /// library, names that are not identifiers or are keywords, and names that would clash with
    /// another definition in the same scope.
    pub fn rename(
        &self,
        file: FileId,
        offset: usize,
        new_name: &str,
    ) -> Result<Vec<FileEdit>, String> {
        let d = self
            .def_at_cursor(file, offset)
            .ok_or_else(|| "there is no name to rename here".to_string())?;
        self.renamable(d)?;
        let def = &self.defs[d];
        if !valid_name(new_name) {
            return Err(if KEYWORDS.contains(&new_name) {
                format!("`{new_name}` is a keyword")
            } else {
                format!(
                    "`{new_name}` is not a valid name: use letters, digits and `_`, not starting with a digit"
                )
            });
        }
        if new_name == def.name {
            return Ok(Vec::new());
        }
        if let Some(other) = self.clash(d, new_name) {
            let o = &self.defs[other];
            let f = self.source(o.span.file);
            let (line, _) = f.map_or((0, 0), |f| f.line_col_human(o.span.start));
            return Err(format!(
                "a {} named `{new_name}` already exists ({}:{line})",
                o.kind.describe(),
                self.file_name(o.span.file)
            ));
        }
        let mut by_file: BTreeMap<FileId, Vec<TextEdit>> = BTreeMap::new();
        if def.implicit {
            // `import "std/http"` has no written name: give it one.
            by_file.entry(def.span.file).or_default().push(TextEdit {
                range: def.span.end as usize..def.span.end as usize,
                new_text: format!(" as {new_name}"),
            });
        } else {
            by_file.entry(def.span.file).or_default().push(TextEdit {
                range: def.span.range(),
                new_text: new_name.to_string(),
            });
        }
        for &i in &self.uses[d] {
            let s = self.refs[i].0.span;
            if self.is_std(s.file) {
                continue;
            }
            by_file.entry(s.file).or_default().push(TextEdit {
                range: s.range(),
                new_text: new_name.to_string(),
            });
        }
        Ok(by_file
            .into_iter()
            .map(|(file, mut edits)| {
                edits.sort_by_key(|e| (e.range.start, e.range.end));
                edits.dedup();
                FileEdit {
                    file,
                    path: self.file_name(file).to_string(),
                    edits,
                }
            })
            .collect())
    }

    /// Another definition that `new_name` would collide with.
    fn clash(&self, d: usize, new_name: &str) -> Option<usize> {
        let def = &self.defs[d];
        let module_level = |k: SymbolKind| {
            matches!(
                k,
                SymbolKind::Let | SymbolKind::Matcher | SymbolKind::Namespace | SymbolKind::Service
            )
        };
        self.defs.iter().enumerate().find_map(|(i, o)| {
            if i == d || o.name != new_name {
                return None;
            }
            let hit = match def.kind {
                SymbolKind::Let | SymbolKind::Matcher | SymbolKind::Namespace => {
                    o.module == def.module && module_level(o.kind)
                }
                SymbolKind::Service => o.kind == SymbolKind::Service,
                SymbolKind::Test => o.kind == SymbolKind::Test,
                SymbolKind::Step => o.kind == SymbolKind::Step && o.test == def.test,
                SymbolKind::Capture => {
                    o.kind == SymbolKind::Capture && o.test == def.test && o.step == def.step
                }
                SymbolKind::Variable => {
                    (o.kind == SymbolKind::Variable
                        && o.test == def.test
                        && (o.step == def.step || o.step.is_none() || def.step.is_none()))
                        || (o.kind == SymbolKind::Let && o.module == def.module)
                        || (o.kind == SymbolKind::Step && o.test == def.test)
                }
                SymbolKind::Parameter => {
                    (o.kind == SymbolKind::Parameter && o.full == def.full)
                        || (o.kind == SymbolKind::Let && o.module == def.module)
                }
            };
            hit.then_some(i)
        })
    }

    /// The outline of one file: imports, lets, matchers, services, tests with their steps, and
    /// the lets and captures inside them.
    pub fn document_symbols(&self, file: FileId) -> Vec<DocumentSymbol> {
        let Some(m) = self.module_of.get(&file).map(|&m| self.c.program.module(m)) else {
            return Vec::new();
        };
        let text = self.file_text(file);
        let snippet = |s: Span| -> String {
            let t = text.get(s.range()).unwrap_or("");
            let line = t.lines().next().unwrap_or("").trim();
            line.chars().take(60).collect()
        };
        let mut out = Vec::new();
        for item in &m.ast.items {
            let sym = |name: &str, sel: Span, kind, detail: Option<String>| DocumentSymbol {
                name: name.to_string(),
                detail,
                kind,
                range: item.span.range(),
                selection_range: sel.range(),
                children: Vec::new(),
            };
            match &item.kind {
                ItemKind::Import(imp) => {
                    let (name, sel) = match &imp.alias {
                        Some(a) => (a.name.clone(), a.span),
                        None => (default_namespace(&imp.path), imp.path_span),
                    };
                    out.push(sym(
                        &name,
                        sel,
                        SymbolKind::Namespace,
                        Some(imp.path.clone()),
                    ));
                }
                ItemKind::Let(l) => out.push(sym(
                    &l.name.name,
                    l.name.span,
                    SymbolKind::Let,
                    Some(snippet(l.value.span)),
                )),
                ItemKind::Matcher(mt) => {
                    let mut s = sym(
                        &mt.name.name,
                        mt.name.span,
                        SymbolKind::Matcher,
                        Some(format!("({})", matcher_params(mt))),
                    );
                    s.children = mt
                        .params
                        .iter()
                        .map(|p| DocumentSymbol {
                            name: p.name.name.clone(),
                            detail: None,
                            kind: SymbolKind::Parameter,
                            range: p.name.span.range(),
                            selection_range: p.name.span.range(),
                            children: Vec::new(),
                        })
                        .collect();
                    out.push(s);
                }
                ItemKind::Service(s) => {
                    out.push(sym(&s.name.name, s.name.span, SymbolKind::Service, None))
                }
                ItemKind::Test(t) => out.push(self.test_symbol(m, item, t)),
                ItemKind::Error => {}
            }
        }
        out
    }

    fn test_symbol(&self, m: &Module, item: &ast::Item, t: &ast::Test) -> DocumentSymbol {
        let var = |l: &ast::Let, full: Span| DocumentSymbol {
            name: l.name.name.clone(),
            detail: None,
            kind: SymbolKind::Variable,
            range: full.range(),
            selection_range: l.name.span.range(),
            children: Vec::new(),
        };
        let body_syms = |body: &[ast::Stmt]| -> Vec<DocumentSymbol> {
            let mut out = Vec::new();
            for stmt in body {
                match &stmt.kind {
                    StmtKind::Let(l) => out.push(var(l, stmt.span)),
                    StmtKind::Expect(e) => {
                        let block = match &e.kind {
                            ExpectKind::Response(b) | ExpectKind::Trace(b) => Some(b),
                            ExpectKind::Select { block, .. } => block.as_ref(),
                            ExpectKind::Order { .. } => None,
                        };
                        for bs in block.into_iter().flat_map(|b| &b.stmts) {
                            if let BlockStmtKind::Let(l) = &bs.kind {
                                let mut s = var(l, bs.span);
                                s.kind = SymbolKind::Capture;
                                out.push(s);
                            }
                        }
                    }
                    _ => {}
                }
            }
            out
        };
        let mut children = Vec::new();
        let has_steps = t.body.iter().any(|s| matches!(s.kind, StmtKind::Step(_)));
        for stmt in &t.body {
            match &stmt.kind {
                StmtKind::Step(s) => children.push(DocumentSymbol {
                    name: s.name.name.clone(),
                    detail: None,
                    kind: SymbolKind::Step,
                    range: stmt.span.range(),
                    selection_range: s.name.span.range(),
                    children: body_syms(&s.body),
                }),
                StmtKind::Let(l) if has_steps => children.push(var(l, stmt.span)),
                _ => {}
            }
        }
        if !has_steps {
            children = body_syms(&t.body);
        }
        let _ = m;
        DocumentSymbol {
            name: t.name.name.clone(),
            detail: t.title.as_ref().and_then(|s| s.as_plain()),
            kind: SymbolKind::Test,
            range: item.span.range(),
            selection_range: t.name.span.range(),
            children,
        }
    }

    /// Definitions whose name matches `query` (case-insensitive, the query's characters in
    /// order), best matches first; at most 256. Standard-library matchers are included.
    pub fn workspace_symbols(&self, query: &str) -> Vec<WorkspaceSymbol> {
        let q: Vec<char> = query.to_lowercase().chars().collect();
        let mut hits: Vec<(u32, &Def)> = self
            .defs
            .iter()
            .filter(|d| {
                !matches!(d.kind, SymbolKind::Parameter | SymbolKind::Namespace) && !d.implicit
            })
            .filter_map(|d| fuzzy_score(&q, &d.name).map(|s| (s, d)))
            .collect();
        hits.sort_by(|(sa, a), (sb, b)| {
            sa.cmp(sb)
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.span.cmp(&b.span))
        });
        hits.truncate(256);
        hits.into_iter()
            .map(|(_, d)| WorkspaceSymbol {
                name: d.name.clone(),
                kind: d.kind,
                container: match (d.test, d.step) {
                    (Some(t), Some(s)) if d.kind != SymbolKind::Step => {
                        Some(self.c.program.tests[t].step_label(s))
                    }
                    (Some(t), _) if d.kind != SymbolKind::Test => {
                        Some(self.c.program.tests[t].name.clone())
                    }
                    _ => Some(self.c.program.module(d.module).name.clone()),
                },
                location: self.location(d.span),
            })
            .collect()
    }
}

/// Lower is better; `None` when the query's characters are not in the name in order.
fn fuzzy_score(q: &[char], name: &str) -> Option<u32> {
    if q.is_empty() {
        return Some(0);
    }
    let lower = name.to_lowercase();
    if lower.starts_with(&q.iter().collect::<String>()) {
        return Some(0);
    }
    let mut qi = 0;
    let mut gaps = 1;
    for c in lower.chars() {
        if qi < q.len() && c == q[qi] {
            qi += 1;
        } else if qi > 0 && qi < q.len() {
            gaps += 1;
        }
    }
    (qi == q.len()).then_some(gaps)
}

/// `a, b?` for a matcher's parameters (`?` marks a default).
pub(crate) fn matcher_params(mt: &ast::Matcher) -> String {
    mt.params
        .iter()
        .map(|p| {
            if p.default.is_some() {
                format!("{}?", p.name.name)
            } else {
                p.name.name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
