//! Test helpers: small OTLP traces and AST constructors (until tests can parse `.tbt` text).
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as OSpan, Status, span,
};
use tbt_compiler::ast::*;
use tbt_compiler::span::{FileId, Span};
use tbt_compiler::trace::{Trace, TraceId};

pub const TRACE_ID: [u8; 16] = [0xab; 16];
pub const MS: u64 = 1_000_000;
/// A fixed epoch so timestamps look real.
pub const T0: u64 = 1_700_000_000_000_000_000;

pub fn any_str(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    }
}
pub fn any_int(i: i64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::IntValue(i)),
    }
}
pub fn any_f64(f: f64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::DoubleValue(f)),
    }
}
pub fn any_bool(b: bool) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::BoolValue(b)),
    }
}
pub fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(v),
        ..Default::default()
    }
}

/// A span under construction: ids are small integers, times are milliseconds after `T0`.
#[derive(Clone, Debug)]
pub struct S {
    pub id: u64,
    pub parent: u64,
    pub name: String,
    pub service: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub kind: span::SpanKind,
    pub status: i32,
    pub attrs: Vec<KeyValue>,
    pub links: Vec<u64>,
    pub trace_id: [u8; 16],
}

pub fn s(id: u64, parent: u64, name: &str, service: &str, start_ms: u64, end_ms: u64) -> S {
    S {
        id,
        parent,
        name: name.into(),
        service: service.into(),
        start_ms,
        end_ms,
        kind: span::SpanKind::Internal,
        status: 0,
        attrs: Vec::new(),
        links: Vec::new(),
        trace_id: TRACE_ID,
    }
}

impl S {
    pub fn attr(mut self, k: &str, v: AnyValue) -> Self {
        self.attrs.push(kv(k, v));
        self
    }
    pub fn kind(mut self, k: span::SpanKind) -> Self {
        self.kind = k;
        self
    }
    pub fn error(mut self) -> Self {
        self.status = 2;
        self
    }
    pub fn ok(mut self) -> Self {
        self.status = 1;
        self
    }
    pub fn link(mut self, to: u64) -> Self {
        self.links.push(to);
        self
    }
    pub fn trace(mut self, t: [u8; 16]) -> Self {
        self.trace_id = t;
        self
    }
}

pub fn sid(n: u64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

pub fn otlp_span(x: &S) -> OSpan {
    OSpan {
        trace_id: x.trace_id.to_vec(),
        span_id: sid(x.id),
        parent_span_id: if x.parent == 0 { vec![] } else { sid(x.parent) },
        name: x.name.clone(),
        kind: x.kind as i32,
        start_time_unix_nano: T0 + x.start_ms * MS,
        end_time_unix_nano: T0 + x.end_ms * MS,
        attributes: x.attrs.clone(),
        links: x
            .links
            .iter()
            .map(|l| span::Link {
                trace_id: x.trace_id.to_vec(),
                span_id: sid(*l),
                ..Default::default()
            })
            .collect(),
        status: Some(Status {
            code: x.status,
            message: if x.status == 2 {
                "boom".into()
            } else {
                String::new()
            },
        }),
        ..Default::default()
    }
}

/// One `ResourceSpans` per service, in order of first appearance.
pub fn build(spans: &[S]) -> Vec<ResourceSpans> {
    let mut out: Vec<ResourceSpans> = Vec::new();
    for x in spans {
        let pos = out.iter().position(|r| {
            r.resource.as_ref().unwrap().attributes[0]
                .value
                .as_ref()
                .unwrap()
                == &any_str(&x.service)
        });
        let i = match pos {
            Some(i) => i,
            None => {
                out.push(ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![
                            kv("service.name", any_str(&x.service)),
                            kv("deployment.environment", any_str("test")),
                        ],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: format!("{}-lib", x.service),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        out[i].scope_spans[0].spans.push(otlp_span(x));
    }
    out
}

pub fn trace(spans: &[S]) -> Trace {
    Trace::from_resource_spans(&build(spans), Some(TraceId(TRACE_ID)))
}

/// The shop trace used by many tests:
/// ```text
/// 1 GET /orders (gateway, server)            0..100
/// ├─ 2 POST /orders (orders, server)          5..90
/// │  ├─ 3 SELECT orders (orders, client, db) 10..20
/// │  ├─ 4 SELECT orders (orders, client, db) 21..30
/// │  ├─ 5 charge card (payments, server)     31..60  payment.amount=99.99
/// │  │  └─ 6 INSERT payments (payments, db)  35..40  status=error
/// │  └─ 7 publish shipping (orders, producer) 61..62
/// └─ 8 audit (gateway, internal)             91..95
/// 9 consume shipping (shipping, consumer, links to 7) 70..80 (root of its own)
/// ```
pub fn shop() -> Vec<S> {
    use span::SpanKind as K;
    vec![
        s(1, 0, "GET /orders", "gateway", 0, 100)
            .kind(K::Server)
            .attr("http.route", any_str("/orders"))
            .attr("http.response.status_code", any_int(201)),
        s(2, 1, "POST /orders", "orders", 5, 90)
            .kind(K::Server)
            .attr("http.route", any_str("/orders"))
            .attr("http.request.method", any_str("POST")),
        s(3, 2, "SELECT orders", "orders", 10, 20)
            .kind(K::Client)
            .attr("db.system", any_str("sqlite"))
            .attr(
                "db.query.text",
                any_str("SELECT * FROM orders WHERE id = ?"),
            ),
        s(4, 2, "SELECT orders", "orders", 21, 30)
            .kind(K::Client)
            .attr("db.system", any_str("sqlite"))
            .attr(
                "db.query.text",
                any_str("SELECT * FROM orders WHERE id = ?"),
            ),
        s(5, 2, "charge card", "payments", 31, 60)
            .kind(K::Server)
            .ok()
            .attr("payment.amount", any_f64(99.99))
            .attr("error", any_str("attr-named-error")),
        s(6, 5, "INSERT payments", "payments", 35, 40)
            .kind(K::Client)
            .error()
            .attr("db.system", any_str("postgresql"))
            .attr("db.query.text", any_str("INSERT INTO payments VALUES (?)")),
        s(7, 2, "publish shipping", "orders", 61, 62)
            .kind(K::Producer)
            .attr("messaging.destination.name", any_str("shipping")),
        s(8, 1, "audit", "gateway", 91, 95),
        s(9, 0, "consume shipping", "shipping", 70, 80)
            .kind(K::Consumer)
            .link(7)
            .attr("messaging.destination.name", any_str("shipping")),
    ]
}

// ---------------------------------------------------------------- AST constructors

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A fresh, distinct source span.
pub fn sp() -> Span {
    let n = NEXT.fetch_add(10, Ordering::Relaxed) as usize;
    Span::new(FileId(0), n, n + 5)
}

pub fn ex(kind: ExprKind) -> Expr {
    Expr { span: sp(), kind }
}
pub fn path(dotted: &str) -> Path {
    Path {
        segments: dotted
            .split('.')
            .map(|n| Ident {
                name: n.into(),
                span: sp(),
            })
            .collect(),
        span: sp(),
    }
}
pub fn p(dotted: &str) -> Expr {
    ex(ExprKind::Path(path(dotted)))
}
pub fn strlit(x: &str) -> StrLit {
    StrLit {
        span: sp(),
        parts: vec![StrPart::Text(x.into())],
        style: StrStyle::Normal,
    }
}
pub fn st(x: &str) -> Expr {
    ex(ExprKind::Lit(Lit::Str(strlit(x))))
}
pub fn int(i: i64) -> Expr {
    ex(ExprKind::Lit(Lit::Int(i)))
}
pub fn fl(f: f64) -> Expr {
    ex(ExprKind::Lit(Lit::Float(f)))
}
pub fn ms(m: u64) -> Expr {
    ex(ExprKind::Lit(Lit::Duration(m * MS)))
}
pub fn boolean(b: bool) -> Expr {
    ex(ExprKind::Lit(Lit::Bool(b)))
}
pub fn null() -> Expr {
    ex(ExprKind::Lit(Lit::Null))
}
pub fn list(items: Vec<Expr>) -> Expr {
    ex(ExprKind::List(items))
}
pub fn obj(fields: Vec<(&str, Expr)>) -> Expr {
    ex(ExprKind::Object(
        fields.into_iter().map(|(k, v)| (strlit(k), v)).collect(),
    ))
}
pub fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
    ex(ExprKind::Binary {
        op,
        op_span: sp(),
        lhs: Box::new(l),
        rhs: Box::new(r),
    })
}
pub fn eq(l: Expr, r: Expr) -> Expr {
    bin(BinaryOp::Eq, l, r)
}
pub fn not(e: Expr) -> Expr {
    ex(ExprKind::Unary {
        op: UnaryOp::Not,
        expr: Box::new(e),
    })
}
pub fn all() -> Expr {
    p("span")
}
pub fn filter(base: Expr, preds: Vec<Expr>) -> Expr {
    ex(ExprKind::Filter {
        base: Box::new(base),
        preds,
    })
}
/// `span[name == "x"]`
pub fn named(n: &str) -> Expr {
    filter(all(), vec![eq(p("name"), st(n))])
}
pub fn pseudo(base: Expr, class: &str, arg: Option<Expr>) -> Expr {
    ex(ExprKind::Pseudo {
        base: Box::new(base),
        class: Ident {
            name: class.into(),
            span: sp(),
        },
        arg: arg.map(Box::new),
    })
}
pub fn call(name: &str, args: Vec<Expr>) -> Expr {
    ex(ExprKind::Call {
        callee: path(name),
        args,
    })
}
pub fn interp(parts: Vec<Result<&str, Expr>>) -> Expr {
    ex(ExprKind::Lit(Lit::Str(StrLit {
        span: sp(),
        parts: parts
            .into_iter()
            .map(|p| match p {
                Ok(t) => StrPart::Text(t.into()),
                Err(e) => StrPart::Interp(e),
            })
            .collect(),
        style: StrStyle::Normal,
    })))
}

pub fn pred(e: Expr) -> BlockStmt {
    BlockStmt {
        span: sp(),
        kind: BlockStmtKind::Pred(e),
    }
}
pub fn any(e: Expr) -> BlockStmt {
    BlockStmt {
        span: sp(),
        kind: BlockStmtKind::Any(e),
    }
}
pub fn capture(name: &str, e: Expr) -> BlockStmt {
    BlockStmt {
        span: sp(),
        kind: BlockStmtKind::Let(Let {
            secret: false,
            name: Ident {
                name: name.into(),
                span: sp(),
            },
            value: e,
        }),
    }
}
pub fn block(stmts: Vec<BlockStmt>) -> Block {
    Block { span: sp(), stmts }
}
pub fn expect_sel(sel: Expr, stmts: Option<Vec<BlockStmt>>) -> Expect {
    Expect {
        kind: ExpectKind::Select {
            no: false,
            selector: sel,
            by: None,
            block: stmts.map(block),
        },
    }
}
pub fn expect_no(sel: Expr) -> Expect {
    Expect {
        kind: ExpectKind::Select {
            no: true,
            selector: sel,
            by: None,
            block: None,
        },
    }
}
pub fn expect_by(sel: Expr, key: Expr, stmts: Vec<BlockStmt>) -> Expect {
    Expect {
        kind: ExpectKind::Select {
            no: false,
            selector: sel,
            by: Some(key),
            block: Some(block(stmts)),
        },
    }
}
pub fn expect_order(a: Expr, order: Order, b: Expr) -> Expect {
    Expect {
        kind: ExpectKind::Order {
            first: a,
            order,
            second: b,
        },
    }
}
pub fn expect_response(stmts: Vec<BlockStmt>) -> Expect {
    Expect {
        kind: ExpectKind::Response(block(stmts)),
    }
}
pub fn expect_trace(stmts: Vec<BlockStmt>) -> Expect {
    Expect {
        kind: ExpectKind::Trace(block(stmts)),
    }
}
