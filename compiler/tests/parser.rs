//! Parser tests: snapshots of the tree for every construct, and of the diagnostics for errors.

mod common;

use common::{expr_ok, parse_ok, snapshot, TASTE};

#[test]
fn taste() {
    insta::assert_snapshot!(snapshot(TASTE));
}
