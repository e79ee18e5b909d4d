//! From the plan's typed trigger calls and services to what the runtime fires and starts:
//! evaluate each leaf in its scope. The checker has validated the shapes and the plan carries
//! them typed; what can still fail here is a value (an unset environment variable without a
//! default, a non-string URL), reported as a step error.

use crate::trigger::{ExecSpec, GrpcSpec, HttpBody, HttpSpec, TriggerSpec};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tbt_compiler::eval::{Host, Scope};
use tbt_compiler::plan::{Probe as PlanProbe, ServicePlan};
use tbt_compiler::trigger::{Body, Leaf, Pair, TriggerCall, text};
use tbt_compiler::value::Value;

struct Ctx<'a> {
    scope: &'a dyn Scope,
    host: &'a dyn Host,
    base: &'a Path,
}

impl Ctx<'_> {
    fn value(&self, e: &Leaf, what: &str) -> Result<Value, String> {
        e.eval(self.scope, self.host)
            .map_err(|err| format!("{what}: {err}"))
    }

    fn string(&self, e: &Leaf, what: &str) -> Result<String, String> {
        e.string(self.scope, self.host, what)
    }

    fn path(&self, e: &Leaf, what: &str) -> Result<PathBuf, String> {
        let p = PathBuf::from(self.string(e, what)?);
        Ok(if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        })
    }

    fn duration(&self, e: &Leaf, what: &str) -> Result<Duration, String> {
        e.duration(self.scope, self.host, what)
    }

    fn pairs(&self, pairs: &[Pair], what: &str) -> Result<Vec<(String, String)>, String> {
        pairs
            .iter()
            .map(|p| p.text(self.scope, self.host, what))
            .collect()
    }

    fn list(&self, e: &Leaf, what: &str) -> Result<Vec<String>, String> {
        match self.value(e, what)? {
            Value::List(items) => Ok(items.iter().map(text).collect()),
            other => Err(format!(
                "{what} must be a list, found {}",
                other.type_name()
            )),
        }
    }

    fn flag(&self, e: Option<&Leaf>, what: &str) -> Result<bool, String> {
        match e {
            Some(e) => Ok(matches!(self.value(e, what)?, Value::Bool(true))),
            None => Ok(false),
        }
    }
}

/// Builds the spec of a live trigger (`http`, `grpc`, `exec`). `base` is the directory of the
/// suite file, against which relative file paths (`proto`, `cwd`, `ca_cert`) are resolved.
pub fn build(
    call: &TriggerCall,
    scope: &dyn Scope,
    host: &dyn Host,
    base: &Path,
    default_timeout: Duration,
) -> Result<TriggerSpec, String> {
    let cx = Ctx { scope, host, base };
    let timeout = |t: &Option<Leaf>| match t {
        Some(t) => cx.duration(t, "timeout"),
        None => Ok(default_timeout),
    };
    match call {
        TriggerCall::Http(h) => Ok(TriggerSpec::Http(HttpSpec {
            method: h.method.clone(),
            url: cx.string(&h.url, "the URL")?,
            headers: cx.pairs(&h.headers, "header")?,
            query: cx.pairs(&h.query, "query")?,
            body: match &h.body {
                Some(Body::Json(v)) => Some(HttpBody::Json(serde_json::Value::from(
                    &cx.value(v, "json")?,
                ))),
                Some(Body::Raw(v)) => Some(HttpBody::Raw(text(&cx.value(v, "body")?))),
                None => None,
            },
            timeout: timeout(&h.timeout)?,
            insecure: cx.flag(h.insecure.as_ref(), "insecure")?,
            ca_cert: h
                .ca_cert
                .as_ref()
                .map(|p| cx.path(p, "ca_cert"))
                .transpose()?,
            follow_redirects: cx.flag(h.follow_redirects.as_ref(), "follow_redirects")?,
        })),
        TriggerCall::Grpc(g) => Ok(TriggerSpec::Grpc(GrpcSpec {
            method: cx.string(&g.method, "the method")?,
            address: cx.string(&g.address, "the address")?,
            proto_files: g
                .proto
                .iter()
                .map(|p| cx.path(p, "proto"))
                .collect::<Result<_, _>>()?,
            import_paths: g
                .import_path
                .iter()
                .map(|p| cx.path(p, "import_path"))
                .collect::<Result<_, _>>()?,
            message: match &g.message {
                Some(m) => serde_json::Value::from(&cx.value(m, "message")?),
                None => serde_json::json!({}),
            },
            metadata: cx.pairs(&g.metadata, "metadata")?,
            timeout: timeout(&g.timeout)?,
        })),
        TriggerCall::Exec(e) => Ok(TriggerSpec::Exec(ExecSpec {
            program: cx.string(&e.program, "the program")?,
            args: match &e.args {
                Some(a) => cx.list(a, "the arguments")?,
                None => Vec::new(),
            },
            env: cx.pairs(&e.env, "env")?,
            cwd: e.cwd.as_ref().map(|p| cx.path(p, "cwd")).transpose()?,
            stdin: e
                .stdin
                .as_ref()
                .map(|s| cx.value(s, "stdin").map(|v| text(&v)))
                .transpose()?,
            timeout: timeout(&e.timeout)?,
        })),
        TriggerCall::Trace { .. } => Err("`trigger trace` is not a live trigger".into()),
    }
}

/// Builds the specs of the plan's services, evaluating their leaves in their module's scope.
/// Relative `cwd` and relative program paths (`./server`) are resolved against the suite file's
/// directory; a bare program name is looked up on `PATH`.
pub fn services(
    c: &tbt_compiler::compile::Compilation,
    scopes: &tbt_compiler::bindings::Scopes<'_, '_>,
    host: &dyn Host,
) -> Result<Vec<crate::service::ServiceSpec>, String> {
    let Some(plan) = &c.plan else {
        return Ok(Vec::new());
    };
    plan.services
        .iter()
        .map(|s| service(c, s, scopes, host))
        .collect()
}

fn service(
    c: &tbt_compiler::compile::Compilation,
    s: &ServicePlan,
    scopes: &tbt_compiler::bindings::Scopes<'_, '_>,
    host: &dyn Host,
) -> Result<crate::service::ServiceSpec, String> {
    use crate::service::{Probe, Readiness, ServiceSpec};
    let file = &c.sources.get(s.file).name;
    let base = Path::new(file).parent().unwrap_or(Path::new("."));
    let cx = Ctx {
        scope: scopes.module(s.module),
        host,
        base,
    };
    let what = |e: String| format!("service `{}`: {e}", s.name);
    let program = cx.string(&s.program, "the program").map_err(what)?;
    let ready = match &s.ready {
        Some(r) => {
            let target = cx.string(&r.target, "the readiness target").map_err(what)?;
            let within = match &r.within {
                Some(w) => cx.duration(w, "within").map_err(what)?,
                None => Duration::from_secs(60),
            };
            Some(Readiness {
                probe: match r.probe {
                    PlanProbe::Http => Probe::Http(target),
                    PlanProbe::Tcp => Probe::Tcp(target),
                    PlanProbe::Log => Probe::Log(target),
                },
                within,
            })
        }
        None => None,
    };
    Ok(ServiceSpec {
        name: s.name.clone(),
        program: if program.contains('/') && !Path::new(&program).is_absolute() {
            base.join(&program).to_string_lossy().into_owned()
        } else {
            program
        },
        args: match &s.args {
            Some(a) => cx.list(a, "the arguments").map_err(what)?,
            None => Vec::new(),
        },
        env: cx.pairs(&s.env, "env").map_err(what)?,
        cwd: s
            .cwd
            .as_ref()
            .map(|p| cx.path(p, "cwd"))
            .transpose()
            .map_err(what)?,
        ready,
        stop_within: match &s.stop_within {
            Some(w) => cx.duration(w, "stop within").map_err(what)?,
            None => crate::service::STOP_GRACE,
        },
        otlp: s.otlp,
    })
}
