// `worker` command: a bullmq Worker printing one JSON line per event.
import { Worker } from 'bullmq';
import {
  baseOptions, emitLine, errorMessage, exitAfterFlush, onStopRequest, releaseStdin,
} from './common.mjs';
import { makeProcessor } from './processors.mjs';

const WORKER_OPTION_KEYS = [
  'concurrency', 'name', 'lockDuration', 'lockRenewTime', 'stalledInterval',
  'maxStalledCount', 'drainDelay', 'removeOnComplete', 'removeOnFail', 'limiter',
  'autorun', 'skipStalledCheck', 'skipLockRenewal', 'runRetryDelay',
];

export async function runWorker(cfg) {
  const opts = baseOptions(cfg);
  for (const key of WORKER_OPTION_KEYS) {
    if (cfg[key] !== undefined) opts[key] = cfg[key];
  }
  const exitAfter = cfg.exitAfter ?? null;
  // Time allowed for a graceful close before active jobs are abandoned.
  const closeTimeoutMs = cfg.closeTimeoutMs ?? 5000;
  let finished = 0;
  let closing = null;

  const processor = makeProcessor((job) => {
    emitLine({ event: 'start', id: job.id, name: job.name, attemptsMade: job.attemptsMade });
  });
  const worker = new Worker(cfg.queue, processor, opts);

  const shutdown = () => {
    if (closing) return closing;
    closing = (async () => {
      releaseStdin();
      let timer;
      const graceful = worker.close().then(() => 'graceful');
      const timeout = new Promise((resolve) => {
        timer = setTimeout(() => resolve('timeout'), closeTimeoutMs);
      });
      if ((await Promise.race([graceful, timeout])) === 'timeout') {
        await worker.close(true).catch(() => {});
      }
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
  await worker.waitUntilReady();
  // With autorun:false the driver starts the loop itself, so the worker runs
  // either way (the option only changes which code path starts it).
  if (cfg.autorun === false) {
    worker.run().catch((err) => process.stderr.write(`run error: ${errorMessage(err)}\n`));
  }
  emitLine({ ready: true });
  if (exitAfter === 0) shutdown();
}
