//! `tbt fmt`: prints a syntax tree in the one canonical layout, keeping every comment.
//!
//! The formatter exists so that suites diff well and reviews never argue about layout. It works
//! on the tree the parser returns plus the comment list beside it ([`ast::File::comments`]); it
//! never changes what a file means, and it refuses to touch a file with syntax errors (the caller
//! gets the diagnostics instead).
//!
//! # Layout rules
//!
//! - Indentation is two spaces per level. Every item, statement, expectation-block line, trigger
//!   option and service directive stands on its own line (`;` separators become line breaks).
//! - Top-level items are separated by exactly one blank line, except that consecutive `import`s,
//!   and consecutive `let`s (`secret let` included), stay grouped: between two of them there is a
//!   blank line only if the source had one.
//! - Inside blocks, a blank line the user left between two statements (or comments) is kept, and
//!   runs of blank lines shrink to one. That is the only layout freedom kept. There is never a
//!   blank line right after `{` or right before `}`.
//! - Blocks of tests, steps, services, trigger options and expectations are always multi-line;
//!   an empty block without comments is `{}`. `expect SEL` without a block stays one line.
//! - One space around binary operators, `, ` after commas, no space inside `()`, `[]`, around
//!   `.` and `:` of pseudo-classes, or after unary `-`; one-line objects read `{ "k": v }`.
//!   Filters `span[a == 1, b == 2]`, calls and parameter lists stay on one line.
//! - A list or object literal stays on one line when it ends within 100 columns, holds no line
//!   break and no comment; otherwise it has one element per line, each followed by a comma.
//!   Literals inside call arguments, filters and pseudo-class arguments stay on one line, like
//!   the call or filter around them, unless they hold comments.
//! - Comments between the elements of a list or object keep their place in the one-element-per-
//!   line layout: at the end of the `[`/`{` line or of an element's line when they were written
//!   there, else on their own line before the next element or the closing bracket.
//! - Strings, numbers and durations are re-emitted exactly as written (escapes, interpolations,
//!   raw and multi-line forms, `1_000`, `1.5s` are kept); parentheses are kept as written.
//! - Comments are never dropped or reordered. A comment on its own line stays on its own line,
//!   above the item, statement or line that follows it, at that line's indentation (`##` docs
//!   therefore stay attached to their item). A comment at the end of a line stays at the end of
//!   that line after one space (this includes a comment right after a block's `{`). Comments after
//!   the last line of a block go before its `}`, at the block's indentation. Trailing whitespace
//!   of comments is removed.
//! - The file ends with exactly one newline; an empty file stays empty.
//!
//! # Why comments inside expressions fall back to verbatim text
//!
//! Comments are not nodes of the tree, so inside an expression there is no canonical place to
//! put one: moving it would detach it from the code it explains, and a comment must be followed
//! by a line break, which the canonical one-line forms cannot hold. Lists and objects are the
//! exception (see above): between their elements there is a natural place. Otherwise the
//! smallest expression that has a comment between its own tokens is printed as its source text,
//! only re-indented by the amount its first line moved (lines inside multi-line strings are never
//! touched). A comment between the tokens of a statement itself (say `let x = # why` with the
//! value on the next line) makes the whole statement, or the header of a block statement up to
//! its `{`, verbatim in the same way; when such a header ends with the comment, the `{` goes on
//! the next line. All of this is idempotent: a second run finds the text already in place.

use crate::ast::{
    self, BlockStmt, BlockStmtKind, Comment, Directive, Expect, ExpectKind, Expr, ExprKind, Item,
    ItemKind, Let, Lit, Order, Stmt, StmtKind, Trigger, UnaryOp,
};
use crate::diagnostic::{Diagnostic, Severity};
use crate::parser;
use crate::span::{FileId, Span};

/// Lists and objects longer than this (in columns, counted from the start of their line) are
/// broken into one element per line.
pub const MAX_WIDTH: usize = 100;

/// Formats a whole `.tbt` file (as [`FileId`] 0).
///
/// Returns the canonical text, or every diagnostic of the parse when any of them is an error; in
/// that case nothing should be written back.
pub fn format(src: &str) -> Result<String, Vec<Diagnostic>> {
    let parsed = parser::parse(FileId(0), src);
    if parsed
        .diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error)
    {
        return Err(parsed.diagnostics);
    }
    let mut printer = Printer::new(src, &parsed.file.comments);
    printer.file(&parsed.file);
    let out = printer.out;
    // A safety net against formatter bugs: never hand back text that lost a comment or no
    // longer parses (tests run with debug assertions, so they see the bug instead).
    let again = parser::parse(FileId(0), &out);
    let sound = again.file.comments.len() == parsed.file.comments.len()
        && !again
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error);
    debug_assert!(sound, "the formatter produced broken output:\n{out}");
    if sound { Ok(out) } else { Ok(src.to_string()) }
}

/// Whether a blank line may precede the next line printed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gap {
    /// Never (start of file or block).
    None,
    /// When the source had one.
    Keep,
    /// Always.
    One,
}

/// A point to roll back to when a tentative layout is rejected.
#[derive(Clone, Copy)]
struct Checkpoint {
    out: usize,
    next: usize,
    last_end: usize,
}

/// Something printed on its own line inside a block.
trait Line {
    fn span(&self) -> Span;
}

impl Line for Stmt {
    fn span(&self) -> Span {
        self.span
    }
}

impl Line for BlockStmt {
    fn span(&self) -> Span {
        self.span
    }
}

impl Line for Directive {
    fn span(&self) -> Span {
        self.span
    }
}

struct Printer<'a> {
    src: &'a str,
    comments: &'a [Comment],
    /// The first comment not printed yet. Everything is printed in source order, so comments are
    /// consumed front to back.
    next: usize,
    out: String,
    /// Current indentation level.
    indent: usize,
    /// Source offset up to which everything has been printed (for blank-line detection).
    last_end: usize,
    /// Printing a tentative one-line form: nested lists and objects do not try to break.
    flat: bool,
    /// Set when an expression was copied verbatim while an earlier comment was still unprinted:
    /// that comment sits between the tokens of the statement, which must then be copied whole.
    stray: bool,
}

impl<'a> Printer<'a> {
    fn new(src: &'a str, comments: &'a [Comment]) -> Self {
        Printer {
            src,
            comments,
            next: 0,
            out: String::new(),
            indent: 0,
            last_end: 0,
            flat: false,
            stray: false,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Comments, lines and blank lines

    fn comment_text(&self, c: &Comment) -> &'a str {
        self.src[c.span.range()].trim_end()
    }

    /// The next unprinted comment if it starts before `pos`.
    fn comment_before(&self, pos: usize) -> Option<&'a Comment> {
        self.comments
            .get(self.next)
            .filter(|c| (c.span.start as usize) < pos)
    }

    /// True when an unprinted comment starts inside `span`.
    fn has_comment(&self, span: Span) -> bool {
        let rest = &self.comments[self.next.min(self.comments.len())..];
        let i = rest.partition_point(|c| c.span.start < span.start);
        rest.get(i).is_some_and(|c| c.span.start < span.end)
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            out: self.out.len(),
            next: self.next,
            last_end: self.last_end,
        }
    }

    fn rollback(&mut self, cp: Checkpoint) {
        self.out.truncate(cp.out);
        self.next = cp.next;
        self.last_end = cp.last_end;
    }

    fn write_indent(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
    }

    fn blank(&mut self, gap: Gap, pos: usize) {
        let wanted = match gap {
            Gap::None => false,
            Gap::One => true,
            Gap::Keep => self
                .src
                .get(self.last_end..pos)
                .is_some_and(|s| s.matches('\n').count() >= 2),
        };
        if wanted {
            self.out.push('\n');
        }
    }

    /// Prints the comments that start before `pos` on their own lines; returns the gap rule for
    /// what follows them.
    fn own_line_comments(&mut self, pos: usize, mut gap: Gap) -> Gap {
        while let Some(c) = self.comment_before(pos) {
            self.blank(gap, c.span.start as usize);
            gap = Gap::Keep;
            self.write_indent();
            let text = self.comment_text(c);
            self.out.push_str(text);
            self.out.push('\n');
            self.last_end = c.span.end as usize;
            self.next += 1;
        }
        gap
    }

    /// Starts the line of a construct at source offset `start`: its own-line comments, the blank
    /// line before it, its indentation.
    fn begin_line(&mut self, start: usize, gap: Gap) {
        let gap = self.own_line_comments(start, gap);
        self.blank(gap, start);
        self.write_indent();
    }

    /// Ends a line whose source ends at `end`, keeping a comment that follows on the same line.
    fn end_line(&mut self, end: usize) {
        self.last_end = end;
        if let Some(c) = self.comments.get(self.next) {
            let start = c.span.start as usize;
            let inline = start >= end
                && self.src[end..start]
                    .bytes()
                    .all(|b| matches!(b, b' ' | b'\t' | b'\x0c' | b';'));
            if inline {
                self.out.push(' ');
                let text = self.comment_text(c);
                self.out.push_str(text);
                self.last_end = c.span.end as usize;
                self.next += 1;
            }
        }
        self.out.push('\n');
    }

    /// Prints a braced block of lines; `span` covers the braces.
    fn block<T: Line>(&mut self, span: Span, lines: &[T], print: fn(&mut Self, &T)) {
        if lines.is_empty() && !self.has_comment(span) {
            self.out.push_str("{}");
            return;
        }
        let open = span.start as usize;
        let close = (span.end as usize).saturating_sub(1);
        self.out.push('{');
        self.end_line(open + 1);
        self.indent += 1;
        let mut gap = Gap::None;
        for line in lines {
            let s = line.span();
            self.begin_line(s.start as usize, gap);
            print(self, line);
            self.end_line(s.end as usize);
            gap = Gap::Keep;
        }
        self.own_line_comments(close, gap);
        self.indent -= 1;
        self.write_indent();
        self.out.push('}');
    }

    /// Prints the part of a construct from `start` to `end` with `print`, unless a comment sits
    /// between its tokens outside any expression; then that source range is copied instead.
    fn header(&mut self, start: usize, end: usize, print: impl FnOnce(&mut Self)) {
        let cp = self.checkpoint();
        self.stray = false;
        print(self);
        if std::mem::take(&mut self.stray) || self.comment_before(end).is_some() {
            self.rollback(cp);
            let text = self.src[start..end].trim_end();
            self.verbatim(start, start + text.len());
        } else {
            self.last_end = end;
        }
    }

    /// What goes between a header and its block's `{`: a space, or a line break when the
    /// (verbatim) header ends with a comment, as in `expect response # why` + `{` below.
    fn before_block(&mut self) {
        let ends_in_comment = self.next > 0 && {
            let c = self.comments[self.next - 1].span;
            (c.start as usize) < self.last_end && self.last_end <= c.end as usize
        };
        if ends_in_comment {
            self.out.push('\n');
            self.write_indent();
        } else {
            self.out.push(' ');
        }
    }

    /// Copies `start..end` of the source, re-indented by as much as its first line moved.
    fn verbatim(&mut self, start: usize, end: usize) {
        if self.comment_before(start).is_some() {
            self.stray = true;
        }
        while self.comment_before(end).is_some() {
            self.next += 1;
        }
        let text = &self.src[start..end];
        let src_line = &self.src[self.src[..start].rfind('\n').map_or(0, |i| i + 1)..];
        let src_indent = leading_ws(src_line);
        let out_line = &self.out[self.out.rfind('\n').map_or(0, |i| i + 1)..];
        let out_indent = out_line.len() - out_line.trim_start_matches(' ').len();
        let delta = out_indent as isize - src_indent as isize;
        let strings = string_ranges(text);
        let inside = |at: usize| strings.iter().any(|r| r.start < at && at < r.end);
        let mut at = 0;
        for (i, line) in text.split('\n').enumerate() {
            let line_start = at;
            let line_end = at + line.len();
            at = line_end + 1;
            let line = if inside(line_end) {
                line
            } else {
                line.trim_end()
            };
            if i == 0 {
                self.out.push_str(line);
                continue;
            }
            self.out.push('\n');
            if inside(line_start) {
                self.out.push_str(line);
                continue;
            }
            let ws = leading_ws(line);
            let content = &line[ws..];
            if content.is_empty() {
                continue;
            }
            let width = (ws as isize + delta).max(0) as usize;
            self.out.extend(std::iter::repeat_n(' ', width));
            self.out.push_str(content);
        }
        self.last_end = end;
    }

    fn text(&mut self, span: Span) {
        self.out.push_str(&self.src[span.range()]);
    }

    // -----------------------------------------------------------------------------------------
    // Items

    fn file(&mut self, file: &ast::File) {
        let mut prev: Option<&ItemKind> = None;
        for item in &file.items {
            let gap = match prev {
                None => Gap::None,
                Some(p) if grouped(p, &item.kind) => Gap::Keep,
                Some(_) => Gap::One,
            };
            self.begin_line(item.span.start as usize, gap);
            self.item(item);
            self.end_line(item.span.end as usize);
            prev = Some(&item.kind);
        }
        let gap = if prev.is_some() { Gap::Keep } else { Gap::None };
        self.own_line_comments(usize::MAX, gap);
    }

    fn item(&mut self, item: &Item) {
        let start = item.span.start as usize;
        let end = item.span.end as usize;
        match &item.kind {
            ItemKind::Import(i) => self.header(start, end, |p| {
                p.out.push_str("import ");
                p.text(i.path_span);
                if let Some(a) = &i.alias {
                    p.out.push_str(" as ");
                    p.out.push_str(&a.name);
                }
            }),
            ItemKind::Let(l) => self.header(start, end, |p| p.let_(l)),
            ItemKind::Matcher(m) => self.header(start, end, |p| {
                p.out.push_str("matcher ");
                p.out.push_str(&m.name.name);
                p.out.push('(');
                for (i, param) in m.params.iter().enumerate() {
                    if i > 0 {
                        p.out.push_str(", ");
                    }
                    p.out.push_str(&param.name.name);
                    if let Some(d) = &param.default {
                        p.out.push_str(" = ");
                        p.expr(d);
                    }
                }
                p.out.push_str(") = ");
                p.expr(&m.body);
            }),
            ItemKind::Service(s) => {
                // No comment can stand between the name and `{` (the line would end there).
                let name_end = s.name.span.end as usize;
                let open = self.src[name_end..end]
                    .find('{')
                    .map_or(end, |i| name_end + i);
                self.header(start, open, |p| {
                    p.out.push_str("service ");
                    p.out.push_str(&s.name.name);
                });
                self.before_block();
                self.block(Span::new(FileId(0), open, end), &s.body, Self::directive);
            }
            ItemKind::Test(t) => {
                self.header(start, t.body_span.start as usize, |p| {
                    p.out.push_str("test ");
                    p.out.push_str(&t.name.name);
                    if let Some(title) = &t.title {
                        p.out.push(' ');
                        p.text(title.span);
                    }
                });
                self.before_block();
                self.block(t.body_span, &t.body, Self::stmt);
            }
            ItemKind::Error => self.verbatim(start, end),
        }
    }

    fn let_(&mut self, l: &Let) {
        if l.secret {
            self.out.push_str("secret ");
        }
        self.out.push_str("let ");
        self.out.push_str(&l.name.name);
        self.out.push_str(" = ");
        self.expr(&l.value);
    }

    // -----------------------------------------------------------------------------------------
    // Statements and lines

    fn stmt(&mut self, s: &Stmt) {
        let start = s.span.start as usize;
        let end = s.span.end as usize;
        match &s.kind {
            StmtKind::Let(l) => self.header(start, end, |p| p.let_(l)),
            StmtKind::Step(st) => {
                self.header(start, st.body_span.start as usize, |p| {
                    p.out.push_str("step ");
                    p.out.push_str(&st.name.name);
                });
                self.before_block();
                self.block(st.body_span, &st.body, Self::stmt);
            }
            StmtKind::Trigger(t) => self.trigger(start, end, t),
            StmtKind::Expect(e) => self.expect(start, end, e),
            StmtKind::After(paths) => self.header(start, end, |p| {
                p.out.push_str("after ");
                for (i, path) in paths.iter().enumerate() {
                    if i > 0 {
                        p.out.push_str(", ");
                    }
                    p.out.push_str(&path.dotted());
                }
            }),
            StmtKind::Timeout(e) => self.header(start, end, |p| {
                p.out.push_str("timeout ");
                p.expr(e);
            }),
            StmtKind::Settle(e) => self.header(start, end, |p| {
                p.out.push_str("settle ");
                p.expr(e);
            }),
            StmtKind::Error => self.verbatim(start, end),
        }
    }

    fn trigger(&mut self, start: usize, end: usize, t: &Trigger) {
        let header_end = t.options_span.map_or(end, |s| s.start as usize);
        self.header(start, header_end, |p| {
            p.out.push_str("trigger ");
            p.out.push_str(&t.kind.name);
            for a in &t.args {
                p.out.push(' ');
                p.expr(a);
            }
            if let Some(at) = &t.at {
                p.out.push_str(" at ");
                p.expr(at);
            }
        });
        if let Some(span) = t.options_span {
            self.before_block();
            self.block(span, &t.options, Self::directive);
        }
    }

    fn expect(&mut self, start: usize, end: usize, e: &Expect) {
        let block = match &e.kind {
            ExpectKind::Select { block, .. } => block.as_ref(),
            ExpectKind::Order { .. } => None,
            ExpectKind::Response(b) | ExpectKind::Trace(b) => Some(b),
        };
        let header_end = block.map_or(end, |b| b.span.start as usize);
        self.header(start, header_end, |p| {
            p.out.push_str("expect ");
            match &e.kind {
                ExpectKind::Select {
                    no, selector, by, ..
                } => {
                    if *no {
                        p.out.push_str("no ");
                    }
                    p.expr(selector);
                    if let Some(by) = by {
                        p.out.push_str(" by ");
                        p.expr(by);
                    }
                }
                ExpectKind::Order {
                    first,
                    order,
                    second,
                } => {
                    p.expr(first);
                    p.out.push_str(match order {
                        Order::Before => " before ",
                        Order::After => " after ",
                    });
                    p.expr(second);
                }
                ExpectKind::Response(_) => p.out.push_str("response"),
                ExpectKind::Trace(_) => p.out.push_str("trace"),
            }
        });
        if let Some(b) = block {
            self.before_block();
            self.block(b.span, &b.stmts, Self::block_stmt);
        }
    }

    fn block_stmt(&mut self, s: &BlockStmt) {
        let start = s.span.start as usize;
        let end = s.span.end as usize;
        match &s.kind {
            BlockStmtKind::Pred(e) => self.header(start, end, |p| p.expr(e)),
            BlockStmtKind::Any(e) => self.header(start, end, |p| {
                p.out.push_str("any ");
                p.expr(e);
            }),
            BlockStmtKind::Let(l) => self.header(start, end, |p| p.let_(l)),
            BlockStmtKind::Error => self.verbatim(start, end),
        }
    }

    fn directive(&mut self, d: &Directive) {
        let start = d.span.start as usize;
        let end = d.span.end as usize;
        if d.error {
            self.verbatim(start, end);
            return;
        }
        self.header(start, end, |p| {
            p.out.push_str(&d.name.name);
            for a in &d.args {
                p.out.push(' ');
                p.expr(a);
            }
            if let Some(v) = &d.value {
                p.out.push_str(" = ");
                p.expr(v);
            }
            if let Some(w) = &d.within {
                p.out.push_str(" within ");
                p.expr(w);
            }
        });
    }

    // -----------------------------------------------------------------------------------------
    // Expressions

    fn expr(&mut self, e: &Expr) {
        // Comments between the elements of a list or object are laid out by `seq`; anywhere else
        // between an expression's own tokens they make it verbatim.
        let laid_out = match &e.kind {
            ExprKind::List(_) => true,
            ExprKind::Object(entries) => !entries.iter().any(|(k, v)| {
                self.has_comment(Span {
                    start: k.span.end,
                    end: v.span.start,
                    ..k.span
                })
            }),
            _ => false,
        };
        if !laid_out && self.has_own_comment(e) {
            self.verbatim(e.span.start as usize, e.span.end as usize);
            return;
        }
        match &e.kind {
            ExprKind::Lit(Lit::Bool(b)) => self.out.push_str(if *b { "true" } else { "false" }),
            ExprKind::Lit(Lit::Null) => self.out.push_str("null"),
            // Numbers, durations and strings keep their spelling.
            ExprKind::Lit(_) => self.text(e.span),
            ExprKind::Path(p) => self.out.push_str(&p.dotted()),
            ExprKind::Call { callee, args } => {
                self.out.push_str(&callee.dotted());
                self.out.push('(');
                self.comma_list(args);
                self.out.push(')');
            }
            ExprKind::List(items) => {
                self.seq(e.span, ('[', ']'), items, |e| e.span, Self::expr);
            }
            ExprKind::Object(entries) => self.seq(
                e.span,
                ('{', '}'),
                entries,
                |(k, v)| k.span.to(v.span),
                |p, (k, v)| {
                    p.text(k.span);
                    p.out.push_str(": ");
                    p.expr(v);
                },
            ),
            ExprKind::Unary { op, expr } => {
                self.out.push_str(match op {
                    UnaryOp::Neg => "-",
                    UnaryOp::Not => "not ",
                });
                self.expr(expr);
            }
            ExprKind::Binary { op, lhs, rhs, .. } => {
                self.expr(lhs);
                self.out.push(' ');
                self.out.push_str(op.symbol());
                self.out.push(' ');
                self.expr(rhs);
            }
            ExprKind::Filter { base, preds } => {
                self.expr(base);
                self.out.push('[');
                self.comma_list(preds);
                self.out.push(']');
            }
            ExprKind::Pseudo { base, class, arg } => {
                self.expr(base);
                self.out.push(':');
                self.out.push_str(&class.name);
                if let Some(arg) = arg {
                    self.out.push('(');
                    self.comma_list(std::slice::from_ref(arg));
                    self.out.push(')');
                }
            }
            ExprKind::Paren(inner) => {
                self.out.push('(');
                self.expr(inner);
                self.out.push(')');
            }
            ExprKind::Error => self.text(e.span),
        }
    }

    /// True when an unprinted comment lies in `e` but in none of its sub-expressions.
    fn has_own_comment(&self, e: &Expr) -> bool {
        if !self.has_comment(e.span) {
            return false;
        }
        let mut children: Vec<Span> = Vec::new();
        match &e.kind {
            ExprKind::Lit(_) | ExprKind::Path(_) | ExprKind::Error => {}
            ExprKind::Call { args, .. } => children.extend(args.iter().map(|a| a.span)),
            ExprKind::List(items) => children.extend(items.iter().map(|a| a.span)),
            ExprKind::Object(entries) => {
                for (k, v) in entries {
                    children.push(k.span);
                    children.push(v.span);
                }
            }
            ExprKind::Unary { expr, .. } => children.push(expr.span),
            ExprKind::Binary { lhs, rhs, .. } => children.extend([lhs.span, rhs.span]),
            ExprKind::Filter { base, preds } => {
                children.push(base.span);
                children.extend(preds.iter().map(|a| a.span));
            }
            ExprKind::Pseudo { base, arg, .. } => {
                children.push(base.span);
                children.extend(arg.iter().map(|a| a.span));
            }
            ExprKind::Paren(inner) => children.push(inner.span),
        }
        self.comments[self.next..]
            .iter()
            .skip_while(|c| c.span.start < e.span.start)
            .take_while(|c| c.span.start < e.span.end)
            .any(|c| {
                !children
                    .iter()
                    .any(|s| s.start <= c.span.start && c.span.end <= s.end)
            })
    }

    /// Call arguments and filter predicates: one line, literals inside them included (breaking
    /// a list in the middle of `span[…]` would scatter the filter over lines).
    fn comma_list(&mut self, items: &[Expr]) {
        let was_flat = std::mem::replace(&mut self.flat, true);
        for (i, a) in items.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.expr(a);
        }
        self.flat = was_flat;
    }

    /// A list or object: on one line when it fits, else one element per line. Comments between
    /// elements keep their place: after `[`/`{` or after an element's comma when they were on
    /// that line, else on their own line before the next element or the closing bracket.
    fn seq<T>(
        &mut self,
        span: Span,
        (open, close): (char, char),
        items: &[T],
        elem: fn(&T) -> Span,
        print: fn(&mut Self, &T),
    ) {
        // Comments between the elements (not inside one) force one element per line.
        let own_comments = self.comments[self.next..]
            .iter()
            .skip_while(|c| c.span.start < span.start)
            .take_while(|c| c.span.start < span.end)
            .any(|c| {
                !items.iter().any(|i| {
                    let s = elem(i);
                    s.start <= c.span.start && c.span.end <= s.end
                })
            });
        if items.is_empty() && !own_comments {
            self.out.push(open);
            self.out.push(close);
            return;
        }
        let try_flat = !own_comments && (self.flat || !self.has_comment(span));
        if try_flat {
            let cp = self.checkpoint();
            let was_flat = self.flat;
            self.flat = true;
            // Objects read `{ "k": v }`, lists `[a, b]`.
            let pad = if open == '{' { " " } else { "" };
            self.out.push(open);
            self.out.push_str(pad);
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                print(self, item);
            }
            self.out.push_str(pad);
            self.out.push(close);
            self.flat = was_flat;
            if was_flat {
                return;
            }
            let line = &self.out[self.out.rfind('\n').map_or(0, |i| i + 1)..];
            if !self.out[cp.out..].contains('\n') && line.chars().count() <= MAX_WIDTH {
                return;
            }
            self.rollback(cp);
        }
        let close_at = (span.end as usize).saturating_sub(1);
        self.out.push(open);
        self.comment_on_line(span.start as usize + 1, close_at);
        self.indent += 1;
        for item in items {
            let s = elem(item);
            self.out.push('\n');
            while let Some(c) = self.comment_before(s.start as usize) {
                self.write_indent();
                self.out.push_str(self.comment_text(c));
                self.out.push('\n');
                self.next += 1;
            }
            self.write_indent();
            print(self, item);
            self.out.push(',');
            self.comment_on_line(s.end as usize, close_at);
        }
        while let Some(c) = self.comment_before(close_at) {
            self.out.push('\n');
            self.write_indent();
            self.out.push_str(self.comment_text(c));
            self.next += 1;
        }
        self.indent -= 1;
        self.out.push('\n');
        self.write_indent();
        self.out.push(close);
    }

    /// Prints, after a space, the next comment if it follows source offset `from` on the same
    /// line with only blanks and commas between, and starts before `before`.
    fn comment_on_line(&mut self, from: usize, before: usize) {
        let Some(c) = self.comments.get(self.next) else {
            return;
        };
        let start = c.span.start as usize;
        if start < from || start >= before {
            return;
        }
        if self.src[from..start]
            .bytes()
            .all(|b| matches!(b, b' ' | b'\t' | b'\x0c' | b','))
        {
            self.out.push(' ');
            self.out.push_str(self.comment_text(c));
            self.next += 1;
        }
    }
}

/// `import`s group with `import`s and `let`s with `let`s.
fn grouped(a: &ItemKind, b: &ItemKind) -> bool {
    matches!(
        (a, b),
        (ItemKind::Import(_), ItemKind::Import(_)) | (ItemKind::Let(_), ItemKind::Let(_))
    )
}

/// The length of the blanks the lexer skips at the start of `line`.
fn leading_ws(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t', '\r', '\x0c']).len()
}

/// Byte ranges of the string literals in `text` (a run of whole tokens), found as the lexer finds
/// them, so that re-indentation never changes a string's contents.
fn string_ranges(text: &str) -> Vec<std::ops::Range<usize>> {
    let b = text.as_bytes();
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => i = text[i..].find('\n').map_or(b.len(), |k| i + k),
            // Words are skipped whole below, so an `r` here starts a word: `r"…"` is raw.
            b'"' | b'r' if b[i] == b'"' || b.get(i + 1) == Some(&b'"') => {
                let (len, _, _) = crate::lexer::scan_string(&text[i..]);
                let len = len.max(1);
                ranges.push(i..i + len);
                i += len;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    ranges
}
