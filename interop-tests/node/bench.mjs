#!/usr/bin/env node
// One benchmark scenario with Node bullmq, for examples/bench.rs.
//   node bench.mjs <scenario> <redisUrl> <queue> <count>
// Prints {"seconds": s, "maxRssKb": kb}. Scenarios: add, bulk, worker1, worker100.
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';

const [scenario, redisUrl, queueName, countArg] = process.argv.slice(2);
const count = Number(countArg);
const url = new URL(redisUrl);
const connection = { host: url.hostname, port: Number(url.port) };
const data = (i) => ({ index: i, payload: 'x'.repeat(100) });

async function waitCompleted(redis, n) {
  for (;;) {
    if ((await redis.zcard(`bull:${queueName}:completed`)) >= n) return;
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function main() {
  const queue = new Queue(queueName, { connection });
  await queue.waitUntilReady();
  let seconds;
  if (scenario === 'add') {
    const t = process.hrtime.bigint();
    for (let i = 0; i < count; i++) await queue.add('bench', data(i));
    seconds = Number(process.hrtime.bigint() - t) / 1e9;
  } else if (scenario === 'bulk') {
    const t = process.hrtime.bigint();
    for (let i = 0; i < count; i += 50) {
      const batch = [];
      for (let j = i; j < Math.min(i + 50, count); j++) batch.push({ name: 'bench', data: data(j) });
      await queue.addBulk(batch);
    }
    seconds = Number(process.hrtime.bigint() - t) / 1e9;
  } else if (scenario === 'worker1' || scenario === 'worker100') {
    const redis = new IORedis(connection);
    const t = process.hrtime.bigint();
    const worker = new Worker(queueName, async () => ({ ok: true }), {
      connection,
      concurrency: scenario === 'worker1' ? 1 : 100,
    });
    await waitCompleted(redis, count);
    seconds = Number(process.hrtime.bigint() - t) / 1e9;
    await worker.close();
    redis.disconnect();
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
  await queue.close();
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ seconds, maxRssKb: process.resourceUsage().maxRSS, cpuSeconds: (cpu.user + cpu.system) / 1e6 }) + '\n');
}

main().then(() => process.exit(0), (err) => {
  process.stdout.write(JSON.stringify({ error: String(err) }) + '\n');
  process.exit(1);
});
