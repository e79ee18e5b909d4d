//! OTLP/HTTP: `POST /v1/traces` with `application/x-protobuf` or `application/json` bodies,
//! optionally `Content-Encoding: gzip`, served by axum.
//!
//! Why it exists: some SDKs and environments only speak OTLP over HTTP/1.1. The request handling is
//! one pure function, [`handle_export`] (headers and body in, status and body out), so tests and
//! fuzzing reach every decode path without a socket; the axum layer only reads the body with a
//! size limit and calls it.
//!
//! Responses follow the OTLP/HTTP specification: 200 with an `ExportTraceServiceResponse` in the
//! request's encoding (with `partial_success` when spans were rejected); on errors a
//! `google.rpc.Status` (`code`, `message`) in the request's encoding with 400 (bad payload),
//! 401 (token), 413 (too large, also after decompression), 415 (unsupported content type or
//! encoding).
//!
//! What it must not do: decompress beyond the limit (gzip bombs), echo or log the token, or panic on
//! any input.

use std::future::Future;
use std::io::Read;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use flate2::read::GzDecoder;
use http_body_util::LengthLimitError;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::net::TcpListener;

use super::Auth;
use super::grpc::export_response;
use crate::store::TraceStore;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The payload encoding of an OTLP/HTTP request and its response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Binary protobuf (`application/x-protobuf`).
    Protobuf,
    /// OTLP/JSON (`application/json`): hex ids, integer enums, 64-bit integers as strings.
    Json,
}

/// What [`handle_export`] answers: an HTTP status, a content type and a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    /// The HTTP status code.
    pub status: StatusCode,
    /// The `Content-Type` of `body`.
    pub content_type: &'static str,
    /// The encoded `ExportTraceServiceResponse` or `google.rpc.Status`.
    pub body: Vec<u8>,
}

impl IntoResponse for HttpReply {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        response
    }
}

/// The part of `google.rpc.Status` that OTLP error responses carry.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// gRPC code numbers used in error bodies, as OTLP/HTTP asks.
const CODE_INVALID_ARGUMENT: i32 = 3;
const CODE_RESOURCE_EXHAUSTED: i32 = 8;
const CODE_UNAUTHENTICATED: i32 = 16;

fn error_reply(status: StatusCode, encoding: Encoding, code: i32, message: String) -> HttpReply {
    let rpc = RpcStatus { code, message };
    match encoding {
        Encoding::Protobuf => HttpReply {
            status,
            content_type: PROTOBUF,
            body: rpc.encode_to_vec(),
        },
        Encoding::Json => HttpReply {
            status,
            content_type: JSON,
            body: serde_json::json!({ "code": rpc.code, "message": rpc.message })
                .to_string()
                .into_bytes(),
        },
    }
}

/// The encoding named by a `Content-Type` value (parameters such as `charset` ignored).
pub fn encoding_of(content_type: Option<&str>) -> Option<Encoding> {
    let essence = content_type?.split(';').next()?.trim();
    if essence.eq_ignore_ascii_case(PROTOBUF) {
        Some(Encoding::Protobuf)
    } else if essence.eq_ignore_ascii_case(JSON) {
        Some(Encoding::Json)
    } else {
        None
    }
}

/// Handles one `POST /v1/traces`: checks the token, decompresses (at most `max_request_bytes`),
/// decodes, ingests into `store` and encodes the answer. Never panics, whatever the input.
pub fn handle_export(
    store: &TraceStore,
    headers: &HeaderMap,
    body: &[u8],
    max_request_bytes: usize,
    bearer_token: Option<&str>,
) -> HttpReply {
    handle(
        store,
        headers,
        body,
        max_request_bytes,
        &Auth::new(bearer_token),
    )
}

fn handle(
    store: &TraceStore,
    headers: &HeaderMap,
    body: &[u8],
    max_request_bytes: usize,
    auth: &Auth,
) -> HttpReply {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let encoding = encoding_of(content_type);
    // Errors are answered in the request's encoding; protobuf when it has none we understand.
    let reply_encoding = encoding.unwrap_or(Encoding::Protobuf);
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !auth.allows(authorization) {
        return error_reply(
            StatusCode::UNAUTHORIZED,
            reply_encoding,
            CODE_UNAUTHENTICATED,
            "missing or wrong bearer token".into(),
        );
    }
    let Some(encoding) = encoding else {
        return error_reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            reply_encoding,
            CODE_INVALID_ARGUMENT,
            format!(
                "unsupported content type {:?}; expected {PROTOBUF} or {JSON}",
                content_type.unwrap_or("")
            ),
        );
    };
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let decompressed;
    let payload: &[u8] = match content_encoding.as_deref() {
        None | Some("" | "identity") => body,
        Some("gzip") => match gunzip(body, max_request_bytes) {
            Ok(bytes) => {
                decompressed = bytes;
                &decompressed
            }
            Err(reply) => return reply(encoding),
        },
        Some(other) => {
            return error_reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                encoding,
                CODE_INVALID_ARGUMENT,
                format!("unsupported content encoding {other:?}; expected gzip"),
            );
        }
    };
    if payload.len() > max_request_bytes {
        return too_large(encoding, max_request_bytes);
    }
    let stats = match encoding {
        Encoding::Protobuf => store
            .ingest_encoded(payload)
            .map_err(|error| format!("invalid OTLP protobuf: {}", error.0)),
        Encoding::Json => decode(encoding, payload).map(|request| store.ingest(request)),
    };
    let stats = match stats {
        Ok(stats) => stats,
        Err(reason) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                encoding,
                CODE_INVALID_ARGUMENT,
                reason,
            );
        }
    };
    let response = export_response(stats);
    match encoding {
        Encoding::Protobuf => HttpReply {
            status: StatusCode::OK,
            content_type: PROTOBUF,
            body: response.encode_to_vec(),
        },
        // Written by hand: OTLP/JSON wants the int64 `rejectedSpans` as a string, which the serde
        // derive of opentelemetry-proto does not do.
        Encoding::Json => HttpReply {
            status: StatusCode::OK,
            content_type: JSON,
            body: match response.partial_success {
                None => b"{}".to_vec(),
                Some(partial) => serde_json::json!({
                    "partialSuccess": {
                        "rejectedSpans": partial.rejected_spans.to_string(),
                        "errorMessage": partial.error_message,
                    }
                })
                .to_string()
                .into_bytes(),
            },
        },
    }
}

/// Decodes an OTLP export request body (already decompressed).
pub fn decode(encoding: Encoding, payload: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(payload)
            .map_err(|error| format!("invalid OTLP protobuf: {error}")),
        Encoding::Json => {
            serde_json::from_slice(payload).map_err(|error| format!("invalid OTLP JSON: {error}"))
        }
    }
}

fn too_large(encoding: Encoding, limit: usize) -> HttpReply {
    error_reply(
        StatusCode::PAYLOAD_TOO_LARGE,
        encoding,
        CODE_RESOURCE_EXHAUSTED,
        format!("request body exceeds the limit of {limit} bytes"),
    )
}

type DeferredReply = Box<dyn FnOnce(Encoding) -> HttpReply>;

/// Decompresses at most `limit` bytes; one byte more means the body is too large.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, DeferredReply> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let mut decoder = GzDecoder::new(body).take(limit as u64 + 1);
    if let Err(error) = decoder.read_to_end(&mut out) {
        let reason = format!("invalid gzip body: {error}");
        return Err(Box::new(move |encoding| {
            error_reply(
                StatusCode::BAD_REQUEST,
                encoding,
                CODE_INVALID_ARGUMENT,
                reason,
            )
        }));
    }
    if out.len() > limit {
        return Err(Box::new(move |encoding| too_large(encoding, limit)));
    }
    Ok(out)
}

#[derive(Clone)]
struct HttpState {
    store: TraceStore,
    auth: Auth,
    max_request_bytes: usize,
}

async fn export(State(state): State<HttpState>, request: Request) -> HttpReply {
    let (parts, body) = request.into_parts();
    let encoding = encoding_of(
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    )
    .unwrap_or(Encoding::Protobuf);
    // Refuse before reading a body we would not accept anyway.
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if !state.auth.allows(authorization) {
        return error_reply(
            StatusCode::UNAUTHORIZED,
            encoding,
            CODE_UNAUTHENTICATED,
            "missing or wrong bearer token".into(),
        );
    }
    let body: Bytes = match axum::body::to_bytes(body, state.max_request_bytes).await {
        Ok(body) => body,
        Err(error) => {
            let error = error.into_inner();
            let over_limit =
                std::iter::successors(Some(&*error as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.is::<LengthLimitError>());
            if over_limit {
                return too_large(encoding, state.max_request_bytes);
            }
            return error_reply(
                StatusCode::BAD_REQUEST,
                encoding,
                CODE_INVALID_ARGUMENT,
                format!("cannot read the request body: {error}"),
            );
        }
    };
    let store = state.store.clone();
    let auth = state.auth.clone();
    let limit = state.max_request_bytes;
    // Decompression, decoding and encoding are CPU work; keep them off the async workers.
    match tokio::task::spawn_blocking(move || handle(&store, &parts.headers, &body, limit, &auth))
        .await
    {
        Ok(reply) => reply,
        Err(_) => error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            encoding,
            CODE_INVALID_ARGUMENT,
            "the request handler failed".into(),
        ),
    }
}

/// The axum router serving `POST /v1/traces` into `store`.
pub(crate) fn router(store: TraceStore, auth: Auth, max_request_bytes: usize) -> Router {
    Router::new()
        .route("/v1/traces", post(export))
        // The handler enforces the limit itself (with a 413 in the OTLP shape).
        .layer(DefaultBodyLimit::disable())
        .with_state(HttpState {
            store,
            auth,
            max_request_bytes,
        })
}

pub(super) async fn serve(
    listener: TcpListener,
    store: TraceStore,
    auth: Auth,
    max_request_bytes: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    axum::serve(listener, router(store, auth, max_request_bytes))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|error| error.to_string())
}
