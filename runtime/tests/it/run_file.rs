//! `tbt run --traces FILE`: recorded traces (OTLP JSON, as the Collector's file exporter writes)
//! checked by `trigger trace` tests, through the real binary: verdicts, exit codes, failure
//! reports with actual values and near misses, `after` and skips, `--test`, `--shard`, `--var`,
//! JSON and JUnit reports, and secrets that never appear in any output.

use std::path::Path;
use std::process::{Command, Output};

const TRACE_ID: &str = "abababababababababababababababab";

fn fixture() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../compiler/tests/traces/shop.json"),
    )
    .expect("fixture")
}

fn tbt(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("tbt runs")
}

fn setup(suite: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(d.path().join("traces.json"), fixture()).expect("write");
    std::fs::write(d.path().join("suite.tbt"), suite).expect("write");
    d
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_passing_suite_exits_0() {
    let suite = format!(
        r#"test checkout {{
  trigger trace "{TRACE_ID}"
  expect span[name == "charge card"] {{
    payment.amount == 99.99
    service == "payments"
  }}
  expect span[name == "SELECT orders"] before span[name == "charge card"]
  expect span[name == "consume shipping"] after span[name == "publish shipping"]
  expect trace {{
    span_count == 9
  }}
}}
"#
    );
    let d = setup(&suite);
    let o = tbt(
        d.path(),
        &[
            "run",
            "--traces",
            "traces.json",
            "--color",
            "never",
            "suite.tbt",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        err(&o).contains("1 passed, 0 failed, 0 errors, 0 skipped"),
        "{}",
        err(&o)
    );
}

#[test]
fn failures_point_at_the_expectation_with_actual_values() {
    let suite = format!(
        r#"import "std/db"

secret let token = "hunter22-secret"

test checkout {{
  trigger trace "{TRACE_ID}"
  expect span[service == "orders", kind == server] >> db.query() by db.query.text {{
    count <= 1
  }}
  expect span[name == "charge kard"]
}}

test later {{
  after checkout
  trigger trace "{TRACE_ID}"
  expect span[name == token]
}}
"#
    );
    let d = setup(&suite);
    let o = tbt(
        d.path(),
        &[
            "run",
            "--traces",
            "traces.json",
            "--color",
            "never",
            "--report",
            "junit=out/j.xml",
            "--report",
            "json=r.json",
            "suite.tbt",
        ],
    );
    // The junit path's directory does not exist: an infrastructure error after the run.
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    let o = tbt(
        d.path(),
        &[
            "run",
            "--traces",
            "traces.json",
            "--color",
            "never",
            "--report",
            "junit=j.xml",
            "--report",
            "json=r.json",
            "suite.tbt",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let e = err(&o);
    assert!(
        e.contains("error[TBT0401]: expectation failed in `checkout`"),
        "{e}"
    );
    assert!(e.contains("┌─ suite.tbt:7:3"), "{e}");
    assert!(
        e.contains(
            "group \"SELECT * FROM orders WHERE id = ?\" (2 spans): `count <= 1` (actual 2) failed"
        ),
        "N+1 caught: {e}"
    );
    assert!(e.contains("near miss: \"charge card\" (payments, 0000000000000005) fails only `name == \"charge kard\"`"), "{e}");
    assert!(e.contains(&format!("trace id: {TRACE_ID}")), "{e}");
    assert!(e.contains("skipped later"), "{e}");
    assert!(e.contains("0 passed, 1 failed, 0 errors, 1 skipped"), "{e}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("r.json")).expect("json report"),
    )
    .expect("valid json");
    assert_eq!(json["summary"]["failed"], 1);
    assert_eq!(json["tests"][0]["steps"][0]["trace_id"], TRACE_ID);
    assert_eq!(
        json["tests"][0]["steps"][0]["expectations"][0]["groups"][0]["passed"],
        false
    );
    assert_eq!(json["tests"][1]["status"], "skipped");
    let junit = std::fs::read_to_string(d.path().join("j.xml")).expect("junit report");
    assert!(
        junit.contains(
            "<testsuite name=\"suite.tbt\" tests=\"2\" skipped=\"1\" errors=\"0\" failures=\"1\">"
        ),
        "{junit}"
    );
    assert!(
        junit.contains("<failure message=\"suite.tbt:7:3: expect span[service"),
        "{junit}"
    );
    for text in [e.as_str(), junit.as_str(), &json.to_string()] {
        assert!(!text.contains("hunter22-secret"), "a secret leaked");
    }
}

#[test]
fn secrets_in_failure_messages_are_redacted() {
    let suite = format!(
        r#"secret let token = "hunter22-secret"

test leak {{
  trigger trace "{TRACE_ID}"
  expect span[name == "charge card"] {{
    name == token
  }}
}}
"#
    );
    let d = setup(&suite);
    let o = tbt(
        d.path(),
        &[
            "run",
            "--traces",
            "traces.json",
            "--color",
            "never",
            "--report",
            "json=r.json",
            "suite.tbt",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let json = std::fs::read_to_string(d.path().join("r.json")).expect("report");
    assert!(
        !err(&o).contains("hunter22-secret") && !json.contains("hunter22-secret"),
        "{}\n{json}",
        err(&o)
    );
}

#[test]
fn a_trace_that_never_arrives_fails_with_a_clear_message() {
    let suite =
        "test missing {\n  trigger trace \"0af7651916cd43dd8448eb211c80319c\"\n  expect span\n}\n";
    let d = setup(suite);
    let o = tbt(
        d.path(),
        &[
            "run",
            "--traces",
            "traces.json",
            "--color",
            "never",
            "--timeout",
            "2s",
            "suite.tbt",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("no span of trace 0af7651916cd43dd8448eb211c80319c arrived within 2s (file `traces.json`)"), "{}", err(&o));
}

#[test]
fn test_filter_shard_and_vars() {
    let suite = format!(
        r#"let wanted = "nothing"

test a {{
  trigger trace "{TRACE_ID}"
  expect span[name == wanted]
}}

test b {{
  trigger trace "{TRACE_ID}"
  expect span
}}
"#
    );
    let d = setup(&suite);
    let o = tbt(
        d.path(),
        &["run", "--traces", "traces.json", "--test", "b", "suite.tbt"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(!err(&o).contains(" a ("), "{}", err(&o));
    let o = tbt(
        d.path(),
        &[
            "run",
            "--traces",
            "traces.json",
            "--var",
            "wanted=\"charge card\"",
            "suite.tbt",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "--var overrides the let: {}",
        err(&o)
    );
    let o = tbt(
        d.path(),
        &[
            "run",
            "--traces",
            "traces.json",
            "--var",
            "nope=1",
            "suite.tbt",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    // The two shards together run each test exactly once.
    let mut seen = Vec::new();
    for k in ["1/2", "2/2"] {
        let o = tbt(
            d.path(),
            &[
                "run",
                "--traces",
                "traces.json",
                "--var",
                "wanted=\"charge card\"",
                "--shard",
                k,
                "suite.tbt",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        for line in err(&o).lines().filter(|l| l.starts_with("ok ")) {
            seen.push(line.split_whitespace().nth(1).unwrap_or("").to_string());
        }
    }
    seen.sort();
    assert_eq!(seen, ["a", "b"]);
}

#[test]
fn bad_trace_files_and_compile_errors_are_reported() {
    let d = setup("test t {\n  trigger trace \"abc\"\n}\n");
    std::fs::write(d.path().join("garbage.json"), "{ not json").expect("write");
    let ok = format!("test t {{\n  trigger trace \"{TRACE_ID}\"\n}}\n");
    std::fs::write(d.path().join("ok.tbt"), ok).expect("write");
    let o = tbt(d.path(), &["run", "--traces", "garbage.json", "ok.tbt"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        err(&o).contains("`garbage.json` is not OTLP JSON"),
        "{}",
        err(&o)
    );
    let o = tbt(
        d.path(),
        &[
            "run",
            "--traces",
            "traces.json",
            "--color",
            "never",
            "suite.tbt",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("TBT0115"), "{}", err(&o));
}

#[test]
fn tbt_toml_sets_defaults_and_variable_sets() {
    let suite = format!(
        r#"let wanted = "nothing"

test a {{
  trigger trace "{TRACE_ID}"
  expect span[name == wanted]
}}
"#
    );
    let d = setup(&suite);
    std::fs::write(
        d.path().join("tbt.toml"),
        "[run]\ntraces = \"traces.json\"\njobs = 2\n\n[vars.payments]\nwanted = \"charge card\"\n",
    )
    .expect("write");
    // `traces` comes from the file; the variable set makes the test pass.
    let o = tbt(d.path(), &["run", "--vars", "payments", "suite.tbt"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let o = tbt(d.path(), &["run", "suite.tbt"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let o = tbt(d.path(), &["run", "--vars", "nope", "suite.tbt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("no variable set `nope` in tbt.toml (there are: payments)"),
        "{}",
        err(&o)
    );
    std::fs::write(d.path().join("tbt.toml"), "[run]\njbos = 2\n").expect("write");
    let o = tbt(d.path(), &["run", "suite.tbt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("unknown field `jbos`"), "{}", err(&o));
}

#[test]
fn verbose_lists_trace_ids_and_every_expectation() {
    let suite = format!(
        "test a {{\n  trigger trace \"{TRACE_ID}\"\n  expect span[name == \"charge card\"]\n}}\n"
    );
    let d = setup(&suite);
    let o = tbt(
        d.path(),
        &["run", "--traces", "traces.json", "--verbose", "suite.tbt"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let e = err(&o);
    assert!(e.contains(&format!("trace {TRACE_ID}, 9 spans")), "{e}");
    assert!(
        e.contains("✓ 3:3 expect span[name == \"charge card\"]"),
        "{e}"
    );
}
