//! Front-end benchmarks: lexing + parsing throughput, and the whole compile (parse, resolve,
//! type-check, lint, plan) of the 10,000-test synthetic suite. See `docs/benchmarks.md`.

// The `tbt` binary runs with mimalloc; measure the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tbt_compiler::compile::{MemoryLoader, Options, compile};

#[path = "synth.rs"]
mod synth;

fn frontend(c: &mut Criterion) {
    let suite = synth::suite(100, 100);
    let bytes: usize = suite.iter().map(|(_, t)| t.len()).sum();
    let mut g = c.benchmark_group("frontend");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("lex", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (_, t) in &suite {
                n += tbt_compiler::lexer::Lexer::new(tbt_compiler::FileId(0), t, 0).count();
            }
            black_box(n)
        })
    });
    g.bench_function("lex+parse", |b| {
        b.iter(|| {
            for (i, (_, t)) in suite.iter().enumerate() {
                black_box(tbt_compiler::parser::parse(
                    tbt_compiler::FileId(i as u32),
                    t,
                ));
            }
        })
    });
    g.bench_function("compile 10k tests", |b| {
        b.iter(|| {
            let mut loader = MemoryLoader::default();
            loader
                .files
                .insert("suite/lib.tbt".into(), suite[0].1.clone());
            let roots = suite[1..]
                .iter()
                .map(|(n, t)| (n.clone(), t.as_bytes().to_vec()))
                .collect();
            let c = compile(roots, &mut loader, &Options::default());
            assert!(!c.has_errors());
            black_box(c)
        })
    });
    g.finish();
}

criterion_group!(benches, frontend);
criterion_main!(benches);
