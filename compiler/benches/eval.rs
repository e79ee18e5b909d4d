//! Criterion benches of the trace model and the evaluator over generated traces of 1k, 10k and
//! 100k spans (see `gen.rs`). Figures and commands are recorded in `docs/benchmarks.md`.

#![allow(missing_docs, clippy::unwrap_used)]

// The `tbt` binary runs with mimalloc; measure the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/generator.rs"]
mod generator;

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use tbt_compiler::ast::*;
use tbt_compiler::eval::{EmptyScope, Expectation, PureHost, evaluate_step, select};
use tbt_compiler::span::{FileId, Span};
use tbt_compiler::trace::{Trace, TraceId};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

static NEXT: AtomicU32 = AtomicU32::new(0);
fn sp() -> Span {
    let n = NEXT.fetch_add(4, Ordering::Relaxed) as usize;
    Span::new(FileId(0), n, n + 3)
}
fn ex(kind: ExprKind) -> Expr {
    Expr { span: sp(), kind }
}
fn p(d: &str) -> Expr {
    ex(ExprKind::Path(Path {
        segments: d
            .split('.')
            .map(|n| Ident {
                name: n.into(),
                span: sp(),
            })
            .collect(),
        span: sp(),
    }))
}
fn st(s: &str) -> Expr {
    ex(ExprKind::Lit(Lit::Str(StrLit {
        span: sp(),
        parts: vec![StrPart::Text(s.into())],
        style: StrStyle::Normal,
    })))
}
fn int(i: i64) -> Expr {
    ex(ExprKind::Lit(Lit::Int(i)))
}
fn dur(ns: u64) -> Expr {
    ex(ExprKind::Lit(Lit::Duration(ns)))
}
fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
    ex(ExprKind::Binary {
        op,
        op_span: sp(),
        lhs: Box::new(l),
        rhs: Box::new(r),
    })
}
fn filter(preds: Vec<Expr>) -> Expr {
    ex(ExprKind::Filter {
        base: Box::new(p("span")),
        preds,
    })
}
fn block(preds: Vec<Expr>) -> Option<Block> {
    Some(Block {
        span: sp(),
        stmts: preds
            .into_iter()
            .map(|e| BlockStmt {
                span: sp(),
                kind: BlockStmtKind::Pred(e),
            })
            .collect(),
    })
}

/// `span[kind == server, service == "svc-3"] >> span[db.system == "postgresql", duration > 1ms,
/// http.response.status_code >= 404]`
fn descendant_selector() -> Expr {
    bin(
        BinaryOp::Descendant,
        filter(vec![
            bin(BinaryOp::Eq, p("kind"), p("server")),
            bin(BinaryOp::Eq, p("service"), st("svc-3")),
        ]),
        filter(vec![
            bin(BinaryOp::Eq, p("db.system"), st("postgresql")),
            bin(BinaryOp::Gt, p("duration"), dur(1_000_000)),
            bin(BinaryOp::Ge, p("http.response.status_code"), int(404)),
        ]),
    )
}

/// 100 expectations of the kinds a suite has: by name with duration bounds, by service and
/// attribute with count, descendant chains, absence, ordering-free aggregates.
fn hundred_expectations() -> Vec<Expect> {
    let mut out = Vec::new();
    for k in 0..100 {
        let e = match k % 5 {
            0 => ExpectKind::Select {
                no: false,
                selector: filter(vec![bin(
                    BinaryOp::Eq,
                    p("name"),
                    st(&format!("op-{}", k % 40)),
                )]),
                by: None,
                block: block(vec![bin(BinaryOp::Lt, p("duration"), dur(60_000_000))]),
            },
            1 => ExpectKind::Select {
                no: false,
                selector: filter(vec![
                    bin(BinaryOp::Eq, p("service"), st(&format!("svc-{}", k % 12))),
                    bin(
                        BinaryOp::Eq,
                        p("http.route"),
                        st(&format!("/api/v1/resource{}/{{id}}", k % 20)),
                    ),
                ]),
                by: None,
                block: block(vec![bin(BinaryOp::Ge, p("count"), int(1))]),
            },
            2 => ExpectKind::Select {
                no: false,
                selector: bin(
                    BinaryOp::Gt,
                    filter(vec![bin(
                        BinaryOp::Eq,
                        p("name"),
                        st(&format!("op-{}", k % 40)),
                    )]),
                    filter(vec![bin(BinaryOp::Eq, p("kind"), p("client"))]),
                ),
                by: None,
                block: block(vec![bin(BinaryOp::Lt, call_max(), dur(100_000_000))]),
            },
            3 => ExpectKind::Select {
                no: true,
                selector: filter(vec![
                    bin(BinaryOp::Eq, p("status"), p("error")),
                    bin(
                        BinaryOp::Eq,
                        p("db.query.text"),
                        st(&format!("SELECT * FROM table_{} WHERE id = $1", k % 50)),
                    ),
                ]),
                by: None,
                block: None,
            },
            _ => ExpectKind::Select {
                no: false,
                selector: filter(vec![bin(
                    BinaryOp::Eq,
                    p("name"),
                    st(&format!("op-{}", k % 40)),
                )]),
                by: None,
                block: block(vec![bin(BinaryOp::Le, p("count"), int(100_000))]),
            },
        };
        out.push(Expect { kind: e });
    }
    out
}

fn call_max() -> Expr {
    ex(ExprKind::Call {
        callee: Path {
            segments: vec![Ident {
                name: "max".into(),
                span: sp(),
            }],
            span: sp(),
        },
        args: vec![p("duration")],
    })
}

fn bench_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build_from_protobuf");
    g.sample_size(10);
    for n in SIZES {
        let bytes = generator::request(n).encode_to_vec();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &bytes, |b, bytes| {
            b.iter(|| {
                Trace::decode_protobuf(black_box(bytes), Some(TraceId(generator::TRACE_ID)))
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn bench_descendant(c: &mut Criterion) {
    let mut g = c.benchmark_group("descendant_three_predicates");
    g.sample_size(20);
    let sel = descendant_selector();
    for n in SIZES {
        let t =
            Trace::from_export_request(&generator::request(n), Some(TraceId(generator::TRACE_ID)));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &t, |b, t| {
            b.iter(|| select(black_box(&sel), t, &EmptyScope, &PureHost).unwrap())
        });
    }
    g.finish();
}

fn bench_expectations(c: &mut Criterion) {
    let mut g = c.benchmark_group("hundred_expectations");
    g.sample_size(10);
    let expects = hundred_expectations();
    let list: Vec<Expectation> = expects
        .iter()
        .map(|e| Expectation {
            span: sp(),
            expect: e,
        })
        .collect();
    for n in SIZES {
        let t =
            Trace::from_export_request(&generator::request(n), Some(TraceId(generator::TRACE_ID)));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &t, |b, t| {
            b.iter(|| evaluate_step(black_box(&list), t, None, &EmptyScope, &PureHost, true))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_build, bench_descendant, bench_expectations);
criterion_main!(benches);
