//! The compiler's integration tests, one module per area, linked into one test binary (`it`): one
//! link of the dependency graph instead of one per file, and the modules' tests run side by side.
//! `tests/memory.rs` stays a binary of its own: it installs a counting global allocator, which
//! would count the allocations of every other test running at the same time.
//!
//! Run one area with a filter: `cargo test -p tbt-compiler --test it format::`.

mod common;
mod support;
mod tier;

mod algebra;
mod bindings;
mod check_props;
mod diagnostics_doc;
mod evaluator;
mod format;
mod golden;
mod ide;
mod language_doc;
mod lexer;
mod parser;
mod parser_errors;
mod parser_props;
mod sdk_fixtures;
mod stdlib;
mod trace_model;
mod ui;
