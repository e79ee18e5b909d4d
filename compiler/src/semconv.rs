//! The OpenTelemetry semantic-convention attribute registry, embedded in the binary.
//!
//! The data file (`stdlib/semconv-attributes.json`) is a snapshot of the upstream registry: name,
//! type, enum values, stability, deprecation and replacement. The checker uses it to flag misspelt
//! and deprecated attribute names; the language server uses it for completion and hover. It is parsed
//! once, on first use; nothing is read from disk at run time.

use std::collections::HashMap;
use std::sync::OnceLock;

const DATA: &str = include_str!("../../stdlib/semconv-attributes.json");

/// One registry attribute.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Attribute {
    /// Full dotted name, e.g. `http.response.status_code`. For templates, the prefix.
    pub name: String,
    /// `string`, `int`, `double`, `boolean`, `string[]`, …, `enum`, `any`, or `template[T]`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Enum members, when `ty == "enum"` (strings or integers).
    #[serde(default)]
    pub values: Vec<serde_json::Value>,
    /// `stable`, `development`, …
    #[serde(default)]
    pub stability: String,
    /// Why it was deprecated, when it was.
    #[serde(default)]
    pub deprecated: Option<String>,
    /// The attribute that replaces it, when renamed.
    #[serde(default)]
    pub renamed_to: Option<String>,
}

impl Attribute {
    /// True for `template[...]` attributes, which name a prefix (`http.request.header.<key>`).
    pub fn is_template(&self) -> bool {
        self.ty.starts_with("template[")
    }

    /// The value type a `.tbt` expression sees: `string`, `int`, `float`, `bool`, `list` or `any`.
    pub fn value_type(&self) -> &'static str {
        let t = self
            .ty
            .strip_prefix("template[")
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(&self.ty);
        match t {
            "enum" if self.values.first().is_some_and(|v| v.is_i64()) => "int",
            "string" | "enum" => "string",
            "int" => "int",
            "double" => "float",
            "boolean" => "bool",
            t if t.ends_with("[]") => "list",
            _ => "any",
        }
    }
}

#[derive(serde::Deserialize)]
struct Data {
    attributes: Vec<Attribute>,
}

/// The embedded registry with a name index.
pub struct Registry {
    attributes: Vec<Attribute>,
    by_name: HashMap<String, usize>,
    templates: Vec<usize>,
}

/// The registry, parsed on first use.
pub fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        // The file is part of the source tree and checked by a unit test; failing here is a build
        // defect, not a user error.
        #[allow(clippy::expect_used)]
        let data: Data =
            serde_json::from_str(DATA).expect("embedded semconv registry is valid JSON");
        let by_name = data
            .attributes
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), i))
            .collect();
        let templates = data
            .attributes
            .iter()
            .enumerate()
            .filter(|(_, a)| a.is_template())
            .map(|(i, _)| i)
            .collect();
        Registry {
            attributes: data.attributes,
            by_name,
            templates,
        }
    })
}

impl Registry {
    /// All attributes, sorted by name.
    pub fn all(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The attribute of this exact name, or the template whose prefix it extends
    /// (`http.request.header.x-id` → `http.request.header`).
    pub fn lookup(&self, name: &str) -> Option<&Attribute> {
        if let Some(&i) = self.by_name.get(name) {
            return Some(&self.attributes[i]);
        }
        self.templates
            .iter()
            .map(|&i| &self.attributes[i])
            .find(|a| {
                name.len() > a.name.len() + 1
                    && name.starts_with(&a.name)
                    && name.as_bytes()[a.name.len()] == b'.'
            })
    }

    /// True when some registry attribute lives under this namespace (`http`, `db.query`).
    pub fn has_namespace(&self, prefix: &str) -> bool {
        self.attributes.iter().any(|a| {
            a.name.len() > prefix.len()
                && a.name.starts_with(prefix)
                && a.name.as_bytes()[prefix.len()] == b'.'
        })
    }

    /// The registry name closest to `name`, when it is close enough to be a likely misspelling.
    ///
    /// Close means a Damerau–Levenshtein distance of at most 2 (at most 1 for short names), or the
    /// same last segment under a namespace that differs by one segment (`http.status_code` vs
    /// `http.response.status_code`).
    pub fn closest(&self, name: &str) -> Option<&Attribute> {
        let limit = if name.len() <= 8 { 1 } else { 2 };
        let mut best: Option<(usize, &Attribute)> = None;
        for a in &self.attributes {
            if a.name.len().abs_diff(name.len()) > limit {
                continue;
            }
            let d = strsim::damerau_levenshtein(&a.name, name);
            if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, a));
            }
        }
        if let Some((_, a)) = best {
            return Some(a);
        }
        // Same leaf under a namespace with one segment more or less: prefer a replacement that
        // is stable and not deprecated.
        let (ns, leaf) = name.rsplit_once('.')?;
        let root = ns.split('.').next()?;
        self.attributes
            .iter()
            .filter(|a| a.deprecated.is_none())
            .filter(|a| {
                a.name.rsplit_once('.').is_some_and(|(ans, aleaf)| {
                    aleaf == leaf
                        && ans.split('.').next() == Some(root)
                        && ans.split('.').count().abs_diff(ns.split('.').count()) == 1
                })
            })
            .min_by_key(|a| (a.stability != "stable", a.name.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_loads_and_indexes() {
        let r = registry();
        assert!(r.all().len() > 500);
        let a = r
            .lookup("http.response.status_code")
            .map(|a| a.value_type());
        assert_eq!(a, Some("int"));
        assert_eq!(
            r.lookup("http.request.header.x-request-id")
                .map(|a| a.name.as_str()),
            Some("http.request.header")
        );
        assert!(r.lookup("payment.amount").is_none());
    }

    #[test]
    fn deprecated_names_carry_their_replacement() {
        let a = registry()
            .lookup("http.method")
            .map(|a| a.renamed_to.clone());
        assert_eq!(a, Some(Some("http.request.method".to_string())));
    }

    #[test]
    fn suggests_close_names_only() {
        let r = registry();
        assert_eq!(
            r.closest("http.response.status_cod")
                .map(|a| a.name.as_str()),
            Some("http.response.status_code")
        );
        assert_eq!(r.closest("http.status").map(|a| a.name.as_str()), None);
        assert_eq!(r.closest("payment.amount").map(|a| a.name.as_str()), None);
        assert_eq!(
            r.closest("db.query.txt").map(|a| a.name.as_str()),
            Some("db.query.text")
        );
    }
}
