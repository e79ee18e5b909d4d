//! Live progress of `tbt run` on a terminal: a bar with the counts and the tests running now.

use crate::run;
use std::sync::Arc;
use std::time::Duration;

/// Live progress on a terminal: a bar with the counts and the tests running now. Nothing when
/// stderr is not a terminal (CI logs get the plain lines at the end) or with `--quiet`.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    running: Arc<std::sync::Mutex<Vec<String>>>,
    counts: Arc<std::sync::Mutex<[usize; 3]>>,
}

impl Progress {
    pub(super) fn new(quiet: bool, tests: usize) -> Self {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(tests as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed}] {bar:30} {pos}/{len} {msg}",
            ) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            running: Arc::default(),
            counts: Arc::default(),
        }
    }

    fn message(running: &[String], counts: &[usize; 3]) -> String {
        let mut m = format!(
            "{} passed, {} failed, {} other",
            counts[0], counts[1], counts[2]
        );
        if !running.is_empty() {
            let shown: Vec<&str> = running.iter().take(3).map(String::as_str).collect();
            m.push_str(&format!(" · running {}", shown.join(", ")));
            if running.len() > 3 {
                m.push_str(&format!(" +{}", running.len() - 3));
            }
        }
        m
    }

    pub(super) fn started_fn(&self) -> Option<run::StartedFn> {
        let bar = self.bar.clone()?;
        let (running, counts) = (self.running.clone(), self.counts.clone());
        Some(Arc::new(move |name: &str| {
            let mut r = running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            r.push(name.to_string());
            let c = *counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            bar.set_message(Self::message(&r, &c));
        }))
    }

    pub(super) fn finished_fn(&self) -> Option<run::ProgressFn> {
        let bar = self.bar.clone()?;
        let (running, counts) = (self.running.clone(), self.counts.clone());
        Some(Arc::new(
            move |name: &str, status: crate::run::result::Status| {
                let mut r = running
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                r.retain(|n| n != name);
                let mut c = counts
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match status {
                    crate::run::result::Status::Passed => c[0] += 1,
                    crate::run::result::Status::Failed => c[1] += 1,
                    _ => c[2] += 1,
                }
                bar.set_message(Self::message(&r, &c));
                bar.inc(1);
            },
        ))
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
