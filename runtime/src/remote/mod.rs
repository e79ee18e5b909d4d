//! Remote trace sources: Jaeger (query API v3 over HTTP or gRPC) and Grafana Tempo.
//!
//! The system under test exports its spans to a tracing backend while the run goes on; these
//! sources ask the backend for one trace by id, polling with exponential backoff (50 ms doubling
//! to 1 s, jittered, reset whenever the span count changes) and show each view to the step's
//! [`Judge`] until it is satisfied or the deadline passes:
//!
//! - the view's arrival time is when a poll first saw the span count change (a change is only
//!   noticed at the next poll), so quiet windows are measured as the embedded receiver's are,
//!   plus up to one poll interval; an instant the judge asks to be woken at bounds the next poll;
//! - at the deadline the follow ends timed out with what was seen (possibly nothing, when the
//!   backend kept answering "not found");
//! - a backend that fails (5xx, an unreadable body, a refused connection, no answer within the
//!   per-request timeout) is retried until the deadline; if the last attempt failed and no span was
//!   ever seen, the wait returns `Err` naming the backend URL and the last error (an
//!   infrastructure error for the run).
//!
//! Authentication headers come from `TBT_TRACES_HEADERS` (`Name=value,Name=value`, e.g.
//! `Authorization=Bearer abc,X-Scope-OrgID=tenant1`) and from the caller. Header values never
//! appear in messages or in [`TraceSource::describe`].

pub mod jaeger;
mod otlp_json;
pub mod tempo;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use tbt_compiler::trace::{Trace, TraceId};

use crate::run::source::{Decision, Followed, Judge, Observation, TraceSource};

pub use jaeger::{JaegerSource, JaegerTransport};
pub use tempo::TempoSource;

/// The environment variable holding extra request headers for remote trace backends.
pub const HEADERS_ENV: &str = "TBT_TRACES_HEADERS";

/// The per-request timeout used unless a source is configured otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed `--traces` value naming a remote backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteSpec {
    /// `jaeger=URL` (HTTP) or `jaeger+grpc=URL` (gRPC): Jaeger's query API v3.
    Jaeger {
        /// The query service's base URL, without a trailing slash.
        url: String,
        /// HTTP (`/api/v3/traces/{id}`) or gRPC (`jaeger.api_v3.QueryService/GetTrace`).
        transport: JaegerTransport,
    },
    /// `tempo=URL`: Grafana Tempo's `GET /api/traces/{id}`.
    Tempo {
        /// Tempo's HTTP base URL, without a trailing slash.
        url: String,
    },
}

impl RemoteSpec {
    /// The password of the backend's URL (`https://user:password@…`), as written and decoded:
    /// a secret for the run's [`crate::redact::Redactor`].
    pub fn secrets(&self) -> Vec<String> {
        let url = match self {
            RemoteSpec::Jaeger { url, .. } | RemoteSpec::Tempo { url } => url,
        };
        let Some(password) = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.password().map(str::to_owned))
        else {
            return Vec::new();
        };
        let decoded = percent_decode(&password);
        vec![password, decoded]
    }

    /// Builds the source, with the headers of [`HEADERS_ENV`] followed by `extra`.
    pub fn into_source(self, extra: Vec<(String, String)>) -> Result<Arc<dyn TraceSource>, String> {
        let mut headers = headers_from_env()?;
        headers.extend(extra);
        Ok(match self {
            RemoteSpec::Jaeger { url, transport } => {
                Arc::new(JaegerSource::new(&url, transport, headers)?)
            }
            RemoteSpec::Tempo { url } => Arc::new(TempoSource::new(&url, headers)?),
        })
    }
}

/// Parses a `--traces` value naming a remote backend: `jaeger=URL`, `jaeger+http=URL`,
/// `jaeger+grpc=URL` or `tempo=URL`. A URL without a scheme gets `http://`.
pub fn parse_source_arg(s: &str) -> Result<RemoteSpec, String> {
    let Some((kind, url)) = s.split_once('=') else {
        return Err(format!(
            "`{s}` is not a trace backend: expected `jaeger=URL`, `jaeger+grpc=URL` or `tempo=URL`"
        ));
    };
    let url = normalize_url(url.trim())?;
    match kind.trim() {
        "jaeger" | "jaeger+http" => Ok(RemoteSpec::Jaeger {
            url,
            transport: JaegerTransport::Http,
        }),
        "jaeger+grpc" => Ok(RemoteSpec::Jaeger {
            url,
            transport: JaegerTransport::Grpc,
        }),
        "tempo" => Ok(RemoteSpec::Tempo { url }),
        other => Err(format!(
            "unknown trace backend `{other}`: expected `jaeger`, `jaeger+grpc` or `tempo`"
        )),
    }
}

/// Checks a base URL: `http` or `https` with a host; no scheme means `http://`. Returns it without
/// a trailing slash.
pub fn normalize_url(url: &str) -> Result<String, String> {
    if url.is_empty() {
        return Err("the trace backend URL is empty".into());
    }
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let parsed = reqwest::Url::parse(&full)
        .map_err(|e| format!("`{url}` is not a valid trace backend URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "`{url}`: trace backends are reached over http:// or https://"
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("`{url}`: a base URL takes no query or fragment"));
    }
    Ok(full.trim_end_matches('/').to_string())
}

/// Reads [`HEADERS_ENV`] (unset or empty: no headers). See [`parse_headers`].
pub fn headers_from_env() -> Result<Vec<(String, String)>, String> {
    match std::env::var(HEADERS_ENV) {
        Ok(v) => parse_headers(&v).map_err(|e| format!("{HEADERS_ENV}: {e}")),
        Err(std::env::VarError::NotPresent) => Ok(Vec::new()),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{HEADERS_ENV} is not UTF-8")),
    }
}

/// Parses `Name=value,Name=value` (the OTLP exporters' `OTEL_EXPORTER_OTLP_HEADERS` syntax,
/// values may contain `=`, surrounding spaces are trimmed). Errors name the header, never its
/// value.
pub fn parse_headers(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, item) in s.split(',').enumerate() {
        if item.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = item.split_once('=') else {
            return Err(format!("item {} is not `Name=value`", i + 1));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("item {} has an empty header name", i + 1));
        }
        out.push((name.to_string(), value.trim().to_string()));
    }
    Ok(out)
}

/// Validates headers into a map; errors name the header, never its value.
pub(crate) fn header_map(
    headers: &[(String, String)],
) -> Result<reqwest::header::HeaderMap, String> {
    use reqwest::header::{HeaderName, HeaderValue};
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a valid header name"))?;
        let mut v = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of header `{name}` is not a valid header value"))?;
        v.set_sensitive(true);
        map.append(n, v);
    }
    Ok(map)
}

/// The outcome of one poll.
pub(crate) enum Fetched {
    /// The backend answered with this (possibly partial) trace.
    Trace(Box<Trace>),
    /// The backend does not know the trace (yet).
    NotYet,
    /// The request failed; the message names no header value.
    Failed(String),
}

/// Exponential backoff with jitter: `initial` doubling up to `max`, each delay shortened by up
/// to a quarter at random so that concurrent waits do not poll in lockstep.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let r = getrandom::u32().unwrap_or(0) as f64 / u32::MAX as f64;
        base.mul_f64(1.0 - 0.25 * r)
    }
}

/// Polling settings shared by the remote sources.
#[derive(Clone, Debug)]
pub(crate) struct Polling {
    pub(crate) request_timeout: Duration,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Polling {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

/// Polls `fetch`, showing `judge` each view, until it is satisfied or `deadline` passes (see the
/// module docs).
pub(crate) async fn poll<F, Fut>(
    backend: &str,
    polling: &Polling,
    id: TraceId,
    deadline: tokio::time::Instant,
    judge: &mut dyn Judge,
    mut fetch: F,
) -> Result<Followed, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Fetched>,
{
    use tokio::time::Instant;
    let start = Instant::now();
    let mut backoff = Backoff::new(polling.initial_backoff, polling.max_backoff);
    let mut seen = Trace::new(Some(id));
    // When the span count last changed (`None` until a span was seen).
    let mut changed_at: Option<std::time::Instant> = None;
    let mut last_error: Option<String> = None;
    let mut attempts = 0u32;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        attempts += 1;
        let limit = polling.request_timeout.min(deadline - now);
        let outcome = match tokio::time::timeout(limit, fetch()).await {
            Ok(f) => f,
            // Cut short by the wait's own deadline: the backend's earlier answer says more
            // about what is wrong than "no answer within 3ms".
            Err(_) if limit < polling.request_timeout && last_error.is_some() => {
                Fetched::Failed(last_error.clone().unwrap_or_default())
            }
            Err(_) => Fetched::Failed(format!("no answer within {}", fmt_duration(limit))),
        };
        let now = Instant::now();
        match outcome {
            Fetched::Trace(t) => {
                let t = *t;
                last_error = None;
                if t.len() != seen.len() {
                    changed_at = Some(now.into_std());
                    backoff.reset();
                }
                // Keep the largest view: a backend answering from a lagging replica must not
                // make spans disappear.
                if t.len() >= seen.len() {
                    seen = t;
                }
            }
            Fetched::NotYet => last_error = None,
            Fetched::Failed(e) => last_error = Some(e),
        }
        let view = Observation {
            trace: &seen,
            last_arrival: changed_at,
            final_view: false,
        };
        let asked = match judge.observe(now.into_std(), &view) {
            Decision::Done => {
                return Ok(Followed {
                    trace: seen,
                    timed_out: false,
                    last_arrival: changed_at,
                });
            }
            Decision::Wait(at) => at.map(Instant::from_std),
        };
        let mut wake = now + backoff.next_delay();
        if let Some(at) = asked {
            wake = wake.min(at.max(now));
        }
        if wake >= deadline {
            // Take one last look shortly before the deadline (with the backoff at 1 s the view
            // would otherwise be up to a second old), then answer at the deadline.
            match deadline.checked_sub(polling.initial_backoff) {
                Some(last) if last > now => wake = last,
                _ => {
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
            }
        }
        tokio::time::sleep_until(wake).await;
    }
    match last_error {
        Some(e) if seen.is_empty() => Err(format!(
            "trace backend {backend} failed ({attempts} attempts in {}): {e}",
            fmt_duration(deadline.saturating_duration_since(start))
        )),
        _ => Ok(Followed {
            trace: seen,
            timed_out: true,
            last_arrival: changed_at,
        }),
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A backend's answer larger than this is refused (exit 3) rather than read.
pub const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// A trace from a backend with more spans than this is refused (exit 3) rather than held.
pub const MAX_TRACE_SPANS: usize = 500_000;

/// Refuses batches of more than [`MAX_TRACE_SPANS`] spans.
pub(crate) fn check_span_count(batches: &[ResourceSpans]) -> Result<(), String> {
    check_span_count_at(batches, MAX_TRACE_SPANS)
}

fn check_span_count_at(batches: &[ResourceSpans], max: usize) -> Result<(), String> {
    span_limit_at(span_count(batches), max)
}

/// The spans in `batches`.
pub(crate) fn span_count(batches: &[ResourceSpans]) -> usize {
    batches
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// Refuses `n` spans when they are more than [`MAX_TRACE_SPANS`].
pub(crate) fn span_limit(n: usize) -> Result<(), String> {
    span_limit_at(n, MAX_TRACE_SPANS)
}

fn span_limit_at(n: usize, max: usize) -> Result<(), String> {
    if n > max {
        return Err(format!(
            "the trace has {n} spans, more than the {max} tbt reads from a backend"
        ));
    }
    Ok(())
}

/// Reads a response body, refusing one larger than [`MAX_RESPONSE_BYTES`] (by its announced
/// length, or once that much has arrived).
pub(crate) async fn read_body(mut response: reqwest::Response) -> Result<bytes::Bytes, String> {
    let too_big = |n: u64| {
        format!(
            "the answer is larger than {} MiB ({n} bytes or more), the most tbt reads from a backend",
            MAX_RESPONSE_BYTES >> 20
        )
    };
    if let Some(n) = response.content_length()
        && n > MAX_RESPONSE_BYTES as u64
    {
        return Err(too_big(n));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe_reqwest(&e))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_big((body.len() + chunk.len()) as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn is_hex(s: &str, bytes: usize) -> bool {
    s.len() == bytes * 2 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Standard or URL-safe base64, padding optional.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A short, single-line excerpt of a response body for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let trimmed = one_line.trim();
    if trimmed.is_empty() {
        "(empty body)".into()
    } else {
        format!("`{trimmed}`")
    }
}

/// Builds the shared HTTP client (rustls with the process's provider).
pub(crate) fn http_client(headers: &[(String, String)]) -> Result<reqwest::Client, String> {
    crate::tls::install_crypto_provider();
    reqwest::Client::builder()
        .default_headers(header_map(headers)?)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Describes a reqwest error without header values (reqwest's messages carry the URL only),
/// including the cause chain (`connection refused`).
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "request timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(cause) = last {
        msg.push_str(": ");
        msg.push_str(&cause);
    }
    msg
}

/// `%XX` sequences decoded (invalid ones kept as written); the bytes read as UTF-8, lossily.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_over_the_span_limit_is_refused_with_its_size() {
        use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span};
        let batch = ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span::default(); 3],
                ..Default::default()
            }],
            ..Default::default()
        };
        let two = std::slice::from_ref(&batch);
        assert!(check_span_count_at(two, 3).is_ok());
        let e = check_span_count_at(two, 2).unwrap_err();
        assert_eq!(
            e,
            "the trace has 3 spans, more than the 2 tbt reads from a backend"
        );
    }

    #[test]
    fn parses_source_args() {
        assert_eq!(
            parse_source_arg("jaeger=http://localhost:16686/").unwrap(),
            RemoteSpec::Jaeger {
                url: "http://localhost:16686".into(),
                transport: JaegerTransport::Http
            }
        );
        assert_eq!(
            parse_source_arg("jaeger+grpc=localhost:16685").unwrap(),
            RemoteSpec::Jaeger {
                url: "http://localhost:16685".into(),
                transport: JaegerTransport::Grpc
            }
        );
        assert_eq!(
            parse_source_arg("tempo=https://tempo.example/prefix").unwrap(),
            RemoteSpec::Tempo {
                url: "https://tempo.example/prefix".into()
            }
        );
        assert!(parse_source_arg("zipkin=http://x").is_err());
        assert!(parse_source_arg("jaeger=").is_err());
        assert!(parse_source_arg("jaeger=ftp://x").is_err());
        assert!(parse_source_arg("http://x").is_err());
    }

    #[test]
    fn parses_headers_without_leaking_values() {
        let h = parse_headers("Authorization=Bearer a=b, X-Scope-OrgID=t1,").unwrap();
        assert_eq!(
            h,
            vec![
                ("Authorization".into(), "Bearer a=b".into()),
                ("X-Scope-OrgID".into(), "t1".into())
            ]
        );
        let e = parse_headers("Authorization").unwrap_err();
        assert!(!e.contains("Bearer"));
        let e = header_map(&[("X".into(), "secret\nvalue".into())]).unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let d: Vec<_> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert!((75..=100).contains(&d[0]), "{d:?}");
        assert!((150..=200).contains(&d[1]), "{d:?}");
        assert!((300..=400).contains(&d[2]), "{d:?}");
        assert!((300..=400).contains(&d[3]), "{d:?}");
    }
}
