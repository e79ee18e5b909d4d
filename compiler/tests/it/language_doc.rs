//! `docs/language.md` is the language reference: every `tbt` example in it must compile without
//! any diagnostic, every built-in function and span field must be documented in it, and every
//! example must already be in `tbt fmt` layout.

use tbt_compiler::builtins::{FUNCTIONS, PSEUDO_CLASSES, SPAN_FIELDS};
use tbt_compiler::compile::{MemoryLoader, Options, compile};
use tbt_compiler::render::render_plain;

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/language.md"))
        .expect("docs/language.md")
}

fn examples(doc: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lines = doc.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line.trim_end() == "```tbt" {
            let mut src = String::new();
            for (_, l) in lines.by_ref() {
                if l == "```" {
                    break;
                }
                src.push_str(l);
                src.push('\n');
            }
            out.push((n + 1, src));
        }
    }
    out
}

#[test]
fn every_example_compiles_cleanly() {
    let doc = doc();
    let examples = examples(&doc);
    assert!(examples.len() >= 10, "the reference has examples");
    let mut failures = Vec::new();
    for (line, src) in &examples {
        let mut loader = MemoryLoader::default();
        let c = compile(
            vec![(format!("language.md:{line}"), src.as_bytes().to_vec())],
            &mut loader,
            &Options::default(),
        );
        if !c.diagnostics.is_empty() {
            failures.push(format!(
                "example at docs/language.md:{line}:\n{}",
                render_plain(&c.sources, &c.diagnostics)
            ));
        }
        match tbt_compiler::format::format(src) {
            Ok(f) if f == *src => {}
            Ok(f) => failures.push(format!(
                "example at docs/language.md:{line} is not in `tbt fmt` layout; formatted:\n{f}"
            )),
            Err(_) => failures.push(format!(
                "example at docs/language.md:{line} does not format"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_builtin_is_documented() {
    let doc = doc();
    for f in FUNCTIONS {
        assert!(
            doc.contains(&format!("`{}(", f.name)),
            "function `{}` is not in docs/language.md",
            f.name
        );
    }
    for f in SPAN_FIELDS {
        assert!(
            doc.contains(&format!("`{}`", f.name)),
            "span field `{}` is not in docs/language.md",
            f.name
        );
    }
    for (p, _) in PSEUDO_CLASSES {
        assert!(
            doc.contains(&format!("`:{p}")),
            "pseudo-class `:{p}` is not in docs/language.md"
        );
    }
}
