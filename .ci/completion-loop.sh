#!/usr/bin/env bash
# Completion loop (issue 11): runs the suites whose services tbt starts itself, N times each
# (default 50), at tbt's default settings (no --settle, no --timeout: each suite's own and tbt's
# defaults), and fails if any run fails. A run that fails only sometimes is what a trace wait that
# decides too early looks like with real exporters (the first export, which also opens the
# connection, arriving after the settle window). Not part of `cargo test` (it takes minutes);
# see docs/benchmarks.md, "Completion loop".
#
#   .ci/completion-loop.sh            # 50 runs of each suite
#   .ci/completion-loop.sh 10         # 10 runs
#   LOOP_SUITES="flask node" .ci/completion-loop.sh
#   TBT_PROFILE=debug .ci/completion-loop.sh    # debug builds (default: release)
#
# Suites (LOOP_SUITES, default "shop flask node"):
#   shop   examples/shop: six Rust services (OpenTelemetry Rust SDK, export every 20 ms)
#   flask  runtime/tests/interop/suites/flask_service.tbt + flask.tbt (passing tests): the Python
#          zero-code agent, OTLP/gRPC, tbt's default export delay for services (100 ms)
#   node   runtime/tests/interop/suites/node_service.tbt + node.tbt: the Node SDK, OTLP HTTP/JSON,
#          100 ms
# Each run gets free ports and its own log under target/completion-loop/; the runs of a suite
# share one project directory, so what tbt remembers in `.tbt/` carries from run to run, as it
# does for a user. The failing runs' output is printed at the end. Exit 0 only if every run of
# every suite passed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
n="${1:-50}"
profile="${TBT_PROFILE:-release}"
suites="${LOOP_SUITES:-shop flask node}"
out="$repo/target/completion-loop"
rm -rf "$out"
mkdir -p "$out"

if [ "$profile" = release ]; then flag=--release; else flag=; fi
case " $suites " in *" shop "*) pkgs=(-p tbt -p shop) ;; *) pkgs=(-p tbt) ;; esac
echo "--- cargo build $flag ${pkgs[*]}"
cargo build -q $flag "${pkgs[@]}"
tbt="$repo/target/$profile/tbt"
case " $suites " in *" flask "*|*" node "*)
  echo "--- interop packages"
  runtime/tests/interop/install.sh ;;
esac
venv="${TBT_INTEROP_VENV:-$repo/target/interop/venv}/bin"
interop="$repo/runtime/tests/interop"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A base port with the next five free too (the shop listens on base..base+5).
free_base() {
  python3 - <<'EOF'
import random, socket
for _ in range(200):
    base = random.randrange(20000, 60000)
    socks = []
    try:
        for p in range(base, base + 6):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
EOF
}

run_once() { # SUITE LOG: runs SUITE once, output to LOG; returns tbt's exit code
  local suite="$1" log="$2" p g h
  case "$suite" in
    shop)
      p="$(free_base)"
      "$tbt" --color never run "$repo/examples/shop" \
        --var "program=$repo/target/$profile/shop" --var 'args=[]' --var "port_base=$p" \
        --otlp-grpc 127.0.0.1:0 --otlp-http 127.0.0.1:0 >"$log" 2>&1 ;;
    flask)
      p="$(free_port)"; g="$(free_port)"
      "$tbt" --color never run "$interop/suites/flask_service.tbt" "$interop/suites/flask.tbt" \
        --var "venv=$venv" --var "app=$interop/python" --var "port=$p" --var "grpc_port=$g" \
        --var "base=http://127.0.0.1:$p" --test order --test unknown_sku --test failure \
        --otlp-grpc 127.0.0.1:0 --otlp-http 127.0.0.1:0 >"$log" 2>&1 ;;
    node)
      p="$(free_port)"
      "$tbt" --color never run "$interop/suites/node_service.tbt" "$interop/suites/node.tbt" \
        --var "app=$interop/node" --var "port=$p" --var "base=http://127.0.0.1:$p" \
        --otlp-grpc 127.0.0.1:0 --otlp-http 127.0.0.1:0 >"$log" 2>&1 ;;
    *) echo "completion-loop: unknown suite '$suite' (shop, flask, node)" >&2; return 2 ;;
  esac
}

failed=0
summary=()
failed_logs=()
for suite in $suites; do
  project="$out/$suite"
  mkdir -p "$project"
  pass=0 fail=0 times=()
  echo "--- $suite: $n runs"
  for i in $(seq 1 "$n"); do
    log="$out/$suite-$i.log"
    start=$(date +%s%N)
    if (cd "$project" && run_once "$suite" "$log"); then
      pass=$((pass + 1))
    else
      code=$?
      fail=$((fail + 1))
      failed_logs+=("$log")
      echo "run $i of $suite failed (exit $code): $log"
    fi
    times+=($(( ($(date +%s%N) - start) / 1000000 )))
  done
  sorted=($(printf '%s\n' "${times[@]}" | sort -n))
  median="${sorted[$(( ${#sorted[@]} / 2 ))]}"
  summary+=("$suite: $pass passed, $fail failed of $n; wall time per run min ${sorted[0]} ms, median $median ms, max ${sorted[-1]} ms")
  [ "$fail" -eq 0 ] || failed=1
done

if [ "$failed" -ne 0 ]; then
  echo "--- failing runs"
  for log in "${failed_logs[@]}"; do
    echo "=== $log"
    grep -E 'FAILED|ERROR|error\[|note:|passed,' "$log" | head -20 || true
  done
fi
echo "--- completion loop"
printf '%s\n' "${summary[@]}"
exit "$failed"
