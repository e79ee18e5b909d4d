//! Lowering a checked program to a [`Plan`]: the compiler↔runtime contract. A petgraph DAG of
//! triggers, response assertions and trace nodes, plus, per step, everything the runtime needs to
//! run it ([`StepPlan`]: the `let`s in scope order, the typed trigger call, timeout and settle,
//! the expectations) and the suite's services ([`ServicePlan`]). The runtime evaluates the
//! payloads' leaves and runs; it never reads the syntax tree.
//!
//! Per step: `trigger → trace` (the trace node waits for the step's trace and evaluates its trace
//! expectations on every arrival until they are decided), and `trigger → assert(response)` for
//! expectations on the response. A step's trigger waits for the previous step's *trigger* (steps
//! are a transaction) and for the nodes producing the captures it reads — not for the previous
//! step's trace — so trace collection overlaps the next request wherever data allows. `after T`
//! waits for every final node of test T. Every node maps back to its source span.
//!
//! Scoping lives here only: a step sees its test's `let`s (when the test has steps) and then its
//! own, each in the order written; the last `timeout` / `settle` written (test level, then step)
//! wins.

use crate::ast::{self, ExpectKind, StmtKind};
use crate::deps::{Dep, DepKind, Phase};
use crate::diagnostic::{Code, Diagnostic};
use crate::program::{CaptureSource, Program};
use crate::span::{FileId, SourceMap, Span};
use crate::trigger::{Leaf, Pair, TriggerCall};
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;

/// What a node does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeKind {
    /// Fire the step's trigger (with a fresh trace context).
    Trigger,
    /// Evaluate the step's expectations on the response.
    AssertResponse {
        /// How many (the step's [`StepPlan::response`]).
        expectations: usize,
    },
    /// Follow the step's trace as it arrives and evaluate its trace expectations on each arrival,
    /// until they are decided or the step's timeout.
    Trace {
        /// How many (the step's [`StepPlan::trace`]).
        expectations: usize,
    },
}

/// One `expect` of a step, as the evaluator takes it.
#[derive(Clone, Debug)]
pub struct ExpectPlan {
    /// The whole `expect` statement.
    pub span: Span,
    expect: ast::Expect,
}

impl ExpectPlan {
    /// The evaluator's view of it.
    pub fn as_expectation(&self) -> crate::eval::Expectation<'_> {
        crate::eval::Expectation {
            span: self.span,
            expect: &self.expect,
        }
    }
}

/// Everything the runtime needs to run one step.
#[derive(Clone, Debug)]
pub struct StepPlan {
    /// `test.step` (or `test`).
    pub label: String,
    /// The file the step is written in (relative paths in trigger options resolve against its
    /// directory).
    pub file: FileId,
    /// The `let`s the step sees, in evaluation order (test level first when the test has steps).
    pub lets: Vec<(String, Leaf)>,
    /// How many of `lets` are the test's own (written before its steps): evaluated once per run
    /// of the test and shared by its steps, not once per step.
    pub test_lets: usize,
    /// The trigger; `None` only for a step without one (the checker reports it).
    pub trigger: Option<TriggerCall>,
    /// The trigger statement (or the step, without one).
    pub trigger_span: Span,
    /// `timeout` (the last one written), else the run's default.
    pub timeout: Option<Leaf>,
    /// `settle` (the last one written), else the run's default.
    pub settle: Option<Leaf>,
    /// Expectations on the response.
    pub response: Vec<ExpectPlan>,
    /// Expectations on the trace.
    pub trace: Vec<ExpectPlan>,
}

impl StepPlan {
    /// The response expectations for the evaluator.
    pub fn response_expectations(&self) -> Vec<crate::eval::Expectation<'_>> {
        self.response
            .iter()
            .map(ExpectPlan::as_expectation)
            .collect()
    }

    /// The trace expectations for the evaluator.
    pub fn trace_expectations(&self) -> Vec<crate::eval::Expectation<'_>> {
        self.trace.iter().map(ExpectPlan::as_expectation).collect()
    }
}

/// A readiness probe of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// `ready http "url"`: a 2xx answer.
    Http,
    /// `ready tcp "host:port"`: a connection.
    Tcp,
    /// `ready log "text"`: a line of output containing it.
    Log,
}

/// `ready PROBE "target" [within D]`.
#[derive(Clone, Debug)]
pub struct ReadyPlan {
    /// The probe.
    pub probe: Probe,
    /// Its target.
    pub target: Leaf,
    /// `within`, else the runtime's default.
    pub within: Option<Leaf>,
}

/// A `service` the run starts, with its directives as leaves to evaluate in its module's scope.
#[derive(Clone, Debug)]
pub struct ServicePlan {
    /// Its name.
    pub name: String,
    /// The module it is written in (the scope of its leaves).
    pub module: crate::program::ModuleId,
    /// Its file (relative paths resolve against its directory).
    pub file: FileId,
    /// `run "program"`.
    pub program: Leaf,
    /// `run "program" [args]`.
    pub args: Option<Leaf>,
    /// `env NAME = value` lines.
    pub env: Vec<Pair>,
    /// `cwd`.
    pub cwd: Option<Leaf>,
    /// `ready`.
    pub ready: Option<ReadyPlan>,
    /// `stop within D`: how long the service may take to end after SIGTERM.
    pub stop_within: Option<Leaf>,
    /// `otlp "…"`: the protocol the service exports with (and so the receiver it is sent to).
    pub otlp: OtlpProtocol,
}

/// The OTLP protocol of a service (`otlp "…"`, the values of `OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum OtlpProtocol {
    /// `grpc` (the default): the receiver's gRPC listener.
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    /// `http/protobuf`: the receiver's HTTP listener.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// `http/json`: the receiver's HTTP listener.
    #[serde(rename = "http/json")]
    HttpJson,
}

impl OtlpProtocol {
    /// The protocol named `name` (one of [`crate::builtins::OTLP_PROTOCOLS`]).
    pub fn from_name(name: &str) -> Option<OtlpProtocol> {
        match name {
            "grpc" => Some(OtlpProtocol::Grpc),
            "http/protobuf" => Some(OtlpProtocol::HttpProtobuf),
            "http/json" => Some(OtlpProtocol::HttpJson),
            _ => None,
        }
    }

    /// Its `OTEL_EXPORTER_OTLP_PROTOCOL` value.
    pub fn name(self) -> &'static str {
        match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            OtlpProtocol::HttpJson => "http/json",
        }
    }
}

impl ServicePlan {
    /// The plan of a checked `service` item; `None` when it is not well formed (no `run`).
    pub fn from_checked(
        s: &ast::Service,
        module: crate::program::ModuleId,
        file: FileId,
    ) -> Option<ServicePlan> {
        let mut plan = ServicePlan {
            name: s.name.name.clone(),
            module,
            file,
            program: Leaf::new(
                s.body
                    .iter()
                    .find(|d| d.name.name == "run" && !d.error)?
                    .args
                    .first()?,
            ),
            args: None,
            env: Vec::new(),
            cwd: None,
            ready: None,
            stop_within: None,
            otlp: OtlpProtocol::Grpc,
        };
        for d in s.body.iter().filter(|d| !d.error) {
            match d.name.name.as_str() {
                "run" => {
                    plan.program = Leaf::new(d.args.first()?);
                    plan.args = d.args.get(1).map(Leaf::new);
                }
                "env" => plan.env.push(Pair::from_checked(d)?),
                "cwd" => plan.cwd = d.args.first().map(Leaf::new),
                "stop" => plan.stop_within = Some(Leaf::new(d.within.as_ref()?)),
                "otlp" => {
                    plan.otlp = match &d.args.first()?.kind {
                        ast::ExprKind::Lit(ast::Lit::Str(s)) => {
                            OtlpProtocol::from_name(&s.as_plain()?)?
                        }
                        _ => return None,
                    }
                }
                "ready" => {
                    let probe = match d.args.first().map(|a| &a.kind) {
                        Some(ast::ExprKind::Path(p)) => match p.dotted().as_str() {
                            "http" => Probe::Http,
                            "tcp" => Probe::Tcp,
                            "log" => Probe::Log,
                            _ => return None,
                        },
                        _ => return None,
                    };
                    plan.ready = Some(ReadyPlan {
                        probe,
                        target: Leaf::new(d.args.get(1)?),
                        within: d.within.as_ref().map(Leaf::new),
                    });
                }
                _ => {}
            }
        }
        Some(plan)
    }
}

/// One node of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    /// What it does.
    #[serde(flatten)]
    pub kind: NodeKind,
    /// Index of the test in [`Program::tests`].
    pub test: usize,
    /// Index of the step in the test.
    pub step: usize,
    /// `test.step` (or `test` for an inline test).
    pub label: String,
    /// The source it came from: the trigger statement, or the step.
    #[serde(skip)]
    pub span: Span,
}

/// Why an edge exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Edge {
    /// Inside a step: trigger → wait → assertions.
    Step,
    /// Steps of a test run in order: previous trigger → next trigger.
    Sequence,
    /// The target reads a capture the source produces.
    Capture {
        /// `step.name` or `test.step.name` as written.
        name: String,
    },
    /// `after test`.
    After,
}

/// The executable form of a suite.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The DAG. Edges point from a prerequisite to what waits for it.
    pub graph: DiGraph<Node, Edge>,
    /// Per test, per step: what the step runs.
    pub steps: Vec<Vec<StepPlan>>,
    /// The services of every module the run reaches (the root files and what they import), in
    /// module then source order.
    pub services: Vec<ServicePlan>,
}

impl Plan {
    /// What step `step` of test `test` runs.
    pub fn step(&self, test: usize, step: usize) -> &StepPlan {
        &self.steps[test][step]
    }
}

/// Reports every cycle between tests (through `after` or captures). Returns true when there is none.
pub fn check_cycles(program: &Program, deps: &[Dep], diags: &mut Vec<Diagnostic>) -> bool {
    let mut g: DiGraph<usize, Span> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..program.tests.len()).map(|i| g.add_node(i)).collect();
    for d in deps {
        let target = match &d.kind {
            DepKind::Capture { test, .. } | DepKind::After { test } => *test,
        };
        if target != d.test || matches!(d.kind, DepKind::After { .. }) {
            g.add_edge(nodes[target], nodes[d.test], d.span);
        }
    }
    let mut ok = true;
    for scc in tarjan_scc(&g) {
        let self_loop = scc.len() == 1 && g.find_edge(scc[0], scc[0]).is_some();
        if scc.len() < 2 && !self_loop {
            continue;
        }
        ok = false;
        // Walk the cycle in order, starting from the test defined first.
        let start = *scc.iter().min_by_key(|n| g[**n]).unwrap_or(&scc[0]);
        let mut order = vec![start];
        let mut cur = start;
        let mut edges = Vec::new();
        while order.len() <= scc.len() {
            // A dependent of `cur` inside the component (edges point prerequisite → dependent).
            let next = g
                .edges(cur)
                .filter(|e| scc.contains(&e.target()))
                .min_by_key(|e| (e.target() == start, g[e.target()]));
            let Some(e) = next else { break };
            edges.push(*e.weight());
            if e.target() == start {
                break;
            }
            if order.contains(&e.target()) {
                break;
            }
            cur = e.target();
            order.push(cur);
        }
        let names: Vec<String> = order
            .iter()
            .chain(std::iter::once(&start))
            .map(|n| format!("`{}`", program.tests[g[*n]].name))
            .collect();
        let first = &program.tests[g[start]];
        let mut d = Diagnostic::new(
            Code::DependencyCycle,
            first.name_span,
            "tests depend on each other in a cycle",
        )
        .with_label(format!("`{}` is part of the cycle", first.name))
        .with_note(format!("cycle: {}", names.join(" → ")))
        .with_help("remove one `after` or capture reference so the tests can run in some order");
        for s in edges {
            d = d.with_secondary(s, "dependency here");
        }
        diags.push(d);
    }
    ok
}

/// The step's payload: lets in scope order, trigger call, timing, expectations.
fn step_plan(program: &Program, ti: usize, si: usize) -> StepPlan {
    let test = &program.tests[ti];
    let step = &test.steps[si];
    let body = program.step_body(ti, si);
    let has_steps = program
        .test_ast(ti)
        .is_some_and(|t| t.body.iter().any(|s| matches!(s.kind, StmtKind::Step(_))));
    let outer: &[ast::Stmt] = if has_steps {
        program.test_body(ti)
    } else {
        &[]
    };
    let mut plan = StepPlan {
        label: test.step_label(si),
        file: program.module(test.module).file,
        lets: Vec::new(),
        test_lets: 0,
        trigger: None,
        trigger_span: step.span,
        timeout: None,
        settle: None,
        response: Vec::new(),
        trace: Vec::new(),
    };
    plan.test_lets = outer
        .iter()
        .filter(|s| matches!(s.kind, StmtKind::Let(_)))
        .count();
    for stmt in outer.iter().chain(body) {
        match &stmt.kind {
            StmtKind::Let(l) => plan.lets.push((l.name.name.clone(), Leaf::new(&l.value))),
            StmtKind::Timeout(e) => plan.timeout = Some(Leaf::new(e)),
            StmtKind::Settle(e) => plan.settle = Some(Leaf::new(e)),
            _ => {}
        }
    }
    for stmt in body {
        match &stmt.kind {
            StmtKind::Trigger(t) if plan.trigger.is_none() => {
                plan.trigger = TriggerCall::from_checked(t);
                plan.trigger_span = stmt.span;
            }
            StmtKind::Expect(e) => {
                let item = ExpectPlan {
                    span: stmt.span,
                    expect: e.clone(),
                };
                match e.kind {
                    ExpectKind::Response(_) => plan.response.push(item),
                    _ => plan.trace.push(item),
                }
            }
            _ => {}
        }
    }
    plan
}

/// Lowers a checked, acyclic program.
pub fn lower(program: &Program, deps: &[Dep]) -> Plan {
    let mut g: DiGraph<Node, Edge> = DiGraph::new();
    let mut steps = Vec::with_capacity(program.tests.len());
    // Per (test, step): trigger, response assert, trace.
    let mut index: HashMap<(usize, usize), StepNodes> = HashMap::new();
    for (ti, test) in program.tests.iter().enumerate() {
        let mut prev_trigger: Option<NodeIndex> = None;
        let mut test_steps = Vec::with_capacity(test.steps.len());
        for si in 0..test.steps.len() {
            let plan = step_plan(program, ti, si);
            let node = |kind: NodeKind, span: Span| Node {
                kind,
                test: ti,
                step: si,
                label: plan.label.clone(),
                span,
            };
            let trigger = g.add_node(node(NodeKind::Trigger, plan.trigger_span));
            if let Some(p) = prev_trigger {
                g.add_edge(p, trigger, Edge::Sequence);
            }
            prev_trigger = Some(trigger);
            let response = plan.response.first().map(|first| {
                let kind = NodeKind::AssertResponse {
                    expectations: plan.response.len(),
                };
                let n = g.add_node(node(kind, first.span));
                g.add_edge(trigger, n, Edge::Step);
                n
            });
            let trace = plan.trace.first().map(|first| {
                let kind = NodeKind::Trace {
                    expectations: plan.trace.len(),
                };
                let n = g.add_node(node(kind, first.span));
                g.add_edge(trigger, n, Edge::Step);
                n
            });
            index.insert(
                (ti, si),
                StepNodes {
                    trigger,
                    response,
                    trace,
                },
            );
            test_steps.push(plan);
        }
        steps.push(test_steps);
    }
    // Data and `after` edges.
    let mut added: HashMap<(NodeIndex, NodeIndex), ()> = HashMap::new();
    for d in deps {
        let Some(consumer) = index.get(&(d.test, d.step)) else {
            continue;
        };
        let (targets, producers): (Vec<NodeIndex>, Vec<NodeIndex>) = match &d.kind {
            DepKind::Capture {
                test, step, source, ..
            } => {
                let Some(p) = index.get(&(*test, *step)) else {
                    continue;
                };
                let producer = match source {
                    CaptureSource::Response => p.response,
                    CaptureSource::Trace => p.trace,
                };
                // Reads in assertions: whichever assertion nodes the step has.
                let targets = match d.phase {
                    Phase::Trigger => vec![consumer.trigger],
                    Phase::Assert => [consumer.response, consumer.trace]
                        .into_iter()
                        .flatten()
                        .collect(),
                };
                (targets, producer.into_iter().collect())
            }
            DepKind::After { test } => {
                let finals: Vec<NodeIndex> = (0..program.tests[*test].steps.len())
                    .filter_map(|s| index.get(&(*test, s)))
                    .flat_map(|n| [Some(n.trigger), n.response, n.trace])
                    .flatten()
                    .filter(|&n| !g.edges(n).any(|e| g[e.target()].test == *test))
                    .collect();
                let first = index.get(&(d.test, 0)).map(|n| n.trigger);
                (first.into_iter().collect(), finals)
            }
        };
        let edge = match &d.kind {
            DepKind::Capture {
                test, step, name, ..
            } => {
                let t = &program.tests[*test];
                let full = match &t.steps[*step].name {
                    Some(s) if *test == d.test => format!("{s}.{name}"),
                    Some(s) => format!("{}.{s}.{name}", t.name),
                    None => format!("{}.{name}", t.name),
                };
                Edge::Capture { name: full }
            }
            DepKind::After { .. } => Edge::After,
        };
        for &p in &producers {
            for &t in &targets {
                if p != t && added.insert((p, t), ()).is_none() {
                    g.add_edge(p, t, edge.clone());
                }
            }
        }
    }
    let services = program
        .modules
        .iter()
        .filter(|m| m.origin != crate::program::Origin::Std)
        .flat_map(|m| {
            m.services
                .iter()
                .filter_map(|&i| match &m.ast.items.get(i)?.kind {
                    ast::ItemKind::Service(s) => ServicePlan::from_checked(s, m.id, m.file),
                    _ => None,
                })
        })
        .collect();
    Plan {
        graph: g,
        steps,
        services,
    }
}

struct StepNodes {
    trigger: NodeIndex,
    response: Option<NodeIndex>,
    trace: Option<NodeIndex>,
}

impl Plan {
    /// Nodes in a topological order (stable: by test, step, node kind on ties).
    pub fn topo_order(&self) -> Vec<NodeIndex> {
        petgraph::algo::toposort(&self.graph, None)
            .unwrap_or_else(|_| self.graph.node_indices().collect())
    }

    /// A readable listing: one line per node with what it waits for; a trigger shows what it
    /// fires (its first line as written).
    pub fn to_text(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        for n in self.graph.node_indices() {
            let node = &self.graph[n];
            let _ = write!(
                out,
                "#{:<3} {:<16} {}",
                n.index(),
                kind_name(&node.kind),
                node.label
            );
            match &node.kind {
                NodeKind::AssertResponse { expectations } | NodeKind::Trace { expectations } => {
                    let _ = write!(
                        out,
                        " ({expectations} expectation{})",
                        if *expectations == 1 { "" } else { "s" }
                    );
                }
                NodeKind::Trigger => {
                    if let Some(what) = self.fires(node, sources) {
                        let _ = write!(out, "  `{what}`");
                    }
                }
            }
            let preds: Vec<String> = self
                .graph
                .edges_directed(n, petgraph::Direction::Incoming)
                .map(|e| match e.weight() {
                    Edge::Capture { name } => format!("#{} ({name})", e.source().index()),
                    Edge::After => format!("#{} (after)", e.source().index()),
                    _ => format!("#{}", e.source().index()),
                })
                .collect();
            if !preds.is_empty() {
                let _ = write!(out, "  <- {}", preds.join(", "));
            }
            out.push('\n');
        }
        out
    }

    /// What a trigger node fires, as written: `trigger http POST "${base}/orders"`.
    fn fires(&self, node: &Node, sources: &SourceMap) -> Option<String> {
        let plan = self.steps.get(node.test)?.get(node.step)?;
        plan.trigger.as_ref()?;
        sources.try_get(plan.trigger_span.file)?;
        let text = sources.slice(plan.trigger_span);
        let head = text.lines().next()?.trim_end_matches('{').trim();
        Some(head.to_string())
    }

    /// Graphviz DOT: one cluster per test; a trigger shows what it fires.
    pub fn to_dot(&self, sources: &SourceMap) -> String {
        let mut out = String::from(
            "digraph plan {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        let mut tests: Vec<usize> = self.graph.node_weights().map(|n| n.test).collect();
        tests.sort_unstable();
        tests.dedup();
        for t in tests {
            let first = self.graph.node_weights().find(|n| n.test == t);
            let name = first.map_or(String::new(), |n| {
                n.label.split('.').next().unwrap_or("").to_string()
            });
            let _ = writeln!(
                out,
                "  subgraph cluster_{t} {{\n    label=\"{}\";",
                dot_escape(&name)
            );
            for n in self
                .graph
                .node_indices()
                .filter(|&n| self.graph[n].test == t)
            {
                let node = &self.graph[n];
                let (shape, what) = match &node.kind {
                    NodeKind::Trigger => (
                        "box",
                        self.fires(node, sources)
                            .map_or("trigger".to_string(), |w| dot_escape(&w)),
                    ),
                    NodeKind::AssertResponse { expectations } => {
                        ("note", format!("assert response ({expectations})"))
                    }
                    NodeKind::Trace { expectations } => {
                        ("ellipse", format!("trace ({expectations})"))
                    }
                };
                let _ = writeln!(
                    out,
                    "    n{} [shape={shape}, label=\"{}\\n{}\"];",
                    n.index(),
                    dot_escape(&node.label),
                    what
                );
            }
            out.push_str("  }\n");
        }
        for e in self.graph.edge_references() {
            let attrs = match e.weight() {
                Edge::Step => String::new(),
                Edge::Sequence => " [style=bold]".to_string(),
                Edge::Capture { name } => {
                    format!(" [style=dashed, label=\"{}\"]", dot_escape(name))
                }
                Edge::After => " [style=dotted, label=\"after\"]".to_string(),
            };
            let _ = writeln!(
                out,
                "  n{} -> n{}{attrs};",
                e.source().index(),
                e.target().index()
            );
        }
        out.push_str("}\n");
        out
    }

    /// JSON: `{ "nodes": [...], "edges": [...] }`; nodes carry file-independent source offsets.
    pub fn to_json(&self, sources: &crate::span::SourceMap) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .graph
            .node_indices()
            .map(|n| {
                let node = &self.graph[n];
                let mut v = serde_json::to_value(node).unwrap_or_default();
                v["id"] = n.index().into();
                if let Some(what) = self.fires(node, sources) {
                    v["fires"] = what.into();
                }
                if let Some(f) = sources.try_get(node.span.file) {
                    let (line, column) = f.line_col_human(node.span.start);
                    v["source"] =
                        serde_json::json!({ "file": f.name, "line": line, "column": column });
                }
                v
            })
            .collect();
        let edges: Vec<serde_json::Value> = self
            .graph
            .edge_references()
            .map(|e| {
                let mut v = serde_json::to_value(e.weight()).unwrap_or_default();
                v["from"] = e.source().index().into();
                v["to"] = e.target().index().into();
                v
            })
            .collect();
        serde_json::json!({ "nodes": nodes, "edges": edges })
    }
}

fn kind_name(k: &NodeKind) -> &'static str {
    match k {
        NodeKind::Trigger => "trigger",
        NodeKind::AssertResponse { .. } => "assert-response",
        NodeKind::Trace { .. } => "trace",
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
