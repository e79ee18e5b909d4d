//! The shop example end to end, with the real `tbt` binary and the real `shop` services:
//!
//! - `examples/shop` passes;
//! - every suite of `examples/shop-failing` fails, and its output (normalised: ids, durations,
//!   ports, paths) is the one checked in next to it (`NAME.out`), so a regression in failure
//!   reporting is caught. `TBT_BLESS=1 cargo test -p tbt --test it shop::` rewrites the `.out` files;
//! - the recorded trace in `examples/shop-recorded` passes with `--traces FILE`.
//!
//! The services run the debug `shop` binary (built here with cargo if needed) instead of the
//! suites' default `cargo run --release`, through `--var program=… --var args=[]`. Each run gets
//! its own `port_base` and free receiver ports, so the tests run in parallel.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the runtime crate is inside the repository")
        .to_path_buf()
}

/// The `shop` binary, built with the same profile as `tbt`.
///
/// `cargo test --workspace` has built it already, for the shop's own integration tests, so asking
/// cargo for the workspace's test build again finds everything fresh and only names the binary.
/// (`cargo build -p shop` would resolve the shop's features alone and rebuild half the dependency
/// graph; run alone, as `cargo test -p tbt`, this builds what the workspace's tests need once.)
fn shop_binary() -> &'static Path {
    static SHOP: OnceLock<PathBuf> = OnceLock::new();
    SHOP.get_or_init(|| {
        let tbt = Path::new(env!("CARGO_BIN_EXE_tbt"));
        let dir = tbt.parent().expect("tbt is in a directory");
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build.current_dir(repo()).args([
            "test",
            "--workspace",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ]);
        // What cargo sets for this test process describes the tbt package; build scripts that
        // watch these variables (ring's watches CARGO_MANIFEST_DIR) would rebuild for nothing.
        // The same list tbt drops for the services it starts.
        for key in tbt::service::cargo_package_vars() {
            build.env_remove(key);
        }
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let out = build
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "building the shop failed: {}",
            out.status
        );
        let shop = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find_map(|m| {
                let target = &m["target"];
                let is_shop_bin = m["reason"] == "compiler-artifact"
                    && target["name"] == "shop"
                    && target["kind"][0] == "bin"
                    && m["profile"]["test"] == false;
                is_shop_bin.then(|| m["executable"].as_str().map(PathBuf::from))?
            })
            .expect("cargo names the shop binary");
        assert!(shop.is_file(), "no shop binary at {}", shop.display());
        shop
    })
}

/// Runs `tbt run` on `paths` from the repository root against the built shop.
fn run_tbt(paths: &[&str], port_base: u16, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tbt"));
    cmd.current_dir(repo())
        .arg("--color")
        .arg("never")
        .arg("run")
        .args(paths)
        .arg("--var")
        .arg(format!("program={}", shop_binary().display()))
        .args(["--var", "args=[]"])
        .arg("--var")
        .arg(format!("port_base={port_base}"))
        .args(["--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0"])
        .args(extra)
        .env_remove("TBT_OTLP_TOKEN")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    cmd.output().expect("tbt runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_shop_suite_passes() {
    let out = run_tbt(&["examples/shop"], 18180, &[]);
    let text = text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("10 passed"), "{text}");
}

#[test]
fn the_recorded_trace_passes_from_its_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_tbt"))
        .current_dir(repo())
        .args(["--color", "never", "run", "examples/shop-recorded"])
        .args(["--traces", "examples/shop-recorded/order.json"])
        .output()
        .expect("tbt runs");
    let text = text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("passed"), "{text}");
}

#[test]
fn the_failing_suites_fail_as_recorded() {
    let dir = repo().join("examples/shop-failing");
    let mut suites: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples/shop-failing exists")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".tbt").map(str::to_owned)
        })
        .collect();
    suites.sort();
    assert!(suites.len() >= 4, "the failing suites: {suites:?}");
    let bless = std::env::var_os("TBT_BLESS").is_some();
    let results: Vec<(String, Option<i32>, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = suites
            .iter()
            .enumerate()
            .map(|(i, name)| {
                s.spawn(move || {
                    let base = 18280 + 10 * u16::try_from(i).expect("few suites");
                    let file = format!("examples/shop-failing/{name}.tbt");
                    let out = run_tbt(&["examples/shop/services.tbt", &file], base, &[]);
                    (
                        name.clone(),
                        out.status.code(),
                        normalise(&text(&out), base),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a suite thread"))
            .collect()
    });
    let mut problems = Vec::new();
    for (name, code, got) in results {
        if code != Some(1) {
            problems.push(format!("{name}: exit code {code:?}, expected 1\n{got}"));
            continue;
        }
        let expected_path = dir.join(format!("{name}.out"));
        if bless {
            std::fs::write(&expected_path, &got).expect("write the expected output");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != got {
            problems.push(format!(
                "{name}: the output differs from {}\n--- expected\n{expected}\n--- got\n{got}",
                expected_path.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Replaces what differs between runs: trace and span ids, measured durations, ports, paths.
fn normalise(text: &str, port_base: u16) -> String {
    let repo = repo().display().to_string();
    let shop = shop_binary().display().to_string();
    let mut text = text.replace(&shop, "<shop>").replace(&repo, "<repo>");
    for offset in 0..6 {
        text = text.replace(
            &(port_base + offset).to_string(),
            &format!("<port+{offset}>"),
        );
    }
    crate::scrub::words(&text)
}

/// `cargo run -p tbt -- run examples/shop` gives tbt cargo's package variables; the services'
/// own `cargo run` must not see them, or it rebuilds (build scripts watch them) on every run.
#[test]
fn processes_do_not_inherit_the_cargo_package_variables_of_tbt() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let suite = dir.path().join("env.tbt");
    std::fs::write(
        &suite,
        r#"test environment {
  trigger exec "sh" ["-c", "env"]
  expect response {
    exit_code == 0
    stdout contains "TRACEPARENT="
    stdout contains "KEPT=yes"
    not (stdout contains "CARGO_MANIFEST_DIR=")
    not (stdout contains "CARGO_PKG_NAME=")
  }
}
"#,
    )
    .expect("write the suite");
    let out = Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args(["--color", "never", "run"])
        .arg(&suite)
        .args(["--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0"])
        .env("CARGO_MANIFEST_DIR", repo().join("runtime"))
        .env("CARGO_PKG_NAME", "tbt")
        .env("KEPT", "yes")
        .output()
        .expect("tbt runs");
    let text = text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
}
