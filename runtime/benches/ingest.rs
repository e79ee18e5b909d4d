//! Receiver ingest benchmark (a load generator, not a criterion bench).
//!
//! Starts the embedded receiver on `127.0.0.1:0`, sends `--batches N` export requests of 512
//! generated spans (10 attributes each, 64 traces of 8 spans with parent links) over gRPC from
//! `--tasks K` concurrent tonic clients, then prints the sustained rate, checks that the store holds
//! exactly the spans sent, and reports the process's memory (VmRSS / VmHWM) while holding them.
//!
//! Run: `cargo bench -p tbt --bench ingest -- --batches 2000 --tasks 8`. The load is bounded (N
//! batches) and the run ends by itself; a 5-minute deadline guards against a stuck receiver.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use tbt::receiver::{Receiver, ReceiverConfig};
use tbt::store::{StoreLimits, TraceId, TraceStore};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

// The same allocator as the `tbt` binary, so the memory figures are the ones users get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SPANS_PER_BATCH: usize = 512;
const SPANS_PER_TRACE: usize = 8;

fn main() {
    let mut batches = 2000usize;
    let mut tasks = 8usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--batches" => batches = args.next().and_then(|v| v.parse().ok()).unwrap(),
            "--tasks" => tasks = args.next().and_then(|v| v.parse().ok()).unwrap(),
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(300), run(batches, tasks))
            .await
            .expect("benchmark finished within its deadline");
    });
}

/// Single-threaded CPU cost of the server-side steps, without the network: what a prost decode
/// would cost (the receiver avoids it), and what storing an encoded request costs.
fn cpu_profile() {
    let store = TraceStore::new(StoreLimits {
        max_spans: usize::MAX,
        max_bytes: usize::MAX,
    });
    let mut batch = EncodedBatch::new();
    let rounds = 200u64;
    let mut decode = Duration::ZERO;
    let mut ingest = Duration::ZERO;
    for round in 0..rounds {
        let bytes = batch.next(1 << 40 | round);
        let started = Instant::now();
        drop(ExportTraceServiceRequest::decode(&*bytes).unwrap());
        decode += started.elapsed();
        let started = Instant::now();
        store.ingest_encoded(&bytes).unwrap();
        ingest += started.elapsed();
    }
    let spans = (rounds as usize * SPANS_PER_BATCH) as f64;
    println!("single-thread CPU per span (no network)");
    println!(
        "  prost decode (avoided)   {:.0} ns",
        decode.as_nanos() as f64 / spans
    );
    println!(
        "  ingest_encoded           {:.0} ns (validate, split per trace, index)",
        ingest.as_nanos() as f64 / spans
    );
}

/// A batch encoded once; each `next` patches fresh trace and span ids into the bytes, so the load
/// generator spends its CPU on sending, not on encoding (a real exporter runs in another process).
struct EncodedBatch {
    bytes: Vec<u8>,
    /// Per trace of the batch: where its id occurs.
    trace_sites: Vec<Vec<usize>>,
    /// Per span of the batch: where its id occurs (its own id and its children's parent id).
    span_sites: Vec<Vec<usize>>,
}

impl EncodedBatch {
    fn new() -> Self {
        let mut template = template_request();
        let seed = 0xfeed_0000_0000;
        let bytes = patch_ids(&mut template, seed).encode_to_vec();
        let spans = &template.resource_spans[0].scope_spans[0].spans;
        let mut wanted: std::collections::HashMap<[u8; 8], (bool, usize)> =
            std::collections::HashMap::new();
        for (i, span) in spans.iter().enumerate() {
            wanted.insert(span.span_id.clone().try_into().unwrap(), (false, i));
            if i % SPANS_PER_TRACE == 0 {
                let prefix: [u8; 8] = span.trace_id[..8].try_into().unwrap();
                wanted.insert(prefix, (true, i / SPANS_PER_TRACE));
            }
        }
        let mut trace_sites = vec![Vec::new(); SPANS_PER_BATCH / SPANS_PER_TRACE];
        let mut span_sites = vec![Vec::new(); SPANS_PER_BATCH];
        for (at, window) in bytes.windows(8).enumerate() {
            let key: [u8; 8] = window.try_into().unwrap();
            match wanted.get(&key) {
                Some(&(true, trace)) => trace_sites[trace].push(at),
                Some(&(false, span)) => span_sites[span].push(at),
                None => {}
            }
        }
        assert!(trace_sites.iter().all(|s| s.len() == SPANS_PER_TRACE));
        assert!(span_sites.iter().all(|s| !s.is_empty()));
        EncodedBatch {
            bytes,
            trace_sites,
            span_sites,
        }
    }

    fn next(&mut self, seed: u64) -> Bytes {
        for (trace, sites) in self.trace_sites.iter().enumerate() {
            let id = trace_id(seed, trace);
            for &at in sites {
                self.bytes[at..at + 16].copy_from_slice(&id);
            }
            for i in 0..SPANS_PER_TRACE {
                let span = trace * SPANS_PER_TRACE + i;
                let span_id = span_id(&id, i);
                for &at in &self.span_sites[span] {
                    self.bytes[at..at + 8].copy_from_slice(&span_id);
                }
            }
        }
        Bytes::copy_from_slice(&self.bytes)
    }
}

fn span_id(trace_id: &[u8; 16], i: usize) -> [u8; 8] {
    mix(u64::from_be_bytes(trace_id[8..].try_into().unwrap()) ^ i as u64).to_be_bytes()
}

async fn run(batches: usize, tasks: usize) {
    cpu_profile();
    let rss_before = memory("VmRSS:");
    let store = TraceStore::new(StoreLimits {
        max_spans: usize::MAX,
        max_bytes: usize::MAX,
    });
    let receiver = Receiver::start(
        ReceiverConfig {
            http_addr: None,
            ..ReceiverConfig::ephemeral()
        },
        store.clone(),
    )
    .await
    .unwrap();
    let endpoint = receiver.grpc_endpoint().unwrap();
    let channel = tonic::transport::Endpoint::from_shared(endpoint)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );

    // Encoding every request before the clock starts would hold N×512 spans of client memory and
    // distort the RSS figure; each task patches fresh ids into one encoded batch instead.
    let started = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let channel = channel.clone();
        let path = path.clone();
        let share = batches / tasks + usize::from(task < batches % tasks);
        handles.push(tokio::spawn(async move {
            let mut encoded = EncodedBatch::new();
            let mut grpc = tonic::client::Grpc::new(channel);
            for batch in 0..share {
                let seed = ((task as u64) << 32) | batch as u64;
                let body = encoded.next(seed);
                grpc.ready().await.unwrap();
                let response = grpc
                    .unary(tonic::Request::new(body), path.clone(), RawRequestCodec)
                    .await
                    .unwrap()
                    .into_inner();
                assert!(response.partial_success.is_none(), "{response:?}");
            }
            share
        }));
    }
    let mut sent_batches = 0;
    for handle in handles {
        sent_batches += handle.await.unwrap();
    }
    let elapsed = started.elapsed();
    let sent = sent_batches * SPANS_PER_BATCH;
    let stats = store.stats();
    assert_eq!(stats.spans, sent, "every span sent is in the store");
    assert_eq!(stats.ingested_spans, sent as u64);
    assert_eq!(stats.evicted_spans, 0);
    assert_eq!(stats.traces, sent / SPANS_PER_TRACE);

    // Every span is retrievable with its trace: spot-check one trace.
    let any_trace = trace_id(((tasks as u64 - 1) << 32) | 1, 5);
    let snapshot = store.get(TraceId(any_trace)).unwrap();
    assert_eq!(snapshot.span_count, SPANS_PER_TRACE);

    let rate = sent as f64 / elapsed.as_secs_f64();
    println!("receiver ingest over gRPC");
    println!(
        "  sent        {sent} spans in {sent_batches} batches of {SPANS_PER_BATCH} from {tasks} tasks"
    );
    println!("  elapsed     {:.3} s", elapsed.as_secs_f64());
    println!("  rate        {:.0} spans/s", rate);
    println!(
        "  stored      {} spans in {} traces, {} accounted bytes ({:.0} B/span)",
        stats.spans,
        stats.traces,
        stats.bytes,
        stats.bytes as f64 / stats.spans as f64
    );
    println!(
        "  memory      VmRSS {} MiB (before the receiver started, after the CPU profile: {} MiB), VmHWM {} MiB",
        memory("VmRSS:") / 1024,
        rss_before / 1024,
        memory("VmHWM:") / 1024
    );
    receiver.shutdown().await.unwrap();
}

/// A `/proc/self/status` figure in KiB (0 where unavailable).
fn memory(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mix(mut x: u64) -> u64 {
    // splitmix64: well-spread, reproducible ids.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn trace_id(seed: u64, trace: usize) -> [u8; 16] {
    let high = mix(seed.wrapping_mul(131) ^ trace as u64);
    let low = mix(high ^ 0x5555);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

/// Gives every trace of the batch a fresh trace id and every span a fresh span id; each trace is
/// a root with children, grandchildren hanging off the first child.
fn patch_ids(request: &mut ExportTraceServiceRequest, seed: u64) -> &ExportTraceServiceRequest {
    let spans = &mut request.resource_spans[0].scope_spans[0].spans;
    for (trace, chunk) in spans.chunks_mut(SPANS_PER_TRACE).enumerate() {
        let id = trace_id(seed, trace);
        let span_ids: Vec<[u8; 8]> = (0..chunk.len()).map(|i| span_id(&id, i)).collect();
        for (i, span) in chunk.iter_mut().enumerate() {
            span.trace_id.clear();
            span.trace_id.extend_from_slice(&id);
            span.span_id.clear();
            span.span_id.extend_from_slice(&span_ids[i]);
            span.parent_span_id.clear();
            match i {
                0 => {}
                1..=3 => span.parent_span_id.extend_from_slice(&span_ids[0]),
                _ => span.parent_span_id.extend_from_slice(&span_ids[1]),
            }
        }
    }
    request
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// One batch the way an SDK's batch processor sends it: one resource, one scope, 512 spans.
fn template_request() -> ExportTraceServiceRequest {
    let start = 1_763_700_000_000_000_000u64;
    let spans = (0..SPANS_PER_BATCH)
        .map(|i| {
            let root = i % SPANS_PER_TRACE == 0;
            Span {
                name: if root {
                    "GET /api/orders/{id}".into()
                } else {
                    "SELECT orders.orders".into()
                },
                kind: if root { 2 } else { 3 },
                start_time_unix_nano: start + i as u64 * 1_000,
                end_time_unix_nano: start + i as u64 * 1_000 + 850_000,
                attributes: vec![
                    string("http.request.method", "GET"),
                    string("url.path", "/api/orders/12345"),
                    int("http.response.status_code", 200),
                    string("server.address", "orders.internal"),
                    int("server.port", 8080),
                    string("user_agent.original", "tbt-bench/0.1"),
                    string("db.system.name", "postgresql"),
                    string("db.query.text", "SELECT * FROM orders WHERE id = $1"),
                    int("thread.id", 17 + (i as i64 % 8)),
                    KeyValue {
                        key: "cache.hit".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::BoolValue(i % 3 == 0)),
                        }),
                        ..KeyValue::default()
                    },
                ],
                status: Some(Status {
                    message: String::new(),
                    code: 1,
                }),
                ..Span::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", "orders"),
                    string("service.version", "1.4.2"),
                    string("telemetry.sdk.language", "rust"),
                    string("telemetry.sdk.name", "opentelemetry"),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "orders-service".into(),
                    version: "1.4.2".into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        }],
    }
}

/// Sends pre-encoded request bytes; decodes the response with prost.
#[derive(Clone, Copy)]
struct RawRequestCodec;

struct RawEncoder;
struct ResponseDecoder;

impl Codec for RawRequestCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportTraceServiceResponse>, tonic::Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|error| tonic::Status::internal(error.to_string()))
    }
}
