//! The runtime runs the plan; it does not read the syntax tree. The compiler's `Plan` carries
//! every payload (typed trigger calls, services, lets, timing, expectations), so no file of the
//! runtime names the compiler's `ast` module.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_runtime_does_not_import_the_syntax_tree() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 10, "found the runtime's sources: {files:?}");
    let mut offenders = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("utf-8 source");
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let names_ast = code.contains("tbt_compiler::ast")
                || code.contains("compiler::{ast")
                || code.contains(" ast::")
                || code.contains("(ast::")
                || code.contains("&ast::");
            if names_ast {
                offenders.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the runtime reads the syntax tree (use the plan's payloads instead):\n{}",
        offenders.join("\n")
    );
}
