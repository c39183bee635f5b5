#!/usr/bin/env bash
# Instructions each Rust peer's own process executes per job (ours and the
# official Rust port), counted by valgrind's callgrind: the client side of
# what redis-instructions.sh counts on the Redis side. Each peer runs every
# scenario twice, with 10 jobs and with 10 + N; the difference divided by N
# leaves out process start-up and connecting. Repeatable within ~0.5 %, unlike
# times on a shared VM. (Node's JIT makes its counts meaningless; not run.)
#
#   cargo build --release -p interop-tests --example bench
#   bash interop-tests/client-instructions.sh [jobs, default 2000] [scenario ...]
source "$(dirname "$0")/callgrind-common.sh"

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --daemonize yes >/dev/null
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
url="redis://127.0.0.1:$port/"

# instructions of one peer run of `n` jobs
count() { # peer scenario n
  redis-cli -p "$port" flushall >/dev/null
  if [[ $2 == worker* ]]; then
    "$bench" --peer ours bulk "$url" q "$3" >/dev/null
  fi
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bench" --peer "$1" "$2" "$url" q "$3" 2>&1 |
    awk '/refs:/ { gsub(",", "", $NF); print $NF }'
}

printf "%-10s %14s %14s %9s\n" scenario ours official "x offic."
for scenario in "${scenarios[@]}"; do
  declare -A per=()
  for peer in ours official; do
    base=$(count "$peer" "$scenario" 10)
    full=$(count "$peer" "$scenario" $((jobs + 10)))
    per[$peer]=$(((full - base) / jobs))
  done
  awk -v s="$scenario" -v o="${per[ours]}" -v f="${per[official]}" \
    'BEGIN { printf "%-10s %14d %14d %9.2f\n", s, o, f, o ? f / o : 0 }'
done
echo "(client instructions per job, start-up left out; x = how many times ours the peer's count is)"
