//! Module items and the names they bind: a module `let`'s type (computed once, on first use),
//! matcher parameters and bodies, `service` blocks, and the locals of a scope with their
//! duplicate and never-used lints.

use super::{Checker, Ctx, Local, Scope, plain_string, single_name};
use crate::ast::{self, ItemKind};
use crate::builtins::{self, Ty, did_you_mean};
use crate::diagnostic::{Code, Diagnostic};
use crate::program::ModuleId;
use crate::span::Span;
use std::cell::Cell;

impl<'a> Checker<'a> {
    pub(super) fn let_type(&mut self, module: ModuleId, item: usize) -> Ty {
        let key = (module, item);
        if let Some(&t) = self.let_types.get(&key) {
            return t;
        }
        if !self.let_in_progress.insert(key) {
            return Ty::Any;
        }
        let program = self.program;
        let ty = match &program.module(module).ast.items[item].kind {
            ItemKind::Let(l) => {
                let mut sc = Scope::module(module);
                self.expr(&l.value, &mut sc, Ctx::Value)
            }
            _ => Ty::Error,
        };
        self.let_in_progress.remove(&key);
        self.let_types.insert(key, ty);
        ty
    }

    pub(super) fn check_matcher(&mut self, module: ModuleId, mt: &ast::Matcher) {
        let mut sc = Scope::module(module);
        let mut seen_default = false;
        for p in &mt.params {
            if sc.locals.iter().any(|l| l.name == p.name.name) {
                self.diags.push(Diagnostic::new(
                    Code::Duplicate,
                    p.name.span,
                    format!("parameter `{}` appears twice", p.name.name),
                ));
            }
            let ty = match &p.default {
                Some(d) => {
                    seen_default = true;
                    let t = self.expr(d, &mut sc, Ctx::Value);
                    if t == Ty::Null { Ty::Any } else { t }
                }
                None => {
                    if seen_default {
                        self.diags.push(
                            Diagnostic::new(
                                Code::InvalidArguments,
                                p.name.span,
                                "a parameter without a default follows one with a default",
                            )
                            .with_help("put optional parameters last"),
                        );
                    }
                    Ty::Any
                }
            };
            sc.locals.push(Local {
                name: p.name.name.clone(),
                ty,
                span: p.name.span,
                used: Cell::new(false),
                lint_unused: true,
            });
        }
        let t = self.expr(&mt.body, &mut sc, Ctx::Value);
        self.expect_spans(&mt.body, t, "a matcher's body");
        self.report_unused_locals(&sc.locals, "parameter");
    }

    pub(super) fn check_service(&mut self, module: ModuleId, s: &ast::Service) {
        let mut sc = Scope::module(module);
        let mut run: Option<Span> = None;
        for d in &s.body {
            if d.error {
                continue;
            }
            let name = d.name.name.as_str();
            match name {
                "run" => {
                    if let Some(prev) = run {
                        self.diags.push(
                            Diagnostic::new(
                                Code::Duplicate,
                                d.name.span,
                                "a service runs one command",
                            )
                            .with_secondary(prev, "first `run` here"),
                        );
                    }
                    run = Some(d.name.span);
                    self.positional(
                        d,
                        &mut sc,
                        &[Ty::Str, Ty::List],
                        1,
                        "run \"program\" [\"arg\", …]",
                    );
                    self.no_value(d);
                }
                "env" => self.keyed(
                    d,
                    &mut sc,
                    "env NAME = \"value\"",
                    true,
                    &[Ty::Str, Ty::Int, Ty::Float, Ty::Bool],
                ),
                "cwd" => {
                    self.positional(d, &mut sc, &[Ty::Str], 1, "cwd \"path\"");
                    self.no_value(d);
                }
                "ready" => {
                    let probe = d.args.first().and_then(single_name);
                    match probe {
                        Some(p) if builtins::READY_PROBES.contains(&p.name.as_str()) => {}
                        _ => {
                            let span = d.args.first().map_or(d.name.span, |a| a.span);
                            let mut diag = Diagnostic::new(
                                Code::InvalidArguments,
                                span,
                                "`ready` needs a probe: `http`, `tcp` or `log`",
                            )
                            .with_help(
                                "e.g. `ready http \"http://127.0.0.1:8080/health\" within 30s`",
                            );
                            if let Some(s) = probe.and_then(|p| {
                                did_you_mean(&p.name, builtins::READY_PROBES.iter().copied())
                            }) {
                                diag = diag.with_note(format!("did you mean `{s}`?"));
                            }
                            self.diags.push(diag);
                        }
                    }
                    match d.args.get(1) {
                        Some(target) => {
                            let t = self.expr(target, &mut sc, Ctx::Value);
                            self.expect_ty(target, t, &[Ty::Str], "the readiness target");
                        }
                        None => self.diags.push(
                            Diagnostic::new(
                                Code::InvalidArguments,
                                d.span,
                                "`ready` needs a target: a URL, `host:port`, or a log line",
                            )
                            .with_help("e.g. `ready tcp \"127.0.0.1:5432\" within 10s`"),
                        ),
                    }
                    for extra in d.args.iter().skip(2) {
                        self.diags.push(Diagnostic::new(
                            Code::InvalidArguments,
                            extra.span,
                            "unexpected argument",
                        ));
                    }
                    if let Some(w) = &d.within {
                        let t = self.expr(w, &mut sc, Ctx::Value);
                        self.expect_duration(w, t);
                    }
                    self.no_value(d);
                }
                "stop" => {
                    match (&d.within, d.args.as_slice()) {
                        // `stop 1s`: the grace without its keyword.
                        (None, [grace]) => self.diags.push(
                            Diagnostic::new(
                                Code::InvalidArguments,
                                grace.span,
                                "the grace period of `stop` follows `within`",
                            )
                            .with_fix(
                                "write `stop within …`",
                                vec![(
                                    Span {
                                        end: grace.span.start,
                                        ..grace.span
                                    },
                                    "within ".into(),
                                )],
                            ),
                        ),
                        (Some(w), args) => {
                            for extra in args {
                                self.diags.push(Diagnostic::new(
                                    Code::InvalidArguments,
                                    extra.span,
                                    "unexpected argument",
                                ));
                            }
                            let t = self.expr(w, &mut sc, Ctx::Value);
                            self.expect_duration(w, t);
                        }
                        (None, _) => self.diags.push(
                            Diagnostic::new(
                                Code::InvalidArguments,
                                d.span,
                                "`stop` needs a grace period: `stop within 1s`",
                            )
                            .with_help(
                                "how long the service may take to end after SIGTERM before it is killed",
                            ),
                        ),
                    }
                    self.no_value(d);
                }
                "otlp" => {
                    self.positional(d, &mut sc, &[Ty::Str], 1, "otlp \"http/protobuf\"");
                    self.no_value(d);
                    let value = d.args.first().map(|arg| (arg, plain_string(arg)));
                    if let Some((arg, None)) = value {
                        self.diags.push(
                            Diagnostic::new(
                                Code::InvalidArguments,
                                arg.span,
                                "`otlp` takes a string literal",
                            )
                            .with_note("`otlp` takes \"grpc\", \"http/protobuf\" or \"http/json\""),
                        );
                    } else if let Some((arg, Some(value))) = value
                        && !builtins::OTLP_PROTOCOLS.contains(&value.as_str())
                    {
                        let mut diag = Diagnostic::new(
                            Code::InvalidArguments,
                            arg.span,
                            format!("`{value}` is not an OTLP protocol"),
                        )
                        .with_note("`otlp` takes \"grpc\", \"http/protobuf\" or \"http/json\"");
                        if let Some(s) =
                            did_you_mean(&value, builtins::OTLP_PROTOCOLS.iter().copied())
                        {
                            diag = diag.with_help(format!("did you mean \"{s}\"?"));
                        }
                        self.diags.push(diag);
                    }
                }
                other => {
                    let mut diag = Diagnostic::new(
                        Code::UnknownOption,
                        d.name.span,
                        format!("unknown service directive `{other}`"),
                    )
                    .with_note(
                        "a service block takes `run`, `env`, `cwd`, `ready`, `stop` and `otlp`",
                    );
                    if let Some(s) =
                        did_you_mean(other, builtins::SERVICE_DIRECTIVES.iter().copied())
                    {
                        diag = diag.with_help(format!("did you mean `{s}`?")).with_fix(
                            format!("replace with `{s}`"),
                            vec![(d.name.span, s.to_string())],
                        );
                    }
                    self.diags.push(diag);
                }
            }
            if name != "ready"
                && name != "stop"
                && let Some(w) = &d.within
            {
                self.diags.push(Diagnostic::new(
                    Code::InvalidArguments,
                    w.span,
                    "`within` belongs to `ready` and `stop`",
                ));
            }
        }
        if run.is_none() {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidArguments,
                    s.name.span,
                    format!("service `{}` has no `run` command", s.name.name),
                )
                .with_help("add `run \"program\" [\"arg\", …]`"),
            );
        }
        // `run` twice is reported above, with its own message.
        for name in ["cwd", "ready", "stop", "otlp"] {
            let mut seen = s.body.iter().filter(|d| !d.error && d.name.name == name);
            let Some(first) = seen.next() else { continue };
            for again in seen {
                self.diags.push(
                    Diagnostic::new(
                        Code::Duplicate,
                        again.name.span,
                        format!("`{name}` is given twice"),
                    )
                    .with_secondary(first.name.span, "first given here"),
                );
            }
        }
    }

    pub(super) fn push_local(&mut self, sc: &mut Scope, name: &ast::Ident, ty: Ty) {
        if let Some(prev) = sc.locals.iter().find(|l| l.name == name.name) {
            self.diags.push(
                Diagnostic::new(
                    Code::Duplicate,
                    name.span,
                    format!("`{}` is already defined here", name.name),
                )
                .with_secondary(prev.span, "first defined here"),
            );
        }
        sc.locals.push(Local {
            name: name.name.clone(),
            ty,
            span: name.span,
            used: Cell::new(false),
            lint_unused: true,
        });
    }

    pub(super) fn report_unused_locals(&mut self, locals: &[Local], what: &str) {
        for l in locals {
            if l.lint_unused && !l.used.get() && !l.name.starts_with('_') {
                self.diags.push(
                    Diagnostic::new(
                        Code::UnusedLet,
                        l.span,
                        format!("{what} `{}` is never used", l.name),
                    )
                    .with_help("remove it, or prefix the name with `_` to keep it"),
                );
            }
        }
    }
}
