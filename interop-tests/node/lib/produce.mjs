// `produce` command: adds jobs with its own ids until asked to stop, printing
// `{"acked": id}` for every add Redis acknowledged and `{"addFailed": id,
// "reason": ...}` for every attempt that failed (the same id is tried again,
// which is safe: an id that is already there is not added twice).
//
// Config: `idPrefix` (default "n"), `lanes` (adds in flight at once, default 2),
// `jobName` (default "count"), `pauseMs` between adds of a lane (default 0).
import { Queue } from 'bullmq';
import {
  baseOptions, emitLine, errorMessage, exitAfterFlush, onStopRequest, releaseConnection, releaseStdin,
  sleep, withTimeout,
} from './common.mjs';

export async function runProducer(cfg) {
  const opts = baseOptions(cfg, { blocking: false });
  const queue = new Queue(cfg.queue, opts);
  queue.on('error', (err) => process.stderr.write(`queue error: ${errorMessage(err)}\n`));
  const idPrefix = cfg.idPrefix ?? 'n';
  const jobName = cfg.jobName ?? 'count';
  const pauseMs = cfg.pauseMs ?? 0;
  let stopping = false;

  const lane = async (l) => {
    for (let n = 0; !stopping; n++) {
      const id = `${idPrefix}${l}-${n}`;
      for (;;) {
        try {
          await queue.add(jobName, { lane: l, n }, { jobId: id });
          emitLine({ acked: id });
          break;
        } catch (err) {
          emitLine({ addFailed: id, reason: errorMessage(err) });
          if (stopping) return;
          await sleep(50);
        }
      }
      if (pauseMs > 0) await sleep(pauseMs);
    }
  };

  let lanes = [];
  let closing = null;
  const shutdown = () => {
    if (closing) return closing;
    closing = (async () => {
      stopping = true;
      releaseStdin();
      await Promise.race([Promise.allSettled(lanes), sleep(10000)]);
      await Promise.race([queue.close().catch(() => {}), sleep(5000)]);
      releaseConnection(opts);
      emitLine({ closed: true });
      exitAfterFlush(0);
    })();
    return closing;
  };

  onStopRequest(cfg, shutdown);
  await withTimeout(queue.waitUntilReady(), cfg.timeoutMs ?? 30000, 'queue connection');
  emitLine({ ready: true });
  lanes = Array.from({ length: cfg.lanes ?? 2 }, (_, l) => lane(l));
}
