//! The inventory service: stock reservations over HTTP (`POST /reserve`) and stock lookups over
//! gRPC (`shop.Inventory/Lookup`, see `proto/inventory.proto`).

use crate::db::Db;
use crate::{Ports, telemetry};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::task::{Context as TaskContext, Poll};

const SCHEMA: &str = "
CREATE TABLE stock (sku TEXT PRIMARY KEY, available INTEGER NOT NULL);
INSERT INTO stock VALUES ('sku-42', 1000), ('sku-7', 25), ('sku-0', 0);
";

/// The gRPC method served, as `rpc.method` names it.
const LOOKUP: &str = "shop.Inventory/Lookup";

/// Serves the HTTP and gRPC APIs.
pub async fn run(ports: Ports) -> Result<(), String> {
    let db = Db::open(SCHEMA)?;
    let grpc_addr = ports.inventory_grpc();
    let grpc_listener = tokio::net::TcpListener::bind(grpc_addr)
        .await
        .map_err(|e| format!("cannot listen on {grpc_addr}: {e}"))?;
    eprintln!("inventory gRPC listening on http://{grpc_addr}");
    let grpc = tonic::transport::Server::builder()
        .add_service(InventoryService { db: db.clone() })
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc_listener));
    let app = Router::new()
        .route("/reserve", post(reserve))
        .layer(Extension(db))
        .route_layer(axum::middleware::from_fn(telemetry::http_server));
    tokio::select! {
        r = grpc => r.map_err(|e| format!("gRPC server: {e}")),
        r = crate::listen("inventory", ports.inventory(), app) => r,
    }
}

#[derive(Deserialize)]
struct Reserve {
    sku: String,
    qty: i64,
}

async fn reserve(
    Extension(db): Extension<Db>,
    Extension(cx): Extension<Context>,
    body: Option<Json<Reserve>>,
) -> Response {
    let Some(Json(Reserve { sku, qty })) = body else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "expected {\"sku\", \"qty\"}" })),
        )
            .into_response();
    };
    let span = telemetry::start(
        &cx,
        "reserve stock",
        SpanKind::Internal,
        vec![
            KeyValue::new("shop.sku", sku.clone()),
            KeyValue::new("shop.qty", qty),
        ],
    );
    let reserved = db
        .run(
            &span,
            "UPDATE",
            "stock",
            "UPDATE stock SET available = available - ?2 WHERE sku = ?1 AND available >= ?2",
            move |c, sql| c.execute(sql, rusqlite::params![sku, qty]),
        )
        .await;
    let response = match reserved {
        Ok(1) => (StatusCode::OK, Json(json!({ "reserved": qty }))).into_response(),
        Ok(_) => (
            StatusCode::CONFLICT,
            Json(json!({ "error": "out_of_stock" })),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": e })),
        )
            .into_response(),
    };
    span.span().end();
    response
}

/// `shop.LookupRequest` (see `proto/inventory.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LookupRequest {
    /// The SKU to look up.
    #[prost(string, tag = "1")]
    pub sku: String,
}

/// `shop.LookupReply`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LookupReply {
    /// The SKU looked up.
    #[prost(string, tag = "1")]
    pub sku: String,
    /// Units in stock.
    #[prost(int64, tag = "2")]
    pub available: i64,
}

/// The `shop.Inventory` gRPC service, written out by hand (a few lines instead of a code
/// generator that needs `protoc`).
#[derive(Clone)]
struct InventoryService {
    db: Db,
}

impl tonic::server::NamedService for InventoryService {
    const NAME: &'static str = "shop.Inventory";
}

struct Lookup {
    db: Db,
    cx: Context,
}

impl tonic::server::UnaryService<LookupRequest> for Lookup {
    type Response = LookupReply;
    type Future = tonic::codegen::BoxFuture<tonic::Response<LookupReply>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<LookupRequest>) -> Self::Future {
        let (db, cx) = (self.db.clone(), self.cx.clone());
        Box::pin(async move {
            let sku = request.into_inner().sku;
            let key = sku.clone();
            let found = db
                .run(
                    &cx,
                    "SELECT",
                    "stock",
                    "SELECT available FROM stock WHERE sku = ?1",
                    move |c, sql| c.query_row(sql, [key], |r| r.get::<_, i64>(0)).optional(),
                )
                .await;
            match found {
                Ok(Some(available)) => Ok(tonic::Response::new(LookupReply { sku, available })),
                Ok(None) => Err(tonic::Status::not_found(format!("no SKU `{sku}`"))),
                Err(e) => Err(tonic::Status::internal(e)),
            }
        })
    }
}

impl tonic::codegen::Service<tonic::codegen::http::Request<tonic::body::Body>>
    for InventoryService
{
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() != format!("/{LOOKUP}") {
            return Box::pin(async { Ok(tonic::Status::unimplemented("").into_http()) });
        }
        let parent = telemetry::extract(request.headers());
        let cx = telemetry::start(
            &parent,
            LOOKUP,
            SpanKind::Server,
            vec![
                KeyValue::new("rpc.system.name", "grpc"),
                KeyValue::new("rpc.method", LOOKUP),
                KeyValue::new("server.address", "127.0.0.1"),
            ],
        );
        let db = self.db.clone();
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<LookupReply, LookupRequest>::default();
            let mut grpc = tonic::server::Grpc::new(codec);
            let response = grpc.unary(Lookup { db, cx: cx.clone() }, request).await;
            // tonic puts the status of a failed call in the headers (trailers-only response).
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .unwrap_or(0);
            let name = tonic::Code::from_i32(code);
            let span = cx.span();
            span.set_attribute(KeyValue::new("rpc.status_code", code_name(code)));
            span.set_attribute(KeyValue::new("rpc.grpc.status_code", i64::from(code)));
            if matches!(
                name,
                tonic::Code::Unknown
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Unimplemented
                    | tonic::Code::Internal
                    | tonic::Code::Unavailable
                    | tonic::Code::DataLoss
            ) {
                span.set_status(Status::error(code_name(code)));
            }
            span.end();
            Ok(response)
        })
    }
}

/// The gRPC status code's name, as `rpc.status_code` writes it.
fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("UNKNOWN")
}
