//! Writes the synthetic benchmark suite: `cargo run --release -p tbt-compiler --example gen_suite -- DIR [FILES] [TESTS_PER_FILE]`
//! (default 100 files × 100 tests = 10,000 tests).

#[path = "../benches/synth.rs"]
mod synth;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "target/bench-suite".into()));
    let files: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let per: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let mut bytes = 0;
    for (name, text) in synth::suite(files, per) {
        let path = dir.join(name.strip_prefix("suite/").unwrap_or(&name));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        bytes += text.len();
        std::fs::write(path, text)?;
    }
    eprintln!(
        "wrote {} tests in {files} files, {:.2} MB, to {}",
        files * per,
        bytes as f64 / 1e6,
        dir.display()
    );
    Ok(())
}
