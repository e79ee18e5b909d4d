//! Golden tests of the evaluator: `.tbt` suites in `tests/eval/` run against OTLP JSON traces in
//! `tests/traces/` (one recorded with the OpenTelemetry Rust SDK, see `it/sdk_fixtures.rs`); the
//! rendered results are insta snapshots.
//!
//! A case names its trace and, optionally, each step's response in comment lines:
//! `# trace: sdk_checkout.json` and `# response STEP: http 201 {"id": "o-1"}`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use tbt_compiler::ast::{self, ItemKind, StmtKind};
use tbt_compiler::eval::{
    Expectation, ExpectationResult, PureHost, Response, Scope, evaluate_step, evaluate_value,
};
use tbt_compiler::span::{FileId, SourceMap, Span};
use tbt_compiler::trace::Trace;
use tbt_compiler::{Value, parser, stdlib};

/// Names of one module: lets, matchers and imported modules.
#[derive(Default)]
struct Module {
    vars: HashMap<String, Value>,
    matchers: HashMap<String, ast::Matcher>,
    imports: HashMap<String, Module>,
}

impl Scope for Module {
    fn value(&self, path: &ast::Path) -> Option<Value> {
        self.vars.get(&path.dotted()).cloned()
    }
    fn matcher(&self, path: &ast::Path) -> Option<(&ast::Matcher, &dyn Scope)> {
        let segs = &path.segments;
        if segs.len() == 1 {
            return self
                .matchers
                .get(&segs[0].name)
                .map(|m| (m, self as &dyn Scope));
        }
        let module = self.imports.get(&segs[0].name)?;
        let rest: Vec<&str> = segs[1..].iter().map(|s| s.name.as_str()).collect();
        module
            .matchers
            .get(&rest.join("."))
            .map(|m| (m, module as &dyn Scope))
    }
}

fn load_module(map: &mut SourceMap, name: &str, text: &str) -> (Module, ast::File) {
    let id = map.add(name, text);
    let parsed = parser::parse(id, text);
    assert!(
        parsed.diagnostics.iter().all(|d| !d.is_error()),
        "{name}: {:?}",
        parsed.diagnostics
    );
    let mut m = Module::default();
    for item in &parsed.file.items {
        match &item.kind {
            ItemKind::Import(i) => {
                let src =
                    stdlib::module(&i.path).unwrap_or_else(|| panic!("unknown module {}", i.path));
                let alias = i.alias.as_ref().map_or_else(
                    || i.path.rsplit('/').next().unwrap().to_string(),
                    |a| a.name.clone(),
                );
                let (sub, _) = load_module(map, &i.path, src);
                m.imports.insert(alias, sub);
            }
            ItemKind::Let(l) => {
                let v = evaluate_value(&l.value, &m, &PureHost).unwrap();
                m.vars.insert(l.name.name.clone(), v);
            }
            ItemKind::Matcher(mm) => {
                m.matchers.insert(mm.name.name.clone(), mm.clone());
            }
            _ => {}
        }
    }
    (m, parsed.file)
}

fn response_from(spec: &str) -> Response {
    let mut parts = spec.splitn(3, ' ');
    let kind = parts.next().unwrap();
    let code: i64 = parts.next().unwrap().parse().unwrap();
    let body = parts.next().unwrap_or("").to_string();
    match kind {
        "http" => Response::Http {
            status: code as u16,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into_bytes(),
            duration: 42_000_000,
        },
        "exec" => Response::Exec {
            exit_code: code as i32,
            stdout: body,
            stderr: String::new(),
            duration: 5_000_000,
        },
        other => panic!("unknown response kind {other}"),
    }
}

fn first_line(s: &str) -> &str {
    let l = s.lines().next().unwrap_or("");
    l.trim_end_matches('{').trim_end()
}

fn render_result(out: &mut String, map: &SourceMap, r: &ExpectationResult) {
    let file = map.get(r.span.file);
    let (line, _) = file.line_col_human(r.span.start);
    let text = map.slice(r.span);
    let _ = writeln!(
        out,
        "  {:<4} L{line}: {}",
        if r.passed { "PASS" } else { "FAIL" },
        first_line(text)
    );
    let _ = writeln!(
        out,
        "        {}{}",
        r.message,
        if r.decided { "" } else { " (not decided)" }
    );
    let pred = |s: Span| map.slice(s).to_string();
    for c in &r.checks {
        render_check(out, c, &pred, "        ");
    }
    if r.omitted_checks > 0 {
        let _ = writeln!(out, "        … {} more checks", r.omitted_checks);
    }
    for m in &r.near_misses {
        let _ = writeln!(
            out,
            "        near miss: {:?} ({}) failed `{}`: {}",
            &*m.span.name,
            m.span.service,
            pred(m.pred),
            m.message
        );
    }
    for g in &r.groups {
        let _ = writeln!(
            out,
            "        group {} ({} span{}): {}",
            g.key,
            g.spans,
            if g.spans == 1 { "" } else { "s" },
            if g.passed { "ok" } else { "FAIL" }
        );
        for c in &g.checks {
            render_check(out, c, &pred, "          ");
        }
    }
}

fn render_check(
    out: &mut String,
    c: &tbt_compiler::eval::Check,
    pred: &dyn Fn(Span) -> String,
    indent: &str,
) {
    let on = c
        .span
        .as_ref()
        .map(|s| format!(" on {:?} ({})", &*s.name, s.service))
        .unwrap_or_default();
    let actual = c
        .actual
        .as_ref()
        .map(|v| format!(" actual {v}"))
        .unwrap_or_default();
    let msg = c
        .message
        .as_ref()
        .map(|m| format!(" — {m}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{indent}{} `{}`{on}{actual}{msg}",
        if c.passed { "ok  " } else { "FAIL" },
        pred(c.pred)
    );
}

fn run_case(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut trace_file = None;
    let mut responses: HashMap<String, Response> = HashMap::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# trace: ") {
            trace_file = Some(t.trim().to_string());
        } else if let Some(r) = line.strip_prefix("# response ") {
            let (step, spec) = r.split_once(": ").unwrap();
            responses.insert(step.to_string(), response_from(spec.trim()));
        }
    }
    let traces = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/traces");
    let trace_path = traces.join(trace_file.expect("a `# trace:` line"));
    let trace = Trace::from_otlp_json(&std::fs::read_to_string(trace_path).unwrap(), None).unwrap();
    let mut map = SourceMap::new();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let (mut module, file) = load_module(&mut map, &name, &text);
    assert_eq!(map.get(FileId(0)).name, name);
    let mut out = String::new();
    for item in &file.items {
        let ItemKind::Test(test) = &item.kind else {
            continue;
        };
        // A test is one inline step or several `step` blocks.
        let mut steps: Vec<(String, Vec<&ast::Stmt>)> = Vec::new();
        let inline: Vec<&ast::Stmt> = test
            .body
            .iter()
            .filter(|s| matches!(s.kind, StmtKind::Expect(_)))
            .collect();
        if !inline.is_empty() {
            steps.push((test.name.name.clone(), inline));
        }
        for s in &test.body {
            if let StmtKind::Step(step) = &s.kind {
                steps.push((step.name.name.clone(), step.body.iter().collect()));
            }
        }
        for (step, stmts) in steps {
            let expects: Vec<Expectation> = stmts
                .iter()
                .filter_map(|s| match &s.kind {
                    StmtKind::Expect(e) => Some(Expectation {
                        span: s.span,
                        expect: e,
                    }),
                    _ => None,
                })
                .collect();
            let outcome = evaluate_step(
                &expects,
                &trace,
                responses.get(&step),
                &module,
                &PureHost,
                true,
            );
            let _ = writeln!(
                out,
                "── {} / {step}: {}",
                test.name.name,
                if outcome.passed() { "passed" } else { "FAILED" }
            );
            for r in &outcome.results {
                render_result(&mut out, &map, r);
            }
            for (k, v) in &outcome.captures {
                let _ = writeln!(out, "  capture {step}.{k} = {v}");
                module.vars.insert(format!("{step}.{k}"), v.clone());
            }
        }
    }
    out
}

#[test]
fn golden_cases() {
    write_shop_fixture();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/eval");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tbt"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    for case in cases {
        let rendered = run_case(&case);
        let name = case.file_stem().unwrap().to_string_lossy().to_string();
        let source = std::fs::read_to_string(&case).unwrap();
        let body = format!("----- SOURCE\n{source}----- RESULTS\n{rendered}");
        insta::with_settings!({ snapshot_path => "../eval/snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!(name, body);
        });
    }
}

/// `shop.json`: the hand-made shop trace of `support::shop()`, written as the Collector's file
/// exporter would (hex ids, int64 as strings). Written when missing.
fn write_shop_fixture() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/traces/shop.json");
    if path.exists() {
        return;
    }
    let data = opentelemetry_proto::tonic::trace::v1::TracesData {
        resource_spans: crate::support::build(&crate::support::shop()),
    };
    std::fs::write(path, serde_json::to_string(&data).unwrap() + "\n").unwrap();
}
