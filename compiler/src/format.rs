//! The formatter (placeholder).
use crate::Diagnostic;
/// Formats.
pub fn format(src: &str) -> Result<String, Vec<Diagnostic>> {
    Ok(src.to_string())
}
