#!/usr/bin/env node
// An unmodified npm bullmq Worker serving the `demo` service next to the Rust
// `worker` binary, with the same methods:
//
//   echo   returns {"echo": data}
//   sleep  data {ms, steps}: sleeps ms in `steps` slices, progress after each; {"slept": ms}
//   fail   data {times}: fails ("demo failure") while attemptsMade < times; {"attempts": n}
//
// Any other job name fails without a retry, as in the Rust worker.
//
//   node demo-worker.mjs
//
// Environment: REDIS_URL (or REDIS_HOST/REDIS_PORT/REDIS_PASSWORD), BULL_PREFIX
// (default bull), QUEUE (default demo), CONCURRENCY (default 10), WORKER_NAME
// (default node-1). Prints one JSON line per job event; SIGTERM/SIGINT let the
// running jobs finish, then exit.
import { UnrecoverableError, Worker } from 'bullmq';
import { bullPrefix, redisConnection } from './redis-connection.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const methods = {
  echo: async (job) => ({ echo: job.data }),

  sleep: async (job) => {
    const ms = Number(job.data?.ms ?? 0);
    const steps = Number(job.data?.steps ?? 0);
    const slices = Math.max(1, steps);
    for (let i = 1; i <= slices; i++) {
      await sleep(ms / slices);
      if (steps > 0) await job.updateProgress(Math.floor((100 * i) / slices));
    }
    return { slept: ms };
  },

  fail: async (job) => {
    const times = Number(job.data?.times ?? 0);
    if (job.attemptsMade < times) throw new Error('demo failure');
    return { attempts: job.attemptsMade + 1 };
  },
};

function settings(env) {
  const concurrency = Number(env.CONCURRENCY || 10);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new Error(`CONCURRENCY: not a positive integer: ${env.CONCURRENCY}`);
  }
  return {
    connection: redisConnection(env),
    prefix: bullPrefix(env),
    queue: env.QUEUE || 'demo',
    concurrency,
    name: env.WORKER_NAME || 'node-1',
  };
}

const line = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

async function main() {
  const cfg = settings(process.env);
  const worker = new Worker(
    cfg.queue,
    async (job) => {
      line({ event: 'start', id: job.id, name: job.name, attemptsMade: job.attemptsMade });
      const method = methods[job.name];
      if (!method) {
        throw new UnrecoverableError(`unknown method ${cfg.queue}.${job.name}: no handler registered`);
      }
      return method(job);
    },
    {
      connection: cfg.connection,
      prefix: cfg.prefix,
      concurrency: cfg.concurrency,
      name: cfg.name,
    },
  );
  worker.on('completed', (job, returnvalue) => {
    line({ event: 'completed', id: job.id, returnvalue: returnvalue ?? null });
  });
  worker.on('failed', (job, err) => {
    line({
      event: 'failed',
      id: job?.id ?? null,
      failedReason: job?.failedReason ?? String(err?.message ?? err),
      attemptsMade: job?.attemptsMade ?? null,
    });
  });
  worker.on('stalled', (jobId) => line({ event: 'stalled', id: jobId }));
  // Without a listener a lost connection would be thrown; bullmq reconnects.
  worker.on('error', (err) => console.error(`worker error: ${err?.message ?? err}`));

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    console.error(`demo-worker: ${signal}, waiting for running jobs`);
    await worker.close().catch(() => {});
    line({ closed: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  await worker.waitUntilReady();
  line({ ready: true, queue: cfg.queue, prefix: cfg.prefix, name: cfg.name });
}

main().catch((err) => {
  console.error(`demo-worker: ${err?.message ?? err}`);
  process.exit(1);
});
