//! Golden files of what a user reads from `tbt run`: the terminal report (passing, failing with
//! near misses and groups, verbose, a trace that never arrives, the timeout explanation, a service
//! that never becomes ready, usage errors) and the JSON and JUnit reports. Through the real binary;
//! what varies between runs (ids of live traces, ports, times, the scratch folder) is scrubbed, so
//! a change of wording or layout shows as a snapshot diff in review.
//!
//! `cargo insta review` (or `INSTA_UPDATE=always cargo test -p tbt --test it report::`) accepts a
//! deliberate change.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// A scratch folder with `files` and the recorded shop checkout as `traces.json`
/// (`compiler/tests/traces/shop.json`, trace id `abab…ab`).
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../compiler/tests/traces/shop.json");
    std::fs::copy(fixture, d.path().join("traces.json")).expect("copy the fixture");
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).expect("write");
    }
    d
}

/// `tbt ARGS` in `dir`, without colour, with the receiver on free ports.
fn tbt(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("TBT_OTLP_TOKEN")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .expect("tbt runs")
}

/// The command, its exit status and its output as a user reads them, scrubbed.
fn transcript(dir: &Path, args: &[&str], out: &Output) -> String {
    let mut text = format!(
        "$ tbt {}\nexit status: {:?}\n",
        args.join(" "),
        out.status.code()
    );
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if !bytes.is_empty() {
            text.push_str(&format!("--- {name}\n{}", String::from_utf8_lossy(bytes)));
        }
    }
    scrub(dir, &text)
}

/// What varies between runs: the scratch folder, live ids, ports, measured times.
fn scrub(dir: &Path, text: &str) -> String {
    let text = text.replace(&dir.display().to_string(), "<dir>");
    crate::scrub::words(&text)
}

/// A run of `suite` on the recorded trace, with the JSON and JUnit reports written too.
fn run_recorded(suite: &str, extra: &[&str]) -> (String, Value, String) {
    let mut args = vec!["run", "--traces", "traces.json", "--color", "never"];
    args.extend_from_slice(extra);
    run_reporting(suite, &args)
}

/// `tbt ARGS --report json=… --report junit=… suite.tbt` on `suite`: the scrubbed transcript,
/// JSON report and JUnit report.
fn run_reporting(suite: &str, args: &[&str]) -> (String, Value, String) {
    let d = folder(&[("suite.tbt", suite)]);
    let mut args = args.to_vec();
    args.extend([
        "--report",
        "json=r.json",
        "--report",
        "junit=j.xml",
        "suite.tbt",
    ]);
    let out = tbt(d.path(), &args);
    let terminal = transcript(d.path(), &args, &out);
    let json = std::fs::read_to_string(d.path().join("r.json")).expect("a JSON report");
    let mut json: Value = serde_json::from_str(&json).expect("the JSON report parses");
    scrub_json(&mut json);
    let junit = std::fs::read_to_string(d.path().join("j.xml")).expect("a JUnit report");
    (terminal, json, scrub_junit(d.path(), &junit))
}

/// Times in the JSON report: every `*_ms` field.
fn scrub_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k.ends_with("_ms") && v.is_number() {
                    *v = Value::String("<ms>".into());
                } else {
                    scrub_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_json),
        Value::String(s) => *s = crate::scrub::words(s),
        _ => {}
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON prints")
}

/// Times and the run's date in the JUnit report.
fn scrub_junit(dir: &Path, xml: &str) -> String {
    let attr = regex::Regex::new(r#" (time|timestamp)="[^"]*""#).expect("valid regex");
    let xml = attr.replace_all(xml, r#" $1="<$1>""#);
    scrub(dir, &xml)
}

const MIXED: &str = r#"import "std/db"
import "std/http"

secret let token = "hunter22-secret"

test checkout "The recorded checkout" {
  trigger trace "abababababababababababababababab"
  expect span[name == "charge card"] {
    payment.amount == 99.99
    service == "payments"
  }
  expect span[name == "SELECT orders"] before span[name == "charge card"]
}

test n_plus_one {
  trigger trace "abababababababababababababababab"
  expect span[service == "orders", kind == server] >> db.query() by db.query.text {
    count <= 1
  }
  expect span[name == "charge kard"]
  expect no span[service == "payments", kind == client]
  expect http.server("/orders/{id}")
}

test later {
  after n_plus_one
  trigger trace "abababababababababababababababab"
  expect span[name == token]
}
"#;

const PASSING: &str = r#"import "std/db"

test checkout "The recorded checkout" {
  trigger trace "abababababababababababababababab"
  expect span[name == "charge card"] {
    payment.amount == 99.99
    service == "payments"
  }
  expect span[name == "SELECT orders"] before span[name == "charge card"]
  expect span[service == "orders", kind == server] >> db.query() {
    count == 3
  }
}

test payment {
  trigger trace "abababababababababababababababab"
  expect no span[name == "refund"]
  expect trace {
    span_count == 9
  }
}
"#;

/// One run of a passing, a failing and a skipped test: the terminal, JSON and JUnit reports.
#[test]
fn a_failing_run_in_the_terminal_json_and_junit() {
    let (terminal, json, junit) = run_recorded(MIXED, &[]);
    for text in [&terminal, &json.to_string(), &junit] {
        assert!(
            !text.contains("hunter22-secret"),
            "a secret leaked:\n{text}"
        );
    }
    insta::assert_snapshot!("failing_run_terminal", terminal);
    insta::assert_snapshot!("failing_run_json", pretty(&json));
    insta::assert_snapshot!("failing_run_junit", junit);
}

#[test]
fn a_passing_run_in_the_terminal_and_verbose() {
    let (terminal, json, junit) = run_recorded(PASSING, &[]);
    insta::assert_snapshot!("passing_run_terminal", terminal);
    insta::assert_snapshot!("passing_run_json", pretty(&json));
    insta::assert_snapshot!("passing_run_junit", junit);
    let (verbose, _, _) = run_recorded(PASSING, &["--verbose"]);
    insta::assert_snapshot!("passing_run_verbose", verbose);
}

#[test]
fn a_trace_that_never_arrives_in_the_file() {
    let suite =
        "test missing {\n  trigger trace \"0af7651916cd43dd8448eb211c80319c\"\n  expect span\n}\n";
    let (terminal, json, _) = run_recorded(suite, &["--timeout", "1s"]);
    insta::assert_snapshot!("trace_never_arrives_terminal", terminal);
    insta::assert_snapshot!(
        "trace_never_arrives_json",
        pretty(&json["tests"][0]["steps"])
    );
}

/// `tbt run` with the embedded receiver on free ports, without colour.
const LIVE: &[&str] = &[
    "run",
    "--otlp-grpc",
    "127.0.0.1:0",
    "--otlp-http",
    "127.0.0.1:0",
    "--color",
    "never",
];

/// A trigger that reaches a system which exports nothing: the trace holds only tbt's span, so no
/// verdict is given before the timeout, and the timeout says what the wait saw and was missing.
#[test]
fn the_timeout_explains_what_arrived_and_what_was_missing() {
    let suite =
        "test silent {\n  trigger exec \"/bin/true\" []\n  expect span[service == \"orders\"]\n}\n";
    let d = folder(&[("suite.tbt", suite)]);
    let args = [LIVE, &["--timeout", "1s", "suite.tbt"]].concat();
    let out = tbt(d.path(), &args);
    insta::assert_snapshot!("timeout_terminal", transcript(d.path(), &args, &out));
}

#[test]
fn a_service_that_never_becomes_ready() {
    let port = crate::support::free_port();
    let suite = format!(
        "service api {{\n  run \"/bin/sh\" [\"-c\", \"echo starting api >&2; echo 'no config file' >&2; exec sleep 30\"]\n  ready tcp \"127.0.0.1:{port}\" within 300ms\n}}\n\ntest t {{\n  trigger http GET \"http://127.0.0.1:{port}/\"\n}}\n"
    );
    let d = folder(&[("suite.tbt", &suite)]);
    let args = [LIVE, &["suite.tbt"]].concat();
    let out = tbt(d.path(), &args);
    insta::assert_snapshot!(
        "service_not_ready_terminal",
        transcript(d.path(), &args, &out)
    );
}

/// Mistakes on the command line and in `tbt.toml`: each a clear message and exit status 2.
#[test]
fn usage_errors() {
    let d = folder(&[
        (
            "suite.tbt",
            "test t {\n  trigger trace \"abababababababababababababababab\"\n}\n",
        ),
        (
            "tbt.toml",
            "[vars.staging]\nbase = \"http://127.0.0.1:1\"\n",
        ),
    ]);
    let cases: &[&[&str]] = &[
        &["run", "--nope", "suite.tbt"],
        &["run", "--shard", "3/2", "suite.tbt"],
        &["run", "--vars", "prod", "suite.tbt"],
        &[
            "run",
            "--var",
            "nope=1",
            "--traces",
            "traces.json",
            "suite.tbt",
        ],
        &["run", "--report", "pdf=out.pdf", "suite.tbt"],
        &["run", "--traces", "jaeger=", "suite.tbt"],
        &["run", "missing.tbt"],
    ];
    let mut all = String::new();
    for args in cases {
        let out = tbt(d.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        all.push_str(&transcript(d.path(), args, &out));
        all.push('\n');
    }
    insta::assert_snapshot!("usage_errors", all);
}

/// A failed response expectation shows what the trigger answered — the status and the start of
/// the body — with the secret the body echoes redacted, in the terminal, JSON and JUnit reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_response_expectation_shows_the_answer() {
    let app = axum::Router::new().route(
        "/orders",
        axum::routing::post(|body: String| async move {
            let answer = format!("{{\"error\":\"duplicate order\",\"request\":{body}}}");
            (axum::http::StatusCode::CONFLICT, answer)
        }),
    );
    let addr = crate::support::serve(app).await;
    let suite = format!(
        "secret let token = \"hunter22-secret\"\n\ntest create {{\n  trigger http POST \"http://{addr}/orders\" {{\n    json {{ \"sku\": \"sku-42\", \"token\": token }}\n  }}\n  expect response {{\n    status == 201\n  }}\n}}\n"
    );
    let (terminal, json, junit) = tokio::task::spawn_blocking(move || run_reporting(&suite, LIVE))
        .await
        .expect("tbt ran");
    for text in [&terminal, &json.to_string(), &junit] {
        assert!(
            !text.contains("hunter22-secret"),
            "a secret leaked:\n{text}"
        );
    }
    insta::assert_snapshot!("response_failure_terminal", terminal);
    insta::assert_snapshot!(
        "response_failure_json",
        pretty(&json["tests"][0]["steps"][0]["response"])
    );
    insta::assert_snapshot!("response_failure_junit", junit);
}
