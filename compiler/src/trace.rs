//! The trace model: one OpenTelemetry trace, indexed for selectors.
//!
//! Built from OTLP (`ResourceSpans`, `TracesData`, `ExportTraceServiceRequest`, protobuf bytes or
//! the OTLP JSON the Collector's file exporter writes). Spans live in one `Vec<SpanRecord>` kept
//! sorted by start time then span id, so a span's index *is* its deterministic report order and
//! a selection is a sorted list of `u32` indices. Attribute keys are interned per trace (lookups
//! compare integers), short string values are interned too (real traces repeat them), and resource
//! attributes are stored once per resource, not copied into every span.
//!
//! Real traces are messy and the model tolerates it: several roots or none, orphans whose parent
//! never arrived, duplicate span ids (the first one wins, the rest are counted in [`TraceNotes`]),
//! parent cycles (broken and noted), clock skew (timestamps are kept as sent; `end < start` gives a
//! zero duration), spans of other traces (dropped when a trace id filter is given).
//!
//! Snapshots, not increments: the runtime builds a new trace from each snapshot of the spans its
//! store (or a remote backend) holds, with [`Trace::from_resource_spans`]. [`Trace::extend`] adds
//! a batch to an existing trace (converted once and appended; then the order and the indexes are
//! rebuilt, O(n log n) over records that are only moved, never re-decoded); indices of earlier
//! snapshots are therefore not stable across `extend`.
//!
//! No I/O here: callers hand in bytes or text.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, TracesData, span, status};
use prost::Message;

use crate::hex;
use crate::value::Value;

mod wire;

/// A 16-byte OpenTelemetry trace id; never all zero (the invalid id). Displayed as 32 lower-case
/// hex digits, the W3C `traceparent` form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

impl TraceId {
    /// The id from its wire bytes, if they are exactly 16 bytes and not all zero.
    pub fn from_bytes(bytes: &[u8]) -> Option<TraceId> {
        let id: [u8; 16] = bytes.try_into().ok()?;
        (id != [0; 16]).then_some(TraceId(id))
    }

    /// The id from 32 hex digits (either case), if valid and not all zero.
    pub fn from_hex(text: &str) -> Option<TraceId> {
        hex::decode::<16>(text).and_then(|id| TraceId::from_bytes(&id))
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl std::fmt::Debug for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TraceId({self})")
    }
}

/// An 8-byte span id.
pub type SpanId = [u8; 8];
/// An interned attribute key (per [`Trace`]).
pub type KeyId = u32;

const NONE: u32 = u32::MAX;
/// At most this many warning texts are kept in [`TraceNotes::warnings`]; counters keep counting.
const MAX_WARNINGS: usize = 20;
/// Strings up to this length are interned (names, methods, routes, services repeat a lot).
const INTERN_MAX_LEN: usize = 64;

/// A small, fast hasher for interning and id maps (FxHash); keys are not attacker-chosen in a
/// way that matters here, and SipHash would dominate model building.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
        for &b in chunks.remainder() {
            self.add(b as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        // Final avalanche (murmur3 fmix64): the multiply in `add` keeps input entropy in the high
        // bits only, and span ids of some SDKs vary only in their last bytes, so without this
        // every id would land in the same bucket.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxMap<K, V> = HashMap<K, V, FxBuild>;

/// The kind of a span, as the language names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// `SPAN_KIND_UNSPECIFIED`, treated like `internal` by OpenTelemetry; named `unspecified`.
    Unspecified,
    /// `internal`
    Internal,
    /// `server`
    Server,
    /// `client`
    Client,
    /// `producer`
    Producer,
    /// `consumer`
    Consumer,
}

impl SpanKind {
    pub(crate) fn from_otlp(k: i32) -> SpanKind {
        match span::SpanKind::try_from(k) {
            Ok(span::SpanKind::Internal) => SpanKind::Internal,
            Ok(span::SpanKind::Server) => SpanKind::Server,
            Ok(span::SpanKind::Client) => SpanKind::Client,
            Ok(span::SpanKind::Producer) => SpanKind::Producer,
            Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// The name used in `.tbt` (`kind == server`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// The status of a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// `unset`
    Unset,
    /// `ok`
    Ok,
    /// `error`
    Error,
}

impl StatusCode {
    /// The name used in `.tbt` (`status == error`).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Unset => "unset",
            StatusCode::Ok => "ok",
            StatusCode::Error => "error",
        }
    }
}

/// A span event.
#[derive(Clone, Debug)]
pub struct Event {
    /// Unix time in nanoseconds.
    pub time: u64,
    /// Event name (`exception`, …).
    pub name: Arc<str>,
    /// Attributes with interned keys.
    pub attributes: Box<[(KeyId, Value)]>,
}

/// A span link (follows-from).
#[derive(Clone, Debug)]
pub struct Link {
    /// Trace of the linked span (may be another trace).
    pub trace_id: TraceId,
    /// The linked span.
    pub span_id: SpanId,
    /// Attributes with interned keys.
    pub attributes: Box<[(KeyId, Value)]>,
}

/// One span of a trace.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    /// Trace id.
    pub trace_id: TraceId,
    /// Span id.
    pub span_id: SpanId,
    /// Parent span id as sent; `None` for a root.
    pub parent_span_id: Option<SpanId>,
    /// Span name (interned).
    pub name: Arc<str>,
    /// Span kind.
    pub kind: SpanKind,
    /// Status code.
    pub status: StatusCode,
    /// Status message, if any.
    pub status_message: Option<Arc<str>>,
    /// Start, Unix nanoseconds.
    pub start: u64,
    /// End, Unix nanoseconds.
    pub end: u64,
    /// Span attributes with interned keys, in the order sent.
    pub attributes: Box<[(KeyId, Value)]>,
    /// Events.
    pub events: Box<[Event]>,
    /// Links.
    pub links: Box<[Link]>,
    /// Index into [`Trace::resources`].
    pub resource: u32,
    /// Index into [`Trace::scopes`].
    pub scope: u32,
}

impl SpanRecord {
    /// `end - start`, zero when the clock went backwards.
    pub fn duration(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
}

/// A resource: the process that emitted spans. Shared by all its spans.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    /// `service.name`, or `unknown_service` when absent.
    pub service: Arc<str>,
    /// All resource attributes.
    pub attributes: Box<[(KeyId, Value)]>,
}

/// An instrumentation scope.
#[derive(Clone, Debug)]
pub struct ScopeInfo {
    /// `scope.name`.
    pub name: Arc<str>,
    /// `scope.version`.
    pub version: Arc<str>,
}

/// What the model had to tolerate while building. Counters are exact; `warnings` keeps the
/// first few explanations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceNotes {
    /// Spans dropped because their trace id or span id was not 16 / 8 bytes (or all zero).
    pub invalid_ids: usize,
    /// Spans dropped because an earlier span had the same span id.
    pub duplicate_span_ids: usize,
    /// Spans dropped because they belong to another trace than the filter.
    pub other_trace_spans: usize,
    /// Parent ids of a wrong length, treated as absent (the span becomes an orphan root).
    pub invalid_parent_ids: usize,
    /// Spans that ended before they started (duration taken as 0).
    pub end_before_start: usize,
    /// Parent cycles broken by treating one span of the cycle as a root.
    pub cycles_broken: usize,
    /// Human-readable details, at most 20.
    pub warnings: Vec<String>,
}

impl TraceNotes {
    fn warn(&mut self, msg: impl FnOnce() -> String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(msg());
        }
    }
}

/// Why OTLP input could not be read at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceError {
    /// The protobuf bytes are not an `ExportTraceServiceRequest` / `TracesData`.
    Protobuf(String),
    /// The JSON is not OTLP JSON (line number for JSON-lines input, 1-based).
    Json {
        /// Line of the JSON-lines input (1 for a single document).
        line: usize,
        /// What serde said.
        message: String,
    },
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::Protobuf(m) => write!(f, "invalid OTLP protobuf: {m}"),
            TraceError::Json { line, message } => {
                write!(f, "invalid OTLP JSON (line {line}): {message}")
            }
        }
    }
}

impl std::error::Error for TraceError {}

/// Navigation indexes, rebuilt after each batch.
#[derive(Clone, Debug, Default)]
struct Index {
    parent: Vec<u32>,
    child_start: Vec<u32>,
    children: Vec<u32>,
    /// Position of each span in depth-first pre-order.
    pre: Vec<u32>,
    /// One past the pre-order position of the last descendant.
    subtree_end: Vec<u32>,
    /// Span indices in pre-order.
    preorder: Vec<u32>,
    roots: Vec<u32>,
    orphans: Vec<u32>,
    linked_from_start: Vec<u32>,
    linked_from: Vec<u32>,
    by_name: FxMap<Arc<str>, Vec<u32>>,
    by_service: FxMap<Arc<str>, Vec<u32>>,
    by_kind: [Vec<u32>; 6],
    by_status: [Vec<u32>; 3],
    /// Hot fields in columns, so scans over many spans do not load whole records.
    durations: Vec<u64>,
    kinds: Vec<SpanKind>,
    statuses: Vec<StatusCode>,
    /// Per span-attribute key, one word per span (see [`Trace::str_column`]).
    str_cols: Vec<Vec<usize>>,
}

/// One trace (or, without a trace id filter, all spans handed in), indexed.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    filter: Option<TraceId>,
    spans: Vec<SpanRecord>,
    keys: Vec<Arc<str>>,
    key_ids: FxMap<Arc<str>, KeyId>,
    strings: HashSet<Arc<str>, FxBuild>,
    resources: Vec<ResourceInfo>,
    scopes: Vec<ScopeInfo>,
    /// Every admitted span id and the span's position in [`Trace::spans`]: filled at admission
    /// (one hash per span serves both the duplicate check and navigation by id) and remapped
    /// when [`Trace::rebuild`] reorders the spans. [`NONE`] marks an id admitted but not kept.
    ids: FxMap<SpanId, u32>,
    notes: TraceNotes,
    index: Index,
}

impl Trace {
    /// An empty trace that will keep only spans of `filter` (all spans when `None`).
    pub fn new(filter: Option<TraceId>) -> Trace {
        Trace {
            filter,
            ..Trace::default()
        }
    }

    /// Builds a trace from resource spans.
    pub fn from_resource_spans(batch: &[ResourceSpans], filter: Option<TraceId>) -> Trace {
        let mut t = Trace::new(filter);
        t.extend(batch);
        t
    }

    /// Builds a trace from `TracesData`.
    pub fn from_traces_data(data: &TracesData, filter: Option<TraceId>) -> Trace {
        Trace::from_resource_spans(&data.resource_spans, filter)
    }

    /// Builds a trace from an OTLP export request.
    pub fn from_export_request(req: &ExportTraceServiceRequest, filter: Option<TraceId>) -> Trace {
        Trace::from_resource_spans(&req.resource_spans, filter)
    }

    /// Decodes OTLP protobuf (`ExportTraceServiceRequest`, which has the same encoding as
    /// `TracesData`) and builds the trace.
    ///
    /// Reads the wire format directly into the model (no intermediate `prost` structs): this is
    /// what makes model building fast, since allocation dominated the struct-based path.
    pub fn decode_protobuf(bytes: &[u8], filter: Option<TraceId>) -> Result<Trace, TraceError> {
        let mut t = Trace::new(filter);
        t.extend_protobuf(bytes)?;
        Ok(t)
    }

    /// Adds a batch of OTLP protobuf bytes (`ExportTraceServiceRequest`) as it arrives.
    /// On error the spans decoded before the error are kept and the indexes are rebuilt.
    pub fn extend_protobuf(&mut self, bytes: &[u8]) -> Result<(), TraceError> {
        let r = wire::decode_into(self, bytes);
        self.rebuild();
        r
    }

    /// Parses OTLP JSON and builds the trace: one `{"resourceSpans": …}` document, or JSON lines
    /// of them as the Collector's file exporter writes.
    pub fn from_otlp_json(text: &str, filter: Option<TraceId>) -> Result<Trace, TraceError> {
        let batches = parse_otlp_json(text)?;
        let mut t = Trace::new(filter);
        for b in &batches {
            t.add_batch(&b.resource_spans);
        }
        t.rebuild();
        Ok(t)
    }

    /// Adds a batch of spans as it arrives and rebuilds the indexes (see the module docs).
    pub fn extend(&mut self, batch: &[ResourceSpans]) {
        self.add_batch(batch);
        self.rebuild();
    }

    /// The trace id filter given at construction.
    pub fn trace_id(&self) -> Option<TraceId> {
        self.filter
    }

    /// All spans, sorted by start time then span id.
    pub fn spans(&self) -> &[SpanRecord] {
        &self.spans
    }

    /// The span at `index`.
    pub fn span(&self, index: u32) -> &SpanRecord {
        &self.spans[index as usize]
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when no span has arrived.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// What had to be tolerated.
    pub fn notes(&self) -> &TraceNotes {
        &self.notes
    }

    /// Resources, indexed by [`SpanRecord::resource`].
    pub fn resources(&self) -> &[ResourceInfo] {
        &self.resources
    }

    /// Scopes, indexed by [`SpanRecord::scope`].
    pub fn scopes(&self) -> &[ScopeInfo] {
        &self.scopes
    }

    /// The interned id of an attribute key, if any span, event, link or resource uses it.
    pub fn key_id(&self, key: &str) -> Option<KeyId> {
        self.key_ids.get(key).copied()
    }

    /// The text of an interned key.
    pub fn key_name(&self, key: KeyId) -> &str {
        &self.keys[key as usize]
    }

    /// An attribute of a span: span attributes first, then its resource's.
    pub fn attr(&self, index: u32, key: KeyId) -> Option<&Value> {
        let s = &self.spans[index as usize];
        find_attr(&s.attributes, key)
            .or_else(|| find_attr(&self.resources[s.resource as usize].attributes, key))
    }

    /// An attribute by key text (convenience; the evaluator uses interned ids).
    pub fn attr_by_name(&self, index: u32, key: &str) -> Option<&Value> {
        self.key_id(key).and_then(|k| self.attr(index, k))
    }

    /// `service.name` of the span's resource.
    pub fn service(&self, index: u32) -> &Arc<str> {
        &self.resources[self.spans[index as usize].resource as usize].service
    }

    /// The parent span, when it is in the trace.
    pub fn parent(&self, index: u32) -> Option<u32> {
        let p = self.index.parent[index as usize];
        (p != NONE).then_some(p)
    }

    /// Children in report order.
    pub fn children(&self, index: u32) -> &[u32] {
        let i = index as usize;
        &self.index.children
            [self.index.child_start[i] as usize..self.index.child_start[i + 1] as usize]
    }

    /// Spans that carry a link to this span.
    pub fn linked_from(&self, index: u32) -> &[u32] {
        let i = index as usize;
        &self.index.linked_from
            [self.index.linked_from_start[i] as usize..self.index.linked_from_start[i + 1] as usize]
    }

    /// Spans without a parent in the trace (true roots and orphans), in report order.
    pub fn roots(&self) -> &[u32] {
        &self.index.roots
    }

    /// Spans whose parent id is set but whose parent has not arrived.
    pub fn orphans(&self) -> &[u32] {
        &self.index.orphans
    }

    /// The span with this id.
    pub fn find(&self, span_id: &SpanId) -> Option<u32> {
        self.ids.get(span_id).copied().filter(|&i| i != NONE)
    }

    /// Spans with this exact name, in report order.
    pub fn spans_named(&self, name: &str) -> &[u32] {
        self.index.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// The shared copy of a string value, when some attribute, name or scope of the trace uses it.
    /// Every string of up to [`Trace::INTERN_MAX_LEN`] bytes in the model is interned, so for
    /// such strings pointer equality is string equality.
    pub(crate) fn interned(&self, s: &str) -> Option<&Arc<str>> {
        self.strings.get(s)
    }

    /// The duration of span `i` (from the hot column).
    #[inline]
    pub(crate) fn duration_of(&self, i: u32) -> u64 {
        self.index.durations[i as usize]
    }

    /// The kind of span `i` (from the hot column).
    #[inline]
    pub(crate) fn kind_of(&self, i: u32) -> SpanKind {
        self.index.kinds[i as usize]
    }

    /// The status of span `i` (from the hot column).
    #[inline]
    pub(crate) fn status_of_span(&self, i: u32) -> StatusCode {
        self.index.statuses[i as usize]
    }

    /// The column of a span-attribute key: per span, 0 when the span has no such attribute (its
    /// resource may have it), an odd [`int_code`] for a (62-bit) int, 2 for another value, else
    /// the [`str_code`] of the (interned) string.
    pub(crate) fn str_column(&self, key: KeyId) -> Option<&[usize]> {
        self.index
            .str_cols
            .get(key as usize)
            .filter(|c| !c.is_empty())
            .map(Vec::as_slice)
    }

    /// Strings up to this length are interned.
    pub(crate) const INTERN_MAX_LEN: usize = INTERN_MAX_LEN;

    /// Spans of this service, in report order.
    pub fn spans_of_service(&self, service: &str) -> &[u32] {
        self.index
            .by_service
            .get(service)
            .map_or(&[], Vec::as_slice)
    }

    /// Spans of this kind, in report order.
    pub fn spans_of_kind(&self, kind: SpanKind) -> &[u32] {
        &self.index.by_kind[kind as usize]
    }

    /// Spans with this status, in report order.
    pub fn spans_with_status(&self, status: StatusCode) -> &[u32] {
        &self.index.by_status[status as usize]
    }

    /// Position of a span in depth-first pre-order of the span forest.
    pub fn preorder_position(&self, index: u32) -> u32 {
        self.index.pre[index as usize]
    }

    /// One past the pre-order position of the span's last descendant: the descendants of `i`
    /// are exactly the spans at pre-order positions `pre(i)+1 .. subtree_end(i)`.
    pub fn subtree_end(&self, index: u32) -> u32 {
        self.index.subtree_end[index as usize]
    }

    /// Span indices in pre-order.
    pub fn preorder(&self) -> &[u32] {
        &self.index.preorder
    }

    /// Heap bytes used by the model, approximately (for the memory budget).
    pub fn approx_heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let mut n = self.spans.capacity() * size_of::<SpanRecord>();
        for s in &self.spans {
            n += s.attributes.len() * size_of::<(KeyId, Value)>();
            for (_, v) in s.attributes.iter() {
                n += value_heap(v);
            }
            n += s.events.len() * size_of::<Event>() + s.links.len() * size_of::<Link>();
        }
        for k in &self.strings {
            n += k.len() + 16 + 16;
        }
        let ix = &self.index;
        n += (ix.parent.capacity()
            + ix.child_start.capacity()
            + ix.children.capacity()
            + ix.pre.capacity()
            + ix.subtree_end.capacity()
            + ix.preorder.capacity()
            + ix.roots.capacity()
            + ix.linked_from.capacity()
            + ix.linked_from_start.capacity())
            * 4;
        n += (ix.by_name.len() + ix.by_service.len()) * 48 + self.spans.len() * 16;
        n += ix.str_cols.iter().map(|c| c.capacity() * 8).sum::<usize>();
        n += self.ids.capacity() * (size_of::<(SpanId, u32)>() + 1);
        n
    }

    fn intern_key(&mut self, key: &str) -> KeyId {
        if let Some(&k) = self.key_ids.get(key) {
            return k;
        }
        let k = self.keys.len() as KeyId;
        let a: Arc<str> = Arc::from(key);
        self.keys.push(a.clone());
        self.key_ids.insert(a, k);
        k
    }

    fn convert_attrs(&mut self, kvs: &[KeyValue]) -> Box<[(KeyId, Value)]> {
        let mut out = Vec::with_capacity(kvs.len());
        for kv in kvs {
            let k = self.intern_key(&kv.key);
            let strings = &mut self.strings;
            let v = kv.value.as_ref().map_or(Value::Null, |v| {
                Value::from_any_with(v, &mut |s: &str| intern_str(strings, s))
            });
            out.push((k, v));
        }
        out.into_boxed_slice()
    }

    fn add_batch(&mut self, batch: &[ResourceSpans]) {
        for rs in batch {
            let attrs = rs
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            let attributes = self.convert_attrs(attrs);
            let service_key = self.intern_key("service.name");
            let service = match find_attr(&attributes, service_key) {
                Some(Value::Str(s)) => s.clone(),
                _ => intern_str(&mut self.strings, "unknown_service"),
            };
            let resource = self.resources.len() as u32;
            let mut used = false;
            self.resources.push(ResourceInfo {
                service,
                attributes,
            });
            for ss in &rs.scope_spans {
                let (name, version) = ss
                    .scope
                    .as_ref()
                    .map(|s| (s.name.as_str(), s.version.as_str()))
                    .unwrap_or(("", ""));
                let scope_info = ScopeInfo {
                    name: intern_str(&mut self.strings, name),
                    version: intern_str(&mut self.strings, version),
                };
                let scope = self.scopes.len() as u32;
                self.scopes.push(scope_info);
                self.spans.reserve(ss.spans.len());
                for sp in &ss.spans {
                    used |= self.add_span(sp, resource, scope);
                }
            }
            if !used {
                // Keep resources that ended up with no span out of the model.
                if self.resources.len() as u32 == resource + 1 {
                    self.resources.pop();
                }
            }
        }
    }

    /// Checks a span's ids against the rules and the filter; `Some` when the span is kept.
    pub(crate) fn admit(
        &mut self,
        trace_id: &[u8],
        span_id: &[u8],
        name: &str,
    ) -> Option<(TraceId, SpanId)> {
        let (Some(t), Some(s)) = (id16(trace_id), id8(span_id)) else {
            self.notes.invalid_ids += 1;
            self.notes.warn(|| {
                format!(
                    "span {:?} dropped: trace id has {} bytes and span id {} bytes (need 16 and 8, not all zero)",
                    truncate(name, 80),
                    trace_id.len(),
                    span_id.len()
                )
            });
            return None;
        };
        if let Some(f) = self.filter
            && f != t
        {
            self.notes.other_trace_spans += 1;
            return None;
        }
        let next = self.spans.len() as u32;
        if let std::collections::hash_map::Entry::Vacant(v) = self.ids.entry(s) {
            v.insert(next);
        } else {
            self.notes.duplicate_span_ids += 1;
            self.notes
                .warn(|| format!("duplicate span id {}: kept the first span", hex::encode(&s)));
            return None;
        }
        Some((t, s))
    }

    /// The parent id as the model keeps it (a wrong length becomes an orphan marker).
    pub(crate) fn parent_of(&mut self, span_id: &SpanId, parent: &[u8]) -> Option<SpanId> {
        if parent.is_empty() {
            None
        } else if let Some(p) = id8(parent) {
            Some(p)
        } else {
            self.notes.invalid_parent_ids += 1;
            self.notes.warn(|| {
                format!(
                    "span {} has a parent id of {} bytes; treated as an orphan",
                    hex::encode(span_id),
                    parent.len()
                )
            });
            // Keep the information that a parent was meant: an all-zero id never matches.
            Some([0; 8])
        }
    }

    pub(crate) fn link_of(
        &mut self,
        span_id: &SpanId,
        trace_id: &[u8],
        linked: &[u8],
    ) -> Option<(TraceId, SpanId)> {
        match (id16(trace_id), id8(linked)) {
            (Some(t), Some(s)) => Some((t, s)),
            _ => {
                self.notes.warn(|| {
                    format!(
                        "span {}: link with invalid ids ignored",
                        hex::encode(span_id)
                    )
                });
                None
            }
        }
    }

    pub(crate) fn status_of(code: i32, message: &str) -> (StatusCode, Option<Arc<str>>) {
        let code = match status::StatusCode::try_from(code) {
            Ok(status::StatusCode::Ok) => StatusCode::Ok,
            Ok(status::StatusCode::Error) => StatusCode::Error,
            _ => StatusCode::Unset,
        };
        (code, (!message.is_empty()).then(|| Arc::from(message)))
    }

    pub(crate) fn push_record(&mut self, record: SpanRecord) {
        if record.end < record.start {
            self.notes.end_before_start += 1;
        }
        self.spans.push(record);
    }

    pub(crate) fn intern(&mut self, s: &str) -> Arc<str> {
        intern_str(&mut self.strings, s)
    }

    pub(crate) fn intern_key_pub(&mut self, key: &str) -> KeyId {
        self.intern_key(key)
    }

    pub(crate) fn strings_mut(&mut self) -> &mut HashSet<Arc<str>, FxBuild> {
        &mut self.strings
    }

    pub(crate) fn push_resource(&mut self, attributes: Box<[(KeyId, Value)]>) -> u32 {
        let service_key = self.intern_key("service.name");
        let service = match find_attr(&attributes, service_key) {
            Some(Value::Str(s)) => s.clone(),
            _ => intern_str(&mut self.strings, "unknown_service"),
        };
        self.resources.push(ResourceInfo {
            service,
            attributes,
        });
        self.resources.len() as u32 - 1
    }

    pub(crate) fn push_scope(&mut self, name: &str, version: &str) -> u32 {
        let info = ScopeInfo {
            name: intern_str(&mut self.strings, name),
            version: intern_str(&mut self.strings, version),
        };
        self.scopes.push(info);
        self.scopes.len() as u32 - 1
    }

    /// Removes the last resource when no span of it was kept.
    pub(crate) fn drop_unused_resource(&mut self, resource: u32) {
        if self.resources.len() as u32 == resource + 1 {
            self.resources.pop();
        }
    }

    fn add_span(
        &mut self,
        sp: &opentelemetry_proto::tonic::trace::v1::Span,
        resource: u32,
        scope: u32,
    ) -> bool {
        let Some((trace_id, span_id)) = self.admit(&sp.trace_id, &sp.span_id, &sp.name) else {
            return false;
        };
        let parent_span_id = self.parent_of(&span_id, &sp.parent_span_id);
        let (status, status_message) = match &sp.status {
            Some(s) => Trace::status_of(s.code, &s.message),
            None => (StatusCode::Unset, None),
        };
        let attributes = self.convert_attrs(&sp.attributes);
        let events: Box<[Event]> = sp
            .events
            .iter()
            .map(|e| Event {
                time: e.time_unix_nano,
                name: intern_str(&mut self.strings, &e.name),
                attributes: self.convert_attrs(&e.attributes),
            })
            .collect();
        let mut links = Vec::with_capacity(sp.links.len());
        for l in &sp.links {
            if let Some((trace_id, span_id)) = self.link_of(&span_id, &l.trace_id, &l.span_id) {
                links.push(Link {
                    trace_id,
                    span_id,
                    attributes: self.convert_attrs(&l.attributes),
                });
            }
        }
        let name = intern_str(&mut self.strings, &sp.name);
        self.push_record(SpanRecord {
            trace_id,
            span_id,
            parent_span_id,
            name,
            kind: SpanKind::from_otlp(sp.kind),
            status,
            status_message,
            start: sp.start_time_unix_nano,
            end: sp.end_time_unix_nano,
            attributes,
            events,
            links: links.into_boxed_slice(),
            resource,
            scope,
        });
        true
    }

    fn rebuild(&mut self) {
        // Sort a small key array, then move each record once (records are ~150 bytes).
        let sorted = self
            .spans
            .windows(2)
            .all(|w| (w[0].start, w[0].span_id) < (w[1].start, w[1].span_id));
        // Where each span was before this rebuild sorted them (identity when already sorted).
        let mut new_of_old: Vec<u32> = Vec::new();
        if !sorted {
            let mut keys: Vec<(u64, SpanId, u32)> = self
                .spans
                .iter()
                .enumerate()
                .map(|(i, s)| (s.start, s.span_id, i as u32))
                .collect();
            keys.sort_unstable();
            new_of_old = vec![NONE; keys.len()];
            for (new, &(_, _, old)) in keys.iter().enumerate() {
                new_of_old[old as usize] = new as u32;
            }
            let mut slots: Vec<Option<SpanRecord>> = std::mem::take(&mut self.spans)
                .into_iter()
                .map(Some)
                .collect();
            let mut spans = Vec::with_capacity(keys.len());
            spans.extend(
                keys.iter()
                    .filter_map(|&(_, _, i)| slots[i as usize].take()),
            );
            self.spans = spans;
        }
        // Positions by id follow the move; an id admitted but never kept (its span failed to
        // decode) is marked, since its position belongs to another span.
        let n = self.spans.len();
        // Every id maps to its own span unless some admitted span was not kept.
        let exact = self.ids.len() == n;
        if !(sorted && exact) {
            for (id, pos) in self.ids.iter_mut() {
                if *pos == NONE {
                    continue;
                }
                let new = if sorted {
                    *pos
                } else {
                    new_of_old.get(*pos as usize).copied().unwrap_or(NONE)
                };
                *pos = match self.spans.get(new as usize) {
                    Some(s) if exact || s.span_id == *id => new,
                    _ => NONE,
                };
            }
        }
        // Growth by batches leaves up to half the vector unused; the budget is per span.
        self.spans.shrink_to_fit();
        let mut ix = Index::default();
        // Services per resource once, so spans are grouped without hashing their service name.
        let mut service_ids: FxMap<Arc<str>, usize> = FxMap::default();
        let service_of_resource: Vec<usize> = self
            .resources
            .iter()
            .map(|r| {
                let next = service_ids.len();
                *service_ids.entry(r.service.clone()).or_insert(next)
            })
            .collect();
        let mut service_lists: Vec<Vec<u32>> = vec![Vec::new(); service_ids.len()];
        let mut name_slots: FxMap<usize, usize> = FxMap::default();
        let mut name_lists: Vec<(Arc<str>, Vec<u32>)> = Vec::new();
        for (i, s) in self.spans.iter().enumerate() {
            // Names are interned, so grouping by address needs no string hashing per span.
            let slot = *name_slots
                .entry(Arc::as_ptr(&s.name) as *const u8 as usize)
                .or_insert_with(|| {
                    name_lists.push((s.name.clone(), Vec::new()));
                    name_lists.len() - 1
                });
            name_lists[slot].1.push(i as u32);
            service_lists[service_of_resource[s.resource as usize]].push(i as u32);
            ix.by_kind[s.kind as usize].push(i as u32);
            ix.durations.push(s.duration());
            ix.kinds.push(s.kind);
            ix.statuses.push(s.status);
            ix.by_status[s.status as usize].push(i as u32);
        }
        for (name, list) in name_lists {
            match ix.by_name.entry(name) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(list);
                }
                // The same long (not interned) name at two addresses: one list, in order.
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let merged = o.get_mut();
                    merged.extend(list);
                    merged.sort_unstable();
                }
            }
        }
        for (name, id) in service_ids {
            ix.by_service
                .insert(name, std::mem::take(&mut service_lists[id]));
        }
        ix.parent = vec![NONE; n];
        // Parent cycles (only possible with malformed ids) are broken before indexing, at the
        // span of the cycle that comes first in report order, so the parents form a forest. A
        // span that names itself as its parent is the shortest cycle: a root, not an orphan
        // waiting for a parent that is already there.
        let mut cycles = 0;
        for (i, s) in self.spans.iter().enumerate() {
            match s.parent_span_id {
                None => {}
                Some(p) => match self.ids.get(&p) {
                    Some(&pi) if pi as usize == i => cycles += 1,
                    Some(&pi) if pi != NONE => ix.parent[i] = pi,
                    _ => ix.orphans.push(i as u32),
                },
            }
        }
        {
            let mut state = vec![0u8; n]; // 0 new, 1 on the current path, 2 done
            let mut path: Vec<u32> = Vec::new();
            for i in 0..n {
                let mut cur = i as u32;
                while cur != NONE && state[cur as usize] == 0 {
                    state[cur as usize] = 1;
                    path.push(cur);
                    cur = ix.parent[cur as usize];
                }
                if cur != NONE && state[cur as usize] == 1 {
                    let pos = path.iter().position(|&x| x == cur).unwrap_or(0);
                    let breaker = path[pos..].iter().copied().min().unwrap_or(cur);
                    ix.parent[breaker as usize] = NONE;
                    cycles += 1;
                }
                for &x in &path {
                    state[x as usize] = 2;
                }
                path.clear();
            }
        }
        // Children in CSR form; filled in index order, so each child list is in report order.
        let mut counts = vec![0u32; n + 1];
        for &p in &ix.parent {
            if p != NONE {
                counts[p as usize + 1] += 1;
            }
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        ix.child_start = counts.clone();
        ix.children = vec![0; ix.child_start[n] as usize];
        let mut fill = counts;
        for (i, &p) in ix.parent.iter().enumerate() {
            if p != NONE {
                ix.children[fill[p as usize] as usize] = i as u32;
                fill[p as usize] += 1;
            }
        }
        // Depth-first pre-order, iterative (traces can be deep).
        ix.pre = vec![NONE; n];
        ix.subtree_end = vec![0; n];
        ix.preorder = Vec::with_capacity(n);
        let mut stack: Vec<(u32, u32)> = Vec::new();
        for r in 0..n as u32 {
            if ix.parent[r as usize] != NONE {
                continue;
            }
            ix.roots.push(r);
            ix.pre[r as usize] = ix.preorder.len() as u32;
            ix.preorder.push(r);
            stack.push((r, 0));
            while let Some(top) = stack.last_mut() {
                let node = top.0 as usize;
                let kids =
                    &ix.children[ix.child_start[node] as usize..ix.child_start[node + 1] as usize];
                if (top.1 as usize) < kids.len() {
                    let c = kids[top.1 as usize];
                    top.1 += 1;
                    ix.pre[c as usize] = ix.preorder.len() as u32;
                    ix.preorder.push(c);
                    stack.push((c, 0));
                } else {
                    ix.subtree_end[node] = ix.preorder.len() as u32;
                    stack.pop();
                }
            }
        }
        ix.roots.sort_unstable();
        if cycles > self.notes.cycles_broken {
            let new = cycles - self.notes.cycles_broken;
            self.notes.cycles_broken = cycles;
            self.notes.warn(|| format!("{new} parent cycle(s) broken"));
        }
        // String columns: a filter like `db.system == "postgresql"` then reads 8 bytes per span
        // instead of the span record and its attribute array (the scan is memory-bound).
        for (i, sp) in self.spans.iter().enumerate() {
            for (k, v) in sp.attributes.iter() {
                // Key ids are dense, so columns are indexed directly (no hashing per attribute).
                if ix.str_cols.len() <= *k as usize {
                    ix.str_cols.resize(*k as usize + 1, Vec::new());
                }
                let col = &mut ix.str_cols[*k as usize];
                if col.is_empty() {
                    *col = vec![0; n];
                }
                if col[i] == 0 {
                    col[i] = match v {
                        Value::Str(s) => str_code(s),
                        Value::Int(x) if (-(1i64 << 62)..(1i64 << 62)).contains(x) => int_code(*x),
                        _ => 2,
                    };
                }
            }
        }
        // Reverse link index: for span j, the spans that link to it.
        let mut lcounts = vec![0u32; n + 1];
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for (i, s) in self.spans.iter().enumerate() {
            for l in s.links.iter() {
                if let Some(&j) = self.ids.get(&l.span_id)
                    && j != NONE
                    && self.spans[j as usize].trace_id == l.trace_id
                {
                    pairs.push((j, i as u32));
                    lcounts[j as usize + 1] += 1;
                }
            }
        }
        for i in 0..n {
            lcounts[i + 1] += lcounts[i];
        }
        ix.linked_from = vec![0; pairs.len()];
        let mut lfill = lcounts.clone();
        for (j, i) in pairs {
            ix.linked_from[lfill[j as usize] as usize] = i;
            lfill[j as usize] += 1;
        }
        ix.linked_from_start = lcounts;
        self.index = ix;
    }
}

/// Spans grouped by trace id, for inputs that mix traces (files, backends).
pub struct Traces;

impl Traces {
    /// Splits resource spans into one [`Trace`] per trace id (spans with invalid ids are dropped).
    pub fn group(batch: &[ResourceSpans]) -> BTreeMap<TraceId, Trace> {
        let mut ids: std::collections::BTreeSet<TraceId> = std::collections::BTreeSet::new();
        for rs in batch {
            for ss in &rs.scope_spans {
                ids.extend(ss.spans.iter().filter_map(|s| id16(&s.trace_id)));
            }
        }
        ids.into_iter()
            .map(|id| (id, Trace::from_resource_spans(batch, Some(id))))
            .collect()
    }
}

/// Decodes OTLP protobuf bytes (an `ExportTraceServiceRequest` or `TracesData`).
pub fn decode_protobuf(bytes: &[u8]) -> Result<ExportTraceServiceRequest, TraceError> {
    ExportTraceServiceRequest::decode(bytes).map_err(|e| TraceError::Protobuf(e.to_string()))
}

/// Parses OTLP JSON: one document, or one document per line.
pub fn parse_otlp_json(text: &str) -> Result<Vec<TracesData>, TraceError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str::<TracesData>(trimmed) {
        Ok(d) => Ok(vec![d]),
        Err(first) => {
            if !trimmed.contains('\n') {
                return Err(TraceError::Json {
                    line: 1,
                    message: first.to_string(),
                });
            }
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let d = serde_json::from_str::<TracesData>(line).map_err(|e| TraceError::Json {
                    line: i + 1,
                    message: e.to_string(),
                })?;
                out.push(d);
            }
            Ok(out)
        }
    }
}

/// The identity of a string value for columns: its address. String data of an `Arc<str>` is
/// 8-aligned, so the code is even and, being a real address, never 0 or 2.
pub(crate) fn str_code(s: &Arc<str>) -> usize {
    (Arc::as_ptr(s) as *const u8 as usize) & !1
}

/// An int in a column: odd, so it never looks like a string address.
pub(crate) fn int_code(x: i64) -> usize {
    ((x << 1) | 1) as usize
}

/// The int of an odd column code.
pub(crate) fn int_of_code(code: usize) -> i64 {
    (code as i64) >> 1
}

fn find_attr(attrs: &[(KeyId, Value)], key: KeyId) -> Option<&Value> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

fn intern_str(set: &mut HashSet<Arc<str>, FxBuild>, s: &str) -> Arc<str> {
    if s.len() > INTERN_MAX_LEN {
        return Arc::from(s);
    }
    if let Some(a) = set.get(s) {
        return a.clone();
    }
    let a: Arc<str> = Arc::from(s);
    set.insert(a.clone());
    a
}

fn id16(b: &[u8]) -> Option<TraceId> {
    TraceId::from_bytes(b)
}

fn id8(b: &[u8]) -> Option<SpanId> {
    let a: SpanId = b.try_into().ok()?;
    (a != [0; 8]).then_some(a)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn value_heap(v: &Value) -> usize {
    match v {
        Value::Str(s) if s.len() > INTERN_MAX_LEN => s.len() + 16,
        Value::Bytes(b) => b.len() + 16,
        Value::List(l) => 16 + l.iter().map(|x| 24 + value_heap(x)).sum::<usize>(),
        Value::Object(o) => 16 + o.iter().map(|(_, x)| 40 + value_heap(x)).sum::<usize>(),
        _ => 0,
    }
}
