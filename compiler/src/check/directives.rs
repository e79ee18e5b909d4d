//! The `trigger` statement (`http`, `grpc`, `exec`, `trace`): its arguments, `at`, and its
//! options, plus the argument shapes shared with `service` directives (`NAME key = value`,
//! positional values, no `= value`).

use super::{Checker, Ctx, Scope, plain_string, single_name};
use crate::ast;
use crate::builtins::{self, Ty, did_you_mean};
use crate::diagnostic::{Code, Diagnostic};
use crate::trigger;

impl<'a> Checker<'a> {
    pub(super) fn check_trigger(&mut self, t: &ast::Trigger, sc: &mut Scope) {
        let kind = t.kind.name.as_str();
        let Some(spec) = trigger::kind(kind) else {
            let mut d = Diagnostic::new(
                Code::UnknownTrigger,
                t.kind.span,
                format!("unknown trigger `{kind}`"),
            )
            .with_note("triggers are `http`, `grpc`, `exec` and `trace`");
            if let Some(s) = did_you_mean(kind, trigger::kind_names()) {
                d = d.with_help(format!("did you mean `{s}`?")).with_fix(
                    format!("replace with `{s}`"),
                    vec![(t.kind.span, s.to_string())],
                );
            }
            self.diags.push(d);
            for a in &t.args {
                self.expr(a, sc, Ctx::Value);
            }
            return;
        };
        let usage = spec.usage;
        match kind {
            "http" => {
                if t.args.len() != 2 {
                    self.diags.push(
                        Diagnostic::new(
                            Code::InvalidArguments,
                            t.kind
                                .span
                                .to(t.args.last().map_or(t.kind.span, |a| a.span)),
                            "`trigger http` takes a method and a URL",
                        )
                        .with_help(format!("write `{usage}`")),
                    );
                }
                if let Some(m) = t.args.first() {
                    match single_name(m) {
                        Some(id) if builtins::HTTP_METHODS.contains(&id.name.as_str()) => {}
                        Some(id)
                            if builtins::HTTP_METHODS
                                .contains(&id.name.to_ascii_uppercase().as_str()) =>
                        {
                            let up = id.name.to_ascii_uppercase();
                            self.diags.push(
                                Diagnostic::new(
                                    Code::InvalidArguments,
                                    id.span,
                                    format!("HTTP methods are written in capitals: `{up}`"),
                                )
                                .with_fix(
                                    format!("replace with `{up}`"),
                                    vec![(id.span, up.clone())],
                                ),
                            );
                        }
                        _ => {
                            let mut d = Diagnostic::new(
                                Code::InvalidArguments,
                                m.span,
                                "expected an HTTP method",
                            )
                            .with_note(format!("methods: {}", builtins::HTTP_METHODS.join(", ")))
                            .with_help(format!("write `{usage}`"));
                            if let Some(s) = single_name(m).and_then(|id| {
                                did_you_mean(
                                    &id.name.to_ascii_uppercase(),
                                    builtins::HTTP_METHODS.iter().copied(),
                                )
                            }) {
                                d = d.with_help(format!("did you mean `{s}`?"));
                            }
                            self.diags.push(d);
                        }
                    }
                }
                if let Some(url) = t.args.get(1) {
                    let ty = self.expr(url, sc, Ctx::Value);
                    self.expect_ty(url, ty, &[Ty::Str], "the URL");
                }
                for a in t.args.iter().skip(2) {
                    self.expr(a, sc, Ctx::Value);
                }
            }
            "grpc" => {
                match t.args.as_slice() {
                    [m] => {
                        let ty = self.expr(m, sc, Ctx::Value);
                        self.expect_ty(m, ty, &[Ty::Str], "the method");
                        if let Some(s) = plain_string(m)
                            && !s.contains('/')
                        {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::InvalidArguments,
                                    m.span,
                                    "a gRPC method is written `package.Service/Method`",
                                )
                                .with_label("no `/` between service and method"),
                            );
                        }
                    }
                    _ => self.diags.push(
                        Diagnostic::new(
                            Code::InvalidArguments,
                            t.kind.span,
                            "`trigger grpc` takes one method name",
                        )
                        .with_help(format!("write `{usage}`")),
                    ),
                }
                match &t.at {
                    Some(at) => {
                        let ty = self.expr(at, sc, Ctx::Value);
                        self.expect_ty(at, ty, &[Ty::Str], "the address");
                    }
                    None => self.diags.push(
                        Diagnostic::new(
                            Code::InvalidArguments,
                            t.kind.span,
                            "`trigger grpc` needs the server address",
                        )
                        .with_help(format!("write `{usage}`")),
                    ),
                }
            }
            "exec" => {
                if t.args.is_empty() || t.args.len() > 2 {
                    self.diags.push(
                        Diagnostic::new(
                            Code::InvalidArguments,
                            t.kind.span,
                            "`trigger exec` takes a program and a list of arguments",
                        )
                        .with_help(format!("write `{usage}`"))
                        .with_note("arguments are never passed through a shell"),
                    );
                }
                if let Some(p) = t.args.first() {
                    let ty = self.expr(p, sc, Ctx::Value);
                    self.expect_ty(p, ty, &[Ty::Str], "the program");
                }
                if let Some(a) = t.args.get(1) {
                    let ty = self.expr(a, sc, Ctx::Value);
                    self.expect_ty(a, ty, &[Ty::List], "the arguments");
                }
            }
            _ => {
                match t.args.as_slice() {
                    [id] => {
                        let ty = self.expr(id, sc, Ctx::Value);
                        self.expect_ty(id, ty, &[Ty::Str], "the trace id");
                        if let Some(s) = plain_string(id)
                            && !(s.len() == 32
                                && s.bytes().all(|b| b.is_ascii_hexdigit())
                                && s.bytes().any(|b| b != b'0'))
                        {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::InvalidArguments,
                                    id.span,
                                    "a trace id is 32 hex digits, not all zero",
                                )
                                .with_label(format!("{} characters", s.chars().count())),
                            );
                        }
                    }
                    _ => self.diags.push(
                        Diagnostic::new(
                            Code::InvalidArguments,
                            t.kind.span,
                            "`trigger trace` takes one trace id",
                        )
                        .with_help(format!("write `{usage}`")),
                    ),
                }
                if let Some(span) = t.options_span {
                    self.diags.push(Diagnostic::new(
                        Code::InvalidArguments,
                        span,
                        "`trigger trace` takes no options",
                    ));
                }
            }
        }
        if kind != "grpc"
            && let Some(at) = &t.at
        {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidArguments,
                    at.span,
                    "only `trigger grpc` takes `at`",
                )
                .with_help(format!("write `{usage}`")),
            );
        }
        let allowed = spec.options;
        for d in &t.options {
            if d.error {
                continue;
            }
            let name = d.name.name.as_str();
            match allowed.iter().find(|o| o.name == name) {
                Some(o) if o.keyed => {
                    self.keyed(d, sc, "NAME \"key\" = value", name == "env", o.types)
                }
                Some(o) => {
                    if o.types == [Ty::Duration] {
                        for a in &d.args {
                            let t = self.expr(a, sc, Ctx::Value);
                            self.expect_duration(a, t);
                        }
                        if d.args.len() != 1 {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::InvalidArguments,
                                    d.span,
                                    format!("`{name}` takes one duration"),
                                )
                                .with_help(format!("e.g. `{name} 5s`")),
                            );
                        }
                        self.no_value(d);
                        continue;
                    }
                    self.positional(d, sc, o.types, 1, &format!("{name} VALUE"));
                    self.no_value(d);
                }
                None => {
                    let mut diag = Diagnostic::new(
                        Code::UnknownOption,
                        d.name.span,
                        format!("`{name}` is not an option of `trigger {kind}`"),
                    );
                    let names: Vec<&str> = allowed.iter().map(|o| o.name).collect();
                    if let Some(s) = did_you_mean(name, names.iter().copied()) {
                        diag = diag.with_help(format!("did you mean `{s}`?")).with_fix(
                            format!("replace with `{s}`"),
                            vec![(d.name.span, s.to_string())],
                        );
                    } else {
                        diag =
                            diag.with_note(format!("`trigger {kind}` takes: {}", names.join(", ")));
                    }
                    self.diags.push(diag);
                }
            }
            if let Some(w) = &d.within {
                self.diags.push(Diagnostic::new(
                    Code::InvalidArguments,
                    w.span,
                    "`within` belongs to `ready` in a service",
                ));
            }
        }
    }

    /// `NAME key = value` (header, query, metadata, env).
    pub(super) fn keyed(
        &mut self,
        d: &ast::Directive,
        sc: &mut Scope,
        usage: &str,
        env_key: bool,
        types: &[Ty],
    ) {
        match d.args.as_slice() {
            [k] => {
                let is_name = env_key && single_name(k).is_some();
                if !is_name {
                    let ty = self.expr(k, sc, Ctx::Value);
                    self.expect_ty(k, ty, &[Ty::Str], "the key");
                }
            }
            _ => self.diags.push(
                Diagnostic::new(
                    Code::InvalidArguments,
                    d.span,
                    format!("`{}` takes a key and a value", d.name.name),
                )
                .with_help(format!("write `{usage}`")),
            ),
        }
        match &d.value {
            Some(v) => {
                let ty = self.expr(v, sc, Ctx::Value);
                self.expect_ty(v, ty, types, "the value");
            }
            None => self.diags.push(
                Diagnostic::new(
                    Code::InvalidArguments,
                    d.span,
                    format!("`{}` needs `= value`", d.name.name),
                )
                .with_help(format!("write `{usage}`")),
            ),
        }
    }

    pub(super) fn positional(
        &mut self,
        d: &ast::Directive,
        sc: &mut Scope,
        types: &[Ty],
        min: usize,
        usage: &str,
    ) {
        let max = if d.name.name == "run" { 2 } else { 1 };
        if d.args.len() < min || d.args.len() > max {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidArguments,
                    d.span,
                    format!(
                        "`{}` takes {}",
                        d.name.name,
                        if max == 1 {
                            "one value".to_string()
                        } else {
                            format!("{min} to {max} values")
                        }
                    ),
                )
                .with_help(format!("write `{usage}`")),
            );
        }
        for (i, a) in d.args.iter().enumerate() {
            let ty = self.expr(a, sc, Ctx::Value);
            let expected: &[Ty] = if d.name.name == "run" {
                std::slice::from_ref(&types[i.min(types.len() - 1)])
            } else {
                types
            };
            self.expect_ty(a, ty, expected, "this value");
        }
    }

    pub(super) fn no_value(&mut self, d: &ast::Directive) {
        if let Some(v) = &d.value {
            self.diags.push(Diagnostic::new(
                Code::InvalidArguments,
                v.span,
                format!("`{}` takes no `= value`", d.name.name),
            ));
        }
    }
}
