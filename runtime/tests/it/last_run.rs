//! `tbt run` leaves `.tbt/last-run.json` for the editor: attribute names with sample values from
//! the run's traces and each selector's match count, keyed by file and byte range; secret values
//! are left out. Through the real binary on recorded traces.

use std::path::Path;
use std::process::Command;
use tbt_compiler::ide::last_run::LastRun;

const SUITE: &str = r#"secret let hidden = "payments"

test checkout {
  trigger trace "abababababababababababababababab"
  expect span[name == "charge card"] {
    payment.amount == 99.99
  }
  expect span[db.system == "postgresql"]
  expect no span[name == "nothing like this"]
}
"#;

#[test]
fn a_run_leaves_names_values_and_selector_counts() {
    let d = tempfile::tempdir().expect("tempdir");
    let traces = Path::new(env!("CARGO_MANIFEST_DIR")).join("../compiler/tests/traces/shop.json");
    std::fs::copy(traces, d.path().join("traces.json")).expect("copy");
    std::fs::write(d.path().join("suite.tbt"), SUITE).expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args([
            "run",
            "--traces",
            "traces.json",
            "--color",
            "never",
            "suite.tbt",
        ])
        .current_dir(d.path())
        .output()
        .expect("tbt runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code().is_some(), "{stderr}");
    let text = std::fs::read_to_string(d.path().join(".tbt/last-run.json")).expect("written");
    let run = LastRun::from_json(&text).expect("parses");
    assert_eq!(run.version, 1);
    assert!(run.finished_unix_ms > 0);
    // Attribute names and values from the trace; the secret value is not kept.
    let service = run
        .attributes
        .iter()
        .find(|a| a.name == "service.name")
        .expect("service.name");
    assert!(service.values.contains(&"orders".into()), "{service:?}");
    assert!(!service.values.contains(&"payments".into()), "{service:?}");
    assert!(!text.contains("\"payments\""), "{text}");
    let amount = run
        .attributes
        .iter()
        .find(|a| a.name == "payment.amount")
        .expect("payment.amount");
    assert_eq!(amount.values, vec![serde_json::Value::from(99.99)]);
    // Selector counts keyed by file and byte range.
    let counts: Vec<(&str, u64)> = run
        .selectors
        .iter()
        .map(|s| {
            assert_eq!(
                (s.file.as_str(), s.step.as_str()),
                ("suite.tbt", "checkout")
            );
            (&SUITE[s.start as usize..s.end as usize], s.matched)
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("span[name == \"charge card\"]", 1),
            ("span[db.system == \"postgresql\"]", 1),
            ("span[name == \"nothing like this\"]", 0),
        ]
    );
    assert!(d.path().join(".tbt/.gitignore").exists());
}
