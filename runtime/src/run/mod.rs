//! `tbt run`: execute a compiled suite's plan and build the result tree.
//!
//! The scheduler ([`crate::scheduler`]) walks the plan; this module says what each node does,
//! from the plan's payloads alone (it reads no syntax tree): a trigger node evaluates the step's
//! `let`s and fires its typed trigger call (or, for `trigger trace`, names an existing trace); a
//! trace node follows the step's trace through the [`source::TraceSource`], re-evaluating the
//! step's trace expectations on every arrival until the [`completion::StepJudge`] says the
//! verdict is in or the timeout passes; a response node evaluates the response expectations.
//! Both record captures for later steps. Nothing here renders output: reporters read the
//! [`result::RunResult`].

pub mod completion;
pub mod last_run;
pub mod result;
pub mod source;
pub mod spec;

use crate::scheduler::{self, NodeFuture, NodeRunner, Outcome};
use crate::store::exporters::{Basis, Cadence};
use petgraph::graph::{DiGraph, NodeIndex};
use result::{
    CheckReport, ExpectationReport, GroupReport, Location, ResponseExcerpt, RunResult, Status,
    StepResult, Summary, TestResult,
};
use source::TraceSource;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tbt_compiler::bindings::Scopes;
use tbt_compiler::compile::Compilation;
use tbt_compiler::eval::{self, ExpectationResult, Host, Response};
use tbt_compiler::plan::{Node, NodeKind, Plan, StepPlan};
use tbt_compiler::trace::{Trace, TraceId};
use tbt_compiler::trigger::TriggerCall;
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
    /// Where `.tbt/completion.json` (exporter periods, step shapes) is read and written; `None`:
    /// learn only within the run.
    pub history: Option<std::path::PathBuf>,
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
            history: None,
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
        let h = tbt_compiler::hex::encode(&b);
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
    /// The trigger reached a system (a server answered, a process ran).
    reached_system: bool,
    /// When it answered.
    answered: Option<Instant>,
    /// Why the trace node stopped waiting.
    stop: Option<completion::Stop>,
    started: Option<Instant>,
    finished: Option<Instant>,
    results: Vec<ExpectationResult>,
    reason: Option<String>,
    /// When the step ended on a decided failure: what its trace still lacked, which makes its
    /// other failing expectations undecided.
    undecided: Option<String>,
    /// When the last span of its trace arrived.
    last_arrival: Option<Instant>,
    /// Its `timeout` and `settle`, evaluated once with its lets (or the run's defaults).
    timeout: Duration,
    settle: Duration,
}

struct Runner {
    c: &'static Compilation,
    plan: &'static Plan,
    history: completion::History,
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
    /// Per step label: its test and the services (tbt excluded) of its final trace, for the
    /// history.
    shapes: Mutex<HashMap<String, (usize, Vec<String>)>>,
    /// Per test: its own lets' values, evaluated once (by its first step) and shared by its
    /// steps — a `uuid()` there is one value for the whole test.
    test_lets: Mutex<HashMap<usize, Result<Locals, String>>>,
}

/// A step's lets and their values, in evaluation order.
type Locals = Vec<(String, Value)>;

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
    let history = opts
        .history
        .as_deref()
        .map(completion::History::load)
        .unwrap_or_default();
    let runner = Arc::new_cyclic(|me| Runner {
        c,
        plan,
        history,
        graph: graph.clone(),
        scopes,
        host: &HOST,
        source,
        opts: opts.clone(),
        steps: Mutex::new(HashMap::new()),
        me: me.clone(),
        shapes: Mutex::new(HashMap::new()),
        test_lets: Mutex::new(HashMap::new()),
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
    if let Some(root) = &opts.history
        && let Err(e) = runner.learned(&result).save(root)
    {
        eprintln!("warning: could not write .tbt/{}: {e}", completion::FILE);
    }
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
            NodeKind::Trace { .. } => {
                let me = self.self_ref();
                Box::pin(async move { me.follow_trace(&n).await })
            }
            NodeKind::AssertResponse { .. } => {
                let r = self.assert_response(&n);
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
            NodeKind::AssertResponse { .. } => "response expectations",
            NodeKind::Trace { .. } => "trace",
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

    fn step_plan(&self, test: usize, step: usize) -> &'static StepPlan {
        self.plan.step(test, step)
    }

    /// The step's timeout and settle as [`Runner::prepare`] evaluated them.
    fn timing(&self, test: usize, step: usize) -> (Duration, Duration) {
        self.state(test, step, |s| (s.timeout, s.settle))
    }

    /// The lets the step sees, in order: its test's (evaluated once per test, by its first
    /// step), then its own, each seeing the previous ones.
    fn locals(&self, n: &Node, plan: &StepPlan) -> Result<Locals, String> {
        let eval = |lets: &[(String, tbt_compiler::trigger::Leaf)],
                    mut locals: Vec<(String, Value)>| {
            for (name, value) in lets {
                let scope = self.scopes.step(n.test, n.step, &locals);
                let v = value
                    .eval(&scope, self.host)
                    .map_err(|e| format!("`let {name}` ({}): {e}", self.at(value.span())))?;
                locals.push((name.clone(), v));
            }
            Ok(locals)
        };
        let (test_lets, step_lets) = plan.lets.split_at(plan.test_lets.min(plan.lets.len()));
        let shared = self
            .test_lets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(n.test)
            .or_insert_with(|| eval(test_lets, Vec::new()))
            .clone()?;
        eval(step_lets, shared)
    }

    /// `timeout` and `settle` of the step, evaluated with its lets; an error names the line.
    fn step_timing(
        &self,
        plan: &StepPlan,
        scope: &dyn tbt_compiler::eval::Scope,
    ) -> Result<(Duration, Duration), String> {
        let pick = |leaf: &Option<tbt_compiler::trigger::Leaf>, what: &str, default: Duration| {
            match leaf {
                Some(l) => l.duration(
                    scope,
                    self.host,
                    &format!("`{what}` ({})", self.at(l.span())),
                ),
                None => Ok(default),
            }
        };
        Ok((
            pick(&plan.timeout, "timeout", self.opts.timeout)?,
            pick(&plan.settle, "settle", self.opts.settle)?,
        ))
    }

    /// `FILE:LINE:COLUMN` of a span, for messages.
    fn at(&self, span: tbt_compiler::Span) -> String {
        let l = self.location(span);
        format!("{}:{}:{}", l.file, l.line, l.column)
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
                self.state(n.test, n.step, |s| {
                    s.response = Some(response);
                    s.reached_system = true;
                    s.answered = Some(Instant::now());
                });
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
        let plan = self.step_plan(n.test, n.step);
        let locals = match self.locals(n, plan) {
            Ok(l) => l,
            Err(e) => return Prepared::Done(Outcome::Error(e)),
        };
        // One scope per step: its timeout and settle see its lets, once.
        let timing = self.step_timing(plan, &self.scopes.step(n.test, n.step, &locals));
        match timing {
            Ok((timeout, settle)) => self.state(n.test, n.step, |st| {
                st.timeout = timeout;
                st.settle = settle;
            }),
            Err(e) => return Prepared::Done(Outcome::Error(e)),
        }
        let Some(trigger) = &plan.trigger else {
            return Prepared::Done(Outcome::Error("the step has no trigger".into()));
        };
        let started = Instant::now();
        let outcome = match trigger {
            TriggerCall::Trace { id } => {
                let scope = self.scopes.step(n.test, n.step, &locals);
                match id.eval(&scope, self.host) {
                    Ok(Value::Str(s)) => match TraceId::from_hex(&s) {
                        Some(id) => {
                            self.state(n.test, n.step, |st| st.trace_id = Some(id));
                            Outcome::Passed
                        }
                        None => Outcome::Error(format!("`{s}` is not a trace id (32 hex digits)")),
                    },
                    Ok(other) => Outcome::Error(format!(
                        "a trace id is a string, found {}",
                        other.type_name()
                    )),
                    Err(e) => Outcome::Error(e.to_string()),
                }
            }
            _ if !self.source.is_live() => Outcome::Error(format!(
                "`trigger {}` needs a live trace source, but traces come from {}",
                trigger.kind(),
                self.source.describe()
            )),
            _ => {
                let scope = self.scopes.step(n.test, n.step, &locals);
                let file = &self.c.sources.get(plan.file).name;
                let base = std::path::Path::new(file)
                    .parent()
                    .unwrap_or(std::path::Path::new("."));
                let (timeout, _) = self.timing(n.test, n.step);
                match spec::build(trigger, &scope, self.host, base, timeout) {
                    Ok(spec) => {
                        let ctx = crate::trigger::TraceContext::new().with_tag(&plan.label);
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

    /// Evaluates the step's response expectations.
    fn assert_response(&self, n: &Node) -> Outcome {
        let items = self.step_plan(n.test, n.step).response_expectations();
        let (locals, response) =
            self.state(n.test, n.step, |s| (s.locals.clone(), s.response.clone()));
        let scope = self.scopes.step(n.test, n.step, &locals);
        let out = eval::evaluate_step(
            &items,
            &Trace::default(),
            response.as_ref(),
            &scope,
            self.host,
            true,
        );
        self.record(n, out)
    }

    /// Stores a node's results and captures; its outcome is the first failure's message.
    fn record(&self, n: &Node, out: eval::StepOutcome) -> Outcome {
        for (name, v) in &out.captures {
            self.scopes_bindings()
                .capture(n.test, n.step, name, v.clone());
        }
        // A failure for good says more than one more spans could have repaired.
        let failed = out
            .results
            .iter()
            .find(|r| !r.passed && r.decided)
            .or_else(|| out.results.iter().find(|r| !r.passed))
            .map(|r| r.message.clone());
        self.state(n.test, n.step, |s| {
            s.results.extend(out.results);
            s.finished = Some(Instant::now());
        });
        match failed {
            None => Outcome::Passed,
            Some(m) => Outcome::Failed(m),
        }
    }

    /// Follows the step's trace, judging each view (see [`completion`]), then evaluates the
    /// trace expectations on the last one.
    async fn follow_trace(&self, n: &Node) -> Outcome {
        let (id, locals, response, reached, answered, fired) = self.state(n.test, n.step, |s| {
            (
                s.trace_id,
                s.locals.clone(),
                s.response.clone(),
                s.reached_system,
                s.answered,
                s.started,
            )
        });
        let Some(id) = id else {
            return Outcome::Error("no trace id: the trigger did not run".into());
        };
        let (timeout, settle) = self.timing(n.test, n.step);
        let plan = self.step_plan(n.test, n.step);
        let items = plan.trace_expectations();
        let (scopes, host) = (self.scopes, self.host);
        let (test, step) = (n.test, n.step);
        let evaluate = {
            let (items, locals, response) = (&items, &locals, &response);
            Box::new(move |t: &Trace| {
                let scope = scopes.step(test, step, locals);
                let out = eval::evaluate_step(items, t, response.as_ref(), &scope, host, false);
                completion::Verdict {
                    passed: out.results.iter().all(|r| r.passed),
                    decided_failure: out.results.iter().any(|r| r.decided && !r.passed),
                    lasting: out.results.iter().all(|r| !r.passed || r.lasting),
                }
            })
        };
        let expected: &[String] = self
            .history
            .steps
            .get(&plan.label)
            .map_or(&[], Vec::as_slice);
        let source = &self.source;
        let history = &self.history;
        let suite = self.suite_of(n.test);
        let remembered = |period| Cadence {
            period,
            basis: Basis::Remembered,
        };
        let slowest = source
            .cadences()
            .into_iter()
            .chain(
                history
                    .periods
                    .get(suite)
                    .into_iter()
                    .flatten()
                    .map(|(k, &ms)| (k.clone(), remembered(Duration::from_millis(ms)))),
            )
            .filter(|(k, _)| k != "tbt")
            .max_by_key(|(_, c)| c.period);
        let mut judge = completion::StepJudge::new(
            evaluate,
            reached,
            settle,
            expected,
            // A period measured in this run wins; else one this suite measured before; else the
            // guess from one batch.
            Box::new(move |s: &str| match source.cadence(s) {
                Some(c) if c.basis.is_measured() => Some(c),
                live => history.period(suite, s).map(remembered).or(live),
            }),
            slowest,
        );
        if let Some(at) = answered {
            judge = judge.answered_at(at);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let followed = match self.source.follow(id, deadline, &mut judge).await {
            Ok(f) => f,
            Err(e) => return Outcome::Error(e),
        };
        let stop = if followed.timed_out {
            completion::Stop::Timeout {
                waiting_for: judge.waiting_for.clone(),
            }
        } else {
            judge.stop.clone().unwrap_or(completion::Stop::Decided)
        };
        let undecided = matches!(stop, completion::Stop::Decided)
            .then(|| judge.still_missing(&followed.trace, followed.last_arrival, Instant::now()));
        drop(judge);
        let trace = followed.trace;
        let scope = self.scopes.step(n.test, n.step, &locals);
        let mut out =
            eval::evaluate_step(&items, &trace, response.as_ref(), &scope, self.host, true);
        if undecided.is_some() {
            // The final evaluation takes the trace as settled (every result decided); which
            // failures were decided when the step ended is the judge's last view's.
            let early =
                eval::evaluate_step(&items, &trace, response.as_ref(), &scope, self.host, false);
            for (r, e) in out.results.iter_mut().zip(early.results) {
                r.decided = e.decided;
            }
        }
        let system = (0..trace.len() as u32).any(|i| !completion::is_tbt(&trace, i));
        let all_passed = out.results.iter().all(|r| r.passed);
        let note = match &stop {
            completion::Stop::Timeout { .. } if trace.is_empty() => Some(format!(
                "no span of trace {} arrived within {} ({})",
                id,
                tbt_compiler::value::format_duration(timeout.as_nanos() as u64),
                self.source.describe()
            )),
            completion::Stop::Timeout { .. } if reached && !system => {
                Some(self.timeout_note(&trace, timeout, fired, followed.last_arrival, &stop))
            }
            completion::Stop::Timeout { .. } if !all_passed => {
                Some(self.timeout_note(&trace, timeout, fired, followed.last_arrival, &stop))
            }
            _ => None,
        };
        let mut services: Vec<String> = (0..trace.len() as u32)
            .filter(|&i| !completion::is_tbt(&trace, i))
            .map(|i| trace.service(i).to_string())
            .collect();
        services.sort_unstable();
        services.dedup();
        self.shapes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(plan.label.clone(), (n.test, services));
        let trace = Arc::new(trace);
        self.state(n.test, n.step, |s| {
            s.trace = Some(trace);
            s.stop = Some(stop);
            s.undecided = undecided;
            s.last_arrival = followed.last_arrival;
            if let Some(note) = &note {
                s.reason = Some(note.clone());
            }
        });
        let outcome = self.record(n, out);
        match (outcome, note) {
            // Nothing of the system arrived: no expectation has seen it, so none may pass.
            (Outcome::Passed, Some(note)) => Outcome::Failed(note),
            (o, _) => o,
        }
    }

    /// What arrived by the timeout, and the likely causes.
    fn timeout_note(
        &self,
        trace: &Trace,
        timeout: Duration,
        fired: Option<Instant>,
        last: Option<Instant>,
        stop: &completion::Stop,
    ) -> String {
        let mut per: Vec<(&str, usize)> = Vec::new();
        for i in 0..trace.len() as u32 {
            let s = &**trace.service(i);
            match per.iter_mut().find(|(k, _)| *k == s) {
                Some((_, n)) => *n += 1,
                None => per.push((s, 1)),
            }
        }
        let only_tbt =
            !per.is_empty() && (0..trace.len() as u32).all(|i| completion::is_tbt(trace, i));
        per.sort_unstable();
        let counts = per
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let when = match (fired, last) {
            (Some(f), Some(l)) => match l.checked_duration_since(f) {
                // Milliseconds: finer would be noise.
                Some(d) => format!(
                    "; the last arrived {} after the trigger",
                    tbt_compiler::value::format_duration(d.as_millis() as u64 * 1_000_000)
                ),
                None => "; all of them before the step began".to_string(),
            },
            _ => String::new(),
        };
        let waiting = match stop {
            completion::Stop::Timeout { waiting_for } => {
                format!("; still waiting for {waiting_for}")
            }
            _ => String::new(),
        };
        let causes = if only_tbt {
            format!(
                "only tbt's own trigger span arrived. Likely causes: the system's export delay is longer than the timeout (OpenTelemetry SDKs batch for 5s by default: raise `timeout`, or set OTEL_BSP_SCHEDULE_DELAY lower); it exports to another endpoint than {}; it sampled this trace out; or it is not instrumented",
                self.source.describe()
            )
        } else {
            "likely causes: the expected spans were not emitted, they arrive after the timeout (export delay), or the service that emits them is not instrumented or exports elsewhere".to_string()
        };
        format!(
            "at the timeout ({}) the trace held {} span{} ({counts}){when}{waiting}: {causes}",
            tbt_compiler::value::format_duration(timeout.as_nanos() as u64),
            trace.len(),
            if trace.len() == 1 { "" } else { "s" },
        )
    }

    /// The history this run leaves: per suite, the export periods this run measured of the
    /// services in its steps' traces (replacing what it remembered, up or down; a one-batch
    /// guess is not remembered), and each passing step's services.
    fn learned(&self, result: &RunResult) -> completion::History {
        let mut h = self.history.clone();
        let states = self
            .shapes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (test, services) in states.values() {
            let suite = self.suite_of(*test);
            for service in services {
                if let Some(c) = self.source.cadence(service)
                    && c.basis.is_measured()
                {
                    h.remember(suite, service, c.period);
                }
            }
        }
        for t in &result.tests {
            for s in &t.steps {
                if s.status != Status::Passed {
                    continue;
                }
                let label = match &s.name {
                    Some(step) => format!("{}.{step}", t.name),
                    None => t.name.clone(),
                };
                if let Some((_, services)) = states.get(&label) {
                    h.steps.insert(label, services.clone());
                }
            }
        }
        h
    }

    /// The suite file of test `test` (as the sources name it): what remembered periods are
    /// scoped to.
    fn suite_of(&self, test: usize) -> &'static str {
        let c: &'static Compilation = self.c;
        &c.sources.get(c.program.tests[test].name_span.file).name
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
        // The slowest export delay seen in this run: the longest a step's spans took to arrive.
        let slowest = states
            .values()
            .filter_map(|s| s.last_arrival?.checked_duration_since(s.started?))
            .max();
        for (ti, t) in program.tests.iter().enumerate() {
            if !selected[ti] {
                continue;
            }
            let mut steps = Vec::new();
            let mut test_status = Status::Passed;
            let (mut test_start, mut test_end): (Option<Instant>, Option<Instant>) = (None, None);
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
                        // The expectations say why; a timeout note is in the step's state.
                        Outcome::Failed(_) => Status::Failed,
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
                // The test's wall time: its steps overlap (a step's trace wait runs beside the
                // next step's trigger), so it is first start to last finish, not their sum.
                if let Some(a) = state.started {
                    test_start = Some(test_start.map_or(a, |t| t.min(a)));
                }
                if let Some(b) = state.finished {
                    test_end = Some(test_end.map_or(b, |t| t.max(b)));
                }
                let waited = (status == Status::Passed)
                    .then(|| waited_long(&state, slowest))
                    .flatten();
                summary.waited_long += usize::from(waited.is_some());
                let reason = state.reason.or(reason).filter(|_| status != Status::Passed);
                let response_spans: Vec<_> = self
                    .step_plan(ti, si)
                    .response_expectations()
                    .iter()
                    .map(|e| e.span)
                    .collect();
                let expectations: Vec<ExpectationReport> = state
                    .results
                    .iter()
                    .map(|r| {
                        self.report(
                            r,
                            response_spans.contains(&r.span),
                            state.undecided.as_deref(),
                        )
                    })
                    .collect();
                let response_failed = expectations
                    .iter()
                    .any(|e| e.of_response && e.status != Status::Passed);
                let response = state
                    .response
                    .as_ref()
                    .filter(|_| response_failed)
                    .map(ResponseExcerpt::of);
                steps.push(StepResult {
                    name: s.name.clone(),
                    status,
                    trace_id: state.trace_id.map(|id| id.to_string()),
                    reason,
                    spans: state.trace.as_ref().map_or(0, |t| t.len()),
                    trace_notes: state
                        .trace
                        .as_ref()
                        .map(|t| t.notes().warnings.clone())
                        .unwrap_or_default(),
                    stop: state.stop,
                    expectations,
                    response,
                    duration_ms: ms,
                    waited,
                    trigger_span,
                });
                test_status = test_status.worst(status);
            }
            match test_status {
                Status::Passed => summary.passed += 1,
                // A test is never undecided (only expectations are): its step failed.
                Status::Failed | Status::Undecided => summary.failed += 1,
                Status::Error => summary.errors += 1,
                Status::Skipped => summary.skipped += 1,
            }
            tests.push(TestResult {
                name: t.name.clone(),
                title: t.title.clone(),
                location: self.location(t.name_span),
                status: test_status,
                steps,
                duration_ms: match (test_start, test_end) {
                    (Some(a), Some(b)) => b.saturating_duration_since(a).as_millis() as u64,
                    _ => 0,
                },
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

    /// The report of one expectation; `undecided` is what the step's trace still lacked when it
    /// ended on another expectation's decided failure.
    fn report(
        &self,
        r: &ExpectationResult,
        of_response: bool,
        undecided: Option<&str>,
    ) -> ExpectationReport {
        let (status, message) = match undecided {
            _ if r.passed => (Status::Passed, r.message.clone()),
            Some(missing) if !r.decided => (
                Status::Undecided,
                format!(
                    "undecided: the trace was incomplete when the step ended on another expectation's failure (still to come: {missing}); so far {}",
                    r.message
                ),
            ),
            _ => (Status::Failed, r.message.clone()),
        };
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
            of_response,
            source: first,
            location: self.location(r.span),
            status,
            message,
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

/// Why a passing step waited long for its trace, when it did: it ended at its timeout, or its
/// verdict came more than 1.5 × the run's `slowest` export delay plus its `settle` after its
/// trigger.
fn waited_long(state: &StepState, slowest: Option<Duration>) -> Option<String> {
    let (stop, started, finished) = (state.stop.as_ref()?, state.started?, state.finished?);
    let took = finished.saturating_duration_since(started);
    let ms = |d: Duration| tbt_compiler::value::format_duration(d.as_millis() as u64 * 1_000_000);
    let after_last = state
        .last_arrival
        .and_then(|l| finished.checked_duration_since(l))
        .map_or(String::new(), |d| {
            format!(", {} after its last span", ms(d))
        });
    let why = match stop {
        completion::Stop::Timeout { waiting_for } => {
            format!("it ended at its timeout, still waiting for {waiting_for}")
        }
        completion::Stop::Settled {
            waited_for: Some(service),
            cadence_ms: Some(c),
            estimated,
            ..
        } if slowest.is_some_and(|s| took > s * 3 / 2 + state.settle) => format!(
            "quiet until `{service}`'s next export (every ~{c}ms, {}), in case it ended more spans of this trace",
            estimated.as_deref().unwrap_or("estimated")
        ),
        _ => return None,
    };
    Some(format!(
        "decided {} after its trigger{after_last}; the slowest export seen in this run took {}: {why}",
        ms(took),
        slowest.map_or("-".to_string(), ms)
    ))
}
