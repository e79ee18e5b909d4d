//! Random edit sequences through incremental `didChange`: the server never crashes, and its
//! final diagnostics are exactly the compiler's `tbt check` diagnostics of the final text.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

const START: &str = "import \"std/http\"\n\nlet base = \"http://127.0.0.1:8080\" # café\n\ntest t \"Tëst 😀\" {\n  step a {\n    trigger http GET \"${base}/x\"\n    expect response {\n      status == 200\n      let id = json(\"$.id\")\n    }\n    expect http.server(\"/x\") {\n      count == 1\n    }\n  }\n  step b {\n    trigger http GET \"${base}/${a.id}\"\n  }\n}\n";

/// Pieces a person might type: tokens, broken syntax, non-ASCII, line breaks.
const PIECES: &[&str] = &[
    "",
    "=",
    "==",
    " ",
    "\n",
    "{",
    "}",
    "(",
    ")",
    "\"",
    "${",
    "😀",
    "é",
    "ß",
    "let x = 1\n",
    "span[",
    "]",
    "http.method",
    "test u {\n",
    "step",
    "expect ",
    "count",
    "bsae",
    "# ",
    "trigger http GET base\n",
    "import \"std/db\"\n",
    ".",
    ",",
    "\r\n",
    "\t",
    "ü\u{301}",
];

#[derive(Clone, Debug)]
struct Edit {
    /// Start and end as fractions of the text's characters (end may precede start).
    a: f64,
    b: f64,
    text: String,
}

fn edit() -> impl Strategy<Value = Edit> {
    (
        0.0..=1.0f64,
        0.0..=0.05f64,
        proptest::collection::vec(0..PIECES.len(), 0..3),
    )
        .prop_map(|(a, len, pieces)| Edit {
            a,
            b: (a + len).min(1.0),
            text: pieces.into_iter().map(|i| PIECES[i]).collect(),
        })
}

/// The byte offset of the character at fraction `f` of the text.
fn char_offset(text: &str, f: f64) -> usize {
    let n = text.chars().count();
    let i = ((n as f64) * f).round() as usize;
    text.char_indices().nth(i).map_or(text.len(), |(o, _)| o)
}

/// The compiler's diagnostics of `text` as a lone file, as `[start, end, code, severity,
/// message]` (byte offsets: the texts hold every kind of line ending).
fn compiler_check(text: &str) -> Vec<Value> {
    let c = tbt_compiler::compile::compile(
        vec![("a.tbt".to_string(), text.as_bytes().to_vec())],
        &mut tbt_compiler::compile::NoImports,
        &Default::default(),
    );
    c.diagnostics
        .iter()
        .map(|d| {
            let r = d.span().range();
            // An offset between `\r` and `\n` has no LSP position: it is the end of its line.
            let b = text.as_bytes();
            let fix = |o: usize| {
                if o > 0 && b.get(o) == Some(&b'\n') && b[o - 1] == b'\r' {
                    o - 1
                } else {
                    o
                }
            };
            json!([
                fix(r.start),
                fix(r.end),
                d.code.as_str(),
                d.severity.as_str(),
                d.message
            ])
        })
        .collect()
}

fn published(text: &str, params: &Value) -> Vec<Value> {
    params["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let sev = match d["severity"].as_i64() {
                Some(1) => "error",
                Some(2) => "warning",
                _ => "note",
            };
            json!([
                pos_offset(text, &d["range"]["start"]),
                pos_offset(text, &d["range"]["end"]),
                d["code"],
                sev,
                d["message"].as_str().unwrap().split('\n').next().unwrap()
            ])
        })
        .collect()
}

async fn run_case(batches: Vec<Vec<Edit>>) {
    let ws = workspace(&[]);
    let mut c = Client::start(ws.path(), 0).await;
    let u = c.open("a.tbt", START).await;
    let mut text = START.to_string();
    let mut version = 1;
    for batch in batches {
        version += 1;
        let mut changes = Vec::new();
        for e in batch {
            let (x, y) = (char_offset(&text, e.a), char_offset(&text, e.b));
            let (x, y) = (x.min(y), x.max(y));
            // Never inside a `\r\n` (not a position the protocol can name).
            let inside_crlf = |o: usize| {
                o > 0
                    && text.as_bytes().get(o - 1) == Some(&b'\r')
                    && text.as_bytes().get(o) == Some(&b'\n')
            };
            let x = if inside_crlf(x) { x - 1 } else { x };
            let y = if inside_crlf(y) { y + 1 } else { y };
            changes.push(json!({
                "range": {"start": offset_pos(&text, x), "end": offset_pos(&text, y)},
                "text": e.text
            }));
            text.replace_range(x..y, &e.text);
        }
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": u, "version": version}, "contentChanges": changes}),
        )
        .await;
    }
    let d = c.diagnostics_at(&u, version).await;
    // The server's text is the client's: formatting answers for exactly this text.
    let fmt = c
        .call(
            "textDocument/formatting",
            json!({"textDocument": {"uri": u}, "options": {"tabSize": 2, "insertSpaces": true}}),
        )
        .await;
    match tbt_compiler::format::format(&text) {
        Ok(f) => assert_eq!(apply_edits(&text, &fmt), f),
        Err(_) => assert_eq!(fmt, Value::Null),
    }
    assert_eq!(published(&text, &d), compiler_check(&text), "text:\n{text}");
    c.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::tier::cases(48), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_end_with_the_compilers_diagnostics(
        batches in proptest::collection::vec(proptest::collection::vec(edit(), 1..4), 1..8)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_case(batches));
    }
}
