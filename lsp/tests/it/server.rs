//! The real server over in-memory pipes: document sync, diagnostics, formatting, code actions,
//! code lenses, UTF-16 positions and hostile positions.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use serde_json::{Value, json};

const BROKEN_EQ: &str = "test t {\n  trigger http GET \"http://127.0.0.1:8080/\"\n  expect response {\n    status = 200\n  }\n}\n";
const DEPRECATED: &str = "test t {\n  trigger http GET \"http://127.0.0.1:8080/\"\n  expect span[http.method == \"GET\"]\n}\n";
const MISSPELT: &str =
    "let base = \"http://127.0.0.1:8080\"\n\ntest t {\n  trigger http GET \"${bsae}/orders\"\n}\n";
const GOOD: &str =
    "let base = \"http://127.0.0.1:8080\"\n\ntest t {\n  trigger http GET \"${base}/orders\"\n}\n";

/// The compiler's own diagnostics of `text` as file `name` in an otherwise empty folder,
/// converted the way `tbt check --format json` reports them (line, column in characters, code,
/// severity, message).
fn compiler_check(name: &str, text: &str, options: &tbt_compiler::compile::Options) -> Vec<Value> {
    let c = tbt_compiler::compile::compile(
        vec![(name.to_string(), text.as_bytes().to_vec())],
        &mut tbt_compiler::compile::NoImports,
        options,
    );
    c.diagnostics
        .iter()
        .map(|d| {
            let j = tbt_compiler::render::to_json(&c.sources, d);
            json!([
                j["line"],
                j["column"],
                j["code"],
                j["severity"],
                j["message"]
            ])
        })
        .collect()
}

/// The published diagnostics in the same shape as [`compiler_check`] (the message without the
/// note/help lines the server appends).
fn published_as_check(text: &str, params: &Value) -> Vec<Value> {
    params["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let start = pos_offset(text, &d["range"]["start"]);
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let column = text[line_start..start].chars().count() + 1;
            let sev = match d["severity"].as_i64() {
                Some(1) => "error",
                Some(2) => "warning",
                _ => "note",
            };
            let msg = d["message"].as_str().unwrap().split('\n').next().unwrap();
            json!([
                d["range"]["start"]["line"].as_u64().unwrap() + 1,
                column,
                d["code"],
                sev,
                msg
            ])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_on_open_match_the_compiler_and_clear_on_close() {
    let ws = workspace(&[]);
    let mut c = Client::start(ws.path(), 0).await;
    let text = format!(
        "{MISSPELT}\n{}",
        "test u {\n  trigger http GET \"x\"\n  expect span[http.method == \"GET\"]\n}\n"
    );
    let u = c.open("a.tbt", &text).await;
    let d = c.diagnostics_at(&u, 1).await;
    insta::assert_snapshot!(render_diagnostics(&text, &d));
    assert_eq!(
        published_as_check(&text, &d),
        compiler_check("a.tbt", &text, &Default::default())
    );
    assert!(
        d["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["source"] == "tbt")
    );
    c.notify("textDocument/didClose", json!({"textDocument": {"uri": u}}))
        .await;
    let cleared = c
        .wait_for("textDocument/publishDiagnostics", |p| {
            p["diagnostics"].as_array().is_some_and(Vec::is_empty)
        })
        .await;
    assert_eq!(cleared["uri"], u.as_str());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_are_debounced_and_versioned() {
    let ws = workspace(&[]);
    // A long quiet time: the burst below is sent well within it.
    let mut c = Client::start(ws.path(), 400).await;
    let u = c.open("a.tbt", GOOD).await;
    let first = c.diagnostics(&u).await;
    assert_eq!(first["version"], 1);
    assert_eq!(first["diagnostics"], json!([]));
    for v in 2..=6 {
        let text = if v % 2 == 0 { MISSPELT } else { GOOD };
        c.change_full(&u, v, text).await;
    }
    c.change_full(&u, 7, BROKEN_EQ).await;
    // Only the last version is compiled and published.
    let next = c.diagnostics(&u).await;
    assert_eq!(next["version"], 7, "{next}");
    assert_eq!(next["diagnostics"][0]["code"], "TBT0008");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tbt_toml_check_settings_apply() {
    let ws = workspace(&[(
        "tbt.toml",
        "[check]\ndeprecated_attributes = \"error\"\nunknown_attributes = \"off\"\n",
    )]);
    let mut c = Client::start(ws.path(), 0).await;
    let u = c.open("a.tbt", DEPRECATED).await;
    let d = c.diagnostics_at(&u, 1).await;
    let options = tbt_compiler::compile::Options {
        deprecated_attributes: Some(tbt_compiler::Severity::Error),
        unknown_attributes: None,
    };
    assert_eq!(
        published_as_check(DEPRECATED, &d),
        compiler_check("a.tbt", DEPRECATED, &options)
    );
    assert_eq!(
        d["diagnostics"][0]["severity"], 1,
        "an error, as tbt.toml says: {d}"
    );
    assert_eq!(d["diagnostics"][0]["tags"], json!([2]), "tagged deprecated");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_tbt_toml_is_reported_and_defaults_apply() {
    let ws = workspace(&[("tbt.toml", "[check]\ndeprecated_attributes = \"loud\"\n")]);
    let mut c = Client::start(ws.path(), 0).await;
    let u = c.open("a.tbt", DEPRECATED).await;
    let shown = c.wait_for("window/showMessage", |_| true).await;
    assert!(
        shown["message"]
            .as_str()
            .unwrap()
            .contains("must be off, note, warning or error"),
        "{shown}"
    );
    let d = c.diagnostics_at(&u, 1).await;
    assert_eq!(d["diagnostics"][0]["severity"], 2, "the default: a warning");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_resolve_against_open_documents_and_disk() {
    let ws = workspace(&[("lib/m.tbt", "matcher slow() = span[duration > 1s]\n")]);
    let mut c = Client::start(ws.path(), 0).await;
    let main = "import \"./lib/m.tbt\" as m\n\ntest t {\n  trigger http GET \"x\"\n  expect no m.slow()\n}\n";
    let u = c.open("main.tbt", main).await;
    let d = c.diagnostics_at(&u, 1).await;
    assert_eq!(d["diagnostics"], json!([]), "{d}");
    // The open buffer of the library wins over the file on disk.
    let lib = c
        .open("lib/m.tbt", "matcher quick() = span[duration < 1s]\n")
        .await;
    let _ = c.diagnostics_at(&lib, 1).await;
    c.change_full(&u, 2, &main.replace("slow", "slw")).await;
    let d = c.diagnostics_at(&u, 2).await;
    let msgs: Vec<&str> = d["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert!(msgs.iter().any(|m| m.contains("slw")), "{d}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formatting_is_tbt_fmt_and_refuses_broken_files() {
    let ws = workspace(&[]);
    let mut c = Client::start(ws.path(), 0).await;
    let messy = "let   base=\"x\"\ntest t {trigger http GET \"${base}\"\n expect response { status==200 }}\n";
    let u = c.open("a.tbt", messy).await;
    let edits = c
        .call(
            "textDocument/formatting",
            json!({"textDocument": {"uri": u}, "options": {"tabSize": 2, "insertSpaces": true}}),
        )
        .await;
    let formatted = apply_edits(messy, &edits);
    assert_eq!(formatted, tbt_compiler::format::format(messy).unwrap());
    insta::assert_snapshot!(formatted);
    // Already formatted: no edits.
    c.change_full(&u, 2, &formatted).await;
    let none = c
        .call(
            "textDocument/formatting",
            json!({"textDocument": {"uri": u}, "options": {"tabSize": 2, "insertSpaces": true}}),
        )
        .await;
    assert_eq!(none, json!([]));
    // Broken: nothing.
    c.change_full(&u, 3, "test t {\n  expect span[ {\n").await;
    let broken = c
        .call(
            "textDocument/formatting",
            json!({"textDocument": {"uri": u}, "options": {"tabSize": 2, "insertSpaces": true}}),
        )
        .await;
    assert_eq!(broken, Value::Null);
    c.shutdown().await;
}

/// Asks for code actions at `needle` and renders them with the fixed text.
/// Each file gets its own test name: the files of one folder form one suite.
async fn actions_at(c: &mut Client, name: &str, text: &str, needle: &str) -> String {
    let stem = name.trim_end_matches(".tbt");
    let text = &text.replace("test t {", &format!("test {stem} {{"));
    let u = c.open(name, text).await;
    let d = c.diagnostics_at(&u, 1).await;
    let at = find(text, needle);
    let actions = c
        .call(
            "textDocument/codeAction",
            json!({
                "textDocument": {"uri": u},
                "range": {"start": at, "end": at},
                "context": {"diagnostics": d["diagnostics"]}
            }),
        )
        .await;
    let mut out = cursor(text, &at, "code actions here");
    for a in actions.as_array().unwrap() {
        assert_eq!(a["kind"], "quickfix");
        let edits = &a["edit"]["changes"][u.as_str()];
        let fixed = apply_edits(text, edits);
        out.push_str(&format!(
            "\n# {} (preferred: {})\n{}",
            a["title"].as_str().unwrap(),
            a["isPreferred"],
            fixed
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_actions_fix_eq_deprecated_and_misspelt_names() {
    let ws = workspace(&[]);
    let mut c = Client::start(ws.path(), 0).await;
    let eq = actions_at(&mut c, "eq.tbt", BROKEN_EQ, "= 200").await;
    insta::assert_snapshot!("action_eq", eq);
    assert!(eq.contains("status == 200"), "{eq}");
    let dep = actions_at(&mut c, "dep.tbt", DEPRECATED, "http.method").await;
    insta::assert_snapshot!("action_deprecated", dep);
    assert!(
        dep.contains("span[http.request.method == \"GET\"]"),
        "{dep}"
    );
    let name = actions_at(&mut c, "name.tbt", MISSPELT, "bsae").await;
    insta::assert_snapshot!("action_did_you_mean", name);
    assert!(name.contains("${base}/orders"), "{name}");
    // No diagnostic under the cursor: no actions.
    let none = actions_at(&mut c, "none.tbt", MISSPELT, "test none").await;
    assert!(!none.contains('#'), "{none}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_code_actions_are_not_offered() {
    let ws = workspace(&[]);
    // Diagnostics come late: the edit below is not compiled yet when actions are asked for.
    let mut c = Client::start(ws.path(), 0).await;
    let u = c.open("a.tbt", BROKEN_EQ).await;
    let d = c.diagnostics_at(&u, 1).await;
    let at = find(BROKEN_EQ, "= 200");
    // Shift every position by inserting a line; the stored fixes are for version 1.
    let shifted = format!("\n{BROKEN_EQ}");
    c.change_full(&u, 2, &shifted).await;
    let actions = c
        .call(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": u}, "range": {"start": at, "end": at}, "context": {"diagnostics": d["diagnostics"]}}),
        )
        .await;
    // Either nothing (version 2 not compiled yet) or fixes for version 2, never version 1's.
    for a in actions.as_array().into_iter().flatten() {
        let fixed = apply_edits(&shifted, &a["edit"]["changes"][u.as_str()]);
        assert!(fixed.contains("status == 200"), "{fixed}");
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_test_code_lenses() {
    let ws = workspace(&[]);
    let mut c = Client::start(ws.path(), 0).await;
    let text = "let base = \"x\"\n\ntest first {\n  trigger http GET base\n}\n\n# the second\ntest second \"Second\" {\n  step a {\n    trigger http GET base\n  }\n}\n";
    let u = c.open("suite.tbt", text).await;
    let lenses = c
        .call("textDocument/codeLens", json!({"textDocument": {"uri": u}}))
        .await;
    let path = ws.path().join("suite.tbt").to_string_lossy().into_owned();
    let mut out = String::new();
    for l in lenses.as_array().unwrap() {
        assert_eq!(l["command"]["command"], "tbt.runTest");
        assert_eq!(l["command"]["arguments"][0], path.as_str());
        out.push_str(&range_picture(
            text,
            &l["range"]["start"],
            &l["range"]["end"],
            &format!(
                "{} {}",
                l["command"]["title"].as_str().unwrap(),
                l["command"]["arguments"][1]
            ),
        ));
    }
    insta::assert_snapshot!(out);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf16_positions_with_non_ascii_text() {
    let ws = workspace(&[]);
    let mut c = Client::start(ws.path(), 0).await;
    // `é` is one UTF-16 unit (two bytes), `😀` two units (four bytes).
    let text = "# café 😀😀\nlet s = [\"😀é\", bsae]\nlet base = 1\n";
    let u = c.open("u.tbt", text).await;
    let d = c.diagnostics_at(&u, 1).await;
    insta::assert_snapshot!(render_diagnostics(text, &d));
    let unknown = d["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "TBT0101")
        .unwrap_or_else(|| panic!("{d}"))
        .clone();
    // `let s = ["` is 10 units, `😀` 2, `é` 1, `", ` 3.
    assert_eq!(unknown["range"]["start"], find(text, "bsae"));
    assert_eq!(unknown["range"]["start"], pos(1, 16));
    // An incremental edit right after the emoji lands in the right place.
    let at = find(text, "é\", bsae");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": u, "version": 2}, "contentChanges": [
            {"range": {"start": at, "end": {"line": at["line"], "character": at["character"].as_u64().unwrap() + 1}}, "text": "ü"},
            {"range": {"start": find(text, "bsae"), "end": {"line": 1, "character": 20}}, "text": "base"}
        ]}),
    )
    .await;
    let d = c.diagnostics_at(&u, 2).await;
    let edited = text.replace("😀é", "😀ü").replace("bsae", "base");
    let lsp_codes: Vec<&str> = d["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    let want = compiler_check("u.tbt", &edited, &Default::default());
    assert_eq!(published_as_check(&edited, &d), want, "{lsp_codes:?}");
    // The code action's edit also counts in UTF-16.
    let fixed = actions_at(&mut c, "v.tbt", text, "bsae").await;
    assert!(fixed.contains("[\"😀é\", base]\n"), "{fixed}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_positions_and_unknown_documents_do_not_crash() {
    let ws = workspace(&[]);
    let mut c = Client::start(ws.path(), 0).await;
    let u = c.open("a.tbt", GOOD).await;
    let _ = c.diagnostics_at(&u, 1).await;
    let far = json!({"line": 4_000_000_000u32, "character": 4_000_000_000u32});
    let mid_pair = json!({"line": 0, "character": 1});
    // Edits far out of range and reversed ranges are clamped.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": u, "version": 2}, "contentChanges": [
            {"range": {"start": far, "end": far}, "text": "\n# end"},
            {"range": {"start": {"line": 0, "character": 3}, "end": {"line": 0, "character": 0}}, "text": "# x\nlet"}
        ]}),
    )
    .await;
    let d = c.diagnostics_at(&u, 2).await;
    assert!(d["diagnostics"].is_array());
    for method in ["textDocument/codeAction"] {
        let r = c
            .request(
                method,
                json!({"textDocument": {"uri": u}, "range": {"start": far, "end": mid_pair}, "context": {"diagnostics": []}}),
            )
            .await;
        assert!(r.get("error").is_none(), "{r}");
    }
    // A document that was never opened.
    let ghost = uri(&ws.path().join("ghost.tbt"));
    for (method, params) in [
        (
            "textDocument/formatting",
            json!({"textDocument": {"uri": ghost}, "options": {"tabSize": 2, "insertSpaces": true}}),
        ),
        (
            "textDocument/codeLens",
            json!({"textDocument": {"uri": ghost}}),
        ),
        (
            "textDocument/codeAction",
            json!({"textDocument": {"uri": ghost}, "range": {"start": far, "end": far}, "context": {"diagnostics": []}}),
        ),
    ] {
        let r = c.request(method, params).await;
        assert!(r.get("error").is_none(), "{method}: {r}");
    }
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": ghost, "version": 2}, "contentChanges": [{"text": "x"}]}),
    )
    .await;
    // Still alive and answering.
    let lenses = c
        .call("textDocument/codeLens", json!({"textDocument": {"uri": u}}))
        .await;
    assert!(lenses.is_array());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_changed_on_disk_are_picked_up() {
    let ws = workspace(&[("lib.tbt", "let base = \"x\"\n")]);
    let mut c = Client::start(ws.path(), 0).await;
    // Registration of the watchers for .tbt, tbt.toml and the last-run artifact.
    let reg = c.wait_for("client/registerCapability", |_| true).await;
    let globs: Vec<&str> = reg["registrations"][0]["registerOptions"]["watchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["globPattern"].as_str().unwrap())
        .collect();
    assert_eq!(globs, ["**/*.tbt", "**/tbt.toml", "**/.tbt/last-run.json"]);
    let text = "test t {\n  trigger http GET \"x\"\n  expect span[http.method == \"GET\"]\n}\n";
    let u = c.open("a.tbt", text).await;
    let d = c.diagnostics_at(&u, 1).await;
    assert_eq!(d["diagnostics"][0]["severity"], 2);
    std::fs::write(
        ws.path().join("tbt.toml"),
        "[check]\ndeprecated_attributes = \"off\"\n",
    )
    .unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&ws.path().join("tbt.toml")), "type": 1}]}),
    )
    .await;
    let d = c
        .wait_for("textDocument/publishDiagnostics", |p| {
            p["diagnostics"].as_array().is_some_and(Vec::is_empty)
        })
        .await;
    assert_eq!(d["uri"], u.as_str());
    c.shutdown().await;
}
