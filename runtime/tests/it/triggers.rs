//! Triggers against real servers on `127.0.0.1:0`: an axum echo server, raw TCP servers that
//! misbehave, a tonic-health gRPC server, and real programs. No sleeps as synchronisation: servers
//! are bound before the trigger fires, and conditions are waited on with a deadline.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::any;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tbt::trigger::{
    ExecSpec, GrpcSpec, HttpBody, HttpSpec, Response, TraceContext, TriggerError, TriggerOutcome,
    TriggerSpec, Triggers, fire, trigger_span_for,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

// ---------------------------------------------------------------- servers

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let status = if uri.path() == "/fail" {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    let reply = json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    (status, reply.to_string())
}

/// An HTTP server that answers every request with a JSON description of it (500 on `/fail`).
async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().fallback(any(echo));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// `/hop/N` redirects to `/hop/N-1`, `/hop/0` to the echo handler's `/landed`, `/loop` to itself.
async fn redirect_server() -> String {
    use axum::extract::Path;
    use axum::response::Redirect;
    use axum::routing::get;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new()
        .route(
            "/hop/{n}",
            get(|Path(n): Path<u32>| async move {
                match n {
                    0 => Redirect::to("/landed"),
                    n => Redirect::to(&format!("/hop/{}", n - 1)),
                }
            }),
        )
        .route("/loop", get(|| async { Redirect::to("/loop") }))
        .fallback(any(echo));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Accepts connections and never answers; keeps them open.
async fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    format!("http://{addr}")
}

/// Answers every connection with bytes that are not HTTP, then closes it.
async fn garbage_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = tokio::io::AsyncWriteExt::write_all(
                    &mut socket,
                    b"SSH-2.0-OpenSSH_9.6 this is not http\r\n\r\n",
                )
                .await;
            });
        }
    });
    format!("http://{addr}")
}

/// A local address nothing listens on: bound, then released.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr.to_string()
}

fn http(method: &str, url: String) -> HttpSpec {
    HttpSpec {
        method: method.into(),
        url,
        headers: vec![],
        query: vec![],
        body: None,
        timeout: Duration::from_secs(10),
        insecure: false,
        ca_cert: None,
        follow_redirects: false,
    }
}

fn http_response(outcome: &TriggerOutcome) -> &tbt::trigger::HttpResponse {
    match &outcome.response {
        Response::Http(r) => r,
        other => panic!("expected an HTTP response, got {other:?}"),
    }
}

// ---------------------------------------------------------------- HTTP

#[tokio::test]
async fn http_sends_method_path_query_headers_json_and_trace_context() {
    let base = echo_server().await;
    let ctx = TraceContext::new().with_tag("run1.orders.create");
    let mut spec = http("post", format!("{base}/orders?keep=1"));
    spec.headers = vec![
        ("X-Api-Key".into(), "k1".into()),
        ("traceparent".into(), "00-bogus".into()),
    ];
    spec.query = vec![("q".into(), "a b&c".into())];
    spec.body = Some(HttpBody::Json(json!({ "sku": "A1", "qty": 2 })));
    let outcome = fire(&TriggerSpec::Http(spec), &ctx).await.expect("answer");
    let response = http_response(&outcome);
    assert_eq!(response.status, 200);
    assert_eq!(outcome.status(), Some(200));
    let echo = outcome.json().expect("json body");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/orders");
    assert_eq!(echo["query"], "keep=1&q=a+b%26c");
    assert_eq!(echo["headers"]["x-api-key"], "k1");
    assert_eq!(echo["headers"]["traceparent"], ctx.traceparent());
    assert_eq!(echo["headers"]["tracestate"], "tbt=run1.orders.create");
    assert_eq!(echo["headers"]["content-type"], "application/json");
    let sent: Value = serde_json::from_str(echo["body"].as_str().expect("body")).expect("json");
    assert_eq!(sent, json!({ "sku": "A1", "qty": 2 }));
    assert!(
        response
            .headers
            .iter()
            .any(|(k, _)| k == "content-length" || k == "transfer-encoding")
    );
    assert!(outcome.duration < Duration::from_secs(10));
}

#[tokio::test]
async fn redirects_are_the_answer_unless_followed() {
    let base = redirect_server().await;
    let ctx = TraceContext::new();
    let outcome = fire(
        &TriggerSpec::Http(http("get", format!("{base}/hop/2"))),
        &ctx,
    )
    .await
    .expect("answer");
    let response = http_response(&outcome);
    assert_eq!(response.status, 303, "not followed by default");
    assert!(
        response
            .headers
            .iter()
            .any(|(k, v)| k == "location" && v == "/hop/1"),
        "{:?}",
        response.headers
    );

    let mut spec = http("get", format!("{base}/hop/2"));
    spec.follow_redirects = true;
    let outcome = fire(&TriggerSpec::Http(spec), &ctx).await.expect("answer");
    assert_eq!(outcome.status(), Some(200));
    let echo = outcome.json().expect("json body");
    assert_eq!(echo["path"], "/landed");
    assert_eq!(
        echo["headers"]["traceparent"],
        ctx.traceparent(),
        "the trace context goes along to the redirected-to server"
    );

    let mut spec = http("get", format!("{base}/loop"));
    spec.follow_redirects = true;
    let err = fire(&TriggerSpec::Http(spec), &ctx)
        .await
        .expect_err("a redirect loop is an error");
    let text = err.to_string();
    assert!(text.contains("more than 10 redirects"), "{text}");
}

#[tokio::test]
async fn http_sends_raw_bodies_as_they_are() {
    let base = echo_server().await;
    let ctx = TraceContext::new();
    let mut spec = http("PUT", format!("{base}/raw"));
    spec.headers = vec![("content-type".into(), "text/plain".into())];
    spec.body = Some(HttpBody::Raw("line one\nline two".into()));
    let outcome = Triggers::new()
        .fire(&TriggerSpec::Http(spec), &ctx)
        .await
        .expect("answer");
    let echo = outcome.json().expect("json");
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["body"], "line one\nline two");
    assert_eq!(echo["headers"]["content-type"], "text/plain");
    assert_eq!(echo["headers"]["traceparent"], ctx.traceparent());
}

#[tokio::test]
async fn http_500_is_an_answer_not_an_error() {
    let base = echo_server().await;
    let spec = TriggerSpec::Http(http("GET", format!("{base}/fail")));
    let ctx = TraceContext::new();
    let start = SystemTime::now();
    let result = fire(&spec, &ctx).await;
    let outcome = result.as_ref().expect("answer");
    assert_eq!(outcome.status(), Some(500));
    assert_eq!(
        outcome.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    // The trigger span records the answer and is not marked failed.
    let request = trigger_span_for(&spec, &ctx, &result, start, SystemTime::now());
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.name, "GET");
    assert_eq!(span.span_id, ctx.span_id.to_vec());
    let attrs = format!("{:?}", span.attributes);
    assert!(attrs.contains("http.response.status_code"), "{attrs}");
    assert!(attrs.contains("IntValue(500)"), "{attrs}");
    assert_ne!(span.status.as_ref().map(|s| s.code), Some(2));
}

#[tokio::test]
async fn a_failed_trigger_still_leaves_an_error_root_span() {
    let address = closed_port();
    let ctx = TraceContext::new();
    let spec = TriggerSpec::Http(http("GET", format!("http://{address}/x")));
    let fired = Triggers::new().fire_traced(&spec, &ctx).await;
    assert!(matches!(
        fired.result,
        Err(TriggerError::ConnectionRefused { .. })
    ));
    let span = &fired.span.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id, ctx.trace_id.as_bytes().to_vec());
    assert_eq!(span.span_id, ctx.span_id.to_vec());
    assert!(span.start_time_unix_nano > 0);
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    let status = span.status.as_ref().expect("status");
    assert_eq!(status.code, 2, "ERROR");
    assert!(
        status.message.starts_with("connection refused"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn http_to_a_closed_port_is_connection_refused() {
    let address = closed_port();
    let mut spec = http("GET", format!("http://{address}/"));
    spec.headers = vec![("authorization".into(), "Bearer s3cret-token".into())];
    let error = fire(&TriggerSpec::Http(spec), &TraceContext::new())
        .await
        .expect_err("nothing listens");
    assert_eq!(
        error,
        TriggerError::ConnectionRefused {
            address: address.clone()
        }
    );
    let message = error.to_string();
    assert_eq!(
        message,
        format!("connection refused to {address}: is the server running?")
    );
    assert!(!message.contains("s3cret"));
}

#[tokio::test]
async fn http_server_that_never_answers_times_out() {
    let base = silent_server().await;
    let mut spec = http("GET", format!("{base}/slow"));
    spec.timeout = Duration::from_millis(300);
    let clock = Instant::now();
    let error = fire(&TriggerSpec::Http(spec), &TraceContext::new())
        .await
        .expect_err("no answer");
    let elapsed = clock.elapsed();
    assert!(
        matches!(error, TriggerError::TimedOut { after, .. } if after == Duration::from_millis(300)),
        "{error:?}"
    );
    assert!(
        error.to_string().ends_with("timed out after 300ms"),
        "{error}"
    );
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn http_garbage_answer_is_a_protocol_error() {
    let base = garbage_server().await;
    let error = fire(
        &TriggerSpec::Http(http("GET", format!("{base}/"))),
        &TraceContext::new(),
    )
    .await
    .expect_err("not HTTP");
    assert!(matches!(error, TriggerError::Protocol { .. }), "{error:?}");
    assert!(error.to_string().contains("invalid response"), "{error}");
}

#[tokio::test]
async fn http_bad_input_gives_clear_errors_without_header_values() {
    let ctx = TraceContext::new();
    let bad_url = fire(&TriggerSpec::Http(http("GET", "not a url".into())), &ctx)
        .await
        .expect_err("bad url");
    assert!(
        matches!(bad_url, TriggerError::InvalidUrl { .. }),
        "{bad_url:?}"
    );
    let ftp = fire(
        &TriggerSpec::Http(http("GET", "ftp://example.invalid/".into())),
        &ctx,
    )
    .await
    .expect_err("bad scheme");
    assert!(ftp.to_string().contains("http or https"), "{ftp}");
    let mut spec = http("GET", "http://127.0.0.1:9/".into());
    spec.headers = vec![("x-token".into(), "s3cret\nvalue".into())];
    let header = fire(&TriggerSpec::Http(spec), &ctx)
        .await
        .expect_err("bad header");
    assert_eq!(
        header,
        TriggerError::InvalidHeader {
            name: "x-token".into()
        }
    );
    assert!(!header.to_string().contains("s3cret"));
    let method = fire(
        &TriggerSpec::Http(http("GE T", "http://127.0.0.1:9/".into())),
        &ctx,
    )
    .await
    .expect_err("bad method");
    assert!(
        matches!(method, TriggerError::InvalidMethod { .. }),
        "{method:?}"
    );
}

// ---------------------------------------------------------------- gRPC

fn health_proto() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/protos/health.proto")
}

/// A real tonic-health server; the returned list collects `traceparent`, `tracestate` and
/// `x-tenant` metadata of every request, as `key: value`.
async fn health_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let (_reporter, service) = tonic_health::server::health_reporter();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let service = tonic::service::interceptor::InterceptedService::new(
        service,
        move |request: tonic::Request<()>| {
            for key in ["traceparent", "tracestate", "x-tenant"] {
                if let Some(value) = request.metadata().get(key)
                    && let Ok(text) = value.to_str()
                {
                    record.lock().expect("lock").push(format!("{key}: {text}"));
                }
            }
            Ok(request)
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
    });
    (format!("http://{addr}"), seen)
}

fn grpc(method: &str, address: String, message: Value) -> GrpcSpec {
    GrpcSpec {
        method: method.into(),
        address,
        proto_files: vec![health_proto()],
        import_paths: vec![],
        message,
        metadata: vec![("x-tenant".into(), "t1".into())],
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn grpc_health_check_is_serving_and_carries_traceparent() {
    let (address, seen) = health_server().await;
    let ctx = TraceContext::new();
    let spec = TriggerSpec::Grpc(grpc(
        "grpc.health.v1.Health/Check",
        address,
        json!({ "service": "" }),
    ));
    let start = SystemTime::now();
    let result = Triggers::new().fire(&spec, &ctx).await;
    let outcome = result.as_ref().expect("answer");
    assert_eq!(outcome.status(), Some(0));
    assert_eq!(outcome.json(), Ok(json!({ "status": "SERVING" })));
    assert_eq!(
        seen.lock().expect("lock").as_slice(),
        [
            format!("traceparent: {}", ctx.traceparent()),
            format!("tracestate: {}", ctx.tracestate()),
            "x-tenant: t1".to_owned(),
        ]
        .as_slice()
    );
    assert_eq!(outcome.header("content-type"), Some("application/grpc"));
    let request = trigger_span_for(&spec, &ctx, &result, start, SystemTime::now());
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.name, "grpc.health.v1.Health/Check");
    let attrs = format!("{:?}", span.attributes);
    assert!(
        attrs.contains("rpc.system.name")
            && attrs.contains("rpc.response.status_code")
            && attrs.contains("StringValue(\"OK\")"),
        "{attrs}"
    );
}

#[tokio::test]
async fn grpc_unknown_service_is_not_found_status() {
    let (address, _) = health_server().await;
    let outcome = fire(
        &TriggerSpec::Grpc(grpc(
            "grpc.health.v1.Health/Check",
            address,
            json!({ "service": "no.such.Service" }),
        )),
        &TraceContext::new(),
    )
    .await
    .expect("an error status is an answer");
    assert_eq!(outcome.status(), Some(5), "{outcome:?}");
    assert_eq!(outcome.json(), Ok(Value::Null));
}

#[tokio::test]
async fn grpc_unknown_method_and_bad_field_name_what_is_wrong() {
    let ctx = TraceContext::new();
    let triggers = Triggers::new();
    let unknown = triggers
        .fire(
            &TriggerSpec::Grpc(grpc(
                "grpc.health.v1.Health/Chek",
                "http://127.0.0.1:9".into(),
                json!({}),
            )),
            &ctx,
        )
        .await
        .expect_err("no such method");
    let text = unknown.to_string();
    assert!(
        matches!(unknown, TriggerError::UnknownMethod { .. }),
        "{unknown:?}"
    );
    assert!(text.contains("Chek") && text.contains("Check"), "{text}");

    let service = triggers
        .fire(
            &TriggerSpec::Grpc(grpc(
                "nope.Svc/Check",
                "http://127.0.0.1:9".into(),
                json!({}),
            )),
            &ctx,
        )
        .await
        .expect_err("no such service");
    assert!(
        service.to_string().contains("grpc.health.v1.Health"),
        "{service}"
    );

    let streaming = triggers
        .fire(
            &TriggerSpec::Grpc(grpc(
                "grpc.health.v1.Health/Watch",
                "http://127.0.0.1:9".into(),
                json!({}),
            )),
            &ctx,
        )
        .await
        .expect_err("streaming");
    assert!(streaming.to_string().contains("streaming"), "{streaming}");

    let field = triggers
        .fire(
            &TriggerSpec::Grpc(grpc(
                "grpc.health.v1.Health/Check",
                "http://127.0.0.1:9".into(),
                json!({ "servce": "" }),
            )),
            &ctx,
        )
        .await
        .expect_err("bad field");
    let text = field.to_string();
    assert!(
        matches!(field, TriggerError::InvalidMessage { .. }),
        "{field:?}"
    );
    assert!(
        text.contains("servce") && text.contains("grpc.health.v1.HealthCheckRequest"),
        "{text}"
    );

    let mut missing = grpc(
        "grpc.health.v1.Health/Check",
        "http://127.0.0.1:9".into(),
        json!({}),
    );
    missing.proto_files =
        vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/protos/nope.proto")];
    let proto = triggers
        .fire(&TriggerSpec::Grpc(missing), &ctx)
        .await
        .expect_err("missing proto");
    assert!(matches!(proto, TriggerError::Proto { .. }), "{proto:?}");
}

#[tokio::test]
async fn grpc_to_a_closed_port_is_connection_refused() {
    let address = closed_port();
    let error = fire(
        &TriggerSpec::Grpc(grpc(
            "grpc.health.v1.Health/Check",
            format!("http://{address}"),
            json!({}),
        )),
        &TraceContext::new(),
    )
    .await
    .expect_err("nothing listens");
    assert_eq!(error, TriggerError::ConnectionRefused { address });
}

#[tokio::test]
async fn grpc_server_that_never_answers_times_out() {
    let base = silent_server().await;
    let mut spec = grpc("grpc.health.v1.Health/Check", base, json!({}));
    spec.timeout = Duration::from_millis(300);
    let clock = Instant::now();
    let error = fire(&TriggerSpec::Grpc(spec), &TraceContext::new())
        .await
        .expect_err("no answer");
    assert!(matches!(error, TriggerError::TimedOut { .. }), "{error:?}");
    assert!(clock.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------- exec

fn exec(program: &str, args: &[&str]) -> ExecSpec {
    ExecSpec {
        program: program.into(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: vec![],
        cwd: None,
        stdin: None,
        timeout: Duration::from_secs(10),
    }
}

fn exec_output(outcome: &TriggerOutcome) -> &tbt::trigger::ExecOutput {
    match &outcome.response {
        Response::Exec(r) => r,
        other => panic!("expected exec output, got {other:?}"),
    }
}

#[tokio::test]
async fn exec_gets_trace_context_and_env() {
    let ctx = TraceContext::new().with_tag("t");
    let mut spec = exec("/usr/bin/env", &[]);
    spec.env = vec![("ORDER_ID".into(), "42".into())];
    let outcome = fire(&TriggerSpec::Exec(spec), &ctx).await.expect("ran");
    let output = exec_output(&outcome);
    assert_eq!(outcome.exit_code(), Some(0));
    let lines: Vec<&str> = output.stdout.lines().collect();
    let traceparent = format!("TRACEPARENT={}", ctx.traceparent());
    assert!(lines.contains(&traceparent.as_str()), "{lines:?}");
    assert!(lines.contains(&"TRACESTATE=tbt=t"), "{lines:?}");
    assert!(lines.contains(&"ORDER_ID=42"), "{lines:?}");
}

#[tokio::test]
async fn exec_reports_exit_code_stdout_stderr_and_reads_stdin() {
    let ctx = TraceContext::new();
    let spec = exec(
        "/bin/sh",
        &["-c", "read line; echo \"got $line\"; echo oops >&2; exit 3"],
    );
    let mut spec = spec;
    spec.stdin = Some("hello\n".into());
    let outcome = fire(&TriggerSpec::Exec(spec), &ctx).await.expect("ran");
    let output = exec_output(&outcome);
    assert_eq!(output.exit_code, Some(3));
    assert_eq!(output.stdout, "got hello\n");
    assert_eq!(output.stderr, "oops\n");
    assert!(!output.truncated);
}

#[tokio::test]
async fn exec_arguments_are_not_shell_expanded() {
    let outcome = fire(
        &TriggerSpec::Exec(exec("echo", &["$HOME", "*", "a;b"])),
        &TraceContext::new(),
    )
    .await
    .expect("ran");
    assert_eq!(exec_output(&outcome).stdout, "$HOME * a;b\n");
    let json = fire(
        &TriggerSpec::Exec(exec("echo", &["{\"ok\": true}"])),
        &TraceContext::new(),
    )
    .await
    .expect("ran");
    assert_eq!(json.json(), Ok(json!({ "ok": true })));
}

#[tokio::test]
async fn exec_missing_program_is_reported() {
    for program in ["/nonexistent/tbt-no-such-program", "tbt-no-such-program-x7"] {
        let error = fire(&TriggerSpec::Exec(exec(program, &[])), &TraceContext::new())
            .await
            .expect_err("missing");
        assert_eq!(error.to_string(), format!("program `{program}` not found"));
    }
    let mut spec = exec("/usr/bin/env", &[]);
    spec.cwd = Some("/nonexistent/dir".into());
    let error = fire(&TriggerSpec::Exec(spec), &TraceContext::new())
        .await
        .expect_err("bad cwd");
    assert!(error.to_string().contains("working directory"), "{error}");
}

#[tokio::test]
async fn exec_output_is_bounded() {
    let spec = exec(
        "/bin/sh",
        &["-c", "head -c 17000000 /dev/zero; echo done >&2"],
    );
    let outcome = fire(&TriggerSpec::Exec(spec), &TraceContext::new())
        .await
        .expect("ran");
    let output = exec_output(&outcome);
    assert!(output.truncated);
    assert_eq!(output.stdout.len(), tbt::trigger::MAX_CAPTURE);
    assert_eq!(output.stderr, "done\n");
    assert_eq!(output.exit_code, Some(0));
}

fn process_is_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its (new) parent to reap it is dead already.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn exec_outliving_its_timeout_is_killed_with_its_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let pid_path = pid_file.to_str().expect("utf-8 path");
    let mut spec = exec(
        "/bin/sh",
        &["-c", "sleep 60 & echo $! > \"$1\"; wait", "sh", pid_path],
    );
    spec.timeout = Duration::from_secs(1);
    let clock = Instant::now();
    let error = fire(&TriggerSpec::Exec(spec), &TraceContext::new())
        .await
        .expect_err("killed");
    assert!(matches!(error, TriggerError::TimedOut { .. }), "{error:?}");
    assert_eq!(error.to_string(), "`/bin/sh` timed out after 1s");
    assert!(clock.elapsed() < Duration::from_secs(5));
    let grandchild = std::fs::read_to_string(&pid_file).expect("the shell wrote the pid");
    let grandchild = grandchild.trim();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !process_is_gone(grandchild) {
        assert!(
            Instant::now() < deadline,
            "the background `sleep` ({grandchild}) survived the timeout"
        );
        tokio::time::sleep(Duration::from_millis(10)).await; // polling a condition, with a deadline
    }
}

#[tokio::test]
async fn grpc_garbage_answer_is_a_protocol_error() {
    let base = garbage_server().await;
    let error = fire(
        &TriggerSpec::Grpc(grpc("grpc.health.v1.Health/Check", base, json!({}))),
        &TraceContext::new(),
    )
    .await
    .expect_err("not gRPC");
    assert!(matches!(error, TriggerError::Protocol { .. }), "{error:?}");
}

// ---------------------------------------------------------------- TLS

/// A TLS listener for `axum::serve`: handshakes that fail are skipped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((socket, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(stream) = self.acceptor.accept(socket).await {
                return (stream, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// An HTTPS echo server with a fresh self-signed certificate for 127.0.0.1; returns its base URL
/// and the certificate as PEM.
async fn tls_echo_server() -> (String, String) {
    use tokio_rustls::rustls;
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .expect("server config");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    let app = Router::new().fallback(any(echo));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("https://{addr}"), certified.cert.pem())
}

#[tokio::test]
async fn https_with_an_untrusted_certificate_is_a_tls_error() {
    let (base, _) = tls_echo_server().await;
    let error = fire(
        &TriggerSpec::Http(http("GET", format!("{base}/"))),
        &TraceContext::new(),
    )
    .await
    .expect_err("self-signed");
    assert!(matches!(error, TriggerError::Tls { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with("TLS error with 127.0.0.1:"),
        "{error}"
    );
}

#[tokio::test]
async fn https_works_when_insecure_or_with_the_ca_file() {
    let (base, pem) = tls_echo_server().await;
    let ctx = TraceContext::new();
    let mut insecure = http("GET", format!("{base}/secure"));
    insecure.insecure = true;
    let outcome = fire(&TriggerSpec::Http(insecure), &ctx)
        .await
        .expect("answer");
    assert_eq!(outcome.status(), Some(200));
    assert_eq!(
        outcome.json().expect("json")["headers"]["traceparent"],
        ctx.traceparent()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).expect("write ca");
    let mut trusted = http("GET", format!("{base}/secure"));
    trusted.ca_cert = Some(ca);
    let outcome = fire(&TriggerSpec::Http(trusted), &ctx)
        .await
        .expect("answer");
    assert_eq!(outcome.status(), Some(200));

    let mut missing = http("GET", format!("{base}/secure"));
    missing.ca_cert = Some(dir.path().join("nope.pem"));
    let error = fire(&TriggerSpec::Http(missing), &ctx)
        .await
        .expect_err("no file");
    assert!(matches!(error, TriggerError::Tls { .. }), "{error:?}");
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_error() {
    let base = echo_server().await.replace("http://", "https://");
    let error = fire(
        &TriggerSpec::Http(http("GET", format!("{base}/"))),
        &TraceContext::new(),
    )
    .await
    .expect_err("not TLS");
    assert!(matches!(error, TriggerError::Tls { .. }), "{error:?}");
}

/// The user-facing messages, printed with `--nocapture` to review their wording.
#[tokio::test]
async fn error_messages_read_well() {
    let refused = closed_port();
    let silent = silent_server().await;
    let garbage = garbage_server().await;
    let mut slow = http("GET", format!("{silent}/"));
    slow.timeout = Duration::from_millis(100);
    for spec in [
        TriggerSpec::Http(http("GET", format!("http://{refused}/"))),
        TriggerSpec::Http(slow),
        TriggerSpec::Http(http("GET", format!("{garbage}/"))),
        TriggerSpec::Grpc(grpc("grpc.health.v1.Health/Check", garbage, json!({}))),
        TriggerSpec::Grpc(grpc(
            "grpc.health.v1.Health/Check",
            "localhost:1".into(),
            json!({}),
        )),
    ] {
        let error = fire(&spec, &TraceContext::new()).await.expect_err("fails");
        eprintln!("{error}");
        assert!(!error.to_string().contains('\n'), "{error}");
    }
}

#[tokio::test]
async fn cancelling_an_exec_trigger_kills_its_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let ready_file = dir.path().join("ready");
    let spec = exec(
        "/bin/sh",
        &[
            "-c",
            "sleep 60 & echo $! > \"$1\"; : > \"$2\"; wait",
            "sh",
            pid_file.to_str().expect("utf-8"),
            ready_file.to_str().expect("utf-8"),
        ],
    );
    let spec = TriggerSpec::Exec(spec);
    let ctx = TraceContext::new();
    let triggers = Triggers::new();
    // Boxed, so that dropping it drops the future itself.
    let mut firing = Box::pin(triggers.fire(&spec, &ctx));
    // Run the trigger until the shell says it started its child, then drop it as the scheduler
    // does on Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready_file.exists() {
        assert!(Instant::now() < deadline, "the shell never started");
        tokio::select! {
            result = &mut firing => panic!("finished early: {result:?}"),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    drop(firing);
    let grandchild = std::fs::read_to_string(&pid_file).expect("pid");
    let grandchild = grandchild.trim();
    while !process_is_gone(grandchild) {
        assert!(
            Instant::now() < deadline,
            "`sleep` ({grandchild}) survived cancellation"
        );
        tokio::time::sleep(Duration::from_millis(10)).await; // polling a condition, with a deadline
    }
}
