//! The names the language defines itself: functions, span fields, response and trace fields,
//! aggregates, trigger kinds and their options, service directives.
//!
//! One table each, used by the checker (arity, types, "did you mean"), the documentation test
//! (every function is documented) and the language server (completion, hover, signature help).

/// The static type of a value, as the checker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// Not known until run time (attributes without registry type, `env`, JSON values).
    Any,
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool,
    /// 64-bit integer.
    Int,
    /// 64-bit float.
    Float,
    /// Text.
    Str,
    /// A length of time.
    Duration,
    /// A list.
    List,
    /// A JSON-like object.
    Object,
    /// A selection of spans.
    Spans,
    /// A span kind constant (`server`, `client`, …).
    SpanKind,
    /// A span status constant (`ok`, `error`, `unset`).
    SpanStatus,
    /// A previous error; suppresses follow-up diagnostics.
    Error,
}

impl Ty {
    /// The name used in messages and in `docs/language.md`.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Any => "any",
            Ty::Null => "null",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Float => "float",
            Ty::Str => "string",
            Ty::Duration => "duration",
            Ty::List => "list",
            Ty::Object => "object",
            Ty::Spans => "spans",
            Ty::SpanKind => "span kind",
            Ty::SpanStatus => "span status",
            Ty::Error => "{error}",
        }
    }

    /// True for `int` and `float`.
    pub fn is_number(self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }

    /// True when the type says nothing (unknown, or a previous error).
    pub fn is_open(self) -> bool {
        matches!(self, Ty::Any | Ty::Error)
    }

    /// From a registry value type (`string`, `int`, `float`, `bool`, `list`, `any`).
    pub fn from_semconv(t: &str) -> Ty {
        match t {
            "string" => Ty::Str,
            "int" => Ty::Int,
            "float" => Ty::Float,
            "bool" => Ty::Bool,
            "list" => Ty::List,
            _ => Ty::Any,
        }
    }
}

/// Where a function may be called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FnContext {
    /// Anywhere an expression is allowed.
    Any,
    /// Only inside an expectation block over spans (aggregates).
    Aggregate,
    /// Only on a response (`expect response { … }`) or in a span predicate with an explicit input.
    Response,
}

/// A built-in function.
#[derive(Clone, Copy, Debug)]
pub struct Function {
    /// Its name.
    pub name: &'static str,
    /// Parameter names, for signature help.
    pub params: &'static [&'static str],
    /// Minimum number of arguments.
    pub min_args: usize,
    /// Maximum number of arguments.
    pub max_args: usize,
    /// Result type.
    pub returns: Ty,
    /// Where it may be called.
    pub context: FnContext,
    /// One sentence of documentation.
    pub doc: &'static str,
    /// An example, shown on hover and tested in the docs.
    pub example: &'static str,
}

macro_rules! f {
    ($name:literal, [$($p:literal),*], $min:literal..=$max:literal, $ret:ident, $ctx:ident, $doc:literal, $ex:literal) => {
        Function { name: $name, params: &[$($p),*], min_args: $min, max_args: $max, returns: Ty::$ret, context: FnContext::$ctx, doc: $doc, example: $ex }
    };
}

/// Every built-in function.
pub const FUNCTIONS: &[Function] = &[
    f!(
        "env",
        ["name"],
        1..=1,
        Any,
        Any,
        "The environment variable `name` of the `tbt` process, or missing (use `??` for a default).",
        "env(\"SHOP_URL\") ?? \"http://127.0.0.1:8080\""
    ),
    f!(
        "uuid",
        [],
        0..=0,
        Str,
        Any,
        "A fresh random UUID (v4) as a string.",
        "header \"idempotency-key\" = uuid()"
    ),
    f!(
        "now",
        [],
        0..=0,
        Int,
        Any,
        "The current time in nanoseconds since the Unix epoch.",
        "let started = now()"
    ),
    f!(
        "json",
        ["input", "path"],
        1..=2,
        Any,
        Any,
        "The value at an RFC 9535 JSONPath: one argument reads the response body (or exec stdout); two arguments read the JSON text of `input`.",
        "json(\"$.id\")"
    ),
    f!(
        "header",
        ["name"],
        1..=1,
        Any,
        Response,
        "An HTTP response header (case-insensitive), or missing.",
        "header(\"content-type\") contains \"json\""
    ),
    f!(
        "metadata",
        ["key"],
        1..=1,
        Any,
        Response,
        "A gRPC response metadata value, or missing.",
        "metadata(\"x-request-id\") != null"
    ),
    f!(
        "attr",
        ["key"],
        1..=1,
        Any,
        Any,
        "The span (then resource) attribute `key`, also for keys that are not identifiers.",
        "attr(\"http.request.header.x-id\") == [\"1\"]"
    ),
    f!(
        "len",
        ["value"],
        1..=1,
        Int,
        Any,
        "Length of a string (characters), list or object.",
        "len(links) == 1"
    ),
    f!(
        "int",
        ["value"],
        1..=1,
        Int,
        Any,
        "Converts a number or numeric string to an integer.",
        "int(json(\"$.qty\")) == 2"
    ),
    f!(
        "float",
        ["value"],
        1..=1,
        Float,
        Any,
        "Converts a number or numeric string to a float.",
        "float(payment.amount) > 0.5"
    ),
    f!(
        "string",
        ["value"],
        1..=1,
        Str,
        Any,
        "Converts a value to its string form.",
        "string(http.response.status_code) == \"200\""
    ),
    f!(
        "lower",
        ["text"],
        1..=1,
        Str,
        Any,
        "Lower-cases a string.",
        "lower(http.request.method) == \"post\""
    ),
    f!(
        "upper",
        ["text"],
        1..=1,
        Str,
        Any,
        "Upper-cases a string.",
        "upper(name) contains \"GET\""
    ),
    f!(
        "regex_group",
        ["text", "regex", "group"],
        2..=3,
        Any,
        Any,
        "The capture group `group` (default 1) of the first match of `regex` in `text`, or missing.",
        "regex_group(url.full, \"/orders/([0-9]+)\") == \"42\""
    ),
    f!(
        "sum",
        ["value"],
        1..=1,
        Any,
        Aggregate,
        "Sum of `value` over the selected spans.",
        "sum(db.response.returned_rows) < 100"
    ),
    f!(
        "min",
        ["value"],
        1..=1,
        Any,
        Aggregate,
        "Smallest `value` over the selected spans.",
        "min(duration) > 1ms"
    ),
    f!(
        "max",
        ["value"],
        1..=1,
        Any,
        Aggregate,
        "Largest `value` over the selected spans.",
        "max(duration) < 300ms"
    ),
    f!(
        "avg",
        ["value"],
        1..=1,
        Any,
        Aggregate,
        "Mean of `value` over the selected spans.",
        "avg(duration) < 50ms"
    ),
];

/// The function of this name.
pub fn function(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// A built-in field with its type and documentation.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The name as written.
    pub name: &'static str,
    /// Its type.
    pub ty: Ty,
    /// One sentence of documentation.
    pub doc: &'static str,
}

macro_rules! field {
    ($name:literal, $ty:ident, $doc:literal) => {
        Field {
            name: $name,
            ty: Ty::$ty,
            doc: $doc,
        }
    };
}

/// Fields every span has, usable in predicates.
pub const SPAN_FIELDS: &[Field] = &[
    field!("name", Str, "The span name."),
    field!(
        "kind",
        SpanKind,
        "`server`, `client`, `producer`, `consumer` or `internal`."
    ),
    field!("status", SpanStatus, "`ok`, `error` or `unset`."),
    field!("status_message", Str, "The status description."),
    field!("duration", Duration, "End time minus start time."),
    field!(
        "start",
        Int,
        "Start time, nanoseconds since the Unix epoch."
    ),
    field!("end", Int, "End time, nanoseconds since the Unix epoch."),
    field!("service", Str, "The `service.name` resource attribute."),
    field!("trace_id", Str, "The trace id, 32 hex digits."),
    field!("span_id", Str, "The span id, 16 hex digits."),
    field!("parent_id", Str, "The parent span id, or null for a root."),
    field!(
        "events",
        List,
        "The span's events as objects `{name, time, attributes}`."
    ),
    field!(
        "links",
        List,
        "The span's links as objects `{trace_id, span_id, attributes}`."
    ),
    field!("scope.name", Str, "The instrumentation scope name."),
];

/// Fields of `expect response { … }` (which exist depends on the trigger kind).
pub const RESPONSE_FIELDS: &[Field] = &[
    field!(
        "status",
        Int,
        "HTTP status code, or gRPC status code (0 is OK)."
    ),
    field!(
        "headers",
        Object,
        "HTTP response headers, lower-case names."
    ),
    field!(
        "body",
        Str,
        "The response body as text (gRPC: the message as JSON)."
    ),
    field!(
        "duration",
        Duration,
        "Time from sending the request to the end of the response."
    ),
    field!(
        "exit_code",
        Int,
        "The exit code of an `exec` trigger's process."
    ),
    field!(
        "stdout",
        Str,
        "Standard output of an `exec` trigger's process."
    ),
    field!(
        "stderr",
        Str,
        "Standard error of an `exec` trigger's process."
    ),
];

/// Fields of `expect trace { … }`.
pub const TRACE_FIELDS: &[Field] = &[
    field!(
        "duration",
        Duration,
        "From the earliest span start to the latest span end."
    ),
    field!("span_count", Int, "Number of spans in the trace."),
    field!(
        "services",
        List,
        "Names of the services with spans in the trace, sorted."
    ),
    field!("errors", Int, "Number of spans with status `error`."),
];

/// Aggregates usable as bare names inside an expectation block over spans.
pub const AGGREGATE_FIELDS: &[Field] = &[field!(
    "count",
    Int,
    "Number of spans selected (in the group, with `by`)."
)];

/// Span kind constants.
pub const SPAN_KINDS: &[&str] = &["server", "client", "producer", "consumer", "internal"];
/// Span status constants.
pub const SPAN_STATUSES: &[&str] = &["ok", "error", "unset"];

/// Pseudo-classes and whether they take an argument.
pub const PSEUDO_CLASSES: &[(&str, Option<Ty>)] = &[
    ("first", None),
    ("last", None),
    ("root", None),
    ("nth", Some(Ty::Int)),
    ("not", Some(Ty::Spans)),
    ("has", Some(Ty::Spans)),
];

/// Directives allowed in a `service` block.
pub const SERVICE_DIRECTIVES: &[&str] = &["run", "env", "cwd", "ready", "stop", "otlp"];

/// The protocols `otlp "…"` in a `service` block accepts: the values of the SDKs'
/// `OTEL_EXPORTER_OTLP_PROTOCOL`, each sent to the receiver's listener for it.
pub const OTLP_PROTOCOLS: &[&str] = &["grpc", "http/protobuf", "http/json"];

/// Readiness probes of `ready`.
pub const READY_PROBES: &[&str] = &["http", "tcp", "log"];

/// HTTP methods accepted by `trigger http`.
pub const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The closest candidate to `name` by edit distance, if close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|&(d, c)| d <= limit && d < c.chars().count())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}
