//! A tiny message broker (`shop broker`) and its producer side.
//!
//! Protocol: newline-delimited JSON over TCP. A producer sends
//! `{"op": "publish", "queue": Q, "headers": {…}, "body": …}` and gets `{"id": N}` back once the
//! message is queued; a consumer sends `{"op": "subscribe", "queue": Q}` and then receives one
//! `{"id", "headers", "body"}` line per message. Messages wait in the queue until a consumer takes
//! them; each goes to one consumer. The broker itself is not instrumented (like most brokers):
//! the producer and consumer spans carry the trace, the message headers carry the context.

use crate::{Ports, telemetry};
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue, global};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// The value of `messaging.system` on the shop's messaging spans.
pub const SYSTEM: &str = "shopq";

#[derive(Default)]
struct Queue {
    items: Mutex<VecDeque<Value>>,
    ready: Notify,
}

#[derive(Default)]
struct Broker {
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    next_id: AtomicI64,
}

impl Broker {
    fn queue(&self, name: &str) -> Result<Arc<Queue>, String> {
        let mut queues = self.queues.lock().map_err(|_| "broker lock poisoned")?;
        Ok(queues.entry(name.to_owned()).or_default().clone())
    }
}

/// Runs the broker until the process is stopped.
pub async fn run(ports: Ports) -> Result<(), String> {
    let addr = ports.broker();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    eprintln!("broker listening on {addr}");
    let broker = Arc::new(Broker::default());
    loop {
        let (stream, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accept: {e}"))?;
        let broker = broker.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(&broker, stream).await {
                eprintln!("broker: {e}");
            }
        });
    }
}

async fn connection(broker: &Broker, stream: TcpStream) -> Result<(), String> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
        let request: Value =
            serde_json::from_str(&line).map_err(|e| format!("bad request: {e}"))?;
        let queue = request["queue"]
            .as_str()
            .ok_or("a request names its `queue`")?;
        let queue = broker.queue(queue)?;
        match request["op"].as_str() {
            Some("publish") => {
                let id = broker.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                let message =
                    json!({ "id": id, "headers": request["headers"], "body": request["body"] });
                queue
                    .items
                    .lock()
                    .map_err(|_| "broker lock poisoned")?
                    .push_back(message);
                queue.ready.notify_one();
                write_line(&mut write, &json!({ "id": id })).await?;
            }
            Some("subscribe") => loop {
                let next = queue
                    .items
                    .lock()
                    .map_err(|_| "broker lock poisoned")?
                    .pop_front();
                match next {
                    Some(message) => {
                        if let Err(e) = write_line(&mut write, &message).await {
                            // The consumer went away: keep the message for the next one.
                            if let Ok(mut items) = queue.items.lock() {
                                items.push_front(message);
                            }
                            queue.ready.notify_one();
                            return Err(e);
                        }
                    }
                    None => queue.ready.notified().await,
                }
            },
            other => return Err(format!("unknown op {other:?}")),
        }
    }
    Ok(())
}

async fn write_line(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    value: &Value,
) -> Result<(), String> {
    let mut line = value.to_string();
    line.push('\n');
    write
        .write_all(line.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))
}

/// Publishes `body` to `queue` inside a messaging producer span under `cx`; the message headers
/// carry the span's context. Returns the broker's message id.
pub async fn publish(
    cx: &Context,
    broker: SocketAddr,
    queue: &str,
    body: Value,
) -> Result<i64, String> {
    let span = telemetry::start(
        cx,
        format!("send {queue}"),
        SpanKind::Producer,
        vec![
            KeyValue::new("messaging.system", SYSTEM),
            KeyValue::new("messaging.operation.type", "send"),
            KeyValue::new("messaging.operation.name", "send"),
            KeyValue::new("messaging.destination.name", queue.to_owned()),
            KeyValue::new("server.address", broker.ip().to_string()),
            KeyValue::new("server.port", i64::from(broker.port())),
        ],
    );
    let mut headers: HashMap<String, String> = HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(&span, &mut headers));
    let sent = async {
        let stream = TcpStream::connect(broker)
            .await
            .map_err(|e| format!("broker {broker}: {e}"))?;
        let (read, mut write) = stream.into_split();
        let request = json!({ "op": "publish", "queue": queue, "headers": headers, "body": body });
        write_line(&mut write, &request).await?;
        let reply = BufReader::new(read)
            .lines()
            .next_line()
            .await
            .map_err(|e| format!("broker {broker}: {e}"))?
            .ok_or_else(|| format!("broker {broker} closed the connection"))?;
        let reply: Value =
            serde_json::from_str(&reply).map_err(|e| format!("broker reply: {e}"))?;
        reply["id"]
            .as_i64()
            .ok_or_else(|| format!("broker reply without an id: {reply}"))
    }
    .await;
    match &sent {
        Ok(id) => span
            .span()
            .set_attribute(KeyValue::new("messaging.message.id", id.to_string())),
        Err(e) => telemetry::fail(&span, "BrokerError", e.clone()),
    }
    span.span().end();
    sent
}
