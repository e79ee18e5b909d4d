//! Records traces with the real OpenTelemetry Rust SDK (in-memory exporter), converts them to
//! OTLP with `opentelemetry-proto`'s transform, and writes them as OTLP JSON fixtures under
//! `tests/traces/` when missing. Existing fixtures are kept (ids are random), but a fresh
//! recording is always made and checked against the committed one, so the SDK → OTLP → model
//! path is exercised on every run.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Link, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tbt_compiler::trace::Trace;

struct Service {
    resource: Resource,
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

fn service(name: &str) -> Service {
    let resource = Resource::builder_empty()
        .with_service_name(name.to_string())
        .with_attributes([
            KeyValue::new("deployment.environment.name", "test"),
            KeyValue::new("telemetry.sdk.language", "rust"),
        ])
        .build();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_resource(resource.clone())
        .build();
    Service {
        resource,
        exporter,
        provider,
    }
}

fn at(ms: u64) -> SystemTime {
    // A fixed base so durations in the fixture are meaningful and stable.
    UNIX_EPOCH + Duration::from_secs(1_763_000_000) + Duration::from_millis(ms)
}

/// A checkout across four services: gateway → orders → payments, orders → kafka → shipping.
fn record_checkout() -> TracesData {
    let gateway = service("gateway");
    let orders = service("orders");
    let payments = service("payments");
    let shipping = service("shipping");
    let (gw, or, pay, ship) = (
        gateway.provider.tracer("gateway-http"),
        orders.provider.tracer("orders-app"),
        payments.provider.tracer("payments-app"),
        shipping.provider.tracer("shipping-worker"),
    );

    let root = gw
        .span_builder("GET /checkout")
        .with_kind(SpanKind::Server)
        .with_start_time(at(0))
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/checkout"),
            KeyValue::new("url.path", "/checkout"),
            KeyValue::new("http.response.status_code", 200i64),
        ])
        .start(&gw);
    let cx = Context::current_with_span(root);
    let call = gw
        .span_builder("POST")
        .with_kind(SpanKind::Client)
        .with_start_time(at(2))
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("server.address", "orders"),
        ])
        .start_with_context(&gw, &cx);
    let cx_call = cx.with_span(call);
    let server = or
        .span_builder("POST /orders")
        .with_kind(SpanKind::Server)
        .with_start_time(at(3))
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.route", "/orders"),
            KeyValue::new("http.response.status_code", 201i64),
        ])
        .start_with_context(&or, &cx_call);
    let cx_orders = cx_call.with_span(server);
    for (i, (name, q)) in [
        ("SELECT products", "SELECT * FROM products WHERE sku = $1"),
        ("SELECT products", "SELECT * FROM products WHERE sku = $1"),
        (
            "INSERT orders",
            "INSERT INTO orders (sku, qty) VALUES ($1, $2)",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let start = 5 + 4 * i as u64;
        let mut s = or
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_start_time(at(start))
            .with_attributes([
                KeyValue::new("db.system.name", "postgresql"),
                KeyValue::new("db.query.text", q),
                KeyValue::new("db.namespace", "shop"),
            ])
            .start_with_context(&or, &cx_orders);
        opentelemetry::trace::Span::end_with_timestamp(&mut s, at(start + 3));
    }
    let charge = pay
        .span_builder("charge card")
        .with_kind(SpanKind::Server)
        .with_start_time(at(20))
        .with_attributes([
            KeyValue::new("payment.amount", 99.99f64),
            KeyValue::new("payment.currency", "EUR"),
            KeyValue::new("payment.retries", 0i64),
            KeyValue::new("payment.captured", true),
            KeyValue::new(
                "payment.methods",
                Value::Array(Array::String(vec![
                    StringValue::from("card"),
                    StringValue::from("3ds"),
                ])),
            ),
        ])
        .start_with_context(&pay, &cx_orders);
    let cx_charge = cx_orders.with_span(charge);
    let mut fraud = pay
        .span_builder("fraud check")
        .with_kind(SpanKind::Internal)
        .with_start_time(at(22))
        .start_with_context(&pay, &cx_charge);
    opentelemetry::trace::Span::add_event_with_timestamp(
        &mut fraud,
        "exception",
        at(24),
        vec![
            KeyValue::new("exception.type", "Timeout"),
            KeyValue::new("exception.message", "risk service timed out"),
        ],
    );
    opentelemetry::trace::Span::set_status(&mut fraud, Status::error("risk service timed out"));
    opentelemetry::trace::Span::end_with_timestamp(&mut fraud, at(25));
    cx_charge.span().set_status(Status::Ok);
    cx_charge.span().end_with_timestamp(at(50));
    let mut publish = or
        .span_builder("shipping publish")
        .with_kind(SpanKind::Producer)
        .with_start_time(at(52))
        .with_attributes([
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.destination.name", "shipping"),
            KeyValue::new("messaging.operation.type", "send"),
        ])
        .start_with_context(&or, &cx_orders);
    let producer_cx = opentelemetry::trace::Span::span_context(&publish).clone();
    opentelemetry::trace::Span::end_with_timestamp(&mut publish, at(53));
    cx_orders.span().end_with_timestamp(at(60));
    cx_call.span().end_with_timestamp(at(61));
    cx.span().end_with_timestamp(at(63));
    // The consumer continues the producer's context from the message headers and links to it.
    let consumer_parent = Context::new().with_remote_span_context(producer_cx.clone());
    let mut consume = ship
        .span_builder("shipping process")
        .with_kind(SpanKind::Consumer)
        .with_start_time(at(70))
        .with_links(vec![Link::with_context(producer_cx)])
        .with_attributes([
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.destination.name", "shipping"),
            KeyValue::new("messaging.operation.type", "process"),
        ])
        .start_with_context(&ship, &consumer_parent);
    opentelemetry::trace::Span::end_with_timestamp(&mut consume, at(90));

    let mut resource_spans = Vec::new();
    for s in [&gateway, &orders, &payments, &shipping] {
        s.provider.force_flush().unwrap();
        let spans = s.exporter.get_finished_spans().unwrap();
        resource_spans.extend(group_spans_by_resource_and_scope(
            spans,
            &ResourceAttributesWithSchema::from(&s.resource),
        ));
    }
    TracesData { resource_spans }
}

fn names(t: &Trace) -> Vec<String> {
    let mut v: Vec<String> = t
        .spans()
        .iter()
        .map(|s| format!("{} {:?}", s.name, s.kind))
        .collect();
    v.sort();
    v
}

#[test]
fn record_sdk_checkout_fixture() {
    let data = record_checkout();
    let fresh_json = serde_json::to_string_pretty(&data).unwrap();
    let fresh = Trace::from_otlp_json(&fresh_json, None).unwrap();
    assert_eq!(fresh.len(), 10, "{:?}", names(&fresh));
    assert_eq!(
        fresh.roots().len(),
        1,
        "one root: the consumer continues the producer's context (and links to it)"
    );
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/traces/sdk_checkout.json");
    if !path.exists() {
        std::fs::write(&path, &fresh_json).unwrap();
    }
    let committed = Trace::from_otlp_json(&std::fs::read_to_string(&path).unwrap(), None).unwrap();
    assert_eq!(
        names(&committed),
        names(&fresh),
        "the committed fixture has the shape the SDK records today"
    );
    assert_eq!(committed.notes(), &Default::default());
}
