//! OTLP JSON as backends write it, decoded straight from the answer's bytes into the protobuf
//! types — no JSON tree in between (a tree of a 90 MB answer takes about ten times that). It
//! accepts ids in hex or base64 (protobuf's canonical JSON, as Tempo writes them), enums by
//! number or by name (`SPAN_KIND_SERVER`,
//! `STATUS_CODE_ERROR`), and the pre-1.0 names `instrumentationLibrarySpans` /
//! `instrumentationLibrary`. Attributes, events, resources and scopes use the protobuf types'
//! own JSON support.

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// A Tempo answer: `{"batches"|"resourceSpans": […]}`, possibly inside `{"trace": …}`, or
/// `{"trace": null}` (not found).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Answer {
    /// Absent: the batches are at the top; `null`: not found.
    #[serde(deserialize_with = "present")]
    trace: Option<Option<Batches>>,
    batches: Option<Vec<JResourceSpans>>,
    resource_spans: Option<Vec<JResourceSpans>>,
}

/// `Some(None)` for `null`, so that an absent field (`None`, the default) differs from it.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// One document of Jaeger's HTTP answer: `{"result": TracesData}` or `{"error": {…}}`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct JaegerDocument {
    /// The spans (`resourceSpans` may be absent or null).
    pub(crate) result: Option<JaegerResult>,
    /// An error, kept as written (it is small) to read its code and message.
    pub(crate) error: Option<serde_json::Value>,
}

/// `{"resourceSpans": […]}`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct JaegerResult {
    resource_spans: Option<Vec<JResourceSpans>>,
}

impl JaegerResult {
    /// Its batches.
    pub(crate) fn into_batches(self) -> Vec<ResourceSpans> {
        self.resource_spans
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect()
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Batches {
    batches: Option<Vec<JResourceSpans>>,
    resource_spans: Option<Vec<JResourceSpans>>,
}

impl Answer {
    /// The batches, or `None` when the answer has neither `batches` nor `resourceSpans` (an
    /// empty object and `{"trace": null}` are no batches).
    pub(crate) fn into_batches(self) -> Option<Vec<ResourceSpans>> {
        let b = match self.trace {
            Some(Some(inner)) => inner,
            Some(None) => return Some(Vec::new()),
            None => Batches {
                batches: self.batches,
                resource_spans: self.resource_spans,
            },
        };
        match (b.batches, b.resource_spans) {
            (Some(v), _) | (None, Some(v)) => Some(v.into_iter().map(Into::into).collect()),
            (None, None) => None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JResourceSpans {
    resource: Option<Resource>,
    #[serde(alias = "instrumentationLibrarySpans")]
    scope_spans: Vec<JScopeSpans>,
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JScopeSpans {
    #[serde(alias = "instrumentationLibrary")]
    scope: Option<InstrumentationScope>,
    spans: Vec<JSpan>,
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JSpan {
    trace_id: Id,
    span_id: Id,
    trace_state: String,
    parent_span_id: Id,
    flags: u32,
    name: String,
    kind: Enum,
    start_time_unix_nano: Nanos,
    end_time_unix_nano: Nanos,
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
    events: Vec<span::Event>,
    dropped_events_count: u32,
    links: Vec<JLink>,
    dropped_links_count: u32,
    status: Option<JStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JLink {
    trace_id: Id,
    span_id: Id,
    trace_state: String,
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
    flags: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JStatus {
    message: String,
    code: Enum,
}

impl From<JResourceSpans> for ResourceSpans {
    fn from(r: JResourceSpans) -> Self {
        ResourceSpans {
            resource: r.resource,
            scope_spans: r.scope_spans.into_iter().map(Into::into).collect(),
            schema_url: r.schema_url,
        }
    }
}

impl From<JScopeSpans> for ScopeSpans {
    fn from(s: JScopeSpans) -> Self {
        ScopeSpans {
            scope: s.scope,
            spans: s.spans.into_iter().map(Into::into).collect(),
            schema_url: s.schema_url,
        }
    }
}

impl From<JSpan> for Span {
    fn from(s: JSpan) -> Self {
        Span {
            trace_id: s.trace_id.0,
            span_id: s.span_id.0,
            trace_state: s.trace_state,
            parent_span_id: s.parent_span_id.0,
            flags: s.flags,
            name: s.name,
            kind: s.kind.number(&SPAN_KINDS, "SPAN_KIND_"),
            start_time_unix_nano: s.start_time_unix_nano.0,
            end_time_unix_nano: s.end_time_unix_nano.0,
            attributes: s.attributes,
            dropped_attributes_count: s.dropped_attributes_count,
            events: s.events,
            dropped_events_count: s.dropped_events_count,
            links: s
                .links
                .into_iter()
                .map(|l| span::Link {
                    trace_id: l.trace_id.0,
                    span_id: l.span_id.0,
                    trace_state: l.trace_state,
                    attributes: l.attributes,
                    dropped_attributes_count: l.dropped_attributes_count,
                    flags: l.flags,
                })
                .collect(),
            dropped_links_count: s.dropped_links_count,
            status: s.status.map(|st| Status {
                message: st.message,
                code: st.code.number(&STATUS_CODES, "STATUS_CODE_"),
            }),
        }
    }
}

const SPAN_KINDS: [&str; 6] = [
    "UNSPECIFIED",
    "INTERNAL",
    "SERVER",
    "CLIENT",
    "PRODUCER",
    "CONSUMER",
];
const STATUS_CODES: [&str; 3] = ["UNSET", "OK", "ERROR"];

/// An id in hex or base64; anything else (or a wrong length) is kept as its bytes, which the
/// trace model then reports as invalid.
#[derive(Default)]
struct Id(Vec<u8>);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(Id(Vec::new()));
        }
        if super::is_hex(&s, 16) {
            return Ok(Id(
                tbt_compiler::hex::decode::<16>(&s).map_or_else(Vec::new, Vec::from)
            ));
        }
        if super::is_hex(&s, 8) {
            return Ok(Id(
                tbt_compiler::hex::decode::<8>(&s).map_or_else(Vec::new, Vec::from)
            ));
        }
        Ok(Id(
            super::base64_decode(&s).unwrap_or_else(|| s.into_bytes())
        ))
    }
}

/// An enum by number or by name.
#[derive(Default)]
enum Enum {
    #[default]
    Unset,
    Number(i32),
    Name(String),
}

impl Enum {
    fn number(&self, names: &[&str], prefix: &str) -> i32 {
        match self {
            Enum::Unset => 0,
            Enum::Number(n) => *n,
            Enum::Name(s) => {
                let short = s.strip_prefix(prefix).unwrap_or(s);
                names
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case(short))
                    .and_then(|i| i32::try_from(i).ok())
                    .unwrap_or(0)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Enum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Enum;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an enum number or name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Enum, E> {
                i32::try_from(v).map(Enum::Number).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Enum, E> {
                i32::try_from(v).map(Enum::Number).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Enum, E> {
                Ok(Enum::Name(v.to_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Enum, E> {
                Ok(Enum::Unset)
            }
        }
        d.deserialize_any(V)
    }
}

/// Nanoseconds as a number or a decimal string.
#[derive(Default)]
struct Nanos(u64);

impl<'de> Deserialize<'de> for Nanos {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Nanos;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("nanoseconds as a number or a string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Nanos, E> {
                Ok(Nanos(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Nanos, E> {
                u64::try_from(v).map(Nanos).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Nanos, E> {
                v.parse().map(Nanos).map_err(E::custom)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Nanos, E> {
                Ok(Nanos(0))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A Tempo-style answer with every field this module reads: base64 and hex ids, enums by
    /// name and number, times as strings and numbers, events, links, the pre-1.0 names.
    fn answer() -> serde_json::Value {
        serde_json::json!({"batches": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
            "instrumentationLibrarySpans": [{"instrumentationLibrary": {"name": "lib", "version": "1"}, "spans": [
                {"traceId": "AAAAAAAAAAAAAAAAAAAAAQ==", "spanId": "AAAAAAAAAAI=", "name": "GET /",
                 "kind": "SPAN_KIND_SERVER", "startTimeUnixNano": "1544712660000000000",
                 "endTimeUnixNano": 1544712661000000000u64, "traceState": "a=b", "flags": 1,
                 "attributes": [{"key": "retries", "value": {"intValue": "3"}},
                                {"key": "ok", "value": {"boolValue": true}}],
                 "events": [{"timeUnixNano": "1544712660500000000", "name": "exception",
                             "attributes": [{"key": "exception.message", "value": {"stringValue": "x"}}]}],
                 "links": [{"traceId": "000000000000000000000000000000ff", "spanId": "00000000000000ee"}],
                 "status": {"code": "STATUS_CODE_ERROR", "message": "boom"}},
                {"traceId": "00000000000000000000000000000001", "spanId": "0000000000000003",
                 "parentSpanId": "AAAAAAAAAAI=", "name": "SELECT", "kind": 3,
                 "startTimeUnixNano": "1", "endTimeUnixNano": "2", "status": {"code": 1}}
            ]}]
        }]})
    }

    #[test]
    fn decodes_ids_enums_times_events_links_and_old_names() {
        let typed = serde_json::from_str::<Answer>(&answer().to_string())
            .unwrap()
            .into_batches()
            .unwrap();
        let scope = &typed[0].scope_spans[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, "lib");
        let (server, select) = (&scope.spans[0], &scope.spans[1]);
        let id = |n: u8, len: usize| {
            let mut v = vec![0u8; len];
            v[len - 1] = n;
            v
        };
        assert_eq!(server.trace_id, id(1, 16));
        assert_eq!(server.span_id, id(2, 8));
        assert_eq!((server.kind, server.status.as_ref().unwrap().code), (2, 2));
        assert_eq!(server.status.as_ref().unwrap().message, "boom");
        assert_eq!(
            (server.start_time_unix_nano, server.end_time_unix_nano),
            (1_544_712_660_000_000_000, 1_544_712_661_000_000_000)
        );
        assert_eq!((server.trace_state.as_str(), server.flags), ("a=b", 1));
        assert_eq!(server.attributes.len(), 2);
        assert_eq!(server.events[0].name, "exception");
        assert_eq!(server.events[0].time_unix_nano, 1_544_712_660_500_000_000);
        assert_eq!(server.links[0].trace_id, id(0xff, 16));
        assert_eq!(server.links[0].span_id, id(0xee, 8));
        assert_eq!(select.trace_id, id(1, 16));
        assert_eq!(select.parent_span_id, id(2, 8));
        assert_eq!((select.kind, select.status.as_ref().unwrap().code), (3, 1));
        let t = tbt_compiler::trace::Trace::from_resource_spans(&typed, None);
        assert_eq!(t.len(), 2);
        assert!(t.orphans().is_empty());
    }

    #[test]
    fn shapes_of_the_answer() {
        let batches = |text: &str| {
            serde_json::from_str::<Answer>(text)
                .unwrap()
                .into_batches()
                .map(|b| b.len())
        };
        assert_eq!(batches(r#"{"trace": null}"#), Some(0));
        assert_eq!(batches(r#"{"trace": {"resourceSpans": [{}]}}"#), Some(1));
        assert_eq!(batches(r#"{"resourceSpans": [{}, {}]}"#), Some(2));
        assert_eq!(batches(r#"{"other": 1}"#), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Untrusted bytes from a backend never panic the decoder.
        #[test]
        fn arbitrary_answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(a) = serde_json::from_slice::<Answer>(&bytes) {
                let _ = a.into_batches();
            }
        }

        /// Nor do valid answers with one field's value replaced by any JSON scalar.
        #[test]
        fn mutated_answers_never_panic(
            field in prop::sample::select(vec!["traceId", "spanId", "kind", "startTimeUnixNano",
                "name", "links", "events", "status", "attributes", "flags"]),
            value in prop_oneof![
                Just(serde_json::Value::Null),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<bool>().prop_map(serde_json::Value::from),
                "[ -~]{0,24}".prop_map(serde_json::Value::from),
            ],
        ) {
            let mut doc = answer();
            doc["batches"][0]["instrumentationLibrarySpans"][0]["spans"][0][field] = value;
            if let Ok(a) = serde_json::from_str::<Answer>(&doc.to_string()) {
                let _ = a.into_batches();
            }
        }
    }
}
