//! Shared by the `interop` and `completion` modules: where the
//! interop apps live, and installing their packages — a virtualenv with the Python zero-code agent
//! and the Node app's `node_modules`, both by `tests/interop/install.sh` — or using the
//! installations `TBT_INTEROP_PYTHON` / `TBT_INTEROP_NODE_APP` name. A missing python3 or node
//! skips a test with the reason printed, except under `CI=true`, where it fails; a broken
//! installation always fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the runtime crate is in the workspace")
        .to_path_buf()
}

pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Why a test of the other SDKs cannot run.
pub enum Unavailable {
    /// Python or Node is not installed: the test is skipped (a failure in CI).
    Missing(String),
    /// They are, but the packages cannot be installed or found: always a failure.
    Broken(String),
}

/// The tool's path, or `None` when the test is to be skipped: in CI (`CI=true`) a missing tool
/// fails the test; elsewhere the test says why it is skipped. A broken installation always fails.
pub fn available(tool: Result<PathBuf, Unavailable>, what: &str) -> Option<PathBuf> {
    match tool {
        Ok(p) => Some(p),
        Err(Unavailable::Missing(why)) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{what} test cannot run in CI: {why}")
        }
        Err(Unavailable::Missing(why)) => {
            eprintln!("skipping {what} test: {why}");
            None
        }
        Err(Unavailable::Broken(why)) => panic!(
            "{what} test cannot run: {why}\n(runtime/tests/interop/install.sh installs the packages; it needs PyPI and npm)"
        ),
    }
}

/// True when `program ARGS…` runs and succeeds.
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `install.sh PART` once per test binary (tests of one part share it).
pub fn install(part: &str) -> Result<(), Unavailable> {
    static DONE: Mutex<Vec<(String, Result<(), String>)>> = Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    let r = match done.iter().find(|(p, _)| p == part) {
        Some((_, r)) => r.clone(),
        None => {
            let out = Command::new("bash")
                .arg(interop_dir().join("install.sh"))
                .arg(part)
                .output();
            let r = match out {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(format!(
                    "tests/interop/install.sh {part} failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => Err(format!("cannot run tests/interop/install.sh: {e}")),
            };
            done.push((part.to_owned(), r.clone()));
            r
        }
    };
    r.map_err(Unavailable::Broken)
}

/// The virtualenv's `bin` directory, with `python` and `opentelemetry-instrument`.
pub fn python_venv() -> Result<PathBuf, Unavailable> {
    let dir = match std::env::var_os("TBT_INTEROP_PYTHON") {
        Some(dir) => PathBuf::from(dir),
        None => {
            if !runs("python3", &["--version"]) {
                return Err(Unavailable::Missing("python3 is not installed".into()));
            }
            if !runs("python3", &["-c", "import ensurepip, venv"]) {
                return Err(Unavailable::Missing(
                    "python3 cannot create virtualenvs (Debian: apt install python3-venv)".into(),
                ));
            }
            install("python")?;
            std::env::var_os("TBT_INTEROP_VENV")
                .map_or_else(|| repo().join("target/interop/venv"), PathBuf::from)
                .join("bin")
        }
    };
    if dir.join("opentelemetry-instrument").is_file() {
        Ok(dir)
    } else {
        Err(Unavailable::Broken(format!(
            "{} has no opentelemetry-instrument",
            dir.display()
        )))
    }
}

/// The Node app folder, with its `node_modules`.
pub fn node_app() -> Result<PathBuf, Unavailable> {
    if !runs("node", &["--version"]) {
        return Err(Unavailable::Missing("node is not installed".into()));
    }
    let dir = match std::env::var_os("TBT_INTEROP_NODE_APP") {
        Some(d) => PathBuf::from(d),
        None => {
            if !runs("npm", &["--version"]) {
                return Err(Unavailable::Missing("npm is not installed".into()));
            }
            install("node")?;
            interop_dir().join("node")
        }
    };
    if dir.join("node_modules/@opentelemetry/sdk-node").is_dir() {
        Ok(dir)
    } else {
        Err(Unavailable::Broken(format!(
            "{} has no node_modules/@opentelemetry/sdk-node",
            dir.display()
        )))
    }
}
