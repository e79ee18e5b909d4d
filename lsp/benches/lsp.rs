//! The language server on a generated 5,000-line suite, through the protocol (in-memory pipes,
//! the same client as the tests): diagnostics after an edit, completion after an edit and on an
//! unchanged document, and the process's peak memory.
//!
//! `cargo bench -p tbt-lsp --bench lsp` — prints p50/p95/max per measure and VmHWM. With
//! `TBT_LSP_BIN=target/release/tbt` it also runs the edits against that `tbt lsp` process and
//! prints its own peak memory. Targets (issue 6): diagnostics after an edit ≤ 50 ms, completion
//! ≤ 20 ms p95, memory ≤ 100 MB.
#![allow(missing_docs, clippy::unwrap_used)]

// The allocator of the `tbt` binary, which `tbt lsp` runs in.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/it/common.rs"]
mod common;
#[path = "../../compiler/benches/synth.rs"]
#[allow(dead_code)]
mod synth;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const RUNS: usize = 60;

/// One file of at least `lines` lines (plus the library it imports), from the synthetic suite.
fn suite(lines: usize) -> Vec<(String, String)> {
    let mut tests = 10;
    loop {
        let files = synth::suite(1, tests);
        if files[1].1.lines().count() >= lines {
            return files;
        }
        tests += tests / 2;
    }
}

fn stats(name: &str, mut d: Vec<Duration>, target: Option<Duration>) {
    d.sort();
    let p = |q: f64| d[((d.len() as f64 - 1.0) * q).round() as usize];
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    println!(
        "{name:<48} p50 {:>7.2} ms  p95 {:>7.2} ms  max {:>7.2} ms  (n={}){}",
        ms(p(0.5)),
        ms(p(0.95)),
        ms(*d.last().unwrap()),
        d.len(),
        target.map_or(String::new(), |t| format!(
            "  target ≤ {} ms: {}",
            t.as_millis(),
            if p(0.95) <= t { "met" } else { "MISSED" }
        ))
    );
}

/// The number of items of a completion response, and whether it is marked incomplete (answered
/// from the analysis of an older text).
fn completion_items(r: &serde_json::Value) -> (usize, bool) {
    match r.as_array() {
        Some(items) => (items.len(), false),
        None => (
            r["items"].as_array().map_or(0, Vec::len),
            r["isIncomplete"] == true,
        ),
    }
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown (no /proc/self/status)".into())
}

async fn bench() {
    let files = suite(5_000);
    let ws = tempfile::tempdir().unwrap();
    for (name, text) in &files {
        let p = ws.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let (name, text) = (&files[1].0, files[1].1.clone());
    println!(
        "suite: `{name}` {} lines, {} bytes, importing `{}`",
        text.lines().count(),
        text.len(),
        files[0].0
    );
    // An edit site in the middle of the file: a line inside an expectation block.
    let mid = text.len() / 2;
    let line_start = mid + text[mid..].find("\n    expect ").unwrap() + 1;
    let edit_pos = offset_pos(&text, line_start);

    // Diagnostics after an edit: no debounce, so the figure is the compile and publish.
    let mut c = Client::start(ws.path(), 0).await;
    let u = c.open(name, &text).await;
    let d = c.diagnostics_at(&u, 1).await;
    println!(
        "diagnostics of the file: {}",
        d["diagnostics"].as_array().unwrap().len()
    );
    let mut version = 1;
    let mut times = Vec::new();
    for i in 0..RUNS {
        version += 1;
        // Alternately insert and remove a comment line.
        let change = if i % 2 == 0 {
            json!({"range": {"start": edit_pos, "end": edit_pos}, "text": "    # edited\n"})
        } else {
            let end = json!({"line": edit_pos["line"].as_u64().unwrap() + 1, "character": 0});
            json!({"range": {"start": edit_pos, "end": end}, "text": ""})
        };
        let t = Instant::now();
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": u, "version": version}, "contentChanges": [change]}),
        )
        .await;
        let _ = c.diagnostics_at(&u, version).await;
        times.push(t.elapsed());
    }
    stats(
        "diagnostics after an edit (edit → publish)",
        times,
        Some(Duration::from_millis(50)),
    );
    c.shutdown().await;

    // Completion: default settings (debounce, completion wait), so the request finds the edit
    // not yet compiled.
    let mut c = Client::start_with(ws.path(), json!({})).await;
    let u = c.open(name, &text).await;
    let _ = c.diagnostics_at(&u, 1).await;
    let mut version = 1;
    let mut after_edit = Vec::new();
    let mut unchanged = Vec::new();
    let mut items = 0;
    let mut previous = 0;
    let mut complete = Vec::new();
    let at_line = edit_pos["line"].as_u64().unwrap();
    for i in 0..RUNS {
        version += 1;
        // Type `http.` on a new line of the expectation block, then ask.
        let change = if i % 2 == 0 {
            json!({"range": {"start": edit_pos, "end": edit_pos}, "text": "    expect http.\n"})
        } else {
            let end = json!({"line": at_line + 1, "character": 0});
            json!({"range": {"start": edit_pos, "end": end}, "text": "    expect http.\n"})
        };
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": u, "version": version}, "contentChanges": [change]}),
        )
        .await;
        let at = json!({"line": at_line, "character": 16});
        let params = json!({"textDocument": {"uri": u}, "position": at});
        let t = Instant::now();
        let r = c.call("textDocument/completion", params.clone()).await;
        let took = t.elapsed();
        after_edit.push(took);
        let (n, from_previous) = completion_items(&r);
        items = n;
        if from_previous {
            previous += 1;
        } else {
            complete.push(took);
        }
        let t = Instant::now();
        let _ = c.call("textDocument/completion", params).await;
        unchanged.push(t.elapsed());
    }
    println!("completion items at `expect http.`: {items}");
    println!(
        "completions after an edit answered from the previous analysis (the new one not ready \
         within {} ms): {previous} of {RUNS}",
        tbt_lsp::COMPLETION_WAIT.as_millis()
    );
    stats(
        "completion right after an edit",
        after_edit,
        Some(Duration::from_millis(20)),
    );
    if !complete.is_empty() {
        stats("  of which complete (the new analysis)", complete, None);
    }
    stats(
        "completion, document unchanged",
        unchanged,
        Some(Duration::from_millis(20)),
    );
    c.shutdown().await;
    println!(
        "peak memory of the process (VmHWM, server + client): {}",
        peak_rss()
    );

    // The compilation alone (walk the folder, read, compile, index for the editor), no protocol.
    let doc = tbt_lsp::OpenDoc {
        uri: uri(&ws.path().join(name)).parse().unwrap(),
        version: 1,
        index: std::sync::Arc::new(tbt_lsp::position::LineIndex::new(&text)),
        text: std::sync::Arc::new(text.clone()),
    };
    let group = tbt_lsp::Group::Folder(ws.path().to_path_buf());
    let mut times = Vec::new();
    for seq in 0..RUNS {
        let t = Instant::now();
        let snap = tbt_lsp::compile_group(&group, std::slice::from_ref(&doc), None, seq as u64);
        times.push(t.elapsed());
        drop(snap);
    }
    stats("compilation of the folder (no protocol)", times, None);

    if let Ok(bin) = std::env::var("TBT_LSP_BIN") {
        process_memory(&bin, ws.path(), name, &text).await;
    }
}

/// With `TBT_LSP_BIN=path/to/tbt`: the same edits and completions against a `tbt lsp` process,
/// then that process's peak memory (server alone, real binary).
async fn process_memory(bin: &str, ws: &std::path::Path, name: &str, text: &str) {
    let mut child = tokio::process::Command::new(bin)
        .arg("lsp")
        .current_dir(ws)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut w = child.stdin.take().unwrap();
    let mut r = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut next_id = 0;
    let mut call =
        async |w: &mut tokio::process::ChildStdin, method: &str, params: serde_json::Value| {
            next_id += 1;
            let id = next_id;
            write_message(
                w,
                &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
            )
            .await;
            loop {
                let m = read_message(&mut r).await.unwrap();
                if m["id"] == id && m.get("method").is_none() {
                    return m;
                }
            }
        };
    let u = uri(&ws.join(name));
    call(
        &mut w,
        "initialize",
        json!({"processId": null, "rootUri": uri(ws), "capabilities": {}}),
    )
    .await;
    write_message(
        &mut w,
        &json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    )
    .await;
    write_message(&mut w, &json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": u, "languageId": "tbt", "version": 1, "text": text}}})).await;
    let line = text[..text.len() / 2].matches('\n').count() as u64;
    let mut times = Vec::new();
    let mut previous = 0;
    for v in 2..(2 + RUNS as i64) {
        let end = if v % 2 == 0 { line } else { line + 1 };
        let change = json!({"range": {"start": {"line": line, "character": 0}, "end": {"line": end, "character": 0}}, "text": "    expect http.\n"});
        write_message(&mut w, &json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": u, "version": v}, "contentChanges": [change]}})).await;
        let t = Instant::now();
        let r = call(
            &mut w,
            "textDocument/completion",
            json!({"textDocument": {"uri": u}, "position": {"line": line, "character": 16}}),
        )
        .await;
        times.push(t.elapsed());
        let (n, from_previous) = completion_items(&r["result"]);
        assert!(n > 0, "no completion items: {r}");
        previous += usize::from(from_previous);
    }
    stats(
        "`tbt lsp` process: completion after an edit",
        times,
        Some(Duration::from_millis(20)),
    );
    println!("  of which answered from the previous analysis: {previous} of {RUNS}");
    // A last request after the debounce has passed, so the last diagnostics run is counted.
    tokio::time::sleep(tbt_lsp::DEFAULT_DIAGNOSTIC_DELAY * 2).await;
    call(
        &mut w,
        "textDocument/foldingRange",
        json!({"textDocument": {"uri": u}}),
    )
    .await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map_or("unknown".to_string(), |l| l[k.len()..].trim().to_string())
    };
    println!(
        "`{bin} lsp` after {RUNS} edits + completions: peak memory (VmHWM) {}, resident now (VmRSS) {}",
        field("VmHWM:"),
        field("VmRSS:")
    );
    call(&mut w, "shutdown", serde_json::Value::Null).await;
    write_message(&mut w, &json!({"jsonrpc": "2.0", "method": "exit"})).await;
    let _ = child.wait().await;
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run either way.
    // The runtime of `tbt lsp`; the client side of the pipes runs on it too.
    let rt = tbt_lsp::runtime().unwrap();
    rt.block_on(bench());
}
