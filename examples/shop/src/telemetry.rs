//! OpenTelemetry set-up and the span helpers every service uses.
//!
//! The exporter follows the standard environment (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_SCHEDULE_DELAY`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_SERVICE_NAME`), which tbt's `service` blocks set. Spans follow the
//! current semantic conventions: HTTP server and client spans, SQLite client spans, messaging
//! producer and consumer spans, gRPC server spans.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::borrow::Cow;

/// Installs the global tracer provider (OTLP, batched) and the W3C propagator.
pub fn init(default_name: &str) -> Result<SdkTracerProvider, String> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(default_name.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_batch_exporter(exporter)
        .build();
    global::set_tracer_provider(provider.clone());
    Ok(provider)
}

/// Flushes and stops the exporter (the batch processor's thread is joined, so off the runtime).
pub async fn shutdown(provider: SdkTracerProvider) {
    let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    if let Ok(Err(e)) = done {
        eprintln!("flushing spans failed: {e}");
    }
}

/// The shop's tracer.
pub fn tracer() -> BoxedTracer {
    global::tracer("shop")
}

/// Starts a span under `parent` and returns the context holding it (end it with `end`).
pub fn start(
    parent: &Context,
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
) -> Context {
    let tracer = tracer();
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
        .start_with_context(&tracer, parent);
    parent.with_span(span)
}

/// Marks the span of `cx` failed with `message`, recording an `exception` event.
pub fn fail(cx: &Context, error_type: &'static str, message: String) {
    let span = cx.span();
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", error_type),
            KeyValue::new("exception.message", message.clone()),
        ],
    );
    span.set_attribute(KeyValue::new("error.type", error_type));
    span.set_status(Status::error(message));
}

/// Reads W3C trace context from HTTP headers.
pub fn extract(headers: &HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&Headers(headers)))
}

/// Writes the W3C trace context of `cx` into HTTP headers.
pub fn inject(cx: &Context, headers: &mut HeaderMap) {
    global::get_text_map_propagator(|p| p.inject_context(cx, &mut HeadersMut(headers)));
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// Axum middleware: an HTTP server span per request, a child of the caller's `traceparent`.
/// The handler finds the span's [`Context`] in the request extensions.
pub async fn http_server(matched: Option<MatchedPath>, mut req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let route = matched.map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
    let mut attributes = vec![
        KeyValue::new("http.request.method", method.clone()),
        KeyValue::new("http.route", route.clone()),
        KeyValue::new("url.path", req.uri().path().to_owned()),
        KeyValue::new("url.scheme", "http"),
    ];
    if let Some(q) = req.uri().query() {
        attributes.push(KeyValue::new("url.query", q.to_owned()));
    }
    if let Some((host, port)) = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit_once(':'))
    {
        attributes.push(KeyValue::new("server.address", host.to_owned()));
        if let Ok(port) = port.parse::<i64>() {
            attributes.push(KeyValue::new("server.port", port));
        }
    }
    let parent = extract(req.headers());
    let cx = start(
        &parent,
        format!("{method} {route}"),
        SpanKind::Server,
        attributes,
    );
    req.extensions_mut().insert(cx.clone());
    let response = next.run(req).await;
    let code = response.status().as_u16();
    let span = cx.span();
    span.set_attribute(KeyValue::new("http.response.status_code", i64::from(code)));
    if code >= 500 {
        span.set_attribute(KeyValue::new("error.type", code.to_string()));
        span.set_status(Status::error(""));
    }
    span.end();
    response
}

/// A JSON answer from another service.
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The body (`null` when empty or not JSON).
    pub body: serde_json::Value,
}

/// Calls another service over HTTP inside an HTTP client span, propagating the context.
pub async fn call(
    cx: &Context,
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<&serde_json::Value>,
) -> Result<Reply, String> {
    let mut attributes = vec![
        KeyValue::new("http.request.method", method.as_str().to_owned()),
        KeyValue::new("url.full", url.clone()),
    ];
    if let Ok(parsed) = reqwest::Url::parse(&url) {
        if let Some(host) = parsed.host_str() {
            attributes.push(KeyValue::new("server.address", host.to_owned()));
        }
        if let Some(port) = parsed.port_or_known_default() {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
    }
    let span_cx = start(cx, method.as_str().to_owned(), SpanKind::Client, attributes);
    let mut headers = HeaderMap::new();
    inject(&span_cx, &mut headers);
    let mut request = client.request(method, &url).headers(headers);
    if let Some(body) = body {
        request = request.json(body);
    }
    let result = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.json().await.unwrap_or(serde_json::Value::Null);
            let span = span_cx.span();
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 400 {
                span.set_attribute(KeyValue::new("error.type", status.to_string()));
                span.set_status(Status::error(""));
            }
            Ok(Reply { status, body })
        }
        Err(e) => {
            let message = format!("{url}: {e}");
            fail(&span_cx, "reqwest::Error", message.clone());
            Err(message)
        }
    };
    span_cx.span().end();
    result
}

/// A plain HTTP client for calls between services (loopback, no TLS; `main` installs the
/// crypto provider reqwest needs).
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}
