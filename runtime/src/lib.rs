//! The `tbt` command line and everything that does I/O.
//!
//! The pure language work (parsing, checking, planning, evaluating) lives in `tbt-compiler`; this
//! crate reads files, prints reports and, later, runs suites.

pub mod cli;
pub mod config;
pub mod files;
pub mod output;
pub mod receiver;
pub mod remote;
pub mod report;
pub mod run;
pub mod scheduler;
pub mod service;
pub mod store;
pub mod tls;
pub mod trigger;
