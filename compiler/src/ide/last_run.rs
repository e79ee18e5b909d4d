//! What the last `tbt run` saw, for the editor: the `.tbt/last-run.json` artifact.
//!
//! `tbt run` writes it at the end of every run into `.tbt/` of the directory it was started in
//! (next to the suites, where the editor's workspace is). It holds the attribute names and a
//! bounded sample of distinct values seen in the run's traces, and for every `expect SELECTOR`
//! how many spans the selector matched, keyed by file (relative to the directory holding
//! `.tbt/`, as `tbt` names it) and the selector's byte range. The language server reads it (no
//! network, no trace store needed): completion offers the names and values, hover on a selector
//! shows its count. A suite edited since the run simply finds fewer selectors at the recorded
//! ranges; nothing breaks.
//!
//! The format is versioned by [`LastRun::version`]; readers ignore fields they do not know.

use crate::span::SourceMap;
use std::collections::HashMap;

/// The artifact's file name, inside [`DIR`].
pub const FILE: &str = "last-run.json";
/// The directory, next to the suites (add it to `.gitignore`).
pub const DIR: &str = ".tbt";
/// The format version written now.
pub const VERSION: u32 = 1;
/// At most this many attribute names are kept (the most frequent).
pub const MAX_ATTRIBUTES: usize = 512;
/// At most this many distinct values are kept per attribute.
pub const MAX_VALUES: usize = 16;
/// Longer string values are left out of the sample.
pub const MAX_VALUE_LEN: usize = 120;
/// At most this many selector counts are kept.
pub const MAX_SELECTORS: usize = 20_000;

/// The whole artifact.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LastRun {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// When the run finished, milliseconds since the Unix epoch.
    #[serde(default)]
    pub finished_unix_ms: u64,
    /// Attribute names seen (span and resource attributes), most frequent first.
    #[serde(default)]
    pub attributes: Vec<AttributeSample>,
    /// Per `expect SELECTOR`: how many spans it matched.
    #[serde(default)]
    pub selectors: Vec<SelectorCount>,
}

/// One attribute name and some of its values.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttributeSample {
    /// The attribute's key.
    pub name: String,
    /// On how many spans it was set.
    #[serde(default)]
    pub spans: u64,
    /// Distinct values (strings, numbers, booleans), at most [`MAX_VALUES`].
    #[serde(default)]
    pub values: Vec<serde_json::Value>,
    /// True when more distinct values were seen than listed.
    #[serde(default)]
    pub more: bool,
}

/// How many spans one selector matched.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SelectorCount {
    /// The file, as `tbt` named it (relative to the directory holding `.tbt/` when given
    /// relative).
    pub file: String,
    /// Byte range of the selector expression.
    pub start: u32,
    /// End of the range (exclusive).
    pub end: u32,
    /// `test` or `test.step`.
    pub step: String,
    /// Spans the selector matched (in the trace the step evaluated).
    pub matched: u64,
}

impl LastRun {
    /// Parses the artifact; the error says what is wrong.
    pub fn from_json(text: &str) -> Result<LastRun, String> {
        let run: LastRun = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if run.version > VERSION {
            return Err(format!(
                "written by a newer tbt (format {}, this one reads up to {VERSION})",
                run.version
            ));
        }
        Ok(run)
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The artifact, indexed against one analysis's file names.
#[derive(Debug)]
pub(crate) struct Indexed {
    pub run: LastRun,
    /// (file id, start, end) → index in `run.selectors`.
    pub by_range: HashMap<(u32, u32, u32), usize>,
    /// attribute name → index in `run.attributes`.
    pub by_name: HashMap<String, usize>,
}

impl Indexed {
    pub fn new(run: LastRun, root: &str, sources: &SourceMap) -> Self {
        let names: HashMap<&str, u32> = sources
            .iter()
            .map(|(id, f)| (f.name.as_str(), id.0))
            .collect();
        let mut by_range = HashMap::new();
        for (i, s) in run.selectors.iter().enumerate() {
            let name = if s.file.starts_with('/') || root.is_empty() {
                s.file.clone()
            } else {
                crate::compile::join_relative(&format!("{root}/x"), &s.file)
            };
            let name = if root.starts_with('/') && !name.starts_with('/') {
                format!("/{name}")
            } else {
                name
            };
            if let Some(&f) = names
                .get(name.as_str())
                .or_else(|| names.get(s.file.as_str()))
            {
                by_range.insert((f, s.start, s.end), i);
            }
        }
        let by_name = run
            .attributes
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), i))
            .collect();
        Indexed {
            run,
            by_range,
            by_name,
        }
    }
}
