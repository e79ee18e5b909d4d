//! Property tests of the whole front end on damaged input: take the valid UI cases and the
//! examples, cut, duplicate and splice random pieces of them, and compile. The compiler must never
//! panic, must keep every diagnostic span inside its file, and must produce a plan exactly when it
//! reports no error.

use proptest::prelude::*;
use tbt_compiler::compile::{MemoryLoader, Options, compile};

fn corpus() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        root.join("tests/ui/ok"),
        root.join("../examples/quickstart"),
        root.join("../stdlib"),
    ] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "tbt") {
                out.push(std::fs::read_to_string(e.path()).expect("readable"));
            }
        }
    }
    out.sort();
    out
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Duplicate(usize, usize, usize),
    Insert(usize, &'static str),
}

const SNIPPETS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\"",
    "${",
    "=",
    "==",
    ">",
    ">>",
    "~>",
    "|",
    "??",
    ":first",
    ":nth(",
    "\n",
    "test",
    "step",
    "expect",
    "trigger",
    "let",
    "after",
    "no",
    "by",
    "span",
    "count",
    "import \"std/http\"",
    "#",
    "##",
    "r\"",
    "\"\"\"",
    "1ms",
    "99999999999999999999",
    "\u{0}",
    "é",
    "::",
    ";",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), 0usize..60, any::<usize>()).prop_map(|(a, n, b)| Edit::Duplicate(a, n, b)),
        (any::<usize>(), prop::sample::select(SNIPPETS)).prop_map(|(a, s)| Edit::Insert(a, s)),
    ]
}

fn floor(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(mut s: String, edits: &[Edit]) -> String {
    for e in edits {
        if s.is_empty() {
            break;
        }
        match *e {
            Edit::Delete(a, n) => {
                let a = floor(&s, a % s.len());
                let b = floor(&s, a + n);
                s.replace_range(a..b, "");
            }
            Edit::Duplicate(a, n, at) => {
                let a = floor(&s, a % s.len());
                let b = floor(&s, a + n);
                let piece = s[a..b].to_string();
                let at = floor(&s, at % s.len());
                s.insert_str(at, &piece);
            }
            Edit::Insert(a, text) => {
                let a = floor(&s, a % (s.len() + 1));
                s.insert_str(a, text);
            }
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::tier::cases(1000), ..ProptestConfig::default() })]

    #[test]
    fn damaged_suites_never_panic(file in 0usize..64, edits in prop::collection::vec(edit(), 1..8)) {
        let corpus = corpus();
        let src = apply(corpus[file % corpus.len()].clone(), &edits);
        let mut loader = MemoryLoader::default();
        loader.files.insert("lib/common.tbt".into(), "let base = 1\n".into());
        let c = compile(vec![("case.tbt".into(), src.clone().into_bytes())], &mut loader, &Options::default());
        for d in &c.diagnostics {
            for l in &d.labels {
                let f = c.sources.get(l.span.file);
                prop_assert!(l.span.start <= l.span.end && (l.span.end as usize) <= f.text.len(), "{:?} outside {}", l, f.name);
            }
        }
        prop_assert_eq!(c.plan.is_some(), !c.has_errors());
        // Rendering never panics either.
        let _ = tbt_compiler::render::render_plain(&c.sources, &c.diagnostics);
    }
}
