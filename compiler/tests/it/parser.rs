//! Parser tests: snapshots of the tree for every construct, and of the diagnostics for errors.

use crate::common::{TASTE, expr_ok, parse_ok, render_diagnostics, snapshot};
use tbt_compiler::FileId;
use tbt_compiler::ast::{ExprKind, ItemKind};
use tbt_compiler::parser;

#[test]
fn taste() {
    insta::assert_snapshot!(snapshot(TASTE));
}

#[test]
fn items() {
    insta::assert_snapshot!(parse_ok(
        r#"
import "std/http"
import "./lib.tbt" as lib; let a = 1
secret let token = env("TOKEN")
matcher none() = span[false]
matcher svc(a, b,) = span[service == a, name == b]
matcher route(route = null, method = "GET") = http.server(route, method)
service shop {
  run "cargo" ["run", "-p", "shop"]
  env SHOP_PORT = "8080"
  ready http "http://127.0.0.1:8080/health" within 60s
  ready log "listening" within 10s
}
service empty {}
test untitled {}
test titled "A title" {
  after place_order, other.test
  timeout 10s
  settle 200ms
  let x = 1
  trigger trace "4bf92f3577b34da6a3ce929d0e0e4736"
}
"#
    ));
}

#[test]
fn doc_comments_attach_to_the_next_item() {
    let src = "## not attached: blank line below\n\n## First line.\n##   indented\n##\nlet a = 1 # trailing\n# plain\n## Doc of b.\nlet b = 2\n## Dangling at the end\n";
    let parsed = parser::parse(FileId(0), src);
    assert!(parsed.diagnostics.is_empty());
    let docs: Vec<_> = parsed.file.items.iter().map(|i| i.doc.clone()).collect();
    assert_eq!(
        docs,
        vec![
            Some("First line.\n  indented\n".to_string()),
            Some("Doc of b.".into())
        ]
    );
    let comments: Vec<_> = parsed
        .file
        .comments
        .iter()
        .map(|c| (&src[c.span.range()], c.doc))
        .collect();
    insta::assert_debug_snapshot!(comments);
}

#[test]
fn every_trigger_kind() {
    insta::assert_snapshot!(parse_ok(
        r#"
test triggers {
  trigger http POST "${base}/orders" {
    header "idempotency-key" = uuid()
    query "page" = 2
    json { "sku": "sku-42", "qty": 2 }
    body "raw"
    timeout 5s
  }
  trigger http GET url_var
  trigger grpc "shop.Inventory/Lookup" at "http://127.0.0.1:50051" {
    proto "shop.proto"
    message { "sku": "a" }
    metadata "k" = v
  }
  trigger exec "./tool" ["--flag", x] { env K = v }
  trigger exec "./tool" (args ?? []); trigger exec "x" {}
  trigger trace "4bf92f3577b34da6a3ce929d0e0e4736"
}
"#
    ));
}

#[test]
fn every_expect_form() {
    insta::assert_snapshot!(parse_ok(
        r#"
test expects {
  expect span
  expect span { count == 1 }
  expect no span[status == error]
  expect no span[status == error] { count == 0 }
  expect db.query() by db.query.text { count <= 1 }
  expect db.query() by db.query.text
  expect span[name == "a"] before span[name == "b"]
  expect span[name == "a"] after span[name == "b"]
  expect response { status == 201; let id = json("$.id") }
  expect trace {
    duration < 2s
    span_count >= 3
    any service == "x"
    let n = span_count
  }
  expect response {}
}
"#
    ));
}

#[test]
fn selectors() {
    let cases = [
        "A > B",
        "A >> B",
        "A ~> B",
        "A | B",
        "span:first",
        "span:last",
        "span:root",
        "span:nth(2)",
        "span:not(http.server())",
        "span:has(db.query() >> span)",
        "http.server(\"/x\")[service == \"a\"]:first[name == \"b\"]",
        "(A | B)[kind == server]",
        "span[name = \"x\"]",
    ];
    let mut out = String::new();
    for c in cases {
        let (e, diags) = parser::parse_expr(FileId(0), c, 0);
        out.push_str(&format!("{c}\n  => {}\n", parser::dump_expr(&e)));
        out.push_str(&render_diagnostics(c, &diags));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn precedence() {
    let cases = [
        "a or b and not c == d",
        "x ?? 0 > 5",
        "-a * b + c",
        "A > B >> C | D",
        "a ?? b ?? c",
        "a - b - c",
        "a / b * c",
        "not not a",
        "- -a",
        "a + b * c == d and e or f",
        "a in [1, 2] and b contains \"x\" and c matches r\"^a.*\"",
        "1 < 2 < 3",
        "(a or b) and c",
        "f(a, b)[x]:first",
        "x\n  + y",
    ];
    let mut out = String::new();
    for c in cases {
        out.push_str(&format!("{c}\n  => {}\n", expr_ok(c)));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn literals() {
    let cases = [
        r#"{ "sku": "sku-42", "qty": 2, "nested": { "a": [1, 2.5, true, false, null] }, }"#,
        "[]",
        "{}",
        "[1, 2,]",
        "1_000_000",
        "99.99",
        "9223372036854775807",
        "[10ns, 10us, 250ms, 1.5s, 2m, 1h, 0.001s, 1_000ms]",
        r#""tab\there \"quoted\" \\ \$ \u{1F600} \n""#,
        r#""$.id""#,
        r#""${base}/orders/${create.order_id}""#,
        r#""${env("X") ?? "a"}""#,
        r#""${ {"k": "}"} }""#,
        r#""outer ${ "inner ${ x } done" }!""#,
        r#"r"C:\path\${not_interp}""#,
        "\"\"\"line one\n  line \"two\" ${x}\n\"\"\"",
        r#""""#,
    ];
    let mut out = String::new();
    for c in cases {
        out.push_str(&format!("{c}\n  => {}\n", expr_ok(c)));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn dotted_names_with_keyword_segments() {
    let cases = [
        "service.name",
        "messaging.operation.type",
        "db.query.text",
        "rpc.service",
        "trace.id",
        "a.not.in.and",
        "service",
        "service == \"x\"",
    ];
    let mut out = String::new();
    for c in cases {
        out.push_str(&format!("{c}\n  => {}\n", expr_ok(c)));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn path_segments_have_their_own_spans() {
    let (e, d) = parser::parse_expr(FileId(0), "  messaging.operation.type", 100);
    assert!(d.is_empty());
    let ExprKind::Path(p) = e.kind else {
        panic!("not a path")
    };
    let spans: Vec<_> = p
        .segments
        .iter()
        .map(|s| (s.name.as_str(), s.span.start, s.span.end))
        .collect();
    assert_eq!(
        spans,
        vec![
            ("messaging", 102, 111),
            ("operation", 112, 121),
            ("type", 122, 126)
        ]
    );
    assert_eq!((p.span.start, p.span.end), (102, 126));
}

#[test]
fn interpolation_spans_point_into_the_file() {
    let src = r#"let u = "a${ base }b""#;
    let parsed = parser::parse(FileId(0), src);
    let ItemKind::Let(l) = &parsed.file.items[0].kind else {
        panic!()
    };
    let ExprKind::Lit(tbt_compiler::ast::Lit::Str(s)) = &l.value.kind else {
        panic!()
    };
    let tbt_compiler::ast::StrPart::Interp(e) = &s.parts[1] else {
        panic!()
    };
    assert_eq!(&src[e.span.range()], "base");
}

#[test]
fn newlines() {
    insta::assert_snapshot!(parse_ok(
        r#"
let a = 1 +
  2
let b = f(
  1,
  2
)
let c = [
  1,
  2,
]
let d = {
  "a": 1,
  "b": [
    2
  ]
}
let e = x and
  y


test t {

  trigger http GET "x" {

    header "a" = "b"

  }
  expect span[
    name == "a",
    kind == server
  ] {
    count == 1 ; duration < 1s
  }
}
"#
    ));
}

#[test]
fn byte_order_mark_and_crlf() {
    let src = "\u{feff}## Doc.\r\nlet a = 1\r\nlet b = \"x\" # c\r\n";
    let parsed = parser::parse(FileId(0), src);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    assert_eq!(
        parser::dump(&parsed.file),
        "(doc \"Doc.\") (let a 1)\n(let b \"x\")\n"
    );
}

#[test]
fn parse_expr_reports_at_the_given_offset() {
    let (e, diags) = parser::parse_expr(FileId(0), "a +\0", 10);
    assert!(matches!(e.kind, ExprKind::Error | ExprKind::Binary { .. }));
    let got: Vec<_> = diags
        .iter()
        .map(|d| {
            (
                d.code.as_str(),
                d.message.as_str(),
                d.span().start,
                d.span().end,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("TBT0001", "expected expression, found end of file", 13, 13),
            ("TBT0007", "the file contains NUL bytes", 13, 14),
        ]
    );
}
