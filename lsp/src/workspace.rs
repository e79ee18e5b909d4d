//! What one compilation covers, and the compilation itself (run off the async runtime).
//!
//! A file inside a workspace folder is compiled together with every `.tbt` file under that folder,
//! named relative to it — exactly what `tbt check` does when run in the folder — with the open
//! documents' texts in place of their files on disk. A file outside every folder is compiled on
//! its own, as `tbt check FILE` in its directory would. A document that is not a file (an
//! `untitled:` buffer) is compiled alone, with only `std/…` imports available.
//!
//! The checker settings come from the nearest `tbt.toml` at or above the folder, `[check]` section,
//! as for `tbt check`.

use crate::position::LineIndex;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tbt_compiler::Severity;
use tbt_compiler::compile::{self, Compilation, Options, SourceLoader, join_relative};
use tbt_compiler::ide::Analysis;
use tbt_compiler::ide::last_run::LastRun;
use tower_lsp_server::ls_types::Uri;

/// The unit of compilation a document belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// Every `.tbt` file under a workspace folder.
    Folder(PathBuf),
    /// One file outside the workspace folders, with imports relative to its directory.
    Single(PathBuf),
    /// A buffer that is not a file.
    Buffer(Uri),
}

impl Group {
    /// The group of `uri`, given the workspace folders (the innermost folder holding it wins).
    pub fn of(uri: &Uri, folders: &[PathBuf]) -> Group {
        let Some(path) = uri_path(uri) else {
            return Group::Buffer(uri.clone());
        };
        folders
            .iter()
            .filter(|f| path.starts_with(f))
            .max_by_key(|f| f.components().count())
            .map_or(Group::Single(path.clone()), |f| Group::Folder(f.clone()))
    }

    /// The directory names are relative to (and `tbt.toml` is looked up from).
    pub fn base(&self) -> Option<&Path> {
        match self {
            Group::Folder(f) => Some(f),
            Group::Single(p) => p.parent(),
            Group::Buffer(_) => None,
        }
    }
}

/// The local path of a `file:` URI.
pub fn uri_path(uri: &Uri) -> Option<PathBuf> {
    let is_file = uri.scheme().as_str().eq_ignore_ascii_case("file");
    if !is_file {
        return None;
    }
    uri.to_file_path().map(|p| p.into_owned())
}

/// An open document's state handed to a compilation.
#[derive(Clone, Debug)]
pub struct OpenDoc {
    /// Its URI as the client spells it.
    pub uri: Uri,
    /// The version compiled.
    pub version: i32,
    /// The text compiled.
    pub text: Arc<String>,
    /// Line starts of `text` (shared with the document).
    pub index: Arc<LineIndex>,
}

/// A finished compilation and how its files map back to documents.
#[derive(Debug)]
pub struct Snapshot {
    /// The group compiled.
    pub group: Group,
    /// The compilation, indexed for editor queries.
    pub analysis: Analysis,
    /// The URI of each file of the source map (by file id). Standard modules point at read-only
    /// copies written to a cache directory (see [`std_module_uri`]); `None` when that failed.
    pub uris: Vec<Option<Uri>>,
    /// Line indexes of each file of the source map.
    pub lines: Vec<Arc<LineIndex>>,
    /// The open documents that went in, with the versions compiled.
    pub versions: HashMap<Uri, i32>,
    /// The edit counter of the server when this compilation started.
    pub seq: u64,
    /// A problem with `tbt.toml`, reported to the user once.
    pub config_error: Option<String>,
}

impl Snapshot {
    /// The compilation.
    pub fn compilation(&self) -> &Compilation {
        self.analysis.compilation()
    }

    /// The file id of `uri` in this compilation.
    pub fn file_of(&self, uri: &Uri) -> Option<tbt_compiler::FileId> {
        self.uris
            .iter()
            .position(|u| u.as_ref() == Some(uri))
            .map(|i| tbt_compiler::FileId(i as u32))
    }
}

/// Reads the `[check]` settings of the nearest `tbt.toml` at or above `base`.
pub fn load_options(base: Option<&Path>) -> (Options, Option<String>) {
    let Some(path) = base.and_then(find_config) else {
        return (Options::default(), None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => match parse_check_section(&text) {
            Ok(o) => (o, None),
            Err(e) => (
                Options::default(),
                Some(format!("`{}`: {e}", path.display())),
            ),
        },
        Err(e) => (
            Options::default(),
            Some(format!("cannot read `{}`: {e}", path.display())),
        ),
    }
}

fn find_config(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join("tbt.toml"))
        .find(|c| c.is_file())
}

/// The checker options of a `tbt.toml` text (only `[check]` is read; the CLI validates the rest).
pub fn parse_check_section(text: &str) -> Result<Options, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
    let mut options = Options::default();
    let Some(check) = doc.get("check") else {
        return Ok(options);
    };
    let Some(check) = check.as_table() else {
        return Err("`[check]` must be a table".into());
    };
    for (key, value) in check {
        let level = match value.as_str() {
            Some("off") => None,
            Some("note") => Some(Severity::Note),
            Some("warning") => Some(Severity::Warning),
            Some("error") => Some(Severity::Error),
            _ => {
                let shown = value
                    .as_str()
                    .map_or_else(|| value.type_str().to_string(), |s| format!("\"{s}\""));
                return Err(format!(
                    "`[check] {key} = {shown}` must be off, note, warning or error"
                ));
            }
        };
        match key.as_str() {
            "deprecated_attributes" => options.deprecated_attributes = level,
            "unknown_attributes" => options.unknown_attributes = level,
            other => return Err(format!("unknown key `{other}` in `[check]`")),
        }
    }
    Ok(options)
}

/// Is `name` a directory `tbt check` skips when searching (hidden, `target`, `node_modules`)?
fn ignored_dir(name: &str) -> bool {
    name.starts_with('.') || name == "target" || name == "node_modules"
}

/// The `.tbt` files under `dir`, relative to it and sorted, as `tbt check` in `dir` finds them.
pub fn find_suite_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_type().is_dir() && ignored_dir(&e.file_name().to_string_lossy()))
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "tbt"))
        .filter_map(|e| e.path().strip_prefix(dir).ok().map(Path::to_path_buf))
        .collect();
    found.sort();
    found
}

fn name_of(rel: &Path) -> String {
    rel.to_string_lossy().replace('\\', "/")
}

/// Resolves imports from the open documents first, then from disk under `base`.
struct OverlayLoader<'a> {
    base: Option<&'a Path>,
    open: &'a HashMap<String, Arc<String>>,
}

impl SourceLoader for OverlayLoader<'_> {
    fn load(&mut self, importer: &str, path: &str) -> Result<(String, Vec<u8>), String> {
        let name = join_relative(importer, path);
        if let Some(text) = self.open.get(&name) {
            return Ok((name, text.as_bytes().to_vec()));
        }
        let Some(base) = self.base else {
            return Err("relative imports are not available in an unsaved buffer".into());
        };
        match std::fs::read(base.join(&name)) {
            Ok(bytes) => Ok((name, bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("no such file or directory: `{name}`"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(format!("permission denied: `{name}`"))
            }
            Err(e) => Err(format!("{e}: `{name}`")),
        }
    }
}

/// Compiles `group` with the open documents `open` in place of their files, attaching the
/// folder's last-run artifact when there is one. Blocking: reads the disk; call it from
/// `spawn_blocking` or a thread of its own.
pub fn compile_group(
    group: &Group,
    open: &[OpenDoc],
    last_run: Option<Arc<LastRun>>,
    seq: u64,
) -> Snapshot {
    let base = group.base();
    let (options, config_error) = load_options(base);
    // Name (relative to the base, `/`-separated) → open document.
    let mut open_by_name: HashMap<String, &OpenDoc> = HashMap::new();
    for d in open {
        let name = match (&group, uri_path(&d.uri), base) {
            (Group::Buffer(_), _, _) => buffer_name(&d.uri),
            (_, Some(p), Some(b)) => match p.strip_prefix(b) {
                Ok(rel) => name_of(rel),
                Err(_) => continue,
            },
            _ => continue,
        };
        open_by_name.insert(name, d);
    }
    let roots: Vec<String> = match group {
        Group::Folder(dir) => {
            let mut names: BTreeSet<PathBuf> = find_suite_files(dir).into_iter().collect();
            // Open documents not saved yet (or under a directory the search skips) are compiled
            // too: the user is editing them.
            names.extend(open_by_name.keys().map(PathBuf::from));
            names.iter().map(|p| name_of(p)).collect()
        }
        Group::Single(p) => vec![
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        ],
        Group::Buffer(u) => vec![buffer_name(u)],
    };
    let texts: HashMap<String, Arc<String>> = open_by_name
        .iter()
        .map(|(n, d)| (n.clone(), d.text.clone()))
        .collect();
    let root_sources: Vec<(String, Vec<u8>)> = roots
        .into_iter()
        .filter_map(|name| {
            if let Some(t) = texts.get(&name) {
                return Some((name, t.as_bytes().to_vec()));
            }
            // A file deleted since the directory walk is simply not part of the suite any more.
            let bytes = std::fs::read(base?.join(&name)).ok()?;
            Some((name, bytes))
        })
        .collect();
    let mut loader = OverlayLoader { base, open: &texts };
    let mut analysis = Analysis::new(compile::compile(root_sources, &mut loader, &options));
    if let (Group::Folder(_), Some(run)) = (group, last_run) {
        // File names are relative to the folder, as `tbt run` in the folder writes them; the
        // artifact is shared, not copied, by every compilation.
        analysis.set_last_run(run, "");
    }
    let compilation = analysis.compilation();
    let mut uris = Vec::with_capacity(compilation.sources.len());
    let mut lines = Vec::with_capacity(compilation.sources.len());
    let std_names: BTreeSet<&str> = compilation
        .program
        .modules
        .iter()
        .filter(|m| m.origin == tbt_compiler::program::Origin::Std)
        .map(|m| m.name.as_str())
        .collect();
    for (_, file) in compilation.sources.iter() {
        let open = open_by_name
            .get(&file.name)
            .filter(|d| d.text.as_str() == file.text);
        // An open document's line index is the document's own (no second pass over its text).
        lines.push(open.map_or_else(|| Arc::new(LineIndex::new(&file.text)), |d| d.index.clone()));
        let uri = if let Some(d) = open_by_name.get(&file.name) {
            Some(d.uri.clone())
        } else if std_names.contains(file.name.as_str()) {
            std_module_uri(&file.name)
        } else {
            base.and_then(|b| Uri::from_file_path(b.join(&file.name)))
        };
        uris.push(uri);
    }
    Snapshot {
        group: group.clone(),
        analysis,
        uris,
        lines,
        versions: open.iter().map(|d| (d.uri.clone(), d.version)).collect(),
        seq,
        config_error,
    }
}

/// A file holding the text of standard module `name` (`std/http`), for "go to definition" into
/// the standard library: written once per server version under the system's temporary
/// directory (rewritten when its content differs). `None` when it cannot be written.
pub fn std_module_uri(name: &str) -> Option<Uri> {
    use std::sync::OnceLock;
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let dir = DIR
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("tbt-lsp-{}", env!("CARGO_PKG_VERSION")));
            for (module, text) in tbt_compiler::stdlib::MODULES {
                let path = dir.join(format!("{module}.tbt"));
                if std::fs::read_to_string(&path).is_ok_and(|t| t == *text) {
                    continue;
                }
                let written = path
                    .parent()
                    .is_some_and(|p| std::fs::create_dir_all(p).is_ok())
                    && std::fs::write(&path, text).is_ok();
                if !written {
                    eprintln!(
                        "tbt lsp: cannot write `{}`: standard modules cannot be opened",
                        path.display()
                    );
                    return None;
                }
            }
            Some(dir)
        })
        .as_ref()?;
    Uri::from_file_path(dir.join(format!("{name}.tbt")))
}

/// The name a non-file buffer is compiled under.
fn buffer_name(uri: &Uri) -> String {
    let s = uri.as_str();
    let last = s.rsplit(['/', ':']).next().unwrap_or("untitled");
    if last.is_empty() {
        "untitled.tbt".into()
    } else {
        last.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_section() {
        let o = parse_check_section("[check]\ndeprecated_attributes = \"off\"\nunknown_attributes = \"error\"\n[run]\njobs = 2\n")
            .expect("valid");
        assert_eq!(o.deprecated_attributes, None);
        assert_eq!(o.unknown_attributes, Some(Severity::Error));
        let e =
            parse_check_section("[check]\nunknown_attributes = \"loud\"\n").expect_err("bad level");
        assert!(e.contains("must be off, note, warning or error"), "{e}");
        let e = parse_check_section("[check]\nspelling = \"off\"\n").expect_err("bad key");
        assert!(e.contains("unknown key `spelling`"), "{e}");
    }
}
