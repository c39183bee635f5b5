#!/usr/bin/env bash
# Gateway RSS per idle authenticated socket (issue 14's idle measure).
#   interop-tests/idle/measure.sh <gateway-binary> <sockets> [tls|plain] [worker-binary]
# With a worker binary, it serves `demo` and each socket makes one call
# before it idles (sockets idle after use rather than fresh ones).
# Starts its own redis-server and gateway on loopback ports (a self-signed
# certificate for tls), opens the sockets from one Node process, prints the
# gateway's VmRSS before and after and the difference per socket. Raise
# `ulimit -n` above the socket count first (both processes need that many).
set -euo pipefail
bin=$1; n=$2; mode=${3:-tls}; worker=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(free_port); gport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --daemonize yes >/dev/null
if [ "$mode" = tls ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 1 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null
  extra=(--tls-cert-file "$dir/cert.pem" --tls-key-file "$dir/key.pem"); scheme=wss
else
  extra=(--plain-ws); scheme=ws
fi
RUST_LOG=warn "$bin" --listen "127.0.0.1:$gport" --redis-url "redis://127.0.0.1:$rport" \
  --jwt-secret idle-secret --services demo "${extra[@]}" >"$dir/gateway.log" 2>&1 &
gw=$!
hold_mode=
if [ -n "$worker" ]; then
  RUST_LOG=warn "$worker" --redis-url "redis://127.0.0.1:$rport" demo >"$dir/worker.log" 2>&1 &
  hold_mode=echo
fi
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$gport") 2>/dev/null && break; sleep 0.1; done
sleep 1
rss() { awk '/VmRSS/{print $2}' "/proc/$gw/status"; }
before=$(rss)
NODE_TLS_REJECT_UNAUTHORIZED=0 node --no-warnings --experimental-websocket "$here/hold.mjs" \
  "$scheme://127.0.0.1:$gport/ws" idle-secret "$n" $hold_mode >"$dir/hold.log" 2>&1 &
for _ in $(seq 1200); do grep -q '^answer' "$dir/hold.log" && break; sleep 0.5; done
sleep 3
after=$(rss)
grep -h '^open\|^answer' "$dir/hold.log" | cut -c1-100
awk -v b="$before" -v a="$after" -v n="$n" -v m="$mode" \
  'BEGIN { printf "%s, %d sockets: gateway RSS %d -> %d KiB, %.1f KiB per socket\n", m, n, b, a, (a-b)/n }'
