//! Where traces come from: the [`TraceSource`] trait and the offline file source.
//!
//! A source is a *feed*: [`TraceSource::follow`] shows a [`Judge`] every new view of one trace (an
//! [`Observation`]) as it arrives — pushed by the embedded receiver, polled from Jaeger or Tempo,
//! all at once from a file — and stops when the judge says the verdict is in or the deadline
//! passes. Sources know how spans arrive; when a trace is complete enough for a verdict is the
//! judge's question ([`super::completion`]). [`TraceSource::wait`] is the plain rule (non-empty,
//! a root, no missing parent, `settle` quiet) as a judge, for callers without expectations.

use crate::store::exporters::Cadence;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tbt_compiler::trace::{Trace, TraceId};

/// What a wait produced.
pub enum Waited {
    /// The trace settled (or, for offline sources, is all there is).
    Settled(Trace),
    /// The deadline passed; this is what arrived (possibly nothing).
    TimedOut(Trace),
}

/// One view of a trace, shown to a [`Judge`].
pub struct Observation<'a> {
    /// The spans seen so far.
    pub trace: &'a Trace,
    /// When the trace last changed (spans arrived, or a poll first saw them); `None` before any.
    pub last_arrival: Option<Instant>,
    /// Nothing more will ever arrive (a file holds all there is).
    pub final_view: bool,
}

/// What the judge wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The verdict is in: stop following.
    Done,
    /// Show me the next change, or wake me at this instant if nothing changed by then (`None`:
    /// only on a change or at the deadline).
    Wait(Option<Instant>),
}

/// Decides, from successive views of a trace, when following it can stop.
pub trait Judge: Send {
    /// Looks at the current view.
    fn observe(&mut self, now: Instant, seen: &Observation<'_>) -> Decision;
}

/// How following ended.
pub struct Followed {
    /// The last view.
    pub trace: Trace,
    /// The deadline passed before the judge was satisfied.
    pub timed_out: bool,
    /// When the trace last changed (`None`: nothing arrived).
    pub last_arrival: Option<Instant>,
}

/// A future returned by a source.
pub type SourceFuture<'a> = Pin<Box<dyn Future<Output = Result<Waited, String>> + Send + 'a>>;

/// A future returned by [`TraceSource::follow`].
pub type FollowFuture<'a> = Pin<Box<dyn Future<Output = Result<Followed, String>> + Send + 'a>>;

/// A place traces are read from.
pub trait TraceSource: Send + Sync {
    /// Shows `judge` every new view of trace `id` until it says [`Decision::Done`] or `deadline`
    /// passes (the judge is shown the view at the deadline too).
    fn follow<'a>(
        &'a self,
        id: TraceId,
        deadline: tokio::time::Instant,
        judge: &'a mut dyn Judge,
    ) -> FollowFuture<'a>;
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
    /// How often `service` has been seen to export (its batch period), when the source sees
    /// batches arrive (the embedded receiver does; a remote backend does not).
    fn cadence(&self, _service: &str) -> Option<Cadence> {
        None
    }
    /// Every service whose export period the source has estimated, with it.
    fn cadences(&self) -> Vec<(String, Cadence)> {
        Vec::new()
    }
    /// Waits for trace `id` to settle by the plain rule: non-empty, a root, no span pointing at a
    /// parent that has not arrived, and `settle` without a change; at most `timeout`.
    fn wait(&self, id: TraceId, timeout: Duration, settle: Duration) -> SourceFuture<'_> {
        Box::pin(async move {
            let mut judge = Settle(settle);
            let deadline = tokio::time::Instant::now() + timeout;
            let f = self.follow(id, deadline, &mut judge).await?;
            Ok(if f.timed_out {
                Waited::TimedOut(f.trace)
            } else {
                Waited::Settled(f.trace)
            })
        })
    }
}

/// The plain settle rule of [`TraceSource::wait`].
struct Settle(Duration);

impl Judge for Settle {
    fn observe(&mut self, now: Instant, seen: &Observation<'_>) -> Decision {
        let t = seen.trace;
        let complete = !t.is_empty() && !t.roots().is_empty() && t.orphans().is_empty();
        if seen.final_view {
            return if t.is_empty() {
                Decision::Wait(None)
            } else {
                Decision::Done
            };
        }
        if !complete {
            return Decision::Wait(None);
        }
        match seen.last_arrival.map(|a| a + self.0) {
            Some(q) if q > now => Decision::Wait(Some(q)),
            _ => Decision::Done,
        }
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
    fn follow<'a>(
        &'a self,
        id: TraceId,
        _deadline: tokio::time::Instant,
        judge: &'a mut dyn Judge,
    ) -> FollowFuture<'a> {
        Box::pin(async move {
            let trace = Trace::from_otlp_json(&self.text, Some(id)).map_err(|e| e.to_string())?;
            // All there is: the judge decides on it at once; an absent trace is "timed out".
            let seen = Observation {
                trace: &trace,
                last_arrival: None,
                final_view: true,
            };
            let done = judge.observe(Instant::now(), &seen) == Decision::Done;
            Ok(Followed {
                timed_out: !done || trace.is_empty(),
                trace,
                last_arrival: None,
            })
        })
    }

    fn describe(&self) -> String {
        format!("file `{}`", self.path)
    }
}

/// The embedded OTLP receiver's store: push-based, no polling. Every arrival of the trace's
/// spans wakes the follower, which shows the judge the new view; between arrivals it sleeps until
/// the instant the judge asked for or the deadline, whichever is first.
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
    fn follow<'a>(
        &'a self,
        id: TraceId,
        deadline: tokio::time::Instant,
        judge: &'a mut dyn Judge,
    ) -> FollowFuture<'a> {
        Box::pin(async move {
            let mut watch = self.store.subscribe(id);
            let mut trace = Trace::new(Some(id));
            let mut count = usize::MAX;
            loop {
                let snap = watch.snapshot();
                if snap.span_count != count {
                    // Decode only when something arrived; a timer wake-up re-judges the same view.
                    trace = Trace::from_resource_spans(&snap.resource_spans, Some(id));
                    count = snap.span_count;
                }
                let now = tokio::time::Instant::now();
                let seen = Observation {
                    trace: &trace,
                    last_arrival: snap.last_arrival,
                    final_view: false,
                };
                let wake = match judge.observe(now.into_std(), &seen) {
                    Decision::Done => {
                        return Ok(Followed {
                            trace,
                            timed_out: false,
                            last_arrival: snap.last_arrival,
                        });
                    }
                    _ if now >= deadline => {
                        return Ok(Followed {
                            trace,
                            timed_out: true,
                            last_arrival: snap.last_arrival,
                        });
                    }
                    Decision::Wait(Some(at)) => tokio::time::Instant::from_std(at).min(deadline),
                    Decision::Wait(None) => deadline,
                };
                tokio::select! {
                    _ = watch.changed() => {}
                    _ = tokio::time::sleep_until(wake) => {}
                }
            }
        })
    }

    fn cadence(&self, service: &str) -> Option<Cadence> {
        self.store.exporters().cadence(service)
    }

    fn cadences(&self) -> Vec<(String, Cadence)> {
        self.store.exporters().cadences()
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
