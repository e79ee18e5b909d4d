//! Semantic tokens and folding ranges.

use super::{Analysis, SymbolKind};
use crate::ast::ItemKind;
use crate::check::Resolution;
use crate::lexer::{Extras, Token};
use crate::semconv;
use crate::span::FileId;
use logos::Logos;
use std::ops::Range;

/// What a highlighted token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A keyword (also `span`, trigger kinds).
    Keyword,
    /// A comment.
    Comment,
    /// Text of a string literal.
    String,
    /// An integer or float.
    Number,
    /// A duration literal (`250ms`).
    Duration,
    /// An operator.
    Operator,
    /// A span attribute (`http.route`).
    Attribute,
    /// A built-in field (`duration`, `status`, `count`, response and trace fields).
    Field,
    /// A `let` (module, test or step level).
    Variable,
    /// A capture (`create.order_id`'s last segment, or its definition).
    Capture,
    /// A matcher parameter.
    Parameter,
    /// A matcher.
    Matcher,
    /// A built-in function.
    Function,
    /// An import namespace.
    Namespace,
    /// A test name.
    Test,
    /// A step name.
    Step,
    /// A service name.
    Service,
    /// A constant: span kind or status, HTTP method.
    EnumMember,
}

impl TokenKind {
    /// Every kind, in legend order ([`TokenKind::index`]).
    pub const ALL: &'static [TokenKind] = &[
        TokenKind::Keyword,
        TokenKind::Comment,
        TokenKind::String,
        TokenKind::Number,
        TokenKind::Duration,
        TokenKind::Operator,
        TokenKind::Attribute,
        TokenKind::Field,
        TokenKind::Variable,
        TokenKind::Capture,
        TokenKind::Parameter,
        TokenKind::Matcher,
        TokenKind::Function,
        TokenKind::Namespace,
        TokenKind::Test,
        TokenKind::Step,
        TokenKind::Service,
        TokenKind::EnumMember,
    ];

    /// Position in [`TokenKind::ALL`] (a legend index).
    pub fn index(self) -> u32 {
        TokenKind::ALL.iter().position(|k| *k == self).unwrap_or(0) as u32
    }

    /// The closest standard LSP semantic token type, for a server whose legend uses only
    /// standard names (attributes are `property`, fields `property` + `defaultLibrary`,
    /// matchers `macro`, durations `number`, tests `class`, steps `method`).
    pub fn lsp_type(self) -> &'static str {
        match self {
            TokenKind::Keyword => "keyword",
            TokenKind::Comment => "comment",
            TokenKind::String => "string",
            TokenKind::Number | TokenKind::Duration => "number",
            TokenKind::Operator => "operator",
            TokenKind::Attribute | TokenKind::Field => "property",
            TokenKind::Variable | TokenKind::Capture => "variable",
            TokenKind::Parameter => "parameter",
            TokenKind::Matcher => "macro",
            TokenKind::Function => "function",
            TokenKind::Namespace => "namespace",
            TokenKind::Test => "class",
            TokenKind::Step => "method",
            TokenKind::Service => "struct",
            TokenKind::EnumMember => "enumMember",
        }
    }
}

/// Modifier bits of [`SemanticToken::modifiers`] (names as in LSP).
pub mod modifiers {
    /// The defining occurrence (`declaration`).
    pub const DECLARATION: u32 = 1;
    /// A deprecated attribute (`deprecated`).
    pub const DEPRECATED: u32 = 2;
    /// Built into the language or from the standard library (`defaultLibrary`).
    pub const DEFAULT_LIBRARY: u32 = 4;
    /// A `##` doc comment (`documentation`).
    pub const DOCUMENTATION: u32 = 8;
    /// A capture: a value fixed once its step ran (`readonly`).
    pub const READONLY: u32 = 16;
    /// The LSP names of the bits, lowest first.
    pub const NAMES: &[&str] = &[
        "declaration",
        "deprecated",
        "defaultLibrary",
        "documentation",
        "readonly",
    ];
}

/// One highlighted range. Tokens never span lines (multi-line strings are split) and come
/// sorted, without overlaps.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SemanticToken {
    /// Byte range.
    pub range: Range<usize>,
    /// What it is.
    pub kind: TokenKind,
    /// [`modifiers`] bits.
    pub modifiers: u32,
}

/// What a folding range folds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FoldKind {
    /// A block, bracket or multi-line string.
    Region,
    /// A run of comment lines.
    Comment,
    /// A run of imports.
    Imports,
}

/// A foldable byte range (it spans at least two lines).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Fold {
    /// From the opening to the closing character (inclusive of both).
    pub range: Range<usize>,
    /// What it is.
    pub kind: FoldKind,
}

fn keyword_like(t: &Token<'_>) -> bool {
    t.symbol()
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
}

impl Analysis {
    /// Semantic tokens of a file, sorted and split at line ends.
    pub fn semantic_tokens(&self, file: FileId) -> Vec<SemanticToken> {
        let text = self.file_text(file);
        let mut out = Vec::new();
        let std = self.is_std(file);
        self.tokens_in(file, text, 0, text.len(), std, &mut out, 0);
        out.sort_by_key(|t| (t.range.start, t.range.end));
        out.dedup_by(|b, a| b.range.start < a.range.end);
        // Split at line ends.
        let mut split = Vec::with_capacity(out.len());
        for t in out {
            let mut start = t.range.start;
            let piece = &text[t.range.clone()];
            for (i, _) in piece.match_indices('\n') {
                let end = t.range.start + i;
                if end > start {
                    split.push(SemanticToken {
                        range: start..end,
                        ..t
                    });
                }
                start = end + 1;
            }
            if t.range.end > start {
                split.push(SemanticToken {
                    range: start..t.range.end,
                    ..t
                });
            }
        }
        split
    }

    #[allow(clippy::too_many_arguments)]
    fn tokens_in(
        &self,
        file: FileId,
        text: &str,
        from: usize,
        to: usize,
        std: bool,
        out: &mut Vec<SemanticToken>,
        depth: usize,
    ) {
        let Some(src) = text.get(from..to) else {
            return;
        };
        let mut lex = Token::lexer_with_extras(src, Extras::default());
        let mut prev: Option<Token<'_>> = None;
        let mut prev2: Option<Token<'_>> = None;
        let push = |out: &mut Vec<SemanticToken>, range: Range<usize>, kind, modifiers| {
            if !range.is_empty() {
                out.push(SemanticToken {
                    range,
                    kind,
                    modifiers,
                });
            }
        };
        while let Some(res) = lex.next() {
            let r = lex.span();
            let range = from + r.start..from + r.end;
            let Ok(tok) = res else { continue };
            match &tok {
                Token::Newline => {}
                Token::Comment(c) => {
                    let doc = c.starts_with("##");
                    push(
                        out,
                        range.clone(),
                        TokenKind::Comment,
                        if doc { modifiers::DOCUMENTATION } else { 0 },
                    );
                }
                Token::Str(_) => self.string_tokens(file, text, range.clone(), std, out, depth),
                Token::Int(_) | Token::Float(_) => push(out, range.clone(), TokenKind::Number, 0),
                Token::Duration(_) => push(out, range.clone(), TokenKind::Duration, 0),
                Token::Ident(_) | Token::Dotted(_) => {
                    let name = &text[range.clone()];
                    let before = out.len();
                    self.name_tokens(file, range.clone(), std, out);
                    if out.len() == before {
                        let kind = match (&prev, &prev2) {
                            _ if name == "span" => Some(TokenKind::Keyword),
                            (Some(Token::Trigger), _) => Some(TokenKind::Keyword),
                            (Some(Token::Ident("http")), Some(Token::Trigger)) => {
                                Some(TokenKind::EnumMember)
                            }
                            _ => None,
                        };
                        if let Some(k) = kind {
                            push(out, range.clone(), k, 0);
                        }
                    }
                }
                t if keyword_like(t) => push(out, range.clone(), TokenKind::Keyword, 0),
                Token::LParen
                | Token::RParen
                | Token::LBracket
                | Token::RBracket
                | Token::LBrace
                | Token::RBrace
                | Token::Comma
                | Token::Semi
                | Token::Colon
                | Token::TooDeep => {}
                _ => push(out, range.clone(), TokenKind::Operator, 0),
            }
            if !matches!(tok, Token::Newline | Token::Comment(_)) {
                prev2 = prev.take();
                prev = Some(tok);
            }
        }
    }

    /// The parts of a string literal outside `${…}`, and the tokens inside.
    fn string_tokens(
        &self,
        file: FileId,
        text: &str,
        range: Range<usize>,
        std: bool,
        out: &mut Vec<SemanticToken>,
        depth: usize,
    ) {
        let lit = &text[range.clone()];
        let mut start = 0;
        if !lit.starts_with("r\"") && depth < crate::parser::MAX_INTERPOLATION_NESTING {
            let b = lit.as_bytes();
            let mut i = 0;
            while i + 1 < b.len() {
                match b[i] {
                    b'\\' => i += 2,
                    b'$' if b[i + 1] == b'{' => {
                        let inner = i + 2;
                        let close = crate::lexer::interpolation_end(lit, inner)
                            .unwrap_or(b.len())
                            .max(inner);
                        if i > start {
                            out.push(SemanticToken {
                                range: range.start + start..range.start + i,
                                kind: TokenKind::String,
                                modifiers: 0,
                            });
                        }
                        let inner_end = if close > inner && b.get(close - 1) == Some(&b'}') {
                            close - 1
                        } else {
                            close
                        };
                        self.tokens_in(
                            file,
                            text,
                            range.start + inner,
                            range.start + inner_end,
                            std,
                            out,
                            depth + 1,
                        );
                        start = close;
                        i = close;
                    }
                    _ => i += 1,
                }
            }
        }
        if start < lit.len() {
            out.push(SemanticToken {
                range: range.start + start..range.end,
                kind: TokenKind::String,
                modifiers: 0,
            });
        }
    }

    /// Tokens for the resolved names and definitions inside an identifier token.
    fn name_tokens(
        &self,
        file: FileId,
        range: Range<usize>,
        std: bool,
        out: &mut Vec<SemanticToken>,
    ) {
        let lib = if std { modifiers::DEFAULT_LIBRARY } else { 0 };
        let (s, e) = (range.start as u32, range.end as u32);
        let first = self
            .refs
            .partition_point(|(r, _)| (r.span.file, r.span.start) < (file, s));
        for (r, d) in self.refs[first..]
            .iter()
            .take_while(|(r, _)| r.span.file == file && r.span.start < e)
        {
            if r.span.end > e {
                continue;
            }
            let (kind, mods) = match &r.resolution {
                _ if *d != usize::MAX => {
                    let def = &self.defs[*d];
                    let from_std = self.is_std(def.span.file);
                    let (k, m) = def_kind(def.kind);
                    (
                        k,
                        m | if from_std {
                            modifiers::DEFAULT_LIBRARY
                        } else {
                            0
                        },
                    )
                }
                Resolution::Function(_) => (TokenKind::Function, modifiers::DEFAULT_LIBRARY),
                Resolution::SpanField(_)
                | Resolution::ResponseField(_)
                | Resolution::TraceField(_)
                | Resolution::Aggregate => (TokenKind::Field, modifiers::DEFAULT_LIBRARY),
                Resolution::Attribute => {
                    let name = self.c.sources.slice(r.span);
                    let deprecated = semconv::registry()
                        .lookup(name)
                        .is_some_and(|a| a.deprecated.is_some());
                    (
                        TokenKind::Attribute,
                        if deprecated { modifiers::DEPRECATED } else { 0 },
                    )
                }
                Resolution::Constant => (TokenKind::EnumMember, modifiers::DEFAULT_LIBRARY),
                _ => continue,
            };
            out.push(SemanticToken {
                range: r.span.range(),
                kind,
                modifiers: mods,
            });
        }
        // Definitions are single names: the token is the name.
        let span = crate::span::Span::new(file, range.start, range.end);
        if let Some(def) = self.def_at.get(&span).map(|&d| &self.defs[d])
            && !def.implicit
        {
            let (k, m) = def_kind(def.kind);
            out.push(SemanticToken {
                range: def.span.range(),
                kind: k,
                modifiers: m | modifiers::DECLARATION | lib,
            });
        }
    }

    /// Foldable ranges: blocks and brackets over several lines, multi-line strings, runs of
    /// comment lines, runs of imports.
    pub fn folding_ranges(&self, file: FileId) -> Vec<Fold> {
        let text = self.file_text(file);
        let mut out = Vec::new();
        let multi = |r: &Range<usize>| text[r.clone()].contains('\n');
        let mut lex = Token::lexer_with_extras(text, Extras::default());
        let mut open: Vec<usize> = Vec::new();
        let mut comment_run: Option<(Range<usize>, usize)> = None; // (range, lines)
        let mut last_line_end_comment = false;
        while let Some(res) = lex.next() {
            let r = lex.span();
            let Ok(tok) = res else { continue };
            match tok {
                Token::LBrace | Token::LBracket | Token::LParen => open.push(r.start),
                Token::RBrace | Token::RBracket | Token::RParen => {
                    if let Some(st) = open.pop() {
                        let range = st..r.end;
                        if multi(&range) {
                            out.push(Fold {
                                range,
                                kind: FoldKind::Region,
                            });
                        }
                    }
                }
                Token::Str(_) if multi(&r) => out.push(Fold {
                    range: r.clone(),
                    kind: FoldKind::Region,
                }),
                Token::Comment(_) => {
                    let own_line = text[..r.start]
                        .rsplit('\n')
                        .next()
                        .is_some_and(|l| l.trim().is_empty());
                    match &mut comment_run {
                        Some((run, lines))
                            if own_line
                                && last_line_end_comment
                                && text[run.end..r.start].matches('\n').count() == 1 =>
                        {
                            run.end = r.end;
                            *lines += 1;
                        }
                        _ => {
                            if let Some((run, lines)) = comment_run.take()
                                && lines > 1
                            {
                                out.push(Fold {
                                    range: run,
                                    kind: FoldKind::Comment,
                                });
                            }
                            comment_run = own_line.then(|| (r.clone(), 1));
                        }
                    }
                    last_line_end_comment = own_line;
                    continue;
                }
                Token::Newline => continue,
                _ => {}
            }
            last_line_end_comment = false;
        }
        if let Some((run, lines)) = comment_run
            && lines > 1
        {
            out.push(Fold {
                range: run,
                kind: FoldKind::Comment,
            });
        }
        // Runs of imports.
        if let Some(m) = self.module_of.get(&file).map(|&m| self.c.program.module(m)) {
            let mut run: Option<Range<usize>> = None;
            for item in &m.ast.items {
                if matches!(item.kind, ItemKind::Import(_)) {
                    run = Some(match run {
                        Some(r) => r.start..item.span.end as usize,
                        None => item.span.range(),
                    });
                } else if let Some(r) = run.take()
                    && multi(&r)
                {
                    out.push(Fold {
                        range: r,
                        kind: FoldKind::Imports,
                    });
                }
            }
            if let Some(r) = run
                && multi(&r)
            {
                out.push(Fold {
                    range: r,
                    kind: FoldKind::Imports,
                });
            }
        }
        out.sort_by_key(|f| (f.range.start, f.range.end));
        out
    }
}

fn def_kind(k: SymbolKind) -> (TokenKind, u32) {
    match k {
        SymbolKind::Namespace => (TokenKind::Namespace, 0),
        SymbolKind::Let | SymbolKind::Variable => (TokenKind::Variable, 0),
        SymbolKind::Matcher => (TokenKind::Matcher, 0),
        SymbolKind::Parameter => (TokenKind::Parameter, 0),
        SymbolKind::Service => (TokenKind::Service, 0),
        SymbolKind::Test => (TokenKind::Test, 0),
        SymbolKind::Step => (TokenKind::Step, 0),
        SymbolKind::Capture => (TokenKind::Capture, modifiers::READONLY),
    }
}
