//! `tbt run [PATHS…]`: compile, run the plan, report.

use super::Status;
use crate::output::{self, Color, DiagFormat};
use crate::receiver::{Receiver, ReceiverConfig};
use crate::report::{self, Redactor};
use crate::run::source::{EmbeddedSource, FileSource, TraceSource};
use crate::run::{self, RunOptions};
use crate::store::{StoreLimits, TraceStore};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
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
    /// Where traces come from: `otlp` (the embedded OTLP receiver, default) or an OTLP JSON file of
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
        Ok(Settings {
            jobs: args.jobs.or(r.jobs).unwrap_or(8),
            timeout: dur(args.timeout, &r.timeout, "timeout", Duration::from_secs(10))?,
            settle: dur(args.settle, &r.settle, "settle", Duration::from_millis(100))?,
            traces: args
                .traces
                .clone()
                .or_else(|| r.traces.clone())
                .unwrap_or_else(|| "otlp".into()),
            otlp_grpc: addr(args.otlp_grpc, &r.otlp_grpc, "otlp_grpc", "127.0.0.1:4317")?,
            otlp_http: addr(args.otlp_http, &r.otlp_http, "otlp_http", "127.0.0.1:4318")?,
        })
    }
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

/// Runs `tbt run`.
pub fn run(args: Args, color: Color) -> Status {
    let config = match crate::config::Config::load(args.lints.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            output::usage_error(&e, color);
            return Status::Usage;
        }
    };
    let settings = match Settings::resolve(&args, &config) {
        Ok(s) => s,
        Err(e) => {
            output::usage_error(&e, color);
            return Status::Usage;
        }
    };
    let mut vars = HashMap::new();
    if let Some(set) = &args.var_set {
        match config.var_set(set) {
            Ok(pairs) => {
                for (k, v) in pairs {
                    vars.insert(k, Value::from(&v));
                }
            }
            Err(e) => {
                output::usage_error(&e, color);
                return Status::Usage;
            }
        }
    }
    for v in &args.vars {
        let Some((k, val)) = v.split_once('=') else {
            output::usage_error(&format!("`--var {v}`: write NAME=VALUE"), color);
            return Status::Usage;
        };
        let value = serde_json::from_str::<serde_json::Value>(val)
            .map_or_else(|_| Value::Str(val.into()), |j| Value::from(&j));
        vars.insert(k.to_string(), value);
    }
    let mut reports = Vec::new();
    for r in &args.reports {
        match r.split_once('=') {
            Some((kind @ ("junit" | "json"), path)) if !path.is_empty() => {
                reports.push((kind.to_string(), PathBuf::from(path)))
            }
            _ => {
                output::usage_error(
                    &format!("`--report {r}`: write junit=PATH or json=PATH"),
                    color,
                );
                return Status::Usage;
            }
        }
    }
    let Some(c) = super::compile_paths(&args.paths, &args.lints, color) else {
        return Status::Usage;
    };
    if !c.diagnostics.is_empty()
        && output::emit(&c.sources, &c.diagnostics, DiagFormat::Human, color).is_err()
    {
        return Status::Infra;
    }
    if c.plan.is_none() {
        return Status::Usage;
    }
    for k in vars.keys() {
        let defined = c
            .program
            .modules
            .iter()
            .any(|m| m.origin == tbt_compiler::program::Origin::Root && m.lets.contains_key(k));
        if !defined {
            output::usage_error(&format!("`--var {k}=…`: no `let {k}` in the suite"), color);
            return Status::Usage;
        }
    }
    // The suite lives until the process exits: the run's tasks borrow it.
    let (c, scopes) = run::prepare(c, vars);
    let redactor = Redactor::new(scopes.secrets());
    // `TBT_OTLP_TOKEN`: the receiver then requires `authorization: Bearer <token>`; the suite's
    // services are given the header (a service's own `env` still wins).
    let otlp_token = std::env::var("TBT_OTLP_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let redactor = match &otlp_token {
        Some(t) => Redactor::new(
            scopes
                .secrets()
                .into_iter()
                .chain(std::iter::once(t.clone()))
                .collect(),
        ),
        None => redactor,
    };
    let service_specs = match crate::run::spec::services(c, scopes, &run::RunHost) {
        Ok(mut s) => {
            if let Some(t) = &otlp_token {
                for spec in &mut s {
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
            s
        }
        Err(e) => {
            output::usage_error(&redactor.redact(&e), color);
            return Status::Infra;
        }
    };
    let progress = Progress::new(args.quiet, c.program.tests.len());
    let opts = RunOptions {
        progress: progress.finished_fn(),
        started: progress.started_fn(),
        jobs: settings.jobs.max(1),
        timeout: settings.timeout,
        settle: settings.settle,
        filter: args.tests.clone(),
        shard: args.shard,
        // `.tbt/completion.json` beside `.tbt/last-run.json`: exporter periods, step shapes.
        history: Some(std::path::PathBuf::from(".")),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            output::usage_error(&format!("cannot start the runtime: {e}"), color);
            return Status::Infra;
        }
    };
    let outcome = runtime.block_on(async {
        let (source, receiver): (Arc<dyn TraceSource>, _) = if settings.traces == "otlp" {
            let config = ReceiverConfig {
                grpc_addr: Some(settings.otlp_grpc),
                http_addr: Some(settings.otlp_http),
                bearer_token: otlp_token.clone(),
                ..ReceiverConfig::default()
            };
            let store = TraceStore::new(StoreLimits::default());
            // The services tbt starts export at a period it knows.
            for spec in &service_specs {
                let (name, period) = spec.export_period();
                store.exporters().declare(&name, period);
            }
            match Receiver::start(config, store.clone()).await {
                Ok(r) => {
                    let describe = format!(
                        "the embedded OTLP receiver (gRPC {}, HTTP {})",
                        r.grpc_endpoint().unwrap_or_default(),
                        r.http_endpoint().unwrap_or_default()
                    );
                    if !args.quiet {
                        eprintln!(
                            "receiving OTLP on {} (gRPC) and {} (HTTP)",
                            r.grpc_endpoint().unwrap_or_default(),
                            r.http_endpoint().unwrap_or_default()
                        );
                    }
                    (
                        Arc::new(EmbeddedSource::new(store, describe)) as Arc<dyn TraceSource>,
                        Some(r),
                    )
                }
                Err(e) => return Err(e.to_string()),
            }
        } else if settings.traces.starts_with("jaeger") || settings.traces.starts_with("tempo") {
            let spec = crate::remote::parse_source_arg(&settings.traces)?;
            (spec.into_source(Vec::new())?, None)
        } else {
            match FileSource::open(&settings.traces) {
                Ok(s) => (Arc::new(s) as Arc<dyn TraceSource>, None),
                Err(e) => return Err(e),
            }
        };
        // Services of the suite, told where to send their spans.
        let otel = match &receiver {
            Some(r) => crate::service::OtelEnv::grpc(r.grpc_endpoint().unwrap_or_default()),
            None => crate::service::OtelEnv::default(),
        };
        let supervisor = if service_specs.is_empty() {
            None
        } else {
            match crate::service::Supervisor::start(service_specs, otel).await {
                Ok(s) => Some(s),
                Err(e) => {
                    if let Some(r) = receiver {
                        let _ = r.shutdown().await;
                    }
                    return Err(e.to_string());
                }
            }
        };
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(true);
            }
        });
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
            sup.stop().await;
        }
        if let Some(r) = receiver {
            let _ = r.shutdown().await;
        }
        Ok((result, notes))
    });
    let (result, notes) = match outcome {
        Ok(r) => r,
        Err(e) => {
            output::usage_error(&e, color);
            return Status::Infra;
        }
    };
    progress.finish();
    if let Some(seen) = &result.last_run
        && let Err(e) = run::last_run::write(std::path::Path::new("."), seen, &|s| {
            redactor.redact(s) == s
        })
    {
        eprintln!("warning: could not write .tbt/last-run.json: {e}");
    }
    for n in &notes {
        eprintln!("{}", redactor.redact(n));
    }
    let diags = report::terminal::failure_diagnostics(&result, &c.sources, &redactor);
    let _ = output::emit(&c.sources, &diags, DiagFormat::Human, color);
    let text = report::terminal::lines(&result, &redactor, args.verbose);
    let mut err = std::io::stderr().lock();
    if args.quiet {
        let _ = write!(
            err,
            "{}",
            text.lines()
                .last()
                .map(|l| format!("{l}\n"))
                .unwrap_or_default()
        );
    } else {
        let _ = write!(err, "{text}");
    }
    for (kind, path) in &reports {
        let body = match kind.as_str() {
            "junit" => report::junit::render(&result, &redactor),
            _ => report::json::render(&result, &redactor),
        };
        if let Err(e) = std::fs::write(path, body) {
            output::usage_error(
                &format!(
                    "cannot write the {kind} report to `{}`: {e}",
                    path.display()
                ),
                color,
            );
            return Status::Infra;
        }
    }
    match result.exit_code() {
        0 => Status::Ok,
        1 => Status::Failed,
        130 => Status::Interrupted,
        _ => Status::Infra,
    }
}

/// Live progress on a terminal: a bar with the counts and the tests running now. Nothing when
/// stderr is not a terminal (CI logs get the plain lines at the end) or with `--quiet`.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    running: Arc<std::sync::Mutex<Vec<String>>>,
    counts: Arc<std::sync::Mutex<[usize; 3]>>,
}

impl Progress {
    fn new(quiet: bool, tests: usize) -> Self {
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

    fn started_fn(&self) -> Option<run::StartedFn> {
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

    fn finished_fn(&self) -> Option<run::ProgressFn> {
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

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
