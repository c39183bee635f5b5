// `events` command: a QueueEvents printing every event it emits.
import { QueueEvents } from 'bullmq';
import {
  baseOptions, emitLine, errorMessage, exitAfterFlush, makeClient, onStopRequest,
  releaseConnection, releaseStdin, withTimeout,
} from './common.mjs';

export async function runEvents(cfg) {
  const opts = baseOptions(cfg);
  opts.lastEventId = await resolveLastEventId(cfg);
  if (cfg.blockingTimeout !== undefined) opts.blockingTimeout = cfg.blockingTimeout;
  const queueEvents = new QueueEvents(cfg.queue, opts);

  // Generic hook: QueueEvents emits `(args, streamId)` for every stream entry,
  // `(streamId)` for `drained`, and repeats each job event on `<event>:<jobId>`.
  // Print each entry once, exactly as delivered, and skip the per-job repeats.
  const originalEmit = queueEvents.emit.bind(queueEvents);
  queueEvents.emit = (event, ...args) => {
    if (event === 'error') {
      process.stderr.write(`queue events error: ${errorMessage(args[0])}\n`);
    } else if (event === 'drained') {
      emitLine({ event, args: null, id: args[0] ?? null });
    } else if (!isPerJobRepeat(event, args[0]) && !LOCAL_EVENTS.has(event)) {
      emitLine({ event, args: args[0] ?? null, id: args[1] ?? null });
    }
    return originalEmit(event, ...args);
  };

  let closing = null;
  const shutdown = () => {
    if (closing) return closing;
    closing = (async () => {
      releaseStdin();
      await queueEvents.close().catch(() => {});
      releaseConnection(opts);
      emitLine({ closed: true });
      exitAfterFlush(0);
    })();
    return closing;
  };

  onStopRequest(cfg, shutdown);
  await withTimeout(queueEvents.waitUntilReady(), cfg.timeoutMs ?? 30000, 'queue events connection');
  emitLine({ ready: true });
}

// Connection-level events of the EventEmitter itself, not stream entries.
const LOCAL_EVENTS = new Set(['ready', 'close', 'closing', 'ioredis:close']);

function isPerJobRepeat(event, args) {
  const jobId = args && typeof args === 'object' ? args.jobId : undefined;
  return jobId !== undefined && event.endsWith(`:${jobId}`);
}

// `$` means "whatever is last when XREAD runs", which races with producers
// started right after `ready`. Pin it to the stream's current last id instead
// (`0-0` for an empty stream), so every event after `ready` is seen.
async function resolveLastEventId(cfg) {
  const wanted = cfg.lastEventId ?? '$';
  if (wanted !== '$') return wanted;
  const redis = makeClient(cfg);
  try {
    const last = await redis.xrevrange(`${cfg.prefix}:${cfg.queue}:events`, '+', '-', 'COUNT', 1);
    return last.length > 0 ? last[0][0] : '0-0';
  } finally {
    redis.disconnect();
  }
}
