#!/usr/bin/env bash
# First runs against fresh systems (issue 27): ROUNDS rounds (default 5) of five systems — a Node
# gateway in front of the Flask app, both at the SDKs' default 5 s batch delay, started outside
# tbt and seeded before it is up — each with a first `tbt run` in a fresh project directory, fired
# 0–4 s into the exporters' period; prints, per offset, how many passing steps were decided later
# than the export delay + 1 s or at the timeout. Not part of `cargo test` (the one-round version is
# runtime/tests/it/slow/completion.rs, fresh_systems_…); see docs/benchmarks.md, "First runs
# against fresh systems", and .ci/fresh_system.py.
#
#   .ci/fresh-system.sh                        # release build, 5 rounds
#   ROUNDS=20 .ci/fresh-system.sh
#   TBT_BIN=target/debug/tbt OFFSETS=0,2500 .ci/fresh-system.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
if [ -z "${TBT_BIN:-}" ]; then
  echo "--- cargo build --release -p tbt" >&2
  cargo build -q --release -p tbt
  TBT_BIN="$repo/target/release/tbt"
fi
runtime/tests/interop/install.sh >&2
venv="${TBT_INTEROP_VENV:-$repo/target/interop/venv}/bin"
exec "$venv/python" .ci/fresh_system.py --tbt "$TBT_BIN" --venv "$venv" \
  --rounds "${ROUNDS:-5}" --offsets "${OFFSETS:-0,1000,2000,3000,4000}"
