//! Tests and their steps: `after` dependencies, test- and step-level settings and `let`s, each
//! step's trigger and `expect` statements, and the predicate blocks of `expect`.

use super::{Checker, Ctx, Local, Resolution, Scope};
use crate::ast::{self, BlockStmtKind, Path, StmtKind};
use crate::builtins::{Ty, did_you_mean};
use crate::deps::{Dep, DepKind, Phase};
use crate::diagnostic::{Code, Diagnostic};
use crate::span::Span;

impl<'a> Checker<'a> {
    pub(super) fn check_test(&mut self, ti: usize) {
        let program = self.program;
        let info = &program.tests[ti];
        let Some(t) = program.test_ast(ti) else {
            return;
        };
        let mut sc = Scope {
            module: info.module,
            locals: Vec::new(),
            test: Some(ti),
            step: Some(0),
            phase: Phase::Trigger,
        };
        let has_steps = t.body.iter().any(|s| matches!(s.kind, StmtKind::Step(_)));
        // `after` and test-level settings.
        for stmt in &t.body {
            match &stmt.kind {
                StmtKind::After(paths) => {
                    for p in paths {
                        self.check_after(ti, p);
                    }
                }
                StmtKind::Timeout(e) | StmtKind::Settle(e) => {
                    let ty = self.expr(e, &mut sc, Ctx::Value);
                    self.expect_duration(e, ty);
                }
                StmtKind::Let(l) if has_steps => {
                    let ty = self.expr(&l.value, &mut sc, Ctx::Value);
                    self.push_local(&mut sc, &l.name, ty);
                }
                _ => {}
            }
        }
        let test_level = sc.locals.len();
        for (si, step) in info.steps.iter().enumerate() {
            sc.step = Some(si);
            sc.locals.truncate(test_level);
            let body = program.step_body(ti, si);
            for stmt in body {
                sc.phase = Phase::Trigger;
                match &stmt.kind {
                    StmtKind::Let(l) => {
                        let ty = self.expr(&l.value, &mut sc, Ctx::Value);
                        self.push_local(&mut sc, &l.name, ty);
                    }
                    StmtKind::Trigger(tr) => self.check_trigger(tr, &mut sc),
                    StmtKind::Expect(e) => {
                        sc.phase = Phase::Assert;
                        self.check_expect(e, stmt.span, &mut sc);
                    }
                    StmtKind::Timeout(e) | StmtKind::Settle(e) if step.name.is_some() => {
                        let ty = self.expr(e, &mut sc, Ctx::Value);
                        self.expect_duration(e, ty);
                    }
                    StmtKind::After(_) if step.name.is_some() => self.diags.push(
                        Diagnostic::new(
                            Code::MisplacedStatement,
                            stmt.span,
                            "`after` applies to a whole test",
                        )
                        .with_help("move it to the test level, outside the steps"),
                    ),
                    _ => {}
                }
            }
            let step_locals: Vec<Local> = sc.locals.drain(test_level..).collect();
            self.report_unused_locals(&step_locals, "variable");
        }
        let test_locals: Vec<Local> = std::mem::take(&mut sc.locals);
        self.report_unused_locals(&test_locals, "variable");
    }

    fn check_after(&mut self, ti: usize, p: &Path) {
        let name = p.dotted();
        match self.program.test_index.get(&name) {
            Some(&target) => {
                self.refer(p.span, Resolution::Test(target));
                self.deps.push(Dep {
                    test: ti,
                    step: 0,
                    phase: Phase::Trigger,
                    kind: DepKind::After { test: target },
                    span: p.span,
                });
            }
            None => {
                let mut d =
                    Diagnostic::new(Code::UnknownName, p.span, format!("no test named `{name}`"))
                        .with_label("`after` names a test");
                if let Some(s) =
                    did_you_mean(&name, self.program.tests.iter().map(|t| t.name.as_str()))
                {
                    d = d
                        .with_help(format!("did you mean `{s}`?"))
                        .with_fix(format!("replace with `{s}`"), vec![(p.span, s.to_string())]);
                }
                self.diags.push(d);
            }
        }
    }

    fn check_expect(&mut self, e: &ast::Expect, stmt_span: Span, sc: &mut Scope) {
        match &e.kind {
            ast::ExpectKind::Select {
                no,
                selector,
                by,
                block,
            } => {
                let t = self.expr(selector, sc, Ctx::Value);
                self.expect_spans(selector, t, "`expect`");
                if let Some(by) = by {
                    let t = self.expr(by, sc, Ctx::Pred { block: false });
                    if matches!(t, Ty::Spans | Ty::Bool) {
                        self.diags.push(
                            Diagnostic::new(
                                Code::TypeMismatch,
                                by.span,
                                format!("`by` groups by a value, found {}", t.name()),
                            )
                            .with_help("e.g. `by db.query.text`"),
                        );
                    }
                }
                if let Some(b) = block {
                    if *no {
                        self.diags.push(
                            Diagnostic::new(
                                Code::MisplacedStatement,
                                b.span,
                                "`expect no` takes no block",
                            )
                            .with_label("nothing is selected, so there is nothing to check")
                            .with_help("filter instead: `expect no span[…]`"),
                        );
                    }
                    self.check_block(b, sc, Ctx::Pred { block: true });
                }
                if *no && by.is_some() {
                    self.diags.push(Diagnostic::new(
                        Code::MisplacedStatement,
                        stmt_span,
                        "`expect no` cannot group with `by`",
                    ));
                }
            }
            ast::ExpectKind::Order { first, second, .. } => {
                let t = self.expr(first, sc, Ctx::Value);
                self.expect_spans(first, t, "an ordering");
                let t = self.expr(second, sc, Ctx::Value);
                self.expect_spans(second, t, "an ordering");
            }
            ast::ExpectKind::Response(b) => {
                if let Some(ti) = sc.test
                    && let Some(si) = sc.step
                    && let Some(tr) = self.trigger_of(ti, si)
                    && tr.kind.name == "trace"
                {
                    self.diags.push(
                        Diagnostic::new(Code::MisplacedStatement, stmt_span, "`trigger trace` has no response")
                            .with_help("assert on the spans with `expect span[…] { … }` or on `expect trace { … }`"),
                    );
                }
                self.check_block(b, sc, Ctx::Response);
            }
            ast::ExpectKind::Trace(b) => self.check_block(b, sc, Ctx::Trace),
        }
    }

    pub(super) fn trigger_of(&self, ti: usize, si: usize) -> Option<&'a ast::Trigger> {
        let program = self.program;
        let idx = program.tests[ti].steps[si].trigger?;
        match &program.step_body(ti, si).get(idx)?.kind {
            StmtKind::Trigger(t) => Some(t),
            _ => None,
        }
    }

    fn check_block(&mut self, b: &ast::Block, sc: &mut Scope, ctx: Ctx) {
        for s in &b.stmts {
            match &s.kind {
                BlockStmtKind::Pred(e) => {
                    let t = self.expr(e, sc, ctx);
                    self.expect_bool(e, t);
                }
                BlockStmtKind::Any(e) => {
                    if ctx != (Ctx::Pred { block: true }) {
                        self.diags.push(Diagnostic::new(
                            Code::MisplacedStatement,
                            s.span,
                            "`any` applies to a selection of spans",
                        ));
                    }
                    let t = self.expr(e, sc, Ctx::Pred { block: false });
                    self.expect_bool(e, t);
                }
                BlockStmtKind::Let(l) => {
                    self.expr(&l.value, sc, ctx);
                }
                BlockStmtKind::Error => {}
            }
        }
    }
}
