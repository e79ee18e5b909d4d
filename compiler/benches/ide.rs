//! Editor analysis benchmarks (`tbt_compiler::ide`) on a generated 5,000-line suite (one file
//! of the synthetic suite of `synth.rs`, plus its `lib.tbt`): what the language server does after
//! an edit (recompile + index: the diagnostics latency), completion, hover, references and
//! semantic tokens on the ready analysis. Before the criterion groups, a percentile pass prints
//! p50/p95/max over 200 edits (each a different change) and the peak resident memory. See
//! `docs/benchmarks.md`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tbt_compiler::compile::{MemoryLoader, Options};
use tbt_compiler::ide::{self, Analysis};

#[path = "synth.rs"]
mod synth;

/// `lib.tbt` and one suite file of at least 5,000 lines.
fn workspace() -> (String, String) {
    let mut tests = 50;
    loop {
        let suite = synth::suite(1, tests);
        let text = suite[1].1.clone();
        if text.lines().count() >= 5_000 {
            return (suite[0].1.clone(), text);
        }
        tests += 10;
    }
}

fn analyze(lib: &str, main: &str) -> Analysis {
    let mut loader = MemoryLoader::default();
    loader.files.insert("suite/lib.tbt".into(), lib.to_string());
    ide::analyze(
        vec![("suite/f000.tbt".into(), main.as_bytes().to_vec())],
        &mut loader,
        &Options::default(),
    )
}

/// The text after edit number `i`: a changed duration bound in one of the tests.
fn edited(main: &str, i: usize) -> String {
    let mut n = 0;
    let mut out = String::with_capacity(main.len());
    let target = i % 200;
    for line in main.split_inclusive('\n') {
        if line.contains("duration < 300ms") {
            if n == target {
                out.push_str(&line.replace("300ms", &format!("{}ms", 300 + i)));
                n += 1;
                continue;
            }
            n += 1;
        }
        out.push_str(line);
    }
    out
}

/// Cursor positions: inside a filter after `http.re`, at a statement start in an expectation
/// block, after `lib.`, and after `create.`.
fn positions(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mid = text.len() / 2;
    let at = |needle: &str, back: usize| {
        text[mid..]
            .find(needle)
            .map(|i| mid + i + needle.len() - back)
    };
    if let Some(o) = at("span[service == \"payments\"", 0) {
        out.push(("in a filter".into(), o - "service == \"payments\"".len()));
    }
    if let Some(o) = at("      count == 1\n", "count == 1\n".len()) {
        out.push(("block statement start".into(), o));
    }
    if let Some(o) = at("${lib.", 0) {
        out.push(("after `lib.`".into(), o));
    }
    if let Some(o) = at("${create.", 0) {
        out.push(("after `create.`".into(), o));
    }
    out
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, v: Vec<Duration>) {
    let max = v.iter().max().copied().unwrap_or_default();
    println!(
        "{name:<44} p50 {:>9.3?}  p95 {:>9.3?}  max {:>9.3?}  (n={})",
        percentile(v.clone(), 0.5),
        percentile(v.clone(), 0.95),
        max,
        v.len()
    );
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn percentiles() {
    let (lib, main) = workspace();
    println!(
        "suite: {} lines, {} bytes (+ lib.tbt)",
        main.lines().count(),
        main.len()
    );
    let mut edit = Vec::new();
    let mut complete = Vec::new();
    let mut edit_complete = Vec::new();
    let pos = positions(&main);
    assert!(pos.len() >= 3, "positions found: {pos:?}");
    let mut last = None;
    for i in 0..200 {
        let text = edited(&main, i);
        let t = Instant::now();
        let a = analyze(&lib, &text);
        black_box(a.diagnostics().len());
        let e = t.elapsed();
        edit.push(e);
        let file = a.file_id("suite/f000.tbt").expect("file");
        let (_, o) = &pos[i % pos.len()];
        let t = Instant::now();
        let items = a.completions(file, *o);
        let c = t.elapsed();
        assert!(!items.is_empty());
        complete.push(c);
        edit_complete.push(e + c);
        last = Some(a);
    }
    report("edit → diagnostics (compile + index)", edit);
    report("completion on the ready analysis", complete);
    report(
        "edit → completion (compile + index + complete)",
        edit_complete,
    );
    drop(last);
    if let Some(mb) = peak_rss_mb() {
        println!("peak resident memory of this process: {mb:.1} MB");
    }
}

fn ide_bench(c: &mut Criterion) {
    percentiles();
    let (lib, main) = workspace();
    let a = analyze(&lib, &main);
    let file = a.file_id("suite/f000.tbt").expect("file");
    let pos = positions(&main);
    let mut g = c.benchmark_group("ide");
    g.sample_size(20);
    let mut i = 0;
    g.bench_function("edit → analyze (diagnostics)", |b| {
        b.iter(|| {
            i += 1;
            let text = edited(&main, i);
            black_box(analyze(&lib, &text))
        })
    });
    for (name, o) in &pos {
        g.bench_function(format!("completion {name}"), |b| {
            b.iter(|| black_box(a.completions(file, *o)))
        });
    }
    let hover_at = main.find("lib.svc(").map_or(0, |i| i + 4);
    g.bench_function("hover on a matcher", |b| {
        b.iter(|| black_box(a.hover(file, hover_at)))
    });
    g.bench_function("references of a lib matcher", |b| {
        b.iter(|| black_box(a.references(file, hover_at, true)))
    });
    g.bench_function("semantic tokens of the file", |b| {
        b.iter(|| black_box(a.semantic_tokens(file)))
    });
    g.bench_function("document symbols", |b| {
        b.iter(|| black_box(a.document_symbols(file)))
    });
    g.finish();
}

criterion_group!(benches, ide_bench);
criterion_main!(benches);
