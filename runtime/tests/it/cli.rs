//! The `tbt` binary as a user runs it: exit codes, output formats, file discovery.

use std::path::Path;
use std::process::{Command, Output};

fn tbt(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .expect("tbt runs")
}

fn scratch(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    dir
}

const GOOD: &str = r#"import "std/http"

let base = "http://127.0.0.1:8080"

test health {
  trigger http GET "${base}/health"
  expect response {
    status == 200
  }
  expect http.server("/health") {
    duration < 100ms
  }
}
"#;

const BAD: &str = r#"test health {
  trigger http GET "http://127.0.0.1:8080/health"
  expect span[name == "GET /health"] {
    duration < 100
  }
}
"#;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_passes_a_clean_suite_with_exit_0() {
    let d = scratch(&[("suite/health.tbt", GOOD)]);
    let o = tbt(d.path(), &["check", "suite"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("checked 1 file, 1 test: no problems"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_defaults_to_the_current_directory_recursively() {
    let d = scratch(&[
        ("a/one.tbt", GOOD),
        ("a/b/two.tbt", BAD),
        ("notes.txt", "not a suite"),
    ]);
    let o = tbt(d.path(), &["check", "--color", "never"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("a/b/two.tbt:4:14"), "{}", stderr(&o));
}

#[test]
fn check_renders_errors_like_a_compiler_and_exits_2() {
    let d = scratch(&[("bad.tbt", BAD)]);
    let o = tbt(d.path(), &["check", "--color", "never", "bad.tbt"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("error[TBT0202]: a duration cannot be compared with a plain number"),
        "{err}"
    );
    assert!(err.contains("┌─ bad.tbt:4:14"), "{err}");
    assert!(
        err.contains("help: give the number a unit, e.g. `100ms` or `100s`"),
        "{err}"
    );
    assert!(!err.contains("\u{1b}["), "no colour with --color never");
    let o = tbt(d.path(), &["check", "--color", "always", "bad.tbt"]);
    assert!(stderr(&o).contains("\u{1b}["), "colour with --color always");
}

#[test]
fn check_json_format_has_positions_codes_and_labels() {
    let d = scratch(&[("bad.tbt", BAD)]);
    let o = tbt(d.path(), &["check", "--format", "json", "bad.tbt"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json on stdout");
    let d0 = &v[0];
    assert_eq!(d0["file"], "bad.tbt");
    assert_eq!(d0["line"], 4);
    assert_eq!(d0["column"], 14);
    assert_eq!(d0["end"]["column"], 15);
    assert_eq!(d0["code"], "TBT0202");
    assert_eq!(d0["severity"], "error");
    assert!(d0["labels"].as_array().is_some_and(|l| l.len() == 3));
    assert_eq!(d0["fixes"][0]["edits"][0]["replacement"], "100ms");
}

#[test]
fn check_github_format_emits_workflow_commands() {
    let d = scratch(&[("bad.tbt", BAD)]);
    let o = tbt(d.path(), &["check", "--format", "github", "bad.tbt"]);
    let out = stdout(&o);
    assert!(out.starts_with("::error file=bad.tbt,line=4,col=14,endLine=4,endColumn=15,title=TBT0202::a duration cannot be compared"), "{out}");
    assert!(
        out.contains("%0Ahelp: "),
        "multi-line messages are escaped: {out}"
    );
}

#[test]
fn warnings_pass_unless_denied() {
    let d = scratch(&[(
        "w.tbt",
        "let unused = 1\n\ntest t {\n  trigger http GET \"http://127.0.0.1:8080/\"\n}\n",
    )]);
    let o = tbt(d.path(), &["check", "w.tbt"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("TBT0301"));
    let o = tbt(d.path(), &["check", "--deny", "warnings", "w.tbt"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn check_accepts_file_lists_from_pre_commit() {
    let d = scratch(&[
        ("a.tbt", GOOD),
        ("b.tbt", GOOD.replace("health", "ready").as_str()),
    ]);
    let o = tbt(d.path(), &["check", "a.tbt", "b.tbt", "a.tbt"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("checked 2 files, 2 tests"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_paths_are_usage_errors() {
    let d = scratch(&[]);
    let o = tbt(d.path(), &["check", "nope.tbt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read `nope.tbt`: no such file or directory"),
        "{}",
        stderr(&o)
    );
    let o = tbt(d.path(), &["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn plan_prints_text_json_and_dot() {
    let suite = r#"test create {
  step post {
    trigger http POST "http://127.0.0.1:8080/orders"
    expect response {
      let id = json("$.id")
    }
  }
  step get {
    trigger http GET "http://127.0.0.1:8080/orders/${post.id}"
    expect span[name == "GET /orders/{id}"]
  }
}

test later {
  after create
  trigger http GET "http://127.0.0.1:8080/orders"
}
"#;
    let d = scratch(&[("s.tbt", suite)]);
    let o = tbt(d.path(), &["plan", "s.tbt"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    // A trigger shows what it fires; the trace node follows the trigger.
    assert!(
        text.contains("trigger          create.get  `trigger http GET \"http://127.0.0.1:8080/orders/${post.id}\"`  <- #1 (post.id), #0"),
        "{text}"
    );
    assert!(
        text.contains("trace            create.get (1 expectation)  <- #2"),
        "{text}"
    );
    assert!(
        text.contains("trigger          later  `trigger http GET"),
        "{text}"
    );
    let o = tbt(d.path(), &["plan", "--format", "json", "s.tbt"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        v["nodes"][0]["fires"],
        "trigger http POST \"http://127.0.0.1:8080/orders\""
    );
    assert_eq!(v["nodes"][3]["kind"], "trace");
    assert!(
        v["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .any(|e| e["kind"] == "capture" && e["name"] == "post.id")
    );
    assert_eq!(v["nodes"][0]["source"]["line"], 3);
    let o = tbt(d.path(), &["plan", "--format", "dot", "s.tbt"]);
    let dot = stdout(&o);
    assert!(dot.starts_with("digraph plan {"), "{dot}");
    assert!(dot.contains("[style=dashed, label=\"post.id\"]"), "{dot}");
    // Graphviz must accept it. CI installs graphviz; elsewhere say why this part is skipped.
    match Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(dot.as_bytes())
                .expect("write dot");
            let out = child.wait_with_output().expect("dot runs");
            assert!(
                out.status.success(),
                "graphviz rejected the plan: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
        }
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping Graphviz rendering: `dot` is not installed")
        }
        Err(e) => panic!("CI must have Graphviz installed: {e}"),
    }
}

#[test]
fn plan_refuses_a_suite_with_errors() {
    let d = scratch(&[("bad.tbt", BAD)]);
    let o = tbt(d.path(), &["plan", "bad.tbt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
}

#[test]
fn fmt_check_lists_files_that_would_change_and_fmt_rewrites_them() {
    let messy = "test   t {\n    trigger http GET \"http://127.0.0.1:8080/\"   # why\n  expect span[name==\"GET /\"]{count==1}\n}\n";
    let d = scratch(&[("a.tbt", messy), ("ok.tbt", GOOD)]);
    let o = tbt(d.path(), &["fmt", "--check", "."]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "a.tbt\n");
    assert_eq!(
        std::fs::read_to_string(d.path().join("a.tbt")).expect("read"),
        messy,
        "--check changes nothing"
    );
    let o = tbt(d.path(), &["fmt", "."]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let formatted = std::fs::read_to_string(d.path().join("a.tbt")).expect("read");
    assert_eq!(
        formatted,
        "test t {\n  trigger http GET \"http://127.0.0.1:8080/\" # why\n  expect span[name == \"GET /\"] {\n    count == 1\n  }\n}\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join("ok.tbt")).expect("read"),
        GOOD,
        "formatted files are untouched"
    );
    let o = tbt(d.path(), &["fmt", "--check", "."]);
    assert_eq!(o.status.code(), Some(0), "idempotent: {}", stdout(&o));
}

#[test]
fn fmt_leaves_a_file_with_syntax_errors_untouched() {
    let broken = "test t {\n  trigger http GET \"http://127.0.0.1:8080/\n  expect span[\n}\n";
    let d = scratch(&[("broken.tbt", broken)]);
    let o = tbt(d.path(), &["fmt", "--color", "never", "broken.tbt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("error[TBT0002]"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(d.path().join("broken.tbt")).expect("read"),
        broken
    );
}

#[test]
fn deprecated_attribute_severity_is_configurable() {
    let src = "test t {\n  trigger http GET \"http://127.0.0.1:8080/\"\n  expect span[http.method == \"GET\"]\n}\n";
    let d = scratch(&[("old.tbt", src)]);
    let o = tbt(d.path(), &["check", "--color", "never", "old.tbt"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("warning[TBT0305]"), "{}", stderr(&o));
    let o = tbt(
        d.path(),
        &[
            "check",
            "--color",
            "never",
            "--deprecated-attributes",
            "off",
            "old.tbt",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(!stderr(&o).contains("TBT0305"), "{}", stderr(&o));
    let o = tbt(
        d.path(),
        &[
            "check",
            "--color",
            "never",
            "--deprecated-attributes",
            "error",
            "old.tbt",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("error[TBT0305]"), "{}", stderr(&o));
}
