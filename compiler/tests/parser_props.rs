//! Properties: no input makes the parser panic or report a span outside the input, and generated
//! valid expressions parse without diagnostics.

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

proptest! {
    // PROPTEST_CASES=100000 for a longer hunt.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok())
            .unwrap_or(if cfg!(debug_assertions) { 300 } else { 3000 })
    ))]

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
