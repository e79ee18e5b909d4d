//! The compiler driver: load modules, build symbol tables, check, lower to a plan.
//!
//! The driver never touches the file system itself. Root files arrive as bytes; imports are
//! resolved through a [`SourceLoader`] the caller supplies (the CLI reads files, the language
//! server serves open buffers, tests serve strings). `std/…` imports come from the embedded
//! standard library.

use crate::ast::{self, ItemKind, StmtKind};
use crate::check::Checker;
use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::parser;
use crate::plan::{self, Plan};
use crate::program::{
    CaptureInfo, CaptureSource, Module, ModuleId, Origin, Program, StepInfo, StepLoc, TestInfo,
};
use crate::span::{FileId, SourceMap, Span};
use crate::stdlib;
use std::collections::HashMap;

pub use crate::options::Options;

/// Resolves and reads imported modules.
pub trait SourceLoader {
    /// The canonical name and bytes of the module that `import "path"` in module `importer` means.
    /// The error is a sentence saying why it could not be read ("no such file", …).
    fn load(&mut self, importer: &str, path: &str) -> Result<(String, Vec<u8>), String>;
}

/// A loader that finds nothing: for single files without relative imports, and tests.
pub struct NoImports;

impl SourceLoader for NoImports {
    fn load(&mut self, _importer: &str, _path: &str) -> Result<(String, Vec<u8>), String> {
        Err("relative imports are not available here".into())
    }
}

/// A loader over an in-memory map of canonical names to texts; relative paths are joined to the
/// importer's directory. Used by tests and the language server.
#[derive(Default)]
pub struct MemoryLoader {
    /// Canonical name (a `/`-separated path) → text.
    pub files: HashMap<String, String>,
}

impl SourceLoader for MemoryLoader {
    fn load(&mut self, importer: &str, path: &str) -> Result<(String, Vec<u8>), String> {
        let name = join_relative(importer, path);
        self.files
            .get(&name)
            .map(|t| (name.clone(), t.clone().into_bytes()))
            .ok_or_else(|| format!("no file `{name}`"))
    }
}

/// Joins an import path to the directory of the importing module's name, normalising `.` and
/// `..` segments (`suite/a.tbt` + `../lib/b.tbt` → `lib/b.tbt`).
pub fn join_relative(importer: &str, path: &str) -> String {
    let mut parts: Vec<&str> = importer.split('/').collect();
    parts.pop();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") && !parts.is_empty() {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// Everything one compilation produced.
#[derive(Debug)]
pub struct Compilation {
    /// Every file read, for rendering diagnostics.
    pub sources: SourceMap,
    /// The checked program (also when there were errors: the language server uses it).
    pub program: Program,
    /// All diagnostics, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// The plan, when there were no errors.
    pub plan: Option<Plan>,
    /// Every name the checker resolved and every expression's type (for the language server).
    pub index: crate::check::Index,
}

impl Compilation {
    /// True when some diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Compiles a suite: the root files (name, bytes) in order, imports through `loader`.
pub fn compile(
    roots: Vec<(String, Vec<u8>)>,
    loader: &mut dyn SourceLoader,
    options: &Options,
) -> Compilation {
    let mut driver = Driver {
        sources: SourceMap::new(),
        modules: Vec::new(),
        by_name: HashMap::new(),
        diags: Vec::new(),
    };
    // Parse the root files in parallel (parsing is most of the front end's time), then add
    // them in their given order so file ids and output stay deterministic.
    let mut seen = std::collections::HashSet::new();
    let roots: Vec<(String, Vec<u8>)> = roots
        .into_iter()
        .filter(|(n, _)| seen.insert(n.clone()))
        .collect();
    for ((name, _), (text, parsed)) in roots.iter().zip(parse_parallel(&roots)) {
        driver.add_parsed(name.clone(), text, parsed, Origin::Root);
    }
    // Resolve imports breadth-first; new modules are appended while we walk.
    let mut next = 0;
    while next < driver.modules.len() {
        driver.resolve_imports(ModuleId(next as u32), loader);
        next += 1;
    }
    driver.detect_import_cycles();
    for m in &mut driver.modules {
        build_tables(m, &mut driver.diags);
    }
    let mut program = Program {
        modules: driver.modules,
        ..Program::default()
    };
    collect_tests(&mut program, &mut driver.diags);

    let mut checker = Checker::new(&program, options);
    checker.check_all();
    let index = checker.take_index();
    let deps = checker.finish(&mut driver.diags);

    let cycles_ok = plan::check_cycles(&program, &deps, &mut driver.diags);
    let mut diagnostics = driver.diags;
    diagnostics.sort_by_key(|d| {
        let s = d.span();
        (s.file, s.start, s.end, d.code)
    });
    diagnostics.dedup();
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    let plan = (!has_errors && cycles_ok).then(|| plan::lower(&program, &deps));
    Compilation {
        sources: driver.sources,
        program,
        diagnostics,
        plan,
        index,
    }
}

/// Parses files on all cores; file `i` gets `FileId(i)`.
fn parse_parallel(files: &[(String, Vec<u8>)]) -> Vec<(String, parser::Parsed)> {
    let threads = crate::cores().min(files.len().max(1));
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    if threads <= 1 || total < 256 * 1024 {
        return files
            .iter()
            .enumerate()
            .map(|(i, (_, b))| parser::parse_bytes(FileId(i as u32), b))
            .collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<(String, parser::Parsed)>> = Vec::new();
    results.resize_with(files.len(), || None);
    let chunks: Vec<Vec<(usize, (String, parser::Parsed))>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((_, b)) = files.get(i) else { break };
                        out.push((i, parser::parse_bytes_sequential(FileId(i as u32), b)));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    for (i, r) in chunks.into_iter().flatten() {
        results[i] = Some(r);
    }
    // A worker that panicked (a parser bug) loses its files: parse them again here so the panic
    // surfaces on this thread with its message instead of a missing file.
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| parser::parse_bytes(FileId(i as u32), &files[i].1)))
        .collect()
}

struct Driver {
    sources: SourceMap,
    modules: Vec<Module>,
    by_name: HashMap<String, ModuleId>,
    diags: Vec<Diagnostic>,
}

impl Driver {
    fn add_module(&mut self, name: String, bytes: &[u8], origin: Origin) -> ModuleId {
        let file = FileId(self.sources.len() as u32);
        let (text, parsed) = parser::parse_bytes(file, bytes);
        self.add_parsed(name, text, parsed, origin)
    }

    /// Adds a module parsed for the next file id.
    fn add_parsed(
        &mut self,
        name: String,
        text: String,
        parsed: parser::Parsed,
        origin: Origin,
    ) -> ModuleId {
        let file = self.sources.add(name.clone(), text);
        self.diags.extend(parsed.diagnostics);
        let id = ModuleId(self.modules.len() as u32);
        self.by_name.insert(name.clone(), id);
        self.modules.push(Module {
            id,
            file,
            name,
            origin,
            ast: parsed.file,
            imports: HashMap::new(),
            lets: HashMap::new(),
            matchers: HashMap::new(),
            services: Vec::new(),
            tests: Vec::new(),
        });
        id
    }

    fn resolve_imports(&mut self, id: ModuleId, loader: &mut dyn SourceLoader) {
        let importer = self.modules[id.0 as usize].name.clone();
        let imports: Vec<(usize, ast::Import, Span)> = self.modules[id.0 as usize]
            .ast
            .items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| match &it.kind {
                ItemKind::Import(imp) => Some((i, imp.clone(), it.span)),
                _ => None,
            })
            .collect();
        for (idx, imp, _) in imports {
            let target = if let Some(src) =
                imp.path.strip_prefix("std/").and(stdlib::module(&imp.path))
            {
                let name = imp.path.clone();
                match self.by_name.get(&name) {
                    Some(&t) => Some(t),
                    None => Some(self.add_module(name, src.as_bytes(), Origin::Std)),
                }
            } else if imp.path.starts_with("std/") {
                let known = stdlib::MODULES.iter().map(|(p, _)| *p);
                let mut d = Diagnostic::new(
                    Code::ImportNotFound,
                    imp.path_span,
                    format!("no standard module `{}`", imp.path),
                )
                .with_label("not in the standard library");
                if let Some(s) = crate::builtins::did_you_mean(&imp.path, known) {
                    d = d.with_help(format!("did you mean `{s}`?")).with_fix(
                        format!("replace with `{s}`"),
                        vec![(imp.path_span, format!("\"{s}\""))],
                    );
                } else {
                    let list: Vec<_> = stdlib::MODULES
                        .iter()
                        .map(|(p, _)| format!("`{p}`"))
                        .collect();
                    d = d.with_note(format!("the standard modules are {}", list.join(", ")));
                }
                self.diags.push(d);
                None
            } else if !(imp.path.starts_with("./") || imp.path.starts_with("../")) {
                self.diags.push(
                    Diagnostic::new(Code::ImportNotFound, imp.path_span, format!("cannot import `{}`", imp.path))
                        .with_label("not a relative path or a standard module")
                        .with_help(format!("write `\"./{}\"` for a file next to this one, or `\"std/…\"` for the standard library", imp.path)),
                );
                None
            } else {
                let canonical = join_relative(&importer, &imp.path);
                if let Some(&t) = self.by_name.get(&canonical) {
                    Some(t)
                } else {
                    match loader.load(&importer, &imp.path) {
                        Ok((name, bytes)) => match self.by_name.get(&name) {
                            Some(&t) => Some(t),
                            None => Some(self.add_module(name, &bytes, Origin::Import)),
                        },
                        Err(why) => {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::ImportNotFound,
                                    imp.path_span,
                                    format!("cannot import `{}`", imp.path),
                                )
                                .with_label(why),
                            );
                            None
                        }
                    }
                }
            };
            let Some(target) = target else { continue };
            let ns = match &imp.alias {
                Some(a) => a.name.clone(),
                None => default_namespace(&imp.path),
            };
            let valid = ns
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let m = &mut self.modules[id.0 as usize];
            if !valid {
                self.diags.push(
                    Diagnostic::new(
                        Code::InvalidArguments,
                        imp.path_span,
                        format!("`{ns}` is not a valid namespace name"),
                    )
                    .with_help(
                        "name the namespace with `as`, e.g. `import \"./my-lib.tbt\" as lib`",
                    ),
                );
            } else if let Some(&(_, prev)) = m.imports.get(&ns) {
                let prev_span = m.ast.items[prev].span;
                self.diags.push(
                    Diagnostic::new(
                        Code::Duplicate,
                        imp.alias.as_ref().map_or(imp.path_span, |a| a.span),
                        format!("the namespace `{ns}` is imported twice"),
                    )
                    .with_secondary(prev_span, "first imported here")
                    .with_help("give one of them another name with `as`"),
                );
            } else {
                m.imports.insert(ns, (target, idx));
            }
        }
    }

    /// Reports every import that closes a cycle (including a file that imports itself).
    fn detect_import_cycles(&mut self) {
        let n = self.modules.len();
        // 0 = unvisited, 1 = on the stack, 2 = done. Iterative DFS: import chains can be long.
        let mut state = vec![0u8; n];
        for start in 0..n {
            if state[start] != 0 {
                continue;
            }
            let mut stack: Vec<Frame> = vec![(start, self.edges(start), 0)];
            state[start] = 1;
            while let Some((node, edges, pos)) = stack.last_mut() {
                if *pos < edges.len() {
                    let (target, item) = edges[*pos];
                    *pos += 1;
                    let node = *node;
                    match state[target] {
                        0 => {
                            state[target] = 1;
                            let e = self.edges(target);
                            stack.push((target, e, 0));
                        }
                        1 => {
                            let chain: Vec<String> = stack
                                .iter()
                                .skip_while(|(m, _, _)| *m != target)
                                .map(|(m, _, _)| format!("`{}`", self.modules[*m].name))
                                .chain(std::iter::once(format!("`{}`", self.modules[target].name)))
                                .collect();
                            let span = match &self.modules[node].ast.items[item].kind {
                                ItemKind::Import(i) => i.path_span,
                                _ => self.modules[node].ast.items[item].span,
                            };
                            let msg = if target == node {
                                format!("`{}` imports itself", self.modules[node].name)
                            } else {
                                "modules import each other in a cycle".to_string()
                            };
                            self.diags.push(
                                Diagnostic::new(Code::ImportCycle, span, msg)
                                    .with_label("this import closes the cycle")
                                    .with_note(format!("cycle: {}", chain.join(" → ")))
                                    .with_help("move the shared definitions into a module that both import"),
                            );
                        }
                        _ => {}
                    }
                } else {
                    state[*node] = 2;
                    stack.pop();
                }
            }
        }
    }

    fn edges(&self, m: usize) -> Vec<(usize, usize)> {
        let mut e: Vec<(usize, usize)> = self.modules[m]
            .imports
            .values()
            .map(|&(t, item)| (t.0 as usize, item))
            .collect();
        e.sort_by_key(|&(_, item)| item);
        e
    }
}

/// A module on the import DFS stack: its id, its (target, import item) edges, the next edge.
type Frame = (usize, Vec<(usize, usize)>, usize);

/// `std/http` → `http`; `./lib/shop-helpers.tbt` → `shop-helpers` (then rejected as a namespace).
pub fn default_namespace(path: &str) -> String {
    let last = path.rsplit('/').next().unwrap_or(path);
    last.strip_suffix(".tbt").unwrap_or(last).to_string()
}

fn build_tables(m: &mut Module, diags: &mut Vec<Diagnostic>) {
    let mut names: HashMap<String, Span> = HashMap::new();
    for (i, item) in m.ast.items.iter().enumerate() {
        let (name, table): (&ast::Ident, Option<&mut HashMap<String, usize>>) = match &item.kind {
            ItemKind::Let(l) => (&l.name, Some(&mut m.lets)),
            ItemKind::Matcher(mt) => (&mt.name, Some(&mut m.matchers)),
            ItemKind::Service(s) => {
                m.services.push(i);
                (&s.name, None)
            }
            ItemKind::Test(_) => {
                m.tests.push(i);
                continue;
            }
            ItemKind::Import(_) | ItemKind::Error => continue,
        };
        if let Some(prev) = names.get(&name.name) {
            diags.push(
                Diagnostic::new(
                    Code::Duplicate,
                    name.span,
                    format!("`{}` is defined twice in this module", name.name),
                )
                .with_label("second definition")
                .with_secondary(*prev, "first defined here")
                .with_help("rename one of them"),
            );
            continue;
        }
        names.insert(name.name.clone(), name.span);
        if let Some(t) = table {
            t.insert(name.name.clone(), i);
        }
    }
}

/// Builds [`TestInfo`]s for every test in a root module; reports structural errors (duplicate
/// names, missing or repeated triggers, misplaced statements).
fn collect_tests(program: &mut Program, diags: &mut Vec<Diagnostic>) {
    let mut tests = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for m in &program.modules {
        if m.origin != Origin::Root {
            for &i in &m.tests {
                if let ItemKind::Test(t) = &m.ast.items[i].kind {
                    diags.push(
                        Diagnostic::new(
                            Code::MisplacedStatement,
                            t.name.span,
                            format!(
                                "test `{}` is in an imported module and will not run",
                                t.name.name
                            ),
                        )
                        .with_severity(Severity::Warning)
                        .with_help(
                            "pass the file to `tbt run` too, or move the test into a suite file",
                        ),
                    );
                }
            }
            continue;
        }
        for &i in &m.tests {
            let item = &m.ast.items[i];
            let ItemKind::Test(t) = &item.kind else {
                continue;
            };
            let info = test_info(m, i, item.span, t, diags);
            if let Some(&prev) = index.get(&t.name.name) {
                let prev: &TestInfo = &tests[prev];
                diags.push(
                    Diagnostic::new(Code::Duplicate, t.name.span, format!("a test named `{}` already exists", t.name.name))
                        .with_label("second test with this name")
                        .with_secondary(prev.name_span, "first defined here")
                        .with_note("test names are unique across the whole suite: `--test`, `after` and captures use them"),
                );
                continue;
            }
            index.insert(t.name.name.clone(), tests.len());
            tests.push(info);
        }
    }
    program.tests = tests;
    program.test_index = index;
}

fn test_info(
    m: &Module,
    item: usize,
    span: Span,
    t: &ast::Test,
    diags: &mut Vec<Diagnostic>,
) -> TestInfo {
    let has_steps = t.body.iter().any(|s| matches!(s.kind, StmtKind::Step(_)));
    let mut steps = Vec::new();
    let mut after = Vec::new();
    let mut step_names: HashMap<&str, Span> = HashMap::new();
    for (i, stmt) in t.body.iter().enumerate() {
        match &stmt.kind {
            StmtKind::After(paths) => {
                for p in paths {
                    after.push((p.dotted(), p.span));
                }
            }
            StmtKind::Step(s) => {
                if let Some(prev) = step_names.get(s.name.name.as_str()) {
                    diags.push(
                        Diagnostic::new(
                            Code::Duplicate,
                            s.name.span,
                            format!(
                                "test `{}` already has a step named `{}`",
                                t.name.name, s.name.name
                            ),
                        )
                        .with_secondary(*prev, "first defined here"),
                    );
                }
                step_names.insert(&s.name.name, s.name.span);
                steps.push(step_info(
                    Some(&s.name),
                    stmt.span,
                    StepLoc::Step(i),
                    &s.body,
                    diags,
                ));
            }
            StmtKind::Trigger(_) | StmtKind::Expect(_) if has_steps => {
                diags.push(
                    Diagnostic::new(Code::MisplacedStatement, stmt.span, "a test with `step` blocks keeps its triggers and expectations inside the steps")
                        .with_label(if matches!(stmt.kind, StmtKind::Trigger(_)) { "trigger outside a step" } else { "expectation outside a step" })
                        .with_help("move this into a `step NAME { … }` block"),
                );
            }
            _ => {}
        }
    }
    if !has_steps {
        steps.push(step_info(None, span, StepLoc::Inline, &t.body, diags));
        if let Some(s) = steps.last_mut() {
            s.name_span = t.name.span;
        }
    } else if steps.is_empty() {
        diags.push(Diagnostic::new(
            Code::MissingTrigger,
            t.name.span,
            format!("test `{}` has no steps", t.name.name),
        ));
    }
    let _ = m;
    TestInfo {
        module: m.id,
        item,
        name: t.name.name.clone(),
        name_span: t.name.span,
        title: t.title.as_ref().and_then(|s| s.as_plain()),
        span,
        steps,
        after,
    }
}

fn step_info(
    name: Option<&ast::Ident>,
    span: Span,
    loc: StepLoc,
    body: &[ast::Stmt],
    diags: &mut Vec<Diagnostic>,
) -> StepInfo {
    let mut trigger = None;
    let mut captures: Vec<CaptureInfo> = Vec::new();
    for (i, stmt) in body.iter().enumerate() {
        match &stmt.kind {
            StmtKind::Trigger(_) => {
                if let Some(first) = trigger {
                    let first: &ast::Stmt = &body[first];
                    diags.push(
                        Diagnostic::new(
                            Code::MisplacedStatement,
                            stmt.span,
                            "a step has exactly one trigger",
                        )
                        .with_label("second trigger")
                        .with_secondary(first.span, "first trigger here")
                        .with_help("split the step in two: `step a { … }` then `step b { … }`"),
                    );
                } else {
                    trigger = Some(i);
                }
            }
            StmtKind::Step(s) if name.is_some() => {
                diags.push(
                    Diagnostic::new(
                        Code::MisplacedStatement,
                        s.name.span,
                        "steps cannot be nested",
                    )
                    .with_help("put the steps one after the other at the test level"),
                );
            }
            StmtKind::Expect(e) => {
                let (block, source) = match &e.kind {
                    ast::ExpectKind::Response(b) => (Some(b), CaptureSource::Response),
                    ast::ExpectKind::Trace(b) => (Some(b), CaptureSource::Trace),
                    ast::ExpectKind::Select { block, .. } => (block.as_ref(), CaptureSource::Trace),
                    ast::ExpectKind::Order { .. } => (None, CaptureSource::Trace),
                };
                for bs in block.into_iter().flat_map(|b| &b.stmts) {
                    if let ast::BlockStmtKind::Let(l) = &bs.kind {
                        if let Some(prev) = captures.iter().find(|c| c.name == l.name.name) {
                            diags.push(
                                Diagnostic::new(
                                    Code::Duplicate,
                                    l.name.span,
                                    format!(
                                        "the capture `{}` is defined twice in this step",
                                        l.name.name
                                    ),
                                )
                                .with_secondary(prev.span, "first defined here"),
                            );
                            continue;
                        }
                        captures.push(CaptureInfo {
                            name: l.name.name.clone(),
                            span: l.name.span,
                            source,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    let has_step_content = body
        .iter()
        .any(|s| matches!(s.kind, StmtKind::Expect(_) | StmtKind::Let(_)));
    let is_steps_container =
        name.is_none() && body.iter().any(|s| matches!(s.kind, StmtKind::Step(_)));
    if trigger.is_none() && !is_steps_container {
        let (span, what) = match name {
            Some(n) => (n.span, format!("step `{}` has no trigger", n.name)),
            None => (span, "this test has no trigger".to_string()),
        };
        let _ = has_step_content;
        diags.push(
            Diagnostic::new(Code::MissingTrigger, span, what)
                .with_label("nothing starts a trace here")
                .with_help("add `trigger http GET \"…\"`, `trigger grpc …`, `trigger exec …` or `trigger trace \"<trace id>\"`"),
        );
    }
    StepInfo {
        name: name.map(|n| n.name.clone()),
        name_span: name.map_or(span, |n| n.span),
        span,
        loc,
        trigger,
        captures,
    }
}
