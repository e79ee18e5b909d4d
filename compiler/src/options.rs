//! The settings of one compilation that change what the checker reports.
//!
//! A leaf module: the driver ([`crate::compile`]) takes them and hands them to the checker
//! ([`crate::check`]); both import them from here, so neither imports the other for them.
//! Re-exported as `compile::Options`, the path callers use.

use crate::diagnostic::Severity;

/// Settings that change what the checker reports.
#[derive(Clone, Debug)]
pub struct Options {
    /// Severity of TBT0305 (deprecated attribute); `None` turns it off.
    pub deprecated_attributes: Option<Severity>,
    /// Severity of TBT0304 (unknown attribute close to a known one); `None` turns it off.
    pub unknown_attributes: Option<Severity>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            deprecated_attributes: Some(Severity::Warning),
            unknown_attributes: Some(Severity::Warning),
        }
    }
}
