#!/usr/bin/env bash
# The pre-commit hooks of .pre-commit-hooks.yaml, through the real `pre-commit` from PyPI: a scratch
# git repository with a good suite, one with an error and one in the wrong layout;
# `pre-commit try-repo` on this repository must pass the good one and fail the others with the
# diagnostic code and the reformatted file.
#
# pre-commit installs the hooks with `cargo install --bins --root ENV --path .` in a clone of this
# repository: a release build of the whole dependency graph (about seven minutes on two cores).
# With TBT_PRE_COMMIT_BINARY=PATH (CI passes the `tbt` its tests built), a `cargo` first on PATH
# answers exactly that command: it checks with the real cargo that the clone's root package has
# the `tbt-pre-commit` binary built from runtime/src/main.rs (the hooks' entry), and installs PATH
# under that name. Every other cargo command goes to the real cargo. Without it, the real install
# runs, with CARGO_TARGET_DIR (default: this checkout's target/) to keep its dependencies.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pre_commit_version="4.7.0"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export PRE_COMMIT_COLOR=never NO_COLOR=1
# Its own cache: every run installs the hooks, never an environment left by an earlier run.
export PRE_COMMIT_HOME="$work/pre-commit-home"

# try-repo needs the hook repository as git history (it clones it; uncommitted changes to tracked
# files go into a temporary commit). A tree without .git is committed into a scratch repository.
hook_repo="$root"
if ! git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  hook_repo="$work/hook-repo"
  mkdir "$hook_repo"
  tar -C "$root" --exclude=./target --exclude=node_modules --exclude=./.venv -cf - . | tar -C "$hook_repo" -xf -
  git -C "$hook_repo" init --quiet
  git -C "$hook_repo" add -A
  GIT_AUTHOR_NAME=ci GIT_AUTHOR_EMAIL=ci@localhost GIT_COMMITTER_NAME=ci GIT_COMMITTER_EMAIL=ci@localhost \
    git -C "$hook_repo" commit --quiet --no-gpg-sign -m "tbt"
fi

if [ -n "${TBT_PRE_COMMIT_BINARY:-}" ]; then
  [ -x "$TBT_PRE_COMMIT_BINARY" ] || { echo "TBT_PRE_COMMIT_BINARY=$TBT_PRE_COMMIT_BINARY is not an executable" >&2; exit 1; }
  real_cargo="$(command -v cargo)"
  mkdir "$work/shim"
  cat > "$work/shim/cargo" <<SHIM
#!/usr/bin/env bash
set -euo pipefail
# pre-commit's install of a rust hook: install --bins --root ENV --path .
if [ "\$#" = 6 ] && [ "\$1 \$2 \$3" = "install --bins --root" ] && [ "\$5 \$6" = "--path ." ]; then
  "$real_cargo" metadata --no-deps --offline --format-version 1 | python3 -c '
import json, sys
meta = json.load(sys.stdin)
root = next(p for p in meta["packages"] if p["manifest_path"] == meta["workspace_root"] + "/Cargo.toml")
bins = [t for t in root["targets"] if t["kind"] == ["bin"] and t["name"] == "tbt-pre-commit"]
assert bins, "the root package has no tbt-pre-commit binary"
assert bins[0]["src_path"].endswith("/runtime/src/main.rs"), bins[0]["src_path"]
'
  mkdir -p "\$4/bin"
  cp "$TBT_PRE_COMMIT_BINARY" "\$4/bin/tbt-pre-commit"
  echo "\$4" >> "$work/installs"
  echo "installed $TBT_PRE_COMMIT_BINARY as \$4/bin/tbt-pre-commit (the root package declares it)"
  exit 0
fi
exec "$real_cargo" "\$@"
SHIM
  chmod +x "$work/shim/cargo"
  export PATH="$work/shim:$PATH"
  echo "pre-commit's cargo install answered with $TBT_PRE_COMMIT_BINARY"
fi

echo "pre-commit $pre_commit_version in a venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "pre-commit==$pre_commit_version"
pre_commit="$work/venv/bin/pre-commit"

# The project that uses the hooks.
project="$work/project"
mkdir "$project"
cd "$project"
git init --quiet
cat > good.tbt <<'TBT'
import "std/http"

test health {
  trigger http GET "http://127.0.0.1:8080/health"
  expect http.server("/health") {
    duration < 300ms
  }
}
TBT
cat > bad.tbt <<'TBT'
test slow {
  trigger http GET "http://127.0.0.1:8080/"
  expect span {
    duration < 300
  }
}
TBT
printf 'test  ugly{\ntrigger http GET "http://127.0.0.1:8080/"\n}\n' > ugly.tbt
git add good.tbt bad.tbt ugly.tbt

# try_repo HOOK_ARGS… > output; returns pre-commit's exit code.
try_repo() {
  local rc=0
  "$pre_commit" try-repo "$hook_repo" --verbose --color never "$@" > "$work/out" 2>&1 || rc=$?
  return $rc
}
fail() {
  echo "pre-commit test: $1" >&2
  echo "--- pre-commit output:" >&2
  cat "$work/out" >&2
  exit 1
}

start=$SECONDS
echo "try-repo on good.tbt (installs the hooks with cargo install)"
try_repo --files good.tbt || fail "the hooks failed on a good suite"
grep -Eq '^tbt check\.+Passed' "$work/out" || fail "tbt check did not pass on good.tbt"
grep -Eq '^tbt fmt\.+Passed' "$work/out" || fail "tbt fmt did not pass on good.tbt"
if [ -n "${TBT_PRE_COMMIT_BINARY:-}" ] && [ ! -s "$work/installs" ]; then
  fail "pre-commit did not install the hooks through cargo install"
fi
echo "  passed ($((SECONDS - start)) s)"

start=$SECONDS
echo "try-repo on bad.tbt and ugly.tbt"
if try_repo --files bad.tbt ugly.tbt; then
  fail "the hooks passed on a suite with an error"
fi
grep -Eq '^tbt check\.+Failed' "$work/out" || fail "tbt check did not fail on bad.tbt"
grep -q 'error\[TBT0202\]' "$work/out" || fail "the output does not show diagnostic TBT0202"
grep -q 'bad\.tbt:4:' "$work/out" || fail "the diagnostic does not point at bad.tbt line 4"
! grep -q 'ugly\.tbt:[0-9]' "$work/out" || fail "tbt check reported a diagnostic on ugly.tbt"
grep -Eq '^tbt fmt\.+Failed' "$work/out" || fail "tbt fmt did not fail on ugly.tbt"
grep -q 'files were modified by this hook' "$work/out" || fail "tbt fmt did not rewrite ugly.tbt"
expected=$'test ugly {\n  trigger http GET "http://127.0.0.1:8080/"\n}\n'
[ "$(cat ugly.tbt; echo x)" = "${expected}x" ] || fail "ugly.tbt is not in the canonical layout: $(cat ugly.tbt)"
git diff --quiet -- bad.tbt good.tbt || fail "tbt fmt changed a file it should have left alone"
echo "  failed as it should, with TBT0202 ($((SECONDS - start)) s)"
