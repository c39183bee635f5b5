#!/usr/bin/env bash
# Installs the pinned packages of the real clients that the tests and the
# benchmarks run; `interop_tests::clients` (src/clients.rs) calls it and knows
# the resulting paths, for every crate's tests.
#
#   bash interop-tests/setup.sh [part ...]     from any cwd
#
# Parts: `node` (npm ci in node/: bullmq 6.7.0), `python` (python/.venv with
# requirements.txt: bullmq 3.4.4), `prd-stack` (npm ci in prd-stack/, the
# gateway benchmark's peer), `clients-js` (npm ci and the TypeScript build in
# ../clients/js, the SDK's tests), `clients-js-browser` (npm ci in
# ../clients/js/test/browser: playwright-core, which drives Debian's chromium;
# it downloads no browser), `clients-js-bun` (npm ci in ../clients/js/test/bun:
# the bun runtime, whose binary comes in the @oven/bun-<platform> package).
# Without arguments: node and python.
# Idempotent and fast when nothing changed: each part is skipped while a stamp
# holding the hash of its lock file matches.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# One setup at a time: test binaries run in parallel and each may ask for
# the same part; two `npm ci` in one directory leave a half-installed
# node_modules behind a stamp that says it is complete.
if command -v flock > /dev/null; then
  exec 9> "$here/.setup.lock"
  flock 9
fi

hash_of() {
  sha256sum "$@" | sha256sum | cut -d' ' -f1
}

# npm ci in <dir> (default: the part's name) unless node_modules/.interop-stamp holds the lock's hash
npm_part() {
  local dir="$here/${2:-$1}"
  local stamp="$dir/node_modules/.interop-stamp"
  local hash
  hash="$(hash_of "$dir/package.json" "$dir/package-lock.json")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
    echo "setup: $1 npm packages up to date"
  else
    echo "setup: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund)
    echo "$hash" > "$stamp"
  fi
}

# python/.venv with requirements.txt unless its stamp holds their hash
python_part() {
  local py_dir="$here/python"
  local venv="$py_dir/.venv"
  local stamp="$venv/.interop-stamp"
  local python="${PYTHON:-python3}"
  local hash
  hash="$(hash_of "$py_dir/requirements.txt")"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
    echo "setup: python venv up to date"
  else
    echo "setup: creating venv in $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      -r "$py_dir/requirements.txt"
    echo "$hash" > "$stamp"
  fi
}

# npm ci and tsc in clients/js unless dist/.interop-stamp holds the hash of the
# lock and the sources
clients_js_part() {
  local dir="$here/../clients/js"
  local stamp="$dir/dist/.interop-stamp"
  local hash
  hash="$(hash_of "$dir/package.json" "$dir/package-lock.json" "$dir/tsconfig.json" "$dir"/src/*.ts)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
    echo "setup: clients/js up to date"
  else
    echo "setup: npm ci and build in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund && npm run build)
    echo "$hash" > "$stamp"
  fi
}

parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(node python)
for part in "${parts[@]}"; do
  case "$part" in
    node | prd-stack) npm_part "$part" ;;
    python) python_part ;;
    clients-js) clients_js_part ;;
    clients-js-browser) npm_part "$part" ../clients/js/test/browser ;;
    clients-js-bun) npm_part "$part" ../clients/js/test/bun ;;
    *) echo "setup: unknown part $part (node, python, prd-stack, clients-js, clients-js-browser, clients-js-bun)" >&2; exit 2 ;;
  esac
done
