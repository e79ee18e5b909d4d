//! The run-time scope over a checked program: module `let`s (with `--var` overrides and imports),
//! step `let`s, captures across steps and tests, and matchers of the module and of imports
//! expanded in their own module — evaluated on a real trace fixture.

use std::collections::HashMap;
use tbt_compiler::bindings::{Bindings, Scopes};
use tbt_compiler::compile::{MemoryLoader, Options, compile};
use tbt_compiler::eval::{Host, Response, evaluate_step, expectations_of};
use tbt_compiler::trace::Trace;
use tbt_compiler::value::Value;

struct EnvHost;
impl Host for EnvHost {
    fn env(&self, name: &str) -> Option<String> {
        (name == "ROUTE").then(|| "/orders".to_string())
    }
}

const LIB: &str = r#"## The orders service.
let service_name = "orders"
"#;

const SUITE: &str = r#"import "std/http"
import "std/db"
import "./lib.tbt"

let route = env("ROUTE") ?? "/nope"
let limit = 30ms
secret let token = "s3cr3t"

matcher orders_server(r = null) = span[service == lib.service_name, kind == server, r == null or http.route == r]

test shop {
  step first {
    trigger http GET "http://127.0.0.1:1/${token}"
    expect response {
      let id = json("$.id")
    }
    expect orders_server(route) >> db.query("sqlite") {
      duration <= limit
      let last_query = db.query.text
    }
  }
  step second {
    let wanted = first.id
    trigger http GET "http://127.0.0.1:1/orders/${wanted}"
    expect span[name == "charge card"] {
      attr("error") != wanted
    }
  }
}
"#;

#[test]
fn lets_captures_and_matchers_resolve_at_run_time() {
    let mut loader = MemoryLoader::default();
    loader.files.insert("lib.tbt".into(), LIB.into());
    let c = compile(
        vec![("suite.tbt".into(), SUITE.as_bytes().to_vec())],
        &mut loader,
        &Options::default(),
    );
    assert!(
        !c.has_errors(),
        "{}",
        tbt_compiler::render::render_plain(&c.sources, &c.diagnostics)
    );
    let trace_json = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/traces/shop.json"
    ))
    .expect("fixture");
    let trace = Trace::from_otlp_json(&trace_json, None).expect("trace");
    let host = EnvHost;
    let bindings = Bindings::new(
        &c.program,
        &host,
        HashMap::from([("limit".to_string(), Value::Duration(5_000_000))]),
    );
    let scopes = Scopes::new(&bindings);
    let scopes = scopes.link();
    let root = c.program.tests[0].module;
    assert_eq!(
        scopes
            .let_value(root, "route")
            .and_then(|v| v.as_str().map(String::from)),
        Some("/orders".into()),
        "env() through the host"
    );
    assert_eq!(scopes.secrets(), vec!["s3cr3t".to_string()]);

    // Step 1: the response capture works; the `--var` override (5ms) and the two SELECT spans
    // (a span capture needs exactly one) make the span expectation fail.
    let body = br#"{"id": "o-42"}"#.to_vec();
    let response = Response::Http {
        status: 201,
        headers: vec![],
        body,
        duration: 1_000_000,
    };
    let step1 = c.program.step_body(0, 0);
    let scope = scopes.step(0, 0, &[]);
    let out = evaluate_step(
        &expectations_of(step1),
        &trace,
        Some(&response),
        &scope,
        &host,
        true,
    );
    assert!(out.results[0].passed, "{:?}", out.results[0]);
    assert_eq!(
        out.captures
            .first()
            .map(|(n, v)| (n.as_str(), v.as_str().map(String::from))),
        Some(("id", Some("o-42".to_string())))
    );
    let select = &out.results[1];
    assert_eq!(
        select.selected, 2,
        "two SELECTs under the orders server span: {}",
        select.message
    );
    assert!(!select.passed);
    for (name, value) in &out.captures {
        bindings.capture(0, 0, name, value.clone());
    }

    // Step 2 reads `first.id` through a step let.
    let wanted = scopes.step(0, 1, &[]);
    let body2 = c.program.step_body(0, 1);
    let tbt_compiler::ast::StmtKind::Let(l) = &body2[0].kind else {
        panic!("first statement is the let")
    };
    let v = tbt_compiler::eval::evaluate_value(&l.value, &wanted, &host).expect("capture resolves");
    assert_eq!(v.as_str(), Some("o-42"));
    let locals = vec![("wanted".to_string(), v)];
    let scope = scopes.step(0, 1, &locals);
    let out = evaluate_step(&expectations_of(body2), &trace, None, &scope, &host, true);
    assert!(out.passed(), "{:?}", out.results);
}
