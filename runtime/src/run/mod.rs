//! `tbt run`: execute a compiled suite's plan and build the result tree.
//!
//! The scheduler ([`crate::scheduler`]) walks the plan; this module says what each node does:
//! a trigger node evaluates the step's `let`s and fires the trigger (or, for `trigger trace`,
//! names an existing trace); a trace-wait node asks the [`source::TraceSource`] for the settled
//! trace; an assertion node evaluates the step's expectations with the shared evaluator and
//! records captures for later steps. Nothing here renders output: reporters read the
//! [`result::RunResult`].

pub mod last_run;
pub mod result;
pub mod source;
pub mod spec;

use crate::scheduler::{self, NodeFuture, NodeRunner, Outcome};
use petgraph::graph::{DiGraph, NodeIndex};
use result::{
    CheckReport, ExpectationReport, GroupReport, Location, RunResult, Status, StepResult, Summary,
    TestResult,
};
use source::{TraceSource, Waited};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tbt_compiler::ast::StmtKind;
use tbt_compiler::bindings::Scopes;
use tbt_compiler::compile::Compilation;
use tbt_compiler::eval::{self, ExpectationResult, Host, Response};
use tbt_compiler::plan::{Node, NodeKind, Plan};
use tbt_compiler::trace::{Trace, TraceId};
use tbt_compiler::value::Value;
use tokio::sync::watch;

/// Called when a test has finished: its name and status.
pub type ProgressFn = Arc<dyn Fn(&str, Status) + Send + Sync>;

/// Called when a test starts: its name.
pub type StartedFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Settings of one run.
#[derive(Clone)]
pub struct RunOptions {
    /// Concurrent triggers.
    pub jobs: usize,
    /// Default time to wait for a trace (a step's `timeout` overrides it).
    pub timeout: Duration,
    /// Default quiet time after which a trace counts as complete (`settle` overrides it).
    pub settle: Duration,
    /// `--test GLOB`: run only matching tests (and what they depend on).
    pub filter: Vec<String>,
    /// `--shard K/N`: run the K-th of N deterministic parts (1-based K).
    pub shard: Option<(usize, usize)>,
    /// Told about each test as it finishes (live progress).
    pub progress: Option<ProgressFn>,
    /// Told when a test starts (its first trigger fires).
    pub started: Option<StartedFn>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("jobs", &self.jobs)
            .field("timeout", &self.timeout)
            .field("settle", &self.settle)
            .field("filter", &self.filter)
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            jobs: 8,
            timeout: Duration::from_secs(10),
            settle: Duration::from_millis(100),
            filter: Vec::new(),
            shard: None,
            progress: None,
            started: None,
        }
    }
}

/// The real world behind `env()`, `uuid()` and `now()`.
pub struct RunHost;

impl Host for RunHost {
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn uuid(&self) -> String {
        let mut b = [0u8; 16];
        fill_random(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = tbt_compiler::value::hex(&b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
    fn now_unix_nanos(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64)
    }
}

/// Random bytes from the OS-seeded hasher state mixed with a counter: unique per call, enough
/// for ids (not for cryptography).
pub fn fill_random(buf: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    for chunk in buf.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

#[derive(Default)]
struct StepState {
    locals: Vec<(String, Value)>,
    trace_id: Option<TraceId>,
    response: Option<Response>,
    trace: Option<Arc<Trace>>,
    timed_out: bool,
    started: Option<Instant>,
    finished: Option<Instant>,
    results: Vec<ExpectationResult>,
    reason: Option<String>,
}

struct Runner {
    c: &'static Compilation,
    graph: DiGraph<Node, tbt_compiler::plan::Edge>,
    scopes: &'static Scopes<'static, 'static>,
    host: &'static RunHost,
    source: Arc<dyn TraceSource>,
    opts: RunOptions,
    steps: Mutex<HashMap<(usize, usize), StepState>>,
    me: std::sync::Weak<Runner>,
    triggers: crate::trigger::Triggers,
    /// Per test: nodes not finished yet, and the worst status so far (for progress).
    remaining: Mutex<HashMap<usize, (usize, Status)>>,
}

/// What a trigger node does after its synchronous part.
enum Prepared {
    /// Finished (a `trigger trace`, or an error).
    Done(Outcome),
    /// Fire this live trigger.
    Fire(crate::trigger::TriggerSpec, crate::trigger::TraceContext),
}

/// Which tests run: the filter and shard, plus everything they depend on.
pub fn select_tests(c: &Compilation, plan: &Plan, opts: &RunOptions) -> Vec<bool> {
    let tests = &c.program.tests;
    let mut selected: Vec<bool> = tests
        .iter()
        .map(|t| opts.filter.is_empty() || opts.filter.iter().any(|g| glob_match(g, &t.name)))
        .collect();
    if let Some((k, n)) = opts.shard {
        for (i, t) in tests.iter().enumerate() {
            if fnv1a(t.name.as_bytes()) % n as u64 != (k - 1) as u64 {
                selected[i] = false;
            }
        }
    }
    // Pull in prerequisites (captures, `after`) so a selected test can run.
    let mut stack: Vec<NodeIndex> = plan
        .graph
        .node_indices()
        .filter(|&n| selected[plan.graph[n].test])
        .collect();
    let mut seen: HashSet<NodeIndex> = stack.iter().copied().collect();
    while let Some(n) = stack.pop() {
        for p in plan
            .graph
            .neighbors_directed(n, petgraph::Direction::Incoming)
        {
            if seen.insert(p) {
                selected[plan.graph[p].test] = true;
                stack.push(p);
            }
        }
    }
    selected
}

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A compiled suite made ready to run: the compilation and its scopes, with every module `let`
/// evaluated (`--var` overrides applied). They are leaked on purpose: a run's tasks borrow them
/// for the rest of the process (the CLI exits after the run; tests and benches are short-lived).
pub fn prepare(
    c: Compilation,
    vars: HashMap<String, Value>,
) -> (&'static Compilation, &'static Scopes<'static, 'static>) {
    static HOST: RunHost = RunHost;
    let c: &'static Compilation = Box::leak(Box::new(c));
    let bindings: &'static tbt_compiler::bindings::Bindings<'static> = Box::leak(Box::new(
        tbt_compiler::bindings::Bindings::new(&c.program, &HOST, vars),
    ));
    let scopes: &'static Scopes<'static, 'static> = Box::leak(Box::new(Scopes::new(bindings)));
    let scopes = scopes.link();
    scopes.prepare();
    (c, scopes)
}

/// Runs the selected tests of a compiled suite. `c` and `scopes` live for the whole process (the
/// CLI leaks them; a run is the process's last act).
pub async fn execute(
    c: &'static Compilation,
    scopes: &'static Scopes<'static, 'static>,
    source: Arc<dyn TraceSource>,
    opts: RunOptions,
    cancel: watch::Receiver<bool>,
) -> RunResult {
    let started = Instant::now();
    let Some(plan) = &c.plan else {
        return RunResult {
            tests: Vec::new(),
            summary: Summary::default(),
            duration_ms: 0,
            interrupted: false,
            last_run: None,
        };
    };
    let selected = select_tests(c, plan, &opts);
    let graph = plan.graph.filter_map(
        |_, n| selected[n.test].then(|| n.clone()),
        |_, e| Some(e.clone()),
    );
    static HOST: RunHost = RunHost;
    let runner = Arc::new_cyclic(|me| Runner {
        c,
        graph: graph.clone(),
        scopes,
        host: &HOST,
        source,
        opts: opts.clone(),
        steps: Mutex::new(HashMap::new()),
        me: me.clone(),
        triggers: crate::trigger::Triggers::new(),
        remaining: Mutex::new(graph.node_indices().fold(
            HashMap::new(),
            |mut m: HashMap<usize, (usize, Status)>, n| {
                m.entry(graph[n].test).or_insert((0, Status::Passed)).0 += 1;
                m
            },
        )),
    });
    let stopped = cancel.clone();
    let outcomes = scheduler::run(&graph, runner.clone(), opts.jobs, cancel).await;
    let mut result = runner.results(&selected, &outcomes);
    result.interrupted = *stopped.borrow();
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

impl NodeRunner for Runner {
    fn run(&self, node: NodeIndex) -> NodeFuture {
        let n = self.graph[node].clone();
        // Work that needs the shared state runs synchronously here; only waiting is async.
        match n.kind {
            NodeKind::Trigger => match self.prepare(&n) {
                Prepared::Done(outcome) => Box::pin(async move { outcome }),
                Prepared::Fire(spec, ctx) => {
                    let me = self.self_ref();
                    Box::pin(async move { me.fire_live(&n, spec, ctx).await })
                }
            },
            NodeKind::TraceWait => {
                let id = self.state(n.test, n.step, |s| s.trace_id);
                let (timeout, settle) = self.timing(n.test, n.step);
                let source = self.source.clone();
                let me = self.self_ref();
                Box::pin(async move {
                    let Some(id) = id else {
                        return Outcome::Error("no trace id: the trigger did not run".into());
                    };
                    match source.wait(id, timeout, settle).await {
                        Ok(Waited::Settled(t)) => {
                            me.state(n.test, n.step, |s| s.trace = Some(Arc::new(t)));
                            Outcome::Passed
                        }
                        Ok(Waited::TimedOut(t)) => {
                            let empty = t.is_empty();
                            me.state(n.test, n.step, |s| {
                                s.trace = Some(Arc::new(t));
                                s.timed_out = true;
                            });
                            if empty {
                                let msg = format!(
                                    "no span of trace {} arrived within {} ({})",
                                    tbt_compiler::value::hex(&id),
                                    tbt_compiler::value::format_duration(timeout.as_nanos() as u64),
                                    source.describe()
                                );
                                me.state(n.test, n.step, |s| s.reason = Some(msg.clone()));
                                Outcome::Failed(msg)
                            } else {
                                Outcome::Passed
                            }
                        }
                        Err(e) => Outcome::Error(e),
                    }
                })
            }
            NodeKind::AssertResponse { ref expects } | NodeKind::AssertTrace { ref expects } => {
                let r = self.assert(&n, expects);
                Box::pin(async move { r })
            }
        }
    }

    fn takes_slot(&self, node: NodeIndex) -> bool {
        matches!(self.graph[node].kind, NodeKind::Trigger)
    }

    fn finished(&self, node: NodeIndex, outcome: &Outcome) {
        let test = self.graph[node].test;
        let status = match outcome {
            Outcome::Passed => Status::Passed,
            Outcome::Failed(_) => Status::Failed,
            Outcome::Error(_) => Status::Error,
            Outcome::Skipped(_) => Status::Skipped,
        };
        let done = {
            let mut m = self
                .remaining
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(entry) = m.get_mut(&test) else {
                return;
            };
            entry.0 = entry.0.saturating_sub(1);
            entry.1 = entry.1.worst(status);
            (entry.0 == 0).then_some(entry.1)
        };
        if let (Some(status), Some(progress)) = (done, &self.opts.progress) {
            progress(&self.c.program.tests[test].name, status);
        }
    }

    fn describe(&self, node: NodeIndex) -> String {
        let n = &self.graph[node];
        let what = match n.kind {
            NodeKind::Trigger => "trigger",
            NodeKind::TraceWait => "trace",
            NodeKind::AssertResponse { .. } => "response expectations",
            NodeKind::AssertTrace { .. } => "expectations",
        };
        format!("`{}` ({what})", n.label)
    }
}

impl Runner {
    /// An owned handle for node futures (the runner always lives in the `Arc` made by `execute`).
    fn self_ref(&self) -> Arc<Runner> {
        self.me.upgrade().expect("the runner outlives its nodes")
    }

    fn state<T>(&self, test: usize, step: usize, f: impl FnOnce(&mut StepState) -> T) -> T {
        let mut g = self
            .steps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(g.entry((test, step)).or_default())
    }

    fn timing(&self, test: usize, step: usize) -> (Duration, Duration) {
        let mut timeout = self.opts.timeout;
        let mut settle = self.opts.settle;
        let test_body = self.c.program.test_body(test);
        let step_body = self.c.program.step_body(test, step);
        for stmt in test_body.iter().chain(step_body) {
            let (slot, e) = match &stmt.kind {
                StmtKind::Timeout(e) => (&mut timeout, e),
                StmtKind::Settle(e) => (&mut settle, e),
                _ => continue,
            };
            let scope = self.scopes.step(test, step, &[]);
            if let Ok(Value::Duration(ns)) = eval::evaluate_value(e, &scope, self.host) {
                *slot = Duration::from_nanos(ns);
            }
        }
        (timeout, settle)
    }

    /// Fires a live trigger, records its root span with the source, stores the response.
    async fn fire_live(
        &self,
        n: &Node,
        spec: crate::trigger::TriggerSpec,
        ctx: crate::trigger::TraceContext,
    ) -> Outcome {
        let fired = self.triggers.fire_traced(&spec, &ctx).await;
        self.source.record(fired.span);
        match fired.result {
            Ok(out) => {
                let duration = out.duration.as_nanos() as u64;
                let response = match out.response {
                    crate::trigger::Response::Http(h) => Response::Http {
                        status: h.status,
                        headers: h.headers,
                        body: h.body.to_vec(),
                        duration,
                    },
                    crate::trigger::Response::Grpc(g) => Response::Grpc {
                        code: g.status,
                        metadata: g.metadata,
                        body: Some(g.message),
                        duration,
                    },
                    crate::trigger::Response::Exec(e) => Response::Exec {
                        exit_code: e.exit_code.unwrap_or(-1),
                        stdout: e.stdout,
                        stderr: e.stderr,
                        duration,
                    },
                };
                self.state(n.test, n.step, |s| s.response = Some(response));
                Outcome::Passed
            }
            Err(e) => {
                let msg = e.to_string();
                self.state(n.test, n.step, |s| s.reason = Some(msg.clone()));
                Outcome::Error(msg)
            }
        }
    }

    fn prepare(&self, n: &Node) -> Prepared {
        if n.step == 0
            && let Some(started) = &self.opts.started
        {
            started(&self.c.program.tests[n.test].name);
        }
        let body = self.c.program.step_body(n.test, n.step);
        // Step lets, in order, each seeing the previous ones.
        let mut locals: Vec<(String, Value)> = Vec::new();
        let test_body = self.c.program.test_body(n.test);
        let has_steps = self
            .c
            .program
            .test_ast(n.test)
            .is_some_and(|t| t.body.iter().any(|s| matches!(s.kind, StmtKind::Step(_))));
        let lets = if has_steps {
            test_body.iter().chain(body.iter()).collect::<Vec<_>>()
        } else {
            body.iter().collect()
        };
        for stmt in lets {
            if let StmtKind::Let(l) = &stmt.kind {
                let scope = self.scopes.step(n.test, n.step, &locals);
                match eval::evaluate_value(&l.value, &scope, self.host) {
                    Ok(v) => locals.push((l.name.name.clone(), v)),
                    Err(e) => {
                        return Prepared::Done(Outcome::Error(format!(
                            "`let {}`: {e}",
                            l.name.name
                        )));
                    }
                }
            }
        }
        let Some(trigger) = body.iter().find_map(|s| match &s.kind {
            StmtKind::Trigger(t) => Some(t),
            _ => None,
        }) else {
            return Prepared::Done(Outcome::Error("the step has no trigger".into()));
        };
        let started = Instant::now();
        let outcome = match trigger.kind.name.as_str() {
            "trace" => {
                let scope = self.scopes.step(n.test, n.step, &locals);
                let id = trigger
                    .args
                    .first()
                    .map(|a| eval::evaluate_value(a, &scope, self.host));
                match id {
                    Some(Ok(Value::Str(s))) => match parse_trace_id(&s) {
                        Some(id) => {
                            self.state(n.test, n.step, |st| st.trace_id = Some(id));
                            Outcome::Passed
                        }
                        None => Outcome::Error(format!("`{s}` is not a trace id (32 hex digits)")),
                    },
                    Some(Ok(other)) => Outcome::Error(format!(
                        "a trace id is a string, found {}",
                        other.type_name()
                    )),
                    Some(Err(e)) => Outcome::Error(e.to_string()),
                    None => Outcome::Error("`trigger trace` needs a trace id".into()),
                }
            }
            _ if !self.source.is_live() => Outcome::Error(format!(
                "`trigger {}` needs a live trace source, but traces come from {}",
                trigger.kind.name,
                self.source.describe()
            )),
            _ => {
                let scope = self.scopes.step(n.test, n.step, &locals);
                let file = &self
                    .c
                    .sources
                    .get(
                        self.c
                            .program
                            .module(self.c.program.tests[n.test].module)
                            .file,
                    )
                    .name;
                let base = std::path::Path::new(file)
                    .parent()
                    .unwrap_or(std::path::Path::new("."));
                let (timeout, _) = self.timing(n.test, n.step);
                match spec::build(trigger, &scope, self.host, base, timeout) {
                    Ok(spec) => {
                        let tag = self.c.program.tests[n.test].step_label(n.step);
                        let ctx = crate::trigger::TraceContext::new().with_tag(&tag);
                        let id = ctx.trace_id;
                        self.state(n.test, n.step, |st| {
                            st.locals = locals;
                            st.started = Some(started);
                            st.trace_id = Some(id);
                        });
                        return Prepared::Fire(spec, ctx);
                    }
                    Err(e) => Outcome::Error(e),
                }
            }
        };
        self.state(n.test, n.step, |st| {
            st.locals = locals;
            st.started = Some(started);
            if let Outcome::Error(m) | Outcome::Failed(m) = &outcome {
                st.reason = Some(m.clone());
            }
        });
        Prepared::Done(outcome)
    }

    fn assert(&self, n: &Node, expects: &[usize]) -> Outcome {
        let body = self.c.program.step_body(n.test, n.step);
        let (locals, response, trace, timed_out) = self.state(n.test, n.step, |s| {
            (
                s.locals.clone(),
                s.response.clone(),
                s.trace.clone(),
                s.timed_out,
            )
        });
        let items: Vec<eval::Expectation<'_>> = expects
            .iter()
            .filter_map(|&i| match &body.get(i)?.kind {
                StmtKind::Expect(e) => Some(eval::Expectation {
                    span: body[i].span,
                    expect: e,
                }),
                _ => None,
            })
            .collect();
        let empty = Trace::default();
        let trace_ref: &Trace = trace.as_deref().unwrap_or(&empty);
        let scope = self.scopes.step(n.test, n.step, &locals);
        let out = eval::evaluate_step(
            &items,
            trace_ref,
            response.as_ref(),
            &scope,
            self.host,
            true,
        );
        for (name, v) in &out.captures {
            self.scopes_bindings()
                .capture(n.test, n.step, name, v.clone());
        }
        let failed = out
            .results
            .iter()
            .find(|r| !r.passed)
            .map(|r| r.message.clone());
        let open = out.results.iter().filter(|r| !r.passed).count();
        self.state(n.test, n.step, |s| {
            s.results.extend(out.results);
            s.finished = Some(Instant::now());
        });
        match failed {
            None => Outcome::Passed,
            Some(m) if timed_out => {
                // What was seen when time ran out: span count, services, what is still failing.
                let mut services: Vec<&str> = (0..trace_ref.len() as u32)
                    .map(|i| &**trace_ref.service(i))
                    .collect();
                services.sort_unstable();
                services.dedup();
                Outcome::Failed(format!(
                    "{m} (at the timeout the trace had not settled: {} span{} from {}; {open} expectation{} failing)",
                    trace_ref.len(),
                    if trace_ref.len() == 1 { "" } else { "s" },
                    if services.is_empty() {
                        "no service".to_string()
                    } else {
                        services.join(", ")
                    },
                    if open == 1 { "" } else { "s" }
                ))
            }
            Some(m) => Outcome::Failed(m),
        }
    }

    fn scopes_bindings(&self) -> &'static tbt_compiler::bindings::Bindings<'static> {
        self.scopes.bindings()
    }

    fn results(&self, selected: &[bool], outcomes: &[Outcome]) -> RunResult {
        let program = &self.c.program;
        let mut tests = Vec::new();
        let mut summary = Summary::default();
        let mut seen = last_run::collector();
        let secrets = self.scopes.secrets();
        let secret = |s: &str| secrets.iter().any(|x| s.contains(x.as_str()));
        let mut states = self
            .steps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (ti, t) in program.tests.iter().enumerate() {
            if !selected[ti] {
                continue;
            }
            let mut steps = Vec::new();
            let mut test_status = Status::Passed;
            let mut test_ms = 0;
            for (si, s) in t.steps.iter().enumerate() {
                let mut status = Status::Passed;
                let mut reason = None;
                let mut trigger_span = s.span;
                for node in self
                    .graph
                    .node_indices()
                    .filter(|&i| self.graph[i].test == ti && self.graph[i].step == si)
                {
                    if matches!(self.graph[node].kind, NodeKind::Trigger) {
                        trigger_span = self.graph[node].span;
                    }
                    let st = match &outcomes[node.index()] {
                        Outcome::Passed => Status::Passed,
                        Outcome::Failed(m) => {
                            // Only the timeout note adds to what the expectations say.
                            if m.contains("at the timeout") {
                                reason.get_or_insert_with(|| m.clone());
                            }
                            Status::Failed
                        }
                        Outcome::Error(m) => {
                            reason.get_or_insert_with(|| m.clone());
                            Status::Error
                        }
                        Outcome::Skipped(m) => {
                            reason.get_or_insert_with(|| m.clone());
                            Status::Skipped
                        }
                    };
                    status = status.worst(st);
                }
                let state = states.remove(&(ti, si)).unwrap_or_default();
                seen.add_step(
                    self.c,
                    (ti, si),
                    state.trace.as_deref(),
                    &state.results,
                    &secret,
                );
                let ms = match (state.started, state.finished) {
                    (Some(a), Some(b)) => b.duration_since(a).as_millis() as u64,
                    _ => 0,
                };
                test_ms += ms;
                let reason = state.reason.or(reason).filter(|_| status != Status::Passed);
                let expectations = state.results.iter().map(|r| self.report(r)).collect();
                steps.push(StepResult {
                    name: s.name.clone(),
                    status,
                    trace_id: state.trace_id.map(|id| tbt_compiler::value::hex(&id)),
                    reason,
                    spans: state.trace.as_ref().map_or(0, |t| t.len()),
                    expectations,
                    duration_ms: ms,
                    trigger_span,
                });
                test_status = test_status.worst(status);
            }
            match test_status {
                Status::Passed => summary.passed += 1,
                Status::Failed => summary.failed += 1,
                Status::Error => summary.errors += 1,
                Status::Skipped => summary.skipped += 1,
            }
            tests.push(TestResult {
                name: t.name.clone(),
                title: t.title.clone(),
                location: self.location(t.name_span),
                status: test_status,
                steps,
                duration_ms: test_ms,
            });
        }
        RunResult {
            tests,
            summary,
            duration_ms: 0,
            interrupted: false,
            last_run: Some(last_run::finish(seen)),
        }
    }

    fn location(&self, span: tbt_compiler::Span) -> Location {
        let f = self.c.sources.get(span.file);
        let (line, column) = f.line_col_human(span.start);
        Location {
            file: f.name.clone(),
            line,
            column,
        }
    }

    fn report(&self, r: &ExpectationResult) -> ExpectationReport {
        let src = self.c.sources.slice(r.span);
        let first = src
            .lines()
            .next()
            .unwrap_or("")
            .trim_end_matches('{')
            .trim()
            .to_string();
        let check = |span: Option<String>,
                     pred: tbt_compiler::Span,
                     actual: Option<&Value>,
                     passed: bool,
                     message: Option<String>| CheckReport {
            span,
            predicate: self.c.sources.slice(pred).to_string(),
            actual: actual.map(|v| v.to_string()),
            passed,
            message,
        };
        let from_check = |c: &eval::Check| {
            check(
                c.span.as_ref().map(|s| s.to_string()),
                c.pred,
                c.actual.as_ref(),
                c.passed,
                c.message.clone(),
            )
        };
        ExpectationReport {
            source: first,
            location: self.location(r.span),
            status: if r.passed {
                Status::Passed
            } else {
                Status::Failed
            },
            message: r.message.clone(),
            selected: r.selected,
            checks: r.checks.iter().map(from_check).collect(),
            near_misses: r
                .near_misses
                .iter()
                .map(|m| {
                    check(
                        Some(m.span.to_string()),
                        m.pred,
                        m.actual.as_ref(),
                        false,
                        Some(m.message.clone()),
                    )
                })
                .collect(),
            groups: r
                .groups
                .iter()
                .map(|g| GroupReport {
                    key: g.key.to_string(),
                    spans: g.spans,
                    passed: g.passed,
                    checks: g.checks.iter().map(from_check).collect(),
                })
                .collect(),
            // The first line only: a whole block as the label would bury the message.
            span: match src.find('\n') {
                Some(nl) => tbt_compiler::Span {
                    end: r.span.start + nl as u32,
                    ..r.span
                },
                None => r.span,
            },
        }
    }
}

fn parse_trace_id(s: &str) -> Option<TraceId> {
    if s.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    (id != [0; 16]).then_some(id)
}
