//! Editor analysis: the pure layer under `tbt lsp`.
//!
//! # The API
//!
//! An [`Analysis`] wraps one [`Compilation`] — the very compile `tbt check` does, so diagnostics
//! and analysis always agree — plus an index of every definition and every name the checker
//! resolved ([`crate::check::Index`]). Build it with [`analyze`] (root files + a
//! [`SourceLoader`]) or [`Analysis::new`] from a compilation you already have. It is immutable:
//! after an edit, build a new one (a 5,000-line file recompiles and reindexes in about 16 ms, see
//! `docs/benchmarks.md`). It is `Send + Sync`: share it as `Arc<Analysis>`. Every query is a
//! method taking a [`FileId`] and a **byte offset** into that file's text as the analysis saw
//! it; offsets past the end or inside a character are clamped, never a panic. Results are plain
//! structs with byte ranges, [`FileId`]s and file names (paths as given to the compiler;
//! standard modules are named `std/http` …, their text is [`Analysis::file_text`]). Semantic
//! tokens never span lines; [`TokenKind::lsp_type`] and [`modifiers::NAMES`] give a legend.
//!
//! | query | method |
//! |---|---|
//! | diagnostics | [`Analysis::diagnostics`] (the compile's, unchanged) |
//! | go to definition | [`Analysis::definition`] |
//! | find references | [`Analysis::references`] |
//! | rename | [`Analysis::prepare_rename`], [`Analysis::rename`] |
//! | completion | [`Analysis::completions`] |
//! | hover | [`Analysis::hover`] |
//! | signature help | [`Analysis::signature_help`] |
//! | outline | [`Analysis::document_symbols`], [`Analysis::workspace_symbols`] |
//! | highlighting | [`Analysis::semantic_tokens`] |
//! | folding | [`Analysis::folding_ranges`] |
//!
//! # How a server uses it
//!
//! ```text
//! on open/change(uri, text):  store text; rebuild = ide::analyze(roots, &mut loader, &options)
//!                              publish analysis.diagnostics() for each file (after a debounce)
//! on request(uri, position):  file = analysis.file_id(path)?; offset = utf16_to_byte(text, pos)
//!                              result = analysis.QUERY(file, offset); convert byte ranges back
//! ```
//!
//! The server keeps the latest analysis behind a cheap handle (e.g. `Arc<Analysis>`), rebuilds it
//! off the request path, and converts ranges to UTF-16 line/character positions itself. Results
//! that name another file carry its [`FileId`] and name; open it with [`Analysis::file_text`].
//!
//! The last run: `tbt run` writes `.tbt/last-run.json` (see [`last_run`] and `docs/cli.md`);
//! hand it to [`Analysis::set_last_run`] and completion offers the attribute names and values
//! seen, and hover on a selector tells how many spans it matched.

mod complete;
mod hover;
pub mod last_run;
mod markdown;
mod nav;
mod scan;
mod tokens;

pub use complete::{CompletionItem, CompletionKind};
pub use hover::{Hover, ParameterInfo, SignatureHelp};
pub use nav::{
    Definition, DocumentSymbol, FileEdit, KEYWORDS, Location, SymbolKind, TextEdit, WorkspaceSymbol,
};
pub use tokens::{Fold, FoldKind, SemanticToken, TokenKind, modifiers};

use crate::check::{Reference, Resolution};
use crate::compile::{self, Compilation, Options, SourceLoader};
use crate::diagnostic::Diagnostic;
use crate::program::{ModuleId, Origin};
use crate::span::{FileId, SourceFile, Span};
use std::collections::HashMap;

/// Compiles a workspace (root files in order, imports through `loader`) and indexes it.
pub fn analyze(
    roots: Vec<(String, Vec<u8>)>,
    loader: &mut dyn SourceLoader,
    options: &Options,
) -> Analysis {
    Analysis::new(compile::compile(roots, loader, options))
}

/// One definition: something with a name that can be jumped to and renamed.
#[derive(Clone, Debug)]
pub(crate) struct Def {
    pub name: String,
    /// The defining name.
    pub span: Span,
    /// The whole definition (item, statement).
    pub full: Span,
    pub kind: SymbolKind,
    /// The module it is in.
    pub module: ModuleId,
    /// Test and step, for tests, steps, captures and locals.
    pub test: Option<usize>,
    pub step: Option<usize>,
    /// For an import without `as`: the namespace has no written name.
    pub implicit: bool,
}

/// A compiled workspace, indexed for editor queries. See the module docs.
pub struct Analysis {
    c: Compilation,
    pub(crate) defs: Vec<Def>,
    pub(crate) def_at: HashMap<Span, usize>,
    /// Resolved references (deduplicated), sorted by position; `usize::MAX` when the name has no
    /// definition (functions, fields, attributes, constants).
    pub(crate) refs: Vec<(Reference, usize)>,
    /// Per definition, indices into `refs`.
    pub(crate) uses: Vec<Vec<usize>>,
    /// Expression types, sorted by position.
    pub(crate) types: Vec<(Span, crate::builtins::Ty)>,
    pub(crate) module_of: HashMap<FileId, ModuleId>,
    pub(crate) last_run: Option<last_run::Indexed>,
}

impl std::fmt::Debug for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analysis")
            .field("files", &self.c.sources.len())
            .field("definitions", &self.defs.len())
            .field("references", &self.refs.len())
            .finish_non_exhaustive()
    }
}

impl Analysis {
    /// Indexes a compilation.
    pub fn new(mut c: Compilation) -> Self {
        let index = std::mem::take(&mut c.index);
        let mut a = Analysis {
            c,
            defs: Vec::new(),
            def_at: HashMap::new(),
            refs: Vec::new(),
            uses: Vec::new(),
            types: index.types,
            module_of: HashMap::new(),
            last_run: None,
        };
        for m in &a.c.program.modules {
            a.module_of.insert(m.file, m.id);
        }
        nav::collect_defs(&mut a);
        let mut refs = index.references;
        refs.sort_by_key(|r| (r.span.file, r.span.start, r.span.end));
        refs.dedup();
        let mut out = Vec::with_capacity(refs.len());
        a.uses = vec![Vec::new(); a.defs.len()];
        for r in refs {
            let def = a.def_of(&r.resolution).unwrap_or(usize::MAX);
            if let Some(u) = a.uses.get_mut(def) {
                u.push(out.len());
            }
            out.push((r, def));
        }
        a.refs = out;
        a.types
            .sort_by_key(|(s, _)| (s.file, s.start, std::cmp::Reverse(s.end)));
        a.types.dedup();
        a
    }

    /// The compilation: program, sources, plan.
    pub fn compilation(&self) -> &Compilation {
        &self.c
    }

    /// Every diagnostic of the compile, exactly as `tbt check` reports them.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.c.diagnostics
    }

    /// The diagnostics whose primary location is in `file`.
    pub fn file_diagnostics(&self, file: FileId) -> impl Iterator<Item = &Diagnostic> {
        self.c
            .diagnostics
            .iter()
            .filter(move |d| d.span().file == file)
    }

    /// The id of the file with this name (as given to the compiler, or `std/http`).
    pub fn file_id(&self, name: &str) -> Option<FileId> {
        self.c
            .sources
            .iter()
            .find(|(_, f)| f.name == name)
            .map(|(id, _)| id)
    }

    /// The name of a file.
    pub fn file_name(&self, file: FileId) -> &str {
        self.c.sources.try_get(file).map_or("", |f| f.name.as_str())
    }

    /// The text of a file as the analysis saw it (also for standard modules).
    pub fn file_text(&self, file: FileId) -> &str {
        self.c.sources.try_get(file).map_or("", |f| f.text.as_str())
    }

    /// True when the file is a standard-library module (read-only).
    pub fn is_std(&self, file: FileId) -> bool {
        self.module_of
            .get(&file)
            .is_some_and(|m| self.c.program.module(*m).origin == Origin::Std)
    }

    /// Attaches the artifact of the last `tbt run` (see [`last_run`]). `root` is the directory
    /// holding `.tbt/`, written the way this analysis names its files (`""` when file names are
    /// relative to it). Takes the artifact by value or shared (`Arc<LastRun>`, so a server
    /// that rebuilds the analysis on every edit does not copy it).
    pub fn set_last_run(&mut self, run: impl Into<std::sync::Arc<last_run::LastRun>>, root: &str) {
        self.last_run = Some(last_run::Indexed::new(run.into(), root, &self.c.sources));
    }

    pub(crate) fn source(&self, file: FileId) -> Option<&SourceFile> {
        self.c.sources.try_get(file)
    }

    /// `offset` clamped to the text and moved back to a character boundary.
    pub(crate) fn clamp(&self, file: FileId, offset: usize) -> usize {
        self.file_text(file).floor_char_boundary(offset)
    }

    pub(crate) fn location(&self, span: Span) -> Location {
        Location {
            file: span.file,
            path: self.file_name(span.file).to_string(),
            range: span.range(),
        }
    }

    fn def_of(&self, r: &Resolution) -> Option<usize> {
        let p = &self.c.program;
        let span = match r {
            Resolution::Local(s) => *s,
            Resolution::Let { module, item } => match &p.module(*module).ast.items.get(*item)?.kind
            {
                crate::ast::ItemKind::Let(l) => l.name.span,
                _ => return None,
            },
            Resolution::Matcher { module, item } => {
                match &p.module(*module).ast.items.get(*item)?.kind {
                    crate::ast::ItemKind::Matcher(m) => m.name.span,
                    _ => return None,
                }
            }
            Resolution::Namespace { module, item } => {
                match &p.module(*module).ast.items.get(*item)?.kind {
                    crate::ast::ItemKind::Import(i) => {
                        i.alias.as_ref().map_or(i.path_span, |a| a.span)
                    }
                    _ => return None,
                }
            }
            Resolution::Test(t) => p.tests.get(*t)?.name_span,
            Resolution::Step { test, step } => p.tests.get(*test)?.steps.get(*step)?.name_span,
            Resolution::Capture { test, step, name } => {
                p.tests
                    .get(*test)?
                    .steps
                    .get(*step)?
                    .captures
                    .iter()
                    .find(|c| &c.name == name)?
                    .span
            }
            _ => return None,
        };
        self.def_at.get(&span).copied()
    }

    /// The reference under the cursor: the smallest recorded name containing `offset` (the end
    /// of a name counts, so a cursor just after a word finds it).
    pub(crate) fn ref_at(&self, file: FileId, offset: usize) -> Option<&(Reference, usize)> {
        let o = offset as u32;
        // Names do not overlap, so the answer is among the last few starting at or before `o`.
        let end = self
            .refs
            .partition_point(|(r, _)| (r.span.file, r.span.start) <= (file, o));
        self.refs[..end]
            .iter()
            .rev()
            .take(8)
            .filter(|(r, _)| r.span.file == file && r.span.start <= o && o <= r.span.end)
            .min_by_key(|(r, _)| r.span.len())
    }

    /// The definition whose name is under the cursor.
    pub(crate) fn def_named_at(&self, file: FileId, offset: usize) -> Option<usize> {
        let o = offset as u32;
        self.defs
            .iter()
            .enumerate()
            .filter(|(_, d)| d.span.file == file && d.span.start <= o && o <= d.span.end)
            .min_by_key(|(_, d)| d.span.len())
            .map(|(i, _)| i)
    }

    /// The definition the cursor is on: a reference's target or a definition's own name.
    pub(crate) fn def_at_cursor(&self, file: FileId, offset: usize) -> Option<usize> {
        let offset = self.clamp(file, offset);
        if let Some((_, d)) = self.ref_at(file, offset)
            && *d != usize::MAX
        {
            return Some(*d);
        }
        self.def_named_at(file, offset)
    }

    /// The smallest checked expression containing `offset`, with its type.
    pub(crate) fn type_at(
        &self,
        file: FileId,
        offset: usize,
    ) -> Option<(Span, crate::builtins::Ty)> {
        let o = offset as u32;
        self.types
            .iter()
            .filter(|(s, _)| s.file == file && s.start <= o && o <= s.end)
            .min_by_key(|(s, _)| s.len())
            .copied()
    }
}
