# Sourced by redis-instructions.sh and client-instructions.sh: their shared
# arguments ([jobs, default 2000] [scenario ...]) and checks. Sets `jobs`,
# `scenarios` and `bench`, from the repository root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs=${1:-2000}
shift || true
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(add bulk worker1 worker100)
bench=target/release/examples/bench
[ -x "$bench" ] || { echo "build the bench first: cargo build --release -p interop-tests --example bench" >&2; exit 1; }
command -v callgrind_control >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
