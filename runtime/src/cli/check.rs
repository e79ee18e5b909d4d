//! `tbt check [PATHS…]`: compile without running; report every diagnostic.

use super::Status;
use crate::output::{self, Color, DiagFormat};
use std::io::Write;
use std::path::PathBuf;
use tbt_compiler::Severity;

/// Arguments of `tbt check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories (searched recursively for `*.tbt`); default `.`.
    pub paths: Vec<PathBuf>,
    /// Lint settings.
    #[command(flatten)]
    pub lints: super::CheckOptions,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiagFormat::Human)]
    pub format: DiagFormat,
    /// Treat warnings as errors (`--deny warnings`).
    #[arg(long, value_parser = ["warnings"])]
    pub deny: Option<String>,
    /// Print nothing but diagnostics.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `tbt check`.
pub fn run(args: Args, color: Color) -> Status {
    let c = match super::compile_paths(&args.paths, &args.lints) {
        Ok(c) => c,
        Err(e) => {
            crate::output::usage_error(&e, color);
            return Status::Usage;
        }
    };
    let deny = args.deny.is_some();
    let errors = c
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = c
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    if output::emit(&c.sources, &c.diagnostics, args.format, color).is_err() {
        return Status::Infra;
    }
    let roots = c
        .program
        .modules
        .iter()
        .filter(|m| m.origin == tbt_compiler::program::Origin::Root)
        .count();
    if args.format == DiagFormat::Human && !args.quiet {
        let mut err = std::io::stderr().lock();
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        let files = plural(roots, "file");
        let _ = if errors + warnings == 0 {
            writeln!(
                err,
                "checked {files}, {}: no problems",
                plural(c.program.tests.len(), "test")
            )
        } else {
            writeln!(
                err,
                "checked {files}: {}, {}",
                plural(errors, "error"),
                plural(warnings, "warning")
            )
        };
    }
    // The process exits next: freeing a large syntax tree node by node would only cost time.
    std::mem::forget(c);
    if errors > 0 || (deny && warnings > 0) {
        Status::Usage
    } else {
        Status::Ok
    }
}
