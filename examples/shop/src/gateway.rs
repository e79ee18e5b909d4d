//! The gateway: the shop's public HTTP API, forwarding each call to the orders service.
//! Also `shop order`, a command-line client that places an order through it.

use crate::{Ports, telemetry};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use opentelemetry::Context;
use std::sync::Arc;

struct State {
    client: reqwest::Client,
    orders: String,
}

/// Serves the public API.
pub async fn run(ports: Ports) -> Result<(), String> {
    let state = Arc::new(State {
        client: telemetry::client()?,
        orders: format!("http://{}", ports.orders()),
    });
    let app = Router::new()
        .route("/orders", post(forward))
        .route("/orders/{id}", get(forward))
        .route("/orders/{id}/items", get(forward))
        .route("/orders/{id}/pay", post(forward))
        .route("/orders/{id}/ship", post(forward))
        .layer(Extension(state))
        .route_layer(axum::middleware::from_fn(telemetry::http_server));
    crate::listen("gateway", ports.gateway(), app).await
}

/// Passes the request on to the orders service (same path and query) and its answer back.
async fn forward(
    Extension(state): Extension<Arc<State>>,
    Extension(cx): Extension<Context>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let url = format!("{}{path}", state.orders);
    match telemetry::call(&cx, &state.client, method, url, json.as_ref()).await {
        Ok(reply) => (
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY),
            Json(reply.body),
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(serde_json::json!({ "error": e })),
        )
            .into_response(),
    }
}

/// `shop order < ORDER.json`: places the order read on stdin (`{"sku": …, "qty": …}`) through the
/// gateway and prints the answer (JSON). The request carries `TRACEPARENT`/`TRACESTATE` from the
/// environment, so the order joins the caller's trace. Exit status 0 when the order was created.
pub async fn place_order(ports: Ports) -> Result<(), String> {
    let input = tokio::task::spawn_blocking(|| std::io::read_to_string(std::io::stdin()))
        .await
        .map_err(|e| format!("reading stdin: {e}"))?
        .map_err(|e| format!("reading the order from stdin: {e}"))?;
    let order: serde_json::Value =
        serde_json::from_str(&input).map_err(|e| format!("the order on stdin is not JSON: {e}"))?;
    let mut headers = HeaderMap::new();
    for (var, header) in [("TRACEPARENT", "traceparent"), ("TRACESTATE", "tracestate")] {
        if let Some(v) = std::env::var(var)
            .ok()
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert(HeaderName::from_static(header), v);
        }
    }
    let client = telemetry::client()?;
    let url = format!("http://{}/orders", ports.gateway());
    let response = client
        .post(&url)
        .headers(headers)
        .json(&order)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| format!("{url}: {e}"))?;
    println!("{body}");
    if status == StatusCode::CREATED {
        Ok(())
    } else {
        Err(format!("the gateway answered {status}"))
    }
}
