// An unmodified Node BullMQ worker serving one queue behind the gateway
// (tests only): node node_worker.cjs <redis-url> <queue>
// Methods: echo (returns its data), progress (reports 50 then returns),
// fail (throws data.message). Prints "ready" once it is blocking for jobs.
// `bullmq` is the suite's pinned one: interop_tests::clients::node_command
// sets NODE_PATH to interop-tests/node/node_modules.
const { Worker } = require('bullmq');

const [url, queue] = process.argv.slice(2);
const u = new URL(url);
const worker = new Worker(
  queue,
  async (job) => {
    switch (job.name) {
      case 'echo':
        return job.data;
      case 'progress':
        await job.updateProgress(50);
        return { done: 'node' };
      case 'fail':
        throw new Error(job.data.message || 'node failure');
      default:
        throw new Error(`unknown method ${job.name}`);
    }
  },
  { connection: { host: u.hostname, port: Number(u.port) }, concurrency: 4 },
);
worker.waitUntilReady().then(() => console.log('ready'));
const stop = () => worker.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
