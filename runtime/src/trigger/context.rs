//! The W3C trace context a trigger propagates, and the runner's own trigger span.
//!
//! Why it exists: every trigger starts a fresh trace. The system under test continues it from the
//! `traceparent` we send, so its root spans get *our* span id as parent. To give the trace a
//! single root, the runner records that parent span itself ([`trigger_span`]) and the scheduler
//! hands it to the trace store like any exported span.
//!
//! What it must not do: no I/O and no clock reads — times are passed in, so spans are
//! reproducible in tests. It must never produce an all-zero id (invalid per W3C).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span::SpanKind, status::StatusCode,
};
use std::time::{SystemTime, UNIX_EPOCH};

use tbt_compiler::hex;
use tbt_compiler::trace::TraceId;

/// Longest `tbt=` value we send; W3C allows 256, we keep headers short.
const MAX_TAG_LEN: usize = 64;

/// A trace id and the span id of the runner's trigger span, plus a short tag for `tracestate`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace every span caused by this trigger belongs to. Never all zero.
    pub trace_id: TraceId,
    /// The trigger span's id: the parent of the system under test's root spans. Never all zero.
    pub span_id: [u8; 8],
    /// What goes after `tbt=` in `tracestate`, already made valid (see [`TraceContext::with_tag`]).
    tag: String,
}

impl TraceContext {
    /// A fresh context with random ids and the tag `run`.
    pub fn new() -> Self {
        Self {
            trace_id: TraceId(random_non_zero()),
            span_id: random_non_zero(),
            tag: "run".to_owned(),
        }
    }

    /// A context with the given ids (for `trigger trace` and tests). `None` if either is all zero.
    pub fn from_ids(trace_id: [u8; 16], span_id: [u8; 8]) -> Option<Self> {
        let trace_id = TraceId::from_bytes(&trace_id)?;
        if span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            tag: "run".to_owned(),
        })
    }

    /// Sets the `tracestate` tag, e.g. `"<run id>.<test>.<step>"`, so a trace seen in another tool
    /// says which tbt test made it. Characters W3C forbids in a value (`,` `=`, controls, non-ASCII,
    /// spaces) become `_`; the tag is cut to 64 characters; an empty tag becomes `run`.
    pub fn with_tag(mut self, tag: &str) -> Self {
        let cleaned: String = tag
            .chars()
            .take(MAX_TAG_LEN)
            .map(|c| {
                if c.is_ascii_graphic() && c != ',' && c != '=' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.tag = if cleaned.is_empty() {
            "run".to_owned()
        } else {
            cleaned
        };
        self
    }

    /// The tag sent as `tbt=<tag>`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The W3C `traceparent` value: version 00, our ids, flags 01 (sampled — we want every span).
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, hex::encode(&self.span_id))
    }

    /// The W3C `tracestate` value: one list member, `tbt=<tag>`.
    pub fn tracestate(&self) -> String {
        format!("tbt={}", self.tag)
    }
}

impl Default for TraceContext {
    fn default() -> Self {
        Self::new()
    }
}

fn random_non_zero<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    loop {
        // The OS generator failing means the machine is broken; fall back to a time-derived id
        // rather than panic, still never all zero.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(1)
                .to_le_bytes();
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = nanos[i % nanos.len()] ^ (i as u8).wrapping_mul(151);
            }
        }
        if bytes.iter().any(|&b| b != 0) {
            return bytes;
        }
    }
}

/// An attribute value of the trigger span.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// A string attribute.
    Str(String),
    /// An integer attribute.
    Int(i64),
}

impl From<&str> for AttrValue {
    fn from(value: &str) -> Self {
        AttrValue::Str(value.to_owned())
    }
}

impl From<String> for AttrValue {
    fn from(value: String) -> Self {
        AttrValue::Str(value)
    }
}

impl From<i64> for AttrValue {
    fn from(value: i64) -> Self {
        AttrValue::Int(value)
    }
}

/// Whether the trigger itself worked; a failed trigger marks its span with status error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanStatus {
    /// The request was sent and answered (whatever the answer was).
    Ok,
    /// The trigger failed: the message is the user-facing error.
    Error(String),
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn key_value(key: &str, value: AttrValue) -> KeyValue {
    let value = match value {
        AttrValue::Str(s) => Value::StringValue(s),
        AttrValue::Int(i) => Value::IntValue(i),
    };
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// The runner's own span for one trigger, as an OTLP export request the trace store ingests.
///
/// Resource `service.name = "tbt"`, scope `tbt`, kind CLIENT, no parent: it is the trace's root,
/// and its span id is the one sent in `traceparent`. `status` error sets the span status to
/// ERROR with the message. Attributes should follow the OpenTelemetry semantic conventions (see
/// [`super::span_attributes`]).
pub fn trigger_span(
    ctx: &TraceContext,
    name: &str,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<(String, AttrValue)>,
    status: &SpanStatus,
) -> ExportTraceServiceRequest {
    let status = match status {
        SpanStatus::Ok => Status {
            message: String::new(),
            code: StatusCode::Unset as i32,
        },
        SpanStatus::Error(message) => Status {
            message: message.clone(),
            code: StatusCode::Error as i32,
        },
    };
    let span = Span {
        trace_id: ctx.trace_id.as_bytes().to_vec(),
        span_id: ctx.span_id.to_vec(),
        trace_state: ctx.tracestate(),
        parent_span_id: Vec::new(),
        flags: 0x01,
        name: name.to_owned(),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: unix_nanos(start),
        end_time_unix_nano: unix_nanos(end).max(unix_nanos(start)),
        attributes: attributes
            .into_iter()
            .map(|(k, v)| key_value(&k, v))
            .collect(),
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status: Some(status),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![key_value("service.name", "tbt".into())],
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "tbt".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                }),
                spans: vec![span],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_has_the_w3c_shape() {
        let ctx = TraceContext::from_ids([0xab; 16], [0x01; 8]).expect("non-zero ids");
        assert_eq!(
            ctx.traceparent(),
            "00-abababababababababababababababab-0101010101010101-01"
        );
        assert_eq!(ctx.tracestate(), "tbt=run");
    }

    #[test]
    fn fresh_contexts_differ_and_are_never_zero() {
        let a = TraceContext::new();
        let b = TraceContext::new();
        assert_ne!(a.trace_id, b.trace_id);
        assert_ne!(a.trace_id.as_bytes(), &[0; 16]);
        assert_ne!(a.span_id, [0; 8]);
        let tp = a.traceparent();
        assert_eq!(tp.len(), 55);
        assert!(
            tp.chars()
                .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
    }

    #[test]
    fn zero_ids_are_rejected() {
        assert!(TraceContext::from_ids([0; 16], [1; 8]).is_none());
        assert!(TraceContext::from_ids([1; 16], [0; 8]).is_none());
        assert!(TraceId::from_hex(&"0".repeat(32)).is_none());
    }

    #[test]
    fn tags_are_made_valid_for_tracestate() {
        let ctx = TraceContext::new().with_tag("r1.place order,x=y\u{e9}");
        assert_eq!(ctx.tracestate(), "tbt=r1.place_order_x_y_");
        let long = TraceContext::new().with_tag(&"a".repeat(300));
        assert_eq!(long.tag().len(), 64);
        assert_eq!(TraceContext::new().with_tag("").tag(), "run");
    }

    #[test]
    fn trigger_span_is_a_client_root_with_our_ids() {
        let ctx = TraceContext::new().with_tag("t1");
        let start = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let end = start + std::time::Duration::from_millis(12);
        let request = trigger_span(
            &ctx,
            "GET",
            start,
            end,
            vec![
                ("http.request.method".into(), "GET".into()),
                ("http.response.status_code".into(), 200.into()),
            ],
            &SpanStatus::Error("connection refused".into()),
        );
        let rs = &request.resource_spans[0];
        let resource = rs.resource.as_ref().expect("resource");
        assert_eq!(resource.attributes[0].key, "service.name");
        assert_eq!(
            resource.attributes[0].value,
            Some(AnyValue {
                value: Some(Value::StringValue("tbt".into()))
            })
        );
        let scope = &rs.scope_spans[0];
        assert_eq!(scope.scope.as_ref().map(|s| s.name.as_str()), Some("tbt"));
        let span = &scope.spans[0];
        assert_eq!(span.trace_id, ctx.trace_id.as_bytes().to_vec());
        assert_eq!(span.span_id, ctx.span_id.to_vec());
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_700_000_000_012_000_000);
        assert_eq!(span.trace_state, "tbt=t1");
        let status = span.status.as_ref().expect("status");
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "connection refused");
        assert_eq!(span.attributes.len(), 2);
        assert_eq!(
            span.attributes[1].value,
            Some(AnyValue {
                value: Some(Value::IntValue(200))
            })
        );
    }
}
