//! Services: the processes of a suite's `service` blocks (the system under test).
//!
//! Why it exists: a suite can bring its own system up. Before the tests run, [`Supervisor::start`]
//! starts each service in declaration order, pointing its OpenTelemetry SDK at the embedded
//! receiver (`OTEL_EXPORTER_OTLP_ENDPOINT`, gRPC, a short batch delay, every trace sampled), and
//! waits until it is ready (an HTTP answer, an accepted TCP connection or a log line) within its
//! deadline. Each service's stdout and stderr are kept in a small bounded buffer, so that when
//! something fails the last lines it printed can be shown. At the end, on failure and on Ctrl-C,
//! every service is stopped as a whole process group: SIGTERM, a grace period, then SIGKILL.
//!
//! What it must not do: run anything through a shell (the program and its arguments are passed as
//! a list), let captured output grow without bound or block a service on a full pipe (output is
//! always drained; only the tail is kept), wait on anything without a deadline, or leave processes
//! behind: dropping a [`Supervisor`] without [`Supervisor::stop`] (a panic, a cancelled task)
//! kills every group synchronously. It prints nothing; the caller decides what to show.
//!
//! Services start one after another, each once the previous one is ready, so a service may rely
//! on the ones declared before it (a database before the API that uses it).

use rustix::process::{Pid, Signal, kill_process_group};
use std::collections::VecDeque;
use std::fmt;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tbt_compiler::plan::OtlpProtocol;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long [`Supervisor::stop`] waits after SIGTERM before it sends SIGKILL, for a service
/// without `stop within …`. Long enough for a server to close its connections and flush; short
/// enough that a process which ignores SIGTERM (the Node zero-code agent installs a handler that
/// keeps it alive) costs little on every run.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// Most bytes of output kept per service (stdout and stderr together).
pub const LOG_MAX_BYTES: usize = 64 * 1024;

/// Most lines of output kept per service.
pub const LOG_MAX_LINES: usize = 500;

/// Longest line kept; the rest of a longer line is dropped (and marked with `…`).
const LOG_MAX_LINE: usize = 4096;

/// How many lines of output an error shows.
const ERROR_TAIL_LINES: usize = 40;

/// Longest pause between two readiness attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// One `service` block, with its strings evaluated: plain data built from the AST by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The block's name; also the default `OTEL_SERVICE_NAME`.
    pub name: String,
    /// `run "program" …`: a path or a name looked up on `PATH`, never a shell command line.
    pub program: String,
    /// `run … ["args"]`
    pub args: Vec<String>,
    /// `env NAME = "value"`, in order; these win over the OpenTelemetry defaults.
    pub env: Vec<(String, String)>,
    /// `cwd "dir"`; the runner's working directory when absent.
    pub cwd: Option<PathBuf>,
    /// `ready … within …`; without it the service counts as ready once started.
    pub ready: Option<Readiness>,
    /// `stop within …`: how long it may take to end after SIGTERM before it is killed
    /// ([`STOP_GRACE`] when not written).
    pub stop_within: Duration,
    /// `otlp "…"`: the protocol it exports with, and so which receiver endpoint it is given.
    pub otlp: OtlpProtocol,
}

/// When a service counts as ready, and how long that may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// What is checked.
    pub probe: Probe,
    /// The deadline, counted from the moment the service was started.
    pub within: Duration,
}

/// The export delay tbt gives the services it starts (`OTEL_BSP_SCHEDULE_DELAY`, ms).
pub const EXPORT_DELAY_MS: u64 = 50;

impl ServiceSpec {
    /// The `service.name` its spans carry and its export period: what tbt set (its own `env`
    /// wins over tbt's defaults), so the trace judge need not estimate it.
    pub fn export_period(&self) -> (String, Duration) {
        let var = |k: &str| {
            self.env
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let name = var("OTEL_SERVICE_NAME").unwrap_or(&self.name).to_string();
        let ms = var("OTEL_BSP_SCHEDULE_DELAY")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(EXPORT_DELAY_MS);
        (name, Duration::from_millis(ms))
    }
}

/// A readiness check, retried with a short capped backoff until it passes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `ready http "url"`: a GET answered with any status below 500 (a server that answers is
    /// up; redirects are not followed, certificates are not verified — nothing read is trusted).
    Http(String),
    /// `ready tcp "host:port"`: a TCP connection is accepted.
    Tcp(String),
    /// `ready log "text"`: a line of stdout or stderr contains the text.
    Log(String),
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Http(url) => write!(f, "HTTP GET {url}"),
            Probe::Tcp(addr) => write!(f, "TCP connection to {addr}"),
            Probe::Log(text) => write!(f, "log line containing {text:?}"),
        }
    }
}

/// Where services send their spans: handed over by the runner from the embedded receiver.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtelEnv {
    /// The OTLP gRPC endpoint (`http://127.0.0.1:4317`), for services with `otlp "grpc"` (the
    /// default).
    pub grpc: Option<String>,
    /// The OTLP/HTTP endpoint (`http://127.0.0.1:4318`; exporters append `/v1/traces`), for
    /// services with `otlp "http/protobuf"` or `otlp "http/json"`.
    pub http: Option<String>,
}

impl OtelEnv {
    /// Services export over gRPC to `endpoint` (e.g. [`crate::receiver::RunningReceiver::grpc_endpoint`]).
    pub fn grpc(endpoint: impl Into<String>) -> Self {
        OtelEnv {
            grpc: Some(endpoint.into()),
            http: None,
        }
    }

    /// Both endpoints of a receiver: each service is sent to the one of the protocol it exports with.
    pub fn receiver(grpc: Option<String>, http: Option<String>) -> Self {
        OtelEnv { grpc, http }
    }

    /// The variables a service exporting with `protocol` gets before its own `env` (which wins
    /// over them). Without an endpoint for that protocol (no receiver, e.g. when traces are read
    /// from Jaeger and services export to their own collector) `OTEL_EXPORTER_OTLP_*` is left alone.
    ///
    /// They also win over the runner's inherited environment: a stray
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` in a CI job must not send the spans somewhere tbt never looks.
    pub fn vars(&self, service: &str, protocol: OtlpProtocol) -> Vec<(String, String)> {
        let mut vars = Vec::new();
        let endpoint = match protocol {
            OtlpProtocol::Grpc => &self.grpc,
            OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => &self.http,
        };
        if let Some(endpoint) = endpoint {
            vars.push(("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint.clone()));
            vars.push((
                "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
                protocol.name().to_owned(),
            ));
            // The receiver takes traces only; other signals would fail and flood the log.
            vars.push(("OTEL_METRICS_EXPORTER".to_owned(), "none".to_owned()));
            vars.push(("OTEL_LOGS_EXPORTER".to_owned(), "none".to_owned()));
        }
        // 50 ms: the quiet window for an exporter is its period plus a quarter (≥ 20 ms), which
        // stays inside the default `settle` (100 ms), so verdicts wait for nothing but `settle`.
        vars.push((
            "OTEL_BSP_SCHEDULE_DELAY".to_owned(),
            EXPORT_DELAY_MS.to_string(),
        ));
        vars.push(("OTEL_TRACES_SAMPLER".to_owned(), "always_on".to_owned()));
        vars.push(("OTEL_SERVICE_NAME".to_owned(), service.to_owned()));
        vars
    }
}

/// How a service's process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl From<ExitStatus> for Exit {
    fn from(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            // Neither is possible on Unix; report something rather than nothing.
            (None, None) => Exit::Code(-1),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(signal) => {
                let name = match signal {
                    1 => " (SIGHUP)",
                    2 => " (SIGINT)",
                    6 => " (SIGABRT)",
                    9 => " (SIGKILL)",
                    11 => " (SIGSEGV)",
                    13 => " (SIGPIPE)",
                    15 => " (SIGTERM)",
                    _ => "",
                };
                write!(f, "killed by signal {signal}{name}")
            }
        }
    }
}

/// Why the services could not be started. Every variant reads as one sentence followed by the
/// service's last output (the CLI maps all of them to exit code 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceError {
    /// The program could not be started at all.
    Spawn {
        /// The service.
        name: String,
        /// What `run` named.
        program: String,
        /// Why, in words ("not found …", "permission denied …").
        reason: String,
    },
    /// The service's process ended before it was ready.
    ExitedEarly {
        /// The service.
        name: String,
        /// How it ended.
        status: Exit,
        /// Its last lines of output.
        log_tail: String,
    },
    /// The readiness check did not pass within its deadline.
    NotReady {
        /// The service.
        name: String,
        /// The check.
        probe: Probe,
        /// Its deadline.
        within: Duration,
        /// Why the last attempt failed, when there was one.
        last_attempt: Option<String>,
        /// Its last lines of output.
        log_tail: String,
    },
}

impl ServiceError {
    /// The service concerned.
    pub fn service(&self) -> &str {
        match self {
            ServiceError::Spawn { name, .. }
            | ServiceError::ExitedEarly { name, .. }
            | ServiceError::NotReady { name, .. } => name,
        }
    }

    /// The one-sentence summary, without the log tail.
    pub fn summary(&self) -> String {
        match self {
            ServiceError::Spawn {
                name,
                program,
                reason,
            } => format!("service `{name}` could not be started: `{program}`: {reason}"),
            ServiceError::ExitedEarly { name, status, .. } => {
                format!("service `{name}` exited before it was ready ({status})")
            }
            ServiceError::NotReady {
                name,
                probe,
                within,
                last_attempt,
                ..
            } => {
                let mut s = format!(
                    "service `{name}` was not ready within {}: no {probe}",
                    show_duration(*within)
                );
                if let Some(last) = last_attempt {
                    s.push_str(&format!(" (last attempt: {last})"));
                }
                s
            }
        }
    }

    /// The service's last lines of output (empty for [`ServiceError::Spawn`]).
    pub fn log_tail(&self) -> &str {
        match self {
            ServiceError::Spawn { .. } => "",
            ServiceError::ExitedEarly { log_tail, .. }
            | ServiceError::NotReady { log_tail, .. } => log_tail,
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())?;
        let tail = self.log_tail();
        match self {
            ServiceError::Spawn { .. } => Ok(()),
            _ if tail.is_empty() => write!(f, "\n  (it printed nothing)"),
            _ => {
                write!(f, "\n  last output of `{}`:", self.service())?;
                for line in tail.lines() {
                    write!(f, "\n  | {line}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ServiceError {}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

// ---------------------------------------------------------------- log buffer

/// The last lines a service printed, bounded by lines and bytes.
#[derive(Debug, Default)]
struct LogBuffer {
    lines: VecDeque<String>,
    bytes: usize,
    dropped: usize,
    /// Per stream (stdout, stderr): the line it is printing, not yet ended by a newline.
    partial: [Option<String>; 2],
}

impl LogBuffer {
    fn push(&mut self, line: String) {
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > LOG_MAX_LINES || self.bytes > LOG_MAX_BYTES {
            match self.lines.pop_front() {
                Some(old) => {
                    self.bytes -= old.len();
                    self.dropped += 1;
                }
                None => break,
            }
        }
    }

    /// The last `max` lines kept, one per line.
    fn tail(&self, max: usize) -> String {
        let skip = self.lines.len().saturating_sub(max);
        let mut out = String::new();
        if self.dropped + skip > 0 {
            out.push_str(&format!(
                "… ({} earlier lines not shown)\n",
                self.dropped + skip
            ));
        }
        for line in self.lines.iter().skip(skip) {
            out.push_str(line);
            out.push('\n');
        }
        // Unfinished lines last: a prompt, or the readiness text before its newline came.
        for line in self.partial.iter().flatten() {
            out.push_str(line);
            out.push('\n');
        }
        out.pop();
        out
    }
}

type SharedLog = Arc<Mutex<LogBuffer>>;

fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, LogBuffer> {
    // A panic while pushing a line leaves the buffer usable.
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Drains one output stream into the log, line by line, until it closes. Sets `found` when a
/// line contains `needle` (the log readiness probe).
async fn capture<R: AsyncRead + Unpin>(
    mut reader: R,
    stream: usize,
    log: SharedLog,
    needle: Option<(String, Arc<watch::Sender<bool>>)>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut cut = false;
    let mut chunk = vec![0u8; 8 * 1024];
    // Whether `text` holds the readiness needle (not yet signalled).
    let hit = |text: &[u8]| {
        needle.as_ref().is_some_and(|(needle, found)| {
            !*found.borrow() && String::from_utf8_lossy(text).contains(needle.as_str())
        })
    };
    let signal = || {
        if let Some((_, found)) = &needle {
            found.send_replace(true);
        }
    };
    let finish = |pending: &mut Vec<u8>, cut: &mut bool| {
        if pending.last() == Some(&b'\r') {
            pending.pop();
        }
        let mut line = String::from_utf8_lossy(pending).into_owned();
        if *cut {
            line.push('…');
        }
        let mut log = lock(&log);
        log.partial[stream] = None;
        log.push(line);
        pending.clear();
        *cut = false;
    };
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for part in chunk[..n].split_inclusive(|&b| b == b'\n') {
            let (body, ends) = match part.split_last() {
                Some((b'\n', body)) => (body, true),
                _ => (part, false),
            };
            let room = LOG_MAX_LINE.saturating_sub(pending.len());
            if body.len() > room {
                cut = true;
            }
            pending.extend_from_slice(&body[..body.len().min(room)]);
            let ready = hit(&pending);
            if ends {
                // The line is in the log before anyone woken by readiness reads the log.
                finish(&mut pending, &mut cut);
            }
            if ready {
                if !ends {
                    // Likewise the readiness text that has no newline yet.
                    lock(&log).partial[stream] =
                        Some(String::from_utf8_lossy(&pending).into_owned());
                }
                signal();
            }
        }
        if !pending.is_empty() {
            lock(&log).partial[stream] = Some(String::from_utf8_lossy(&pending).into_owned());
        }
    }
    if !pending.is_empty() || cut {
        finish(&mut pending, &mut cut);
    }
}

// ---------------------------------------------------------------- supervisor

/// One started service.
#[derive(Debug)]
struct Running {
    name: String,
    /// `stop within`: the grace between SIGTERM and SIGKILL.
    stop_within: Duration,
    /// The process group (the child leads it, so its id is the child's pid).
    group: Option<Pid>,
    /// Known to [`crate::stop`] while it runs, so a second signal kills it too.
    _registered: Option<crate::stop::Registered>,
    log: SharedLog,
    /// `Some` once the service's own process ended.
    exit: watch::Receiver<Option<Exit>>,
    /// The output readers; they end when every process holding the pipes is gone.
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    fn signal(&self, signal: Signal) {
        if let Some(group) = self.group {
            // ESRCH (already gone) is the expected outcome of a late signal.
            let _ = kill_process_group(group, signal);
        }
    }

    fn exited(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    async fn wait_exit(&mut self, until: Instant) -> Option<Exit> {
        let waited = tokio::time::timeout_at(until, self.exit.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|exit| *exit);
        waited.or_else(|| self.exited())
    }

    /// Lets the readers take in what is left in the pipes (bounded: a grandchild may hold them).
    async fn drain_output(&mut self, within: Duration) {
        let until = Instant::now() + within;
        for reader in &mut self.readers {
            let _ = tokio::time::timeout_at(until, reader).await;
        }
    }

    fn tail(&self, max: usize) -> String {
        lock(&self.log).tail(max)
    }
}

/// The running services of a suite. Stop it with [`Supervisor::stop`]; dropping it kills every
/// service's process group at once.
#[derive(Debug, Default)]
pub struct Supervisor {
    services: Vec<Running>,
}

impl Supervisor {
    /// Starts the services in order, each once the previous one is ready, with the OpenTelemetry
    /// variables of `otel` (see [`OtelEnv::vars`]) and then each service's own `env`.
    ///
    /// On any error the services already started (and the failing one) are stopped before the
    /// error is returned.
    pub async fn start(specs: Vec<ServiceSpec>, otel: OtelEnv) -> Result<Supervisor, ServiceError> {
        let mut supervisor = Supervisor::default();
        let mut http: Option<reqwest::Client> = None;
        for spec in specs {
            if let Err(e) = supervisor.start_one(spec, &otel, &mut http).await {
                supervisor.stop().await;
                return Err(e);
            }
        }
        Ok(supervisor)
    }

    async fn start_one(
        &mut self,
        spec: ServiceSpec,
        otel: &OtelEnv,
        http: &mut Option<reqwest::Client>,
    ) -> Result<(), ServiceError> {
        let spawn_error = |reason: String| ServiceError::Spawn {
            name: spec.name.clone(),
            program: spec.program.clone(),
            reason,
        };
        if spec.program.is_empty() {
            return Err(spawn_error("no program given".to_owned()));
        }
        let mut command = Command::new(&spec.program);
        for var in cargo_package_vars() {
            command.env_remove(var);
        }
        command
            .args(&spec.args)
            .envs(otel.vars(&spec.name, spec.otlp))
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cwd) = &spec.cwd {
            // Checked here because spawning reports a missing directory as a missing program.
            if !cwd.is_dir() {
                return Err(spawn_error(format!(
                    "working directory {} does not exist",
                    cwd.display()
                )));
            }
            command.current_dir(cwd);
        }
        let started = Instant::now();
        let mut child = command.spawn().map_err(|e| {
            spawn_error(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "program not found (is it installed and on PATH?)".to_owned()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied (is it executable?)".to_owned()
                }
                _ => e.to_string(),
            })
        })?;
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw);

        let log = SharedLog::default();
        let (found_tx, mut found_rx) = watch::channel(false);
        let found_tx = Arc::new(found_tx);
        let needle = match &spec.ready {
            Some(Readiness {
                probe: Probe::Log(text),
                ..
            }) => Some((text.clone(), found_tx.clone())),
            _ => None,
        };
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(capture(out, 0, log.clone(), needle.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(capture(err, 1, log.clone(), needle)));
        }
        let (exit_tx, exit_rx) = watch::channel(None);
        tokio::spawn(async move {
            // The task owns the child, so it is reaped as soon as it ends; if the runtime goes
            // away first, kill_on_drop kills it.
            if let Ok(status) = child.wait().await {
                exit_tx.send_replace(Some(Exit::from(status)));
            }
        });
        self.services.push(Running {
            name: spec.name.clone(),
            stop_within: spec.stop_within,
            group,
            _registered: group.map(crate::stop::Registered::new),
            log,
            exit: exit_rx,
            readers,
        });
        let Some(ready) = spec.ready else {
            return Ok(());
        };
        let Some(running) = self.services.last_mut() else {
            return Ok(());
        };

        let deadline = started + ready.within;
        let mut last_attempt: Option<String> = None;
        let probing = async {
            match &ready.probe {
                Probe::Log(_) => {
                    let _ = found_rx.wait_for(|found| *found).await;
                }
                Probe::Tcp(addr) => {
                    poll(deadline, &mut last_attempt, || async {
                        tokio::net::TcpStream::connect(addr.as_str())
                            .await
                            .map(drop)
                            .map_err(|e| e.to_string())
                    })
                    .await;
                }
                Probe::Http(url) => {
                    let client = match http {
                        Some(client) => client.clone(),
                        None => {
                            let client = probe_client()
                                .map_err(|reason| spawn_error(format!("readiness: {reason}")))?;
                            http.insert(client).clone()
                        }
                    };
                    poll(deadline, &mut last_attempt, || {
                        let request = client.get(url.as_str()).timeout(
                            deadline
                                .saturating_duration_since(Instant::now())
                                .clamp(Duration::from_millis(1), Duration::from_secs(2)),
                        );
                        async move {
                            match request.send().await {
                                Ok(r) if r.status().as_u16() < 500 => Ok(()),
                                Ok(r) => Err(format!("answered {}", r.status())),
                                Err(e) => Err(root_cause(&e)),
                            }
                        }
                    })
                    .await;
                }
            }
            Ok::<(), ServiceError>(())
        };
        let mut exit = running.exit.clone();
        let outcome = tokio::select! {
            probed = tokio::time::timeout_at(deadline, probing) => match probed {
                Ok(Ok(())) => None,
                Ok(Err(e)) => return Err(e),
                Err(_) => Some(None),
            },
            exited = async {
                match exit.wait_for(Option::is_some).await {
                    Ok(exit) => *exit,
                    // The waiter could not wait: only the probe and the deadline can tell.
                    Err(_) => std::future::pending().await,
                }
            } => Some(exited),
        };
        let Some(exited) = outcome else {
            return Ok(());
        };
        // A log line or a connection may have raced with the exit: an exit wins, it is the news.
        let exited = exited.or_else(|| running.exited());
        running.drain_output(Duration::from_millis(500)).await;
        let log_tail = running.tail(ERROR_TAIL_LINES);
        Err(match exited {
            Some(status) => ServiceError::ExitedEarly {
                name: spec.name,
                status,
                log_tail,
            },
            None => ServiceError::NotReady {
                name: spec.name,
                probe: ready.probe,
                within: ready.within,
                last_attempt,
                log_tail,
            },
        })
    }

    /// The names of the running services, in start order.
    pub fn names(&self) -> Vec<&str> {
        self.services.iter().map(|s| s.name.as_str()).collect()
    }

    /// What the service printed last (stdout and stderr interleaved as they arrived, at most
    /// [`LOG_MAX_LINES`] lines / [`LOG_MAX_BYTES`] bytes); empty for an unknown name.
    pub fn log_tail(&self, name: &str) -> String {
        self.services
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.tail(LOG_MAX_LINES))
            .unwrap_or_default()
    }

    /// The services whose process has ended since they were started (the runner reports them:
    /// a test failing because its service crashed should say so).
    pub fn exited(&self) -> Vec<(String, Exit)> {
        self.services
            .iter()
            .filter_map(|s| s.exited().map(|exit| (s.name.clone(), exit)))
            .collect()
    }

    /// Stops every service: SIGTERM to each whole process group (all at once, in reverse start
    /// order), up to each service's `stop within` (default [`STOP_GRACE`]) for it to end, then
    /// SIGKILL. Returns how each service's own process ended, in start order.
    pub async fn stop(mut self) -> Vec<Stopped> {
        let mut services = std::mem::take(&mut self.services);
        // Reverse order: a service stops before the ones it may depend on.
        services.reverse();
        let signalled = Instant::now();
        for service in &services {
            if service.exited().is_none() {
                service.signal(Signal::TERM);
            }
        }
        let mut ended = Vec::new();
        for service in &mut services {
            let grace = service.stop_within;
            let mut exit = service.wait_exit(signalled + grace).await;
            let killed = exit.is_none().then_some(grace);
            // Always: children of an exited leader may still be in the group.
            service.signal(Signal::KILL);
            if exit.is_none() {
                exit = service
                    .wait_exit(Instant::now() + Duration::from_secs(1))
                    .await;
            }
            for reader in &service.readers {
                reader.abort();
            }
            ended.push(Stopped {
                name: service.name.clone(),
                exit,
                killed_after: killed,
            });
        }
        ended.reverse();
        ended
    }
}

/// How one service ended when the suite stopped it ([`Supervisor::stop`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// The service.
    pub name: String,
    /// How its own process ended (`None`: not even SIGKILL was seen to end it within 1 s).
    pub exit: Option<Exit>,
    /// `Some(grace)` when it was still running `grace` after SIGTERM and had to be killed.
    pub killed_after: Option<Duration>,
}

impl Stopped {
    /// What the runner tells the user about a service it had to kill, if it had to.
    pub fn kill_note(&self) -> Option<String> {
        self.killed_after.map(|grace| {
            format!(
                "note: service `{}` did not end within {} of SIGTERM and was killed; if it \
                 ignores SIGTERM, `stop within 200ms` in its block saves the wait",
                self.name,
                tbt_compiler::value::format_duration(grace.as_nanos() as u64)
            )
        })
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        for service in &self.services {
            service.signal(Signal::KILL);
            for reader in &service.readers {
                reader.abort();
            }
        }
    }
}

/// Tries `attempt` until it succeeds or `deadline` passes, pausing 10 ms, 20 ms, … up to
/// [`MAX_BACKOFF`] between attempts (polling a foreign process: there is nothing to wait on).
async fn poll<F, Fut>(deadline: Instant, last: &mut Option<String>, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut pause = Duration::from_millis(10);
    loop {
        match attempt().await {
            Ok(()) => return,
            // An attempt the deadline cut short (its request timeout is what time was left) says
            // less than the last one that finished: a 503 is the news, not "timed out".
            Err(e) if last.is_none() || Instant::now() < deadline => *last = Some(e),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            // The caller's timeout ends this; wait for it rather than spin.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep_until((Instant::now() + pause).min(deadline)).await;
        pause = (pause * 2).min(MAX_BACKOFF);
    }
}

fn probe_client() -> Result<reqwest::Client, String> {
    crate::tls::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .build()
        .map_err(|e| root_cause(&e))
}

/// The innermost cause of an error: reqwest's own message is "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The variables cargo sets for a binary it runs (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, …) when tbt
/// itself was started by `cargo run`/`cargo test`. They describe tbt's package, not the services
/// and processes tbt starts, and a `cargo run` among those would see them as a changed environment
/// and rebuild (build scripts watch them), so they are not passed on.
pub fn cargo_package_vars() -> Vec<std::ffi::OsString> {
    const EXACT: [&str; 9] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    if std::env::var_os("CARGO_PKG_NAME").is_none() {
        return Vec::new();
    }
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            k.to_str().is_some_and(|k| {
                k.starts_with("CARGO_PKG_") || k.starts_with("CARGO_BIN_EXE_") || EXACT.contains(&k)
            })
        })
        .collect()
}
