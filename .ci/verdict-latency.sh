#!/usr/bin/env bash
# Verdict latency by exporter delay (issue 11): the Flask interop app started outside tbt with
# OTEL_BSP_SCHEDULE_DELAY = 20 ms, 100 ms, 1 s and 5 s, `tbt run` at its default settings N times
# per delay; prints a table (time from trigger to verdict, from the last span's arrival to the
# verdict, how many runs decided before all spans were in). Not part of `cargo test`; see
# docs/benchmarks.md, "Verdict latency by exporter delay", and .ci/verdict_latency.py.
#
#   .ci/verdict-latency.sh                       # release build, 10 runs per delay
#   RUNS=5 DELAYS=100,5000 .ci/verdict-latency.sh
#   TBT_BIN=target/debug/tbt .ci/verdict-latency.sh -- --settle 200ms   # flags after -- go to tbt run
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
if [ -z "${TBT_BIN:-}" ]; then
  echo "--- cargo build --release -p tbt" >&2
  cargo build -q --release -p tbt
  TBT_BIN="$repo/target/release/tbt"
fi
runtime/tests/interop/install.sh python >&2
venv="${TBT_INTEROP_VENV:-$repo/target/interop/venv}/bin"
[ "${1:-}" = "--" ] && shift
exec "$venv/python" .ci/verdict_latency.py --tbt "$TBT_BIN" --venv "$venv" \
  --runs "${RUNS:-10}" --delays "${DELAYS:-20,100,1000,5000}" -- "$@"
