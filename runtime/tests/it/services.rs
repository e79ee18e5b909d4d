//! Services with real processes: `/bin/sh` and `python3` one-liners stand in for the system under
//! test. Everything listens on loopback only, every readiness deadline is short, and conditions
//! (a process gone, a service exited) are waited on with a deadline, never a fixed sleep.

use crate::support::free_port;
use std::time::{Duration, Instant};
use tbt::service::{
    Exit, OtelEnv, Probe, Readiness, STOP_GRACE, ServiceError, ServiceSpec, Stopped, Supervisor,
};
use tbt_compiler::plan::OtlpProtocol;

fn spec(name: &str, program: &str, args: &[&str]) -> ServiceSpec {
    ServiceSpec {
        name: name.to_owned(),
        program: program.to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: Vec::new(),
        cwd: None,
        ready: None,
        stop_within: STOP_GRACE,
        otlp: OtlpProtocol::Grpc,
    }
}

/// How a service ended when stopped: its exit, and whether it had to be killed.
fn ended(stopped: &Stopped) -> (&str, Option<Exit>, bool) {
    (
        stopped.name.as_str(),
        stopped.exit,
        stopped.killed_after.is_some(),
    )
}

fn sh(name: &str, script: &str) -> ServiceSpec {
    spec(name, "/bin/sh", &["-c", script])
}

fn ready(mut spec: ServiceSpec, probe: Probe, within: Duration) -> ServiceSpec {
    spec.ready = Some(Readiness { probe, within });
    spec
}

fn log(text: &str) -> Probe {
    Probe::Log(text.to_owned())
}

fn otel() -> OtelEnv {
    OtelEnv::grpc("http://127.0.0.1:4999")
}

/// Gone, or a zombie nobody reaps (the container's init may not): either way, not running.
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// The service's log tail once it contains `text`, or as it is at the deadline.
fn log_tail_with(supervisor: &Supervisor, name: &str, text: &str, within: Duration) -> String {
    let until = Instant::now() + within;
    loop {
        let tail = supervisor.log_tail(name);
        if tail.contains(text) || Instant::now() >= until {
            return tail;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_gone(pid: u32, within: Duration) -> bool {
    let until = Instant::now() + within;
    loop {
        if is_gone(pid) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The number after `key=` in a service's output.
fn pid_after(log: &str, key: &str) -> u32 {
    log.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in log:\n{log}"))
}

#[tokio::test]
async fn log_readiness_waits_for_the_line_and_keeps_the_output() {
    let service = ready(
        sh(
            "api",
            "echo starting; echo 'oops' >&2; echo \"pid=$$\"; echo 'server listening on 8080'; exec sleep 300",
        ),
        log("listening"),
        Duration::from_secs(10),
    );
    let supervisor = Supervisor::start(vec![service], otel())
        .await
        .expect("started");
    let tail = supervisor.log_tail("api");
    assert!(tail.contains("starting"), "{tail}");
    // stderr is a second pipe, read on its own: its line may land after stdout's ready line.
    let tail = log_tail_with(&supervisor, "api", "oops", Duration::from_secs(2));
    assert!(tail.contains("oops"), "stderr is captured too: {tail}");
    assert!(tail.contains("server listening on 8080"), "{tail}");
    assert_eq!(supervisor.names(), ["api"]);
    assert!(supervisor.exited().is_empty());
    let pid = pid_after(&tail, "pid=");

    let stopped = supervisor.stop().await;
    assert_eq!(
        stopped.iter().map(ended).collect::<Vec<_>>(),
        [("api", Some(Exit::Signal(15)), false)],
        "SIGTERM stops it"
    );
    assert_eq!(stopped[0].kill_note(), None);
    assert!(wait_gone(pid, Duration::from_secs(2)));
}

#[tokio::test]
async fn tcp_readiness_waits_until_the_port_accepts() {
    let port = free_port();
    // Listens only after a moment, so the first attempts are refused.
    let script = "import socket, sys, time\n\
                  time.sleep(0.3)\n\
                  s = socket.socket()\n\
                  s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                  s.bind(('127.0.0.1', int(sys.argv[1])))\n\
                  s.listen()\n\
                  time.sleep(300)\n";
    let service = ready(
        spec("db", "python3", &["-c", script, &port.to_string()]),
        Probe::Tcp(format!("127.0.0.1:{port}")),
        Duration::from_secs(10),
    );
    let supervisor = Supervisor::start(vec![service], otel())
        .await
        .expect("started");
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("it listens once ready");
    supervisor.stop().await;
}

#[tokio::test]
async fn http_readiness_accepts_any_answer_below_500() {
    let port = free_port();
    let service = ready(
        spec(
            "web",
            "python3",
            &[
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ],
        ),
        // A 404 is an answer: the server is up.
        Probe::Http(format!("http://127.0.0.1:{port}/no-such-page")),
        Duration::from_secs(20),
    );
    let supervisor = Supervisor::start(vec![service], otel())
        .await
        .expect("started");
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("it serves once ready");
    supervisor.stop().await;
}

#[tokio::test]
async fn services_get_the_otel_variables_and_their_own_env_wins() {
    let mut service = ready(
        sh(
            "orders",
            "echo \"E=$OTEL_EXPORTER_OTLP_ENDPOINT|P=$OTEL_EXPORTER_OTLP_PROTOCOL|D=$OTEL_BSP_SCHEDULE_DELAY|S=$OTEL_TRACES_SAMPLER|N=$OTEL_SERVICE_NAME|U=$MY_VAR|PATH=${PATH:+set}\"; echo done; exec sleep 300",
        ),
        log("done"),
        Duration::from_secs(10),
    );
    service.env = vec![
        ("MY_VAR".to_owned(), "hello world".to_owned()),
        (
            "OTEL_TRACES_SAMPLER".to_owned(),
            "parentbased_always_on".to_owned(),
        ),
    ];
    let supervisor = Supervisor::start(vec![service, sh("plain", "exec sleep 300")], otel())
        .await
        .expect("started");
    let tail = supervisor.log_tail("orders");
    assert!(
        tail.contains(
            "E=http://127.0.0.1:4999|P=grpc|D=50|S=parentbased_always_on|N=orders|U=hello world|PATH=set"
        ),
        "{tail}"
    );
    assert_eq!(supervisor.names(), ["orders", "plain"]);
    supervisor.stop().await;
}

/// `otlp "http/protobuf"` (or `"http/json"`): the service is given the receiver's HTTP endpoint
/// and that protocol; the others keep the gRPC one.
#[tokio::test]
async fn a_service_exporting_over_http_is_given_the_http_endpoint() {
    let script = "echo \"E=$OTEL_EXPORTER_OTLP_ENDPOINT|P=$OTEL_EXPORTER_OTLP_PROTOCOL\"; echo done; exec sleep 300";
    let mut json = ready(sh("json", script), log("done"), Duration::from_secs(10));
    json.otlp = OtlpProtocol::HttpJson;
    let mut proto = ready(sh("proto", script), log("done"), Duration::from_secs(10));
    proto.otlp = OtlpProtocol::HttpProtobuf;
    let grpc = ready(sh("grpc", script), log("done"), Duration::from_secs(10));
    let otel = OtelEnv::receiver(
        Some("http://127.0.0.1:4999".to_owned()),
        Some("http://127.0.0.1:4998".to_owned()),
    );
    let supervisor = Supervisor::start(vec![json, proto, grpc], otel)
        .await
        .expect("started");
    for (name, want) in [
        ("json", "E=http://127.0.0.1:4998|P=http/json"),
        ("proto", "E=http://127.0.0.1:4998|P=http/protobuf"),
        ("grpc", "E=http://127.0.0.1:4999|P=grpc"),
    ] {
        let tail = supervisor.log_tail(name);
        assert!(tail.contains(want), "{name}: {tail}");
    }
    supervisor.stop().await;
}

#[tokio::test]
async fn a_service_that_exits_early_reports_its_code_and_output() {
    let service = ready(
        sh(
            "api",
            "echo 'loading config'; echo 'error: DATABASE_URL is not set' >&2; exit 7",
        ),
        log("listening"),
        Duration::from_secs(30),
    );
    let clock = Instant::now();
    let error = Supervisor::start(vec![service], otel())
        .await
        .expect_err("it exits");
    assert!(
        clock.elapsed() < Duration::from_secs(10),
        "does not wait for the deadline"
    );
    let ServiceError::ExitedEarly {
        name,
        status,
        log_tail,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(name, "api");
    assert_eq!(*status, Exit::Code(7));
    assert!(log_tail.contains("DATABASE_URL is not set"), "{log_tail}");
    let shown = error.to_string();
    assert!(
        shown.starts_with("service `api` exited before it was ready (exit code 7)"),
        "{shown}"
    );
    assert!(
        shown.contains("| error: DATABASE_URL is not set"),
        "{shown}"
    );
    assert!(shown.contains("| loading config"), "{shown}");
}

#[tokio::test]
async fn a_service_that_never_becomes_ready_fails_at_its_deadline_and_is_stopped() {
    let port = free_port();
    let service = ready(
        sh(
            "api",
            "echo \"pid=$$\"; echo 'still booting'; exec sleep 300",
        ),
        Probe::Tcp(format!("127.0.0.1:{port}")),
        Duration::from_millis(400),
    );
    let clock = Instant::now();
    let error = Supervisor::start(vec![service], otel())
        .await
        .expect_err("never ready");
    let took = clock.elapsed();
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < STOP_GRACE + Duration::from_secs(2), "{took:?}");
    let ServiceError::NotReady {
        name,
        probe,
        within,
        last_attempt,
        log_tail,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(name, "api");
    assert_eq!(*probe, Probe::Tcp(format!("127.0.0.1:{port}")));
    assert_eq!(*within, Duration::from_millis(400));
    assert!(
        last_attempt
            .as_deref()
            .is_some_and(|a| a.contains("refused")),
        "{last_attempt:?}"
    );
    assert!(log_tail.contains("still booting"), "{log_tail}");
    let shown = error.to_string();
    assert!(
        shown.starts_with(&format!(
            "service `api` was not ready within 400ms: no TCP connection to 127.0.0.1:{port}"
        )),
        "{shown}"
    );
    let pid = pid_after(log_tail, "pid=");
    assert!(
        wait_gone(pid, Duration::from_secs(2)),
        "the service is stopped"
    );
}

#[tokio::test]
async fn a_log_line_that_never_comes_fails_at_its_deadline() {
    let error = Supervisor::start(
        vec![ready(
            sh("worker", "echo hello; exec sleep 300"),
            log("ready to serve"),
            Duration::from_millis(300),
        )],
        otel(),
    )
    .await
    .expect_err("never ready");
    assert!(
        error.to_string().starts_with(
            "service `worker` was not ready within 300ms: no log line containing \"ready to serve\""
        ),
        "{error}"
    );
    assert!(error.to_string().contains("| hello"), "{error}");
}

#[tokio::test]
async fn a_missing_program_is_a_clear_spawn_error() {
    for program in ["/nonexistent/tbt-server", "tbt-no-such-program-on-path"] {
        let error = Supervisor::start(vec![spec("api", program, &[])], otel())
            .await
            .expect_err("missing");
        let ServiceError::Spawn {
            name,
            program: named,
            reason,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(name, "api");
        assert_eq!(named, program);
        assert!(reason.contains("not found"), "{reason}");
        assert_eq!(
            error.to_string(),
            format!(
                "service `api` could not be started: `{program}`: program not found (is it installed and on PATH?)"
            )
        );
    }
}

#[tokio::test]
async fn a_missing_working_directory_is_a_spawn_error() {
    let mut service = sh("api", "exec sleep 300");
    service.cwd = Some("/nonexistent/dir".into());
    let error = Supervisor::start(vec![service], otel())
        .await
        .expect_err("no dir");
    assert!(
        error
            .to_string()
            .contains("working directory /nonexistent/dir does not exist"),
        "{error}"
    );
}

#[tokio::test]
async fn a_failing_service_stops_the_ones_started_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let first = ready(
        sh(
            "db",
            &format!(
                "echo $$ > '{}'; echo up; exec sleep 300",
                pid_file.display()
            ),
        ),
        log("up"),
        Duration::from_secs(10),
    );
    let error = Supervisor::start(vec![first, spec("api", "/nonexistent/api", &[])], otel())
        .await
        .expect_err("second fails");
    assert_eq!(error.service(), "api");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    assert!(wait_gone(pid, Duration::from_secs(2)), "db was stopped");
}

#[tokio::test]
async fn cwd_is_the_services_working_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut service = ready(
        sh("api", "echo \"cwd=$(pwd)\"; exec sleep 300"),
        log("cwd="),
        Duration::from_secs(10),
    );
    service.cwd = Some(dir.path().to_owned());
    let supervisor = Supervisor::start(vec![service], otel())
        .await
        .expect("started");
    let canonical = dir.path().canonicalize().expect("canonical");
    let tail = supervisor.log_tail("api");
    assert!(
        tail.contains(&format!("cwd={}", canonical.display()))
            || tail.contains(&format!("cwd={}", dir.path().display())),
        "{tail}"
    );
    supervisor.stop().await;
}

fn grandparent_script() -> &'static str {
    // The shell starts a grandchild-to-be (sleep), prints both pids, and waits.
    "sleep 300 & echo \"child=$!\"; echo \"pid=$$\"; echo ready; wait"
}

#[tokio::test]
async fn stop_kills_the_whole_process_group() {
    let service = ready(
        sh("api", grandparent_script()),
        log("ready"),
        Duration::from_secs(10),
    );
    let supervisor = Supervisor::start(vec![service], otel())
        .await
        .expect("started");
    let tail = supervisor.log_tail("api");
    let (leader, child) = (pid_after(&tail, "pid="), pid_after(&tail, "child="));
    assert!(!is_gone(child) && !is_gone(leader));
    supervisor.stop().await;
    assert!(wait_gone(leader, Duration::from_secs(2)));
    assert!(
        wait_gone(child, Duration::from_secs(2)),
        "grandchild killed"
    );
}

fn stubborn(name: &str, stop_within: Duration) -> ServiceSpec {
    let mut spec = ready(
        sh(
            name,
            "trap '' TERM; echo \"pid=$$\"; echo ready; while :; do sleep 1; done",
        ),
        log("ready"),
        Duration::from_secs(10),
    );
    spec.stop_within = stop_within;
    spec
}

#[tokio::test]
async fn stop_kills_what_ignores_sigterm_after_its_grace_period_and_says_so() {
    let grace = Duration::from_millis(300);
    let supervisor = Supervisor::start(vec![stubborn("stubborn", grace)], otel())
        .await
        .expect("started");
    let pid = pid_after(&supervisor.log_tail("stubborn"), "pid=");
    let clock = Instant::now();
    let stopped = supervisor.stop().await;
    let took = clock.elapsed();
    assert!(took >= grace, "{took:?}");
    assert!(
        took < STOP_GRACE,
        "its own grace, not the default: {took:?}"
    );
    assert_eq!(
        stopped.iter().map(ended).collect::<Vec<_>>(),
        [("stubborn", Some(Exit::Signal(9)), true)]
    );
    let note = stopped[0].kill_note().expect("a note");
    assert!(
        note.contains("service `stubborn` did not end within 300ms of SIGTERM and was killed"),
        "{note}"
    );
    assert!(wait_gone(pid, Duration::from_secs(2)));
}

/// Each service waits its own grace, counted from the one SIGTERM to all: a quick one is not
/// held up by a slow one's longer grace, and the whole stop takes the longest grace, not the sum.
#[tokio::test]
async fn each_service_gets_its_own_grace_counted_from_the_same_sigterm() {
    let short = Duration::from_millis(200);
    let long = Duration::from_millis(700);
    let supervisor = Supervisor::start(
        vec![stubborn("slow", long), stubborn("quick", short)],
        otel(),
    )
    .await
    .expect("started");
    let clock = Instant::now();
    let stopped = supervisor.stop().await;
    let took = clock.elapsed();
    assert!(took >= long, "{took:?}");
    assert!(
        took < long + short + Duration::from_millis(250),
        "not the sum: {took:?}"
    );
    assert_eq!(
        stopped.iter().map(ended).collect::<Vec<_>>(),
        [
            ("slow", Some(Exit::Signal(9)), true),
            ("quick", Some(Exit::Signal(9)), true)
        ]
    );
    assert_eq!(stopped[0].killed_after, Some(long));
    assert_eq!(stopped[1].killed_after, Some(short));
}

#[tokio::test]
async fn dropping_the_supervisor_kills_every_group() {
    let services = vec![
        ready(
            sh("a", grandparent_script()),
            log("ready"),
            Duration::from_secs(10),
        ),
        ready(
            sh("b", grandparent_script()),
            log("ready"),
            Duration::from_secs(10),
        ),
    ];
    let supervisor = Supervisor::start(services, otel()).await.expect("started");
    let mut pids = Vec::new();
    for name in ["a", "b"] {
        let tail = supervisor.log_tail(name);
        pids.push(pid_after(&tail, "pid="));
        pids.push(pid_after(&tail, "child="));
    }
    drop(supervisor);
    for pid in pids {
        assert!(wait_gone(pid, Duration::from_secs(2)), "{pid} killed");
    }
}

#[tokio::test]
async fn a_service_that_dies_during_the_run_is_reported() {
    let supervisor = Supervisor::start(
        vec![
            ready(
                sh(
                    "flaky",
                    "echo ready; sleep 0.2; echo 'panic: out of memory' >&2; exit 3",
                ),
                log("ready"),
                Duration::from_secs(10),
            ),
            sh("steady", "exec sleep 300"),
        ],
        otel(),
    )
    .await
    .expect("started");
    let until = Instant::now() + Duration::from_secs(10);
    while supervisor.exited().is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(supervisor.exited(), [("flaky".to_owned(), Exit::Code(3))]);
    let stopped = supervisor.stop().await;
    assert_eq!(ended(&stopped[0]), ("flaky", Some(Exit::Code(3)), false));
    assert_eq!(
        ended(&stopped[1]),
        ("steady", Some(Exit::Signal(15)), false)
    );
}

#[tokio::test]
async fn the_log_keeps_only_the_tail() {
    let service = ready(
        sh("chatty", "seq 1 3000; echo end; exec sleep 300"),
        log("end"),
        Duration::from_secs(10),
    );
    let supervisor = Supervisor::start(vec![service], otel())
        .await
        .expect("started");
    let tail = supervisor.log_tail("chatty");
    let lines: Vec<&str> = tail.lines().collect();
    assert!(lines.len() <= 501, "{}", lines.len());
    assert!(lines[0].contains("earlier lines not shown"), "{}", lines[0]);
    assert_eq!(lines.last(), Some(&"end"));
    assert!(lines.contains(&"3000"));
    supervisor.stop().await;
}

#[tokio::test]
async fn no_services_is_fine() {
    let supervisor = Supervisor::start(Vec::new(), OtelEnv::default())
        .await
        .expect("nothing to start");
    assert!(supervisor.names().is_empty());
    assert!(supervisor.stop().await.is_empty());
}

#[tokio::test]
async fn an_http_server_answering_5xx_is_not_ready() {
    let port = free_port();
    let script = "import http.server, sys\n\
                  class H(http.server.BaseHTTPRequestHandler):\n\
                  \x20   def do_GET(self):\n\
                  \x20       self.send_response(503)\n\
                  \x20       self.end_headers()\n\
                  http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";
    let error = Supervisor::start(
        vec![ready(
            spec("web", "python3", &["-c", script, &port.to_string()]),
            Probe::Http(format!("http://127.0.0.1:{port}/health")),
            Duration::from_millis(1500),
        )],
        otel(),
    )
    .await
    .expect_err("503 is not ready");
    let ServiceError::NotReady { last_attempt, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        last_attempt.as_deref(),
        Some("answered 503 Service Unavailable"),
        "{error}"
    );
}

#[tokio::test]
async fn an_early_exit_is_reported_even_when_a_child_holds_the_output_open() {
    let clock = Instant::now();
    let error = Supervisor::start(
        vec![ready(
            sh(
                "api",
                "sleep 300 & echo \"child=$!\"; echo 'fatal: bad flag'; exit 2",
            ),
            log("listening"),
            Duration::from_secs(30),
        )],
        otel(),
    )
    .await
    .expect_err("exits");
    assert!(
        clock.elapsed() < Duration::from_secs(5),
        "{:?}",
        clock.elapsed()
    );
    let ServiceError::ExitedEarly {
        status, log_tail, ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(*status, Exit::Code(2));
    assert!(log_tail.contains("fatal: bad flag"), "{log_tail}");
    let child = pid_after(log_tail, "child=");
    assert!(
        wait_gone(child, Duration::from_secs(2)),
        "the orphaned child is killed with the group"
    );
}

/// Readiness text without its newline yet (a prompt, or a write cut before the newline): the
/// service is ready and its tail already shows that text.
#[tokio::test]
async fn a_ready_line_without_its_newline_is_in_the_tail() {
    let service = ready(
        sh("prompt", "echo booting; printf 'ready> '; exec sleep 300"),
        log("ready>"),
        Duration::from_secs(10),
    );
    let supervisor = Supervisor::start(vec![service], otel())
        .await
        .expect("started");
    assert_eq!(supervisor.log_tail("prompt"), "booting\nready> ");
    supervisor.stop().await;
}

#[tokio::test]
async fn long_lines_are_cut() {
    let service = ready(
        spec(
            "wide",
            "python3",
            &[
                "-c",
                "print('x' * 100000); print('done', flush=True); import time; time.sleep(300)",
            ],
        ),
        log("done"),
        Duration::from_secs(10),
    );
    let supervisor = Supervisor::start(vec![service], otel())
        .await
        .expect("started");
    let tail = supervisor.log_tail("wide");
    let first = tail.lines().next().expect("a line");
    assert!(first.len() <= 4096 + '…'.len_utf8(), "{}", first.len());
    assert!(first.ends_with('…'));
    assert!(tail.ends_with("done"), "{tail}");
    supervisor.stop().await;
}
