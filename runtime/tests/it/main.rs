//! The runtime's integration tests, one module per area, linked into one test binary (`it`): one
//! link of the dependency graph instead of one per file, and tests that mostly wait (on exporters,
//! services, deadlines) overlap with those that compute.
//!
//! Run one area with a filter: `cargo test -p tbt --test it services::`. The `slow` modules are the
//! slow tier (docs/testing.md): `cargo test --workspace -- --skip slow::` leaves them out.

#[path = "../../../compiler/tests/it/tier.rs"]
mod tier;

mod cli;
mod last_run;
mod layering;
mod receiver;
mod remote;
mod report;
mod run_file;
mod run_live;
mod scheduler;
mod scrub;
mod secrets;
mod services;
mod signals;
mod support;
mod triggers;

/// The slow tier: apps under the OpenTelemetry Python and Node SDKs (installed by
/// `tests/interop/install.sh`), real exporters' default delays, and the example shop's suites.
mod slow {
    mod setup;

    mod completion;
    mod interop;
    mod shop;
}
