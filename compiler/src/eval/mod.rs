//! The evaluator: the meaning of selectors and expectations over a [`Trace`].
//!
//! Pure functions: the runtime hands in a trace snapshot, the trigger's [`Response`], a [`Scope`]
//! that resolves names, and a [`Host`] for the few non-pure inputs (`env`, `uuid`, `now`). Each
//! expression is compiled once per call into an internal form whose names are already resolved
//! (constant, built-in span field, interned attribute key, regex, JSONPath), then evaluated per
//! span; nothing hashes strings per span.
//!
//! Results explain themselves ([`ExpectationResult`]): every check names the span it looked at, the
//! predicate's source span and the actual value; an empty selection lists near misses.
//!
//! # When is a verdict decided?
//! [`StepOutcome::decided`] is true when more spans can no longer change the step's verdict:
//! - when the caller says the trace is `settled`;
//! - when some expectation failed in a way later spans cannot repair ([`ExpectationResult::decided`]):
//!   a per-span predicate failed on a span of a *monotone* selection (one without `:first`,
//!   `:last`, `:nth` or `:not`, so a selected span stays selected), `expect no` found a span of a
//!   monotone selection, `count == k` / `count <= k` / `count < k` is already exceeded, `before` /
//!   `after` found a violating pair, a capture found several spans;
//! - when every expectation is decided (for example a step that only checks the `response`).
//!
//! Passing expectations on spans are never decided before settling: a later span may fail them.

mod expect;
mod functions;
mod nodes;
pub(crate) mod ops;

use std::fmt;
use std::sync::Arc;

use crate::ast;
use crate::span::Span;
use crate::trace::Trace;
use crate::value::Value;

pub use expect::evaluate_step;
pub use nodes::{evaluate_value, select};

/// Resolves names for the evaluator; supplied by the caller (checker or runtime).
///
/// Inside predicates a bare dotted name is a variable when [`Scope::value`] resolves it, else a
/// built-in span field, else an attribute (span, then resource).
pub trait Scope {
    /// The value of a variable, `let`, capture (`create.order_id`) or matcher parameter.
    fn value(&self, path: &ast::Path) -> Option<Value>;
    /// A matcher definition and the scope of its module (for `http.server(...)`).
    fn matcher(&self, path: &ast::Path) -> Option<(&ast::Matcher, &dyn Scope)>;
}

/// A scope that resolves nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmptyScope;

impl Scope for EmptyScope {
    fn value(&self, _: &ast::Path) -> Option<Value> {
        None
    }
    fn matcher(&self, _: &ast::Path) -> Option<(&ast::Matcher, &dyn Scope)> {
        None
    }
}

/// The non-pure inputs of `env()`, `uuid()` and `now()`.
pub trait Host {
    /// An environment variable.
    fn env(&self, _name: &str) -> Option<String> {
        None
    }
    /// A fresh UUID (v4, hyphenated).
    fn uuid(&self) -> String {
        "00000000-0000-4000-8000-000000000000".to_string()
    }
    /// The current time, Unix nanoseconds.
    fn now_unix_nanos(&self) -> i64 {
        0
    }
}

/// A deterministic host: no environment, a fixed UUID, time zero. For tests and the LSP.
#[derive(Clone, Copy, Debug, Default)]
pub struct PureHost;

impl Host for PureHost {}

/// What a step's trigger returned.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// `trigger http`.
    Http {
        /// HTTP status code.
        status: u16,
        /// Headers in the order received (names compared case-insensitively).
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
        /// Time to the complete response, nanoseconds.
        duration: u64,
    },
    /// `trigger grpc`.
    Grpc {
        /// gRPC status code.
        code: i32,
        /// Response metadata.
        metadata: Vec<(String, String)>,
        /// The response message as JSON.
        body: Option<serde_json::Value>,
        /// Nanoseconds.
        duration: u64,
    },
    /// `trigger exec`.
    Exec {
        /// Exit code (-1 when killed by a signal).
        exit_code: i32,
        /// Standard output.
        stdout: String,
        /// Standard error.
        stderr: String,
        /// Nanoseconds.
        duration: u64,
    },
}

impl Response {
    /// `http`, `grpc` or `exec`.
    pub fn kind(&self) -> &'static str {
        match self {
            Response::Http { .. } => "http",
            Response::Grpc { .. } => "grpc",
            Response::Exec { .. } => "exec",
        }
    }
}

/// Why an expression has no value. Cheap to create: missing attributes are the common case in
/// filters.
#[derive(Clone, Debug, PartialEq)]
pub enum EvalError {
    /// Something is absent: an attribute, a JSONPath match, an env variable. `??` catches this.
    Missing(Arc<str>),
    /// Operand types do not fit; the text says what was found.
    Type(String),
    /// Anything else (bad regex, capture on several spans, no response…).
    Msg(String),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Missing(what) => write!(f, "{what} is missing"),
            EvalError::Type(m) | EvalError::Msg(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for EvalError {}

/// One expectation to evaluate: the AST node and the source span of the whole `expect`
/// statement (the `Stmt` carries it; `ast::Expect` has none of its own).
#[derive(Clone, Copy, Debug)]
pub struct Expectation<'a> {
    /// Where the `expect` statement is written.
    pub span: Span,
    /// The expectation.
    pub expect: &'a ast::Expect,
}

/// The expectations among a step's statements, in order.
pub fn expectations_of(stmts: &[ast::Stmt]) -> Vec<Expectation<'_>> {
    stmts
        .iter()
        .filter_map(|s| match &s.kind {
            ast::StmtKind::Expect(e) => Some(Expectation {
                span: s.span,
                expect: e,
            }),
            _ => None,
        })
        .collect()
}

/// A span as reports show it.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRef {
    /// Index in the trace snapshot (report order).
    pub index: u32,
    /// Span name.
    pub name: Arc<str>,
    /// `service.name` of its resource.
    pub service: Arc<str>,
    /// Span id, lowercase hex.
    pub span_id: String,
}

impl SpanRef {
    /// The report form of span `index` of `trace`.
    pub fn new(trace: &Trace, index: u32) -> SpanRef {
        let s = trace.span(index);
        SpanRef {
            index,
            name: s.name.clone(),
            service: trace.service(index).clone(),
            span_id: crate::hex::encode(&s.span_id),
        }
    }
}

impl fmt::Display for SpanRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({}, {})", &*self.name, self.service, self.span_id)
    }
}

/// One evaluated predicate on one span (or on the response / trace / a group aggregate).
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// The span examined; `None` for response, trace and aggregate checks.
    pub span: Option<SpanRef>,
    /// Source span of the predicate.
    pub pred: Span,
    /// The actual value: the left operand of a comparison, else the predicate's value.
    pub actual: Option<Value>,
    /// Whether it held.
    pub passed: bool,
    /// Why it failed (type mismatch, missing attribute…), when there is more to say.
    pub message: Option<String>,
}

/// A span that failed exactly one predicate of a filter whose selection came out empty.
#[derive(Clone, Debug, PartialEq)]
pub struct NearMiss {
    /// The span.
    pub span: SpanRef,
    /// Source span of the predicate it failed.
    pub pred: Span,
    /// Its actual value (left operand of the comparison).
    pub actual: Option<Value>,
    /// Why it failed.
    pub message: String,
}

/// Per-group outcome of `expect SEL by KEY { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupResult {
    /// The key shared by the group.
    pub key: Value,
    /// Number of spans in the group.
    pub spans: usize,
    /// Whether the block held for this group.
    pub passed: bool,
    /// Checks of this group.
    pub checks: Vec<Check>,
}

/// The outcome of one expectation.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectationResult {
    /// Source span of the `expect` statement.
    pub span: Span,
    /// Whether it holds.
    pub passed: bool,
    /// Whether later spans can no longer change this result (see the module docs).
    pub decided: bool,
    /// A pass that later spans cannot break: spans found by a selection that can only grow,
    /// with nothing checked on them (`expect SEL` without `no`, `by` or a block). A step whose
    /// passing expectations all last need no protection against late spans.
    pub lasting: bool,
    /// One line saying what happened.
    pub message: String,
    /// Number of spans selected (0 for `response` / `trace`).
    pub selected: usize,
    /// Checks: every failing one (up to 100 per predicate), then a sample of passing ones
    /// (up to 10 per predicate). `omitted_checks` counts the rest.
    pub checks: Vec<Check>,
    /// Checks not listed in `checks`.
    pub omitted_checks: usize,
    /// For an empty selection: spans that failed exactly one predicate (at most 10).
    pub near_misses: Vec<NearMiss>,
    /// For `by`: one entry per group, in order of each group's first span.
    pub groups: Vec<GroupResult>,
}

/// All expectations of a step on one trace snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutcome {
    /// One result per expectation, in the order given.
    pub results: Vec<ExpectationResult>,
    /// Values captured by `let` in expectation blocks, in order (name without the step prefix).
    pub captures: Vec<(String, Value)>,
    /// True when more spans can no longer change the verdict (see the module docs).
    pub decided: bool,
}

impl StepOutcome {
    /// True when every expectation passed.
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }
}
