//! Golden tests: every `ui/ok/*.tbt` compiles without any diagnostic; every `ui/err/*.tbt`
//! reports at least one error, and its rendered diagnostics (no colour) match the snapshot next to
//! it in `ui/snapshots/`. A snapshot without a case fails the run, so stale snapshots cannot pile up.

use std::path::{Path, PathBuf};
use tbt_compiler::compile::{Options, SourceLoader, compile};
use tbt_compiler::render::render_plain;

/// Reads imports from `tests/ui`, naming files relative to it.
struct UiLoader {
    root: PathBuf,
}

impl SourceLoader for UiLoader {
    fn load(&mut self, importer: &str, path: &str) -> Result<(String, Vec<u8>), String> {
        let name = tbt_compiler::compile::join_relative(importer, path);
        std::fs::read(self.root.join(&name))
            .map(|b| (name.clone(), b))
            .map_err(|_| format!("no such file `{name}`"))
    }
}

fn ui_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui")
}

fn cases(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(ui_root().join(dir))
        .expect("ui dir exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tbt"))
        .collect();
    v.sort();
    v
}

fn run(path: &Path) -> (String, tbt_compiler::compile::Compilation) {
    let root = ui_root();
    let name = path
        .strip_prefix(&root)
        .expect("under ui")
        .to_string_lossy()
        .replace('\\', "/");
    let bytes = std::fs::read(path).expect("readable case");
    let mut loader = UiLoader { root };
    let c = compile(
        vec![(name.clone(), bytes)],
        &mut loader,
        &Options::default(),
    );
    (name, c)
}

#[test]
fn ok_cases_have_no_diagnostics() {
    let cases = cases("ok");
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for p in &cases {
        let (name, c) = run(p);
        if !c.diagnostics.is_empty() {
            failures.push(format!(
                "{name}:\n{}",
                render_plain(&c.sources, &c.diagnostics)
            ));
        } else if let Some(plan) = &c.plan {
            // The plan of every valid case, as text and as DOT.
            let stem = p.file_stem().expect("stem").to_string_lossy().to_string();
            let rendered = format!(
                "----- PLAN\n{}----- DOT\n{}",
                plan.to_text(&c.sources),
                plan.to_dot(&c.sources)
            );
            insta::with_settings!({ snapshot_path => ui_root().join("snapshots"), prepend_module_to_snapshot => false, omit_expression => true }, {
                insta::assert_snapshot!(format!("plan_{stem}"), rendered);
            });
        } else {
            failures.push(format!("{name}: no plan"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn err_cases_match_their_snapshots() {
    let cases = cases("err");
    assert!(!cases.is_empty());
    for p in &cases {
        let (name, c) = run(p);
        assert!(
            c.has_errors()
                || c.diagnostics
                    .iter()
                    .any(|d| d.severity == tbt_compiler::Severity::Warning),
            "{name} reports nothing"
        );
        let stem = p.file_stem().expect("stem").to_string_lossy().to_string();
        let source = std::fs::read_to_string(p).unwrap_or_else(|_| {
            String::from_utf8_lossy(&std::fs::read(p).expect("read")).into_owned()
        });
        let rendered = format!(
            "----- SOURCE\n{source}\n----- DIAGNOSTICS\n{}",
            render_plain(&c.sources, &c.diagnostics)
        );
        insta::with_settings!({ snapshot_path => ui_root().join("snapshots"), prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!(stem.clone(), rendered);
        });
    }
    // No snapshot without a case.
    for e in std::fs::read_dir(ui_root().join("snapshots")).expect("snapshots dir") {
        let p = e.expect("entry").path();
        let file = p.file_name().expect("name").to_string_lossy().to_string();
        if let Some(stem) = file.strip_suffix(".snap") {
            let case = match stem.strip_prefix("plan_") {
                Some(s) => ui_root().join("ok").join(format!("{s}.tbt")),
                None => ui_root().join("err").join(format!("{stem}.tbt")),
            };
            assert!(
                case.exists(),
                "unreferenced snapshot {file}: delete it or restore its case"
            );
        }
    }
}
