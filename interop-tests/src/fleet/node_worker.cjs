// The fleet's Node worker: unmodified npm `bullmq` serving queue `demo` like
// the Rust `worker` binary's demo service (echo, sleep), with short locks so
// a killed one's jobs come back quickly. Each handler that runs to its end
// counts itself in Redis (INCR fleet:runs:<jobId>): a count above one is a
// duplicated execution.
//   node node_worker.cjs <redis-url> <concurrency> <lockDurationMs> <stalledIntervalMs>
const { Worker } = require('bullmq');
const IORedis = require('ioredis');

const [url, concurrency, lockDuration, stalledInterval] = process.argv.slice(2);
const u = new URL(url);
const connection = { host: u.hostname, port: Number(u.port) };
// waits through outages instead of failing the handler
const recorder = new IORedis({ ...connection, maxRetriesPerRequest: null });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function run(job) {
  switch (job.name) {
    case 'echo':
      return { echo: job.data };
    case 'sleep': {
      const ms = Number(job.data.ms || 0);
      const steps = Math.max(1, Number(job.data.steps || 0));
      for (let i = 1; i <= steps; i += 1) {
        await sleep(ms / steps);
        if (job.data.steps) await job.updateProgress(Math.floor((100 * i) / steps));
      }
      return { slept: ms };
    }
    default:
      throw new Error(`unknown method ${job.name}`);
  }
}

const worker = new Worker(
  'demo',
  async (job) => {
    const result = await run(job);
    await recorder.multi().incr(`fleet:runs:${job.id}`).expire(`fleet:runs:${job.id}`, 7200).exec();
    return result;
  },
  {
    connection,
    concurrency: Number(concurrency),
    lockDuration: Number(lockDuration),
    stalledInterval: Number(stalledInterval),
    // a job caught by several kills in a row is retried, not failed
    maxStalledCount: 10,
  },
);
worker.on('error', (e) => console.error(`worker error: ${e.message}`));
worker.waitUntilReady().then(() => console.log('ready'));
const stop = () => worker.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
