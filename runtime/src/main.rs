//! The `tbt` binary.
fn main() {}
