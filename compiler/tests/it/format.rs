//! Formatter tests: snapshots of messy inputs, refusal on syntax errors, and the two promises
//! checked over every `.tbt` file of the repository and over generated files — formatting is
//! idempotent, keeps every comment and does not change the tree.

use crate::common::render_diagnostics;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use tbt_compiler::format::format;
use tbt_compiler::{Code, FileId, Severity, parser};

/// Formats `src`, which must format, in the "SOURCE / FORMATTED" snapshot layout.
fn snapshot(src: &str) -> String {
    let out = match format(src) {
        Ok(out) => out,
        Err(d) => panic!("does not format:\n{}", render_diagnostics(src, &d)),
    };
    check_promises(src, &out);
    let mut s = String::from("----- SOURCE\n");
    s.push_str(src);
    if !src.ends_with('\n') {
        s.push('\n');
    }
    s.push_str("----- FORMATTED\n");
    s.push_str(&out);
    s
}

/// The tree without positions: equal for two texts that differ only in layout.
fn shape(src: &str) -> String {
    let parsed = parser::parse(FileId(0), src);
    let errors: Vec<_> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .cloned()
        .collect();
    assert!(
        errors.is_empty(),
        "errors in:\n{src}\n{}",
        render_diagnostics(src, &errors)
    );
    let debug = format!("{:?}", parsed.file);
    let spans = regex::Regex::new(r"Span \{ file: FileId\(\d+\), start: \d+, end: \d+ \}")
        .expect("valid regex");
    spans.replace_all(&debug, "Span").into_owned()
}

/// The texts of all comments, trailing blanks removed, sorted.
fn comment_texts(src: &str) -> Vec<String> {
    let parsed = parser::parse(FileId(0), src);
    let mut v: Vec<String> = parsed
        .file
        .comments
        .iter()
        .map(|c| src[c.span.range()].trim_end().to_string())
        .collect();
    v.sort();
    v
}

/// `out = format(src)`: idempotent, same comments, same tree, one final newline.
fn check_promises(src: &str, out: &str) {
    let again = format(out).unwrap_or_else(|d| {
        panic!(
            "formatted text does not parse:\n{out}\n{}",
            render_diagnostics(out, &d)
        )
    });
    assert_eq!(again, out, "not idempotent; first pass:\n{out}");
    assert_eq!(
        comment_texts(src),
        comment_texts(out),
        "comments changed:\n{out}"
    );
    assert_eq!(shape(src), shape(out), "tree changed:\n{src}\n-----\n{out}");
    assert!(
        out.is_empty() || (out.ends_with('\n') && !out.ends_with("\n\n")),
        "{out:?}"
    );
    for line in out.lines() {
        assert!(!line.starts_with('\t'), "tab indentation: {line:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots

const MESSY_ITEMS: &str = r#"


import "std/http"


import   "std/db"   as db
let base=env("SHOP_URL")??"http://127.0.0.1:8080"
let   n=1_000;let d = 1.5s


secret  let token = env( "TOKEN" )
matcher orders( route,method=null )=http.server(route)[service=="orders",name!=method]
matcher none()=span[false]
service shop{
run "cargo" ["run","-p","shop"]
        env SHOP_PORT="8080"


    ready http "http://127.0.0.1:8080/health" within 60s
}
service empty {}
test untitled {}
test titled   "A title"{after place_order,other.test;timeout 10s
settle 200ms}
"#;

const MESSY_STATEMENTS: &str = r#"test t "T" {
step create {
trigger http POST "${base}/orders" { header "k" = uuid(); json { "sku" : "sku-42","qty":2 } }
expect response { status==201; let id=json("$.id") }
expect orders("/orders")>>db.query("sqlite") by db.query.text {count<=1
duration<50ms
any  name contains "x"}
expect span[name=="a"]   before span[name=="b"]
expect span[name=="a"] after span[name=="b"]
expect no span[status==error]
expect http.server():first
expect span:nth(2):not(span[kind==client]) | span:has(span[kind==server]):root
expect trace { duration < 1s; span_count>=3 and not (errors>0) }
}



step fetch {
trigger exec "sh" ["-c","echo hi"] { env A = -1 * (2+3) / 4 - 5 }
trigger grpc "pkg.Svc/Get" at "http://localhost:5000" {
proto "svc.proto"
message {}
}
trigger trace "4bf92f3577b34da6a3ce929d0e0e4736"
expect response { json("$.status") in ["paid","shipped"] and x matches r"^a\d+$" }
}
}
"#;

const LONG_LITERALS: &str = r#"test long {
  trigger http POST "http://127.0.0.1:8080/a/very/long/path/for/this/test" {
    json { "customer": "someone@example.com", "items": [{ "sku": "sku-1", "qty": 1 }, { "sku": "sku-2", "qty": 2 }], "note": "short" }
    json {"a": 1,
      "b": 2}
    header "x" = ["aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbb", "cccccccccccccccccccccccc", "ddddddddddd"]
  }
  let text = """
  keep   this
      exactly  """
  let raw = r"C:\no\escapes\${here}"
  let esc = "tab\t quote\" dollar\$ ${base}/x/${ lower("A") }"
}
"#;

const COMMENTS: &str = r#"# file header comment

## Doc of a (directly above).
let a = 1   # trailing on a
# between lets
let b = 2
## A dangling doc, separated by a blank line.

## Doc of the test.
test t { # after the opening brace
    # before the step
  step s {   # after step brace
        trigger http GET "http://x" { # after options brace
      header "a" = "b"  # trailing on a header
      # end of the options
    }


    # own line before an expect

    expect response {
      status == 200    # why
      # last in block
    }   # after the block
    let obj = {
      "a": 1, # inside an object
      "b": [1,
            2],
    }
    let z = # between tokens of a statement
       5
    expect span[name == "x", # inside a filter
      kind == server]
  }
  # end of test body
}
service s {
  # only a comment
}
test empty {
}
# end of file 1


# end of file 2
"#;

const ONLY_COMMENTS: &str = "  # just a comment\n\n\n## and a doc\n";

#[test]
fn messy_items() {
    insta::assert_snapshot!(snapshot(MESSY_ITEMS));
}

#[test]
fn messy_statements() {
    insta::assert_snapshot!(snapshot(MESSY_STATEMENTS));
}

#[test]
fn long_literals_break_and_strings_stay_verbatim() {
    insta::assert_snapshot!(snapshot(LONG_LITERALS));
}

#[test]
fn comments_in_every_position() {
    insta::assert_snapshot!(snapshot(COMMENTS));
}

#[test]
fn file_of_only_comments() {
    assert_eq!(
        format(ONLY_COMMENTS).ok().as_deref(),
        Some("# just a comment\n\n## and a doc\n")
    );
    assert_eq!(format("").ok().as_deref(), Some(""));
    assert_eq!(format("\n\n  \n").ok().as_deref(), Some(""));
}

#[test]
fn taste_example() {
    insta::assert_snapshot!(snapshot(crate::common::TASTE));
}

#[test]
fn syntax_errors_are_returned_and_nothing_is_formatted() {
    for src in [
        "test t {\n  expect span[\n",
        "let = 1\n",
        "let x = \"open\n",
        "let a = 1 $ 2\n",
    ] {
        let diags = format(src).expect_err(src);
        assert!(!diags.is_empty());
        assert!(diags.iter().any(|d| d.severity == Severity::Error), "{src}");
        assert_eq!(diags, parser::parse(FileId(0), src).diagnostics, "{src}");
    }
    let diags = format("let x = 1 +\n").expect_err("incomplete");
    assert!(diags.iter().all(|d| d.code == Code::SyntaxError));
}

#[test]
fn windows_line_endings_and_tabs_are_normalised() {
    let out = format(
        "let a = 1\r\ntest t {\r\n\texpect response {\r\n\t\tstatus == 200 # ok\r\n\t}\r\n}\r\n",
    )
    .expect("formats");
    assert_eq!(
        out,
        "let a = 1\n\ntest t {\n  expect response {\n    status == 200 # ok\n  }\n}\n"
    );
}

/// Comments in odd places: each input must keep its promises; the results are snapshotted.
const EDGE_CASES: &[&str] = &[
    "test # a comment inside the header\n  t \"Title\" {\n}\n",
    "matcher m(a, # why b\n  b = 1) = span\n",
    "test t {\n  after a, # and\n    b\n}\n",
    "let x = [\n  1, # one\n  2,\n]\n",
    "let x = f(1, # c\n      2)\n",
    "test t {\n  expect span by # grouped\n    k {\n    count == 1\n  }\n}\n",
    "test t {\n      step s {\n  let x = {\n \"a\": [1, # c\n         2],\n \"b\": 2 }\n  }\n}\n",
    "test t { # only a trailing comment\n}\n",
    "test t {\n  expect response {} # after an empty block\n}\n",
    "let a = 1; # after a semicolon\nlet b = 2 ; let c = 3 # after c\n",
    "test t {\n  let s = \"\"\"\n  text\n\"\"\" + [1, # c\n    2]\n}\n",
    "test t {\n  let x = { # after the brace\n    \"a\": 1\n  }\n}\n",
    "  # indented first comment\n  import \"std/http\"  \n\n\n\n  # last\n",
];

#[test]
fn comments_in_odd_places() {
    let mut all = String::new();
    for src in EDGE_CASES {
        all.push_str(&snapshot(src));
        all.push_str("=====\n");
    }
    insta::assert_snapshot!(all);
}

// ---------------------------------------------------------------------------------------------
// Every `.tbt` file of the repository

fn collect_tbt(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && name != "err" && !name.starts_with('.') {
                collect_tbt(&path, out);
            }
        } else if name.ends_with(".tbt") {
            out.push(path);
        }
    }
}

/// Every `.tbt` file under the repository root that parses without errors (skipping `target`,
/// hidden directories and directories named `err`), with its text.
fn repository_files() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut paths = Vec::new();
    collect_tbt(&root, &mut paths);
    paths.sort();
    let files: Vec<_> = paths
        .into_iter()
        .filter_map(|path| {
            let src = std::fs::read_to_string(&path).ok()?;
            let parsed = parser::parse(FileId(0), &src);
            let ok = !parsed
                .diagnostics
                .iter()
                .any(|d| d.severity == Severity::Error);
            ok.then_some((path, src))
        })
        .collect();
    assert!(
        files.len() >= 5,
        "only {} formattable .tbt files under {}",
        files.len(),
        root.display()
    );
    files
}

#[test]
fn every_repository_file_and_test_input_keeps_its_promises() {
    for (path, src) in repository_files() {
        let out = format(&src).unwrap_or_else(|_| panic!("{} does not format", path.display()));
        check_promises(&src, &out);
    }
    let inputs = [
        MESSY_ITEMS,
        MESSY_STATEMENTS,
        LONG_LITERALS,
        COMMENTS,
        ONLY_COMMENTS,
        crate::common::TASTE,
    ];
    for src in inputs.iter().chain(EDGE_CASES) {
        let out = format(src).expect("test inputs format");
        check_promises(src, &out);
    }
}

/// A comment (and line break) inserted at the blanks of the test inputs and of every repository
/// file: wherever the result still parses, formatting keeps its promises. This drives the verbatim
/// fallbacks hard.
///
/// The formatter sees a blank only through the tokens around it, so a blank whose surroundings
/// (two tokens before, the blank itself, the token after) were already tried adds nothing: each
/// such context is tried once, the test inputs (written to be odd) at every blank, and one in 16 of
/// the remaining repository blanks besides, spread over all files. `TBT_TEST_FULL=1` tries every
/// blank of every file (7,470 formats instead of 1,319: about seven times the time).
#[test]
fn a_comment_anywhere_keeps_the_promises() {
    let full = crate::tier::full();
    let repository = repository_files();
    let inputs = [MESSY_STATEMENTS, LONG_LITERALS, COMMENTS];
    let inputs = inputs.iter().chain(EDGE_CASES).copied();
    let mut seen = std::collections::HashSet::new();
    let (mut checked, mut blanks) = (0, 0);
    let texts = inputs.map(|src| (src, true));
    let texts = texts.chain(repository.iter().map(|(_, src)| (src.as_str(), false)));
    for (src, every_blank) in texts {
        let contexts = blank_contexts(src);
        for (i, context) in contexts {
            blanks += 1;
            let new_context = seen.insert(context);
            if !(full || every_blank || new_context || blanks % 16 == 0) {
                continue;
            }
            let mutated = format!("{}# injected\n{}", &src[..i], &src[i..]);
            let parsed = parser::parse(FileId(0), &mutated);
            if parsed
                .diagnostics
                .iter()
                .any(|d| d.severity == Severity::Error)
            {
                continue;
            }
            let out = format(&mutated).expect("parses, so formats");
            check_promises(&mutated, &out);
            checked += 1;
        }
    }
    assert!(
        checked > 500,
        "only {checked} mutations parsed of {blanks} blanks"
    );
    eprintln!(
        "{checked} mutations checked, {} contexts, {blanks} blanks",
        seen.len()
    );
}

/// Each blank (space or line break) of `src` with what the formatter can tell about it: the kinds
/// of the two tokens before it, the blank, and the kind of the token after it.
fn blank_contexts(src: &str) -> Vec<(usize, [String; 4])> {
    use tbt_compiler::lexer::{Lexer, Token};
    let kind = |t: &Token| match t {
        Token::Ident(_) => "ident".to_string(),
        Token::Dotted(_) => "dotted".to_string(),
        Token::Str(s) => format!("string {:?}", s.kind),
        other => other.describe(),
    };
    let tokens: Vec<(usize, String, usize)> = Lexer::new(FileId(0), src, 0)
        .filter_map(Result::ok)
        .map(|(l, t, r)| (l, kind(&t), r))
        .collect();
    let none = String::new;
    let mut next = 0; // the first token that ends after the blank
    src.char_indices()
        .filter(|&(_, c)| c == ' ' || c == '\n')
        .map(|(i, c)| {
            while next < tokens.len() && tokens[next].2 <= i {
                next += 1;
            }
            let before = |back: usize| {
                next.checked_sub(back)
                    .map_or_else(none, |k| tokens[k].1.clone())
            };
            let after = tokens.get(next).map_or_else(none, |t| t.1.clone());
            (i, [before(2), before(1), c.to_string(), after])
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Generated files

/// How an expression may be used: as an operand, as the base of `[…]`/`:…`, or only alone.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Use {
    Operand,
    Base,
    Alone,
}

type Gen = (String, Use);

fn operand((s, u): &Gen) -> String {
    if *u == Use::Alone {
        format!("({s})")
    } else {
        s.clone()
    }
}

fn base((s, u): &Gen) -> String {
    if *u == Use::Base {
        s.clone()
    } else {
        format!("({s})")
    }
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("count".to_string()),
        Just("db.query.text".to_string()),
        Just("service".to_string()),
        Just("create.order_id".to_string()),
        Just("http.request.method".to_string()),
    ]
}

/// Separators inside brackets: plain, a line break, or a comment and a line break.
fn sep() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(", ".to_string()),
        1 => Just(",\n".to_string()),
        1 => Just(",  # in a literal\n".to_string()),
        1 => Just(" ,".to_string()),
    ]
}

fn join(items: &[String], seps: &[String]) -> String {
    let mut s = String::new();
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(&seps[i % seps.len()]);
        }
        s.push_str(it);
    }
    s
}

fn leaf() -> impl Strategy<Value = Gen> {
    prop_oneof![
        (0i64..100_000).prop_map(|n| (n.to_string(), Use::Operand)),
        Just(("1_000".to_string(), Use::Operand)),
        Just(("99.99".to_string(), Use::Operand)),
        prop_oneof![Just("250ms"), Just("1.5s"), Just("10us"), Just("2m")]
            .prop_map(|d| (d.to_string(), Use::Operand)),
        prop_oneof![
            Just(r#""plain""#),
            Just(r#""$.id""#),
            Just(r#""a ${base} b""#),
            Just(r#""esc \" \n \${x}""#),
            Just(r#"r"raw\d""#),
            Just("\"\"\"multi\n   line  \"\"\""),
        ]
        .prop_map(|s| (s.to_string(), Use::Operand)),
        prop_oneof![Just("true"), Just("false"), Just("null")]
            .prop_map(|s| (s.to_string(), Use::Operand)),
        name().prop_map(|n| (n, Use::Base)),
    ]
}

fn expr() -> impl Strategy<Value = Gen> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        let op = prop_oneof![
            Just("=="),
            Just("!="),
            Just("<"),
            Just("<="),
            Just(">"),
            Just(">="),
            Just(">>"),
            Just("~>"),
            Just("|"),
            Just("and"),
            Just("or"),
            Just("contains"),
            Just("matches"),
            Just("in"),
            Just("??"),
            Just("+"),
            Just("-"),
            Just("*"),
            Just("/"),
        ];
        let seps = || prop::collection::vec(sep(), 1..3);
        prop_oneof![
            inner
                .clone()
                .prop_map(|e| (format!("({})", e.0), Use::Base)),
            (inner.clone(), op, inner.clone(), 0usize..3).prop_map(|(l, op, r, sp)| {
                let pad = [" ", "", "  "][sp];
                let pad = if op.chars().all(char::is_alphabetic) {
                    " "
                } else {
                    pad
                };
                (
                    format!("{}{pad}{op}{pad}{}", operand(&l), operand(&r)),
                    Use::Alone,
                )
            }),
            (prop_oneof![Just("-"), Just("not ")], inner.clone())
                .prop_map(|(op, e)| (format!("{op}{}", operand(&e)), Use::Alone)),
            (prop::collection::vec(inner.clone(), 0..4), seps()).prop_map(|(v, seps)| {
                let items: Vec<String> = v.iter().map(|e| e.0.clone()).collect();
                (format!("[{}]", join(&items, &seps)), Use::Operand)
            }),
            (
                prop::collection::vec(inner.clone(), 0..4),
                seps(),
                any::<bool>()
            )
                .prop_map(|(v, seps, nl)| {
                    let items: Vec<String> = v
                        .iter()
                        .enumerate()
                        .map(|(i, e)| format!("\"k{i}\": {}", e.0))
                        .collect();
                    let end = if nl && !items.is_empty() { "\n}" } else { " }" };
                    (format!("{{ {}{end}", join(&items, &seps)), Use::Operand)
                }),
            (name(), prop::collection::vec(inner.clone(), 0..3)).prop_map(|(n, v)| {
                let args: Vec<String> = v.into_iter().map(|e| e.0).collect();
                (format!("{n}({})", args.join(", ")), Use::Base)
            }),
            (
                inner.clone(),
                prop::collection::vec(inner.clone(), 1..3),
                seps()
            )
                .prop_map(|(b, v, seps)| {
                    let preds: Vec<String> = v.into_iter().map(|e| e.0).collect();
                    (format!("{}[{}]", base(&b), join(&preds, &seps)), Use::Base)
                }),
            (
                inner.clone(),
                prop_oneof![Just(":first"), Just(":root"), Just(":nth(2)")]
            )
                .prop_map(|(b, c)| (format!("{}{c}", base(&b)), Use::Base)),
            (inner.clone(), inner)
                .prop_map(|(b, a)| (format!("{}:not({})", base(&b), a.0), Use::Base)),
        ]
    })
}

/// One statement of a step (as source lines).
fn stmt() -> impl Strategy<Value = String> {
    let e = || expr().prop_map(|e| e.0);
    let lines = || prop::collection::vec(e(), 0..3);
    prop_oneof![
        e().prop_map(|v| format!("let x = {v}")),
        (e(), e()).prop_map(|(h, j)| format!(
            "trigger http POST \"http://x/${{base}}\" {{\nheader \"k\" = {h}\njson {j}\ntimeout 2s\n}}"
        )),
        Just("trigger exec \"sh\" [\"-c\", \"true\"]".to_string()),
        (e(), lines()).prop_map(|(s, l)| format!("expect span[{s}] {{\n{}\n}}", l.join("\n"))),
        (e(), lines()).prop_map(|(k, l)| format!("expect span by {k} {{ {} }}", l.join("; "))),
        e().prop_map(|s| format!("expect no span[{s}]")),
        Just("expect http.server():first before span[name == \"b\"]".to_string()),
        lines().prop_map(|l| format!("expect response {{\n{}\n}}", l.join("\n"))),
        e().prop_map(|v| format!("expect trace {{\nany {v}\nlet y = {v}\n}}")),
        Just("timeout 10s".to_string()),
        Just("settle 200ms".to_string()),
    ]
}

fn item() -> impl Strategy<Value = String> {
    let e = || expr().prop_map(|e| e.0);
    prop_oneof![
        Just("import \"std/http\"".to_string()),
        Just("import \"./lib.tbt\" as lib".to_string()),
        e().prop_map(|v| format!("let base = {v}")),
        e().prop_map(|v| format!("secret let token = {v}")),
        (e(), e()).prop_map(|(d, b)| format!("matcher m(a, b = {d}) = span[{b}]")),
        e().prop_map(|v| format!(
            "service shop {{\nrun \"cargo\" [\"run\"]\nenv K = {v}\nready http \"http://h\" within 60s\n}}"
        )),
        prop::collection::vec(stmt(), 0..4)
            .prop_map(|s| format!("test t \"Title\" {{\n{}\n}}", s.join("\n"))),
        (prop::collection::vec(stmt(), 1..3), prop::collection::vec(stmt(), 0..3)).prop_map(
            |(a, b)| format!(
                "test u {{\nafter t\nstep one {{\n{}\n}}\n\nstep two {{\n{}\n}}\n}}",
                a.join("\n"),
                b.join("\n")
            )
        ),
    ]
}

/// Layout noise for one source line.
#[derive(Clone, Debug)]
struct Noise {
    indent: usize,
    blank_lines: usize,
    comment_above: Option<&'static str>,
    trailing: Option<&'static str>,
}

fn noise() -> impl Strategy<Value = Noise> {
    (
        0usize..7,
        prop_oneof![4 => Just(0usize), 1 => Just(1), 1 => Just(3)],
        prop_oneof![5 => Just(None), 1 => Just(Some("# above")), 1 => Just(Some("## doc above"))],
        prop_oneof![5 => Just(None), 1 => Just(Some("# trailing")), 1 => Just(Some("#tight  "))],
    )
        .prop_map(|(indent, blank_lines, comment_above, trailing)| Noise {
            indent,
            blank_lines,
            comment_above,
            trailing,
        })
}

fn messy_file() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(item(), 0..5),
        prop::collection::vec(noise(), 1..40),
    )
        .prop_map(|(items, noise)| {
            let text = items.join("\n");
            let mut out = String::new();
            for (i, line) in text.lines().enumerate() {
                let n = &noise[i % noise.len()];
                out.push_str(&"\n".repeat(n.blank_lines));
                if let Some(c) = n.comment_above {
                    out.push_str(&" ".repeat(n.indent));
                    out.push_str(c);
                    out.push('\n');
                }
                out.push_str(&" ".repeat(n.indent));
                out.push_str(line);
                if let Some(c) = n.trailing {
                    out.push(' ');
                    out.push_str(c);
                }
                out.push('\n');
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::tier::cases(300), ..ProptestConfig::default() })]

    #[test]
    fn generated_files_format_idempotently_to_the_same_tree(src in messy_file()) {
        let parsed = parser::parse(FileId(0), &src);
        prop_assume!(!parsed.diagnostics.iter().any(|d| d.severity == Severity::Error));
        let out = format(&src).expect("parses, so formats");
        check_promises(&src, &out);
    }

    #[test]
    fn generated_expressions_format_idempotently(e in expr()) {
        let src = format!("let x = {}\ntest t {{\n  expect response {{\n    {}\n  }}\n}}\n", e.0, e.0);
        let parsed = parser::parse(FileId(0), &src);
        prop_assume!(!parsed.diagnostics.iter().any(|d| d.severity == Severity::Error));
        let out = format(&src).expect("parses, so formats");
        check_promises(&src, &out);
    }
}
