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
    pub run: std::sync::Arc<LastRun>,
    /// (file id, start, end) → index in `run.selectors`.
    pub by_range: HashMap<(u32, u32, u32), usize>,
    /// attribute name → index in `run.attributes`.
    pub by_name: HashMap<String, usize>,
}

impl Indexed {
    pub fn new(run: std::sync::Arc<LastRun>, root: &str, sources: &SourceMap) -> Self {
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

/// Builds a [`LastRun`] while a run finishes: attribute names and values from each step's
/// trace, and each `expect SELECTOR`'s match count. Memory is bounded (at most
/// 4 × [`MAX_ATTRIBUTES`] names, [`MAX_VALUES`] values each, [`MAX_SELECTORS`] counts); the cost
/// is one pass over each trace's attributes.
#[derive(Debug, Default)]
pub struct Collector {
    attrs: HashMap<String, AttributeSample>,
    selectors: Vec<SelectorCount>,
}

fn sample_value(v: &crate::value::Value) -> Option<serde_json::Value> {
    use crate::value::Value;
    Some(match v {
        Value::Str(s) if s.chars().count() <= MAX_VALUE_LEN => serde_json::Value::from(&**s),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map(serde_json::Value::Number)?,
        Value::Bool(b) => serde_json::Value::from(*b),
        _ => return None,
    })
}

impl Collector {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&mut self, name: &str, value: &crate::value::Value, redact: &dyn Fn(&str) -> bool) {
        let full = self.attrs.len() >= 4 * MAX_ATTRIBUTES;
        let entry = match self.attrs.get_mut(name) {
            Some(e) => e,
            None if full => return,
            None => self
                .attrs
                .entry(name.to_string())
                .or_insert_with(|| AttributeSample {
                    name: name.to_string(),
                    ..AttributeSample::default()
                }),
        };
        entry.spans += 1;
        if entry.more && entry.values.len() >= MAX_VALUES {
            return;
        }
        let Some(v) = sample_value(value) else { return };
        if v.as_str().is_some_and(redact) || entry.values.contains(&v) {
            return;
        }
        if entry.values.len() < MAX_VALUES {
            entry.values.push(v);
        } else {
            entry.more = true;
        }
    }

    /// Adds one step: the attributes of its trace (span and resource attributes; `secret`
    /// says which string values must not be kept) and the selector counts of its results.
    pub fn add_step(
        &mut self,
        c: &crate::compile::Compilation,
        (test, step): (usize, usize),
        trace: Option<&crate::trace::Trace>,
        results: &[crate::eval::ExpectationResult],
        secret: &dyn Fn(&str) -> bool,
    ) {
        if let Some(trace) = trace {
            for span in trace.spans() {
                for (k, v) in span.attributes.iter() {
                    self.record(trace.key_name(*k), v, secret);
                }
            }
            for res in trace.resources() {
                for (k, v) in res.attributes.iter() {
                    self.record(trace.key_name(*k), v, secret);
                }
            }
        }
        let (program, sources) = (&c.program, &c.sources);
        let Some(info) = program.tests.get(test) else {
            return;
        };
        let body = program.step_body(test, step);
        for r in results {
            if self.selectors.len() >= MAX_SELECTORS {
                break;
            }
            let Some(selector) = body.iter().find_map(|s| match &s.kind {
                crate::ast::StmtKind::Expect(e) if s.span == r.span => match &e.kind {
                    crate::ast::ExpectKind::Select { selector, .. } => Some(selector.span),
                    _ => None,
                },
                _ => None,
            }) else {
                continue;
            };
            self.selectors.push(SelectorCount {
                file: sources
                    .try_get(selector.file)
                    .map_or(String::new(), |f| f.name.clone()),
                start: selector.start,
                end: selector.end,
                step: info.step_label(step),
                matched: r.selected as u64,
            });
        }
    }

    /// The artifact: attributes most frequent first (at most [`MAX_ATTRIBUTES`]), values
    /// sorted.
    pub fn finish(self, finished_unix_ms: u64) -> LastRun {
        let mut attributes: Vec<AttributeSample> = self.attrs.into_values().collect();
        attributes.sort_by(|a, b| b.spans.cmp(&a.spans).then_with(|| a.name.cmp(&b.name)));
        attributes.truncate(MAX_ATTRIBUTES);
        for a in &mut attributes {
            a.values.sort_by_key(|v| v.to_string());
        }
        LastRun {
            version: VERSION,
            finished_unix_ms,
            attributes,
            selectors: self.selectors,
        }
    }
}
