//! Runs a plan's DAG concurrently: a node starts when everything it depends on has finished.
//!
//! The scheduler knows nothing about triggers or traces: it is handed a function that runs one
//! node and reports its [`Outcome`]. It enforces the rules that are the same for every node:
//!
//! - **Order.** A node runs only after all its prerequisites have *completed* (passed or failed).
//! - **Failure propagation.** When a node fails or errors, every node that depends on it
//!   (transitively) is reported as skipped with the reason — never silently dropped.
//! - **Concurrency.** At most `jobs` nodes that hold a job slot run at once. Only active work
//!   (triggers) takes a slot; waiting for a trace or evaluating expectations does not, so a
//!   thousand pending trace waits never starve the triggers.
//! - **Cancellation.** When the cancel signal fires (Ctrl-C), running nodes are dropped (their
//!   futures cancelled), nothing new starts, and every node not finished is reported as skipped.
//!
//! It must not block: node functions are async and run on the tokio runtime.

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How one node ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It did what it should.
    Passed,
    /// An expectation failed (exit code 1).
    Failed(String),
    /// Something around the test broke: a refused connection, a missing trace source (exit code 3).
    Error(String),
    /// It did not run because a prerequisite failed, or the run was cancelled.
    Skipped(String),
}

impl Outcome {
    /// True for `Passed`.
    pub fn is_passed(&self) -> bool {
        matches!(self, Outcome::Passed)
    }
}

/// A node's future.
pub type NodeFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// What the scheduler needs to know per node.
pub trait NodeRunner: Send + Sync + 'static {
    /// Starts the node. Called once, after all prerequisites completed.
    fn run(&self, node: NodeIndex) -> NodeFuture;
    /// Whether the node takes one of the `jobs` slots while it runs.
    fn takes_slot(&self, node: NodeIndex) -> bool;
    /// A short name for skip reasons: `place_order.create trigger`.
    fn describe(&self, node: NodeIndex) -> String;
    /// Called once per node when its outcome is known (run, failed or skipped), for progress.
    fn finished(&self, _node: NodeIndex, _outcome: &Outcome) {}
}

/// Runs every node of `graph` and returns each node's outcome, indexed by node.
///
/// `cancel` turning `true` stops the run: running nodes are cancelled and reported as skipped.
pub async fn run<N: Send + Sync + 'static, E>(
    graph: &DiGraph<N, E>,
    runner: Arc<dyn NodeRunner>,
    jobs: usize,
    mut cancel: watch::Receiver<bool>,
) -> Vec<Outcome> {
    let n = graph.node_count();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    let mut waiting: Vec<usize> = graph
        .node_indices()
        .map(|i| graph.neighbors_directed(i, Direction::Incoming).count())
        .collect();
    let slots = Arc::new(Semaphore::new(jobs.max(1)));
    let mut running: JoinSet<(NodeIndex, Outcome)> = JoinSet::new();
    let mut task_nodes: std::collections::HashMap<tokio::task::Id, NodeIndex> =
        std::collections::HashMap::new();
    let mut ready: Vec<NodeIndex> = graph
        .node_indices()
        .filter(|i| waiting[i.index()] == 0)
        .collect();
    // Start in plan order: node indices follow tests and steps as written.
    ready.reverse();
    let mut cancelled = *cancel.borrow();
    loop {
        while !cancelled && let Some(node) = ready.pop() {
            let fut = runner.run(node);
            let slot = runner.takes_slot(node).then(|| slots.clone());
            let handle = running.spawn(async move {
                let _permit = match slot {
                    Some(s) => match s.acquire_owned().await {
                        Ok(p) => Some(p),
                        Err(_) => return (node, Outcome::Skipped("the run was stopped".into())),
                    },
                    None => None,
                };
                (node, fut.await)
            });
            task_nodes.insert(handle.id(), node);
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            done = running.join_next() => {
                let Some(done) = done else { break };
                let (node, outcome) = match done {
                    Ok(r) => r,
                    // A node that panicked is a bug in tbt: report it on that node, go on.
                    Err(e) => match task_nodes.get(&e.id()) {
                        Some(&node) if e.is_panic() => (node, Outcome::Error(format!("internal error in {} (please report it)", runner.describe(node)))),
                        _ => continue,
                    },
                };
                let failed = !outcome.is_passed();
                let reason = failed.then(|| format!("skipped: {} did not pass", runner.describe(node)));
                runner.finished(node, &outcome);
                outcomes[node.index()] = Some(outcome);
                for succ in graph.neighbors_directed(node, Direction::Outgoing) {
                    waiting[succ.index()] -= 1;
                    if let Some(reason) = &reason {
                        skip_descendants(graph, succ, reason, &mut outcomes, &*runner);
                    } else if waiting[succ.index()] == 0 && outcomes[succ.index()].is_none() {
                        ready.push(succ);
                    }
                }
            }
            changed = cancel.changed(), if !cancelled => {
                if changed.is_err() || *cancel.borrow() {
                    cancelled = true;
                    running.abort_all();
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Skipped("skipped: the run was stopped".into())))
        .collect()
}

/// Marks `start` and everything reachable from it as skipped (keeping outcomes already known).
fn skip_descendants<N, E>(
    graph: &DiGraph<N, E>,
    start: NodeIndex,
    reason: &str,
    outcomes: &mut [Option<Outcome>],
    runner: &dyn NodeRunner,
) {
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        if outcomes[n.index()].is_some() {
            continue;
        }
        let skipped = Outcome::Skipped(reason.to_string());
        runner.finished(n, &skipped);
        outcomes[n.index()] = Some(skipped);
        stack.extend(graph.neighbors_directed(n, Direction::Outgoing));
    }
}
