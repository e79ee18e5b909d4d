//! Each service's own SQLite database (in memory, so every run starts from the same data), with a
//! database client span per statement.

use crate::telemetry;
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use rusqlite::Connection;
use std::sync::{Arc, Mutex};

/// A shared SQLite connection; statements run on the blocking pool.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens an in-memory database and runs `schema` (DDL and seed data) on it.
    pub fn open(schema: &str) -> Result<Db, String> {
        let conn = Connection::open_in_memory().map_err(|e| format!("SQLite: {e}"))?;
        conn.execute_batch(schema)
            .map_err(|e| format!("SQLite schema: {e}"))?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the statement `sql` inside a database client span under `cx`.
    /// `operation` and `table` become `db.operation.name` and `db.collection.name`.
    pub async fn run<T, F>(
        &self,
        cx: &Context,
        operation: &'static str,
        table: &'static str,
        sql: &'static str,
        f: F,
    ) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> rusqlite::Result<T> + Send + 'static,
    {
        let span_cx = telemetry::start(
            cx,
            format!("{operation} {table}"),
            SpanKind::Client,
            vec![
                KeyValue::new("db.system.name", "sqlite"),
                KeyValue::new("db.namespace", "main"),
                KeyValue::new("db.operation.name", operation),
                KeyValue::new("db.collection.name", table),
                KeyValue::new("db.query.text", sql),
            ],
        );
        let conn = self.conn.clone();
        let done = tokio::task::spawn_blocking(move || {
            let conn = conn
                .lock()
                .map_err(|_| "the database lock is poisoned".to_owned())?;
            f(&conn, sql).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("database task: {e}"))
        .and_then(|r| r);
        if let Err(e) = &done {
            telemetry::fail(&span_cx, "rusqlite::Error", e.clone());
        }
        span_cx.span().end();
        done
    }
}
