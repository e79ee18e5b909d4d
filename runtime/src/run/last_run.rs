//! The `.tbt/last-run.json` artifact the editor reads after a run: attribute names and sample
//! values seen in the traces, and how many spans each `expect SELECTOR` matched. The format
//! and the collection are in [`tbt_compiler::ide::last_run`] (pure); this file adds the clock
//! and the atomic write.

use std::path::{Path, PathBuf};
use tbt_compiler::ide::last_run::{Collector, DIR, FILE, LastRun};

/// A collector for one run.
pub fn collector() -> Collector {
    Collector::new()
}

/// The artifact, stamped with the current time.
pub fn finish(c: Collector) -> LastRun {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    c.finish(now)
}

/// Writes `ROOT/.tbt/last-run.json` atomically (a temporary file renamed over the old one),
/// keeping only string values `keep` accepts (secrets are dropped), and a `.tbt/.gitignore`
/// that ignores the directory. Returns the file's path.
pub fn write(root: &Path, run: &LastRun, keep: &dyn Fn(&str) -> bool) -> std::io::Result<PathBuf> {
    let dir = root.join(DIR);
    std::fs::create_dir_all(&dir)?;
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "# written by tbt run: local editor data\n*\n")?;
    }
    let mut run = run.clone();
    for a in &mut run.attributes {
        a.values.retain(|v| v.as_str().is_none_or(keep));
    }
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, run.to_json())?;
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tbt_compiler::ide::last_run::AttributeSample;

    #[test]
    fn writes_atomically_and_drops_secret_values() {
        let root = std::env::temp_dir().join(format!("tbt-last-run-{}", std::process::id()));
        let run = LastRun {
            version: 1,
            attributes: vec![AttributeSample {
                name: "http.request.header.authorization".into(),
                spans: 2,
                values: vec!["Bearer s3cret".into(), "public".into(), 7.into()],
                more: false,
            }],
            ..LastRun::default()
        };
        let path = write(&root, &run, &|s| !s.contains("s3cret")).expect("written");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("s3cret"), "{text}");
        let back = LastRun::from_json(&text).expect("parses");
        assert_eq!(
            back.attributes[0].values,
            vec![serde_json::Value::from("public"), 7.into()]
        );
        assert!(root.join(".tbt/.gitignore").exists());
        let leftovers: Vec<_> = std::fs::read_dir(root.join(".tbt"))
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}
