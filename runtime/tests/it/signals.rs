//! Stops that leave nothing (issue 28): `tbt run` stopped by SIGTERM — what CI cancellation,
//! `timeout(1)` and `docker stop` send — or SIGINT, while a service and an exec trigger run, each
//! a shell that ignores SIGINT and SIGTERM and started a child of its own. The run reports what
//! finished (the JSON report and `.tbt/last-run.json` are written, the unfinished test as
//! interrupted), stops the service's whole process group (SIGTERM, then SIGKILL after its
//! `stop within`) and the trigger's, and exits with 128 + the signal; a second signal exits at
//! once, killing every group first. The processes are found by the pid files they write. And a
//! run ends after its verdict whatever clients of its receiver hold open.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// A suite whose service (`stop within STOP`) and `long` test's trigger both ignore SIGINT and
/// SIGTERM and start a `sleep` child; each writes `NAME.pid` (itself) and `NAME_child.pid`.
fn suite(stop: &str) -> String {
    let stubborn = |name: &str| {
        format!(
            "trap '' INT TERM; echo $$ > {name}.pid; sleep 300 & echo $! > {name}_child.pid; echo started; wait"
        )
    };
    format!(
        r#"service stubborn {{
  run "sh" ["-c", "{svc}"]
  ready log "started" within 10s
  stop within {stop}
}}

test quick {{
  trigger exec "true" []
  expect response {{
    exit_code == 0
  }}
}}

test long {{
  trigger exec "sh" ["-c", "{trig}"] {{
    timeout 60s
  }}
  expect response {{
    exit_code == 0
  }}
}}
"#,
        svc = stubborn("svc"),
        trig = stubborn("trig"),
    )
}

/// `tbt run` of `suite` in `dir`, in its own process group (so a test's signal reaches tbt
/// alone, as `kill` or a CI runner sends it).
fn start(dir: &Path, suite: &str) -> Child {
    std::fs::write(dir.join("stop.tbt"), suite).expect("write");
    use std::os::unix::process::CommandExt;
    Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args([
            "--color",
            "never",
            "run",
            "stop.tbt",
            "--report",
            "json=report.json",
        ])
        .args(["--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("TBT_OTLP_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("tbt starts")
}

/// The pids of the four processes once all have written their files (at most 20 s).
fn wait_for_pids(dir: &Path, tbt: &mut Child) -> Vec<(String, i32)> {
    let names = ["svc", "svc_child", "trig", "trig_child"];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pids: Vec<(String, i32)> = names
            .iter()
            .filter_map(|n| {
                let text = std::fs::read_to_string(dir.join(format!("{n}.pid"))).ok()?;
                Some((n.to_string(), text.trim().parse().ok()?))
            })
            .collect();
        if pids.len() == names.len() {
            return pids;
        }
        if let Ok(Some(status)) = tbt.try_wait() {
            panic!("tbt exited ({status}) before its processes started");
        }
        assert!(
            Instant::now() < deadline,
            "the processes did not start: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True while `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends `signal` to tbt.
fn send(tbt: &Child, signal: Signal) {
    let pid = Pid::from_raw(tbt.id() as i32).expect("pid");
    kill_process(pid, signal).expect("signal tbt");
}

/// Waits for tbt to exit (at most `within`), returning its code and output.
fn finish(tbt: Child, within: Duration) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let pid = tbt.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(tbt.wait_with_output());
    });
    let out = match rx.recv_timeout(within) {
        Ok(out) => out.expect("tbt's output"),
        Err(_) => {
            if let Some(p) = Pid::from_raw(pid as i32) {
                let _ = kill_process(p, Signal::KILL);
            }
            panic!("tbt did not exit within {within:?}");
        }
    };
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        started.elapsed(),
    )
}

/// Every process of `pids` is gone (killed processes are reaped by init: allow it a moment).
fn assert_all_gone(pids: &[(String, i32)], output: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<&(String, i32)> = pids.iter().filter(|(_, p)| alive(*p)).collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            for (_, p) in &left {
                if let Some(pid) = Pid::from_raw(*p) {
                    let _ = kill_process(pid, Signal::KILL);
                }
            }
            panic!("processes left behind: {left:?}\n{output}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("the JSON report");
    serde_json::from_str(&text).expect("JSON")
}

fn last_run(dir: &Path) -> PathBuf {
    dir.join(".tbt").join("last-run.json")
}

#[test]
fn sigterm_reports_what_finished_stops_every_group_and_exits_143() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tbt = start(dir.path(), &suite("1s"));
    let pids = wait_for_pids(dir.path(), &mut tbt);
    send(&tbt, Signal::TERM);
    let (code, output, _) = finish(tbt, Duration::from_secs(15));
    assert_eq!(code, Some(143), "{output}");
    assert!(output.contains("stopping (SIGTERM)"), "{output}");
    let r = report(dir.path());
    assert_eq!(r["interrupted"], true, "{r:#}");
    let status = |name: &str| {
        r["tests"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == name))
            .map(|t| t["status"].clone())
    };
    assert_eq!(status("quick"), Some("passed".into()), "{r:#}");
    assert_ne!(status("long"), Some("passed".into()), "{r:#}");
    assert!(last_run(dir.path()).exists(), "{output}");
    assert_all_gone(&pids, &output);
}

#[test]
fn sigint_does_the_same_with_130() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tbt = start(dir.path(), &suite("1s"));
    let pids = wait_for_pids(dir.path(), &mut tbt);
    send(&tbt, Signal::INT);
    let (code, output, _) = finish(tbt, Duration::from_secs(15));
    assert_eq!(code, Some(130), "{output}");
    assert_eq!(report(dir.path())["interrupted"], true);
    assert_all_gone(&pids, &output);
}

/// The service would take its 60 s `stop within` to be killed; a second SIGTERM does not wait.
#[test]
fn a_second_signal_stops_at_once_and_still_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tbt = start(dir.path(), &suite("60s"));
    let pids = wait_for_pids(dir.path(), &mut tbt);
    send(&tbt, Signal::TERM);
    // The first signal cancels the run at once (the trigger's group is killed), while the
    // service's stop would wait out its grace: then the second.
    let trigger = pids.iter().find(|(n, _)| n == "trig").map_or(0, |p| p.1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(trigger) {
        assert!(
            Instant::now() < deadline,
            "the first signal did not cancel the trigger"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    send(&tbt, Signal::TERM);
    let (code, output, took) = finish(tbt, Duration::from_secs(10));
    assert_eq!(code, Some(143), "{output}");
    assert!(
        took < Duration::from_secs(30),
        "it waited for the grace: {took:?}"
    );
    assert_all_gone(&pids, &output);
}

/// The run ends while clients hold connections to its receiver (issue 28): a half-sent HTTP/1
/// request on the OTLP/HTTP port and an idle TCP connection on the gRPC port (a stuck exporter,
/// a port probe) do not keep `tbt run` alive after its verdict — in CI that would be a hung job.
#[test]
fn the_run_ends_while_clients_hold_connections_to_the_receiver() {
    use std::io::Write;
    use std::net::TcpStream;
    let dir = tempfile::tempdir().expect("tempdir");
    let (grpc, http) = (crate::support::free_port(), crate::support::free_port());
    // The step waits for the test's `go` file: the connections are held before the run ends.
    std::fs::write(
        dir.path().join("held.tbt"),
        "test held {\n  trigger exec \"sh\" [\"-c\", \"while [ ! -f go ]; do sleep 0.02; done\"] {\n    timeout 30s\n  }\n  expect response {\n    exit_code == 0\n  }\n}\n",
    )
    .expect("write");
    use std::os::unix::process::CommandExt;
    let tbt = Command::new(env!("CARGO_BIN_EXE_tbt"))
        .args(["--color", "never", "run", "held.tbt"])
        .args(["--otlp-grpc", &format!("127.0.0.1:{grpc}")])
        .args(["--otlp-http", &format!("127.0.0.1:{http}")])
        .current_dir(dir.path())
        .env_remove("TBT_OTLP_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("tbt starts");
    let connect = |port: u16| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut half = connect(http);
    half.write_all(
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\nonly part of it",
    )
    .expect("a half-sent request");
    let idle = connect(grpc);
    std::fs::write(dir.path().join("go"), "").expect("go");
    let (code, output, took) = finish(tbt, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{output}");
    assert!(
        took < Duration::from_secs(10),
        "the run waited for the clients: {took:?}\n{output}"
    );
    drop((half, idle));
}
