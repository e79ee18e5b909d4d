//! `tbt run [PATHS…]`, in phases: resolve the options (flags over `tbt.toml` over defaults,
//! `--var`, `--report`), compile (diagnostics printed), prepare the suite (variables bound,
//! secrets collected, services evaluated), execute (trace source, services, the plan on tokio),
//! report (terminal, `.tbt/last-run.json`, report files). Each phase returns its error as a
//! [`Stop`]; [`run`] alone prints it and picks the exit status.

mod progress;

use super::Status;
use crate::output::{self, Color, DiagFormat};
use crate::receiver::{Receiver, ReceiverConfig, RunningReceiver};
use crate::redact::Redactor;
use crate::report;
use crate::run::result::RunResult;
use crate::run::source::{EmbeddedSource, FileSource, TraceSource};
use crate::run::{self, RunOptions};
use crate::store::{StoreLimits, TraceStore};
use progress::Progress;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tbt_compiler::bindings::Scopes;
use tbt_compiler::compile::Compilation;
use tbt_compiler::value::Value;

/// Arguments of `tbt run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories; default `.`.
    pub paths: Vec<PathBuf>,
    /// Run only tests whose name matches (`*` and `?` wildcards); repeatable. Tests they depend
    /// on run too.
    #[arg(long = "test", value_name = "GLOB")]
    pub tests: Vec<String>,
    /// Concurrent triggers [default: 8, or `[run] jobs` in tbt.toml].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Override a `let`: `--var NAME=value` (JSON values are parsed: numbers, booleans, lists).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Use the variable set `[vars.NAME]` of tbt.toml (`--var` flags override single values).
    #[arg(long = "vars", value_name = "NAME")]
    pub var_set: Option<String>,
    /// Where traces come from: `otlp` (the embedded OTLP receiver, default); a tracing backend,
    /// `jaeger=URL` (query API v3 over HTTP, port 16686), `jaeger+grpc=URL` (port 16685) or
    /// `tempo=URL` (port 3200), with headers from TBT_TRACES_HEADERS; or an OTLP JSON file of
    /// recorded traces (for `trigger trace` tests).
    #[arg(long, value_name = "SOURCE")]
    pub traces: Option<String>,
    /// Address of the embedded receiver's OTLP/gRPC endpoint (port 0: any free port)
    /// [default: 127.0.0.1:4317].
    #[arg(long, value_name = "ADDR")]
    pub otlp_grpc: Option<std::net::SocketAddr>,
    /// Address of the embedded receiver's OTLP/HTTP endpoint (port 0: any free port)
    /// [default: 127.0.0.1:4318].
    #[arg(long, value_name = "ADDR")]
    pub otlp_http: Option<std::net::SocketAddr>,
    /// Default time to wait for a trace, e.g. `10s` [default: 10s].
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Default quiet time after which a trace counts as complete, e.g. `100ms` [default: 100ms].
    #[arg(long, value_parser = parse_duration)]
    pub settle: Option<Duration>,
    /// Write a report: `junit=PATH` or `json=PATH`; repeatable.
    #[arg(long = "report", value_name = "KIND=PATH")]
    pub reports: Vec<String>,
    /// Run part K of N (`--shard 2/4`): a deterministic split of the tests by name.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Print only failures and the summary.
    #[arg(long, short, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print every step's trace id and every expectation's outcome.
    #[arg(long, short)]
    pub verbose: bool,
    /// Lint settings.
    #[command(flatten)]
    pub lints: super::CheckOptions,
}

/// `tbt run`'s settings after flags, tbt.toml and defaults.
struct Settings {
    jobs: usize,
    timeout: Duration,
    settle: Duration,
    traces: String,
    /// `traces` parsed, when it names a tracing backend rather than `otlp` or a file.
    backend: Option<crate::remote::RemoteSpec>,
    otlp_grpc: std::net::SocketAddr,
    otlp_http: std::net::SocketAddr,
}

impl Settings {
    fn resolve(args: &Args, config: &crate::config::Config) -> Result<Settings, String> {
        let r = &config.run;
        let dur = |flag: Option<Duration>,
                   file: &Option<String>,
                   key: &str,
                   default: Duration|
         -> Result<Duration, String> {
            match (flag, file) {
                (Some(d), _) => Ok(d),
                (None, Some(s)) => {
                    parse_duration(s).map_err(|e| format!("tbt.toml `[run] {key}`: {e}"))
                }
                (None, None) => Ok(default),
            }
        };
        let addr = |flag: Option<std::net::SocketAddr>,
                    file: &Option<String>,
                    key: &str,
                    default: &str|
         -> Result<std::net::SocketAddr, String> {
            match (flag, file) {
                (Some(a), _) => Ok(a),
                (None, Some(s)) => s.parse().map_err(|_| {
                    format!("tbt.toml `[run] {key} = \"{s}\"` is not an address (host:port)")
                }),
                (None, None) => default
                    .parse()
                    .map_err(|_| format!("bad default address {default}")),
            }
        };
        let traces = args
            .traces
            .clone()
            .or_else(|| r.traces.clone())
            .unwrap_or_else(|| "otlp".into());
        // A backend named wrong is a usage error, found before anything starts.
        let backend = match is_backend(&traces).then(|| crate::remote::parse_source_arg(&traces)) {
            None => None,
            Some(Ok(spec)) => Some(spec),
            Some(Err(e)) => {
                return Err(match &args.traces {
                    Some(_) => format!("`--traces {traces}`: {e}"),
                    None => format!("tbt.toml `[run] traces = \"{traces}\"`: {e}"),
                });
            }
        };
        Ok(Settings {
            jobs: args.jobs.or(r.jobs).unwrap_or(8),
            timeout: dur(args.timeout, &r.timeout, "timeout", Duration::from_secs(10))?,
            settle: dur(args.settle, &r.settle, "settle", Duration::from_millis(100))?,
            traces,
            backend,
            otlp_grpc: addr(args.otlp_grpc, &r.otlp_grpc, "otlp_grpc", "127.0.0.1:4317")?,
            otlp_http: addr(args.otlp_http, &r.otlp_http, "otlp_http", "127.0.0.1:4318")?,
        })
    }
}

/// `--traces` names a tracing backend (`jaeger=…`, `jaeger+grpc=…`, `tempo=…`), not a file.
fn is_backend(traces: &str) -> bool {
    traces.starts_with("jaeger") || traces.starts_with("tempo")
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, ""), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 10s)"))?;
    let factor = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("`{s}` needs a unit: ns, us, ms, s, m or h")),
    };
    if !(n.is_finite() && n >= 0.0) {
        return Err(format!("`{s}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(n * factor))
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: write K/N, e.g. 1/4"))?;
    let (k, n): (usize, usize) = (
        k.parse().map_err(|_| "K must be a number")?,
        n.parse().map_err(|_| "N must be a number")?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(format!("`{s}`: need 1 <= K <= N"));
    }
    Ok((k, n))
}

/// Why `tbt run` stops early or ends in an error. `run` prints the message, once.
enum Stop {
    /// A mistake in the command line, `tbt.toml` or the suite: exit 2.
    Usage(String),
    /// Something around the suite failed (the runtime, the receiver, a service, a report file):
    /// exit 3.
    Infra(String),
    /// Already said (the compiler's diagnostics): only the status.
    Said(Status),
}

/// Runs `tbt run`: [`Options::resolve`] (flags, `tbt.toml`, `--var`, `--report`), [`compile`],
/// [`Suite::prepare`] (variables, secrets, services), [`execute`] (trace source, services, the
/// plan), then [`report`].
pub fn run(args: Args, color: Color) -> Status {
    // Before the suite is compiled only the environment's secrets are known; after, all of them.
    let mut redactor = Redactor::for_run(Vec::new(), None, Vec::new());
    let outcome = Options::resolve(&args)
        .and_then(|options| compile(&args, color, options))
        .and_then(|(c, options)| Suite::prepare(c, options))
        .and_then(|mut suite| {
            redactor = suite.redactor.clone();
            let (result, notes) = execute(&args, &mut suite)?;
            report(&args, color, &suite, &result, &notes)
        });
    match outcome {
        Ok(status) => status,
        Err(Stop::Usage(message)) => {
            output::usage_error(&message, color);
            Status::Usage
        }
        Err(Stop::Infra(message)) => {
            output::usage_error(&redactor.redact(&message), color);
            match crate::stop::signalled() {
                Some(crate::stop::SIGTERM) => Status::Terminated,
                Some(_) => Status::Interrupted,
                None => Status::Infra,
            }
        }
        Err(Stop::Said(status)) => status,
    }
}

/// A `--report` file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReportFormat {
    /// `json=PATH`: the result tree (`docs/reports.md`).
    Json,
    /// `junit=PATH`: JUnit XML.
    Junit,
}

impl ReportFormat {
    fn from_name(name: &str) -> Option<ReportFormat> {
        match name {
            "json" => Some(ReportFormat::Json),
            "junit" => Some(ReportFormat::Junit),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Junit => "junit",
        }
    }
}

/// What the command line and `tbt.toml` ask for.
struct Options {
    settings: Settings,
    vars: HashMap<String, Value>,
    reports: Vec<(ReportFormat, PathBuf)>,
}

impl Options {
    fn resolve(args: &Args) -> Result<Options, Stop> {
        let config =
            crate::config::Config::load(args.lints.config.as_deref()).map_err(Stop::Usage)?;
        let settings = Settings::resolve(args, &config).map_err(Stop::Usage)?;
        let mut vars = HashMap::new();
        if let Some(set) = &args.var_set {
            for (k, v) in config.var_set(set).map_err(Stop::Usage)? {
                vars.insert(k, Value::from(&v));
            }
        }
        for v in &args.vars {
            let Some((k, val)) = v.split_once('=') else {
                return Err(Stop::Usage(format!("`--var {v}`: write NAME=VALUE")));
            };
            let value = serde_json::from_str::<serde_json::Value>(val)
                .map_or_else(|_| Value::Str(val.into()), |j| Value::from(&j));
            vars.insert(k.to_string(), value);
        }
        let reports = args
            .reports
            .iter()
            .map(|r| match r.split_once('=') {
                Some((kind, path)) if !path.is_empty() => ReportFormat::from_name(kind)
                    .map(|f| (f, PathBuf::from(path)))
                    .ok_or_else(|| {
                        Stop::Usage(format!("`--report {r}`: write junit=PATH or json=PATH"))
                    }),
                _ => Err(Stop::Usage(format!(
                    "`--report {r}`: write junit=PATH or json=PATH"
                ))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Options {
            settings,
            vars,
            reports,
        })
    }
}

/// Compiles the suite and prints its diagnostics; stops on an error, or on a `--var` that names
/// no `let` of the suite's own files.
fn compile(args: &Args, color: Color, options: Options) -> Result<(Compilation, Options), Stop> {
    let c = super::compile_paths(&args.paths, &args.lints).map_err(Stop::Usage)?;
    if !c.diagnostics.is_empty()
        && output::emit(&c.sources, &c.diagnostics, DiagFormat::Human, color).is_err()
    {
        return Err(Stop::Said(Status::Infra));
    }
    if c.plan.is_none() {
        return Err(Stop::Said(Status::Usage));
    }
    for k in options.vars.keys() {
        let defined = c
            .program
            .modules
            .iter()
            .any(|m| m.origin == tbt_compiler::program::Origin::Root && m.lets.contains_key(k));
        if !defined {
            return Err(Stop::Usage(format!(
                "`--var {k}=…`: no `let {k}` in the suite"
            )));
        }
    }
    Ok((c, options))
}

/// The compiled suite with its variables bound, the secrets to redact and the services to start.
struct Suite {
    c: &'static Compilation,
    scopes: &'static Scopes<'static, 'static>,
    redactor: Redactor,
    otlp_token: Option<String>,
    services: Vec<crate::service::ServiceSpec>,
    options: Options,
}

impl Suite {
    fn prepare(c: Compilation, mut options: Options) -> Result<Suite, Stop> {
        // The suite lives until the process exits: the run's tasks borrow it.
        let (c, scopes) = run::prepare(c, std::mem::take(&mut options.vars));
        // `TBT_OTLP_TOKEN`: the receiver then requires `authorization: Bearer <token>`; the
        // suite's services are given the header (a service's own `env` still wins).
        let otlp_token = std::env::var("TBT_OTLP_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        let redactor = Redactor::for_run(
            scopes.secrets(),
            otlp_token.as_deref(),
            options
                .settings
                .backend
                .iter()
                .flat_map(crate::remote::RemoteSpec::secrets),
        );
        let mut services =
            crate::run::spec::services(c, scopes, &run::RunHost).map_err(Stop::Infra)?;
        if let Some(t) = &otlp_token {
            for spec in &mut services {
                if !spec
                    .env
                    .iter()
                    .any(|(k, _)| k == "OTEL_EXPORTER_OTLP_HEADERS")
                {
                    spec.env.insert(
                        0,
                        (
                            "OTEL_EXPORTER_OTLP_HEADERS".into(),
                            format!("authorization=Bearer%20{t}"),
                        ),
                    );
                }
            }
        }
        Ok(Suite {
            c,
            scopes,
            redactor,
            otlp_token,
            services,
            options,
        })
    }
}

/// Starts the trace source and the services, runs the plan, stops them. The notes are the
/// services' output worth showing (a service that died, the last output of each on failure).
fn execute(args: &Args, suite: &mut Suite) -> Result<(RunResult, Vec<String>), Stop> {
    let settings = &suite.options.settings;
    let services = std::mem::take(&mut suite.services);
    let progress = Progress::new(args.quiet, suite.c.program.tests.len());
    let opts = RunOptions {
        progress: progress.finished_fn(),
        started: progress.started_fn(),
        jobs: settings.jobs.max(1),
        timeout: settings.timeout,
        settle: settings.settle,
        filter: args.tests.clone(),
        shard: args.shard,
        // `.tbt/completion.json` beside `.tbt/last-run.json`: exporter periods, step shapes.
        history: Some(PathBuf::from(".")),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Stop::Infra(format!("cannot start the runtime: {e}")))?;
    let (c, scopes) = (suite.c, suite.scopes);
    let outcome = runtime.block_on(async {
        // SIGINT / SIGTERM: the first cancels the run (reported, services stopped), the second
        // kills what tbt started and exits at once (`crate::stop`).
        let (tx, rx) = tokio::sync::watch::channel(false);
        let quiet = args.quiet;
        tokio::spawn(crate::stop::watch_signals(tx, move |signal| {
            if !quiet {
                eprintln!(
                    "stopping ({}): reporting what finished; send it again to stop at once",
                    if signal == crate::stop::SIGTERM { "SIGTERM" } else { "SIGINT" }
                );
            }
        }));
        let (source, receiver) = trace_source(args, settings, &suite.otlp_token, &services).await?;
        // Services of the suite, told where to send their spans.
        let otel = match &receiver {
            Some(r) => crate::service::OtelEnv::receiver(r.grpc_endpoint(), r.http_endpoint()),
            None => crate::service::OtelEnv::default(),
        };
        let supervisor = if services.is_empty() {
            None
        } else {
            let mut cancelled = rx.clone();
            // A signal during start-up drops the starting services: their groups are killed.
            let started = tokio::select! {
                s = crate::service::Supervisor::start(services, otel) => s.map_err(|e| e.to_string()),
                _ = cancelled.wait_for(|c| *c) => Err("stopped by a signal while the services started".to_owned()),
            };
            match started {
                Ok(s) => Some(s),
                Err(e) => {
                    if let Some(r) = receiver {
                        let _ = r.shutdown().await;
                    }
                    return Err(e);
                }
            }
        };
        let result = run::execute(c, scopes, source, opts, rx).await;
        let mut notes = Vec::new();
        if let Some(sup) = supervisor {
            // A service that died during the run explains failures: show its last output.
            for (name, exit) in sup.exited() {
                notes.push(format!(
                    "service `{name}` stopped during the run ({exit}); its last output:\n{}",
                    sup.log_tail(&name)
                ));
            }
            if result.exit_code() != 0 && notes.is_empty() {
                for name in sup.names() {
                    let tail = sup.log_tail(name);
                    if !tail.trim().is_empty() {
                        notes.push(format!("last output of service `{name}`:\n{tail}"));
                    }
                }
            }
            // Said after the results: a service that had to be killed cost its grace period.
            notes.extend(sup.stop().await.iter().filter_map(|s| s.kill_note()));
        }
        if let Some(r) = receiver {
            let _ = r.shutdown().await;
        }
        Ok((result, notes))
    });
    progress.finish();
    outcome.map_err(Stop::Infra)
}

/// The trace source `--traces` names: the embedded receiver (started here, with the export
/// periods of the services tbt starts declared), Jaeger or Tempo, or a file.
async fn trace_source(
    args: &Args,
    settings: &Settings,
    otlp_token: &Option<String>,
    services: &[crate::service::ServiceSpec],
) -> Result<(Arc<dyn TraceSource>, Option<RunningReceiver>), String> {
    if settings.traces == "otlp" {
        let config = ReceiverConfig {
            grpc_addr: Some(settings.otlp_grpc),
            http_addr: Some(settings.otlp_http),
            bearer_token: otlp_token.clone(),
            ..ReceiverConfig::default()
        };
        let store = TraceStore::new(StoreLimits::default());
        // The services tbt starts export at a period it knows.
        for spec in services {
            let (name, period) = spec.export_period();
            store.exporters().declare(&name, period);
        }
        let r = Receiver::start(config, store.clone())
            .await
            .map_err(|e| e.to_string())?;
        let (grpc, http) = (
            r.grpc_endpoint().unwrap_or_default(),
            r.http_endpoint().unwrap_or_default(),
        );
        if !args.quiet {
            eprintln!("receiving OTLP on {grpc} (gRPC) and {http} (HTTP)");
        }
        let describe = format!("the embedded OTLP receiver (gRPC {grpc}, HTTP {http})");
        Ok((Arc::new(EmbeddedSource::new(store, describe)), Some(r)))
    } else if let Some(spec) = &settings.backend {
        Ok((spec.clone().into_source(Vec::new())?, None))
    } else {
        Ok((Arc::new(FileSource::open(&settings.traces)?), None))
    }
}

/// Writes `.tbt/last-run.json`, prints the services' notes, the failures and the summary, writes
/// the `--report` files; the status is the run's. Every byte of it passes through the suite's
/// redactor here, at the sinks.
fn report(
    args: &Args,
    color: Color,
    suite: &Suite,
    result: &RunResult,
    notes: &[String],
) -> Result<Status, Stop> {
    let redactor = &suite.redactor;
    if let Some(seen) = &result.last_run
        && let Err(e) =
            run::last_run::write(std::path::Path::new("."), seen, &|s| redactor.is_clean(s))
    {
        eprintln!("warning: could not write .tbt/last-run.json: {e}");
    }
    let mut err = String::new();
    for n in notes {
        err.push_str(n);
        err.push('\n');
    }
    let diags = report::terminal::failure_diagnostics(result, &suite.c.sources);
    err.push_str(&output::render_human(&suite.c.sources, &diags, color));
    let text = report::terminal::lines(result, args.verbose);
    if args.quiet {
        if let Some(l) = text.lines().last() {
            err.push_str(l);
            err.push('\n');
        }
    } else {
        err.push_str(&text);
    }
    let _ = std::io::stderr()
        .lock()
        .write_all(redactor.redact(&err).as_bytes());
    for (format, path) in &suite.options.reports {
        let body = match format {
            ReportFormat::Junit => report::junit::render(result),
            ReportFormat::Json => report::json::render(result),
        };
        std::fs::write(path, redactor.redact(&body).as_bytes()).map_err(|e| {
            Stop::Infra(format!(
                "cannot write the {} report to `{}`: {e}",
                format.name(),
                path.display()
            ))
        })?;
    }
    Ok(match result.exit_code() {
        0 => Status::Ok,
        1 => Status::Failed,
        130 if crate::stop::signalled() == Some(crate::stop::SIGTERM) => Status::Terminated,
        130 => Status::Interrupted,
        _ => Status::Infra,
    })
}
