//! `tbt run` end to end with real parts: a real HTTP server on loopback, instrumented with the
//! official OpenTelemetry Rust SDK, exporting over OTLP/gRPC to tbt's embedded receiver; tbt fires
//! the HTTP trigger with a fresh `traceparent`, waits for the trace to settle (push, no polling)
//! and evaluates the expectations — catching the server's N+1 query.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::free_port;
use axum::extract::Path;
use axum::http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tbt::receiver::{Receiver, ReceiverConfig};
use tbt::run::result::Status;
use tbt::run::source::EmbeddedSource;
use tbt::run::{RunOptions, execute};
use tbt::store::{StoreLimits, TraceId, TraceStore};
use tbt_compiler::compile::{MemoryLoader, Options, compile};
use tbt_compiler::trace::Trace;
use tbt_compiler::value::Value;

/// How the shop exports its spans.
#[derive(Clone, Copy)]
enum Export {
    /// Each span as it ends, over OTLP/gRPC: all in before the answer.
    Grpc,
    /// Each span as it ends, over OTLP/HTTP (protobuf): all in before the answer.
    Http,
    /// The SDK's batch processor over OTLP/HTTP, one batch per this period: after the answer.
    HttpBatched(Duration),
}

/// The system under test: `GET /orders/{id}` makes one server span and (deliberately) the same
/// query twice — an N+1 — and exports them with the SDK as `export` says.
async fn start_shop(otlp: String, export: Export) -> (String, Arc<SdkTracerProvider>) {
    tbt::tls::install_crypto_provider();
    let provider = tokio::task::spawn_blocking(move || {
        let exporter = match export {
            Export::Http | Export::HttpBatched(_) => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(format!("{otlp}/v1/traces"))
                .build()
                .expect("exporter"),
            Export::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(otlp)
                .build()
                .expect("exporter"),
        };
        let provider = SdkTracerProvider::builder()
            .with_resource(Resource::builder().with_service_name("orders").build());
        match export {
            Export::HttpBatched(period) => {
                let config = opentelemetry_sdk::trace::BatchConfigBuilder::default()
                    .with_scheduled_delay(period)
                    .build();
                let batches = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
                    .with_batch_config(config)
                    .build();
                provider.with_span_processor(batches).build()
            }
            Export::Grpc | Export::Http => provider.with_simple_exporter(exporter).build(),
        }
    })
    .await
    .expect("provider");
    let provider = Arc::new(provider);
    let p = provider.clone();
    let app = axum::Router::new().route(
        "/orders/{id}",
        axum::routing::get(move |Path(id): Path<String>, headers: HeaderMap| {
            let p = p.clone();
            async move {
                let carrier: HashMap<String, String> = headers
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))
                    })
                    .collect();
                // A simple exporter blocks on each export: keep it off the async workers.
                tokio::task::spawn_blocking(move || {
                    let parent = TraceContextPropagator::new().extract(&carrier);
                    let tracer = p.tracer("shop");
                    let server = tracer
                        .span_builder("GET /orders/{id}")
                        .with_kind(SpanKind::Server)
                        .with_attributes([
                            KeyValue::new("http.request.method", "GET"),
                            KeyValue::new("http.route", "/orders/{id}"),
                            KeyValue::new("http.response.status_code", 200i64),
                        ])
                        .start_with_context(&tracer, &parent);
                    let cx = Context::current_with_span(server);
                    for _ in 0..2 {
                        let mut q = tracer
                            .span_builder("SELECT orders")
                            .with_kind(SpanKind::Client)
                            .with_attributes([
                                KeyValue::new("db.system.name", "sqlite"),
                                KeyValue::new("db.query.text", "SELECT * FROM orders WHERE id = ?"),
                            ])
                            .start_with_context(&tracer, &cx);
                        q.end();
                    }
                    cx.span().end();
                })
                .await
                .expect("spans");
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    serde_json::json!({ "id": id, "status": "paid" }).to_string(),
                )
            }
        }),
    );
    let addr = crate::support::serve(app).await;
    (format!("http://{addr}"), provider)
}

/// A store and the embedded receiver writing into it, on ports the OS chose.
async fn live_receiver() -> (TraceStore, tbt::receiver::RunningReceiver) {
    let store = TraceStore::new(StoreLimits::default());
    let receiver = Receiver::start(ReceiverConfig::ephemeral(), store.clone())
        .await
        .expect("receiver");
    (store, receiver)
}

/// A 20 s timeout (never reached by a passing step) and a 100 ms settle.
fn waiting_opts() -> RunOptions {
    RunOptions {
        timeout: Duration::from_secs(20),
        settle: Duration::from_millis(100),
        ..RunOptions::default()
    }
}

/// Compiles `suite` (it must have no errors), runs it against `store` through the embedded source,
/// and returns the result; the run must finish within a minute.
async fn run_suite(
    name: &str,
    suite: Vec<u8>,
    store: TraceStore,
    opts: RunOptions,
) -> tbt::run::result::RunResult {
    let c = compile(
        vec![(name.into(), suite)],
        &mut MemoryLoader::default(),
        &Options::default(),
    );
    assert!(
        !c.has_errors(),
        "{}",
        tbt_compiler::render::render_plain(&c.sources, &c.diagnostics)
    );
    let (c, scopes) = tbt::run::prepare(c, HashMap::new());
    let source = Arc::new(EmbeddedSource::new(store, "test receiver".into()));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    tokio::time::timeout(
        Duration::from_secs(60),
        execute(c, scopes, source, opts, rx),
    )
    .await
    .expect("the run finishes")
}

const SUITE: &str = r#"import "std/http"

test fetch {
  trigger http GET "${base}/orders/42"
  expect response {
    status == 200
    json("$.status") == "paid"
    let id = json("$.id")
  }
  expect http.server("/orders/{id}") {
    count == 1
    service == "orders"
  }
  expect span:root {
    service == "tbt"
    kind == client
  }
  expect http.server() > span[db.system.name == "sqlite"] by db.query.text {
    count <= 1
  }
}

test again {
  trigger http GET "${base}/orders/${fetch.id}"
  expect span[db.system.name == "sqlite"] {
    count == 2
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_trigger_trace_from_a_real_sdk_and_a_verdict_after_settling() {
    let (store, receiver) = live_receiver().await;
    let (base, provider) = start_shop(
        receiver.grpc_endpoint().expect("grpc endpoint"),
        Export::Grpc,
    )
    .await;

    let suite = format!("let base = \"{base}\"\n\n{SUITE}");
    let opts = RunOptions {
        timeout: Duration::from_secs(20),
        settle: Duration::from_millis(200),
        ..RunOptions::default()
    };
    let started = Instant::now();
    let result = run_suite("live.tbt", suite.into_bytes(), store.clone(), opts).await;
    let elapsed = started.elapsed();

    let fetch = &result.tests[0];
    assert_eq!(fetch.name, "fetch");
    assert_eq!(fetch.status, Status::Failed, "{fetch:#?}");
    let step = &fetch.steps[0];
    assert_eq!(
        step.spans, 4,
        "the root trigger span, the server span and two queries: {step:#?}"
    );
    let ex = &step.expectations;
    assert_eq!(ex.len(), 4);
    assert_eq!(ex[0].status, Status::Passed, "{:?}", ex[0]);
    assert_eq!(ex[1].status, Status::Passed, "{:?}", ex[1]);
    assert_eq!(
        ex[2].status,
        Status::Passed,
        "the runner's own span is the root: {:?}",
        ex[2]
    );
    assert_eq!(
        ex[3].status,
        Status::Failed,
        "the N+1 is caught: {:?}",
        ex[3]
    );
    assert_eq!(ex[3].groups[0].checks[0].actual.as_deref(), Some("2"));
    // The second test used the first one's capture in its URL and saw its own trace.
    let again = &result.tests[1];
    assert_eq!(again.status, Status::Passed, "{again:#?}");
    assert_ne!(again.steps[0].trace_id, step.trace_id);
    assert_eq!(result.exit_code(), 1);
    // The verdict comes after the settle window, not after a polling interval or the timeout.
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");

    receiver.shutdown().await.expect("shutdown");
    let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_step_error_and_dependents_are_skipped() {
    let store = TraceStore::new(StoreLimits::default());
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let suite = format!(
        "test first {{\n  trigger http GET \"http://{closed}/\"\n  expect response {{\n    let id = body\n  }}\n}}\n\ntest second {{\n  trigger http GET \"http://{closed}/${{first.id}}\"\n}}\n"
    );
    let result = run_suite(
        "refused.tbt",
        suite.into_bytes(),
        store,
        RunOptions::default(),
    )
    .await;
    assert_eq!(result.tests[0].status, Status::Error);
    let reason = result.tests[0].steps[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("refused"), "{reason}");
    assert_eq!(result.tests[1].status, Status::Skipped);
    assert_eq!(result.exit_code(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_redirects_in_a_suite_reaches_the_runtime() {
    use axum::response::Redirect;
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/old", get(|| async { Redirect::to("/new") }))
        .route("/new", get(|| async { "landed" }));
    let addr = crate::support::serve(app).await;
    let suite = format!(
        r#"test as_sent {{
  trigger http GET "http://{addr}/old"
  expect response {{
    status == 303
    header("location") == "/new"
  }}
}}

test followed {{
  trigger http GET "http://{addr}/old" {{
    follow_redirects true
  }}
  expect response {{
    status == 200
    body == "landed"
  }}
}}
"#
    );
    let store = TraceStore::new(StoreLimits::default());
    let result = run_suite(
        "redirects.tbt",
        suite.into_bytes(),
        store,
        RunOptions::default(),
    )
    .await;
    for test in &result.tests {
        assert_eq!(test.status, Status::Passed, "{test:#?}");
    }
    assert_eq!(result.tests.len(), 2);
}

#[test]
fn a_receiver_port_in_use_is_an_infrastructure_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        d.path().join("s.tbt"),
        "test t {\n  trigger http GET \"http://127.0.0.1:1/\"\n}\n",
    )
    .expect("write");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args([
            "run",
            "--otlp-grpc",
            &addr,
            "--otlp-http",
            "127.0.0.1:0",
            "s.tbt",
        ])
        .current_dir(d.path())
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{addr} is already in use")), "{err}");
    // It says how to choose another.
    assert!(err.contains("`--otlp-grpc 127.0.0.1:0`"), "{err}");
    assert!(err.contains("`otlp_grpc` in tbt.toml"), "{err}");
}

/// Runs `tbt run main.tbt` in a folder holding `files` (whose text names the port as `{port}`)
/// with a free loopback port for a `python3 -m http.server` service, and checks that the test
/// passed and the service was stopped. Skips (returns false) without python3.
fn run_with_web_service(files: &[(&str, &str)]) -> bool {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: python3 is not installed (it plays the service under test)");
        return false;
    }
    let port = free_port();
    let d = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let text = text.replace("{port}", &port.to_string());
        std::fs::write(d.path().join(name), text).expect("write");
    }
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args([
            "run",
            "--otlp-grpc",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
            "--color",
            "never",
            "main.tbt",
        ])
        .current_dir(d.path())
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("1 passed"), "{err}");
    // The service was stopped: the port is free again.
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "the service still listens"
    );
    true
}

const WEB_SERVICE: &str = r#"service web {
  run "python3" ["-m", "http.server", "{port}", "--bind", "127.0.0.1"]
  ready http "http://127.0.0.1:{port}/" within 20s
}
"#;

const INDEX_TEST: &str = r#"test index {
  trigger http GET "http://127.0.0.1:{port}/"
  expect response {
    status == 200
  }
}
"#;

#[test]
fn services_are_started_ready_checked_and_stopped_by_tbt_run() {
    run_with_web_service(&[("main.tbt", &format!("{WEB_SERVICE}\n{INDEX_TEST}"))]);
}

/// A suite that imports its services from a shared module gets them started (they were silently
/// not started, and every test failed with "connection refused").
#[test]
fn services_of_imported_modules_are_started() {
    let shared = format!(
        "{WEB_SERVICE}\n# Tests of an imported module do not run.\n{}",
        INDEX_TEST.replace("test index", "test not_run")
    );
    run_with_web_service(&[
        ("services.tbt", &shared),
        (
            "main.tbt",
            &format!("import \"./services.tbt\"\n\n{INDEX_TEST}"),
        ),
    ]);
}

#[test]
fn a_service_that_exits_early_is_an_infrastructure_error_with_its_output() {
    let suite = "service broken {\n  run \"/bin/sh\" [\"-c\", \"echo cannot open database >&2; exit 7\"]\n  ready tcp \"127.0.0.1:9\" within 20s\n}\n\ntest t {\n  trigger http GET \"http://127.0.0.1:9/\"\n}\n";
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(d.path().join("s.tbt"), suite).expect("write");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args([
            "run",
            "--otlp-grpc",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
            "--color",
            "never",
            "s.tbt",
        ])
        .current_dir(d.path())
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("broken")
            && err.contains("exit code 7")
            && err.contains("cannot open database"),
        "{err}"
    );
}

const TRANSACTION: &str = r#"test order "Create, then fetch with the captured id" {
  step create {
    trigger http GET "${base}/orders/7"
    expect response {
      let id = json("$.id")
    }
  }
  step fetch {
    trigger http GET "${base}/orders/${create.id}"
    expect response {
      json("$.id") == create.id
    }
    expect span[kind == server] {
      http.route == "/orders/{id}"
    }
  }
}
"#;

/// A test's duration is its wall time. Each step here waits for its trace (settle 200 ms at
/// least), and the second step's trigger waits only for the first's trigger, so the steps
/// overlap: the test takes less than the sum of its steps (which it used to print).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tests_duration_is_its_wall_time_when_steps_overlap() {
    let (store, receiver) = live_receiver().await;
    let (base, provider) = start_shop(
        receiver.grpc_endpoint().expect("grpc endpoint"),
        Export::Grpc,
    )
    .await;
    let step = |name: &str| {
        format!(
            "  step {name} {{\n    trigger http GET \"{base}/orders/7\"\n    expect span[kind == server] {{\n      count == 1\n    }}\n  }}\n"
        )
    };
    let suite = format!("test overlap {{\n{}{}}}\n", step("one"), step("two"));
    let opts = RunOptions {
        timeout: Duration::from_secs(20),
        settle: Duration::from_millis(200),
        ..RunOptions::default()
    };
    let result = run_suite("overlap.tbt", suite.into_bytes(), store.clone(), opts).await;
    let t = &result.tests[0];
    assert_eq!(t.status, Status::Passed, "{t:#?}");
    let steps: Vec<u64> = t.steps.iter().map(|s| s.duration_ms).collect();
    assert!(
        steps.iter().all(|&ms| ms >= 200),
        "each waited settle: {steps:?}"
    );
    let sum: u64 = steps.iter().sum();
    let longest = steps.iter().copied().max().unwrap_or(0);
    assert!(
        t.duration_ms < sum && t.duration_ms >= longest,
        "test {} ms, steps {steps:?}",
        t.duration_ms
    );
    receiver.shutdown().await.expect("shutdown");
    let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_over_otlp_http_passes_captures_between_steps() {
    let (store, receiver) = live_receiver().await;
    let (base, provider) = start_shop(
        receiver.http_endpoint().expect("http endpoint"),
        Export::Http,
    )
    .await;
    let suite = format!("let base = \"{base}\"\n\n{TRANSACTION}");
    let opts = RunOptions {
        timeout: Duration::from_secs(20),
        settle: Duration::from_millis(200),
        ..RunOptions::default()
    };
    let result = run_suite("tx.tbt", suite.into_bytes(), store.clone(), opts).await;
    let t = &result.tests[0];
    assert_eq!(t.status, Status::Passed, "{t:#?}");
    assert_eq!(t.steps.len(), 2);
    assert_eq!(
        t.steps[1].spans, 4,
        "spans exported over OTLP/HTTP arrived: {:#?}",
        t.steps[1]
    );
    assert_ne!(
        t.steps[0].trace_id, t.steps[1].trace_id,
        "each step has its own trace"
    );
    receiver.shutdown().await.expect("shutdown");
    let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
}

/// A real gRPC server (tonic-health) on loopback.
async fn health_server() -> String {
    let (_reporter, service) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_exec_triggers_through_the_runner() {
    let grpc = health_server().await;
    let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/protos/health.proto");
    let suite = format!(
        r#"test health {{
  trigger grpc "grpc.health.v1.Health/Check" at "{grpc}" {{
    proto "{proto}"
    message {{ "service": "" }}
  }}
  expect response {{
    status == 0
    json("$.status") == "SERVING"
  }}
}}

test process {{
  trigger exec "/usr/bin/env" [] {{
    env MODE = "bench"
  }}
  expect response {{
    exit_code == 0
    stdout contains "TRACEPARENT=00-"
    stdout contains "MODE=bench"
  }}
}}
"#,
        proto = proto.display()
    );
    let opts = RunOptions {
        settle: Duration::from_millis(50),
        ..RunOptions::default()
    };
    let store = TraceStore::new(StoreLimits::default());
    let result = run_suite("rpc.tbt", suite.into_bytes(), store.clone(), opts).await;
    for t in &result.tests {
        assert_eq!(t.status, Status::Passed, "{t:#?}");
    }
    assert_eq!(result.summary.passed, 2);
    // Neither server is instrumented, so a trace expectation would wait for spans that never
    // come (only tbt's own span is not a complete trace); tbt's root span is checked in the store.
    let root = |step: &tbt::run::result::StepResult| {
        let id = TraceId::from_hex(step.trace_id.as_deref().expect("trace id")).expect("hex");
        let t = Trace::from_resource_spans(&store.get(id).expect("recorded").resource_spans, None);
        assert_eq!(t.len(), 1, "tbt's own span only");
        assert_eq!(&**t.service(0), "tbt");
        t
    };
    let grpc_root = root(&result.tests[0].steps[0]);
    assert_eq!(
        grpc_root.attr_by_name(0, "rpc.method"),
        Some(&Value::Str("grpc.health.v1.Health/Check".into()))
    );
    let exec_root = root(&result.tests[1].steps[0]);
    assert_eq!(&*exec_root.span(0).name, "env");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_that_never_settles_fails_at_the_timeout_with_what_was_seen() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as ProtoKv, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    let store = TraceStore::new(StoreLimits::default());
    let trace_id = [7u8; 16];
    // A span whose parent never arrives: the trace cannot settle.
    store.ingest(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(ProtoResource {
                attributes: vec![ProtoKv {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("orders".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: trace_id.to_vec(),
                    span_id: vec![1; 8],
                    parent_span_id: vec![9; 8],
                    name: "charge card".into(),
                    start_time_unix_nano: 1,
                    end_time_unix_nano: 2,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    let suite = "test t {\n  trigger trace \"07070707070707070707070707070707\"\n  expect span[name == \"refund\"]\n}\n";
    let opts = RunOptions {
        timeout: Duration::from_millis(500),
        settle: Duration::from_millis(50),
        ..RunOptions::default()
    };
    let result = run_suite("t.tbt", suite.as_bytes().to_vec(), store, opts).await;
    let step = &result.tests[0].steps[0];
    assert_eq!(step.status, Status::Failed);
    let reason = step.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("at the timeout (500ms) the trace held 1 span (orders 1)"),
        "{reason}"
    );
    assert!(
        reason.contains("still waiting for the parents of 1 span that have not arrived"),
        "{reason}"
    );
    assert!(
        matches!(step.stop, Some(tbt::run::completion::Stop::Timeout { .. })),
        "{:?}",
        step.stop
    );
}

#[test]
fn an_otlp_token_is_required_by_the_receiver_and_handed_to_services() {
    let suite = "service probe {\n  run \"/bin/sh\" [\"-c\", \"echo \\\"headers: $OTEL_EXPORTER_OTLP_HEADERS\\\"; exec sleep 30\"]\n  ready log \"headers: authorization=Bearer%20\" within 20s\n}\n\ntest t {\n  trigger exec \"/bin/true\" []\n  expect response {\n    exit_code == 0\n  }\n}\n";
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(d.path().join("s.tbt"), suite).expect("write");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args([
            "run",
            "--otlp-grpc",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
            "--color",
            "never",
            "--verbose",
            "s.tbt",
        ])
        .env("TBT_OTLP_TOKEN", "tok-5ecret-value")
        .current_dir(d.path())
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the service saw the header: {err}"
    );
    assert!(!err.contains("tok-5ecret-value"), "{err}");
}

#[test]
fn ctrl_c_stops_the_run_cleanly_and_still_writes_the_reports() {
    use std::io::{BufRead, BufReader};
    let d = tempfile::tempdir().expect("tempdir");
    let marker = d.path().join("started");
    // The trigger runs for a long time; Ctrl-C must cancel it (its process group is killed).
    let suite = format!(
        "test slow {{\n  trigger exec \"/bin/sh\" [\"-c\", \"touch {}; exec sleep 60\"] {{\n    timeout 120s\n  }}\n  expect response {{\n    exit_code == 0\n  }}\n}}\n",
        marker.display()
    );
    std::fs::write(d.path().join("s.tbt"), suite).expect("write");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args([
            "run",
            "--otlp-grpc",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
            "--color",
            "never",
            "--report",
            "json=r.json",
            "s.tbt",
        ])
        .current_dir(d.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Readiness: the receiver line is printed before the tests start.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("first line");
    assert!(line.contains("receiving OTLP"), "{line}");
    // Wait (bounded) until the trigger's process runs, then interrupt.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the trigger never started"
        );
        std::thread::yield_now();
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    let started = std::time::Instant::now();
    let status = child.wait().expect("exits");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped promptly"
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("stderr");
    assert_eq!(
        status.code(),
        Some(130),
        "an interrupted run says so: {rest}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("r.json")).expect("report written"),
    )
    .expect("json");
    assert_eq!(report["tests"][0]["status"], "skipped", "{rest}");
    assert!(rest.contains("skipped slow"), "{rest}");
}

/// Nothing is decided on tbt's own span alone, a failure no more than a pass: `every span is the
/// orders service's` already fails on tbt's trigger span, but the trigger reached a system, so the
/// verdict waits for that system's spans (the SDK's next batch, after the answer) and is judged,
/// and reported, on the whole trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_on_tbts_own_span_waits_for_the_systems_spans() {
    let (store, receiver) = live_receiver().await;
    let batches = Export::HttpBatched(Duration::from_millis(500));
    let (base, provider) =
        start_shop(receiver.http_endpoint().expect("http endpoint"), batches).await;
    let suite = format!(
        "test fetch {{\n  trigger http GET \"{base}/orders/7\"\n  expect span {{\n    service == \"orders\"\n  }}\n}}\n"
    );
    let opts = waiting_opts();
    let result = run_suite("own.tbt", suite.into_bytes(), store, opts).await;
    let test = &result.tests[0];
    assert_eq!(test.status, Status::Failed, "{test:#?}");
    let step = &test.steps[0];
    assert_eq!(
        step.spans, 4,
        "judged on tbt's span, the server span and two queries: {step:#?}"
    );
    assert!(
        matches!(step.stop, Some(tbt::run::completion::Stop::Decided)),
        "{:?}",
        step.stop
    );
    let failed_on: Vec<&str> = step.expectations[0]
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.span.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(
        failed_on.len(),
        1,
        "only tbt's span is not the orders service's: {step:#?}"
    );
    assert!(failed_on[0].contains("(tbt,"), "{failed_on:?}");
    let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
}

/// Rule 2 (issue 27): when one expectation fails for good (`expect no` matched the N+1's
/// queries), the step ends; another that fails only because its spans have not arrived (nothing
/// of `payments` yet) is reported as undecided, with what the trace still lacked — not as
/// "the selector matched no spans".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_failure_leaves_the_others_undecided_with_the_reason() {
    let (store, receiver) = live_receiver().await;
    let batches = Export::HttpBatched(Duration::from_millis(300));
    let (base, provider) =
        start_shop(receiver.http_endpoint().expect("http endpoint"), batches).await;
    let suite = format!(
        "test fetch {{\n  trigger http GET \"{base}/orders/7\"\n  expect no span[name == \"SELECT orders\"]\n  expect span[service == \"payments\"]\n}}\n"
    );
    let opts = waiting_opts();
    let result = run_suite("undecided.tbt", suite.into_bytes(), store, opts).await;
    let test = &result.tests[0];
    assert_eq!(test.status, Status::Failed, "{test:#?}");
    assert_eq!(result.summary.failed, 1, "{:?}", result.summary);
    let step = &test.steps[0];
    assert!(
        matches!(step.stop, Some(tbt::run::completion::Stop::Decided)),
        "the `expect no` decided the step: {:?}",
        step.stop
    );
    let [absence, payments] = &step.expectations[..] else {
        panic!("two expectations: {step:#?}");
    };
    assert_eq!(absence.status, Status::Failed, "{absence:#?}");
    assert_eq!(absence.selected, 2, "{absence:#?}");
    assert_eq!(payments.status, Status::Undecided, "{payments:#?}");
    assert!(
        payments
            .message
            .starts_with("undecided: the trace was incomplete when the step ended"),
        "{}",
        payments.message
    );
    assert!(
        payments.message.contains("still to come: ")
            && payments
                .message
                .contains("so far the selector matched no spans"),
        "says what was missing and what it saw: {}",
        payments.message
    );
    let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
}

/// Point 3 of issue 27: a passing step that waited long for its trace says so. Against an SDK
/// that batches every 300 ms, `fast` (a bare `expect`, which no later span can break) is
/// decided `settle` after its spans; `slow` (a `count`, which a later span could break) waits
/// for the service's next export after the answer's tail — far more than 1.5 × the slowest
/// export delay of the run — and the summary counts it, naming the service and how its period
/// was estimated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_step_that_waited_long_says_what_for() {
    let (store, receiver) = live_receiver().await;
    let batches = Export::HttpBatched(Duration::from_millis(300));
    let (base, provider) =
        start_shop(receiver.http_endpoint().expect("http endpoint"), batches).await;
    let suite = format!(
        "test fast {{\n  trigger http GET \"{base}/orders/1\"\n  expect span[name == \"SELECT orders\"]\n}}\n\ntest slow {{\n  trigger http GET \"{base}/orders/2\"\n  expect span[name == \"SELECT orders\"] {{\n    count == 2\n  }}\n}}\n"
    );
    let opts = waiting_opts();
    let result = run_suite("waited.tbt", suite.into_bytes(), store, opts).await;
    assert_eq!(result.summary.passed, 2, "{:#?}", result.tests);
    assert_eq!(result.summary.waited_long, 1, "{:#?}", result.tests);
    let fast = &result.tests[0].steps[0];
    assert_eq!(fast.waited, None, "{fast:#?}");
    let slow = &result.tests[1].steps[0];
    let waited = slow
        .waited
        .as_deref()
        .unwrap_or_else(|| panic!("{slow:#?}"));
    assert!(
        waited.contains("quiet until `orders`'s next export (every ~")
            && waited.contains("guessed from its first batch"),
        "{waited}"
    );
    let text = tbt::report::terminal::lines(&result, false);
    assert!(
        text.ends_with(
            "1 passing step waited for its trace longer than 1.5 × the slowest export delay seen: `-v` or the JSON report's `waited` says why\n"
        ),
        "{text}"
    );
    let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
}

/// Parent cycles are a shape, not a wait (issue 28). A service answers, then exports over
/// OTLP/HTTP (a real socket to the receiver), in the request's trace, its server span under
/// tbt's and spans that buggy instrumentation writes: one naming itself as its parent, two
/// naming each other. Every parent is there, so the step is judged at `settle`, not at its 20 s
/// timeout, and the step's report notes the broken cycles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_cycles_are_judged_at_settle_and_noted() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as PKeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource as PResource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as PSpan};
    use prost::Message;

    let (store, receiver) = live_receiver().await;
    let otlp = format!(
        "{}/v1/traces",
        receiver.http_endpoint().expect("http endpoint")
    );
    let app = axum::Router::new().route(
        "/loop",
        axum::routing::get(move |headers: HeaderMap| {
            let otlp = otlp.clone();
            async move {
                // traceparent: 00-<trace id>-<parent id>-01
                let tp = headers
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let parts: Vec<&str> = tp.split('-').collect();
                let hex = |s: &str| -> Vec<u8> {
                    (0..s.len() / 2)
                        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
                        .collect()
                };
                let (trace_id, tbt_span) = (hex(parts[1]), hex(parts[2]));
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                let span = |id: u8, parent: Vec<u8>, name: &str| PSpan {
                    trace_id: trace_id.clone(),
                    span_id: vec![0, 0, 0, 0, 0, 0, 0, id],
                    parent_span_id: parent,
                    name: name.into(),
                    kind: 2,
                    start_time_unix_nano: now - 1_000_000,
                    end_time_unix_nano: now,
                    ..Default::default()
                };
                let id = |n: u8| vec![0, 0, 0, 0, 0, 0, 0, n];
                let request = ExportTraceServiceRequest {
                    resource_spans: vec![ResourceSpans {
                        resource: Some(PResource {
                            attributes: vec![PKeyValue {
                                key: "service.name".into(),
                                value: Some(AnyValue {
                                    value: Some(any_value::Value::StringValue("looper".into())),
                                }),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }),
                        scope_spans: vec![ScopeSpans {
                            spans: vec![
                                span(1, tbt_span, "GET /loop"),
                                span(2, id(2), "own parent"),
                                span(3, id(4), "loop a"),
                                span(4, id(3), "loop b"),
                            ],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                };
                let sent = reqwest::Client::new()
                    .post(&otlp)
                    .header("content-type", "application/x-protobuf")
                    .body(request.encode_to_vec())
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                format!("exported: {sent:?}")
            }
        }),
    );
    let addr = crate::support::serve(app).await;
    let suite = format!(
        "test loops {{\n  trigger http GET \"http://{addr}/loop\"\n  expect response {{\n    body == \"exported: Ok(200)\"\n  }}\n  expect span[name == \"loop a\"] {{\n    count == 1\n  }}\n  expect span[name == \"own parent\"] {{\n    count == 1\n  }}\n}}\n"
    );
    let opts = waiting_opts();
    let result = run_suite("loops.tbt", suite.into_bytes(), store, opts).await;
    let step = &result.tests[0].steps[0];
    assert_eq!(step.status, Status::Passed, "{step:#?}");
    assert!(
        matches!(step.stop, Some(tbt::run::completion::Stop::Settled { .. })),
        "judged at settle, not at the timeout: {:?}",
        step.stop
    );
    assert!(step.duration_ms < 5_000, "{step:#?}");
    assert!(
        step.trace_notes
            .iter()
            .any(|n| n.contains("parent cycle(s) broken")),
        "the report notes the cycles: {:?}",
        step.trace_notes
    );
}

/// One scope per step (issue 29): a step's `timeout` and `settle` see its lets and its test's —
/// the timeout from a test-level let stops the wait at 1 s, not the run's 10 s; the settle from a
/// step let is the quiet before the verdict — and an error in one is reported at its line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_and_settle_from_lets_take_effect_and_errors_name_their_line() {
    let (store, receiver) = live_receiver().await;
    let (base, provider) = start_shop(
        receiver.grpc_endpoint().expect("grpc endpoint"),
        Export::Grpc,
    )
    .await;
    let suite = format!(
        r#"test waits {{
  let t = 1s
  timeout t
  step one {{
    trigger exec "true" []
    expect span[service == "nobody"] {{
      count == 1
    }}
  }}
}}

test quiet {{
  step one {{
    let s = 700ms
    settle s
    trigger http GET "{base}/orders/1"
    expect span[name == "SELECT orders"] {{
      count == 2
    }}
  }}
}}

test broken {{
  step one {{
    let n = "three"
    timeout 1s * int(n)
    trigger exec "true" []
  }}
}}
"#
    );
    let opts = RunOptions {
        timeout: Duration::from_secs(10),
        settle: Duration::from_millis(100),
        ..RunOptions::default()
    };
    let result = run_suite("timing.tbt", suite.into_bytes(), store, opts).await;
    let waits = &result.tests[0].steps[0];
    assert_eq!(waits.status, Status::Failed, "{waits:#?}");
    assert!(
        waits
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("at the timeout (1s)")),
        "{waits:#?}"
    );
    assert!(waits.duration_ms < 5_000, "{waits:#?}");
    let quiet = &result.tests[1].steps[0];
    assert_eq!(quiet.status, Status::Passed, "{quiet:#?}");
    match &quiet.stop {
        Some(tbt::run::completion::Stop::Settled { quiet_ms, .. }) => {
            assert!(*quiet_ms >= 700, "{quiet:#?}")
        }
        other => panic!("{other:?}"),
    }
    let broken = &result.tests[2].steps[0];
    assert_eq!(broken.status, Status::Error, "{broken:#?}");
    assert!(
        broken
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("`timeout` (timing.tbt:26:13): `int` cannot parse")),
        "{broken:#?}"
    );
    let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
}

/// A test-level `let` is evaluated once per run of the test: `uuid()` there is the same value in
/// both of its steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_level_let_is_one_value_for_every_step() {
    let store = TraceStore::new(StoreLimits::default());
    let suite = r#"test same {
  let id = uuid()
  step create {
    trigger exec "echo" [id]
    expect response {
      let seen = stdout
    }
  }
  step fetch {
    trigger exec "echo" [id]
    expect response {
      stdout == create.seen
    }
  }
}
"#;
    let result = run_suite(
        "same.tbt",
        suite.as_bytes().to_vec(),
        store,
        RunOptions::default(),
    )
    .await;
    let test = &result.tests[0];
    assert_eq!(test.status, Status::Passed, "{test:#?}");
}
