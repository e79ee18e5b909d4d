//! `tbt plan [PATHS…]`: print the dependency DAG the runtime would execute.

use super::Status;
use crate::output::{self, Color, DiagFormat};
use std::io::Write;
use std::path::PathBuf;

/// Output format of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// One line per node with its prerequisites.
    Text,
    /// Graphviz DOT (`tbt plan --format dot | dot -Tsvg > plan.svg`).
    Dot,
    /// JSON nodes and edges.
    Json,
}

/// Arguments of `tbt plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories; default `.`.
    pub paths: Vec<PathBuf>,
    /// Lint settings.
    #[command(flatten)]
    pub lints: super::CheckOptions,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

/// Runs `tbt plan`.
pub fn run(args: Args, color: Color) -> Status {
    let c = match super::compile_paths(&args.paths, &args.lints) {
        Ok(c) => c,
        Err(e) => {
            crate::output::usage_error(&e, color);
            return Status::Usage;
        }
    };
    if !c.diagnostics.is_empty()
        && output::emit(&c.sources, &c.diagnostics, DiagFormat::Human, color).is_err()
    {
        return Status::Infra;
    }
    let Some(plan) = &c.plan else {
        return Status::Usage;
    };
    let text = match args.format {
        PlanFormat::Text => plan.to_text(&c.sources),
        PlanFormat::Dot => plan.to_dot(&c.sources),
        PlanFormat::Json => {
            let mut s = serde_json::to_string_pretty(&plan.to_json(&c.sources)).unwrap_or_default();
            s.push('\n');
            s
        }
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => Status::Ok,
        Err(_) => Status::Infra,
    }
}
