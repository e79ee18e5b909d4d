//! The DAG scheduler: order, failure propagation, the job limit and cancellation, on small graphs
//! whose nodes record what happened. Synchronisation is by channels and barriers, never sleeps.

use petgraph::graph::{DiGraph, NodeIndex};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tbt::scheduler::{NodeFuture, NodeRunner, Outcome, run};
use tokio::sync::{Notify, watch};

#[derive(Clone)]
enum Behaviour {
    Pass,
    Fail,
    Panic,
    /// Waits until released.
    Block(Arc<Notify>),
}

struct Recorder {
    behaviour: Vec<Behaviour>,
    slot: Vec<bool>,
    log: Arc<Mutex<Vec<usize>>>,
    active: Arc<AtomicUsize>,
    max_active: Arc<AtomicUsize>,
    started: Arc<Notify>,
}

impl NodeRunner for Recorder {
    fn run(&self, node: NodeIndex) -> NodeFuture {
        let b = self.behaviour[node.index()].clone();
        let log = self.log.clone();
        let active = self.active.clone();
        let max_active = self.max_active.clone();
        let started = self.started.clone();
        let counts = self.slot[node.index()];
        Box::pin(async move {
            if counts {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                max_active.fetch_max(now, Ordering::SeqCst);
            }
            log.lock().expect("log").push(node.index());
            started.notify_waiters();
            let out = match b {
                Behaviour::Pass => {
                    // Give other tasks a chance to start, so overlapping is observable.
                    for _ in 0..4 {
                        tokio::task::yield_now().await;
                    }
                    Outcome::Passed
                }
                Behaviour::Fail => Outcome::Failed("boom".into()),
                Behaviour::Panic => panic!("node bug"),
                Behaviour::Block(n) => {
                    n.notified().await;
                    Outcome::Passed
                }
            };
            if counts {
                active.fetch_sub(1, Ordering::SeqCst);
            }
            out
        })
    }
    fn takes_slot(&self, node: NodeIndex) -> bool {
        self.slot[node.index()]
    }
    fn describe(&self, node: NodeIndex) -> String {
        format!("node {}", node.index())
    }
}

fn recorder(behaviour: Vec<Behaviour>) -> (Arc<Recorder>, Arc<Mutex<Vec<usize>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let n = behaviour.len();
    (
        Arc::new(Recorder {
            behaviour,
            slot: vec![true; n],
            log: log.clone(),
            active: Arc::new(AtomicUsize::new(0)),
            max_active: Arc::new(AtomicUsize::new(0)),
            started: Arc::new(Notify::new()),
        }),
        log,
    )
}

fn chain(n: usize) -> DiGraph<(), ()> {
    let mut g = DiGraph::new();
    let nodes: Vec<_> = (0..n).map(|_| g.add_node(())).collect();
    for w in nodes.windows(2) {
        g.add_edge(w[0], w[1], ());
    }
    g
}

#[tokio::test]
async fn runs_every_node_after_its_prerequisites() {
    // 0 -> 1 -> 3, 0 -> 2 -> 3
    let mut g: DiGraph<(), ()> = DiGraph::new();
    let n: Vec<_> = (0..4).map(|_| g.add_node(())).collect();
    g.add_edge(n[0], n[1], ());
    g.add_edge(n[0], n[2], ());
    g.add_edge(n[1], n[3], ());
    g.add_edge(n[2], n[3], ());
    let (r, log) = recorder(vec![Behaviour::Pass; 4]);
    let (_tx, rx) = watch::channel(false);
    let out = run(&g, r, 4, rx).await;
    assert!(out.iter().all(Outcome::is_passed), "{out:?}");
    let log = log.lock().expect("log").clone();
    let pos = |i| log.iter().position(|&x| x == i).expect("ran");
    assert!(
        pos(0) < pos(1) && pos(0) < pos(2) && pos(1) < pos(3) && pos(2) < pos(3),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_failure_skips_exactly_its_dependents_with_the_reason() {
    // 0 -> 1 -> 2, and an independent 3.
    let mut g = chain(3);
    g.add_node(());
    let (r, log) = recorder(vec![
        Behaviour::Pass,
        Behaviour::Fail,
        Behaviour::Pass,
        Behaviour::Pass,
    ]);
    let (_tx, rx) = watch::channel(false);
    let out = run(&g, r, 2, rx).await;
    assert_eq!(out[0], Outcome::Passed);
    assert_eq!(out[1], Outcome::Failed("boom".into()));
    assert_eq!(
        out[2],
        Outcome::Skipped("skipped: node 1 did not pass".into())
    );
    assert_eq!(out[3], Outcome::Passed);
    assert!(
        !log.lock().expect("log").contains(&2),
        "a skipped node never runs"
    );
}

#[tokio::test]
async fn a_panicking_node_is_an_error_and_the_run_goes_on() {
    let mut g = chain(2);
    g.add_node(());
    let (r, _) = recorder(vec![Behaviour::Panic, Behaviour::Pass, Behaviour::Pass]);
    let (_tx, rx) = watch::channel(false);
    let out = run(&g, r, 2, rx).await;
    assert!(
        matches!(&out[0], Outcome::Error(m) if m.contains("internal error in node 0")),
        "{out:?}"
    );
    assert!(matches!(&out[1], Outcome::Skipped(_)));
    assert_eq!(out[2], Outcome::Passed);
}

#[tokio::test]
async fn never_more_than_jobs_slot_nodes_at_once() {
    let g: DiGraph<(), ()> = {
        let mut g = DiGraph::new();
        for _ in 0..40 {
            g.add_node(());
        }
        g
    };
    let (r, _) = recorder(vec![Behaviour::Pass; 40]);
    let max = r.max_active.clone();
    let (_tx, rx) = watch::channel(false);
    let out = run(&g, r, 3, rx).await;
    assert!(out.iter().all(Outcome::is_passed));
    let m = max.load(Ordering::SeqCst);
    assert_eq!(m, 3, "max concurrently active");
}

#[tokio::test]
async fn nodes_without_a_slot_do_not_block_the_others() {
    // Two blocked waiters that take no slot, and a slot node: with jobs = 1 the slot node still runs.
    let gate = Arc::new(Notify::new());
    let mut g: DiGraph<(), ()> = DiGraph::new();
    for _ in 0..3 {
        g.add_node(());
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let r = Arc::new(Recorder {
        behaviour: vec![
            Behaviour::Block(gate.clone()),
            Behaviour::Block(gate.clone()),
            Behaviour::Pass,
        ],
        slot: vec![false, false, true],
        log: log.clone(),
        active: Arc::new(AtomicUsize::new(0)),
        max_active: Arc::new(AtomicUsize::new(0)),
        started: Arc::new(Notify::new()),
    });
    let (_tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move { run(&g, r, 1, rx).await });
    // Release the waiters once the slot node has run.
    loop {
        if log.lock().expect("log").contains(&2) {
            break;
        }
        tokio::task::yield_now().await;
    }
    gate.notify_waiters();
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("finishes")
        .expect("joins");
    assert!(out.iter().all(Outcome::is_passed), "{out:?}");
}

#[tokio::test]
async fn cancellation_stops_running_nodes_and_skips_the_rest() {
    let gate = Arc::new(Notify::new());
    let g = chain(3);
    let (r, log) = recorder(vec![
        Behaviour::Block(gate),
        Behaviour::Pass,
        Behaviour::Pass,
    ]);
    let started = r.started.clone();
    let (tx, rx) = watch::channel(false);
    let notified = started.notified();
    let task = tokio::spawn(async move { run(&g, r, 2, rx).await });
    tokio::time::timeout(std::time::Duration::from_secs(10), notified)
        .await
        .expect("node 0 starts");
    tx.send(true).expect("cancel");
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("stops")
        .expect("joins");
    assert!(
        out.iter().all(|o| matches!(o, Outcome::Skipped(_))),
        "{out:?}"
    );
    assert_eq!(*log.lock().expect("log"), vec![0]);
}
