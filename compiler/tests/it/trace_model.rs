//! The trace model: building from OTLP (protobuf, JSON), tolerance of messy traces, and bad
//! input that must give a clear error or be tolerated, never a panic.
#![allow(missing_docs, clippy::unwrap_used)]

use crate::support::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValueList, any_value};
use opentelemetry_proto::tonic::trace::v1::span;
use proptest::prelude::*;
use prost::Message;
use tbt_compiler::Value;
use tbt_compiler::trace::{SpanKind, StatusCode, Trace, TraceError, TraceId, Traces};

fn sid_of(t: &Trace, i: u32) -> u64 {
    u64::from_be_bytes(t.span(i).span_id)
}

#[test]
fn builds_indexes_from_resource_spans() {
    let t = trace(&shop());
    assert_eq!(t.len(), 9);
    assert_eq!(
        t.resources().len(),
        4,
        "one resource per service, shared by its spans"
    );
    let root = t.find(&1u64.to_be_bytes()).unwrap();
    assert_eq!(t.parent(root), None);
    assert_eq!(
        t.roots().iter().map(|&i| sid_of(&t, i)).collect::<Vec<_>>(),
        vec![1, 9]
    );
    let post = t.find(&2u64.to_be_bytes()).unwrap();
    assert_eq!(
        t.children(post)
            .iter()
            .map(|&i| sid_of(&t, i))
            .collect::<Vec<_>>(),
        vec![3, 4, 5, 7]
    );
    let producer = t.find(&7u64.to_be_bytes()).unwrap();
    assert_eq!(
        t.linked_from(producer)
            .iter()
            .map(|&i| sid_of(&t, i))
            .collect::<Vec<_>>(),
        vec![9]
    );
    let s = t.span(t.find(&5u64.to_be_bytes()).unwrap());
    assert_eq!((s.kind, s.status), (SpanKind::Server, StatusCode::Ok));
    assert_eq!(
        &**t.service(t.find(&5u64.to_be_bytes()).unwrap()),
        "payments"
    );
    assert!(
        matches!(t.attr_by_name(t.find(&5u64.to_be_bytes()).unwrap(), "payment.amount"), Some(Value::Float(f)) if *f == 99.99)
    );
    assert_eq!(t.spans_named("SELECT orders").len(), 2);
    assert_eq!(t.notes(), &Default::default());
}

#[test]
fn typed_attributes_events_and_links_are_kept() {
    let mut x = s(1, 0, "typed", "svc", 0, 1)
        .attr("b", any_bool(true))
        .attr("i", any_int(-7))
        .attr(
            "bytes",
            AnyValue {
                value: Some(any_value::Value::BytesValue(vec![0xde, 0xad])),
            },
        )
        .attr(
            "arr",
            AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![any_int(1), any_str("x")],
                })),
            },
        )
        .attr(
            "kv",
            AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: vec![kv("inner", any_f64(0.5))],
                })),
            },
        );
    x.links.push(99); // a link to a span that is not in the trace
    let mut rs = build(&[x]);
    rs[0].scope_spans[0].spans[0].events.push(span::Event {
        time_unix_nano: T0,
        name: "exception".into(),
        attributes: vec![kv("exception.type", any_str("Boom"))],
        ..Default::default()
    });
    let t = Trace::from_resource_spans(&rs, None);
    let a = |k: &str| t.attr_by_name(0, k).unwrap().clone();
    assert!(matches!(a("b"), Value::Bool(true)));
    assert!(matches!(a("i"), Value::Int(-7)));
    assert_eq!(a("bytes").to_string(), "0xdead");
    assert_eq!(a("arr").to_string(), r#"[1, "x"]"#);
    assert_eq!(a("kv").to_string(), r#"{"inner": 0.5}"#);
    assert_eq!(&*t.span(0).events[0].name, "exception");
    assert_eq!(t.span(0).links.len(), 1);
}

#[test]
fn tolerates_duplicates_orphans_cycles_and_other_traces() {
    let other = [0x11; 16];
    let spans = vec![
        s(1, 0, "root", "a", 0, 10),
        s(1, 0, "duplicate of root", "a", 1, 2),
        s(2, 77, "orphan", "a", 2, 3),
        s(3, 0, "second root", "b", 3, 4),
        s(4, 5, "cycle a", "b", 4, 5),
        s(5, 4, "cycle b", "b", 5, 6),
        s(6, 6, "own parent", "b", 6, 7),
        s(7, 1, "skewed child starts before parent", "c", 0, 20),
        s(8, 1, "clock went backwards", "c", 9, 3),
        s(9, 0, "other trace", "c", 1, 2).trace(other),
    ];
    let t = Trace::from_resource_spans(&build(&spans), Some(TraceId(TRACE_ID)));
    assert_eq!(t.len(), 8);
    let n = t.notes();
    assert_eq!(
        (
            n.duplicate_span_ids,
            n.other_trace_spans,
            n.cycles_broken,
            n.end_before_start
        ),
        (1, 1, 2, 1)
    );
    assert!(
        n.warnings
            .iter()
            .any(|w| w.contains("duplicate span id 0000000000000001")),
        "{:?}",
        n.warnings
    );
    assert_eq!(
        &*t.span(t.find(&1u64.to_be_bytes()).unwrap()).name,
        "root",
        "first span wins"
    );
    // A span that is its own parent is a broken cycle (a root), not an orphan waiting for a
    // parent that is there.
    let orphans: Vec<u64> = t.orphans().iter().map(|&i| sid_of(&t, i)).collect();
    assert_eq!(orphans, vec![2]);
    assert!(t.roots().contains(&t.find(&6u64.to_be_bytes()).unwrap()));
    // every span is in exactly one tree of the forest
    assert_eq!(t.preorder().len(), t.len());
    let d = t.find(&8u64.to_be_bytes()).unwrap();
    assert_eq!(t.span(d).duration(), 0);
    // the other trace is kept apart when grouping
    let groups = Traces::group(&build(&spans));
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[&TraceId(other)].len(), 1);
    assert_eq!(TraceId::from_hex(&"ab".repeat(16)), Some(TraceId(TRACE_ID)));
    assert_eq!(TraceId::from_hex("xyz"), None);
}

#[test]
fn invalid_ids_are_dropped_with_a_note() {
    let mut rs = build(&shop());
    rs[0].scope_spans[0].spans[0].span_id = vec![1, 2, 3];
    rs[0].scope_spans[0].spans[1].trace_id = vec![];
    rs[1].scope_spans[0].spans[0].parent_span_id = vec![9; 5];
    rs[1].scope_spans[0].spans[1].span_id = vec![0; 8];
    let t = Trace::from_resource_spans(&rs, None);
    assert_eq!(t.notes().invalid_ids, 3);
    assert_eq!(t.notes().invalid_parent_ids, 1);
    assert!(
        t.notes().warnings[0].contains("span id 3 bytes"),
        "{:?}",
        t.notes().warnings
    );
    assert_eq!(t.len(), 6);
}

#[test]
fn absurd_timestamps_and_huge_values_are_tolerated() {
    let mut rs = build(&[s(1, 0, "huge", "svc", 0, 1).attr("big", any_str(&"x".repeat(8 << 20)))]);
    let sp = &mut rs[0].scope_spans[0].spans[0];
    sp.start_time_unix_nano = u64::MAX;
    sp.end_time_unix_nano = 0;
    let t = Trace::from_resource_spans(&rs, None);
    assert_eq!(t.span(0).duration(), 0);
    assert_eq!(
        t.attr_by_name(0, "big").unwrap().as_str().unwrap().len(),
        8 << 20
    );
    assert!(
        t.attr_by_name(0, "big").unwrap().to_string().len() < 300,
        "reports cut huge values"
    );
}

#[test]
fn protobuf_round_trip() {
    let req = ExportTraceServiceRequest {
        resource_spans: build(&shop()),
    };
    let bytes = req.encode_to_vec();
    let t = Trace::decode_protobuf(&bytes, Some(TraceId(TRACE_ID))).unwrap();
    assert_eq!(t.len(), 9);
    let err = Trace::decode_protobuf(&bytes[..bytes.len() - 3], None).unwrap_err();
    assert!(matches!(err, TraceError::Protobuf(_)));
}

#[test]
fn otlp_json_as_the_collector_writes_it() {
    // hex ids, int64 as strings, enums as numbers, JSON lines
    let line = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},"scopeSpans":[{"scope":{"name":"lib"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"","name":"GET /x","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","attributes":[{"key":"http.response.status_code","value":{"intValue":"200"}},{"key":"ratio","value":{"doubleValue":0.5}},{"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"}]}}}],"status":{"code":2,"message":"bad"}}]}]}]}"#;
    let text = format!(
        "{line}\n{}\n",
        line.replace("eee19b7ec3c1b174", "eee19b7ec3c1b175")
            .replace(
                r#""parentSpanId":"""#,
                r#""parentSpanId":"eee19b7ec3c1b174""#
            )
    );
    let t = Trace::from_otlp_json(&text, TraceId::from_hex("5b8efff798038103d269b633813fc60c"))
        .unwrap();
    assert_eq!(t.len(), 2);
    assert!(matches!(
        t.attr_by_name(0, "http.response.status_code"),
        Some(Value::Int(200))
    ));
    assert!(matches!(t.attr_by_name(0, "ratio"), Some(Value::Float(_))));
    assert_eq!(t.span(0).kind, SpanKind::Server);
    assert_eq!(t.span(0).status, StatusCode::Error);
    assert_eq!(t.span(0).duration(), 1_000_000_000);
    assert_eq!(t.children(0), &[1]);
    let err = Trace::from_otlp_json("{\"resourceSpans\": 3}", None).unwrap_err();
    assert!(
        err.to_string().starts_with("invalid OTLP JSON (line 1)"),
        "{err}"
    );
    let err = Trace::from_otlp_json(&format!("{line}\n{{oops\n"), None).unwrap_err();
    assert!(matches!(err, TraceError::Json { line: 2, .. }), "{err:?}");
    assert_eq!(Trace::from_otlp_json("  ", None).unwrap().len(), 0);
}

/// Encodes an attribute value of `depth` kvlists nested in each other, by hand (a struct that
/// deep would overflow the stack when dropped, before any of our code runs).
fn deep_kvlist_request(depth: usize) -> Vec<u8> {
    fn varint(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    fn field(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        varint(body.len(), &mut out);
        out.extend_from_slice(body);
        out
    }
    // innermost AnyValue: intValue 1 (field 3, varint)
    let mut any = vec![0x18, 0x01];
    for _ in 0..depth {
        let mut kv = vec![0x0a, 0x01, b'k'];
        kv.extend(field(0x12, &any));
        let kvl = field(0x0a, &kv);
        any = field(0x32, &kvl);
    }
    let mut attr = vec![0x0a, 0x04];
    attr.extend_from_slice(b"deep");
    attr.extend(field(0x12, &any));
    let mut span = field(0x0a, &[0xab; 16]);
    span.extend(field(0x12, &[1; 8]));
    span.extend(field(0x2a, b"deep span"));
    span.extend(field(0x4a, &attr));
    let scope_spans = field(0x12, &span);
    let resource_spans = field(0x12, &scope_spans);
    field(0x0a, &resource_spans)
}

#[test]
fn deep_kvlists_are_rejected_or_cut_never_overflow() {
    // tolerated: nesting past the value depth limit is cut, not decoded
    let t = Trace::decode_protobuf(&deep_kvlist_request(10_000), None).unwrap();
    let mut v = t.attr_by_name(0, "deep").unwrap();
    let mut depth = 0;
    while let Some(inner) = v.get("k") {
        v = inner;
        depth += 1;
    }
    assert_eq!(
        (depth, v.as_str()),
        (
            tbt_compiler::value::MAX_VALUE_DEPTH,
            Some("<nested too deep>")
        )
    );
    // the prost decoder used for `decode_protobuf()` structs rejects it with its recursion limit
    let err = tbt_compiler::trace::decode_protobuf(&deep_kvlist_request(10_000)).unwrap_err();
    assert!(err.to_string().contains("recursion"), "{err}");
    let t = Trace::decode_protobuf(&deep_kvlist_request(20), None).unwrap();
    let mut v = t.attr_by_name(0, "deep").unwrap();
    let mut depth = 0;
    while let Some(inner) = v.get("k") {
        v = inner;
        depth += 1;
    }
    assert_eq!(
        (depth, v.to_string()),
        (20, "1".to_string()),
        "kept typed all the way down"
    );
    // the JSON decoder has its own recursion limit
    let deep_json = format!(
        "{}{}",
        "{\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":".repeat(10_000),
        "}]}}".repeat(10_000)
    );
    let doc = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"attributes":[{{"key":"d","value":{deep_json}}}]}}]}}]}}]}}"#
    );
    assert!(Trace::from_otlp_json(&doc, None).is_err());
}

#[test]
fn deep_values_built_in_memory_are_cut() {
    // Built on a thread with a large stack: dropping the OTLP struct recurses (prost's code, not ours).
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let mut v = any_int(1);
            for _ in 0..10_000 {
                v = AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![kv("k", v)],
                    })),
                };
            }
            let t = Trace::from_resource_spans(
                &build(&[s(1, 0, "d", "svc", 0, 1).attr("deep", v)]),
                None,
            );
            let mut x = t.attr_by_name(0, "deep").unwrap();
            let mut depth = 0;
            while let Some(inner) = x.get("k") {
                x = inner;
                depth += 1;
            }
            assert_eq!(depth, tbt_compiler::value::MAX_VALUE_DEPTH);
        })
        .unwrap()
        .join()
        .unwrap();
}

/// A comparable rendering of the whole model.
fn dump(t: &Trace) -> Vec<String> {
    (0..t.len() as u32)
        .map(|i| {
            let s = t.span(i);
            let attrs: Vec<String> = s.attributes.iter().map(|(k, v)| format!("{}={v}", t.key_name(*k))).collect();
            let res: Vec<String> = t.resources()[s.resource as usize].attributes.iter().map(|(k, v)| format!("{}={v}", t.key_name(*k))).collect();
            format!(
                "{:?} {:?} {:?} {} {:?} {:?} {:?} {} {} {:?} {:?} ev={:?} links={:?} scope={} parent={:?}",
                s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.status, s.status_message, s.start, s.end,
                attrs, res, s.events.iter().map(|e| (e.time, e.name.to_string(), e.attributes.len())).collect::<Vec<_>>(),
                s.links.iter().map(|l| (l.trace_id, l.span_id)).collect::<Vec<_>>(),
                t.scopes()[s.scope as usize].name, t.parent(i)
            )
        })
        .collect()
}

#[test]
fn wire_reader_matches_the_struct_path() {
    let mut rs = build(&shop());
    rs[1].scope_spans[0].spans[0].events.push(span::Event {
        time_unix_nano: 5,
        name: "e".into(),
        attributes: vec![kv("x", any_int(1))],
        ..Default::default()
    });
    rs[0].scope_spans[0].spans[0].attributes.push(kv(
        "nested",
        AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: vec![kv(
                    "a",
                    AnyValue {
                        value: Some(any_value::Value::ArrayValue(ArrayValue {
                            values: vec![any_bool(true), any_f64(1.5)],
                        })),
                    },
                )],
            })),
        },
    ));
    rs[0].scope_spans[0].spans[1].attributes.push(kv(
        "raw",
        AnyValue {
            value: Some(any_value::Value::BytesValue(vec![1, 2])),
        },
    ));
    rs[0].scope_spans[0].spans[1]
        .attributes
        .push(kv("empty", AnyValue { value: None }));
    let req = ExportTraceServiceRequest { resource_spans: rs };
    let a = Trace::from_export_request(&req, None);
    let b = Trace::decode_protobuf(&req.encode_to_vec(), None).unwrap();
    assert_eq!(dump(&a), dump(&b));
    assert_eq!(a.notes(), b.notes());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::tier::cases(512), ..ProptestConfig::default() })]

    #[test]
    fn wire_reader_agrees_on_mutated_input(flips in proptest::collection::vec((0usize..10_000, proptest::arbitrary::any::<u8>()), 0..4)) {
        let mut bytes = ExportTraceServiceRequest { resource_spans: build(&shop()) }.encode_to_vec();
        for (pos, b) in flips {
            let n = bytes.len();
            bytes[pos % n] = b;
        }
        // Whenever prost accepts the bytes, the direct reader must build the same model.
        // (prost validates UTF-8, so accepted bytes hold valid strings.)
        if let Ok(req) = tbt_compiler::trace::decode_protobuf(&bytes) {
            let a = Trace::from_export_request(&req, None);
            let b = Trace::decode_protobuf(&bytes, None).unwrap();
            prop_assert_eq!(dump(&a), dump(&b));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_protobuf_decoder(bytes in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..512)) {
        let _ = Trace::decode_protobuf(&bytes, None);
    }

    #[test]
    fn mutated_valid_protobuf_never_panics(flips in proptest::collection::vec((0usize..10_000, proptest::arbitrary::any::<u8>()), 1..8)) {
        let mut bytes = ExportTraceServiceRequest { resource_spans: build(&shop()) }.encode_to_vec();
        for (pos, b) in flips {
            let n = bytes.len();
            bytes[pos % n] = b;
        }
        if let Ok(t) = Trace::decode_protobuf(&bytes, None) {
            prop_assert_eq!(t.preorder().len(), t.len());
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_json_decoder(text in ".{0,300}") {
        let _ = Trace::from_otlp_json(&text, None);
    }

    #[test]
    fn mutated_valid_json_never_panics(cut in 0usize..2000, junk in "[{}\\[\\]\",:0-9a-z]{0,6}") {
        let req = ExportTraceServiceRequest { resource_spans: build(&shop()) };
        let json = serde_json::to_string(&req).unwrap();
        let mut cut = cut % json.len();
        while !json.is_char_boundary(cut) { cut -= 1; }
        let text = format!("{}{}{}", &json[..cut], junk, &json[cut..]);
        let _ = Trace::from_otlp_json(&text, None);
    }
}

#[test]
fn orphans_are_adopted_when_their_parent_arrives_later() {
    let spans = shop();
    // children first, the root and the orders server span in a later batch
    let (late, early): (Vec<S>, Vec<S>) = spans.into_iter().partition(|x| x.id == 1 || x.id == 2);
    let mut t = Trace::from_resource_spans(&build(&early), Some(TraceId(TRACE_ID)));
    let orphans: Vec<u64> = t.orphans().iter().map(|&i| sid_of(&t, i)).collect();
    assert_eq!(orphans, vec![3, 4, 5, 7, 8]);
    t.extend(&build(&late));
    assert!(t.orphans().is_empty());
    assert_eq!(
        t.roots().iter().map(|&i| sid_of(&t, i)).collect::<Vec<_>>(),
        vec![1, 9]
    );
    // a span id seen in an earlier batch stays the first one
    t.extend(&build(&[s(5, 2, "late duplicate", "payments", 0, 1)]));
    assert_eq!(t.notes().duplicate_span_ids, 1);
    assert_eq!(
        &*t.span(t.find(&5u64.to_be_bytes()).unwrap()).name,
        "charge card"
    );
    // protobuf batches extend the same way
    let bytes = ExportTraceServiceRequest {
        resource_spans: build(&[s(10, 9, "ack", "shipping", 81, 82)]),
    }
    .encode_to_vec();
    t.extend_protobuf(&bytes).unwrap();
    assert_eq!(t.len(), 10);
    assert_eq!(
        t.parent(t.find(&10u64.to_be_bytes()).unwrap()),
        t.find(&9u64.to_be_bytes())
    );
}

/// A span whose ids were admitted but whose attributes failed to decode is not kept, and its id
/// must not point at the span that takes its place.
#[test]
fn a_span_that_fails_to_decode_leaves_no_stale_id() {
    let mut t = Trace::from_resource_spans(
        &build(&[
            s(1, 0, "root", "gateway", 0, 100),
            s(2, 1, "b", "gateway", 50, 60),
        ]),
        Some(TraceId(TRACE_ID)),
    );
    let mut bad = ExportTraceServiceRequest {
        resource_spans: build(&[s(3, 1, "c", "gateway", 10, 20).attr("k", any_str("XXXX"))]),
    }
    .encode_to_vec();
    // The string value (field 1, bytes) becomes field 3 (an int) with a bytes wire type.
    let at = bad
        .windows(6)
        .position(|w| w == [0x0a, 0x04, b'X', b'X', b'X', b'X'])
        .unwrap();
    bad[at] = 0x1a;
    assert!(t.extend_protobuf(&bad).is_err());
    assert_eq!(t.len(), 2);
    assert_eq!(t.find(&3u64.to_be_bytes()), None);
    // The next span takes the position span 3 was given at admission, and sorts first.
    let good = ExportTraceServiceRequest {
        resource_spans: build(&[s(4, 1, "d", "gateway", 5, 8)]),
    }
    .encode_to_vec();
    t.extend_protobuf(&good).unwrap();
    assert_eq!(t.find(&3u64.to_be_bytes()), None);
    let d = t.find(&4u64.to_be_bytes()).unwrap();
    assert_eq!(&*t.span(d).name, "d");
    assert_eq!(t.parent(d), t.find(&1u64.to_be_bytes()));
    let names: Vec<&str> = (0..t.len() as u32).map(|i| &*t.span(i).name).collect();
    assert_eq!(names, ["root", "d", "b"]);
    for i in 0..t.len() as u32 {
        assert_eq!(t.find(&t.span(i).span_id), Some(i));
    }
}
