//! Secrets never reach an output, in any encoding (issue 28): the `tbt` binary runs failing suites
//! whose secrets travel in an HTTP trigger's path, query, header and body, an exec trigger's
//! environment, a service's environment, `TBT_OTLP_TOKEN` and `TBT_TRACES_HEADERS` — and the
//! peers echo them back (the HTTP server in its error body, the process and the service on their
//! output, a trace backend in its error). Then stdout, stderr, the JSON and JUnit reports and
//! `.tbt/last-run.json` are searched for every form `tbt::redact::encodings` writes of each
//! secret: raw, percent-encoded (`%20`, `+`, lower-case hex), JSON- and XML-escaped, base64.

use std::path::Path;
use std::process::{Command, Output};

use axum::http::{HeaderMap, Uri};

/// A `secret let` value with what encoders change: a space, `/`, `"`, `+`, `&`, non-ASCII.
const SECRET: &str = "s3cr3t p@ss/\"q\"+&é-1";
/// `TBT_OTLP_TOKEN`.
const OTLP_TOKEN: &str = "otlp-token 9f8e7d";
/// The credential of `TBT_TRACES_HEADERS`.
const TRACES_TOKEN: &str = "traces-token-5a4b3c";

/// `tbt ARGS` in `dir` with the two tokens in its environment, without colour.
fn tbt(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("TBT_OTLP_TOKEN", OTLP_TOKEN)
        .env(
            "TBT_TRACES_HEADERS",
            format!("authorization=Bearer {TRACES_TOKEN}"),
        )
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .expect("tbt runs")
}

/// Every output of a run in `dir`: stdout, stderr, and the files it wrote.
fn outputs(dir: &Path, out: &Output) -> Vec<(String, String)> {
    let mut all = vec![
        (
            "stdout".to_owned(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        (
            "stderr".to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
    ];
    for file in ["report.json", "report.xml", ".tbt/last-run.json"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
            all.push((file.to_owned(), text));
        }
    }
    all
}

/// Fails naming the output, the secret's form and the line, if any form of any secret is in any
/// output.
fn assert_no_secret(outputs: &[(String, String)], secrets: &[&str]) {
    let mut leaks = Vec::new();
    for secret in secrets {
        for (form, text) in tbt::redact::encodings(secret) {
            for (name, body) in outputs {
                if let Some(line) = body.lines().find(|l| l.contains(&text)) {
                    leaks.push(format!("{name}: {form} of {secret:?} ({text}) in: {line}"));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}

/// An HTTP server that answers every request 409 with what it received — path and query as
/// sent (percent- or form-encoded), the `authorization` header, the body — the way a proxy or
/// an error page echoes a request.
async fn echo_server() -> std::net::SocketAddr {
    let app =
        axum::Router::new().fallback(|uri: Uri, headers: HeaderMap, body: String| async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            (
                axum::http::StatusCode::CONFLICT,
                format!("rejected {uri} (authorization: {auth}) body {body}"),
            )
        });
    crate::support::serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_with_secrets_everywhere_leaks_none_in_any_encoding() {
    let addr = echo_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let suite = format!(
        r#"secret let token = "{}"

service talker {{
  run "sh" ["-c", "echo \"starting with $SVC_SECRET and $OTEL_EXPORTER_OTLP_HEADERS\"; exec sleep 30"]
  env SVC_SECRET = token
  ready log "starting" within 10s
}}

test http_leak {{
  trigger http POST "http://{addr}/orders/${{token}}" {{
    header "authorization" = "Bearer ${{token}}"
    query "q" = token
    json {{ "token": token }}
  }}
  expect response {{
    status == 201
  }}
}}

test exec_leak {{
  trigger exec "sh" ["-c", "echo out $SECRET_ENV; echo err $SECRET_ENV >&2; exit 3"] {{
    env SECRET_ENV = token
  }}
  expect response {{
    exit_code == 0
    stdout == "nothing"
  }}
}}
"#,
        SECRET.replace('\\', "\\\\").replace('"', "\\\"")
    );
    std::fs::write(dir.path().join("leak.tbt"), suite).expect("write");
    let path = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        tbt(
            &path,
            &[
                "run",
                "leak.tbt",
                "-v",
                "--timeout",
                "2s",
                "--otlp-grpc",
                "127.0.0.1:0",
                "--otlp-http",
                "127.0.0.1:0",
                "--report",
                "json=report.json",
                "--report",
                "junit=report.xml",
            ],
        )
    })
    .await
    .expect("tbt ran");
    let all = outputs(dir.path(), &out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the suite fails on its expectations\n{all:#?}"
    );
    let stderr = &all[1].1;
    // The failures were reported (with the echoed answers), only masked.
    assert!(
        stderr.contains("rejected /orders/***") && stderr.contains("out ***"),
        "{stderr}"
    );
    assert_no_secret(&all, &[SECRET, OTLP_TOKEN, TRACES_TOKEN]);
}

/// A trace backend (Tempo's API) that answers every request 502 with the request's headers —
/// as a misconfigured gateway does: the step's error quotes the body; the `TBT_TRACES_HEADERS`
/// credential it holds is masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_echoes_the_request_headers_leaks_no_token() {
    let app = axum::Router::new().fallback(|headers: HeaderMap| async move {
        let echoed: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or_default()))
            .collect();
        (
            axum::http::StatusCode::BAD_GATEWAY,
            format!("upstream failed; request headers: {}", echoed.join("; ")),
        )
    });
    let addr = crate::support::serve(app).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let suite =
        "test old {\n  trigger trace \"4bf92f3577b34da6a3ce929d0e0e4736\"\n  expect span\n}\n";
    std::fs::write(dir.path().join("backend.tbt"), suite).expect("write");
    let path = dir.path().to_owned();
    let traces = format!("tempo=http://{addr}");
    let out = tokio::task::spawn_blocking(move || {
        tbt(
            &path,
            &[
                "run",
                "backend.tbt",
                "-v",
                "--timeout",
                "2s",
                "--traces",
                &traces,
                "--report",
                "json=report.json",
                "--report",
                "junit=report.xml",
            ],
        )
    })
    .await
    .expect("tbt ran");
    let all = outputs(dir.path(), &out);
    assert_ne!(out.status.code(), Some(0), "{all:#?}");
    assert!(
        all.iter().any(|(_, t)| t.contains("authorization: ***")),
        "the backend's answer is reported, masked: {all:#?}"
    );
    assert_no_secret(&all, &[TRACES_TOKEN, &format!("Bearer {TRACES_TOKEN}")]);
}

/// A service that prints its environment and never becomes ready: the run stops with its
/// output, in which its secret `env` and the receiver token (in `OTEL_EXPORTER_OTLP_HEADERS`)
/// are masked.
#[test]
fn a_service_that_never_gets_ready_prints_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let suite = format!(
        r#"secret let key = "{SECRET_PLAIN}"

service broken {{
  run "sh" ["-c", "echo \"key=$SVC_KEY headers=$OTEL_EXPORTER_OTLP_HEADERS\"; exec sleep 30"]
  env SVC_KEY = key
  ready log "never printed" within 1s
}}

test t {{
  trigger exec "true" []
  expect response {{
    exit_code == 0
  }}
}}
"#
    );
    std::fs::write(dir.path().join("svc.tbt"), suite).expect("write");
    let out = tbt(
        dir.path(),
        &[
            "run",
            "svc.tbt",
            "--otlp-grpc",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
            "--report",
            "json=report.json",
        ],
    );
    let all = outputs(dir.path(), &out);
    assert_eq!(out.status.code(), Some(3), "{all:#?}");
    assert!(
        all[1].1.contains("key=***"),
        "the service's output is shown, masked: {all:#?}"
    );
    assert_no_secret(&all, &[SECRET_PLAIN, OTLP_TOKEN]);
}

/// A secret a shell passes through `echo` unchanged.
const SECRET_PLAIN: &str = "plain-key 7c6d5e";
