#!/usr/bin/env bash
# Peak memory of `tbt run` reading one huge trace from a Tempo-shaped backend (issue 28): see
# .ci/backend_memory.py and docs/benchmarks.md, "Memory: a huge trace from a backend".
#
#   .ci/backend-memory.sh                  # release build, 200,000 spans
#   SPANS=50000 TBT_BIN=target/debug/tbt .ci/backend-memory.sh
#   VIA=receiver .ci/backend-memory.sh    # the same spans sent to tbt's embedded receiver
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TBT_BIN:-}" ]; then
  echo "--- cargo build --release -p tbt" >&2
  cargo build -q --release -p tbt
  TBT_BIN=target/release/tbt
fi
exec python3 .ci/backend_memory.py --tbt "$TBT_BIN" --spans "${SPANS:-200000}" --via "${VIA:-tempo}"
