//! A generator of synthetic suites for benchmarks: `files` files with `tests_per_file` tests each,
//! using every construct of the language (imports, lets, secrets, matchers with defaults, services,
//! multi-step tests with captures across steps and tests, `after`, every trigger kind, every
//! `expect` form, filters, every combinator and pseudo-class, aggregates, `by`, strings with
//! interpolation, raw strings, objects and lists). Deterministic: same arguments, same bytes.

/// The files of one suite: `(name, text)`.
pub fn suite(files: usize, tests_per_file: usize) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(files + 1);
    out.push(("suite/lib.tbt".to_string(), LIB.to_string()));
    for f in 0..files {
        let mut s = String::with_capacity(tests_per_file * 460);
        s.push_str(HEADER);
        if f == 0 {
            s.push_str(SERVICE);
        }
        for t in 0..tests_per_file {
            test(&mut s, f, t);
        }
        out.push((format!("suite/f{f:03}.tbt"), s));
    }
    out
}

const LIB: &str = r#"## Helpers shared by the synthetic suite.
let base = env("SHOP_URL") ?? "http://127.0.0.1:8080"

## Server spans of a service, optionally one route.
matcher svc(name, route = null) = span[service == name, kind == server, route == null or http.route == route]
"#;

const HEADER: &str = r#"import "std/http"
import "std/db"
import "std/messaging"
import "./lib.tbt"

secret let token = env("API_TOKEN") ?? "dev"

"#;

const SERVICE: &str = r#"service shop {
  run "cargo" ["run", "-p", "shop"]
  env SHOP_PORT = "8080"
  ready http "http://127.0.0.1:8080/health" within 60s
}

"#;

fn test(s: &mut String, f: usize, t: usize) {
    use std::fmt::Write as _;
    let name = format!("t{f}_{t}");
    match t % 4 {
        0 => {
            let _ = write!(
                s,
                r#"## Places order {t} and fetches it.
test {name} "Order {t}" {{
  timeout 10s
  step create {{
    trigger http POST "${{lib.base}}/orders" {{
      header "authorization" = "Bearer ${{token}}"
      header "idempotency-key" = uuid()
      json {{ "sku": "sku-{t}", "qty": {q}, "card": "4242" }}
    }}
    expect response {{
      status == 201
      let order_id = json("$.id")
    }}
    expect lib.svc("orders", "/orders") {{
      count == 1
      duration < 300ms
    }}
    expect http.server("/orders") >> db.query("sqlite") by db.query.text {{
      count <= 1
      max(duration) < 50ms
    }}
    expect span[service == "payments", name == "charge card"] {{
      payment.amount == 99.99
      status == ok
    }}
    expect span[name == "reserve stock"] before span[name == "charge card"]
    expect no span[status == error]
  }}
  step fetch {{
    trigger http GET "${{lib.base}}/orders/${{create.order_id}}"
    expect response {{ json("$.status") == "paid" }}
  }}
}}

"#,
                q = t % 7 + 1
            );
        }
        1 => {
            let _ = write!(
                s,
                r#"test {name} {{
  after t{f}_{p}
  trigger http GET "${{lib.base}}/orders/${{t{f}_{p}.create.order_id}}"
  expect messaging.publish("shipping") ~> messaging.receive("shipping") {{
    any messaging.operation.type == "process"
  }}
  expect (span[kind == server] | span[kind == consumer]):first:not(span[status == error]) {{
    name matches r"^(GET|POST) /orders"
  }}
  expect span:root:has(span[kind == client]) > span[kind == client] {{
    http.response.status_code in [200, 201]
  }}
}}

"#,
                p = t - 1
            );
        }
        2 => {
            let _ = write!(
                s,
                r#"test {name} {{
  trigger grpc "shop.Inventory/Lookup" at "http://127.0.0.1:50051" {{
    proto "shop.proto"
    message {{ "sku": "sku-{t}" }}
    metadata "x-tenant" = "acme"
  }}
  expect response {{
    status == 0
    json("$.available") > 0
  }}
  expect span[rpc.method == "shop.Inventory/Lookup"]:nth(1) {{
    duration < 1s
    lower(name) contains "lookup"
  }}
}}

"#
            );
        }
        _ => {
            let _ = write!(
                s,
                r#"test {name} {{
  step run_tool {{
    trigger exec "./tool" ["--order", "{t}"] {{
      env MODE = "bench"
      timeout 5s
    }}
    expect response {{
      exit_code == 0
      stdout contains "ok"
    }}
    expect trace {{
      span_count >= 1
      errors == 0
    }}
  }}
  step recorded {{
    trigger trace "4bf92f3577b34da6a3ce929d0e0e{t:04x}"
    expect span {{
      sum(db.response.returned_rows ?? 0) < 100
      avg(duration) < 20ms
    }}
  }}
}}

"#
            );
        }
    }
}
