//! The last-run artifact `.tbt/last-run.json` that `tbt run` leaves in a workspace folder.
//!
//! Read with `tokio::fs` when the server starts, when a document is saved and when the client
//! reports the file changed; each compilation of the folder gets it
//! ([`tbt_compiler::ide::Analysis::set_last_run`]), so completion offers the attribute names
//! and values seen and hover on a selector tells how many spans it matched.

use std::path::Path;
use tbt_compiler::ide::last_run::{DIR, FILE, LastRun};

/// Reads and parses the artifact of `folder`; `None` when there is none or it is unreadable
/// (the reason goes to the log).
pub async fn load(folder: &Path) -> Option<LastRun> {
    let path = folder.join(DIR).join(FILE);
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            eprintln!("tbt lsp: cannot read `{}`: {e}", path.display());
            return None;
        }
    };
    match LastRun::from_json(&text) {
        Ok(run) => Some(run),
        Err(e) => {
            eprintln!("tbt lsp: `{}` is not usable: {e}", path.display());
            None
        }
    }
}
