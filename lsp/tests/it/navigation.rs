//! Definition, references, rename and symbols through the real server, across files, into the
//! standard library, with non-ASCII text before the names.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use serde_json::{Value, json};

const LIB: &str = "## Slow spans of a service.\nmatcher slow(svc) = span[service == svc, duration > 1s]\n\nlet limit = 3\n";
const MAIN: &str = "# «Bestellungen» 😀\nimport \"./lib.tbt\" as lib\nimport \"std/http\"\n\nlet base = \"http://127.0.0.1:8080\"\n\ntest place_order {\n  step create {\n    trigger http POST \"${base}/orders\"\n    expect response {\n      let order_id = json(\"$.id\")\n    }\n    expect no lib.slow(\"orders\")\n    expect http.server(\"/orders\") {\n      count <= lib.limit\n    }\n  }\n  step fetch {\n    trigger http GET \"${base}/orders/${create.order_id}\"\n  }\n}\n\ntest again {\n  after place_order\n  trigger http GET base\n}\n";

async fn setup() -> (tempfile::TempDir, Client, String) {
    let ws = workspace(&[("lib.tbt", LIB), ("main.tbt", MAIN)]);
    let mut c = Client::start(ws.path(), 0).await;
    let u = c.open("main.tbt", MAIN).await;
    let d = c.diagnostics_at(&u, 1).await;
    assert_eq!(
        d["diagnostics"],
        json!([]),
        "the fixture is a clean suite: {d}"
    );
    (ws, c, u)
}

/// Reads the text of a location's file: the fixture, or the file on disk.
fn text_of(ws: &std::path::Path, uri: &str) -> String {
    if uri.ends_with("/main.tbt") {
        return MAIN.to_string();
    }
    if uri.ends_with("/lib.tbt") && uri.contains(ws.file_name().unwrap().to_str().unwrap()) {
        return LIB.to_string();
    }
    let path = uri.strip_prefix("file://").unwrap();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn short(uri: &str) -> &str {
    uri.rsplit('/').next().unwrap()
}

fn draw_location(ws: &std::path::Path, uri: &str, range: &Value, label: &str) -> String {
    format!(
        "{}:\n{}",
        short(uri),
        range_picture(&text_of(ws, uri), &range["start"], &range["end"], label)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_to_definition_across_files_and_into_the_stdlib() {
    let (ws, mut c, u) = setup().await;
    let mut out = String::new();
    for (needle, label) in [
        ("slow(\"orders\")", "matcher in another file"),
        ("limit\n", "let in another file"),
        ("base}/orders\"", "module let"),
        ("order_id}", "capture of an earlier step"),
        ("place_order\n  trigger", "test named in after"),
        ("server(\"/orders\")", "stdlib matcher"),
    ] {
        let at = find(MAIN, needle);
        out.push_str(&cursor(MAIN, &at, label));
        let r = c
            .call(
                "textDocument/definition",
                json!({"textDocument": {"uri": u}, "position": at}),
            )
            .await;
        let link = &r[0];
        assert!(link.is_object(), "{needle}: {r}");
        out.push_str(&draw_location(
            ws.path(),
            link["targetUri"].as_str().unwrap(),
            &link["targetSelectionRange"],
            "definition",
        ));
        out.push('\n');
    }
    insta::assert_snapshot!(out);
    // Nothing to jump to, positions out of range: no answer, no error.
    for p in [
        find(MAIN, "trigger http POST"),
        pos(9999, 9999),
        pos(0, 9999),
    ] {
        let r = c
            .call(
                "textDocument/definition",
                json!({"textDocument": {"uri": u}, "position": p}),
            )
            .await;
        assert!(r.is_null() || r == json!([]), "{r}");
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_and_rename_across_files() {
    let (ws, mut c, u) = setup().await;
    // References of `base` (with its declaration).
    let at = find(MAIN, "base}/orders\"");
    let refs = c
        .call(
            "textDocument/references",
            json!({"textDocument": {"uri": u}, "position": at, "context": {"includeDeclaration": true}}),
        )
        .await;
    let mut out = cursor(MAIN, &at, "references of");
    for r in refs.as_array().unwrap() {
        out.push_str(&draw_location(
            ws.path(),
            r["uri"].as_str().unwrap(),
            &r["range"],
            "here",
        ));
    }
    insta::assert_snapshot!("references_base", out);
    assert_eq!(refs.as_array().unwrap().len(), 4, "{refs}");

    // Rename the matcher of lib.tbt from its use in main.tbt: both files change.
    let at = find(MAIN, "slow(\"orders\")");
    let prep = c
        .call(
            "textDocument/prepareRename",
            json!({"textDocument": {"uri": u}, "position": at}),
        )
        .await;
    assert_eq!(prep["placeholder"], "slow", "{prep}");
    let edit = c
        .call(
            "textDocument/rename",
            json!({"textDocument": {"uri": u}, "position": at, "newName": "sluggish"}),
        )
        .await;
    let changes = edit["changes"].as_object().unwrap();
    assert_eq!(changes.len(), 2, "{edit}");
    let mut out = String::new();
    for (uri, edits) in changes.iter().collect::<std::collections::BTreeMap<_, _>>() {
        out.push_str(&format!(
            "== {}\n{}",
            short(uri),
            apply_edits(&text_of(ws.path(), uri), edits)
        ));
    }
    insta::assert_snapshot!("rename_matcher", out);

    // Renaming into the standard library is refused with a reason.
    let at = find(MAIN, "server(\"/orders\")");
    let r = c
        .request(
            "textDocument/prepareRename",
            json!({"textDocument": {"uri": u}, "position": at}),
        )
        .await;
    assert!(r["error"]["message"].is_string(), "{r}");
    // A name that is not valid.
    let at = find(MAIN, "base}/orders\"");
    let r = c
        .request(
            "textDocument/rename",
            json!({"textDocument": {"uri": u}, "position": at, "newName": "1x"}),
        )
        .await;
    assert!(r["error"]["message"].is_string(), "{r}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_and_workspace_symbols() {
    let (_ws, mut c, u) = setup().await;
    let symbols = c
        .call(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": u}}),
        )
        .await;
    fn walk(text: &str, s: &Value, depth: usize, out: &mut String) {
        out.push_str(&format!(
            "{}{} (kind {}){}\n",
            "  ".repeat(depth),
            s["name"].as_str().unwrap(),
            s["kind"],
            s["detail"]
                .as_str()
                .map(|d| format!(" — {d}"))
                .unwrap_or_default()
        ));
        out.push_str(&range_picture(
            text,
            &s["selectionRange"]["start"],
            &s["selectionRange"]["end"],
            "name",
        ));
        for ch in s["children"].as_array().into_iter().flatten() {
            walk(text, ch, depth + 1, out);
        }
    }
    let mut out = String::new();
    for s in symbols.as_array().unwrap() {
        walk(MAIN, s, 0, &mut out);
    }
    insta::assert_snapshot!("document_symbols", out);

    let found = c.call("workspace/symbol", json!({"query": "slow"})).await;
    let names: Vec<String> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} in {}",
                s["name"].as_str().unwrap(),
                short(s["location"]["uri"].as_str().unwrap())
            )
        })
        .collect();
    assert!(names.contains(&"slow in lib.tbt".to_string()), "{names:?}");
    c.shutdown().await;
}
