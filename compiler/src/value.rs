//! Runtime values of the `.tbt` language.
//!
//! One [`Value`] type is shared by the trace model (span attributes), the evaluator (results of
//! expressions) and reports (actual values in checks). It is cheap to clone: strings, lists and
//! objects sit behind `Arc`, and a selection of spans is a shared sorted index list. OTLP
//! attribute values keep their type: an `intValue` stays an [`Value::Int`], a kvlist becomes an
//! [`Value::Object`], never a string. Nothing here does I/O.

use std::fmt;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};

/// How deep OTLP values (arrays and kvlists inside each other) may nest before the rest is
/// replaced by a marker string. Guards the recursion of conversions, comparisons and `Drop`.
pub const MAX_VALUE_DEPTH: usize = 64;

/// A value computed by an expression or read from a span.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// `null`, also an OTLP `AnyValue` without a value.
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A string.
    Str(Arc<str>),
    /// A duration in nanoseconds.
    Duration(u64),
    /// Raw bytes (OTLP `bytesValue`).
    Bytes(Arc<[u8]>),
    /// A list.
    List(Arc<[Value]>),
    /// An object with keys in insertion order.
    Object(Arc<[(Arc<str>, Value)]>),
    /// A selection of spans of one trace.
    Spans(SpanSet),
}

/// A selection of spans: indices into [`crate::trace::Trace::spans`], strictly increasing.
///
/// Because the trace keeps its spans sorted by start time then span id, increasing indices are
/// also the deterministic report order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanSet(Arc<[u32]>);

impl SpanSet {
    /// The empty selection.
    pub fn empty() -> Self {
        SpanSet(Arc::from(Vec::new()))
    }

    /// A selection from indices that are already strictly increasing.
    pub fn from_sorted(indices: Vec<u32>) -> Self {
        debug_assert!(indices.windows(2).all(|w| w[0] < w[1]));
        SpanSet(Arc::from(indices))
    }

    /// A selection from indices in any order, with duplicates.
    pub fn from_unsorted(mut indices: Vec<u32>) -> Self {
        indices.sort_unstable();
        indices.dedup();
        SpanSet(Arc::from(indices))
    }

    /// The span indices in report order.
    pub fn indices(&self) -> &[u32] {
        &self.0
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing is selected.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when the span with this index is selected.
    pub fn contains(&self, index: u32) -> bool {
        self.0.binary_search(&index).is_ok()
    }
}

impl Value {
    /// A string value.
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    /// The type name used in messages and by the checker: `null bool int float string duration
    /// bytes list object spans`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Duration(_) => "duration",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Object(_) => "object",
            Value::Spans(_) => "spans",
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a float, for ints and floats.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(fields) => fields.iter().find(|(k, _)| &**k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Converts an OTLP attribute value, keeping its type. Nesting deeper than
    /// [`MAX_VALUE_DEPTH`] is replaced by the string `"<nested too deep>"`.
    pub fn from_any_value(v: &AnyValue) -> Value {
        from_any(v, 0, &mut |s: &str| Arc::from(s))
    }

    /// Like [`Value::from_any_value`], with a function that supplies (for example, interns) the
    /// strings.
    pub(crate) fn from_any_with(v: &AnyValue, intern: &mut dyn FnMut(&str) -> Arc<str>) -> Value {
        from_any(v, 0, intern)
    }

    /// Converts a JSON value (a response body, a JSONPath result). Numbers become ints when they
    /// fit, floats otherwise.
    pub fn from_json(j: &serde_json::Value) -> Value {
        from_json_depth(j, 0)
    }

    /// Converts to JSON for `json()` queries and reports. Durations become nanosecond integers,
    /// bytes lowercase hex, spans their count.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
            Value::Str(s) => J::String(s.to_string()),
            Value::Duration(d) => J::from(*d),
            Value::Bytes(b) => J::String(crate::hex::encode(b)),
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect()),
            Value::Object(o) => J::Object(
                o.iter()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
            Value::Spans(s) => J::from(s.len()),
        }
    }
}

fn from_any(v: &AnyValue, depth: usize, intern: &mut dyn FnMut(&str) -> Arc<str>) -> Value {
    use any_value::Value as A;
    if depth >= MAX_VALUE_DEPTH {
        return Value::str("<nested too deep>");
    }
    match &v.value {
        None => Value::Null,
        Some(A::StringValue(s)) => Value::Str(intern(s)),
        Some(A::BoolValue(b)) => Value::Bool(*b),
        Some(A::IntValue(i)) => Value::Int(*i),
        Some(A::DoubleValue(f)) => Value::Float(*f),
        Some(A::BytesValue(b)) => Value::Bytes(Arc::from(b.as_slice())),
        Some(A::ArrayValue(a)) => Value::List(
            a.values
                .iter()
                .map(|x| from_any(x, depth + 1, intern))
                .collect(),
        ),
        Some(A::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv
                        .value
                        .as_ref()
                        .map_or(Value::Null, |x| from_any(x, depth + 1, intern));
                    (intern(&kv.key), v)
                })
                .collect(),
        ),
        // Profiling-only dictionary reference: meaningless outside the profiles signal.
        Some(A::StringValueStrindex(_)) => Value::Null,
    }
}

fn from_json_depth(j: &serde_json::Value, depth: usize) -> Value {
    use serde_json::Value as J;
    if depth >= MAX_VALUE_DEPTH {
        return Value::str("<nested too deep>");
    }
    match j {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::str(s),
        J::Array(a) => Value::List(a.iter().map(|x| from_json_depth(x, depth + 1)).collect()),
        J::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (Arc::from(k.as_str()), from_json_depth(v, depth + 1)))
                .collect(),
        ),
    }
}

impl From<&serde_json::Value> for Value {
    fn from(j: &serde_json::Value) -> Value {
        Value::from_json(j)
    }
}

impl From<&Value> for serde_json::Value {
    fn from(v: &Value) -> serde_json::Value {
        v.to_json()
    }
}

impl From<&AnyValue> for Value {
    fn from(v: &AnyValue) -> Value {
        Value::from_any_value(v)
    }
}

impl PartialEq for Value {
    /// Structural equality; ints and floats compare by numeric value.
    fn eq(&self, other: &Value) -> bool {
        self.equals(other).unwrap_or(false)
    }
}

impl Value {
    /// Equality with numeric mixing (ints and floats compare by numeric value): `None` when the
    /// types cannot be compared. `null` compares (unequal) with anything; inside lists and
    /// objects, elements of types that cannot be compared are unequal. The evaluator's `==`
    /// turns `None` into a type error.
    pub fn equals(&self, other: &Value) -> Option<bool> {
        equals_depth(self, other, 0)
    }
}

fn equals_depth(a: &Value, b: &Value, depth: usize) -> Option<bool> {
    use Value as V;
    if depth > MAX_VALUE_DEPTH {
        return Some(false);
    }
    Some(match (a, b) {
        (V::Null, V::Null) => true,
        (V::Null, _) | (_, V::Null) => false,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Int(x), V::Int(y)) => x == y,
        (V::Int(_) | V::Float(_), V::Int(_) | V::Float(_)) => {
            a.as_f64().unwrap_or(f64::NAN) == b.as_f64().unwrap_or(f64::NAN)
        }
        (V::Str(x), V::Str(y)) => x == y,
        (V::Duration(x), V::Duration(y)) => x == y,
        (V::Bytes(x), V::Bytes(y)) => x == y,
        (V::List(x), V::List(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| equals_depth(p, q, depth + 1).unwrap_or(false))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .any(|(k2, v2)| k == k2 && equals_depth(v, v2, depth + 1).unwrap_or(false))
                })
        }
        (V::Spans(x), V::Spans(y)) => x == y,
        _ => return None,
    })
}

/// Formats nanoseconds the way duration literals are written: `250ms`, `1.5s`, `12us`, `7ns`.
pub fn format_duration(nanos: u64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    for (size, unit) in UNITS {
        if nanos >= size || size == 1 {
            if nanos.is_multiple_of(size) {
                return format!("{}{unit}", nanos / size);
            }
            let v = nanos as f64 / size as f64;
            let s = format!("{v:.3}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            return format!("{s}{unit}");
        }
    }
    format!("{nanos}ns")
}

impl fmt::Display for Value {
    /// The value as it would be written in `.tbt` source (strings quoted, durations with units).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => {
                if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
                    write!(f, "{x:.1}")
                } else {
                    write!(f, "{x}")
                }
            }
            Value::Str(s) => {
                if s.len() > 200 {
                    let mut end = 200;
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    write!(f, "{:?}… ({} bytes)", &s[..end], s.len())
                } else {
                    write!(f, "{:?}", &**s)
                }
            }
            Value::Duration(d) => f.write_str(&format_duration(*d)),
            Value::Bytes(b) => write!(f, "0x{}", crate::hex::encode(&b[..b.len().min(64)])),
            Value::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Object(o) => {
                f.write_str("{")?;
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{:?}: {v}", &**k)?;
                }
                f.write_str("}")
            }
            Value::Spans(s) => {
                write!(f, "{} span{}", s.len(), if s.len() == 1 { "" } else { "s" })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValue, KeyValueList};

    fn any(v: any_value::Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    #[test]
    fn otlp_values_keep_their_types() {
        use any_value::Value as A;
        let kv = any(A::KvlistValue(KeyValueList {
            values: vec![
                KeyValue {
                    key: "n".into(),
                    value: Some(any(A::IntValue(3))),
                    ..Default::default()
                },
                KeyValue {
                    key: "l".into(),
                    value: Some(any(A::ArrayValue(ArrayValue {
                        values: vec![any(A::DoubleValue(1.5)), any(A::BoolValue(true))],
                    }))),
                    ..Default::default()
                },
                KeyValue {
                    key: "b".into(),
                    value: Some(any(A::BytesValue(vec![1, 255]))),
                    ..Default::default()
                },
            ],
        }));
        let v = Value::from_any_value(&kv);
        assert_eq!(v.type_name(), "object");
        assert!(matches!(v.get("n"), Some(Value::Int(3))));
        assert_eq!(v.get("l").map(Value::type_name), Some("list"));
        assert_eq!(
            v.get("b").map(|b| b.to_string()),
            Some("0x01ff".to_string())
        );
        assert_eq!(v.to_string(), r#"{"n": 3, "l": [1.5, true], "b": 0x01ff}"#);
    }

    #[test]
    fn json_round_trip() {
        let j: serde_json::Value = serde_json::json!({"a": [1, 2.5, "x", null, {"b": false}]});
        assert_eq!(Value::from_json(&j).to_json(), j);
    }

    #[test]
    fn durations_format_like_literals() {
        assert_eq!(format_duration(250_000_000), "250ms");
        assert_eq!(format_duration(1_500_000_000), "1.5s");
        assert_eq!(format_duration(7), "7ns");
        assert_eq!(format_duration(0), "0ns");
        assert_eq!(format_duration(120_000_000_000), "2m");
    }

    #[test]
    fn deep_nesting_is_cut() {
        let mut v = AnyValue {
            value: Some(any_value::Value::IntValue(1)),
        };
        for _ in 0..200 {
            v = any(any_value::Value::ArrayValue(ArrayValue { values: vec![v] }));
        }
        let mut x = &Value::from_any_value(&v);
        let mut depth = 0;
        while let Value::List(l) = x {
            x = &l[0];
            depth += 1;
        }
        assert_eq!(depth, MAX_VALUE_DEPTH);
        assert_eq!(x.as_str(), Some("<nested too deep>"));
    }
}
