//! Jaeger's query API v3, over HTTP (`GET /api/v3/traces/{id}`) or gRPC
//! (`jaeger.api_v3.QueryService/GetTrace`).
//!
//! The HTTP gateway answers `{"result": {"resourceSpans": [...]}}` (OTLP JSON; a streamed answer
//! is several such documents one after the other) or, when the trace is unknown, 404 or
//! `{"error": {"httpCode": 404, "message": "trace not found", ...}}`. The gRPC method streams
//! `opentelemetry.proto.trace.v1.TracesData` messages and fails with `NOT_FOUND` when the trace is
//! unknown. The gRPC client is written by hand (prost structs, `tonic::client::Grpc`), no protoc.

use std::sync::Mutex;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, TracesData};
use tbt_compiler::trace::{Trace, TraceId};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

use super::{Fetched, Polling, describe_reqwest, excerpt, poll};
use crate::run::source::{FollowFuture, Judge, TraceSource};

/// The gRPC path of the v3 `GetTrace` method.
pub const GET_TRACE_PATH: &str = "/jaeger.api_v3.QueryService/GetTrace";

/// How to talk to Jaeger's query service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JaegerTransport {
    /// The HTTP/JSON gateway of API v3 (the query UI port, 16686 by default).
    Http,
    /// The gRPC API v3 (16685 by default).
    Grpc,
}

/// `jaeger.api_v3.GetTraceRequest`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct GetTraceRequest {
    /// The trace id, 32 lowercase hex digits.
    #[prost(string, tag = "1")]
    pub trace_id: String,
    /// Optional lower bound of the search window.
    #[prost(message, optional, tag = "2")]
    pub start_time: Option<Timestamp>,
    /// Optional upper bound of the search window.
    #[prost(message, optional, tag = "3")]
    pub end_time: Option<Timestamp>,
    /// Asks for the stored spans without adjustments (clock skew, deduplication).
    #[prost(bool, tag = "4")]
    pub raw_traces: bool,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// A trace source polling Jaeger's query API v3.
pub struct JaegerSource {
    base: String,
    transport: JaegerTransport,
    http: reqwest::Client,
    headers: Vec<(String, String)>,
    channel: Mutex<Option<Channel>>,
    polling: Polling,
}

impl JaegerSource {
    /// A source for the query service at `base_url` (`http://host:16686` for HTTP,
    /// `http://host:16685` for gRPC), sending `headers` with every request. Fails on an invalid
    /// URL or header (the message names the header, never its value).
    pub fn new(
        base_url: &str,
        transport: JaegerTransport,
        headers: Vec<(String, String)>,
    ) -> Result<Self, String> {
        let base = super::normalize_url(base_url)?;
        let http = super::http_client(&headers)?;
        for (name, value) in &headers {
            tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(
                name.to_ascii_lowercase().as_bytes(),
            )
            .map_err(|_| format!("`{name}` is not a valid gRPC metadata key"))?;
            tonic::metadata::MetadataValue::<tonic::metadata::Ascii>::try_from(value.as_str())
                .map_err(|_| format!("the value of header `{name}` is not valid gRPC metadata"))?;
        }
        Ok(JaegerSource {
            base,
            transport,
            http,
            headers,
            channel: Mutex::new(None),
            polling: Polling::default(),
        })
    }

    /// Sets the timeout of each request (default [`super::DEFAULT_REQUEST_TIMEOUT`]); a wait
    /// never lasts beyond its own timeout whatever this is.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.polling.request_timeout = timeout;
        self
    }

    /// Sets the backoff between polls: `initial` doubling up to `max` (default 50 ms to 1 s).
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.polling.initial_backoff = initial;
        self.polling.max_backoff = max.max(initial);
        self
    }

    async fn fetch_http(&self, id: TraceId) -> Fetched {
        let url = format!("{}/api/v3/traces/{}", self.base, id);
        let response = match self
            .http
            .get(&url)
            .timeout(self.polling.request_timeout)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Fetched::Failed(describe_reqwest(&e)),
        };
        let status = response.status();
        let body = match super::read_body(response).await {
            Ok(b) => b,
            Err(e) => return Fetched::Failed(e),
        };
        if status == reqwest::StatusCode::NOT_FOUND {
            return Fetched::NotYet;
        }
        if !status.is_success() {
            // The gateway may say "not found" in an error document with another status.
            if not_found_document(&body) {
                return Fetched::NotYet;
            }
            return Fetched::Failed(format!("HTTP {status}: {}", excerpt(&body)));
        }
        parse_http_body(&body, id)
    }

    fn channel(&self) -> Result<Channel, String> {
        let mut slot = self.channel.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let mut endpoint = Endpoint::from_shared(self.base.clone())
            .map_err(|e| format!("invalid gRPC endpoint: {e}"))?
            .connect_timeout(self.polling.request_timeout);
        if self.base.starts_with("https://") {
            crate::tls::install_crypto_provider();
            endpoint = endpoint
                .tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots())
                .map_err(|e| format!("TLS set-up failed: {e}"))?;
        }
        let channel = endpoint.connect_lazy();
        *slot = Some(channel.clone());
        Ok(channel)
    }

    async fn fetch_grpc(&self, id: TraceId) -> Fetched {
        let channel = match self.channel() {
            Ok(c) => c,
            Err(e) => return Fetched::Failed(e),
        };
        let mut grpc = tonic::client::Grpc::new(channel);
        if let Err(e) = grpc.ready().await {
            return Fetched::Failed(format!("cannot connect: {}", error_chain(&e)));
        }
        let mut request = tonic::Request::new(GetTraceRequest {
            trace_id: id.to_string(),
            start_time: None,
            end_time: None,
            raw_traces: false,
        });
        for (name, value) in &self.headers {
            // Validated in `new`.
            if let (Ok(k), Ok(v)) = (
                tonic::metadata::MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()),
                tonic::metadata::MetadataValue::try_from(value.as_str()),
            ) {
                request.metadata_mut().append(k, v);
            }
        }
        request.set_timeout(self.polling.request_timeout);
        let codec = tonic_prost::ProstCodec::<GetTraceRequest, TracesData>::default();
        let response = grpc
            .server_streaming(request, PathAndQuery::from_static(GET_TRACE_PATH), codec)
            .await;
        let mut stream = match response {
            Ok(r) => r.into_inner(),
            Err(status) => return grpc_failure(&status),
        };
        let mut spans: Vec<ResourceSpans> = Vec::new();
        let mut count = 0;
        loop {
            match stream.message().await {
                Ok(Some(chunk)) => {
                    // Refused as soon as the stream passes the limit, not after all of it.
                    count += super::span_count(&chunk.resource_spans);
                    if let Err(e) = super::span_limit(count) {
                        return Fetched::Failed(e);
                    }
                    spans.extend(chunk.resource_spans);
                }
                Ok(None) => break,
                Err(status) => return grpc_failure(&status),
            }
        }
        let trace = Trace::from_resource_spans(&spans, Some(id));
        if trace.is_empty() {
            Fetched::NotYet
        } else {
            Fetched::Trace(Box::new(trace))
        }
    }
}

fn grpc_failure(status: &tonic::Status) -> Fetched {
    if status.code() == tonic::Code::NotFound {
        return Fetched::NotYet;
    }
    let mut msg = format!("gRPC {:?}", status.code());
    if !status.message().is_empty() {
        msg.push_str(": ");
        msg.push_str(&status.message().chars().take(200).collect::<String>());
    }
    if let Some(source) = std::error::Error::source(status) {
        msg.push_str(": ");
        msg.push_str(&error_chain(source));
    }
    Fetched::Failed(msg)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// True for `{"error": {...}}` documents saying the trace is not there (HTTP 404 or gRPC
/// `NOT_FOUND` = 5 in any of the gateway's spellings, or a "not found" message).
fn not_found_document(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").map(not_found_error))
        .unwrap_or(false)
}

/// True for an `error` object saying the trace is not there.
fn not_found_error(err: &serde_json::Value) -> bool {
    let code = |k: &str| err.get(k).and_then(serde_json::Value::as_i64);
    code("httpCode") == Some(404)
        || code("grpcCode") == Some(5)
        || code("code") == Some(5)
        || code("code") == Some(404)
        || err
            .get("message")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|m| m.to_ascii_lowercase().contains("not found"))
}

/// Reads the gateway's answer: one or more `{"result": TracesData}` documents, possibly with an
/// `{"error": ...}` one — decoded straight into spans ([`super::otlp_json`]), no JSON tree.
fn parse_http_body(body: &[u8], id: TraceId) -> Fetched {
    let mut batches = Vec::new();
    let stream =
        serde_json::Deserializer::from_slice(body).into_iter::<super::otlp_json::JaegerDocument>();
    let mut documents = 0;
    for doc in stream {
        let doc = match doc {
            Ok(d) => d,
            Err(e) => {
                return Fetched::Failed(format!("unreadable answer ({e}): {}", excerpt(body)));
            }
        };
        documents += 1;
        if let Some(error) = &doc.error {
            if not_found_error(error) {
                continue;
            }
            return Fetched::Failed(format!(
                "error answer: {}",
                excerpt(serde_json::json!({ "error": error }).to_string().as_bytes())
            ));
        }
        let Some(result) = doc.result else {
            return Fetched::Failed(format!(
                "unexpected answer (no `result`): {}",
                excerpt(body)
            ));
        };
        batches.extend(result.into_batches());
    }
    if documents == 0 {
        return Fetched::Failed("empty answer".into());
    }
    if let Err(e) = super::check_span_count(&batches) {
        return Fetched::Failed(e);
    }
    let t = Trace::from_resource_spans(&batches, Some(id));
    if t.is_empty() {
        Fetched::NotYet
    } else {
        Fetched::Trace(Box::new(t))
    }
}

impl TraceSource for JaegerSource {
    fn follow<'a>(
        &'a self,
        id: TraceId,
        deadline: tokio::time::Instant,
        judge: &'a mut dyn Judge,
    ) -> FollowFuture<'a> {
        Box::pin(async move {
            let backend = self.describe();
            poll(
                &backend,
                &self.polling,
                id,
                deadline,
                judge,
                || async move {
                    match self.transport {
                        JaegerTransport::Http => self.fetch_http(id).await,
                        JaegerTransport::Grpc => self.fetch_grpc(id).await,
                    }
                },
            )
            .await
        })
    }

    fn describe(&self) -> String {
        match self.transport {
            JaegerTransport::Http => format!("Jaeger {}", self.base),
            JaegerTransport::Grpc => format!("Jaeger gRPC {}", self.base),
        }
    }

    fn is_live(&self) -> bool {
        true
    }
}
