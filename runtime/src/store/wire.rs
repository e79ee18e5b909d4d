//! Zero-copy reading of an encoded `ExportTraceServiceRequest`: validates it against the OTLP trace
//! schema and splits it into per-trace `ResourceSpans` encodings by copying byte slices.
//!
//! Why it exists: decoding a request into prost structs allocates every attribute key and string
//! value (~25 allocations for a span with 10 attributes) only for the store to encode them again.
//! Walking the wire format instead costs a fraction of that and is what makes the ingest target
//! reachable. The validation is schema-aware and as strict as prost's decoder on the messages of
//! the trace schema (wire types of known fields, UTF-8 of strings, lengths, nesting depth), so a
//! request accepted here always decodes later; unknown fields are skipped, as prost does.
//!
//! What it must not do: allocate per attribute, or accept anything prost would reject (a stored
//! chunk that fails to decode at snapshot time would lose spans silently).

use std::ops::Range;

/// Why an encoded request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for WireError {}

type Result<T> = std::result::Result<T, WireError>;

/// prost's recursion limit for nested messages.
const MAX_DEPTH: u32 = 100;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(WireError("truncated varint"));
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(WireError("varint overflow"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError("varint overflow"))
    }

    fn key(&mut self) -> Result<(u32, u8)> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(WireError("invalid key"));
        }
        let wire = (key & 7) as u8;
        let field = (key >> 3) as u32;
        if field == 0 {
            return Err(WireError("invalid field number 0"));
        }
        Ok((field, wire))
    }

    fn take(&mut self, n: usize) -> Result<Range<usize>> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(WireError("truncated message"))?;
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }

    fn len_delimited(&mut self) -> Result<Range<usize>> {
        let len = usize::try_from(self.varint()?).map_err(|_| WireError("length overflow"))?;
        self.take(len)
    }

    fn skip(&mut self, wire: u8) -> Result<()> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.len_delimited().map(drop),
            FIXED32 => self.take(4).map(drop),
            // Groups are deprecated and never used by OTLP; prost would skip them, we refuse.
            _ => Err(WireError("unsupported wire type")),
        }
    }
}

/// The expected encoding of a known field.
#[derive(Clone, Copy)]
enum Kind {
    Varint,
    Fixed64,
    Fixed32,
    Bytes,
    Str,
    Msg(fn(&[u8], u32) -> Result<()>),
}

impl Kind {
    fn wire(self) -> u8 {
        match self {
            Kind::Varint => VARINT,
            Kind::Fixed64 => FIXED64,
            Kind::Fixed32 => FIXED32,
            Kind::Bytes | Kind::Str | Kind::Msg(_) => LEN,
        }
    }
}

/// Walks one message, validating known fields by `schema` and calling `visit` with each known
/// length-delimited or 64-bit field's range (relative to `buf`).
fn walk(
    buf: &[u8],
    depth: u32,
    schema: fn(u32) -> Option<Kind>,
    mut visit: impl FnMut(u32, Range<usize>),
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(WireError("recursion limit reached"));
    }
    let mut reader = Reader::new(buf);
    while !reader.done() {
        let (field, wire) = reader.key()?;
        let Some(kind) = schema(field) else {
            reader.skip(wire)?;
            continue;
        };
        if wire != kind.wire() {
            return Err(WireError("invalid wire type"));
        }
        match kind {
            Kind::Varint => {
                reader.varint()?;
            }
            Kind::Fixed64 => {
                let range = reader.take(8)?;
                visit(field, range);
            }
            Kind::Fixed32 => {
                reader.take(4)?;
            }
            Kind::Bytes => {
                let range = reader.len_delimited()?;
                visit(field, range);
            }
            Kind::Str => {
                let range = reader.len_delimited()?;
                if std::str::from_utf8(&buf[range.clone()]).is_err() {
                    return Err(WireError("invalid UTF-8 in a string"));
                }
                visit(field, range);
            }
            Kind::Msg(validate) => {
                let range = reader.len_delimited()?;
                validate(&buf[range.clone()], depth + 1)?;
                visit(field, range);
            }
        }
    }
    Ok(())
}

fn key_value(buf: &[u8], depth: u32) -> Result<()> {
    walk(
        buf,
        depth,
        |field| match field {
            1 => Some(Kind::Str),
            2 => Some(Kind::Msg(any_value)),
            3 => Some(Kind::Varint),
            _ => None,
        },
        |_, _| {},
    )
}

fn any_value(buf: &[u8], depth: u32) -> Result<()> {
    walk(
        buf,
        depth,
        |field| match field {
            1 => Some(Kind::Str),
            2 | 3 | 8 => Some(Kind::Varint),
            4 => Some(Kind::Fixed64),
            5 => Some(Kind::Msg(array_value)),
            6 => Some(Kind::Msg(key_value_list)),
            7 => Some(Kind::Bytes),
            _ => None,
        },
        |_, _| {},
    )
}

fn array_value(buf: &[u8], depth: u32) -> Result<()> {
    walk(
        buf,
        depth,
        |field| (field == 1).then_some(Kind::Msg(any_value)),
        |_, _| {},
    )
}

fn key_value_list(buf: &[u8], depth: u32) -> Result<()> {
    walk(
        buf,
        depth,
        |field| (field == 1).then_some(Kind::Msg(key_value)),
        |_, _| {},
    )
}

fn entity_ref(buf: &[u8], depth: u32) -> Result<()> {
    walk(
        buf,
        depth,
        |field| (1..=4).contains(&field).then_some(Kind::Str),
        |_, _| {},
    )
}

fn resource(buf: &[u8], depth: u32) -> Result<()> {
    walk(
        buf,
        depth,
        |field| match field {
            1 => Some(Kind::Msg(key_value)),
            2 => Some(Kind::Varint),
            3 => Some(Kind::Msg(entity_ref)),
            _ => None,
        },
        |_, _| {},
    )
}

fn scope(buf: &[u8], depth: u32) -> Result<()> {
    walk(
        buf,
        depth,
        |field| match field {
            1 | 2 => Some(Kind::Str),
            3 => Some(Kind::Msg(key_value)),
            4 => Some(Kind::Varint),
            _ => None,
        },
        |_, _| {},
    )
}

fn event(buf: &[u8], depth: u32) -> Result<()> {
    walk(
        buf,
        depth,
        |field| match field {
            1 => Some(Kind::Fixed64),
            2 => Some(Kind::Str),
            3 => Some(Kind::Msg(key_value)),
            4 => Some(Kind::Varint),
            _ => None,
        },
        |_, _| {},
    )
}

fn link(buf: &[u8], depth: u32) -> Result<()> {
    walk(
        buf,
        depth,
        |field| match field {
            1 | 2 => Some(Kind::Bytes),
            3 => Some(Kind::Str),
            4 => Some(Kind::Msg(key_value)),
            5 => Some(Kind::Varint),
            6 => Some(Kind::Fixed32),
            _ => None,
        },
        |_, _| {},
    )
}

fn status(buf: &[u8], depth: u32) -> Result<()> {
    walk(
        buf,
        depth,
        |field| match field {
            2 => Some(Kind::Str),
            3 => Some(Kind::Varint),
            _ => None,
        },
        |_, _| {},
    )
}

fn span_schema(field: u32) -> Option<Kind> {
    match field {
        1 | 2 | 4 => Some(Kind::Bytes),
        3 | 5 => Some(Kind::Str),
        6 | 10 | 12 | 14 => Some(Kind::Varint),
        7 | 8 => Some(Kind::Fixed64),
        9 => Some(Kind::Msg(key_value)),
        11 => Some(Kind::Msg(event)),
        13 => Some(Kind::Msg(link)),
        15 => Some(Kind::Msg(status)),
        16 => Some(Kind::Fixed32),
        _ => None,
    }
}

/// One span of a request: where it is and its ids (the last occurrence wins, as in prost).
#[derive(Clone, Debug)]
pub(crate) struct SpanRef {
    /// The span's encoding, relative to the whole request.
    pub(crate) bytes: Range<usize>,
    /// The trace id bytes, relative to the whole request (empty if absent).
    pub(crate) trace_id: Range<usize>,
    /// The span id bytes, relative to the whole request (empty if absent).
    pub(crate) span_id: Range<usize>,
    /// The span name, relative to the whole request (for rejection messages).
    pub(crate) name: Range<usize>,
    /// `end_time_unix_nano` (0 if absent).
    pub(crate) end: u64,
}

/// A scope and its spans.
#[derive(Clone, Debug, Default)]
pub(crate) struct ScopeRef {
    /// The `InstrumentationScope` encoding, if present.
    pub(crate) scope: Option<Range<usize>>,
    /// The scope's schema URL string bytes (empty if absent).
    pub(crate) schema_url: Range<usize>,
    pub(crate) spans: Vec<SpanRef>,
}

/// A resource and its scopes.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResourceRef {
    /// The `Resource` encoding, if present.
    pub(crate) resource: Option<Range<usize>>,
    /// The resource's schema URL string bytes (empty if absent).
    pub(crate) schema_url: Range<usize>,
    pub(crate) scopes: Vec<ScopeRef>,
}

fn offset(range: Range<usize>, by: usize) -> Range<usize> {
    range.start + by..range.end + by
}

/// Validates an encoded `ExportTraceServiceRequest` and returns the positions of its parts.
pub(crate) fn split_request(buf: &[u8]) -> Result<Vec<ResourceRef>> {
    let mut resources = Vec::new();
    let mut error = None;
    walk(
        buf,
        0,
        |field| {
            (field == 1).then_some(Kind::Msg(|_, _| Ok(()))) // validated below, with positions
        },
        |_, range| {
            if error.is_none() {
                match resource_spans(buf, range) {
                    Ok(resource) => resources.push(resource),
                    Err(e) => error = Some(e),
                }
            }
        },
    )?;
    match error {
        Some(error) => Err(error),
        None => Ok(resources),
    }
}

fn resource_spans(whole: &[u8], at: Range<usize>) -> Result<ResourceRef> {
    let buf = &whole[at.clone()];
    let base = at.start;
    let mut out = ResourceRef {
        schema_url: base..base,
        ..ResourceRef::default()
    };
    let mut scope_ranges = Vec::new();
    walk(
        buf,
        1,
        |field| match field {
            1 => Some(Kind::Msg(resource)),
            2 => Some(Kind::Msg(|_, _| Ok(()))),
            3 => Some(Kind::Str),
            _ => None,
        },
        |field, range| match field {
            // Repeated occurrences of a singular message merge in prost; OTLP exporters never send
            // them. Keep the last, like the scalar fields.
            1 => out.resource = Some(offset(range, base)),
            2 => scope_ranges.push(offset(range, base)),
            _ => out.schema_url = offset(range, base),
        },
    )?;
    for range in scope_ranges {
        out.scopes.push(scope_spans(whole, range)?);
    }
    Ok(out)
}

fn scope_spans(whole: &[u8], at: Range<usize>) -> Result<ScopeRef> {
    let buf = &whole[at.clone()];
    let base = at.start;
    let mut out = ScopeRef {
        schema_url: base..base,
        ..ScopeRef::default()
    };
    let mut span_ranges = Vec::new();
    walk(
        buf,
        2,
        |field| match field {
            1 => Some(Kind::Msg(scope)),
            2 => Some(Kind::Msg(|_, _| Ok(()))),
            3 => Some(Kind::Str),
            _ => None,
        },
        |field, range| match field {
            1 => out.scope = Some(offset(range, base)),
            2 => span_ranges.push(offset(range, base)),
            _ => out.schema_url = offset(range, base),
        },
    )?;
    for range in span_ranges {
        let base = range.start;
        let mut span = SpanRef {
            bytes: range.clone(),
            trace_id: base..base,
            span_id: base..base,
            name: base..base,
            end: 0,
        };
        let bytes = &whole[range.clone()];
        walk(bytes, 3, span_schema, |field, range| match field {
            1 => span.trace_id = offset(range, base),
            2 => span.span_id = offset(range, base),
            5 => span.name = offset(range, base),
            8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&bytes[range]);
                span.end = u64::from_le_bytes(b);
            }
            _ => {}
        })?;
        out.spans.push(span);
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_len_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field) << 3 | u64::from(LEN));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn len_field_size(field: u32, len: usize) -> usize {
    varint_len(u64::from(field) << 3 | u64::from(LEN)) + varint_len(len as u64) + len
}

/// Encodes a `ResourceSpans` holding `resource` and the given scopes, each with the given spans,
/// copying the parts from `whole`.
pub(crate) fn encode_resource_spans(
    whole: &[u8],
    resource: &ResourceRef,
    scopes: &[(&ScopeRef, Vec<&SpanRef>)],
) -> Vec<u8> {
    let scope_len = |scope: &ScopeRef, spans: &[&SpanRef]| {
        scope
            .scope
            .as_ref()
            .map_or(0, |r| len_field_size(1, r.len()))
            + spans
                .iter()
                .map(|s| len_field_size(2, s.bytes.len()))
                .sum::<usize>()
            + if scope.schema_url.is_empty() {
                0
            } else {
                len_field_size(3, scope.schema_url.len())
            }
    };
    let mut total = resource
        .resource
        .as_ref()
        .map_or(0, |r| len_field_size(1, r.len()));
    for (scope, spans) in scopes {
        total += len_field_size(2, scope_len(scope, spans));
    }
    if !resource.schema_url.is_empty() {
        total += len_field_size(3, resource.schema_url.len());
    }
    let mut out = Vec::with_capacity(total);
    if let Some(r) = &resource.resource {
        put_len_field(&mut out, 1, &whole[r.clone()]);
    }
    for (scope, spans) in scopes {
        put_varint(&mut out, 2 << 3 | u64::from(LEN));
        put_varint(&mut out, scope_len(scope, spans) as u64);
        if let Some(r) = &scope.scope {
            put_len_field(&mut out, 1, &whole[r.clone()]);
        }
        for span in spans {
            put_len_field(&mut out, 2, &whole[span.bytes.clone()]);
        }
        if !scope.schema_url.is_empty() {
            put_len_field(&mut out, 3, &whole[scope.schema_url.clone()]);
        }
    }
    if !resource.schema_url.is_empty() {
        put_len_field(&mut out, 3, &whole[resource.schema_url.clone()]);
    }
    debug_assert_eq!(out.len(), total);
    out
}
