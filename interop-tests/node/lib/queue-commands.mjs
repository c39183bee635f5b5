// One-shot commands built on a bullmq Queue: add, inspect, control.
import { Queue } from 'bullmq';
import { normaliseJobJson, withQueue } from './common.mjs';

export function add(cfg) {
  return withQueue(Queue, cfg, async (queue) => {
    const jobs = cfg.jobs ?? [];
    if (cfg.bulk) {
      const added = await queue.addBulk(
        jobs.map((j) => ({ name: j.name, data: j.data ?? {}, opts: j.opts ?? {} })),
      );
      return { ids: added.map((job) => job.id) };
    }
    const ids = [];
    for (const j of jobs) {
      const job = await queue.add(j.name, j.data ?? {}, j.opts ?? {});
      ids.push(job.id);
    }
    return { ids };
  });
}

export function inspect(cfg) {
  return withQueue(Queue, cfg, async (queue) => {
    const jobs = {};
    for (const id of cfg.ids ?? []) {
      jobs[id] = await describeJob(queue, String(id), cfg);
    }
    // getWorkers() rewrites `name` to the queue name; `rawname` is the real
    // client name (`<prefix>:<base64(queue)>[:w:<workerName>]`).
    const workers = (await queue.getWorkers()).map((w) => w.rawname ?? w.name).sort();
    const result = {
      jobs,
      counts: await queue.getJobCounts(),
      isPaused: await queue.isPaused(),
      workers,
      meta: typeof queue.getMeta === 'function' ? await queue.getMeta() : null,
    };
    if (cfg.states) {
      const listed = await queue.getJobs(cfg.states, cfg.start ?? 0, cfg.end ?? -1, cfg.asc ?? false);
      result.list = listed.map((job) => job?.id ?? null);
    }
    // Several getJobs calls in one run: [{states, start, end, asc}, ...].
    if (cfg.lists) {
      result.lists = [];
      for (const l of cfg.lists) {
        const listed = await queue.getJobs(l.states ?? [], l.start ?? 0, l.end ?? -1, l.asc ?? false);
        result.lists.push(listed.map((job) => job?.id ?? null));
      }
    }
    return result;
  });
}

async function describeJob(queue, id, cfg) {
  const job = await queue.getJob(id);
  if (!job) return null;
  const stacktrace = job.stacktrace;
  return {
    json: normaliseJobJson(job),
    state: await job.getState(),
    logs: await queue.getJobLogs(id, cfg.logStart ?? 0, cfg.logEnd ?? -1, cfg.logAsc ?? true),
    // The stack text differs per language; its length counts failed attempts.
    stacktraceLength: Array.isArray(stacktrace) ? stacktrace.length : null,
  };
}

async function requireJob(queue, id) {
  const job = await queue.getJob(String(id));
  if (!job) throw new Error(`job ${id} not found`);
  return job;
}

const controlOps = {
  pause: (q) => q.pause(),
  resume: (q) => q.resume(),
  drain: (q, c) => q.drain(Boolean(c.delayed)),
  clean: (q, c) => q.clean(c.grace ?? 0, c.limit ?? 0, c.type ?? 'completed'),
  obliterate: (q, c) => q.obliterate({ force: Boolean(c.force) }),
  retryJobs: (q, c) => q.retryJobs(pick(c, ['state', 'count', 'timestamp'])),
  promoteJobs: (q, c) => q.promoteJobs(pick(c, ['count'])),
  jobRetry: async (q, c) => (await requireJob(q, c.id)).retry(c.state ?? 'failed'),
  jobPromote: async (q, c) => (await requireJob(q, c.id)).promote(),
  jobRemove: async (q, c) => (await requireJob(q, c.id)).remove(),
  changePriority: async (q, c) =>
    (await requireJob(q, c.id)).changePriority(pick(c, ['priority', 'lifo'])),
  changeDelay: async (q, c) => (await requireJob(q, c.id)).changeDelay(c.delay),
  updateData: async (q, c) => (await requireJob(q, c.id)).updateData(c.data),
  updateProgress: (q, c) => q.updateJobProgress(String(c.id), c.progress),
  addLog: (q, c) => q.addJobLog(String(c.id), c.row, c.keepLogs),
  setGlobalConcurrency: (q, c) => q.setGlobalConcurrency(c.n),
  removeGlobalConcurrency: (q) => q.removeGlobalConcurrency(),
  setGlobalRateLimit: (q, c) => q.setGlobalRateLimit(c.max, c.duration),
  rateLimit: (q, c) => q.rateLimit(c.ms),
  trimEvents: (q, c) => q.trimEvents(c.maxLength),
  getMetrics: (q, c) => q.getMetrics(c.type ?? 'completed', c.start ?? 0, c.end ?? -1),
  upsertJobScheduler: (q, c) => q.upsertJobScheduler(c.id, c.repeat, c.template),
  removeJobScheduler: (q, c) => q.removeJobScheduler(c.id),
  getJobScheduler: (q, c) => q.getJobScheduler(c.id),
  getRateLimitTtl: (q, c) => q.getRateLimitTtl(c.maxJobs),
};

export const CONTROL_OPS = Object.keys(controlOps);

export function control(cfg) {
  const op = controlOps[cfg.op];
  if (!op) throw new Error(`unknown op ${JSON.stringify(cfg.op)}; one of ${CONTROL_OPS.join(', ')}`);
  return withQueue(Queue, cfg, async (queue) => {
    const result = await op(queue, cfg);
    return { ok: true, result: result ?? null };
  });
}

function pick(obj, keys) {
  const out = {};
  for (const key of keys) if (obj[key] !== undefined) out[key] = obj[key];
  return out;
}
