#!/usr/bin/env bash
# Installs the pinned Node and Python dependencies of the interop drivers.
# Idempotent and fast when nothing changed: each half is skipped while a stamp
# holding the hash of its lock file matches. Works from any cwd.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

hash_of() {
  sha256sum "$@" | sha256sum | cut -d' ' -f1
}

# --- Node: npm ci from package-lock.json
node_dir="$here/node"
node_stamp="$node_dir/node_modules/.interop-stamp"
node_hash="$(hash_of "$node_dir/package.json" "$node_dir/package-lock.json")"
if [[ -f "$node_stamp" && "$(cat "$node_stamp")" == "$node_hash" ]]; then
  echo "setup: node deps up to date"
else
  echo "setup: npm ci in $node_dir"
  (cd "$node_dir" && npm ci --no-audit --no-fund)
  echo "$node_hash" > "$node_stamp"
fi

# --- Python: venv + pip install -r requirements.txt
py_dir="$here/python"
venv="$py_dir/.venv"
py_stamp="$venv/.interop-stamp"
python="${PYTHON:-python3}"
py_hash="$(hash_of "$py_dir/requirements.txt")"
if [[ -x "$venv/bin/python" && -f "$py_stamp" && "$(cat "$py_stamp")" == "$py_hash" ]]; then
  echo "setup: python venv up to date"
else
  echo "setup: creating venv in $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$py_dir/requirements.txt"
  echo "$py_hash" > "$py_stamp"
fi
