//! Lexer tests: the token stream the grammar sees (with significant newlines) and comments.

use tbt_compiler::FileId;
use tbt_compiler::lexer::{Lexer, Token, scan_string};

/// One token per entry: `start..end kind`, newlines shown as `⏎`.
fn tokens(src: &str) -> String {
    let mut lexer = Lexer::new(FileId(0), src, 0);
    let mut out = Vec::new();
    for t in &mut lexer {
        let Ok((l, tok, r)) = t;
        let text = match &tok {
            Token::Newline => "⏎".to_string(),
            Token::Int(v) => format!("int {v}"),
            Token::Float(v) => format!("float {v}"),
            Token::Duration(v) => format!("duration {v}ns"),
            Token::Str(s) => format!("string {} {:?}", &src[l..r], s.kind),
            Token::Ident(s) => format!("ident {s}"),
            Token::Dotted(s) => format!("dotted {s}"),
            Token::TooDeep => "too-deep".into(),
            other => format!("`{}`", other.symbol()),
        };
        out.push(format!("{l}..{r} {text}"));
    }
    let mut s = out.join("\n");
    for c in &lexer.comments {
        s.push_str(&format!(
            "\ncomment {:?} doc={}",
            &src[c.span.range()],
            c.doc
        ));
    }
    for d in lexer.take_diagnostics() {
        s.push_str(&format!(
            "\n{} {:?} {}",
            d.code,
            d.span().range(),
            d.message
        ));
    }
    s
}

#[test]
fn newlines_are_emitted_only_where_a_statement_can_end() {
    insta::assert_snapshot!(tokens(
        "let a = 1 +\n  2\n\n\nlet b = f(\n 1,\n 2\n)\n{\n  x\n}\nexpect response {\n}\n# c\n"
    ));
}

#[test]
fn keywords_identifiers_and_dotted_names() {
    insta::assert_snapshot!(tokens(
        "import as let secret matcher service test step after before timeout settle trigger expect no by response trace any and or not contains matches in true false null at within span http name status kind count service.name db.query.text create.order_id _x9"
    ));
}

#[test]
fn operators_and_punctuation() {
    insta::assert_snapshot!(tokens(
        "( ) [ ] { } , : ; = == != < <= > >= >> ~> | ?? + - * /"
    ));
}

#[test]
fn numbers_and_durations() {
    insta::assert_snapshot!(tokens(
        "0 42 1_000 99.99 10ns 10us 250ms 1.5s 2m 1h 3min 1e5"
    ));
}

#[test]
fn strings_are_single_tokens() {
    insta::assert_snapshot!(tokens(
        r#""a" "b ${ "c" } d" r"raw\" "${ {"k": "}"} }" """multi
line""" "$.id""#
    ));
}

#[test]
fn comments_and_invalid_characters() {
    insta::assert_snapshot!(tokens("## doc\nlet a = 1 # trailing\n@ ~ $ x\n"));
}

#[test]
fn scanner_balances_interpolations() {
    assert_eq!(
        scan_string(r#""a""#),
        (3, tbt_compiler::lexer::StrKind::Normal, true)
    );
    assert_eq!(scan_string(r#""${ "}" }" tail"#).0, 10);
    assert_eq!(scan_string(r#""${ { } }" tail"#).0, 10);
    assert_eq!(scan_string("\"abc\nnext").0, 4);
    assert!(!scan_string("\"abc\nnext").2);
    assert!(!scan_string("\"${ \"x }").2);
    assert_eq!(scan_string("\"\"\"a\n\"b\"\n\"\"\" x").0, 12);
    assert_eq!(scan_string(r#"r"a\" x"#).0, 5);
    assert_eq!(scan_string(r#""a\"b""#).0, 6);
}

#[test]
fn embedded_lexer_ignores_newlines_and_offsets_positions() {
    let mut lexer = Lexer::embedded(FileId(0), "a\n+ b", 100, 1, 0);
    let toks: Vec<_> = (&mut lexer)
        .map(|t| t.map(|(l, _, r)| (l, r)))
        .collect::<Result<_, _>>()
        .expect("the lexer never fails");
    assert_eq!(toks, vec![(100, 101), (102, 103), (104, 105)]);
}
