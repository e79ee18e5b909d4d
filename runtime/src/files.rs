//! Finding and reading `.tbt` files.
//!
//! Paths given on the command line may be files or directories (searched recursively for `*.tbt`,
//! in sorted order so output is deterministic). Imports are resolved relative to the importing
//! file. Names shown in diagnostics are the paths as the user wrote them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tbt_compiler::compile::{SourceLoader, join_relative};

/// A path that could not be read, with the reason.
#[derive(Debug)]
pub struct FileError {
    /// The path as given.
    pub path: String,
    /// Why it failed.
    pub reason: String,
}

/// Expands files and directories into the sorted, de-duplicated list of `.tbt` files.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FileError> {
    let defaults = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &defaults[..]
    } else {
        paths
    };
    let mut out: BTreeSet<PathBuf> = BTreeSet::new();
    let mut ordered = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| FileError {
            path: p.display().to_string(),
            reason: io_reason(&e),
        })?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = walkdir::WalkDir::new(p)
                .follow_links(false)
                .into_iter()
                .filter_entry(|e| e.depth() == 0 || !is_ignored_dir(e))
                .filter_map(Result::ok)
                .filter(|e| {
                    e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "tbt")
                })
                .map(|e| clean(e.path()))
                .collect();
            found.sort();
            for f in found {
                if out.insert(f.clone()) {
                    ordered.push(f);
                }
            }
        } else {
            let f = clean(p);
            if out.insert(f.clone()) {
                ordered.push(f);
            }
        }
    }
    Ok(ordered)
}

fn is_ignored_dir(e: &walkdir::DirEntry) -> bool {
    let name = e.file_name().to_string_lossy();
    e.file_type().is_dir() && (name.starts_with('.') || name == "target" || name == "node_modules")
}

/// `./a/b.tbt` → `a/b.tbt`; keeps the path otherwise as written.
fn clean(p: &Path) -> PathBuf {
    p.strip_prefix("./")
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| p.to_path_buf())
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Reads the root files.
pub fn read_roots(files: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>, FileError> {
    files
        .iter()
        .map(|f| {
            let name = f.to_string_lossy().replace('\\', "/");
            std::fs::read(f)
                .map(|b| (name.clone(), b))
                .map_err(|e| FileError {
                    path: name,
                    reason: io_reason(&e),
                })
        })
        .collect()
}

/// Resolves imports relative to the importing file on disk.
#[derive(Default)]
pub struct FsLoader;

impl SourceLoader for FsLoader {
    fn load(&mut self, importer: &str, path: &str) -> Result<(String, Vec<u8>), String> {
        let name = join_relative(importer, path);
        match std::fs::read(&name) {
            Ok(bytes) => Ok((name, bytes)),
            Err(e) => Err(format!("{}: `{name}`", io_reason(&e))),
        }
    }
}
