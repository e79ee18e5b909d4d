//! Generates the parser from `src/grammar.lalrpop`.
fn main() {
    println!("cargo:rerun-if-changed=src/grammar.lalrpop");
}
