//! `tbt.toml`: project settings for `tbt run` and `tbt check`.
//!
//! Found by walking up from the current directory (like `Cargo.toml`), or named with
//! `--config PATH`. Command-line flags override the file; the file overrides the defaults.
//! Unknown keys are errors (a misspelt setting must not be silently ignored). Secrets do not
//! belong here: read them with `env("…")` in a `secret let`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[run]`.
    #[serde(default)]
    pub run: RunSection,
    /// `[check]`.
    #[serde(default)]
    pub check: CheckSection,
    /// `[vars.NAME]`: named variable sets for `--vars NAME`.
    #[serde(default)]
    pub vars: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// Where the file was read from (not a key).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `[run]`: defaults of `tbt run`'s flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// `--jobs`.
    pub jobs: Option<usize>,
    /// `--timeout`, e.g. `"10s"`.
    pub timeout: Option<String>,
    /// `--settle`, e.g. `"100ms"`.
    pub settle: Option<String>,
    /// `--traces`: `otlp`, a file, `jaeger=URL`, `tempo=URL`.
    pub traces: Option<String>,
    /// `--otlp-grpc`.
    pub otlp_grpc: Option<String>,
    /// `--otlp-http`.
    pub otlp_http: Option<String>,
}

/// `[check]`: lint severities.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSection {
    /// `off`, `note`, `warning` or `error` for TBT0305.
    pub deprecated_attributes: Option<String>,
    /// `off`, `note`, `warning` or `error` for TBT0304.
    pub unknown_attributes: Option<String>,
}

impl Config {
    /// Reads `explicit`, or the nearest `tbt.toml` above the current directory; no file is an
    /// empty config. The error names the file and the problem.
    pub fn load(explicit: Option<&Path>) -> Result<Config, String> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => find_upwards(
                &std::env::current_dir()
                    .map_err(|e| format!("cannot read the current directory: {e}"))?,
            ),
        };
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let mut c: Config = toml::from_str(&text)
            .map_err(|e| format!("`{}`: {}", path.display(), e.to_string().trim()))?;
        c.path = Some(path);
        Ok(c)
    }

    /// The variable set `name` as `NAME=VALUE` JSON pairs (`--var` syntax), or an error listing the
    /// sets that exist.
    pub fn var_set(&self, name: &str) -> Result<Vec<(String, serde_json::Value)>, String> {
        let set = self.vars.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
            if names.is_empty() {
                format!("no variable set `{name}`: tbt.toml has no `[vars.…]` tables")
            } else {
                format!(
                    "no variable set `{name}` in tbt.toml (there are: {})",
                    names.join(", ")
                )
            }
        })?;
        Ok(set
            .iter()
            .map(|(k, v)| (k.clone(), toml_to_json(v)))
            .collect())
    }
}

fn find_upwards(start: &Path) -> Option<PathBuf> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        let candidate = d.join("tbt.toml");
        if candidate.is_file() {
            return Some(candidate);
        }
        dir = d.parent();
    }
    None
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Value::from(*f),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => serde_json::Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}
