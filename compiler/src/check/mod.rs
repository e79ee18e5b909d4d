//! Name resolution, type checking and lints over a loaded [`Program`].
//!
//! One pass over every module. Names resolve in this order (the brief's "variables win"): locals
//! (matcher parameters, step `let`s), module `let`s, `namespace.let` of imports, captures
//! (`step.name`, `test.step.name`), then by context: span fields and span attributes inside
//! predicates, response fields in `expect response`, trace fields in `expect trace`.
//!
//! The checker reports facts as [`Diagnostic`]s and records the data dependencies between steps
//! and tests ([`Dep`]) that the planner turns into DAG edges. It never stops at the first error.

use crate::ast::{
    self, BinaryOp, BlockStmtKind, Expr, ExprKind, ItemKind, Lit, Path, StmtKind, StrPart, UnaryOp,
};
use crate::builtins::{self, FnContext, Ty, did_you_mean};
use crate::deps::{Dep, DepKind, Phase};
use crate::diagnostic::{Code, Diagnostic};
use crate::options::Options;
use crate::program::{CaptureSource, ModuleId, Origin, Program};
use crate::semconv;
use crate::span::{SourceMap, Span};
use crate::trigger;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};

/// A process-wide memo of a pure function of a string, for what the checker computes again on
/// every compilation of an edited suite (the language server compiles on each edit).
type Memo<V> = LazyLock<Mutex<HashMap<String, V>>>;

/// Each regular expression's compile error (`None`: it compiles). Compiling one costs
/// microseconds to milliseconds; a suite repeats the same few.
static REGEX_ERRORS: Memo<Option<String>> = LazyLock::new(Default::default);

/// The nearest semantic-convention attribute name to each unknown one.
static CLOSEST: Memo<Option<&'static str>> = LazyLock::new(Default::default);

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
    #[allow(dead_code)]
    sources: &'a SourceMap,
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
    pub fn new(program: &'a Program, sources: &'a SourceMap, options: &'a Options) -> Self {
        Checker {
            program,
            sources,
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
                    ItemKind::Import(imp)
                        if m.origin == Origin::Root
                            && m.imports.values().any(|&(_, idx)| idx == i) =>
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

    // ----- items -----------------------------------------------------------------------------

    fn let_type(&mut self, module: ModuleId, item: usize) -> Ty {
        let key = (module, item);
        if let Some(&t) = self.let_types.get(&key) {
            return t;
        }
        if !self.let_in_progress.insert(key) {
            return Ty::Any;
        }
        let program = self.program;
        let ty = match &program.module(module).ast.items[item].kind {
            ItemKind::Let(l) => {
                let mut sc = Scope::module(module);
                self.expr(&l.value, &mut sc, Ctx::Value)
            }
            _ => Ty::Error,
        };
        self.let_in_progress.remove(&key);
        self.let_types.insert(key, ty);
        ty
    }

    fn check_matcher(&mut self, module: ModuleId, mt: &ast::Matcher) {
        let mut sc = Scope::module(module);
        let mut seen_default = false;
        for p in &mt.params {
            if sc.locals.iter().any(|l| l.name == p.name.name) {
                self.diags.push(Diagnostic::new(
                    Code::Duplicate,
                    p.name.span,
                    format!("parameter `{}` appears twice", p.name.name),
                ));
            }
            let ty = match &p.default {
                Some(d) => {
                    seen_default = true;
                    let t = self.expr(d, &mut sc, Ctx::Value);
                    if t == Ty::Null { Ty::Any } else { t }
                }
                None => {
                    if seen_default {
                        self.diags.push(
                            Diagnostic::new(
                                Code::InvalidArguments,
                                p.name.span,
                                "a parameter without a default follows one with a default",
                            )
                            .with_help("put optional parameters last"),
                        );
                    }
                    Ty::Any
                }
            };
            sc.locals.push(Local {
                name: p.name.name.clone(),
                ty,
                span: p.name.span,
                used: Cell::new(false),
                lint_unused: true,
            });
        }
        let t = self.expr(&mt.body, &mut sc, Ctx::Value);
        self.expect_spans(&mt.body, t, "a matcher's body");
        self.report_unused_locals(&sc.locals, "parameter");
    }

    fn check_service(&mut self, module: ModuleId, s: &ast::Service) {
        let mut sc = Scope::module(module);
        let mut run: Option<Span> = None;
        for d in &s.body {
            if d.error {
                continue;
            }
            let name = d.name.name.as_str();
            match name {
                "run" => {
                    if let Some(prev) = run {
                        self.diags.push(
                            Diagnostic::new(
                                Code::Duplicate,
                                d.name.span,
                                "a service runs one command",
                            )
                            .with_secondary(prev, "first `run` here"),
                        );
                    }
                    run = Some(d.name.span);
                    self.positional(
                        d,
                        &mut sc,
                        &[Ty::Str, Ty::List],
                        1,
                        "run \"program\" [\"arg\", …]",
                    );
                    self.no_value(d);
                }
                "env" => self.keyed(
                    d,
                    &mut sc,
                    "env NAME = \"value\"",
                    true,
                    &[Ty::Str, Ty::Int, Ty::Float, Ty::Bool],
                ),
                "cwd" => {
                    self.positional(d, &mut sc, &[Ty::Str], 1, "cwd \"path\"");
                    self.no_value(d);
                }
                "ready" => {
                    let probe = d.args.first().and_then(single_name);
                    match probe {
                        Some(p) if builtins::READY_PROBES.contains(&p.name.as_str()) => {}
                        _ => {
                            let span = d.args.first().map_or(d.name.span, |a| a.span);
                            let mut diag = Diagnostic::new(
                                Code::InvalidArguments,
                                span,
                                "`ready` needs a probe: `http`, `tcp` or `log`",
                            )
                            .with_help(
                                "e.g. `ready http \"http://127.0.0.1:8080/health\" within 30s`",
                            );
                            if let Some(s) = probe.and_then(|p| {
                                did_you_mean(&p.name, builtins::READY_PROBES.iter().copied())
                            }) {
                                diag = diag.with_note(format!("did you mean `{s}`?"));
                            }
                            self.diags.push(diag);
                        }
                    }
                    match d.args.get(1) {
                        Some(target) => {
                            let t = self.expr(target, &mut sc, Ctx::Value);
                            self.expect_ty(target, t, &[Ty::Str], "the readiness target");
                        }
                        None => self.diags.push(
                            Diagnostic::new(
                                Code::InvalidArguments,
                                d.span,
                                "`ready` needs a target: a URL, `host:port`, or a log line",
                            )
                            .with_help("e.g. `ready tcp \"127.0.0.1:5432\" within 10s`"),
                        ),
                    }
                    for extra in d.args.iter().skip(2) {
                        self.diags.push(Diagnostic::new(
                            Code::InvalidArguments,
                            extra.span,
                            "unexpected argument",
                        ));
                    }
                    if let Some(w) = &d.within {
                        let t = self.expr(w, &mut sc, Ctx::Value);
                        self.expect_duration(w, t);
                    }
                    self.no_value(d);
                }
                other => {
                    let mut diag = Diagnostic::new(
                        Code::UnknownOption,
                        d.name.span,
                        format!("unknown service directive `{other}`"),
                    )
                    .with_note("a service block takes `run`, `env`, `cwd` and `ready`");
                    if let Some(s) =
                        did_you_mean(other, builtins::SERVICE_DIRECTIVES.iter().copied())
                    {
                        diag = diag.with_help(format!("did you mean `{s}`?")).with_fix(
                            format!("replace with `{s}`"),
                            vec![(d.name.span, s.to_string())],
                        );
                    }
                    self.diags.push(diag);
                }
            }
            if name != "ready"
                && let Some(w) = &d.within
            {
                self.diags.push(Diagnostic::new(
                    Code::InvalidArguments,
                    w.span,
                    "`within` belongs to `ready`",
                ));
            }
        }
        if run.is_none() {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidArguments,
                    s.name.span,
                    format!("service `{}` has no `run` command", s.name.name),
                )
                .with_help("add `run \"program\" [\"arg\", …]`"),
            );
        }
    }

    // ----- tests -----------------------------------------------------------------------------

    fn check_test(&mut self, ti: usize) {
        let program = self.program;
        let info = &program.tests[ti];
        let Some(t) = program.test_ast(ti) else {
            return;
        };
        let mut sc = Scope {
            module: info.module,
            locals: Vec::new(),
            test: Some(ti),
            step: Some(0),
            phase: Phase::Trigger,
        };
        let has_steps = t.body.iter().any(|s| matches!(s.kind, StmtKind::Step(_)));
        // `after` and test-level settings.
        for stmt in &t.body {
            match &stmt.kind {
                StmtKind::After(paths) => {
                    for p in paths {
                        self.check_after(ti, p);
                    }
                }
                StmtKind::Timeout(e) | StmtKind::Settle(e) => {
                    let ty = self.expr(e, &mut sc, Ctx::Value);
                    self.expect_duration(e, ty);
                }
                StmtKind::Let(l) if has_steps => {
                    let ty = self.expr(&l.value, &mut sc, Ctx::Value);
                    self.push_local(&mut sc, &l.name, ty);
                }
                _ => {}
            }
        }
        let test_level = sc.locals.len();
        for (si, step) in info.steps.iter().enumerate() {
            sc.step = Some(si);
            sc.locals.truncate(test_level);
            let body = program.step_body(ti, si);
            for stmt in body {
                sc.phase = Phase::Trigger;
                match &stmt.kind {
                    StmtKind::Let(l) => {
                        let ty = self.expr(&l.value, &mut sc, Ctx::Value);
                        self.push_local(&mut sc, &l.name, ty);
                    }
                    StmtKind::Trigger(tr) => self.check_trigger(tr, stmt.span, &mut sc),
                    StmtKind::Expect(e) => {
                        sc.phase = Phase::Assert;
                        self.check_expect(e, stmt.span, &mut sc);
                    }
                    StmtKind::Timeout(e) | StmtKind::Settle(e) if step.name.is_some() => {
                        let ty = self.expr(e, &mut sc, Ctx::Value);
                        self.expect_duration(e, ty);
                    }
                    StmtKind::After(_) if step.name.is_some() => self.diags.push(
                        Diagnostic::new(
                            Code::MisplacedStatement,
                            stmt.span,
                            "`after` applies to a whole test",
                        )
                        .with_help("move it to the test level, outside the steps"),
                    ),
                    _ => {}
                }
            }
            let step_locals: Vec<Local> = sc.locals.drain(test_level..).collect();
            self.report_unused_locals(&step_locals, "variable");
        }
        let test_locals: Vec<Local> = std::mem::take(&mut sc.locals);
        self.report_unused_locals(&test_locals, "variable");
    }

    fn check_after(&mut self, ti: usize, p: &Path) {
        let name = p.dotted();
        match self.program.test_index.get(&name) {
            Some(&target) => {
                self.refer(p.span, Resolution::Test(target));
                self.deps.push(Dep {
                    test: ti,
                    step: 0,
                    phase: Phase::Trigger,
                    kind: DepKind::After { test: target },
                    span: p.span,
                });
            }
            None => {
                let mut d =
                    Diagnostic::new(Code::UnknownName, p.span, format!("no test named `{name}`"))
                        .with_label("`after` names a test");
                if let Some(s) =
                    did_you_mean(&name, self.program.tests.iter().map(|t| t.name.as_str()))
                {
                    d = d
                        .with_help(format!("did you mean `{s}`?"))
                        .with_fix(format!("replace with `{s}`"), vec![(p.span, s.to_string())]);
                }
                self.diags.push(d);
            }
        }
    }

    fn push_local(&mut self, sc: &mut Scope, name: &ast::Ident, ty: Ty) {
        if let Some(prev) = sc.locals.iter().find(|l| l.name == name.name) {
            self.diags.push(
                Diagnostic::new(
                    Code::Duplicate,
                    name.span,
                    format!("`{}` is already defined here", name.name),
                )
                .with_secondary(prev.span, "first defined here"),
            );
        }
        sc.locals.push(Local {
            name: name.name.clone(),
            ty,
            span: name.span,
            used: Cell::new(false),
            lint_unused: true,
        });
    }

    fn report_unused_locals(&mut self, locals: &[Local], what: &str) {
        for l in locals {
            if l.lint_unused && !l.used.get() && !l.name.starts_with('_') {
                self.diags.push(
                    Diagnostic::new(
                        Code::UnusedLet,
                        l.span,
                        format!("{what} `{}` is never used", l.name),
                    )
                    .with_help("remove it, or prefix the name with `_` to keep it"),
                );
            }
        }
    }

    fn check_trigger(&mut self, t: &ast::Trigger, stmt_span: Span, sc: &mut Scope) {
        let kind = t.kind.name.as_str();
        let Some(spec) = trigger::kind(kind) else {
            let mut d = Diagnostic::new(
                Code::UnknownTrigger,
                t.kind.span,
                format!("unknown trigger `{kind}`"),
            )
            .with_note("triggers are `http`, `grpc`, `exec` and `trace`");
            if let Some(s) = did_you_mean(kind, trigger::kind_names()) {
                d = d.with_help(format!("did you mean `{s}`?")).with_fix(
                    format!("replace with `{s}`"),
                    vec![(t.kind.span, s.to_string())],
                );
            }
            self.diags.push(d);
            for a in &t.args {
                self.expr(a, sc, Ctx::Value);
            }
            return;
        };
        let usage = spec.usage;
        match kind {
            "http" => {
                if t.args.len() != 2 {
                    self.diags.push(
                        Diagnostic::new(
                            Code::InvalidArguments,
                            t.kind
                                .span
                                .to(t.args.last().map_or(t.kind.span, |a| a.span)),
                            "`trigger http` takes a method and a URL",
                        )
                        .with_help(format!("write `{usage}`")),
                    );
                }
                if let Some(m) = t.args.first() {
                    match single_name(m) {
                        Some(id) if builtins::HTTP_METHODS.contains(&id.name.as_str()) => {}
                        Some(id)
                            if builtins::HTTP_METHODS
                                .contains(&id.name.to_ascii_uppercase().as_str()) =>
                        {
                            let up = id.name.to_ascii_uppercase();
                            self.diags.push(
                                Diagnostic::new(
                                    Code::InvalidArguments,
                                    id.span,
                                    format!("HTTP methods are written in capitals: `{up}`"),
                                )
                                .with_fix(
                                    format!("replace with `{up}`"),
                                    vec![(id.span, up.clone())],
                                ),
                            );
                        }
                        _ => {
                            let mut d = Diagnostic::new(
                                Code::InvalidArguments,
                                m.span,
                                "expected an HTTP method",
                            )
                            .with_note(format!("methods: {}", builtins::HTTP_METHODS.join(", ")))
                            .with_help(format!("write `{usage}`"));
                            if let Some(s) = single_name(m).and_then(|id| {
                                did_you_mean(
                                    &id.name.to_ascii_uppercase(),
                                    builtins::HTTP_METHODS.iter().copied(),
                                )
                            }) {
                                d = d.with_help(format!("did you mean `{s}`?"));
                            }
                            self.diags.push(d);
                        }
                    }
                }
                if let Some(url) = t.args.get(1) {
                    let ty = self.expr(url, sc, Ctx::Value);
                    self.expect_ty(url, ty, &[Ty::Str], "the URL");
                }
                for a in t.args.iter().skip(2) {
                    self.expr(a, sc, Ctx::Value);
                }
            }
            "grpc" => {
                match t.args.as_slice() {
                    [m] => {
                        let ty = self.expr(m, sc, Ctx::Value);
                        self.expect_ty(m, ty, &[Ty::Str], "the method");
                        if let Some(s) = plain_string(m)
                            && !s.contains('/')
                        {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::InvalidArguments,
                                    m.span,
                                    "a gRPC method is written `package.Service/Method`",
                                )
                                .with_label("no `/` between service and method"),
                            );
                        }
                    }
                    _ => self.diags.push(
                        Diagnostic::new(
                            Code::InvalidArguments,
                            t.kind.span,
                            "`trigger grpc` takes one method name",
                        )
                        .with_help(format!("write `{usage}`")),
                    ),
                }
                match &t.at {
                    Some(at) => {
                        let ty = self.expr(at, sc, Ctx::Value);
                        self.expect_ty(at, ty, &[Ty::Str], "the address");
                    }
                    None => self.diags.push(
                        Diagnostic::new(
                            Code::InvalidArguments,
                            t.kind.span,
                            "`trigger grpc` needs the server address",
                        )
                        .with_help(format!("write `{usage}`")),
                    ),
                }
            }
            "exec" => {
                if t.args.is_empty() || t.args.len() > 2 {
                    self.diags.push(
                        Diagnostic::new(
                            Code::InvalidArguments,
                            t.kind.span,
                            "`trigger exec` takes a program and a list of arguments",
                        )
                        .with_help(format!("write `{usage}`"))
                        .with_note("arguments are never passed through a shell"),
                    );
                }
                if let Some(p) = t.args.first() {
                    let ty = self.expr(p, sc, Ctx::Value);
                    self.expect_ty(p, ty, &[Ty::Str], "the program");
                }
                if let Some(a) = t.args.get(1) {
                    let ty = self.expr(a, sc, Ctx::Value);
                    self.expect_ty(a, ty, &[Ty::List], "the arguments");
                }
            }
            _ => {
                match t.args.as_slice() {
                    [id] => {
                        let ty = self.expr(id, sc, Ctx::Value);
                        self.expect_ty(id, ty, &[Ty::Str], "the trace id");
                        if let Some(s) = plain_string(id)
                            && !(s.len() == 32
                                && s.bytes().all(|b| b.is_ascii_hexdigit())
                                && s.bytes().any(|b| b != b'0'))
                        {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::InvalidArguments,
                                    id.span,
                                    "a trace id is 32 hex digits, not all zero",
                                )
                                .with_label(format!("{} characters", s.chars().count())),
                            );
                        }
                    }
                    _ => self.diags.push(
                        Diagnostic::new(
                            Code::InvalidArguments,
                            t.kind.span,
                            "`trigger trace` takes one trace id",
                        )
                        .with_help(format!("write `{usage}`")),
                    ),
                }
                if let Some(span) = t.options_span {
                    self.diags.push(Diagnostic::new(
                        Code::InvalidArguments,
                        span,
                        "`trigger trace` takes no options",
                    ));
                }
            }
        }
        if kind != "grpc"
            && let Some(at) = &t.at
        {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidArguments,
                    at.span,
                    "only `trigger grpc` takes `at`",
                )
                .with_help(format!("write `{usage}`")),
            );
        }
        let allowed = spec.options;
        for d in &t.options {
            if d.error {
                continue;
            }
            let name = d.name.name.as_str();
            match allowed.iter().find(|o| o.name == name) {
                Some(o) if o.keyed => {
                    self.keyed(d, sc, "NAME \"key\" = value", name == "env", o.types)
                }
                Some(o) => {
                    if o.types == [Ty::Duration] {
                        for a in &d.args {
                            let t = self.expr(a, sc, Ctx::Value);
                            self.expect_duration(a, t);
                        }
                        if d.args.len() != 1 {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::InvalidArguments,
                                    d.span,
                                    format!("`{name}` takes one duration"),
                                )
                                .with_help(format!("e.g. `{name} 5s`")),
                            );
                        }
                        self.no_value(d);
                        continue;
                    }
                    self.positional(d, sc, o.types, 1, &format!("{name} VALUE"));
                    self.no_value(d);
                }
                None => {
                    let mut diag = Diagnostic::new(
                        Code::UnknownOption,
                        d.name.span,
                        format!("`{name}` is not an option of `trigger {kind}`"),
                    );
                    let names: Vec<&str> = allowed.iter().map(|o| o.name).collect();
                    if let Some(s) = did_you_mean(name, names.iter().copied()) {
                        diag = diag.with_help(format!("did you mean `{s}`?")).with_fix(
                            format!("replace with `{s}`"),
                            vec![(d.name.span, s.to_string())],
                        );
                    } else {
                        diag =
                            diag.with_note(format!("`trigger {kind}` takes: {}", names.join(", ")));
                    }
                    self.diags.push(diag);
                }
            }
            if let Some(w) = &d.within {
                self.diags.push(Diagnostic::new(
                    Code::InvalidArguments,
                    w.span,
                    "`within` belongs to `ready` in a service",
                ));
            }
        }
        let _ = stmt_span;
    }

    /// `NAME key = value` (header, query, metadata, env).
    fn keyed(
        &mut self,
        d: &ast::Directive,
        sc: &mut Scope,
        usage: &str,
        env_key: bool,
        types: &[Ty],
    ) {
        match d.args.as_slice() {
            [k] => {
                let is_name = env_key && single_name(k).is_some();
                if !is_name {
                    let ty = self.expr(k, sc, Ctx::Value);
                    self.expect_ty(k, ty, &[Ty::Str], "the key");
                }
            }
            _ => self.diags.push(
                Diagnostic::new(
                    Code::InvalidArguments,
                    d.span,
                    format!("`{}` takes a key and a value", d.name.name),
                )
                .with_help(format!("write `{usage}`")),
            ),
        }
        match &d.value {
            Some(v) => {
                let ty = self.expr(v, sc, Ctx::Value);
                self.expect_ty(v, ty, types, "the value");
            }
            None => self.diags.push(
                Diagnostic::new(
                    Code::InvalidArguments,
                    d.span,
                    format!("`{}` needs `= value`", d.name.name),
                )
                .with_help(format!("write `{usage}`")),
            ),
        }
    }

    fn positional(
        &mut self,
        d: &ast::Directive,
        sc: &mut Scope,
        types: &[Ty],
        min: usize,
        usage: &str,
    ) {
        let max = if d.name.name == "run" { 2 } else { 1 };
        if d.args.len() < min || d.args.len() > max {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidArguments,
                    d.span,
                    format!(
                        "`{}` takes {}",
                        d.name.name,
                        if max == 1 {
                            "one value".to_string()
                        } else {
                            format!("{min} to {max} values")
                        }
                    ),
                )
                .with_help(format!("write `{usage}`")),
            );
        }
        for (i, a) in d.args.iter().enumerate() {
            let ty = self.expr(a, sc, Ctx::Value);
            let expected: &[Ty] = if d.name.name == "run" {
                std::slice::from_ref(&types[i.min(types.len() - 1)])
            } else {
                types
            };
            self.expect_ty(a, ty, expected, "this value");
        }
    }

    fn no_value(&mut self, d: &ast::Directive) {
        if let Some(v) = &d.value {
            self.diags.push(Diagnostic::new(
                Code::InvalidArguments,
                v.span,
                format!("`{}` takes no `= value`", d.name.name),
            ));
        }
    }

    fn check_expect(&mut self, e: &ast::Expect, stmt_span: Span, sc: &mut Scope) {
        match &e.kind {
            ast::ExpectKind::Select {
                no,
                selector,
                by,
                block,
            } => {
                let t = self.expr(selector, sc, Ctx::Value);
                self.expect_spans(selector, t, "`expect`");
                if let Some(by) = by {
                    let t = self.expr(by, sc, Ctx::Pred { block: false });
                    if matches!(t, Ty::Spans | Ty::Bool) {
                        self.diags.push(
                            Diagnostic::new(
                                Code::TypeMismatch,
                                by.span,
                                format!("`by` groups by a value, found {}", t.name()),
                            )
                            .with_help("e.g. `by db.query.text`"),
                        );
                    }
                }
                if let Some(b) = block {
                    if *no {
                        self.diags.push(
                            Diagnostic::new(
                                Code::MisplacedStatement,
                                b.span,
                                "`expect no` takes no block",
                            )
                            .with_label("nothing is selected, so there is nothing to check")
                            .with_help("filter instead: `expect no span[…]`"),
                        );
                    }
                    self.check_block(b, sc, Ctx::Pred { block: true });
                }
                if *no && by.is_some() {
                    self.diags.push(Diagnostic::new(
                        Code::MisplacedStatement,
                        stmt_span,
                        "`expect no` cannot group with `by`",
                    ));
                }
            }
            ast::ExpectKind::Order { first, second, .. } => {
                let t = self.expr(first, sc, Ctx::Value);
                self.expect_spans(first, t, "an ordering");
                let t = self.expr(second, sc, Ctx::Value);
                self.expect_spans(second, t, "an ordering");
            }
            ast::ExpectKind::Response(b) => {
                if let Some(ti) = sc.test
                    && let Some(si) = sc.step
                    && let Some(tr) = self.trigger_of(ti, si)
                    && tr.kind.name == "trace"
                {
                    self.diags.push(
                        Diagnostic::new(Code::MisplacedStatement, stmt_span, "`trigger trace` has no response")
                            .with_help("assert on the spans with `expect span[…] { … }` or on `expect trace { … }`"),
                    );
                }
                self.check_block(b, sc, Ctx::Response);
            }
            ast::ExpectKind::Trace(b) => self.check_block(b, sc, Ctx::Trace),
        }
    }

    fn trigger_of(&self, ti: usize, si: usize) -> Option<&'a ast::Trigger> {
        let program = self.program;
        let idx = program.tests[ti].steps[si].trigger?;
        match &program.step_body(ti, si).get(idx)?.kind {
            StmtKind::Trigger(t) => Some(t),
            _ => None,
        }
    }

    fn check_block(&mut self, b: &ast::Block, sc: &mut Scope, ctx: Ctx) {
        for s in &b.stmts {
            match &s.kind {
                BlockStmtKind::Pred(e) => {
                    let t = self.expr(e, sc, ctx);
                    self.expect_bool(e, t);
                }
                BlockStmtKind::Any(e) => {
                    if ctx != (Ctx::Pred { block: true }) {
                        self.diags.push(Diagnostic::new(
                            Code::MisplacedStatement,
                            s.span,
                            "`any` applies to a selection of spans",
                        ));
                    }
                    let t = self.expr(e, sc, Ctx::Pred { block: false });
                    self.expect_bool(e, t);
                }
                BlockStmtKind::Let(l) => {
                    self.expr(&l.value, sc, ctx);
                }
                BlockStmtKind::Error => {}
            }
        }
    }

    // ----- expressions -----------------------------------------------------------------------

    fn expr(&mut self, e: &Expr, sc: &mut Scope, ctx: Ctx) -> Ty {
        let t = self.expr_kind(e, sc, ctx);
        self.index.types.push((e.span, t));
        t
    }

    fn expr_kind(&mut self, e: &Expr, sc: &mut Scope, ctx: Ctx) -> Ty {
        match &e.kind {
            ExprKind::Lit(l) => match l {
                Lit::Int(_) => Ty::Int,
                Lit::Float(_) => Ty::Float,
                Lit::Duration(_) => Ty::Duration,
                Lit::Bool(_) => Ty::Bool,
                Lit::Null => Ty::Null,
                Lit::Str(s) => {
                    for p in &s.parts {
                        if let StrPart::Interp(ie) = p {
                            let t = self.expr(ie, sc, ctx);
                            if t == Ty::Spans {
                                self.diags.push(Diagnostic::new(
                                    Code::TypeMismatch,
                                    ie.span,
                                    "a selection of spans cannot be put into a string",
                                ));
                            }
                        }
                    }
                    Ty::Str
                }
            },
            ExprKind::Path(p) => self.path(p, sc, ctx),
            ExprKind::Call { callee, args } => self.call(e, callee, args, sc, ctx),
            ExprKind::List(items) => {
                for i in items {
                    self.expr(i, sc, ctx);
                }
                Ty::List
            }
            ExprKind::Object(entries) => {
                for (k, v) in entries {
                    for p in &k.parts {
                        if let StrPart::Interp(ie) = p {
                            self.expr(ie, sc, ctx);
                        }
                    }
                    self.expr(v, sc, ctx);
                }
                Ty::Object
            }
            ExprKind::Unary { op, expr } => {
                let t = self.expr(expr, sc, ctx);
                match op {
                    UnaryOp::Neg => {
                        if !(t.is_open() || t.is_number() || t == Ty::Duration) {
                            self.mismatch(expr, t, "a number");
                            return Ty::Error;
                        }
                        t
                    }
                    UnaryOp::Not => {
                        self.expect_bool(expr, t);
                        Ty::Bool
                    }
                }
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => self.binary(e, *op, *op_span, lhs, rhs, sc, ctx),
            ExprKind::Filter { base, preds } => {
                let t = self.expr(base, sc, ctx.outer());
                self.expect_spans(base, t, "a filter `[…]`");
                for p in preds {
                    let t = self.expr(p, sc, Ctx::Pred { block: false });
                    self.expect_bool(p, t);
                }
                Ty::Spans
            }
            ExprKind::Pseudo { base, class, arg } => {
                let t = self.expr(base, sc, ctx.outer());
                self.expect_spans(base, t, "a pseudo-class");
                match builtins::PSEUDO_CLASSES
                    .iter()
                    .find(|(n, _)| *n == class.name)
                {
                    Some((_, want)) => match (want, arg) {
                        (None, Some(a)) => self.diags.push(Diagnostic::new(
                            Code::InvalidArguments,
                            a.span,
                            format!("`:{}` takes no argument", class.name),
                        )),
                        (Some(_), None) => self.diags.push(
                            Diagnostic::new(
                                Code::InvalidArguments,
                                class.span,
                                format!("`:{}` needs an argument", class.name),
                            )
                            .with_help(if class.name == "nth" {
                                "e.g. `:nth(2)` (counting from 1)"
                            } else {
                                "e.g. `:not(span[status == error])`"
                            }),
                        ),
                        (Some(want), Some(a)) => {
                            let t = self.expr(a, sc, Ctx::Value);
                            if *want == Ty::Spans {
                                self.expect_spans(a, t, "this pseudo-class");
                            } else {
                                self.expect_ty(a, t, &[*want], "the argument");
                            }
                        }
                        (None, None) => {}
                    },
                    None => {
                        let mut d = Diagnostic::new(
                            Code::UnknownPseudoClass,
                            class.span,
                            format!("unknown pseudo-class `:{}`", class.name),
                        )
                        .with_note(
                            "pseudo-classes: :first :last :nth(n) :root :not(sel) :has(sel)",
                        );
                        if let Some(s) = did_you_mean(
                            &class.name,
                            builtins::PSEUDO_CLASSES.iter().map(|(n, _)| *n),
                        ) {
                            d = d.with_help(format!("did you mean `:{s}`?")).with_fix(
                                format!("replace with `{s}`"),
                                vec![(class.span, s.to_string())],
                            );
                        }
                        self.diags.push(d);
                    }
                }
                Ty::Spans
            }
            ExprKind::Paren(inner) => self.expr(inner, sc, ctx),
            ExprKind::Error => Ty::Error,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn binary(
        &mut self,
        e: &Expr,
        op: BinaryOp,
        op_span: Span,
        lhs: &Expr,
        rhs: &Expr,
        sc: &mut Scope,
        ctx: Ctx,
    ) -> Ty {
        // `kind == server`, `status != error`, `kind in [server, client]`: constants resolved by the
        // other side's type, so attributes called `error` stay reachable elsewhere.
        if matches!(op, BinaryOp::Eq | BinaryOp::Ne | BinaryOp::In) {
            let lt = self.expr(lhs, sc, ctx);
            if matches!(lt, Ty::SpanKind | Ty::SpanStatus) {
                let ok = match (&rhs.kind, op) {
                    (ExprKind::List(items), BinaryOp::In) => {
                        items.iter().all(|i| self.enum_const(i, lt, sc).is_some())
                    }
                    (_, BinaryOp::In) => false,
                    _ => self.enum_const(rhs, lt, sc).is_some(),
                };
                if !ok {
                    let rt = self.expr(rhs, sc, ctx);
                    if !(rt.is_open()
                        || rt == lt
                        || rt == Ty::Str
                        || (op == BinaryOp::In && rt == Ty::List))
                    {
                        self.mismatch_pair(e, op_span, lt, rt, lhs, rhs);
                    }
                }
                return Ty::Bool;
            }
            if let ExprKind::Path(rp) = &rhs.kind
                && matches!(ctx, Ctx::Pred { .. })
                && rp.segments.len() == 1
                && matches!(rp.segments[0].name.as_str(), "kind" | "status")
                && !self.is_variable(rp, sc)
                && self
                    .enum_const(
                        lhs,
                        if rp.segments[0].name == "kind" {
                            Ty::SpanKind
                        } else {
                            Ty::SpanStatus
                        },
                        sc,
                    )
                    .is_some()
            {
                return Ty::Bool;
            }
            let rt = self.expr(rhs, sc, ctx);
            if op != BinaryOp::In
                && matches!(ctx, Ctx::Pred { .. })
                && self.constant_comparison(lhs, rhs, sc)
            {
                return Ty::Bool;
            }
            return self.compare(e, op, op_span, lt, rt, lhs, rhs);
        }
        let lt = self.expr(lhs, sc, ctx);
        let rt = self.expr(rhs, sc, ctx);
        let open = lt.is_open() || rt.is_open();
        match op {
            BinaryOp::And | BinaryOp::Or => {
                self.expect_bool(lhs, lt);
                self.expect_bool(rhs, rt);
                Ty::Bool
            }
            BinaryOp::Union | BinaryOp::Descendant | BinaryOp::Linked => {
                let what = match op {
                    BinaryOp::Union => "`|` (union)",
                    BinaryOp::Descendant => "`>>` (descendants)",
                    _ => "`~>` (follows from a link)",
                };
                self.expect_spans(lhs, lt, what);
                self.expect_spans(rhs, rt, what);
                Ty::Spans
            }
            BinaryOp::Gt if lt == Ty::Spans || rt == Ty::Spans => {
                self.expect_spans(lhs, lt, "`>` (children)");
                self.expect_spans(rhs, rt, "`>` (children)");
                Ty::Spans
            }
            BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge
            | BinaryOp::Contains
            | BinaryOp::Matches => self.compare(e, op, op_span, lt, rt, lhs, rhs),
            BinaryOp::Coalesce => {
                if lt.is_open() || lt == Ty::Null {
                    rt
                } else {
                    if !(rt.is_open()
                        || rt == lt
                        || rt == Ty::Null
                        || (lt.is_number() && rt.is_number()))
                    {
                        self.mismatch_pair(e, op_span, lt, rt, lhs, rhs);
                    }
                    lt
                }
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => {
                if open {
                    return if lt == Ty::Duration || rt == Ty::Duration {
                        Ty::Duration
                    } else {
                        Ty::Any
                    };
                }
                match (op, lt, rt) {
                    (BinaryOp::Add, Ty::Str, Ty::Str) => Ty::Str,
                    (_, Ty::Int, Ty::Int) => Ty::Int,
                    (_, a, b) if a.is_number() && b.is_number() => Ty::Float,
                    (BinaryOp::Add | BinaryOp::Sub, Ty::Duration, Ty::Duration) => Ty::Duration,
                    (BinaryOp::Div, Ty::Duration, Ty::Duration) => Ty::Float,
                    (BinaryOp::Mul | BinaryOp::Div, Ty::Duration, b) if b.is_number() => {
                        Ty::Duration
                    }
                    (BinaryOp::Mul, a, Ty::Duration) if a.is_number() => Ty::Duration,
                    (_, Ty::Duration, b) | (_, b, Ty::Duration) if b.is_number() => {
                        self.duration_vs_number(e, op_span, lhs, rhs, lt);
                        Ty::Error
                    }
                    _ => {
                        self.mismatch_pair(e, op_span, lt, rt, lhs, rhs);
                        Ty::Error
                    }
                }
            }
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::In => Ty::Bool,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn compare(
        &mut self,
        e: &Expr,
        op: BinaryOp,
        op_span: Span,
        lt: Ty,
        rt: Ty,
        lhs: &Expr,
        rhs: &Expr,
    ) -> Ty {
        if lt == Ty::Error || rt == Ty::Error {
            return Ty::Bool;
        }
        if lt == Ty::Spans || rt == Ty::Spans {
            let (bad, t) = if lt == Ty::Spans {
                (lhs, lt)
            } else {
                (rhs, rt)
            };
            self.diags.push(
                Diagnostic::new(Code::TypeMismatch, bad.span, format!("`{}` does not apply to a selection of spans", op.symbol()))
                    .with_label(format!("this is {}", t.name()))
                    .with_help("inside `expect SEL { … }`, predicates apply to each selected span; use `count` for the number of spans"),
            );
            return Ty::Bool;
        }
        let open = lt.is_open() || rt.is_open();
        match op {
            BinaryOp::Eq | BinaryOp::Ne => {
                let ok = open
                    || lt == rt
                    || lt == Ty::Null
                    || rt == Ty::Null
                    || (lt.is_number() && rt.is_number())
                    || (matches!(lt, Ty::SpanKind | Ty::SpanStatus) && rt == Ty::Str)
                    || (matches!(rt, Ty::SpanKind | Ty::SpanStatus) && lt == Ty::Str);
                if !ok {
                    if (lt == Ty::Duration && rt.is_number())
                        || (rt == Ty::Duration && lt.is_number())
                    {
                        self.duration_vs_number(e, op_span, lhs, rhs, lt);
                    } else {
                        self.mismatch_pair(e, op_span, lt, rt, lhs, rhs);
                    }
                }
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let ordered =
                    |t: Ty| t.is_number() || matches!(t, Ty::Duration | Ty::Str) || t.is_open();
                if (lt == Ty::Duration && rt.is_number()) || (rt == Ty::Duration && lt.is_number())
                {
                    self.duration_vs_number(e, op_span, lhs, rhs, lt);
                } else if !(ordered(lt) && ordered(rt))
                    || !(open || lt == rt || (lt.is_number() && rt.is_number()))
                {
                    self.mismatch_pair(e, op_span, lt, rt, lhs, rhs);
                }
            }
            BinaryOp::Contains => {
                if !(lt.is_open() || matches!(lt, Ty::Str | Ty::List | Ty::Object)) {
                    self.mismatch(lhs, lt, "a string, list or object");
                } else if lt == Ty::Str && !(rt.is_open() || rt == Ty::Str) {
                    self.mismatch(rhs, rt, "a string");
                }
            }
            BinaryOp::Matches => {
                if !(lt.is_open() || lt == Ty::Str) {
                    self.mismatch(lhs, lt, "a string");
                }
                if !(rt.is_open() || rt == Ty::Str) {
                    self.mismatch(rhs, rt, "a regular expression string");
                }
                self.validate_regex(rhs);
            }
            BinaryOp::In if !(rt.is_open() || matches!(rt, Ty::List | Ty::Object | Ty::Str)) => {
                self.mismatch(rhs, rt, "a list");
            }
            _ => {}
        }
        Ty::Bool
    }

    fn duration_vs_number(&mut self, e: &Expr, op_span: Span, lhs: &Expr, rhs: &Expr, lt: Ty) {
        let (dur, num) = if lt == Ty::Duration {
            (lhs, rhs)
        } else {
            (rhs, lhs)
        };
        let mut d = Diagnostic::new(
            Code::DurationVsNumber,
            op_span,
            "a duration cannot be compared with a plain number",
        )
        .with_secondary(dur.span, "a duration")
        .with_secondary(num.span, "a number without a unit");
        if let ExprKind::Lit(Lit::Int(n)) = &num.kind {
            d = d
                .with_help(format!("give the number a unit, e.g. `{n}ms` or `{n}s`"))
                .with_fix(format!("write `{n}ms`"), vec![(num.span, format!("{n}ms"))]);
        } else {
            d = d.with_help(
                "durations are written with a unit: `10us`, `250ms`, `1.5s`, `2m`, `1h`",
            );
        }
        let _ = e;
        self.diags.push(d);
    }

    /// TBT0306: an attribute with a registry type compared with a literal it cannot equal.
    /// Returns true when the literal's type is wrong (reported as a warning instead of an error,
    /// since SDKs do not always follow the conventions).
    fn constant_comparison(&mut self, lhs: &Expr, rhs: &Expr, sc: &Scope) -> bool {
        for (a, lit) in [(lhs, rhs), (rhs, lhs)] {
            let (ExprKind::Path(p), ExprKind::Lit(l)) = (&a.kind, &lit.kind) else {
                continue;
            };
            if self.is_variable(p, sc) {
                continue;
            }
            let dotted = p.dotted();
            if builtins::SPAN_FIELDS.iter().any(|f| f.name == dotted) {
                continue;
            }
            let Some(attr) = semconv::registry().lookup(&dotted) else {
                continue;
            };
            if attr.is_template() {
                continue;
            }
            let want = attr.value_type();
            let (have, fits) = match l {
                Lit::Str(_) => ("a string", want == "string"),
                Lit::Int(_) => ("an int", want == "int" || want == "float"),
                Lit::Float(_) => ("a float", want == "float"),
                Lit::Bool(_) => ("a bool", want == "bool"),
                Lit::Null | Lit::Duration(_) => continue,
            };
            if matches!(want, "list" | "any") {
                continue;
            }
            if !fits {
                let mut d = Diagnostic::new(
                    Code::ConstantComparison,
                    lit.span,
                    format!(
                        "`{dotted}` is {} in the semantic conventions, this is {have}",
                        article(want)
                    ),
                )
                .with_secondary(p.span, format!("{want} attribute"));
                if let (Lit::Str(s), "int") = (l, want)
                    && let Some(n) = s.as_plain().and_then(|t| t.parse::<i64>().ok())
                {
                    d = d
                        .with_help(format!("compare with the number `{n}`"))
                        .with_fix(format!("write `{n}`"), vec![(lit.span, n.to_string())]);
                }
                self.diags.push(d);
                return true;
            }
            if attr.ty == "enum"
                && let Lit::Str(s) = l
                && let Some(text) = s.as_plain()
            {
                let values: Vec<&str> = attr.values.iter().filter_map(|v| v.as_str()).collect();
                // The conventions let instrumentations use values of their own for most enums
                // (`messaging.system = "shopq"`): only a near miss of a listed value, a typo
                // or the wrong case, is reported.
                let near = || {
                    values
                        .iter()
                        .copied()
                        .find(|v| v.eq_ignore_ascii_case(&text))
                        .or_else(|| did_you_mean(&text, values.iter().copied()))
                };
                if !values.contains(&text.as_str())
                    && let Some(c) = near()
                {
                    self.diags.push(
                        Diagnostic::new(
                            Code::ConstantComparison,
                            lit.span,
                            format!("`{text}` is not a value of `{dotted}`"),
                        )
                        .with_secondary(p.span, "an enum attribute")
                        .with_note(format!("its values: {}", values.join(", ")))
                        .with_help(format!("did you mean `\"{c}\"`?"))
                        .with_fix(
                            format!("replace with `\"{c}\"`"),
                            vec![(lit.span, format!("\"{c}\""))],
                        ),
                    );
                }
            }
        }
        false
    }

    fn enum_const(&mut self, e: &Expr, ty: Ty, sc: &Scope) -> Option<()> {
        let ExprKind::Path(p) = &e.kind else {
            return None;
        };
        if p.segments.len() != 1 || self.is_variable(p, sc) {
            return None;
        }
        let name = p.segments[0].name.as_str();
        let (set, what) = if ty == Ty::SpanKind {
            (builtins::SPAN_KINDS, "span kind")
        } else {
            (builtins::SPAN_STATUSES, "span status")
        };
        if set.contains(&name) {
            self.refer(p.span, Resolution::Constant);
        } else {
            let mut d = Diagnostic::new(
                Code::TypeMismatch,
                p.span,
                format!("`{name}` is not a {what}"),
            )
            .with_note(format!("{what}s: {}", set.join(", ")));
            if let Some(s) = did_you_mean(name, set.iter().copied()) {
                d = d
                    .with_help(format!("did you mean `{s}`?"))
                    .with_fix(format!("replace with `{s}`"), vec![(p.span, s.to_string())]);
            }
            self.diags.push(d);
        }
        Some(())
    }

    fn is_variable(&self, p: &Path, sc: &Scope) -> bool {
        let head = &p.segments[0].name;
        p.segments.len() == 1
            && (sc.locals.iter().any(|l| &l.name == head)
                || self.program.module(sc.module).lets.contains_key(head))
    }

    fn path(&mut self, p: &Path, sc: &mut Scope, ctx: Ctx) -> Ty {
        let program = self.program;
        let head = p.segments[0].name.as_str();
        let n = p.segments.len();
        let m = program.module(sc.module);
        if n == 1 {
            if let Some(l) = sc.locals.iter().rev().find(|l| l.name == head) {
                l.used.set(true);
                let (ty, def) = (l.ty, l.span);
                self.refer(p.segments[0].span, Resolution::Local(def));
                return ty;
            }
            if let Some(&idx) = m.lets.get(head) {
                self.used.insert((m.id, idx));
                self.refer(
                    p.segments[0].span,
                    Resolution::Let {
                        module: m.id,
                        item: idx,
                    },
                );
                return self.let_type(m.id, idx);
            }
        }
        if n == 2
            && let Some(&(target, imp_idx)) = m.imports.get(head)
            && let Some(&idx) = program.module(target).lets.get(&p.segments[1].name)
        {
            self.used.insert((m.id, imp_idx));
            self.used.insert((target, idx));
            self.refer(
                p.segments[0].span,
                Resolution::Namespace {
                    module: m.id,
                    item: imp_idx,
                },
            );
            self.refer(
                p.segments[1].span,
                Resolution::Let {
                    module: target,
                    item: idx,
                },
            );
            return self.let_type(target, idx);
        }
        if let Some(t) = self.capture(p, sc, ctx) {
            return t;
        }
        match ctx {
            Ctx::Value => {
                if n == 1 && head == "span" {
                    return Ty::Spans;
                }
                self.unknown_name(p, sc, ctx);
                Ty::Error
            }
            Ctx::Pred { block } => {
                if n == 1 && head == "span" {
                    return Ty::Spans;
                }
                if n == 1 && head == "count" {
                    if !block {
                        self.diags.push(
                            Diagnostic::new(
                                Code::MisplacedAggregate,
                                p.span,
                                "`count` counts the spans of an expectation",
                            )
                            .with_label("not available in a per-span predicate")
                            .with_help("write it in the block: `expect SEL { count == 1 }`"),
                        );
                        return Ty::Error;
                    }
                    self.refer(p.span, Resolution::Aggregate);
                    return Ty::Int;
                }
                let dotted = p.dotted();
                if let Some(f) = builtins::SPAN_FIELDS.iter().find(|f| f.name == dotted) {
                    self.refer(p.span, Resolution::SpanField(f.name));
                    return f.ty;
                }
                self.refer(p.span, Resolution::Attribute);
                self.attribute(p, &dotted)
            }
            Ctx::Response | Ctx::Trace => {
                let (fields, what) = if ctx == Ctx::Response {
                    (builtins::RESPONSE_FIELDS, "response")
                } else {
                    (builtins::TRACE_FIELDS, "trace")
                };
                if n == 1
                    && let Some(f) = fields.iter().find(|f| f.name == head)
                {
                    if ctx == Ctx::Response
                        && let Some(kind) = self.current_trigger_kind(sc)
                        && !response_field_applies(kind, head)
                    {
                        self.diags.push(Diagnostic::new(
                            Code::UnknownName,
                            p.span,
                            format!("a `{kind}` trigger's response has no `{head}`"),
                        ));
                        return Ty::Error;
                    }
                    self.refer(
                        p.span,
                        if ctx == Ctx::Response {
                            Resolution::ResponseField(f.name)
                        } else {
                            Resolution::TraceField(f.name)
                        },
                    );
                    return f.ty;
                }
                let dotted = p.dotted();
                let mut d = Diagnostic::new(
                    Code::UnknownName,
                    p.span,
                    format!("unknown {what} field `{dotted}`"),
                )
                .with_note(format!(
                    "{what} fields: {}",
                    fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                ));
                if let Some(s) = did_you_mean(&dotted, fields.iter().map(|f| f.name)) {
                    d = d
                        .with_help(format!("did you mean `{s}`?"))
                        .with_fix(format!("replace with `{s}`"), vec![(p.span, s.to_string())]);
                }
                self.diags.push(d);
                Ty::Error
            }
        }
    }

    fn current_trigger_kind(&self, sc: &Scope) -> Option<&'a str> {
        let t = self.trigger_of(sc.test?, sc.step?)?;
        Some(t.kind.name.as_str())
    }

    fn attribute(&mut self, p: &Path, dotted: &str) -> Ty {
        let reg = semconv::registry();
        if let Some(a) = reg.lookup(dotted) {
            if a.deprecated.is_some()
                && let Some(sev) = self.options.deprecated_attributes
            {
                let mut d = Diagnostic::new(
                    Code::DeprecatedAttribute,
                    p.span,
                    format!("`{dotted}` is deprecated in the OpenTelemetry semantic conventions"),
                )
                .with_severity(sev);
                match &a.renamed_to {
                    Some(new) => {
                        d = d
                            .with_label(format!("renamed to `{new}`"))
                            .with_help(format!("use `{new}`; to match spans of older SDKs too, write `{new} ?? attr(\"{dotted}\")`"))
                            .with_fix(format!("replace with `{new}`"), vec![(p.span, new.clone())]);
                    }
                    None => {
                        let why = match a.deprecated.as_deref() {
                            Some("obsoleted") => {
                                "it is obsolete and has no replacement".to_string()
                            }
                            Some("uncategorized") | None => {
                                "it has no direct replacement; see the semantic conventions"
                                    .to_string()
                            }
                            Some(other) => format!("reason: {other}"),
                        };
                        d = d.with_note(why).with_note(format!(
                            "write `attr(\"{dotted}\")` to read it without this warning"
                        ));
                    }
                }
                self.diags.push(d);
            }
            return Ty::from_semconv(a.value_type());
        }
        if let Some(sev) = self.options.unknown_attributes {
            if p.segments.len() == 1
                && let Some(s) = did_you_mean(dotted, builtins::SPAN_FIELDS.iter().map(|f| f.name))
            {
                self.diags.push(
                    Diagnostic::new(
                        Code::UnknownAttribute,
                        p.span,
                        format!("`{dotted}` is read as a span attribute"),
                    )
                    .with_severity(sev)
                    .with_help(format!("did you mean the span field `{s}`?"))
                    .with_fix(format!("replace with `{s}`"), vec![(p.span, s.to_string())]),
                );
                return Ty::Any;
            }
            let closest = memo(&CLOSEST, dotted, |d| {
                reg.closest(d).map(|a| a.name.as_str())
            });
            if let Some(c) = closest {
                self.diags.push(
                    Diagnostic::new(
                        Code::UnknownAttribute,
                        p.span,
                        format!("`{dotted}` is not an OpenTelemetry semantic-convention attribute"),
                    )
                    .with_severity(sev)
                    .with_label("unknown attribute")
                    .with_help(format!("did you mean `{c}`?"))
                    .with_note(format!(
                        "write `attr(\"{dotted}\")` if this custom attribute is intended"
                    ))
                    .with_fix(format!("replace with `{c}`"), vec![(p.span, c.to_string())]),
                );
            }
        }
        Ty::Any
    }

    /// Resolves `step.capture`, `test.step.capture` and `test.capture` (inline test). Returns
    /// `None` when the path is not a capture reference at all.
    fn capture(&mut self, p: &Path, sc: &Scope, ctx: Ctx) -> Option<Ty> {
        let program = self.program;
        let ti = sc.test?;
        let si = sc.step?;
        let segs: Vec<&str> = p.segments.iter().map(|s| s.name.as_str()).collect();
        let test = &program.tests[ti];
        let mut candidates: Vec<String> = Vec::new();
        let mut reached = false;
        let resolve_in = |tt: usize,
                          rest: &[&str],
                          candidates: &mut Vec<String>,
                          reached: &mut bool|
         -> Option<(usize, usize, String)> {
            let t = &program.tests[tt];
            match rest {
                [step, cap] => {
                    let s = t
                        .steps
                        .iter()
                        .position(|s| s.name.as_deref() == Some(step))?;
                    *reached = true;
                    candidates.extend(t.steps[s].captures.iter().map(|c| c.name.clone()));
                    t.steps[s]
                        .captures
                        .iter()
                        .any(|c| c.name == *cap)
                        .then(|| (tt, s, cap.to_string()))
                }
                [cap] if t.steps.len() == 1 && t.steps[0].name.is_none() => {
                    *reached = true;
                    candidates.extend(t.steps[0].captures.iter().map(|c| c.name.clone()));
                    t.steps[0]
                        .captures
                        .iter()
                        .any(|c| c.name == *cap)
                        .then(|| (tt, 0, cap.to_string()))
                }
                _ => None,
            }
        };
        let mut found = None;
        let mut via_test = false;
        if test
            .steps
            .iter()
            .any(|s| s.name.as_deref() == Some(segs[0]))
        {
            found = resolve_in(ti, &segs, &mut candidates, &mut reached);
        }
        if found.is_none()
            && let Some(&tt) = program.test_index.get(segs[0])
        {
            found = resolve_in(tt, &segs[1..], &mut candidates, &mut reached);
            via_test = true;
        }
        if let Some((tt, ts, name)) = &found {
            let (tt, ts) = (*tt, *ts);
            let mut segments = p.segments.iter();
            if via_test && let Some(s) = segments.next() {
                self.refer(s.span, Resolution::Test(tt));
            }
            if p.segments.len() > usize::from(via_test) + 1
                && let Some(s) = segments.next()
            {
                self.refer(s.span, Resolution::Step { test: tt, step: ts });
            }
            if let Some(s) = p.segments.last() {
                self.refer(
                    s.span,
                    Resolution::Capture {
                        test: tt,
                        step: ts,
                        name: name.clone(),
                    },
                );
            }
        }
        // (producing test, its step, capture name).
        let target = found.as_ref().map(|(a, b, c)| (*a, *b, c.as_str()));
        match target {
            Some((tt, ts, name)) => {
                if tt == ti && ts >= si {
                    let when = if ts == si {
                        "in the step that defines it"
                    } else {
                        "before its step runs"
                    };
                    self.diags.push(
                        Diagnostic::new(Code::CaptureBeforeDefinition, p.span, format!("capture `{}` is used {when}", p.dotted()))
                            .with_secondary(program.tests[tt].steps[ts].captures.iter().find(|c| c.name == name).map_or(p.span, |c| c.span), "defined here")
                            .with_help("a capture is known only after its step's trigger ran; read it in a later step"),
                    );
                    return Some(Ty::Error);
                }
                let source = program.tests[tt].steps[ts]
                    .captures
                    .iter()
                    .find(|c| c.name == name)
                    .map_or(CaptureSource::Trace, |c| c.source);
                self.deps.push(Dep {
                    test: ti,
                    step: si,
                    phase: sc.phase,
                    kind: DepKind::Capture {
                        test: tt,
                        step: ts,
                        name: name.to_string(),
                        source,
                    },
                    span: p.span,
                });
                Some(Ty::Any)
            }
            None if reached => {
                let last = segs[segs.len() - 1];
                let close =
                    did_you_mean(last, candidates.iter().map(String::as_str)).map(str::to_string);
                // In a predicate, `db.system` may be an attribute even with a step called `db`:
                // only a near-miss of a real capture is reported there.
                if matches!(ctx, Ctx::Pred { .. }) && close.is_none() {
                    return None;
                }
                let mut d = Diagnostic::new(
                    Code::UnknownCapture,
                    p.span,
                    format!(
                        "no capture `{last}` in `{}`",
                        segs[..segs.len() - 1].join(".")
                    ),
                );
                match close {
                    Some(c) => d = d.with_help(format!("did you mean `{c}`?")),
                    None if candidates.is_empty() => d = d.with_note("that step captures nothing: add `let NAME = …` inside one of its `expect` blocks"),
                    None => d = d.with_note(format!("it captures: {}", candidates.join(", "))),
                }
                self.diags.push(d);
                Some(Ty::Error)
            }
            None => None,
        }
    }

    fn unknown_name(&mut self, p: &Path, sc: &Scope, ctx: Ctx) {
        let program = self.program;
        let m = program.module(sc.module);
        let dotted = p.dotted();
        let head = p.segments[0].name.as_str();
        let mut candidates: Vec<String> = sc.locals.iter().map(|l| l.name.clone()).collect();
        candidates.extend(m.lets.keys().cloned());
        let mut d = if let Some(&(target, _)) = m.imports.get(head) {
            let tm = program.module(target);
            candidates = tm.lets.keys().map(|k| format!("{head}.{k}")).collect();
            Diagnostic::new(
                Code::UnknownName,
                p.span,
                format!(
                    "`{}` has no `let` named `{}`",
                    tm.name,
                    p.segments[1..]
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(".")
                ),
            )
        } else {
            Diagnostic::new(
                Code::UnknownName,
                p.span,
                format!("unknown name `{dotted}`"),
            )
            .with_label("not defined")
        };
        if let Some(ti) = sc.test {
            for (si, s) in program.tests[ti].steps.iter().enumerate() {
                if let Some(sn) = &s.name
                    && Some(si) < sc.step
                {
                    candidates.extend(s.captures.iter().map(|c| format!("{sn}.{}", c.name)));
                }
            }
        }
        if let Some(s) = did_you_mean(&dotted, candidates.iter().map(String::as_str)) {
            d = d
                .with_help(format!("did you mean `{s}`?"))
                .with_fix(format!("replace with `{s}`"), vec![(p.span, s.to_string())]);
        } else if ctx == Ctx::Value
            && (semconv::registry().lookup(&dotted).is_some()
                || builtins::SPAN_FIELDS.iter().any(|f| f.name == dotted))
        {
            d = d.with_help("span attributes and fields are read inside a filter `span[…]` or an `expect … { }` block");
        }
        self.diags.push(d);
    }

    fn call(&mut self, e: &Expr, callee: &Path, args: &[Expr], sc: &mut Scope, ctx: Ctx) -> Ty {
        let program = self.program;
        let m = program.module(sc.module);
        let n = callee.segments.len();
        let head = callee.segments[0].name.as_str();
        let arg_ctx = if matches!(ctx, Ctx::Pred { .. }) {
            Ctx::Pred { block: false }
        } else {
            ctx
        };
        // A matcher of this module, or `namespace.matcher` of an import.
        let matcher = if n == 1 {
            m.matchers.get(head).map(|&i| (m.id, i, None))
        } else if n == 2 {
            match m.imports.get(head) {
                Some(&(target, imp)) => {
                    let tm = program.module(target);
                    self.refer(
                        callee.segments[0].span,
                        Resolution::Namespace {
                            module: m.id,
                            item: imp,
                        },
                    );
                    match tm.matchers.get(&callee.segments[1].name) {
                        Some(&i) => Some((target, i, Some(imp))),
                        None => {
                            self.used.insert((m.id, imp));
                            let mut d = Diagnostic::new(
                                Code::UnknownName,
                                callee.span,
                                format!(
                                    "`{}` has no matcher `{}`",
                                    tm.name, callee.segments[1].name
                                ),
                            );
                            if let Some(s) = did_you_mean(
                                &callee.segments[1].name,
                                tm.matchers.keys().map(String::as_str),
                            ) {
                                let span = callee.segments[1].span;
                                d = d.with_help(format!("did you mean `{head}.{s}`?")).with_fix(
                                    format!("replace with `{s}`"),
                                    vec![(span, s.to_string())],
                                );
                            } else {
                                let mut names: Vec<&str> =
                                    tm.matchers.keys().map(String::as_str).collect();
                                names.sort_unstable();
                                d = d.with_note(format!("its matchers: {}", names.join(", ")));
                            }
                            self.diags.push(d);
                            for a in args {
                                self.expr(a, sc, arg_ctx);
                            }
                            return Ty::Error;
                        }
                    }
                }
                None => None,
            }
        } else {
            None
        };
        if let Some((mid, item, imp)) = matcher {
            self.used.insert((mid, item));
            if let Some(last) = callee.segments.last() {
                self.refer(last.span, Resolution::Matcher { module: mid, item });
            }
            if let Some(imp) = imp {
                self.used.insert((m.id, imp));
            }
            if let ItemKind::Matcher(mt) = &program.module(mid).ast.items[item].kind {
                let required = mt.params.iter().filter(|p| p.default.is_none()).count();
                if args.len() < required || args.len() > mt.params.len() {
                    let want = if required == mt.params.len() {
                        format!("{required}")
                    } else {
                        format!("{required} to {}", mt.params.len())
                    };
                    let sig = mt
                        .params
                        .iter()
                        .map(|p| {
                            if p.default.is_some() {
                                format!("{}?", p.name.name)
                            } else {
                                p.name.name.clone()
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.diags.push(
                        Diagnostic::new(
                            Code::WrongArity,
                            e.span,
                            format!(
                                "matcher `{}` takes {want} argument{}, found {}",
                                callee.dotted(),
                                if want == "1" { "" } else { "s" },
                                args.len()
                            ),
                        )
                        .with_secondary(
                            mt.name.span,
                            format!("defined as `{}({sig})`", mt.name.name),
                        ),
                    );
                }
            }
            for a in args {
                let t = self.expr(a, sc, arg_ctx);
                if t == Ty::Spans {
                    self.diags.push(Diagnostic::new(
                        Code::TypeMismatch,
                        a.span,
                        "matcher arguments are values, not selections",
                    ));
                }
            }
            return Ty::Spans;
        }
        let Some(f) = (n == 1).then(|| builtins::function(head)).flatten() else {
            let dotted = callee.dotted();
            let mut names: Vec<String> = builtins::FUNCTIONS
                .iter()
                .map(|f| f.name.to_string())
                .collect();
            names.extend(m.matchers.keys().cloned());
            for (ns, (target, _)) in &m.imports {
                names.extend(
                    program
                        .module(*target)
                        .matchers
                        .keys()
                        .map(|k| format!("{ns}.{k}")),
                );
            }
            let mut d = Diagnostic::new(
                Code::UnknownFunction,
                callee.span,
                format!("unknown function `{dotted}`"),
            )
            .with_label("no function or matcher of this name");
            if let Some(s) = did_you_mean(&dotted, names.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean `{s}`?")).with_fix(
                    format!("replace with `{s}`"),
                    vec![(callee.span, s.to_string())],
                );
            } else if n == 2
                && !m.imports.contains_key(head)
                && crate::stdlib::module(&format!("std/{head}")).is_some()
            {
                d = d.with_help(format!(
                    "add `import \"std/{head}\"` at the top of the file"
                ));
            }
            self.diags.push(d);
            for a in args {
                self.expr(a, sc, arg_ctx);
            }
            return Ty::Error;
        };
        self.refer(callee.span, Resolution::Function(f.name));
        if args.len() < f.min_args || args.len() > f.max_args {
            let want = if f.min_args == f.max_args {
                format!("{}", f.min_args)
            } else {
                format!("{} to {}", f.min_args, f.max_args)
            };
            self.diags.push(
                Diagnostic::new(
                    Code::WrongArity,
                    e.span,
                    format!(
                        "`{}` takes {want} argument{}, found {}",
                        f.name,
                        if want == "1" { "" } else { "s" },
                        args.len()
                    ),
                )
                .with_note(format!("{}({})", f.name, f.params.join(", ")))
                .with_help(format!("e.g. `{}`", f.example)),
            );
        }
        match f.context {
            FnContext::Aggregate if ctx != (Ctx::Pred { block: true }) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::MisplacedAggregate,
                        callee.span,
                        format!("`{}` aggregates over the spans of an expectation", f.name),
                    )
                    .with_help(format!(
                        "use it inside `expect SEL {{ … }}`, e.g. `{}`",
                        f.example
                    )),
                );
            }
            FnContext::Response if ctx != Ctx::Response => {
                self.diags.push(
                    Diagnostic::new(
                        Code::UnknownFunction,
                        callee.span,
                        format!("`{}` reads the trigger's response", f.name),
                    )
                    .with_help("use it inside `expect response { … }`"),
                );
            }
            _ => {}
        }
        if f.name == "json" && args.len() == 1 && !matches!(ctx, Ctx::Response) {
            self.diags.push(
                Diagnostic::new(Code::InvalidArguments, e.span, "`json(path)` reads the response body")
                    .with_help("inside `expect response { … }`; elsewhere pass the JSON text: `json(attr(\"…\"), \"$.path\")`"),
            );
        }
        let inner_ctx = if f.context == FnContext::Aggregate {
            Ctx::Pred { block: false }
        } else {
            arg_ctx
        };
        for (i, a) in args.iter().enumerate() {
            let t = self.expr(a, sc, inner_ctx);
            let textual = matches!(
                (f.name, i),
                (
                    "env" | "header" | "metadata" | "attr" | "lower" | "upper",
                    0
                ) | ("regex_group", 0 | 1)
                    | ("json", _)
            );
            if textual
                && !(t.is_open() || t == Ty::Str)
                && !(f.name == "json" && i == 0 && args.len() == 2)
            {
                self.mismatch(a, t, "a string");
            }
        }
        if f.name == "json"
            && let Some(p) = args.last()
        {
            self.validate_jsonpath(p);
        }
        if f.name == "regex_group"
            && let Some(r) = args.get(1)
        {
            self.validate_regex(r);
        }
        if f.name == "attr"
            && let Some(ExprKind::Path(_)) = args.first().map(|a| &a.kind)
        {
            // attr(name) with a bare name is legal (a variable holding the key) — nothing to add.
        }
        f.returns
    }

    fn validate_regex(&mut self, e: &Expr) {
        let error = |s: &str| {
            regex::Regex::new(s).err().map(|err| {
                let msg = err.to_string();
                msg.lines().last().unwrap_or("invalid").trim().to_string()
            })
        };
        if let Some(s) = plain_string(e)
            && let Some(last) = memo(&REGEX_ERRORS, &s, error)
        {
            self.diags.push(
                Diagnostic::new(Code::InvalidRegex, e.span, "invalid regular expression")
                    .with_label(last)
                    .with_note("the syntax is that of the Rust `regex` crate"),
            );
        }
    }

    fn validate_jsonpath(&mut self, e: &Expr) {
        if let Some(s) = plain_string(e)
            && let Err(err) = serde_json_path::JsonPath::parse(&s)
        {
            self.diags.push(
                Diagnostic::new(Code::InvalidJsonPath, e.span, "invalid JSONPath")
                    .with_label(err.to_string())
                    .with_help("JSONPath (RFC 9535) starts with `$`, e.g. `$.items[0].id`"),
            );
        }
    }

    // ----- type expectations ----------------------------------------------------------------

    fn expect_spans(&mut self, e: &Expr, t: Ty, what: &str) {
        if !(t == Ty::Spans || t == Ty::Error || t == Ty::Any) {
            self.diags.push(
                Diagnostic::new(Code::ExpectedSelector, e.span, format!("{what} needs a selection of spans"))
                    .with_label(format!("this is {}", t.name()))
                    .with_help("a selector is `span`, `span[…]`, a matcher call like `http.server(\"/orders\")`, or a combination with `>`, `>>`, `~>`, `|`"),
            );
        }
    }

    fn expect_bool(&mut self, e: &Expr, t: Ty) {
        if !(t == Ty::Bool || t.is_open()) {
            let mut d = Diagnostic::new(
                Code::ExpectedBool,
                e.span,
                "a predicate must be true or false",
            )
            .with_label(format!("this is {}", t.name()));
            if t == Ty::Spans {
                d = d.with_help("to require that spans exist, write a separate `expect SEL`; to test a span's children, use `:has(…)`");
            } else {
                d = d.with_help("compare it: `== value`, `> 0`, `contains \"…\"`");
            }
            self.diags.push(d);
        }
    }

    fn expect_duration(&mut self, e: &Expr, t: Ty) {
        if t.is_number() {
            let mut d = Diagnostic::new(
                Code::DurationVsNumber,
                e.span,
                "expected a duration, found a plain number",
            );
            if let ExprKind::Lit(Lit::Int(n)) = &e.kind {
                d = d
                    .with_help(format!("write `{n}s` or `{n}ms`"))
                    .with_fix(format!("write `{n}s`"), vec![(e.span, format!("{n}s"))]);
            }
            self.diags.push(d);
        } else {
            self.expect_ty(e, t, &[Ty::Duration], "a duration");
        }
    }

    fn expect_ty(&mut self, e: &Expr, t: Ty, want: &[Ty], what: &str) {
        if t.is_open() || want.contains(&t) {
            return;
        }
        let names: Vec<&str> = want.iter().map(|w| w.name()).collect();
        self.diags.push(
            Diagnostic::new(
                Code::TypeMismatch,
                e.span,
                format!("{what} must be {}", names.join(" or ")),
            )
            .with_label(format!("this is {}", t.name())),
        );
    }

    fn mismatch(&mut self, e: &Expr, t: Ty, want: &str) {
        if t.is_open() {
            return;
        }
        self.diags.push(
            Diagnostic::new(
                Code::TypeMismatch,
                e.span,
                format!("expected {want}, found {}", t.name()),
            )
            .with_label(format!("this is {}", t.name())),
        );
    }

    fn mismatch_pair(&mut self, _e: &Expr, op_span: Span, lt: Ty, rt: Ty, lhs: &Expr, rhs: &Expr) {
        if lt == Ty::Error || rt == Ty::Error {
            return;
        }
        let mut d = Diagnostic::new(
            Code::TypeMismatch,
            op_span,
            format!("cannot combine {} and {}", lt.name(), rt.name()),
        )
        .with_secondary(lhs.span, lt.name())
        .with_secondary(rhs.span, rt.name());
        if (lt == Ty::Str && rt.is_number()) || (rt == Ty::Str && lt.is_number()) {
            d = d.with_help("convert one side: `int(…)` or `string(…)`");
        }
        self.diags.push(d);
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

fn response_field_applies(kind: &str, field: &str) -> bool {
    match kind {
        "http" => matches!(field, "status" | "headers" | "body" | "duration"),
        "grpc" => matches!(field, "status" | "body" | "duration"),
        "exec" => matches!(field, "exit_code" | "stdout" | "stderr" | "duration"),
        _ => false,
    }
}

fn article(ty: &str) -> String {
    if ty.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {ty}")
    } else {
        format!("a {ty}")
    }
}

fn single_name(e: &Expr) -> Option<&ast::Ident> {
    match &e.kind {
        ExprKind::Path(p) if p.segments.len() == 1 => p.segments.first(),
        _ => None,
    }
}

fn plain_string(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Lit(Lit::Str(s)) => s.as_plain(),
        _ => None,
    }
}
