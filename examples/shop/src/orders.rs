//! The orders service: creates orders (reserving stock with inventory), takes payment (through
//! payments), hands paid orders to shipping through the broker, and answers order queries.
//!
//! Two deliberate flaws for the example suites: `GET /orders/{id}/items` reads its items one
//! query per item (N+1), and `GET /orders/{id}?slow=true` takes a slow path.

use crate::db::Db;
use crate::{Ports, broker, telemetry};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Price of one unit of anything, in cents.
const UNIT_PRICE: i64 = 1999;

const SCHEMA: &str = "
CREATE TABLE orders (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, qty INTEGER NOT NULL,
                     status TEXT NOT NULL, total INTEGER NOT NULL, tracking TEXT);
CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, sku TEXT NOT NULL,
                          serial INTEGER NOT NULL);
";

struct State {
    db: Db,
    client: reqwest::Client,
    inventory: String,
    payments: String,
    broker: std::net::SocketAddr,
}

/// Serves the orders API.
pub async fn run(ports: Ports) -> Result<(), String> {
    let state = Arc::new(State {
        db: Db::open(SCHEMA)?,
        client: telemetry::client()?,
        inventory: format!("http://{}", ports.inventory()),
        payments: format!("http://{}", ports.payments()),
        broker: ports.broker(),
    });
    let app = Router::new()
        .route("/orders", post(create))
        .route("/orders/{id}", get(fetch))
        .route("/orders/{id}/items", get(items))
        .route("/orders/{id}/pay", post(pay))
        .route("/orders/{id}/ship", post(ship))
        .route("/orders/{id}/status", post(set_status))
        .layer(Extension(state))
        .route_layer(axum::middleware::from_fn(telemetry::http_server));
    crate::listen("orders", ports.orders(), app).await
}

type Ctx = Extension<Context>;
type St = Extension<Arc<State>>;

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn failed(e: String) -> Response {
    answer(StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": e }))
}

/// An order row: (sku, qty, status, total, tracking).
type Row = (String, i64, String, i64, Option<String>);

async fn load(state: &State, cx: &Context, id: i64) -> Result<Option<Row>, String> {
    state
        .db
        .run(
            cx,
            "SELECT",
            "orders",
            "SELECT sku, qty, status, total, tracking FROM orders WHERE id = ?1",
            move |c, sql| {
                c.query_row(sql, [id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()
            },
        )
        .await
}

fn order_json(id: i64, row: &Row) -> serde_json::Value {
    let (sku, qty, status, total, tracking) = row;
    json!({ "id": id, "sku": sku, "qty": qty, "status": status, "total": total, "tracking": tracking })
}

#[derive(Deserialize)]
struct NewOrder {
    sku: String,
    qty: i64,
}

async fn create(
    Extension(state): St,
    Extension(cx): Ctx,
    body: Option<Json<NewOrder>>,
) -> Response {
    let Some(Json(order)) = body else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "expected {\"sku\": string, \"qty\": number}" }),
        );
    };
    if !(1..=20).contains(&order.qty) {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "qty must be between 1 and 20" }),
        );
    }
    let reserve = json!({ "sku": order.sku, "qty": order.qty });
    let url = format!("{}/reserve", state.inventory);
    match telemetry::call(
        &cx,
        &state.client,
        reqwest::Method::POST,
        url,
        Some(&reserve),
    )
    .await
    {
        Ok(r) if r.status == 200 => {}
        Ok(r) if r.status == 409 => return answer(StatusCode::CONFLICT, r.body),
        Ok(r) => return failed(format!("inventory answered {}", r.status)),
        Err(e) => return failed(e),
    }
    let (sku, qty) = (order.sku.clone(), order.qty);
    let inserted = state
        .db
        .run(
            &cx,
            "INSERT",
            "orders",
            "INSERT INTO orders (sku, qty, status, total) VALUES (?1, ?2, 'created', ?3)",
            move |c, sql| {
                c.execute(sql, rusqlite::params![sku, qty, qty * UNIT_PRICE])?;
                Ok(c.last_insert_rowid())
            },
        )
        .await;
    let id = match inserted {
        Ok(id) => id,
        Err(e) => return failed(e),
    };
    let sku = order.sku.clone();
    let items = state
        .db
        .run(
            &cx,
            "INSERT",
            "order_items",
            "INSERT INTO order_items (order_id, sku, serial) VALUES (?1, ?2, ?3)",
            move |c, sql| {
                let mut stmt = c.prepare_cached(sql)?;
                for serial in 1..=qty {
                    stmt.execute(rusqlite::params![id, sku, serial])?;
                }
                Ok(())
            },
        )
        .await;
    if let Err(e) = items {
        return failed(e);
    }
    cx.span().set_attribute(KeyValue::new("shop.order.id", id));
    let row = (
        order.sku,
        order.qty,
        "created".to_owned(),
        order.qty * UNIT_PRICE,
        None,
    );
    answer(StatusCode::CREATED, order_json(id, &row))
}

async fn fetch(
    Extension(state): St,
    Extension(cx): Ctx,
    Path(id): Path<i64>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let row = match load(&state, &cx, id).await {
        Ok(Some(row)) => row,
        Ok(None) => return answer(StatusCode::NOT_FOUND, json!({ "error": "no such order" })),
        Err(e) => return failed(e),
    };
    if query.get("slow").is_some_and(|v| v == "true") {
        // The slow path: a report the shop recomputes on every request when asked to.
        let slow = telemetry::start(&cx, "recompute totals", SpanKind::Internal, Vec::new());
        tokio::time::sleep(Duration::from_millis(400)).await;
        slow.span().end();
    }
    answer(StatusCode::OK, order_json(id, &row))
}

/// The N+1 endpoint: one query for the item ids, then one query per item.
async fn items(Extension(state): St, Extension(cx): Ctx, Path(id): Path<i64>) -> Response {
    let ids = state
        .db
        .run(
            &cx,
            "SELECT",
            "order_items",
            "SELECT id FROM order_items WHERE order_id = ?1 ORDER BY id",
            move |c, sql| {
                let mut stmt = c.prepare_cached(sql)?;
                let ids = stmt.query_map([id], |r| r.get::<_, i64>(0))?;
                ids.collect::<rusqlite::Result<Vec<i64>>>()
            },
        )
        .await;
    let ids = match ids {
        Ok(ids) if ids.is_empty() => {
            return answer(StatusCode::NOT_FOUND, json!({ "error": "no such order" }));
        }
        Ok(ids) => ids,
        Err(e) => return failed(e),
    };
    let mut out = Vec::with_capacity(ids.len());
    for item in ids {
        let row = state
            .db
            .run(
                &cx,
                "SELECT",
                "order_items",
                "SELECT sku, serial FROM order_items WHERE id = ?1",
                move |c, sql| {
                    c.query_row(sql, [item], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })
                },
            )
            .await;
        match row {
            Ok((sku, serial)) => out.push(json!({ "id": item, "sku": sku, "serial": serial })),
            Err(e) => return failed(e),
        }
    }
    answer(StatusCode::OK, json!({ "order_id": id, "items": out }))
}

#[derive(Deserialize)]
struct Payment {
    card: String,
}

async fn pay(
    Extension(state): St,
    Extension(cx): Ctx,
    Path(id): Path<i64>,
    body: Option<Json<Payment>>,
) -> Response {
    let Some(Json(payment)) = body else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "expected {\"card\": string}" }),
        );
    };
    let row = match load(&state, &cx, id).await {
        Ok(Some(row)) => row,
        Ok(None) => return answer(StatusCode::NOT_FOUND, json!({ "error": "no such order" })),
        Err(e) => return failed(e),
    };
    if row.2 != "created" {
        return answer(
            StatusCode::CONFLICT,
            json!({ "error": format!("order is {}", row.2) }),
        );
    }
    let charge = json!({ "order_id": id, "amount": row.3, "card": payment.card });
    let url = format!("{}/charges", state.payments);
    let charged = match telemetry::call(
        &cx,
        &state.client,
        reqwest::Method::POST,
        url,
        Some(&charge),
    )
    .await
    {
        Ok(r) if r.status == 201 => r.body,
        Ok(r) if r.status == 402 => return answer(StatusCode::PAYMENT_REQUIRED, r.body),
        Ok(r) => return failed(format!("payments answered {}", r.status)),
        Err(e) => return failed(e),
    };
    if let Err(e) = set(&state, &cx, id, "paid", None).await {
        return failed(e);
    }
    answer(
        StatusCode::OK,
        json!({ "id": id, "status": "paid", "charge_id": charged["charge_id"] }),
    )
}

async fn set(
    state: &State,
    cx: &Context,
    id: i64,
    status: &str,
    tracking: Option<String>,
) -> Result<(), String> {
    let status = status.to_owned();
    state
        .db
        .run(
            cx,
            "UPDATE",
            "orders",
            "UPDATE orders SET status = ?2, tracking = COALESCE(?3, tracking) WHERE id = ?1",
            move |c, sql| {
                c.execute(sql, rusqlite::params![id, status, tracking])
                    .map(drop)
            },
        )
        .await
}

/// Hands a paid order to the shipping worker through the broker (answers 202: shipping is
/// asynchronous).
async fn ship(Extension(state): St, Extension(cx): Ctx, Path(id): Path<i64>) -> Response {
    let row = match load(&state, &cx, id).await {
        Ok(Some(row)) => row,
        Ok(None) => return answer(StatusCode::NOT_FOUND, json!({ "error": "no such order" })),
        Err(e) => return failed(e),
    };
    if row.2 != "paid" {
        return answer(
            StatusCode::CONFLICT,
            json!({ "error": format!("order is {}", row.2) }),
        );
    }
    if let Err(e) = set(&state, &cx, id, "shipping", None).await {
        return failed(e);
    }
    match broker::publish(&cx, state.broker, "shipping", json!({ "order_id": id })).await {
        Ok(message_id) => answer(
            StatusCode::ACCEPTED,
            json!({ "id": id, "status": "shipping", "message_id": message_id }),
        ),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct StatusUpdate {
    status: String,
    tracking: Option<String>,
}

async fn set_status(
    Extension(state): St,
    Extension(cx): Ctx,
    Path(id): Path<i64>,
    body: Option<Json<StatusUpdate>>,
) -> Response {
    let Some(Json(update)) = body else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "expected {\"status\": string}" }),
        );
    };
    match set(&state, &cx, id, &update.status, update.tracking).await {
        Ok(()) => answer(StatusCode::OK, json!({ "id": id, "status": update.status })),
        Err(e) => failed(e),
    }
}
