//! Source text → syntax tree, with every syntax error reported and a tree returned regardless.
//!
//! The grammar lives in `grammar.lalrpop`; this module holds its entry points, the semantic
//! actions that need more than a constructor (string decoding and interpolation, dotted names,
//! error messages) and the post-processing that the grammar cannot do: attaching `##` doc comments
//! to items and sorting diagnostics. It does not resolve names or check types.

use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic};
use crate::lexer::{self, LexError, Lexer, StrKind, StrTok, Token};
use crate::span::{FileId, Span};
use lalrpop_util::{ErrorRecovery, ParseError};

lalrpop_util::lalrpop_mod!(
    #[allow(
        clippy::all,
        clippy::pedantic,
        clippy::unwrap_used,
        missing_docs,
        unused,
        unused_qualifications
    )]
    grammar,
    // Keyed by checkout, see `build.rs`.
    concat!(env!("CARGO_MANIFEST_DIR"), "/grammar.rs")
);

/// How many string interpolations may nest inside each other (`"${ "${ … }" }"`). Each level
/// parses recursively, so the limit keeps the call stack small on any thread.
pub const MAX_INTERPOLATION_NESTING: usize = 16;

/// The result of parsing one file.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The tree, with `Error` nodes where input was skipped.
    pub file: File,
    /// Every problem found, sorted by position, without duplicates.
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses one file. Never fails and never panics: syntax errors become diagnostics and `Error`
/// nodes.
///
/// A large file is cut at item boundaries and its pieces are parsed on several threads (see
/// [`parse_in_pieces`]); the result is the same as parsing it in one go.
pub fn parse(file: FileId, src: &str) -> Parsed {
    let pieces = src.len() / PIECE_MIN_BYTES;
    parse_in_pieces(file, src, pieces.min(crate::cores()))
}

/// Parses one file on the current thread only.
pub fn parse_sequential(file: FileId, src: &str) -> Parsed {
    parse_in_pieces(file, src, 1)
}

/// The smallest piece worth a thread of its own: a thread costs tens of microseconds, a
/// kilobyte of source about as much to parse.
const PIECE_MIN_BYTES: usize = 32 * 1024;

/// Parses `src` cut into at most `pieces` pieces, each on a thread of its own.
///
/// A piece starts at a line holding a top-level keyword (`test`, `matcher`, `let`, …) after an
/// empty line. Parsing a piece alone gives the same items as parsing it after the text before it
/// when the piece before it ended cleanly: its lexer has no bracket, operator or string open, and
/// its parser finished its last item with nothing but separators after it and no error at or
/// after that item's end. The first piece that does not end cleanly is parsed again together
/// with everything after it, so the result never depends on the cut (a property test compares
/// it with the one-piece parse on random edits).
#[doc(hidden)]
pub fn parse_in_pieces(file: FileId, src: &str, pieces: usize) -> Parsed {
    let mut nul = Ctx::new(file);
    report_nul_bytes(&mut nul, src.as_bytes(), 0);
    // A byte-order mark is not content.
    let start = if src.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let bounds = cut_points(src, start, pieces);
    let ranges: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    let mut done: Vec<Piece> = if ranges.len() == 1 {
        vec![parse_piece(file, src, start, src.len())]
    } else {
        std::thread::scope(|s| {
            // A thread that cannot be started stops the spawning; its pieces are parsed below.
            let others: Vec<_> = ranges[1..]
                .iter()
                .map_while(|&(a, b)| {
                    std::thread::Builder::new()
                        .name("tbt-parse".into())
                        .spawn_scoped(s, move || parse_piece(file, src, a, b))
                        .ok()
                })
                .collect();
            let mut done = vec![parse_piece(file, src, ranges[0].0, ranges[0].1)];
            // A piece whose thread panicked (a parser bug) is parsed again below, where the
            // panic surfaces on this thread.
            done.extend(others.into_iter().map_while(|h| h.join().ok()));
            done
        })
    };
    // Keep the pieces up to the first one that does not end cleanly; parse the rest in one go.
    let keep = done
        .iter()
        .zip(&ranges)
        .take(ranges.len() - 1)
        .take_while(|(p, r)| p.ends_cleanly(r.1))
        .count();
    if keep + 1 < ranges.len() || done.len() < ranges.len() {
        done.truncate(keep);
        done.push(parse_piece(file, src, ranges[keep].0, src.len()));
    }
    // The parser gave up on some piece (recovery impossible): the one-piece parse gives up on
    // the whole file, so do the same.
    if done.len() > 1 && done.iter().any(|p| p.failed) {
        done = vec![parse_piece(file, src, start, src.len())];
    }
    let mut diagnostics = nul.diagnostics;
    let mut items = Vec::new();
    let mut comments = Vec::new();
    let mut lexer_diagnostics = Vec::new();
    for p in done {
        if !p.failed {
            items.extend(p.items);
        }
        diagnostics.extend(p.diagnostics);
        comments.extend(p.comments);
        lexer_diagnostics.extend(p.lexer_diagnostics);
    }
    diagnostics.extend(lexer_diagnostics);
    let mut parsed = File { items, comments };
    attach_docs(&mut parsed, src);
    Parsed {
        file: parsed,
        diagnostics: finish(diagnostics),
    }
}

/// One piece of a file, parsed alone.
struct Piece {
    items: Vec<Item>,
    /// The parser gave up (its error is among `diagnostics`).
    failed: bool,
    diagnostics: Vec<Diagnostic>,
    lexer_diagnostics: Vec<Diagnostic>,
    comments: Vec<Comment>,
    /// The lexer ended as it starts: nothing open, the last token a line end (or none).
    lexer_at_rest: bool,
    /// The end of the last token that is not a separator (the piece's start when none).
    last_token_end: usize,
}

impl Piece {
    /// Would the text after this piece (which ends at `end`) parse the same alone as after it?
    fn ends_cleanly(&self, end: usize) -> bool {
        if self.failed || !self.lexer_at_rest {
            return false;
        }
        // An unterminated string or over-deep brackets: the lexer looks for their end past the
        // end of the piece when it lexes the whole file. Only invalid characters stay local.
        if self
            .lexer_diagnostics
            .iter()
            .any(|d| d.code != Code::InvalidToken)
        {
            return false;
        }
        let Some(last) = self.items.last() else {
            return self.diagnostics.is_empty() && self.lexer_diagnostics.is_empty();
        };
        let last_end = last.span.end as usize;
        // Errors at the end of the piece mean the parser wanted more.
        let early = |d: &Diagnostic| (d.span().end as usize) < last_end;
        !matches!(last.kind, ItemKind::Error)
            && last_end == self.last_token_end
            && last_end < end
            && self.diagnostics.iter().all(early)
            && self.lexer_diagnostics.iter().all(early)
    }
}

fn parse_piece(file: FileId, src: &str, start: usize, end: usize) -> Piece {
    let mut ctx = Ctx::new(file);
    let mut lexer = Lexer::new(file, &src[start..end], start);
    let result = grammar::FileParser::new().parse(&mut ctx, &mut lexer);
    let (items, failed) = match result {
        Ok(items) => (items, false),
        Err(e) => {
            ctx.parse_error(e);
            (Vec::new(), true)
        }
    };
    Piece {
        items,
        failed,
        diagnostics: ctx.diagnostics,
        lexer_diagnostics: lexer.take_diagnostics(),
        lexer_at_rest: lexer.at_rest(),
        comments: std::mem::take(&mut lexer.comments),
        last_token_end: lexer.last_token_end(),
    }
}

/// Where to cut `src[start..]` into at most `pieces` pieces of similar size: the piece bounds,
/// from `start` to `src.len()`. A cut is at the start of a line that begins with a top-level
/// keyword and follows an empty line.
fn cut_points(src: &str, start: usize, pieces: usize) -> Vec<usize> {
    let mut bounds = vec![start];
    let len = src.len() - start;
    for i in 1..pieces.max(1) {
        let target = start + len * i / pieces;
        let from = target.max(*bounds.last().unwrap_or(&start));
        let Some(cut) = next_cut(src, from) else {
            break;
        };
        bounds.push(cut);
    }
    bounds.push(src.len());
    bounds
}

/// The first cut point at or after `from`.
fn next_cut(src: &str, from: usize) -> Option<usize> {
    const KEYWORDS: [&str; 6] = [
        "test ", "matcher ", "let ", "secret ", "service ", "import ",
    ];
    let bytes = src.as_bytes();
    let mut at = from;
    loop {
        let cut = at + src.get(at..)?.find('\n')? + 1;
        let before = &bytes[..cut - 1];
        let after_empty_line = before.ends_with(b"\n") || before.ends_with(b"\n\r");
        if after_empty_line
            && KEYWORDS
                .iter()
                .any(|k| bytes[cut..].starts_with(k.as_bytes()))
        {
            return Some(cut);
        }
        at = cut;
    }
}

/// Parses bytes that may not be UTF-8. Returns the text the spans refer to (invalid sequences
/// replaced by U+FFFD) and the result; the first invalid byte is reported as TBT0007.
pub fn parse_bytes(file: FileId, bytes: &[u8]) -> (String, Parsed) {
    parse_bytes_with(file, bytes, parse)
}

/// [`parse_bytes`] on the current thread only (for callers that parse files in parallel).
pub fn parse_bytes_sequential(file: FileId, bytes: &[u8]) -> (String, Parsed) {
    parse_bytes_with(file, bytes, parse_sequential)
}

fn parse_bytes_with(
    file: FileId,
    bytes: &[u8],
    parse: fn(FileId, &str) -> Parsed,
) -> (String, Parsed) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), parse(file, text)),
        Err(e) => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let mut parsed = parse(file, &text);
            // The text is identical up to the first invalid sequence, which became one U+FFFD.
            let at = e.valid_up_to();
            let end = (at + char::REPLACEMENT_CHARACTER.len_utf8()).min(text.len());
            let span = Span::new(file, at, end);
            parsed.diagnostics.push(
                Diagnostic::new(
                    Code::InvalidSourceBytes,
                    span,
                    "the file is not valid UTF-8",
                )
                .with_label("first invalid byte")
                .with_note("invalid sequences were read as U+FFFD; save the file as UTF-8"),
            );
            parsed.diagnostics = finish(parsed.diagnostics);
            (text, parsed)
        }
    }
}

/// Parses one expression written at byte `offset` of `file` (for the language server and tests).
pub fn parse_expr(file: FileId, src: &str, offset: usize) -> (Expr, Vec<Diagnostic>) {
    let mut ctx = Ctx::new(file);
    report_nul_bytes(&mut ctx, src.as_bytes(), offset);
    let expr = ctx.parse_embedded(src, offset, 0, 0);
    (expr, finish(ctx.diagnostics))
}

fn report_nul_bytes(ctx: &mut Ctx, bytes: &[u8], base: usize) {
    if !bytes.contains(&0) {
        return;
    }
    let mut nuls = bytes.iter().enumerate().filter(|(_, b)| **b == 0);
    if let Some((first, _)) = nuls.next() {
        let more = nuls.count();
        let span = Span::new(ctx.file, base + first, base + first + 1);
        let mut d = Diagnostic::new(
            Code::InvalidSourceBytes,
            span,
            "the file contains NUL bytes",
        )
        .with_label("NUL byte");
        if more > 0 {
            d = d.with_note(format!(
                "and {more} more NUL byte{}",
                if more == 1 { "" } else { "s" }
            ));
        }
        ctx.diagnostics
            .push(d.with_note("NUL bytes are read as spaces"));
    }
}

fn finish(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by_key(|d| {
        let s = d.span();
        (s.start, s.end, d.code)
    });
    diagnostics.dedup();
    diagnostics
}

/// Fills [`Item::doc`] from the `##` lines directly above each item.
fn attach_docs(file: &mut File, src: &str) {
    let comments = &file.comments;
    for item in &mut file.items {
        let start = item.span.start;
        let mut idx = comments.partition_point(|c| c.span.end <= start);
        let mut next_start = line_start(src, start as usize);
        let mut lines = Vec::new();
        while idx > 0 {
            let c = &comments[idx - 1];
            let between = src.get(c.span.end as usize..next_start).unwrap_or("x");
            let own_line = src[line_start(src, c.span.start as usize)..c.span.start as usize]
                .trim_matches(|ch: char| ch.is_whitespace() || ch == '\u{feff}')
                .is_empty();
            if !c.doc || !own_line || between.trim() != "" || between.matches('\n').count() != 1 {
                break;
            }
            let text = &src[c.span.range()];
            let text = text.strip_prefix("##").unwrap_or(text);
            lines.push(text.strip_prefix(' ').unwrap_or(text).trim_end());
            next_start = line_start(src, c.span.start as usize);
            idx -= 1;
        }
        if !lines.is_empty() {
            lines.reverse();
            item.doc = Some(lines.join("\n"));
        }
    }
}

fn line_start(src: &str, offset: usize) -> usize {
    src.get(..offset)
        .and_then(|s| s.rfind('\n'))
        .map_or(0, |i| i + 1)
}

/// Moves boxed grammar symbols into a plain vector (see the note on boxing in the grammar).
pub(crate) fn unbox<T>(v: Vec<Box<T>>) -> Vec<T> {
    v.into_iter().map(|b| *b).collect()
}

/// State shared by the grammar's actions: where spans point and what went wrong.
pub(crate) struct Ctx {
    file: FileId,
    diagnostics: Vec<Diagnostic>,
    /// String interpolations being parsed around the current position.
    interpolations: usize,
}

type TokenError<'src> = ParseError<usize, Token<'src>, LexError>;

impl Ctx {
    fn new(file: FileId) -> Self {
        Ctx {
            file,
            diagnostics: Vec::new(),
            interpolations: 0,
        }
    }

    pub(crate) fn span(&self, l: usize, r: usize) -> Span {
        Span::new(self.file, l, r)
    }

    /// Splits `a.b.c` (starting at `start`) into segments with their own spans.
    pub(crate) fn item(&self, l: usize, r: usize, kind: ItemKind) -> Box<Item> {
        Box::new(Item {
            span: self.span(l, r),
            doc: None,
            kind,
        })
    }

    pub(crate) fn stmt(&self, l: usize, r: usize, kind: StmtKind) -> Box<Stmt> {
        Box::new(Stmt {
            span: self.span(l, r),
            kind,
        })
    }

    pub(crate) fn expect(&self, l: usize, r: usize, kind: ExpectKind) -> Box<Stmt> {
        self.stmt(l, r, StmtKind::Expect(Expect { kind }))
    }

    pub(crate) fn block_stmt(&self, l: usize, r: usize, kind: BlockStmtKind) -> Box<BlockStmt> {
        Box::new(BlockStmt {
            span: self.span(l, r),
            kind,
        })
    }

    pub(crate) fn path(&self, start: usize, text: &str) -> Path {
        let mut segments = Vec::with_capacity(text.bytes().filter(|b| *b == b'.').count() + 1);
        let mut at = start;
        for seg in text.split('.') {
            segments.push(Ident {
                name: seg.to_string(),
                span: self.span(at, at + seg.len()),
            });
            at += seg.len() + 1;
        }
        Path {
            segments,
            span: self.span(start, start + text.len()),
        }
    }

    pub(crate) fn binary(&self, op: BinaryOp, ol: usize, or: usize, lhs: Expr, rhs: Expr) -> Expr {
        Expr {
            span: lhs.span.to(rhs.span),
            kind: ExprKind::Binary {
                op,
                op_span: self.span(ol, or),
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
        }
    }

    pub(crate) fn unary(&self, op: UnaryOp, l: usize, expr: Expr) -> Expr {
        Expr {
            span: self.span(l, expr.span.end as usize),
            kind: ExprKind::Unary {
                op,
                expr: Box::new(expr),
            },
        }
    }

    /// `a = b` in an expression: TBT0008 with a fix, read as `a == b`.
    pub(crate) fn assign_as_eq(&mut self, ol: usize, or: usize, lhs: Expr, rhs: Expr) -> Expr {
        let op_span = self.span(ol, or);
        self.diagnostics.push(
            Diagnostic::new(Code::AssignInsteadOfEq, op_span, "`=` is not a comparison")
                .with_label("this assigns, it does not compare")
                .with_help("use `==` to compare")
                .with_fix("replace `=` with `==`", vec![(op_span, "==".into())]),
        );
        self.binary(BinaryOp::Eq, ol, or, lhs, rhs)
    }

    pub(crate) fn import(&mut self, path: StrLit, alias: Option<Ident>) -> ItemKind {
        let text = match path.as_plain() {
            Some(t) => t,
            None => {
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::SyntaxError,
                        path.span,
                        "an import path cannot contain interpolation",
                    )
                    .with_help("write the module path literally"),
                );
                String::new()
            }
        };
        ItemKind::Import(Import {
            path: text,
            path_span: path.span,
            alias,
        })
    }

    pub(crate) fn recover(&mut self, e: ErrorRecovery<usize, Token<'_>, LexError>) {
        self.parse_error(e.error);
    }

    pub(crate) fn parse_error(&mut self, e: TokenError<'_>) {
        let (span, found, expected) = match e {
            ParseError::UnrecognizedToken {
                token: (l, tok, r),
                expected,
            } => {
                // Already reported by the lexer as TBT0006.
                if tok == Token::TooDeep {
                    return;
                }
                (self.span(l, r), tok.describe(), expected)
            }
            ParseError::UnrecognizedEof { location, expected } => {
                let found = if self.interpolations > 0 {
                    "end of interpolation"
                } else {
                    "end of file"
                };
                (self.span(location, location), found.to_string(), expected)
            }
            ParseError::ExtraToken { token: (l, tok, r) } => {
                (self.span(l, r), tok.describe(), Vec::new())
            }
            ParseError::InvalidToken { location } => (
                self.span(location, location),
                "invalid token".into(),
                Vec::new(),
            ),
            ParseError::User { error } => match error {},
        };
        let message = match describe_expected(&expected) {
            Some(list) => format!("expected {list}, found {found}"),
            None => format!("unexpected {found}"),
        };
        self.diagnostics
            .push(Diagnostic::new(Code::SyntaxError, span, message).with_label("unexpected here"));
    }

    /// Decodes a string literal token that starts at `start`.
    pub(crate) fn string(&mut self, start: usize, tok: StrTok<'_>) -> StrLit {
        let span = self.span(start, start + tok.raw.len());
        let style = match tok.kind {
            StrKind::Normal => StrStyle::Normal,
            StrKind::Raw => StrStyle::Raw,
            StrKind::Multi => StrStyle::Multi,
        };
        let body = tok.body();
        let text = &tok.raw[body.clone()];
        // Unterminated literals were reported by the lexer; keep their text as it is.
        if !tok.terminated || tok.kind == StrKind::Raw {
            return StrLit {
                span,
                parts: vec![StrPart::Text(text.to_string())],
                style,
            };
        }
        // Most literals have neither escapes nor interpolation.
        if !text.contains(['\\', '$']) {
            return StrLit {
                span,
                parts: vec![StrPart::Text(text.to_string())],
                style,
            };
        }
        let base = start + body.start;
        let mut parts = Vec::new();
        let mut buf = String::new();
        let mut i = 0;
        let bytes = text.as_bytes();
        while i < bytes.len() {
            // Copy the run of plain text up to the next `\` or `${` in one go.
            let run_end = text[i..].find(['\\', '$']).map_or(text.len(), |k| i + k);
            if run_end > i {
                buf.push_str(&text[i..run_end]);
                i = run_end;
                continue;
            }
            if bytes[i] == b'$' {
                if bytes.get(i + 1) != Some(&b'{') {
                    buf.push('$');
                    i += 1;
                    continue;
                }
                // The lexer only lets balanced interpolations into a terminated literal; should
                // one be open anyway, it runs to the end of the literal.
                let (inner_end, close) = match lexer::interpolation_end(text, i + 2) {
                    Some(close) => (close - 1, close),
                    None => (text.len(), text.len()),
                };
                if !buf.is_empty() {
                    parts.push(StrPart::Text(std::mem::take(&mut buf)));
                }
                let inner = &text[i + 2..inner_end];
                let expr = self.interpolation(inner, base + i, base + i + 2, base + close, &tok);
                parts.push(StrPart::Interp(expr));
                i = close;
                continue;
            }
            // An escape.
            let esc_start = i;
            let Some(c) = text[i + 1..].chars().next() else {
                buf.push('\\');
                break;
            };
            i += 1 + c.len_utf8();
            match c {
                'n' => buf.push('\n'),
                't' => buf.push('\t'),
                'r' => buf.push('\r'),
                '\\' => buf.push('\\'),
                '"' => buf.push('"'),
                '$' => buf.push('$'),
                'u' => match unicode_escape(&text[i..]) {
                    Some((ch, len)) => {
                        buf.push(ch);
                        i += len;
                    }
                    None => {
                        let len = text[i..].find('}').filter(|k| *k < 10).map_or(0, |k| k + 1);
                        let esc = self.span(base + esc_start, base + i + len);
                        i += len;
                        self.diagnostics.push(
                            Diagnostic::new(Code::InvalidEscape, esc, "invalid unicode escape")
                                .with_label("expected `\\u{…}` with 1 to 6 hex digits of a valid code point"),
                        );
                    }
                },
                other => {
                    let esc = self.span(base + esc_start, base + i);
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::InvalidEscape,
                            esc,
                            format!("unknown escape `\\{}`", other.escape_debug()),
                        )
                        .with_label("unknown escape")
                        .with_help(
                            "the escapes are \\n \\t \\r \\\\ \\\" \\$ and \\u{…}; write `\\\\` for a backslash",
                        ),
                    );
                    buf.push(other);
                }
            }
        }
        if !buf.is_empty() || parts.is_empty() {
            parts.push(StrPart::Text(buf));
        }
        StrLit { span, parts, style }
    }

    /// Parses the expression of `${ … }`; `open` is the `$`, `inner` starts at `inner_start`.
    fn interpolation(
        &mut self,
        inner: &str,
        open: usize,
        inner_start: usize,
        close: usize,
        tok: &StrTok<'_>,
    ) -> Expr {
        let whole = self.span(open, close);
        let depth = tok.depth as usize;
        if depth + 1 > lexer::MAX_NESTING || self.interpolations >= MAX_INTERPOLATION_NESTING {
            let limit = if depth + 1 > lexer::MAX_NESTING {
                format!(
                    "brackets and interpolations nested more than {} levels deep",
                    lexer::MAX_NESTING
                )
            } else {
                format!("interpolations nested more than {MAX_INTERPOLATION_NESTING} levels deep")
            };
            self.diagnostics.push(
                Diagnostic::new(Code::NestingTooDeep, self.span(open, inner_start), limit)
                    .with_help("move the inner value into a `let`"),
            );
            return Expr {
                span: whole,
                kind: ExprKind::Error,
            };
        }
        if inner.trim().is_empty() {
            self.diagnostics.push(
                Diagnostic::new(Code::SyntaxError, whole, "empty interpolation")
                    .with_label("expected an expression inside `${…}`")
                    .with_help("write `\\${` for a literal `${`"),
            );
            return Expr {
                span: whole,
                kind: ExprKind::Error,
            };
        }
        // Fast path for the common `${name}` / `${step.capture}`: no parser needed.
        let trimmed = inner.trim();
        let lead = inner.len() - inner.trim_start().len();
        if is_plain_path(trimmed) {
            let path = self.path(inner_start + lead, trimmed);
            return Expr {
                span: path.span,
                kind: ExprKind::Path(path),
            };
        }
        self.interpolations += 1;
        let expr = self.parse_embedded(inner, inner_start, depth + 1, tok.ops + 1);
        self.interpolations -= 1;
        expr
    }

    /// Parses `text` (at byte `base`) as one expression, `depth` levels deep.
    fn parse_embedded(&mut self, text: &str, base: usize, depth: usize, ops: u32) -> Expr {
        let mut lexer = Lexer::embedded(self.file, text, base, depth, ops);
        let result = grammar::ExprParser::new().parse(self, &mut lexer);
        self.diagnostics.extend(lexer.take_diagnostics());
        match result {
            Ok(e) => e,
            Err(e) => {
                self.parse_error(e);
                Expr {
                    span: self.span(base, base + text.len()),
                    kind: ExprKind::Error,
                }
            }
        }
    }
}

/// True for `a` or `a.b.c` where no segment is a keyword that cannot stand alone in an expression
/// (segments of dotted names may be keywords; a lone keyword goes through the parser).
fn is_plain_path(text: &str) -> bool {
    let ident = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if text.contains('.') {
        text.split('.').all(ident)
    } else {
        ident(text)
            && matches!(
                lexer::Token::lexer_token(text),
                Some(lexer::Token::Ident(_) | lexer::Token::Service)
            )
    }
}

/// `{1F600}` after `\u`: the character and the length consumed.
fn unicode_escape(text: &str) -> Option<(char, usize)> {
    let rest = text.strip_prefix('{')?;
    let close = rest.find('}')?;
    let hex = &rest[..close];
    if hex.is_empty() || hex.len() > 6 {
        return None;
    }
    let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
    Some((ch, close + 2))
}

/// Turns LALRPOP's list of expected terminals into English: `` one of `}`, identifier ``.
fn describe_expected(expected: &[String]) -> Option<String> {
    const EXPR_START: &[&str] = &[
        "identifier",
        "dotted name",
        "integer",
        "float",
        "duration",
        "string",
        "true",
        "false",
        "null",
        "(",
        "[",
        "{",
        "-",
        "not",
        "service",
        "over-deep brackets",
    ];
    let names: Vec<&str> = expected.iter().map(|e| e.trim_matches('"')).collect();
    let is_expr = ["identifier", "integer", "string", "("]
        .iter()
        .all(|t| names.contains(t));
    const OPERATORS: &[&str] = &[
        "and", "or", "contains", "matches", "in", "=", "==", "!=", "<", "<=", ">", ">=", ">>",
        "~>", "|", "??", "+", "-", "*", "/",
    ];
    let is_operator = ["==", "+", "and"].iter().all(|t| names.contains(t));
    let mut out: Vec<String> = Vec::new();
    if is_expr {
        out.push("expression".into());
    }
    if is_operator {
        out.push("operator".into());
    }
    for name in names {
        if name == "over-deep brackets"
            || (is_expr && EXPR_START.contains(&name))
            || (is_operator && OPERATORS.contains(&name))
        {
            continue;
        }
        // Token classes read as words, keywords and punctuation as code.
        let class = matches!(
            name,
            "identifier" | "dotted name" | "integer" | "float" | "duration" | "string" | "newline"
        );
        out.push(if class {
            name.to_string()
        } else {
            format!("`{name}`")
        });
    }
    match out.len() {
        0 => None,
        1 => Some(out.remove(0)),
        _ => Some(format!("one of {}", out.join(", "))),
    }
}

/// A compact S-expression rendering of a file, for tests and debugging. Spans are left out except
/// where they say something the shape does not (none today); strings are shown with Rust escapes.
pub fn dump(file: &File) -> String {
    let mut out = String::new();
    for item in &file.items {
        dump_item(&mut out, item, 0);
    }
    out
}

/// A compact S-expression rendering of one expression.
pub fn dump_expr(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr);
    out
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push_str("  ");
    }
}

fn dump_item(out: &mut String, item: &Item, n: usize) {
    indent(out, n);
    if let Some(doc) = &item.doc {
        out.push_str(&format!("(doc {doc:?}) "));
    }
    match &item.kind {
        ItemKind::Import(i) => {
            out.push_str(&format!("(import {:?}", i.path));
            if let Some(a) = &i.alias {
                out.push_str(&format!(" as {}", a.name));
            }
            out.push_str(")\n");
        }
        ItemKind::Let(l) => {
            write_let(out, l);
            out.push('\n');
        }
        ItemKind::Matcher(m) => {
            let params: Vec<String> = m
                .params
                .iter()
                .map(|p| match &p.default {
                    Some(d) => {
                        let mut s = format!("(= {} ", p.name.name);
                        write_expr(&mut s, d);
                        s.push(')');
                        s
                    }
                    None => p.name.name.clone(),
                })
                .collect();
            out.push_str(&format!("(matcher {} ({}) ", m.name.name, params.join(" ")));
            write_expr(out, &m.body);
            out.push_str(")\n");
        }
        ItemKind::Service(s) => {
            out.push_str(&format!("(service {}\n", s.name.name));
            for d in &s.body {
                dump_directive(out, d, n + 1);
            }
            indent(out, n);
            out.push_str(")\n");
        }
        ItemKind::Test(t) => {
            out.push_str(&format!("(test {}", t.name.name));
            if let Some(title) = &t.title {
                out.push(' ');
                write_str(out, title);
            }
            out.push('\n');
            for s in &t.body {
                dump_stmt(out, s, n + 1);
            }
            indent(out, n);
            out.push_str(")\n");
        }
        ItemKind::Error => out.push_str("(error)\n"),
    }
}

fn write_let(out: &mut String, l: &Let) {
    out.push_str(if l.secret { "(secret-let " } else { "(let " });
    out.push_str(&l.name.name);
    out.push(' ');
    write_expr(out, &l.value);
    out.push(')');
}

fn dump_directive(out: &mut String, d: &Directive, n: usize) {
    indent(out, n);
    if d.error {
        out.push_str("(error)\n");
        return;
    }
    out.push_str(&format!("({}", d.name.name));
    for a in &d.args {
        out.push(' ');
        write_expr(out, a);
    }
    if let Some(v) = &d.value {
        out.push_str(" = ");
        write_expr(out, v);
    }
    if let Some(w) = &d.within {
        out.push_str(" within ");
        write_expr(out, w);
    }
    out.push_str(")\n");
}

fn dump_stmt(out: &mut String, s: &Stmt, n: usize) {
    indent(out, n);
    match &s.kind {
        StmtKind::Let(l) => write_let(out, l),
        StmtKind::Step(st) => {
            out.push_str(&format!("(step {}\n", st.name.name));
            for s in &st.body {
                dump_stmt(out, s, n + 1);
            }
            indent(out, n);
            out.push(')');
        }
        StmtKind::Trigger(t) => {
            out.push_str(&format!("(trigger {}", t.kind.name));
            for a in &t.args {
                out.push(' ');
                write_expr(out, a);
            }
            if let Some(at) = &t.at {
                out.push_str(" at ");
                write_expr(out, at);
            }
            if t.options_span.is_some() {
                out.push('\n');
                for d in &t.options {
                    dump_directive(out, d, n + 1);
                }
                indent(out, n);
            }
            out.push(')');
        }
        StmtKind::Expect(e) => {
            out.push_str("(expect ");
            match &e.kind {
                ExpectKind::Select {
                    no,
                    selector,
                    by,
                    block,
                } => {
                    if *no {
                        out.push_str("no ");
                    }
                    write_expr(out, selector);
                    if let Some(by) = by {
                        out.push_str(" by ");
                        write_expr(out, by);
                    }
                    if let Some(b) = block {
                        dump_block(out, b, n);
                    }
                }
                ExpectKind::Order {
                    first,
                    order,
                    second,
                } => {
                    write_expr(out, first);
                    out.push_str(if *order == Order::Before {
                        " before "
                    } else {
                        " after "
                    });
                    write_expr(out, second);
                }
                ExpectKind::Response(b) => {
                    out.push_str("response");
                    dump_block(out, b, n);
                }
                ExpectKind::Trace(b) => {
                    out.push_str("trace");
                    dump_block(out, b, n);
                }
            }
            out.push(')');
        }
        StmtKind::After(paths) => {
            let p: Vec<String> = paths.iter().map(Path::dotted).collect();
            out.push_str(&format!("(after {})", p.join(" ")));
        }
        StmtKind::Timeout(e) => {
            out.push_str("(timeout ");
            write_expr(out, e);
            out.push(')');
        }
        StmtKind::Settle(e) => {
            out.push_str("(settle ");
            write_expr(out, e);
            out.push(')');
        }
        StmtKind::Error => out.push_str("(error)"),
    }
    out.push('\n');
}

fn dump_block(out: &mut String, b: &Block, n: usize) {
    out.push_str(" {\n");
    for s in &b.stmts {
        indent(out, n + 1);
        match &s.kind {
            BlockStmtKind::Pred(e) => write_expr(out, e),
            BlockStmtKind::Any(e) => {
                out.push_str("(any ");
                write_expr(out, e);
                out.push(')');
            }
            BlockStmtKind::Let(l) => write_let(out, l),
            BlockStmtKind::Error => out.push_str("(error)"),
        }
        out.push('\n');
    }
    indent(out, n);
    out.push('}');
}

fn write_str(out: &mut String, s: &StrLit) {
    let prefix = match s.style {
        StrStyle::Normal => "",
        StrStyle::Raw => "r",
        StrStyle::Multi => "multi",
    };
    match s.parts.as_slice() {
        [StrPart::Text(t)] => out.push_str(&format!("{prefix}{t:?}")),
        parts => {
            out.push_str(&format!("({prefix}str"));
            for p in parts {
                out.push(' ');
                match p {
                    StrPart::Text(t) => out.push_str(&format!("{t:?}")),
                    StrPart::Interp(e) => {
                        out.push_str("${");
                        write_expr(out, e);
                        out.push('}');
                    }
                }
            }
            out.push(')');
        }
    }
}

/// `1500ms`: the largest unit that divides the value exactly.
fn format_duration(ns: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ];
    for (per, unit) in UNITS {
        if ns != 0 && ns.is_multiple_of(per) {
            return format!("{}{unit}", ns / per);
        }
    }
    format!("{ns}ns")
}

fn write_list(out: &mut String, items: &[Expr]) {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_expr(out, e);
    }
}

fn write_expr(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::Lit(l) => match l {
            Lit::Int(v) => out.push_str(&v.to_string()),
            Lit::Float(v) => out.push_str(&format!("{v:?}")),
            Lit::Duration(ns) => out.push_str(&format_duration(*ns)),
            Lit::Bool(b) => out.push_str(&b.to_string()),
            Lit::Null => out.push_str("null"),
            Lit::Str(s) => write_str(out, s),
        },
        ExprKind::Path(p) => out.push_str(&p.dotted()),
        ExprKind::Call { callee, args } => {
            out.push_str(&format!("(call {}", callee.dotted()));
            for a in args {
                out.push(' ');
                write_expr(out, a);
            }
            out.push(')');
        }
        ExprKind::List(items) => {
            out.push('[');
            write_list(out, items);
            out.push(']');
        }
        ExprKind::Object(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                write_expr(out, v);
            }
            out.push('}');
        }
        ExprKind::Unary { op, expr } => {
            out.push_str(match op {
                UnaryOp::Neg => "(neg ",
                UnaryOp::Not => "(not ",
            });
            write_expr(out, expr);
            out.push(')');
        }
        ExprKind::Binary { op, lhs, rhs, .. } => {
            out.push_str(&format!("({} ", op.symbol()));
            write_expr(out, lhs);
            out.push(' ');
            write_expr(out, rhs);
            out.push(')');
        }
        ExprKind::Filter { base, preds } => {
            out.push_str("(filter ");
            write_expr(out, base);
            out.push_str(" [");
            write_list(out, preds);
            out.push_str("])");
        }
        ExprKind::Pseudo { base, class, arg } => {
            out.push_str(&format!("(:{} ", class.name));
            write_expr(out, base);
            if let Some(a) = arg {
                out.push(' ');
                write_expr(out, a);
            }
            out.push(')');
        }
        ExprKind::Paren(inner) => {
            out.push_str("(paren ");
            write_expr(out, inner);
            out.push(')');
        }
        ExprKind::Error => out.push_str("(error)"),
    }
}
