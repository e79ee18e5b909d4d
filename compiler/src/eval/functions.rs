//! The standard functions: one table ([`functions`]) that the evaluator, the checker and the
//! language server share, so a function's arity, documentation and example live in one place.

use std::sync::Arc;

use crate::value::Value;

use super::EvalError;
use super::ops::{self, short};
use super::program::{Env, Node, response_header};

/// Signature and documentation of a standard function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionSig {
    /// Name as called.
    pub name: &'static str,
    /// Fewest arguments.
    pub min_args: usize,
    /// Most arguments.
    pub max_args: usize,
    /// Where it may be used: `any`, `span` (predicates), `block` (aggregates), `response`.
    pub context: &'static str,
    /// One-line documentation.
    pub doc: &'static str,
    /// An example in `.tbt` syntax.
    pub example: &'static str,
}

const FUNCTIONS: &[FunctionSig] = &[
    FunctionSig {
        name: "env",
        min_args: 1,
        max_args: 1,
        context: "any",
        doc: "An environment variable of the runner; missing when unset (use `??` for a default).",
        example: r#"env("SHOP_URL") ?? "http://127.0.0.1:8080""#,
    },
    FunctionSig {
        name: "uuid",
        min_args: 0,
        max_args: 0,
        context: "any",
        doc: "A fresh random UUID (v4) string.",
        example: r#"header "idempotency-key" = uuid()"#,
    },
    FunctionSig {
        name: "now",
        min_args: 0,
        max_args: 0,
        context: "any",
        doc: "The current time as Unix nanoseconds (int).",
        example: "start > now() - 60000000000",
    },
    FunctionSig {
        name: "json",
        min_args: 1,
        max_args: 2,
        context: "any",
        doc: "JSONPath (RFC 9535) query: `json(path)` on the response body (stdout for exec), `json(value, path)` on a JSON string or value. One match gives the value, several a list, none is missing.",
        example: r#"json("$.items[0].sku") == "sku-42""#,
    },
    FunctionSig {
        name: "len",
        min_args: 1,
        max_args: 1,
        context: "any",
        doc: "Length of a string (characters), list, object, bytes or selection.",
        example: r#"len(json("$.items")) == 2"#,
    },
    FunctionSig {
        name: "int",
        min_args: 1,
        max_args: 1,
        context: "any",
        doc: "Converts a string, float (truncating), bool or duration (nanoseconds) to an int.",
        example: r#"int(http.response.status_code) == 200"#,
    },
    FunctionSig {
        name: "float",
        min_args: 1,
        max_args: 1,
        context: "any",
        doc: "Converts a string, int or duration (nanoseconds) to a float.",
        example: r#"float(payment.amount) == 99.99"#,
    },
    FunctionSig {
        name: "string",
        min_args: 1,
        max_args: 1,
        context: "any",
        doc: "Renders any value as a string (strings unchanged).",
        example: r#"string(http.response.status_code) == "200""#,
    },
    FunctionSig {
        name: "lower",
        min_args: 1,
        max_args: 1,
        context: "any",
        doc: "Lowercases a string.",
        example: r#"lower(http.request.method) == "get""#,
    },
    FunctionSig {
        name: "upper",
        min_args: 1,
        max_args: 1,
        context: "any",
        doc: "Uppercases a string.",
        example: r#"upper(db.system) == "SQLITE""#,
    },
    FunctionSig {
        name: "regex_group",
        min_args: 3,
        max_args: 3,
        context: "any",
        doc: "Capture group `n` (0 = whole match) of the first match of a regex; missing when it does not match.",
        example: r#"regex_group(url.path, "/orders/([0-9]+)", 1) == "42""#,
    },
    FunctionSig {
        name: "attr",
        min_args: 1,
        max_args: 1,
        context: "span",
        doc: "The span attribute (then resource attribute) with this exact key, even when it collides with a variable or a built-in field.",
        example: r#"attr("name") == "from-attribute""#,
    },
    FunctionSig {
        name: "contains",
        min_args: 2,
        max_args: 2,
        context: "any",
        doc: "Same as the `contains` operator: substring, list element or object subset.",
        example: r#"contains(db.query.text, "SELECT")"#,
    },
    FunctionSig {
        name: "header",
        min_args: 1,
        max_args: 1,
        context: "response",
        doc: "A response header (case-insensitive); several values are joined with `, `.",
        example: r#"header("content-type") contains "json""#,
    },
    FunctionSig {
        name: "metadata",
        min_args: 1,
        max_args: 1,
        context: "response",
        doc: "A gRPC response metadata entry.",
        example: r#"metadata("x-request-id") != """#,
    },
    FunctionSig {
        name: "count",
        min_args: 0,
        max_args: 0,
        context: "block",
        doc: "Number of selected spans (written without parentheses: `count`).",
        example: "count == 1",
    },
    FunctionSig {
        name: "sum",
        min_args: 1,
        max_args: 1,
        context: "block",
        doc: "Sum over the selected spans (ints, floats or durations).",
        example: "sum(duration) < 1s",
    },
    FunctionSig {
        name: "min",
        min_args: 1,
        max_args: 1,
        context: "block",
        doc: "Smallest value over the selected spans.",
        example: "min(duration) > 1ms",
    },
    FunctionSig {
        name: "max",
        min_args: 1,
        max_args: 1,
        context: "block",
        doc: "Largest value over the selected spans.",
        example: "max(duration) < 300ms",
    },
    FunctionSig {
        name: "avg",
        min_args: 1,
        max_args: 1,
        context: "block",
        doc: "Mean over the selected spans (durations stay durations, numbers become floats).",
        example: "avg(duration) < 50ms",
    },
];

/// The standard functions, for the checker (arity) and the language server (hover, completion).
pub fn functions() -> &'static [FunctionSig] {
    FUNCTIONS
}

pub(crate) fn lookup(name: &str) -> Option<&'static FunctionSig> {
    FUNCTIONS.iter().find(|f| f.name == name)
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

pub(crate) fn func_of(name: &str) -> Func {
    match name {
        "env" => Func::Env,
        "uuid" => Func::Uuid,
        "now" => Func::Now,
        "json" => Func::Json,
        "len" => Func::Len,
        "int" => Func::Int,
        "float" => Func::Float,
        "string" => Func::String,
        "lower" => Func::Lower,
        "upper" => Func::Upper,
        "regex_group" => Func::RegexGroup,
        "attr" => Func::Attr,
        "contains" => Func::Contains,
        "header" => Func::Header,
        "metadata" => Func::Metadata,
        "count" => Func::Count,
        "sum" => Func::Sum,
        "min" => Func::Min,
        "max" => Func::Max,
        _ => Func::Avg,
    }
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
