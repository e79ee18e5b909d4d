//! The `.tbt` language: everything that needs no I/O.
//!
//! Source text → tokens ([`lexer`]) → syntax tree ([`ast`], [`parser`]) → checked program
//! ([`check`]) → [`plan::Plan`] (a petgraph DAG of triggers, trace waits and assertions). Also the
//! trace model and the evaluator of selectors and expectations, the formatter and the embedded
//! standard library. No tokio, no network, no file system: callers hand in source text.

pub mod ast;
pub mod diagnostic;
pub mod lexer;
pub mod parser;
pub mod span;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use span::{FileId, SourceMap, Span};
pub mod builtins;
pub mod check;
pub mod compile;
pub mod plan;
pub mod program;
pub mod render;
pub mod semconv;
pub mod stdlib;
pub use codespan_reporting::term as codespan_term;
pub mod format;
