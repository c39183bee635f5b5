// The SDK against a real gateway with the `demo` worker of gateway/tests/it/support:
// run by gateway/tests/it/sdk/js.rs as `node suite.mjs` (and bun.rs as `bun suite.mjs`) with GW_URL and GW_TOKEN set.
// Prints "ok <scenario>" for each scenario that passed; exits non-zero on the first failure.
import assert from "node:assert/strict";
import { Client, ErrorCode, RpcError } from "bullmq-wire-client";

const url = process.env.GW_URL;
const token = process.env.GW_TOKEN;
const client = new Client(url, { token });
let opened = 0;
client.on("open", () => opened++);

async function scenario(name, fn) {
  await fn();
  console.log(`ok ${name}`);
}

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail("expected a rejection");
}

if (process.versions.bun) {
  // run by gateway/tests/it/sdk/bun.rs: Bun's own WebSocket, not `ws`
  await scenario("runtime_bun", async () => {
    assert.equal(typeof globalThis.WebSocket, "function");
  });
}

await scenario("echo", async () => {
  const result = await client.call("demo.echo", { hi: 1 });
  assert.deepEqual(result, { hi: 1 });
});

await scenario("progress", async () => {
  const seen = [];
  let accepted;
  const result = await client.call("demo.sleep", { ms: 300, steps: 3 }, {
    onAccepted: (jobId) => (accepted = jobId),
    onProgress: (p) => seen.push(p),
  });
  assert.deepEqual(result, { slept: 300 });
  assert.ok(accepted && accepted.startsWith("demo."), String(accepted));
  // progress is best-effort (the end may overtake the last value), never out of order
  assert.ok(seen.length >= 1, "some progress");
  seen.forEach((p, i) => {
    assert.equal(p.of, 3);
    if (i > 0) assert.ok(p.step > seen[i - 1].step, JSON.stringify(seen));
  });
});

await scenario("retried", async () => {
  const result = await client.call("demo.flaky", { failures: 2 }, {
    options: { attempts: 3, backoff: 10 },
  });
  assert.deepEqual(result, { attempt: 3 });
});

await scenario("failed_for_good", async () => {
  const err = await rejection(
    client.call("demo.fail", { message: "no luck" }, { options: { attempts: 2, backoff: 10 } }),
  );
  assert.ok(err instanceof RpcError);
  assert.equal(err.code, ErrorCode.JobFailed);
  assert.equal(err.retryable, false);
  assert.equal(err.data.failedReason, "no luck");
  assert.equal(err.data.attemptsMade, 2);
});

await scenario("cancel", async () => {
  // a delayed job has not started: cancel removes it and the call rejects with -32011
  let jobId;
  const accepted = new Promise((resolve) => (jobId = resolve));
  const call = client.call("demo.echo", { later: true }, {
    options: { delay: 60_000 },
    onAccepted: (id) => jobId(id),
  });
  // handled from the start: the removal may reject the call before cancel's answer arrives
  const ended = rejection(call);
  const id = await accepted;
  const status = await client.status(id);
  assert.equal(status.state, "delayed");
  const answer = await client.cancel(id);
  assert.equal(answer.cancelled, true);
  const err = await ended;
  assert.equal(err.code, ErrorCode.JobRemoved);
});

await scenario("abort", async () => {
  const ac = new AbortController();
  let jobId;
  const accepted = new Promise((resolve) => (jobId = resolve));
  const call = client.call("demo.echo", {}, {
    options: { delay: 60_000 },
    signal: ac.signal,
    onAccepted: (id) => jobId(id),
  });
  const id = await accepted;
  ac.abort();
  const err = await rejection(call);
  assert.equal(err.code, ErrorCode.Aborted);
  // the job was cancelled on the gateway: it is gone, or going
  for (let i = 0; i < 100; i++) {
    const state = await client.status(id).then((s) => s.state, (e) => e.code);
    if (state === ErrorCode.JobNotFound) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail("the aborted job was not removed");
});

await scenario("batch", async () => {
  const results = await client.batch([
    { method: "demo.echo", params: { n: 1 } },
    { method: "demo.fail", params: { message: "in a batch" } },
    { method: "demo.echo", params: { n: 3 } },
  ]);
  assert.equal(results.length, 3);
  assert.deepEqual(results[0], { ok: true, result: { n: 1 } });
  assert.equal(results[1].ok, false);
  assert.equal(results[1].error.code, ErrorCode.JobFailed);
  assert.deepEqual(results[2], { ok: true, result: { n: 3 } });
});

await scenario("subscribe", async () => {
  let jobId;
  const accepted = new Promise((resolve) => (jobId = resolve));
  const call = client.call("demo.sleep", { ms: 200, steps: 2 }, { onAccepted: (id) => jobId(id) });
  const id = await accepted;
  const seen = [];
  const [a, b] = await Promise.all([call, client.subscribe(id, { onProgress: (p) => seen.push(p) })]);
  assert.deepEqual(a, { slept: 200 });
  assert.deepEqual(b, { slept: 200 });
});

await scenario("concurrent_500", async () => {
  const calls = [];
  for (let i = 0; i < 500; i++) calls.push(client.call("demo.echo", { i }));
  const results = await Promise.all(calls);
  results.forEach((r, i) => assert.deepEqual(r, { i }));
});

await scenario("one_connection", async () => {
  assert.equal(opened, 1);
  assert.equal(client.pendingCount, 0);
});

client.close();
const err = await rejection(client.call("demo.echo", {}));
assert.equal(err.code, ErrorCode.Closed);
console.log("ok closed");
