//! The standard library (`stdlib/*.tbt`) on traces exported by real OpenTelemetry SDKs:
//!
//! | fixture | exported by |
//! |---|---|
//! | `sdk_checkout.json` | the Rust SDK (`it/sdk_fixtures.rs`), current attribute names |
//! | `python_flask_grpc.json` | OpenTelemetry Python zero-code instrumentation (Flask, urllib, sqlite3, gRPC) over OTLP/gRPC, the instrumentations' default — older — names (`http.method`, `db.statement`, `rpc.grpc.status_code`) |
//! | `python_flask_http.json` | the same app over OTLP/HTTP protobuf with `OTEL_SEMCONV_STABILITY_OPT_IN=http,database`: current names |
//! | `node_http_json.json` | the OpenTelemetry JS SDK (`@opentelemetry/sdk-node`, instrumentation-http) over OTLP HTTP/JSON |
//!
//! The Python and Node fixtures are recorded by `runtime/tests/it/slow/interop.rs` (`TBT_RECORD_FIXTURES=1`)
//! from what tbt's receiver got; tbt's own trigger spans are left out.
//!
//! Every matcher is evaluated on every fixture: explicit expected counts below, and the matched
//! spans by name in an insta snapshot (`snapshots/stdlib__matches.snap`), so each matcher is seen
//! to select the spans it should and no others.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use tbt_compiler::ast::{ExpectKind, ItemKind, StmtKind};
use tbt_compiler::bindings::{Bindings, Scopes};
use tbt_compiler::compile::{MemoryLoader, Options, compile};
use tbt_compiler::eval::{PureHost, select};
use tbt_compiler::program::ModuleId;
use tbt_compiler::stdlib;
use tbt_compiler::trace::Trace;

const FIXTURES: [&str; 4] = [
    "sdk_checkout.json",
    "python_flask_grpc.json",
    "python_flask_http.json",
    "node_http_json.json",
];

/// Each case: a selector, and how many spans it selects in each fixture (in `FIXTURES` order).
const CASES: &[(&str, [usize; 4])] = &[
    // std/http
    ("http.server()", [2, 6, 6, 5]),
    ("http.server(\"/orders\")", [1, 2, 2, 0]),
    ("http.server(\"/orders/<int:order_id>\")", [0, 2, 2, 0]),
    ("http.server(\"/orders/{id}\")", [0, 0, 0, 2]),
    ("http.server(\"/nowhere\")", [0, 0, 0, 0]),
    ("http.client()", [1, 1, 1, 2]),
    ("http.client(\"GET\")", [0, 1, 1, 2]),
    ("http.client(\"POST\")", [1, 0, 0, 0]),
    ("http.status(200)", [1, 4, 4, 6]),
    ("http.status(201)", [1, 1, 1, 0]),
    ("http.status(500)", [0, 1, 1, 1]),
    ("http.status(404)", [0, 0, 0, 0]),
    ("http.server_errors()", [0, 1, 1, 1]),
    ("http.path(\"/fail\")", [0, 1, 1, 1]),
    ("http.path(\"/orders/1\")", [0, 2, 2, 0]),
    ("http.path(\"/orders/42\")", [0, 0, 0, 1]),
    ("http.path(\"/orders\")", [0, 2, 2, 0]),
    ("http.path(\"/checkout\")", [1, 0, 0, 0]),
    ("http.calls(\"/orders/\")", [0, 1, 1, 0]),
    ("http.calls(\"/stock/sku-42\")", [0, 0, 0, 2]),
    ("http.calls(\"/nowhere\")", [0, 0, 0, 0]),
    // std/db
    ("db.query()", [3, 9, 9, 6]),
    ("db.query(\"sqlite\")", [0, 9, 9, 6]),
    ("db.query(\"postgresql\")", [3, 0, 0, 0]),
    ("db.operation(\"SELECT\")", [2, 6, 6, 6]),
    ("db.operation(\"select\")", [2, 6, 6, 6]),
    ("db.operation(\"INSERT\")", [1, 3, 3, 0]),
    ("db.operation(\"DELETE\")", [0, 0, 0, 0]),
    ("db.table(\"items\")", [0, 6, 6, 4]),
    ("db.table(\"orders\")", [1, 3, 3, 2]),
    ("db.table(\"products\")", [2, 0, 0, 0]),
    ("db.statement(\"FROM items\")", [0, 4, 4, 4]),
    ("db.statement(\"DROP\")", [0, 0, 0, 0]),
    // std/rpc
    ("rpc.server()", [0, 2, 2, 0]),
    ("rpc.server(\"shop.Inventory/Lookup\")", [0, 2, 2, 0]),
    ("rpc.server(\"shop.Inventory/Other\")", [0, 0, 0, 0]),
    ("rpc.client()", [0, 2, 2, 0]),
    ("rpc.client(\"shop.Inventory/Lookup\")", [0, 2, 2, 0]),
    ("rpc.status(\"OK\")", [0, 2, 2, 0]),
    ("rpc.status(0)", [0, 2, 2, 0]),
    ("rpc.status(\"NOT_FOUND\")", [0, 2, 2, 0]),
    ("rpc.status(5)", [0, 2, 2, 0]),
    ("rpc.status(\"UNAVAILABLE\")", [0, 0, 0, 0]),
    // std/messaging
    ("messaging.publish()", [1, 1, 1, 2]),
    ("messaging.publish(\"shipping\")", [1, 1, 1, 2]),
    ("messaging.publish(\"billing\")", [0, 0, 0, 0]),
    ("messaging.receive()", [1, 1, 1, 2]),
    ("messaging.receive(\"shipping\")", [1, 1, 1, 2]),
    ("messaging.receive(\"billing\")", [0, 0, 0, 0]),
    (
        "messaging.publish(\"shipping\") ~> messaging.receive(\"shipping\")",
        [1, 1, 1, 2],
    ),
    // std/errors
    ("errors.all()", [1, 2, 2, 1]),
    ("errors.exceptions()", [1, 3, 3, 1]),
    ("errors.of_type(\"RuntimeError\")", [0, 1, 1, 0]),
    ("errors.of_type(\"Timeout\")", [1, 0, 0, 0]),
    ("errors.of_type(\"Error\")", [0, 0, 0, 1]),
    ("errors.in_service(\"payments\")", [1, 0, 0, 0]),
    ("errors.in_service(\"flask\")", [0, 2, 2, 0]),
    ("errors.in_service(\"node_shop\")", [0, 0, 0, 1]),
];

fn fixture(name: &str) -> Trace {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/traces")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    Trace::from_otlp_json(&text, None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A suite with one `expect` per case.
fn suite() -> String {
    let mut s = String::from(
        "import \"std/http\"\nimport \"std/db\"\nimport \"std/rpc\"\nimport \"std/messaging\"\nimport \"std/errors\"\n\ntest cases {\n  trigger trace \"4bf92f3577b34da6a3ce929d0e0e4736\"\n",
    );
    for (sel, _) in CASES {
        let _ = writeln!(s, "  expect {sel}");
    }
    s.push_str("}\n");
    s
}

/// For every case, the indices of the spans it selects in `trace`.
fn evaluate(trace: &Trace) -> Vec<Vec<u32>> {
    let c = compile(
        vec![("cases.tbt".into(), suite().into_bytes())],
        &mut MemoryLoader::default(),
        &Options::default(),
    );
    assert!(
        c.diagnostics.is_empty(),
        "{}",
        tbt_compiler::render::render_plain(&c.sources, &c.diagnostics)
    );
    static HOST: PureHost = PureHost;
    let bindings = Bindings::new(&c.program, &HOST, HashMap::new());
    let scopes = Scopes::new(&bindings);
    let scopes = scopes.link();
    let root = &c.program.modules[0];
    assert_eq!(root.name, "cases.tbt");
    let scope = scopes.module(ModuleId(0));
    let test = root
        .ast
        .items
        .iter()
        .find_map(|i| match &i.kind {
            ItemKind::Test(t) => Some(t),
            _ => None,
        })
        .unwrap();
    test.body
        .iter()
        .filter_map(|s| match &s.kind {
            StmtKind::Expect(e) => match &e.kind {
                ExpectKind::Select { selector, .. } => Some(selector),
                _ => None,
            },
            _ => None,
        })
        .map(|sel| {
            select(sel, trace, scope, &PureHost)
                .unwrap_or_else(|e| panic!("{e}"))
                .indices()
                .to_vec()
        })
        .collect()
}

#[test]
fn every_module_compiles_without_any_diagnostic() {
    for (path, text) in stdlib::MODULES {
        let c = compile(
            vec![(format!("{path}.tbt"), text.as_bytes().to_vec())],
            &mut MemoryLoader::default(),
            &Options::default(),
        );
        assert!(
            c.diagnostics.is_empty(),
            "{path}:\n{}",
            tbt_compiler::render::render_plain(&c.sources, &c.diagnostics)
        );
    }
}

#[test]
fn every_matcher_selects_the_expected_spans_of_every_sdk_fixture() {
    let mut failures = Vec::new();
    for (f, name) in FIXTURES.iter().enumerate() {
        let trace = fixture(name);
        for ((sel, want), got) in CASES.iter().zip(evaluate(&trace)) {
            if got.len() != want[f] {
                failures.push(format!(
                    "{name}: `{sel}` selects {} spans, expected {}",
                    got.len(),
                    want[f]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_module_and_matcher_has_a_case() {
    for (path, text) in stdlib::MODULES {
        let module = path.trim_start_matches("std/");
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("matcher ") else {
                continue;
            };
            let name = rest.split('(').next().unwrap();
            let call = format!("{module}.{name}(");
            assert!(
                CASES.iter().any(|(sel, _)| sel.contains(&call)),
                "no case evaluates {call}…)"
            );
        }
    }
}

/// The same Flask app exported with the older and with the current attribute names: every
/// matcher selects the same spans in both.
#[test]
fn older_and_current_attribute_names_select_the_same_spans() {
    let older = fixture("python_flask_grpc.json");
    let current = fixture("python_flask_http.json");
    let names = |t: &Trace, ids: &[u32]| {
        let mut v: Vec<String> = ids
            .iter()
            .map(|&i| format!("{:?} {}", t.span(i).kind, t.span(i).name))
            .collect();
        v.sort();
        v
    };
    for ((sel, _), (a, b)) in CASES
        .iter()
        .zip(evaluate(&older).iter().zip(evaluate(&current).iter()))
    {
        assert_eq!(names(&older, a), names(&current, b), "`{sel}`");
    }
}

/// The spans each matcher selects, by service, kind and name (with a count when repeated).
#[test]
fn matched_spans_snapshot() {
    let mut out = String::new();
    let traces: Vec<(&str, Trace)> = FIXTURES.iter().map(|n| (*n, fixture(n))).collect();
    let results: Vec<Vec<Vec<u32>>> = traces.iter().map(|(_, t)| evaluate(t)).collect();
    for (c, (sel, _)) in CASES.iter().enumerate() {
        let _ = writeln!(out, "{sel}");
        for (f, (name, trace)) in traces.iter().enumerate() {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for &i in &results[f][c] {
                let s = trace.span(i);
                *seen
                    .entry(format!("{} {:?} {:?}", trace.service(i), s.kind, s.name))
                    .or_default() += 1;
            }
            if seen.is_empty() {
                continue;
            }
            let list: Vec<String> = seen
                .into_iter()
                .map(|(k, n)| if n == 1 { k } else { format!("{k} ×{n}") })
                .collect();
            let _ = writeln!(out, "  {name}: {}", list.join(", "));
        }
    }
    insta::assert_snapshot!("matches", out);
}
