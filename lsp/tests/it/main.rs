//! The language server's integration tests, one module per area, linked into one test binary
//! (`it`).
//!
//! Run one area with a filter: `cargo test -p tbt-lsp --test it navigation::`. The `slow` modules
//! are the slow tier (docs/testing.md): `cargo test --workspace -- --skip slow::` leaves them out.

mod common;
#[path = "../../../compiler/tests/it/tier.rs"]
mod tier;

mod binary;
mod editing;
mod edits;
mod navigation;
mod server;

/// The slow tier: a real editor (Neovim) as the client.
mod slow {
    mod neovim;
}
