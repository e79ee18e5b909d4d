//! Trace completion against real exporters (issue 11): the `tbt` binary, as a user runs it, against
//! systems it did not start — no `service` block — whose OpenTelemetry SDKs export with their own
//! settings. Each test starts its app here, outside tbt, exporting to the port tbt's receiver will
//! bind (chosen free here, handed to the app and to `tbt run --otlp-grpc/--otlp-http`), waits for
//! the app's health URL (excluded from tracing), then runs `tbt run` on a suite of
//! `tests/interop/suites/` and reads its exit code, output and JSON report.
//!
//! - Fresh systems (issue 27): five Flask apps (`interop/python/app.py` under
//!   `opentelemetry-instrument`, OTLP/gRPC, `OTEL_BSP_SCHEDULE_DELAY` unset: the SDK's default
//!   5 s) and a Node app (`interop/node/app.js`, OTLP HTTP/JSON, 5 s, its first export opening
//!   its connection), each with a first run of tbt in a fresh project directory, the Flask runs
//!   fired at five offsets into their exporters' period: every passing step is decided within
//!   the export delay + 1 s of its trigger; the N+1 test fails on its repeated statement (`by`
//!   group of 2 spans), not on "matched no spans".
//! - The Flask app through an OTLP/gRPC forwarder that batches for 1 s
//!   (`interop/python/forwarder.py`, what a Collector's batch processor does): app → forwarder →
//!   tbt.
//! - Absence: `interop/python/late_error.py` answers, then records an error span in the same trace
//!   100–400 ms later, exporting every second; `expect no span[status == error]`, run twice in one
//!   project directory, must fail on the second run.
//!
//! Before the completion rework these failed: the trace holding only tbt's own trigger span counted
//! as complete after `settle` (100 ms), long before the SDK's first export.
//!
//! Skips and failures follow `tests/it/slow/setup.rs` (shared with `interop.rs`): the packages
//! come from `tests/interop/install.sh`
//! (or `TBT_INTEROP_PYTHON` / `TBT_INTEROP_NODE_APP`); a missing python3 or node skips a test with
//! the reason printed, except under `CI=true`, where it fails; a broken installation always fails.
//! Every process listens on 127.0.0.1 and is killed (its whole process group) when its guard drops.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::Value;

use super::setup::{available, interop_dir, node_app, python_venv};
use crate::support::free_port;

fn suite(name: &str) -> PathBuf {
    interop_dir().join("suites").join(name)
}

// ------------------------------------------------------------------------------- processes

/// A process started by a test, in its own process group, output to a log file. Dropping it
/// kills the group (SIGKILL) and reaps the process.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with every inherited `OTEL_*` variable removed (the test's own say what the
    /// app exports and how), output appended to `DIR/NAME.log`.
    fn start(name: &'static str, mut cmd: Command, dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        Proc { name, child, log }
    }

    /// The log so far.
    fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(60);
        format!("--- {} output:\n{}", self.name, lines[from..].join("\n"))
    }

    /// Polls `ready` (every 50 ms) until it holds, the process exits (a failure, with its output)
    /// or `within` passes (a failure too).
    fn wait_ready(&mut self, what: &str, within: Duration, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + within;
        loop {
            if ready() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before {what} answered\n{}",
                    self.name,
                    self.output()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} not ready within {within:?} ({what})\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process_group(pid, Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

/// The command with the inherited `OTEL_*` environment removed.
fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("TBT_OTLP_TOKEN");
    cmd
}

/// True when `GET http://127.0.0.1:PORT/health` answers 200.
fn http_ok(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(
        format!("GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// True when something accepts TCP connections on 127.0.0.1:PORT.
fn tcp_ok(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_ok()
}

/// The Flask app (`app.py`, or a sibling `script`) under `opentelemetry-instrument`, exporting
/// OTLP/gRPC to `otlp` (`127.0.0.1:PORT`), with `extra` environment; ready once its health URL
/// answers. Without `OTEL_BSP_SCHEDULE_DELAY` in `extra`, the SDK's default (5 s) applies.
fn start_python(
    venv: &Path,
    script: &str,
    service: &str,
    otlp: &str,
    extra: &[(&str, &str)],
    dir: &Path,
) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = clean_command(venv.join("opentelemetry-instrument"));
    cmd.arg(venv.join("python"))
        .arg(script)
        .current_dir(interop_dir().join("python"))
        .env("PORT", port.to_string())
        .env("GRPC_PORT", free_port().to_string())
        .env("PYTHONUNBUFFERED", "1")
        .env("OTEL_SERVICE_NAME", service)
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_LOGS_EXPORTER", "none")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
        .env("OTEL_PYTHON_FLASK_EXCLUDED_URLS", "health");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut app = Proc::start("python app", cmd, dir);
    app.wait_ready("its health URL", Duration::from_secs(60), || http_ok(port));
    (app, port)
}

/// The Node app (`app.js`) with the SDK's defaults — a BatchSpanProcessor with a 5 s schedule
/// delay, whose timer starts at a batch's first span; the exporter opens its HTTP connection with
/// its first export — exporting OTLP HTTP/JSON to `http`; ready once its health URL answers.
fn start_node(app_dir: &Path, http: &str, extra: &[(&str, &str)], dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = clean_command("node");
    cmd.arg("app.js")
        .current_dir(app_dir)
        .env("PORT", port.to_string())
        .env("OTEL_SERVICE_NAME", "node_shop")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{http}"))
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_LOGS_EXPORTER", "none");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut app = Proc::start("node app", cmd, dir);
    app.wait_ready("its health URL", Duration::from_secs(60), || http_ok(port));
    (app, port)
}

/// `forwarder.py`: OTLP/gRPC on a free port, batching for `batch_ms`, sending to `to`.
fn start_forwarder(venv: &Path, to: &str, batch_ms: u32, dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = clean_command(venv.join("python"));
    cmd.arg(interop_dir().join("python/forwarder.py"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--to", to])
        .args(["--batch-ms", &batch_ms.to_string()])
        .env("PYTHONUNBUFFERED", "1");
    let mut f = Proc::start("forwarder", cmd, dir);
    f.wait_ready("its gRPC port", Duration::from_secs(30), || tcp_ok(port));
    (f, port)
}

// ---------------------------------------------------------------------------------- tbt run

/// What one `tbt run` left.
struct TbtRun {
    code: Option<i32>,
    output: String,
    report: Value,
    took: Duration,
}

impl TbtRun {
    fn test(&self, name: &str) -> &Value {
        self.report["tests"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == name))
            .unwrap_or_else(|| panic!("no test `{name}` in the report\n{}", self.output))
    }

    /// The messages of the failed expectations, one a line.
    fn failures(&self) -> String {
        let mut out = Vec::new();
        for t in self.report["tests"].as_array().into_iter().flatten() {
            for s in t["steps"].as_array().into_iter().flatten() {
                for e in s["expectations"].as_array().into_iter().flatten() {
                    if e["status"] != "passed" {
                        out.push(format!(
                            "{}{}: {} — {}",
                            t["name"].as_str().unwrap_or("?"),
                            s["name"]
                                .as_str()
                                .map(|n| format!(".{n}"))
                                .unwrap_or_default(),
                            e["source"].as_str().unwrap_or("?"),
                            e["message"].as_str().unwrap_or("?")
                        ));
                    }
                }
                if let Some(r) = s["reason"].as_str() {
                    out.push(format!("{}: {r}", t["name"].as_str().unwrap_or("?")));
                }
            }
        }
        out.join("\n")
    }
}

/// `tbt --color never run SUITE ARGS… --otlp-grpc GRPC --otlp-http HTTP --timeout 20s
/// --report json=…` in `project` (where `.tbt/` is written), killed if it has not finished
/// within 60 s.
fn tbt_run(project: &Path, suite: &Path, grpc: &str, http: &str, args: &[&str]) -> TbtRun {
    tbt_run_files(project, &[suite.to_owned()], grpc, http, args)
}

/// [`tbt_run`] of several suite files in one run.
fn tbt_run_files(
    project: &Path,
    suites: &[PathBuf],
    grpc: &str,
    http: &str,
    args: &[&str],
) -> TbtRun {
    let report = project.join("report.json");
    let _ = std::fs::remove_file(&report);
    let mut cmd = clean_command(env!("CARGO_BIN_EXE_tbt"));
    cmd.current_dir(project)
        .args(["--color", "never", "run"])
        .args(suites)
        .args(args)
        .args(["--otlp-grpc", grpc, "--otlp-http", http, "--timeout", "20s"])
        .arg("--report")
        .arg(format!("json={}", report.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let child = cmd.spawn().expect("tbt runs");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<Output>>();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.expect("tbt's output"),
        Err(_) => {
            if let Some(pid) = Pid::from_raw(pid as i32) {
                let _ = kill_process_group(pid, Signal::KILL);
            }
            panic!("tbt run did not finish within 60 s");
        }
    };
    let took = start.elapsed();
    let output = format!(
        "--- tbt exit {:?} after {took:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    TbtRun {
        code: out.status.code(),
        output,
        report,
        took,
    }
}

/// The run passed: exit 0.
fn assert_passed(run: &TbtRun, procs: &[&Proc]) {
    assert_eq!(
        run.code,
        Some(0),
        "the suite must pass against the real exporters\nfailed expectations:\n{}\n{}\n{}",
        run.failures(),
        run.output,
        procs
            .iter()
            .map(|p| p.output())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The N+1 run failed (exit 1) on the repeated statement: the order test passed, and the
/// `by` expectation of `n_plus_one` saw the request's 3 queries in 2 groups, the per-line one
/// with 2 spans — not an empty selection.
fn assert_n_plus_one(run: &TbtRun, procs: &[&Proc]) {
    let context = || {
        format!(
            "failed expectations:\n{}\n{}\n{}",
            run.failures(),
            run.output,
            procs
                .iter()
                .map(|p| p.output())
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    assert_eq!(run.code, Some(1), "exit code\n{}", context());
    let n1 = run.test("n_plus_one");
    assert_eq!(n1["status"], "failed", "{}", context());
    let e = &n1["steps"][0]["expectations"][0];
    let message = e["message"].as_str().unwrap_or("");
    assert!(
        !message.contains("matched no spans"),
        "the N+1 must fail on its statements, not on an empty selection: {message}\n{}",
        context()
    );
    assert!(
        message.contains("3 spans selected in 2 groups"),
        "the message names the selection and its groups: {message}\n{}",
        context()
    );
    let groups = e["groups"].as_array().cloned().unwrap_or_default();
    assert!(
        groups
            .iter()
            .any(|g| g["spans"] == 2 && g["passed"] == false),
        "the per-line query is the group of 2 that failed: {groups:#?}\n{}",
        context()
    );
    assert_eq!(
        run.test("order")["status"],
        "passed",
        "the order the N+1 test reads is created and checked out\n{}",
        context()
    );
}

/// The Flask suite's passing tests.
const FLASK_PASSING: &[&str] = &[
    "--test",
    "order",
    "--test",
    "unknown_sku",
    "--test",
    "failure",
];

fn flask_base(port: u16) -> String {
    format!("base=http://127.0.0.1:{port}")
}

// ------------------------------------------------------- Python, through a 1 s batching forwarder

#[test]
fn flask_through_a_forwarder_batching_for_1s_passes_the_passing_suite() {
    let Some(venv) = available(python_venv(), "completion") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let otlp = format!("127.0.0.1:{}", free_port());
    let (fwd, fwd_port) = start_forwarder(&venv, &otlp, 1000, dir.path());
    let (app, port) = start_python(
        &venv,
        "app.py",
        "flask",
        &format!("127.0.0.1:{fwd_port}"),
        &[],
        dir.path(),
    );
    let base = flask_base(port);
    let mut args = vec!["--var", &base];
    args.extend_from_slice(FLASK_PASSING);
    let run = tbt_run(dir.path(), &suite("flask.tbt"), &otlp, "127.0.0.1:0", &args);
    assert_passed(&run, &[&app, &fwd]);
}

#[test]
fn flask_through_a_forwarder_batching_for_1s_fails_the_n_plus_one_on_its_group() {
    let Some(venv) = available(python_venv(), "completion") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let otlp = format!("127.0.0.1:{}", free_port());
    let (fwd, fwd_port) = start_forwarder(&venv, &otlp, 1000, dir.path());
    let (app, port) = start_python(
        &venv,
        "app.py",
        "flask",
        &format!("127.0.0.1:{fwd_port}"),
        &[],
        dir.path(),
    );
    let base = flask_base(port);
    let run = tbt_run(
        dir.path(),
        &suite("flask.tbt"),
        &otlp,
        "127.0.0.1:0",
        &["--var", &base, "--test", "n_plus_one"],
    );
    assert_n_plus_one(&run, &[&app, &fwd]);
}

// ------------------------------------------------------------- fresh systems, several offsets

/// The OpenTelemetry SDKs' default batch delay: the export delay of the systems below.
const EXPORT_DELAY: Duration = Duration::from_secs(5);

/// The CI case (issue 27): a system started fresh, outside tbt — a Node gateway
/// (`interop/node/app.js`, OTLP HTTP/JSON) in front of the Flask app (`interop/python/app.py`,
/// OTLP/gRPC), both at the SDKs' default 5 s batch delay — seeded with an order before tbt is up
/// (the seed's spans wait in the Python exporter's retries, so its first batch to tbt can carry
/// spans older than a period), and a first run of tbt in a fresh project directory (nothing
/// remembered in `.tbt/`). Five such systems start side by side; run `k` is fired `k` seconds
/// after its system is seeded, so the five runs meet the Python exporters' timers (which run
/// from the SDK's start, every 5 s) at five points spread over one period. Each runs
/// `flask.tbt` and `gateway.tbt`: every passing step must be decided at most the export delay +
/// 1 s after its trigger, never at the timeout — or, when a system's spans came later than the
/// export delay (a batch held back by the exporter's retries), at most 1 s after they came — and
/// the suite must fail for its intended reason only (the N+1's group).
#[test]
fn fresh_systems_decide_passing_steps_within_the_export_delay_at_five_offsets() {
    let Some(venv) = available(python_venv(), "completion") else {
        return;
    };
    let Some(node_dir) = available(node_app(), "completion") else {
        return;
    };
    let offsets: Vec<Duration> = (0..5).map(|k| EXPORT_DELAY * k / 5).collect();
    let runs = std::thread::scope(|scope| {
        let handles: Vec<_> = offsets
            .iter()
            .map(|&offset| {
                let (venv, node_dir) = (&venv, &node_dir);
                scope.spawn(move || {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let grpc = format!("127.0.0.1:{}", free_port());
                    let http = format!("127.0.0.1:{}", free_port());
                    let (flask, port) =
                        start_python(venv, "app.py", "flask", &grpc, &[], dir.path());
                    let upstream = format!("http://127.0.0.1:{port}");
                    let (node, gateway) =
                        start_node(node_dir, &http, &[("UPSTREAM", &upstream)], dir.path());
                    let order = seed_order(port);
                    // The stimulus, not a synchronisation: this run's triggers meet the
                    // exporters' timers `offset` later in their period than run 0's.
                    std::thread::sleep(offset);
                    let vars = [
                        format!("base={upstream}"),
                        format!("gateway=http://127.0.0.1:{gateway}"),
                        format!("order={order}"),
                    ];
                    let run = tbt_run_files(
                        dir.path(),
                        &[suite("flask.tbt"), suite("gateway.tbt")],
                        &grpc,
                        &http,
                        &vars.iter().flat_map(|v| ["--var", v]).collect::<Vec<_>>(),
                    );
                    (offset, run, [flask, node], dir)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a run"))
            .collect::<Vec<_>>()
    });
    let mut table = Vec::new();
    let mut late = Vec::new();
    for (offset, run, [flask, node], _dir) in &runs {
        assert_n_plus_one(run, &[flask, node]);
        for name in ["unknown_sku", "failure", "gateway_order"] {
            assert_eq!(
                run.test(name)["status"],
                "passed",
                "offset {offset:?}: `{name}` must pass\n{}\n{}\n{}\n{}",
                run.failures(),
                run.output,
                flask.output(),
                node.output()
            );
        }
        let steps = passing_steps(run);
        table.push(format!("offset {offset:?}: {}", steps_line(&steps)));
        for s in steps {
            let bound =
                EXPORT_DELAY.max(s.last_arrival.unwrap_or_default()) + Duration::from_secs(1);
            if s.decided_after > bound || s.timed_out {
                late.push(format!(
                    "offset {offset:?}: {} (bound {bound:?})\n{}",
                    s.describe(),
                    run.output
                ));
            }
        }
    }
    eprintln!(
        "passing steps, time from trigger to verdict (last span's arrival):\n{}",
        table.join("\n")
    );
    assert!(
        late.is_empty(),
        "passing steps decided later than the export delay + 1 s after their trigger on a first \
         run against a fresh system:\n{}",
        late.join("\n")
    );
}

/// Creates an order through the Flask app's `POST /orders` (traced: its spans go to an exporter
/// with no receiver yet) and returns its id.
fn seed_order(port: u16) -> u64 {
    let body = r#"{"sku": "sku-42", "qty": 2}"#;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("the app accepts");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "POST /orders HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("the seed request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("the seed answer");
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|v| v["id"].as_u64())
        .unwrap_or_else(|| panic!("the seed order was not created: {answer}"))
}

/// A passing step of a run, as its JSON report tells.
struct Passing {
    step: String,
    /// `duration_ms`: from the trigger to the verdict.
    decided_after: Duration,
    /// The verdict minus the quiet before it: when the last span arrived.
    last_arrival: Option<Duration>,
    timed_out: bool,
    stop: String,
}

impl Passing {
    fn describe(&self) -> String {
        format!(
            "{} decided {} ms after its trigger; stop: {}",
            self.step,
            self.decided_after.as_millis(),
            self.stop
        )
    }
}

fn passing_steps(run: &TbtRun) -> Vec<Passing> {
    let mut out = Vec::new();
    for t in run.report["tests"].as_array().into_iter().flatten() {
        for s in t["steps"].as_array().into_iter().flatten() {
            if s["status"] != "passed" || s["stop"].is_null() {
                continue;
            }
            let ms = s["duration_ms"].as_u64().unwrap_or(u64::MAX);
            let quiet = s["stop"]["quiet_ms"].as_u64();
            out.push(Passing {
                step: match s["name"].as_str() {
                    Some(n) => format!("{}.{n}", t["name"].as_str().unwrap_or("?")),
                    None => t["name"].as_str().unwrap_or("?").to_owned(),
                },
                decided_after: Duration::from_millis(ms),
                last_arrival: quiet.map(|q| Duration::from_millis(ms.saturating_sub(q))),
                timed_out: s["stop"]["reason"] == "timeout",
                stop: s["stop"].to_string(),
            });
        }
    }
    assert!(
        !out.is_empty(),
        "no passing step with a trace in the report\n{}",
        run.output
    );
    out
}

fn steps_line(steps: &[Passing]) -> String {
    steps
        .iter()
        .map(|s| {
            format!(
                "{} {} ms ({})",
                s.step,
                s.decided_after.as_millis(),
                s.last_arrival
                    .map_or("-".to_owned(), |l| format!("{} ms", l.as_millis()))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ------------------------------------------------------------------------------------ absence

/// The service answers, then records an error span in the request's trace 100–400 ms later, and
/// exports every second. `expect no span[status == error]` runs again and again with the same
/// project directory, so what tbt keeps in `.tbt/` from one run is there for the next.
///
/// What a run can know before it has seen the service's cadence: that the trigger reached a
/// system (the HTTP server answered), so a trace of only tbt's own span is not complete; the
/// service's spans once they arrive, and the lag of its one batch (the time between a span's end
/// and its arrival), from which it takes the period as four lags. Nothing in the server span
/// announces a later child, and one lag can fall short of the period (when the span ended just
/// before the exporter's tick), so such a run may pass. A run that waited past the first batch
/// sees the second (with the error span), so it fails and has seen the cadence (two batches a
/// period apart); the period is remembered in `.tbt/`, and every later run must fail. Here: runs
/// until one fails (at most 6: a run passes only when the span ended in the last fifth of the
/// period, 20 % of runs), then two more that must both fail.
#[test]
fn expect_no_is_not_fooled_by_an_error_after_the_answer_once_the_cadence_is_seen() {
    let Some(venv) = available(python_venv(), "completion") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let otlp = format!("127.0.0.1:{}", free_port());
    let (app, port) = start_python(
        &venv,
        "late_error.py",
        "late",
        &otlp,
        &[("OTEL_BSP_SCHEDULE_DELAY", "1000")],
        dir.path(),
    );
    let base = flask_base(port);
    let args = ["--var", base.as_str()];
    let run = || {
        tbt_run(
            dir.path(),
            &suite("late_error.tbt"),
            &otlp,
            "127.0.0.1:0",
            &args,
        )
    };
    let mut learned = false;
    for attempt in 1..=6 {
        let r = run();
        eprintln!(
            "run {attempt} (until one fails): exit {:?} after {:?}; {}",
            r.code,
            r.took,
            match r.failures() {
                f if f.is_empty() => "no expectation failed".to_owned(),
                f => f,
            }
        );
        if r.code == Some(1) {
            learned = true;
            break;
        }
        assert_eq!(r.code, Some(0), "{}\n{}", r.output, app.output());
    }
    assert!(
        learned,
        "six runs passed: none waited for the service's second batch\n{}",
        app.output()
    );
    for after in 1..=2 {
        let second = run();
        let context = format!(
            "run {after} after the cadence was seen; failed expectations:\n{}\n{}\n{}",
            second.failures(),
            second.output,
            app.output()
        );
        assert_eq!(
            second.code,
            Some(1),
            "a run after the cadence was seen must see the late error span and fail\n{context}"
        );
        check_absence_failed(&second, &context);
    }
}

/// The report's `expect no` of `no_error` failed, selecting the error span.
fn check_absence_failed(second: &TbtRun, context: &str) {
    let e = &second.test("no_error")["steps"][0]["expectations"];
    let absence = e
        .as_array()
        .and_then(|e| {
            e.iter().find(|e| {
                e["source"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("expect no"))
            })
        })
        .unwrap_or_else(|| panic!("no `expect no` in the report\n{context}"));
    assert_eq!(absence["status"], "failed", "{context}");
    assert!(
        absence["selected"].as_u64().is_some_and(|n| n >= 1),
        "the error span is selected: {absence:#}\n{context}"
    );
}
