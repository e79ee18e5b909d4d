//! Generates the parser from `src/grammar.lalrpop`.
//!
//! The output goes to `$OUT_DIR/<absolute manifest dir>/grammar.rs` rather than
//! `$OUT_DIR/grammar.rs`: several checkouts of this workspace may share one target directory,
//! and cargo gives them the same `OUT_DIR`; keyed by the checkout, one checkout's build can never
//! compile another checkout's grammar. `parser.rs` includes the same path.
use std::path::PathBuf;

fn main() {
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = PathBuf::from(out_dir).join(manifest_dir.trim_start_matches('/'));
    println!("cargo:rerun-if-changed=src/grammar.lalrpop");
    // Also rerun when the generated file is missing (another checkout ran this script last).
    println!(
        "cargo:rerun-if-changed={}",
        out.join("grammar.rs").display()
    );
    if let Err(e) = lalrpop::Configuration::new()
        .set_in_dir("src")
        .set_out_dir(&out)
        .emit_rerun_directives(true)
        .process()
    {
        eprintln!("{e}");
        std::process::exit(1);
    }
    // The generated file is watched, and cargo takes a watched file written after the script
    // started as a change: the next cargo command would run this script again and rebuild every
    // crate of the workspace for nothing (once per fresh build, in CI twice). Dated like the
    // grammar it comes from, it counts as changed only when it goes missing.
    let generated = out.join("grammar.rs");
    let grammar_time = std::fs::metadata("src/grammar.lalrpop").and_then(|m| m.modified());
    if let Ok(time) = grammar_time
        && let Ok(file) = std::fs::File::options().write(true).open(&generated)
    {
        let _ = file.set_modified(time);
    }
}
