//! The test tiers' knobs (docs/testing.md), shared by the integration tests of every crate (the
//! runtime and the language server include this file with `#[path]`).
//!
//! - `TBT_TEST_FULL=1`: loops over the whole repository do all their work instead of a sample that
//!   covers the same cases, and property tests run ten times their cases.
//! - `PROPTEST_CASES=N`: every property test runs exactly N cases (a long hunt, or a quick look).
#![allow(dead_code)]

/// True when `TBT_TEST_FULL` is set to anything but `0` or the empty string.
pub fn full() -> bool {
    std::env::var_os("TBT_TEST_FULL").is_some_and(|v| !v.is_empty() && v != "0")
}

/// How many cases a property test runs: `PROPTEST_CASES` when set, else `default` — ten times
/// that under `TBT_TEST_FULL`.
pub fn cases(default: u32) -> u32 {
    let set = std::env::var("PROPTEST_CASES").ok();
    match set.and_then(|v| v.parse().ok()) {
        Some(n) => n,
        None if full() => default.saturating_mul(10),
        None => default,
    }
}
