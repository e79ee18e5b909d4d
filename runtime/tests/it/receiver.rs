//! The embedded OTLP receiver and trace store, end to end with real parts: the OpenTelemetry Rust
//! SDK exporting over gRPC, HTTP/protobuf and HTTP/JSON to a receiver on `127.0.0.1:0`, a tonic
//! client and an HTTP client for malformed requests. No sleeps: waits are on the store's watch with
//! a deadline.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener as StdTcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanKind, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    AnyValue as AnyValueProto, KeyValue as ProtoKeyValue, any_value,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{IdGenerator, SdkTracerProvider};
use proptest::prelude::*;
use prost::Message;
use tbt::receiver::http::handle_export;
use tbt::receiver::{Receiver, ReceiverConfig, ReceiverError, RunningReceiver};
use tbt::store::{StoreLimits, TraceId, TraceSnapshot, TraceStore};
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(20);

async fn start(config: ReceiverConfig) -> RunningReceiver {
    // The SDK exporters build reqwest clients over rustls: one provider for the process.
    tbt::tls::install_crypto_provider();
    Receiver::start(config, TraceStore::default())
        .await
        .expect("receiver starts on loopback")
}

/// Makes the SDK use a trace id chosen by the test, so the test can subscribe before export.
#[derive(Debug)]
struct FixedTraceId {
    trace_id: [u8; 16],
    next_span: AtomicU64,
}

impl IdGenerator for FixedTraceId {
    fn new_trace_id(&self) -> opentelemetry::trace::TraceId {
        opentelemetry::trace::TraceId::from_bytes(self.trace_id)
    }
    fn new_span_id(&self) -> opentelemetry::trace::SpanId {
        let n = self.next_span.fetch_add(1, Ordering::Relaxed);
        opentelemetry::trace::SpanId::from_bytes((0x1000 + n).to_be_bytes())
    }
}

#[derive(Clone, Copy, Debug)]
enum Wire {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

/// Exports a two-span trace (server root, client child) with the real SDK and flushes it.
/// Runs on a blocking thread: the SDK's simple processor blocks on each export.
async fn export_with_sdk(
    receiver: &RunningReceiver,
    wire: Wire,
    trace_id: [u8; 16],
    gzip: bool,
    token: Option<&str>,
) {
    let grpc = receiver.grpc_endpoint().unwrap();
    let http = format!("{}/v1/traces", receiver.http_endpoint().unwrap());
    let token = token.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let exporter = match wire {
            Wire::Grpc => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                if let Some(token) = &token {
                    metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
                }
                let mut builder = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(grpc)
                    .with_metadata(metadata);
                if gzip {
                    builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                builder.build().unwrap()
            }
            Wire::HttpProtobuf | Wire::HttpJson => {
                let protocol = match wire {
                    Wire::HttpJson => Protocol::HttpJson,
                    _ => Protocol::HttpBinary,
                };
                let mut headers = HashMap::new();
                if let Some(token) = &token {
                    headers.insert("authorization".to_owned(), format!("Bearer {token}"));
                }
                let mut builder = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(protocol)
                    .with_endpoint(http)
                    .with_headers(headers);
                if gzip {
                    builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                builder.build().unwrap()
            }
        };
        let provider = SdkTracerProvider::builder()
            .with_resource(Resource::builder().with_service_name("checkout").build())
            .with_id_generator(FixedTraceId {
                trace_id,
                next_span: AtomicU64::new(1),
            })
            .with_simple_exporter(exporter)
            .build();
        let tracer = provider.tracer("tbt-test");
        let root = tracer
            .span_builder("GET /checkout")
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.response.status_code", 200i64),
            ])
            .start(&tracer);
        let cx = Context::current_with_span(root);
        let mut child = tracer
            .span_builder("SELECT orders")
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("db.system.name", "postgresql"),
                KeyValue::new("db.response.returned_rows", 3i64),
                KeyValue::new("cache.hit", false),
            ])
            .start_with_context(&tracer, &cx);
        child.end();
        cx.span().end();
        provider.force_flush().unwrap();
        provider.shutdown().unwrap();
    })
    .await
    .unwrap();
}

fn attribute<'a>(attributes: &'a [ProtoKeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn assert_checkout_trace(snapshot: &TraceSnapshot, trace_id: [u8; 16]) {
    assert_eq!(snapshot.span_count, 2);
    let spans: Vec<_> = snapshot.spans().collect();
    assert_eq!(spans.len(), 2);
    let (resource, scope, root) = spans
        .iter()
        .copied()
        .find(|(_, _, s)| s.name == "GET /checkout")
        .expect("root span stored");
    let (_, _, child) = spans
        .iter()
        .copied()
        .find(|(_, _, s)| s.name == "SELECT orders")
        .expect("child span stored");
    let service = attribute(
        &resource.resource.as_ref().unwrap().attributes,
        "service.name",
    );
    assert_eq!(
        service,
        Some(&any_value::Value::StringValue("checkout".into()))
    );
    assert_eq!(scope.scope.as_ref().unwrap().name, "tbt-test");
    assert_eq!(root.trace_id, trace_id);
    assert_eq!(child.trace_id, trace_id);
    assert!(root.parent_span_id.is_empty(), "root has no parent");
    assert_eq!(child.parent_span_id, root.span_id, "child points at root");
    assert_eq!(root.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(child.kind, 3, "SPAN_KIND_CLIENT");
    assert_eq!(
        attribute(&root.attributes, "http.response.status_code"),
        Some(&any_value::Value::IntValue(200))
    );
    assert_eq!(
        attribute(&root.attributes, "http.request.method"),
        Some(&any_value::Value::StringValue("GET".into()))
    );
    assert_eq!(
        attribute(&child.attributes, "db.response.returned_rows"),
        Some(&any_value::Value::IntValue(3))
    );
    assert_eq!(
        attribute(&child.attributes, "cache.hit"),
        Some(&any_value::Value::BoolValue(false))
    );
    assert!(root.end_time_unix_nano >= root.start_time_unix_nano);
    assert!(snapshot.last_arrival.is_some());
}

/// Subscribes before the export, waits (push, with a deadline) until both spans arrived.
async fn sdk_round_trip(wire: Wire, gzip: bool) {
    let receiver = start(ReceiverConfig::ephemeral()).await;
    let trace_id = [
        0x4b,
        0xf9,
        0x2f,
        0x35,
        0x77,
        0xb3,
        0x4d,
        0xa6,
        0xa3,
        0xce,
        0x92,
        0x9d,
        0x0e,
        0x0e,
        0x47,
        wire as u8 + 1,
    ];
    let id = TraceId::from_bytes(&trace_id).unwrap();
    let mut watch = receiver.store().subscribe(id);
    assert_eq!(watch.snapshot().span_count, 0);
    let exporting = export_with_sdk(&receiver, wire, trace_id, gzip, None);
    let waiting = async {
        timeout(DEADLINE, async {
            loop {
                watch.changed().await;
                let snapshot = watch.snapshot();
                if snapshot.span_count >= 2 {
                    return snapshot;
                }
            }
        })
        .await
        .expect("the subscribed waiter is woken by the arrival")
    };
    let ((), snapshot) = tokio::join!(exporting, waiting);
    assert_checkout_trace(&snapshot, trace_id);
    assert_eq!(receiver.store().trace_ids(), vec![id]);
    assert_eq!(receiver.store().stats().spans, 2);
    receiver.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_over_grpc() {
    sdk_round_trip(Wire::Grpc, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_over_grpc_gzip() {
    sdk_round_trip(Wire::Grpc, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_over_http_protobuf() {
    sdk_round_trip(Wire::HttpProtobuf, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_over_http_protobuf_gzip() {
    sdk_round_trip(Wire::HttpProtobuf, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exports_over_http_json() {
    sdk_round_trip(Wire::HttpJson, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_arriving_before_anyone_asks_are_kept() {
    let receiver = start(ReceiverConfig::ephemeral()).await;
    let trace_id = [7; 16];
    export_with_sdk(&receiver, Wire::Grpc, trace_id, false, None).await;
    let mut watch = receiver
        .store()
        .subscribe(TraceId::from_bytes(&trace_id).unwrap());
    assert_checkout_trace(&watch.snapshot(), trace_id);
    // Nothing new arrived after the snapshot: `changed` must not fire.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), watch.changed())
            .await
            .is_err()
    );
    receiver.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_required_on_both_protocols() {
    let token = "s3cret-token";
    let receiver = start(ReceiverConfig {
        bearer_token: Some(token.into()),
        ..ReceiverConfig::ephemeral()
    })
    .await;
    assert!(
        !format!(
            "{:?}",
            ReceiverConfig {
                bearer_token: Some(token.into()),
                ..ReceiverConfig::ephemeral()
            }
        )
        .contains(token)
    );

    // gRPC: missing and wrong token.
    let mut client = TraceServiceClient::connect(receiver.grpc_endpoint().unwrap())
        .await
        .unwrap();
    let status = client
        .export(one_span_request([1; 16]))
        .await
        .expect_err("no token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(!status.message().contains(token));
    let mut request = tonic::Request::new(one_span_request([1; 16]));
    request
        .metadata_mut()
        .insert("authorization", "Bearer wrong".parse().unwrap());
    let status = client.export(request).await.expect_err("wrong token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    // HTTP: missing and wrong token.
    let http = reqwest::Client::new();
    let url = format!("{}/v1/traces", receiver.http_endpoint().unwrap());
    let body = one_span_request([2; 16]).encode_to_vec();
    for auth in [None, Some("Bearer wrong"), Some(token)] {
        let mut request = http
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(body.clone());
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "authorization {auth:?}");
        let text = response.text().await.unwrap();
        assert!(!text.contains(token));
    }
    assert_eq!(receiver.store().stats().spans, 0);

    // The real SDK with the right token gets through on both.
    export_with_sdk(&receiver, Wire::Grpc, [3; 16], false, Some(token)).await;
    export_with_sdk(&receiver, Wire::HttpProtobuf, [4; 16], false, Some(token)).await;
    assert_eq!(receiver.store().stats().spans, 4);
    receiver.shutdown().await.unwrap();
}

fn one_span_request(trace_id: [u8; 16]) -> ExportTraceServiceRequest {
    spans_request(trace_id, 1, "")
}

fn spans_request(trace_id: [u8; 16], count: u64, padding: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: None,
            scope_spans: vec![ScopeSpans {
                scope: None,
                spans: (0..count)
                    .map(|i| Span {
                        trace_id: trace_id.to_vec(),
                        span_id: (i + 1).to_be_bytes().to_vec(),
                        name: format!("span {i}{padding}"),
                        ..Span::default()
                    })
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[tokio::test]
async fn port_in_use_is_a_clear_error() {
    let taken = StdTcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    for config in [
        ReceiverConfig {
            grpc_addr: Some(addr),
            ..ReceiverConfig::ephemeral()
        },
        ReceiverConfig {
            http_addr: Some(addr),
            ..ReceiverConfig::ephemeral()
        },
    ] {
        let error = Receiver::start(config, TraceStore::default())
            .await
            .expect_err("address is taken");
        assert!(
            matches!(error, ReceiverError::AddrInUse { addr: a, .. } if a == addr),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("{addr} is already in use")),
            "{error}"
        );
    }
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let receiver = start(ReceiverConfig::ephemeral()).await;
    let (grpc, http) = (receiver.grpc_addr().unwrap(), receiver.http_addr().unwrap());
    assert_ne!(grpc.port(), 0);
    assert!(grpc.ip().is_loopback() && http.ip().is_loopback());
    receiver.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(http).await.is_err());
    assert!(tokio::net::TcpStream::connect(grpc).await.is_err());
}

async fn post(
    url: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_payloads_get_400_and_the_receiver_keeps_serving() {
    let receiver = start(ReceiverConfig::ephemeral()).await;
    let url = format!("{}/v1/traces", receiver.http_endpoint().unwrap());
    let valid = spans_request([9; 16], 3, "").encode_to_vec();
    let truncated = valid[..valid.len() - 5].to_vec();
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        (
            "garbage protobuf",
            "application/x-protobuf",
            None,
            b"\xff\xff\xff\xff garbage".to_vec(),
            400,
        ),
        (
            "truncated protobuf",
            "application/x-protobuf",
            None,
            truncated,
            400,
        ),
        (
            "bad JSON",
            "application/json",
            None,
            b"{\"resourceSpans\": [".to_vec(),
            400,
        ),
        (
            "JSON of the wrong shape",
            "application/json",
            None,
            b"{\"resourceSpans\": 5}".to_vec(),
            400,
        ),
        (
            "protobuf sent as JSON",
            "application/json",
            None,
            valid.clone(),
            400,
        ),
        (
            "gzip header, plain body",
            "application/x-protobuf",
            Some("gzip"),
            valid.clone(),
            400,
        ),
        (
            "unsupported content type",
            "text/plain",
            None,
            valid.clone(),
            415,
        ),
        (
            "unsupported content encoding",
            "application/x-protobuf",
            Some("br"),
            valid.clone(),
            415,
        ),
    ];
    for (what, content_type, encoding, body, expected) in cases {
        let (status, body) = post(&url, content_type, encoding, body).await;
        assert_eq!(status, expected, "{what}");
        if content_type == "application/json" {
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                error["code"], 3,
                "{what}: google.rpc.Status INVALID_ARGUMENT"
            );
            assert!(!error["message"].as_str().unwrap().is_empty());
        }
        // The next valid request still succeeds.
        let (status, body) = post(&url, "application/x-protobuf", None, valid.clone()).await;
        assert_eq!(status, 200, "after {what}");
        assert_eq!(
            ExportTraceServiceResponse::decode(&*body).unwrap(),
            ExportTraceServiceResponse::default()
        );
    }
    receiver.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_grpc_payloads_get_invalid_argument_and_the_receiver_keeps_serving() {
    /// Field 1 of `ExportTraceServiceRequest` is a message; sending a varint there is malformed.
    #[derive(Clone, PartialEq, prost::Message)]
    struct WrongWireType {
        #[prost(uint64, tag = "1")]
        resource_spans: u64,
    }
    /// Field 1 as bytes lets us put a truncated `ResourceSpans` in it.
    #[derive(Clone, PartialEq, prost::Message)]
    struct RawField {
        #[prost(bytes = "vec", tag = "1")]
        resource_spans: Vec<u8>,
    }
    let receiver = start(ReceiverConfig::ephemeral()).await;
    let channel = tonic::transport::Endpoint::from_shared(receiver.grpc_endpoint().unwrap())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let resource_spans = spans_request([5; 16], 2, "").resource_spans[0].encode_to_vec();
    for attempt in 0..2 {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let status = if attempt == 0 {
            grpc.unary::<_, ExportTraceServiceResponse, _>(
                tonic::Request::new(WrongWireType { resource_spans: 7 }),
                path.clone(),
                tonic_prost::ProstCodec::default(),
            )
            .await
        } else {
            grpc.unary::<_, ExportTraceServiceResponse, _>(
                tonic::Request::new(RawField {
                    resource_spans: resource_spans[..resource_spans.len() - 3].to_vec(),
                }),
                path.clone(),
                tonic_prost::ProstCodec::default(),
            )
            .await
        }
        .expect_err("malformed");
        // INVALID_ARGUMENT: bad data, an exporter must not retry it.
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        let mut client = TraceServiceClient::new(channel.clone());
        let response = client
            .export(spans_request([5; 16], 2, ""))
            .await
            .expect("the next valid request succeeds")
            .into_inner();
        assert_eq!(response, ExportTraceServiceResponse::default());
    }
    assert_eq!(receiver.store().stats().spans, 4);
    receiver.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_and_gzip_bomb_bodies_are_refused() {
    let limit = 64 * 1024;
    let receiver = start(ReceiverConfig {
        max_request_bytes: limit,
        ..ReceiverConfig::ephemeral()
    })
    .await;
    let url = format!("{}/v1/traces", receiver.http_endpoint().unwrap());
    let big = spans_request([6; 16], 1, &"x".repeat(limit)).encode_to_vec();
    let bomb = spans_request([6; 16], 1, &"x".repeat(64 * limit)).encode_to_vec();
    let bomb_gz = gzip(&bomb);
    assert!(bomb_gz.len() < limit / 4, "the bomb is small on the wire");

    let (status, _) = post(&url, "application/x-protobuf", None, big.clone()).await;
    assert_eq!(status, 413, "oversize body");
    let (status, _) = post(
        &url,
        "application/x-protobuf",
        Some("gzip"),
        bomb_gz.clone(),
    )
    .await;
    assert_eq!(status, 413, "gzip bomb");
    let (status, _) = post(&url, "application/json", Some("gzip"), bomb_gz.clone()).await;
    assert_eq!(status, 413, "gzip bomb labelled JSON");

    let mut client = TraceServiceClient::connect(receiver.grpc_endpoint().unwrap())
        .await
        .unwrap();
    let status = client
        .export(ExportTraceServiceRequest::decode(&*big).unwrap())
        .await
        .expect_err("oversize");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let mut client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let status = client
        .export(ExportTraceServiceRequest::decode(&*bomb).unwrap())
        .await
        .expect_err("gzip bomb");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");

    // Still serving.
    let (status, _) = post(
        &url,
        "application/x-protobuf",
        Some("gzip"),
        gzip(&one_span_request([6; 16]).encode_to_vec()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(receiver.store().stats().spans, 1);
    receiver.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_ids_are_rejected_as_partial_success() {
    let receiver = start(ReceiverConfig::ephemeral()).await;
    let mut request = spans_request([8; 16], 3, "");
    let spans = &mut request.resource_spans[0].scope_spans[0].spans;
    spans[1].trace_id = vec![1, 2, 3];
    spans[2].span_id = vec![];
    let mut client = TraceServiceClient::connect(receiver.grpc_endpoint().unwrap())
        .await
        .unwrap();
    let response = client.export(request.clone()).await.unwrap().into_inner();
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(!partial.error_message.is_empty());

    let url = format!("{}/v1/traces", receiver.http_endpoint().unwrap());
    let (status, body) = post(
        &url,
        "application/json",
        None,
        serde_json::to_vec(&request).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let response: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        response["partialSuccess"]["rejectedSpans"], "2",
        "{response}"
    );
    assert_eq!(receiver.store().stats().spans, 2);
    receiver.shutdown().await.unwrap();
}

/// An OTLP/JSON body written the way the specification shows it (hex ids, integer enums, 64-bit
/// integers as strings, unknown fields ignored), not the way our serde derives write it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_as_in_the_specification() {
    let receiver = start(ReceiverConfig::ephemeral()).await;
    let url = format!("{}/v1/traces", receiver.http_endpoint().unwrap());
    let body = r#"{
      "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeSpans": [{
          "scope": {"name": "my.library", "version": "1.0.0",
                    "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
          "spans": [{
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "EEE19B7EC3C1B174",
            "parentSpanId": "EEE19B7EC3C1B173",
            "name": "I'm a server span",
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000",
            "kind": 2,
            "attributes": [
              {"key": "my.span.attr", "value": {"stringValue": "some value"}},
              {"key": "retries", "value": {"intValue": "3"}},
              {"key": "ratio", "value": {"doubleValue": 0.5}}
            ],
            "status": {"code": 1},
            "someFutureField": true
          }]
        }]
      }]
    }"#;
    let (status, response) = post(&url, "application/json; charset=utf-8", None, body.into()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&response));
    let id = TraceId::from_hex("5b8efff798038103d269b633813fc60c").unwrap();
    let snapshot = receiver.store().get(id).expect("stored");
    let (resource, scope, span) = snapshot.spans().next().unwrap();
    assert_eq!(
        attribute(
            &resource.resource.as_ref().unwrap().attributes,
            "service.name"
        ),
        Some(&any_value::Value::StringValue("my.service".into()))
    );
    assert_eq!(scope.scope.as_ref().unwrap().version, "1.0.0");
    assert_eq!(
        span.span_id,
        [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]
    );
    assert_eq!(span.kind, 2);
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(
        attribute(&span.attributes, "retries"),
        Some(&any_value::Value::IntValue(3))
    );
    assert_eq!(span.status.as_ref().unwrap().code, 1);
    receiver.shutdown().await.unwrap();
}

#[test]
fn eviction_keeps_subscribed_traces_and_drops_the_oldest_first() {
    let store = TraceStore::new(StoreLimits {
        max_spans: 10,
        max_bytes: usize::MAX,
    });
    let watched = TraceId::from_bytes(&[1; 16]).unwrap();
    let _watch = store.subscribe(watched);
    store.ingest(spans_request([1; 16], 4, ""));
    for n in 2..=5u8 {
        store.ingest(spans_request([n; 16], 2, ""));
    }
    // 4 + 2*4 = 12 spans > 10: the oldest unsubscribed trace ([2; 16]) goes, the watched one stays.
    let stats = store.stats();
    assert_eq!(stats.spans, 10);
    assert_eq!(stats.evicted_traces, 1);
    assert_eq!(stats.evicted_spans, 2);
    assert!(store.get(watched).is_some());
    assert!(store.get(TraceId::from_bytes(&[2; 16]).unwrap()).is_none());
    assert!(store.get(TraceId::from_bytes(&[3; 16]).unwrap()).is_some());

    // A trace that receives spans again becomes the newest.
    store.ingest(spans_request([3; 16], 1, ""));
    store.ingest(spans_request([6; 16], 2, ""));
    assert!(store.get(TraceId::from_bytes(&[3; 16]).unwrap()).is_some());
    assert!(store.get(TraceId::from_bytes(&[4; 16]).unwrap()).is_none());

    // Once unsubscribed, the watched trace is the oldest and goes first.
    drop(_watch);
    store.ingest(spans_request([7; 16], 4, ""));
    assert!(store.get(watched).is_none());
    assert!(store.stats().spans <= 10);
}

#[test]
fn byte_limit_evicts_too() {
    let store = TraceStore::new(StoreLimits {
        max_spans: usize::MAX,
        max_bytes: 4096,
    });
    for n in 1..=50u8 {
        store.ingest(spans_request([n; 16], 3, "some padding in the name"));
    }
    let stats = store.stats();
    assert!(stats.bytes <= 4096, "{stats:?}");
    assert!(stats.evicted_traces > 0);
    assert!(store.get(TraceId::from_bytes(&[50; 16]).unwrap()).is_some());
}

#[test]
fn snapshot_merges_chunks_of_the_same_resource_and_scope() {
    let store = TraceStore::default();
    store.ingest(spans_request([1; 16], 2, ""));
    let mut second = spans_request([1; 16], 1, "");
    second.resource_spans[0].scope_spans[0].spans[0].span_id = vec![9; 8];
    store.ingest(second);
    let snapshot = store.get(TraceId::from_bytes(&[1; 16]).unwrap()).unwrap();
    assert_eq!(snapshot.span_count, 3);
    assert_eq!(snapshot.resource_spans.len(), 1);
    assert_eq!(snapshot.resource_spans[0].scope_spans.len(), 1);
    assert_eq!(snapshot.resource_spans[0].scope_spans[0].spans.len(), 3);
}

#[test]
fn trace_ids_parse_and_print_as_hex() {
    let id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(TraceId::from_hex("00000000000000000000000000000000").is_none());
    assert!(TraceId::from_hex("4bf92f").is_none());
    assert!(TraceId::from_bytes(&[1; 8]).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::tier::cases(256)))]

    /// Arbitrary bytes through every decode path of the HTTP handler never panic and get a
    /// well-formed answer.
    #[test]
    fn http_handler_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        json in any::<bool>(),
        gzipped in any::<bool>(),
    ) {
        let store = TraceStore::default();
        let mut headers = tonic::codegen::http::HeaderMap::new();
        let content_type = if json { "application/json" } else { "application/x-protobuf" };
        headers.insert("content-type", content_type.parse().unwrap());
        let body = if gzipped {
            headers.insert("content-encoding", "gzip".parse().unwrap());
            gzip(&body)
        } else {
            body
        };
        let reply = handle_export(&store, &headers, &body, 1 << 20, None);
        prop_assert!([200, 400].contains(&reply.status.as_u16()), "{}", reply.status);
        prop_assert_eq!(reply.content_type, content_type);
    }

    /// Arbitrary JSON text shaped like OTLP (random nesting of the known keys) never panics.
    #[test]
    fn http_json_handler_never_panics_on_near_misses(
        trace_id in "[0-9a-fA-FxZ]{0,34}",
        span_id in "[0-9a-f]{0,18}",
        int_value in prop_oneof![Just("\"3\"".to_owned()), Just("3".to_owned()), Just("\"x\"".to_owned()), Just("1e400".to_owned())],
        kind in prop_oneof![Just("2".to_owned()), Just("\"SPAN_KIND_SERVER\"".to_owned()), Just("-1".to_owned()), Just("99999999999".to_owned())],
    ) {
        let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{trace_id}","spanId":"{span_id}","kind":{kind},"attributes":[{{"key":"k","value":{{"intValue":{int_value}}}}}]}}]}}]}}]}}"#);
        let store = TraceStore::default();
        let mut headers = tonic::codegen::http::HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        let reply = handle_export(&store, &headers, body.as_bytes(), 1 << 20, None);
        prop_assert!([200, 400].contains(&reply.status.as_u16()), "{}", reply.status);
    }
}

/// The zero-copy path stores exactly what the decoding path stores.
#[test]
fn encoded_and_decoded_ingest_agree() {
    let mut request = spans_request([1; 16], 3, " padded");
    let mut other = spans_request([2; 16], 2, "");
    other.resource_spans[0].resource = Some(opentelemetry_proto::tonic::resource::v1::Resource {
        attributes: vec![ProtoKeyValue {
            key: "service.name".into(),
            value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(any_value::Value::StringValue("svc".into())),
            }),
            ..ProtoKeyValue::default()
        }],
        ..Default::default()
    });
    other.resource_spans[0].schema_url = "https://opentelemetry.io/schemas/1.26.0".into();
    other.resource_spans[0].scope_spans[0].schema_url = "scope-schema".into();
    request.resource_spans.extend(other.resource_spans);
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![2; 16];
    request.resource_spans[0].scope_spans[0].spans[2].span_id = vec![0; 8];
    let decoded = TraceStore::default();
    let encoded = TraceStore::default();
    let a = decoded.ingest(request.clone());
    let b = encoded.ingest_encoded(&request.encode_to_vec()).unwrap();
    assert_eq!(a.accepted_spans, b.accepted_spans);
    assert_eq!(a.rejected_spans, 1);
    assert_eq!(a.rejected_spans, b.rejected_spans);
    assert_eq!(a.traces_touched, b.traces_touched);
    for id in [[1; 16], [2; 16]] {
        let id = TraceId::from_bytes(&id).unwrap();
        let (mut x, mut y) = (decoded.get(id).unwrap(), encoded.get(id).unwrap());
        x.last_arrival = None;
        y.last_arrival = None;
        assert_eq!(x, y);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::tier::cases(2000)))]

    /// Whatever the zero-copy validator accepts, prost decodes, and the stored spans decode too.
    #[test]
    fn wire_validation_is_never_laxer_than_prost(
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let store = TraceStore::default();
        if store.ingest_encoded(&body).is_ok() {
            prop_assert!(ExportTraceServiceRequest::decode(body.as_slice()).is_ok());
            for id in store.trace_ids() {
                let snapshot = store.get(id).unwrap();
                prop_assert_eq!(snapshot.spans().count(), snapshot.span_count);
            }
        }
    }

    /// Mutations of a valid request: validator and prost agree on acceptance.
    #[test]
    fn wire_validation_agrees_with_prost_on_damaged_requests(
        position in any::<proptest::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<proptest::sample::Index>(),
    ) {
        let mut body = spans_request([3; 16], 2, "é").encode_to_vec();
        let i = position.index(body.len());
        body[i] = byte;
        body.truncate(cut.index(body.len() + 1));
        let store = TraceStore::default();
        let ours = store.ingest_encoded(&body).is_ok();
        let prost = ExportTraceServiceRequest::decode(body.as_slice()).is_ok();
        prop_assert_eq!(ours, prost);
        if ours {
            for id in store.trace_ids() {
                let snapshot = store.get(id).unwrap();
                prop_assert_eq!(snapshot.spans().count(), snapshot.span_count);
            }
        }
    }
}

#[tokio::test]
async fn every_waiter_of_a_trace_is_woken_and_only_by_its_trace() {
    let store = TraceStore::default();
    let id = TraceId::from_bytes(&[4; 16]).unwrap();
    let mut first = store.subscribe(id);
    let mut second = store.subscribe(id);
    let mut other = store.subscribe(TraceId::from_bytes(&[5; 16]).unwrap());
    store.ingest(spans_request([4; 16], 2, ""));
    timeout(DEADLINE, first.changed())
        .await
        .expect("first woken");
    timeout(DEADLINE, second.changed())
        .await
        .expect("second woken");
    assert!(
        timeout(Duration::from_millis(20), other.changed())
            .await
            .is_err(),
        "another trace's arrival does not wake this one"
    );
    assert_eq!(first.snapshot().span_count, 2);
    // A later arrival wakes again; the snapshot then has everything.
    store.ingest(spans_request([4; 16], 1, " late"));
    timeout(DEADLINE, first.changed())
        .await
        .expect("woken again");
    let snapshot = first.snapshot();
    assert_eq!(snapshot.span_count, 3);
    assert!(snapshot.last_arrival.is_some());
}

#[test]
fn deeply_nested_attribute_values_are_refused_like_prost_does() {
    let mut value = AnyValueProto {
        value: Some(any_value::Value::IntValue(1)),
    };
    for _ in 0..150 {
        value = AnyValueProto {
            value: Some(any_value::Value::ArrayValue(
                opentelemetry_proto::tonic::common::v1::ArrayValue {
                    values: vec![value],
                },
            )),
        };
    }
    let mut request = one_span_request([6; 16]);
    request.resource_spans[0].scope_spans[0].spans[0].attributes = vec![ProtoKeyValue {
        key: "deep".into(),
        value: Some(value),
        ..ProtoKeyValue::default()
    }];
    let body = request.encode_to_vec();
    assert!(ExportTraceServiceRequest::decode(body.as_slice()).is_err());
    let store = TraceStore::default();
    assert!(store.ingest_encoded(&body).is_err());
    let stats = store.ingest(request);
    assert_eq!((stats.accepted_spans, stats.rejected_spans), (0, 1));
}
