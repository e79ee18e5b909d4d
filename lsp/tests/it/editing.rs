//! Completion, hover, signature help, semantic tokens, folding and the last-run artifact through
//! the real server. Snapshots draw the cursor under the source line.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use serde_json::{Value, json};
use tbt_compiler::ide::last_run::{AttributeSample, LastRun, SelectorCount};

const SUITE: &str = "import \"std/http\"\n\n## The gateway's base URL — «Straße» 😀\nlet base = \"http://127.0.0.1:8080\"\n\n## Slow spans.\nmatcher slow(limit) = span[duration > limit]\n\ntest order {\n  step create {\n    trigger http POST \"${base}/orders\"\n    expect response {\n      let id = json(\"$.id\")\n    }\n    expect http.server(\"/orders\") {\n      count == 1\n    }\n    expect no slow(2s)\n  }\n  step fetch {\n    trigger http GET \"${base}/orders/${create.id}\"\n  }\n}\n";

async fn open_suite(files: &[(&str, &str)]) -> (tempfile::TempDir, Client, String) {
    let ws = workspace(files);
    let mut c = Client::start(ws.path(), 0).await;
    let u = c.open("suite.tbt", SUITE).await;
    let d = c.diagnostics_at(&u, 1).await;
    assert_eq!(d["diagnostics"], json!([]), "{d}");
    (ws, c, u)
}

fn labels(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_string())
        .collect()
}

/// Completion at the end of `needle` in a variant of the suite where `needle` replaces `from`.
async fn complete(c: &mut Client, u: &str, version: i64, text: &str, at: &Value) -> Value {
    c.change_full(u, version, text).await;
    c.call(
        "textDocument/completion",
        json!({"textDocument": {"uri": u}, "position": at}),
    )
    .await
}

/// With no time to wait for the compilation of an edited text, completion answers from the
/// previous analysis: the context from the new text, names in scope from the old analysis at
/// the same place, ranges in the new text, and the list marked incomplete. Once the new text is
/// compiled, answers are complete again and see the new names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_answers_from_the_previous_analysis_while_compiling() {
    // A large second file in the folder makes each compilation of the group take hundreds of
    // milliseconds in a debug build, so the edited text is certainly still compiling when the
    // completion request (sent right after the change) is answered.
    let padding: String = (0..20_000)
        .map(|i| format!("let pad{i} = \"v{i}\" + \"w\"\n"))
        .collect();
    let ws = workspace(&[("padding.tbt", &padding)]);
    let mut c = Client::start_with(
        ws.path(),
        json!({"diagnosticDelayMs": 0, "completionWaitMs": 0}),
    )
    .await;
    let u = c.open("suite.tbt", SUITE).await;
    c.diagnostics_at(&u, 1).await;
    // A new let at the top (shifting every line) and a half-typed name in the first step.
    let text = SUITE
        .replacen("let base", "let basis = 2\nlet base", 1)
        .replacen("    expect no slow(2s)\n", "    expect no slow(ba\n", 1);
    let off = text.find("slow(ba").unwrap() + "slow(ba".len();
    let at = offset_pos(&text, off);
    let r = complete(&mut c, &u, 2, &text, &at).await;
    assert_eq!(r["isIncomplete"], true, "{r}");
    let items = &r["items"];
    let ls = labels(items);
    // `base` is in scope in the analysis of the old text; `basis` is not in it yet.
    assert!(ls.contains(&"base".to_string()), "{ls:?}");
    assert!(!ls.contains(&"basis".to_string()), "{ls:?}");
    for i in items.as_array().unwrap() {
        let range = &i["textEdit"]["range"];
        assert_eq!(range["end"], at, "{i}");
        assert_eq!(range["start"], offset_pos(&text, off - 2), "{i}");
    }
    // After the new text is compiled: a complete answer that knows `basis`.
    c.diagnostics_at(&u, 2).await;
    let r = c
        .call(
            "textDocument/completion",
            json!({"textDocument": {"uri": u}, "position": at}),
        )
        .await;
    let ls = labels(&r);
    assert!(ls.contains(&"basis".to_string()), "{ls:?}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_in_context() {
    let (_ws, mut c, u) = open_suite(&[]).await;
    let mut out = String::new();
    let cases: [(&str, &str, &str); 4] = [
        ("    expect no slow(2s)\n", "    expect no sl\n", "no sl\n"),
        (
            "      count == 1\n",
            "      count == 1\n      http.req\n",
            "http.req\n",
        ),
        ("${create.id}", "${create.}", "create.}"),
        (
            "    expect no slow(2s)\n",
            "    expect http.\n",
            "expect http.\n",
        ),
    ];
    for (v, (from, to, cursor_after)) in cases.iter().enumerate() {
        let text = SUITE.replacen(from, to, 1);
        let off =
            text.find(cursor_after).unwrap() + cursor_after.trim_end_matches(['\n', '}']).len();
        let at = offset_pos(&text, off);
        let items = complete(&mut c, &u, v as i64 + 2, &text, &at).await;
        let list = items.as_array().unwrap();
        assert!(!list.is_empty(), "no completions for `{to}`");
        // Every item's edit range ends at the cursor.
        for i in list {
            assert_eq!(i["textEdit"]["range"]["end"], at, "{i}");
        }
        out.push_str(&cursor(&text, &at, "completion"));
        let mut ls = labels(&items);
        ls.truncate(12);
        out.push_str(&format!("{}\n\n", ls.join(", ")));
    }
    insta::assert_snapshot!(out);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hover_and_signature_help() {
    let (_ws, mut c, u) = open_suite(&[]).await;
    let mut out = String::new();
    for needle in [
        "server(\"/orders\")",
        "base}/orders\"",
        "slow(2s)",
        "json(\"$.id\")",
    ] {
        let at = find(SUITE, needle);
        let h = c
            .call(
                "textDocument/hover",
                json!({"textDocument": {"uri": u}, "position": at}),
            )
            .await;
        assert_eq!(h["contents"]["kind"], "markdown", "{needle}: {h}");
        out.push_str(&range_picture(
            SUITE,
            &h["range"]["start"],
            &h["range"]["end"],
            "hover",
        ));
        out.push_str(h["contents"]["value"].as_str().unwrap());
        out.push_str("\n\n");
    }
    insta::assert_snapshot!("hover", out);

    let at = find(SUITE, "2s)");
    let s = c
        .call(
            "textDocument/signatureHelp",
            json!({"textDocument": {"uri": u}, "position": at}),
        )
        .await;
    let sig = &s["signatures"][0];
    let label = sig["label"].as_str().unwrap();
    let param = &sig["parameters"][s["activeParameter"].as_u64().unwrap() as usize]["label"];
    let (a, b) = (
        param[0].as_u64().unwrap() as usize,
        param[1].as_u64().unwrap() as usize,
    );
    let units: Vec<u16> = label.encode_utf16().collect();
    let name = String::from_utf16(&units[a..b]).unwrap();
    insta::assert_snapshot!(
        "signature",
        format!(
            "{}{label}\nactive parameter: {name}\n",
            cursor(SUITE, &at, "signature help")
        )
    );
    c.shutdown().await;
}

/// Decodes the relative token stream into `(line, start, length, type, modifiers)`.
fn decode(data: &Value, legend: &Value) -> Vec<(u32, u32, u32, String, u64)> {
    let types = legend["tokenTypes"].as_array().unwrap();
    let nums: Vec<u64> = data
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let (mut line, mut start) = (0u32, 0u32);
    nums.chunks(5)
        .map(|t| {
            if t[0] > 0 {
                line += t[0] as u32;
                start = t[1] as u32;
            } else {
                start += t[1] as u32;
            }
            (
                line,
                start,
                t[2] as u32,
                types[t[3] as usize].as_str().unwrap().to_string(),
                t[4],
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semantic_tokens_tell_attributes_variables_and_matchers_apart() {
    let ws = workspace(&[]);
    let mut c = Client::start(ws.path(), 0).await;
    let text = "# Straße 😀\nlet limit = 2s\nmatcher slow() = span[duration > limit]\ntest t {\n  trigger http GET \"é😀\"\n  expect slow()[http.route == \"/a\"]\n}\n";
    let u = c.open("t.tbt", text).await;
    let _ = c.diagnostics_at(&u, 1).await;
    let r = c
        .call(
            "textDocument/semanticTokens/full",
            json!({"textDocument": {"uri": u}}),
        )
        .await;
    let legend = c.init["capabilities"]["semanticTokensProvider"]["legend"].clone();
    let tokens = decode(&r["data"], &legend);
    let mut out = String::new();
    let lines: Vec<&str> = text.split('\n').collect();
    for (line, start, len, ty, mods) in &tokens {
        let units: Vec<u16> = lines[*line as usize].encode_utf16().collect();
        let s = String::from_utf16(&units[*start as usize..(*start + *len) as usize]).unwrap();
        out.push_str(&format!("{}:{} {s:?} {ty} {mods}\n", line + 1, start + 1));
    }
    insta::assert_snapshot!(out);
    let kind_of = |word: &str| {
        tokens
            .iter()
            .find(|(l, s, len, _, _)| {
                let units: Vec<u16> = lines[*l as usize].encode_utf16().collect();
                String::from_utf16(&units[*s as usize..(*s + *len) as usize]).unwrap() == word
            })
            .map(|t| t.3.clone())
            .unwrap_or_else(|| panic!("no token `{word}`"))
    };
    let (attr, var, matcher) = (kind_of("http.route"), kind_of("limit"), kind_of("slow"));
    assert!(
        attr != var && var != matcher && attr != matcher,
        "{attr} {var} {matcher}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folding_ranges() {
    let (_ws, mut c, u) = open_suite(&[]).await;
    let r = c
        .call(
            "textDocument/foldingRange",
            json!({"textDocument": {"uri": u}}),
        )
        .await;
    let lines: Vec<&str> = SUITE.split('\n').collect();
    let mut out = String::new();
    for f in r.as_array().unwrap() {
        let (s, e) = (
            f["startLine"].as_u64().unwrap() as usize,
            f["endLine"].as_u64().unwrap() as usize,
        );
        out.push_str(&format!(
            "{}..={} {}: {} … {}\n",
            s + 1,
            e + 1,
            f["kind"].as_str().unwrap_or("-"),
            lines[s].trim(),
            lines[e].trim()
        ));
    }
    insta::assert_snapshot!(out);
    c.shutdown().await;
}

async fn hover_text(c: &mut Client, u: &str, at: &Value) -> String {
    let h = c
        .call(
            "textDocument/hover",
            json!({"textDocument": {"uri": u}, "position": at}),
        )
        .await;
    h["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_run_feeds_hover_and_completion_and_reloads_when_it_changes() {
    let (ws, mut c, u) = open_suite(&[]).await;
    let selector = "http.server(\"/orders\")";
    let start = SUITE.find(selector).unwrap() as u32;
    let mut run = LastRun {
        version: tbt_compiler::ide::last_run::VERSION,
        finished_unix_ms: 1,
        attributes: vec![AttributeSample {
            name: "shop.cart.size".into(),
            spans: 3,
            values: vec![json!(1), json!(5)],
            more: false,
        }],
        selectors: vec![SelectorCount {
            file: "suite.tbt".into(),
            start,
            end: start + selector.len() as u32,
            step: "order.create".into(),
            matched: 7,
        }],
    };
    let artifact = ws.path().join(".tbt/last-run.json");
    std::fs::create_dir_all(artifact.parent().unwrap()).unwrap();
    std::fs::write(&artifact, run.to_json()).unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&artifact), "type": 1}]}),
    )
    .await;
    let loaded = c
        .wait_for("window/logMessage", |p| {
            p["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("last run loaded"))
        })
        .await;
    assert!(
        loaded["message"]
            .as_str()
            .unwrap()
            .contains("1 attributes, 1 selectors"),
        "{loaded}"
    );
    let at = find(SUITE, "server(\"/orders\")");
    let h = hover_text(&mut c, &u, &at).await;
    assert!(h.contains("Matched 7 spans in the last run"), "{h}");
    // Attribute names seen in the run are offered inside a selector.
    let text = SUITE.replacen("      count == 1\n", "      count == 1\n      shop.\n", 1);
    let off = text.find("shop.\n").unwrap() + "shop.".len();
    let items = complete(&mut c, &u, 2, &text, &offset_pos(&text, off)).await;
    assert!(
        labels(&items).iter().any(|l| l.contains("cart.size")),
        "{:?}",
        labels(&items)
    );
    c.change_full(&u, 3, SUITE).await;
    // A new run: the count changes once the file does.
    run.selectors[0].matched = 2;
    std::fs::write(&artifact, run.to_json()).unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&artifact), "type": 2}]}),
    )
    .await;
    let _ = c
        .wait_for("window/logMessage", |p| {
            p["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("last run loaded"))
        })
        .await;
    let h = hover_text(&mut c, &u, &at).await;
    assert!(h.contains("Matched 2 spans in the last run"), "{h}");
    // Deleted: the hover no longer claims anything about a run.
    std::fs::remove_file(&artifact).unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(&artifact), "type": 3}]}),
    )
    .await;
    let _ = c
        .wait_for("window/logMessage", |p| {
            p["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("last run of"))
        })
        .await;
    let h = hover_text(&mut c, &u, &at).await;
    assert!(!h.contains("last run"), "{h}");
    c.shutdown().await;
}
