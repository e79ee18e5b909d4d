//! The payments service: charges cards. The test card `4000000000000002` is always declined
//! (402, an error span with an `exception` event).

use crate::db::Db;
use crate::{Ports, telemetry};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use serde::Deserialize;
use serde_json::json;

/// The card number that is always declined.
const DECLINED_CARD: &str = "4000000000000002";

const SCHEMA: &str = "
CREATE TABLE charges (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, amount INTEGER NOT NULL,
                      card_last4 TEXT NOT NULL);
";

/// Serves the payments API.
pub async fn run(ports: Ports) -> Result<(), String> {
    let db = Db::open(SCHEMA)?;
    let app = Router::new()
        .route("/charges", post(charge))
        .layer(Extension(db))
        .route_layer(axum::middleware::from_fn(telemetry::http_server));
    crate::listen("payments", ports.payments(), app).await
}

#[derive(Deserialize)]
struct Charge {
    order_id: i64,
    amount: i64,
    card: String,
}

async fn charge(
    Extension(db): Extension<Db>,
    Extension(cx): Extension<Context>,
    body: Option<Json<Charge>>,
) -> Response {
    let Some(Json(charge)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "expected {\"order_id\", \"amount\", \"card\"}" })),
        )
            .into_response();
    };
    let last4: String = charge
        .card
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let span = telemetry::start(
        &cx,
        "charge card",
        SpanKind::Internal,
        vec![
            KeyValue::new("shop.order.id", charge.order_id),
            KeyValue::new("shop.payment.amount", charge.amount),
            KeyValue::new("shop.card.last4", last4.clone()),
        ],
    );
    let response = if charge.card == DECLINED_CARD {
        telemetry::fail(
            &span,
            "CardDeclined",
            format!("card ending {last4} was declined"),
        );
        (
            StatusCode::PAYMENT_REQUIRED,
            Json(json!({ "error": "card_declined" })),
        )
            .into_response()
    } else {
        let (order_id, amount) = (charge.order_id, charge.amount);
        let inserted = db
            .run(
                &span,
                "INSERT",
                "charges",
                "INSERT INTO charges (order_id, amount, card_last4) VALUES (?1, ?2, ?3)",
                move |c, sql| {
                    c.execute(sql, rusqlite::params![order_id, amount, last4])?;
                    Ok(c.last_insert_rowid())
                },
            )
            .await;
        match inserted {
            Ok(id) => (StatusCode::CREATED, Json(json!({ "charge_id": id }))).into_response(),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": e })),
            )
                .into_response(),
        }
    };
    span.span().end();
    response
}
