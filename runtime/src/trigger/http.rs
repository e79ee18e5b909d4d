//! The HTTP trigger: one request with reqwest over rustls, `traceparent`/`tracestate` injected.
//!
//! Why it exists: most systems under test are HTTP services. The whole exchange — connecting,
//! sending, reading the body — is bounded by the spec's timeout, and the body is read completely
//! (at most [`MAX_CAPTURE`]) so expectations see all of it.
//!
//! What it must not do: follow redirects unless the trigger says `follow_redirects true` (a test
//! sees the answer the service gave), retry, or put header values or URL passwords into errors or
//! spans. A followed exchange is one trigger span; the redirected-to server continues the same
//! trace, since the `traceparent` header goes along.

use super::{
    Cause, HttpBody, HttpResponse, HttpSpec, MAX_CAPTURE, MAX_REDIRECTS, Response, TraceContext,
    TriggerError, TriggerOutcome, find_cause,
};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Url};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

/// What a client is built from: TLS settings and the redirect policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ClientKey {
    insecure: bool,
    ca_cert: Option<PathBuf>,
    follow_redirects: bool,
}

/// HTTP clients by [`ClientKey`], so connections are pooled across the triggers of a run.
#[derive(Default)]
pub(super) struct Clients {
    by_key: Mutex<HashMap<ClientKey, Client>>,
}

impl Clients {
    fn get(&self, spec: &HttpSpec) -> Result<Client, TriggerError> {
        let key = ClientKey {
            insecure: spec.insecure,
            ca_cert: spec.ca_cert.clone(),
            follow_redirects: spec.follow_redirects,
        };
        if let Some(client) = self.lock().get(&key) {
            return Ok(client.clone());
        }
        let client = build_client(&key)?;
        self.lock().entry(key).or_insert(client.clone());
        Ok(client)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Client>> {
        // A panic while holding this lock cannot leave the map inconsistent: keep using it.
        self.by_key.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn build_client(key: &ClientKey) -> Result<Client, TriggerError> {
    // reqwest is built without a crypto provider of its own (no aws-lc build); use ring. An
    // error only means one is installed already.
    crate::tls::install_crypto_provider();
    let redirect = if key.follow_redirects {
        reqwest::redirect::Policy::limited(MAX_REDIRECTS)
    } else {
        reqwest::redirect::Policy::none()
    };
    let mut builder = Client::builder()
        .redirect(redirect)
        .danger_accept_invalid_certs(key.insecure);
    if let Some(path) = &key.ca_cert {
        let tls_error = |reason: String| TriggerError::Tls {
            address: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| tls_error(format!("cannot read it: {e}")))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| tls_error(format!("not a PEM certificate: {}", root_cause(&e))))?;
        if certs.is_empty() {
            return Err(tls_error("no certificate in it".to_owned()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| TriggerError::Tls {
        address: "the HTTP client".to_owned(),
        reason: root_cause(&e),
    })
}

/// `url` without user name and password, for spans; unparsable URLs are returned as given.
pub(super) fn redacted_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The innermost error's message: reqwest's outer messages repeat the URL (with its query).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

fn classify(e: &reqwest::Error, address: &str, spec: &HttpSpec) -> TriggerError {
    let target = || format!("{} {}", spec.method.to_ascii_uppercase(), address);
    let reason = match find_cause(e) {
        Cause::Refused => {
            return TriggerError::ConnectionRefused {
                address: address.to_owned(),
            };
        }
        Cause::Tls(reason) => {
            return TriggerError::Tls {
                address: address.to_owned(),
                reason,
            };
        }
        Cause::Timeout => {
            return TriggerError::TimedOut {
                after: spec.timeout,
                target: target(),
            };
        }
        Cause::Other(reason) => reason,
    };
    if e.is_timeout() {
        TriggerError::TimedOut {
            after: spec.timeout,
            target: target(),
        }
    } else if e.is_redirect() {
        TriggerError::Protocol {
            address: address.to_owned(),
            reason: format!("more than {MAX_REDIRECTS} redirects (`follow_redirects true`)"),
        }
    } else if e.is_connect() {
        TriggerError::Connect {
            address: address.to_owned(),
            reason,
        }
    } else if e.is_request() || e.is_body() || e.is_decode() {
        TriggerError::Protocol {
            address: address.to_owned(),
            reason,
        }
    } else {
        TriggerError::Other {
            target: target(),
            reason,
        }
    }
}

fn build_headers(spec: &HttpSpec, ctx: &TraceContext) -> Result<HeaderMap, TriggerError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &spec.headers {
        let invalid = || TriggerError::InvalidHeader { name: name.clone() };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        headers.append(name, value);
    }
    // Ours replace any the test wrote: the trace must be the one tbt waits for.
    for (name, value) in [
        ("traceparent", ctx.traceparent()),
        ("tracestate", ctx.tracestate()),
    ] {
        let value = HeaderValue::from_str(&value).map_err(|_| TriggerError::InvalidHeader {
            name: name.to_owned(),
        })?;
        headers.insert(HeaderName::from_static(name), value);
    }
    Ok(headers)
}

pub(super) async fn fire(
    clients: &Clients,
    spec: &HttpSpec,
    ctx: &TraceContext,
) -> Result<TriggerOutcome, TriggerError> {
    let mut url = Url::parse(&spec.url).map_err(|e| TriggerError::InvalidUrl {
        url: redacted_url(&spec.url),
        reason: e.to_string(),
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(TriggerError::InvalidUrl {
            url: redacted_url(&spec.url),
            reason: format!("the scheme must be http or https, not `{}`", url.scheme()),
        });
    }
    if !spec.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in &spec.query {
            pairs.append_pair(k, v);
        }
    }
    let address = host_port(&url);
    let method = Method::from_bytes(spec.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
        TriggerError::InvalidMethod {
            method: spec.method.clone(),
        }
    })?;
    let mut headers = build_headers(spec, ctx)?;
    let body = match &spec.body {
        None => None,
        Some(HttpBody::Raw(text)) => Some(text.clone().into_bytes()),
        Some(HttpBody::Json(value)) => {
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Some(value.to_string().into_bytes())
        }
    };
    let client = clients.get(spec)?;
    let mut request = client.request(method, url).headers(headers);
    if let Some(body) = body {
        request = request.body(body);
    }

    let started = SystemTime::now();
    let clock = Instant::now();
    let exchange = async {
        let mut response = request
            .send()
            .await
            .map_err(|e| classify(&e, &address, spec))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| classify(&e, &address, spec))?
        {
            if body.len() + chunk.len() > MAX_CAPTURE {
                return Err(TriggerError::TooLarge {
                    address: address.clone(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, TriggerError>((status, headers, body))
    };
    let (status, headers, body) = tokio::time::timeout(spec.timeout, exchange)
        .await
        .map_err(|_| TriggerError::TimedOut {
            after: spec.timeout,
            target: format!("{} {}", spec.method.to_ascii_uppercase(), address),
        })??;
    let text = String::from_utf8_lossy(&body).into_owned();
    Ok(TriggerOutcome {
        started,
        duration: clock.elapsed(),
        response: Response::Http(HttpResponse {
            status,
            headers,
            body: body.into(),
            text,
        }),
    })
}
