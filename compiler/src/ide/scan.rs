//! The cursor scan: which block, statement and call the cursor is in, from the tokens before it.
//!
//! Shared by completion ([`super::complete`]) and signature help ([`super::hover`]); it reads
//! only the text, never the syntax tree, so it works on a line that does not parse yet.

use crate::lexer::{Extras, Token};
use logos::Logos;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Block {
    Top,
    Test,
    Step,
    Service,
    TriggerOptions(String),
    Pred,
    Response,
    Trace,
    Object,
}

#[derive(Clone, Debug)]
pub(super) enum Frame {
    Block {
        kind: Block,
        stmt: Vec<Tok>,
    },
    Bracket {
        square: bool,
        filter: bool,
        callee: Option<String>,
        commas: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Kw(&'static str),
    Name(String),
    Str,
    Lit,
    Op(&'static str),
    RParen,
    RBracket,
}

impl Tok {
    pub(super) fn ends_operand(&self) -> bool {
        matches!(
            self,
            Tok::Name(_)
                | Tok::Str
                | Tok::Lit
                | Tok::RParen
                | Tok::RBracket
                | Tok::Kw("true" | "false" | "null")
        )
    }
}

/// The state at the cursor.
pub(crate) struct Scan {
    pub(super) frames: Vec<Frame>,
    /// Every significant token before the cursor's word, in order (brackets as `Op`).
    pub(super) prev: Vec<Tok>,
    pub in_string_or_comment: bool,
    /// The innermost open call: callee and commas so far.
    pub call: Option<(String, usize)>,
}

fn simplify(t: &Token<'_>) -> Option<Tok> {
    Some(match t {
        Token::Ident(s) | Token::Dotted(s) => Tok::Name(s.to_string()),
        Token::Str(_) => Tok::Str,
        Token::Int(_) | Token::Float(_) | Token::Duration(_) | Token::TooDeep => Tok::Lit,
        Token::Newline | Token::Comment(_) => return None,
        Token::RParen => Tok::RParen,
        Token::RBracket => Tok::RBracket,
        other => {
            let s = other.symbol();
            if s.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
                Tok::Kw(s)
            } else {
                Tok::Op(s)
            }
        }
    })
}

fn classify(stmt: &[Tok], in_bracket: bool) -> Block {
    if in_bracket {
        return Block::Object;
    }
    match stmt {
        [Tok::Kw("test"), ..] => Block::Test,
        [Tok::Kw("step"), ..] => Block::Step,
        [Tok::Kw("service"), ..] => Block::Service,
        [Tok::Kw("trigger"), rest @ ..] => Block::TriggerOptions(match rest.first() {
            Some(Tok::Name(k)) => k.clone(),
            Some(Tok::Kw(k)) => k.to_string(),
            _ => String::new(),
        }),
        [Tok::Kw("expect"), Tok::Kw("response"), ..] => Block::Response,
        [Tok::Kw("expect"), Tok::Kw("trace"), ..] => Block::Trace,
        [Tok::Kw("expect"), ..] => Block::Pred,
        _ => Block::Object,
    }
}

/// Lexes `text` before `offset` (descending into a `${…}` the cursor is in) and tracks blocks,
/// brackets and statements.
pub(crate) fn scan_before(text: &str, offset: usize) -> Scan {
    let mut s = Scan {
        frames: vec![Frame::Block {
            kind: Block::Top,
            stmt: Vec::new(),
        }],
        prev: Vec::new(),
        in_string_or_comment: false,
        call: None,
    };
    feed(&mut s, text, 0, offset);
    s.call = s
        .frames
        .iter()
        .rev()
        .find_map(|f| match f {
            Frame::Bracket {
                square: false,
                callee,
                commas,
                ..
            } => Some(callee.clone().map(|c| (c, *commas))),
            Frame::Bracket { .. } => None,
            Frame::Block { .. } => Some(None),
        })
        .flatten();
    s
}

/// Feeds the tokens of `text[from..]` that end before `offset` (absolute offsets).
fn feed(s: &mut Scan, text: &str, from: usize, offset: usize) {
    let Some(src) = text.get(from..) else { return };
    let mut lex = Token::lexer_with_extras(src, Extras::default());
    let mut last_can_end = false;
    while let Some(res) = lex.next() {
        let r = lex.span();
        let (start, end) = (from + r.start, from + r.end);
        if start >= offset {
            break;
        }
        let Ok(tok) = res else { continue };
        if end > offset || (end == offset && matches!(tok, Token::Comment(_))) {
            // The cursor is inside this token.
            match tok {
                Token::Comment(_) => s.in_string_or_comment = true,
                Token::Str(_) => match interpolation_at(text, start, end, offset) {
                    Some(inner) => feed(s, text, inner, offset),
                    None => s.in_string_or_comment = true,
                },
                _ => {}
            }
            return;
        }
        if end == offset && matches!(tok, Token::Str(_)) && !string_closed(&text[start..end]) {
            s.in_string_or_comment = true;
            return;
        }
        match tok {
            Token::Newline => {
                if last_can_end && let Some(Frame::Block { stmt, .. }) = s.frames.last_mut() {
                    stmt.clear();
                }
                continue;
            }
            Token::Comment(_) => continue,
            Token::Semi => {
                if let Some(Frame::Block { stmt, .. }) = s.frames.last_mut() {
                    stmt.clear();
                }
            }
            Token::LBrace => {
                let in_bracket = matches!(s.frames.last(), Some(Frame::Bracket { .. }));
                let kind = match innermost_stmt(&s.frames) {
                    Some(stmt) => classify(stmt, in_bracket),
                    None => Block::Object,
                };
                s.frames.push(Frame::Block {
                    kind,
                    stmt: Vec::new(),
                });
            }
            Token::RBrace => {
                while let Some(f) = s.frames.pop() {
                    if let Frame::Block { kind, .. } = f {
                        if kind == Block::Top {
                            s.frames.push(Frame::Block {
                                kind: Block::Top,
                                stmt: Vec::new(),
                            });
                        } else if kind != Block::Object
                            && let Some(Frame::Block { stmt, .. }) = s.frames.last_mut()
                        {
                            stmt.clear();
                        }
                        break;
                    }
                }
                if s.frames.is_empty() {
                    s.frames.push(Frame::Block {
                        kind: Block::Top,
                        stmt: Vec::new(),
                    });
                }
            }
            Token::LParen | Token::LBracket => {
                let square = matches!(tok, Token::LBracket);
                let prev = s.prev.last();
                let callee = match prev {
                    Some(Tok::Name(n)) if !square => Some(n.clone()),
                    _ => None,
                };
                let filter = square
                    && prev
                        .is_some_and(|p| matches!(p, Tok::Name(_) | Tok::RParen | Tok::RBracket));
                s.frames.push(Frame::Bracket {
                    square,
                    filter,
                    callee,
                    commas: 0,
                });
            }
            Token::RParen | Token::RBracket => {
                if matches!(s.frames.last(), Some(Frame::Bracket { .. })) {
                    s.frames.pop();
                }
            }
            Token::Comma => {
                if let Some(Frame::Bracket { commas, .. }) = s.frames.last_mut() {
                    *commas += 1;
                }
            }
            _ => {}
        }
        last_can_end = tok.can_end_statement();
        if let Some(t) = simplify(&tok) {
            if !matches!(tok, Token::LBrace | Token::RBrace | Token::Semi)
                && let Some(stmt) = innermost_stmt_mut(&mut s.frames)
            {
                stmt.push(t.clone());
            }
            s.prev.push(t);
        }
    }
}

fn innermost_stmt(frames: &[Frame]) -> Option<&Vec<Tok>> {
    frames.iter().rev().find_map(|f| match f {
        Frame::Block { stmt, .. } => Some(stmt),
        Frame::Bracket { .. } => None,
    })
}

fn innermost_stmt_mut(frames: &mut [Frame]) -> Option<&mut Vec<Tok>> {
    frames.iter_mut().rev().find_map(|f| match f {
        Frame::Block { stmt, .. } => Some(stmt),
        Frame::Bracket { .. } => None,
    })
}

fn string_closed(lit: &str) -> bool {
    let (end, _, closed) = crate::lexer::scan_string(lit);
    closed && end == lit.len()
}

/// When `offset` is inside a `${…}` of the string literal `text[start..end]`, where the
/// interpolation's contents start.
fn interpolation_at(text: &str, start: usize, end: usize, offset: usize) -> Option<usize> {
    let lit = text.get(start..end)?;
    if lit.starts_with("r\"") {
        return None;
    }
    let b = lit.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'$' if b[i + 1] == b'{' => {
                let inner = i + 2;
                let close = crate::lexer::interpolation_end(lit, inner).unwrap_or(b.len() + 1);
                if start + inner <= offset && offset < start + close {
                    return Some(start + inner);
                }
                i = close.max(inner);
            }
            _ => i += 1,
        }
    }
    None
}
