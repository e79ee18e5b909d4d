//! The editor queries of `tbt_compiler::ide` behind LSP requests: each handler finds the
//! compilation of the document, converts the LSP position to a byte offset of the text that
//! compilation saw, asks the analysis, and converts byte ranges back (UTF-16).

use crate::server::Backend;
use crate::workspace::{Group, Snapshot};
use std::collections::HashMap;
use std::sync::Arc;
use tbt_compiler::FileId;
use tbt_compiler::ide::{self, Analysis};
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::{
    self as lsp, DocumentSymbolResponse, GotoDefinitionResponse, LocationLink, OneOf,
    PrepareRenameResponse, SymbolKind, TextEdit, Uri, WorkspaceEdit, WorkspaceSymbol,
    WorkspaceSymbolResponse,
};

/// A document's compilation and the byte offset of a position in it.
pub(crate) struct At {
    pub snap: Arc<Snapshot>,
    pub file: FileId,
    pub offset: usize,
}

impl At {
    pub fn analysis(&self) -> &Analysis {
        &self.snap.analysis
    }
}

impl Snapshot {
    /// The LSP range of a byte range of `file`.
    pub fn lsp_range(&self, file: FileId, range: std::ops::Range<usize>) -> Option<lsp::Range> {
        let lines = self.lines.get(file.0 as usize)?;
        let text = self.analysis.file_text(file);
        Some(lines.range(text, range.start, range.end))
    }

    /// An LSP location of a byte range.
    pub fn lsp_location(&self, file: FileId, range: std::ops::Range<usize>) -> Option<lsp::Location> {
        let uri = self.uris.get(file.0 as usize)?.clone()?;
        Some(lsp::Location {
            uri,
            range: self.lsp_range(file, range)?,
        })
    }

    /// The byte offset of an LSP position in `file`.
    pub fn offset(&self, file: FileId, pos: lsp::Position) -> Option<usize> {
        let lines = self.lines.get(file.0 as usize)?;
        Some(lines.offset(self.analysis.file_text(file), pos))
    }
}

fn symbol_kind(k: ide::SymbolKind) -> SymbolKind {
    match k {
        ide::SymbolKind::Namespace => SymbolKind::NAMESPACE,
        ide::SymbolKind::Let => SymbolKind::CONSTANT,
        ide::SymbolKind::Matcher => SymbolKind::FUNCTION,
        ide::SymbolKind::Parameter => SymbolKind::VARIABLE,
        ide::SymbolKind::Service => SymbolKind::OBJECT,
        ide::SymbolKind::Test => SymbolKind::CLASS,
        ide::SymbolKind::Step => SymbolKind::METHOD,
        ide::SymbolKind::Variable => SymbolKind::VARIABLE,
        ide::SymbolKind::Capture => SymbolKind::FIELD,
    }
}

fn request_failed(message: String) -> Error {
    Error {
        code: ErrorCode::ServerError(-32803),
        message: message.into(),
        data: None,
    }
}

impl Backend {
    /// The compilation of `uri` and the offset of `pos` in it.
    pub(crate) async fn at(&self, uri: &Uri, pos: lsp::Position) -> Option<At> {
        let snap = self.snapshot_for(uri).await?;
        let file = snap.file_of(uri)?;
        let offset = snap.offset(file, pos)?;
        Some(At { snap, file, offset })
    }

    pub(crate) async fn goto_definition_impl(
        &self,
        params: lsp::GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let p = params.text_document_position_params;
        let Some(at) = self.at(&p.text_document.uri, p.position).await else {
            return Ok(None);
        };
        let Some(def) = at.analysis().definition(at.file, at.offset) else {
            return Ok(None);
        };
        let snap = &at.snap;
        let (Some(uri), Some(target_range), Some(selection), Some(origin)) = (
            snap.uris.get(def.target.file.0 as usize).cloned().flatten(),
            snap.lsp_range(def.target.file, def.full.clone()),
            snap.lsp_range(def.target.file, def.target.range.clone()),
            snap.lsp_range(at.file, def.origin.clone()),
        ) else {
            return Ok(None);
        };
        Ok(Some(GotoDefinitionResponse::Link(vec![LocationLink {
            origin_selection_range: Some(origin),
            target_uri: uri,
            target_range,
            target_selection_range: selection,
        }])))
    }

    pub(crate) async fn references_impl(
        &self,
        params: lsp::ReferenceParams,
    ) -> Result<Option<Vec<lsp::Location>>> {
        let p = params.text_document_position;
        let Some(at) = self.at(&p.text_document.uri, p.position).await else {
            return Ok(None);
        };
        let refs = at.analysis().references(
            at.file,
            at.offset,
            params.context.include_declaration,
        );
        Ok(Some(
            refs.into_iter()
                .filter_map(|l| at.snap.lsp_location(l.file, l.range))
                .collect(),
        ))
    }

    pub(crate) async fn prepare_rename_impl(
        &self,
        params: lsp::TextDocumentPositionParams,
    ) -> Result<Option<PrepareRenameResponse>> {
        let Some(at) = self.at(&params.text_document.uri, params.position).await else {
            return Ok(None);
        };
        match at.analysis().prepare_rename(at.file, at.offset) {
            Ok((range, placeholder)) => Ok(at
                .snap
                .lsp_range(at.file, range)
                .map(|range| PrepareRenameResponse::RangeWithPlaceholder { range, placeholder })),
            Err(e) => Err(request_failed(e)),
        }
    }

    pub(crate) async fn rename_impl(
        &self,
        params: lsp::RenameParams,
    ) -> Result<Option<WorkspaceEdit>> {
        let p = params.text_document_position;
        let Some(at) = self.at(&p.text_document.uri, p.position).await else {
            return Ok(None);
        };
        let edits = at
            .analysis()
            .rename(at.file, at.offset, &params.new_name)
            .map_err(request_failed)?;
        let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
        for fe in edits {
            let Some(uri) = at.snap.uris.get(fe.file.0 as usize).cloned().flatten() else {
                return Err(request_failed(format!("cannot edit `{}`", fe.path)));
            };
            let out = changes.entry(uri).or_default();
            for e in fe.edits {
                let Some(range) = at.snap.lsp_range(fe.file, e.range) else {
                    continue;
                };
                out.push(TextEdit {
                    range,
                    new_text: e.new_text,
                });
            }
        }
        Ok(Some(WorkspaceEdit {
            changes: Some(changes),
            ..WorkspaceEdit::default()
        }))
    }

    pub(crate) async fn document_symbol_impl(
        &self,
        params: lsp::DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        let uri = &params.text_document.uri;
        let Some(snap) = self.snapshot_for(uri).await else {
            return Ok(None);
        };
        let Some(file) = snap.file_of(uri) else {
            return Ok(None);
        };
        fn convert(
            snap: &Snapshot,
            file: FileId,
            s: ide::DocumentSymbol,
        ) -> Option<lsp::DocumentSymbol> {
            #[allow(deprecated)]
            Some(lsp::DocumentSymbol {
                name: s.name,
                detail: s.detail,
                kind: symbol_kind(s.kind),
                tags: None,
                deprecated: None,
                range: snap.lsp_range(file, s.range)?,
                selection_range: snap.lsp_range(file, s.selection_range)?,
                children: Some(
                    s.children
                        .into_iter()
                        .filter_map(|c| convert(snap, file, c))
                        .collect(),
                ),
            })
        }
        let symbols = snap
            .analysis
            .document_symbols(file)
            .into_iter()
            .filter_map(|s| convert(&snap, file, s))
            .collect();
        Ok(Some(DocumentSymbolResponse::Nested(symbols)))
    }

    pub(crate) async fn workspace_symbol_impl(
        &self,
        params: lsp::WorkspaceSymbolParams,
    ) -> Result<Option<WorkspaceSymbolResponse>> {
        // Every workspace folder, plus the groups of open documents outside them.
        let groups: Vec<Group> = {
            let (folders, docs) = self.folders_and_docs();
            let mut g: Vec<Group> = folders.iter().cloned().map(Group::Folder).collect();
            for u in docs {
                let group = Group::of(&u, &folders);
                if !g.contains(&group) {
                    g.push(group);
                }
            }
            g
        };
        let mut out: Vec<WorkspaceSymbol> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for group in groups {
            let Some(snap) = self.snapshot_of_group(group).await else {
                continue;
            };
            for s in snap.analysis.workspace_symbols(&params.query) {
                let Some(location) = snap.lsp_location(s.location.file, s.location.range) else {
                    continue;
                };
                // The standard library shows up in every folder: list it once.
                if !seen.insert((location.uri.clone(), location.range.start, s.name.clone())) {
                    continue;
                }
                out.push(WorkspaceSymbol {
                    name: s.name,
                    kind: symbol_kind(s.kind),
                    tags: None,
                    container_name: s.container,
                    location: OneOf::Left(location),
                    data: None,
                });
            }
        }
        Ok(Some(WorkspaceSymbolResponse::Nested(out)))
    }
}
