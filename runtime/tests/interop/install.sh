#!/usr/bin/env bash
# Installs what runtime/tests/it/slow/interop.rs runs, idempotently:
#   python: a virtualenv with the pinned OpenTelemetry Python packages (python/requirements.txt),
#           at $TBT_INTEROP_VENV (default: <repo>/target/interop/venv);
#   node:   `npm ci` in node/ (package-lock.json), giving node/node_modules.
# Each part is skipped when its stamp shows the same lock file was installed before, so a second
# run takes milliseconds. Usage: install.sh [python|node]... (default: both). Exit status is
# non-zero when a requested part cannot be installed (e.g. python3 or npm missing).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${TBT_INTEROP_VENV:-$repo/target/interop/venv}"

python_part() {
  local req="$here/python/requirements.txt" stamp="$venv/.tbt-requirements"
  if [ -x "$venv/bin/opentelemetry-instrument" ] && cmp -s "$req" "$stamp"; then
    return 0
  fi
  command -v python3 >/dev/null || { echo "install.sh: python3 is not installed" >&2; return 1; }
  echo "install.sh: creating $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$req"
  cp "$req" "$stamp"
}

node_part() {
  local app="$here/node" stamp="$here/node/node_modules/.tbt-package-lock.json"
  if [ -f "$stamp" ] && cmp -s "$app/package-lock.json" "$stamp"; then
    return 0
  fi
  command -v npm >/dev/null || { echo "install.sh: npm is not installed" >&2; return 1; }
  echo "install.sh: npm ci in $app"
  (cd "$app" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$app/package-lock.json" "$stamp"
}

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(python node)
for p in "${parts[@]}"; do
  case "$p" in
    python) python_part ;;
    node) node_part ;;
    *) echo "install.sh: unknown part '$p' (python, node)" >&2; exit 2 ;;
  esac
done
