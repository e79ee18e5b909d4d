//! `tbt run` end to end, two measures (see `docs/benchmarks.md`):
//!
//! - **Verdict latency**: a loopback HTTP server answers the trigger and exports its two spans
//!   over OTLP/gRPC to the embedded receiver right away; the time from that export's completion to
//!   the verdict, minus `settle`, is the overhead of push-based waiting (target: ≤ 10 ms).
//! - **Concurrency**: 200 independent tests against a loopback server that answers in 50 ms and
//!   exports its spans for each request, with `--jobs 64` (target: under 2 s).
//!
//! Run with `cargo bench -p tbt --bench run`. Bounded load on 127.0.0.1 only; stops by itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tbt::receiver::{Receiver, ReceiverConfig};
use tbt::run::source::EmbeddedSource;
use tbt::run::{RunOptions, execute};
use tbt::store::{StoreLimits, TraceStore};
use tbt_compiler::bindings::Scopes;
use tbt_compiler::compile::{MemoryLoader, Options, compile};

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// The `traceparent` header of a request tbt's trigger sent ("" if absent).
fn traceparent(headers: &HeaderMap) -> &str {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Spans of the system under test for one request: a server span under the trigger's span and
/// a database span under it.
fn spans_for(traceparent: &str) -> Option<ExportTraceServiceRequest> {
    let mut parts = traceparent.split('-');
    let (_, trace, parent) = (parts.next()?, parts.next()?, parts.next()?);
    let t = now_ns();
    let server = Span {
        trace_id: hex_bytes(trace),
        span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
        parent_span_id: hex_bytes(parent),
        name: "GET /orders".into(),
        kind: 2,
        start_time_unix_nano: t - 2_000_000,
        end_time_unix_nano: t,
        attributes: vec![kv("http.route", "/orders")],
        ..Default::default()
    };
    let db = Span {
        trace_id: hex_bytes(trace),
        span_id: vec![1, 2, 3, 4, 5, 6, 7, 9],
        parent_span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
        name: "SELECT orders".into(),
        kind: 3,
        start_time_unix_nano: t - 1_500_000,
        end_time_unix_nano: t - 500_000,
        attributes: vec![kv("db.system.name", "sqlite")],
        ..Default::default()
    };
    Some(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "orders")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![server, db],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

struct Compiled {
    c: &'static tbt_compiler::compile::Compilation,
    scopes: &'static Scopes<'static, 'static>,
}

fn compile_suite(src: String) -> Compiled {
    let c = compile(
        vec![("bench.tbt".into(), src.into_bytes())],
        &mut MemoryLoader::default(),
        &Options::default(),
    );
    assert!(
        !c.has_errors(),
        "{}",
        tbt_compiler::render::render_plain(&c.sources, &c.diagnostics)
    );
    let (c, scopes) = tbt::run::prepare(c, HashMap::new());
    Compiled { c, scopes }
}

async fn verdict_latency() {
    let store = TraceStore::new(StoreLimits::default());
    let receiver = Receiver::start(ReceiverConfig::ephemeral(), store.clone())
        .await
        .expect("receiver");
    let endpoint = receiver.grpc_endpoint().expect("grpc");
    let client = TraceServiceClient::connect(endpoint).await.expect("client");
    let exported_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let (client_c, exported_c) = (client.clone(), exported_at.clone());
    let app = axum::Router::new().route(
        "/orders",
        axum::routing::get(move |headers: HeaderMap| {
            let mut client = client_c.clone();
            let exported = exported_c.clone();
            async move {
                if let Some(req) = spans_for(traceparent(&headers)) {
                    let _ = client.export(req).await;
                    *exported.lock().expect("lock") = Some(Instant::now());
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let settle = Duration::from_millis(50);
    let suite = format!(
        "test t {{\n  trigger http GET \"http://{addr}/orders\"\n  expect span[name == \"GET /orders\"] > span[name == \"SELECT orders\"] {{\n    count == 1\n  }}\n}}\n"
    );
    let compiled = compile_suite(suite);
    let mut overheads = Vec::new();
    for _ in 0..30 {
        *exported_at.lock().expect("lock") = None;
        let source = Arc::new(EmbeddedSource::new(store.clone(), "bench".into()));
        let opts = RunOptions {
            settle,
            timeout: Duration::from_secs(10),
            ..RunOptions::default()
        };
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let result = execute(compiled.c, compiled.scopes, source, opts, rx).await;
        let verdict = Instant::now();
        assert_eq!(result.exit_code(), 0, "{:#?}", result.tests);
        let exported = exported_at.lock().expect("lock").expect("spans exported");
        let after_last_span = verdict.duration_since(exported);
        overheads.push(after_last_span.saturating_sub(settle));
    }
    overheads.sort();
    let p = |q: f64| overheads[((overheads.len() - 1) as f64 * q) as usize];
    println!(
        "verdict latency: settle {settle:?}; verdict after the last span minus settle: p50 {:?}, p95 {:?}, max {:?} (30 runs)",
        p(0.5),
        p(0.95),
        overheads[overheads.len() - 1]
    );
    let _ = receiver.shutdown().await;
}

async fn concurrency() {
    // The system under test answers after 50 ms and exports its spans for each request to the
    // embedded receiver, as an instrumented service does: a trace with only tbt's own trigger span
    // is not complete (docs/cli.md, "When a trace is complete").
    let store = TraceStore::new(StoreLimits::default());
    let receiver = Receiver::start(ReceiverConfig::ephemeral(), store.clone())
        .await
        .expect("receiver");
    let endpoint = receiver.grpc_endpoint().expect("grpc");
    let client = TraceServiceClient::connect(endpoint).await.expect("client");
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(move |headers: HeaderMap| {
            let mut client = client.clone();
            async move {
                // The simulated service time of the system under test.
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Some(req) = spans_for(traceparent(&headers)) {
                    let _ = client.export(req).await;
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut suite = String::new();
    for i in 0..200 {
        suite.push_str(&format!(
            "test t{i} {{\n  trigger http GET \"http://{addr}/slow\"\n  expect response {{\n    status == 200\n  }}\n  expect span:root\n}}\n\n"
        ));
    }
    let compiled = compile_suite(suite);
    let source = Arc::new(EmbeddedSource::new(store, "bench".into()));
    let opts = RunOptions {
        jobs: 64,
        settle: Duration::from_millis(50),
        timeout: Duration::from_secs(10),
        ..RunOptions::default()
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let result = execute(compiled.c, compiled.scopes, source, opts, rx).await;
    let took = start.elapsed();
    assert_eq!(result.summary.passed, 200, "{:?}", result.summary);
    println!("concurrency: 200 tests, server answering in 50 ms, --jobs 64, settle 50ms: {took:?}");
    let _ = receiver.shutdown().await;
}

fn main() {
    tbt::tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        verdict_latency().await;
        concurrency().await;
    });
}
