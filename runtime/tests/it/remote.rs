//! Remote trace sources against local servers serving the backends' documented formats:
//! Jaeger query API v3 (HTTP JSON gateway and gRPC stream) and Grafana Tempo (protobuf and JSON),
//! plus the failure cases (404 until the deadline, 500, garbage, a server that never answers, a
//! refused connection) and authentication headers.

#![allow(clippy::unwrap_used, missing_docs)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Response, StatusCode};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
use prost::Message;
use tbt::remote::jaeger::GetTraceRequest;
use tbt::remote::{JaegerSource, JaegerTransport, TempoSource, parse_source_arg};
use tbt::run::source::{TraceSource, Waited};
use tbt_compiler::hex;
use tbt_compiler::trace::TraceId;
use tokio::net::TcpListener;

const ID: TraceId = TraceId([
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
]);
const ID_HEX: &str = "5b8efff798038103d269b633813fc60c";

fn b64(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn span_id(n: u8) -> [u8; 8] {
    [0, 0, 0, 0, 0, 0, 0, n]
}

/// OTLP JSON spans: span `n` is a child of span 1 (`n == 1` is the root); `base64` writes ids as
/// protobuf's canonical JSON does (Tempo), hex otherwise (OTLP JSON, Jaeger).
fn json_batch(spans: &[u8], base64: bool) -> serde_json::Value {
    let enc = |b: &[u8]| if base64 { b64(b) } else { hex::encode(b) };
    let spans: Vec<_> = spans
        .iter()
        .map(|&n| {
            serde_json::json!({
                "traceId": enc(ID.as_bytes()),
                "spanId": enc(&span_id(n)),
                "parentSpanId": if n == 1 { String::new() } else { enc(&span_id(1)) },
                "name": format!("span-{n}"),
                "kind": 2,
                "startTimeUnixNano": "1544712660000000000",
                "endTimeUnixNano": "1544712661000000000",
            })
        })
        .collect();
    serde_json::json!({
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"scope": {"name": "lib"}, "spans": spans}]
    })
}

fn proto_batch(spans: &[u8]) -> TracesData {
    TracesData {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: spans
                    .iter()
                    .map(|&n| Span {
                        trace_id: ID.as_bytes().to_vec(),
                        span_id: span_id(n).to_vec(),
                        parent_span_id: if n == 1 { vec![] } else { span_id(1).to_vec() },
                        name: format!("span-{n}"),
                        start_time_unix_nano: 1_544_712_660_000_000_000,
                        end_time_unix_nano: 1_544_712_661_000_000_000,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// What the test server answers to request number `n` (from 1).
enum Reply {
    Answer(u16, &'static str, Vec<u8>),
    Hang,
}

fn json(status: u16, v: serde_json::Value) -> Reply {
    Reply::Answer(status, "application/json", v.to_string().into_bytes())
}

struct Server {
    url: String,
    hits: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<(String, HeaderMap)>>>,
}

impl Server {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// An HTTP server on 127.0.0.1:0 answering every request with `reply(n)`; records paths and
/// headers.
async fn http_server(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Server {
    let hits = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let reply = Arc::new(reply);
    let (h, r) = (hits.clone(), requests.clone());
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (h, r, reply) = (h.clone(), r.clone(), reply.clone());
        async move {
            r.lock()
                .unwrap()
                .push((req.uri().path().to_string(), req.headers().clone()));
            let n = h.fetch_add(1, Ordering::SeqCst) + 1;
            match reply(n) {
                Reply::Answer(status, content_type, body) => Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .header("content-type", content_type)
                    .body(Body::from(body))
                    .unwrap(),
                Reply::Hang => std::future::pending().await,
            }
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        url,
        hits,
        requests,
    }
}

fn jaeger(url: &str) -> JaegerSource {
    JaegerSource::new(url, JaegerTransport::Http, vec![])
        .unwrap()
        .with_backoff(Duration::from_millis(5), Duration::from_millis(40))
}

fn tempo(url: &str) -> TempoSource {
    TempoSource::new(url, vec![])
        .unwrap()
        .with_backoff(Duration::from_millis(5), Duration::from_millis(40))
}

const LONG: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_millis(50);
/// How long the fault tests wait: long enough that a loaded CI machine still gets answers in
/// time, short enough to keep the suite quick.
const WAIT: Duration = Duration::from_millis(1500);

fn settled(w: Result<Waited, String>) -> tbt_compiler::trace::Trace {
    match w {
        Ok(Waited::Settled(t)) => t,
        Ok(Waited::TimedOut(t)) => panic!("timed out with {} spans", t.len()),
        Err(e) => panic!("error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_http_after_a_few_polls() {
    // 404, then the gateway's not-found document, then an empty result, then the trace.
    let server = http_server(|n| match n {
        1 => Reply::Answer(404, "text/plain", b"404 page not found".to_vec()),
        2 => json(
            404,
            serde_json::json!({"error": {"grpcCode": 5, "httpCode": 404, "message": "trace not found", "httpStatus": "Not Found"}}),
        ),
        3 => json(200, serde_json::json!({"result": {"resourceSpans": []}})),
        _ => json(
            200,
            serde_json::json!({"result": {"resourceSpans": [json_batch(&[1, 2, 3], false)]}}),
        ),
    })
    .await;
    let t = settled(jaeger(&server.url).wait(ID, LONG, SETTLE).await);
    assert_eq!(t.len(), 3);
    assert!(server.hits() >= 4);
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests[0].0, format!("/api/v3/traces/{ID_HEX}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_http_streamed_chunks_are_joined() {
    // grpc-gateway writes a server stream as consecutive `{"result": ...}` documents.
    let body = format!(
        "{}\n{}\n",
        serde_json::json!({"result": {"resourceSpans": [json_batch(&[1], false)]}}),
        serde_json::json!({"result": {"resourceSpans": [json_batch(&[2, 3], false)]}})
    );
    let server =
        http_server(move |_| Reply::Answer(200, "application/json", body.clone().into_bytes()))
            .await;
    let t = settled(jaeger(&server.url).wait(ID, LONG, SETTLE).await);
    assert_eq!(t.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_trace_settles_once_it_stops_changing() {
    // First an orphan (its parent has not arrived), then root + child, then more spans.
    let server = http_server(|n| {
        let spans: &[u8] = match n {
            1 => &[2],
            2 => &[1, 2],
            3 => &[1, 2, 3],
            4 | 5 => &[1, 2, 3, 4],
            _ => &[1, 2, 3, 4, 5],
        };
        json(
            200,
            serde_json::json!({"result": {"resourceSpans": [json_batch(spans, false)]}}),
        )
    })
    .await;
    let t = settled(
        jaeger(&server.url)
            .wait(ID, LONG, Duration::from_millis(150))
            .await,
    );
    assert_eq!(t.len(), 5);
    assert!(
        server.hits() >= 7,
        "settling needs a poll after the last change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_until_the_deadline_is_an_empty_timeout() {
    let server =
        http_server(|_| Reply::Answer(404, "text/plain", b"trace not found".to_vec())).await;
    let start = Instant::now();
    let w = tempo(&server.url).wait(ID, WAIT, SETTLE).await;
    match w {
        Ok(Waited::TimedOut(t)) => assert!(t.is_empty()),
        _ => panic!("expected an empty timeout"),
    }
    assert!(start.elapsed() >= WAIT);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(server.hits() >= 3, "polled {} times", server.hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_protobuf() {
    let server = http_server(|n| {
        if n < 3 {
            Reply::Answer(404, "text/plain", b"trace not found".to_vec())
        } else {
            Reply::Answer(
                200,
                "application/protobuf",
                proto_batch(&[1, 2]).encode_to_vec(),
            )
        }
    })
    .await;
    let t = settled(tempo(&server.url).wait(ID, LONG, SETTLE).await);
    assert_eq!(t.len(), 2);
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests[0].0, format!("/api/traces/{ID_HEX}"));
    assert_eq!(requests[0].1["accept"], "application/protobuf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_json_shapes() {
    let shapes = [
        // Tempo 1.x / 2.x v1 API: `batches`, ids in base64.
        serde_json::json!({"batches": [json_batch(&[1, 2], true)]}),
        // OTLP-style `resourceSpans`.
        serde_json::json!({"resourceSpans": [json_batch(&[1, 2], true)]}),
        // The v2 envelope, hex ids.
        serde_json::json!({"trace": {"resourceSpans": [json_batch(&[1, 2], false)]}, "metrics": {}}),
        // Old OTLP names.
        serde_json::json!({"batches": [{
            "resource": {},
            "instrumentationLibrarySpans": json_batch(&[1, 2], true)["scopeSpans"].clone()
        }]}),
    ];
    for shape in shapes {
        let text = shape.to_string();
        let server =
            http_server(move |_| Reply::Answer(200, "application/json", text.clone().into_bytes()))
                .await;
        let t = settled(tempo(&server.url).wait(ID, LONG, SETTLE).await);
        assert_eq!(t.len(), 2, "{shape}");
    }
}

fn err(w: Result<Waited, String>) -> String {
    match w {
        Err(e) => e,
        Ok(Waited::Settled(t)) => panic!("settled with {} spans", t.len()),
        Ok(Waited::TimedOut(t)) => panic!("timed out with {} spans", t.len()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_answering_500_is_an_error_naming_it() {
    let server =
        http_server(|_| Reply::Answer(500, "text/plain", b"storage is down".to_vec())).await;
    let start = Instant::now();
    let e = err(jaeger(&server.url).wait(ID, WAIT, SETTLE).await);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(e.contains(&server.url), "{e}");
    assert!(e.contains("500") && e.contains("storage is down"), "{e}");
    assert!(server.hits() >= 2, "retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_answers_are_errors() {
    let server =
        http_server(|_| Reply::Answer(200, "application/json", b"<html>oops".to_vec())).await;
    let e = err(jaeger(&server.url).wait(ID, WAIT, SETTLE).await);
    assert!(e.contains(&server.url) && e.contains("unreadable"), "{e}");

    let server =
        http_server(|_| Reply::Answer(200, "application/protobuf", vec![0xff, 0xff, 0xff])).await;
    let e = err(tempo(&server.url).wait(ID, WAIT, SETTLE).await);
    assert!(e.contains("invalid protobuf"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_never_answers_does_not_hang_the_wait() {
    let server = http_server(|_| Reply::Hang).await;
    let start = Instant::now();
    let e = err(tempo(&server.url)
        .with_request_timeout(Duration::from_millis(100))
        .wait(ID, WAIT, SETTLE)
        .await);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(e.contains("timed out") || e.contains("no answer"), "{e}");
    assert!(server.hits() >= 2);

    // Even with a per-request timeout longer than the wait's.
    let start = Instant::now();
    let e = err(jaeger(&server.url).wait(ID, WAIT, SETTLE).await);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(e.contains("no answer"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    for source in [
        Box::new(jaeger(&url)) as Box<dyn TraceSource>,
        Box::new(tempo(&url)),
        Box::new(
            JaegerSource::new(&url, JaegerTransport::Grpc, vec![])
                .unwrap()
                .with_backoff(Duration::from_millis(5), Duration::from_millis(40)),
        ),
    ] {
        let start = Instant::now();
        let e = err(source.wait(ID, WAIT, SETTLE).await);
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(e.contains(&url), "{e}");
        assert!(e.to_lowercase().contains("connect"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_seen_before_failures_are_a_timeout_with_them() {
    let server = http_server(|n| {
        if n == 1 {
            // An orphan: never complete.
            json(
                200,
                serde_json::json!({"result": {"resourceSpans": [json_batch(&[2], false)]}}),
            )
        } else {
            Reply::Answer(503, "text/plain", b"unavailable".to_vec())
        }
    })
    .await;
    match jaeger(&server.url).wait(ID, WAIT, SETTLE).await {
        Ok(Waited::TimedOut(t)) => assert_eq!(t.len(), 1),
        _ => panic!("expected a timeout with the span seen"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_headers_reach_the_server_and_never_messages() {
    let server = http_server(|_| Reply::Answer(401, "text/plain", b"unauthorized".to_vec())).await;
    let headers = vec![
        (
            "Authorization".to_string(),
            "Bearer s3cret-token".to_string(),
        ),
        ("X-Scope-OrgID".to_string(), "tenant-7".to_string()),
    ];
    let source = TempoSource::new(&server.url, headers)
        .unwrap()
        .with_backoff(Duration::from_millis(5), Duration::from_millis(40));
    let e = err(source.wait(ID, WAIT, SETTLE).await);
    assert!(e.contains("401"), "{e}");
    assert!(!e.contains("s3cret") && !e.contains("tenant-7"), "{e}");
    assert!(!source.describe().contains("s3cret"));
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests[0].1["authorization"], "Bearer s3cret-token");
    assert_eq!(requests[0].1["x-scope-orgid"], "tenant-7");

    let e = TempoSource::new(&server.url, vec![("Bad Name".into(), "s3cret".into())])
        .err()
        .unwrap();
    assert!(!e.contains("s3cret"), "{e}");
}

#[test]
fn source_args() {
    assert!(parse_source_arg("jaeger=http://127.0.0.1:16686").is_ok());
    assert!(parse_source_arg("jaeger+grpc=http://127.0.0.1:16685").is_ok());
    assert!(parse_source_arg("tempo=http://127.0.0.1:3200").is_ok());
    assert!(parse_source_arg("nope").is_err());
}

// --- Jaeger gRPC: a hand-written tonic server for `jaeger.api_v3.QueryService/GetTrace`. ---

type Calls = Arc<Mutex<Vec<(GetTraceRequest, Option<String>)>>>;

#[derive(Clone)]
struct QueryService {
    calls: Calls,
    /// What call `n` (from 1) streams back; `Err` is the status to fail with.
    reply: Arc<dyn Fn(usize) -> Result<Vec<TracesData>, tonic::Status> + Send + Sync>,
}

impl tonic::server::NamedService for QueryService {
    const NAME: &'static str = "jaeger.api_v3.QueryService";
}

struct GetTrace(QueryService);

impl tonic::server::ServerStreamingService<GetTraceRequest> for GetTrace {
    type Response = TracesData;
    type ResponseStream = tonic::codegen::BoxStream<TracesData>;
    type Future = tonic::codegen::BoxFuture<tonic::Response<Self::ResponseStream>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<GetTraceRequest>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move {
            let auth = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let n = {
                let mut calls = svc.calls.lock().unwrap();
                calls.push((request.into_inner(), auth));
                calls.len()
            };
            let chunks = (svc.reply)(n)?;
            let stream = tonic::codegen::tokio_stream::iter(chunks.into_iter().map(Ok));
            Ok(tonic::Response::new(
                Box::pin(stream) as tonic::codegen::BoxStream<TracesData>
            ))
        })
    }
}

impl tonic::codegen::Service<tonic::codegen::http::Request<tonic::body::Body>> for QueryService {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() != tbt::remote::jaeger::GET_TRACE_PATH {
            return Box::pin(async { Ok(tonic::Status::unimplemented("").into_http()) });
        }
        let svc = self.clone();
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<TracesData, GetTraceRequest>::default();
            let mut grpc = tonic::server::Grpc::new(codec);
            Ok(grpc.server_streaming(GetTrace(svc), request).await)
        })
    }
}

async fn grpc_server(
    reply: impl Fn(usize) -> Result<Vec<TracesData>, tonic::Status> + Send + Sync + 'static,
) -> (String, Calls) {
    let calls: Calls = Arc::new(Mutex::new(Vec::new()));
    let svc = QueryService {
        calls: calls.clone(),
        reply: Arc::new(reply),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming)
            .await
    });
    (url, calls)
}

fn grpc_jaeger(url: &str, headers: Vec<(String, String)>) -> JaegerSource {
    JaegerSource::new(url, JaegerTransport::Grpc, headers)
        .unwrap()
        .with_backoff(Duration::from_millis(5), Duration::from_millis(40))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_grpc_stream_after_not_found() {
    let (url, calls) = grpc_server(|n| {
        if n < 3 {
            Err(tonic::Status::not_found("trace not found"))
        } else {
            // The root in one chunk, the children in another.
            Ok(vec![proto_batch(&[1]), proto_batch(&[2, 3])])
        }
    })
    .await;
    let source = grpc_jaeger(
        &url,
        vec![("Authorization".into(), "Bearer g-s3cret".into())],
    );
    let t = settled(source.wait(ID, LONG, SETTLE).await);
    assert_eq!(t.len(), 3);
    let calls = calls.lock().unwrap();
    assert!(calls.len() >= 3);
    assert_eq!(calls[0].0.trace_id, ID_HEX);
    assert_eq!(calls[0].1.as_deref(), Some("Bearer g-s3cret"));
    assert!(!source.describe().contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_grpc_failure_is_an_error() {
    let (url, calls) = grpc_server(|_| Err(tonic::Status::unavailable("storage is down"))).await;
    let e = err(grpc_jaeger(
        &url,
        vec![("Authorization".into(), "Bearer g-s3cret".into())],
    )
    .wait(ID, WAIT, SETTLE)
    .await);
    assert!(
        e.contains(&url) && e.contains("Unavailable") && e.contains("storage is down"),
        "{e}"
    );
    assert!(!e.contains("s3cret"));
    assert!(calls.lock().unwrap().len() >= 2);
}

/// A backend answer announced as larger than `MAX_RESPONSE_BYTES` is refused before it is read
/// (bounded memory, issue 28), with its size in the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_the_size_limit_is_refused_unread() {
    let announced = tbt::remote::MAX_RESPONSE_BYTES + 1;
    // A raw HTTP/1.1 answer: a server library would refuse to announce more than it sends.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {announced}\r\n\r\n{{}}"
                );
                let _ = conn.write_all(head.as_bytes()).await;
            });
        }
    });
    let e = err(tempo(&url).wait(ID, WAIT, SETTLE).await);
    assert!(
        e.contains("larger than 256 MiB") && e.contains(&announced.to_string()),
        "{e}"
    );
}
