//! Lowering a checked program to a [`Plan`]: a petgraph DAG of triggers, trace waits and
//! assertion groups.
//!
//! Per step: `trigger → wait → assert(trace)`, and `trigger → assert(response)` for expectations
//! on the response. A step's trigger waits for the previous step's *trigger* (steps are a
//! transaction) and for the nodes producing the captures it reads — not for the previous step's
//! trace wait — so trace collection overlaps the next request wherever data allows. `after T`
//! waits for every final node of test T. Every node maps back to its source span.

use crate::ast::{ExpectKind, StmtKind};
use crate::deps::{Dep, DepKind, Phase};
use crate::diagnostic::{Code, Diagnostic};
use crate::program::{CaptureSource, Program};
use crate::span::Span;
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
    /// Wait until the step's trace has settled (or its timeout).
    TraceWait,
    /// Evaluate the step's expectations on the response.
    AssertResponse {
        /// Indices of the `expect` statements in the step body.
        expects: Vec<usize>,
    },
    /// Evaluate the step's expectations on the trace.
    AssertTrace {
        /// Indices of the `expect` statements in the step body.
        expects: Vec<usize>,
    },
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

/// Lowers a checked, acyclic program.
pub fn lower(program: &Program, deps: &[Dep]) -> Plan {
    let mut g: DiGraph<Node, Edge> = DiGraph::new();
    // Per (test, step): trigger, wait, response assert, trace assert.
    let mut index: HashMap<(usize, usize), StepNodes> = HashMap::new();
    for (ti, test) in program.tests.iter().enumerate() {
        let mut prev_trigger: Option<NodeIndex> = None;
        for (si, step) in test.steps.iter().enumerate() {
            let body = program.step_body(ti, si);
            let label = test.step_label(si);
            let trigger_span = step
                .trigger
                .and_then(|i| body.get(i))
                .map_or(step.span, |s| s.span);
            let mut resp = Vec::new();
            let mut trace = Vec::new();
            for (i, s) in body.iter().enumerate() {
                if let StmtKind::Expect(e) = &s.kind {
                    match e.kind {
                        ExpectKind::Response(_) => resp.push(i),
                        _ => trace.push(i),
                    }
                }
            }
            let node = |kind: NodeKind, span: Span| Node {
                kind,
                test: ti,
                step: si,
                label: label.clone(),
                span,
            };
            let trigger = g.add_node(node(NodeKind::Trigger, trigger_span));
            if let Some(p) = prev_trigger {
                g.add_edge(p, trigger, Edge::Sequence);
            }
            prev_trigger = Some(trigger);
            let response = (!resp.is_empty()).then(|| {
                let span = body[resp[0]].span;
                let n = g.add_node(node(NodeKind::AssertResponse { expects: resp }, span));
                g.add_edge(trigger, n, Edge::Step);
                n
            });
            let (wait, trace_assert) = if trace.is_empty() {
                (None, None)
            } else {
                let span = body[trace[0]].span;
                let w = g.add_node(node(NodeKind::TraceWait, step.span));
                g.add_edge(trigger, w, Edge::Step);
                let a = g.add_node(node(NodeKind::AssertTrace { expects: trace }, span));
                g.add_edge(w, a, Edge::Step);
                (Some(w), Some(a))
            };
            index.insert(
                (ti, si),
                StepNodes {
                    trigger,
                    response,
                    trace: trace_assert,
                    wait,
                },
            );
        }
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
    Plan { graph: g }
}

struct StepNodes {
    trigger: NodeIndex,
    response: Option<NodeIndex>,
    trace: Option<NodeIndex>,
    #[allow(dead_code)]
    wait: Option<NodeIndex>,
}

impl Plan {
    /// Nodes in a topological order (stable: by test, step, node kind on ties).
    pub fn topo_order(&self) -> Vec<NodeIndex> {
        petgraph::algo::toposort(&self.graph, None)
            .unwrap_or_else(|_| self.graph.node_indices().collect())
    }

    /// A readable listing: one line per node with what it waits for.
    pub fn to_text(&self) -> String {
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
            if let NodeKind::AssertResponse { expects } | NodeKind::AssertTrace { expects } =
                &node.kind
            {
                let _ = write!(
                    out,
                    " ({} expectation{})",
                    expects.len(),
                    if expects.len() == 1 { "" } else { "s" }
                );
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

    /// Graphviz DOT: one cluster per test.
    pub fn to_dot(&self) -> String {
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
                    NodeKind::Trigger => ("box", "trigger".to_string()),
                    NodeKind::TraceWait => ("ellipse", "wait trace".to_string()),
                    NodeKind::AssertResponse { expects } => {
                        ("note", format!("assert response ({})", expects.len()))
                    }
                    NodeKind::AssertTrace { expects } => {
                        ("note", format!("assert trace ({})", expects.len()))
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
        NodeKind::TraceWait => "wait-trace",
        NodeKind::AssertResponse { .. } => "assert-response",
        NodeKind::AssertTrace { .. } => "assert-trace",
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
