//! Debug helper: parse a file and print the tree and diagnostics.
fn main() {
    let path = std::env::args().nth(1).expect("path");
    let src = std::fs::read_to_string(path).expect("read");
    let p = tbt_compiler::parser::parse(tbt_compiler::FileId(0), &src);
    print!("{}", tbt_compiler::parser::dump(&p.file));
    for d in &p.diagnostics {
        println!("{} {:?} {}", d.code, d.span().range(), d.message);
    }
}
