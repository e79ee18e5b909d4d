//! `tbt fmt [PATHS…]` and `tbt fmt --check`: the one canonical layout.
//!
//! A file with syntax errors is never rewritten: its diagnostics are printed and the exit code is 2.

use super::Status;
use crate::output::{self, Color, DiagFormat};
use std::io::Write;
use std::path::PathBuf;
use tbt_compiler::SourceMap;

/// Arguments of `tbt fmt`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories; default `.`.
    pub paths: Vec<PathBuf>,
    /// Change nothing; list the files that would change and exit 1 if any.
    #[arg(long)]
    pub check: bool,
}

/// Runs `tbt fmt`.
pub fn run(args: Args, color: Color) -> Status {
    let files = match crate::files::collect(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            output::usage_error(&format!("cannot read `{}`: {}", e.path, e.reason), color);
            return Status::Usage;
        }
    };
    let mut status = Status::Ok;
    let mut changed = 0usize;
    for f in &files {
        let name = f.to_string_lossy().replace('\\', "/");
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                output::usage_error(&format!("cannot read `{name}`: {e}"), color);
                status = Status::Usage;
                continue;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        match tbt_compiler::format::format(&text) {
            Ok(out) => {
                if out.as_bytes() == bytes.as_slice() {
                    continue;
                }
                changed += 1;
                if args.check {
                    let _ = writeln!(std::io::stdout(), "{name}");
                    if status == Status::Ok {
                        status = Status::Failed;
                    }
                } else if let Err(e) = std::fs::write(f, out) {
                    output::usage_error(&format!("cannot write `{name}`: {e}"), color);
                    status = Status::Infra;
                }
            }
            Err(diags) => {
                let mut sources = SourceMap::new();
                sources.add(name.clone(), text.into_owned());
                let _ = output::emit(&sources, &diags, DiagFormat::Human, color);
                status = Status::Usage;
            }
        }
    }
    if !args.check && changed > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "formatted {changed} file{}",
            if changed == 1 { "" } else { "s" }
        );
    }
    status
}
