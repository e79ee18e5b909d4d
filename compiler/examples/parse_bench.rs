//! Throughput check: `cargo run --release --example parse_bench [MB]` parses a generated file.
fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let unit = std::fs::read_to_string("compiler/tests/common/taste.tbt")
        .expect("run from the workspace root");
    let unit = unit.replace("test place_order", "test t_NUM");
    let mut src = String::new();
    let mut i = 0;
    while src.len() < mb << 20 {
        src.push_str(&unit.replace("NUM", &i.to_string()));
        i += 1;
    }
    if std::env::args().nth(2).as_deref() == Some("generate-only") {
        println!("{} bytes", src.len());
        return;
    }
    let cpu0 = cpu_seconds();
    let start = std::time::Instant::now();
    let parsed = tbt_compiler::parser::parse(tbt_compiler::FileId(0), &src);
    let t = start.elapsed();
    let cpu = cpu_seconds() - cpu0;
    let items = parsed.file.items.len();
    let diagnostics = parsed.diagnostics.len();
    let start = std::time::Instant::now();
    drop(parsed);
    let d = start.elapsed();
    let lex_start = std::time::Instant::now();
    let mut lexer = tbt_compiler::lexer::Lexer::new(tbt_compiler::FileId(0), &src, 0);
    let tokens = (&mut lexer).count();
    let l = lex_start.elapsed();
    println!(
        "{items} items, {diagnostics} diagnostics, parse {:.1} MB/s ({t:?}, {:.1} MB/s of CPU time), drop {d:?}, lex only {tokens} tokens {:.1} MB/s",
        src.len() as f64 / 1e6 / t.as_secs_f64(),
        src.len() as f64 / 1e6 / cpu,
        src.len() as f64 / 1e6 / l.as_secs_f64(),
    );
}

/// User + system CPU time of this thread (Linux), so that a busy machine does not skew the rate.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|x| x.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}
