//! `docs/diagnostics.md` documents every diagnostic code with a failing example and its fix.
//! This test keeps the document true: every code of the registry has a section; in each section
//! the `tbt fail` block reports that section's code and the `tbt ok` block reports nothing.

use tbt_compiler::Code;
use tbt_compiler::compile::{MemoryLoader, Options, compile};
use tbt_compiler::render::render_plain;

/// (section code, block kind, source) for every example block.
fn examples(doc: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut code = String::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(h) = line.strip_prefix("## ") {
            code = h.split(':').next().unwrap_or("").trim().to_string();
        } else if let Some(info) = line.strip_prefix("```tbt ") {
            let mut src = String::new();
            for l in lines.by_ref() {
                if l == "```" {
                    break;
                }
                src.push_str(l);
                src.push('\n');
            }
            out.push((code.clone(), info.trim().to_string(), src));
        }
    }
    out
}

fn check(src: &str) -> tbt_compiler::compile::Compilation {
    let mut loader = MemoryLoader::default();
    loader.files.insert("example.tbt".into(), src.to_string());
    compile(
        vec![("example.tbt".into(), src.as_bytes().to_vec())],
        &mut loader,
        &Options::default(),
    )
}

#[test]
fn every_code_is_documented_with_a_failing_example_and_a_fix() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/diagnostics.md"
    ))
    .expect("docs/diagnostics.md");
    let examples = examples(&doc);
    // Codes whose input cannot be written in Markdown; they have their own tests.
    let no_example = ["TBT0006", "TBT0007", "TBT0401", "TBT0402", "TBT0403"];
    for code in Code::ALL {
        assert!(
            doc.contains(&format!("## {}: ", code.as_str())),
            "{} has no section in docs/diagnostics.md",
            code.as_str()
        );
        if no_example.contains(&code.as_str()) {
            continue;
        }
        let kinds: Vec<&str> = examples
            .iter()
            .filter(|(c, _, _)| c == code.as_str())
            .map(|(_, k, _)| k.as_str())
            .collect();
        assert_eq!(
            kinds,
            ["fail", "ok"],
            "{} needs one `tbt fail` and one `tbt ok` example",
            code.as_str()
        );
    }
    let mut failures = Vec::new();
    for (code, kind, src) in &examples {
        let c = check(src);
        let rendered = render_plain(&c.sources, &c.diagnostics);
        match kind.as_str() {
            "fail" => {
                if !c.diagnostics.iter().any(|d| d.code.as_str() == code) {
                    failures.push(format!(
                        "{code}: the failing example does not report {code}:\n{src}\n{rendered}"
                    ));
                }
            }
            "ok" => {
                if !c.diagnostics.is_empty() {
                    failures.push(format!(
                        "{code}: the fixed example still reports:\n{src}\n{rendered}"
                    ));
                }
            }
            other => failures.push(format!("{code}: unknown block kind `{other}`")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
