//! From a checked `trigger` statement to a [`TriggerSpec`]: evaluate its arguments and options
//! in the step's scope. The checker has validated the shapes; what can still fail here is a value
//! (an unset environment variable without a default, a non-string URL), reported as a step error.

use crate::trigger::{ExecSpec, GrpcSpec, HttpBody, HttpSpec, TriggerSpec};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tbt_compiler::ast::{self, ExprKind};
use tbt_compiler::eval::{self, Host, Scope};
use tbt_compiler::value::Value;

/// The text of a value as a header, query or env value: strings as they are, others as written.
fn text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        other => other.to_string(),
    }
}

struct Ctx<'a> {
    scope: &'a dyn Scope,
    host: &'a dyn Host,
    base: &'a Path,
}

impl Ctx<'_> {
    fn value(&self, e: &ast::Expr, what: &str) -> Result<Value, String> {
        eval::evaluate_value(e, self.scope, self.host).map_err(|err| format!("{what}: {err}"))
    }

    fn string(&self, e: &ast::Expr, what: &str) -> Result<String, String> {
        match self.value(e, what)? {
            Value::Str(s) => Ok(s.to_string()),
            other => Err(format!(
                "{what} must be a string, found {}",
                other.type_name()
            )),
        }
    }

    fn path(&self, e: &ast::Expr, what: &str) -> Result<PathBuf, String> {
        let p = PathBuf::from(self.string(e, what)?);
        Ok(if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        })
    }

    fn duration(&self, e: &ast::Expr) -> Result<Duration, String> {
        match self.value(e, "timeout")? {
            Value::Duration(ns) => Ok(Duration::from_nanos(ns)),
            other => Err(format!(
                "timeout must be a duration, found {}",
                other.type_name()
            )),
        }
    }

    fn key(&self, d: &ast::Directive) -> Result<String, String> {
        match d.args.first() {
            // `env NAME = …`: a bare name is the key itself.
            Some(ast::Expr {
                kind: ExprKind::Path(p),
                ..
            }) if d.name.name == "env" && p.segments.len() == 1 => Ok(p.segments[0].name.clone()),
            Some(k) => Ok(text(&self.value(k, &d.name.name)?)),
            None => Err(format!("`{}` needs a key", d.name.name)),
        }
    }

    fn pair(&self, d: &ast::Directive) -> Result<(String, String), String> {
        let v = d
            .value
            .as_ref()
            .ok_or_else(|| format!("`{}` needs `= value`", d.name.name))?;
        Ok((self.key(d)?, text(&self.value(v, &d.name.name)?)))
    }

    fn arg<'d>(&self, d: &'d ast::Directive) -> Result<&'d ast::Expr, String> {
        d.args
            .first()
            .ok_or_else(|| format!("`{}` needs a value", d.name.name))
    }
}

/// Builds the spec of a live trigger (`http`, `grpc`, `exec`). `base` is the directory of the
/// suite file, against which relative file paths (`proto`, `cwd`, `ca_cert`) are resolved.
pub fn build(
    t: &ast::Trigger,
    scope: &dyn Scope,
    host: &dyn Host,
    base: &Path,
    default_timeout: Duration,
) -> Result<TriggerSpec, String> {
    let cx = Ctx { scope, host, base };
    match t.kind.name.as_str() {
        "http" => {
            let method = match t.args.first().map(|a| &a.kind) {
                Some(ExprKind::Path(p)) => p.dotted(),
                _ => return Err("`trigger http` needs a method".into()),
            };
            let url = cx.string(
                t.args.get(1).ok_or("`trigger http` needs a URL")?,
                "the URL",
            )?;
            let mut spec = HttpSpec {
                method,
                url,
                headers: Vec::new(),
                query: Vec::new(),
                body: None,
                timeout: default_timeout,
                insecure: false,
                ca_cert: None,
            };
            for d in &t.options {
                match d.name.name.as_str() {
                    "header" => spec.headers.push(cx.pair(d)?),
                    "query" => spec.query.push(cx.pair(d)?),
                    "json" => {
                        spec.body = Some(HttpBody::Json(serde_json::Value::from(
                            &cx.value(cx.arg(d)?, "json")?,
                        )))
                    }
                    "body" => spec.body = Some(HttpBody::Raw(text(&cx.value(cx.arg(d)?, "body")?))),
                    "timeout" => spec.timeout = cx.duration(cx.arg(d)?)?,
                    "insecure" => {
                        spec.insecure =
                            matches!(cx.value(cx.arg(d)?, "insecure")?, Value::Bool(true))
                    }
                    "ca_cert" => spec.ca_cert = Some(cx.path(cx.arg(d)?, "ca_cert")?),
                    other => return Err(format!("`{other}` is not an option of `trigger http`")),
                }
            }
            Ok(TriggerSpec::Http(spec))
        }
        "grpc" => {
            let method = cx.string(
                t.args.first().ok_or("`trigger grpc` needs a method")?,
                "the method",
            )?;
            let address = cx.string(
                t.at.as_ref()
                    .ok_or("`trigger grpc` needs `at \"http://host:port\"`")?,
                "the address",
            )?;
            let mut spec = GrpcSpec {
                method,
                address,
                proto_files: Vec::new(),
                import_paths: Vec::new(),
                message: serde_json::json!({}),
                metadata: Vec::new(),
                timeout: default_timeout,
            };
            for d in &t.options {
                match d.name.name.as_str() {
                    "proto" => spec.proto_files.push(cx.path(cx.arg(d)?, "proto")?),
                    "import_path" => spec.import_paths.push(cx.path(cx.arg(d)?, "import_path")?),
                    "message" => {
                        spec.message = serde_json::Value::from(&cx.value(cx.arg(d)?, "message")?)
                    }
                    "metadata" => spec.metadata.push(cx.pair(d)?),
                    "timeout" => spec.timeout = cx.duration(cx.arg(d)?)?,
                    "insecure" => {}
                    other => return Err(format!("`{other}` is not an option of `trigger grpc`")),
                }
            }
            Ok(TriggerSpec::Grpc(spec))
        }
        "exec" => {
            let program = cx.string(
                t.args.first().ok_or("`trigger exec` needs a program")?,
                "the program",
            )?;
            let args = match t.args.get(1) {
                Some(a) => match cx.value(a, "the arguments")? {
                    Value::List(items) => items.iter().map(text).collect(),
                    other => {
                        return Err(format!(
                            "the arguments must be a list, found {}",
                            other.type_name()
                        ));
                    }
                },
                None => Vec::new(),
            };
            let mut spec = ExecSpec {
                program,
                args,
                env: Vec::new(),
                cwd: None,
                stdin: None,
                timeout: default_timeout,
            };
            for d in &t.options {
                match d.name.name.as_str() {
                    "env" => spec.env.push(cx.pair(d)?),
                    "cwd" => spec.cwd = Some(cx.path(cx.arg(d)?, "cwd")?),
                    "stdin" => spec.stdin = Some(text(&cx.value(cx.arg(d)?, "stdin")?)),
                    "timeout" => spec.timeout = cx.duration(cx.arg(d)?)?,
                    other => return Err(format!("`{other}` is not an option of `trigger exec`")),
                }
            }
            Ok(TriggerSpec::Exec(spec))
        }
        other => Err(format!("`trigger {other}` is not a live trigger")),
    }
}

/// Builds the specs of every `service` of the root modules, evaluating directive values in the
/// module's scope. Relative `cwd` and relative program paths (`./server`) are resolved against
/// the suite file's directory; a bare program name is looked up on `PATH`.
pub fn services(
    c: &tbt_compiler::compile::Compilation,
    scopes: &tbt_compiler::bindings::Scopes<'_, '_>,
    host: &dyn Host,
) -> Result<Vec<crate::service::ServiceSpec>, String> {
    use crate::service::{Probe, Readiness, ServiceSpec};
    let mut out = Vec::new();
    for m in c
        .program
        .modules
        .iter()
        .filter(|m| m.origin == tbt_compiler::program::Origin::Root)
    {
        let file = &c.sources.get(m.file).name;
        let base = Path::new(file).parent().unwrap_or(Path::new("."));
        let scope = scopes.module(m.id);
        let cx = Ctx { scope, host, base };
        for &i in &m.services {
            let ast::ItemKind::Service(s) = &m.ast.items[i].kind else {
                continue;
            };
            let what = |e: String| format!("service `{}`: {e}", s.name.name);
            let mut spec = ServiceSpec {
                name: s.name.name.clone(),
                program: String::new(),
                args: Vec::new(),
                env: Vec::new(),
                cwd: None,
                ready: None,
            };
            for d in &s.body {
                match d.name.name.as_str() {
                    "run" => {
                        let program = cx
                            .string(cx.arg(d).map_err(what)?, "the program")
                            .map_err(what)?;
                        spec.program =
                            if program.contains('/') && !Path::new(&program).is_absolute() {
                                base.join(&program).to_string_lossy().into_owned()
                            } else {
                                program
                            };
                        if let Some(a) = d.args.get(1) {
                            match cx.value(a, "the arguments").map_err(what)? {
                                Value::List(items) => spec.args = items.iter().map(text).collect(),
                                other => {
                                    return Err(what(format!(
                                        "the arguments must be a list, found {}",
                                        other.type_name()
                                    )));
                                }
                            }
                        }
                    }
                    "env" => spec.env.push(cx.pair(d).map_err(what)?),
                    "cwd" => {
                        spec.cwd = Some(cx.path(cx.arg(d).map_err(what)?, "cwd").map_err(what)?)
                    }
                    "ready" => {
                        let kind = match d.args.first().map(|a| &a.kind) {
                            Some(ExprKind::Path(p)) => p.dotted(),
                            _ => return Err(what("`ready` needs http, tcp or log".into())),
                        };
                        let target = cx
                            .string(
                                d.args
                                    .get(1)
                                    .ok_or_else(|| what("`ready` needs a target".into()))?,
                                "the readiness target",
                            )
                            .map_err(what)?;
                        let probe = match kind.as_str() {
                            "http" => Probe::Http(target),
                            "tcp" => Probe::Tcp(target),
                            _ => Probe::Log(target),
                        };
                        let within = match &d.within {
                            Some(w) => cx.duration(w).map_err(what)?,
                            None => Duration::from_secs(60),
                        };
                        spec.ready = Some(Readiness { probe, within });
                    }
                    _ => {}
                }
            }
            out.push(spec);
        }
    }
    Ok(out)
}
