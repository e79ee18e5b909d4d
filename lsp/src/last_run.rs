//! The last-run artifact `.tbt/last-run.json` that `tbt run` leaves in a workspace folder.
//!
//! Read with `tokio::fs` when the server starts, when a document is saved and when the client
//! reports the file changed; completion and hover use it (attribute names and values seen,
//! spans a selector matched).

use std::path::Path;

/// The parsed artifact of one folder.
#[derive(Debug)]
pub struct LastRun {
    /// The artifact as parsed.
    pub data: serde_json::Value,
}

/// Where `tbt run` writes the artifact, relative to the folder it runs in.
pub const ARTIFACT: &str = ".tbt/last-run.json";

/// Reads and parses the artifact of `folder`; `None` when there is none or it is unreadable
/// (the reason goes to the log).
pub async fn load(folder: &Path) -> Option<LastRun> {
    let path = folder.join(ARTIFACT);
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            eprintln!("tbt lsp: cannot read `{}`: {e}", path.display());
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(data) => Some(LastRun { data }),
        Err(e) => {
            eprintln!("tbt lsp: `{}` is not a last-run artifact: {e}", path.display());
            None
        }
    }
}
