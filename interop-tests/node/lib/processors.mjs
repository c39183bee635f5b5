// Job processors, chosen by job name so every language behaves the same way.
import { UnrecoverableError } from 'bullmq';
import { sleep } from './common.mjs';

const behaviours = {
  echo: async (job) => ({ echo: job.data }),

  sleep: async (job) => {
    const ms = Number(job.data?.ms ?? 0);
    const steps = Math.max(1, Number(job.data?.steps ?? 1));
    for (let i = 1; i <= steps; i++) {
      await sleep(ms / steps);
      await job.updateProgress(Math.round((100 * i) / steps));
    }
    return { slept: ms };
  },

  fail: async (job) => {
    const times = Number(job.data?.times ?? 0);
    if (job.attemptsMade < times) throw new Error('demo failure');
    return { attempts: job.attemptsMade + 1 };
  },

  unrecoverable: async () => {
    throw new UnrecoverableError('unrecoverable failure');
  },

  log: async (job) => {
    await job.log('line 1');
    await job.log('line 2');
    await job.updateProgress({ stage: 'half' });
    return { logged: 2 };
  },

  // Never settles: the job stays active until the process dies (stall tests).
  hang: () => new Promise(() => {}),

  count: async () => ({ ok: true }),
};

/** Build the Worker processor; `onStart(job)` is called before each job runs. */
export function makeProcessor(onStart) {
  return async (job) => {
    onStart(job);
    const behaviour = behaviours[job.name];
    return behaviour ? behaviour(job) : null;
  };
}
