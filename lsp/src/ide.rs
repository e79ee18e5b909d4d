//! The editor queries of `tbt_compiler::ide` behind LSP requests: each handler finds the
//! compilation of the document, converts the LSP position to a byte offset of the text that
//! compilation saw, asks the analysis, and converts byte ranges back (UTF-16).

use crate::legend::token_types;
use crate::server::Backend;
use crate::workspace::{Group, Snapshot};
use std::collections::HashMap;
use std::sync::Arc;
use tbt_compiler::FileId;
use tbt_compiler::ide::{self, Analysis};
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::{
    self as lsp, CompletionItemKind, CompletionItemTag, CompletionResponse, CompletionTextEdit,
    DocumentSymbolResponse, Documentation, FoldingRange, FoldingRangeKind, GotoDefinitionResponse,
    HoverContents, LocationLink, MarkupContent, MarkupKind, OneOf, ParameterInformation,
    ParameterLabel, PrepareRenameResponse, SemanticToken, SemanticTokens, SemanticTokensResult,
    SignatureInformation, SymbolKind, TextEdit, Uri, WorkspaceEdit, WorkspaceSymbol,
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
    pub fn lsp_location(
        &self,
        file: FileId,
        range: std::ops::Range<usize>,
    ) -> Option<lsp::Location> {
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

fn completion_kind(k: ide::CompletionKind) -> CompletionItemKind {
    match k {
        ide::CompletionKind::Keyword => CompletionItemKind::KEYWORD,
        ide::CompletionKind::Let => CompletionItemKind::CONSTANT,
        ide::CompletionKind::Variable => CompletionItemKind::VARIABLE,
        ide::CompletionKind::Capture => CompletionItemKind::FIELD,
        ide::CompletionKind::Matcher => CompletionItemKind::FUNCTION,
        ide::CompletionKind::Function => CompletionItemKind::FUNCTION,
        ide::CompletionKind::Field => CompletionItemKind::FIELD,
        ide::CompletionKind::Attribute => CompletionItemKind::PROPERTY,
        ide::CompletionKind::Value => CompletionItemKind::ENUM_MEMBER,
        ide::CompletionKind::Module => CompletionItemKind::MODULE,
        ide::CompletionKind::Test => CompletionItemKind::CLASS,
        ide::CompletionKind::Step => CompletionItemKind::METHOD,
        ide::CompletionKind::Option => CompletionItemKind::PROPERTY,
    }
}

fn markdown(value: String) -> MarkupContent {
    MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    }
}

/// The completion response for `items` of `file`. `current` is the document's text and line
/// index when the items come from an analysis of an older text: their ranges are offsets of
/// `current`, and the list is marked incomplete so the editor asks again as the user types.
fn completion_list(
    snap: &Snapshot,
    file: FileId,
    items: Vec<ide::CompletionItem>,
    current: Option<(&str, &crate::position::LineIndex)>,
) -> CompletionResponse {
    let items = items
        .into_iter()
        .filter_map(|c| {
            let range = match current {
                Some((text, lines)) => lines.range(text, c.range.start, c.range.end),
                None => snap.lsp_range(file, c.range)?,
            };
            Some(lsp::CompletionItem {
                label: c.label,
                kind: Some(completion_kind(c.kind)),
                detail: c.detail,
                documentation: c
                    .documentation
                    .map(|d| Documentation::MarkupContent(markdown(d))),
                tags: c.deprecated.then(|| vec![CompletionItemTag::DEPRECATED]),
                text_edit: Some(CompletionTextEdit::Edit(TextEdit {
                    range,
                    new_text: c.insert_text,
                })),
                ..lsp::CompletionItem::default()
            })
        })
        .collect();
    if current.is_some() {
        CompletionResponse::List(lsp::CompletionList {
            is_incomplete: true,
            items,
        })
    } else {
        CompletionResponse::Array(items)
    }
}

/// The offset in `old` of the place at `offset` in `new`, where `new` is `old` edited in one
/// region (the part both share at the start and at the end): unchanged before the region,
/// shifted after it, and the region's start inside it.
pub(crate) fn offset_before_edit(old: &str, new: &str, offset: usize) -> usize {
    let (a, b) = (old.as_bytes(), new.as_bytes());
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let mapped = if offset <= prefix {
        offset
    } else if offset >= b.len() - suffix {
        offset - (b.len() - suffix) + (a.len() - suffix)
    } else {
        prefix
    };
    old.floor_char_boundary(mapped)
}

/// UTF-16 length of a text.
fn utf16_len(s: &str) -> u32 {
    s.chars().map(char::len_utf16).sum::<usize>() as u32
}

fn request_failed(message: String) -> Error {
    Error {
        code: ErrorCode::ServerError(-32803),
        message: message.into(),
        data: None,
    }
}

impl Backend {
    /// The compilation of the document `uri` and its file in it.
    pub(crate) async fn compiled(&self, uri: &Uri) -> Option<(Arc<Snapshot>, FileId)> {
        let snap = self.snapshot_for(uri).await?;
        let file = snap.file_of(uri)?;
        Some((snap, file))
    }

    /// The compilation of `uri` and the offset of `pos` in it.
    pub(crate) async fn at(&self, uri: &Uri, pos: lsp::Position) -> Option<At> {
        let (snap, file) = self.compiled(uri).await?;
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
        let refs = at
            .analysis()
            .references(at.file, at.offset, params.context.include_declaration);
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
        let Some((snap, file)) = self.compiled(uri).await else {
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

    pub(crate) async fn completion_impl(
        &self,
        params: lsp::CompletionParams,
    ) -> Result<Option<CompletionResponse>> {
        let p = params.text_document_position;
        let uri = &p.text_document.uri;
        let (snap, fresh) = self.snapshot_for_completion(uri).await;
        let Some(snap) = snap else {
            return Ok(None);
        };
        let Some(file) = snap.file_of(uri) else {
            return Ok(None);
        };
        let doc = self.document(uri).filter(|_| !fresh);
        let Some(doc) = doc else {
            let Some(offset) = snap.offset(file, p.position) else {
                return Ok(None);
            };
            let items = snap.analysis.completions(file, offset);
            return Ok(Some(completion_list(&snap, file, items, None)));
        };
        // The text changed since this analysis: what the cursor is in comes from the current
        // text, the names in scope from the analysis at the same place in the text it saw.
        let offset = doc.index.offset(&doc.text, p.position);
        let scope = offset_before_edit(snap.analysis.file_text(file), &doc.text, offset);
        let items = snap.analysis.completions_in(file, &doc.text, offset, scope);
        let current = Some((doc.text.as_str(), &*doc.index));
        Ok(Some(completion_list(&snap, file, items, current)))
    }

    pub(crate) async fn hover_impl(&self, params: lsp::HoverParams) -> Result<Option<lsp::Hover>> {
        let p = params.text_document_position_params;
        let Some(at) = self.at(&p.text_document.uri, p.position).await else {
            return Ok(None);
        };
        let Some(h) = at.analysis().hover(at.file, at.offset) else {
            return Ok(None);
        };
        Ok(Some(lsp::Hover {
            contents: HoverContents::Markup(markdown(h.markdown)),
            range: at.snap.lsp_range(at.file, h.range),
        }))
    }

    pub(crate) async fn signature_help_impl(
        &self,
        params: lsp::SignatureHelpParams,
    ) -> Result<Option<lsp::SignatureHelp>> {
        let p = params.text_document_position_params;
        let Some(at) = self.at(&p.text_document.uri, p.position).await else {
            return Ok(None);
        };
        let Some(sig) = at.analysis().signature_help(at.file, at.offset) else {
            return Ok(None);
        };
        let label = sig.label;
        // Parameter ranges are byte ranges of the label; LSP wants UTF-16 offsets.
        let units = |b: usize| label.get(..b.min(label.len())).map_or(0, utf16_len);
        let parameters = sig
            .parameters
            .iter()
            .map(|p| ParameterInformation {
                label: ParameterLabel::LabelOffsets([units(p.range.start), units(p.range.end)]),
                documentation: None,
            })
            .collect();
        Ok(Some(lsp::SignatureHelp {
            signatures: vec![SignatureInformation {
                documentation: sig
                    .documentation
                    .map(|d| Documentation::MarkupContent(markdown(d))),
                parameters: Some(parameters),
                active_parameter: Some(sig.active_parameter as u32),
                label,
            }],
            active_signature: Some(0),
            active_parameter: Some(sig.active_parameter as u32),
        }))
    }

    pub(crate) async fn semantic_tokens_impl(
        &self,
        params: lsp::SemanticTokensParams,
    ) -> Result<Option<SemanticTokensResult>> {
        let uri = &params.text_document.uri;
        let Some((snap, file)) = self.compiled(uri).await else {
            return Ok(None);
        };
        let Some(lines) = snap.lines.get(file.0 as usize) else {
            return Ok(None);
        };
        let text = snap.analysis.file_text(file);
        let types = token_types();
        let mut data = Vec::new();
        let (mut prev_line, mut prev_start) = (0u32, 0u32);
        for t in snap.analysis.semantic_tokens(file) {
            let Some(slice) = text.get(t.range.clone()) else {
                continue;
            };
            let start = lines.position(text, t.range.start);
            let length = utf16_len(slice);
            if length == 0 {
                continue;
            }
            let token_type = types
                .iter()
                .position(|n| *n == t.kind.lsp_type())
                .unwrap_or(0) as u32;
            let delta_line = start.line - prev_line;
            let delta_start = if delta_line == 0 {
                start.character - prev_start
            } else {
                start.character
            };
            data.push(SemanticToken {
                delta_line,
                delta_start,
                length,
                token_type,
                token_modifiers_bitset: t.modifiers,
            });
            prev_line = start.line;
            prev_start = start.character;
        }
        Ok(Some(SemanticTokensResult::Tokens(SemanticTokens {
            result_id: None,
            data,
        })))
    }

    pub(crate) async fn folding_range_impl(
        &self,
        params: lsp::FoldingRangeParams,
    ) -> Result<Option<Vec<FoldingRange>>> {
        let uri = &params.text_document.uri;
        let Some((snap, file)) = self.compiled(uri).await else {
            return Ok(None);
        };
        let Some(lines) = snap.lines.get(file.0 as usize) else {
            return Ok(None);
        };
        let text = snap.analysis.file_text(file);
        let mut out = Vec::new();
        for f in snap.analysis.folding_ranges(file) {
            let start = lines.position(text, f.range.start).line;
            let last = f.range.end.saturating_sub(1).max(f.range.start);
            let end_pos = lines.position(text, last);
            // A closing bracket alone on its line stays visible: fold up to the line before.
            let closing_alone = f.kind == ide::FoldKind::Region
                && text[..last.min(text.len())]
                    .rsplit(['\n', '\r'])
                    .next()
                    .is_some_and(|before| before.trim().is_empty())
                && text[last.min(text.len())..].starts_with(['}', ']', ')']);
            let end = if closing_alone {
                end_pos.line.saturating_sub(1)
            } else {
                end_pos.line
            };
            if end <= start {
                continue;
            }
            out.push(FoldingRange {
                start_line: start,
                start_character: None,
                end_line: end,
                end_character: None,
                kind: Some(match f.kind {
                    ide::FoldKind::Region => FoldingRangeKind::Region,
                    ide::FoldKind::Comment => FoldingRangeKind::Comment,
                    ide::FoldKind::Imports => FoldingRangeKind::Imports,
                }),
                collapsed_text: None,
            });
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::offset_before_edit;

    #[test]
    fn offsets_map_across_one_edited_region() {
        let old = "let a = 1\nlet b = 2\n";
        let new = "let a = 1\n# é\nlet b = 2\n";
        // Before the edit: unchanged.
        assert_eq!(offset_before_edit(old, new, 4), 4);
        // After it: shifted back by the inserted length.
        let b_new = new.find("let b").unwrap();
        assert_eq!(
            offset_before_edit(old, new, b_new),
            old.find("let b").unwrap()
        );
        // Inside it: where it starts in the old text.
        let inside = new.find('é').unwrap();
        assert_eq!(offset_before_edit(old, new, inside), 10);
        // Deletions, and offsets past the end, stay on char boundaries inside the old text.
        assert_eq!(offset_before_edit(new, old, old.len()), new.len());
        assert_eq!(offset_before_edit("é", "", 0), 0);
        assert_eq!(offset_before_edit("aé", "aéb", 3), 3);
    }
}
