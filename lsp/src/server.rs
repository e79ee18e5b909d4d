//! The language server: document store, compilations, diagnostics and the request handlers.
//!
//! State lives behind one `std::sync::Mutex` that is only ever held for map look-ups and
//! updates, never across an `.await`. Compilations (which read files) run on the compile thread
//! ([`crate::worker`]); the last-run artifact is read with `tokio::fs`. Diagnostics are
//! published by a single task fed through a channel, so they reach the client in the order the
//! compilations were started and an older compilation never overwrites a newer one.

use crate::convert::to_lsp_diagnostic;
use crate::document::Document;
use crate::workspace::{Group, OpenDoc, Snapshot, compile_group, uri_path};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tbt_compiler::ide::last_run::LastRun;
use tokio::sync::mpsc;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

/// The client-side command of the "Run test" code lens. Arguments: `[file path, test name]`.
pub const RUN_TEST_COMMAND: &str = "tbt.runTest";

/// The default quiet time after an edit before diagnostics are computed.
pub const DEFAULT_DIAGNOSTIC_DELAY: Duration = Duration::from_millis(150);

/// How long a completion waits for the compilation of the current text before it answers from
/// the previous one (marked incomplete, so the editor asks again as the user types): completion
/// stays within its latency budget on suites too large to compile that fast.
pub const COMPLETION_WAIT: Duration = Duration::from_millis(12);

/// What the client set in `initializationOptions`.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct InitOptions {
    /// Quiet time after the last edit before diagnostics are computed, in milliseconds.
    diagnostic_delay_ms: u64,
    /// How long a completion waits for the compilation of the current text, in milliseconds.
    completion_wait_ms: u64,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            diagnostic_delay_ms: DEFAULT_DIAGNOSTIC_DELAY.as_millis() as u64,
            completion_wait_ms: COMPLETION_WAIT.as_millis() as u64,
        }
    }
}

/// Where a compilation under way leaves its result (`None`: the compile task failed).
type Pending = tokio::sync::OnceCell<Option<Arc<Snapshot>>>;

/// Diagnostics published for one document, kept for code actions.
struct Published {
    /// The document version they were computed for.
    version: i32,
    /// The compilation they came from.
    snapshot: Arc<Snapshot>,
    /// Each LSP diagnostic with the index of its compiler diagnostic.
    items: Vec<(Diagnostic, usize)>,
}

#[derive(Default)]
struct State {
    docs: HashMap<Uri, Document>,
    folders: Vec<PathBuf>,
    /// Bumped by every change that can alter a compilation (edits, files on disk, settings).
    seq: u64,
    /// Per group, the number of the newest scheduled diagnostics run (debouncing).
    pending: HashMap<Group, u64>,
    snapshots: HashMap<Group, Arc<Snapshot>>,
    /// Compilations under way: the edit counter they compile and where their result goes.
    inflight: HashMap<Group, (u64, Arc<Pending>)>,
    published: HashMap<Uri, Published>,
    /// The last-run artifact of each workspace folder that has one.
    last_runs: HashMap<PathBuf, Arc<LastRun>>,
    delay: Duration,
    /// How long a completion waits for the current compilation.
    completion_wait: Duration,
    /// `tbt.toml` problems already shown (each once).
    config_errors_shown: HashSet<String>,
    dynamic_watch: bool,
}

/// One batch for the publisher task.
struct Publish {
    uri: Uri,
    version: Option<i32>,
    seq: u64,
    diagnostics: Vec<Diagnostic>,
}

struct Inner {
    client: Client,
    state: Mutex<State>,
    publisher: mpsc::UnboundedSender<Publish>,
}

/// The `tbt` language server.
#[derive(Clone)]
pub struct Backend {
    inner: Arc<Inner>,
}

impl Backend {
    /// A server talking to `client`. Spawns the diagnostics publisher on the current runtime.
    pub fn new(client: Client) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Publish>();
        let publish_client = client.clone();
        tokio::spawn(async move {
            let mut newest: HashMap<Uri, u64> = HashMap::new();
            while let Some(p) = rx.recv().await {
                let last = newest.entry(p.uri.clone()).or_insert(0);
                if p.seq < *last {
                    continue;
                }
                *last = p.seq;
                publish_client
                    .publish_diagnostics(p.uri, p.diagnostics, p.version)
                    .await;
            }
        });
        Backend {
            inner: Arc::new(Inner {
                client,
                state: Mutex::new(State {
                    delay: DEFAULT_DIAGNOSTIC_DELAY,
                    completion_wait: COMPLETION_WAIT,
                    ..State::default()
                }),
                publisher: tx,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave the maps half-updated in a way that
        // matters more than stopping the server would: keep serving.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The compilation of `group` for the current edit state, compiling when the cached one is
    /// stale.
    pub(crate) async fn snapshot_of_group(&self, group: Group) -> Option<Arc<Snapshot>> {
        let (cell, seq) = {
            let mut st = self.state();
            if let Some(s) = st.snapshots.get(&group)
                && s.seq == st.seq
            {
                return Some(s.clone());
            }
            let seq = st.seq;
            // One compilation per group and edit state: later callers wait for the first.
            let cell = match st.inflight.get(&group) {
                Some((s, cell)) if *s == seq => cell.clone(),
                _ => {
                    let cell = Arc::new(Pending::new());
                    st.inflight.insert(group.clone(), (seq, cell.clone()));
                    cell
                }
            };
            (cell, seq)
        };
        let snap = cell
            .get_or_init(|| self.compile(group.clone(), seq))
            .await
            .clone()?;
        let mut replaced = None;
        let config_error = {
            let mut st = self.state();
            if st.snapshots.get(&group).is_none_or(|s| s.seq <= seq) {
                replaced = st.snapshots.insert(group.clone(), snap.clone());
            }
            if st.inflight.get(&group).is_some_and(|(s, _)| *s <= seq) {
                st.inflight.remove(&group);
            }
            match &snap.config_error {
                Some(e) if st.config_errors_shown.insert(e.clone()) => Some(e.clone()),
                _ => None,
            }
        };
        drop_later(replaced);
        if let Some(e) = config_error {
            self.inner
                .client
                .show_message(
                    MessageType::ERROR,
                    format!("tbt.toml: {e}; using the default checker settings"),
                )
                .await;
        }
        Some(snap)
    }

    /// Compiles `group` as the documents are now (edit counter `seq`), off the async runtime.
    async fn compile(&self, group: Group, seq: u64) -> Option<Arc<Snapshot>> {
        let (open, last_run) = {
            let st = self.state();
            let open: Vec<OpenDoc> = st
                .docs
                .iter()
                .map(|(uri, d)| OpenDoc {
                    uri: uri.clone(),
                    version: d.version,
                    text: d.text.clone(),
                    index: d.index.clone(),
                })
                .collect();
            let last_run = match &group {
                Group::Folder(f) => st.last_runs.get(f).cloned(),
                _ => None,
            };
            (open, last_run)
        };
        let snap = crate::worker::run(move || compile_group(&group, &open, last_run, seq)).await?;
        Some(Arc::new(snap))
    }

    /// The compilation holding `uri` for completion, and whether it is of the current text:
    /// the current one when it is ready within the completion wait ([`COMPLETION_WAIT`] unless the
    /// client set `completionWaitMs`), otherwise the latest one
    /// that holds the document (the compilation goes on and serves the next requests). Waits
    /// for the current one when there is no other.
    pub(crate) async fn snapshot_for_completion(&self, uri: &Uri) -> (Option<Arc<Snapshot>>, bool) {
        let (group, wait) = {
            let st = self.state();
            (Group::of(uri, &st.folders), st.completion_wait)
        };
        let this = self.clone();
        let g = group.clone();
        // A task of its own, so the compilation is not dropped when the wait below ends.
        let mut current = tokio::spawn(async move { this.snapshot_of_group(g).await });
        if let Ok(done) = tokio::time::timeout(wait, &mut current).await {
            return (done.ok().flatten(), true);
        }
        let latest = self
            .state()
            .snapshots
            .get(&group)
            .filter(|s| s.file_of(uri).is_some())
            .cloned();
        match latest {
            Some(s) => (Some(s), false),
            None => (current.await.ok().flatten(), true),
        }
    }

    /// The compilation holding `uri`.
    pub(crate) async fn snapshot_for(&self, uri: &Uri) -> Option<Arc<Snapshot>> {
        let group = Group::of(uri, &self.state().folders);
        self.snapshot_of_group(group).await
    }

    /// Schedules diagnostics for `group` after the debounce delay; a newer schedule replaces it.
    fn schedule(&self, group: Group) {
        let (ticket, delay) = {
            let mut st = self.state();
            let t = st.pending.entry(group.clone()).or_insert(0);
            *t += 1;
            (*t, st.delay)
        };
        let this = self.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if this.state().pending.get(&group) != Some(&ticket) {
                return;
            }
            this.publish_group(group).await;
        });
    }

    /// Schedules diagnostics for every group that has an open document.
    fn schedule_all(&self) {
        let groups: HashSet<Group> = {
            let st = self.state();
            st.docs.keys().map(|u| Group::of(u, &st.folders)).collect()
        };
        for g in groups {
            self.schedule(g);
        }
    }

    /// Compiles `group` and publishes the diagnostics of its open documents.
    async fn publish_group(&self, group: Group) {
        let any_open = {
            let st = self.state();
            st.docs.keys().any(|u| Group::of(u, &st.folders) == group)
        };
        if !any_open {
            return;
        }
        let Some(snap) = self.snapshot_of_group(group.clone()).await else {
            return;
        };
        // The open documents of the group that this compilation saw as they are now.
        let current: Vec<(Uri, i32)> = {
            let st = self.state();
            st.docs
                .iter()
                .filter(|(u, d)| {
                    Group::of(u, &st.folders) == group && snap.versions.get(*u) == Some(&d.version)
                })
                .map(|(u, d)| (u.clone(), d.version))
                .collect()
        };
        // Converted without the lock.
        let converted: Vec<_> = current
            .into_iter()
            .map(|(uri, version)| {
                let items = diagnostics_of(&snap, &uri);
                (uri, version, items)
            })
            .collect();
        let mut replaced = Vec::new();
        {
            let mut st = self.state();
            for (uri, version, items) in converted {
                // Changed meanwhile: a newer run will publish.
                if st.docs.get(&uri).map(|d| d.version) != Some(version) {
                    continue;
                }
                let _ = self.inner.publisher.send(Publish {
                    uri: uri.clone(),
                    version: Some(version),
                    seq: snap.seq,
                    diagnostics: items.iter().map(|(d, _)| d.clone()).collect(),
                });
                let old = st.published.insert(
                    uri,
                    Published {
                        version,
                        snapshot: snap.clone(),
                        items,
                    },
                );
                replaced.extend(old.map(|p| p.snapshot));
            }
        }
        drop_later(replaced);
    }

    /// Reads the last-run artifact of every workspace folder (in the background).
    fn reload_last_runs(&self) {
        let folders = self.state().folders.clone();
        for folder in folders {
            let this = self.clone();
            tokio::spawn(async move {
                let loaded = crate::last_run::load(&folder).await;
                let message = {
                    let mut st = this.state();
                    // Compilations made before carry the old data: let requests compile again.
                    st.seq += 1;
                    match loaded {
                        Some(run) => {
                            let m = format!(
                                "last run loaded from `{}`: {} attributes, {} selectors",
                                folder.join(".tbt/last-run.json").display(),
                                run.attributes.len(),
                                run.selectors.len()
                            );
                            st.last_runs.insert(folder, Arc::new(run));
                            Some(m)
                        }
                        None => st
                            .last_runs
                            .remove(&folder)
                            .map(|_| format!("last run of `{}` removed", folder.display())),
                    }
                };
                if let Some(m) = message {
                    this.inner.client.log_message(MessageType::INFO, m).await;
                }
            });
        }
    }

    /// The open document `uri`: its text and line index.
    pub(crate) fn document(&self, uri: &Uri) -> Option<Document> {
        self.state().docs.get(uri).cloned()
    }

    /// The workspace folders and the open documents' URIs.
    pub(crate) fn folders_and_docs(&self) -> (Vec<PathBuf>, Vec<Uri>) {
        let st = self.state();
        (st.folders.clone(), st.docs.keys().cloned().collect())
    }

    fn set_folders(&self, folders: Vec<PathBuf>) {
        let mut st = self.state();
        st.folders = folders;
        st.seq += 1;
        let old: Vec<Arc<Snapshot>> = st.snapshots.drain().map(|(_, s)| s).collect();
        drop(st);
        drop_later(old);
    }
}

/// Frees compilations on the compile thread: the last reference to a large syntax tree takes
/// milliseconds to drop, which neither a request nor the state lock should wait for.
fn drop_later(old: impl IntoIterator<Item = Arc<Snapshot>>) {
    let old: Vec<Arc<Snapshot>> = old.into_iter().collect();
    if !old.is_empty() {
        crate::worker::drop_there(old);
    }
}

/// The LSP diagnostics of `uri` in a compilation, each with its compiler diagnostic's index.
fn diagnostics_of(snap: &Snapshot, uri: &Uri) -> Vec<(Diagnostic, usize)> {
    let Some(file) = snap.file_of(uri) else {
        return Vec::new();
    };
    snap.compilation()
        .diagnostics
        .iter()
        .enumerate()
        .filter(|(_, d)| d.span().file == file)
        .filter_map(|(i, d)| to_lsp_diagnostic(snap, d).map(|l| (l, i)))
        .collect()
}

fn intersects(a: Range, b: Range) -> bool {
    let key = |p: Position| (p.line, p.character);
    key(a.start) <= key(b.end) && key(b.start) <= key(a.end)
}

fn folder_paths(params: &InitializeParams) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = params
        .workspace_folders
        .iter()
        .flatten()
        .filter_map(|f| uri_path(&f.uri))
        .collect();
    #[allow(deprecated)]
    if out.is_empty()
        && let Some(root) = params.root_uri.as_ref().and_then(uri_path)
    {
        out.push(root);
    }
    out
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let options: InitOptions = params
            .initialization_options
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let dynamic_watch = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|w| w.dynamic_registration)
            .unwrap_or(false);
        {
            let mut st = self.state();
            st.delay = Duration::from_millis(options.diagnostic_delay_ms);
            st.completion_wait = Duration::from_millis(options.completion_wait_ms);
            st.folders = folder_paths(&params);
            st.dynamic_watch = dynamic_watch;
        }
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "tbt".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: crate::features::capabilities(),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        self.reload_last_runs();
        let dynamic = self.state().dynamic_watch;
        if dynamic {
            let watchers = ["**/*.tbt", "**/tbt.toml", "**/.tbt/last-run.json"]
                .into_iter()
                .map(|g| FileSystemWatcher {
                    glob_pattern: GlobPattern::String(g.into()),
                    kind: None,
                })
                .collect();
            let options = DidChangeWatchedFilesRegistrationOptions { watchers };
            let registration = Registration {
                id: "tbt-watched-files".into(),
                method: "workspace/didChangeWatchedFiles".into(),
                register_options: serde_json::to_value(options).ok(),
            };
            if let Err(e) = self
                .inner
                .client
                .register_capability(vec![registration])
                .await
            {
                eprintln!("tbt lsp: could not register file watchers: {e}");
            }
        }
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        let group = {
            let mut st = self.state();
            st.docs
                .insert(doc.uri.clone(), Document::new(doc.version, doc.text));
            st.seq += 1;
            Group::of(&doc.uri, &st.folders)
        };
        self.schedule(group);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        let group = {
            let mut st = self.state();
            let Some(doc) = st.docs.get_mut(&uri) else {
                eprintln!(
                    "tbt lsp: change of a document that is not open: {}",
                    uri.as_str()
                );
                return;
            };
            doc.apply(params.text_document.version, params.content_changes);
            st.seq += 1;
            Group::of(&uri, &st.folders)
        };
        self.schedule(group);
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        {
            let mut st = self.state();
            st.seq += 1;
        }
        self.reload_last_runs();
        let group = Group::of(&params.text_document.uri, &self.state().folders);
        self.schedule(group);
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        let mut forgotten = Vec::new();
        let (group, seq) = {
            let mut st = self.state();
            st.docs.remove(&uri);
            forgotten.extend(st.published.remove(&uri).map(|p| p.snapshot));
            st.seq += 1;
            let group = Group::of(&uri, &st.folders);
            // The last document of a compilation closed: forget the compilation.
            let folders = st.folders.clone();
            if !st.docs.keys().any(|u| Group::of(u, &folders) == group) {
                forgotten.extend(st.snapshots.remove(&group));
                st.inflight.remove(&group);
            }
            (group, st.seq)
        };
        drop_later(forgotten);
        let _ = self.inner.publisher.send(Publish {
            uri,
            version: None,
            seq,
            diagnostics: Vec::new(),
        });
        // The other documents now see the file as it is on disk.
        self.schedule(group);
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        let mut recompile = false;
        let mut last_run = false;
        for change in &params.changes {
            let s = change.uri.as_str();
            if s.ends_with("/.tbt/last-run.json") {
                last_run = true;
            } else if s.ends_with(".tbt") || s.ends_with("/tbt.toml") {
                recompile = true;
            }
        }
        if last_run {
            self.reload_last_runs();
        }
        if recompile {
            {
                let mut st = self.state();
                st.seq += 1;
                st.config_errors_shown.clear();
            }
            self.schedule_all();
        }
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        let mut folders = self.state().folders.clone();
        let removed: Vec<PathBuf> = params
            .event
            .removed
            .iter()
            .filter_map(|f| uri_path(&f.uri))
            .collect();
        folders.retain(|f| !removed.contains(f));
        for f in params.event.added.iter().filter_map(|f| uri_path(&f.uri)) {
            if !folders.contains(&f) {
                folders.push(f);
            }
        }
        self.set_folders(folders);
        self.reload_last_runs();
        self.schedule_all();
    }

    async fn formatting(&self, params: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        let Some(doc) = self.document(&params.text_document.uri) else {
            return Ok(None);
        };
        let text = doc.text.clone();
        let formatted =
            tokio::task::spawn_blocking(move || tbt_compiler::format::format(&text).ok())
                .await
                .ok()
                .flatten();
        // A file with syntax errors is never rewritten (as with `tbt fmt`).
        let Some(formatted) = formatted else {
            return Ok(None);
        };
        if formatted == *doc.text {
            return Ok(Some(Vec::new()));
        }
        Ok(Some(vec![TextEdit {
            range: doc.index.range(&doc.text, 0, doc.text.len()),
            new_text: formatted,
        }]))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = &params.text_document.uri;
        let st = self.state();
        let (Some(doc), Some(published)) = (st.docs.get(uri), st.published.get(uri)) else {
            return Ok(None);
        };
        // Fixes computed for an older text would edit the wrong places.
        if doc.version != published.version {
            return Ok(None);
        }
        let mut actions = Vec::new();
        for (diag, index) in &published.items {
            if !intersects(diag.range, params.range) {
                continue;
            }
            let Some(tbt_diag) = published.snapshot.compilation().diagnostics.get(*index) else {
                continue;
            };
            for fix in &tbt_diag.fixes {
                let Some(edit) = published.snapshot.workspace_edit(fix) else {
                    continue;
                };
                actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                    title: fix.message.clone(),
                    kind: Some(CodeActionKind::QUICKFIX),
                    diagnostics: Some(vec![diag.clone()]),
                    edit: Some(edit),
                    is_preferred: Some(tbt_diag.fixes.len() == 1),
                    ..CodeAction::default()
                }));
            }
        }
        Ok(Some(actions))
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        let uri = &params.text_document.uri;
        let Some(path) = uri_path(uri) else {
            return Ok(None);
        };
        let Some((snap, file)) = self.compiled(uri).await else {
            return Ok(None);
        };
        let path = path.to_string_lossy().into_owned();
        let lenses = snap
            .compilation()
            .program
            .tests
            .iter()
            .filter(|t| t.name_span.file == file)
            .filter_map(|t| {
                let (_, range) = snap.range(t.name_span)?;
                Some(CodeLens {
                    range,
                    command: Some(Command {
                        title: "▶ Run test".into(),
                        command: RUN_TEST_COMMAND.into(),
                        arguments: Some(vec![path.clone().into(), t.name.clone().into()]),
                    }),
                    data: None,
                })
            })
            .collect();
        Ok(Some(lenses))
    }

    async fn goto_definition(
        &self,
        params: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        self.goto_definition_impl(params).await
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        self.references_impl(params).await
    }

    async fn prepare_rename(
        &self,
        params: TextDocumentPositionParams,
    ) -> Result<Option<PrepareRenameResponse>> {
        self.prepare_rename_impl(params).await
    }

    async fn rename(&self, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
        self.rename_impl(params).await
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        self.document_symbol_impl(params).await
    }

    async fn symbol(
        &self,
        params: WorkspaceSymbolParams,
    ) -> Result<Option<WorkspaceSymbolResponse>> {
        self.workspace_symbol_impl(params).await
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        self.completion_impl(params).await
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        self.hover_impl(params).await
    }

    async fn signature_help(&self, params: SignatureHelpParams) -> Result<Option<SignatureHelp>> {
        self.signature_help_impl(params).await
    }

    async fn semantic_tokens_full(
        &self,
        params: SemanticTokensParams,
    ) -> Result<Option<SemanticTokensResult>> {
        self.semantic_tokens_impl(params).await
    }

    async fn folding_range(&self, params: FoldingRangeParams) -> Result<Option<Vec<FoldingRange>>> {
        self.folding_range_impl(params).await
    }
}
