// `worker` command: a bullmq Worker printing one JSON line per event.
import { Worker } from 'bullmq';
import {
  baseOptions, emitLine, errorMessage, exitAfterFlush, onStopRequest, releaseStdin, withTimeout,
} from './common.mjs';
import { makeProcessor } from './processors.mjs';

const WORKER_OPTION_KEYS = [
  'concurrency', 'name', 'lockDuration', 'lockRenewTime', 'stalledInterval',
  'maxStalledCount', 'drainDelay', 'removeOnComplete', 'removeOnFail', 'limiter',
  'skipStalledCheck', 'skipLockRenewal', 'runRetryDelay', 'metrics',
];

export async function runWorker(cfg) {
  const opts = baseOptions(cfg);
  for (const key of WORKER_OPTION_KEYS) {
    if (cfg[key] !== undefined) opts[key] = cfg[key];
  }
  // `backoffDelays: {type: [ms, ...]}`: a custom backoff strategy giving
  // the n-th retry of a job with `backoff.type` the n-th delay, and -1 (fail
  // now) past the end of the list or for a type not listed.
  if (cfg.backoffDelays) {
    const table = cfg.backoffDelays;
    opts.settings = {
      backoffStrategy: (attemptsMade, type) => table[type]?.[attemptsMade - 1] ?? -1,
    };
  }
  const exitAfter = cfg.exitAfter ?? null;
  // Time allowed for a graceful close before active jobs are abandoned.
  const closeTimeoutMs = cfg.closeTimeoutMs ?? 5000;
  let finished = 0;
  let closing = null;

  const processor = makeProcessor((job) => {
    emitLine({ event: 'start', id: job.id, name: job.name, attemptsMade: job.attemptsMade });
  });
  // The driver starts the loop itself, after printing {"ready":true}, so no
  // job can start before that line (with bullmq's autorun a job that is
  // already waiting can be picked up before waitUntilReady() resolves).
  // Config `autorun: false` keeps bullmq's meaning: run() is never called, the
  // worker stays connected and idle.
  const autorun = cfg.autorun !== false;
  opts.autorun = false;
  const worker = new Worker(cfg.queue, processor, opts);

  const shutdown = () => {
    if (closing) return closing;
    closing = (async () => {
      releaseStdin();
      // worker.close() waits for active jobs; a second close(true) would only
      // return the same pending promise, so after the timeout (e.g. a `hang`
      // job) give up on the graceful close and just leave: the process exit
      // drops the connections and the job's lock is left to expire.
      let timer;
      const timeout = new Promise((resolve) => {
        timer = setTimeout(resolve, closeTimeoutMs);
      });
      await Promise.race([worker.close(cfg.forceClose === true).catch(() => {}), timeout]);
      clearTimeout(timer);
      emitLine({ closed: true });
      exitAfterFlush(0);
    })();
    return closing;
  };

  const countFinished = () => {
    finished += 1;
    if (exitAfter !== null && finished >= exitAfter) shutdown();
  };

  worker.on('completed', (job, returnvalue) => {
    emitLine({ event: 'completed', id: job.id, returnvalue: returnvalue ?? null });
    countFinished();
  });
  worker.on('failed', (job, err) => {
    emitLine({
      event: 'failed',
      id: job?.id ?? null,
      failedReason: job?.failedReason ?? errorMessage(err),
      attemptsMade: job?.attemptsMade ?? null,
    });
    // A failure is final when the job landed in the failed set (finishedOn is
    // only set then); retried attempts go back to wait/delayed.
    if (!job || job.finishedOn) countFinished();
  });
  worker.on('stalled', (jobId) => emitLine({ event: 'stalled', id: jobId }));
  worker.on('error', (err) => process.stderr.write(`worker error: ${errorMessage(err)}\n`));

  onStopRequest(cfg, shutdown);
  await withTimeout(worker.waitUntilReady(), cfg.timeoutMs ?? 30000, 'worker connection');
  emitLine({ ready: true });
  if (autorun) {
    worker.run().catch((err) => process.stderr.write(`run error: ${errorMessage(err)}\n`));
  }
  if (exitAfter === 0) shutdown();
}
