//! Name resolution for paths: locals, module `let`s, `namespace.let` of imports, captures
//! (`step.name`, `test.step.name`), then by context span fields and attributes, response fields
//! and trace fields; and the unknown-name diagnostic with its suggestions.

use super::{Checker, Ctx, Resolution, Scope};
use crate::ast::Path;
use crate::builtins::{self, Ty, did_you_mean};
use crate::deps::{Dep, DepKind};
use crate::diagnostic::{Code, Diagnostic};
use crate::program::CaptureSource;
use crate::semconv;
use crate::span::Span;

impl<'a> Checker<'a> {
    pub(super) fn path(&mut self, p: &Path, sc: &mut Scope, ctx: Ctx) -> Ty {
        let program = self.program;
        let head = p.segments[0].name.as_str();
        let n = p.segments.len();
        let m = program.module(sc.module);
        if n == 1 {
            if let Some(l) = sc.locals.iter().rev().find(|l| l.name == head) {
                l.used.set(true);
                let (ty, def) = (l.ty, l.span);
                self.refer(p.segments[0].span, Resolution::Local(def));
                return ty;
            }
            if let Some(&idx) = m.lets.get(head) {
                self.used.insert((m.id, idx));
                self.refer(
                    p.segments[0].span,
                    Resolution::Let {
                        module: m.id,
                        item: idx,
                    },
                );
                return self.let_type(m.id, idx);
            }
        }
        if n == 2
            && let Some(&(target, imp_idx)) = m.imports.get(head)
            && let Some(&idx) = program.module(target).lets.get(&p.segments[1].name)
        {
            self.used.insert((m.id, imp_idx));
            self.used.insert((target, idx));
            self.refer(
                p.segments[0].span,
                Resolution::Namespace {
                    module: m.id,
                    item: imp_idx,
                },
            );
            self.refer(
                p.segments[1].span,
                Resolution::Let {
                    module: target,
                    item: idx,
                },
            );
            return self.let_type(target, idx);
        }
        if let Some(t) = self.capture(p, sc, ctx) {
            return t;
        }
        match ctx {
            Ctx::Value => {
                if n == 1 && head == "span" {
                    return Ty::Spans;
                }
                self.unknown_name(p, sc, ctx);
                Ty::Error
            }
            Ctx::Pred { block } => {
                if n == 1 && head == "span" {
                    return Ty::Spans;
                }
                if n == 1 && head == "count" {
                    if !block {
                        self.diags.push(
                            Diagnostic::new(
                                Code::MisplacedAggregate,
                                p.span,
                                "`count` counts the spans of an expectation",
                            )
                            .with_label("not available in a per-span predicate")
                            .with_help("write it in the block: `expect SEL { count == 1 }`"),
                        );
                        return Ty::Error;
                    }
                    self.refer(p.span, Resolution::Aggregate);
                    return Ty::Int;
                }
                let dotted = p.dotted();
                if let Some(f) = builtins::SPAN_FIELDS.iter().find(|f| f.name == dotted) {
                    self.refer(p.span, Resolution::SpanField(f.name));
                    return f.ty;
                }
                self.refer(p.span, Resolution::Attribute);
                self.attribute(p, &dotted)
            }
            Ctx::Response | Ctx::Trace => {
                let (fields, what) = if ctx == Ctx::Response {
                    (builtins::RESPONSE_FIELDS, "response")
                } else {
                    (builtins::TRACE_FIELDS, "trace")
                };
                if n == 1
                    && let Some(f) = fields.iter().find(|f| f.name == head)
                {
                    if ctx == Ctx::Response
                        && let Some(kind) = self.current_trigger_kind(sc)
                        && !response_field_applies(kind, head)
                    {
                        self.diags.push(Diagnostic::new(
                            Code::UnknownName,
                            p.span,
                            format!("a `{kind}` trigger's response has no `{head}`"),
                        ));
                        return Ty::Error;
                    }
                    self.refer(
                        p.span,
                        if ctx == Ctx::Response {
                            Resolution::ResponseField(f.name)
                        } else {
                            Resolution::TraceField(f.name)
                        },
                    );
                    return f.ty;
                }
                let dotted = p.dotted();
                let mut d = Diagnostic::new(
                    Code::UnknownName,
                    p.span,
                    format!("unknown {what} field `{dotted}`"),
                )
                .with_note(format!(
                    "{what} fields: {}",
                    fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                ));
                if let Some(s) = did_you_mean(&dotted, fields.iter().map(|f| f.name)) {
                    d = d
                        .with_help(format!("did you mean `{s}`?"))
                        .with_fix(format!("replace with `{s}`"), vec![(p.span, s.to_string())]);
                }
                self.diags.push(d);
                Ty::Error
            }
        }
    }

    pub(super) fn is_variable(&self, p: &Path, sc: &Scope) -> bool {
        let head = &p.segments[0].name;
        p.segments.len() == 1
            && (sc.locals.iter().any(|l| &l.name == head)
                || self.program.module(sc.module).lets.contains_key(head))
    }

    fn current_trigger_kind(&self, sc: &Scope) -> Option<&'a str> {
        let t = self.trigger_of(sc.test?, sc.step?)?;
        Some(t.kind.name.as_str())
    }

    /// Resolves `step.capture`, `test.step.capture` and `test.capture` (inline test). Returns
    /// `None` when the path is not a capture reference at all.
    fn capture(&mut self, p: &Path, sc: &Scope, ctx: Ctx) -> Option<Ty> {
        let program = self.program;
        let ti = sc.test?;
        let si = sc.step?;
        let segs: Vec<&str> = p.segments.iter().map(|s| s.name.as_str()).collect();
        let test = &program.tests[ti];
        let mut candidates: Vec<String> = Vec::new();
        let mut reached = false;
        let resolve_in = |tt: usize,
                          rest: &[&str],
                          candidates: &mut Vec<String>,
                          reached: &mut bool|
         -> Option<(usize, usize, String)> {
            let t = &program.tests[tt];
            match rest {
                [step, cap] => {
                    let s = t
                        .steps
                        .iter()
                        .position(|s| s.name.as_deref() == Some(step))?;
                    *reached = true;
                    candidates.extend(t.steps[s].captures.iter().map(|c| c.name.clone()));
                    t.steps[s]
                        .captures
                        .iter()
                        .any(|c| c.name == *cap)
                        .then(|| (tt, s, cap.to_string()))
                }
                [cap] if t.steps.len() == 1 && t.steps[0].name.is_none() => {
                    *reached = true;
                    candidates.extend(t.steps[0].captures.iter().map(|c| c.name.clone()));
                    t.steps[0]
                        .captures
                        .iter()
                        .any(|c| c.name == *cap)
                        .then(|| (tt, 0, cap.to_string()))
                }
                _ => None,
            }
        };
        let mut found = None;
        let mut via_test = false;
        if test
            .steps
            .iter()
            .any(|s| s.name.as_deref() == Some(segs[0]))
        {
            found = resolve_in(ti, &segs, &mut candidates, &mut reached);
        }
        if found.is_none()
            && let Some(&tt) = program.test_index.get(segs[0])
        {
            found = resolve_in(tt, &segs[1..], &mut candidates, &mut reached);
            via_test = true;
        }
        if let Some((tt, ts, name)) = &found {
            let (tt, ts) = (*tt, *ts);
            let mut segments = p.segments.iter();
            if via_test && let Some(s) = segments.next() {
                self.refer(s.span, Resolution::Test(tt));
            }
            if p.segments.len() > usize::from(via_test) + 1
                && let Some(s) = segments.next()
            {
                self.refer(s.span, Resolution::Step { test: tt, step: ts });
            }
            if let Some(s) = p.segments.last() {
                self.refer(
                    s.span,
                    Resolution::Capture {
                        test: tt,
                        step: ts,
                        name: name.clone(),
                    },
                );
            }
        }
        // (producing test, its step, capture name).
        let target = found.as_ref().map(|(a, b, c)| (*a, *b, c.as_str()));
        match target {
            Some((tt, ts, name)) => {
                if tt == ti && ts >= si {
                    let when = if ts == si {
                        "in the step that defines it"
                    } else {
                        "before its step runs"
                    };
                    self.diags.push(
                        Diagnostic::new(Code::CaptureBeforeDefinition, p.span, format!("capture `{}` is used {when}", p.dotted()))
                            .with_secondary(program.tests[tt].steps[ts].captures.iter().find(|c| c.name == name).map_or(p.span, |c| c.span), "defined here")
                            .with_help("a capture is known only after its step's trigger ran; read it in a later step"),
                    );
                    return Some(Ty::Error);
                }
                let source = program.tests[tt].steps[ts]
                    .captures
                    .iter()
                    .find(|c| c.name == name)
                    .map_or(CaptureSource::Trace, |c| c.source);
                self.deps.push(Dep {
                    test: ti,
                    step: si,
                    phase: sc.phase,
                    kind: DepKind::Capture {
                        test: tt,
                        step: ts,
                        name: name.to_string(),
                        source,
                    },
                    span: p.span,
                });
                Some(Ty::Any)
            }
            None if reached => {
                let last = segs[segs.len() - 1];
                let close =
                    did_you_mean(last, candidates.iter().map(String::as_str)).map(str::to_string);
                // In a predicate, `db.system` may be an attribute even with a step called `db`:
                // only a near-miss of a real capture is reported there.
                if matches!(ctx, Ctx::Pred { .. }) && close.is_none() {
                    return None;
                }
                let mut d = Diagnostic::new(
                    Code::UnknownCapture,
                    p.span,
                    format!(
                        "no capture `{last}` in `{}`",
                        segs[..segs.len() - 1].join(".")
                    ),
                );
                match close {
                    Some(c) => d = d.with_help(format!("did you mean `{c}`?")),
                    None if candidates.is_empty() => d = d.with_note("that step captures nothing: add `let NAME = …` inside one of its `expect` blocks"),
                    None => d = d.with_note(format!("it captures: {}", candidates.join(", "))),
                }
                self.diags.push(d);
                Some(Ty::Error)
            }
            None => None,
        }
    }

    fn unknown_name(&mut self, p: &Path, sc: &Scope, ctx: Ctx) {
        let program = self.program;
        let m = program.module(sc.module);
        let dotted = p.dotted();
        let head = p.segments[0].name.as_str();
        let mut candidates: Vec<String> = sc.locals.iter().map(|l| l.name.clone()).collect();
        candidates.extend(m.lets.keys().cloned());
        // A matcher named without its call: `errors` for `errors()`. It counts as a use, so the
        // one mistake is not followed by "never used" warnings.
        let matcher = match p.segments.as_slice() {
            [one] => m.matchers.get(&one.name).map(|&i| (m.id, i, None)),
            [ns, one] => m.imports.get(&ns.name).and_then(|&(t, imp)| {
                let i = *program.module(t).matchers.get(&one.name)?;
                Some((t, i, Some(imp)))
            }),
            _ => None,
        };
        if let Some((module, item, imp)) = matcher {
            self.used.insert((module, item));
            if let Some(imp) = imp {
                self.used.insert((m.id, imp));
            }
            let end = Span {
                start: p.span.end,
                ..p.span
            };
            self.diags.push(
                Diagnostic::new(
                    Code::UnknownName,
                    p.span,
                    format!("matcher `{dotted}` is used by calling it: `{dotted}()`"),
                )
                .with_label("a matcher, not a value")
                .with_fix(format!("call it: `{dotted}()`"), vec![(end, "()".into())]),
            );
            return;
        }
        let mut d = if let Some(&(target, _)) = m.imports.get(head) {
            let tm = program.module(target);
            candidates = tm.lets.keys().map(|k| format!("{head}.{k}")).collect();
            Diagnostic::new(
                Code::UnknownName,
                p.span,
                format!(
                    "`{}` has no `let` named `{}`",
                    tm.name,
                    p.segments[1..]
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(".")
                ),
            )
        } else {
            Diagnostic::new(
                Code::UnknownName,
                p.span,
                format!("unknown name `{dotted}`"),
            )
            .with_label("not defined")
        };
        if let Some(ti) = sc.test {
            for (si, s) in program.tests[ti].steps.iter().enumerate() {
                if let Some(sn) = &s.name
                    && Some(si) < sc.step
                {
                    candidates.extend(s.captures.iter().map(|c| format!("{sn}.{}", c.name)));
                }
            }
        }
        if let Some(s) = did_you_mean(&dotted, candidates.iter().map(String::as_str)) {
            d = d
                .with_help(format!("did you mean `{s}`?"))
                .with_fix(format!("replace with `{s}`"), vec![(p.span, s.to_string())]);
        } else if ctx == Ctx::Value
            && (semconv::registry().lookup(&dotted).is_some()
                || builtins::SPAN_FIELDS.iter().any(|f| f.name == dotted))
        {
            d = d.with_help("span attributes and fields are read inside a filter `span[…]` or an `expect … { }` block");
        }
        self.diags.push(d);
    }
}

fn response_field_applies(kind: &str, field: &str) -> bool {
    match kind {
        "http" => matches!(field, "status" | "headers" | "body" | "duration"),
        "grpc" => matches!(field, "status" | "body" | "duration"),
        "exec" => matches!(field, "exit_code" | "stdout" | "stderr" | "duration"),
        _ => false,
    }
}
