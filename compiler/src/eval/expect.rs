//! Expectations: selection, blocks, grouping, ordering, captures, and the explanations that go
//! with each verdict (checks per span, near misses for empty selections).

use std::collections::HashMap;

use crate::ast::{self, BinaryOp, BlockStmtKind, ExpectKind, Order};
use crate::span::Span;
use crate::trace::Trace;
use crate::value::{SpanSet, Value, format_duration};

use super::nodes::{Compiler, Cx, Env, Node, Pred};
use super::ops::short;
use super::{
    Check, EvalError, Expectation, ExpectationResult, GroupResult, Host, NearMiss, Response, Scope,
    SpanRef, StepOutcome,
};

/// Failing checks kept per predicate.
const MAX_FAILED_CHECKS: usize = 100;
/// Passing checks kept per predicate (a sample, to show what was looked at).
const MAX_PASSED_CHECKS: usize = 10;
/// Near misses kept per expectation.
const MAX_NEAR_MISSES: usize = 10;

/// Evaluates all expectations of one step against a trace snapshot.
///
/// `settled` says the trace will not grow any more (see the module docs of [`super`] for when a
/// verdict is decided before that). Captures come back in `StepOutcome::captures`, named as in
/// the `let` (the caller prefixes the step name).
pub fn evaluate_step(
    expects: &[Expectation<'_>],
    trace: &Trace,
    response: Option<&Response>,
    scope: &dyn Scope,
    host: &dyn Host,
    settled: bool,
) -> StepOutcome {
    let mut compiler = Compiler::new(trace, response, host);
    let env = Env {
        trace,
        response,
        host,
        span: None,
        group: None,
    };
    let mut out = StepOutcome {
        results: Vec::with_capacity(expects.len()),
        captures: Vec::new(),
        decided: false,
    };
    for e in expects {
        let mut r = evaluate_one(e, &mut compiler, &env, scope, &mut out.captures);
        r.decided |= settled;
        out.results.push(r);
    }
    out.decided = settled
        || out.results.iter().any(|r| r.decided && !r.passed)
        || out.results.iter().all(|r| r.decided);
    out
}

fn result(span: Span, passed: bool, message: impl Into<String>) -> ExpectationResult {
    ExpectationResult {
        span,
        passed,
        decided: false,
        lasting: false,
        message: message.into(),
        selected: 0,
        checks: Vec::new(),
        omitted_checks: 0,
        near_misses: Vec::new(),
        groups: Vec::new(),
    }
}

/// Joins failure lines, folding repeats: "2 × a predicate failed on 1 of 1 span".
fn summarize(failures: &[String]) -> String {
    let mut out: Vec<(usize, &str)> = Vec::new();
    for f in failures {
        match out.iter_mut().find(|(_, t)| *t == f) {
            Some((n, _)) => *n += 1,
            None => out.push((1, f)),
        }
    }
    out.iter()
        .map(|(n, t)| {
            if *n == 1 {
                t.to_string()
            } else {
                format!("{n} × {t}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// One compiled line of an expectation block.
enum Item<'e> {
    PerSpan(Node, Span),
    Aggregate(Node, Span),
    Any(Node, Span),
    Let(&'e str, Node, Span),
}

fn compile_block<'e>(
    block: &'e ast::Block,
    c: &mut Compiler<'_>,
    scope: &dyn Scope,
    cx: Cx,
) -> Vec<Item<'e>> {
    let mut items = Vec::with_capacity(block.stmts.len());
    for s in &block.stmts {
        match &s.kind {
            BlockStmtKind::Pred(e) => {
                let n = c.compile(e, scope, cx);
                if cx == Cx::Block && !n.is_aggregate() {
                    items.push(Item::PerSpan(n, e.span));
                } else {
                    items.push(Item::Aggregate(n, e.span));
                }
            }
            BlockStmtKind::Any(e) => {
                let n = c.compile(e, scope, if cx == Cx::Block { Cx::Pred } else { cx });
                items.push(Item::Any(n, e.span));
            }
            BlockStmtKind::Let(l) => items.push(Item::Let(
                &l.name.name,
                c.compile(&l.value, scope, cx),
                s.span,
            )),
            BlockStmtKind::Error => {
                items.push(Item::Aggregate(
                    Node::Error("this line did not parse".into()),
                    s.span,
                ));
            }
        }
    }
    items
}

fn evaluate_one(
    e: &Expectation<'_>,
    c: &mut Compiler<'_>,
    env: &Env<'_>,
    scope: &dyn Scope,
    captures: &mut Vec<(String, Value)>,
) -> ExpectationResult {
    match &e.expect.kind {
        ExpectKind::Select {
            no,
            selector,
            by,
            block,
        } => {
            let node = c.compile(selector, scope, Cx::Selector);
            let sel = match node.eval_spans(env) {
                Ok(s) => s,
                Err(err) => {
                    return result(
                        e.span,
                        false,
                        format!("the selector could not be evaluated: {err}"),
                    );
                }
            };
            let monotone = node.is_monotone();
            if *no {
                return expect_none(e.span, selector.span, &sel, monotone, env);
            }
            if sel.is_empty() {
                let mut r = result(
                    e.span,
                    false,
                    format!(
                        "the selector matched no spans (the trace has {})",
                        plural(env.trace.len(), "span")
                    ),
                );
                let mut notes = Vec::new();
                explain(&node, env, selector.span, &mut r.near_misses, &mut notes);
                if !notes.is_empty() {
                    r.message.push_str("; ");
                    r.message.push_str(&notes.join("; "));
                }
                return r;
            }
            let items = block
                .as_ref()
                .map(|b| compile_block(b, c, scope, Cx::Block))
                .unwrap_or_default();
            match by {
                None => {
                    let mut r = result(e.span, true, String::new());
                    r.selected = sel.len();
                    let mut b = BlockRun::new(env, monotone);
                    let passed = b.run(&items, sel.indices(), Some(captures));
                    r.passed = passed;
                    r.decided = b.decided_fail;
                    r.lasting = passed && monotone && items.is_empty();
                    r.checks = b.checks;
                    r.omitted_checks = b.omitted;
                    r.message = if passed {
                        format!(
                            "{} selected; every predicate held",
                            plural(sel.len(), "span")
                        )
                    } else {
                        format!(
                            "{} selected; {}",
                            plural(sel.len(), "span"),
                            summarize(&b.failures)
                        )
                    };
                    r
                }
                Some(key) => {
                    let key_node = c.compile(key, scope, Cx::Pred);
                    let groups = group_by(&key_node, &sel, env);
                    let mut r = result(e.span, true, String::new());
                    r.selected = sel.len();
                    let single = groups.len() == 1;
                    let mut failed = 0;
                    for (k, members) in groups {
                        let mut b = BlockRun::new(env, monotone);
                        let passed =
                            b.run(&items, &members, if single { Some(captures) } else { None });
                        if !passed {
                            failed += 1;
                        }
                        r.decided |= b.decided_fail;
                        r.omitted_checks += b.omitted;
                        r.groups.push(GroupResult {
                            key: k,
                            spans: members.len(),
                            passed,
                            checks: b.checks,
                        });
                    }
                    r.passed = failed == 0;
                    r.message = format!(
                        "{} selected in {}; {}",
                        plural(sel.len(), "span"),
                        plural(r.groups.len(), "group"),
                        if failed == 0 {
                            "every group held".to_string()
                        } else {
                            format!("{failed} failed")
                        }
                    );
                    r
                }
            }
        }
        ExpectKind::Order {
            first,
            order,
            second,
        } => {
            let a_node = c.compile(first, scope, Cx::Selector);
            let b_node = c.compile(second, scope, Cx::Selector);
            let (a, b) = match (a_node.eval_spans(env), b_node.eval_spans(env)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(err), _) | (_, Err(err)) => {
                    return result(
                        e.span,
                        false,
                        format!("the selector could not be evaluated: {err}"),
                    );
                }
            };
            for (set, node, expr, side) in [
                (&a, &a_node, first, "first"),
                (&b, &b_node, second, "second"),
            ] {
                if set.is_empty() {
                    let mut r = result(
                        e.span,
                        false,
                        format!("the {side} selector matched no spans"),
                    );
                    let mut notes = Vec::new();
                    explain(node, env, expr.span, &mut r.near_misses, &mut notes);
                    if !notes.is_empty() {
                        r.message.push_str("; ");
                        r.message.push_str(&notes.join("; "));
                    }
                    return r;
                }
            }
            let t = env.trace;
            let latest_end = |s: &SpanSet| {
                s.indices()
                    .iter()
                    .copied()
                    .max_by_key(|&i| (t.span(i).end, std::cmp::Reverse(i)))
            };
            let earliest_start = |s: &SpanSet| s.indices().first().copied();
            let (x, y, passed) = match order {
                Order::Before => {
                    let (Some(x), Some(y)) = (latest_end(&a), earliest_start(&b)) else {
                        return result(e.span, false, "internal: empty selection");
                    };
                    (x, y, t.span(x).end <= t.span(y).start)
                }
                Order::After => {
                    let (Some(x), Some(y)) = (earliest_start(&a), latest_end(&b)) else {
                        return result(e.span, false, "internal: empty selection");
                    };
                    (x, y, t.span(x).start >= t.span(y).end)
                }
            };
            let mut r = result(e.span, passed, String::new());
            r.selected = a.len() + b.len();
            let (xs, ys) = (t.span(x), t.span(y));
            let word = if *order == Order::Before {
                "before"
            } else {
                "after"
            };
            r.message = match (order, passed) {
                (Order::Before, true) => format!(
                    "all {} ended before the {} started",
                    plural(a.len(), "span"),
                    plural(b.len(), "span")
                ),
                (Order::After, true) => format!(
                    "all {} started after the {} ended",
                    plural(a.len(), "span"),
                    plural(b.len(), "span")
                ),
                (Order::Before, false) => format!(
                    "{:?} ends {} after {:?} starts (expected every first span {word} every second span)",
                    &*xs.name,
                    format_duration(xs.end.saturating_sub(ys.start)),
                    &*ys.name
                ),
                (Order::After, false) => format!(
                    "{:?} starts {} before {:?} ends (expected every first span {word} every second span)",
                    &*xs.name,
                    format_duration(ys.end.saturating_sub(xs.start)),
                    &*ys.name
                ),
            };
            let (xv, yv) = match order {
                Order::Before => (Value::Int(xs.end as i64), Value::Int(ys.start as i64)),
                Order::After => (Value::Int(xs.start as i64), Value::Int(ys.end as i64)),
            };
            r.checks.push(Check {
                span: Some(SpanRef::new(t, x)),
                pred: first.span,
                actual: Some(xv),
                passed,
                message: None,
            });
            r.checks.push(Check {
                span: Some(SpanRef::new(t, y)),
                pred: second.span,
                actual: Some(yv),
                passed,
                message: None,
            });
            r.decided = !passed && a_node.is_monotone() && b_node.is_monotone();
            r
        }
        ExpectKind::Response(block) => {
            if env.response.is_none() {
                let mut r = result(
                    e.span,
                    false,
                    "this step's trigger gave no response to check",
                );
                r.decided = true;
                return r;
            }
            let items = compile_block(block, c, scope, Cx::Response);
            let mut r = subject_block(e.span, &items, env, captures, "response");
            // The response does not change while spans arrive.
            r.decided = true;
            r
        }
        ExpectKind::Trace(block) => {
            let items = compile_block(block, c, scope, Cx::Trace);
            subject_block(e.span, &items, env, captures, "trace")
        }
    }
}

fn expect_none(
    span: Span,
    sel_span: Span,
    sel: &SpanSet,
    monotone: bool,
    env: &Env<'_>,
) -> ExpectationResult {
    if sel.is_empty() {
        return result(span, true, "no span matched, as expected");
    }
    let mut r = result(
        span,
        false,
        format!("expected no spans, found {}", plural(sel.len(), "span")),
    );
    r.selected = sel.len();
    r.decided = monotone;
    for (k, &i) in sel.indices().iter().enumerate() {
        if k >= MAX_FAILED_CHECKS {
            r.omitted_checks += 1;
            continue;
        }
        r.checks.push(Check {
            span: Some(SpanRef::new(env.trace, i)),
            pred: sel_span,
            actual: None,
            passed: false,
            message: Some(match what_it_did(env.trace, i) {
                Some(did) => format!("selected, but `expect no` allows none; {did}"),
                None => "selected, but `expect no` allows none".into(),
            }),
        });
    }
    r
}

/// The attributes that say what a span did, by domain, most telling first: a database
/// statement, an HTTP route or address, a messaging destination, an RPC method. Old names after
/// their current ones, for instrumentations that still emit them.
const WHAT_IT_DID: &[&str] = &[
    "db.query.text",
    "db.statement",
    "db.query.summary",
    "http.route",
    "url.full",
    "url.path",
    "http.target",
    "http.url",
    "messaging.destination.name",
    "messaging.destination",
    "rpc.method",
];

/// What a span did, for a reader of an `expect no` failure: `db.query.text "INSERT INTO …"`.
fn what_it_did(trace: &Trace, i: u32) -> Option<String> {
    WHAT_IT_DID.iter().find_map(|key| {
        trace.attr_by_name(i, key).map(|v| {
            format!(
                "{key} {}",
                v.to_string().chars().take(200).collect::<String>()
            )
        })
    })
}

/// Runs block items over a group of spans.
struct BlockRun<'a, 'e> {
    env: &'a Env<'e>,
    monotone: bool,
    checks: Vec<Check>,
    omitted: usize,
    failures: Vec<String>,
    decided_fail: bool,
}

impl<'a, 'e> BlockRun<'a, 'e> {
    fn new(env: &'a Env<'e>, monotone: bool) -> Self {
        BlockRun {
            env,
            monotone,
            checks: Vec::new(),
            omitted: 0,
            failures: Vec::new(),
            decided_fail: false,
        }
    }

    fn run(
        &mut self,
        items: &[Item<'_>],
        group: &[u32],
        mut captures: Option<&mut Vec<(String, Value)>>,
    ) -> bool {
        let t = self.env.trace;
        let genv = Env {
            group: Some(group),
            ..*self.env
        };
        let mut passed = true;
        for item in items {
            match item {
                Item::PerSpan(node, pspan) => {
                    let (mut fails, mut passes) = (0usize, 0usize);
                    for &i in group {
                        let e = genv.at(i);
                        let res = node.test(&e);
                        let ok = matches!(res, Ok(true));
                        let keep = if ok {
                            passes < MAX_PASSED_CHECKS
                        } else {
                            fails < MAX_FAILED_CHECKS
                        };
                        if ok {
                            passes += 1;
                        } else {
                            fails += 1;
                        }
                        if !keep {
                            self.omitted += 1;
                            continue;
                        }
                        self.checks.push(Check {
                            span: Some(SpanRef::new(t, i)),
                            pred: *pspan,
                            actual: node.actual(&e),
                            passed: ok,
                            message: res.err().map(|e| e.to_string()),
                        });
                    }
                    if fails > 0 {
                        passed = false;
                        self.decided_fail |= self.monotone;
                        self.failures.push(format!(
                            "a predicate failed on {fails} of {}",
                            plural(group.len(), "span")
                        ));
                    }
                }
                Item::Aggregate(node, pspan) => {
                    let res = node.test(&genv);
                    let ok = matches!(res, Ok(true));
                    self.checks.push(Check {
                        span: None,
                        pred: *pspan,
                        actual: node.actual(&genv),
                        passed: ok,
                        message: res.as_ref().err().map(|e| e.to_string()),
                    });
                    if !ok {
                        passed = false;
                        self.failures.push(match res {
                            Err(e) => e.to_string(),
                            Ok(_) => "an aggregate predicate failed".to_string(),
                        });
                        if self.monotone && count_bound_exceeded(node, group.len()) {
                            self.decided_fail = true;
                        }
                    }
                }
                Item::Any(node, pspan) => {
                    let hit = group
                        .iter()
                        .copied()
                        .find(|&i| matches!(node.test(&genv.at(i)), Ok(true)));
                    match hit {
                        Some(i) => self.checks.push(Check {
                            span: Some(SpanRef::new(t, i)),
                            pred: *pspan,
                            actual: node.actual(&genv.at(i)),
                            passed: true,
                            message: None,
                        }),
                        None => {
                            passed = false;
                            self.failures.push(format!(
                                "`any` held for none of {}",
                                plural(group.len(), "span")
                            ));
                            for &i in group.iter().take(MAX_FAILED_CHECKS) {
                                let e = genv.at(i);
                                self.checks.push(Check {
                                    span: Some(SpanRef::new(t, i)),
                                    pred: *pspan,
                                    actual: node.actual(&e),
                                    passed: false,
                                    message: node.test(&e).err().map(|e| e.to_string()),
                                });
                            }
                            self.omitted += group.len().saturating_sub(MAX_FAILED_CHECKS);
                        }
                    }
                }
                Item::Let(name, node, lspan) => {
                    let value = if node.is_aggregate() {
                        node.eval(&genv).map(|v| v.into_owned())
                    } else if group.len() == 1 {
                        node.eval(&genv.at(group[0])).map(|v| v.into_owned())
                    } else {
                        let names: Vec<String> = group
                            .iter()
                            .take(5)
                            .map(|&i| SpanRef::new(t, i).to_string())
                            .collect();
                        if self.monotone {
                            self.decided_fail = true;
                        }
                        Err(EvalError::Msg(format!(
                            "capture `{name}` needs exactly one span, but the selection has {}: {}{}; select one with `:first` or a narrower selector",
                            group.len(),
                            names.join(", "),
                            if group.len() > 5 { ", …" } else { "" }
                        )))
                    };
                    match (value, captures.as_deref_mut()) {
                        (Ok(v), Some(caps)) => {
                            self.checks.push(Check {
                                span: (group.len() == 1).then(|| SpanRef::new(t, group[0])),
                                pred: *lspan,
                                actual: Some(v.clone()),
                                passed: true,
                                message: None,
                            });
                            caps.push((name.to_string(), v));
                        }
                        (Ok(_), None) => {
                            passed = false;
                            let m = format!(
                                "capture `{name}` inside `by` with several groups is ambiguous"
                            );
                            self.failures.push(m.clone());
                            self.checks.push(Check {
                                span: None,
                                pred: *lspan,
                                actual: None,
                                passed: false,
                                message: Some(m),
                            });
                        }
                        (Err(e), _) => {
                            passed = false;
                            let m = e.to_string();
                            self.failures.push(m.clone());
                            self.checks.push(Check {
                                span: None,
                                pred: *lspan,
                                actual: None,
                                passed: false,
                                message: Some(m),
                            });
                        }
                    }
                }
            }
        }
        passed
    }
}

/// `count == k`, `count <= k`, `count < k` already exceeded: more spans cannot repair it.
fn count_bound_exceeded(node: &Node, count: usize) -> bool {
    let Node::Cmp(op, l, r) = node else {
        return false;
    };
    let (Node::Count, Node::Const(Value::Int(k))) = (l.as_ref(), r.as_ref()) else {
        return false;
    };
    let count = count as i64;
    match op {
        BinaryOp::Eq | BinaryOp::Le => count > *k,
        BinaryOp::Lt => count >= *k,
        _ => false,
    }
}

/// `expect response { … }` and `expect trace { … }`.
fn subject_block(
    span: Span,
    items: &[Item<'_>],
    env: &Env<'_>,
    captures: &mut Vec<(String, Value)>,
    what: &str,
) -> ExpectationResult {
    let mut r = result(span, true, String::new());
    let mut failures = Vec::new();
    for item in items {
        match item {
            Item::PerSpan(node, pspan) | Item::Aggregate(node, pspan) => {
                let res = node.test(env);
                let ok = matches!(res, Ok(true));
                if !ok {
                    r.passed = false;
                    failures.push(match &res {
                        Err(e) => e.to_string(),
                        Ok(_) => format!("a {what} predicate failed"),
                    });
                }
                r.checks.push(Check {
                    span: None,
                    pred: *pspan,
                    actual: node.actual(env),
                    passed: ok,
                    message: res.err().map(|e| e.to_string()),
                });
            }
            Item::Any(_, pspan) => {
                r.passed = false;
                let m = format!("`any` applies to span selections, not to the {what}");
                failures.push(m.clone());
                r.checks.push(Check {
                    span: None,
                    pred: *pspan,
                    actual: None,
                    passed: false,
                    message: Some(m),
                });
            }
            Item::Let(name, node, lspan) => match node.eval(env) {
                Ok(v) => {
                    let v = v.into_owned();
                    r.checks.push(Check {
                        span: None,
                        pred: *lspan,
                        actual: Some(v.clone()),
                        passed: true,
                        message: None,
                    });
                    captures.push((name.to_string(), v));
                }
                Err(e) => {
                    r.passed = false;
                    let m = format!("capture `{name}`: {e}");
                    failures.push(m.clone());
                    r.checks.push(Check {
                        span: None,
                        pred: *lspan,
                        actual: None,
                        passed: false,
                        message: Some(m),
                    });
                }
            },
        }
    }
    r.message = if r.passed {
        format!("every {what} predicate held")
    } else {
        failures.join("; ")
    };
    r
}

/// Groups a selection by key, groups in order of their first span. A missing key groups as `null`.
fn group_by(key: &Node, sel: &SpanSet, env: &Env<'_>) -> Vec<(Value, Vec<u32>)> {
    let mut groups: Vec<(Value, Vec<u32>)> = Vec::new();
    let mut index: HashMap<(u8, String), usize> = HashMap::new();
    for &i in sel.indices() {
        let v = key
            .eval(&env.at(i))
            .map(|v| v.into_owned())
            .unwrap_or(Value::Null);
        // Ints and floats that are equal group together, so the tag is "number" for both.
        let tag = match v {
            Value::Int(_) | Value::Float(_) => 0,
            _ => 1,
        };
        let text = match &v {
            Value::Int(n) => (*n as f64).to_string(),
            Value::Float(x) => x.to_string(),
            other => format!("{}:{other}", other.type_name()),
        };
        match index.get(&(tag, text.clone())) {
            Some(&g) => groups[g].1.push(i),
            None => {
                index.insert((tag, text), groups.len());
                groups.push((v, vec![i]));
            }
        }
    }
    groups
}

/// Explains an empty selection: near misses of the innermost filter that lost every span.
fn explain(
    node: &Node,
    env: &Env<'_>,
    sel_span: Span,
    misses: &mut Vec<NearMiss>,
    notes: &mut Vec<String>,
) {
    let t = env.trace;
    match node {
        Node::Filter { base, preds, .. } => {
            let set = match base.eval_spans(env) {
                Ok(s) => s,
                Err(e) => return notes.push(e.to_string()),
            };
            if set.is_empty() {
                return explain(base, env, sel_span, misses, notes);
            }
            let mut found = 0usize;
            for &i in set.indices() {
                let e = env.at(i);
                let mut failing: Option<(&Pred, Result<bool, EvalError>)> = None;
                let mut nfail = 0;
                for p in preds {
                    let res = p.node.test(&e);
                    if !matches!(res, Ok(true)) {
                        nfail += 1;
                        if nfail > 1 {
                            break;
                        }
                        failing = Some((p, res));
                    }
                }
                if nfail == 1
                    && let Some((p, res)) = failing
                {
                    found += 1;
                    if misses.len() < MAX_NEAR_MISSES {
                        let actual = p.node.actual(&e);
                        let message = match res {
                            Err(err) => err.to_string(),
                            Ok(_) => match &actual {
                                Some(v) => format!("actual value {}", short(v)),
                                None => "the predicate is false".into(),
                            },
                        };
                        misses.push(NearMiss {
                            span: SpanRef::new(t, i),
                            pred: p.span,
                            actual,
                            message,
                        });
                    }
                }
            }
            notes.push(format!(
                "{} reached the filter, {found} failed exactly one predicate",
                plural(set.len(), "span"),
            ));
        }
        Node::Comb(_, a, b) | Node::GtOrChild(a, b) => {
            let comb = match node {
                Node::Comb(c, ..) => *c,
                _ => super::nodes::Comb::Child,
            };
            let (Ok(sa), Ok(sb)) = (a.eval_spans(env), b.eval_spans(env)) else {
                return;
            };
            if sb.is_empty() {
                explain(b, env, sel_span, misses, notes);
            } else if sa.is_empty() {
                explain(a, env, sel_span, misses, notes);
            } else {
                notes.push(format!(
                    "{} {} the right side and {} the left side, but none of the right is {} one of the left",
                    plural(sb.len(), "span"),
                    if sb.len() == 1 { "matches" } else { "match" },
                    plural(sa.len(), "span"),
                    comb.describe()
                ));
                for &i in sb
                    .indices()
                    .iter()
                    .take(MAX_NEAR_MISSES.saturating_sub(misses.len()))
                {
                    let parent = t.parent(i).map(|p| Value::Str(t.span(p).name.clone()));
                    misses.push(NearMiss {
                        span: SpanRef::new(t, i),
                        pred: sel_span,
                        actual: parent,
                        message: format!("not {} a span of the left side", comb.describe()),
                    });
                }
            }
        }
        Node::Union(a, b) => {
            explain(a, env, sel_span, misses, notes);
            explain(b, env, sel_span, misses, notes);
        }
        Node::Pseudo(base, _) => match base.eval_spans(env) {
            Ok(s) if s.is_empty() => explain(base, env, sel_span, misses, notes),
            Ok(s) => notes.push(format!(
                "the pseudo-class removed all {} of the selection",
                plural(s.len(), "span")
            )),
            Err(e) => notes.push(e.to_string()),
        },
        Node::AllSpans => notes.push("the trace has no spans yet".into()),
        _ => {}
    }
}
