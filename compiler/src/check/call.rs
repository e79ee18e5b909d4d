//! Calls: matchers of this module or of an import (with their arity), built-in functions (arity,
//! where they may be used, textual arguments), and the regular expressions and JSONPaths written
//! as literal arguments.

use super::{Checker, Ctx, Memo, Resolution, Scope, memo, plain_string};
use crate::ast::{Expr, ItemKind, Path};
use crate::builtins::{self, FnContext, Ty, did_you_mean};
use crate::diagnostic::{Code, Diagnostic};
use std::sync::LazyLock;

/// Each regular expression's compile error (`None`: it compiles). Compiling one costs
/// microseconds to milliseconds; a suite repeats the same few.
static REGEX_ERRORS: Memo<Option<String>> = LazyLock::new(Default::default);

impl<'a> Checker<'a> {
    pub(super) fn call(
        &mut self,
        e: &Expr,
        callee: &Path,
        args: &[Expr],
        sc: &mut Scope,
        ctx: Ctx,
    ) -> Ty {
        let program = self.program;
        let m = program.module(sc.module);
        let n = callee.segments.len();
        let head = callee.segments[0].name.as_str();
        let arg_ctx = if matches!(ctx, Ctx::Pred { .. }) {
            Ctx::Pred { block: false }
        } else {
            ctx
        };
        // A matcher of this module, or `namespace.matcher` of an import.
        let matcher = if n == 1 {
            m.matchers.get(head).map(|&i| (m.id, i, None))
        } else if n == 2 {
            match m.imports.get(head) {
                Some(&(target, imp)) => {
                    let tm = program.module(target);
                    self.refer(
                        callee.segments[0].span,
                        Resolution::Namespace {
                            module: m.id,
                            item: imp,
                        },
                    );
                    match tm.matchers.get(&callee.segments[1].name) {
                        Some(&i) => Some((target, i, Some(imp))),
                        None => {
                            self.used.insert((m.id, imp));
                            let mut d = Diagnostic::new(
                                Code::UnknownName,
                                callee.span,
                                format!(
                                    "`{}` has no matcher `{}`",
                                    tm.name, callee.segments[1].name
                                ),
                            );
                            if let Some(s) = did_you_mean(
                                &callee.segments[1].name,
                                tm.matchers.keys().map(String::as_str),
                            ) {
                                let span = callee.segments[1].span;
                                d = d.with_help(format!("did you mean `{head}.{s}`?")).with_fix(
                                    format!("replace with `{s}`"),
                                    vec![(span, s.to_string())],
                                );
                            } else {
                                let mut names: Vec<&str> =
                                    tm.matchers.keys().map(String::as_str).collect();
                                names.sort_unstable();
                                d = d.with_note(format!("its matchers: {}", names.join(", ")));
                            }
                            self.diags.push(d);
                            for a in args {
                                self.expr(a, sc, arg_ctx);
                            }
                            return Ty::Error;
                        }
                    }
                }
                None => None,
            }
        } else {
            None
        };
        if let Some((mid, item, imp)) = matcher {
            self.used.insert((mid, item));
            if let Some(last) = callee.segments.last() {
                self.refer(last.span, Resolution::Matcher { module: mid, item });
            }
            if let Some(imp) = imp {
                self.used.insert((m.id, imp));
            }
            if let ItemKind::Matcher(mt) = &program.module(mid).ast.items[item].kind {
                let required = mt.params.iter().filter(|p| p.default.is_none()).count();
                if args.len() < required || args.len() > mt.params.len() {
                    let want = if required == mt.params.len() {
                        format!("{required}")
                    } else {
                        format!("{required} to {}", mt.params.len())
                    };
                    let sig = mt
                        .params
                        .iter()
                        .map(|p| {
                            if p.default.is_some() {
                                format!("{}?", p.name.name)
                            } else {
                                p.name.name.clone()
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.diags.push(
                        Diagnostic::new(
                            Code::WrongArity,
                            e.span,
                            format!(
                                "matcher `{}` takes {want} argument{}, found {}",
                                callee.dotted(),
                                if want == "1" { "" } else { "s" },
                                args.len()
                            ),
                        )
                        .with_secondary(
                            mt.name.span,
                            format!("defined as `{}({sig})`", mt.name.name),
                        ),
                    );
                }
            }
            for a in args {
                let t = self.expr(a, sc, arg_ctx);
                if t == Ty::Spans {
                    self.diags.push(Diagnostic::new(
                        Code::TypeMismatch,
                        a.span,
                        "matcher arguments are values, not selections",
                    ));
                }
            }
            return Ty::Spans;
        }
        let Some(f) = (n == 1).then(|| builtins::function(head)).flatten() else {
            let dotted = callee.dotted();
            let mut names: Vec<String> = builtins::FUNCTIONS
                .iter()
                .map(|f| f.name.to_string())
                .collect();
            names.extend(m.matchers.keys().cloned());
            for (ns, (target, _)) in &m.imports {
                names.extend(
                    program
                        .module(*target)
                        .matchers
                        .keys()
                        .map(|k| format!("{ns}.{k}")),
                );
            }
            let mut d = Diagnostic::new(
                Code::UnknownFunction,
                callee.span,
                format!("unknown function `{dotted}`"),
            )
            .with_label("no function or matcher of this name");
            if let Some(s) = did_you_mean(&dotted, names.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean `{s}`?")).with_fix(
                    format!("replace with `{s}`"),
                    vec![(callee.span, s.to_string())],
                );
            } else if n == 2
                && !m.imports.contains_key(head)
                && crate::stdlib::module(&format!("std/{head}")).is_some()
            {
                d = d.with_help(format!(
                    "add `import \"std/{head}\"` at the top of the file"
                ));
            }
            self.diags.push(d);
            for a in args {
                self.expr(a, sc, arg_ctx);
            }
            return Ty::Error;
        };
        self.refer(callee.span, Resolution::Function(f.name));
        if args.len() < f.min_args || args.len() > f.max_args {
            let want = if f.min_args == f.max_args {
                format!("{}", f.min_args)
            } else {
                format!("{} to {}", f.min_args, f.max_args)
            };
            self.diags.push(
                Diagnostic::new(
                    Code::WrongArity,
                    e.span,
                    format!(
                        "`{}` takes {want} argument{}, found {}",
                        f.name,
                        if want == "1" { "" } else { "s" },
                        args.len()
                    ),
                )
                .with_note(format!("{}({})", f.name, f.params.join(", ")))
                .with_help(format!("e.g. `{}`", f.example)),
            );
        }
        match f.context {
            FnContext::Aggregate if ctx != (Ctx::Pred { block: true }) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::MisplacedAggregate,
                        callee.span,
                        format!("`{}` aggregates over the spans of an expectation", f.name),
                    )
                    .with_help(format!(
                        "use it inside `expect SEL {{ … }}`, e.g. `{}`",
                        f.example
                    )),
                );
            }
            FnContext::Response if ctx != Ctx::Response => {
                self.diags.push(
                    Diagnostic::new(
                        Code::UnknownFunction,
                        callee.span,
                        format!("`{}` reads the trigger's response", f.name),
                    )
                    .with_help("use it inside `expect response { … }`"),
                );
            }
            _ => {}
        }
        if f.name == "json" && args.len() == 1 && !matches!(ctx, Ctx::Response) {
            self.diags.push(
                Diagnostic::new(Code::InvalidArguments, e.span, "`json(path)` reads the response body")
                    .with_help("inside `expect response { … }`; elsewhere pass the JSON text: `json(attr(\"…\"), \"$.path\")`"),
            );
        }
        let inner_ctx = if f.context == FnContext::Aggregate {
            Ctx::Pred { block: false }
        } else {
            arg_ctx
        };
        for (i, a) in args.iter().enumerate() {
            let t = self.expr(a, sc, inner_ctx);
            let textual = matches!(
                (f.name, i),
                (
                    "env" | "header" | "metadata" | "attr" | "lower" | "upper",
                    0
                ) | ("regex_group", 0 | 1)
                    | ("json", _)
            );
            if textual
                && !(t.is_open() || t == Ty::Str)
                && !(f.name == "json" && i == 0 && args.len() == 2)
            {
                self.mismatch(a, t, "a string");
            }
        }
        if f.name == "json"
            && let Some(p) = args.last()
        {
            self.validate_jsonpath(p);
        }
        if f.name == "regex_group"
            && let Some(r) = args.get(1)
        {
            self.validate_regex(r);
        }
        f.returns
    }

    pub(super) fn validate_regex(&mut self, e: &Expr) {
        let error = |s: &str| {
            regex::Regex::new(s).err().map(|err| {
                let msg = err.to_string();
                msg.lines().last().unwrap_or("invalid").trim().to_string()
            })
        };
        if let Some(s) = plain_string(e)
            && let Some(last) = memo(&REGEX_ERRORS, &s, error)
        {
            self.diags.push(
                Diagnostic::new(Code::InvalidRegex, e.span, "invalid regular expression")
                    .with_label(last)
                    .with_note("the syntax is that of the Rust `regex` crate"),
            );
        }
    }

    fn validate_jsonpath(&mut self, e: &Expr) {
        if let Some(s) = plain_string(e)
            && let Err(err) = serde_json_path::JsonPath::parse(&s)
        {
            self.diags.push(
                Diagnostic::new(Code::InvalidJsonPath, e.span, "invalid JSONPath")
                    .with_label(err.to_string())
                    .with_help("JSONPath (RFC 9535) starts with `$`, e.g. `$.items[0].id`"),
            );
        }
    }
}
