//! The syntax tree of one `.tbt` file.
//!
//! The tree is what the parser saw, nothing more: names are not resolved and types are not known.
//! Every node carries its byte [`Span`]. After a syntax error the parser still returns a tree, with
//! `Error` nodes where it had to skip input, so the checker and the language server keep working.
//!
//! Shape: `Foo { span, kind: FooKind }` where a node has variants. Comments are not in the tree;
//! the parser returns them beside it (see [`Comment`]) for the formatter and for `##` docs.

use crate::span::Span;

/// A name as written, with its location.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The text of the name.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A dotted name: `db.query.text`, `create.order_id`, `http.server`. Segments may be keywords.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    /// At least one segment.
    pub segments: Vec<Ident>,
    /// The whole path.
    pub span: Span,
}

impl Path {
    /// The segments joined with dots.
    pub fn dotted(&self) -> String {
        let mut s = String::new();
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            s.push_str(&seg.name);
        }
        s
    }
}

/// A comment, kept beside the tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    /// The whole comment including its `#` or `##`.
    pub span: Span,
    /// True for `##` doc comments.
    pub doc: bool,
}

/// One parsed file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct File {
    /// Top-level items in source order.
    pub items: Vec<Item>,
    /// Every comment of the file, in source order.
    pub comments: Vec<Comment>,
}

/// A top-level item.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The whole item.
    pub span: Span,
    /// The text of the `##` comment lines directly above the item, without the `##` markers.
    pub doc: Option<String>,
    /// What the item is.
    pub kind: ItemKind,
}

/// The kinds of top-level items.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemKind {
    /// `import "std/http"` or `import "./lib.tbt" as lib`.
    Import(Import),
    /// `let NAME = expr` or `secret let NAME = expr`.
    Let(Let),
    /// `matcher NAME(params) = selector`.
    Matcher(Matcher),
    /// `service NAME { directives }`.
    Service(Service),
    /// `test NAME "Title" { body }`.
    Test(Test),
    /// Input the parser skipped after a syntax error.
    Error,
}

/// `import "path" [as alias]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    /// The module path as written (a string literal without interpolation).
    pub path: String,
    /// Span of the path string literal.
    pub path_span: Span,
    /// The `as` name, if any.
    pub alias: Option<Ident>,
}

/// `let` at top level, in a step, or inside an expectation block (a capture).
#[derive(Clone, Debug, PartialEq)]
pub struct Let {
    /// `secret let`.
    pub secret: bool,
    /// The bound name.
    pub name: Ident,
    /// The value.
    pub value: Expr,
}

/// `matcher NAME(p1, p2 = default) = selector`.
#[derive(Clone, Debug, PartialEq)]
pub struct Matcher {
    /// The matcher's name.
    pub name: Ident,
    /// Parameters, in order.
    pub params: Vec<Param>,
    /// The selector expression.
    pub body: Expr,
}

/// A matcher parameter: `route` or `route = null` (optional, with a default).
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The parameter's name.
    pub name: Ident,
    /// The default value, which makes the parameter optional.
    pub default: Option<Expr>,
}

/// `service NAME { run …; env K = v; ready http "…" within 60s }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// The service's name.
    pub name: Ident,
    /// Its directives; the checker validates names and arguments.
    pub body: Vec<Directive>,
}

/// A generic `NAME ARG* [= VALUE] [within EXPR]` line, used for trigger options and service
/// directives. The parser accepts any name; the checker knows which names each context allows and
/// suggests the closest one.
#[derive(Clone, Debug, PartialEq)]
pub struct Directive {
    /// The whole line.
    pub span: Span,
    /// `header`, `json`, `env`, `run`, `ready`, `timeout`, …
    pub name: Ident,
    /// Positional arguments (atoms: names, literals, lists, objects, parenthesised expressions).
    pub args: Vec<Expr>,
    /// The value after `=`.
    pub value: Option<Expr>,
    /// The expression after `within`.
    pub within: Option<Expr>,
    /// True when the parser had to recover inside this line.
    pub error: bool,
}

/// `test NAME "Title" { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Test {
    /// The test's name (used in captures, `after`, `--test`).
    pub name: Ident,
    /// Optional human title.
    pub title: Option<StrLit>,
    /// Statements: either one step's statements inline, or `step` blocks (plus test-level
    /// `after`, `timeout`, `settle`, `let`).
    pub body: Vec<Stmt>,
    /// The span of the braces.
    pub body_span: Span,
}

/// `step NAME { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The step's name.
    pub name: Ident,
    /// The statements.
    pub body: Vec<Stmt>,
    /// The span of the braces.
    pub body_span: Span,
}

/// A statement in a test or step body.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// The whole statement.
    pub span: Span,
    /// What it is.
    pub kind: StmtKind,
}

/// Statement kinds of test and step bodies.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `let NAME = expr`.
    Let(Let),
    /// `step NAME { … }` (test level only; the checker enforces it).
    Step(Step),
    /// `trigger …`.
    Trigger(Trigger),
    /// `expect …`.
    Expect(Expect),
    /// `after test_a, test_b`.
    After(Vec<Path>),
    /// `timeout 10s`.
    Timeout(Expr),
    /// `settle 200ms`.
    Settle(Expr),
    /// Input skipped after a syntax error.
    Error,
}

/// `trigger KIND ARG* [at EXPR] [{ options }]`.
///
/// The shapes per kind (checked, not parsed): `http METHOD URL`, `grpc "pkg.Svc/Method" at URL`,
/// `exec PROGRAM [ARGS]`, `trace ID`.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// `http`, `grpc`, `exec` or `trace`.
    pub kind: Ident,
    /// Positional arguments.
    pub args: Vec<Expr>,
    /// The `at` address (gRPC).
    pub at: Option<Expr>,
    /// Option lines inside the braces.
    pub options: Vec<Directive>,
    /// The braces, when present.
    pub options_span: Option<Span>,
}

/// `expect …`.
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    /// What is expected.
    pub kind: ExpectKind,
}

/// The forms of `expect`.
#[derive(Clone, Debug, PartialEq)]
pub enum ExpectKind {
    /// `expect [no] SEL [by KEY] [{ block }]`.
    Select {
        /// `expect no SEL`.
        no: bool,
        /// The selector.
        selector: Expr,
        /// `by KEY` grouping.
        by: Option<Expr>,
        /// The predicate block.
        block: Option<Block>,
    },
    /// `expect A before B` / `expect A after B`.
    Order {
        /// The first selector.
        first: Expr,
        /// `before` or `after`.
        order: Order,
        /// The second selector.
        second: Expr,
    },
    /// `expect response { … }`.
    Response(Block),
    /// `expect trace { … }`.
    Trace(Block),
}

/// Ordering in `expect A before B`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Every span of A ends before every span of B starts.
    Before,
    /// Every span of A starts after every span of B ends.
    After,
}

/// `{ pred; any pred; let x = e }` of an expectation.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// The braces.
    pub span: Span,
    /// The lines.
    pub stmts: Vec<BlockStmt>,
}

/// A line in an expectation block.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockStmt {
    /// The whole line.
    pub span: Span,
    /// What it is.
    pub kind: BlockStmtKind,
}

/// Kinds of expectation-block lines.
#[derive(Clone, Debug, PartialEq)]
pub enum BlockStmtKind {
    /// A predicate: per span, or an aggregate (`count == 1`).
    Pred(Expr),
    /// `any PRED`: holds for at least one span.
    Any(Expr),
    /// `let NAME = expr`: a capture.
    Let(Let),
    /// Input skipped after a syntax error.
    Error,
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// Where it was written.
    pub span: Span,
    /// What it is.
    pub kind: ExprKind,
}

/// Expression kinds.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A literal.
    Lit(Lit),
    /// A (dotted) name: variable, capture, built-in field or span attribute — resolved later.
    Path(Path),
    /// `f(args)` or `std.http.server(args)` or a matcher call.
    Call {
        /// The called name.
        callee: Path,
        /// Arguments.
        args: Vec<Expr>,
    },
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `{ "k": v }`.
    Object(Vec<(StrLit, Expr)>),
    /// `-e` or `not e`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// Operand.
        expr: Box<Expr>,
    },
    /// `a OP b`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Where the operator was written.
        op_span: Span,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `SEL[p1, p2]`.
    Filter {
        /// The filtered selection.
        base: Box<Expr>,
        /// Predicates, all of which must hold.
        preds: Vec<Expr>,
    },
    /// `SEL:first`, `SEL:nth(2)`, `SEL:not(OTHER)`.
    Pseudo {
        /// The selection.
        base: Box<Expr>,
        /// `first`, `last`, `nth`, `root`, `not`, `has`.
        class: Ident,
        /// The argument in parentheses.
        arg: Option<Box<Expr>>,
    },
    /// `(e)`, kept for the formatter.
    Paren(Box<Expr>),
    /// Input skipped after a syntax error.
    Error,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `not`
    Not,
}

/// Binary operators, lowest precedence first (see `docs/language.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// `|` union of selections
    Union,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`: comparison on scalars, child combinator on spans (decided by the checker)
    Gt,
    /// `>=`
    Ge,
    /// `>>` descendant combinator
    Descendant,
    /// `~>` follows-from-link combinator
    Linked,
    /// `contains`
    Contains,
    /// `matches`
    Matches,
    /// `in`
    In,
    /// `??`
    Coalesce,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Union => "|",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Descendant => ">>",
            BinaryOp::Linked => "~>",
            BinaryOp::Contains => "contains",
            BinaryOp::Matches => "matches",
            BinaryOp::In => "in",
            BinaryOp::Coalesce => "??",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }
}

/// Literals.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    /// `42`
    Int(i64),
    /// `99.99`
    Float(f64),
    /// `250ms`, stored in nanoseconds.
    Duration(u64),
    /// `true` / `false`
    Bool(bool),
    /// `null`
    Null,
    /// A string, possibly with `${…}` interpolation.
    Str(StrLit),
}

/// A string literal after escape processing.
#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    /// The whole literal including quotes.
    pub span: Span,
    /// Text and interpolated expressions in order.
    pub parts: Vec<StrPart>,
    /// How it was written (for the formatter, which keeps the form).
    pub style: StrStyle,
}

impl StrLit {
    /// The text when the literal has no interpolation.
    pub fn as_plain(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                StrPart::Text(t) => s.push_str(t),
                StrPart::Interp(_) => return None,
            }
        }
        Some(s)
    }
}

/// How a string was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrStyle {
    /// `"…"`
    Normal,
    /// `r"…"` (no escapes, no interpolation)
    Raw,
    /// `"""…"""`
    Multi,
}

/// A piece of a string literal.
#[derive(Clone, Debug, PartialEq)]
pub enum StrPart {
    /// Literal text (escapes already processed).
    Text(String),
    /// `${expr}`.
    Interp(Expr),
}
