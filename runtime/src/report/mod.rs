//! Reporters: each reads only the [`RunResult`] tree (and the sources, to point at them). They
//! do not redact: the sinks of `tbt run` pass everything they write through the run's
//! [`crate::redact::Redactor`].

pub mod json;
pub mod junit;
pub mod terminal;
