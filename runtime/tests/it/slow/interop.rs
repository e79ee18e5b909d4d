//! Interop: programs instrumented by other OpenTelemetry SDKs send to tbt's embedded receiver, and
//! a suite's expectations — written with the standard library — are evaluated on their spans by
//! the real runtime: the suite's `service` block starts the program (through tbt's supervisor),
//! tbt's HTTP trigger injects `traceparent`, the SDK's spans join tbt's trace.
//!
//! - `tests/interop/python/app.py`: a Flask app under `opentelemetry-instrument` (zero-code
//!   instrumentation), exporting OTLP over gRPC with the instrumentations' default (older)
//!   attribute names, and over HTTP/protobuf with the current names
//!   (`OTEL_SEMCONV_STABILITY_OPT_IN=http,database`) — one suite passes on both.
//! - `tests/interop/node/app.js`: a Node.js server with `@opentelemetry/sdk-node`, exporting OTLP
//!   HTTP/JSON.
//!
//! The packages are installed by `tests/interop/install.sh` (a virtualenv under
//! `target/interop/venv` or `$TBT_INTEROP_VENV`, `npm ci` in the app folder); `.ci/run` calls it,
//! and these tests call it too (a no-op once done). `TBT_INTEROP_PYTHON` (a virtualenv's `bin`
//! directory) and `TBT_INTEROP_NODE_APP` (an app folder with its `node_modules`) use existing
//! installations instead. A test is skipped, with the reason printed, only when Python or Node is
//! missing — and under `CI=true` not even then: it fails. Packages that cannot be installed (no
//! network) or a wrong path in those variables fail the test.
//!
//! With `TBT_RECORD_FIXTURES=1` the SDKs' spans of each run are written as OTLP JSON to
//! `compiler/tests/traces/` (what `compiler/tests/it/stdlib.rs` tests the standard library on);
//! otherwise each run is compared with the committed fixture: same spans (service, name, kind,
//! attribute names), so a fixture cannot silently drift from what the SDK sends.

use std::collections::HashMap;
use std::path::Path;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::TracesData;
use tbt::receiver::{Receiver, ReceiverConfig};
use tbt::run::result::{RunResult, Status};
use tbt::run::source::EmbeddedSource;
use tbt::run::{RunHost, RunOptions, execute};
use tbt::service::{OtelEnv, Supervisor};
use tbt::store::{StoreLimits, TraceId, TraceStore};
use tbt_compiler::compile::{MemoryLoader, Options, compile};
use tbt_compiler::trace::Trace;

use super::setup::{available, interop_dir, node_app, python_venv, repo};
use crate::support::free_port;

/// What a run left: the result, and the SDK's spans (tbt's own trigger spans left out) of every
/// trace the run's steps started, as OTLP.
struct Outcome {
    result: RunResult,
    exported: TracesData,
    service_log: String,
}

/// Compiles `suite` (it must have no errors, and no warnings: the standard library must not
/// warn), starts its services as `tbt run` does, runs it, stops the services.
async fn run_suite(name: &str, suite: String) -> Outcome {
    tbt::tls::install_crypto_provider();
    let store = TraceStore::new(StoreLimits::default());
    let receiver = Receiver::start(ReceiverConfig::ephemeral(), store.clone())
        .await
        .expect("receiver");
    let grpc = receiver.grpc_endpoint().expect("grpc endpoint");
    let http = receiver.http_endpoint().expect("http endpoint");
    let suite = suite
        .replace("$OTLP_GRPC", &grpc)
        .replace("$OTLP_HTTP", &http);
    let c = compile(
        vec![(name.into(), suite.into_bytes())],
        &mut MemoryLoader::default(),
        &Options::default(),
    );
    assert!(
        c.diagnostics.is_empty(),
        "{}",
        tbt_compiler::render::render_plain(&c.sources, &c.diagnostics)
    );
    let (c, scopes) = tbt::run::prepare(c, HashMap::new());
    let specs = tbt::run::spec::services(c, scopes, &RunHost).expect("service specs");
    let supervisor = match Supervisor::start(specs, OtelEnv::grpc(grpc)).await {
        Ok(s) => s,
        Err(e) => panic!("the service did not start: {}", e.summary()),
    };
    let source = Arc::new(EmbeddedSource::new(store.clone(), "test receiver".into()));
    let opts = RunOptions {
        timeout: Duration::from_secs(20),
        settle: Duration::from_millis(500),
        ..RunOptions::default()
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let result = tokio::time::timeout(
        Duration::from_secs(120),
        execute(c, scopes, source, opts, rx),
    )
    .await
    .expect("the run finishes");
    let service_log = supervisor
        .names()
        .iter()
        .map(|n| supervisor.log_tail(n))
        .collect::<Vec<_>>()
        .join("\n");
    supervisor.stop().await;
    receiver.shutdown().await.expect("shutdown");

    let mut exported = TracesData::default();
    for step in result.tests.iter().flat_map(|t| &t.steps) {
        let Some(snapshot) = step
            .trace_id
            .as_deref()
            .and_then(TraceId::from_hex)
            .and_then(|id| store.get(id))
        else {
            continue;
        };
        exported.resource_spans.extend(
            snapshot
                .resource_spans
                .into_iter()
                .filter(|rs| service_of(rs) != Some("tbt")),
        );
    }
    Outcome {
        result,
        exported,
        service_log,
    }
}

fn service_of(rs: &opentelemetry_proto::tonic::trace::v1::ResourceSpans) -> Option<&str> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    rs.resource
        .as_ref()?
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
}

/// Every test passed, except those named in `failing` (which must have failed).
fn assert_statuses(o: &Outcome, failing: &[&str]) {
    for t in &o.result.tests {
        let want = if failing.contains(&t.name.as_str()) {
            Status::Failed
        } else {
            Status::Passed
        };
        assert_eq!(
            t.status, want,
            "test `{}`: {t:#?}\nservice output:\n{}",
            t.name, o.service_log
        );
    }
}

/// The spans of a trace as comparable lines: service, kind, name, sorted attribute names.
fn shape(t: &Trace) -> Vec<String> {
    let mut v: Vec<String> = (0..t.len() as u32)
        .map(|i| {
            let s = t.span(i);
            let mut keys: Vec<&str> = s.attributes.iter().map(|(k, _)| t.key_name(*k)).collect();
            keys.sort_unstable();
            format!(
                "{} {:?} {:?} [{}]",
                t.service(i),
                s.kind,
                s.name,
                keys.join(" ")
            )
        })
        .collect();
    v.sort();
    v
}

/// Writes the fixture (`TBT_RECORD_FIXTURES=1`), or checks the committed one has the same shape.
fn fixture(name: &str, exported: &TracesData) {
    let path = repo().join("compiler/tests/traces").join(name);
    // Stack traces name files under the checkout: keep local paths out of the fixture.
    let fresh_json = serde_json::to_string_pretty(exported)
        .expect("json")
        .replace(&repo().display().to_string(), "/repo");
    let fresh = Trace::from_otlp_json(&fresh_json, None).expect("the export reads back");
    assert!(!fresh.is_empty(), "the SDK exported spans");
    if std::env::var("TBT_RECORD_FIXTURES").is_ok_and(|v| v == "1") {
        std::fs::write(&path, fresh_json + "\n").expect("write fixture");
        eprintln!("recorded {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (record it with TBT_RECORD_FIXTURES=1)",
            path.display()
        )
    });
    let committed = Trace::from_otlp_json(&committed, None).expect("the fixture reads");
    assert_eq!(
        shape(&committed),
        shape(&fresh),
        "{name} no longer has the spans the SDK sends: record it again with TBT_RECORD_FIXTURES=1"
    );
}

// ------------------------------------------------------------------------------------ Python

/// One suite for both exports: the standard library matches the instrumentations' older
/// attribute names (gRPC run) and the current ones (HTTP run).
const FLASK_SUITE: &str = r#"import "std/http"
import "std/db"
import "std/rpc"
import "std/messaging"
import "std/errors"

let base = "http://127.0.0.1:$PORT"

service flask {
  run "$VENV/opentelemetry-instrument" ["$VENV/python", "app.py"]
  cwd "$APP"
  env PORT = "$PORT"
  env GRPC_PORT = "$GRPC_PORT"
$EXPORT_ENV
  ready http "http://127.0.0.1:$PORT/health" within 60s
}

test order "Create an order, then fetch it through a checkout" {
  step create {
    trigger http POST "${base}/orders" {
      json { "sku": "sku-42", "qty": 2 }
    }
    expect response {
      status == 201
      json("$.available") == 7
      let id = json("$.id")
    }
    # The Flask server span continues tbt's trace: tbt's trigger span is its parent.
    expect span:root > http.server("/orders") {
      count == 1
      service == "flask"
      scope.name == "opentelemetry.instrumentation.flask"
      (http.response.status_code ?? attr("http.status_code")) == 201
    }
    # tbt's own trigger span is an HTTP client span too: it got the 201 as well.
    expect http.status(201) {
      count == 2
    }
    expect http.status(201)[service == "flask"] {
      kind == server
    }
    expect http.server("/orders") > rpc.client("shop.Inventory/Lookup") > rpc.server("shop.Inventory/Lookup")
    expect rpc.status("OK") {
      count == 2
    }
    expect rpc.status(0) {
      count == 2
    }
    expect http.server("/orders") > db.query("sqlite") {
      count == 3
    }
    expect db.operation("INSERT") {
      count == 3
    }
    expect db.table("items") {
      count == 2
    }
    expect messaging.publish("shipping") ~> messaging.receive("shipping")
    expect http.server("/orders") > messaging.publish("shipping")
    expect no errors.all()
  }
  step checkout {
    trigger http GET "${base}/checkout/${create.id}"
    expect response {
      status == 200
      json("$.lines") == 2
    }
    expect http.server("/checkout/<int:order_id>") > http.client("GET") > http.server("/orders/<int:order_id>") >> db.operation("SELECT") {
      count == 3
    }
    expect http.client()[service == "flask"] {
      count == 1
      (url.full ?? attr("http.url")) == "${base}/orders/${create.id}"
    }
  }
}

test n_plus_one "Fetching an order queries each line separately" {
  trigger http GET "${base}/orders/${order.create.id}"
  expect http.server("/orders/<int:order_id>") > db.query() by db.query.text ?? attr("db.statement") {
    count <= 1
  }
}

test unknown_sku "A gRPC NOT_FOUND becomes a 409" {
  trigger http POST "${base}/orders" {
    json { "sku": "missing-1", "qty": 1 }
  }
  expect response {
    status == 409
  }
  expect rpc.status("NOT_FOUND") {
    count == 2
  }
  expect rpc.server("shop.Inventory/Lookup") {
    events contains { "name": "exception" }
  }
  expect no db.query()
}

test failure "An exception is a 500 with an error span" {
  trigger http GET "${base}/fail"
  expect response {
    status == 500
  }
  expect http.server_errors() {
    count == 1
    http.route == "/fail"
  }
  expect errors.exceptions() {
    count == 1
  }
  expect errors.in_service("flask") {
    count == 1
  }
  expect no errors.in_service("tbt")
}
"#;

fn flask_suite(venv: &Path, export_env: &str) -> String {
    FLASK_SUITE
        .replace("$VENV", &venv.display().to_string())
        .replace("$APP", &interop_dir().join("python").display().to_string())
        .replace("$GRPC_PORT", &free_port().to_string())
        .replace("$PORT", &free_port().to_string())
        .replace("$EXPORT_ENV", export_env)
}

/// How many exported spans carry attribute `key`.
fn spans_with(o: &Outcome, key: &str) -> usize {
    o.exported
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .filter(|s| s.attributes.iter().any(|kv| kv.key == key))
        .count()
}

/// The suite passed on spans that carry the `present` names and none of the `absent` ones.
fn assert_names(o: &Outcome, present: &[&str], absent: &[&str]) {
    for key in present {
        assert!(spans_with(o, key) > 0, "no span has `{key}`");
    }
    for key in absent {
        assert_eq!(spans_with(o, key), 0, "a span has `{key}`");
    }
}

fn check_flask(o: &Outcome) {
    assert_statuses(o, &["n_plus_one"]);
    let n1 = &o.result.tests[1].steps[0].expectations[0];
    assert_eq!(
        n1.groups.len(),
        2,
        "two statements: the order, and the per-line items query: {n1:#?}"
    );
    assert!(
        n1.groups
            .iter()
            .any(|g| g.checks.iter().any(|c| c.actual.as_deref() == Some("2"))),
        "the items query ran twice: {n1:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_under_opentelemetry_instrument_exporting_otlp_grpc() {
    let Some(venv) = available(python_venv(), "interop") else {
        return;
    };
    // tbt's defaults for services: OTLP/gRPC to the receiver. The instrumentations' default
    // attribute names are the older ones (`http.method`, `db.statement`, `rpc.grpc.status_code`).
    let suite = flask_suite(&venv, "  env OTEL_SEMCONV_STABILITY_OPT_IN = \"\"");
    let o = run_suite("flask_grpc.tbt", suite).await;
    check_flask(&o);
    assert_names(
        &o,
        &[
            "http.method",
            "http.status_code",
            "http.target",
            "http.url",
            "db.system",
            "db.statement",
        ],
        &[
            "http.request.method",
            "http.response.status_code",
            "url.path",
            "url.full",
            "db.system.name",
            "db.query.text",
        ],
    );
    fixture("python_flask_grpc.json", &o.exported);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_under_opentelemetry_instrument_exporting_otlp_http_protobuf() {
    let Some(venv) = available(python_venv(), "interop") else {
        return;
    };
    // OTLP over HTTP/protobuf, and the current semantic conventions.
    let export = "  env OTEL_EXPORTER_OTLP_PROTOCOL = \"http/protobuf\"\n  env OTEL_EXPORTER_OTLP_ENDPOINT = \"$OTLP_HTTP\"\n  env OTEL_SEMCONV_STABILITY_OPT_IN = \"http,database\"";
    let suite = flask_suite(&venv, export);
    let o = run_suite("flask_http.tbt", suite).await;
    check_flask(&o);
    assert_names(
        &o,
        &[
            "http.request.method",
            "http.response.status_code",
            "url.path",
            "url.full",
            "db.system.name",
            "db.query.text",
        ],
        &[
            "http.method",
            "http.status_code",
            "http.target",
            "http.url",
            "db.system",
            "db.statement",
        ],
    );
    fixture("python_flask_http.json", &o.exported);
}

// -------------------------------------------------------------------------------------- Node

const NODE_SUITE: &str = r#"import "std/http"
import "std/db"
import "std/messaging"
import "std/errors"

let base = "http://127.0.0.1:$PORT"

service node_shop {
  run "node" ["app.js"]
  cwd "$APP"
  env PORT = "$PORT"
  env OTEL_EXPORTER_OTLP_PROTOCOL = "http/json"
  env OTEL_EXPORTER_OTLP_ENDPOINT = "$OTLP_HTTP"
  ready http "http://127.0.0.1:$PORT/health" within 60s
}

test order "Fetch an order" {
  trigger http GET "${base}/orders/42"
  expect response {
    status == 200
    json("$.available") == 7
  }
  expect span:root > http.server("/orders/{id}") {
    count == 1
    service == "node_shop"
    scope.name == "@opentelemetry/instrumentation-http"
    http.request.method == "GET"
    url.path == "/orders/42"
    http.response.status_code == 200
  }
  expect http.server("/orders/{id}") > http.client("GET") > http.server("/stock/{sku}") {
    count == 1
  }
  expect http.client()[service == "node_shop"] {
    count == 1
    url.full contains "/stock/sku-42"
  }
  expect http.status(200)[service == "node_shop"] {
    count == 3
  }
  expect http.server("/orders/{id}") > db.query("sqlite") {
    count == 3
  }
  expect db.table("items") {
    count == 2
  }
  expect db.operation("SELECT") {
    count == 3
  }
  expect messaging.publish("shipping") ~> messaging.receive("shipping")
  expect http.server("/orders/{id}") >> messaging.receive("shipping")
  expect no errors.all()
}

test n_plus_one "Fetching an order queries each line separately" {
  trigger http GET "${base}/orders/7"
  expect db.query() by db.query.text {
    count <= 1
  }
}

test failure "A declined card is a 500 with an error span" {
  trigger http GET "${base}/fail"
  expect response {
    status == 500
  }
  expect http.server_errors() {
    count == 1
  }
  expect errors.exceptions() {
    count == 1
  }
  expect errors.in_service("node_shop")
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_sdk_exporting_otlp_http_json() {
    let Some(app) = available(node_app(), "interop") else {
        return;
    };
    let suite = NODE_SUITE
        .replace("$APP", &app.display().to_string())
        .replace("$PORT", &free_port().to_string());
    let o = run_suite("node.tbt", suite).await;
    assert_statuses(&o, &["n_plus_one"]);
    let n1 = &o.result.tests[1].steps[0].expectations[0];
    assert!(
        n1.groups
            .iter()
            .any(|g| g.checks.iter().any(|c| c.actual.as_deref() == Some("2"))),
        "the items query ran twice: {n1:#?}"
    );
    fixture("node_http_json.json", &o.exported);
}
