//! The standard functions' implementations. Their signatures, documentation and examples are
//! one table, [`crate::builtins::FUNCTIONS`], that the evaluator, the checker and the language
//! server share.

use std::sync::Arc;

use crate::value::Value;

use super::EvalError;
use super::nodes::{Env, Node, response_header};
use super::ops::{self, short};

/// The signature table lives in [`crate::builtins::FUNCTIONS`], shared with the checker and the
/// language server; this module implements the functions.
pub(crate) fn lookup(name: &str) -> Option<&'static crate::builtins::Function> {
    crate::builtins::function(name)
}

/// Function identities after compilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Env,
    Uuid,
    Now,
    Json,
    Len,
    Int,
    Float,
    String,
    Lower,
    Upper,
    RegexGroup,
    Attr,
    Contains,
    Header,
    Metadata,
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

/// Each implemented function's name, once: the evaluator's side of
/// [`crate::builtins::FUNCTIONS`] (a test checks that every function there is here).
const IMPLEMENTED: &[(&str, Func)] = &[
    ("env", Func::Env),
    ("uuid", Func::Uuid),
    ("now", Func::Now),
    ("json", Func::Json),
    ("len", Func::Len),
    ("int", Func::Int),
    ("float", Func::Float),
    ("string", Func::String),
    ("lower", Func::Lower),
    ("upper", Func::Upper),
    ("regex_group", Func::RegexGroup),
    ("attr", Func::Attr),
    ("contains", Func::Contains),
    ("header", Func::Header),
    ("metadata", Func::Metadata),
    ("count", Func::Count),
    ("sum", Func::Sum),
    ("min", Func::Min),
    ("max", Func::Max),
    ("avg", Func::Avg),
];

/// The implementation of the function `name`, or `None` when the evaluator has none (an unknown
/// name is never taken for another function).
pub(crate) fn func_of(name: &str) -> Option<Func> {
    IMPLEMENTED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

fn type_err(f: &str, want: &str, v: &Value) -> EvalError {
    EvalError::Type(format!(
        "`{f}` needs {want}, found {} {}",
        v.type_name(),
        short(v)
    ))
}

/// Calls a function whose arguments are compiled nodes (arity already checked).
pub(crate) fn call(f: Func, args: &[Node], env: &Env<'_>) -> Result<Value, EvalError> {
    let arg = |i: usize| args[i].eval(env);
    Ok(match f {
        Func::Env => {
            let a = arg(0)?;
            let name = a.as_str().ok_or_else(|| type_err("env", "a string", &a))?;
            match env.host.env(name) {
                Some(v) => Value::str(&v),
                None => {
                    return Err(EvalError::Missing(Arc::from(format!(
                        "environment variable `{name}`"
                    ))));
                }
            }
        }
        Func::Uuid => Value::str(&env.host.uuid()),
        Func::Now => Value::Int(env.host.now_unix_nanos()),
        Func::Len => {
            let a = arg(0)?;
            Value::Int(match a.as_ref() {
                Value::Str(s) => s.chars().count(),
                Value::List(l) => l.len(),
                Value::Object(o) => o.len(),
                Value::Bytes(b) => b.len(),
                Value::Spans(s) => s.len(),
                other => {
                    return Err(type_err(
                        "len",
                        "a string, list, object, bytes or spans",
                        other,
                    ));
                }
            } as i64)
        }
        Func::Int => {
            let a = arg(0)?;
            match a.as_ref() {
                Value::Int(i) => Value::Int(*i),
                Value::Float(x) if x.is_finite() && x.abs() < 9.2e18 => Value::Int(*x as i64),
                Value::Bool(b) => Value::Int(*b as i64),
                Value::Duration(d) => Value::Int((*d).min(i64::MAX as u64) as i64),
                Value::Str(s) => Value::Int(s.trim().parse::<i64>().map_err(|_| {
                    EvalError::Type(format!("`int` cannot parse {:?} as an int", &**s))
                })?),
                other => return Err(type_err("int", "a string, number, bool or duration", other)),
            }
        }
        Func::Float => {
            let a = arg(0)?;
            match a.as_ref() {
                Value::Int(i) => Value::Float(*i as f64),
                Value::Float(x) => Value::Float(*x),
                Value::Duration(d) => Value::Float(*d as f64),
                Value::Str(s) => Value::Float(s.trim().parse::<f64>().map_err(|_| {
                    EvalError::Type(format!("`float` cannot parse {:?} as a float", &**s))
                })?),
                other => return Err(type_err("float", "a string, number or duration", other)),
            }
        }
        Func::String => {
            let a = arg(0)?;
            match a.as_ref() {
                Value::Str(s) => Value::Str(s.clone()),
                other => Value::str(&other.to_string()),
            }
        }
        Func::Lower | Func::Upper => {
            let a = arg(0)?;
            let s = a.as_str().ok_or_else(|| {
                type_err(
                    if f == Func::Lower { "lower" } else { "upper" },
                    "a string",
                    &a,
                )
            })?;
            Value::str(&if f == Func::Lower {
                s.to_lowercase()
            } else {
                s.to_uppercase()
            })
        }
        Func::Attr => {
            let a = arg(0)?;
            let key = a.as_str().ok_or_else(|| type_err("attr", "a string", &a))?;
            let i = env.span.ok_or_else(|| {
                EvalError::Msg("`attr` reads a span, but there is no current span here".into())
            })?;
            match env.trace.attr_by_name(i, key) {
                Some(v) => v.clone(),
                None => return Err(EvalError::Missing(Arc::from(format!("attribute `{key}`")))),
            }
        }
        Func::Contains => Value::Bool(ops::contains(&*arg(0)?, &*arg(1)?)?),
        Func::Header | Func::Metadata => {
            let a = arg(0)?;
            let key = a
                .as_str()
                .ok_or_else(|| type_err("header", "a string", &a))?;
            response_header(env.response, key)?
        }
        // Compiled into dedicated nodes.
        Func::Json
        | Func::RegexGroup
        | Func::Count
        | Func::Sum
        | Func::Min
        | Func::Max
        | Func::Avg => {
            return Err(EvalError::Msg(
                "internal: function compiled elsewhere".into(),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_has_no_implementation() {
        // It used to fall through to `avg`.
        assert_eq!(func_of("median"), None);
        assert_eq!(func_of(""), None);
        assert_eq!(func_of("avg"), Some(Func::Avg));
    }

    #[test]
    fn every_function_of_the_table_is_implemented_and_no_other() {
        for f in crate::builtins::FUNCTIONS {
            assert!(
                func_of(f.name).is_some(),
                "`{}` has no implementation",
                f.name
            );
        }
        // `count` is the aggregate keyword and `contains` the operator; neither is a function of
        // the table, so calls by those names stop at the table lookup before `func_of`.
        for (name, _) in IMPLEMENTED {
            assert!(
                lookup(name).is_some() || ["count", "contains"].contains(name),
                "`{name}` is not in builtins::FUNCTIONS"
            );
        }
    }
}
