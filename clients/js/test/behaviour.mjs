// Connection behaviour of the SDK against a real gateway, run by
// gateway/tests/it/sdk/behaviour.rs with
//   GW_URL      ws://127.0.0.1:<port>/ws
//   GW_SECRET   the gateway's HS256 secret (this script mints its tokens)
//   GW_SUB      the user
//   SCENARIOS   "main" (token_refresh, heartbeat, queue_bounded, abort_before_accepted; a gateway with
//               jwt leeway 0) or "abuse" (reconnect_after_4429; a gateway with
//               user_rate 2/2, rate_limit_close_after 3, abuse_cooldown 2 s)
// A TCP proxy in this script stands between the client and the gateway where a
// scenario needs the network to misbehave: refusing, or silently dropping
// everything (a dead socket that never closes).
// Prints "ok <scenario>" for each scenario that passed; exits non-zero on the first failure.
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { connect, createServer } from "node:net";
import { Client, ErrorCode } from "bullmq-wire-client";

const gwUrl = process.env.GW_URL;
const secret = process.env.GW_SECRET;
const sub = process.env.GW_SUB;
const which = process.env.SCENARIOS ?? "main";

function b64url(data) {
  return Buffer.from(data).toString("base64url");
}

/** An HS256 token for GW_SUB expiring in `secs`. */
function mint(secs) {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const exp = Math.floor(Date.now() / 1000) + secs;
  const body = b64url(JSON.stringify({ sub, exp }));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

/** A TCP proxy to the gateway: mode "forward", "refuse" (accept and drop at once) or "freeze" (swallow everything, close nothing). */
async function proxy(mode) {
  const gw = new URL(gwUrl);
  const state = { mode, sockets: [] };
  const server = createServer((down) => {
    if (state.mode === "refuse") {
      down.destroy();
      return;
    }
    const up = connect(Number(gw.port), gw.hostname);
    state.sockets.push(down, up);
    const pipe = (from, to) =>
      from.on("data", (chunk) => {
        if (state.mode !== "freeze") to.write(chunk);
      });
    pipe(down, up);
    pipe(up, down);
    const end = () => {
      down.destroy();
      up.destroy();
    };
    down.on("error", end).on("close", end);
    up.on("error", end).on("close", end);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `ws://127.0.0.1:${server.address().port}/ws`;
  state.close = () => {
    for (const s of state.sockets) s.destroy();
    server.close();
  };
  return state;
}

function waitFor(what, cond, ms = 15_000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

async function scenario(name, fn) {
  const started = Date.now();
  await fn();
  console.log(`ok ${name} ${Date.now() - started}ms`);
}

if (which === "main") {
  await scenario("token_refresh", async () => {
    // tokens live 3 s and the gateway has no leeway: without rpc.auth the
    // socket would be closed with 4401 at expiry and reopened
    let minted = 0;
    const client = new Client(gwUrl, {
      token: () => {
        minted++;
        return mint(3);
      },
    });
    const opens = [];
    const closes = [];
    client.on("open", (e) => opens.push(e));
    client.on("close", (e) => closes.push(e));
    try {
      const result = await client.call("demo.sleep", { ms: 5000, steps: 5 });
      assert.deepEqual(result, { slept: 5000 });
      // a further call after two refreshes still goes through on the same socket
      assert.deepEqual(await client.call("demo.echo", { after: "refresh" }), { after: "refresh" });
      assert.equal(opens.length, 1, `opened ${opens.length} times; closes: ${JSON.stringify(closes)}`);
      assert.deepEqual(closes, []);
      assert.ok(minted >= 3, `token function called ${minted} times`);
    } finally {
      client.close();
    }
  });

  await scenario("heartbeat", async () => {
    // the socket through the proxy goes silent without closing; the probe
    // notices within interval + timeout, and the call ends via the other URL
    const p = await proxy("forward");
    const interval = 300;
    const timeout = 300;
    const client = new Client([p.url, gwUrl], {
      token: mint(600),
      heartbeatIntervalMs: interval,
      heartbeatTimeoutMs: timeout,
      backoff: { initialMs: 20, maxMs: 100 },
    });
    const opens = [];
    const closes = [];
    client.on("open", (e) => opens.push(e.url));
    client.on("close", (e) => closes.push({ ...e, at: Date.now() }));
    try {
      let progressed = false;
      const call = client.call("demo.sleep", { ms: 2500, steps: 10 }, { onProgress: () => (progressed = true) });
      await waitFor("progress", () => progressed);
      p.mode = "freeze";
      const frozenAt = Date.now();
      await waitFor("the dead socket to be noticed", () => closes.length > 0, 5_000);
      const noticed = closes[0].at - frozenAt;
      assert.equal(closes[0].code, 4000, JSON.stringify(closes[0]));
      // a probe goes out after `interval` of silence and gives up after `timeout`; checks run every 75 ms
      assert.ok(noticed <= interval + timeout + 400, `noticed after ${noticed} ms`);
      assert.deepEqual(await call, { slept: 2500 });
      assert.deepEqual(opens, [p.url, gwUrl]);
    } finally {
      client.close();
      p.close();
    }
  });

  await scenario("queue_bounded", async () => {
    // no connection: calls wait in the queue up to queueLimit; more reject at once
    const p = await proxy("refuse");
    const client = new Client(p.url, {
      token: mint(600),
      queueLimit: 3,
      backoff: { initialMs: 20, maxMs: 100 },
    });
    let opened = 0;
    client.on("open", () => opened++);
    try {
      const waiting = [1, 2, 3].map((n) => client.call("demo.echo", { n }));
      const started = Date.now();
      let error;
      await client.call("demo.echo", { n: 4 }).catch((e) => (error = e));
      assert.ok(error, "the call over the limit was accepted");
      assert.equal(error.code, ErrorCode.QueueFull);
      assert.equal(error.code, -32090);
      assert.ok(Date.now() - started < 1000, "the overflow rejects at once");
      assert.equal(opened, 0);
      assert.equal(client.pendingCount, 3);
      p.mode = "forward";
      const results = await Promise.all(waiting);
      assert.deepEqual(results, [{ n: 1 }, { n: 2 }, { n: 3 }]);
      assert.equal(opened, 1);
    } finally {
      client.close();
      p.close();
    }
  });

  await scenario("abort_before_accepted", async () => {
    // aborted after the call was sent but before rpc.accepted named its job:
    // the job (delayed 60 s) must still be removed
    const owner = createHash("sha1").update(sub).digest("hex").slice(0, 20);
    const key = `abort-early-${Date.now()}`;
    const jobId = `demo.${owner}.${key}`;
    const client = new Client(gwUrl, { token: mint(600) });
    try {
      // the gateway's job id is <service>.<owner>.<key> (gateway/src/ids.rs)
      let probe;
      await client.call("demo.echo", {}, { jobId: `${key}-probe`, onAccepted: (id) => (probe = id) });
      assert.equal(probe, `demo.${owner}.${key}-probe`);
      const ac = new AbortController();
      let accepted;
      const call = client.call("demo.echo", { early: true }, {
        jobId: key,
        options: { delay: 60_000 },
        signal: ac.signal,
        onAccepted: (id) => (accepted = id),
      });
      ac.abort(); // the frame went out in call(); no answer has come yet
      const err = await call.then(() => undefined, (e) => e);
      assert.equal(err?.code, ErrorCode.Aborted);
      assert.equal(accepted, undefined);
      // a status request may overtake the enqueue, so the job must be gone for
      // good: absent in every poll over half a second, a second or more after
      // the abort (left alone it would stay delayed for 60 s)
      const abortedAt = Date.now();
      const states = [];
      let absentSince;
      while (Date.now() - abortedAt < 10_000) {
        const state = await client.status(jobId).then((s) => s.state, (e) => e.code);
        if (state === ErrorCode.JobNotFound) {
          absentSince ??= Date.now();
          if (Date.now() - abortedAt >= 1000 && Date.now() - absentSince >= 500) return;
        } else {
          states.push(state);
          absentSince = undefined;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.fail(`the job aborted before acceptance stayed: ${states.slice(-3)}`);
    } finally {
      client.close();
    }
  });
}

if (which === "abuse") {
  await scenario("reconnect_after_4429", async () => {
    const maxMs = 500;
    const cooldownMs = 2000;
    const client = new Client(gwUrl, { token: mint(600), backoff: { initialMs: 20, maxMs } });
    const opens = [];
    const closes = [];
    const attempts = [];
    client.on("open", () => opens.push(Date.now()));
    client.on("close", (e) => closes.push({ ...e, at: Date.now() }));
    client.on("reconnecting", (e) => attempts.push(e));
    const state = () => JSON.stringify({ opens, closes, attempts });
    try {
      await waitFor("the first open", () => opens.length === 1);
      // user_rate 2/2: two go through, the rest are refused, and the third
      // refusal in a row closes the socket with 4429; the refused calls wait
      // to be resent, and after the cool-down every call ends with its result
      const batch = client.batch([1, 2, 3, 4, 5, 6].map((n) => ({ method: "demo.echo", params: { n } })));
      await waitFor("the 4429 close", () => closes.length > 0);
      assert.equal(closes[0].code, 4429, state());
      assert.equal(closes[0].reconnect, true);
      const results = await batch;
      assert.deepEqual(
        results,
        [1, 2, 3, 4, 5, 6].map((n) => ({ ok: true, result: { n } })),
      );
      // once back, the backlog was resent without flooding again: one reopen, one 4429
      assert.equal(opens.length, 2, state());
      assert.deepEqual(closes.filter((c) => c.code === 4429).length, 1, state());
      const away = opens[1] - closes[0].at;
      // the gateway refused the user (HTTP 429) for its cooldown...
      assert.ok(away >= cooldownMs - 300, `reopened after ${away} ms, inside the cooldown`);
      // ...and the client came back soon after it ended, without spinning meanwhile
      assert.ok(away <= cooldownMs + 2 * maxMs + 1000, `reopened only after ${away} ms`);
      const limit = Math.ceil(cooldownMs / (maxMs / 2)) + 2;
      assert.ok(attempts.length <= limit, `${attempts.length} attempts in the cooldown (at most ${limit})`);
      attempts.forEach((a) => assert.ok(a.delayMs >= maxMs / 2, state()));
      assert.deepEqual(await client.call("demo.echo", { back: true }), { back: true });
      assert.equal(opens.length, 2, state());
    } finally {
      client.close();
    }
  });
}
