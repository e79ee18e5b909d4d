//! The dependencies between steps and tests that the checker records and the planner turns
//! into DAG edges.
//!
//! A leaf module so that the checker ([`crate::check`]), which finds them, and the planner
//! ([`crate::plan`]), which orders by them, both import them from here and not from each other.

use crate::program::CaptureSource;
use crate::span::Span;

/// When, inside its step, a value is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before the trigger fires (step `let`s, trigger arguments and options).
    Trigger,
    /// When the step's expectations are evaluated.
    Assert,
}

/// What a dependency is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DepKind {
    /// Reads capture `name` of step `step` of test `test`.
    Capture {
        /// The producing test.
        test: usize,
        /// The producing step.
        step: usize,
        /// The capture's name.
        name: String,
        /// Response or trace.
        source: CaptureSource,
    },
    /// `after test`.
    After {
        /// The test that must finish first.
        test: usize,
    },
}

/// A dependency of step `step` of test `test` on another node.
#[derive(Clone, Debug)]
pub struct Dep {
    /// The consuming test.
    pub test: usize,
    /// The consuming step.
    pub step: usize,
    /// When the consumer needs it.
    pub phase: Phase,
    /// On what.
    pub kind: DepKind,
    /// Where the reference is written.
    pub span: Span,
}
