//! Expressions: the type of each, operators and comparisons (with span-kind/status constants
//! and the semantic-convention literal check, TBT0306), and the type expectations that report a
//! value of the wrong type.

use super::{Checker, Ctx, Resolution, Scope};
use crate::ast::{BinaryOp, Expr, ExprKind, Lit, StrPart, UnaryOp};
use crate::builtins::{self, Ty, did_you_mean};
use crate::diagnostic::{Code, Diagnostic};
use crate::semconv;
use crate::span::Span;

impl<'a> Checker<'a> {
    pub(super) fn expr(&mut self, e: &Expr, sc: &mut Scope, ctx: Ctx) -> Ty {
        let t = self.expr_kind(e, sc, ctx);
        self.index.types.push((e.span, t));
        t
    }

    fn expr_kind(&mut self, e: &Expr, sc: &mut Scope, ctx: Ctx) -> Ty {
        match &e.kind {
            ExprKind::Lit(l) => match l {
                Lit::Int(_) => Ty::Int,
                Lit::Float(_) => Ty::Float,
                Lit::Duration(_) => Ty::Duration,
                Lit::Bool(_) => Ty::Bool,
                Lit::Null => Ty::Null,
                Lit::Str(s) => {
                    for p in &s.parts {
                        if let StrPart::Interp(ie) = p {
                            let t = self.expr(ie, sc, ctx);
                            if t == Ty::Spans {
                                self.diags.push(Diagnostic::new(
                                    Code::TypeMismatch,
                                    ie.span,
                                    "a selection of spans cannot be put into a string",
                                ));
                            }
                        }
                    }
                    Ty::Str
                }
            },
            ExprKind::Path(p) => self.path(p, sc, ctx),
            ExprKind::Call { callee, args } => self.call(e, callee, args, sc, ctx),
            ExprKind::List(items) => {
                for i in items {
                    self.expr(i, sc, ctx);
                }
                Ty::List
            }
            ExprKind::Object(entries) => {
                for (k, v) in entries {
                    for p in &k.parts {
                        if let StrPart::Interp(ie) = p {
                            self.expr(ie, sc, ctx);
                        }
                    }
                    self.expr(v, sc, ctx);
                }
                Ty::Object
            }
            ExprKind::Unary { op, expr } => {
                let t = self.expr(expr, sc, ctx);
                match op {
                    UnaryOp::Neg => {
                        if !(t.is_open() || t.is_number() || t == Ty::Duration) {
                            self.mismatch(expr, t, "a number");
                            return Ty::Error;
                        }
                        t
                    }
                    UnaryOp::Not => {
                        self.expect_bool(expr, t);
                        Ty::Bool
                    }
                }
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => self.binary(*op, *op_span, lhs, rhs, sc, ctx),
            ExprKind::Filter { base, preds } => {
                let t = self.expr(base, sc, ctx.outer());
                self.expect_spans(base, t, "a filter `[…]`");
                for p in preds {
                    let t = self.expr(p, sc, Ctx::Pred { block: false });
                    self.expect_bool(p, t);
                }
                Ty::Spans
            }
            ExprKind::Pseudo { base, class, arg } => {
                let t = self.expr(base, sc, ctx.outer());
                self.expect_spans(base, t, "a pseudo-class");
                match builtins::PSEUDO_CLASSES
                    .iter()
                    .find(|(n, _)| *n == class.name)
                {
                    Some((_, want)) => match (want, arg) {
                        (None, Some(a)) => self.diags.push(Diagnostic::new(
                            Code::InvalidArguments,
                            a.span,
                            format!("`:{}` takes no argument", class.name),
                        )),
                        (Some(_), None) => self.diags.push(
                            Diagnostic::new(
                                Code::InvalidArguments,
                                class.span,
                                format!("`:{}` needs an argument", class.name),
                            )
                            .with_help(if class.name == "nth" {
                                "e.g. `:nth(2)` (counting from 1)"
                            } else {
                                "e.g. `:not(span[status == error])`"
                            }),
                        ),
                        (Some(want), Some(a)) => {
                            let t = self.expr(a, sc, Ctx::Value);
                            if *want == Ty::Spans {
                                self.expect_spans(a, t, "this pseudo-class");
                            } else {
                                self.expect_ty(a, t, &[*want], "the argument");
                            }
                        }
                        (None, None) => {}
                    },
                    None => {
                        let mut d = Diagnostic::new(
                            Code::UnknownPseudoClass,
                            class.span,
                            format!("unknown pseudo-class `:{}`", class.name),
                        )
                        .with_note(
                            "pseudo-classes: :first :last :nth(n) :root :not(sel) :has(sel)",
                        );
                        if let Some(s) = did_you_mean(
                            &class.name,
                            builtins::PSEUDO_CLASSES.iter().map(|(n, _)| *n),
                        ) {
                            d = d.with_help(format!("did you mean `:{s}`?")).with_fix(
                                format!("replace with `{s}`"),
                                vec![(class.span, s.to_string())],
                            );
                        }
                        self.diags.push(d);
                    }
                }
                Ty::Spans
            }
            ExprKind::Paren(inner) => self.expr(inner, sc, ctx),
            ExprKind::Error => Ty::Error,
        }
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        op_span: Span,
        lhs: &Expr,
        rhs: &Expr,
        sc: &mut Scope,
        ctx: Ctx,
    ) -> Ty {
        // `kind == server`, `status != error`, `kind in [server, client]`: constants resolved by the
        // other side's type, so attributes called `error` stay reachable elsewhere.
        if matches!(op, BinaryOp::Eq | BinaryOp::Ne | BinaryOp::In) {
            let lt = self.expr(lhs, sc, ctx);
            if matches!(lt, Ty::SpanKind | Ty::SpanStatus) {
                let ok = match (&rhs.kind, op) {
                    (ExprKind::List(items), BinaryOp::In) => {
                        items.iter().all(|i| self.enum_const(i, lt, sc).is_some())
                    }
                    (_, BinaryOp::In) => false,
                    _ => self.enum_const(rhs, lt, sc).is_some(),
                };
                if !ok {
                    let rt = self.expr(rhs, sc, ctx);
                    if !(rt.is_open()
                        || rt == lt
                        || rt == Ty::Str
                        || (op == BinaryOp::In && rt == Ty::List))
                    {
                        self.mismatch_pair(op_span, lt, rt, lhs, rhs);
                    }
                }
                return Ty::Bool;
            }
            if let ExprKind::Path(rp) = &rhs.kind
                && matches!(ctx, Ctx::Pred { .. })
                && rp.segments.len() == 1
                && matches!(rp.segments[0].name.as_str(), "kind" | "status")
                && !self.is_variable(rp, sc)
                && self
                    .enum_const(
                        lhs,
                        if rp.segments[0].name == "kind" {
                            Ty::SpanKind
                        } else {
                            Ty::SpanStatus
                        },
                        sc,
                    )
                    .is_some()
            {
                return Ty::Bool;
            }
            let rt = self.expr(rhs, sc, ctx);
            if op != BinaryOp::In
                && matches!(ctx, Ctx::Pred { .. })
                && self.constant_comparison(lhs, rhs, sc)
            {
                return Ty::Bool;
            }
            return self.compare(op, op_span, lt, rt, lhs, rhs);
        }
        let lt = self.expr(lhs, sc, ctx);
        let rt = self.expr(rhs, sc, ctx);
        let open = lt.is_open() || rt.is_open();
        match op {
            BinaryOp::And | BinaryOp::Or => {
                self.expect_bool(lhs, lt);
                self.expect_bool(rhs, rt);
                Ty::Bool
            }
            BinaryOp::Union | BinaryOp::Descendant | BinaryOp::Linked => {
                let what = match op {
                    BinaryOp::Union => "`|` (union)",
                    BinaryOp::Descendant => "`>>` (descendants)",
                    _ => "`~>` (follows from a link)",
                };
                self.expect_spans(lhs, lt, what);
                self.expect_spans(rhs, rt, what);
                Ty::Spans
            }
            BinaryOp::Gt if lt == Ty::Spans || rt == Ty::Spans => {
                self.expect_spans(lhs, lt, "`>` (children)");
                self.expect_spans(rhs, rt, "`>` (children)");
                Ty::Spans
            }
            BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge
            | BinaryOp::Contains
            | BinaryOp::Matches => self.compare(op, op_span, lt, rt, lhs, rhs),
            BinaryOp::Coalesce => {
                if lt.is_open() || lt == Ty::Null {
                    rt
                } else {
                    if !(rt.is_open()
                        || rt == lt
                        || rt == Ty::Null
                        || (lt.is_number() && rt.is_number()))
                    {
                        self.mismatch_pair(op_span, lt, rt, lhs, rhs);
                    }
                    lt
                }
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => {
                if open {
                    return if lt == Ty::Duration || rt == Ty::Duration {
                        Ty::Duration
                    } else {
                        Ty::Any
                    };
                }
                match (op, lt, rt) {
                    (BinaryOp::Add, Ty::Str, Ty::Str) => Ty::Str,
                    (_, Ty::Int, Ty::Int) => Ty::Int,
                    (_, a, b) if a.is_number() && b.is_number() => Ty::Float,
                    (BinaryOp::Add | BinaryOp::Sub, Ty::Duration, Ty::Duration) => Ty::Duration,
                    (BinaryOp::Div, Ty::Duration, Ty::Duration) => Ty::Float,
                    (BinaryOp::Mul | BinaryOp::Div, Ty::Duration, b) if b.is_number() => {
                        Ty::Duration
                    }
                    (BinaryOp::Mul, a, Ty::Duration) if a.is_number() => Ty::Duration,
                    (_, Ty::Duration, b) | (_, b, Ty::Duration) if b.is_number() => {
                        self.duration_vs_number(op_span, lhs, rhs, lt);
                        Ty::Error
                    }
                    _ => {
                        self.mismatch_pair(op_span, lt, rt, lhs, rhs);
                        Ty::Error
                    }
                }
            }
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::In => Ty::Bool,
        }
    }

    fn compare(
        &mut self,
        op: BinaryOp,
        op_span: Span,
        lt: Ty,
        rt: Ty,
        lhs: &Expr,
        rhs: &Expr,
    ) -> Ty {
        if lt == Ty::Error || rt == Ty::Error {
            return Ty::Bool;
        }
        if lt == Ty::Spans || rt == Ty::Spans {
            let (bad, t) = if lt == Ty::Spans {
                (lhs, lt)
            } else {
                (rhs, rt)
            };
            self.diags.push(
                Diagnostic::new(Code::TypeMismatch, bad.span, format!("`{}` does not apply to a selection of spans", op.symbol()))
                    .with_label(format!("this is {}", t.name()))
                    .with_help("inside `expect SEL { … }`, predicates apply to each selected span; use `count` for the number of spans"),
            );
            return Ty::Bool;
        }
        let open = lt.is_open() || rt.is_open();
        match op {
            BinaryOp::Eq | BinaryOp::Ne => {
                let ok = open
                    || lt == rt
                    || lt == Ty::Null
                    || rt == Ty::Null
                    || (lt.is_number() && rt.is_number())
                    || (matches!(lt, Ty::SpanKind | Ty::SpanStatus) && rt == Ty::Str)
                    || (matches!(rt, Ty::SpanKind | Ty::SpanStatus) && lt == Ty::Str);
                if !ok {
                    if (lt == Ty::Duration && rt.is_number())
                        || (rt == Ty::Duration && lt.is_number())
                    {
                        self.duration_vs_number(op_span, lhs, rhs, lt);
                    } else {
                        self.mismatch_pair(op_span, lt, rt, lhs, rhs);
                    }
                }
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let ordered =
                    |t: Ty| t.is_number() || matches!(t, Ty::Duration | Ty::Str) || t.is_open();
                if (lt == Ty::Duration && rt.is_number()) || (rt == Ty::Duration && lt.is_number())
                {
                    self.duration_vs_number(op_span, lhs, rhs, lt);
                } else if !(ordered(lt) && ordered(rt))
                    || !(open || lt == rt || (lt.is_number() && rt.is_number()))
                {
                    self.mismatch_pair(op_span, lt, rt, lhs, rhs);
                }
            }
            BinaryOp::Contains => {
                if !(lt.is_open() || matches!(lt, Ty::Str | Ty::List | Ty::Object)) {
                    self.mismatch(lhs, lt, "a string, list or object");
                } else if lt == Ty::Str && !(rt.is_open() || rt == Ty::Str) {
                    self.mismatch(rhs, rt, "a string");
                }
            }
            BinaryOp::Matches => {
                if !(lt.is_open() || lt == Ty::Str) {
                    self.mismatch(lhs, lt, "a string");
                }
                if !(rt.is_open() || rt == Ty::Str) {
                    self.mismatch(rhs, rt, "a regular expression string");
                }
                self.validate_regex(rhs);
            }
            BinaryOp::In if !(rt.is_open() || matches!(rt, Ty::List | Ty::Object | Ty::Str)) => {
                self.mismatch(rhs, rt, "a list");
            }
            _ => {}
        }
        Ty::Bool
    }

    fn duration_vs_number(&mut self, op_span: Span, lhs: &Expr, rhs: &Expr, lt: Ty) {
        let (dur, num) = if lt == Ty::Duration {
            (lhs, rhs)
        } else {
            (rhs, lhs)
        };
        let mut d = Diagnostic::new(
            Code::DurationVsNumber,
            op_span,
            "a duration cannot be compared with a plain number",
        )
        .with_secondary(dur.span, "a duration")
        .with_secondary(num.span, "a number without a unit");
        if let ExprKind::Lit(Lit::Int(n)) = &num.kind {
            d = d
                .with_help(format!("give the number a unit, e.g. `{n}ms` or `{n}s`"))
                .with_fix(format!("write `{n}ms`"), vec![(num.span, format!("{n}ms"))]);
        } else {
            d = d.with_help(
                "durations are written with a unit: `10us`, `250ms`, `1.5s`, `2m`, `1h`",
            );
        }
        self.diags.push(d);
    }

    /// TBT0306: an attribute with a registry type compared with a literal it cannot equal.
    /// Returns true when the literal's type is wrong (reported as a warning instead of an error,
    /// since SDKs do not always follow the conventions).
    fn constant_comparison(&mut self, lhs: &Expr, rhs: &Expr, sc: &Scope) -> bool {
        for (a, lit) in [(lhs, rhs), (rhs, lhs)] {
            let (ExprKind::Path(p), ExprKind::Lit(l)) = (&a.kind, &lit.kind) else {
                continue;
            };
            if self.is_variable(p, sc) {
                continue;
            }
            let dotted = p.dotted();
            if builtins::SPAN_FIELDS.iter().any(|f| f.name == dotted) {
                continue;
            }
            let Some(attr) = semconv::registry().lookup(&dotted) else {
                continue;
            };
            if attr.is_template() {
                continue;
            }
            let want = attr.value_type();
            let (have, fits) = match l {
                Lit::Str(_) => ("a string", want == "string"),
                Lit::Int(_) => ("an int", want == "int" || want == "float"),
                Lit::Float(_) => ("a float", want == "float"),
                Lit::Bool(_) => ("a bool", want == "bool"),
                Lit::Null | Lit::Duration(_) => continue,
            };
            if matches!(want, "list" | "any") {
                continue;
            }
            if !fits {
                let mut d = Diagnostic::new(
                    Code::ConstantComparison,
                    lit.span,
                    format!(
                        "`{dotted}` is {} in the semantic conventions, this is {have}",
                        article(want)
                    ),
                )
                .with_secondary(p.span, format!("{want} attribute"));
                if let (Lit::Str(s), "int") = (l, want)
                    && let Some(n) = s.as_plain().and_then(|t| t.parse::<i64>().ok())
                {
                    d = d
                        .with_help(format!("compare with the number `{n}`"))
                        .with_fix(format!("write `{n}`"), vec![(lit.span, n.to_string())]);
                }
                self.diags.push(d);
                return true;
            }
            if attr.ty == "enum"
                && let Lit::Str(s) = l
                && let Some(text) = s.as_plain()
            {
                let values: Vec<&str> = attr.values.iter().filter_map(|v| v.as_str()).collect();
                // The conventions let instrumentations use values of their own for most enums
                // (`messaging.system = "shopq"`): only a near miss of a listed value, a typo
                // or the wrong case, is reported.
                let near = || {
                    values
                        .iter()
                        .copied()
                        .find(|v| v.eq_ignore_ascii_case(&text))
                        .or_else(|| did_you_mean(&text, values.iter().copied()))
                };
                if !values.contains(&text.as_str())
                    && let Some(c) = near()
                {
                    self.diags.push(
                        Diagnostic::new(
                            Code::ConstantComparison,
                            lit.span,
                            format!("`{text}` is not a value of `{dotted}`"),
                        )
                        .with_secondary(p.span, "an enum attribute")
                        .with_note(format!("its values: {}", values.join(", ")))
                        .with_help(format!("did you mean `\"{c}\"`?"))
                        .with_fix(
                            format!("replace with `\"{c}\"`"),
                            vec![(lit.span, format!("\"{c}\""))],
                        ),
                    );
                }
            }
        }
        false
    }

    fn enum_const(&mut self, e: &Expr, ty: Ty, sc: &Scope) -> Option<()> {
        let ExprKind::Path(p) = &e.kind else {
            return None;
        };
        if p.segments.len() != 1 || self.is_variable(p, sc) {
            return None;
        }
        let name = p.segments[0].name.as_str();
        let (set, what) = if ty == Ty::SpanKind {
            (builtins::SPAN_KINDS, "span kind")
        } else {
            (builtins::SPAN_STATUSES, "span status")
        };
        if set.contains(&name) {
            self.refer(p.span, Resolution::Constant);
        } else {
            let mut d = Diagnostic::new(
                Code::TypeMismatch,
                p.span,
                format!("`{name}` is not a {what}"),
            )
            .with_note(format!("{what}s: {}", set.join(", ")));
            if let Some(s) = did_you_mean(name, set.iter().copied()) {
                d = d
                    .with_help(format!("did you mean `{s}`?"))
                    .with_fix(format!("replace with `{s}`"), vec![(p.span, s.to_string())]);
            }
            self.diags.push(d);
        }
        Some(())
    }

    pub(super) fn expect_spans(&mut self, e: &Expr, t: Ty, what: &str) {
        if !(t == Ty::Spans || t == Ty::Error || t == Ty::Any) {
            self.diags.push(
                Diagnostic::new(Code::ExpectedSelector, e.span, format!("{what} needs a selection of spans"))
                    .with_label(format!("this is {}", t.name()))
                    .with_help("a selector is `span`, `span[…]`, a matcher call like `http.server(\"/orders\")`, or a combination with `>`, `>>`, `~>`, `|`"),
            );
        }
    }

    pub(super) fn expect_bool(&mut self, e: &Expr, t: Ty) {
        if !(t == Ty::Bool || t.is_open()) {
            let mut d = Diagnostic::new(
                Code::ExpectedBool,
                e.span,
                "a predicate must be true or false",
            )
            .with_label(format!("this is {}", t.name()));
            if t == Ty::Spans {
                d = d.with_help("to require that spans exist, write a separate `expect SEL`; to test a span's children, use `:has(…)`");
            } else {
                d = d.with_help("compare it: `== value`, `> 0`, `contains \"…\"`");
            }
            self.diags.push(d);
        }
    }

    pub(super) fn expect_duration(&mut self, e: &Expr, t: Ty) {
        if t.is_number() {
            let mut d = Diagnostic::new(
                Code::DurationVsNumber,
                e.span,
                "expected a duration, found a plain number",
            );
            if let ExprKind::Lit(Lit::Int(n)) = &e.kind {
                d = d
                    .with_help(format!("write `{n}s` or `{n}ms`"))
                    .with_fix(format!("write `{n}s`"), vec![(e.span, format!("{n}s"))]);
            }
            self.diags.push(d);
        } else {
            self.expect_ty(e, t, &[Ty::Duration], "a duration");
        }
    }

    pub(super) fn expect_ty(&mut self, e: &Expr, t: Ty, want: &[Ty], what: &str) {
        if t.is_open() || want.contains(&t) {
            return;
        }
        let names: Vec<&str> = want.iter().map(|w| w.name()).collect();
        self.diags.push(
            Diagnostic::new(
                Code::TypeMismatch,
                e.span,
                format!("{what} must be {}", names.join(" or ")),
            )
            .with_label(format!("this is {}", t.name())),
        );
    }

    pub(super) fn mismatch(&mut self, e: &Expr, t: Ty, want: &str) {
        if t.is_open() {
            return;
        }
        self.diags.push(
            Diagnostic::new(
                Code::TypeMismatch,
                e.span,
                format!("expected {want}, found {}", t.name()),
            )
            .with_label(format!("this is {}", t.name())),
        );
    }

    fn mismatch_pair(&mut self, op_span: Span, lt: Ty, rt: Ty, lhs: &Expr, rhs: &Expr) {
        if lt == Ty::Error || rt == Ty::Error {
            return;
        }
        let mut d = Diagnostic::new(
            Code::TypeMismatch,
            op_span,
            format!("cannot combine {} and {}", lt.name(), rt.name()),
        )
        .with_secondary(lhs.span, lt.name())
        .with_secondary(rhs.span, rt.name());
        if (lt == Ty::Str && rt.is_number()) || (rt == Ty::Str && lt.is_number()) {
            d = d.with_help("convert one side: `int(…)` or `string(…)`");
        }
        self.diags.push(d);
    }
}

fn article(ty: &str) -> String {
    if ty.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {ty}")
    } else {
        format!("a {ty}")
    }
}
