//! Source text → tokens for the LALRPOP parser.
//!
//! Two layers. [`Token`] is a plain logos DFA: every token of the language, with literal values
//! already decoded where that is context-free (numbers, durations). Strings are lexed whole by a
//! hand-written scanner ([`scan_string`]) so that `${ … }` interpolations may hold nested strings
//! and braces; the parser splits them into parts later and parses each interpolation with a second
//! entry point of the grammar.
//!
//! [`Lexer`] wraps the DFA and holds all the *state* the grammar needs, so the grammar itself stays
//! context-free:
//!
//! - **Significant newlines (Go-style).** A line break becomes a [`Token::Newline`] only when the
//!   previous token can end a statement ([`Token::can_end_statement`]) and no `(` or `[` is open.
//!   `{` does not suppress them (blocks hold statements). Runs of line breaks collapse because a
//!   newline cannot itself end a statement. So an expression continues on the next line after a
//!   binary operator, a comma or inside parentheses.
//! - **Comments** never reach the parser; they are collected in [`Lexer::comments`].
//! - **Nesting limit.** An opening bracket beyond [`MAX_NESTING`] levels is reported once
//!   (TBT0006) and the whole region up to its matching bracket becomes one [`Token::TooDeep`], which
//!   the grammar accepts as an erroneous expression. The trees later phases walk recursively are
//!   therefore never deeper than the limit allows.
//! - **Operator limit.** Operators chained in one element of an expression (reset at `,`, at a
//!   statement boundary and when a bracket closes) are counted; beyond [`MAX_OPERATORS`] the rest
//!   of the element becomes one [`Token::TooDeep`] (TBT0006). Together with the nesting limit this
//!   bounds the depth of every expression tree, so `1 + 1 + … + 1` a million times long cannot
//!   overflow the stack of whatever walks or drops the tree later.
//! - **Unclosed brackets.** Inside `(` or `[`, a line that starts with a keyword that can only
//!   start a statement (`let`, `test`, `expect`, …) means a bracket was left open: the open
//!   parentheses are dropped and the line break is emitted, so the parser reports the missing
//!   bracket once and recovers at that line instead of swallowing the rest of the file.
//! - **Invalid characters** are reported (TBT0003, adjacent ones merged) and skipped.
//!
//! The lexer never fails: problems become diagnostics, and the token stream goes on.

use crate::ast::Comment;
use crate::diagnostic::{Code, Diagnostic};
use crate::span::{FileId, Span};
use logos::Logos;

/// How many `(`, `[`, `{` and string interpolations may be open at once.
pub const MAX_NESTING: usize = 128;

/// Per-lexer state reachable from logos callbacks.
#[derive(Debug, Default)]
pub struct Extras {
    /// The file positions are reported in.
    pub file: FileId,
    /// Added to every offset (non-zero when lexing an interpolation or an embedded expression).
    pub base: usize,
    /// Problems found while lexing.
    pub diagnostics: Vec<Diagnostic>,
}

impl Extras {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, self.base + start, self.base + end)
    }
}

/// How a string literal was delimited (mirrors [`crate::ast::StrStyle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrKind {
    /// `"…"`
    Normal,
    /// `r"…"`
    Raw,
    /// `"""…"""`
    Multi,
}

/// A whole string literal as one token; decoded by the parser.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StrTok<'src> {
    /// The literal as written, quotes included (without the closing quote when unterminated).
    pub raw: &'src str,
    /// Its delimiters.
    pub kind: StrKind,
    /// False when the closing quote is missing (already reported).
    pub terminated: bool,
    /// Brackets and interpolations open around the literal, for the nesting limit.
    pub depth: u32,
    /// Operators around the literal, for the operator limit.
    pub ops: u32,
}

impl StrTok<'_> {
    /// Byte range of the contents inside `raw`.
    pub fn body(&self) -> std::ops::Range<usize> {
        let (open, close) = match self.kind {
            StrKind::Normal => (1, 1),
            StrKind::Raw => (2, 1),
            StrKind::Multi => (3, 3),
        };
        let end = if self.terminated {
            self.raw.len() - close
        } else {
            self.raw.len()
        };
        open.min(end)..end
    }
}

/// The tokens of `.tbt`.
#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(extras = Extras)]
#[logos(skip r"[ \t\r\f\x00]+")]
pub enum Token<'src> {
    /// A significant line break (see the module docs).
    #[token("\n")]
    Newline,
    /// `# …` or `## …`; filtered out by [`Lexer`].
    #[regex(r"#[^\n]*", allow_greedy = true)]
    Comment(&'src str),
    /// `name`
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Ident(&'src str),
    /// `a.b.c`: one token, segments may be keywords.
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")]
    Dotted(&'src str),
    /// `42`, `1_000`
    #[regex(r"[0-9][0-9_]*", lex_int)]
    Int(i64),
    /// `99.99`
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*", lex_float)]
    Float(f64),
    /// `250ms`, in nanoseconds. Any other letter suffix is reported here too.
    #[regex(r"[0-9][0-9_]*(\.[0-9][0-9_]*)?[A-Za-z][A-Za-z0-9_]*", lex_duration)]
    Duration(u64),
    /// `"…"`, `r"…"`, `"""…"""`.
    #[token("\"", lex_string)]
    #[token("r\"", lex_raw_string)]
    Str(StrTok<'src>),
    /// Produced by [`Lexer`] for a region nested deeper than [`MAX_NESTING`].
    TooDeep,

    /// `import`
    #[token("import")]
    Import,
    /// `as`
    #[token("as")]
    As,
    /// `let`
    #[token("let")]
    Let,
    /// `secret`
    #[token("secret")]
    Secret,
    /// `matcher`
    #[token("matcher")]
    Matcher,
    /// `service`
    #[token("service")]
    Service,
    /// `test`
    #[token("test")]
    Test,
    /// `step`
    #[token("step")]
    Step,
    /// `after`
    #[token("after")]
    After,
    /// `before`
    #[token("before")]
    Before,
    /// `timeout`
    #[token("timeout")]
    Timeout,
    /// `settle`
    #[token("settle")]
    Settle,
    /// `trigger`
    #[token("trigger")]
    Trigger,
    /// `expect`
    #[token("expect")]
    Expect,
    /// `no`
    #[token("no")]
    No,
    /// `by`
    #[token("by")]
    By,
    /// `response`
    #[token("response")]
    Response,
    /// `trace`
    #[token("trace")]
    Trace,
    /// `any`
    #[token("any")]
    Any,
    /// `and`
    #[token("and")]
    And,
    /// `or`
    #[token("or")]
    Or,
    /// `not`
    #[token("not")]
    Not,
    /// `contains`
    #[token("contains")]
    Contains,
    /// `matches`
    #[token("matches")]
    Matches,
    /// `in`
    #[token("in")]
    In,
    /// `true`
    #[token("true")]
    True,
    /// `false`
    #[token("false")]
    False,
    /// `null`
    #[token("null")]
    Null,
    /// `at`
    #[token("at")]
    At,
    /// `within`
    #[token("within")]
    Within,

    /// `(`
    #[token("(")]
    LParen,
    /// `)`
    #[token(")")]
    RParen,
    /// `[`
    #[token("[")]
    LBracket,
    /// `]`
    #[token("]")]
    RBracket,
    /// `{`
    #[token("{")]
    LBrace,
    /// `}`
    #[token("}")]
    RBrace,
    /// `,`
    #[token(",")]
    Comma,
    /// `:`
    #[token(":")]
    Colon,
    /// `;`
    #[token(";")]
    Semi,
    /// `=`
    #[token("=")]
    Assign,
    /// `==`
    #[token("==")]
    EqEq,
    /// `!=`
    #[token("!=")]
    Ne,
    /// `<`
    #[token("<")]
    Lt,
    /// `<=`
    #[token("<=")]
    Le,
    /// `>`
    #[token(">")]
    Gt,
    /// `>=`
    #[token(">=")]
    Ge,
    /// `>>`
    #[token(">>")]
    Descendant,
    /// `~>`
    #[token("~>")]
    Linked,
    /// `|`
    #[token("|")]
    Pipe,
    /// `??`
    #[token("??")]
    Coalesce,
    /// `+`
    #[token("+")]
    Plus,
    /// `-`
    #[token("-")]
    Minus,
    /// `*`
    #[token("*")]
    Star,
    /// `/`
    #[token("/")]
    Slash,
}

impl Token<'_> {
    /// True when a line break after this token ends the statement.
    pub fn can_end_statement(&self) -> bool {
        matches!(
            self,
            Token::Ident(_)
                | Token::Dotted(_)
                | Token::Int(_)
                | Token::Float(_)
                | Token::Duration(_)
                | Token::Str(_)
                | Token::True
                | Token::False
                | Token::Null
                | Token::Service
                | Token::TooDeep
                | Token::RParen
                | Token::RBracket
                | Token::RBrace
        )
    }

    /// How the token reads in an error message: `` `let` ``, ``identifier `x` ``, `newline`.
    pub fn describe(&self) -> String {
        match self {
            Token::Newline => "newline".into(),
            Token::Comment(_) => "comment".into(),
            Token::Ident(s) => format!("identifier `{s}`"),
            Token::Dotted(s) => format!("name `{s}`"),
            Token::Int(_) | Token::Float(_) => "number".into(),
            Token::Duration(_) => "duration".into(),
            Token::Str(_) => "string".into(),
            Token::TooDeep => "over-deep brackets".into(),
            other => format!("`{}`", other.symbol()),
        }
    }

    /// The fixed text of keywords and punctuation (empty for tokens with a payload).
    pub fn symbol(&self) -> &'static str {
        match self {
            Token::Import => "import",
            Token::As => "as",
            Token::Let => "let",
            Token::Secret => "secret",
            Token::Matcher => "matcher",
            Token::Service => "service",
            Token::Test => "test",
            Token::Step => "step",
            Token::After => "after",
            Token::Before => "before",
            Token::Timeout => "timeout",
            Token::Settle => "settle",
            Token::Trigger => "trigger",
            Token::Expect => "expect",
            Token::No => "no",
            Token::By => "by",
            Token::Response => "response",
            Token::Trace => "trace",
            Token::Any => "any",
            Token::And => "and",
            Token::Or => "or",
            Token::Not => "not",
            Token::Contains => "contains",
            Token::Matches => "matches",
            Token::In => "in",
            Token::True => "true",
            Token::False => "false",
            Token::Null => "null",
            Token::At => "at",
            Token::Within => "within",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::Comma => ",",
            Token::Colon => ":",
            Token::Semi => ";",
            Token::Assign => "=",
            Token::EqEq => "==",
            Token::Ne => "!=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::Descendant => ">>",
            Token::Linked => "~>",
            Token::Pipe => "|",
            Token::Coalesce => "??",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            _ => "",
        }
    }
}

type RawLexer<'src> = logos::Lexer<'src, Token<'src>>;

fn number_error(lex: &mut RawLexer<'_>, message: String) {
    let span = lex.extras.span(lex.span().start, lex.span().end);
    lex.extras
        .diagnostics
        .push(Diagnostic::new(Code::InvalidNumber, span, message));
}

fn digits(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('_') {
        s.replace('_', "").into()
    } else {
        s.into()
    }
}

fn lex_int(lex: &mut RawLexer<'_>) -> i64 {
    match digits(lex.slice()).parse() {
        Ok(v) => v,
        Err(_) => {
            number_error(
                lex,
                format!("integer `{}` does not fit in 64 bits", lex.slice()),
            );
            0
        }
    }
}

fn lex_float(lex: &mut RawLexer<'_>) -> f64 {
    digits(lex.slice()).parse().unwrap_or(0.0)
}

/// Nanoseconds per unit, or `None` for an unknown suffix.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

fn lex_duration(lex: &mut RawLexer<'_>) -> u64 {
    let text = lex.slice();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let Some(per_unit) = unit_nanos(unit) else {
        number_error(
            lex,
            format!("unknown unit `{unit}` in `{text}`; durations use ns, us, ms, s, m or h"),
        );
        return 0;
    };
    let number = digits(number);
    let (whole, frac) = number.split_once('.').unwrap_or((&*number, ""));
    let whole: Option<u128> = whole.parse().ok();
    let mut frac_nanos: u128 = 0;
    let mut scale: u128 = 1;
    for d in frac.bytes().take(18) {
        frac_nanos = frac_nanos * 10 + u128::from(d - b'0');
        scale *= 10;
    }
    let total = whole
        .and_then(|w| w.checked_mul(per_unit))
        .and_then(|w| w.checked_add(frac_nanos * per_unit / scale));
    match total.and_then(|t| u64::try_from(t).ok()) {
        Some(v) => v,
        None => {
            number_error(
                lex,
                format!("duration `{text}` is too long (the maximum is about 584 years)"),
            );
            0
        }
    }
}

#[derive(Clone, Copy)]
enum Frame {
    Str(StrKind),
    Interp(u32),
}

/// Where a string that starts at byte 0 of `text` ends, and whether it was closed.
///
/// `text` starts with the opening delimiter (`"`, `r"` or `"""`). Interpolations `${ … }` are
/// balanced, counting nested braces and skipping nested strings, with an explicit stack so that no
/// input can exhaust the call stack. An unterminated literal ends at the end of its first line.
pub fn scan_string(text: &str) -> (usize, StrKind, bool) {
    let b = text.as_bytes();
    let (kind, start) = if b.starts_with(b"r\"") {
        (StrKind::Raw, 2)
    } else if b.starts_with(b"\"\"\"") {
        (StrKind::Multi, 3)
    } else {
        (StrKind::Normal, 1)
    };
    // Fast path, no allocation: a literal without interpolation.
    if kind != StrKind::Multi {
        let mut i = start;
        while let Some(&c) = b.get(i) {
            match c {
                b'"' => return (i + 1, kind, true),
                b'\\' if kind == StrKind::Normal && b.get(i + 1) != Some(&b'\n') => i += 1,
                b'$' if kind == StrKind::Normal && b.get(i + 1) == Some(&b'{') => break,
                b'\n' => return (i, kind, false),
                _ => {}
            }
            i += 1;
        }
    }
    match scan(b, start, vec![Frame::Str(kind)]) {
        Some(end) => (end, kind, true),
        None => (text.find('\n').unwrap_or(text.len()), kind, false),
    }
}

/// The end (one past the `}`) of the interpolation whose contents start at `from`.
pub fn interpolation_end(text: &str, from: usize) -> Option<usize> {
    scan(text.as_bytes(), from, vec![Frame::Interp(0)])
}

fn scan(b: &[u8], mut i: usize, mut stack: Vec<Frame>) -> Option<usize> {
    // A line break is allowed only when every string around it is multi-line.
    let newline_ok = |stack: &[Frame]| {
        stack
            .iter()
            .all(|f| matches!(f, Frame::Interp(_) | Frame::Str(StrKind::Multi)))
    };
    while let Some(top) = stack.last_mut() {
        let c = *b.get(i)?;
        match top {
            Frame::Str(k) => {
                let k = *k;
                match c {
                    // A backslash escapes the next byte, but never a line break of a `"…"`.
                    b'\\'
                        if k != StrKind::Raw
                            && !(k == StrKind::Normal && b.get(i + 1) == Some(&b'\n')) =>
                    {
                        i += 1
                    }
                    b'"' if k == StrKind::Multi && b[i..].starts_with(b"\"\"\"") => {
                        stack.pop();
                        i += 2;
                    }
                    b'"' if k == StrKind::Multi => {}
                    b'"' => {
                        stack.pop();
                    }
                    b'$' if k != StrKind::Raw && b.get(i + 1) == Some(&b'{') => {
                        stack.push(Frame::Interp(0));
                        i += 1;
                    }
                    b'\n' if !newline_ok(&stack) => return None,
                    _ => {}
                }
            }
            Frame::Interp(braces) => match c {
                b'{' => *braces += 1,
                b'}' if *braces == 0 => {
                    stack.pop();
                }
                b'}' => *braces -= 1,
                b'"' if b[i..].starts_with(b"\"\"\"") => {
                    stack.push(Frame::Str(StrKind::Multi));
                    i += 2;
                }
                b'"' => {
                    let raw = i > 0
                        && b[i - 1] == b'r'
                        && !(i > 1 && (b[i - 2].is_ascii_alphanumeric() || b[i - 2] == b'_'));
                    stack.push(Frame::Str(if raw { StrKind::Raw } else { StrKind::Normal }));
                }
                b'\n' if !newline_ok(&stack) => return None,
                _ => {}
            },
        }
        i += 1;
    }
    Some(i.min(b.len()))
}

fn lex_string_common<'src>(lex: &mut RawLexer<'src>) -> StrTok<'src> {
    let start = lex.span().start;
    let source = lex.source();
    let text = &source[start..];
    let (len, kind, terminated) = scan_string(text);
    // Never bump into the middle of a character (the scanner stops on ASCII bytes only).
    let mut len = len.max(lex.span().len());
    while !text.is_char_boundary(len) {
        len += 1;
    }
    lex.bump(len - lex.span().len());
    let raw = &source[start..start + len];
    if !terminated {
        let span = lex.extras.span(start, start + len);
        let what = if raw.contains("${") && kind != StrKind::Raw {
            "unterminated string or interpolation"
        } else {
            "unterminated string"
        };
        let close = if kind == StrKind::Multi {
            "\"\"\""
        } else {
            "\""
        };
        lex.extras.diagnostics.push(
            Diagnostic::new(Code::UnterminatedString, span, what)
                .with_label("this string is not closed")
                .with_help(format!("close it with `{close}`")),
        );
    }
    StrTok {
        raw,
        kind,
        terminated,
        depth: 0,
        ops: 0,
    }
}

fn lex_string<'src>(lex: &mut RawLexer<'src>) -> StrTok<'src> {
    lex_string_common(lex)
}

fn lex_raw_string<'src>(lex: &mut RawLexer<'src>) -> StrTok<'src> {
    lex_string_common(lex)
}

/// An open bracket and the operator count around it.
#[derive(Clone, Copy, Debug)]
struct Open {
    /// `(`, `[` or `{`.
    bracket: u8,
    /// The operator count outside, restored when the bracket closes.
    outer_ops: u32,
    /// The operator count a new element (after `,` or a new line) starts from.
    start_ops: u32,
}

/// The stateful token stream the grammar consumes: `(start, token, end)` triples with absolute
/// byte offsets. Never yields an error.
pub struct Lexer<'src> {
    inner: RawLexer<'src>,
    /// Open brackets, innermost last.
    brackets: Vec<Open>,
    /// Frames below this index are virtual (the parentheses around an embedded expression).
    floor: usize,
    /// Brackets and interpolations open around the text being lexed.
    outer_depth: usize,
    /// Operators (and brackets) seen on the way to the current position of the current element:
    /// an upper bound on how deep the expression tree under construction is.
    ops: u32,
    /// The next operand is replaced by [`Token::TooDeep`] (the operator limit was hit).
    skip_operand: bool,
    /// Whether the previous token emitted can end a statement.
    can_end: bool,
    /// A token read ahead while skipping, not yet processed.
    pending: Option<(Token<'src>, std::ops::Range<usize>)>,
    /// Every comment, in order.
    pub comments: Vec<Comment>,
    /// The end (in the file) of the last token emitted that is not a line end or `;`.
    last_token_end: usize,
}

/// How many operators one expression may chain before the rest of it is cut off (TBT0006); this
/// bounds the depth of expression trees together with [`MAX_NESTING`].
pub const MAX_OPERATORS: u32 = 256;

/// The lexer cannot fail; this type only satisfies the parser's interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LexError {}

impl<'src> Lexer<'src> {
    /// Lexes `text`, whose first byte is at offset `base` of `file`.
    pub fn new(file: FileId, text: &'src str, base: usize) -> Self {
        let extras = Extras {
            file,
            base,
            diagnostics: Vec::new(),
        };
        Lexer {
            inner: Token::lexer_with_extras(text, extras),
            brackets: Vec::new(),
            floor: 0,
            outer_depth: 0,
            ops: 0,
            skip_operand: false,
            can_end: false,
            pending: None,
            comments: Vec::new(),
            last_token_end: base,
        }
    }

    /// Lexes an embedded expression (an interpolation): newlines are insignificant, as inside
    /// parentheses, and `depth` levels of nesting and `ops` operators are already open around it.
    pub fn embedded(file: FileId, text: &'src str, base: usize, depth: usize, ops: u32) -> Self {
        let mut lexer = Lexer::new(file, text, base);
        lexer.brackets.push(Open {
            bracket: b'(',
            outer_ops: ops,
            start_ops: ops,
        });
        lexer.floor = 1;
        lexer.outer_depth = depth;
        lexer.ops = ops;
        lexer
    }

    /// Is the lexer as it starts: no bracket open, nothing read ahead or being skipped, the last
    /// token a line end (or none)? Text lexed from here on lexes as it would on its own.
    pub fn at_rest(&self) -> bool {
        self.brackets.is_empty()
            && self.pending.is_none()
            && !self.skip_operand
            && self.ops == 0
            && !self.can_end
    }

    /// The end (in the file) of the last token emitted that is not a line end or `;` (the start
    /// of the text when none was).
    pub fn last_token_end(&self) -> usize {
        self.last_token_end
    }

    /// The diagnostics found so far.
    pub fn take_diagnostics(&mut self) -> Vec<Diagnostic> {
        std::mem::take(&mut self.inner.extras.diagnostics)
    }

    fn span(&self, start: usize, end: usize) -> Span {
        self.inner.extras.span(start, end)
    }

    fn depth(&self) -> usize {
        self.outer_depth + self.brackets.len()
    }

    fn in_parens(&self) -> bool {
        matches!(
            self.brackets.last(),
            Some(Open {
                bracket: b'(' | b'[',
                ..
            })
        )
    }

    fn element_start(&self) -> u32 {
        self.brackets.last().map_or(0, |o| o.start_ops)
    }

    fn invalid_char(&mut self, start: usize, end: usize) {
        let span = self.span(start, end);
        let ch = self.inner.slice().chars().next().unwrap_or('?');
        let diags = &mut self.inner.extras.diagnostics;
        if let Some(last) = diags.last_mut()
            && last.code == Code::InvalidToken
            && last.span().end == span.start
        {
            let merged = last.span().to(span);
            last.labels[0].span = merged;
            last.message = "invalid characters".into();
            return;
        }
        diags.push(
            Diagnostic::new(
                Code::InvalidToken,
                span,
                format!("invalid character `{}`", ch.escape_debug()),
            )
            .with_label("no token starts with this character"),
        );
    }

    fn push_comment(&mut self) {
        let r = self.inner.span();
        let doc = self.inner.slice().starts_with("##");
        let span = self.span(r.start, r.end);
        self.comments.push(Comment { span, doc });
    }

    /// The next raw token: the one read ahead, or a new one (comments and invalid characters are
    /// handled here).
    fn raw_next(&mut self) -> Option<(Token<'src>, std::ops::Range<usize>)> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        loop {
            let tok = self.inner.next()?;
            let r = self.inner.span();
            match tok {
                Ok(Token::Comment(_)) => self.push_comment(),
                Ok(t) => return Some((t, r)),
                Err(()) => self.invalid_char(r.start, r.end),
            }
        }
    }

    /// Skips from an over-deep opening bracket to its match; returns the end offset.
    fn skip_too_deep(&mut self, start: usize, mut end: usize) -> usize {
        let mut open = 1usize;
        while let Some((tok, r)) = self.raw_next() {
            end = r.end;
            match tok {
                Token::LParen | Token::LBracket | Token::LBrace => open += 1,
                Token::RParen | Token::RBracket | Token::RBrace => {
                    open -= 1;
                    if open == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        let span = self.span(start, start + 1);
        self.inner.extras.diagnostics.push(
            Diagnostic::new(
                Code::NestingTooDeep,
                span,
                format!("brackets nested more than {MAX_NESTING} levels deep"),
            )
            .with_label("this bracket is one level too deep")
            .with_help("split the expression with `let` bindings"),
        );
        end
    }

    /// Skips the rest of the current element after the operator limit was hit: up to (not
    /// including) a `,`, `;`, closing bracket or statement-ending newline at this level.
    fn skip_operand(&mut self, start: usize) -> usize {
        let mut end = start;
        let mut open = 0usize;
        let mut can_end = false;
        while let Some((tok, r)) = self.raw_next() {
            let boundary = open == 0
                && match tok {
                    Token::Comma
                    | Token::Semi
                    | Token::RParen
                    | Token::RBracket
                    | Token::RBrace => true,
                    Token::Newline => can_end && !self.in_parens(),
                    _ => false,
                };
            if boundary {
                self.pending = Some((tok, r));
                break;
            }
            match tok {
                Token::LParen | Token::LBracket | Token::LBrace => open += 1,
                Token::RParen | Token::RBracket | Token::RBrace => open = open.saturating_sub(1),
                Token::Newline => continue,
                _ => {}
            }
            can_end = tok.can_end_statement();
            end = r.end;
        }
        end
    }

    /// Closes the innermost open `open` bracket (and any unclosed ones inside it); a closing
    /// bracket that matches nothing is left to the parser to report.
    fn close(&mut self, open: u8) {
        let floor = self.floor;
        if let Some(pos) = self.brackets[floor..]
            .iter()
            .rposition(|b| b.bracket == open)
        {
            self.ops = self.brackets[floor + pos].outer_ops;
            self.brackets.truncate(floor + pos);
        }
    }

    /// Inside `(` or `[`, after a line break: when the next line starts with a keyword that only
    /// starts a statement or item, a bracket was left open. Close the open `(`/`[` frames (the
    /// parser reports the missing bracket) so that the line break separates statements again and
    /// error recovery finds its footing.
    fn unclosed_before_statement(&mut self) -> bool {
        let next = loop {
            match self.raw_next() {
                Some((Token::Newline, _)) => {}
                Some(t) => break t,
                None => return false,
            }
        };
        let starts_statement = matches!(
            next.0,
            Token::Import
                | Token::Let
                | Token::Secret
                | Token::Matcher
                | Token::Test
                | Token::Step
                | Token::Trigger
                | Token::Expect
                | Token::Settle
                | Token::Timeout
        );
        self.pending = Some(next);
        if !starts_statement {
            return false;
        }
        let keep = self.brackets[self.floor..]
            .iter()
            .rposition(|o| o.bracket == b'{')
            .map_or(self.floor, |p| self.floor + p + 1);
        if keep < self.brackets.len() {
            self.ops = self.brackets[keep].outer_ops;
            self.brackets.truncate(keep);
        }
        !self.in_parens()
    }
}

impl<'src> Iterator for Lexer<'src> {
    type Item = Result<(usize, Token<'src>, usize), LexError>;

    fn next(&mut self) -> Option<Self::Item> {
        let base = self.inner.extras.base;
        if self.skip_operand {
            self.skip_operand = false;
            let start = self.inner.span().end;
            let end = self.skip_operand(start);
            self.can_end = true;
            self.last_token_end = end + base;
            return Some(Ok((start + base, Token::TooDeep, end + base)));
        }
        loop {
            // `raw_next`, inlined by hand: this is the hot path of the whole front end.
            let (mut tok, r) = match self.pending.take() {
                Some(p) => p,
                None => {
                    let t = self.inner.next()?;
                    let r = self.inner.span();
                    match t {
                        Ok(Token::Comment(_)) => {
                            self.push_comment();
                            continue;
                        }
                        Ok(t) => (t, r),
                        Err(()) => {
                            self.invalid_char(r.start, r.end);
                            continue;
                        }
                    }
                }
            };
            let (start, end) = (r.start + base, r.end + base);
            match &mut tok {
                Token::Newline => {
                    if self.in_parens() {
                        if !self.unclosed_before_statement() {
                            continue;
                        }
                    } else if !self.can_end {
                        continue;
                    }
                    self.can_end = false;
                    self.ops = self.element_start();
                    return Some(Ok((start, Token::Newline, end)));
                }
                Token::LParen | Token::LBracket | Token::LBrace => {
                    if self.depth() >= MAX_NESTING {
                        let end = self.skip_too_deep(r.start, r.end) + base;
                        self.can_end = true;
                        self.last_token_end = end;
                        return Some(Ok((start, Token::TooDeep, end)));
                    }
                    let bracket = tok.symbol().as_bytes()[0];
                    self.brackets.push(Open {
                        bracket,
                        outer_ops: self.ops,
                        start_ops: self.ops + 1,
                    });
                    self.ops += 1;
                }
                Token::RParen => self.close(b'('),
                Token::RBracket => self.close(b'['),
                Token::RBrace => self.close(b'{'),
                Token::Comma | Token::Semi => self.ops = self.element_start(),
                Token::Str(s) => {
                    s.depth = u32::try_from(self.depth()).unwrap_or(u32::MAX);
                    s.ops = self.ops;
                }
                Token::Or
                | Token::And
                | Token::Not
                | Token::Pipe
                | Token::EqEq
                | Token::Ne
                | Token::Lt
                | Token::Le
                | Token::Gt
                | Token::Ge
                | Token::Descendant
                | Token::Linked
                | Token::Contains
                | Token::Matches
                | Token::In
                | Token::Assign
                | Token::Coalesce
                | Token::Plus
                | Token::Minus
                | Token::Star
                | Token::Slash
                | Token::Colon => {
                    self.ops += 1;
                    if self.ops > MAX_OPERATORS {
                        let span = self.span(r.start, r.end);
                        self.inner.extras.diagnostics.push(
                            Diagnostic::new(
                                Code::NestingTooDeep,
                                span,
                                format!(
                                    "expression nested more than {MAX_OPERATORS} operators deep"
                                ),
                            )
                            .with_label("the rest of this expression is skipped")
                            .with_help("split the expression with `let` bindings"),
                        );
                        self.skip_operand = true;
                    }
                }
                _ => {}
            }
            self.can_end = tok.can_end_statement();
            if !matches!(tok, Token::Semi) {
                self.last_token_end = end;
            }
            return Some(Ok((start, tok, end)));
        }
    }
}

impl<'src> Token<'src> {
    /// The token `text` lexes to when it is exactly one token (a keyword or an identifier, say).
    pub fn lexer_token(text: &'src str) -> Option<Token<'src>> {
        let mut lex = Token::lexer(text);
        let tok = lex.next()?.ok()?;
        (lex.span().end == text.len() && lex.next().is_none()).then_some(tok)
    }
}
