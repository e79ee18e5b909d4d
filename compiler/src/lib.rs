//! The `.tbt` language: everything that needs no I/O.
//!
//! Source text → tokens ([`lexer`]) → syntax tree ([`ast`], [`parser`]) → checked program
//! ([`check`]) → [`plan::Plan`] (a petgraph DAG of triggers, trace waits and assertions). Also the
//! trace model ([`trace`]) and the evaluator of selectors and expectations ([`eval`]), the
//! formatter and the embedded standard library. No tokio, no network, no file system: callers
//! hand in source text.

pub mod ast;
pub mod diagnostic;
pub mod eval;
pub mod hex;
pub mod lexer;
pub mod parser;
pub mod span;
pub mod trace;
pub mod value;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use span::{FileId, SourceMap, Span};
pub use trace::Trace;
pub use value::Value;
pub mod builtins;
pub mod check;
pub mod compile;
pub mod deps;
mod options;
pub mod plan;
pub mod program;
pub mod render;
pub mod semconv;
pub mod stdlib;
pub mod trigger;
pub use codespan_reporting::term as codespan_term;
pub mod bindings;
pub mod format;
pub mod ide;

/// The number of threads worth running at once (cached: the standard library reads cgroup files
/// each time it is asked).
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
