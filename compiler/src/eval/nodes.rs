//! The evaluator's nodes: expressions compiled for one trace snapshot, and their evaluation.
//!
//! (Not to be confused with [`crate::program`], the checked suite.)
//!
//! [`Compiler`] turns an `ast::Expr` into a [`Node`] with every name resolved once: scope
//! variables become constants, built-in span fields a [`Field`], attributes an interned key,
//! regexes and JSONPaths are compiled, `kind == server` becomes an enum test. [`Node::eval`] then
//! runs per span without hashing strings or allocating for the common cases. Selections are
//! sorted index lists; the combinators use the trace's pre-order intervals and link index.

use std::borrow::Cow;
use std::sync::Arc;

use regex::Regex;
use serde_json_path::JsonPath;

use crate::ast::{self, BinaryOp, ExprKind, Lit, StrPart, UnaryOp};
use crate::hex;
use crate::span::Span;
use crate::trace::{KeyId, SpanKind, StatusCode, Trace};
use crate::value::{SpanSet, Value};

use super::functions::{self, Func};
use super::ops::{self, short};
use super::{EvalError, Host, Response, Scope};

/// How deep matcher calls may nest (guards recursive matchers).
const MAX_MATCHER_DEPTH: usize = 32;
/// How deep expressions may nest before compilation gives up (guards recursion).
const MAX_EXPR_DEPTH: usize = 256;

/// Built-in span fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Name,
    Kind,
    Status,
    StatusMessage,
    Duration,
    Start,
    End,
    Service,
    TraceId,
    SpanId,
    ParentId,
    Events,
    Links,
    ScopeName,
}

impl Field {
    pub(crate) fn from_name(s: &str) -> Option<Field> {
        Some(match s {
            "name" => Field::Name,
            "kind" => Field::Kind,
            "status" => Field::Status,
            "status_message" => Field::StatusMessage,
            "duration" => Field::Duration,
            "start" => Field::Start,
            "end" => Field::End,
            "service" => Field::Service,
            "trace_id" => Field::TraceId,
            "span_id" => Field::SpanId,
            "parent_id" => Field::ParentId,
            "events" => Field::Events,
            "links" => Field::Links,
            "scope.name" => Field::ScopeName,
            _ => return None,
        })
    }
}

/// Fields of `expect response`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RespField {
    Status,
    Headers,
    Body,
    Duration,
    ExitCode,
    Stdout,
    Stderr,
}

/// Fields of `expect trace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TraceField {
    Duration,
    SpanCount,
    Services,
    Errors,
}

/// Aggregates over the selection of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Agg {
    Sum,
    Min,
    Max,
    Avg,
}

/// Where an expression is evaluated; decides what bare names mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cx {
    /// Outside any span: selectors, lets, trigger arguments.
    Selector,
    /// A per-span predicate (filters, `any`, aggregate arguments).
    Pred,
    /// A line of an expectation block on spans: per span, or an aggregate.
    Block,
    /// A line of `expect response`.
    Response,
    /// A line of `expect trace`.
    Trace,
}

/// A predicate of a filter, with its source span for explanations.
#[derive(Debug)]
pub(crate) struct Pred {
    pub node: Node,
    pub span: Span,
}

/// Pseudo-classes.
#[derive(Debug)]
pub(crate) enum PseudoKind {
    First,
    Last,
    Nth(Box<Node>),
    Root,
    Not(Box<Node>),
    Has(Box<Node>),
}

/// Span combinators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comb {
    Child,
    Descendant,
    Linked,
}

impl Comb {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Comb::Child => "a child of",
            Comb::Descendant => "a descendant of",
            Comb::Linked => "linked to",
        }
    }
}

/// An index of the trace that narrows a filter on `span` to candidates.
#[derive(Debug, Clone)]
pub(crate) enum IndexKey {
    Name(Arc<str>),
    Service(Arc<str>),
    Kind(SpanKind),
    Status(StatusCode),
}

impl IndexKey {
    fn candidates<'t>(&self, t: &'t Trace) -> &'t [u32] {
        match self {
            IndexKey::Name(n) => t.spans_named(n),
            IndexKey::Service(s) => t.spans_of_service(s),
            IndexKey::Kind(k) => t.spans_of_kind(*k),
            IndexKey::Status(s) => t.spans_with_status(*s),
        }
    }
}

/// A piece of an interpolated string.
#[derive(Debug)]
pub(crate) enum Part {
    Text(Arc<str>),
    Expr(Node),
}

/// A compiled expression.
#[derive(Debug)]
pub(crate) enum Node {
    Const(Value),
    /// A compile-time problem (unknown name, bad regex…), reported when evaluated.
    Error(Arc<str>),
    Field(Field),
    /// An attribute: interned key (None when no span has it), key text, "attribute `k`".
    Attr(Option<KeyId>, Arc<str>, Arc<str>),
    AllSpans,
    Resp(RespField),
    TraceField(TraceField),
    Count,
    Agg(Agg, Box<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    /// `== != < <= >= contains in` (and `>` on scalars).
    Cmp(BinaryOp, Box<Node>, Box<Node>),
    /// `>`: child combinator when the left side is spans, else comparison.
    GtOrChild(Box<Node>, Box<Node>),
    Comb(Comb, Box<Node>, Box<Node>),
    Union(Box<Node>, Box<Node>),
    Coalesce(Box<Node>, Box<Node>),
    Arith(BinaryOp, Box<Node>, Box<Node>),
    Matches(Box<Node>, Regex),
    MatchesDyn(Box<Node>, Box<Node>),
    /// `attr == "text"` on an attribute: compares interned pointers (bool: negated).
    AttrStrEq {
        key: Option<KeyId>,
        missing: Arc<str>,
        interned: Option<Arc<str>>,
        lit: Arc<str>,
        neg: bool,
    },
    /// `attr OP number` (`< <= > >=`) with an int column fast path; `general` decides otherwise.
    AttrNumCmp {
        key: KeyId,
        op: BinaryOp,
        rhs: Value,
        general: Box<Node>,
    },
    /// `duration OP 250ms` read straight from the span.
    DurationCmp(BinaryOp, u64),
    /// Fast paths: `name == "x"`, `service == "x"` (bool: negated).
    NameEq(Arc<str>, bool),
    ServiceEq(Arc<str>, bool),
    KindEq(SpanKind, bool),
    StatusEq(StatusCode, bool),
    List(Vec<Node>),
    Object(Vec<(Arc<str>, Node)>),
    Interp(Vec<Part>),
    Call(Func, Vec<Node>),
    /// `json(path)` on the response (target `None`) or `json(value, path)`.
    Json(Option<Box<Node>>, Arc<JsonPath>, Arc<str>),
    RegexGroup(Box<Node>, Regex, Box<Node>),
    /// `base[preds]`; `by_name` names an index that yields candidates (from a `name == "x"`,
    /// `service == "x"`, `kind == k` or `status == s` predicate on `span`).
    Filter {
        base: Box<Node>,
        preds: Vec<Pred>,
        by_name: Option<(IndexKey, usize)>,
    },
    Pseudo(Box<Node>, PseudoKind),
}

/// What an evaluation may look at.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    pub trace: &'a Trace,
    pub response: Option<&'a Response>,
    pub host: &'a dyn Host,
    pub span: Option<u32>,
    pub group: Option<&'a [u32]>,
}

impl<'a> Env<'a> {
    pub(crate) fn at(&self, span: u32) -> Env<'a> {
        Env {
            span: Some(span),
            ..*self
        }
    }
}

/// Compiles expressions against one trace (attribute keys are interned per trace).
pub(crate) struct Compiler<'t> {
    pub trace: &'t Trace,
    pub host: &'t dyn Host,
    pub response: Option<&'t Response>,
    depth: usize,
    matcher_depth: usize,
}

/// A scope that binds matcher parameters over the matcher's module scope.
struct ParamScope<'s> {
    params: Vec<(String, Value)>,
    inner: &'s dyn Scope,
}

impl Scope for ParamScope<'_> {
    fn value(&self, path: &ast::Path) -> Option<Value> {
        if path.segments.len() == 1
            && let Some((_, v)) = self
                .params
                .iter()
                .find(|(n, _)| *n == path.segments[0].name)
        {
            return Some(v.clone());
        }
        self.inner.value(path)
    }
    fn matcher(&self, path: &ast::Path) -> Option<(&ast::Matcher, &dyn Scope)> {
        self.inner.matcher(path)
    }
}

fn err(msg: impl Into<String>) -> Node {
    Node::Error(Arc::from(msg.into()))
}

fn single_name(e: &ast::Expr) -> Option<&ast::Path> {
    match &e.kind {
        ExprKind::Path(p) if p.segments.len() == 1 => Some(p),
        ExprKind::Paren(inner) => single_name(inner),
        _ => None,
    }
}

fn kind_const(s: &str) -> Option<SpanKind> {
    Some(match s {
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        "internal" => SpanKind::Internal,
        "unspecified" => SpanKind::Unspecified,
        _ => return None,
    })
}

fn status_const(s: &str) -> Option<StatusCode> {
    Some(match s {
        "ok" => StatusCode::Ok,
        "error" => StatusCode::Error,
        "unset" => StatusCode::Unset,
        _ => return None,
    })
}

impl<'t> Compiler<'t> {
    pub(crate) fn new(
        trace: &'t Trace,
        response: Option<&'t Response>,
        host: &'t dyn Host,
    ) -> Self {
        Compiler {
            trace,
            host,
            response,
            depth: 0,
            matcher_depth: 0,
        }
    }

    fn env(&self) -> Env<'t> {
        Env {
            trace: self.trace,
            response: self.response,
            host: self.host,
            span: None,
            group: None,
        }
    }

    pub(crate) fn compile(&mut self, e: &ast::Expr, scope: &dyn Scope, cx: Cx) -> Node {
        if self.depth >= MAX_EXPR_DEPTH {
            return err("expression nested too deeply");
        }
        self.depth += 1;
        let n = self.compile_inner(e, scope, cx);
        self.depth -= 1;
        n
    }

    fn compile_inner(&mut self, e: &ast::Expr, scope: &dyn Scope, cx: Cx) -> Node {
        match &e.kind {
            ExprKind::Lit(l) => match l {
                Lit::Int(i) => Node::Const(Value::Int(*i)),
                Lit::Float(f) => Node::Const(Value::Float(*f)),
                Lit::Duration(d) => Node::Const(Value::Duration(*d)),
                Lit::Bool(b) => Node::Const(Value::Bool(*b)),
                Lit::Null => Node::Const(Value::Null),
                Lit::Str(s) => self.compile_str(s, scope, cx),
            },
            ExprKind::Path(p) => self.compile_path(p, scope, cx),
            ExprKind::Call { callee, args } => self.compile_call(callee, args, scope, cx),
            ExprKind::List(items) => {
                let nodes: Vec<Node> = items.iter().map(|i| self.compile(i, scope, cx)).collect();
                fold_const(Node::List(nodes))
            }
            ExprKind::Object(fields) => {
                let mut out = Vec::with_capacity(fields.len());
                for (k, v) in fields {
                    let Some(key) = k.as_plain() else {
                        return err("object keys cannot interpolate");
                    };
                    out.push((Arc::from(key), self.compile(v, scope, cx)));
                }
                fold_const(Node::Object(out))
            }
            ExprKind::Unary { op, expr } => {
                let inner = Box::new(self.compile(expr, scope, cx));
                match op {
                    UnaryOp::Neg => Node::Neg(inner),
                    UnaryOp::Not => Node::Not(inner),
                }
            }
            ExprKind::Binary { op, lhs, rhs, .. } => self.compile_binary(*op, lhs, rhs, scope, cx),
            ExprKind::Filter { base, preds } => {
                let base = self.compile(base, scope, cx_outside(cx));
                let preds: Vec<Pred> = preds
                    .iter()
                    .map(|p| Pred {
                        node: self.compile(p, scope, Cx::Pred),
                        span: p.span,
                    })
                    .collect();
                let by_name = match &base {
                    Node::AllSpans => preds
                        .iter()
                        .enumerate()
                        .filter_map(|(i, p)| match &p.node {
                            Node::NameEq(n, false) => Some((IndexKey::Name(n.clone()), i)),
                            Node::ServiceEq(n, false) => Some((IndexKey::Service(n.clone()), i)),
                            Node::KindEq(k, false) => Some((IndexKey::Kind(*k), i)),
                            Node::StatusEq(k, false) => Some((IndexKey::Status(*k), i)),
                            _ => None,
                        })
                        .min_by_key(|(k, _)| k.candidates(self.trace).len()),
                    _ => None,
                };
                Node::Filter {
                    base: Box::new(base),
                    preds,
                    by_name,
                }
            }
            ExprKind::Pseudo { base, class, arg } => {
                let base = Box::new(self.compile(base, scope, cx_outside(cx)));
                let arg_node = |me: &mut Self| {
                    arg.as_ref()
                        .map(|a| Box::new(me.compile(a, scope, cx_outside(cx))))
                };
                let kind = match class.name.as_str() {
                    "first" => PseudoKind::First,
                    "last" => PseudoKind::Last,
                    "root" => PseudoKind::Root,
                    "nth" => match arg_node(self) {
                        Some(a) => PseudoKind::Nth(a),
                        None => return err("`:nth` needs an argument, e.g. `:nth(2)` (1-based)"),
                    },
                    "not" => match arg_node(self) {
                        Some(a) => PseudoKind::Not(a),
                        None => {
                            return err(
                                "`:not` needs a selector, e.g. `:not(span[status == error])`",
                            );
                        }
                    },
                    "has" => match arg_node(self) {
                        Some(a) => PseudoKind::Has(a),
                        None => return err("`:has` needs a selector, e.g. `:has(db.query())`"),
                    },
                    other => {
                        return err(format!(
                            "unknown pseudo-class `:{other}` (known: first, last, nth, root, not, has)"
                        ));
                    }
                };
                Node::Pseudo(base, kind)
            }
            ExprKind::Paren(inner) => self.compile(inner, scope, cx),
            ExprKind::Error => err("this expression did not parse"),
        }
    }

    fn compile_str(&mut self, s: &ast::StrLit, scope: &dyn Scope, cx: Cx) -> Node {
        if let Some(plain) = s.as_plain() {
            return Node::Const(Value::str(&plain));
        }
        let parts = s
            .parts
            .iter()
            .map(|p| match p {
                StrPart::Text(t) => Part::Text(Arc::from(t.as_str())),
                StrPart::Interp(e) => Part::Expr(self.compile(e, scope, cx)),
            })
            .collect();
        Node::Interp(parts)
    }

    fn compile_path(&mut self, p: &ast::Path, scope: &dyn Scope, cx: Cx) -> Node {
        if let Some(v) = scope.value(p) {
            return Node::Const(v);
        }
        let dotted = p.dotted();
        let single = p.segments.len() == 1;
        if single && dotted == "span" {
            return Node::AllSpans;
        }
        match cx {
            Cx::Pred | Cx::Block => {
                if cx == Cx::Block && single && dotted == "count" {
                    return Node::Count;
                }
                if let Some(f) = Field::from_name(&dotted) {
                    return Node::Field(f);
                }
                attr_node(self.trace, &dotted)
            }
            Cx::Response => match dotted.as_str() {
                "status" => Node::Resp(RespField::Status),
                "headers" => Node::Resp(RespField::Headers),
                "body" => Node::Resp(RespField::Body),
                "duration" => Node::Resp(RespField::Duration),
                "exit_code" => Node::Resp(RespField::ExitCode),
                "stdout" => Node::Resp(RespField::Stdout),
                "stderr" => Node::Resp(RespField::Stderr),
                _ => err(format!(
                    "unknown name `{dotted}` (response fields: status, headers, body, duration, exit_code, stdout, stderr)"
                )),
            },
            Cx::Trace => match dotted.as_str() {
                "duration" => Node::TraceField(TraceField::Duration),
                "span_count" => Node::TraceField(TraceField::SpanCount),
                "services" => Node::TraceField(TraceField::Services),
                "errors" => Node::TraceField(TraceField::Errors),
                _ => err(format!(
                    "unknown name `{dotted}` (trace fields: duration, span_count, services, errors)"
                )),
            },
            Cx::Selector => {
                if let Some((m, ms)) = scope.matcher(p)
                    && m.params.is_empty()
                {
                    return self.expand_matcher(m, ms, &[], scope, cx);
                }
                err(format!("unknown name `{dotted}`"))
            }
        }
    }

    fn compile_binary(
        &mut self,
        op: BinaryOp,
        lhs: &ast::Expr,
        rhs: &ast::Expr,
        scope: &dyn Scope,
        cx: Cx,
    ) -> Node {
        let l = self.compile(lhs, scope, cx);
        // `kind in [server, client]`: the list's bare names are constants of the field, too.
        if op == BinaryOp::In
            && let Node::Field(f @ (Field::Kind | Field::Status)) = l
            && let ExprKind::List(items) = &rhs.kind
        {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match single_name(item).filter(|p| scope.value(p).is_none()) {
                    Some(p) => {
                        let name = &p.segments[0].name;
                        let known = match f {
                            Field::Kind => kind_const(name).is_some(),
                            _ => status_const(name).is_some(),
                        };
                        if !known {
                            return err(format!(
                                "`{name}` is not a span {}",
                                if f == Field::Kind { "kind" } else { "status" }
                            ));
                        }
                        values.push(Value::str(name));
                    }
                    None => match self.compile(item, scope, cx) {
                        Node::Const(v) => values.push(v),
                        _ => {
                            return Node::Cmp(
                                op,
                                Box::new(l),
                                Box::new(self.compile(rhs, scope, cx)),
                            );
                        }
                    },
                }
            }
            return Node::Cmp(
                op,
                Box::new(l),
                Box::new(Node::Const(Value::List(values.into()))),
            );
        }
        let mut r = self.compile(rhs, scope, cx);
        if matches!(op, BinaryOp::Eq | BinaryOp::Ne) {
            let neg = op == BinaryOp::Ne;
            // `kind == server` / `status == error`: the constant is resolved by the other side.
            let mut l = l;
            for swap in [false, true] {
                let (field_side, other_expr) = if swap { (&r, lhs) } else { (&l, rhs) };
                if let Node::Field(f @ (Field::Kind | Field::Status)) = field_side {
                    let f = *f;
                    if let Some(p) = single_name(other_expr)
                        && scope.value(p).is_none()
                    {
                        let name = &p.segments[0].name;
                        let c = match f {
                            Field::Kind => kind_const(name).map(|_| Value::str(name)),
                            _ => status_const(name).map(|_| Value::str(name)),
                        };
                        match c {
                            Some(v) if swap => l = Node::Const(v),
                            Some(v) => r = Node::Const(v),
                            None => {
                                let known = if f == Field::Kind {
                                    "server, client, producer, consumer, internal"
                                } else {
                                    "ok, error, unset"
                                };
                                return err(format!(
                                    "`{name}` is not a span {} (known: {known})",
                                    if f == Field::Kind { "kind" } else { "status" }
                                ));
                            }
                        }
                    }
                }
            }
            return self.attr_str_eq(fast_eq(l, r, neg));
        }
        let (l, r) = (Box::new(l), Box::new(r));
        match op {
            BinaryOp::And => Node::And(l, r),
            BinaryOp::Or => Node::Or(l, r),
            BinaryOp::Union => Node::Union(l, r),
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Ge | BinaryOp::Gt => fast_order(op, l, r),
            BinaryOp::Contains | BinaryOp::In => Node::Cmp(op, l, r),
            BinaryOp::Descendant => Node::Comb(Comb::Descendant, l, r),
            BinaryOp::Linked => Node::Comb(Comb::Linked, l, r),
            BinaryOp::Matches => match *r {
                Node::Const(Value::Str(ref re)) => match Regex::new(re) {
                    Ok(re) => Node::Matches(l, re),
                    Err(e) => err(format!("invalid regex {re:?}: {e}")),
                },
                _ => Node::MatchesDyn(l, r),
            },
            BinaryOp::Coalesce => Node::Coalesce(l, r),
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => Node::Arith(op, l, r),
            BinaryOp::Eq | BinaryOp::Ne => unreachable_node(),
        }
    }

    /// `attr == "text"`: resolve the text to the trace's interned copy once, so each span costs
    /// a pointer comparison instead of a string comparison.
    fn attr_str_eq(&self, n: Node) -> Node {
        let Node::Cmp(op @ (BinaryOp::Eq | BinaryOp::Ne), l, r) = n else {
            return n;
        };
        let (attr, lit) = match (*l, *r) {
            (a @ Node::Attr(..), Node::Const(Value::Str(s)))
            | (Node::Const(Value::Str(s)), a @ Node::Attr(..)) => (a, s),
            (l, r) => return Node::Cmp(op, Box::new(l), Box::new(r)),
        };
        let Node::Attr(key, _, missing) = attr else {
            return err("internal: attribute expected");
        };
        let interned = self.trace.interned(&lit).cloned();
        Node::AttrStrEq {
            key,
            missing,
            interned,
            lit,
            neg: op == BinaryOp::Ne,
        }
    }

    fn compile_call(
        &mut self,
        callee: &ast::Path,
        args: &[ast::Expr],
        scope: &dyn Scope,
        cx: Cx,
    ) -> Node {
        if let Some((m, ms)) = scope.matcher(callee) {
            return self.expand_matcher(m, ms, args, scope, cx);
        }
        let name = callee.dotted();
        let Some(sig) = functions::lookup(&name) else {
            return err(format!("unknown function or matcher `{name}`"));
        };
        if args.len() < sig.min_args || args.len() > sig.max_args {
            return err(format!(
                "`{name}` takes {} argument{}, not {} (example: {})",
                if sig.min_args == sig.max_args {
                    sig.min_args.to_string()
                } else {
                    format!("{} to {}", sig.min_args, sig.max_args)
                },
                if sig.max_args == 1 { "" } else { "s" },
                args.len(),
                sig.example
            ));
        }
        let Some(func) = functions::func_of(&name) else {
            return err(format!(
                "the function `{name}` has no implementation in the evaluator"
            ));
        };
        let inner_cx = if cx == Cx::Block { Cx::Pred } else { cx };
        match func {
            Func::Count => {
                if cx == Cx::Block {
                    Node::Count
                } else {
                    err("`count` is an aggregate: use it in an expectation block")
                }
            }
            Func::Sum | Func::Min | Func::Max | Func::Avg => {
                if cx != Cx::Block {
                    return err(format!(
                        "`{name}` is an aggregate: use it in an expectation block on spans"
                    ));
                }
                let agg = match func {
                    Func::Sum => Agg::Sum,
                    Func::Min => Agg::Min,
                    Func::Max => Agg::Max,
                    _ => Agg::Avg,
                };
                Node::Agg(agg, Box::new(self.compile(&args[0], scope, Cx::Pred)))
            }
            Func::Attr => {
                let a = self.compile(&args[0], scope, inner_cx);
                match a {
                    Node::Const(Value::Str(k)) => attr_node(self.trace, &k),
                    other => Node::Call(Func::Attr, vec![other]),
                }
            }
            Func::Json => {
                let (target, path_expr) = if args.len() == 2 {
                    (
                        Some(Box::new(self.compile(&args[0], scope, inner_cx))),
                        &args[1],
                    )
                } else {
                    if cx != Cx::Response && cx != Cx::Selector {
                        return err(
                            "`json(path)` reads the response body; on a span write `json(attr, path)`",
                        );
                    }
                    (None, &args[0])
                };
                match self.compile(path_expr, scope, inner_cx) {
                    Node::Const(Value::Str(p)) => match JsonPath::parse(&p) {
                        Ok(jp) => Node::Json(target, Arc::new(jp), p),
                        Err(e) => err(format!("invalid JSONPath {p:?}: {e}")),
                    },
                    _ => err("the JSONPath of `json` must be a constant string"),
                }
            }
            Func::RegexGroup => {
                let s = Box::new(self.compile(&args[0], scope, inner_cx));
                // The group is optional (default 1), as the signature says.
                let n = Box::new(match args.get(2) {
                    Some(g) => self.compile(g, scope, inner_cx),
                    None => Node::Const(Value::Int(1)),
                });
                match self.compile(&args[1], scope, inner_cx) {
                    Node::Const(Value::Str(re)) => match Regex::new(&re) {
                        Ok(re) => Node::RegexGroup(s, re, n),
                        Err(e) => err(format!("invalid regex {re:?}: {e}")),
                    },
                    _ => err("the regex of `regex_group` must be a constant string"),
                }
            }
            Func::Header | Func::Metadata if cx != Cx::Response && cx != Cx::Selector => err(
                format!("`{name}` reads the response: use it in `expect response`"),
            ),
            f => {
                let nodes: Vec<Node> = args
                    .iter()
                    .map(|a| self.compile(a, scope, inner_cx))
                    .collect();
                Node::Call(f, nodes)
            }
        }
    }

    fn expand_matcher(
        &mut self,
        m: &ast::Matcher,
        ms: &dyn Scope,
        args: &[ast::Expr],
        scope: &dyn Scope,
        cx: Cx,
    ) -> Node {
        let required = m.params.iter().filter(|p| p.default.is_none()).count();
        if args.len() < required || args.len() > m.params.len() {
            let n = if required == m.params.len() {
                required.to_string()
            } else {
                format!("{required} to {}", m.params.len())
            };
            return err(format!(
                "matcher `{}` takes {n} argument{}, not {}",
                m.name.name,
                if m.params.len() == 1 { "" } else { "s" },
                args.len()
            ));
        }
        if self.matcher_depth >= MAX_MATCHER_DEPTH {
            return err(format!(
                "matcher `{}` expands too deeply (recursive matcher?)",
                m.name.name
            ));
        }
        let mut params = Vec::with_capacity(m.params.len());
        for (k, p) in m.params.iter().enumerate() {
            // An argument is evaluated in the caller's scope, a default in the matcher's module.
            let node = match (args.get(k), &p.default) {
                (Some(a), _) => self.compile(a, scope, cx_outside(cx)),
                (None, Some(d)) => self.compile(d, ms, Cx::Selector),
                (None, None) => return err("internal: missing matcher argument"),
            };
            match node.eval(&self.env()) {
                Ok(v) => params.push((p.name.name.clone(), v.into_owned())),
                Err(e) => {
                    return err(format!(
                        "argument `{}` of matcher `{}`: {e}",
                        p.name.name, m.name.name
                    ));
                }
            }
        }
        let ps = ParamScope { params, inner: ms };
        self.matcher_depth += 1;
        let body = self.compile(&m.body, &ps, Cx::Selector);
        self.matcher_depth -= 1;
        body
    }
}

fn attr_node(trace: &Trace, key: &str) -> Node {
    Node::Attr(
        trace.key_id(key),
        Arc::from(key),
        Arc::from(format!("attribute `{key}`")),
    )
}

fn unreachable_node() -> Node {
    err("internal: equality handled above")
}

/// Selections and values computed outside the current span.
fn cx_outside(cx: Cx) -> Cx {
    match cx {
        Cx::Response | Cx::Trace => cx,
        _ => Cx::Selector,
    }
}

/// `< <= > >=` with fast paths for `duration OP literal` and `attribute OP number`.
fn fast_order(op: BinaryOp, l: Box<Node>, r: Box<Node>) -> Node {
    match (l.as_ref(), r.as_ref()) {
        (Node::Field(Field::Duration), Node::Const(Value::Duration(d))) => {
            Node::DurationCmp(op, *d)
        }
        (Node::Attr(Some(key), ..), Node::Const(v @ (Value::Int(_) | Value::Float(_)))) => {
            let (key, rhs) = (*key, v.clone());
            let general = Box::new(if op == BinaryOp::Gt {
                Node::GtOrChild(l, r)
            } else {
                Node::Cmp(op, l, r)
            });
            Node::AttrNumCmp {
                key,
                op,
                rhs,
                general,
            }
        }
        _ if op == BinaryOp::Gt => Node::GtOrChild(l, r),
        _ => Node::Cmp(op, l, r),
    }
}

fn order_holds(op: BinaryOp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        BinaryOp::Lt => o == Less,
        BinaryOp::Le => o != Greater,
        BinaryOp::Gt => o == Greater,
        _ => o != Less,
    }
}

fn fast_eq(l: Node, r: Node, neg: bool) -> Node {
    match (l, r) {
        (Node::Field(Field::Name), Node::Const(Value::Str(s)))
        | (Node::Const(Value::Str(s)), Node::Field(Field::Name)) => Node::NameEq(s, neg),
        (Node::Field(Field::Service), Node::Const(Value::Str(s)))
        | (Node::Const(Value::Str(s)), Node::Field(Field::Service)) => Node::ServiceEq(s, neg),
        (Node::Field(Field::Kind), Node::Const(Value::Str(s)))
        | (Node::Const(Value::Str(s)), Node::Field(Field::Kind))
            if kind_const(&s).is_some() =>
        {
            Node::KindEq(kind_const(&s).unwrap_or(SpanKind::Unspecified), neg)
        }
        (Node::Field(Field::Status), Node::Const(Value::Str(s)))
        | (Node::Const(Value::Str(s)), Node::Field(Field::Status))
            if status_const(&s).is_some() =>
        {
            Node::StatusEq(status_const(&s).unwrap_or(StatusCode::Unset), neg)
        }
        (l, r) => Node::Cmp(
            if neg { BinaryOp::Ne } else { BinaryOp::Eq },
            Box::new(l),
            Box::new(r),
        ),
    }
}

/// Lists and objects of constants become constants.
fn fold_const(n: Node) -> Node {
    match n {
        Node::List(items) if items.iter().all(|i| matches!(i, Node::Const(_))) => {
            Node::Const(Value::List(
                items
                    .into_iter()
                    .map(|i| {
                        if let Node::Const(v) = i {
                            v
                        } else {
                            Value::Null
                        }
                    })
                    .collect(),
            ))
        }
        Node::Object(fields) if fields.iter().all(|(_, i)| matches!(i, Node::Const(_))) => {
            Node::Const(Value::Object(
                fields
                    .into_iter()
                    .map(|(k, i)| {
                        (
                            k,
                            if let Node::Const(v) = i {
                                v
                            } else {
                                Value::Null
                            },
                        )
                    })
                    .collect(),
            ))
        }
        n => n,
    }
}

type R<'a> = Result<Cow<'a, Value>, EvalError>;

fn no_span(what: &str) -> EvalError {
    EvalError::Msg(format!(
        "`{what}` is a span field, but there is no current span here"
    ))
}

fn spans_of<'v>(v: &'v Value, side: &str) -> Result<&'v SpanSet, EvalError> {
    match v {
        Value::Spans(s) => Ok(s),
        other => Err(EvalError::Type(format!(
            "{side} must be spans, found {} {}",
            other.type_name(),
            short(other)
        ))),
    }
}

impl Node {
    /// Evaluates to a selection (type error otherwise).
    pub(crate) fn eval_spans(&self, env: &Env<'_>) -> Result<SpanSet, EvalError> {
        let v = self.eval(env)?;
        match v.as_ref() {
            Value::Spans(s) => Ok(s.clone()),
            other => Err(EvalError::Type(format!(
                "expected spans, found {} {}",
                other.type_name(),
                short(other)
            ))),
        }
    }

    /// Evaluates a predicate on a span: `Ok(true)` only for `true`.
    pub(crate) fn test(&self, env: &Env<'_>) -> Result<bool, EvalError> {
        match self {
            Node::NameEq(n, neg) => {
                let i = env.span.ok_or_else(|| no_span("name"))?;
                Ok((*env.trace.span(i).name == **n) != *neg)
            }
            Node::ServiceEq(n, neg) => {
                let i = env.span.ok_or_else(|| no_span("service"))?;
                Ok((**env.trace.service(i) == **n) != *neg)
            }
            Node::KindEq(k, neg) => {
                let i = env.span.ok_or_else(|| no_span("kind"))?;
                Ok((env.trace.kind_of(i) == *k) != *neg)
            }
            Node::StatusEq(s, neg) => {
                let i = env.span.ok_or_else(|| no_span("status"))?;
                Ok((env.trace.status_of_span(i) == *s) != *neg)
            }
            Node::And(a, b) => Ok(a.test(env)? && b.test(env)?),
            Node::Or(a, b) => Ok(a.test(env)? || b.test(env)?),
            Node::Not(a) => Ok(!a.test(env)?),
            Node::AttrStrEq {
                key,
                missing,
                interned,
                lit,
                neg,
            } => {
                let i = env.span.ok_or_else(|| no_span("an attribute"))?;
                // Fast path: the string column answers without touching the span record.
                if lit.len() <= Trace::INTERN_MAX_LEN
                    && let Some(col) = key.and_then(|k| env.trace.str_column(k))
                {
                    match col[i as usize] {
                        // on the resource, or not a string: the general path decides
                        code if code == 0 || code & 1 == 1 || code == 2 => {}
                        code => {
                            let same = interned
                                .as_ref()
                                .is_some_and(|p| crate::trace::str_code(p) == code);
                            return Ok(same != *neg);
                        }
                    }
                }
                match key.and_then(|k| env.trace.attr(i, k)) {
                    Some(Value::Str(s)) => {
                        let same = if lit.len() <= Trace::INTERN_MAX_LEN {
                            interned.as_ref().is_some_and(|p| Arc::ptr_eq(p, s))
                        } else {
                            **s == **lit
                        };
                        Ok(same != *neg)
                    }
                    Some(other) => {
                        ops::values_equal(other, &Value::Str(lit.clone())).map(|b| b != *neg)
                    }
                    None => Err(EvalError::Missing(missing.clone())),
                }
            }
            Node::Cmp(op, a, b) => cmp_bool(*op, &*a.eval(env)?, &*b.eval(env)?),
            Node::DurationCmp(op, d) => {
                let i = env.span.ok_or_else(|| no_span("duration"))?;
                Ok(order_holds(*op, env.trace.duration_of(i).cmp(d)))
            }
            Node::AttrNumCmp {
                key,
                op,
                rhs,
                general,
            } => {
                if let (Some(i), Some(col)) = (env.span, env.trace.str_column(*key)) {
                    let code = col[i as usize];
                    if code & 1 == 1 {
                        let x = crate::trace::int_of_code(code);
                        let o = match rhs {
                            Value::Int(y) => Some(x.cmp(y)),
                            other => (x as f64).partial_cmp(&other.as_f64().unwrap_or(f64::NAN)),
                        };
                        return Ok(o.is_some_and(|o| order_holds(*op, o)));
                    }
                }
                general.test(env)
            }
            _ => ops::truth(self.eval(env)?.as_ref(), "a predicate"),
        }
    }

    /// The value shown as "actual" for this predicate: the left operand of a comparison; for
    /// `or`, its last alternative's; for `and`, the first failing part's.
    pub(crate) fn actual(&self, env: &Env<'_>) -> Option<Value> {
        let side = match self {
            Node::Cmp(_, l, _)
            | Node::GtOrChild(l, _)
            | Node::Matches(l, _)
            | Node::MatchesDyn(l, _) => l.as_ref(),
            Node::NameEq(..) => &Node::Field(Field::Name),
            Node::ServiceEq(..) => &Node::Field(Field::Service),
            Node::KindEq(..) => &Node::Field(Field::Kind),
            Node::StatusEq(..) => &Node::Field(Field::Status),
            Node::Not(inner) => return inner.actual(env),
            // `x == null or ATTR == x` (the standard library's optional parameters): the last
            // alternative is the test of the span, and its value is what the reader needs.
            Node::Or(a, b) => return b.actual(env).or_else(|| a.actual(env)),
            // The first part that does not hold says why.
            Node::And(a, b) => {
                return match a.test(env) {
                    Ok(true) => b.actual(env),
                    _ => a.actual(env),
                };
            }
            Node::AttrNumCmp { general, .. } => return general.actual(env),
            Node::DurationCmp(..) => &Node::Field(Field::Duration),
            Node::AttrStrEq { key, .. } => {
                return env
                    .span
                    .and_then(|i| key.and_then(|k| env.trace.attr(i, k)))
                    .cloned();
            }
            other => other,
        };
        side.eval(env).ok().map(Cow::into_owned)
    }

    /// True when adding spans can only add to this selection (no `:first :last :nth :not`).
    pub(crate) fn is_monotone(&self) -> bool {
        match self {
            Node::AllSpans | Node::Const(_) | Node::Error(_) => true,
            Node::Filter { base, preds, .. } => {
                base.is_monotone() && preds.iter().all(|p| !p.node.reads_selection())
            }
            Node::Comb(_, a, b) | Node::Union(a, b) | Node::GtOrChild(a, b) => {
                a.is_monotone() && b.is_monotone()
            }
            Node::Pseudo(base, k) => match k {
                PseudoKind::Root => base.is_monotone(),
                PseudoKind::Has(a) => base.is_monotone() && a.is_monotone(),
                _ => false,
            },
            _ => false,
        }
    }

    /// True when the node evaluates a selection (so its value depends on other spans).
    pub(crate) fn reads_selection(&self) -> bool {
        match self {
            Node::AllSpans
            | Node::Filter { .. }
            | Node::Pseudo(..)
            | Node::Comb(..)
            | Node::Union(..) => true,
            Node::Count | Node::Agg(..) | Node::TraceField(_) => true,
            Node::Not(a) | Node::Neg(a) => a.reads_selection(),
            Node::And(a, b)
            | Node::Or(a, b)
            | Node::Cmp(_, a, b)
            | Node::GtOrChild(a, b)
            | Node::Coalesce(a, b)
            | Node::Arith(_, a, b)
            | Node::MatchesDyn(a, b) => a.reads_selection() || b.reads_selection(),
            Node::Matches(a, _) => a.reads_selection(),
            Node::RegexGroup(a, _, b) => a.reads_selection() || b.reads_selection(),
            Node::Json(t, ..) => t.as_ref().is_some_and(|t| t.reads_selection()),
            Node::List(items) | Node::Call(_, items) => items.iter().any(Node::reads_selection),
            Node::Object(f) => f.iter().any(|(_, n)| n.reads_selection()),
            Node::Interp(parts) => parts
                .iter()
                .any(|p| matches!(p, Part::Expr(n) if n.reads_selection())),
            _ => false,
        }
    }

    /// True when the node aggregates over the block's selection (evaluated once per group).
    pub(crate) fn is_aggregate(&self) -> bool {
        match self {
            Node::Count | Node::Agg(..) => true,
            Node::Not(a) | Node::Neg(a) => a.is_aggregate(),
            Node::And(a, b)
            | Node::Or(a, b)
            | Node::Cmp(_, a, b)
            | Node::GtOrChild(a, b)
            | Node::Coalesce(a, b)
            | Node::Arith(_, a, b)
            | Node::MatchesDyn(a, b) => a.is_aggregate() || b.is_aggregate(),
            Node::Matches(a, _) => a.is_aggregate(),
            Node::RegexGroup(a, _, b) => a.is_aggregate() || b.is_aggregate(),
            Node::Json(t, ..) => t.as_ref().is_some_and(|t| t.is_aggregate()),
            Node::List(items) | Node::Call(_, items) => items.iter().any(Node::is_aggregate),
            Node::Object(f) => f.iter().any(|(_, n)| n.is_aggregate()),
            Node::Interp(parts) => parts
                .iter()
                .any(|p| matches!(p, Part::Expr(n) if n.is_aggregate())),
            _ => false,
        }
    }

    /// Evaluates the node.
    pub(crate) fn eval<'a>(&'a self, env: &Env<'a>) -> R<'a> {
        use Cow::{Borrowed, Owned};
        match self {
            Node::Const(v) => Ok(Borrowed(v)),
            Node::Error(m) => Err(EvalError::Msg(m.to_string())),
            Node::Field(f) => {
                let i = env.span.ok_or_else(|| no_span(field_name(*f)))?;
                Ok(Owned(field_value(env.trace, i, *f)))
            }
            Node::Attr(key, name, missing) => {
                let i = env.span.ok_or_else(|| {
                    EvalError::Msg(format!(
                        "`{name}` would be a span attribute, but there is no current span here"
                    ))
                })?;
                match key.and_then(|k| env.trace.attr(i, k)) {
                    Some(v) => Ok(Borrowed(v)),
                    None => Err(EvalError::Missing(missing.clone())),
                }
            }
            Node::AllSpans => Ok(Owned(Value::Spans(SpanSet::from_sorted(
                (0..env.trace.len() as u32).collect(),
            )))),
            Node::Resp(f) => resp_field(env.response, *f).map(Owned),
            Node::TraceField(f) => Ok(Owned(trace_field(env.trace, *f))),
            Node::Count => match env.group {
                Some(g) => Ok(Owned(Value::Int(g.len() as i64))),
                None => Err(EvalError::Msg("`count` needs a selection".into())),
            },
            Node::Agg(kind, inner) => aggregate(*kind, inner, env).map(Owned),
            Node::Not(_)
            | Node::And(..)
            | Node::Or(..)
            | Node::NameEq(..)
            | Node::ServiceEq(..)
            | Node::KindEq(..)
            | Node::StatusEq(..)
            | Node::AttrStrEq { .. }
            | Node::DurationCmp(..)
            | Node::AttrNumCmp { .. } => Ok(Owned(Value::Bool(self.test(env)?))),
            Node::Neg(a) => ops::negate(&*a.eval(env)?).map(Owned),
            Node::Cmp(op, a, b) => Ok(Owned(Value::Bool(cmp_bool(
                *op,
                &*a.eval(env)?,
                &*b.eval(env)?,
            )?))),
            Node::GtOrChild(a, b) => {
                let x = a.eval(env)?;
                if let Value::Spans(sa) = x.as_ref() {
                    let y = b.eval(env)?;
                    let sb = spans_of(&y, "the right side of `>`")?;
                    return Ok(Owned(Value::Spans(combine(env.trace, Comb::Child, sa, sb))));
                }
                let y = b.eval(env)?;
                Ok(Owned(Value::Bool(ops::compare(BinaryOp::Gt, &x, &y)?)))
            }
            Node::Comb(c, a, b) => {
                let (x, y) = (a.eval(env)?, b.eval(env)?);
                let sa = spans_of(&x, "the left side of a combinator")?;
                let sb = spans_of(&y, "the right side of a combinator")?;
                Ok(Owned(Value::Spans(combine(env.trace, *c, sa, sb))))
            }
            Node::Union(a, b) => {
                let (x, y) = (a.eval(env)?, b.eval(env)?);
                let sa = spans_of(&x, "the left side of `|`")?;
                let sb = spans_of(&y, "the right side of `|`")?;
                Ok(Owned(Value::Spans(ops::union(sa, sb))))
            }
            Node::Coalesce(a, b) => match a.eval(env) {
                Ok(v) if !matches!(v.as_ref(), Value::Null) => Ok(v),
                Ok(_) | Err(EvalError::Missing(_)) => b.eval(env),
                Err(e) => Err(e),
            },
            Node::Arith(op, a, b) => {
                let (x, y) = (a.eval(env)?, b.eval(env)?);
                ops::arith(*op, &x, &y).map(Owned)
            }
            Node::Matches(a, re) => {
                let x = a.eval(env)?;
                match x.as_ref() {
                    Value::Str(s) => Ok(Owned(Value::Bool(re.is_match(s)))),
                    other => Err(EvalError::Type(format!(
                        "`matches` needs a string, found {} {}",
                        other.type_name(),
                        short(other)
                    ))),
                }
            }
            Node::MatchesDyn(a, b) => {
                let (x, y) = (a.eval(env)?, b.eval(env)?);
                match (x.as_ref(), y.as_ref()) {
                    (Value::Str(s), Value::Str(p)) => {
                        let re = Regex::new(p)
                            .map_err(|e| EvalError::Msg(format!("invalid regex {p:?}: {e}")))?;
                        Ok(Owned(Value::Bool(re.is_match(s))))
                    }
                    (x, y) => Err(EvalError::Type(format!(
                        "`matches` needs two strings, found {} and {}",
                        x.type_name(),
                        y.type_name()
                    ))),
                }
            }
            Node::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(i.eval(env)?.into_owned());
                }
                Ok(Owned(Value::List(out.into())))
            }
            Node::Object(fields) => {
                let mut out = Vec::with_capacity(fields.len());
                for (k, n) in fields {
                    out.push((k.clone(), n.eval(env)?.into_owned()));
                }
                Ok(Owned(Value::Object(out.into())))
            }
            Node::Interp(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        Part::Text(t) => s.push_str(t),
                        Part::Expr(n) => match n.eval(env)?.as_ref() {
                            Value::Str(x) => s.push_str(x),
                            other => s.push_str(&other.to_string()),
                        },
                    }
                }
                Ok(Owned(Value::str(&s)))
            }
            Node::Call(f, args) => functions::call(*f, args, env).map(Owned),
            Node::Json(target, path, text) => {
                let doc = match target {
                    Some(t) => {
                        let v = t.eval(env)?;
                        match v.as_ref() {
                            Value::Str(s) => serde_json::from_str::<serde_json::Value>(s).map_err(|e| {
                                EvalError::Type(format!("`json` needs JSON text, found a string that is not JSON ({e})"))
                            })?,
                            other => other.to_json(),
                        }
                    }
                    None => response_json(env.response)?,
                };
                let found = path.query(&doc).all();
                match found.len() {
                    0 => Err(EvalError::Missing(Arc::from(format!(
                        "JSONPath `{text}` (it matched nothing)"
                    )))),
                    1 => Ok(Owned(Value::from_json(found[0]))),
                    _ => Ok(Owned(Value::List(
                        found.into_iter().map(Value::from_json).collect(),
                    ))),
                }
            }
            Node::RegexGroup(s, re, n) => {
                let (x, k) = (s.eval(env)?, n.eval(env)?);
                let (Value::Str(x), Value::Int(k)) = (x.as_ref(), k.as_ref()) else {
                    return Err(EvalError::Type(format!(
                        "`regex_group` needs a string and an int, found {} and {}",
                        x.type_name(),
                        k.type_name()
                    )));
                };
                let caps = re.captures(x).ok_or_else(|| {
                    EvalError::Missing(Arc::from(format!("a match of /{}/", re.as_str())))
                })?;
                let g = usize::try_from(*k)
                    .ok()
                    .and_then(|k| caps.get(k))
                    .ok_or_else(|| {
                        EvalError::Missing(Arc::from(format!("group {k} of /{}/", re.as_str())))
                    })?;
                Ok(Owned(Value::str(g.as_str())))
            }
            Node::Filter {
                base,
                preds,
                by_name,
            } => {
                let keep = |i: u32| {
                    preds
                        .iter()
                        .all(|p| p.node.test(&env.at(i)).unwrap_or(false))
                };
                let out: Vec<u32> = match (by_name, base.as_ref()) {
                    // Candidates from the index already satisfy the predicate that chose it.
                    (Some((k, skip)), _) => {
                        let rest = |i: u32| {
                            let e = env.at(i);
                            preds
                                .iter()
                                .enumerate()
                                .all(|(j, p)| j == *skip || p.node.test(&e).unwrap_or(false))
                        };
                        k.candidates(env.trace)
                            .iter()
                            .copied()
                            .filter(|&i| rest(i))
                            .collect()
                    }
                    // No need to materialise every index of the trace first.
                    (None, Node::AllSpans) => {
                        (0..env.trace.len() as u32).filter(|&i| keep(i)).collect()
                    }
                    (None, _) => base
                        .eval_spans(env)?
                        .indices()
                        .iter()
                        .copied()
                        .filter(|&i| keep(i))
                        .collect(),
                };
                Ok(Owned(Value::Spans(SpanSet::from_sorted(out))))
            }
            Node::Pseudo(base, kind) => {
                let set = base.eval_spans(env)?;
                let idx = set.indices();
                let out: Vec<u32> = match kind {
                    PseudoKind::First => idx.first().copied().into_iter().collect(),
                    PseudoKind::Last => idx.last().copied().into_iter().collect(),
                    PseudoKind::Nth(n) => match n.eval(env)?.as_ref() {
                        Value::Int(k) if *k >= 1 => {
                            idx.get((*k - 1) as usize).copied().into_iter().collect()
                        }
                        other => {
                            return Err(EvalError::Type(format!(
                                "`:nth` needs a positive int (1 is the first span), found {}",
                                short(other)
                            )));
                        }
                    },
                    PseudoKind::Root => idx
                        .iter()
                        .copied()
                        .filter(|&i| env.trace.span(i).parent_span_id.is_none())
                        .collect(),
                    PseudoKind::Not(other) => {
                        let o = other.eval_spans(env)?;
                        idx.iter().copied().filter(|&i| !o.contains(i)).collect()
                    }
                    PseudoKind::Has(other) => {
                        let o = other.eval_spans(env)?;
                        let mut pres: Vec<u32> = o
                            .indices()
                            .iter()
                            .map(|&i| env.trace.preorder_position(i))
                            .collect();
                        pres.sort_unstable();
                        idx.iter()
                            .copied()
                            .filter(|&i| {
                                let lo = env.trace.preorder_position(i) + 1;
                                let hi = env.trace.subtree_end(i);
                                let k = pres.partition_point(|&p| p < lo);
                                k < pres.len() && pres[k] < hi
                            })
                            .collect()
                    }
                };
                Ok(Owned(Value::Spans(SpanSet::from_sorted(out))))
            }
        }
    }
}

fn cmp_bool(op: BinaryOp, x: &Value, y: &Value) -> Result<bool, EvalError> {
    match op {
        BinaryOp::Eq => ops::values_equal(x, y),
        BinaryOp::Ne => ops::values_equal(x, y).map(|b| !b),
        BinaryOp::Contains => ops::contains(x, y),
        BinaryOp::In => ops::is_in(x, y),
        _ => ops::compare(op, x, y),
    }
}

/// `A > B`, `A >> B`, `A ~> B`: the spans of B related to some span of A.
pub(crate) fn combine(trace: &Trace, c: Comb, a: &SpanSet, b: &SpanSet) -> SpanSet {
    let out: Vec<u32> = match c {
        Comb::Child => b
            .indices()
            .iter()
            .copied()
            .filter(|&i| trace.parent(i).is_some_and(|p| a.contains(p)))
            .collect(),
        Comb::Descendant => {
            // Merge A's subtree intervals (pre-order), then test each B span by binary search.
            let mut iv: Vec<(u32, u32)> = a
                .indices()
                .iter()
                .map(|&i| (trace.preorder_position(i) + 1, trace.subtree_end(i)))
                .filter(|(lo, hi)| lo < hi)
                .collect();
            iv.sort_unstable();
            let mut merged: Vec<(u32, u32)> = Vec::with_capacity(iv.len());
            for (lo, hi) in iv {
                match merged.last_mut() {
                    Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
                    _ => merged.push((lo, hi)),
                }
            }
            b.indices()
                .iter()
                .copied()
                .filter(|&i| {
                    let p = trace.preorder_position(i);
                    let k = merged.partition_point(|&(lo, _)| lo <= p);
                    k > 0 && p < merged[k - 1].1
                })
                .collect()
        }
        Comb::Linked => b
            .indices()
            .iter()
            .copied()
            .filter(|&i| {
                let s = trace.span(i);
                s.links.iter().any(|l| {
                    trace
                        .find(&l.span_id)
                        .is_some_and(|j| a.contains(j) && trace.span(j).trace_id == l.trace_id)
                })
            })
            .collect(),
    };
    SpanSet::from_sorted(out)
}

fn field_name(f: Field) -> &'static str {
    match f {
        Field::Name => "name",
        Field::Kind => "kind",
        Field::Status => "status",
        Field::StatusMessage => "status_message",
        Field::Duration => "duration",
        Field::Start => "start",
        Field::End => "end",
        Field::Service => "service",
        Field::TraceId => "trace_id",
        Field::SpanId => "span_id",
        Field::ParentId => "parent_id",
        Field::Events => "events",
        Field::Links => "links",
        Field::ScopeName => "scope.name",
    }
}

fn attrs_object(trace: &Trace, attrs: &[(KeyId, Value)]) -> Value {
    Value::Object(
        attrs
            .iter()
            .map(|(k, v)| (Arc::from(trace.key_name(*k)), v.clone()))
            .collect(),
    )
}

/// The value of a built-in field. `start` and `end` are Unix nanoseconds (int).
pub(crate) fn field_value(trace: &Trace, i: u32, f: Field) -> Value {
    let s = trace.span(i);
    match f {
        Field::Name => Value::Str(s.name.clone()),
        Field::Kind => Value::str(s.kind.as_str()),
        Field::Status => Value::str(s.status.as_str()),
        Field::StatusMessage => s.status_message.clone().map_or(Value::str(""), Value::Str),
        Field::Duration => Value::Duration(s.duration()),
        Field::Start => Value::Int(s.start.min(i64::MAX as u64) as i64),
        Field::End => Value::Int(s.end.min(i64::MAX as u64) as i64),
        Field::Service => Value::Str(trace.service(i).clone()),
        Field::TraceId => Value::str(&s.trace_id.to_string()),
        Field::SpanId => Value::str(&hex::encode(&s.span_id)),
        Field::ParentId => s
            .parent_span_id
            .map_or(Value::Null, |p| Value::str(&hex::encode(&p))),
        Field::Events => Value::List(
            s.events
                .iter()
                .map(|e| {
                    Value::Object(Arc::from(vec![
                        (Arc::from("name"), Value::Str(e.name.clone())),
                        (
                            Arc::from("time"),
                            Value::Int(e.time.min(i64::MAX as u64) as i64),
                        ),
                        (Arc::from("attributes"), attrs_object(trace, &e.attributes)),
                    ]))
                })
                .collect(),
        ),
        Field::Links => Value::List(
            s.links
                .iter()
                .map(|l| {
                    Value::Object(Arc::from(vec![
                        (Arc::from("trace_id"), Value::str(&l.trace_id.to_string())),
                        (Arc::from("span_id"), Value::str(&hex::encode(&l.span_id))),
                        (Arc::from("attributes"), attrs_object(trace, &l.attributes)),
                    ]))
                })
                .collect(),
        ),
        Field::ScopeName => Value::Str(trace.scopes()[s.scope as usize].name.clone()),
    }
}

fn trace_field(trace: &Trace, f: TraceField) -> Value {
    match f {
        TraceField::Duration => {
            let start = trace.spans().iter().map(|s| s.start).min();
            let end = trace.spans().iter().map(|s| s.end).max();
            match (start, end) {
                (Some(a), Some(b)) => Value::Duration(b.saturating_sub(a)),
                _ => Value::Duration(0),
            }
        }
        TraceField::SpanCount => Value::Int(trace.len() as i64),
        TraceField::Services => {
            let mut names: Vec<Arc<str>> = (0..trace.len() as u32)
                .map(|i| trace.service(i).clone())
                .collect();
            names.sort();
            names.dedup();
            Value::List(names.into_iter().map(Value::Str).collect())
        }
        TraceField::Errors => Value::Int(
            trace
                .spans()
                .iter()
                .filter(|s| s.status == StatusCode::Error)
                .count() as i64,
        ),
    }
}

fn no_response() -> EvalError {
    EvalError::Msg("this step's trigger gave no response to check".into())
}

fn resp_field(r: Option<&Response>, f: RespField) -> Result<Value, EvalError> {
    let r = r.ok_or_else(no_response)?;
    let not_here = |name: &str| {
        EvalError::Msg(format!(
            "`{name}` is not a field of a {} response",
            r.kind()
        ))
    };
    Ok(match (f, r) {
        (RespField::Status, Response::Http { status, .. }) => Value::Int(*status as i64),
        (RespField::Status, Response::Grpc { code, .. }) => Value::Int(*code as i64),
        (RespField::Headers, Response::Http { headers: h, .. })
        | (RespField::Headers, Response::Grpc { metadata: h, .. }) => {
            let mut out: Vec<(Arc<str>, Value)> = Vec::new();
            for (k, v) in h {
                let k = k.to_ascii_lowercase();
                match out.iter_mut().find(|(kk, _)| **kk == *k) {
                    Some((_, Value::Str(old))) => *old = Arc::from(format!("{old}, {v}")),
                    _ => out.push((Arc::from(k), Value::str(v))),
                }
            }
            Value::Object(out.into())
        }
        (RespField::Body, Response::Http { body, .. }) => {
            Value::str(&String::from_utf8_lossy(body))
        }
        (RespField::Body, Response::Grpc { body, .. }) => {
            body.as_ref().map_or(Value::Null, Value::from_json)
        }
        (
            RespField::Duration,
            Response::Http { duration, .. }
            | Response::Grpc { duration, .. }
            | Response::Exec { duration, .. },
        ) => Value::Duration(*duration),
        (RespField::ExitCode, Response::Exec { exit_code, .. }) => Value::Int(*exit_code as i64),
        (RespField::Stdout, Response::Exec { stdout, .. }) => Value::str(stdout),
        (RespField::Stderr, Response::Exec { stderr, .. }) => Value::str(stderr),
        (RespField::Status, _) => return Err(not_here("status")),
        (RespField::Headers, _) => return Err(not_here("headers")),
        (RespField::Body, _) => return Err(not_here("body")),
        (RespField::ExitCode, _) => return Err(not_here("exit_code")),
        (RespField::Stdout, _) => return Err(not_here("stdout")),
        (RespField::Stderr, _) => return Err(not_here("stderr")),
    })
}

/// A response header or gRPC metadata entry, case-insensitive; several are joined with `, `.
pub(crate) fn response_header(r: Option<&Response>, name: &str) -> Result<Value, EvalError> {
    let r = r.ok_or_else(no_response)?;
    let h = match r {
        Response::Http { headers, .. } => headers,
        Response::Grpc { metadata, .. } => metadata,
        Response::Exec { .. } => {
            return Err(EvalError::Msg("an exec response has no headers".into()));
        }
    };
    let vals: Vec<&str> = h
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect();
    if vals.is_empty() {
        return Err(EvalError::Missing(Arc::from(format!("header `{name}`"))));
    }
    Ok(Value::str(&vals.join(", ")))
}

fn response_json(r: Option<&Response>) -> Result<serde_json::Value, EvalError> {
    let r = r.ok_or_else(no_response)?;
    let parse = |bytes: &[u8], what: &str| {
        serde_json::from_slice::<serde_json::Value>(bytes).map_err(|e| {
            let preview = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]).into_owned();
            EvalError::Type(format!(
                "the {what} is not JSON ({e}); it starts with {preview:?}"
            ))
        })
    };
    match r {
        Response::Http { body, .. } => parse(body, "response body"),
        Response::Grpc { body, .. } => body
            .clone()
            .ok_or_else(|| EvalError::Msg("the gRPC response has no message".into())),
        Response::Exec { stdout, .. } => parse(stdout.as_bytes(), "standard output"),
    }
}

fn aggregate(kind: Agg, inner: &Node, env: &Env<'_>) -> Result<Value, EvalError> {
    let group = env
        .group
        .ok_or_else(|| EvalError::Msg("aggregates need a selection".into()))?;
    let name = match kind {
        Agg::Sum => "sum",
        Agg::Min => "min",
        Agg::Max => "max",
        Agg::Avg => "avg",
    };
    let mut acc: Option<Value> = None;
    for &i in group {
        let v = inner.eval(&env.at(i)).map_err(|e| {
            EvalError::Msg(format!(
                "`{name}`: on span {:?} ({}): {e}",
                &*env.trace.span(i).name,
                hex::encode(&env.trace.span(i).span_id)
            ))
        })?;
        let v = v.into_owned();
        let numeric = matches!(v, Value::Int(_) | Value::Float(_) | Value::Duration(_));
        let ordered_text = matches!(kind, Agg::Min | Agg::Max) && matches!(v, Value::Str(_));
        if !(numeric || ordered_text) {
            return Err(EvalError::Type(format!(
                "`{name}` needs numbers or durations, found {} {}",
                v.type_name(),
                short(&v)
            )));
        }
        acc = Some(match acc {
            None => v,
            Some(a) => match kind {
                Agg::Sum | Agg::Avg => ops::arith(BinaryOp::Add, &a, &v)?,
                Agg::Min => {
                    if ops::compare(BinaryOp::Lt, &v, &a)? {
                        v
                    } else {
                        a
                    }
                }
                Agg::Max => {
                    if ops::compare(BinaryOp::Gt, &v, &a)? {
                        v
                    } else {
                        a
                    }
                }
            },
        });
    }
    match (kind, acc) {
        (Agg::Sum, None) => Ok(Value::Int(0)),
        (_, None) => Err(EvalError::Missing(Arc::from(format!(
            "`{name}` of an empty selection"
        )))),
        (Agg::Avg, Some(Value::Duration(d))) => Ok(Value::Duration(d / group.len() as u64)),
        (Agg::Avg, Some(v)) => Ok(Value::Float(
            v.as_f64().unwrap_or(f64::NAN) / group.len() as f64,
        )),
        (_, Some(v)) => Ok(v),
    }
}

/// Evaluates an expression that needs no trace: a `let`, a trigger argument, a matcher argument.
pub fn evaluate_value(
    expr: &ast::Expr,
    scope: &dyn Scope,
    host: &dyn Host,
) -> Result<Value, EvalError> {
    let trace = Trace::default();
    let mut c = Compiler::new(&trace, None, host);
    let node = c.compile(expr, scope, Cx::Selector);
    let env = c.env();
    node.eval(&env).map(Cow::into_owned)
}

/// Evaluates a selector over a trace (for the language server: "matched 3 spans last run").
pub fn select(
    expr: &ast::Expr,
    trace: &Trace,
    scope: &dyn Scope,
    host: &dyn Host,
) -> Result<SpanSet, EvalError> {
    let mut c = Compiler::new(trace, None, host);
    let node = c.compile(expr, scope, Cx::Selector);
    let env = c.env();
    node.eval_spans(&env)
}
