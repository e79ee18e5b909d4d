//! `tbt lsp`: the language server on standard input and output (see `docs/lsp.md`).

use super::Status;

/// Arguments of `tbt lsp`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Accepted for editors that pass it (VS Code's language client does): the server always
    /// speaks on standard input and output.
    #[arg(long)]
    pub stdio: bool,
}

/// Runs the server until the client sends `exit` or closes standard input.
pub fn run(_args: Args) -> Status {
    match tbt_lsp::run_stdio() {
        Ok(()) => Status::Ok,
        Err(e) => {
            eprintln!("tbt lsp: cannot start: {e}");
            Status::Infra
        }
    }
}
