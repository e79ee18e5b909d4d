//! Grafana Tempo: `GET {base}/api/traces/{id}`.
//!
//! Asked with `Accept: application/protobuf`, Tempo answers `tempopb.Trace`
//! (`repeated opentelemetry.proto.trace.v1.ResourceSpans batches = 1`, the encoding of OTLP
//! `TracesData`). A JSON answer is accepted in every documented shape: `{"batches": [...]}`
//! (Tempo 1.x and 2.x v1 API), `{"resourceSpans": [...]}`, and `{"trace": {...}}` (the v2 API's
//! envelope), with ids in base64 or hex. 404 means the trace is not there (yet).

use std::time::Duration;

use tbt_compiler::trace::{Trace, TraceId};

use super::{Fetched, Polling, describe_reqwest, excerpt, poll};
use crate::run::source::{FollowFuture, Judge, TraceSource};

/// A trace source polling Grafana Tempo's trace-by-id API.
pub struct TempoSource {
    base: String,
    http: reqwest::Client,
    polling: Polling,
}

impl TempoSource {
    /// A source for Tempo at `base_url` (`http://host:3200`), sending `headers` with every
    /// request (`X-Scope-OrgID` for multi-tenant set-ups, `Authorization`). Fails on an invalid
    /// URL or header (the message names the header, never its value).
    pub fn new(base_url: &str, headers: Vec<(String, String)>) -> Result<Self, String> {
        Ok(TempoSource {
            base: super::normalize_url(base_url)?,
            http: super::http_client(&headers)?,
            polling: Polling::default(),
        })
    }

    /// Sets the timeout of each request (default [`super::DEFAULT_REQUEST_TIMEOUT`]).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.polling.request_timeout = timeout;
        self
    }

    /// Sets the backoff between polls: `initial` doubling up to `max` (default 50 ms to 1 s).
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.polling.initial_backoff = initial;
        self.polling.max_backoff = max.max(initial);
        self
    }

    async fn fetch(&self, id: TraceId) -> Fetched {
        let url = format!("{}/api/traces/{}", self.base, id);
        let response = match self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/protobuf")
            .timeout(self.polling.request_timeout)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Fetched::Failed(describe_reqwest(&e)),
        };
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let body = match super::read_body(response).await {
            Ok(b) => b,
            Err(e) => return Fetched::Failed(e),
        };
        if status == reqwest::StatusCode::NOT_FOUND {
            return Fetched::NotYet;
        }
        if !status.is_success() {
            return Fetched::Failed(format!("HTTP {status}: {}", excerpt(&body)));
        }
        let parsed = if content_type.contains("json") {
            parse_json(body, id)
        } else if content_type.contains("protobuf") || content_type.is_empty() {
            Trace::decode_protobuf(&body, Some(id))
                .map_err(|e| format!("invalid protobuf answer: {e}"))
                .and_then(|t| super::span_limit(t.len()).map(|()| t))
        } else {
            Err(format!(
                "unexpected content type `{content_type}`: {}",
                excerpt(&body)
            ))
        };
        match parsed {
            Ok(t) if t.is_empty() => Fetched::NotYet,
            Ok(t) => Fetched::Trace(Box::new(t)),
            Err(e) => Fetched::Failed(e),
        }
    }
}

/// Reads a JSON answer in any of the documented shapes, decoded straight into the protobuf
/// types ([`super::otlp_json`]): no JSON tree, no second copy; the body is dropped once decoded.
fn parse_json(body: bytes::Bytes, id: TraceId) -> Result<Trace, String> {
    let answer: super::otlp_json::Answer = serde_json::from_slice(&body)
        .map_err(|e| format!("unreadable JSON answer ({e}): {}", excerpt(&body)))?;
    let Some(batches) = answer.into_batches() else {
        if body
            .iter()
            .filter(|b| !b.is_ascii_whitespace())
            .eq(b"{}".iter())
        {
            return Ok(Trace::new(Some(id)));
        }
        return Err(format!(
            "unexpected JSON answer (no `batches` or `resourceSpans`): {}",
            excerpt(&body)
        ));
    };
    drop(body);
    super::check_span_count(&batches)?;
    Ok(Trace::from_resource_spans(&batches, Some(id)))
}

impl TraceSource for TempoSource {
    fn follow<'a>(
        &'a self,
        id: TraceId,
        deadline: tokio::time::Instant,
        judge: &'a mut dyn Judge,
    ) -> FollowFuture<'a> {
        Box::pin(async move {
            let backend = self.describe();
            poll(&backend, &self.polling, id, deadline, judge, || {
                self.fetch(id)
            })
            .await
        })
    }

    fn describe(&self) -> String {
        format!("Tempo {}", self.base)
    }

    fn is_live(&self) -> bool {
        true
    }
}
