// Failover: run by gateway/tests/it/sdk/failover.rs with GW_URLS (two gateways on
// one Redis) and GW_TOKEN. Starts long calls with progress on the first gateway,
// prints "inflight" once each has progressed; the test then kills that gateway
// (SIGKILL). Every call must end exactly once with its result, via the other.
import assert from "node:assert/strict";
import { Client } from "bullmq-wire-client";

const urls = process.env.GW_URLS.split(",");
const client = new Client(urls, {
  token: process.env.GW_TOKEN,
  backoff: { initialMs: 50, maxMs: 500 },
  heartbeatIntervalMs: 2000,
  heartbeatTimeoutMs: 2000,
});
const opens = [];
client.on("open", ({ url }) => opens.push(url));

const N = 12;
const progressed = new Set();
let everyoneProgressed;
const allProgressed = new Promise((r) => (everyoneProgressed = r));
const progressAfterReopen = new Set();
const settled = new Array(N).fill(0);
const calls = [];
for (let i = 0; i < N; i++) {
  const p = client.call("demo.sleep", { ms: 4000, steps: 40 }, {
    onProgress: () => {
      progressed.add(i);
      if (opens.length > 1) progressAfterReopen.add(i);
      if (progressed.size === N) everyoneProgressed();
    },
  });
  calls.push(p.finally(() => settled[i]++));
}
await allProgressed;
assert.deepEqual(opens, [urls[0]]);
console.log("inflight");

const results = await Promise.all(calls);
results.forEach((r) => assert.deepEqual(r, { slept: 4000 }));
assert.deepEqual(settled, new Array(N).fill(1));
assert.equal(opens.length, 2, JSON.stringify(opens));
assert.equal(opens[1], urls[1]);
assert.ok(progressAfterReopen.size > 0, "progress resumed on the other gateway");
assert.equal(client.pendingCount, 0);
console.log("ok failover");
client.close();
