//! Span attributes read by name in predicates, looked up in the OpenTelemetry semantic
//! conventions: deprecated attributes, and unknown ones with the closest known name.

use super::{Checker, Memo, memo};
use crate::ast::Path;
use crate::builtins::{self, Ty, did_you_mean};
use crate::diagnostic::{Code, Diagnostic};
use crate::semconv;
use std::sync::LazyLock;

/// The nearest semantic-convention attribute name to each unknown one.
static CLOSEST: Memo<Option<&'static str>> = LazyLock::new(Default::default);

impl<'a> Checker<'a> {
    pub(super) fn attribute(&mut self, p: &Path, dotted: &str) -> Ty {
        let reg = semconv::registry();
        if let Some(a) = reg.lookup(dotted) {
            if a.deprecated.is_some()
                && let Some(sev) = self.options.deprecated_attributes
            {
                let mut d = Diagnostic::new(
                    Code::DeprecatedAttribute,
                    p.span,
                    format!("`{dotted}` is deprecated in the OpenTelemetry semantic conventions"),
                )
                .with_severity(sev);
                match &a.renamed_to {
                    Some(new) => {
                        d = d
                            .with_label(format!("renamed to `{new}`"))
                            .with_help(format!("use `{new}`; to match spans of older SDKs too, write `{new} ?? attr(\"{dotted}\")`"))
                            .with_fix(format!("replace with `{new}`"), vec![(p.span, new.clone())]);
                    }
                    None => {
                        let why = match a.deprecated.as_deref() {
                            Some("obsoleted") => {
                                "it is obsolete and has no replacement".to_string()
                            }
                            Some("uncategorized") | None => {
                                "it has no direct replacement; see the semantic conventions"
                                    .to_string()
                            }
                            Some(other) => format!("reason: {other}"),
                        };
                        d = d.with_note(why).with_note(format!(
                            "write `attr(\"{dotted}\")` to read it without this warning"
                        ));
                    }
                }
                self.diags.push(d);
            }
            return Ty::from_semconv(a.value_type());
        }
        if let Some(sev) = self.options.unknown_attributes {
            if p.segments.len() == 1
                && let Some(s) = did_you_mean(dotted, builtins::SPAN_FIELDS.iter().map(|f| f.name))
            {
                self.diags.push(
                    Diagnostic::new(
                        Code::UnknownAttribute,
                        p.span,
                        format!("`{dotted}` is read as a span attribute"),
                    )
                    .with_severity(sev)
                    .with_help(format!("did you mean the span field `{s}`?"))
                    .with_fix(format!("replace with `{s}`"), vec![(p.span, s.to_string())]),
                );
                return Ty::Any;
            }
            let closest = memo(&CLOSEST, dotted, |d| {
                reg.closest(d).map(|a| a.name.as_str())
            });
            if let Some(c) = closest {
                self.diags.push(
                    Diagnostic::new(
                        Code::UnknownAttribute,
                        p.span,
                        format!("`{dotted}` is not an OpenTelemetry semantic-convention attribute"),
                    )
                    .with_severity(sev)
                    .with_label("unknown attribute")
                    .with_help(format!("did you mean `{c}`?"))
                    .with_note(format!(
                        "write `attr(\"{dotted}\")` if this custom attribute is intended"
                    ))
                    .with_fix(format!("replace with `{c}`"), vec![(p.span, c.to_string())]),
                );
            }
        }
        Ty::Any
    }
}
