// The PRD's worker (sections 2 and 4.3), a benchmark peer for our `worker`
// binary: a BullMQ Worker on queue `demo`; `echo` returns {"echo": params}.
// Results, failures and progress are published on the Redis channel
// `job:{jobId}`, where server.mjs forwards them to the sockets watching.
//
//   REDIS_URL=redis://127.0.0.1:6379 CONCURRENCY=10 node_modules/.bin/bun worker.mjs
//
// It prints `ready` once the worker is running.

import { Worker } from "bullmq";
import IORedis from "ioredis";

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const concurrency = Number(process.env.CONCURRENCY ?? 10);

const handlers = {
  echo: async (params) => ({ echo: params }),
  sleep: async (params) => {
    await new Promise((r) => setTimeout(r, Number(params?.ms ?? 100)));
    return { slept: Number(params?.ms ?? 100) };
  },
  fail: async (params) => {
    throw new Error(String(params?.message ?? "failed on purpose"));
  },
};

const publisher = new IORedis(redisUrl, { maxRetriesPerRequest: null });
const connection = new IORedis(redisUrl, { maxRetriesPerRequest: null });

const worker = new Worker(
  "demo",
  async (job) => {
    const handler = handlers[job.name];
    if (!handler) throw new Error(`unknown method demo.${job.name}`);
    return handler(job.data, job);
  },
  { connection, concurrency },
);

const publish = (jobId, event) => publisher.publish(`job:${jobId}`, JSON.stringify(event));

// Published once BullMQ has stored the outcome, so a client that asks for the
// job's state after its result sees it finished.
worker.on("completed", (job, result) => publish(job.id, { type: "result", result }));
worker.on("failed", (job, err) => {
  if (!job) return;
  const final = job.attemptsMade >= (job.opts.attempts ?? 1);
  if (final) publish(job.id, { type: "error", error: err?.message ?? String(err) });
});
worker.on("progress", (job, progress) => publish(job.id, { type: "progress", progress }));
worker.on("error", (err) => console.error("worker error:", err.message));

await worker.waitUntilReady();
console.log("ready");

async function shutdown() {
  await worker.close();
  publisher.disconnect();
  connection.disconnect();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
