#!/usr/bin/env bash
# Smoke test of the Node and Python drivers against a throwaway redis-server
# on a free loopback port (never the one on 6379). Runs setup.sh first.
# Prints one line per check and a closing "N passed, N failed".
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/setup.sh" >/dev/null || { echo "setup.sh failed"; exit 1; }

NODE=(node "$here/node/driver.mjs")
PY=("$here/python/.venv/bin/python" "$here/python/driver.py")
tmp="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(cd "$tmp" && exec redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no >"$tmp/redis.log" 2>&1) &
redis_pid=$!
cleanup() { kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

url="redis://127.0.0.1:$port"
passed=0
failed=0

# check <label> <json-file> <python expression over `d`>
check() {
  if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($3) else 1)" "$2" 2>/dev/null; then
    passed=$((passed + 1)); echo "ok   $1"
  else
    failed=$((failed + 1)); echo "FAIL $1: $(head -c 600 "$2")"
  fi
}

# lines <file>: JSON-lines output as one JSON array (for check)
lines() { python3 -c "import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1]) if l.strip()]))" "$1"; }

cfg() { echo "{\"redisUrl\":\"$url\",\"queue\":\"$1\"${2:+,$2}}"; }

# Standard job mix: ids 1..6
MIX='"jobs":[{"name":"echo","data":{"a":[1,2]}},{"name":"log"},{"name":"fail","data":{"times":2},"opts":{"attempts":3,"backoff":{"type":"fixed","delay":100}}},{"name":"unrecoverable","opts":{"attempts":3}},{"name":"sleep","data":{"ms":150,"steps":3}},{"name":"other"}]'

# run_pair <queue> <producer> <worker>: add MIX, run worker to completion, inspect.
run_pair() {
  local q="$1" producer="$2" worker="$3"
  local -n prod="$producer" work="$worker"
  "${prod[@]}" add "$(cfg "$q" "$MIX")" >"$tmp/$q.add"
  check "$q: add" "$tmp/$q.add" 'd["ids"] == ["1","2","3","4","5","6"]'
  timeout 60 "${work[@]}" worker "$(cfg "$q" '"name":"w1","exitAfter":6,"watchStdin":false')" >"$tmp/$q.worker.raw"
  lines "$tmp/$q.worker.raw" >"$tmp/$q.worker"
  check "$q: worker ready first, closed last" "$tmp/$q.worker" 'd[0] == {"ready": True} and d[-1] == {"closed": True}'
  check "$q: worker events" "$tmp/$q.worker" '
    [e for e in d if e.get("event") == "completed" and e["id"] == "1"][0]["returnvalue"] == {"echo": {"a": [1, 2]}}
    and [e["attemptsMade"] for e in d if e.get("event") == "start" and e["id"] == "3"] == [0, 1, 2]
    and [e for e in d if e.get("event") == "failed" and e["id"] == "4"][0]["failedReason"] == "unrecoverable failure"
    and [e for e in d if e.get("event") == "completed" and e["id"] == "6"][0]["returnvalue"] is None'
  "${NODE[@]}" inspect "$(cfg "$q" '"ids":["1","2","3","4","5","7"],"states":["completed"],"asc":true')" >"$tmp/$q.inspect"
  check "$q: inspect" "$tmp/$q.inspect" '
    d["jobs"]["1"]["state"] == "completed" and d["jobs"]["7"] is None
    and d["jobs"]["2"]["logs"] == {"logs": ["line 1", "line 2"], "count": 2}
    and d["jobs"]["2"]["json"]["progress"] == {"stage": "half"}
    and d["jobs"]["3"]["json"]["attemptsMade"] == 3 and d["jobs"]["3"]["stacktraceLength"] == 2
    and d["jobs"]["3"]["json"]["returnvalue"] == {"attempts": 3}
    and d["jobs"]["4"]["state"] == "failed" and d["jobs"]["4"]["json"]["attemptsMade"] == 1
    and d["jobs"]["5"]["json"]["progress"] == 100 and d["jobs"]["5"]["json"]["timestamp"] == "<ts>"
    and d["counts"]["completed"] == 5 and d["counts"]["failed"] == 1
    and sorted(d["list"]) == ["1", "2", "3", "5", "6"]'
}

run_pair nn NODE NODE
run_pair pn PY NODE
run_pair np NODE PY
run_pair pp PY PY

# events: Node and Python QueueEvents watching a Node producer + Node worker.
"${NODE[@]}" events "$(cfg ev '"watchStdin":false')" >"$tmp/ev.node.raw" 2>"$tmp/ev.node.err" &
ev_node=$!
"${PY[@]}" events "$(cfg ev '"watchStdin":false')" >"$tmp/ev.py.raw" 2>"$tmp/ev.py.err" &
ev_py=$!
for _ in $(seq 100); do
  [[ -s "$tmp/ev.node.raw" && -s "$tmp/ev.py.raw" ]] && break
  sleep 0.1
done
"${NODE[@]}" add "$(cfg ev '"jobs":[{"name":"log"},{"name":"fail","data":{"times":5},"opts":{"attempts":2,"backoff":100}}]')" >/dev/null
timeout 60 "${NODE[@]}" worker "$(cfg ev '"exitAfter":2,"watchStdin":false')" >/dev/null
"${NODE[@]}" control "$(cfg ev '"op":"pause"')" >"$tmp/pause"
check "control pause" "$tmp/pause" 'd == {"ok": True, "result": None}'
"${NODE[@]}" inspect "$(cfg ev)" >"$tmp/paused"
check "inspect isPaused" "$tmp/paused" 'd["isPaused"] is True and d["meta"]["paused"] is True'
# wait until both readers have seen the last event, then stop them
for _ in $(seq 100); do
  grep -q '"paused"' "$tmp/ev.node.raw" && grep -q '"paused"' "$tmp/ev.py.raw" && break
  sleep 0.1
done
kill -TERM "$ev_node" "$ev_py"
wait "$ev_node" "$ev_py"
expected='["added","waiting","added","waiting","active","progress","completed","active","delayed","waiting","active","failed","retries-exhausted","drained","paused"]'
for side in node py; do
  lines "$tmp/ev.$side.raw" >"$tmp/ev.$side"
  check "events ($side) sequence" "$tmp/ev.$side" "[e['event'] for e in d if 'event' in e] == $expected and d[-1] == {'closed': True}"
done
check "events (node) payloads" "$tmp/ev.node" '
  [e for e in d if e.get("event") == "completed"][0]["args"] == {"jobId": "1", "returnvalue": {"logged": 2}, "prev": "active"}
  and [e for e in d if e.get("event") == "retries-exhausted"][0]["args"] == {"jobId": "2", "attemptsMade": "2"}
  and isinstance([e for e in d if e.get("event") == "delayed"][0]["args"]["delay"], int)'

# raw dump
"${NODE[@]}" raw "$(cfg ev)" >"$tmp/raw"
check "raw dump" "$tmp/raw" '
  d["keys"]["bull:ev:1"]["type"] == "hash" and d["keys"]["bull:ev:1"]["value"]["name"] == "log"
  and d["keys"]["bull:ev:1:logs"]["value"] == ["line 1", "line 2"]
  and [m for m, s in d["keys"]["bull:ev:completed"]["value"]] == ["1"]
  and d["keys"]["bull:ev:events"]["type"] == "stream" and d["keys"]["bull:ev:id"]["value"] == "2"'

# errors
"${NODE[@]}" control "$(cfg ev '"op":"jobRemove","id":"nope"')" >"$tmp/err1"; rc=$?
check "error exit code + JSON" "$tmp/err1" "'error' in d and $rc == 1"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
