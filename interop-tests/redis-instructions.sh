#!/usr/bin/env bash
# Instructions redis-server executes inside scripts per job, for each peer
# (ours, the official Rust port, Node bullmq) and each benchmark scenario,
# counted by valgrind's callgrind. Unlike jobs/s on a shared 2-core VM these
# counts repeat within ~0.5 % from run to run, so small differences in script
# cost show up.
#
#   cargo build --release -p interop-tests --example bench
#   bash interop-tests/redis-instructions.sh [jobs, default 2000] [scenario ...]
#   (RI_PEERS="ours official" measures only those peers)
#
# Counted: everything Redis runs under EVAL/EVALSHA (the script, the
# commands it calls, the conversions between them). Not counted: reading
# requests and writing replies, the same per call for every peer, and the
# benchmark's own polling. Needs valgrind (callgrind_control) and node.
source "$(dirname "$0")/callgrind-common.sh"

dir=$(mktemp -d)
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="redis://127.0.0.1:$port/"
valgrind --tool=callgrind --instr-atstart=no --toggle-collect=evalGenericCommand \
  --callgrind-out-file="$dir/cg.%p" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  >"$dir/valgrind.log" 2>&1 &
vg=$!
for _ in $(seq 150); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done

run_peer() { # peer scenario queue count
  if [ "$1" = node ]; then
    node interop-tests/node/bench.mjs "$2" "$url" "$3" "$4" >/dev/null
  else
    "$bench" --peer "$1" "$2" "$url" "$3" "$4" >/dev/null
  fi
}

printf "%-10s %14s %14s %14s %9s %9s\n" scenario ours official node "x offic." "x node"
for scenario in "${scenarios[@]}"; do
  declare -A per=([ours]=0 [official]=0 [node]=0)
  for peer in ${RI_PEERS:-ours official node}; do
    redis-cli -p "$port" flushall >/dev/null
    queue="ri-$scenario-$peer"
    if [[ $scenario == worker* ]]; then
      "$bench" --peer ours bulk "$url" "$queue" "$jobs" >/dev/null
    fi
    # one small run first, so that script loading is not counted
    if [[ $scenario == worker* ]]; then
      "$bench" --peer ours bulk "$url" "warm-$peer" 1 >/dev/null
    fi
    run_peer "$peer" "$scenario" "warm-$peer" 1
    callgrind_control -z "$vg" >/dev/null 2>&1
    callgrind_control -i on "$vg" >/dev/null 2>&1
    run_peer "$peer" "$scenario" "$queue" "$jobs"
    callgrind_control -i off "$vg" >/dev/null 2>&1
    rm -f "$dir"/cg.*.*
    callgrind_control -d "$vg" >/dev/null 2>&1
    total=$(grep -h -m1 '^totals:' "$dir"/cg.*.* | awk '{print $2}')
    per[$peer]=$((total / jobs))
  done
  awk -v s="$scenario" -v o="${per[ours]}" -v f="${per[official]}" -v n="${per[node]}" \
    'BEGIN { printf "%-10s %14d %14d %14d %9.2f %9.2f\n", s, o, f, n, o ? f / o : 0, o ? n / o : 0 }'
done
echo "(instructions per job inside EVAL/EVALSHA; x = how many times ours the peer's count is)"
