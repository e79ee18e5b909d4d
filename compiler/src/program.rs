//! A checked suite: modules with their symbol tables, and the tests with their steps and captures.
//!
//! This is what the planner lowers and what the runtime and language server read. It owns the
//! syntax trees; everything else refers to them by index, so the program can be moved and shared
//! without lifetimes.

use crate::ast;
use crate::span::{FileId, Span};
use std::collections::HashMap;

/// Index of a module in [`Program::modules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ModuleId(pub u32);

/// Where a module came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file named on the command line (or found in a named directory): its tests run.
    Root,
    /// A file reached only through `import`.
    Import,
    /// A module of the embedded standard library.
    Std,
}

/// One `.tbt` file and its names.
#[derive(Debug)]
pub struct Module {
    /// Its id.
    pub id: ModuleId,
    /// Its source file.
    pub file: FileId,
    /// The canonical name (a path, or `std/http`).
    pub name: String,
    /// Where it came from.
    pub origin: Origin,
    /// The syntax tree.
    pub ast: ast::File,
    /// Import namespace → (module, index of the `import` item).
    pub imports: HashMap<String, (ModuleId, usize)>,
    /// Module-level `let` name → item index.
    pub lets: HashMap<String, usize>,
    /// Matcher name → item index.
    pub matchers: HashMap<String, usize>,
    /// Service item indices.
    pub services: Vec<usize>,
    /// Test item indices.
    pub tests: Vec<usize>,
}

impl Module {
    /// The `let` item of this name.
    pub fn let_item(&self, name: &str) -> Option<&ast::Let> {
        match &self.ast.items.get(*self.lets.get(name)?)?.kind {
            ast::ItemKind::Let(l) => Some(l),
            _ => None,
        }
    }

    /// The matcher of this name, with its item (for docs).
    pub fn matcher_item(&self, name: &str) -> Option<(&ast::Item, &ast::Matcher)> {
        let item = self.ast.items.get(*self.matchers.get(name)?)?;
        match &item.kind {
            ast::ItemKind::Matcher(m) => Some((item, m)),
            _ => None,
        }
    }
}

/// Where a capture's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureSource {
    /// `expect response { let x = … }`: known as soon as the trigger answered.
    Response,
    /// `expect SEL { let x = … }` or `expect trace { … }`: known once the trace is evaluated.
    Trace,
}

/// A `let` inside an expectation block.
#[derive(Clone, Debug)]
pub struct CaptureInfo {
    /// Its name.
    pub name: String,
    /// Where it is defined.
    pub span: Span,
    /// Response or trace.
    pub source: CaptureSource,
}

/// Where a step's statements are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepLoc {
    /// The test body itself (a test without `step` blocks).
    Inline,
    /// The `step` statement at this index of the test body.
    Step(usize),
}

/// One step of a test.
#[derive(Clone, Debug)]
pub struct StepInfo {
    /// The step's name; `None` for an inline test.
    pub name: Option<String>,
    /// The name's span (the test name for an inline test).
    pub name_span: Span,
    /// The whole step.
    pub span: Span,
    /// Where its statements are.
    pub loc: StepLoc,
    /// Index of its `trigger` statement in its body.
    pub trigger: Option<usize>,
    /// Its captures.
    pub captures: Vec<CaptureInfo>,
}

/// One test.
#[derive(Clone, Debug)]
pub struct TestInfo {
    /// The module it is in.
    pub module: ModuleId,
    /// Its item index.
    pub item: usize,
    /// Its name.
    pub name: String,
    /// The name's span.
    pub name_span: Span,
    /// Its title, when written.
    pub title: Option<String>,
    /// The whole test.
    pub span: Span,
    /// Its steps, in order.
    pub steps: Vec<StepInfo>,
    /// `after` dependencies: test name and where written.
    pub after: Vec<(String, Span)>,
}

impl TestInfo {
    /// The display name of a step: `test.step`, or `test` for an inline test.
    pub fn step_label(&self, step: usize) -> String {
        match self.steps.get(step).and_then(|s| s.name.as_deref()) {
            Some(s) => format!("{}.{}", self.name, s),
            None => self.name.clone(),
        }
    }
}

/// The checked modules and tests.
#[derive(Debug, Default)]
pub struct Program {
    /// Every module: roots, imports and the standard modules used.
    pub modules: Vec<Module>,
    /// Every test of the root modules, in file then source order.
    pub tests: Vec<TestInfo>,
    /// Test name → index in `tests`.
    pub test_index: HashMap<String, usize>,
}

impl Program {
    /// The module with this id.
    pub fn module(&self, id: ModuleId) -> &Module {
        &self.modules[id.0 as usize]
    }

    /// The syntax of a test.
    pub fn test_ast(&self, test: usize) -> Option<&ast::Test> {
        let t = self.tests.get(test)?;
        match &self.module(t.module).ast.items.get(t.item)?.kind {
            ast::ItemKind::Test(test) => Some(test),
            _ => None,
        }
    }

    /// The statements of one step.
    pub fn step_body(&self, test: usize, step: usize) -> &[ast::Stmt] {
        let (Some(t), Some(info)) = (
            self.test_ast(test),
            self.tests.get(test).and_then(|t| t.steps.get(step)),
        ) else {
            return &[];
        };
        match info.loc {
            StepLoc::Inline => &t.body,
            StepLoc::Step(i) => match t.body.get(i).map(|s| &s.kind) {
                Some(ast::StmtKind::Step(s)) => &s.body,
                _ => &[],
            },
        }
    }

    /// Test-level statements (`let`, `after`, `timeout`, `settle`) of a test with steps; the
    /// whole body for an inline test.
    pub fn test_body(&self, test: usize) -> &[ast::Stmt] {
        self.test_ast(test).map_or(&[], |t| &t.body)
    }
}
