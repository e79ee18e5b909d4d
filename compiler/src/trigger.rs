//! The trigger vocabulary, defined once: the kinds, their options (name, shape, accepted types,
//! documentation), and the typed [`TriggerCall`] a checked `trigger` statement becomes.
//!
//! The checker validates a trigger against [`KINDS`] and, when it is well formed, builds its
//! [`TriggerCall`] with [`TriggerCall::from_checked`] ("parse, don't validate"): a typed value whose
//! leaves are expressions ([`Leaf`]), evaluated by the runtime in the step's scope. The plan
//! carries the call; the runtime never reads the syntax tree. Completion and hover read the same
//! table. Adding an option is: one row in the kind's table, one field in its call struct, one arm
//! in its builder below — and its use in the runtime's trigger.

use crate::ast::{self, ExprKind};
use crate::builtins::Ty;
use crate::eval::{self, EvalError, Host, Scope};
use crate::span::Span;
use crate::value::Value;

/// Values an option accepts: anything JSON can hold.
const ANY_JSON: &[Ty] = &[
    Ty::Object,
    Ty::List,
    Ty::Str,
    Ty::Int,
    Ty::Float,
    Ty::Bool,
    Ty::Null,
];

/// One option line of a trigger block.
#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    /// The option's name.
    pub name: &'static str,
    /// Written `NAME "key" = value` (repeatable) rather than `NAME value`.
    pub keyed: bool,
    /// Types accepted for the value (for keyed options: the value after `=`).
    pub types: &'static [Ty],
    /// One line for completion and hover.
    pub doc: &'static str,
}

/// One trigger kind.
#[derive(Clone, Copy, Debug)]
pub struct KindSpec {
    /// `http`, `grpc`, `exec`, `trace`.
    pub name: &'static str,
    /// How it is written, for messages.
    pub usage: &'static str,
    /// One line for completion and hover.
    pub doc: &'static str,
    /// The options its block takes.
    pub options: &'static [OptionSpec],
}

const fn opt(
    name: &'static str,
    keyed: bool,
    types: &'static [Ty],
    doc: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        keyed,
        types,
        doc,
    }
}

const KEY_VALUE: &[Ty] = &[Ty::Str, Ty::Int, Ty::Float, Ty::Bool];

/// Every trigger kind, with its options.
pub const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "http",
        usage: "trigger http METHOD \"url\" { … }",
        doc: "send an HTTP request with a fresh `traceparent`",
        options: &[
            opt(
                "header",
                true,
                KEY_VALUE,
                "a request header: `header \"name\" = value`",
            ),
            opt(
                "query",
                true,
                KEY_VALUE,
                "a query parameter: `query \"name\" = value`",
            ),
            opt(
                "json",
                false,
                ANY_JSON,
                "a JSON body (sets `content-type: application/json`)",
            ),
            opt("body", false, &[Ty::Str], "a raw body"),
            opt(
                "timeout",
                false,
                &[Ty::Duration],
                "how long to wait for the response",
            ),
            opt("insecure", false, &[Ty::Bool], "accept any TLS certificate"),
            opt(
                "ca_cert",
                false,
                &[Ty::Str],
                "a PEM file of extra trusted CAs",
            ),
            opt(
                "follow_redirects",
                false,
                &[Ty::Bool],
                "follow up to 10 redirects; the response is the last one (default: not followed)",
            ),
        ],
    },
    KindSpec {
        name: "grpc",
        usage: "trigger grpc \"package.Service/Method\" at \"http://host:port\" { … }",
        doc: "call a unary gRPC method (JSON message, server reflection or `proto` files)",
        options: &[
            opt(
                "proto",
                false,
                &[Ty::Str],
                "a `.proto` file describing the service",
            ),
            opt(
                "import_path",
                false,
                &[Ty::Str],
                "a directory `proto` imports are found in",
            ),
            opt("message", false, ANY_JSON, "the request message, as JSON"),
            opt(
                "metadata",
                true,
                KEY_VALUE,
                "request metadata: `metadata \"key\" = value`",
            ),
            opt(
                "timeout",
                false,
                &[Ty::Duration],
                "how long to wait for the response",
            ),
            opt("insecure", false, &[Ty::Bool], "accept any TLS certificate"),
        ],
    },
    KindSpec {
        name: "exec",
        usage: "trigger exec \"program\" [\"arg\", …] { … }",
        doc: "run a process with `TRACEPARENT` in its environment (never through a shell)",
        options: &[
            opt(
                "env",
                true,
                KEY_VALUE,
                "an environment variable: `env NAME = value`",
            ),
            opt("cwd", false, &[Ty::Str], "the working directory"),
            opt(
                "stdin",
                false,
                &[Ty::Str],
                "text written to its standard input",
            ),
            opt("timeout", false, &[Ty::Duration], "how long it may run"),
        ],
    },
    KindSpec {
        name: "trace",
        usage: "trigger trace \"<32 hex digits>\"",
        doc: "test an existing trace by id (nothing is sent)",
        options: &[],
    },
];

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.name == name)
}

/// The names of every kind.
pub fn kind_names() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|k| k.name)
}

/// An expression of the suite, evaluated by the runtime in the scope it was written in.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf(ast::Expr);

impl Leaf {
    /// Wraps a checked expression.
    pub fn new(expr: &ast::Expr) -> Leaf {
        Leaf(expr.clone())
    }

    /// Where it is written.
    pub fn span(&self) -> Span {
        self.0.span
    }

    /// Its value in `scope`.
    pub fn eval(&self, scope: &dyn Scope, host: &dyn Host) -> Result<Value, EvalError> {
        eval::evaluate_value(&self.0, scope, host)
    }

    /// Its value, required to be a string (`what` names it in the error).
    pub fn string(&self, scope: &dyn Scope, host: &dyn Host, what: &str) -> Result<String, String> {
        match self.eval(scope, host).map_err(|e| format!("{what}: {e}"))? {
            Value::Str(s) => Ok(s.to_string()),
            other => Err(format!(
                "{what} must be a string, found {}",
                other.type_name()
            )),
        }
    }

    /// Its value, required to be a duration.
    pub fn duration(
        &self,
        scope: &dyn Scope,
        host: &dyn Host,
        what: &str,
    ) -> Result<std::time::Duration, String> {
        match self.eval(scope, host).map_err(|e| format!("{what}: {e}"))? {
            Value::Duration(ns) => Ok(std::time::Duration::from_nanos(ns)),
            other => Err(format!(
                "{what} must be a duration, found {}",
                other.type_name()
            )),
        }
    }
}

/// The key of a keyed option.
#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    /// A bare name (`env NAME = …`): the key itself.
    Name(String),
    /// An expression giving the key.
    Expr(Leaf),
}

/// `NAME key = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    /// The key.
    pub key: Key,
    /// The value.
    pub value: Leaf,
}

impl Pair {
    /// Key and value as text (strings as they are, other values as written).
    pub fn text(
        &self,
        scope: &dyn Scope,
        host: &dyn Host,
        what: &str,
    ) -> Result<(String, String), String> {
        let key = match &self.key {
            Key::Name(n) => n.clone(),
            Key::Expr(e) => text(
                &e.eval(scope, host)
                    .map_err(|err| format!("{what}: {err}"))?,
            ),
        };
        let value = text(
            &self
                .value
                .eval(scope, host)
                .map_err(|err| format!("{what}: {err}"))?,
        );
        Ok((key, value))
    }
}

impl Pair {
    /// The pair of a checked keyed directive (`header "k" = v`; for `env`, a bare name is the
    /// key itself). `None` when it is not well formed.
    pub fn from_checked(d: &ast::Directive) -> Option<Pair> {
        let key = match d.args.first()? {
            ast::Expr {
                kind: ExprKind::Path(p),
                ..
            } if d.name.name == "env" && p.segments.len() == 1 => {
                Key::Name(p.segments[0].name.clone())
            }
            k => Key::Expr(Leaf::new(k)),
        };
        Some(Pair {
            key,
            value: Leaf::new(d.value.as_ref()?),
        })
    }
}

/// The text of a value as a header, query or env value: strings as they are, others as written.
pub fn text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// The body of an HTTP request.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// `json VALUE`.
    Json(Leaf),
    /// `body "text"`.
    Raw(Leaf),
}

/// `trigger http METHOD "url" { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpCall {
    /// The method, in capitals.
    pub method: String,
    /// The URL.
    pub url: Leaf,
    /// `header` lines, in order.
    pub headers: Vec<Pair>,
    /// `query` lines, in order.
    pub query: Vec<Pair>,
    /// `json` or `body` (the last one written).
    pub body: Option<Body>,
    /// `timeout`.
    pub timeout: Option<Leaf>,
    /// `insecure`.
    pub insecure: Option<Leaf>,
    /// `ca_cert`.
    pub ca_cert: Option<Leaf>,
    /// `follow_redirects`.
    pub follow_redirects: Option<Leaf>,
}

/// `trigger grpc "pkg.Service/Method" at "…" { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct GrpcCall {
    /// `package.Service/Method`.
    pub method: Leaf,
    /// The server address.
    pub address: Leaf,
    /// `proto` files.
    pub proto: Vec<Leaf>,
    /// `import_path` directories.
    pub import_path: Vec<Leaf>,
    /// `message`.
    pub message: Option<Leaf>,
    /// `metadata` lines.
    pub metadata: Vec<Pair>,
    /// `timeout`.
    pub timeout: Option<Leaf>,
    /// `insecure`.
    pub insecure: Option<Leaf>,
}

/// `trigger exec "program" [args] { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecCall {
    /// The program.
    pub program: Leaf,
    /// The argument list.
    pub args: Option<Leaf>,
    /// `env` lines.
    pub env: Vec<Pair>,
    /// `cwd`.
    pub cwd: Option<Leaf>,
    /// `stdin`.
    pub stdin: Option<Leaf>,
    /// `timeout`.
    pub timeout: Option<Leaf>,
}

/// A checked trigger, ready to evaluate and fire.
#[derive(Clone, Debug, PartialEq)]
pub enum TriggerCall {
    /// An HTTP request.
    Http(HttpCall),
    /// A unary gRPC call.
    Grpc(GrpcCall),
    /// A process.
    Exec(ExecCall),
    /// An existing trace, by id.
    Trace {
        /// The trace id.
        id: Leaf,
    },
}

impl TriggerCall {
    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            TriggerCall::Http(_) => "http",
            TriggerCall::Grpc(_) => "grpc",
            TriggerCall::Exec(_) => "exec",
            TriggerCall::Trace { .. } => "trace",
        }
    }

    /// True when firing it reaches a system (everything but `trigger trace`).
    pub fn is_live(&self) -> bool {
        !matches!(self, TriggerCall::Trace { .. })
    }

    /// The leaves that say what is fired, for `tbt plan`: the method or program and its target.
    pub fn target(&self) -> (String, Option<&Leaf>) {
        match self {
            TriggerCall::Http(h) => (h.method.clone(), Some(&h.url)),
            TriggerCall::Grpc(g) => (String::new(), Some(&g.method)),
            TriggerCall::Exec(e) => (String::new(), Some(&e.program)),
            TriggerCall::Trace { id } => (String::new(), Some(id)),
        }
    }

    /// The typed call of a trigger the checker accepted (no error diagnostic on it). `None` when
    /// the statement is not well formed — which a checked program without errors never has.
    pub fn from_checked(t: &ast::Trigger) -> Option<TriggerCall> {
        let opts = || t.options.iter().filter(|d| !d.error);
        let arg = |d: &ast::Directive| d.args.first().map(Leaf::new);
        let pair = Pair::from_checked;
        Some(match t.kind.name.as_str() {
            "http" => {
                let method = match t.args.first().map(|a| &a.kind) {
                    Some(ExprKind::Path(p)) => p.dotted(),
                    _ => return None,
                };
                let mut call = HttpCall {
                    method,
                    url: Leaf::new(t.args.get(1)?),
                    headers: Vec::new(),
                    query: Vec::new(),
                    body: None,
                    timeout: None,
                    insecure: None,
                    ca_cert: None,
                    follow_redirects: None,
                };
                for d in opts() {
                    match d.name.name.as_str() {
                        "header" => call.headers.push(pair(d)?),
                        "query" => call.query.push(pair(d)?),
                        "json" => call.body = Some(Body::Json(arg(d)?)),
                        "body" => call.body = Some(Body::Raw(arg(d)?)),
                        "timeout" => call.timeout = arg(d),
                        "insecure" => call.insecure = arg(d),
                        "ca_cert" => call.ca_cert = arg(d),
                        "follow_redirects" => call.follow_redirects = arg(d),
                        _ => return None,
                    }
                }
                TriggerCall::Http(call)
            }
            "grpc" => {
                let mut call = GrpcCall {
                    method: Leaf::new(t.args.first()?),
                    address: Leaf::new(t.at.as_ref()?),
                    proto: Vec::new(),
                    import_path: Vec::new(),
                    message: None,
                    metadata: Vec::new(),
                    timeout: None,
                    insecure: None,
                };
                for d in opts() {
                    match d.name.name.as_str() {
                        "proto" => call.proto.push(arg(d)?),
                        "import_path" => call.import_path.push(arg(d)?),
                        "message" => call.message = arg(d),
                        "metadata" => call.metadata.push(pair(d)?),
                        "timeout" => call.timeout = arg(d),
                        "insecure" => call.insecure = arg(d),
                        _ => return None,
                    }
                }
                TriggerCall::Grpc(call)
            }
            "exec" => {
                let mut call = ExecCall {
                    program: Leaf::new(t.args.first()?),
                    args: t.args.get(1).map(Leaf::new),
                    env: Vec::new(),
                    cwd: None,
                    stdin: None,
                    timeout: None,
                };
                for d in opts() {
                    match d.name.name.as_str() {
                        "env" => call.env.push(pair(d)?),
                        "cwd" => call.cwd = arg(d),
                        "stdin" => call.stdin = arg(d),
                        "timeout" => call.timeout = arg(d),
                        _ => return None,
                    }
                }
                TriggerCall::Exec(call)
            }
            "trace" => TriggerCall::Trace {
                id: Leaf::new(t.args.first()?),
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_the_builders_read_is_in_the_table() {
        // Each kind's builder must accept exactly the table's options: build a trigger with every
        // option of its kind and check it is not refused.
        for k in KINDS.iter().filter(|k| !k.options.is_empty()) {
            let opts: String = k
                .options
                .iter()
                .map(|o| {
                    if o.keyed {
                        format!("    {} \"k\" = \"v\"\n", o.name)
                    } else if o.types.contains(&Ty::Duration) {
                        format!("    {} 1s\n", o.name)
                    } else if o.types.contains(&Ty::Bool) {
                        format!("    {} true\n", o.name)
                    } else {
                        format!("    {} \"x\"\n", o.name)
                    }
                })
                .collect();
            let head = match k.name {
                "http" => "trigger http GET \"http://127.0.0.1:1/\"".to_string(),
                "grpc" => "trigger grpc \"p.S/M\" at \"http://127.0.0.1:1\"".to_string(),
                _ => "trigger exec \"true\"".to_string(),
            };
            let src = format!("test t {{\n  {head} {{\n{opts}  }}\n}}\n");
            let parsed = crate::parser::parse(crate::span::FileId(0), &src);
            assert!(
                parsed.diagnostics.is_empty(),
                "{src}: {:?}",
                parsed.diagnostics
            );
            let t = parsed
                .file
                .items
                .iter()
                .find_map(|i| match &i.kind {
                    ast::ItemKind::Test(t) => Some(t),
                    _ => None,
                })
                .expect("a test");
            let trigger = t
                .body
                .iter()
                .find_map(|s| match &s.kind {
                    ast::StmtKind::Trigger(tr) => Some(tr),
                    _ => None,
                })
                .expect("a trigger");
            assert_eq!(
                trigger.options.len(),
                k.options.len(),
                "{src}: every option parsed"
            );
            assert!(
                TriggerCall::from_checked(trigger).is_some(),
                "`trigger {}`: the builder refuses an option of its table:\n{src}",
                k.name
            );
        }
    }
}
