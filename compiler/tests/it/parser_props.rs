//! Properties: no input makes the parser panic or report a span outside the input, generated
//! valid expressions parse without diagnostics, and a file parsed in pieces on several threads
//! gives exactly the one-piece result.

use proptest::prelude::*;
use tbt_compiler::FileId;
use tbt_compiler::parser;

/// Pieces of the language, glued together at random.
const TOKENS: &[&str] = &[
    "import",
    "as",
    "let",
    "secret",
    "matcher",
    "service",
    "test",
    "step",
    "after",
    "before",
    "timeout",
    "settle",
    "trigger",
    "expect",
    "no",
    "by",
    "response",
    "trace",
    "any",
    "and",
    "or",
    "not",
    "contains",
    "matches",
    "in",
    "true",
    "false",
    "null",
    "at",
    "within",
    "span",
    "http",
    "x",
    "db.query.text",
    "service.name",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ";",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    ">>",
    "~>",
    "|",
    "??",
    "+",
    "-",
    "*",
    "/",
    "1",
    "2.5",
    "10ms",
    "99999999999999999999",
    "\"s\"",
    "\"${x}\"",
    "\"${",
    "\"",
    "r\"raw\"",
    "\"\"\"",
    "}\"",
    "\"a\\q\"",
    "# c\n",
    "## d\n",
    "\n",
    " ",
    "\t",
    "@",
    "é",
    "\0",
    "1min",
    "${",
    "\\",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|v| {
        let mut s = String::new();
        for (i, t) in v.iter().enumerate() {
            if i > 0 && i % 3 == 0 {
                s.push(' ');
            }
            s.push_str(t);
        }
        s
    })
}

fn check_spans(src: &str) {
    let parsed = parser::parse(FileId(0), src);
    for d in &parsed.diagnostics {
        for l in &d.labels {
            assert!(l.span.start <= l.span.end, "{d:?}");
            assert!(
                l.span.end as usize <= src.len(),
                "span past the end: {d:?} in {src:?}"
            );
            assert!(
                src.is_char_boundary(l.span.start as usize),
                "{d:?} in {src:?}"
            );
            assert!(
                src.is_char_boundary(l.span.end as usize),
                "{d:?} in {src:?}"
            );
        }
    }
}

/// Valid expressions, built from the grammar's productions.
fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("span".to_string()),
        Just("x".to_string()),
        Just("db.query.text".to_string()),
        Just("service".to_string()),
        Just("42".to_string()),
        Just("1.5".to_string()),
        Just("250ms".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("\"str ${y}\"".to_string()),
        Just("r\"raw\"".to_string()),
        Just("f()".to_string()),
    ];
    leaf.prop_recursive(4, 40, 4, |inner| {
        let binops = prop::sample::select(vec![
            "or", "and", "|", "==", "!=", "<", "<=", ">", ">=", ">>", "~>", "contains", "matches",
            "in", "??", "+", "-", "*", "/",
        ]);
        prop_oneof![
            (inner.clone(), binops, inner.clone()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            // `not` binds looser than comparisons, so it needs parentheses as an operand.
            inner.clone().prop_map(|a| format!("(not {a})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("span[{a}]")),
            inner.clone().prop_map(|a| format!("f({a}, {a})")),
            inner.clone().prop_map(|a| format!("[{a}, {a},]")),
            inner.clone().prop_map(|a| format!("{{\"k\": {a}}}")),
            inner.clone().prop_map(|a| format!("span:not({a}):first")),
            inner.clone().prop_map(|a| format!("\"${{{a}}}\"")),
        ]
    })
}

/// Real suites: what the pieces of a large file look like.
const SUITES: &[&str] = &[
    include_str!("../../../examples/shop/shop.tbt"),
    include_str!("../../../examples/shop/orders.tbt"),
    include_str!("../../../examples/shop/payments.tbt"),
    include_str!("../../../examples/shop/services.tbt"),
    include_str!("../../../examples/shop/performance.tbt"),
    include_str!("../../../examples/shop-failing/n_plus_one.tbt"),
    include_str!("../../../stdlib/http.tbt"),
    include_str!("../../../stdlib/db.tbt"),
];

/// Real suites one after another, then edited at random: token soup inserted, text deleted or
/// duplicated, line ends made CRLF. Edits land anywhere, also inside strings and brackets, so
/// pieces often end inside an unclosed construct.
fn edited_suite() -> impl Strategy<Value = String> {
    let edit = (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        0..4u8,
        token_soup(),
    );
    (
        prop::collection::vec(prop::sample::select(SUITES), 1..5),
        prop::collection::vec(edit, 0..4),
    )
        .prop_map(|(parts, edits)| {
            let mut s = parts.join("\n");
            for (at, len, kind, soup) in edits {
                let floor = |s: &str, mut i: usize| {
                    while !s.is_char_boundary(i) {
                        i -= 1;
                    }
                    i
                };
                let a = floor(&s, at.index(s.len() + 1));
                let b = floor(&s, (a + len.index(200)).min(s.len()));
                match kind {
                    0 => s.insert_str(a, &soup),
                    1 => s.replace_range(a..b, ""),
                    2 => {
                        let copy = s[a..b].to_string();
                        s.insert_str(b, &copy);
                    }
                    _ => s = s.replace('\n', "\r\n"),
                }
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::tier::cases(if cfg!(debug_assertions) { 64 } else { 1000 })))]

    #[test]
    fn parsing_in_pieces_equals_parsing_in_one(src in edited_suite(), pieces in 2..9usize) {
        let whole = parser::parse_in_pieces(FileId(0), &src, 1);
        let cut = parser::parse_in_pieces(FileId(0), &src, pieces);
        prop_assert!(cut == whole, "{pieces} pieces differ on {src:?}");
    }
}

proptest! {
    // PROPTEST_CASES=100000 for a longer hunt.
    #![proptest_config(ProptestConfig::with_cases(crate::tier::cases(if cfg!(debug_assertions) { 300 } else { 3000 })))]

    #[test]
    fn arbitrary_strings_never_panic(src in any::<String>()) {
        check_spans(&src);
    }

    #[test]
    fn token_soups_never_panic(src in token_soup()) {
        check_spans(&src);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let (text, parsed) = parser::parse_bytes(FileId(0), &bytes);
        for d in &parsed.diagnostics {
            prop_assert!(d.span().end as usize <= text.len());
        }
    }

    #[test]
    fn generated_expressions_parse_cleanly(e in expr()) {
        let (_, diags) = parser::parse_expr(FileId(0), &e, 0);
        prop_assert!(diags.is_empty(), "{e}: {diags:?}");
        let src = format!("test t {{\n  trigger http GET \"u\"\n  expect {e} {{\n    {e}\n  }}\n}}\n");
        let parsed = parser::parse(FileId(0), &src);
        prop_assert!(parsed.diagnostics.is_empty(), "{src}: {:?}", parsed.diagnostics);
    }
}
