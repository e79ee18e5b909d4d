//! The shipping worker: takes paid orders from the broker's `shipping` queue, records a shipment
//! and tells orders the tracking number.
//!
//! Each message is processed in a messaging consumer span whose parent is the producer's span
//! (from the message headers), so it belongs to the order's trace, and which also carries a span
//! link to it, as the messaging conventions ask.

use crate::db::Db;
use crate::{Ports, broker, telemetry};
use opentelemetry::trace::{Link, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{KeyValue, global};
use serde_json::{Value, json};
use std::collections::HashMap;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const QUEUE: &str = "shipping";

const SCHEMA: &str = "
CREATE TABLE shipments (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, tracking TEXT NOT NULL);
";

struct Worker {
    db: Db,
    client: reqwest::Client,
    orders: String,
}

/// Consumes the `shipping` queue until the process is stopped.
pub async fn run(ports: Ports) -> Result<(), String> {
    let worker = std::sync::Arc::new(Worker {
        db: Db::open(SCHEMA)?,
        client: telemetry::client()?,
        orders: format!("http://{}", ports.orders()),
    });
    let addr = ports.broker();
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("broker {addr}: {e}"))?;
    let (read, mut write) = stream.into_split();
    let subscribe = format!("{}\n", json!({ "op": "subscribe", "queue": QUEUE }));
    write
        .write_all(subscribe.as_bytes())
        .await
        .map_err(|e| format!("broker {addr}: {e}"))?;
    eprintln!("shipping worker subscribed to `{QUEUE}` at {addr}");
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| format!("broker {addr}: {e}"))?
    {
        let message: Value =
            serde_json::from_str(&line).map_err(|e| format!("bad message: {e}"))?;
        let worker = worker.clone();
        tokio::spawn(async move { worker.process(message).await });
    }
    Err(format!("broker {addr} closed the subscription"))
}

impl Worker {
    async fn process(&self, message: Value) {
        let headers: HashMap<String, String> =
            serde_json::from_value(message["headers"].clone()).unwrap_or_default();
        let producer = global::get_text_map_propagator(|p| p.extract(&headers));
        let producer_span = producer.span().span_context().clone();
        let id = message["id"].as_i64().unwrap_or_default();
        let tracer = telemetry::tracer();
        let mut links = Vec::new();
        if producer_span.is_valid() {
            links.push(Link::with_context(producer_span));
        }
        let span = tracer
            .span_builder(format!("process {QUEUE}"))
            .with_kind(SpanKind::Consumer)
            .with_links(links)
            .with_attributes(vec![
                KeyValue::new("messaging.system", broker::SYSTEM),
                KeyValue::new("messaging.operation.type", "process"),
                KeyValue::new("messaging.operation.name", "process"),
                KeyValue::new("messaging.destination.name", QUEUE),
                KeyValue::new("messaging.consumer.group.name", "shipping"),
                KeyValue::new("messaging.message.id", id.to_string()),
            ])
            .start_with_context(&tracer, &producer);
        let cx = producer.with_span(span);
        let Some(order_id) = message["body"]["order_id"].as_i64() else {
            telemetry::fail(&cx, "BadMessage", format!("message {id} has no order_id"));
            cx.span().end();
            return;
        };
        let tracking = format!("TRK-{order_id:06}");
        cx.span()
            .set_attribute(KeyValue::new("shop.order.id", order_id));
        cx.span()
            .set_attribute(KeyValue::new("shop.tracking", tracking.clone()));
        let t = tracking.clone();
        let recorded = self
            .db
            .run(
                &cx,
                "INSERT",
                "shipments",
                "INSERT INTO shipments (order_id, tracking) VALUES (?1, ?2)",
                move |c, sql| c.execute(sql, rusqlite::params![order_id, t]).map(drop),
            )
            .await;
        let result = match recorded {
            Ok(()) => {
                let url = format!("{}/orders/{order_id}/status", self.orders);
                let body = json!({ "status": "shipped", "tracking": tracking });
                match telemetry::call(&cx, &self.client, reqwest::Method::POST, url, Some(&body))
                    .await
                {
                    Ok(r) if r.status == 200 => Ok(()),
                    Ok(r) => Err(format!("orders answered {}", r.status)),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            eprintln!("shipping order {order_id}: {e}");
            telemetry::fail(&cx, "ShippingFailed", e);
        }
        cx.span().end();
    }
}
