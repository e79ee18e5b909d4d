//! Generated OTLP traces for benches and the memory test: a tree with fan-out 2–5 (depth about
//! 10 at 100k spans), 12 services, 10 attributes per span with realistic repetition.
#![allow(dead_code, missing_docs)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value as V,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

pub const TRACE_ID: [u8; 16] = [7; 16];
pub const SERVICES: usize = 12;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn kv(k: &str, v: V) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

/// A request holding one trace of `n` spans.
pub fn request(n: usize) -> ExportTraceServiceRequest {
    let mut rng = Lcg(42);
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES];
    let mut service_of = vec![0usize; n];
    let mut start_of = vec![0u64; n];
    let base = 1_700_000_000_000_000_000u64;
    let methods = ["GET", "POST", "PUT"];
    let systems = ["postgresql", "redis", "sqlite"];
    for i in 0..n {
        let parent = if i == 0 {
            None
        } else {
            Some((i - 1) / (2 + rng.below(4) as usize))
        };
        let hop = rng.below(4) == 0;
        let service = match parent {
            None => 0,
            Some(p) if hop => {
                (service_of[p] + 1 + rng.below(SERVICES as u64 - 1) as usize) % SERVICES
            }
            Some(p) => service_of[p],
        };
        service_of[i] = service;
        let start = parent.map_or(base, |p| start_of[p] + 1_000 + rng.below(2_000_000));
        start_of[i] = start;
        let duration = 10_000 + rng.below(50_000_000);
        let kind = if parent.is_none() || hop {
            2
        } else if rng.below(3) == 0 {
            3
        } else {
            1
        };
        let attrs = vec![
            kv(
                "http.request.method",
                V::StringValue(methods[rng.below(3) as usize].into()),
            ),
            kv(
                "http.route",
                V::StringValue(format!("/api/v1/resource{}/{{id}}", rng.below(20))),
            ),
            kv(
                "http.response.status_code",
                V::IntValue([200, 201, 404, 500][rng.below(4) as usize]),
            ),
            kv(
                "db.system",
                V::StringValue(systems[rng.below(3) as usize].into()),
            ),
            kv(
                "db.query.text",
                V::StringValue(format!(
                    "SELECT * FROM table_{} WHERE id = $1",
                    rng.below(50)
                )),
            ),
            kv(
                "server.address",
                V::StringValue(format!("host-{}.internal", rng.below(30))),
            ),
            kv(
                "enduser.id",
                V::StringValue(format!("user-{}", rng.below(10_000))),
            ),
            kv("thread.id", V::IntValue(rng.below(64) as i64)),
            kv("retry", V::BoolValue(rng.below(10) == 0)),
            kv(
                "payload.size",
                V::DoubleValue(rng.below(100_000) as f64 / 10.0),
            ),
        ];
        let span_id = (i as u64 + 1).to_be_bytes().to_vec();
        by_service[service].push(Span {
            trace_id: TRACE_ID.to_vec(),
            span_id,
            parent_span_id: parent.map_or(Vec::new(), |p| (p as u64 + 1).to_be_bytes().to_vec()),
            name: format!("op-{}", rng.below(40)),
            kind,
            start_time_unix_nano: start,
            end_time_unix_nano: start + duration,
            attributes: attrs,
            status: Some(Status {
                code: if rng.below(50) == 0 { 2 } else { 0 },
                message: String::new(),
            }),
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .enumerate()
            .filter(|(_, s)| !s.is_empty())
            .map(|(k, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", V::StringValue(format!("svc-{k}"))),
                        kv("service.version", V::StringValue("1.2.3".into())),
                        kv("telemetry.sdk.language", V::StringValue("rust".into())),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "bench".into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}
