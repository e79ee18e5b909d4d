//! In-memory trace store: spans indexed by trace id, with push notification of arrivals.
//!
//! Why it exists: the embedded OTLP receiver writes every exported span here, and the scheduler's
//! trace-wait nodes read from here. Spans may arrive before the test that caused them asks for them
//! (exporters batch, triggers race), so everything is kept until memory pressure says otherwise.
//! Waiters are woken on arrival through a `tokio::sync::watch` channel per awaited trace: no polling.
//!
//! Storage decision: each trace keeps a list of *protobuf-encoded* `ResourceSpans` chunks (one per
//! ingest request and resource that touched the trace, holding only that trace's spans with their
//! resource and scope), as shared `Bytes`. Spans are decoded only when a snapshot is taken.
//! Fully decoded prost structs cost several times their wire size (every attribute key, string
//! value and id is its own heap allocation, plus `Vec` slack), which would not fit the 1 GB / 1M
//! spans target; the encoded form is the wire size plus ~50 bytes per trace and chunk (~450 B per
//! span with 10 attributes, ~520 MiB RSS for 1M spans). The chunks are built without decoding
//! ([`TraceStore::ingest_encoded`], module `wire`): the request is validated against the OTLP
//! trace schema and each trace's span bytes are copied into its chunk, so ingest costs about a
//! third of a prost decode. Copying per trace (rather than keeping whole request buffers plus span
//! offsets) makes eviction exact: evicting a trace frees its bytes without pinning buffers shared
//! with other traces. The measured figures are in `docs/benchmarks.md` ("Receiver ingest").
//!
//! Locking: one `std::sync::Mutex` around the index, held only for map updates (grouping and encoding
//! happen before it is taken, decoding after it is released) and never across an `.await`.
//!
//! It also keeps the exporter log ([`exporters::Exporters`]): per service, when batches arrive and
//! how far behind their spans' end times — what the trace judge needs to size its quiet window.
//!
//! What it must not do: interpret spans (settling, matching and verdicts belong to the scheduler and
//! the evaluator), evict a trace somebody is subscribed to, or block an async task for long.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio::sync::watch;

pub mod exporters;
mod wire;

pub use wire::WireError;

pub use tbt_compiler::trace::TraceId;

/// Memory bounds of a [`TraceStore`]. When either is exceeded after an ingest, whole traces that
/// nobody subscribes to are evicted, least recently updated first, until both hold again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Maximum number of spans held.
    pub max_spans: usize,
    /// Maximum number of bytes held (encoded spans plus a fixed per-trace and per-chunk overhead).
    pub max_bytes: usize,
}

impl Default for StoreLimits {
    /// 2M spans or 1 GiB, whichever comes first.
    fn default() -> Self {
        StoreLimits {
            max_spans: 2_000_000,
            max_bytes: 1 << 30,
        }
    }
}

/// What one [`TraceStore::ingest`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Spans stored.
    pub accepted_spans: usize,
    /// Spans refused because their trace id is not 16 bytes (or all zero) or their span id is not 8
    /// bytes (or all zero).
    pub rejected_spans: usize,
    /// Distinct traces that received spans.
    pub traces_touched: usize,
    /// Why spans were rejected, when some were (for the OTLP partial-success message).
    pub rejection: Option<String>,
}

/// Counters describing the whole store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Traces currently held (including subscribed traces with no spans yet).
    pub traces: usize,
    /// Spans currently held.
    pub spans: usize,
    /// Bytes currently accounted (see [`StoreLimits::max_bytes`]).
    pub bytes: usize,
    /// Spans accepted since the store was created.
    pub ingested_spans: u64,
    /// Traces evicted since the store was created.
    pub evicted_traces: u64,
    /// Spans evicted since the store was created.
    pub evicted_spans: u64,
}

/// The spans of one trace seen so far.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSnapshot {
    /// The trace.
    pub trace_id: TraceId,
    /// This trace's spans grouped resource → scope → spans, in arrival order. Chunks with equal
    /// resources and scopes are merged.
    pub resource_spans: Vec<ResourceSpans>,
    /// Number of spans in `resource_spans`.
    pub span_count: usize,
    /// When spans of this trace last arrived; `None` if none has arrived yet.
    pub last_arrival: Option<Instant>,
}

impl TraceSnapshot {
    /// Iterates over every span with its resource spans and scope spans.
    pub fn spans(&self) -> impl Iterator<Item = (&ResourceSpans, &ScopeSpans, &Span)> {
        self.resource_spans.iter().flat_map(|rs| {
            rs.scope_spans
                .iter()
                .flat_map(move |ss| ss.spans.iter().map(move |span| (rs, ss, span)))
        })
    }
}

/// Fixed bytes charged per trace entry (map slot, entry, order index) on top of its encoded spans.
const TRACE_OVERHEAD: usize = 160;
/// Fixed bytes charged per encoded chunk (`Bytes` handle and allocation header).
const CHUNK_OVERHEAD: usize = 48;

struct TraceEntry {
    chunks: Vec<Bytes>,
    span_count: usize,
    bytes: usize,
    last_arrival: Option<Instant>,
    /// Position in `Index::order` (last-update sequence number).
    seq: u64,
    /// Created on the first subscription; carries the span count so waiters see every arrival.
    notify: Option<watch::Sender<usize>>,
}

impl TraceEntry {
    fn subscribed(&self) -> bool {
        self.notify
            .as_ref()
            .is_some_and(|sender| sender.receiver_count() > 0)
    }
}

#[derive(Default)]
struct Index {
    traces: HashMap<TraceId, TraceEntry>,
    /// Traces by last-update sequence number, oldest first: the eviction order.
    order: BTreeMap<u64, TraceId>,
    next_seq: u64,
    stats: StoreStats,
}

impl Index {
    fn touch(&mut self, trace_id: TraceId) -> &mut TraceEntry {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, trace_id);
        let entry = self.traces.entry(trace_id).or_insert_with(|| {
            self.stats.traces += 1;
            self.stats.bytes += TRACE_OVERHEAD;
            TraceEntry {
                chunks: Vec::new(),
                span_count: 0,
                bytes: TRACE_OVERHEAD,
                last_arrival: None,
                seq,
                notify: None,
            }
        });
        if entry.seq != seq {
            self.order.remove(&entry.seq);
            entry.seq = seq;
        }
        entry
    }

    fn evict(&mut self, limits: &StoreLimits) {
        if self.stats.spans <= limits.max_spans && self.stats.bytes <= limits.max_bytes {
            return;
        }
        let mut victims = Vec::new();
        let (mut spans, mut bytes) = (self.stats.spans, self.stats.bytes);
        for (&seq, trace_id) in &self.order {
            if spans <= limits.max_spans && bytes <= limits.max_bytes {
                break;
            }
            let Some(entry) = self.traces.get(trace_id) else {
                continue;
            };
            if entry.subscribed() {
                continue;
            }
            spans -= entry.span_count;
            bytes -= entry.bytes;
            victims.push(seq);
        }
        for seq in victims {
            if let Some(trace_id) = self.order.remove(&seq)
                && let Some(entry) = self.traces.remove(&trace_id)
            {
                self.stats.traces -= 1;
                self.stats.spans -= entry.span_count;
                self.stats.bytes -= entry.bytes;
                self.stats.evicted_traces += 1;
                self.stats.evicted_spans += entry.span_count as u64;
            }
        }
    }
}

struct Shared {
    index: Mutex<Index>,
    limits: StoreLimits,
    exporters: exporters::Exporters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock leaves the index consistent enough to keep serving: every
        // update is a few field writes. Recover instead of poisoning the whole run.
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The in-memory trace store. Cheap to clone: clones share the same spans.
#[derive(Clone)]
pub struct TraceStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for TraceStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceStore")
            .field("limits", &self.shared.limits)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for TraceStore {
    fn default() -> Self {
        TraceStore::new(StoreLimits::default())
    }
}

impl TraceStore {
    /// An empty store bounded by `limits`.
    pub fn new(limits: StoreLimits) -> TraceStore {
        TraceStore {
            shared: Arc::new(Shared {
                index: Mutex::new(Index::default()),
                limits,
                exporters: exporters::Exporters::default(),
            }),
        }
    }

    /// The store's memory bounds.
    pub fn limits(&self) -> StoreLimits {
        self.shared.limits
    }

    /// The exporter log: per service, the export period seen so far.
    pub fn exporters(&self) -> &exporters::Exporters {
        &self.shared.exporters
    }

    /// Stores every valid span of `request` under its trace id, with its resource and scope, wakes
    /// the subscribers of the traces touched, then evicts unsubscribed traces if a limit is exceeded.
    pub fn ingest(&self, request: ExportTraceServiceRequest) -> IngestStats {
        // One path for both entry points: the encoded one is the fast one, and it splits by
        // resource and scope exactly. Encoding a decoded request costs little next to decoding it.
        let encoded = request.encode_to_vec();
        self.ingest_encoded(&encoded).unwrap_or_else(|error| {
            let rejected_spans = request
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum();
            IngestStats {
                rejected_spans,
                rejection: Some(format!("invalid request: {}", error.0)),
                ..IngestStats::default()
            }
        })
    }

    /// Like [`TraceStore::ingest`], from an encoded `ExportTraceServiceRequest` (the body of an
    /// OTLP/gRPC or OTLP/HTTP protobuf request): validates it against the OTLP trace schema and
    /// copies each trace's spans without decoding them, several times faster than decoding.
    /// A malformed request is refused whole, with nothing stored.
    pub fn ingest_encoded(&self, request: &[u8]) -> Result<IngestStats, WireError> {
        let resources = wire::split_request(request)?;
        self.log_batches(request, &resources);
        let mut stats = IngestStats::default();
        let mut by_trace: HashMap<TraceId, Vec<(usize, usize, &wire::SpanRef)>> = HashMap::new();
        for (ri, resource) in resources.iter().enumerate() {
            for (si, scope) in resource.scopes.iter().enumerate() {
                for span in &scope.spans {
                    let name = || String::from_utf8_lossy(&request[span.name.clone()]).into_owned();
                    let Some(trace_id) = TraceId::from_bytes(&request[span.trace_id.clone()])
                    else {
                        stats.rejected_spans += 1;
                        stats.rejection = Some(format!(
                            "span {:?}: trace id must be 16 bytes, not all zero (got {})",
                            name(),
                            span.trace_id.len()
                        ));
                        continue;
                    };
                    let span_id = &request[span.span_id.clone()];
                    if span_id.len() != 8 || span_id == [0; 8] {
                        stats.rejected_spans += 1;
                        stats.rejection = Some(format!(
                            "span {:?}: span id must be 8 bytes, not all zero (got {})",
                            name(),
                            span_id.len()
                        ));
                        continue;
                    }
                    by_trace.entry(trace_id).or_default().push((ri, si, span));
                }
            }
        }
        stats.traces_touched = by_trace.len();
        let mut encoded = Vec::with_capacity(by_trace.len());
        for (trace_id, spans) in by_trace {
            stats.accepted_spans += spans.len();
            // Spans are in request order, so each resource's (and scope's) spans are contiguous.
            let mut rest = spans.as_slice();
            while let Some(&(ri, _, _)) = rest.first() {
                let end = rest.iter().position(|s| s.0 != ri).unwrap_or(rest.len());
                let (same_resource, tail) = rest.split_at(end);
                rest = tail;
                let mut scopes: Vec<(&wire::ScopeRef, Vec<&wire::SpanRef>)> = Vec::new();
                let mut current = usize::MAX;
                for &(_, si, span) in same_resource {
                    if si != current {
                        scopes.push((&resources[ri].scopes[si], Vec::new()));
                        current = si;
                    }
                    if let Some((_, spans)) = scopes.last_mut() {
                        spans.push(span);
                    }
                }
                let bytes = wire::encode_resource_spans(request, &resources[ri], &scopes);
                encoded.push((trace_id, Bytes::from(bytes), same_resource.len()));
            }
        }
        if !encoded.is_empty() {
            self.insert_chunks(encoded);
        }
        Ok(stats)
    }

    /// Records each resource's batch in the exporter log: its `service.name` and the end time of
    /// its oldest span.
    fn log_batches(&self, request: &[u8], resources: &[wire::ResourceRef]) {
        use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
        use opentelemetry_proto::tonic::resource::v1::Resource;
        let now = Instant::now();
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        for r in resources {
            let oldest = r
                .scopes
                .iter()
                .flat_map(|s| &s.spans)
                .map(|s| s.end)
                .filter(|&e| e > 0)
                .min();
            let Some(oldest) = oldest else { continue };
            let service = r
                .resource
                .as_ref()
                .and_then(|range| Resource::decode(&request[range.clone()]).ok())
                .and_then(|res| {
                    res.attributes
                        .into_iter()
                        .find_map(|kv| match kv.value?.value? {
                            Any::StringValue(s) if kv.key == "service.name" => Some(s),
                            _ => None,
                        })
                })
                .unwrap_or_else(|| "unknown_service".to_string());
            self.shared.exporters.observe(&service, now, unix, oldest);
        }
    }

    fn insert_chunks(&self, encoded: Vec<(TraceId, Bytes, usize)>) {
        let now = Instant::now();
        let mut index = self.shared.lock();
        for (trace_id, bytes, count) in encoded {
            let charged = bytes.len() + CHUNK_OVERHEAD;
            let entry = index.touch(trace_id);
            entry.chunks.push(bytes);
            entry.span_count += count;
            entry.bytes += charged;
            entry.last_arrival = Some(now);
            if let Some(sender) = &entry.notify {
                sender.send_replace(entry.span_count);
            }
            index.stats.spans += count;
            index.stats.bytes += charged;
            index.stats.ingested_spans += count as u64;
        }
        let limits = self.shared.limits;
        index.evict(&limits);
    }

    /// Subscribes to `trace_id`, whether or not any of its spans arrived yet. While the returned
    /// watch lives, the trace is never evicted. Spans already present are *not* reported by
    /// [`TraceWatch::changed`]: take a [`TraceWatch::snapshot`] first, then wait for changes.
    pub fn subscribe(&self, trace_id: TraceId) -> TraceWatch {
        let mut index = self.shared.lock();
        if !index.traces.contains_key(&trace_id) {
            index.touch(trace_id);
        }
        let Some(entry) = index.traces.get_mut(&trace_id) else {
            unreachable!("entry inserted above");
        };
        let receiver = match &entry.notify {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(entry.span_count);
                entry.notify = Some(sender);
                receiver
            }
        };
        TraceWatch {
            trace_id,
            receiver,
            store: self.clone(),
        }
    }

    /// The spans of `trace_id` seen so far, or `None` if the store holds nothing for it.
    pub fn get(&self, trace_id: TraceId) -> Option<TraceSnapshot> {
        let (chunks, span_count, last_arrival) = {
            let index = self.shared.lock();
            let entry = index.traces.get(&trace_id)?;
            (entry.chunks.clone(), entry.span_count, entry.last_arrival)
        };
        Some(TraceSnapshot {
            trace_id,
            resource_spans: decode_chunks(&chunks),
            span_count,
            last_arrival,
        })
    }

    /// The ids of every trace held, in no particular order.
    pub fn trace_ids(&self) -> Vec<TraceId> {
        self.shared.lock().traces.keys().copied().collect()
    }

    /// Current counters.
    pub fn stats(&self) -> StoreStats {
        self.shared.lock().stats
    }
}

/// Decodes a trace's chunks and merges those with equal resource and scope. Chunks were encoded by
/// [`TraceStore::ingest`], so a decode failure is a bug; such a chunk is skipped rather than
/// crashing a run.
fn decode_chunks(chunks: &[Bytes]) -> Vec<ResourceSpans> {
    let mut merged: Vec<ResourceSpans> = Vec::new();
    for chunk in chunks {
        let Ok(decoded) = ResourceSpans::decode(chunk.clone()) else {
            debug_assert!(false, "stored chunk failed to decode");
            continue;
        };
        let target = merged
            .iter_mut()
            .find(|rs| rs.resource == decoded.resource && rs.schema_url == decoded.schema_url);
        let Some(target) = target else {
            merged.push(decoded);
            continue;
        };
        for scope_spans in decoded.scope_spans {
            let same = target
                .scope_spans
                .iter_mut()
                .find(|s| s.scope == scope_spans.scope && s.schema_url == scope_spans.schema_url);
            match same {
                Some(existing) => existing.spans.extend(scope_spans.spans),
                None => target.scope_spans.push(scope_spans),
            }
        }
    }
    merged
}

/// A subscription to one trace: wakes on every arrival of its spans and keeps it from eviction.
pub struct TraceWatch {
    trace_id: TraceId,
    receiver: watch::Receiver<usize>,
    store: TraceStore,
}

impl fmt::Debug for TraceWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceWatch")
            .field("trace_id", &self.trace_id)
            .finish()
    }
}

impl TraceWatch {
    /// The watched trace.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// Returns once spans arrived for this trace since the last call (or since subscribing).
    /// Several arrivals between two calls are reported once. Cancel-safe; pair it with
    /// `tokio::time::timeout` for a deadline.
    pub async fn changed(&mut self) {
        if self.receiver.changed().await.is_err() {
            // The sender lives in the store entry, which is never evicted while this watch exists;
            // it only goes away with the store itself. Nothing will arrive any more.
            std::future::pending::<()>().await;
        }
    }

    /// The spans of this trace seen so far (empty if none arrived yet). Marks the current state as
    /// seen, so a following [`TraceWatch::changed`] waits for later arrivals.
    pub fn snapshot(&mut self) -> TraceSnapshot {
        self.receiver.borrow_and_update();
        self.store.get(self.trace_id).unwrap_or(TraceSnapshot {
            trace_id: self.trace_id,
            resource_spans: Vec::new(),
            span_count: 0,
            last_arrival: None,
        })
    }
}
