#!/usr/bin/env bash
# Redis instructions per job inside EVALSHA (scripts, the commands they
# call, the conversions between them) for the gateway-like scenarios of
# examples/lua_cost.rs, counted by callgrind: repeatable within ~0.5 %,
# unlike times on a shared VM.
#
#   cargo build --release -p interop-tests --example lua_cost
#   bash interop-tests/lua-instructions.sh [jobs, default 2000] [binary]
#
# Rows: adds in batches of 10 and single adds (50 in flight); a worker at
# concurrency 50 and at concurrency 1 fed by single adds (its rows include
# those adds: subtract the add row for the worker alone). Each job has a
# custom id and removeOnComplete/removeOnFail {age: 3600}, as the
# gateway's. `binary` (default target/release/examples/lua_cost) lets two
# builds be compared on one server.
#
# The last two rows set our scripts beside their floor: the gateway's steady
# state in published mode (adds and the worker at once, each job with a
# reply channel), and lua-floor/floor.lua, the commands BullMQ's layout
# makes such a job cost, batched as our scripts batch them (10 jobs a call)
# with nothing around them.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-2000}
bin=${2:-target/release/examples/lua_cost}
[ -x "$bin" ] || { echo "build it first: cargo build --release -p interop-tests --example lua_cost" >&2; exit 1; }
command -v callgrind_control >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="redis://127.0.0.1:$port/"
valgrind --tool=callgrind --instr-atstart=no --toggle-collect=evalGenericCommand \
  --callgrind-out-file="$dir/cg.%p" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  >"$dir/valgrind.log" 2>&1 &
vg=$!
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; wait "$vg" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 150); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
# scripts loaded before counting
LUA_COST_URL=$url "$bin" 100 gw >/dev/null

count() { # label jobs scenario (env set by the caller); scenario "floor": floor.lua
  redis-cli -p "$port" flushall >/dev/null
  rm -f "$dir"/cg.*.*
  if [ "$3" = floor ]; then
    sha=$(redis-cli -p "$port" script load "$(cat interop-tests/lua-floor/floor.lua)")
    python3 interop-tests/lua-floor/requests.py "$sha" "$2" >"$dir/floor.resp"
  fi
  callgrind_control -z "$vg" >/dev/null 2>&1
  callgrind_control -i on "$vg" >/dev/null 2>&1
  if [ "$3" = floor ]; then
    redis-cli -p "$port" --pipe <"$dir/floor.resp" >/dev/null
  else
    LUA_COST_WARM=0 LUA_COST_URL=$url "$bin" "$2" "$3" >/dev/null
  fi
  callgrind_control -i off "$vg" >/dev/null 2>&1
  callgrind_control -d "$vg" >/dev/null 2>&1
  total=$(grep -h -m1 '^totals:' "$dir"/cg.*.* | awk '{print $2}')
  printf "%-34s %10d\n" "$1" $((total / $2))
}

printf "%-34s %10s\n" scenario "instr/job"
count "adds, batches of 10" "$jobs" gwadd
LUA_COST_PRODUCERS=50 LUA_COST_BATCH=1 count "adds, single" "$jobs" gwadd
count "adds + worker, concurrency 50" "$jobs" gwwork
LUA_COST_PRODUCERS=50 LUA_COST_BATCH=1 LUA_COST_CONCURRENCY=1 \
  count "single adds + worker, concurrency 1" "$((jobs / 2))" gwwork
LUA_COST_PUBLISH=reply count "gateway steady state, published" "$jobs" gw
count "layout's commands alone (floor)" "$jobs" floor
