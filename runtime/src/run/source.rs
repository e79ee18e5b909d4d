//! Where traces come from: the [`TraceSource`] trait and the offline file source.
//!
//! A source answers one question: "give me trace T once it has settled, or what you have at the
//! deadline". The file source (`--traces FILE`) reads OTLP JSON as the OpenTelemetry Collector's
//! file exporter writes it (one document, or JSON lines) and answers at once.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tbt_compiler::trace::{Trace, TraceId};

/// What a wait produced.
pub enum Waited {
    /// The trace settled (or, for offline sources, is all there is).
    Settled(Trace),
    /// The deadline passed; this is what arrived (possibly nothing).
    TimedOut(Trace),
}

/// A future returned by a source.
pub type SourceFuture<'a> = Pin<Box<dyn Future<Output = Result<Waited, String>> + Send + 'a>>;

/// A place traces are read from.
pub trait TraceSource: Send + Sync {
    /// Waits for trace `id` to settle (`settle` quiet after its root ended), at most `timeout`.
    fn wait(&self, id: TraceId, timeout: Duration, settle: Duration) -> SourceFuture<'_>;
    /// A short description for messages: `file traces.json`, `embedded receiver 127.0.0.1:4317`.
    fn describe(&self) -> String;
    /// True when spans arrive while the run goes on (live triggers make sense).
    fn is_live(&self) -> bool {
        false
    }
    /// Records the runner's own trigger span (the root of the trace it started), where the source
    /// keeps spans itself. Remote and file sources ignore it.
    fn record(
        &self,
        _request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    ) {
    }
}

/// Recorded traces from an OTLP JSON file.
pub struct FileSource {
    path: String,
    text: String,
}

impl FileSource {
    /// Reads and validates the file.
    pub fn open(path: &str) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
        let text =
            String::from_utf8(bytes).map_err(|_| format!("`{path}` is not UTF-8 OTLP JSON"))?;
        // Validate once, so a broken file is an error before any test runs.
        Trace::from_otlp_json(&text, None)
            .map_err(|e| format!("`{path}` is not OTLP JSON: {e}"))?;
        Ok(FileSource {
            path: path.to_string(),
            text,
        })
    }
}

impl TraceSource for FileSource {
    fn wait(&self, id: TraceId, _timeout: Duration, _settle: Duration) -> SourceFuture<'_> {
        Box::pin(async move {
            let t = Trace::from_otlp_json(&self.text, Some(id)).map_err(|e| e.to_string())?;
            Ok(if t.is_empty() {
                Waited::TimedOut(t)
            } else {
                Waited::Settled(t)
            })
        })
    }

    fn describe(&self) -> String {
        format!("file `{}`", self.path)
    }
}

/// The embedded OTLP receiver's store: push-based, no polling.
///
/// A trace is *settled* when it has a root, no span points at a parent that has not arrived, and
/// nothing new arrived for `settle`. Every arrival wakes the waiter, which re-checks; between
/// arrivals it sleeps until the quiet period would end or the deadline, whichever is first.
pub struct EmbeddedSource {
    store: crate::store::TraceStore,
    describe: String,
}

impl EmbeddedSource {
    /// A source over a receiver's store; `describe` names it in messages (its addresses).
    pub fn new(store: crate::store::TraceStore, describe: String) -> Self {
        EmbeddedSource { store, describe }
    }
}

impl TraceSource for EmbeddedSource {
    fn wait(&self, id: TraceId, timeout: Duration, settle: Duration) -> SourceFuture<'_> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut watch = self.store.subscribe(crate::store::TraceId(id));
            loop {
                let snap = watch.snapshot();
                let trace = Trace::from_resource_spans(&snap.resource_spans, Some(id));
                let complete =
                    !trace.is_empty() && !trace.roots().is_empty() && trace.orphans().is_empty();
                let now = tokio::time::Instant::now();
                let quiet_until = snap
                    .last_arrival
                    .map(|t| tokio::time::Instant::from_std(t) + settle);
                if complete && quiet_until.is_none_or(|q| q <= now) {
                    return Ok(Waited::Settled(trace));
                }
                if now >= deadline {
                    return Ok(Waited::TimedOut(trace));
                }
                let wake = match quiet_until {
                    Some(q) if complete => q.min(deadline),
                    _ => deadline,
                };
                tokio::select! {
                    _ = watch.changed() => {}
                    _ = tokio::time::sleep_until(wake) => {}
                }
            }
        })
    }

    fn record(
        &self,
        request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    ) {
        self.store.ingest(request);
    }

    fn is_live(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
