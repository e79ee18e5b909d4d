//! The `tbt` command line and everything that does I/O.
//!
//! The pure language work (parsing, checking, planning, evaluating) lives in `tbt-compiler`; this
//! crate reads files, runs suites (scheduler, triggers, OTLP receiver, trace sources, services)
//! and prints reports.

pub mod cli;
pub mod config;
pub mod files;
pub mod output;
pub mod receiver;
pub mod redact;
pub mod remote;
pub mod report;
pub mod run;
pub mod scheduler;
pub mod service;
pub mod stop;
pub mod store;
pub mod tls;
pub mod trigger;
