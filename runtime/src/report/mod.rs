//! Reporters: each reads only the [`RunResult`] tree (and the sources, to point at them).
//!
//! Every string a reporter writes passes through a [`Redactor`] that replaces the values of
//! `secret let`s with `***`, so secrets never reach a terminal, a log or a report file.

pub mod json;
pub mod junit;
pub mod terminal;

/// Replaces secret values with `***` in text.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Redacts these values (empty and very short values are ignored: they would mask everything).
    pub fn new(mut secrets: Vec<String>) -> Self {
        secrets.retain(|s| s.chars().count() >= 3);
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// The text with every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}
