//! A direct reader of OTLP trace protobuf into the [`Trace`] model.
//!
//! Decoding into `prost` structs first costs one allocation per string and per attribute, and as
//! much again to free them; this reader walks the wire format and only allocates what the model
//! keeps (interned strings are shared). It reads exactly the fields of `opentelemetry.proto.trace.v1`
//! the model uses and skips the rest, in any order, as protobuf requires. Nested attribute values
//! deeper than [`MAX_VALUE_DEPTH`] are cut (not decoded), so hostile nesting cannot recurse far.
//! Invalid UTF-8 in strings is replaced (U+FFFD) rather than rejected: the model is tolerant.

use std::borrow::Cow;
use std::sync::Arc;

use super::{Event, KeyId, Link, SpanKind, SpanRecord, Trace, TraceError, intern_str};
use crate::value::{MAX_VALUE_DEPTH, Value};

type R<T> = Result<T, TraceError>;

#[cold]
#[inline(never)]
fn bad(what: &str) -> TraceError {
    TraceError::Protobuf(what.to_string())
}

/// A cursor over one message's bytes.
struct Msg<'b> {
    buf: &'b [u8],
    pos: usize,
}

/// One field: number and payload.
enum Val<'b> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Bytes(&'b [u8]),
}

impl<'b> Msg<'b> {
    fn new(buf: &'b [u8]) -> Self {
        Msg { buf, pos: 0 }
    }

    /// A varint. Tags and most lengths fit one byte, so that case is kept inline and the
    /// general loop is out of line.
    #[inline(always)]
    fn varint(&mut self) -> R<u64> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(b as u64)
            }
            _ => self.varint_slow(),
        }
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> R<u64> {
        let mut out = 0u64;
        let mut shift = 0u32;
        while shift < 70 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(bad("truncated varint"));
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(bad("varint overflows 64 bits"));
            }
            out |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(out);
            }
            shift += 7;
        }
        Err(bad("varint too long"))
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> R<&'b [u8]> {
        // `pos <= len` always holds, so `len - pos` cannot underflow.
        if n > self.buf.len() - self.pos {
            return Err(bad("truncated field"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next field, or `None` at the end of the message.
    #[inline(always)]
    fn next(&mut self) -> R<Option<(u32, Val<'b>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = (key >> 3) as u32;
        if field == 0 || key >> 3 > u32::MAX as u64 {
            return Err(bad("invalid field number"));
        }
        let v = match key & 7 {
            0 => Val::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Val::Fixed64(u64::from_le_bytes(
                    b.try_into().map_err(|_| bad("truncated fixed64"))?,
                ))
            }
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| bad("length too large"))?;
                Val::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Val::Fixed32
            }
            // A (deprecated) group: skipped like any unknown field, as prost does.
            3 => {
                self.skip_group(field, 0)?;
                Val::Fixed32
            }
            wt => {
                return Err(TraceError::Protobuf(format!(
                    "unexpected wire type {wt} (field {field})"
                )));
            }
        };
        Ok(Some((field, v)))
    }

    /// Skips to the end-group tag of `field`, through nested groups (depth-limited).
    fn skip_group(&mut self, field: u32, depth: usize) -> R<()> {
        if depth > 100 {
            return Err(bad("groups nested too deeply"));
        }
        loop {
            if self.pos >= self.buf.len() {
                return Err(bad("unterminated group"));
            }
            let key = self.varint()?;
            let f = key >> 3;
            match key & 7 {
                0 => {
                    self.varint()?;
                }
                1 => {
                    self.take(8)?;
                }
                2 => {
                    let n = usize::try_from(self.varint()?).map_err(|_| bad("length too large"))?;
                    self.take(n)?;
                }
                5 => {
                    self.take(4)?;
                }
                3 => self.skip_group(
                    u32::try_from(f).map_err(|_| bad("invalid field number"))?,
                    depth + 1,
                )?,
                4 if f == field as u64 => return Ok(()),
                _ => return Err(bad("mismatched end of group")),
            }
        }
    }
}

fn text(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

fn bytes_of<'b>(field: &str, v: Val<'b>) -> R<&'b [u8]> {
    match v {
        Val::Bytes(b) => Ok(b),
        _ => Err(TraceError::Protobuf(format!("wrong wire type for {field}"))),
    }
}

fn varint_of(field: &str, v: Val<'_>) -> R<u64> {
    match v {
        Val::Varint(x) => Ok(x),
        _ => Err(TraceError::Protobuf(format!("wrong wire type for {field}"))),
    }
}

fn fixed64_of(field: &str, v: Val<'_>) -> R<u64> {
    match v {
        Val::Fixed64(x) => Ok(x),
        _ => Err(TraceError::Protobuf(format!("wrong wire type for {field}"))),
    }
}

/// Decodes an `ExportTraceServiceRequest` (or `TracesData`) into `t` without rebuilding indexes.
pub(crate) fn decode_into(t: &mut Trace, bytes: &[u8]) -> R<()> {
    let mut m = Msg::new(bytes);
    while let Some((f, v)) = m.next()? {
        if f == 1 {
            resource_spans(t, bytes_of("resource_spans", v)?)?;
        }
    }
    Ok(())
}

fn resource_spans(t: &mut Trace, b: &[u8]) -> R<()> {
    // The resource may come after the scope spans on the wire: find it first.
    let mut attrs: Vec<(KeyId, Value)> = Vec::new();
    let mut m = Msg::new(b);
    while let Some((f, v)) = m.next()? {
        if f == 1 {
            let mut r = Msg::new(bytes_of("resource", v)?);
            while let Some((f, v)) = r.next()? {
                if f == 1 {
                    key_value(t, bytes_of("attribute", v)?, &mut attrs)?;
                }
            }
        }
    }
    let resource = t.push_resource(attrs.into_boxed_slice());
    let mut used = false;
    let mut m = Msg::new(b);
    while let Some((f, v)) = m.next()? {
        if f == 2 {
            used |= scope_spans(t, bytes_of("scope_spans", v)?, resource)?;
        }
    }
    if !used {
        t.drop_unused_resource(resource);
    }
    Ok(())
}

fn scope_spans(t: &mut Trace, b: &[u8], resource: u32) -> R<bool> {
    let (mut name, mut version) = (Cow::Borrowed(""), Cow::Borrowed(""));
    let mut m = Msg::new(b);
    while let Some((f, v)) = m.next()? {
        if f == 1 {
            let mut s = Msg::new(bytes_of("scope", v)?);
            while let Some((f, v)) = s.next()? {
                match f {
                    1 => name = text(bytes_of("scope.name", v)?),
                    2 => version = text(bytes_of("scope.version", v)?),
                    _ => {}
                }
            }
        }
    }
    let scope = t.push_scope(&name, &version);
    let mut used = false;
    let mut m = Msg::new(b);
    let mut scratch = Scratch::default();
    while let Some((f, v)) = m.next()? {
        if f == 2 {
            used |= span(t, bytes_of("span", v)?, resource, scope, &mut scratch)?;
        }
    }
    Ok(used)
}

/// Buffers reused from span to span.
#[derive(Default)]
struct Scratch<'b> {
    attrs: Vec<(KeyId, Value)>,
    attr_fields: Vec<&'b [u8]>,
    event_fields: Vec<&'b [u8]>,
    link_fields: Vec<&'b [u8]>,
    status_fields: Vec<&'b [u8]>,
    /// The key seen last at each attribute position: spans of one scope repeat their keys in the
    /// same order, so most keys are recognised by one comparison instead of a hash lookup.
    keys: Vec<(&'b [u8], KeyId)>,
}

fn span<'b>(
    t: &mut Trace,
    b: &'b [u8],
    resource: u32,
    scope: u32,
    scratch: &mut Scratch<'b>,
) -> R<bool> {
    let (mut trace_id, mut span_id, mut parent): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
    let mut name: &[u8] = &[];
    let (mut kind, mut start, mut end) = (0i32, 0u64, 0u64);
    scratch.status_fields.clear();
    scratch.attr_fields.clear();
    scratch.event_fields.clear();
    scratch.link_fields.clear();
    // One pass over the fields; attributes, events and links are decoded after the ids were
    // admitted, so dropped spans cost no attribute decoding.
    let mut m = Msg::new(b);
    while let Some((f, v)) = m.next()? {
        match f {
            9 => scratch.attr_fields.push(bytes_of("attribute", v)?),
            11 => scratch.event_fields.push(bytes_of("event", v)?),
            13 => scratch.link_fields.push(bytes_of("link", v)?),
            1 => trace_id = bytes_of("trace_id", v)?,
            2 => span_id = bytes_of("span_id", v)?,
            4 => parent = bytes_of("parent_span_id", v)?,
            5 => name = bytes_of("name", v)?,
            6 => kind = varint_of("kind", v)? as i32,
            7 => start = fixed64_of("start_time_unix_nano", v)?,
            8 => end = fixed64_of("end_time_unix_nano", v)?,
            15 => scratch.status_fields.push(bytes_of("status", v)?),
            _ => {}
        }
    }
    let name = text(name);
    let Some((trace_id, span_id)) = t.admit(trace_id, span_id, &name) else {
        return Ok(false);
    };
    let parent_span_id = t.parent_of(&span_id, parent);
    let (mut code, mut message) = (0i32, Cow::Borrowed(""));
    // A message field that occurs twice is merged, as protobuf says (and prost does).
    for &status in &scratch.status_fields {
        let mut s = Msg::new(status);
        while let Some((f, v)) = s.next()? {
            match f {
                2 => message = text(bytes_of("status.message", v)?),
                3 => code = varint_of("status.code", v)? as i32,
                _ => {}
            }
        }
    }
    let (status, status_message) = Trace::status_of(code, &message);
    scratch.attrs.clear();
    for (pos, &a) in scratch.attr_fields.iter().enumerate() {
        let (key, value) = key_value_fields(a)?;
        let k = match scratch.keys.get(pos) {
            Some(&(cached, id)) if cached == key => id,
            _ => {
                let id = t.intern_key_pub(&text(key));
                if pos < scratch.keys.len() {
                    scratch.keys[pos] = (key, id);
                } else {
                    scratch.keys.push((key, id));
                }
                id
            }
        };
        let v = match value {
            Some(v) => any_value(t.strings_mut(), v, 0)?,
            None => Value::Null,
        };
        scratch.attrs.push((k, v));
    }
    let mut events = Vec::with_capacity(scratch.event_fields.len());
    for &e in &scratch.event_fields {
        events.push(event(t, e)?);
    }
    let mut links = Vec::with_capacity(scratch.link_fields.len());
    for &l in &scratch.link_fields {
        if let Some(l) = link(t, &span_id, l)? {
            links.push(l);
        }
    }
    let name = t.intern(&name);
    t.push_record(SpanRecord {
        trace_id,
        span_id,
        parent_span_id,
        name,
        kind: SpanKind::from_otlp(kind),
        status,
        status_message,
        start,
        end,
        attributes: scratch.attrs.drain(..).collect(),
        events: events.into_boxed_slice(),
        links: links.into_boxed_slice(),
        resource,
        scope,
    });
    Ok(true)
}

fn event(t: &mut Trace, b: &[u8]) -> R<Event> {
    let (mut time, mut name) = (0u64, Cow::Borrowed(""));
    let mut attrs = Vec::new();
    let mut m = Msg::new(b);
    while let Some((f, v)) = m.next()? {
        match f {
            1 => time = fixed64_of("event.time_unix_nano", v)?,
            2 => name = text(bytes_of("event.name", v)?),
            3 => key_value(t, bytes_of("event attribute", v)?, &mut attrs)?,
            _ => {}
        }
    }
    Ok(Event {
        time,
        name: t.intern(&name),
        attributes: attrs.into_boxed_slice(),
    })
}

fn link(t: &mut Trace, owner: &[u8; 8], b: &[u8]) -> R<Option<Link>> {
    let (mut trace_id, mut span_id): (&[u8], &[u8]) = (&[], &[]);
    let mut attrs = Vec::new();
    let mut m = Msg::new(b);
    while let Some((f, v)) = m.next()? {
        match f {
            1 => trace_id = bytes_of("link.trace_id", v)?,
            2 => span_id = bytes_of("link.span_id", v)?,
            4 => key_value(t, bytes_of("link attribute", v)?, &mut attrs)?,
            _ => {}
        }
    }
    Ok(t.link_of(owner, trace_id, span_id)
        .map(|(trace_id, span_id)| Link {
            trace_id,
            span_id,
            attributes: attrs.into_boxed_slice(),
        }))
}

/// The key and value bytes of a `KeyValue`.
fn key_value_fields(b: &[u8]) -> R<(&[u8], Option<&[u8]>)> {
    let (mut key, mut value): (&[u8], Option<&[u8]>) = (&[], None);
    let mut m = Msg::new(b);
    while let Some((f, v)) = m.next()? {
        match f {
            1 => key = bytes_of("key", v)?,
            2 => value = Some(bytes_of("value", v)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn key_value(t: &mut Trace, b: &[u8], out: &mut Vec<(KeyId, Value)>) -> R<()> {
    let (key, value) = key_value_fields(b)?;
    let k = t.intern_key_pub(&text(key));
    let v = match value {
        Some(v) => any_value(t.strings_mut(), v, 0)?,
        None => Value::Null,
    };
    out.push((k, v));
    Ok(())
}

type Strings = std::collections::HashSet<Arc<str>, super::FxBuild>;

fn any_value(strings: &mut Strings, b: &[u8], depth: usize) -> R<Value> {
    if depth >= MAX_VALUE_DEPTH {
        return Ok(Value::str("<nested too deep>"));
    }
    let mut out = Value::Null;
    let mut m = Msg::new(b);
    while let Some((f, v)) = m.next()? {
        out = match (f, v) {
            (1, Val::Bytes(s)) => Value::Str(intern_str(strings, &text(s))),
            (2, Val::Varint(x)) => Value::Bool(x != 0),
            (3, Val::Varint(x)) => Value::Int(x as i64),
            (4, Val::Fixed64(x)) => Value::Float(f64::from_bits(x)),
            (5, Val::Bytes(arr)) => {
                // A repeated oneof message of the same kind merges (its values append).
                let mut items: Vec<Value> = match &out {
                    Value::List(l) => l.to_vec(),
                    _ => Vec::new(),
                };
                let mut a = Msg::new(arr);
                while let Some((f, v)) = a.next()? {
                    if f == 1 {
                        items.push(any_value(strings, bytes_of("array value", v)?, depth + 1)?);
                    }
                }
                Value::List(items.into())
            }
            (6, Val::Bytes(kvl)) => {
                let mut fields: Vec<(Arc<str>, Value)> = match &out {
                    Value::Object(o) => o.to_vec(),
                    _ => Vec::new(),
                };
                let mut a = Msg::new(kvl);
                while let Some((f, v)) = a.next()? {
                    if f != 1 {
                        continue;
                    }
                    let (mut key, mut val): (&[u8], Option<&[u8]>) = (&[], None);
                    let mut kv = Msg::new(bytes_of("kvlist entry", v)?);
                    while let Some((f, v)) = kv.next()? {
                        match f {
                            1 => key = bytes_of("key", v)?,
                            2 => val = Some(bytes_of("value", v)?),
                            _ => {}
                        }
                    }
                    let k = intern_str(strings, &text(key));
                    let v = match val {
                        Some(v) => any_value(strings, v, depth + 1)?,
                        None => Value::Null,
                    };
                    fields.push((k, v));
                }
                Value::Object(fields.into())
            }
            (7, Val::Bytes(x)) => Value::Bytes(x.into()),
            (1..=7, _) => return Err(bad("wrong wire type in an attribute value")),
            _ => out,
        };
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut m = Msg::new(&[0xac, 0x02]);
        assert_eq!(m.varint().ok(), Some(300));
        let mut m = Msg::new(&[0xff; 11]);
        assert!(m.varint().is_err());
        let mut m = Msg::new(&[0x80]);
        assert!(m.varint().is_err());
        let mut m = Msg::new(&[0x0b]); // field 1, wire type 3 (group)
        assert!(m.next().is_err());
    }
}
