//! The editor analysis layer (`tbt_compiler::ide`): every query on fixtures where `$0` marks the
//! cursor, with snapshots that draw the source lines and underline the cursor and the results.
//!
//! A fixture is one or more files, each starting with a `//- NAME` line; `//- NAME import` files
//! are reachable only through `import` (served by a `MemoryLoader`), the others are root files.

use std::ops::Range;
use tbt_compiler::FileId;
use tbt_compiler::compile::{MemoryLoader, Options};
use tbt_compiler::ide::{self, Analysis};

struct Fixture {
    analysis: Analysis,
    file: FileId,
    offset: usize,
}

fn fixture(text: &str) -> Fixture {
    let mut roots = Vec::new();
    let mut loader = MemoryLoader::default();
    let mut cursor: Option<(String, usize)> = None;
    let mut current: Option<(String, bool, String)> = None;
    let mut flush = |cur: Option<(String, bool, String)>,
                     roots: &mut Vec<(String, Vec<u8>)>,
                     cursor: &mut Option<(String, usize)>| {
        if let Some((name, import, mut body)) = cur {
            if let Some(at) = body.find("$0") {
                body.replace_range(at..at + 2, "");
                *cursor = Some((name.clone(), at));
            }
            if import {
                loader.files.insert(name, body);
            } else {
                roots.push((name, body.into_bytes()));
            }
        }
    };
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("//- ") {
            flush(current.take(), &mut roots, &mut cursor);
            let mut parts = h.split_whitespace();
            let name = parts.next().unwrap_or("main.tbt").to_string();
            let import = parts.next() == Some("import");
            current = Some((name, import, String::new()));
        } else {
            let cur = current.get_or_insert_with(|| ("main.tbt".into(), false, String::new()));
            cur.2.push_str(line);
            cur.2.push('\n');
        }
    }
    flush(current.take(), &mut roots, &mut cursor);
    let (cname, offset) = cursor.unwrap_or_else(|| ("main.tbt".into(), 0));
    let analysis = ide::analyze(roots, &mut loader, &Options::default());
    let file = analysis.file_id(&cname).expect("cursor file");
    Fixture {
        analysis,
        file,
        offset,
    }
}

/// Draws `range` of `file` under its source lines: `name:line` then each line and a row of `^`
/// under the covered characters (columns counted in characters).
fn draw(a: &Analysis, file: FileId, range: Range<usize>, label: &str) -> String {
    let text = a.file_text(file);
    let mut out = String::new();
    let mut line_start = text[..range.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line_no = text[..line_start].matches('\n').count() + 1;
    out.push_str(&format!("{}:{line_no}\n", a.file_name(file)));
    loop {
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |i| line_start + i);
        let line = &text[line_start..line_end];
        out.push_str(&format!("  {line}\n"));
        let from = range.start.max(line_start);
        let to = range.end.min(line_end);
        let pad = text[line_start..from].chars().count();
        let width = if range.is_empty() {
            1
        } else {
            text[from..to.max(from)].chars().count().max(1)
        };
        let mark = if range.is_empty() { "|" } else { "^" };
        out.push_str(&format!(
            "  {}{} {label}\n",
            " ".repeat(pad),
            mark.repeat(width)
        ));
        if range.end <= line_end || line_end >= text.len() {
            break;
        }
        line_start = line_end + 1;
    }
    out
}

fn cursor(f: &Fixture) -> String {
    draw(&f.analysis, f.file, f.offset..f.offset, "cursor")
}

fn definition(text: &str) -> String {
    let f = fixture(text);
    let mut out = cursor(&f);
    match f.analysis.definition(f.file, f.offset) {
        Some(d) => {
            out.push_str(&draw(&f.analysis, f.file, d.origin.clone(), "origin"));
            out.push_str(&draw(
                &f.analysis,
                d.target.file,
                d.target.range.clone(),
                &format!("definition ({:?} `{}`)", d.kind, d.name),
            ));
        }
        None => out.push_str("no definition\n"),
    }
    out
}

fn references(text: &str, decl: bool) -> String {
    let f = fixture(text);
    let mut out = cursor(&f);
    let refs = f.analysis.references(f.file, f.offset, decl);
    if refs.is_empty() {
        out.push_str("no references\n");
    }
    for r in refs {
        out.push_str(&draw(&f.analysis, r.file, r.range, "reference"));
    }
    out
}

fn rename(text: &str, new_name: &str) -> String {
    let f = fixture(text);
    let mut out = cursor(&f);
    match f.analysis.rename(f.file, f.offset, new_name) {
        Ok(edits) => {
            for fe in edits {
                for e in &fe.edits {
                    out.push_str(&draw(
                        &f.analysis,
                        fe.file,
                        e.range.clone(),
                        &format!("→ {:?}", e.new_text),
                    ));
                }
            }
        }
        Err(e) => out.push_str(&format!("refused: {e}\n")),
    }
    out
}

const SHOP: &str = r#"//- main.tbt
import "std/http"
import "./lib/shop.tbt" as shop

let base = env("SHOP_URL") ?? "http://127.0.0.1:8080"

## A server span of the orders service.
matcher orders(route) = http.server(route)[service == "orders"]

test place_order "Place an order" {
  step create {
    let qty = 2
    trigger http POST "${base}/orders" {
      json { "qty": qty }
    }
    expect response {
      let order_id = json("$.id")
    }
    expect orders("/orders") {
      count == 1
    }
  }
  step fetch {
    trigger http GET "${shop.prefix}/orders/${create.order_id}"
    expect shop.db_calls() {
      count <= 1
    }
  }
}

test history {
  after place_order
  trigger http GET "${base}/orders?id=${place_order.create.order_id}"
  expect response {
    status == 200
  }
}
//- lib/shop.tbt import
import "std/db"

let prefix = "/api"

## Database calls of the shop.
matcher db_calls() = db.query()
"#;

fn at(fixture: &str, needle: &str, nth: usize) -> String {
    // Puts `$0` before the nth occurrence (0-based) of `needle` in the main file.
    let mut idx = 0;
    let mut from = 0;
    loop {
        let i = fixture[from..].find(needle).expect("needle") + from;
        if idx == nth {
            let mut s = fixture.to_string();
            s.insert_str(i, "$0");
            return s;
        }
        idx += 1;
        from = i + needle.len();
    }
}

#[test]
fn definition_of_a_let_used_in_an_interpolation() {
    insta::assert_snapshot!(definition(&at(SHOP, "base}/orders\"", 0)));
}

#[test]
fn definition_of_a_matcher_in_the_same_file() {
    insta::assert_snapshot!(definition(&at(SHOP, "orders(\"/orders\")", 0)));
}

#[test]
fn definition_of_a_std_matcher_lands_in_the_std_module() {
    insta::assert_snapshot!(definition(&at(SHOP, "server(route)", 0)));
}

#[test]
fn definition_of_an_imported_matcher_and_let_across_files() {
    insta::assert_snapshot!(definition(&at(SHOP, "db_calls()", 0)));
    insta::assert_snapshot!(definition(&at(SHOP, "prefix}", 0)));
}

#[test]
fn definition_of_an_import_alias() {
    insta::assert_snapshot!(definition(&at(SHOP, "shop.db_calls", 0)));
}

#[test]
fn definition_of_captures_steps_and_tests() {
    insta::assert_snapshot!(definition(&at(SHOP, "order_id}\"\n    expect shop", 0)));
    insta::assert_snapshot!(definition(&at(
        SHOP,
        "create.order_id}\"\n    expect shop",
        0
    )));
    insta::assert_snapshot!(definition(&at(SHOP, "place_order.create.order_id", 0)));
    insta::assert_snapshot!(definition(&at(SHOP, "place_order\n", 0)));
}

#[test]
fn definition_of_a_step_let_and_a_matcher_parameter() {
    insta::assert_snapshot!(definition(&at(SHOP, "qty }", 0)));
    insta::assert_snapshot!(definition(&at(SHOP, "route)[", 0)));
}

#[test]
fn definition_of_a_builtin_is_none() {
    insta::assert_snapshot!(definition(&at(SHOP, "count == 1", 0)));
}

#[test]
fn references_with_and_without_declaration() {
    insta::assert_snapshot!(references(&at(SHOP, "base =", 0), true));
    insta::assert_snapshot!(references(&at(SHOP, "base =", 0), false));
}

#[test]
fn references_of_a_capture_across_tests() {
    insta::assert_snapshot!(references(&at(SHOP, "order_id = json", 0), true));
}

#[test]
fn references_of_an_imported_matcher_from_its_definition() {
    insta::assert_snapshot!(references(&at(SHOP, "db_calls() = db", 0), true));
}

#[test]
fn rename_a_step_updates_capture_paths() {
    insta::assert_snapshot!(rename(&at(SHOP, "create {", 0), "make"));
}

#[test]
fn rename_a_test_updates_after_and_captures() {
    insta::assert_snapshot!(rename(&at(SHOP, "place_order \"", 0), "checkout"));
}

#[test]
fn rename_an_imported_let_edits_both_files() {
    insta::assert_snapshot!(rename(&at(SHOP, "prefix}", 0), "api_prefix"));
}

#[test]
fn rename_an_implicit_namespace_adds_an_alias() {
    insta::assert_snapshot!(rename(&at(SHOP, "http.server", 0), "web"));
}

#[test]
fn rename_refusals() {
    let std = rename(&at(SHOP, "server(route)", 0), "srv");
    assert!(
        std.contains("refused: `server` is defined in the standard library"),
        "{std}"
    );
    let kw = rename(&at(SHOP, "base =", 0), "expect");
    assert!(kw.contains("refused: `expect` is a keyword"), "{kw}");
    let bad = rename(&at(SHOP, "base =", 0), "1x");
    assert!(bad.contains("is not a valid name"), "{bad}");
    let clash = rename(&at(SHOP, "base =", 0), "orders");
    assert!(
        clash.contains("refused: a matcher named `orders` already exists (main.tbt:7)"),
        "{clash}"
    );
    let step = rename(&at(SHOP, "fetch {", 0), "create");
    assert!(
        step.contains("refused: a step named `create` already exists"),
        "{step}"
    );
    let builtin = fixture(&at(SHOP, "count == 1", 0));
    let e = builtin
        .analysis
        .prepare_rename(builtin.file, builtin.offset);
    assert_eq!(
        e,
        Err("`count` is built into the language and cannot be renamed".to_string())
    );
}

#[test]
fn prepare_rename_gives_the_name_range() {
    let f = fixture(&at(SHOP, "base}/orders\"", 0));
    let (range, text) = f
        .analysis
        .prepare_rename(f.file, f.offset + 2)
        .expect("renamable");
    assert_eq!(text, "base");
    assert_eq!(&f.analysis.file_text(f.file)[range], "base");
}

#[test]
fn non_ascii_text_keeps_ranges_on_char_boundaries() {
    let text = "//- main.tbt\n# Grüße 🎉 ☕\nlet cafe = \"ünï ☕\"\ntest t \"Grüße 🎉\" {\n  trigger http GET \"http://ünï/☕/${ca$0fe}\"\n}\n";
    insta::assert_snapshot!(definition(text));
    let f = fixture(text);
    let t = f.analysis.file_text(f.file);
    for o in 0..=t.len() + 3 {
        if let Some(d) = f.analysis.definition(f.file, o) {
            assert!(t.is_char_boundary(d.origin.start) && t.is_char_boundary(d.origin.end));
        }
        for r in f.analysis.references(f.file, o, true) {
            assert!(t.is_char_boundary(r.range.start) && t.is_char_boundary(r.range.end));
        }
    }
}

fn completions(text: &str) -> String {
    let f = fixture(text);
    let mut out = cursor(&f);
    let items = f.analysis.completions(f.file, f.offset);
    let t = f.analysis.file_text(f.file);
    if let Some(first) = items.first() {
        assert!(items.iter().all(|i| i.range == first.range));
        assert!(t.is_char_boundary(first.range.start) && first.range.end == f.offset);
    }
    out.push_str(&format!("{} items\n", items.len()));
    for i in items.iter().take(40) {
        out.push_str(&format!(
            "{:?} {}{}{}{}\n",
            i.kind,
            i.label,
            if i.insert_text != i.label {
                format!(" (inserts {:?})", i.insert_text)
            } else {
                String::new()
            },
            i.detail
                .as_ref()
                .map(|d| format!(" — {d}"))
                .unwrap_or_default(),
            if i.deprecated { " [deprecated]" } else { "" },
        ));
    }
    if items.len() > 40 {
        out.push_str("…\n");
    }
    out
}

fn labels(text: &str) -> Vec<String> {
    let f = fixture(text);
    f.analysis
        .completions(f.file, f.offset)
        .into_iter()
        .map(|i| i.label)
        .collect()
}

#[test]
fn completion_of_top_level_and_body_keywords() {
    insta::assert_snapshot!(completions("//- main.tbt\nimport \"std/http\"\n$0\n"));
    insta::assert_snapshot!(completions(
        "//- main.tbt\ntest t {\n  step a {\n    trigger http GET \"http://x\"\n  }\n  $0\n}\n"
    ));
    insta::assert_snapshot!(completions(
        "//- main.tbt\ntest t {\n  step a {\n    trigger http GET \"http://x\"\n    $0\n  }\n}\n"
    ));
}

#[test]
fn completion_after_trigger_and_expect() {
    insta::assert_snapshot!(completions("//- main.tbt\ntest t {\n  trigger $0\n}\n"));
    insta::assert_snapshot!(completions(
        "//- main.tbt\ntest t {\n  trigger http $0\n}\n"
    ));
    insta::assert_snapshot!(completions(
        &at(SHOP, "shop.db_calls() {", 0)
            .replace("$0shop.db_calls() {\n      count <= 1\n    }", "$0")
    ));
    insta::assert_snapshot!(completions(
        "//- main.tbt\ntest t {\n  trigger http POST \"http://x\" {\n    $0\n  }\n}\n"
    ));
}

#[test]
fn completion_of_imported_module_members_and_std_matchers() {
    insta::assert_snapshot!(completions(
        &SHOP.replace("expect shop.db_calls()", "expect shop.$0db_calls()")
    ));
    insta::assert_snapshot!(completions(
        &SHOP.replace("http.server(route)", "http.se$0")
    ));
    // A standard module that is not imported yet.
    insta::assert_snapshot!(completions(
        "//- main.tbt\ntest t {\n  trigger http GET \"http://x\"\n  expect messaging.$0\n}\n"
    ));
}

#[test]
fn completion_of_captures_steps_and_tests() {
    insta::assert_snapshot!(completions(
        &SHOP.replace("${create.order_id}", "${create.$0}")
    ));
    insta::assert_snapshot!(completions(
        &SHOP.replace("${place_order.create.order_id}", "${place_order.$0}")
    ));
    let names = labels(&SHOP.replace("${create.order_id}", "${$0}"));
    for want in [
        "create",
        "create.order_id",
        "base",
        "shop",
        "history",
        "env",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing in {names:?}"
        );
    }
    // Captures of the step the cursor is in are not offered (not known yet).
    let names = labels(&SHOP.replace("json { \"qty\": qty }", "json { \"qty\": $0 }"));
    assert!(!names.iter().any(|n| n == "create.order_id"), "{names:?}");
    assert!(names.iter().any(|n| n == "qty"), "{names:?}");
}

#[test]
fn completion_of_attributes_in_selectors_and_blocks() {
    insta::assert_snapshot!(completions(
        "//- main.tbt\ntest t {\n  trigger http GET \"http://x\"\n  expect span[http.request.me$0]\n}\n"
    ));
    insta::assert_snapshot!(completions(
        "//- main.tbt\ntest t {\n  trigger http GET \"http://x\"\n  expect span {\n    db.sys$0\n  }\n}\n"
    ));
    let names = labels(
        "//- main.tbt\ntest t {\n  trigger http GET \"http://x\"\n  expect span {\n    $0\n  }\n}\n",
    );
    for want in ["count", "duration", "max", "let", "any", "http.route"] {
        assert!(names.iter().any(|n| n == want), "{want} missing");
    }
    // Aggregates are not offered inside a filter.
    let names =
        labels("//- main.tbt\ntest t {\n  trigger http GET \"http://x\"\n  expect span[$0]\n}\n");
    assert!(names.iter().any(|n| n == "name"));
    assert!(!names.iter().any(|n| n == "count" || n == "max"));
}

#[test]
fn completion_of_enum_values_after_equals() {
    insta::assert_snapshot!(completions(
        "//- main.tbt\ntest t {\n  trigger http GET \"http://x\"\n  expect span[http.request.method == $0]\n}\n"
    ));
    insta::assert_snapshot!(completions(
        "//- main.tbt\ntest t {\n  trigger http GET \"http://x\"\n  expect span[kind == $0]\n}\n"
    ));
}

#[test]
fn completion_in_response_block_and_nothing_in_strings_or_comments() {
    insta::assert_snapshot!(completions(
        "//- main.tbt\ntest t {\n  trigger http GET \"http://x\"\n  expect response {\n    $0\n  }\n}\n"
    ));
    assert!(labels("//- main.tbt\n# a comment $0\n").is_empty());
    assert!(labels("//- main.tbt\nlet x = \"abc $0\"\n").is_empty());
    // Inside an interpolation, names are offered.
    assert!(labels("//- main.tbt\nlet b = 1\nlet x = \"abc ${$0}\"\n").contains(&"b".to_string()));
}

#[test]
fn completion_of_after_lists_other_tests() {
    let names = labels(&SHOP.replace("after place_order", "after $0"));
    assert_eq!(names, vec!["place_order"]);
}

fn hover(text: &str) -> String {
    let f = fixture(text);
    let mut out = cursor(&f);
    match f.analysis.hover(f.file, f.offset) {
        Some(h) => {
            out.push_str(&draw(&f.analysis, f.file, h.range, "hover"));
            out.push_str(&h.markdown);
            out.push('\n');
        }
        None => out.push_str("no hover\n"),
    }
    out
}

#[test]
fn hover_on_matchers_functions_fields_attributes_and_definitions() {
    insta::assert_snapshot!(hover(&at(SHOP, "orders(\"/orders\")", 0)));
    insta::assert_snapshot!(hover(&at(SHOP, "server(route)", 0)));
    insta::assert_snapshot!(hover(&at(SHOP, "env(", 0)));
    insta::assert_snapshot!(hover(&at(SHOP, "count == 1", 0)));
    insta::assert_snapshot!(hover(&at(SHOP, "base =", 0)));
    insta::assert_snapshot!(hover(&at(SHOP, "order_id}\"\n    expect shop", 0)));
    insta::assert_snapshot!(hover(
        "//- main.tbt\ntest t {\n  trigger http GET \"http://x\"\n  expect span[http.met$0hod == \"GET\", http.route == \"/\"]\n}\n"
    ));
    insta::assert_snapshot!(hover(
        "//- main.tbt\ntest t {\n  trigger http GET \"http://x\"\n  expect span[kind == ser$0ver, payment.amount > 1]\n}\n"
    ));
}

#[test]
fn hover_shows_the_type_of_an_expression() {
    insta::assert_snapshot!(hover("//- main.tbt\nlet a = 1 +$0 2\nlet b = a\n"));
    insta::assert_snapshot!(hover(
        "//- main.tbt\nlet a = [1, 2]\nlet b = len(a) > $0 1\nlet c = b\n"
    ));
}

fn signature(text: &str) -> String {
    let f = fixture(text);
    let mut out = cursor(&f);
    match f.analysis.signature_help(f.file, f.offset) {
        Some(s) => {
            out.push_str(&format!("{}\n", s.label));
            if let Some(p) = s.parameters.get(s.active_parameter) {
                out.push_str(&format!(
                    "{}{} active parameter `{}`\n",
                    " ".repeat(p.range.start),
                    "^".repeat(p.range.len()),
                    p.label
                ));
            }
            out.push_str(&format!("{}\n", s.documentation.unwrap_or_default()));
        }
        None => out.push_str("no signature\n"),
    }
    out
}

#[test]
fn signature_help_for_functions_and_matchers() {
    insta::assert_snapshot!(signature(
        "//- main.tbt\nlet x = regex_group(\"a\", $0\nlet y = x\n"
    ));
    insta::assert_snapshot!(signature(
        &SHOP.replace("expect orders(\"/orders\")", "expect orders($0\"/orders\")")
    ));
    insta::assert_snapshot!(signature(
        &SHOP.replace("http.server(route)", "http.server(route$0)")
    ));
    assert!(signature("//- main.tbt\nlet x = len(\"a(b, $0\")\n").contains("no signature"));
}

fn outline(syms: &[ide::DocumentSymbol], depth: usize, out: &mut String) {
    for s in syms {
        out.push_str(&format!(
            "{}{:?} {}{} @{:?} name@{:?}\n",
            "  ".repeat(depth),
            s.kind,
            s.name,
            s.detail
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default(),
            s.range,
            s.selection_range
        ));
        outline(&s.children, depth + 1, out);
    }
}

#[test]
fn document_and_workspace_symbols() {
    let f = fixture(SHOP);
    let mut out = String::new();
    outline(&f.analysis.document_symbols(f.file), 0, &mut out);
    insta::assert_snapshot!(out);
    let ws = f.analysis.workspace_symbols("ord");
    let mut out = String::new();
    for s in ws {
        out.push_str(&format!(
            "{:?} {} in {} at {}:{:?}\n",
            s.kind,
            s.name,
            s.container.unwrap_or_default(),
            s.location.path,
            s.location.range
        ));
    }
    insta::assert_snapshot!(out);
    let std = f.analysis.workspace_symbols("server_errors");
    assert_eq!(
        std.first().map(|s| s.location.path.as_str()),
        Some("std/http")
    );
}

fn tokens(text: &str) -> String {
    let f = fixture(text);
    let t = f.analysis.file_text(f.file);
    let toks = f.analysis.semantic_tokens(f.file);
    for w in toks.windows(2) {
        assert!(w[0].range.end <= w[1].range.start, "overlap {w:?}");
    }
    let mut out = String::new();
    for tok in toks {
        assert!(!t[tok.range.clone()].contains('\n'));
        let mut mods = Vec::new();
        for (i, n) in ide::modifiers::NAMES.iter().enumerate() {
            if tok.modifiers & (1 << i) != 0 {
                mods.push(*n);
            }
        }
        out.push_str(&format!(
            "{:?} {:?}{}\n",
            &t[tok.range],
            tok.kind,
            if mods.is_empty() {
                String::new()
            } else {
                format!(" [{}]", mods.join(", "))
            }
        ));
    }
    out
}

#[test]
fn semantic_tokens_tell_attributes_variables_and_matchers_apart() {
    insta::assert_snapshot!(tokens(
        "//- main.tbt\nimport \"std/http\"\n## doc\nlet base = \"http://x\"\nmatcher m(r) = http.server(r)[http.method == \"GET\"]\ntest t {\n  step a {\n    trigger http GET \"${base}/a\"\n    expect m(\"/\") {\n      count == 1\n      duration < 20ms\n      let id = payment.id\n    }\n  }\n  step b {\n    trigger http GET \"\"\"\n      ${a.id}\n    \"\"\"\n    expect span[kind == server, status != error]\n  }\n}\n"
    ));
}

#[test]
fn folding_ranges_of_blocks_strings_comments_and_imports() {
    let text = "//- main.tbt\nimport \"std/http\"\nimport \"std/db\"\n# one\n# two\nlet x = \"\"\"\n  a\n\"\"\"\ntest t {\n  trigger http GET \"${x}\"\n  expect span[\n    name == \"a\"\n  ]\n}\n";
    let f = fixture(text);
    let t = f.analysis.file_text(f.file);
    let mut out = String::new();
    for fold in f.analysis.folding_ranges(f.file) {
        let s = &t[fold.range.clone()];
        out.push_str(&format!("{:?}: {:?}\n", fold.kind, s));
    }
    insta::assert_snapshot!(out);
}

/// Every query at every offset (and past the end) of a file.
fn query_everywhere(a: &Analysis, file: FileId) {
    let text = a.file_text(file).to_string();
    let _ = a.document_symbols(file);
    let _ = a.workspace_symbols("o");
    let toks = a.semantic_tokens(file);
    for t in &toks {
        assert!(text.is_char_boundary(t.range.start) && text.is_char_boundary(t.range.end));
    }
    for f in a.folding_ranges(file) {
        assert!(f.range.end <= text.len());
    }
    for o in 0..=text.len() + 2 {
        let _ = a.definition(file, o);
        let _ = a.references(file, o, true);
        let _ = a.prepare_rename(file, o);
        let _ = a.rename(file, o, "renamed");
        if let Some(h) = a.hover(file, o) {
            assert!(text.is_char_boundary(h.range.start) && text.is_char_boundary(h.range.end));
        }
        let _ = a.signature_help(file, o);
        for c in a.completions(file, o) {
            assert!(c.range.end <= text.len() && text.is_char_boundary(c.range.start));
        }
    }
}

const DAMAGE_BASE: &str = "import \"std/http\"\nlet b = env(\"X\") ?? \"ü☕\"\nmatcher m(r = null) = http.server(r)[kind == server]\ntest t \"Tëst\" {\n  step a {\n    trigger http POST \"${b}/x\" { json { \"k\": [1, 2] } }\n    expect response { let id = json(\"$.id\") }\n    expect m(\"/\") >> span[http.route == \"/\"] by name { count <= 1 }\n  }\n  step c {\n    trigger http GET \"\"\"\n${a.id}\n\"\"\"\n    expect no span[status == error]\n  }\n}\n";

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: crate::tier::cases(24), ..Default::default() })]

    #[test]
    fn queries_never_panic_on_damaged_sources(
        cut in 0usize..400,
        len in 0usize..40,
        junk in proptest::sample::select(vec!["", "{", "}", "\"", "${", "[", "(", ".", "é☕", "== ", "expect ", "\n", "##"]),
    ) {
        let mut text = DAMAGE_BASE.to_string();
        let mut start = cut.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (start + len).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.replace_range(start..end, junk);
        let a = ide::analyze(
            vec![("main.tbt".into(), text.into_bytes())],
            &mut tbt_compiler::compile::NoImports,
            &Options::default(),
        );
        let file = a.file_id("main.tbt").expect("file");
        query_everywhere(&a, file);
    }
}

#[test]
fn queries_never_panic_in_std_modules_and_invalid_utf8() {
    let a = ide::analyze(
        vec![(
            "main.tbt".into(),
            b"import \"std/http\"\nlet x = \"\xff\xfe\" \x00\n".to_vec(),
        )],
        &mut tbt_compiler::compile::NoImports,
        &Options::default(),
    );
    for name in ["main.tbt", "std/http"] {
        let file = a.file_id(name).expect("file");
        query_everywhere(&a, file);
    }
    assert!(a.file_id("nope.tbt").is_none());
    assert!(a.completions(FileId(99), 3).is_empty());
    assert!(a.hover(FileId(99), 3).is_none());
    assert!(a.semantic_tokens(FileId(99)).is_empty());
}

const RUN_FIXTURE: &str = "//- main.tbt\ntest t {\n  trigger http GET \"http://x\"\n  expect span[http.route == \"/orders\"] {\n    count >= 1\n  }\n}\n";

/// A trace of two spans with a tenant attribute, as OTLP JSON.
const TRACE_JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},"scopeSpans":[{"spans":[
 {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"GET /orders","kind":2,"startTimeUnixNano":"1000","endTimeUnixNano":"2000",
  "attributes":[{"key":"http.route","value":{"stringValue":"/orders"}},{"key":"app.tenant","value":{"stringValue":"acme"}},{"key":"app.token","value":{"stringValue":"s3cret-token"}}]},
 {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b8","parentSpanId":"00f067aa0ba902b7","name":"query","kind":3,"startTimeUnixNano":"1100","endTimeUnixNano":"1900",
  "attributes":[{"key":"app.tenant","value":{"stringValue":"globex"}},{"key":"db.response.returned_rows","value":{"intValue":"3"}}]}
]}]}]}"#;

fn last_run_for(f: &Fixture) -> ide::last_run::LastRun {
    use tbt_compiler::eval::ExpectationResult;
    let c = f.analysis.compilation();
    let trace = tbt_compiler::Trace::from_otlp_json(TRACE_JSON, None).expect("trace");
    let body = c.program.step_body(0, 0);
    let expect_span = body
        .iter()
        .find(|s| matches!(s.kind, tbt_compiler::ast::StmtKind::Expect(_)))
        .expect("expect")
        .span;
    let result = ExpectationResult {
        span: expect_span,
        passed: true,
        decided: true,
        lasting: false,
        message: String::new(),
        selected: 1,
        checks: Vec::new(),
        omitted_checks: 0,
        near_misses: Vec::new(),
        groups: Vec::new(),
    };
    let mut col = ide::last_run::Collector::new();
    col.add_step(c, (0, 0), Some(&trace), &[result], &|s| {
        s.contains("s3cret")
    });
    col.finish(1)
}

#[test]
fn last_run_collects_attributes_values_and_selector_counts() {
    let f = fixture(RUN_FIXTURE);
    let run = last_run_for(&f);
    let json = run.to_json();
    assert!(!json.contains("s3cret"), "{json}");
    let back = ide::last_run::LastRun::from_json(&json).expect("round trip");
    assert_eq!(back, run);
    let tenant = run
        .attributes
        .iter()
        .find(|a| a.name == "app.tenant")
        .expect("tenant");
    assert_eq!(tenant.spans, 2);
    assert_eq!(
        tenant.values,
        vec![serde_json::Value::from("acme"), "globex".into()]
    );
    assert!(run.attributes.iter().any(|a| a.name == "service.name"));
    assert_eq!(run.selectors.len(), 1);
    let s = &run.selectors[0];
    let text = f.analysis.file_text(f.file);
    assert_eq!(
        &text[s.start as usize..s.end as usize],
        "span[http.route == \"/orders\"]"
    );
    assert_eq!(
        (s.file.as_str(), s.step.as_str(), s.matched),
        ("main.tbt", "t", 1)
    );
    let newer = json.replacen("\"version\":1", "\"version\":99", 1);
    assert!(ide::last_run::LastRun::from_json(&newer).is_err());
}

#[test]
fn last_run_feeds_hover_and_completion() {
    let f = fixture(RUN_FIXTURE);
    let run = last_run_for(&f);
    let mut f = f;
    f.analysis.set_last_run(run, "");
    let text = f.analysis.file_text(f.file).to_string();
    let at_sel = text.find("span[").expect("selector") + 2;
    let h = f.analysis.hover(f.file, at_sel).expect("hover");
    assert!(
        h.markdown.contains("Matched 1 span in the last run (t)"),
        "{}",
        h.markdown
    );
    let at_route = text.find("http.route").expect("route") + 3;
    let h = f.analysis.hover(f.file, at_route).expect("hover");
    assert!(
        h.markdown
            .contains("Last run: set on 1 span; values `\"/orders\"`"),
        "{}",
        h.markdown
    );
    // Names seen in the run complete inside a filter; their values after `==`.
    let edited = text.replace("http.route == \"/orders\"", "app.");
    let mut f2 = fixture(&format!("//- main.tbt\n{edited}"));
    f2.analysis
        .set_last_run(std::sync::Arc::new(last_run_for(&f)), "");
    let o = f2.analysis.file_text(f2.file).find("app.").expect("app") + 4;
    let items = f2.analysis.completions(f2.file, o);
    assert!(
        items
            .iter()
            .any(|i| i.label == "app.tenant" && i.insert_text == "tenant"),
        "{items:?}"
    );
    let edited = text.replace("http.route == \"/orders\"", "app.tenant == ");
    let mut f3 = fixture(&format!("//- main.tbt\n{edited}"));
    f3.analysis.set_last_run(last_run_for(&f), "");
    let o = f3.analysis.file_text(f3.file).find("== ").expect("eq") + 3;
    let labels: Vec<String> = f3
        .analysis
        .completions(f3.file, o)
        .into_iter()
        .map(|i| i.label)
        .collect();
    assert_eq!(labels, vec!["\"acme\"", "\"globex\""]);
}

#[test]
fn analysis_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Analysis>();
    let f = fixture(SHOP);
    let a = std::sync::Arc::new(f.analysis);
    let file = f.file;
    let worker = {
        let a = a.clone();
        std::thread::spawn(move || a.document_symbols(file).len())
    };
    assert_eq!(worker.join().ok(), Some(a.document_symbols(file).len()));
}

#[test]
fn definition_on_an_import_path_opens_the_module_and_references_find_the_namespace() {
    let f = fixture(&at(SHOP, "std/http", 0));
    let d = f
        .analysis
        .definition(f.file, f.offset + 2)
        .expect("definition");
    assert_eq!(
        (d.target.path.as_str(), d.target.range.clone()),
        ("std/http", 0..0)
    );
    assert!(f.analysis.is_std(d.target.file));
    let f = fixture(&at(SHOP, "./lib/shop.tbt", 0));
    let d = f
        .analysis
        .definition(f.file, f.offset + 3)
        .expect("definition");
    assert_eq!(d.target.path, "lib/shop.tbt");
    // References of an implicit namespace, from its import path.
    let f = fixture(&at(SHOP, "std/http", 0));
    let refs = f.analysis.references(f.file, f.offset, false);
    let text = f.analysis.file_text(f.file);
    assert_eq!(refs.len(), 1);
    assert_eq!(&text[refs[0].range.clone()], "http");
    let (_, placeholder) = f
        .analysis
        .prepare_rename(f.file, f.offset)
        .expect("renamable");
    assert_eq!(placeholder, "http");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: crate::tier::cases(32), ..Default::default() })]

    /// Arbitrary text made of the language's pieces (and stray non-ASCII): no query panics.
    #[test]
    fn queries_never_panic_on_arbitrary_text(
        pieces in proptest::collection::vec(proptest::sample::select(vec![
            "test ", "t ", "step ", "s ", "{", "}", "[", "]", "(", ")", "\n", "expect ", "span",
            "let ", "x", " = ", "== ", "\"", "${", "\"\"\"", "r\"", "http.route", ".", ",", ":",
            "trigger http GET \"u\"", "import \"std/http\"", "http.server(", "matcher m(a) = ",
            "# c", "## d\n", "é", "☕", "\u{feff}", "after ", "1", "2ms", "count", "by ",
        ]), 0..60),
    ) {
        let text: String = pieces.concat();
        let a = ide::analyze(
            vec![("main.tbt".into(), text.into_bytes())],
            &mut tbt_compiler::compile::NoImports,
            &Options::default(),
        );
        let file = a.file_id("main.tbt").expect("file");
        query_everywhere(&a, file);
    }
}

#[test]
fn completion_of_pseudo_classes_after_a_colon() {
    let names = labels(
        "//- main.tbt\ntest t {\n  trigger http GET \"http://x\"\n  expect span[kind == server]:f$0\n}\n",
    );
    assert_eq!(names, vec!["first", "last", "root", "nth", "not", "has"]);
}
