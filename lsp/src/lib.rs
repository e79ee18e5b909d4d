//! The `tbt` language server (`tbt lsp`): a thin client of `tbt-compiler`.
//!
//! It never parses on its own: it keeps the open documents, asks the compiler for a compilation
//! of the suite with those texts in place of the files on disk, and turns the results into LSP
//! answers. See `docs/lsp.md` for the features and settings.
//!
//! Nothing here writes to stdout (it carries the protocol); logs go to stderr.

mod convert;
mod document;
mod features;
mod ide;
mod last_run;
mod legend;
pub mod position;
mod server;
mod worker;
mod workspace;

pub use convert::{SOURCE, to_lsp_diagnostic};
pub use server::{Backend, COMPLETION_WAIT, DEFAULT_DIAGNOSTIC_DELAY, RUN_TEST_COMMAND};
pub use workspace::{
    Group, OpenDoc, Snapshot, compile_group, find_suite_files, parse_check_section,
};

use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp_server::{LspService, Server};

/// Serves the protocol on `input`/`output` until the client sends `exit` or closes the stream.
pub async fn serve<I, O>(input: I, output: O)
where
    I: AsyncRead + Unpin,
    O: AsyncWrite,
{
    let (service, socket) = LspService::new(Backend::new);
    Server::new(input, output, socket).serve(service).await;
}

/// The runtime `tbt lsp` runs on: a worker per core, and few blocking threads (compilations,
/// file reads, standard input), since each thread keeps its own allocator caches.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(4)
        .enable_all()
        .build()
}

/// `tbt lsp`: serves on standard input and output.
pub fn run_stdio() -> std::io::Result<()> {
    runtime()?.block_on(serve(tokio::io::stdin(), tokio::io::stdout()));
    Ok(())
}
