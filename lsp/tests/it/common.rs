//! A minimal LSP client driving the real server over in-memory pipes with JSON-RPC framing.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

/// How long any single answer may take before the test fails (a hang is a bug).
pub const DEADLINE: Duration = Duration::from_secs(60);

type Waiters = Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>>;

/// A connected client.
pub struct Client {
    out: mpsc::UnboundedSender<Value>,
    waiters: Waiters,
    next_id: i64,
    notifications: mpsc::UnboundedReceiver<Value>,
    /// Notifications read while waiting for another one.
    backlog: Vec<Value>,
    server: tokio::task::JoinHandle<()>,
    pub root: PathBuf,
    /// The `initialize` result.
    pub init: Value,
}

/// Writes one framed message.
pub async fn write_message(w: &mut (impl AsyncWriteExt + Unpin), v: &Value) {
    let body = serde_json::to_vec(v).unwrap();
    w.write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await
        .unwrap();
    w.write_all(&body).await.unwrap();
    w.flush().await.unwrap();
}

/// Reads one framed message; `None` at the end of the stream.
pub async fn read_message(r: &mut (impl AsyncBufReadExt + Unpin)) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len?];
    r.read_exact(&mut body).await.ok()?;
    Some(serde_json::from_slice(&body).expect("the server sent invalid JSON"))
}

/// A file URI for a path.
pub fn uri(path: &Path) -> String {
    let s = path.to_string_lossy();
    let mut out = String::from("file://");
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Client {
    /// Starts a server, initialises it with `root` as the workspace folder and the diagnostic
    /// delay `delay_ms`.
    /// A server on `root` with diagnostics after `delay_ms` and completion that always waits for
    /// the compilation of the current text (so tests do not depend on how fast it compiles).
    pub async fn start(root: &Path, delay_ms: u64) -> Client {
        Client::start_with(
            root,
            json!({"diagnosticDelayMs": delay_ms, "completionWaitMs": 3_600_000}),
        )
        .await
    }

    /// A server on `root` with these `initializationOptions`.
    pub async fn start_with(root: &Path, options: Value) -> Client {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let (server_read, server_write) = tokio::io::split(server_io);
        let server = tokio::spawn(tbt_lsp::serve(server_read, server_write));
        let (client_read, mut writer) = tokio::io::split(client_io);
        let waiters: Waiters = Arc::default();
        let (note_tx, notifications) = mpsc::unbounded_channel();
        // One task writes everything: our messages and the replies to the server's requests.
        let (out, mut out_rx) = mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                write_message(&mut writer, &m).await;
            }
        });
        let w = waiters.clone();
        let reply_tx = out.clone();
        tokio::spawn(async move {
            let mut r = BufReader::new(client_read);
            while let Some(msg) = read_message(&mut r).await {
                if msg.get("method").is_some() && msg.get("id").is_some() {
                    // A request from the server (registerCapability, …): accept it.
                    let _ =
                        reply_tx.send(json!({"jsonrpc": "2.0", "id": msg["id"], "result": null}));
                    let _ = note_tx.send(msg);
                } else if msg.get("method").is_some() {
                    let _ = note_tx.send(msg);
                } else if let Some(id) = msg["id"].as_i64()
                    && let Some(tx) = w.lock().unwrap().remove(&id)
                {
                    let _ = tx.send(msg);
                }
            }
        });
        let mut c = Client {
            out,
            waiters,
            next_id: 1,
            notifications,
            backlog: Vec::new(),
            server,
            root: root.to_path_buf(),
            init: Value::Null,
        };
        let init = c
            .request(
                "initialize",
                json!({
                    "processId": null,
                    "rootUri": uri(root),
                    "workspaceFolders": [{"uri": uri(root), "name": "ws"}],
                    "initializationOptions": options,
                    "capabilities": {
                        "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}},
                        "textDocument": {"publishDiagnostics": {"versionSupport": true}}
                    }
                }),
            )
            .await;
        assert!(init["result"]["capabilities"].is_object(), "{init}");
        c.init = init["result"].clone();
        c.notify("initialized", json!({})).await;
        c
    }

    async fn send(&mut self, v: &Value) {
        self.out.send(v.clone()).expect("the writer stopped");
    }

    /// Sends a request and waits for its response (the whole message, `result` or `error`).
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().insert(id, tx);
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        tokio::time::timeout(DEADLINE, rx)
            .await
            .unwrap_or_else(|_| panic!("no answer to {method} within {DEADLINE:?}"))
            .expect("the server closed the connection")
    }

    /// Sends a request and returns its `result`, failing on an error response.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let r = self.request(method, params).await;
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }

    /// Sends a notification.
    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    /// The next notification `method` matching `pred` (others are kept for later).
    pub async fn wait_for(&mut self, method: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self
            .backlog
            .iter()
            .position(|n| n["method"] == method && pred(&n["params"]))
        {
            return self.backlog.remove(i)["params"].clone();
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let n = tokio::time::timeout_at(deadline, self.notifications.recv())
                .await
                .unwrap_or_else(|_| panic!("no {method} within {DEADLINE:?}"))
                .expect("the server closed the connection");
            if n["method"] == method && pred(&n["params"]) {
                return n["params"].clone();
            }
            self.backlog.push(n);
        }
    }

    /// The next diagnostics published for `uri`.
    pub async fn diagnostics(&mut self, uri: &str) -> Value {
        let u = uri.to_string();
        self.wait_for("textDocument/publishDiagnostics", move |p| {
            p["uri"] == u.as_str()
        })
        .await
    }

    /// The diagnostics published for `uri` at `version`.
    pub async fn diagnostics_at(&mut self, uri: &str, version: i64) -> Value {
        let u = uri.to_string();
        self.wait_for("textDocument/publishDiagnostics", move |p| {
            p["uri"] == u.as_str() && p["version"] == version
        })
        .await
    }

    /// Opens `name` (relative to the root) with `text`.
    pub async fn open(&mut self, name: &str, text: &str) -> String {
        let u = uri(&self.root.join(name));
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": u, "languageId": "tbt", "version": 1, "text": text}}),
        )
        .await;
        u
    }

    /// Replaces the whole text.
    pub async fn change_full(&mut self, uri: &str, version: i64, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        )
        .await;
    }

    /// Shuts down cleanly and waits for the server to end.
    pub async fn shutdown(mut self) {
        let r = self.request("shutdown", Value::Null).await;
        assert!(r.get("error").is_none(), "{r}");
        self.notify("exit", Value::Null).await;
        tokio::time::timeout(DEADLINE, self.server)
            .await
            .expect("the server did not stop after exit")
            .expect("the server task panicked");
    }
}

/// A position `{line, character}`.
pub fn pos(line: u32, character: u32) -> Value {
    json!({"line": line, "character": character})
}

/// Where `needle` starts in `text`, as an LSP position (UTF-16).
pub fn find(text: &str, needle: &str) -> Value {
    let off = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the text"));
    offset_pos(text, off)
}

/// Line starts of `text`: lines end at `\n`, `\r\n` or a lone `\r` (the protocol's rule).
pub fn line_starts(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut starts = vec![0];
    for i in 0..b.len() {
        if b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')) {
            starts.push(i + 1);
        }
    }
    starts
}

/// The end of line `line` (before its terminator).
fn line_end(text: &str, starts: &[usize], line: usize) -> usize {
    match starts.get(line + 1) {
        None => text.len(),
        Some(&next) => {
            let mut end = next - 1;
            if text.as_bytes()[end] == b'\n'
                && end > starts[line]
                && text.as_bytes()[end - 1] == b'\r'
            {
                end -= 1;
            }
            end
        }
    }
}

/// The LSP position (UTF-16) of a byte offset (on a character boundary, not inside a `\r\n`).
pub fn offset_pos(text: &str, off: usize) -> Value {
    let starts = line_starts(text);
    let line = starts.partition_point(|&s| s <= off) - 1;
    let character: usize = text[starts[line]..off].chars().map(char::len_utf16).sum();
    pos(line as u32, character as u32)
}

/// The byte offset of an LSP position (UTF-16), for tests (positions are valid).
pub fn pos_offset(text: &str, p: &Value) -> usize {
    let starts = line_starts(text);
    let line = p["line"].as_u64().unwrap() as usize;
    let ch = p["character"].as_u64().unwrap() as usize;
    let Some(&start) = starts.get(line) else {
        return text.len();
    };
    let end = line_end(text, &starts, line);
    let mut units = 0;
    for (i, c) in text[start..end].char_indices() {
        if units >= ch {
            return start + i;
        }
        units += c.len_utf16();
    }
    end
}

/// Applies LSP text edits (non-overlapping) to `text`.
pub fn apply_edits(text: &str, edits: &Value) -> String {
    let mut edits: Vec<(usize, usize, String)> = edits
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                pos_offset(text, &e["range"]["start"]),
                pos_offset(text, &e["range"]["end"]),
                e["newText"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (a, b, t) in edits {
        out.replace_range(a..b, &t);
    }
    out
}

/// Draws the source line of `p` with a caret under its column, then `label`.
pub fn cursor(text: &str, p: &Value, label: &str) -> String {
    range_picture(text, p, p, label)
}

/// Draws the lines of a range with `^` under it (UTF-16 aware), then `label`.
pub fn range_picture(text: &str, start: &Value, end: &Value, label: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let sl = start["line"].as_u64().unwrap() as usize;
    let el = end["line"].as_u64().unwrap() as usize;
    let mut out = String::new();
    for l in sl..=el.min(lines.len().saturating_sub(1)) {
        let src = lines.get(l).copied().unwrap_or("");
        out.push_str(&format!("{:>3} | {src}\n", l + 1));
        let from = if l == sl {
            start["character"].as_u64().unwrap() as usize
        } else {
            0
        };
        let to = if l == el {
            end["character"].as_u64().unwrap() as usize
        } else {
            src.chars().map(char::len_utf16).sum()
        };
        // Columns are UTF-16 units; draw one mark per character.
        let mut col = 0;
        let mut pad = String::new();
        let mut marks = String::new();
        for c in src.chars() {
            if col < from {
                pad.push(if c == '\t' { '\t' } else { ' ' });
            } else if col < to {
                marks.push('^');
            }
            col += c.len_utf16();
        }
        if marks.is_empty() {
            marks.push('^');
        }
        out.push_str(&format!("    | {pad}{marks}"));
        if l == el {
            out.push(' ');
            out.push_str(label);
        }
        out.push('\n');
    }
    out
}

/// Renders published diagnostics, each with its range drawn under the source.
pub fn render_diagnostics(text: &str, params: &Value) -> String {
    let mut out = String::new();
    for d in params["diagnostics"].as_array().unwrap() {
        let sev = match d["severity"].as_i64() {
            Some(1) => "error",
            Some(2) => "warning",
            Some(3) => "info",
            _ => "hint",
        };
        out.push_str(&range_picture(
            text,
            &d["range"]["start"],
            &d["range"]["end"],
            &format!(
                "{sev}[{}]: {}",
                d["code"].as_str().unwrap_or("?"),
                d["message"].as_str().unwrap()
            ),
        ));
        for r in d["relatedInformation"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "    = related {}:{}: {}\n",
                r["location"]["range"]["start"]["line"].as_u64().unwrap() + 1,
                r["location"]["range"]["start"]["character"]
                    .as_u64()
                    .unwrap()
                    + 1,
                r["message"].as_str().unwrap()
            ));
        }
    }
    out
}

/// A temporary workspace with `files` written in it.
pub fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}
