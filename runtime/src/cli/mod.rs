//! The command line: `tbt check`, `tbt fmt`, `tbt plan`, `tbt run`, `tbt lsp`.
//!
//! Exit codes (see `docs/cli.md`): 0 success; 1 a check that found something to change
//! (`fmt --check`) or an expectation that failed; 2 compile or usage error; 3 infrastructure error.

mod check;
mod fmt;
mod lsp;
mod plan;
mod run;

use crate::output::Color;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Trace-based testing: turn OpenTelemetry traces into tests.
#[derive(Debug, Parser)]
#[command(name = "tbt", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// When to colour output.
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    pub color: Color,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check suites for errors without running them (for editors, CI and pre-commit).
    Check(check::Args),
    /// Format suites in the canonical layout.
    Fmt(fmt::Args),
    /// Print the execution plan (the dependency DAG) of a suite.
    Plan(plan::Args),
    /// Run suites: fire triggers, collect their traces, check the expectations.
    Run(Box<run::Args>),
    /// Serve the language server protocol on stdin/stdout (for editors).
    Lsp(lsp::Args),
}

/// Exit status of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Everything passed.
    Ok = 0,
    /// A check failed (`fmt --check` found changes; an expectation failed).
    Failed = 1,
    /// Compile or usage error.
    Usage = 2,
    /// Infrastructure error.
    Infra = 3,
    /// Stopped by Ctrl-C (128 + SIGINT).
    Interrupted = 130,
    /// Stopped by SIGTERM (128 + SIGTERM).
    Terminated = 143,
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let status = match cli.command {
        Command::Check(a) => check::run(a, cli.color),
        Command::Fmt(a) => fmt::run(a, cli.color),
        Command::Plan(a) => plan::run(a, cli.color),
        Command::Run(a) => run::run(*a, cli.color),
        Command::Lsp(a) => lsp::run(a),
    };
    ExitCode::from(status as u8)
}

/// `--deprecated-attributes`: how to report TBT0305 (many SDKs still emit the old names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LintLevel {
    /// Do not report.
    Off,
    /// Report as a note.
    Note,
    /// Report as a warning (fails only with `--deny warnings`).
    #[default]
    Warning,
    /// Report as an error.
    Error,
}

impl LintLevel {
    fn severity(self) -> Option<tbt_compiler::Severity> {
        match self {
            LintLevel::Off => None,
            LintLevel::Note => Some(tbt_compiler::Severity::Note),
            LintLevel::Warning => Some(tbt_compiler::Severity::Warning),
            LintLevel::Error => Some(tbt_compiler::Severity::Error),
        }
    }
}

/// Checker settings shared by the commands that compile suites.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct CheckOptions {
    /// How to report deprecated OpenTelemetry attribute names (TBT0305) [default: warning, or
    /// `[check] deprecated_attributes` in tbt.toml].
    #[arg(long, value_enum)]
    pub deprecated_attributes: Option<LintLevel>,
    /// How to report attribute names close to, but not in, the semantic conventions (TBT0304)
    /// [default: warning, or `[check] unknown_attributes` in tbt.toml].
    #[arg(long, value_enum)]
    pub unknown_attributes: Option<LintLevel>,
    /// The settings file (default: the nearest `tbt.toml` above the current directory).
    #[arg(long, value_name = "PATH")]
    pub config: Option<std::path::PathBuf>,
}

impl CheckOptions {
    /// The checker options: flags, then tbt.toml, then defaults.
    fn to_options(
        &self,
        config: &crate::config::Config,
    ) -> Result<tbt_compiler::compile::Options, String> {
        let level = |flag: Option<LintLevel>,
                     file: &Option<String>,
                     key: &str|
         -> Result<LintLevel, String> {
            if let Some(l) = flag {
                return Ok(l);
            }
            match file.as_deref() {
                None => Ok(LintLevel::Warning),
                Some(s) => <LintLevel as clap::ValueEnum>::from_str(s, false).map_err(|_| {
                    format!(
                        "tbt.toml: `[check] {key} = \"{s}\"` must be off, note, warning or error"
                    )
                }),
            }
        };
        Ok(tbt_compiler::compile::Options {
            deprecated_attributes: level(
                self.deprecated_attributes,
                &config.check.deprecated_attributes,
                "deprecated_attributes",
            )?
            .severity(),
            unknown_attributes: level(
                self.unknown_attributes,
                &config.check.unknown_attributes,
                "unknown_attributes",
            )?
            .severity(),
        })
    }
}

/// Loads and compiles the suite at `paths` with the configuration and options given. `Err` says why
/// it could not (a configuration error, a file that cannot be read), for the caller to print as a
/// usage error.
pub(crate) fn compile_paths(
    paths: &[std::path::PathBuf],
    options: &CheckOptions,
) -> Result<tbt_compiler::compile::Compilation, String> {
    let config = crate::config::Config::load(options.config.as_deref())?;
    let options = options.to_options(&config)?;
    let unreadable = |e: crate::files::FileError| format!("cannot read `{}`: {}", e.path, e.reason);
    let files = crate::files::collect(paths).map_err(unreadable)?;
    let roots = crate::files::read_roots(&files).map_err(unreadable)?;
    let mut loader = crate::files::FsLoader;
    Ok(tbt_compiler::compile::compile(roots, &mut loader, &options))
}
