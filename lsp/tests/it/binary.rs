//! The real `tbt` binary: `tbt check --format json` agrees with the server's diagnostics, and
//! `tbt lsp` speaks the protocol on stdio (a real editor uses it in `slow::neovim`).
//!
//! The binary is the one `cargo test --workspace` builds next to this test
//! (`target/debug/tbt`). When it or Neovim is missing, the test says so and passes locally;
//! with `CI=true` it fails instead.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (locally) or fails (in CI) with `reason`.
pub fn missing(reason: &str) {
    assert!(!ci(), "required in CI: {reason}");
    eprintln!("SKIPPED: {reason}");
}

/// `target/debug/tbt`, next to the directory of this test executable.
pub fn tbt_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?;
    let bin = dir.join(format!("tbt{}", std::env::consts::EXE_SUFFIX));
    bin.is_file().then_some(bin)
}

const LIB: &str = "matcher slow() = span[duration > 1s]\nlet unused = 1\n";
const MAIN: &str = "import \"./lib/m.tbt\" as m\nimport \"std/htp\"\n\nlet base = \"http://127.0.0.1:8080\" # «café» 😀\n\ntest t {\n  trigger http GET \"${bsae}/x\"\n  expect span[http.method == \"GET\", http.route = \"/x\"]\n  expect no m.slow()\n}\n";
const OTHER: &str = "test t {\n  trigger http GET \"x\"\n  expect span[htp.route == \"/\"]\n}\n";

/// The fields of `tbt check --format json` both sides must agree on.
fn check_shape(d: &Value) -> Value {
    json!([
        d["file"],
        d["line"],
        d["column"],
        d["end"],
        d["code"],
        d["severity"],
        d["message"],
        d["help"],
        d["notes"]
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_equal_tbt_check_json_output() {
    let Some(bin) = tbt_binary() else {
        return missing("the `tbt` binary is not built (run `cargo test --workspace`)");
    };
    let ws = workspace(&[
        ("lib/m.tbt", LIB),
        ("main.tbt", MAIN),
        ("sub/other.tbt", OTHER),
        ("tbt.toml", "[check]\ndeprecated_attributes = \"error\"\n"),
    ]);
    let out = tokio::process::Command::new(&bin)
        .args(["check", "--format", "json"])
        .current_dir(ws.path())
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(cli.len() >= 5, "{cli:?}");

    let mut c = Client::start(ws.path(), 0).await;
    let mut lsp = Vec::new();
    for (name, text) in [
        ("main.tbt", MAIN),
        ("lib/m.tbt", LIB),
        ("sub/other.tbt", OTHER),
    ] {
        let u = c.open(name, text).await;
        let d = c.diagnostics_at(&u, 1).await;
        for d in d["diagnostics"].as_array().unwrap() {
            // LSP → the CLI's one-based lines and character columns; message lines → fields.
            let to_human = |p: &Value| {
                let off = pos_offset(text, p);
                let ls = text[..off].rfind('\n').map_or(0, |i| i + 1);
                (
                    p["line"].as_u64().unwrap() + 1,
                    text[ls..off].chars().count() + 1,
                )
            };
            let (line, column) = to_human(&d["range"]["start"]);
            let (end_line, end_column) = to_human(&d["range"]["end"]);
            let mut lines = d["message"].as_str().unwrap().split('\n');
            let message = lines.next().unwrap();
            let (mut notes, mut help) = (Vec::new(), Vec::new());
            for l in lines {
                if let Some(n) = l.strip_prefix("note: ") {
                    notes.push(n);
                } else if let Some(h) = l.strip_prefix("help: ") {
                    help.push(h);
                }
            }
            let sev = match d["severity"].as_i64() {
                Some(1) => "error",
                Some(2) => "warning",
                _ => "note",
            };
            lsp.push(json!([name, line, column, {"line": end_line, "column": end_column}, d["code"], sev, message, help, notes]));
        }
    }
    let mut cli: Vec<Value> = cli.iter().map(check_shape).collect();
    cli.sort_by_key(|v| v.to_string());
    lsp.sort_by_key(|v| v.to_string());
    assert_eq!(lsp, cli);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tbt_lsp_serves_on_stdio_and_exits_on_exit() {
    let Some(bin) = tbt_binary() else {
        return missing("the `tbt` binary is not built (run `cargo test --workspace`)");
    };
    let ws = workspace(&[]);
    let mut child = tokio::process::Command::new(&bin)
        .arg("lsp")
        .current_dir(ws.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let u = uri(&ws.path().join("a.tbt"));
    let deadline = tokio::time::Instant::now() + DEADLINE;
    write_message(
        &mut stdin,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": null, "rootUri": uri(ws.path()), "capabilities": {}}}),
    )
    .await;
    // Nothing may be sent before the answer to `initialize`.
    let init = tokio::time::timeout_at(deadline, read_message(&mut stdout))
        .await
        .expect("no answer to initialize in time")
        .expect("`tbt lsp` closed its output");
    write_message(
        &mut stdin,
        &json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    )
    .await;
    write_message(
        &mut stdin,
        &json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": u, "languageId": "tbt", "version": 1, "text": "test t {\n  expect response { status = 200 }\n}\n"}}}),
    )
    .await;
    let diags = loop {
        let m = tokio::time::timeout_at(deadline, read_message(&mut stdout))
            .await
            .expect("no diagnostics from `tbt lsp` in time")
            .expect("`tbt lsp` closed its output");
        if m["method"] == "textDocument/publishDiagnostics" {
            break m;
        }
    };
    assert_eq!(init["result"]["serverInfo"]["name"], "tbt");
    let codes: Vec<&str> = diags["params"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"TBT0008"), "{diags}");
    write_message(
        &mut stdin,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}),
    )
    .await;
    write_message(&mut stdin, &json!({"jsonrpc": "2.0", "method": "exit"})).await;
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("`tbt lsp` did not exit after `exit`")
        .unwrap();
    assert!(status.success(), "{status}");
}
