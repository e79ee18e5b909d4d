//! Triggers: fire one request at the system under test with a fresh W3C trace context.
//!
//! Why it exists: a test's trace starts here. The scheduler evaluates a step's `trigger`
//! expressions into a plain [`TriggerSpec`], makes a [`TraceContext`], and calls
//! [`Triggers::fire`] (or [`fire`]). The answer, a [`TriggerOutcome`], is what `expect response`
//! and captures read; [`trigger_span_for`] turns the attempt into the runner's own root span.
//!
//! What it must not do: evaluate `.tbt` expressions, wait for traces, or print anything. It never
//! panics on bad input or a misbehaving server, never runs a program through a shell, and never
//! puts header or metadata *values* (they may hold tokens) into an error message.
//!
//! One file per kind: `http.rs` (reqwest, rustls), `grpc.rs` (tonic with messages built at run
//! time from `.proto` files), `exec.rs` (a child process in its own process group).

mod context;
mod exec;
mod grpc;
mod http;

pub use context::{AttrValue, SpanStatus, TraceContext, trigger_span};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

/// Most bytes kept of a response body, or of a program's stdout or stderr.
pub const MAX_CAPTURE: usize = 16 * 1024 * 1024;

/// What to fire: built by the scheduler from a step's `trigger` after evaluating its expressions.
#[derive(Clone, Debug, PartialEq)]
pub enum TriggerSpec {
    /// `trigger http METHOD "url" { … }`
    Http(HttpSpec),
    /// `trigger grpc "pkg.Service/Method" at "…" { … }`
    Grpc(GrpcSpec),
    /// `trigger exec "cmd" [args] { … }`
    Exec(ExecSpec),
}

impl TriggerSpec {
    /// Which kind of trigger this is.
    pub fn kind(&self) -> TriggerKind {
        match self {
            TriggerSpec::Http(_) => TriggerKind::Http,
            TriggerSpec::Grpc(_) => TriggerKind::Grpc,
            TriggerSpec::Exec(_) => TriggerKind::Exec,
        }
    }

    /// How long the trigger may take at most.
    pub fn timeout(&self) -> Duration {
        match self {
            TriggerSpec::Http(s) => s.timeout,
            TriggerSpec::Grpc(s) => s.timeout,
            TriggerSpec::Exec(s) => s.timeout,
        }
    }
}

/// The kinds of trigger that send something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerKind {
    /// An HTTP request.
    Http,
    /// A unary gRPC call.
    Grpc,
    /// A child process.
    Exec,
}

impl fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TriggerKind::Http => "http",
            TriggerKind::Grpc => "grpc",
            TriggerKind::Exec => "exec",
        })
    }
}

/// An HTTP request.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpSpec {
    /// `GET`, `POST`, … (any token; case as written is upper-cased).
    pub method: String,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    /// Request headers in order; `traceparent`/`tracestate` are always ours (set last).
    pub headers: Vec<(String, String)>,
    /// Query parameters appended to the URL's own, percent-encoded.
    pub query: Vec<(String, String)>,
    /// The request body, if any.
    pub body: Option<HttpBody>,
    /// From sending to the last byte of the response.
    pub timeout: Duration,
    /// Accept any server certificate (self-signed test servers).
    pub insecure: bool,
    /// A PEM file with extra root certificates to trust.
    pub ca_cert: Option<PathBuf>,
    /// Follow up to [`MAX_REDIRECTS`] redirects; otherwise a 3xx is the response.
    pub follow_redirects: bool,
}

/// The most redirects a `follow_redirects` request follows before it fails.
pub const MAX_REDIRECTS: usize = 10;

/// An HTTP request body.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpBody {
    /// Sent as JSON with `content-type: application/json` unless a header says otherwise.
    Json(serde_json::Value),
    /// Sent as is.
    Raw(String),
}

/// A unary gRPC call whose messages are described by `.proto` files read at run time.
#[derive(Clone, Debug, PartialEq)]
pub struct GrpcSpec {
    /// `pkg.Service/Method`.
    pub method: String,
    /// `http://host:port` or `https://host:port`.
    pub address: String,
    /// The `.proto` files that define the service (their imports are found via `import_paths`).
    pub proto_files: Vec<PathBuf>,
    /// Where imports are looked up; empty means the directories of `proto_files`.
    pub import_paths: Vec<PathBuf>,
    /// The request message in the protobuf JSON mapping.
    pub message: serde_json::Value,
    /// Request metadata (ASCII values); `traceparent`/`tracestate` are always ours.
    pub metadata: Vec<(String, String)>,
    /// From connecting to the response.
    pub timeout: Duration,
}

/// A program to run, never through a shell.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecSpec {
    /// A path, or a name looked up on `PATH`.
    pub program: String,
    /// Arguments, one per element, passed as they are.
    pub args: Vec<String>,
    /// Added to the runner's environment; `TRACEPARENT`/`TRACESTATE` are always ours.
    pub env: Vec<(String, String)>,
    /// Working directory; the runner's when `None`.
    pub cwd: Option<PathBuf>,
    /// Written to the program's standard input, which is then closed; empty input when `None`.
    pub stdin: Option<String>,
    /// After this the whole process group is killed.
    pub timeout: Duration,
}

/// What came back from a trigger.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerOutcome {
    /// When the trigger started (wall clock, for the trigger span).
    pub started: SystemTime,
    /// How long it took until the whole answer was read.
    pub duration: Duration,
    /// The answer, by kind.
    pub response: Response,
}

/// The answer of a trigger, by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// An HTTP response.
    Http(HttpResponse),
    /// A gRPC response or error status.
    Grpc(GrpcResponse),
    /// A finished program.
    Exec(ExecOutput),
}

/// An HTTP response, body read completely.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers in order, names lower-case; repeated headers appear repeatedly.
    pub headers: Vec<(String, String)>,
    /// The body as received (after content decoding).
    pub body: Bytes,
    /// The body as text (invalid UTF-8 replaced).
    pub text: String,
}

/// A gRPC answer: a message for status 0, otherwise the error status and its message.
#[derive(Clone, Debug, PartialEq)]
pub struct GrpcResponse {
    /// The gRPC status code (0 OK, 5 NOT_FOUND, …).
    pub status: i32,
    /// The status message the server sent (empty for OK).
    pub status_message: String,
    /// The response message in the protobuf JSON mapping (default fields included); `null` when
    /// the call failed.
    pub message: serde_json::Value,
    /// Response headers and trailers, names lower-case; binary values base64 as sent.
    pub metadata: Vec<(String, String)>,
}

/// A program that ran to its end.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecOutput {
    /// The exit code; `None` when a signal ended the program.
    pub exit_code: Option<i32>,
    /// The signal that ended the program, if one did.
    pub signal: Option<i32>,
    /// Standard output as text (invalid UTF-8 replaced), at most [`MAX_CAPTURE`] bytes.
    pub stdout: String,
    /// Standard error as text, at most [`MAX_CAPTURE`] bytes.
    pub stderr: String,
    /// True when stdout or stderr was longer than [`MAX_CAPTURE`] and was cut.
    pub truncated: bool,
}

impl TriggerOutcome {
    /// Which kind of trigger answered.
    pub fn kind(&self) -> TriggerKind {
        match self.response {
            Response::Http(_) => TriggerKind::Http,
            Response::Grpc(_) => TriggerKind::Grpc,
            Response::Exec(_) => TriggerKind::Exec,
        }
    }

    /// `status`: the HTTP status or the gRPC code; `None` for exec (see [`Self::exit_code`]).
    pub fn status(&self) -> Option<i64> {
        match &self.response {
            Response::Http(r) => Some(i64::from(r.status)),
            Response::Grpc(r) => Some(i64::from(r.status)),
            Response::Exec(_) => None,
        }
    }

    /// `exit_code` of an exec trigger.
    pub fn exit_code(&self) -> Option<i32> {
        match &self.response {
            Response::Exec(r) => r.exit_code,
            _ => None,
        }
    }

    /// `header("k")` / `metadata("k")`: the first value of a header or metadata key, any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        let list = match &self.response {
            Response::Http(r) => &r.headers,
            Response::Grpc(r) => &r.metadata,
            Response::Exec(_) => return None,
        };
        list.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `body` of HTTP, `stdout` of exec, the message of gRPC as JSON text.
    pub fn body_text(&self) -> String {
        match &self.response {
            Response::Http(r) => r.text.clone(),
            Response::Grpc(r) => r.message.to_string(),
            Response::Exec(r) => r.stdout.clone(),
        }
    }

    /// The document `json("$.p")` reads: the HTTP body or exec stdout parsed as JSON, or the gRPC
    /// response message. `Err` says why the text is not JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        let text = match &self.response {
            Response::Grpc(r) => return Ok(r.message.clone()),
            Response::Http(r) => &r.text,
            Response::Exec(r) => &r.stdout,
        };
        serde_json::from_str(text).map_err(|e| format!("the response is not JSON: {e}"))
    }
}

/// Why a trigger could not get an answer. Messages are for users: no stack traces, no header values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TriggerError {
    /// The URL or address could not be used.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP method is not a valid token.
    InvalidMethod {
        /// The method as given.
        method: String,
    },
    /// A header or metadata name or value cannot be sent. The value is never shown.
    InvalidHeader {
        /// The header or metadata key.
        name: String,
    },
    /// Nothing listens at the address.
    ConnectionRefused {
        /// `host:port`.
        address: String,
    },
    /// Connecting failed otherwise (DNS, unreachable network, reset).
    Connect {
        /// `host:port`.
        address: String,
        /// The underlying reason.
        reason: String,
    },
    /// The TLS handshake or certificate check failed, or the CA file is unusable.
    Tls {
        /// `host:port` or the CA file.
        address: String,
        /// The underlying reason.
        reason: String,
    },
    /// No complete answer within the spec's timeout.
    TimedOut {
        /// The timeout that expired.
        after: Duration,
        /// What was waited for: `http://host:port`, `pkg.Service/Method`, a program.
        target: String,
    },
    /// The server answered something that is not valid HTTP or gRPC.
    Protocol {
        /// `host:port`.
        address: String,
        /// What was wrong.
        reason: String,
    },
    /// The response body or output was larger than [`MAX_CAPTURE`].
    TooLarge {
        /// `host:port`.
        address: String,
    },
    /// The `.proto` files did not compile.
    Proto {
        /// The files, as given.
        files: String,
        /// The compiler's message.
        reason: String,
    },
    /// The method is not in the `.proto` files (or is streaming, which is not supported).
    UnknownMethod {
        /// `pkg.Service/Method`.
        method: String,
        /// What is wrong, with the methods that do exist when useful.
        reason: String,
    },
    /// The JSON message does not fit the request type (unknown field, wrong type).
    InvalidMessage {
        /// `pkg.Service/Method`.
        method: String,
        /// The request message type.
        message_type: String,
        /// The decoder's message, which names the field.
        reason: String,
    },
    /// The program does not exist (or is not on `PATH`).
    ProgramNotFound {
        /// The program as given.
        program: String,
    },
    /// The program could not be started otherwise (permissions, bad working directory, I/O).
    Spawn {
        /// The program as given.
        program: String,
        /// The underlying reason.
        reason: String,
    },
    /// Any other failure while sending or receiving.
    Other {
        /// What was being done.
        target: String,
        /// The underlying reason.
        reason: String,
    },
}

impl fmt::Display for TriggerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TriggerError::InvalidUrl { url, reason } => write!(f, "invalid URL `{url}`: {reason}"),
            TriggerError::InvalidMethod { method } => {
                write!(f, "invalid HTTP method `{method}`")
            }
            TriggerError::InvalidHeader { name } => write!(
                f,
                "header `{name}` cannot be sent: its name or value has characters not allowed in a header"
            ),
            TriggerError::ConnectionRefused { address } => {
                write!(f, "connection refused to {address}: is the server running?")
            }
            TriggerError::Connect { address, reason } => {
                write!(f, "could not connect to {address}: {reason}")
            }
            TriggerError::Tls { address, reason } => {
                write!(f, "TLS error with {address}: {reason}")
            }
            TriggerError::TimedOut { after, target } => {
                write!(f, "{target} timed out after {}", format_duration(*after))
            }
            TriggerError::Protocol { address, reason } => {
                write!(f, "{address} answered with an invalid response: {reason}")
            }
            TriggerError::TooLarge { address } => write!(
                f,
                "the response from {address} is larger than {} MiB",
                MAX_CAPTURE / (1024 * 1024)
            ),
            TriggerError::Proto { files, reason } => {
                write!(f, "could not compile {files}: {reason}")
            }
            TriggerError::UnknownMethod { method, reason } => {
                write!(f, "unknown gRPC method `{method}`: {reason}")
            }
            TriggerError::InvalidMessage {
                method,
                message_type,
                reason,
            } => write!(
                f,
                "the message for `{method}` does not fit `{message_type}`: {reason}"
            ),
            TriggerError::ProgramNotFound { program } => {
                write!(f, "program `{program}` not found")
            }
            TriggerError::Spawn { program, reason } => {
                write!(f, "could not start `{program}`: {reason}")
            }
            TriggerError::Other { target, reason } => write!(f, "{target}: {reason}"),
        }
    }
}

impl std::error::Error for TriggerError {}

/// What a transport error's chain of sources says, beyond its outer message.
pub(crate) enum Cause {
    /// Nothing listens at the address.
    Refused,
    /// TLS failed; the rustls message.
    Tls(String),
    /// A client-side deadline expired.
    Timeout,
    /// Something else; the innermost message.
    Other(String),
}

/// Walks `e`'s sources. rustls errors travel inside (nested) `io::Error`s, whose `source()`
/// skips the error they wrap, so those are descended with `get_ref`.
pub(crate) fn find_cause(e: &(dyn std::error::Error + 'static)) -> Cause {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut innermost = e.to_string();
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Cause::Tls(tls.to_string());
        }
        if err.downcast_ref::<tonic::TimeoutExpired>().is_some() {
            return Cause::Timeout;
        }
        innermost = err.to_string();
        current = match err.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Cause::Refused;
            }
            Some(io) if io.get_ref().is_some() => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            _ => err.source(),
        };
    }
    Cause::Other(innermost)
}

/// `1.5s`, `250ms`, `2m` — how durations are written in `.tbt` files.
fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        format!("{}µs", d.as_micros())
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms > 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

/// Fires triggers, keeping what is worth reusing within a run: HTTP clients (connection pools)
/// and compiled `.proto` descriptor pools. Cheap to clone; share one per run.
#[derive(Clone, Default)]
pub struct Triggers {
    http: Arc<http::Clients>,
    grpc: Arc<grpc::Protos>,
}

impl Triggers {
    /// An empty set of caches.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires `spec` with `ctx`'s `traceparent`/`tracestate` and waits for the whole answer, at
    /// most the spec's timeout. Dropping the future cancels the trigger (and kills an exec's
    /// process group).
    pub async fn fire(
        &self,
        spec: &TriggerSpec,
        ctx: &TraceContext,
    ) -> Result<TriggerOutcome, TriggerError> {
        match spec {
            TriggerSpec::Http(spec) => http::fire(&self.http, spec, ctx).await,
            TriggerSpec::Grpc(spec) => grpc::fire(&self.grpc, spec, ctx).await,
            TriggerSpec::Exec(spec) => exec::fire(spec, ctx).await,
        }
    }
}

/// A fired trigger: its result and the runner's root span for it, ready for the trace store.
#[derive(Clone, Debug)]
pub struct Fired {
    /// The answer, or why there is none.
    pub result: Result<TriggerOutcome, TriggerError>,
    /// The trigger span ([`trigger_span_for`]), timed around the whole attempt.
    pub span: ExportTraceServiceRequest,
}

impl Triggers {
    /// [`Triggers::fire`], also building the trigger span from the wall-clock times around the
    /// attempt — also when it failed, so a refused connection still leaves a root span.
    pub async fn fire_traced(&self, spec: &TriggerSpec, ctx: &TraceContext) -> Fired {
        let start = SystemTime::now();
        let result = self.fire(spec, ctx).await;
        let end = match &result {
            Ok(outcome) => outcome.started + outcome.duration,
            Err(_) => SystemTime::now(),
        };
        let start = match &result {
            Ok(outcome) => outcome.started,
            Err(_) => start,
        };
        let span = trigger_span_for(spec, ctx, &result, start, end);
        Fired { result, span }
    }
}

/// [`Triggers::fire`] with process-wide caches.
pub async fn fire(spec: &TriggerSpec, ctx: &TraceContext) -> Result<TriggerOutcome, TriggerError> {
    static SHARED: OnceLock<Triggers> = OnceLock::new();
    SHARED.get_or_init(Triggers::new).fire(spec, ctx).await
}

/// The trigger span's name: `GET` for HTTP (semconv: the method), `pkg.Service/Method` for gRPC,
/// the program's file name for exec.
pub fn span_name(spec: &TriggerSpec) -> String {
    match spec {
        TriggerSpec::Http(s) => s.method.to_ascii_uppercase(),
        TriggerSpec::Grpc(s) => s.method.clone(),
        TriggerSpec::Exec(s) => program_name(&s.program),
    }
}

fn program_name(program: &str) -> String {
    std::path::Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.to_owned())
}

/// Semantic-convention attributes of a trigger span: what was sent and, when there is one, what
/// came back. HTTP: `http.request.method`, `url.full`, `server.address`, `server.port`,
/// `http.response.status_code`; gRPC: `rpc.system.name`, `rpc.method`, `server.*`,
/// `rpc.response.status_code` (the code's name, `NOT_FOUND`, as current semconv has it); exec:
/// `process.executable.name`, `process.exit.code`; on failure `error.type`. `url.full` loses any user name and password; header values are never recorded.
pub fn span_attributes(
    spec: &TriggerSpec,
    result: &Result<TriggerOutcome, TriggerError>,
) -> Vec<(String, AttrValue)> {
    let mut attrs: Vec<(String, AttrValue)> = Vec::new();
    let mut put = |k: &str, v: AttrValue| attrs.push((k.to_owned(), v));
    match spec {
        TriggerSpec::Http(s) => {
            put("http.request.method", s.method.to_ascii_uppercase().into());
            put("url.full", http::redacted_url(&s.url).into());
            server_attributes(&s.url, &mut put);
            if let Ok(TriggerOutcome {
                response: Response::Http(r),
                ..
            }) = result
            {
                put("http.response.status_code", i64::from(r.status).into());
            }
        }
        TriggerSpec::Grpc(s) => {
            put("rpc.system.name", "grpc".into());
            put("rpc.method", s.method.clone().into());
            server_attributes(&s.address, &mut put);
            if let Ok(TriggerOutcome {
                response: Response::Grpc(r),
                ..
            }) = result
            {
                put("rpc.response.status_code", grpc_code_name(r.status).into());
            }
        }
        TriggerSpec::Exec(s) => {
            put("process.executable.name", program_name(&s.program).into());
            if let Ok(TriggerOutcome {
                response: Response::Exec(r),
                ..
            }) = result
                && let Some(code) = r.exit_code
            {
                put("process.exit.code", i64::from(code).into());
            }
        }
    }
    if let Err(e) = result {
        put("error.type", error_type(e).into());
    }
    attrs
}

/// `server.address` and `server.port` of an `http(s)://host:port` URL, when it parses.
fn server_attributes(url: &str, put: &mut impl FnMut(&str, AttrValue)) {
    if let Ok(url) = reqwest::Url::parse(url)
        && let Some(host) = url.host_str()
    {
        put("server.address", host.into());
        if let Some(port) = url.port_or_known_default() {
            put("server.port", i64::from(port).into());
        }
    }
}

/// The name semconv's `rpc.response.status_code` uses for a gRPC status code.
fn grpc_code_name(code: i32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| code.to_string(), |name| (*name).to_owned())
}

fn error_type(e: &TriggerError) -> &'static str {
    match e {
        TriggerError::InvalidUrl { .. } => "invalid_url",
        TriggerError::InvalidMethod { .. } => "invalid_method",
        TriggerError::InvalidHeader { .. } => "invalid_header",
        TriggerError::ConnectionRefused { .. } => "connection_refused",
        TriggerError::Connect { .. } => "connect",
        TriggerError::Tls { .. } => "tls",
        TriggerError::TimedOut { .. } => "timeout",
        TriggerError::Protocol { .. } => "protocol",
        TriggerError::TooLarge { .. } => "too_large",
        TriggerError::Proto { .. } => "proto",
        TriggerError::UnknownMethod { .. } => "unknown_method",
        TriggerError::InvalidMessage { .. } => "invalid_message",
        TriggerError::ProgramNotFound { .. } => "program_not_found",
        TriggerError::Spawn { .. } => "spawn",
        TriggerError::Other { .. } => "_OTHER",
    }
}

/// The runner's root span for one fired trigger: [`trigger_span`] with [`span_name`],
/// [`span_attributes`], and status error when the trigger failed. `end` is when the answer was
/// complete (or the error happened).
pub fn trigger_span_for(
    spec: &TriggerSpec,
    ctx: &TraceContext,
    result: &Result<TriggerOutcome, TriggerError>,
    start: SystemTime,
    end: SystemTime,
) -> ExportTraceServiceRequest {
    let status = match result {
        Ok(_) => SpanStatus::Ok,
        Err(e) => SpanStatus::Error(e.to_string()),
    };
    trigger_span(
        ctx,
        &span_name(spec),
        start,
        end,
        span_attributes(spec, result),
        &status,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_have_semconv_names() {
        assert_eq!(grpc_code_name(0), "OK");
        assert_eq!(grpc_code_name(5), "NOT_FOUND");
        assert_eq!(grpc_code_name(16), "UNAUTHENTICATED");
        assert_eq!(grpc_code_name(42), "42");
    }

    #[test]
    fn durations_read_like_tbt() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn failed_http_trigger_span_has_semconv_attributes_and_error_status() {
        let spec = TriggerSpec::Http(HttpSpec {
            method: "post".into(),
            url: "http://user:pw@localhost:1/orders?x=1".into(),
            headers: vec![("authorization".into(), "Bearer secret".into())],
            query: vec![],
            body: None,
            timeout: Duration::from_secs(1),
            insecure: false,
            ca_cert: None,
            follow_redirects: false,
        });
        let ctx = TraceContext::new();
        let result = Err(TriggerError::ConnectionRefused {
            address: "localhost:1".into(),
        });
        let now = SystemTime::now();
        let req = trigger_span_for(&spec, &ctx, &result, now, now);
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.name, "POST");
        let keys: Vec<&str> = span.attributes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "http.request.method",
                "url.full",
                "server.address",
                "server.port",
                "error.type"
            ]
        );
        let text = format!("{:?}", span.attributes);
        assert!(text.contains("http://localhost:1/orders?x=1"), "{text}");
        assert!(!text.contains("pw") && !text.contains("secret"), "{text}");
        let status = span.status.as_ref().expect("status");
        assert_eq!(
            status.message,
            "connection refused to localhost:1: is the server running?"
        );
    }

    #[test]
    fn exec_span_records_exit_code() {
        let spec = TriggerSpec::Exec(ExecSpec {
            program: "/usr/bin/env".into(),
            args: vec![],
            env: vec![],
            cwd: None,
            stdin: None,
            timeout: Duration::from_secs(1),
        });
        let result = Ok(TriggerOutcome {
            started: SystemTime::now(),
            duration: Duration::from_millis(3),
            response: Response::Exec(ExecOutput {
                exit_code: Some(3),
                signal: None,
                stdout: String::new(),
                stderr: String::new(),
                truncated: false,
            }),
        });
        let attrs = span_attributes(&spec, &result);
        assert_eq!(
            attrs,
            vec![
                ("process.executable.name".to_owned(), AttrValue::from("env")),
                ("process.exit.code".to_owned(), AttrValue::Int(3)),
            ]
        );
    }
}
