#!/usr/bin/env bash
# What a gateway pays for jobs nobody watches, in each notifier mode (the reason
# keyspace notifications are the default and the events streams the fallback).
#
#   cargo build -p gateway -p worker      # or --release, and NC_BIN=target/release
#   bash interop-tests/notify-cost.sh [jobs, default 20000] [modes, default: none keyspace events]
#
# Each run starts its own redis-server, a gateway serving queue `demo` (no socket
# connects, so it watches nothing) unless the mode is `none`, adds the jobs with
# Node's bullmq (removeOnComplete), then lets the Rust worker run them all and
# prints the CPU seconds Redis and the gateway spent while they ran. CPU time,
# not wall time: it does not depend on what else this machine is doing.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-20000}; shift || true
modes=${*:-none keyspace events}
bin=${NC_BIN:-target/debug}
tck=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
proc_cpu() { awk -v t="$tck" '{printf "%.3f", ($14+$15)/t}' "/proc/$1/stat"; }
redis_cpu() { redis-cli -p "$1" info cpu | awk -F: '/used_cpu_(sys|user):/{s+=$2} END{printf "%.3f", s}'; }

run() { # mode
  local mode=$1 port gport dir rpid gpid="" wpid r0 r1 g0=0 g1=0
  port=$(free_port); gport=$(free_port); dir=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null &
  rpid=$!
  until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
  if [ "$mode" != none ]; then
    "$bin/gateway" --plain-ws --listen "127.0.0.1:$gport" --services demo --notify "$mode" \
      --redis-url "redis://127.0.0.1:$port" --jwt-secret notify-cost-secret-notify-cost >"$dir/gateway.log" 2>&1 &
    gpid=$!
    until grep -q -i listening "$dir/gateway.log" 2>/dev/null; do sleep 0.1; done
  fi
  (cd interop-tests/node && node --input-type=module -e "
    import { Queue } from 'bullmq';
    const q = new Queue('demo', { connection: { host: '127.0.0.1', port: $port } });
    for (let i = 0; i < $jobs; i += 500) {
      const batch = [];
      for (let j = i; j < Math.min($jobs, i + 500); j++)
        batch.push({ name: 'echo', data: { i: j }, opts: { removeOnComplete: true } });
      await q.addBulk(batch);
    }
    await q.close();")
  r0=$(redis_cpu "$port"); [ -n "$gpid" ] && g0=$(proc_cpu "$gpid")
  "$bin/worker" demo --redis-url "redis://127.0.0.1:$port" --concurrency 50 >"$dir/worker.log" 2>&1 &
  wpid=$!
  until [ "$(redis-cli -p "$port" llen bull:demo:wait)" = 0 ] && [ "$(redis-cli -p "$port" llen bull:demo:active)" = 0 ]; do sleep 0.2; done
  sleep 1 # the last events reach the gateway
  r1=$(redis_cpu "$port"); [ -n "$gpid" ] && g1=$(proc_cpu "$gpid")
  awk -v m="$mode" -v n="$jobs" -v r="$(echo "$r1 - $r0" | bc)" -v g="$(echo "$g1 - $g0" | bc)" \
    'BEGIN{printf "%-9s jobs %d  redis %.2f s (%.1f us/job)  gateway %.2f s (%.1f us/job)\n", m, n, r, r*1e6/n, g, g*1e6/n}'
  kill "$wpid" ${gpid:+"$gpid"} 2>/dev/null || true
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
for m in $modes; do run "$m"; done
