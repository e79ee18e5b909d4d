//! Name resolution, type checking and lints over a loaded [`Program`].
//!
//! One pass over every module. Names resolve in this order (the brief's "variables win"): locals
//! (matcher parameters, step `let`s), module `let`s, `namespace.let` of imports, captures
//! (`step.name`, `test.step.name`), then by context: span fields and span attributes inside
//! predicates, response fields in `expect response`, trace fields in `expect trace`.
//!
//! The checker reports facts as [`Diagnostic`]s and records the data dependencies between steps
//! and tests ([`Dep`]) that the planner turns into DAG edges. It never stops at the first error.
//!
//! This file holds the checker's state and its entry points; the checks live in child modules:
//! `items` (module `let`s, matchers, services, locals), `steps` (tests, steps, `expect`),
//! `directives` (`trigger` and the directive shapes it shares with services), `expr` (expression
//! types and type expectations), `names` (path resolution), `attributes` (semantic-convention
//! attributes) and `call` (matcher and function calls, regex and JSONPath literals).

use crate::ast::{self, Expr, ExprKind, ItemKind, Lit};
use crate::builtins::Ty;
use crate::deps::{Dep, Phase};
use crate::diagnostic::{Code, Diagnostic};
use crate::options::Options;
use crate::program::{ModuleId, Origin, Program};
use crate::span::Span;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};

mod attributes;
mod call;
mod directives;
mod expr;
mod items;
mod names;
mod steps;

/// A process-wide memo of a pure function of a string, for what the checker computes again on
/// every compilation of an edited suite (the language server compiles on each edit).
type Memo<V> = LazyLock<Mutex<HashMap<String, V>>>;

/// `f(key)`, remembered in `memo` (which forgets everything when it holds too many keys, so its
/// memory stays bounded whatever the input).
fn memo<V: Clone>(memo: &Memo<V>, key: &str, f: impl FnOnce(&str) -> V) -> V {
    const MAX_KEYS: usize = 4096;
    let lock = || {
        memo.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some(v) = lock().get(key) {
        return v.clone();
    }
    // Computed without the lock: other threads may check at the same time.
    let v = f(key);
    let mut m = lock();
    if m.len() >= MAX_KEYS {
        m.clear();
    }
    m.insert(key.to_string(), v.clone());
    v
}

/// What a name written in the source refers to, as the checker resolved it (recorded for the
/// language server: go to definition, references, rename, hover, semantic highlighting).
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution {
    /// A step or test `let`, or a matcher parameter: the span of its defining name.
    Local(Span),
    /// A module-level `let` (item index in the module).
    Let {
        /// The module defining it.
        module: ModuleId,
        /// Its item index.
        item: usize,
    },
    /// A matcher (item index in the module).
    Matcher {
        /// The module defining it.
        module: ModuleId,
        /// Its item index.
        item: usize,
    },
    /// An import namespace: the `import` item of the module where the name is written.
    Namespace {
        /// The importing module.
        module: ModuleId,
        /// The index of the `import` item.
        item: usize,
    },
    /// A test (index in [`Program::tests`]).
    Test(usize),
    /// A step of a test.
    Step {
        /// The test.
        test: usize,
        /// The step.
        step: usize,
    },
    /// A capture of a step.
    Capture {
        /// The producing test.
        test: usize,
        /// The producing step.
        step: usize,
        /// The capture's name.
        name: String,
    },
    /// A built-in function.
    Function(&'static str),
    /// A span field (`name`, `duration`, …).
    SpanField(&'static str),
    /// A field of `expect response { … }`.
    ResponseField(&'static str),
    /// A field of `expect trace { … }`.
    TraceField(&'static str),
    /// The aggregate `count`.
    Aggregate,
    /// A span attribute; its name is the text of the reference.
    Attribute,
    /// A span kind or status constant (`server`, `error`).
    Constant,
}

/// A resolved name: where it is written and what it means.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    /// The written name (one segment of a dotted path, or the whole path for attributes).
    pub span: Span,
    /// What it refers to.
    pub resolution: Resolution,
}

/// What the checker learnt beyond diagnostics: every resolved name and every expression's type.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// Resolved names, in the order the checker met them.
    pub references: Vec<Reference>,
    /// Each checked expression's span and static type.
    pub types: Vec<(Span, Ty)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    /// Ordinary values; `span` is the selection of all spans.
    Value,
    /// A predicate evaluated per span; `block` allows aggregates (`count`, `sum(…)`).
    Pred { block: bool },
    /// `expect response { … }`.
    Response,
    /// `expect trace { … }`.
    Trace,
}

struct Local {
    name: String,
    ty: Ty,
    span: Span,
    used: Cell<bool>,
    lint_unused: bool,
}

struct Scope {
    module: ModuleId,
    locals: Vec<Local>,
    test: Option<usize>,
    step: Option<usize>,
    phase: Phase,
}

impl Scope {
    fn module(module: ModuleId) -> Self {
        Scope {
            module,
            locals: Vec::new(),
            test: None,
            step: None,
            phase: Phase::Trigger,
        }
    }
}

/// The checker's state for one compilation.
pub struct Checker<'a> {
    program: &'a Program,
    options: &'a Options,
    diags: Vec<Diagnostic>,
    /// (module, item index) of lets, matchers and imports that something uses.
    used: HashSet<(ModuleId, usize)>,
    let_types: HashMap<(ModuleId, usize), Ty>,
    let_in_progress: HashSet<(ModuleId, usize)>,
    deps: Vec<Dep>,
    index: Index,
}

impl<'a> Checker<'a> {
    /// A checker over a loaded program.
    pub fn new(program: &'a Program, options: &'a Options) -> Self {
        Checker {
            program,
            options,
            diags: Vec::new(),
            used: HashSet::new(),
            let_types: HashMap::new(),
            let_in_progress: HashSet::new(),
            deps: Vec::new(),
            index: Index::default(),
        }
    }

    /// Takes the names and types recorded so far (call after [`Checker::check_all`]).
    pub fn take_index(&mut self) -> Index {
        std::mem::take(&mut self.index)
    }

    fn refer(&mut self, span: Span, resolution: Resolution) {
        self.index.references.push(Reference { span, resolution });
    }

    /// Checks every module and test.
    pub fn check_all(&mut self) {
        for m in &self.program.modules {
            for (i, item) in m.ast.items.iter().enumerate() {
                match &item.kind {
                    ItemKind::Let(_) => {
                        self.let_type(m.id, i);
                    }
                    ItemKind::Matcher(mt) => self.check_matcher(m.id, mt),
                    ItemKind::Service(s) => self.check_service(m.id, s),
                    ItemKind::Import(_) | ItemKind::Test(_) | ItemKind::Error => {}
                }
            }
        }
        for ti in 0..self.program.tests.len() {
            self.check_test(ti);
        }
    }

    /// Adds the unused-name lints and hands over diagnostics and dependencies.
    pub fn finish(mut self, out: &mut Vec<Diagnostic>) -> Vec<Dep> {
        for m in &self.program.modules {
            if m.origin == Origin::Std {
                continue;
            }
            // A module without tests is a library: its matchers are its API.
            let library = m.tests.is_empty();
            for (i, item) in m.ast.items.iter().enumerate() {
                if self.used.contains(&(m.id, i)) {
                    continue;
                }
                let d = match &item.kind {
                    ItemKind::Matcher(_) if library => continue,
                    ItemKind::Let(l) => Diagnostic::new(
                        Code::UnusedLet,
                        l.name.span,
                        format!("`{}` is never used", l.name.name),
                    )
                    .with_label("defined here")
                    .with_help("remove it, or prefix the name with `_` to keep it"),
                    ItemKind::Matcher(mt) => Diagnostic::new(
                        Code::UnusedMatcher,
                        mt.name.span,
                        format!("matcher `{}` is never used", mt.name.name),
                    )
                    .with_label("defined here"),
                    // An import of a module with services is used: it starts them.
                    ItemKind::Import(imp)
                        if m.origin == Origin::Root
                            && m.imports.values().any(|&(target, idx)| {
                                idx == i && self.program.module(target).services.is_empty()
                            }) =>
                    {
                        Diagnostic::new(
                            Code::UnusedImport,
                            imp.path_span,
                            format!("nothing from `{}` is used", imp.path),
                        )
                        .with_label("unused import")
                        .with_fix("remove the import", vec![(item.span, String::new())])
                    }
                    _ => continue,
                };
                let name_starts_underscore = matches!(&item.kind, ItemKind::Let(l) if l.name.name.starts_with('_'))
                    || matches!(&item.kind, ItemKind::Matcher(mt) if mt.name.name.starts_with('_'));
                // Lets and matchers of imported modules are their API: unused there is fine.
                let api = m.origin == Origin::Import && !matches!(item.kind, ItemKind::Import(_));
                if !name_starts_underscore && !api {
                    self.diags.push(d);
                }
            }
        }
        out.append(&mut self.diags);
        self.deps
    }
}

impl Ctx {
    /// The context of the selection a filter or pseudo-class applies to.
    fn outer(self) -> Ctx {
        match self {
            Ctx::Pred { .. } => Ctx::Pred { block: false },
            c => c,
        }
    }
}

/// The name `e` is when it is a bare one-segment name (`GET`, `http`).
fn single_name(e: &Expr) -> Option<&ast::Ident> {
    match &e.kind {
        ExprKind::Path(p) if p.segments.len() == 1 => p.segments.first(),
        _ => None,
    }
}

/// The text of `e` when it is a string literal without interpolation.
fn plain_string(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Lit(Lit::Str(s)) => s.as_plain(),
        _ => None,
    }
}
